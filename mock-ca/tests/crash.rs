//! The `kilt-ca` binary SIGKILLed while requests are in flight: after a restart every request it
//! answered is there with its certificates, and the CA opens and serves.

mod common;

use std::time::Duration;

use common::{IIN, NAME, csr, key};
use kilt_protocol::ca::{NewUser, Request};
use kilt_test_support::ServerProcess;

fn start(dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start(env!("CARGO_BIN_EXE_kilt-ca"), dir, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn answered_requests_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = start(dir.path());
    let root = ::pem::parse(std::fs::read(dir.path().join("root.crt")).unwrap())
        .unwrap()
        .contents()
        .to_vec();
    let resp = reqwest::Client::new()
        .post(format!("{}/admin/users", ca.admin))
        .json(&NewUser {
            login: "crash".into(),
            password: "password-1".into(),
            full_name: NAME.into(),
            iin: IIN.into(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let mut acknowledged: Vec<Request> = Vec::new();
    for (round, kill_after_ms) in [60u64, 150, 300].into_iter().enumerate() {
        let client = common::client(&root, None);
        let login = client
            .post(format!("{}/api/v1/login/password", ca.api))
            .json(&serde_json::json!({"login": "crash", "password": "password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "round {round}");
        let token = login.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        // Four clients submit back to back until the CA dies under them.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (client, api, token) = (client.clone(), ca.api.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut answered = Vec::new();
                loop {
                    let body = serde_json::json!({"device": "JaCarta", "csrs": [
                        {"kind": "auth", "csr": csr(&key(), NAME, IIN)}, {"kind": "sign", "csr": csr(&key(), NAME, IIN)}]});
                    let sent = client.post(format!("{api}/api/v1/requests")).bearer_auth(&token).json(&body).send().await;
                    match sent {
                        Ok(resp) if resp.status() == 201 => match resp.json::<Request>().await {
                            Ok(r) => answered.push(r),
                            Err(_) => return answered,
                        },
                        _ => return answered,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        ca.kill(); // SIGKILL
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
        ca = start(dir.path());
        let admin_view: Vec<Request> = reqwest::get(format!("{}/admin/requests", ca.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for want in &acknowledged {
            let got = admin_view.iter().find(|r| r.id == want.id);
            assert_eq!(
                got,
                Some(want),
                "round {round}: answered request {} was lost or changed",
                want.id
            );
        }
    }
    assert!(
        acknowledged.len() >= 3,
        "only {} requests were answered before the kills",
        acknowledged.len()
    );
    ca.kill();
}
