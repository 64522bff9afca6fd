//! Signing in and out of the page: signed-out pages redirect to the sign-in form, which
//! refuses wrong keys and forged forms; the cookies it sets; return paths,
//! hostile ones included; a link from another site.

use super::*;

#[tokio::test]
async fn signed_out_pages_redirect_to_sign_in_with_the_path_to_return_to() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let web = Web::new(&s);
    let w = s
        .create_webhook("https://example.com/kept", json!({}))
        .await;
    let id = w["id"].as_i64().unwrap();
    for path in [
        "/admin/webhooks".to_owned(),
        "/admin/deliveries".to_owned(),
        "/admin/settings".to_owned(),
        "/admin/webhooks/new".to_owned(),
        format!("/admin/webhooks/{id}"),
        format!("/admin/webhooks/{id}/delete"),
        "/admin/deliveries/1".to_owned(),
        // The query comes back too, url-encoded within `next`.
        "/admin/deliveries?status=failed&range=1h".to_owned(),
    ] {
        let p = web.get(&path, None).await;
        p.assert_sign_in(&path, &format!("GET {path}"));
        assert!(p.set_cookie_line("hookd_session").is_none(), "{path}");
    }
    assert_eq!(
        web.get("/admin/webhooks", None).await.location(),
        "/admin/login?next=%2Fadmin%2Fwebhooks"
    );
    for root in ["/admin", "/admin/"] {
        let p = web.get(root, None).await;
        assert_eq!(
            (p.status, p.location()),
            (303, "/admin/webhooks".to_owned()),
            "{root}"
        );
    }
    // A cookie that is not a session is no session.
    let p = web
        .get("/admin/webhooks", Some("hookd_session=; hookd_login=x"))
        .await;
    p.assert_sign_in("/admin/webhooks", "empty session cookie");

    // State-changing forms without a session change nothing.
    let token = "A".repeat(43);
    let create = pairs(&[
        ("csrf_token", &token),
        ("name", "sneaky"),
        ("url", "https://example.com/sneaky"),
        ("environment", "production"),
        ("enabled", "on"),
        ("events", "license.created"),
    ]);
    let p = web.post("/admin/webhooks", None, &create, &[]).await;
    p.assert_sign_in("/admin/webhooks", "POST /admin/webhooks signed out");
    let p = web
        .post(&format!("/admin/webhooks/{id}/toggle"), None, &create, &[])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(
        p.location().starts_with("/admin/login?"),
        "{}",
        p.location()
    );
    let p = web
        .post(&format!("/admin/webhooks/{id}/delete"), None, &create, &[])
        .await;
    assert!(
        p.location().starts_with("/admin/login?"),
        "{}",
        p.location()
    );
    let p = web
        .post(&format!("/admin/webhooks/{id}/secret"), None, &create, &[])
        .await;
    assert!(
        p.location().starts_with("/admin/login?"),
        "{}",
        p.location()
    );

    let hooks = webhooks_of(&s, "default").await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["id"], id);
    assert_eq!(hooks[0]["enabled"], true);
    assert_eq!(secret_of(&s, "default", id).await["secret"], w["secret"]);
}

#[tokio::test]
async fn sign_in_refuses_wrong_keys_forged_forms_and_keys_without_admin() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let web = Web::new(&s);

    // Wrong key: 401, the form again with the error, the key not echoed.
    let (cookie, csrf) = login_form(&web).await;
    let wrong = "hk_wrong_key_0123456789abcdef";
    let p = submit_login(&web, Some(&cookie), &csrf, wrong, "", "").await;
    assert_eq!(p.status, 401, "{}", p.body);
    assert!(p.is_html());
    assert!(p.body.contains("This API key is not valid."), "{}", p.body);
    assert!(
        !p.body.contains(wrong),
        "the typed key is echoed:\n{}",
        p.body
    );
    assert!(p.set_cookie_line("hookd_session").is_none());
    // A new sign-in form comes with a new login cookie.
    let again = p.cookie("hookd_login").expect("new login cookie");
    assert_eq!(again, csrf_of(&p.body));

    // No login cookie: 403, even with the right key.
    let (_, csrf) = login_form(&web).await;
    let p = submit_login(&web, None, &csrf, MGMT_KEY, "", "").await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(
        p.body.contains("expired or came from another site"),
        "{}",
        p.body
    );
    assert!(p.set_cookie_line("hookd_session").is_none());

    // Token and cookie that do not match: 403.
    let (cookie, csrf) = login_form(&web).await;
    let (other_cookie, _) = login_form(&web).await;
    let p = submit_login(&web, Some(&other_cookie), &csrf, MGMT_KEY, "", "").await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.set_cookie_line("hookd_session").is_none());
    let p = submit_login(&web, Some(&cookie), "", MGMT_KEY, "", "").await;
    assert_eq!(p.status, 403, "empty csrf_token: {}", p.body);
    let p = submit_login(&web, Some(""), "", MGMT_KEY, "", "").await;
    assert_eq!(p.status, 403, "empty cookie and token: {}", p.body);

    // A sign-in form posted from another site: 403 (login CSRF).
    let (cookie, csrf) = login_form(&web).await;
    let p = web
        .post(
            "/admin/login",
            Some(&format!("hookd_login={cookie}")),
            &pairs(&[
                ("csrf_token", &csrf),
                ("api_key", MGMT_KEY),
                ("tenant", ""),
                ("next", ""),
            ]),
            &[("origin", "http://evil.test")],
        )
        .await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.set_cookie_line("hookd_session").is_none());

    // A valid key without `admin`: 403 saying so.
    let (_, no_admin) = provision(
        &s,
        "default",
        &[
            "webhooks:read",
            "webhooks:list",
            "webhooks:write",
            "deliveries:read",
        ],
    )
    .await;
    let (cookie, csrf) = login_form(&web).await;
    let p = submit_login(&web, Some(&cookie), &csrf, &no_admin, "", "").await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.body.contains("lacks the admin permission"), "{}", p.body);
    assert!(p.set_cookie_line("hookd_session").is_none());

    // An empty key and an invalid tenant name: 400.
    let (cookie, csrf) = login_form(&web).await;
    let p = submit_login(&web, Some(&cookie), &csrf, "", "", "").await;
    assert_eq!(p.status, 400, "{}", p.body);
    let (cookie, csrf) = login_form(&web).await;
    let p = submit_login(&web, Some(&cookie), &csrf, MGMT_KEY, "no spaces!", "").await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.set_cookie_line("hookd_session").is_none());
}

