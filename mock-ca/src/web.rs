//! The API and the pages on the TLS listener.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json, Router};
use kilt_mock_server::openapi::{Listener, finish};
use kilt_protocol::ErrorBody;
use kilt_protocol::Lang;
use kilt_protocol::ca::{
    CertKind, Certificate, CsrItem, Device, IssueRequest, PasswordLogin, Request, RevokeRequest,
    Session, User,
};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::ca::{Account, Ca};
use crate::error::{CaError, Result};
use crate::pages;
use crate::server::{AppState, MAX_BODY, PeerChain};
pub use kilt_mock_server::web::{ApiJson, LangQuery, esc, session_token};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kilt_ca_session";

/// Runs a CA call off the async workers (SQLite and PBKDF2 block).
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Ca) -> Result<T> + Send + 'static,
) -> Result<T> {
    let ca = state.ca.clone();
    tokio::task::spawn_blocking(move || f(&ca))
        .await
        .map_err(|e| CaError::Internal(e.to_string()))?
}

/// The logged-in account, from `Authorization: Bearer` or the session cookie.
pub(crate) struct Auth(pub Account, pub String);

impl FromRequestParts<AppState> for Auth {
    type Rejection = CaError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = session_token(&parts.headers, SESSION_COOKIE).ok_or_else(|| {
            CaError::Unauthenticated("no session; log in by certificate or password first".into())
        })?;
        let t = token.clone();
        let account = blocking(state, move |ca| ca.session(&t)).await?;
        Ok(Auth(account, token))
    }
}

fn session_cookie(token: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("hex token is a valid header")
}

/// The API and the pages, with the fault layer and the body limit. The API's routes are those of
/// its handlers' `#[utoipa::path]`, and so is `/openapi.json` (the pages are HTML for people
/// and not in it).
pub fn router(state: AppState) -> Router {
    let api = OpenApiRouter::new()
        .routes(routes!(login_password))
        .routes(routes!(login_certificate))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(certificates))
        .routes(routes!(revoke_superseded))
        .routes(routes!(requests, submit))
        .routes(routes!(request))
        .routes(routes!(application))
        .routes(routes!(crl))
        .routes(routes!(root))
        .routes(routes!(issuing));
    let (api, _) = finish(api, crate::api_info(), Listener::Public, SESSION_COOKIE);
    api.merge(pages::router())
        .layer(middleware::from_fn_with_state(
            state.steer.faults.clone(),
            crate::server::fault_layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn with_cookie(session: kilt_protocol::ca::Session) -> Response {
    let cookie = session_cookie(&session.token, session.expires_in);
    let mut resp = Json(session).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

/// Login by login and password
#[utoipa::path(
    post, path = "/api/v1/login/password", request_body = PasswordLogin,
    responses(
        (status = 200, description = "Logged in; the token is also set as the session cookie", body = Session),
        (status = 401, description = "Wrong login or password", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords for this login in a row: wait Retry-After seconds", body = ErrorBody),
    )
)]
async fn login_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordLogin>,
) -> Result<Response> {
    let session = blocking(&state, move |ca| {
        ca.login_password(&body.login, &body.password)
    })
    .await?;
    Ok(with_cookie(session))
}

/// Login "По сертификату": the TLS client certificate (AUTH) must chain to the root on the CA's clock and not be revoked
#[utoipa::path(
    post, path = "/api/v1/login/certificate",
    responses(
        (status = 200, description = "Logged in; the token is also set as the session cookie", body = Session),
        (status = 403, description = "No client certificate, or it does not chain to the root on the CA's clock, is not an AUTH certificate of this CA, or is revoked", body = ErrorBody),
    )
)]
async fn login_certificate(
    State(state): State<AppState>,
    Extension(chain): Extension<PeerChain>,
) -> Result<Response> {
    Ok(with_cookie(login_by_certificate(&state, chain).await?))
}

/// «Вход по сертификату» for the API and the pages alike: the TLS client certificate's chain
/// checked by the CA, and the outcome in the CA's log.
pub(crate) async fn login_by_certificate(
    state: &AppState,
    chain: PeerChain,
) -> Result<kilt_protocol::ca::Session> {
    let session = blocking(state, move |ca| ca.login_certificate(&chain.0)).await;
    match &session {
        Ok(s) => tracing::info!(login = %s.user.login, "login by certificate"),
        Err(e) => tracing::info!(reason = %e, "login by certificate refused"),
    }
    session
}

/// End the session
#[utoipa::path(
    post, path = "/api/v1/logout", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "The session is ended"))
)]
async fn logout(State(state): State<AppState>, Auth(_, token): Auth) -> Result<StatusCode> {
    blocking(&state, move |ca| ca.logout(&token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in user
#[utoipa::path(
    get, path = "/api/v1/me", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The logged-in user", body = User))
)]
async fn me(Auth(account, _): Auth) -> Json<kilt_protocol::ca::User> {
    Json(account.user)
}

/// The user's certificates, newest first
#[utoipa::path(
    get, path = "/api/v1/certificates", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The user's certificates, newest first", body = Vec<Certificate>))
)]
async fn certificates(State(state): State<AppState>, Auth(account, _): Auth) -> Result<Response> {
    Ok(Json(blocking(&state, move |ca| ca.certificates(&account)).await?).into_response())
}

