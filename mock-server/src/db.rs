//! SQLite plumbing shared by the mock servers: one connection opened for durability, and the
//! admin-shiftable clock kept in a `meta` table.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension};
use time::{Duration, OffsetDateTime};

/// A server's database: one connection behind a lock.
#[derive(Debug)]
pub struct Db(Mutex<Connection>);

impl Db {
    /// Opens `path` in WAL mode with `synchronous=FULL` (an answered request is on disk before
    /// the answer leaves), foreign keys on, and runs `schema` plus the `meta` table.
    pub fn open(path: &Path, schema: &str) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )?;
        conn.execute_batch(schema)?;
        Ok(Db(Mutex::new(conn)))
    }

    /// The connection. A panic while holding the lock leaves SQLite consistent (transactions
    /// roll back on drop), so a poisoned lock is safe to keep using.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How far the admin may move a server's clock from the system clock, either way: 100 years.
/// One bound on the *total* offset, checked before anything is stored (README, "The clock").
pub const MAX_CLOCK_OFFSET_DAYS: i64 = 36_500;
const MAX_OFFSET_SECONDS: i64 = MAX_CLOCK_OFFSET_DAYS * 86_400;

/// Seconds the server's clock is ahead of the system clock, within the bound (a stored value
/// beyond it, from an older version, counts as the bound: see [`repair_clock`]).
pub fn clock_offset(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(stored_offset(conn)?.clamp(-MAX_OFFSET_SECONDS, MAX_OFFSET_SECONDS))
}

fn stored_offset(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key='clock_offset'", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

/// At start: a stored offset beyond the bound is clamped to it and stored so, with a warning, so
/// that a data directory from before the bound still starts.
pub fn repair_clock(conn: &Connection) -> rusqlite::Result<()> {
    let stored = stored_offset(conn)?;
    let clamped = stored.clamp(-MAX_OFFSET_SECONDS, MAX_OFFSET_SECONDS);
    if stored != clamped {
        tracing::warn!(
            stored_days = stored / 86_400,
            max_days = MAX_CLOCK_OFFSET_DAYS,
            "the stored clock offset is beyond the bound; clamped"
        );
        store_offset(conn, clamped)?;
    }
    Ok(())
}

/// The time at `offset` seconds from the system clock.
pub fn at_offset(offset: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::seconds(offset)
}

/// The clock as the admin listeners show it, at `offset` seconds from the system clock.
pub fn clock_at(offset: i64) -> kilt_protocol::ca::Clock {
    let now = at_offset(offset);
    kilt_protocol::ca::Clock {
        now: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| now.unix_timestamp().to_string()),
        offset_seconds: offset,
    }
}

/// The server's now.
pub fn clock_now(conn: &Connection) -> rusqlite::Result<OffsetDateTime> {
    Ok(at_offset(clock_offset(conn)?))
}

/// Why the clock was not moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockRefusal {
    /// The shift alone is beyond the clock's whole range (±2 × the bound): a bad request.
    TooFar(String),
    /// The shift is fine, but from where the clock is now it would leave the bound: a
    /// conflict with the current state.
    OutOfRange(String),
}

/// Moves the clock by `days` when the total stays within [`MAX_CLOCK_OFFSET_DAYS`]: the new
/// offset in seconds, or the refusal (nothing stored).
pub fn shift_clock(conn: &Connection, days: i64) -> rusqlite::Result<Result<i64, ClockRefusal>> {
    let whole = 2 * MAX_CLOCK_OFFSET_DAYS;
    if !(-whole..=whole).contains(&days) {
        return Ok(Err(ClockRefusal::TooFar(format!(
            "advance_days must be within ±{whole} (the clock's whole range)"
        ))));
    }
    let current = clock_offset(conn)?;
    let offset = current + days * 86_400;
    if !(-MAX_OFFSET_SECONDS..=MAX_OFFSET_SECONDS).contains(&offset) {
        return Ok(Err(ClockRefusal::OutOfRange(format!(
            "the clock may be at most {MAX_CLOCK_OFFSET_DAYS} days from the system clock and is {} days from it now; advance it by {} to {} days",
            current / 86_400,
            -MAX_CLOCK_OFFSET_DAYS - current / 86_400,
            MAX_CLOCK_OFFSET_DAYS - current / 86_400
        ))));
    }
    store_offset(conn, offset)?;
    Ok(Ok(offset))
}

fn store_offset(conn: &Connection, offset: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('clock_offset', ?1)
         ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        [offset],
    )?;
    Ok(())
}
