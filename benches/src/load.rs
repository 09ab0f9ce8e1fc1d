//! `kilt-bench load`: many customers at once, each with an emulated JaCarta of its own, running
//! a regeneration flow against the mock bank (Flow 1) or the mock CA (Flow 2), with kilt's own
//! client library — what a bank's load test does with real tokens.
//!
//! The servers run in this process on a runtime of their own (or are given by URL); the
//! customers run on `concurrency` threads, each driving one flow at a time. Giving every
//! customer its first certificates is set-up and not timed.

use anyhow::{Context, Result, anyhow};
use kilt_client::admin::{Admin, Identity, Server, provision};
use kilt_client::api::Retry;
use kilt_client::bank::BankOptions;
use kilt_client::ca::CaOptions;
use kilt_client::flow::FlowSettings;
use kilt_client::keys::Confirm;
use kilt_client::out::Out;
use kilt_client::token::Token;
use kilt_console::PinSource;
use kilt_protocol::bank::Status;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::USER_PIN;

/// Which flow the customers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Flow 1: the bank's regeneration (challenge login, CSR signed by the old key, activation).
    Bank,
    /// Flow 2: the CA's reissue (mutual TLS with the token's key, two CSRs, PDF application).
    Ca,
}

/// Servers given by URL instead of started here.
#[derive(Clone, Debug)]
pub struct Urls {
    pub ca: String,
    pub ca_admin: String,
    pub bank: String,
    pub bank_admin: String,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadSettings {
    pub module: PathBuf,
    pub customers: usize,
    pub concurrency: usize,
    pub flow: Flow,
    pub urls: Option<Urls>,
    /// Where journals, PIN file and applications go.
    pub work: PathBuf,
}

/// Percentiles of one measured thing, milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    fn of(mut ms: Vec<f64>) -> Spread {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            ms.get(((ms.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Spread {
            count: ms.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The result, as `--json` reports it under `"load"`.
#[derive(Clone, Debug, Serialize)]
pub struct Load {
    pub flow: Flow,
    pub customers: usize,
    pub concurrency: usize,
    pub regenerations_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub wall_s: f64,
    pub errors: usize,
    /// The first few errors, one line each.
    pub error_samples: Vec<String>,
    /// Each step, by the event that ends it (the time since the previous event of that flow).
    pub steps: BTreeMap<String, Spread>,
    /// What the server says afterwards (Flow 1: the bank's profiles).
    pub server: ServerView,
}

/// The server's own view of the customers after the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerView {
    /// Customers whose profile is `in_operation` with the certificate their flow received.
    pub in_operation_with_new_certificate: usize,
    /// Customers the server shows otherwise (status, or another certificate).
    pub otherwise: Vec<String>,
}

struct Customer {
    n: usize,
    token: Token,
}

