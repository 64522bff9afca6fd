//! Webhooks made through the other seeds' APIs (SPEC §10) are the admin
//! page's webhooks too: listed for their tenant, and opened for editing.

use super::*;

/// One tenant, as a UUID (seeds 003 and 004 name tenants so).
const TENANT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

#[tokio::test]
async fn webhooks_made_through_every_surface_are_on_the_admin_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    // Seed 002 (projectId is the tenant).
    let (status, v) = send(
        s.client
            .post(s.url(&format!("/management/v1/projects/{TENANT}/webhooks")))
            .header("X-Management-Id", "management")
            .header("X-Management-Token", MGMT_KEY)
            .json(&json!({"target_url": "https://hooks.example.test/002", "events": ["license.created"]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // Seed 003 (SlashID-OrgID is the tenant).
    let (status, t) = send(
        s.client
            .post(s.url("/organizations/webhooks"))
            .header("SlashID-OrgID", TENANT)
            .header("SlashID-API-Key", MGMT_KEY)
            .json(&json!({"name": "from-003", "target_url": "https://hooks.example.test/003"})),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    // Seed 004 (the tenant locator).
    let (status, e) = send(
        s.req(Method::POST, &format!("/event/{TENANT}/webhooks"))
            .json(&json!({
                "name": "from-004", "enabled": true,
                "endpoint": {"url": "https://hooks.example.test/004", "headers": {}},
                "eventTypes": ["license.*"],
            })),
    )
    .await;
    assert_eq!(status, 200, "{e}");

    let mut ids: Vec<i64> = webhooks_of(&s, TENANT)
        .await
        .iter()
        .map(|w| w["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 3, "{ids:?}");

    let admin = sign_in(&s, MGMT_KEY, TENANT).await;
    let page = admin.page("/admin/webhooks").await;
    let mut shown = row_ids(&page, "webhook");
    shown.sort_unstable();
    assert_eq!(
        shown, ids,
        "the admin page lists the tenant's three webhooks"
    );
    for (id, url) in ids.iter().zip(["002", "003", "004"]) {
        let form = admin.page(&format!("/admin/webhooks/{id}")).await;
        assert!(
            form.contains(&format!("https://hooks.example.test/{url}")),
            "webhook {id}'s form shows its URL"
        );
    }
}
