//! Payload filters (SPEC §12): a webhook's JSON document of conditions on
//! the event, compiled once into a [`Filter`] and evaluated at fan-out.
//!
//! A document is an object: each key is a path (`type`, `data`, `data.a.b`)
//! or one of `$and`, `$or` (arrays of documents) and `$not` (a document);
//! its keys are ANDed. A path's value is a literal (equality) or an object
//! of operators (`$eq $neq $gt $gte $lt $lte $in $nin $exists $prefix`,
//! and `$not` around another such object), also ANDed. Walking a path, an
//! array is entered element by element (a numeric segment also indexes
//! it), and a condition on an array matches if the array or any element
//! does. `$neq`, `$nin` and `$not` are the negations of what they wrap, so
//! `{"$neq": x}` matches an array with no element equal to `x`.
//!
//! Invariant: a compiled filter is valid; compiling names the first wrong
//! operator, operand or path (`filter.<where>`), and evaluating never fails.

use serde_json::Value;

/// How deeply conditions may nest, and how many a filter may hold:
/// evaluation is bounded by the filter, whatever the event.
pub const MAX_DEPTH: usize = 16;
pub const MAX_CONDITIONS: usize = 256;
/// Segments of one path after `data`.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// A compiled filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Path(Path, Cond),
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    /// `type` (true) or `data` (false).
    is_type: bool,
    segments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    All(Vec<Cond>),
    Not(Box<Cond>),
    Eq(Value),
    Cmp(Ordering, Value),
    In(Vec<Value>),
    Exists(bool),
    Prefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ordering {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Why a filter was refused: where (`filter`, `filter.data.a`,
/// `filter.$or[1].data.b.$gt`) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub field: String,
    pub message: String,
}

/// The event as a filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub event_type: &'a str,
    pub data: &'a Value,
}

struct Compiler {
    conditions: usize,
}

impl Filter {
    /// Compiles a filter document.
    pub fn compile(doc: &Value) -> Result<Self, FilterError> {
        let mut c = Compiler { conditions: 0 };
        Ok(Self {
            root: c.document(doc, "filter", 0)?,
        })
    }

    /// Compiles the stored text of a filter (compiled on write, so valid).
    pub fn from_text(text: &str) -> Result<Self, FilterError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| FilterError {
            field: "filter".into(),
            message: format!("is not JSON: {e}"),
        })?;
        Self::compile(&doc)
    }

    /// Whether the event matches.
    pub fn matches(&self, event: EventView<'_>) -> bool {
        self.root.eval(event)
    }

    /// Whether this filter reads `data` (otherwise the event's data need
    /// not be parsed to evaluate it).
    pub fn reads_data(&self) -> bool {
        self.root.reads_data()
    }
}

