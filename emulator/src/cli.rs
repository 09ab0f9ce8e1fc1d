//! The `kilt-token` commands, modelled on softhsm2-util and the Tumar CSP Configurator (the
//! binary and its `attach` live in the `kilt-token` crate).
//!
//! It drives the token core in-process, so every rule (PIN counters, templates, control state)
//! is the same one the PKCS#11 module applies; changes are seen by every process using the token.

use crate::emulator::{AttrResult, Config, Emulator, SessionHandle, SlotId, UserType};
use crate::error::Error;
use crate::object::{self, Attr};
use crate::pin::PinSource;
use crate::profile::Profile;
use crate::token::{self, FaultKind, TIMED_OPS};
use clap::{Args, Subcommand};
use cryptoki_sys::*;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Exit status for a failed command (clap uses 2 for bad usage).
pub const EXIT_FAILURE: i32 = 1;

/// Which token a command acts on.
#[derive(Debug, Args, Clone, Default)]
pub struct TokenSel {
    /// Token label (default: the only initialised token).
    #[arg(long, value_name = "LABEL")]
    pub token: Option<String>,
    /// Slot number.
    #[arg(long, value_name = "N", conflicts_with = "token")]
    pub slot: Option<SlotId>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initialise a token in the spare slot (or re-initialise one): label, SO PIN, user PIN.
    Init {
        /// Token label (up to 32 bytes).
        #[arg(long)]
        label: String,
        /// Device profile: a built-in name or a .toml file.
        #[arg(long, default_value = crate::profile::DEFAULT_PROFILE)]
        profile: String,
        /// Slot to (re-)initialise (default: the spare slot).
        #[arg(long)]
        slot: Option<SlotId>,
        /// Where the SO (admin) PIN comes from.
        #[arg(long, default_value = "prompt", value_name = "SOURCE")]
        so_pin_source: PinSource,
        /// Where the user PIN comes from.
        #[arg(long, default_value = "prompt", value_name = "SOURCE")]
        pin_source: PinSource,
    },
    /// List slots and their tokens.
    Slots {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List keys and certificates with their validity (newest set bold, like the Configurator).
    Keys {
        #[command(flatten)]
        sel: TokenSel,
        /// Log in to show private keys too.
        #[arg(long, value_name = "SOURCE")]
        pin_source: Option<PinSource>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Import a certificate and/or a private key (P-256, or GOST: Kazakh 2004 / 2015-512) under
    /// one CKA_ID.
    Import {
        #[command(flatten)]
        sel: TokenSel,
        /// X.509 certificate file.
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
        /// Private key file, PEM or DER: P-256 as PKCS#8 or SEC1; GOST as PKCS#8 under the Kazakh
        /// OIDs (1.2.398.3.10.1.1.1.1, 1.2.398.3.10.1.1.2.2) or the Russian ones OpenSSL's GOST
        /// engine writes.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// CKA_ID in hex (default: derived from the public key).
        #[arg(long, value_name = "HEX")]
        id: Option<String>,
        /// CKA_LABEL of the imported objects.
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long, default_value = "prompt", value_name = "SOURCE")]
        pin_source: PinSource,
    },
    /// Delete a key set (private key, public key, certificate with one CKA_ID): asks twice, then
    /// the PIN.
    Delete {
        #[command(flatten)]
        sel: TokenSel,
        /// CKA_ID of the set, in hex.
        #[arg(long, value_name = "HEX")]
        id: String,
        /// Do not ask for confirmation (automation).
        #[arg(long)]
        yes: bool,
        #[arg(long, default_value = "prompt", value_name = "SOURCE")]
        pin_source: PinSource,
    },
    /// Remove the token from its slot (every process sees CKR_DEVICE_REMOVED).
    Unplug {
        #[command(flatten)]
        sel: TokenSel,
    },
    /// Insert the token again (sessions opened before stay closed).
    Plug {
        #[command(flatten)]
        sel: TokenSel,
    },
    /// Turn the device's latency profile on or off.
    Latency {
        #[command(flatten)]
        sel: TokenSel,
        /// on, off, or default (follow KILT_LATENCY / off).
        #[arg(value_parser = ["on", "off", "default"])]
        mode: String,
    },
    /// Make the next COUNT operations OP fail (0 clears).
    Fault {
        #[command(flatten)]
        sel: TokenSel,
        /// login, generate, sign, verify, create, destroy or find.
        #[arg(long)]
        op: String,
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// device-error, device-memory, device-removed or panic.
        #[arg(long, default_value = "device-error")]
        kind: String,
    },
    /// Print the absolute path of libkilt_pkcs11.so.
    ModulePath,
    /// Register libkilt_pkcs11.so with p11-kit, so p11tool, GnuTLS and other p11-kit-aware
    /// programs find the token without its path (~/.config/pkcs11/modules/kilt.module).
    Register {
        /// For every user: /etc/pkcs11/modules/kilt.module (needs root).
        #[arg(long)]
        system: bool,
    },
    /// Remove the p11-kit registration `register` wrote.
    Unregister {
        /// The system-wide one.
        #[arg(long)]
        system: bool,
    },
    /// List built-in device profiles.
    Profiles,
}

