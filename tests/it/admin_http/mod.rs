//! The admin page (SPEC §8) over plain HTTP, as a browser would see it:
//! redirects are not followed and cookies are read from `set-cookie` and
//! sent back by hand. Sign-in and sessions, CSRF and cross-site forms,
//! tenant isolation, the webhook forms and their validation, escaping,
//! the settings (saved, restarted, applied), the delivery log and retry,
//! delivery control (filter, ordering, pause and resume), and the
//! security headers.

use std::time::{Duration, Instant};

use crate::common::receiver::{Receiver, Reply};
use crate::common::{MGMT_KEY, ServerConfig, TestServer, send};
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use scraper::{ElementRef, Html, Selector};
use serde_json::{Value, json};

mod catalogue;
mod deliveries;
mod delivery_control;
mod headers;
mod portal;
mod receiver_auth;
mod sessions;
mod settings;
mod sign_in;
mod surfaces;
mod tenants;
mod webhook_forms;

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

/// A CSS selector written in a test (so a bad one is the test's bug).
fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("selector {css:?}: {e}"))
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

/// What a browser would submit from the form posting to `action`:
/// inputs (ticked checkboxes only), textareas and selects, in order.
fn form_fields(html: &str, action: &str) -> Fields {
    find_form(html, action).unwrap_or_else(|| panic!("no form posting to {action} in:\n{html}"))
}

fn find_form(html: &str, action: &str) -> Option<Fields> {
    let page = Html::parse_document(html);
    let form = page
        .select(&selector("form"))
        .find(|f| f.value().attr("action") == Some(action))?;
    let mut out = Vec::new();
    for field in form.select(&selector("input[name], textarea[name], select[name]")) {
        let el = field.value();
        let name = el.attr("name").unwrap_or_default().to_owned();
        match el.name() {
            "input" => {
                if el.attr("disabled").is_some() {
                    continue;
                }
                let value = el.attr("value").unwrap_or_default();
                match el.attr("type").unwrap_or("text") {
                    "checkbox" | "radio" => {
                        if el.attr("checked").is_some() {
                            let v = if value.is_empty() { "on" } else { value };
                            out.push((name, v.to_owned()));
                        }
                    }
                    "submit" | "button" | "image" | "reset" => {}
                    _ => out.push((name, value.to_owned())),
                }
            }
            "textarea" => out.push((name, field.text().collect())),
            _ => {
                let options: Vec<ElementRef> = field.select(&selector("option")).collect();
                let chosen = options
                    .iter()
                    .find(|o| o.value().attr("selected").is_some())
                    .or(options.first());
                if let Some(o) = chosen {
                    let value = o.value().attr("value").unwrap_or_default();
                    out.push((name, value.to_owned()));
                }
            }
        }
    }
    Some(out)
}

/// The tenant a signed-in page says it shows: the tenant switch of a
/// management key's session, or the plain label of an admin key's.
fn shown_tenant(html: &str) -> String {
    let doc = Html::parse_document(html);
    if let Some(option) = doc
        .select(&selector(
            "form.tenant-switch select[name=tenant] option[selected]",
        ))
        .next()
    {
        return option.value().attr("value").unwrap_or_default().to_owned();
    }
    doc.select(&selector("#current-tenant"))
        .next()
        .expect("tenant shown")
        .text()
        .collect()
}

/// The page's CSRF token (its hidden `csrf_token` input).
fn csrf_of(html: &str) -> String {
    let token = Html::parse_document(html)
        .select(&selector("input[name=csrf_token]"))
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_owned))
        .unwrap_or_else(|| panic!("no csrf_token input in:\n{html}"));
    assert!(token.len() >= 32, "CSRF token too short: {token:?}");
    token
}

/// The message shown next to `field`, if any.
fn field_error(html: &str, field: &str) -> Option<String> {
    Html::parse_document(html)
        .select(&selector(&format!("p.field-error[id=\"{field}-error\"]")))
        .next()
        .map(|e| e.text().collect())
}

/// The ids in the list's rows (`data-{what}-id`).
fn row_ids(html: &str, what: &str) -> Vec<i64> {
    let attr = format!("data-{what}-id");
    Html::parse_document(html)
        .select(&selector(&format!("tr[{attr}]")))
        .map(|e| e.value().attr(&attr).unwrap().parse().unwrap())
        .collect()
}

/// The HTML of the table row of delivery `id`.
fn delivery_row(html: &str, id: i64) -> String {
    let open = format!("<tr data-delivery-id=\"{id}\"");
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
