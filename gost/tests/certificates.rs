//! The national CA's public GOST test certificates (copied from the project's shared fixtures,
//! `nca-gost-test/`: real certificates of the Kazakh test PKI, see their README): kilt's verifier
//! accepts every signature in them and refuses the wrong issuer. The layout checked here is the
//! Kazakh one: the issuer's key an OCTET STRING of little-endian x ‖ y, the signature little-endian
//! r ‖ s, the digest of the to-be-signed part read as a little-endian integer.

use kilt_gost::{CurveId, gost94_test, reversed, streebog512, verify};

/// One DER element: (tag, whole element, contents).
fn element(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, head) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let k = (n & 0x7f) as usize;
            let len = der[2..2 + k]
                .iter()
                .fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, 2 + k)
        }
    };
    (tag, &der[..head + len], &der[head..head + len])
}

/// The elements of a constructed element's contents.
fn children(mut contents: &[u8]) -> Vec<(u8, &[u8], &[u8])> {
    let mut out = vec![];
    while !contents.is_empty() {
        let e = element(contents);
        contents = &contents[e.1.len()..];
        out.push(e);
    }
    out
}

struct Cert {
    tbs: Vec<u8>,
    signature: Vec<u8>,
    /// x ‖ y, little-endian each, as the certificate holds the subject's key.
    key: Vec<u8>,
}

fn cert(name: &str) -> Cert {
    let der = std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let (_, _, body) = element(&der);
    let parts = children(body);
    let (tbs, signature) = (parts[0].1.to_vec(), parts[2].2[1..].to_vec());
    let fields = children(parts[0].2);
    // version [0], serial, signature algorithm, issuer, validity, subject, subject public key info.
    let spki = children(fields[6].2);
    let key_bits = &spki[1].2[1..];
    let (tag, _, key) = element(key_bits);
    assert_eq!(tag, 0x04, "{name}: the key is an OCTET STRING");
    Cert {
        tbs,
        signature,
        key: key.to_vec(),
    }
}

/// Whether `issuer`'s key signed `subject` (digest and curve of the profile).
fn signed_by(subject: &str, issuer: &str, curve: CurveId) -> bool {
    let (s, i) = (cert(subject), cert(issuer));
    let n = curve.int_len();
    assert_eq!(i.key.len(), 2 * n, "{issuer}: x ‖ y of {n} bytes each");
    assert_eq!(
        s.signature.len(),
        2 * n,
        "{subject}: r ‖ s of {n} bytes each"
    );
    let digest = match curve {
        CurveId::CryptoProA => gost94_test(&s.tbs).to_vec(),
        CurveId::Tc26_512A => streebog512(&s.tbs).to_vec(),
    };
    let (x, y) = (reversed(&i.key[..n]), reversed(&i.key[n..]));
    let (r, sig_s) = (reversed(&s.signature[..n]), reversed(&s.signature[n..]));
    verify(curve, &x, &y, &reversed(&digest), &r, &sig_s)
}

#[test]
fn gost_2004_chain_verifies() {
    assert!(signed_by(
        "root-2004.der",
        "root-2004.der",
        CurveId::CryptoProA
    ));
    assert!(signed_by(
        "nca-2004.der",
        "root-2004.der",
        CurveId::CryptoProA
    ));
    assert!(signed_by(
        "user-2004.der",
        "nca-2004.der",
        CurveId::CryptoProA
    ));
}

#[test]
fn gost_2004_wrong_issuer_is_refused() {
    assert!(!signed_by(
        "user-2004.der",
        "root-2004.der",
        CurveId::CryptoProA
    ));
    assert!(!signed_by(
        "nca-2004.der",
        "nca-2004.der",
        CurveId::CryptoProA
    ));
}

#[test]
fn gost_2015_512_user_verifies_under_its_ca() {
    assert!(signed_by(
        "user-2015-512.der",
        "nca-2015-512.der",
        CurveId::Tc26_512A
    ));
    // The CA's own certificate was signed by a root not here: its own key does not verify it.
    assert!(!signed_by(
        "nca-2015-512.der",
        "nca-2015-512.der",
        CurveId::Tc26_512A
    ));
}

#[test]
fn the_2004_profile_hashes_with_the_test_s_box() {
    // RFC 5831 §7.3.1 (GOST R 34.11-94, test parameters), the hash as the RFC prints its bytes:
    // "This is message, length=32 bytes".
    assert_eq!(
        hex::encode(gost94_test(b"This is message, length=32 bytes")),
        "b1c466d37519b82e8319819ff32595e047a28cb6f83eff1c6916a815a637fffa"
    );
    // RFC 5831 §7.3.2: "Suppose the original message has length = 50 bytes".
    assert_eq!(
        hex::encode(gost94_test(
            b"Suppose the original message has length = 50 bytes"
        )),
        "471aba57a60a770d3a76130635c1fbea4ef14de51f78b4ae57dd893b62f55208"
    );
}
