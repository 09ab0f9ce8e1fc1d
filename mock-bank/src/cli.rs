//! The `kilt-bank` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{Config, serve};

/// kilt-bank: a mock BS-Client-like bank for testing EDS key-set regeneration (not for
/// production).
///
/// Exit codes: 0 success, 1 failure (one line on stderr says why), 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "kilt-bank", version)]
pub struct Cli {
    /// Data directory (SQLite state and PKI files).
    #[arg(long, global = true, env = "KILT_BANK_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bank until Ctrl-C. Fault knobs come from KILT_BANK_FAIL_PERCENT,
    /// KILT_BANK_LATENCY_MS, KILT_BANK_DROP_PERCENT, KILT_BANK_DUPLICATE_PERCENT (or the admin
    /// listener).
    Serve {
        /// API and pages listener (TLS).
        #[arg(long, default_value = crate::server::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Admin and operator listener (plain HTTP; keep it on loopback).
        #[arg(long, default_value = crate::server::DEFAULT_ADMIN_LISTEN)]
        admin_listen: SocketAddr,
        /// Validity of new certificates, days.
        #[arg(long, default_value_t = crate::bank::DEFAULT_VALIDITY_DAYS)]
        validity_days: i64,
        /// A profile is critical when its certificate ends within this many days.
        #[arg(long, default_value_t = crate::bank::DEFAULT_WARN_DAYS)]
        warn_days: i64,
        /// Seconds from "Принят банком" to "Получен новый сертификат".
        #[arg(long, default_value_t = crate::bank::DEFAULT_PROCESSING_SECONDS)]
        processing_seconds: u64,
        /// Wait for the operator's approval instead of processing by time.
        #[arg(long)]
        manual_approval: bool,
        /// Key algorithm of new subscribers, and so of the CA that certifies them: p256,
        /// gost2004 (GOST 34.310-2004) or gost2015-512 (GOST R 34.10-2015, 512-bit keys). A
        /// regeneration keeps its profile's algorithm; the TLS certificate stays P-256.
        #[arg(long, env = "KILT_BANK_ALGORITHM", default_value = "p256")]
        algorithm: kilt_mock_server::pki::Algorithm,
        #[command(flatten)]
        timeouts: kilt_mock_server::http::TimeoutArgs,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kilt-bank: error: {e}");
            1
        }
    }
}

fn run(cli: Cli) -> Result<(), crate::BankError> {
    let data_dir = cli.data_dir.unwrap_or_else(crate::bank::default_data_dir);
    let Command::Serve {
        listen,
        admin_listen,
        validity_days,
        warn_days,
        processing_seconds,
        manual_approval,
        algorithm,
        timeouts,
    } = cli.command;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KILT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    if !(1..=36_500).contains(&validity_days) || !(0..=3650).contains(&warn_days) {
        return Err(crate::BankError::InvalidInput(
            "--validity-days must be 1-36500 and --warn-days 0-3650".into(),
        ));
    }
    let mut config = Config::new(&data_dir).faults_from_env()?;
    config.listen = listen;
    config.admin_listen = admin_listen;
    config.settings.validity_days = validity_days;
    config.settings.warn_days = warn_days;
    config.settings.processing_seconds = processing_seconds;
    config.settings.auto_process = !manual_approval;
    config.settings.algorithm = algorithm;
    config.timeouts = timeouts.timeouts();
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| crate::BankError::Internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let server = serve(config).await?;
        println!("api {}", server.url());
        println!("admin {}", server.admin_url());
        eprintln!(
            "kilt-bank: data in {}; operator page {}/operator; Ctrl-C stops",
            data_dir.display(),
            server.admin_url()
        );
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown().await;
        Ok(())
    })
}
