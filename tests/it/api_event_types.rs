//! §4: the event-type catalogue, tenant types and archiving.

use crate::common;

use crate::common::{assert_problem, full};

use crate::common::{TestServer, assert_field_error, send};
use reqwest::Method;
use serde_json::{Value, json};

const TYPES: &str = "/management/event-types";
const HOOKS: &str = "/management/webhooks";

/// Every event the seeds name in the categories §4 lists, plus `webhook.test`.
const SEEDED: &[&str] = &[
    "license.generated",
    "license.created",
    "license.updated",
    "license.deleted",
    "license.assigned",
    "license.activated",
    "license.deactivated",
    "license.suspended",
    "license.expired",
    "license.revoked",
    "license.validated",
    "license.validation_failed",
    "activation.created",
    "activation.deleted",
    "activation.failed",
    "product.created",
    "product.updated",
    "product.deleted",
    "contract.created",
    "contract.updated",
    "contract.deleted",
    "contract.suspended",
    "telemetry.received",
    "telemetry.flagged",
    "webhook.test",
];

/// The names in the catalogue `list` answer.
fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("catalogue has no data: {list}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

fn entry<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

/// Requests as the bootstrap key acting on `tenant`.
fn as_tenant(s: &TestServer, tenant: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    s.req(method, path).header("X-Tenant-Id", tenant)
}

async fn catalogue(s: &TestServer, tenant: &str, query: &str) -> Value {
    let (status, list) = send(as_tenant(
        s,
        tenant,
        Method::GET,
        &format!("{TYPES}{query}"),
    ))
    .await;
    assert_eq!(status, 200, "{list}");
    list
}

async fn create_type(s: &TestServer, tenant: &str, body: Value) -> (u16, Value) {
    send(as_tenant(s, tenant, Method::POST, TYPES).json(&body)).await
}

async fn create_hook(s: &TestServer, tenant: &str, url: &str, events: Value) -> (u16, Value) {
    send(
        as_tenant(s, tenant, Method::POST, HOOKS)
            .json(&json!({"name": "hook", "url": url, "events": events})),
    )
    .await
}

fn unknown_events_message(problem: &Value) -> String {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "events")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn catalogue_lists_every_seeded_event_type_grouped_by_category() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let list = catalogue(&s, "default", "").await;
    let got = names(&list);
    for name in SEEDED {
        assert!(
            got.iter().any(|n| n == name),
            "{name} missing from the catalogue: {got:?}"
        );
        let e = entry(&list, name).unwrap();
        assert_eq!(e["category"], name.split('.').next().unwrap(), "{e}");
        assert_eq!(e["builtin"], true, "{e}");
        assert_eq!(e["archived"], false, "{e}");
    }
    assert_eq!(
        list["total"].as_u64(),
        Some(got.len() as u64),
        "total is not the count: {list}"
    );

    // Grouped: entries of one category are together, each category once.
    let categories = list["categories"].as_array().expect("categories");
    let mut seen = std::collections::HashSet::new();
    for c in categories {
        let name = c["name"].as_str().unwrap();
        assert!(
            seen.insert(name.to_string()),
            "category {name} listed twice: {list}"
        );
        for t in c["event_types"].as_array().unwrap() {
            assert!(
                t.as_str().unwrap().starts_with(&format!("{name}.")),
                "{t} filed under {name}"
            );
        }
    }
    for cat in [
        "license",
        "activation",
        "product",
        "contract",
        "telemetry",
        "webhook",
    ] {
        let c = categories
            .iter()
            .find(|c| c["name"] == cat)
            .unwrap_or_else(|| panic!("no category {cat}: {list}"));
        for name in SEEDED.iter().filter(|n| n.starts_with(&format!("{cat}."))) {
            assert!(
                c["event_types"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == name),
                "{name} not in {c}"
            );
        }
    }
    let mut last_category = String::new();
    let mut closed = std::collections::HashSet::new();
    for e in list["data"].as_array().unwrap() {
        let c = e["category"].as_str().unwrap().to_string();
        if c != last_category {
            assert!(
                closed.insert(c.clone()),
                "category {c} is split in data: {got:?}"
            );
            last_category = c;
        }
    }

    // Filtering by category.
    let lic = catalogue(&s, "default", "?category=license").await;
    assert!(
        names(&lic).iter().all(|n| n.starts_with("license.")),
        "{lic}"
    );
    assert!(names(&lic).contains(&"license.validation_failed".to_string()));
}

