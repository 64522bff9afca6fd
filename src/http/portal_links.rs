//! `/management/portal-links`: single-use links to a tenant's customer
//! portal (SPEC §11), made by an admin of the tenant.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, Auth, bearer_key};
use crate::clock::format_rfc3339;
use crate::crypto::hash_api_key;
use crate::ops::portal_links::{self as ops, NewPortalLink};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalLinkIn {
    /// The tenant whose portal the link opens; the caller's tenant when
    /// absent. A provisioned key makes links for its own tenant only.
    pub tenant: Option<String>,
    /// How long the link may wait to be opened: a duration such as `30m`
    /// or `2h`; default `1h`, at most `24h`.
    #[schema(example = "1h")]
    pub expires_in: Option<String>,
    /// The portal shows webhooks, deliveries and event types but offers no
    /// action (no secret either).
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalLinkOut {
    /// Opens the portal once (put it in an iframe's `src`, or redirect to it).
    #[schema(example = "https://hooks.example.com/portal/links/q1w2….e3r4…")]
    pub url: String,
    pub expires_at: String,
    pub tenant: String,
    pub read_only: bool,
}

/// The address the link is under: `--public-url`, else the `Host` this
/// request was sent to.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.ops.settings.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b'/'))
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

#[utoipa::path(
    post, path = "/management/portal-links", tag = "portal",
    description = "Makes a single-use link that opens the customer portal of one tenant (its webhooks, \
                   deliveries and event catalogue). The link expires unused after `expires_in`; once \
                   used, the portal stays open for 4 hours. Needs `admin` of the tenant.",
    request_body = PortalLinkIn,
    responses((status = 201, body = PortalLinkOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, description = "Not an admin of that tenant", body = Problem)),
    security(("bearer" = []))
)]
pub async fn create_portal_link(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(input): ApiJson<PortalLinkIn>,
) -> ApiResult<(StatusCode, Json<PortalLinkOut>)> {
    // Auth accepted this key: the portal lives as long as it does.
    let key_ref = state
        .ops
        .authenticator
        .session_key_ref(&hash_api_key(bearer_key(&headers).unwrap_or_default()));
    let made = ops::create_portal_link(
        &state.ops,
        &state.cipher,
        &auth.0,
        key_ref,
        NewPortalLink {
            tenant: input.tenant,
            expires_in: input.expires_in,
            read_only: input.read_only,
        },
        state.clock.now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(PortalLinkOut {
            url: format!(
                "{}/portal/links/{}",
                public_base(&state, &headers),
                made.token
            ),
            expires_at: format_rfc3339(made.expires_at),
            tenant: made.tenant,
            read_only: made.read_only,
        }),
    ))
}
