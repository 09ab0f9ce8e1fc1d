//! The admin listener: what a test or an operator needs to steer the CA (Pebble's management
//! port in spirit). Plain HTTP; bind it to loopback only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use kilt_mock_server::openapi::{Listener, finish};
use kilt_protocol::ErrorBody;
use kilt_protocol::ca::{
    Certificate, Clock, ClockShift, NewUser, Provision, Reject, Request, RevokeRequest, User,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::ca::parse_reason;
use crate::error::{CaError, Result};
use crate::server::{AppState, MAX_BODY};
use crate::web::{ApiJson, SESSION_COOKIE, blocking};

/// The admin routes, each that of its handler's `#[utoipa::path]`, with `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let routes = OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(provision))
        .routes(routes!(requests))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(revoke))
        .routes(routes!(clock, shift_clock))
        .merge(kilt_mock_server::steer::routes());
    let (routes, _) = finish(routes, crate::api_info(), Listener::Admin, SESSION_COOKIE);
    routes
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn id(raw: &str) -> Result<i64> {
    raw.parse()
        .map_err(|_| CaError::InvalidInput(format!("request id {raw:?} is not a number")))
}

/// Create an account
#[utoipa::path(
    post, path = "/admin/users", request_body = NewUser,
    responses(
        (status = 201, description = "The account", body = User),
        (status = 409, description = "The login is taken", body = ErrorBody),
        (status = 422, description = "A field the CA does not accept (login, password, name or IIN)", body = ErrorBody),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    ApiJson(user): ApiJson<NewUser>,
) -> Result<Response> {
    let user = blocking(&state, move |ca| ca.create_user(&user)).await?;
    tracing::info!(login = %user.login, "admin: user created");
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// Issue a user's first certificates (provision a fresh token)
#[utoipa::path(
    post, path = "/admin/users/{login}/certificates",
    params(("login" = String, Path, description = "The account's login")),
    request_body = Provision,
    responses(
        (status = 201, description = "The issued certificates", body = Vec<Certificate>),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "A CSR's key is already certified or waits in a request", body = ErrorBody),
        (status = 422, description = "A CSR the CA does not accept, or a validity it cannot give", body = ErrorBody),
        (status = 503, description = "The issuing CA's certificate has expired on the CA's clock", body = ErrorBody),
    )
)]
async fn provision(
    State(state): State<AppState>,
    Path(login): Path<String>,
    ApiJson(p): ApiJson<Provision>,
) -> Result<Response> {
    let certs = blocking(&state, move |ca| ca.provision(&login, &p)).await?;
    Ok((StatusCode::CREATED, Json(certs)).into_response())
}

/// Every request, newest first
#[utoipa::path(
    get, path = "/admin/requests",
    responses((status = 200, description = "Every request, newest first", body = Vec<Request>))
)]
async fn requests(State(state): State<AppState>) -> Result<Response> {
    Ok(Json(blocking(&state, |ca| ca.requests(None)).await?).into_response())
}

/// Approve a new request and issue
#[utoipa::path(
    post, path = "/admin/requests/{id}/approve", params(("id" = i64, Path, description = "The request number")),
    responses(
        (status = 200, description = "Approved and issued", body = Request),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "The request is not new", body = ErrorBody),
        (status = 503, description = "The issuing CA's certificate has expired on the CA's clock", body = ErrorBody),
    )
)]
async fn approve(State(state): State<AppState>, Path(raw): Path<String>) -> Result<Response> {
    let id = id(&raw)?;
    Ok(Json(blocking(&state, move |ca| ca.approve(id)).await?).into_response())
}

/// Reject a new request with a reason
#[utoipa::path(
    post, path = "/admin/requests/{id}/reject", params(("id" = i64, Path, description = "The request number")), request_body = Reject,
    responses(
        (status = 200, description = "Rejected; the user sees the reason", body = Request),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "The request is not new", body = ErrorBody),
        (status = 422, description = "The reason is empty or over 500 characters", body = ErrorBody),
    )
)]
async fn reject(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(r): ApiJson<Reject>,
) -> Result<Response> {
    let id = id(&raw)?;
    Ok(Json(blocking(&state, move |ca| ca.reject(id, &r.reason)).await?).into_response())
}

/// Revoke a certificate
#[utoipa::path(
    post, path = "/admin/certificates/{serial}/revoke",
    params(("serial" = String, Path, description = "The certificate's serial, lower-case hex")),
    request_body = RevokeRequest,
    responses(
        (status = 200, description = "Revoked; the next CRL lists it", body = Certificate),
        (status = 404, description = "No such certificate", body = ErrorBody),
        (status = 409, description = "Already revoked", body = ErrorBody),
        (status = 422, description = "An unknown reason", body = ErrorBody),
    )
)]
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

/// The CA's clock
#[utoipa::path(
    get, path = "/admin/clock",
    responses((status = 200, description = "The CA's clock", body = Clock))
)]
async fn clock(State(state): State<AppState>) -> Result<Response> {
    Ok(Json(blocking(&state, |ca| ca.clock()).await?).into_response())
}

/// Shift the CA's clock by days
#[utoipa::path(
    post, path = "/admin/clock", request_body = ClockShift,
    responses(
        (status = 200, description = "The clock after the shift", body = Clock),
        (status = 409, description = "The shift would take the clock over 36500 days from the system clock; nothing changed", body = ErrorBody),
        (status = 422, description = "The shift is beyond the clock's whole range", body = ErrorBody),
    )
)]
async fn shift_clock(
    State(state): State<AppState>,
    ApiJson(shift): ApiJson<ClockShift>,
) -> Result<Response> {
    let clock = blocking(&state, move |ca| ca.shift_clock(shift.advance_days)).await?;
    tracing::info!(now = %clock.now, "admin: clock shifted");
    Ok(Json(clock).into_response())
}
