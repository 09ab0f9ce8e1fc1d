//! `kilt-ca`: a mock of a KISC-like certification authority for testing EDS key regeneration
//! clients (seed 004, DESIGN.md Flow 2). **Not for production keys.**
//!
//! - a root and an issuing CA (P-256) made on first start and kept in the data directory;
//! - login "По сертификату" by mutual TLS (the client's key may live in a PKCS#11 token), or
//!   by login and password;
//! - "Запрос на выпуск сертификата": PKCS#10 CSRs checked (signature, P-256 key, subject) and
//!   AUTH + SIGN certificates issued with the chain; RA statuses new → approved → issued or
//!   rejected; auto-approval by default;
//! - "Заявление" as a PDF with Cyrillic text; "СОС" as a CRL;
//! - pages in Русский / English / Қазақша; an admin listener (users, provisioning, approve,
//!   reject, revoke, clock, Pebble-style fault knobs); `/openapi.json`.
//!
//! Start it in-process on ephemeral ports, as tests and `kilt demo` do:
//!
//! ```no_run
//! # async fn run() -> Result<(), kilt_mock_ca::CaError> {
//! let dir = std::env::temp_dir().join("kilt-ca-example");
//! let server = kilt_mock_ca::serve(kilt_mock_ca::Config::ephemeral(&dir)).await?;
//! println!("API {} admin {}", server.url(), server.admin_url());
//! println!("trust this root:\n{}", server.ca().pki().root_pem());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub use kilt_mock_server::{db, pki};
pub mod ca;
pub mod cli;
pub mod error;
mod pages;
pub mod pdf;
pub mod server;
pub mod web;

pub use ca::{Ca, Settings, Snapshot};
pub use error::CaError;
pub use server::{Config, Server, serve};

/// The `info` of both listeners' OpenAPI documents (each generated from its handlers; see
/// [`kilt_mock_server::openapi`]).
pub fn api_info() -> utoipa::openapi::Info {
    utoipa::openapi::InfoBuilder::new()
        .title("kilt-ca")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "A KISC-like mock CA for testing EDS key regeneration clients. Not for production. \
             API and pages on the TLS listener; /admin/* on the separate admin listener.",
        ))
        .build()
}

/// The CA's data directory: `KILT_CA_DIR`, else `$XDG_DATA_HOME/kilt/ca`, else
/// `~/.local/share/kilt/ca`.
pub fn default_data_dir() -> std::path::PathBuf {
    kilt_mock_server::data_dir("KILT_CA_DIR", "ca")
}
