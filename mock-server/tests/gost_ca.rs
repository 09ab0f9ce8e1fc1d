//! The GOST CA's certificates judged as the national CA's are: by the fixtures' own
//! verification scripts (Debian's GOST engine, `rhash` for the Test S-box hash), by `kilt-gost`
//! reading them with another parser (`x509-parser`), and by the subject's shape against the
//! national CA's test user certificate.

use kilt_gost::Profile;
use kilt_mock_server::gost_ca::{GostCa, GostCertSpec, GostKey, Person, Subject};
use kilt_test_support::gost_fixture_script as script;
use std::path::Path;
use time::OffsetDateTime;

fn person() -> Person {
    Person {
        surname: "ТЕСТОВ".into(),
        name: "ТЕСТ".into(),
        patronymic: "ТЕСТОВИЧ".into(),
        iin: "123456789011".into(),
    }
}

/// 1 January of `year`.
fn jan1(year: i32) -> OffsetDateTime {
    time::Date::from_calendar_date(year, time::Month::January, 1)
        .unwrap()
        .midnight()
        .assume_utc()
}

/// A CA valid ten years from 2026.
fn new_ca(p: Profile, name: &str, d: &[u8]) -> GostCa {
    GostCa::new(p, name, d, jan1(2026), jan1(2036)).unwrap()
}

/// The test person's certificate for `public`, valid `years` from 2026.
fn issue(ca: &GostCa, public: &[u8], serial: u8, years: i32) -> Vec<u8> {
    ca.issue(&GostCertSpec {
        subject: Subject::Person(&person()),
        public,
        serial: &[serial],
        not_before: jan1(2026),
        not_after: jan1(2026 + years),
    })
    .unwrap()
}

/// kilt-gost's verdict, reading the certificates with x509-parser (not the builder's parser).
fn kilt_gost_verifies(profile: Profile, child: &[u8], issuer: &[u8]) -> bool {
    let (_, c) = x509_parser::parse_x509_certificate(child).unwrap();
    let (_, i) = x509_parser::parse_x509_certificate(issuer).unwrap();
    let key_bits = i.public_key().subject_public_key.data.as_ref();
    // The key is an OCTET STRING of x ‖ y inside the BIT STRING.
    let (_, key) = x509_parser::der_parser::der::parse_der_octetstring(key_bits).unwrap();
    let key = key.as_slice().unwrap();
    profile.verify(
        key,
        c.tbs_certificate.as_ref(),
        c.signature_value.data.as_ref(),
    )
}

#[test]
fn gost_2004_certificates_verify_with_the_national_cas_script() {
    let p = Profile::Gost2004;
    let ca = new_ca(p, "KILT GOST TEST CA", &[0x17; 32]);
    let user_key = p.public_key(&[0x21; 32]).unwrap();
    let user = issue(&ca, &user_key, 7, 1);
    assert!(ca.signed(&user) && ca.signed(ca.certificate()));
    assert!(kilt_gost_verifies(p, &user, ca.certificate()));
    assert!(kilt_gost_verifies(p, ca.certificate(), ca.certificate()));
    assert!(
        !kilt_gost_verifies(p, &user, &user),
        "the user did not sign itself"
    );
    if let Some(said) = script("verify-2004.sh", &user, ca.certificate()) {
        assert!(said.contains("Signature Verified Successfully"), "{said}");
        let wrong = script("verify-2004.sh", &user, &user).unwrap();
        assert!(wrong.contains("Signature Verification Failure"), "{wrong}");
        let root = script("verify-2004.sh", ca.certificate(), ca.certificate());
        assert!(root.unwrap().contains("Signature Verified Successfully"));
    }
}

#[test]
fn gost_2015_512_certificates_verify_with_the_national_cas_script() {
    let p = Profile::Gost2015_512;
    let ca = new_ca(p, "KILT GOST 2015 TEST CA", &[0x17; 64]);
    let user = issue(&ca, &p.public_key(&[0x21; 64]).unwrap(), 8, 1);
    assert!(kilt_gost_verifies(p, &user, ca.certificate()));
    if let Some(said) = script("verify-2015-512.sh", &user, ca.certificate()) {
        assert!(said.contains("Verified OK"), "{said}");
        let wrong = script("verify-2015-512.sh", &user, &user).unwrap();
        assert!(!wrong.contains("Verified OK"), "{wrong}");
    }
}

