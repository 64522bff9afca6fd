//! The tenant's event-type catalogue: list, add a tenant type, change a
//! type's description, schema and example, archive, restore. Built-in
//! types cannot be redefined (their schema and example can be set);
//! `webhook.test` cannot be archived.

use crate::catalogue::{Catalogue, CatalogueEntry};
use crate::domain::ValidationErrors;
use crate::domain::event_schema::{EventSchema, parse_example};
use crate::domain::event_type::{TEST_EVENT_TYPE, validate_event_type_name};
use crate::domain::webhook::{validate_category, validate_description};
use crate::store::EventTypeRecord;

use super::{OpError, OpResult, Services};

/// A tenant type as given, before validation.
#[derive(Debug, Clone, Default)]
pub struct NewEventType {
    pub name: String,
    /// One lowercase word (letters, digits, `_`); the name's first segment
    /// when absent. It may differ from that segment (`invoice.paid` in
    /// `billing`): a `billing.*` subscription then receives the type too.
    pub category: Option<String>,
    pub description: Option<String>,
    /// JSON Schema of `data`, as JSON text.
    pub schema: Option<String>,
    /// An example `data`, as JSON text (checked against `schema`).
    pub example: Option<String>,
}

/// Changes to a type: `Some(None)` clears a value, `None` keeps it.
#[derive(Debug, Clone, Default)]
pub struct EventTypeChanges {
    pub description: Option<Option<String>>,
    pub schema: Option<Option<String>>,
    pub example: Option<Option<String>>,
}

/// Checks a schema and an example together: the example must match the
/// schema it will be shown with. Answers them as stored (compact JSON).
fn schema_and_example(
    schema: Option<&str>,
    example: Option<&str>,
    errors: &mut ValidationErrors,
) -> (Option<String>, Option<String>) {
    let compiled = schema.and_then(|s| errors.check("schema", EventSchema::parse(s)));
    let example = match example {
        // A schema that failed says so itself; the example waits for it.
        Some(e) if schema.is_none() || compiled.is_some() => {
            errors.check("example", parse_example(e, compiled.as_ref()))
        }
        _ => None,
    };
    (compiled.map(|s| s.text().to_owned()), example)
}

/// The catalogue's types sorted by category (then name): live ones only
/// unless `include_archived`, of one category if given.
pub async fn list_event_types(
    ops: &Services,
    tenant: &str,
    include_archived: bool,
    category: Option<&str>,
) -> OpResult<Vec<CatalogueEntry>> {
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    Ok(catalogue
        .entries()
        .into_iter()
        .filter(|e| include_archived || e.archived_at.is_none())
        .filter(|e| category.is_none_or(|c| c == e.category))
        .cloned()
        .collect())
}

/// Validates and adds a tenant's own event type.
pub async fn create_event_type(
    ops: &Services,
    tenant: &str,
    input: NewEventType,
    now: i64,
) -> OpResult<CatalogueEntry> {
    let mut errors = ValidationErrors::new();
    let category = validate_category(&input.name, input.category.as_deref());
    let category = match category {
        Err(m) if validate_event_type_name(&input.name).is_err() => {
            errors.add("name", m);
            None
        }
        other => errors.check("category", other),
    };
    let description = match &input.description {
        Some(d) => errors
            .check("description", validate_description(d))
            .map(Some),
        None => Some(None),
    };
    let (data_schema, example) = schema_and_example(
        input.schema.as_deref(),
        input.example.as_deref(),
        &mut errors,
    );
    errors.into_result()?;
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    if catalogue.get(&input.name).is_some_and(|e| e.builtin) {
        return Err(OpError::Conflict(format!(
            "{:?} is a built-in event type",
            input.name
        )));
    }
    let record = EventTypeRecord {
        name: input.name,
        category: category.expect("validated"),
        description: description.expect("validated"),
        archived_at: None,
        created_at: now,
        data_schema,
        example,
    };
    ops.store.create_event_type(tenant, &record).await?;
    ops.schemas.invalidate(tenant);
    Ok(CatalogueEntry {
        name: record.name,
        category: record.category,
        description: record.description,
        builtin: false,
        archived_at: None,
        data_schema: record.data_schema,
        example: record.example,
    })
}

/// Changes a type's description (tenant types only), schema or example.
/// Published events of the type are checked against the new schema at
/// once on this instance, within 2 s on the others.
pub async fn update_event_type(
    ops: &Services,
    tenant: &str,
    name: &str,
    changes: EventTypeChanges,
    now: i64,
) -> OpResult<CatalogueEntry> {
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    let entry = catalogue.get(name).ok_or(OpError::NotFound("event type"))?;
    let mut errors = ValidationErrors::new();
    let description = match changes.description {
        // The catalogue's own wording: the request is well formed, the
        // type's nature refuses it (a conflict). Sending back what was
        // read changes nothing and is accepted.
        Some(d) if entry.builtin => {
            if d != entry.description {
                return Err(OpError::Conflict(format!(
                    "{name} is a built-in type: its description cannot be changed (its schema and example can)"
                )));
            }
            Some(d)
        }
        Some(Some(d)) => errors
            .check("description", validate_description(&d))
            .map(Some),
        Some(None) => Some(None),
        None => Some(entry.description.clone()),
    };
    let schema = changes.schema.unwrap_or_else(|| entry.data_schema.clone());
    let example = changes.example.unwrap_or_else(|| entry.example.clone());
    let (data_schema, example) =
        schema_and_example(schema.as_deref(), example.as_deref(), &mut errors);
    errors.into_result()?;
    let record = EventTypeRecord {
        name: entry.name.clone(),
        category: entry.category.clone(),
        description: description.expect("validated"),
        archived_at: entry.archived_at,
        created_at: now,
        data_schema,
        example,
    };
    ops.store.update_event_type(tenant, &record).await?;
    ops.schemas.invalidate(tenant);
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    catalogue
        .get(name)
        .cloned()
        .ok_or(OpError::NotFound("event type"))
}

/// Archives a type: existing subscriptions keep it, new ones are refused.
pub async fn archive_event_type(
    ops: &Services,
    tenant: &str,
    name: &str,
    now: i64,
) -> OpResult<()> {
    if name == TEST_EVENT_TYPE {
        return Err(OpError::field(
            "name",
            "webhook.test is used by the test endpoint and cannot be archived",
        ));
    }
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    let entry = catalogue.get(name).ok_or(OpError::NotFound("event type"))?;
    let record = EventTypeRecord {
        name: entry.name.clone(),
        category: entry.category.clone(),
        description: entry.description.clone(),
        archived_at: Some(now),
        created_at: now,
        data_schema: None,
        example: None,
    };
    ops.store.archive_event_type(tenant, &record).await?;
    Ok(())
}

/// Un-archives a type of the tenant's catalogue: new subscriptions to it
/// are accepted again.
pub async fn restore_event_type(
    ops: &Services,
    tenant: &str,
    name: &str,
) -> OpResult<CatalogueEntry> {
    let restored = ops.store.restore_event_type(tenant, name).await?;
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    // Restoring a live type changes nothing and answers it (idempotent, so
    // a retried restore is not an error); an unknown one is 404.
    match catalogue.get(name) {
        Some(entry) if restored || entry.archived_at.is_none() => Ok(entry.clone()),
        _ => Err(OpError::NotFound("event type")),
    }
}
