//! The mock CA's HTTP API (`kilt-ca`): login, certificate requests, certificates, admin calls.

use serde::{Deserialize, Serialize};

use crate::Lang;
pub use crate::Reject;

/// The device a request is made for (the page's "Устройство" field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Device {
    /// Aladdin JaCarta PKI — the token of seed 004.
    JaCarta,
    /// SafeNet eToken — offered by the real page, "not eToken" in the seed.
    #[serde(rename = "eToken")]
    EToken,
    /// Kaztoken.
    Kaztoken,
    /// A key file on disk (PKCS#12), the national CA's "Файловая система".
    #[serde(rename = "PKCS12")]
    Pkcs12,
}

impl Device {
    /// Every device the CA knows.
    pub const ALL: [Device; 4] = [
        Device::JaCarta,
        Device::EToken,
        Device::Kaztoken,
        Device::Pkcs12,
    ];

    /// The name as shown and sent (`JaCarta`, `eToken`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Device::JaCarta => "JaCarta",
            Device::EToken => "eToken",
            Device::Kaztoken => "Kaztoken",
            Device::Pkcs12 => "PKCS12",
        }
    }
}

/// What a certificate is for. Each user holds one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    /// Authentication (TLS client auth, "AUTH_…").
    Auth,
    /// Signing of documents ("RSA_…/GOST_…" on the real CA; here ECDSA P-256).
    Sign,
}

impl CertKind {
    /// Both kinds, in the order the CA lists them.
    pub const ALL: [CertKind; 2] = [CertKind::Auth, CertKind::Sign];

    /// The stable code (`auth`, `sign`).
    pub fn code(self) -> &'static str {
        match self {
            CertKind::Auth => "auth",
            CertKind::Sign => "sign",
        }
    }

    /// A label for pages and the application document.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            CertKind::Auth => lang.pick("Аутентификация", "Аутентификация", "Authentication"),
            CertKind::Sign => lang.pick("Подпись", "Қолтаңба", "Signing"),
        }
    }
}

/// A registration authority's request states: new → approved → issued, or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Received and checked, waiting for an operator (when auto-approval is off).
    New,
    /// Approved; certificates are being issued.
    Approved,
    /// Certificates issued; the request is done.
    Issued,
    /// Rejected by an operator; `reason` says why.
    Rejected,
}

impl RequestStatus {
    /// The stable code as on the wire.
    pub fn code(self) -> &'static str {
        match self {
            RequestStatus::New => "new",
            RequestStatus::Approved => "approved",
            RequestStatus::Issued => "issued",
            RequestStatus::Rejected => "rejected",
        }
    }

    /// Parses the wire code.
    pub fn from_code(code: &str) -> Option<RequestStatus> {
        [Self::New, Self::Approved, Self::Issued, Self::Rejected]
            .into_iter()
            .find(|s| s.code() == code)
    }

    /// The label shown on the CA's pages.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            RequestStatus::New => lang.pick("Новый", "Жаңа", "New"),
            RequestStatus::Approved => lang.pick("Одобрен", "Мақұлданды", "Approved"),
            RequestStatus::Issued => lang.pick("Выпущен", "Шығарылды", "Issued"),
            RequestStatus::Rejected => lang.pick("Отклонён", "Қабылданбады", "Rejected"),
        }
    }
}

/// A certificate's state on the CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    /// Valid now.
    Active,
    /// Past its `not_after` on the CA's clock.
    Expired,
    /// Revoked; on the CRL.
    Revoked,
}

impl CertStatus {
    /// The label shown on the CA's pages.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            CertStatus::Active => lang.pick("Действителен", "Жарамды", "Valid"),
            CertStatus::Expired => lang.pick("Истёк", "Мерзімі өтті", "Expired"),
            CertStatus::Revoked => lang.pick("Отозван", "Кері қайтарылды", "Revoked"),
        }
    }
}

/// `POST /api/v1/login/password`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordLogin {
    /// The account's login ("Логин").
    pub login: String,
    /// The account's password ("Пароль").
    pub password: String,
}

/// The answer to either login: a bearer token for the following calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// `Authorization: Bearer <token>`; also set as the `kilt_ca_session` cookie.
    pub token: String,
    /// The logged-in user.
    pub user: User,
    /// Seconds until the session expires.
    pub expires_in: u64,
}

/// A CA account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Login name.
    pub login: String,
    /// Full name, the certificates' CN (e.g. `ТЕСТОВ ТЕСТ`).
    pub full_name: String,
    /// The 12-digit individual identification number (ИИН), in the subject's serialNumber.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{12}$"))]
    pub iin: String,
}

/// One certificate as the CA lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Certificate {
    /// Serial number, lower-case hex without separators.
    pub serial: String,
    /// AUTH or SIGN.
    pub kind: CertKind,
    /// RFC 3339 UTC.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub not_before: String,
    /// RFC 3339 UTC.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub not_after: String,
    /// State on the CA's clock.
    pub status: CertStatus,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// One CSR of a request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CsrItem {
    /// Which certificate this CSR asks for.
    pub kind: CertKind,
    /// PKCS#10 request, PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
    pub csr: String,
}

