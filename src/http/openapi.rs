//! Completes the generated OpenAPI document with the answers that come
//! from layers no handler annotation sees, so that every operation —
//! including ones added later — documents what the server really sends:
//!
//! - hookd's own errors are `application/problem+json` (`Problem`); a seed
//!   surface's errors keep the shape its handlers declare;
//! - every operation may answer 408 (`http::within`, problem+json on every
//!   surface: it fires before the surface's handler answers);
//! - an operation with parameters or a body may answer 400 (a path id,
//!   query or header that cannot be read), one with a body 413;
//! - an operation that asks for a key may answer 401 (with
//!   `WWW-Authenticate`), 429 (the failure budget, with `Retry-After`) and
//!   503 (the database does not answer, with `Retry-After`) or 500.
//!
//! It also makes operation ids unique (a seed surface's are prefixed with
//! its tag: every surface has a `create_webhook`) and adds links from
//! each create (`POST P`) to the operations on `P/{param}` (and the reads
//! under it), the new
//! resource's id feeding the parameter, so that clients and stateful
//! tests follow a resource from its creation.
//!
//! A handler declares what only it knows: its success answers, 403 (the
//! permission it needs), 404 (what it looks up), 409, and its own rules in
//! the schemas (ranges, lengths, patterns, enums, formats). The rules here
//! only add what is missing; they never remove a declared answer.

use serde_json::{Map, Value, json};

use crate::domain::receiver_auth::{MAX_PEM_BYTES, MAX_VALUE_CHARS};

/// A name on one line: at least one character that is not white space,
/// none of them a control or bidirectional-override character
/// (`domain::validation::validate_plain_text`).
pub const ONE_LINE_TEXT: &str = r"^[^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069][^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]*$";
/// One line of plain text, blank allowed (`domain::validation::validate_plain_text`).
const PLAIN_ONE_LINE: &str =
    r"^[^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]*$";
/// A description: several lines allowed (`\t`, `\n`, `\r`).
pub const MULTI_LINE_TEXT: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]*$";
/// `domain::tenant::validate_tenant_id`.
pub const TENANT_ID: &str = r"^[A-Za-z0-9_.-]{1,64}$";
/// `domain::event_type::validate_event_type_name` (length apart).
pub const EVENT_TYPE: &str = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$";
/// An event type or a `category.*` wildcard.
pub const SUBSCRIPTION: &str = r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*|(\.[a-z0-9_]+))$";
/// A duration as `humantime` reads it, in the units hookd shows.
pub const DURATION: &str = r"^(0|[0-9]{1,6}(ms|s|m|h|d))$";
/// An absolute http(s) URL with a DNS host name (`domain::webhook::
/// validate_url`; the server also takes IP literals, which a generator
/// should not invent).
pub const HTTP_URL: &str = r"^[hH][tT][tT][pP][sS]?://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,3}(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$";
/// An https URL as seed 003 takes it: a host name that is not an IP
/// address nor `localhost`, no query or fragment.
pub const HTTPS_URL: &str = r"^https://[a-z]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,61}[a-z0-9])?){1,3}(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?$";

/// What each query, path or header parameter of that name accepts, on
/// every operation that has it: one name, one meaning across the API.
const PARAMETER_RULES: &[(&str, Rule)] = &[
    ("limit", Rule::Range(1, 500)),
    ("count", Rule::Range(1, 500)),
    ("offset", Rule::Range(0, i64::MAX)),
    ("since", Rule::Pattern(RFC3339_STRICT)),
    ("until", Rule::Pattern(RFC3339_STRICT)),
    ("cursor", Rule::Pattern(CURSOR)),
    ("webhook_id", Rule::Range(1, i64::MAX)),
    ("Idempotency-Key", Rule::Length(1, 255)),
    ("X-Tenant-Id", Rule::Pattern(TENANT_ID)),
    ("projectId", Rule::Pattern(TENANT_ID)),
    ("SlashID-OrgID", Rule::Pattern(TENANT_ID)),
    ("tenantLocator", Rule::Pattern(UUID)),
    (
        "SlashID-Required-Consistency",
        Rule::OneOf(&["local_region", "all_regions"]),
    ),
    ("SlashID-Required-Consistency-Timeout", Rule::Range(1, 120)),
    ("trigger_type", Rule::OneOf(&["event"])),
    ("trigger_name", Rule::Pattern(SUBSCRIPTION)),
    (
        "status",
        Rule::OneOf(&["pending", "succeeded", "retrying", "failed", "diverted"]),
    ),
];

