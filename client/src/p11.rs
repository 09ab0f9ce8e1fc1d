//! A P-256 private key in a PKCS#11 token, usable by `rcgen` and `rustls`.
//!
//! PKCS#11 ECDSA returns the raw `r ‖ s` (PKCS#11 3.0 §2.3.1: "the signature is the
//! concatenation of r and s"), while X.509 and TLS carry the DER `ECDSA-Sig-Value`
//! (RFC 5480 §2.2.3 / RFC 8446 §4.2.3): [`TokenKey::sign`] converts.

use std::sync::{Arc, Mutex};

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use rustls::SignatureScheme;
use sha2::Digest;

/// What can go wrong with a key in a token.
#[derive(Debug, thiserror::Error)]
pub enum P11Error {
    /// A PKCS#11 call failed.
    #[error("the token refused {call}: {source}")]
    Token {
        /// What was asked.
        call: &'static str,
        /// cryptoki's error (names the function and the CKR code).
        source: cryptoki::error::Error,
    },
    /// No private/public key pair with this `CKA_ID`.
    #[error("no EC key pair with CKA_ID {0} on the token; list keys with `kilt-token keys`")]
    NoKey(String),
    /// The key is not a P-256 key, or its public point is unreadable.
    #[error("the key {0} is not an EC P-256 key")]
    NotP256(String),
    /// The token can neither `CKM_ECDSA_SHA256` nor `CKM_ECDSA`.
    #[error("the token offers neither CKM_ECDSA_SHA256 nor CKM_ECDSA")]
    NoEcdsa,
    /// The token answered a signature that is not 64 bytes.
    #[error("the token's signature is {0} bytes, not the 64 of P-256 r‖s")]
    BadSignature(usize),
}

fn token(call: &'static str) -> impl FnOnce(cryptoki::error::Error) -> P11Error {
    move |source| P11Error::Token { call, source }
}

/// How the token is asked to sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// `CKM_ECDSA_SHA256` over the message.
    EcdsaSha256,
    /// SHA-256 here, `CKM_ECDSA` over the digest in the token (SoftHSM2 2.6.1 has no
    /// `CKM_ECDSA_SHA256`).
    Ecdsa,
}

/// A P-256 private key that never leaves the token.
pub struct TokenKey {
    session: Arc<Mutex<Session>>,
    private: ObjectHandle,
    point: Vec<u8>,
    how: How,
    id: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("how", &self.how)
            .finish()
    }
}

/// Unwraps `CKA_EC_POINT`: PKCS#11 §2.3.3 says DER OCTET STRING, some tokens give the raw point.
pub fn ec_point(value: &[u8]) -> Option<Vec<u8>> {
    match value {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 && rest[0] == 0x04 => Some(rest.to_vec()),
        [0x04, ..] if value.len() == 65 => Some(value.to_vec()),
        _ => None,
    }
}

/// DER of the prime256v1 OID, as `CKA_EC_PARAMS` carries it.
pub const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

impl TokenKey {
    /// The key pair with `CKA_ID` = `id`, signing through `session` (logged in as user).
    pub fn find(
        pkcs11: &Pkcs11,
        slot: Slot,
        session: Arc<Mutex<Session>>,
        id: &[u8],
    ) -> Result<TokenKey, P11Error> {
        let label = String::from_utf8_lossy(id).into_owned();
        let mechanisms = pkcs11
            .get_mechanism_list(slot)
            .map_err(token("C_GetMechanismList"))?;
        let how = if mechanisms.contains(&MechanismType::ECDSA_SHA256) {
            How::EcdsaSha256
        } else if mechanisms.contains(&MechanismType::ECDSA) {
            How::Ecdsa
        } else {
            return Err(P11Error::NoEcdsa);
        };
        let s = session.lock().unwrap_or_else(|p| p.into_inner());
        let find = |class| {
            s.find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(token("C_FindObjects"))
        };
        let private = *find(ObjectClass::PRIVATE_KEY)?
            .first()
            .ok_or_else(|| P11Error::NoKey(label.clone()))?;
        let public = *find(ObjectClass::PUBLIC_KEY)?
            .first()
            .ok_or_else(|| P11Error::NoKey(label.clone()))?;
        let attrs = s
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(token("C_GetAttributeValue"))?;
        let mut params = None;
        let mut point = None;
        for attr in attrs {
            match attr {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = ec_point(&p),
                _ => {}
            }
        }
        if params.as_deref() != Some(P256_PARAMS) {
            return Err(P11Error::NotP256(label));
        }
        let point = point.ok_or(P11Error::NotP256(label))?;
        drop(s);
        Ok(TokenKey {
            session,
            private,
            point,
            how,
            id: id.to_vec(),
        })
    }

    /// The uncompressed public point (65 bytes).
    pub fn public_point(&self) -> &[u8] {
        &self.point
    }

    /// The key's `CKA_ID`.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// ECDSA-SHA256 over `message` in the token; the DER `ECDSA-Sig-Value`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, P11Error> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let raw = match self.how {
            How::EcdsaSha256 => session.sign(&Mechanism::EcdsaSha256, self.private, message),
            How::Ecdsa => session.sign(
                &Mechanism::Ecdsa,
                self.private,
                &sha2::Sha256::digest(message),
            ),
        }
        .map_err(token("C_Sign"))?;
        let sig = p256::ecdsa::Signature::from_slice(&raw)
            .map_err(|_| P11Error::BadSignature(raw.len()))?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

impl rcgen::PublicKeyData for TokenKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for TokenKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        TokenKey::sign(self, msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// `rustls`' view of a [`TokenKey`]: TLS client authentication with the key in the token.
#[derive(Debug, Clone)]
pub struct TlsKey(pub Arc<TokenKey>);

impl rustls::sign::SigningKey for TlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for TlsKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0
            .sign(message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// A TLS client configuration that trusts `roots` (DER) and authenticates with `chain` (leaf
/// first, DER) and the token key behind it.
pub fn tls_client_config(
    roots: &[Vec<u8>],
    chain: Vec<Vec<u8>>,
    key: Arc<TokenKey>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(rustls_pki_types::CertificateDer::from(root.clone()))?;
    }
    let certified = rustls::sign::CertifiedKey::new(
        chain
            .into_iter()
            .map(rustls_pki_types::CertificateDer::from)
            .collect(),
        Arc::new(TlsKey(key)),
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_accepts_both_encodings_and_nothing_else() {
        let mut raw = vec![0x04];
        raw.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&raw);
        assert_eq!(ec_point(&raw).as_deref(), Some(raw.as_slice()));
        assert_eq!(ec_point(&wrapped).as_deref(), Some(raw.as_slice()));
        assert_eq!(ec_point(&raw[..64]), None);
        assert_eq!(ec_point(&[0x03, 0x41]), None);
    }
}
