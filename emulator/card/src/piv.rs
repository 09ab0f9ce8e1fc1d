//! The PIV application (NIST SP 800-73-4 Part 2), the subset that Debian's OpenSC 0.23 and
//! yubico-piv-tool drive with P-256 keys, over the token's own objects.
//!
//! Key references map to the token's key sets (README, "The card"): a set whose `CKA_ID` is the
//! reference byte itself (made through this door) wins; otherwise 9A is the newest certificate
//! with EKU clientAuth (the CA's AUTH certificate), 9C the newest signing certificate
//! (documentSigning, emailProtection or nonRepudiation; the CA's SIGN certificate) and 9D the
//! newest other one.

use crate::apdu::{Command, StatusWord};
use crate::door::{Door, KeySet, status_of};
use crate::tlv;
use kilt_emulator::{Pin, crypto};
use zeroize::Zeroizing;

/// Key references of SP 800-73-4 Part 1 Table 4b with their data object tags (Table 3).
pub const KEY_REFS: [(u8, u32, &str); 4] = [
    (0x9A, 0x5FC105, "PIV AUTH"),
    (0x9C, 0x5FC10A, "PIV SIGN"),
    (0x9D, 0x5FC10B, "PIV KEY MGMT"),
    (0x9E, 0x5FC101, "PIV CARD AUTH"),
];

/// The PIV card application PIN (Part 2 §3.2.1, key reference 80) and the PUK (81).
const PIN_REF: u8 = 0x80;
const PUK_REF: u8 = 0x81;
/// The card management key (Part 1 Table 4b).
const MGMT_REF: u8 = 0x9B;
/// Cryptographic mechanism identifiers (SP 800-78-4 Table 6-2): 3DES and ECC P-256.
const ALG_3DES: u8 = 0x03;
const ALG_P256: u8 = 0x11;
/// A PIV PIN is 6–8 bytes padded with FF to 8 (Part 2 §2.4.3).
const PIN_FIELD: usize = 8;

/// Yubico's extensions that yubico-piv-tool sends to learn the version and the serial.
pub const INS_YK_VERSION: u8 = 0xFD;
pub const INS_YK_SERIAL: u8 = 0xF8;
/// The version this card claims: before 5.3, so yubico-piv-tool asks no metadata (INS F7).
const YK_VERSION: [u8; 3] = [5, 2, 7];

/// What the application remembers between commands; cleared by reset and power off.
#[derive(Default)]
pub struct PivState {
    /// The PIN was verified in this card session (the core holds the login).
    pub pin_verified: bool,
    /// The PIN was verified right before: one signature with 9C may follow (PIN Always).
    pub pin_always: bool,
    /// The management key was proven.
    pub admin: bool,
    /// The witness or challenge of a management-key authentication under way.
    pub challenge: Option<(bool, [u8; 8])>,
}

/// What a command did, for the trace: a note a person reads next to the status word.
pub type Note = Option<String>;

/// Handles one PIV command; `Ok` is the response data.
pub fn handle(
    door: &mut Door,
    st: &mut PivState,
    mgmt_key: &[u8; 24],
    cmd: &Command,
    note: &mut Note,
) -> Result<Vec<u8>, StatusWord> {
    if cmd.cla != 0 {
        return Err(StatusWord::CLA_NOT_SUPPORTED);
    }
    match cmd.ins {
        0xCB => get_data(door, cmd),
        0x20 => verify(door, st, cmd, note),
        0x24 => change_reference(door, st, cmd, note),
        0x2C => reset_retry_counter(door, st, cmd, note),
        0x87 => general_authenticate(door, st, mgmt_key, cmd, note),
        0x47 => generate(door, st, cmd, note),
        0xDB => put_data(door, st, cmd, note),
        INS_YK_VERSION => Ok(YK_VERSION.to_vec()),
        INS_YK_SERIAL => {
            let serial = door.serial().map_err(|e| status_of(&e))?;
            Ok(serial[serial.len().saturating_sub(4)..].to_vec())
        }
        _ => Err(StatusWord::INS_NOT_SUPPORTED),
    }
}