/// Parameters whose rule belongs to one operation: (operation id,
/// parameter, rule).
const OPERATION_PARAMETER_RULES: &[(&str, &str, Rule)] = &[
    // The test endpoint's type cannot be archived.
    (
        "archive_event_type",
        "name",
        Rule::Pattern(ARCHIVABLE_EVENT_TYPE),
    ),
    ("restore_event_type", "name", Rule::EventType),
];

/// What each field of a request body accepts: (schema, property, rule).
/// `Items` applies to each element of an array.
const FIELD_RULES: &[(&str, &str, Rule)] = &[
    // hookd's own API
    ("WebhookIn", "name", Rule::Name),
    ("WebhookIn", "url", Rule::Url(HTTP_URL)),
    (
        "WebhookIn",
        "events",
        Rule::Items(1, 1000, &Rule::Pattern(SUBSCRIPTION)),
    ),
    ("WebhookIn", "environment", Rule::Environment),
    ("WebhookIn", "description", Rule::Description),
    ("WebhookIn", "headers", Rule::Headers),
    ("WebhookIn", "timeout", Rule::Pattern(TIMEOUT)),
    ("WebhookIn", "rate_limit", Rule::Range(1, 100_000)),
    (
        "WebhookIn",
        "retry_schedule",
        Rule::Items(0, 50, &Rule::Pattern(DURATION)),
    ),
    ("WebhookIn", "secret", Rule::Pattern(SECRET)),
    ("WebhookPatch", "name", Rule::Name),
    ("WebhookPatch", "url", Rule::Url(HTTP_URL)),
    (
        "WebhookPatch",
        "events",
        Rule::Items(1, 1000, &Rule::Pattern(SUBSCRIPTION)),
    ),
    (
        "WebhookPatch",
        "add_events",
        Rule::Items(0, 1000, &Rule::Pattern(SUBSCRIPTION)),
    ),
    (
        "WebhookPatch",
        "remove_events",
        Rule::Items(0, u32::MAX, &Rule::Pattern(SUBSCRIPTION)),
    ),
    ("WebhookPatch", "environment", Rule::Environment),
    ("WebhookPatch", "description", Rule::Description),
    ("WebhookPatch", "headers", Rule::Headers),
    ("WebhookPatch", "add_headers", Rule::Headers),
    (
        "WebhookPatch",
        "remove_headers",
        Rule::Items(0, u32::MAX, &Rule::Pattern(HEADER_NAME)),
    ),
    ("WebhookPatch", "timeout", Rule::Pattern(TIMEOUT)),
    ("WebhookPatch", "rate_limit", Rule::Range(1, 100_000)),
    (
        "WebhookPatch",
        "retry_schedule",
        Rule::Items(0, 50, &Rule::Pattern(DURATION)),
    ),
    (
        "FailureHandlingIn",
        "min_failures",
        Rule::Range(1, 1_000_000),
    ),
    (
        "FailureHandlingIn",
        "suspend_after",
        Rule::Pattern(DURATION),
    ),
    (
        "WebhookIn",
        "signature_scheme",
        Rule::OneOf(SIGNATURE_SCHEMES),
    ),
    ("WebhookIn", "ca_certificate", Rule::Pem(CERTIFICATE_PEM)),
    (
        "WebhookPatch",
        "signature_scheme",
        Rule::OneOf(SIGNATURE_SCHEMES),
    ),
    ("WebhookPatch", "ca_certificate", Rule::Pem(CERTIFICATE_PEM)),
    // `domain::receiver_auth::validate_auth`; which fields each type
    // needs depends on the type (and, on PATCH, on what is stored).
    ("AuthIn", "type", Rule::OneOf(AUTH_TYPES)),
    ("AuthIn", "username", Rule::AuthValue(USERNAME)),
    ("AuthIn", "password", Rule::AuthValue(AUTH_SECRET)),
    ("AuthIn", "token_url", Rule::Url(HTTP_URL)),
    ("AuthIn", "client_id", Rule::AuthValue(AUTH_VALUE)),
    ("AuthIn", "client_secret", Rule::AuthValue(AUTH_SECRET)),
    ("AuthIn", "scope", Rule::AuthValue(AUTH_VALUE)),
    ("AuthIn", "audience", Rule::AuthValue(AUTH_VALUE)),
    ("AuthIn", "certificate", Rule::Pem(CERTIFICATE_PEM)),
    ("AuthIn", "private_key", Rule::Pem(PRIVATE_KEY_PEM)),
    ("RotateSecretIn", "secret", Rule::Pattern(SECRET)),
    ("RecoverIn", "since", Rule::DateTime),
    ("ApiKeyIn", "name", Rule::Name),
    ("ApiKeyIn", "tenant", Rule::Pattern(TENANT_ID)),
    (
        "ApiKeyIn",
        "permissions",
        Rule::Items(1, u32::MAX, &Rule::OneOf(PERMISSIONS)),
    ),
    ("EventTypeIn", "name", Rule::EventType),
    ("EventTypeIn", "category", Rule::Pattern(CATEGORY)),
    ("EventTypeIn", "description", Rule::Description),
    ("EventTypePatch", "description", Rule::Description),
    ("PortalLinkIn", "tenant", Rule::Pattern(TENANT_ID)),
    ("PortalLinkIn", "expires_in", Rule::Pattern(LINK_EXPIRY)),
    ("SendExampleIn", "event_type", Rule::EventType),
    ("EventIn", "type", Rule::EventType),
    ("EventIn", "environment", Rule::Environment),
    ("EventIn", "idempotency_key", Rule::Length(1, 255)),
    ("EventIn", "ordering_key", Rule::Pattern(PLAIN_ONE_LINE)),
    ("EventBatchIn", "events", Rule::Items(1, 1000, &Rule::Any)),
    // seed 004
    ("EventApiCreateWebhookRequest", "name", Rule::Name),
    (
        "EventApiCreateWebhookRequest",
        "eventTypes",
        Rule::Items(1, 1000, &Rule::Pattern(SUBSCRIPTION)),
    ),
    ("EventApiUpdateWebhookRequest", "name", Rule::Name),
    (
        "EventApiUpdateWebhookRequest",
        "addEventTypes",
        Rule::Items(0, 1000, &Rule::Pattern(SUBSCRIPTION)),
    ),
    (
        "EventApiUpdateWebhookRequest",
        "removeEventTypes",
        Rule::Items(0, u32::MAX, &Rule::Pattern(SUBSCRIPTION)),
    ),
    ("EventApiCreateEndpointRequest", "url", Rule::Url(HTTP_URL)),
    ("EventApiCreateEndpointRequest", "headers", Rule::Headers),
    ("EventApiUpdateEndpointRequest", "url", Rule::Url(HTTP_URL)),
    ("EventApiUpdateEndpointRequest", "addHeaders", Rule::Headers),
    (
        "EventApiUpdateEndpointRequest",
        "removeHeaders",
        Rule::Items(0, u32::MAX, &Rule::Pattern(HEADER_NAME)),
    ),
    (
        "EventApiFailureHandlingRequest",
        "minFailures",
        Rule::Range(1, 1_000_000),
    ),
    (
        "EventApiFailureHandlingRequest",
        "suspendAfter",
        Rule::Pattern(DURATION),
    ),
    // seed 002
    (
        "VoucherifyWebhookCreateRequest",
        "target_url",
        Rule::Url(HTTP_URL),
    ),
    (
        "VoucherifyWebhookCreateRequest",
        "events",
        Rule::Items(1, 1000, &Rule::Pattern(SUBSCRIPTION)),
    ),
    (
        "VoucherifyWebhookUpdateRequest",
        "target_url",
        Rule::Url(HTTP_URL),
    ),
    (
        "VoucherifyWebhookUpdateRequest",
        "events",
        Rule::Items(1, 1000, &Rule::Pattern(SUBSCRIPTION)),
    ),
    // seed 003
    ("SlashIdWebhookCreateRequest", "name", Rule::Name),
    (
        "SlashIdWebhookCreateRequest",
        "target_url",
        Rule::Url(HTTPS_URL),
    ),
    (
        "SlashIdWebhookCreateRequest",
        "description",
        Rule::Description,
    ),
    (
        "SlashIdWebhookCreateRequest",
        "custom_headers",
        Rule::Headers,
    ),
    (
        "SlashIdWebhookCreateRequest",
        "timeout",
        Rule::Pattern(GO_TIMEOUT),
    ),
    ("SlashIdWebhookUpdateRequest", "name", Rule::Name),
    (
        "SlashIdWebhookUpdateRequest",
        "target_url",
        Rule::Url(HTTPS_URL),
    ),
    (
        "SlashIdWebhookUpdateRequest",
        "description",
        Rule::Description,
    ),
    (
        "SlashIdWebhookUpdateRequest",
        "custom_headers",
        Rule::Headers,
    ),
    (
        "SlashIdWebhookUpdateRequest",
        "timeout",
        Rule::Pattern(GO_TIMEOUT),
    ),
    ("SlashIdTrigger", "trigger_type", Rule::OneOf(&["event"])),
    (
        "SlashIdTrigger",
        "trigger_name",
        Rule::Pattern(SUBSCRIPTION),
    ),
];

