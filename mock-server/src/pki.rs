//! The CA's own keys and certificates, and issuing from them (RFC 5280 profiles).
//!
//! On first start [`Pki::load_or_create`] makes a root CA, an issuing CA signed by it, and the
//! server's TLS certificate, all EC P-256, and writes them as PEM files in the data directory;
//! later starts read them back, so certificates issued before a restart still chain.

use std::path::{Path, PathBuf};

use kilt_protocol::ca::CertKind;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, RevocationReason,
    RevokedCertParams, SerialNumber, SignatureAlgorithm,
};
use time::{Duration, OffsetDateTime};

use crate::error::{Result, ServerError};

/// Root CA validity (like national roots: two decades).
pub const ROOT_VALIDITY_DAYS: i64 = 20 * 365;
/// Issuing CA validity.
pub const ISSUING_VALIDITY_DAYS: i64 = 10 * 365;
/// The server's TLS certificate validity.
pub const TLS_VALIDITY_DAYS: i64 = 5 * 365;
/// How long a CRL is valid for (`nextUpdate` − `thisUpdate`).
pub const CRL_VALIDITY_HOURS: i64 = 24;
/// OID of the subject's serialNumber attribute (X.520), where Kazakh CAs put `IIN<12 digits>`.
pub const OID_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
/// id-kp-documentSigning (RFC 9336) for the SIGN certificate.
pub const OID_KP_DOCUMENT_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 36];

/// DER to PEM with the given label, LF line endings.
pub fn pem_of(label: &str, der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new(label, der),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// Certificates to PEM, for answers.
pub fn to_pem(der: &[u8]) -> String {
    pem_of("CERTIFICATE", der)
}

const ORG: &str = "kilt test PKI - not for production";

/// The common names of a PKI's certificates.
#[derive(Clone, Copy, Debug)]
pub struct PkiNames {
    /// The root CA.
    pub root: &'static str,
    /// The issuing CA.
    pub issuing: &'static str,
    /// The server's TLS certificate.
    pub tls: &'static str,
}

impl PkiNames {
    /// The mock CA's names.
    pub const CA: PkiNames = PkiNames {
        root: "kilt Корневой УЦ (тестовый)",
        issuing: "kilt Удостоверяющий центр КЦМР-модель (тестовый)",
        tls: "kilt-ca localhost",
    };
}

/// A P-256 public key as a CSR carries it (the uncompressed point).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P256PublicKey(pub Vec<u8>);

impl PublicKeyData for P256PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// The key algorithms the mock servers certify.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// EC P-256 with ECDSA-SHA256: the CA's only one (Flow 2 logs in by TLS, and rustls has no
    /// GOST), the bank's default.
    #[default]
    P256,
    /// GOST 34.310-2004 (CryptoPro-A, GOST 34.311-95 with the Test S-box), the national CA's
    /// 2004 profile.
    Gost2004,
    /// GOST R 34.10-2015 with 512-bit keys (tc26-512-A, Streebog-512).
    Gost2015_512,
}

impl Algorithm {
    /// Every algorithm, in the order the command lines list them.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::P256,
        Algorithm::Gost2004,
        Algorithm::Gost2015_512,
    ];

    /// The name command lines take (`--algorithm`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::P256 => "p256",
            Algorithm::Gost2004 => "gost2004",
            Algorithm::Gost2015_512 => "gost2015-512",
        }
    }

    /// What a person reads.
    pub fn describe(self) -> &'static str {
        match self {
            Algorithm::P256 => "EC P-256 (prime256v1)",
            Algorithm::Gost2004 => "GOST 34.310-2004",
            Algorithm::Gost2015_512 => "GOST R 34.10-2015 (512-bit)",
        }
    }

    /// The GOST profile, for the GOST algorithms.
    pub fn gost(self) -> Option<kilt_gost::Profile> {
        match self {
            Algorithm::P256 => None,
            Algorithm::Gost2004 => Some(kilt_gost::Profile::Gost2004),
            Algorithm::Gost2015_512 => Some(kilt_gost::Profile::Gost2015_512),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Algorithm, String> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                format!("unknown algorithm {s:?}; choose p256, gost2004 or gost2015-512")
            })
    }
}

/// A certified (or to be certified) public key, as a CSR or certificate carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserKey {
    /// The uncompressed point.
    P256(P256PublicKey),
    /// Little-endian x ‖ y, as the national CA's certificates hold it.
    Gost(kilt_gost::Profile, Vec<u8>),
}

