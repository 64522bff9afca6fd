//! Sessions once signed in: tampered cookies, sign-out, revoked keys, and
//! the CSRF token and origin check on every form.

use super::*;

#[tokio::test]
async fn tampered_session_cookies_are_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let other = sign_in(&s, MGMT_KEY, "").await;
    let value = admin.cookie.strip_prefix("hookd_session=").unwrap();
    let (token, mac) = value.split_once('.').expect("token.mac");
    let (other_token, other_mac) = other
        .cookie
        .strip_prefix("hookd_session=")
        .unwrap()
        .split_once('.')
        .unwrap();
    let forged = [
        ("token changed", format!("{}.{mac}", flip(token, 0))),
        (
            "token changed at the end",
            format!("{}.{mac}", flip(token, token.len() - 2)),
        ),
        ("mac changed", format!("{token}.{}", flip(mac, 0))),
        (
            "mac changed at the end",
            format!("{token}.{}", flip(mac, mac.len() - 2)),
        ),
        ("mac of another session", format!("{token}.{other_mac}")),
        ("token of another session", format!("{other_token}.{mac}")),
        ("token only", token.to_owned()),
        ("mac dropped", format!("{token}.")),
        ("empty", String::new()),
        ("garbage", "not-base64!.%%%".to_owned()),
    ];
    for (what, v) in &forged {
        let p = admin
            .web
            .get("/admin/webhooks", Some(&format!("hookd_session={v}")))
            .await;
        p.assert_sign_in("/admin/webhooks", what);
        // Forms with a forged cookie and the real CSRF token change nothing.
        let p = admin
            .web
            .post(
                "/admin/webhooks",
                Some(&format!("hookd_session={v}")),
                &pairs(&[
                    ("csrf_token", &admin.csrf),
                    ("name", "forged"),
                    ("url", "https://example.com/forged"),
                    ("events", "license.created"),
                ]),
                &[],
            )
            .await;
        assert_eq!(p.status, 303, "{what}: {}", p.body);
        assert!(p.location().starts_with("/admin/login?"), "{what}");
    }
    assert!(webhooks_of(&s, "default").await.is_empty());
    // The real cookies still work.
    assert_eq!(admin.get("/admin/webhooks").await.status, 200);
    assert_eq!(other.get("/admin/webhooks").await.status, 200);
}

#[tokio::test]
async fn sign_out_deletes_the_session_so_a_copied_cookie_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let bystander = sign_in(&s, MGMT_KEY, "").await;

    // Sign-out is a form like any other: without the token it is refused.
    let p = admin.post_raw("/admin/logout", &Vec::new(), &[]).await;
    p.assert_error_page(403, "logout without csrf_token");
    let p = admin
        .post_raw(
            "/admin/logout",
            &pairs(&[("csrf_token", &bystander.csrf)]),
            &[],
        )
        .await;
    p.assert_error_page(403, "logout with another session's token");
    assert_eq!(admin.get("/admin/webhooks").await.status, 200);

    let p = admin.post("/admin/logout", &Vec::new()).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/login?signed_out=1");
    let line = p.set_cookie_line("hookd_session").expect("cookie cleared");
    assert!(line.starts_with("hookd_session=;"), "{line}");
    assert!(line.contains("Max-Age=0"), "{line}");
    let page = admin.web.get(&p.location(), None).await;
    assert!(page.body.contains("You are signed out."), "{}", page.body);

    // The old cookie, replayed: the server-side session is gone.
    admin
        .get("/admin/webhooks")
        .await
        .assert_sign_in("/admin/webhooks", "replayed cookie");
    admin
        .get("/admin/settings")
        .await
        .assert_sign_in("/admin/settings", "replayed cookie");
    let p = admin
        .post(
            "/admin/webhooks",
            &pairs(&[
                ("name", "after logout"),
                ("url", "https://example.com/after"),
                ("events", "license.created"),
            ]),
        )
        .await;
    assert!(p.location().starts_with("/admin/login?"), "{}", p.body);
    assert!(webhooks_of(&s, "default").await.is_empty());
    // Signing out twice is just a sign-in redirect.
    let p = admin.post("/admin/logout", &Vec::new()).await;
    assert!(p.location().starts_with("/admin/login?"), "{}", p.body);
    // Other sessions live on.
    assert_eq!(bystander.get("/admin/webhooks").await.status, 200);
}

