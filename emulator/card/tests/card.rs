//! The card as a whole: its identity and presence, reset, the trace, chaining limits, SELECT
//! forms and the JaCarta application's PIN references.

mod common;

use common::*;
use kilt_card::card::{MAX_CHAIN, command_name};
use kilt_card::{Card, Command, StatusWord, trace};
use kilt_emulator::{Config, Emulator, Pin};
use std::sync::Arc;

const JACARTA_AID: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x01, 0x64, 0x4C, 0x41, 0x53, 0x45, 0x52, 0x00, 0x01,
];

#[test]
fn the_card_has_its_tokens_atr_and_leaves_the_reader_with_its_token_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path());
    config.profile.kdf_iterations = 1;
    let emu = Arc::new(Emulator::new(config).unwrap());
    emu.provision(0, "other", &Pin::from(SO_PIN), &Pin::from(PIN))
        .unwrap();
    emu.provision(1, "card", &Pin::from(SO_PIN), &Pin::from(PIN))
        .unwrap();
    let card = Card::new(emu.clone(), 1).unwrap();
    assert_eq!(
        card.atr(),
        kilt_emulator::Profile::default_profile()
            .atr_bytes()
            .unwrap()
            .as_slice()
    );
    assert_eq!(card.atr()[..2], [0x3B, 0xDC]);
    assert!(card.token_present());
    emu.token(0).unwrap().set_present(false).unwrap();
    assert!(card.token_present(), "another token's removal");
    emu.token(1).unwrap().set_present(false).unwrap();
    assert!(!card.token_present());
    emu.token(1).unwrap().set_present(true).unwrap();
    assert!(card.token_present());
}

#[test]
fn a_reset_ends_the_card_session_and_the_selection() {
    let mut f = fixture();
    f.card.transmit(&PIV_SELECT);
    assert_eq!(
        sw(&f.card.transmit(&apdu(0x20, 0x00, 0x80, &pin_field(PIN)))),
        StatusWord::OK
    );
    assert_eq!(f.emu.token_info(f.slot).unwrap().sessions, 1);
    f.card.reset();
    assert_eq!(f.emu.token_info(f.slot).unwrap().sessions, 0);
    assert_eq!(
        sw(&f.card.transmit(&[0x00, 0x20, 0x00, 0x80])),
        StatusWord::INS_NOT_SUPPORTED,
        "nothing selected"
    );
    f.card.transmit(&PIV_SELECT);
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xCA]);
}

#[test]
fn the_trace_names_commands_and_never_shows_a_pin() {
    let mut f = fixture();
    let select = f.card.exchange(&PIV_SELECT);
    assert_eq!((select.name, select.hidden), ("SELECT", 0));
    let line = trace::line(&select);
    assert!(line.starts_with("SELECT "), "{line}");
    assert!(
        line.contains("C: 00 A4 04 00 05 A0 00 00 03 08 00 | R: 61 "),
        "{line}"
    );
    assert!(line.ends_with(" 9000 (success)"), "{line}");
    assert!(!line.contains("not shown"), "{line}");
    let verify = f
        .card
        .exchange(&apdu(0x20, 0x00, 0x80, &pin_field("31415926")));
    assert_eq!(
        (verify.name, verify.command.len(), verify.hidden),
        ("VERIFY", 4, 10)
    );
    let line = trace::line(&verify);
    assert!(
        line.contains("C: 00 20 00 80 <10 more bytes not shown: PIN> | R: 63C9"),
        "{line}"
    );
    assert!(
        line.contains("— wrong PIN; a PIV PIN has at most 8 characters"),
        "{line}"
    );
    assert!(!line.contains("33 31 34 31"), "{line}");
    let unknown = trace::line(&f.card.exchange(&[0x00, 0x02, 0x00, 0x00]));
    assert!(
        unknown.contains("| R: 6D00 (instruction not supported)"),
        "{unknown}"
    );
    let garbage = f.card.exchange(&[0x01, 0x02]);
    assert_eq!((garbage.name, garbage.sw), ("?", StatusWord::WRONG_LENGTH));
    for (cla, ins, name) in [
        (0x80, 0xCB, "GET CAPABILITY"),
        (0x90, 0xCB, "GET CAPABILITY"),
        (0x00, 0xA4, "SELECT"),
        (0x00, 0xC0, "GET RESPONSE"),
        (0x00, 0xCB, "GET DATA"),
        (0x00, 0xCA, "GET DATA"),
        (0x00, 0x20, "VERIFY"),
        (0x00, 0x24, "CHANGE REFERENCE DATA"),
        (0x00, 0x2C, "RESET RETRY COUNTER"),
        (0x00, 0x87, "GENERAL AUTHENTICATE"),
        (0x00, 0x47, "GENERATE ASYMMETRIC KEY PAIR"),
        (0x00, 0xDB, "PUT DATA"),
        (0x00, 0xFD, "GET VERSION (Yubico)"),
        (0x00, 0xF8, "GET SERIAL (Yubico)"),
        (0x00, 0x02, "UNKNOWN"),
    ] {
        let cmd = Command::parse(&[cla, ins, 0, 0]).unwrap();
        assert_eq!(command_name(&cmd), name, "{cla:02X} {ins:02X}");
    }
    // Only commands that carry a PIN are cut.
    let chuid = f
        .card
        .exchange(&apdu(0xCB, 0x3F, 0xFF, &[0x5C, 0x03, 0x5F, 0xC1, 0x02]));
    assert_eq!(chuid.hidden, 0);
    let status_query = f.card.exchange(&[0x00, 0x20, 0x00, 0x80]);
    assert_eq!(status_query.hidden, 0);
}

