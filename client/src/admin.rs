//! The mock servers' admin listeners (plain HTTP, loopback only), as `kilt demo` and the QA flow
//! scenarios (`kilt-conformance flow`) use them: a fresh token's first certificates, the approval
//! mode, fault knobs, the operator's decisions, revocation.
//!
//! These routes exist on kilt's mock CA and mock bank only; a real bank or CA has none.

use kilt_protocol::ca::{CertKind, Certificate, CsrItem, NewUser, Provision, RevokeRequest};
use kilt_protocol::{Approval, Faults, bank, ca};
use serde::Serialize;

use crate::api::{Api, Retry, http_client, tls_trusting};
use crate::bank::PROFILE_LABEL;
use crate::check::pem_der;
use crate::error::Result;
use crate::token::Token;

/// Which mock server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// The mock CA (Flow 2).
    Ca,
    /// The mock bank (Flow 1).
    Bank,
}

/// Both admin listeners.
#[derive(Clone, Debug)]
pub struct Admin {
    ca: Api,
    bank: Api,
}

/// The example CA user: the demo's, the tests', the flow suite's.
pub const FULL_NAME: &str = "ТЕСТОВ ТЕСТ ТЕСТОВИЧ";
/// Their IIN.
pub const IIN: &str = "880101300123";
/// The example bank subscriber (as in seed 000).
pub const SUBSCRIBER: &str = "9418_Абонент";

/// Who a token's first certificates are for.
#[derive(Clone, Debug, Serialize)]
pub struct Identity {
    /// The CA login (created by [`provision`]).
    pub login: String,
    /// Full name, the CA certificates' CN.
    pub full_name: String,
    /// 12-digit IIN, the CA certificates' serialNumber.
    pub iin: String,
    /// The bank subscriber, the bank certificate's CN.
    pub subscriber: String,
}

impl Identity {
    /// The example user and subscriber ([`FULL_NAME`], [`IIN`], [`SUBSCRIBER`], login `testov`).
    pub fn example() -> Identity {
        Identity {
            login: "testov".into(),
            full_name: FULL_NAME.into(),
            iin: IIN.into(),
            subscriber: SUBSCRIBER.into(),
        }
    }
}

/// What [`provision`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Provisioned {
    /// The bank profile's identifier.
    pub profile: String,
    /// The CA's AUTH certificate serial.
    pub auth_serial: String,
    /// The CA's SIGN certificate serial.
    pub sign_serial: String,
}

/// The `CKA_ID`s of a provisioned token's first key sets.
pub const FIRST_IDS: [&[u8]; 3] = [b"auth-1", b"sign-1", b"bank-1"];

impl Admin {
    /// The CA's and the bank's admin base URLs (`http://127.0.0.1:PORT`).
    pub fn new(ca_admin: &str, bank_admin: &str) -> Result<Admin> {
        // Loopback listeners: a refused connection is not worth six tries.
        let retry = Retry {
            attempts: 3,
            ..Retry::default()
        };
        let client = http_client(tls_trusting(&[])?, retry);
        Ok(Admin {
            ca: Api::new("CA admin listener", ca_admin, client.clone(), retry),
            bank: Api::new("bank admin listener", bank_admin, client, retry),
        })
    }

    fn api(&self, server: Server) -> &Api {
        match server {
            Server::Ca => &self.ca,
            Server::Bank => &self.bank,
        }
    }

    /// The server's root certificate, DER (to check what it issues).
    pub async fn root(&self, server: Server) -> Result<Vec<u8>> {
        let pem = self
            .api(server)
            .get_bytes("the root certificate", "/admin/root")
            .await?;
        pem_der(&String::from_utf8_lossy(&pem))
    }

    /// Manual approval on or off.
    pub async fn set_approval(&self, server: Server, manual: bool) -> Result<()> {
        let _: Approval = self
            .api(server)
            .put("the approval mode", "/admin/approval", &Approval { manual })
            .await?;
        Ok(())
    }

    /// Sets the fault knobs (all zero: none).
    pub async fn set_faults(&self, server: Server, faults: Faults) -> Result<()> {
        let _: Faults = self
            .api(server)
            .put("the fault knobs", "/admin/faults", &faults)
            .await?;
        Ok(())
    }

    /// The request waiting for the operator: at the CA one that is `new`, at the bank one of
    /// `profile` that is `accepted_by_bank`.
    pub async fn waiting(&self, server: Server, profile: &str) -> Result<Option<u64>> {
        Ok(match server {
            Server::Ca => self
                .ca
                .get::<Vec<ca::Request>>("the requests", "/admin/requests")
                .await?
                .into_iter()
                .find(|r| r.status == ca::RequestStatus::New)
                .map(|r| r.id),
            Server::Bank => self
                .bank
                .get::<Vec<bank::Regeneration>>("the regenerations", "/admin/regenerations")
                .await?
                .into_iter()
                .find(|r| r.profile == profile && r.status == bank::Status::AcceptedByBank)
                .map(|r| r.id),
        })
    }

