//! The settings page: who may read and save it, validation, saved values
//! surviving a restart and applying to retries, and the reset.

use super::*;

#[tokio::test]
async fn settings_can_be_read_by_admin_keys_but_saved_by_management_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (_, key) = provision(&s, "default", &["admin"]).await;
    let admin = sign_in(&s, &key, "").await;
    let mgmt = sign_in(&s, MGMT_KEY, "").await;
    let before = form_fields(&mgmt.page("/admin/settings").await, "/admin/settings");

    let page = admin.page("/admin/settings").await;
    assert!(
        page.contains("only a management key can change them"),
        "{page}"
    );
    assert!(!page.contains("Save settings"), "{page}");
    let p = admin
        .post(
            "/admin/settings",
            &pairs(&[
                ("retry_schedule", "1s"),
                ("min_failures", "3"),
                ("suspend_after", "1h"),
            ]),
        )
        .await;
    p.assert_error_page(403, "provisioned admin key saving settings");
    assert!(p.body.contains("only a management key"), "{}", p.body);
    let after = form_fields(&mgmt.page("/admin/settings").await, "/admin/settings");
    assert_eq!(after, before, "a refused save changed the settings");
    assert!(mgmt.page("/admin/settings").await.contains("Save settings"));
}

#[tokio::test]
async fn invalid_settings_show_each_fields_error_and_save_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let mgmt = sign_in(&s, MGMT_KEY, "").await;
    let before = form_fields(&mgmt.page("/admin/settings").await, "/admin/settings");

    // Each invalid on its own.
    for (field, bad, valid) in [
        (
            "retry_schedule",
            "5x",
            [("min_failures", "3"), ("suspend_after", "1h")],
        ),
        (
            "min_failures",
            "0",
            [("retry_schedule", "1s"), ("suspend_after", "1h")],
        ),
        (
            "suspend_after",
            "soon",
            [("retry_schedule", "1s"), ("min_failures", "3")],
        ),
    ] {
        let mut fields = pairs(&valid);
        set(&mut fields, field, bad);
        let p = mgmt.post("/admin/settings", &fields).await;
        assert_eq!(p.status, 400, "{field}={bad}: {}", p.body);
        assert!(
            field_error(&p.body, field).is_some(),
            "{field}:\n{}",
            p.body
        );
        for (other, _) in valid {
            assert_eq!(field_error(&p.body, other), None, "{field}={bad}: {other}");
        }
        assert_eq!(
            value_of(&form_fields(&p.body, "/admin/settings"), field),
            Some(bad)
        );
    }

    // All three at once: every field says what is wrong with it.
    let p = mgmt
        .post(
            "/admin/settings",
            &pairs(&[
                ("retry_schedule", "5x"),
                ("min_failures", "0"),
                ("suspend_after", "soon"),
            ]),
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.body.contains("Nothing was saved"), "{}", p.body);
    let shown = form_fields(&p.body, "/admin/settings");
    assert_eq!(
        (
            value_of(&shown, "retry_schedule"),
            value_of(&shown, "min_failures"),
            value_of(&shown, "suspend_after")
        ),
        (Some("5x"), Some("0"), Some("soon"))
    );
    let after = form_fields(&mgmt.page("/admin/settings").await, "/admin/settings");
    assert_eq!(after, before, "an invalid save changed the settings");
    let missing: Vec<&str> = ["retry_schedule", "min_failures", "suspend_after"]
        .into_iter()
        .filter(|f| field_error(&p.body, f).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "no error shown next to {missing:?} for retry_schedule=5x, min_failures=0, suspend_after=soon:\n{}",
        p.body
    );
}

/// A server whose flag schedule (30 s) is far from the one the test saves (1 s).
async fn slow_default_server(dir: &std::path::Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .arg("--retry-schedule")
        .arg("30s")
        .start()
        .await
}

