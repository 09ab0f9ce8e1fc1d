//! `kilt-conformance`: run the PKCS#11 conformance suite. All logic is in the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kilt_conformance::{Options, run_pkcs11};
use kilt_emulator::PinSource;
use std::path::PathBuf;

/// PKCS#11 conformance suite for tokens (kilt's emulator, SoftHSM2, a physical JaCarta).
#[derive(Parser)]
#[command(
    name = "kilt-conformance",
    version,
    after_help = "Exit status: 0 every case passed or was skipped, 1 a case failed, 2 the suite could not run.\n\
                  PIN sources: prompt, env:VAR, file:PATH."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the PKCS#11 cases against a module and token.
    Pkcs11 {
        /// The PKCS#11 module (.so).
        #[arg(long)]
        module: PathBuf,
        /// Token label or PKCS#11 URI (pkcs11:token=...); default the first initialised token.
        #[arg(long)]
        token: Option<String>,
        /// Where the user PIN comes from.
        #[arg(long, default_value = "prompt", value_name = "SOURCE")]
        pin_source: PinSource,
        /// Where the SO PIN comes from (cases needing the SO are skipped without it).
        #[arg(long, value_name = "SOURCE")]
        so_pin_source: Option<PinSource>,
        /// Also run cases that lock a PIN (and restore it with the SO PIN).
        #[arg(long)]
        destructive: bool,
        /// Write a JUnit XML report.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write a JSON report.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("kilt-conformance: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run() -> anyhow::Result<i32> {
    let Command::Pkcs11 {
        module,
        token,
        pin_source,
        so_pin_source,
        destructive,
        junit,
        json,
    } = Cli::parse().command;
    let user_pin = pin_source.read("User PIN: ")?;
    let so_pin = so_pin_source.map(|s| s.read("SO PIN: ")).transpose()?;
    let report = run_pkcs11(&Options {
        module,
        token,
        user_pin,
        so_pin,
        destructive,
    })?;
    print!("{}", report.table());
    if let Some(path) = junit {
        std::fs::write(&path, report.junit())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = json {
        std::fs::write(&path, report.json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.summary().failed > 0 { 1 } else { 0 })
}