/// Revoke an own certificate superseded by a newer one
#[utoipa::path(
    post, path = "/api/v1/certificates/{serial}/revoke", security(("bearer" = []), ("cookie" = [])),
    params(("serial" = String, Path, description = "The certificate's serial, lower-case hex")),
    request_body = RevokeRequest,
    responses(
        (status = 200, description = "Revoked as superseded", body = Certificate),
        (status = 403, description = "A reason other than superseded: only the CA's operator may use it", body = ErrorBody),
        (status = 404, description = "No such certificate of yours", body = ErrorBody),
        (status = 409, description = "Already revoked, or not superseded by a newer certificate of its kind", body = ErrorBody),
    )
)]
async fn revoke_superseded(
    State(state): State<AppState>,
    Auth(account, _): Auth,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<Response> {
    if body.reason.as_deref().is_some_and(|r| r != "superseded") {
        return Err(CaError::Forbidden(
            "you may revoke your own certificate only as superseded; ask the CA for other reasons"
                .into(),
        ));
    }
    Ok(
        Json(blocking(&state, move |ca| ca.revoke_superseded(&account, &serial)).await?)
            .into_response(),
    )
}

/// "Запрос на выпуск сертификата": one PKCS#10 CSR per kind
#[utoipa::path(
    post, path = "/api/v1/requests", security(("bearer" = []), ("cookie" = [])), request_body = IssueRequest,
    responses(
        (status = 201, description = "The request, issued at once unless approval is manual", body = Request),
        (status = 409, description = "A CSR's key is already certified or already waits in another request", body = ErrorBody),
        (status = 422, description = "A CSR does not parse, its signature does not verify, its key is not P-256, its subject is not yours, or a kind is repeated", body = ErrorBody),
    )
)]
async fn submit(
    State(state): State<AppState>,
    Auth(account, _): Auth,
    ApiJson(body): ApiJson<IssueRequest>,
) -> Result<Response> {
    let request = blocking(&state, move |ca| ca.submit(&account, &body)).await?;
    tracing::info!(
        id = request.id,
        status = request.status.code(),
        "certificate request"
    );
    Ok((StatusCode::CREATED, Json(request)).into_response())
}

fn parse_id(id: &str) -> Result<i64> {
    id.parse::<i64>()
        .map_err(|_| CaError::InvalidInput(format!("request id {id:?} is not a number")))
}

/// The user's requests, newest first
#[utoipa::path(
    get, path = "/api/v1/requests", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The user's requests, newest first", body = Vec<Request>))
)]
async fn requests(State(state): State<AppState>, Auth(account, _): Auth) -> Result<Response> {
    Ok(Json(blocking(&state, move |ca| ca.requests(Some(&account))).await?).into_response())
}

/// One request
#[utoipa::path(
    get, path = "/api/v1/requests/{id}", security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path, description = "The request number")),
    responses(
        (status = 200, description = "The request", body = Request),
        (status = 404, description = "No such request of yours", body = ErrorBody),
    )
)]
async fn request(
    State(state): State<AppState>,
    Auth(account, _): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    Ok(Json(blocking(&state, move |ca| ca.request(Some(&account), id)).await?).into_response())
}