struct Outcome {
    n: usize,
    total: Duration,
    steps: Vec<(&'static str, Duration)>,
    result: std::result::Result<String, String>,
}

/// Runs the load (in the process whose `KILT_TOKEN_DIR` holds the customers' tokens, slots
/// 0..customers).
pub fn run(settings: &LoadSettings) -> Result<Load> {
    std::fs::create_dir_all(&settings.work)?;
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (urls, started) = match &settings.urls {
        Some(u) => (u.clone(), None),
        None => {
            let (ca, bank) = servers.block_on(start_servers(&settings.work))?;
            let urls = Urls {
                ca: ca.url(),
                ca_admin: ca.admin_url(),
                bank: bank.url(),
                bank_admin: bank.admin_url(),
            };
            (urls, Some((ca, bank)))
        }
    };
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin = Admin::new(&urls.ca_admin, &urls.bank_admin)?;
    let root = client.block_on(admin.root(match settings.flow {
        Flow::Bank => Server::Bank,
        Flow::Ca => Server::Ca,
    }))?;
    let pin_file = settings.work.join("pin");
    std::fs::write(&pin_file, USER_PIN)?;
    let pin = PinSource::File(pin_file);
    let pkcs11 = kilt_client::token::load(&settings.module)?;
    // Set-up, not timed: each customer's token logged in and given its first certificates.
    let run_id = std::process::id();
    let mut customers = vec![];
    for n in 0..settings.customers {
        let mut token = Token::in_slot(&pkcs11, &settings.module, n as u64)
            .with_context(|| format!("customer {n}'s token (slot {n})"))?;
        token.login(&pin, &mut |_| {})?;
        let who = Identity {
            login: format!("load-{run_id}-{n}"),
            full_name: format!("LOAD {n}"),
            iin: format!("{:012}", 100_000_000 + n),
            subscriber: format!("LOAD{run_id}N{n}_Абонент"),
        };
        client
            .block_on(provision(&token, &admin, &who, 20))
            .with_context(|| format!("first certificates of customer {n}"))?;
        customers.push(Customer { n, token });
    }
    let queue = Mutex::new(customers);
    let done = Mutex::new(vec![]);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..settings.concurrency.max(1) {
            scope.spawn(|| worker(settings, &urls, &root, &pin, &queue, &done));
        }
    });
    let wall = start.elapsed();
    let outcomes = done.into_inner().unwrap_or_else(|e| e.into_inner());
    let server = match settings.flow {
        Flow::Bank => client.block_on(bank_view(&admin, &outcomes))?,
        Flow::Ca => ServerView::default(),
    };
    if let Some((ca, bank)) = started {
        servers.block_on(async {
            ca.shutdown().await;
            bank.shutdown().await;
        });
    }
    Ok(report(settings, wall, outcomes, server))
}

async fn start_servers(work: &Path) -> Result<(kilt_mock_ca::Server, kilt_mock_bank::Server)> {
    let ca = kilt_mock_ca::serve(kilt_mock_ca::Config::ephemeral(work.join("ca"))).await?;
    let mut config = kilt_mock_bank::Config::ephemeral(work.join("bank"));
    // The bank issues at once: the load measures the flows, not a waiting room.
    config.settings.processing_seconds = 0;
    Ok((ca, kilt_mock_bank::serve(config).await?))
}

/// One customer thread: takes the next customer, runs its flow, until none is left.
fn worker(
    settings: &LoadSettings,
    urls: &Urls,
    root: &[u8],
    pin: &PinSource,
    queue: &Mutex<Vec<Customer>>,
    done: &Mutex<Vec<Outcome>>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let Some(mut c) = next else { return };
        let (tx, rx) = std::sync::mpsc::channel();
        let out = Out {
            steps: Some(tx),
            ..Out::quiet()
        };
        let flow = FlowSettings {
            url: match settings.flow {
                Flow::Bank => urls.bank.clone(),
                Flow::Ca => urls.ca.clone(),
            },
            root: root.to_vec(),
            state_dir: settings.work.join(format!("state-{}", c.n)),
            retry: Retry::default(),
            poll_every: Duration::from_millis(10),
            poll_for: Duration::from_secs(120),
            confirm: Confirm {
                yes: true,
                pin: pin.clone(),
            },
        };
        let start = Instant::now();
        let result = match settings.flow {
            Flow::Bank => rt
                .block_on(kilt_client::bank::regenerate(
                    &mut c.token,
                    &BankOptions {
                        flow,
                        profile: None,
                    },
                    &out,
                ))
                .map(|o| o.new_serial),
            Flow::Ca => rt
                .block_on(kilt_client::ca::reissue(
                    &mut c.token,
                    &CaOptions {
                        flow,
                        application: settings.work.join(format!("application-{}", c.n)),
                    },
                    &out,
                ))
                .map(|o| format!("{} certificates", o.certificates.len())),
        };
        let total = start.elapsed();
        drop(out);
        let mut steps = vec![];
        let mut last = start;
        for (event, at) in rx.try_iter() {
            steps.push((event, at.saturating_duration_since(last)));
            last = at;
        }
        done.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Outcome {
                n: c.n,
                total,
                steps,
                result: result.map_err(|e| e.to_string()),
            });
    }
}

