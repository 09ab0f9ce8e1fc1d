//! One token in any PKCS#11 module: choosing it, logging in, and its key sets.
//!
//! A *key set* is what the Tumar configurator shows as one line: a private key, its public key
//! and its certificate, tied by the same `CKA_ID` (PKCS#11 2.40 §4.4: "the CKA_ID attribute is
//! intended as a means of distinguishing multiple public-key/private-key pairs held by the same
//! subject"; the certificate carries the same ID by convention, §4.6.3).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use kilt_console::{Pin, PinSource};
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroize;

use crate::error::{ClientError, Result};
use crate::p11::{P11Error, P256_PARAMS, TokenKey, ec_point};
use crate::uri::Pkcs11Uri;

fn ck(call: &'static str) -> impl FnOnce(CkError) -> ClientError {
    move |source| P11Error::Token { call, source }.into()
}

/// How the user chose a token.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// A `pkcs11:` URI.
    pub uri: Option<Pkcs11Uri>,
    /// `--token LABEL`.
    pub label: Option<String>,
    /// `--serial SERIAL`.
    pub serial: Option<String>,
}

impl Selector {
    fn matches(&self, t: &TokenInfo) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == have);
        let uri = self.uri.clone().unwrap_or_default();
        eq(&self.label, &t.label)
            && eq(&self.serial, &t.serial)
            && eq(&uri.token, &t.label)
            && eq(&uri.serial, &t.serial)
            && eq(&uri.manufacturer, &t.manufacturer)
            && eq(&uri.model, &t.model)
            && uri.slot_id.is_none_or(|s| s == t.slot)
    }

    fn describe(&self) -> String {
        let mut parts = vec![];
        if let Some(u) = &self.uri {
            parts.push(u.to_string());
        }
        if let Some(l) = &self.label {
            parts.push(format!("label {l:?}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial {s:?}"));
        }
        if parts.is_empty() {
            "(no --token, --serial or --uri given)".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What `C_GetTokenInfo` says, in the words the client shows.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TokenInfo {
    /// Slot ID.
    pub slot: u64,
    /// Label.
    pub label: String,
    /// Serial number.
    pub serial: String,
    /// Manufacturer ID.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// `CKF_PROTECTED_AUTHENTICATION_PATH`: the PIN is entered on the token's own window.
    pub protected_authentication_path: bool,
    /// `CKF_USER_PIN_COUNT_LOW`.
    pub pin_count_low: bool,
    /// `CKF_USER_PIN_FINAL_TRY`.
    pub pin_final_try: bool,
    /// `CKF_USER_PIN_LOCKED`.
    pub pin_locked: bool,
    /// Exact tries left, where the token tells them (the kilt emulator does).
    pub pin_tries_left: Option<u32>,
}

impl TokenInfo {
    /// The tries-left sentence for a wrong PIN (PKCS#11 2.40 §5.5 flags; exact where known).
    pub fn tries_sentence(&self) -> String {
        match (self.pin_tries_left, self.pin_final_try, self.pin_count_low) {
            (Some(1), ..) | (None, true, _) => {
                "1 try left — one more wrong PIN locks the token".into()
            }
            (Some(n), ..) => format!("{n} tries left before the PIN is locked"),
            (None, false, true) => "the token says tries are running low".into(),
            (None, false, false) => "the token does not say how many tries are left".into(),
        }
    }
}

/// A certificate on the token, as the client shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Subject CN.
    pub subject: String,
    /// Issuer CN.
    pub issuer: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// Days left from now (negative once expired).
    pub days_left: i64,
    /// Has EKU clientAuth (an authentication certificate).
    pub client_auth: bool,
    /// The certificate object's `CKA_LABEL` on the token.
    pub label: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// Its public point (uncompressed).
    #[serde(skip)]
    pub point: Vec<u8>,
    /// Its key's algorithm: "P-256", a GOST one ("GOST 34.310-2004", …), else the key's OID.
    pub algorithm: String,
}

/// [`CertInfo::algorithm`] of a P-256 key: the only one kilt signs with today.
pub const P256: &str = "P-256";

/// What a certificate's key algorithm (and curve) name, as a person reads it.
fn key_algorithm(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> String {
    use kilt_gost::oid;
    use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
    let algorithm = &spki.algorithm.algorithm;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY && curve == Some(OID_EC_P256) {
        return P256.into();
    }
    match (algorithm.to_id_string().as_str(), curve) {
        (oid::KZ_KEY_2004 | oid::KEY_2001 | oid::KEY_2012_256, _) => "GOST 34.310-2004".into(),
        (oid::KZ_KEY_2015_512 | oid::KEY_2012_512, _) => "GOST R 34.10-2015 (512-bit)".into(),
        (other, Some(curve)) => format!("{other} / {curve}"),
        (other, None) => other.into(),
    }
}

impl CertInfo {
    /// Parses a DER X.509 certificate.
    pub fn parse(der: &[u8]) -> Option<CertInfo> {
        let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
        let cn = |n: &x509_parser::x509::X509Name| {
            n.iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let not_after = c.validity().not_after.to_datetime();
        let client_auth = c
            .extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|e| e.value.client_auth);
        Some(CertInfo {
            serial: hex::encode(c.raw_serial())
                .trim_start_matches("00")
                .to_owned(),
            subject: cn(c.subject()),
            issuer: cn(c.issuer()),
            not_before: rfc3339(c.validity().not_before.to_datetime()),
            not_after: rfc3339(not_after),
            days_left: (not_after - OffsetDateTime::now_utc()).whole_days(),
            client_auth,
            label: String::new(),
            der: der.to_vec(),
            point: c.public_key().subject_public_key.data.to_vec(),
            algorithm: key_algorithm(c.public_key()),
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One key set on the token.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KeySet {
    /// `CKA_ID`, shown as text when printable, else hex.
    pub id: String,
    /// `CKA_ID` bytes.
    #[serde(skip)]
    pub id_bytes: Vec<u8>,
    /// `CKA_LABEL` of the private key.
    pub label: String,
    /// The public point, for matching certificates and bank profiles.
    #[serde(skip)]
    pub point: Vec<u8>,
    /// The certificate with the same `CKA_ID`, if any.
    pub certificate: Option<CertInfo>,
}

/// Shows a `CKA_ID` as text when it is printable ASCII, else as hex.
pub fn show_id(id: &[u8]) -> String {
    if !id.is_empty() && id.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(id).into_owned()
    } else {
        hex::encode(id)
    }
}

/// An open token: the module, the slot and one read-write session.
pub struct Token {
    pkcs11: Pkcs11,
    slot: Slot,
    info: TokenInfo,
    session: Arc<Mutex<Session>>,
    module: PathBuf,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("info", &self.info).finish()
    }
}

/// Loads and initialises a PKCS#11 module.
pub fn load(module: &Path) -> Result<Pkcs11> {
    let fail = |reason: String| ClientError::Module {
        path: module.display().to_string(),
        reason,
    };
    let pkcs11 = Pkcs11::new(module).map_err(|e| fail(e.to_string()))?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(pkcs11),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Every token present in the module's slots (without exact tries: see [`Token::refresh`]).
pub fn tokens(pkcs11: &Pkcs11) -> Result<Vec<TokenInfo>> {
    Ok(pkcs11
        .get_slots_with_token()
        .map_err(ck("C_GetSlotList"))?
        .into_iter()
        .filter_map(|slot| token_info(pkcs11, slot))
        .collect())
}

/// The initialised token in `slot`, if there is one.
fn token_info(pkcs11: &Pkcs11, slot: Slot) -> Option<TokenInfo> {
    let t = pkcs11.get_token_info(slot).ok()?;
    t.token_initialized().then(|| TokenInfo {
        slot: slot.id(),
        label: t.label().trim_end().to_owned(),
        serial: t.serial_number().trim_end().to_owned(),
        manufacturer: t.manufacturer_id().trim_end().to_owned(),
        model: t.model().trim_end().to_owned(),
        protected_authentication_path: t.protected_authentication_path(),
        pin_count_low: t.user_pin_count_low(),
        pin_final_try: t.user_pin_final_try(),
        pin_locked: t.user_pin_locked(),
        pin_tries_left: None,
    })
}

/// The kilt emulator keeps exact counters (as the JaCarta does behind its vendor API); its
/// `kilt-token slots --json`, found beside the module, tells them. It runs as another process
/// on purpose: opening the token files through the emulator library in a process that has the
/// module loaded would put two SQLite copies on one file, and POSIX locks are per process
/// (SQLite's "How To Corrupt" §2.2) — the module's writes were lost that way. Other modules only
/// have PKCS#11 §5.5's flags.
fn exact_tries(module: &Path, info: &TokenInfo) -> Option<u32> {
    let name = module.file_name()?.to_string_lossy();
    if !name.starts_with("libkilt_pkcs11") {
        return None;
    }
    let tool = module.parent()?.join("kilt-token");
    let out = std::process::Command::new(tool)
        .args(["slots", "--json"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let slots: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
    let slot = slots.iter().find(|s| s["serial"] == info.serial.as_str())?;
    slot["user_pin_tries_left"].as_u64().map(|n| n as u32)
}

impl Token {
    /// Loads `module` and opens the one token `selector` names.
    pub fn open(module: &Path, selector: &Selector) -> Result<Token> {
        let pkcs11 = load(module)?;
        let all = tokens(&pkcs11)?;
        let mut found: Vec<TokenInfo> = all
            .iter()
            .filter(|t| selector.matches(t))
            .cloned()
            .collect();
        let info = match found.len() {
            1 => found.remove(0),
            0 => {
                let present = if all.is_empty() {
                    "none (is the token plugged in?)".to_owned()
                } else {
                    all.iter()
                        .map(|t| format!("{:?} (serial {})", t.label, t.serial))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(ClientError::NoToken {
                    wanted: selector.describe(),
                    present,
                });
            }
            count => {
                return Err(ClientError::AmbiguousToken {
                    wanted: selector.describe(),
                    count,
                });
            }
        };
        Token::in_slot(&pkcs11, module, info.slot)
    }

    /// Opens the token in slot `slot` of an already loaded `module` (a program driving many
    /// tokens of one module, like `kilt-bench load`, picks each by slot instead of reading every
    /// token's info to find it).
    pub fn in_slot(pkcs11: &Pkcs11, module: &Path, slot: u64) -> Result<Token> {
        let slot = pkcs11
            .get_slots_with_token()
            .map_err(ck("C_GetSlotList"))?
            .into_iter()
            .find(|s| s.id() == slot)
            .ok_or(ClientError::TokenRemoved("C_GetSlotList"))?;
        let info = token_info(pkcs11, slot).ok_or(ClientError::TokenRemoved("C_GetTokenInfo"))?;
        let session = pkcs11.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        Ok(Token {
            pkcs11: pkcs11.clone(),
            slot,
            info,
            session: Arc::new(Mutex::new(session)),
            module: module.to_path_buf(),
        })
    }

    /// What the token said when it was opened.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// The token's info read again (PIN flags change with every login), with the exact tries
    /// left where the token tells them — asked only here, when they are shown, because for kilt
    /// tokens it costs a `kilt-token` process.
    pub fn refresh(&mut self) -> Result<&TokenInfo> {
        let all = tokens(&self.pkcs11)?;
        if let Some(mut t) = all.into_iter().find(|t| t.slot == self.info.slot) {
            t.pin_tries_left = exact_tries(&self.module, &t);
            self.info = t;
        }
        Ok(&self.info)
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs the user in. With a protected authentication path no PIN is passed (§5.6
    /// C_Login: "pPin is NULL_PTR") and the token asks in its own window; otherwise the PIN is
    /// read from `source`. A wrong PIN reports the tries left; a locked PIN says what to do.
    pub fn login(&mut self, source: &PinSource, notice: &mut dyn FnMut(&str)) -> Result<()> {
        if self.info.pin_locked {
            return Err(ClientError::PinLocked(self.info.label.clone()));
        }
        let result = if self.info.protected_authentication_path {
            notice(&format!(
                "Enter the PIN of token {:?} in the token's own window (protected authentication path)",
                self.info.label
            ));
            self.session().login(UserType::User, None)
        } else {
            let pin: Pin = source
                .read(&format!("PIN of token {:?}: ", self.info.label))
                .map_err(|e| ClientError::PinSource(e.to_string()))?;
            let mut text = String::from_utf8_lossy(pin.as_bytes()).into_owned();
            let auth = AuthPin::new(text.clone().into());
            text.zeroize();
            self.session().login(UserType::User, Some(&auth))
        };
        match result {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                let info = self.refresh()?;
                if info.pin_locked {
                    Err(ClientError::PinLocked(info.label.clone()))
                } else {
                    Err(ClientError::PinIncorrect {
                        tries: info.tries_sentence(),
                    })
                }
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                Err(ClientError::PinLocked(self.info.label.clone()))
            }
            Err(e) => Err(ck("C_Login")(e)),
        }
    }

    /// Asks for the PIN again and checks it by logging in afresh (before a deletion, as the
    /// configurator does).
    pub fn relogin(&mut self, source: &PinSource, notice: &mut dyn FnMut(&str)) -> Result<()> {
        match self.session().logout() {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => {}
            Err(e) => return Err(ck("C_Logout")(e)),
        }
        self.refresh()?;
        self.login(source, notice)
    }

    /// Every key set: private keys with their public point and certificate.
    pub fn key_sets(&self) -> Result<Vec<KeySet>> {
        let s = self.session();
        let ids = |class| -> Result<Vec<(ObjectHandle, Vec<u8>, String)>> {
            let mut out = vec![];
            for h in s
                .find_objects(&[Attribute::Class(class)])
                .map_err(ck("C_FindObjects"))?
            {
                let attrs = s
                    .get_attributes(h, &[AttributeType::Id, AttributeType::Label])
                    .map_err(ck("C_GetAttributeValue"))?;
                let (mut id, mut label) = (vec![], String::new());
                for a in attrs {
                    match a {
                        Attribute::Id(v) => id = v,
                        Attribute::Label(v) => label = String::from_utf8_lossy(&v).into_owned(),
                        _ => {}
                    }
                }
                out.push((h, id, label));
            }
            Ok(out)
        };
        let privates = ids(ObjectClass::PRIVATE_KEY)?;
        let publics = ids(ObjectClass::PUBLIC_KEY)?;
        let certs = ids(ObjectClass::CERTIFICATE)?;
        let mut sets = vec![];
        for (_, id, label) in privates {
            let point = publics
                .iter()
                .find(|(_, pid, _)| *pid == id)
                .and_then(|(h, _, _)| {
                    s.get_attributes(*h, &[AttributeType::EcPoint])
                        .ok()?
                        .into_iter()
                        .find_map(|a| match a {
                            Attribute::EcPoint(p) => ec_point(&p),
                            _ => None,
                        })
                })
                .unwrap_or_default();
            let certificate =
                certs
                    .iter()
                    .filter(|(_, cid, _)| *cid == id)
                    .find_map(|(h, _, label)| {
                        let mut c = s
                            .get_attributes(*h, &[AttributeType::Value])
                            .ok()?
                            .into_iter()
                            .find_map(|a| match a {
                                Attribute::Value(v) => CertInfo::parse(&v),
                                _ => None,
                            })?;
                        c.label = label.clone();
                        Some(c)
                    });
            sets.push(KeySet {
                id: show_id(&id),
                id_bytes: id,
                label,
                point,
                certificate,
            });
        }
        // Newest certificate first, like the Tumar configurator's list; bare keys last.
        sets.sort_by(|a, b| {
            let end = |k: &KeySet| k.certificate.as_ref().map(|c| c.not_before.clone());
            end(b).cmp(&end(a))
        });
        Ok(sets)
    }

    /// Whether a private key with this `CKA_ID` exists.
    pub fn has_key(&self, id: &[u8]) -> Result<bool> {
        Ok(!self
            .session()
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(ck("C_FindObjects"))?
            .is_empty())
    }

    /// Refuses, before anything changes, a token whose module cannot make P-256 key pairs
    /// (OpenSC's PIV driver has no `CKM_EC_KEY_PAIR_GEN`: PKCS#11 2.40 §5.5 C_GetMechanismList
    /// lists what a token can do, and `CKF_GENERATE_KEY_PAIR` says it generates).
    pub fn ensure_can_generate(&self) -> Result<()> {
        let mechanisms = self
            .pkcs11
            .get_mechanism_list(self.slot)
            .map_err(ck("C_GetMechanismList"))?;
        let generates = mechanisms.contains(&MechanismType::ECC_KEY_PAIR_GEN)
            && self
                .pkcs11
                .get_mechanism_info(self.slot, MechanismType::ECC_KEY_PAIR_GEN)
                .is_ok_and(|i| i.generate_key_pair());
        if generates {
            return Ok(());
        }
        Err(ClientError::CannotGenerate {
            module: self.module.display().to_string(),
            token: self.info.label.clone(),
        })
    }

    /// A new P-256 key pair in the token: sensitive, non-extractable, labelled and identified by
    /// `id` (PKCS#11 3.0 §6.3.5 CKM_EC_KEY_PAIR_GEN; `CKA_EC_PARAMS` = the curve's OID).
    pub fn generate(&self, id: &[u8]) -> Result<TokenKey> {
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Label(id.to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Id(id.to_vec()),
            Attribute::Label(id.to_vec()),
        ];
        self.session()
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .map_err(ck("C_GenerateKeyPair"))?;
        self.key(id)
    }

    /// The key pair with this `CKA_ID`, ready to sign.
    pub fn key(&self, id: &[u8]) -> Result<TokenKey> {
        Ok(TokenKey::find(
            &self.pkcs11,
            self.slot,
            self.session.clone(),
            id,
        )?)
    }

    /// Writes an X.509 certificate next to the key with `id` (PKCS#11 2.40 §4.6.3: CKA_SUBJECT
    /// is required; ID, ISSUER and SERIAL_NUMBER let other software pair it with the key).
    /// Writing the same certificate twice leaves one copy.
    pub fn write_certificate(&self, id: &[u8], der: &[u8], label: &str) -> Result<()> {
        let (_, c) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
        let s = self.session();
        let existing = s
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Value(der.to_vec()),
            ])
            .map_err(ck("C_FindObjects"))?;
        if !existing.is_empty() {
            return Ok(());
        }
        let serial = c.tbs_certificate.raw_serial();
        let mut serial_der = vec![0x02, serial.len() as u8];
        serial_der.extend_from_slice(serial);
        s.create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Subject(c.subject().as_raw().to_vec()),
            Attribute::Issuer(c.issuer().as_raw().to_vec()),
            Attribute::SerialNumber(serial_der),
            Attribute::Value(der.to_vec()),
        ])
        .map_err(ck("C_CreateObject"))?;
        Ok(())
    }

    /// Destroys every object with this `CKA_ID` (private key, public key, certificate). Returns
    /// how many there were.
    pub fn delete_set(&self, id: &[u8]) -> Result<usize> {
        let s = self.session();
        let objects = s
            .find_objects(&[Attribute::Id(id.to_vec())])
            .map_err(ck("C_FindObjects"))?;
        for h in &objects {
            s.destroy_object(*h).map_err(ck("C_DestroyObject"))?;
        }
        Ok(objects.len())
    }
}

/// A fresh `CKA_ID` for a new key set: `prefix-` and 8 random hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("{prefix}-{}", hex::encode(bytes))
}
