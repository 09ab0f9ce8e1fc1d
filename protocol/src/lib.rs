//! Wire types shared by the kilt client and the mock servers.
//!
//! Everything here is plain data with `serde` derives: request and response bodies, and the
//! status enums with their Russian, Kazakh and English labels, so the client, the servers'
//! pages and the tests all show the same words.
//!
//! ```
//! use kilt_protocol::{Lang, ca::RequestStatus};
//!
//! let status: RequestStatus = serde_json::from_str("\"issued\"").unwrap();
//! assert_eq!(status.label(Lang::Ru), "Выпущен");
//! assert_eq!(status.label(Lang::En), "Issued");
//! ```

pub mod bank;
pub mod ca;
pub mod integral;

use serde::{Deserialize, Serialize};

/// The three languages of the seeds' pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Русский — the default of both seeds.
    #[default]
    Ru,
    /// Қазақша.
    Kk,
    /// English.
    En,
}

impl Lang {
    /// All languages, in the order the pages list them.
    pub const ALL: [Lang; 3] = [Lang::Ru, Lang::En, Lang::Kk];

    /// The language's code as used in `?lang=` and `--lang`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::Kk => "kk",
            Lang::En => "en",
        }
    }

    /// Parses `ru`, `kk` or `en` (also `kz`, which Kazakh sites often use).
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "ru" => Some(Lang::Ru),
            "kk" | "kz" => Some(Lang::Kk),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Picks the label for this language out of (ru, kk, en).
    pub fn pick<'a>(self, ru: &'a str, kk: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ru => ru,
            Lang::Kk => kk,
            Lang::En => en,
        }
    }
}

/// The OpenAPI `pattern` of a text the servers trim and then refuse when empty (a rejection's
/// reason, a subscriber's name): at least one character that is not Unicode `White_Space`, the
/// set Rust's `str::trim` removes. Spelled out because `\S` differs between regex engines
/// (Python's counts U+001C–U+001F as space, `trim` does not). The schemas repeat it as a literal
/// (utoipa takes no constant there); a test holds each to this one.
pub const NOT_BLANK: &str =
    r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// The operator's rejection on both servers' admin listeners: `POST /admin/requests/{id}/reject`
/// (CA), `POST /admin/regenerations/{id}/reject` (bank).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reject {
    /// Shown to the user (CA) or customer (bank).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 500,
            pattern = r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        )
    )]
    pub reason: String,
}

/// The JSON body of every 4xx/5xx answer of both servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `csr_signature_invalid`.
    pub error: String,
    /// One line for a person: what failed, why, what to do.
    pub message: String,
}

/// `GET`/`PUT /admin/approval` on both servers' admin listeners: whether new requests wait for
/// the operator (`manual`) or are processed by themselves. Starts as the command line says; a test
/// holds a request this way to reject it, or to pull the token while the client waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    /// New requests wait for the operator's approve or reject.
    pub manual: bool,
}

/// Pebble-style fault knobs of both servers: `GET`/`PUT /admin/faults` on their admin listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Faults {
    /// Percentage (0–100) of API requests answered `503 Service Unavailable`.
    #[serde(default, deserialize_with = "integral::whole")]
    #[cfg_attr(feature = "openapi", schema(maximum = 255))]
    pub fail_percent: u8,
    /// Added latency per API request, in milliseconds.
    #[serde(default, deserialize_with = "integral::whole")]
    #[cfg_attr(feature = "openapi", schema(schema_with = integral::any_u64))]
    pub latency_ms: u64,
    /// Percentage (0–100) of connections dropped right after the TLS handshake.
    #[serde(default, deserialize_with = "integral::whole")]
    #[cfg_attr(feature = "openapi", schema(maximum = 255))]
    pub drop_percent: u8,
    /// Percentage (0–100) of state-changing requests (POST/PUT) delivered twice to the server,
    /// as a retrying network would; the client sees the second answer.
    #[serde(default, deserialize_with = "integral::whole")]
    #[cfg_attr(feature = "openapi", schema(maximum = 255))]
    pub duplicate_percent: u8,
}

#[cfg(test)]
mod tests {
    /// The ranges [`super::NOT_BLANK`] excludes, read back out of the pattern.
    fn excluded() -> Vec<(u32, u32)> {
        let inner = super::NOT_BLANK
            .strip_prefix("[^")
            .and_then(|p| p.strip_suffix(']'))
            .unwrap();
        let hex = |h: &str| u32::from_str_radix(h, 16).unwrap();
        let mut ranges = Vec::new();
        let mut rest = inner;
        while let Some(tail) = rest.strip_prefix("\\u") {
            let start = hex(&tail[..4]);
            rest = &tail[4..];
            let end = match rest.strip_prefix("-\\u") {
                Some(t) => {
                    rest = &t[4..];
                    hex(&t[..4])
                }
                None => start,
            };
            ranges.push((start, end));
        }
        assert!(rest.is_empty(), "unparsed: {rest}");
        ranges
    }

    #[test]
    fn not_blank_excludes_exactly_what_trim_removes() {
        let ranges = excluded();
        for c in (0..=0xffff).filter_map(char::from_u32) {
            let listed = ranges.iter().any(|&(a, b)| (a..=b).contains(&(c as u32)));
            assert_eq!(listed, c.is_whitespace(), "U+{:04X}", c as u32);
        }
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn the_schemas_of_trimmed_texts_carry_not_blank() {
        use utoipa::PartialSchema;
        let pattern = |schema: utoipa::openapi::RefOr<utoipa::openapi::Schema>, field: &str| {
            serde_json::to_value(schema).unwrap()["properties"][field]["pattern"].clone()
        };
        assert_eq!(
            pattern(crate::ca::Reject::schema(), "reason"),
            super::NOT_BLANK
        );
        assert_eq!(
            pattern(crate::bank::Reject::schema(), "reason"),
            super::NOT_BLANK
        );
        assert_eq!(
            pattern(crate::bank::NewSubscriber::schema(), "subscriber"),
            super::NOT_BLANK
        );
    }
}
