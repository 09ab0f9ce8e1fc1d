//! The cases. Each is a function returning `Ok(())` when the token behaves as the cited section
//! of PKCS#11 2.40 (base spec §, or "mech §" for the current mechanisms document) requires.

use crate::{Ctx, Group};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::types::AuthPin;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;

/// Why a case did not pass.
#[derive(Debug)]
pub enum Check {
    Fail(String),
    Skip(String),
}

impl From<CkError> for Check {
    fn from(e: CkError) -> Check {
        Check::Fail(e.to_string())
    }
}

pub(crate) type R = Result<(), Check>;

/// One case of a suite: `C` is what it runs against (a token for the PKCS#11 cases, the token
/// and both servers for the flow scenarios).
pub struct Case<C: 'static = Ctx> {
    pub id: &'static str,
    pub group: Group,
    pub spec: &'static str,
    pub title: &'static str,
    /// Locks a PIN or otherwise changes the token for good: needs --destructive.
    pub destructive: bool,
    pub run: fn(&C) -> R,
}

// By hand: a derive would ask `C: Clone`, and a case is plain data whatever it runs against.
impl<C> Clone for Case<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Case<C> {}

/// Largest attribute the suite accepts before reading it: a hostile module's absurd length is a
/// failure to report, never an allocation.
const MAX_ATTRIBUTE: usize = 1 << 20;
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const LABEL: &[u8] = b"kilt-conformance";

fn rv<T>(r: Result<T, CkError>) -> Option<RvError> {
    match r {
        Err(CkError::Pkcs11(rv, _)) => Some(rv),
        _ => None,
    }
}

fn user_pin(ctx: &Ctx) -> AuthPin {
    crate::auth_pin(&ctx.options.user_pin)
}

fn so_pin(ctx: &Ctx) -> Result<AuthPin, Check> {
    ctx.options
        .so_pin
        .as_ref()
        .map(crate::auth_pin)
        .ok_or_else(|| Check::Skip("needs the SO PIN (--so-pin-source)".into()))
}

fn has(ctx: &Ctx, m: MechanismType) -> R {
    let list = ctx.pkcs11.get_mechanism_list(ctx.slot)?;
    if list.contains(&m) {
        Ok(())
    } else {
        Err(Check::Skip(format!("the token does not advertise {m}")))
    }
}

fn logged_in(ctx: &Ctx, rw: bool) -> Result<Session, Check> {
    let s = if rw {
        ctx.pkcs11.open_rw_session(ctx.slot)?
    } else {
        ctx.pkcs11.open_ro_session(ctx.slot)?
    };
    s.login(UserType::User, Some(&user_pin(ctx)))?;
    Ok(s)
}

/// Reads attributes after checking their announced sizes (hostile modules, §5.7).
fn get_checked(
    s: &Session,
    o: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>, Check> {
    for (t, info) in types.iter().zip(s.get_attribute_info(o, types)?) {
        if let AttributeInfo::Available(n) = info {
            ensure!(
                n <= MAX_ATTRIBUTE,
                "the module announced {n} bytes for {t}: nonsense length"
            );
        }
    }
    Ok(s.get_attributes(o, types)?)
}

/// A P-256 pair as session objects (nothing stays on the token).
fn session_pair(s: &Session) -> Result<(ObjectHandle, ObjectHandle), Check> {
    Ok(s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(false),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Verify(true),
            Attribute::Label(LABEL.to_vec()),
        ],
        &[
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Label(LABEL.to_vec()),
        ],
    )?)
}

/// The public key as an independent `p256` verifier.
fn verifier(s: &Session, public: ObjectHandle) -> Result<p256::ecdsa::VerifyingKey, Check> {
    let attrs = get_checked(s, public, &[AttributeType::EcPoint])?;
    let Some(Attribute::EcPoint(der)) = attrs.first() else {
        return Err(Check::Fail("no CKA_EC_POINT on the public key".into()));
    };
    // mech §2.3.3: DER OCTET STRING of the uncompressed point.
    let point = match der.as_slice() {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        other => {
            return Err(Check::Fail(format!(
                "CKA_EC_POINT is not a DER OCTET STRING of 65 bytes ({} bytes)",
                other.len()
            )));
        }
    };
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| Check::Fail("CKA_EC_POINT is not a point on P-256".into()))
}

