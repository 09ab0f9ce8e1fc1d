//! kilt-gost's PKCS#11 layout judged by a verifier it did not write: Debian's GOST engine for
//! OpenSSL (`libengine-gost-openssl`, installed by `scripts/ensure-deps`). Its `pkeyutl` takes
//! a digest and an RFC 4491 signature, as PKCS#11 tokens give them. Skipped, saying so, when the
//! engine is not installed.

use kilt_gost::{CurveId, pkcs11, streebog512};
use std::path::Path;
use std::process::Command;

const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/gost.so";

/// Runs `openssl pkeyutl -verify` of `signature` over `digest`: whether it said verified.
fn openssl_verifies(
    dir: &Path,
    id: CurveId,
    value: &[u8],
    digest: &[u8],
    signature: &[u8],
) -> bool {
    std::fs::write(dir.join("pub.der"), pkcs11::spki_der(id, value).unwrap()).unwrap();
    std::fs::write(dir.join("digest.bin"), digest).unwrap();
    std::fs::write(dir.join("sig.bin"), signature).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "pkeyutl", "-engine", "gost", "-verify", "-pubin", "-keyform", "DER",
        ])
        .args([
            "-inkey",
            "pub.der",
            "-in",
            "digest.bin",
            "-sigfile",
            "sig.bin",
        ])
        .output()
        .expect("openssl runs");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    // pkeyutl's exit code and its words agree only when it could read everything: check both.
    let ok = said.contains("Signature Verified Successfully");
    assert!(
        ok || said.contains("Signature Verification Failure"),
        "openssl did not judge the signature: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok && out.status.success()
}

fn random() -> impl FnMut(&mut [u8]) {
    let mut n = 0x5au8;
    move |b: &mut [u8]| {
        for x in b.iter_mut() {
            n = n.wrapping_mul(73).wrapping_add(41);
            *x = n;
        }
        b[0] &= 0x3f;
    }
}

fn engine_here() -> bool {
    if Path::new(ENGINE).exists() {
        return true;
    }
    eprintln!(
        "skipped: Debian's GOST engine is not installed (apt-get install libengine-gost-openssl)"
    );
    false
}

#[test]
fn openssl_gost_engine_verifies_the_pkcs11_layout_on_both_curves() {
    if !engine_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (id, digest) in [
        // A GOST R 34.11-94 digest as the hash outputs it (any 32 bytes serve pkeyutl).
        (
            CurveId::CryptoProA,
            kilt_gost::gost94_test(b"kilt 2004").to_vec(),
        ),
        (CurveId::Tc26_512A, streebog512(b"kilt 2015").to_vec()),
    ] {
        let d = vec![0x17; id.int_len()];
        let value = pkcs11::public_value(id, &d).unwrap();
        let sig = pkcs11::sign_digest(id, &d, &digest, &mut random()).unwrap();
        assert!(pkcs11::verify_digest(id, &value, &digest, &sig));
        assert!(
            openssl_verifies(dir.path(), id, &value, &digest, &sig),
            "{id:?}: OpenSSL refused kilt's s ‖ r"
        );
        // The certificates' order (r ‖ s little-endian) is the reversal, not the same bytes.
        let cert_order = kilt_gost::reversed(&sig);
        assert!(!openssl_verifies(
            dir.path(),
            id,
            &value,
            &digest,
            &cert_order
        ));
        let mut other = digest.clone();
        other[0] ^= 1;
        assert!(!openssl_verifies(dir.path(), id, &value, &other, &sig));
    }
}
