//! The customer portal over plain HTTP (SPEC §11): links (who may make
//! them, how long they last, single use, tampering), the portal session
//! carried in the URL (no cookie), tenant isolation, read-only portals,
//! the framing and referrer headers, and tokens kept out of the logs.

use super::*;

const LINKS: &str = "/management/portal-links";
const FRAMER: &str = "http://localhost:4567";

pub(super) async fn portal_server(dir: &std::path::Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .arg("--portal-frame-ancestors")
        .arg(FRAMER)
        .arg("--portal-product-name")
        .arg("Acme Hooks")
        .arg("--portal-accent-color")
        .arg("#0A7D55")
        .start()
        .await
}

/// Makes a link with the management key acting on `tenant`.
pub(super) async fn link_for(s: &TestServer, tenant: &str, body: Value) -> Value {
    let (status, out) = send(
        s.req(Method::POST, LINKS)
            .header("X-Tenant-Id", tenant)
            .json(&body),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    out
}

/// The link's path (its URL is under the address it was asked at).
fn link_path(s: &TestServer, link: &Value) -> String {
    let url = link["url"].as_str().unwrap();
    url.strip_prefix(&s.base)
        .unwrap_or_else(|| panic!("{url} is not under {}", s.base))
        .to_owned()
}

/// A browser with no cookie jar: the portal must work without one.
pub(super) struct Portal {
    pub(super) web: Web,
    /// `/portal/s/{token}`.
    pub(super) base: String,
    csrf: String,
}

impl Portal {
    pub(super) async fn open(s: &TestServer, link: &Value) -> Portal {
        let web = Web::new(s);
        let p = web.get(&link_path(s, link), None).await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert!(
            p.headers.get(header::SET_COOKIE).is_none(),
            "opening a portal sets no cookie"
        );
        let location = p.location();
        let base = location
            .strip_suffix("/webhooks")
            .unwrap_or_else(|| panic!("{location}"))
            .to_owned();
        assert!(base.starts_with("/portal/s/"), "{base}");
        let list = web.get(&location, None).await;
        assert_eq!(list.status, 200, "{}", list.body);
        let form = web.get(&format!("{base}/webhooks/new"), None).await;
        let csrf = csrf_of(&form.body);
        Portal { web, base, csrf }
    }

    pub(super) async fn get(&self, path: &str) -> Page {
        self.web.get(&format!("{}{path}", self.base), None).await
    }

    pub(super) async fn page(&self, path: &str) -> String {
        let p = self.get(path).await;
        assert_eq!(p.status, 200, "GET {path}: {}", p.body);
        p.body
    }

    pub(super) async fn post(&self, path: &str, fields: &Fields) -> Page {
        let mut all = pairs(&[("csrf_token", &self.csrf)]);
        all.extend(fields.iter().cloned());
        self.web
            .post(&format!("{}{path}", self.base), None, &all, &[])
            .await
    }
}

#[tokio::test]
async fn portal_links_are_made_by_admins_of_their_tenant_within_24_hours() {
    let dir = tempfile::tempdir().unwrap();
    let s = portal_server(dir.path()).await;
    let link = link_for(&s, "acme", json!({})).await;
    assert_eq!(link["tenant"], "acme");
    assert_eq!(link["read_only"], false);
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/portal/links/", s.base))
    );
    let expires = hookd::clock::parse_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (expires - now - 3_600_000).abs() < 60_000,
        "default expiry is an hour: {link}"
    );
    // The body's tenant wins for a management key; 24 h is the most.
    let (status, out) = s
        .post(
            LINKS,
            json!({"tenant": "globex", "expires_in": "24h", "read_only": true}),
        )
        .await;
    assert_eq!(
        (status, &out["tenant"], &out["read_only"]),
        (201, &json!("globex"), &json!(true)),
        "{out}"
    );
    for (body, field) in [
        (json!({"expires_in": "25h"}), "expires_in"),
        (json!({"expires_in": "0s"}), "expires_in"),
        (json!({"expires_in": "soon"}), "expires_in"),
        (json!({"tenant": "no spaces!"}), "tenant"),
    ] {
        let (status, out) = s.post(LINKS, body.clone()).await;
        crate::common::assert_field_error(status, &out, field);
    }
    let (status, out) = s.post(LINKS, json!({"read_only": "yes"})).await;
    assert_eq!(status, 400, "{out}");
    // A provisioned admin key: its own tenant only.
    let (_, admin_a) = provision(&s, "a", &["admin"]).await;
    let (status, out) = send(s.req_as(&admin_a, Method::POST, LINKS).json(&json!({}))).await;
    assert_eq!((status, out["tenant"].as_str()), (201, Some("a")), "{out}");
    let (status, out) = send(
        s.req_as(&admin_a, Method::POST, LINKS)
            .json(&json!({"tenant": "b"})),
    )
    .await;
    assert_eq!(status, 403, "another tenant's link: {out}");
    let (status, out) = send(
        s.req_as(&admin_a, Method::POST, LINKS)
            .header("X-Tenant-Id", "b")
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        (status, out["tenant"].as_str()),
        (201, Some("a")),
        "the header is ignored: {out}"
    );
    let (_, writer) = provision(&s, "a", &["webhooks:write", "webhooks:read"]).await;
    let (status, _) = send(s.req_as(&writer, Method::POST, LINKS).json(&json!({}))).await;
    assert_eq!(status, 403, "a key without admin");
    let (status, _) = send(s.client.post(s.url(LINKS)).json(&json!({}))).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_link_opens_one_portal_once_and_says_why_it_opens_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let s = portal_server(dir.path()).await;
    let link = link_for(&s, "acme", json!({})).await;
    let path = link_path(&s, &link);
    let portal = Portal::open(&s, &link).await;
    let list = portal.get("/webhooks").await;
    // Framable by the configured origin only; the URL never leaves as a referrer.
    let csp = list.header("content-security-policy");
    assert!(csp.contains(&format!("frame-ancestors {FRAMER};")), "{csp}");
    assert_eq!(list.header("referrer-policy"), "no-referrer");
    assert_eq!(
        list.header("x-frame-options"),
        "",
        "XFO would forbid every frame"
    );
    assert_eq!(list.header("cache-control"), "no-store");
    assert!(list.body.contains("Acme Hooks"), "the product name");
    assert!(list.body.contains("/portal/theme.css"));
    let theme = Web::new(&s).get("/portal/theme.css", None).await;
    assert!(theme.body.contains("--accent: #0a7d55;"), "{}", theme.body);

    // Used once: a second opening is a page that says so, and no portal.
    let again = Web::new(&s).get(&path, None).await;
    again.assert_error_page(410, "a used link");
    assert!(again.body.contains("already used"), "{}", again.body);
    assert_eq!(again.location(), "");
    assert!(
        again
            .header("content-security-policy")
            .contains(&format!("frame-ancestors {FRAMER};")),
        "the refusal shows inside the frame too"
    );

    // Tampered with: altered or cut short, it opens nothing.
    let link2 = link_for(&s, "acme", json!({})).await;
    let path2 = link_path(&s, &link2);
    let at = path2.len() - 5;
    for bad in [
        flip(&path2, at),
        path2[..path2.len() - 3].to_owned(),
        format!("{path2}x"),
    ] {
        let p = Web::new(&s).get(&bad, None).await;
        p.assert_error_page(400, "a tampered link");
        assert!(p.body.contains("altered"), "{}", p.body);
    }
    // …and the real one still opens (tampering did not use it).
    Portal::open(&s, &link2).await;

    // A made-up portal session is a page saying the portal is closed.
    let fake = Web::new(&s).get("/portal/s/abc.def/webhooks", None).await;
    fake.assert_error_page(401, "a made-up portal token");
    // The admin page's session is never a portal's, nor the reverse.
    let token = portal.base.trim_start_matches("/portal/s/");
    let p = Web::new(&s)
        .get("/admin/webhooks", Some(&format!("hookd_session={token}")))
        .await;
    p.assert_sign_in("/admin/webhooks", "a portal token as the admin cookie");
    let admin = sign_in(&s, MGMT_KEY, "acme").await;
    let cookie = admin.cookie.trim_start_matches("hookd_session=");
    Web::new(&s)
        .get(&format!("/portal/s/{cookie}/webhooks"), None)
        .await
        .assert_error_page(401, "the admin cookie as a portal token");

    // No token reaches the log.
    let log = s.log();
    assert!(!log.contains(token), "the portal token was logged");
    let link_token = path.trim_start_matches("/portal/links/");
    assert!(!log.contains(link_token), "the link was logged");
}

