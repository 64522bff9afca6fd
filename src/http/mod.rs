//! The HTTP surface: the one route table and the OpenAPI document
//! generated from the handlers' annotations. Handlers call `ops` and map
//! its errors in `error`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dialects::{event_api, slashid, voucherify};
use crate::state::AppState;

pub mod api_keys;
pub mod deliveries;
pub mod error;
pub mod event_types;
pub mod events;
pub mod extract;
pub mod objects_only;
pub mod openapi;
pub mod portal_links;
pub mod webhook_actions;
pub mod webhook_control;
pub mod webhook_security;
pub mod webhooks;

use error::ApiError;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Seed 002's pair of headers; seed 003's key header.
        for (name, header) in [
            ("management_id", "X-Management-Id"),
            ("management_token", "X-Management-Token"),
            ("slashid_api_key", "SlashID-API-Key"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(header))),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "hookd", description = "Self-hosted webhook delivery: management and publishing API."),
    modifiers(&BearerAuth),
    tags(
        (name = "webhooks", description = "Configured destinations"),
        (name = "event-types", description = "The event-type catalogue"),
        (name = "portal", description = "Links to a tenant's customer portal"),
        (name = "api-keys", description = "Provisioned API keys (admins only)"),
        (name = "events", description = "Publishing, and the event log"),
        (name = "deliveries", description = "The delivery log and retries"),
        (name = "operations", description = "Health and the API description"),
        (name = "seed-002-voucherify", description = "Seed 002's webhook API (`/management/v1/projects/{projectId}/webhooks`), served verbatim over the same webhooks"),
        (name = "seed-003-slashid", description = "Seed 003's webhook API (`/organizations/webhooks`, the organization in `SlashID-OrgID`), served verbatim over the same webhooks"),
        (name = "seed-004-event-api", description = "Seed 004's webhook API (`/event/{tenantLocator}/webhooks`), served verbatim over the same webhooks"),
    )
)]
struct ApiDoc;

/// The routes and their OpenAPI description, built from the same table.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::get_webhook_secret))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::unsuspend_webhook))
        .routes(routes!(webhook_control::pause_webhook))
        .routes(routes!(webhook_control::resume_webhook))
        .routes(routes!(webhook_actions::test_webhook))
        .routes(routes!(webhook_actions::recover_webhook))
        .routes(routes!(webhook_actions::send_example))
        .routes(routes!(events::publish_event))
        .routes(routes!(events::publish_batch))
        .routes(routes!(events::list_events))
        .routes(routes!(events::get_event))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::get_delivery))
        .routes(routes!(deliveries::retry_delivery))
        .routes(routes!(
            event_types::list_event_types,
            event_types::create_event_type
        ))
        .routes(routes!(
            event_types::update_event_type,
            event_types::archive_event_type
        ))
        .routes(routes!(event_types::restore_event_type))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(portal_links::create_portal_link))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(event_api::create_webhook))
        .routes(routes!(event_api::list_webhooks))
        .routes(routes!(
            event_api::get_webhook,
            event_api::update_webhook,
            event_api::delete_webhook
        ))
        .routes(routes!(event_api::unsuspend_webhook))
        .routes(routes!(
            voucherify::create_webhook,
            voucherify::list_webhooks
        ))
        .routes(routes!(
            voucherify::get_webhook,
            voucherify::update_webhook,
            voucherify::put_webhook,
            voucherify::delete_webhook
        ))
        .routes(routes!(slashid::create_webhook, slashid::list_webhooks))
        .routes(routes!(
            slashid::get_webhook,
            slashid::update_webhook,
            slashid::delete_webhook
        ))
        .routes(routes!(
            slashid::list_triggers,
            slashid::add_trigger,
            slashid::remove_trigger
        ))
}

/// The OpenAPI document (also served at `/openapi.json`): generated from
/// the handlers' annotations, then completed with the answers of the
/// layers around them (`openapi::complete`).
pub fn openapi(environments: &[String]) -> serde_json::Value {
    let (_, mut doc) = api_routes().split_for_parts();
    doc.paths.paths.insert(
        "/openapi.json".into(),
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .tag("operations")
                .operation_id(Some("get_openapi"))
                .summary(Some("This document"))
                .response(
                    "200",
                    utoipa::openapi::Response::new("The OpenAPI 3.1 description"),
                ),
        ),
    );
    let mut doc = serde_json::to_value(doc).expect("the document serializes");
    openapi::complete(&mut doc, environments);
    doc
}

/// The HTTP app. A worker-only instance serves operations routes alone.
pub fn router(state: AppState, serve_api: bool) -> Router {
    let (router, _) = if serve_api {
        api_routes().split_for_parts()
    } else {
        OpenApiRouter::new()
            .routes(routes!(healthz))
            .routes(routes!(readyz))
            .routes(routes!(metrics))
            .split_for_parts()
    };
    let router = if serve_api {
        router
            .nest("/admin", crate::admin::routes())
            .route(
                "/admin/",
                axum::routing::get(|| async { axum::response::Redirect::to("/admin/webhooks") }),
            )
            .merge(crate::admin::portal_routes(state.clone()))
    } else {
        router
    };
    let doc = Arc::new(openapi(&state.ops.settings.environments));
    let max_body = state.ops.settings.max_body_bytes;
    let request_timeout = Duration::from_millis(state.ops.settings.request_timeout_ms);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |req, next| {
            within(request_timeout, req, next)
        }))
        .layer(axum::middleware::from_fn(count_request))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    // Path only: query strings may carry search terms, never keys
                    // (keys travel in headers, which are not logged).
                    // A portal's token is a credential: it never reaches a log.
                    let path = crate::admin::redact_portal_path(req.uri().path());
                    tracing::info_span!("request", method = %req.method(), path = %path)
                })
                .on_response(
                    |resp: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            http.status = resp.status().as_u16(),
                            duration_ms = latency.as_secs_f64() * 1000.0,
                            "request"
                        );
                    },
                ),
        )
        .with_state(state)
}

/// Bounds a request's time once its headers are in (§14: a body that
/// never comes must not hold its connection): 408, and the connection
/// closes (its body was not read to the end).
async fn within(
    limit: Duration,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let mut resp = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                format!(
                    "the request was not received and answered within {} s",
                    limit.as_secs_f64()
                ),
            )
            .into_response();
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            resp
        }
    }
}

/// Counts requests by route template (never the raw path: ids would
/// make unbounded label values).
async fn count_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    crate::metrics::http_request(
        &method,
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// 404 for an unknown path: in the shape of the seed surface whose paths
/// it is under, else hookd's problem+json.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    crate::dialects::unrouted(uri.path(), || crate::dialects::Refusal::NoRoute).unwrap_or_else(
        || ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route").into_response(),
    )
}

async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    crate::dialects::unrouted(uri.path(), || crate::dialects::Refusal::NoMethod).unwrap_or_else(
        || {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not accept that method",
            )
            .into_response()
        },
    )
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "The database answers", body = Health),
              (status = 503, description = "The database does not answer", body = error::Problem)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), state.ops.store.ping()).await {
        Ok(Ok(())) => Ok(Json(Health { status: "ready" })),
        _ => Err(ApiError::unavailable("the database does not answer")),
    }
}