/// A command's failure: one line for the user.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<Error> for CliError {
    fn from(e: Error) -> CliError {
        CliError(e.to_string())
    }
}

impl From<kilt_console::ConsoleError> for CliError {
    fn from(e: kilt_console::ConsoleError) -> CliError {
        CliError(e.to_string())
    }
}

type R<T> = std::result::Result<T, CliError>;

fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(CliError(msg.into()))
}

/// Runs a parsed command on the tokens in `token_dir` (else `KILT_TOKEN_DIR`), writing its report
/// to `out`. The `kilt-token` binary (crate `kilt-token`) parses the command line.
pub fn run(token_dir: Option<PathBuf>, command: Command, out: &mut dyn Write) -> R<()> {
    let mut config = Config::from_env()?;
    if let Some(d) = token_dir {
        config.token_dir = d;
    }
    match command {
        Command::ModulePath => {
            writeln!(out, "{}", module_path()?.display()).ok();
            Ok(())
        }
        Command::Register { system } => {
            let dir = registration_dir(system)?;
            let module = module_path()?;
            let path = crate::p11kit::register(&dir, &module).map_err(|e| {
                CliError(format!(
                    "cannot write {}: {e}{}",
                    dir.join(crate::p11kit::FILE_NAME).display(),
                    if system { "; --system needs root" } else { "" }
                ))
            })?;
            writeln!(
                out,
                "registered {} with p11-kit in {}; check with `p11-kit list-modules`",
                module.display(),
                path.display()
            )
            .ok();
            Ok(())
        }
        Command::Unregister { system } => {
            let dir = registration_dir(system)?;
            match crate::p11kit::unregister(&dir) {
                Ok(Some(path)) => writeln!(out, "removed {}", path.display()).ok(),
                Ok(None) => writeln!(
                    out,
                    "kilt was not registered: there is no {}",
                    dir.join(crate::p11kit::FILE_NAME).display()
                )
                .ok(),
                Err(e) => {
                    return fail(format!(
                        "cannot remove the registration in {}: {e}",
                        dir.display()
                    ));
                }
            };
            Ok(())
        }
        Command::Profiles => {
            for name in Profile::builtin_names() {
                let p = Profile::load(name)?;
                writeln!(
                    out,
                    "{name}\t{} {}\tprotected authentication path: {}",
                    p.manufacturer, p.model, p.protected_authentication_path
                )
                .ok();
            }
            Ok(())
        }
        Command::Init {
            label,
            profile,
            slot,
            so_pin_source,
            pin_source,
        } => {
            config.profile = Profile::load(&profile)?;
            let emu = Emulator::new(config)?;
            init(&emu, &label, slot, &so_pin_source, &pin_source, out)
        }
        Command::Slots { json } => slots(&Emulator::new(config)?, json, out),
        Command::Keys {
            sel,
            pin_source,
            json,
        } => keys(
            &Emulator::new(config)?,
            &sel,
            pin_source.as_ref(),
            json,
            out,
        ),
        Command::Import {
            sel,
            cert,
            key,
            id,
            label,
            pin_source,
        } => import(
            &Emulator::new(config)?,
            &sel,
            cert,
            key,
            id,
            &label,
            &pin_source,
            out,
        ),
        Command::Delete {
            sel,
            id,
            yes,
            pin_source,
        } => delete(&Emulator::new(config)?, &sel, &id, yes, &pin_source, out),
        Command::Unplug { sel } => plug(config, &sel, false, out),
        Command::Plug { sel } => plug(config, &sel, true, out),
        Command::Latency { sel, mode } => {
            let (slot, token) = selected_token(config, &sel)?;
            let on = match mode.as_str() {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            };
            token.set_latency(on)?;
            writeln!(out, "latency of slot {slot}: {mode}").ok();
            Ok(())
        }
        Command::Fault {
            sel,
            op,
            count,
            kind,
        } => {
            let (slot, token) = selected_token(config, &sel)?;
            let Some(op_v) = TIMED_OPS.into_iter().find(|o| token::op_name(*o) == op) else {
                return fail(format!(
                    "unknown operation {op:?}; use one of login, generate, sign, verify, create, destroy, find"
                ));
            };
            let Some(kind_v) = FaultKind::parse(&kind) else {
                return fail(format!(
                    "unknown fault kind {kind:?}; use device-error, device-memory, device-removed or panic"
                ));
            };
            token.inject_fault(op_v, count, kind_v)?;
            writeln!(
                out,
                "slot {slot}: the next {count} {op} operation(s) fail with {kind}"
            )
            .ok();
            Ok(())
        }
    }
}

