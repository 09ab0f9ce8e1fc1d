//! Cryptography of the token: P-256 keys and ECDSA, GOST R 34.10 keys (through `kilt-gost`),
//! the hashes of its mechanisms, randomness and the at-rest encryption.
//!
//! Signing sits behind [`EcdsaSigner`] so the hot path can use `aws-lc-rs` (measured ~4× faster
//! than `p256` here, DESIGN.md) while `p256` stays the independent verifier and the fallback for
//! digest lengths other than 32 bytes (`aws-lc-rs` imports only full SHA-256-sized digests).

use crate::error::{Error, Result};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use std::num::NonZeroU32;
use std::sync::LazyLock;
use zeroize::Zeroizing;

/// DER of the named curve OID 1.2.840.10045.3.1.7 (prime256v1), the `CKA_EC_PARAMS` of every key
/// (RFC 5480 §2.1.1.1).
pub const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// Length of an ECDSA P-256 signature as PKCS#11 returns it: r ‖ s (PKCS#11 2.40 curr. mech. §2.3.1).
pub const SIGNATURE_LEN: usize = 64;
/// Length of an uncompressed SEC1 P-256 point.
pub const POINT_LEN: usize = 65;
/// Length of a SHA-256 digest.
pub const SHA256_LEN: usize = 32;
/// Length of the token's wrapping key.
pub const KEY_LEN: usize = 32;

/// A key that signs a given digest with ECDSA P-256 and returns r ‖ s.
pub trait EcdsaSigner: Send + Sync {
    /// Signs `digest` (already hashed; truncated or padded per SEC1 §4.1.3 when not 32 bytes).
    fn sign_digest(&self, digest: &[u8]) -> Result<[u8; SIGNATURE_LEN]>;
}

/// A P-256 private key held in memory while the user is logged in.
pub struct EcPrivateKey {
    fast: EcdsaKeyPair,
    scalar: Zeroizing<[u8; 32]>,
    /// The portable signer, made the first time a digest needs it (not 32 bytes long): building
    /// it computes the public point again in pure Rust, which is most of a key generation's
    /// cost, and almost no key ever needs it.
    portable: std::sync::OnceLock<p256::ecdsa::SigningKey>,
}

impl std::fmt::Debug for EcPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EcPrivateKey(..)")
    }
}

impl EcPrivateKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let fast = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| Error::DeviceError("key generation failed".into()))?;
        let be = fast
            .private_key()
            .as_be_bytes()
            .map_err(|_| Error::DeviceError("key generation failed".into()))?;
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(be.as_ref());
        Ok(EcPrivateKey {
            fast,
            scalar,
            portable: std::sync::OnceLock::new(),
        })
    }

    /// The key with this big-endian scalar. The public point is computed by aws-lc from an
    /// RFC 5915 `ECPrivateKey` without one (§3: `publicKey` is optional).
    pub fn from_scalar(scalar: &[u8]) -> Result<Self> {
        use sec1::der::Encode;
        let invalid = || Error::AttributeValueInvalid(cryptoki_sys::CKA_VALUE);
        let mut fixed = Zeroizing::new([0u8; 32]);
        if scalar.len() != fixed.len() {
            return Err(invalid());
        }
        fixed.copy_from_slice(scalar);
        let der = Zeroizing::new(
            sec1::EcPrivateKey {
                private_key: scalar,
                parameters: None,
                public_key: None,
            }
            .to_der()
            .map_err(|_| invalid())?,
        );
        let fast = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| invalid())?;
        Ok(EcPrivateKey {
            fast,
            scalar: fixed,
            portable: std::sync::OnceLock::new(),
        })
    }

    /// An independent copy (its own aws-lc key object), for one thread to sign with.
    pub fn copy(&self) -> Result<Self> {
        Self::from_scalar(self.scalar.as_ref())
    }

    /// The big-endian private scalar.
    pub fn scalar(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.scalar.to_vec())
    }

    /// The uncompressed public point `04 ‖ X ‖ Y`.
    pub fn public_point(&self) -> Vec<u8> {
        self.fast.public_key().as_ref().to_vec()
    }

    fn portable(&self) -> Result<&p256::ecdsa::SigningKey> {
        if let Some(k) = self.portable.get() {
            return Ok(k);
        }
        let k = p256::ecdsa::SigningKey::from_slice(self.scalar.as_ref())
            .map_err(|_| Error::DeviceError("the key does not load".into()))?;
        Ok(self.portable.get_or_init(|| k))
    }
}

