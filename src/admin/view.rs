//! What every signed-in page shows around its content, and small display
//! helpers shared by the pages.

use super::session::AdminSession;

/// The frame of a signed-in page: navigation, tenant, sign-out form.
pub struct Chrome {
    pub tenant: String,
    /// A management key's session may switch tenants.
    pub can_switch_tenant: bool,
    pub csrf: String,
    /// The navigation entry to mark current: webhooks, deliveries, settings.
    pub section: &'static str,
    /// A confirmation to show once (from a `done` code in the query).
    pub notice: Option<&'static str>,
    pub asset_version: &'static str,
    /// Where this session's pages are (`/admin` or a portal's base).
    pub base: String,
    /// A customer portal: no keys, settings, tenant switch or sign-out.
    pub portal: bool,
    /// A read-only portal: no action is offered.
    pub read_only: bool,
    /// The name in the header: hookd, or the portal's product name.
    pub product_name: String,
    /// Tenants the switcher lists (the current one always among them).
    pub tenants: Vec<String>,
}

impl Chrome {
    pub fn new(session: &AdminSession, section: &'static str, done: Option<&str>) -> Self {
        let mut tenants = session.known_tenants.clone();
        if !tenants.contains(&session.tenant) {
            tenants.push(session.tenant.clone());
            tenants.sort();
        }
        Self {
            tenant: session.tenant.clone(),
            can_switch_tenant: session.bootstrap && !session.is_portal(),
            csrf: session.csrf.clone(),
            section,
            notice: done.and_then(notice),
            asset_version: super::ASSET_VERSION,
            base: session.base.clone(),
            portal: session.is_portal(),
            read_only: session.read_only(),
            product_name: session
                .portal
                .as_ref()
                .map_or_else(|| "hookd".to_owned(), |p| p.product_name.clone()),
            tenants,
        }
    }
}

/// Confirmations by code: redirects carry a code, never text, so a link
/// cannot make the page say something it did not.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "created" => "Webhook created. Its signing secret is on its page (Edit).",
        "saved" => "Webhook saved.",
        "saved_rotated" => {
            "Webhook saved with its new secret. The previous one keeps signing alongside it for 24 hours."
        }
        "deleted" => "Webhook deleted.",
        "enabled" => "Webhook activated: it receives events again.",
        "disabled" => "Webhook deactivated: it receives no events until activated.",
        "rotated" => {
            "New secret generated. The previous one keeps signing alongside it for 24 hours."
        }
        "unsuspended" => {
            "Webhook unsuspended: new events are delivered again. Deliveries diverted while it \
             was suspended stay diverted until you retry them: use “Retry all failed and \
             diverted” on the webhook's page, or Retry on each delivery."
        }
        "recovered" => {
            "Failed and diverted deliveries of the last 30 days queued for another attempt now."
        }
        "paused" => {
            "Webhook paused: its deliveries wait as pending, neither attempted nor aging, until \
             you resume it."
        }
        "resumed" => {
            "Webhook resumed: the deliveries that waited go out in publish order, at its rate \
             limit."
        }
        "example_sent" => "Example event sent: its delivery is listed below.",
        "retried" => "Delivery queued for another attempt now.",
        "key_revoked" => "API key revoked.",
        "key_created" => "API key created.",
        "type_added" => "Event type added: webhooks can subscribe to it now.",
        "type_schema" => {
            "Schema and example saved: events of this type are checked against the schema from now on."
        }
        "type_restored" => "Event type restored: new subscriptions to it are accepted again.",
        "type_archived" => {
            "Event type archived: existing subscriptions keep it; new ones are refused."
        }
        "tested" => "Test event (webhook.test) sent: its delivery is listed below.",
        "settings" => "Settings saved. They apply to every delivery attempted from now on.",
        "settings_reset" => "Settings reset to the values hookd was started with.",
        _ => return None,
    })
}

/// `2026-11-24 07:40:12 UTC`.
pub fn display_time(ms: i64) -> String {
    crate::clock::format_rfc3339(ms)
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}
