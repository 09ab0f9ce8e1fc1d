//! What a person sees at a real terminal (a PTY driven by `rexpect`): the PIN prompt does not
//! echo, a wrong PIN says how many tries are left, and deleting a key set asks twice, then for
//! the PIN again — the JaCarta Configurator's order.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kilt_test_support::{USER_PIN, kilt_module};
use rexpect::session::{PtySession, spawn_command};

const PROMPT: &str = "PIN of token \"pty\": ";

/// `kilt ARGS` on a terminal with echo on, as a person's is (rexpect's starts with echo off,
/// which would hide an echoed PIN); `stty` runs in the child before `kilt` starts, so there is
/// no race with kilt turning echo off for the PIN.
fn kilt(tokens: &Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "stty echo && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_kilt"),
    ])
    .args(args)
    .args(["--token", "pty", "--lang", "en"])
    .arg("--module")
    .arg(kilt_module())
    .arg("--state-dir")
    .arg(tokens.join("state"))
    .env("KILT_TOKEN_DIR", tokens);
    spawn_command(cmd, Some(20_000)).unwrap()
}

/// rexpect hands over the terminal's bytes one `char` each; this makes them UTF-8 text again.
fn utf8(raw: &str) -> String {
    String::from_utf8_lossy(&raw.chars().map(|c| c as u8).collect::<Vec<u8>>()).into_owned()
}

/// Answers once `needle` (ASCII) is on the screen, returning the screen up to it as text. The
/// pause lets the program turn the terminal's echo off after a PIN prompt, as a person's typing
/// would.
fn answer(p: &mut PtySession, needle: &str, text: &str) -> String {
    let before = p.exp_string(needle).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    p.send_line(text).unwrap();
    utf8(&before) + needle
}

/// A yes/no question, checked to end with the bilingual choice.
fn question(p: &mut PtySession, q: &str, text: &str) {
    let screen = answer(p, "yes/no]: ", text);
    assert!(
        screen.ends_with(&format!("{q} [Да/Нет | yes/no]: ")),
        "{screen}"
    );
}

fn screen_to_end(p: &mut PtySession) -> String {
    utf8(&p.exp_eof().unwrap())
}

fn exit_code(p: &mut PtySession) -> i32 {
    match p.process.wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("kilt did not exit: {other:?}"),
    }
}

/// Key pairs without certificates (nothing guards them), made with OpenSC's pkcs11-tool.
fn keypair(tokens: &Path, id_hex: &str) {
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(kilt_module())
        .args(["--token-label", "pty", "--login", "--pin", USER_PIN])
        .args([
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            id_hex,
        ])
        .env("KILT_TOKEN_DIR", tokens)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_pin_is_not_echoed_and_a_wrong_one_says_the_tries_left() {
    let token = kilt_test_support::kilt_token("pty");
    let mut p = kilt(token.path(), &["status"]);
    answer(&mut p, PROMPT, "0000000000");
    let rest = screen_to_end(&mut p);
    assert!(
        rest.contains("the PIN is wrong: 9 tries left before the PIN is locked"),
        "{rest}"
    );
    assert!(!rest.contains("0000000000"), "the PIN was echoed: {rest}");
    assert_eq!(exit_code(&mut p), 1);

    let mut p = kilt(token.path(), &["status"]);
    answer(&mut p, PROMPT, USER_PIN);
    let rest = screen_to_end(&mut p);
    assert!(!rest.contains(USER_PIN), "the PIN was echoed: {rest}");
    assert!(rest.contains("pty"), "{rest}");
    assert_eq!(exit_code(&mut p), 0, "{rest}");
}

#[test]
fn deleting_asks_twice_then_for_the_pin_and_no_keeps_the_keys() {
    let token = kilt_test_support::kilt_token("pty");
    keypair(token.path(), "6f6c64"); // "old"
    keypair(token.path(), "6e6577"); // "new"

    // "No" to the second question: nothing deleted, and no second PIN asked.
    let mut p = kilt(token.path(), &["keys", "delete", "--id", "old"]);
    answer(&mut p, PROMPT, USER_PIN);
    question(&mut p, "Delete the old key set old?", "Да");
    question(&mut p, "Are you sure? The keys cannot be recovered.", "Нет");
    let rest = screen_to_end(&mut p);
    assert!(!rest.contains(PROMPT), "{rest}");
    assert_eq!(exit_code(&mut p), 1, "{rest}");

    // Yes twice, then the PIN again (a wrong one changes nothing), then the right one.
    let mut p = kilt(token.path(), &["keys", "delete", "--id", "old"]);
    answer(&mut p, PROMPT, USER_PIN);
    question(&mut p, "Delete the old key set old?", "да");
    question(&mut p, "Are you sure? The keys cannot be recovered.", "yes");
    answer(&mut p, PROMPT, "1111111111");
    let rest = screen_to_end(&mut p);
    assert!(rest.contains("the PIN is wrong"), "{rest}");
    assert_eq!(exit_code(&mut p), 1);

    let mut p = kilt(token.path(), &["keys", "delete", "--id", "old"]);
    answer(&mut p, PROMPT, USER_PIN);
    question(&mut p, "Delete the old key set old?", "д");
    question(&mut p, "Are you sure? The keys cannot be recovered.", "y");
    answer(&mut p, PROMPT, USER_PIN);
    let rest = screen_to_end(&mut p);
    assert!(rest.contains("Key set old deleted"), "{rest}");
    assert!(!rest.contains(USER_PIN), "the PIN was echoed: {rest}");
    assert_eq!(exit_code(&mut p), 0, "{rest}");

    let mut p = kilt(token.path(), &["status"]);
    answer(&mut p, PROMPT, USER_PIN);
    let rest = screen_to_end(&mut p);
    assert!(rest.contains("new") && !rest.contains("old"), "{rest}");
}
