//! The management operations, written once: webhooks, their secrets and
//! deliveries, event types, API keys, the event log. The JSON API, the
//! admin page and the CLI call them; each surface maps [`OpError`] into
//! its own answer in one place.
//!
//! Invariants: no HTTP type (request or response shapes, `ApiError`,
//! axum, utoipa) enters here; inputs are plain domain values and the
//! caller's tenant; time is an input (`now`, epoch ms): nothing here reads
//! a clock; every failure is one [`OpError`].

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::dispatcher::Dispatcher;
use crate::dispatcher::targets::TargetCache;
use crate::publish::Publisher;
use crate::store::Store;

pub mod api_keys;
pub mod backlog_pacer;
pub mod deliveries;
mod error;
pub mod event_types;
pub mod events;
pub mod portal_links;
pub mod webhook_actions;
pub mod webhook_control;
pub mod webhook_security;
pub mod webhooks;

pub use error::{OpError, OpResult, store_unavailable};

/// What the operations act on: the store and the parts of the running
/// service a change must reach (the dispatcher's caches, the key cache).
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    /// Validation needs the URL policy and the environments.
    pub settings: Arc<Settings>,
    pub publisher: Publisher,
    /// Present when this instance delivers (role worker or all).
    pub dispatcher: Option<Dispatcher>,
    /// Shared with the dispatcher: webhook changes invalidate entries.
    pub targets: Arc<TargetCache>,
    /// Event-type schemas for publishing; schema changes invalidate.
    pub schemas: Arc<crate::event_schemas::SchemaCache>,
    /// Its key cache forgets a revoked key at once.
    pub authenticator: Arc<Authenticator>,
    /// Makes resumed backlogs due a slice at a time (shared with the
    /// maintenance loop).
    pub pacer: Arc<backlog_pacer::BacklogPacer>,
}

impl Services {
    /// Re-queued work should not wait for the scheduler's next poll.
    pub fn wake_dispatcher(&self) {
        if let Some(d) = &self.dispatcher {
            d.wake();
        }
    }

    /// A webhook changed: drop the dispatcher's cached copy.
    pub fn webhook_changed(&self, id: i64) {
        self.targets.invalidate(id);
    }
}

/// One page of a log read newest first, and where the next (older) page
/// starts, if there is one.
#[derive(Debug)]
pub struct CursorPage<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<i64>,
}

impl<T> CursorPage<T> {
    /// From rows read with one more than `limit` asked for: trims to
    /// `limit`; the extra row only tells that a next page exists.
    fn from_rows(mut rows: Vec<T>, limit: u64, key: impl Fn(&T) -> i64) -> Self {
        let next_cursor = if rows.len() as u64 <= limit {
            None
        } else {
            rows.truncate(limit as usize);
            rows.last().map(key)
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}
