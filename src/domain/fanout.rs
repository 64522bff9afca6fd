//! Publish planning: what one group commit stores for a batch of events.
//! From the events, the stored events their idempotency keys name, and the
//! webhooks of each tenant and environment, the plan says which events are
//! answered by an earlier one, which deliveries each new event makes, which
//! of those are leased to the publishing instance, and what each publisher
//! is answered. Pure: the store reads what the plan asks for and writes what
//! it plans, in one transaction, so both backends follow one set of rules.

use std::collections::HashMap;
use std::sync::Arc;

use super::delivery::{DeliveryJob, DeliveryStatus, NewEvent, PublishedEvent, delivery_body};
use super::event_type::subscribes_to;
use super::filter::{EventView, Filter};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3_600_000;

/// A lease taken on new deliveries as they are inserted, so the instance
/// that accepted an event can attempt it at once without a claim query.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
    /// At most this many new deliveries are leased; the rest wait for a claim.
    pub max: usize,
}

/// How one event of a batch is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Stored now.
    Fresh,
    /// Its idempotency key was seen earlier in this batch, at this index.
    SameAs(usize),
    /// Its idempotency key was stored within the window: the first answer.
    Replay(PublishedEvent),
}

/// A stored event found by its idempotency key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub seq: i64,
    pub answer: PublishedEvent,
}

/// A webhook as fan-out needs it.
#[derive(Debug, Clone, Default)]
pub struct Subscriber {
    pub id: i64,
    pub events: Vec<String>,
    pub suspended: bool,
    /// Compiled once per webhook version (see `store::hot_sql::FilterCache`).
    pub filter: Option<Arc<Filter>>,
    /// `ordering: fifo`: its deliveries carry their queue's key and wait
    /// for a claim, which takes a queue's oldest unfinished one only.
    pub ordered: bool,
    /// Paused: its deliveries are stored parked (no due time).
    pub paused: bool,
}

/// What the store read for the plan, aligned with the plan's requests.
/// Shared pieces: a backend may keep them for later batches
/// (`store::postgres::audiences`).
#[derive(Debug, Default)]
pub struct Audience {
    /// The enabled webhooks of each of `PublishPlan::groups`, in id order.
    pub subscribers: Vec<Arc<Vec<Subscriber>>>,
    /// For each of `PublishPlan::tenants`, its types whose category is not
    /// their name's first segment.
    pub categories: Vec<Arc<HashMap<String, String>>>,
    /// For each of `PublishPlan::named`: whether the webhook is suspended,
    /// `None` if it does not exist.
    pub named: Vec<Option<bool>>,
}

/// Where a fresh event's deliveries go.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Not stored (answered by another event).
    None,
    /// Fan-out: index into `groups`, and into `tenants`.
    Group(usize, usize),
    /// One webhook (a test send): index into `named`.
    Named(usize),
}

/// A delivery to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDelivery {
    /// Index of its event in the batch.
    pub event: usize,
    pub webhook_id: i64,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    /// Leased to the publishing instance (`Lease::owner` until `Lease::until`).
    pub leased: bool,
    /// For a fifo webhook: stored with the event's ordering key (`""`
    /// when it gave none), never leased at insert.
    pub ordered: bool,
}

impl PlannedDelivery {
    /// Due but not leased: a claim (this instance's, or another's once
    /// told) must take it.
    pub fn left_for_a_claim(&self) -> bool {
        self.status == DeliveryStatus::Pending && !self.leased && self.next_attempt_at.is_some()
    }
}

/// The plan of one publish batch. Made in three steps, each after the
/// store's reads: `new` (keys looked up), `fan_out` (audience read),
/// `finish` (rows inserted).
#[derive(Debug)]
pub struct PublishPlan<'a> {
    events: &'a [NewEvent],
    /// One per event.
    pub slots: Vec<Slot>,
    /// Stored events whose key expired: their key is cleared before the new
    /// events are stored, so the key is free again.
    pub expired_keys: Vec<i64>,
    /// The (tenant, environment) pairs whose webhooks fan-out needs.
    pub groups: Vec<(&'a str, &'a str)>,
    /// The tenants whose custom categories fan-out needs.
    pub tenants: Vec<&'a str>,
    /// The (tenant, webhook) of each event sent to one webhook.
    pub named: Vec<(&'a str, i64)>,
    sources: Vec<Source>,
    /// Deliveries per event (0 for events not stored).
    pub counts: Vec<u32>,
    /// The deliveries to insert, grouped by event in batch order.
    pub deliveries: Vec<PlannedDelivery>,
    /// (event, webhook) pairs a webhook's filter turned away.
    pub filtered: u64,
}

