//! Flow 2 (DESIGN.md, seed 004): reissue of the AUTH and SIGN certificates at the CA.
//!
//! Login "По сертификату" (mutual TLS, the handshake signed in the token) with the newest valid
//! authentication certificate → "Запрос на выпуск сертификата" with device JaCarta: two new key
//! pairs in the token, their CSRs → certificates checked and written to the token → the
//! application ("Заявление") saved as PDF → the old key sets deleted. Resumable by journal.

use std::path::PathBuf;
use std::sync::Arc;

use kilt_protocol::Lang;
use kilt_protocol::ca::{
    CertKind, Certificate, CsrItem, Device, IssueRequest, Request, RequestStatus, Session,
};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Api, http_client};
use crate::check::{Usage, issued, pem_der};
use crate::error::{ClientError, Result};
use crate::flow::{FlowSettings, announce_resume};
use crate::journal::Journal;
use crate::keys::confirm_and_delete;
use crate::out::Out;
use crate::p11::{TokenKey, tls_client_config};
use crate::token::{KeySet, Token, new_id, show_id};

/// How to reach the CA and where the application goes.
#[derive(Clone, Debug)]
pub struct CaOptions {
    /// The CA's URL and root, journal, retries, polling, deletion.
    pub flow: FlowSettings,
    /// Where to save the application PDF (a folder or a file name).
    pub application: PathBuf,
}

/// Where a CA reissue stands (the journal's content).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaJournal {
    /// `CKA_ID` of the authentication key set used to log in (hex).
    #[serde(with = "hex")]
    pub old_auth: Vec<u8>,
    /// `CKA_ID` of the old signing key set, if the token holds it (hex, may be empty).
    #[serde(with = "hex")]
    pub old_sign: Vec<u8>,
    /// New AUTH key set, chosen before generation (hex).
    #[serde(with = "hex")]
    pub new_auth: Vec<u8>,
    /// New SIGN key set, chosen before generation (hex).
    #[serde(with = "hex")]
    pub new_sign: Vec<u8>,
    /// The certificates' subject: CN.
    pub full_name: String,
    /// The certificates' subject: IIN.
    pub iin: String,
    /// The step reached.
    pub step: CaStep,
    /// The request's number at the CA, once answered.
    pub request: Option<u64>,
}

/// Steps of Flow 2, in order.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum CaStep {
    /// The key sets are chosen.
    Planned,
    /// Both new key pairs are in the token.
    KeysGenerated,
    /// The CA has the request.
    Submitted,
    /// Both certificates are on the token.
    CertificatesWritten,
}

/// What a finished reissue produced.
#[derive(Clone, Debug, Serialize)]
pub struct CaOutcome {
    /// The CA's request number.
    pub request: u64,
    /// The new certificates: kind, serial, end.
    pub certificates: Vec<(CertKind, String, String)>,
    /// Where the application was saved.
    pub application: PathBuf,
    /// The old key sets, and whether they were deleted.
    pub old_deleted: Vec<(String, bool)>,
    /// Whether this run resumed an interrupted one.
    pub resumed: bool,
}

/// A PKCS#10 request for `key` with CN = `name` and serialNumber = `IIN…`, signed in the token.
pub fn csr(key: &TokenKey, name: &str, iin: &str) -> Result<String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    // X.520 serialNumber (2.5.4.5) = "IIN" + 12 digits, as the national CA's certificates.
    let serial = format!("IIN{iin}");
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString(
            serial
                .as_str()
                .try_into()
                .map_err(|_| ClientError::Csr(format!("IIN {iin:?} is not printable")))?,
        ),
    );
    params.distinguished_name = dn;
    params
        .serialize_request(key)
        .and_then(|c| c.pem())
        .map_err(|e| ClientError::Csr(e.to_string()))
}

/// An API client that logs in with `set`'s certificate and key.
async fn login(token: &Token, set: &KeySet, opts: &CaOptions) -> Result<(Api, Session)> {
    let cert = set
        .certificate
        .as_ref()
        .ok_or_else(|| ClientError::NoKeySet("the key set has no certificate".into()))?;
    let key = Arc::new(token.key(&set.id_bytes)?);
    let tls = tls_client_config(
        std::slice::from_ref(&opts.flow.root),
        vec![cert.der.clone()],
        key,
    )
    .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
    let mut api = Api::new(
        "CA",
        &opts.flow.url,
        http_client(tls, opts.flow.retry),
        opts.flow.retry,
    );
    let session: Session = api
        .post(
            "the login by certificate",
            "/api/v1/login/certificate",
            &json!({}),
        )
        .await?;
    api.set_bearer(session.token.clone());
    Ok((api, session))
}

