//! The bank's API, customer pages and operator page.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Json, Router, middleware};
use kilt_mock_server::openapi::{Listener, finish};
use kilt_mock_server::steer::Steer;
use kilt_mock_server::web::ApiJson;
pub(crate) use kilt_mock_server::web::LangQuery;
use kilt_protocol::ErrorBody;
use kilt_protocol::Lang;
use kilt_protocol::bank::{
    Activate, Challenge, ChallengeRequest, IssuedCertificate, Login, Profile, Regeneration,
    Session, SignatureParams, Status, Submit,
};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::bank::{Bank, CHALLENGE_SECONDS};
use crate::error::{BankError, Result};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kilt_bank_session";

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The bank.
    pub bank: Arc<Bank>,
    /// The root, the fault knobs and the approval switch, as the shared admin routes steer them.
    pub steer: Steer,
}

impl axum::extract::FromRef<AppState> for Steer {
    fn from_ref(state: &AppState) -> Steer {
        state.steer.clone()
    }
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

/// The API and the customer pages, behind the fault layer: each route that of its handler's
/// `#[utoipa::path]`, and so is `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let routes = OpenApiRouter::new()
        .routes(routes!(challenge))
        .routes(routes!(login))
        .routes(routes!(profiles))
        .routes(routes!(signature))
        .routes(routes!(start))
        .routes(routes!(regeneration))
        .routes(routes!(submit))
        .routes(routes!(certificate))
        .routes(routes!(activate))
        .routes(routes!(root))
        .routes(routes!(enter))
        .routes(routes!(profiles_page));
    let (routes, _) = finish(routes, crate::api_info(), Listener::Public, SESSION_COOKIE);
    routes
        .layer(middleware::from_fn_with_state(
            state.steer.faults.clone(),
            kilt_mock_server::http::fault_layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            kilt_mock_server::http::MAX_BODY,
        ))
        .with_state(state)
}

/// The bank's root CA, PEM
#[utoipa::path(
    get, path = "/bank/root.crt",
    responses((status = 200, description = "The bank's root CA certificate, PEM", content_type = "application/x-pem-file"))
)]
async fn root(State(state): State<AppState>) -> Response {
    kilt_mock_server::web::pem(state.bank.pki().root_pem())
}

/// A one-time challenge for a profile's login
#[utoipa::path(
    post, path = "/api/v1/challenge", request_body = ChallengeRequest,
    responses(
        (status = 200, description = "A one-time challenge to sign", body = Challenge),
        (status = 404, description = "No such profile", body = ErrorBody),
    )
)]
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

/// Login: the challenge signed (ECDSA P-256 SHA-256, DER, hex) by the profile's current key over 'kilt-bank login:'+challenge
#[utoipa::path(
    post, path = "/api/v1/login", request_body = Login,
    responses(
        (status = 200, description = "Logged in; the token is also set as the session cookie", body = Session),
        (status = 403, description = "Refused: an unknown or spent challenge, a certificate that is not the profile's current one, or a signature that does not verify; the challenge is spent either way", body = ErrorBody),
    )
)]
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

/// The logged-in profile (Абонент, Идентификатор, Криптография, Статус)
#[utoipa::path(
    get, path = "/api/v1/profiles", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The logged-in profile (Абонент, Идентификатор, Криптография, Статус)", body = Vec<Profile>))
)]
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

/// "Параметры подписи"
#[utoipa::path(
    get, path = "/api/v1/profiles/{id}/signature", security(("bearer" = []), ("cookie" = [])), params(("id" = String, Path, description = "The profile identifier (20 hex digits)")),
    responses(
        (status = 200, description = "«Параметры подписи»", body = SignatureParams),
        (status = 404, description = "Not the logged-in profile", body = ErrorBody),
    )
)]
async fn signature(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    own(&profile, &id)?;
    Ok(Json(blocking(&state, move |b| b.signature_params(&id)).await?).into_response())
}

