//! One token as this process sees it: the store, a cache revalidated against other processes,
//! the PIN logic, the hardware control state, and this application's login.

use crate::crypto::{self, KEY_LEN, PrivateKey};
use crate::error::{Error, Result};
use crate::object::Object;
use crate::pin::Pin;
use crate::profile::{Profile, TimedOp};
use crate::store::{PinOwner, PinRecord, Snapshot, Store, Summary};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use zeroize::Zeroizing;

/// Sealing context of private scalars: binds a blob to its purpose.
const KEY_CONTEXT: &[u8] = b"kilt/ec-private-key/v1";

/// Control keys shared by every process through the store.
pub mod control {
    pub const INSERTIONS: &str = "insertions";
    pub const LATENCY: &str = "latency";
    /// `fault.<op>` = "<count> <kind>".
    pub const FAULT_PREFIX: &str = "fault.";
}

/// What an injected fault makes the operation return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    DeviceError,
    DeviceMemory,
    DeviceRemoved,
    /// A panic inside the library: proves the C boundary catches it.
    Panic,
}

impl FaultKind {
    /// Parses `device-error`, `device-memory` or `device-removed`.
    pub fn parse(s: &str) -> Option<FaultKind> {
        match s {
            "device-error" => Some(FaultKind::DeviceError),
            "device-memory" => Some(FaultKind::DeviceMemory),
            "device-removed" => Some(FaultKind::DeviceRemoved),
            "panic" => Some(FaultKind::Panic),
            _ => None,
        }
    }

    /// The name `parse` accepts.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::DeviceError => "device-error",
            FaultKind::DeviceMemory => "device-memory",
            FaultKind::DeviceRemoved => "device-removed",
            FaultKind::Panic => "panic",
        }
    }

    fn error(self) -> Error {
        match self {
            FaultKind::DeviceError => Error::DeviceError("injected fault".into()),
            FaultKind::DeviceMemory => Error::DeviceMemory,
            FaultKind::DeviceRemoved => Error::DeviceRemoved,
            FaultKind::Panic => panic!("injected panic fault"),
        }
    }
}

/// The operation names faults and latency are keyed by.
pub fn op_name(op: TimedOp) -> &'static str {
    match op {
        TimedOp::Login => "login",
        TimedOp::GenerateKeyPair => "generate",
        TimedOp::Sign => "sign",
        TimedOp::Verify => "verify",
        TimedOp::CreateObject => "create",
        TimedOp::DestroyObject => "destroy",
        TimedOp::FindObjects => "find",
    }
}

/// All operations with a timing, for parsing names.
pub const TIMED_OPS: [TimedOp; 7] = [
    TimedOp::Login,
    TimedOp::GenerateKeyPair,
    TimedOp::Sign,
    TimedOp::Verify,
    TimedOp::CreateObject,
    TimedOp::DestroyObject,
    TimedOp::FindObjects,
];

/// The logged-in user of this application, holding the unwrapped token key.
pub struct Login {
    pub who: PinOwner,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("who", &self.who)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    meta: BTreeMap<String, Vec<u8>>,
    pins: HashMap<PinOwner, PinRecord>,
    control: BTreeMap<String, String>,
    present: bool,
    objects: HashMap<u64, Arc<Object>>,
    /// Faults given by the environment (KILT_FAULTS), counted in this process only.
    env_faults: HashMap<&'static str, (u64, FaultKind)>,
}

/// Presence and counters a session checks on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presence {
    pub present: bool,
    pub insertions: u64,
}

/// A write guard of the cache that updates [`Quick`] when dropped.
struct CacheMut<'a> {
    guard: std::sync::RwLockWriteGuard<'a, Cache>,
    quick: &'a std::sync::atomic::AtomicU64,
    generation: &'a std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for CacheMut<'_> {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.guard
    }
}

impl std::ops::DerefMut for CacheMut<'_> {
    fn deref_mut(&mut self) -> &mut Cache {
        &mut self.guard
    }
}

