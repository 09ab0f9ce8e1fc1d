//! The PIV application's rules (NIST SP 800-73-4 Part 2) as middleware relies on them: which
//! key set each key reference is, the data objects, PIN commands, signatures and the management
//! key.

mod common;

use common::*;
use cryptoki_sys::*;
use kilt_card::{StatusWord, tlv};
use kilt_emulator::{AttrResult, Pin, UserType};
use rcgen::{ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose as Ku};

fn selected() -> Fixture {
    let mut f = fixture();
    assert_eq!(sw(&f.card.transmit(&PIV_SELECT)), StatusWord::OK);
    f
}

fn verify(f: &mut Fixture, pin: &str) -> StatusWord {
    sw(&f.card.transmit(&apdu(0x20, 0x00, 0x80, &pin_field(pin))))
}

fn status(f: &mut Fixture) -> StatusWord {
    sw(&f.card.transmit(&[0x00, 0x20, 0x00, 0x80]))
}

#[test]
fn key_references_follow_the_certificates_purpose_and_age() {
    let mut f = selected();
    let document_signing = Eku::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 36]);
    let mut made = vec![];
    for (id, eku, ku, year) in [
        (&b"auth-old"[..], vec![Eku::ClientAuth], vec![], 2024),
        (b"auth-new", vec![Eku::ClientAuth], vec![], 2026),
        (b"sign-email", vec![Eku::EmailProtection], vec![], 2025),
        (b"sign-doc", vec![document_signing], vec![], 2026),
        (b"bank-1", vec![], vec![], 2025),
        // A two-byte ID that starts like a reference is not one.
        (&[0x9A, 0x01][..], vec![Eku::ServerAuth], vec![], 2027),
    ] {
        let (_, point) = p11_key(&f, id);
        let cert = certificate(&point, &eku, &ku, year);
        p11_certificate(&f, id, &cert);
        made.push(cert);
    }
    assert_eq!(piv_certificate(&mut f.card, TAG_9A), Some(made[1].clone()));
    assert_eq!(piv_certificate(&mut f.card, TAG_9C), Some(made[3].clone()));
    assert_eq!(piv_certificate(&mut f.card, TAG_9D), Some(made[5].clone()));
    assert_eq!(piv_certificate(&mut f.card, [0x5F, 0xC1, 0x01]), None);

    // nonRepudiation alone is a signing certificate too, and email protection is.
    let mut g = selected();
    let (_, point) = p11_key(&g, b"nr");
    let nr = certificate(&point, &[], &[Ku::ContentCommitment], 2025);
    p11_certificate(&g, b"nr", &nr);
    assert_eq!(piv_certificate(&mut g.card, TAG_9C), Some(nr));
    let mut h = selected();
    let (_, point) = p11_key(&h, b"mail");
    let mail = certificate(&point, &[Eku::EmailProtection], &[], 2025);
    p11_certificate(&h, b"mail", &mail);
    assert_eq!(piv_certificate(&mut h.card, TAG_9C), Some(mail));
    assert_eq!(piv_certificate(&mut h.card, TAG_9D), None);
}

#[test]
fn a_set_under_the_reference_itself_wins_and_is_not_classified_elsewhere() {
    let mut f = selected();
    let (_, a) = p11_key(&f, b"auth-1");
    let ca_auth = client_auth(&a);
    p11_certificate(&f, b"auth-1", &ca_auth);
    // A clientAuth certificate kept under 9C belongs to 9C, not to 9A.
    let (_, b) = p11_key(&f, &[0x9C]);
    let under_9c = client_auth(&b);
    p11_certificate(&f, &[0x9C], &under_9c);
    assert_eq!(piv_certificate(&mut f.card, TAG_9A), Some(ca_auth));
    assert_eq!(piv_certificate(&mut f.card, TAG_9C), Some(under_9c.clone()));
    let (_, c) = p11_key(&f, &[0x9A]);
    let under_9a = certificate(&c, &[], &[], 2020);
    p11_certificate(&f, &[0x9A], &under_9a);
    assert_eq!(piv_certificate(&mut f.card, TAG_9A), Some(under_9a));
}