#[tokio::test]
async fn admin_key_signs_in_with_a_strict_http_only_cookie_and_safe_return_paths() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let web = Web::new(&s);
    let (_, admin_key) = provision(&s, "default", &["admin"]).await;

    let (cookie, csrf) = login_form(&web).await;
    let p = submit_login(&web, Some(&cookie), &csrf, &admin_key, "", "").await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/webhooks");
    let line = p.set_cookie_line("hookd_session").expect("session cookie");
    let attributes: Vec<String> = line
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for expected in ["httponly", "samesite=strict", "path=/admin"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing: {line}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{line}"
    );
    let value = p.cookie("hookd_session").unwrap();
    assert!(value.len() > 40, "{value}");
    // The login cookie is cleared.
    let login_line = p
        .set_cookie_line("hookd_login")
        .expect("login cookie cleared");
    assert!(login_line.starts_with("hookd_login=;"), "{login_line}");
    assert!(login_line.contains("Max-Age=0"), "{login_line}");
    // The session works.
    let page = web
        .get("/admin/webhooks", Some(&format!("hookd_session={value}")))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(shown_tenant(&page.body), "default");

    // `next` from the sign-in redirect is followed, query included.
    let p = web
        .get("/admin/deliveries?status=failed&range=1h", None)
        .await;
    let login = web.get(&p.location(), None).await;
    assert_eq!(login.status, 200);
    let mut fields = form_fields(&login.body, "/admin/login");
    assert_eq!(
        value_of(&fields, "next"),
        Some("/admin/deliveries?status=failed&range=1h")
    );
    set(&mut fields, "api_key", &admin_key);
    let cookie = login.cookie("hookd_login").unwrap();
    let p = web
        .post(
            "/admin/login",
            Some(&format!("hookd_login={cookie}")),
            &fields,
            &[],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), "/admin/deliveries?status=failed&range=1h");

    // `next` pointing elsewhere is not followed.
    for next in [
        "//evil.test/",
        "https://evil.test/",
        "http://evil.test/admin/",
        "/\\evil.test/",
        "//evil.test/admin/",
        "/admin/\\\\evil.test",
        "/other",
        "javascript:alert(1)",
    ] {
        let (cookie, csrf) = login_form(&web).await;
        let p = submit_login(&web, Some(&cookie), &csrf, &admin_key, "", next).await;
        assert_eq!(p.status, 303, "next {next:?}: {}", p.body);
        let location = p.location();
        assert!(
            location.starts_with("/admin/") && !location.contains("evil"),
            "next {next:?} redirected to {location:?}"
        );
        // The sign-in page does not offer it either.
        let page = web
            .get(
                &format!(
                    "/admin/login?{}",
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", next)
                        .finish()
                ),
                None,
            )
            .await;
        assert_eq!(
            value_of(&form_fields(&page.body, "/admin/login"), "next"),
            Some(""),
            "next {next:?}"
        );
    }
}

