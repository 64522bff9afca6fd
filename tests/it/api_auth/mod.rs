//! §2: authentication, provisioned API keys, permissions and tenants.

use crate::common::{assert_problem, full};

use crate::common::{MGMT_KEY, ServerConfig, TestServer, assert_field_error, send};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

mod api_keys;
mod authentication;
mod permissions;
mod tenants;
mod throttling;

const HOOKS: &str = "/management/webhooks";
const KEYS: &str = "/management/api-keys";

fn hook(url: &str) -> Value {
    json!({"name": "hook", "url": url, "events": ["license.created"]})
}

/// A request as `key`, with an optional X-Tenant-Id.
fn as_key(
    s: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    tenant: Option<&str>,
) -> reqwest::RequestBuilder {
    let rb = s.req_as(key, method, path);
    match tenant {
        Some(t) => rb.header("X-Tenant-Id", t),
        None => rb,
    }
}

/// Provisions a key through the API and returns the whole answer.
async fn provision(s: &TestServer, name: &str, tenant: &str, permissions: &[&str]) -> Value {
    let (status, body) = s
        .post(
            KEYS,
            json!({"name": name, "tenant": tenant, "permissions": permissions}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- 401
