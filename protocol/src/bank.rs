//! The mock bank's HTTP API (`kilt-bank`, BS-Client-like): login by a signed challenge,
//! profiles, signature parameters, and the key-set regeneration of seed 000.
//!
//! Signatures are hex in JSON, over the exact bytes each call names ([`login_message`], the
//! CSR's DER, [`activation_message`]), by the key of the profile's certificate: for P-256,
//! ECDSA with SHA-256, DER-encoded; for GOST (a bank started with `--algorithm gost2004` or
//! `gost2015-512`), the layout of the national CA's certificates — little-endian r ‖ s over
//! GOST 34.311-95 (Test S-box) or Streebog-512, which is PKCS#11's `C_Sign` output
//! (`CKM_GOSTR3410_WITH_GOSTR3411`) reversed byte for byte.

use serde::{Deserialize, Serialize};

use crate::Lang;
pub use crate::Reject;

/// The statuses of DESIGN.md's table, in the order a regeneration moves through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The profile's certificate ends within the warning window (or has ended).
    RegenerationRequired,
    /// "Новый": a regeneration was started; the request is not sent yet.
    New,
    /// "Принят банком": the PKCS#10 request signed by the old key was accepted.
    AcceptedByBank,
    /// "Получен новый сертификат": the bank issued the new certificate.
    NewCertificateReceived,
    /// "В эксплуатации": the new key set is in use.
    InOperation,
    /// "Отвергнут банком": the bank refused; `reason` says why.
    Rejected,
}

impl Status {
    /// Every status, in table order.
    pub const ALL: [Status; 6] = [
        Status::RegenerationRequired,
        Status::New,
        Status::AcceptedByBank,
        Status::NewCertificateReceived,
        Status::InOperation,
        Status::Rejected,
    ];

    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            Status::RegenerationRequired => "regeneration_required",
            Status::New => "new",
            Status::AcceptedByBank => "accepted_by_bank",
            Status::NewCertificateReceived => "new_certificate_received",
            Status::InOperation => "in_operation",
            Status::Rejected => "rejected",
        }
    }

    /// Parses the wire code.
    pub fn from_code(code: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The label of DESIGN.md's table.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Status::RegenerationRequired => lang.pick(
                "необходима плановая регенерация",
                "жоспарлы қайта шығару қажет",
                "scheduled regeneration required",
            ),
            Status::New => lang.pick("Новый", "Жаңа", "New"),
            Status::AcceptedByBank => lang.pick(
                "Принят банком",
                "Банкпен қабылданды",
                "Accepted by the bank",
            ),
            Status::NewCertificateReceived => lang.pick(
                "Получен новый сертификат",
                "Жаңа сертификат алынды",
                "New certificate received",
            ),
            Status::InOperation => lang.pick("В эксплуатации", "Пайдалануда", "In operation"),
            Status::Rejected => lang.pick(
                "Отвергнут банком",
                "Банк қабылдамады",
                "Rejected by the bank",
            ),
        }
    }

    /// Whether a regeneration may move from `self` to `to` (the table's order, or rejection
    /// of a request still with the bank).
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        self == to
            || matches!(
                (self, to),
                (New, AcceptedByBank)
                    | (AcceptedByBank, NewCertificateReceived)
                    | (NewCertificateReceived, InOperation)
                    | (New | AcceptedByBank, Rejected)
            )
    }
}

impl Status {
    /// Whether `to` can follow `self` after any number of [`Status::may_become`] steps.
    pub fn can_reach(self, to: Status) -> bool {
        let mut frontier = vec![self];
        let mut seen = vec![self];
        while let Some(s) = frontier.pop() {
            if s == to {
                return true;
            }
            for next in Status::ALL {
                if s.may_become(next) && !seen.contains(&next) {
                    seen.push(next);
                    frontier.push(next);
                }
            }
        }
        false
    }
}

/// "Вы переведены на работу с новым комплектом ключей."
pub fn switched_message(lang: Lang) -> &'static str {
    lang.pick(
        "Вы переведены на работу с новым комплектом ключей.",
        "Сіз кілттердің жаңа жинағымен жұмысқа ауыстырылдыңыз.",
        "You have been switched to the new key set.",
    )
}

/// The profile identifier: the first 10 bytes of SHA-256 of the key's uncompressed point,
/// upper-case hex (20 digits, like `9DB7D6A386C144998F84` in seed 000). The bank names profiles
/// by it, and the client finds a token's profile by computing it.
pub fn key_identifier(point: &[u8]) -> String {
    use sha2::Digest;
    hex::encode_upper(&sha2::Sha256::digest(point)[..10])
}

/// The bytes signed to log in: `kilt-bank login:` + the challenge.
pub fn login_message(challenge: &str) -> Vec<u8> {
    format!("kilt-bank login:{challenge}").into_bytes()
}

