//! criterion bench of whole regeneration flows, as `kilt demo` runs them: an emulated JaCarta
//! through the built `libkilt_pkcs11.so`, the mock CA and the mock bank on `127.0.0.1:0` in this
//! process, kilt's client library driving Flow 2 (CA reissue: mutual TLS with the token's key,
//! two key pairs and CSRs in the token, certificates checked and written, PDF, old sets deleted)
//! and Flow 1 (bank regeneration: challenge login, new key, CSR signed by the old key, polling,
//! activation by the new key, old set deleted). Only the flows are timed; giving the token its
//! first certificates and clearing it between iterations is not.
//!
//! The module reads `KILT_TOKEN_DIR` once, when it is loaded, and the token must be created
//! before that by a process without the module (two SQLite copies on one file in one process
//! lose writes), so the bench creates the token, then runs itself again with the variable set.

use std::time::{Duration, Instant};

use criterion::Criterion;
use kilt_client::admin::{Admin, Identity, Server, provision};
use kilt_client::api::Retry;
use kilt_client::bank::BankOptions;
use kilt_client::ca::CaOptions;
use kilt_client::flow::FlowSettings;
use kilt_client::keys::Confirm;
use kilt_client::out::Out;
use kilt_client::token::{Selector, Token};
use kilt_emulator::{Config, Emulator, Pin, PinSource};

const CHILD: &str = "KILT_BENCH_FLOW_CHILD";
const LABEL: &str = "bench-flow";
const USER_PIN: &str = "1234567890";

fn main() {
    if std::env::var_os(CHILD).is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        Emulator::new(Config::in_dir(dir.path()))
            .expect("emulator")
            .provision(0, LABEL, &Pin::from("00000000"), &Pin::from(USER_PIN))
            .expect("token");
        let status = std::process::Command::new(std::env::current_exe().expect("myself"))
            .args(std::env::args_os().skip(1))
            .env(CHILD, "1")
            .env("KILT_TOKEN_DIR", dir.path())
            .status()
            .expect("the bench runs itself");
        std::process::exit(status.code().unwrap_or(1));
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}

/// Both servers, the token logged in, a work folder.
struct World {
    rt: tokio::runtime::Runtime,
    ca: kilt_mock_ca::Server,
    bank: kilt_mock_bank::Server,
    admin: Admin,
    roots: (Vec<u8>, Vec<u8>),
    token: Token,
    pin: PinSource,
    work: tempfile::TempDir,
    n: u32,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let work = tempfile::tempdir().expect("temp dir");
        let (ca, bank) = rt.block_on(async {
            let ca = kilt_mock_ca::serve(kilt_mock_ca::Config::ephemeral(work.path().join("ca")))
                .await
                .expect("CA");
            let mut config = kilt_mock_bank::Config::ephemeral(work.path().join("bank"));
            config.settings.processing_seconds = 0;
            (ca, kilt_mock_bank::serve(config).await.expect("bank"))
        });
        let admin = Admin::new(&ca.admin_url(), &bank.admin_url()).expect("admin");
        let roots = rt
            .block_on(async {
                Ok::<_, kilt_client::ClientError>((
                    admin.root(Server::Ca).await?,
                    admin.root(Server::Bank).await?,
                ))
            })
            .expect("roots");
        let pin_file = work.path().join("pin");
        std::fs::write(&pin_file, USER_PIN).expect("PIN file");
        let pin = PinSource::File(pin_file);
        let module = kilt_emulator::cli::module_path().expect("libkilt_pkcs11.so beside the bench");
        let mut token = Token::open(
            &module,
            &Selector {
                label: Some(LABEL.into()),
                ..Selector::default()
            },
        )
        .expect("the bench token");
        token.login(&pin, &mut |_| {}).expect("login");
        World {
            rt,
            ca,
            bank,
            admin,
            roots,
            token,
            pin,
            work,
            n: 0,
        }
    }

    /// First certificates for a new CA user and bank subscriber (untimed).
    fn provision(&mut self) {
        self.n += 1;
        let n = self.n;
        let who = Identity {
            login: format!("bench-{n}"),
            full_name: format!("BENCH {n}"),
            iin: format!("{n:012}"),
            subscriber: format!("BENCH{n}_Абонент"),
        };
        self.rt
            .block_on(provision(&self.token, &self.admin, &who, 20))
            .expect("first certificates");
    }

    /// Removes every key set (untimed).
    fn clear(&self) {
        for s in self.token.key_sets().expect("key sets") {
            self.token.delete_set(&s.id_bytes).expect("delete");
        }
    }

    /// Settings for one flow against `url` trusting `root`; a journal folder per iteration.
    fn settings(&self, url: String, root: &[u8]) -> FlowSettings {
        FlowSettings {
            url,
            root: root.to_vec(),
            state_dir: self.work.path().join(format!("state-{}", self.n)),
            retry: Retry::default(),
            poll_every: POLL,
            poll_for: Duration::from_secs(30),
            confirm: Confirm {
                yes: true,
                pin: self.pin.clone(),
            },
        }
    }

    fn flow2(&mut self) {
        let opts = CaOptions {
            flow: self.settings(self.ca.url(), &self.roots.0),
            application: self.work.path().to_path_buf(),
        };
        self.rt
            .block_on(kilt_client::ca::reissue(
                &mut self.token,
                &opts,
                &Out::quiet(),
            ))
            .expect("Flow 2");
    }

    fn flow1(&mut self) {
        let opts = BankOptions {
            flow: self.settings(self.bank.url(), &self.roots.1),
            profile: None,
        };
        self.rt
            .block_on(kilt_client::bank::regenerate(
                &mut self.token,
                &opts,
                &Out::quiet(),
            ))
            .expect("Flow 1");
    }

    /// `iters` runs of `flows`, each on freshly provisioned certificates; only `flows` timed.
    fn timed(&mut self, iters: u64, flows: impl Fn(&mut World)) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            self.provision();
            let start = Instant::now();
            flows(self);
            total += start.elapsed();
            self.clear();
        }
        total
    }
}

/// The client's pause between polls: the bank processes at once here (`processing_seconds`
/// 0), so one pause per flow is all the waiting there is.
const POLL: Duration = Duration::from_millis(10);

fn bench(c: &mut Criterion) {
    let mut world = World::new();
    let mut g = c.benchmark_group("regeneration flow (emulated JaCarta, mock servers)");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("Flow 2: CA reissue", |b| {
        b.iter_custom(|iters| world.timed(iters, World::flow2))
    });
    g.bench_function("Flow 1: bank regeneration", |b| {
        b.iter_custom(|iters| world.timed(iters, World::flow1))
    });
    g.bench_function("kilt demo's flows: Flow 2 then Flow 1", |b| {
        b.iter_custom(|iters| {
            world.timed(iters, |w| {
                w.flow2();
                w.flow1();
            })
        })
    });
    g.finish();
    let World { rt, ca, bank, .. } = world;
    rt.block_on(async {
        ca.shutdown().await;
        bank.shutdown().await;
    });
}
