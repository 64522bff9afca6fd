//! Tenant isolation: an admin key's session sees and changes its own tenant only.

use super::*;

#[tokio::test]
async fn an_admin_key_sees_and_changes_only_its_own_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let a1 = create_in(
        &s,
        "a",
        json!({"name": "alpha-one", "url": "https://example.com/a1", "events": ["license.created"]}),
    )
    .await;
    let a2 = create_in(
        &s,
        "a",
        json!({"name": "alpha-two", "url": "https://example.com/a2", "events": ["license.created"]}),
    )
    .await;
    let b = create_in(
        &s,
        "b",
        json!({"name": "bravo-only", "url": r.url("/b"), "events": ["license.created"], "retry_schedule": []}),
    )
    .await;
    let b_id = b["id"].as_i64().unwrap();
    let b_secret = secret_of(&s, "b", b_id).await;
    let (_, b_before) = webhook(&s, "b", b_id).await;
    // A delivery in tenant b.
    publish(&s, "b", "license.created").await;
    let b_delivery = wait_delivery(&s, "b", "succeeded", |d| d["status"] == "succeeded").await;
    let b_delivery_id = b_delivery["id"].as_i64().unwrap();

    let (_, key_a) = provision(&s, "a", &["admin"]).await;
    // The tenant typed at sign-in does not matter for a provisioned key.
    let admin = sign_in(&s, &key_a, "b").await;
    let list = admin.page("/admin/webhooks").await;
    assert_eq!(shown_tenant(&list), "a");
    assert!(
        find_form(&list, "/admin/tenant").is_none(),
        "an admin key is offered a tenant switch"
    );
    let mut ids = row_ids(&list, "webhook");
    ids.sort();
    assert_eq!(
        ids,
        vec![a1["id"].as_i64().unwrap(), a2["id"].as_i64().unwrap()]
    );
    assert!(!list.contains("bravo-only"), "{list}");
    let search = admin.page("/admin/webhooks?q=bravo").await;
    assert!(row_ids(&search, "webhook").is_empty(), "{search}");

    // b's webhook does not exist for a: 404 pages, nothing changed.
    for path in [
        format!("/admin/webhooks/{b_id}"),
        format!("/admin/webhooks/{b_id}/delete"),
    ] {
        admin.get(&path).await.assert_error_page(404, &path);
    }
    let mut edit = pairs(&[
        ("name", "hijacked"),
        ("url", "https://evil.test/hook"),
        ("environment", "production"),
        ("events", "license.created"),
    ]);
    for path in [
        format!("/admin/webhooks/{b_id}/toggle"),
        format!("/admin/webhooks/{b_id}/delete"),
        format!("/admin/webhooks/{b_id}/secret"),
        format!("/admin/webhooks/{b_id}/unsuspend"),
        format!("/admin/webhooks/{b_id}/test"),
        format!("/admin/webhooks/{b_id}"),
    ] {
        set(&mut edit, "return_to", "/admin/webhooks");
        admin
            .post(&path, &edit)
            .await
            .assert_error_page(404, &format!("POST {path}"));
    }
    let (status, b_after) = webhook(&s, "b", b_id).await;
    assert_eq!(status, 200, "b's webhook was deleted: {b_after}");
    assert_eq!(b_after, b_before, "b's webhook was changed");
    assert_eq!(secret_of(&s, "b", b_id).await, b_secret);

    // b's deliveries are not a's either.
    let log = admin.page("/admin/deliveries").await;
    assert!(row_ids(&log, "delivery").is_empty(), "{log}");
    assert!(!log.contains("bravo-only"), "{log}");
    let path = format!("/admin/deliveries/{b_delivery_id}");
    admin.get(&path).await.assert_error_page(404, &path);
    admin
        .post(&format!("{path}/retry"), &Vec::new())
        .await
        .assert_error_page(404, "retry of b's delivery");
    let d = wait_delivery(&s, "b", "unchanged", |d| d["id"] == b_delivery_id).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["attempt_count"], 1, "{d}");

    // An admin key cannot switch its session to another tenant.
    admin
        .post("/admin/tenant", &pairs(&[("tenant", "b")]))
        .await
        .assert_error_page(403, "admin key switching tenant");
    let list = admin.page("/admin/webhooks").await;
    assert_eq!(shown_tenant(&list), "a");
    assert_eq!(row_ids(&list, "webhook").len(), 2);
    admin
        .get(&format!("/admin/webhooks/{b_id}"))
        .await
        .assert_error_page(404, "after a refused tenant switch");

    // a management key's session signed in for tenant b sees b's.
    let mgmt_b = sign_in(&s, MGMT_KEY, "b").await;
    let list = mgmt_b.page("/admin/webhooks").await;
    assert_eq!(shown_tenant(&list), "b");
    assert_eq!(row_ids(&list, "webhook"), vec![b_id]);
    assert!(list.contains("bravo-only") && !list.contains("alpha-one"));
    let page = mgmt_b.page(&format!("/admin/webhooks/{b_id}")).await;
    assert_eq!(
        value_of(
            &form_fields(&page, &format!("/admin/webhooks/{b_id}")),
            "name"
        ),
        Some("bravo-only")
    );
    let log = mgmt_b.page("/admin/deliveries").await;
    assert_eq!(row_ids(&log, "delivery"), vec![b_delivery_id]);
    // …and, switched to tenant a from the header's form, a's only.
    let mut switch = form_fields(&list, "/admin/tenant");
    set(&mut switch, "tenant", "a");
    let p = mgmt_b.post_raw("/admin/tenant", &switch, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/webhooks");
    let list = mgmt_b.page("/admin/webhooks").await;
    assert_eq!(shown_tenant(&list), "a");
    assert_eq!(row_ids(&list, "webhook").len(), 2);
    mgmt_b
        .get(&format!("/admin/webhooks/{b_id}"))
        .await
        .assert_error_page(404, "management key switched to tenant a");
    // An invalid tenant name is refused and changes nothing.
    set(&mut switch, "tenant", "no spaces!");
    mgmt_b
        .post_raw("/admin/tenant", &switch, &[])
        .await
        .assert_error_page(400, "invalid tenant name");
    assert_eq!(shown_tenant(&mgmt_b.page("/admin/webhooks").await), "a");
    // Signed in for tenant a from the start: the same.
    let mgmt_a = sign_in(&s, MGMT_KEY, "a").await;
    let list = mgmt_a.page("/admin/webhooks").await;
    assert_eq!(row_ids(&list, "webhook").len(), 2);
}
