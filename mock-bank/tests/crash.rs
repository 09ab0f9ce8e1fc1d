//! The `kilt-bank` binary SIGKILLed while a customer regenerates again and again: after each
//! restart every answered step is still there (or further along), and the profile's one active
//! certificate is the last activated one or the one in flight.

mod common;

use std::time::Duration;

use common::{csr, der, key, sign};
use kilt_protocol::bank::{
    IssuedCertificate, Login, Profile, Provisioned, Regeneration, Status, activation_message,
    login_message,
};
use kilt_test_support::ServerProcess;
use rcgen::KeyPair;

fn start(dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start(
        env!("CARGO_BIN_EXE_kilt-bank"),
        dir,
        &["--processing-seconds", "0"],
    )
}

/// What the customer knows was acknowledged.
#[derive(Default)]
struct Acked {
    regenerations: Vec<Regeneration>,
    /// The last activated (serial, key, certificate PEM).
    current: Option<(String, KeyPair, String)>,
    /// The (serial, key, certificate PEM) being activated when the connection broke.
    in_flight: Option<(String, KeyPair, String)>,
}

async fn regenerate_forever(
    client: reqwest::Client,
    api: String,
    name: String,
    profile: String,
    mut old: KeyPair,
    mut cert: String,
    acked: std::sync::Arc<tokio::sync::Mutex<Acked>>,
) -> Option<()> {
    let post = |path: String, token: Option<String>, body: serde_json::Value| {
        let mut req = client.post(format!("{api}{path}")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    loop {
        let challenge: serde_json::Value = post(
            "/api/v1/challenge".into(),
            None,
            serde_json::json!({"profile": profile}),
        )
        .await
        .ok()?
        .json()
        .await
        .ok()?;
        let challenge = challenge["challenge"].as_str()?.to_owned();
        let login = Login {
            profile: profile.clone(),
            signature: sign(&old, &login_message(&challenge)),
            challenge,
            certificate: cert.clone(),
        };
        let session: serde_json::Value = post(
            "/api/v1/login".into(),
            None,
            serde_json::to_value(login).ok()?,
        )
        .await
        .ok()?
        .json()
        .await
        .ok()?;
        let token = session["token"].as_str()?.to_owned();
        let r: Regeneration = post(
            format!("/api/v1/profiles/{profile}/regenerations"),
            Some(token.clone()),
            serde_json::json!({}),
        )
        .await
        .ok()?
        .json()
        .await
        .ok()?;
        let new = key();
        let c = csr(&new, &name);
        let r: Regeneration = post(
            format!("/api/v1/regenerations/{}/submit", r.id),
            Some(token.clone()),
            serde_json::json!({"csr": c, "signature": sign(&old, &der(&c))}),
        )
        .await
        .ok()?
        .json()
        .await
        .ok()?;
        acked.lock().await.regenerations.push(r.clone());
        let r: Regeneration = client
            .get(format!("{api}/api/v1/regenerations/{}", r.id))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let issued: IssuedCertificate = client
            .get(format!("{api}/api/v1/regenerations/{}/certificate", r.id))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let serial = r.new_serial.clone()?;
        acked.lock().await.in_flight = Some((
            serial.clone(),
            KeyPair::try_from(new.serialize_der().as_slice()).ok()?,
            issued.certificate.clone(),
        ));
        let body = serde_json::json!({"signature": sign(&new, &activation_message(r.id, &serial))});
        let done: Regeneration = post(
            format!("/api/v1/regenerations/{}/activate", r.id),
            Some(token),
            body,
        )
        .await
        .ok()?
        .json()
        .await
        .ok()?;
        assert_eq!(done.status, Status::InOperation);
        let mut a = acked.lock().await;
        a.regenerations.push(done);
        a.current = Some((
            serial,
            KeyPair::try_from(new.serialize_der().as_slice()).ok()?,
            issued.certificate.clone(),
        ));
        a.in_flight = None;
        drop(a);
        old = KeyPair::try_from(new.serialize_der().as_slice()).ok()?;
        cert = issued.certificate;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answered_steps_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut bank = start(dir.path());
    let root = ::pem::parse(std::fs::read(dir.path().join("root.crt")).unwrap())
        .unwrap()
        .contents()
        .to_vec();
    let mut all: Vec<Regeneration> = Vec::new();
    for (round, kill_after_ms) in [50u64, 150, 300].into_iter().enumerate() {
        // A subscriber of its own per round: an open regeneration a kill interrupted belongs
        // to the previous one (resuming it is the client's journal, issue 6).
        let name = format!("{round}_Абонент");
        let first = key();
        let made: Provisioned = reqwest::Client::new()
            .post(format!("{}/admin/subscribers", bank.admin))
            .json(&serde_json::json!({"subscriber": name, "csr": csr(&first, &name)}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let profile = made.profile.identifier.clone();
        let acked = std::sync::Arc::new(tokio::sync::Mutex::new(Acked::default()));
        let task = tokio::spawn(regenerate_forever(
            common::client(&root),
            bank.api.clone(),
            name,
            profile.clone(),
            first,
            made.certificate.clone(),
            acked.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        bank.kill(); // SIGKILL
        let _ = task.await;
        bank = start(dir.path());
        let acked = std::mem::take(&mut *acked.lock().await);
        all.extend(acked.regenerations);
        let after: Vec<Regeneration> = reqwest::get(format!("{}/admin/regenerations", bank.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for want in &all {
            let got = after
                .iter()
                .find(|r| r.id == want.id)
                .unwrap_or_else(|| panic!("round {round}: regeneration {} lost", want.id));
            assert!(
                want.status.can_reach(got.status),
                "round {round}: {:?} went back to {:?}",
                want.status,
                got.status
            );
        }
        let profiles: Vec<Profile> = reqwest::get(format!("{}/admin/profiles", bank.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let active = &profiles
            .iter()
            .find(|p| p.identifier == profile)
            .unwrap()
            .serial;
        let last = acked
            .current
            .map(|(serial, ..)| serial)
            .unwrap_or(made.profile.serial);
        let in_flight = acked.in_flight.map(|(serial, ..)| serial);
        assert!(
            *active == last || Some(active) == in_flight.as_ref(),
            "round {round}: active {active} is neither the last activated {last} nor the one in flight"
        );
    }
    let total = all.len();
    assert!(total >= 2, "only {total} answered steps before the kills");
    bank.kill();
}
