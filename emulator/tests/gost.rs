//! GOST R 34.10 in the token (PKCS#11 2.40 Current Mechanisms, "GOST R 34.10-2001" and
//! "GOST R 34.11-94"), through the emulator's API: what an application sees of key generation,
//! the parameter attributes, signing with and without hashing, and the errors.

mod common;

use common::attr;
use cryptoki_sys::*;
use kilt_emulator::crypto::{self, HashKind};
use kilt_emulator::object::ulong;
use kilt_emulator::{AttrResult, Config, Emulator, Error, Mechanism, ObjectHandle, Pin, UserType};
use kilt_emulator::{Part, Profile, SessionHandle};

/// Asserts that `$e` failed with an error matching `$p`.
macro_rules! refused {
    ($e:expr, $p:pat) => {{
        let r = $e;
        assert!(matches!(r, Err($p)), "{:?}", r);
    }};
}

const CRYPTOPRO_A: &str = "1.2.643.2.2.35.1";
const KZ_2004_CURVE: &str = "1.2.398.3.10.1.1.1.1.1";
const TC26_512_A: &str = "1.2.643.7.1.2.1.2.1";
const GOST94_TEST: &str = "1.2.643.2.2.30.0";
const GOST94_CRYPTOPRO: &str = "1.2.643.2.2.30.1";
const STREEBOG_512: &str = "1.2.643.7.1.1.2.3";

fn token(profile: Profile) -> (tempfile::TempDir, Emulator, SessionHandle) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path());
    config.profile = profile;
    let emu = Emulator::new(config).unwrap();
    let user = Pin::from("1234567890");
    emu.provision(0, "gost", &Pin::from("00000000"), &user)
        .unwrap();
    let h = emu.open_session(0, true, true).unwrap();
    emu.login(h, UserType::User, Some(&user)).unwrap();
    (dir, emu, h)
}

fn mech(kind: CK_MECHANISM_TYPE) -> Mechanism {
    Mechanism::new(kind)
}

