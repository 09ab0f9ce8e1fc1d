//! Fault schedules (proptest): the client is killed at random points of both flows — just
//! before or just after one of its journal writes, where a step's effect and its record can
//! part — and rerun until each flow finishes. Invariants after every crash: the bank's active
//! certificate is on the token with its key (the customer can always log in); at the end: each
//! flow finished once, exactly one key set per purpose (bank, AUTH, SIGN), all with fresh
//! certificates, no stray keys, and nothing left in the journal.

mod common;

use common::*;
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Flow {
    Ca,
    Bank,
}

fn case(module: &std::path::Path, schedule: &[(Flow, bool, u32)]) {
    wipe(module);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(world(module.to_path_buf(), 20, |_| {}, |_| {}));
    let mut done = [false, false];
    for &(flow, before, n) in schedule {
        let i = flow as usize;
        if done[i] {
            continue;
        }
        let at = format!("{}:{n}", if before { "before" } else { "after" });
        let run = match flow {
            Flow::Ca => w.regen_ca(&[("KILT_CRASH_AT", &at)]),
            Flow::Bank => w.regen_bank(&[("KILT_CRASH_AT", &at)]),
        };
        match run.code {
            Some(0) => done[i] = true,
            None => {} // killed on purpose
            other => panic!("{flow:?} crashed at {at} then failed with {other:?}: {run:?}"),
        }
        w.assert_bank_key_on_token();
    }
    for (i, flow) in [Flow::Ca, Flow::Bank].into_iter().enumerate() {
        if !done[i] {
            let run = match flow {
                Flow::Ca => w.regen_ca(&[]),
                Flow::Bank => w.regen_bank(&[]),
            };
            assert!(run.ok(), "{flow:?} after {schedule:?}: {run:?}");
        }
    }
    let sets = w.key_sets();
    let mut prefixes: Vec<&str> = sets
        .iter()
        .map(|s| s["id"].as_str().unwrap().split('-').next().unwrap())
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, ["auth", "bank", "sign"], "{schedule:?}: {sets:?}");
    for s in &sets {
        assert!(
            s["certificate"]["days_left"].as_i64().unwrap_or(-1) > 300,
            "{schedule:?}: {s}"
        );
        assert!(
            !s["id"].as_str().unwrap().ends_with("-1"),
            "{schedule:?}: {s}"
        );
    }
    w.assert_bank_key_on_token();
    assert_eq!(std::fs::read_dir(w.path("state")).unwrap().count(), 0);
    rt.block_on(async {
        w.ca.shutdown().await;
        w.bank.shutdown().await;
    });
}

fn step() -> impl Strategy<Value = (Flow, bool, u32)> {
    (
        prop_oneof![Just(Flow::Ca), Just(Flow::Bank)],
        any::<bool>(),
        1u32..=7,
    )
}

/// Child: the proptest itself (the module reads the token folder from the environment).
#[test]
#[ignore = "entry point of the child processes the other tests start"]
fn child_fault_schedules() {
    let Some(module) = module() else { return };
    let config = ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // Every single crash point once, deterministically; then random schedules of several.
    for flow in [Flow::Ca, Flow::Bank] {
        for before in [true, false] {
            for n in 1..=7 {
                case(&module, &[(flow, before, n)]);
            }
        }
    }
    proptest!(config, |(schedule in proptest::collection::vec(step(), 2..=4))| {
        case(&module, &schedule);
    });
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn killed_at_any_step_the_rerun_resumes_and_ends_with_one_key_set_each() {
    with_kilt_token("child_fault_schedules");
}

/// Child: the CA holds requests for its operator; the client dies after sending the request
/// but before writing its number down (its answer lost). The rerun must find that request by
/// the keys it asked for, not send a second one.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_lost_answer_while_the_operator_decides() {
    let Some(module) = module() else { return };
    let w = world(module, 20, |_| {}, |ca| ca.auto_approve = false).await;
    let regen = |env: &[(&str, &str)]| {
        tokio::task::block_in_place(|| w.regen_ca_with(&["--wait", "1"], env))
    };
    // The third journal write records the request's number (after planning and the keys).
    let crashed = regen(&[("KILT_CRASH_AT", "before:3")]);
    assert_eq!(crashed.code, None, "{crashed:?}");
    let waiting = w.ca.ca().requests(None).unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");

    let still = regen(&[]);
    assert_eq!(still.code, Some(1), "{still:?}");
    assert!(still.stderr.contains("after 1 s"), "{still:?}");
    assert_eq!(
        w.ca.ca().requests(None).unwrap().len(),
        1,
        "the rerun sent a second request"
    );

    w.ca.ca().approve(waiting[0].id as i64).unwrap();
    let done = regen(&[]);
    assert!(done.ok(), "{done:?}");
    assert_eq!(w.ca.ca().requests(None).unwrap().len(), 1);
    assert_eq!(done.events("certificate_written").len(), 2, "{done:?}");
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn a_request_whose_answer_was_lost_is_found_again_while_it_waits() {
    with_kilt_token("child_lost_answer_while_the_operator_decides");
}
