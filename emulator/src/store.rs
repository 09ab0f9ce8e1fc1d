//! One SQLite file per token.
//!
//! Durability: WAL with `synchronous=FULL`, so a change that returned is on disk and survives a
//! kill -9 or power loss; every change is one transaction. Several processes share a file: writes
//! take SQLite's write lock (`BEGIN IMMEDIATE`, with a busy timeout) and each process notices
//! other processes' commits through `PRAGMA data_version`, reloading only what changed.

use crate::error::{Error, Result};
use crate::object::{AttrType, Object};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pins(
    user INTEGER PRIMARY KEY,
    salt BLOB NOT NULL,
    wrapped BLOB NOT NULL,
    tries_left INTEGER NOT NULL,
    failed_since_ok INTEGER NOT NULL DEFAULT 0,
    to_be_changed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS objects(handle INTEGER PRIMARY KEY AUTOINCREMENT, secret BLOB);
CREATE TABLE IF NOT EXISTS attributes(
    object INTEGER NOT NULL REFERENCES objects(handle) ON DELETE CASCADE,
    type INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY(object, type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS control(key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Who a PIN belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinOwner {
    So,
    User,
}

impl PinOwner {
    fn key(self) -> i64 {
        match self {
            PinOwner::So => 0,
            PinOwner::User => 1,
        }
    }
}

/// A stored PIN: the token key sealed under the PIN-derived key, and the retry counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinRecord {
    pub salt: Vec<u8>,
    pub wrapped: Vec<u8>,
    pub tries_left: u32,
    pub failed_since_ok: bool,
    pub to_be_changed: bool,
}

/// What a process caches of a token, reloaded when another process commits.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub meta: BTreeMap<String, Vec<u8>>,
    pub pins: HashMap<PinOwner, PinRecord>,
    pub control: BTreeMap<String, String>,
    /// `Some` only when the objects changed since the last snapshot.
    pub objects: Option<HashMap<u64, Arc<Object>>>,
    pub objects_gen: i64,
    /// Whether the token is inserted (no [`unplugged_marker`] beside the file).
    pub present: bool,
}

/// What `C_GetSlotInfo`/`C_GetTokenInfo` show of a token, kept beside its file
/// (`slot-N.kilt.summary`) so a process with thousands of tokens reads one small file instead of
/// opening each database. No secret is in it: the PINs' counters and flags, not their records.
///
/// Written inside the write transaction that changes it, just before the commit (so concurrent
/// writers, ordered by SQLite's write lock, leave the last commit's summary), removed if that
/// commit fails, and removed by a process that opens the token and finds it differing (a crash
/// between the write and the commit). Without a summary, readers open the database.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub label: String,
    pub serial: String,
    /// The profile's TOML, as stored in the token.
    pub profile: String,
    /// (owner: 0 SO, 1 user; tries left; failed since the last success; to be changed).
    pub pins: Vec<(i64, u32, bool, bool)>,
}

impl Summary {
    /// The summary file of a token file.
    pub fn file(token_file: &Path) -> PathBuf {
        let mut name = token_file.as_os_str().to_owned();
        name.push(".summary");
        name.into()
    }

    /// Reads a token's summary; `None` when there is none (or it cannot be read).
    pub fn read(token_file: &Path) -> Option<Summary> {
        let bytes = std::fs::read(Summary::file(token_file)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The summary of what a snapshot holds.
    pub fn of(meta: &BTreeMap<String, Vec<u8>>, pins: &HashMap<PinOwner, PinRecord>) -> Summary {
        let text = |k: &str| {
            meta.get(k)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let mut pins: Vec<(i64, u32, bool, bool)> = pins
            .iter()
            .map(|(o, r)| (o.key(), r.tries_left, r.failed_since_ok, r.to_be_changed))
            .collect();
        pins.sort_unstable();
        Summary {
            label: text("label"),
            serial: text("serial"),
            profile: text("profile"),
            pins,
        }
    }

    /// The counters of `who`'s PIN, if it is set.
    pub fn pin(&self, who: PinOwner) -> Option<(u32, bool, bool)> {
        self.pins
            .iter()
            .find(|p| p.0 == who.key())
            .map(|p| (p.1, p.2, p.3))
    }

    /// Removes a token's summary (readers then open the database).
    pub fn remove(token_file: &Path) {
        let _ = std::fs::remove_file(Summary::file(token_file));
    }

    fn write(&self, token_file: &Path) -> Result<()> {
        let file = Summary::file(token_file);
        let mut tmp = file.clone().into_os_string();
        tmp.push(format!(".{}", std::process::id()));
        let json = serde_json::to_vec(self).map_err(|e| Error::Store(e.to_string()))?;
        // Written beside and renamed over: a reader never sees half a summary.
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|e| Error::Store(format!("cannot write {}: {e}", file.display())))
    }
}

/// Commits a transaction that changed the token's label or PINs, writing the summary first.
fn commit_with_summary(tx: rusqlite::Transaction, token_file: &Path) -> Result<()> {
    let meta = read_meta(&tx)?;
    let pins = read_pins(&tx)?;
    Summary::of(&meta, &pins).write(token_file)?;
    if let Err(e) = tx.commit() {
        Summary::remove(token_file);
        return Err(e.into());
    }
    Ok(())
}

/// What changes without objects changing: PIN records, control settings and presence.
#[derive(Clone, Debug, Default)]
pub struct Small {
    pub pins: HashMap<PinOwner, PinRecord>,
    pub control: BTreeMap<String, String>,
    pub present: bool,
}

/// The file whose existence says a token is pulled out: `slot-N.kilt.unplugged`.
///
/// Presence lives in the folder, not in the database, so a process with thousands of tokens
/// answers `C_GetSlotList(CK_TRUE)` from one directory listing without opening any of them. A
/// change of presence also commits to the database (see [`Store::set_presence`]), so processes
/// that have the token open notice it through `PRAGMA data_version` and look at the marker again.
pub fn unplugged_marker(token_file: &Path) -> PathBuf {
    let mut name = token_file.as_os_str().to_owned();
    name.push(".unplugged");
    name.into()
}

/// An open token file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    data_version: Option<i64>,
    objects_gen: Option<i64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Closes the connection a forked child inherited (SQLite: a connection must not cross
    /// `fork()`; while it stays open in the child, the child's new connections to the same file
    /// share its per-process lock bookkeeping and skip `fcntl()` for locks only the parent holds).
    /// The close releases nothing of the parent's: POSIX locks belong to the process that took
    /// them.
    pub fn release_after_fork(&mut self) {
        if let Ok(blank) = Connection::open_in_memory() {
            drop(std::mem::replace(&mut self.conn, blank));
        }
    }

    /// Creates a token file with its metadata and SO PIN record. The file appears under its name
    /// only once complete (written beside it, then renamed), so a scanner never sees half a token.
    pub fn create(path: &Path, meta: &[(&str, Vec<u8>)], so_pin: PinRecord) -> Result<Store> {
        let tmp = path.with_extension("creating");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
        {
            let mut conn = connect(&tmp)?;
            let tx = conn.transaction()?;
            tx.execute_batch(SCHEMA)?;
            for (k, v) in meta {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            tx.execute("INSERT INTO meta(key, value) VALUES ('objects_gen', 0)", [])?;
            Store::write_pin(&tx, PinOwner::So, &so_pin)?;
            tx.commit()?;
            // Fold the WAL into the main file so the rename moves a complete database.
            conn.pragma_update(None, "journal_mode", "DELETE")?;
        }
        // A marker left by a token file deleted by hand would pull the new token out.
        if !path.exists() {
            let _ = std::fs::remove_file(unplugged_marker(path));
        }
        // A hard link never replaces an existing file, so two processes initialising the same
        // spare slot cannot overwrite each other's token.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|e| Error::Store(format!("cannot create {}: {e}", path.display())))?;
        let mut store = Store::open(path)?;
        let tx = store
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        commit_with_summary(tx, path)?;
        Ok(store)
    }

    /// Opens an existing token file.
    pub fn open(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(Error::Store(format!("{} does not exist", path.display())));
        }
        let conn = connect(path)?;
        // Files of older versions may lack a table; creating "if not exists" on every open would
        // cost a write transaction each time, which a folder of thousands of tokens feels.
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
             AND name IN ('meta', 'pins', 'objects', 'attributes', 'control')",
            [],
            |r| r.get(0),
        )?;
        if tables < 5 {
            conn.execute_batch(SCHEMA)?;
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            data_version: None,
            objects_gen: None,
        })
    }

    /// Writes the summary again from the database, under the write lock (a token of an older
    /// version had none; a crash between a summary and its commit left one ahead).
    pub fn rewrite_summary(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        commit_with_summary(tx, &self.path)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads what other processes changed since the last call; `None` if nothing did.
    pub fn refresh(&mut self) -> Result<Option<Snapshot>> {
        let dv: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version == Some(dv) {
            return Ok(None);
        }
        // Read everything in one transaction so the snapshot is consistent.
        let tx = self.conn.transaction()?;
        let mut snap = Snapshot::default();
        {
            snap.meta = read_meta(&tx)?;
            snap.pins = read_pins(&tx)?;
            snap.control = read_control(&tx)?;
            snap.present = !unplugged_marker(&self.path).exists();
            snap.objects_gen = tx
                .prepare_cached("SELECT value FROM meta WHERE key = 'objects_gen'")?
                .query_row([], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            if self.objects_gen != Some(snap.objects_gen) {
                snap.objects = Some(load_objects(&tx)?);
            }
        }
        tx.commit()?;
        self.data_version = Some(dv);
        self.objects_gen = Some(snap.objects_gen);
        Ok(Some(snap))
    }

    /// Runs `f` in a write transaction and bumps the object generation, so other processes reload.
    fn write_objects<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T>,
    ) -> Result<T> {
        self.write_objects_and(false, f)
    }

    /// `write_objects`, also writing the summary when `summary` (the label or PINs changed).
    fn write_objects_and<T>(
        &mut self,
        summary: bool,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T>,
    ) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'objects_gen'",
            [],
        )?;
        if summary {
            commit_with_summary(tx, &self.path)?;
        } else {
            tx.commit()?;
        }
        // Our own commit does not change our data_version, so our cache stays valid: the
        // caller updates it in place. Only forget the generation so a later refresh by another
        // process's change reloads objects.
        self.objects_gen = None;
        Ok(out)
    }

    /// Stores new objects in one transaction (a key pair is two); returns their handles, never
    /// reused (AUTOINCREMENT).
    pub fn insert_objects(&mut self, objs: &[&Object]) -> Result<Vec<u64>> {
        self.write_objects(|tx| {
            let mut ids = Vec::with_capacity(objs.len());
            for obj in objs {
                tx.execute(
                    "INSERT INTO objects(secret) VALUES (?1)",
                    params![obj.secret],
                )?;
                let id = tx.last_insert_rowid();
                write_attrs(tx, id, obj)?;
                ids.push(id as u64);
            }
            Ok(ids)
        })
    }

    /// Replaces an object's attributes.
    pub fn update_object(&mut self, handle: u64, obj: &Object) -> Result<()> {
        self.write_objects(|tx| {
            let n = tx.execute(
                "UPDATE objects SET secret = ?2 WHERE handle = ?1",
                params![handle as i64, obj.secret],
            )?;
            if n == 0 {
                return Err(Error::ObjectNotFound);
            }
            tx.execute("DELETE FROM attributes WHERE object = ?1", [handle as i64])?;
            write_attrs(tx, handle as i64, obj)
        })
    }

    /// Deletes an object.
    pub fn delete_object(&mut self, handle: u64) -> Result<()> {
        self.write_objects(|tx| {
            let n = tx.execute("DELETE FROM objects WHERE handle = ?1", [handle as i64])?;
            if n == 0 {
                return Err(Error::ObjectNotFound);
            }
            Ok(())
        })
    }

    /// Re-initialisation (C_InitToken): all objects and the user PIN go, the SO PIN record and
    /// the metadata are replaced, in one transaction.
    pub fn reinitialise(&mut self, meta: &[(&str, Vec<u8>)], so_pin: &PinRecord) -> Result<()> {
        self.write_objects_and(true, |tx| {
            tx.execute("DELETE FROM objects", [])?;
            tx.execute("DELETE FROM pins", [])?;
            for (k, v) in meta {
                tx.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            Store::write_pin(tx, PinOwner::So, so_pin)
        })
    }

    fn write_pin(tx: &rusqlite::Transaction, owner: PinOwner, rec: &PinRecord) -> Result<()> {
        tx.execute(
            "INSERT OR REPLACE INTO pins(user, salt, wrapped, tries_left, failed_since_ok, to_be_changed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                owner.key(),
                rec.salt,
                rec.wrapped,
                rec.tries_left,
                rec.failed_since_ok,
                rec.to_be_changed
            ],
        )?;
        Ok(())
    }

    /// Sets a PIN record.
    pub fn set_pin(&mut self, owner: PinOwner, rec: &PinRecord) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Store::write_pin(&tx, owner, rec)?;
        commit_with_summary(tx, &self.path)
    }

    /// Takes one try of a PIN: the counter is decremented and committed *before* the caller
    /// compares the PIN, so killing the process mid-check cannot give a free try. Returns the
    /// record as it was (with the tries before this attempt), or `None` if there is no such PIN.
    pub fn take_pin_try(&mut self, owner: PinOwner) -> Result<Option<PinRecord>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rec = read_pins(&tx)?.remove(&owner);
        if let Some(rec) = &rec
            && rec.tries_left > 0
        {
            tx.execute(
                "UPDATE pins SET tries_left = tries_left - 1, failed_since_ok = 1 WHERE user = ?1",
                [owner.key()],
            )?;
        }
        commit_with_summary(tx, &self.path)?;
        Ok(rec)
    }

    /// Gives back the try after a correct PIN: counter full again, no recent failure.
    pub fn pin_succeeded(&mut self, owner: PinOwner, max_tries: u32) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE pins SET tries_left = ?2, failed_since_ok = 0 WHERE user = ?1",
            params![owner.key(), max_tries],
        )?;
        commit_with_summary(tx, &self.path)
    }

    /// Sets a control value (presence, latency, faults), seen by every process using the token.
    pub fn set_control(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT OR REPLACE INTO control(key, value) VALUES (?1, ?2)",
                params![key, v],
            )?,
            None => self
                .conn
                .execute("DELETE FROM control WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// Removes or inserts the token; false if it already was so. The marker file is the truth;
    /// the transaction around it orders concurrent changes (SQLite's write lock) and makes every
    /// process that has the token open look again. The marker moves first, so a process that
    /// sees the commit also sees the marker: inserting removes it, then counts the insertion (the
    /// previous insertion's sessions stay closed); removing creates it, then commits.
    pub fn set_presence(&mut self, present: bool) -> Result<bool> {
        let marker = unplugged_marker(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if marker.exists() != present {
            return Ok(false);
        }
        let moved = if present {
            std::fs::remove_file(&marker)
        } else {
            std::fs::write(&marker, b"")
        };
        moved.map_err(|e| Error::Store(format!("cannot change {}: {e}", marker.display())))?;
        let n: u64 = read_control(&tx)?
            .get(crate::token::control::INSERTIONS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let committed = tx
            .execute(
                "INSERT OR REPLACE INTO control(key, value) VALUES (?1, ?2)",
                params![
                    crate::token::control::INSERTIONS,
                    (n + u64::from(present)).to_string()
                ],
            )
            .and_then(|_| tx.commit());
        if let Err(e) = committed {
            // Undo the marker: the change did not happen for processes that have the token open.
            let _ = if present {
                std::fs::write(&marker, b"")
            } else {
                std::fs::remove_file(&marker)
            };
            return Err(e.into());
        }
        Ok(true)
    }

    /// Atomically takes one unit from a counted control value ("<count> <kind>", an injected
    /// fault); returns the kind if one was left.
    pub fn take_control_count(&mut self, key: &str) -> Result<Option<String>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let cur: Option<String> = tx
            .query_row("SELECT value FROM control WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        let parsed = cur.as_deref().and_then(|v| {
            let (n, kind) = v.split_once(' ')?;
            Some((n.parse::<u64>().ok()?, kind.to_string()))
        });
        let taken = match parsed {
            Some((n, kind)) if n > 0 => {
                if n == 1 {
                    tx.execute("DELETE FROM control WHERE key = ?1", [key])?;
                } else {
                    tx.execute(
                        "UPDATE control SET value = ?2 WHERE key = ?1",
                        params![key, format!("{} {kind}", n - 1)],
                    )?;
                }
                Some(kind)
            }
            _ => None,
        };
        tx.commit()?;
        Ok(taken)
    }

    /// Reads the PIN records and control values (after this process wrote them).
    pub fn read_pins_and_control(&mut self) -> Result<Small> {
        let tx = self.conn.transaction()?;
        let pins = read_pins(&tx)?;
        let control = read_control(&tx)?;
        tx.commit()?;
        Ok(Small {
            pins,
            control,
            present: !unplugged_marker(&self.path).exists(),
        })
    }
}