impl Drop for CacheMut<'_> {
    fn drop(&mut self) {
        // Still under the write lock: writers update the mirror in the order they wrote.
        self.quick.store(
            Quick::of(&self.guard).pack(),
            std::sync::atomic::Ordering::Release,
        );
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// A token in a slot.
pub struct Token {
    store: Mutex<Store>,
    cache: RwLock<Cache>,
    profile: Profile,
    /// The profile's mechanisms, listed once: every operation's init checks against them.
    mechanisms: Vec<crate::emulator::MechanismInfo>,
    login: RwLock<Option<Login>>,
    keys: RwLock<HashMap<u64, Arc<PrivateKey>>>,
    env_latency: Option<bool>,
    defects: Defects,
    /// Beside the token file: a generation number bumped by every control change (removal,
    /// latency, faults). Reading it is a plain file read, which scales across threads, where a
    /// SQLite `data_version` check takes the VFS's process-wide lock.
    control_file: std::path::PathBuf,
    control_seen: std::sync::atomic::AtomicU64,
    /// When the hot path last looked at the control file (ns since `born`).
    control_checked: std::sync::atomic::AtomicU64,
    born: std::time::Instant,
    /// `KILT_LOGIN`'s PIN was refused on this token: it is not tried again in this process.
    cached_pin_refused: std::sync::atomic::AtomicBool,
    /// What every hot call reads of the cache, kept beside it (see [`Quick`]).
    quick: std::sync::atomic::AtomicU64,
    /// Moves whenever something a `C_SignInit` decided on may have changed: the cached objects or
    /// control values, a login or logout, an unsealed key forgotten, a session object of the slot
    /// changed. Sessions keep their own key copy and their last decision while it stays (see
    /// `Emulator::sign_init`).
    generation: std::sync::atomic::AtomicU64,
}

/// Presence, insertions, and whether latency or a fault is set: mirrored from the cache into one
/// atomic whenever it changes, because the hot calls read them three times a signature and a
/// read lock on the shared cache writes its cache line from every thread (two threads signing
/// with one key scaled ~0.1 below aws-lc-rs alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Quick {
    present: bool,
    latency: bool,
    faults: bool,
    insertions: u64,
}

impl Quick {
    fn of(c: &Cache) -> Quick {
        Quick {
            present: c.present,
            latency: c.control.get(control::LATENCY).is_some_and(|v| v == "on"),
            faults: !c.env_faults.is_empty()
                || c.control
                    .keys()
                    .any(|k| k.starts_with(control::FAULT_PREFIX)),
            insertions: c
                .control
                .get(control::INSERTIONS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }

    fn pack(self) -> u64 {
        u64::from(self.present)
            | u64::from(self.latency) << 1
            | u64::from(self.faults) << 2
            | self.insertions << 3
    }

    fn unpack(v: u64) -> Quick {
        Quick {
            present: v & 1 != 0,
            latency: v & 2 != 0,
            faults: v & 4 != 0,
            insertions: v >> 3,
        }
    }
}

/// How often the hot calls look for control changes. A control change waits twice this long
/// before returning, so every call that starts after it returns sees it.
pub const CONTROL_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label())
            .finish_non_exhaustive()
    }
}

/// Deliberate defects, one behaviour each, for proving that a conformance suite notices a broken
/// module (`KILT_DEFECTS=bad-signature,pin-not-counted,...`). Never on unless asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Signatures come out with one bit flipped.
    pub bad_signature: bool,
    /// A wrong PIN does not use a try.
    pub pin_not_counted: bool,
    /// Sensitive attributes (a private key's value) are returned.
    pub sensitive_leak: bool,
    /// A length query (NULL buffer) runs and ends the operation (breaks PKCS#11 §5.2).
    pub length_protocol: bool,
    /// Token objects can be created in read-only sessions.
    pub session_state_ignored: bool,
    /// Attribute lengths and found handles are nonsense (a hostile module).
    pub nonsense: bool,
    /// A digest, sign or verify call that fails on its arguments leaves the operation active
    /// (google/pkcs11test's first finding; breaks §5.10–§5.12).
    pub failed_call_keeps_operation: bool,
    /// `C_Digest` after `C_DigestUpdate` finishes the multi-part digest (breaks §5.10).
    pub single_part_after_update: bool,
    /// `C_DigestFinal` after a `C_Digest` length query returns the digest of nothing (§5.10).
    pub final_after_length_query: bool,
}

impl Defects {
    /// All defect names, for help texts.
    pub const NAMES: [&'static str; 9] = [
        "bad-signature",
        "pin-not-counted",
        "sensitive-leak",
        "length-protocol",
        "session-state-ignored",
        "nonsense",
        "failed-call-keeps-operation",
        "single-part-after-update",
        "final-after-length-query",
    ];

