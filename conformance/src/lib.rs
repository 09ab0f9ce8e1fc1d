//! `kilt-conformance`: the suite QA runs against a PKCS#11 token — the kilt emulator, SoftHSM2,
//! or a physical JaCarta through its vendor module.
//!
//! The PKCS#11 suite's first cases follow the OASIS PKCS#11 profiles (baseline, extended,
//! authentication token, public certificates token) through `cryptoki`; the rest make raw calls
//! ([`raw`], the crate's one `unsafe` module) to hold the token to what `cryptoki` cannot reach:
//! the library before and around `C_Initialize`, NULL pointers, closed sessions and destroyed
//! objects, the output-length protocol, operation and session state machines, template rules,
//! what the info structures claim, PKCS#11 3.0, threads and forked processes. Each case cites the
//! section it checks; [`coverage`] is the matrix of functions and cases. A failed check is a
//! result, not an error: the suite always finishes and reports. Cases that need a mechanism the
//! token does not advertise are skipped with the reason; destructive cases (locking a PIN) run
//! only when asked, so a physical token is safe to test.
//!
//! [`run_flow`] runs the other suite, the regeneration flows as scenarios against kilt's mock
//! bank and CA (see [`flow`]); both give the same [`Report`] (terminal table, JUnit, JSON).
//!
//! ```no_run
//! use kilt_conformance::{Options, run_pkcs11};
//! use kilt_emulator::Pin;
//!
//! let report = run_pkcs11(&Options {
//!     module: "target/debug/libkilt_pkcs11.so".into(),
//!     token: Some("demo".into()),
//!     user_pin: Pin::from("1234567890"),
//!     so_pin: Some(Pin::from("00000000")),
//!     destructive: false,
//! })?;
//! println!("{}", report.table());
//! assert_eq!(report.summary().failed, 0);
//! # Ok::<(), kilt_conformance::Error>(())
//! ```
#![deny(unsafe_code)]

/// Fails the case with a message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(Check::Fail(format!($($msg)*)));
        }
    };
}

/// One `Case` literal.
macro_rules! case {
    ($id:literal, $group:ident, $spec:literal, $title:expr, $f:expr) => {
        Case {
            id: $id,
            group: Group::$group,
            spec: $spec,
            title: $title,
            destructive: false,
            run: $f,
        }
    };
    ($id:literal, $group:ident, $spec:literal, $title:expr, $f:expr, destructive) => {
        Case {
            id: $id,
            group: Group::$group,
            spec: $spec,
            title: $title,
            destructive: true,
            run: $f,
        }
    };
}

mod calls;
pub mod card;
mod cases;
pub mod flow;
mod gost;
mod machines;
pub mod raw;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::slot::Slot;
use kilt_emulator::Pin;
use serde::Serialize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use card::{CARD_CASES, CardOptions, run_card};
pub use cases::{CASES, Case, LIBRARY_CASES};
pub use flow::{FlowOptions, SCENARIOS, run_flow};

/// Why the suite could not run at all (a failed case is not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot load the PKCS#11 module {path}: {reason}; check the path (kilt-token module-path prints kilt's)"
    )]
    Load { path: PathBuf, reason: String },
    #[error("no token {0:?} in any slot; list them with pkcs11-tool --list-slots")]
    TokenNotFound(String),
    #[error("no initialised token in any slot; initialise one first (kilt-token init)")]
    NoToken,
    #[error("the module failed {call}: {reason}")]
    Module { call: &'static str, reason: String },
    #[error(
        "the {who} PIN was refused ({reason}); nothing else was run, so no more tries were spent: check --{flag}"
    )]
    PinRefused {
        who: &'static str,
        flag: &'static str,
        reason: String,
    },
    /// The flow scenarios could not start (servers unreachable, token not empty, …).
    #[error("the flow scenarios cannot start: {0}")]
    Flow(String),
    /// The card suite could not reach the card.
    #[error("the card suite cannot start: {0}")]
    Card(String),
}

/// What to test and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// Token label or PKCS#11 URI (`pkcs11:token=...`); default the first initialised token.
    pub token: Option<String>,
    /// The user PIN.
    pub user_pin: Pin,
    /// The SO PIN, for cases that need the security officer (skipped without it).
    pub so_pin: Option<Pin>,
    /// Run cases that lock a PIN (then restore it with the SO PIN).
    pub destructive: bool,
}

