//! The admin page (SPEC §8) over plain HTTP, as a browser would see it:
//! redirects are not followed and cookies are read from `set-cookie` and
//! sent back by hand. Sign-in and sessions, CSRF and cross-site forms,
//! tenant isolation, the webhook forms and their validation, escaping,
//! the settings (saved, restarted, applied), the delivery log and retry,
//! and the security headers.

use std::time::{Duration, Instant};

use crate::common::receiver::{Receiver, Reply};
use crate::common::{MGMT_KEY, ServerConfig, TestServer, send};
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

const HOOKS: &str = "/management/webhooks";
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- helpers

/// A server that may deliver to the test receiver on 127.0.0.1.
async fn server(dir: &std::path::Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .start()
        .await
}

type Fields = Vec<(String, String)>;
/// A tag's attributes: (name, value if any), values unescaped.
type Attrs = Vec<(String, Option<String>)>;
/// Extra request headers.
type Headers<'a> = Vec<(&'a str, &'a str)>;

fn pairs(p: &[(&str, &str)]) -> Fields {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Replaces every value of `name` with `value`.
fn set(fields: &mut Fields, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_owned(), value.to_owned()));
}

/// Replaces every value of `name` with `values` (repeated keys).
fn set_all(fields: &mut Fields, name: &str, values: &[&str]) {
    fields.retain(|(k, _)| k != name);
    fields.extend(values.iter().map(|v| (name.to_owned(), (*v).to_owned())));
}