fn check_sig(vk: &p256::ecdsa::VerifyingKey, digest: &[u8], sig: &[u8]) -> R {
    ensure!(
        sig.len() == 64,
        "signature is {} bytes, want r‖s of 64 (mech §2.3.1)",
        sig.len()
    );
    let sig = p256::ecdsa::Signature::from_slice(sig)
        .map_err(|_| Check::Fail("signature r or s out of range".into()))?;
    vk.verify_prehash(digest, &sig).map_err(|_| {
        Check::Fail("the signature does not verify with an independent verifier (p256)".into())
    })
}

// ---- baseline --------------------------------------------------------------------------------

fn info(ctx: &Ctx) -> R {
    let i = ctx.pkcs11.get_library_info()?;
    let v = i.cryptoki_version();
    ensure!(
        v.major() == 2 || v.major() == 3,
        "cryptokiVersion {}.{}",
        v.major(),
        v.minor()
    );
    ensure!(!i.manufacturer_id().is_empty(), "empty manufacturerID");
    Ok(())
}

fn slot_and_token(ctx: &Ctx) -> R {
    let si = ctx.pkcs11.get_slot_info(ctx.slot)?;
    ensure!(si.token_present(), "CKF_TOKEN_PRESENT is not set");
    let t = ctx.pkcs11.get_token_info(ctx.slot)?;
    ensure!(t.token_initialized(), "CKF_TOKEN_INITIALIZED is not set");
    ensure!(
        t.user_pin_initialized(),
        "CKF_USER_PIN_INITIALIZED is not set"
    );
    ensure!(
        t.min_pin_length() <= t.max_pin_length(),
        "ulMinPinLen > ulMaxPinLen"
    );
    Ok(())
}

fn mechanisms(ctx: &Ctx) -> R {
    let list = ctx.pkcs11.get_mechanism_list(ctx.slot)?;
    ensure!(!list.is_empty(), "no mechanisms");
    for m in list {
        let i = ctx.pkcs11.get_mechanism_info(ctx.slot, m)?;
        ensure!(
            i.min_key_size() <= i.max_key_size(),
            "{m}: min key size > max"
        );
    }
    let bogus = ctx
        .pkcs11
        .get_mechanism_info(ctx.slot, MechanismType::RSA_X_509);
    let list = ctx.pkcs11.get_mechanism_list(ctx.slot)?;
    if !list.contains(&MechanismType::RSA_X_509) {
        ensure!(
            rv(bogus) == Some(RvError::MechanismInvalid),
            "info of an unlisted mechanism is not CKR_MECHANISM_INVALID"
        );
    }
    Ok(())
}

fn session_states(ctx: &Ctx) -> R {
    let ro = ctx.pkcs11.open_ro_session(ctx.slot)?;
    let rw = ctx.pkcs11.open_rw_session(ctx.slot)?;
    ensure!(
        ro.get_session_info()?.session_state() == SessionState::RoPublic,
        "new RO session is not RO public"
    );
    ensure!(
        rw.get_session_info()?.session_state() == SessionState::RwPublic,
        "new RW session is not RW public"
    );
    rw.login(UserType::User, Some(&user_pin(ctx)))?;
    // Login is per application: every session of it changes state (§5.6, Table 6).
    ensure!(
        ro.get_session_info()?.session_state() == SessionState::RoUser,
        "the other session did not become RO user"
    );
    ensure!(
        rw.get_session_info()?.session_state() == SessionState::RwUser,
        "not RW user after login"
    );
    ro.logout()?;
    ensure!(
        rw.get_session_info()?.session_state() == SessionState::RwPublic,
        "logout did not return to public"
    );
    Ok(())
}

fn random(ctx: &Ctx) -> R {
    let s = ctx.pkcs11.open_ro_session(ctx.slot)?;
    let a = s.generate_random_vec(32)?;
    let b = s.generate_random_vec(32)?;
    ensure!(a.len() == 32 && b.len() == 32, "wrong lengths");
    ensure!(a != b && a != [0u8; 32], "random output repeats");
    Ok(())
}

