//! The bank's API, customer pages and operator page.

use std::fmt::Write;
use std::sync::{Arc, RwLock};

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use kilt_mock_server::web::ApiJson;
use kilt_protocol::bank::{
    Activate, Challenge, ChallengeRequest, Login, Profile, Regeneration, Status, Submit,
};
use kilt_protocol::{Faults, Lang};
use serde::Deserialize;

use crate::bank::{Bank, CHALLENGE_SECONDS};
use crate::error::{BankError, Result};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kilt_bank_session";

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The bank.
    pub bank: Arc<Bank>,
    /// Current fault knobs.
    pub faults: Arc<RwLock<Faults>>,
}

/// Runs a bank call off the async workers (SQLite blocks).
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Bank) -> Result<T> + Send + 'static,
) -> Result<T> {
    let bank = state.bank.clone();
    tokio::task::spawn_blocking(move || f(&bank))
        .await
        .map_err(|e| BankError::Internal(e.to_string()))?
}

#[derive(Deserialize, Default)]
pub(crate) struct LangQuery {
    lang: Option<String>,
}

impl LangQuery {
    pub(crate) fn lang(&self) -> Lang {
        self.lang
            .as_deref()
            .and_then(Lang::from_code)
            .unwrap_or_default()
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    kilt_mock_server::web::session_token(headers, SESSION_COOKIE)
}

/// The logged-in profile's identifier.
pub(crate) struct Auth(pub String);

impl FromRequestParts<AppState> for Auth {
    type Rejection = BankError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = session_token(&parts.headers).ok_or_else(|| {
            BankError::Unauthenticated("no session; log in with a signed challenge first".into())
        })?;
        Ok(Auth(blocking(state, move |b| b.session(&token)).await?))
    }
}

fn id(raw: &str) -> Result<i64> {
    raw.parse()
        .map_err(|_| BankError::InvalidInput(format!("regeneration id {raw:?} is not a number")))
}

/// The API and the customer pages, behind the fault layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/challenge", post(challenge))
        .route("/api/v1/login", post(login))
        .route("/api/v1/profiles", get(profiles))
        .route("/api/v1/profiles/{id}/signature", get(signature))
        .route("/api/v1/profiles/{id}/regenerations", post(start))
        .route("/api/v1/regenerations/{id}", get(regeneration))
        .route("/api/v1/regenerations/{id}/submit", post(submit))
        .route("/api/v1/regenerations/{id}/certificate", get(certificate))
        .route("/api/v1/regenerations/{id}/activate", post(activate))
        .route("/bank/root.crt", get(root))
        .route(
            "/openapi.json",
            kilt_mock_server::web::openapi_route(
                crate::OPENAPI,
                kilt_mock_server::web::Listener::Public,
            ),
        )
        .route("/enter", get(enter))
        .route("/", get(profiles_page))
        .layer(middleware::from_fn_with_state(
            state.faults.clone(),
            kilt_mock_server::http::fault_layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            kilt_mock_server::http::MAX_BODY,
        ))
        .with_state(state)
}

async fn root(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.bank.pki().root_pem().to_owned(),
    )
        .into_response()
}

async fn challenge(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> Result<Json<Challenge>> {
    let challenge = blocking(&state, move |b| b.challenge(&req.profile)).await?;
    Ok(Json(Challenge {
        challenge,
        expires_in: CHALLENGE_SECONDS,
    }))
}

async fn login(State(state): State<AppState>, ApiJson(req): ApiJson<Login>) -> Result<Response> {
    let session = blocking(&state, move |b| b.login(&req)).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        session.token, session.expires_in
    );
    let mut resp = Json(session).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex token"),
    );
    Ok(resp)
}

async fn profiles(
    State(state): State<AppState>,
    Auth(profile): Auth,
) -> Result<Json<Vec<Profile>>> {
    Ok(Json(vec![
        blocking(&state, move |b| b.profile(&profile)).await?,
    ]))
}

fn own(profile: &str, id: &str) -> Result<()> {
    if profile == id {
        Ok(())
    } else {
        Err(BankError::NotFound(format!("profile {id}")))
    }
}

