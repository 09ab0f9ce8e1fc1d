//! `wiremock` in front of a whole Flow 1: the real `kilt` binary talks to a wiremock server that
//! forwards to the mock bank, except where a test makes one endpoint misbehave — 503s, an
//! answer slower than `--timeout` (the bank did the work; the client retries), or a broken body
//! after the bank did the work (the client stops; the rerun resumes). After every run the
//! customer can still log in (the bank's active certificate is on the token); in the end the
//! token holds exactly one bank key set, fresh, and the journal is empty.
//!
//! Flow 2 logs in by mutual TLS, which a plain-HTTP proxy cannot forward; its HTTP behaviour is
//! in `faults.rs`, its whole-flow faults in `kilt-conformance flow` (`ca-outage`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use wiremock::matchers::{any, method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Forwards a request to the mock bank (over its TLS, trusting its root) and returns its answer.
struct Forward {
    base: String,
    client: reqwest::Client,
}

impl Forward {
    fn send(&self, req: &Request) -> (u16, Vec<u8>) {
        let url = format!(
            "{}{}{}",
            self.base,
            req.url.path(),
            req.url.query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes()).unwrap();
        let mut rb = self
            .client
            .request(method, url)
            .header("content-type", "application/json")
            .body(req.body.clone());
        if let Some(auth) = req.headers.get("authorization") {
            rb = rb.header("authorization", auth.to_str().unwrap());
        }
        // wiremock calls responders inside its own runtime: the forward gets a thread of its own.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let resp = rb.send().await.expect("the bank answers the proxy");
                    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
                })
        })
        .join()
        .unwrap()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// 503 without reaching the bank.
    Unavailable,
    /// The bank's answer, 1.5 s late (more than `--timeout 1`).
    Slow,
    /// The bank did the work; the client gets an HTML error page with status 200.
    Broken,
}

/// The first `left` requests get `fault`, every one after is forwarded.
struct Faulty {
    forward: Arc<Forward>,
    fault: Fault,
    left: AtomicU32,
    seen: Arc<AtomicU32>,
}

impl Respond for Faulty {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.seen.fetch_add(1, Ordering::SeqCst);
        let faulty = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if faulty && self.fault == Fault::Unavailable {
            return ResponseTemplate::new(503).set_body_json(serde_json::json!({
                "error": "unavailable", "message": "maintenance"
            }));
        }
        let (status, body) = self.forward.send(req);
        match (faulty, self.fault) {
            (true, Fault::Broken) => ResponseTemplate::new(200)
                .set_body_raw("<html><body>Bad gateway</body></html>", "text/html"),
            (true, Fault::Slow) => ResponseTemplate::new(status)
                .set_body_raw(body, "application/json")
                .set_delay(Duration::from_millis(1500)),
            _ => ResponseTemplate::new(status).set_body_raw(body, "application/json"),
        }
    }
}

/// Every bank endpoint Flow 1 uses.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", r"^/api/v1/challenge$"),
    ("POST", r"^/api/v1/login$"),
    ("GET", r"^/api/v1/profiles$"),
    ("POST", r"^/api/v1/profiles/[^/]+/regenerations$"),
    ("POST", r"^/api/v1/regenerations/\d+/submit$"),
    ("GET", r"^/api/v1/regenerations/\d+$"),
    ("GET", r"^/api/v1/regenerations/\d+/certificate$"),
    ("POST", r"^/api/v1/regenerations/\d+/activate$"),
];

