//! One webhook, many views: made through any surface, it is listed, read
//! and edited through every other one and the JSON API, and delivered to,
//! signed, whichever surface made it.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{seed_002, seed_003, seed_004};
use crate::common::receiver::Receiver;
use crate::common::{ServerConfig, TestServer, send};

/// One tenant, named as each surface names it.
const TENANT: &str = seed_004::TENANT;

#[tokio::test]
async fn a_webhook_made_through_any_surface_is_the_same_webhook_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        TestServer::start_with(ServerConfig::new(dir.path()).arg("--allow-private-targets")).await;
    let rx = Receiver::start().await;
    let v_path = format!("/management/v1/projects/{TENANT}/webhooks");
    let e_path = format!("/event/{TENANT}/webhooks");

    // Through seed 002.
    let (status, v) = send(seed_002::req(&s, Method::POST, &v_path).json(&json!({
        "target_url": rx.url("/from-002"), "events": ["license.created"], "active": true,
    })))
    .await;
    assert_eq!(status, 200, "{v}");
    // Through seed 004.
    let (status, e) = send(s.req(Method::POST, &e_path).json(&json!({
        "name": "from-004", "enabled": true,
        "endpoint": {"url": rx.url("/from-004"), "headers": {"X-From": ["004"]}},
        "eventTypes": ["license.*"],
    })))
    .await;
    assert_eq!(status, 200, "{e}");

    // The JSON API lists both in the tenant.
    let (status, list) = send(
        s.req(Method::GET, "/management/webhooks")
            .header("X-Tenant-Id", TENANT),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 2, "{list}");
    let json_ids: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_i64().unwrap())
        .collect();
    let v_id = json_ids[0];
    let e_id = json_ids[1];
    assert_eq!(e["locator"], e_id.to_string());
    assert_eq!(list["data"][0]["url"], v["target_url"]);
    assert_eq!(list["data"][1]["headers"], json!({"X-From": ["004"]}));

    // Seed 004 reads seed 002's webhook, and edits it.
    let (status, seen) = send(s.req(Method::GET, &format!("{e_path}/{v_id}"))).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["endpoint"]["url"], v["target_url"]);
    assert_eq!(seen["eventTypes"], v["events"]);
    let (status, _) = send(
        s.req(Method::PATCH, &format!("{e_path}/{v_id}"))
            .json(&json!({"endpoint": {"addHeaders": {"X-Edited": ["by-004"]}}})),
    )
    .await;
    assert_eq!(status, 200);
    // Seed 002 lists seed 004's webhook and reads the edit's effects.
    let (status, vlist) = send(seed_002::req(&s, Method::GET, &v_path)).await;
    assert_eq!(status, 200, "{vlist}");
    assert_eq!(vlist["total"], 2);
    assert_eq!(vlist["data"][1]["target_url"], e["endpoint"]["url"]);
    assert_eq!(vlist["data"][0]["id"], v["id"]);
    // The JSON API edits seed 004's webhook; seed 002 sees it.
    let (status, _) = send(
        s.req(Method::PATCH, &format!("/management/webhooks/{e_id}"))
            .header("X-Tenant-Id", TENANT)
            .json(&json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, vlist) = send(seed_002::req(&s, Method::GET, &v_path)).await;
    assert_eq!(vlist["data"][1]["active"], false);
    let (status, _) = send(
        s.req(Method::PATCH, &format!("/management/webhooks/{e_id}"))
            .header("X-Tenant-Id", TENANT)
            .json(&json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200);

    // One event reaches both, signed, with their custom headers.
    let (status, ev) = send(
        s.req(Method::POST, "/v1/events")
            .header("X-Tenant-Id", TENANT)
            .json(&json!({"type": "license.created", "data": {"license_id": 7}})),
    )
    .await;
    assert_eq!(status, 202, "{ev}");
    assert_eq!(ev["deliveries"], 2, "{ev}");
    for (p, own_header) in [("/from-002", None), ("/from-004", Some(("x-from", "004")))] {
        let got = rx.wait_for(p, 1, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1, "{p}");
        let d = &got[0];
        let sig = d.header("webhook-signature").expect("signed");
        assert!(sig.starts_with("v1,"), "{sig}");
        assert_eq!(
            d.header("x-webhook-signature").as_deref(),
            Some(sig.as_str())
        );
        assert!(d.header("webhook-id").unwrap().starts_with("sls-webhook-"));
        assert_eq!(d.json()["type"], "license.created");
        if let Some((name, value)) = own_header {
            assert_eq!(d.header(name).as_deref(), Some(value));
        }
    }
    let from_002 = &rx.received("/from-002")[0];
    assert_eq!(from_002.header("x-edited").as_deref(), Some("by-004"));
}

#[tokio::test]
async fn a_webhook_made_through_seed_003_is_the_same_webhook_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        TestServer::start_with(ServerConfig::new(dir.path()).arg("--allow-private-targets")).await;
    let rx = Receiver::start().await;
    // The organization is the tenant, written as every surface writes it.
    let org = TENANT.to_owned();
    let slash = |m: Method, p: &str| seed_003::req_as(&s, crate::common::MGMT_KEY, &org, m, p);

    let (status, made) = send(slash(Method::POST, "/organizations/webhooks").json(&json!({
        "name": "from-003",
        "description": "made through seed 003",
        "target_url": "https://hooks.example.com/from-003",
        "custom_headers": {"X-From": ["003"]},
        "timeout": "5s",
    })))
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["result"]["id"].as_str().unwrap().to_owned();
    let one = format!("/organizations/webhooks/{id}");
    let (status, _) = send(
        slash(Method::POST, &format!("{one}/triggers"))
            .json(&json!({"trigger_type": "event", "trigger_name": "license.created"})),
    )
    .await;
    assert_eq!(status, 201);

    // The JSON API reads it: same id, fields, headers, timeout, events.
    let (status, w) = send(
        s.req(Method::GET, &format!("/management/webhooks/{id}"))
            .header("X-Tenant-Id", TENANT),
    )
    .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["name"], "from-003");
    assert_eq!(w["description"], "made through seed 003");
    assert_eq!(w["url"], "https://hooks.example.com/from-003");
    assert_eq!(w["headers"], json!({"X-From": ["003"]}));
    assert_eq!(w["timeout"], "5s");
    assert_eq!(w["events"], json!(["license.created"]));
    // Seed 004 reads it and adds an event type; seed 003 sees the trigger.
    let e_one = format!("/event/{TENANT}/webhooks/{id}");
    let (status, e) = send(s.req(Method::GET, &e_one)).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["endpoint"]["url"], w["url"]);
    assert_eq!(e["endpoint"]["headers"], w["headers"]);
    let (status, _) = send(
        s.req(Method::PATCH, &e_one)
            .json(&json!({"addEventTypes": ["license.revoked"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, t) = send(slash(Method::GET, &format!("{one}/triggers"))).await;
    assert_eq!(
        t["result"],
        json!([
            {"trigger_type": "event", "trigger_name": "license.created"},
            {"trigger_type": "event", "trigger_name": "license.revoked"},
        ])
    );
    // Seed 002 lists it.
    let (status, v) = send(seed_002::req(
        &s,
        Method::GET,
        &format!("/management/v1/projects/{TENANT}/webhooks"),
    ))
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"][0]["target_url"], w["url"]);
    assert_eq!(
        v["data"][0]["events"],
        json!(["license.created", "license.revoked"])
    );

    // The JSON API points it at the receiver (its own URL rules); seed 003
    // shows the URL and still edits the webhook's other fields.
    let (status, _) = send(
        s.req(Method::PATCH, &format!("/management/webhooks/{id}"))
            .header("X-Tenant-Id", TENANT)
            .json(&json!({"url": rx.url("/from-003")})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, p) = send(
        slash(Method::PATCH, &one)
            .json(&json!({"custom_headers": {"X-From": ["003"], "X-Edited": ["by-003"]}})),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["result"]["target_url"], rx.url("/from-003"));

    // Delivered, signed, with its custom headers.
    let (status, ev) = send(
        s.req(Method::POST, "/v1/events")
            .header("X-Tenant-Id", TENANT)
            .json(&json!({"type": "license.created", "data": {"license_id": 3}})),
    )
    .await;
    assert_eq!(status, 202, "{ev}");
    assert_eq!(ev["deliveries"], 1, "{ev}");
    let got = rx.wait_for("/from-003", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let d = &got[0];
    let sig = d.header("webhook-signature").expect("signed");
    assert!(sig.starts_with("v1,"), "{sig}");
    assert!(d.header("webhook-id").unwrap().starts_with("sls-webhook-"));
    assert_eq!(d.header("x-from").as_deref(), Some("003"));
    assert_eq!(d.header("x-edited").as_deref(), Some("by-003"));
    assert_eq!(d.json()["type"], "license.created");

    // Deleted through seed 003: gone from the JSON API.
    let (status, _) = send(slash(Method::DELETE, &one)).await;
    assert_eq!(status, 204);
    let (status, _) = send(
        s.req(Method::GET, &format!("/management/webhooks/{id}"))
            .header("X-Tenant-Id", TENANT),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_each_surfaces_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let call = |m: Method, p: &str| s.client.request(m, s.url(p));
    // Seed 003: {"errors": [{"httpcode", "message"}]}.
    for (m, p, code) in [
        (Method::PUT, "/organizations/webhooks", 405),
        (Method::GET, "/organizations/webhooks/1/nope", 404),
    ] {
        let (status, body) = send(call(m, p)).await;
        assert_eq!(status, code, "{p}: {body}");
        assert_eq!(body["errors"][0]["httpcode"], code, "{p}: {body}");
    }
    // Seed 004: {status, error, message, errors}.
    let (status, body) = send(call(Method::PUT, &format!("/event/{TENANT}/webhooks/1"))).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["status"], 405, "{body}");
    assert!(body["errors"].is_array(), "{body}");
    // Seed 002: {code, key, message, details}.
    let (status, body) = send(call(
        Method::PATCH,
        "/management/v1/projects/p/webhooks/wh_x",
    ))
    .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["code"], 405, "{body}");
    assert_eq!(body["key"], "method_not_allowed", "{body}");
    // hookd's own paths keep problem+json.
    let (status, body) = send(call(Method::GET, "/nowhere")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["status"], 404, "{body}");
    assert!(body["type"].is_string(), "{body}");
}
