//! `kilt demo`: a fresh emulated JaCarta, the mock CA and the mock bank on ephemeral loopback
//! ports with temporary state, first certificates provisioned, then Flow 2 and Flow 1 end to
//! end with scripted PINs, and a summary table. Nothing is left running or on disk.
//!
//! The PKCS#11 module reads its token folder from `KILT_TOKEN_DIR` when it is initialised, so
//! the CLI runs the demo in a child process of itself with that variable set to a temporary
//! folder ([`run_inner`] is what the child does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kilt_console::{Pin, PinSource};
use kilt_protocol::Lang;
use serde::Serialize;

use crate::admin::{Admin, Identity, provision};
use crate::api::Retry;
use crate::bank::BankOptions;
use crate::ca::CaOptions;
use crate::error::{ClientError, Result};
use crate::flow::FlowSettings;
use crate::keys::Confirm;
use crate::out::Out;
use crate::token::{KeySet, Selector, Token};

/// The demo token's label.
pub const LABEL: &str = "JaCarta";
/// The national CA's instructions' default user PIN.
pub const USER_PIN: &str = "1234567890";
/// The national CA's instructions' default admin (SO) PIN.
pub const SO_PIN: &str = "00000000";

fn demo(e: impl std::fmt::Display) -> ClientError {
    ClientError::Demo(e.to_string())
}

/// What the demo did.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Flow 2's outcome.
    pub ca: crate::ca::CaOutcome,
    /// Flow 1's outcome.
    pub bank: crate::bank::BankOutcome,
    /// The token's key sets at the end.
    pub key_sets: Vec<KeySet>,
    /// Seconds for set-up, Flow 2 and Flow 1.
    pub seconds: (f64, f64, f64),
    /// Whether the application PDF was saved outside the temporary folder.
    pub kept: bool,
}

/// The child's part: `tokens` is the module's `KILT_TOKEN_DIR`, `work` holds the servers'
/// state, the PIN file and the journals; the application PDF goes to `keep` or `work`.
pub async fn run_inner(
    module: &Path,
    tokens: &Path,
    work: &Path,
    keep: Option<&Path>,
    out: &Out,
) -> Result<Summary> {
    let t0 = Instant::now();
    let say = |event: &'static str, ru: &str, en: &str| {
        out.step(event, &out.words(ru, ru, en), serde_json::json!({}))
    };

    // A fresh token, initialised as the CA's instructions say.
    let emu = kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(tokens)).map_err(demo)?;
    emu.provision(0, LABEL, &Pin::from(SO_PIN), &Pin::from(USER_PIN))
        .map_err(demo)?;
    drop(emu);
    say(
        "token",
        &format!("Эмулированный токен JaCarta PKI «{LABEL}» инициализирован (PIN {USER_PIN})"),
        &format!("Emulated JaCarta PKI token {LABEL:?} initialised (PIN {USER_PIN})"),
    );

    // Both servers on 127.0.0.1:0.
    let ca = kilt_mock_ca::serve(kilt_mock_ca::Config::ephemeral(work.join("ca")))
        .await
        .map_err(demo)?;
    let mut bank_config = kilt_mock_bank::Config::ephemeral(work.join("bank"));
    bank_config.settings.processing_seconds = 1;
    let bank = kilt_mock_bank::serve(bank_config).await.map_err(demo)?;
    say(
        "servers",
        &format!("УЦ: {}  Банк: {}", ca.url(), bank.url()),
        &format!("CA: {}  Bank: {}", ca.url(), bank.url()),
    );

    let result = flows(module, work, keep, out, &ca, &bank, t0).await;
    ca.shutdown().await;
    bank.shutdown().await;
    result
}