#[tokio::test]
async fn secure_cookies_flag_marks_both_cookies_secure() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--admin-secure-cookies")
        .start()
        .await;
    let web = Web::new(&s);
    let p = web.get("/admin/login", None).await;
    let line = p.set_cookie_line("hookd_login").unwrap();
    assert!(line.contains("; Secure"), "{line}");
    let cookie = p.cookie("hookd_login").unwrap();
    let csrf = csrf_of(&p.body);
    let p = submit_login(&web, Some(&cookie), &csrf, MGMT_KEY, "", "").await;
    assert_eq!(p.status, 303, "{}", p.body);
    let line = p.set_cookie_line("hookd_session").unwrap();
    assert!(line.contains("; Secure"), "{line}");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );

    // Without the flag (plain HTTP in development) there is no Secure.
    let dir2 = tempfile::tempdir().unwrap();
    let plain = TestServer::start(dir2.path()).await;
    let p = Web::new(&plain).get("/admin/login", None).await;
    let line = p.set_cookie_line("hookd_login").unwrap();
    assert!(!line.contains("Secure"), "{line}");
}

#[tokio::test]
async fn sign_in_with_a_control_character_in_next_still_redirects_safely() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let web = Web::new(&s);
    for next in ["/admin/\u{1}x", "/admin/webhooks\u{7f}", "/admin/\tx"] {
        let (cookie, csrf) = login_form(&web).await;
        let p = submit_login(&web, Some(&cookie), &csrf, MGMT_KEY, "", next).await;
        assert_eq!(
            p.status,
            303,
            "sign-in with next {next:?}: {} {:?} {}",
            p.status,
            p.header("content-type"),
            p.body
        );
        assert!(
            p.location().starts_with("/admin/"),
            "{next:?}: {}",
            p.location()
        );
    }
}

#[tokio::test]
async fn return_to_with_a_control_character_still_redirects_safely() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let w = s.create_webhook("https://example.com/rt", json!({})).await;
    let id = w["id"].as_i64().unwrap();
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let p = admin
        .post(
            &format!("/admin/webhooks/{id}/toggle"),
            &pairs(&[
                ("return_to", "/admin/webhooks?q=\u{1}"),
                ("enabled", "false"),
            ]),
        )
        .await;
    assert_eq!(
        p.status,
        303,
        "toggle with a control character in return_to: {} {:?} {}",
        p.status,
        p.header("content-type"),
        p.body
    );
    assert!(
        p.location().starts_with("/admin/webhooks"),
        "{}",
        p.location()
    );
    assert!(
        p.location()
            .ends_with(&format!("done=disabled#toggle-{id}")),
        "{}",
        p.location()
    );
    assert_eq!(webhook(&s, "default", id).await.1["enabled"], false);
}

#[tokio::test]
async fn a_link_from_another_site_reloads_once_then_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let web = Web::new(&s);
    let cross = web
        .fetch(
            web.http
                .get(format!("{}/admin/deliveries", s.base))
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(cross.status, 200, "{}", cross.body);
    assert_eq!(cross.header("refresh"), "0");
    assert!(cross.body.contains("http-equiv=\"refresh\""));
    let guard = cross.set_cookie_line("hookd_reload").expect("guard cookie");
    assert!(
        guard.contains("SameSite=Lax") && guard.contains("Path=/admin"),
        "{guard}"
    );
    // The reload, still without a session: sign-in, never a loop.
    let again = web
        .fetch(
            web.http
                .get(format!("{}/admin/deliveries", s.base))
                .header("sec-fetch-site", "cross-site")
                .header(header::COOKIE, "hookd_reload=1"),
        )
        .await;
    again.assert_sign_in("/admin/deliveries", "the reload without a session");
    // A POST from elsewhere is never reloaded.
    let post = web
        .post(
            "/admin/webhooks",
            None,
            &pairs(&[("name", "x")]),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    post.assert_error_page(403, "a cross-site POST, never reloaded");
}

/// SPEC §14: after 10 wrong keys from one address the sign-in form answers
/// 429, saying when to try again, without checking the key; another
/// address still signs in.
#[tokio::test]
async fn repeated_failed_sign_ins_are_answered_429_with_a_clear_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let web = Web::new(&s);
    for i in 0..10 {
        let (cookie, csrf) = login_form(&web).await;
        let p = submit_login(&web, Some(&cookie), &csrf, &format!("wrong_{i}"), "", "").await;
        assert_eq!(p.status, 401, "failure {i}: {}", p.body);
    }
    let (cookie, csrf) = login_form(&web).await;
    let p = submit_login(&web, Some(&cookie), &csrf, MGMT_KEY, "", "").await;
    assert_eq!(p.status, 429, "{}", p.body);
    assert!(p.is_html());
    assert!(
        p.body
            .contains("Too many failed sign-ins from your address"),
        "{}",
        p.body
    );
    let wait: u64 = p
        .header("retry-after")
        .parse()
        .expect("a Retry-After in seconds");
    assert!((1..=6).contains(&wait), "{wait}");
    assert!(p.set_cookie_line("hookd_session").is_none());

    // Another address has its own budget.
    let mut other = Web::new(&s);
    other.http = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, csrf) = login_form(&other).await;
    let p = submit_login(&other, Some(&cookie), &csrf, MGMT_KEY, "", "").await;
    assert_eq!(p.status, 303, "{}", p.body);
}