async fn signature(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    own(&profile, &id)?;
    Ok(Json(blocking(&state, move |b| b.signature_params(&id)).await?).into_response())
}

async fn start(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response> {
    own(&profile, &id)?;
    let lang = q.lang();
    let (regeneration, created) = blocking(&state, move |b| b.start(&id, lang)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(regeneration)).into_response())
}

async fn regeneration(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
) -> Result<Json<Regeneration>> {
    let id = id(&raw)?;
    let lang = q.lang();
    Ok(Json(
        blocking(&state, move |b| b.regeneration(Some(&profile), id, lang)).await?,
    ))
}

async fn submit(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    ApiJson(body): ApiJson<Submit>,
) -> Result<Json<Regeneration>> {
    let id = id(&raw)?;
    let lang = q.lang();
    Ok(Json(
        blocking(&state, move |b| b.submit(&profile, id, &body, lang)).await?,
    ))
}

async fn certificate(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(raw): Path<String>,
) -> Result<Response> {
    let id = id(&raw)?;
    Ok(Json(blocking(&state, move |b| b.certificate(&profile, id)).await?).into_response())
}

async fn activate(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    ApiJson(body): ApiJson<Activate>,
) -> Result<Json<Regeneration>> {
    let id = id(&raw)?;
    let lang = q.lang();
    Ok(Json(
        blocking(&state, move |b| {
            b.activate(&profile, id, &body.signature, lang)
        })
        .await?,
    ))
}

#[derive(Deserialize)]
struct EnterQuery {
    token: String,
    lang: Option<String>,
}

/// Opens the customer pages for a session the client made (the client has the token; a
/// browser gets it as a cookie here, then the token leaves the address bar by a redirect).
async fn enter(State(state): State<AppState>, Query(q): Query<EnterQuery>) -> Result<Response> {
    let token = q.token.clone();
    blocking(&state, move |b| b.session(&token)).await?;
    let lang = q
        .lang
        .as_deref()
        .and_then(Lang::from_code)
        .unwrap_or_default();
    let mut resp = Redirect::to(&format!("/?lang={}", lang.code())).into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax",
        q.token
    );
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| BankError::InvalidInput("bad token".into()))?,
    );
    Ok(resp)
}

pub(crate) use kilt_mock_server::web::esc;

pub(crate) fn layout(lang: Lang, path: &str, title: &str, body: &str) -> String {
    let langs: String = Lang::ALL
        .iter()
        .map(|l| {
            let name = l.pick("Русский", "Қазақша", "English");
            if *l == lang {
                format!("<b>{name}</b>")
            } else {
                format!("<a href=\"{path}?lang={}\">{name}</a>", l.code())
            }
        })
        .collect::<Vec<_>>()
        .join(" | ");
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\"><title>{title} — kilt-bank</title>\
         <style>body{{font-family:sans-serif;margin:0}}header{{background:#0b5563;color:#fff;padding:.8em 1.5em}}\
         main{{display:flex}}nav{{width:16em;padding:1em;background:#eef4f5;min-height:30em}}section{{padding:1em 2em}}\
         table{{border-collapse:collapse;margin:.6em 0 1.2em}}td,th{{border:1px solid #9ab;padding:.3em .7em;text-align:left}}\
         .warn{{border:2px solid #c60;padding:.8em;background:#fff4e5}}</style></head><body>\
         <header><b>kilt Bank · BS-Client</b> — {slogan} <span style=\"float:right\">{langs}</span></header>\
         <main><nav><b>{service}</b><br>→ {security}<br>→ {regen}<br>→ <b>{profiles}</b></nav><section><h1>{title}</h1>{body}</section></main></body></html>",
        code = lang.code(),
        slogan = t(
            "тестовый банк, не для реальных ключей",
            "сынақ банкі, нақты кілттерге емес",
            "a test bank, not for real keys"
        ),
        service = t("Сервис", "Сервис", "Service"),
        security = t("Безопасность", "Қауіпсіздік", "Security"),
        regen = t(
            "Регенерация комплекта ключей",
            "Кілттер жинағын қайта шығару",
            "Key set regeneration"
        ),
        profiles = t("Профили", "Профильдер", "Profiles"),
    )
}