#[test]
fn data_objects_and_the_application_template() {
    let mut f = fixture();
    let serial = hex::decode(f.emu.token_info(f.slot).unwrap().serial).unwrap();
    let (apt, s) = full(&mut f.card, &PIV_SELECT);
    assert_eq!(s, StatusWord::OK);
    let inner = tlv::find(&apt, 0x61).expect("an application property template");
    assert_eq!(tlv::find(inner, 0x4F), Some(&[0, 0, 0x10, 0, 1, 0][..]));
    assert_eq!(
        tlv::find(tlv::find(inner, 0x79).unwrap(), 0x4F),
        Some(&[0xA0, 0, 0, 3, 8][..])
    );
    // P2 = 0C: no answer data.
    let quiet = [&[0x00, 0xA4, 0x04, 0x0C, 0x05][..], &PIV_SELECT[5..10]].concat();
    assert_eq!(f.card.transmit(&quiet), [0x90, 0x00]);

    let get = |c: &mut kilt_card::Card, tag: &[u8]| {
        full(c, &apdu(0xCB, 0x3F, 0xFF, &tlv::tlv(0x5C, tag)))
    };
    let (discovery, s) = get(&mut f.card, &[0x7E]);
    assert_eq!(s, StatusWord::OK);
    let d = tlv::find(&discovery, 0x7E).unwrap();
    assert_eq!(
        tlv::find(d, 0x5F2F),
        Some(&[0x40, 0x00][..]),
        "PIN policy: PIV PIN"
    );
    let (chuid, s) = get(&mut f.card, &[0x5F, 0xC1, 0x02]);
    assert_eq!(s, StatusWord::OK);
    let c = tlv::find(&chuid, 0x53).unwrap();
    assert_eq!(tlv::find(c, 0x30).unwrap().len(), 25, "FASC-N");
    assert_eq!(
        &tlv::find(c, 0x34).unwrap()[..serial.len()],
        &serial[..],
        "GUID"
    );
    let (ccc, s) = get(&mut f.card, &[0x5F, 0xC1, 0x07]);
    assert_eq!(s, StatusWord::OK);
    let card_id = tlv::find(tlv::find(&ccc, 0x53).unwrap(), 0xF0).unwrap();
    assert_eq!(card_id.len(), 21);
    assert_eq!(
        get(&mut f.card, &[0x5F, 0xC1, 0x0C]).1,
        StatusWord::NOT_FOUND
    );
    // A tag of four bytes, a missing 5C, wrong P1-P2.
    assert_eq!(
        get(&mut f.card, &[0x5F, 0xC1, 0x02, 0x00]).1,
        StatusWord::WRONG_DATA
    );
    let no_tag = apdu(0xCB, 0x3F, 0xFF, &[0x53, 0x00]);
    assert_eq!(sw(&f.card.transmit(&no_tag)), StatusWord::WRONG_DATA);
    let bad = apdu(0xCB, 0x3F, 0x00, &[0x5C, 0x01, 0x7E]);
    assert_eq!(sw(&f.card.transmit(&bad)), StatusWord::WRONG_P1P2);
    // Yubico's extensions that yubico-piv-tool asks first.
    let v = f.card.transmit(&[0x00, 0xFD, 0x00, 0x00, 0x00]);
    assert_eq!(v, [5, 2, 7, 0x90, 0x00]);
    let s4 = f.card.transmit(&[0x00, 0xF8, 0x00, 0x00, 0x00]);
    assert_eq!(data(&s4), &serial[serial.len() - 4..]);
    // PIV is class 00 only.
    assert_eq!(
        sw(&f.card.transmit(&[0x80, 0xFD, 0x00, 0x00])),
        StatusWord::CLA_NOT_SUPPORTED
    );
}

#[test]
fn the_cards_security_status_is_its_own() {
    let mut f = selected();
    // The other door logging in does not verify the card.
    let s = p11_session(&f);
    f.emu
        .login(s, UserType::User, Some(&Pin::from(PIN)))
        .unwrap();
    assert_eq!(status(&mut f), StatusWord(0x63CA));
    f.emu.logout(s).unwrap();
    assert_eq!(verify(&mut f, PIN), StatusWord::OK);
    assert_eq!(status(&mut f), StatusWord::OK);
    // Selecting PIV again keeps it; P1 = FF resets it (and the login with it).
    assert_eq!(sw(&f.card.transmit(&PIV_SELECT)), StatusWord::OK);
    assert_eq!(status(&mut f), StatusWord::OK);
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0xFF, 0x80]), [0x90, 0x00]);
    assert_eq!(status(&mut f), StatusWord(0x63CA));
    assert_eq!(
        f.emu.session_info(s).unwrap().state,
        kilt_emulator::SessionState::RwPublic
    );
    // Another application's selection ends it too.
    assert_eq!(verify(&mut f, PIN), StatusWord::OK);
    let jacarta = [
        0x00, 0xA4, 0x04, 0x0C, 12, 0xA0, 0x00, 0x00, 0x01, 0x64, 0x4C, 0x41, 0x53, 0x45, 0x52,
        0x00, 0x01,
    ];
    assert_eq!(f.card.transmit(&jacarta), [0x90, 0x00]);
    assert_eq!(f.card.transmit(&[0x00, 0x20, 0x00, 0x20]), [0x63, 0xCA]);
    // Only the application PIN (80) verifies here; P1 other than 00/FF is refused.
    f.card.transmit(&PIV_SELECT);
    assert_eq!(
        sw(&f.card.transmit(&apdu(0x20, 0x00, 0x81, &pin_field(SO_PIN)))),
        StatusWord::REFERENCE_NOT_FOUND
    );
    assert_eq!(
        sw(&f.card.transmit(&apdu(0x20, 0x01, 0x80, &pin_field(PIN)))),
        StatusWord::WRONG_P1P2
    );
    assert_eq!(
        sw(&f.card.transmit(&apdu(0x20, 0x00, 0x80, b"1234"))),
        StatusWord::WRONG_DATA
    );
}