fn value_of<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn values_of<'a>(fields: &'a Fields, name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// One HTTP answer as a browser receives it.
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    fn location(&self) -> String {
        self.header("location")
    }

    /// The whole `set-cookie` line setting `name`.
    fn set_cookie_line(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value `set-cookie` gives `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookie_line(name).map(|line| {
            line[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    }

    fn is_html(&self) -> bool {
        self.header("content-type").starts_with("text/html")
    }

    /// Asserts a redirect to the sign-in page that returns to `next`.
    fn assert_sign_in(&self, next: &str, what: &str) {
        let expected = format!(
            "/admin/login?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish()
        );
        assert_eq!(
            (self.status, self.location()),
            (303, expected),
            "{what}: expected a redirect to sign-in; body:\n{}",
            self.body
        );
    }

    /// Asserts an HTML error page with `status`.
    fn assert_error_page(&self, status: u16, what: &str) {
        assert_eq!(self.status, status, "{what}: body:\n{}", self.body);
        assert!(
            self.is_html(),
            "{what}: content type {:?}",
            self.header("content-type")
        );
        assert!(
            self.body.contains(&format!("<h1>{status} ·")),
            "{what}: not the error page:\n{}",
            self.body
        );
    }
}

/// A browser without a cookie jar that does not follow redirects.
struct Web {
    base: String,
    http: reqwest::Client,
}

impl Web {
    fn new(s: &TestServer) -> Self {
        Self {
            base: s.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn fetch(&self, rb: reqwest::RequestBuilder) -> Page {
        let resp = rb.send().await.expect("request failed");
        Page {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap_or_default(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Page {
        let mut rb = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            rb = rb.header(header::COOKIE, c);
        }
        self.fetch(rb).await
    }

    /// POSTs `fields` form-encoded (repeated names kept), with `headers`.
    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &Fields,
        headers: &[(&str, &str)],
    ) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            rb = rb.header(header::COOKIE, c);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.fetch(rb).await
    }
}

/// A signed-in browser: its session cookie and the session's CSRF token.
struct Admin {
    web: Web,
    /// `hookd_session=…`, as the `cookie` header sends it.
    cookie: String,
    csrf: String,
}

impl Admin {
    async fn get(&self, path: &str) -> Page {
        self.web.get(path, Some(&self.cookie)).await
    }

    /// Asserts a 200 HTML page and answers its body.
    async fn page(&self, path: &str) -> String {
        let p = self.get(path).await;
        assert_eq!(p.status, 200, "GET {path}: {}", p.body);
        assert!(p.is_html(), "GET {path}: {:?}", p.header("content-type"));
        p.body
    }

    /// POSTs `fields` as they are (no CSRF token added).
    async fn post_raw(&self, path: &str, fields: &Fields, headers: &[(&str, &str)]) -> Page {
        self.web
            .post(path, Some(&self.cookie), fields, headers)
            .await
    }

    /// POSTs `fields` with the session's CSRF token first.
    async fn post(&self, path: &str, fields: &Fields) -> Page {
        let mut all = pairs(&[("csrf_token", &self.csrf)]);
        all.extend(fields.iter().cloned());
        self.post_raw(path, &all, &[]).await
    }
}

/// The sign-in form: (`hookd_login` cookie value, its `csrf_token`).
async fn login_form(web: &Web) -> (String, String) {
    let p = web.get("/admin/login", None).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let cookie = p.cookie("hookd_login").expect("hookd_login cookie");
    let csrf = csrf_of(&p.body);
    assert!(!cookie.is_empty() && cookie == csrf, "{cookie} vs {csrf}");
    (cookie, csrf)
}

async fn submit_login(
    web: &Web,
    login_cookie: Option<&str>,
    csrf: &str,
    key: &str,
    tenant: &str,
    next: &str,
) -> Page {
    let cookie = login_cookie.map(|c| format!("hookd_login={c}"));
    web.post(
        "/admin/login",
        cookie.as_deref(),
        &pairs(&[
            ("csrf_token", csrf),
            ("api_key", key),
            ("tenant", tenant),
            ("next", next),
        ]),
        &[],
    )
    .await
}

/// Signs in through the form; answers the session (cookie and CSRF token).
async fn sign_in(s: &TestServer, key: &str, tenant: &str) -> Admin {
    let web = Web::new(s);
    let (login_cookie, csrf) = login_form(&web).await;
    let p = submit_login(&web, Some(&login_cookie), &csrf, key, tenant, "").await;
    assert_eq!(p.status, 303, "sign-in as tenant {tenant:?}: {}", p.body);
    assert_eq!(p.location(), "/admin/webhooks");
    let session = p.cookie("hookd_session").expect("hookd_session cookie");
    assert!(!session.is_empty());
    let mut admin = Admin {
        web,
        cookie: format!("hookd_session={session}"),
        csrf: String::new(),
    };
    let page = admin.page("/admin/webhooks").await;
    admin.csrf = csrf_of(&page);
    admin
}

/// Provisions a key; answers (id, plaintext).
async fn provision(s: &TestServer, tenant: &str, permissions: &[&str]) -> (i64, String) {
    let (status, body) = s
        .post(
            "/management/api-keys",
            json!({"name": "admin-page", "tenant": tenant, "permissions": permissions}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_i64().unwrap(),
        body["key"].as_str().unwrap().to_owned(),
    )
}

/// The tenant's webhooks through the JSON API.
async fn webhooks_of(s: &TestServer, tenant: &str) -> Vec<Value> {
    let (status, list) = send(
        s.req(Method::GET, &format!("{HOOKS}?limit=500"))
            .header("X-Tenant-Id", tenant),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

async fn webhook(s: &TestServer, tenant: &str, id: i64) -> (u16, Value) {
    send(
        s.req(Method::GET, &format!("{HOOKS}/{id}"))
            .header("X-Tenant-Id", tenant),
    )
    .await
}

async fn secret_of(s: &TestServer, tenant: &str, id: i64) -> Value {
    let (status, body) = send(
        s.req(Method::GET, &format!("{HOOKS}/{id}/secret"))
            .header("X-Tenant-Id", tenant),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn create_in(s: &TestServer, tenant: &str, body: Value) -> Value {
    let (status, w) = send(
        s.req(Method::POST, HOOKS)
            .header("X-Tenant-Id", tenant)
            .json(&body),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    w
}

async fn publish(s: &TestServer, tenant: &str, event_type: &str) {
    let (status, body) = send(
        s.req(Method::POST, "/v1/events")
            .header("X-Tenant-Id", tenant)
            .json(&json!({"type": event_type, "data": {"n": 1}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

/// Polls the tenant's delivery log until `pred` holds for one delivery.
async fn wait_delivery(
    s: &TestServer,
    tenant: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, list) = send(
            s.req(Method::GET, "/management/deliveries")
                .header("X-Tenant-Id", tenant),
        )
        .await;
        assert_eq!(status, 200, "{list}");
        if let Some(d) = list["data"].as_array().unwrap().iter().find(|d| pred(d)) {
            return d.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "no delivery {what} after {WAIT:?}: {list}\nlog:\n{}",
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- HTML

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(semi) = rest.find(';').filter(|i| *i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` as HTML-escaped, in either spelling: named (`&lt;`) or numeric (`&#60;`).
fn escaped_forms(text: &str) -> [String; 2] {
    let named = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let numeric = text
        .replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;");
    [named, numeric]
}

fn contains_escaped(html: &str, text: &str) -> bool {
    escaped_forms(text)
        .iter()
        .any(|e| html.contains(e.as_str()))
}

/// The attributes of a tag (the text after its name, up to `>`).
fn attrs(text: &str) -> Attrs {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..end].to_ascii_lowercase();
        rest = &rest[end..];
        let mut value = None;
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.strip_prefix('"').expect("attribute values are quoted");
            let close = r.find('"').expect("closing quote");
            value = Some(unescape(&r[..close]));
            rest = &r[close + 1..];
        } else if let Some(r) = rest.strip_prefix('/') {
            rest = r;
        }
        if !name.is_empty() {
            out.push((name, value));
        }
        rest = rest.trim_start();
    }
    out
}

