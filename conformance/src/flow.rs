//! The flow scenarios: both regeneration flows of DESIGN.md run by kilt's own client library
//! against a bank and a CA, with what goes wrong in the field — an expiring and an expired
//! certificate, a wrong and a locked PIN, the token pulled out mid-flow, the server down, a
//! rejected request, a revoked certificate.
//!
//! Each scenario gives the token fresh first certificates through the servers' admin listeners
//! (a new CA user and a new bank subscriber, so scenarios never see each other's requests) and
//! deletes every key set again at the end, so it needs an empty test token: it refuses one that
//! holds keys. The admin listeners are kilt's mock servers'; the held-request scenarios switch
//! them to manual approval for their duration (`/admin/approval`).
//!
//! What every scenario checks besides its own outcome is the client's promise: the token never
//! ends with a half-done key set — either the old sets untouched or exactly the new ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use kilt_client::admin::{Admin, FIRST_IDS, Identity, Provisioned, Server, provision};
use kilt_client::api::Retry;
use kilt_client::bank::{BankOptions, BankOutcome};
use kilt_client::ca::{CaOptions, CaOutcome};
use kilt_client::flow::FlowSettings;
use kilt_client::keys::Confirm;
use kilt_client::out::Out;
use kilt_client::token::{KeySet, Selector, Token};
use kilt_client::{ClientError, uri::Pkcs11Uri};
use kilt_emulator::{Pin, PinSource};
use kilt_protocol::Faults;
use kilt_protocol::bank::Status;

use crate::cases::{Check, R};
use crate::{Case, Error, Group, Options, Report, Suite, execute};

/// What to run the flow scenarios against.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// The module, token and PINs, as for the PKCS#11 suite (`so_pin`: the locked-PIN scenario
    /// unblocks the user PIN with it; `destructive`: run that scenario).
    pub token: Options,
    /// The bank's customer API (`https://…`).
    pub bank: String,
    /// The bank's admin listener (`http://127.0.0.1:…`).
    pub bank_admin: String,
    /// The CA's API.
    pub ca: String,
    /// The CA's admin listener.
    pub ca_admin: String,
}

/// What a scenario gets.
pub struct FlowCtx {
    options: FlowOptions,
    selector: Selector,
    rt: tokio::runtime::Runtime,
    admin: Admin,
    ca_root: Vec<u8>,
    bank_root: Vec<u8>,
    work: tempfile::TempDir,
    pin: PinSource,
    /// The emulator's control tool beside kilt's module (to pull the token out); `None` for
    /// other modules, where that needs a person.
    kilt_token: Option<PathBuf>,
    runs: AtomicU32,
}

/// One scenario's token, identity and folders.
struct Scene<'a> {
    ctx: &'a FlowCtx,
    /// `None` only while it is reopened.
    token: Option<Token>,
    first: Provisioned,
    dir: PathBuf,
}

fn fail(what: &str) -> impl FnOnce(ClientError) -> Check + '_ {
    move |e| Check::Fail(format!("{what}: {e}"))
}

/// The IDs of the token's key sets, sorted.
fn ids(sets: &[KeySet]) -> Vec<String> {
    let mut v: Vec<String> = sets.iter().map(|s| s.id.clone()).collect();
    v.sort();
    v
}

impl FlowCtx {
    fn token(&self) -> Result<Token, ClientError> {
        let mut token = Token::open(&self.options.token.module, &self.selector)?;
        token.login(&self.pin, &mut |_| {})?;
        Ok(token)
    }

    /// Runs `body` on a token with fresh first certificates valid for `valid_days`, then
    /// removes every key set again, whatever `body` returned.
    fn scene(&self, valid_days: i64, body: impl FnOnce(&mut Scene) -> R) -> R {
        let token = self.token().map_err(fail("opening the token"))?;
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{n:02}", std::process::id() % 100_000);
        let who = Identity {
            login: format!("qa-{tag}"),
            full_name: format!("QA ТЕСТ {tag}"),
            iin: format!("{:0>12}", tag),
            subscriber: format!("QA{tag}_Абонент"),
        };
        let first = self
            .rt
            .block_on(provision(&token, &self.admin, &who, valid_days))
            .map_err(fail("provisioning the first certificates"))?;
        let dir = self.work.path().join(&who.login);
        std::fs::create_dir_all(&dir).map_err(|e| Check::Fail(e.to_string()))?;
        let mut scene = Scene {
            ctx: self,
            token: Some(token),
            first,
            dir,
        };
        let result = body(&mut scene);
        let cleanup = scene.clear();
        result.and(cleanup)
    }

