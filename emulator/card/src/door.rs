//! The card's way into the token: one session through the same core (and so the same store) as
//! the PKCS#11 module. Every PIN try, key and certificate goes through the core's rules.

use crate::apdu::StatusWord;
use cryptoki_sys::*;
use kilt_emulator::crypto;
use kilt_emulator::{
    AttrResult, Emulator, Error, Mechanism, ObjectHandle, Pin, SessionHandle, SlotId, UserType,
};
use std::sync::Arc;

/// The status word for a token error: the APDU layer's one exhaustive mapping (as the PKCS#11
/// edge has its own to `CK_RV`).
pub fn status_of(e: &Error) -> StatusWord {
    use StatusWord as Sw;
    match e {
        Error::PinIncorrect { tries_left } => Sw::tries_left(*tries_left),
        Error::PinLocked => Sw::AUTH_BLOCKED,
        Error::NotLoggedIn | Error::UserPinNotInitialized => Sw::SECURITY_NOT_SATISFIED,
        Error::PinLenRange { .. } | Error::PinInvalid | Error::PinMissing => Sw::WRONG_DATA,
        Error::PinEntryCancelled | Error::PinSourceUnavailable(_) => Sw::CONDITIONS_NOT_SATISFIED,
        Error::ObjectNotFound | Error::KeyNotFound => Sw::REFERENCE_NOT_FOUND,
        Error::AttributeTypeInvalid(_)
        | Error::AttributeValueInvalid(_)
        | Error::AttributeReadOnly(_)
        | Error::TemplateIncomplete(_)
        | Error::TemplateInconsistent(_)
        | Error::MechanismInvalid(_)
        | Error::MechanismParamInvalid
        | Error::CurveNotSupported
        | Error::DataLenRange
        | Error::SignatureInvalid
        | Error::SignatureLenRange => Sw::WRONG_DATA,
        Error::KeyTypeInconsistent | Error::KeyFunctionNotPermitted | Error::ActionProhibited => {
            Sw::CONDITIONS_NOT_SATISFIED
        }
        Error::AlreadyLoggedIn
        | Error::AnotherUserLoggedIn
        | Error::OperationActive
        | Error::OperationNotInitialized
        | Error::SinglePartOnly
        | Error::SessionReadOnly
        | Error::ReadOnlySessionExists
        | Error::SoSessionExists
        | Error::SessionsOpen
        | Error::ParallelSessionNotSupported
        | Error::RandomSeedNotSupported => Sw::CONDITIONS_NOT_SATISFIED,
        Error::DeviceMemory => Sw::NOT_ENOUGH_MEMORY,
        Error::SlotNotFound(_)
        | Error::TokenNotPresent
        | Error::DeviceRemoved
        | Error::TokenNotInitialized
        | Error::SessionNotFound
        | Error::DeviceError(_)
        | Error::Store(_)
        | Error::Profile(_)
        | Error::Finalizing => Sw::EXECUTION_ERROR,
    }
}

/// A key set on the token as the card sees it: objects sharing one `CKA_ID`.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    pub id: Vec<u8>,
    pub cert: Option<Vec<u8>>,
    pub public_point: Option<Vec<u8>>,
    pub private: Option<ObjectHandle>,
}

/// One session on the token, opened when the card is powered and closed when it is not.
pub struct Door {
    emu: Arc<Emulator>,
    slot: SlotId,
    session: Option<SessionHandle>,
}

type R<T> = Result<T, Error>;

impl Door {
    pub fn new(emu: Arc<Emulator>, slot: SlotId) -> Door {
        Door {
            emu,
            slot,
            session: None,
        }
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emu
    }

    pub fn slot(&self) -> SlotId {
        self.slot
    }

    fn session(&mut self) -> R<SessionHandle> {
        if let Some(s) = self.session {
            // A session the token closed (removal) is replaced, as a card's reset would.
            if self.emu.session_info(s).is_ok() {
                return Ok(s);
            }
        }
        let s = self.emu.open_session(self.slot, true, true)?;
        self.session = Some(s);
        Ok(s)
    }

    /// Power off or reset: the session ends and with it the login, as on the device.
    pub fn close(&mut self) {
        if let Some(s) = self.session.take() {
            self.emu.close_session(s).ok();
        }
    }

    /// The token's serial number (16 hex digits, 8 bytes).
    pub fn serial(&self) -> R<Vec<u8>> {
        let info = self.emu.token_info(self.slot)?;
        Ok(hex::decode(info.serial.trim()).unwrap_or_else(|_| info.serial.into_bytes()))
    }

    /// Tries left and whether the PIN is locked: (tries, locked).
    pub fn pin_state(&self, so: bool) -> R<(u32, bool)> {
        let info = self.emu.token_info(self.slot)?;
        let p = if so { info.so_pin } else { info.user_pin };
        Ok((p.tries_left, p.locked))
    }

    pub fn logged_in_user(&mut self) -> bool {
        let Ok(s) = self.session() else { return false };
        self.emu
            .session_info(s)
            .is_ok_and(|i| i.state == kilt_emulator::SessionState::RwUser)
    }

    pub fn logout(&mut self) {
        if let Ok(s) = self.session() {
            self.emu.logout(s).ok();
        }
    }

    /// Logs `who` in with `pin` after logging out whoever was: a failed try leaves nobody in.
    pub fn login(&mut self, so: bool, pin: &Pin) -> R<()> {
        let s = self.session()?;
        self.emu.logout(s).ok();
        let user = if so { UserType::So } else { UserType::User };
        self.emu.login(s, user, Some(pin))
    }

