//! What the client tells the user: lines in the chosen language on the terminal, or one JSON
//! object per event with `--json` (for scripts and QA reports).

use std::io::Write;
use std::time::Duration;

use kilt_protocol::Lang;
use serde_json::{Value, json};

/// Where events go.
#[derive(Clone, Debug)]
pub struct Out {
    /// One JSON object per line on stdout instead of text.
    pub json: bool,
    /// Language of the text (and the status labels).
    pub lang: Lang,
    /// Show the English beside the chosen language (the demo shows both).
    pub bilingual: bool,
    /// Say nothing (a flow run by another program, e.g. the QA scenarios, which report it).
    pub quiet: bool,
    /// Also hands each step's event code, as it happens, to another program (`kilt-bench load`
    /// times the steps of many flows with it), quiet or not.
    pub steps: Option<std::sync::mpsc::Sender<(&'static str, std::time::Instant)>>,
}

impl Out {
    /// Text output in `lang`.
    pub fn text(lang: Lang) -> Out {
        Out {
            json: false,
            lang,
            bilingual: false,
            quiet: false,
            steps: None,
        }
    }

    /// No output at all; notices still reach stderr.
    pub fn quiet() -> Out {
        Out {
            quiet: true,
            ..Out::text(Lang::En)
        }
    }

    /// Picks the text for the chosen language; bilingual output adds the English after " / ".
    pub fn words(&self, ru: &str, kk: &str, en: &str) -> String {
        let main = self.lang.pick(ru, kk, en);
        if self.bilingual && self.lang != Lang::En {
            format!("{main} / {en}")
        } else {
            main.to_owned()
        }
    }

    /// One step of a flow: `event` is a stable code, `text` what a person reads.
    pub fn step(&self, event: &'static str, text: &str, data: Value) {
        if let Some(tx) = &self.steps {
            // The receiver may be gone (a report already made); the flow goes on regardless.
            let _ = tx.send((event, std::time::Instant::now()));
        }
        if self.quiet {
            return;
        }
        if self.json {
            let mut obj = json!({"event": event, "message": text});
            if let (Some(o), Value::Object(d)) = (obj.as_object_mut(), data) {
                o.extend(d);
            }
            println!("{obj}");
        } else {
            println!("• {text}");
        }
        std::io::stdout().flush().ok();
    }

    /// A notice that must reach a person even in JSON mode (PIN windows), on stderr.
    pub fn notice(&self, text: &str) {
        eprintln!("{text}");
    }

    /// A spinner on stderr while waiting, when stderr is a terminal and output is text.
    pub fn spinner(&self, text: &str) -> indicatif::ProgressBar {
        if self.json || self.quiet {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(text.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