    /// The operator approves request `id`, or rejects it with `reason`.
    pub async fn decide(&self, server: Server, id: u64, reject: Option<&str>) -> Result<()> {
        let (what, base) = match server {
            Server::Ca => ("the request", "/admin/requests"),
            Server::Bank => ("the regeneration", "/admin/regenerations"),
        };
        let _: serde_json::Value = match reject {
            None => {
                self.api(server)
                    .post(what, &format!("{base}/{id}/approve"), &())
                    .await?
            }
            Some(reason) => {
                self.api(server)
                    .post(
                        what,
                        &format!("{base}/{id}/reject"),
                        &ca::Reject {
                            reason: reason.into(),
                        },
                    )
                    .await?
            }
        };
        Ok(())
    }

    /// Every profile the bank knows, with its status and current certificate (the bank's own
    /// view of its customers).
    pub async fn bank_profiles(&self) -> Result<Vec<kilt_protocol::bank::Profile>> {
        self.bank
            .get("the bank's profiles", "/admin/profiles")
            .await
    }

    /// The CA revokes a certificate (RFC 5280 §5.3.1 reason `key_compromise`).
    pub async fn revoke(&self, serial: &str) -> Result<()> {
        let _: Certificate = self
            .ca
            .post(
                "the certificate",
                &format!("/admin/certificates/{serial}/revoke"),
                &RevokeRequest {
                    reason: Some("key_compromise".into()),
                },
            )
            .await?;
        Ok(())
    }
}

/// A fresh token's first certificates, as a branch would issue them: key pairs `auth-1` and
/// `sign-1` for the CA user (created here) and `bank-1` for a new bank subscriber, certificates
/// ending in `valid_days` (negative: already expired) — 20 puts both inside the seeds' 30-day
/// notice, so both flows have something to renew. The token must be logged in.
pub async fn provision(
    token: &Token,
    admin: &Admin,
    who: &Identity,
    valid_days: i64,
) -> Result<Provisioned> {
    let [auth_id, sign_id, bank_id] = FIRST_IDS;
    let auth = token.generate(auth_id)?;
    let sign = token.generate(sign_id)?;
    let first = token.generate(bank_id)?;
    let _: ca::User = admin
        .ca
        .post(
            "the user",
            "/admin/users",
            &NewUser {
                login: who.login.clone(),
                password: format!("{}-password", who.login),
                full_name: who.full_name.clone(),
                iin: who.iin.clone(),
            },
        )
        .await?;
    // Issued a year minus `valid_days` ago, like a certificate near the end of its term.
    let certs: Vec<Certificate> = admin
        .ca
        .post(
            "the first certificates",
            &format!("/admin/users/{}/certificates", who.login),
            &Provision {
                csrs: vec![
                    CsrItem {
                        kind: CertKind::Auth,
                        csr: crate::ca::csr(&auth, &who.full_name, &who.iin)?,
                    },
                    CsrItem {
                        kind: CertKind::Sign,
                        csr: crate::ca::csr(&sign, &who.full_name, &who.iin)?,
                    },
                ],
                valid_days: Some(valid_days),
                backdate_days: Some((365 - valid_days).max(1)),
            },
        )
        .await?;
    let (mut auth_serial, mut sign_serial) = (String::new(), String::new());
    for c in &certs {
        let (id, serial) = if c.kind == CertKind::Auth {
            (auth_id, &mut auth_serial)
        } else {
            (sign_id, &mut sign_serial)
        };
        token.write_certificate(id, &pem_der(&c.pem)?, &String::from_utf8_lossy(id))?;
        *serial = c.serial.clone();
    }
    let provisioned: bank::Provisioned = admin
        .bank
        .post(
            "the subscriber",
            "/admin/subscribers",
            &bank::NewSubscriber {
                subscriber: who.subscriber.clone(),
                csr: crate::bank::csr(&first, &who.subscriber)?,
                valid_days: Some(valid_days),
            },
        )
        .await?;
    token.write_certificate(
        bank_id,
        &pem_der(&provisioned.certificate)?,
        &format!("{PROFILE_LABEL}{}", provisioned.profile.identifier),
    )?;
    Ok(Provisioned {
        profile: provisioned.profile.identifier,
        auth_serial,
        sign_serial,
    })
}
