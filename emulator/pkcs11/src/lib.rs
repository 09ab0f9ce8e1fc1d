//! `libkilt_pkcs11.so`: the PKCS#11 C ABI of the kilt emulated JaCarta token.
//!
//! All `unsafe` code of kilt lives in this crate. Every export goes through [`guard`], which
//! catches panics (a panic crossing `extern "C"` aborts the host since Rust 1.81) and turns the
//! core's domain errors into `CK_RV` with one exhaustive `match` ([`rv_of`]). Pointers and lengths
//! are checked by the helpers in [`abi`] before anything is read or written, and every output
//! buffer follows the length protocol of PKCS#11 2.40 §5.2.
//!
//! Load it like any module:
//!
//! ```no_run
//! use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
//! let pkcs11 = Pkcs11::new("target/debug/libkilt_pkcs11.so")?;
//! pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
//! for slot in pkcs11.get_slots_with_token()? {
//!     println!("{}", pkcs11.get_token_info(slot)?.label());
//! }
//! # Ok::<(), cryptoki::error::Error>(())
//! ```
//!
//! Tokens live in `KILT_TOKEN_DIR`; logs go to stderr only when `KILT_LOG` is set (e.g.
//! `KILT_LOG=debug`), never to stdout.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_snake_case, clippy::missing_safety_doc)]

pub mod abi;
mod fns;

use cryptoki_sys::*;
use kilt_emulator::{Emulator, Error};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

pub use fns::*;

/// The emulator of this process between `C_Initialize` and `C_Finalize`. Every call reads it;
/// an `ArcSwap` load writes only the calling thread's own slot, where a lock or an `Arc` clone
/// would make every call of every thread write one shared cache line (two threads signing
/// scaled 1.72–1.83× with that, against 1.9× for aws-lc-rs alone).
static STATE: arc_swap::ArcSwapOption<Emulator> = arc_swap::ArcSwapOption::const_empty();

/// Held while `STATE` changes (`C_Initialize`, `C_Finalize`) and across `fork()`.
static LIFECYCLE: Mutex<()> = Mutex::new(());

/// The parent's emulators a forked child inherited; the child's `C_Initialize` closes their
/// token files and forgets them (never dropped: their threads and sessions are the parent's).
static LEFT_BY_FORK: std::sync::Mutex<Vec<Arc<Emulator>>> = std::sync::Mutex::new(Vec::new());

/// Run by `C_Initialize`: see [`LEFT_BY_FORK`].
fn release_after_fork() {
    for e in std::mem::take(&mut *LEFT_BY_FORK.lock().unwrap_or_else(|e| e.into_inner())) {
        e.release_after_fork();
        std::mem::forget(e);
    }
}

/// Holds [`LIFECYCLE`] for a caller that changes [`STATE`].
pub(crate) fn lifecycle() -> std::sync::MutexGuard<'static, ()> {
    LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner())
}

std::thread_local! {
    /// [`LIFECYCLE`], held by the forking thread from just before `fork()` until just after.
    static HELD: std::cell::RefCell<Option<std::sync::MutexGuard<'static, ()>>> =
        const { std::cell::RefCell::new(None) };
}

/// PKCS#11 2.40 §5.5.1 (3.0 §6.7.7): a forked child starts uninitialised and must call `C_Initialize`
/// (which then succeeds, as SoftHSM2's fork detection does). [`LIFECYCLE`] is held across
/// `fork()` so the child never inherits it locked by a thread that does not exist there. The child sets the
/// parent's emulator aside ([`LEFT_BY_FORK`]) without running its destructor (its threads and
/// sessions are the parent's); the child's `C_Initialize` closes its token files and forgets it.
fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn prepare() {
        let g = lifecycle();
        HELD.with(|h| *h.borrow_mut() = Some(g));
    }
    extern "C" fn parent() {
        HELD.with(|h| drop(h.borrow_mut().take()));
    }
    extern "C" fn child() {
        HELD.with(|h| {
            if let Some(_g) = h.borrow_mut().take()
                && let Some(parents) = STATE.swap(None)
            {
                LEFT_BY_FORK
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(parents);
            }
        });
    }
    // SAFETY: the handlers are plain functions of this module, which is never unloaded
    // (build.rs links it with `-z nodelete`).
    ONCE.call_once(|| unsafe {
        libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
    });
}

/// A failed call: the return value to give the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rv(pub CK_RV);

impl From<Error> for Rv {
    fn from(e: Error) -> Rv {
        tracing::debug!(error = %e, "call failed");
        Rv(rv_of(&e))
    }
}