async fn flows(
    module: &Path,
    work: &Path,
    keep: Option<&Path>,
    out: &Out,
    ca: &kilt_mock_ca::Server,
    bank: &kilt_mock_bank::Server,
    t0: Instant,
) -> Result<Summary> {
    let pin_file = work.join("pin");
    std::fs::write(&pin_file, USER_PIN).map_err(demo)?;
    let pin = PinSource::File(pin_file);
    let selector = Selector {
        label: Some(LABEL.into()),
        ..Selector::default()
    };
    let mut token = Token::open(module, &selector)?;
    token.login(&pin, &mut |n| out.notice(n))?;

    let admin = Admin::new(&ca.admin_url(), &bank.admin_url())?;
    let first = provision(&token, &admin, &Identity::example(), 20).await?;
    out.step(
        "provisioned",
        &out.words(
            "Первые сертификаты выданы и записаны на токен: AUTH и SIGN от УЦ, ключ ЭЦП банка (действуют ещё 20 дней)",
            "Алғашқы сертификаттар берілді: AUTH, SIGN (КО) және банк кілті (20 күн)",
            "First certificates issued and written to the token: AUTH and SIGN from the CA, the bank's EDS key (20 days left)",
        ),
        serde_json::to_value(&first).unwrap_or_default(),
    );
    let setup = t0.elapsed();

    let ca_flow = FlowSettings {
        url: ca.url(),
        root: ca.ca().pki().root_der().to_vec(),
        state_dir: work.join("state"),
        retry: Retry {
            first_delay: Duration::from_millis(100),
            ..Retry::default()
        },
        poll_every: Duration::from_millis(200),
        poll_for: Duration::from_secs(60),
        confirm: Confirm {
            yes: true,
            pin: pin.clone(),
        },
    };
    let bank_flow = FlowSettings {
        url: bank.url(),
        root: bank.bank().pki().root_der().to_vec(),
        poll_every: Duration::from_millis(250),
        ..ca_flow.clone()
    };
    let application = keep
        .map(Path::to_path_buf)
        .unwrap_or_else(|| work.to_path_buf());

    out.step(
        "flow2",
        &out.words(
            "── Поток 2: перевыпуск сертификатов в УЦ (вход «По сертификату», устройство JaCarta)",
            "── 2-ағын: КО-да қайта шығару",
            "── Flow 2: certificate reissue at the CA (login by certificate, device JaCarta)",
        ),
        serde_json::json!({}),
    );
    let t1 = Instant::now();
    let ca_done = crate::ca::reissue(
        &mut token,
        &CaOptions {
            flow: ca_flow,
            application,
        },
        out,
    )
    .await?;
    let flow2 = t1.elapsed();

    out.step(
        "flow1",
        &out.words(
            "── Поток 1: регенерация комплекта ключей в банке (Сервис → Безопасность → Регенерация комплекта ключей → Профили)",
            "── 1-ағын: банктегі кілттер жинағын қайта шығару",
            "── Flow 1: key-set regeneration at the bank (Service → Security → Key-set regeneration → Profiles)",
        ),
        serde_json::json!({}),
    );
    let t2 = Instant::now();
    let bank_done = crate::bank::regenerate(
        &mut token,
        &BankOptions {
            flow: bank_flow,
            profile: None,
        },
        out,
    )
    .await?;
    let flow1 = t2.elapsed();
    let key_sets = token.key_sets()?;
    Ok(Summary {
        ca: ca_done,
        bank: bank_done,
        key_sets,
        seconds: (
            setup.as_secs_f64(),
            flow2.as_secs_f64(),
            flow1.as_secs_f64(),
        ),
        kept: keep.is_some(),
    })
}

/// The summary table printed at the end.
pub fn table(summary: &Summary, lang: Lang) -> String {
    let mut s = String::new();
    let head = lang.pick(
        "Ключи на токене после демонстрации / Key sets on the token after the demo",
        "Демонстрациядан кейінгі токендегі кілттер / Key sets on the token after the demo",
        "Key sets on the token after the demo",
    );
    s.push_str(&format!("\n{head}\n"));
    s.push_str(&format!(
        "{:<16} {:<24} {:<34} {:<12} {:>5}\n",
        "CKA_ID", "issuer", "serial", "not_after", "days"
    ));
    for k in &summary.key_sets {
        if let Some(c) = &k.certificate {
            s.push_str(&format!(
                "{:<16} {:<24} {:<34} {:<12} {:>5}\n",
                k.id,
                c.issuer.chars().take(24).collect::<String>(),
                c.serial,
                c.not_after.get(..10).unwrap_or(""),
                c.days_left
            ));
        } else {
            s.push_str(&format!("{:<16} (no certificate)\n", k.id));
        }
    }
    let statuses: Vec<&str> = summary
        .bank
        .statuses
        .iter()
        .map(|st| st.label(lang))
        .collect();
    s.push_str(&format!(
        "\nFlow 2 (CA): request {} issued {} certificates; application {}{}\n",
        summary.ca.request,
        summary.ca.certificates.len(),
        summary.ca.application.display(),
        if summary.kept {
            ""
        } else {
            " (removed with the demo's temporary folder; --keep DIR keeps it)"
        }
    ));
    s.push_str(&format!(
        "Flow 1 (bank): regeneration {}: {}\n",
        summary.bank.regeneration,
        statuses.join(" → ")
    ));
    s.push_str(&format!(
        "Time: set-up {:.1} s, Flow 2 {:.1} s, Flow 1 {:.1} s\n",
        summary.seconds.0, summary.seconds.1, summary.seconds.2
    ));
    s
}

/// The folders a demo child uses inside `root`.
pub fn layout(root: &Path) -> (PathBuf, PathBuf) {
    (root.join("tokens"), root.join("work"))
}
