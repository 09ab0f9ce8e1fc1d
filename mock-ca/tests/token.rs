//! Login by certificate with the key in a PKCS#11 token — the emulator's module, and SoftHSM2
//! (which has no `CKM_ECDSA_SHA256`, so the client hashes and the token signs the digest).
//!
//! Each run is a child process (this test binary, with `KILT_CA_TOKEN_CHILD` naming the
//! module) so the module reads its own environment (`KILT_TOKEN_DIR` or `SOFTHSM2_CONF`).

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use kilt_client::p11::{P256_PARAMS, TokenKey, tls_client_config};
use kilt_protocol::ca::{CertKind, Certificate, CsrItem, Provision, Request, RequestStatus};

const LABEL: &str = "ca-e2e";
const USER: &str = kilt_test_support::USER_PIN;

fn generate(session: &Session, id: &str) {
    let public = [
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::EcParams(P256_PARAMS.to_vec()),
        Attribute::Id(id.as_bytes().to_vec()),
        Attribute::Label(id.as_bytes().to_vec()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Id(id.as_bytes().to_vec()),
        Attribute::Label(id.as_bytes().to_vec()),
    ];
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
}

fn der(pem: &str) -> Vec<u8> {
    ::pem::parse(pem).unwrap().contents().to_vec()
}

fn token_client(root: &[u8], cert: &Certificate, key: &Arc<TokenKey>) -> reqwest::Client {
    let config = tls_client_config(&[root.to_vec()], vec![der(&cert.pem)], key.clone()).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

/// Child: the whole login → request → issuance path with keys in the token.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_token_flow() {
    let Ok(module) = std::env::var("KILT_CA_TOKEN_CHILD") else {
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
    generate(&session, "auth-1");
    generate(&session, "sign-1");
    let session = Arc::new(Mutex::new(session));
    let key =
        |id: &str| Arc::new(TokenKey::find(&pkcs11, slot, session.clone(), id.as_bytes()).unwrap());
    let (auth1, sign1) = (key("auth-1"), key("sign-1"));

    // The admin provisions the fresh token's first certificates from its CSRs.
    let ca = start().await;
    ca.create_user().await;
    let csrs = vec![
        CsrItem {
            kind: CertKind::Auth,
            csr: csr(auth1.as_ref(), NAME, IIN),
        },
        CsrItem {
            kind: CertKind::Sign,
            csr: csr(sign1.as_ref(), NAME, IIN),
        },
    ];
    let first: Vec<Certificate> = reqwest::Client::new()
        .post(ca.admin(&format!("/admin/users/{LOGIN}/certificates")))
        .json(&Provision {
            csrs,
            valid_days: Some(20),
            backdate_days: Some(345),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auth_cert = first.iter().find(|c| c.kind == CertKind::Auth).unwrap();

    // "По сертификату": mutual TLS, the handshake signed inside the token.
    let root = ca.root_der();
    let client = token_client(&root, auth_cert, &auth1);
    let resp = client
        .post(ca.api("/api/v1/login/certificate"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let token = resp.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // New key pairs in the token, CSRs signed there, "Запрос на выпуск сертификата".
    {
        let s = session.lock().unwrap();
        generate(&s, "auth-2");
        generate(&s, "sign-2");
    }
    let (auth2, sign2) = (key("auth-2"), key("sign-2"));
    let body = serde_json::json!({"device": "JaCarta", "csrs": [
        {"kind": "auth", "csr": csr(auth2.as_ref(), NAME, IIN)},
        {"kind": "sign", "csr": csr(sign2.as_ref(), NAME, IIN)},
    ]});
    let resp = bearer(client.post(ca.api("/api/v1/requests")), &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let request: Request = resp.json().await.unwrap();
    assert_eq!(request.status, RequestStatus::Issued);

    // Plain openssl verifies the chain, and each certificate carries its token key.
    let tmp = tempfile::tempdir().unwrap();
    let root_pem = tmp.path().join("root.pem");
    std::fs::write(&root_pem, ca.server.ca().pki().root_pem()).unwrap();
    let issuing = tmp.path().join("issuing.pem");
    std::fs::write(&issuing, &request.chain[0]).unwrap();
    for (cert, key) in request.certificates.iter().zip([&auth2, &sign2]) {
        let path = tmp.path().join(format!("{}.pem", cert.kind.code()));
        std::fs::write(&path, &cert.pem).unwrap();
        let out = run(
            "openssl",
            &[
                "verify",
                "-CAfile",
                root_pem.to_str().unwrap(),
                "-untrusted",
                issuing.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
        );
        assert!(out.trim().ends_with(": OK"), "{out}");
        let der = der(&cert.pem);
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            parsed.public_key().subject_public_key.data.as_ref(),
            key.public_point()
        );
    }

    // The new AUTH certificate, with its key in the token, logs in too.
    let new_auth = request
        .certificates
        .iter()
        .find(|c| c.kind == CertKind::Auth)
        .unwrap();
    let resp = token_client(&root, new_auth, &auth2)
        .post(ca.api("/api/v1/login/certificate"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn login_request_and_issuance_with_keys_in_the_emulated_jacarta() {
    let module = kilt_test_support::kilt_module();
    let tokens = kilt_test_support::kilt_token(LABEL);
    kilt_test_support::run_child(
        "child_token_flow",
        &[
            ("KILT_CA_TOKEN_CHILD", module.as_os_str()),
            ("KILT_TOKEN_DIR", tokens.path().as_os_str()),
        ],
    );
}

#[test]
fn login_request_and_issuance_with_keys_in_softhsm2() {
    let Some((_dir, conf)) = kilt_test_support::softhsm_token(LABEL) else {
        return;
    };
    kilt_test_support::run_child(
        "child_token_flow",
        &[
            (
                "KILT_CA_TOKEN_CHILD",
                std::ffi::OsStr::new(kilt_test_support::SOFTHSM2),
            ),
            ("SOFTHSM2_CONF", conf.as_os_str()),
        ],
    );
}
