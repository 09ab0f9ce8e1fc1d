//! The emulator: slots, sessions, login state and operations, in PKCS#11's terms but safe Rust.
//!
//! Locking: the session table is an `RwLock` read on every call; each session has its own mutex,
//! so threads with their own sessions never wait on each other; a token's store is locked only for
//! the short `data_version` check and for writes.

use crate::crypto::{self, KeyAlgorithm, PrivateKey};
use crate::error::{Error, Result};
use crate::object::{self, Attr, AttrType, AttrValue, Class, Object, Origin};
use crate::pin::{Pin, PinAgent, PinSource};
use crate::profile::{Profile, TimedOp};
use crate::store::{PinOwner, Store, Summary};
use crate::token::{self, EnvOverrides, Token};
use cryptoki_sys::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A slot number.
pub type SlotId = u64;

/// A session handle (never 0, never reused while the emulator lives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(pub u64);

/// An object handle: token objects keep theirs across processes; session objects live above
/// [`SESSION_OBJECT_BASE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectHandle(pub u64);

/// First handle of session objects, far above any token object's row id.
pub const SESSION_OBJECT_BASE: u64 = 1 << 40;

/// How often a blocking `C_WaitForSlotEvent` looks at the tokens.
pub const SLOT_EVENT_POLL: Duration = Duration::from_millis(20);

/// File name of the token in slot `id`.
pub fn token_file(dir: &Path, id: SlotId) -> PathBuf {
    dir.join(format!("slot-{id}.kilt"))
}

/// Where tokens live: `KILT_TOKEN_DIR`, else `$XDG_DATA_HOME/kilt/tokens`, else
/// `~/.local/share/kilt/tokens`.
pub fn default_token_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KILT_TOKEN_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    data.join("kilt/tokens")
}

/// How an emulator is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Folder of the token files.
    pub token_dir: PathBuf,
    /// Profile of tokens initialised in the spare slot.
    pub profile: Profile,
    /// Who answers a protected-authentication-path login.
    pub pin_agent: PinAgent,
    /// Latency and fault settings from the environment.
    pub env: EnvOverrides,
    /// `KILT_LOGIN`: the user PIN the module logs in with when an application opens a session
    /// on a token it is not logged in to, as vendor middleware with a PIN cache does (JaCarta's
    /// single sign-on). For programs that cannot ask for a PIN: a headless browser, a service.
    pub login_on_open: Option<PinSource>,
}

impl Config {
    /// Everything from the environment: `KILT_TOKEN_DIR`, `KILT_PROFILE`, `KILT_PIN_AGENT`,
    /// `KILT_LOGIN`, `KILT_LATENCY`, `KILT_FAULTS`. A `KILT_LOGIN` that is not a PIN source
    /// (`env:VAR` or `file:PATH`) is refused here, so the module does not start half-configured.
    pub fn from_env() -> Result<Config> {
        let profile = match std::env::var("KILT_PROFILE") {
            Ok(p) if !p.is_empty() => Profile::load(&p)?,
            _ => Profile::default_profile(),
        };
        Ok(Config {
            token_dir: default_token_dir(),
            profile,
            pin_agent: PinAgent::from_env(),
            env: EnvOverrides::from_env(),
            login_on_open: match std::env::var("KILT_LOGIN") {
                Ok(v) if !v.is_empty() => Some(match v.parse::<PinSource>() {
                    Ok(PinSource::Prompt) | Err(_) => {
                        return Err(Error::PinSourceUnavailable(format!(
                            "KILT_LOGIN={v:?} is not env:VAR or file:PATH"
                        )));
                    }
                    Ok(source) => source,
                }),
                _ => None,
            },
        })
    }

    /// Defaults with tokens in `dir` (no environment consulted): for tests and embedding.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Config {
        Config {
            token_dir: dir.into(),
            profile: Profile::default_profile(),
            pin_agent: PinAgent::Cancel,
            env: EnvOverrides::default(),
            login_on_open: None,
        }
    }
}

/// A slot's state as `C_GetSlotInfo` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    pub description: String,
    pub manufacturer: String,
    pub token_present: bool,
    pub hardware_version: (u8, u8),
    pub firmware_version: (u8, u8),
}

/// The state of one PIN, as token flags show it (PKCS#11 2.40 §5.4 CK_TOKEN_INFO).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinStatus {
    pub initialized: bool,
    pub tries_left: u32,
    pub count_low: bool,
    pub final_try: bool,
    pub locked: bool,
    pub to_be_changed: bool,
}

/// A token's state as `C_GetTokenInfo` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub initialized: bool,
    pub protected_authentication_path: bool,
    pub user_pin: PinStatus,
    pub so_pin: PinStatus,
    pub sessions: u64,
    pub rw_sessions: u64,
    pub min_pin_len: u64,
    pub max_pin_len: u64,
    pub hardware_version: (u8, u8),
    pub firmware_version: (u8, u8),
}

/// Session states of PKCS#11 2.40 §5.6 (Table 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    RoPublic,
    RoUser,
    RwPublic,
    RwUser,
    RwSo,
}

/// What `C_GetSessionInfo` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub slot: SlotId,
    pub state: SessionState,
    pub read_write: bool,
}

/// A user type for `C_Login`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserType {
    So,
    User,
    ContextSpecific,
}

/// The result of reading one attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrResult {
    Value(Vec<u8>),
    Sensitive,
    Invalid,
}

/// One supported mechanism and its `CK_MECHANISM_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MechanismInfo {
    pub mechanism: CK_MECHANISM_TYPE,
    pub min_key_bits: u64,
    pub max_key_bits: u64,
    pub flags: CK_FLAGS,
}

/// The mechanisms of a device with `profile` (DESIGN.md): EC P-256 generation, ECDSA,
/// ECDSA-SHA256 and SHA-256; and, when the profile offers GOST, GOST R 34.10 generation, signing
/// without and with hashing, and the GOST R 34.11-94 digest (2.40 curr. mech., "GOST R 34.10-2001"
/// and "GOST R 34.11-94"), with key sizes spanning the curves it offers.
pub fn mechanisms(profile: &Profile) -> Vec<MechanismInfo> {
    use crate::profile::Algorithm;
    let mut out = vec![];
    let offers = |a| profile.algorithms.contains(&a);
    if offers(Algorithm::P256) {
        // PKCS#11 2.40 curr. mech. §2.3: EC capability flags describe the supported curves.
        let ec = CKF_HW | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
        let info = |mechanism, flags| MechanismInfo {
            mechanism,
            min_key_bits: 256,
            max_key_bits: 256,
            flags,
        };
        out.extend([
            info(CKM_EC_KEY_PAIR_GEN, ec | CKF_GENERATE_KEY_PAIR),
            info(CKM_ECDSA, ec | CKF_SIGN | CKF_VERIFY),
            info(CKM_ECDSA_SHA256, ec | CKF_SIGN | CKF_VERIFY),
        ]);
    }
    out.push(MechanismInfo {
        mechanism: CKM_SHA256,
        min_key_bits: 0,
        max_key_bits: 0,
        flags: CKF_HW | CKF_DIGEST,
    });
    let gost: Vec<u64> = [(Algorithm::Gost2004, 256), (Algorithm::Gost2015_512, 512)]
        .into_iter()
        .filter(|(a, _)| offers(*a))
        .map(|(_, bits)| bits)
        .collect();
    if let (Some(&min), Some(&max)) = (gost.iter().min(), gost.iter().max()) {
        let info = |mechanism, flags| MechanismInfo {
            mechanism,
            min_key_bits: min,
            max_key_bits: max,
            flags: CKF_HW | flags,
        };
        out.extend([
            info(CKM_GOSTR3410_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
            info(CKM_GOSTR3410, CKF_SIGN | CKF_VERIFY),
            info(CKM_GOSTR3410_WITH_GOSTR3411, CKF_SIGN | CKF_VERIFY),
        ]);
        if offers(Algorithm::Gost2004) {
            out.push(MechanismInfo {
                mechanism: CKM_GOSTR3411,
                min_key_bits: 0,
                max_key_bits: 0,
                flags: CKF_HW | CKF_DIGEST,
            });
        }
    }
    out
}

/// `CKR_MECHANISM_INVALID` unless the session's token offers `kind`.
fn offered(s: &Session, kind: CK_MECHANISM_TYPE) -> Result<()> {
    if s.token.mechanisms().iter().any(|m| m.mechanism == kind) {
        Ok(())
    } else {
        Err(Error::MechanismInvalid(kind))
    }
}

/// A mechanism as a caller passes it: type and parameter bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mechanism {
    pub kind: CK_MECHANISM_TYPE,
    pub param: Vec<u8>,
}