/// A rule a value must follow, as JSON Schema says it.
enum Rule {
    Range(i64, i64),
    Length(u32, u32),
    Pattern(&'static str),
    /// A URI (`format: uri`) that also follows the pattern.
    Url(&'static str),
    OneOf(&'static [&'static str]),
    DateTime,
    /// `domain::event_type::validate_event_type_name`.
    EventType,
    /// `domain::webhook::validate_name`.
    Name,
    /// `domain::webhook::validate_description`.
    Description,
    /// The configured environments (`--environments`).
    Environment,
    /// `domain::webhook::validate_headers`.
    Headers,
    /// A §13 value (`domain::receiver_auth::check_value`): at most
    /// `MAX_VALUE_CHARS` characters following the pattern.
    AuthValue(&'static str),
    /// A PEM document of at most `MAX_PEM_BYTES` (PEM is ASCII) holding a
    /// block the pattern finds.
    Pem(&'static str),
    /// An array of `min..=max` elements, each following the rule.
    Items(u32, u32, &'static Rule),
    Any,
}

impl Rule {
    fn schema(&self, environments: &[String]) -> Value {
        match self {
            Rule::Range(min, max) if *max == i64::MAX => json!({ "minimum": min }),
            Rule::Range(min, max) => json!({ "minimum": min, "maximum": max }),
            Rule::Length(min, max) => json!({ "minLength": min, "maxLength": max }),
            Rule::Pattern(p) => json!({ "pattern": p }),
            Rule::Url(p) => json!({ "format": "uri", "maxLength": 2048, "pattern": p }),
            Rule::OneOf(values) => json!({ "enum": values }),
            Rule::DateTime => json!({ "format": "date-time", "pattern": RFC3339 }),
            Rule::EventType => json!({ "maxLength": 128, "pattern": EVENT_TYPE }),
            Rule::Name => json!({ "minLength": 1, "maxLength": 128, "pattern": ONE_LINE_TEXT }),
            Rule::Description => json!({ "maxLength": 1024, "pattern": MULTI_LINE_TEXT }),
            Rule::Environment => json!({ "enum": environments }),
            Rule::AuthValue(p) => json!({ "maxLength": MAX_VALUE_CHARS, "pattern": p }),
            Rule::Pem(p) => json!({ "minLength": 1, "maxLength": MAX_PEM_BYTES, "pattern": p }),
            Rule::Headers => json!({
                "maxProperties": 50,
                "propertyNames": { "pattern": HEADER_NAME },
                "additionalProperties": { "type": "array", "minItems": 1,
                    "items": { "type": "string", "maxLength": 4096, "pattern": HEADER_VALUE } }
            }),
            Rule::Items(min, max, each) => {
                let mut s = json!({ "minItems": min });
                if *max != u32::MAX {
                    s["maxItems"] = json!(max);
                }
                if !matches!(each, Rule::Any) {
                    s["items"] = each.schema(environments);
                }
                s
            }
            Rule::Any => json!({}),
        }
    }
}

/// `domain::api_key::Permission`.
const PERMISSIONS: &[&str] = &[
    "webhooks:read",
    "webhooks:list",
    "webhooks:write",
    "events:publish",
    "deliveries:read",
    "deliveries:write",
    "admin",
];
/// `domain::receiver_auth::SignatureScheme`.
const SIGNATURE_SCHEMES: &[&str] = &["v1", "v1a"];
/// `domain::receiver_auth`'s auth types.
const AUTH_TYPES: &[&str] = &["basic", "oauth2_client_credentials", "mtls"];
/// A §13 value: one line, not empty, no control or bidirectional-override
/// character (`validate_plain_text`).
const AUTH_VALUE: &str =
    r"^[^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]+$";
/// A password or client secret: the same, and it may be empty.
const AUTH_SECRET: &str =
    r"^[^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]*$";
/// A Basic user-id: no colon either (RFC 7617).
const USERNAME: &str =
    r"^[^:\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]+$";
/// A PEM certificate block (unanchored: a chain may hold several).
const CERTIFICATE_PEM: &str = "-----BEGIN CERTIFICATE-----";
/// A PEM private key block as rustls reads it (PKCS#8, PKCS#1, SEC1).
const PRIVATE_KEY_PEM: &str = "-----BEGIN (RSA |EC )?PRIVATE KEY-----";
/// A portal link's `expires_in`: more than 0 and at most 24 h, in one
/// unit (`ops::portal_links`; humantime also reads forms such as
/// `1h 30m`, which a generator need not invent).
const LINK_EXPIRY: &str = r"^(([1-9][0-9]{0,6}|[1-7][0-9]{7}|8[0-5][0-9]{6}|86[0-3][0-9]{5}|86400000)ms|([1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)s|([1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m|([1-9]|1[0-9]|2[0-4])h|1d)$";
/// A UUID (seed 004's tenant locator).
const UUID: &str = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// An RFC 3339 timestamp as hookd reads it.
const RFC3339: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";
/// The same, with each field in its range (a query's `since`, `until`).
const RFC3339_STRICT: &str = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$";
/// An event type other than `webhook.test`.
const ARCHIVABLE_EVENT_TYPE: &str = r"^(?!webhook\.test$)[a-z0-9_]+(\.[a-z0-9_]+)+$";
/// A category: one lowercase word (`domain::webhook::validate_category`).
const CATEGORY: &str = r"^[a-z0-9_]{1,64}$";
/// A webhook's timeout: at most 20 s (`0s` is the default).
const TIMEOUT: &str = r"^(0|0s|([1-9]|1[0-9]|20)s|[1-9][0-9]{0,3}ms|20000ms)$";
/// Seed 003's timeout, a Go duration of 0 to 20 s in whole milliseconds.
const GO_TIMEOUT: &str = r"^(0|0s|([1-9]|1[0-9]|20)s|[1-9][0-9]{0,3}ms)$";
/// A `whsec_` secret: canonical padded base64 of 24 to 64 bytes
/// (`crypto::webhook_secret_bytes`).
const SECRET: &str = r"^whsec_(([A-Za-z0-9+/]{4}){8,20}([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?|([A-Za-z0-9+/]{4}){21}([A-Za-z0-9+/][AQgw]==)?)$";
/// A cursor this API returned: a positive integer.
const CURSOR: &str = r"^[1-9][0-9]{0,17}$";
/// An HTTP header name (RFC 9110 token), at most 256 characters.
const HEADER_NAME: &str = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$";
/// A header value: visible ASCII, spaces and tabs.
const HEADER_VALUE: &str = r"^[\t\u0020-\u007E]*$";

const PROBLEM_REF: &str = "#/components/schemas/Problem";
const PROBLEM_JSON: &str = "application/problem+json";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Applies the rules of this module's header to a generated document.
pub fn complete(doc: &mut Value, environments: &[String]) {
    tighten_problem_schema(doc);
    unique_operation_ids(doc);
    declare_tenant_header(doc);
    apply_rules(doc, environments);
    add_links(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        // Path-level parameters count for every operation of the path.
        let path_has_params = item
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        for method in METHODS {
            if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                complete_operation(path, op, path_has_params);
            }
        }
    }
}

fn complete_operation(path: &str, op: &mut Map<String, Value>, path_has_params: bool) {
    let has_params = path_has_params
        || path.contains('{')
        || op
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
    let has_body = op.contains_key("requestBody");
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");

    // The surface's own error body, if its handlers declared one.
    let surface_error = surface_error_content(responses);
    let error_content = surface_error
        .clone()
        .unwrap_or_else(|| json!({ PROBLEM_JSON: { "schema": { "$ref": PROBLEM_REF } } }));

    // hookd's own declared errors: the media type the server sends.
    if surface_error.is_none() {
        for (code, resp) in responses.iter_mut() {
            if is_error(code) {
                set_problem_content(resp);
            }
        }
    }

    let mut add = |code: &str, description: &str, content: &Value, headers: &[&str]| {
        let resp = responses
            .entry(code.to_owned())
            .or_insert_with(|| json!({ "description": description, "content": content.clone() }));
        let resp = resp.as_object_mut().expect("a response is an object");
        if resp
            .get("description")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            resp.insert("description".into(), description.into());
        }
        for h in headers {
            let hs = resp
                .entry("headers")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("headers is an object");
            hs.entry(h.to_string()).or_insert_with(|| header_doc(h));
        }
    };

    let problem = json!({ PROBLEM_JSON: { "schema": { "$ref": PROBLEM_REF } } });
    add(
        "408",
        "The request was not received and answered within --request-timeout (30 s); the connection closes",
        &problem,
        &[],
    );
    if has_params || has_body {
        add(
            "400",
            "A path, query, header or body value that cannot be read, or that breaks a rule",
            &error_content,
            &[],
        );
    }
    if has_body {
        add(
            "413",
            "The body is larger than --max-body-bytes",
            &error_content,
            &[],
        );
    }
    if secured {
        add(
            "401",
            "Missing or unknown key",
            &error_content,
            &["WWW-Authenticate"],
        );
        add(
            "429",
            "Too many invalid keys from this client; keys are not checked until Retry-After",
            &error_content,
            &["Retry-After"],
        );
        add("500", "An unexpected failure (logged)", &error_content, &[]);
        add(
            "503",
            "The database does not answer; try again",
            &error_content,
            &["Retry-After"],
        );
    }
    // Answers whose description the handler left empty.
    for (code, resp) in responses.iter_mut() {
        if let Some(r) = resp.as_object_mut()
            && r.get("description")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            r.insert("description".into(), default_description(code).into());
        }
    }
}

fn is_error(code: &str) -> bool {
    code.starts_with('4') || code.starts_with('5')
}

/// The content of the first declared error whose schema is not `Problem`:
/// a seed surface's own error shape.
fn surface_error_content(responses: &Map<String, Value>) -> Option<Value> {
    responses
        .iter()
        .filter(|(code, _)| is_error(code))
        .filter_map(|(_, r)| r.get("content"))
        .find(|c| {
            let refs: Vec<&str> = c
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
                .filter_map(|m| m.pointer("/schema/$ref").and_then(Value::as_str))
                .collect();
            !refs.is_empty() && !refs.contains(&PROBLEM_REF)
        })
        .cloned()
}

fn set_problem_content(resp: &mut Value) {
    if let Some(r) = resp.as_object_mut() {
        r.insert(
            "content".into(),
            json!({ PROBLEM_JSON: { "schema": { "$ref": PROBLEM_REF } } }),
        );
    }
}

fn header_doc(name: &str) -> Value {
    match name {
        "Retry-After" => json!({
            "description": "Seconds to wait before trying again",
            "schema": { "type": "integer", "minimum": 0 }
        }),
        _ => json!({
            "description": "The authentication scheme expected (`Bearer`)",
            "schema": { "type": "string" }
        }),
    }
}

fn default_description(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "Done; no body",
        "400" => "Invalid input; the answer names the field",
        "401" => "Missing or unknown key",
        "403" => "The key lacks the permission",
        "404" => "Not found (or another tenant's)",
        "409" => "Conflicts with the current state",
        _ => "See the body",
    }
}