fn err(field: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl Compiler {
    fn count(&mut self, at: &str) -> Result<(), FilterError> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(err(
                at,
                format!("a filter holds at most {MAX_CONDITIONS} conditions"),
            ));
        }
        Ok(())
    }

    fn document(&mut self, doc: &Value, at: &str, depth: usize) -> Result<Node, FilterError> {
        if depth > MAX_DEPTH {
            return Err(err(at, format!("nests deeper than {MAX_DEPTH} levels")));
        }
        let Value::Object(map) = doc else {
            return Err(err(at, "must be an object of conditions"));
        };
        if map.is_empty() {
            return Err(err(at, "must hold at least one condition"));
        }
        let mut all = Vec::with_capacity(map.len());
        for (key, value) in map {
            let here = format!("{at}.{key}");
            self.count(&here)?;
            all.push(match key.as_str() {
                "$and" | "$or" => {
                    let Value::Array(items) = value else {
                        return Err(err(&here, "must be an array of conditions"));
                    };
                    if items.is_empty() {
                        return Err(err(&here, "must not be empty"));
                    }
                    let nodes = items
                        .iter()
                        .enumerate()
                        .map(|(i, d)| self.document(d, &format!("{here}[{i}]"), depth + 1))
                        .collect::<Result<Vec<_>, _>>()?;
                    if key == "$and" {
                        Node::All(nodes)
                    } else {
                        Node::Any(nodes)
                    }
                }
                "$not" => Node::Not(Box::new(self.document(value, &here, depth + 1)?)),
                k if k.starts_with('$') => {
                    return Err(err(
                        &here,
                        format!("unknown operator {k} (here: $and, $or, $not or a path)"),
                    ));
                }
                k => Node::Path(path(k, &here)?, self.condition(value, &here, depth + 1)?),
            });
        }
        Ok(if all.len() == 1 {
            all.pop().expect("one")
        } else {
            Node::All(all)
        })
    }

    /// A path's value: an operator object, or a literal to equal.
    fn condition(&mut self, value: &Value, at: &str, depth: usize) -> Result<Cond, FilterError> {
        if depth > MAX_DEPTH {
            return Err(err(at, format!("nests deeper than {MAX_DEPTH} levels")));
        }
        let Value::Object(map) = value else {
            return Ok(Cond::Eq(value.clone()));
        };
        let operators = map.keys().filter(|k| k.starts_with('$')).count();
        if operators == 0 {
            return Ok(Cond::Eq(value.clone()));
        }
        if operators != map.len() {
            return Err(err(
                at,
                "mixes operators with plain keys (write {\"$eq\": {…}} to match an object)",
            ));
        }
        let mut all = Vec::with_capacity(map.len());
        for (op, operand) in map {
            let here = format!("{at}.{op}");
            self.count(&here)?;
            let cmp = |o: Ordering| -> Result<Cond, FilterError> {
                match operand {
                    Value::Number(_) | Value::String(_) => Ok(Cond::Cmp(o, operand.clone())),
                    _ => Err(err(&here, "must be a number or a string")),
                }
            };
            all.push(match op.as_str() {
                "$eq" => Cond::Eq(operand.clone()),
                "$neq" => Cond::Not(Box::new(Cond::Eq(operand.clone()))),
                "$gt" => cmp(Ordering::Gt)?,
                "$gte" => cmp(Ordering::Gte)?,
                "$lt" => cmp(Ordering::Lt)?,
                "$lte" => cmp(Ordering::Lte)?,
                "$in" | "$nin" => {
                    let Value::Array(items) = operand else {
                        return Err(err(&here, "must be an array of values"));
                    };
                    let c = Cond::In(items.clone());
                    if op == "$in" {
                        c
                    } else {
                        Cond::Not(Box::new(c))
                    }
                }
                "$exists" => match operand {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => return Err(err(&here, "must be true or false")),
                },
                "$prefix" => match operand {
                    Value::String(s) => Cond::Prefix(s.clone()),
                    _ => return Err(err(&here, "must be a string")),
                },
                "$not" => match operand {
                    Value::Object(_) => {
                        Cond::Not(Box::new(self.condition(operand, &here, depth + 1)?))
                    }
                    _ => return Err(err(&here, "must be an object of operators")),
                },
                other => {
                    return Err(err(
                        &here,
                        format!(
                            "unknown operator {other} (one of $eq $neq $gt $gte $lt $lte $in $nin \
                             $exists $prefix $not)"
                        ),
                    ));
                }
            });
        }
        Ok(if all.len() == 1 {
            all.pop().expect("one")
        } else {
            Cond::All(all)
        })
    }
}

/// `type`, `data` or `data.` followed by non-empty segments.
fn path(key: &str, at: &str) -> Result<Path, FilterError> {
    if key == "type" {
        return Ok(Path {
            is_type: true,
            segments: Vec::new(),
        });
    }
    let rest = match key.strip_prefix("data") {
        Some("") => "",
        Some(r) if r.starts_with('.') => &r[1..],
        _ => {
            return Err(err(
                at,
                "is not a path: a path is `type`, `data` or `data.<field>…`",
            ));
        }
    };
    let segments: Vec<String> = if rest.is_empty() && key == "data" {
        Vec::new()
    } else {
        rest.split('.').map(str::to_owned).collect()
    };
    if segments.iter().any(String::is_empty) {
        return Err(err(at, "is not a path: a segment is empty"));
    }
    if segments.len() > MAX_PATH_SEGMENTS {
        return Err(err(
            at,
            format!("is not a path: at most {MAX_PATH_SEGMENTS} segments after data"),
        ));
    }
    Ok(Path {
        is_type: false,
        segments,
    })
}