impl Mechanism {
    /// A mechanism without parameter.
    pub fn new(kind: CK_MECHANISM_TYPE) -> Mechanism {
        Mechanism {
            kind,
            param: vec![],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignMech {
    /// CKM_ECDSA: the input is the digest; single-part only (curr. mech. §2.3.6, Table 2).
    Ecdsa,
    /// CKM_ECDSA_SHA256: hashes the input; single- and multi-part.
    EcdsaSha256,
    /// CKM_GOSTR3410: the input is the digest, as long as the curve's integers; single-part
    /// only (2.40 curr. mech., "GOST R 34.10-2001 without hashing").
    Gost,
    /// CKM_GOSTR3410_WITH_GOSTR3411: hashes the input with the hash the mechanism parameter
    /// names, or else the key's `CKA_GOSTR3411_PARAMS`; single- and multi-part.
    GostWithHash(Option<crypto::HashKind>),
}

impl SignMech {
    fn from(m: &Mechanism) -> Result<SignMech> {
        let kind = match m.kind {
            CKM_ECDSA => SignMech::Ecdsa,
            CKM_ECDSA_SHA256 => SignMech::EcdsaSha256,
            CKM_GOSTR3410 => SignMech::Gost,
            // The parameter, when given, is the DER OID of a GOST R 34.11 parameter set.
            CKM_GOSTR3410_WITH_GOSTR3411 if !m.param.is_empty() => {
                match crypto::gost_hash(&m.param) {
                    Some(h) => return Ok(SignMech::GostWithHash(Some(h))),
                    None => return Err(Error::MechanismParamInvalid),
                }
            }
            CKM_GOSTR3410_WITH_GOSTR3411 => SignMech::GostWithHash(None),
            other => return Err(Error::MechanismInvalid(other)),
        };
        if !m.param.is_empty() {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(kind)
    }

    /// The mechanism settled for `key`: GOST mechanisms need a GOST key, ECDSA a P-256 one
    /// (`CKR_KEY_TYPE_INCONSISTENT`), and hashing with the key's own hash gets it here.
    fn for_key(self, key: &Object) -> Result<(SignMech, crypto::KeyAlgorithm)> {
        let alg = key.key_algorithm().ok_or(Error::KeyTypeInconsistent)?;
        let gost = matches!(alg, crypto::KeyAlgorithm::Gost(_));
        match self {
            SignMech::Ecdsa | SignMech::EcdsaSha256 if !gost => Ok((self, alg)),
            SignMech::Gost if gost => Ok((self, alg)),
            SignMech::GostWithHash(h) => match alg {
                crypto::KeyAlgorithm::Gost(c) => {
                    let h = h
                        .or_else(|| key.gost_hash())
                        .unwrap_or_else(|| crypto::default_gost_hash(c));
                    Ok((SignMech::GostWithHash(Some(h)), alg))
                }
                crypto::KeyAlgorithm::P256 => Err(Error::KeyTypeInconsistent),
            },
            _ => Err(Error::KeyTypeInconsistent),
        }
    }

    /// Raw mechanisms sign a digest given whole: single-part only.
    fn single_part_only(self) -> bool {
        matches!(self, SignMech::Ecdsa | SignMech::Gost)
    }

    /// The hash multi-part input feeds.
    fn hash(self) -> crypto::HashKind {
        match self {
            SignMech::GostWithHash(Some(h)) => h,
            _ => crypto::HashKind::Sha256,
        }
    }

    /// What a single-part call signs or verifies of `data`.
    fn digest_of(self, data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
        match self {
            SignMech::Ecdsa | SignMech::Gost => std::borrow::Cow::Borrowed(data),
            SignMech::EcdsaSha256 | SignMech::GostWithHash(_) => {
                std::borrow::Cow::Owned(self.hash().digest(data))
            }
        }
    }
}

/// Which kind of call finishes an operation: `C_Digest`/`C_Sign`/`C_Verify` (single-part) or
/// `*Final` (multi-part). The first call that shows it decides (PKCS#11 2.40 §5.10–§5.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Single,
    Multi,
}

/// The operations of a session, for ending one early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Digest,
    Sign,
    Verify,
    Find,
}

/// Input of a digest, sign or verify operation, hashed with `hash` when multi-part.
struct Input {
    hash: crypto::HashKind,
    state: InputState,
}

enum InputState {
    /// Nothing yet decides whether it is single- or multi-part.
    Empty,
    /// A single-part call asked for its output length: only that call may finish it.
    Single,
    /// Multi-part: updates feed a hash.
    Hashing(Box<crypto::Hasher>),
}

impl Input {
    fn new(hash: crypto::HashKind) -> Input {
        Input {
            hash,
            state: InputState::Empty,
        }
    }

    /// Feeds a multi-part update (the first one starts the hash).
    fn feed(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.state {
            InputState::Empty => {
                let mut h = crypto::Hasher::new(self.hash);
                h.update(data);
                self.state = InputState::Hashing(Box::new(h));
            }
            InputState::Hashing(h) => h.update(data),
            // §5.10: C_DigestUpdate after C_Digest's length query is the wrong kind of call.
            InputState::Single => return Err(Error::OperationActive),
        }
        Ok(())
    }

    /// Settles which kind of call finishes the operation; the other kind is
    /// `CKR_OPERATION_ACTIVE` (§5.10: C_Digest cannot finish a multi-part operation).
    fn commit(&mut self, part: Part) -> Result<()> {
        match (&self.state, part) {
            (InputState::Empty, Part::Single) => self.state = InputState::Single,
            (InputState::Empty, Part::Multi) => {
                self.state = InputState::Hashing(Box::new(crypto::Hasher::new(self.hash)))
            }
            (InputState::Single, Part::Single) | (InputState::Hashing(_), Part::Multi) => {}
            _ => return Err(Error::OperationActive),
        }
        Ok(())
    }

    /// The digest of everything fed.
    fn finish(self) -> Vec<u8> {
        match self.state {
            InputState::Empty | InputState::Single => self.hash.digest(&[]),
            InputState::Hashing(h) => (*h).finish(),
        }
    }
}

struct SignOp {
    mech: SignMech,
    key: Arc<crypto::PrivateKey>,
    input: Input,
}

struct VerifyOp {
    mech: SignMech,
    alg: crypto::KeyAlgorithm,
    public: Vec<u8>,
    input: Input,
}

struct FindOp {
    results: Vec<u64>,
    pos: usize,
}

struct Session {
    handle: SessionHandle,
    slot: Arc<Slot>,
    token: Arc<Token>,
    insertions: u64,
    find: Option<FindOp>,
    sign: Option<SignOp>,
    verify: Option<VerifyOp>,
    digest: Option<Input>,
    /// The last `C_SignInit` that passed every check, with the session's own copy of its key.
    signing: Option<Signing>,
}

/// A session's last checked `C_SignInit` (see [`Emulator::sign_init`]).
struct Signing {
    handle: u64,
    /// The token's generation read before the checks: any change since moves it.
    generation: u64,
    mech: Mechanism,
    kind: SignMech,
    /// The session's own copy of the key: threads signing with one key through one shared key
    /// object write its reference counts (kilt's `Arc`, aws-lc's `EVP_PKEY`) beside the data
    /// every signature reads; two threads then scaled 1.72–1.80× one, against 1.82–1.92× with
    /// a copy each (kilt-bench, same runs' aws-lc-rs alone 1.89–1.94×). A copy costs one public
    /// point computation, once per session and key.
    key: Arc<crypto::PrivateKey>,
}

struct SessionEntry {
    slot: SlotId,
    read_write: bool,
    inner: Mutex<Session>,
}

struct SessionObject {
    owner: SessionHandle,
    obj: Arc<Object>,
}

/// What a slot holds. A token file is opened (SQLite connection, cached objects) only when a
/// call needs more of it than its presence, so a folder of thousands of tokens costs a directory
/// listing until an application picks one.
enum Held {
    /// The spare slot's blank token (no file yet).
    Spare,
    /// A token file, not opened by this process (or closed again after a look).
    File,
    /// Opened only to be looked at (slot or token info, a label search): closed again when more
    /// than [`LOOKS_OPEN`] are, so listing every token's info keeps memory bounded.
    Looked(Arc<Token>),
    /// Opened for sessions: stays open (its logins, counted faults and cached keys are here).
    Open(Arc<Token>),
}

/// How many tokens opened only to be looked at stay open (SQLite connection and cache, about
/// 200 KB each).
pub const LOOKS_OPEN: usize = 16;

/// A slot's token as the info calls read it.
enum View {
    /// The spare slot's blank token.
    Blank,
    /// The summary of a token not open, with its parsed profile.
    Summary(Summary, Arc<Profile>),
    Token(Arc<Token>),
}

impl View {
    fn label(&self) -> String {
        match self {
            View::Blank => String::new(),
            View::Summary(s, _) => s.label.clone(),
            View::Token(t) => t.label(),
        }
    }

    fn serial(&self) -> String {
        match self {
            View::Blank => String::new(),
            View::Summary(s, _) => s.serial.clone(),
            View::Token(t) => t.serial(),
        }
    }

    /// The token's profile (the configured one for a blank token).
    fn profile<'a>(&'a self, blank: &'a Profile) -> &'a Profile {
        match self {
            View::Blank => blank,
            View::Summary(_, p) => p,
            View::Token(t) => t.profile(),
        }
    }

    /// A PIN's tries left, whether it failed since its last success, and whether it is to be
    /// changed; `None` when it is not set.
    fn pin(&self, who: PinOwner) -> Option<(u32, bool, bool)> {
        match self {
            View::Blank => None,
            View::Summary(s, _) => s.pin(who),
            View::Token(t) => t
                .pin_record(who)
                .map(|r| (r.tries_left, r.failed_since_ok, r.to_be_changed)),
        }
    }
}

/// Presence, and the insertion count when the token is open (a token not opened yet has not
/// been counted; see [`Presence::changed_from`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Presence {
    present: bool,
    insertions: Option<u64>,
}

impl Presence {
    /// A slot event (PKCS#11 2.40 §5.5 C_WaitForSlotEvent): the token went in or out, or went out
    /// and in again since last reported.
    fn changed_from(self, before: Presence) -> bool {
        self.present != before.present
            || matches!((self.insertions, before.insertions), (Some(a), Some(b)) if a != b)
    }
}

struct Slot {
    id: SlotId,
    path: PathBuf,
    held: RwLock<Held>,
    session_objects: RwLock<HashMap<u64, SessionObject>>,
    /// Presence as last reported by `C_WaitForSlotEvent`.
    reported: Mutex<Option<Presence>>,
}

impl Slot {
    /// The token if this process has opened it.
    fn opened(&self) -> Option<Arc<Token>> {
        match &*self.held.read().unwrap_or_else(|e| e.into_inner()) {
            Held::Open(t) | Held::Looked(t) => Some(t.clone()),
            Held::Spare | Held::File => None,
        }
    }