fn operations_mut(doc: &mut Value) -> impl Iterator<Item = (&String, &mut Value)> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .flat_map(|(path, item)| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|m| m.iter_mut())
                .filter(|(method, _)| METHODS.contains(&method.as_str()))
                .map(move |(_, op)| (path, op))
        })
}

/// hookd's own operations act on the tenant named by `X-Tenant-Id` when
/// the key is a management key (SPEC §2); the seed surfaces name theirs
/// in their own way.
fn declare_tenant_header(doc: &mut Value) {
    for (_, op) in operations_mut(doc) {
        let own = !op
            .pointer("/tags/0")
            .and_then(Value::as_str)
            .unwrap_or("")
            .starts_with("seed-");
        let secured = op
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        if !(own && secured) {
            continue;
        }
        let params = op
            .as_object_mut()
            .expect("an operation is an object")
            .entry("parameters")
            .or_insert_with(|| json!([]));
        if let Some(list) = params.as_array_mut()
            && !list.iter().any(|p| p["name"] == "X-Tenant-Id")
        {
            list.push(json!({
                "name": "X-Tenant-Id", "in": "header", "required": false,
                "description": "The tenant a management key acts on (`default` when absent); a provisioned key acts on its own whatever this says",
                "schema": { "type": "string" }
            }));
        }
    }
}

