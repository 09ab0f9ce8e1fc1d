//! The national CA's public GOST test certificates (copied from the project's shared fixtures,
//! `nca-gost-test/`: real certificates of the Kazakh test PKI, see their README): kilt's verifier
//! accepts every signature in them and refuses the wrong issuer. The layout checked here is the
//! Kazakh one: the issuer's key an OCTET STRING of little-endian x ‖ y, the signature little-endian
//! r ‖ s, the digest of the to-be-signed part read as a little-endian integer.

use kilt_gost::{Profile, gost94_test};

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

/// The dotted form of an OBJECT IDENTIFIER's contents (X.690 §8.19).
fn oid(contents: &[u8]) -> String {
    let mut arcs = vec![];
    let mut v = 0u64;
    for b in contents {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(v);
            v = 0;
        }
    }
    let first = arcs[0].min(80) / 40;
    let mut out = vec![first, arcs[0] - 40 * first];
    out.extend(&arcs[1..]);
    out.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

struct Cert {
    /// The signature algorithm, and the subject key's algorithm with its two parameters.
    oids: (String, String, String, String),
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
    let key_alg = children(spki[0].2);
    let key_params = children(key_alg[1].2);
    let oids = (
        oid(children(parts[1].2)[0].2),
        oid(key_alg[0].2),
        oid(key_params[0].2),
        oid(key_params[1].2),
    );
    let key_bits = &spki[1].2[1..];
    let (tag, _, key) = element(key_bits);
    assert_eq!(tag, 0x04, "{name}: the key is an OCTET STRING");
    Cert {
        oids,
        tbs,
        signature,
        key: key.to_vec(),
    }
}

/// Whether `issuer`'s key signed `subject` under `profile`.
fn signed_by(subject: &str, issuer: &str, profile: Profile) -> bool {
    let (s, i) = (cert(subject), cert(issuer));
    let n = profile.curve().int_len();
    assert_eq!(i.key.len(), 2 * n, "{issuer}: x ‖ y of {n} bytes each");
    assert_eq!(
        s.signature.len(),
        2 * n,
        "{subject}: r ‖ s of {n} bytes each"
    );
    profile.verify(&i.key, &s.tbs, &s.signature)
}

#[test]
fn gost_2004_chain_verifies() {
    assert!(signed_by(
        "root-2004.der",
        "root-2004.der",
        Profile::Gost2004
    ));
    assert!(signed_by(
        "nca-2004.der",
        "root-2004.der",
        Profile::Gost2004
    ));
    assert!(signed_by(
        "user-2004.der",
        "nca-2004.der",
        Profile::Gost2004
    ));
}

#[test]
fn gost_2004_wrong_issuer_is_refused() {
    assert!(!signed_by(
        "user-2004.der",
        "root-2004.der",
        Profile::Gost2004
    ));
    assert!(!signed_by(
        "nca-2004.der",
        "nca-2004.der",
        Profile::Gost2004
    ));
}

#[test]
fn gost_2015_512_user_verifies_under_its_ca() {
    assert!(signed_by(
        "user-2015-512.der",
        "nca-2015-512.der",
        Profile::Gost2015_512
    ));
    // The CA's own certificate was signed by a root not here: its own key does not verify it.
    assert!(!signed_by(
        "nca-2015-512.der",
        "nca-2015-512.der",
        Profile::Gost2015_512
    ));
}

#[test]
fn signatures_made_in_each_profile_verify_as_the_certificates_do() {
    for profile in [Profile::Gost2004, Profile::Gost2015_512] {
        let d = vec![0x2b; profile.curve().int_len()];
        let key = profile.public_key(&d).unwrap();
        let mut n = 0u8;
        let sig = profile
            .sign(&d, b"tbs", &mut |b: &mut [u8]| {
                n += 1;
                b.fill(n);
            })
            .unwrap();
        assert!(profile.verify(&key, b"tbs", &sig), "{profile:?}");
        assert!(
            !profile.verify(&key, b"tbS", &sig),
            "{profile:?}: other data"
        );
        assert!(
            !profile.verify(&key[1..], b"tbs", &sig),
            "{profile:?}: short key"
        );
        assert!(!profile.verify(&key[..3], b"tbs", &sig), "a stub of a key");
        assert!(
            !profile.verify(&key, b"tbs", &sig[..3]),
            "a stub of a signature"
        );
    }
    // The 2004 CA's key from its certificate is the key format `public_key` makes.
    assert_eq!(
        cert("nca-2004.der").key.len(),
        Profile::Gost2004.public_key(&[1; 32]).unwrap().len()
    );
}

#[test]
fn the_profiles_name_what_the_certificates_name() {
    for (file, issuer_profile, subject_profile) in [
        ("user-2004.der", Profile::Gost2004, Profile::Gost2004),
        (
            "user-2015-512.der",
            Profile::Gost2015_512,
            Profile::Gost2015_512,
        ),
    ] {
        let c = cert(file);
        let (key, curve, hash) = subject_profile.key_oids();
        assert_eq!(c.oids.0, issuer_profile.signature_oid(), "{file}");
        assert_eq!(
            (c.oids.1.as_str(), c.oids.2.as_str(), c.oids.3.as_str()),
            (key, curve, hash),
            "{file}"
        );
    }
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