impl UserKey {
    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            UserKey::P256(_) => Algorithm::P256,
            UserKey::Gost(kilt_gost::Profile::Gost2004, _) => Algorithm::Gost2004,
            UserKey::Gost(kilt_gost::Profile::Gost2015_512, _) => Algorithm::Gost2015_512,
        }
    }

    /// The key's bytes (the point, or x ‖ y): what tells two keys apart.
    pub fn bytes(&self) -> &[u8] {
        match self {
            UserKey::P256(k) => &k.0,
            UserKey::Gost(_, k) => k,
        }
    }

    /// Reads a DER SubjectPublicKeyInfo: P-256 under id-ecPublicKey (RFC 5480), or GOST under
    /// the national CA's key OIDs with its curve (the fixtures' README). Anything else is
    /// `Err` with what was found, for the person reading the refusal.
    pub fn from_spki(der: &[u8]) -> std::result::Result<UserKey, String> {
        use x509_cert::der::Decode;
        use x509_cert::der::asn1::{ObjectIdentifier, OctetStringRef};
        let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| format!("unreadable ({e})"))?;
        use x509_cert::der::oid::db::rfc5912::{ID_EC_PUBLIC_KEY, SECP_256_R_1};
        let algorithm = spki.algorithm.oid;
        let params: Vec<ObjectIdentifier> = match &spki.algorithm.parameters {
            Some(p) => match p.decode_as::<ObjectIdentifier>() {
                Ok(oid) => vec![oid],
                Err(_) => p.decode_as().unwrap_or_default(),
            },
            None => vec![],
        };
        let first = params.first().copied();
        let key = spki.subject_public_key.raw_bytes();
        if algorithm == ID_EC_PUBLIC_KEY && first == Some(SECP_256_R_1) && key.len() == 65 {
            return Ok(UserKey::P256(P256PublicKey(key.to_vec())));
        }
        let is = |oid: Option<ObjectIdentifier>, dotted: &str| {
            oid.is_some_and(|o| ObjectIdentifier::new(dotted).ok() == Some(o))
        };
        for profile in [
            kilt_gost::Profile::Gost2004,
            kilt_gost::Profile::Gost2015_512,
        ] {
            let (key_oid, curve, _) = profile.key_oids();
            if is(Some(algorithm), key_oid) && is(first, curve) {
                // The point is an OCTET STRING inside the BIT STRING (RFC 4491 §2.3.2's shape).
                let n = 2 * profile.curve().int_len();
                let value = OctetStringRef::from_der(key)
                    .ok()
                    .filter(|v| v.as_bytes().len() == n)
                    .ok_or_else(|| {
                        format!("{key_oid} key that is not an OCTET STRING of {n} bytes")
                    })?;
                return Ok(UserKey::Gost(profile, value.as_bytes().to_vec()));
            }
        }
        Err(match first {
            Some(curve) => format!("{algorithm} / {curve}"),
            None => algorithm.to_string(),
        })
    }

    /// The key of a certificate (DER).
    pub fn of_certificate(der: &[u8]) -> std::result::Result<UserKey, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("the certificate does not parse: {e}"))?;
        UserKey::from_spki(cert.public_key().raw)
    }

    /// Whether `signature` signs `message` under this key: for P-256 an ECDSA-SHA256 signature,
    /// DER; for GOST the certificates' layout (little-endian r ‖ s over the profile's hash,
    /// i.e. PKCS#11's `C_Sign` output reversed).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            UserKey::P256(k) => aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
                &k.0,
            )
            .verify(message, signature)
            .is_ok(),
            UserKey::Gost(profile, k) => profile.verify(k, message, signature),
        }
    }
}

/// What goes into one user certificate.
#[derive(Debug)]
pub struct UserCertSpec<'a> {
    /// AUTH or SIGN: decides key usage and extended key usage.
    pub kind: CertKind,
    /// CN.
    pub full_name: &'a str,
    /// 12-digit IIN (subject serialNumber `IIN…`), for people; none for a bank's subscriber.
    pub iin: Option<&'a str>,
    /// The certified key.
    pub key: &'a P256PublicKey,
    /// Serial number bytes (positive, 16 bytes).
    pub serial: [u8; 16],
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// CRL distribution point URL.
    pub crl_url: &'a str,
}

