//! GOST signatures as the Kazakh national PKI and Tumar CSP make them: GOST 34.310-2004 (the
//! GOST R 34.10-2001 algorithm on the CryptoPro-A curve, hashed with GOST 34.311-95 = GOST R
//! 34.11-94 under its *Test* S-box) and GOST R 34.10-2015 with 512-bit keys (tc26-512-paramSetA,
//! Streebog-512). No maintained crate signs GOST R 34.10, so the curve arithmetic is here
//! ([`curve`]), over crypto-bigint, checked against RFC 7091's example and the national CA's test
//! certificates.
//!
//! Integers are big-endian byte strings, as the standard writes them. The certificates and
//! PKCS#11 hold them little-endian (see the README): [`reversed`] turns one into the other.
//!
//! ```
//! use kilt_gost::{CurveId, sign, verify, public_key, gost94_test, reversed};
//! let d = [0x11; 32];
//! let (x, y) = public_key(CurveId::CryptoProA, &d).unwrap();
//! // α: the digest read as a little-endian integer (the Kazakh and CryptoPro convention).
//! let alpha = reversed(&gost94_test(b"message"));
//! let (r, s) = sign(CurveId::CryptoProA, &d, &alpha, &mut |buf| buf.fill(0x42)).unwrap();
//! assert!(verify(CurveId::CryptoProA, &x, &y, &alpha, &r, &s));
//! ```
#![forbid(unsafe_code)]

pub mod curve;

use crypto_bigint::{U256, U512, Uint};
use curve::{Curve, Params};
use std::sync::LazyLock;
use zeroize::Zeroize;

/// What went wrong, in domain terms.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GostError {
    /// An integer was not as long as the curve's (32 or 64 bytes).
    #[error("a {what} of {got} bytes for a curve of {want}-byte integers")]
    Length {
        what: &'static str,
        got: usize,
        want: usize,
    },
    /// A private key that is 0 or not below the curve's order q.
    #[error("the private key is not between 1 and q - 1 of the curve")]
    KeyOutOfRange,
    /// The random source gave no usable nonce in many tries (it is broken).
    #[error("no nonce k in range after {0} tries: the random source is broken")]
    NoNonce(u32),
}

/// The parameter sets kilt signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CurveId {
    /// id-GostR3410-2001-CryptoPro-A-ParamSet (RFC 4357 §11.4; OID 1.2.643.2.2.35.1), which
    /// the Kazakh 2004 profile names 1.2.398.3.10.1.1.1.1.1.
    CryptoProA,
    /// id-tc26-gost-3410-12-512-paramSetA (RFC 7836 §A.1; OID 1.2.643.7.1.2.1.2.1), the Kazakh
    /// 2015 profile's 1.2.398.3.10.1.1.2.2.1.
    Tc26_512A,
}

/// The OIDs of GOST keys, curves, hashes and signatures: as the Russian standards name them
/// (RFC 4357, RFC 7836, RFC 9215; what OpenSSL's GOST engine and PKCS#11 programs use) and, where
/// it has its own, as the Kazakh national PKI does (the fixtures' README). Where both exist the
/// Russian one comes first. The one place kilt writes them.
pub mod oid {
    /// id-GostR3410-2001-CryptoPro-A-ParamSet; the Kazakh 2004 curve.
    pub const CRYPTOPRO_A: [&str; 2] = ["1.2.643.2.2.35.1", "1.2.398.3.10.1.1.1.1.1"];
    /// id-tc26-gost-3410-12-512-paramSetA; the Kazakh 2015 512-bit curve.
    pub const TC26_512_A: [&str; 2] = ["1.2.643.7.1.2.1.2.1", "1.2.398.3.10.1.1.2.2.1"];
    /// GOST R 34.11-94 (GOST 34.311-95) with the Test S-box.
    pub const GOST94_TEST: [&str; 2] = ["1.2.643.2.2.30.0", "1.2.398.3.10.1.3.1.1.0"];
    /// GOST R 34.11-94 with the CryptoPro S-box (no Kazakh name).
    pub const GOST94_CRYPTOPRO: [&str; 1] = ["1.2.643.2.2.30.1"];
    /// Streebog-512 (GOST R 34.11-2012).
    pub const STREEBOG_512: [&str; 2] = ["1.2.643.7.1.1.2.3", "1.2.398.3.10.1.3.3"];
    /// Key algorithms of RFC 4491 and RFC 9215: id-GostR3410-2001, id-tc26-gost3410-12-256,
    /// id-tc26-gost3410-12-512.
    pub const KEY_2001: &str = "1.2.643.2.2.19";
    pub const KEY_2012_256: &str = "1.2.643.7.1.1.1.1";
    pub const KEY_2012_512: &str = "1.2.643.7.1.1.1.2";
    /// The Kazakh key algorithms (2004; 2015 with 512-bit keys).
    pub const KZ_KEY_2004: &str = "1.2.398.3.10.1.1.1.1";
    pub const KZ_KEY_2015_512: &str = "1.2.398.3.10.1.1.2.2";
    /// The Kazakh signature algorithms of certificates and requests.
    pub const KZ_SIGNATURE_2004: &str = "1.2.398.3.10.1.1.1.2";
    pub const KZ_SIGNATURE_2015_512: &str = "1.2.398.3.10.1.1.2.3.2";
}