    fn retry() -> Retry {
        Retry {
            attempts: 4,
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
            timeout: Duration::from_secs(10),
        }
    }

    fn kilt_token(&self, args: &[&str]) -> R {
        let tool = self.kilt_token.as_ref().ok_or_else(|| {
            Check::Skip(
                "pulling the token out needs a person; automated for kilt's emulator only".into(),
            )
        })?;
        let out = Command::new(tool)
            .args(args)
            .output()
            .map_err(|e| Check::Fail(format!("cannot run {}: {e}", tool.display())))?;
        ensure!(
            out.status.success(),
            "kilt-token {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

/// Which flow a scenario drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Bank,
    Ca,
}

impl Flow {
    fn server(self) -> Server {
        match self {
            Flow::Bank => Server::Bank,
            Flow::Ca => Server::Ca,
        }
    }

    /// The first key sets this flow replaces.
    fn first_sets(self) -> &'static [&'static [u8]] {
        match self {
            Flow::Ca => &FIRST_IDS[..2],
            Flow::Bank => &FIRST_IDS[2..],
        }
    }
}

/// A flow's result, either flow.
enum Done {
    Bank(BankOutcome),
    Ca(CaOutcome),
}

impl Done {
    fn resumed(&self) -> bool {
        match self {
            Done::Bank(d) => d.resumed,
            Done::Ca(d) => d.resumed,
        }
    }
}

impl Scene<'_> {
    fn token(&mut self) -> Result<&mut Token, Check> {
        match &mut self.token {
            Some(t) => Ok(t),
            None => Err(Check::Fail("the token could not be opened again".into())),
        }
    }

    fn sets(&mut self) -> Result<Vec<KeySet>, Check> {
        self.token()?
            .key_sets()
            .map_err(fail("listing the key sets"))
    }

    /// Opens the token afresh (after a removal the old session is gone). The old context goes
    /// first: dropping a cryptoki context calls C_Finalize (§5.4), which would close the new
    /// one's sessions too.
    fn reopen(&mut self) -> R {
        self.token = None;
        self.token = Some(self.ctx.token().map_err(fail("opening the token again"))?);
        Ok(())
    }

    fn clear(&mut self) -> R {
        self.reopen()?;
        for set in self.sets()? {
            self.token()?
                .delete_set(&set.id_bytes)
                .map_err(fail("deleting a key set"))?;
        }
        Ok(())
    }

    async fn run(&mut self, flow: Flow) -> Result<Done, ClientError> {
        let ctx = self.ctx;
        let (url, root) = match flow {
            Flow::Ca => (&ctx.options.ca, &ctx.ca_root),
            Flow::Bank => (&ctx.options.bank, &ctx.bank_root),
        };
        let settings = FlowSettings {
            url: url.clone(),
            root: root.clone(),
            state_dir: self.dir.join("state"),
            retry: FlowCtx::retry(),
            poll_every: Duration::from_millis(100),
            poll_for: Duration::from_secs(30),
            confirm: Confirm {
                yes: true,
                pin: ctx.pin.clone(),
            },
        };
        let out = Out::quiet();
        let Some(token) = self.token.as_mut() else {
            return Err(ClientError::NoKeySet("the token is not open".into()));
        };
        match flow {
            Flow::Ca => kilt_client::ca::reissue(
                token,
                &CaOptions {
                    flow: settings,
                    application: self.dir.clone(),
                },
                &out,
            )
            .await
            .map(Done::Ca),
            Flow::Bank => kilt_client::bank::regenerate(
                token,
                &BankOptions {
                    flow: settings,
                    profile: None,
                },
                &out,
            )
            .await
            .map(Done::Bank),
        }
    }

