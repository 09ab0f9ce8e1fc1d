//! Many tokens in one folder, as a bank's load test or a CI farm has them: what loading a module
//! and listing its slots costs with N tokens, in time and memory, kilt beside SoftHSM2.
//!
//! Both folders hold N copies of one freshly initialised token (SoftHSM2's with a serial of its
//! own each, because SoftHSM2 numbers slots by serial). Every probe is a fresh process that
//! loads the module, so nothing is warm but the page cache, alike for both.

use anyhow::{Context, Result, anyhow};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{LABEL, SO_PIN, USER_PIN, median, pin};

/// The environment variable that makes `kilt-bench` a probe of the module it names.
pub const PROBE: &str = "KILT_BENCH_PROBE";
/// Issue 16's count (the quick mode of `make test` uses [`QUICK_TOKENS`]).
pub const TOKENS: usize = 10_000;
pub const QUICK_TOKENS: usize = 1_000;

/// What one process saw: load + `C_Initialize` + `C_GetSlotList(CK_TRUE)`, then
/// `C_GetTokenInfo` of every slot, then the first login on one token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Probe {
    pub slots: usize,
    pub init_ms: f64,
    /// Peak resident memory after listing the slots (every token idle), KiB.
    pub rss_kb: u64,
    pub token_info_all_ms: f64,
    /// Peak resident memory after every token's info was read, KiB.
    pub rss_after_info_kb: u64,
    /// Opening a session and logging in on one token in the middle of the folder.
    pub first_login_ms: f64,
}

/// Runs in the probe process: the module finds its tokens through the environment.
pub fn probe(module: &Path) -> Result<Probe> {
    let start = Instant::now();
    let pkcs11 =
        Pkcs11::new(module).with_context(|| format!("cannot load {}", module.display()))?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slots = pkcs11.get_slots_with_token()?;
    let init_ms = start.elapsed().as_secs_f64() * 1e3;
    let rss_kb = peak_rss_kb()?;
    let start = Instant::now();
    let mut initialised = vec![];
    for s in &slots {
        if pkcs11.get_token_info(*s)?.token_initialized() {
            initialised.push(*s);
        }
    }
    let token_info_all_ms = start.elapsed().as_secs_f64() * 1e3;
    let rss_after_info_kb = peak_rss_kb()?;
    let slot = *initialised
        .get(initialised.len() / 2)
        .ok_or_else(|| anyhow!("no initialised token in {}", module.display()))?;
    let start = Instant::now();
    let session = pkcs11.open_ro_session(slot)?;
    session.login(UserType::User, Some(&pin(USER_PIN)))?;
    let first_login_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(Probe {
        slots: slots.len(),
        init_ms,
        rss_kb,
        token_info_all_ms,
        rss_after_info_kb,
        first_login_ms,
    })
}

/// VmHWM of this process (Linux), KiB.
fn peak_rss_kb() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM in /proc/self/status"))
}

/// The side-by-side result, as `--json` reports it under `"scale"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scale {
    pub tokens: usize,
    /// Module load + `C_Initialize` + `C_GetSlotList(CK_TRUE)`, median of the rounds.
    pub init_ms: f64,
    pub softhsm2_init_ms: Option<f64>,
    /// Peak memory of the process after listing, MB (10^6 bytes).
    pub rss_mb: f64,
    pub softhsm2_rss_mb: Option<f64>,
    /// Memory per idle token: (peak with N tokens − peak with one) / N, KB.
    pub kb_per_idle_token: f64,
    pub softhsm2_kb_per_idle_token: Option<f64>,
    /// `C_GetTokenInfo` of every token, after the listing.
    pub token_info_all_ms: f64,
    pub softhsm2_token_info_all_ms: Option<f64>,
    pub rss_after_info_mb: f64,
    pub softhsm2_rss_after_info_mb: Option<f64>,
    /// The first login on one token of the N.
    pub first_login_ms: f64,
    pub softhsm2_first_login_ms: Option<f64>,
}

/// Where the folders are and how to probe them.
pub struct Folders {
    root: PathBuf,
    softhsm_module: Option<PathBuf>,
}

