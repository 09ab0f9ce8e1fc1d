//! The CA's one error type, in domain terms, with its HTTP mapping in one `match`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kilt_protocol::ErrorBody;

/// Everything that can go wrong in the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The body is not the JSON the endpoint takes.
    #[error("the request body is not valid: {0}; see /openapi.json for the expected shape")]
    BadBody(String),
    /// The body is larger than the endpoint takes.
    #[error("the request body is larger than {0} bytes; send one CSR per certificate, PEM")]
    TooLarge(usize),
    /// A field has a value the CA does not accept.
    #[error("{0}")]
    InvalidInput(String),
    /// The PKCS#10 request does not parse.
    #[error(
        "the {kind} CSR is not a PKCS#10 request ({why}); send the PEM from your CSR generator"
    )]
    MalformedCsr {
        /// `auth` or `sign`.
        kind: &'static str,
        /// What the parser said.
        why: String,
    },
    /// The CSR's self-signature does not verify with the key it carries.
    #[error(
        "the {kind} CSR's signature does not match its public key; sign the CSR with the key it certifies"
    )]
    CsrSignatureInvalid {
        /// `auth` or `sign`.
        kind: &'static str,
    },
    /// Only EC P-256 keys are issued.
    #[error(
        "the {kind} CSR carries a {found} key; this CA issues only for EC P-256 (prime256v1) keys"
    )]
    WrongKeyType {
        /// `auth` or `sign`.
        kind: &'static str,
        /// What was found.
        found: String,
    },
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
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Pki(#[from] rcgen::Error),
    /// A file of the data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
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
    /// The body is not declared JSON.
    #[error("the request body must be JSON: send it with Content-Type: application/json")]
    NotJson,
    /// Too many wrong passwords for this login in a row: it waits.
    #[error(
        "too many wrong passwords for this login; try again in {retry_after} s, or log in by certificate"
    )]
    TooManyAttempts { retry_after: u64 },
    /// The TLS set-up failed.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

impl CaError {
    /// The HTTP status and the stable error code of this error. One exhaustive `match`, so a
    /// new variant cannot go out unmapped.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            CaError::BadBody(_) => (StatusCode::BAD_REQUEST, "bad_body"),
            CaError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            CaError::NotJson => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            CaError::InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            CaError::MalformedCsr { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "csr_malformed"),
            CaError::CsrSignatureInvalid { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "csr_signature_invalid")
            }
            CaError::WrongKeyType { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "csr_key_type"),
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
            | CaError::Pki(_)
            | CaError::Io { .. }
            | CaError::Pdf(_)
            | CaError::Internal(_)
            | CaError::Listen { .. }
            | CaError::Tls(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    pub fn io(path: &std::path::Path, source: std::io::Error) -> CaError {
        CaError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The JSON error answer of both servers. Client mistakes carry their detail; internal
/// failures (`code == "internal"`) are logged here and answered generically, so paths and SQL
/// never reach a client.
pub fn error_response(
    status: StatusCode,
    code: &str,
    error: &dyn std::fmt::Display,
    server: &str,
) -> Response {
    let message = if code == "internal" {
        tracing::error!(error = %error, "internal error");
        format!("the {server} failed internally; the operator can see why in its log")
    } else {
        error.to_string()
    };
    (
        status,
        axum::Json(ErrorBody {
            error: code.to_owned(),
            message,
        }),
    )
        .into_response()
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

/// The stable error code of a status the handlers did not answer themselves.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_input",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Every refusal a client reads as the one JSON shape `{error, message}`: axum's own answers
/// (a bad query, path, JSON or form, a wrong content type, a body too large, an unknown route or
/// method) come as plain text or nothing, so they are rewritten here, keeping status and headers.
/// JSON answers and pages for people (HTML) pass untouched. Both servers, every listener.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    let what = format!("{} {}", req.method(), req.uri().path());
    let response = next.run(req).await;
    let status = response.status();
    let kind = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(status.is_client_error() || status.is_server_error())
        || kind.starts_with("application/json")
        || kind.starts_with("text/html")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::NOT_FOUND) => {
            format!("there is no {what}; the routes are in /openapi.json")
        }
        (true, StatusCode::METHOD_NOT_ALLOWED) => {
            format!("{what} is not allowed; the Allow header lists the methods that are")
        }
        (true, s) => format!("{what}: {s}"),
    };
    let body = serde_json::to_vec(&ErrorBody {
        error: code_of(status).to_owned(),
        message,
    })
    .unwrap_or_default();
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(
        CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_axum_answers_itself_get_their_codes() {
        for (status, code) in [
            (StatusCode::NOT_FOUND, "not_found"),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            (StatusCode::REQUEST_TIMEOUT, "timeout"),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            (StatusCode::SERVICE_UNAVAILABLE, "internal"),
            (StatusCode::BAD_REQUEST, "bad_request"),
            (StatusCode::CONFLICT, "bad_request"),
        ] {
            assert_eq!(code_of(status), code, "{status}");
        }
    }
}
