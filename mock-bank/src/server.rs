//! The bank's listeners: the TLS API/pages listener and the plain-HTTP admin listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kilt_mock_server::http::{
    ClientAuth, Timeouts, accept_tls, faults_from_env, log_faults, spawn_plain, tls_config,
};
use kilt_protocol::Faults;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bank::{Bank, Settings};
use crate::error::{BankError, Result};
use crate::web::AppState;

/// Default API listener (TLS).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9443";
/// Default admin listener (plain HTTP, loopback only).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9444";
/// Prefix of the fault-knob environment variables: `KILT_BANK_FAIL_PERCENT`,
/// `KILT_BANK_LATENCY_MS`, `KILT_BANK_DROP_PERCENT`, `KILT_BANK_DUPLICATE_PERCENT`.
pub const ENV_PREFIX: &str = "KILT_BANK";

/// How to run the bank.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where `bank.sqlite` and the PKI files live.
    pub data_dir: PathBuf,
    /// API/pages listener. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Admin listener. Keep it on loopback.
    pub admin_listen: SocketAddr,
    /// Processing rules.
    pub settings: Settings,
    /// Fault knobs at start-up.
    pub faults: Faults,
    /// Connection timeouts.
    pub timeouts: Timeouts,
}

impl Config {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: DEFAULT_LISTEN.parse().expect("valid address"),
            admin_listen: DEFAULT_ADMIN_LISTEN.parse().expect("valid address"),
            settings: Settings::default(),
            faults: Faults::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// Both listeners on `127.0.0.1:0`.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Config {
        let mut config = Config::new(data_dir);
        config.listen = "127.0.0.1:0".parse().expect("valid address");
        config.admin_listen = "127.0.0.1:0".parse().expect("valid address");
        config
    }

    /// Reads the fault knobs from `KILT_BANK_*` (see [`ENV_PREFIX`]).
    pub fn faults_from_env(mut self) -> Result<Config> {
        self.faults = faults_from_env(ENV_PREFIX, self.faults).map_err(BankError::InvalidInput)?;
        Ok(self)
    }
}

/// A running bank.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// The bank behind the server.
    pub fn bank(&self) -> &Arc<Bank> {
        &self.state.bank
    }

    /// Stops and waits for the tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn bind_error(addr: SocketAddr, flag: &str, e: std::io::Error) -> BankError {
    BankError::InvalidInput(format!("cannot listen on {addr}: {e}; pick another {flag}"))
}

/// Starts the bank and serves until [`Server::shutdown`].
pub async fn serve(mut config: Config) -> Result<Server> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| bind_error(config.listen, "--listen", e))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| bind_error(config.admin_listen, "--admin-listen", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BankError::Internal(e.to_string()))?;
    let admin_addr = admin
        .local_addr()
        .map_err(|e| BankError::Internal(e.to_string()))?;
    config.settings.crl_url = format!("https://{addr}/crl/bank.crl");
    let (dir, settings) = (config.data_dir.clone(), config.settings.clone());
    let bank = tokio::task::spawn_blocking(move || Bank::open(&dir, settings))
        .await
        .map_err(|e| BankError::Internal(e.to_string()))??;
    let steer = kilt_mock_server::steer::Steer::new(
        bank.pki().root_pem(),
        config.faults,
        bank.approval().clone(),
    );
    log_faults(ENV_PREFIX, steer.faults());
    let state = AppState {
        bank: Arc::new(bank),
        steer,
    };
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(
        tls_config(state.bank.pki(), ClientAuth::None).map_err(BankError::Pki)?,
    ));
    let (stop, stopped) = watch::channel(false);
    let api_task = tokio::spawn(accept_tls(
        listener,
        tls,
        crate::web::router(state.clone()),
        state.steer.faults.clone(),
        config.timeouts,
        stopped.clone(),
    ));
    let admin_task = spawn_plain(
        admin,
        crate::admin::router(state.clone()),
        config.timeouts,
        stopped.clone(),
    );
    let algorithm = config.settings.algorithm;
    tracing::info!(%addr, %admin_addr, %algorithm, "kilt-bank listening");
    Ok(Server {
        addr,
        admin_addr,
        state,
        stop,
        tasks: vec![api_task, admin_task],
    })
}
