//! The GOST CA's certificates judged as the national CA's are: by the fixtures' own
//! verification scripts (Debian's GOST engine, `rhash` for the Test S-box hash), by `kilt-gost`
//! reading them with another parser (`x509-parser`), and by the subject's shape against the
//! national CA's test user certificate.

use kilt_gost::Profile;
use kilt_mock_server::gost_ca::{GostCa, Person};
use std::path::Path;
use std::process::Command;

fn person() -> Person {
    Person {
        surname: "ТЕСТОВ".into(),
        name: "ТЕСТ".into(),
        patronymic: "ТЕСТОВИЧ".into(),
        iin: "123456789011".into(),
    }
}

/// Runs a fixture script (child, issuer) in `dir`: its output.
fn script(dir: &Path, name: &str, child: &[u8], issuer: &[u8]) -> Option<String> {
    for tool in ["rhash", "xxd", "openssl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found || !Path::new("/usr/lib/x86_64-linux-gnu/engines-3/gost.so").exists() {
            assert!(
                std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
                "{tool} and Debian's GOST engine are required; run scripts/ensure-deps"
            );
            eprintln!("skipping the script check: {tool} or the GOST engine is missing");
            return None;
        }
    }
    std::fs::write(dir.join("child.der"), child).unwrap();
    std::fs::write(dir.join("issuer.der"), issuer).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let out = Command::new("bash")
        .arg(path)
        .args(["child.der", "issuer.der"])
        .current_dir(dir)
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
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
    let ca = GostCa::new(p, "KILT GOST TEST CA", &[0x17; 32], 2026).unwrap();
    let user_key = p.public_key(&[0x21; 32]).unwrap();
    let user = ca.issue(&person(), &user_key, 7, 2026, 1).unwrap();
    assert!(ca.signed(&user) && ca.signed(ca.certificate()));
    assert!(kilt_gost_verifies(p, &user, ca.certificate()));
    assert!(kilt_gost_verifies(p, ca.certificate(), ca.certificate()));
    assert!(
        !kilt_gost_verifies(p, &user, &user),
        "the user did not sign itself"
    );
    let dir = tempfile::tempdir().unwrap();
    if let Some(said) = script(dir.path(), "verify-2004.sh", &user, ca.certificate()) {
        assert!(said.contains("Signature Verified Successfully"), "{said}");
        let wrong = script(dir.path(), "verify-2004.sh", &user, &user).unwrap();
        assert!(wrong.contains("Signature Verification Failure"), "{wrong}");
        let root = script(
            dir.path(),
            "verify-2004.sh",
            ca.certificate(),
            ca.certificate(),
        );
        assert!(root.unwrap().contains("Signature Verified Successfully"));
    }
}

#[test]
fn gost_2015_512_certificates_verify_with_the_national_cas_script() {
    let p = Profile::Gost2015_512;
    let ca = GostCa::new(p, "KILT GOST 2015 TEST CA", &[0x17; 64], 2026).unwrap();
    let user = ca
        .issue(&person(), &p.public_key(&[0x21; 64]).unwrap(), 8, 2026, 1)
        .unwrap();
    assert!(kilt_gost_verifies(p, &user, ca.certificate()));
    let dir = tempfile::tempdir().unwrap();
    if let Some(said) = script(dir.path(), "verify-2015-512.sh", &user, ca.certificate()) {
        assert!(said.contains("Verified OK"), "{said}");
        let wrong = script(dir.path(), "verify-2015-512.sh", &user, &user).unwrap();
        assert!(!wrong.contains("Verified OK"), "{wrong}");
    }
}

/// The user certificate names its holder as the national CA's test user certificate does: the
/// same attributes in the same order and string types (the CA's own O and OU left out), the
/// national CA's key and signature OIDs.
#[test]
fn a_user_certificate_has_the_national_cas_shape() {
    let p = Profile::Gost2004;
    let ca = GostCa::new(p, "KILT GOST TEST CA", &[0x17; 32], 2026).unwrap();
    let user = ca
        .issue(&person(), &p.public_key(&[0x21; 32]).unwrap(), 9, 2026, 1)
        .unwrap();
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
    let ca = GostCa::new(p, "KILT GOST TEST CA", &[0x17; 32], 2026).unwrap();
    let other = GostCa::new(p, "ANOTHER CA", &[0x18; 32], 2026).unwrap();
    let user = ca
        .issue(&person(), &p.public_key(&[0x21; 32]).unwrap(), 10, 2026, 3)
        .unwrap();
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
