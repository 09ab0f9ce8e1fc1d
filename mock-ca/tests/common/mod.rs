//! Fixtures for the CA's tests: a CA on `127.0.0.1:0` in a temporary directory, HTTP clients
//! that trust its root (with or without a client certificate), CSRs from software keys.
#![allow(dead_code)]

use std::sync::Arc;

use kilt_mock_ca::{Config, Server, serve};
use kilt_protocol::ca::{CertKind, Certificate, CsrItem, NewUser, Provision};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub const LOGIN: &str = "testov";
pub const PASSWORD: &str = "пароль-123";
pub const NAME: &str = "ТЕСТОВ ТЕСТ ТЕСТОВИЧ";
pub const IIN: &str = "880101300123";

pub struct Ca {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

pub async fn start() -> Ca {
    start_with(|_| {}).await
}

pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Ca {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral(dir.path());
    tune(&mut config);
    Ca {
        server: serve(config).await.unwrap(),
        dir,
    }
}

fn der_of_pem(pem: &str) -> Vec<u8> {
    ::pem::parse(pem).unwrap().contents().to_vec()
}

impl Ca {
    pub fn root_der(&self) -> Vec<u8> {
        self.server.ca().pki().root_der().to_vec()
    }

    /// A client that trusts the CA and shows no client certificate.
    pub fn anonymous(&self) -> reqwest::Client {
        client(&self.root_der(), None)
    }

    /// A client that logs in with this certificate (PEM) and software key.
    pub fn with_cert(&self, cert_pem: &str, key: &KeyPair) -> reqwest::Client {
        client(
            &self.root_der(),
            Some((vec![der_of_pem(cert_pem)], key.serialize_der())),
        )
    }

    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.server.admin_url())
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// Creates the test user through the admin listener.
    pub async fn create_user(&self) {
        let resp = reqwest::Client::new()
            .post(self.admin("/admin/users"))
            .json(&NewUser {
                login: LOGIN.into(),
                password: PASSWORD.into(),
                full_name: NAME.into(),
                iin: IIN.into(),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }

    /// Issues first certificates for the test user, one per (kind, key).
    pub async fn provision(
        &self,
        keys: &[(CertKind, &KeyPair)],
        valid_days: Option<i64>,
    ) -> Vec<Certificate> {
        let csrs = keys
            .iter()
            .map(|(kind, key)| CsrItem {
                kind: *kind,
                csr: csr(key, NAME, IIN),
            })
            .collect();
        let resp = reqwest::Client::new()
            .post(self.admin(&format!("/admin/users/{LOGIN}/certificates")))
            .json(&Provision {
                csrs,
                valid_days,
                backdate_days: None,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    /// Logs in by password; the bearer token.
    pub async fn password_login(&self) -> String {
        let resp = self
            .anonymous()
            .post(self.api("/api/v1/login/password"))
            .json(&serde_json::json!({"login": LOGIN, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

pub fn client(root: &[u8], identity: Option<(Vec<Vec<u8>>, Vec<u8>)>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(root.to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(
                chain.into_iter().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .unwrap(),
    };
    // Redirects are checked by the tests themselves (the login form answers 303).
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

/// A PKCS#10 CSR, PEM, for `name` / `iin`, signed by `key`.
pub fn csr(key: &impl rcgen::SigningKey, name: &str, iin: &str) -> String {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString(format!("IIN{iin}").as_str().try_into().unwrap()),
    );
    params.distinguished_name = dn;
    params.serialize_request(key).unwrap().pem().unwrap()
}

pub fn bearer(req: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
    req.header("Authorization", format!("Bearer {token}"))
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} cannot run ({e}); `make test` installs it"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
