//! [`AppState`]: what every request handler can reach, the JSON API's
//! and the admin page's alike. It lives apart from both surfaces so that
//! neither imports the other; the operations' part is [`Services`].

use std::sync::Arc;

use crate::clock::Clock;
use crate::crypto::Cipher;
use crate::dispatcher::SharedPolicy;
use crate::ops::Services;

/// The shared state of the HTTP app (cheap to clone: handles only).
#[derive(Clone)]
pub struct AppState {
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
