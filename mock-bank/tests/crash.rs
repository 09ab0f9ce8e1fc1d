//! The `kilt-bank` binary SIGKILLed while a customer regenerates again and again: after each
//! restart every answered step is still there (or further along), and the profile's one active
//! certificate is the last activated one or the one in flight.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{SUBSCRIBER, csr, der, key, sign};
use kilt_protocol::bank::{
    IssuedCertificate, Login, Profile, Provisioned, Regeneration, Status, activation_message,
    login_message,
};
use rcgen::KeyPair;

struct Running {
    child: Child,
    api: String,
    admin: String,
}

fn start(dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kilt-bank"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--processing-seconds",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let api = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("api ")
        .unwrap()
        .to_owned();
    let admin = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("admin ")
        .unwrap()
        .to_owned();
    Running { child, api, admin }
}

/// What the customer knows was acknowledged.
#[derive(Default)]
struct Acked {
    regenerations: Vec<Regeneration>,
    /// The last activated (serial, key, certificate PEM).
    current: Option<(String, KeyPair, String)>,
    /// The serial being activated when the connection broke.
    in_flight: Option<String>,
}

async fn regenerate_forever(
    client: reqwest::Client,
    api: String,
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
        let c = csr(&new, SUBSCRIBER);
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
        acked.lock().await.in_flight = Some(serial.clone());
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
    let first = key();
    let made: Provisioned = reqwest::Client::new()
        .post(format!("{}/admin/subscribers", bank.admin))
        .json(&serde_json::json!({"subscriber": SUBSCRIBER, "csr": csr(&first, SUBSCRIBER)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let profile = made.profile.identifier.clone();
    let mut old = first;
    let mut cert = made.certificate.clone();
    let mut old_serial = made.profile.serial.clone();
    let mut total = 0;
    for (round, kill_after_ms) in [50u64, 150, 300].into_iter().enumerate() {
        let acked = std::sync::Arc::new(tokio::sync::Mutex::new(Acked::default()));
        let task = tokio::spawn(regenerate_forever(
            common::client(&root),
            bank.api.clone(),
            profile.clone(),
            KeyPair::try_from(old.serialize_der().as_slice()).unwrap(),
            cert.clone(),
            acked.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        bank.child.kill().unwrap(); // SIGKILL
        bank.child.wait().unwrap();
        let _ = task.await;
        bank = start(dir.path());
        let acked = std::mem::take(&mut *acked.lock().await);
        let after: Vec<Regeneration> = reqwest::get(format!("{}/admin/regenerations", bank.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for want in &acked.regenerations {
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
        let active = &profiles[0].serial;
        if let Some((serial, key, pem)) = acked.current {
            old_serial = serial;
            old = key;
            cert = pem;
        }
        let allowed = [Some(&old_serial), acked.in_flight.as_ref()];
        assert!(
            allowed.contains(&Some(active)),
            "round {round}: active {active} is neither the last activated {old_serial} nor the one in flight"
        );
        if Some(active) != Some(&old_serial) {
            // The activation went through before the kill but its answer was lost: the client's
            // journal (issue 6) resumes with the new key; this test simply stops here.
            break;
        }
        total += acked.regenerations.len();
    }
    assert!(total >= 2, "only {total} answered steps before the kills");
    bank.child.kill().unwrap();
    bank.child.wait().unwrap();
}
