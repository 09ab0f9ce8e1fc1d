//! Deleting an old key set: the last step of both flows and `kilt keys delete`.
//!
//! As in the Tumar configurator (seed 004 step 6): the question twice ("Да"), then the PIN
//! again; `--yes` answers all three for automation. Never deletes the only key set with a
//! valid certificate, nor one an unfinished regeneration still needs.

use std::path::Path;

use kilt_console::PinSource;

use crate::bank::BankJournal;
use crate::ca::CaJournal;
use crate::error::{ClientError, Result};
use crate::journal::Journal;
use crate::out::Out;
use crate::token::{KeySet, Token, show_id};

/// How a deletion is confirmed.
#[derive(Clone, Debug)]
pub struct Confirm {
    /// Answer "Да" twice and skip the PIN re-entry.
    pub yes: bool,
    /// Where the PIN re-entry comes from.
    pub pin: PinSource,
}

/// Why `id` must stay, if it must.
pub fn refusal(sets: &[KeySet], id: &[u8], pending: &[Vec<u8>]) -> Option<String> {
    let shown = show_id(id);
    let Some(target) = sets.iter().find(|s| s.id_bytes == id) else {
        return Some(format!(
            "there is no key set {shown} on the token; list them with `kilt status`"
        ));
    };
    if pending.iter().any(|p| p == id) {
        return Some(format!(
            "key set {shown} is still needed by an unfinished regeneration; finish it first (rerun `kilt regen ...`)"
        ));
    }
    let usable = |s: &KeySet| s.certificate.as_ref().is_some_and(|c| c.days_left >= 0);
    if usable(target) && !sets.iter().any(|s| s.id_bytes != id && usable(s)) {
        return Some(format!(
            "key set {shown} is the only one with a valid certificate; regenerate before deleting it"
        ));
    }
    None
}

/// The `CKA_ID`s unfinished journals of this token still need.
pub fn pending_ids(dir: &Path, serial: &str) -> Result<Vec<Vec<u8>>> {
    let mut ids = vec![];
    if let Some(j) = Journal::new(dir, serial, "bank").load::<BankJournal>()? {
        ids.extend([j.old_id, j.new_id]);
    }
    if let Some(j) = Journal::new(dir, serial, "ca").load::<CaJournal>()? {
        ids.extend([j.old_auth, j.old_sign, j.new_auth, j.new_sign]);
    }
    ids.retain(|id| !id.is_empty());
    Ok(ids)
}

/// Asks twice and for the PIN (unless `--yes`), then deletes the key set. `Ok(false)`: the user
/// said no, nothing was deleted.
pub fn confirm_and_delete(
    token: &mut Token,
    id: &[u8],
    confirm: &Confirm,
    out: &Out,
) -> Result<bool> {
    let shown = show_id(id);
    if !confirm.yes {
        let q1 = out.words(
            &format!("Удалить старый комплект ключей {shown}?"),
            &format!("Ескі кілттер жинағын {shown} жою керек пе?"),
            &format!("Delete the old key set {shown}?"),
        );
        let q2 = out.words(
            "Вы уверены? Восстановить ключи будет невозможно.",
            "Сенімдісіз бе? Кілттерді қалпына келтіру мүмкін болмайды.",
            "Are you sure? The keys cannot be recovered.",
        );
        if !kilt_console::confirm(&q1) || !kilt_console::confirm(&q2) {
            return Ok(false);
        }
        token.relogin(&confirm.pin, &mut |n| out.notice(n))?;
    }
    let n = token.delete_set(id)?;
    if n == 0 {
        return Err(ClientError::DeleteRefused(format!(
            "there is no key set {shown} on the token"
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::CertInfo;

    fn set(id: &str, days_left: Option<i64>) -> KeySet {
        KeySet {
            id: id.into(),
            id_bytes: id.as_bytes().to_vec(),
            label: id.into(),
            point: vec![],
            certificate: days_left.map(|d| CertInfo {
                serial: "01".into(),
                subject: "s".into(),
                issuer: "i".into(),
                not_before: String::new(),
                not_after: String::new(),
                days_left: d,
                client_auth: false,
                label: String::new(),
                der: vec![],
                point: vec![],
                algorithm: crate::token::P256.into(),
            }),
        }
    }

    #[test]
    fn keeps_the_only_valid_set_and_what_a_regeneration_needs() {
        let sets = [
            set("old", Some(10)),
            set("new", Some(365)),
            set("bare", None),
        ];
        assert_eq!(refusal(&sets, b"old", &[]), None);
        assert_eq!(refusal(&sets, b"bare", &[]), None);
        let only = [
            set("old", Some(10)),
            set("expired", Some(-3)),
            set("bare", None),
        ];
        assert!(refusal(&only, b"old", &[]).unwrap().contains("only one"));
        // An expired set may go even when nothing else is valid: it is usable by no one.
        assert_eq!(refusal(&only, b"expired", &[]), None);
        let pending = vec![b"new".to_vec()];
        assert!(
            refusal(&sets, b"new", &pending)
                .unwrap()
                .contains("unfinished")
        );
        assert!(
            refusal(&sets, b"ghost", &[])
                .unwrap()
                .contains("no key set")
        );
    }
}
