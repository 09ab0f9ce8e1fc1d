//! A folder of 10,000 tokens: the module opens a token file only when a call needs more than its
//! presence, and still sees what other processes (`kilt-token`) do to any of them — a token
//! added, one pulled out and put back (opened by this process or not), one re-initialised.

mod common;

use common::{SO_PIN, USER_PIN, module_path, pin};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use std::path::Path;
use std::process::Command;

const TOKENS: u64 = 10_000;

fn rv<T: std::fmt::Debug>(r: Result<T, Error>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// `kilt-token` in another process, on the same folder.
fn kilt_token(dir: &Path, args: &[&str]) {
    let out = Command::new(module_path().with_file_name("kilt-token"))
        .args(args)
        .env("KILT_TOKEN_DIR", dir)
        .env("SO", SO_PIN)
        .env("PIN", USER_PIN)
        .output()
        .expect("kilt-token runs (cargo build --workspace first)");
    assert!(
        out.status.success(),
        "kilt-token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn slot_of(p: &Pkcs11, id: u64) -> Slot {
    p.get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| s.id() == id)
        .unwrap_or_else(|| panic!("no slot {id}"))
}

/// Every pending slot event (C_WaitForSlotEvent with CKF_DONT_BLOCK until none).
fn events(p: &Pkcs11) -> Vec<u64> {
    std::iter::from_fn(|| p.get_slot_event().unwrap().map(|s| s.id())).collect()
}

fn label(p: &Pkcs11, slot: Slot) -> String {
    p.get_token_info(slot)
        .unwrap()
        .label()
        .trim_end()
        .to_owned()
}

#[test]
fn ten_thousand_tokens_see_other_processes_changes() {
    let template = kilt_test_support::kilt_token("farm");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for i in 0..TOKENS {
        std::fs::copy(
            template.path().join("slot-0.kilt"),
            dir.join(format!("slot-{i}.kilt")),
        )
        .unwrap();
    }
    // SAFETY of set_var: before the module (the only reader) is loaded, in this test's own
    // process (one test in this file).
    unsafe { std::env::set_var("KILT_TOKEN_DIR", dir) };
    let p = Pkcs11::new(module_path()).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();

    // Every token and one spare, numbered by file, stable.
    let ids: Vec<u64> = p
        .get_slots_with_token()
        .unwrap()
        .iter()
        .map(Slot::id)
        .collect();
    assert_eq!(ids, (0..=TOKENS).collect::<Vec<_>>());
    assert!(
        !p.get_token_info(slot_of(&p, TOKENS))
            .unwrap()
            .token_initialized()
    );

    // Added by another process: in the spare slot, and a new spare after it.
    kilt_token(
        dir,
        &[
            "init",
            "--label",
            "added",
            "--so-pin-source",
            "env:SO",
            "--pin-source",
            "env:PIN",
        ],
    );
    assert_eq!(label(&p, slot_of(&p, TOKENS)), "added");
    assert_eq!(p.get_slots_with_token().unwrap().len() as u64, TOKENS + 2);

    // Pulled out while this process signs with it: the session sees the removal.
    let used = slot_of(&p, 42);
    let s = p.open_rw_session(used).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let (_, key) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(common::P256.to_vec())],
            &[Attribute::Sign(true)],
        )
        .unwrap();
    kilt_token(dir, &["unplug", "--slot", "42"]);
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, key, &[7; 32])),
        RvError::DeviceRemoved
    );
    // Pulled out without this process ever opening it: gone from the list, back when plugged.
    kilt_token(dir, &["unplug", "--slot", "4242"]);
    assert!(events(&p).contains(&4242), "the removal is a slot event");
    let present = p.get_slots_with_token().unwrap();
    assert!(!present.contains(&used) && !present.iter().any(|s| s.id() == 4242));
    assert!(!p.get_slot_info(slot_of(&p, 4242)).unwrap().token_present());
    assert_eq!(
        rv(p.get_token_info(slot_of(&p, 4242))),
        RvError::TokenNotPresent
    );
    kilt_token(dir, &["plug", "--slot", "4242"]);
    kilt_token(dir, &["plug", "--slot", "42"]);
    assert!(events(&p).contains(&4242), "the insertion is a slot event");
    assert!(p.get_slot_info(slot_of(&p, 4242)).unwrap().token_present());
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, key, &[7; 32])),
        RvError::SessionHandleInvalid
    );

    // A wrong PIN in another process shows in a token this process never opened.
    let out = Command::new(module_path().with_file_name("kilt-token"))
        .args(["keys", "--slot", "77", "--pin-source", "env:BAD"])
        .env("KILT_TOKEN_DIR", dir)
        .env("BAD", "0000000000")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong PIN is refused");
    let info = p.get_token_info(slot_of(&p, 77)).unwrap();
    assert!(info.user_pin_count_low() && !info.user_pin_locked());

    // Re-initialised by another process: one token this process has looked at, one it has not.
    assert_eq!(label(&p, slot_of(&p, 9_999)), "farm");
    for slot in ["9999", "5000"] {
        kilt_token(
            dir,
            &[
                "init",
                "--slot",
                slot,
                "--label",
                "renewed",
                "--so-pin-source",
                "env:SO",
                "--pin-source",
                "env:PIN",
            ],
        );
    }
    assert_eq!(label(&p, slot_of(&p, 9_999)), "renewed");
    assert_eq!(label(&p, slot_of(&p, 5_000)), "renewed");

    // Every token's info can be read (tokens looked at are closed again behind the reader).
    let initialised = p
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .filter(|s| p.get_token_info(*s).unwrap().token_initialized())
        .count() as u64;
    assert_eq!(initialised, TOKENS + 1);
    p.finalize().unwrap();
}