impl Node {
    fn eval(&self, e: EventView<'_>) -> bool {
        match self {
            Node::All(n) => n.iter().all(|n| n.eval(e)),
            Node::Any(n) => n.iter().any(|n| n.eval(e)),
            Node::Not(n) => !n.eval(e),
            Node::Path(p, c) => {
                if p.is_type {
                    c.eval_type(e.event_type)
                } else {
                    // On the stack for the usual few values: evaluation
                    // runs per (event, filtered webhook) on the hot path.
                    let mut found = Found::new();
                    resolve(e.data, &p.segments, &mut found);
                    c.eval(&found)
                }
            }
        }
    }

    fn reads_data(&self) -> bool {
        match self {
            Node::All(n) | Node::Any(n) => n.iter().any(Node::reads_data),
            Node::Not(n) => n.reads_data(),
            Node::Path(p, _) => !p.is_type,
        }
    }
}

/// The values one path reached.
type Found<'v> = smallvec::SmallVec<[&'v Value; 4]>;

/// The values a path reaches (several through arrays, none if absent).
fn resolve<'v>(v: &'v Value, segments: &[String], out: &mut Found<'v>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(child) = m.get(first) {
                resolve(child, rest, out);
            }
        }
        Value::Array(items) => match first.parse::<usize>() {
            Ok(i) => {
                if let Some(child) = items.get(i) {
                    resolve(child, rest, out);
                }
            }
            Err(_) => {
                for item in items {
                    resolve(item, segments, out);
                }
            }
        },
        _ => {}
    }
}

impl Cond {
    /// Over the values a path reached.
    fn eval(&self, found: &[&Value]) -> bool {
        match self {
            Cond::All(c) => c.iter().all(|c| c.eval(found)),
            Cond::Not(c) => !c.eval(found),
            Cond::Exists(want) => found.is_empty() != *want,
            _ => found.iter().any(|v| self.holds_or_any_element(v)),
        }
    }

    /// Over the event's type, a string that is always there: the same
    /// answer as `eval` over it, without making a `Value` of it.
    fn eval_type(&self, t: &str) -> bool {
        match self {
            Cond::All(c) => c.iter().all(|c| c.eval_type(t)),
            Cond::Not(c) => !c.eval_type(t),
            Cond::Exists(want) => *want,
            Cond::Eq(x) => x.as_str() == Some(t),
            Cond::In(xs) => xs.iter().any(|x| x.as_str() == Some(t)),
            Cond::Prefix(p) => t.starts_with(p.as_str()),
            Cond::Cmp(o, x) => x.as_str().is_some_and(|x| o.holds(t.cmp(x))),
        }
    }

    fn holds_or_any_element(&self, v: &Value) -> bool {
        self.holds(v)
            || match v {
                Value::Array(items) => items.iter().any(|i| self.holds(i)),
                _ => false,
            }
    }

