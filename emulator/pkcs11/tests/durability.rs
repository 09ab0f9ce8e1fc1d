//! Nothing acknowledged is lost: a process using the module is killed with SIGKILL at random
//! moments, and what it was told succeeded must still be there; the store must always open; a
//! wrong PIN try is never forgotten.
//!
//! The child processes are this test binary again, run with `KILT_CHILD` set: they load the real
//! `.so` through cryptoki and report on stdout each call that returned CKR_OK.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use kilt_emulator::{Config, Emulator, Pin, UserType as U};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const LABEL: &str = "durable";

fn child_module() -> (Pkcs11, cryptoki::slot::Slot) {
    let p = Pkcs11::new(common::module_path()).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).unwrap().label() == LABEL)
        .unwrap();
    (p, slot)
}

/// Child: creates token objects forever, printing "ack N" after each CKR_OK.
#[test]
#[ignore = "entry point of the child processes the other tests start"]
fn child_creator() {
    if std::env::var("KILT_CHILD").as_deref() != Ok("create") {
        return;
    }
    let (p, slot) = child_module();
    let round = std::env::var("KILT_CHILD_ROUND").unwrap();
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    for i in 0.. {
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(format!("r{round}-obj-{i}").into_bytes()),
            Attribute::Value(vec![7; 200]),
        ])
        .unwrap();
        println!("ack r{round}-obj-{i}");
    }
}

/// Child: tries wrong PINs forever, printing "start" before and "failed" after each.
#[test]
#[ignore = "entry point of the child processes the other tests start"]
fn child_wrong_pin() {
    if std::env::var("KILT_CHILD").as_deref() != Ok("wrong-pin") {
        return;
    }
    let (p, slot) = child_module();
    let s = p.open_rw_session(slot).unwrap();
    loop {
        println!("start");
        assert!(s.login(UserType::User, Some(&common::pin("0000"))).is_err());
        println!("failed");
    }
}

fn new_token(dir: &std::path::Path) {
    Emulator::new(Config::in_dir(dir))
        .unwrap()
        .provision(
            0,
            LABEL,
            &Pin::from(common::SO_PIN),
            &Pin::from(common::USER_PIN),
        )
        .unwrap();
}

/// Runs a child in `mode` for `ms` milliseconds, SIGKILLs it, and returns every line it printed.
/// (libtest prints "test NAME ... " without a newline first, so a child's first line may follow
/// it: callers match line endings.)
fn run_and_kill(dir: &std::path::Path, mode: &str, test: &str, ms: u64) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KILT_CHILD", mode)
        .env("KILT_TOKEN_DIR", dir)
        .env("KILT_CHILD_ROUND", ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect()
}

/// Kill times spread over the life of the child (start-up, login, steady writing).
fn kill_times(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| 40 + (i * 37) % 260)
}

#[test]
fn every_acknowledged_object_survives_sigkill() {
    if std::env::var_os("KILT_CHILD").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    new_token(dir.path());
    let mut acked = std::collections::BTreeSet::new();
    let mut rounds_with_writes = 0;
    for ms in kill_times(12) {
        let lines = run_and_kill(dir.path(), "create", "child_creator", ms);
        let before = acked.len();
        acked.extend(
            lines
                .iter()
                .filter_map(|l| l.split("ack ").nth(1))
                .map(String::from),
        );
        rounds_with_writes += usize::from(acked.len() > before);
        // After every kill the store opens and holds every acknowledged object.
        let emu = Emulator::new(Config::in_dir(dir.path())).unwrap();
        let s = emu.open_session(0, false, true).unwrap();
        emu.login(s, U::User, Some(&Pin::from(common::USER_PIN)))
            .unwrap();
        emu.find_init(s, &[]).unwrap();
        let found = emu.find_next(s, usize::MAX).unwrap();
        emu.find_final(s).unwrap();
        let mut labels = std::collections::BTreeSet::new();
        for h in found {
            if let kilt_emulator::AttrResult::Value(v) = &emu
                .get_attributes(s, h, &[cryptoki_sys::CKA_LABEL])
                .unwrap()[0]
            {
                labels.insert(String::from_utf8_lossy(v).into_owned());
            }
        }
        let lost: Vec<_> = acked.difference(&labels).collect();
        assert!(
            lost.is_empty(),
            "acknowledged objects lost after a kill at {ms} ms: {lost:?}"
        );
    }
    assert!(
        rounds_with_writes >= 6,
        "children must have written before most kills"
    );
}

#[test]
fn a_wrong_pin_try_is_never_forgotten_by_a_kill() {
    if std::env::var_os("KILT_CHILD").is_some() {
        return;
    }
    for ms in kill_times(6) {
        let dir = tempfile::tempdir().unwrap();
        new_token(dir.path());
        let lines = run_and_kill(dir.path(), "wrong-pin", "child_wrong_pin", ms);
        let started = lines.iter().filter(|l| l.ends_with("start")).count() as u32;
        let failed = lines.iter().filter(|l| l.ends_with("failed")).count() as u32;
        let emu = Emulator::new(Config::in_dir(dir.path())).unwrap();
        let tries = emu.token_info(0).unwrap().user_pin.tries_left;
        let used = 10 - tries;
        // Every try that was answered is counted; a try cut off by the kill may be counted
        // (stored before the comparison) but never more than were started.
        assert!(
            used >= failed.min(10) && used <= started.min(10),
            "{used} tries used, {failed} answered, {started} started (kill at {ms} ms)"
        );
        if failed > 0 {
            assert!(emu.token_info(0).unwrap().user_pin.count_low || tries == 0);
        }
    }
}
