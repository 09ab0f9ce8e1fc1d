//! The journal: where a regeneration stands, one file per token and flow, so that a rerun after
//! a crash, a removed token or a server outage resumes at the right step and never makes a
//! second key set.
//!
//! Each step is recorded *before* its effect when the effect is not repeatable (the new key's
//! `CKA_ID` is chosen and written down before the key is generated, so a crash right after
//! `C_GenerateKeyPair` finds that key instead of making another), and after it when repeating
//! is harmless. Files are replaced atomically (write, fsync, rename, fsync the folder).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ClientError, Result};

/// `KILT_STATE_DIR`, else `$XDG_STATE_HOME/kilt`, else `~/.local/state/kilt`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KILT_STATE_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("kilt")
}

static SAVES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Fault injection for crash-safety testing, like the emulator's `KILT_FAULTS`:
/// `KILT_CRASH_AT=before:N` or `after:N` kills the process (abort, no clean-up) just before or
/// just after the N-th journal write of this process — the points where a step's effect and
/// its record can part.
fn crash_point(when: &str, n: u32) {
    if let Ok(spec) = std::env::var("KILT_CRASH_AT")
        && spec.split_once(':') == Some((when, n.to_string().as_str()))
    {
        eprintln!("kilt: KILT_CRASH_AT={spec}: crashing on purpose");
        std::process::abort();
    }
}

/// One journal file.
#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

fn fail(path: &Path, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Journal {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl Journal {
    /// The journal of `flow` (`bank` or `ca`) on the token with this serial, in `dir`.
    pub fn new(dir: &Path, token_serial: &str, flow: &str) -> Journal {
        let safe: String = token_serial
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Journal {
            path: dir.join(format!("{flow}-{safe}.json")),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded state, if a regeneration is under way.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                fail(
                    &self.path,
                    format!("unreadable ({e}); move it away to start over"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(&self.path, e)),
        }
    }

    /// Records `state`, durably.
    pub fn save<T: Serialize>(&self, state: &T) -> Result<()> {
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        crash_point("before", n);
        self.write(state)?;
        crash_point("after", n);
        Ok(())
    }

    fn write<T: Serialize>(&self, state: &T) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(state).map_err(|e| fail(&self.path, e))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| fail(&tmp, e))?;
        f.write_all(&body).map_err(|e| fail(&tmp, e))?;
        f.sync_all().map_err(|e| fail(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| fail(&self.path, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().ok();
        }
        Ok(())
    }

    /// Ends the regeneration: the file goes.
    pub fn finish(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(fail(&self.path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct S {
        step: u8,
    }

    #[test]
    fn saves_loads_replaces_and_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path(), "A1/b 2", "bank");
        assert!(j.path().ends_with("bank-A1_b_2.json"));
        assert_eq!(j.load::<S>().unwrap(), None);
        j.save(&S { step: 1 }).unwrap();
        j.save(&S { step: 2 }).unwrap();
        assert_eq!(j.load::<S>().unwrap(), Some(S { step: 2 }));
        j.finish().unwrap();
        j.finish().unwrap();
        assert_eq!(j.load::<S>().unwrap(), None);
        std::fs::write(j.path(), b"{not json").unwrap();
        let e = j.load::<S>().unwrap_err().to_string();
        assert!(e.contains("move it away"), "{e}");
    }
}
