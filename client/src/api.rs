//! HTTP to the bank and the CA: JSON in and out, retries with backoff for what is worth
//! retrying, and one clear error for the rest.
//!
//! Retried: connection failures, timeouts, 5xx and 429 (honouring `Retry-After`, RFC 9110
//! §10.2.3), up to [`Retry::attempts`]. Not retried: other 4xx (the server's reason is passed
//! on) and unreadable bodies. Every step the flows POST is safe to repeat: the bank's are
//! idempotent, and the CA's one non-idempotent request is looked up before it is repeated.

use std::time::Duration;

use kilt_protocol::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ClientError, Result};

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Tries in all.
    pub attempts: u32,
    /// First pause; doubled each time up to `max_delay`.
    pub first_delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 6,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
            timeout: Duration::from_secs(15),
        }
    }
}

/// A server's API.
#[derive(Clone, Debug)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    server: &'static str,
    retry: Retry,
    bearer: Option<String>,
}

/// A reqwest client with exactly this rustls configuration.
pub fn http_client(tls: rustls::ClientConfig, retry: Retry) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(retry.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client with a preconfigured rustls backend builds")
}

/// A TLS configuration trusting only `roots` (DER), without client authentication.
pub fn tls_trusting(roots: &[Vec<u8>]) -> Result<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store
            .add(rustls_pki_types::CertificateDer::from(r.clone()))
            .map_err(|e| ClientError::BadCertificate(format!("the trusted root: {e}")))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::BadCertificate(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth())
}

impl Api {
    /// `server` names it in messages ("bank", "CA").
    pub fn new(server: &'static str, base: &str, client: reqwest::Client, retry: Retry) -> Api {
        Api {
            client,
            base: base.trim_end_matches('/').to_owned(),
            server,
            retry,
            bearer: None,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same API without retries, for a request that must not be sent twice as it is (a
    /// signed one-time challenge): the caller retries the whole exchange instead.
    pub fn once(&self) -> Api {
        Api {
            retry: Retry {
                attempts: 1,
                ..self.retry
            },
            ..self.clone()
        }
    }

    /// The retry settings.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// Sends `Authorization: Bearer` from now on.
    pub fn set_bearer(&mut self, token: String) {
        self.bearer = Some(token);
    }

    /// GET `path` as JSON.
    pub async fn get<T: DeserializeOwned>(&self, what: &'static str, path: &str) -> Result<T> {
        self.call(what, Method::GET, path, None::<&()>).await
    }

    /// POST `body` to `path`; the answer as JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(what, Method::POST, path, Some(body)).await
    }

    /// PUT `body` to `path`; the answer as JSON.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(what, Method::PUT, path, Some(body)).await
    }

    /// GET raw bytes (a PDF).
    pub async fn get_bytes(&self, what: &'static str, path: &str) -> Result<Vec<u8>> {
        let resp = self.send(what, Method::GET, path, None::<&()>).await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| self.unreachable(e))
    }

    /// Polls `path` every `every` while `waiting(&current)`, with `bar` spinning, as the
    /// seeds' pages are refreshed while a request is processed. After `limit` it gives up with
    /// `still(&current)` + "after N s": the journal lets a later rerun wait on.
    #[allow(clippy::too_many_arguments)]
    pub async fn poll_while<T: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        mut current: T,
        waiting: impl Fn(&T) -> bool,
        still: impl Fn(&T) -> String,
        every: Duration,
        limit: Duration,
        bar: indicatif::ProgressBar,
    ) -> Result<T> {
        let start = std::time::Instant::now();
        while waiting(&current) {
            if start.elapsed() > limit {
                bar.finish_and_clear();
                return Err(self.unreachable(format!(
                    "{} after {} s; rerun later: the journal resumes",
                    still(&current),
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(every).await;
            current = self.get(what, path).await?;
        }
        bar.finish_and_clear();
        Ok(current)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let resp = self.send(what, method, path, body).await?;
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Malformed {
            server: self.server,
            what,
            reason: format!(
                "{e}; it began {:?}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(40)
                    .collect::<String>()
            ),
        })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Unreachable {
            server: self.server,
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    async fn send<B: Serialize>(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut delay = self.retry.first_delay;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            let mut req = self.client.request(method.clone(), &url);
            if let Some(t) = &self.bearer {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let mut wait = delay;
            match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    if let Some(secs) = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        wait = Duration::from_secs(secs).min(self.retry.max_delay);
                    }
                    last = format!("{} {}", resp.status().as_u16(), message(resp).await);
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    return Err(ClientError::Refused {
                        server: self.server,
                        what,
                        status,
                        message: message(resp).await,
                    });
                }
                Err(e) => last = describe(&e),
            }
            tracing::debug!(server = self.server, what, attempt, %last, "retrying");
            if attempt < self.retry.attempts {
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(self.retry.max_delay);
            }
        }
        Err(self.unreachable(format!("{last} (after {} tries)", self.retry.attempts)))
    }
}

/// The server's one-line reason from an `ErrorBody`, else the body's start.
async fn message(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => b.message,
        Err(_) => text.chars().take(200).collect(),
    }
}

/// reqwest's error with its causes (connection refused, reset, timeout), in one line.
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