    /// Parses a comma-separated list; unknown names are refused whole.
    pub fn parse(spec: &str) -> Option<Defects> {
        let mut d = Defects::default();
        for name in spec.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let flag = match name {
                "bad-signature" => &mut d.bad_signature,
                "pin-not-counted" => &mut d.pin_not_counted,
                "sensitive-leak" => &mut d.sensitive_leak,
                "length-protocol" => &mut d.length_protocol,
                "session-state-ignored" => &mut d.session_state_ignored,
                "nonsense" => &mut d.nonsense,
                "failed-call-keeps-operation" => &mut d.failed_call_keeps_operation,
                "single-part-after-update" => &mut d.single_part_after_update,
                "final-after-length-query" => &mut d.final_after_length_query,
                _ => return None,
            };
            *flag = true;
        }
        Some(d)
    }
}

/// Settings a process takes from its environment.
#[derive(Clone, Debug, Default)]
pub struct EnvOverrides {
    /// KILT_DEFECTS: deliberate defects for testing test suites.
    pub defects: Defects,
    /// KILT_LATENCY=on|off.
    pub latency: Option<bool>,
    /// KILT_FAULTS, e.g. `sign=3` or `sign=3:device-removed,login=1`.
    pub faults: Vec<(TimedOp, u64, FaultKind)>,
}

impl EnvOverrides {
    /// Reads KILT_LATENCY and KILT_FAULTS; a bad value is reported and ignored, never fatal
    /// inside a host application.
    pub fn from_env() -> EnvOverrides {
        let latency = match std::env::var("KILT_LATENCY").ok().as_deref() {
            Some("on" | "1" | "true") => Some(true),
            Some("off" | "0" | "false") => Some(false),
            _ => None,
        };
        let faults = std::env::var("KILT_FAULTS")
            .map(|v| parse_faults(&v).unwrap_or_default())
            .unwrap_or_default();
        let defects = std::env::var("KILT_DEFECTS")
            .ok()
            .and_then(|v| Defects::parse(&v))
            .unwrap_or_default();
        if defects != Defects::default() {
            tracing::warn!(?defects, "deliberate defects are on (KILT_DEFECTS)");
        }
        EnvOverrides {
            defects,
            latency,
            faults,
        }
    }
}

/// Parses `op=count[:kind],...`.
pub fn parse_faults(spec: &str) -> Option<Vec<(TimedOp, u64, FaultKind)>> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let (op, rest) = item.trim().split_once('=')?;
            let (count, kind) = match rest.split_once(':') {
                Some((c, k)) => (c, FaultKind::parse(k)?),
                None => (rest, FaultKind::DeviceError),
            };
            let op = TIMED_OPS.into_iter().find(|o| op_name(*o) == op)?;
            Some((op, count.parse().ok()?, kind))
        })
        .collect()
}

/// A new PIN record sealing `key` under `pin`.
pub fn pin_record(
    pin: &Pin,
    key: &[u8; KEY_LEN],
    tries: u32,
    iterations: u32,
) -> Result<PinRecord> {
    let mut salt = vec![0u8; 16];
    crypto::random(&mut salt)?;
    let kek = crypto::pin_key(pin.as_bytes(), &salt, iterations);
    Ok(PinRecord {
        wrapped: crypto::seal(&kek, b"kilt/token-key/v1", key)?,
        salt,
        tries_left: tries,
        failed_since_ok: false,
        to_be_changed: false,
    })
}

fn unwrap_key(pin: &Pin, rec: &PinRecord, iterations: u32) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let kek = crypto::pin_key(pin.as_bytes(), &rec.salt, iterations);
    let plain = crypto::open(&kek, b"kilt/token-key/v1", &rec.wrapped)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return None;
    }
    key.copy_from_slice(&plain);
    Some(key)
}

/// A fresh random token key.
pub fn new_token_key() -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    crypto::random(k.as_mut())?;
    Ok(k)
}

impl Token {
    /// Opens the token stored at `path`.
    pub fn open(path: &Path, env: &EnvOverrides) -> Result<Token> {
        let store = Store::open(path)?;
        Token::with_store(store, env)
    }

