//! Permissions and the principal a request acts as.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a provisioned API key may do within its tenant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Permission {
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    #[serde(rename = "webhooks:list")]
    WebhooksList,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    #[serde(rename = "events:publish")]
    EventsPublish,
    #[serde(rename = "deliveries:read")]
    DeliveriesRead,
    #[serde(rename = "deliveries:write")]
    DeliveriesWrite,
    /// Everything within the tenant, including its API keys.
    #[serde(rename = "admin")]
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::WebhooksRead,
        Permission::WebhooksList,
        Permission::WebhooksWrite,
        Permission::EventsPublish,
        Permission::DeliveriesRead,
        Permission::DeliveriesWrite,
        Permission::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::WebhooksRead => "webhooks:read",
            Permission::WebhooksList => "webhooks:list",
            Permission::WebhooksWrite => "webhooks:write",
            Permission::EventsPublish => "events:publish",
            Permission::DeliveriesRead => "deliveries:read",
            Permission::DeliveriesWrite => "deliveries:write",
            Permission::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|p| p.as_str()).collect();
                format!("unknown permission {s:?}; known: {}", known.join(", "))
            })
    }
}

/// Who is making a request, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A bootstrap (management) key: admin of every tenant, acting on `tenant`.
    Bootstrap { tenant: String },
    /// A provisioned key, bound to its own tenant.
    ApiKey {
        id: i64,
        tenant: String,
        permissions: Vec<Permission>,
    },
}

impl Principal {
    /// The tenant every operation of this request is scoped to.
    pub fn tenant(&self) -> &str {
        match self {
            Principal::Bootstrap { tenant } | Principal::ApiKey { tenant, .. } => tenant,
        }
    }

    pub fn is_bootstrap(&self) -> bool {
        matches!(self, Principal::Bootstrap { .. })
    }

    pub fn has(&self, needed: Permission) -> bool {
        match self {
            Principal::Bootstrap { .. } => true,
            Principal::ApiKey { permissions, .. } => {
                permissions.contains(&Permission::Admin) || permissions.contains(&needed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_every_permission_of_its_tenant() {
        let p = Principal::ApiKey {
            id: 1,
            tenant: "t".into(),
            permissions: vec![Permission::Admin],
        };
        assert!(Permission::ALL.iter().all(|&x| p.has(x)));
    }

    #[test]
    fn a_key_has_only_what_it_was_given() {
        let p = Principal::ApiKey {
            id: 1,
            tenant: "t".into(),
            permissions: vec![Permission::WebhooksRead],
        };
        assert!(p.has(Permission::WebhooksRead));
        assert!(!p.has(Permission::WebhooksWrite));
        assert!(!p.has(Permission::Admin));
    }

    #[test]
    fn permissions_round_trip_through_their_names() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Ok(p));
        }
        assert!(Permission::parse("webhooks:delete").is_err());
    }
}