#[test]
fn change_reference_data_for_the_pin_and_the_puk() {
    let mut f = selected();
    let crd = |p2: u8, old: &str, new: &str| {
        apdu(0x24, 0x00, p2, &[pin_field(old), pin_field(new)].concat())
    };
    assert_eq!(
        sw(&f.card.transmit(&crd(0x80, "99999999", "55555555"))),
        StatusWord(0x63C9)
    );
    assert_eq!(
        sw(&f.card.transmit(&crd(0x80, PIN, "55555555"))),
        StatusWord::OK
    );
    assert_eq!(
        status(&mut f),
        StatusWord::OK,
        "changing the PIN verifies it"
    );
    // The other door sees the new PIN (and the tries back at 10).
    let s = p11_session(&f);
    f.emu.logout(s).ok();
    assert!(
        f.emu
            .login(s, UserType::User, Some(&Pin::from(PIN)))
            .is_err()
    );
    f.emu
        .login(s, UserType::User, Some(&Pin::from("55555555")))
        .unwrap();
    f.emu.logout(s).unwrap();
    // The PUK is the SO PIN: changed here, it unblocks with the new value.
    assert_eq!(
        sw(&f.card.transmit(&crd(0x81, SO_PIN, "66666666"))),
        StatusWord::OK
    );
    assert!(
        f.emu
            .login(s, UserType::So, Some(&Pin::from("66666666")))
            .is_ok()
    );
    f.emu.logout(s).unwrap();
    let rrc = apdu(
        0x2C,
        0x00,
        0x80,
        &[pin_field("66666666"), pin_field(PIN)].concat(),
    );
    assert_eq!(sw(&f.card.transmit(&rrc)), StatusWord::OK);
    assert_eq!(verify(&mut f, PIN), StatusWord::OK);
    // Bad references and lengths change nothing.
    assert_eq!(
        sw(&f.card.transmit(&crd(0x9B, PIN, "11111111"))),
        StatusWord::REFERENCE_NOT_FOUND
    );
    assert_eq!(
        sw(&f.card.transmit(&apdu(
            0x24,
            0x01,
            0x80,
            &[pin_field(PIN), pin_field("11111111")].concat()
        ))),
        StatusWord::WRONG_P1P2
    );
    assert_eq!(
        sw(&f.card.transmit(&apdu(0x24, 0x00, 0x80, &pin_field(PIN)))),
        StatusWord::WRONG_DATA
    );
    assert_eq!(
        sw(&f.card.transmit(&apdu(
            0x2C,
            0x00,
            0x81,
            &[pin_field(SO_PIN), pin_field(PIN)].concat()
        ))),
        StatusWord::WRONG_P1P2
    );
    assert_eq!(
        sw(&f.card.transmit(&apdu(0x2C, 0x00, 0x80, &pin_field(SO_PIN)))),
        StatusWord::WRONG_DATA
    );
    assert_eq!(verify(&mut f, PIN), StatusWord::OK);
    assert_eq!(tries(&f), 10);
}