#[test]
fn chains_are_bounded_and_never_leak_into_another_command() {
    let mut f = fixture();
    f.card.transmit(&PIV_SELECT);
    // A chained part of GET DATA, then another command: the part is dropped, not prepended.
    let part = [0x10, 0xCB, 0x3F, 0xFF, 0x01, 0x5C];
    assert_eq!(f.card.transmit(&part), [0x90, 0x00]);
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xCA]);
    // Exactly MAX_CHAIN bytes are taken; one more is refused.
    let send_chain = |card: &mut Card, total: usize| -> StatusWord {
        let mut left = total;
        loop {
            let n = left.min(255);
            left -= n;
            let mut cmd = vec![
                if left > 0 { 0x10 } else { 0x00 },
                0xDB,
                0x3F,
                0xFF,
                n as u8,
            ];
            cmd.extend(std::iter::repeat_n(0xAA, n));
            let r = card.transmit(&cmd);
            if left == 0 || sw(&r) != StatusWord::OK {
                return sw(&r);
            }
        }
    };
    assert_ne!(
        send_chain(&mut f.card, MAX_CHAIN),
        StatusWord::NOT_ENOUGH_MEMORY
    );
    assert_eq!(
        send_chain(&mut f.card, MAX_CHAIN + 1),
        StatusWord::NOT_ENOUGH_MEMORY
    );
    // Room for a large certificate.
    assert_ne!(send_chain(&mut f.card, 4096), StatusWord::NOT_ENOUGH_MEMORY);
}

#[test]
fn select_forms() {
    let mut f = fixture();
    let c = &mut f.card;
    let jacarta = |p2: u8| [&[0x00, 0xA4, 0x04, p2, 12][..], &JACARTA_AID, &[0x00]].concat();
    let fci = c.transmit(&jacarta(0x00));
    assert_eq!(sw(&fci), StatusWord::OK);
    assert_eq!(data(&fci)[0], 0x6F);
    assert!(data(&fci).ends_with(&JACARTA_AID));
    assert_eq!(c.transmit(&jacarta(0x0C)), [0x90, 0x00]);
    assert_eq!(sw(&c.transmit(&jacarta(0x01))), StatusWord::WRONG_P1P2);
    // By file identifier or path: no files here. Other P1: wrong.
    assert_eq!(
        sw(&c.transmit(&[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00])),
        StatusWord::NOT_FOUND
    );
    assert_eq!(
        sw(&c.transmit(&[0x00, 0xA4, 0x08, 0x00, 0x02, 0x3F, 0x00])),
        StatusWord::NOT_FOUND
    );
    assert_eq!(
        sw(&c.transmit(&[0x00, 0xA4, 0x05, 0x00, 0x02, 0x3F, 0x00])),
        StatusWord::WRONG_P1P2
    );
    // A PIV prefix shorter than the RID is not a PIV selection; a longer AID than PIV's is not.
    assert_eq!(
        sw(&c.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x04, 0xA0, 0x00, 0x00, 0x03])),
        StatusWord::NOT_FOUND
    );
    let long = [
        &PIV_SELECT[..4],
        &[12],
        &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0, 9][..],
    ]
    .concat();
    assert_eq!(sw(&c.transmit(&long)), StatusWord::NOT_FOUND);
    // The JaCarta AID must be whole.
    let part = [&[0x00, 0xA4, 0x04, 0x0C, 6][..], &JACARTA_AID[..6]].concat();
    assert_eq!(sw(&c.transmit(&part)), StatusWord::NOT_FOUND);
}

#[test]
fn jacarta_pin_references_and_classes() {
    let mut f = fixture();
    let select = [&[0x00, 0xA4, 0x04, 0x0C, 12][..], &JACARTA_AID].concat();
    f.card.transmit(&select);
    let verify =
        |r: u8, pin: &str| [&[0x00, 0x20, 0x00, r, pin.len() as u8][..], pin.as_bytes()].concat();
    // SO PIN under reference 10 (and 90, its specific form); a wrong one counts on the SO's tries.
    assert_eq!(f.card.transmit(&verify(0x10, "11111111")), [0x63, 0xC9]);
    assert_eq!(f.emu.token_info(f.slot).unwrap().so_pin.tries_left, 9);
    assert_eq!(f.card.transmit(&verify(0x90, SO_PIN)), [0x90, 0x00]);
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0x00, 0x10]), [0x63, 0xCA]);
    assert_eq!(f.card.transmit(&verify(0x20, PIN)), [0x90, 0x00]);
    assert_eq!(f.card.transmit(&verify(0x30, PIN)), [0x6A, 0x88]);
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0x01, 0x20]), [0x6A, 0x86]);
    // GET CAPABILITY is class 80; class 00 is refused as a class, other tags are unknown.
    assert_eq!(
        f.card.transmit(&[0x00, 0xCB, 0x01, 0x14, 0x00]),
        [0x6E, 0x00]
    );
    assert_eq!(f.card.transmit(&[0x80, 0x20, 0x00, 0x20]), [0x6E, 0x00]);
    assert_eq!(
        f.card.transmit(&[0x80, 0xCB, 0x01, 0x80, 0x00]),
        [0x6A, 0x88]
    );
    assert_eq!(f.card.transmit(&[0x80, 0x47, 0x00, 0x00]), [0x6D, 0x00]);
}
