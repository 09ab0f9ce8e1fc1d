//! Listeners: the TLS API/pages listener (login by certificate) and the plain-HTTP admin
//! listener on loopback, like Pebble's management port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kilt_protocol::Faults;
use tokio::net::TcpListener;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ca::{Ca, DEFAULT_SESSION_SECONDS, DEFAULT_VALIDITY_DAYS, Settings};
use crate::error::{CaError, Result};
use axum::extract::FromRef;
pub use kilt_mock_server::http::{
    ApprovalSwitch, ClientAuth, MAX_BODY, PeerChain, TimeoutArgs, Timeouts, accept_tls, clamp,
    fault_layer, faults_from_env, log_faults, spawn_plain, tls_config,
};
pub use kilt_mock_server::steer::Steer;

/// Default API listener (TLS).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default admin listener (plain HTTP, loopback only).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8444";
/// Environment variable: percentage of API requests answered 503 (Pebble's
/// `PEBBLE_WFE_NONCEREJECT` in spirit). Example: `KILT_CA_FAIL_PERCENT=5`. Clamped to 0–100.
pub const ENV_FAIL_PERCENT: &str = "KILT_CA_FAIL_PERCENT";
/// Environment variable: added latency per API request, ms. Example: `KILT_CA_LATENCY_MS=200`.
/// Clamped to 0–60000.
pub const ENV_LATENCY_MS: &str = "KILT_CA_LATENCY_MS";
/// Environment variable: percentage of connections dropped after the TLS handshake.
/// Example: `KILT_CA_DROP_PERCENT=10`. Clamped to 0–100.
pub const ENV_DROP_PERCENT: &str = "KILT_CA_DROP_PERCENT";
/// Environment variable: percentage of POST/PUT requests delivered twice.
/// Example: `KILT_CA_DUPLICATE_PERCENT=10`. Clamped to 0–100.
pub const ENV_DUPLICATE_PERCENT: &str = "KILT_CA_DUPLICATE_PERCENT";

/// How to run the CA.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where `ca.sqlite` and the PKI files live.
    pub data_dir: PathBuf,
    /// API/pages listener (TLS). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Admin listener (plain HTTP). Keep it on loopback.
    pub admin_listen: SocketAddr,
    /// Validity of issued certificates, days.
    pub validity_days: i64,
    /// Issue at once, or wait for the admin's approval.
    pub auto_approve: bool,
    /// Base URL written into certificates' CRL distribution point; default the API listener.
    pub public_url: Option<String>,
    /// Font for the application PDF.
    pub font: PathBuf,
    /// Session lifetime, seconds.
    pub session_seconds: u64,
    /// Fault knobs at start-up (changeable through the admin listener).
    pub faults: Faults,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// How long a login waits after too many wrong passwords.
    pub password_lock: Duration,
}

impl Config {
    /// Defaults for a data directory: the documented ports, 1-year certificates,
    /// auto-approval, no faults.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: DEFAULT_LISTEN.parse().expect("valid address"),
            admin_listen: DEFAULT_ADMIN_LISTEN.parse().expect("valid address"),
            validity_days: DEFAULT_VALIDITY_DAYS,
            auto_approve: true,
            public_url: None,
            font: PathBuf::from(crate::pdf::DEFAULT_FONT),
            session_seconds: DEFAULT_SESSION_SECONDS,
            faults: Faults::default(),
            timeouts: Timeouts::default(),
            password_lock: crate::ca::DEFAULT_PASSWORD_LOCK,
        }
    }

    /// Both listeners on `127.0.0.1:0`, for tests and `kilt demo`.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Config {
        let mut config = Config::new(data_dir);
        config.listen = "127.0.0.1:0".parse().expect("valid address");
        config.admin_listen = "127.0.0.1:0".parse().expect("valid address");
        config
    }

    /// Reads the fault knobs from the environment ([`ENV_FAIL_PERCENT`], [`ENV_LATENCY_MS`],
    /// [`ENV_DROP_PERCENT`], [`ENV_DUPLICATE_PERCENT`]); unset keeps the current value, bad
    /// values are an error.
    pub fn faults_from_env(mut self) -> Result<Config> {
        self.faults = faults_from_env("KILT_CA", self.faults).map_err(CaError::InvalidInput)?;
        Ok(self)
    }
}

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The CA.
    pub ca: Arc<Ca>,
    /// The root, the fault knobs and the approval switch, as the shared admin routes steer them.
    pub steer: Steer,
}

impl FromRef<AppState> for Steer {
    fn from_ref(state: &AppState) -> Steer {
        state.steer.clone()
    }
}

/// A running CA. Dropping it without [`Server::shutdown`] leaves the tasks to the runtime.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// The API listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// The CA behind the server.
    pub fn ca(&self) -> &Arc<Ca> {
        &self.state.ca
    }

    /// Current fault knobs.
    pub fn faults(&self) -> Faults {
        self.state.steer.faults()
    }

    /// Stops accepting, closes open connections and waits for the tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the CA: opens (or creates) its state, binds both listeners, and serves until
/// [`Server::shutdown`].
pub async fn serve(config: Config) -> Result<Server> {
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        CaError::tls(format!(
            "cannot listen on {}: {e}; pick another --listen",
            config.listen
        ))
    })?;
    let admin = TcpListener::bind(config.admin_listen).await.map_err(|e| {
        CaError::tls(format!(
            "cannot listen on {}: {e}; pick another --admin-listen",
            config.admin_listen
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CaError::tls(e.to_string()))?;
    let admin_addr = admin
        .local_addr()
        .map_err(|e| CaError::tls(e.to_string()))?;
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("https://{addr}"));
    let settings = Settings {
        validity_days: config.validity_days,
        auto_approve: config.auto_approve,
        crl_url: format!("{}/crl/issuing.crl", base.trim_end_matches('/')),
        session_seconds: config.session_seconds,
        font: config.font.clone(),
        password_lock: config.password_lock,
    };
    if !(1..=36_500).contains(&settings.validity_days) {
        return Err(CaError::InvalidInput(
            "validity must be 1-36500 days".into(),
        ));
    }
    let dir = config.data_dir.clone();
    let ca = tokio::task::spawn_blocking(move || Ca::open(&dir, settings))
        .await
        .map_err(|e| CaError::tls(format!("start-up task failed: {e}")))??;
    let steer = Steer::new(ca.pki().root_pem(), config.faults, ca.approval().clone());
    log_faults("KILT_CA", steer.faults());
    let state = AppState {
        ca: Arc::new(ca),
        steer,
    };
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(
        state.ca.pki(),
        ClientAuth::Optional,
    )?));
    let (stop, stopped) = watch::channel(false);

    let api = crate::web::router(state.clone());
    let api_task = tokio::spawn(accept_tls(
        listener,
        tls,
        api,
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
    tracing::info!(%addr, %admin_addr, "kilt-ca listening");
    Ok(Server {
        addr,
        admin_addr,
        state,
        stop,
        tasks: vec![api_task, admin_task],
    })
}