fn unique_operation_ids(doc: &mut Value) {
    for (_, op) in operations_mut(doc) {
        let tag = op.pointer("/tags/0").and_then(Value::as_str).unwrap_or("");
        if !tag.starts_with("seed-") {
            continue;
        }
        let prefix = tag.replace('-', "_");
        if let Some(id) = op.get("operationId").and_then(Value::as_str)
            && !id.starts_with(&prefix)
        {
            op["operationId"] = format!("{prefix}_{id}").into();
        }
    }
}

/// The JSON pointer, in a created resource's body, of the value that names
/// it in `param`: the property of that name, else `id`, `locator` or
/// `name`, looked for inside a `result` envelope too.
fn id_pointer(doc: &Value, schema: &Value, param: &str) -> Option<String> {
    let schema = resolve(doc, schema)?;
    let props = schema.get("properties")?.as_object()?;
    for name in [param, "id", "locator", "name"] {
        if props.contains_key(name) {
            return Some(format!("/{name}"));
        }
    }
    let inner = props.get("result")?;
    id_pointer(doc, inner, param).map(|p| format!("/result{p}"))
}

/// The pointer of a created resource's `tenant`, if it names one.
fn tenant_pointer(doc: &Value, schema: &Value) -> Option<String> {
    let props = resolve(doc, schema)?.get("properties")?.as_object()?;
    props.contains_key("tenant").then(|| "/tenant".to_owned())
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.strip_prefix('#')?),
        None => Some(schema),
    }
}

