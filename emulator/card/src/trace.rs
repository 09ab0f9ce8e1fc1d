//! The trace of `kilt-token attach --trace FILE`: one line per command with its name, the
//! C-APDU, the R-APDU and what the status word means. PIN bytes are never written.

use crate::card::Exchange;

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One exchange as a trace line.
pub fn line(ex: &Exchange) -> String {
    let mut out = format!("{:<28} C: {}", ex.name, hex(&ex.command));
    if ex.hidden > 0 {
        out.push_str(&format!(" <{} more bytes not shown: PIN>", ex.hidden));
    }
    let data = &ex.response[..ex.response.len().saturating_sub(2)];
    out.push_str(" | R: ");
    if !data.is_empty() {
        out.push_str(&hex(data));
        out.push(' ');
    }
    out.push_str(&ex.sw.to_string());
    if let Some(n) = &ex.note {
        out.push_str(" — ");
        out.push_str(n);
    }
    out
}
