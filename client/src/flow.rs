//! What both regeneration flows share: where the server is and how patiently to talk to it,
//! where the journal lives, how to confirm deleting the old keys — and how a resumed run says so.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::api::Retry;
use crate::journal::Journal;
use crate::keys::Confirm;
use crate::out::Out;

/// The settings [`crate::ca::CaOptions`] and [`crate::bank::BankOptions`] share.
#[derive(Clone, Debug)]
pub struct FlowSettings {
    /// API base URL, e.g. `https://127.0.0.1:9443`.
    pub url: String,
    /// The server's root certificate (DER): trusted for TLS and for the issued certificates.
    pub root: Vec<u8>,
    /// Journal folder.
    pub state_dir: PathBuf,
    /// Retries.
    pub retry: Retry,
    /// Pause between polls of a request waiting for the server or its operator.
    pub poll_every: Duration,
    /// Give up polling after this long (the journal resumes later).
    pub poll_for: Duration,
    /// Deletion of the old key sets.
    pub confirm: Confirm,
}

/// Tells the user a run resumes `journal` at `step`; `what` names the flow's work
/// (Russian, Kazakh, English), e.g. "прерванную регенерацию".
pub fn announce_resume(
    out: &Out,
    journal: &Journal,
    what: [&str; 3],
    step: &(impl std::fmt::Debug + serde::Serialize),
) {
    out.step(
        "resume",
        &out.words(
            &format!("Продолжаю {} (шаг {step:?})", what[0]),
            &format!("{} жалғастырамын ({step:?})", what[1]),
            &format!("Resuming the {} (step {step:?})", what[2]),
        ),
        json!({"step": step, "journal": journal.path()}),
    );
}
