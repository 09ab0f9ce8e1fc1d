//! `kilt-conformance`: run the PKCS#11 conformance suite or the regeneration flow scenarios.
//! All logic is in the library.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kilt_conformance::{CardOptions, FlowOptions, Options, Report, run_card, run_flow, run_pkcs11};
use kilt_emulator::PinSource;
use std::path::PathBuf;

/// Conformance of tokens (kilt's emulator, SoftHSM2, a physical JaCarta) and of the regeneration
/// flows against a bank and a CA.
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

/// The token and what both suites share.
#[derive(Args)]
struct Common {
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
    #[command(flatten)]
    reports: Reports,
}

/// Where the reports go besides the terminal.
#[derive(Args)]
struct Reports {
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the PKCS#11 cases against a module and token.
    Pkcs11 {
        #[command(flatten)]
        common: Common,
    },
    /// Run the regeneration flows (bank Flow 1, CA Flow 2) as scenarios: happy path, expiring
    /// and expired certificate, wrong and locked PIN, token removed mid-flow, server 503,
    /// rejected request, revoked certificate. Needs an empty test token and kilt's mock servers
    /// (their admin listeners provision the token and steer approval and faults).
    #[command(
        after_help = "Example (servers from `kilt-ca serve` and `kilt-bank serve`):\n  \
        kilt-conformance flow --module target/debug/libkilt_pkcs11.so --token qa \\\n    \
        --bank https://127.0.0.1:9443 --bank-admin http://127.0.0.1:9444 \\\n    \
        --ca https://127.0.0.1:8443 --ca-admin http://127.0.0.1:8444 \\\n    \
        --pin-source env:USER_PIN --so-pin-source env:SO_PIN --destructive --junit flow.xml"
    )]
    Flow {
        #[command(flatten)]
        common: Common,
        /// The bank's customer API.
        #[arg(long, value_name = "URL")]
        bank: String,
        /// The bank's admin listener.
        #[arg(long, value_name = "URL")]
        bank_admin: String,
        /// The CA's API.
        #[arg(long, value_name = "URL")]
        ca: String,
        /// The CA's admin listener.
        #[arg(long, value_name = "URL")]
        ca_admin: String,
    },
    /// Print the PKCS#11 suite's coverage matrix without running it: every PKCS#11 function with
    /// the cases that check it, then every case with its group, section and title.
    List {
        /// As JSON ({"cases": [...], "functions": [{"function", "cases"}]}).
        #[arg(long)]
        json: bool,
    },
    /// Run ISO 7816-4 cases (and PIV's, where the card has it) against a smart card over
    /// PC/SC: unknown AID, INS and CLA, wrong Lc, response and command chaining, the VERIFY
    /// status query. No PIN try is spent unless --destructive.
    #[command(
        after_help = "Example (the emulated token as a card: kilt-token attach):\n  \
        kilt-conformance card --reader 'Virtual PCD 00 00' --pin-source env:PIN \\\n    \
        --so-pin-source env:SO_PIN --destructive --junit card.xml"
    )]
    Card {
        /// The PC/SC reader (see `kilt readers`).
        #[arg(long, value_name = "NAME")]
        reader: String,
        /// Where the user PIN comes from (only the destructive cases use it).
        #[arg(long, value_name = "SOURCE")]
        pin_source: Option<PinSource>,
        /// Where the SO PIN (the PIV PUK) comes from, to restore a locked PIN.
        #[arg(long, value_name = "SOURCE")]
        so_pin_source: Option<PinSource>,
        /// Also run cases that spend PIN tries and lock the PIN (then restore it).
        #[arg(long)]
        destructive: bool,
        #[command(flatten)]
        reports: Reports,
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
    let (report, reports) = match Cli::parse().command {
        Command::Pkcs11 { common } => (run_pkcs11(&common.options()?)?, common.reports),
        Command::List { json } => {
            let c = kilt_conformance::coverage();
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", c.table());
            }
            return Ok(0);
        }
        Command::Flow {
            common,
            bank,
            bank_admin,
            ca,
            ca_admin,
        } => {
            let report = run_flow(&FlowOptions {
                token: common.options()?,
                bank,
                bank_admin,
                ca,
                ca_admin,
            })?;
            (report, common.reports)
        }
        Command::Card {
            reader,
            pin_source,
            so_pin_source,
            destructive,
            reports,
        } => {
            let read = |s: Option<PinSource>, prompt: &str| s.map(|s| s.read(prompt)).transpose();
            let report = run_card(&CardOptions {
                reader,
                user_pin: read(pin_source, "User PIN: ")?,
                so_pin: read(so_pin_source, "SO PIN (PUK): ")?,
                destructive,
            })?;
            (report, reports)
        }
    };
    write_reports(&report, &reports)
}

impl Common {
    /// The token options, with the PINs read from their sources.
    fn options(&self) -> anyhow::Result<Options> {
        Ok(Options {
            module: self.module.clone(),
            token: self.token.clone(),
            user_pin: self.pin_source.read("User PIN: ")?,
            so_pin: self
                .so_pin_source
                .as_ref()
                .map(|s| s.read("SO PIN: "))
                .transpose()?,
            destructive: self.destructive,
        })
    }
}

fn write_reports(report: &Report, common: &Reports) -> anyhow::Result<i32> {
    print!("{}", report.table());
    if let Some(path) = &common.junit {
        std::fs::write(path, report.junit())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &common.json {
        std::fs::write(path, report.json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.summary().failed > 0 { 1 } else { 0 })
}