fn digest_sha256(ctx: &Ctx) -> R {
    has(ctx, MechanismType::SHA256)?;
    let s = ctx.pkcs11.open_ro_session(ctx.slot)?;
    let want = sha2::Sha256::digest(b"abc").to_vec();
    ensure!(
        s.digest(&Mechanism::Sha256, b"abc")? == want,
        "SHA-256(\"abc\") is wrong"
    );
    s.digest_init(&Mechanism::Sha256)?;
    s.digest_update(b"a")?;
    s.digest_update(b"bc")?;
    ensure!(
        s.digest_final()? == want,
        "multi-part SHA-256 differs from single-part"
    );
    Ok(())
}

// ---- authentication token --------------------------------------------------------------------

fn login_twice(ctx: &Ctx) -> R {
    let s = logged_in(ctx, false)?;
    let again = s.login(UserType::User, Some(&user_pin(ctx)));
    ensure!(
        rv(again) == Some(RvError::UserAlreadyLoggedIn),
        "a second login is not CKR_USER_ALREADY_LOGGED_IN"
    );
    Ok(())
}

fn so_with_ro_session(ctx: &Ctx) -> R {
    let so = so_pin(ctx)?;
    let _ro = ctx.pkcs11.open_ro_session(ctx.slot)?;
    let rw = ctx.pkcs11.open_rw_session(ctx.slot)?;
    let r = rw.login(UserType::So, Some(&so));
    ensure!(
        rv(r) == Some(RvError::SessionReadOnlyExists),
        "the SO logged in while a read-only session was open"
    );
    Ok(())
}

fn wrong_pin_counts(ctx: &Ctx) -> R {
    let t = ctx.pkcs11.get_token_info(ctx.slot)?;
    if t.user_pin_count_low() || t.user_pin_final_try() || t.user_pin_locked() {
        return Err(Check::Skip(
            "the user PIN already has failed tries; not spending another".into(),
        ));
    }
    let s = ctx.pkcs11.open_ro_session(ctx.slot)?;
    let wrong = AuthPin::new("0000".repeat(2).into());
    ensure!(
        rv(s.login(UserType::User, Some(&wrong))) == Some(RvError::PinIncorrect),
        "a wrong PIN is not CKR_PIN_INCORRECT"
    );
    let t = ctx.pkcs11.get_token_info(ctx.slot)?;
    let counted = t.user_pin_count_low();
    s.login(UserType::User, Some(&user_pin(ctx)))?;
    ensure!(
        counted,
        "CKF_USER_PIN_COUNT_LOW not set after a wrong PIN (§5.5 Table 8): the try was not counted"
    );
    let t = ctx.pkcs11.get_token_info(ctx.slot)?;
    ensure!(
        !t.user_pin_count_low(),
        "CKF_USER_PIN_COUNT_LOW still set after a correct PIN"
    );
    Ok(())
}

fn lockout(ctx: &Ctx) -> R {
    let so = so_pin(ctx)?;
    let s = ctx.pkcs11.open_rw_session(ctx.slot)?;
    let wrong = AuthPin::new("00000001".into());
    let mut locked_after = None;
    for i in 1..=20 {
        match rv(s.login(UserType::User, Some(&wrong))) {
            Some(RvError::PinIncorrect) => {}
            Some(RvError::PinLocked) => {
                locked_after = Some(i - 1);
                break;
            }
            other => return Err(Check::Fail(format!("wrong PIN #{i} gave {other:?}"))),
        }
    }
    let flagged = ctx.pkcs11.get_token_info(ctx.slot)?.user_pin_locked();
    let correct = s.login(UserType::User, Some(&user_pin(ctx)));
    let correct_refused = matches!(correct, Err(CkError::Pkcs11(RvError::PinLocked, _)));
    if correct.is_ok() {
        s.logout()?;
    }
    // Restore the user PIN whatever happened (§5.6 C_InitPIN by the SO unblocks).
    s.login(UserType::So, Some(&so))?;
    s.init_pin(&user_pin(ctx))?;
    s.logout()?;
    let Some(n) = locked_after else {
        return Err(Check::Fail(
            "20 wrong PINs did not lock the user PIN".into(),
        ));
    };
    ensure!(flagged, "CKF_USER_PIN_LOCKED not set after {n} wrong PINs");
    ensure!(correct_refused, "the correct PIN was accepted while locked");
    s.login(UserType::User, Some(&user_pin(ctx)))?;
    Ok(())
}

