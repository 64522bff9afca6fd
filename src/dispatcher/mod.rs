//! Delivery: claim → sign → send → record.
//!
//! Jobs reach the dispatcher two ways: straight from the publisher, which
//! leases new deliveries in the same transaction that stores them (no claim
//! query, no polling), and from the scheduler, which claims due deliveries
//! (retries, backlog, leases left by a dead process). Each job runs as a
//! task: rate limit, then an in-flight permit, then one HTTP attempt. Its
//! outcome goes to the commit loop (`publish`), which records it in its next
//! transaction together with new publishes.
//!
//! Invariants: a job is in memory only while its delivery is leased to this
//! instance; the lease outlives the longest wait a job can have (owned jobs
//! ÷ in-flight permits × the longest timeout); nothing is acknowledged to a
//! publisher that is not committed, so losing this memory loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::delivery::{DeliveryJob, DeliveryStatus, ErrorKind, ExhaustedDelivery, Outcome};
use crate::domain::retry::{next_delay_ms, parse_retry_after};
use crate::publish::OutcomeSender;
use crate::store::{Lease, Store};

pub mod attempt;
pub mod clients;
pub mod failure_log;
pub mod http1;
pub mod oauth;
pub mod outbound;
pub mod policy;
pub mod pool;
pub mod rate_limit;
pub mod signing;
pub mod targets;

use attempt::{AttemptResult, Outbound, attempt};
use clients::Clients;
use oauth::TokenCache;
use outbound::AddressPolicy;
pub use policy::{DeliveryPolicy, SharedPolicy};
use rate_limit::RateLimiter;
use targets::{Target, TargetCache};

/// Jobs this instance holds at once (queued, waiting or in flight).
const MAX_OWNED: usize = 2048;
/// Concurrent HTTP attempts.
const MAX_IN_FLIGHT: usize = 512;
/// Lease length: MAX_OWNED / MAX_IN_FLIGHT × the 20 s longest timeout, with margin.
pub const LEASE_MS: i64 = 120_000;
/// The scheduler looks for due work at least this often (other instances'
/// backlog, clock drift), even when nothing woke it.
const POLL_MS: i64 = 1_000;
/// A rate-limited job waits in memory up to this long; longer, it is
/// deferred back to the store.
const MAX_RATE_WAIT_MS: u64 = 1_000;
const CLAIM_BATCH: usize = 500;
/// How often an instance says it is alive (shared databases).
const HEARTBEAT_MS: i64 = 3_000;
/// An instance silent this long is dead: its leases are taken over.
const DEAD_AFTER_MS: i64 = 15_000;

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    policy: SharedPolicy,
    owner: String,
    targets: Arc<TargetCache>,
    limiter: RateLimiter,
    clients: Clients,
    tokens: TokenCache,
    permits: Semaphore,
    owned: AtomicUsize,
    /// Due work was left in the store for lack of capacity.
    backlog: AtomicBool,
    wake: Notify,
    /// To the commit loop, which records outcomes in its next transaction.
    outcomes: OutcomeSender,
    jobs: TaskTracker,
    /// The engine runtime, where jobs run (see `app::EngineRuntime`).
    runtime: tokio::runtime::Handle,
    /// Stop taking work (shutdown).
    stop: CancellationToken,
    /// Failed attempts at the default level, bounded.
    failures: failure_log::FailureLog,
}

/// The running dispatcher's background task.
pub struct DispatcherTasks {
    scheduler: tokio::task::JoinHandle<()>,
}

/// What the dispatcher is built from.
pub struct DispatcherParts {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub policy: SharedPolicy,
    pub targets: Arc<TargetCache>,
    pub clock: Arc<dyn Clock>,
    /// This instance's name on the leases it takes.
    pub owner: String,
    pub outcomes: OutcomeSender,
    /// The engine runtime its scheduler and jobs run on.
    pub engine: tokio::runtime::Handle,
}

