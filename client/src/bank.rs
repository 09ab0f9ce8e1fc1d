//! Flow 1 (DESIGN.md, seed 000): the bank's key-set regeneration.
//!
//! Token and PIN → login by signing the bank's challenge with the current key → "Новый" (a new
//! key pair in the token, its PKCS#10 signed by the new key) → "Отправить документ в банк" +
//! "Подписать" (the request signed by the **old** key) → polling while the bank processes →
//! "Получить сертификат (ключ)" (checked, written next to the new key) → "Продолжить"
//! (activation signed by the **new** key) → the old key set deleted. A journal makes every step
//! resumable.

use kilt_protocol::Lang;
use kilt_protocol::bank::{
    Activate, Challenge, ChallengeRequest, IssuedCertificate, Login, Profile, Regeneration,
    Session, Status, Submit, activation_message, key_identifier, login_message, switched_message,
};
use rcgen::{CertificateParams, DistinguishedName, DnType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Api, http_client, tls_trusting};
use crate::check::{Usage, issued, pem_der};
use crate::error::{ClientError, Result};
use crate::flow::{FlowSettings, announce_resume};
use crate::journal::Journal;
use crate::keys::confirm_and_delete;
use crate::out::Out;
use crate::token::{KeySet, Token, new_id, show_id};

/// Label prefix of certificates the bank flow writes: `bank:<profile identifier>`, so the next
/// regeneration finds its profile (the bank keeps a profile's identifier across key sets).
pub const PROFILE_LABEL: &str = "bank:";

/// How to reach the bank and which profile to renew.
#[derive(Clone, Debug)]
pub struct BankOptions {
    /// The bank's URL and root (trusted for TLS and for the issued certificate), journal,
    /// retries, polling, deletion.
    pub flow: FlowSettings,
    /// A profile identifier, when the token holds several.
    pub profile: Option<String>,
}

/// Where a bank regeneration stands (the journal's content).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BankJournal {
    /// The bank's profile identifier.
    pub profile: String,
    /// "Абонент".
    pub subscriber: String,
    /// `CKA_ID` of the current key set (hex in the file).
    #[serde(with = "hex")]
    pub old_id: Vec<u8>,
    /// `CKA_ID` chosen for the new key set, written down before the key is generated (hex).
    #[serde(with = "hex")]
    pub new_id: Vec<u8>,
    /// The step reached.
    pub step: BankStep,
    /// The regeneration's number at the bank.
    pub regeneration: Option<u64>,
    /// The CSR sent (kept so that a retry sends the same request).
    pub csr: Option<String>,
}

/// Steps of Flow 1, in order.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum BankStep {
    /// The key set to renew and the new `CKA_ID` are chosen.
    Planned,
    /// The new key pair is in the token.
    KeyGenerated,
    /// "Новый" at the bank.
    Started,
    /// The request was accepted by the bank.
    Submitted,
    /// The new certificate is on the token.
    CertificateWritten,
    /// The bank switched the profile to the new key set.
    Activated,
}

/// What a finished regeneration produced.
#[derive(Clone, Debug, Serialize)]
pub struct BankOutcome {
    /// The profile.
    pub profile: String,
    /// The regeneration's number.
    pub regeneration: u64,
    /// The statuses seen, in order.
    pub statuses: Vec<Status>,
    /// The new certificate's serial.
    pub new_serial: String,
    /// The new key set.
    pub new_id: String,
    /// The old key set, and whether it was deleted.
    pub old_id: String,
    /// Whether the old key set was deleted.
    pub old_deleted: bool,
    /// Whether this run resumed an interrupted one.
    pub resumed: bool,
}

/// A PKCS#10 request for `key` with CN = the subscriber, signed in the token.
pub fn csr(key: &crate::p11::TokenKey, cn: &str) -> Result<String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params
        .serialize_request(key)
        .and_then(|c| c.pem())
        .map_err(|e| ClientError::Csr(e.to_string()))
}

/// Candidate profiles of a key set: the one its certificate label names, else its key's.
fn profiles_of(set: &KeySet) -> Vec<String> {
    let Some(c) = &set.certificate else {
        return vec![];
    };
    let mut out = vec![];
    if let Some(p) = c.label.strip_prefix(PROFILE_LABEL) {
        out.push(p.to_owned());
    }
    out.push(key_identifier(&c.point));
    out
}