/// The answer to SELECT: the Application Property Template (Part 2 §3.1.1).
pub fn application_property_template(aid: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    // PIX of the application with its version (Part 1 §2.2).
    tlv::put(&mut inner, 0x4F, &aid[5..]);
    tlv::put(&mut inner, 0x79, &tlv::tlv(0x4F, &aid[..5]));
    tlv::put(&mut inner, 0x50, b"kilt JaCarta PIV");
    tlv::put(&mut inner, 0xAC, &[0x80, 0x01, ALG_P256, 0x06, 0x01, 0x00]);
    tlv::tlv(0x61, &inner)
}

fn key_ref(r: u8) -> Option<(u8, u32, &'static str)> {
    KEY_REFS.iter().copied().find(|(k, _, _)| *k == r)
}

/// How a certificate is classified to a key reference when no set carries the reference as its
/// `CKA_ID` (see the module doc).
fn classify(der: &[u8]) -> Option<(u8, i64)> {
    use x509_parser::prelude::*;
    let (_, c) = parse_x509_certificate(der).ok()?;
    let eku = c
        .extended_key_usage()
        .ok()
        .flatten()
        .map(|e| e.value.clone());
    let ku = c.key_usage().ok().flatten().map(|k| k.value);
    let document_signing = eku.as_ref().is_some_and(|e| {
        e.email_protection
            || e.other
                .iter()
                .any(|o| o.to_id_string() == "1.3.6.1.5.5.7.3.36")
    });
    let reference = if eku.as_ref().is_some_and(|e| e.client_auth) {
        0x9A
    } else if document_signing || ku.is_some_and(|k| k.non_repudiation()) {
        0x9C
    } else {
        0x9D
    };
    Some((reference, c.validity().not_before.timestamp()))
}

/// The key set behind reference `r`.
fn resolve(sets: &[KeySet], r: u8) -> Option<&KeySet> {
    if let Some(s) = sets.iter().find(|s| s.id == [r]) {
        return Some(s);
    }
    let explicit = |s: &KeySet| s.id.len() == 1 && key_ref(s.id[0]).is_some();
    sets.iter()
        .filter(|s| !explicit(s))
        .filter_map(|s| {
            let (class, since) = classify(s.cert.as_deref()?)?;
            (class == r).then_some((since, s))
        })
        .max_by_key(|(since, _)| *since)
        .map(|(_, s)| s)
}

fn sets(door: &mut Door) -> Result<Vec<KeySet>, StatusWord> {
    door.key_sets().map_err(|e| status_of(&e))
}

/// The tag list `5C` that names a data object (Part 2 §3.1.2: one to three bytes) and what
/// follows it.
fn object_tag(data: &[u8]) -> Option<(u32, &[u8])> {
    match tlv::next(data) {
        Some((0x5C, t, rest)) if (1..=3).contains(&t.len()) => {
            Some((t.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)), rest))
        }
        _ => None,
    }
}

/// GET DATA (Part 2 §3.1.2): `5C` names the object; the answer is the object's `53` container.
fn get_data(door: &mut Door, cmd: &Command) -> Result<Vec<u8>, StatusWord> {
    if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
        return Err(StatusWord::WRONG_P1P2);
    }
    let tag = match object_tag(&cmd.data) {
        Some((tag, [])) => tag,
        _ => return Err(StatusWord::WRONG_DATA),
    };
    let serial = door.serial().map_err(|e| status_of(&e))?;
    match tag {
        // Discovery object (Part 1 §3.3.2): the PIV AID and the PIN usage policy "PIV PIN only".
        0x7E => {
            let mut v = tlv::tlv(0x4F, &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0]);
            tlv::put(&mut v, 0x5F2F, &[0x40, 0x00]);
            Ok(tlv::tlv(0x7E, &v))
        }
        // CHUID (Part 1 §3.1.2): a FASC-N of a non-federal issuer, the GUID from the token's
        // serial number, an expiry date, an empty signature.
        0x5FC102 => {
            let mut v = tlv::tlv(0x30, &FASC_N);
            let mut guid = [0u8; 16];
            guid[..serial.len().min(16)].copy_from_slice(&serial[..serial.len().min(16)]);
            tlv::put(&mut v, 0x34, &guid);
            tlv::put(&mut v, 0x35, b"20301231");
            tlv::put(&mut v, 0x3E, &[]);
            tlv::put(&mut v, 0xFE, &[]);
            Ok(tlv::tlv(0x53, &v))
        }
        // Card Capability Container (Part 1 §3.1.1), minimal and version 2.1.
        0x5FC107 => {
            let mut id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
            id.extend(serial.iter().cycle().take(14));
            let mut v = tlv::tlv(0xF0, &id);
            for (t, val) in [
                (0xF1, &[0x21][..]),
                (0xF2, &[0x21]),
                (0xF3, &[]),
                (0xF4, &[0x00]),
                (0xF5, &[0x10]),
                (0xF6, &[]),
                (0xF7, &[]),
                (0xFA, &[]),
                (0xFB, &[]),
                (0xFC, &[]),
                (0xFD, &[]),
                (0xFE, &[]),
            ] {
                tlv::put(&mut v, t, val);
            }
            Ok(tlv::tlv(0x53, &v))
        }
        _ => {
            let Some((r, _, _)) = KEY_REFS.iter().find(|(_, t, _)| *t == tag) else {
                return Err(StatusWord::NOT_FOUND);
            };
            let sets = sets(door)?;
            let cert = resolve(&sets, *r)
                .and_then(|s| s.cert.clone())
                .ok_or(StatusWord::NOT_FOUND)?;
            // Part 1 Table 10: certificate, CertInfo (not compressed), error detection code.
            let mut v = tlv::tlv(0x70, &cert);
            tlv::put(&mut v, 0x71, &[0x00]);
            tlv::put(&mut v, 0xFE, &[]);
            Ok(tlv::tlv(0x53, &v))
        }
    }
}

