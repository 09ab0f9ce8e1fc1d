//! Each listener's OpenAPI document, generated from its handlers.
//!
//! A listener's routes are registered through [`utoipa_axum::router::OpenApiRouter`] with
//! `routes!(handler)`, so the path, method, parameters, bodies and statuses a handler's
//! `#[utoipa::path]` declares are the route the router serves: the document cannot name a route
//! the listener lacks, nor the other way round. [`finish`] then adds what every route of a kind
//! shares (the refusals below), the security schemes and `/openapi.json` itself.
//!
//! Refusals added by the route's shape, so no handler can forget them:
//! - a request body: `400` (not the shape the route takes), `413` (over
//!   [`MAX_BODY`](crate::http::MAX_BODY)), `415` (another content type);
//! - a security requirement: `401` (no session, or an expired one);
//! - an integer path parameter: `422` (not a number);
//! - the public listener: `503`, which the fault knobs (`PUT /admin/faults`) inject.
//!
//! ```
//! use kilt_mock_server::openapi::{Listener, finish};
//! use utoipa_axum::{router::OpenApiRouter, routes};
//!
//! /// Says hello.
//! #[utoipa::path(get, path = "/hello", responses((status = 200, body = String)))]
//! async fn hello() -> &'static str {
//!     "hello"
//! }
//!
//! let info = utoipa::openapi::InfoBuilder::new().title("example").version("1").build();
//! let routes: OpenApiRouter = OpenApiRouter::new().routes(routes!(hello));
//! let (_router, doc) = finish(routes, info, Listener::Admin, "example_session");
//! assert!(doc["paths"]["/hello"]["get"]["responses"]["200"].is_object());
//! assert!(doc["paths"]["/openapi.json"]["get"].is_object());
//! ```

use std::sync::Arc;

use axum::Extension;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use kilt_protocol::ErrorBody;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Info, OpenApi, RefOr};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Which listener a document describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The API and pages (TLS), behind the fault layer.
    Public,
    /// The admin listener (plain HTTP, loopback).
    Admin,
}

/// The document a listener serves, as JSON, and how it was reached.
#[derive(Clone)]
struct Served {
    document: Arc<serde_json::Value>,
    listener: Listener,
}

/// This listener's OpenAPI 3.1 document, with the listener as the request reached it as its one
/// `servers` entry, so a tool pointed at the document tests the right listener.
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
async fn openapi_json(Extension(served): Extension<Served>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = match served.listener {
        Listener::Public => "https",
        Listener::Admin => "http",
    };
    let mut doc = (*served.document).clone();
    doc["servers"] = serde_json::json!([{ "url": format!("{scheme}://{host}") }]);
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

/// Finishes a listener: adds `/openapi.json`, the refusals each route's shape implies (see the
/// module doc), the `bearer` and `cookie` (named `cookie`) security schemes, and `info`.
/// Returns the router to serve and its document (without `servers`, which each request fills).
pub fn finish<S: Clone + Send + Sync + 'static>(
    routes: OpenApiRouter<S>,
    info: Info,
    listener: Listener,
    cookie: &str,
) -> (axum::Router<S>, serde_json::Value) {
    let (router, mut doc) = routes.routes(routes!(openapi_json)).split_for_parts();
    doc.info = info;
    add_refusals(&mut doc, listener);
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ErrorBody::name().into(), ErrorBody::schema());
    components.security_schemes.insert(
        "bearer".into(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build(),
        )),
    );
    components.security_schemes.insert(
        "cookie".into(),
        RefOr::T(SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
            cookie,
        )))),
    );
    let document = serde_json::to_value(&doc).expect("an OpenAPI document serialises");
    let served = Served {
        document: Arc::new(document.clone()),
        listener,
    };
    (router.layer(Extension(served)), document)
}