    /// Wraps an open store.
    pub fn with_store(mut store: Store, env: &EnvOverrides) -> Result<Token> {
        let control_file = control_file_of(store.path());
        let control_seen = read_generation(&control_file);
        let snap = store.refresh()?.unwrap_or_default();
        if Summary::read(store.path()).as_ref() != Some(&Summary::of(&snap.meta, &snap.pins))
            && let Err(e) = store.rewrite_summary()
        {
            // Processes that have not opened the token then open it to read its info.
            tracing::warn!(error = %e, "cannot rewrite the token's summary");
            Summary::remove(store.path());
        }
        let profile = snap
            .meta
            .get("profile")
            .map(|p| Profile::parse(&String::from_utf8_lossy(p)))
            .transpose()?
            .unwrap_or_else(Profile::default_profile);
        let mut cache = Cache::default();
        // A count of 0 means no fault (and must never be decremented).
        for (op, n, kind) in env.faults.iter().filter(|f| f.1 > 0) {
            cache.env_faults.insert(op_name(*op), (*n, *kind));
        }
        let token = Token {
            store: Mutex::new(store),
            cache: RwLock::new(cache),
            mechanisms: crate::emulator::mechanisms(&profile),
            profile,
            login: RwLock::new(None),
            keys: RwLock::new(HashMap::new()),
            env_latency: env.latency,
            defects: env.defects,
            control_file,
            control_seen: std::sync::atomic::AtomicU64::new(control_seen),
            control_checked: std::sync::atomic::AtomicU64::new(0),
            cached_pin_refused: std::sync::atomic::AtomicBool::new(false),
            born: std::time::Instant::now(),
            quick: std::sync::atomic::AtomicU64::new(0),
            generation: std::sync::atomic::AtomicU64::new(0),
        };
        token.apply(snap);
        Ok(token)
    }

    fn apply(&self, snap: Snapshot) {
        let before = self.presence();
        let mut c = self.cache_mut();
        c.meta = snap.meta;
        c.pins = snap.pins;
        c.control = snap.control;
        c.present = snap.present;
        if let Some(objs) = snap.objects {
            c.objects = objs;
        }
        drop(c);
        // Another process removed or re-inserted the token: this application's login is gone,
        // as on the device.
        let after = self.presence();
        if after != before {
            self.logout();
        }
    }