/// Inserts (`present`) or removes the token.
pub fn plug(config: Config, sel: &TokenSel, present: bool, out: &mut dyn Write) -> R<()> {
    let (slot, token) = selected_token(config, sel)?;
    token.set_present(present)?;
    let what = if present {
        "inserted into"
    } else {
        "removed from"
    };
    writeln!(out, "token {what} slot {slot}").ok();
    Ok(())
}

/// Absolute path of `libkilt_pkcs11.so` (see [`kilt_console::module_path`]).
pub fn module_path() -> R<PathBuf> {
    Ok(kilt_console::module_path()?)
}

/// Where `register` writes: the system folder, or the user's under `$HOME`.
fn registration_dir(system: bool) -> R<PathBuf> {
    if system {
        return Ok(PathBuf::from(crate::p11kit::SYSTEM_DIR));
    }
    if crate::p11kit::running_as_root() {
        return fail(
            "p11-kit reads no per-user module files in programs running as root; \
             register for every user with `kilt-token register --system`",
        );
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(crate::p11kit::user_dir(Path::new(&home))),
        None => {
            fail("HOME is not set, so there is no user configuration to register in; use --system")
        }
    }
}

/// The slot and token a control command (plug, latency, fault) acts on.
fn selected_token(config: Config, sel: &TokenSel) -> R<(SlotId, std::sync::Arc<token::Token>)> {
    let emu = Emulator::new(config)?;
    let slot = select(&emu, sel)?;
    Ok((slot, emu.token(slot)?))
}

/// The slot a command acts on.
pub fn select(emu: &Emulator, sel: &TokenSel) -> R<SlotId> {
    if let Some(s) = sel.slot {
        emu.token(s)?;
        return Ok(s);
    }
    if let Some(label) = &sel.token {
        return emu.slot_by_label(label)?.ok_or_else(|| {
            CliError(format!(
                "no token labelled {label:?}; see `kilt-token slots`"
            ))
        });
    }
    let mut initialised = vec![];
    for s in emu.slot_list(false)? {
        if emu.is_initialised(s)? {
            initialised.push(s);
        }
    }
    match initialised.as_slice() {
        [one] => Ok(*one),
        [] => fail("no initialised token; create one with `kilt-token init --label NAME`"),
        _ => fail("several tokens exist; choose one with --token LABEL or --slot N"),
    }
}

