//! Signing on both Kazakh curves: what is signed verifies, anything else does not, and bad input
//! is refused with the reason.

use kilt_gost::{CurveId, GostError, public_key, sign, sign_with_k, verify};

/// A deterministic stand-in for the random source: a counter mixed into every byte.
fn counter() -> impl FnMut(&mut [u8]) {
    let mut n = 0u8;
    move |buf: &mut [u8]| {
        n = n.wrapping_add(1);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31) ^ n;
        }
    }
}

#[test]
fn signatures_verify_on_both_curves_and_nothing_else_does() {
    for curve in [CurveId::CryptoProA, CurveId::Tc26_512A] {
        let n = curve.int_len();
        let d: Vec<u8> = (0..n).map(|i| (i as u8) ^ 0x5a).collect();
        let (x, y) = public_key(curve, &d).unwrap();
        let alpha = vec![0x33; n];
        let (r, s) = sign(curve, &d, &alpha, &mut counter()).unwrap();
        assert_eq!((r.len(), s.len()), (n, n));
        assert!(verify(curve, &x, &y, &alpha, &r, &s), "{curve:?}");
        let mut other = alpha.clone();
        other[n - 1] ^= 1;
        assert!(
            !verify(curve, &x, &y, &other, &r, &s),
            "{curve:?}: another digest"
        );
        let mut bad_s = s.clone();
        bad_s[0] ^= 0x80;
        assert!(
            !verify(curve, &x, &y, &alpha, &r, &bad_s),
            "{curve:?}: another s"
        );
        // Two signatures of one digest differ (k is random) and both verify.
        let (r2, s2) = sign(curve, &d, &alpha, &mut |b: &mut [u8]| b.fill(0x21)).unwrap();
        assert_ne!((&r, &s), (&r2, &s2));
        assert!(verify(curve, &x, &y, &alpha, &r2, &s2));
    }
}

#[test]
fn bad_input_is_refused_with_its_reason() {
    let c = CurveId::CryptoProA;
    assert_eq!(
        public_key(c, &[1; 31]),
        Err(GostError::Length {
            what: "private key",
            got: 31,
            want: 32
        })
    );
    assert_eq!(public_key(c, &[0; 32]), Err(GostError::KeyOutOfRange));
    assert_eq!(public_key(c, &[0xff; 32]), Err(GostError::KeyOutOfRange));
    assert_eq!(
        sign(c, &[1; 32], &[1; 32], &mut |b: &mut [u8]| b.fill(0)),
        Err(GostError::NoNonce(64)),
        "a source of zeros never gives a nonce"
    );
    assert_eq!(sign_with_k(c, &[1; 32], &[1; 32], &[0xff; 32]), Ok(None));
    assert!(!verify(c, &[1; 31], &[1; 32], &[1; 32], &[1; 32], &[1; 32]));
}

/// PKCS#11's layout is the certificates' reversed: s ‖ r big-endian against r ‖ s little-endian,
/// and the same little-endian key bytes; wrong lengths are refused, not read short.
#[test]
fn the_pkcs11_layout_is_the_certificates_reversed() {
    use kilt_gost::{Profile, pkcs11, reversed};
    for profile in [Profile::Gost2004, Profile::Gost2015_512] {
        let id = profile.curve();
        let d = vec![0x21; id.int_len()];
        let value = pkcs11::public_value(id, &d).unwrap();
        assert_eq!(value, profile.public_key(&d).unwrap());
        let data = b"the same message";
        let digest = profile.digest(data);
        let sig = pkcs11::sign_digest(id, &d, &digest, &mut counter()).unwrap();
        assert!(pkcs11::verify_digest(id, &value, &digest, &sig));
        assert!(profile.verify(&value, data, &reversed(&sig)));
        assert!(!pkcs11::verify_digest(id, &value, &digest, &reversed(&sig)));
        assert!(!pkcs11::verify_digest(id, &value[1..], &digest, &sig));
        assert!(!pkcs11::verify_digest(id, &value, &digest, &sig[1..]));
    }
}