/// Runs (or resumes) Flow 1 on a logged-in token.
pub async fn regenerate(token: &mut Token, opts: &BankOptions, out: &Out) -> Result<BankOutcome> {
    let lang = out.lang;
    let q = format!("?lang={}", lang.code());
    let mut api = Api::new(
        "bank",
        &opts.flow.url,
        http_client(
            tls_trusting(std::slice::from_ref(&opts.flow.root))?,
            opts.flow.retry,
        ),
        opts.flow.retry,
    );
    let journal = Journal::new(&opts.flow.state_dir, &token.info().serial, "bank");
    let sets = token.key_sets()?;
    let (mut state, resumed) = match journal.load::<BankJournal>()? {
        Some(j) => {
            announce_resume(
                out,
                &journal,
                [
                    "прерванную регенерацию",
                    "Үзілген қайта шығаруды",
                    "interrupted regeneration",
                ],
                &j.step,
            );
            (j, true)
        }
        None => {
            let state = plan(&api, &sets, opts, out).await?;
            token.ensure_can_generate()?;
            (state, false)
        }
    };
    if !resumed {
        journal.save(&state)?;
    }

    // Step 2: login with the key set the bank currently knows. Once the new certificate is on
    // the token the bank may already have switched (a crash right after "Продолжить" loses
    // only the journal's record of it): then the old set is refused as retired, and the new
    // one is the way in.
    let candidates: Vec<&Vec<u8>> = match state.step {
        BankStep::Activated => vec![&state.new_id],
        BankStep::CertificateWritten => vec![&state.old_id, &state.new_id],
        _ => vec![&state.old_id],
    };
    let sets = token.key_sets()?;
    let mut session = None;
    for (i, id) in candidates.iter().enumerate() {
        let set = sets
            .iter()
            .find(|s| s.id_bytes == **id)
            .and_then(|s| s.certificate.as_ref().map(|c| (s.id_bytes.clone(), c)))
            .ok_or_else(|| {
                ClientError::NoKeySet(format!(
                    "key set {} of the regeneration in {} is gone from the token; move the journal away to start over",
                    show_id(id),
                    journal.path().display()
                ))
            })?;
        match login(&api, token, &state.profile, &set.0, &set.1.der).await {
            Err(ClientError::Refused { status: 403, .. }) if i + 1 < candidates.len() => continue,
            other => {
                session = Some(other?);
                break;
            }
        }
    }
    let session =
        session.ok_or_else(|| ClientError::NoKeySet("no key set to log in with".into()))?;
    api.set_bearer(session.token);
    for p in &session.critical {
        out.step(
            "banner",
            &out.words(
                &format!(
                    "У Вас есть абоненты ЭЦП, профили которых имеют критический статус: {} — {} (осталось дней: {})",
                    p.subscriber,
                    p.status.label(Lang::Ru),
                    p.days_left
                ),
                &format!(
                    "Профильдері сыни күйдегі ЭЦҚ абоненттері бар: {} — {} (қалған күн: {})",
                    p.subscriber,
                    p.status.label(Lang::Kk),
                    p.days_left
                ),
                &format!(
                    "You have EDS subscribers whose profiles are critical: {} — {} ({} days left)",
                    p.subscriber,
                    p.status.label(Lang::En),
                    p.days_left
                ),
            ),
            json!({"profile": p.identifier, "status": p.status, "days_left": p.days_left}),
        );
    }
    let mut statuses = vec![];
    let profile = current_profile(&api, &state.profile, &q).await?;
    show_status(out, &profile.status, &mut statuses);

    // Step 3: "Новый" — the new key pair in the token (once), then the regeneration at the bank.
    if state.step < BankStep::KeyGenerated {
        if !token.has_key(&state.new_id)? {
            token.generate(&state.new_id)?;
        }
        state.step = BankStep::KeyGenerated;
        journal.save(&state)?;
        out.step(
            "key_generated",
            &out.words(
                &format!(
                    "Новый комплект ключей создан на токене: {}",
                    show_id(&state.new_id)
                ),
                &format!(
                    "Жаңа кілттер жинағы токенде жасалды: {}",
                    show_id(&state.new_id)
                ),
                &format!(
                    "New key set generated on the token: {}",
                    show_id(&state.new_id)
                ),
            ),
            json!({"id": show_id(&state.new_id)}),
        );
    }
    let new_key = token.key(&state.new_id)?;
    if state.step < BankStep::Started {
        let r: Regeneration = api
            .post(
                "\"Новый\"",
                &format!("/api/v1/profiles/{}/regenerations{q}", state.profile),
                &json!({}),
            )
            .await?;
        state.regeneration = Some(r.id);
        state.step = BankStep::Started;
        journal.save(&state)?;
        show_status(out, &r.status, &mut statuses);
    }
    let id = state.regeneration.unwrap_or_default();

    // Step 4: the request of the new key, signed by the old key.
    if state.step < BankStep::Submitted {
        let csr_pem = match &state.csr {
            Some(c) => c.clone(),
            None => {
                let c = csr(&new_key, &state.subscriber)?;
                state.csr = Some(c.clone());
                journal.save(&state)?;
                c
            }
        };
        let old_key = token.key(&state.old_id)?;
        let signature = hex::encode(old_key.sign(&pem_der(&csr_pem)?)?);
        out.step(
            "submit",
            &out.words(
                "Отправить документ в банк → Подписать (старым ключом)",
                "Құжатты банкке жіберу → Қол қою (ескі кілтпен)",
                "Send the document to the bank → Sign (with the old key)",
            ),
            json!({}),
        );
        let r: Regeneration = api
            .post(
                "the request",
                &format!("/api/v1/regenerations/{id}/submit{q}"),
                &Submit {
                    csr: csr_pem,
                    signature,
                },
            )
            .await?;
        state.step = BankStep::Submitted;
        journal.save(&state)?;
        show_status(out, &r.status, &mut statuses);
    }

    // Step 5: the bank processes; poll like the page's refresh.
    let path = format!("/api/v1/regenerations/{id}{q}");
    let r: Regeneration = api.get("the regeneration", &path).await?;
    let r = if r.status == Status::AcceptedByBank {
        let bar = out.spinner(&out.words(
            "Ожидание обработки запроса банком…",
            "Банктің өңдеуін күту…",
            "Waiting for the bank to process the request…",
        ));
        api.poll_while(
            "the regeneration",
            &path,
            r,
            |r| r.status == Status::AcceptedByBank,
            |r| format!("the request is still \"{}\"", r.status.label(out.lang)),
            opts.flow.poll_every,
            opts.flow.poll_for,
            bar,
        )
        .await?
    } else {
        r
    };
    if r.status == Status::Rejected {
        show_status(out, &r.status, &mut statuses);
        // The new key set has no certificate and never will: remove it, end the journal.
        token.delete_set(&state.new_id)?;
        journal.finish()?;
        return Err(ClientError::Rejected(
            r.reason.unwrap_or_else(|| "no reason given".into()),
        ));
    }

    // Step 6: "Получить сертификат (ключ)", checked, written next to the new key.
    if state.step < BankStep::CertificateWritten {
        show_status(out, &r.status, &mut statuses);
        let cert: IssuedCertificate = api
            .get(
                "the certificate",
                &format!("/api/v1/regenerations/{id}/certificate{q}"),
            )
            .await?;
        let der = pem_der(&cert.certificate)?;
        let info = issued(
            &der,
            &cert.chain,
            &opts.flow.root,
            new_key.public_point(),
            Usage::Signing,
        )?;
        token.write_certificate(
            &state.new_id,
            &der,
            &format!("{PROFILE_LABEL}{}", state.profile),
        )?;
        state.step = BankStep::CertificateWritten;
        journal.save(&state)?;
        out.step(
            "certificate_written",
            &out.words(
                &format!(
                    "Получить сертификат (ключ): сертификат {} записан на токен",
                    info.serial
                ),
                &format!(
                    "Сертификатты алу (кілт): {} сертификаты токенге жазылды",
                    info.serial
                ),
                &format!(
                    "Get the certificate (key): certificate {} written to the token",
                    info.serial
                ),
            ),
            json!({"serial": info.serial, "not_after": info.not_after}),
        );
    }

    // Step 7: "Продолжить" — activation proved by the new key.
    if state.step < BankStep::Activated {
        let serial = r.new_serial.clone().unwrap_or_default();
        let r: Regeneration = api
            .post(
                "the activation",
                &format!("/api/v1/regenerations/{id}/activate{q}"),
                &Activate {
                    signature: hex::encode(new_key.sign(&activation_message(id, &serial))?),
                },
            )
            .await?;
        state.step = BankStep::Activated;
        journal.save(&state)?;
        show_status(out, &r.status, &mut statuses);
        out.step(
            "switched",
            &r.message
                .clone()
                .unwrap_or_else(|| switched_message(lang).to_owned()),
            json!({}),
        );
    }

    // Step 8: the old key set goes — only now, after the bank switched.
    let old = show_id(&state.old_id);
    let new_serial = r.new_serial.clone().unwrap_or_default();
    let deleted = if token.has_key(&state.old_id)? {
        confirm_and_delete(token, &state.old_id, &opts.flow.confirm, out)?
    } else {
        true
    };
    out.step(
        if deleted { "old_deleted" } else { "old_kept" },
        &if deleted {
            out.words(
                &format!("Старый комплект ключей {} удалён", old),
                &format!("Ескі кілттер жинағы {} жойылды", old),
                &format!("Old key set {} deleted", old),
            )
        } else {
            out.words(
                &format!(
                    "Старый комплект ключей {} оставлен; удалить: kilt keys delete --id {}",
                    old, old
                ),
                &format!(
                    "Ескі кілттер жинағы {} қалдырылды; жою: kilt keys delete --id {}",
                    old, old
                ),
                &format!(
                    "Old key set {} kept; delete it later with kilt keys delete --id {}",
                    old, old
                ),
            )
        },
        json!({"id": old}),
    );
    journal.finish()?;
    Ok(BankOutcome {
        profile: state.profile,
        regeneration: id,
        statuses,
        new_serial,
        new_id: show_id(&state.new_id),
        old_id: old,
        old_deleted: deleted,
        resumed,
    })
}

