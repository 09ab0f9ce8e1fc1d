//! `kilt-bank`: a mock of a BS-Client-like bank for testing EDS key-set regeneration clients
//! (seed 000, DESIGN.md Flow 1). **Not for production keys.**
//!
//! - its own CA made on first start — P-256, or GOST in the national CA's shape with
//!   `--algorithm gost2004|gost2015-512` (TLS stays P-256); subscribers ("абонент ЭЦП") with a profile each:
//!   name (e.g. `9418_Абонент`), 20-hex identifier, `Tumar CSP`, certificate, status;
//! - login by signing a one-time challenge with the profile's current key; a banner of
//!   critical profiles (certificate ending within 30 days);
//! - the regeneration of seed 000 through the statuses of DESIGN.md's table: "Новый",
//!   "Принят банком" (CSR of the new key signed by the old key), "Получен новый сертификат"
//!   (after a delay or the operator's approval), "В эксплуатации" (activated by the new key),
//!   or "Отвергнут банком" with a reason; retries are idempotent;
//! - pages in Русский / Қазақша / English, an operator page, an admin listener with the clock
//!   and Pebble-style fault knobs, `/openapi.json`.
//!
//! ```no_run
//! # async fn run() -> Result<(), kilt_mock_bank::BankError> {
//! let dir = std::env::temp_dir().join("kilt-bank-example");
//! let server = kilt_mock_bank::serve(kilt_mock_bank::Config::ephemeral(&dir)).await?;
//! println!("API {} operator {}/operator", server.url(), server.admin_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod bank;
pub mod cli;
pub mod error;
pub mod server;
pub mod web;

pub use bank::{Bank, Settings, Snapshot};
pub use error::BankError;
pub use server::{Config, Server, serve};

/// The `info` of both listeners' OpenAPI documents (each generated from its handlers; see
/// [`kilt_mock_server::openapi`]).
pub fn api_info() -> utoipa::openapi::Info {
    utoipa::openapi::InfoBuilder::new()
        .title("kilt-bank")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "A BS-Client-like mock bank for testing EDS key regeneration clients. Not for \
             production. API and customer pages on the TLS listener; /admin/* and /operator on \
             the separate admin listener.",
        ))
        .build()
}
