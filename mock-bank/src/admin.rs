//! The bank's admin listener (plain HTTP, loopback): subscribers, the clock, the operator's
//! approve/reject (also as a page), fault knobs.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json, Router};
use kilt_mock_server::openapi::{Listener, finish};
use kilt_mock_server::web::ApiJson;
use kilt_protocol::ErrorBody;
use kilt_protocol::bank::{NewSubscriber, Profile, Provisioned, Regeneration, Reject};
use kilt_protocol::ca::{Clock, ClockShift};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{BankError, Result};
use crate::web::{AppState, LangQuery, SESSION_COOKIE, blocking, esc, layout, profiles_table};

/// The admin routes and the operator page, each that of its handler's `#[utoipa::path]`, with
/// `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let routes = OpenApiRouter::new()
        .routes(routes!(create_subscriber))
        .routes(routes!(profiles))
        .routes(routes!(regenerations))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(clock, shift_clock))
        .routes(routes!(operator_page))
        .routes(routes!(operator_action))
        .merge(kilt_mock_server::steer::routes());
    let (routes, _) = finish(routes, crate::api_info(), Listener::Admin, SESSION_COOKIE);
    routes
        .layer(axum::extract::DefaultBodyLimit::max(
            kilt_mock_server::http::MAX_BODY,
        ))
        .with_state(state)
}

fn id(raw: &str) -> Result<i64> {
    raw.parse()
        .map_err(|_| BankError::InvalidInput(format!("regeneration id {raw:?} is not a number")))
}

/// A subscriber with a first certificate (provision a fresh token)
#[utoipa::path(
    post, path = "/admin/subscribers", request_body = NewSubscriber,
    responses(
        (status = 201, description = "The profile, its first certificate and the chain to write onto the token", body = Provisioned),
        (status = 409, description = "The CSR's key is already certified", body = ErrorBody),
        (status = 422, description = "A name, CSR or validity the bank does not accept", body = ErrorBody),
    )
)]
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

/// Every profile
#[utoipa::path(
    get, path = "/admin/profiles",
    responses((status = 200, description = "Every profile", body = Vec<Profile>))
)]
async fn profiles(State(state): State<AppState>) -> Result<Response> {
    Ok(Json(blocking(&state, |b| b.profiles()).await?).into_response())
}

/// Every regeneration, newest first
#[utoipa::path(
    get, path = "/admin/regenerations", params(("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses((status = 200, description = "Every regeneration, newest first", body = Vec<Regeneration>))
)]
async fn regenerations(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
) -> Result<Response> {
    let lang = q.lang();
    Ok(Json(blocking(&state, move |b| b.regenerations(lang)).await?).into_response())
}

/// Operator: issue the certificate of an accepted request now
#[utoipa::path(
    post, path = "/admin/regenerations/{id}/approve", params(("id" = i64, Path, description = "The regeneration number"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses(
        (status = 200, description = "The certificate is issued", body = Regeneration),
        (status = 404, description = "No such regeneration", body = ErrorBody),
        (status = 409, description = "Not waiting with the bank", body = ErrorBody),
    )
)]
async fn approve(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response> {
    let (id, lang) = (id(&raw)?, q.lang());
    Ok(Json(blocking(&state, move |b| b.approve(id, lang)).await?).into_response())
}

/// Operator: reject a request still with the bank
#[utoipa::path(
    post, path = "/admin/regenerations/{id}/reject", params(("id" = i64, Path, description = "The regeneration number"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    request_body = Reject,
    responses(
        (status = 200, description = "«Отвергнут банком»; the customer sees the reason", body = Regeneration),
        (status = 404, description = "No such regeneration", body = ErrorBody),
        (status = 409, description = "No longer with the bank", body = ErrorBody),
        (status = 422, description = "The reason is empty or over 500 characters", body = ErrorBody),
    )
)]
async fn reject(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    ApiJson(r): ApiJson<Reject>,
) -> Result<Response> {
    let (id, lang) = (id(&raw)?, q.lang());
    Ok(Json(blocking(&state, move |b| b.reject(id, &r.reason, lang)).await?).into_response())
}

/// The bank's clock
#[utoipa::path(
    get, path = "/admin/clock",
    responses((status = 200, description = "The bank's clock", body = Clock))
)]
async fn clock(State(state): State<AppState>) -> Result<Json<Clock>> {
    Ok(Json(blocking(&state, |b| b.clock()).await?))
}

/// Shift the bank's clock by days
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
    let clock = blocking(&state, move |b| b.shift_clock(shift.advance_days)).await?;
    tracing::info!(now = %clock.now, "admin: clock shifted");
    Ok(Json(clock).into_response())
}

/// Operator page: profiles and requests with approve/reject
#[utoipa::path(
    get, path = "/operator", params(("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    responses((status = 200, description = "The operator page: profiles and requests with approve and reject", content_type = "text/html"))
)]
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

/// The operator page's form: approve, or reject with a reason.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Action {
    /// Issue the certificate now.
    Approve,
    /// «Отвергнут банком».
    Reject {
        /// Shown to the customer.
        #[schema(
            min_length = 1,
            max_length = 500,
            pattern = r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        )]
        reason: String,
    },
}

/// Operator page form: action=approve|reject, reason
#[utoipa::path(
    post, path = "/operator/regenerations/{id}", params(("id" = i64, Path, description = "The regeneration number"), ("lang" = Option<String>, Query, description = "ru, kk or en; anything else shows Russian")),
    request_body(content = Action, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Back to /operator"),
        (status = 404, description = "No such regeneration", body = ErrorBody),
        (status = 409, description = "Not waiting with the bank", body = ErrorBody),
        (status = 422, description = "An unknown action, or a rejection without a reason of 1-500 characters", body = ErrorBody),
    )
)]
async fn operator_action(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    Form(action): Form<Action>,
) -> Result<Response> {
    let (id, lang) = (id(&raw)?, q.lang());
    match action {
        Action::Approve => blocking(&state, move |b| b.approve(id, lang)).await?,
        Action::Reject { reason } => blocking(&state, move |b| b.reject(id, &reason, lang)).await?,
    };
    Ok(Redirect::to(&format!("/operator?lang={}", lang.code())).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_operator_form_documents_a_reason_that_is_not_blank() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(super::Action::schema()).unwrap();
        let reject = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["properties"]["action"]["enum"][0] == "reject")
            .expect("a reject variant");
        assert_eq!(
            reject["properties"]["reason"]["pattern"],
            kilt_protocol::NOT_BLANK
        );
        assert_eq!(reject["required"], serde_json::json!(["reason", "action"]));
    }
}
