//! The whole regeneration with keys in a PKCS#11 token: the emulator's module and SoftHSM2.
//! Each run is a child process (this test binary with `KILT_BANK_TOKEN_CHILD` naming the
//! module) so the module reads its own environment.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use kilt_client::p11::{P256_PARAMS, TokenKey};
use kilt_protocol::bank::Status;

const LABEL: &str = "bank-e2e";
const USER: &str = kilt_test_support::USER_PIN;

fn generate(session: &Session, id: &str) {
    let id = id.as_bytes().to_vec();
    session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(P256_PARAMS.to_vec()),
                Attribute::Id(id.clone()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
                Attribute::Id(id),
            ],
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_bank_flow() {
    let Ok(module) = std::env::var("KILT_BANK_TOKEN_CHILD") else {
        return;
    };
    let pkcs11 = Pkcs11::new(&module).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).unwrap().label() == LABEL)
        .expect("the test token");
    let session = pkcs11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER.into())))
        .unwrap();
    generate(&session, "old");
    generate(&session, "new");
    let session = Arc::new(Mutex::new(session));
    let old = TokenKey::find(&pkcs11, slot, session.clone(), b"old").unwrap();
    let new = TokenKey::find(&pkcs11, slot, session.clone(), b"new").unwrap();

    let bank = start_with(|c| c.settings.processing_seconds = 1).await;
    let profile = bank.subscriber(&old, 25).await;
    let cert = bank.current_certificate(&profile.identifier);
    let login = bank.login(&profile.identifier, &cert, &old).await;
    assert_eq!(login.critical[0].status, Status::RegenerationRequired);
    let (seen, done, new_cert) = bank
        .regenerate(&login.token, &profile.identifier, &old, &new)
        .await;
    assert_eq!(seen, EVERY_STATUS);
    assert!(done.message.unwrap().contains("новым комплектом ключей"));
    let new_der = der(&new_cert);
    let (_, parsed) = x509_parser::parse_x509_certificate(&new_der).unwrap();
    assert_eq!(
        parsed.public_key().subject_public_key.data.as_ref(),
        new.public_point()
    );
    // The new key set logs in; the old one no longer does.
    bank.login(&profile.identifier, &new_cert, &new).await;
    let stale = bank.login_body(&profile.identifier, &cert, &old).await;
    assert_eq!(
        bank.client
            .post(bank.api("/api/v1/login"))
            .json(&stale)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn the_whole_flow_with_keys_in_the_emulated_jacarta() {
    let module = kilt_test_support::kilt_module();
    let tokens = kilt_test_support::kilt_token(LABEL);
    kilt_test_support::run_child(
        "child_bank_flow",
        &[
            ("KILT_BANK_TOKEN_CHILD", module.as_os_str()),
            ("KILT_TOKEN_DIR", tokens.path().as_os_str()),
        ],
    );
}

#[test]
fn the_whole_flow_with_keys_in_softhsm2() {
    let Some((_dir, conf)) = kilt_test_support::softhsm_token(LABEL) else {
        return;
    };
    kilt_test_support::run_child(
        "child_bank_flow",
        &[
            (
                "KILT_BANK_TOKEN_CHILD",
                std::ffi::OsStr::new(kilt_test_support::SOFTHSM2),
            ),
            ("SOFTHSM2_CONF", conf.as_os_str()),
        ],
    );
}
