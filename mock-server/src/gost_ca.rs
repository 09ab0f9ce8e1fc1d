//! A certificate authority in the shape of the Kazakh national CA's GOST test PKI (the fixtures'
//! README): certificates signed with GOST 34.310-2004 or GOST R 34.10-2015 (512-bit), under the
//! national CA's OIDs, keys and signatures in its little-endian layout, subjects shaped as its
//! user certificates are (CN, SN, serialNumber = IIN…, C = KZ, GN). Built with RustCrypto's
//! `x509-cert`, the signature made by `kilt-gost`.
//!
//! ```
//! use kilt_mock_server::gost_ca::{GostCa, Person};
//! let ca = GostCa::new(kilt_gost::Profile::Gost2004, "KILT TEST GOST CA", &[0x17; 32], 2026).unwrap();
//! let person = Person {
//!     surname: "ТЕСТОВ".into(),
//!     name: "ТЕСТ".into(),
//!     patronymic: "ТЕСТОВИЧ".into(),
//!     iin: "123456789011".into(),
//! };
//! let user_key = kilt_gost::Profile::Gost2004.public_key(&[0x21; 32]).unwrap();
//! let der = ca.issue(&person, &user_key, 2, 2026, 1).unwrap();
//! assert!(ca.signed(&der));
//! ```

use crate::error::ServerError;
use kilt_gost::Profile;
use std::str::FromStr;
use x509_cert::builder::{Builder, CertificateBuilder, Profile as CertProfile};
use x509_cert::der::asn1::{BitString, Null, ObjectIdentifier as Oid, OctetString};
use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::der::{Any, Decode, Encode};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};
use x509_cert::time::Validity;
use zeroize::Zeroizing;

type Result<T> = std::result::Result<T, ServerError>;

fn gost_error(e: impl std::fmt::Display) -> ServerError {
    ServerError::GostCertificate(e.to_string())
}

/// A person as the national CA names one (the fixtures' `user-2004.der`): CN is surname and
/// name, SN the surname, GN the patronymic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub surname: String,
    pub name: String,
    pub patronymic: String,
    /// The 12-digit individual identification number.
    pub iin: String,
}

/// A GOST CA: its key (big-endian, zeroized when dropped) and its self-signed certificate.
pub struct GostCa {
    profile: Profile,
    key: GostKey,
    name: Name,
    certificate: Vec<u8>,
}

impl std::fmt::Debug for GostCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GostCa")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl GostCa {
    /// A CA named `C=KZ, CN=<common_name>` with the private key `d`, its self-signed
    /// certificate valid for ten years from 1 January of `year`.
    pub fn new(profile: Profile, common_name: &str, d: &[u8], year: u16) -> Result<GostCa> {
        let key = GostKey {
            profile,
            d: Zeroizing::new(d.to_vec()),
            public: profile.public_key(d).map_err(gost_error)?,
        };
        let name = rdns(&[
            (COUNTRY, Value::Printable("KZ")),
            (COMMON_NAME, Value::Utf8(common_name)),
        ])?;
        let spki = spki(profile, &key.public)?;
        let builder = CertificateBuilder::new(
            CertProfile::Root,
            SerialNumber::from(1u32),
            validity(year, 10)?,
            name.clone(),
            spki,
            &key,
        )
        .map_err(gost_error)?;
        let certificate = builder
            .build::<GostSignature>()
            .map_err(gost_error)?
            .to_der()
            .map_err(gost_error)?;
        Ok(GostCa {
            profile,
            key,
            name,
            certificate,
        })
    }

    /// The CA's certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Issues a user certificate for the public key `public` (the certificates' little-endian
    /// x ‖ y), valid `years` from 1 January of `year`.
    pub fn issue(
        &self,
        person: &Person,
        public: &[u8],
        serial: u64,
        year: u16,
        years: u16,
    ) -> Result<Vec<u8>> {
        let common_name = format!("{} {}", person.surname, person.name);
        let iin = format!("IIN{}", person.iin);
        let subject = rdns(&[
            (COMMON_NAME, Value::Utf8(&common_name)),
            (SURNAME, Value::Utf8(&person.surname)),
            (SERIAL_NUMBER, Value::Printable(&iin)),
            (COUNTRY, Value::Printable("KZ")),
            (GIVEN_NAME, Value::Utf8(&person.patronymic)),
        ])?;
        let builder = CertificateBuilder::new(
            CertProfile::Leaf {
                issuer: self.name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            SerialNumber::from(serial),
            validity(year, years)?,
            subject,
            spki(self.profile, public)?,
            &self.key,
        )
        .map_err(gost_error)?;
        builder
            .build::<GostSignature>()
            .map_err(gost_error)?
            .to_der()
            .map_err(gost_error)
    }

    /// Whether `certificate` (DER) carries this CA's signature over its to-be-signed part.
    pub fn signed(&self, certificate: &[u8]) -> bool {
        let Ok(c) = x509_cert::Certificate::from_der(certificate) else {
            return false;
        };
        let (Ok(tbs), Some(sig)) = (c.tbs_certificate.to_der(), c.signature.as_bytes()) else {
            return false;
        };
        self.profile.verify(&self.key.public, &tbs, sig)
    }
}