fn add_links(doc: &mut Value) {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return;
    };
    // (create path, success code, link name, link)
    let mut links: Vec<(String, String, String, Value)> = Vec::new();
    for (path, item) in paths {
        let Some(create) = item.get("post") else {
            continue;
        };
        let Some((code, body)) = create
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|r| r.iter())
            .find(|(c, _)| c.starts_with('2'))
        else {
            continue;
        };
        let Some(schema) = body.pointer("/content/application~1json/schema") else {
            continue;
        };
        // What the create was sent that also locates what it made: its
        // required parameters and the tenant. An optional request option
        // (seed 003's consistency headers) may have been left out, and a
        // link must not name a value the request did not have.
        let source_params: Vec<(String, String)> = params_of(create)
            .into_iter()
            .filter(|(name, place)| name == "X-Tenant-Id" || is_required(create, name, place))
            .collect();
        for (target_path, target_item) in paths {
            let Some(rest) = target_path.strip_prefix(&format!("{path}/{{")) else {
                continue;
            };
            let Some((param, deeper)) = rest.split_once('}') else {
                continue;
            };
            let Some(pointer) = id_pointer(doc, schema, param) else {
                continue;
            };
            for method in METHODS {
                // The resource itself, and what may be read under it (an
                // action under it may need a state a new resource lacks).
                let Some(target) = target_item.get(method) else {
                    continue;
                };
                if !deeper.is_empty() && method != "get" {
                    continue;
                }
                let Some(op_id) = target.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                let mut parameters = Map::new();
                for (name, place) in params_of(target) {
                    if name == param {
                        parameters.insert(name, format!("$response.body#{pointer}").into());
                    } else if name == "X-Tenant-Id"
                        && let Some(tenant) = tenant_pointer(doc, schema)
                    {
                        // A resource made for another tenant is found there.
                        parameters.insert(name, format!("$response.body#{tenant}").into());
                    } else if source_params.contains(&(name.clone(), place.clone())) {
                        let expr = format!("$request.{place}.{name}");
                        parameters.insert(name, expr.into());
                    }
                }
                links.push((
                    path.clone(),
                    code.clone(),
                    op_id.to_owned(),
                    json!({ "operationId": op_id, "parameters": parameters }),
                ));
            }
        }
    }
    for (path, code, name, link) in links {
        if let Some(resp) = doc.pointer_mut(&format!(
            "/paths/{}/post/responses/{code}",
            path.replace('~', "~0").replace('/', "~1")
        )) && let Some(r) = resp.as_object_mut()
        {
            let l = r.entry("links").or_insert_with(|| json!({}));
            l[name] = link;
        }
    }
}