#[tokio::test]
async fn every_seeded_type_and_category_wildcard_can_be_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, w) = create_hook(&s, "default", "https://example.com/all", json!(SEEDED)).await;
    assert_eq!(status, 201, "{w}");
    let wildcards = json!([
        "license.*",
        "activation.*",
        "product.*",
        "contract.*",
        "telemetry.*",
        "webhook.*"
    ]);
    let (status, w) = create_hook(&s, "default", "https://example.com/wild", wildcards).await;
    assert_eq!(status, 201, "{w}");
}

#[tokio::test]
async fn tenant_type_can_be_created_then_subscribed_exactly_and_by_wildcard() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // Not yet known.
    for events in [json!(["invoice.paid"]), json!(["invoice.*"])] {
        let (status, problem) =
            create_hook(&s, "default", "https://example.com/early", events).await;
        assert_field_error(status, &problem, "events");
    }

    let (status, created) = create_type(
        &s,
        "default",
        json!({"name": "invoice.paid", "description": "An invoice was paid."}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "invoice.paid");
    assert_eq!(created["category"], "invoice");
    assert_eq!(created["description"], "An invoice was paid.");
    assert_eq!(created["builtin"], false);
    assert_eq!(created["archived"], false);

    let list = catalogue(&s, "default", "").await;
    let e = entry(&list, "invoice.paid").expect("new type listed");
    assert_eq!(e["description"], "An invoice was paid.");
    let invoice = list["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "invoice")
        .unwrap_or_else(|| panic!("no invoice category: {list}"));
    assert_eq!(invoice["event_types"], json!(["invoice.paid"]));

    let (status, exact) = create_hook(
        &s,
        "default",
        "https://example.com/exact",
        json!(["invoice.paid"]),
    )
    .await;
    assert_eq!(status, 201, "{exact}");
    let (status, wild) = create_hook(
        &s,
        "default",
        "https://example.com/wild",
        json!(["invoice.*"]),
    )
    .await;
    assert_eq!(status, 201, "{wild}");
    let (_, found) = s.get(&format!("{HOOKS}?event_type=invoice.paid")).await;
    assert_eq!(found["total"], 2, "{found}");

    // The category may be given when it matches the name.
    let (status, t) = create_type(
        &s,
        "default",
        json!({"name": "invoice.voided", "category": "invoice"}),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert!(t["description"].is_null(), "{t}");
    // Deeper names are fine; their category is the first segment.
    let (status, t) = create_type(&s, "default", json!({"name": "invoice.line_item.added"})).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["category"], "invoice");
}

#[tokio::test]
async fn duplicate_event_type_is_409_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, _) = create_type(&s, "default", json!({"name": "invoice.paid"})).await;
    assert_eq!(status, 201);
    let (status, ct, problem) = full(
        s.req(Method::POST, TYPES)
            .json(&json!({"name": "invoice.paid", "description": "again"})),
    )
    .await;
    assert_problem(status, &ct, &problem, 409);
    // A built-in name is taken too.
    let (status, ct, problem) = full(
        s.req(Method::POST, TYPES)
            .json(&json!({"name": "license.created"})),
    )
    .await;
    assert_problem(status, &ct, &problem, 409);
    // The first definition is unchanged.
    let list = catalogue(&s, "default", "").await;
    assert!(
        entry(&list, "invoice.paid").unwrap()["description"].is_null(),
        "{list}"
    );
    let lic = entry(&list, "license.created").unwrap();
    assert_eq!(lic["builtin"], true);
}