/// The events whose idempotency key the store must look up: the first of
/// each (tenant, key) in the batch.
pub fn key_lookups(events: &[NewEvent]) -> Vec<usize> {
    let mut seen: HashMap<(&str, &str), ()> = HashMap::new();
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.idempotency_key
                .as_deref()
                .is_some_and(|k| seen.insert((e.tenant_id.as_str(), k), ()).is_none())
        })
        .map(|(i, _)| i)
        .collect()
}

impl<'a> PublishPlan<'a> {
    /// Settles idempotency: `found` holds, for each index of `key_lookups`,
    /// the stored event with that key, if any. A key stored within the
    /// window replays its first answer; an older one is free again; a key
    /// repeated in the batch gets the answer of its first event.
    pub fn new(
        events: &'a [NewEvent],
        found: impl IntoIterator<Item = (usize, Option<StoredKey>)>,
        now: i64,
    ) -> Self {
        let mut found: HashMap<usize, Option<StoredKey>> = found.into_iter().collect();
        let mut slots = Vec::with_capacity(events.len());
        let mut expired_keys = Vec::new();
        let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let Some(key) = e.idempotency_key.as_deref() else {
                slots.push(Slot::Fresh);
                continue;
            };
            if let Some(&first) = first_of.get(&(e.tenant_id.as_str(), key)) {
                slots.push(match &slots[first] {
                    Slot::Replay(answer) => Slot::Replay(answer.clone()),
                    _ => Slot::SameAs(first),
                });
                continue;
            }
            first_of.insert((e.tenant_id.as_str(), key), i);
            slots.push(match found.remove(&i).flatten() {
                Some(stored) if stored.answer.created_at > now - IDEMPOTENCY_WINDOW_MS => {
                    Slot::Replay(stored.answer)
                }
                Some(stored) => {
                    expired_keys.push(stored.seq);
                    Slot::Fresh
                }
                None => Slot::Fresh,
            });
        }