fn private_objects_hidden(ctx: &Ctx) -> R {
    let s = logged_in(ctx, true)?;
    let label = b"kilt-conformance-private".to_vec();
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Label(label.clone()),
    ])?;
    ensure!(
        s.find_objects(&[Attribute::Label(label.clone())])?.len() == 1,
        "the user cannot see the private object"
    );
    s.logout()?;
    ensure!(
        s.find_objects(&[Attribute::Label(label)])?.is_empty(),
        "a private object is visible without login (§4.4 CKA_PRIVATE)"
    );
    Ok(())
}

fn generated_key_is_sensitive(ctx: &Ctx) -> R {
    has(ctx, MechanismType::ECC_KEY_PAIR_GEN)?;
    let s = logged_in(ctx, false)?;
    let (_, private) = session_pair(&s)?;
    let info = s.get_attribute_info(private, &[AttributeType::Value])?;
    ensure!(
        matches!(info.first(), Some(AttributeInfo::Sensitive)),
        "the private value of a sensitive key is readable: {info:?} (§5.7, CKR_ATTRIBUTE_SENSITIVE)"
    );
    let attrs = get_checked(
        &s,
        private,
        &[
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Local,
        ],
    )?;
    for a in &attrs {
        match a {
            Attribute::AlwaysSensitive(v) | Attribute::Local(v) => {
                ensure!(*v, "{a:?} on a generated sensitive key (§4.9)")
            }
            Attribute::NeverExtractable(_) => {}
            _ => {}
        }
    }
    let clear = s.update_attributes(private, &[Attribute::Sensitive(false)]);
    ensure!(
        clear.is_err(),
        "CKA_SENSITIVE went back to false (§4.9: may only become true)"
    );
    Ok(())
}

fn keygen_ec_p256(ctx: &Ctx) -> R {
    has(ctx, MechanismType::ECC_KEY_PAIR_GEN)?;
    let s = logged_in(ctx, false)?;
    let (public, private) = session_pair(&s)?;
    verifier(&s, public)?;
    let a = get_checked(
        &s,
        public,
        &[AttributeType::EcParams, AttributeType::KeyType],
    )?;
    ensure!(
        a.first() == Some(&Attribute::EcParams(P256.to_vec())),
        "CKA_EC_PARAMS is not the P-256 OID"
    );
    let p = get_checked(&s, private, &[AttributeType::Class, AttributeType::Sign])?;
    ensure!(
        p.first() == Some(&Attribute::Class(ObjectClass::PRIVATE_KEY)),
        "second handle is not a private key"
    );
    Ok(())
}

fn sign_ecdsa(ctx: &Ctx) -> R {
    has(ctx, MechanismType::ECDSA)?;
    let s = logged_in(ctx, false)?;
    let (public, private) = session_pair(&s)?;
    let vk = verifier(&s, public)?;
    let digest = sha2::Sha256::digest(b"kilt conformance: raw ECDSA");
    // cryptoki asks for the length with a NULL buffer first, then signs (§5.2).
    let sig = s.sign(&Mechanism::Ecdsa, private, &digest)?;
    check_sig(&vk, &digest, &sig)
}

fn sign_ecdsa_sha256(ctx: &Ctx) -> R {
    has(ctx, MechanismType::ECDSA_SHA256)?;
    let s = logged_in(ctx, false)?;
    let (public, private) = session_pair(&s)?;
    let vk = verifier(&s, public)?;
    let msg = b"kilt conformance: ECDSA with SHA-256".repeat(10);
    let sig = s.sign(&Mechanism::EcdsaSha256, private, &msg)?;
    check_sig(&vk, &sha2::Sha256::digest(&msg), &sig)
}

