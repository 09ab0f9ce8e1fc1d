//! The bank's one error type, in domain terms, with its HTTP mapping in one `match`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kilt_mock_server::error::ServerError;

/// Everything that can go wrong in the bank.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// A field has a value the bank does not accept.
    #[error("{0}")]
    InvalidInput(String),
    /// The PKCS#10 request is malformed, not P-256, or its self-signature fails.
    #[error("{0}")]
    Csr(ServerError),
    /// The CSR names someone else.
    #[error(
        "the request's subject is {found:?}, but the profile is {expected:?}; make the request for this subscriber"
    )]
    SubjectMismatch {
        /// The subscriber.
        expected: String,
        /// The CSR's CN.
        found: String,
    },
    /// The new key is already certified or already requested.
    #[error("the new key is already {0}; generate a new key pair for a new key set")]
    KeyInUse(String),
    /// A signature does not verify with the key it must come from.
    #[error("the signature does not verify with the {0}; sign with that key")]
    BadSignature(&'static str),
    /// Login refused.
    #[error("login refused: {0}")]
    LoginRefused(String),
    /// No or a bad session.
    #[error("not logged in: {0}")]
    Unauthenticated(String),
    /// No such thing (or not yours).
    #[error("{0} not found")]
    NotFound(String),
    /// The action does not fit the current status.
    #[error("{0}")]
    Conflict(String),
    /// SQLite failed.
    #[error("the bank's database failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// The bank's PKI failed.
    #[error("the bank's PKI failed: {0}")]
    Pki(ServerError),
    /// A background task failed.
    #[error("internal task failed: {0}")]
    Internal(String),
}

impl BankError {
    /// The HTTP status and stable code. One exhaustive `match`.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            BankError::InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            BankError::Csr(inner) => inner.status_code(),
            BankError::SubjectMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "csr_subject_mismatch")
            }
            BankError::KeyInUse(_) => (StatusCode::CONFLICT, "csr_key_in_use"),
            BankError::BadSignature(_) => (StatusCode::UNPROCESSABLE_ENTITY, "signature_invalid"),
            BankError::LoginRefused(_) => (StatusCode::FORBIDDEN, "login_refused"),
            BankError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            BankError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            BankError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            BankError::Store(_) | BankError::Pki(_) | BankError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for BankError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        kilt_mock_server::error::error_response(status, code, &self, "bank")
    }
}

/// The bank's result type.
pub type Result<T, E = BankError> = std::result::Result<T, E>;