#[tokio::test]
async fn links_and_portals_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = ServerConfig::new(dir.path()).start_in_process().await;
    let late = link_for(&s, "acme", json!({"expires_in": "10m"})).await;
    let soon = link_for(&s, "acme", json!({})).await;
    let portal = Portal::open(&s, &soon).await;
    clock.advance(Duration::from_secs(10 * 60 + 1));
    let p = Web::new(&s).get(&link_path(&s, &late), None).await;
    p.assert_error_page(410, "an expired link");
    assert!(p.body.contains("expired"), "{}", p.body);
    assert_eq!(p.location(), "");
    // An opened portal lasts 4 hours.
    portal.page("/webhooks").await;
    clock.advance(Duration::from_secs(4 * 3600));
    let p = portal.get("/webhooks").await;
    p.assert_error_page(401, "a portal past its 4 hours");
    assert!(p.body.contains("ended"), "{}", p.body);
}

#[tokio::test]
async fn a_portal_acts_on_its_tenant_alone_and_offers_no_keys_settings_or_switch() {
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
    let portal = Portal::open(&s, &link_for(&s, "acme", json!({})).await).await;
    let list = portal.page("/webhooks").await;
    assert!(
        list.contains("acme-crm") && !list.contains("globex-crm"),
        "{list}"
    );
    assert!(find_form(&list, "/admin/tenant").is_none() && !list.contains("tenant-switch"));
    assert!(
        !list.contains("/admin/logout")
            && !list.contains("/admin/api-keys")
            && !list.contains("/admin/settings")
    );
    assert!(
        !list.contains("href=\"/admin/webhooks"),
        "links stay in the portal"
    );
    let theirs_id = theirs["id"].as_i64().unwrap();
    portal
        .get(&format!("/webhooks/{theirs_id}"))
        .await
        .assert_error_page(404, "another tenant's webhook");
    for path in ["/api-keys", "/settings", "/tenant", "/login"] {
        portal.get(path).await.assert_error_page(404, path);
    }
    // Its secret, on its page.
    let mine_id = mine["id"].as_i64().unwrap();
    let edit = portal.page(&format!("/webhooks/{mine_id}")).await;
    let secret = secret_of(&s, "acme", mine_id).await;
    assert!(
        edit.contains(secret["secret"].as_str().unwrap()),
        "the secret is revealed on its page"
    );

    // Created through the portal's form: in acme, back to the portal's list.
    let form = form_fields(
        &portal.page("/webhooks/new").await,
        &format!("{}/webhooks", portal.base),
    );
    let mut fields = form.clone();
    set(&mut fields, "name", "from-the-portal");
    set(&mut fields, "url", &rx.url("/p"));
    set_all(&mut fields, "events", &["license.created"]);
    let p = portal
        .web
        .post(&format!("{}/webhooks", portal.base), None, &fields, &[])
        .await;
    assert_eq!(
        (p.status, p.location()),
        (303, format!("{}/webhooks?done=created", portal.base)),
        "{}",
        p.body
    );
    assert!(
        webhooks_of(&s, "acme")
            .await
            .iter()
            .any(|w| w["name"] == "from-the-portal")
    );
    assert!(
        !webhooks_of(&s, "globex")
            .await
            .iter()
            .any(|w| w["name"] == "from-the-portal")
    );
    // Without the CSRF token, or from another site: refused.
    let mut no_csrf = fields.clone();
    no_csrf.retain(|(k, _)| k != "csrf_token");
    let p = portal
        .web
        .post(&format!("{}/webhooks", portal.base), None, &no_csrf, &[])
        .await;
    p.assert_error_page(403, "no CSRF token");
    let p = portal
        .web
        .post(
            &format!("{}/webhooks", portal.base),
            None,
            &fields,
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    p.assert_error_page(403, "posted from another site");
    // Toggling, through the portal: acme's only.
    let p = portal
        .post(
            &format!("/webhooks/{theirs_id}/toggle"),
            &pairs(&[("enabled", "false")]),
        )
        .await;
    p.assert_error_page(404, "toggling another tenant's webhook");
    assert_eq!(webhook(&s, "globex", theirs_id).await.1["enabled"], true);
    // Its own: deactivated, secret rotated, test sent, deleted — each back
    // into the portal.
    let back = |p: &Page| p.location();
    let p = portal
        .post(
            &format!("/webhooks/{mine_id}/toggle"),
            &pairs(&[("enabled", "false")]),
        )
        .await;
    assert!(
        back(&p).starts_with(&format!("{}/webhooks?", portal.base)),
        "{}",
        back(&p)
    );
    assert_eq!(webhook(&s, "acme", mine_id).await.1["enabled"], false);
    let p = portal
        .post(&format!("/webhooks/{mine_id}/secret"), &pairs(&[]))
        .await;
    assert_eq!(
        back(&p),
        format!("{}/webhooks/{mine_id}?done=rotated", portal.base)
    );
    assert_ne!(
        secret_of(&s, "acme", mine_id).await["secret"],
        secret["secret"]
    );
    let p = portal
        .post(
            &format!("/webhooks/{mine_id}/toggle"),
            &pairs(&[("enabled", "true")]),
        )
        .await;
    assert_eq!(p.status, 303);
    let p = portal
        .post(&format!("/webhooks/{mine_id}/test"), &pairs(&[]))
        .await;
    assert_eq!(
        back(&p),
        format!(
            "{}/deliveries?webhook_id={mine_id}&done=tested",
            portal.base
        )
    );
    let log = portal
        .page(&format!("/deliveries?webhook_id={mine_id}"))
        .await;
    assert!(
        log.contains("webhook.test") && !log.contains("/admin/deliveries"),
        "{log}"
    );
    let delete_page = portal.page(&format!("/webhooks/{mine_id}/delete")).await;
    assert!(
        find_form(
            &delete_page,
            &format!("{}/webhooks/{mine_id}/delete", portal.base)
        )
        .is_some()
    );
    let p = portal
        .post(&format!("/webhooks/{mine_id}/delete"), &pairs(&[]))
        .await;
    assert_eq!(back(&p), format!("{}/webhooks?done=deleted", portal.base));
    assert_eq!(webhook(&s, "acme", mine_id).await.0, 404);
}

#[tokio::test]
async fn a_read_only_portal_shows_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = portal_server(dir.path()).await;
    let rx = Receiver::start().await;
    let mine = create_in(
        &s,
        "acme",
        json!({"name": "acme-crm", "url": rx.url("/a"), "events": ["license.created"]}),
    )
    .await;
    let id = mine["id"].as_i64().unwrap();
    let portal = Portal::open(&s, &link_for(&s, "acme", json!({"read_only": true})).await).await;
    let list = portal.page("/webhooks").await;
    assert!(list.contains("acme-crm") && list.contains("Read-only"));
    assert!(
        !list.contains("Create Webhook") && !list.contains("/toggle") && !list.contains("/delete"),
        "{list}"
    );
    let edit = portal.page(&format!("/webhooks/{id}")).await;
    let secret = secret_of(&s, "acme", id).await;
    assert!(
        !edit.contains(secret["secret"].as_str().unwrap()),
        "a read-only portal never sees the secret"
    );
    assert!(
        !edit.contains(">Save<") && !edit.contains("Send test event") && !edit.contains("/recover")
    );
    for (path, fields) in [
        (
            format!("/webhooks/{id}/toggle"),
            pairs(&[("enabled", "false")]),
        ),
        (format!("/webhooks/{id}/secret"), pairs(&[])),
        (format!("/webhooks/{id}/delete"), pairs(&[])),
        (
            "/webhooks".to_owned(),
            pairs(&[
                ("name", "x"),
                ("url", "https://hooks.example.test/x"),
                ("events", "license.created"),
            ]),
        ),
    ] {
        let p = portal.post(&path, &fields).await;
        p.assert_error_page(403, &path);
        assert!(p.body.contains("read-only"), "{}", p.body);
    }
    assert_eq!(webhook(&s, "acme", id).await.1["enabled"], true);
    assert_eq!(webhooks_of(&s, "acme").await.len(), 1);
}