fn attr<'a>(attrs: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// The tags named `name` in `html`: (attributes, offset just past `>`).
fn tags(html: &str, name: &str) -> Vec<(Attrs, usize)> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(off) = html[at..].find(&open) {
        let start = at + off + open.len();
        let after = html[start..].chars().next().unwrap_or('>');
        let close = start + html[start..].find('>').expect("tag end");
        if after.is_whitespace() || after == '>' {
            out.push((attrs(&html[start..close]), close + 1));
        }
        at = close + 1;
    }
    out
}

/// What a browser would submit from the form posting to `action`:
/// inputs (ticked checkboxes only), textareas and selects, in order.
fn form_fields(html: &str, action: &str) -> Fields {
    find_form(html, action).unwrap_or_else(|| panic!("no form posting to {action} in:\n{html}"))
}

fn find_form(html: &str, action: &str) -> Option<Fields> {
    let (_, body_start) = tags(html, "form")
        .into_iter()
        .find(|(a, _)| attr(a, "action") == Some(action))?;
    let body = &html[body_start..body_start + html[body_start..].find("</form>").unwrap()];
    let mut out: Vec<(usize, String, String)> = Vec::new();
    for (a, end) in tags(body, "input") {
        let Some(name) = attr(&a, "name") else {
            continue;
        };
        if attr(&a, "disabled").is_some() {
            continue;
        }
        let kind = attr(&a, "type").unwrap_or("text");
        let value = attr(&a, "value").unwrap_or_default();
        match kind {
            "checkbox" | "radio" => {
                if attr(&a, "checked").is_some() {
                    let v = if value.is_empty() { "on" } else { value };
                    out.push((end, name.to_owned(), v.to_owned()));
                }
            }
            "submit" | "button" | "image" | "reset" => {}
            _ => out.push((end, name.to_owned(), value.to_owned())),
        }
    }
    for (a, end) in tags(body, "textarea") {
        if let Some(name) = attr(&a, "name") {
            let text = &body[end..end + body[end..].find("</textarea>").unwrap()];
            out.push((end, name.to_owned(), unescape(text)));
        }
    }
    for (a, end) in tags(body, "select") {
        if let Some(name) = attr(&a, "name") {
            let inner = &body[end..end + body[end..].find("</select>").unwrap()];
            let options = tags(inner, "option");
            let chosen = options
                .iter()
                .find(|(o, _)| attr(o, "selected").is_some())
                .or(options.first());
            if let Some((o, _)) = chosen {
                out.push((
                    end,
                    name.to_owned(),
                    attr(o, "value").unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    out.sort_by_key(|(at, _, _)| *at);
    Some(out.into_iter().map(|(_, k, v)| (k, v)).collect())
}

/// The tenant a signed-in page says it shows: the tenant switch of a
/// management key's session, or the plain label of an admin key's.
fn shown_tenant(html: &str) -> String {
    if let Some(f) = find_form(html, "/admin/tenant") {
        return value_of(&f, "tenant").unwrap_or_default().to_owned();
    }
    let start = html.find("Tenant <strong>").expect("tenant shown") + "Tenant <strong>".len();
    unescape(&html[start..start + html[start..].find("</strong>").unwrap()])
}

/// The page's CSRF token (its hidden `csrf_token` input).
fn csrf_of(html: &str) -> String {
    let token = tags(html, "input")
        .into_iter()
        .find(|(a, _)| attr(a, "name") == Some("csrf_token"))
        .and_then(|(a, _)| attr(&a, "value").map(str::to_owned))
        .unwrap_or_else(|| panic!("no csrf_token input in:\n{html}"));
    assert!(token.len() >= 32, "CSRF token too short: {token:?}");
    token
}

/// The message shown next to `field`, if any.
fn field_error(html: &str, field: &str) -> Option<String> {
    let id = format!("{field}-error");
    tags(html, "p").into_iter().find_map(|(a, end)| {
        (attr(&a, "class") == Some("field-error") && attr(&a, "id") == Some(&id))
            .then(|| unescape(&html[end..end + html[end..].find("</p>").unwrap()]))
    })
}

/// The ids in the list's rows (`data-{what}-id`).
fn row_ids(html: &str, what: &str) -> Vec<i64> {
    tags(html, "tr")
        .into_iter()
        .filter_map(|(a, _)| attr(&a, &format!("data-{what}-id")).map(|v| v.parse().unwrap()))
        .collect()
}

/// The HTML of the table row of delivery `id`.
fn delivery_row(html: &str, id: i64) -> String {
    let open = format!("<tr data-delivery-id=\"{id}\">");
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no row for delivery {id} in:\n{html}"));
    let end = start + html[start..].find("</tr>").unwrap();
    html[start..end].to_owned()
}

/// The count the chart's legend shows for the series of CSS class `class`.
fn legend_count(html: &str, class: &str) -> u64 {
    let start = html.find("<ul class=\"legend\"").expect("chart legend");
    let legend = &html[start..start + html[start..].find("</ul>").unwrap()];
    let swatch = format!("class=\"swatch {class}\"");
    let item = legend
        .split("<li")
        .find(|li| li.contains(&swatch))
        .unwrap_or_else(|| panic!("no {class} entry in the legend:\n{legend}"));
    let n = &item[item.find("<strong>").unwrap() + 8..item.find("</strong>").unwrap()];
    n.parse().unwrap()
}

/// Flips one character of a base64url text, at `at`.
fn flip(text: &str, at: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

// ---------------------------------------------------------------- 1. signed out

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

// ---------------------------------------------------------------- 2. sign-in

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

// ---------------------------------------------------------------- 3. sessions

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

// ---------------------------------------------------------------- 4. CSRF

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

// ---------------------------------------------------------------- 5. tenants

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

// ---------------------------------------------------------------- 6. forms

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

// ---------------------------------------------------------------- 7. escaping

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

// ---------------------------------------------------------------- 8. settings

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

// ---------------------------------------------------------------- 9. deliveries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_log_chart_detail_and_retry() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/fails", vec![Reply::Status(500)]);
    let w = s
        .create_webhook(
            &r.url("/fails"),
            json!({"name": "flaky-crm", "retry_schedule": []}),
        )
        .await;
    let wid = w["id"].as_i64().unwrap();
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let empty = admin.page("/admin/deliveries").await;
    assert!(empty.contains("No deliveries match."), "{empty}");
    assert_eq!(legend_count(&empty, "failed"), 0);

    publish(&s, "default", "license.created").await;
    let d = wait_delivery(&s, "default", "failed", |d| d["status"] == "failed").await;
    let id = d["id"].as_i64().unwrap();
    assert_eq!(d["response_status"], 500, "{d}");

    let log = admin.page("/admin/deliveries").await;
    assert_eq!(row_ids(&log, "delivery"), vec![id]);
    let row = delivery_row(&log, id);
    assert!(
        row.contains("<span class=\"badge failed\">Failed</span>"),
        "{row}"
    );
    assert!(row.contains("<td class=\"num\">500</td>"), "{row}");
    assert!(row.contains("flaky-crm"), "{row}");
    assert!(row.contains("<code>license.created</code>"), "{row}");
    assert!(log.contains("<svg"), "no chart:\n{log}");
    assert!(
        log.contains("<rect class=\"bar failed\""),
        "no failed bar:\n{log}"
    );
    assert_eq!(legend_count(&log, "failed"), 1);
    assert_eq!(legend_count(&log, "succeeded"), 0);
    // Filters.
    let failed = admin
        .page(&format!("/admin/deliveries?status=failed&webhook_id={wid}"))
        .await;
    assert_eq!(row_ids(&failed, "delivery"), vec![id]);
    let succeeded = admin.page("/admin/deliveries?status=succeeded").await;
    assert!(row_ids(&succeeded, "delivery").is_empty(), "{succeeded}");
    for range in ["1h", "24h", "7d"] {
        let page = admin
            .page(&format!("/admin/deliveries?range={range}"))
            .await;
        assert_eq!(legend_count(&page, "failed"), 1, "range {range}");
    }

    // The detail page shows the attempt.
    let detail_path = format!("/admin/deliveries/{id}");
    let detail = admin.page(&detail_path).await;
    assert!(
        detail.contains("<span class=\"badge failed\" id=\"delivery-status\">Failed</span>"),
        "{detail}"
    );
    let attempts = &detail[detail.find("id=\"attempts\"").expect("attempts table")..];
    assert!(attempts.contains("<td class=\"num\">1</td>"), "{attempts}");
    assert!(attempts.contains(&r.url("/fails")), "{attempts}");
    assert!(
        attempts.contains("<td class=\"num\">500</td>"),
        "{attempts}"
    );
    assert!(attempts.contains("scripted"), "response body not shown");
    assert!(!attempts.contains("<td class=\"num\">2</td>"), "{attempts}");

    // Retry: another attempt, which succeeds (the script ran out).
    let retry = format!("/admin/deliveries/{id}/retry");
    let fields = form_fields(&detail, &retry);
    assert_eq!(value_of(&fields, "csrf_token"), Some(admin.csrf.as_str()));
    let p = admin.post_raw(&retry, &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), format!("/admin/deliveries/{id}?done=retried"));
    r.wait_for("/fails", 2, WAIT).await;
    let d = wait_delivery(&s, "default", "succeeded", |d| {
        d["id"] == id && d["status"] == "succeeded"
    })
    .await;
    assert_eq!(d["attempt_count"], 2, "{d}");
    let detail = admin.page(&detail_path).await;
    assert!(
        detail.contains("id=\"delivery-status\">Succeeded</span>"),
        "{detail}"
    );
    let attempts = &detail[detail.find("id=\"attempts\"").unwrap()..];
    assert!(attempts.contains("<td class=\"num\">2</td>"), "{attempts}");
    assert!(
        attempts.contains("<td class=\"num\">200</td>"),
        "{attempts}"
    );
    assert_eq!(r.received("/fails").len(), 2);

    // Deliveries that do not exist.
    for path in [
        "/admin/deliveries/999999",
        "/admin/deliveries/abc",
        "/admin/deliveries/0",
        "/admin/deliveries/-1",
    ] {
        admin.get(path).await.assert_error_page(404, path);
    }
    admin
        .post("/admin/deliveries/999999/retry", &Vec::new())
        .await
        .assert_error_page(404, "retry of a missing delivery");
    admin
        .post("/admin/deliveries/abc/retry", &Vec::new())
        .await
        .assert_error_page(404, "retry of delivery abc");
}

// ---------------------------------------------------------------- 10. headers

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
        for (a, _) in tags(&p.body, "script") {
            assert!(attr(&a, "src").is_some(), "{what}: inline script");
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

// ---------------------------------------------------------------- hostile input

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

#[tokio::test]
async fn a_suspended_webhook_is_unsuspended_before_its_deliveries_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/gone", vec![Reply::Status(410)]);
    let w = s
        .create_webhook(
            &r.url("/gone"),
            json!({"name": "Gone hook", "events": ["license.created"]}),
        )
        .await;
    let id = w["id"].as_i64().unwrap();
    publish(&s, "default", "license.created").await;
    let d = wait_delivery(&s, "default", "diverted by the 410", |d| {
        d["status"] == "diverted"
    })
    .await;
    let delivery = d["id"].as_i64().unwrap();
    assert_eq!(webhook(&s, "default", id).await.1["suspended"], true);

    let admin = sign_in(&s, MGMT_KEY, "").await;
    let list = admin.page("/admin/webhooks").await;
    assert!(
        find_form(&list, &format!("/admin/webhooks/{id}/unsuspend")).is_some(),
        "the suspended row offers Unsuspend"
    );
    // Retrying would only divert it again: refused, saying why.
    let p = admin
        .post(&format!("/admin/deliveries/{delivery}/retry"), &pairs(&[]))
        .await;
    p.assert_error_page(409, "retry while suspended");
    assert!(p.body.contains("Unsuspend it first"), "{}", p.body);

    let unsuspend = format!("/admin/webhooks/{id}/unsuspend");
    let p = admin
        .post_raw(&unsuspend, &form_fields(&list, &unsuspend), &[])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location(),
        format!("/admin/webhooks?done=unsuspended#toggle-{id}")
    );
    assert_eq!(webhook(&s, "default", id).await.1["suspended"], false);
    let p = admin
        .post(&format!("/admin/deliveries/{delivery}/retry"), &pairs(&[]))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    wait_delivery(&s, "default", "retried to success", |d| {
        d["id"] == delivery && d["status"] == "succeeded"
    })
    .await;
}

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
    let (status, _) = s
        .post("/management/event-types/invoice.paid/restore", json!({}))
        .await;
    assert_eq!(status, 404, "not archived any more");
}
