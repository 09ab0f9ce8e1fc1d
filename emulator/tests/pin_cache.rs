//! `KILT_LOGIN`, the PIN cache of vendor middleware: opening a session logs the user in with the
//! cached PIN, for programs that cannot ask (a headless browser through NSS, a service). A PIN
//! the token refuses costs one try, never more, and the session stays public.

use kilt_emulator::{Config, Emulator, Pin, PinSource, SessionState, UserType};

fn token_with_cache(pin: &str) -> (tempfile::TempDir, Emulator) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cached-pin");
    std::fs::write(&file, format!("{pin}\n")).unwrap();
    let mut config = Config::in_dir(dir.path().join("tokens"));
    config.profile.kdf_iterations = 1;
    config.login_on_open = Some(PinSource::File(file));
    let emu = Emulator::new(config).unwrap();
    emu.provision(
        0,
        "cached",
        &Pin::from("00000000"),
        &Pin::from("1234567890"),
    )
    .unwrap();
    (dir, emu)
}

#[test]
fn the_first_session_is_logged_in_and_a_later_one_after_logout_again() {
    let (_d, emu) = token_with_cache("1234567890");
    let s = emu.open_session(0, false, true).unwrap();
    assert_eq!(emu.session_info(s).unwrap().state, SessionState::RoUser);
    // An explicit login on top is the usual "already logged in".
    assert!(
        emu.login(s, UserType::User, Some(&Pin::from("1234567890")))
            .is_err()
    );
    emu.close_session(s).unwrap();
    let again = emu.open_session(0, true, true).unwrap();
    assert_eq!(emu.session_info(again).unwrap().state, SessionState::RwUser);
    assert_eq!(emu.token_info(0).unwrap().user_pin.tries_left, 10);
}

#[test]
fn a_wrong_cached_pin_costs_one_try_and_leaves_the_session_public() {
    let (_d, emu) = token_with_cache("0000000000");
    for _ in 0..3 {
        let s = emu.open_session(0, false, true).unwrap();
        assert_eq!(emu.session_info(s).unwrap().state, SessionState::RoPublic);
        emu.close_session(s).unwrap();
    }
    assert_eq!(emu.token_info(0).unwrap().user_pin.tries_left, 9);
    // The person can still log in with the right PIN.
    let s = emu.open_session(0, false, true).unwrap();
    emu.login(s, UserType::User, Some(&Pin::from("1234567890")))
        .unwrap();
    assert_eq!(emu.token_info(0).unwrap().user_pin.tries_left, 10);
}

#[test]
fn without_the_cache_sessions_open_public() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path());
    config.profile.kdf_iterations = 1;
    let emu = Emulator::new(config).unwrap();
    emu.provision(0, "plain", &Pin::from("00000000"), &Pin::from("1234567890"))
        .unwrap();
    let s = emu.open_session(0, false, true).unwrap();
    assert_eq!(emu.session_info(s).unwrap().state, SessionState::RoPublic);
}
