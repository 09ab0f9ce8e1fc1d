//! PKCS#11 URIs (RFC 7512) as far as a token and a key set are chosen by them.
//!
//! `pkcs11:token=JaCarta;serial=0123;object=kilt-auth-1f2e?module-path=/usr/lib/libjcPKCS11-2.so`
//! — path attributes are `;`-separated, query attributes `&`-separated, values percent-encoded
//! (RFC 7512 §2.3). Unknown *path* attributes make the URI match nothing (§3.3: "a URI with an
//! attribute the consumer does not understand ... must not match"); `pin-value` is refused so a
//! PIN never sits in a shell history.

use std::path::PathBuf;

/// What a `pkcs11:` URI selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label (CK_TOKEN_INFO.label, trailing blanks trimmed).
    pub token: Option<String>,
    /// `serial=`.
    pub serial: Option<String>,
    /// `manufacturer=`.
    pub manufacturer: Option<String>,
    /// `model=`.
    pub model: Option<String>,
    /// `slot-id=` (RFC 7512 errata / p11-kit).
    pub slot_id: Option<u64>,
    /// `object=`: a key set's `CKA_LABEL`.
    pub object: Option<String>,
    /// `id=`: a key set's `CKA_ID` (raw bytes).
    pub id: Option<Vec<u8>>,
    /// `?module-path=`.
    pub module_path: Option<PathBuf>,
    /// `?pin-source=` (`file:` only, as RFC 7512 §2.3 says it names a file).
    pub pin_source: Option<String>,
}

/// Why a URI was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    /// Does not start with `pkcs11:`.
    #[error("{0:?} is not a PKCS#11 URI: it must start with \"pkcs11:\"")]
    Scheme(String),
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8 where text is needed.
    #[error("bad percent-encoding in the PKCS#11 URI attribute {0:?}")]
    Encoding(String),
    /// An attribute RFC 7512 defines that this client does not accept, or one it does not know.
    #[error("the PKCS#11 URI attribute {0:?} is not supported here")]
    Unsupported(String),
    /// `pin-value`: refused on purpose.
    #[error("PINs are not accepted inside URIs; use --pin-source env:VAR or file:PATH")]
    PinValue,
}

fn decode(raw: &str) -> Result<Vec<u8>, UriError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .ok_or_else(|| UriError::Encoding(raw.into()))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UriError::Encoding(raw.into()))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn text(raw: &str) -> Result<String, UriError> {
    String::from_utf8(decode(raw)?).map_err(|_| UriError::Encoding(raw.into()))
}

/// Percent-encodes everything outside RFC 3986's unreserved set (RFC 7512 §2.3 `pk11-pchar`
/// allows a few more; encoding them too is always valid).
pub fn encode(value: &[u8]) -> String {
    let mut out = String::new();
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Pkcs11Uri, UriError> {
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or_else(|| UriError::Scheme(s.into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr.split_once('=').unwrap_or((attr, ""));
            match name {
                "token" => uri.token = Some(text(value)?),
                "serial" => uri.serial = Some(text(value)?),
                "manufacturer" => uri.manufacturer = Some(text(value)?),
                "model" => uri.model = Some(text(value)?),
                "object" => uri.object = Some(text(value)?),
                "id" => uri.id = Some(decode(value)?),
                "slot-id" => {
                    uri.slot_id = Some(
                        text(value)?
                            .parse()
                            .map_err(|_| UriError::Encoding(value.into()))?,
                    )
                }
                // `type=` is meaningful for one object; a key set is all three types.
                "type" | "library-manufacturer" | "library-description" | "library-version" => {}
                other => return Err(UriError::Unsupported(other.into())),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr.split_once('=').unwrap_or((attr, ""));
            match name {
                "module-path" => uri.module_path = Some(PathBuf::from(text(value)?)),
                "pin-source" => uri.pin_source = Some(text(value)?),
                "pin-value" => return Err(UriError::PinValue),
                // §2.3: a consumer ignores query attributes it does not know.
                _ => {}
            }
        }
        Ok(uri)
    }
}

impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut path = vec![];
        for (name, value) in [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
            ("object", &self.object),
        ] {
            if let Some(v) = value {
                path.push(format!("{name}={}", encode(v.as_bytes())));
            }
        }
        if let Some(id) = &self.id {
            path.push(format!("id={}", encode(id)));
        }
        if let Some(slot) = self.slot_id {
            path.push(format!("slot-id={slot}"));
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        let mut query = vec![];
        if let Some(m) = &self.module_path {
            query.push(format!(
                "module-path={}",
                encode(m.to_string_lossy().as_bytes())
            ));
        }
        if let Some(p) = &self.pin_source {
            query.push(format!("pin-source={}", encode(p.as_bytes())));
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_rfc_examples_and_ours() {
        let u: Pkcs11Uri = "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=".parse().unwrap();
        assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(
            u.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(u.serial.as_deref(), Some(""));
        let u: Pkcs11Uri = "pkcs11:token=JaCarta?module-path=/usr/lib/libjcPKCS11-2.so"
            .parse()
            .unwrap();
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/libjcPKCS11-2.so"))
        );
        assert_eq!(
            "pkcs11:token=a?pin-value=1234".parse::<Pkcs11Uri>(),
            Err(UriError::PinValue)
        );
        assert!(matches!(
            "pkcs11:colour=red".parse::<Pkcs11Uri>(),
            Err(UriError::Unsupported(_))
        ));
        assert!(matches!(
            "pkcs11:token=%4".parse::<Pkcs11Uri>(),
            Err(UriError::Encoding(_))
        ));
        assert!(matches!(
            "token=JaCarta".parse::<Pkcs11Uri>(),
            Err(UriError::Scheme(_))
        ));
    }

    proptest! {
        #[test]
        fn display_then_parse_gives_the_same_uri(
            token in proptest::option::of("\\PC{0,12}"),
            serial in proptest::option::of("[0-9A-F]{0,16}"),
            object in proptest::option::of("\\PC{0,12}"),
            id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
            slot in proptest::option::of(any::<u64>()),
        ) {
            let uri = Pkcs11Uri { token, serial, object, id, slot_id: slot, ..Default::default() };
            let back: Pkcs11Uri = uri.to_string().parse().unwrap();
            prop_assert_eq!(back, uri);
        }
    }
}
