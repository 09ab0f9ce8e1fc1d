//! A token with a protected authentication path (profile `jacarta-pki-pinpad`, like the Tumar
//! CSP PIN window): `kilt` logs in without reading a PIN and tells the user to answer the
//! token's window; a closed window is reported as such.

use std::process::Command;

fn pinpad_token() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kilt_emulator::Config::in_dir(dir.path());
    config.profile = kilt_emulator::Profile::load("jacarta-pki-pinpad").unwrap();
    kilt_emulator::Emulator::new(config)
        .unwrap()
        .provision(
            0,
            "pinpad",
            &kilt_emulator::Pin::from(kilt_test_support::SO_PIN),
            &kilt_emulator::Pin::from(kilt_test_support::USER_PIN),
        )
        .unwrap();
    dir
}

fn status(tokens: &std::path::Path, agent: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kilt"))
        .args([
            "status",
            "--token",
            "pinpad",
            "--pin-source",
            "env:KILT_NO_SUCH_PIN",
        ])
        .arg("--module")
        .arg(kilt_test_support::kilt_module())
        .env("KILT_TOKEN_DIR", tokens)
        .env("KILT_PIN_AGENT", agent)
        .env("KILT_WINDOW_PIN", kilt_test_support::USER_PIN)
        .output()
        .unwrap()
}

#[test]
fn the_pin_is_entered_in_the_tokens_window_not_read_by_kilt() {
    let tokens = pinpad_token();
    // The PIN source names a variable that does not exist: only the token's window may answer.
    let out = status(tokens.path(), "env:KILT_WINDOW_PIN");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("in the token's own window"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Token \"pinpad\""));

    let out = status(tokens.path(), "cancel");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PIN entry on the token was cancelled"),
        "{stderr}"
    );
}