/// Runs (or resumes) Flow 2 on a logged-in token.
pub async fn reissue(token: &mut Token, opts: &CaOptions, out: &Out) -> Result<CaOutcome> {
    let journal = Journal::new(&opts.flow.state_dir, &token.info().serial, "ca");
    let sets = token.key_sets()?;
    let loaded = journal.load::<CaJournal>()?;
    let resumed = loaded.is_some();
    let (mut state, api) = match loaded {
        Some(j) => {
            announce_resume(
                out,
                &journal,
                [
                    "прерванный перевыпуск",
                    "Үзілген қайта шығаруды",
                    "interrupted reissue",
                ],
                &j.step,
            );
            let id = if j.step >= CaStep::CertificatesWritten {
                &j.new_auth
            } else {
                &j.old_auth
            };
            let set = sets.iter().find(|s| s.id_bytes == *id).ok_or_else(|| {
                ClientError::NoKeySet(format!(
                    "key set {} of the reissue in {} is gone from the token; move the journal away to start over",
                    show_id(id),
                    journal.path().display()
                ))
            })?;
            let (api, _) = login(token, set, opts).await?;
            (j, api)
        }
        None => {
            let (state, api) = plan(token, &sets, opts, out).await?;
            // Logged in (shown), nothing asked of the CA yet: the last moment to stop cleanly.
            token.ensure_can_generate()?;
            journal.save(&state)?;
            (state, api)
        }
    };

    // Step 4: two new key pairs, each generated once.
    if state.step < CaStep::KeysGenerated {
        for id in [&state.new_auth, &state.new_sign] {
            if !token.has_key(id)? {
                token.generate(id)?;
            }
        }
        state.step = CaStep::KeysGenerated;
        journal.save(&state)?;
        out.step(
            "keys_generated",
            &out.words(
                &format!(
                    "Новые ключи созданы на токене: {} (AUTH), {} (SIGN)",
                    show_id(&state.new_auth),
                    show_id(&state.new_sign)
                ),
                &format!(
                    "Жаңа кілттер токенде жасалды: {} (AUTH), {} (SIGN)",
                    show_id(&state.new_auth),
                    show_id(&state.new_sign)
                ),
                &format!(
                    "New keys generated on the token: {} (AUTH), {} (SIGN)",
                    show_id(&state.new_auth),
                    show_id(&state.new_sign)
                ),
            ),
            json!({"auth": show_id(&state.new_auth), "sign": show_id(&state.new_sign)}),
        );
    }
    let new_auth = token.key(&state.new_auth)?;
    let new_sign = token.key(&state.new_sign)?;

    // "Запрос на выпуск сертификата", device JaCarta.
    let mut request = match state.request {
        Some(id) => {
            api.get("the request", &format!("/api/v1/requests/{id}"))
                .await?
        }
        None => submit(&api, &state, &new_auth, &new_sign, out).await?,
    };
    if state.step < CaStep::Submitted {
        state.request = Some(request.id);
        state.step = CaStep::Submitted;
        journal.save(&state)?;
    }
    let pending = |r: &Request| matches!(r.status, RequestStatus::New | RequestStatus::Approved);
    if pending(&request) {
        let bar = out.spinner(&out.words(
            "Ожидание рассмотрения запроса в УЦ…",
            "КО сұранысты қарауын күту…",
            "Waiting for the CA to process the request…",
        ));
        let path = format!("/api/v1/requests/{}", request.id);
        request = api
            .poll_while(
                "the request",
                &path,
                request,
                pending,
                |r| format!("request {} is still \"{}\"", r.id, r.status.label(out.lang)),
                opts.flow.poll_every,
                opts.flow.poll_for,
                bar,
            )
            .await?;
    }
    out.step(
        "request_status",
        &out.words(
            &format!(
                "Запрос № {}: {}",
                request.id,
                request.status.label(Lang::Ru)
            ),
            &format!(
                "Сұраныс № {}: {}",
                request.id,
                request.status.label(Lang::Kk)
            ),
            &format!(
                "Request No. {}: {}",
                request.id,
                request.status.label(Lang::En)
            ),
        ),
        json!({"request": request.id, "status": request.status}),
    );
    if request.status == RequestStatus::Rejected {
        for id in [&state.new_auth, &state.new_sign] {
            token.delete_set(id)?;
        }
        journal.finish()?;
        return Err(ClientError::Rejected(
            request.reason.unwrap_or_else(|| "no reason given".into()),
        ));
    }

    // Certificates checked against the new keys and the CA's root, then written.
    let mut certificates = vec![];
    for (kind, key) in [(CertKind::Auth, &new_auth), (CertKind::Sign, &new_sign)] {
        let cert = request
            .certificates
            .iter()
            .find(|c| c.kind == kind)
            .ok_or_else(|| {
                ClientError::BadCertificate(format!("the CA issued no {} certificate", kind.code()))
            })?;
        let der = pem_der(&cert.pem)?;
        let usage = if kind == CertKind::Auth {
            Usage::ClientAuth
        } else {
            Usage::Signing
        };
        let info = issued(
            &der,
            &request.chain,
            &opts.flow.root,
            key.public_point(),
            usage,
        )?;
        if state.step < CaStep::CertificatesWritten {
            token.write_certificate(key.id(), &der, &show_id(key.id()))?;
        }
        certificates.push((kind, info.serial.clone(), info.not_after.clone()));
        out.step(
            "certificate_written",
            &out.words(
                &format!(
                    "Сертификат {} {} записан на токен (до {})",
                    kind.label(Lang::Ru),
                    info.serial,
                    info.not_after
                ),
                &format!(
                    "{} сертификаты {} токенге жазылды ({} дейін)",
                    kind.label(Lang::Kk),
                    info.serial,
                    info.not_after
                ),
                &format!(
                    "{} certificate {} written to the token (until {})",
                    kind.label(Lang::En),
                    info.serial,
                    info.not_after
                ),
            ),
            json!({"kind": kind, "serial": info.serial, "not_after": info.not_after}),
        );
    }
    if state.step < CaStep::CertificatesWritten {
        state.step = CaStep::CertificatesWritten;
        journal.save(&state)?;
    }

    // Step 5: the application, saved where the user said.
    let pdf = api
        .get_bytes(
            "the application",
            &format!(
                "/api/v1/requests/{}/application.pdf?lang={}",
                request.id,
                out.lang.code()
            ),
        )
        .await?;
    let path = if opts.application.is_dir() {
        opts.application
            .join(format!("zayavlenie-{}.pdf", request.id))
    } else {
        opts.application.clone()
    };
    std::fs::write(&path, &pdf).map_err(|e| ClientError::File {
        path: path.display().to_string(),
        reason: format!("cannot save the application: {e}"),
    })?;
    out.step(
        "application_saved",
        &out.words(
            &format!("Заявление сохранено: {}", path.display()),
            &format!("Өтініш сақталды: {}", path.display()),
            &format!("Application saved: {}", path.display()),
        ),
        json!({"path": path, "bytes": pdf.len()}),
    );

    // Step 6: the old key sets go, now that their replacements are on the token.
    let mut old_deleted = vec![];
    for id in [&state.old_auth, &state.old_sign] {
        if id.is_empty() {
            continue;
        }
        let deleted = if token.has_key(id)? {
            confirm_and_delete(token, id, &opts.flow.confirm, out)?
        } else {
            true
        };
        let shown = show_id(id);
        out.step(
            if deleted { "old_deleted" } else { "old_kept" },
            &if deleted {
                out.words(
                    &format!("Старый ключ {shown} удалён"),
                    &format!("Ескі кілт {shown} жойылды"),
                    &format!("Old key {shown} deleted"),
                )
            } else {
                out.words(
                    &format!(
                        "Старый ключ {shown} оставлен; удалить: kilt keys delete --id {shown}"
                    ),
                    &format!("Ескі кілт {shown} қалдырылды; жою: kilt keys delete --id {shown}"),
                    &format!(
                        "Old key {shown} kept; delete it later with kilt keys delete --id {shown}"
                    ),
                )
            },
            json!({"id": shown}),
        );
        old_deleted.push((shown, deleted));
    }
    journal.finish()?;
    Ok(CaOutcome {
        request: request.id,
        certificates,
        application: path,
        old_deleted,
        resumed,
    })
}