    /// The token, opened now if it was not yet (then the bool is true): kept open for sessions,
    /// or else one of the looks a bounded number of which stay open. `None` for the spare slot.
    fn hold(
        &self,
        env: &token::EnvOverrides,
        for_sessions: bool,
    ) -> Result<(Option<Arc<Token>>, bool)> {
        match &*self.held.read().unwrap_or_else(|e| e.into_inner()) {
            Held::Spare => return Ok((None, false)),
            Held::Open(t) => return Ok((Some(t.clone()), false)),
            Held::Looked(t) if !for_sessions => return Ok((Some(t.clone()), false)),
            Held::Looked(_) | Held::File => {}
        }
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        let (t, opened) = match &*held {
            Held::Spare => return Ok((None, false)),
            Held::Open(t) => return Ok((Some(t.clone()), false)),
            Held::Looked(t) => (t.clone(), false),
            Held::File => (Arc::new(Token::open(&self.path, env)?), true),
        };
        *held = if for_sessions {
            Held::Open(t.clone())
        } else {
            Held::Looked(t.clone())
        };
        Ok((Some(t), opened))
    }

    /// Closes a token that was only looked at, unless someone holds it right now.
    fn close_look(&self) {
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        if let Held::Looked(t) = &*held
            && Arc::strong_count(t) == 1
        {
            *held = Held::File;
        }
    }

    fn is_file(&self) -> bool {
        matches!(
            *self.held.read().unwrap_or_else(|e| e.into_inner()),
            Held::File
        )
    }

    fn is_spare(&self) -> bool {
        matches!(
            *self.held.read().unwrap_or_else(|e| e.into_inner()),
            Held::Spare
        )
    }

    /// The token for sessions, opened now if it was not yet; `None` for the spare slot.
    fn token(&self, env: &token::EnvOverrides) -> Result<Option<Arc<Token>>> {
        Ok(self.hold(env, true)?.0)
    }

    fn set_open(&self, t: Token) {
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = Held::Open(Arc::new(t));
    }

    /// Presence without opening the token: a token not open is out while its marker file is
    /// there (one `stat`, so no listing can be stale); a spare slot always holds its blank token.
    fn presence(&self) -> Result<Presence> {
        let token = match &*self.held.read().unwrap_or_else(|e| e.into_inner()) {
            Held::Spare => {
                return Ok(Presence {
                    present: true,
                    insertions: Some(0),
                });
            }
            Held::File => {
                return Ok(Presence {
                    present: !crate::store::unplugged_marker(&self.path).exists(),
                    insertions: None,
                });
            }
            Held::Open(t) | Held::Looked(t) => t.clone(),
        };
        token.refresh()?;
        let p = token.presence();
        Ok(Presence {
            present: p.present,
            insertions: Some(p.insertions),
        })
    }
}

/// The emulator, shared by every thread of the application.
pub struct Emulator {
    config: Config,
    slots: RwLock<BTreeMap<SlotId, Arc<Slot>>>,
    /// Every call looks its session up here: an `ArcSwap` load writes nothing shared, where a
    /// read lock writes the lock's cache line from every thread (see `Signing`). Opening and
    /// closing, rare beside calls, copy the map under `sessions_write`.
    sessions: arc_swap::ArcSwap<HashMap<SessionHandle, Arc<SessionEntry>>>,
    sessions_write: Mutex<()>,
    next_session: AtomicU64,
    next_object: AtomicU64,
    closing: AtomicBool,
    /// Slots whose token was opened only to be looked at, oldest first.
    looks: Mutex<std::collections::VecDeque<SlotId>>,
    /// Profiles of tokens read from their summaries, by their text.
    profiles: Mutex<HashMap<String, Arc<Profile>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("token_dir", &self.config.token_dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Emulator {
    /// Opens every token in the configured folder, plus one spare uninitialised slot.
    pub fn new(config: Config) -> Result<Emulator> {
        std::fs::create_dir_all(&config.token_dir).map_err(|e| {
            Error::Store(format!("cannot create {}: {e}", config.token_dir.display()))
        })?;
        let emu = Emulator {
            config,
            slots: RwLock::new(BTreeMap::new()),
            sessions: arc_swap::ArcSwap::from_pointee(HashMap::new()),
            sessions_write: Mutex::new(()),
            next_session: AtomicU64::new(1),
            next_object: AtomicU64::new(SESSION_OBJECT_BASE),
            closing: AtomicBool::new(false),
            looks: Mutex::new(std::collections::VecDeque::new()),
            profiles: Mutex::new(HashMap::new()),
        };
        for slot in emu.rescanned_slots()? {
            *lock(&slot.reported) = slot.presence().ok();
        }
        Ok(emu)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Picks up tokens created by other processes and keeps exactly one spare slot. One listing
    /// of the folder; no token file is opened here.
    pub fn rescan(&self) -> Result<()> {
        let dir = &self.config.token_dir;
        let mut found = vec![];
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                if let Some(id) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("slot-"))
                    .and_then(|n| n.strip_suffix(".kilt"))
                    .and_then(|n| n.parse::<SlotId>().ok())
                {
                    found.push(id);
                }
            }
        }
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        for id in found {
            let slot = slots
                .entry(id)
                .or_insert_with(|| new_slot(id, token_file(dir, id)));
            let mut held = slot.held.write().unwrap_or_else(|e| e.into_inner());
            if matches!(*held, Held::Spare) {
                // Created by another process in what was our spare slot.
                *held = Held::File;
            }
        }
        let spare_exists = slots.values().any(|s| s.is_spare());
        if !spare_exists {
            let id = slots.keys().next_back().map_or(0, |m| m + 1);
            slots.insert(id, new_slot(id, token_file(dir, id)));
        }
        Ok(())
    }

    /// Every slot, after a rescan (a snapshot: the list's lock is not held while they are used).
    fn rescanned_slots(&self) -> Result<Vec<Arc<Slot>>> {
        self.rescan()?;
        Ok(self.slots_now())
    }

