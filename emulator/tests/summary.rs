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

#[test]
fn a_token_pulled_out_is_seen_without_opening_it_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    emulator(dir.path())
        .provision(0, "presence", &Pin::from(SO), &Pin::from(USER))
        .unwrap();
    let emu = emulator(dir.path());
    let token = emu.token(0).unwrap();
    token.set_present(false).unwrap();
    // Already out: nothing to do, and still out.
    token.set_present(false).unwrap();
    drop((token, emu));

    let emu = emulator(dir.path());
    assert!(!emu.slot_list(true).unwrap().contains(&0));
    assert!(!emu.slot_info(0).unwrap().token_present);
    assert!(emu.token_info(0).is_err());
    assert_eq!(
        emu.opened_tokens(),
        0,
        "presence read without opening the token"
    );
    drop(emu);

    let emu = emulator(dir.path());
    emu.token(0).unwrap().set_present(true).unwrap();
    drop(emu);
    let emu = emulator(dir.path());
    assert!(emu.slot_list(true).unwrap().contains(&0));
    assert_eq!(emu.token_info(0).unwrap().label, "presence");
    // Put back, it counts as a new insertion (sessions of the last one stay closed).
    let p = emu.token(0).unwrap().presence();
    assert!(p.present);
    assert_eq!(p.insertions, 1);
}

#[test]
fn a_folder_of_tokens_is_opened_only_as_far_as_needed() {
    let dir = tempfile::tempdir().unwrap();
    let n = kilt_emulator::emulator::LOOKS_OPEN as u64 + 4;
    let emu = emulator(dir.path());
    for slot in 0..n {
        emu.provision(slot, &format!("t{slot}"), &Pin::from(SO), &Pin::from(USER))
            .unwrap();
    }
    // Initialised tokens stay open in the process that made them; the spare follows them.
    assert_eq!(emu.opened_tokens(), n as usize);
    assert_eq!(emu.spare_slot().unwrap(), n);
    assert!(emu.is_initialised(0).unwrap() && !emu.is_initialised(n).unwrap());
    drop(emu);

    // Without summaries (an older kilt's tokens), reading every token's info opens them, and
    // closes the oldest again beyond LOOKS_OPEN; a token with a session stays open.
    for slot in 0..n {
        std::fs::remove_file(Summary::file(&dir.path().join(format!("slot-{slot}.kilt")))).unwrap();
    }
    let emu = emulator(dir.path());
    assert_eq!(emu.opened_tokens(), 0);
    let s = emu.open_session(0, false, true).unwrap();
    for slot in 0..n {
        let info = emu.token_info(slot).unwrap();
        assert_eq!(info.label, format!("t{slot}"));
        assert_eq!(info.serial.len(), 16, "a serial of 16 hex digits: {info:?}");
    }
    assert_eq!(
        emu.opened_tokens(),
        kilt_emulator::emulator::LOOKS_OPEN + 1,
        "the looked-at tokens beyond the bound are closed, the one in use is not"
    );
    assert!(emu.session_info(s).is_ok());
    drop(emu);

    // Now each has its summary again: info of all without opening any.
    let emu = emulator(dir.path());
    let serials: Vec<String> = (0..n).map(|s| emu.token_info(s).unwrap().serial).collect();
    assert_eq!(emu.opened_tokens(), 0);
    assert!(serials.iter().all(|s| s.len() == 16));
}

#[test]
fn pulling_out_and_putting_back_a_token_not_opened_are_slot_events() {
    let dir = tempfile::tempdir().unwrap();
    emulator(dir.path())
        .provision(0, "events", &Pin::from(SO), &Pin::from(USER))
        .unwrap();
    let watcher = emulator(dir.path());
    assert_eq!(watcher.slot_event().unwrap(), None, "nothing happened yet");
    // Another "process" pulls it out: a second emulator, its token control only.
    let other = emulator(dir.path());
    other.token(0).unwrap().set_present(false).unwrap();
    // Asked about that one slot, with no slot list since: out, not as last listed.
    assert!(matches!(
        watcher.token_info(0),
        Err(kilt_emulator::Error::TokenNotPresent)
    ));
    assert!(!watcher.slot_info(0).unwrap().token_present);
    assert_eq!(watcher.slot_event().unwrap(), Some(0));
    assert_eq!(watcher.slot_event().unwrap(), None, "reported once");
    other.token(0).unwrap().set_present(true).unwrap();
    assert_eq!(watcher.slot_event().unwrap(), Some(0));
    assert_eq!(watcher.opened_tokens(), 0);
}
