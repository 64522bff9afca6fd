//! §11: event types carry a JSON Schema and an example. A schema is
//! checked when saved; a published event of a type with a schema must
//! match it (400 naming the JSON path); "Send example" delivers the example.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::receiver::Receiver;
use crate::common::{ServerConfig, TestServer, assert_field_error, send};

const TYPES: &str = "/management/event-types";

fn invoice_schema() -> Value {
    json!({
        "type": "object",
        "required": ["invoice_id", "amount"],
        "properties": {
            "invoice_id": {"type": "string", "pattern": "^inv_"},
            "amount": {"type": "integer", "minimum": 0},
            "lines": {"type": "array", "items": {
                "type": "object", "required": ["sku"],
                "properties": {"sku": {"type": "string"}}
            }}
        }
    })
}

fn example() -> Value {
    json!({"invoice_id": "inv_1", "amount": 1200, "lines": [{"sku": "pro"}]})
}

async fn type_of(s: &TestServer, name: &str) -> Value {
    let (status, list) = s.get(&format!("{TYPES}?include_archived=true")).await;
    assert_eq!(status, 200, "{list}");
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

async fn publish(s: &TestServer, event_type: &str, data: Value) -> (u16, Value) {
    s.post("/v1/events", json!({"type": event_type, "data": data}))
        .await
}

/// The message of the error that names `field`.
fn message_for(body: &Value, field: &str) -> String {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {body}"))
        .iter()
        .find(|e| e["field"] == field)
        .unwrap_or_else(|| panic!("no error names {field}: {body}"))["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_type_with_a_schema_takes_only_matching_events_and_names_the_failing_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, t) = s
        .post(
            TYPES,
            json!({"name": "invoice.paid", "schema": invoice_schema(), "example": example()}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["schema"], invoice_schema());
    assert_eq!(t["example"], example());
    assert_eq!(
        type_of(&s, "invoice.paid").await["schema"],
        invoice_schema()
    );

    let (status, out) = publish(&s, "invoice.paid", example()).await;
    assert_eq!(status, 202, "a matching event: {out}");
    let (status, out) = publish(
        &s,
        "invoice.paid",
        json!({"invoice_id": "inv_2", "amount": -5}),
    )
    .await;
    assert_field_error(status, &out, "data");
    let m = message_for(&out, "data");
    assert!(m.contains("at /amount:"), "{m}");
    let (status, out) = publish(
        &s,
        "invoice.paid",
        json!({"invoice_id": "inv_3", "amount": 1, "lines": [{"sku": "a"}, {"qty": 1}]}),
    )
    .await;
    assert_field_error(status, &out, "data");
    assert!(message_for(&out, "data").contains("at /lines/1:"), "{out}");
    let (status, out) = publish(&s, "invoice.paid", json!({"amount": 1})).await;
    assert_field_error(status, &out, "data");
    assert!(message_for(&out, "data").contains("invoice_id"), "{out}");

    // In a batch, the failing event is named and nothing is stored.
    let (status, out) = s
        .post(
            "/v1/events/batch",
            json!({"events": [
                {"type": "invoice.paid", "data": example()},
                {"type": "invoice.paid", "data": {"invoice_id": "bad", "amount": 1}},
            ]}),
        )
        .await;
    assert_field_error(status, &out, "events[1].data");
    assert!(
        message_for(&out, "events[1].data").contains("at /invoice_id:"),
        "{out}"
    );
    let (_, events) = s.get("/management/events?event_type=invoice.paid").await;
    assert_eq!(
        events["data"].as_array().unwrap().len(),
        1,
        "only the first single publish: {events}"
    );

    // Types without a schema take any object, as before.
    let (status, out) = publish(&s, "license.created", json!({"anything": [1, "two"]})).await;
    assert_eq!(status, 202, "{out}");
}

#[tokio::test]
async fn schemas_are_checked_when_saved() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for (schema, why) in [
        (json!({"type": "objekt"}), "an unknown type"),
        (json!({"minimum": "three"}), "a keyword of the wrong kind"),
        (
            json!({"$ref": "https://hooks.example.test/schema.json"}),
            "a remote reference",
        ),
        (json!({"$ref": "#/$defs/missing"}), "a reference to nothing"),
        (json!([1, 2]), "not a schema"),
    ] {
        let (status, out) = s
            .post(TYPES, json!({"name": "order.placed", "schema": schema}))
            .await;
        assert_field_error(status, &out, "schema");
        assert!(!out.to_string().contains("internal"), "{why}: {out}");
    }
    // An example must be an object matching the schema.
    let (status, out) = s
        .post(
            TYPES,
            json!({"name": "order.placed", "schema": invoice_schema(), "example": {"amount": 1}}),
        )
        .await;
    assert_field_error(status, &out, "example");
    let (status, out) = s
        .post(TYPES, json!({"name": "order.placed", "example": [1]}))
        .await;
    assert_field_error(status, &out, "example");
    // Nothing was saved by the refusals.
    let (_, list) = s.get(TYPES).await;
    assert!(!list.to_string().contains("order.placed"), "{list}");
}

#[tokio::test]
async fn a_built_in_type_gets_a_schema_and_loses_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let schema = json!({"type": "object", "required": ["license_id"]});
    let (status, t) = s
        .patch(
            &format!("{TYPES}/license.created"),
            json!({"schema": schema, "example": {"license_id": "lic_1"}}),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["builtin"].as_bool(), &t["schema"]),
        (Some(true), &schema)
    );
    let (status, out) = publish(&s, "license.created", json!({"seat": 1})).await;
    assert_field_error(status, &out, "data");
    // An example that no longer matches a new schema is refused with it.
    let (status, out) = s
        .patch(
            &format!("{TYPES}/license.created"),
            json!({"schema": {"type": "object", "required": ["seat"]}}),
        )
        .await;
    assert_field_error(status, &out, "example");
    // A built-in's description stays the catalogue's: changing it is a
    // conflict with what the type is; sending back what was read is not.
    let (status, out) = s
        .patch(
            &format!("{TYPES}/license.created"),
            json!({"description": "mine"}),
        )
        .await;
    assert_eq!(status, 409, "{out}");
    assert!(
        out["detail"].as_str().unwrap().contains("built-in"),
        "{out}"
    );
    let (_, read) = s.get(TYPES).await;
    let builtin = read["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "license.created")
        .unwrap()["description"]
        .clone();
    let (status, out) = s
        .patch(
            &format!("{TYPES}/license.created"),
            json!({"description": builtin}),
        )
        .await;
    assert_eq!((status, &out["description"]), (200, &builtin), "{out}");
    // Cleared: any object again.
    let (status, t) = s
        .patch(&format!("{TYPES}/license.created"), json!({"schema": null}))
        .await;
    assert_eq!((status, &t["schema"]), (200, &Value::Null), "{t}");
    let (status, out) = publish(&s, "license.created", json!({"seat": 1})).await;
    assert_eq!(status, 202, "{out}");
    let (status, _) = s
        .patch(&format!("{TYPES}/no.such"), json!({"schema": null}))
        .await;
    assert_eq!(status, 404);
    // Another tenant's catalogue is untouched.
    let (_, other) = send(s.req(Method::GET, TYPES).header("X-Tenant-Id", "other")).await;
    let created = other["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "license.created")
        .unwrap()
        .clone();
    assert_eq!(created["example"], Value::Null);
}

#[tokio::test]
async fn send_example_delivers_the_types_example_to_one_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .start()
        .await;
    let rx = Receiver::start().await;
    s.post(
        TYPES,
        json!({"name": "invoice.paid", "schema": invoice_schema(), "example": example()}),
    )
    .await;
    // Subscribed to something else: the example goes to it all the same.
    let hook = s
        .create_webhook(&rx.url("/ex"), json!({"events": ["license.created"]}))
        .await;
    let other = s
        .create_webhook(&rx.url("/other"), json!({"events": ["invoice.paid"]}))
        .await;
    let id = hook["id"].as_i64().unwrap();
    let (status, out) = s
        .post(
            &format!("/management/webhooks/{id}/send-example"),
            json!({"event_type": "invoice.paid"}),
        )
        .await;
    assert_eq!(
        (status, out["type"].as_str()),
        (202, Some("invoice.paid")),
        "{out}"
    );
    // One delivery, to the chosen webhook only (not the subscribed one).
    assert_eq!(out["deliveries"], 1, "{out}");
    let got = rx.wait_for("/ex", 1, Duration::from_secs(20)).await;
    let body = got[0].json();
    assert_eq!(body["type"], "invoice.paid");
    assert_eq!(body["data"], example());
    let (_, to_other) = s
        .get(&format!(
            "/management/deliveries?webhook_id={}",
            other["id"]
        ))
        .await;
    assert_eq!(to_other["data"], json!([]), "{to_other}");
    let (status, out) = s
        .post(
            &format!("/management/webhooks/{id}/send-example"),
            json!({"event_type": "license.created"}),
        )
        .await;
    // A type without an example: its state, not the request, is at fault.
    assert_eq!(status, 409, "{out}");
    assert!(
        out["detail"]
            .as_str()
            .unwrap()
            .contains("license.created has no example"),
        "{out}"
    );
    let (status, _) = s
        .post(
            &format!("/management/webhooks/{id}/send-example"),
            json!({"event_type": "no.such"}),
        )
        .await;
    assert_eq!(status, 404);
}