    /// Every slot as it is (a snapshot, as above).
    fn slots_now(&self) -> Vec<Arc<Slot>> {
        self.slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn slot(&self, id: SlotId) -> Result<Arc<Slot>> {
        self.slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .ok_or(Error::SlotNotFound(id))
    }

    /// Slot numbers, optionally only those with a token present (C_GetSlotList).
    pub fn slot_list(&self, token_present: bool) -> Result<Vec<SlotId>> {
        let slots = self.rescanned_slots()?;
        let mut out = vec![];
        for s in slots {
            if !token_present || s.presence()?.present {
                out.push(s.id);
            }
        }
        Ok(out)
    }

    /// The token in slot `id`, if initialised (for tools that need its control interface).
    pub fn token(&self, id: SlotId) -> Result<Arc<Token>> {
        self.slot(id)?
            .token(&self.config.env)?
            .ok_or(Error::TokenNotInitialized)
    }

    /// The token of `slot` to read its info or label: opened if need be, and then counted among
    /// the looks, the oldest of which is closed again beyond [`LOOKS_OPEN`].
    fn look(&self, slot: &Slot) -> Result<Option<Arc<Token>>> {
        let (token, opened) = slot.hold(&self.config.env, false)?;
        if opened {
            let evict = {
                let mut looks = lock(&self.looks);
                looks.push_back(slot.id);
                (looks.len() > LOOKS_OPEN)
                    .then(|| looks.pop_front())
                    .flatten()
            };
            if let Some(old) = evict.and_then(|id| self.slot(id).ok()) {
                old.close_look();
            }
        }
        Ok(token)
    }

    /// What the info calls read of `slot`'s token: its summary file while the token is not open
    /// (one small read instead of opening the database), else the token, opened to be looked at.
    fn view(&self, slot: &Slot) -> Result<View> {
        if slot.is_file()
            && let Some(summary) = Summary::read(&slot.path)
            && let Ok(profile) = self.profile_of(&summary.profile)
        {
            return Ok(View::Summary(summary, profile));
        }
        Ok(match self.look(slot)? {
            Some(t) => View::Token(t),
            None => View::Blank,
        })
    }

    /// A token's stored profile, parsed once per distinct text (thousands of tokens share one).
    fn profile_of(&self, text: &str) -> Result<Arc<Profile>> {
        let mut parsed = lock(&self.profiles);
        if let Some(p) = parsed.get(text) {
            return Ok(p.clone());
        }
        let p = Arc::new(if text.is_empty() {
            Profile::default_profile()
        } else {
            Profile::parse(text)?
        });
        parsed.insert(text.to_owned(), p.clone());
        Ok(p)
    }

    /// How many token files this process has open (for tests and diagnostics: a folder of
    /// thousands of tokens should cost only the ones in use).
    pub fn opened_tokens(&self) -> usize {
        self.slots_now()
            .iter()
            .filter(|s| s.opened().is_some())
            .count()
    }

    /// Whether slot `id` holds an initialised token (without opening it).
    pub fn is_initialised(&self, id: SlotId) -> Result<bool> {
        Ok(!self.slot(id)?.is_spare())
    }

    /// The spare slot, whose blank token `init_token` initialises.
    pub fn spare_slot(&self) -> Result<SlotId> {
        self.rescanned_slots()?
            .iter()
            .find(|s| s.is_spare())
            .map(|s| s.id)
            .ok_or(Error::SlotNotFound(SlotId::MAX))
    }

    /// Finds the slot of the token labelled `label` (by the tokens' summaries; tokens without one
    /// are opened to be looked at).
    pub fn slot_by_label(&self, label: &str) -> Result<Option<SlotId>> {
        let slots = self.rescanned_slots()?;
        for s in slots {
            let view = self.view(&s)?;
            if !matches!(view, View::Blank) && view.label() == label {
                return Ok(Some(s.id));
            }
        }
        Ok(None)
    }

    /// The mechanisms of the token in slot `id` (its profile's; the configured profile's for an
    /// empty slot).
    pub fn slot_mechanisms(&self, id: SlotId) -> Result<Vec<MechanismInfo>> {
        let slot = self.slot(id)?;
        Ok(mechanisms(self.view(&slot)?.profile(&self.config.profile)))
    }

    /// C_GetSlotInfo.
    pub fn slot_info(&self, id: SlotId) -> Result<SlotInfo> {
        let slot = self.slot(id)?;
        let profile = self.view(&slot)?.profile(&self.config.profile).clone();
        Ok(SlotInfo {
            description: profile.reader_description(id),
            manufacturer: profile.manufacturer.clone(),
            token_present: slot.presence()?.present,
            hardware_version: (profile.hardware_version[0], profile.hardware_version[1]),
            firmware_version: (profile.firmware_version[0], profile.firmware_version[1]),
        })
    }

    fn session_counts(&self, slot: SlotId) -> (u64, u64) {
        let sessions = self.sessions.load();
        let on_slot = sessions.values().filter(|s| s.slot == slot);
        let (mut all, mut rw) = (0, 0);
        for s in on_slot {
            all += 1;
            rw += u64::from(s.read_write);
        }
        (all, rw)
    }

    /// C_GetTokenInfo.
    pub fn token_info(&self, id: SlotId) -> Result<TokenInfo> {
        let slot = self.slot(id)?;
        if !slot.presence()?.present {
            return Err(Error::TokenNotPresent);
        }
        let (sessions, rw_sessions) = self.session_counts(id);
        let view = self.view(&slot)?;
        let p = view.profile(&self.config.profile);
        let status = |who| {
            view.pin(who)
                .map(|(tries_left, failed_since_ok, to_be_changed)| PinStatus {
                    initialized: true,
                    tries_left,
                    count_low: failed_since_ok && tries_left > 0,
                    final_try: tries_left == 1,
                    locked: tries_left == 0,
                    to_be_changed,
                })
                .unwrap_or_default()
        };
        Ok(TokenInfo {
            label: view.label(),
            manufacturer: p.manufacturer.clone(),
            model: p.model.clone(),
            serial: view.serial(),
            initialized: !matches!(view, View::Blank),
            protected_authentication_path: p.protected_authentication_path,
            user_pin: status(PinOwner::User),
            so_pin: status(PinOwner::So),
            sessions,
            rw_sessions,
            min_pin_len: p.user_pin_min as u64,
            max_pin_len: p.user_pin_max as u64,
            hardware_version: (p.hardware_version[0], p.hardware_version[1]),
            firmware_version: (p.firmware_version[0], p.firmware_version[1]),
        })
    }

    /// C_InitToken: initialises the spare slot's blank token, or re-initialises a token after
    /// checking its SO PIN (all objects and the user PIN are destroyed; §5.5).
    pub fn init_token(&self, id: SlotId, so_pin: &Pin, label: &str) -> Result<()> {
        let slot = self.slot(id)?;
        if self.session_counts(id).0 > 0 {
            return Err(Error::SessionsOpen);
        }
        if !slot.presence()?.present {
            return Err(Error::TokenNotPresent);
        }
        let label = label.trim_end_matches([' ', '\0']);
        if label.len() > 32 {
            return Err(Error::TemplateInconsistent(
                "the label is longer than 32 bytes",
            ));
        }
        if let Some(t) = slot.token(&self.config.env)? {
            return t.reinitialise(label, so_pin);
        }
        let p = &self.config.profile;
        token::check_pin_format(so_pin, p.so_pin_min, p.so_pin_max)?;
        let key = token::new_token_key()?;
        let rec = token::pin_record(so_pin, &key, p.so_pin_tries, p.kdf_iterations)?;
        let mut serial = [0u8; 8];
        crypto::random(&mut serial)?;
        let meta = [
            ("label", label.as_bytes().to_vec()),
            ("serial", hex::encode_upper(serial).into_bytes()),
            ("profile", p.to_toml().into_bytes()),
        ];
        let store = Store::create(&slot.path, &meta, rec)?;
        slot.set_open(Token::with_store(store, &self.config.env)?);
        *lock(&slot.reported) = Some(Presence {
            present: true,
            insertions: Some(0),
        });
        self.rescan()
    }

    /// What `kilt-token init` does: initialise the token in `slot`, then, as the SO, set the user
    /// PIN. The user PIN is checked first, so a bad one leaves the slot untouched.
    pub fn provision(&self, slot: SlotId, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<()> {
        let p = &self.config.profile;
        token::check_pin_format(user_pin, p.user_pin_min, p.user_pin_max)?;
        self.init_token(slot, so_pin, label)?;
        let s = self.open_session(slot, true, true)?;
        let r = self
            .login(s, UserType::So, Some(so_pin))
            .and_then(|()| self.init_pin(s, Some(user_pin)));
        self.close_session(s)?;
        r
    }

    /// C_OpenSession. Only serial sessions exist (§5.6: CKF_SERIAL_SESSION must be set).
    pub fn open_session(
        &self,
        id: SlotId,
        read_write: bool,
        serial: bool,
    ) -> Result<SessionHandle> {
        if !serial {
            return Err(Error::ParallelSessionNotSupported);
        }
        let slot = self.slot(id)?;
        let token = slot.token(&self.config.env)?;
        // Open now, so the count is the token's own.
        let p = slot.presence()?;
        if !p.present {
            return Err(Error::TokenNotPresent);
        }
        let insertions = p.insertions.unwrap_or(0);
        // Like SoftHSM2 and the device, a blank token has nothing to open a session on.
        let token = token.ok_or(Error::TokenNotInitialized)?;
        if !read_write && token.logged_in() == Some(PinOwner::So) {
            return Err(Error::SoSessionExists);
        }
        let handle = SessionHandle(self.next_session.fetch_add(1, Ordering::Relaxed));
        let cached_login_token = token.clone();
        let session = Session {
            handle,
            slot: slot.clone(),
            token,
            insertions,
            find: None,
            sign: None,
            verify: None,
            digest: None,
            signing: None,
        };
        let entry = Arc::new(SessionEntry {
            slot: id,
            read_write,
            inner: Mutex::new(session),
        });
        self.change_sessions(|m| m.insert(handle, entry));
        self.login_on_open(handle, &cached_login_token);
        Ok(handle)
    }

    /// `KILT_LOGIN`: logs the user in on a token the application is not logged in to. A PIN the
    /// token refuses is not tried again on it in this process (each try counts on the device);
    /// the session stays public, as it would without the cache, and the log says why.
    fn login_on_open(&self, h: SessionHandle, token: &Token) {
        let Some(source) = &self.config.login_on_open else {
            return;
        };
        if token.logged_in().is_some() || !token.may_try_cached_pin() {
            return;
        }
        let result = source
            .read("")
            .map_err(Error::from)
            .and_then(|pin| self.login(h, UserType::User, Some(&pin)));
        if let Err(e) = result {
            if matches!(e, Error::PinIncorrect { .. } | Error::PinLocked) {
                token.cached_pin_refused();
            }
            tracing::warn!(error = %e, "KILT_LOGIN: the user is not logged in");
        }
    }

    /// C_CloseSession. Closing the last session of a token logs the application out (§5.6).
    pub fn close_session(&self, h: SessionHandle) -> Result<()> {
        let entry = self
            .change_sessions(|m| m.remove(&h))
            .ok_or(Error::SessionNotFound)?;
        let s = lock(&entry.inner);
        s.slot
            .session_objects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|handle, o| {
                let keep = o.owner != h;
                if !keep {
                    s.token.forget_key(*handle);
                }
                keep
            });
        s.token.changed();
        if self.session_counts(entry.slot).0 == 0 {
            s.token.logout();
        }
        Ok(())
    }

    /// C_CloseAllSessions.
    pub fn close_all_sessions(&self, id: SlotId) -> Result<()> {
        let slot = self.slot(id)?;
        let handles: Vec<SessionHandle> = self
            .sessions
            .load()
            .iter()
            .filter(|(_, e)| e.slot == id)
            .map(|(h, _)| *h)
            .collect();
        for h in handles {
            let _ = self.close_session(h);
        }
        if let Some(t) = slot.opened() {
            t.logout();
        }
        Ok(())
    }

    fn entry(&self, h: SessionHandle) -> Result<Arc<SessionEntry>> {
        self.sessions
            .load()
            .get(&h)
            .cloned()
            .ok_or(Error::SessionNotFound)
    }

    /// Changes the session table: writers one at a time, each on a copy readers then see whole.
    fn change_sessions<T>(
        &self,
        f: impl FnOnce(&mut HashMap<SessionHandle, Arc<SessionEntry>>) -> T,
    ) -> T {
        let _one = lock(&self.sessions_write);
        let mut next = HashMap::clone(&self.sessions.load());
        let out = f(&mut next);
        self.sessions.store(Arc::new(next));
        out
    }

    /// Runs `f` on a live session: the token must still be in its slot, and be the same
    /// insertion the session was opened on (a removed token closes every session, §5.6).
    fn with_session<T>(
        &self,
        h: SessionHandle,
        f: impl FnOnce(&mut Session, bool) -> Result<T>,
    ) -> Result<T> {
        self.session_call(h, false, f)
    }

    /// `with_session` for the hot calls (crypto operations), which look for other processes'
    /// changes at most every CONTROL_CHECK_INTERVAL; see [`Token::refresh_control`].
    fn with_session_hot<T>(
        &self,
        h: SessionHandle,
        f: impl FnOnce(&mut Session, bool) -> Result<T>,
    ) -> Result<T> {
        self.session_call(h, true, f)
    }

    fn session_call<T>(
        &self,
        h: SessionHandle,
        hot: bool,
        f: impl FnOnce(&mut Session, bool) -> Result<T>,
    ) -> Result<T> {
        let entry = self.entry(h)?;
        let mut s = lock(&entry.inner);
        if hot {
            s.token.refresh_control()?;
        } else {
            s.token.refresh()?;
        }
        let p = s.token.presence();
        if !p.present {
            return Err(Error::DeviceRemoved);
        }
        if p.insertions != s.insertions {
            drop(s);
            let _ = self.close_session(h);
            return Err(Error::SessionNotFound);
        }
        f(&mut s, entry.read_write)
    }

    /// C_GetSessionInfo.
    pub fn session_info(&self, h: SessionHandle) -> Result<SessionInfo> {
        self.with_session(h, |s, rw| {
            let state = match (s.token.logged_in(), rw) {
                (None, false) => SessionState::RoPublic,
                (None, true) => SessionState::RwPublic,
                (Some(PinOwner::User), false) => SessionState::RoUser,
                (Some(PinOwner::User), true) => SessionState::RwUser,
                (Some(PinOwner::So), _) => SessionState::RwSo,
            };
            Ok(SessionInfo {
                slot: s.slot.id,
                state,
                read_write: rw,
            })
        })
    }

    /// C_Login (§5.6). A `None` PIN on a token with a protected authentication path asks the PIN
    /// agent, like the Tumar CSP window.
    pub fn login(&self, h: SessionHandle, user: UserType, pin: Option<&Pin>) -> Result<()> {
        let who = match user {
            UserType::So => PinOwner::So,
            UserType::User => PinOwner::User,
            // No key of this token has CKA_ALWAYS_AUTHENTICATE, so no operation needs it.
            UserType::ContextSpecific => return Err(Error::OperationNotInitialized),
        };
        let (token, slot) = self.with_session(h, |s, _| Ok((s.token.clone(), s.slot.id)))?;
        match token.logged_in() {
            Some(cur) if cur == who => return Err(Error::AlreadyLoggedIn),
            Some(_) => return Err(Error::AnotherUserLoggedIn),
            None => {}
        }
        if who == PinOwner::So {
            let ro_exists = self
                .sessions
                .load()
                .values()
                .any(|e| e.slot == slot && !e.read_write);
            if ro_exists {
                return Err(Error::ReadOnlySessionExists);
            }
        }
        if who == PinOwner::User && token.pin_record(PinOwner::User).is_none() {
            return Err(Error::UserPinNotInitialized);
        }
        let asked;
        let pin = match pin {
            Some(p) => p,
            None if token.profile().protected_authentication_path => {
                asked = self.config.pin_agent.ask(&token.label())?;
                &asked
            }
            None => return Err(Error::PinMissing),
        };
        let p = token.profile();
        let (min, max) = match who {
            PinOwner::So => (p.so_pin_min, p.so_pin_max),
            PinOwner::User => (p.user_pin_min, p.user_pin_max),
        };
        // A PIN of impossible length is refused before it reaches the device: no try is used.
        if pin.as_bytes().len() < min || pin.as_bytes().len() > max {
            return Err(Error::PinLenRange { min, max });
        }
        let key = token.verify_pin(who, pin)?;
        token.set_login(who, key);
        Ok(())
    }

    /// C_Logout.
    pub fn logout(&self, h: SessionHandle) -> Result<()> {
        self.with_session(h, |s, _| {
            if s.token.logged_in().is_none() {
                return Err(Error::NotLoggedIn);
            }
            s.token.logout();
            Ok(())
        })?;
        // Private session objects become invisible; operations on private keys end (§5.6).
        Ok(())
    }

    /// C_InitPIN: the SO sets (and so unblocks) the user PIN in a R/W SO session.
    pub fn init_pin(&self, h: SessionHandle, pin: Option<&Pin>) -> Result<()> {
        self.with_session(h, |s, rw| {
            if !rw {
                return Err(Error::SessionReadOnly);
            }
            if s.token.logged_in() != Some(PinOwner::So) {
                return Err(Error::NotLoggedIn);
            }
            let asked;
            let pin = match pin {
                Some(p) => p,
                None if s.token.profile().protected_authentication_path => {
                    asked = self.config.pin_agent.ask(&s.token.label())?;
                    &asked
                }
                None => return Err(Error::PinMissing),
            };
            s.token.check_pin_format(PinOwner::User, pin)?;
            let key = s.token.login_key().ok_or(Error::NotLoggedIn)?;
            s.token.set_pin(PinOwner::User, pin, &key)
        })
    }

    /// C_SetPIN: changes the PIN of whoever is logged in (the user when nobody is).
    pub fn set_pin(&self, h: SessionHandle, old: Option<&Pin>, new: Option<&Pin>) -> Result<()> {
        self.with_session(h, |s, rw| {
            if !rw {
                return Err(Error::SessionReadOnly);
            }
            let who = s.token.logged_in().unwrap_or(PinOwner::User);
            let label = s.token.label();
            let ask = |p: Option<&Pin>| -> Result<Pin> {
                match p {
                    Some(p) => Ok(p.clone()),
                    None if s.token.profile().protected_authentication_path => {
                        self.config.pin_agent.ask(&label)
                    }
                    None => Err(Error::PinMissing),
                }
            };
            let old = ask(old)?;
            let new = ask(new)?;
            s.token.check_pin_format(who, &new)?;
            let key = s.token.verify_pin(who, &old)?;
            s.token.set_pin(who, &new, &key)
        })
    }

    fn visible(token: &Token, obj: &Object) -> bool {
        !obj.is_private() || token.logged_in() == Some(PinOwner::User)
    }

    fn lookup(s: &Session, h: ObjectHandle) -> Result<Arc<Object>> {
        let obj = if h.0 >= SESSION_OBJECT_BASE {
            s.slot
                .session_objects
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&h.0)
                .map(|o| o.obj.clone())
        } else {
            s.token.object(h.0)
        };
        match obj {
            Some(o) if Emulator::visible(&s.token, &o) => Ok(o),
            _ => Err(Error::ObjectNotFound),
        }
    }