fn sign_ecdsa_sha256_multipart(ctx: &Ctx) -> R {
    has(ctx, MechanismType::ECDSA_SHA256)?;
    let s = logged_in(ctx, false)?;
    let (public, private) = session_pair(&s)?;
    let vk = verifier(&s, public)?;
    let msg = b"kilt conformance: multi-part".repeat(50);
    s.sign_init(&Mechanism::EcdsaSha256, private)?;
    for chunk in msg.chunks(33) {
        s.sign_update(chunk)?;
    }
    let sig = s.sign_final()?;
    check_sig(&vk, &sha2::Sha256::digest(&msg), &sig)
}

fn verify(ctx: &Ctx) -> R {
    has(ctx, MechanismType::ECDSA)?;
    let s = logged_in(ctx, false)?;
    let (public, private) = session_pair(&s)?;
    let digest = [0x5au8; 32];
    let sig = s.sign(&Mechanism::Ecdsa, private, &digest)?;
    s.verify(&Mechanism::Ecdsa, public, &digest, &sig)?;
    let mut bad = sig.clone();
    bad[10] ^= 1;
    let r = s.verify(&Mechanism::Ecdsa, public, &digest, &bad);
    ensure!(
        rv(r) == Some(RvError::SignatureInvalid),
        "a corrupted signature is not CKR_SIGNATURE_INVALID"
    );
    Ok(())
}

fn sign_needs_login(ctx: &Ctx) -> R {
    has(ctx, MechanismType::ECDSA)?;
    let s = logged_in(ctx, false)?;
    let (_, private) = session_pair(&s)?;
    s.logout()?;
    let r = s.sign(&Mechanism::Ecdsa, private, &[1u8; 32]);
    ensure!(
        r.is_err(),
        "a private key signed without login (§4.4, §5.6 Table 7)"
    );
    Ok(())
}