#[tokio::test]
async fn revoking_the_admin_key_ends_its_session_within_the_cache_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (id, key) = provision(&s, "default", &["admin"]).await;
    let admin = sign_in(&s, &key, "").await;
    let mgmt = sign_in(&s, MGMT_KEY, "").await;
    assert_eq!(admin.get("/admin/webhooks").await.status, 200);

    let (status, body) = s.delete(&format!("/management/api-keys/{id}")).await;
    assert_eq!(status, 204, "{body}");
    let revoked_at = Instant::now();
    loop {
        let p = admin.get("/admin/webhooks").await;
        if p.status == 303 {
            p.assert_sign_in("/admin/webhooks", "revoked key");
            break;
        }
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(10),
            "the session of a revoked key still works after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing can be done with it either, and the key cannot sign in again.
    let p = admin
        .post(
            "/admin/webhooks",
            &pairs(&[
                ("name", "revoked"),
                ("url", "https://example.com/revoked"),
                ("events", "license.created"),
            ]),
        )
        .await;
    assert!(p.location().starts_with("/admin/login?"), "{}", p.body);
    let (cookie, csrf) = login_form(&admin.web).await;
    let p = submit_login(&admin.web, Some(&cookie), &csrf, &key, "", "").await;
    assert_eq!(p.status, 401, "{}", p.body);
    assert!(webhooks_of(&s, "default").await.is_empty());
    // A management key's session is not affected.
    assert_eq!(mgmt.get("/admin/webhooks").await.status, 200);
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let other = sign_in(&s, MGMT_KEY, "").await;
    assert_ne!(admin.csrf, other.csrf);
    let form = |name: &str, token: Option<&str>| {
        let mut f = Vec::new();
        if let Some(t) = token {
            f.push(("csrf_token".to_owned(), t.to_owned()));
        }
        f.extend(pairs(&[
            ("name", name),
            ("url", &format!("https://example.com/{name}")),
            ("environment", "production"),
            ("enabled", "on"),
            ("events", "license.created"),
        ]));
        f
    };
    let own_origin = s.base.clone();
    let refused: Vec<(&str, Fields, Headers)> = vec![
        ("no token", form("no-token", None), vec![]),
        ("empty token", form("empty-token", Some("")), vec![]),
        (
            "wrong token",
            form("wrong-token", Some(&flip(&admin.csrf, 0))),
            vec![],
        ),
        (
            "another session's token",
            form("other-token", Some(&other.csrf)),
            vec![],
        ),
        (
            "token with a suffix",
            form("suffix", Some(&format!("{}x", admin.csrf))),
            vec![],
        ),
        (
            "cross-site origin",
            form("evil-origin", Some(&admin.csrf)),
            vec![("origin", "http://evil.test")],
        ),
        (
            "null origin",
            form("null-origin", Some(&admin.csrf)),
            vec![("origin", "null")],
        ),
        (
            "same host, other port",
            form("other-port", Some(&admin.csrf)),
            vec![("origin", "http://127.0.0.1:1")],
        ),
        (
            "sec-fetch-site cross-site",
            form("fetch-site", Some(&admin.csrf)),
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "sec-fetch-site cross-site with our origin",
            form("fetch-site-2", Some(&admin.csrf)),
            vec![("sec-fetch-site", "cross-site"), ("origin", &own_origin)],
        ),
    ];
    for (what, fields, headers) in &refused {
        let p = admin.post_raw("/admin/webhooks", fields, headers).await;
        p.assert_error_page(403, what);
    }
    assert!(
        webhooks_of(&s, "default").await.is_empty(),
        "a refused form created a webhook"
    );

    // The same form, from this site with its token, is accepted.
    let p = admin
        .post_raw(
            "/admin/webhooks",
            &form("accepted", Some(&admin.csrf)),
            &[("origin", &own_origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/webhooks?done=created");
    let hooks = webhooks_of(&s, "default").await;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["name"], "accepted");
    let id = hooks[0]["id"].as_i64().unwrap();

    // Other state-changing forms are guarded the same way.
    for path in [
        format!("/admin/webhooks/{id}/toggle"),
        format!("/admin/webhooks/{id}/delete"),
        format!("/admin/webhooks/{id}/secret"),
        format!("/admin/webhooks/{id}"),
        "/admin/settings".to_owned(),
        "/admin/tenant".to_owned(),
        "/admin/logout".to_owned(),
    ] {
        let p = admin
            .post_raw(&path, &pairs(&[("csrf_token", &other.csrf)]), &[])
            .await;
        p.assert_error_page(403, &format!("POST {path} with a wrong token"));
        let p = admin
            .post_raw(
                &path,
                &pairs(&[("csrf_token", &admin.csrf)]),
                &[("origin", "http://evil.test")],
            )
            .await;
        p.assert_error_page(403, &format!("POST {path} from another site"));
    }
    let (_, after) = webhook(&s, "default", id).await;
    assert_eq!(after, hooks[0], "a refused form changed the webhook");
    // The refused sign-out and tenant switch changed nothing either.
    let page = admin.page("/admin/webhooks").await;
    assert_eq!(shown_tenant(&page), "default");
}