    /// Checks that the session may create or change an object like `obj` (§5.6 Table 6/7:
    /// token objects need a R/W session, private objects a logged-in user).
    fn may_write(s: &Session, rw: bool, obj: &Object) -> Result<()> {
        if obj.is_token() && !rw && !s.token.defects().session_state_ignored {
            return Err(Error::SessionReadOnly);
        }
        if obj.is_private() && s.token.logged_in() != Some(PinOwner::User) {
            return Err(Error::NotLoggedIn);
        }
        Ok(())
    }

    fn store_new(&self, s: &Session, objs: Vec<Object>) -> Result<Vec<ObjectHandle>> {
        let (token_objs, session_objs): (Vec<_>, Vec<_>) = objs
            .into_iter()
            .enumerate()
            .partition(|(_, o)| o.is_token());
        let mut out = vec![ObjectHandle(0); token_objs.len() + session_objs.len()];
        if !token_objs.is_empty() {
            let (idx, objs): (Vec<usize>, Vec<Object>) = token_objs.into_iter().unzip();
            let handles = s.token.insert(&objs)?;
            for (i, h) in idx.into_iter().zip(handles) {
                out[i] = ObjectHandle(h);
            }
        }
        let mut so = s
            .slot
            .session_objects
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for (i, obj) in session_objs {
            let h = self.next_object.fetch_add(1, Ordering::Relaxed);
            so.insert(
                h,
                SessionObject {
                    owner: s.handle,
                    obj: Arc::new(obj),
                },
            );
            out[i] = ObjectHandle(h);
        }
        Ok(out)
    }

