//! The regeneration client `kilt` (issue 6): for now, the piece both flows and the mock CA's
//! tests need first — a key that stays in a PKCS#11 token yet signs CSRs (`rcgen`) and TLS
//! handshakes (`rustls`).
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
//! use cryptoki::object::{Attribute, ObjectClass};
//! use cryptoki::session::UserType;
//! use cryptoki::types::AuthPin;
//! use kilt_client::p11::TokenKey;
//!
//! let pkcs11 = Pkcs11::new("target/debug/libkilt_pkcs11.so").unwrap();
//! pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
//! let slot = pkcs11.get_slots_with_token().unwrap()[0];
//! let session = pkcs11.open_rw_session(slot).unwrap();
//! session.login(UserType::User, Some(&AuthPin::new("1234567890".into()))).unwrap();
//! let session = Arc::new(Mutex::new(session));
//! let key = TokenKey::find(&pkcs11, slot, session, b"auth-1").unwrap();
//! // `key` is an `rcgen::SigningKey` (CSRs) and, wrapped in an `Arc`, a
//! // `rustls::sign::SigningKey` (TLS client authentication).
//! let _ = key.public_point();
//! ```

pub mod p11;

pub use p11::{P11Error, TokenKey};