/// Publishes to a webhook without its own schedule whose receiver answers
/// 500 once; answers the time between its first two attempts.
async fn second_attempt_delay(s: &TestServer, r: &Receiver, path: &str) -> Duration {
    r.script(path, vec![Reply::Status(500)]);
    let w = create_in(
        s,
        "default",
        json!({"name": path, "url": r.url(path), "events": ["license.updated"]}),
    )
    .await;
    assert_eq!(w["retry_schedule"], Value::Null, "{w}");
    publish(s, "default", "license.updated").await;
    let got = r.wait_for(path, 2, Duration::from_secs(10)).await;
    got[1].at - got[0].at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_settings_show_survive_a_restart_and_apply_to_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = slow_default_server(dir.path()).await;
    let r = Receiver::start().await;
    let mgmt = sign_in(&s, MGMT_KEY, "").await;
    let page = mgmt.page("/admin/settings").await;
    assert_eq!(
        value_of(&form_fields(&page, "/admin/settings"), "retry_schedule"),
        Some("30s")
    );

    let p = mgmt
        .post(
            "/admin/settings",
            &pairs(&[
                ("retry_schedule", "1s"),
                ("min_failures", "3"),
                ("suspend_after", "1h"),
            ]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/settings?done=settings");
    let check_page = |html: &str| {
        let f = form_fields(html, "/admin/settings");
        assert_eq!(
            (
                value_of(&f, "retry_schedule"),
                value_of(&f, "min_failures"),
                value_of(&f, "suspend_after")
            ),
            (Some("1s"), Some("3"), Some("1h")),
            "{html}"
        );
    };
    let page = mgmt.page("/admin/settings?done=settings").await;
    assert!(page.contains("Settings saved."), "{page}");
    check_page(&page);

    // Applied at once on this instance.
    let gap = second_attempt_delay(&s, &r, "/before-restart").await;
    assert!(
        gap >= Duration::from_millis(500) && gap <= Duration::from_secs(3),
        "second attempt {gap:?} after the first; the saved schedule is 1s"
    );

    let status = s.terminate();
    assert!(status.success(), "{status:?}\n{}", s.log());
    let s = slow_default_server(dir.path()).await;
    // The session survives the restart too (it lives in the database).
    let again = Admin {
        web: Web::new(&s),
        cookie: mgmt.cookie.clone(),
        csrf: mgmt.csrf.clone(),
    };
    let p = again.get("/admin/settings").await;
    assert_eq!(p.status, 200, "session lost over a restart: {}", p.body);
    check_page(&p.body);
    let fresh = sign_in(&s, MGMT_KEY, "").await;
    check_page(&fresh.page("/admin/settings").await);

    // And still applied after the restart, over the 30 s flag.
    let gap = second_attempt_delay(&s, &r, "/after-restart").await;
    assert!(
        gap >= Duration::from_millis(500) && gap <= Duration::from_secs(3),
        "second attempt {gap:?} after the first; the saved schedule is 1s"
    );
}

#[tokio::test]
async fn settings_reset_to_the_start_up_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let saved = admin
        .post(
            "/admin/settings",
            &pairs(&[
                ("retry_schedule", "1s, 2s"),
                ("min_failures", "3"),
                ("suspend_after", "1h"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert!(
        admin
            .page("/admin/settings")
            .await
            .contains("value=\"1s, 2s\"")
    );

    let (_, key) = provision(&s, "default", &["admin"]).await;
    let tenant_admin = sign_in(&s, &key, "").await;
    let p = tenant_admin
        .post("/admin/settings/reset", &pairs(&[]))
        .await;
    p.assert_error_page(403, "a tenant admin resetting service-wide settings");
    assert!(
        admin
            .page("/admin/settings")
            .await
            .contains("value=\"1s, 2s\"")
    );

    let p = admin.post("/admin/settings/reset", &pairs(&[])).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/settings?done=settings_reset");
    let page = admin.page("/admin/settings").await;
    assert!(
        page.contains("value=\"5s, 5m, 30m, 2h, 5h, 10h, 10h\""),
        "the flags' defaults again:\n{page}"
    );
    assert!(page.contains("value=\"10\"") && page.contains("value=\"5d\""));
}