#[tokio::test]
async fn revoking_the_key_that_made_a_link_closes_its_portal() {
    let dir = tempfile::tempdir().unwrap();
    let s = portal_server(dir.path()).await;
    let (key_id, admin_a) = provision(&s, "a", &["admin"]).await;
    let (_, link) = send(s.req_as(&admin_a, Method::POST, LINKS).json(&json!({}))).await;
    let (_, unused) = send(s.req_as(&admin_a, Method::POST, LINKS).json(&json!({}))).await;
    let portal = Portal::open(&s, &link).await;
    portal.page("/webhooks").await;
    let (status, _) = send(
        s.req(Method::DELETE, &format!("/management/api-keys/{key_id}"))
            .header("X-Tenant-Id", "a"),
    )
    .await;
    assert_eq!(status, 204);
    portal
        .get("/webhooks")
        .await
        .assert_error_page(401, "after the key was revoked");
    let p = Web::new(&s).get(&link_path(&s, &unused), None).await;
    p.assert_error_page(403, "a link of a revoked key");
    assert!(p.body.contains("revoked"), "{}", p.body);
}

#[tokio::test]
async fn the_admin_page_is_never_framed_and_the_portal_only_by_its_origins() {
    let dir = tempfile::tempdir().unwrap();
    // No --portal-frame-ancestors: nobody frames the portal either.
    let s = server(dir.path()).await;
    let portal = Portal::open(&s, &link_for(&s, "acme", json!({})).await).await;
    let csp = portal
        .get("/webhooks")
        .await
        .header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none';"), "{csp}");
    let dir2 = tempfile::tempdir().unwrap();
    let framed = portal_server(dir2.path()).await;
    for path in ["/admin/login", "/admin/webhooks"] {
        let p = Web::new(&framed).get(path, None).await;
        assert!(
            p.header("content-security-policy")
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(p.header("x-frame-options"), "DENY", "{path}");
    }
}
