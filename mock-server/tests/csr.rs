//! What `parse_csr` and `UserKey::from_spki` accept and refuse, each refusal for its own reason:
//! size, PEM label, key algorithm and curve (P-256 and the national CA's GOST ones only).

use kilt_gost::oid;
use kilt_mock_server::error::ServerError;
use kilt_mock_server::pki::{Algorithm, MAX_CSR_PEM, UserKey, parse_csr, pem_of};
use x509_cert::der::asn1::{BitString, ObjectIdentifier as Oid, OctetString};
use x509_cert::der::{Any, Encode};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

fn p256_csr() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "9418_Абонент");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn malformed(r: Result<kilt_mock_server::pki::ParsedCsr, ServerError>) -> String {
    match r {
        Err(e @ ServerError::MalformedCsr { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_csr_of_exactly_the_largest_size_parses_and_one_byte_more_is_refused() {
    let pem = p256_csr();
    let at_limit = format!("{pem}{}", " ".repeat(MAX_CSR_PEM - pem.len()));
    assert_eq!(at_limit.len(), MAX_CSR_PEM);
    let csr = parse_csr(&at_limit, "sign", &[Algorithm::P256]).unwrap();
    assert_eq!(csr.cn, "9418_Абонент");
    let over = format!("{at_limit} ");
    assert!(malformed(parse_csr(&over, "sign", &[Algorithm::P256])).contains("larger than"));
}

#[test]
fn a_certificate_label_is_not_a_request() {
    let pem = p256_csr();
    let der = ::pem::parse(pem.trim()).unwrap().contents().to_vec();
    let relabelled = pem_of("CERTIFICATE", &der);
    let said = malformed(parse_csr(&relabelled, "sign", &[Algorithm::P256]));
    assert!(said.contains("PEM label"), "{said}");
}

fn spki(algorithm: &str, params: &[&str], key: Vec<u8>) -> Vec<u8> {
    let params: Vec<Oid> = params.iter().map(|o| Oid::new_unwrap(o)).collect();
    let parameters = match params.as_slice() {
        [one] => Any::encode_from(one).unwrap(),
        many => Any::encode_from(&many.to_vec()).unwrap(),
    };
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap(algorithm),
            parameters: Some(parameters),
        },
        subject_public_key: BitString::from_bytes(&key).unwrap(),
    }
    .to_der()
    .unwrap()
}

fn octets(n: usize) -> Vec<u8> {
    OctetString::new(vec![7u8; n]).unwrap().to_der().unwrap()
}

#[test]
fn only_p256_and_the_national_cas_gost_keys_are_read() {
    const EC: &str = "1.2.840.10045.2.1";
    let point = |n: usize| {
        let mut p = vec![4u8];
        p.extend(vec![1u8; n - 1]);
        p
    };
    // P-256 itself.
    let ok = UserKey::from_spki(&spki(EC, &["1.2.840.10045.3.1.7"], point(65))).unwrap();
    assert_eq!(ok.algorithm(), Algorithm::P256);
    // An EC key on another curve of the same point length (secp256k1), and P-384.
    for (curve, len) in [("1.3.132.0.10", 65), ("1.3.132.0.34", 97)] {
        let err = UserKey::from_spki(&spki(EC, &[curve], point(len))).unwrap_err();
        assert!(err.contains(curve), "{err}");
    }
    // A P-256 OID with a point of the wrong length.
    assert!(UserKey::from_spki(&spki(EC, &["1.2.840.10045.3.1.7"], point(97))).is_err());
    // The national CA's GOST keys, each with its own curve.
    let g2004 = UserKey::from_spki(&spki(
        oid::KZ_KEY_2004,
        &[oid::CRYPTOPRO_A[1], oid::GOST94_TEST[1]],
        octets(64),
    ))
    .unwrap();
    assert_eq!(
        g2004,
        UserKey::Gost(kilt_gost::Profile::Gost2004, vec![7; 64])
    );
    let g512 = UserKey::from_spki(&spki(
        oid::KZ_KEY_2015_512,
        &[oid::TC26_512_A[1], oid::STREEBOG_512[1]],
        octets(128),
    ))
    .unwrap();
    assert_eq!(g512.algorithm(), Algorithm::Gost2015_512);
    // The 2004 key OID with the 512-bit curve, and a key of the wrong length: refused.
    assert!(
        UserKey::from_spki(&spki(
            oid::KZ_KEY_2004,
            &[oid::TC26_512_A[1], oid::GOST94_TEST[1]],
            octets(64),
        ))
        .is_err()
    );
    let short = UserKey::from_spki(&spki(
        oid::KZ_KEY_2004,
        &[oid::CRYPTOPRO_A[1], oid::GOST94_TEST[1]],
        octets(32),
    ))
    .unwrap_err();
    assert!(short.contains("64 bytes"), "{short}");
    // The Russian OIDs OpenSSL writes are not the national CA's.
    assert!(
        UserKey::from_spki(&spki(
            oid::KEY_2001,
            &[oid::CRYPTOPRO_A[0], oid::GOST94_CRYPTOPRO[0]],
            octets(64),
        ))
        .is_err()
    );
}