impl CurveId {
    /// The OIDs naming the curve: Russian, then Kazakh.
    pub fn oids(self) -> [&'static str; 2] {
        match self {
            CurveId::CryptoProA => oid::CRYPTOPRO_A,
            CurveId::Tc26_512A => oid::TC26_512_A,
        }
    }

    /// Bytes of one integer (coordinate, key, r, s): 32 or 64.
    pub fn int_len(self) -> usize {
        match self {
            CurveId::CryptoProA => 32,
            CurveId::Tc26_512A => 64,
        }
    }
}

static CRYPTOPRO_A: LazyLock<Curve<{ U256::LIMBS }>> = LazyLock::new(|| {
    let h = U256::from_be_hex;
    Curve::new(&Params {
        p: h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97"),
        a: h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD94"),
        b: U256::from_u8(0xA6),
        q: h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893"),
        x: U256::ONE,
        y: h("8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14"),
    })
});

static TC26_512_A: LazyLock<Curve<{ U512::LIMBS }>> = LazyLock::new(|| {
    let h = U512::from_be_hex;
    Curve::new(&Params {
        p: h(concat!(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC7"
        )),
        a: h(concat!(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC4"
        )),
        b: h(concat!(
            "E8C2505DEDFC86DDC1BD0B2B6667F1DA34B82574761CB0E879BD081CFD0B6265",
            "EE3CB090F30D27614CB4574010DA90DD862EF9D4EBEE4761503190785A71C760"
        )),
        q: h(concat!(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
            "27E69532F48D89116FF22B8D4E0560609B4B38ABFAD2B85DCACDB1411F10B275"
        )),
        x: U512::from_u8(3),
        y: h(concat!(
            "7503CFE87A836AE3A61B8816E25450E6CE5E1C93ACF1ABC1778064FDCBEFA921",
            "DF1626BE4FD036E93D75E6A50E3A41E98028FE5FC235F5B889A589CB5215F2A4"
        )),
    })
});

/// Two big-endian integers of a curve's length: a public key (x, y) or a signature (r, s).
pub type Pair = (Vec<u8>, Vec<u8>);

/// `bytes` in the other byte order.
pub fn reversed(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().copied().collect()
}

/// GOST 34.311-95 (GOST R 34.11-94) with the Test S-box (1.2.643.2.2.30.0), as the Kazakh 2004
/// profile hashes.
pub fn gost94_test(data: &[u8]) -> [u8; 32] {
    use gost94::Digest;
    gost94::Gost94Test::digest(data).into()
}

/// Streebog-512 (GOST R 34.11-2012 / 34.11-2015).
pub fn streebog512(data: &[u8]) -> [u8; 64] {
    use streebog::Digest;
    streebog::Streebog512::digest(data).into()
}

/// A big-endian integer of exactly the curve's length.
fn int<const L: usize>(what: &'static str, bytes: &[u8]) -> Result<Uint<L>, GostError> {
    let want = Uint::<L>::BYTES;
    if bytes.len() != want {
        return Err(GostError::Length {
            what,
            got: bytes.len(),
            want,
        });
    }
    Ok(Uint::from_be_slice(bytes))
}

fn be<const L: usize>(v: &Uint<L>) -> Vec<u8> {
    let mut out = Vec::with_capacity(Uint::<L>::BYTES);
    for limb in v.as_limbs().iter().rev() {
        out.extend_from_slice(&limb.0.to_be_bytes());
    }
    out
}

/// Runs `f` on the curve of `id` with its integer width.
macro_rules! on_curve {
    ($id:expr, $c:ident => $body:expr) => {
        match $id {
            CurveId::CryptoProA => {
                let $c = &*CRYPTOPRO_A;
                $body
            }
            CurveId::Tc26_512A => {
                let $c = &*TC26_512_A;
                $body
            }
        }
    };
}

