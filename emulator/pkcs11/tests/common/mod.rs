//! Fixtures shared by the tests that load the built `libkilt_pkcs11.so` through `cryptoki`.
//! One module load per test process: tests in a file share it and each makes its own token.
#![allow(dead_code)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

pub const SO_PIN: &str = "00000000";
pub const USER_PIN: &str = "1234567890";
/// DER of the prime256v1 OID.
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The built module: cargo puts it in target/<profile>, the test binary in target/<profile>/deps.
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let p = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("libkilt_pkcs11.so");
    assert!(
        p.exists(),
        "{} missing: build it with `cargo build -p kilt-pkcs11`",
        p.display()
    );
    p
}

pub struct Harness {
    pub pkcs11: Pkcs11,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The module of this test process, initialised on a fresh token folder.
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        // SAFETY of set_var: done once, before the module (the only reader) is loaded.
        unsafe { std::env::set_var("KILT_TOKEN_DIR", tmp.path()) };
        let pkcs11 = Pkcs11::new(module_path()).unwrap();
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        Harness {
            pkcs11,
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
        }
    })
}

pub fn pin(s: &str) -> AuthPin {
    AuthPin::new(s.into())
}

/// A new token with the national CA's default PINs, in the spare slot.
pub fn fresh_token(label: &str) -> Slot {
    let h = harness();
    let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let spare = h
        .pkcs11
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| !h.pkcs11.get_token_info(*s).unwrap().token_initialized())
        .expect("a spare slot");
    h.pkcs11.init_token(spare, &pin(SO_PIN), label).unwrap();
    let s = h.pkcs11.open_rw_session(spare).unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin(USER_PIN)).unwrap();
    s.logout().unwrap();
    spare
}

/// The emulator's control interface on the same token folder (as `kilt-token` would use it).
pub fn control(slot: Slot) -> Arc<kilt_emulator::token::Token> {
    let emu = kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(&harness().dir)).unwrap();
    emu.token(slot.id()).unwrap()
}

/// A logged-in R/W session.
pub fn user_session(slot: Slot) -> Session {
    let s = harness().pkcs11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    s
}

/// A P-256 key pair on the token.
pub fn key_pair(s: &Session, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Verify(true),
        ],
        &[
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
            Attribute::Sign(true),
        ],
    )
    .unwrap()
}

/// The public key of a pair as an independent `p256` verifier.
pub fn verifier(s: &Session, public: ObjectHandle) -> p256::ecdsa::VerifyingKey {
    let attrs = s
        .get_attributes(public, &[cryptoki::object::AttributeType::EcPoint])
        .unwrap();
    let Attribute::EcPoint(der) = &attrs[0] else {
        panic!("no EC point")
    };
    assert_eq!(
        &der[..2],
        &[0x04, 0x41],
        "CKA_EC_POINT is a DER OCTET STRING"
    );
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&der[2..]).unwrap()
}