/// OASIS PKCS#11 profile groups, plus kilt's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    Baseline,
    Extended,
    AuthenticationToken,
    PublicCertificatesToken,
    TokenBehaviour,
    HostileModule,
    /// The library before and around `C_Initialize` (§5.4).
    Library,
    /// Argument checks and output lengths of every function (§5.1, §5.2).
    Arguments,
    /// Digest, sign, verify and find state machines (§5.7, §5.10–§5.12).
    Operations,
    /// Sessions and logins (§5.6).
    Sessions,
    /// Object and template rules (§4, §5.7).
    Objects,
    /// What the info structures claim against what the token does (§5.5).
    Claims,
    /// PKCS#11 3.0 interfaces and session functions.
    #[serde(rename = "pkcs11-3.0")]
    Pkcs11v3,
    /// Threads and processes on one token (§5.5.1–§5.5.2).
    Concurrency,
    /// Flow 1, the bank's key-set regeneration.
    BankFlow,
    /// Flow 2, the CA's reissue.
    CaFlow,
    /// The PIN at the start of either flow.
    FlowPin,
    /// ISO/IEC 7816-4 behaviour of any card.
    Iso7816,
    /// The PIV application (NIST SP 800-73-4).
    Piv,
    /// GOST R 34.10 / R 34.11 mechanisms (2.40 curr. mech.), when the token advertises them.
    Gost,
}

impl Group {
    /// The group's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Group::Baseline => "baseline",
            Group::Extended => "extended",
            Group::AuthenticationToken => "authentication-token",
            Group::PublicCertificatesToken => "public-certificates-token",
            Group::TokenBehaviour => "token-behaviour",
            Group::HostileModule => "hostile-module",
            Group::Library => "library",
            Group::Arguments => "arguments",
            Group::Operations => "operations",
            Group::Sessions => "sessions",
            Group::Objects => "objects",
            Group::Claims => "claims",
            Group::Pkcs11v3 => "pkcs11-3.0",
            Group::Concurrency => "concurrency",
            Group::BankFlow => "flow-1-bank",
            Group::CaFlow => "flow-2-ca",
            Group::FlowPin => "flow-pin",
            Group::Iso7816 => "iso-7816-4",
            Group::Piv => "piv",
            Group::Gost => "gost",
        }
    }
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// One case's result.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub id: &'static str,
    pub group: Group,
    pub spec: &'static str,
    pub title: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub millis: u128,
}

/// Counts of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Which suite a report is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// `kilt-conformance pkcs11`: the token against the PKCS#11 spec.
    Pkcs11,
    /// `kilt-conformance flow`: the regeneration flows against a bank and a CA.
    Flow,
    /// `kilt-conformance card`: a smart card over PC/SC.
    Card,
}

impl Suite {
    fn title(self) -> &'static str {
        match self {
            Suite::Pkcs11 => "PKCS#11 conformance",
            Suite::Flow => "Regeneration flow scenarios",
            Suite::Card => "ISO 7816-4 card behaviour",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Suite::Pkcs11 => "pkcs11",
            Suite::Flow => "flow",
            Suite::Card => "card",
        }
    }
}

/// A suite's report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub suite: Suite,
    pub module: String,
    pub library: String,
    pub token: String,
    /// The bank and CA the flow scenarios ran against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers: Option<String>,
    pub summary: Summary,
    pub cases: Vec<CaseResult>,
}

/// What a case gets: the loaded module and the token under test.
pub struct Ctx {
    pub pkcs11: Pkcs11,
    pub slot: Slot,
    pub options: Options,
    /// The module is kilt's emulator (its control interface can remove the token).
    pub is_kilt: bool,
    /// The same module, for raw calls where `cryptoki` cannot go.
    pub raw: raw::Raw,
}