/// "Новый": start a regeneration (201), or get the open one (200)
#[utoipa::path(
    post, path = "/api/v1/profiles/{id}/regenerations", security(("bearer" = []), ("cookie" = [])), params(("id" = String, Path, description = "The profile identifier (20 hex digits)"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses(
        (status = 201, description = "«Новый»: a regeneration started", body = Regeneration),
        (status = 200, description = "The profile's open regeneration, already started", body = Regeneration),
        (status = 404, description = "Not the logged-in profile", body = ErrorBody),
    )
)]
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

/// Poll a regeneration
#[utoipa::path(
    get, path = "/api/v1/regenerations/{id}", security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path, description = "The regeneration number"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses(
        (status = 200, description = "The regeneration", body = Regeneration),
        (status = 404, description = "No such regeneration of this profile", body = ErrorBody),
    )
)]
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

/// "Отправить документ в банк" + "Подписать": the new key's CSR, signed by the old key; a retry with the same CSR is idempotent
#[utoipa::path(
    post, path = "/api/v1/regenerations/{id}/submit", security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path, description = "The regeneration number"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    request_body = Submit,
    responses(
        (status = 200, description = "«Принят банком»; a retry with the same CSR answers the same", body = Regeneration),
        (status = 404, description = "No such regeneration of this profile", body = ErrorBody),
        (status = 409, description = "The regeneration is past this step, or the CSR's key is already certified", body = ErrorBody),
        (status = 422, description = "The CSR does not parse or verify, names another subscriber, or the old key's signature does not verify", body = ErrorBody),
    )
)]
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

/// "Получить сертификат (ключ)"
#[utoipa::path(
    get, path = "/api/v1/regenerations/{id}/certificate", security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path, description = "The regeneration number")),
    responses(
        (status = 200, description = "«Получить сертификат (ключ)»", body = IssuedCertificate),
        (status = 404, description = "No such regeneration of this profile", body = ErrorBody),
        (status = 409, description = "No certificate issued yet", body = ErrorBody),
    )
)]
async fn certificate(
    State(state): State<AppState>,
    Auth(profile): Auth,
    Path(raw): Path<String>,
) -> Result<Response> {
    let id = id(&raw)?;
    Ok(Json(blocking(&state, move |b| b.certificate(&profile, id)).await?).into_response())
}

/// "Продолжить": signed by the new key over 'kilt-bank activate:'+id+':'+serial; idempotent
#[utoipa::path(
    post, path = "/api/v1/regenerations/{id}/activate", security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path, description = "The regeneration number"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    request_body = Activate,
    responses(
        (status = 200, description = "«В эксплуатации»; idempotent", body = Regeneration),
        (status = 404, description = "No such regeneration of this profile", body = ErrorBody),
        (status = 409, description = "No certificate to activate yet", body = ErrorBody),
        (status = 422, description = "The new key's signature does not verify", body = ErrorBody),
    )
)]
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
    #[serde(flatten)]
    lang: LangQuery,
}

/// Open the customer pages for a session (sets the cookie, redirects to /)
///
/// The client has the token; a browser gets it as a cookie here, then the token leaves the
/// address bar by the redirect.
#[utoipa::path(
    get, path = "/enter",
    params(("token" = String, Query, description = "A session token from /api/v1/login"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses(
        (status = 303, description = "To /, with the session cookie set"),
        (status = 400, description = "No token", body = ErrorBody),
        (status = 401, description = "An unknown or expired session", body = ErrorBody),
    )
)]
async fn enter(State(state): State<AppState>, Query(q): Query<EnterQuery>) -> Result<Response> {
    let token = q.token.clone();
    blocking(&state, move |b| b.session(&token)).await?;
    let lang = q.lang.lang();
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

/// Customer page: banner, Профили, Параметры подписи
#[utoipa::path(
    get, path = "/", params(("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses(
        (status = 200, description = "The customer page: banner, Профили, Параметры подписи", content_type = "text/html"),
        (status = 401, description = "Not logged in: a page that says so", content_type = "text/html"),
    )
)]
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
                 <tr><td>{}</td><td>{}</td></tr><tr><td>{}</td><td>{}</td></tr><tr><td>{}</td><td>{}</td></tr>\
                 <tr><td>{}</td><td>{}</td></tr></table>",
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
                t("Алгоритм", "Алгоритм", "Algorithm"),
                esc(&params.algorithm),
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
