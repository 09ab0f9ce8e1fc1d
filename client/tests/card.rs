//! `kilt` through the token's card door: the emulated JaCarta in vsmartcard's virtual reader
//! (`kilt-token attach`), reached through pcscd and Debian's OpenSC (`opensc-pkcs11.so`).
//! `kilt status` shows the card's certificates; the CA login by certificate is signed in the
//! card; `kilt regen` stops before changing anything, because OpenSC makes no PIV keys.

mod common;

use common::*;
use kilt_test_support::{PCSC_PEERS, Pcscd, card_present, peers_installed, wait_until};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// A PIV PIN has at most 8 characters.
const PIN: &str = "12345678";

struct Attached(Child);

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Child: first certificates through kilt's module, then the same token as a card.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_kilt_through_opensc_and_the_card() {
    let Some(module) = module() else { return };
    let w = world(module.clone(), 20, |_| {}, |_| {}).await;
    let tool = module.with_file_name("kilt-token");
    let _card = Attached(
        Command::new(&tool)
            .args(["attach", "--token", LABEL])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tokio::task::block_in_place(|| {
        wait_until("the card in the reader", || {
            card_present("Virtual PCD 00 00")
        })
    });
    // `kilt readers` recognises the attached token as a JaCarta by its ATR.
    let readers = Command::new(env!("CARGO_BIN_EXE_kilt"))
        .args(["readers", "--json"])
        .output()
        .unwrap();
    let listed: serde_json::Value =
        serde_json::from_slice(readers.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let vpcd = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Virtual PCD 00 00")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(vpcd["jacarta"], true, "{listed}");
    let state = w.path("state-opensc");
    let kilt = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kilt"))
            .args(args)
            .args(["--json", "--module", OPENSC, "--pin-source"])
            .arg(format!("env:{PIN_VAR}"))
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap()
    };

    // kilt status through OpenSC: the CA's AUTH and SIGN certificates, 20 days left.
    let status = tokio::task::block_in_place(|| kilt(&["status"]));
    assert!(status.status.success(), "{status:?}");
    let v: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&status.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let days: Vec<i64> = v["key_sets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["certificate"]["days_left"].as_i64())
        .collect();
    assert!(
        days.len() >= 2 && days.iter().all(|d| (19..=20).contains(d)),
        "{v}"
    );

    // Flow 2 through OpenSC: the login by certificate is signed in the card, then kilt stops
    // in one line before it asks the CA for anything.
    let requests_before = w.ca.ca().requests(None).unwrap().len();
    let url = w.ca.url();
    let root = w.path("ca-root.pem");
    let out = w.path("out");
    let run = tokio::task::block_in_place(|| {
        kilt(&[
            "regen",
            "ca",
            "--ca-url",
            &url,
            "--ca-root",
            root.to_str().unwrap(),
            "--application",
            out.to_str().unwrap(),
            "--yes",
        ])
    });
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stdout.contains("\"event\":\"login\""), "{stdout}\n{stderr}");
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cannot make key pairs") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Nothing changed: the same key sets through kilt's module, no journal, no request.
    let sets = tokio::task::block_in_place(|| w.key_sets());
    assert_eq!(sets.len(), 3, "{sets:?}");
    assert!(
        std::fs::read_dir(&state).map_or(true, |d| d.count() == 0),
        "a journal was written"
    );
    assert_eq!(w.ca.ca().requests(None).unwrap().len(), requests_before);
    println!("{}", kilt_test_support::CHILD_OK);
}

#[test]
fn kilt_uses_the_token_as_a_card_through_opensc() {
    let mut needed = PCSC_PEERS.to_vec();
    needed.extend(["/usr/bin/opensc-tool", OPENSC]);
    if !peers_installed(&needed) {
        return;
    }
    let _pcscd = Pcscd::start();
    let module = kilt_test_support::kilt_module();
    let tokens = tempfile::tempdir().unwrap();
    kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(tokens.path()))
        .unwrap()
        .provision(
            0,
            LABEL,
            &kilt_emulator::Pin::from(kilt_test_support::SO_PIN),
            &kilt_emulator::Pin::from(PIN),
        )
        .unwrap();
    let dir: PathBuf = tokens.path().into();
    kilt_test_support::run_child(
        "child_kilt_through_opensc_and_the_card",
        &[
            ("KILT_CLIENT_CHILD", module.as_os_str()),
            ("KILT_TOKEN_DIR", dir.as_os_str()),
            (PIN_VAR, PIN.as_ref()),
        ],
    );
}
