//! The `kilt-ca` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{Config, default_data_dir, serve};

/// Exit code for a failure the user can fix (bad flag value, busy port, unreadable data dir).
pub const EXIT_FAILURE: i32 = 1;

/// kilt-ca: a mock KISC-like CA for testing EDS key regeneration clients (not for production).
///
/// Exit codes: 0 success, 1 failure (one line on stderr says why), 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "kilt-ca", version)]
pub struct Cli {
    /// Data directory (SQLite state and PKI files).
    #[arg(long, global = true, env = "KILT_CA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the CA until Ctrl-C. Fault knobs come from KILT_CA_FAIL_PERCENT,
    /// KILT_CA_LATENCY_MS and KILT_CA_DROP_PERCENT (or the admin listener).
    Serve {
        /// API and pages listener (TLS).
        #[arg(long, default_value = crate::server::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Admin listener (plain HTTP; keep it on loopback).
        #[arg(long, default_value = crate::server::DEFAULT_ADMIN_LISTEN)]
        admin_listen: SocketAddr,
        /// Validity of issued certificates, days.
        #[arg(long, default_value_t = crate::ca::DEFAULT_VALIDITY_DAYS)]
        validity_days: i64,
        /// Keep requests `new` until the admin approves them.
        #[arg(long)]
        manual_approval: bool,
        /// Base URL written into certificates' CRL distribution point.
        #[arg(long)]
        public_url: Option<String>,
        /// TrueType font with Cyrillic for the application PDF.
        #[arg(long, default_value = crate::pdf::DEFAULT_FONT)]
        font: PathBuf,
        #[command(flatten)]
        timeouts: crate::server::TimeoutArgs,
    },
    /// Write the root certificate (PEM) for clients to trust; creates the CA if needed.
    ExportRoot {
        /// Output file; `-` for stdout.
        #[arg(long, default_value = "-")]
        out: PathBuf,
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
            eprintln!("kilt-ca: error: {e}");
            EXIT_FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), crate::CaError> {
    let data_dir = cli.data_dir.unwrap_or_else(default_data_dir);
    match cli.command {
        Command::ExportRoot { out } => {
            let ca = crate::Ca::open(
                &data_dir,
                crate::Settings {
                    validity_days: crate::ca::DEFAULT_VALIDITY_DAYS,
                    auto_approve: true,
                    crl_url: String::new(),
                    session_seconds: crate::ca::DEFAULT_SESSION_SECONDS,
                    font: PathBuf::from(crate::pdf::DEFAULT_FONT),
                    password_lock: crate::ca::DEFAULT_PASSWORD_LOCK,
                },
            )?;
            let pem = ca.pki().root_pem();
            if out.as_os_str() == "-" {
                print!("{pem}");
            } else {
                std::fs::write(&out, pem).map_err(|e| crate::CaError::io(&out, e))?;
                eprintln!("kilt-ca: root certificate written to {}", out.display());
            }
            Ok(())
        }
        Command::Serve {
            listen,
            admin_listen,
            validity_days,
            manual_approval,
            public_url,
            font,
            timeouts,
        } => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("KILT_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .try_init();
            let mut config = Config::new(&data_dir).faults_from_env()?;
            config.listen = listen;
            config.admin_listen = admin_listen;
            config.validity_days = validity_days;
            config.auto_approve = !manual_approval;
            config.public_url = public_url;
            config.font = font;
            config.timeouts = timeouts.timeouts();
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| crate::CaError::Internal(format!("cannot start the runtime: {e}")))?;
            runtime.block_on(async {
                let server = serve(config).await?;
                // The addresses on stdout (one line each) let scripts and tests that start the
                // binary on port 0 find it.
                println!("api {}", server.url());
                println!("admin {}", server.admin_url());
                eprintln!("kilt-ca: data in {}; Ctrl-C stops", data_dir.display());
                let _ = tokio::signal::ctrl_c().await;
                server.shutdown().await;
                Ok(())
            })
        }
    }
}