const COMMON_NAME: &str = "2.5.4.3";
const SURNAME: &str = "2.5.4.4";
const SERIAL_NUMBER: &str = "2.5.4.5";
const COUNTRY: &str = "2.5.4.6";
const GIVEN_NAME: &str = "2.5.4.42";

/// How an attribute value is written: PrintableString for the country and the IIN (RFC 5280
/// Appendix A), UTF8String for names in Cyrillic — as the national CA writes them.
enum Value<'a> {
    Printable(&'a str),
    Utf8(&'a str),
}

/// A name of one attribute per RDN, in the order given.
fn rdns(attributes: &[(&str, Value)]) -> Result<Name> {
    let mut seq = vec![];
    for (oid, value) in attributes {
        let value = match value {
            Value::Printable(v) => {
                Any::encode_from(&PrintableStringRef::new(v).map_err(gost_error)?)
            }
            Value::Utf8(v) => Any::encode_from(&Utf8StringRef::new(v).map_err(gost_error)?),
        }
        .map_err(gost_error)?;
        let atv = x509_cert::attr::AttributeTypeAndValue {
            oid: Oid::from_str(oid).map_err(gost_error)?,
            value,
        };
        seq.push(RelativeDistinguishedName::from(
            x509_cert::der::asn1::SetOfVec::try_from(vec![atv]).map_err(gost_error)?,
        ));
    }
    Ok(RdnSequence(seq))
}

fn validity(year: u16, years: u16) -> Result<Validity> {
    let at = |y: u16| {
        x509_cert::der::DateTime::new(y, 1, 1, 0, 0, 0)
            .map_err(gost_error)
            .and_then(|t| {
                // RFC 5280 §4.1.2.5: UTCTime through 2049 (the builder keeps it so).
                x509_cert::der::asn1::UtcTime::from_date_time(t)
                    .map(x509_cert::time::Time::from)
                    .map_err(gost_error)
            })
    };
    Ok(Validity {
        not_before: at(year)?,
        not_after: at(year + years)?,
    })
}

/// The public key as the national CA's certificates hold it: its key OID with {curve, hash}
/// parameters, the little-endian x ‖ y in an OCTET STRING.
fn spki(profile: Profile, public: &[u8]) -> Result<SubjectPublicKeyInfoOwned> {
    let (key, curve, hash) = profile.key_oids();
    let oid = |o: &str| Oid::from_str(o).map_err(gost_error);
    let parameters = Any::encode_from(&vec![oid(curve)?, oid(hash)?]).map_err(gost_error)?;
    let inner = OctetString::new(public)
        .and_then(|o| o.to_der())
        .map_err(gost_error)?;
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oid(key)?,
            parameters: Some(parameters),
        },
        subject_public_key: BitString::from_bytes(&inner).map_err(gost_error)?,
    })
}

/// The CA's signing key, for `x509-cert`'s builder.
struct GostKey {
    profile: Profile,
    d: Zeroizing<Vec<u8>>,
    /// Little-endian x ‖ y.
    public: Vec<u8>,
}

/// The public half, for the builder's authority key identifier.
#[derive(Clone)]
struct GostPublic {
    profile: Profile,
    value: Vec<u8>,
}

impl EncodePublicKey for GostPublic {
    fn to_public_key_der(&self) -> x509_cert::spki::Result<x509_cert::der::Document> {
        let spki =
            spki(self.profile, &self.value).map_err(|_| x509_cert::spki::Error::KeyMalformed)?;
        Ok(x509_cert::der::Document::encode_msg(&spki)?)
    }
}

impl signature::Keypair for GostKey {
    type VerifyingKey = GostPublic;
    fn verifying_key(&self) -> GostPublic {
        GostPublic {
            profile: self.profile,
            value: self.public.clone(),
        }
    }
}

impl DynSignatureAlgorithmIdentifier for GostKey {
    /// The signature OID with NULL parameters, as the national CA writes it.
    fn signature_algorithm_identifier(&self) -> x509_cert::spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: Oid::from_str(self.profile.signature_oid())
                .map_err(|_| x509_cert::spki::Error::KeyMalformed)?,
            parameters: Some(Any::encode_from(&Null)?),
        })
    }
}

/// A signature in the certificates' layout (little-endian r ‖ s).
struct GostSignature(Vec<u8>);

impl SignatureBitStringEncoding for GostSignature {
    fn to_bitstring(&self) -> x509_cert::der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Signer<GostSignature> for GostKey {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<GostSignature, signature::Error> {
        // A random source that fails must not leave k to a buffer's leftovers: no signature.
        let mut failed = false;
        let sig = self.profile.sign(&self.d, msg, &mut |b| {
            failed |= aws_lc_rs::rand::fill(b).is_err();
        });
        match sig {
            Ok(s) if !failed => Ok(GostSignature(s)),
            _ => Err(signature::Error::new()),
        }
    }
}