/// One revoked certificate for the CRL.
#[derive(Clone, Debug)]
pub struct Revoked {
    /// Serial bytes.
    pub serial: Vec<u8>,
    /// When the CA revoked it.
    pub at: OffsetDateTime,
    /// RFC 5280 §5.3.1 reason.
    pub reason: RevocationReason,
}

/// The CA's keys and certificates.
pub struct Pki {
    root_pem: String,
    root_der: Vec<u8>,
    issuing_pem: String,
    issuing_der: Vec<u8>,
    issuing_key: KeyPair,
    issuing_not_after: OffsetDateTime,
    tls_cert_der: Vec<u8>,
    tls_key_der: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("issuing_not_after", &self.issuing_not_after)
            .finish_non_exhaustive()
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString("KZ".try_into().expect("ASCII")),
    );
    dn.push(DnType::OrganizationName, ORG);
    dn.push(DnType::CommonName, cn);
    dn
}

/// A fresh positive serial of 16 random bytes (RFC 5280 §4.1.2.2: positive, ≤ 20 octets; the
/// CA/B baseline asks for ≥ 64 bits of randomness).
pub fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).expect("the system RNG works");
    // Top bit clear keeps the INTEGER positive without a padding byte; never zero-leading,
    // so every serial is exactly 16 bytes.
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

fn files(dir: &Path) -> [PathBuf; 6] {
    [
        "root.crt",
        "root.key",
        "issuing.crt",
        "issuing.key",
        "tls.crt",
        "tls.key",
    ]
    .map(|f| dir.join(f))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| ServerError::io(path, e))
}

/// Writes through a temporary file and a rename, so a crash leaves either the old or the new
/// file, never half of one.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| ServerError::io(&tmp, e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| ServerError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ServerError::io(path, e))
}

fn pem_der(pem: &str) -> Result<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| ServerError::Tls(format!("bad PEM in the data directory: {e}")))?;
    Ok(pem.contents)
}