/// `POST /api/v1/requests` — "Запрос на выпуск сертификата".
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueRequest {
    /// "Устройство": the device the keys live on.
    pub device: Device,
    /// One CSR per certificate kind; each kind at most once.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 2))]
    pub csrs: Vec<CsrItem>,
}

/// A certificate request as the CA keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Request {
    /// Request number.
    pub id: u64,
    /// The device named in the request.
    pub device: Device,
    /// Where the request is.
    pub status: RequestStatus,
    /// Why it was rejected, if it was.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<String>,
    /// RFC 3339 UTC, on the CA's clock.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created: String,
    /// The requested keys (uncompressed P-256 points, hex), AUTH then SIGN: a client whose
    /// answer was lost finds its request by them before anything is issued.
    #[serde(default)]
    pub public_keys: Vec<String>,
    /// The issued certificates (empty until `issued`).
    pub certificates: Vec<Certificate>,
    /// The issuing CA then the root, PEM, for building the chain.
    pub chain: Vec<String>,
}

/// The RFC 5280 §5.3.1 reason names the CA takes in [`RevokeRequest::reason`].
pub const REVOCATION_REASONS: [&str; 6] = [
    "superseded",
    "key_compromise",
    "affiliation_changed",
    "cessation_of_operation",
    "privilege_withdrawn",
    "unspecified",
];

/// [`RevokeRequest::reason`]'s schema: one of [`REVOCATION_REASONS`], or null.
#[cfg(feature = "openapi")]
fn revocation_reason() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let mut values: Vec<serde_json::Value> = REVOCATION_REASONS.map(Into::into).into();
    values.push(serde_json::Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
        .enum_values(Some(values))
        .build()
}

/// `POST /api/v1/certificates/{serial}/revoke` (owner, only superseded) and the admin's revoke.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokeRequest {
    /// RFC 5280 §5.3.1 reason name: `superseded`, `key_compromise`, `cessation_of_operation`,
    /// `affiliation_changed`, `unspecified`. The owner may only use `superseded`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = revocation_reason))]
    pub reason: Option<String>,
}

/// `POST /admin/users`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUser {
    /// Login name (letters, digits, `._-`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub login: String,
    /// Password for the page's login form.
    #[cfg_attr(feature = "openapi", schema(min_length = 8))]
    pub password: String,
    /// Full name for the certificates' CN.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\x00-\x1f\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]{0,62}[^\x00-\x1f\x7f-\x9f\s])?$"
        )
    )]
    pub full_name: String,
    /// 12-digit ИИН.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{12}$"))]
    pub iin: String,
}

/// `POST /admin/users/{login}/certificates`: issue a user's first certificates with no login,
/// to provision a fresh token. Optional validity overrides let a test make near-expiry or
/// already-expired certificates.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provision {
    /// One CSR per kind.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub csrs: Vec<CsrItem>,
    /// Validity in days from the CA's now (default: the CA's validity).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub valid_days: Option<i64>,
    /// Shift `not_before` back by this many days (to build already-old certificates).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub backdate_days: Option<i64>,
}

/// `POST /admin/clock`: move the CA's clock (days may be negative).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockShift {
    /// Days to add to the current offset.
    #[serde(deserialize_with = "crate::integral::whole")]
    #[cfg_attr(feature = "openapi", schema(minimum = -73000, maximum = 73000))]
    pub advance_days: i64,
}

/// `GET /admin/clock` of both servers, and their answer to `POST /admin/clock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Clock {
    /// The server's now, RFC 3339 UTC.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub now: String,
    /// Seconds the server's clock is ahead of the system clock.
    pub offset_seconds: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_documented_ones() {
        assert_eq!(
            serde_json::to_string(&Device::EToken).unwrap(),
            "\"eToken\""
        );
        assert_eq!(
            serde_json::to_string(&Device::JaCarta).unwrap(),
            "\"JaCarta\""
        );
        assert_eq!(serde_json::to_string(&CertKind::Auth).unwrap(), "\"auth\"");
        for status in [
            RequestStatus::New,
            RequestStatus::Approved,
            RequestStatus::Issued,
            RequestStatus::Rejected,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.code()));
            assert_eq!(RequestStatus::from_code(status.code()), Some(status));
        }
        for device in Device::ALL {
            let json = serde_json::to_string(&device).unwrap();
            assert_eq!(json, format!("\"{}\"", device.name()));
        }
    }

    #[test]
    fn unknown_device_is_refused() {
        assert!(serde_json::from_str::<Device>("\"Rutoken\"").is_err());
    }

    #[test]
    fn every_label_differs_per_language() {
        for status in [
            RequestStatus::New,
            RequestStatus::Approved,
            RequestStatus::Issued,
            RequestStatus::Rejected,
        ] {
            assert_ne!(status.label(Lang::Ru), status.label(Lang::En));
            assert_ne!(status.label(Lang::Kk), status.label(Lang::En));
        }
    }
}
