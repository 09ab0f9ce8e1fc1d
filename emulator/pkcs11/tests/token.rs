//! The built module, driven through `cryptoki` as applications drive it.

mod common;

use common::*;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use kilt_emulator::profile::TimedOp;
use kilt_emulator::token::FaultKind;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

fn rv<T: std::fmt::Debug>(r: Result<T, Error>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[test]
fn the_token_says_it_is_a_jacarta() {
    let slot = fresh_token("identity");
    let p = &harness().pkcs11;
    let t = p.get_token_info(slot).unwrap();
    assert_eq!(t.manufacturer_id(), "Aladdin R.D.");
    assert_eq!(t.model(), "JaCarta PKI");
    assert_eq!(t.label(), "identity");
    assert!(t.user_pin_initialized() && t.login_required() && t.rng());
    let si = p.get_slot_info(slot).unwrap();
    // Named as pcsc-lite names the n-th reader of a kind ("… 00 00", "… 01 00", …).
    assert_eq!(
        si.slot_description(),
        format!("Aladdin R.D. JaCarta {:02X} 00", slot.id())
    );
    assert!(si.removable_device() && si.token_present());
    let all: Vec<String> = p
        .get_all_slots()
        .unwrap()
        .into_iter()
        .map(|s| p.get_slot_info(s).unwrap().slot_description().to_owned())
        .collect();
    let distinct: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "{all:?}");
    let mechs = p.get_mechanism_list(slot).unwrap();
    for m in [
        cryptoki::mechanism::MechanismType::ECC_KEY_PAIR_GEN,
        cryptoki::mechanism::MechanismType::ECDSA,
        cryptoki::mechanism::MechanismType::ECDSA_SHA256,
        cryptoki::mechanism::MechanismType::SHA256,
    ] {
        assert!(mechs.contains(&m), "{m} missing");
    }
}

#[test]
fn signatures_verify_with_an_independent_verifier_single_and_multi_part() {
    let slot = fresh_token("sign");
    let s = user_session(slot);
    let (public, private) = key_pair(&s, b"\x01");
    let vk = verifier(&s, public);
    let msg = b"payment order 1".repeat(100);
    let digest = Sha256::digest(&msg);

    let sig = s.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    vk.verify_prehash(&digest, &sig).unwrap();

    let sig = s.sign(&Mechanism::EcdsaSha256, private, &msg).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    vk.verify_prehash(&digest, &sig).unwrap();

    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    for chunk in msg.chunks(7) {
        s.sign_update(chunk).unwrap();
    }
    let multi = s.sign_final().unwrap();
    vk.verify_prehash(
        &digest,
        &p256::ecdsa::Signature::from_slice(&multi).unwrap(),
    )
    .unwrap();
    // And the token's own verifier agrees, and refuses a changed message.
    s.verify(&Mechanism::EcdsaSha256, public, &msg, &multi)
        .unwrap();
    assert_eq!(
        rv(s.verify(&Mechanism::EcdsaSha256, public, b"other", &multi)),
        RvError::SignatureInvalid
    );
    // CKM_ECDSA is single-part only.
    s.sign_init(&Mechanism::Ecdsa, private).unwrap();
    assert_eq!(rv(s.sign_update(b"x")), RvError::FunctionNotSupported);
}

#[test]
fn private_keys_are_hidden_before_login_and_never_revealed() {
    let slot = fresh_token("hidden");
    let s = user_session(slot);
    let (_, private) = key_pair(&s, b"\x02");
    // cryptoki drops unavailable attributes from get_attributes; the info call shows why.
    assert!(matches!(
        s.get_attribute_info(private, &[AttributeType::Value])
            .unwrap()[..],
        [cryptoki::object::AttributeInfo::Sensitive]
    ));
    assert!(
        s.get_attributes(private, &[AttributeType::Value])
            .unwrap()
            .is_empty()
    );
    let attrs = s
        .get_attributes(
            private,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
            ],
        )
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::NeverExtractable(true)
        ]
    );
    s.logout().unwrap();
    let found = s
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap();
    assert!(found.is_empty(), "private keys are invisible to the public");
    // Signing with a key the caller cannot see is a bad *key* handle (§5.11 C_SignInit).
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &[0; 32])),
        RvError::KeyHandleInvalid
    );
}

#[test]
fn wrong_pins_count_down_the_tenth_locks_and_the_so_unblocks() {
    let slot = fresh_token("pins");
    let p = &harness().pkcs11;
    let s = p.open_rw_session(slot).unwrap();
    for i in 1..=9 {
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin("0000")))),
            RvError::PinIncorrect
        );
        let t = p.get_token_info(slot).unwrap();
        assert!(t.user_pin_count_low(), "after {i} wrong");
        assert_eq!(
            t.user_pin_final_try(),
            i == 9,
            "final try flag after {i} wrong"
        );
        assert!(!t.user_pin_locked());
    }
    // The 10th wrong PIN uses the last try, as the device's 63 C0; then the PIN is locked.
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("0000")))),
        RvError::PinIncorrect
    );
    assert!(p.get_token_info(slot).unwrap().user_pin_locked());
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::PinLocked
    );
    // The SO sets a new user PIN, which unblocks it.
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin("4321abcd")).unwrap();
    s.logout().unwrap();
    let t = p.get_token_info(slot).unwrap();
    assert!(!t.user_pin_locked() && !t.user_pin_count_low());
    s.login(UserType::User, Some(&pin("4321abcd"))).unwrap();
    // A wrong PIN of an impossible length is refused without using a try.
    s.logout().unwrap();
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("12")))),
        RvError::PinLenRange
    );
    assert!(!p.get_token_info(slot).unwrap().user_pin_count_low());
}

