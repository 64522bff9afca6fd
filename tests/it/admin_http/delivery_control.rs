//! Delivery control on the webhook pages (SPEC §12): the form's payload
//! filter and ordering (set, shown, kept, cleared; a bad filter refused
//! next to its input naming the operator or path, as the API names it),
//! and Pause / Resume from the list and the webhook's page, in the admin
//! page and in a portal; a read-only portal shows the state and acts not.

use super::portal::{Portal, link_for, portal_server};
use super::*;
use crate::common::receiver::Receiver;

/// Asserts the delivery is still waiting, unattempted.
async fn assert_waiting(s: &TestServer, tenant: &str, webhook_id: i64) {
    let (status, list) = send(
        s.req(
            Method::GET,
            &format!("/management/deliveries?webhook_id={webhook_id}"),
        )
        .header("X-Tenant-Id", tenant),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let data = list["data"].as_array().unwrap();
    assert!(!data.is_empty(), "no delivery was made: {list}");
    for d in data {
        assert_eq!(d["status"], "pending", "{d}");
        assert_eq!(d["attempt_count"], 0, "{d}");
    }
}

#[tokio::test]
async fn the_form_sets_a_filter_and_fifo_ordering_and_names_a_bad_filters_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let rx = Receiver::start().await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let new = admin.page("/admin/webhooks/new").await;
    let mut fields = form_fields(&new, "/admin/webhooks");
    assert_eq!(value_of(&fields, "filter"), Some(""));
    assert_eq!(value_of(&fields, "ordering"), Some("none"));
    set(&mut fields, "name", "big orders");
    set(&mut fields, "url", &rx.url("/big"));
    set_all(&mut fields, "events", &["license.created"]);
    set(&mut fields, "filter", r#"{"data.n": {"$gte": 100}}"#);
    set(&mut fields, "ordering", "fifo");
    let p = admin.post_raw("/admin/webhooks", &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let w = webhooks_of(&s, "default").await.pop().unwrap();
    assert_eq!(w["filter"], json!({"data.n": {"$gte": 100}}), "{w}");
    assert_eq!(w["ordering"], "fifo");
    let id = w["id"].as_i64().unwrap();

    // Applied: the small order makes no delivery, the big one goes.
    for n in [5, 150] {
        let (status, body) = s
            .post(
                "/v1/events",
                json!({"type": "license.created", "data": {"n": n}}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let got = rx.wait_for("/big", 1, WAIT).await;
    assert_eq!(got[0].json()["data"]["n"], 150);

    // The edit form shows both; saving it unchanged keeps them.
    let action = format!("/admin/webhooks/{id}");
    let edit = admin.page(&action).await;
    let fields = form_fields(&edit, &action);
    let shown: Value = serde_json::from_str(value_of(&fields, "filter").unwrap()).unwrap();
    assert_eq!(shown, json!({"data.n": {"$gte": 100}}));
    assert_eq!(value_of(&fields, "ordering"), Some("fifo"));
    let p = admin.post_raw(&action, &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, kept) = webhook(&s, "default", id).await;
    assert_eq!(
        (&kept["filter"], &kept["ordering"]),
        (&w["filter"], &w["ordering"])
    );

    // Refused next to the input, naming where, as the API does; what was
    // typed stays in the form; nothing is saved.
    for (typed, named) in [
        (
            r#"{"data.n": {"$regex": "^1"}}"#,
            "filter.data.n.$regex: unknown operator",
        ),
        (r#"{"payload.n": 1}"#, "filter.payload.n: is not a path"),
        (
            r#"{"$or": [{"type": "a"}, {"data.n": {"$gt": [1]}}]}"#,
            "filter.$or[1].data.n.$gt",
        ),
        (r#"{"data.n": "#, "is not JSON"),
    ] {
        let mut bad = fields.clone();
        set(&mut bad, "filter", typed);
        let p = admin.post_raw(&action, &bad, &[]).await;
        assert_eq!(p.status, 400, "{typed}: {}", p.body);
        let message = field_error(&p.body, "filter").unwrap_or_default();
        assert!(message.contains(named), "{typed}: {message:?}");
        let again = form_fields(&p.body, &action);
        assert_eq!(value_of(&again, "filter"), Some(typed.trim()));
        // The API refuses the same document naming the same place.
        if let Ok(doc) = serde_json::from_str::<Value>(typed) {
            let (status, api) = s
                .patch(&format!("{HOOKS}/{id}"), json!({ "filter": doc }))
                .await;
            let field = named.split(':').next().unwrap();
            crate::common::assert_field_error(status, &api, field);
        }
    }
    let mut bad = fields.clone();
    set(&mut bad, "ordering", "lifo");
    let p = admin.post_raw(&action, &bad, &[]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(field_error(&p.body, "ordering").is_some(), "{}", p.body);
    assert_eq!(webhook(&s, "default", id).await.1["filter"], w["filter"]);

    // Emptied, the filter is removed; unordered again.
    let mut cleared = fields.clone();
    set(&mut cleared, "filter", "");
    set(&mut cleared, "ordering", "none");
    let p = admin.post_raw(&action, &cleared, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, w) = webhook(&s, "default", id).await;
    assert_eq!(
        (&w["filter"], &w["ordering"]),
        (&json!(null), &json!("none"))
    );
}

#[tokio::test]
async fn pause_and_resume_from_the_list_and_the_page_hold_then_release_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let rx = Receiver::start().await;
    let w = create_in(
        &s,
        "default",
        json!({"name": "held", "url": rx.url("/held"), "events": ["license.created"]}),
    )
    .await;
    let id = w["id"].as_i64().unwrap();
    let admin = sign_in(&s, MGMT_KEY, "").await;

    // From the list: back to the list (its filters kept), marked paused.
    let here = "/admin/webhooks?q=held";
    let list = admin.page(here).await;
    let pause = format!("/admin/webhooks/{id}/pause");
    let fields = form_fields(&list, &pause);
    assert_eq!(value_of(&fields, "return_to"), Some(here));
    let p = admin.post_raw(&pause, &fields, &[]).await;
    assert_eq!(
        (p.status, p.location()),
        (303, format!("{here}&done=paused#toggle-{id}")),
        "{}",
        p.body
    );
    let (_, paused) = webhook(&s, "default", id).await;
    assert_eq!(paused["paused"], true, "{paused}");
    let paused_at = paused["paused_at"].as_str().unwrap().to_owned();
    let list = admin.page(&format!("{here}&done=paused")).await;
    assert!(list.contains("Webhook paused"), "the notice");
    let row = Html::parse_document(&list)
        .select(&selector(&format!("tr[data-webhook-id=\"{id}\"]")))
        .next()
        .unwrap()
        .html();
    assert!(row.contains("badge paused"), "{row}");
    let since = paused_at.replacen('T', " ", 1).replace('Z', " UTC");
    assert!(row.contains(&format!("since {since}")), "{row}");
    assert!(find_form(&list, &format!("/admin/webhooks/{id}/resume")).is_some());
    assert!(find_form(&list, &pause).is_none());

    // Held: the event waits unattempted.
    publish(&s, "default", "license.created").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(rx.received("/held").is_empty(), "delivered while paused");
    assert_waiting(&s, "default", id).await;

    // The page says so and since when; resuming there comes back to it.
    let page_path = format!("/admin/webhooks/{id}");
    let page = admin.page(&page_path).await;
    let state = Html::parse_document(&page)
        .select(&selector("#paused-since"))
        .next()
        .map(|e| e.text().collect::<String>())
        .unwrap_or_else(|| panic!("no paused state on the page:\n{page}"));
    assert!(state.contains(&since), "{state}");
    let resume = format!("/admin/webhooks/{id}/resume");
    let fields = form_fields(&page, &resume);
    let p = admin.post_raw(&resume, &fields, &[]).await;
    assert_eq!(
        (p.status, p.location()),
        (303, format!("{page_path}?done=resumed#toggle-{id}")),
        "{}",
        p.body
    );
    rx.wait_for("/held", 1, WAIT).await;
    let (_, w) = webhook(&s, "default", id).await;
    assert_eq!(
        (&w["paused"], &w["paused_at"]),
        (&json!(false), &json!(null))
    );
    let page = admin.page(&format!("{page_path}?done=resumed")).await;
    assert!(page.contains("Webhook resumed"));
    assert!(find_form(&page, &format!("/admin/webhooks/{id}/pause")).is_some());

    // A form without its CSRF token acts not.
    let p = admin
        .post_raw(&pause, &pairs(&[("return_to", here)]), &[])
        .await;
    p.assert_error_page(403, "pause without a CSRF token");
    assert_eq!(webhook(&s, "default", id).await.1["paused"], false);
}

#[tokio::test]
async fn a_portal_pauses_and_filters_its_own_webhooks_and_a_read_only_one_only_looks() {
    let dir = tempfile::tempdir().unwrap();
    let s = portal_server(dir.path()).await;
    let rx = Receiver::start().await;
    let mine = create_in(
        &s,
        "acme",
        json!({"name": "acme-crm", "url": rx.url("/a"), "events": ["license.created"]}),
    )
    .await;
    let theirs = create_in(
        &s,
        "globex",
        json!({"name": "globex-crm", "url": rx.url("/g"), "events": ["license.created"]}),
    )
    .await;
    let (id, theirs_id) = (mine["id"].as_i64().unwrap(), theirs["id"].as_i64().unwrap());
    let portal = Portal::open(&s, &link_for(&s, "acme", json!({})).await).await;

    // The filter, through the portal's form; a bad one named as anywhere.
    let action = format!("{}/webhooks/{id}", portal.base);
    let edit = portal.page(&format!("/webhooks/{id}")).await;
    let mut fields = form_fields(&edit, &action);
    set(&mut fields, "filter", r#"{"data.plan": {"$in": "pro"}}"#);
    let p = portal.web.post(&action, None, &fields, &[]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    let message = field_error(&p.body, "filter").unwrap_or_default();
    assert!(message.starts_with("filter.data.plan.$in:"), "{message:?}");
    assert!(
        !p.body.contains("href=\"/admin/webhooks"),
        "links stay in the portal"
    );
    set(&mut fields, "filter", r#"{"data.plan": {"$in": ["pro"]}}"#);
    let p = portal.web.post(&action, None, &fields, &[]).await;
    assert_eq!(
        (p.status, p.location()),
        (303, format!("{}/webhooks?done=saved", portal.base)),
        "{}",
        p.body
    );
    assert_eq!(
        webhook(&s, "acme", id).await.1["filter"],
        json!({"data.plan": {"$in": ["pro"]}})
    );

    // Pause and resume stay in the portal, and reach acme's webhook only.
    let list = portal.page("/webhooks").await;
    let pause_action = format!("{}/webhooks/{id}/pause", portal.base);
    assert!(find_form(&list, &pause_action).is_some(), "{list}");
    let p = portal
        .post(&format!("/webhooks/{theirs_id}/pause"), &pairs(&[]))
        .await;
    p.assert_error_page(404, "pausing another tenant's webhook");
    assert_eq!(webhook(&s, "globex", theirs_id).await.1["paused"], false);
    let p = portal
        .post(
            &format!("/webhooks/{id}/pause"),
            &pairs(&[("return_to", &format!("{}/webhooks", portal.base))]),
        )
        .await;
    assert_eq!(
        p.location(),
        format!("{}/webhooks?done=paused#toggle-{id}", portal.base)
    );
    // A return address outside the portal is not followed.
    let p = portal
        .post(
            &format!("/webhooks/{id}/resume"),
            &pairs(&[("return_to", "/admin/webhooks")]),
        )
        .await;
    assert_eq!(
        p.location(),
        format!("{}/webhooks/{id}?done=resumed#toggle-{id}", portal.base)
    );
    assert_eq!(webhook(&s, "acme", id).await.1["paused"], false);
    portal
        .post(&format!("/webhooks/{id}/pause"), &pairs(&[]))
        .await;
    let paused_at = webhook(&s, "acme", id).await.1["paused_at"]
        .as_str()
        .unwrap()
        .replacen('T', " ", 1)
        .replace('Z', " UTC");

    // Read-only: the state and the filter shown, no action offered or taken.
    let ro = Portal::open(&s, &link_for(&s, "acme", json!({"read_only": true})).await).await;
    let list = ro.page("/webhooks").await;
    assert!(
        list.contains("badge paused") && list.contains(&paused_at),
        "{list}"
    );
    assert!(
        !list.contains("/pause\"") && !list.contains("/resume\""),
        "{list}"
    );
    let page = ro.page(&format!("/webhooks/{id}")).await;
    assert!(page.contains(&paused_at), "{page}");
    assert!(page.contains("$in"), "the filter is shown");
    assert!(
        !page.contains("/resume\"") && !page.contains("/pause\""),
        "{page}"
    );
    for action in ["resume", "pause"] {
        let p = ro
            .post(&format!("/webhooks/{id}/{action}"), &pairs(&[]))
            .await;
        p.assert_error_page(403, action);
        assert!(p.body.contains("read-only"), "{}", p.body);
    }
    let mut fields = form_fields(&page, &format!("{}/webhooks/{id}", ro.base));
    set(&mut fields, "filter", "");
    let p = ro.post(&format!("/webhooks/{id}"), &fields).await;
    p.assert_error_page(403, "saving in a read-only portal");
    let (_, w) = webhook(&s, "acme", id).await;
    assert_eq!(w["paused"], true);
    assert_eq!(w["filter"], json!({"data.plan": {"$in": ["pro"]}}));
}
