//! `kilt-emulator`: an emulated JaCarta PKI token, in safe Rust.
//!
//! The token behaves like the device as the Tumar CSP sees it (DESIGN.md, "The token"): EC P-256
//! keys, ECDSA and ECDSA-SHA256, SHA-256; user and SO PINs with 10 tries whose counters are stored
//! before each comparison; sensitive, non-extractable private keys encrypted at rest under a
//! PIN-derived key; one SQLite file per token that several processes may share; and hardware
//! behaviour on demand (removal, device latency, injected faults).
//!
//! The C ABI lives in `kilt-pkcs11`; this crate speaks in domain types. The `kilt-token` CLI is
//! [`cli`].
//!
//! ```
//! use kilt_emulator::{Config, Emulator, Mechanism, Pin, UserType};
//! use cryptoki_sys::{CKM_EC_KEY_PAIR_GEN, CKM_ECDSA_SHA256, CKA_EC_PARAMS, CKA_TOKEN};
//!
//! let dir = tempfile::tempdir()?;
//! let emu = Emulator::new(Config::in_dir(dir.path()))?;
//! let slot = emu.slot_list(true)?[0]; // the spare slot holds a blank token
//! emu.init_token(slot, &Pin::from("00000000"), "demo")?;
//!
//! // The SO sets the user PIN, then the user signs.
//! let s = emu.open_session(slot, true, true)?;
//! emu.login(s, UserType::So, Some(&Pin::from("00000000")))?;
//! emu.init_pin(s, Some(&Pin::from("1234567890")))?;
//! emu.logout(s)?;
//! emu.login(s, UserType::User, Some(&Pin::from("1234567890")))?;
//! let params = kilt_emulator::crypto::P256_PARAMS.to_vec();
//! let (_pubkey, key) = emu.generate_key_pair(
//!     s,
//!     &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
//!     &[(CKA_EC_PARAMS, params), (CKA_TOKEN, vec![1])],
//!     &[(CKA_TOKEN, vec![1])],
//! )?;
//! emu.sign_init(s, &Mechanism::new(CKM_ECDSA_SHA256), key)?;
//! assert_eq!(emu.sign(s, b"hello")?.len(), 64);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod cli;
pub mod crypto;
pub mod emulator;
pub mod error;
pub mod object;
pub mod p11kit;
pub mod pin;
pub mod profile;
pub mod store;
pub mod token;

pub use emulator::{
    AttrResult, Config, Emulator, Mechanism, MechanismInfo, ObjectHandle, Operation, Part,
    PinStatus, SessionHandle, SessionInfo, SessionState, SlotId, SlotInfo, TokenInfo, UserType,
};
pub use error::{Error, Result};
pub use pin::{Pin, PinAgent, PinSource};
pub use profile::Profile;
