//! `kilt-conformance flow` as QA runs it: the real binary against the mock CA and bank (here
//! in the test process on `127.0.0.1:0`), on the emulated JaCarta and on SoftHSM2, with its
//! JUnit and JSON reports; and its refusals to start.

use std::path::Path;
use std::process::{Command, Output};

use kilt_test_support::{SO_PIN, SOFTHSM2, USER_PIN, kilt_module};

struct Servers {
    ca: kilt_mock_ca::Server,
    bank: kilt_mock_bank::Server,
    _dir: tempfile::TempDir,
}

async fn servers() -> Servers {
    let dir = tempfile::tempdir().unwrap();
    let ca = kilt_mock_ca::serve(kilt_mock_ca::Config::ephemeral(dir.path().join("ca")))
        .await
        .unwrap();
    let mut bank = kilt_mock_bank::Config::ephemeral(dir.path().join("bank"));
    bank.settings.processing_seconds = 0;
    let bank = kilt_mock_bank::serve(bank).await.unwrap();
    Servers {
        ca,
        bank,
        _dir: dir,
    }
}

/// Runs `kilt-conformance flow` with `args` and `env` (off the runtime: it blocks).
async fn flow(s: &Servers, module: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kilt-conformance"));
    cmd.arg("flow")
        .arg("--module")
        .arg(module)
        .args([
            "--token",
            "qa",
            "--pin-source",
            "env:P",
            "--so-pin-source",
            "env:S",
        ])
        .args(["--bank", &s.bank.url(), "--bank-admin", &s.bank.admin_url()])
        .args(["--ca", &s.ca.url(), "--ca-admin", &s.ca.admin_url()])
        .args(args)
        .env("P", USER_PIN)
        .env("S", SO_PIN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn ids(report: &serde_json::Value, outcome: &str) -> Vec<String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == outcome)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scenario_passes_on_the_emulated_jacarta_with_reports() {
    let s = servers().await;
    let token = kilt_test_support::kilt_token("qa");
    let reports = tempfile::tempdir().unwrap();
    let (junit, json) = (reports.path().join("f.xml"), reports.path().join("f.json"));
    let out = flow(
        &s,
        &kilt_module(),
        &[
            "--destructive",
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        &[("KILT_TOKEN_DIR", token.path())],
    )
    .await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["suite"], "flow");
    assert_eq!(ids(&report, "fail"), Vec::<String>::new());
    assert_eq!(ids(&report, "skip"), Vec::<String>::new(), "{table}");
    let every: Vec<&str> = kilt_conformance::SCENARIOS.iter().map(|c| c.id).collect();
    assert_eq!(ids(&report, "pass"), every);
    for needed in [
        "ca-happy-path",
        "ca-expired",
        "ca-revoked",
        "ca-outage",
        "ca-rejected",
        "ca-token-removed",
        "bank-happy-path",
        "bank-expiring",
        "bank-expired",
        "bank-outage",
        "bank-rejected",
        "bank-token-removed",
        "pin-wrong",
        "pin-locked",
    ] {
        assert!(every.contains(&needed), "scenario {needed} is missing");
    }
    assert!(
        table.contains("flow: 14 passed, 0 failed, 0 skipped"),
        "{table}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    for suite in ["flow-1-bank", "flow-2-ca", "flow-pin"] {
        assert!(
            xml.contains(&format!("<testsuite name=\"{suite}\"")),
            "{xml}"
        );
    }
    assert!(xml.contains("classname=\"flow.flow-1-bank\""), "{xml}");

    // Every scenario cleaned up after itself and the locked PIN was restored: a second run on
    // the same token passes again.
    let again = flow(&s, &kilt_module(), &[], &[("KILT_TOKEN_DIR", token.path())]).await;
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn softhsm2_passes_all_but_what_needs_a_person_or_a_lockout() {
    let Some((_dir, conf)) = kilt_test_support::softhsm_token("qa") else {
        return;
    };
    let s = servers().await;
    let reports = tempfile::tempdir().unwrap();
    let json = reports.path().join("f.json");
    let out = flow(
        &s,
        Path::new(SOFTHSM2),
        &["--json", json.to_str().unwrap()],
        &[("SOFTHSM2_CONF", &conf)],
    )
    .await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        ids(&report, "skip"),
        ["ca-token-removed", "bank-token-removed", "pin-locked"],
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn it_refuses_a_token_with_keys_and_unreachable_servers_in_one_line() {
    let s = servers().await;
    let token = kilt_test_support::kilt_token("qa");
    // A key set someone might need: the suite must not touch the token.
    let made = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(kilt_module())
        .args(["--login", "--pin", USER_PIN, "--keypairgen", "--key-type"])
        .args([
            "EC:prime256v1",
            "--id",
            "70726563696f7573",
            "--label",
            "precious",
        ])
        .env("KILT_TOKEN_DIR", token.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let out = flow(&s, &kilt_module(), &[], &[("KILT_TOKEN_DIR", token.path())]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("holds 1 key set(s) (precious)") && err.contains("empty test token"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // The admin listener is down: said at once, nothing run.
    let empty = kilt_test_support::kilt_token("qa");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kilt-conformance"));
    cmd.args(["flow", "--token", "qa", "--pin-source", "env:P"])
        .arg("--module")
        .arg(kilt_module())
        .args([
            "--bank",
            &s.bank.url(),
            "--bank-admin",
            "http://127.0.0.1:9",
        ])
        .args(["--ca", &s.ca.url(), "--ca-admin", "http://127.0.0.1:9"])
        .env("P", USER_PIN)
        .env("KILT_TOKEN_DIR", empty.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot start") && err.contains("127.0.0.1:9"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
