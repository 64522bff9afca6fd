//! The claim, the management lists, the retention purge and the pacing of
//! resumed backlogs stay on indexes as the tables grow (issue 11: flat at
//! 10 million rows). Each query is
//! planned as the store runs it (`SqliteStore::explain`,
//! `PostgresStore::explain`: the store's own text and arguments, so a
//! changed query is checked as it changed) on a database holding 30,000
//! delivered deliveries, loaded set-based as the bench's scale mode loads
//! its history (`hookd_bench::history`), a small backlog and a few fifo
//! deliveries, with the statistics hookd's databases have (PostgreSQL's
//! autovacuum analyzes; hookd never runs ANALYZE on SQLite, whose planner
//! then goes by the indexes alone). No plan may read events, deliveries or
//! attempts whole: on SQLite no `SCAN` of them without an index, on
//! PostgreSQL no `Seq Scan` (with `enable_seqscan` left on: the planner
//! chooses an index because it is cheaper, not because it is forced).
//!
//! Runs on the backend of the run: SQLite, or PostgreSQL with
//! `HOOKD_TEST_BACKEND=postgres` (as `scripts/test` runs the suite again).

use std::sync::Arc;

use hookd::crypto::Cipher;
use hookd::domain::delivery::DeliveryStatus;
use hookd::store::{DeliveryFilter, EventFilter, PlannedQuery, PostgresStore, SqliteStore};
use hookd_bench::history::History;

use crate::common;

const TENANT: &str = "default";
const DAY: i64 = 86_400_000;
/// The history's newest event; the oldest is 29 days older.
const NOW: i64 = 1_796_000_000_000;
const DELIVERIES: u64 = 40_000;
const FANOUT: u64 = 2;

/// A migrated store holding the history, and what keeps its database.
enum Loaded {
    Sqlite(SqliteStore, #[allow(dead_code)] tempfile::TempDir),
    Postgres(PostgresStore, #[allow(dead_code)] common::pg::TestDatabase),
}

impl Loaded {
    async fn explain(&self, q: &PlannedQuery) -> Vec<String> {
        match self {
            Loaded::Sqlite(s, _) => s.explain(q).await,
            Loaded::Postgres(s, _) => s.explain(q).await,
        }
        .unwrap_or_else(|e| panic!("planning {q:?}: {e}"))
    }

    /// A full read of one of the big tables in `plan`, if there is one.
    fn full_scan(&self, plan: &[String]) -> Option<String> {
        plan.iter()
            .find(|line| match self {
                // "SCAN d" reads the table; "SCAN d USING INDEX …" an index.
                // Not big: the webhooks (`w`, the pacer's search) and the
                // slice a statement has already chosen (`p`, `r`, a
                // numbered subquery).
                Loaded::Sqlite(..) => {
                    line.starts_with("SCAN ")
                        && !line.contains(" USING ")
                        && !["SCAN CONSTANT ROW", "SCAN w", "SCAN p", "SCAN r"]
                            .contains(&line.as_str())
                        && !line.starts_with("SCAN (subquery-")
                }
                Loaded::Postgres(..) => {
                    let line = line.trim_start();
                    line.starts_with("Seq Scan on ")
                        && ["events", "deliveries", "attempts"]
                            .iter()
                            .any(|t| line.ends_with(&format!(" on {t}")))
                }
            })
            .cloned()
    }
}

fn history() -> History {
    History {
        deliveries: DELIVERIES,
        fanout: FANOUT,
        tenant: TENANT.into(),
        environment: "production".into(),
        event_type: "license.created".into(),
        oldest_ms: NOW - 29 * DAY,
        newest_ms: NOW,
        url: "http://127.0.0.1:9/r".into(),
    }
}

/// Deliveries a live database also has: a backlog (pending and retrying,
/// due now or later) and fifo deliveries among them.
const BACKLOG: &str = "UPDATE deliveries SET status = CASE WHEN id % 1000 = 0 THEN 'pending' \
     ELSE 'retrying' END, attempts = id % 2, next_attempt_at = created_at + (id % 3) * 86400000, \
     ordering_key = CASE WHEN id % 1500 = 0 THEN '' END WHERE id % 500 = 0";

async fn loaded() -> Loaded {
    let cipher = Arc::new(Cipher::from_key(&[7u8; 32]));
    if common::on_postgres() {
        let db = common::pg::TestDatabase::create().await;
        let store = PostgresStore::open(&db.url, cipher).await.unwrap();
        history().load_postgres(&db.url, |_| {}).await.unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap();
        sqlx::raw_sql(&format!("{BACKLOG}; ANALYZE"))
            .execute(&mut conn)
            .await
            .unwrap();
        Loaded::Postgres(store, db)
    } else {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), cipher, false).await.unwrap();
        let file = dir.path().join("hookd.db");
        history().load_sqlite(&file, |_| {}).unwrap();
        // No ANALYZE: hookd never runs it on SQLite, so its planner works
        // without statistics (see `History::load_sqlite`).
        rusqlite::Connection::open(&file)
            .unwrap()
            .execute_batch(BACKLOG)
            .unwrap();
        Loaded::Sqlite(store, dir)
    }
}