impl Pki {
    /// Reads the PKI from `dir`, or creates and writes it there when `dir` has none.
    pub fn load_or_create(dir: &Path, now: OffsetDateTime, names: PkiNames) -> Result<Pki> {
        let [
            root_crt,
            root_key,
            issuing_crt,
            issuing_key,
            tls_crt,
            tls_key,
        ] = files(dir);
        if !issuing_key.exists() {
            Self::create(dir, now, names)?;
        }
        let _ = root_key; // kept on disk for re-signing the issuing CA; not needed to serve
        let issuing_pem = read(&issuing_crt)?;
        let issuing_der = pem_der(&issuing_pem)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&issuing_der)
            .map_err(|e| ServerError::Tls(format!("issuing.crt does not parse: {e}")))?;
        let issuing_not_after = parsed.validity().not_after.to_datetime();
        let root_pem = read(&root_crt)?;
        let tls_key_pem = read(&tls_key)?;
        Ok(Pki {
            root_der: pem_der(&root_pem)?,
            root_pem,
            issuing_key: KeyPair::from_pem(&read(&issuing_key)?)?,
            issuing_pem,
            issuing_der,
            issuing_not_after,
            tls_cert_der: pem_der(&read(&tls_crt)?)?,
            tls_key_der: pem_der(&tls_key_pem)?,
        })
    }

    fn create(dir: &Path, now: OffsetDateTime, names: PkiNames) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ServerError::io(dir, e))?;
        let [
            root_crt,
            root_key_path,
            issuing_crt,
            issuing_key_path,
            tls_crt,
            tls_key_path,
        ] = files(dir);

        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut root = CertificateParams::default();
        root.distinguished_name = dn(names.root);
        root.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        root.not_before = now - Duration::minutes(5);
        root.not_after = now + Duration::days(ROOT_VALIDITY_DAYS);
        root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.key_identifier_method = KeyIdMethod::Sha256;
        let root_cert = root.self_signed(&root_key)?;
        let root_issuer = Issuer::new(root, &root_key);

        let issuing_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut issuing = CertificateParams::default();
        issuing.distinguished_name = dn(names.issuing);
        issuing.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        issuing.not_before = now - Duration::minutes(5);
        issuing.not_after = now + Duration::days(ISSUING_VALIDITY_DAYS);
        issuing.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        issuing.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        issuing.use_authority_key_identifier_extension = true;
        let issuing_cert = issuing.signed_by(&issuing_key, &root_issuer)?;

        let tls_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut tls = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        tls.distinguished_name = dn(names.tls);
        tls.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        tls.not_before = now - Duration::minutes(5);
        tls.not_after = now + Duration::days(TLS_VALIDITY_DAYS);
        tls.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        tls.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        tls.use_authority_key_identifier_extension = true;
        let issuing_issuer = Issuer::new(issuing, &issuing_key);
        let tls_cert = tls.signed_by(&tls_key, &issuing_issuer)?;

        // Keys first, the marker file (issuing.key) last: a crash half-way re-creates all.
        write_atomic(&root_key_path, root_key.serialize_pem().as_bytes())?;
        write_atomic(&root_crt, root_cert.pem().as_bytes())?;
        write_atomic(&issuing_crt, issuing_cert.pem().as_bytes())?;
        write_atomic(&tls_key_path, tls_key.serialize_pem().as_bytes())?;
        write_atomic(&tls_crt, tls_cert.pem().as_bytes())?;
        write_atomic(&issuing_key_path, issuing_key.serialize_pem().as_bytes())?;
        restrict(&[root_key_path, tls_key_path, issuing_key_path]);
        Ok(())
    }

    /// The root certificate, PEM: what clients trust (`kilt-ca export-root`).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The issuing CA certificate, PEM.
    pub fn issuing_pem(&self) -> &str {
        &self.issuing_pem
    }

    /// The issuing CA certificate, DER.
    pub fn issuing_der(&self) -> &[u8] {
        &self.issuing_der
    }

    /// When the issuing CA's certificate ends: no user certificate may outlive it.
    pub fn issuing_not_after(&self) -> OffsetDateTime {
        self.issuing_not_after
    }

    /// The server's TLS certificate chain (leaf, issuing CA) and PKCS#8 key, DER.
    pub fn tls_identity(&self) -> (Vec<Vec<u8>>, Vec<u8>) {
        (
            vec![self.tls_cert_der.clone(), self.issuing_der.clone()],
            self.tls_key_der.clone(),
        )
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>> {
        Ok(Issuer::from_ca_cert_der(
            &self.issuing_der.as_slice().into(),
            &self.issuing_key,
        )?)
    }

    /// Issues one user certificate, DER. The profile follows RFC 5280: AKI/SKI, key usage
    /// critical, EKU by kind (clientAuth for AUTH; documentSigning and emailProtection for
    /// SIGN), the CRL distribution point, `CA:FALSE`.
    pub fn issue(&self, spec: &UserCertSpec<'_>) -> Result<Vec<u8>> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CountryName,
            DnValue::PrintableString("KZ".try_into().expect("ASCII")),
        );
        name.push(DnType::CommonName, spec.full_name);
        if let Some(iin) = spec.iin {
            let iin = format!("IIN{iin}");
            let iin = DnValue::PrintableString(
                iin.as_str()
                    .try_into()
                    .map_err(|_| ServerError::InvalidInput("IIN must be digits".into()))?,
            );
            name.push(DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()), iin);
        }
        params.distinguished_name = name;
        params.serial_number = Some(SerialNumber::from_slice(&spec.serial));
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![spec.crl_url.to_owned()],
        }];
        match spec.kind {
            CertKind::Auth => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyAgreement,
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
            CertKind::Sign => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::ContentCommitment,
                ];
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::Other(OID_KP_DOCUMENT_SIGNING.to_vec()),
                    ExtendedKeyUsagePurpose::EmailProtection,
                ];
            }
        }
        Ok(params.signed_by(spec.key, &self.issuer()?)?.der().to_vec())
    }

    /// A CRL (RFC 5280 §5) signed by the issuing CA, DER.
    pub fn crl(&self, revoked: &[Revoked], number: u64, now: OffsetDateTime) -> Result<Vec<u8>> {
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + Duration::hours(CRL_VALIDITY_HOURS),
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.at,
                    reason_code: Some(r.reason),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer()?)?.der().to_vec())
    }
}

/// The largest CSR PEM accepted; a P-256 CSR is well under 1 KiB.
pub const MAX_CSR_PEM: usize = 16 * 1024;

