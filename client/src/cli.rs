//! The `kilt` command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kilt_console::PinSource;
use kilt_protocol::Lang;
use serde_json::json;

use crate::api::Retry;
use crate::bank::BankOptions;
use crate::ca::CaOptions;
use crate::error::{ClientError, Result};
use crate::flow::FlowSettings;
use crate::keys::{Confirm, confirm_and_delete, pending_ids, refusal};
use crate::out::Out;
use crate::token::{Selector, Token, show_id};
use crate::uri::Pkcs11Uri;

/// Exit status of a failed command (clap uses 2 for bad usage).
pub const EXIT_FAILURE: u8 = 1;

/// The EDS key-set regeneration client.
#[derive(Debug, Parser)]
#[command(
    name = "kilt",
    version,
    about = "Regenerate EDS key sets on a PKCS#11 token with a bank (BS-Client) or the CA (kilt)",
    long_about = "Regenerate electronic-signature key sets on a PKCS#11 token: `regen bank` (the \
                  bank's key-set regeneration, seed 000) and `regen ca` (the CA's reissue with \
                  login by certificate, seed 004). Works with the kilt emulator (default), \
                  SoftHSM2 or a physical JaCarta through its vendor module (libjcPKCS11-2.so).\n\n\
                  `kilt demo` runs both flows against an emulated token and both mock servers \
                  in one go, with nothing to configure.",
    after_help = "Tokens: --token LABEL, --serial SERIAL or --uri 'pkcs11:token=JaCarta;serial=...' (RFC 7512).\n\
                  PIN sources: prompt (default; no echo), env:VAR, file:PATH. A token with a protected \
                  authentication path asks in its own window.\n\
                  Journals of unfinished regenerations: KILT_STATE_DIR (default ~/.local/state/kilt); \
                  rerunning the same command resumes.\n\
                  Exit status: 0 success, 1 failure (one line on stderr), 2 bad usage."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// PKCS#11 module (default: KILT_MODULE, else libkilt_pkcs11.so beside this program).
    #[arg(long, global = true, value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// Token label.
    #[arg(long, global = true, value_name = "LABEL")]
    pub token: Option<String>,
    /// Token serial number.
    #[arg(long, global = true, value_name = "SERIAL")]
    pub serial: Option<String>,
    /// Token (and module) by PKCS#11 URI.
    #[arg(long, global = true, value_name = "URI")]
    pub uri: Option<String>,
    /// Where the user PIN comes from.
    #[arg(long, global = true, default_value = "prompt", value_name = "SOURCE")]
    pub pin_source: PinSource,
    /// Language of messages and statuses: ru, kk, en.
    #[arg(long, global = true, default_value = "ru", value_parser = parse_lang)]
    pub lang: Lang,
    /// One JSON object per line instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Folder of the journals (overrides KILT_STATE_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Longest wait for one answer from the bank or CA, seconds (then the request is retried).
    #[arg(long, global = true, default_value_t = 15, value_name = "SECS")]
    pub timeout: u64,
}