fn length_protocol(ctx: &Ctx) -> R {
    has(ctx, MechanismType::SHA256)?;
    let s = ctx.pkcs11.open_ro_session(ctx.slot)?;
    // cryptoki's digest is C_DigestInit, C_Digest(NULL) for the length, C_Digest(buffer): a
    // module whose length query ends the operation fails the third call (§5.2).
    match s.digest(&Mechanism::Sha256, b"length protocol") {
        Ok(d) => ensure!(d.len() == 32, "digest of {} bytes", d.len()),
        Err(CkError::Pkcs11(RvError::OperationNotInitialized, f)) => {
            return Err(Check::Fail(format!(
                "the length query ended the operation ({f}): §5.2 says it must stay active"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let sl = logged_in(ctx, false)?;
    let (_, private) = session_pair(&sl)?;
    match sl.sign(&Mechanism::Ecdsa, private, &[3u8; 32]) {
        Ok(sig) => ensure!(sig.len() == 64, "signature of {} bytes", sig.len()),
        Err(CkError::Pkcs11(RvError::OperationNotInitialized, f)) => {
            return Err(Check::Fail(format!(
                "the length query ended the signing operation ({f}) (§5.2)"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

// ---- extended: object management ---------------------------------------------------------------

fn create_find_destroy(ctx: &Ctx) -> R {
    let s = ctx.pkcs11.open_rw_session(ctx.slot)?;
    let label = b"kilt-conformance-data".to_vec();
    let o = s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Private(false),
        Attribute::Token(false),
        Attribute::Label(label.clone()),
        Attribute::Value(b"payload".to_vec()),
    ])?;
    ensure!(
        s.find_objects(&[Attribute::Label(label.clone())])? == vec![o],
        "find by label did not return exactly the object"
    );
    let v = get_checked(&s, o, &[AttributeType::Value])?;
    ensure!(
        v.first() == Some(&Attribute::Value(b"payload".to_vec())),
        "CKA_VALUE changed: {v:?}"
    );
    s.destroy_object(o)?;
    ensure!(
        s.find_objects(&[Attribute::Label(label)])?.is_empty(),
        "the object is still found after C_DestroyObject"
    );
    Ok(())
}

fn template_rules(ctx: &Ctx) -> R {
    let s = ctx.pkcs11.open_rw_session(ctx.slot)?;
    let r = s.create_object(&[Attribute::Token(false), Attribute::Label(LABEL.to_vec())]);
    ensure!(
        rv(r) == Some(RvError::TemplateIncomplete),
        "an object without CKA_CLASS is not CKR_TEMPLATE_INCOMPLETE (§4.1.1)"
    );
    let o = s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Private(false),
        Attribute::Token(false),
    ])?;
    let info = s.get_attribute_info(o, &[AttributeType::Sign])?;
    ensure!(
        matches!(info.first(), Some(AttributeInfo::TypeInvalid)),
        "CKA_SIGN of a data object is not CKR_ATTRIBUTE_TYPE_INVALID: {info:?}"
    );
    Ok(())
}

fn read_only_session(ctx: &Ctx) -> R {
    let s = ctx.pkcs11.open_ro_session(ctx.slot)?;
    let label = b"kilt-conformance-ro".to_vec();
    let r = s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Private(false),
        Attribute::Token(true),
        Attribute::Label(label.clone()),
    ]);
    if let Ok(o) = r {
        // Clean the token up before reporting.
        let rw = ctx.pkcs11.open_rw_session(ctx.slot)?;
        let _ = rw.destroy_object(o);
        return Err(Check::Fail(
            "a token object was created in a read-only session (§5.6 Table 7)".into(),
        ));
    }
    ensure!(
        rv(r) == Some(RvError::SessionReadOnly),
        "not CKR_SESSION_READ_ONLY"
    );
    Ok(())
}

fn find_many(ctx: &Ctx) -> R {
    let s = ctx.pkcs11.open_rw_session(ctx.slot)?;
    let label = b"kilt-conformance-many".to_vec();
    let mut made = vec![];
    for i in 0..25u8 {
        made.push(s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Private(false),
            Attribute::Token(false),
            Attribute::Label(label.clone()),
            Attribute::Value(vec![i]),
        ])?);
    }
    // cryptoki pages C_FindObjects ten at a time.
    let mut found = s.find_objects(&[Attribute::Label(label)])?;
    found.sort_by_key(|h| h.handle());
    made.sort_by_key(|h| h.handle());
    ensure!(
        found == made,
        "found {} of {} objects, or other handles",
        found.len(),
        made.len()
    );
    Ok(())
}

// ---- public certificates token -----------------------------------------------------------------

fn certificate_public(ctx: &Ctx) -> R {
    let cert = include_bytes!("../fixtures/cert.der");
    let id = b"kilt-conformance-cert".to_vec();
    let s = ctx.pkcs11.open_rw_session(ctx.slot)?;
    // Subject of the fixture (DER Name), as the creator must give it (§4.6.3).
    let subject =
        x509_subject(cert).ok_or_else(|| Check::Fail("fixture certificate unreadable".into()))?;
    s.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::Private(false),
        Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
        Attribute::Token(false),
        Attribute::Id(id.clone()),
        Attribute::Subject(subject),
        Attribute::Value(cert.to_vec()),
    ])?;
    let found = s.find_objects(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::Private(false),
        Attribute::Id(id),
    ])?;
    ensure!(
        found.len() == 1,
        "certificate not found by CKA_ID without login"
    );
    let v = get_checked(&s, found[0], &[AttributeType::Value])?;
    ensure!(
        v.first() == Some(&Attribute::Value(cert.to_vec())),
        "certificate value differs"
    );
    Ok(())
}

/// The DER of a certificate's subject Name (RFC 5280 §4.1.2.6).
fn x509_subject(der: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(c.subject().as_raw().to_vec())
}

// ---- token behaviour ---------------------------------------------------------------------------