    fn flow(&mut self, flow: Flow) -> Result<Done, ClientError> {
        let rt = &self.ctx.rt;
        rt.block_on(self.run(flow))
    }

    /// Runs `flow` with the server in manual approval; once the request waits for the operator,
    /// `action` gets its number (and decides, or pulls the token out).
    fn held(
        &mut self,
        flow: Flow,
        action: impl AsyncFnOnce(&Admin, u64) -> R,
    ) -> Result<Result<Done, ClientError>, Check> {
        let server = flow.server();
        let ctx = self.ctx;
        let admin = &ctx.admin;
        let profile = self.first.profile.clone();
        ctx.rt
            .block_on(admin.set_approval(server, true))
            .map_err(fail("switching to manual approval"))?;
        let finished = AtomicBool::new(false);
        let (done, acted) = ctx.rt.block_on(async {
            let run = async {
                let r = self.run(flow).await;
                finished.store(true, Ordering::SeqCst);
                r
            };
            let watch = async {
                // The flow ending first means it never reached the operator.
                while !finished.load(Ordering::SeqCst) {
                    match admin.waiting(server, &profile).await {
                        Ok(Some(id)) => return action(admin, id).await,
                        Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                        Err(e) => return Err(fail("listing waiting requests")(e)),
                    }
                }
                Err(Check::Fail(
                    "the flow ended before its request waited for the operator".into(),
                ))
            };
            tokio::join!(run, watch)
        });
        ctx.rt
            .block_on(admin.set_approval(server, false))
            .map_err(fail("switching back to automatic approval"))?;
        acted?;
        Ok(done)
    }

    /// After an interrupted run: the rerun resumes the journal (no fresh start) and ends with
    /// exactly the new key sets.
    fn rerun_resumes(&mut self, flow: Flow) -> R {
        let done = succeeded(self.flow(flow))?;
        ensure!(
            done.resumed(),
            "the rerun started afresh instead of resuming"
        );
        self.renewed(flow.first_sets(), 300)
    }

    /// Checks the token holds exactly the first key sets, unchanged.
    fn untouched(&mut self) -> R {
        let now = ids(&self.sets()?);
        let mut want: Vec<String> = FIRST_IDS
            .iter()
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .collect();
        want.sort();
        ensure!(
            now == want,
            "the token should be unchanged ({want:?}) but holds {now:?}"
        );
        Ok(())
    }

    /// Checks the token ends with exactly three key sets (auth, sign, bank): the first sets
    /// in `gone` replaced by new ones with certificates valid for more than `min_days`, the
    /// other first sets kept.
    fn renewed(&mut self, gone: &[&[u8]], min_days: i64) -> R {
        let sets = self.sets()?;
        ensure!(
            sets.len() == 3,
            "the token should end with 3 key sets (auth, sign, bank) but holds {:?}",
            ids(&sets)
        );
        for id in FIRST_IDS {
            let kept = sets.iter().any(|s| s.id_bytes == id);
            ensure!(
                kept != gone.contains(&id),
                "key set {} should be {}",
                String::from_utf8_lossy(id),
                if kept { "deleted" } else { "kept" }
            );
        }
        for s in sets
            .iter()
            .filter(|s| !FIRST_IDS.contains(&s.id_bytes.as_slice()))
        {
            let days = s.certificate.as_ref().map(|c| c.days_left);
            ensure!(
                days.is_some_and(|d| d > min_days),
                "the new key set {} has no fresh certificate (days left: {days:?})",
                s.id
            );
        }
        Ok(())
    }
}

/// The error a failing flow must give, with `needle` in its one line.
fn refused(r: Result<Done, ClientError>, needle: &str) -> Result<String, Check> {
    match r {
        Ok(_) => Err(Check::Fail(format!(
            "the flow succeeded; it should have stopped with {needle:?}"
        ))),
        Err(e) => {
            let line = e.to_string();
            ensure!(
                line.contains(needle) && !line.contains('\n'),
                "the error should be one line naming {needle:?}; it was: {line}"
            );
            Ok(line)
        }
    }
}