fn read_meta(tx: &rusqlite::Transaction) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut st = tx.prepare_cached("SELECT key, value FROM meta")?;
    let rows = st.query_map([], |r| {
        let bytes = match r.get::<_, rusqlite::types::Value>(1)? {
            rusqlite::types::Value::Blob(b) => b,
            rusqlite::types::Value::Text(t) => t.into_bytes(),
            rusqlite::types::Value::Integer(i) => i.to_string().into_bytes(),
            _ => vec![],
        };
        Ok((r.get::<_, String>(0)?, bytes))
    })?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
}

fn read_control(tx: &rusqlite::Transaction) -> Result<BTreeMap<String, String>> {
    let mut st = tx.prepare_cached("SELECT key, value FROM control")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
}

fn read_pins(tx: &rusqlite::Transaction) -> Result<HashMap<PinOwner, PinRecord>> {
    let mut st = tx.prepare_cached(
        "SELECT user, salt, wrapped, tries_left, failed_since_ok, to_be_changed FROM pins",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            PinRecord {
                salt: r.get(1)?,
                wrapped: r.get(2)?,
                tries_left: r.get(3)?,
                failed_since_ok: r.get(4)?,
                to_be_changed: r.get(5)?,
            },
        ))
    })?;
    let mut pins = HashMap::new();
    for row in rows {
        let (user, rec) = row?;
        let owner = if user == 0 {
            PinOwner::So
        } else {
            PinOwner::User
        };
        pins.insert(owner, rec);
    }
    Ok(pins)
}

