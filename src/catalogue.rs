//! A tenant's event-type catalogue: the built-in types overlaid with the
//! tenant's own rows (custom types, and archive marks on built-ins).

use std::collections::BTreeMap;

use crate::domain::event_type::{BUILTIN_EVENT_TYPES, Subscription, category_of};
use crate::store::{EventTypeRecord, Store, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub builtin: bool,
    pub archived_at: Option<i64>,
    /// JSON Schema of `data` (JSON text), checked when published.
    pub data_schema: Option<String>,
    /// An example `data` (JSON text), for "Send example" and the docs.
    pub example: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    entries: BTreeMap<String, CatalogueEntry>,
}

impl Catalogue {
    pub async fn load(store: &dyn Store, tenant: &str) -> StoreResult<Self> {
        Ok(Self::from_records(store.list_event_types(tenant).await?))
    }

    pub fn from_records(records: Vec<EventTypeRecord>) -> Self {
        let mut entries: BTreeMap<String, CatalogueEntry> = BUILTIN_EVENT_TYPES
            .iter()
            .map(|(name, description)| {
                (
                    name.to_string(),
                    CatalogueEntry {
                        name: name.to_string(),
                        category: category_of(name).to_string(),
                        description: Some(description.to_string()),
                        builtin: true,
                        archived_at: None,
                        data_schema: None,
                        example: None,
                    },
                )
            })
            .collect();
        for r in records {
            let entry = entries
                .entry(r.name.clone())
                .or_insert_with(|| CatalogueEntry {
                    name: r.name.clone(),
                    category: r.category.clone(),
                    description: r.description.clone(),
                    builtin: false,
                    archived_at: None,
                    data_schema: None,
                    example: None,
                });
            entry.archived_at = r.archived_at;
            entry.data_schema = r.data_schema;
            entry.example = r.example;
            if !entry.builtin {
                entry.description = r.description;
                entry.category = r.category;
            }
        }
        Self { entries }
    }

    /// Entries sorted by category, then name.
    pub fn entries(&self) -> Vec<&CatalogueEntry> {
        let mut v: Vec<_> = self.entries.values().collect();
        v.sort_by(|a, b| (&a.category, &a.name).cmp(&(&b.category, &b.name)));
        v
    }

    pub fn get(&self, name: &str) -> Option<&CatalogueEntry> {
        self.entries.get(name)
    }

    fn is_live(&self, name: &str) -> bool {
        self.entries
            .get(name)
            .is_some_and(|e| e.archived_at.is_none())
    }

    fn category_is_live(&self, category: &str) -> bool {
        self.entries
            .values()
            .any(|e| e.category == category && e.archived_at.is_none())
    }

    /// How many live types the subscriptions receive (wildcards expanded).
    pub fn count_subscribed(&self, subscriptions: &[String]) -> usize {
        self.entries
            .values()
            .filter(|e| e.archived_at.is_none())
            .filter(|e| {
                crate::domain::event_type::subscribes_to(subscriptions, &e.name, Some(&e.category))
            })
            .count()
    }

    /// The subscriptions in `events` that name no live type or category.
    pub fn unknown<'a>(&self, events: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        events
            .into_iter()
            .filter(|e| match Subscription::parse(e) {
                Some(Subscription::Exact(name)) => !self.is_live(name),
                Some(Subscription::Category(c)) => !self.category_is_live(c),
                None => true,
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, archived: bool) -> EventTypeRecord {
        EventTypeRecord {
            name: name.into(),
            category: category_of(name).into(),
            description: None,
            archived_at: archived.then_some(1),
            created_at: 0,
            data_schema: None,
            example: None,
        }
    }

    #[test]
    fn custom_types_join_and_archived_ones_leave() {
        let c = Catalogue::from_records(vec![
            record("invoice.paid", false),
            record("license.expired", true),
        ]);
        let ev = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            c.unknown(&ev(&["invoice.paid", "invoice.*", "license.created"]))
                .is_empty()
        );
        assert_eq!(
            c.unknown(&ev(&["license.expired", "nope.x", "nope.*"])),
            ev(&["license.expired", "nope.x", "nope.*"])
        );
    }
}