impl Report {
    /// Pass, fail and skip counts.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// The result of case `id`.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// A terminal table with reasons, then the totals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{}: {} — token {:?} ({}){}\n",
            self.suite.title(),
            self.module,
            self.token,
            self.library,
            self.servers
                .as_deref()
                .map(|s| format!(" — {s}"))
                .unwrap_or_default()
        );
        let w = self.cases.iter().map(|c| c.id.len()).max().unwrap_or(10);
        let sw = self
            .cases
            .iter()
            .map(|c| c.spec.chars().count())
            .max()
            .unwrap_or(22);
        for c in &self.cases {
            let (mark, detail) = match &c.outcome {
                Outcome::Pass => ("PASS", String::new()),
                Outcome::Fail(d) => ("FAIL", d.clone()),
                Outcome::Skip(d) => ("SKIP", d.clone()),
            };
            out.push_str(&format!(
                "{mark}  {:<w$}  {:<25}  {:<sw$}  {}\n",
                c.id,
                c.group.name(),
                c.spec,
                if detail.is_empty() {
                    c.title.to_string()
                } else {
                    detail
                },
            ));
        }
        let s = self.summary;
        out.push_str(&format!(
            "{}: {} passed, {} failed, {} skipped\n",
            self.suite.name(),
            s.passed,
            s.failed,
            s.skipped
        ));
        out
    }

    /// JUnit XML: one test suite per group.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut report = JReport::new("kilt-conformance");
        let mut groups: Vec<Group> = vec![];
        for c in &self.cases {
            if !groups.contains(&c.group) {
                groups.push(c.group);
            }
        }
        for g in groups {
            let mut suite = TestSuite::new(g.name());
            for c in self.cases.iter().filter(|c| c.group == g) {
                let status = match &c.outcome {
                    Outcome::Pass => TestCaseStatus::success(),
                    Outcome::Fail(d) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(format!("{} ({})", d, c.spec));
                        s
                    }
                    Outcome::Skip(d) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(d.clone());
                        s
                    }
                };
                let mut tc = TestCase::new(c.id, status);
                tc.set_classname(format!("{}.{}", self.suite.name(), g.name()));
                tc.set_time(Duration::from_millis(c.millis as u64));
                suite.add_test_case(tc);
            }
            report.add_test_suite(suite);
        }
        report.to_string().unwrap_or_default()
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Finds the token by label or by the `token=` attribute of a PKCS#11 URI (RFC 7512 §2.3).
fn find_slot(pkcs11: &Pkcs11, token: Option<&str>) -> Result<Slot, Error> {
    let slots = pkcs11
        .get_slots_with_initialized_token()
        .map_err(|e| Error::Module {
            call: "C_GetSlotList",
            reason: e.to_string(),
        })?;
    let Some(want) = token else {
        return slots.first().copied().ok_or(Error::NoToken);
    };
    let label = match want.strip_prefix("pkcs11:") {
        Some(uri) => uri
            .split([';', '?'])
            .find_map(|a| a.strip_prefix("token="))
            .map(percent_decode)
            .unwrap_or_default(),
        None => want.to_string(),
    };
    slots
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).is_ok_and(|t| t.label() == label))
        .ok_or(Error::TokenNotFound(label))
}

/// `%XX` decoding of an RFC 7512 attribute value.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A PIN as cryptoki takes it.
fn auth_pin(p: &Pin) -> cryptoki::types::AuthPin {
    cryptoki::types::AuthPin::new(String::from_utf8_lossy(p.as_bytes()).into_owned().into())
}

/// Tries each given PIN once before any case: with a wrong PIN every case would spend a try, and
/// the destructive case could lock the user PIN with no SO PIN to restore it. A physical token
/// must come out of a mistyped run unharmed.
fn check_pins(pkcs11: &Pkcs11, slot: Slot, options: &Options) -> Result<(), Error> {
    use cryptoki::session::UserType;
    let refused = |who, flag, e: cryptoki::error::Error| Error::PinRefused {
        who,
        flag,
        // The return value's name (e.g. PinIncorrect), not cryptoki's paragraph about it.
        reason: match e {
            cryptoki::error::Error::Pkcs11(rv, _) => format!("{rv:?}"),
            other => other.to_string(),
        },
    };
    let module = |e: cryptoki::error::Error| Error::Module {
        call: "C_OpenSession",
        reason: e.to_string(),
    };
    // SO first, in a session of its own (the SO cannot log in beside a read-only session).
    if let Some(so) = &options.so_pin {
        let s = pkcs11.open_rw_session(slot).map_err(module)?;
        s.login(UserType::So, Some(&auth_pin(so)))
            .map_err(|e| refused("SO", "so-pin-source", e))?;
    }
    let s = pkcs11.open_ro_session(slot).map_err(module)?;
    s.login(UserType::User, Some(&auth_pin(&options.user_pin)))
        .map_err(|e| refused("user", "pin-source", e))?;
    Ok(())
}

