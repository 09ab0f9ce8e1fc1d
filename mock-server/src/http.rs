//! The listeners both servers run: a TLS listener (the API and pages; optional client
//! certificates whose possession is checked) and a plain-HTTP admin listener on loopback, like
//! Pebble's management port; connection timeouts; Pebble-style fault knobs; the approval switch.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use kilt_protocol::Faults;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Result, ServerError};

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// A server's approval mode (`GET`/`PUT /admin/approval`): starts as configured, switched at
/// run time. Shared by the CA and the bank; clones are handles to the same switch (the server's
/// core reads it, the admin route flips it).
#[derive(Clone, Debug)]
pub struct ApprovalSwitch(Arc<std::sync::atomic::AtomicBool>);

impl ApprovalSwitch {
    /// Starts manual (requests wait for the operator) or automatic.
    pub fn new(manual: bool) -> ApprovalSwitch {
        ApprovalSwitch(Arc::new(manual.into()))
    }

    /// The mode now.
    pub fn get(&self) -> kilt_protocol::Approval {
        kilt_protocol::Approval {
            manual: self.0.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Switches it; requests already waiting stay waiting until decided (at the bank, until
    /// the next processing tick in automatic mode).
    pub fn set(&self, approval: kilt_protocol::Approval) {
        self.0
            .store(approval.manual, std::sync::atomic::Ordering::SeqCst);
    }
}
/// How long a client may keep a connection busy without doing its part before the server
/// closes it (stalled handshakes, slow headers, idle keep-alive): both servers, both listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The TLS handshake, from the TCP accept.
    pub handshake: Duration,
    /// A request's headers, and the wait for the next request on a kept-alive connection.
    pub headers: Duration,
}

impl Default for Timeouts {
    /// 10 s for the handshake, 30 s for headers and idle keep-alive (hyper's default).
    fn default() -> Timeouts {
        Timeouts {
            handshake: Duration::from_secs(10),
            headers: Duration::from_secs(30),
        }
    }
}

/// The command-line flags of [`Timeouts`], shared by `kilt-ca serve` and `kilt-bank serve`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct TimeoutArgs {
    /// Close a connection whose TLS handshake takes longer (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub handshake_timeout: u64,
    /// Close a connection whose request headers, or next request on a kept-alive connection,
    /// take longer (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
}

impl TimeoutArgs {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            handshake: Duration::from_secs(self.handshake_timeout),
            headers: Duration::from_secs(self.header_timeout),
        }
    }
}

/// Reads `{prefix}_FAIL_PERCENT`, `_LATENCY_MS`, `_DROP_PERCENT` and `_DUPLICATE_PERCENT` over
/// `faults`, clamped; an unparsable value is an error naming the variable.
pub fn faults_from_env(prefix: &str, mut faults: Faults) -> std::result::Result<Faults, String> {
    let read = |suffix: &str| -> std::result::Result<Option<u64>, String> {
        let name = format!("{prefix}_{suffix}");
        match std::env::var(&name) {
            Err(_) => Ok(None),
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{name}={v:?} is not a whole number; e.g. {name}=5")),
        }
    };
    let percent = |v: u64| v.min(100) as u8;
    if let Some(v) = read("FAIL_PERCENT")? {
        faults.fail_percent = percent(v);
    }
    if let Some(v) = read("LATENCY_MS")? {
        faults.latency_ms = v.min(60_000);
    }
    if let Some(v) = read("DROP_PERCENT")? {
        faults.drop_percent = percent(v);
    }
    if let Some(v) = read("DUPLICATE_PERCENT")? {
        faults.duplicate_percent = percent(v);
    }
    Ok(faults)
}

/// Logs each fault knob at start-up, as Pebble does, so a surprising 503 is explained.
pub fn log_faults(prefix: &str, faults: Faults) {
    tracing::info!(
        "{prefix}_FAIL_PERCENT={}: API requests answered 503",
        faults.fail_percent
    );
    tracing::info!(
        "{prefix}_LATENCY_MS={}: latency added per API request",
        faults.latency_ms
    );
    tracing::info!(
        "{prefix}_DROP_PERCENT={}: connections dropped after the handshake",
        faults.drop_percent
    );
    tracing::info!(
        "{prefix}_DUPLICATE_PERCENT={}: POST/PUT delivered twice",
        faults.duplicate_percent
    );
}

