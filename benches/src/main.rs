//! `kilt-bench`: side-by-side rates of raw p256/aws-lc-rs, the kilt module and SoftHSM2
//! (signing, key pairs, many tokens in one folder), and `kilt-bench load` (many customers at
//! once). Prepares fresh tokens, then measures in a child process that has them in its
//! environment.

use anyhow::{Context, Result};
use clap::Parser;
use kilt_benches::{
    CARD_LABEL, CARD_PIN, CardSettings, LABEL, OPENSC, SO_PIN, SOFTHSM, Settings, USER_PIN,
    VPCD_READER, load, measure, scale,
};
use kilt_emulator::{Config, Emulator, Pin};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The scale measurement, handed from the parent to the child that prints the report.
const SCALE: &str = "KILT_BENCH_SCALE";
/// The load run's work folder, handed from the parent (which made the tokens) to the child.
const LOAD_WORK: &str = "KILT_BENCH_LOAD_WORK";

/// Measure the signing rate of the kilt module against raw p256 and SoftHSM2, in one run.
#[derive(Parser, Debug)]
#[command(
    name = "kilt-bench",
    version,
    after_help = "Exit status: 0 measured (targets are reported, never enforced), 1 failed to measure."
)]
struct Cli {
    /// Rounds per backend (interleaved); the median is reported.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Length of one round in milliseconds.
    #[arg(long, default_value_t = 400)]
    round_ms: u64,
    /// CI mode: 3 rounds of 150 ms.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object instead of the table.
    #[arg(long, global = true)]
    json: bool,
    /// The kilt module (default: libkilt_pkcs11.so beside this program).
    #[arg(long, global = true)]
    module: Option<PathBuf>,
    /// The SoftHSM2 module; measured only if present.
    #[arg(long, default_value = SOFTHSM)]
    softhsm: PathBuf,
    /// Leave out the card door (measured when pcscd runs with vsmartcard's reader free, and
    /// OpenSC is installed).
    #[arg(long)]
    no_card: bool,
    /// Tokens in one folder for the scale measurement (default 10,000; 1,000 with --quick; 0
    /// leaves it out).
    #[arg(long)]
    tokens: Option<usize>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Many customers at once: each gets an emulated token of its own and its first
    /// certificates, then all run a regeneration flow, `--concurrency` at a time; reports
    /// regenerations/s, p50/p99 per regeneration and per step, errors, and the bank's own view.
    #[command(after_help = "Example: kilt-bench load --customers 200 --concurrency 8")]
    Load {
        /// Simulated customers (one token each).
        #[arg(long, default_value_t = 100)]
        customers: usize,
        /// Customers running their flow at the same time.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Flow 1 against the bank, or Flow 2 against the CA.
        #[arg(long, value_enum, default_value = "bank")]
        flow: load::Flow,
        /// Servers already running (all four URLs): the CA's API, e.g. https://127.0.0.1:8443 …
        #[arg(long, requires_all = ["ca_admin", "bank", "bank_admin"])]
        ca: Option<String>,
        /// … the CA's admin listener …
        #[arg(long, requires = "ca")]
        ca_admin: Option<String>,
        /// … the bank's API …
        #[arg(long, requires = "ca")]
        bank: Option<String>,
        /// … and the bank's admin listener (default: both servers start in this process).
        #[arg(long, requires = "ca")]
        bank_admin: Option<String>,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("kilt-bench: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let module = match &cli.module {
        Some(m) => m.clone(),
        None => std::env::current_exe()?.with_file_name("libkilt_pkcs11.so"),
    };
    anyhow::ensure!(
        module.exists(),
        "{} not found; build it: cargo build --release -p kilt-pkcs11",
        module.display()
    );
    let softhsm = cli.softhsm.exists().then(|| cli.softhsm.clone());
    if let Some(probed) = std::env::var_os(scale::PROBE) {
        println!(
            "{}",
            serde_json::to_string(&scale::probe(std::path::Path::new(&probed))?)?
        );
        return Ok(());
    }
    if let Some(Cmd::Load {
        customers,
        concurrency,
        flow,
        ca,
        ca_admin,
        bank,
        bank_admin,
    }) = cli.command
    {
        let urls = ca.map(|ca| load::Urls {
            ca,
            ca_admin: ca_admin.unwrap_or_default(),
            bank: bank.unwrap_or_default(),
            bank_admin: bank_admin.unwrap_or_default(),
        });
        return run_load(module, customers, concurrency, flow, urls, cli.json);
    }
    if std::env::var_os("KILT_BENCH_CHILD").is_some() {
        let mut settings = Settings::quick(module, softhsm);
        settings.card = std::env::var("KILT_BENCH_CARD")
            .ok()
            .map(|reader| CardSettings {
                reader,
                opensc_module: OPENSC.into(),
            });
        if !cli.quick {
            settings.rounds = cli.rounds.max(1);
            settings.round = Duration::from_millis(cli.round_ms.max(10));
        }
        let mut report = measure(&settings)?;
        if let Some(s) = std::env::var_os(SCALE) {
            report.scale = Some(serde_json::from_str(&s.to_string_lossy())?);
        }
        if cli.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.table());
        }
        return Ok(());
    }
    // Parent: fresh tokens in a temporary folder, then the child measures with them.
    let dir = tempfile::tempdir()?;
    let kilt_dir = dir.path().join("kilt");
    let emu = Emulator::new(Config::in_dir(&kilt_dir))?;
    emu.provision(0, LABEL, &Pin::from(SO_PIN), &Pin::from(USER_PIN))?;
    let conf = dir.path().join("softhsm2.conf");
    if softhsm.is_some() {
        let tokens = dir.path().join("softhsm");
        std::fs::create_dir_all(&tokens)?;
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\n", tokens.display()),
        )?;
        let ok = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                LABEL,
                "--so-pin",
                SO_PIN,
                "--pin",
                USER_PIN,
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .context("cannot run softhsm2-util")?
            .status
            .success();
        anyhow::ensure!(ok, "softhsm2-util --init-token failed");
    } else {
        eprintln!(
            "kilt-bench: {} not found: SoftHSM2 is not measured (apt-get install softhsm2)",
            cli.softhsm.display()
        );
    }
    let tokens = cli.tokens.unwrap_or(if cli.quick {
        scale::QUICK_TOKENS
    } else {
        scale::TOKENS
    });
    let scale = if tokens > 0 {
        let root = dir.path().join("scale");
        let folders = scale::Folders::make(&root, tokens, softhsm.as_deref())?;
        let s = folders.measure(&module, tokens, if cli.quick { 1 } else { 3 })?;
        // 10,000 tokens are 470 MB on disk: gone before the rest is measured.
        std::fs::remove_dir_all(&root)?;
        Some(serde_json::to_string(&s)?)
    } else {
        None
    };
    let card = if cli.no_card {
        None
    } else {
        match attach_card(&dir.path().join("card")) {
            Ok(child) => Some(child),
            Err(why) => {
                eprintln!("kilt-bench: the card door is not measured: {why:#}");
                None
            }
        }
    };
    let mut child = Command::new(std::env::current_exe()?);
    child
        .args(std::env::args_os().skip(1))
        .env("KILT_BENCH_CHILD", "1")
        .env("KILT_TOKEN_DIR", &kilt_dir)
        .env("SOFTHSM2_CONF", &conf);
    if card.is_some() {
        child.env("KILT_BENCH_CARD", VPCD_READER);
    }
    if let Some(s) = scale {
        child.env(SCALE, s);
    }
    let status = child.status()?;
    drop(card);
    anyhow::ensure!(status.success(), "the measurement failed");
    Ok(())
}