    /// A positive condition on one value.
    fn holds(&self, v: &Value) -> bool {
        match self {
            Cond::Eq(x) => json_eq(v, x),
            Cond::In(xs) => xs.iter().any(|x| json_eq(v, x)),
            Cond::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Cond::Cmp(o, x) => {
                let ord = match (v, x) {
                    (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
                    (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
                    _ => None,
                };
                ord.is_some_and(|ord| o.holds(ord))
            }
            Cond::All(_) | Cond::Not(_) | Cond::Exists(_) => self.eval(&[v]),
        }
    }
}

impl Ordering {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        match self {
            Ordering::Gt => ord.is_gt(),
            Ordering::Gte => ord.is_ge(),
            Ordering::Lt => ord.is_lt(),
            Ordering::Lte => ord.is_le(),
        }
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(filter: Value, event_type: &str, data: Value) -> bool {
        Filter::compile(&filter)
            .expect("valid filter")
            .matches(EventView {
                event_type,
                data: &data,
            })
    }

    fn refused(filter: Value) -> FilterError {
        Filter::compile(&filter).expect_err("refused")
    }

    #[test]
    fn a_literal_is_equality_and_paths_are_anded() {
        let f = json!({"type": "order.paid", "data.amount": 10});
        assert!(matches(f.clone(), "order.paid", json!({"amount": 10.0})));
        assert!(!matches(f.clone(), "order.paid", json!({"amount": 11})));
        assert!(!matches(f, "order.created", json!({"amount": 10})));
    }

    #[test]
    fn comparisons_take_numbers_or_strings_of_the_same_kind() {
        let f = json!({"data.n": {"$gt": 5, "$lte": 10}});
        assert!(matches(f.clone(), "t", json!({"n": 10})));
        assert!(!matches(f.clone(), "t", json!({"n": 5})));
        assert!(!matches(f.clone(), "t", json!({"n": "7"})));
        assert!(matches(
            json!({"data.s": {"$lt": "b"}}),
            "t",
            json!({"s": "abc"})
        ));
        assert!(!matches(
            json!({"data.s": {"$gte": "b"}}),
            "t",
            json!({"s": 3})
        ));
    }

    #[test]
    fn in_nin_prefix_and_exists() {
        let data = json!({"country": "DE", "sku": "pro-2024", "gone": null});
        assert!(matches(
            json!({"data.country": {"$in": ["DE", "FR"]}}),
            "t",
            data.clone()
        ));
        assert!(!matches(
            json!({"data.country": {"$nin": ["DE", "FR"]}}),
            "t",
            data.clone()
        ));
        assert!(matches(
            json!({"data.sku": {"$prefix": "pro-"}}),
            "t",
            data.clone()
        ));
        assert!(!matches(
            json!({"data.sku": {"$prefix": "basic"}}),
            "t",
            data.clone()
        ));
        assert!(matches(
            json!({"data.gone": {"$exists": true}}),
            "t",
            data.clone()
        ));
        assert!(matches(
            json!({"data.nope": {"$exists": false}}),
            "t",
            data.clone()
        ));
        assert!(matches(
            json!({"type": {"$prefix": "license."}}),
            "license.x",
            data
        ));
    }

    #[test]
    fn on_an_array_a_condition_matches_if_any_element_does() {
        let data =
            json!({"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}], "tags": ["x", "y"]});
        assert!(matches(json!({"data.items.sku": "b"}), "t", data.clone()));
        assert!(matches(
            json!({"data.items.qty": {"$gt": 4}}),
            "t",
            data.clone()
        ));
        assert!(!matches(
            json!({"data.items.qty": {"$gt": 5}}),
            "t",
            data.clone()
        ));
        assert!(matches(json!({"data.tags": "y"}), "t", data.clone()));
        assert!(matches(json!({"data.tags": ["x", "y"]}), "t", data.clone()));
        assert!(matches(json!({"data.items.1.sku": "b"}), "t", data.clone()));
        assert!(!matches(
            json!({"data.items.0.sku": "b"}),
            "t",
            data.clone()
        ));
        // Negations negate the whole: no element may equal.
        assert!(!matches(
            json!({"data.tags": {"$neq": "x"}}),
            "t",
            data.clone()
        ));
        assert!(matches(json!({"data.tags": {"$neq": "z"}}), "t", data));
    }

    #[test]
    fn and_or_not_combine_documents() {
        let f = json!({"$or": [{"data.a": 1}, {"$and": [{"data.b": 2}, {"$not": {"data.c": 3}}]}]});
        assert!(matches(f.clone(), "t", json!({"a": 1})));
        assert!(matches(f.clone(), "t", json!({"b": 2, "c": 4})));
        assert!(!matches(f.clone(), "t", json!({"b": 2, "c": 3})));
        assert!(!matches(f, "t", json!({})));
        let f = json!({"data.n": {"$not": {"$in": [1, 2]}}});
        assert!(matches(f.clone(), "t", json!({"n": 3})));
        assert!(!matches(f, "t", json!({"n": 2})));
    }

    #[test]
    fn a_missing_path_fails_positive_conditions_and_passes_negations() {
        let data = json!({"a": {"b": 1}});
        assert!(!matches(json!({"data.a.c": 1}), "t", data.clone()));
        assert!(matches(json!({"data.a.c": {"$neq": 1}}), "t", data.clone()));
        assert!(matches(
            json!({"data.a.c": {"$nin": [1]}}),
            "t",
            data.clone()
        ));
        assert!(!matches(json!({"data.a.b.c": 1}), "t", data));
    }

    #[test]
    fn objects_are_matched_with_eq() {
        let data = json!({"o": {"k": 1, "j": [1, 2]}});
        assert!(matches(
            json!({"data.o": {"k": 1, "j": [1, 2]}}),
            "t",
            data.clone()
        ));
        assert!(matches(
            json!({"data.o": {"$eq": {"k": 1, "j": [1.0, 2]}}}),
            "t",
            data
        ));
    }

    #[test]
    fn refusals_name_the_operator_or_path() {
        let e = refused(json!({"data.a": {"$regex": "x"}}));
        assert_eq!(e.field, "filter.data.a.$regex");
        assert!(
            e.message.contains("unknown operator $regex"),
            "{}",
            e.message
        );
        assert_eq!(refused(json!({"$xor": []})).field, "filter.$xor");
        assert_eq!(refused(json!({"payload.a": 1})).field, "filter.payload.a");
        assert_eq!(refused(json!({"data..a": 1})).field, "filter.data..a");
        assert_eq!(refused(json!({"type.x": 1})).field, "filter.type.x");
        assert_eq!(refused(json!({"datum": 1})).field, "filter.datum");
        assert_eq!(
            refused(json!({"data.n": {"$gt": true}})).field,
            "filter.data.n.$gt"
        );
        assert_eq!(
            refused(json!({"data.n": {"$in": 3}})).field,
            "filter.data.n.$in"
        );
        assert_eq!(
            refused(json!({"data.n": {"$exists": 1}})).field,
            "filter.data.n.$exists"
        );
        assert_eq!(
            refused(json!({"data.n": {"$prefix": 1}})).field,
            "filter.data.n.$prefix"
        );
        assert_eq!(
            refused(json!({"data.n": {"$eq": 1, "k": 2}})).field,
            "filter.data.n"
        );
        assert_eq!(
            refused(json!({"$or": [{"data.a": 1}, 3]})).field,
            "filter.$or[1]"
        );
        assert_eq!(refused(json!({"$and": []})).field, "filter.$and");
        assert_eq!(refused(json!([])).field, "filter");
        assert_eq!(refused(json!({})).field, "filter");
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let mut deep = json!({"data.a": 1});
        for _ in 0..MAX_DEPTH + 1 {
            deep = json!({ "$not": deep });
        }
        assert!(refused(deep).message.contains("deeper"));
        let many: serde_json::Map<String, Value> = (0..MAX_CONDITIONS + 1)
            .map(|i| (format!("data.k{i}"), json!(i)))
            .collect();
        assert!(refused(Value::Object(many)).message.contains("at most"));
    }

    #[test]
    fn reads_data_only_when_a_path_is_under_data() {
        let f = Filter::compile(&json!({"type": {"$prefix": "a."}})).unwrap();
        assert!(!f.reads_data());
        let f = Filter::compile(&json!({"$or": [{"type": "a"}, {"data.x": 1}]})).unwrap();
        assert!(f.reads_data());
    }

    /// Properties checked over random filters and events from a seeded
    /// generator (no property-testing crate: the generator is 60 lines).
    mod properties {
        use super::*;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        const KEYS: [&str; 3] = ["a", "b", "c"];

        fn scalar(r: &mut StdRng) -> Value {
            match r.gen_range(0..5) {
                0 => Value::Null,
                1 => json!(r.gen_bool(0.5)),
                2 => json!(r.gen_range(-3..4)),
                3 => json!(r.gen_range(-3..4) as f64 + 0.5),
                _ => json!(["x", "xy", "y", ""][r.gen_range(0..4)]),
            }
        }

        fn value(r: &mut StdRng, depth: usize) -> Value {
            match if depth == 0 { 0 } else { r.gen_range(0..4) } {
                0 | 1 => scalar(r),
                2 => Value::Array(
                    (0..r.gen_range(0..3))
                        .map(|_| value(r, depth - 1))
                        .collect(),
                ),
                _ => {
                    let mut m = serde_json::Map::new();
                    for k in KEYS {
                        if r.gen_bool(0.6) {
                            m.insert(k.to_string(), value(r, depth - 1));
                        }
                    }
                    Value::Object(m)
                }
            }
        }

        fn path(r: &mut StdRng) -> String {
            let n = r.gen_range(0..3);
            let mut p = "data".to_string();
            for _ in 0..n {
                p.push('.');
                p.push_str(if r.gen_bool(0.1) {
                    "0"
                } else {
                    KEYS[r.gen_range(0..3)]
                });
            }
            p
        }

        fn operators(r: &mut StdRng, depth: usize) -> Value {
            let op = [
                "$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$prefix",
                "$not",
            ][r.gen_range(0..if depth == 0 { 10 } else { 11 })];
            let operand = match op {
                "$gt" | "$gte" | "$lt" | "$lte" => {
                    if r.gen_bool(0.5) {
                        json!(r.gen_range(-3..4))
                    } else {
                        json!("xy")
                    }
                }
                "$in" | "$nin" => Value::Array((0..r.gen_range(0..3)).map(|_| scalar(r)).collect()),
                "$exists" => json!(r.gen_bool(0.5)),
                "$prefix" => json!(["x", "", "y"][r.gen_range(0..3)]),
                "$not" => operators(r, depth - 1),
                _ => value(r, 1),
            };
            json!({ op: operand })
        }

        fn document(r: &mut StdRng, depth: usize) -> Value {
            match if depth == 0 { 0 } else { r.gen_range(0..4) } {
                0 => json!({ path(r): operators(r, 2) }),
                1 => json!({ "$not": document(r, depth - 1) }),
                2 => json!({ "$and": [document(r, depth - 1), document(r, depth - 1)] }),
                _ => json!({ "$or": [document(r, depth - 1), document(r, depth - 1)] }),
            }
        }

        fn eval(f: &Value, data: &Value) -> bool {
            Filter::compile(f)
                .expect("generated filters are valid")
                .matches(EventView {
                    event_type: "t.x",
                    data,
                })
        }

        #[test]
        fn the_logical_operators_obey_boolean_algebra() {
            let mut r = StdRng::seed_from_u64(0x5eed_f11e);
            for _ in 0..3_000 {
                let (a, b) = (document(&mut r, 3), document(&mut r, 3));
                let data = value(&mut r, 3);
                let (x, y) = (eval(&a, &data), eval(&b, &data));
                assert_eq!(eval(&json!({"$not": a}), &data), !x, "{a} on {data}");
                assert_eq!(eval(&json!({"$and": [a, b]}), &data), x && y);
                assert_eq!(eval(&json!({"$or": [a, b]}), &data), x || y);
                // Keys of one document are ANDed.
                if let (Value::Object(ma), Value::Object(mb)) = (&a, &b)
                    && ma.keys().all(|k| !mb.contains_key(k))
                {
                    let mut merged = ma.clone();
                    merged.extend(mb.clone());
                    assert_eq!(eval(&Value::Object(merged), &data), x && y);
                }
            }
        }

        #[test]
        fn a_condition_on_the_type_answers_as_it_would_on_the_same_string_in_data() {
            // `type` is evaluated on the string itself (no Value made of
            // it); `data.t` holding the same string goes the general way.
            let mut r = StdRng::seed_from_u64(0x7e57);
            let mut compared = 0;
            for _ in 0..5_000 {
                let ops = operators(&mut r, 2);
                let Ok(on_type) = Filter::compile(&json!({ "type": ops })) else {
                    continue;
                };
                let on_data = Filter::compile(&json!({ "data.t": ops })).unwrap();
                for t in ["x", "xy", "y", "", "t.x"] {
                    let data = json!({ "t": t });
                    let by_type = on_type.matches(EventView {
                        event_type: t,
                        data: &Value::Null,
                    });
                    let by_data = on_data.matches(EventView {
                        event_type: "other",
                        data: &data,
                    });
                    assert_eq!(by_type, by_data, "{ops} on {t:?}");
                    compared += 1;
                }
            }
            assert!(compared > 5_000, "only {compared} compared");
        }

        #[test]
        fn each_negating_operator_is_the_complement_of_its_positive() {
            let mut r = StdRng::seed_from_u64(7);
            for _ in 0..3_000 {
                let p = path(&mut r);
                let data = value(&mut r, 3);
                let v = value(&mut r, 1);
                let list: Vec<Value> = (0..r.gen_range(0..3)).map(|_| scalar(&mut r)).collect();
                let eq = eval(&json!({ &p: {"$eq": v} }), &data);
                assert_eq!(
                    eval(&json!({ &p: {"$neq": v} }), &data),
                    !eq,
                    "{p} {v} on {data}"
                );
                let isin = eval(&json!({ &p: {"$in": list} }), &data);
                assert_eq!(eval(&json!({ &p: {"$nin": list} }), &data), !isin);
                let ex = eval(&json!({ &p: {"$exists": true} }), &data);
                assert_eq!(eval(&json!({ &p: {"$exists": false} }), &data), !ex);
                // $in of one value is $eq of it; $in of none matches nothing.
                let s = scalar(&mut r);
                assert_eq!(
                    eval(&json!({ &p: {"$in": [s]} }), &data),
                    eval(&json!({ &p: {"$eq": s} }), &data)
                );
                assert!(!eval(&json!({ &p: {"$in": []} }), &data));
                // Nothing positive holds where nothing exists.
                if !ex {
                    assert!(!eq && !isin);
                }
            }
        }

        #[test]
        fn comparisons_are_consistent_orders() {
            let mut r = StdRng::seed_from_u64(11);
            for _ in 0..3_000 {
                let data = json!({"n": scalar(&mut r)});
                let k = json!(r.gen_range(-3..4));
                let lt = eval(&json!({"data.n": {"$lt": k}}), &data);
                let gt = eval(&json!({"data.n": {"$gt": k}}), &data);
                let eq = eval(&json!({"data.n": {"$eq": k}}), &data);
                let lte = eval(&json!({"data.n": {"$lte": k}}), &data);
                let gte = eval(&json!({"data.n": {"$gte": k}}), &data);
                assert_eq!(lte, lt || eq, "{data} {k}");
                assert_eq!(gte, gt || eq, "{data} {k}");
                assert!(!(lt && gt));
                // Numbers are totally ordered; other kinds never compare.
                assert_eq!(lt || gt || eq, data["n"].is_number(), "{data} {k}");
            }
        }

        #[test]
        fn every_generated_filter_compiles_from_its_own_text() {
            let mut r = StdRng::seed_from_u64(3);
            for _ in 0..1_000 {
                let d = document(&mut r, 4);
                let text = serde_json::to_string(&d).unwrap();
                assert_eq!(
                    Filter::from_text(&text).unwrap(),
                    Filter::compile(&d).unwrap()
                );
            }
        }
    }
}
