//! The bank over HTTPS on `127.0.0.1:0` with software keys: the whole flow through every
//! status, refusals that change nothing, idempotent retries, rejection, restart.

mod common;

use common::*;
use kilt_protocol::ErrorBody;
use kilt_protocol::bank::{Regeneration, Status, activation_message};

async fn error_of(resp: reqwest::Response) -> (u16, ErrorBody) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not an error body: {text}")),
    )
}

#[tokio::test]
async fn the_whole_flow_goes_through_every_status_of_the_table() {
    let bank = start_with(|_| {}).await;
    let old = key();
    let profile = bank.subscriber(&old, 20).await;
    assert_eq!(profile.status, Status::RegenerationRequired);
    assert_eq!(profile.identifier.len(), 20);
    assert_eq!(profile.cryptography, "Tumar CSP");
    let cert = bank.current_certificate(&profile.identifier);
    let session = bank.login(&profile.identifier, &cert, &old).await;
    assert_eq!(
        session.critical.len(),
        1,
        "the login banner names the critical profile"
    );
    let params: kilt_protocol::bank::SignatureParams = bank
        .get(
            &session.token,
            &format!("/api/v1/profiles/{}/signature", profile.identifier),
        )
        .await;
    assert_eq!(params.algorithm, "EC P-256 (prime256v1)");

    let new = key();
    let (seen, done, new_cert) = bank
        .regenerate(&session.token, &profile.identifier, &old, &new)
        .await;
    assert_eq!(seen, EVERY_STATUS);
    assert_eq!(
        done.message.as_deref(),
        Some("Вы переведены на работу с новым комплектом ключей.")
    );
    // The new certificate carries the new key and is now the profile's; the old one is retired.
    let new_der = der(&new_cert);
    let (_, parsed) = x509_parser::parse_x509_certificate(&new_der).unwrap();
    assert_eq!(
        parsed.public_key().subject_public_key.data.as_ref(),
        new.public_key_raw()
    );
    assert_eq!(
        bank.profile(&session.token).await.status,
        Status::InOperation
    );
    let resp = bank
        .client
        .post(bank.api("/api/v1/login"))
        .json(&bank.login_body(&profile.identifier, &cert, &old).await)
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 403);
    assert!(err.message.contains("retired"), "{}", err.message);
    bank.login(&profile.identifier, &new_cert, &new).await;
    let snapshot = bank.server.bank().snapshot().unwrap();
    assert_eq!(
        snapshot
            .certificates
            .iter()
            .filter(|c| c.2 == "active")
            .count(),
        1
    );
}