impl Dispatcher {
    pub fn start(parts: DispatcherParts) -> (Self, DispatcherTasks) {
        let DispatcherParts {
            store,
            settings,
            policy,
            targets,
            clock,
            owner,
            outcomes,
            engine,
        } = parts;
        let addresses = AddressPolicy {
            allow_private: settings.allow_private_targets,
            allowed: settings.allowed_target_cidrs.clone(),
        };
        let inner = Arc::new(Inner {
            clients: Clients::new(addresses),
            tokens: TokenCache::default(),
            store,
            clock,
            settings,
            policy,
            owner,
            targets,
            limiter: RateLimiter::default(),
            permits: Semaphore::new(MAX_IN_FLIGHT),
            owned: AtomicUsize::new(0),
            backlog: AtomicBool::new(true),
            wake: Notify::new(),
            outcomes,
            jobs: TaskTracker::new(),
            runtime: engine.clone(),
            stop: CancellationToken::new(),
            failures: failure_log::FailureLog::default(),
        });
        let tasks = DispatcherTasks {
            scheduler: engine.spawn(scheduler_loop(inner.clone())),
        };
        (Self { inner }, tasks)
    }

    /// The lease a publish batch may take on its new deliveries: its share
    /// of the free room when `sharing` batches commit at once, so that
    /// together they stay within it.
    pub fn lease(&self, now: i64, sharing: usize) -> Lease {
        let free = MAX_OWNED.saturating_sub(self.inner.owned.load(Ordering::Relaxed));
        Lease {
            owner: self.inner.owner.clone(),
            until: now + LEASE_MS,
            max: free / sharing.max(1),
        }
    }

    /// Starts leased jobs.
    pub fn submit(&self, jobs: Vec<DeliveryJob>) {
        submit(&self.inner, jobs);
    }

    /// Due work was left in the store: claim it when there is room.
    pub fn note_backlog(&self) {
        self.inner.backlog.store(true, Ordering::Relaxed);
        self.inner.wake.notify_one();
    }

    /// Wakes the scheduler (a delivery was re-queued).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The commit loop recorded these outcomes: their jobs are done.
    pub fn outcomes_recorded(&self, outcomes: &[Outcome], suspended: &[i64]) {
        let inner = &self.inner;
        for &id in suspended {
            tracing::warn!(webhook.id = id, "webhook suspended by its failure handling");
            inner.targets.invalidate(id);
        }
        inner.owned.fetch_sub(outcomes.len(), Ordering::Relaxed);
        // The end of a fifo queue's head lets its next delivery be claimed.
        let rescheduled = outcomes
            .iter()
            .any(|o| o.next_attempt_at.is_some() || (o.ordered && o.status.is_terminal()));
        if rescheduled || inner.backlog.load(Ordering::Relaxed) {
            inner.wake.notify_one();
        }
    }

    /// Stops taking work and lets in-flight attempts finish (up to
    /// `grace`); jobs that had not started are handed back as outcomes.
    /// The caller then lets the commit loop flush, and releases leases.
    pub async fn shutdown(&self, tasks: DispatcherTasks, grace: Duration) {
        let inner = &self.inner;
        inner.stop.cancel();
        let _ = tasks.scheduler.await;
        inner.jobs.close();
        if tokio::time::timeout(grace, inner.jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "attempts still running after the grace period; their leases are released"
            );
        }
    }
}

fn submit(inner: &Arc<Inner>, jobs: Vec<DeliveryJob>) {
    inner.owned.fetch_add(jobs.len(), Ordering::Relaxed);
    for job in jobs {
        let inner2 = inner.clone();
        // Boxed: a job's future is about 3.5 KB, and a task copies its
        // future in whole when it is spawned and again when it completes.
        let job = Box::pin(async move {
            let outcome = run_job(&inner2, &job).await;
            crate::metrics::delivery_outcome(&outcome);
            // The receiver lives as long as `inner`; a send error cannot happen.
            let _ = inner2.outcomes.send(outcome);
        });
        inner.jobs.spawn_on(job, &inner.runtime);
    }
}