    /// C_CreateObject.
    pub fn create_object(&self, h: SessionHandle, template: &[Attr]) -> Result<ObjectHandle> {
        self.with_session(h, |s, rw| {
            let so = s.token.logged_in() == Some(PinOwner::So);
            let mut obj = Object::from_template(template, Origin::Created, so)?;
            Emulator::may_write(s, rw, &obj)?;
            if obj.class() == Some(Class::PrivateKey) {
                let scalar = zeroize::Zeroizing::new(
                    obj.take_private_value()
                        .ok_or(Error::TemplateIncomplete(CKA_VALUE))?,
                );
                let alg = obj.key_algorithm().ok_or(Error::KeyTypeInconsistent)?;
                if !s.token.profile().offers(alg) {
                    return Err(Error::CurveNotSupported);
                }
                // The token keeps every scalar big-endian.
                let key = PrivateKey::from_scalar(alg, &alg.private_value_order(&scalar))?;
                let sealed = s.token.seal_private(&key.scalar())?;
                obj.set_key_material(alg, &[], Some(sealed), None);
            }
            s.token.before(TimedOp::CreateObject)?;
            Ok(self.store_new(s, vec![obj])?[0])
        })
    }

    /// C_CopyObject.
    pub fn copy_object(
        &self,
        h: SessionHandle,
        obj: ObjectHandle,
        template: &[Attr],
    ) -> Result<ObjectHandle> {
        self.with_session(h, |s, rw| {
            let src = Emulator::lookup(s, obj)?;
            let so = s.token.logged_in() == Some(PinOwner::So);
            let copy = src.copied(template, so)?;
            Emulator::may_write(s, rw, &copy)?;
            s.token.before(TimedOp::CreateObject)?;
            Ok(self.store_new(s, vec![copy])?[0])
        })
    }

    /// C_DestroyObject.
    pub fn destroy_object(&self, h: SessionHandle, obj: ObjectHandle) -> Result<()> {
        self.with_session(h, |s, rw| {
            let o = Emulator::lookup(s, obj)?;
            Emulator::may_write(s, rw, &o)?;
            if !o.flag(CKA_DESTROYABLE) {
                return Err(Error::ActionProhibited);
            }
            s.token.before(TimedOp::DestroyObject)?;
            if obj.0 >= SESSION_OBJECT_BASE {
                s.slot
                    .session_objects
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&obj.0);
                s.token.forget_key(obj.0);
                Ok(())
            } else {
                s.token.delete(obj.0)
            }
        })
    }

    /// C_GetObjectSize.
    pub fn object_size(&self, h: SessionHandle, obj: ObjectHandle) -> Result<usize> {
        self.with_session(h, |s, _| Ok(Emulator::lookup(s, obj)?.size()))
    }

    /// C_GetAttributeValue: one result per requested type (§5.7 rules are applied by the caller
    /// for buffer sizes).
    pub fn get_attributes(
        &self,
        h: SessionHandle,
        obj: ObjectHandle,
        types: &[AttrType],
    ) -> Result<Vec<AttrResult>> {
        self.with_session(h, |s, _| {
            let o = Emulator::lookup(s, obj)?;
            types
                .iter()
                .map(|t| {
                    Ok(match o.get(*t) {
                        AttrValue::Value(v) => AttrResult::Value(v.to_vec()),
                        AttrValue::Sensitive
                            if s.token.defects().sensitive_leak && o.secret.is_some() =>
                        {
                            AttrResult::Value(s.token.reveal_private(&o)?.to_vec())
                        }
                        AttrValue::Sensitive => AttrResult::Sensitive,
                        AttrValue::Invalid => AttrResult::Invalid,
                        AttrValue::Secret => {
                            AttrResult::Value(s.token.reveal_private(&o)?.to_vec())
                        }
                    })
                })
                .collect()
        })
    }

