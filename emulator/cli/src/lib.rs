//! `kilt-token`: the token's management commands ([`kilt_emulator::cli`]) and `attach`, which
//! puts a token into vsmartcard's virtual reader as a smart card ([`kilt_card`]). It is a crate
//! of its own so that the token core does not depend on its card door.
//!
//! ```
//! use clap::Parser;
//! let cli = kilt_token::Cli::try_parse_from(["kilt-token", "attach", "--token", "demo"])?;
//! assert!(matches!(cli.command, kilt_token::Command::Attach(_)));
//! # Ok::<(), clap::Error>(())
//! ```
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use kilt_card::{Card, trace, vpcd};
use kilt_emulator::cli::{CliError, EXIT_FAILURE, TokenSel};
use kilt_emulator::{Config, Emulator};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Manage emulated JaCarta PKI tokens.
#[derive(Debug, Parser)]
#[command(
    name = "kilt-token",
    version,
    about = "Manage emulated JaCarta PKI tokens (kilt)",
    long_about = "Manage emulated JaCarta PKI tokens (kilt): initialise, list, import, delete, \
                  steer hardware behaviour (removal, latency, faults) of tokens used by \
                  libkilt_pkcs11.so, and attach one to a virtual smart-card reader.\n\nTokens \
                  live in KILT_TOKEN_DIR (default ~/.local/share/kilt/tokens).",
    after_help = "PIN sources: prompt (default; no echo), env:VAR, file:PATH.\n\
                  Exit status: 0 success, 1 failure (one line on stderr), 2 bad usage."
)]
pub struct Cli {
    /// Folder of the token files (overrides KILT_TOKEN_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub token_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Token(kilt_emulator::cli::Command),
    /// Put the token into vsmartcard's virtual reader as a smart card (JaCarta PKI and PIV
    /// applications) until interrupted; `unplug`/`plug` take it out and put it back.
    #[command(
        after_help = "Needs pcscd with vsmartcard-vpcd (Debian: apt-get install pcscd \
                      vsmartcard-vpcd). Port 35963 is the reader \"Virtual PCD 00 00\", 35964 \
                      \"Virtual PCD 00 01\".\nA PIV PIN has at most 8 characters: a token whose \
                      user PIN is longer (like the default 1234567890) verifies through PKCS#11 \
                      and the JaCarta application only."
    )]
    Attach(AttachArgs),
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub sel: TokenSel,
    /// TCP port of the virtual reader on 127.0.0.1.
    #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
    pub port: u16,
    /// Write every command and answer to FILE (PIN bytes are never written).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

/// Runs a parsed command; reports go to `out`, progress of `attach` to stderr.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Token(command) => kilt_emulator::cli::run(cli.token_dir, command, out),
        Command::Attach(args) => attach(cli.token_dir, args),
    }
}

fn err(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

fn attach(token_dir: Option<PathBuf>, args: AttachArgs) -> Result<(), CliError> {
    let mut config = Config::from_env()?;
    if let Some(d) = token_dir {
        config.token_dir = d;
    }
    let emu = Arc::new(Emulator::new(config)?);
    let slot = kilt_emulator::cli::select(&emu, &args.sel)?;
    let label = emu.token_info(slot)?.label;
    let mut card = Card::new(emu, slot).map_err(err)?;
    let mut trace_file = match &args.trace {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| {
            err(kilt_card::CardError::Trace {
                path: p.clone(),
                source: e,
            })
        })?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(err)?;
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let reader = match args.port {
        vpcd::DEFAULT_PORT => " (\"Virtual PCD 00 00\")",
        p if p == vpcd::DEFAULT_PORT + 1 => " (\"Virtual PCD 00 01\")",
        _ => "",
    };
    vpcd::serve(&mut card, addr, &stop, |event| match event {
        vpcd::Event::Inserted(a) => eprintln!(
            "kilt-token: token {label:?} (slot {slot}) is a card in the virtual reader at \
             {a}{reader}; Ctrl-C to stop"
        ),
        vpcd::Event::Removed => {
            eprintln!("kilt-token: token {label:?} unplugged: the card is out of the reader")
        }
        vpcd::Event::ReaderGone => {
            eprintln!("kilt-token: the virtual reader went away (pcscd stopped?); waiting for it")
        }
        vpcd::Event::Apdu(ex) => {
            if let Some(f) = trace_file.as_mut() {
                writeln!(f, "{}", trace::line(ex)).ok();
            }
        }
    })
    .map_err(err)
}

/// Parses and runs the command line; the binary's whole `main`.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(cli, &mut std::io::stdout()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kilt-token: error: {e}");
            EXIT_FAILURE
        }
    }
}