fn init(
    emu: &Emulator,
    label: &str,
    slot: Option<SlotId>,
    so_src: &PinSource,
    user_src: &PinSource,
    out: &mut dyn Write,
) -> R<()> {
    let slot = match slot {
        Some(s) => s,
        None => emu.spare_slot()?,
    };
    let so = so_src.read("SO (admin) PIN: ")?;
    let user = user_src.read("User PIN: ")?;
    emu.provision(slot, label, &so, &user)?;
    let info = emu.token_info(slot)?;
    writeln!(
        out,
        "token {label:?} initialised in slot {slot} (serial {}, {} {})",
        info.serial, info.manufacturer, info.model
    )
    .ok();
    Ok(())
}

fn slots(emu: &Emulator, json: bool, out: &mut dyn Write) -> R<()> {
    let mut rows = vec![];
    for s in emu.slot_list(false)? {
        let si = emu.slot_info(s)?;
        let ti = emu.token_info(s).ok();
        rows.push(serde_json::json!({
            "slot": s,
            "description": si.description,
            "present": si.token_present,
            "initialized": ti.as_ref().is_some_and(|t| t.initialized),
            "label": ti.as_ref().map(|t| t.label.clone()),
            "serial": ti.as_ref().map(|t| t.serial.clone()),
            "model": ti.as_ref().map(|t| t.model.clone()),
            "user_pin_tries_left": ti.as_ref().map(|t| t.user_pin.tries_left),
            "user_pin_locked": ti.as_ref().map(|t| t.user_pin.locked),
            "protected_authentication_path": ti.as_ref().map(|t| t.protected_authentication_path),
        }));
    }
    if json {
        writeln!(out, "{}", serde_json::Value::Array(rows)).ok();
        return Ok(());
    }
    for r in rows {
        let slot = &r["slot"];
        if r["present"] == false {
            writeln!(
                out,
                "Slot {slot}: {} (token removed)",
                r["description"].as_str().unwrap_or("")
            )
            .ok();
        } else if r["initialized"] == false {
            writeln!(
                out,
                "Slot {slot}: {} (uninitialised, spare)",
                r["description"].as_str().unwrap_or("")
            )
            .ok();
        } else {
            writeln!(
                out,
                "Slot {slot}: {}\n  label: {}\n  serial: {}\n  model: {}\n  user PIN: {} tries left{}",
                r["description"].as_str().unwrap_or(""),
                r["label"].as_str().unwrap_or(""),
                r["serial"].as_str().unwrap_or(""),
                r["model"].as_str().unwrap_or(""),
                r["user_pin_tries_left"],
                if r["user_pin_locked"] == true { " (LOCKED)" } else { "" }
            )
            .ok();
        }
    }
    Ok(())
}

/// One key set: the objects sharing a CKA_ID.
#[derive(Debug, Default, serde::Serialize)]
struct KeySet {
    id: String,
    label: String,
    /// "P-256", "GOST 34.310-2004" or "GOST R 34.10-2015 512" (from the key objects).
    algorithm: Option<String>,
    private_key: bool,
    public_key: bool,
    certificate: Option<CertSummary>,
    newest: bool,
}

#[derive(Debug, serde::Serialize)]
struct CertSummary {
    subject: String,
    serial: String,
    not_before: String,
    not_after: String,
    #[serde(skip)]
    not_before_ts: i64,
}

fn summarize_cert(der: &[u8]) -> Option<CertSummary> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(CertSummary {
        subject: c.subject().to_string(),
        serial: c.raw_serial_as_string(),
        not_before: c.validity().not_before.to_string(),
        not_after: c.validity().not_after.to_string(),
        not_before_ts: c.validity().not_before.timestamp(),
    })
}

fn open_logged_in(
    emu: &Emulator,
    slot: SlotId,
    rw: bool,
    pin: Option<&PinSource>,
) -> R<SessionHandle> {
    let s = emu.open_session(slot, rw, true)?;
    if let Some(src) = pin {
        let label = emu.token_info(slot)?.label;
        let pin = src.read(&format!("PIN of token {label:?}: "))?;
        if let Err(e) = emu.login(s, UserType::User, Some(&pin)) {
            let _ = emu.close_session(s);
            return Err(e.into());
        }
    }
    Ok(s)
}

