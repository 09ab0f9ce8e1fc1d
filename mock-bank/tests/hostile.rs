//! The bank under hostile traffic (issue 14): it asks no TLS client for a certificate, its clock
//! stays within the bound, and the operator form's refusals have the one JSON shape.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A client certificate resolver that only notes whether the server asked for one.
#[derive(Debug, Default)]
struct Asked(AtomicBool);

impl rustls::client::ResolvesClientCert for Asked {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Whether a TLS handshake with `root` trusted, to `url`, brought a CertificateRequest.
async fn asks_for_a_certificate(root: &[u8], url: &str) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(root.to_vec()))
        .unwrap();
    let asked = Arc::new(Asked::default());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_cert_resolver(asked.clone());
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap();
    client.get(url).send().await.unwrap();
    asked.0.load(Ordering::SeqCst)
}

#[tokio::test]
async fn the_bank_asks_no_client_for_a_certificate_and_the_ca_does() {
    let bank = start_with(|_| {}).await;
    let root = bank.server.bank().pki().root_der().to_vec();
    assert!(
        !asks_for_a_certificate(&root, &bank.api("/bank/root.crt")).await,
        "the bank sent a CertificateRequest"
    );
    // The check can tell: the same PKI served with an optional client certificate (the CA's
    // «По сертификату» setting) does ask.
    let tls = kilt_mock_server::http::tls_config(
        bank.server.bank().pki(),
        kilt_mock_server::http::ClientAuth::Optional,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(kilt_mock_server::http::accept_tls(
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        axum_router(),
        Arc::new(std::sync::RwLock::new(kilt_protocol::Faults::default())),
        kilt_mock_server::http::Timeouts::default(),
        stopped,
    ));
    assert!(asks_for_a_certificate(&root, &format!("https://{addr}/")).await);
}

/// A router answering 404 to everything (only the handshake matters here).
fn axum_router() -> axum::Router {
    axum::Router::new()
}

#[tokio::test]
async fn the_bank_clock_stays_within_its_bound_and_refusals_are_json() {
    let bank = start_with(|_| {}).await;
    let admin = reqwest::Client::new();
    let mut statuses = vec![];
    for days in [
        serde_json::json!(36_500),
        serde_json::json!(36_500),
        serde_json::json!(i64::MIN),
        serde_json::json!(i64::MAX),
    ] {
        let resp = admin
            .post(bank.admin("/admin/clock"))
            .json(&serde_json::json!({ "advance_days": days }))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 409, 422, 422]);
    assert_eq!(
        admin
            .get(bank.admin("/admin/clock"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The operator form without a body: 415, as JSON.
    let resp = admin
        .post(bank.admin("/operator/regenerations/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: kilt_protocol::ErrorBody = resp.json().await.unwrap();
    assert_eq!(body.error, "unsupported_media_type");
    // The bank restarts from that data directory.
    let Bank { server, dir, .. } = bank;
    server.shutdown().await;
    let again = kilt_mock_bank::serve(kilt_mock_bank::Config::ephemeral(dir.path()))
        .await
        .unwrap();
    assert_eq!(
        reqwest::get(format!("{}/admin/clock", again.admin_url()))
            .await
            .unwrap()
            .status(),
        200
    );
    again.shutdown().await;
}
