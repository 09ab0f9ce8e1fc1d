//! `kilt-bench`: side-by-side signing rates of raw p256, the kilt module and SoftHSM2.
//! Prepares fresh tokens, then measures in a child process that has them in its environment.

use anyhow::{Context, Result};
use clap::Parser;
use kilt_benches::{LABEL, SO_PIN, SOFTHSM, Settings, USER_PIN, measure};
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
    let status = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env("KILT_BENCH_CHILD", "1")
        .env("KILT_TOKEN_DIR", &kilt_dir)
        .env("SOFTHSM2_CONF", &conf)
        .status()?;
    anyhow::ensure!(status.success(), "the measurement failed");
    Ok(())
}
