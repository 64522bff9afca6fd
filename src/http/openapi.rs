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
//! each create (`POST P`) to the operations under `P/{param}`, the new
//! resource's id feeding the parameter, so that clients and stateful
//! tests follow a resource from its creation.
//!
//! A handler declares what only it knows: its success answers, 403 (the
//! permission it needs), 404 (what it looks up), 409, and its own rules in
//! the schemas (ranges, lengths, patterns, enums, formats). The rules here
//! only add what is missing; they never remove a declared answer.

use serde_json::{Map, Value, json};

const PROBLEM_REF: &str = "#/components/schemas/Problem";
const PROBLEM_JSON: &str = "application/problem+json";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Applies the rules of this module's header to a generated document.
pub fn complete(doc: &mut Value) {
    tighten_problem_schema(doc);
    unique_operation_ids(doc);
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
        let resp = responses.entry(code.to_owned()).or_insert_with(|| {
            json!({ "description": description, "content": content.clone() })
        });
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
        add(
            "500",
            "An unexpected failure (logged)",
            &error_content,
            &[],
        );
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
        let source_params = params_of(create);
        for (target_path, target_item) in paths {
            let Some(rest) = target_path.strip_prefix(&format!("{path}/{{")) else {
                continue;
            };
            let Some((param, _)) = rest.split_once('}') else {
                continue;
            };
            let Some(pointer) = id_pointer(doc, schema, param) else {
                continue;
            };
            for method in METHODS {
                let Some(target) = target_item.get(method) else {
                    continue;
                };
                let Some(op_id) = target.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                let mut parameters = Map::new();
                for (name, place) in params_of(target) {
                    if name == param {
                        parameters.insert(name, format!("$response.body#{pointer}").into());
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
        complete(&mut doc);
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
        let own = json!({"application/json": {"schema": {"$ref": "#/components/schemas/SeedError"}}});
        let mut doc = doc_with(json!({
            "security": [{"bearer": []}],
            "responses": { "404": {"description": "", "content": own.clone()} }
        }));
        complete(&mut doc);
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
        complete(&mut doc);
        let r = doc["paths"]["/healthz"]["get"]["responses"]
            .as_object()
            .unwrap();
        let codes: Vec<&str> = r.keys().map(String::as_str).collect();
        assert_eq!(codes, ["200", "408"]);
    }
}