/// The user certificate names its holder as the national CA's test user certificate does: the
/// same attributes in the same order and string types (the CA's own O and OU left out), the
/// national CA's key and signature OIDs.
#[test]
fn a_user_certificate_has_the_national_cas_shape() {
    let p = Profile::Gost2004;
    let ca = new_ca(p, "KILT GOST TEST CA", &[0x17; 32]);
    let user = issue(&ca, &p.public_key(&[0x21; 32]).unwrap(), 9, 1);
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gost/tests/data/user-2004.der"
    ))
    .unwrap();
    let shape = |der: &[u8]| {
        let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
        let attrs: Vec<(String, u8, String)> = c
            .subject()
            .iter_attributes()
            .filter(|a| !["2.5.4.10", "2.5.4.11"].contains(&a.attr_type().to_id_string().as_str()))
            .map(|a| {
                (
                    a.attr_type().to_id_string(),
                    a.attr_value().header.tag().0 as u8,
                    a.as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (
            attrs,
            c.signature_algorithm.algorithm.to_id_string(),
            c.public_key().algorithm.algorithm.to_id_string(),
        )
    };
    assert_eq!(shape(&user), shape(&fixture));
    let (attrs, _, _) = shape(&user);
    assert_eq!(attrs[2].2, "IIN123456789011");
}

/// A CA recognises only its own signature, over the certificate as issued; the validity is the
/// years asked for; its Debug shows the profile, never the key.
#[test]
fn a_ca_knows_its_own_certificates_and_shows_no_key() {
    let p = Profile::Gost2004;
    let ca = new_ca(p, "KILT GOST TEST CA", &[0x17; 32]);
    let other = new_ca(p, "ANOTHER CA", &[0x18; 32]);
    let user = issue(&ca, &p.public_key(&[0x21; 32]).unwrap(), 10, 3);
    assert!(ca.signed(&user));
    assert!(!other.signed(&user));
    let mut changed = user.clone();
    let at = changed.len() / 2;
    changed[at] ^= 1;
    assert!(!ca.signed(&changed));
    assert!(!ca.signed(b"not a certificate"));
    let (_, c) = x509_parser::parse_x509_certificate(&user).unwrap();
    assert_eq!(c.validity().not_before.to_datetime().year(), 2026);
    assert_eq!(c.validity().not_after.to_datetime().year(), 2029);
    let shown = format!("{ca:?}");
    assert!(
        shown.contains("Gost2004") && !shown.contains("17"),
        "{shown}"
    );
}

/// A CA made in a data directory is the same CA at the next start (same certificate, its
/// signatures still verify); a key file that does not match the certificate is refused, not
/// silently replaced.
#[test]
fn a_ca_in_a_data_directory_survives_a_restart_and_refuses_a_foreign_key() {
    let dir = tempfile::tempdir().unwrap();
    let now = jan1(2026);
    for p in [Profile::Gost2004, Profile::Gost2015_512] {
        assert!(!GostCa::present(dir.path(), p));
        let first = GostCa::load_or_create(dir.path(), p, "KILT CA", now).unwrap();
        assert!(GostCa::present(dir.path(), p));
        let user = issue(
            &first,
            &p.public_key(&vec![0x21; p.curve().int_len()]).unwrap(),
            3,
            1,
        );
        let again = GostCa::load_or_create(dir.path(), p, "ignored", now).unwrap();
        assert_eq!(again.certificate(), first.certificate());
        assert!(again.signed(&user), "the reloaded CA is the same key");
        assert_eq!(again.not_after(), first.not_after());
        // Valid from just before now (a client clock a little behind still accepts it).
        let (_, c) = x509_parser::parse_x509_certificate(first.certificate()).unwrap();
        let from = c.validity().not_before.timestamp();
        assert!(
            from <= now.unix_timestamp() && from >= now.unix_timestamp() - 3600,
            "{from}"
        );
        assert_eq!(
            (again.not_after() - now).whole_days(),
            kilt_mock_server::gost_ca::CA_VALIDITY_YEARS * 365
        );
    }
    let key = dir.path().join("gost2004-ca.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the CA key is the owner's only");
    }
    let elsewhere = tempfile::tempdir().unwrap();
    GostCa::load_or_create(elsewhere.path(), Profile::Gost2004, "OTHER CA", now).unwrap();
    std::fs::copy(elsewhere.path().join("gost2004-ca.key"), &key).unwrap();
    let err = GostCa::load_or_create(dir.path(), Profile::Gost2004, "KILT CA", now).unwrap_err();
    assert!(
        err.to_string().contains("does not certify the key"),
        "{err}"
    );
}

/// What the mock bank reads: a PKCS#10 request made by a software GOST key parses, names its
/// subject and key, and verifies; the wrong algorithm, a changed byte and a request signed by
/// another key are each refused with their own reason.
#[test]
fn gost_requests_parse_verify_and_are_refused_for_the_right_reasons() {
    use kilt_mock_server::error::ServerError;
    use kilt_mock_server::pki::{Algorithm, UserKey, parse_csr, pem_of};
    for (p, a) in [
        (Profile::Gost2004, Algorithm::Gost2004),
        (Profile::Gost2015_512, Algorithm::Gost2015_512),
    ] {
        let key = GostKey::random(p).unwrap();
        let der = key.request(&Subject::Named("9418_Абонент")).unwrap();
        let pem = pem_of("CERTIFICATE REQUEST", &der);
        let csr = parse_csr(&pem, "new key", &[a]).unwrap();
        assert_eq!(csr.cn, "9418_Абонент");
        assert_eq!(csr.key, UserKey::Gost(p, key.public().to_vec()));
        assert_eq!(csr.der, der);
        match parse_csr(&pem, "new key", &[Algorithm::P256]) {
            Err(e @ ServerError::WrongKeyType { .. }) => {
                let said = e.to_string();
                assert!(
                    said.contains(a.describe()) && said.contains("P-256"),
                    "{said}"
                );
            }
            other => panic!("{other:?}"),
        }
        // The last byte is the signature's: the request no longer verifies.
        let mut changed = der.clone();
        *changed.last_mut().unwrap() ^= 1;
        let changed = pem_of("CERTIFICATE REQUEST", &changed);
        assert!(matches!(
            parse_csr(&changed, "new key", &[a]),
            Err(ServerError::CsrSignatureInvalid { .. })
        ));
        // The same body signed by another key: its signature does not match the key it names.
        let other = GostKey::random(p).unwrap();
        let mut forged = other.request(&Subject::Named("9418_Абонент")).unwrap();
        let at = find(&forged, other.public()).unwrap();
        forged[at..at + key.public().len()].copy_from_slice(key.public());
        let forged = pem_of("CERTIFICATE REQUEST", &forged);
        assert!(matches!(
            parse_csr(&forged, "new key", &[a]),
            Err(ServerError::CsrSignatureInvalid { .. })
        ));
        // A signature the key made verifies; over other bytes it does not.
        let sig = key.sign(b"challenge").unwrap();
        assert!(csr.key.verify(b"challenge", &sig));
        assert!(!csr.key.verify(b"challengE", &sig));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A certificate's key reads back as the key it was issued for, and a P-256 certificate's as
/// P-256; a GOST key OID with another curve is named, not mistaken for ours.
#[test]
fn certificate_keys_read_back_with_their_algorithm() {
    use kilt_mock_server::pki::{Algorithm, UserKey};
    let p = Profile::Gost2004;
    let ca = new_ca(p, "KILT GOST TEST CA", &[0x17; 32]);
    let public = p.public_key(&[0x21; 32]).unwrap();
    let user = issue(&ca, &public, 4, 1);
    let key = UserKey::of_certificate(&user).unwrap();
    assert_eq!(key, UserKey::Gost(p, public));
    assert_eq!(key.algorithm(), Algorithm::Gost2004);
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&p256)
        .unwrap();
    let key = UserKey::of_certificate(cert.der()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::P256);
    assert_eq!(key.bytes(), p256.public_key_raw());
    // The national CA's own certificates (the fixtures) read as the algorithm they are.
    for (file, algorithm) in [
        ("root-2004.der", Algorithm::Gost2004),
        ("nca-2004.der", Algorithm::Gost2004),
        ("user-2004.der", Algorithm::Gost2004),
        ("nca-2015-512.der", Algorithm::Gost2015_512),
        ("user-2015-512.der", Algorithm::Gost2015_512),
    ] {
        let der = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../gost/tests/data")
                .join(file),
        )
        .unwrap();
        assert_eq!(
            UserKey::of_certificate(&der).unwrap().algorithm(),
            algorithm,
            "{file}"
        );
    }
}
