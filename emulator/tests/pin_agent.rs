//! The protected authentication path (the Tumar CSP PIN window): C_Login without a PIN asks the
//! PIN agent; a scripted answer logs in, a cancelled window gives PinEntryCancelled and costs no try.

use kilt_emulator::{Config, Emulator, Error, Pin, PinAgent, PinSource, Profile, UserType};

fn pinpad_token(agent: PinAgent) -> (tempfile::TempDir, Emulator) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path());
    config.profile = Profile::load("jacarta-pki-pinpad").unwrap();
    config.profile.kdf_iterations = 1;
    config.pin_agent = agent;
    let emu = Emulator::new(config).unwrap();
    emu.provision(
        0,
        "pinpad",
        &Pin::from("00000000"),
        &Pin::from("1234567890"),
    )
    .unwrap();
    (dir, emu)
}

#[test]
fn a_scripted_agent_answers_the_pin_window() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pin");
    std::fs::write(&file, "1234567890\n").unwrap();
    let (_d, emu) = pinpad_token(PinAgent::Scripted(PinSource::File(file)));
    assert!(emu.token_info(0).unwrap().protected_authentication_path);
    let s = emu.open_session(0, false, true).unwrap();
    emu.login(s, UserType::User, None).unwrap();
    assert_eq!(
        emu.session_info(s).unwrap().state,
        kilt_emulator::SessionState::RoUser
    );
}

#[test]
fn a_closed_window_cancels_without_using_a_try() {
    let (_d, emu) = pinpad_token(PinAgent::Cancel);
    let s = emu.open_session(0, false, true).unwrap();
    assert!(matches!(
        emu.login(s, UserType::User, None),
        Err(Error::PinEntryCancelled)
    ));
    let info = emu.token_info(0).unwrap();
    assert_eq!(info.user_pin.tries_left, 10);
    assert!(!info.user_pin.count_low);
}

#[test]
fn without_a_pin_pad_a_missing_pin_is_an_argument_error() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::new(Config::in_dir(dir.path())).unwrap();
    emu.init_token(0, &Pin::from("00000000"), "plain").unwrap();
    let s = emu.open_session(0, true, true).unwrap();
    assert!(matches!(
        emu.login(s, UserType::So, None),
        Err(Error::PinMissing)
    ));
}