    /// In a forked child: closes the inherited store connection (see
    /// [`Store::release_after_fork`]); a store locked by a thread that did not cross the fork
    /// stays as it is, forgotten.
    pub fn release_after_fork(&self) {
        if let Ok(mut s) = self.store.try_lock() {
            s.release_after_fork();
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache to change; [`Quick`] follows when the guard is dropped.
    fn cache_mut(&self) -> CacheMut<'_> {
        CacheMut {
            guard: self.cache.write().unwrap_or_else(|e| e.into_inner()),
            quick: &self.quick,
            generation: &self.generation,
        }
    }

    fn quick(&self) -> Quick {
        Quick::unpack(self.quick.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Picks up other processes' changes (cheap when there are none: one `PRAGMA data_version`).
    /// If another thread holds the store right now, that thread's check or write already orders
    /// this call against other processes' changes, so it does not wait: threads signing in
    /// parallel must not queue on the store (a call concurrent with a removal may complete as
    /// if before it).
    pub fn refresh(&self) -> Result<()> {
        self.try_refresh().map(drop)
    }

    /// `refresh`, saying whether it ran (false: another thread held the store).
    fn try_refresh(&self) -> Result<bool> {
        let mut store = match self.store.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(false),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        };
        let snap = store.refresh()?;
        drop(store);
        if let Some(s) = snap {
            self.apply(s);
        }
        Ok(true)
    }

    /// The check of the hot calls (operations and their initialisation): at most every
    /// CONTROL_CHECK_INTERVAL, a look at the generation file that every object or control change
    /// bumps, and a full refresh only when it moved. Other processes' changes are seen within the
    /// interval; PIN counters (not bumped) are read by the non-hot calls that show them.
    pub fn refresh_control(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        // No system call at all between looks: threads signing in parallel share nothing here.
        let t = self.born.elapsed().as_nanos() as u64 + 1;
        let last = self.control_checked.load(Ordering::Relaxed);
        if last != 0 && t.saturating_sub(last) < CONTROL_CHECK_INTERVAL.as_nanos() as u64 {
            return Ok(());
        }
        self.control_checked.store(t, Ordering::Relaxed);
        let now = read_generation(&self.control_file);
        if now != self.control_seen.load(Ordering::Acquire) && self.try_refresh()? {
            self.control_seen.store(now, Ordering::Release);
        }
        Ok(())
    }

    /// Announces a change of objects to every process's hot path (seen within
    /// CONTROL_CHECK_INTERVAL).
    fn bump_objects(&self) -> Result<()> {
        self.write_generation()
    }

    /// Announces a control change to every process (after it was committed to the store), and
    /// waits until every process's hot path is sure to look again.
    fn bump_control(&self) -> Result<()> {
        self.write_generation()?;
        // Every process's hot path looks again within CONTROL_CHECK_INTERVAL: once this returns,
        // no call that starts afterwards can miss the change.
        std::thread::sleep(CONTROL_CHECK_INTERVAL * 2);
        Ok(())
    }

    fn write_generation(&self) -> Result<()> {
        let next = read_generation(&self.control_file) + 1;
        let tmp = self.control_file.with_extension("control.tmp");
        // Written beside and renamed over: a reader never sees half a number.
        std::fs::write(&tmp, next.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.control_file))
            .map_err(|e| Error::Store(format!("cannot write {}: {e}", self.control_file.display())))
    }

    /// The deliberate defects of this process.
    pub fn defects(&self) -> Defects {
        self.defects
    }

    /// A signature as handed out: with the `bad-signature` defect, one bit is flipped.
    pub fn finish_signature(&self, mut sig: Vec<u8>) -> Vec<u8> {
        if self.defects.bad_signature {
            sig[7] ^= 0x10;
        }
        sig
    }

    /// The device profile the token was made with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The mechanisms the token offers (its profile's).
    pub fn mechanisms(&self) -> &[crate::emulator::MechanismInfo] {
        &self.mechanisms
    }

    fn meta_str(&self, key: &str) -> String {
        self.cache()
            .meta
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    /// The token label.
    pub fn label(&self) -> String {
        self.meta_str("label")
    }

    /// The token serial number.
    pub fn serial(&self) -> String {
        self.meta_str("serial")
    }

    /// Whether the token is inserted, and how many times it was (re)inserted.
    pub fn presence(&self) -> Presence {
        let q = self.quick();
        Presence {
            present: q.present,
            insertions: q.insertions,
        }
    }

    /// Removes or inserts the token, for every process using it.
    pub fn set_present(&self, present: bool) -> Result<()> {
        if !self.store().set_presence(present)? {
            return self.reload_small();
        }
        // Whatever this process held of the user's keys goes with the token.
        self.logout();
        self.bump_control()?;
        self.reload_small()
    }

    /// Turns device latency on or off for every process (`None` clears the setting).
    pub fn set_latency(&self, on: Option<bool>) -> Result<()> {
        self.store()
            .set_control(control::LATENCY, on.map(|b| if b { "on" } else { "off" }))?;
        self.bump_control()?;
        self.reload_small()
    }

    /// Makes the next `count` operations `op` fail with `kind`, for every process.
    pub fn inject_fault(&self, op: TimedOp, count: u64, kind: FaultKind) -> Result<()> {
        let key = format!("{}{}", control::FAULT_PREFIX, op_name(op));
        let value = (count > 0).then(|| format!("{count} {}", kind.name()));
        self.store().set_control(&key, value.as_deref())?;
        self.bump_control()?;
        self.reload_small()
    }

    /// Whether device latency is on (environment first, then the token's control setting).
    pub fn latency_on(&self) -> bool {
        self.env_latency.unwrap_or_else(|| self.quick().latency)
    }

    /// Faults waiting on the token: (operation, count left, kind).
    pub fn pending_faults(&self) -> Vec<(String, u64, String)> {
        self.cache()
            .control
            .iter()
            .filter_map(|(k, v)| {
                let op = k.strip_prefix(control::FAULT_PREFIX)?;
                let (n, kind) = v.split_once(' ')?;
                Some((op.to_string(), n.parse().ok()?, kind.to_string()))
            })
            .collect()
    }

    /// Hardware behaviour before an operation: the device's latency when on, and any injected
    /// fault (which consumes one count).
    pub fn before(&self, op: TimedOp) -> Result<()> {
        let name = op_name(op);
        if self.latency_on() {
            std::thread::sleep(self.profile.latency.of(op));
        }
        if !self.quick().faults {
            return Ok(());
        }
        let key = format!("{}{name}", control::FAULT_PREFIX);
        let (stored_fault, env_fault) = {
            let c = self.cache();
            (
                c.control.contains_key(&key),
                c.env_faults.contains_key(name),
            )
        };
        if env_fault {
            let mut c = self.cache_mut();
            if let Some((n, kind)) = c.env_faults.get_mut(name) {
                let kind = *kind;
                *n -= 1;
                if *n == 0 {
                    c.env_faults.remove(name);
                }
                return Err(kind.error());
            }
        }
        if stored_fault {
            let taken = self.store().take_control_count(&key)?;
            self.reload_small()?;
            if let Some(kind) = taken {
                return Err(FaultKind::parse(&kind)
                    .unwrap_or(FaultKind::DeviceError)
                    .error());
            }
        }
        Ok(())
    }

    /// The stored PIN record of `who`.
    pub fn pin_record(&self, who: PinOwner) -> Option<PinRecord> {
        self.cache().pins.get(&who).cloned()
    }

    fn max_tries(&self, who: PinOwner) -> u32 {
        match who {
            PinOwner::So => self.profile.so_pin_tries,
            PinOwner::User => self.profile.user_pin_tries,
        }
    }

    /// Checks a PIN like the device: refuses a locked PIN, takes a try and stores it before the
    /// comparison, gives it back on success. Returns the token key the PIN unlocks.
    pub fn verify_pin(&self, who: PinOwner, pin: &Pin) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        self.before(TimedOp::Login)?;
        let rec = if self.defects.pin_not_counted {
            self.pin_record(who)
        } else {
            self.store().take_pin_try(who)?
        };
        let rec = match rec {
            Some(r) => r,
            None if who == PinOwner::User => return Err(Error::UserPinNotInitialized),
            None => return Err(Error::TokenNotInitialized),
        };
        if rec.tries_left == 0 {
            self.refresh()?;
            return Err(Error::PinLocked);
        }
        let result = unwrap_key(pin, &rec, self.profile.kdf_iterations);
        if result.is_some() {
            self.store().pin_succeeded(who, self.max_tries(who))?;
        }
        self.reload_small()?;
        result.ok_or(Error::PinIncorrect {
            tries_left: rec.tries_left - 1,
        })
    }

    /// Re-reads PIN records and control values after this process wrote them (our own commits
    /// do not move our `data_version`, so `refresh` would not see them).
    fn reload_small(&self) -> Result<()> {
        let small = self.store().read_pins_and_control()?;
        let mut c = self.cache_mut();
        c.pins = small.pins;
        c.control = small.control;
        c.present = small.present;
        Ok(())
    }

    /// Sets `who`'s PIN to `pin`, sealing `key` under it (full tries, not "to be changed").
    pub fn set_pin(&self, who: PinOwner, pin: &Pin, key: &[u8; KEY_LEN]) -> Result<()> {
        let rec = pin_record(pin, key, self.max_tries(who), self.profile.kdf_iterations)?;
        self.store().set_pin(who, &rec)?;
        self.reload_small()
    }

    /// Checks a PIN's length and characters against the profile.
    pub fn check_pin_format(&self, who: PinOwner, pin: &Pin) -> Result<()> {
        let (min, max) = match who {
            PinOwner::So => (self.profile.so_pin_min, self.profile.so_pin_max),
            PinOwner::User => (self.profile.user_pin_min, self.profile.user_pin_max),
        };
        check_pin_format(pin, min, max)
    }

    /// Re-initialises the token (C_InitToken): every object and the user PIN go.
    pub fn reinitialise(&self, label: &str, so_pin: &Pin) -> Result<()> {
        self.verify_pin(PinOwner::So, so_pin)?;
        let key = new_token_key()?;
        let rec = pin_record(
            so_pin,
            &key,
            self.profile.so_pin_tries,
            self.profile.kdf_iterations,
        )?;
        self.store()
            .reinitialise(&[("label", label.as_bytes().to_vec())], &rec)?;
        self.bump_objects()?;
        self.logout();
        let mut c = self.cache_mut();
        c.objects.clear();
        c.meta.insert("label".into(), label.as_bytes().to_vec());
        drop(c);
        self.reload_small()
    }

    /// Records a successful login of this application.
    pub fn set_login(&self, who: PinOwner, key: Zeroizing<[u8; KEY_LEN]>) {
        *self.login.write().unwrap_or_else(|e| e.into_inner()) = Some(Login { who, key });
        self.changed();
    }

    /// Whether `KILT_LOGIN`'s PIN may still be tried here (it was not refused before).
    pub fn may_try_cached_pin(&self) -> bool {
        !self
            .cached_pin_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `KILT_LOGIN`'s PIN was refused: each further try would count on the device.
    pub fn cached_pin_refused(&self) {
        self.cached_pin_refused
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Who is logged in (in this application).
    pub fn logged_in(&self) -> Option<PinOwner> {
        self.login
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.who)
    }

    /// The token key of the logged-in user or SO.
    pub fn login_key(&self) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        self.login
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.key.clone())
    }