/// Whether the operation declares the parameter required.
fn is_required(op: &Value, name: &str, place: &str) -> bool {
    op.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|p| p["name"] == name && p["in"] == place && p["required"] == true)
}

/// An operation's parameters as (name, place) pairs.
fn params_of(op: &Value) -> Vec<(String, String)> {
    op.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p.get("name")?.as_str()?.to_owned(),
                p.get("in")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn apply_rules(doc: &mut Value, environments: &[String]) {
    for (_, op) in operations_mut(doc) {
        // hookd's own query strings read an empty string value as absent
        // (`http::extract::Params::string`).
        let own_surface = !op
            .pointer("/tags/0")
            .and_then(Value::as_str)
            .unwrap_or("")
            .starts_with("seed-");
        let op_id = op
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
            continue;
        };
        for p in params {
            // A parameter is absent or a string: it cannot be `null`.
            if let Some(types) = p.pointer_mut("/schema/type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    p["schema"]["type"] = only;
                }
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let own = OPERATION_PARAMETER_RULES
                .iter()
                .find(|(o, n, _)| *o == op_id && *n == name)
                .map(|(_, _, r)| r);
            let shared = PARAMETER_RULES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| r);
            if let Some(rule) = own.or(shared) {
                let patch = rule.schema(environments);
                let empty_is_absent = own_surface && p["in"] == "query";
                let schema = p.entry_schema();
                merge(schema, &patch);
                admit_null_in_enum(schema);
                if empty_is_absent {
                    admit_empty_string(schema);
                }
            }
        }
    }
    for (schema, property, rule) in FIELD_RULES {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        if let Some(prop) = doc.pointer_mut(&pointer) {
            let patch = rule.schema(environments);
            let target = target_of(prop);
            merge(target, &patch);
            admit_null_in_enum(target);
        }
    }
}

