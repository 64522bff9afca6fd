//! The API keys and event types pages.

use super::*;

#[tokio::test]
async fn api_keys_are_created_shown_once_and_revoked_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    // A key of another tenant, which this tenant's page must not list.
    provision(&s, "other", &["webhooks:read"]).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let page = admin.page("/admin/api-keys").await;
    assert!(
        page.contains("No API keys yet"),
        "another tenant's key is not listed"
    );

    // Mistakes are named; nothing is created.
    let p = admin.post("/admin/api-keys", &pairs(&[("name", "")])).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(field_error(&p.body, "name").is_some());
    assert!(p.body.contains("permissions-error"), "{}", p.body);

    let p = admin
        .post(
            "/admin/api-keys",
            &pairs(&[
                ("name", "billing-service"),
                ("permissions", "events:publish"),
                ("permissions", "webhooks:read"),
            ]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/api-keys?done=key_created");
    let line = p
        .set_cookie_line("hookd_new_key")
        .expect("the sealed key rides a cookie");
    assert!(
        line.contains("Path=/admin/api-keys") && line.contains("HttpOnly"),
        "{line}"
    );
    let sealed = p.cookie("hookd_new_key").unwrap();
    let shown = admin
        .web
        .get(
            "/admin/api-keys?done=key_created",
            Some(&format!("{}; hookd_new_key={sealed}", admin.cookie)),
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(
        shown.cookie("hookd_new_key").as_deref(),
        Some(""),
        "shown once"
    );
    let start = shown
        .body
        .find("id=\"new-key\" value=\"")
        .expect("the key is shown")
        + 20;
    let key = shown.body[start..start + shown.body[start..].find('"').unwrap()].to_owned();
    // A reload (the cookie gone) creates nothing and shows no key.
    let reload = admin.page("/admin/api-keys?done=key_created").await;
    assert!(!reload.contains("id=\"new-key\""));
    assert!(key.starts_with("hk_"), "{key}");
    // The key works, with what it was given.
    let (status, _) = send(s.req_as(&key, Method::GET, "/management/webhooks/1")).await;
    assert_eq!(status, 404, "webhooks:read lets it look");
    let (status, _) = send(s.req_as(&key, Method::POST, "/management/webhooks").json(
        &json!({"name": "x", "url": "https://example.com/x", "events": ["license.created"]}),
    ))
    .await;
    assert_eq!(status, 403, "but not write");
    // Shown once: the list has its name, never the plaintext.
    let page = admin.page("/admin/api-keys").await;
    assert!(page.contains("billing-service"));
    assert!(!page.contains(&key));

    let (_, list) = s.get("/management/api-keys").await;
    let id = list["data"][0]["id"].as_i64().unwrap();
    let confirm = admin.page(&format!("/admin/api-keys/{id}/revoke")).await;
    assert!(confirm.contains("Revoke API key"));
    let p = admin
        .post(&format!("/admin/api-keys/{id}/revoke"), &pairs(&[]))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/api-keys?done=key_revoked");
    let (status, _) = send(s.req_as(&key, Method::GET, "/management/webhooks/1")).await;
    assert_eq!(status, 401, "revoked");
    // Another tenant's key id is not this page's to revoke.
    let (_, others) = send(
        s.req(Method::GET, "/management/api-keys")
            .header("X-Tenant-Id", "other"),
    )
    .await;
    let other_id = others["data"][0]["id"].as_i64().unwrap();
    let p = admin
        .post(&format!("/admin/api-keys/{other_id}/revoke"), &pairs(&[]))
        .await;
    p.assert_error_page(404, "another tenant's key");
}

#[tokio::test]
async fn event_types_are_added_and_archived_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let page = admin.page("/admin/event-types").await;
    assert!(page.contains("license.activated") && page.contains("Built-in"));

    for (name, field) in [("Not A Type", "name"), ("license.created", "name")] {
        let p = admin
            .post("/admin/event-types", &pairs(&[("name", name)]))
            .await;
        assert_eq!(p.status, 400, "{name}: {}", p.body);
        assert!(field_error(&p.body, field).is_some(), "{name}: {}", p.body);
        assert!(contains_escaped(&p.body, name), "{name} is kept");
    }
    let p = admin
        .post(
            "/admin/event-types",
            &pairs(&[
                ("name", "invoice.paid"),
                ("category", ""),
                ("description", "An invoice was paid."),
            ]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/event-types?done=type_added");
    let page = admin.page("/admin/event-types").await;
    assert!(page.contains("invoice.paid") && page.contains("Custom"));
    // The webhook form offers it, under its category.
    let form = admin.page("/admin/webhooks/new").await;
    assert!(form.contains("data-category=\"invoice\"") && form.contains("value=\"invoice.paid\""));

    let p = admin
        .post(
            "/admin/event-types/archive",
            &pairs(&[("name", "invoice.paid")]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let page = admin.page("/admin/event-types").await;
    assert!(page.contains("Archived"), "{page}");
    let (status, body) = s
        .post(
            "/management/webhooks",
            json!({"name": "x", "url": "https://example.com/inv", "events": ["invoice.paid"]}),
        )
        .await;
    assert_eq!(
        status, 400,
        "an archived type takes no new subscriptions: {body}"
    );
    let p = admin
        .post(
            "/admin/event-types/archive",
            &pairs(&[("name", "nope.nope")]),
        )
        .await;
    p.assert_error_page(404, "archiving an unknown type");

    // Restored, from the page; through the API, restoring what is not
    // archived names nothing.
    let p = admin
        .post(
            "/admin/event-types/restore",
            &pairs(&[("name", "invoice.paid")]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/event-types?done=type_restored");
    let (status, body) = s
        .post(
            "/management/webhooks",
            json!({"name": "x", "url": "https://example.com/inv", "events": ["invoice.paid"]}),
        )
        .await;
    assert_eq!(
        status, 201,
        "restored, it takes subscriptions again: {body}"
    );
    // Restoring it again changes nothing and is not an error (a retried
    // restore); an unknown type is still 404.
    let (status, again) = s
        .post("/management/event-types/invoice.paid/restore", json!({}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["archived"], false, "{again}");
    let (status, _) = s
        .post("/management/event-types/invoice.unknown/restore", json!({}))
        .await;
    assert_eq!(status, 404, "never defined");
}