fn collect_sets(emu: &Emulator, s: SessionHandle) -> R<Vec<KeySet>> {
    emu.find_init(s, &[])?;
    let handles = emu.find_next(s, usize::MAX)?;
    emu.find_final(s)?;
    let mut sets: std::collections::BTreeMap<Vec<u8>, KeySet> = Default::default();
    for h in handles {
        let r = emu.get_attributes(
            s,
            h,
            &[
                CKA_CLASS,
                CKA_ID,
                CKA_LABEL,
                CKA_VALUE,
                CKA_KEY_TYPE,
                CKA_GOSTR3410_PARAMS,
            ],
        )?;
        let val = |i: usize| match &r[i] {
            AttrResult::Value(v) => Some(v.clone()),
            _ => None,
        };
        let class = val(0).and_then(|v| v.try_into().ok().map(CK_ULONG::from_ne_bytes));
        let id = val(1).unwrap_or_default();
        let set = sets.entry(id.clone()).or_insert_with(|| KeySet {
            id: hex::encode(&id),
            ..Default::default()
        });
        if set.label.is_empty() {
            set.label = String::from_utf8_lossy(&val(2).unwrap_or_default()).into_owned();
        }
        let key_type = val(4).and_then(|v| v.try_into().ok().map(CK_ULONG::from_ne_bytes));
        let algorithm = match key_type {
            Some(CKK_EC) => Some("P-256"),
            Some(CKK_GOSTR3410) => match val(5).as_deref().and_then(crate::crypto::gost_curve) {
                Some(kilt_gost::CurveId::CryptoProA) => Some("GOST 34.310-2004"),
                Some(kilt_gost::CurveId::Tc26_512A) => Some("GOST R 34.10-2015 512"),
                None => Some("GOST (unknown parameters)"),
            },
            _ => None,
        };
        if let Some(a) = algorithm {
            set.algorithm = Some(a.into());
        }
        match class {
            Some(CKO_PRIVATE_KEY) => set.private_key = true,
            Some(CKO_PUBLIC_KEY) => set.public_key = true,
            Some(CKO_CERTIFICATE) => set.certificate = val(3).as_deref().and_then(summarize_cert),
            _ => {}
        }
    }
    let mut sets: Vec<KeySet> = sets.into_values().collect();
    // The Configurator shows the newest key set in bold: newest certificate start wins.
    let newest = sets
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.certificate.as_ref().map(|c| (c.not_before_ts, i)))
        .max()
        .map(|(_, i)| i);
    if let Some(i) = newest {
        sets[i].newest = true;
    }
    Ok(sets)
}