/// "Заявление": the application for the issued certificates, PDF
#[utoipa::path(
    get, path = "/api/v1/requests/{id}/application.pdf", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "The request number"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses(
        (status = 200, description = "«Заявление»: the application for the issued certificates", content_type = "application/pdf"),
        (status = 404, description = "No such request of yours", body = ErrorBody),
        (status = 409, description = "The request has no issued certificates yet", body = ErrorBody),
    )
)]
pub(crate) async fn application(
    State(state): State<AppState>,
    Auth(account, _): Auth,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let lang = q.lang();
    let pdf = blocking(&state, move |ca| application_pdf(ca, &account, id, lang)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"application-{id}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

/// "Заявление": who, which certificates (serials, validity, SHA-256), when, and where to sign.
pub fn application_pdf(ca: &Ca, account: &Account, id: i64, lang: Lang) -> Result<Vec<u8>> {
    use crate::pdf::Line;
    let (request, now) = ca.application(account, id)?;
    let user = &account.user;
    let t = |ru, kk, en| lang.pick(ru, kk, en).to_owned();
    let mut lines = vec![
        Line::new(16.0, t("ЗАЯВЛЕНИЕ", "ӨТІНІШ", "APPLICATION")),
        Line::new(
            11.0,
            t(
                "на выпуск регистрационных свидетельств (сертификатов)",
                "тіркеу куәліктерін (сертификаттарды) шығаруға",
                "for the issue of registration certificates",
            ),
        ),
        Line::new(11.0, ""),
        Line::new(
            11.0,
            format!(
                "{}: {}",
                t("Заявитель", "Өтініш беруші", "Applicant"),
                user.full_name
            ),
        ),
        Line::new(11.0, format!("{}: {}", t("ИИН", "ЖСН", "IIN"), user.iin)),
        Line::new(
            11.0,
            format!(
                "{}: {}",
                t("Номер запроса", "Сұрау нөмірі", "Request number"),
                request.id
            ),
        ),
        Line::new(
            11.0,
            format!(
                "{}: {}",
                t("Устройство", "Құрылғы", "Device"),
                request.device.name()
            ),
        ),
        Line::new(
            11.0,
            format!("{}: {}", t("Дата", "Күні", "Date"), now.date()),
        ),
    ];
    for cert in &request.certificates {
        lines.push(Line::new(11.0, ""));
        lines.push(Line::new(
            12.0,
            format!(
                "{}: {}",
                t("Сертификат", "Сертификат", "Certificate"),
                cert.kind.label(lang)
            ),
        ));
        lines.push(Line::new(
            10.0,
            format!(
                "{}: {}",
                t("Серийный номер", "Сериялық нөмірі", "Serial number"),
                cert.serial
            ),
        ));
        lines.push(Line::new(
            10.0,
            format!(
                "{}: {} — {}",
                t("Срок действия", "Қолданылу мерзімі", "Validity"),
                cert.not_before,
                cert.not_after
            ),
        ));
        lines.push(Line::new(10.0, format!("SHA-256: {}", &cert.sha256[..32])));
        lines.push(Line::new(10.0, format!("         {}", &cert.sha256[32..])));
    }
    lines.push(Line::new(11.0, ""));
    lines.push(Line::new(
        11.0,
        t(
            "Прошу выпустить указанные сертификаты. Сведения верны.",
            "Көрсетілген сертификаттарды шығаруды сұраймын. Мәліметтер дұрыс.",
            "I ask for the certificates above to be issued. The details are correct.",
        ),
    ));
    lines.push(Line::new(11.0, ""));
    lines.push(Line::new(
        11.0,
        format!(
            "{} ____________________  / {} /",
            t("Подпись", "Қолы", "Signature"),
            user.full_name
        ),
    ));
    lines.push(Line::new(
        11.0,
        format!("{} ____.____.________", t("Дата", "Күні", "Date")),
    ));
    let title = format!("{} {}", t("Заявление", "Өтініш", "Application"), request.id);
    crate::pdf::render(&ca.settings().font, &title, &lines)
}

/// "СОС": the issuing CA's CRL, DER
#[utoipa::path(
    get, path = "/crl/issuing.crl",
    responses((status = 200, description = "«СОС»: the issuing CA's CRL, DER", content_type = "application/pkix-crl"))
)]
async fn crl(State(state): State<AppState>) -> Result<Response> {
    let der = blocking(&state, |ca| ca.crl()).await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

/// Root CA certificate, PEM
#[utoipa::path(
    get, path = "/ca/root.crt",
    responses((status = 200, description = "The root CA certificate, PEM", content_type = "application/x-pem-file"))
)]
async fn root(State(state): State<AppState>) -> Response {
    kilt_mock_server::web::pem(state.ca.pki().root_pem())
}

/// Issuing CA certificate, PEM
#[utoipa::path(
    get, path = "/ca/issuing.crt",
    responses((status = 200, description = "The issuing CA certificate, PEM", content_type = "application/x-pem-file"))
)]
async fn issuing(State(state): State<AppState>) -> Response {
    kilt_mock_server::web::pem(state.ca.pki().issuing_pem())
}

/// The page form of "Запрос на выпуск сертификата".
#[derive(Deserialize)]
pub(crate) struct RequestForm {
    pub device: String,
    pub auth_csr: String,
    pub sign_csr: String,
}

impl RequestForm {
    pub(crate) fn into_request(self) -> Result<IssueRequest> {
        let device = Device::ALL
            .into_iter()
            .find(|d| d.name() == self.device)
            .ok_or_else(|| {
                CaError::InvalidInput(format!(
                    "unknown device {:?}; choose JaCarta, eToken, Kaztoken or PKCS12",
                    self.device
                ))
            })?;
        let mut csrs = Vec::new();
        for (kind, csr) in [
            (CertKind::Auth, self.auth_csr),
            (CertKind::Sign, self.sign_csr),
        ] {
            if !csr.trim().is_empty() {
                csrs.push(CsrItem { kind, csr });
            }
        }
        Ok(IssueRequest { device, csrs })
    }
}

pub(crate) fn page_form<T>(
    form: std::result::Result<Form<T>, axum::extract::rejection::FormRejection>,
) -> Result<T> {
    form.map(|Form(f)| f)
        .map_err(|e| kilt_mock_server::error::ServerError::BadBody(e.body_text()).into())
}

pub(crate) fn redirect_with_cookie(to: &str, token: &str, max_age: u64) -> Response {
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(token, max_age));
    resp
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}