/// The public key (x, y) of the private key `d`.
pub fn public_key(id: CurveId, d: &[u8]) -> Result<Pair, GostError> {
    on_curve!(id, c => {
        let mut d = int("private key", d)?;
        let point = c.public_key(&d);
        d.zeroize();
        let (x, y) = point.ok_or(GostError::KeyOutOfRange)?;
        Ok((be(&x), be(&y)))
    })
}

/// Signs the digest integer `alpha` with `d` (RFC 7091 §6.1), drawing k from `random` (which
/// fills a buffer with random bytes) until it is in range: (r, s).
pub fn sign(
    id: CurveId,
    d: &[u8],
    alpha: &[u8],
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<Pair, GostError> {
    const TRIES: u32 = 64;
    let mut k = vec![0u8; id.int_len()];
    for _ in 0..TRIES {
        random(&mut k);
        match sign_with_k(id, d, alpha, &k) {
            Ok(Some(rs)) => {
                k.zeroize();
                return Ok(rs);
            }
            Ok(None) => continue,
            Err(e) => {
                k.zeroize();
                return Err(e);
            }
        }
    }
    k.zeroize();
    Err(GostError::NoNonce(TRIES))
}

/// Signs with the given k (the standard's examples fix k); `Ok(None)` when k is out of range or
/// gives r or s = 0 (take another).
pub fn sign_with_k(
    id: CurveId,
    d: &[u8],
    alpha: &[u8],
    k: &[u8],
) -> Result<Option<Pair>, GostError> {
    on_curve!(id, c => {
        let mut d = int("private key", d)?;
        if !c.is_scalar(&d) {
            d.zeroize();
            return Err(GostError::KeyOutOfRange);
        }
        let alpha = int("digest", alpha)?;
        let mut k = int("nonce", k)?;
        let rs = c.sign_with_k(&d, &alpha, &k);
        d.zeroize();
        k.zeroize();
        Ok(rs.map(|(r, s)| (be(&r), be(&s))))
    })
}

/// Whether (r, s) signs the digest integer `alpha` under the public key (x, y).
pub fn verify(id: CurveId, x: &[u8], y: &[u8], alpha: &[u8], r: &[u8], s: &[u8]) -> bool {
    on_curve!(id, c => {
        let parsed = (|| {
            Ok::<_, GostError>((
                int("x", x)?,
                int("y", y)?,
                int("digest", alpha)?,
                int("r", r)?,
                int("s", s)?,
            ))
        })();
        match parsed {
            Ok((x, y, alpha, r, s)) => c.verify(&x, &y, &alpha, &r, &s),
            Err(_) => false,
        }
    })
}

/// The Kazakh national PKI's two GOST profiles (see the fixtures' README): which curve and hash,
/// the OIDs certificates name them by, and the byte layout of keys and signatures there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// GOST 34.310-2004: CryptoPro-A, GOST 34.311-95 with the Test S-box.
    Gost2004,
    /// GOST R 34.10-2015, 512-bit keys: tc26-512-paramSetA, Streebog-512.
    Gost2015_512,
}

impl Profile {
    /// The curve.
    pub fn curve(self) -> CurveId {
        match self {
            Profile::Gost2004 => CurveId::CryptoProA,
            Profile::Gost2015_512 => CurveId::Tc26_512A,
        }
    }

    /// The signature algorithm's OID in certificates.
    pub fn signature_oid(self) -> &'static str {
        match self {
            Profile::Gost2004 => oid::KZ_SIGNATURE_2004,
            Profile::Gost2015_512 => oid::KZ_SIGNATURE_2015_512,
        }
    }

    /// The public key algorithm's OID, and its parameters: the curve's and the hash's OIDs.
    pub fn key_oids(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Profile::Gost2004 => (oid::KZ_KEY_2004, oid::CRYPTOPRO_A[1], oid::GOST94_TEST[1]),
            Profile::Gost2015_512 => (
                oid::KZ_KEY_2015_512,
                oid::TC26_512_A[1],
                oid::STREEBOG_512[1],
            ),
        }
    }

    /// The digest of `data` under the profile's hash.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Profile::Gost2004 => gost94_test(data).to_vec(),
            Profile::Gost2015_512 => streebog512(data).to_vec(),
        }
    }

    /// The public key of `d` (big-endian) as certificates hold it: little-endian x ‖ little-endian y.
    pub fn public_key(self, d: &[u8]) -> Result<Vec<u8>, GostError> {
        let (x, y) = public_key(self.curve(), d)?;
        Ok([reversed(&x), reversed(&y)].concat())
    }

    /// Signs `data` as the national CA signs: the digest read as a little-endian integer, the
    /// signature little-endian r ‖ little-endian s.
    pub fn sign(
        self,
        d: &[u8],
        data: &[u8],
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Vec<u8>, GostError> {
        let alpha = reversed(&self.digest(data));
        let (r, s) = sign(self.curve(), d, &alpha, random)?;
        Ok([reversed(&r), reversed(&s)].concat())
    }

    /// Whether `signature` (little-endian r ‖ s) signs `data` under `key` (little-endian x ‖ y).
    pub fn verify(self, key: &[u8], data: &[u8], signature: &[u8]) -> bool {
        let n = self.curve().int_len();
        if key.len() != 2 * n || signature.len() != 2 * n {
            return false;
        }
        let alpha = reversed(&self.digest(data));
        verify(
            self.curve(),
            &reversed(&key[..n]),
            &reversed(&key[n..]),
            &alpha,
            &reversed(&signature[..n]),
            &reversed(&signature[n..]),
        )
    }
}