/// Login: the bank's one-time challenge signed by the key set `id` (DESIGN.md Flow 1 step 2).
/// Challenge, signature by the key set's key, login. A challenge is good for one login, so a
/// login whose answer was lost (a timeout, a 5xx, a dropped connection) is not sent again as
/// it is — the bank may have used the challenge up — but retried from a new challenge.
async fn login(api: &Api, token: &Token, profile: &str, id: &[u8], cert: &[u8]) -> Result<Session> {
    let key = token.key(id)?;
    let retry = api.retry();
    let once = api.once();
    let mut delay = retry.first_delay;
    let mut attempt = 1;
    loop {
        let challenge: Challenge = api
            .post(
                "the challenge",
                "/api/v1/challenge",
                &ChallengeRequest {
                    profile: profile.to_owned(),
                },
            )
            .await?;
        let result = once
            .post(
                "the login",
                "/api/v1/login",
                &Login {
                    profile: profile.to_owned(),
                    signature: hex::encode(key.sign(&login_message(&challenge.challenge))?),
                    challenge: challenge.challenge,
                    certificate: pem::encode(&pem::Pem::new("CERTIFICATE", cert.to_vec())),
                },
            )
            .await;
        match result {
            Err(ClientError::Unreachable { .. }) if attempt < retry.attempts => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(retry.max_delay);
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn show_status(out: &Out, status: &Status, seen: &mut Vec<Status>) {
    if seen.last() == Some(status) {
        return;
    }
    seen.push(*status);
    out.step(
        "status",
        &out.words(
            &format!("Статус: {}", status.label(Lang::Ru)),
            &format!("Күйі: {}", status.label(Lang::Kk)),
            &format!("Status: {}", status.label(Lang::En)),
        ),
        json!({"status": status}),
    );
}

async fn current_profile(api: &Api, id: &str, q: &str) -> Result<Profile> {
    let profiles: Vec<Profile> = api
        .get("the profiles", &format!("/api/v1/profiles{q}"))
        .await?;
    profiles
        .into_iter()
        .find(|p| p.identifier == id)
        .ok_or_else(|| ClientError::Malformed {
            server: "bank",
            what: "the profiles",
            reason: format!("profile {id} is missing from the list"),
        })
}

/// Step 1: which key set the bank knows, checked for expiry; the new `CKA_ID` chosen.
async fn plan(api: &Api, sets: &[KeySet], opts: &BankOptions, out: &Out) -> Result<BankJournal> {
    // Key sets kilt cannot sign with: GOST (cryptoki 0.12.1 has no GOST mechanisms; README).
    let mut cannot = vec![];
    for set in sets {
        let Some(cert) = &set.certificate else {
            continue;
        };
        if cert.algorithm != crate::token::P256 {
            cannot.push(format!("{} ({})", set.id, cert.algorithm));
            continue;
        }
        for profile in profiles_of(set) {
            if opts.profile.as_ref().is_some_and(|p| *p != profile) {
                continue;
            }
            let probe: Result<Challenge> = api
                .post(
                    "the challenge",
                    "/api/v1/challenge",
                    &ChallengeRequest {
                        profile: profile.clone(),
                    },
                )
                .await;
            match probe {
                Ok(_) => {}
                Err(ClientError::Refused { status: 404, .. }) => continue,
                Err(e) => return Err(e),
            }
            if cert.days_left < 0 {
                return Err(ClientError::Expired {
                    serial: cert.serial.clone(),
                    not_after: cert.not_after.clone(),
                    issuer: "bank",
                });
            }
            out.step(
                "key_set",
                &out.words(
                    &format!(
                        "Профиль {profile}: абонент {}, сертификат {} до {} (осталось дней: {})",
                        cert.subject, cert.serial, cert.not_after, cert.days_left
                    ),
                    &format!(
                        "Профиль {profile}: абонент {}, сертификат {} {} дейін (қалған күн: {})",
                        cert.subject, cert.serial, cert.not_after, cert.days_left
                    ),
                    &format!(
                        "Profile {profile}: subscriber {}, certificate {} until {} ({} days left)",
                        cert.subject, cert.serial, cert.not_after, cert.days_left
                    ),
                ),
                json!({"profile": profile, "id": set.id, "serial": cert.serial, "days_left": cert.days_left}),
            );
            return Ok(BankJournal {
                profile,
                subscriber: cert.subject.clone(),
                old_id: set.id_bytes.clone(),
                new_id: new_id("bank").into_bytes(),
                step: BankStep::Planned,
                regeneration: None,
                csr: None,
            });
        }
    }
    let skipped = if cannot.is_empty() {
        String::new()
    } else {
        format!(
            "; key sets {} were left aside: kilt signs only P-256 yet (GOST needs mechanisms its PKCS#11 binding lacks; see README, GOST)",
            cannot.join(", ")
        )
    };
    Err(ClientError::NoKeySet(format!(
        "no key set on the token has a certificate of a profile the bank at {} knows{}; check --bank-url and the token{skipped}",
        opts.flow.url,
        opts.profile
            .as_ref()
            .map(|p| format!(" (asked for profile {p})"))
            .unwrap_or_default()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::CertInfo;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../gost/tests/data")
                .join(name),
        )
        .unwrap()
    }

    /// A token whose only key sets are GOST (the national CA's test user's certificates):
    /// the plan asks the bank nothing about them (the URL goes nowhere) and says why it left
    /// them aside, naming each set and its algorithm.
    #[tokio::test]
    async fn gost_key_sets_are_left_aside_with_the_reason() {
        let sets: Vec<KeySet> = [
            ("nca2004", "user-2004.der"),
            ("nca512", "user-2015-512.der"),
        ]
        .into_iter()
        .map(|(id, file)| KeySet {
            id: id.into(),
            id_bytes: id.as_bytes().to_vec(),
            label: id.into(),
            point: vec![],
            certificate: CertInfo::parse(&fixture(file)),
        })
        .collect();
        let retry = crate::api::Retry::default();
        let api = Api::new("bank", "https://127.0.0.1:1", reqwest::Client::new(), retry);
        let opts = BankOptions {
            flow: FlowSettings {
                url: "https://127.0.0.1:1".into(),
                root: vec![],
                state_dir: std::env::temp_dir(),
                retry,
                poll_every: std::time::Duration::from_millis(10),
                poll_for: std::time::Duration::from_millis(10),
                confirm: crate::keys::Confirm {
                    yes: true,
                    pin: "env:KILT_UNUSED_PIN".parse().unwrap(),
                },
            },
            profile: None,
        };
        match plan(&api, &sets, &opts, &Out::quiet()).await {
            Err(ClientError::NoKeySet(why)) => {
                assert!(
                    why.contains("nca2004 (GOST 34.310-2004)")
                        && why.contains("nca512 (GOST R 34.10-2015 (512-bit))")
                        && why.contains("only P-256"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