/// The outcome that hands a job back untouched, due at `at`.
fn release(job: &DeliveryJob, at: i64) -> Outcome {
    Outcome {
        delivery_id: job.delivery_id,
        tenant_id: job.tenant_id.clone(),
        webhook_id: job.webhook_id,
        status: if job.attempts == 0 {
            DeliveryStatus::Pending
        } else {
            DeliveryStatus::Retrying
        },
        next_attempt_at: Some(at),
        attempt: None,
        min_failures: 0,
        suspend_after_ms: 0,
        gone: false,
        ordered: job.ordered,
        exhausted: None,
    }
}

/// The outcome that parks a job of a paused webhook: it keeps its status
/// and waits without a due time until the webhook is resumed.
fn park(job: &DeliveryJob) -> Outcome {
    Outcome {
        next_attempt_at: None,
        ..release(job, 0)
    }
}

fn no_attempt(job: &DeliveryJob, status: DeliveryStatus) -> Outcome {
    Outcome {
        status,
        next_attempt_at: None,
        ..release(job, 0)
    }
}

async fn run_job(inner: &Inner, job: &DeliveryJob) -> Outcome {
    let now = inner.clock.now_ms();
    let target = match inner
        .targets
        .get(inner.store.as_ref(), &job.tenant_id, job.webhook_id, now)
        .await
    {
        Ok(Some(t)) => t,
        Ok(None) => {
            inner.clients.forget(job.webhook_id);
            return no_attempt(job, DeliveryStatus::Failed);
        }
        Err(e) => {
            tracing::warn!(error = %e, delivery.id = job.delivery_id, "could not load the webhook; retrying soon");
            return release(job, now + 1_000);
        }
    };
    if target.suspended || !target.enabled {
        return no_attempt(job, DeliveryStatus::Diverted);
    }
    if target.paused {
        return park(job);
    }
    if let Some(rate) = target.rate_limit {
        let wait = inner.limiter.reserve(job.webhook_id, rate, now);
        if wait > MAX_RATE_WAIT_MS {
            inner.limiter.refund(job.webhook_id, rate);
            return release(job, now + wait as i64);
        }
        if wait > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = inner.stop.cancelled() => return release(job, now),
            }
        }
    }
    let _permit = tokio::select! {
        p = inner.permits.acquire() => p.expect("the semaphore is never closed"),
        _ = inner.stop.cancelled() => return release(job, inner.clock.now_ms()),
    };
    let now = inner.clock.now_ms();
    let client = match inner
        .clients
        .client_for(job.webhook_id, target.tls.as_deref())
    {
        Ok(c) => c,
        Err(why) => {
            let result = AttemptResult::not_sent(&target, now, ErrorKind::Tls, why);
            return decide(inner, job, &target, result, now);
        }
    };
    let out = Outbound {
        client: &client,
        tokens: &inner.tokens,
        clock: inner.clock.as_ref(),
    };
    let result = attempt(
        &out,
        &target,
        job,
        &inner.settings.idempotency_prefix,
        inner.settings.default_timeout_ms,
        now,
    )
    .await;
    tracing::debug!(
        delivery.id = job.delivery_id,
        webhook.id = job.webhook_id,
        attempt = job.attempts + 1,
        http.status = result.status(),
        duration_ms = result.record.duration_ms,
        "attempt"
    );
    decide(inner, job, &target, result, inner.clock.now_ms())
}