#[test]
fn session_states_follow_the_login_rules() {
    let slot = fresh_token("states");
    let p = &harness().pkcs11;
    let ro = p.open_ro_session(slot).unwrap();
    let rw = p.open_rw_session(slot).unwrap();
    // §5.6: the SO cannot log in while a read-only session exists.
    assert_eq!(
        rv(rw.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::SessionReadOnlyExists
    );
    rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    // Login is per application: the other session is logged in too.
    assert_eq!(
        ro.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoUser
    );
    assert_eq!(
        rv(ro.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserAlreadyLoggedIn
    );
    // A token object cannot be created in a read-only session.
    assert_eq!(
        rv(ro.create_object(&[Attribute::Class(ObjectClass::DATA), Attribute::Token(true),])),
        RvError::SessionReadOnly
    );
    drop(ro);
    drop(rw);
    // Closing the last session logged the application out.
    let again = p.open_ro_session(slot).unwrap();
    assert_eq!(
        again.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoPublic
    );
}

#[test]
fn removal_mid_session_gives_device_removed_and_reinsertion_is_an_event() {
    let slot = fresh_token("removal");
    let p = &harness().pkcs11;
    let s = user_session(slot);
    let (_, private) = key_pair(&s, b"\x03");
    let ctl = control(slot);
    ctl.set_present(false).unwrap();
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &[1; 32])),
        RvError::DeviceRemoved
    );
    assert!(!p.get_slots_with_token().unwrap().contains(&slot));
    assert_eq!(rv(p.open_rw_session(slot)), RvError::TokenNotPresent);
    assert_eq!(rv(p.get_token_info(slot)), RvError::TokenNotPresent);
    ctl.set_present(true).unwrap();
    // A blocking wait sees the insertion.
    assert_eq!(p.wait_for_slot_event().unwrap(), slot);
    // The old session was closed with the removal; the login is gone too.
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &[1; 32])),
        RvError::SessionHandleInvalid
    );
    let s2 = p.open_rw_session(slot).unwrap();
    assert_eq!(
        s2.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RwPublic
    );
    // Keys survive removal.
    s2.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(
        s2.sign(&Mechanism::Ecdsa, private, &[1; 32]).unwrap().len(),
        64
    );
}

#[test]
fn sessions_on_several_threads_sign_concurrently() {
    let slot = fresh_token("threads");
    let s = user_session(slot);
    let (public, private) = key_pair(&s, b"\x04");
    let vk = verifier(&s, public);
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            scope.spawn(move || {
                // Session is Send, not Sync: one session per thread.
                let own = harness().pkcs11.open_ro_session(slot).unwrap();
                for i in 0..100u8 {
                    let digest = [t ^ i; 32];
                    let sig = own.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
                    vk.verify_prehash(&digest, &p256::ecdsa::Signature::from_slice(&sig).unwrap())
                        .unwrap();
                }
            });
        }
    });
}

#[test]
fn injected_faults_fail_exactly_the_next_operations_and_panics_stay_inside() {
    let slot = fresh_token("faults");
    let s = user_session(slot);
    let (_, private) = key_pair(&s, b"\x05");
    let ctl = control(slot);
    ctl.inject_fault(TimedOp::Sign, 2, FaultKind::DeviceError)
        .unwrap();
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &[1; 32])),
        RvError::DeviceError
    );
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &[1; 32])),
        RvError::DeviceError
    );
    assert_eq!(
        s.sign(&Mechanism::Ecdsa, private, &[1; 32]).unwrap().len(),
        64
    );
    // A panic inside the library becomes CKR_GENERAL_ERROR; the host process lives on.
    ctl.inject_fault(TimedOp::Sign, 1, FaultKind::Panic)
        .unwrap();
    assert_eq!(
        rv(s.sign(&Mechanism::Ecdsa, private, &[1; 32])),
        RvError::GeneralError
    );
    assert_eq!(
        s.sign(&Mechanism::Ecdsa, private, &[1; 32]).unwrap().len(),
        64
    );
}

#[test]
fn objects_keep_their_attribute_rules() {
    let slot = fresh_token("objects");
    let s = user_session(slot);
    let data = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"note".to_vec()),
            Attribute::Value(b"hello".to_vec()),
        ])
        .unwrap();
    assert_eq!(
        s.get_attributes(data, &[AttributeType::Value]).unwrap(),
        vec![Attribute::Value(b"hello".to_vec())]
    );
    assert_eq!(
        rv(s.create_object(&[Attribute::Token(true)])),
        RvError::TemplateIncomplete
    );
    assert_eq!(
        rv(s.create_object(&[Attribute::Class(ObjectClass::DATA), Attribute::Sign(true)])),
        RvError::AttributeTypeInvalid
    );
    let (_, private) = key_pair(&s, b"\x06");
    assert_eq!(
        rv(s.update_attributes(private, &[Attribute::Sensitive(false)])),
        RvError::AttributeReadOnly
    );
    s.update_attributes(private, &[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    let found = s
        .find_objects(&[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    assert_eq!(found, vec![private]);
    s.destroy_object(data).unwrap();
    assert_eq!(
        rv(s.get_attributes(data, &[AttributeType::Value])),
        RvError::ObjectHandleInvalid
    );
}

#[test]
fn digests_and_random_numbers() {
    let slot = fresh_token("digest");
    let s = harness().pkcs11.open_ro_session(slot).unwrap();
    assert_eq!(
        s.digest(&Mechanism::Sha256, b"abc").unwrap(),
        Sha256::digest(b"abc").to_vec()
    );
    let a = s.generate_random_vec(32).unwrap();
    let b = s.generate_random_vec(32).unwrap();
    assert_ne!(a, b);
    assert_eq!(rv(s.seed_random(b"seed")), RvError::RandomSeedNotSupported);
}