/// A FASC-N with agency code 9999 (non-federal issuer, SP 800-73-4 Part 1 §3.1.2 / TIG SCEPACS).
const FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08,
    0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// The PIN in a PIV field: up to 8 bytes padded with FF. `None` if it is not such a field.
fn unpad(field: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if field.len() != PIN_FIELD {
        return None;
    }
    let len = field.iter().position(|b| *b == 0xFF).unwrap_or(PIN_FIELD);
    if field[len..].iter().any(|b| *b != 0xFF) {
        return None;
    }
    Some(Zeroizing::new(field[..len].to_vec()))
}

const LONG_PIN_NOTE: &str = "a PIV PIN has at most 8 characters, so a token whose PIN is longer \
                             (like the JaCarta default 1234567890) can be used through PKCS#11 only";

fn pin_failure(e: &kilt_emulator::Error, note: &mut Note) -> StatusWord {
    if matches!(e, kilt_emulator::Error::PinIncorrect { .. }) {
        *note = Some(format!("wrong PIN; {LONG_PIN_NOTE}"));
    }
    status_of(e)
}

/// VERIFY (Part 2 §3.2.1): check the PIN, ask its status (no data), or reset it (P1 = FF).
fn verify(
    door: &mut Door,
    st: &mut PivState,
    cmd: &Command,
    note: &mut Note,
) -> Result<Vec<u8>, StatusWord> {
    if cmd.p2 != PIN_REF {
        return Err(StatusWord::REFERENCE_NOT_FOUND);
    }
    match (cmd.p1, cmd.data.is_empty()) {
        (0xFF, true) => {
            door.logout();
            st.pin_verified = false;
            st.pin_always = false;
            return Ok(Vec::new());
        }
        (0x00, _) => {}
        _ => return Err(StatusWord::WRONG_P1P2),
    }
    if cmd.data.is_empty() {
        // The status query spends no try.
        let (tries, locked) = door.pin_state(false).map_err(|e| status_of(&e))?;
        return if locked {
            Err(StatusWord::AUTH_BLOCKED)
        } else if st.pin_verified && door.logged_in_user() {
            Ok(Vec::new())
        } else {
            Err(StatusWord::tries_left(tries))
        };
    }
    let pin = unpad(&cmd.data).ok_or(StatusWord::WRONG_DATA)?;
    st.pin_verified = false;
    st.pin_always = false;
    door.login(false, &Pin::new(pin.to_vec()))
        .map_err(|e| pin_failure(&e, note))?;
    st.pin_verified = true;
    st.pin_always = true;
    Ok(Vec::new())
}