impl EcdsaSigner for EcPrivateKey {
    fn sign_digest(&self, digest: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        let mut out = [0u8; SIGNATURE_LEN];
        if digest.len() == SHA256_LEN {
            let d = Digest::import_less_safe(digest, &SHA256)
                .map_err(|_| Error::DeviceError("digest import failed".into()))?;
            let sig = self
                .fast
                .sign_digest(&d)
                .map_err(|_| Error::DeviceError("signing failed".into()))?;
            out.copy_from_slice(sig.as_ref());
            return Ok(out);
        }
        P256Signer(self.portable()?).sign_digest(digest)
    }
}

/// The portable `p256` signer: the fallback and the baseline in benchmarks.
pub struct P256Signer<'a>(pub &'a p256::ecdsa::SigningKey);

impl EcdsaSigner for P256Signer<'_> {
    fn sign_digest(&self, digest: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        let sig: p256::ecdsa::Signature = self
            .0
            .sign_prehash(digest)
            .map_err(|_| Error::DataLenRange)?;
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

/// Checks an r ‖ s signature over `digest` with the public point, using `p256` (independent of
/// the signing backend).
pub fn verify_digest(point: &[u8], digest: &[u8], signature: &[u8]) -> Result<()> {
    if signature.len() != SIGNATURE_LEN {
        return Err(Error::SignatureLenRange);
    }
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| Error::AttributeValueInvalid(cryptoki_sys::CKA_EC_POINT))?;
    let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|_| Error::SignatureInvalid)?;
    match key.verify_prehash(digest, &sig) {
        Ok(()) => Ok(()),
        Err(_) if digest.len() < SHA256_LEN / 2 => Err(Error::DataLenRange),
        Err(_) => Err(Error::SignatureInvalid),
    }
}

/// What a key pair is: a P-256 key, or a GOST R 34.10 key on one of the two Kazakh curves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    P256,
    Gost(kilt_gost::CurveId),
}

impl KeyAlgorithm {
    /// A private key's `CKA_VALUE` from the store's big-endian scalar, or the scalar from a
    /// `CKA_VALUE` (a reversal is its own inverse): big-endian for EC (3.0 §6.3.4), little-endian
    /// for GOST (2.40 curr. mech., GOST R 34.10-2001 private key objects).
    pub fn private_value_order(self, bytes: &[u8]) -> Zeroizing<Vec<u8>> {
        match self {
            KeyAlgorithm::P256 => Zeroizing::new(bytes.to_vec()),
            KeyAlgorithm::Gost(_) => Zeroizing::new(kilt_gost::reversed(bytes)),
        }
    }

    /// Bytes of a signature as PKCS#11 returns it.
    pub fn signature_len(self) -> usize {
        match self {
            KeyAlgorithm::P256 => SIGNATURE_LEN,
            KeyAlgorithm::Gost(c) => 2 * c.int_len(),
        }
    }
}

/// `CKA_GOSTR3410_PARAMS`: the DER OIDs naming each curve ([`kilt_gost::CurveId::oids`]), the
/// Russian one (RFC 4357 §10.8, RFC 7836 §A.1) first, then the Kazakh one (the fixtures'
/// certificates). Encoded once: every GOST key's algorithm is read through it.
static GOST_CURVES: LazyLock<Vec<(kilt_gost::CurveId, Vec<Vec<u8>>)>> = LazyLock::new(|| {
    [
        kilt_gost::CurveId::CryptoProA,
        kilt_gost::CurveId::Tc26_512A,
    ]
    .into_iter()
    .map(|c| (c, c.oids().iter().map(|o| oid_der(o)).collect()))
    .collect()
});

