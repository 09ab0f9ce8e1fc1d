//! PINs (the types live in `kilt-console`, shared with the client) and the PIN agent of the
//! protected authentication path.

use crate::error::{Error, Result};

pub use kilt_console::{Pin, PinSource};

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
            PinAgent::Scripted(src) => Ok(src.read("")?),
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
    fn a_scripted_agent_answers_and_a_closed_window_cancels() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin");
        std::fs::write(&f, "4321\n").unwrap();
        let pin = PinAgent::Scripted(PinSource::File(f)).ask("t").unwrap();
        assert_eq!(pin.as_bytes(), b"4321");
        let missing = PinAgent::Scripted(PinSource::File(dir.path().join("none")))
            .ask("t")
            .unwrap_err();
        assert!(matches!(missing, Error::PinSourceUnavailable(why) if why.contains("none")));
        assert!(matches!(
            PinAgent::Cancel.ask("t"),
            Err(Error::PinEntryCancelled)
        ));
    }
}
