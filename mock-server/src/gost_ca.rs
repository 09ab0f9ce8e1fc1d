//! A certificate authority in the shape of the Kazakh national CA's GOST test PKI (the fixtures'
//! README): certificates signed with GOST 34.310-2004 or GOST R 34.10-2015 (512-bit), under the
//! national CA's OIDs, keys and signatures in its little-endian layout, subjects shaped as its
//! user certificates are (CN, SN, serialNumber = IIN…, C = KZ, GN). Built with RustCrypto's
//! `x509-cert`, the signature made by `kilt-gost`. [`GostKey`] is a GOST key in software that
//! signs as the CA does and makes PKCS#10 requests — what a test's customer holds.
//!
//! ```
//! use kilt_mock_server::gost_ca::{GostCa, GostCertSpec, Person, Subject};
//! use time::{Duration, OffsetDateTime};
//! let from = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01
//! let to = from + Duration::days(3653);
//! let ca = GostCa::new(kilt_gost::Profile::Gost2004, "KILT TEST GOST CA", &[0x17; 32], from, to).unwrap();
//! let person = Person {
//!     surname: "ТЕСТОВ".into(),
//!     name: "ТЕСТ".into(),
//!     patronymic: "ТЕСТОВИЧ".into(),
//!     iin: "123456789011".into(),
//! };
//! let user_key = kilt_gost::Profile::Gost2004.public_key(&[0x21; 32]).unwrap();
//! let der = ca.issue(&GostCertSpec {
//!     subject: Subject::Person(&person),
//!     public: &user_key,
//!     serial: &[2],
//!     not_before: from,
//!     not_after: from + Duration::days(365),
//! }).unwrap();
//! assert!(ca.signed(&der));
//! ```

use crate::error::ServerError;
use kilt_gost::Profile;
use std::path::Path;
use std::str::FromStr;
use time::OffsetDateTime;
use x509_cert::builder::{Builder, CertificateBuilder, Profile as CertProfile, RequestBuilder};
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

/// How long a CA made by [`GostCa::load_or_create`] is valid (like national roots).
pub const CA_VALIDITY_YEARS: i64 = 20;

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

/// Whom a certificate names.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    /// A person, in the national CA's shape.
    Person(&'a Person),
    /// `CN=<name>, C=KZ`: a bank's subscriber ("9418_Абонент"), as the P-256 bank names one.
    Named(&'a str),
}

/// What goes into one user certificate.
#[derive(Clone, Copy, Debug)]
pub struct GostCertSpec<'a> {
    pub subject: Subject<'a>,
    /// The certified key as certificates hold it: little-endian x ‖ y.
    pub public: &'a [u8],
    /// The serial number's bytes (big-endian, positive).
    pub serial: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// A GOST CA: its key (big-endian, zeroized when dropped) and its self-signed certificate.
pub struct GostCa {
    key: GostKey,
    name: Name,
    not_after: OffsetDateTime,
    certificate: Vec<u8>,
}

impl std::fmt::Debug for GostCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GostCa")
            .field("profile", &self.key.profile)
            .finish_non_exhaustive()
    }
}

/// The file names of a profile's CA in a data directory.
fn ca_files(dir: &Path, profile: Profile) -> (std::path::PathBuf, std::path::PathBuf) {
    let stem = match profile {
        Profile::Gost2004 => "gost2004-ca",
        Profile::Gost2015_512 => "gost2015-512-ca",
    };
    (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    )
}

/// The PEM label of a CA key file: the big-endian private integer d, nothing else.
const KEY_LABEL: &str = "GOST R 34.10 PRIVATE KEY";

