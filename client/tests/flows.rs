//! Both flows end to end through the real `kilt` binary: the mock CA and bank on
//! `127.0.0.1:0`, keys in the emulated JaCarta and in SoftHSM2; expired certificates, wrong and
//! locked PINs, and the token pulled out mid-flow.

mod common;

use common::*;
use kilt_protocol::Lang;
use kilt_protocol::bank::Status;

/// Child: Flow 2 then Flow 1, and what the token and the servers hold afterwards.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_both_flows() {
    let Some(module) = module() else { return };
    let w = world(module, 20, |_| {}, |_| {}).await;

    let ca = tokio::task::block_in_place(|| w.regen_ca(&[]));
    assert!(ca.ok(), "{ca:?}");
    assert_eq!(ca.events("login").len(), 1, "{ca:?}");
    assert_eq!(ca.events("request_status")[0]["status"], "issued");
    assert_eq!(ca.events("certificate_written").len(), 2);
    let pdf = ca.events("application_saved")[0]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"), "{pdf}");
    let deleted: Vec<_> = ca
        .events("old_deleted")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deleted, ["auth-1", "sign-1"]);

    let bank = tokio::task::block_in_place(|| w.regen_bank(&[]));
    assert!(bank.ok(), "{bank:?}");
    assert_eq!(
        bank.statuses(),
        [
            "regeneration_required",
            "new",
            "accepted_by_bank",
            "new_certificate_received",
            "in_operation"
        ]
    );
    assert!(
        bank.events("switched")[0]["message"]
            .as_str()
            .unwrap()
            .contains("Вы переведены на работу с новым комплектом ключей")
    );
    assert!(
        !bank.events("banner").is_empty(),
        "the critical-profile banner"
    );

    // Three key sets, all new, all with a year ahead; the old ones gone.
    let sets = tokio::task::block_in_place(|| w.key_sets());
    assert_eq!(sets.len(), 3, "{sets:?}");
    for s in &sets {
        let id = s["id"].as_str().unwrap();
        assert!(!id.ends_with("-1"), "old key set {id} still there");
        assert!(s["certificate"]["days_left"].as_i64().unwrap() > 300, "{s}");
    }
    // The bank's active certificate is the one on the token, and the profile is in operation.
    let active = w.bank.bank().signature_params(&w.profile).unwrap().serial;
    let bank_set = sets
        .iter()
        .find(|s| s["id"].as_str().unwrap().starts_with("bank-"))
        .unwrap();
    assert_eq!(
        norm(&active),
        norm(bank_set["certificate"]["serial"].as_str().unwrap())
    );
    let profile = w.bank.bank().profiles().unwrap().remove(0);
    assert_eq!(profile.status, Status::InOperation);
    // Nothing is left in the journal.
    let left: Vec<_> = std::fs::read_dir(w.path("state")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn both_flows_with_the_emulated_jacarta() {
    with_kilt_token("child_both_flows");
}

#[test]
fn both_flows_with_softhsm2() {
    with_softhsm_token("child_both_flows");
}

/// Child: expired certificates are refused with what to do, and nothing changes; wrong PINs
/// show the tries left, then the lock.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_refusals() {
    let Some(module) = module() else { return };
    let w = world(module, -5, |_| {}, |_| {}).await;
    let before = tokio::task::block_in_place(|| w.key_sets());
    for run in [
        tokio::task::block_in_place(|| w.regen_ca(&[])),
        tokio::task::block_in_place(|| w.regen_bank(&[])),
    ] {
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("expired on"), "{}", run.stderr);
        assert!(run.stderr.contains("in person"), "{}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(tokio::task::block_in_place(|| w.key_sets()), before);

    // A bank that does not answer: retried, then one line saying so; nothing changes.
    let root = w.path("bank-root.pem");
    let run = tokio::task::block_in_place(|| {
        w.kilt(
            &[
                "regen",
                "bank",
                "--bank-url",
                "https://127.0.0.1:1",
                "--bank-root",
                root.to_str().unwrap(),
            ],
            &[],
        )
    });
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("cannot reach the bank at https://127.0.0.1:1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("after 6 tries"), "{}", run.stderr);
    assert_eq!(tokio::task::block_in_place(|| w.key_sets()), before);

    let wrong = |n: usize| {
        let run = tokio::task::block_in_place(|| w.kilt(&["status"], &[(PIN_VAR, "0000000000")]));
        assert_eq!(run.code, Some(1), "try {n}: {run:?}");
        run.stderr
    };
    let first = wrong(1);
    assert!(
        first.contains("the PIN is wrong: 9 tries left before the PIN is locked"),
        "{first}"
    );
    for n in 2..=8 {
        wrong(n);
    }
    let ninth = wrong(9);
    assert!(ninth.contains("1 try left"), "{ninth}");
    let tenth = wrong(10);
    assert!(tenth.contains("is locked"), "{tenth}");
    assert!(tenth.contains("--login-type so --init-pin"), "{tenth}");
    // Even the right PIN now meets the lock, without spending anything.
    let run = tokio::task::block_in_place(|| w.kilt(&["status"], &[]));
    assert!(run.stderr.contains("is locked"), "{run:?}");
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn expired_certificates_and_wrong_or_locked_pins_are_explained() {
    with_kilt_token("child_refusals");
}

/// Child: the token is pulled out while the bank processes; the client says so, and after
/// re-insertion the same command resumes and finishes with one new key set.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_removal() {
    let Some(module) = module() else { return };
    let w = world(module, 20, |b| b.settings.auto_process = false, |_| {}).await;
    let sel = kilt_emulator::cli::TokenSel {
        token: Some(LABEL.into()),
        slot: None,
    };
    let plug = |present: bool| {
        kilt_emulator::cli::plug(
            kilt_emulator::Config::from_env().unwrap(),
            &sel,
            present,
            &mut std::io::sink(),
        )
        .unwrap()
    };
    let url = w.bank.url();
    let root = w.path("bank-root.pem");
    let state = w.path("state");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kilt"))
        .args(["regen", "bank", "--bank-url", &url, "--yes", "--json"])
        .arg("--bank-root")
        .arg(&root)
        .args(["--token", LABEL, "--pin-source"])
        .arg(format!("env:{PIN_VAR}"))
        .arg("--module")
        .arg(&w.module)
        .arg("--state-dir")
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the request is with the bank, then pull the token and let the operator approve.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the client never reached the bank"
        );
        let r = w.bank.bank().regenerations(Lang::En).unwrap();
        if let Some(r) = r.iter().find(|r| r.status == Status::AcceptedByBank) {
            break r.id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    plug(false);
    w.bank.bank().approve(id as i64, Lang::En).unwrap();
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the token was removed"), "{stderr}");
    assert!(stderr.contains("insert it again"), "{stderr}");

    // While it is out, a rerun says there is no token.
    let run = tokio::task::block_in_place(|| w.regen_bank(&[]));
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no token matches"), "{}", run.stderr);

    plug(true);
    let run = tokio::task::block_in_place(|| w.regen_bank(&[]));
    assert!(run.ok(), "{run:?}");
    assert_eq!(run.events("resume").len(), 1);
    assert_eq!(run.statuses().last().unwrap(), "in_operation");
    let sets = tokio::task::block_in_place(|| w.key_sets());
    let bank_sets: Vec<_> = sets
        .iter()
        .filter(|s| s["id"].as_str().unwrap().starts_with("bank"))
        .collect();
    assert_eq!(bank_sets.len(), 1, "{sets:?}");
    assert!(bank_sets[0]["certificate"]["days_left"].as_i64().unwrap() > 300);
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn a_token_removed_mid_flow_is_reported_and_the_rerun_resumes() {
    with_kilt_token("child_removal");
}
