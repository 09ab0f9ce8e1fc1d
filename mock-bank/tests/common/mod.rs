//! Fixtures for the bank's tests: a bank on `127.0.0.1:0`, clients that trust it, and the
//! customer's side of every step, generic over where the key lives (software or token).
#![allow(dead_code)]

use std::sync::Arc;

use kilt_mock_bank::{Config, Server, serve};
use kilt_protocol::bank::{
    Login, Profile, Regeneration, Session, activation_message, login_message,
};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, SigningKey,
};
use rustls_pki_types::CertificateDer;

pub const SUBSCRIBER: &str = "9418_Абонент";

/// What a customer sees through a whole regeneration, in order (DESIGN.md's table).
pub const EVERY_STATUS: [kilt_protocol::bank::Status; 5] = {
    use kilt_protocol::bank::Status::*;
    [
        RegenerationRequired,
        New,
        AcceptedByBank,
        NewCertificateReceived,
        InOperation,
    ]
};

pub struct Bank {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Bank {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral(dir.path());
    config.settings.processing_seconds = 0;
    tune(&mut config);
    let server = serve(config).await.unwrap();
    let client = client(server.bank().pki().root_der());
    Bank {
        server,
        dir,
        client,
    }
}

pub fn client(root: &[u8]) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(root.to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

/// The customer's key, wherever it lives: what the bank's steps need of it.
pub trait Customer {
    /// A PKCS#10 request naming `cn`, PEM.
    fn csr(&self, cn: &str) -> String;
    /// A signature over `message` as the bank takes it, hex.
    fn sign(&self, message: &[u8]) -> String;
}

/// P-256 keys: in software (rcgen) or in a token behind rcgen's remote-key trait.
impl<K: SigningKey> Customer for K {
    fn csr(&self, cn: &str) -> String {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.serialize_request(self).unwrap().pem().unwrap()
    }

    fn sign(&self, message: &[u8]) -> String {
        hex::encode(SigningKey::sign(self, message).unwrap())
    }
}

/// A GOST key in software, signing as the national CA's certificates are signed.
pub struct Gost(pub kilt_mock_server::gost_ca::GostKey);

impl Customer for Gost {
    fn csr(&self, cn: &str) -> String {
        let der = self
            .0
            .request(&kilt_mock_server::gost_ca::Subject::Named(cn))
            .unwrap();
        kilt_mock_server::pki::pem_of("CERTIFICATE REQUEST", &der)
    }

    fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message).unwrap())
    }
}

pub fn csr(key: &impl Customer, cn: &str) -> String {
    key.csr(cn)
}

pub fn der(pem: &str) -> Vec<u8> {
    ::pem::parse(pem).unwrap().contents().to_vec()
}

pub fn sign(key: &impl Customer, message: &[u8]) -> String {
    key.sign(message)
}

impl Bank {
    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.server.admin_url())
    }

    /// A subscriber whose first certificate is for `key`; returns its profile.
    pub async fn subscriber(&self, key: &impl Customer, valid_days: i64) -> Profile {
        let resp = reqwest::Client::new()
            .post(self.admin("/admin/subscribers"))
            .json(&serde_json::json!({"subscriber": SUBSCRIBER, "csr": csr(key, SUBSCRIBER), "valid_days": valid_days}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json::<kilt_protocol::bank::Provisioned>()
            .await
            .unwrap()
            .profile
    }

    /// The profile's current certificate (PEM), from "Параметры подписи" after a login — or
    /// from the snapshot before any login.
    pub fn current_certificate(&self, profile: &str) -> String {
        self.server
            .bank()
            .signature_params(profile)
            .unwrap()
            .certificate
    }

    /// The login request for `profile` with a fresh challenge signed by `key`.
    pub async fn login_body(&self, profile: &str, cert_pem: &str, key: &impl Customer) -> Login {
        let challenge: serde_json::Value = self
            .client
            .post(self.api("/api/v1/challenge"))
            .json(&serde_json::json!({"profile": profile}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let challenge = challenge["challenge"].as_str().unwrap().to_owned();
        Login {
            profile: profile.into(),
            signature: sign(key, &login_message(&challenge)),
            challenge,
            certificate: cert_pem.into(),
        }
    }

    pub async fn login(&self, profile: &str, cert_pem: &str, key: &impl Customer) -> Session {
        let body = self.login_body(profile, cert_pem, key).await;
        let resp = self
            .client
            .post(self.api("/api/v1/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        resp.json().await.unwrap()
    }

    pub async fn get<T: serde::de::DeserializeOwned>(&self, token: &str, path: &str) -> T {
        let resp = self
            .client
            .get(self.api(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "{path}: {}",
            resp.text().await.unwrap()
        );
        resp.json().await.unwrap()
    }

    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.api(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// "Новый": starts a new regeneration of `profile` (`201`, not an open one's `200`).
    pub async fn start(&self, token: &str, profile: &str) -> Regeneration {
        let resp = self
            .post(
                token,
                &format!("/api/v1/profiles/{profile}/regenerations"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        resp.json().await.unwrap()
    }

    pub async fn profile(&self, token: &str) -> Profile {
        let mut profiles: Vec<Profile> = self.get(token, "/api/v1/profiles").await;
        profiles.remove(0)
    }

    /// Every customer step of seed 000 after login, with the new key; returns the statuses the
    /// customer saw, in order, and the final regeneration.
    pub async fn regenerate(
        &self,
        token: &str,
        profile: &str,
        old: &impl Customer,
        new: &impl Customer,
    ) -> (Vec<kilt_protocol::bank::Status>, Regeneration, String) {
        let mut seen = vec![self.profile(token).await.status];
        let r = self.start(token, profile).await;
        assert!(r.description.contains("Отправить документ в банк"));
        seen.push(self.profile(token).await.status);
        let csr = csr(new, SUBSCRIBER);
        let body = serde_json::json!({"csr": csr, "signature": sign(old, &der(&csr))});
        let resp = self
            .post(
                token,
                &format!("/api/v1/regenerations/{}/submit", r.id),
                body,
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let r: Regeneration = resp.json().await.unwrap();
        seen.push(r.status);
        // Poll like the seed's page refresh until the bank has processed the request.
        let mut r = r;
        for _ in 0..200 {
            r = self
                .get(token, &format!("/api/v1/regenerations/{}", r.id))
                .await;
            if r.status != kilt_protocol::bank::Status::AcceptedByBank {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        seen.push(self.profile(token).await.status);
        let issued: kilt_protocol::bank::IssuedCertificate = self
            .get(
                token,
                &format!("/api/v1/regenerations/{}/certificate", r.id),
            )
            .await;
        let serial = r.new_serial.clone().unwrap();
        let body = serde_json::json!({"signature": sign(new, &activation_message(r.id, &serial))});
        let resp = self
            .post(
                token,
                &format!("/api/v1/regenerations/{}/activate", r.id),
                body,
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let r: Regeneration = resp.json().await.unwrap();
        seen.push(r.status);
        (seen, r, issued.certificate)
    }
}