/// The seed's "Профили" table.
pub(crate) fn profiles_table(lang: Lang, profiles: &[Profile]) -> String {
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let mut out = format!(
        "<table id=\"profiles\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t("Абонент", "Абонент", "Subscriber"),
        t("Идентификатор", "Сәйкестендіргіш", "Identifier"),
        t("Криптография", "Криптография", "Cryptography"),
        t("Статус", "Мәртебе", "Status"),
        t("Действителен до", "Жарамдылық мерзімі", "Valid to"),
    );
    for p in profiles {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"status\" data-code=\"{}\">{}</td><td>{}</td></tr>",
            esc(&p.subscriber),
            p.identifier,
            p.cryptography,
            p.status.code(),
            p.status.label(lang),
            p.not_after
        );
    }
    out.push_str("</table>");
    out
}

/// The banner of critical profiles shown at login.
pub(crate) fn banner(lang: Lang, critical: &[Profile]) -> String {
    if critical.is_empty() {
        return String::new();
    }
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    format!(
        "<div class=\"warn\" id=\"banner\"><b>{}</b><p>{}</p>{}</div>",
        t("Внимание!", "Назар аударыңыз!", "Attention!"),
        t(
            "У Вас есть абоненты ЭЦП, профили которых имеют критический статус. Выполнить необходимые операции с профилем Вы сможете из интерфейса системы, открыв пункт Сервис - Безопасность - Регенерация комплекта ключей - Профили.",
            "Сізде профильдері сыни мәртебеге ие ЭЦҚ абоненттері бар. Қажетті әрекеттерді Сервис - Қауіпсіздік - Кілттер жинағын қайта шығару - Профильдер тармағынан орындаңыз.",
            "Some of your EDS subscribers have profiles with a critical status. Open Service - Security - Key set regeneration - Profiles to act on them.",
        ),
        profiles_table(lang, critical)
    )
}

async fn profiles_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = q.lang();
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let title = t("Профили", "Профильдер", "Profiles");
    let Some(token) = session_token(&headers) else {
        let body = t(
            "Войдите через клиент kilt: вход подтверждается подписью ключом ЭЦП на токене.",
            "kilt клиенті арқылы кіріңіз: кіру токендегі ЭЦҚ кілтімен қол қою арқылы расталады.",
            "Log in with the kilt client: login is proved by a signature with the EDS key on the token.",
        );
        return (
            StatusCode::UNAUTHORIZED,
            Html(layout(lang, "/", title, &format!("<p>{body}</p>"))),
        )
            .into_response();
    };
    let result = blocking(&state, move |b| {
        let profile = b.session(&token)?;
        Ok((b.profile(&profile)?, b.signature_params(&profile)?))
    })
    .await;
    match result {
        Ok((profile, params)) => {
            let critical: Vec<Profile> = [profile.clone()]
                .into_iter()
                .filter(|p| matches!(p.status, Status::RegenerationRequired | Status::Rejected))
                .collect();
            let body = format!(
                "{}{}<h2>{}</h2><table id=\"signature\"><tr><td>{}</td><td><code>{}</code></td></tr><tr><td>{}</td><td>{}</td></tr>\
                 <tr><td>{}</td><td>{}</td></tr><tr><td>{}</td><td>{}</td></tr><tr><td>{}</td><td>{}</td></tr></table>",
                banner(lang, &critical),
                profiles_table(lang, std::slice::from_ref(&profile)),
                t(
                    "Параметры подписи",
                    "Қолтаңба параметрлері",
                    "Signature parameters"
                ),
                t("Серийный номер", "Сериялық нөмірі", "Serial number"),
                params.serial,
                t("Владелец", "Иесі", "Subject"),
                esc(&params.subject),
                t("Издатель", "Шығарушы", "Issuer"),
                esc(&params.issuer),
                t("Действителен с", "Басталуы", "Valid from"),
                params.not_before,
                t("Действителен по", "Аяқталуы", "Valid to"),
                params.not_after,
            );
            Html(layout(lang, "/", title, &body)).into_response()
        }
        Err(e) => (
            e.status_code().0,
            Html(layout(
                lang,
                "/",
                title,
                &format!("<p>{}</p>", esc(&e.to_string())),
            )),
        )
            .into_response(),
    }
}
