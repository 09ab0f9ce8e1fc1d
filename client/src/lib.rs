//! `kilt`, the EDS key-set regeneration client: both flows of DESIGN.md against any PKCS#11
//! token (the kilt emulator, SoftHSM2, a physical JaCarta through its vendor module).
//!
//! - [`bank::regenerate`] — Flow 1, the bank's "Регенерация комплекта ключей";
//! - [`ca::reissue`] — Flow 2, the CA's reissue with login "По сертификату" (mutual TLS with the
//!   key in the token);
//! - [`keys`] — deleting an old key set safely; [`journal`] — crash-safe resumption;
//! - [`demo`] — both flows against an emulated token and both mock servers in one process;
//! - [`p11::TokenKey`] — a P-256 key that stays in the token yet signs CSRs (`rcgen`) and TLS
//!   handshakes (`rustls`).
//!
//! ```no_run
//! use kilt_client::{bank, out::Out, token::{Selector, Token}};
//! # async fn run(opts: bank::BankOptions) -> Result<(), kilt_client::ClientError> {
//! let mut token = Token::open("target/debug/libkilt_pkcs11.so".as_ref(), &Selector::default())?;
//! token.login(&"env:PIN".parse().unwrap(), &mut |notice| eprintln!("{notice}"))?;
//! let done = bank::regenerate(&mut token, &opts, &Out::text(kilt_protocol::Lang::Ru)).await?;
//! println!("new certificate {}", done.new_serial);
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod bank;
pub mod ca;
pub mod check;
pub mod cli;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod flow;
pub mod journal;
pub mod keys;
pub mod out;
pub mod p11;
pub mod readers;
pub mod token;
pub mod uri;

pub use error::ClientError;
pub use p11::{P11Error, TokenKey};
