//! `kilt-bench`: side-by-side signing rates of raw p256, the kilt module and SoftHSM2.
//! Prepares fresh tokens, then measures in a child process that has them in its environment.

use anyhow::{Context, Result};
use clap::Parser;
use kilt_benches::{
    CARD_LABEL, CARD_PIN, CardSettings, LABEL, OPENSC, SO_PIN, SOFTHSM, Settings, USER_PIN,
    VPCD_READER, measure,
};
use kilt_emulator::{Config, Emulator, Pin};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

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
    #[arg(long)]
    json: bool,
    /// The kilt module (default: libkilt_pkcs11.so beside this program).
    #[arg(long)]
    module: Option<PathBuf>,
    /// The SoftHSM2 module; measured only if present.
    #[arg(long, default_value = SOFTHSM)]
    softhsm: PathBuf,
    /// Leave out the card door (measured when pcscd runs with vsmartcard's reader free, and
    /// OpenSC is installed).
    #[arg(long)]
    no_card: bool,
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
        let report = measure(&settings)?;
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
