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

/// Which listener a document describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The API and pages (TLS).
    Public,
    /// The admin listener (plain HTTP, loopback).
    Admin,
}

/// Whether `path` is served by the admin listener.
fn is_admin_path(path: &str) -> bool {
    path.starts_with("/admin") || path.starts_with("/operator")
}

/// `/openapi.json` of one listener: the server's OpenAPI 3.0 document cut to that listener's
/// paths (`/openapi.json` is on both), with that listener — as the request's `Host` reached it —
/// as its one `servers` entry, so a tool pointed at the document tests the right listener.
pub fn openapi_for(
    document: &str,
    listener: Listener,
    headers: &HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(document) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the OpenAPI document does not parse",
        )
            .into_response();
    };
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        paths.retain(|path, _| {
            path == "/openapi.json" || is_admin_path(path) == (listener == Listener::Admin)
        });
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = match listener {
        Listener::Public => "https",
        Listener::Admin => "http",
    };
    doc["servers"] = serde_json::json!([{ "url": format!("{scheme}://{host}") }]);
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

/// The `/openapi.json` route of a listener (see [`openapi_for`]).
pub fn openapi_route<S: Clone + Send + Sync + 'static>(
    document: &'static str,
    listener: Listener,
) -> axum::routing::MethodRouter<S> {
    axum::routing::get(move |headers: HeaderMap| async move {
        openapi_for(document, listener, &headers)
    })
}