/// `CKA_GOSTR3411_PARAMS` and `CKM_GOSTR3411`'s parameter: the DER OIDs naming each hash,
/// Russian first (RFC 4357 §10.2, RFC 6986), then Kazakh.
static GOST_HASHES: LazyLock<Vec<(HashKind, Vec<Vec<u8>>)>> = LazyLock::new(|| {
    let ders = |oids: &[&str]| oids.iter().map(|o| oid_der(o)).collect();
    vec![
        (HashKind::Gost94Test, ders(&kilt_gost::oid::GOST94_TEST)),
        (
            HashKind::Gost94CryptoPro,
            ders(&kilt_gost::oid::GOST94_CRYPTOPRO),
        ),
        (HashKind::Streebog512, ders(&kilt_gost::oid::STREEBOG_512)),
    ]
});

/// The DER of a dotted OID.
pub fn oid_der(dotted: &str) -> Vec<u8> {
    use sec1::der::Encode;
    sec1::der::asn1::ObjectIdentifier::new_unwrap(dotted)
        .to_der()
        .unwrap_or_default()
}

/// The curve a `CKA_GOSTR3410_PARAMS` value names.
pub fn gost_curve(params: &[u8]) -> Option<kilt_gost::CurveId> {
    GOST_CURVES
        .iter()
        .find(|(_, ders)| ders.iter().any(|d| d == params))
        .map(|(c, _)| *c)
}

/// The hash a `CKA_GOSTR3411_PARAMS` value (or `CKM_GOSTR3411` parameter) names.
pub fn gost_hash(params: &[u8]) -> Option<HashKind> {
    GOST_HASHES
        .iter()
        .find(|(_, ders)| ders.iter().any(|d| d == params))
        .map(|(h, _)| *h)
}

/// The hash a new key of `curve` is given when the template names none: what the Kazakh
/// profiles hash with (the fixtures' README) — GOST 34.311-95 with the Test S-box for 2004,
/// Streebog-512 for the 512-bit keys of 2015.
pub fn default_gost_hash(curve: kilt_gost::CurveId) -> HashKind {
    match curve {
        kilt_gost::CurveId::CryptoProA => HashKind::Gost94Test,
        kilt_gost::CurveId::Tc26_512A => HashKind::Streebog512,
    }
}

/// The first (Russian) DER OID of a hash, as a new key's attribute.
pub fn gost_hash_params(hash: HashKind) -> Vec<u8> {
    GOST_HASHES
        .iter()
        .find(|(h, _)| *h == hash)
        .map(|(_, ders)| ders[0].clone())
        .unwrap_or_default()
}

/// The hashes of the token's mechanisms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashKind {
    Sha256,
    /// GOST R 34.11-94 (GOST 34.311-95) with the Test S-box (the Kazakh 2004 profile's).
    Gost94Test,
    /// GOST R 34.11-94 with the CryptoPro S-box (`CKM_GOSTR3411`'s default, 2.40 curr. mech.).
    Gost94CryptoPro,
    /// Streebog-512 (GOST R 34.11-2012).
    Streebog512,
}

impl HashKind {
    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }

    /// Bytes of a digest.
    pub fn output_len(self) -> usize {
        match self {
            HashKind::Sha256 | HashKind::Gost94Test | HashKind::Gost94CryptoPro => 32,
            HashKind::Streebog512 => 64,
        }
    }
}

/// A running hash of any [`HashKind`].
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Gost94Test(gost94::Gost94Test),
    Gost94CryptoPro(gost94::Gost94CryptoPro),
    Streebog512(streebog::Streebog512),
}