/// Clamps fault knobs to their ranges.
pub fn clamp(faults: Faults) -> Faults {
    Faults {
        fail_percent: faults.fail_percent.min(100),
        latency_ms: faults.latency_ms.min(60_000),
        drop_percent: faults.drop_percent.min(100),
        duplicate_percent: faults.duplicate_percent.min(100),
    }
}

/// Request-level fault knobs as an axum middleware: added latency, then a `503` with
/// `Retry-After: 1` with probability. Put it on the API and pages, never on admin routes.
pub async fn fault_layer(
    axum::extract::State(faults): axum::extract::State<Arc<RwLock<Faults>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let knobs = current(&faults);
    if knobs.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(knobs.latency_ms)).await;
    }
    if roll(knobs.fail_percent) {
        let body = kilt_protocol::ErrorBody {
            error: "fault_injected".into(),
            message: "the server is unavailable (fault injected by the admin); retry later".into(),
        };
        let mut resp = (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(body),
        )
            .into_response();
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return resp;
    }
    next.run(req).await
}

/// True with probability `percent`/100.
pub(crate) fn roll(percent: u8) -> bool {
    if percent == 0 {
        return false;
    }
    let mut b = [0u8; 2];
    aws_lc_rs::rand::fill(&mut b).expect("the system RNG works");
    u16::from_le_bytes(b) % 100 < u16::from(percent)
}

/// The client certificate chain of the TLS connection a request came on (empty if none).
#[derive(Clone, Debug, Default)]
pub struct PeerChain(pub Arc<Vec<Vec<u8>>>);

/// Accepts any client certificate whose handshake signature verifies (proof of possession),
/// and leaves the path validation to the server (the CA's `login_certificate`), which runs it on
/// its own (shiftable) clock and answers with a reason a person can read, instead of a TLS alert.
/// Client certificates are optional, so the password login and the CRL work without one.
#[derive(Debug)]
struct PossessionOnly {
    provider: Arc<CryptoProvider>,
    hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for PossessionOnly {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether a TLS listener asks clients for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// An optional client certificate (the CA's «По сертификату»), possession checked.
    Optional,
    /// No CertificateRequest at all (the bank, whose login is a signed challenge).
    None,
}

/// The TLS server configuration of a listener serving `pki`'s TLS identity; with
/// [`ClientAuth::Optional`] it asks for a client certificate (hinting `pki`'s root) whose
/// possession is checked.
pub fn tls_config(pki: &crate::pki::Pki, auth: ClientAuth) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (_, root) = x509_parser::parse_x509_certificate(pki.root_der())
        .map_err(|e| ServerError::Tls(format!("root does not parse: {e}")))?;
    let (chain, key) = pki.tls_identity();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = match auth {
        ClientAuth::Optional => builder.with_client_cert_verifier(Arc::new(PossessionOnly {
            provider,
            hints: vec![DistinguishedName::from(root.subject().as_raw().to_vec())],
        })),
        ClientAuth::None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(
            chain.into_iter().map(CertificateDer::from).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The HTTP/1 connection settings of every listener: headers (and the wait for the next
/// request) within `timeouts.headers`.
fn http1(timeouts: Timeouts) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeouts.headers);
    b
}

/// Accepts connections on `listener` until `stopped` turns true, each handled by `handle` on a
/// task of its own.
async fn accept_until_stopped<F, Fut>(
    listener: TcpListener,
    mut stopped: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = stopped.wait_for(|s| *s) => return,
        };
        // Without TCP_NODELAY a response written in pieces (TLS handshake flights, headers then
        // body) waits for the client's delayed ACK, ~40 ms on Linux, as nginx's `tcp_nodelay`
        // default avoids; found by `kilt-bench load` (each Flow 1 spent 42 ms on its first
        // request).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        tokio::spawn(handle(tcp, peer));
    }
}

/// Serves one HTTP/1 connection until it ends or the server stops.
async fn serve_connection<I, S, B>(
    io: I,
    service: S,
    timeouts: Timeouts,
    mut stopped: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http1(timeouts).serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::select! {
        result = conn => if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        },
        _ = stopped.wait_for(|s| *s) => {}
    }
}

