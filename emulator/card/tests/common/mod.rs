//! What the card's tests share: a token with a card over it, APDU helpers, key sets and
//! certificates made through the other door (the core, as the PKCS#11 module drives it).
#![allow(dead_code)]

use cryptoki_sys::*;
use kilt_card::{Card, StatusWord, tlv};
use kilt_emulator::{Config, Emulator, Mechanism, ObjectHandle, Pin, SessionHandle, UserType};
use std::sync::Arc;

pub const PIN: &str = "12345678";
pub const SO_PIN: &str = "00000000";
pub const PIV_SELECT: [u8; 11] = [
    0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
];
pub const MGMT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub emu: Arc<Emulator>,
    pub slot: u64,
    pub card: Card,
}

pub fn fixture() -> Fixture {
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

pub fn sw(r: &[u8]) -> StatusWord {
    StatusWord(u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]))
}

pub fn data(r: &[u8]) -> &[u8] {
    &r[..r.len() - 2]
}

pub fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
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

pub fn pin_field(pin: &str) -> Vec<u8> {
    let mut f = pin.as_bytes().to_vec();
    f.resize(8, 0xFF);
    f
}

/// Sends a command and follows `61xx` with GET RESPONSE, as OpenSC does.
pub fn full(card: &mut Card, cmd: &[u8]) -> (Vec<u8>, StatusWord) {
    let mut r = card.transmit(cmd);
    let mut out = data(&r).to_vec();
    while sw(&r).sw1() == 0x61 {
        r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, sw(&r).sw2()]);
        out.extend_from_slice(data(&r));
    }
    (out, sw(&r))
}

/// A session of the token's other door (the core as the PKCS#11 module drives it).
pub fn p11_session(f: &Fixture) -> SessionHandle {
    f.emu.open_session(f.slot, true, true).unwrap()
}

pub fn tries(f: &Fixture) -> u32 {
    f.emu.token_info(f.slot).unwrap().user_pin.tries_left
}

/// A public key as rcgen takes it: the EC point.
pub struct Point(Vec<u8>);

impl rcgen::PublicKeyData for Point {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A certificate for `point` with these extended and plain key usages, valid from `year`,
/// issued by a throwaway CA.
pub fn certificate(
    point: &[u8],
    eku: &[rcgen::ExtendedKeyUsagePurpose],
    ku: &[rcgen::KeyUsagePurpose],
    year: i32,
) -> Vec<u8> {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.extended_key_usages = eku.to_vec();
    p.key_usages = ku.to_vec();
    p.not_before = rcgen::date_time_ymd(year, 1, 1);
    p.not_after = rcgen::date_time_ymd(2040, 1, 1);
    p.signed_by(&Point(point.to_vec()), &issuer)
        .unwrap()
        .der()
        .to_vec()
}

pub fn client_auth(point: &[u8]) -> Vec<u8> {
    certificate(
        point,
        &[rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        &[],
        2025,
    )
}

/// Runs `f` in a session of the other door with the user logged in, then logs out.
pub fn as_user<T>(f: &Fixture, body: impl FnOnce(SessionHandle) -> T) -> T {
    let s = p11_session(f);
    f.emu.logout(s).ok();
    f.emu
        .login(s, UserType::User, Some(&Pin::from(PIN)))
        .unwrap();
    let out = body(s);
    f.emu.logout(s).ok();
    f.emu.close_session(s).unwrap();
    out
}

/// A key pair made through PKCS#11 under `id`: the private key's handle and the EC point.
pub fn p11_key(f: &Fixture, id: &[u8]) -> (ObjectHandle, Vec<u8>) {
    as_user(f, |s| {
        let one = vec![1u8];
        let (public, private) = f
            .emu
            .generate_key_pair(
                s,
                &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
                &[
                    (CKA_EC_PARAMS, kilt_emulator::crypto::P256_PARAMS.to_vec()),
                    (CKA_TOKEN, one.clone()),
                    (CKA_ID, id.to_vec()),
                ],
                &[(CKA_TOKEN, one), (CKA_ID, id.to_vec())],
            )
            .unwrap();
        let point = match f.emu.get_attributes(s, public, &[CKA_EC_POINT]).unwrap()[0].clone() {
            kilt_emulator::AttrResult::Value(v) => {
                kilt_emulator::crypto::parse_ec_point(&v).unwrap().to_vec()
            }
            other => panic!("{other:?}"),
        };
        (private, point)
    })
}

/// A certificate object under `id`, written through PKCS#11.
pub fn p11_certificate(f: &Fixture, id: &[u8], cert: &[u8]) {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).unwrap();
    let subject = parsed.subject().as_raw().to_vec();
    as_user(f, |s| {
        f.emu
            .create_object(
                s,
                &[
                    (CKA_CLASS, CKO_CERTIFICATE.to_ne_bytes().to_vec()),
                    (CKA_CERTIFICATE_TYPE, CKC_X_509.to_ne_bytes().to_vec()),
                    (CKA_TOKEN, vec![1]),
                    (CKA_ID, id.to_vec()),
                    (CKA_SUBJECT, subject),
                    (CKA_VALUE, cert.to_vec()),
                ],
            )
            .unwrap();
    });
}

/// The CA's AUTH set made through PKCS#11: private key, point, certificate.
pub fn pkcs11_key_set(f: &Fixture) -> (ObjectHandle, Vec<u8>, Vec<u8>) {
    let (key, point) = p11_key(f, b"auth-1");
    let cert = client_auth(&point);
    p11_certificate(f, b"auth-1", &cert);
    (key, point, cert)
}

/// The certificate the card gives for a PIV object tag (`None`: 6A82).
pub fn piv_certificate(c: &mut Card, tag: [u8; 3]) -> Option<Vec<u8>> {
    let (obj, status) = full(c, &apdu(0xCB, 0x3F, 0xFF, &tlv::tlv(0x5C, &tag)));
    if status == StatusWord::NOT_FOUND {
        return None;
    }
    assert_eq!(status, StatusWord::OK);
    let inner = tlv::find(&obj, 0x53).unwrap();
    Some(tlv::find(inner, 0x70).unwrap().to_vec())
}

pub const TAG_9A: [u8; 3] = [0x5F, 0xC1, 0x05];
pub const TAG_9C: [u8; 3] = [0x5F, 0xC1, 0x0A];
pub const TAG_9D: [u8; 3] = [0x5F, 0xC1, 0x0B];

pub fn sign_apdu(reference: u8, digest: &[u8]) -> Vec<u8> {
    apdu(
        0x87,
        0x11,
        reference,
        &tlv::tlv(0x7C, &[&[0x82, 0x00][..], &tlv::tlv(0x81, digest)].concat()),
    )
}

/// Mutual authentication with the default management key (as yubico-piv-tool does).
pub fn management_auth(c: &mut Card) {
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

/// External authentication with the default management key (as OpenSC's piv-tool does).
pub fn management_auth_external(c: &mut Card) {
    use des::cipher::{BlockEncrypt, KeyInit};
    let k = des::TdesEde3::new(&MGMT_KEY.into());
    let r = c.transmit(&apdu(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00]));
    assert_eq!(sw(&r), StatusWord::OK);
    let challenge: [u8; 8] = data(&r)[4..12].try_into().unwrap();
    let mut b = challenge.into();
    k.encrypt_block(&mut b);
    let answer: [u8; 8] = b.into();
    let r = c.transmit(&apdu(
        0x87,
        0x03,
        0x9B,
        &tlv::tlv(0x7C, &tlv::tlv(0x82, &answer)),
    ));
    assert_eq!(sw(&r), StatusWord::OK);
}