/// PKCS#11's layout of GOST R 34.10 keys and signatures (2.40 Current Mechanisms, "GOST R
/// 34.10-2001"): the public key's `CKA_VALUE` is little-endian x ‖ little-endian y (the same
/// bytes as the certificates' key OCTET STRING); `CKM_GOSTR3410` takes the digest as the hash
/// outputs it, read as a little-endian integer (as the certificates' digests are, and as
/// OpenSSL's GOST engine reads it); its signature is s ‖ r, each big-endian — RFC 4491 §2.2.2's
/// bytes, which the Kazakh certificates store reversed (little-endian r ‖ s).
pub mod pkcs11 {
    use super::{CurveId, GostError, reversed};

    /// The public key's `CKA_VALUE` for the big-endian private key `d`.
    pub fn public_value(id: CurveId, d: &[u8]) -> Result<Vec<u8>, GostError> {
        let (x, y) = super::public_key(id, d)?;
        Ok([reversed(&x), reversed(&y)].concat())
    }

    /// `CKM_GOSTR3410`: signs `digest` (the curve's integer length) with `d`.
    pub fn sign_digest(
        id: CurveId,
        d: &[u8],
        digest: &[u8],
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Vec<u8>, GostError> {
        let (r, s) = super::sign(id, d, &reversed(digest), random)?;
        Ok([s, r].concat())
    }

    /// The public `CKA_VALUE` as a DER SubjectPublicKeyInfo under the OIDs OpenSSL's GOST engine
    /// and other RFC 4491 / RFC 9215 software know: id-GostR3410-2001 with {CryptoPro-A, the
    /// CryptoPro hash set}, or id-tc26-gost3410-12-512 with {tc26-512-paramSetA} (RFC 9215 §3
    /// leaves the digest parameter out for 512-bit keys). The key itself is an OCTET STRING
    /// of `value`, as in the certificates.
    pub fn spki_der(id: CurveId, value: &[u8]) -> Result<Vec<u8>, GostError> {
        use super::oid;
        use spki::der::asn1::{BitString, ObjectIdentifier as Oid, OctetString};
        use spki::der::{Any, Encode};
        let (alg, params): (&str, &[&str]) = match id {
            CurveId::CryptoProA => (
                oid::KEY_2001,
                &[oid::CRYPTOPRO_A[0], oid::GOST94_CRYPTOPRO[0]],
            ),
            CurveId::Tc26_512A => (oid::KEY_2012_512, &[oid::TC26_512_A[0]]),
        };
        let alg = Oid::new_unwrap(alg);
        let params: Vec<Oid> = params.iter().map(|o| Oid::new_unwrap(o)).collect();
        let der = || GostError::Length {
            what: "public key",
            got: value.len(),
            want: 2 * id.int_len(),
        };
        if value.len() != 2 * id.int_len() {
            return Err(der());
        }
        let params = Any::encode_from(&params).map_err(|_| der())?;
        let key = OctetString::new(value)
            .and_then(|o| o.to_der())
            .map_err(|_| der())?;
        spki::SubjectPublicKeyInfo {
            algorithm: spki::AlgorithmIdentifier {
                oid: alg,
                parameters: Some(params),
            },
            subject_public_key: BitString::from_bytes(&key).map_err(|_| der())?,
        }
        .to_der()
        .map_err(|_| der())
    }

    /// Whether `signature` (s ‖ r) signs `digest` under the public `CKA_VALUE` `value`.
    pub fn verify_digest(id: CurveId, value: &[u8], digest: &[u8], signature: &[u8]) -> bool {
        let n = id.int_len();
        if value.len() != 2 * n || signature.len() != 2 * n {
            return false;
        }
        super::verify(
            id,
            &reversed(&value[..n]),
            &reversed(&value[n..]),
            &reversed(digest),
            &signature[n..],
            &signature[..n],
        )
    }
}