/// Loads the module, runs the library cases while it is not initialised, then every case on
/// the token, and reports.
pub fn run_pkcs11(options: &Options) -> Result<Report, Error> {
    let load = |reason: String| Error::Load {
        path: options.module.clone(),
        reason,
    };
    let raw = raw::load(&options.module).map_err(load)?;
    let (mut results, mut summary) = execute(&LIBRARY_CASES, &raw, options.destructive);
    // A module a library case left initialised (it should not) is finalised before cryptoki
    // initialises it.
    raw.finalize(false);
    let pkcs11 = Pkcs11::new(&options.module).map_err(|e| load(e.to_string()))?;
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| Error::Module {
            call: "C_Initialize",
            reason: e.to_string(),
        })?;
    let info = pkcs11.get_library_info().map_err(|e| Error::Module {
        call: "C_GetInfo",
        reason: e.to_string(),
    })?;
    let slot = find_slot(&pkcs11, options.token.as_deref())?;
    let token = pkcs11
        .get_token_info(slot)
        .map(|t| t.label().to_string())
        .unwrap_or_default();
    check_pins(&pkcs11, slot, options)?;
    let ctx = Ctx {
        is_kilt: info.manufacturer_id() == "kilt",
        pkcs11,
        slot,
        options: options.clone(),
        raw,
    };
    let (cases, s) = execute(&CASES, &ctx, options.destructive);
    results.extend(cases);
    summary.passed += s.passed;
    summary.failed += s.failed;
    summary.skipped += s.skipped;
    Ok(Report {
        suite: Suite::Pkcs11,
        module: options.module.display().to_string(),
        library: format!("{} {}", info.manufacturer_id(), info.library_description()),
        token,
        servers: None,
        summary,
        cases: results,
    })
}

/// Every function of PKCS#11 2.40 §5 and the 3.0 additions, in the spec's order.
pub const FUNCTIONS: &[&str] = &[
    "C_Initialize",
    "C_Finalize",
    "C_GetInfo",
    "C_GetFunctionList",
    "C_GetInterfaceList",
    "C_GetInterface",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_WaitForSlotEvent",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_OpenSession",
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_GetSessionInfo",
    "C_SessionCancel",
    "C_GetOperationState",
    "C_SetOperationState",
    "C_Login",
    "C_LoginUser",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetObjectSize",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_FindObjectsInit",
    "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit",
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_DecryptInit",
    "C_Decrypt",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_DigestInit",
    "C_Digest",
    "C_DigestUpdate",
    "C_DigestKey",
    "C_DigestFinal",
    "C_SignInit",
    "C_Sign",
    "C_SignUpdate",
    "C_SignFinal",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyInit",
    "C_Verify",
    "C_VerifyUpdate",
    "C_VerifyFinal",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_SeedRandom",
    "C_GenerateRandom",
    "C_GetFunctionStatus",
    "C_CancelFunction",
];

/// One row of the coverage matrix: a function and the cases that call it to check a rule.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub function: &'static str,
    pub cases: Vec<&'static str>,
}

/// One case as listed (without running it).
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    pub id: &'static str,
    pub group: Group,
    pub spec: &'static str,
    pub title: &'static str,
    pub destructive: bool,
}

/// The PKCS#11 suite's coverage matrix: every case, and for every function the cases whose
/// section or title names it (`kilt-conformance list`).
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    pub cases: Vec<Listed>,
    pub functions: Vec<Row>,
}

/// Lists the PKCS#11 cases and derives the function rows from what each case cites.
pub fn coverage() -> Coverage {
    fn listed<C>(c: &Case<C>) -> Listed {
        Listed {
            id: c.id,
            group: c.group,
            spec: c.spec,
            title: c.title,
            destructive: c.destructive,
        }
    }
    let cases: Vec<Listed> = LIBRARY_CASES
        .iter()
        .map(listed)
        .chain(CASES.iter().map(listed))
        .collect();
    let names = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("C_"))
            .map(str::to_string)
            .collect()
    };
    let functions = FUNCTIONS
        .iter()
        .map(|f| Row {
            function: f,
            cases: cases
                .iter()
                .filter(|c| {
                    names(c.spec)
                        .iter()
                        .chain(names(c.title).iter())
                        .any(|n| n == f)
                })
                .map(|c| c.id)
                .collect(),
        })
        .collect();
    Coverage { cases, functions }
}