    /// Changes the PIN of `who` (logged in with `old` first); ends logged in as `who`.
    pub fn change_pin(&mut self, so: bool, old: &Pin, new: &Pin) -> R<()> {
        self.login(so, old)?;
        let s = self.session()?;
        self.emu.set_pin(s, Some(old), Some(new))
    }

    /// The SO sets a new user PIN (and so unblocks it); ends with nobody logged in.
    pub fn reset_user_pin(&mut self, so_pin: &Pin, new: &Pin) -> R<()> {
        self.login(true, so_pin)?;
        let s = self.session()?;
        let r = self.emu.init_pin(s, Some(new));
        self.emu.logout(s).ok();
        r
    }

    fn find(&mut self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> R<Vec<ObjectHandle>> {
        let s = self.session()?;
        self.emu.find_init(s, template)?;
        let found = self.emu.find_next(s, usize::MAX);
        self.emu.find_final(s)?;
        found
    }

    fn attr(&mut self, h: ObjectHandle, t: CK_ATTRIBUTE_TYPE) -> R<Option<Vec<u8>>> {
        let s = self.session()?;
        Ok(match self.emu.get_attributes(s, h, &[t])?.pop() {
            Some(AttrResult::Value(v)) => Some(v),
            _ => None,
        })
    }

    /// Every key set the session can see (private keys only while the user is logged in).
    pub fn key_sets(&mut self) -> R<Vec<KeySet>> {
        let mut sets: Vec<KeySet> = Vec::new();
        for class in [CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY] {
            for h in self.find(&[(CKA_CLASS, class.to_ne_bytes().to_vec())])? {
                let Some(id) = self.attr(h, CKA_ID)? else {
                    continue;
                };
                let pos = match sets.iter().position(|s| s.id == id) {
                    Some(p) => p,
                    None => {
                        sets.push(KeySet {
                            id,
                            ..KeySet::default()
                        });
                        sets.len() - 1
                    }
                };
                match class {
                    CKO_CERTIFICATE => sets[pos].cert = self.attr(h, CKA_VALUE)?,
                    CKO_PUBLIC_KEY => {
                        sets[pos].public_point = self
                            .attr(h, CKA_EC_POINT)?
                            .and_then(|p| crypto::parse_ec_point(&p).map(<[u8]>::to_vec));
                    }
                    _ => sets[pos].private = Some(h),
                }
            }
        }
        Ok(sets)
    }

    /// Signs a digest (raw ECDSA, `CKM_ECDSA`) with the private key `key`: r ‖ s.
    pub fn sign_digest(&mut self, key: ObjectHandle, digest: &[u8]) -> R<Vec<u8>> {
        let s = self.session()?;
        self.emu.sign_init(s, &Mechanism::new(CKM_ECDSA), key)?;
        self.emu.sign(s, digest)
    }

    /// Deletes every object with `CKA_ID` = `id` (and optionally only certificates).
    pub fn delete_id(&mut self, id: &[u8], certificates_only: bool) -> R<()> {
        let mut template = vec![(CKA_ID, id.to_vec())];
        if certificates_only {
            template.push((CKA_CLASS, CKO_CERTIFICATE.to_ne_bytes().to_vec()));
        }
        let s = self.session()?;
        for h in self.find(&template)? {
            self.emu.destroy_object(s, h)?;
        }
        Ok(())
    }

    /// A new P-256 key pair as token objects with `CKA_ID` = `id`: the public point.
    pub fn generate(&mut self, id: &[u8], label: &str) -> R<Vec<u8>> {
        let s = self.session()?;
        let t = vec![1u8];
        let public = [
            (CKA_TOKEN, t.clone()),
            (CKA_ID, id.to_vec()),
            (CKA_LABEL, label.as_bytes().to_vec()),
            (CKA_EC_PARAMS, crypto::P256_PARAMS.to_vec()),
            (CKA_VERIFY, t.clone()),
        ];
        let private = [
            (CKA_TOKEN, t.clone()),
            (CKA_ID, id.to_vec()),
            (CKA_LABEL, label.as_bytes().to_vec()),
            (CKA_PRIVATE, t.clone()),
            (CKA_SENSITIVE, t.clone()),
            (CKA_SIGN, t),
        ];
        let (pubkey, _) = self.emu.generate_key_pair(
            s,
            &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
            &public,
            &private,
        )?;
        let point = self.attr(pubkey, CKA_EC_POINT)?.unwrap_or_default();
        Ok(crypto::parse_ec_point(&point).unwrap_or(&point).to_vec())
    }

    /// Writes an X.509 certificate as a token object with `CKA_ID` = `id` (PKCS#11 2.40 §4.6.3:
    /// subject, issuer and serial number copied from the certificate).
    pub fn store_certificate(&mut self, id: &[u8], label: &str, der: &[u8]) -> R<()> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
        let t = vec![1u8];
        let template = [
            (CKA_CLASS, CKO_CERTIFICATE.to_ne_bytes().to_vec()),
            (CKA_CERTIFICATE_TYPE, CKC_X_509.to_ne_bytes().to_vec()),
            (CKA_TOKEN, t),
            (CKA_ID, id.to_vec()),
            (CKA_LABEL, label.as_bytes().to_vec()),
            (CKA_SUBJECT, cert.subject().as_raw().to_vec()),
            (CKA_ISSUER, cert.issuer().as_raw().to_vec()),
            (CKA_SERIAL_NUMBER, der_integer(cert.raw_serial())),
            (CKA_VALUE, der.to_vec()),
        ];
        let s = self.session()?;
        self.emu.create_object(s, &template)?;
        Ok(())
    }
}

/// A DER INTEGER with `raw` as its (already minimal) content.
fn der_integer(raw: &[u8]) -> Vec<u8> {
    crate::tlv::tlv(0x02, raw)
}