fn removal(ctx: &Ctx) -> R {
    if !ctx.is_kilt {
        return Err(Check::Skip(
            "removal needs a person to pull the token; automated for kilt's emulator only".into(),
        ));
    }
    // Through kilt-token, another process: opening the token file here would put a second
    // SQLite into this process, and its closing the file drops the module's POSIX locks on it.
    let tool = kilt_token_tool(ctx)?;
    let plug = |verb: &str| -> R {
        let out = std::process::Command::new(&tool)
            .args([verb, "--slot", &ctx.slot.id().to_string()])
            .output()
            .map_err(|e| Check::Fail(format!("cannot run {}: {e}", tool.display())))?;
        ensure!(
            out.status.success(),
            "kilt-token {verb} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    };
    let s = logged_in(ctx, false)?;
    while ctx.pkcs11.get_slot_event()?.is_some() {}
    plug("unplug")?;
    let during = rv(s.generate_random_vec(8));
    let event = ctx.pkcs11.get_slot_event()?;
    plug("plug")?;
    ensure!(
        during == Some(RvError::DeviceRemoved),
        "a call after removal gave {during:?}, not CKR_DEVICE_REMOVED (§5.1)"
    );
    ensure!(
        event == Some(ctx.slot),
        "no slot event for the removal (§5.17 C_WaitForSlotEvent)"
    );
    let after = rv(s.generate_random_vec(8));
    ensure!(
        after == Some(RvError::SessionHandleInvalid),
        "a session survived removal: {after:?}"
    );
    Ok(())
}

/// `kilt-token` beside the module (a build tree), else on PATH.
fn kilt_token_tool(ctx: &Ctx) -> Result<std::path::PathBuf, Check> {
    let beside = ctx.options.module.with_file_name("kilt-token");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("kilt-token"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Check::Skip("removal needs kilt-token (beside the module or on PATH)".into())
        })
}

// ---- hostile module ----------------------------------------------------------------------------

fn hostile_lengths(ctx: &Ctx) -> R {
    let s = ctx.pkcs11.open_rw_session(ctx.slot)?;
    let o = s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Private(false),
        Attribute::Token(false),
        Attribute::Label(LABEL.to_vec()),
    ])?;
    // Never read before the announced sizes are sane (a hostile module must not crash the suite).
    get_checked(
        &s,
        o,
        &[
            AttributeType::Label,
            AttributeType::Value,
            AttributeType::Class,
        ],
    )?;
    Ok(())
}

fn hostile_handles(ctx: &Ctx) -> R {
    let s = ctx.pkcs11.open_rw_session(ctx.slot)?;
    let label = b"kilt-conformance-handles".to_vec();
    let o = s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Private(false),
        Attribute::Token(false),
        Attribute::Label(label.clone()),
    ])?;
    let found = s.find_objects(&[Attribute::Label(label)])?;
    for h in &found {
        ensure!(
            s.get_attribute_info(*h, &[AttributeType::Class]).is_ok(),
            "C_FindObjects returned handle {h} that does not exist"
        );
    }
    ensure!(
        found == vec![o],
        "C_FindObjects returned {found:?}, want [{o}]"
    );
    Ok(())
}

/// The cases run before `C_Initialize`, with the library down (each leaves it so).
pub static LIBRARY_CASES: std::sync::LazyLock<Vec<Case<crate::raw::Raw>>> =
    std::sync::LazyLock::new(crate::calls::library_cases);

/// Every case run on the initialised token, in the order they run.
pub static CASES: std::sync::LazyLock<Vec<Case>> = std::sync::LazyLock::new(|| {
    let mut all = BASE.to_vec();
    all.extend(crate::calls::argument_cases());
    all.extend(crate::calls::length_cases());
    all.extend(crate::machines::machine_cases());
    all.extend(crate::gost::gost_cases());
    all
});

