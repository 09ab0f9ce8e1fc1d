//! What an object's origin and the session's owner decide, through the emulator's API:
//! `CKA_LOCAL`, `CKA_KEY_GEN_MECHANISM`, `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE` of
//! generated against created keys (PKCS#11 2.40 §4.9, Table 25's footnotes), key generation
//! only by the logged-in user (§5.5: the SO has no keys), and `CKA_TRUSTED` settable by the SO only
//! (§4.6.3).

mod common;

use common::attr;
use cryptoki_sys::*;
use kilt_emulator::object::ulong;
use kilt_emulator::{Config, Emulator, Error, Mechanism, Pin, UserType};
use kilt_emulator::{ObjectHandle, SessionHandle};

const USER: &str = "1234567890";
const SO: &str = "00000000";

fn token() -> (tempfile::TempDir, Emulator) {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::new(Config::in_dir(dir.path())).unwrap();
    emu.provision(0, "origin", &Pin::from(SO), &Pin::from(USER))
        .unwrap();
    (dir, emu)
}

fn session(emu: &Emulator, who: UserType, pin: &str) -> SessionHandle {
    let h = emu.open_session(0, true, true).unwrap();
    emu.login(h, who, Some(&Pin::from(pin))).unwrap();
    h
}

fn p256_params() -> Vec<u8> {
    kilt_emulator::crypto::oid_der("1.2.840.10045.3.1.7")
}

/// A P-256 signing pair (session objects) by `h`'s owner.
fn generate(emu: &Emulator, h: SessionHandle) -> Result<(ObjectHandle, ObjectHandle), Error> {
    emu.generate_key_pair(
        h,
        &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
        &[(CKA_EC_PARAMS, p256_params())],
        &[(CKA_SIGN, vec![CK_TRUE])],
    )
}

#[test]
fn generated_and_created_keys_carry_their_origin() {
    let (_dir, emu) = token();
    let h = session(&emu, UserType::User, USER);
    let (_, generated) = generate(&emu, h).unwrap();
    let created = emu
        .create_object(
            h,
            &[
                (CKA_CLASS, ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ulong(CKK_EC)),
                (CKA_EC_PARAMS, p256_params()),
                (CKA_VALUE, vec![0x11; 32]),
                (CKA_SENSITIVE, vec![CK_TRUE]),
                (CKA_EXTRACTABLE, vec![CK_FALSE]),
            ],
        )
        .unwrap();
    let t = vec![CK_TRUE];
    let f = vec![CK_FALSE];
    // Born in the token, sensitive and non-extractable by default: both "always" flags hold.
    assert_eq!(attr(&emu, h, generated, CKA_LOCAL), t);
    assert_eq!(attr(&emu, h, generated, CKA_ALWAYS_SENSITIVE), t);
    assert_eq!(attr(&emu, h, generated, CKA_NEVER_EXTRACTABLE), t);
    assert_eq!(
        attr(&emu, h, generated, CKA_KEY_GEN_MECHANISM),
        ulong(CKM_EC_KEY_PAIR_GEN)
    );
    // Brought in from outside: its value was known before, whatever its flags say now.
    assert_eq!(attr(&emu, h, created, CKA_LOCAL), f);
    assert_eq!(attr(&emu, h, created, CKA_ALWAYS_SENSITIVE), f);
    assert_eq!(attr(&emu, h, created, CKA_NEVER_EXTRACTABLE), f);
    assert_eq!(
        attr(&emu, h, created, CKA_KEY_GEN_MECHANISM),
        ulong(CK_UNAVAILABLE_INFORMATION)
    );
}

#[test]
fn the_so_makes_no_keys_and_only_the_so_trusts_a_certificate() {
    let (_dir, emu) = token();
    let nobody = emu.open_session(0, true, true).unwrap();
    let generated = generate(&emu, nobody);
    assert!(
        matches!(generated, Err(Error::NotLoggedIn)),
        "{generated:?}"
    );
    emu.close_session(nobody).unwrap();
    let so = session(&emu, UserType::So, SO);
    let generated = generate(&emu, so);
    assert!(
        matches!(generated, Err(Error::NotLoggedIn)),
        "{generated:?}"
    );
    let der = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gost/tests/data/root-2004.der"
    ))
    .unwrap();
    let certificate = |trusted: bool| {
        vec![
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
            (CKA_SUBJECT, b"subject".to_vec()),
            (CKA_VALUE, der.clone()),
            (CKA_TRUSTED, vec![if trusted { CK_TRUE } else { CK_FALSE }]),
        ]
    };
    let trusted = emu.create_object(so, &certificate(true)).unwrap();
    assert_eq!(attr(&emu, so, trusted, CKA_TRUSTED), vec![CK_TRUE]);
    emu.logout(so).unwrap();
    let user = session(&emu, UserType::User, USER);
    let refused = emu.create_object(user, &certificate(true));
    assert!(
        matches!(refused, Err(Error::AttributeReadOnly(CKA_TRUSTED))),
        "{refused:?}"
    );
    emu.create_object(user, &certificate(false)).unwrap();
}
