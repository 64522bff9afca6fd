//! The compiled JSON Schemas of each tenant's event types, for publishing
//! (SPEC §11). Publishing reads a tenant's set once per 2 s at most (one
//! read lock and a lookup otherwise), so a type without a schema costs a
//! hash lookup; a schema is compiled when its text is first seen and
//! reused while the text stays the same. Changes made through this
//! instance drop the tenant's entry at once; other instances' changes show
//! within the 2 s.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::event_schema::EventSchema;
use crate::store::{Store, StoreResult};

const TTL_MS: i64 = 2_000;
/// Tenants kept at once; past it the cache starts again empty.
const MAX_TENANTS: usize = 10_000;

struct TenantSchemas {
    loaded_at: i64,
    by_type: HashMap<String, Arc<EventSchema>>,
}

#[derive(Default)]
pub struct SchemaCache {
    tenants: RwLock<HashMap<String, TenantSchemas>>,
}

impl SchemaCache {
    /// The schema of `event_type` in `tenant`'s catalogue, if it has one.
    pub async fn schema_for(
        &self,
        store: &dyn Store,
        tenant: &str,
        event_type: &str,
        now: i64,
    ) -> StoreResult<Option<Arc<EventSchema>>> {
        if let Some(t) = self.tenants.read().expect("not poisoned").get(tenant)
            && now - t.loaded_at < TTL_MS
        {
            return Ok(t.by_type.get(event_type).cloned());
        }
        let records = store.list_event_types(tenant).await?;
        let mut tenants = self.tenants.write().expect("not poisoned");
        let previous = tenants.remove(tenant);
        let mut by_type = HashMap::new();
        for r in records {
            let Some(text) = r.data_schema else { continue };
            let kept = previous
                .as_ref()
                .and_then(|p| p.by_type.get(&r.name))
                .filter(|s| s.text() == text)
                .cloned();
            let schema = match kept {
                Some(s) => s,
                // Stored schemas were checked when saved; one that no
                // longer compiles (a later crate) is not enforced.
                None => match EventSchema::parse(&text) {
                    Ok(s) => Arc::new(s),
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, event_type = %r.name, error = %e,
                            "a stored event-type schema does not compile; not enforced");
                        continue;
                    }
                },
            };
            by_type.insert(r.name, schema);
        }
        let found = by_type.get(event_type).cloned();
        if tenants.len() >= MAX_TENANTS {
            tenants.clear();
        }
        tenants.insert(
            tenant.to_owned(),
            TenantSchemas {
                loaded_at: now,
                by_type,
            },
        );
        Ok(found)
    }

    /// A schema of `tenant` changed here: read it again next time.
    pub fn invalidate(&self, tenant: &str) {
        self.tenants.write().expect("not poisoned").remove(tenant);
    }
}