    /// Forgets the login and every unsealed key.
    pub fn logout(&self) {
        *self.login.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.keys.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.changed();
    }

    /// See `generation`.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Moves `generation`: the emulator calls it when it changes the slot's session objects.
    pub fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// A token object by handle.
    pub fn object(&self, handle: u64) -> Option<Arc<Object>> {
        self.cache().objects.get(&handle).cloned()
    }

    /// Visits token objects without copying the list (the find hot path).
    pub fn for_each_object(&self, mut f: impl FnMut(u64, &Object)) {
        for (h, o) in &self.cache().objects {
            f(*h, o);
        }
    }

    /// Seals a private scalar under the logged-in user's token key.
    pub fn seal_private(&self, scalar: &[u8]) -> Result<Vec<u8>> {
        let key = self.login_key().ok_or(Error::NotLoggedIn)?;
        crypto::seal(&key, KEY_CONTEXT, scalar)
    }

    /// The usable private key of object `handle`, unsealed once per login and cached.
    pub fn private_key(&self, handle: u64, obj: &Object) -> Result<Arc<PrivateKey>> {
        if let Some(k) = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&handle)
        {
            return Ok(k.clone());
        }
        let sealed = obj.secret.as_ref().ok_or(Error::KeyTypeInconsistent)?;
        let key = self.login_key().ok_or(Error::NotLoggedIn)?;
        let scalar = crypto::open(&key, KEY_CONTEXT, sealed)
            .ok_or_else(|| Error::DeviceError("a stored key does not decrypt".into()))?;
        let alg = obj.key_algorithm().ok_or(Error::KeyTypeInconsistent)?;
        let k = Arc::new(PrivateKey::from_scalar(alg, &scalar)?);
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle, k.clone());
        Ok(k)
    }

    /// Keeps a key just made for object `handle`, so its first use needs no unsealing.
    pub fn remember_key(&self, handle: u64, key: Arc<PrivateKey>) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle, key);
    }

    /// Forgets the unsealed key of a session object that is gone.
    pub fn forget_key(&self, handle: u64) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&handle);
        self.changed();
    }

    /// Unseals the private `CKA_VALUE` of an extractable, non-sensitive key: big-endian for EC,
    /// little-endian for GOST (2.40 curr. mech., GOST R 34.10-2001 private key objects).
    pub fn reveal_private(&self, obj: &Object) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = obj.secret.as_ref().ok_or(Error::KeyTypeInconsistent)?;
        let key = self.login_key().ok_or(Error::NotLoggedIn)?;
        let scalar = crypto::open(&key, KEY_CONTEXT, sealed)
            .ok_or_else(|| Error::DeviceError("a stored key does not decrypt".into()))?;
        Ok(match obj.key_algorithm() {
            Some(alg) => alg.private_value_order(&scalar),
            None => scalar,
        })
    }

    /// Stores new token objects (one transaction) and returns their handles.
    pub fn insert(&self, objs: &[Object]) -> Result<Vec<u64>> {
        let refs: Vec<&Object> = objs.iter().collect();
        let handles = self.store().insert_objects(&refs)?;
        self.bump_objects()?;
        let mut c = self.cache_mut();
        for (h, o) in handles.iter().zip(objs) {
            c.objects.insert(*h, Arc::new(o.clone()));
        }
        Ok(handles)
    }

    /// Replaces a token object.
    pub fn update(&self, handle: u64, obj: Object) -> Result<()> {
        self.store().update_object(handle, &obj)?;
        self.bump_objects()?;
        self.cache_mut().objects.insert(handle, Arc::new(obj));
        Ok(())
    }

    /// Deletes a token object.
    pub fn delete(&self, handle: u64) -> Result<()> {
        self.store().delete_object(handle)?;
        self.bump_objects()?;
        self.cache_mut().objects.remove(&handle);
        self.forget_key(handle);
        Ok(())
    }
}

