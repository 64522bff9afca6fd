//! An event type's JSON Schema and example (SPEC §11): checked when saved
//! (a schema that does not compile, or an example it refuses, is a field
//! error), compiled once, and the published `data` checked against it.
//!
//! References resolve within the schema only: the crate is built without
//! its HTTP and file retrievers, so a remote `$ref` is refused when saved
//! rather than fetched (hookd makes no request a tenant could aim).

use serde_json::Value;

use super::delivery::json_depth_exceeds;

/// Largest schema or example accepted, in bytes of JSON text.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Deepest nesting of a schema or example (compiling recurses).
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// A compiled schema with the text it came from.
pub struct EventSchema {
    text: String,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for EventSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSchema")
            .field("text", &self.text)
            .finish()
    }
}

/// Where `data` broke its schema: a JSON Pointer into `data` and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `""` for `data` itself, `/items/0/sku` within it.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "at {path}: {}", self.message)
    }
}

fn parse_bounded(text: &str, what: &str) -> Result<Value, String> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(format!(
            "must be at most {} KiB of JSON",
            MAX_SCHEMA_BYTES / 1024
        ));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("is not valid JSON ({what}): {e}"))?;
    if json_depth_exceeds(text, MAX_SCHEMA_DEPTH) {
        return Err(format!("must be at most {MAX_SCHEMA_DEPTH} levels deep"));
    }
    Ok(value)
}

impl EventSchema {
    /// Compiles a schema given as JSON text: an object that is a valid JSON
    /// Schema (draft from `$schema`, 2020-12 when absent).
    pub fn parse(text: &str) -> Result<Self, String> {
        let value = parse_bounded(text, "a JSON Schema")?;
        // `true` and `false` are JSON Schemas too, but no use here: `true`
        // is no schema (`null`), and `false` refuses every event and any
        // example. An object keeps the document's `object` exact.
        if !value.is_object() {
            return Err("must be a JSON Schema object (e.g. {\"type\": \"object\"})".into());
        }
        let validator = jsonschema::validator_for(&value)
            .map_err(|e| format!("is not a valid JSON Schema: {e}"))?;
        Ok(Self {
            text: serde_json::to_string(&value).expect("a Value serialises"),
            validator,
        })
    }

    /// The schema as stored (compact JSON).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first violation of `data`, if any (the first is enough to fix).
    pub fn check(&self, data: &Value) -> Result<(), Violation> {
        match self.validator.iter_errors(data).next() {
            None => Ok(()),
            Some(e) => Err(Violation {
                path: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
            }),
        }
    }

    /// Checks `data` given as JSON text (already known well-formed).
    pub fn check_text(&self, data: &str) -> Result<(), Violation> {
        let value: Value = serde_json::from_str(data).map_err(|e| Violation {
            path: String::new(),
            message: e.to_string(),
        })?;
        self.check(&value)
    }
}

/// Parses an example `data` (a JSON object, as events carry) and checks
/// it against the type's schema when there is one; answers compact JSON.
pub fn parse_example(text: &str, schema: Option<&EventSchema>) -> Result<String, String> {
    let value = parse_bounded(text, "an example of data")?;
    if !value.is_object() {
        return Err("must be a JSON object (an event's data)".into());
    }
    if let Some(schema) = schema {
        schema
            .check(&value)
            .map_err(|v| format!("does not match the schema: {v}"))?;
    }
    Ok(serde_json::to_string(&value).expect("a Value serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORDER: &str = r#"{
        "type": "object",
        "required": ["id", "items"],
        "properties": {
            "id": {"type": "string"},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["sku"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}
            }}
        }
    }"#;

    #[test]
    fn valid_data_passes() {
        let s = EventSchema::parse(ORDER).unwrap();
        assert!(
            s.check(&json!({"id": "o1", "items": [{"sku": "a", "qty": 2}]}))
                .is_ok()
        );
    }

    #[test]
    fn a_violation_names_its_json_path() {
        let s = EventSchema::parse(ORDER).unwrap();
        let v = s
            .check(&json!({"id": "o1", "items": [{"sku": "a"}, {"sku": "b", "qty": 0}]}))
            .unwrap_err();
        assert_eq!(v.path, "/items/1/qty");
        assert!(v.to_string().starts_with("at /items/1/qty: "), "{v}");
        let v = s.check(&json!({"items": []})).unwrap_err();
        assert_eq!(v.path, "");
        assert!(v.message.contains("\"id\""), "{v}");
    }

    #[test]
    fn bad_schemas_are_refused() {
        for bad in [
            "not json",
            "[1, 2]",
            "true",
            "false",
            r#"{"type": "objekt"}"#,
            r#"{"minimum": "three"}"#,
            r#"{"$ref": "https://hooks.example.test/schema.json"}"#,
            r##"{"$ref": "#/$defs/missing"}"##,
        ] {
            assert!(EventSchema::parse(bad).is_err(), "{bad} was accepted");
        }
        let deep = format!(
            "{}{}",
            "{\"not\":".repeat(100),
            "{}".to_owned() + &"}".repeat(100)
        );
        assert!(
            EventSchema::parse(&deep)
                .unwrap_err()
                .contains("levels deep")
        );
    }

    #[test]
    fn examples_are_objects_that_match_the_schema() {
        let s = EventSchema::parse(ORDER).unwrap();
        assert_eq!(
            parse_example(r#"{ "id": "o1", "items": [] }"#, Some(&s)).unwrap(),
            r#"{"id":"o1","items":[]}"#
        );
        let e = parse_example(r#"{"id": 5, "items": []}"#, Some(&s)).unwrap_err();
        assert!(e.contains("at /id"), "{e}");
        assert!(parse_example("[1]", None).is_err());
        assert!(parse_example("{}", None).is_ok());
    }
}