/// The first cases, through `cryptoki`.
static BASE: &[Case] = &[
    case!(
        "info",
        Baseline,
        "§5.4 C_GetInfo",
        "library information",
        info
    ),
    case!(
        "slot-and-token",
        Baseline,
        "§5.5 C_GetTokenInfo",
        "token present, initialised, PIN set",
        slot_and_token
    ),
    case!(
        "mechanisms",
        Baseline,
        "§5.5 C_GetMechanismInfo",
        "mechanism list and info",
        mechanisms
    ),
    case!(
        "session-states",
        Baseline,
        "§5.6 Table 6",
        "session states follow login",
        session_states
    ),
    case!(
        "random",
        Baseline,
        "§5.15 C_GenerateRandom",
        "random numbers",
        random
    ),
    case!(
        "digest-sha256",
        Baseline,
        "mech §2.16 CKM_SHA256",
        "SHA-256 single and multi-part",
        digest_sha256
    ),
    case!(
        "length-protocol",
        Baseline,
        "§5.2 output lengths",
        "length query keeps the operation",
        length_protocol
    ),
    case!(
        "login-twice",
        AuthenticationToken,
        "§5.6 C_Login",
        "second login refused",
        login_twice
    ),
    case!(
        "so-with-ro-session",
        AuthenticationToken,
        "§5.6 C_Login",
        "SO refused while a RO session exists",
        so_with_ro_session
    ),
    case!(
        "wrong-pin-counts",
        AuthenticationToken,
        "§5.5 Table 8 flags",
        "a wrong PIN is counted",
        wrong_pin_counts
    ),
    case!(
        "pin-lockout",
        AuthenticationToken,
        "§5.6 C_Login, C_InitPIN",
        "wrong PINs lock; SO unblocks",
        lockout,
        destructive
    ),
    case!(
        "private-objects-hidden",
        AuthenticationToken,
        "§4.4 CKA_PRIVATE",
        "private objects need login",
        private_objects_hidden
    ),
    case!(
        "generated-key-is-sensitive",
        AuthenticationToken,
        "§4.9, §5.7",
        "generated keys stay sensitive",
        generated_key_is_sensitive
    ),
    case!(
        "keygen-ec-p256",
        AuthenticationToken,
        "mech §2.3.5",
        "EC P-256 key pair",
        keygen_ec_p256
    ),
    case!(
        "sign-ecdsa",
        AuthenticationToken,
        "mech §2.3.6 CKM_ECDSA",
        "raw ECDSA verifies independently",
        sign_ecdsa
    ),
    case!(
        "sign-ecdsa-sha256",
        AuthenticationToken,
        "mech §2.3.6 CKM_ECDSA_SHA256",
        "ECDSA-SHA256 verifies independently",
        sign_ecdsa_sha256
    ),
    case!(
        "sign-ecdsa-sha256-multipart",
        AuthenticationToken,
        "§5.11 C_SignUpdate",
        "multi-part ECDSA-SHA256",
        sign_ecdsa_sha256_multipart
    ),
    case!(
        "verify",
        AuthenticationToken,
        "§5.12 C_Verify",
        "token verifies and rejects",
        verify
    ),
    case!(
        "sign-needs-login",
        AuthenticationToken,
        "§4.4, §5.6 Table 7",
        "no signing after logout",
        sign_needs_login
    ),
    case!(
        "create-find-destroy",
        Extended,
        "§5.7",
        "data object life cycle",
        create_find_destroy
    ),
    case!(
        "template-rules",
        Extended,
        "§4.1.1, §5.7",
        "incomplete templates, invalid types",
        template_rules
    ),
    case!(
        "read-only-session",
        Extended,
        "§5.6 Table 7",
        "no token objects in RO sessions",
        read_only_session
    ),
    case!(
        "find-many",
        Extended,
        "§5.7 C_FindObjects",
        "find pages through 25 objects",
        find_many
    ),
    case!(
        "certificate-public",
        PublicCertificatesToken,
        "§4.6.3",
        "X.509 certificate readable without login",
        certificate_public
    ),
    case!(
        "removal",
        TokenBehaviour,
        "§5.1 CKR_DEVICE_REMOVED, §5.17",
        "removal ends sessions",
        removal
    ),
    case!(
        "hostile-lengths",
        HostileModule,
        "§5.7 C_GetAttributeValue",
        "announced lengths are sane",
        hostile_lengths
    ),
    case!(
        "hostile-handles",
        HostileModule,
        "§5.7 C_FindObjects",
        "found handles exist",
        hostile_handles
    ),
];