/// Sends the request; a repeat after a lost answer finds the CA's earlier request instead of
/// making a second one — by the keys it lists, waiting or issued (the CA also answers `409`
/// to a key that is certified or already waits).
async fn submit(
    api: &Api,
    state: &CaJournal,
    auth: &TokenKey,
    sign: &TokenKey,
    out: &Out,
) -> Result<Request> {
    if let Some(r) = find_request(api, auth.public_point()).await? {
        return Ok(r);
    }
    out.step(
        "request",
        &out.words(
            "Запрос на выпуск сертификата: устройство JaCarta",
            "Сертификат шығаруға сұраныс: құрылғы JaCarta",
            "Certificate request: device JaCarta",
        ),
        json!({"device": Device::JaCarta.name()}),
    );
    let body = IssueRequest {
        device: Device::JaCarta,
        csrs: vec![
            CsrItem {
                kind: CertKind::Auth,
                csr: csr(auth, &state.full_name, &state.iin)?,
            },
            CsrItem {
                kind: CertKind::Sign,
                csr: csr(sign, &state.full_name, &state.iin)?,
            },
        ],
    };
    match api
        .post("the certificate request", "/api/v1/requests", &body)
        .await
    {
        Err(ClientError::Refused { status: 409, .. }) => find_request(api, auth.public_point())
            .await?
            .ok_or_else(|| ClientError::Refused {
                server: "CA",
                what: "the certificate request",
                status: 409,
                message:
                    "the new key is already certified or requested, but no request of this user holds it"
                        .into(),
            }),
        other => other,
    }
}