        let (mut groups, mut tenants, mut named) = (Vec::new(), Vec::new(), Vec::new());
        let mut group_index: HashMap<(&str, &str), usize> = HashMap::new();
        let mut tenant_index: HashMap<&str, usize> = HashMap::new();
        let sources = events
            .iter()
            .zip(&slots)
            .map(|(e, slot)| {
                if *slot != Slot::Fresh {
                    return Source::None;
                }
                if let Some(id) = e.only_webhook {
                    named.push((e.tenant_id.as_str(), id));
                    return Source::Named(named.len() - 1);
                }
                let key = (e.tenant_id.as_str(), e.environment.as_str());
                let g = *group_index.entry(key).or_insert_with(|| {
                    groups.push(key);
                    groups.len() - 1
                });
                let t = *tenant_index.entry(key.0).or_insert_with(|| {
                    tenants.push(key.0);
                    tenants.len() - 1
                });
                Source::Group(g, t)
            })
            .collect();
        Self {
            events,
            slots,
            expired_keys,
            groups,
            tenants,
            named,
            sources,
            counts: Vec::new(),
            deliveries: Vec::new(),
            filtered: 0,
        }
    }

    /// Fan-out: each stored event gets a delivery per enabled webhook of its
    /// tenant and environment that subscribes to its type and whose filter
    /// it matches (a suspended one gets it `diverted`, a paused one parked);
    /// the first `lease.max` pending unordered ones are leased. An event's
    /// `data` is parsed once, and only if a filter reads it.
    pub fn fan_out(&mut self, audience: &Audience, lease: Option<&Lease>, now: i64) {
        let mut lease_left = lease.map_or(0, |l| l.max);
        self.counts = vec![0; self.events.len()];
        let null = serde_json::Value::Null;
        for (i, e) in self.events.iter().enumerate() {
            let mut add = |webhook_id: i64, s: &Subscriber| {
                let status = if s.suspended {
                    DeliveryStatus::Diverted
                } else {
                    DeliveryStatus::Pending
                };
                let leased =
                    status == DeliveryStatus::Pending && !s.ordered && !s.paused && lease_left > 0;
                if leased {
                    lease_left -= 1;
                }
                // A leased delivery falls due again only if its lease runs out.
                let next_attempt_at = match (status, lease) {
                    (DeliveryStatus::Diverted, _) => None,
                    _ if s.paused => None,
                    (_, Some(l)) if leased => Some(l.until),
                    _ => Some(now),
                };
                self.counts[i] += 1;
                self.deliveries.push(PlannedDelivery {
                    event: i,
                    webhook_id,
                    status,
                    next_attempt_at,
                    leased,
                    ordered: s.ordered,
                });
            };
            match self.sources[i] {
                Source::None => {}
                Source::Named(n) => {
                    if let Some(suspended) = audience.named[n] {
                        let s = Subscriber {
                            suspended,
                            ..Subscriber::default()
                        };
                        add(self.named[n].1, &s);
                    }
                }
                Source::Group(g, t) => {
                    let category = audience.categories[t].get(&e.event_type);
                    let mut data: Option<serde_json::Value> = None;
                    for s in audience.subscribers[g].iter() {
                        if !subscribes_to(&s.events, &e.event_type, category.map(String::as_str)) {
                            continue;
                        }
                        if let Some(f) = &s.filter {
                            let data = if f.reads_data() {
                                data.get_or_insert_with(|| {
                                    serde_json::from_str(&e.data).unwrap_or(serde_json::Value::Null)
                                })
                            } else {
                                &null
                            };
                            let view = EventView {
                                event_type: &e.event_type,
                                data,
                            };
                            if !f.matches(view) {
                                self.filtered += 1;
                                continue;
                            }
                        }
                        add(s.id, s);
                    }
                }
            }
        }
    }

    /// The answers and the leased jobs, once the deliveries are inserted
    /// with the ids `delivery_ids` (aligned with `deliveries`).
    pub fn finish(self, delivery_ids: &[i64]) -> PublishBatch {
        let events = self.events;
        let mut jobs = Vec::new();
        let mut unleased = 0;
        let mut bodies: HashMap<usize, bytes::Bytes> = HashMap::new();
        for (d, &delivery_id) in self.deliveries.iter().zip(delivery_ids) {
            if d.status != DeliveryStatus::Pending {
                continue;
            }
            if !d.leased {
                unleased += usize::from(d.left_for_a_claim());
                continue;
            }
            let e = &events[d.event];
            jobs.push(DeliveryJob {
                delivery_id,
                tenant_id: e.tenant_id.clone(),
                webhook_id: d.webhook_id,
                event_id: e.id.clone(),
                event_type: e.event_type.clone(),
                event_created_at: e.created_at,
                body: bodies
                    .entry(d.event)
                    .or_insert_with(|| delivery_body(&e.id, &e.event_type, e.created_at, &e.data))
                    .clone(),
                attempts: 0,
                retry_step: 0,
                ordered: false,
            });
        }
        let counts = self.counts;
        let filtered = self.filtered;
        let answer = |i: usize| PublishedEvent {
            id: events[i].id.clone(),
            event_type: events[i].event_type.clone(),
            created_at: events[i].created_at,
            deliveries: counts.get(i).copied().unwrap_or(0),
        };
        let results = self
            .slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| match slot {
                Slot::Fresh => answer(i),
                Slot::SameAs(first) => answer(first),
                Slot::Replay(r) => r,
            })
            .collect();
        PublishBatch {
            results,
            jobs,
            unleased,
            filtered,
        }
    }

    /// Indices of the events to store, in batch order.
    pub fn fresh(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Slot::Fresh)
            .map(|(i, _)| i)
    }
}

/// What a publish batch produced.
#[derive(Debug, Default)]
pub struct PublishBatch {
    /// One per input event, in input order (replays for repeated keys).
    pub results: Vec<PublishedEvent>,
    /// The new deliveries leased to the caller.
    pub jobs: Vec<DeliveryJob>,
    /// New deliveries left for a claim (beyond `Lease::max`, or no lease).
    pub unleased: usize,
    /// (event, webhook) pairs a filter turned away.
    pub filtered: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn event(id: &str, tenant: &str, key: Option<&str>) -> NewEvent {
        NewEvent {
            id: id.into(),
            tenant_id: tenant.into(),
            event_type: "license.generated".into(),
            environment: "production".into(),
            data: "{}".into(),
            idempotency_key: key.map(Into::into),
            created_at: NOW,
            only_webhook: None,
            ordering_key: None,
        }
    }