/// Serves `router` on `listener` over plain HTTP (the admin listeners) until `stopped`
/// turns true, with the same header timeout as the TLS listeners.
pub fn spawn_plain(
    listener: TcpListener,
    router: axum::Router,
    timeouts: Timeouts,
    stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let router = router.layer(axum::middleware::from_fn(crate::error::json_errors));
    let stop = stopped.clone();
    tokio::spawn(accept_until_stopped(listener, stop, move |tcp, peer| {
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                tower::ServiceExt::oneshot(router.clone(), req.map(axum::body::Body::new))
            });
        serve_connection(tcp, service, timeouts, stopped.clone(), peer)
    }))
}

/// Serves `router` on `listener` over TLS until `stopped` turns true. Each request carries the
/// connection's client certificates as a [`PeerChain`] extension. Applies the connection-level
/// fault knobs: dropped connections, and duplicate delivery of POST/PUT requests.
pub async fn accept_tls(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    faults: Arc<RwLock<Faults>>,
    timeouts: Timeouts,
    stopped: watch::Receiver<bool>,
) {
    let router = router.layer(axum::middleware::from_fn(crate::error::json_errors));
    let stop = stopped.clone();
    accept_until_stopped(listener, stop, move |tcp, peer| {
        let (tls, router, faults, stopped) =
            (tls.clone(), router.clone(), faults.clone(), stopped.clone());
        async move {
            let stream = match tokio::time::timeout(timeouts.handshake, tls.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            if roll(current(&faults).drop_percent) {
                tracing::info!(%peer, "fault: dropping the connection");
                return;
            }
            let chain: Vec<Vec<u8>> = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.to_vec()).collect())
                .unwrap_or_default();
            let chain = PeerChain(Arc::new(chain));
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(chain.clone());
                    deliver(router.clone(), faults.clone(), req)
                });
            serve_connection(stream, service, timeouts, stopped, peer).await
        }
    })
    .await
}

fn current(faults: &RwLock<Faults>) -> Faults {
    *faults.read().unwrap_or_else(|p| p.into_inner())
}

/// Hands a request to the router — twice, when the duplicate-delivery knob fires for a POST
/// or PUT, as a network that retries would; the client gets the second answer.
async fn deliver(
    router: axum::Router,
    faults: Arc<RwLock<Faults>>,
    req: axum::extract::Request,
) -> std::result::Result<axum::response::Response, std::convert::Infallible> {
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    let twice = matches!(*req.method(), hyper::Method::POST | hyper::Method::PUT)
        && roll(current(&faults).duplicate_percent);
    if !twice {
        return router.oneshot(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Ok(ServerError::TooLarge(MAX_BODY).into_response());
    };
    let copy = || {
        let mut req = axum::extract::Request::new(axum::body::Body::from(bytes.clone()));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = parts.uri.clone();
        *req.headers_mut() = parts.headers.clone();
        *req.extensions_mut() = parts.extensions.clone();
        req
    };
    tracing::info!(uri = %parts.uri, "fault: delivering the request twice");
    let _first = router.clone().oneshot(copy()).await;
    router.oneshot(copy()).await
}

#[cfg(test)]
mod timeout_tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        timeouts: TimeoutArgs,
    }

    #[test]
    fn the_documented_timeouts_are_the_defaults_and_the_flags_set_them() {
        // README, "Both servers under hostile traffic": 10 s handshake, 30 s headers.
        let documented = Timeouts {
            handshake: Duration::from_secs(10),
            headers: Duration::from_secs(30),
        };
        assert_eq!(Timeouts::default(), documented);
        let none = Flags::try_parse_from(["serve"]).unwrap();
        assert_eq!(none.timeouts.timeouts(), documented);
        let set =
            Flags::try_parse_from(["serve", "--handshake-timeout", "3", "--header-timeout", "7"])
                .unwrap();
        assert_eq!(
            set.timeouts.timeouts(),
            Timeouts {
                handshake: Duration::from_secs(3),
                headers: Duration::from_secs(7),
            }
        );
        assert!(Flags::try_parse_from(["serve", "--header-timeout", "0"]).is_err());
    }
}
