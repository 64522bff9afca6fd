//! Every admin page's security headers, and its assets served by hookd itself.

use super::*;

fn assert_security_headers(p: &Page, what: &str) {
    let csp = p.header("content-security-policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(
        directives.contains(&"default-src 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert!(
        directives.contains(&"script-src 'self'"),
        "{what}: CSP {csp:?}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert!(!csp.contains('*'), "{what}: {csp}");
    assert_eq!(p.header("x-frame-options"), "DENY", "{what}");
    assert_eq!(p.header("x-content-type-options"), "nosniff", "{what}");
}

fn assert_page_headers(p: &Page, what: &str) {
    assert_security_headers(p, what);
    assert_eq!(p.header("cache-control"), "no-store", "{what}");
    if p.is_html() {
        // Nothing from another host, no inline code.
        for bad in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "style=\"",
            "<style",
        ] {
            assert!(!p.body.contains(bad), "{what}: {bad:?} in\n{}", p.body);
        }
        for script in Html::parse_document(&p.body).select(&selector("script")) {
            assert!(
                script.value().attr("src").is_some(),
                "{what}: inline script"
            );
        }
    }
}

#[tokio::test]
async fn admin_pages_carry_security_headers_and_serve_their_own_assets() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let w = s.create_webhook("https://example.com/h", json!({})).await;
    let id = w["id"].as_i64().unwrap();
    let web = Web::new(&s);
    let login = web.get("/admin/login", None).await;
    assert_eq!(login.status, 200);
    assert_page_headers(&login, "sign-in page");
    let redirect = web.get("/admin/webhooks", None).await;
    assert_eq!(redirect.status, 303);
    assert_page_headers(&redirect, "sign-in redirect");

    let admin = sign_in(&s, MGMT_KEY, "").await;
    for path in [
        "/admin/webhooks".to_owned(),
        "/admin/webhooks/new".to_owned(),
        format!("/admin/webhooks/{id}"),
        format!("/admin/webhooks/{id}/delete"),
        "/admin/deliveries".to_owned(),
        "/admin/settings".to_owned(),
    ] {
        let p = admin.get(&path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert!(p.is_html(), "{path}");
        assert_page_headers(&p, &path);
    }
    let p = admin.get("/admin/webhooks/999999").await;
    p.assert_error_page(404, "missing webhook");
    assert_page_headers(&p, "404 page");
    let p = admin.get("/admin/no-such-page").await;
    p.assert_error_page(404, "unknown admin path");
    assert_page_headers(&p, "unknown admin path");
    let p = admin
        .post_raw(
            "/admin/webhooks",
            &Vec::new(),
            &[("origin", "http://evil.test")],
        )
        .await;
    p.assert_error_page(403, "cross-site form");
    assert_page_headers(&p, "403 page");

    for (path, ct, content) in [
        (
            "/admin/static/app.css",
            "text/css",
            include_str!("../../../assets/admin/app.css"),
        ),
        (
            "/admin/static/app.js",
            "text/javascript",
            include_str!("../../../assets/admin/app.js"),
        ),
    ] {
        let p = web.get(path, None).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(
            p.header("content-type").starts_with(ct),
            "{path}: {:?}",
            p.header("content-type")
        );
        assert_eq!(p.body, content, "{path}");
        assert_security_headers(&p, path);
    }
    assert!(
        login.body.contains("/admin/static/app.css?v="),
        "{}",
        login.body
    );
    let page = admin.page("/admin/webhooks").await;
    assert!(page.contains("/admin/static/app.js?v="), "{page}");
    assert!(page.contains("/admin/static/app.css?v="), "{page}");
}