fn succeeded(r: Result<Done, ClientError>) -> Result<Done, Check> {
    r.map_err(fail("the flow failed"))
}

// ---- flow 2, the CA --------------------------------------------------------------------------

fn ca_happy_path(ctx: &FlowCtx) -> R {
    ctx.scene(20, |s| {
        let Done::Ca(done) = succeeded(s.flow(Flow::Ca))? else {
            unreachable!()
        };
        ensure!(
            done.certificates.len() == 2,
            "the CA issued {:?}, want an AUTH and a SIGN certificate",
            done.certificates
        );
        let pdf = std::fs::read(&done.application).map_err(|e| {
            Check::Fail(format!(
                "no application at {}: {e}",
                done.application.display()
            ))
        })?;
        ensure!(pdf.starts_with(b"%PDF-"), "the application is not a PDF");
        s.renewed(Flow::Ca.first_sets(), 300)
    })
}

fn ca_expired(ctx: &FlowCtx) -> R {
    ctx.scene(-3, |s| {
        refused(s.flow(Flow::Ca), "apply to the CA in person")?;
        s.untouched()
    })
}

fn ca_revoked(ctx: &FlowCtx) -> R {
    ctx.scene(20, |s| {
        let serial = s.first.auth_serial.clone();
        s.ctx
            .rt
            .block_on(s.ctx.admin.revoke(&serial))
            .map_err(fail("revoking the AUTH certificate"))?;
        refused(s.flow(Flow::Ca), "revoked")?;
        s.untouched()
    })
}

/// The server goes down while the request waits (the operator approves behind the outage);
/// the run stops with one line and a resumable journal; back up, the rerun ends the flow with
/// no second key set.
fn outage(ctx: &FlowCtx, flow: Flow) -> R {
    let server = flow.server();
    ctx.scene(20, |s| {
        let r = s.held(flow, async |admin: &Admin, id| {
            let down = Faults {
                fail_percent: 100,
                ..Faults::default()
            };
            // Down first, so the client never sees the approval before the outage.
            admin
                .set_faults(server, down)
                .await
                .map_err(fail("setting the fault knobs"))?;
            admin
                .decide(server, id, None)
                .await
                .map_err(fail("approving"))
        });
        let up = s
            .ctx
            .rt
            .block_on(s.ctx.admin.set_faults(server, Faults::default()))
            .map_err(fail("clearing the fault knobs"));
        let line = refused(r?, "503")?;
        up?;
        ensure!(
            line.contains("rerun"),
            "the outage error should say to rerun: {line}"
        );
        s.rerun_resumes(flow)
    })
}

fn ca_outage(ctx: &FlowCtx) -> R {
    outage(ctx, Flow::Ca)
}

fn rejected(ctx: &FlowCtx, flow: Flow) -> R {
    const REASON: &str = "QA: документы не прошли проверку";
    ctx.scene(20, |s| {
        let r = s.held(flow, async |admin: &Admin, id| {
            admin
                .decide(flow.server(), id, Some(REASON))
                .await
                .map_err(fail("rejecting"))
        })?;
        refused(r, REASON)?;
        // The new keys had no certificate and never will: removed, the old sets kept.
        s.untouched()
    })
}

fn ca_rejected(ctx: &FlowCtx) -> R {
    rejected(ctx, Flow::Ca)
}

/// The token is pulled out while the request waits; the run says so; plugged back in, the
/// rerun resumes and ends with exactly the new sets.
fn removed(ctx: &FlowCtx, flow: Flow) -> R {
    ctx.kilt_token(&["--version"])?;
    ctx.scene(20, |s| {
        let slot = s.token()?.info().slot.to_string();
        let server = flow.server();
        let r = s.held(flow, async |admin: &Admin, id| {
            ctx.kilt_token(&["unplug", "--slot", &slot])?;
            admin
                .decide(server, id, None)
                .await
                .map_err(fail("approving"))
        });
        let plugged = ctx.kilt_token(&["plug", "--slot", &slot]);
        refused(r?, "the token was removed")?;
        plugged?;
        s.reopen()?;
        s.rerun_resumes(flow)
    })
}