impl Folders {
    /// N copies of a fresh kilt token and, when `softhsm_module` is given, of a SoftHSM2 token;
    /// plus a folder with one of each for the baseline.
    pub fn make(root: &Path, tokens: usize, softhsm_module: Option<&Path>) -> Result<Folders> {
        let kilt_one = root.join("kilt-1");
        kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(&kilt_one))?.provision(
            0,
            LABEL,
            &kilt_emulator::Pin::from(SO_PIN),
            &kilt_emulator::Pin::from(USER_PIN),
        )?;
        let kilt_n = root.join("kilt-n");
        std::fs::create_dir_all(&kilt_n)?;
        for i in 0..tokens {
            // The database and its summary (what `kilt-token init` leaves).
            for part in ["", ".summary"] {
                std::fs::copy(
                    kilt_one.join(format!("slot-0.kilt{part}")),
                    kilt_n.join(format!("slot-{i}.kilt{part}")),
                )?;
            }
        }
        if softhsm_module.is_some() {
            let one = root.join("softhsm-1");
            std::fs::create_dir_all(&one)?;
            write_softhsm_conf(&one)?;
            let ok = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", LABEL])
                .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
                .env("SOFTHSM2_CONF", one.join("softhsm2.conf"))
                .output()
                .context("cannot run softhsm2-util")?
                .status
                .success();
            anyhow::ensure!(ok, "softhsm2-util --init-token failed");
            copy_softhsm(&one, &root.join("softhsm-n"), tokens)?;
        }
        Ok(Folders {
            root: root.to_path_buf(),
            softhsm_module: softhsm_module.map(Path::to_path_buf),
        })
    }

    /// Probes each folder in a fresh process, `rounds` times interleaved.
    pub fn measure(&self, kilt_module: &Path, tokens: usize, rounds: usize) -> Result<Scale> {
        let kilt = |name: &str| -> Result<Probe> {
            run_probe(kilt_module, "KILT_TOKEN_DIR", &self.root.join(name))
        };
        let softhsm = |name: &str| -> Result<Option<Probe>> {
            self.softhsm_module
                .as_deref()
                .map(|m| {
                    let conf = self.root.join(name).join("softhsm2.conf");
                    run_probe(m, "SOFTHSM2_CONF", &conf)
                })
                .transpose()
        };
        let (kilt_one, softhsm_one) = (kilt("kilt-1")?, softhsm("softhsm-1")?);
        let (mut k, mut s) = (vec![], vec![]);
        for _ in 0..rounds.max(1) {
            k.push(kilt("kilt-n")?);
            s.extend(softhsm("softhsm-n")?);
        }
        let mid = |v: &[Probe], f: fn(&Probe) -> f64| median(v.iter().map(f).collect());
        let mb = |kb: f64| kb * 1024.0 / 1e6;
        let per_token = |v: &[Probe], one: &Probe| {
            (mid(v, |p| p.rss_kb as f64) - one.rss_kb as f64) * 1024.0 / 1e3 / tokens as f64
        };
        let sh = |f: fn(&Probe) -> f64| (!s.is_empty()).then(|| mid(&s, f));
        let slots = k.first().map_or(0, |p| p.slots);
        anyhow::ensure!(
            slots > tokens,
            "kilt listed {slots} slots for {tokens} tokens (and its spare)"
        );
        Ok(Scale {
            tokens,
            init_ms: mid(&k, |p| p.init_ms),
            softhsm2_init_ms: sh(|p| p.init_ms),
            rss_mb: mb(mid(&k, |p| p.rss_kb as f64)),
            softhsm2_rss_mb: sh(|p| p.rss_kb as f64).map(mb),
            kb_per_idle_token: per_token(&k, &kilt_one),
            softhsm2_kb_per_idle_token: softhsm_one.as_ref().map(|one| per_token(&s, one)),
            token_info_all_ms: mid(&k, |p| p.token_info_all_ms),
            softhsm2_token_info_all_ms: sh(|p| p.token_info_all_ms),
            rss_after_info_mb: mb(mid(&k, |p| p.rss_after_info_kb as f64)),
            softhsm2_rss_after_info_mb: sh(|p| p.rss_after_info_kb as f64).map(mb),
            first_login_ms: mid(&k, |p| p.first_login_ms),
            softhsm2_first_login_ms: sh(|p| p.first_login_ms),
        })
    }
}