impl Coverage {
    /// The matrix as text: functions with their cases, then every case by group.
    pub fn table(&self) -> String {
        let mut out = String::from("PKCS#11 function        cases\n");
        for r in &self.functions {
            let cases = if r.cases.is_empty() {
                "— (no case calls it)".to_string()
            } else {
                r.cases.join(", ")
            };
            out.push_str(&format!("{:<23} {}\n", r.function, cases));
        }
        out.push('\n');
        let w = self.cases.iter().map(|c| c.id.len()).max().unwrap_or(10);
        for c in &self.cases {
            out.push_str(&format!(
                "{:<w$}  {:<25}  {}  {}{}\n",
                c.id,
                c.group.name(),
                c.spec,
                c.title,
                if c.destructive { " (destructive)" } else { "" }
            ));
        }
        out.push_str(&format!("{} cases\n", self.cases.len()));
        out
    }
}

/// Runs `cases` on `ctx` in order: a failed check or a panic is that case's result, never the
/// end of the run.
fn execute<C>(cases: &[Case<C>], ctx: &C, destructive: bool) -> (Vec<CaseResult>, Summary) {
    let mut results = vec![];
    let mut summary = Summary::default();
    for case in cases {
        let start = Instant::now();
        let outcome = if case.destructive && !destructive {
            Outcome::Skip(
                "destructive: run with --destructive (it locks and restores a PIN)".into(),
            )
        } else {
            match catch_unwind(AssertUnwindSafe(|| (case.run)(ctx))) {
                Ok(Ok(())) => Outcome::Pass,
                Ok(Err(cases::Check::Fail(m))) => Outcome::Fail(m),
                Ok(Err(cases::Check::Skip(m))) => Outcome::Skip(m),
                Err(p) => Outcome::Fail(format!(
                    "the case panicked: {}",
                    p.downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| p.downcast_ref::<&str>().copied())
                        .unwrap_or("?")
                )),
            }
        };
        // A case's sessions close when it returns (cryptoki closes on drop), and with the last
        // session the login ends (§5.6), so no case inherits another's state.
        match outcome {
            Outcome::Pass => summary.passed += 1,
            Outcome::Fail(_) => summary.failed += 1,
            Outcome::Skip(_) => summary.skipped += 1,
        }
        results.push(CaseResult {
            id: case.id,
            group: case.group,
            spec: case.spec,
            title: case.title,
            outcome,
            millis: start.elapsed().as_millis(),
        });
    }
    (results, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_token_attributes_are_percent_decoded() {
        assert_eq!(percent_decode("JaCarta%20PKI"), "JaCarta PKI");
        assert_eq!(percent_decode("%D0%B6"), "ж");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%2"), "bad%2");
    }

    #[test]
    fn reports_count_and_render_every_outcome() {
        let r = Report {
            suite: Suite::Pkcs11,
            servers: None,
            module: "m.so".into(),
            library: "lib".into(),
            token: "t".into(),
            summary: Summary {
                passed: 1,
                failed: 1,
                skipped: 1,
            },
            cases: vec![
                CaseResult {
                    id: "a",
                    group: Group::Baseline,
                    spec: "§5.4",
                    title: "A",
                    outcome: Outcome::Pass,
                    millis: 1,
                },
                CaseResult {
                    id: "b",
                    group: Group::Baseline,
                    spec: "§5.5",
                    title: "B",
                    outcome: Outcome::Fail("broke <&>".into()),
                    millis: 1,
                },
                CaseResult {
                    id: "c",
                    group: Group::Extended,
                    spec: "§5.7",
                    title: "C",
                    outcome: Outcome::Skip("no mech".into()),
                    millis: 1,
                },
            ],
        };
        let t = r.table();
        assert!(
            t.contains("FAIL  b")
                && t.contains("broke <&>")
                && t.contains("pkcs11: 1 passed, 1 failed, 1 skipped")
        );
        let x = r.junit();
        assert!(
            x.contains("failures=\"1\"")
                && x.contains("broke &lt;&amp;&gt;")
                && x.contains("<skipped"),
            "{x}"
        );
        let j: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(j["cases"][1]["outcome"], "fail");
        assert_eq!(j["cases"][1]["detail"], "broke <&>");
        assert_eq!(j["summary"]["skipped"], 1);
    }
}