fn generate(
    emu: &Emulator,
    h: SessionHandle,
    public: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<(ObjectHandle, ObjectHandle), Error> {
    emu.generate_key_pair(
        h,
        &mech(CKM_GOSTR3410_KEY_PAIR_GEN),
        public,
        &[(CKA_SIGN, vec![CK_TRUE])],
    )
}

fn sign(
    emu: &Emulator,
    h: SessionHandle,
    m: &Mechanism,
    key: ObjectHandle,
    data: &[u8],
) -> Vec<u8> {
    emu.sign_init(h, m, key).unwrap();
    emu.sign(h, data).unwrap()
}

fn verify(
    emu: &Emulator,
    h: SessionHandle,
    m: &Mechanism,
    key: ObjectHandle,
    data: &[u8],
    sig: &[u8],
) -> Result<(), Error> {
    emu.verify_init(h, m, key).unwrap();
    emu.verify(h, data, sig)
}

#[test]
fn both_curves_generate_sign_and_verify_in_pkcs11s_layout() {
    let (_d, emu, h) = token(Profile::default_profile());
    for (curve_oid, curve, hash_oid) in [
        (CRYPTOPRO_A, kilt_gost::CurveId::CryptoProA, GOST94_TEST),
        (TC26_512_A, kilt_gost::CurveId::Tc26_512A, STREEBOG_512),
    ] {
        let n = curve.int_len();
        let (public, private) = generate(
            &emu,
            h,
            &[(CKA_GOSTR3410_PARAMS, crypto::oid_der(curve_oid))],
        )
        .unwrap();
        assert_eq!(attr(&emu, h, public, CKA_KEY_TYPE), ulong(CKK_GOSTR3410));
        assert_eq!(
            attr(&emu, h, private, CKA_KEY_GEN_MECHANISM),
            ulong(CKM_GOSTR3410_KEY_PAIR_GEN)
        );
        // Both halves name the curve, and the hash the Kazakh profile uses for it.
        for o in [public, private] {
            assert_eq!(
                attr(&emu, h, o, CKA_GOSTR3410_PARAMS),
                crypto::oid_der(curve_oid)
            );
            assert_eq!(
                attr(&emu, h, o, CKA_GOSTR3411_PARAMS),
                crypto::oid_der(hash_oid)
            );
        }
        let value = attr(&emu, h, public, CKA_VALUE);
        assert_eq!(value.len(), 2 * n);
        assert!(matches!(
            emu.get_attributes(h, private, &[CKA_VALUE]).unwrap()[0],
            AttrResult::Sensitive
        ));

        let digest: Vec<u8> = (0..n as u8).collect();
        emu.sign_init(h, &mech(CKM_GOSTR3410), private).unwrap();
        assert_eq!(
            emu.sign_len(h, Part::Single).unwrap(),
            2 * n,
            "the length query"
        );
        let raw = emu.sign(h, &digest).unwrap();
        assert_eq!(raw.len(), 2 * n);
        // An independent check of the layout: kilt-gost's PKCS#11 verifier.
        assert!(kilt_gost::pkcs11::verify_digest(
            curve, &value, &digest, &raw
        ));
        verify(&emu, h, &mech(CKM_GOSTR3410), public, &digest, &raw).unwrap();
        let mut other = digest.clone();
        other[0] ^= 1;
        refused!(
            verify(&emu, h, &mech(CKM_GOSTR3410), public, &other, &raw),
            Error::SignatureInvalid
        );

        // With hashing: the key's hash, single- and multi-part alike.
        let data = "Платёжное поручение".as_bytes();
        let hashed = sign(&emu, h, &mech(CKM_GOSTR3410_WITH_GOSTR3411), private, data);
        let hash = crypto::gost_hash(&crypto::oid_der(hash_oid)).unwrap();
        assert!(kilt_gost::pkcs11::verify_digest(
            curve,
            &value,
            &hash.digest(data),
            &hashed
        ));
        emu.sign_init(h, &mech(CKM_GOSTR3410_WITH_GOSTR3411), private)
            .unwrap();
        for part in data.chunks(5) {
            emu.sign_update(h, part).unwrap();
        }
        let multi = emu.sign_final(h).unwrap();
        verify(
            &emu,
            h,
            &mech(CKM_GOSTR3410_WITH_GOSTR3411),
            public,
            data,
            &multi,
        )
        .unwrap();
    }
}

#[test]
fn the_hash_follows_the_key_or_the_mechanism_parameter() {
    let (_d, emu, h) = token(Profile::default_profile());
    let (public, private) = generate(
        &emu,
        h,
        &[
            (CKA_GOSTR3410_PARAMS, crypto::oid_der(KZ_2004_CURVE)),
            (CKA_GOSTR3411_PARAMS, crypto::oid_der(GOST94_CRYPTOPRO)),
        ],
    )
    .unwrap();
    // The Kazakh OID names the same curve and stays as given.
    assert_eq!(
        attr(&emu, h, public, CKA_GOSTR3410_PARAMS),
        crypto::oid_der(KZ_2004_CURVE)
    );
    let value = attr(&emu, h, public, CKA_VALUE);
    let curve = kilt_gost::CurveId::CryptoProA;
    let data = b"the same message";
    let by_key = sign(&emu, h, &mech(CKM_GOSTR3410_WITH_GOSTR3411), private, data);
    let cryptopro = HashKind::Gost94CryptoPro.digest(data);
    assert!(kilt_gost::pkcs11::verify_digest(
        curve, &value, &cryptopro, &by_key
    ));
    let with_param = Mechanism {
        kind: CKM_GOSTR3410_WITH_GOSTR3411,
        param: crypto::oid_der(GOST94_TEST),
    };
    let by_param = sign(&emu, h, &with_param, private, data);
    let test = kilt_gost::gost94_test(data);
    assert!(kilt_gost::pkcs11::verify_digest(
        curve, &value, &test, &by_param
    ));
    let unknown = Mechanism {
        kind: CKM_GOSTR3410_WITH_GOSTR3411,
        param: crypto::oid_der("1.2.3.4"),
    };
    refused!(
        emu.sign_init(h, &unknown, private),
        Error::MechanismParamInvalid
    );
}

#[test]
fn gost94_digests_with_the_cryptopro_set_unless_told_the_test_set() {
    let (_d, emu, h) = token(Profile::default_profile());
    let digest = |m: &Mechanism, data: &[u8]| {
        emu.digest_init(h, m).unwrap();
        assert_eq!(
            emu.digest_len(h, Part::Single).unwrap(),
            32,
            "the length query"
        );
        emu.digest(h, data).unwrap()
    };
    // RFC 5831 §7.3.1 ("This is message, length=32 bytes"), Test parameter set.
    let msg = b"This is message, length=32 bytes";
    let test = Mechanism {
        kind: CKM_GOSTR3411,
        param: crypto::oid_der(GOST94_TEST),
    };
    assert_eq!(
        hex::encode(digest(&test, msg)),
        "b1c466d37519b82e8319819ff32595e047a28cb6f83eff1c6916a815a637fffa"
    );
    assert_eq!(
        digest(&mech(CKM_GOSTR3411), msg),
        HashKind::Gost94CryptoPro.digest(msg)
    );
    assert_ne!(digest(&mech(CKM_GOSTR3411), msg), digest(&test, msg));
    // SHA-256 still takes no parameter; GOST R 34.11-94 none but an S-box set's OID.
    assert_eq!(digest(&mech(CKM_SHA256), msg), HashKind::Sha256.digest(msg));
    let sha_with_param = Mechanism {
        kind: CKM_SHA256,
        param: crypto::oid_der(GOST94_TEST),
    };
    refused!(
        emu.digest_init(h, &sha_with_param),
        Error::MechanismParamInvalid
    );
    let streebog = Mechanism {
        kind: CKM_GOSTR3411,
        param: crypto::oid_der(STREEBOG_512),
    };
    refused!(emu.digest_init(h, &streebog), Error::MechanismParamInvalid);
}

#[test]
fn mismatches_are_refused_and_change_nothing() {
    let (_d, emu, h) = token(Profile::default_profile());
    let gost = generate(
        &emu,
        h,
        &[(CKA_GOSTR3410_PARAMS, crypto::oid_der(CRYPTOPRO_A))],
    )
    .unwrap();
    let ec = emu
        .generate_key_pair(
            h,
            &mech(CKM_EC_KEY_PAIR_GEN),
            &[(CKA_EC_PARAMS, crypto::P256_PARAMS.to_vec())],
            &[(CKA_SIGN, vec![CK_TRUE])],
        )
        .unwrap();
    // The EC pair keeps its own attributes (the GOST tables are for GOST keys only).
    assert_eq!(attr(&emu, h, ec.1, CKA_EC_PARAMS), crypto::P256_PARAMS);
    assert_eq!(attr(&emu, h, ec.1, CKA_KEY_TYPE), ulong(CKK_EC));
    // Mechanism and key of different algorithms (§5.11: CKR_KEY_TYPE_INCONSISTENT).
    refused!(
        emu.sign_init(h, &mech(CKM_ECDSA), gost.1),
        Error::KeyTypeInconsistent
    );
    refused!(
        emu.sign_init(h, &mech(CKM_GOSTR3410), ec.1),
        Error::KeyTypeInconsistent
    );
    refused!(
        emu.verify_init(h, &mech(CKM_GOSTR3410_WITH_GOSTR3411), ec.0),
        Error::KeyTypeInconsistent
    );
    // A raw GOST signature takes a digest of the curve's length, single-part only.
    emu.sign_init(h, &mech(CKM_GOSTR3410), gost.1).unwrap();
    refused!(emu.sign(h, &[1; 31]), Error::DataLenRange);
    emu.sign_init(h, &mech(CKM_GOSTR3410), gost.1).unwrap();
    refused!(emu.sign_update(h, &[1; 32]), Error::SinglePartOnly);
    emu.verify_init(h, &mech(CKM_GOSTR3410), gost.0).unwrap();
    refused!(emu.verify(h, &[1; 32], &[0; 63]), Error::SignatureLenRange);
    // Generation needs the curve; an unknown curve, a private half naming another curve, or a
    // template naming another key type are refused.
    refused!(
        generate(&emu, h, &[]),
        Error::TemplateIncomplete(CKA_GOSTR3410_PARAMS)
    );
    refused!(
        generate(
            &emu,
            h,
            &[(CKA_GOSTR3410_PARAMS, crypto::oid_der("1.2.643.2.2.35.2"))]
        ),
        Error::CurveNotSupported
    );
    let crossed = emu.generate_key_pair(
        h,
        &mech(CKM_GOSTR3410_KEY_PAIR_GEN),
        &[(CKA_GOSTR3410_PARAMS, crypto::oid_der(CRYPTOPRO_A))],
        &[(CKA_GOSTR3410_PARAMS, crypto::oid_der(TC26_512_A))],
    );
    assert!(
        matches!(crossed, Err(Error::TemplateInconsistent(_))),
        "{crossed:?}"
    );
    let ec_typed = generate(
        &emu,
        h,
        &[
            (CKA_KEY_TYPE, ulong(CKK_EC)),
            (CKA_GOSTR3410_PARAMS, crypto::oid_der(CRYPTOPRO_A)),
        ],
    );
    assert!(
        matches!(ec_typed, Err(Error::TemplateInconsistent(_))),
        "{ec_typed:?}"
    );
    emu.find_init(h, &[]).unwrap();
    assert_eq!(
        emu.find_next(h, 100).unwrap().len(),
        4,
        "only the two good pairs"
    );
}

#[test]
fn an_imported_private_value_is_little_endian_as_pkcs11_says() {
    let (_d, emu, h) = token(Profile::default_profile());
    let d: Vec<u8> = (1..=32).collect(); // big-endian scalar
    let private = emu
        .create_object(
            h,
            &[
                (CKA_CLASS, ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ulong(CKK_GOSTR3410)),
                (CKA_GOSTR3410_PARAMS, crypto::oid_der(CRYPTOPRO_A)),
                (CKA_SIGN, vec![CK_TRUE]),
                (CKA_VALUE, kilt_gost::reversed(&d)),
            ],
        )
        .unwrap();
    let value = kilt_gost::pkcs11::public_value(kilt_gost::CurveId::CryptoProA, &d).unwrap();
    // An extractable, non-sensitive copy gives its value back as it was given: little-endian.
    let open = emu
        .create_object(
            h,
            &[
                (CKA_CLASS, ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ulong(CKK_GOSTR3410)),
                (CKA_GOSTR3410_PARAMS, crypto::oid_der(CRYPTOPRO_A)),
                (CKA_SENSITIVE, vec![CK_FALSE]),
                (CKA_EXTRACTABLE, vec![CK_TRUE]),
                (CKA_VALUE, kilt_gost::reversed(&d)),
            ],
        )
        .unwrap();
    assert_eq!(attr(&emu, h, open, CKA_VALUE), kilt_gost::reversed(&d));
    // A public key's value must be x ‖ y of the curve's length.
    let public = |v: Vec<u8>| {
        emu.create_object(
            h,
            &[
                (CKA_CLASS, ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ulong(CKK_GOSTR3410)),
                (CKA_GOSTR3410_PARAMS, crypto::oid_der(CRYPTOPRO_A)),
                (CKA_VALUE, v),
            ],
        )
    };
    refused!(
        public(value[1..].to_vec()),
        Error::AttributeValueInvalid(CKA_VALUE)
    );
    let imported_public = public(value.clone()).unwrap();
    let digest = [7u8; 32];
    let sig = sign(&emu, h, &mech(CKM_GOSTR3410), private, &digest);
    assert!(kilt_gost::pkcs11::verify_digest(
        kilt_gost::CurveId::CryptoProA,
        &value,
        &digest,
        &sig
    ));
    verify(
        &emu,
        h,
        &mech(CKM_GOSTR3410),
        imported_public,
        &digest,
        &sig,
    )
    .unwrap();
}

/// What each mechanism says it does (2.40 §5.5 CK_MECHANISM_INFO flags; curr. mech. §2.3 for the
/// EC capability flags), for the default profile.
#[test]
fn every_mechanism_claims_its_functions() {
    let (_d, emu, _h) = token(Profile::default_profile());
    let ec = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    let want = [
        (
            CKM_EC_KEY_PAIR_GEN,
            CKF_HW | CKF_GENERATE_KEY_PAIR | ec,
            256,
            256,
        ),
        (CKM_ECDSA, CKF_HW | CKF_SIGN | CKF_VERIFY | ec, 256, 256),
        (
            CKM_ECDSA_SHA256,
            CKF_HW | CKF_SIGN | CKF_VERIFY | ec,
            256,
            256,
        ),
        (CKM_SHA256, CKF_HW | CKF_DIGEST, 0, 0),
        (
            CKM_GOSTR3410_KEY_PAIR_GEN,
            CKF_HW | CKF_GENERATE_KEY_PAIR,
            256,
            512,
        ),
        (CKM_GOSTR3410, CKF_HW | CKF_SIGN | CKF_VERIFY, 256, 512),
        (
            CKM_GOSTR3410_WITH_GOSTR3411,
            CKF_HW | CKF_SIGN | CKF_VERIFY,
            256,
            512,
        ),
        (CKM_GOSTR3411, CKF_HW | CKF_DIGEST, 0, 0),
    ];
    let got: Vec<_> = emu
        .slot_mechanisms(0)
        .unwrap()
        .iter()
        .map(|m| (m.mechanism, m.flags, m.min_key_bits, m.max_key_bits))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_profile_without_gost_offers_no_gost_mechanism() {
    let mut p256_only = Profile::default_profile();
    p256_only.algorithms = vec![kilt_emulator::profile::Algorithm::P256];
    let (_d, emu, h) = token(p256_only);
    let offered: Vec<_> = emu
        .slot_mechanisms(0)
        .unwrap()
        .iter()
        .map(|m| m.mechanism)
        .collect();
    assert!(
        offered.contains(&CKM_ECDSA) && !offered.contains(&CKM_GOSTR3410),
        "{offered:?}"
    );
    refused!(
        generate(
            &emu,
            h,
            &[(CKA_GOSTR3410_PARAMS, crypto::oid_der(CRYPTOPRO_A))]
        ),
        Error::MechanismInvalid(CKM_GOSTR3410_KEY_PAIR_GEN)
    );
    refused!(
        emu.digest_init(h, &mech(CKM_GOSTR3411)),
        Error::MechanismInvalid(CKM_GOSTR3411)
    );
    let mut only_2004 = Profile::default_profile();
    only_2004.algorithms = vec![kilt_emulator::profile::Algorithm::Gost2004];
    let (_d2, emu, h) = token(only_2004);
    let info = emu.slot_mechanisms(0).unwrap();
    let keygen = info
        .iter()
        .find(|m| m.mechanism == CKM_GOSTR3410_KEY_PAIR_GEN)
        .unwrap();
    assert_eq!((keygen.min_key_bits, keygen.max_key_bits), (256, 256));
    refused!(
        generate(
            &emu,
            h,
            &[(CKA_GOSTR3410_PARAMS, crypto::oid_der(TC26_512_A))]
        ),
        Error::CurveNotSupported
    );
}
