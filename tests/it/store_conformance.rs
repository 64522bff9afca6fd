//! One conformance suite for every `Store` backend: each test takes a
//! fresh store and runs once per backend, as `sqlite::<test>` (always) and
//! `postgres::<test>` (ignored unless asked for: it needs a server, and
//! `scripts/test` runs it when one answers at `HOOKD_TEST_DATABASE_URL`;
//! each test in a fresh database, created and dropped).

use std::sync::Arc;
use std::time::Duration;

use hookd::crypto::Cipher;
use hookd::domain::delivery::{AttemptRecord, DeliveryStatus, NewEvent, Outcome};
use hookd::domain::webhook::{Headers, Webhook};
use hookd::store::{
    AdminSessionRecord, CommitBatch, DeliveryFilter, EventTypeRecord, HistogramRow, Lease,
    PortalLinkRecord, PortalLinkUse, PostgresStore, PublishBatch, SqliteStore, Store,
    WebhookFilter,
};

use crate::common;

struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    /// The SQLite store's data directory (a scratch one for PostgreSQL).
    dir: tempfile::TempDir,
    _db: Option<common::pg::TestDatabase>,
}

fn cipher() -> Arc<Cipher> {
    Arc::new(Cipher::from_key(&[9u8; 32]))
}

/// A fresh SQLite store: real files in a temp dir.
async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), cipher(), false)
        .await
        .unwrap();
    Backend {
        name: "sqlite",
        store: Arc::new(store),
        dir,
        _db: None,
    }
}

/// A fresh PostgreSQL store, in a database created for the test (and
/// dropped after it) on the server of `HOOKD_TEST_DATABASE_URL`.
async fn postgres() -> Backend {
    let db = common::pg::TestDatabase::create().await;
    let store = PostgresStore::open(&db.url, cipher()).await.unwrap();
    Backend {
        name: "postgres",
        store: Arc::new(store),
        dir: tempfile::tempdir().unwrap(),
        _db: Some(db),
    }
}

/// Every test of the suite, once per backend: `sqlite::<test>` always,
/// `postgres::<test>` when asked for (`scripts/test` does when a server
/// answers; plain `cargo test` lists them as ignored).
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?; postgres only: $($pg:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: scripts/test runs it when a server answers"]
                async fn $test() {
                    super::$test(super::postgres().await).await
                }
            )*
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: scripts/test runs it when a server answers"]
                async fn $pg() {
                    super::$pg(super::postgres().await).await
                }
            )*
        }
    };
}

on_every_backend!(
    webhooks_are_scoped_by_tenant,
    stale_updates_are_refused,
    publishing_fans_out_and_replays_idempotency_keys,
    leases_hide_deliveries_until_they_expire,
    outcomes_update_deliveries_and_suspend_failing_webhooks,
    outcomes_and_new_events_commit_together_or_not_at_all,
    purge_keeps_unfinished_deliveries,
    an_outcome_of_a_purged_delivery_is_dropped_not_a_failed_batch,
    a_delivery_is_read_with_its_attempts_from_one_snapshot,
    secrets_rotate_and_api_keys_revoke,
    admin_sessions_expire_and_settings_persist,
    the_delivery_histogram_counts_the_window_by_status,
    archived_event_types_are_restored_per_tenant,
    portal_links_open_once_and_the_portal_reads_what_it_needs,
    a_resumed_backlog_is_made_due_a_slice_at_a_time_in_publish_order,
    a_paused_webhooks_waiting_deliveries_are_parked_a_slice_at_a_time,
    a_batchs_deliveries_take_ids_in_publish_order,
    fan_out_sees_what_changed_since_the_previous_publish;
    postgres only: a_new_database_gets_planner_statistics_after_its_first_rows,
);

fn webhook(tenant: &str, url: &str, events: &[&str]) -> Webhook {
    Webhook {
        id: 0,
        tenant_id: tenant.into(),
        name: "w".into(),
        url: url.into(),
        events: events.iter().map(|s| s.to_string()).collect(),
        enabled: true,
        environment: "production".into(),
        description: None,
        headers: Headers::new(),
        timeout_ms: 0,
        rate_limit: None,
        retry_schedule_ms: None,
        failure_handling: None,
        suspended: false,
        suspended_at: None,
        created_at: 0,
        updated_at: 0,
        version: 0,
        security: Default::default(),
        control: Default::default(),
    }
}

fn event(tenant: &str, id: &str, event_type: &str, key: Option<&str>, now: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        tenant_id: tenant.into(),
        event_type: event_type.into(),
        environment: "production".into(),
        data: r#"{"n":1}"#.into(),
        idempotency_key: key.map(str::to_owned),
        created_at: now,
        only_webhook: None,
        ordering_key: None,
    }
}

fn lease(max: usize, until: i64) -> Lease {
    Lease {
        owner: "test".into(),
        until,
        max,
    }
}

/// Publishes through the group commit, with no outcomes.
async fn publish(
    s: &Arc<dyn Store>,
    events: Vec<NewEvent>,
    lease: Option<Lease>,
    now: i64,
) -> PublishBatch {
    let batch = CommitBatch {
        events,
        lease,
        outcomes: Vec::new(),
    };
    s.commit_batch(batch, now)
        .await
        .map_err(|f| f.error)
        .unwrap()
        .published
}

