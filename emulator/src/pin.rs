//! PINs as secrets, where they come from, and the PIN agent of the protected authentication path.

use crate::error::{Error, Result};
use std::path::PathBuf;
use zeroize::{Zeroize, ZeroizeOnDrop};

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
    fn from_str(s: &str) -> std::result::Result<Self, String> {
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
    pub fn read(&self, prompt: &str) -> Result<Pin> {
        match self {
            PinSource::Prompt => rpassword::prompt_password(prompt)
                .map(Pin::from_string)
                .map_err(|e| {
                    Error::PinSourceUnavailable(format!("cannot read from the terminal: {e}"))
                }),
            PinSource::Env(var) => std::env::var(var).map(Pin::from_string).map_err(|_| {
                Error::PinSourceUnavailable(format!("environment variable {var} is not set"))
            }),
            PinSource::File(path) => std::fs::read_to_string(path)
                .map(|s| Pin::from_string(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| {
                    Error::PinSourceUnavailable(format!("cannot read {}: {e}", path.display()))
                }),
        }
    }
}

impl Pin {
    fn from_string(mut s: String) -> Pin {
        let p = Pin(s.as_bytes().to_vec());
        s.zeroize();
        p
    }
}

/// Answers `C_Login` with a NULL PIN on a token with a protected authentication path, like the
/// Tumar CSP PIN window. Chosen by `KILT_PIN_AGENT`: `tty` (default: ask on the terminal),
/// `env:VAR`, `file:PATH` (scripted answers for automation), or `cancel` (the user closes the
/// window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinAgent {
    Tty,
    Scripted(PinSource),
    Cancel,
}

impl PinAgent {
    /// The agent named by `KILT_PIN_AGENT`.
    pub fn from_env() -> PinAgent {
        match std::env::var("KILT_PIN_AGENT").ok().as_deref() {
            None | Some("tty") | Some("") => PinAgent::Tty,
            Some("cancel") => PinAgent::Cancel,
            Some(other) => other
                .parse()
                .map(PinAgent::Scripted)
                .unwrap_or(PinAgent::Cancel),
        }
    }

    /// Asks for the PIN of the token labelled `label`.
    pub fn ask(&self, label: &str) -> Result<Pin> {
        match self {
            PinAgent::Cancel => Err(Error::PinEntryCancelled),
            PinAgent::Scripted(src) => src.read(""),
            PinAgent::Tty => {
                // The window of the Tumar CSP: "Введите PIN-код" (enter the PIN).
                let prompt = format!(
                    "[kilt] Введите PIN-код токена «{label}» / Enter the PIN of token \"{label}\": "
                );
                rpassword::prompt_password(prompt)
                    .map(Pin::from_string)
                    .map_err(|_| Error::PinEntryCancelled)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_never_show_in_debug() {
        let p = Pin::from("1234567890");
        assert_eq!(format!("{p:?}"), "Pin(***)");
        assert!(!format!("{:?}", Some(p)).contains("1234"));
    }

    #[test]
    fn pin_sources_parse_and_read() {
        assert_eq!("prompt".parse(), Ok(PinSource::Prompt));
        assert_eq!("env:X".parse(), Ok(PinSource::Env("X".into())));
        assert!("env:".parse::<PinSource>().is_err());
        assert!("1234".parse::<PinSource>().is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin");
        std::fs::write(&f, "4321\n").unwrap();
        let p = PinSource::File(f).read("").unwrap();
        assert_eq!(p.as_bytes(), b"4321");
        let err = PinSource::Env("KILT_TEST_SURELY_UNSET".into())
            .read("")
            .unwrap_err();
        assert!(err.to_string().contains("KILT_TEST_SURELY_UNSET"));
    }
}
