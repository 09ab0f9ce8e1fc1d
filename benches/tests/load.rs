//! `kilt-bench load` end to end: customers with tokens of their own run Flow 1 against the mock
//! bank started in the bench's process, and the report says what the bank then shows.

use std::process::Command;

#[test]
fn load_reports_every_customer_in_operation_with_its_new_certificate() {
    let out = Command::new(env!("CARGO_BIN_EXE_kilt-bench"))
        .args(["load", "--customers", "6", "--concurrency", "3", "--json"])
        .output()
        .expect("kilt-bench runs (cargo build --workspace builds the module beside it)");
    assert!(
        out.status.success(),
        "kilt-bench load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let load = &report["load"];
    assert_eq!(load["customers"], 6);
    assert_eq!(load["errors"], 0);
    assert_eq!(load["server"]["in_operation_with_new_certificate"], 6);
    assert!(
        load["regenerations_per_s"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );
    assert!(load["p99_ms"].as_f64() >= load["p50_ms"].as_f64());
    // Every regeneration went through the bank's steps, each timed once per customer.
    for step in ["key_generated", "submit", "certificate_written", "switched"] {
        assert_eq!(load["steps"][step]["count"], 6, "step {step}: {load:#}");
    }
}

#[test]
fn load_refuses_a_partial_set_of_server_urls() {
    let out = Command::new(env!("CARGO_BIN_EXE_kilt-bench"))
        .args(["load", "--ca", "https://127.0.0.1:1"])
        .output()
        .expect("kilt-bench runs");
    assert_eq!(out.status.code(), Some(2), "clap refuses the missing URLs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bank-admin"), "{err}");
}
