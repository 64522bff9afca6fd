//! Group commit: one loop per instance gathers every concurrent publish
//! request and every delivery outcome waiting at that moment into one
//! transaction, so the cost of a commit (its round trips and its fsync) is
//! shared by all of them. On PostgreSQL several such transactions are in
//! flight at once (`Store::commit_lanes`). A publish is answered only after its batch is
//! committed; the deliveries it leased go straight to the dispatcher.

use std::sync::{Arc, Mutex};

use rand::RngCore;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::dispatcher::Dispatcher;
use crate::domain::delivery::{NewEvent, Outcome, PublishedEvent};
use crate::store::{CommitBatch, Store};

/// Events per transaction, at most.
const MAX_BATCH_EVENTS: usize = 2_000;
/// Outcomes per transaction, at most.
const MAX_BATCH_OUTCOMES: usize = 2_000;
/// Requests waiting for a batch, at most (then publishers wait: back-pressure).
const QUEUE: usize = 4_096;
/// On one commit lane (SQLite), while publishes come steadily (a smoothed
/// gap under `STEADY_GAP_MS`), a batch of outcomes alone waits for the
/// next publish to commit with: until two gaps have passed since the last
/// publish (under 10 ms), or until `OUTCOMES_ENOUGH` have come. Measured
/// at 1,500 events/s to 10 webhooks: every publish and every handful of
/// outcomes had a commit of its own, 1,700 commits and fsyncs a second,
/// and the writer thread spent half of hookd's CPU on them. Only while publishes are steady: a lone
/// publish's outcome is in the log as soon as it can be (what a client
/// checking the log right after its receiver got the event expects). A
/// lease far longer than the wait keeps the delivery safe if the process
/// dies meanwhile.
const STEADY_GAP_MS: f64 = 5.0;
const OUTCOMES_ENOUGH: usize = 256;
/// The weight of the newest gap in the smoothed one: about twenty
/// publishes in quick succession make a pace steady.
const PACE_WEIGHT: f64 = 0.25;

/// How often publishes come (an exponentially weighted mean of the gaps
/// between them, starting from a second).
#[derive(Debug)]
struct PublishPace {
    last: Option<std::time::Instant>,
    gap_ms: f64,
}

impl Default for PublishPace {
    fn default() -> Self {
        Self {
            last: None,
            gap_ms: 1_000.0,
        }
    }
}

impl PublishPace {
    fn arrived(&mut self, at: std::time::Instant) {
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last).as_secs_f64() * 1_000.0;
            self.gap_ms += PACE_WEIGHT * (gap - self.gap_ms);
        }
        self.last = Some(at);
    }

    /// Until when outcomes may wait for the next publish (two gaps after
    /// the last one): none unless publishes come steadily and the next
    /// is still to be expected at `now` (a pace that stopped is not
    /// waited for).
    fn linger_until(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        let last = self.last?;
        let until = last + std::time::Duration::from_secs_f64(2.0 * self.gap_ms / 1_000.0);
        (self.gap_ms < STEADY_GAP_MS && until > now).then_some(until)
    }
}

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

/// Where delivery outcomes go to be recorded.
pub type OutcomeSender = mpsc::UnboundedSender<Outcome>;

