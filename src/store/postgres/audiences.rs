//! The audiences fan-out read, kept between batches: a tenant and
//! environment's enabled webhooks, a tenant's custom categories. A batch
//! whose audience is all kept skips the read, one round trip of the two a
//! publish costs on the lean path (`hot`).
//!
//! Invariant: what is kept was read by one statement together with
//! `audience_generation` (migration 0010), outside any transaction that
//! wrote, so it is what the database held at that generation. A batch
//! planned on it is written only if the generation is still current in
//! the writing statement's own snapshot (`hot::INSERT`, `RECORD_AND_INSERT`); if it
//! is not, nothing of the batch is written, all that is kept is dropped,
//! and the batch is written again, planned on a fresh read. Triggers bump the
//! generation in the transaction of every change to what fan-out reads,
//! on any instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::fanout::{Audience, PublishPlan, Subscriber};

/// Groups kept at most; past it, everything is dropped and kept afresh.
const MAX_GROUPS: usize = 10_000;

#[derive(Default)]
pub(super) struct Audiences {
    kept: Mutex<Kept>,
}

impl std::fmt::Debug for Audiences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audiences").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Kept {
    /// The generation everything kept was read at; 0: nothing kept.
    generation: i64,
    /// Tenant → environment → its enabled webhooks, in id order.
    groups: HashMap<String, HashMap<String, Arc<Vec<Subscriber>>>>,
    group_count: usize,
    /// Tenant → its custom categories.
    categories: HashMap<String, Arc<HashMap<String, String>>>,
}

impl Audiences {
    /// The plan's whole audience and the generation it was read at, if all
    /// of it is kept. A test send (a named webhook) is always read.
    pub fn lookup(&self, plan: &PublishPlan<'_>) -> Option<(Audience, i64)> {
        if !plan.named.is_empty() {
            return None;
        }
        let kept = self.kept.lock().expect("audiences");
        if kept.generation == 0 {
            return None;
        }
        let subscribers = plan
            .groups
            .iter()
            .map(|&(tenant, environment)| kept.groups.get(tenant)?.get(environment).cloned())
            .collect::<Option<Vec<_>>>()?;
        let categories = plan
            .tenants
            .iter()
            .map(|&tenant| kept.categories.get(tenant).cloned())
            .collect::<Option<Vec<_>>>()?;
        let audience = Audience {
            subscribers,
            categories,
            named: Vec::new(),
        };
        Some((audience, kept.generation))
    }

    /// Keeps what a read outside any writing transaction found at
    /// `generation`. A read older than what is kept is not kept.
    pub fn keep(&self, plan: &PublishPlan<'_>, audience: &Audience, generation: i64) {
        let mut kept = self.kept.lock().expect("audiences");
        if generation < kept.generation {
            return;
        }
        if generation > kept.generation || kept.group_count + plan.groups.len() > MAX_GROUPS {
            *kept = Kept {
                generation,
                ..Kept::default()
            };
        }
        for (&(tenant, environment), subscribers) in plan.groups.iter().zip(&audience.subscribers) {
            let previous = kept
                .groups
                .entry(tenant.to_owned())
                .or_default()
                .insert(environment.to_owned(), subscribers.clone());
            if previous.is_none() {
                kept.group_count += 1;
            }
        }
        for (&tenant, categories) in plan.tenants.iter().zip(&audience.categories) {
            kept.categories
                .insert(tenant.to_owned(), categories.clone());
        }
    }

    /// A write found the generation moved: nothing kept is current.
    pub fn forget(&self) {
        *self.kept.lock().expect("audiences") = Kept::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::NewEvent;

    fn event(tenant: &str, environment: &str) -> NewEvent {
        NewEvent {
            id: format!("evt_{tenant}_{environment}"),
            tenant_id: tenant.into(),
            event_type: "a.b".into(),
            environment: environment.into(),
            data: "{}".into(),
            idempotency_key: None,
            created_at: 0,
            only_webhook: None,
            ordering_key: None,
        }
    }

    fn audience_of(plan: &PublishPlan<'_>, webhook: i64) -> Audience {
        Audience {
            subscribers: plan
                .groups
                .iter()
                .map(|_| {
                    Arc::new(vec![Subscriber {
                        id: webhook,
                        ..Subscriber::default()
                    }])
                })
                .collect(),
            categories: plan.tenants.iter().map(|_| Arc::default()).collect(),
            named: Vec::new(),
        }
    }

    #[test]
    fn an_audience_is_found_only_whole_and_at_the_generation_it_was_read() {
        let audiences = Audiences::default();
        let one = [event("t1", "live")];
        let two = [event("t1", "live"), event("t2", "live")];
        let (plan_one, plan_two) = (PublishPlan::new(&one, [], 0), PublishPlan::new(&two, [], 0));
        assert!(audiences.lookup(&plan_one).is_none(), "nothing kept yet");

        audiences.keep(&plan_one, &audience_of(&plan_one, 7), 5);
        let (found, generation) = audiences.lookup(&plan_one).expect("kept");
        assert_eq!((found.subscribers[0][0].id, generation), (7, 5));
        assert!(audiences.lookup(&plan_two).is_none(), "t2 was never read");

        // An older read does not replace a newer one; a newer one drops
        // what an older generation left.
        audiences.keep(&plan_two, &audience_of(&plan_two, 8), 4);
        assert!(audiences.lookup(&plan_two).is_none());
        audiences.keep(&plan_two, &audience_of(&plan_two, 9), 6);
        let (found, generation) = audiences.lookup(&plan_one).expect("kept");
        assert_eq!((found.subscribers[0][0].id, generation), (9, 6));

        audiences.forget();
        assert!(audiences.lookup(&plan_one).is_none());
    }
}