/// The two PIN fields of CHANGE REFERENCE DATA and RESET RETRY COUNTER (8 bytes each, Part 2
/// §3.2.2–3.2.3). Both commands end the card's PIN security status, whatever their outcome.
fn two_pins(data: &[u8], st: &mut PivState) -> Result<(Pin, Pin), StatusWord> {
    if data.len() != 2 * PIN_FIELD {
        return Err(StatusWord::WRONG_DATA);
    }
    let first = unpad(&data[..PIN_FIELD]).ok_or(StatusWord::WRONG_DATA)?;
    let second = unpad(&data[PIN_FIELD..]).ok_or(StatusWord::WRONG_DATA)?;
    st.pin_verified = false;
    st.pin_always = false;
    Ok((Pin::new(first.to_vec()), Pin::new(second.to_vec())))
}

/// CHANGE REFERENCE DATA (Part 2 §3.2.2): old and new PIN (80) or PUK (81), 8 bytes each. The
/// PUK is the token's SO PIN.
fn change_reference(
    door: &mut Door,
    st: &mut PivState,
    cmd: &Command,
    note: &mut Note,
) -> Result<Vec<u8>, StatusWord> {
    let so = match (cmd.p1, cmd.p2) {
        (0, PIN_REF) => false,
        (0, PUK_REF) => true,
        (0, _) => return Err(StatusWord::REFERENCE_NOT_FOUND),
        _ => return Err(StatusWord::WRONG_P1P2),
    };
    let (old, new) = two_pins(&cmd.data, st)?;
    door.change_pin(so, &old, &new)
        .map_err(|e| pin_failure(&e, note))?;
    if so {
        door.logout();
    } else {
        st.pin_verified = true;
    }
    Ok(Vec::new())
}

/// RESET RETRY COUNTER (Part 2 §3.2.3): the PUK (the token's SO PIN) sets a new PIN and
/// unblocks it, as `C_InitPIN` by the SO does through PKCS#11.
fn reset_retry_counter(
    door: &mut Door,
    st: &mut PivState,
    cmd: &Command,
    note: &mut Note,
) -> Result<Vec<u8>, StatusWord> {
    if (cmd.p1, cmd.p2) != (0, PIN_REF) {
        return Err(StatusWord::WRONG_P1P2);
    }
    let (puk, new) = two_pins(&cmd.data, st)?;
    door.reset_user_pin(&puk, &new)
        .map_err(|e| pin_failure(&e, note))?;
    *note = Some("PIN reset by the PUK (the token's SO PIN)".into());
    Ok(Vec::new())
}

/// The dynamic authentication template (`7C`) of GENERAL AUTHENTICATE.
fn template(data: &[u8]) -> Result<Vec<(u32, &[u8])>, StatusWord> {
    match tlv::next(data) {
        Some((0x7C, inner, [])) => tlv::parse_all(inner).ok_or(StatusWord::WRONG_DATA),
        _ => Err(StatusWord::WRONG_DATA),
    }
}

/// GENERAL AUTHENTICATE (Part 2 §3.2.4): ECDSA P-256 with 9A/9C/9D/9E, or the management key
/// (9B, 3DES) proven by witness and challenge.
fn general_authenticate(
    door: &mut Door,
    st: &mut PivState,
    mgmt_key: &[u8; 24],
    cmd: &Command,
    note: &mut Note,
) -> Result<Vec<u8>, StatusWord> {
    let items = template(&cmd.data)?;
    let get = |t: u32| items.iter().find(|(tag, _)| *tag == t).map(|(_, v)| *v);
    if cmd.p2 == MGMT_REF {
        if cmd.p1 != ALG_3DES {
            return Err(StatusWord::WRONG_P1P2);
        }
        return management_auth(st, mgmt_key, get(0x80), get(0x81), get(0x82));
    }
    if key_ref(cmd.p2).is_none() {
        return Err(StatusWord::REFERENCE_NOT_FOUND);
    }
    if cmd.p1 != ALG_P256 {
        return Err(StatusWord::WRONG_P1P2);
    }
    let (Some([]), Some(digest)) = (get(0x82), get(0x81)) else {
        return Err(StatusWord::WRONG_DATA);
    };
    if digest.len() != 32 {
        return Err(StatusWord::WRONG_DATA);
    }
    // The keys are sealed under the PIN, so every reference needs it; 9C needs it right before
    // each signature (Part 1 §3.2, "PIN Always").
    let allowed = if cmd.p2 == 0x9C {
        st.pin_always
    } else {
        st.pin_verified
    };
    st.pin_always = false;
    if !allowed || !door.logged_in_user() {
        *note = Some("the PIN must be verified first (for 9C right before each signature)".into());
        return Err(StatusWord::SECURITY_NOT_SATISFIED);
    }
    let sets = sets(door)?;
    let key = resolve(&sets, cmd.p2)
        .and_then(|s| s.private)
        .ok_or(StatusWord::REFERENCE_NOT_FOUND)?;
    let raw = door.sign_digest(key, digest).map_err(|e| status_of(&e))?;
    let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(|_| StatusWord::EXECUTION_ERROR)?;
    Ok(tlv::tlv(0x7C, &tlv::tlv(0x82, sig.to_der().as_bytes())))
}

