//! The JSON shapes of a webhook's §13 options: receiver authentication as
//! given (`AuthIn`) and as shown (`AuthOut`: its type and non-secret parts;
//! passwords, client secrets and private keys are never shown).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::receiver_auth::{AuthInput, ReceiverAuth};

/// How hookd authenticates to the receiver: `type` is `basic` (`username`,
/// `password`), `oauth2_client_credentials` (`token_url`, `client_id`,
/// `client_secret`, `scope?`, `audience?`) or `mtls` (`certificate`,
/// `private_key`, PEM). Secret parts are write-only: on PATCH, leave one
/// out to keep the stored one (an OAuth2 client secret only while the
/// token URL stays).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthIn {
    #[serde(rename = "type")]
    #[schema(example = "oauth2_client_credentials")]
    pub kind: String,
    pub username: Option<String>,
    /// Write-only.
    pub password: Option<String>,
    /// Reached through the same outbound safety as deliveries; https under
    /// `--url-policy strict`.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    /// Write-only.
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// PEM: the client certificate, then any intermediates.
    pub certificate: Option<String>,
    /// PEM; write-only; must match `certificate`.
    pub private_key: Option<String>,
}

impl From<AuthIn> for AuthInput {
    fn from(a: AuthIn) -> Self {
        Self {
            kind: a.kind,
            username: a.username,
            password: a.password,
            token_url: a.token_url,
            client_id: a.client_id,
            client_secret: a.client_secret,
            scope: a.scope,
            audience: a.audience,
            certificate: a.certificate,
            private_key: a.private_key,
        }
    }
}

/// Receiver authentication as shown: its type and non-secret parts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthOut {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The client certificate (public), PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

impl From<&ReceiverAuth> for AuthOut {
    fn from(a: &ReceiverAuth) -> Self {
        let mut out = Self {
            kind: a.kind(),
            username: None,
            token_url: None,
            client_id: None,
            scope: None,
            audience: None,
            certificate: None,
        };
        match a {
            ReceiverAuth::Basic { username, .. } => out.username = Some(username.clone()),
            ReceiverAuth::OAuth2(c) => {
                out.token_url = Some(c.token_url.clone());
                out.client_id = Some(c.client_id.clone());
                out.scope = c.scope.clone();
                out.audience = c.audience.clone();
            }
            ReceiverAuth::Mtls { certificate, .. } => out.certificate = Some(certificate.clone()),
        }
        out
    }
}
