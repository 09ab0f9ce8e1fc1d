//! The card engine over a real token store, without a reader: ISO 7816-4 status words, chaining,
//! and one token behind two doors (the core as the PKCS#11 module uses it, and the card).

use cryptoki_sys::*;
use kilt_card::{Card, StatusWord, tlv};
use kilt_emulator::{Config, Emulator, Mechanism, ObjectHandle, Pin, SessionHandle, UserType};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use proptest::prelude::*;
use std::sync::Arc;

const PIN: &str = "12345678";
const SO_PIN: &str = "00000000";
const PIV_SELECT: [u8; 11] = [
    0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
];
const MGMT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

struct Fixture {
    _dir: tempfile::TempDir,
    emu: Arc<Emulator>,
    slot: u64,
    card: Card,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path());
    config.profile.kdf_iterations = 1;
    let emu = Arc::new(Emulator::new(config).unwrap());
    let slot = emu.slot_list(true).unwrap()[0];
    emu.provision(slot, "card", &Pin::from(SO_PIN), &Pin::from(PIN))
        .unwrap();
    let card = Card::new(emu.clone(), slot).unwrap();
    Fixture {
        _dir: dir,
        emu,
        slot,
        card,
    }
}

fn sw(r: &[u8]) -> StatusWord {
    StatusWord(u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]))
}

fn data(r: &[u8]) -> &[u8] {
    &r[..r.len() - 2]
}

fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    kilt_card::Command {
        cla: 0,
        ins,
        p1,
        p2,
        data: data.to_vec(),
        ne: Some(256),
        extended: false,
    }
    .to_bytes()
}

fn pin_field(pin: &str) -> Vec<u8> {
    let mut f = pin.as_bytes().to_vec();
    f.resize(8, 0xFF);
    f
}

/// Sends a command and follows `61xx` with GET RESPONSE, as OpenSC does.
fn full(card: &mut Card, cmd: &[u8]) -> (Vec<u8>, StatusWord) {
    let mut r = card.transmit(cmd);
    let mut out = data(&r).to_vec();
    while sw(&r).sw1() == 0x61 {
        r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, sw(&r).sw2()]);
        out.extend_from_slice(data(&r));
    }
    (out, sw(&r))
}

/// A session of the token's other door (the core as the PKCS#11 module drives it).
fn p11_session(f: &Fixture) -> SessionHandle {
    f.emu.open_session(f.slot, true, true).unwrap()
}

fn tries(f: &Fixture) -> u32 {
    f.emu.token_info(f.slot).unwrap().user_pin.tries_left
}

/// A key pair made through PKCS#11 with a certificate for it (EKU clientAuth): the CA's AUTH set.
fn pkcs11_key_set(f: &Fixture) -> (ObjectHandle, Vec<u8>, Vec<u8>) {
    let s = p11_session(f);
    f.emu
        .login(s, UserType::User, Some(&Pin::from(PIN)))
        .unwrap();
    let id = b"auth-1".to_vec();
    let one = vec![1u8];
    let (public, private) = f
        .emu
        .generate_key_pair(
            s,
            &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
            &[
                (CKA_EC_PARAMS, kilt_emulator::crypto::P256_PARAMS.to_vec()),
                (CKA_TOKEN, one.clone()),
                (CKA_ID, id.clone()),
            ],
            &[(CKA_TOKEN, one.clone()), (CKA_ID, id.clone())],
        )
        .unwrap();
    let point = match f.emu.get_attributes(s, public, &[CKA_EC_POINT]).unwrap()[0].clone() {
        kilt_emulator::AttrResult::Value(v) => {
            kilt_emulator::crypto::parse_ec_point(&v).unwrap().to_vec()
        }
        other => panic!("{other:?}"),
    };
    // A certificate for that key, issued by a throwaway CA (rcgen is not needed: the card
    // only reads the EKU and the public key, so x509 is built by hand from a template).
    let cert = certificate_for(&point);
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let subject = parsed.subject().as_raw().to_vec();
    f.emu
        .create_object(
            s,
            &[
                (CKA_CLASS, CKO_CERTIFICATE.to_ne_bytes().to_vec()),
                (CKA_CERTIFICATE_TYPE, CKC_X_509.to_ne_bytes().to_vec()),
                (CKA_TOKEN, one),
                (CKA_ID, id),
                (CKA_SUBJECT, subject),
                (CKA_VALUE, cert.clone()),
            ],
        )
        .unwrap();
    f.emu.logout(s).unwrap();
    f.emu.close_session(s).unwrap();
    (private, point, cert)
}

/// A self-issued certificate with EKU clientAuth for `point`, signed by an unrelated key.
fn certificate_for(point: &[u8]) -> Vec<u8> {
    use p256::ecdsa::{SigningKey, signature::Signer};
    let ca = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let seq = |v: &[u8]| tlv::tlv(0x30, v);
    let oid = |o: &[u8]| tlv::tlv(0x06, o);
    let ecdsa_sha256 = seq(&oid(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]));
    let name = seq(&tlv::tlv(
        0x31,
        &seq(&[oid(&[0x55, 0x04, 0x03]), tlv::tlv(0x0C, b"card test")].concat()),
    ));
    let spki = seq(&[
        seq(&[
            oid(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]),
            oid(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]),
        ]
        .concat()),
        tlv::tlv(0x03, &[&[0u8][..], point].concat()),
    ]
    .concat());
    let validity = seq(&[
        tlv::tlv(0x17, b"250101000000Z"),
        tlv::tlv(0x17, b"350101000000Z"),
    ]
    .concat());
    // extendedKeyUsage: clientAuth.
    let eku = seq(&[
        oid(&[0x55, 0x1D, 0x25]),
        tlv::tlv(
            0x04,
            &seq(&oid(&[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02])),
        ),
    ]
    .concat());
    let tbs = seq(&[
        tlv::tlv(0xA0, &tlv::tlv(0x02, &[2])),
        tlv::tlv(0x02, &[0x01, 0x23]),
        ecdsa_sha256.clone(),
        name.clone(),
        validity,
        name,
        spki,
        tlv::tlv(0xA3, &seq(&eku)),
    ]
    .concat());
    let sig: p256::ecdsa::Signature = ca.sign(&tbs);
    seq(&[
        tbs,
        ecdsa_sha256,
        tlv::tlv(0x03, &[&[0u8][..], sig.to_der().as_bytes()].concat()),
    ]
    .concat())
}

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

fn management_auth(c: &mut Card) {
    use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    let k = des::TdesEde3::new(&MGMT_KEY.into());
    let r = c.transmit(&apdu(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x80, 0x00]));
    assert_eq!(sw(&r), StatusWord::OK);
    let mut w: [u8; 8] = data(&r)[4..12].try_into().unwrap();
    let mut b = w.into();
    k.decrypt_block(&mut b);
    w = b.into();
    let challenge = [9u8; 8];
    let step2 = tlv::tlv(
        0x7C,
        &[tlv::tlv(0x80, &w), tlv::tlv(0x81, &challenge)].concat(),
    );
    let r = c.transmit(&apdu(0x87, 0x03, 0x9B, &step2));
    assert_eq!(sw(&r), StatusWord::OK);
    let mut e = challenge.into();
    k.encrypt_block(&mut e);
    let e: [u8; 8] = e.into();
    assert_eq!(&data(&r)[4..12], &e, "the card proves the key too");
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
    let cert = certificate_for(&point);
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