/// Records outcomes through the group commit; the webhooks it suspended.
async fn record(s: &Arc<dyn Store>, outcomes: Vec<Outcome>, now: i64) -> Vec<i64> {
    let batch = CommitBatch {
        outcomes,
        ..CommitBatch::default()
    };
    s.commit_batch(batch, now)
        .await
        .map_err(|f| f.error)
        .unwrap()
        .suspended
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn webhooks_are_scoped_by_tenant(b: Backend) {
    let s = &b.store;
    let a = s
        .create_webhook(
            &webhook("a", "https://x.test/1", &["license.created"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    assert!(
        s.get_webhook("b", a.id).await.unwrap().is_none(),
        "{}",
        b.name
    );
    assert!(!s.delete_webhook("b", a.id, 0).await.unwrap(), "{}", b.name);
    let page = s
        .list_webhooks("b", &WebhookFilter::default(), 0, 50)
        .await
        .unwrap();
    assert_eq!(page.total, 0, "{}", b.name);
    // The same URL in another tenant is fine; twice in one is a conflict.
    s.create_webhook(
        &webhook("b", "https://x.test/1", &["license.created"]),
        SECRET,
        1,
    )
    .await
    .unwrap();
    assert!(
        s.create_webhook(
            &webhook("a", "https://x.test/1", &["license.created"]),
            SECRET,
            1
        )
        .await
        .is_err()
    );
}

async fn stale_updates_are_refused(b: Backend) {
    let s = &b.store;
    let w = s
        .create_webhook(
            &webhook("a", "https://x.test/1", &["license.created"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    let mut first = w.clone();
    first.name = "first".into();
    s.update_webhook(&first, 2).await.unwrap().unwrap();
    let mut second = w.clone();
    second.name = "second".into();
    assert!(
        matches!(
            s.update_webhook(&second, 3).await,
            Err(hookd::store::StoreError::Stale)
        ),
        "{}",
        b.name
    );
}

async fn publishing_fans_out_and_replays_idempotency_keys(b: Backend) {
    let s = &b.store;
    let w1 = s
        .create_webhook(&webhook("a", "https://x.test/1", &["license.*"]), SECRET, 1)
        .await
        .unwrap();
    let w2 = s
        .create_webhook(
            &webhook("a", "https://x.test/2", &["license.revoked"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    s.create_webhook(&webhook("b", "https://x.test/3", &["license.*"]), SECRET, 1)
        .await
        .unwrap();
    let batch = publish(
        s,
        vec![
            event("a", "evt_1", "license.created", Some("k1"), 10),
            event("a", "evt_2", "license.revoked", None, 10),
        ],
        Some(lease(10, 1_000)),
        10,
    )
    .await;
    assert_eq!(batch.results[0].deliveries, 1, "{}", b.name);
    assert_eq!(batch.results[1].deliveries, 2, "{}", b.name);
    assert_eq!(batch.jobs.len(), 3);
    assert!(
        batch
            .jobs
            .iter()
            .all(|j| j.webhook_id == w1.id || j.webhook_id == w2.id)
    );
    let body: serde_json::Value = serde_json::from_slice(&batch.jobs[0].body).unwrap();
    assert_eq!(body["data"]["n"], 1);

    let again = publish(
        s,
        vec![event("a", "evt_3", "license.created", Some("k1"), 20)],
        None,
        20,
    )
    .await;
    assert_eq!(
        again.results[0].id, "evt_1",
        "{}: a repeated key answers the first event",
        b.name
    );
    assert!(again.jobs.is_empty() && again.unleased == 0);
    // Past the 24 h window the key is new again.
    let later = 20 + 24 * 3_600_000 + 1;
    let fresh = publish(
        s,
        vec![event("a", "evt_4", "license.created", Some("k1"), later)],
        None,
        later,
    )
    .await;
    assert_eq!(fresh.results[0].id, "evt_4", "{}", b.name);
}

/// Claims and resumes go by delivery id: within a batch, an older event's
/// deliveries get the smaller ids. On PostgreSQL this size keeps the
/// order even without `ORDER BY` in the insert; the plan that broke it
/// came with 100,000 deliveries (`delivery_control::backlog`, run on
/// PostgreSQL by the suite's second pass).
async fn a_batchs_deliveries_take_ids_in_publish_order(b: Backend) {
    let s = &b.store;
    for url in ["https://x.test/1", "https://x.test/2"] {
        s.create_webhook(&webhook("a", url, &["license.*"]), SECRET, 1)
            .await
            .unwrap();
    }
    for round in 0..2 {
        let events = (0..500)
            .map(|i| {
                event(
                    "a",
                    &format!("evt_{round}_{i:04}"),
                    "license.created",
                    None,
                    10,
                )
            })
            .collect();
        let mut jobs = publish(s, events, Some(lease(1_000, 1_000)), 10).await.jobs;
        assert_eq!(jobs.len(), 1_000, "{}", b.name);
        jobs.sort_by_key(|j| j.delivery_id);
        let order: Vec<&str> = jobs.iter().map(|j| j.event_id.as_str()).collect();
        assert!(
            order.is_sorted(),
            "{}: round {round}: delivery ids not in publish order",
            b.name
        );
    }
}

/// A webhook created, or changed, between two publishes holds for the
/// second (PostgreSQL keeps the audience between batches and must see
/// that it went stale).
async fn fan_out_sees_what_changed_since_the_previous_publish(b: Backend) {
    let s = &b.store;
    let first = s
        .create_webhook(&webhook("a", "https://x.test/1", &["license.*"]), SECRET, 1)
        .await
        .unwrap();
    let publish_one = |id: &str| {
        publish(
            s,
            vec![event("a", id, "license.created", None, 10)],
            None,
            10,
        )
    };
    assert_eq!(
        publish_one("evt_1").await.results[0].deliveries,
        1,
        "{}",
        b.name
    );
    assert_eq!(
        publish_one("evt_2").await.results[0].deliveries,
        1,
        "{}",
        b.name
    );

    let second = s
        .create_webhook(&webhook("a", "https://x.test/2", &["license.*"]), SECRET, 1)
        .await
        .unwrap();
    assert_eq!(
        publish_one("evt_3").await.results[0].deliveries,
        2,
        "{}: created",
        b.name
    );

    let mut narrowed = second.clone();
    narrowed.events = vec!["license.revoked".into()];
    s.update_webhook(&narrowed, 20)
        .await
        .unwrap()
        .expect("updated");
    assert_eq!(
        publish_one("evt_4").await.results[0].deliveries,
        1,
        "{}: narrowed",
        b.name
    );

    let mut disabled = first.clone();
    disabled.enabled = false;
    s.update_webhook(&disabled, 20)
        .await
        .unwrap()
        .expect("updated");
    assert_eq!(
        publish_one("evt_5").await.results[0].deliveries,
        0,
        "{}: disabled",
        b.name
    );
}

async fn leases_hide_deliveries_until_they_expire(b: Backend) {
    let s = &b.store;
    s.create_webhook(
        &webhook("a", "https://x.test/1", &["license.created"]),
        SECRET,
        1,
    )
    .await
    .unwrap();
    let batch = publish(
        s,
        vec![event("a", "evt_1", "license.created", None, 10)],
        Some(lease(10, 1_000)),
        10,
    )
    .await;
    assert_eq!(batch.jobs.len(), 1);
    assert!(
        s.claim_due_deliveries("other", 500, 60_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "{}: leased",
        b.name
    );
    let taken = s
        .claim_due_deliveries("other", 1_001, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "{}: an expired lease is taken over", b.name);
    assert!(
        s.claim_due_deliveries("third", 2_000, 90_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "{}",
        b.name
    );
    assert_eq!(s.release_leases(Some("other"), 3_000).await.unwrap(), 1);
    assert_eq!(
        s.claim_due_deliveries("third", 3_000, 90_000, 10)
            .await
            .unwrap()
            .len(),
        1,
        "{}",
        b.name
    );
}

fn attempt(at: i64, status: u16) -> AttemptRecord {
    AttemptRecord {
        attempted_at: at,
        duration_ms: 1,
        url: "https://x.test/1".into(),
        request_headers: "{}".into(),
        response_status: Some(status),
        response_headers: Some("{}".into()),
        response_body: Some("body".into()),
        error_kind: None,
        error: None,
    }
}

/// Tenant `a`'s webhook for `license.created`, and two of its deliveries
/// (`evt_1`, `evt_2`) published at 10 and leased.
async fn two_leased_deliveries(s: &Arc<dyn Store>) -> (Webhook, PublishBatch) {
    let w = s
        .create_webhook(
            &webhook("a", "https://x.test/1", &["license.created"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    let batch = publish(
        s,
        vec![
            event("a", "evt_1", "license.created", None, 10),
            event("a", "evt_2", "license.created", None, 10),
        ],
        Some(lease(10, 100_000)),
        10,
    )
    .await;
    (w, batch)
}

async fn outcomes_update_deliveries_and_suspend_failing_webhooks(b: Backend) {
    let s = &b.store;
    let (w, batch) = two_leased_deliveries(s).await;
    let outcome = |id: i64, status: DeliveryStatus, next: Option<i64>| Outcome {
        delivery_id: id,
        tenant_id: "a".into(),
        webhook_id: w.id,
        status,
        next_attempt_at: next,
        attempt: Some(attempt(20, 500)),
        min_failures: 2,
        suspend_after_ms: 0,
        gone: false,
        ordered: false,
        exhausted: None,
    };
    let suspended = record(
        s,
        vec![
            outcome(
                batch.jobs[0].delivery_id,
                DeliveryStatus::Retrying,
                Some(50),
            ),
            outcome(batch.jobs[1].delivery_id, DeliveryStatus::Failed, None),
        ],
        30,
    )
    .await;
    assert_eq!(
        suspended,
        vec![w.id],
        "{}: two failures reach min_failures",
        b.name
    );
    let (d, attempts) = s
        .get_delivery("a", batch.jobs[0].delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_status_code, Some(500));
    assert_eq!(attempts.len(), 1);
    assert!(
        s.get_delivery("b", batch.jobs[0].delivery_id)
            .await
            .unwrap()
            .is_none(),
        "{}: tenant scoped",
        b.name
    );
    assert_eq!(s.next_due_at().await.unwrap(), Some(50));
    assert_eq!(
        s.claim_due_deliveries("x", 50, 1_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let w = s.get_webhook("a", w.id).await.unwrap().unwrap();
    assert!(w.suspended && w.suspended_at == Some(30), "{}", b.name);
    let recovered = s.recover_webhook("a", w.id, 0, 40).await.unwrap();
    assert_eq!(recovered, 1, "{}: the failed one", b.name);
}

/// A batch of outcomes and new events (on PostgreSQL, without locks or
/// announcements, one statement: `RECORD_AND_INSERT`) stores both, and a
/// batch whose events cannot be stored records none of its outcomes: they
/// come back to be recorded again, not twice.
async fn outcomes_and_new_events_commit_together_or_not_at_all(b: Backend) {
    let s = &b.store;
    let (w, first) = two_leased_deliveries(s).await;
    let outcome = |id: i64, code: u16| Outcome {
        delivery_id: id,
        tenant_id: "a".into(),
        webhook_id: w.id,
        status: if code == 200 {
            DeliveryStatus::Succeeded
        } else {
            DeliveryStatus::Retrying
        },
        next_attempt_at: (code != 200).then_some(50),
        attempt: Some(attempt(20, code)),
        min_failures: 2,
        suspend_after_ms: 0,
        gone: false,
        ordered: false,
        exhausted: None,
    };
    let success = |id: i64| outcome(id, 200);
    // A failure starts the webhook's streak (one of the two that suspend).
    let failed = first.jobs[1].delivery_id;
    assert!(record(s, vec![outcome(failed, 500)], 25).await.is_empty());
    // evt_1 again: its id is taken, so the whole batch fails.
    let refused = s
        .commit_batch(
            CommitBatch {
                events: vec![
                    event("a", "evt_3", "license.created", None, 30),
                    event("a", "evt_1", "license.created", None, 30),
                ],
                lease: Some(lease(10, 100_000)),
                outcomes: vec![success(first.jobs[0].delivery_id)],
            },
            30,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{}: a duplicate event id was stored", b.name));
    assert_eq!(refused.outcomes.len(), 1, "{}: handed back", b.name);
    let (d, attempts) = s
        .get_delivery("a", first.jobs[0].delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.status, attempts.len()),
        (DeliveryStatus::Pending, 0),
        "{}: an outcome of a failed batch was recorded",
        b.name
    );
    assert!(
        s.get_event("a", "evt_3").await.unwrap().is_none(),
        "{}: an event of a failed batch was stored",
        b.name
    );

    let committed = s
        .commit_batch(
            CommitBatch {
                events: vec![event("a", "evt_3", "license.created", None, 40)],
                lease: Some(lease(10, 100_000)),
                outcomes: refused.outcomes,
            },
            40,
        )
        .await
        .map_err(|f| f.error)
        .unwrap();
    let (d, attempts) = s
        .get_delivery("a", first.jobs[0].delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Succeeded, "{}", b.name);
    assert_eq!((d.attempts, attempts.len()), (1, 1), "{}", b.name);
    assert_eq!(d.last_status_code, Some(200), "{}", b.name);
    let job = &committed.published.jobs[0];
    assert_eq!(committed.published.jobs.len(), 1, "{}", b.name);
    assert_eq!(job.event_id, "evt_3", "{}", b.name);
    let (d, _) = s.get_delivery("a", job.delivery_id).await.unwrap().unwrap();
    assert_eq!(
        (d.event_id.as_str(), d.webhook_id, d.status),
        ("evt_3", w.id, DeliveryStatus::Pending),
        "{}: the job's id is its delivery's",
        b.name
    );
    // The success ended the streak in the same statement: one more
    // failure is one, not the second that would suspend.
    assert_eq!(
        record(s, vec![outcome(failed, 500)], 50).await,
        Vec::<i64>::new(),
        "{}: the success in the batch did not end the failure streak",
        b.name
    );
    let (d, attempts) = s.get_delivery("a", failed).await.unwrap().unwrap();
    assert_eq!((d.status, attempts.len()), (DeliveryStatus::Retrying, 2));
}

async fn purge_keeps_unfinished_deliveries(b: Backend) {
    let s = &b.store;
    s.create_webhook(
        &webhook("a", "https://x.test/1", &["license.created"]),
        SECRET,
        1,
    )
    .await
    .unwrap();
    publish(
        s,
        vec![event("a", "evt_1", "license.created", None, 10)],
        None,
        10,
    )
    .await;
    publish(
        s,
        vec![event("a", "evt_2", "license.revoked", None, 10)],
        None,
        10,
    )
    .await;
    // evt_1 has a pending delivery, evt_2 none.
    assert_eq!(s.purge_events(1_000, 100).await.unwrap(), 1, "{}", b.name);
    assert!(s.get_event("a", "evt_1").await.unwrap().is_some());
    assert!(s.get_event("a", "evt_2").await.unwrap().is_none());
}

/// A webhook deleted while its attempts are in flight fails their
/// deliveries; the purge may then remove them with their events before the
/// outcomes arrive. Those outcomes are dropped: the batch they are in
/// commits (a key violation would fail it, and every batch it is carried
/// into after it).
async fn an_outcome_of_a_purged_delivery_is_dropped_not_a_failed_batch(b: Backend) {
    let s = &b.store;
    let (w, leased) = two_leased_deliveries(s).await;
    assert!(s.delete_webhook("a", w.id, 20).await.unwrap());
    assert_eq!(s.purge_events(1_000, 100).await.unwrap(), 2, "{}", b.name);
    let gone = |id: i64| Outcome {
        delivery_id: id,
        tenant_id: "a".into(),
        webhook_id: w.id,
        status: DeliveryStatus::Succeeded,
        next_attempt_at: None,
        attempt: Some(attempt(30, 200)),
        min_failures: 2,
        suspend_after_ms: 0,
        gone: false,
        ordered: false,
        exhausted: None,
    };
    let committed = s
        .commit_batch(
            CommitBatch {
                events: vec![event("a", "evt_3", "license.created", None, 30)],
                lease: None,
                outcomes: leased.jobs.iter().map(|j| gone(j.delivery_id)).collect(),
            },
            30,
        )
        .await
        .map_err(|f| f.error)
        .unwrap_or_else(|e| panic!("{}: the batch failed: {e}", b.name));
    assert_eq!(committed.outcomes.len(), 2, "{}", b.name);
    assert!(
        s.get_event("a", "evt_3").await.unwrap().is_some(),
        "{}: the batch's event was not stored",
        b.name
    );
    for j in &leased.jobs {
        assert!(
            s.get_delivery("a", j.delivery_id).await.unwrap().is_none(),
            "{}: a purged delivery came back",
            b.name
        );
    }
    // No attempt row outlives its delivery: PostgreSQL's foreign key
    // refuses one; SQLite's hot writer checks no keys, so look.
    if b.name == "sqlite" {
        let db = rusqlite::Connection::open(b.dir.path().join("hookd.db")).unwrap();
        let orphans: i64 = db
            .query_row(
                "SELECT count(*) FROM attempts WHERE delivery_id NOT IN (SELECT id FROM deliveries)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0, "attempts of purged deliveries were written");
    }
}

/// A delivery and its attempts are read together: while outcomes keep
/// committing, every read shows as many attempts as its count says. Read
/// in two snapshots, an outcome committed between the two reads showed one
/// attempt more than `attempts` (seen through the API under load).
async fn a_delivery_is_read_with_its_attempts_from_one_snapshot(b: Backend) {
    let s = &b.store;
    let (w, leased) = two_leased_deliveries(s).await;
    let id = leased.jobs[0].delivery_id;
    const OUTCOMES: usize = 150;
    let writer = {
        let s = s.clone();
        let webhook_id = w.id;
        tokio::spawn(async move {
            for i in 0..OUTCOMES as i64 {
                let outcome = Outcome {
                    delivery_id: id,
                    tenant_id: "a".into(),
                    webhook_id,
                    status: DeliveryStatus::Retrying,
                    next_attempt_at: Some(1_000_000),
                    attempt: Some(attempt(20 + i, 500)),
                    min_failures: 1_000_000,
                    suspend_after_ms: 1_000_000_000,
                    gone: false,
                    ordered: false,
                    exhausted: None,
                };
                record(&s, vec![outcome], 20 + i).await;
                // Give the readers room between commits on one core.
                tokio::task::yield_now().await;
            }
        })
    };
    let mut reads = 0;
    loop {
        let (d, attempts) = s.get_delivery("a", id).await.unwrap().unwrap();
        assert_eq!(
            attempts.len(),
            d.attempts as usize,
            "{}: a read showed {} attempts for a delivery that counts {}",
            b.name,
            attempts.len(),
            d.attempts
        );
        reads += 1;
        if writer.is_finished() {
            break;
        }
    }
    writer.await.unwrap();
    let (d, attempts) = s.get_delivery("a", id).await.unwrap().unwrap();
    assert_eq!((d.attempts as usize, attempts.len()), (OUTCOMES, OUTCOMES));
    assert!(reads > 1, "{}: no read ran beside the writes", b.name);
}

async fn secrets_rotate_and_api_keys_revoke(b: Backend) {
    let s = &b.store;
    let w = s
        .create_webhook(
            &webhook("a", "https://x.test/1", &["license.created"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    assert!(
        s.rotate_webhook_secret("a", w.id, "whsec_new", 500, 2)
            .await
            .unwrap()
    );
    let secrets = s.get_webhook_secrets("a", w.id).await.unwrap().unwrap();
    assert_eq!(secrets.current, "whsec_new");
    assert_eq!(
        secrets.previous,
        Some((SECRET.to_string(), 500)),
        "{}",
        b.name
    );
    assert!(
        !s.rotate_webhook_secret("b", w.id, "whsec_x", 500, 2)
            .await
            .unwrap()
    );

    let k = s
        .create_api_key(
            "a",
            "k",
            b"hash",
            &[hookd::domain::api_key::Permission::Admin],
            1,
        )
        .await
        .unwrap();
    assert_eq!(s.find_api_key(b"hash").await.unwrap().unwrap().id, k.id);
    assert!(!s.revoke_api_key("b", k.id, 2).await.unwrap(), "{}", b.name);
    assert!(s.revoke_api_key("a", k.id, 2).await.unwrap());
    assert!(s.find_api_key(b"hash").await.unwrap().is_none());
}

async fn admin_sessions_expire_and_settings_persist(b: Backend) {
    let s = &b.store;
    let session = |id: u8, expires_at: i64| AdminSessionRecord {
        id_hash: vec![id; 32],
        key_ref: vec![7; 32],
        tenant_id: "a".into(),
        csrf_token: format!("csrf-{id}"),
        created_at: 100,
        expires_at,
        kind: "admin".into(),
    };
    s.create_admin_session(&session(1, 1_000)).await.unwrap();
    let found = s.find_admin_session(&[1; 32], 500).await.unwrap();
    assert_eq!(found, Some(session(1, 1_000)), "{}", b.name);
    assert_eq!(
        s.find_admin_session(&[1; 32], 1_000).await.unwrap(),
        None,
        "{}: an expired session is gone",
        b.name
    );
    assert_eq!(s.find_admin_session(&[2; 32], 500).await.unwrap(), None);
    s.set_admin_session_tenant(&[1; 32], "b").await.unwrap();
    let moved = s.find_admin_session(&[1; 32], 500).await.unwrap().unwrap();
    assert_eq!(moved.tenant_id, "b", "{}", b.name);
    s.create_admin_session(&session(2, 5_000)).await.unwrap();
    s.delete_admin_session(&[2; 32]).await.unwrap();
    assert_eq!(
        s.find_admin_session(&[2; 32], 500).await.unwrap(),
        None,
        "{}: signed out",
        b.name
    );

    assert_eq!(s.get_setting("policy").await.unwrap(), None);
    s.put_setting("policy", r#"{"a":1}"#).await.unwrap();
    s.put_setting("policy", r#"{"a":2}"#).await.unwrap();
    assert_eq!(
        s.get_setting("policy").await.unwrap().as_deref(),
        Some(r#"{"a":2}"#),
        "{}",
        b.name
    );
    s.delete_setting("policy").await.unwrap();
    assert_eq!(s.get_setting("policy").await.unwrap(), None, "{}", b.name);
    s.delete_setting("policy").await.unwrap();
}

async fn the_delivery_histogram_counts_the_window_by_status(b: Backend) {
    let s = &b.store;
    s.create_webhook(&webhook("a", "https://x.test/1", &["license.*"]), SECRET, 1)
        .await
        .unwrap();
    s.create_webhook(&webhook("b", "https://x.test/2", &["license.*"]), SECRET, 1)
        .await
        .unwrap();
    for (i, at) in [(1, 500), (2, 1_000), (3, 1_500), (4, 2_600)] {
        publish(
            s,
            vec![
                event("a", &format!("evt_a{i}"), "license.created", None, at),
                event("b", &format!("evt_b{i}"), "license.created", None, at),
            ],
            None,
            at,
        )
        .await;
    }
    // Window from 1,000 in buckets of 1,000: [1000, 2000) and [2000, 3000).
    let mut rows = s
        .delivery_histogram("a", &DeliveryFilter::default(), 1_000, 1_000)
        .await
        .unwrap();
    rows.sort_by_key(|r| r.bucket);
    assert_eq!(
        rows,
        vec![
            HistogramRow {
                bucket: 0,
                status: DeliveryStatus::Pending,
                count: 2
            },
            HistogramRow {
                bucket: 1,
                status: DeliveryStatus::Pending,
                count: 1
            },
        ],
        "{}: the event before the window and tenant b's are not counted",
        b.name
    );
    assert!(
        s.delivery_histogram("c", &DeliveryFilter::default(), 0, 1_000)
            .await
            .unwrap()
            .is_empty()
    );
    let w1 = s
        .list_webhooks("a", &WebhookFilter::default(), 0, 10)
        .await
        .unwrap()
        .items[0]
        .id;
    let one = s
        .delivery_histogram(
            "a",
            &DeliveryFilter {
                webhook_id: Some(w1),
                ..DeliveryFilter::default()
            },
            0,
            10_000,
        )
        .await
        .unwrap();
    assert_eq!(one.iter().map(|r| r.count).sum::<u64>(), 4, "{}", b.name);
    let other = s
        .delivery_histogram(
            "a",
            &DeliveryFilter {
                webhook_id: Some(w1 + 1000),
                ..DeliveryFilter::default()
            },
            0,
            10_000,
        )
        .await
        .unwrap();
    assert!(other.is_empty(), "{}: another webhook's deliveries", b.name);
}

async fn archived_event_types_are_restored_per_tenant(b: Backend) {
    let s = &b.store;
    let archived = |name: &str| EventTypeRecord {
        name: name.into(),
        category: "license".into(),
        description: None,
        archived_at: Some(5),
        created_at: 5,
        data_schema: None,
        example: None,
    };
    let live = |s: &Arc<dyn Store>, tenant: &'static str, name: &'static str| {
        let s = s.clone();
        async move {
            s.list_event_types(tenant)
                .await
                .unwrap()
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.archived_at.is_none())
        }
    };
    s.archive_event_type("a", &archived("license.created"))
        .await
        .unwrap();
    s.archive_event_type("b", &archived("license.created"))
        .await
        .unwrap();
    assert_eq!(live(s, "a", "license.created").await, Some(false));
    assert!(
        !s.restore_event_type("a", "license.updated").await.unwrap(),
        "{}: nothing archived to restore",
        b.name
    );
    assert!(s.restore_event_type("a", "license.created").await.unwrap());
    assert!(
        !s.restore_event_type("a", "license.created").await.unwrap(),
        "{}: restoring twice",
        b.name
    );
    assert_eq!(
        live(s, "a", "license.created").await,
        Some(true),
        "{}",
        b.name
    );
    assert_eq!(
        live(s, "b", "license.created").await,
        Some(false),
        "{}: another tenant's archive stands",
        b.name
    );
}

/// SPEC §11's store side: a link opens once (and says why it no longer
/// does), tenants are listed, webhook health and filtered histograms are
/// read, and a type's schema is set on a built-in and a tenant type.
async fn portal_links_open_once_and_the_portal_reads_what_it_needs(b: Backend) {
    let s = &b.store;
    let link = |id: u8, expires_at: i64| PortalLinkRecord {
        id_hash: vec![id; 32],
        tenant_id: "acme".into(),
        key_ref: vec![9; 32],
        read_only: id.is_multiple_of(2),
        created_at: 100,
        expires_at,
    };
    s.create_portal_link(&link(1, 1_000)).await.unwrap();
    s.create_portal_link(&link(2, 1_000)).await.unwrap();
    assert_eq!(
        s.open_portal_link(&[1; 32], 500).await.unwrap(),
        PortalLinkUse::Opened(link(1, 1_000)),
        "{}",
        b.name
    );
    assert_eq!(
        s.open_portal_link(&[1; 32], 600).await.unwrap(),
        PortalLinkUse::Used(500)
    );
    assert_eq!(
        s.open_portal_link(&[2; 32], 1_000).await.unwrap(),
        PortalLinkUse::Expired(1_000)
    );
    assert_eq!(
        s.open_portal_link(&[3; 32], 10).await.unwrap(),
        PortalLinkUse::Unknown
    );
    // Two openings at once: one wins.
    s.create_portal_link(&link(5, 1_000)).await.unwrap();
    let (x, y) = tokio::join!(
        s.open_portal_link(&[5; 32], 200),
        s.open_portal_link(&[5; 32], 200)
    );
    let opened = [x.unwrap(), y.unwrap()]
        .iter()
        .filter(|u| matches!(u, PortalLinkUse::Opened(_)))
        .count();
    assert_eq!(opened, 1, "{}", b.name);
    // Portal sessions are admin sessions of their own kind.
    s.create_admin_session(&AdminSessionRecord {
        id_hash: vec![4; 32],
        key_ref: vec![9; 32],
        tenant_id: "acme".into(),
        csrf_token: "c".into(),
        created_at: 100,
        expires_at: 10_000,
        kind: "portal_read_only".into(),
    })
    .await
    .unwrap();
    let found = s.find_admin_session(&[4; 32], 200).await.unwrap().unwrap();
    assert_eq!(found.kind, "portal_read_only");

    // Tenants that hold anything, sorted.
    let w = s
        .create_webhook(
            &webhook("beta", "https://x.test/1", &["license.*"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    let tenants = s.list_tenants(10).await.unwrap();
    assert_eq!(
        tenants,
        vec!["acme".to_owned(), "beta".to_owned()],
        "{}",
        b.name
    );

    // Health: the newest delivery and the window's failing count.
    for (i, at) in [(1, 500), (2, 1_500)] {
        publish(
            s,
            vec![event(
                "beta",
                &format!("evt_h{i}"),
                "license.created",
                None,
                at,
            )],
            None,
            at,
        )
        .await;
    }
    let health = s
        .webhook_health("beta", &[w.id, w.id + 99], 1_000)
        .await
        .unwrap();
    assert_eq!(health.len(), 1, "{}: {health:?}", b.name);
    assert_eq!(
        (
            health[0].webhook_id,
            health[0].recent,
            health[0].recent_failing
        ),
        (w.id, 1, 0)
    );
    assert_eq!(health[0].last_status, DeliveryStatus::Pending);
    assert!(
        s.webhook_health("acme", &[w.id], 0)
            .await
            .unwrap()
            .is_empty(),
        "another tenant's"
    );
    // The histogram follows a type and an event filter.
    let by_type = |t: &str| DeliveryFilter {
        event_type: Some(t.into()),
        ..DeliveryFilter::default()
    };
    let n = |rows: Vec<HistogramRow>| rows.iter().map(|r| r.count).sum::<u64>();
    assert_eq!(
        n(
            s.delivery_histogram("beta", &by_type("license.created"), 0, 1_000)
                .await
                .unwrap()
        ),
        2
    );
    assert_eq!(
        n(
            s.delivery_histogram("beta", &by_type("contract.created"), 0, 1_000)
                .await
                .unwrap()
        ),
        0
    );
    let by_event = DeliveryFilter {
        event_id: Some("evt_h2".into()),
        ..DeliveryFilter::default()
    };
    assert_eq!(
        n(s.delivery_histogram("beta", &by_event, 0, 1_000)
            .await
            .unwrap()),
        1
    );

    // A schema on a built-in type (a tenant row appears) and its removal.
    let mut record = EventTypeRecord {
        name: "license.created".into(),
        category: "license".into(),
        description: None,
        archived_at: None,
        created_at: 5,
        data_schema: Some(r#"{"type":"object"}"#.into()),
        example: Some("{}".into()),
    };
    s.update_event_type("beta", &record).await.unwrap();
    let rows = s.list_event_types("beta").await.unwrap();
    assert_eq!(rows, vec![record.clone()], "{}", b.name);
    record.data_schema = None;
    s.update_event_type("beta", &record).await.unwrap();
    assert_eq!(
        s.list_event_types("beta").await.unwrap()[0].data_schema,
        None
    );
    assert!(s.list_event_types("acme").await.unwrap().is_empty());
}

async fn a_paused_webhooks_waiting_deliveries_are_parked_a_slice_at_a_time(b: Backend) {
    let s = &b.store;
    let w = s
        .create_webhook(
            &webhook("a", "https://x.test/p", &["license.created"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    let events = (1..=6)
        .map(|i| event("a", &format!("evt_{i}"), "license.created", None, 10))
        .collect();
    // One leased (in flight until 1,000), five waiting and due at 10.
    publish(s, events, Some(lease(1, 1_000)), 10).await;
    assert_eq!(
        s.park_deliveries("a", w.id, 0, 10).await.unwrap().0,
        0,
        "{}: nothing is parked for a webhook that is not paused",
        b.name
    );
    let (_, changed) = s
        .set_webhook_paused("a", w.id, true, 20)
        .await
        .unwrap()
        .unwrap();
    assert!(changed);
    assert_eq!(
        s.park_deliveries("b", w.id, 0, 10).await.unwrap().0,
        0,
        "{}: another tenant's webhook",
        b.name
    );
    let (n1, last1) = s.park_deliveries("a", w.id, 0, 2).await.unwrap();
    let (n2, last2) = s.park_deliveries("a", w.id, last1, 2).await.unwrap();
    let (n3, last3) = s.park_deliveries("a", w.id, last2, 2).await.unwrap();
    assert_eq!((n1, n2, n3), (2, 2, 1), "{}: slices of two", b.name);
    assert!(last1 < last2 && last2 < last3, "{}: in id order", b.name);
    assert_eq!(
        s.park_deliveries("a", w.id, last3, 2).await.unwrap(),
        (0, last3),
        "{}: the leased one is left to finish its attempt",
        b.name
    );
    assert!(
        s.claim_due_deliveries("me", 500, 10_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "{}: parked deliveries are not claimed",
        b.name
    );
    s.set_webhook_paused("a", w.id, false, 30).await.unwrap();
    let backlogs = s.resumed_backlogs().await.unwrap();
    assert_eq!(backlogs.len(), 1, "{}: the resume finds them", b.name);
}

async fn a_resumed_backlog_is_made_due_a_slice_at_a_time_in_publish_order(b: Backend) {
    let s = &b.store;
    let w = s
        .create_webhook(
            &webhook("a", "https://x.test/p", &["license.created"]),
            SECRET,
            1,
        )
        .await
        .unwrap();
    s.set_webhook_paused("a", w.id, true, 2).await.unwrap();
    let events = (1..=5)
        .map(|i| event("a", &format!("evt_{i}"), "license.created", None, 10))
        .collect();
    publish(s, events, Some(lease(10, 1_000)), 10).await;
    // Claimed ones stay leased for the whole test.
    let claim = |at: i64| s.claim_due_deliveries("me", at, 10_000_000, 10);
    assert!(
        claim(1_000_000).await.unwrap().is_empty(),
        "{}: parked",
        b.name
    );
    assert!(
        s.resumed_backlogs().await.unwrap().is_empty(),
        "{}: a paused webhook's backlog is not paced",
        b.name
    );
    assert_eq!(
        s.unpark_deliveries("a", w.id, 100, 10.0, 10).await.unwrap(),
        0,
        "{}: nothing is made due while paused",
        b.name
    );

    s.set_webhook_paused("a", w.id, false, 20).await.unwrap();
    let backlogs = s.resumed_backlogs().await.unwrap();
    assert_eq!(backlogs.len(), 1, "{}", b.name);
    assert_eq!(
        (backlogs[0].webhook_id, backlogs[0].rate_limit),
        (w.id, None)
    );
    assert!(
        claim(1_000_000).await.unwrap().is_empty(),
        "{}: a resume alone makes nothing due",
        b.name
    );
    assert_eq!(
        s.unpark_deliveries("b", w.id, 100, 10.0, 10).await.unwrap(),
        0,
        "{}: another tenant's webhook",
        b.name
    );
    // Two of five, 10 ms apart from 100, oldest first.
    assert_eq!(
        s.unpark_deliveries("a", w.id, 100, 10.0, 2).await.unwrap(),
        2
    );
    let first = claim(105).await.unwrap();
    assert_eq!(first.len(), 1, "{}", b.name);
    assert_eq!(first[0].event_id, "evt_1", "{}", b.name);
    let second = claim(115).await.unwrap();
    assert_eq!(second.len(), 1, "{}", b.name);
    assert_eq!(second[0].event_id, "evt_2", "{}", b.name);
    assert!(claim(100_000).await.unwrap().is_empty(), "{}", b.name);
    // The rest, in one slice larger than what is left.
    assert_eq!(
        s.unpark_deliveries("a", w.id, 200, 1.0, 10).await.unwrap(),
        3
    );
    // (A claim's answer is in no particular order.)
    let mut rest: Vec<String> = claim(300)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.event_id)
        .collect();
    rest.sort();
    assert_eq!(rest, ["evt_3", "evt_4", "evt_5"], "{}", b.name);
    assert!(s.resumed_backlogs().await.unwrap().is_empty(), "{}", b.name);
}

/// SQLite's writers leave checkpoints to the checkpointer thread
/// (`store::sqlite::checkpointer`): without it the WAL would only grow.
/// After a first round of writes and a pause, a second round of the same
/// size reuses the checkpointed WAL instead of doubling it.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_off_the_writers() {
    let b = sqlite().await;
    let wal = b.dir.path().join("hookd.db-wal");
    let data = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1_000));
    let mut n = 0;
    let mut round = |s: Arc<dyn Store>| {
        let batches: Vec<Vec<NewEvent>> = (0..8)
            .map(|_| {
                (0..500)
                    .map(|_| {
                        n += 1;
                        let mut e = event("a", &format!("evt_{n}"), "license.created", None, 10);
                        e.data = data.clone();
                        e
                    })
                    .collect()
            })
            .collect();
        async move {
            for events in batches {
                publish(&s, events, None, 10).await;
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    };
    round(b.store.clone()).await;
    let first = std::fs::metadata(&wal).unwrap().len();
    round(b.store.clone()).await;
    let second = std::fs::metadata(&wal).unwrap().len();
    assert!(
        first > 4_000_000,
        "the first round wrote {first} bytes of WAL"
    );
    assert!(
        second < first + first / 2,
        "the WAL grew from {first} to {second} bytes: nothing checkpointed it"
    );
}

/// PostgreSQL plans a table it never analyzed with default selectivities
/// (the claim read all of `deliveries` until autovacuum's first ANALYZE, a
/// minute or more in): the store analyzes each hot table itself once it
/// has 1,000 changes. `last_analyze` is set by that ANALYZE only
/// (autovacuum sets `last_autoanalyze`).
async fn a_new_database_gets_planner_statistics_after_its_first_rows(b: Backend) {
    let s = &b.store;
    s.create_webhook(
        &webhook("a", "https://x.test/p", &["license.created"]),
        SECRET,
        1,
    )
    .await
    .unwrap();
    for batch in 0..3 {
        let events = (0..500)
            .map(|i| {
                event(
                    "a",
                    &format!("evt_{batch}_{i}"),
                    "license.created",
                    None,
                    10,
                )
            })
            .collect();
        publish(s, events, None, 10).await;
    }
    let url = &b._db.as_ref().expect("a PostgreSQL backend").url;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let analyzed: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE relname IN ('events', 'deliveries') AND last_analyze IS NOT NULL ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        if analyzed == ["deliveries", "events"] {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "20 s after 1,500 events and deliveries, analyzed only {analyzed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