impl Hasher {
    pub fn new(kind: HashKind) -> Hasher {
        match kind {
            HashKind::Sha256 => Hasher::Sha256(Default::default()),
            HashKind::Gost94Test => Hasher::Gost94Test(Default::default()),
            HashKind::Gost94CryptoPro => Hasher::Gost94CryptoPro(Default::default()),
            HashKind::Streebog512 => Hasher::Streebog512(Default::default()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => sha2::Digest::update(h, data),
            Hasher::Gost94Test(h) => gost94::Digest::update(h, data),
            Hasher::Gost94CryptoPro(h) => gost94::Digest::update(h, data),
            Hasher::Streebog512(h) => streebog::Digest::update(h, data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
            Hasher::Gost94Test(h) => gost94::Digest::finalize(h).to_vec(),
            Hasher::Gost94CryptoPro(h) => gost94::Digest::finalize(h).to_vec(),
            Hasher::Streebog512(h) => streebog::Digest::finalize(h).to_vec(),
        }
    }
}

/// A GOST R 34.10 private key held in memory while the user is logged in.
pub struct GostPrivateKey {
    curve: kilt_gost::CurveId,
    /// Big-endian.
    d: Zeroizing<Vec<u8>>,
}

impl GostPrivateKey {
    /// A fresh random key (1 ≤ d < q: drawn again when out of range).
    pub fn generate(curve: kilt_gost::CurveId) -> Result<Self> {
        let mut d = Zeroizing::new(vec![0u8; curve.int_len()]);
        for _ in 0..64 {
            random(&mut d)?;
            if kilt_gost::public_key(curve, &d).is_ok() {
                return Ok(GostPrivateKey { curve, d });
            }
        }
        Err(Error::DeviceError("key generation failed".into()))
    }

    /// The key with this big-endian scalar.
    pub fn from_scalar(curve: kilt_gost::CurveId, scalar: &[u8]) -> Result<Self> {
        kilt_gost::public_key(curve, scalar)
            .map_err(|_| Error::AttributeValueInvalid(cryptoki_sys::CKA_VALUE))?;
        Ok(GostPrivateKey {
            curve,
            d: Zeroizing::new(scalar.to_vec()),
        })
    }

    /// The public key's `CKA_VALUE` (little-endian x ‖ y).
    pub fn public_value(&self) -> Result<Vec<u8>> {
        kilt_gost::pkcs11::public_value(self.curve, &self.d)
            .map_err(|e| Error::DeviceError(e.to_string()))
    }
}

/// A private key of either algorithm.
pub enum PrivateKey {
    Ec(EcPrivateKey),
    Gost(GostPrivateKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, ..)", self.algorithm())
    }
}

impl PrivateKey {
    /// A fresh random key.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self> {
        Ok(match alg {
            KeyAlgorithm::P256 => PrivateKey::Ec(EcPrivateKey::generate()?),
            KeyAlgorithm::Gost(c) => PrivateKey::Gost(GostPrivateKey::generate(c)?),
        })
    }