fn write_attrs(tx: &rusqlite::Transaction, id: i64, obj: &Object) -> Result<()> {
    let mut st =
        tx.prepare_cached("INSERT INTO attributes(object, type, value) VALUES (?1, ?2, ?3)")?;
    for (ty, v) in obj.attributes() {
        st.execute(params![id, *ty as i64, v])?;
    }
    Ok(())
}

fn load_objects(tx: &rusqlite::Transaction) -> Result<HashMap<u64, Arc<Object>>> {
    let mut secrets: HashMap<i64, Option<Vec<u8>>> = HashMap::new();
    let mut st = tx.prepare_cached("SELECT handle, secret FROM objects")?;
    for row in st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (h, s) = row?;
        secrets.insert(h, s);
    }
    let mut attrs: HashMap<i64, BTreeMap<AttrType, Vec<u8>>> = HashMap::new();
    let mut st = tx.prepare_cached("SELECT object, type, value FROM attributes")?;
    for row in st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })? {
        let (h, t, v) = row?;
        attrs.entry(h).or_default().insert(t as AttrType, v);
    }
    Ok(secrets
        .into_iter()
        .map(|(h, s)| {
            let a = attrs.remove(&h).unwrap_or_default();
            (h as u64, Arc::new(Object::from_stored(a, s)))
        })
        .collect())
}