fn add_refusals(doc: &mut OpenApi, listener: Listener) {
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let mut refusals = Vec::new();
            if operation.request_body.is_some() {
                refusals.extend([
                    ("400", "The body is not the shape this route takes"),
                    ("413", "The body is over the servers' size limit"),
                    (
                        "415",
                        "The body is not of the content type this route takes",
                    ),
                ]);
            }
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                refusals.push(("401", "No session, or an expired one: log in first"));
            }
            if has_integer_path_parameter(operation) {
                refusals.push(("422", "A path number is not a number"));
            }
            if listener == Listener::Public {
                refusals.push((
                    "503",
                    "Injected by the fault knobs (PUT /admin/faults on the admin listener)",
                ));
            }
            for (status, description) in refusals {
                operation
                    .responses
                    .responses
                    .entry(status.into())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
}

fn has_integer_path_parameter(operation: &Operation) -> bool {
    operation.parameters.iter().flatten().any(|p| {
        let RefOr::T(p) = p else { return false };
        p.parameter_in == ParameterIn::Path
            && matches!(
                &p.schema,
                Some(RefOr::T(Schema::Object(o))) if o.schema_type == SchemaType::Type(Type::Integer)
            )
    })
}

/// A refusal: the servers' `{error, message}` body.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build(),
        )
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::InfoBuilder;

    /// Takes a body, needs a session, names a request by number.
    #[utoipa::path(post, path = "/things/{id}", params(("id" = i64, Path)),
        request_body = kilt_protocol::Approval, security(("bearer" = [])),
        responses((status = 200, description = "done")))]
    async fn change() {}

    /// Takes nothing, names a login.
    #[utoipa::path(get, path = "/people/{login}", params(("login" = String, Path)),
        responses((status = 200, description = "found"),
            (status = 413, description = "the handler's own words")))]
    async fn look() {}

    fn statuses(doc: &serde_json::Value, path: &str, method: &str) -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn document(listener: Listener) -> serde_json::Value {
        let routes: OpenApiRouter = OpenApiRouter::new()
            .routes(routes!(change))
            .routes(routes!(look));
        let info = InfoBuilder::new().title("t").version("1").build();
        finish(routes, info, listener, "t_session").1
    }

    #[test]
    fn each_route_gets_the_refusals_its_shape_implies() {
        let public = document(Listener::Public);
        assert_eq!(
            statuses(&public, "/things/{id}", "post"),
            ["200", "400", "401", "413", "415", "422", "503"]
        );
        assert_eq!(
            statuses(&public, "/people/{login}", "get"),
            ["200", "413", "503"]
        );
        // A status the handler declares keeps its own description.
        assert_eq!(
            public["paths"]["/people/{login}"]["get"]["responses"]["413"]["description"],
            "the handler's own words"
        );
        assert_eq!(
            public["paths"]["/things/{id}"]["post"]["responses"]["401"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        let admin = document(Listener::Admin);
        assert_eq!(
            statuses(&admin, "/things/{id}", "post"),
            ["200", "400", "401", "413", "415", "422"]
        );
        assert_eq!(statuses(&admin, "/openapi.json", "get"), ["200"]);
    }

    #[test]
    fn the_document_carries_the_error_body_and_both_session_schemes() {
        let doc = document(Listener::Admin);
        let components = &doc["components"];
        assert_eq!(
            components["schemas"]["ErrorBody"]["required"],
            serde_json::json!(["error", "message"])
        );
        assert_eq!(components["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(components["securitySchemes"]["cookie"]["in"], "cookie");
        assert_eq!(components["securitySchemes"]["cookie"]["name"], "t_session");
        assert_eq!(doc["info"]["title"], "t");
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[tokio::test]
    async fn the_served_document_names_the_listener_as_it_was_reached() {
        use tower::ServiceExt;
        for (listener, scheme) in [(Listener::Public, "https"), (Listener::Admin, "http")] {
            let routes: OpenApiRouter = OpenApiRouter::new().routes(routes!(look));
            let info = InfoBuilder::new().title("t").version("1").build();
            let (router, _) = finish(routes, info, listener, "t_session");
            let request = axum::http::Request::get("/openapi.json")
                .header(header::HOST, "example.test:8443")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                doc["servers"],
                serde_json::json!([{ "url": format!("{scheme}://example.test:8443") }])
            );
            assert!(doc["paths"]["/people/{login}"]["get"].is_object());
        }
    }
}
