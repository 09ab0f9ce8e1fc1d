//! The admin routes both servers have in common: the root certificate, the fault knobs and the
//! approval switch (Pebble's management port in spirit). A server keeps a [`Steer`] in its state
//! (and says so with `FromRef`); [`routes`] are the same handlers and documents for both.

use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::{FromRef, State};
use axum::response::Response;
use kilt_protocol::{Approval, Faults};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::{ApprovalSwitch, clamp};
use crate::web::{ApiJson, pem};

/// What the shared admin routes steer: handles to the server's own parts.
#[derive(Clone, Debug)]
pub struct Steer {
    /// The root CA certificate, PEM.
    pub root_pem: Arc<str>,
    /// The knobs the public listener's fault layer reads.
    pub faults: Arc<RwLock<Faults>>,
    /// Whether new requests wait for the operator.
    pub approval: ApprovalSwitch,
}

impl Steer {
    /// The handles of a server starting with the knobs `faults` (clamped).
    pub fn new(root_pem: &str, faults: Faults, approval: ApprovalSwitch) -> Steer {
        Steer {
            root_pem: root_pem.into(),
            faults: Arc::new(RwLock::new(clamp(faults))),
            approval,
        }
    }

    /// The fault knobs now.
    pub fn faults(&self) -> Faults {
        *self.faults.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// `/admin/root`, `/admin/faults` and `/admin/approval` for a server whose state holds a
/// [`Steer`].
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Steer: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(faults, set_faults))
        .routes(routes!(approval, set_approval))
}

/// The root CA certificate, PEM
#[utoipa::path(
    get, path = "/admin/root",
    responses((status = 200, description = "The root CA certificate, PEM", content_type = "application/x-pem-file"))
)]
async fn root(State(steer): State<Steer>) -> Response {
    pem(&steer.root_pem)
}

/// Fault knobs
#[utoipa::path(
    get, path = "/admin/faults",
    responses((status = 200, description = "The fault knobs", body = Faults))
)]
async fn faults(State(steer): State<Steer>) -> Json<Faults> {
    Json(steer.faults())
}

/// Set fault knobs (clamped)
#[utoipa::path(
    put, path = "/admin/faults", request_body = Faults,
    responses((status = 200, description = "The knobs as set, percentages clamped to 100 and latency to 60000 ms", body = Faults))
)]
async fn set_faults(State(steer): State<Steer>, ApiJson(faults): ApiJson<Faults>) -> Json<Faults> {
    let faults = clamp(faults);
    *steer.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    tracing::info!(?faults, "admin: fault knobs set");
    Json(faults)
}

/// Approval mode: whether new requests wait for the operator
#[utoipa::path(
    get, path = "/admin/approval",
    responses((status = 200, description = "Whether new requests wait for the operator", body = Approval))
)]
async fn approval(State(steer): State<Steer>) -> Json<Approval> {
    Json(steer.approval.get())
}

/// Set the approval mode (manual: requests wait for approve or reject)
#[utoipa::path(
    put, path = "/admin/approval", request_body = Approval,
    responses((status = 200, description = "The approval mode as set (manual: requests wait for approve or reject)", body = Approval))
)]
async fn set_approval(
    State(steer): State<Steer>,
    ApiJson(approval): ApiJson<Approval>,
) -> Json<Approval> {
    steer.approval.set(approval);
    tracing::info!(manual = approval.manual, "admin: approval mode set");
    Json(approval)
}
