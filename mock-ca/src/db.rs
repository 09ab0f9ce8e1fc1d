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

/// Seconds the server's clock is ahead of the system clock.
pub fn clock_offset(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key='clock_offset'", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

/// The server's now.
pub fn clock_now(conn: &Connection) -> rusqlite::Result<OffsetDateTime> {
    Ok(OffsetDateTime::now_utc() + Duration::seconds(clock_offset(conn)?))
}

/// Moves the clock by `days`; returns the new offset in seconds.
pub fn shift_clock(conn: &Connection, days: i64) -> rusqlite::Result<i64> {
    let offset = clock_offset(conn)? + days * 86_400;
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('clock_offset', ?1)
         ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        [offset],
    )?;
    Ok(offset)
}