fn write_softhsm_conf(dir: &Path) -> Result<()> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    std::fs::write(
        dir.join("softhsm2.conf"),
        format!("directories.tokendir = {}\n", tokens.display()),
    )?;
    Ok(())
}

/// N copies of the one SoftHSM2 token in `one`. SoftHSM2 2.6 names a token's folder by a UUID
/// ending in the token's 16-digit serial, which is also in `token.object`; each copy gets its
/// own serial in both places (its slot number is derived from it).
fn copy_softhsm(one: &Path, to: &Path, tokens: usize) -> Result<()> {
    let folder = std::fs::read_dir(one.join("tokens"))?
        .flatten()
        .next()
        .ok_or_else(|| anyhow!("softhsm2-util made no token folder"))?
        .path();
    let name = folder
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("odd SoftHSM2 folder name"))?
        .to_owned();
    let serial = name.replace('-', "");
    let serial = serial
        .get(serial.len().saturating_sub(16)..)
        .ok_or_else(|| anyhow!("odd SoftHSM2 folder name {name}"))?;
    let object = std::fs::read(folder.join("token.object"))?;
    let at = object
        .windows(16)
        .position(|w| w == serial.as_bytes())
        .ok_or_else(|| anyhow!("SoftHSM2's token.object does not hold serial {serial}"))?;
    let generation = std::fs::read(folder.join("generation"))?;
    write_softhsm_conf(to)?;
    for i in 0..tokens {
        // Far from small numbers: SoftHSM2 gives its empty slot the number of tokens.
        let new = format!("{:016x}", 0x5000_0000 + i);
        let dir = to
            .join("tokens")
            .join(format!("00000000-0000-0000-{}-{}", &new[..4], &new[4..]));
        std::fs::create_dir_all(&dir)?;
        let mut obj = object.clone();
        obj[at..at + 16].copy_from_slice(new.as_bytes());
        std::fs::write(dir.join("token.object"), obj)?;
        std::fs::write(dir.join("generation"), &generation)?;
        std::fs::write(dir.join("token.lock"), b"")?;
    }
    Ok(())
}

/// One probe in a fresh `kilt-bench` process with `var` pointing at `value`.
fn run_probe(module: &Path, var: &str, value: &Path) -> Result<Probe> {
    let out = Command::new(std::env::current_exe()?)
        .env(PROBE, module)
        .env(var, value)
        .output()
        .context("cannot run the probe")?;
    anyhow::ensure!(
        out.status.success(),
        "the probe of {} failed: {}",
        module.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

impl Scale {
    /// Rows for the report's table.
    pub fn table(&self) -> String {
        let n =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.1} {unit}"));
        let row = |what: &str, kilt: f64, softhsm: Option<f64>, unit: &str| {
            format!(
                "  {what:<40} {:>12}  softhsm2 {:>12}\n",
                n(Some(kilt), unit),
                n(softhsm, unit)
            )
        };
        let mut out = format!(
            "{} tokens in one folder (fresh process each, median):\n",
            self.tokens
        );
        out += &row(
            "load + C_Initialize + C_GetSlotList",
            self.init_ms,
            self.softhsm2_init_ms,
            "ms",
        );
        out += &row(
            "peak memory after listing",
            self.rss_mb,
            self.softhsm2_rss_mb,
            "MB",
        );
        out += &row(
            "memory per idle token",
            self.kb_per_idle_token,
            self.softhsm2_kb_per_idle_token,
            "KB",
        );
        out += &row(
            "C_GetTokenInfo of every token",
            self.token_info_all_ms,
            self.softhsm2_token_info_all_ms,
            "ms",
        );
        out += &row(
            "peak memory after that",
            self.rss_after_info_mb,
            self.softhsm2_rss_after_info_mb,
            "MB",
        );
        out += &row(
            "first login on one of them",
            self.first_login_ms,
            self.softhsm2_first_login_ms,
            "ms",
        );
        out
    }
}