    /// C_SetAttributeValue: all or nothing.
    pub fn set_attributes(
        &self,
        h: SessionHandle,
        obj: ObjectHandle,
        template: &[Attr],
    ) -> Result<()> {
        self.with_session(h, |s, rw| {
            let o = Emulator::lookup(s, obj)?;
            Emulator::may_write(s, rw, &o)?;
            let so = s.token.logged_in() == Some(PinOwner::So);
            let next = o.updated(template, so)?;
            if next.is_token() != o.is_token() || next.is_private() != o.is_private() {
                return Err(Error::AttributeReadOnly(CKA_TOKEN));
            }
            if obj.0 >= SESSION_OBJECT_BASE {
                if let Some(e) = s
                    .slot
                    .session_objects
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&obj.0)
                {
                    e.obj = Arc::new(next);
                }
                s.token.changed();
                Ok(())
            } else {
                s.token.update(obj.0, next)
            }
        })
    }

    /// C_FindObjectsInit: the matching visible objects are fixed now (§5.7).
    pub fn find_init(&self, h: SessionHandle, template: &[Attr]) -> Result<()> {
        self.with_session(h, |s, _| {
            if s.find.is_some() {
                return Err(Error::OperationActive);
            }
            s.token.before(TimedOp::FindObjects)?;
            let mut results = vec![];
            // The login state once per search, not once per object; the template first, as it
            // rejects nearly every object.
            let user = s.token.logged_in() == Some(PinOwner::User);
            let wanted = |o: &Object| o.matches(template) && (user || !o.is_private());
            s.token.for_each_object(|h, o| {
                if wanted(o) {
                    results.push(h);
                }
            });
            for (h, o) in s
                .slot
                .session_objects
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                if wanted(&o.obj) {
                    results.push(*h);
                }
            }
            results.sort_unstable();
            s.find = Some(FindOp { results, pos: 0 });
            Ok(())
        })
    }

    /// C_FindObjects: up to `max` further handles.
    pub fn find_next(&self, h: SessionHandle, max: usize) -> Result<Vec<ObjectHandle>> {
        self.with_session_hot(h, |s, _| {
            let f = s.find.as_mut().ok_or(Error::OperationNotInitialized)?;
            let end = (f.pos + max).min(f.results.len());
            let out = f.results[f.pos..end]
                .iter()
                .map(|h| ObjectHandle(*h))
                .collect();
            f.pos = end;
            Ok(out)
        })
    }

    /// C_FindObjectsFinal.
    pub fn find_final(&self, h: SessionHandle) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            s.find.take().ok_or(Error::OperationNotInitialized)?;
            Ok(())
        })
    }

    /// C_GenerateKeyPair: CKM_EC_KEY_PAIR_GEN on P-256, CKM_GOSTR3410_KEY_PAIR_GEN on the GOST
    /// curves.
    pub fn generate_key_pair(
        &self,
        h: SessionHandle,
        mech: &Mechanism,
        public: &[Attr],
        private: &[Attr],
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        let key_type = crate::object::KEY_PAIR_GEN
            .iter()
            .find(|(m, _)| *m == mech.kind)
            .map(|(_, k)| *k)
            .ok_or(Error::MechanismInvalid(mech.kind))?;
        if !mech.param.is_empty() {
            return Err(Error::MechanismParamInvalid);
        }
        self.with_session(h, |s, rw| {
            offered(s, mech.kind)?;
            let so = s.token.logged_in() == Some(PinOwner::So);
            // The key type comes from the mechanism; a template that names another one is
            // inconsistent (an attribute given twice with different values).
            let with_class = |t: &[Attr], class: CK_OBJECT_CLASS| -> Vec<Attr> {
                let mut v = vec![
                    (CKA_CLASS, object::ulong(class)),
                    (CKA_KEY_TYPE, object::ulong(key_type)),
                ];
                v.extend_from_slice(t);
                v
            };
            let mut pub_obj =
                Object::from_template(&with_class(public, CKO_PUBLIC_KEY), Origin::Generated, so)?;
            let mut priv_obj = Object::from_template(
                &with_class(private, CKO_PRIVATE_KEY),
                Origin::Generated,
                so,
            )?;
            Emulator::may_write(s, rw, &pub_obj)?;
            Emulator::may_write(s, rw, &priv_obj)?;
            if s.token.login_key().is_none() || so {
                return Err(Error::NotLoggedIn);
            }
            let alg = pub_obj.key_algorithm().ok_or(Error::CurveNotSupported)?;
            if !s.token.profile().offers(alg) {
                return Err(Error::CurveNotSupported);
            }
            s.token.before(TimedOp::GenerateKeyPair)?;
            let key = PrivateKey::generate(alg)?;
            let public = key.public()?;
            let sealed = s.token.seal_private(&key.scalar())?;
            // A GOST key pair shares its parameter sets: the public template names the curve
            // (required), and the hash or else the profile's default for the curve.
            let gost = match alg {
                KeyAlgorithm::Gost(c) => Some((
                    // Present: the curve was read from it.
                    pub_obj
                        .bytes(CKA_GOSTR3410_PARAMS)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default(),
                    pub_obj
                        .bytes(CKA_GOSTR3411_PARAMS)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_else(|| crypto::gost_hash_params(crypto::default_gost_hash(c))),
                )),
                KeyAlgorithm::P256 => None,
            };
            if let Some((curve, hash)) = &gost {
                for (ty, want) in [(CKA_GOSTR3410_PARAMS, curve), (CKA_GOSTR3411_PARAMS, hash)] {
                    if priv_obj.bytes(ty).is_some_and(|v| v != want.as_slice()) {
                        return Err(Error::TemplateInconsistent(
                            "the private key's GOST parameters differ from the public key's",
                        ));
                    }
                }
            }
            let gost = gost.as_ref().map(|(c, h)| (c.as_slice(), h.as_slice()));
            pub_obj.set_key_material(alg, &public, None, gost);
            priv_obj.set_key_material(alg, &public, Some(sealed), gost);
            let hs = self.store_new(s, vec![pub_obj, priv_obj])?;
            s.token.remember_key(hs[1].0, std::sync::Arc::new(key));
            Ok((hs[0], hs[1]))
        })
    }

    /// The checks `C_SignInit` and `C_VerifyInit` share (§5.11, §5.12): a mechanism the token
    /// offers, a key of the right class, type and usage; the mechanism settled for the key.
    fn operation_key(
        s: &Session,
        mech: &Mechanism,
        key: ObjectHandle,
        class: Class,
        usage: AttrType,
    ) -> Result<(SignMech, KeyAlgorithm, Arc<Object>)> {
        let kind = SignMech::from(mech)?;
        offered(s, mech.kind)?;
        let o = Emulator::lookup(s, key).map_err(|_| Error::KeyNotFound)?;
        if o.class() != Some(class) {
            return Err(Error::KeyTypeInconsistent);
        }
        let (kind, alg) = kind.for_key(&o)?;
        check_key_use(&o, usage, mech.kind)?;
        Ok((kind, alg, o))
    }

    /// C_SignInit.
    pub fn sign_init(&self, h: SessionHandle, mech: &Mechanism, key: ObjectHandle) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            if s.sign.is_some() {
                return Err(Error::OperationActive);
            }
            // The same key and mechanism as last time, nothing changed since (the token's
            // generation): the checks below would pass again. Skipping them keeps a signing
            // loop's C_SignInit off the token's shared locks and reference counts, which two
            // threads otherwise write on every call (two threads: 1.78-1.81x one in some runs
            // with the checks, 1.89-1.94x in every run without).
            let generation = s.token.generation();
            let same = |last: &Signing| (last.handle, last.generation) == (key.0, generation);
            if let Some(last) = s.signing.as_ref().filter(|l| same(l) && l.mech == *mech) {
                s.sign = Some(SignOp {
                    mech: last.kind,
                    key: last.key.clone(),
                    input: Input::new(last.kind.hash()),
                });
                return Ok(());
            }
            let (kind, _, o) = Emulator::operation_key(s, mech, key, Class::PrivateKey, CKA_SIGN)?;
            // The own copy outlives a change of mechanism, not of the key or the token.
            let k = match s.signing.as_ref().filter(|l| same(l)) {
                Some(last) => last.key.clone(),
                None => Arc::new(s.token.private_key(key.0, &o)?.copy()?),
            };
            s.signing = Some(Signing {
                handle: key.0,
                generation,
                mech: mech.clone(),
                kind,
                key: k.clone(),
            });
            s.sign = Some(SignOp {
                mech: kind,
                key: k,
                input: Input::new(kind.hash()),
            });
            Ok(())
        })
    }

    /// Signature length of the active signing operation (for the output-length protocol); the
    /// call asking (`part`) settles how the operation ends, and the wrong one ends it.
    pub fn sign_len(&self, h: SessionHandle, part: Part) -> Result<usize> {
        self.with_session_hot(h, |s, _| {
            let op = s.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
            if let Err(e) = op.input.commit(part) {
                s.sign = None;
                return Err(e);
            }
            Ok(op.key.algorithm().signature_len())
        })
    }

    /// C_Sign: single-part; ends the operation whatever the outcome.
    pub fn sign(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>> {
        self.with_session_hot(h, |s, _| {
            let mut op = s.sign.take().ok_or(Error::OperationNotInitialized)?;
            op.input.commit(Part::Single)?;
            s.token.before(TimedOp::Sign)?;
            let sig = op.key.sign_digest(&op.mech.digest_of(data))?;
            Ok(s.token.finish_signature(sig))
        })
    }

    /// C_SignUpdate: a failure ends the operation (§5.11).
    pub fn sign_update(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            let op = s.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
            let fed = if op.mech.single_part_only() {
                Err(Error::SinglePartOnly)
            } else {
                op.input.feed(data)
            };
            if fed.is_err() {
                s.sign = None;
            }
            fed
        })
    }

    /// C_SignFinal.
    pub fn sign_final(&self, h: SessionHandle) -> Result<Vec<u8>> {
        self.with_session_hot(h, |s, _| {
            let mut op = s.sign.take().ok_or(Error::OperationNotInitialized)?;
            if op.mech.single_part_only() {
                return Err(Error::SinglePartOnly);
            }
            op.input.commit(Part::Multi)?;
            s.token.before(TimedOp::Sign)?;
            let digest = op.input.finish();
            Ok(s.token.finish_signature(op.key.sign_digest(&digest)?))
        })
    }

    /// C_VerifyInit.
    pub fn verify_init(&self, h: SessionHandle, mech: &Mechanism, key: ObjectHandle) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            if s.verify.is_some() {
                return Err(Error::OperationActive);
            }
            let (kind, alg, o) =
                Emulator::operation_key(s, mech, key, Class::PublicKey, CKA_VERIFY)?;
            let public = o.public_key().ok_or(Error::KeyTypeInconsistent)?.to_vec();
            s.verify = Some(VerifyOp {
                mech: kind,
                alg,
                public,
                input: Input::new(kind.hash()),
            });
            Ok(())
        })
    }

    /// C_Verify: ends the operation whatever the outcome.
    pub fn verify(&self, h: SessionHandle, data: &[u8], signature: &[u8]) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            let mut op = s.verify.take().ok_or(Error::OperationNotInitialized)?;
            op.input.commit(Part::Single)?;
            s.token.before(TimedOp::Verify)?;
            crypto::verify_with(op.alg, &op.public, &op.mech.digest_of(data), signature)
        })
    }

    /// C_VerifyUpdate: a failure ends the operation (§5.12).
    pub fn verify_update(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            let op = s.verify.as_mut().ok_or(Error::OperationNotInitialized)?;
            let fed = if op.mech.single_part_only() {
                Err(Error::SinglePartOnly)
            } else {
                op.input.feed(data)
            };
            if fed.is_err() {
                s.verify = None;
            }
            fed
        })
    }

    /// C_VerifyFinal.
    pub fn verify_final(&self, h: SessionHandle, signature: &[u8]) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            let mut op = s.verify.take().ok_or(Error::OperationNotInitialized)?;
            if op.mech.single_part_only() {
                return Err(Error::SinglePartOnly);
            }
            op.input.commit(Part::Multi)?;
            s.token.before(TimedOp::Verify)?;
            let digest = op.input.finish();
            crypto::verify_with(op.alg, &op.public, &digest, signature)
        })
    }

    /// C_DigestInit: CKM_SHA256, and CKM_GOSTR3411 when the token offers GOST.
    pub fn digest_init(&self, h: SessionHandle, mech: &Mechanism) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            if s.digest.is_some() {
                return Err(Error::OperationActive);
            }
            let hash = match mech.kind {
                CKM_SHA256 if mech.param.is_empty() => crypto::HashKind::Sha256,
                // 2.40 curr. mech. "GOST R 34.11-94 digest": the parameter, when given, is the
                // DER OID of the S-box set; without one, the CryptoPro set.
                CKM_GOSTR3411 if mech.param.is_empty() => crypto::HashKind::Gost94CryptoPro,
                CKM_GOSTR3411 => match crypto::gost_hash(&mech.param) {
                    Some(
                        h @ (crypto::HashKind::Gost94Test | crypto::HashKind::Gost94CryptoPro),
                    ) => h,
                    _ => return Err(Error::MechanismParamInvalid),
                },
                CKM_SHA256 => return Err(Error::MechanismParamInvalid),
                other => return Err(Error::MechanismInvalid(other)),
            };
            offered(s, mech.kind)?;
            s.digest = Some(Input::new(hash));
            Ok(())
        })
    }

    /// Digest length of the active digest operation; the call asking (`part`) settles how the
    /// operation ends, and the wrong one ends it (§5.10).
    pub fn digest_len(&self, h: SessionHandle, part: Part) -> Result<usize> {
        self.with_session_hot(h, |s, _| {
            let defects = s.token.defects();
            let op = s.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
            let len = op.hash.output_len();
            match (&op.state, part) {
                (InputState::Hashing(_), Part::Single) if defects.single_part_after_update => {
                    return Ok(len);
                }
                (InputState::Single, Part::Multi) if defects.final_after_length_query => {
                    op.state = InputState::Empty;
                }
                _ => {}
            }
            if let Err(e) = op.commit(part) {
                s.digest = None;
                return Err(e);
            }
            Ok(len)
        })
    }

    /// C_Digest (single part): ends the operation whatever the outcome.
    pub fn digest(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>> {
        self.with_session_hot(h, |s, _| {
            let mut op = s.digest.take().ok_or(Error::OperationNotInitialized)?;
            if let InputState::Hashing(h) = &mut op.state
                && s.token.defects().single_part_after_update
            {
                h.update(data);
                return Ok(op.finish());
            }
            op.commit(Part::Single)?;
            Ok(op.hash.digest(data))
        })
    }

    /// C_DigestUpdate: a failure ends the operation (§5.10).
    pub fn digest_update(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            let op = s.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
            let fed = op.feed(data);
            if fed.is_err() {
                s.digest = None;
            }
            fed
        })
    }

    /// C_DigestFinal: ends the operation whatever the outcome.
    pub fn digest_final(&self, h: SessionHandle) -> Result<Vec<u8>> {
        self.with_session_hot(h, |s, _| {
            let mut op = s.digest.take().ok_or(Error::OperationNotInitialized)?;
            if matches!(op.state, InputState::Single) && s.token.defects().final_after_length_query
            {
                op.state = InputState::Empty;
            }
            op.commit(Part::Multi)?;
            Ok(op.finish())
        })
    }

    /// Ends an operation early: the PKCS#11 edge calls it when a call fails on its arguments
    /// before the operation saw them (§5.10–§5.12: such a call terminates the operation too), and
    /// for `C_SessionCancel` (3.0 §5.6). Ending an operation that is not active is no error.
    pub fn end_operation(&self, h: SessionHandle, op: Operation) -> Result<()> {
        self.with_session_hot(h, |s, _| {
            match op {
                Operation::Digest => s.digest = None,
                Operation::Sign => s.sign = None,
                Operation::Verify => s.verify = None,
                Operation::Find => s.find = None,
            }
            Ok(())
        })
    }

    /// C_GenerateRandom.
    pub fn generate_random(&self, h: SessionHandle, buf: &mut [u8]) -> Result<()> {
        self.with_session_hot(h, |_, _| crypto::random(buf))
    }

    /// C_SeedRandom: the device's generator takes no seed.
    pub fn seed_random(&self, h: SessionHandle) -> Result<()> {
        self.with_session(h, |_, _| Err(Error::RandomSeedNotSupported))
    }

    /// One pending slot event (a token removed or inserted since last reported), if any.
    pub fn slot_event(&self) -> Result<Option<SlotId>> {
        for slot in self.slots_now() {
            let now = slot.presence()?;
            let mut seen = lock(&slot.reported);
            if seen.is_some_and(|s| now.changed_from(s)) {
                *seen = Some(now);
                return Ok(Some(slot.id));
            }
            *seen = Some(now);
        }
        Ok(None)
    }

    /// C_WaitForSlotEvent: blocks until an event unless `block` is false; returns
    /// `Error::Finalizing` when the library is finalised meanwhile.
    pub fn wait_for_slot_event(&self, block: bool) -> Result<Option<SlotId>> {
        loop {
            if self.closing.load(Ordering::Acquire) {
                return Err(Error::Finalizing);
            }
            if let Some(id) = self.slot_event()? {
                return Ok(Some(id));
            }
            if !block {
                return Ok(None);
            }
            std::thread::sleep(SLOT_EVENT_POLL);
        }
    }

    /// The deliberate defects this emulator runs with (none unless KILT_DEFECTS asks).
    pub fn defects(&self) -> token::Defects {
        self.config.env.defects
    }

    /// Marks the emulator as closing: blocked waiters return.
    pub fn shut_down(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// In a forked child, before the child makes its own emulator (PKCS#11 2.40 §6.7.7): closes
    /// the token files this copy of the parent's emulator holds open, so the child's own
    /// connections work. Locks held by threads that did not cross the fork are skipped.
    pub fn release_after_fork(&self) {
        if let Ok(slots) = self.slots.try_read() {
            for slot in slots.values() {
                if let Ok(held) = slot.held.try_read()
                    && let Held::Open(t) | Held::Looked(t) = &*held
                {
                    t.release_after_fork();
                }
            }
        }
    }
}