fn ca_removed(ctx: &FlowCtx) -> R {
    removed(ctx, Flow::Ca)
}

// ---- flow 1, the bank --------------------------------------------------------------------

fn bank_happy_path(ctx: &FlowCtx) -> R {
    ctx.scene(20, |s| {
        let Done::Bank(done) = succeeded(s.flow(Flow::Bank))? else {
            unreachable!()
        };
        let want = [
            Status::New,
            Status::AcceptedByBank,
            Status::NewCertificateReceived,
            Status::InOperation,
        ];
        let seen: Vec<Status> = done
            .statuses
            .iter()
            .copied()
            .filter(|st| want.contains(st))
            .collect();
        ensure!(
            seen == want,
            "statuses seen {:?}, want {want:?} in order",
            done.statuses
        );
        ensure!(done.old_deleted, "the old bank key set was not deleted");
        s.renewed(Flow::Bank.first_sets(), 300)
    })
}

fn bank_expiring(ctx: &FlowCtx) -> R {
    ctx.scene(20, |s| {
        let Done::Bank(done) = succeeded(s.flow(Flow::Bank))? else {
            unreachable!()
        };
        ensure!(
            done.statuses.first() == Some(&Status::RegenerationRequired),
            "a certificate 20 days from its end should show \"необходима плановая регенерация\" first; statuses {:?}",
            done.statuses
        );
        Ok(())
    })
}

fn bank_expired(ctx: &FlowCtx) -> R {
    ctx.scene(-3, |s| {
        refused(s.flow(Flow::Bank), "apply to the bank in person")?;
        s.untouched()
    })
}

fn bank_outage(ctx: &FlowCtx) -> R {
    outage(ctx, Flow::Bank)
}

fn bank_rejected(ctx: &FlowCtx) -> R {
    rejected(ctx, Flow::Bank)
}

fn bank_removed(ctx: &FlowCtx) -> R {
    removed(ctx, Flow::Bank)
}

// ---- the PIN -----------------------------------------------------------------------------

/// A PIN that is surely not `right`.
fn wrong_pin(dir: &Path, right: &Pin) -> Result<PinSource, Check> {
    let wrong = if right.as_bytes() == b"0000000000" {
        "1111111111"
    } else {
        "0000000000"
    };
    let path = dir.join("wrong-pin");
    std::fs::write(&path, wrong).map_err(|e| Check::Fail(e.to_string()))?;
    Ok(PinSource::File(path))
}

fn pin_wrong(ctx: &FlowCtx) -> R {
    let wrong = wrong_pin(ctx.work.path(), &ctx.options.token.user_pin)?;
    let mut token =
        Token::open(&ctx.options.token.module, &ctx.selector).map_err(fail("opening the token"))?;
    let r = token.login(&wrong, &mut |_| {});
    let line = match r {
        Ok(()) => return Err(Check::Fail("a wrong PIN was accepted".into())),
        Err(e @ ClientError::PinIncorrect { .. }) => e.to_string(),
        Err(e) => return Err(Check::Fail(format!("a wrong PIN gave: {e}"))),
    };
    // kilt tokens tell the exact count; others only the §5.5 flags (COUNT_LOW, FINAL_TRY).
    let said = if ctx.kilt_token.is_some() {
        line.contains("tries left")
    } else {
        line.contains("tries") || line.contains("try")
    };
    ensure!(
        said,
        "the wrong-PIN line should say what is left of the tries: {line}"
    );
    // The right PIN still works, and a success resets the count (§5.5 CKF_USER_PIN_COUNT_LOW).
    token
        .login(&ctx.pin, &mut |_| {})
        .map_err(fail("the right PIN after a wrong one"))?;
    let info = token.refresh().map_err(fail("C_GetTokenInfo"))?;
    ensure!(
        !info.pin_count_low && !info.pin_locked,
        "after the right PIN the token still reports a low count or a lock"
    );
    Ok(())
}