trait EntrySchema {
    fn entry_schema(&mut self) -> &mut Value;
}

impl EntrySchema for Value {
    fn entry_schema(&mut self) -> &mut Value {
        if self.get("schema").is_none() {
            self["schema"] = json!({});
        }
        &mut self["schema"]
    }
}

/// The schema a rule constrains: a nullable `oneOf [null, X]` keeps its
/// null branch, and the rule goes on the other (inline) branch, or on
/// the property itself when that branch is a reference.
fn target_of(prop: &mut Value) -> &mut Value {
    let inline = prop.get("oneOf").and_then(Value::as_array).and_then(|a| {
        a.iter()
            .position(|b| b.get("type") != Some(&json!("null")) && b.get("$ref").is_none())
    });
    match inline {
        Some(i) => &mut prop["oneOf"][i],
        None => prop,
    }
}

/// A string schema that also takes `""` (an empty query value, read as
/// absent).
fn admit_empty_string(schema: &mut Value) {
    if schema.get("type") != Some(&json!("string")) {
        return;
    }
    if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut)
        && !values.contains(&json!(""))
    {
        values.push(json!(""));
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str)
        && let Some(inner) = p.strip_prefix('^').and_then(|p| p.strip_suffix('$'))
    {
        let optional = format!("^({inner})?$");
        schema["pattern"] = optional.into();
    }
    if schema.get("minLength").is_some() {
        schema["minLength"] = json!(0);
    }
}

/// An optional value given an `enum` still admits `null`.
fn admit_null_in_enum(schema: &mut Value) {
    let nullable = schema
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|t| t.contains(&json!("null")));
    if nullable
        && let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut)
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// Merges `patch` into `target`, recursing into objects (`items`).
fn merge(target: &mut Value, patch: &Value) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        return;
    };
    for (k, v) in p {
        match t.get_mut(k) {
            Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

/// `Problem` as the server fills it (RFC 9457).
fn tighten_problem_schema(doc: &mut Value) {
    if let Some(p) = doc.pointer_mut("/components/schemas/Problem/properties") {
        p["status"] = json!({ "type": "integer", "minimum": 400, "maximum": 599,
            "description": "The HTTP status, repeated" });
        p["type"] = json!({ "type": "string", "format": "uri",
            "description": "A URI naming the kind of problem" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_with(op: Value) -> Value {
        json!({ "paths": { "/things/{id}": { "post": op } },
                "components": { "schemas": { "Problem": { "properties": {} } } } })
    }

    #[test]
    fn hookd_errors_become_problem_json_and_cross_cutting_answers_are_added() {
        let mut doc = doc_with(json!({
            "requestBody": {},
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {}}},
                "404": {"description": "", "content": {"application/json": {"schema": {"$ref": PROBLEM_REF}}}}
            }
        }));
        complete(&mut doc, &[]);
        let r = &doc["paths"]["/things/{id}"]["post"]["responses"];
        for code in ["400", "401", "404", "408", "413", "429", "500", "503"] {
            assert!(
                r[code]["content"][PROBLEM_JSON].is_object(),
                "{code}: {}",
                r[code]
            );
            assert!(r[code]["content"].get("application/json").is_none());
            assert!(!r[code]["description"].as_str().unwrap().is_empty());
        }
        assert!(r["200"]["content"]["application/json"].is_object());
        assert!(r["429"]["headers"]["Retry-After"].is_object());
        assert!(r["401"]["headers"]["WWW-Authenticate"].is_object());
    }

    #[test]
    fn a_surface_keeps_its_error_shape_but_408_is_problem_json() {
        let own =
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/SeedError"}}});
        let mut doc = doc_with(json!({
            "security": [{"bearer": []}],
            "responses": { "404": {"description": "", "content": own.clone()} }
        }));
        complete(&mut doc, &[]);
        let r = &doc["paths"]["/things/{id}"]["post"]["responses"];
        assert_eq!(r["404"]["content"], own);
        assert_eq!(r["401"]["content"], own);
        assert_eq!(r["400"]["content"], own);
        assert!(r["408"]["content"][PROBLEM_JSON].is_object());
        assert!(r.get("413").is_none(), "no body, no 413");
    }

    #[test]
    fn an_open_operation_without_input_gets_only_408() {
        let mut doc = json!({ "paths": { "/healthz": { "get": {
            "responses": {"200": {"description": "up"}} } } } });
        complete(&mut doc, &[]);
        let r = doc["paths"]["/healthz"]["get"]["responses"]
            .as_object()
            .unwrap();
        let codes: Vec<&str> = r.keys().map(String::as_str).collect();
        assert_eq!(codes, ["200", "408"]);
    }
}
