//! The one error type of what both servers share (request bodies, the PKI, TLS, files), its HTTP
//! mapping in one `match`, the JSON error answer, and the layer that gives every refusal that shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kilt_protocol::ErrorBody;

/// What can go wrong in the shared parts; each server's own error wraps it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The body is not the JSON the endpoint takes.
    #[error("the request body is not valid: {0}; see /openapi.json for the expected shape")]
    BadBody(String),
    /// The body is larger than the endpoint takes.
    #[error("the request body is larger than {0} bytes; send one CSR per certificate, PEM")]
    TooLarge(usize),
    /// The body is not declared JSON.
    #[error("the request body must be JSON: send it with Content-Type: application/json")]
    NotJson,
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
    /// The CSR's key is not of an algorithm this server issues for (here, or for this profile).
    #[error("the {kind} CSR's key is {found}; it must be {expected}")]
    WrongKeyType {
        /// `auth`, `sign`, `first`, `new key`.
        kind: &'static str,
        /// What was found.
        found: String,
        /// What would be accepted.
        expected: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Pki(#[from] rcgen::Error),
    /// A GOST certificate could not be made (a key out of range, an encoding error).
    #[error("GOST certificate generation failed: {0}")]
    GostCertificate(String),
    /// A file of the data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS set-up failed.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    /// A value the server does not accept.
    #[error("{0}")]
    InvalidInput(String),
}

impl ServerError {
    /// The HTTP status and the stable error code. One exhaustive `match`.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ServerError::BadBody(_) => (StatusCode::BAD_REQUEST, "bad_body"),
            ServerError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ServerError::NotJson => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ServerError::InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            ServerError::MalformedCsr { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "csr_malformed"),
            ServerError::CsrSignatureInvalid { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "csr_signature_invalid")
            }
            ServerError::WrongKeyType { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "csr_key_type"),
            ServerError::Pki(_)
            | ServerError::GostCertificate(_)
            | ServerError::Io { .. }
            | ServerError::Tls(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A file of the data directory could not be read or written.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> ServerError {
        ServerError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        error_response(status, code, &self, "server")
    }
}

/// The shared parts' result type.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

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
