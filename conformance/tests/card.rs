//! `kilt-conformance card` as QA runs it, through a real pcscd and vsmartcard's reader: on the
//! emulated JaCarta (`kilt-token attach`) every case passes, destructive ones included, and the
//! token ends with all its tries; on a card that says yes to everything, the suite says so.

use kilt_test_support::{
    PCSC_PEERS, Pcscd, ScriptedCard, card_present, kilt_module, peers_installed, wait_until,
};
use std::process::{Child, Command, Output, Stdio};

const READER: &str = "Virtual PCD 00 00";
const PIN: &str = "12345678";

fn suite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kilt-conformance"))
        .args(["card", "--reader", READER])
        .args(args)
        .env("PIN", PIN)
        .env("SO_PIN", kilt_test_support::SO_PIN)
        .output()
        .unwrap()
}

struct Attached(Child);

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn the_card_suite_passes_the_emulated_card_and_fails_a_yes_card() {
    if !peers_installed(&PCSC_PEERS) {
        return;
    }
    let _pcscd = Pcscd::start();
    let out_dir = tempfile::tempdir().unwrap();

    // The emulated JaCarta through its card door.
    let tokens = tempfile::tempdir().unwrap();
    kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(tokens.path()))
        .unwrap()
        .provision(
            0,
            "card",
            &kilt_emulator::Pin::from(kilt_test_support::SO_PIN),
            &kilt_emulator::Pin::from(PIN),
        )
        .unwrap();
    let tool = kilt_module().with_file_name("kilt-token");
    let attached = Attached(
        Command::new(&tool)
            .args(["attach", "--token", "card"])
            .env("KILT_TOKEN_DIR", tokens.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the emulated card", || card_present(READER));
    let junit = out_dir.path().join("card.xml");
    let json = out_dir.path().join("card.json");
    let o = suite(&[
        "--pin-source",
        "env:PIN",
        "--so-pin-source",
        "env:SO_PIN",
        "--destructive",
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("card: 12 passed, 0 failed, 0 skipped"),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["suite"], "card");
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuite")
    );
    // The destructive cases restored the PIN: all ten tries, not locked.
    let info = kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(tokens.path()))
        .unwrap()
        .token_info(0)
        .unwrap();
    assert_eq!(
        (info.user_pin.tries_left, info.user_pin.locked),
        (10, false)
    );

    // Without --destructive no PIN is entered, so none is needed.
    let o = suite(&[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("card: 10 passed, 0 failed, 2 skipped"),
        "{text}"
    );
    // A reader that does not exist: exit 2, one line.
    let o = Command::new(env!("CARGO_BIN_EXE_kilt-conformance"))
        .args(["card", "--reader", "No Such Reader 00 00"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim().lines().count(), 1);
    drop(attached);
    wait_until("the emulated card's removal", || !card_present(READER));

    // A card that answers 9000 to everything: the suite must not believe it.
    let _yes = ScriptedCard::insert(&[0x3B, 0x80, 0x80, 0x01, 0x01], |_| vec![0x90, 0x00]);
    wait_until("the scripted card", || card_present(READER));
    let o = suite(&[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    for case in ["select-unknown-aid", "unknown-ins", "wrong-cla", "wrong-lc"] {
        assert!(text.contains(&format!("FAIL  {case}")), "{case}: {text}");
    }
}