fn tdes(key: &[u8; 24], block: &[u8; 8], encrypt: bool) -> [u8; 8] {
    use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    let cipher = des::TdesEde3::new(&(*key).into());
    let mut b = (*block).into();
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    b.into()
}

/// The two ways of Part 2 §3.2.4 to prove the management key: mutual (witness `80` first,
/// then its decryption with a challenge `81`) and external (challenge `81` first, then its
/// encryption in `82`).
fn management_auth(
    st: &mut PivState,
    key: &[u8; 24],
    witness: Option<&[u8]>,
    challenge: Option<&[u8]>,
    response: Option<&[u8]>,
) -> Result<Vec<u8>, StatusWord> {
    let pending = st.challenge.take();
    st.admin = false;
    let random = || -> Result<[u8; 8], StatusWord> {
        let mut b = [0u8; 8];
        crypto::random(&mut b).map_err(|e| status_of(&e))?;
        Ok(b)
    };
    match (witness, challenge, response) {
        (Some([]), None, None) => {
            let w = random()?;
            st.challenge = Some((true, w));
            Ok(tlv::tlv(0x7C, &tlv::tlv(0x80, &tdes(key, &w, true))))
        }
        (Some(decrypted), Some(c), None | Some([])) if decrypted.len() == 8 && c.len() == 8 => {
            match pending {
                Some((true, w)) if w[..] == decrypted[..] => {
                    st.admin = true;
                    let c: [u8; 8] = c.try_into().map_err(|_| StatusWord::WRONG_DATA)?;
                    Ok(tlv::tlv(0x7C, &tlv::tlv(0x82, &tdes(key, &c, true))))
                }
                _ => Err(StatusWord::SECURITY_NOT_SATISFIED),
            }
        }
        (None, Some([]), None) => {
            let c = random()?;
            st.challenge = Some((false, c));
            Ok(tlv::tlv(0x7C, &tlv::tlv(0x81, &c)))
        }
        (None, None, Some(encrypted)) if encrypted.len() == 8 => match pending {
            Some((false, c)) if tdes(key, &c, true)[..] == encrypted[..] => {
                st.admin = true;
                Ok(Vec::new())
            }
            _ => Err(StatusWord::SECURITY_NOT_SATISFIED),
        },
        _ => Err(StatusWord::WRONG_DATA),
    }
}

/// GENERATE ASYMMETRIC KEY PAIR (Part 2 §3.3.2): a new P-256 key in 9A/9C/9D/9E, replacing the
/// set made there through this door; answers the public point (`7F49` / `86`).
fn generate(
    door: &mut Door,
    st: &mut PivState,
    cmd: &Command,
    note: &mut Note,
) -> Result<Vec<u8>, StatusWord> {
    let Some((r, _, label)) = key_ref(cmd.p2).filter(|_| cmd.p1 == 0) else {
        return Err(StatusWord::WRONG_P1P2);
    };
    let alg = match tlv::next(&cmd.data) {
        Some((0xAC, inner, [])) => tlv::find(inner, 0x80).ok_or(StatusWord::WRONG_DATA)?,
        _ => return Err(StatusWord::WRONG_DATA),
    };
    if alg != [ALG_P256] {
        *note = Some("only ECC P-256 (algorithm 11) is supported".into());
        return Err(StatusWord::WRONG_DATA);
    }
    admin_and_pin(door, st, note)?;
    door.delete_id(&[r], false).map_err(|e| status_of(&e))?;
    let point = door
        .generate(&[r], &format!("{label} key"))
        .map_err(|e| status_of(&e))?;
    Ok(tlv::tlv(0x7F49, &tlv::tlv(0x86, &point)))
}

