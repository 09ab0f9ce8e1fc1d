//! The CA's one error type, in domain terms, with its HTTP mapping in one `match`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use kilt_mock_server::error::{ServerError, error_response, json_errors};

/// Everything that can go wrong in the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A shared part failed: a request body, the PKI, TLS, a file.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A field has a value the CA does not accept.
    #[error("{0}")]
    InvalidInput(String),
    /// The CSR's subject is not the logged-in user.
    #[error(
        "the {kind} CSR's subject is {found:?}, but you are {expected:?}; make the CSR for your own name and IIN"
    )]
    SubjectMismatch {
        /// `auth` or `sign`.
        kind: &'static str,
        /// The user's CN and IIN.
        expected: String,
        /// The CSR's.
        found: String,
    },
    /// The key of the CSR is already certified.
    #[error(
        "the {kind} CSR's key is already certified (serial {serial}); generate a new key pair for a new certificate"
    )]
    KeyInUse {
        /// `auth` or `sign`.
        kind: &'static str,
        /// The certificate that holds the key.
        serial: String,
    },
    /// The key of the CSR already waits in another request.
    #[error(
        "the {kind} CSR's key already waits in request {request}; wait for its decision (GET /api/v1/requests lists it) instead of requesting again"
    )]
    KeyPending {
        /// `auth` or `sign`.
        kind: &'static str,
        /// The waiting request.
        request: i64,
    },
    /// No or a bad session.
    #[error("not logged in: {0}")]
    Unauthenticated(String),
    /// Login by certificate refused.
    #[error("login by certificate refused: {0}")]
    CertificateRefused(String),
    /// Wrong login or password.
    #[error("wrong login or password")]
    BadPassword,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// The action does not fit the current state (e.g. approving a rejected request).
    #[error("{0}")]
    Conflict(String),
    /// The issuing CA's own certificate has expired on the CA's clock.
    #[error(
        "the issuing CA's certificate expired on {0}; nothing can be issued until the CA is renewed"
    )]
    CaExpired(String),
    /// The application PDF cannot be made because the font is missing.
    #[error(
        "cannot read the PDF font {path}: {why}; install it with `apt-get install fonts-dejavu-core` or pass --font"
    )]
    Font {
        /// The font path tried.
        path: String,
        /// The I/O error.
        why: String,
    },
    /// SQLite failed.
    #[error("the CA's database failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// The PDF writer failed.
    #[error("writing the application PDF failed: {0}")]
    Pdf(String),
    /// A background task failed (a bug; the log has the detail).
    #[error("internal task failed: {0}")]
    Internal(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {why}; pick another {flag}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        why: String,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// Too many wrong passwords for this login in a row: it waits.
    #[error(
        "too many wrong passwords for this login; try again in {retry_after} s, or log in by certificate"
    )]
    TooManyAttempts { retry_after: u64 },
}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> CaError {
        ServerError::Pki(e).into()
    }
}

impl CaError {
    /// The HTTP status and the stable error code of this error. One exhaustive `match`, so a
    /// new variant cannot go out unmapped.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            CaError::Server(e) => e.status_code(),
            CaError::InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            CaError::SubjectMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "csr_subject_mismatch")
            }
            CaError::KeyInUse { .. } => (StatusCode::CONFLICT, "csr_key_in_use"),
            CaError::KeyPending { .. } => (StatusCode::CONFLICT, "csr_key_pending"),
            CaError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            CaError::CertificateRefused(_) => (StatusCode::FORBIDDEN, "certificate_refused"),
            CaError::BadPassword => (StatusCode::UNAUTHORIZED, "bad_password"),
            CaError::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            CaError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            CaError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            CaError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            CaError::CaExpired(_) => (StatusCode::SERVICE_UNAVAILABLE, "ca_expired"),
            CaError::Font { .. }
            | CaError::Store(_)
            | CaError::Pdf(_)
            | CaError::Internal(_)
            | CaError::Listen { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    pub fn io(path: &std::path::Path, source: std::io::Error) -> CaError {
        ServerError::io(path, source).into()
    }

    /// The TLS set-up failed.
    pub fn tls(why: impl Into<String>) -> CaError {
        ServerError::Tls(why.into()).into()
    }
}

impl IntoResponse for CaError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let mut response = error_response(status, code, &self, "CA");
        if let CaError::TooManyAttempts { retry_after } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
        }
        response
    }
}

/// The CA's result type.
pub type Result<T, E = CaError> = std::result::Result<T, E>;