impl GostCa {
    /// A CA named `C=KZ, CN=<common_name>` with the private key `d`, its self-signed
    /// certificate valid from `not_before` to `not_after`.
    pub fn new(
        profile: Profile,
        common_name: &str,
        d: &[u8],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<GostCa> {
        GostCa::self_signed(
            GostKey::new(profile, d)?,
            common_name,
            not_before,
            not_after,
        )
    }

    /// A CA of `key` named `C=KZ, CN=<common_name>`, its certificate signed by itself.
    fn self_signed(
        key: GostKey,
        common_name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<GostCa> {
        let name = rdns(&[
            (COUNTRY, Value::Printable("KZ")),
            (COMMON_NAME, Value::Utf8(common_name)),
        ])?;
        let spki = spki(key.profile, &key.public)?;
        let sign = |tbs: &[u8]| key.sign(tbs);
        let signer = key.signer(&sign);
        let builder = CertificateBuilder::new(
            CertProfile::Root,
            SerialNumber::from(1u32),
            validity(not_before, not_after)?,
            name.clone(),
            spki,
            &signer,
        )
        .map_err(gost_error)?;
        let certificate = builder
            .build::<GostSignature>()
            .map_err(gost_error)?
            .to_der()
            .map_err(gost_error)?;
        Ok(GostCa {
            key,
            name,
            not_after,
            certificate,
        })
    }

    /// Reads the profile's CA from `dir`, or makes one (a fresh key, valid
    /// [`CA_VALIDITY_YEARS`] from `now`) and writes it there, key file readable by the owner
    /// only. A key that does not match the certificate beside it is refused, not replaced.
    pub fn load_or_create(
        dir: &Path,
        profile: Profile,
        common_name: &str,
        now: OffsetDateTime,
    ) -> Result<GostCa> {
        let (crt, key_file) = ca_files(dir, profile);
        if !key_file.exists() {
            let ca = GostCa::self_signed(
                GostKey::random(profile)?,
                common_name,
                now - time::Duration::minutes(5),
                now + time::Duration::days(CA_VALIDITY_YEARS * 365),
            )?;
            std::fs::create_dir_all(dir).map_err(|e| ServerError::io(dir, e))?;
            // Certificate first, the key (the marker) last: a crash half-way makes a new CA.
            crate::pki::write_atomic(&crt, crate::pki::to_pem(&ca.certificate).as_bytes())?;
            let pem = Zeroizing::new(crate::pki::pem_of(KEY_LABEL, &ca.key.d));
            crate::pki::write_atomic(&key_file, pem.as_bytes())?;
            crate::pki::restrict(std::slice::from_ref(&key_file));
            return Ok(ca);
        }
        let read = |path: &Path| {
            let text = std::fs::read_to_string(path).map_err(|e| ServerError::io(path, e))?;
            ::pem::parse(text.trim())
                .map(|p| Zeroizing::new(p.contents().to_vec()))
                .map_err(|e| gost_error(format!("{}: not PEM: {e}", path.display())))
        };
        let d = read(&key_file)?;
        let certificate = read(&crt)?.to_vec();
        let parsed = x509_cert::Certificate::from_der(&certificate)
            .map_err(|e| gost_error(format!("{}: {e}", crt.display())))?;
        let key = GostKey::new(profile, &d)?;
        let not_after = parsed.tbs_certificate.validity.not_after.to_unix_duration();
        let not_after = OffsetDateTime::UNIX_EPOCH + not_after;
        let ca = GostCa {
            key,
            name: parsed.tbs_certificate.subject.clone(),
            not_after,
            certificate,
        };
        if parsed.tbs_certificate.subject_public_key_info != spki(profile, &ca.key.public)? {
            return Err(gost_error(format!(
                "{} does not certify the key in {}; remove both to make a new CA",
                crt.display(),
                key_file.display()
            )));
        }
        Ok(ca)
    }

    /// The CA's profile.
    pub fn profile(&self) -> Profile {
        self.key.profile
    }

    /// When the CA's certificate ends: no certificate it issues may outlive it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether `dir` holds a CA of `profile` (its key file).
    pub fn present(dir: &Path, profile: Profile) -> bool {
        ca_files(dir, profile).1.exists()
    }

    /// The CA's certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Issues one user certificate (DER): key usage digitalSignature and nonRepudiation, as
    /// the national CA's signing certificates have, subject and authority key identifiers.
    pub fn issue(&self, spec: &GostCertSpec<'_>) -> Result<Vec<u8>> {
        let subject = subject(&spec.subject)?;
        let sign = |tbs: &[u8]| self.key.sign(tbs);
        let signer = self.key.signer(&sign);
        let builder = CertificateBuilder::new(
            CertProfile::Leaf {
                issuer: self.name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            SerialNumber::new(spec.serial).map_err(gost_error)?,
            validity(spec.not_before, spec.not_after)?,
            subject,
            spki(self.key.profile, spec.public)?,
            &signer,
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
        self.key.profile.verify(&self.key.public, &tbs, sig)
    }
}

fn subject(subject: &Subject<'_>) -> Result<Name> {
    match subject {
        Subject::Person(person) => {
            let common_name = format!("{} {}", person.surname, person.name);
            let iin = format!("IIN{}", person.iin);
            rdns(&[
                (COMMON_NAME, Value::Utf8(&common_name)),
                (SURNAME, Value::Utf8(&person.surname)),
                (SERIAL_NUMBER, Value::Printable(&iin)),
                (COUNTRY, Value::Printable("KZ")),
                (GIVEN_NAME, Value::Utf8(&person.patronymic)),
            ])
        }
        Subject::Named(name) => rdns(&[
            (COUNTRY, Value::Printable("KZ")),
            (COMMON_NAME, Value::Utf8(name)),
        ]),
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

fn validity(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<Validity> {
    // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after (x509-cert chooses so).
    let at = |t: OffsetDateTime| {
        x509_cert::time::Time::try_from(std::time::SystemTime::from(t)).map_err(gost_error)
    };
    Ok(Validity {
        not_before: at(not_before)?,
        not_after: at(not_after)?,
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

/// A GOST key in software (big-endian d, zeroized when dropped): it signs as the national CA
/// does (little-endian r ‖ s over the profile's hash) and makes PKCS#10 requests.
pub struct GostKey {
    profile: Profile,
    d: Zeroizing<Vec<u8>>,
    /// Little-endian x ‖ y.
    public: Vec<u8>,
}

impl std::fmt::Debug for GostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GostKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl GostKey {
    /// The key with private integer `d` (big-endian, the curve's length, 1 ≤ d < q).
    pub fn new(profile: Profile, d: &[u8]) -> Result<GostKey> {
        Ok(GostKey {
            profile,
            d: Zeroizing::new(d.to_vec()),
            public: profile.public_key(d).map_err(gost_error)?,
        })
    }

    /// A fresh key from the system's random source.
    pub fn random(profile: Profile) -> Result<GostKey> {
        let mut d = Zeroizing::new(vec![0u8; profile.curve().int_len()]);
        // d ≥ q happens with probability < 2^-127 on these curves: try again, never reduce
        // (a reduction would bias d).
        for _ in 0..64 {
            aws_lc_rs::rand::fill(&mut d).map_err(|_| gost_error("the random source failed"))?;
            if let Ok(key) = GostKey::new(profile, &d) {
                return Ok(key);
            }
        }
        Err(gost_error(
            "no private key in range: the random source is broken",
        ))
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The public key as certificates hold it: little-endian x ‖ y.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// Signs `message` as the national CA's certificates are signed: little-endian r ‖ s.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        // A random source that fails must not leave k to a buffer's leftovers: no signature.
        let mut failed = false;
        let sig = self.profile.sign(&self.d, message, &mut |b| {
            failed |= aws_lc_rs::rand::fill(b).is_err();
        });
        match sig {
            Ok(s) if !failed => Ok(s),
            Ok(_) => Err(gost_error("the random source failed")),
            Err(e) => Err(gost_error(e)),
        }
    }

    /// A PKCS#10 request (DER) for this key naming `subject`, signed by it under the
    /// national CA's OIDs.
    pub fn request(&self, subject: &Subject<'_>) -> Result<Vec<u8>> {
        request(self.profile, &self.public, subject, &|tbs| self.sign(tbs))
    }

    fn signer<'a>(&'a self, sign: &'a SignFn<'a>) -> RemoteSigner<'a> {
        RemoteSigner {
            profile: self.profile,
            public: &self.public,
            sign,
        }
    }
}

/// What signs for a [`RemoteSigner`]: the bytes to be signed in, the certificates' layout
/// (little-endian r ‖ s) out.
pub type SignFn<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>> + 'a;

/// A PKCS#10 request (DER) for the GOST key `public` (little-endian x ‖ y) naming `subject`,
/// its signature made by `sign` wherever the private key lives — in software, or in a token as
/// `CKM_GOSTR3410_WITH_GOSTR3411` whose output, reversed, is the certificates' layout.
pub fn request(
    profile: Profile,
    public: &[u8],
    subject: &Subject<'_>,
    sign: &SignFn<'_>,
) -> Result<Vec<u8>> {
    let signer = RemoteSigner {
        profile,
        public,
        sign,
    };
    let builder = RequestBuilder::new(self::subject(subject)?, &signer).map_err(gost_error)?;
    builder
        .build::<GostSignature>()
        .map_err(gost_error)?
        .to_der()
        .map_err(gost_error)
}

/// A GOST key for `x509-cert`'s builders: its public half and a signing function.
struct RemoteSigner<'a> {
    profile: Profile,
    public: &'a [u8],
    sign: &'a SignFn<'a>,
}

/// The public half, for the builder's key identifiers.
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

impl signature::Keypair for RemoteSigner<'_> {
    type VerifyingKey = GostPublic;
    fn verifying_key(&self) -> GostPublic {
        GostPublic {
            profile: self.profile,
            value: self.public.to_vec(),
        }
    }
}

impl DynSignatureAlgorithmIdentifier for RemoteSigner<'_> {
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

impl signature::Signer<GostSignature> for RemoteSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<GostSignature, signature::Error> {
        (self.sign)(msg)
            .map(GostSignature)
            .map_err(|_| signature::Error::new())
    }
}