    /// The key with this big-endian scalar.
    pub fn from_scalar(alg: KeyAlgorithm, scalar: &[u8]) -> Result<Self> {
        Ok(match alg {
            KeyAlgorithm::P256 => PrivateKey::Ec(EcPrivateKey::from_scalar(scalar)?),
            KeyAlgorithm::Gost(c) => PrivateKey::Gost(GostPrivateKey::from_scalar(c, scalar)?),
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PrivateKey::Ec(_) => KeyAlgorithm::P256,
            PrivateKey::Gost(k) => KeyAlgorithm::Gost(k.curve),
        }
    }

    /// The big-endian private scalar (what is sealed in the store).
    pub fn scalar(&self) -> Zeroizing<Vec<u8>> {
        match self {
            PrivateKey::Ec(k) => k.scalar(),
            PrivateKey::Gost(k) => Zeroizing::new(k.d.to_vec()),
        }
    }

    /// The public key as its object holds it: the P-256 point `04 ‖ X ‖ Y`, or the GOST
    /// `CKA_VALUE`.
    pub fn public(&self) -> Result<Vec<u8>> {
        match self {
            PrivateKey::Ec(k) => Ok(k.public_point()),
            PrivateKey::Gost(k) => k.public_value(),
        }
    }

    /// An independent copy, for one session to sign with (see `Signing` in the emulator).
    pub fn copy(&self) -> Result<Self> {
        match self {
            PrivateKey::Ec(k) => Ok(PrivateKey::Ec(k.copy()?)),
            PrivateKey::Gost(k) => Ok(PrivateKey::Gost(GostPrivateKey {
                curve: k.curve,
                d: k.d.clone(),
            })),
        }
    }

    /// Signs a digest: ECDSA r ‖ s (SEC1 truncation for other lengths), or GOST R 34.10 in
    /// PKCS#11's layout (the digest exactly the curve's length, read little-endian; s ‖ r).
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        match self {
            PrivateKey::Ec(k) => Ok(k.sign_digest(digest)?.to_vec()),
            PrivateKey::Gost(k) => {
                if digest.len() != k.curve.int_len() {
                    return Err(Error::DataLenRange);
                }
                let mut failed = None;
                let sig = kilt_gost::pkcs11::sign_digest(k.curve, &k.d, digest, &mut |b| {
                    if let Err(e) = random(b) {
                        failed = Some(e);
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
                sig.map_err(|e| Error::DeviceError(e.to_string()))
            }
        }
    }
}

/// Checks a signature over `digest` with a public key as its object holds it (see
/// [`PrivateKey::public`]).
pub fn verify_with(
    alg: KeyAlgorithm,
    public: &[u8],
    digest: &[u8],
    signature: &[u8],
) -> Result<()> {
    match alg {
        KeyAlgorithm::P256 => verify_digest(public, digest, signature),
        KeyAlgorithm::Gost(c) => {
            if signature.len() != alg.signature_len() {
                return Err(Error::SignatureLenRange);
            }
            if digest.len() != c.int_len() {
                return Err(Error::DataLenRange);
            }
            if kilt_gost::pkcs11::verify_digest(c, public, digest, signature) {
                Ok(())
            } else {
                Err(Error::SignatureInvalid)
            }
        }
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; SHA256_LEN] {
    let mut out = [0u8; SHA256_LEN];
    out.copy_from_slice(aws_lc_rs::digest::digest(&SHA256, data).as_ref());
    out
}

/// Fills `buf` from the system's CSPRNG.
pub fn random(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| Error::DeviceError("random generator failed".into()))
}

/// The key a PIN unlocks: PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) over the PIN and a per-PIN salt.
pub fn pin_key(pin: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<[u8; KEY_LEN]> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        pin,
        out.as_mut(),
    );
    out
}

/// AES-256-GCM encryption with a random nonce in front; `context` is bound as associated data so
/// a blob cannot be moved to another object or purpose.
pub fn seal(key: &[u8; KEY_LEN], context: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let k = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::DeviceError("bad key".into()))?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(context),
        &mut buf,
    )
    .map_err(|_| Error::DeviceError("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`seal`] made; `None` when the key or context is wrong or the blob was altered.
pub fn open(key: &[u8; KEY_LEN], context: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = Zeroizing::new(body.to_vec());
    let n = k
        .open_in_place(nonce, Aad::from(context), &mut buf)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// The public point inside a `CKA_EC_POINT` value: a DER OCTET STRING (PKCS#11 2.40 curr. mech.
/// §2.3.3) or, as some applications send, the raw point.
pub fn parse_ec_point(value: &[u8]) -> Option<&[u8]> {
    match value {
        [0x04, 0x41, rest @ ..] if rest.len() == POINT_LEN && rest[0] == 0x04 => Some(rest),
        [0x04, ..] if value.len() == POINT_LEN => Some(value),
        _ => None,
    }
}

/// `CKA_EC_POINT` for a point: DER OCTET STRING around the uncompressed point.
pub fn ec_point_der(point: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, point.len() as u8];
    out.extend_from_slice(point);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_key_shows_its_algorithm_and_never_its_scalar() {
        let curve = kilt_gost::CurveId::CryptoProA;
        let k = PrivateKey::from_scalar(KeyAlgorithm::Gost(curve), &[0x5a; 32]).unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains("CryptoProA"), "{shown}");
        assert!(!shown.contains("5a") && !shown.contains("90"), "{shown}");
        assert_eq!(k.algorithm().signature_len(), 64);
        let copy = k.copy().unwrap();
        assert_eq!(*copy.scalar(), vec![0x5a; 32]);
        assert_eq!(copy.public().unwrap(), k.public().unwrap());
        assert!(matches!(
            PrivateKey::from_scalar(KeyAlgorithm::Gost(curve), &[0; 32]),
            Err(Error::AttributeValueInvalid(_))
        ));
    }

    #[test]
    fn fast_and_portable_signatures_both_verify() {
        let key = EcPrivateKey::generate().unwrap();
        let point = key.public_point();
        for len in [20usize, 32, 48, 64] {
            let digest = vec![0x5au8; len];
            let sig = key.sign_digest(&digest).unwrap();
            verify_digest(&point, &digest, &sig).unwrap();
            let mut bad = sig;
            bad[10] ^= 1;
            assert!(matches!(
                verify_digest(&point, &digest, &bad),
                Err(Error::SignatureInvalid)
            ));
        }
    }

    #[test]
    fn a_key_never_shows_its_scalar_in_debug() {
        let key = EcPrivateKey::from_scalar(&[0x11; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "EcPrivateKey(..)");
    }

    #[test]
    fn a_key_survives_export_and_import_of_its_scalar() {
        let key = EcPrivateKey::generate().unwrap();
        let again = EcPrivateKey::from_scalar(&key.scalar()).unwrap();
        assert_eq!(key.public_point(), again.public_point());
        assert_eq!(*key.scalar(), *again.scalar());
        // The point aws-lc computes is the one pure-Rust p256 computes.
        let portable = p256::ecdsa::SigningKey::from_slice(&key.scalar()).unwrap();
        assert_eq!(
            portable.verifying_key().to_encoded_point(false).as_bytes(),
            again.public_point().as_slice()
        );
        // Zero, the group order n and beyond, and other lengths are no keys.
        let n = hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
            .unwrap();
        for bad in [
            vec![0u8; 32],
            n,
            vec![0xff; 32],
            vec![1u8; 31],
            vec![1u8; 33],
        ] {
            assert!(EcPrivateKey::from_scalar(&bad).is_err(), "{bad:02x?}");
        }
        // One below the order is a key.
        let mut top =
            hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550")
                .unwrap();
        assert!(EcPrivateKey::from_scalar(&top).is_ok());
        top[31] = 0x51;
        assert!(EcPrivateKey::from_scalar(&top).is_err());
    }

    #[test]
    fn sealed_blobs_open_only_with_the_same_key_and_context() {
        let key = [7u8; KEY_LEN];
        let blob = seal(&key, b"obj:1", b"secret").unwrap();
        assert_eq!(open(&key, b"obj:1", &blob).unwrap().as_slice(), b"secret");
        assert!(open(&key, b"obj:2", &blob).is_none());
        assert!(open(&[8u8; KEY_LEN], b"obj:1", &blob).is_none());
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&key, b"obj:1", &tampered).is_none());
    }

    #[test]
    fn ec_points_parse_in_both_encodings() {
        let key = EcPrivateKey::generate().unwrap();
        let p = key.public_point();
        assert_eq!(parse_ec_point(&ec_point_der(&p)), Some(p.as_slice()));
        assert_eq!(parse_ec_point(&p), Some(p.as_slice()));
        assert_eq!(parse_ec_point(&p[1..]), None);
    }

    #[test]
    fn pin_keys_depend_on_pin_and_salt() {
        let a = pin_key(b"1234", b"salt", 10);
        assert_eq!(*a, *pin_key(b"1234", b"salt", 10));
        assert_ne!(*a, *pin_key(b"1235", b"salt", 10));
        assert_ne!(*a, *pin_key(b"1234", b"tlas", 10));
    }
}
