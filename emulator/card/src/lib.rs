//! `kilt-card`: the emulated JaCarta's second door, a smart card.
//!
//! One token, two doors: the PKCS#11 module and this card open the same token core and store, so
//! a PIN try, a lock, a key or a certificate made through one is there through the other. The card
//! answers ISO/IEC 7816-4 APDUs ([`apdu`]) for two applications: the JaCarta PKI application
//! ([`jacarta`], as far as anything public describes it) and PIV ([`piv`], NIST SP 800-73-4, the
//! profile Debian's unmodified OpenSC and yubico-piv-tool drive with P-256 keys). [`vpcd`] puts
//! it into vsmartcard's virtual reader, so a real `pcscd` and other people's middleware reach it.
//!
//! ```
//! use kilt_card::Card;
//! use kilt_emulator::{Config, Emulator, Pin};
//! use std::sync::Arc;
//!
//! let dir = tempfile::tempdir()?;
//! let emu = Arc::new(Emulator::new(Config::in_dir(dir.path()))?);
//! let slot = emu.slot_list(true)?[0];
//! emu.provision(slot, "card", &Pin::from("00000000"), &Pin::from("12345678"))?;
//!
//! let mut card = Card::new(emu, slot)?;
//! // SELECT the PIV application by its 5-byte prefix, then ask the PIN's state: 63CA, ten tries.
//! let r = card.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00]);
//! assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
//! assert_eq!(card.transmit(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xCA]);
//! // An instruction the card does not know.
//! assert_eq!(card.transmit(&[0x00, 0x02, 0x00, 0x00]), [0x6D, 0x00]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod apdu;
pub mod card;
pub mod door;
pub mod error;
pub mod jacarta;
pub mod piv;
pub mod tlv;
pub mod trace;
pub mod vpcd;

pub use apdu::{Command, Response, StatusWord};
pub use card::Card;
pub use error::CardError;