fn keys(
    emu: &Emulator,
    sel: &TokenSel,
    pin: Option<&PinSource>,
    json: bool,
    out: &mut dyn Write,
) -> R<()> {
    let slot = select(emu, sel)?;
    let s = open_logged_in(emu, slot, false, pin)?;
    let sets = collect_sets(emu, s);
    emu.close_session(s)?;
    let sets = sets?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&sets).unwrap_or_default()).ok();
        return Ok(());
    }
    let bold = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if sets.is_empty() {
        writeln!(out, "no keys or certificates on the token").ok();
    }
    for k in &sets {
        let parts: Vec<&str> = [
            (k.private_key, "private key"),
            (k.public_key, "public key"),
            (k.certificate.is_some(), "certificate"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        let mut line = format!("id {} {:?}: {}", k.id, k.label, parts.join(" + "));
        if let Some(a) = &k.algorithm {
            line.push_str(&format!(" ({a})"));
        }
        if let Some(c) = &k.certificate {
            line.push_str(&format!(
                "\n    {} (serial {})\n    valid {} .. {}",
                c.subject, c.serial, c.not_before, c.not_after
            ));
        }
        if k.newest {
            line.push_str("\n    newest");
        }
        if k.newest && bold {
            writeln!(out, "\x1b[1m{line}\x1b[0m").ok();
        } else {
            writeln!(out, "{line}").ok();
        }
    }
    Ok(())
}

fn read_pem_or_der(path: &PathBuf, tag: &str) -> R<Vec<u8>> {
    let data = std::fs::read(path)
        .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(text) = std::str::from_utf8(&data)
        && text.contains("-----BEGIN")
    {
        let (_, pem) = x509_parser::pem::parse_x509_pem(&data)
            .map_err(|_| CliError(format!("{} is not valid PEM", path.display())))?;
        if !pem.label.contains(tag) {
            return fail(format!(
                "{} holds a {:?}, not a {tag}",
                path.display(),
                pem.label
            ));
        }
        return Ok(pem.contents);
    }
    Ok(data)
}

#[allow(clippy::too_many_arguments)]
fn import(
    emu: &Emulator,
    sel: &TokenSel,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    id: Option<String>,
    label: &str,
    pin: &PinSource,
    out: &mut dyn Write,
) -> R<()> {
    if cert.is_none() && key.is_none() {
        return fail("nothing to import; give --cert FILE and/or --key FILE");
    }
    // Parse everything before touching the token: bad input changes nothing.
    let cert_der = cert
        .as_ref()
        .map(|p| read_pem_or_der(p, "CERTIFICATE"))
        .transpose()?;
    let parsed_cert = match &cert_der {
        Some(der) => Some(
            x509_parser::parse_x509_certificate(der)
                .map_err(|_| CliError("the certificate is not valid X.509 DER or PEM".into()))?
                .1,
        ),
        None => None,
    };
    let secret = match &key {
        Some(p) => Some(read_key(p)?),
        None => None,
    };
    // The public key as the certificate's SubjectPublicKeyInfo holds it: the P-256 point, or
    // (GOST, RFC 4491 §2.3.2) an OCTET STRING of the little-endian x ‖ y.
    let cert_public = parsed_cert
        .as_ref()
        .map(|c| -> R<Vec<u8>> {
            use p256::pkcs8::der::{Decode, asn1::OctetStringRef};
            let spki = c.public_key();
            let bits = spki.subject_public_key.data.as_ref();
            let oid = spki.algorithm.algorithm.to_id_string();
            if GOST_KEY_OIDS.contains(&oid.as_str()) {
                OctetStringRef::from_der(bits)
                    .map(|o| o.as_bytes().to_vec())
                    .map_err(|_| CliError("the certificate's GOST public key is malformed".into()))
            } else {
                Ok(bits.to_vec())
            }
        })
        .transpose()?;
    // The key's public half, computed once (a GOST one costs a scalar multiplication).
    let key_public = secret.as_ref().map(ImportKey::public).transpose()?;
    if let (Some(k), Some(c)) = (&key_public, &cert_public)
        && k != c
    {
        return fail("the key does not belong to the certificate");
    }
    let point = key_public.clone().or_else(|| cert_public.clone());
    let id = match id {
        Some(h) => hex::decode(&h).map_err(|_| CliError(format!("--id {h:?} is not hex")))?,
        // Like most CAs' tools: the SHA-1-sized prefix of the SHA-256 of the public point.
        None => crate::crypto::sha256(point.as_deref().unwrap_or_default())[..20].to_vec(),
    };
    let slot = select(emu, sel)?;
    let s = open_logged_in(emu, slot, true, Some(pin))?;
    let result = (|| -> R<Vec<&str>> {
        let mut done = vec![];
        let common = |class| -> Vec<Attr> {
            vec![
                (CKA_CLASS, object::ulong(class)),
                (CKA_TOKEN, object::bool(true)),
                (CKA_ID, id.clone()),
                (CKA_LABEL, label.as_bytes().to_vec()),
            ]
        };
        if let (Some(der), Some(c)) = (&cert_der, &parsed_cert) {
            let mut t = common(CKO_CERTIFICATE);
            t.extend([
                (CKA_CERTIFICATE_TYPE, object::ulong(CKC_X_509)),
                (CKA_SUBJECT, c.subject().as_raw().to_vec()),
                (CKA_ISSUER, c.issuer().as_raw().to_vec()),
                (CKA_SERIAL_NUMBER, der_integer(c.raw_serial())),
                (CKA_VALUE, der.clone()),
            ]);
            emu.create_object(s, &t)?;
            done.push("certificate");
        }
        if let (Some(k), Some(public)) = (&secret, key_public) {
            let (private, public) = match k {
                ImportKey::P256(k) => {
                    let key = |v| {
                        vec![
                            (CKA_KEY_TYPE, object::ulong(CKK_EC)),
                            (CKA_EC_PARAMS, crate::crypto::P256_PARAMS.to_vec()),
                            v,
                        ]
                    };
                    (
                        key((CKA_VALUE, k.to_bytes().to_vec())),
                        key((CKA_EC_POINT, crate::crypto::ec_point_der(&public))),
                    )
                }
                ImportKey::Gost {
                    curve,
                    curve_params,
                    hash_params,
                    d,
                } => {
                    let key = |v| {
                        let mut t = vec![
                            (CKA_KEY_TYPE, object::ulong(CKK_GOSTR3410)),
                            (CKA_GOSTR3410_PARAMS, curve_params.clone()),
                            v,
                        ];
                        if let Some(h) = hash_params {
                            t.push((CKA_GOSTR3411_PARAMS, h.clone()));
                        }
                        t
                    };
                    (
                        key((
                            CKA_VALUE,
                            crate::crypto::KeyAlgorithm::Gost(*curve)
                                .private_value_order(d)
                                .to_vec(),
                        )),
                        key((CKA_VALUE, public)),
                    )
                }
            };
            let mut t = common(CKO_PRIVATE_KEY);
            t.extend(private);
            t.push((CKA_SIGN, object::bool(true)));
            emu.create_object(s, &t)?;
            let mut t = common(CKO_PUBLIC_KEY);
            t.extend(public);
            emu.create_object(s, &t)?;
            done.push("private key");
            done.push("public key");
        }
        Ok(done)
    })();
    emu.close_session(s)?;
    let done = result?;
    writeln!(
        out,
        "imported {} with id {}",
        done.join(", "),
        hex::encode(&id)
    )
    .ok();
    Ok(())
}

fn der_integer(raw: &[u8]) -> Vec<u8> {
    let mut v = raw.to_vec();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

/// A private key read from a file.
enum ImportKey {
    P256(p256::SecretKey),
    Gost {
        curve: kilt_gost::CurveId,
        /// The parameter OIDs (DER) as the file names them.
        curve_params: Vec<u8>,
        hash_params: Option<Vec<u8>>,
        /// Big-endian.
        d: zeroize::Zeroizing<Vec<u8>>,
    },
}

impl ImportKey {
    /// The public key as the token's public object holds it (P-256 point, GOST CKA_VALUE).
    fn public(&self) -> R<Vec<u8>> {
        Ok(match self {
            ImportKey::P256(k) => k.public_key().to_encoded_point(false).as_bytes().to_vec(),
            ImportKey::Gost { curve, d, .. } => kilt_gost::pkcs11::public_value(*curve, d)
                .map_err(|e| CliError(format!("the GOST key is unusable: {e}")))?,
        })
    }
}

/// GOST public key algorithm OIDs of PKCS#8 files: the Kazakh national CA's (the fixtures) and
/// the Russian ones (RFC 4491, RFC 9215) OpenSSL's GOST engine writes.
const GOST_KEY_OIDS: &[&str] = &[
    kilt_gost::oid::KZ_KEY_2004,
    kilt_gost::oid::KZ_KEY_2015_512,
    kilt_gost::oid::KEY_2001,
    kilt_gost::oid::KEY_2012_256,
    kilt_gost::oid::KEY_2012_512,
];

/// A GOST PKCS#8 `PrivateKeyInfo`: parameters SEQUENCE { curve OID, [hash OID] }; the key
/// little-endian, either the OCTET STRING's bytes themselves (OpenSSL's GOST engine) or an
/// inner OCTET STRING (RFC 9215 §5), or an INTEGER (big-endian).
fn read_gost_pkcs8(der: &[u8]) -> Option<ImportKey> {
    use p256::pkcs8::der::{Decode, asn1::ObjectIdentifier, asn1::OctetStringRef};
    let info = p256::pkcs8::PrivateKeyInfo::from_der(der).ok()?;
    let oid = info.algorithm.oid.to_string();
    if !GOST_KEY_OIDS.contains(&oid.as_str()) {
        return None;
    }
    let params: Vec<ObjectIdentifier> = info.algorithm.parameters?.decode_as().ok()?;
    let encode = |o: &ObjectIdentifier| crate::crypto::oid_der(&o.to_string());
    let curve_params = encode(params.first()?);
    let curve = crate::crypto::gost_curve(&curve_params)?;
    let hash_params = params
        .get(1)
        .map(encode)
        .filter(|h| crate::crypto::gost_hash(h).is_some());
    let n = curve.int_len();
    let raw = info.private_key;
    let le: Vec<u8> = if raw.len() == n {
        raw.to_vec()
    } else if let Ok(inner) = OctetStringRef::from_der(raw) {
        inner.as_bytes().to_vec()
    } else if let Ok(int) = p256::pkcs8::der::asn1::UintRef::from_der(raw) {
        let be = int.as_bytes();
        let mut v = vec![0u8; n.saturating_sub(be.len())];
        v.extend_from_slice(be);
        kilt_gost::reversed(&v)
    } else {
        return None;
    };
    if le.len() != n {
        return None;
    }
    Some(ImportKey::Gost {
        curve,
        curve_params,
        hash_params,
        d: zeroize::Zeroizing::new(kilt_gost::reversed(&le)),
    })
}

fn read_key(path: &PathBuf) -> R<ImportKey> {
    use p256::pkcs8::DecodePrivateKey;
    let data = zeroize::Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?,
    );
    let text = String::from_utf8_lossy(&data);
    let der = if text.contains("BEGIN PRIVATE KEY") {
        x509_parser::pem::parse_x509_pem(&data)
            .ok()
            .map(|(_, pem)| zeroize::Zeroizing::new(pem.contents))
    } else {
        None
    };
    if let Some(k) = read_gost_pkcs8(der.as_deref().map_or(&data[..], |d| &d[..])) {
        return Ok(k);
    }
    let parsed = if text.contains("BEGIN EC PRIVATE KEY") {
        p256::SecretKey::from_sec1_pem(&text).ok()
    } else if text.contains("BEGIN PRIVATE KEY") {
        p256::SecretKey::from_pkcs8_pem(&text).ok()
    } else {
        p256::SecretKey::from_pkcs8_der(&data)
            .ok()
            .or_else(|| p256::SecretKey::from_sec1_der(&data).ok())
    };
    parsed.map(ImportKey::P256).ok_or_else(|| {
        CliError(format!(
            "{} is not a P-256 or GOST private key (PKCS#8 or SEC1, PEM or DER)",
            path.display()
        ))
    })
}

pub use kilt_console::confirm;

fn delete(
    emu: &Emulator,
    sel: &TokenSel,
    id_hex: &str,
    yes: bool,
    pin: &PinSource,
    out: &mut dyn Write,
) -> R<()> {
    let id = hex::decode(id_hex).map_err(|_| CliError(format!("--id {id_hex:?} is not hex")))?;
    let slot = select(emu, sel)?;
    if !yes {
        // The Configurator asks twice, then for the PIN.
        let q1 = format!("Удалить ключевой набор {id_hex}? / Delete key set {id_hex}?");
        let q2 = "Вы уверены? Восстановить ключи будет невозможно. / Are you sure? The keys cannot be recovered.";
        if !confirm(&q1) || !confirm(q2) {
            return fail("deletion cancelled; nothing was deleted");
        }
    }
    let s = open_logged_in(emu, slot, true, Some(pin))?;
    let result = (|| -> R<usize> {
        emu.find_init(s, &[(CKA_ID, id.clone())])?;
        let handles = emu.find_next(s, usize::MAX)?;
        emu.find_final(s)?;
        if handles.is_empty() {
            return fail(format!(
                "no key set with id {id_hex} on the token; see `kilt-token keys`"
            ));
        }
        for h in &handles {
            emu.destroy_object(s, *h)?;
        }
        Ok(handles.len())
    })();
    emu.close_session(s)?;
    let n = result?;
    writeln!(out, "deleted {n} object(s) with id {id_hex}").ok();
    Ok(())
}
