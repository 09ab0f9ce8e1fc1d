//! The card engine over a real token store, without a reader: ISO 7816-4 status words, chaining,
//! and one token behind two doors (the core as the PKCS#11 module uses it, and the card).

mod common;

use common::*;
use cryptoki_sys::*;
use kilt_card::{StatusWord, tlv};
use kilt_emulator::{Pin, UserType};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use proptest::prelude::*;

#[test]
fn iso_status_words_and_a_failed_select_keeps_the_application() {
    let mut f = fixture();
    let c = &mut f.card;
    assert_eq!(
        sw(&c.transmit(&[0x00, 0x02, 0x00, 0x00])),
        StatusWord::INS_NOT_SUPPORTED
    );
    assert_eq!(sw(&c.transmit(&PIV_SELECT)), StatusWord::OK);
    let unknown = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x09, 0x99];
    assert_eq!(sw(&c.transmit(&unknown)), StatusWord::NOT_FOUND);
    // PIV is still selected: its VERIFY status query answers.
    assert_eq!(
        sw(&c.transmit(&[0x00, 0x20, 0x00, 0x80])),
        StatusWord(0x63CA)
    );
    assert_eq!(
        sw(&c.transmit(&[0x00, 0x99, 0x00, 0x00])),
        StatusWord::INS_NOT_SUPPORTED
    );
    assert_eq!(
        sw(&c.transmit(&[0xFF, 0x20, 0x00, 0x80])),
        StatusWord::CLA_NOT_SUPPORTED
    );
    assert_eq!(
        sw(&c.transmit(&[0x00, 0x20, 0x00, 0x80, 0x05, 1])),
        StatusWord::WRONG_LENGTH
    );
    assert_eq!(sw(&c.transmit(&[0x00, 0x20])), StatusWord::WRONG_LENGTH);
    assert_eq!(
        sw(&c.transmit(&[0x00, 0xCB, 0x3F, 0x00, 0x03, 0x5C, 0x01, 0x7E])),
        StatusWord::WRONG_P1P2
    );
    assert_eq!(
        sw(&c.transmit(&apdu(0xCB, 0x3F, 0xFF, &[0x5C, 0x03, 0x5F, 0xC1, 0x05]))),
        StatusWord::NOT_FOUND
    );
    assert_eq!(
        sw(&c.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x10])),
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
}

#[test]
fn jacarta_application_gives_the_token_serial_the_way_pr_3423_reads_it() {
    let mut f = fixture();
    let serial = f.emu.token_info(f.slot).unwrap().serial;
    let c = &mut f.card;
    let aid = [
        0xA0, 0x00, 0x00, 0x01, 0x64, 0x4C, 0x41, 0x53, 0x45, 0x52, 0x00, 0x01,
    ];
    let select = [&[0x00, 0xA4, 0x04, 0x0C, 12][..], &aid].concat();
    assert_eq!(c.transmit(&select), [0x90, 0x00]);
    let r = c.transmit(&[0x80, 0xCB, 0x01, 0x14, 0x00]);
    assert_eq!(sw(&r), StatusWord::OK);
    assert_eq!(hex::encode_upper(data(&r)), serial);
    // Plain ISO VERIFY with the whole PIN (no 8-byte limit here); a wrong one counts.
    assert_eq!(c.transmit(&[0x00, 0x20, 0x00, 0x20]), [0x63, 0xCA]);
    assert_eq!(
        c.transmit(&[&[0x00, 0x20, 0x00, 0x20, 4][..], b"0000"].concat()),
        [0x63, 0xC9]
    );
    let ok = [&[0x00, 0x20, 0x00, 0x20, 8][..], PIN.as_bytes()].concat();
    assert_eq!(c.transmit(&ok), [0x90, 0x00]);
    assert_eq!(c.transmit(&[0x00, 0x20, 0x00, 0x20]), [0x90, 0x00]);
}

#[test]
fn a_pin_try_through_either_door_counts_on_both_and_a_lock_is_a_lock_everywhere() {
    let mut f = fixture();
    f.card.transmit(&PIV_SELECT);
    let wrong = apdu(0x20, 0x00, 0x80, &pin_field("99999999"));
    assert_eq!(sw(&f.card.transmit(&wrong)), StatusWord(0x63C9));
    assert_eq!(tries(&f), 9);
    // A wrong PIN through the other door shows in the card's status query.
    let s = p11_session(&f);
    assert!(
        f.emu
            .login(s, UserType::User, Some(&Pin::from("99999999")))
            .is_err()
    );
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xC8]);
    for left in (0..8).rev() {
        let r = f.card.transmit(&wrong);
        let want = if left == 0 {
            StatusWord::AUTH_BLOCKED
        } else {
            StatusWord(0x63C0 | left)
        };
        assert!(
            sw(&r) == want || (left == 0 && sw(&r) == StatusWord(0x63C0)),
            "{:?}",
            sw(&r)
        );
    }
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0x00, 0x80]), [0x69, 0x83]);
    assert!(f.emu.token_info(f.slot).unwrap().user_pin.locked);
    let right = apdu(0x20, 0x00, 0x80, &pin_field(PIN));
    assert_eq!(sw(&f.card.transmit(&right)), StatusWord::AUTH_BLOCKED);
    assert!(matches!(
        f.emu.login(s, UserType::User, Some(&Pin::from(PIN))),
        Err(kilt_emulator::Error::PinLocked)
    ));
    // A wrong PUK (the SO PIN) unblocks nothing; the right one sets a new PIN.
    let rrc =
        |puk: &str, new: &str| apdu(0x2C, 0x00, 0x80, &[pin_field(puk), pin_field(new)].concat());
    assert_eq!(
        sw(&f.card.transmit(&rrc("11111111", "87654321"))),
        StatusWord(0x63C9)
    );
    assert_eq!(
        sw(&f.card.transmit(&rrc(SO_PIN, "87654321"))),
        StatusWord::OK
    );
    f.emu
        .login(s, UserType::User, Some(&Pin::from("87654321")))
        .unwrap();
    assert_eq!(tries(&f), 10);
}