impl Publisher {
    /// Starts the commit loop on the engine runtime. It ends once every `Publisher` clone is
    /// dropped and either every outcome sender is dropped or `flush` is
    /// cancelled (then it records what is queued and stops).
    pub fn start(
        store: Arc<dyn Store>,
        dispatcher: Option<Dispatcher>,
        clock: Arc<dyn Clock>,
        outcomes: mpsc::UnboundedReceiver<Outcome>,
        flush: CancellationToken,
        engine: &tokio::runtime::Handle,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let lanes = store.commit_lanes().max(1);
        let commit_loop = CommitLoop {
            store,
            dispatcher,
            clock,
            requests: rx,
            outcomes,
            flush,
            carried: Carried::default(),
            pace: PublishPace::default(),
            lanes: Arc::new(Semaphore::new(lanes)),
            lane_count: lanes as u32,
        };
        let task = engine.spawn(commit_loop.run());
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

struct CommitLoop {
    store: Arc<dyn Store>,
    dispatcher: Option<Dispatcher>,
    clock: Arc<dyn Clock>,
    requests: mpsc::Receiver<Request>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    flush: CancellationToken,
    /// Outcomes whose write failed: they go into the next transaction.
    carried: Carried,
    /// One permit per commit that may be in flight (`Store::commit_lanes`).
    lanes: Arc<Semaphore>,
    lane_count: u32,
    pace: PublishPace,
}

type Carried = Arc<Mutex<Vec<Outcome>>>;

impl CommitLoop {
    /// Gathers a batch, waits for a free lane, gathers what came meanwhile,
    /// and hands the batch to a commit of its own. With one lane (SQLite)
    /// a batch gathers while the previous one commits; with several
    /// (PostgreSQL) commits overlap.
    async fn run(mut self) {
        let mut requests_open = true;
        let mut outcomes_open = true;
        loop {
            let mut requests = Vec::new();
            let mut outcomes = std::mem::take(&mut *lock(&self.carried));
            if outcomes.is_empty() {
                if !requests_open && (!outcomes_open || self.flush.is_cancelled()) {
                    // Whatever commits are in flight may hand outcomes back;
                    // whatever outcomes are queued still get recorded.
                    let all = self.lanes.acquire_many(self.lane_count).await;
                    drop(all);
                    outcomes = std::mem::take(&mut *lock(&self.carried));
                    if let Ok(o) = self.outcomes.try_recv() {
                        outcomes.push(o);
                    }
                    if outcomes.is_empty() {
                        return;
                    }
                } else {
                    tokio::select! {
                        r = self.requests.recv(), if requests_open => match r {
                            Some(r) => requests.push(r),
                            None => requests_open = false,
                        },
                        o = self.outcomes.recv(), if outcomes_open => match o {
                            Some(o) => outcomes.push(o),
                            None => outcomes_open = false,
                        },
                        _ = self.flush.cancelled(), if !requests_open => {}
                    }
                }
            }
            let lane = self
                .lanes
                .clone()
                .acquire_owned()
                .await
                .expect("the lanes are never closed");
            outcomes.append(&mut lock(&self.carried));
            self.gather(&mut requests, &mut outcomes);
            if let Some(until) = self.pace.linger_until(std::time::Instant::now())
                && self.lane_count == 1
                && requests.is_empty()
                && !outcomes.is_empty()
            {
                self.linger(
                    until.into(),
                    &mut requests,
                    &mut outcomes,
                    &mut requests_open,
                    &mut outcomes_open,
                )
                .await;
                self.gather(&mut requests, &mut outcomes);
            }
            let now = std::time::Instant::now();
            for _ in &requests {
                self.pace.arrived(now);
            }
            if requests.is_empty() && outcomes.is_empty() {
                continue;
            }
            let commit = Commit {
                store: self.store.clone(),
                dispatcher: self.dispatcher.clone(),
                now: self.clock.now_ms(),
                lanes: self.lane_count as usize,
                carried: self.carried.clone(),
            };
            tokio::spawn(async move {
                commit.run(requests, outcomes).await;
                drop(lane);
            });
        }
    }

    /// Adds what is queued to the batch, up to a batch's limits.
    fn gather(&mut self, requests: &mut Vec<Request>, outcomes: &mut Vec<Outcome>) {
        let mut count: usize = requests.iter().map(|r| r.events.len()).sum();
        while count < MAX_BATCH_EVENTS {
            match self.requests.try_recv() {
                Ok(r) => {
                    count += r.events.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        while outcomes.len() < MAX_BATCH_OUTCOMES {
            match self.outcomes.try_recv() {
                Ok(o) => outcomes.push(o),
                Err(_) => break,
            }
        }
    }

    /// Holds a batch of outcomes alone until a publish comes to share its
    /// commit, `OUTCOMES_ENOUGH` have come, `deadline` has passed, or the
    /// loop is told to flush. An outcome of a fifo queue ends the wait:
    /// the queue's next delivery is claimable only once it is recorded.
    async fn linger(
        &mut self,
        deadline: tokio::time::Instant,
        requests: &mut Vec<Request>,
        outcomes: &mut Vec<Outcome>,
        requests_open: &mut bool,
        outcomes_open: &mut bool,
    ) {
        if outcomes.iter().any(|o| o.ordered) {
            return;
        }
        while requests.is_empty()
            && outcomes.len() < OUTCOMES_ENOUGH
            && (*requests_open || *outcomes_open)
            && !self.flush.is_cancelled()
        {
            tokio::select! {
                r = self.requests.recv(), if *requests_open => match r {
                    Some(r) => requests.push(r),
                    None => *requests_open = false,
                },
                o = self.outcomes.recv(), if *outcomes_open => match o {
                    Some(o) => {
                        let ordered = o.ordered;
                        outcomes.push(o);
                        if ordered {
                            return;
                        }
                    }
                    None => *outcomes_open = false,
                },
                _ = tokio::time::sleep_until(deadline) => return,
                _ = self.flush.cancelled() => return,
            }
        }
    }
}

fn lock(carried: &Carried) -> std::sync::MutexGuard<'_, Vec<Outcome>> {
    carried
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One batch's transaction and what follows it: answers, jobs, wake-ups.
struct Commit {
    store: Arc<dyn Store>,
    dispatcher: Option<Dispatcher>,
    now: i64,
    /// Commits that may run beside this one (they share the lease room).
    lanes: usize,
    carried: Carried,
}

impl Commit {
    async fn run(self, requests: Vec<Request>, outcomes: Vec<Outcome>) {
        let mut events = Vec::new();
        let mut sizes = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        for r in requests {
            sizes.push(r.events.len());
            events.extend(r.events);
            replies.push(r.reply);
        }
        let now = self.now;
        let event_count = events.len();
        let batch = CommitBatch {
            events,
            lease: self.dispatcher.as_ref().map(|d| d.lease(now, self.lanes)),
            outcomes,
        };
        let started = std::time::Instant::now();
        let result = self.store.commit_batch(batch, now).await;
        crate::metrics::store_commit(result.is_ok(), started.elapsed().as_secs_f64());
        match result {
            Ok(committed) => {
                tracing::debug!(
                    events = event_count,
                    outcomes = committed.outcomes.len(),
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "batch committed"
                );
                crate::metrics::events_published(event_count);
                let published = committed.published;
                crate::metrics::events_filtered(published.filtered);
                if let Some(d) = &self.dispatcher {
                    d.outcomes_recorded(&committed.outcomes, &committed.suspended);
                    d.submit(published.jobs);
                    if published.unleased > 0 {
                        d.note_backlog();
                    }
                }
                let mut results = published.results.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(results.by_ref().take(n).collect()));
                }
            }
            Err(failed) => {
                tracing::error!(
                    error = %failed.error,
                    events = event_count,
                    outcomes = failed.outcomes.len(),
                    "committing a batch failed; publishes are refused, outcomes kept for the next one"
                );
                let message = failed.error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(PublishError::Unavailable(message.clone())));
                }
                if !failed.outcomes.is_empty() {
                    lock(&self.carried).extend(failed.outcomes);
                    // Do not spin on a database that is down: this lane
                    // stays taken meanwhile.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
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
    fn outcomes_wait_only_while_publishes_come_steadily() {
        let start = std::time::Instant::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        let mut pace = PublishPace::default();
        // A lone publish, and a few in a row: no wait.
        pace.arrived(at(0));
        assert_eq!(pace.linger_until(at(0)), None);
        for i in 1..=5 {
            pace.arrived(at(i));
        }
        assert_eq!(pace.linger_until(at(5)), None, "five are not a pace");
        // A publish a millisecond for a while: wait two gaps after the last.
        for i in 6..=60 {
            pace.arrived(at(i));
        }
        let until = pace.linger_until(at(60)).expect("steady publishes");
        assert!(until > at(61) && until < at(63), "{:?}", until - at(60));
        // Publishes that stopped are not waited for.
        assert_eq!(pace.linger_until(at(63)), None, "the pace stopped");
        // One every 4 ms: still steady, a wait of under 10 ms.
        for i in 1..=40 {
            pace.arrived(at(60 + 4 * i));
        }
        let until = pace.linger_until(at(220)).expect("steady publishes");
        assert!(until > at(226) && until < at(230), "{:?}", until - at(220));
        // A pause of a second ends it at once.
        pace.arrived(at(1_300));
        assert_eq!(pace.linger_until(at(1_300)), None);
    }

    #[test]
    fn event_ids_are_unique_and_sort_by_time() {
        let a = new_event_id(1_000);
        let b = new_event_id(2_000);
        assert!(a.starts_with("evt_") && a.len() == 30);
        assert!(a < b);
        assert_ne!(new_event_id(1_000), new_event_id(1_000));
    }
}
