//! The webhook pages: the create and edit forms, their validation and
//! escaping, the list's paging, and edits that must not undo changes made
//! since the form was opened.

use super::*;

#[tokio::test]
async fn invalid_webhook_forms_show_each_error_next_to_its_field_and_keep_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let new = admin.page("/admin/webhooks/new").await;
    let blank = form_fields(&new, "/admin/webhooks");
    let secret = value_of(&blank, "secret").unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");

    // Empty name, an ftp URL, no events.
    let description = "Sync <b>licences</b> & \"seats\"";
    let mut fields = blank.clone();
    set(&mut fields, "name", "");
    set(&mut fields, "url", "ftp://x");
    set_all(&mut fields, "events", &[]);
    set(&mut fields, "description", description);
    let p = admin.post_raw("/admin/webhooks", &fields, &[]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.is_html());
    for field in ["name", "url", "events"] {
        assert!(
            field_error(&p.body, field).is_some_and(|m| !m.is_empty()),
            "no error shown next to {field}:\n{}",
            p.body
        );
    }
    assert!(
        field_error(&p.body, "url").unwrap().contains("ftp"),
        "{:?}",
        field_error(&p.body, "url")
    );
    assert!(p.body.contains("3 fields need attention"), "{}", p.body);
    assert_eq!(field_error(&p.body, "description"), None);
    assert_eq!(field_error(&p.body, "headers"), None);
    // What was typed is kept (escaped in the page, intact in the form).
    assert!(
        !p.body.contains("<b>licences</b>"),
        "description not escaped"
    );
    let shown = form_fields(&p.body, "/admin/webhooks");
    assert_eq!(value_of(&shown, "description"), Some(description));
    assert_eq!(value_of(&shown, "url"), Some("ftp://x"));
    assert_eq!(value_of(&shown, "name"), Some(""));
    assert_eq!(value_of(&shown, "secret"), Some(secret.as_str()));
    assert_eq!(value_of(&shown, "environment"), Some("production"));
    assert!(values_of(&shown, "events").is_empty());

    // A header line without a colon: 400 naming headers, nothing else.
    let mut fields = blank.clone();
    set(&mut fields, "name", "headers");
    set(&mut fields, "url", "https://example.com/headers");
    set_all(&mut fields, "events", &["license.created"]);
    set(&mut fields, "headers", "X-Team: growth\nX-Broken growth");
    let p = admin.post_raw("/admin/webhooks", &fields, &[]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    let m = field_error(&p.body, "headers").expect("headers error");
    assert!(m.contains("line 2"), "{m}");
    for field in ["name", "url", "events"] {
        assert_eq!(field_error(&p.body, field), None, "{field}");
    }
    let shown = form_fields(&p.body, "/admin/webhooks");
    assert_eq!(
        value_of(&shown, "headers"),
        Some("X-Team: growth\nX-Broken growth")
    );
    assert_eq!(values_of(&shown, "events"), vec!["license.created"]);

    // Values only the API rejects are shown next to their field too.
    let mut fields = blank.clone();
    set(&mut fields, "name", "bad values");
    set(&mut fields, "url", "https://example.com/bad");
    set_all(&mut fields, "events", &["license.created", "nope.nothing"]);
    set(&mut fields, "timeout", "forever");
    set(&mut fields, "environment", "moon");
    let p = admin.post_raw("/admin/webhooks", &fields, &[]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    for field in ["events", "timeout", "environment"] {
        assert!(
            field_error(&p.body, field).is_some(),
            "{field}:\n{}",
            p.body
        );
    }
    assert!(
        field_error(&p.body, "events")
            .unwrap()
            .contains("nope.nothing")
    );
    assert_eq!(
        value_of(&form_fields(&p.body, "/admin/webhooks"), "timeout"),
        Some("forever")
    );

    assert!(
        webhooks_of(&s, "default").await.is_empty(),
        "an invalid form created a webhook"
    );
}

#[tokio::test]
async fn webhook_forms_create_edit_toggle_rotate_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let admin = sign_in(&s, MGMT_KEY, "").await;

    // Create, as the browser sends the new-webhook form.
    let new = admin.page("/admin/webhooks/new").await;
    let mut fields = form_fields(&new, "/admin/webhooks");
    let secret = value_of(&fields, "secret").unwrap().to_owned();
    set(&mut fields, "name", "Growth sync");
    set(&mut fields, "url", &r.url("/growth"));
    set(&mut fields, "environment", "production");
    set(&mut fields, "enabled", "on");
    set_all(
        &mut fields,
        "events",
        &["activation.created", "activation.failed"],
    );
    set(&mut fields, "headers", "X-Team: growth");
    set(&mut fields, "timeout", "5s");
    let p = admin.post_raw("/admin/webhooks", &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/webhooks?done=created");
    let list = admin.page("/admin/webhooks?done=created").await;
    assert!(list.contains("Webhook created."), "{list}");

    let hooks = webhooks_of(&s, "default").await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let w = &hooks[0];
    let id = w["id"].as_i64().unwrap();
    assert_eq!(row_ids(&list, "webhook"), vec![id]);
    assert_eq!(w["name"], "Growth sync");
    assert_eq!(w["url"], r.url("/growth"));
    assert_eq!(w["environment"], "production");
    assert_eq!(w["enabled"], true);
    assert_eq!(
        w["events"],
        json!(["activation.created", "activation.failed"])
    );
    assert_eq!(w["headers"], json!({"X-Team": ["growth"]}));
    assert_eq!(w["timeout"], "5s");
    assert_eq!(w["description"], Value::Null);
    assert_eq!(w["retry_schedule"], Value::Null);
    assert_eq!(w["rate_limit"], Value::Null);
    assert_eq!(secret_of(&s, "default", id).await["secret"], secret);

    // Edit: the form comes back filled in; only the URL changes.
    let action = format!("/admin/webhooks/{id}");
    let edit_page = admin.page(&action).await;
    let mut fields = form_fields(&edit_page, &action);
    assert_eq!(value_of(&fields, "name"), Some("Growth sync"));
    assert_eq!(value_of(&fields, "timeout"), Some("5s"));
    assert_eq!(value_of(&fields, "headers"), Some("X-Team: growth"));
    assert_eq!(
        values_of(&fields, "events"),
        vec!["activation.created", "activation.failed"]
    );
    assert_eq!(
        value_of(&fields, "secret"),
        None,
        "the secret is not a field"
    );
    set(&mut fields, "url", &r.url("/growth-v2"));
    let p = admin.post_raw(&action, &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/webhooks?done=saved");
    let (_, edited) = webhook(&s, "default", id).await;
    assert_eq!(edited["url"], r.url("/growth-v2"));
    let strip = |w: &Value| {
        let mut w = w.clone();
        let o = w.as_object_mut().unwrap();
        o.remove("url");
        o.remove("updated_at");
        w
    };
    assert_eq!(strip(&edited), strip(w), "the edit changed other fields");
    assert_eq!(secret_of(&s, "default", id).await["secret"], secret);

    // Toggle, from the list's own form, then back, then with a foreign return_to.
    let list = admin.page("/admin/webhooks").await;
    let toggle = format!("/admin/webhooks/{id}/toggle");
    let fields = form_fields(&list, &toggle);
    assert_eq!(value_of(&fields, "return_to"), Some("/admin/webhooks"));
    let p = admin.post_raw(&toggle, &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location(),
        format!("/admin/webhooks?done=disabled#toggle-{id}")
    );
    assert_eq!(webhook(&s, "default", id).await.1["enabled"], false);
    let p = admin
        .post(
            &toggle,
            &pairs(&[
                ("return_to", "/admin/webhooks?q=growth&done=old&page=1"),
                ("enabled", "true"),
            ]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location(),
        format!("/admin/webhooks?q=growth&page=1&done=enabled#toggle-{id}")
    );
    assert_eq!(webhook(&s, "default", id).await.1["enabled"], true);
    let p = admin
        .post(
            &toggle,
            &pairs(&[
                ("return_to", "https://evil.test/admin/"),
                ("enabled", "false"),
            ]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location(),
        format!("/admin/webhooks?done=disabled#toggle-{id}")
    );
    // The form says which state it wants: sent twice (a double click, a
    // stale page), it does not flip back.
    let p = admin.post(&toggle, &pairs(&[("enabled", "false")])).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(webhook(&s, "default", id).await.1["enabled"], false);
    let p = admin.post(&toggle, &pairs(&[("enabled", "maybe")])).await;
    p.assert_error_page(400, "a toggle without a state");
    let (_, toggled) = webhook(&s, "default", id).await;
    assert_eq!(toggled["enabled"], false);
    assert_eq!(toggled["url"], r.url("/growth-v2"));

    // A new secret; the old one keeps signing for a while.
    let p = admin
        .post(&format!("/admin/webhooks/{id}/secret"), &Vec::new())
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), format!("/admin/webhooks/{id}?done=rotated"));
    let rotated = secret_of(&s, "default", id).await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(
        new_secret.starts_with("whsec_") && new_secret != secret,
        "{rotated}"
    );
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    let page = admin
        .page(&format!("/admin/webhooks/{id}?done=rotated"))
        .await;
    assert!(
        page.contains(&format!("value=\"{new_secret}\"")),
        "new secret not shown"
    );
    assert!(page.contains("New secret generated."), "{page}");

    // Delete: a confirmation page, then the form.
    let confirm = admin.page(&format!("/admin/webhooks/{id}/delete")).await;
    assert!(confirm.contains("Growth sync"), "{confirm}");
    let delete = format!("/admin/webhooks/{id}/delete");
    let fields = form_fields(&confirm, &delete);
    let p = admin.post_raw(&delete, &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/webhooks?done=deleted");
    assert_eq!(webhook(&s, "default", id).await.0, 404);
    let list = admin.page("/admin/webhooks").await;
    assert!(row_ids(&list, "webhook").is_empty(), "{list}");
    admin
        .post(&delete, &Vec::new())
        .await
        .assert_error_page(404, "deleting twice");
    admin
        .get(&action)
        .await
        .assert_error_page(404, "editing a deleted webhook");
    for bad in [
        "/admin/webhooks/abc",
        "/admin/webhooks/0",
        "/admin/webhooks/-3",
    ] {
        admin.get(bad).await.assert_error_page(404, bad);
    }
}

#[tokio::test]
async fn names_and_descriptions_are_escaped_never_raw() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/xss?a=1&b=2",
            json!({
                "name": "<script>alert(1)</script>",
                "description": "\"><img src=x onerror=alert(2)>",
            }),
        )
        .await;
    let id = w["id"].as_i64().unwrap();
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let pages = [
        "/admin/webhooks".to_owned(),
        "/admin/webhooks?q=%3Cscript%3Ealert(3)%3C%2Fscript%3E".to_owned(),
        format!("/admin/webhooks/{id}"),
        format!("/admin/webhooks/{id}/delete"),
        "/admin/deliveries".to_owned(),
    ];
    for path in &pages {
        let html = admin.page(path).await;
        assert!(
            !html.contains("<script>alert("),
            "{path}: raw script tag:\n{html}"
        );
        assert!(!html.contains("<img src=x"), "{path}: raw img tag:\n{html}");
        // The only script is the page's own file.
        assert_eq!(html.matches("<script").count(), 1, "{path}");
    }
    let list = admin.page("/admin/webhooks").await;
    assert!(
        contains_escaped(&list, "<script>alert(1)</script>"),
        "name not shown escaped:\n{list}"
    );
    assert!(
        contains_escaped(&list, "https://example.com/xss?a=1&b=2"),
        "{list}"
    );
    let searched = admin.page(&pages[1]).await;
    assert!(
        contains_escaped(&searched, "<script>alert(3)</script>"),
        "{searched}"
    );
    // The edit form holds the values exactly, once unescaped.
    let edit = admin.page(&pages[2]).await;
    let fields = form_fields(&edit, &format!("/admin/webhooks/{id}"));
    assert_eq!(value_of(&fields, "name"), Some("<script>alert(1)</script>"));
    assert_eq!(
        value_of(&fields, "description"),
        Some("\"><img src=x onerror=alert(2)>")
    );
}

#[tokio::test]
async fn a_huge_page_number_is_an_ordinary_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    s.create_webhook("https://example.com/p", json!({})).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    for page in [
        "1000000000000000000",
        "18446744073709551615",
        "461168601842738791",
    ] {
        let path = format!("/admin/webhooks?page={page}");
        let resp = admin
            .web
            .http
            .get(format!("{}{path}", admin.web.base))
            .header(header::COOKIE, &admin.cookie)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => panic!("GET {path}: no answer at all (the handler crashed?): {e}"),
        };
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            status == 200 || status == 400 || status == 404,
            "GET {path}: {status} {body}"
        );
        assert!(row_ids(&body, "webhook").is_empty(), "GET {path}: {body}");
    }
    // The server is still fine.
    assert_eq!(admin.get("/admin/webhooks").await.status, 200);
}