#[test]
fn signing_rules_9a_once_per_verify_9c_right_before_each_signature() {
    let mut f = selected();
    let (_, auth) = p11_key(&f, b"auth-1");
    p11_certificate(&f, b"auth-1", &client_auth(&auth));
    let (_, sign) = p11_key(&f, b"sign-1");
    p11_certificate(
        &f,
        b"sign-1",
        &certificate(
            &sign,
            &[rcgen::ExtendedKeyUsagePurpose::EmailProtection],
            &[],
            2025,
        ),
    );
    assert_eq!(verify(&mut f, PIN), StatusWord::OK);
    let digest = [3u8; 32];
    for _ in 0..2 {
        assert_eq!(
            full(&mut f.card, &sign_apdu(0x9A, &digest)).1,
            StatusWord::OK
        );
    }
    assert_eq!(verify(&mut f, PIN), StatusWord::OK);
    assert_eq!(
        full(&mut f.card, &sign_apdu(0x9C, &digest)).1,
        StatusWord::OK
    );
    assert_eq!(
        full(&mut f.card, &sign_apdu(0x9C, &digest)).1,
        StatusWord::SECURITY_NOT_SATISFIED
    );
    // Wrong algorithm, reference, digest length or template.
    let mut rsa = sign_apdu(0x9A, &digest);
    rsa[2] = 0x07;
    assert_eq!(sw(&f.card.transmit(&rsa)), StatusWord::WRONG_P1P2);
    assert_eq!(
        sw(&f.card.transmit(&sign_apdu(0x9F, &digest))),
        StatusWord::REFERENCE_NOT_FOUND
    );
    assert_eq!(
        sw(&f.card.transmit(&sign_apdu(0x9A, &[3u8; 20]))),
        StatusWord::WRONG_DATA
    );
    let bare = apdu(0x87, 0x11, 0x9A, &tlv::tlv(0x81, &digest));
    assert_eq!(sw(&f.card.transmit(&bare)), StatusWord::WRONG_DATA);
}

#[test]
fn the_management_key_must_be_proven_exactly() {
    let mut f = selected();
    let auth = |d: &[u8]| apdu(0x87, 0x03, 0x9B, &tlv::tlv(0x7C, d));
    // Mutual: a witness of the wrong length is bad data; of the right length but wrong, a
    // failed proof.
    let r = f.card.transmit(&auth(&[0x80, 0x00]));
    assert_eq!(sw(&r), StatusWord::OK);
    let short = [tlv::tlv(0x80, &[0; 7]), tlv::tlv(0x81, &[0; 8])].concat();
    assert_eq!(sw(&f.card.transmit(&auth(&short))), StatusWord::WRONG_DATA);
    let short_c = [tlv::tlv(0x80, &[0; 8]), tlv::tlv(0x81, &[0; 7])].concat();
    assert_eq!(
        sw(&f.card.transmit(&auth(&short_c))),
        StatusWord::WRONG_DATA
    );
    // External: a wrong answer to the challenge proves nothing.
    let r = f.card.transmit(&auth(&[0x81, 0x00]));
    assert_eq!(sw(&r), StatusWord::OK);
    assert_eq!(
        sw(&f.card.transmit(&auth(&tlv::tlv(0x82, &[0; 7])))),
        StatusWord::WRONG_DATA
    );
    let r = f.card.transmit(&auth(&[0x81, 0x00]));
    assert_eq!(sw(&r), StatusWord::OK);
    assert_eq!(
        sw(&f.card.transmit(&auth(&tlv::tlv(0x82, &[0; 8])))),
        StatusWord::SECURITY_NOT_SATISFIED
    );
    // So, with the PIN verified, GENERATE is still refused and makes nothing.
    assert_eq!(verify(&mut f, PIN), StatusWord::OK);
    let generate = apdu(0x47, 0x00, 0x9A, &[0xAC, 0x03, 0x80, 0x01, 0x11]);
    assert_eq!(
        sw(&f.card.transmit(&generate)),
        StatusWord::SECURITY_NOT_SATISFIED
    );
    let s = p11_session(&f);
    f.emu.find_init(s, &[(CKA_ID, vec![0x9A])]).unwrap();
    assert!(f.emu.find_next(s, 10).unwrap().is_empty());
    f.emu.find_final(s).unwrap();
    // A 3DES key proven externally works; another algorithm for 9B is refused.
    management_auth_external(&mut f.card);
    assert_eq!(full(&mut f.card, &generate).1, StatusWord::OK);
    let aes = apdu(0x87, 0x0C, 0x9B, &tlv::tlv(0x7C, &[0x80, 0x00]));
    assert_eq!(sw(&f.card.transmit(&aes)), StatusWord::WRONG_P1P2);
}

#[test]
fn the_card_verify_is_needed_even_when_the_other_door_is_logged_in() {
    let mut f = selected();
    management_auth(&mut f.card);
    let s = p11_session(&f);
    f.emu
        .login(s, UserType::User, Some(&Pin::from(PIN)))
        .unwrap();
    let generate = apdu(0x47, 0x00, 0x9A, &[0xAC, 0x03, 0x80, 0x01, 0x11]);
    assert_eq!(
        sw(&f.card.transmit(&generate)),
        StatusWord::SECURITY_NOT_SATISFIED
    );
    let bad_ref = apdu(0x47, 0x00, 0x9B, &[0xAC, 0x03, 0x80, 0x01, 0x11]);
    assert_eq!(sw(&f.card.transmit(&bad_ref)), StatusWord::WRONG_P1P2);
    let no_template = apdu(0x47, 0x00, 0x9A, &[0x80, 0x01, 0x11]);
    assert_eq!(sw(&f.card.transmit(&no_template)), StatusWord::WRONG_DATA);
}

