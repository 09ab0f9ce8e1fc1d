//! The bank's admin listener (plain HTTP, loopback): subscribers, the clock, the operator's
//! approve/reject (also as a page), fault knobs.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use kilt_mock_server::web::ApiJson;
use kilt_protocol::bank::{NewSubscriber, Reject};
use kilt_protocol::ca::ClockShift;
use kilt_protocol::{Approval, Faults};
use serde::Deserialize;

use crate::error::{BankError, Result};
use crate::web::{AppState, LangQuery, blocking, esc, layout, profiles_table};

/// The admin routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/root", get(root))
        .route("/admin/subscribers", post(create_subscriber))
        .route("/admin/profiles", get(profiles))
        .route("/admin/regenerations", get(regenerations))
        .route("/admin/regenerations/{id}/approve", post(approve))
        .route("/admin/regenerations/{id}/reject", post(reject))
        .route("/admin/clock", get(clock).post(shift_clock))
        .route("/admin/faults", get(faults).put(set_faults))
        .route("/admin/approval", get(approval).put(set_approval))
        .route("/operator", get(operator_page))
        .route("/operator/regenerations/{id}", post(operator_action))
        .route(
            "/openapi.json",
            kilt_mock_server::web::openapi_route(
                crate::OPENAPI,
                kilt_mock_server::web::Listener::Admin,
            ),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            kilt_mock_server::http::MAX_BODY,
        ))
        .with_state(state)
}

fn id(raw: &str) -> Result<i64> {
    raw.parse()
        .map_err(|_| BankError::InvalidInput(format!("regeneration id {raw:?} is not a number")))
}

async fn root(State(state): State<AppState>) -> Response {
    state.bank.pki().root_pem().to_owned().into_response()
}

async fn create_subscriber(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewSubscriber>,
) -> Result<Response> {
    let profile = blocking(&state, move |b| {
        b.create_subscriber(&new.subscriber, &new.csr, new.valid_days)
    })
    .await?;
    tracing::info!(subscriber = %profile.profile.subscriber, identifier = %profile.profile.identifier, "admin: subscriber created");
    Ok((StatusCode::CREATED, Json(profile)).into_response())
}

async fn profiles(State(state): State<AppState>) -> Result<Response> {
    Ok(Json(blocking(&state, |b| b.profiles()).await?).into_response())
}

async fn regenerations(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
) -> Result<Response> {
    let lang = q.lang();
    Ok(Json(blocking(&state, move |b| b.regenerations(lang)).await?).into_response())
}

async fn approve(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response> {
    let (id, lang) = (id(&raw)?, q.lang());
    Ok(Json(blocking(&state, move |b| b.approve(id, lang)).await?).into_response())
}

async fn reject(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    ApiJson(r): ApiJson<Reject>,
) -> Result<Response> {
    let (id, lang) = (id(&raw)?, q.lang());
    Ok(Json(blocking(&state, move |b| b.reject(id, &r.reason, lang)).await?).into_response())
}

async fn clock(State(state): State<AppState>) -> Result<Response> {
    let now = blocking(&state, |b| b.now()).await?;
    Ok(Json(serde_json::json!({ "now": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default() })).into_response())
}

async fn shift_clock(
    State(state): State<AppState>,
    ApiJson(shift): ApiJson<ClockShift>,
) -> Result<Response> {
    let now = blocking(&state, move |b| b.shift_clock(shift.advance_days)).await?;
    tracing::info!(%now, "admin: clock shifted");
    Ok(Json(serde_json::json!({ "now": now })).into_response())
}

async fn faults(State(state): State<AppState>) -> Json<Faults> {
    Json(*state.faults.read().unwrap_or_else(|p| p.into_inner()))
}

async fn set_faults(
    State(state): State<AppState>,
    ApiJson(faults): ApiJson<Faults>,
) -> Json<Faults> {
    let faults = kilt_mock_server::http::clamp(faults);
    *state.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    tracing::info!(?faults, "admin: fault knobs set");
    Json(faults)
}

/// The operator's page: every profile, and the requests waiting for a decision.
async fn operator_page(State(state): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    let lang = q.lang();
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let data = blocking(&state, move |b| Ok((b.profiles()?, b.regenerations(lang)?))).await;
    let (profiles, regenerations) = match data {
        Ok(data) => data,
        Err(e) => return (e.status_code().0, Html(esc(&e.to_string()))).into_response(),
    };
    let mut body = profiles_table(lang, &profiles);
    let _ = write!(
        body,
        "<h2>{}</h2><table id=\"regenerations\"><tr><th>№</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        t(
            "Запросы на регенерацию",
            "Қайта шығаруға сұраныстар",
            "Regeneration requests"
        ),
        t("Идентификатор", "Сәйкестендіргіш", "Identifier"),
        t("Статус", "Мәртебе", "Status"),
        t("Причина", "Себебі", "Reason"),
    );
    for r in &regenerations {
        let actions = if r.status == kilt_protocol::bank::Status::AcceptedByBank {
            format!(
                "<form method=\"post\" action=\"/operator/regenerations/{id}?lang={code}\"><button name=\"action\" value=\"approve\">{}</button> \
                 <input name=\"reason\" placeholder=\"{}\"> <button name=\"action\" value=\"reject\">{}</button></form>",
                t("Одобрить", "Мақұлдау", "Approve"),
                t("причина отказа", "бас тарту себебі", "reason"),
                t("Отвергнуть", "Қабылдамау", "Reject"),
                id = r.id,
                code = lang.code(),
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"status\" data-code=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            r.id,
            r.profile,
            r.status.code(),
            r.status.label(lang),
            r.reason.as_deref().map(esc).unwrap_or_default(),
            actions
        );
    }
    body.push_str("</table>");
    Html(layout(
        lang,
        "/operator",
        t("Операционист", "Операционист", "Operator"),
        &body,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct Action {
    action: String,
    #[serde(default)]
    reason: String,
}

async fn operator_action(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    Form(action): Form<Action>,
) -> Result<Response> {
    let (id, lang) = (id(&raw)?, q.lang());
    match action.action.as_str() {
        "approve" => blocking(&state, move |b| b.approve(id, lang)).await?,
        "reject" => blocking(&state, move |b| b.reject(id, &action.reason, lang)).await?,
        other => return Err(BankError::InvalidInput(format!("unknown action {other:?}"))),
    };
    Ok(Redirect::to(&format!("/operator?lang={}", lang.code())).into_response())
}

async fn approval(State(state): State<AppState>) -> Json<Approval> {
    Json(state.bank.approval().get())
}

async fn set_approval(
    State(state): State<AppState>,
    ApiJson(approval): ApiJson<Approval>,
) -> Json<Approval> {
    state.bank.approval().set(approval);
    tracing::info!(manual = approval.manual, "admin: approval mode set");
    Json(approval)
}