#[tokio::test]
async fn refusals_give_a_reason_and_change_nothing() {
    let bank = start_with(|_| {}).await;
    let old = key();
    let profile = bank.subscriber(&old, 20).await;
    let id = profile.identifier.clone();
    let cert = bank.current_certificate(&id);
    let session = bank.login(&id, &cert, &old).await;
    let token = session.token.clone();
    let r = bank.start(&token, &id).await;

    // Another subscriber, with its own key.
    let other_key = key();
    let other = {
        let resp = reqwest::Client::new()
            .post(bank.admin("/admin/subscribers"))
            .json(&serde_json::json!({"subscriber": "7777_Другой", "csr": csr(&other_key, "7777_Другой")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json::<kilt_protocol::bank::Provisioned>()
            .await
            .unwrap()
            .profile
    };
    let before = bank.server.bank().snapshot().unwrap();

    let new = key();
    let good_csr = csr(&new, SUBSCRIBER);
    let submit = format!("/api/v1/regenerations/{}/submit", r.id);
    let cases: Vec<(&str, String, serde_json::Value, u16, &str)> = vec![
        (
            "signed by the wrong key",
            submit.clone(),
            serde_json::json!({"csr": good_csr, "signature": sign(&other_key, &der(&good_csr))}),
            422,
            "signature_invalid",
        ),
        (
            "signed by the new key instead of the old",
            submit.clone(),
            serde_json::json!({"csr": good_csr, "signature": sign(&new, &der(&good_csr))}),
            422,
            "signature_invalid",
        ),
        (
            "malformed CSR",
            submit.clone(),
            serde_json::json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", "signature": "00"}),
            422,
            "csr_malformed",
        ),
        (
            "CSR for another subscriber",
            submit.clone(),
            {
                let c = csr(&new, "7777_Другой");
                serde_json::json!({"csr": c, "signature": sign(&old, &der(&c))})
            },
            422,
            "csr_subject_mismatch",
        ),
        (
            "CSR whose key is already in use",
            submit.clone(),
            {
                let c = csr(&other_key, SUBSCRIBER);
                serde_json::json!({"csr": c, "signature": sign(&old, &der(&c))})
            },
            409,
            "csr_key_in_use",
        ),
        (
            "signature not hex",
            submit.clone(),
            serde_json::json!({"csr": good_csr, "signature": "zz"}),
            422,
            "signature_invalid",
        ),
        (
            "garbage JSON",
            submit.clone(),
            serde_json::json!("nonsense"),
            400,
            "bad_body",
        ),
        (
            "another subscriber's profile",
            format!("/api/v1/profiles/{}/regenerations", other.identifier),
            serde_json::json!({}),
            404,
            "not_found",
        ),
        (
            "activation before issuance",
            format!("/api/v1/regenerations/{}/activate", r.id),
            serde_json::json!({"signature": sign(&new, &activation_message(r.id, "00"))}),
            409,
            "conflict",
        ),
    ];
    for (what, path, body, want_status, want_code) in cases {
        let (status, err) = error_of(bank.post(&token, &path, body).await).await;
        assert_eq!(
            (status, err.error.as_str()),
            (want_status, want_code),
            "{what}: {}",
            err.message
        );
        assert_eq!(
            bank.server.bank().snapshot().unwrap(),
            before,
            "{what} changed the bank's state"
        );
    }

    // Login refusals: a replayed challenge, a wrong key, another profile's certificate, an
    // expired certificate.
    let body = bank.login_body(&id, &cert, &old).await;
    assert_eq!(
        bank.client
            .post(bank.api("/api/v1/login"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, err) = error_of(
        bank.client
            .post(bank.api("/api/v1/login"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(err.message.contains("already used"), "{}", err.message);
    let wrong = bank.login_body(&id, &cert, &other_key).await;
    assert_eq!(
        error_of(
            bank.client
                .post(bank.api("/api/v1/login"))
                .json(&wrong)
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        422
    );
    // The refused attempt spent the challenge: the right signature over it is refused too.
    let right = kilt_protocol::bank::Login {
        signature: sign(&old, &kilt_protocol::bank::login_message(&wrong.challenge)),
        ..wrong
    };
    let (status, err) = error_of(
        bank.client
            .post(bank.api("/api/v1/login"))
            .json(&right)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{}", err.message);
    assert!(err.message.contains("already used"), "{}", err.message);
    let foreign = bank
        .login_body(
            &id,
            &bank.current_certificate(&other.identifier),
            &other_key,
        )
        .await;
    let (status, err) = error_of(
        bank.client
            .post(bank.api("/api/v1/login"))
            .json(&foreign)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(err.message.contains("not this profile"), "{}", err.message);
    reqwest::Client::new()
        .post(bank.admin("/admin/clock"))
        .json(&serde_json::json!({"advance_days": 21}))
        .send()
        .await
        .unwrap();
    let expired = bank.login_body(&id, &cert, &old).await;
    let (status, err) = error_of(
        bank.client
            .post(bank.api("/api/v1/login"))
            .json(&expired)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(err.message.contains("expired"), "{}", err.message);
}

#[tokio::test]
async fn retried_steps_make_no_second_request_or_certificate() {
    // Every POST is delivered twice by the fault knob, and the client retries each step too.
    let bank = start_with(|c| c.faults.duplicate_percent = 100).await;
    let old = key();
    let profile = bank.subscriber(&old, 10).await;
    let id = profile.identifier.clone();
    let cert = bank.current_certificate(&id);
    // Login is not idempotent (a challenge is used once), so it runs with the knob off.
    reqwest::Client::new()
        .put(bank.admin("/admin/faults"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let token = bank.login(&id, &cert, &old).await.token;
    reqwest::Client::new()
        .put(bank.admin("/admin/faults"))
        .json(&serde_json::json!({"duplicate_percent": 100}))
        .send()
        .await
        .unwrap();

    let start = format!("/api/v1/profiles/{id}/regenerations");
    let first: Regeneration = bank
        .post(&token, &start, serde_json::json!({}))
        .await
        .json()
        .await
        .unwrap();
    let again: Regeneration = bank
        .post(&token, &start, serde_json::json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first.id, again.id, "\"Новый\" twice opens one regeneration");
    let new = key();
    let c = csr(&new, SUBSCRIBER);
    let body = serde_json::json!({"csr": c, "signature": sign(&old, &der(&c))});
    for _ in 0..2 {
        let resp = bank
            .post(
                &token,
                &format!("/api/v1/regenerations/{}/submit", first.id),
                body.clone(),
            )
            .await;
        assert_eq!(resp.status(), 200);
    }
    let r: Regeneration = bank
        .get(&token, &format!("/api/v1/regenerations/{}", first.id))
        .await;
    assert_eq!(r.status, Status::NewCertificateReceived);
    let serial = r.new_serial.unwrap();
    let body = serde_json::json!({"signature": sign(&new, &activation_message(r.id, &serial))});
    for _ in 0..2 {
        let resp = bank
            .post(
                &token,
                &format!("/api/v1/regenerations/{}/activate", r.id),
                body.clone(),
            )
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.json::<Regeneration>().await.unwrap().status,
            Status::InOperation
        );
    }
    let snapshot = bank.server.bank().snapshot().unwrap();
    assert_eq!(snapshot.regenerations.len(), 1);
    assert_eq!(
        snapshot.certificates.len(),
        2,
        "one old, one new: {:?}",
        snapshot.certificates
    );
}

#[tokio::test]
async fn the_operator_approves_or_rejects_with_a_reason() {
    let bank = start_with(|c| c.settings.auto_process = false).await;
    let old = key();
    let id = bank.subscriber(&old, 10).await.identifier;
    let token = bank
        .login(&id, &bank.current_certificate(&id), &old)
        .await
        .token;
    let submit = |r: u64, new: &rcgen::KeyPair| {
        let c = csr(new, SUBSCRIBER);
        (
            format!("/api/v1/regenerations/{r}/submit"),
            serde_json::json!({"csr": c, "signature": sign(&old, &der(&c))}),
        )
    };
    let r = bank.start(&token, &id).await;
    let (path, body) = submit(r.id, &key());
    bank.post(&token, &path, body).await;
    // Without the operator nothing moves.
    let r: Regeneration = bank
        .get(&token, &format!("/api/v1/regenerations/{}", r.id))
        .await;
    assert_eq!(r.status, Status::AcceptedByBank);
    let rejected: Regeneration = reqwest::Client::new()
        .post(bank.admin(&format!("/admin/regenerations/{}/reject", r.id)))
        .json(&serde_json::json!({"reason": "подпись не совпадает с карточкой"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rejected.status, Status::Rejected);
    assert_eq!(
        rejected.reason.as_deref(),
        Some("подпись не совпадает с карточкой")
    );
    assert_eq!(bank.profile(&token).await.status, Status::Rejected);
    // A new attempt, approved by the operator.
    let r2 = bank.start(&token, &id).await;
    assert_ne!(r2.id, r.id);
    let (path, body) = submit(r2.id, &key());
    bank.post(&token, &path, body).await;
    let approved: Regeneration = reqwest::Client::new()
        .post(bank.admin(&format!("/admin/regenerations/{}/approve", r2.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(approved.status, Status::NewCertificateReceived);
    let resp = reqwest::Client::new()
        .post(bank.admin(&format!("/admin/regenerations/{}/reject", r2.id)))
        .json(&serde_json::json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        409,
        "an issued certificate can no longer be rejected"
    );
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = key();
    let (id, cert) = {
        let server = kilt_mock_bank::serve(kilt_mock_bank::Config::ephemeral(dir.path()))
            .await
            .unwrap();
        let bank = Bank {
            client: client(server.bank().pki().root_der()),
            server,
            dir: tempfile::tempdir().unwrap(),
        };
        let id = bank.subscriber(&old, 10).await.identifier;
        let cert = bank.current_certificate(&id);
        bank.server.shutdown().await;
        (id, cert)
    };
    let server = kilt_mock_bank::serve(kilt_mock_bank::Config::ephemeral(dir.path()))
        .await
        .unwrap();
    let bank = Bank {
        client: client(server.bank().pki().root_der()),
        server,
        dir: tempfile::tempdir().unwrap(),
    };
    let session = bank.login(&id, &cert, &old).await;
    assert_eq!(bank.profile(&session.token).await.identifier, id);
}

#[tokio::test]
async fn each_listener_serves_exactly_what_its_document_says() {
    let bank = start_with(|_| {}).await;
    let public: serde_json::Value = bank
        .client
        .get(bank.api("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin: serde_json::Value = reqwest::get(bank.admin("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    kilt_test_support::assert_serves_exactly(&bank.client, &bank.server.url(), &public, &admin)
        .await;
    kilt_test_support::assert_serves_exactly(
        &reqwest::Client::new(),
        &bank.server.admin_url(),
        &admin,
        &public,
    )
    .await;
}

/// The admin's subscriber creation refuses what its answer says it refuses — an empty, too
/// long or control-character name, a zero or over-a-century validity, a name already taken —
/// and changes nothing; the longest allowed name is taken.
#[test]
fn the_admin_refuses_bad_subscribers_and_changes_nothing() {
    use kilt_mock_bank::{Bank, BankError, Settings};
    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::open(dir.path(), Settings::default()).unwrap();
    let longest: String = "Ж".repeat(64);
    bank.create_subscriber(&longest, &csr(&key(), &longest), None)
        .unwrap();
    let before = bank.snapshot().unwrap();
    let too_long: String = "Ж".repeat(65);
    let cases: [(&str, &str, Option<i64>); 6] = [
        ("empty name", "   ", None),
        ("65 characters", &too_long, None),
        ("a control character", "9418_\u{7}", None),
        ("zero days", SUBSCRIBER, Some(0)),
        ("over a century", SUBSCRIBER, Some(36_501)),
        ("over a century back", SUBSCRIBER, Some(-36_501)),
    ];
    for (what, name, days) in cases {
        match bank.create_subscriber(name, &csr(&key(), name.trim()), days) {
            Err(BankError::InvalidInput(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(bank.snapshot().unwrap(), before, "{what}");
    }
    match bank.create_subscriber(&longest, &csr(&key(), &longest), None) {
        Err(BankError::Conflict(why)) => assert!(why.contains("already exists"), "{why}"),
        other => panic!("a taken name: {other:?}"),
    }
    assert_eq!(bank.snapshot().unwrap(), before);
    bank.create_subscriber(SUBSCRIBER, &csr(&key(), SUBSCRIBER), Some(36_500))
        .unwrap();
}