#[tokio::test]
async fn bad_event_type_name_is_400_naming_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let long = format!("invoice.{}", "p".repeat(130));
    for bad in [
        "Invoice.Paid",
        "invoice",
        "invoice.",
        ".paid",
        "invoice..paid",
        "invoice.paid!",
        "invoice.*",
        "*",
        "in voice.paid",
        "invoice/paid",
        "",
        long.as_str(),
    ] {
        let (status, ct, problem) =
            full(s.req(Method::POST, TYPES).json(&json!({"name": bad}))).await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error(status, &problem, "name");
    }
    for (body, field) in [
        (json!({"description": "no name"}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "invoice.paid", "colour": "red"}), "colour"),
        (
            json!({"name": "invoice.paid", "category": "Billing Dept"}),
            "category",
        ),
        (
            json!({"name": "invoice.paid", "description": "d".repeat(5000)}),
            "description",
        ),
    ] {
        let (status, problem) = s.post(TYPES, body.clone()).await;
        assert_field_error(status, &problem, field);
    }
    let list = catalogue(&s, "default", "").await;
    assert!(
        entry(&list, "invoice.paid").is_none(),
        "created despite errors: {list}"
    );
}

#[tokio::test]
async fn archiving_keeps_existing_subscriptions_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for name in ["invoice.paid", "invoice.sent"] {
        let (status, t) = create_type(&s, "default", json!({"name": name})).await;
        assert_eq!(status, 201, "{t}");
    }
    let (_, existing) = create_hook(
        &s,
        "default",
        "https://example.com/existing",
        json!(["invoice.paid", "license.created"]),
    )
    .await;
    let existing_path = format!("{HOOKS}/{}", existing["id"]);
    let (_, other) = create_hook(
        &s,
        "default",
        "https://example.com/other",
        json!(["license.created"]),
    )
    .await;
    let other_path = format!("{HOOKS}/{}", other["id"]);

    let resp = s
        .req(Method::DELETE, &format!("{TYPES}/invoice.paid"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);

    // The existing subscription is still there, and survives unrelated edits.
    let (status, got) = s.get(&existing_path).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["events"], json!(["invoice.paid", "license.created"]));
    let (status, p) = s.patch(&existing_path, json!({"name": "renamed"})).await;
    assert_eq!(
        status, 200,
        "editing a webhook with an archived subscription: {p}"
    );
    assert_eq!(p["events"], json!(["invoice.paid", "license.created"]));
    let (status, p) = s
        .patch(&existing_path, json!({"add_events": ["license.revoked"]}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert!(
        p["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "invoice.paid"),
        "{p}"
    );
    let (_, found) = s.get(&format!("{HOOKS}?event_type=invoice.paid")).await;
    assert_eq!(found["total"], 1, "{found}");

    // New subscriptions are refused, naming the archived type.
    let (status, problem) = create_hook(
        &s,
        "default",
        "https://example.com/new",
        json!(["invoice.paid"]),
    )
    .await;
    assert_field_error(status, &problem, "events");
    assert!(
        unknown_events_message(&problem).contains("invoice.paid"),
        "{problem}"
    );
    let (status, problem) = s
        .patch(&other_path, json!({"add_events": ["invoice.paid"]}))
        .await;
    assert_field_error(status, &problem, "add_events");
    let (status, problem) = s
        .patch(&other_path, json!({"events": ["invoice.paid"]}))
        .await;
    assert_field_error(status, &problem, "events");
    let (_, unchanged) = s.get(&other_path).await;
    assert_eq!(unchanged["events"], json!(["license.created"]));
    // The category still has a live type, so its wildcard is fine.
    let (status, w) = create_hook(
        &s,
        "default",
        "https://example.com/wild",
        json!(["invoice.*"]),
    )
    .await;
    assert_eq!(status, 201, "{w}");

    // The catalogue hides archived types unless asked.
    let list = catalogue(&s, "default", "").await;
    assert!(
        entry(&list, "invoice.paid").is_none(),
        "archived type listed: {list}"
    );
    assert!(entry(&list, "invoice.sent").is_some());
    let all = catalogue(&s, "default", "?include_archived=true").await;
    let e = entry(&all, "invoice.paid").unwrap_or_else(|| panic!("archived type gone: {all}"));
    assert_eq!(e["archived"], true, "{e}");
    assert!(e["archived_at"].is_string(), "{e}");
}

#[tokio::test]
async fn archiving_an_unknown_type_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for name in ["invoice.paid", "nope.nope", "LICENSE.CREATED"] {
        let (status, ct, problem) = full(s.req(Method::DELETE, &format!("{TYPES}/{name}"))).await;
        assert_problem(status, &ct, &problem, 404);
    }
}

#[tokio::test]
async fn archiving_a_builtin_type_affects_only_that_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, _) = send(as_tenant(
        &s,
        "tenant-a",
        Method::DELETE,
        &format!("{TYPES}/license.revoked"),
    ))
    .await;
    assert_eq!(status, 204);
    let (status, problem) = create_hook(
        &s,
        "tenant-a",
        "https://example.com/a",
        json!(["license.revoked"]),
    )
    .await;
    assert_field_error(status, &problem, "events");
    let (status, w) = create_hook(
        &s,
        "default",
        "https://example.com/d",
        json!(["license.revoked"]),
    )
    .await;
    assert_eq!(status, 201, "archived in another tenant's catalogue: {w}");
    let list = catalogue(&s, "default", "").await;
    assert!(entry(&list, "license.revoked").is_some(), "{list}");
    let a_list = catalogue(&s, "tenant-a", "").await;
    assert!(entry(&a_list, "license.revoked").is_none(), "{a_list}");
}