#[test]
fn a_key_made_through_pkcs11_signs_through_the_card_with_chained_answers() {
    let mut f = fixture();
    let (_, point, cert) = pkcs11_key_set(&f);
    let c = &mut f.card;
    c.transmit(&PIV_SELECT);
    // The AUTH certificate is 9A's object; longer than one short answer when asked in 8-byte
    // slices, it comes back whole through GET RESPONSE.
    let get = [
        0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x08,
    ];
    let (obj, status) = full(c, &get);
    assert_eq!(status, StatusWord::OK);
    let inner = tlv::find(&obj, 0x53).unwrap();
    assert_eq!(tlv::find(inner, 0x70).unwrap(), &cert[..]);
    let digest = [0x5Au8; 32];
    let auth = apdu(
        0x87,
        0x11,
        0x9A,
        &tlv::tlv(
            0x7C,
            &[&[0x82, 0x00][..], &tlv::tlv(0x81, &digest)].concat(),
        ),
    );
    assert_eq!(sw(&c.transmit(&auth)), StatusWord::SECURITY_NOT_SATISFIED);
    assert_eq!(
        sw(&c.transmit(&apdu(0x20, 0x00, 0x80, &pin_field(PIN)))),
        StatusWord::OK
    );
    let (r, status) = full(c, &auth);
    assert_eq!(status, StatusWord::OK);
    let der = tlv::find(tlv::find(&r, 0x7C).unwrap(), 0x82).unwrap();
    let sig = p256::ecdsa::Signature::from_der(der).unwrap();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    key.verify_prehash(&digest, &sig).unwrap();
    assert!(key.verify_prehash(&[0x5B; 32], &sig).is_err());
    // 9C holds nothing here.
    assert_eq!(
        sw(&c.transmit(&apdu(0x20, 0x00, 0x80, &pin_field(PIN)))),
        StatusWord::OK
    );
    let auth9c = apdu(
        0x87,
        0x11,
        0x9C,
        &tlv::tlv(
            0x7C,
            &[&[0x82, 0x00][..], &tlv::tlv(0x81, &digest)].concat(),
        ),
    );
    assert_eq!(sw(&c.transmit(&auth9c)), StatusWord::REFERENCE_NOT_FOUND);
}

