//! Checks of an issued certificate before it goes onto the token (DESIGN.md Flow 1 step 6,
//! Flow 2 step 4): its key is the new key in the token, and its path reaches the root the user
//! trusts (RFC 5280 §6, by rustls-webpki).

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::error::{ClientError, Result};
use crate::token::CertInfo;

/// What the certificate must be good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// TLS client authentication (EKU id-kp-clientAuth).
    ClientAuth,
    /// Signing documents: if an EKU is present it must allow e-mail protection (the S/MIME
    /// signing purpose the CA and bank put next to RFC 9336's documentSigning).
    Signing,
}

/// id-kp-emailProtection, 1.3.6.1.5.5.7.3.4, as DER content octets.
const EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

/// PEM to DER.
pub fn pem_der(text: &str) -> Result<Vec<u8>> {
    pem::parse(text)
        .map(|p| p.contents().to_vec())
        .map_err(|e| ClientError::BadCertificate(format!("not PEM: {e}")))
}

/// Checks `leaf` (DER) against the new key's `point`, the chain (PEM, issuing CA first) and
/// `root` (DER, the one the user trusts); returns the parsed certificate.
pub fn issued(
    leaf: &[u8],
    chain: &[String],
    root: &[u8],
    point: &[u8],
    usage: Usage,
) -> Result<CertInfo> {
    let info = CertInfo::parse(leaf)
        .ok_or_else(|| ClientError::BadCertificate("it does not parse as X.509".into()))?;
    if info.point != point {
        return Err(ClientError::BadCertificate(
            "it certifies another key than the new key in the token".into(),
        ));
    }
    let intermediates = chain
        .iter()
        .map(|p| pem_der(p).map(CertificateDer::from))
        .collect::<Result<Vec<_>>>()?;
    let root = CertificateDer::from(root.to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&root)
        .map_err(|e| ClientError::BadCertificate(format!("the trusted root: {e:?}")))?;
    let leaf_der = CertificateDer::from(leaf.to_vec());
    let ee = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|e| ClientError::BadCertificate(format!("{e:?}")))?;
    let eku = match usage {
        Usage::ClientAuth => webpki::KeyUsage::client_auth(),
        Usage::Signing => webpki::KeyUsage::required_if_present(EMAIL_PROTECTION),
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &intermediates,
        UnixTime::now(),
        eku,
        None,
        None,
    )
    .map_err(|e| {
        ClientError::BadCertificate(format!(
            "its path to the trusted root does not verify ({e:?})"
        ))
    })?;
    Ok(info)
}