/// What an attempt means for its delivery: the retry policy applied.
fn decide(
    inner: &Inner,
    job: &DeliveryJob,
    target: &Target,
    result: AttemptResult,
    now: i64,
) -> Outcome {
    let policy = inner.policy.read().expect("policy lock");
    let schedule = target
        .retry_schedule_ms
        .as_ref()
        .unwrap_or(&policy.retry_schedule_ms);
    let (min_failures, suspend_after_ms) = target
        .failure_handling
        .map_or((policy.min_failures, policy.suspend_after_ms), |f| {
            (f.min_failures, f.suspend_after_ms)
        });
    let (status, next_attempt_at, gone) = if result.succeeded() {
        (DeliveryStatus::Succeeded, None, false)
    } else if result.status() == Some(410) {
        tracing::warn!(
            webhook.id = job.webhook_id,
            "receiver answered 410 Gone: suspending the webhook"
        );
        (DeliveryStatus::Diverted, None, true)
    } else {
        let retry_after = result
            .retry_after
            .as_deref()
            .and_then(|v| parse_retry_after(v, now));
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        match next_delay_ms(schedule, job.retry_step + 1, jitter, retry_after) {
            Some(delay) => (DeliveryStatus::Retrying, Some(now + delay as i64), false),
            None => (DeliveryStatus::Failed, None, false),
        }
    };
    // Not held while the failure is logged.
    drop(policy);
    if !result.succeeded() {
        let next = match (status, next_attempt_at) {
            (DeliveryStatus::Retrying, Some(at)) => {
                format!("retrying at {}", crate::clock::format_rfc3339(at))
            }
            (DeliveryStatus::Diverted, _) => "the webhook is suspended (410 Gone)".to_owned(),
            _ => "failed: no retry left".to_owned(),
        };
        inner.failures.attempt_failed(
            job.delivery_id,
            job.webhook_id,
            i64::from(job.attempts) + 1,
            &result.record,
            &next,
        );
    }
    let exhausted = (status == DeliveryStatus::Failed).then(|| ExhaustedDelivery {
        event_id: job.event_id.clone(),
        event_type: job.event_type.clone(),
    });
    Outcome {
        delivery_id: job.delivery_id,
        tenant_id: job.tenant_id.clone(),
        webhook_id: job.webhook_id,
        status,
        next_attempt_at,
        attempt: Some(result.record),
        min_failures,
        suspend_after_ms,
        gone,
        ordered: job.ordered,
        exhausted,
    }
}

async fn scheduler_loop(inner: Arc<Inner>) {
    let mut jumps = inner.clock.jumps();
    let mut failures = 0u32;
    let mut last_heartbeat = 0;
    loop {
        if inner.stop.is_cancelled() {
            return;
        }
        let now = inner.clock.now_ms();
        if now - last_heartbeat >= HEARTBEAT_MS {
            last_heartbeat = now;
            keep_alive(&inner, now).await;
        }
        let room = MAX_OWNED.saturating_sub(inner.owned.load(Ordering::Relaxed));
        let want = room.min(CLAIM_BATCH);
        if want > 0 {
            inner.backlog.store(false, Ordering::Relaxed);
            match inner
                .store
                .claim_due_deliveries(&inner.owner, now, now + LEASE_MS, want)
                .await
            {
                Ok(jobs) => {
                    failures = 0;
                    let full = jobs.len() == want;
                    submit(&inner, jobs);
                    if full {
                        inner.backlog.store(true, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "claiming due deliveries failed; backing off");
                    backoff(&inner, failures).await;
                    continue;
                }
            }
        } else {
            inner.backlog.store(true, Ordering::Relaxed);
        }
        let remote_work = inner.store.work_signal();
        let next_due = if want > 0 {
            inner.store.next_due_at().await.ok().flatten()
        } else {
            None
        };
        let wait_ms = next_due.map_or(POLL_MS, |t| (t - now).clamp(5, POLL_MS));
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = async {
                match &remote_work {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = crate::clock::jumped(&mut jumps) => {}
            _ = inner.stop.cancelled() => return,
        }
    }
}

/// On a shared database: says this instance is alive, and frees the leases
/// of instances that stopped saying so (killed, or cut off).
async fn keep_alive(inner: &Inner, now: i64) {
    if let Err(e) = inner.store.heartbeat(&inner.owner, now).await {
        tracing::warn!(error = %e, "heartbeat failed");
        return;
    }
    match inner
        .store
        .release_dead_leases(now, now - DEAD_AFTER_MS)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            deliveries = n,
            "took over the leases of an instance that stopped"
        ),
        Err(e) => tracing::warn!(error = %e, "releasing dead instances' leases failed"),
    }
}

async fn backoff(inner: &Inner, failures: u32) {
    let ms = (100u64 << failures.min(6)).min(5_000);
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
        _ = inner.stop.cancelled() => {}
    }
}
