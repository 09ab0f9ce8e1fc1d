//! PC/SC readers (`kilt readers`): what is plugged in, its ATR, whether it is a JaCarta, and
//! waiting for insertion — through pcscd, as the Tumar CSP sees the token (seed 004 step 1).

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};
use serde::Serialize;

use crate::error::{ClientError, Result};

/// The JaCarta PKI's ATR (DESIGN.md, "The token"), without the TCK byte's variations.
pub const JACARTA_ATR_PREFIX: &[u8] = &[
    0x3B, 0xDC, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x73, 0xC8, 0x21, 0x13, 0x66,
];

/// One reader.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Reader {
    /// The reader's name as pcscd gives it.
    pub name: String,
    /// The card's ATR, upper-case hex with spaces, if a card is present.
    pub atr: Option<String>,
    /// Recognised as a JaCarta by name or ATR.
    pub jacarta: bool,
}

/// Whether a reader name or ATR is a JaCarta's.
pub fn is_jacarta(name: &str, atr: &[u8]) -> bool {
    let n = name.to_lowercase();
    n.contains("jacarta") || n.contains("aladdin") || atr.starts_with(JACARTA_ATR_PREFIX)
}

fn no_service(e: pcsc::Error) -> ClientError {
    match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => ClientError::Pcsc(
            "pcscd is not running, so no reader can be seen; install and start it (`apt-get install pcscd && pcscd`, or `systemctl start pcscd.socket`) and try again".into(),
        ),
        other => ClientError::Pcsc(format!("PC/SC failed: {other}")),
    }
}

fn states(ctx: &Context) -> Result<Vec<ReaderState>> {
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => vec![],
        Err(e) => return Err(no_service(e)),
    };
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|n| ReaderState::new(n, State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(Duration::from_millis(0), &mut states)
            .map_err(no_service)?;
    }
    Ok(states)
}

fn reader(s: &ReaderState) -> Reader {
    let name = s.name().to_string_lossy().into_owned();
    let present = s.event_state().contains(State::PRESENT);
    let atr = present.then(|| {
        s.atr()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    Reader {
        jacarta: is_jacarta(&name, if present { s.atr() } else { &[] }),
        name,
        atr,
    }
}

/// Every reader and its card.
pub fn list() -> Result<Vec<Reader>> {
    let ctx = Context::establish(Scope::User).map_err(no_service)?;
    Ok(states(&ctx)?.iter().map(reader).collect())
}

/// Waits until a JaCarta (or, with `any`, any card) is present; `None` after `timeout`.
pub fn wait(timeout: Duration, any: bool) -> Result<Option<Reader>> {
    let ctx = Context::establish(Scope::User).map_err(no_service)?;
    let start = Instant::now();
    let pnp = CString::new("\\\\?PnP?\\Notification").expect("no NUL");
    loop {
        let mut s = states(&ctx)?;
        if let Some(r) = s
            .iter()
            .map(reader)
            .find(|r| r.atr.is_some() && (any || r.jacarta))
        {
            return Ok(Some(r));
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(None);
        }
        for st in &mut s {
            st.sync_current_state();
        }
        // Also wake on readers appearing (PC/SC's PnP pseudo-reader).
        s.push(ReaderState::new(pnp.clone(), State::UNAWARE));
        match ctx.get_status_change(left.min(Duration::from_secs(1)), &mut s) {
            Ok(()) | Err(pcsc::Error::Timeout) | Err(pcsc::Error::UnknownReader) => {}
            Err(e) => return Err(no_service(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_jacarta_by_name_or_atr_only() {
        let atr = [
            0x3B, 0xDC, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x73, 0xC8, 0x21, 0x13,
            0x66, 0x01, 0x06, 0x11, 0x59, 0x00, 0x01, 0x28,
        ];
        assert!(is_jacarta("Generic CCID 00 00", &atr));
        assert!(is_jacarta("Aladdin R.D. JaCarta 00 00", &[]));
        assert!(!is_jacarta("Virtual PCD 00 00", &[0x3B, 0x8F, 0x80]));
        assert!(!is_jacarta("SafeNet eToken 5100 00 00", &[]));
    }
}