/// A PKCS#10 request that parsed, carries a key of an accepted algorithm and verifies with it.
#[derive(Clone, Debug)]
pub struct ParsedCsr {
    /// The request, DER.
    pub der: Vec<u8>,
    /// Its key.
    pub key: UserKey,
    /// Subject CN ("" if none).
    pub cn: String,
    /// Subject serialNumber ("" if none).
    pub serial_number: String,
}

/// Parses a PEM CSR: PKCS#10 structure, a key of one of the `accepted` algorithms, and the
/// self-signature (RFC 2986 §3: it proves possession of the key) — for GOST under the national
/// CA's signature OID, over the request info as sent. `kind` names the CSR in errors.
pub fn parse_csr(pem: &str, kind: &'static str, accepted: &[Algorithm]) -> Result<ParsedCsr> {
    use x509_parser::prelude::{FromDer, X509CertificationRequest};
    if pem.len() > MAX_CSR_PEM {
        return Err(ServerError::MalformedCsr {
            kind,
            why: format!("larger than {MAX_CSR_PEM} bytes"),
        });
    }
    let der = match x509_parser::pem::parse_x509_pem(pem.trim().as_bytes()) {
        Ok((_, pem)) if pem.label.ends_with("CERTIFICATE REQUEST") => pem.contents,
        Ok((_, pem)) => {
            return Err(ServerError::MalformedCsr {
                kind,
                why: format!("PEM label is {:?}", pem.label),
            });
        }
        Err(e) => {
            return Err(ServerError::MalformedCsr {
                kind,
                why: format!("not PEM: {e}"),
            });
        }
    };
    let csr = match X509CertificationRequest::from_der(&der) {
        Ok(([], csr)) => csr,
        Ok(_) => {
            return Err(ServerError::MalformedCsr {
                kind,
                why: "trailing bytes after the request".into(),
            });
        }
        Err(e) => {
            return Err(ServerError::MalformedCsr {
                kind,
                why: e.to_string(),
            });
        }
    };
    let info = &csr.certification_request_info;
    let wrong = |found: String| ServerError::WrongKeyType {
        kind,
        found,
        expected: accepted
            .iter()
            .map(|a| a.describe())
            .collect::<Vec<_>>()
            .join(" or "),
    };
    let key = UserKey::from_spki(info.subject_pki.raw).map_err(wrong)?;
    if !accepted.contains(&key.algorithm()) {
        return Err(wrong(key.algorithm().describe().to_owned()));
    }
    let signed = match &key {
        UserKey::P256(_) => csr.verify_signature().is_ok(),
        UserKey::Gost(profile, k) => {
            csr.signature_algorithm.algorithm.to_id_string() == profile.signature_oid()
                && profile.verify(k, info.raw, csr.signature_value.data.as_ref())
        }
    };
    if !signed {
        return Err(ServerError::CsrSignatureInvalid { kind });
    }
    let name = |oid: &x509_parser::oid_registry::Oid<'_>| {
        info.subject
            .iter_by_oid(oid)
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    Ok(ParsedCsr {
        key,
        cn: name(&x509_parser::oid_registry::OID_X509_COMMON_NAME),
        serial_number: name(&x509_parser::oid_registry::OID_X509_SERIALNUMBER),
        der: der.clone(),
    })
}

#[cfg(unix)]
pub(crate) fn restrict(paths: &[PathBuf]) {
    use std::os::unix::fs::PermissionsExt;
    for path in paths {
        // Private keys readable by the owner only, like any CA key file; failure is not fatal
        // for a test CA (e.g. on a filesystem without modes).
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(not(unix))]
pub(crate) fn restrict(_: &[PathBuf]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_parse_back_and_unknown_ones_list_the_choices() {
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.to_string(), a.name());
        }
        assert_eq!(
            ["p256", "gost2004", "gost2015-512"].map(|n| n.parse::<Algorithm>().unwrap()),
            Algorithm::ALL
        );
        let err = "gost2012".parse::<Algorithm>().unwrap_err();
        assert!(
            err.contains("\"gost2012\"") && err.contains("gost2015-512"),
            "{err}"
        );
        assert_eq!(Algorithm::default(), Algorithm::P256);
        assert_eq!(Algorithm::P256.gost(), None);
        assert_eq!(
            Algorithm::Gost2004.gost(),
            Some(kilt_gost::Profile::Gost2004)
        );
        assert_eq!(
            Algorithm::Gost2015_512.gost(),
            Some(kilt_gost::Profile::Gost2015_512)
        );
    }
}