/// The management key, and (because the token seals private keys under the PIN) the PIN.
fn admin_and_pin(door: &mut Door, st: &PivState, note: &mut Note) -> Result<(), StatusWord> {
    if !st.admin {
        *note = Some("authenticate with the card management key (9B) first".into());
        return Err(StatusWord::SECURITY_NOT_SATISFIED);
    }
    if !(st.pin_verified && door.logged_in_user()) {
        *note = Some(
            "the token seals private keys under the PIN: verify the PIN first \
             (yubico-piv-tool -a verify-pin before -a generate)"
                .into(),
        );
        return Err(StatusWord::SECURITY_NOT_SATISFIED);
    }
    Ok(())
}

/// PUT DATA (Part 2 §3.3.1): a certificate for 9A/9C/9D/9E becomes a token certificate object
/// next to the private key it certifies.
fn put_data(
    door: &mut Door,
    st: &mut PivState,
    cmd: &Command,
    note: &mut Note,
) -> Result<Vec<u8>, StatusWord> {
    if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
        return Err(StatusWord::WRONG_P1P2);
    }
    let Some((tag, body)) = object_tag(&cmd.data) else {
        return Err(StatusWord::WRONG_DATA);
    };
    let Some((r, _, label)) = KEY_REFS.iter().copied().find(|(_, t, _)| *t == tag) else {
        *note = Some("only the certificate objects of 9A, 9C, 9D and 9E can be written".into());
        return Err(StatusWord::FUNCTION_NOT_SUPPORTED);
    };
    let cert = match tlv::next(body) {
        Some((0x53, inner, [])) => tlv::find(inner, 0x70).ok_or(StatusWord::WRONG_DATA)?,
        _ => return Err(StatusWord::WRONG_DATA),
    };
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|_| StatusWord::WRONG_DATA)?;
    if !st.admin {
        *note = Some("authenticate with the card management key (9B) first".into());
        return Err(StatusWord::SECURITY_NOT_SATISFIED);
    }
    let point = parsed.public_key().subject_public_key.data.to_vec();
    let sets = sets(door)?;
    // The certificate joins the set of the key it certifies; a certificate for no key on the
    // token is kept under the reference itself.
    let id = sets
        .iter()
        .find(|s| s.public_point.as_deref() == Some(&point[..]))
        .map_or_else(|| vec![r], |s| s.id.clone());
    door.delete_id(&id, true).map_err(|e| status_of(&e))?;
    door.store_certificate(&id, &format!("{label} certificate"), cert)
        .map_err(|e| status_of(&e))?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_unpadded_and_bad_fields_refused() {
        assert_eq!(
            unpad(b"1234\xFF\xFF\xFF\xFF").as_deref().map(Vec::as_slice),
            Some(&b"1234"[..])
        );
        assert_eq!(
            unpad(b"12345678").as_deref().map(Vec::as_slice),
            Some(&b"12345678"[..])
        );
        assert!(unpad(b"1234\xFF5\xFF\xFF").is_none());
        assert!(unpad(b"1234").is_none());
    }

    #[test]
    fn management_key_mutual_and_external() {
        let key = [7u8; 24];
        let mut st = PivState::default();
        let r = management_auth(&mut st, &key, Some(&[]), None, None).unwrap();
        let enc: [u8; 8] = r[4..12].try_into().unwrap();
        let w = tdes(&key, &enc, false);
        let c = [1u8; 8];
        let r2 = management_auth(&mut st, &key, Some(&w), Some(&c), Some(&[])).unwrap();
        assert!(st.admin);
        assert_eq!(&r2[4..12], &tdes(&key, &c, true));
        // A wrong witness proves nothing and ends the attempt.
        management_auth(&mut st, &key, Some(&[]), None, None).unwrap();
        assert_eq!(
            management_auth(&mut st, &key, Some(&[0; 8]), Some(&c), Some(&[])),
            Err(StatusWord::SECURITY_NOT_SATISFIED)
        );
        assert!(!st.admin);
        let r = management_auth(&mut st, &key, None, Some(&[]), None).unwrap();
        let ch: [u8; 8] = r[4..12].try_into().unwrap();
        management_auth(&mut st, &key, None, None, Some(&tdes(&key, &ch, true))).unwrap();
        assert!(st.admin);
    }
}