fn new_slot(id: SlotId, path: PathBuf) -> Arc<Slot> {
    Arc::new(Slot {
        id,
        path,
        held: RwLock::new(Held::Spare),
        session_objects: RwLock::new(HashMap::new()),
        reported: Mutex::new(None),
    })
}

/// Checks a key's usage flag and `CKA_ALLOWED_MECHANISMS` (PKCS#11 2.40 §4.7).
fn check_key_use(o: &Object, usage: AttrType, mech: CK_MECHANISM_TYPE) -> Result<()> {
    if !o.flag(usage) {
        return Err(Error::KeyFunctionNotPermitted);
    }
    if let Some(allowed) = o.bytes(CKA_ALLOWED_MECHANISMS).filter(|a| !a.is_empty()) {
        let n = std::mem::size_of::<CK_ULONG>();
        let ok = allowed
            .chunks(n)
            .any(|c| <[u8; 8]>::try_from(c).ok().map(CK_ULONG::from_ne_bytes) == Some(mech));
        if !ok {
            return Err(Error::MechanismInvalid(mech));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token in slot 0 with a session logged in as the user (and the user PIN).
    fn logged_in() -> (tempfile::TempDir, Emulator, SessionHandle, Pin) {
        let dir = tempfile::tempdir().unwrap();
        let emu = Emulator::new(Config::in_dir(dir.path())).unwrap();
        let (so, user) = (Pin::from("00000000"), Pin::from("1234567890"));
        emu.provision(0, "tests", &so, &user).unwrap();
        let h = emu.open_session(0, true, true).unwrap();
        emu.login(h, UserType::User, Some(&user)).unwrap();
        (dir, emu, h, user)
    }

    /// A repeated C_SignInit skips its checks only while nothing they rest on changed: the key's
    /// CKA_SIGN, the login, the key itself, the mechanism (token and session keys alike).
    #[test]
    fn a_repeated_sign_init_still_sees_every_change() {
        let (_dir, emu, h, user) = logged_in();
        for token in [true, false] {
            let (_, key) = emu
                .generate_key_pair(
                    h,
                    &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
                    &[
                        (CKA_EC_PARAMS, crypto::P256_PARAMS.to_vec()),
                        (CKA_TOKEN, object::bool(token)),
                    ],
                    &[(CKA_SIGN, vec![CK_TRUE]), (CKA_TOKEN, object::bool(token))],
                )
                .unwrap();
            let ecdsa = Mechanism::new(CKM_ECDSA);
            let init = |m: &Mechanism| {
                let r = emu.sign_init(h, m, key);
                if r.is_ok() {
                    emu.sign(h, &[1; 32]).unwrap();
                }
                r
            };
            init(&ecdsa).unwrap();
            init(&ecdsa).unwrap();
            emu.set_attributes(h, key, &[(CKA_SIGN, vec![CK_FALSE])])
                .unwrap();
            assert!(matches!(init(&ecdsa), Err(Error::KeyFunctionNotPermitted)));
            emu.set_attributes(h, key, &[(CKA_SIGN, vec![CK_TRUE])])
                .unwrap();
            init(&ecdsa).unwrap();
            // Another mechanism is checked on its own: one the key may not use is refused.
            assert!(matches!(
                init(&Mechanism::new(CKM_GOSTR3410)),
                Err(Error::KeyTypeInconsistent)
            ));
            init(&ecdsa).unwrap();
            if token {
                emu.logout(h).unwrap();
                assert!(matches!(init(&ecdsa), Err(Error::KeyNotFound)));
                emu.login(h, UserType::User, Some(&user)).unwrap();
                init(&ecdsa).unwrap();
            }
            emu.destroy_object(h, key).unwrap();
            assert!(matches!(init(&ecdsa), Err(Error::KeyNotFound)));
        }
    }

    /// A session's own key copy does not outlive a logout: after logging in again it signs
    /// with a key unsealed anew, never with the copy made before (logout forgets every key).
    #[test]
    fn a_sessions_own_key_is_made_again_after_logout() {
        let (_dir, emu, h, user) = logged_in();
        let params = (CKA_EC_PARAMS, crypto::P256_PARAMS.to_vec());
        let sign = (CKA_SIGN, vec![CK_TRUE]);
        let (_, key) = emu
            .generate_key_pair(h, &Mechanism::new(CKM_EC_KEY_PAIR_GEN), &[params], &[sign])
            .unwrap();
        let own = |emu: &Emulator| {
            emu.sign_init(h, &Mechanism::new(CKM_ECDSA), key).unwrap();
            emu.sign(h, &[7; 32]).unwrap();
            let entry = emu.entry(h).unwrap();
            let s = lock(&entry.inner);
            s.signing.as_ref().map(|l| l.key.clone()).unwrap()
        };
        let first = own(&emu);
        assert!(Arc::ptr_eq(&first, &own(&emu)), "kept while logged in");
        emu.logout(h).unwrap();
        emu.login(h, UserType::User, Some(&user)).unwrap();
        assert!(!Arc::ptr_eq(&first, &own(&emu)), "made again after logout");
    }
}