    fn stored(seq: i64, id: &str, created_at: i64) -> StoredKey {
        StoredKey {
            seq,
            answer: PublishedEvent {
                id: id.into(),
                event_type: "license.generated".into(),
                created_at,
                deliveries: 3,
            },
        }
    }

    fn subscriber(id: i64, events: &[&str], suspended: bool) -> Subscriber {
        Subscriber {
            id,
            events: events.iter().map(|s| s.to_string()).collect(),
            suspended,
            ..Subscriber::default()
        }
    }

    fn one_group(subscribers: Vec<Subscriber>) -> Audience {
        Audience {
            subscribers: vec![Arc::new(subscribers)],
            categories: vec![Arc::default()],
            named: Vec::new(),
        }
    }

    #[test]
    fn only_the_first_event_of_each_key_is_looked_up() {
        let events = [
            event("a", "t1", Some("k")),
            event("b", "t1", Some("k")),
            event("c", "t2", Some("k")),
            event("d", "t1", None),
        ];
        assert_eq!(key_lookups(&events), vec![0, 2]);
    }

    #[test]
    fn a_key_within_the_window_replays_and_an_expired_one_is_freed() {
        let events = [
            event("a", "t", Some("recent")),
            event("b", "t", Some("recent")),
            event("c", "t", Some("old")),
        ];
        let found = [
            (
                0,
                Some(stored(7, "evt_first", NOW - IDEMPOTENCY_WINDOW_MS + 1)),
            ),
            (2, Some(stored(9, "evt_old", NOW - IDEMPOTENCY_WINDOW_MS))),
        ];
        let plan = PublishPlan::new(&events, found, NOW);
        let replay = Slot::Replay(stored(7, "evt_first", NOW - IDEMPOTENCY_WINDOW_MS + 1).answer);
        assert_eq!(plan.slots, vec![replay.clone(), replay, Slot::Fresh]);
        assert_eq!(plan.expired_keys, vec![9]);
        assert_eq!(plan.fresh().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_key_repeated_in_the_batch_answers_as_its_first_event() {
        let events = [event("a", "t", Some("k")), event("b", "t", Some("k"))];
        let mut plan = PublishPlan::new(&events, [(0, None)], NOW);
        assert_eq!(plan.slots, vec![Slot::Fresh, Slot::SameAs(0)]);
        plan.fan_out(
            &one_group(vec![subscriber(1, &["license.*"], false)]),
            None,
            NOW,
        );
        let batch = plan.finish(&[10]);
        assert_eq!(batch.results[0], batch.results[1]);
        assert_eq!(batch.results[1].id, "a");
        assert_eq!(batch.results[1].deliveries, 1);
    }

    #[test]
    fn fan_out_follows_subscriptions_and_diverts_suspended_webhooks() {
        let events = [event("a", "t", None)];
        let mut plan = PublishPlan::new(&events, [], NOW);
        assert_eq!(plan.groups, vec![("t", "production")]);
        let audience = one_group(vec![
            subscriber(1, &["license.generated"], false),
            subscriber(2, &["other.thing"], false),
            subscriber(3, &["license.*"], true),
        ]);
        plan.fan_out(&audience, None, NOW);
        assert_eq!(
            plan.deliveries,
            vec![
                PlannedDelivery {
                    event: 0,
                    webhook_id: 1,
                    status: DeliveryStatus::Pending,
                    next_attempt_at: Some(NOW),
                    leased: false,
                    ordered: false,
                },
                PlannedDelivery {
                    event: 0,
                    webhook_id: 3,
                    status: DeliveryStatus::Diverted,
                    next_attempt_at: None,
                    leased: false,
                    ordered: false,
                },
            ]
        );
        assert_eq!(plan.counts, vec![2]);
        let batch = plan.finish(&[5, 6]);
        assert!(batch.jobs.is_empty());
        assert_eq!(batch.unleased, 1);
    }

    #[test]
    fn a_tenant_category_reaches_its_wildcard() {
        let mut e = event("a", "t", None);
        e.event_type = "invoice.paid".into();
        let events = [e];
        let mut plan = PublishPlan::new(&events, [], NOW);
        let mut audience = one_group(vec![subscriber(1, &["billing.*"], false)]);
        audience.categories[0] = Arc::new(HashMap::from([(
            "invoice.paid".to_owned(),
            "billing".to_owned(),
        )]));
        plan.fan_out(&audience, None, NOW);
        assert_eq!(plan.counts, vec![1]);
    }

    #[test]
    fn only_lease_max_pending_deliveries_are_leased_until_the_lease_ends() {
        let events = [event("a", "t", None), event("b", "t", None)];
        let mut plan = PublishPlan::new(&events, [], NOW);
        let lease = Lease {
            owner: "me".into(),
            until: NOW + 120_000,
            max: 3,
        };
        let audience = one_group(vec![
            subscriber(1, &["license.*"], false),
            subscriber(2, &["license.*"], true),
            subscriber(3, &["license.*"], false),
        ]);
        plan.fan_out(&audience, Some(&lease), NOW);
        let leased: Vec<_> = plan.deliveries.iter().map(|d| d.leased).collect();
        // Diverted deliveries take no lease.
        assert_eq!(leased, vec![true, false, true, true, false, false]);
        assert_eq!(plan.deliveries[0].next_attempt_at, Some(NOW + 120_000));
        assert_eq!(plan.deliveries[5].next_attempt_at, Some(NOW));
        let batch = plan.finish(&[1, 2, 3, 4, 5, 6]);
        let ids: Vec<_> = batch.jobs.iter().map(|j| j.delivery_id).collect();
        assert_eq!(ids, vec![1, 3, 4]);
        assert_eq!(batch.unleased, 1);
        // One body per event, shared by its jobs.
        assert!(batch.jobs[0].body.as_ptr() == batch.jobs[1].body.as_ptr());
    }

    #[test]
    fn a_test_send_reaches_its_one_webhook_if_it_exists() {
        let mut a = event("a", "t", None);
        a.only_webhook = Some(42);
        let mut b = event("b", "t", None);
        b.only_webhook = Some(43);
        let events = [a, b];
        let mut plan = PublishPlan::new(&events, [], NOW);
        assert!(plan.groups.is_empty());
        assert_eq!(plan.named, vec![("t", 42), ("t", 43)]);
        let audience = Audience {
            named: vec![Some(false), None],
            ..Audience::default()
        };
        plan.fan_out(&audience, None, NOW);
        assert_eq!(plan.counts, vec![1, 0]);
        assert_eq!(plan.deliveries[0].webhook_id, 42);
    }

    #[test]
    fn a_filter_turns_events_away_and_is_counted() {
        let mut a = event("a", "t", None);
        a.data = r#"{"amount": 50}"#.into();
        let mut b = event("b", "t", None);
        b.data = r#"{"amount": 5}"#.into();
        let events = [a, b];
        let mut plan = PublishPlan::new(&events, [], NOW);
        let filter = Filter::compile(&serde_json::json!({"data.amount": {"$gte": 10}})).unwrap();
        let mut big = subscriber(1, &["license.*"], false);
        big.filter = Some(Arc::new(filter));
        plan.fan_out(
            &one_group(vec![big, subscriber(2, &["license.*"], false)]),
            None,
            NOW,
        );
        let targets: Vec<_> = plan
            .deliveries
            .iter()
            .map(|d| (d.event, d.webhook_id))
            .collect();
        assert_eq!(targets, vec![(0, 1), (0, 2), (1, 2)]);
        assert_eq!(plan.counts, vec![2, 1]);
        assert_eq!(plan.finish(&[1, 2, 3]).filtered, 1);
    }

    #[test]
    fn ordered_deliveries_wait_for_a_claim_and_paused_ones_are_parked() {
        let events = [event("a", "t", None)];
        let mut plan = PublishPlan::new(&events, [], NOW);
        let lease = Lease {
            owner: "me".into(),
            until: NOW + 120_000,
            max: 10,
        };
        let mut fifo = subscriber(1, &["license.*"], false);
        fifo.ordered = true;
        let mut paused = subscriber(2, &["license.*"], false);
        paused.paused = true;
        plan.fan_out(
            &one_group(vec![fifo, paused, subscriber(3, &["license.*"], false)]),
            Some(&lease),
            NOW,
        );
        let d = &plan.deliveries;
        assert!(d[0].ordered && !d[0].leased && d[0].next_attempt_at == Some(NOW));
        assert!(!d[1].leased && d[1].next_attempt_at.is_none());
        assert_eq!(d[1].status, DeliveryStatus::Pending);
        assert!(d[2].leased);
        let batch = plan.finish(&[1, 2, 3]);
        // The parked delivery is not backlog a claim could take.
        assert_eq!(batch.unleased, 1);
        assert_eq!(batch.jobs.len(), 1);
    }
}