#[tokio::test]
async fn an_edit_form_does_not_undo_changes_made_since_it_was_opened() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/race", json!({"name": "Race"}))
        .await;
    let id = w["id"].as_i64().unwrap();
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let action = format!("/admin/webhooks/{id}");
    let mut fields = form_fields(&admin.page(&action).await, &action);

    // Meanwhile, an operator disables it through the API.
    let (status, _) = s
        .patch(
            &action.replace("/admin", "/management"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200);

    set(&mut fields, "description", "typo fixed");
    let p = admin.post_raw(&action, &fields, &[]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.body.contains("was changed"), "{}", p.body);
    assert!(p.body.contains("typo fixed"), "the typed values are kept");
    let (_, now) = webhook(&s, "default", id).await;
    assert_eq!(now["enabled"], false, "the API's change stands");
    assert_eq!(now["description"], Value::Null);

    // Saving again from the re-shown form is a deliberate overwrite.
    let again = form_fields(&p.body, &action);
    assert_eq!(value_of(&again, "description"), Some("typo fixed"));
    let p = admin.post_raw(&action, &again, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, now) = webhook(&s, "default", id).await;
    assert_eq!(now["description"], "typo fixed");
    assert_eq!(now["enabled"], true);
}

#[tokio::test]
async fn a_secret_generated_on_the_edit_page_is_saved_with_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let w = s.create_webhook("https://example.com/sec", json!({})).await;
    let id = w["id"].as_i64().unwrap();
    let old = secret_of(&s, "default", id).await["secret"].clone();
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let action = format!("/admin/webhooks/{id}");
    let mut fields = form_fields(&admin.page(&action).await, &action);
    assert_eq!(value_of(&fields, "new_secret"), Some(""));

    set(&mut fields, "url", "https://example.com/sec-v2");
    set(&mut fields, "new_secret", "whsec_not base64!");
    let p = admin.post_raw(&action, &fields, &[]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(field_error(&p.body, "secret").is_some(), "{}", p.body);
    assert_eq!(
        webhook(&s, "default", id).await.1["url"],
        "https://example.com/sec"
    );

    let new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    set(&mut fields, "new_secret", new);
    let p = admin.post_raw(&action, &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/webhooks?done=saved_rotated");
    let secret = secret_of(&s, "default", id).await;
    assert_eq!(secret["secret"], new);
    assert_ne!(secret["secret"], old);
    assert!(secret["previous_secret_expires_at"].is_string());
    assert_eq!(
        webhook(&s, "default", id).await.1["url"],
        "https://example.com/sec-v2"
    );
}

#[tokio::test]
async fn the_webhook_form_stores_urls_normalised_and_refuses_one_without_a_host() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let new = admin.page("/admin/webhooks/new").await;
    let blank = form_fields(&new, "/admin/webhooks");
    let form = |name: &str, url: &str| {
        let mut fields = blank.clone();
        set(&mut fields, "name", name);
        set(&mut fields, "url", url);
        set_all(&mut fields, "events", &["license.created"]);
        fields
    };

    let p = admin
        .post_raw(
            "/admin/webhooks",
            &form("norm", "HTTPS://Example.COM:443/Admin-Norm"),
            &[],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let hooks = webhooks_of(&s, "default").await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["url"], "https://example.com/Admin-Norm");

    // Another spelling of the same URL is the same URL.
    for (url, says) in [
        ("https://example.com:443/Admin-Norm", "already exists"),
        ("http:///x", "host"),
    ] {
        let p = admin
            .post_raw("/admin/webhooks", &form("again", url), &[])
            .await;
        assert_eq!(p.status, 400, "{url}: {}", p.body);
        let shown = field_error(&p.body, "url").unwrap_or_default();
        assert!(shown.contains(says), "{url}: {shown:?}");
    }
    assert_eq!(webhooks_of(&s, "default").await.len(), 1);
}