#[test]
fn keys_and_certificates_made_through_the_card_are_token_objects() {
    let mut f = fixture();
    let c = &mut f.card;
    c.transmit(&PIV_SELECT);
    let generate = apdu(0x47, 0x00, 0x9C, &[0xAC, 0x03, 0x80, 0x01, 0x11]);
    // Without the management key, then without the PIN: refused, nothing made.
    assert_eq!(
        sw(&c.transmit(&generate)),
        StatusWord::SECURITY_NOT_SATISFIED
    );
    management_auth(c);
    assert_eq!(
        sw(&c.transmit(&generate)),
        StatusWord::SECURITY_NOT_SATISFIED
    );
    assert_eq!(
        sw(&c.transmit(&apdu(0x20, 0x00, 0x80, &pin_field(PIN)))),
        StatusWord::OK
    );
    let rsa = apdu(0x47, 0x00, 0x9C, &[0xAC, 0x03, 0x80, 0x01, 0x07]);
    assert_eq!(sw(&c.transmit(&rsa)), StatusWord::WRONG_DATA);
    let (r, status) = full(c, &generate);
    assert_eq!(status, StatusWord::OK);
    let point = tlv::find(tlv::find(&r, 0x7F49).unwrap(), 0x86)
        .unwrap()
        .to_vec();
    assert_eq!(point.len(), 65);
    let cert = client_auth(&point);
    let mut obj = tlv::tlv(0x70, &cert);
    obj.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
    let put = [tlv::tlv(0x5C, &[0x5F, 0xC1, 0x0A]), tlv::tlv(0x53, &obj)].concat();
    // Sent in chained parts, as a reader does for long data (CLA bit 0x10).
    for (i, part) in put.chunks(200).enumerate() {
        let last = (i + 1) * 200 >= put.len();
        let mut cmd = apdu(0xDB, 0x3F, 0xFF, part);
        cmd.pop();
        if !last {
            cmd[0] |= 0x10;
        }
        assert_eq!(sw(&c.transmit(&cmd)), StatusWord::OK, "part {i}");
    }
    // Through the other door: key pair and certificate under CKA_ID 9C.
    let s = p11_session(&f);
    // One process here: the card's VERIFY already logged the user in for every session.
    assert!(matches!(
        f.emu.login(s, UserType::User, Some(&Pin::from(PIN))),
        Err(kilt_emulator::Error::AlreadyLoggedIn)
    ));
    f.emu.find_init(s, &[(CKA_ID, vec![0x9C])]).unwrap();
    let found = f.emu.find_next(s, 10).unwrap();
    f.emu.find_final(s).unwrap();
    assert_eq!(found.len(), 3, "private key, public key, certificate");
    f.emu
        .find_init(
            s,
            &[
                (CKA_CLASS, CKO_CERTIFICATE.to_ne_bytes().to_vec()),
                (CKA_ID, vec![0x9C]),
            ],
        )
        .unwrap();
    let certs = f.emu.find_next(s, 10).unwrap();
    let value = f.emu.get_attributes(s, certs[0], &[CKA_VALUE]).unwrap();
    assert_eq!(value[0], kilt_emulator::AttrResult::Value(cert));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any byte string gets a status word and nothing panics, whatever came before.
    #[test]
    fn every_byte_string_ends_in_a_status_word(cmds in proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(ins, d)| { let mut c = vec![0x00, ins, 0x00, 0x80, d.len() as u8]; c.extend(d); c }),
            Just(PIV_SELECT.to_vec()),
        ], 1..12)) {
        let mut f = fixture();
        for c in cmds {
            let r = f.card.transmit(&c);
            prop_assert!(r.len() >= 2);
            prop_assert!(r.len() <= 258);
        }
    }

    /// A command sent in chained parts of any sizes is the same command.
    #[test]
    fn chained_parts_reassemble(cut in proptest::collection::vec(1usize..7, 1..5)) {
        let mut f = fixture();
        f.card.transmit(&PIV_SELECT);
        let body = [0x5C, 0x03, 0x5F, 0xC1, 0x02];
        let whole = full(&mut f.card, &apdu(0xCB, 0x3F, 0xFF, &body));
        let mut rest = &body[..];
        let mut last = None;
        for n in cut.iter().copied().chain(std::iter::repeat(body.len())) {
            let n = n.min(rest.len());
            let (part, tail) = rest.split_at(n);
            rest = tail;
            let mut cmd = apdu(0xCB, 0x3F, 0xFF, part);
            if !rest.is_empty() {
                cmd[0] |= 0x10;
                prop_assert_eq!(sw(&f.card.transmit(&cmd)), StatusWord::OK);
            } else {
                last = Some(full(&mut f.card, &cmd));
                break;
            }
        }
        prop_assert_eq!(last.unwrap(), whole);
    }

    /// A model of the PIN counter across both doors: tries go down by one per wrong PIN on
    /// either door, back to 10 on a right one while not locked, and the lock holds.
    #[test]
    fn pin_counter_model_across_both_doors(steps in proptest::collection::vec((any::<bool>(), any::<bool>()), 1..16)) {
        let mut f = fixture();
        f.card.transmit(&PIV_SELECT);
        let s = p11_session(&f);
        let mut model = 10u32;
        for (through_card, right) in steps {
            let pin = if right { PIN } else { "99999999" };
            if through_card {
                let r = f.card.transmit(&apdu(0x20, 0x00, 0x80, &pin_field(pin)));
                let want = if model == 0 { StatusWord::AUTH_BLOCKED }
                    else if right { StatusWord::OK }
                    else { StatusWord::tries_left(model - 1) };
                prop_assert!(sw(&r) == want || (model == 1 && !right && sw(&r) == StatusWord::AUTH_BLOCKED));
            } else {
                f.emu.logout(s).ok();
                let r = f.emu.login(s, UserType::User, Some(&Pin::from(pin)));
                prop_assert_eq!(r.is_ok(), right && model > 0);
                f.emu.logout(s).ok();
            }
            model = if model == 0 { 0 } else if right { 10 } else { model - 1 };
            prop_assert_eq!(tries(&f), model);
            prop_assert_eq!(f.emu.token_info(f.slot).unwrap().user_pin.locked, model == 0);
            let q = f.card.transmit(&[0x00, 0x20, 0x00, 0x80]);
            let fits = if model == 0 {
                sw(&q) == StatusWord::AUTH_BLOCKED
            } else {
                sw(&q) == StatusWord::tries_left(model) || sw(&q) == StatusWord::OK
            };
            prop_assert!(fits, "status query {:?} with {} tries", sw(&q), model);
        }
    }
}
