//! [`AppState`]: what every request handler can reach, the JSON API's
//! and the admin page's alike. It lives apart from both surfaces so that
//! neither imports the other; the operations' part is [`Services`].

use std::sync::Arc;

use crate::clock::Clock;
use crate::crypto::Cipher;
use crate::dispatcher::SharedPolicy;
use crate::ops::Services;

/// The shared state of the HTTP app: one handle, cloned for each request
/// (several times: every extractor and middleware that takes the state
/// gets its own copy), so a clone is one reference count, not one per
/// field.
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    pub fn new(parts: AppStateParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppStateParts {
    /// What the operations act on (store, settings, engine, key cache).
    pub ops: Services,
    /// The one clock: handlers read `now` here and pass it down.
    pub clock: Arc<dyn Clock>,
    /// The service-wide delivery defaults, changed on the admin page.
    pub policy: SharedPolicy,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Signs the admin page's session cookies.
    pub cipher: Arc<Cipher>,
}