/// The control generation file of a token file.
fn control_file_of(token_file: &Path) -> std::path::PathBuf {
    let mut name = token_file.as_os_str().to_owned();
    name.push(".control");
    name.into()
}

/// The control generation (0 when no control change ever happened).
fn read_generation(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Checks a PIN's length (in bytes) and that it is printable ASCII.
pub fn check_pin_format(pin: &Pin, min: usize, max: usize) -> Result<()> {
    let b = pin.as_bytes();
    if b.len() < min || b.len() > max {
        return Err(Error::PinLenRange { min, max });
    }
    if !b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        return Err(Error::PinInvalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Emulator};

    /// The mirror keeps each of its four values apart, whatever the others are.
    #[test]
    fn quick_packs_and_unpacks_every_combination() {
        for bits in 0..8u8 {
            for insertions in [0u64, 1, 5, 1 << 40] {
                let q = Quick {
                    present: bits & 1 != 0,
                    latency: bits & 2 != 0,
                    faults: bits & 4 != 0,
                    insertions,
                };
                assert_eq!(Quick::unpack(q.pack()), q);
            }
        }
    }

    #[test]
    fn fault_specs_parse_or_are_refused_whole() {
        assert_eq!(
            parse_faults("sign=3,login=1:device-removed"),
            Some(vec![
                (TimedOp::Sign, 3, FaultKind::DeviceError),
                (TimedOp::Login, 1, FaultKind::DeviceRemoved)
            ])
        );
        assert_eq!(parse_faults("sign=x"), None);
        assert_eq!(parse_faults("teleport=1"), None);
        assert_eq!(parse_faults("sign=1:melt"), None);
    }

    #[test]
    fn environment_faults_count_down_and_zero_means_none() {
        let dir = tempfile::tempdir().unwrap();
        Emulator::new(Config::in_dir(dir.path()))
            .unwrap()
            .init_token(0, &Pin::from("00000000"), "env")
            .unwrap();
        let mut config = Config::in_dir(dir.path());
        config.env.faults = parse_faults("sign=2,login=0").unwrap();
        let emu = Emulator::new(config).unwrap();
        let t = emu.token(0).unwrap();
        assert!(matches!(
            t.before(TimedOp::Sign),
            Err(Error::DeviceError(_))
        ));
        assert!(matches!(
            t.before(TimedOp::Sign),
            Err(Error::DeviceError(_))
        ));
        assert!(t.before(TimedOp::Sign).is_ok());
        assert!(t.before(TimedOp::Login).is_ok());
    }

    #[test]
    fn control_settings_are_seen_by_every_process() {
        let dir = tempfile::tempdir().unwrap();
        let a = Emulator::new(Config::in_dir(dir.path())).unwrap();
        a.init_token(0, &Pin::from("00000000"), "ctl").unwrap();
        // A second emulator on the same folder stands for another process.
        let b = Emulator::new(Config::in_dir(dir.path())).unwrap();
        let (ta, tb) = (a.token(0).unwrap(), b.token(0).unwrap());
        assert!(!tb.latency_on(), "latency is off by default");
        ta.set_latency(Some(true)).unwrap();
        ta.inject_fault(TimedOp::Sign, 2, FaultKind::DeviceMemory)
            .unwrap();
        tb.refresh().unwrap();
        assert!(tb.latency_on());
        assert_eq!(
            tb.pending_faults(),
            vec![("sign".to_string(), 2, "device-memory".to_string())]
        );
        // One process consuming a fault leaves one for the other.
        assert!(matches!(tb.before(TimedOp::Sign), Err(Error::DeviceMemory)));
        ta.refresh().unwrap();
        assert_eq!(ta.pending_faults().len(), 1);
        ta.set_latency(None).unwrap();
        ta.inject_fault(TimedOp::Sign, 0, FaultKind::DeviceError)
            .unwrap();
        tb.refresh().unwrap();
        assert!(!tb.latency_on() && tb.pending_faults().is_empty());
    }
}
