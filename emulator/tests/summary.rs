//! What another process sees of a token it has not opened: `C_GetSlotInfo`/`C_GetTokenInfo`
//! read the token's summary file (label, serial, profile, PIN counters) instead of opening its
//! database, and the summary follows every change of label and PINs. Each `Emulator` below is
//! made after the previous one is dropped, as processes one after another would be.

use kilt_emulator::store::Summary;
use kilt_emulator::{Config, Emulator, Pin, UserType};

const SO: &str = "00000000";
const USER: &str = "1234567890";

fn emulator(dir: &std::path::Path) -> Emulator {
    Emulator::new(Config::in_dir(dir)).unwrap()
}

#[test]
fn token_info_without_opening_follows_pin_and_label_changes() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("slot-0.kilt");
    emulator(dir.path())
        .provision(0, "summary", &Pin::from(SO), &Pin::from(USER))
        .unwrap();

    // Read from the summary: the same answer as from the open token, and nothing opened.
    let emu = emulator(dir.path());
    let from_summary = emu.token_info(0).unwrap();
    let slot_from_summary = emu.slot_info(0).unwrap();
    assert_eq!(
        emu.opened_tokens(),
        0,
        "info read without opening the token"
    );
    assert_eq!(from_summary.label, "summary");
    assert!(from_summary.user_pin.initialized && from_summary.user_pin.tries_left == 10);
    let s = emu.open_session(0, false, true).unwrap();
    emu.close_session(s).unwrap();
    assert_eq!(emu.opened_tokens(), 1);
    assert_eq!(emu.token_info(0).unwrap(), from_summary);
    assert_eq!(emu.slot_info(0).unwrap(), slot_from_summary);
    assert_eq!(emu.slot_by_label("summary").unwrap(), Some(0));
    drop(emu);

    // A wrong PIN in one process shows in the next one's token info, still without opening.
    let emu = emulator(dir.path());
    let s = emu.open_session(0, false, true).unwrap();
    assert!(
        emu.login(s, UserType::User, Some(&Pin::from("0000000000")))
            .is_err()
    );
    drop(emu);
    let emu = emulator(dir.path());
    let info = emu.token_info(0).unwrap();
    assert_eq!(emu.opened_tokens(), 0);
    assert!(info.user_pin.count_low, "{info:?}");
    assert_eq!(info.user_pin.tries_left, 9);
    drop(emu);

    // A correct PIN gives the tries back; re-initialising renames and removes the user PIN.
    let emu = emulator(dir.path());
    let s = emu.open_session(0, true, true).unwrap();
    emu.login(s, UserType::User, Some(&Pin::from(USER)))
        .unwrap();
    emu.close_session(s).unwrap();
    emu.init_token(0, &Pin::from(SO), "renamed").unwrap();
    drop(emu);
    let emu = emulator(dir.path());
    let info = emu.token_info(0).unwrap();
    assert_eq!(emu.opened_tokens(), 0);
    assert_eq!(info.label, "renamed");
    assert!(!info.user_pin.initialized && !info.user_pin.count_low);
    assert_eq!(emu.slot_by_label("summary").unwrap(), None);
    drop(emu);

    // A token without a summary (an older version's) is opened to be read, and gets one.
    std::fs::remove_file(Summary::file(&token)).unwrap();
    let emu = emulator(dir.path());
    assert_eq!(emu.token_info(0).unwrap().label, "renamed");
    assert_eq!(emu.opened_tokens(), 1);
    drop(emu);
    assert_eq!(Summary::read(&token).unwrap().label, "renamed");

    // One left ahead of its commit (a crash in between) is written again by the next opener.
    let mut stale = Summary::read(&token).unwrap();
    stale.label = "never committed".into();
    std::fs::write(Summary::file(&token), serde_json::to_vec(&stale).unwrap()).unwrap();
    let emu = emulator(dir.path());
    let s = emu.open_session(0, false, true).unwrap();
    emu.close_session(s).unwrap();
    drop(emu);
    assert_eq!(Summary::read(&token).unwrap().label, "renamed");
    // No secret is in it.
    let text = std::fs::read_to_string(Summary::file(&token)).unwrap();
    assert!(
        !text.contains("salt") && !text.contains("wrapped"),
        "{text}"
    );
}