#[test]
fn a_certificate_written_through_the_card_joins_the_key_it_certifies() {
    let mut f = selected();
    let (_, point) = p11_key(&f, b"auth-1");
    let cert = client_auth(&point);
    let put = |tag: &[u8], cert: &[u8]| {
        let mut obj = tlv::tlv(0x70, cert);
        obj.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
        apdu(
            0xDB,
            0x3F,
            0xFF,
            &[tlv::tlv(0x5C, tag), tlv::tlv(0x53, &obj)].concat(),
        )
    };
    // Without the management key: refused, nothing written.
    assert_eq!(
        sw(&f.card.transmit(&put(&TAG_9A, &cert))),
        StatusWord::SECURITY_NOT_SATISFIED
    );
    management_auth(&mut f.card);
    assert_eq!(sw(&f.card.transmit(&put(&TAG_9A, &cert))), StatusWord::OK);
    // Written twice: one certificate object, in the key's set, labelled for 9A, with the
    // serial number as a DER INTEGER (PKCS#11 2.40 §4.6.3).
    assert_eq!(sw(&f.card.transmit(&put(&TAG_9A, &cert))), StatusWord::OK);
    let s = p11_session(&f);
    let class = CKO_CERTIFICATE.to_ne_bytes().to_vec();
    f.emu.find_init(s, &[(CKA_CLASS, class)]).unwrap();
    let certs = f.emu.find_next(s, 10).unwrap();
    f.emu.find_final(s).unwrap();
    assert_eq!(certs.len(), 1);
    let attrs = f
        .emu
        .get_attributes(
            s,
            certs[0],
            &[CKA_ID, CKA_LABEL, CKA_SERIAL_NUMBER, CKA_VALUE],
        )
        .unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    assert_eq!(attrs[0], AttrResult::Value(b"auth-1".to_vec()));
    assert_eq!(
        attrs[1],
        AttrResult::Value(b"PIV AUTH certificate".to_vec())
    );
    assert_eq!(
        attrs[2],
        AttrResult::Value(tlv::tlv(0x02, parsed.raw_serial()))
    );
    assert_eq!(attrs[3], AttrResult::Value(cert.clone()));
    // A certificate for no key on the token is kept under the reference; the label says 9C.
    let (_, other) = p11_key(&f, b"x");
    let stray = client_auth(&other);
    as_user(&f, |s| {
        f.emu.find_init(s, &[(CKA_ID, b"x".to_vec())]).unwrap();
        for h in f.emu.find_next(s, 10).unwrap() {
            f.emu.destroy_object(s, h).unwrap();
        }
        f.emu.find_final(s).unwrap();
    });
    assert_eq!(sw(&f.card.transmit(&put(&TAG_9C, &stray))), StatusWord::OK);
    f.emu.find_init(s, &[(CKA_ID, vec![0x9C])]).unwrap();
    let under = f.emu.find_next(s, 10).unwrap();
    f.emu.find_final(s).unwrap();
    let label = f.emu.get_attributes(s, under[0], &[CKA_LABEL]).unwrap();
    assert_eq!(
        label[0],
        AttrResult::Value(b"PIV SIGN certificate".to_vec())
    );
    // Other objects, bad tags and bodies are refused.
    let chuid = apdu(
        0xDB,
        0x3F,
        0xFF,
        &[tlv::tlv(0x5C, &[0x5F, 0xC1, 0x02]), tlv::tlv(0x53, &[])].concat(),
    );
    assert_eq!(
        sw(&f.card.transmit(&chuid)),
        StatusWord::FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        sw(&f.card.transmit(&put(&[0x5F, 0xC1, 0x05, 0x00], &cert))),
        StatusWord::WRONG_DATA
    );
    assert_eq!(
        sw(&f.card.transmit(&put(&TAG_9A, b"not a certificate"))),
        StatusWord::WRONG_DATA
    );
    let p1p2 = {
        let mut a = put(&TAG_9A, &cert);
        a[3] = 0x00;
        a
    };
    assert_eq!(sw(&f.card.transmit(&p1p2)), StatusWord::WRONG_P1P2);
}