/// The bytes the **new** key signs to activate: `kilt-bank activate:` + id + `:` + serial.
pub fn activation_message(regeneration: u64, serial: &str) -> Vec<u8> {
    format!("kilt-bank activate:{regeneration}:{serial}").into_bytes()
}

/// `POST /api/v1/challenge`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeRequest {
    /// The profile's identifier (20 hex digits).
    pub profile: String,
}

/// A one-time challenge to sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// Random, hex; valid once.
    pub challenge: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// `POST /api/v1/login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Login {
    /// The profile's identifier.
    pub profile: String,
    /// The challenge from `/api/v1/challenge`.
    pub challenge: String,
    /// The profile's current certificate, PEM.
    pub certificate: String,
    /// Signature over [`login_message`], hex (DER ECDSA, or GOST little-endian r ‖ s).
    pub signature: String,
}

/// A profile of a subscriber ("абонент ЭЦП").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    /// "Абонент", e.g. `9418_Абонент`.
    pub subscriber: String,
    /// "Идентификатор": 20 hex digits of the current key's identifier.
    pub identifier: String,
    /// "Криптография": `Tumar CSP`.
    pub cryptography: String,
    /// "Статус".
    pub status: Status,
    /// The current certificate's serial, hex.
    pub serial: String,
    /// The current certificate's end, RFC 3339.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub not_after: String,
    /// Days left on the bank's clock (negative once expired).
    pub days_left: i64,
}

/// The answer to a login: a session, and the login banner of critical profiles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// `Authorization: Bearer <token>`.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Profiles with a critical status ("У Вас есть абоненты ЭЦП, профили которых имеют
    /// критический статус").
    pub critical: Vec<Profile>,
}

/// "Параметры подписи".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureParams {
    /// Serial, hex.
    pub serial: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// The key's algorithm: "EC P-256 (prime256v1)", "GOST 34.310-2004" or "GOST R 34.10-2015
    /// (512-bit)".
    pub algorithm: String,
    /// The certificate, PEM.
    pub certificate: String,
}

/// One key-set regeneration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Regeneration {
    /// Number.
    pub id: u64,
    /// The profile it renews.
    pub profile: String,
    /// Where it is.
    pub status: Status,
    /// Why the bank rejected it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<String>,
    /// The process description shown after "Новый".
    pub description: String,
    /// The new certificate's serial, once issued.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub new_serial: Option<String>,
    /// The final message once in operation.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: Option<String>,
}

/// `POST /api/v1/regenerations/{id}/submit` — "Отправить документ в банк" + "Подписать".
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Submit {
    /// PKCS#10 request of the new key (signed by the new key), PEM.
    pub csr: String,
    /// Signature by the **old** key over the CSR's DER, hex (as [`Login::signature`]).
    pub signature: String,
}

/// `GET /api/v1/regenerations/{id}/certificate` — "Получить сертификат (ключ)".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedCertificate {
    /// The new certificate, PEM.
    pub certificate: String,
    /// The bank's CA certificates (issuing, then root), PEM.
    pub chain: Vec<String>,
}

/// `POST /api/v1/regenerations/{id}/activate` — "Продолжить".
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activate {
    /// Signature by the **new** key over [`activation_message`], hex (as [`Login::signature`]).
    pub signature: String,
}

/// `POST /admin/subscribers`: a subscriber with a first certificate for a fresh token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewSubscriber {
    /// e.g. `9418_Абонент`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 64,
            pattern = r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        )
    )]
    pub subscriber: String,
    /// PKCS#10 of the token's first key, PEM (subject CN = `subscriber`).
    pub csr: String,
    /// Validity in days from the bank's now (default the bank's validity).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub valid_days: Option<i64>,
}

/// The answer to `POST /admin/subscribers`: the profile and what to write onto the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provisioned {
    /// The new profile.
    pub profile: Profile,
    /// Its first certificate, PEM.
    pub certificate: String,
    /// The bank's CA certificates (issuing, then root), PEM.
    pub chain: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_labels_match_the_design_table() {
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.code())
            );
        }
        assert_eq!(Status::AcceptedByBank.label(Lang::Ru), "Принят банком");
        assert_eq!(
            Status::NewCertificateReceived.label(Lang::Kk),
            "Жаңа сертификат алынды"
        );
        assert_eq!(Status::Rejected.label(Lang::En), "Rejected by the bank");
    }

    #[test]
    fn statuses_only_move_forward_or_to_rejected() {
        use Status::*;
        assert!(New.may_become(AcceptedByBank));
        assert!(AcceptedByBank.may_become(Rejected));
        assert!(!InOperation.may_become(New));
        assert!(!NewCertificateReceived.may_become(AcceptedByBank));
        assert!(!Rejected.may_become(New));
        assert!(!New.may_become(InOperation));
        assert!(New.can_reach(InOperation));
        assert!(AcceptedByBank.can_reach(Rejected));
        assert!(!NewCertificateReceived.can_reach(Rejected));
        assert!(!InOperation.can_reach(AcceptedByBank));
    }
}