/// The bank's profiles: each customer `in_operation` with the certificate its flow received.
async fn bank_view(admin: &Admin, outcomes: &[Outcome]) -> Result<ServerView> {
    let profiles = admin.bank_profiles().await?;
    let mut view = ServerView::default();
    for o in outcomes {
        let Ok(serial) = &o.result else { continue };
        let mine = profiles
            .iter()
            .filter(|p| p.subscriber.contains(&format!("N{}_", o.n)))
            .collect::<Vec<_>>();
        match mine.as_slice() {
            [p] if p.status == Status::InOperation && p.serial.eq_ignore_ascii_case(serial) => {
                view.in_operation_with_new_certificate += 1
            }
            other => view.otherwise.push(format!(
                "customer {}: {:?}",
                o.n,
                other
                    .iter()
                    .map(|p| (p.status, p.serial.as_str()))
                    .collect::<Vec<_>>()
            )),
        }
    }
    Ok(view)
}

fn report(
    settings: &LoadSettings,
    wall: Duration,
    outcomes: Vec<Outcome>,
    server: ServerView,
) -> Load {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_ok()).collect();
    let total = Spread::of(ok.iter().map(|o| ms(o.total)).collect());
    let mut by_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for o in &ok {
        for (event, d) in &o.steps {
            by_step.entry((*event).to_owned()).or_default().push(ms(*d));
        }
    }
    let errors: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| format!("customer {}: {e}", o.n))
        })
        .collect();
    Load {
        flow: settings.flow,
        customers: settings.customers,
        concurrency: settings.concurrency,
        regenerations_per_s: ok.len() as f64 / wall.as_secs_f64(),
        p50_ms: total.p50_ms,
        p99_ms: total.p99_ms,
        wall_s: wall.as_secs_f64(),
        errors: errors.len(),
        error_samples: errors.into_iter().take(5).collect(),
        steps: by_step
            .into_iter()
            .map(|(k, v)| (k, Spread::of(v)))
            .collect(),
        server,
    }
}

impl Load {
    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "kilt-bench load: {} customers, {} at once, Flow {} ({:?})\n",
            self.customers,
            self.concurrency,
            if self.flow == Flow::Bank { 1 } else { 2 },
            self.flow
        );
        out += &format!(
            "  {:.1} regenerations/s over {:.1} s; per regeneration p50 {:.1} ms, p99 {:.1} ms; {} errors\n",
            self.regenerations_per_s, self.wall_s, self.p50_ms, self.p99_ms, self.errors
        );
        for e in &self.error_samples {
            out += &format!("    {e}\n");
        }
        out += "  steps (ended by event)            count     p50 ms     p99 ms     max ms\n";
        for (name, s) in &self.steps {
            out += &format!(
                "    {name:<30} {:>7} {:>10.1} {:>10.1} {:>10.1}\n",
                s.count, s.p50_ms, s.p99_ms, s.max_ms
            );
        }
        if self.flow == Flow::Bank {
            out += &format!(
                "  the bank: {} of {} customers in_operation with their new certificate\n",
                self.server.in_operation_with_new_certificate, self.customers
            );
            for o in self.server.otherwise.iter().take(5) {
                out += &format!("    {o}\n");
            }
        }
        out
    }
}

/// Fresh tokens for `customers` customers in `dir` (slots 0..customers), made by the emulator
/// library in this process, which must not load the module afterwards.
pub fn make_tokens(dir: &Path, customers: usize) -> Result<()> {
    let emu = kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(dir))?;
    for n in 0..customers {
        emu.provision(
            n as u64,
            &format!("customer-{n}"),
            &kilt_emulator::Pin::from(crate::SO_PIN),
            &kilt_emulator::Pin::from(USER_PIN),
        )
        .map_err(|e| anyhow!("token of customer {n}: {e}"))?;
    }
    Ok(())
}