/// The user's request for the key `point` — by the keys it asked for (before the decision),
/// or by its issued certificates — if any.
async fn find_request(api: &Api, point: &[u8]) -> Result<Option<Request>> {
    let requests: Vec<Request> = api.get("the requests", "/api/v1/requests").await?;
    let wanted = hex::encode(point);
    Ok(requests.into_iter().find(|r| {
        r.public_keys
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&wanted))
            || r.certificates.iter().any(|c: &Certificate| {
                pem_der(&c.pem)
                    .ok()
                    .and_then(|d| crate::token::CertInfo::parse(&d))
                    .is_some_and(|i| i.point == point)
            })
    }))
}

/// Login with the newest valid AUTH certificate the CA accepts; the old SIGN key set found by
/// the CA's list of this user's certificates; the new IDs chosen.
async fn plan(
    token: &Token,
    sets: &[KeySet],
    opts: &CaOptions,
    out: &Out,
) -> Result<(CaJournal, Api)> {
    let mut refusals = vec![];
    let mut expired = None;
    for set in sets {
        let Some(cert) = &set.certificate else {
            continue;
        };
        if !cert.client_auth {
            continue;
        }
        if cert.days_left < 0 {
            expired.get_or_insert_with(|| cert.clone());
            continue;
        }
        let (api, session) = match login(token, set, opts).await {
            Ok(x) => x,
            Err(ClientError::Refused {
                status: 403,
                message,
                ..
            }) => {
                refusals.push(format!("{}: {message}", cert.serial));
                continue;
            }
            Err(e) => return Err(e),
        };
        out.step(
            "login",
            &out.words(
                &format!(
                    "Вход «По сертификату»: {} (ИИН {}), сертификат {} до {} (осталось дней: {})",
                    session.user.full_name, session.user.iin, cert.serial, cert.not_after, cert.days_left
                ),
                &format!(
                    "«Сертификат бойынша» кіру: {} (ЖСН {}), сертификат {} {} дейін (қалған күн: {})",
                    session.user.full_name, session.user.iin, cert.serial, cert.not_after, cert.days_left
                ),
                &format!(
                    "Login by certificate: {} (IIN {}), certificate {} until {} ({} days left)",
                    session.user.full_name, session.user.iin, cert.serial, cert.not_after, cert.days_left
                ),
            ),
            json!({"user": session.user.login, "serial": cert.serial, "days_left": cert.days_left}),
        );
        let listed: Vec<Certificate> = api.get("the certificates", "/api/v1/certificates").await?;
        let old_sign = sets
            .iter()
            .find(|s| {
                s.certificate.as_ref().is_some_and(|c| {
                    listed
                        .iter()
                        .any(|l| l.kind == CertKind::Sign && l.serial == c.serial)
                })
            })
            .map(|s| s.id_bytes.clone())
            .unwrap_or_default();
        let state = CaJournal {
            old_auth: set.id_bytes.clone(),
            old_sign,
            new_auth: new_id("auth").into_bytes(),
            new_sign: new_id("sign").into_bytes(),
            full_name: session.user.full_name,
            iin: session.user.iin,
            step: CaStep::Planned,
            request: None,
        };
        return Ok((state, api));
    }
    if let Some(c) = expired.filter(|_| refusals.is_empty()) {
        return Err(ClientError::Expired {
            serial: c.serial,
            not_after: c.not_after,
            issuer: "CA",
        });
    }
    Err(ClientError::NoKeySet(if refusals.is_empty() {
        "the token holds no valid authentication certificate; get the first certificates at the CA with login and password".into()
    } else {
        format!(
            "the CA at {} refused every authentication certificate on the token: {}",
            opts.flow.url,
            refusals.join("; ")
        )
    }))
}
