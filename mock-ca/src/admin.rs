//! The admin listener: what a test or an operator needs to steer the CA (Pebble's management
//! port in spirit). Plain HTTP; bind it to loopback only.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kilt_protocol::ca::{ClockShift, NewUser, Provision, Reject, RevokeRequest};
use kilt_protocol::{Approval, Faults};

use crate::ca::parse_reason;
use crate::error::{CaError, Result};
use crate::server::{AppState, MAX_BODY, clamp};
use crate::web::{ApiJson, blocking};

/// The admin routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/root", get(root))
        .route("/admin/users", post(create_user))
        .route("/admin/users/{login}/certificates", post(provision))
        .route("/admin/requests", get(requests))
        .route("/admin/requests/{id}/approve", post(approve))
        .route("/admin/requests/{id}/reject", post(reject))
        .route("/admin/certificates/{serial}/revoke", post(revoke))
        .route("/admin/clock", get(clock).post(shift_clock))
        .route("/admin/faults", get(faults).put(set_faults))
        .route("/admin/approval", get(approval).put(set_approval))
        .route(
            "/openapi.json",
            kilt_mock_server::web::openapi_route(
                crate::OPENAPI,
                kilt_mock_server::web::Listener::Admin,
            ),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn id(raw: &str) -> Result<i64> {
    raw.parse()
        .map_err(|_| CaError::InvalidInput(format!("request id {raw:?} is not a number")))
}

async fn root(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.ca.pki().root_pem().to_owned(),
    )
        .into_response()
}

async fn create_user(
    State(state): State<AppState>,
    ApiJson(user): ApiJson<NewUser>,
) -> Result<Response> {
    let user = blocking(&state, move |ca| ca.create_user(&user)).await?;
    tracing::info!(login = %user.login, "admin: user created");
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

async fn provision(
    State(state): State<AppState>,
    Path(login): Path<String>,
    ApiJson(p): ApiJson<Provision>,
) -> Result<Response> {
    let certs = blocking(&state, move |ca| ca.provision(&login, &p)).await?;
    Ok((StatusCode::CREATED, Json(certs)).into_response())
}

async fn requests(State(state): State<AppState>) -> Result<Response> {
    Ok(Json(blocking(&state, |ca| ca.requests(None)).await?).into_response())
}

async fn approve(State(state): State<AppState>, Path(raw): Path<String>) -> Result<Response> {
    let id = id(&raw)?;
    Ok(Json(blocking(&state, move |ca| ca.approve(id)).await?).into_response())
}

async fn reject(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(r): ApiJson<Reject>,
) -> Result<Response> {
    let id = id(&raw)?;
    Ok(Json(blocking(&state, move |ca| ca.reject(id, &r.reason)).await?).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    ApiJson(r): ApiJson<RevokeRequest>,
) -> Result<Response> {
    let reason = parse_reason(r.reason.as_deref().unwrap_or("unspecified"))?;
    let cert = blocking(&state, move |ca| ca.revoke(&serial, reason)).await?;
    tracing::info!(serial = %cert.serial, "admin: certificate revoked");
    Ok(Json(cert).into_response())
}

async fn clock(State(state): State<AppState>) -> Result<Response> {
    Ok(Json(blocking(&state, |ca| ca.clock()).await?).into_response())
}

async fn shift_clock(
    State(state): State<AppState>,
    ApiJson(shift): ApiJson<ClockShift>,
) -> Result<Response> {
    let clock = blocking(&state, move |ca| ca.shift_clock(shift.advance_days)).await?;
    tracing::info!(now = %clock.now, "admin: clock shifted");
    Ok(Json(clock).into_response())
}

async fn faults(State(state): State<AppState>) -> Json<Faults> {
    Json(state.faults())
}

async fn set_faults(
    State(state): State<AppState>,
    ApiJson(faults): ApiJson<Faults>,
) -> Json<Faults> {
    let faults = clamp(faults);
    *state.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    tracing::info!(?faults, "admin: fault knobs set");
    Json(faults)
}

async fn approval(State(state): State<AppState>) -> Json<Approval> {
    Json(state.ca.approval().get())
}

async fn set_approval(
    State(state): State<AppState>,
    ApiJson(approval): ApiJson<Approval>,
) -> Json<Approval> {
    state.ca.approval().set(approval);
    tracing::info!(manual = approval.manual, "admin: approval mode set");
    Json(approval)
}
