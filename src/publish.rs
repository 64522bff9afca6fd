//! Group commit for publishing: concurrent publish requests are gathered
//! into one transaction, so the cost of a commit (and its fsync) is shared
//! by every event in it. A request is answered only after its batch is
//! committed; new deliveries leased in that transaction go straight to the
//! dispatcher.

use std::sync::Arc;

use rand::RngCore;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::dispatcher::Dispatcher;
use crate::domain::delivery::{NewEvent, PublishedEvent};
use crate::store::{Store, StoreError};

/// Events per transaction, at most.
const MAX_BATCH_EVENTS: usize = 2_000;
/// Requests waiting for a batch, at most (then publishers wait: back-pressure).
const QUEUE: usize = 4_096;

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the publisher has stopped")]
    Stopped,
}

struct Request {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<PublishedEvent>, PublishError>>,
}

/// The handle publish requests go through.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Request>,
}

impl Publisher {
    /// Starts the committer. It stops when every `Publisher` clone is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        dispatcher: Option<Dispatcher>,
        clock: Arc<dyn Clock>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(commit_loop(store, dispatcher, clock, rx));
        (Self { tx }, task)
    }

    /// Stores `events` durably (with their deliveries) and answers for each.
    pub async fn publish(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<PublishedEvent>, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { events, reply })
            .await
            .map_err(|_| PublishError::Stopped)?;
        answer.await.map_err(|_| PublishError::Stopped)?
    }
}

async fn commit_loop(
    store: Arc<dyn Store>,
    dispatcher: Option<Dispatcher>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<Request>,
) {
    while let Some(first) = rx.recv().await {
        let mut requests = vec![first];
        let mut count = requests[0].events.len();
        while count < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.events.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(count);
        let mut sizes = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        for r in requests {
            sizes.push(r.events.len());
            events.extend(r.events);
            replies.push(r.reply);
        }
        let now = clock.now_ms();
        let lease = dispatcher.as_ref().map(|d| d.lease(now));
        match store.publish_events(&events, lease.as_ref(), now).await {
            Ok(batch) => {
                crate::metrics::events_published(events.len());
                if let Some(d) = &dispatcher {
                    d.submit(batch.jobs);
                    if batch.unleased > 0 {
                        d.note_backlog();
                    }
                }
                let mut results = batch.results.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(results.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "publishing a batch failed");
                let message = match &e {
                    StoreError::Database(db) => db.to_string(),
                    other => other.to_string(),
                };
                for reply in replies {
                    let _ = reply.send(Err(PublishError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// A new event id: `evt_` + a ULID (time-ordered, 80 random bits).
pub fn new_event_id(now_ms: i64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value: u128 = (now_ms as u128 & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= (*b as u128) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(30);
    out.push_str("evt_");
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (5 * i)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_unique_and_sort_by_time() {
        let a = new_event_id(1_000);
        let b = new_event_id(2_000);
        assert!(a.starts_with("evt_") && a.len() == 30);
        assert!(a < b);
        assert_ne!(new_event_id(1_000), new_event_id(1_000));
    }
}
