//! `kilt-mock-server`: what the mock CA (`kilt-ca`) and the mock bank (`kilt-bank`) share — the
//! TLS and admin listeners with their timeouts and fault knobs, the SQLite opener and the
//! admin-movable clock, the test PKI, the one JSON error answer, and request helpers.
//!
//! A server built on it serves its API over TLS and its admin routes on loopback:
//!
//! ```no_run
//! # async fn run() -> Result<(), kilt_mock_server::error::ServerError> {
//! use kilt_mock_server::{http, pki};
//! let dir = std::env::temp_dir().join("kilt-server-example");
//! let pki = pki::Pki::load_or_create(&dir, time::OffsetDateTime::now_utc(), pki::PkiNames::CA)?;
//! let tls = http::tls_config(&pki, http::ClientAuth::None)?;
//! let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let (_stop, stopped) = tokio::sync::watch::channel(false);
//! let faults = std::sync::Arc::new(std::sync::RwLock::new(kilt_protocol::Faults::default()));
//! tokio::spawn(http::accept_tls(
//!     api,
//!     tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls)),
//!     axum::Router::new(),
//!     faults,
//!     http::Timeouts::default(),
//!     stopped,
//! ));
//! # Ok(()) }
//! ```

pub mod db;
pub mod error;
pub mod gost_ca;
pub mod http;
pub mod openapi;
pub mod pki;
pub mod steer;
pub mod web;

/// A server's data directory: `$env`, else `$XDG_DATA_HOME/kilt/<name>`, else
/// `~/.local/share/kilt/<name>`.
pub fn data_dir(env: &str, name: &str) -> std::path::PathBuf {
    if let Some(d) = std::env::var_os(env).filter(|d| !d.is_empty()) {
        return d.into();
    }
    std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share"))
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("kilt")
        .join(name)
}