/// A wiremock server forwarding to `w`'s bank, with `faults` (endpoint index, fault, count);
/// returns it and how many requests each endpoint saw.
async fn proxy(w: &World, faults: &[(usize, Fault, u32)]) -> (MockServer, Vec<Arc<AtomicU32>>) {
    let root = w.bank.bank().pki().root_der().to_vec();
    let retry = kilt_client::api::Retry::default();
    let forward = Arc::new(Forward {
        base: w.bank.url(),
        client: kilt_client::api::http_client(
            kilt_client::api::tls_trusting(&[root]).unwrap(),
            retry,
        ),
    });
    let server = MockServer::start().await;
    let mut seen = vec![];
    for (i, (verb, pattern)) in ENDPOINTS.iter().enumerate() {
        let (fault, left) = faults
            .iter()
            .find(|f| f.0 == i)
            .map(|f| (f.1, f.2))
            .unwrap_or((Fault::Unavailable, 0));
        let count = Arc::new(AtomicU32::new(0));
        seen.push(count.clone());
        Mock::given(method(*verb))
            .and(path_regex(*pattern))
            .respond_with(Faulty {
                forward: forward.clone(),
                fault,
                left: AtomicU32::new(left),
                seen: count,
            })
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(any())
        .respond_with(Faulty {
            forward,
            fault: Fault::Unavailable,
            left: AtomicU32::new(0),
            seen: Arc::new(AtomicU32::new(0)),
        })
        .with_priority(10)
        .mount(&server)
        .await;
    (server, seen)
}

fn regen(w: &World, url: &str) -> Run {
    let root = w.path("bank-root.pem");
    tokio::task::block_in_place(|| {
        w.kilt(
            &[
                "regen",
                "bank",
                "--bank-url",
                url,
                "--bank-root",
                root.to_str().unwrap(),
                "--yes",
                "--wait",
                "30",
                "--timeout",
                "1",
            ],
            &[],
        )
    })
}

/// The end state every case must reach.
fn assert_one_fresh_bank_set(w: &World) {
    let sets = tokio::task::block_in_place(|| w.key_sets());
    let bank: Vec<_> = sets
        .iter()
        .filter(|s| s["id"].as_str().unwrap().starts_with("bank"))
        .collect();
    assert_eq!(bank.len(), 1, "{sets:?}");
    assert_ne!(bank[0]["id"], "bank-1", "{sets:?}");
    assert!(
        bank[0]["certificate"]["days_left"].as_i64().unwrap() > 300,
        "{sets:?}"
    );
    tokio::task::block_in_place(|| w.assert_bank_key_on_token());
    assert_eq!(std::fs::read_dir(w.path("state")).unwrap().count(), 0);
}

async fn fresh(module: &std::path::Path) -> World {
    tokio::task::block_in_place(|| wipe(module));
    world(module.to_path_buf(), 20, |_| {}, |_| {}).await
}

/// Child: each endpoint answers 503 twice, then each answers once too late — both in one run
/// each, retried to success; then, endpoint by endpoint, a broken body after the bank acted.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_faults_in_front_of_the_bank() {
    let Some(module) = module() else { return };

    for fault in [Fault::Unavailable, Fault::Slow] {
        let w = fresh(&module).await;
        let n = if fault == Fault::Slow { 1 } else { 2 };
        let all: Vec<_> = (0..ENDPOINTS.len()).map(|i| (i, fault, n)).collect();
        let (server, seen) = proxy(&w, &all).await;
        let run = regen(&w, &server.uri());
        assert!(run.ok(), "{fault:?}: {run:?}");
        for (count, (_, endpoint)) in seen.iter().zip(ENDPOINTS) {
            let asked = count.load(Ordering::SeqCst);
            assert!(
                asked > n,
                "{fault:?}: {endpoint} was asked {asked} times, so its fault was not retried"
            );
        }
        assert_one_fresh_bank_set(&w);
    }

    for (i, (_, endpoint)) in ENDPOINTS.iter().enumerate() {
        let w = fresh(&module).await;
        let (server, _) = proxy(&w, &[(i, Fault::Broken, 1)]).await;
        let first = regen(&w, &server.uri());
        assert_eq!(first.code, Some(1), "{}: {first:?}", endpoint);
        let line = first.stderr.trim();
        assert!(
            line.lines().count() == 1
                && line.contains("unreadable body")
                && line.contains("Bad gateway")
                && line.contains("rerun"),
            "{}: {line}",
            endpoint
        );
        tokio::task::block_in_place(|| w.assert_bank_key_on_token());
        let again = regen(&w, &server.uri());
        assert!(again.ok(), "{} then rerun: {again:?}", endpoint);
        assert_one_fresh_bank_set(&w);
    }
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn a_whole_bank_flow_behind_wiremock_survives_503s_slow_answers_and_broken_bodies() {
    with_kilt_token("child_faults_in_front_of_the_bank");
}
