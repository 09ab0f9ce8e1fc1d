//! `kilt-console`: what kilt's command-line tools (`kilt`, `kilt-token`, `kilt-conformance`)
//! share with the person at the terminal — PINs as secrets and where they come from, the yes/no
//! question before something is deleted, and where kilt's own PKCS#11 module lives.
//!
//! It is its own crate so that the regeneration client a customer installs for a physical token
//! does not link the emulated token just for these.
//!
//! ```
//! use kilt_console::{Pin, PinSource};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("pin"), "1234567890\n").unwrap();
//! let source: PinSource = format!("file:{}", dir.path().join("pin").display()).parse().unwrap();
//! let pin: Pin = source.read("PIN: ").unwrap();
//! assert_eq!(pin.as_bytes(), b"1234567890");
//! assert_eq!(format!("{pin:?}"), "Pin(***)");
//! ```

use std::io::{BufRead, Write};
use std::path::PathBuf;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// What can go wrong here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsoleError {
    /// The PIN's source gave nothing.
    #[error("cannot read the PIN: {0}")]
    PinUnavailable(String),
    /// kilt's PKCS#11 module is not where it was looked for.
    #[error("{0}")]
    ModuleNotFound(String),
}

/// A PIN. Wiped on drop, never printed: `Debug` shows `Pin(***)`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pin(Vec<u8>);

impl Pin {
    /// Wraps PIN bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Pin {
        Pin(bytes.into())
    }

    /// The PIN bytes, for the key derivation only.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes a string's bytes and wipes the string.
    pub fn from_string(mut s: String) -> Pin {
        let p = Pin(s.as_bytes().to_vec());
        s.zeroize();
        p
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}

impl From<&str> for Pin {
    fn from(s: &str) -> Pin {
        Pin(s.as_bytes().to_vec())
    }
}

/// Where a PIN comes from: `prompt` (terminal, no echo), `env:VAR` or `file:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    Prompt,
    Env(String),
    File(PathBuf),
}

impl std::str::FromStr for PinSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "prompt" {
            Ok(PinSource::Prompt)
        } else if let Some(v) = s.strip_prefix("env:").filter(|v| !v.is_empty()) {
            Ok(PinSource::Env(v.into()))
        } else if let Some(p) = s.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Ok(PinSource::File(p.into()))
        } else {
            Err(format!(
                "PIN source {s:?} is not valid; use prompt, env:VAR or file:PATH"
            ))
        }
    }
}

impl PinSource {
    /// Reads the PIN; `prompt` is what the terminal shows. A file's trailing newline is dropped.
    pub fn read(&self, prompt: &str) -> Result<Pin, ConsoleError> {
        match self {
            PinSource::Prompt => rpassword::prompt_password(prompt)
                .map(Pin::from_string)
                .map_err(|e| {
                    ConsoleError::PinUnavailable(format!("cannot read from the terminal: {e}"))
                }),
            PinSource::Env(var) => std::env::var(var).map(Pin::from_string).map_err(|_| {
                ConsoleError::PinUnavailable(format!("environment variable {var} is not set"))
            }),
            PinSource::File(path) => std::fs::read_to_string(path)
                .map(|s| Pin::from_string(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| {
                    ConsoleError::PinUnavailable(format!("cannot read {}: {e}", path.display()))
                }),
        }
    }
}

/// Asks a yes/no question on the terminal; only "Да"/"да"/"yes"/"y" confirm.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [Да/Нет | yes/no]: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    is_yes(&line)
}

fn is_yes(answer: &str) -> bool {
    matches!(
        answer.trim().to_lowercase().as_str(),
        "да" | "д" | "yes" | "y"
    )
}

/// Absolute path of `libkilt_pkcs11.so`: `KILT_MODULE`, else beside this executable (cargo's
/// target folder puts both there), or one folder up from a test binary.
pub fn module_path() -> Result<PathBuf, ConsoleError> {
    if let Some(p) = std::env::var_os("KILT_MODULE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()
        .map_err(|e| ConsoleError::ModuleNotFound(format!("cannot find myself: {e}")))?;
    if let Some(found) = module_beside(&exe) {
        return Ok(found);
    }
    Err(ConsoleError::ModuleNotFound(
        "libkilt_pkcs11.so is not built next to this program; run `cargo build -p kilt-pkcs11` \
         (or set KILT_MODULE)"
            .into(),
    ))
}

/// `libkilt_pkcs11.so` in the folder of `exe`, else one folder up (test binaries live in
/// `target/<profile>/deps`).
fn module_beside(exe: &std::path::Path) -> Option<PathBuf> {
    let here = exe.parent()?;
    [Some(here), here.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("libkilt_pkcs11.so"))
        .find(|p| p.exists())
        .map(|p| p.canonicalize().unwrap_or(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_never_show_in_debug() {
        let p = Pin::from("1234567890");
        assert_eq!(format!("{p:?}"), "Pin(***)");
        assert!(!format!("{:?}", Some(p)).contains("1234"));
        assert_eq!(Pin::new(*b"42").as_bytes(), b"42");
    }

    #[test]
    fn pin_sources_parse_and_read() {
        assert_eq!("prompt".parse(), Ok(PinSource::Prompt));
        assert_eq!("env:X".parse(), Ok(PinSource::Env("X".into())));
        assert_eq!("file:/p".parse(), Ok(PinSource::File("/p".into())));
        assert!("env:".parse::<PinSource>().is_err());
        assert!("file:".parse::<PinSource>().is_err());
        assert!("1234".parse::<PinSource>().is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin");
        std::fs::write(&f, "4321\r\n").unwrap();
        let p = PinSource::File(f).read("").unwrap();
        assert_eq!(p.as_bytes(), b"4321");
        let err = PinSource::Env("KILT_TEST_SURELY_UNSET".into())
            .read("")
            .unwrap_err();
        assert!(err.to_string().contains("KILT_TEST_SURELY_UNSET"));
        let err = PinSource::File(dir.path().join("none"))
            .read("")
            .unwrap_err();
        assert!(matches!(err, ConsoleError::PinUnavailable(why) if why.contains("none")));
    }

    #[test]
    fn only_yes_confirms() {
        for yes in ["Да\n", "да", " д ", "YES", "y\r\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "Нет", "n", "no", "yes please", "1"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn the_module_is_found_beside_the_program_or_one_folder_up() {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("deps");
        std::fs::create_dir(&deps).unwrap();
        let exe = deps.join("kilt");
        assert_eq!(module_beside(&exe), None);
        let up = dir.path().join("libkilt_pkcs11.so");
        std::fs::write(&up, b"").unwrap();
        assert_eq!(module_beside(&exe), Some(up.canonicalize().unwrap()));
        let beside = deps.join("libkilt_pkcs11.so");
        std::fs::write(&beside, b"").unwrap();
        assert_eq!(module_beside(&exe), Some(beside.canonicalize().unwrap()));
    }
}
