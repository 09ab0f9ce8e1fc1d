//! Request helpers both servers' handlers use.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{Result, ServerError};
use crate::http::MAX_BODY;

/// JSON body whose rejections are the servers' errors (400 with the parser's reason, 413 for
/// oversize, 415 for another content type), not axum's plain-text ones.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ServerError::TooLarge(MAX_BODY))
            }
            Err(rejection) if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Err(ServerError::NotJson)
            }
            Err(rejection) => Err(ServerError::BadBody(rejection.body_text())),
        }
    }
}

/// `?lang=ru|kk|en` of the pages and messages; anything else, or none, is Russian.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

impl LangQuery {
    /// The language asked for.
    pub fn lang(&self) -> kilt_protocol::Lang {
        self.lang
            .as_deref()
            .and_then(kilt_protocol::Lang::from_code)
            .unwrap_or_default()
    }
}

/// The session token of a request: `Authorization: Bearer`, else the cookie `cookie`.
pub fn session_token(headers: &HeaderMap, cookie: &str) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == cookie)
        .map(|(_, v)| v.to_owned())
}

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A PEM document (a CA certificate) as `application/x-pem-file`.
pub fn pem(text: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        text.to_owned(),
    )
        .into_response()
}
