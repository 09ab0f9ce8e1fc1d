//! `kilt readers` against real PC/SC: pcscd with vsmartcard's virtual reader (vpcd), and a
//! virtual card this test plays over vpcd's socket protocol — a JaCarta's ATR, or another
//! card's. Shows the listing, recognition by ATR, waiting for insertion, and the message when
//! pcscd is not running.

use kilt_test_support::{PCSC_PEERS, Pcscd, ScriptedCard, peers_installed, wait_until};
use std::process::{Command, Output};
use std::time::Duration;

/// A JaCarta PKI's ATR (DESIGN.md, "The token").
const JACARTA_ATR: &[u8] = &[
    0x3B, 0xDC, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x73, 0xC8, 0x21, 0x13, 0x66, 0x01,
    0x06, 0x11, 0x59, 0x00, 0x01, 0x28,
];
/// Some other card's.
const OTHER_ATR: &[u8] = &[0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00];

fn kilt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kilt"))
        .args(["readers", "--json"])
        .args(args)
        .output()
        .unwrap()
}

fn readers(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    v.as_array().cloned().unwrap_or_else(|| vec![v])
}

fn slot0(list: &[serde_json::Value]) -> serde_json::Value {
    list.iter()
        .find(|r| r["name"] == "Virtual PCD 00 00")
        .cloned()
        .unwrap_or_else(|| panic!("no vpcd reader in {list:?}"))
}

#[test]
fn readers_and_atrs_through_pcscd_and_a_virtual_reader() {
    if !peers_installed(&PCSC_PEERS) {
        return;
    }
    let daemon = Pcscd::start();
    let owned = daemon.owned();

    // The empty virtual reader.
    wait_until("an empty vpcd slot", || {
        slot0(&readers(&kilt(&[])))["atr"].is_null()
    });
    let empty = slot0(&readers(&kilt(&[])));
    assert_eq!(empty["jacarta"], false, "{empty}");

    // Waiting: the JaCarta goes in while `kilt readers --wait` waits.
    let waiting = std::thread::spawn(|| kilt(&["--wait", "10"]));
    std::thread::sleep(Duration::from_millis(500));
    let card = ScriptedCard::insert(JACARTA_ATR, |_| vec![0x6D, 0x00]);
    let seen = waiting.join().unwrap();
    let found = readers(&seen);
    assert_eq!(found[0]["name"], "Virtual PCD 00 00", "{found:?}");
    assert_eq!(found[0]["jacarta"], true, "{found:?}");
    assert!(
        found[0]["atr"]
            .as_str()
            .unwrap()
            .starts_with("3B DC 18 FF 81 91 FE 1F C3 80 73 C8 21 13 66"),
        "{found:?}"
    );
    let listed = slot0(&readers(&kilt(&[])));
    assert_eq!(listed["jacarta"], true, "{listed}");
    drop(card);
    wait_until("the card's removal", || {
        slot0(&readers(&kilt(&[])))["atr"].is_null()
    });

    // Another card is seen, but is not a JaCarta: --wait ignores it unless --any.
    let other_card = ScriptedCard::insert(OTHER_ATR, |_| vec![0x6D, 0x00]);
    wait_until("the other card", || {
        !slot0(&readers(&kilt(&[])))["atr"].is_null()
    });
    let other = slot0(&readers(&kilt(&[])));
    assert_eq!(other["jacarta"], false, "{other}");
    let none = kilt(&["--wait", "1"]);
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("JaCarta"),
        "{none:?}"
    );
    let any = readers(&kilt(&["--wait", "1", "--any"]));
    assert_eq!(any[0]["atr"], "3B 8F 80 01 80 4F 0C A0 00", "{any:?}");
    drop(other_card);

    // Without pcscd: one line saying to start it (only when this test owns the daemon).
    if owned {
        drop(daemon);
        wait_until("pcscd to stop", || !Pcscd::running());
        let out = kilt(&[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            err.contains("pcscd is not running") && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}