/// What the management API and the admin page ask of the lists, and what
/// the engine and the maintenance loop run.
fn queries() -> Vec<(&'static str, PlannedQuery)> {
    let deliveries = |filter: DeliveryFilter, before: Option<i64>| PlannedQuery::ListDeliveries {
        tenant: TENANT.into(),
        filter,
        before,
        limit: 51,
    };
    let events = |filter: EventFilter, before: Option<i64>| PlannedQuery::ListEvents {
        tenant: TENANT.into(),
        filter,
        before,
        limit: 51,
    };
    let middle = (DELIVERIES / 2) as i64;
    let a_day = (Some(NOW - 10 * DAY), Some(NOW - 9 * DAY));
    vec![
        (
            "the claim of due deliveries",
            PlannedQuery::Claim {
                now: NOW,
                limit: 500,
            },
        ),
        (
            "the delivery list",
            deliveries(DeliveryFilter::default(), None),
        ),
        (
            "the delivery list's next page",
            deliveries(DeliveryFilter::default(), Some(middle)),
        ),
        (
            "a webhook's deliveries",
            deliveries(
                DeliveryFilter {
                    webhook_id: Some(3),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "the succeeded deliveries",
            deliveries(
                DeliveryFilter {
                    status: Some(DeliveryStatus::Succeeded),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "the failed and diverted deliveries",
            deliveries(
                DeliveryFilter {
                    status: Some(DeliveryStatus::Diverted),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "the waiting deliveries",
            deliveries(
                DeliveryFilter {
                    status: Some(DeliveryStatus::Retrying),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "the deliveries of one event type",
            deliveries(
                DeliveryFilter {
                    event_type: Some("license.created".into()),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "the deliveries of a rare type",
            deliveries(
                DeliveryFilter {
                    event_type: Some("license.revoked".into()),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "an event's deliveries",
            deliveries(
                DeliveryFilter {
                    event_id: Some(format!("evt_{:026}", middle / FANOUT as i64)),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "a day's deliveries",
            deliveries(
                DeliveryFilter {
                    since: a_day.0,
                    until: a_day.1,
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "a day before any delivery",
            deliveries(
                DeliveryFilter {
                    since: Some(NOW - 40 * DAY),
                    until: Some(NOW - 39 * DAY),
                    ..Default::default()
                },
                None,
            ),
        ),
        ("the event list", events(EventFilter::default(), None)),
        (
            "the event list's next page",
            events(EventFilter::default(), Some(middle / FANOUT as i64)),
        ),
        (
            "the events of one type",
            events(
                EventFilter {
                    event_type: Some("license.created".into()),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "the events of a rare type",
            events(
                EventFilter {
                    event_type: Some("license.revoked".into()),
                    ..Default::default()
                },
                None,
            ),
        ),
        (
            "a day's events",
            events(
                EventFilter {
                    event_type: None,
                    since: a_day.0,
                    until: a_day.1,
                },
                None,
            ),
        ),
        (
            "a delivery's attempts",
            PlannedQuery::ListAttempts {
                tenant: TENANT.into(),
                delivery_id: middle,
            },
        ),
        (
            "the pacer's search for resumed backlogs",
            PlannedQuery::ResumedBacklogs,
        ),
        (
            "a slice of a pause's parking",
            PlannedQuery::Park {
                tenant: TENANT.into(),
                webhook_id: 1,
                limit: hookd::ops::backlog_pacer::PARK_SLICE,
            },
        ),
        (
            "a slice of a resumed backlog",
            PlannedQuery::Unpark {
                tenant: TENANT.into(),
                webhook_id: 1,
                limit: 1_000,
            },
        ),
        (
            "a batch of the retention purge",
            PlannedQuery::PurgeEvents {
                before: NOW - 20 * DAY,
                batch: 1_000,
            },
        ),
    ]
}

#[tokio::test]
async fn the_claim_the_management_lists_and_the_purge_read_through_indexes() {
    let db = loaded().await;
    let mut full_scans = Vec::new();
    for (what, q) in queries() {
        let plan = db.explain(&q).await;
        println!("{what}:\n  {}", plan.join("\n  "));
        assert!(!plan.is_empty(), "{what}: no plan");
        if let Some(line) = db.full_scan(&plan) {
            full_scans.push(format!("{what}: {line}\n  {}", plan.join("\n  ")));
        }
        // The rare statuses have an index of their own (migration
        // `list_indexes`): through the tenant's index, or the table, the
        // list would read every succeeded delivery to find them.
        if what == "the failed and diverted deliveries" {
            assert!(
                plan.iter()
                    .any(|l| l.contains("deliveries_failed_or_diverted")),
                "{what}: not through deliveries_failed_or_diverted:\n  {}",
                plan.join("\n  ")
            );
        }
    }
    assert!(
        full_scans.is_empty(),
        "plans that read a whole table:\n{}",
        full_scans.join("\n")
    );
}