#[tokio::test]
async fn tenant_types_are_invisible_to_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, t) = create_type(
        &s,
        "tenant-a",
        json!({"name": "invoice.paid", "description": "A's"}),
    )
    .await;
    assert_eq!(status, 201, "{t}");

    let b_list = catalogue(&s, "tenant-b", "").await;
    assert!(
        entry(&b_list, "invoice.paid").is_none(),
        "A's type in B's catalogue: {b_list}"
    );
    assert!(
        !b_list["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "invoice"),
        "{b_list}"
    );
    let (_, default_list) = s.get(TYPES).await;
    assert!(
        entry(&default_list, "invoice.paid").is_none(),
        "{default_list}"
    );

    for events in [json!(["invoice.paid"]), json!(["invoice.*"])] {
        let (status, problem) = create_hook(&s, "tenant-b", "https://example.com/b", events).await;
        assert_field_error(status, &problem, "events");
    }
    // B cannot archive A's type...
    let (status, _) = send(as_tenant(
        &s,
        "tenant-b",
        Method::DELETE,
        &format!("{TYPES}/invoice.paid"),
    ))
    .await;
    assert_eq!(status, 404);
    let (status, w) = create_hook(
        &s,
        "tenant-a",
        "https://example.com/a",
        json!(["invoice.paid"]),
    )
    .await;
    assert_eq!(status, 201, "B archived A's type: {w}");
    // ...but may define its own type of the same name.
    let (status, t) = create_type(
        &s,
        "tenant-b",
        json!({"name": "invoice.paid", "description": "B's"}),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let b_list = catalogue(&s, "tenant-b", "").await;
    assert_eq!(
        entry(&b_list, "invoice.paid").unwrap()["description"],
        "B's"
    );
    let a_list = catalogue(&s, "tenant-a", "").await;
    assert_eq!(
        entry(&a_list, "invoice.paid").unwrap()["description"],
        "A's"
    );

    // A provisioned key sees its own tenant's catalogue.
    let key = s.api_key("tenant-a", &["webhooks:read"]).await;
    let (status, list) = send(
        s.req_as(&key, Method::GET, TYPES)
            .header("X-Tenant-Id", "tenant-b"),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(entry(&list, "invoice.paid").unwrap()["description"], "A's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_in_its_own_category_is_reached_by_that_category_wildcard() {
    let dir = tempfile::tempdir().unwrap();
    let rx = common::receiver::Receiver::start().await;
    let s = common::ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .start()
        .await;
    let (status, t) = s
        .post(
            TYPES,
            json!({"name": "invoice.paid", "category": "billing"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["category"], "billing");
    let hook = s
        .create_webhook(&rx.url("/billing"), json!({"events": ["billing.*"]}))
        .await;
    let (_, list) = s.get("/management/webhooks?event_type=invoice.paid").await;
    assert_eq!(
        list["total"], 1,
        "the event_type filter follows the category: {list}"
    );
    assert_eq!(list["data"][0]["id"], hook["id"]);
    let (status, ev) = s
        .post(
            "/v1/events",
            json!({"type": "invoice.paid", "data": {"amount": 5}}),
        )
        .await;
    assert_eq!(status, 202, "{ev}");
    assert_eq!(ev["deliveries"], 1, "{ev}");
    let got = rx
        .wait_for("/billing", 1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(got[0].json()["type"], "invoice.paid");
}