fn pin_locked(ctx: &FlowCtx) -> R {
    let Some(so) = ctx.options.token.so_pin.clone() else {
        return Err(Check::Skip(
            "needs the SO PIN (--so-pin-source) to unblock the user PIN afterwards".into(),
        ));
    };
    let wrong = wrong_pin(ctx.work.path(), &ctx.options.token.user_pin)?;
    let mut token =
        Token::open(&ctx.options.token.module, &ctx.selector).map_err(fail("opening the token"))?;
    let mut locked = None;
    for _ in 0..32 {
        match token.login(&wrong, &mut |_| {}) {
            Err(ClientError::PinIncorrect { .. }) => continue,
            Err(e @ ClientError::PinLocked(_)) => {
                locked = Some(e.to_string());
                break;
            }
            other => {
                locked = Some(format!("unexpected: {other:?}"));
                break;
            }
        }
    }
    drop(token);
    // What the flow does with a locked PIN: stops at once, saying who can unblock it.
    let flow_line = Token::open(&ctx.options.token.module, &ctx.selector)
        .and_then(|mut t| t.login(&ctx.pin, &mut |_| {}))
        .err()
        .map(|e| e.to_string());
    let restored = unblock(&ctx.options.token, &so).and_then(|()| {
        ctx.token()
            .map(drop)
            .map_err(fail("the user PIN after the SO reset it"))
    });
    let locked = locked.unwrap_or_else(|| "never locked after 32 wrong PINs".into());
    ensure!(
        locked.contains("locked") && locked.contains("SO"),
        "the lock should be reported with who can unblock it: {locked}"
    );
    ensure!(
        flow_line.as_deref().is_some_and(|l| l.contains("locked")),
        "with the PIN locked the right PIN should meet the lock, got {flow_line:?}"
    );
    restored
}

/// The SO resets the user PIN to the one given (PKCS#11 §5.6 C_InitPIN).
fn unblock(options: &Options, so: &Pin) -> R {
    use cryptoki::session::UserType;
    let p = kilt_client::token::load(&options.module).map_err(fail("loading the module"))?;
    let slot =
        crate::find_slot(&p, options.token.as_deref()).map_err(|e| Check::Fail(e.to_string()))?;
    let s = p.open_rw_session(slot)?;
    s.login(UserType::So, Some(&crate::auth_pin(so)))?;
    s.init_pin(&crate::auth_pin(&options.user_pin))?;
    Ok(())
}

/// Every scenario, in the order they run.
pub static SCENARIOS: &[Case<FlowCtx>] = &[
    case!(
        "pin-wrong",
        FlowPin,
        "PKCS#11 §5.6 C_Login",
        "a wrong PIN: refused with the tries left, the right one still works",
        pin_wrong
    ),
    case!(
        "ca-happy-path",
        CaFlow,
        "DESIGN.md Flow 2",
        "reissue at the CA: login by certificate, new keys, certificates written, PDF, old sets deleted",
        ca_happy_path
    ),
    case!(
        "ca-expired",
        CaFlow,
        "DESIGN.md Flow 2",
        "an expired certificate: one line, apply in person, token unchanged",
        ca_expired
    ),
    case!(
        "ca-revoked",
        CaFlow,
        "RFC 5280 §5.3.1",
        "a revoked AUTH certificate: the CA refuses the login, token unchanged",
        ca_revoked
    ),
    case!(
        "ca-outage",
        CaFlow,
        "DESIGN.md Flow 2",
        "the CA answers 503 while the request waits: clear error, rerun resumes, one key set each",
        ca_outage
    ),
    case!(
        "ca-rejected",
        CaFlow,
        "DESIGN.md Flow 2",
        "the operator rejects the request: the reason shown, the new keys removed",
        ca_rejected
    ),
    case!(
        "ca-token-removed",
        CaFlow,
        "PKCS#11 §5.1 CKR_DEVICE_REMOVED",
        "the token pulled out while the request waits: reported, resumes after re-insertion",
        ca_removed
    ),
    case!(
        "bank-happy-path",
        BankFlow,
        "DESIGN.md Flow 1",
        "regeneration at the bank: new → accepted_by_bank → new_certificate_received → in_operation",
        bank_happy_path
    ),
    case!(
        "bank-expiring",
        BankFlow,
        "DESIGN.md Flow 1",
        "a certificate 20 days from its end shows regeneration_required first",
        bank_expiring
    ),
    case!(
        "bank-expired",
        BankFlow,
        "DESIGN.md Flow 1",
        "an expired certificate: one line, apply in person, token unchanged",
        bank_expired
    ),
    case!(
        "bank-outage",
        BankFlow,
        "DESIGN.md Flow 1",
        "the bank answers 503 while the request waits: clear error, rerun resumes, one key set",
        bank_outage
    ),
    case!(
        "bank-rejected",
        BankFlow,
        "DESIGN.md Flow 1",
        "the bank rejects the request: the reason shown, the new key removed",
        bank_rejected
    ),
    case!(
        "bank-token-removed",
        BankFlow,
        "PKCS#11 §5.1 CKR_DEVICE_REMOVED",
        "the token pulled out while the bank processes: reported, resumes after re-insertion",
        bank_removed
    ),
    case!(
        "pin-locked",
        FlowPin,
        "PKCS#11 §5.6 C_Login, C_InitPIN",
        "a locked PIN stops the flow saying who unblocks it; the SO restores it",
        pin_locked,
        destructive
    ),
];

