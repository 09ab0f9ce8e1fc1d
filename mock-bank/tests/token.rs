//! The whole regeneration with keys in a PKCS#11 token: the emulator's module and SoftHSM2.
//! Each run is a child process (this test binary with `KILT_BANK_TOKEN_CHILD` naming the
//! module) so the module reads its own environment.

mod common;

use std::path::Path;
use std::process::Command;
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
const SO: &str = "00000000";
const USER: &str = "1234567890";

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
    assert_eq!(
        seen,
        [
            Status::RegenerationRequired,
            Status::New,
            Status::AcceptedByBank,
            Status::NewCertificateReceived,
            Status::InOperation
        ]
    );
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
    println!("CHILD-OK");
}

fn run_child(module: &Path, env: &[(&str, &Path)]) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_bank_flow",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KILT_BANK_TOKEN_CHILD", module)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_whole_flow_with_keys_in_the_emulated_jacarta() {
    let exe = std::env::current_exe().unwrap();
    let module = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("libkilt_pkcs11.so");
    assert!(
        module.exists(),
        "{} missing: cargo build -p kilt-pkcs11",
        module.display()
    );
    let dir = tempfile::tempdir().unwrap();
    kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(dir.path()))
        .unwrap()
        .provision(
            0,
            LABEL,
            &kilt_emulator::Pin::from(SO),
            &kilt_emulator::Pin::from(USER),
        )
        .unwrap();
    run_child(&module, &[("KILT_TOKEN_DIR", dir.path())]);
}

#[test]
fn the_whole_flow_with_keys_in_softhsm2() {
    let module = Path::new("/usr/lib/softhsm/libsofthsm2.so");
    if !module.exists() {
        assert!(
            std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "SoftHSM2 is required (KILT_REQUIRE_PEERS=1); run scripts/ensure-deps"
        );
        eprintln!("skipping: softhsm2 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\n",
            dir.path().join("tokens").display()
        ),
    )
    .unwrap();
    let ok = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--so-pin",
            SO,
            "--pin",
            USER,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok);
    run_child(module, &[("SOFTHSM2_CONF", &conf)]);
}