fn parse_lang(s: &str) -> std::result::Result<Lang, String> {
    Lang::from_code(s).ok_or_else(|| format!("{s:?} is not a language; use ru, kk or en"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tokens, their key sets and certificates, days to expiry, what needs regeneration.
    Status,
    /// PC/SC readers and their cards; recognises JaCarta.
    Readers {
        /// Wait up to this many seconds for a JaCarta to be inserted.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
        /// With --wait: any card will do.
        #[arg(long)]
        any: bool,
    },
    /// Regenerate a key set.
    Regen {
        #[command(subcommand)]
        flow: Flow,
    },
    /// Key sets on the token.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Both flows against a fresh emulated token, the mock CA and the mock bank, in seconds.
    #[cfg(feature = "demo")]
    Demo {
        /// Keep the application PDF in this folder.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Internal: the demo's child process.
        #[arg(long, hide = true, value_name = "DIR")]
        inner: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Flow {
    /// Flow 1: the bank's key-set regeneration (Сервис → Безопасность → Регенерация комплекта ключей).
    Bank {
        /// The bank's API, e.g. https://127.0.0.1:9443.
        #[arg(long, value_name = "URL")]
        bank_url: String,
        /// The bank's root certificate, PEM (kilt-bank: GET /admin/root).
        #[arg(long, value_name = "FILE")]
        bank_root: PathBuf,
        /// The profile identifier, when the token holds several.
        #[arg(long, value_name = "ID")]
        profile: Option<String>,
        /// Delete the old key set without asking.
        #[arg(long)]
        yes: bool,
        /// Give up waiting for the bank after this many seconds (rerun resumes).
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        wait: u64,
    },
    /// Flow 2: the CA's reissue of the AUTH and SIGN certificates (device JaCarta).
    Ca {
        /// The CA's API, e.g. https://127.0.0.1:8443.
        #[arg(long, value_name = "URL")]
        ca_url: String,
        /// The CA's root certificate, PEM (`kilt-ca export-root`).
        #[arg(long, value_name = "FILE")]
        ca_root: PathBuf,
        /// Where to save the application ("Заявление") PDF: a folder or a file.
        #[arg(long, default_value = ".", value_name = "PATH")]
        application: PathBuf,
        /// Delete the old key sets without asking.
        #[arg(long)]
        yes: bool,
        /// Give up waiting for the CA's operator after this many seconds (rerun resumes).
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        wait: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// List key sets (newest first).
    List,
    /// Delete a key set (private key, public key, certificate): asks twice, then the PIN.
    Delete {
        /// Its CKA_ID, as `kilt status` shows it (text, or hex).
        #[arg(long, value_name = "ID")]
        id: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// Parses the arguments and runs; the exit status of `kilt`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if std::env::var_os("KILT_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("KILT_LOG"))
            .with_writer(std::io::stderr)
            .init();
    }
    let out = Out {
        json: cli.global.json,
        lang: cli.global.lang,
        bilingual: false,
        quiet: false,
        steps: None,
    };
    match run(cli, out.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if out.json {
                println!("{}", json!({"event": "error", "message": e.to_string()}));
            }
            eprintln!("kilt: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ClientError::Demo(format!("cannot start the async runtime: {e}")))
}

/// The emulator's module, found as `kilt-token module-path` finds it.
fn default_module() -> Result<PathBuf> {
    kilt_console::module_path().map_err(|e| ClientError::Module {
        path: "libkilt_pkcs11.so".into(),
        reason: e.to_string(),
    })
}

/// The module and the token the global options name.
fn selection(g: &Global) -> Result<(PathBuf, Selector, PinSource)> {
    let uri: Option<Pkcs11Uri> = g.uri.as_deref().map(str::parse).transpose()?;
    let module = match (&g.module, uri.as_ref().and_then(|u| u.module_path.clone())) {
        (Some(m), _) => m.clone(),
        (None, Some(m)) => m,
        (None, None) => default_module()?,
    };
    let pin = match uri.as_ref().and_then(|u| u.pin_source.clone()) {
        // RFC 7512 §2.3: pin-source names a file.
        Some(p) if matches!(g.pin_source, PinSource::Prompt) => {
            PinSource::File(p.strip_prefix("file:").unwrap_or(&p).into())
        }
        _ => g.pin_source.clone(),
    };
    Ok((
        module,
        Selector {
            uri,
            label: g.token.clone(),
            serial: g.serial.clone(),
        },
        pin,
    ))
}

fn read_root(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|e| ClientError::File {
        path: path.display().to_string(),
        reason: format!("cannot read the root certificate: {e}"),
    })?;
    crate::check::pem_der(&text).map_err(|_| ClientError::File {
        path: path.display().to_string(),
        reason: "not a PEM certificate".into(),
    })
}

fn run(cli: Cli, out: Out) -> Result<()> {
    let g = cli.global;
    let state_dir = g
        .state_dir
        .clone()
        .unwrap_or_else(crate::journal::default_dir);
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo { keep, inner } => demo(&g, out, keep, inner),
        Command::Readers { wait, any } => readers(wait, any, &out),
        Command::Status
        | Command::Keys {
            action: KeysAction::List,
        } => {
            let (module, selector, pin) = selection(&g)?;
            let mut token = Token::open(&module, &selector)?;
            token.login(&pin, &mut |n| out.notice(n))?;
            token.refresh()?;
            status(&token, &state_dir, &out)
        }
        Command::Keys {
            action: KeysAction::Delete { id, yes },
        } => {
            let (module, selector, pin) = selection(&g)?;
            let mut token = Token::open(&module, &selector)?;
            token.login(&pin, &mut |n| out.notice(n))?;
            let sets = token.key_sets()?;
            let bytes = sets
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.id_bytes.clone())
                .unwrap_or_else(|| id.clone().into_bytes());
            let pending = pending_ids(&state_dir, &token.info().serial)?;
            if let Some(why) = refusal(&sets, &bytes, &pending) {
                return Err(ClientError::DeleteRefused(why));
            }
            if !yes && !std::io::stdin().is_terminal() {
                return Err(ClientError::DeleteRefused(
                    "deleting needs a terminal to confirm, or --yes".into(),
                ));
            }
            if confirm_and_delete(&mut token, &bytes, &Confirm { yes, pin }, &out)? {
                out.step(
                    "deleted",
                    &out.words(
                        &format!("Комплект ключей {} удалён", show_id(&bytes)),
                        &format!("Кілттер жинағы {} жойылды", show_id(&bytes)),
                        &format!("Key set {} deleted", show_id(&bytes)),
                    ),
                    json!({"id": show_id(&bytes)}),
                );
                Ok(())
            } else {
                Err(ClientError::Cancelled)
            }
        }
        Command::Regen { flow } => {
            let (module, selector, pin) = selection(&g)?;
            let mut token = Token::open(&module, &selector)?;
            token.login(&pin, &mut |n| out.notice(n))?;
            let rt = runtime()?;
            // Both flows: poll once a second, give up after `--wait` (the journal resumes).
            let settings =
                |url: String, root: &Path, wait: u64, yes: bool| -> Result<FlowSettings> {
                    Ok(FlowSettings {
                        url,
                        root: read_root(root)?,
                        state_dir: state_dir.clone(),
                        retry: Retry {
                            timeout: Duration::from_secs(g.timeout.max(1)),
                            ..Retry::default()
                        },
                        poll_every: Duration::from_secs(1),
                        poll_for: Duration::from_secs(wait),
                        confirm: Confirm {
                            yes,
                            pin: pin.clone(),
                        },
                    })
                };
            match flow {
                Flow::Bank {
                    bank_url,
                    bank_root,
                    profile,
                    yes,
                    wait,
                } => {
                    let opts = BankOptions {
                        flow: settings(bank_url, &bank_root, wait, yes)?,
                        profile,
                    };
                    let done = rt.block_on(crate::bank::regenerate(&mut token, &opts, &out))?;
                    out.step(
                        "done",
                        &out.words("Готово", "Дайын", "Done"),
                        json!({"outcome": done}),
                    );
                }
                Flow::Ca {
                    ca_url,
                    ca_root,
                    application,
                    yes,
                    wait,
                } => {
                    let opts = CaOptions {
                        flow: settings(ca_url, &ca_root, wait, yes)?,
                        application,
                    };
                    let done = rt.block_on(crate::ca::reissue(&mut token, &opts, &out))?;
                    out.step(
                        "done",
                        &out.words("Готово", "Дайын", "Done"),
                        json!({"outcome": done}),
                    );
                }
            }
            Ok(())
        }
    }
}

fn status(token: &Token, state_dir: &Path, out: &Out) -> Result<()> {
    let info = token.info();
    let sets = token.key_sets()?;
    let pending = pending_ids(state_dir, &info.serial)?;
    if out.json {
        println!(
            "{}",
            json!({"token": info, "key_sets": sets, "unfinished_regeneration": !pending.is_empty()})
        );
        return Ok(());
    }
    println!(
        "Token {:?} (serial {}, {} {}), slot {}; user PIN: {}",
        info.label,
        info.serial,
        info.manufacturer,
        info.model,
        info.slot,
        if info.pin_locked {
            "LOCKED".to_owned()
        } else {
            info.pin_tries_left
                .map(|n| format!("{n} tries left"))
                .unwrap_or_else(|| "ok".into())
        }
    );
    if sets.is_empty() {
        println!("  no key sets");
    }
    for s in &sets {
        match &s.certificate {
            Some(c) => {
                let note = if c.days_left < 0 {
                    out.words(
                        "истёк — только очно",
                        "мерзімі өтті",
                        "expired — renew in person",
                    )
                } else if c.days_left <= 30 {
                    out.words(
                        "необходима плановая регенерация",
                        "жоспарлы қайта шығару қажет",
                        "scheduled regeneration required",
                    )
                } else {
                    "ok".into()
                };
                let algorithm = if c.algorithm == crate::token::P256 {
                    String::new()
                } else {
                    format!(" [{}]", c.algorithm)
                };
                println!(
                    "  {:<18} {:<28} serial {} issuer {:?} until {} ({} days){algorithm}: {note}",
                    s.id,
                    c.subject,
                    c.serial,
                    c.issuer,
                    c.not_after.get(..10).unwrap_or(&c.not_after),
                    c.days_left
                );
            }
            None => println!("  {:<18} key without certificate", s.id),
        }
    }
    if !pending.is_empty() {
        println!(
            "  an unfinished regeneration is journalled; rerun its `kilt regen` command to resume"
        );
    }
    Ok(())
}

fn readers(wait: Option<u64>, any: bool, out: &Out) -> Result<()> {
    let list = match wait {
        Some(secs) => {
            let bar = out.spinner("Waiting for a JaCarta to be inserted…");
            let r = crate::readers::wait(Duration::from_secs(secs), any)?;
            bar.finish_and_clear();
            match r {
                Some(r) => vec![r],
                None => {
                    return Err(ClientError::Pcsc(format!(
                        "no {} was inserted within {secs} s",
                        if any { "card" } else { "JaCarta" }
                    )));
                }
            }
        }
        None => crate::readers::list()?,
    };
    if out.json {
        println!("{}", json!(list));
        return Ok(());
    }
    if list.is_empty() {
        println!("no PC/SC readers");
    }
    for r in list {
        println!(
            "{}{}: {}",
            r.name,
            if r.jacarta { " [JaCarta]" } else { "" },
            r.atr.as_deref().unwrap_or("no card")
        );
    }
    Ok(())
}

#[cfg(feature = "demo")]
fn demo(g: &Global, mut out: Out, keep: Option<PathBuf>, inner: Option<PathBuf>) -> Result<()> {
    let module = match &g.module {
        Some(m) => m.clone(),
        None => default_module()?,
    };
    out.bilingual = !out.json && out.lang != Lang::En;
    if let Some(root) = inner {
        let (tokens, work) = crate::demo::layout(&root);
        let summary = runtime()?.block_on(crate::demo::run_inner(
            &module,
            &tokens,
            &work,
            keep.as_deref(),
            &out,
        ))?;
        if out.json {
            println!("{}", json!({"event": "summary", "summary": summary}));
        } else {
            print!("{}", crate::demo::table(&summary, out.lang));
        }
        return Ok(());
    }
    // The module takes its token folder from the environment when it loads: run the demo in a
    // child with KILT_TOKEN_DIR pointing into a temporary folder that goes when it ends.
    let root = tempfile::Builder::new()
        .prefix("kilt-demo-")
        .tempdir()
        .map_err(|e| ClientError::Demo(format!("cannot make a temporary folder: {e}")))?;
    let (tokens, work) = crate::demo::layout(root.path());
    for d in [&tokens, &work] {
        std::fs::create_dir_all(d).map_err(|e| ClientError::Demo(e.to_string()))?;
    }
    let exe = std::env::current_exe().map_err(|e| ClientError::Demo(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("demo")
        .arg("--inner")
        .arg(root.path())
        .arg("--module")
        .arg(&module)
        .arg("--lang")
        .arg(out.lang.code())
        .env("KILT_TOKEN_DIR", &tokens)
        .env("KILT_STATE_DIR", work.join("state"))
        .env_remove("KILT_PIN_AGENT")
        .env_remove("KILT_LATENCY")
        .env_remove("KILT_FAULTS")
        .env_remove("KILT_PROFILE");
    if let Some(k) = &keep {
        let k = std::path::absolute(k).unwrap_or_else(|_| k.clone());
        cmd.arg("--keep").arg(k);
    }
    if out.json {
        cmd.arg("--json");
    }
    let status = cmd
        .status()
        .map_err(|e| ClientError::Demo(format!("cannot start the demo process: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        // The child has said why on stderr.
        Err(ClientError::Demo(format!("the demo failed ({status})")))
    }
}