/// `kilt-token attach` until dropped.
struct Attached(std::process::Child);

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn card_present(ctx: &pcsc::Context) -> bool {
    let Ok(name) = std::ffi::CString::new(VPCD_READER) else {
        return false;
    };
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    ctx.get_status_change(Duration::from_millis(100), &mut states)
        .is_ok()
        && states[0].event_state().contains(pcsc::State::PRESENT)
}

/// A token with a P-256 key and an AUTH certificate (so OpenSC's PIV driver shows the key),
/// attached to vsmartcard's first reader.
fn attach_card(dir: &std::path::Path) -> Result<Attached> {
    anyhow::ensure!(
        std::path::Path::new(OPENSC).exists(),
        "{OPENSC} is not installed (apt-get install opensc)"
    );
    let ctx = pcsc::Context::establish(pcsc::Scope::User)
        .context("pcscd is not running (pcscd with vsmartcard-vpcd)")?;
    anyhow::ensure!(!card_present(&ctx), "{VPCD_READER} already holds a card");
    let tool = std::env::current_exe()?.with_file_name("kilt-token");
    anyhow::ensure!(
        tool.exists(),
        "{} not found; build it: cargo build --release -p kilt-token",
        tool.display()
    );
    let emu = Emulator::new(Config::in_dir(dir))?;
    emu.provision(0, CARD_LABEL, &Pin::from(SO_PIN), &Pin::from(CARD_PIN))?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key)?;
    std::fs::write(dir.join("auth.pem"), cert.pem())?;
    std::fs::write(dir.join("auth.key"), key.serialize_pem())?;
    let import = Command::new(&tool)
        .args([
            "import",
            "--token",
            CARD_LABEL,
            "--id",
            "01",
            "--pin-source",
            "env:PIN",
        ])
        .arg("--cert")
        .arg(dir.join("auth.pem"))
        .arg("--key")
        .arg(dir.join("auth.key"))
        .env("KILT_TOKEN_DIR", dir)
        .env("PIN", CARD_PIN)
        .output()?;
    anyhow::ensure!(
        import.status.success(),
        "kilt-token import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let attached = Attached(
        Command::new(&tool)
            .args(["attach", "--token", CARD_LABEL])
            .env("KILT_TOKEN_DIR", dir)
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let start = std::time::Instant::now();
    while !card_present(&ctx) {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(10),
            "the card did not appear in {VPCD_READER}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(attached)
}

/// `kilt-bench load`: the tokens are made here, the flows run in a child process that loads the
/// module with them (two SQLite copies of one file in one process lose writes).
fn run_load(
    module: PathBuf,
    customers: usize,
    concurrency: usize,
    flow: load::Flow,
    urls: Option<load::Urls>,
    json: bool,
) -> Result<()> {
    anyhow::ensure!(customers > 0, "--customers must be at least 1");
    if let Some(work) = std::env::var_os(LOAD_WORK) {
        let report = load::run(&load::LoadSettings {
            module,
            customers,
            concurrency,
            flow,
            urls,
            work: PathBuf::from(work),
        })?;
        if json {
            println!("{}", serde_json::json!({ "load": report }));
        } else {
            print!("{}", report.table());
        }
        anyhow::ensure!(
            report.errors == 0,
            "{} of {customers} regenerations failed",
            report.errors
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens");
    eprintln!("kilt-bench load: making {customers} tokens (not timed)");
    load::make_tokens(&tokens, customers)?;
    let status = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(LOAD_WORK, dir.path().join("work"))
        .env("KILT_TOKEN_DIR", &tokens)
        .status()?;
    anyhow::ensure!(status.success(), "the load run failed");
    Ok(())
}