/// The one mapping from the token's errors to PKCS#11 return values (2.40 §5.1). Exhaustive: a
/// new error variant does not compile until it has a code here.
pub fn rv_of(e: &Error) -> CK_RV {
    match e {
        Error::SlotNotFound(_) => CKR_SLOT_ID_INVALID,
        Error::TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
        // §5.1.2: the token was removed from its slot during the execution of the function.
        Error::DeviceRemoved => CKR_DEVICE_REMOVED,
        Error::TokenNotInitialized => CKR_TOKEN_NOT_RECOGNIZED,
        Error::SessionNotFound => CKR_SESSION_HANDLE_INVALID,
        Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
        Error::ReadOnlySessionExists => CKR_SESSION_READ_ONLY_EXISTS,
        Error::SoSessionExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
        Error::SessionsOpen => CKR_SESSION_EXISTS,
        Error::ParallelSessionNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        Error::NotLoggedIn => CKR_USER_NOT_LOGGED_IN,
        Error::AlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
        Error::AnotherUserLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        Error::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
        Error::PinIncorrect { .. } => CKR_PIN_INCORRECT,
        Error::PinLocked => CKR_PIN_LOCKED,
        Error::PinLenRange { .. } => CKR_PIN_LEN_RANGE,
        Error::PinInvalid => CKR_PIN_INVALID,
        // The user closed the PIN window (§5.1.4: the function was cancelled).
        Error::PinEntryCancelled | Error::PinSourceUnavailable(_) => CKR_FUNCTION_CANCELED,
        Error::PinMissing => CKR_ARGUMENTS_BAD,
        Error::ObjectNotFound => CKR_OBJECT_HANDLE_INVALID,
        Error::KeyNotFound => CKR_KEY_HANDLE_INVALID,
        Error::AttributeTypeInvalid(_) => CKR_ATTRIBUTE_TYPE_INVALID,
        Error::AttributeValueInvalid(_) => CKR_ATTRIBUTE_VALUE_INVALID,
        Error::AttributeReadOnly(_) => CKR_ATTRIBUTE_READ_ONLY,
        Error::TemplateIncomplete(_) => CKR_TEMPLATE_INCOMPLETE,
        Error::TemplateInconsistent(_) => CKR_TEMPLATE_INCONSISTENT,
        Error::ActionProhibited => CKR_ACTION_PROHIBITED,
        Error::MechanismInvalid(_) => CKR_MECHANISM_INVALID,
        Error::MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
        Error::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
        Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
        Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
        Error::OperationActive => CKR_OPERATION_ACTIVE,
        Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
        // CKM_ECDSA is single-part (curr. mech. Table 2); SoftHSM2 answers the same.
        Error::SinglePartOnly => CKR_FUNCTION_NOT_SUPPORTED,
        Error::DataLenRange => CKR_DATA_LEN_RANGE,
        Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
        Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
        Error::RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
        Error::DeviceError(_) | Error::Store(_) => CKR_DEVICE_ERROR,
        Error::DeviceMemory => CKR_DEVICE_MEMORY,
        Error::Profile(_) => CKR_GENERAL_ERROR,
        Error::Finalizing => CKR_CRYPTOKI_NOT_INITIALIZED,
    }
}

/// Runs one exported call: panics become `CKR_GENERAL_ERROR`, errors their `CK_RV`.
pub fn guard(name: &'static str, f: impl FnOnce() -> Result<(), Rv>) -> CK_RV {
    let _span = tracing::trace_span!("pkcs11", call = name).entered();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(Rv(rv))) => rv,
        Err(_) => {
            tracing::error!(call = name, "panic caught at the PKCS#11 boundary");
            CKR_GENERAL_ERROR
        }
    }
}

/// The emulator for the length of one call (see [`STATE`]).
pub(crate) struct Emu(arc_swap::Guard<Option<Arc<Emulator>>>);

impl std::ops::Deref for Emu {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        // Checked present by `emu()`, and a guard's value never changes.
        self.0
            .as_deref()
            .unwrap_or_else(|| unreachable!("emu() checked it"))
    }
}

/// The emulator, or `CKR_CRYPTOKI_NOT_INITIALIZED`.
fn emu() -> Result<Emu, Rv> {
    let g = STATE.load();
    if g.is_none() {
        return Err(Rv(CKR_CRYPTOKI_NOT_INITIALIZED));
    }
    Ok(Emu(g))
}

fn init_logging() {
    // Off unless asked for; to stderr, never stdout (the host may be speaking a protocol there).
    if let Ok(filter) = std::env::var("KILT_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_general_error() {
        assert_eq!(guard("test", || panic!("boom")), CKR_GENERAL_ERROR);
        assert_eq!(guard("test", || Err(Rv(CKR_PIN_LOCKED))), CKR_PIN_LOCKED);
        assert_eq!(guard("test", || Ok(())), CKR_OK);
    }

    #[test]
    fn domain_errors_map_to_their_codes() {
        assert_eq!(
            rv_of(&Error::PinIncorrect { tries_left: 3 }),
            CKR_PIN_INCORRECT
        );
        assert_eq!(rv_of(&Error::DeviceRemoved), CKR_DEVICE_REMOVED);
        assert_eq!(
            rv_of(&Error::AttributeReadOnly(CKA_SENSITIVE)),
            CKR_ATTRIBUTE_READ_ONLY
        );
    }
}