/// Runs every flow scenario and reports, like [`crate::run_pkcs11`].
pub fn run_flow(options: &FlowOptions) -> Result<Report, Error> {
    let setup = |what: &str, e: ClientError| Error::Flow(format!("{what}: {e}"));
    let selector = match options.token.token.as_deref() {
        Some(t) if t.starts_with("pkcs11:") => Selector {
            uri: Some(
                t.parse::<Pkcs11Uri>()
                    .map_err(|e| Error::Flow(e.to_string()))?,
            ),
            ..Selector::default()
        },
        label => Selector {
            label: label.map(str::to_owned),
            ..Selector::default()
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Flow(format!("cannot start a runtime: {e}")))?;
    let admin = Admin::new(&options.ca_admin, &options.bank_admin)
        .map_err(|e| setup("the admin listeners", e))?;
    let (ca_root, bank_root) = rt
        .block_on(async {
            Ok::<_, ClientError>((
                admin.root(Server::Ca).await?,
                admin.root(Server::Bank).await?,
            ))
        })
        .map_err(|e| setup("reading the servers' roots", e))?;
    let work = tempfile::tempdir().map_err(|e| Error::Flow(e.to_string()))?;
    let pin_file = work.path().join("pin");
    write_private(&pin_file, options.token.user_pin.as_bytes())
        .map_err(|e| Error::Flow(format!("cannot write the PIN file: {e}")))?;
    let kilt_token = options
        .token
        .module
        .file_name()
        .filter(|n| *n == "libkilt_pkcs11.so")
        .and_then(|_| options.token.module.parent())
        .map(|d| d.join("kilt-token"))
        .filter(|t| t.exists());
    let ctx = FlowCtx {
        options: options.clone(),
        selector,
        rt,
        admin,
        ca_root,
        bank_root,
        pin: PinSource::File(pin_file),
        work,
        kilt_token,
        runs: AtomicU32::new(0),
    };
    // Scenarios delete every key set they leave: never on a token with someone's keys.
    let token = ctx.token().map_err(|e| setup("the token", e))?;
    let held = token.key_sets().map_err(|e| setup("the token", e))?;
    if !held.is_empty() {
        return Err(Error::Flow(format!(
            "token {:?} holds {} key set(s) ({}); the flow scenarios write and delete key sets, so run them on an empty test token",
            token.info().label,
            held.len(),
            ids(&held).join(", ")
        )));
    }
    let label = token.info().label.clone();
    let library = format!("{} {}", token.info().manufacturer, token.info().model);
    drop(token);
    let (cases, summary) = execute(SCENARIOS, &ctx, options.token.destructive);
    Ok(Report {
        suite: Suite::Flow,
        module: options.token.module.display().to_string(),
        library,
        token: label,
        servers: Some(format!("bank {}, CA {}", options.bank, options.ca)),
        summary,
        cases,
    })
}

/// Writes a file only its owner can read (the PIN).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}
