//! A load test's scenario file: journeys of HTTP steps (with headers, bodies, values extracted
//! from one answer into the next, think times) and their weights, the base URL, values the
//! paths draw from, and thresholds. Read with the file, line and column of every mistake.

use crate::diagnostic::{Diagnostic, Source, did_you_mean};
use crate::yaml::{self, Node, Value, entries, items, text};
use std::path::Path;
use std::time::Duration;

/// One HTTP request of a journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The step's name in results (default `METHOD path`).
    pub name: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path (a template: `/product/{{ category }}/{{ id }}`), after the base URL.
    pub path: String,
    /// Headers (values are templates).
    pub headers: Vec<(String, String)>,
    /// The body and its content type.
    pub body: Option<Body>,
    /// Variables taken from the answer for the steps after it.
    pub extract: Vec<(String, ExtractRule)>,
    /// Answers with these statuses are not errors (default: 2xx and 3xx).
    pub expect: Option<Vec<u16>>,
}

/// An extraction rule and its text, as written.
#[derive(Debug, Clone)]
pub struct ExtractRule {
    /// What to read.
    pub kind: ExtractKind,
}

impl PartialEq for ExtractRule {
    fn eq(&self, other: &Self) -> bool {
        format!("{:?}", self.kind) == format!("{:?}", other.kind)
    }
}

/// Where an extracted value is read.
#[derive(Debug, Clone)]
pub enum ExtractKind {
    /// The first group of a regular expression over the body (the whole match without one).
    Regex(regex::Regex),
    /// A JSON pointer (`/items/0/id`) into the body.
    Json(String),
    /// A response header.
    Header(String),
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `json:` a YAML value sent as JSON (strings are templates).
    Json(serde_json::Value),
    /// `form:` fields sent `application/x-www-form-urlencoded` (values are templates).
    Form(Vec<(String, String)>),
    /// `body:` text as written (a template), with `Content-Type` from the headers.
    Text(String),
}

/// A step: a request or a pause.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An HTTP request.
    Request(Request),
    /// A think time: the user reads the page.
    Think(Duration),
}

/// A journey: what one simulated user does, start to end.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    /// Its name.
    pub name: String,
    /// Its share of the arrivals (or of the users), relative to the others' weights.
    pub weight: u32,
    /// Its steps.
    pub steps: Vec<Step>,
}

/// The whole scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Where requests go (`http://lb.shop.internal`); the paths are appended.
    pub base_url: Option<String>,
    /// Values the templates draw from: a list is drawn from at random once per journey.
    pub vars: Vec<(String, serde_json::Value)>,
    /// The journeys.
    pub journeys: Vec<Journey>,
    /// Thresholds as written (`p95 < 300ms`).
    pub thresholds: Vec<(String, Option<(u32, u32)>)>,
}

impl Scenario {
    /// The scenario in its file's own form, as JSON (which a scenario file may be): what a
    /// coordinating tend hands its generators, whether it read a file or the logs.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let step = |s: &Step| -> Value {
            let r = match s {
                Step::Think(d) => return json!({"think": format!("{}ms", d.as_secs_f64() * 1000.0)}),
                Step::Request(r) => r,
            };
            let mut m = Map::new();
            m.insert("name".into(), json!(r.name));
            m.insert("method".into(), json!(r.method));
            m.insert("path".into(), json!(r.path));
            if !r.headers.is_empty() {
                m.insert(
                    "headers".into(),
                    Value::Object(r.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                );
            }
            match &r.body {
                None => {}
                Some(Body::Json(v)) => {
                    m.insert("json".into(), v.clone());
                }
                Some(Body::Form(f)) => {
                    m.insert(
                        "form".into(),
                        Value::Object(f.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                    );
                }
                Some(Body::Text(t)) => {
                    m.insert("body".into(), json!(t));
                }
            }
            if !r.extract.is_empty() {
                let rules = r.extract.iter().map(|(var, rule)| {
                    let rule = match &rule.kind {
                        ExtractKind::Regex(re) => json!({"regex": re.as_str()}),
                        ExtractKind::Json(p) => json!({"json": p}),
                        ExtractKind::Header(h) => json!({"header": h}),
                    };
                    (var.clone(), rule)
                });
                m.insert("extract".into(), Value::Object(rules.collect()));
            }
            if let Some(codes) = &r.expect {
                m.insert("expect".into(), json!(codes));
            }
            Value::Object(m)
        };
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(u) = &self.base_url {
            m.insert("base_url".into(), json!(u));
        }
        if !self.vars.is_empty() {
            m.insert("vars".into(), Value::Object(self.vars.iter().cloned().collect()));
        }
        let journeys = self.journeys.iter().map(
            |j| json!({"name": j.name, "weight": j.weight, "steps": j.steps.iter().map(step).collect::<Vec<_>>()}),
        );
        m.insert("journeys".into(), Value::Array(journeys.collect()));
        if !self.thresholds.is_empty() {
            m.insert(
                "thresholds".into(),
                json!(self.thresholds.iter().map(|(t, _)| t).collect::<Vec<_>>()),
            );
        }
        Value::Object(m)
    }
}

const TOP_KEYS: [&str; 5] = ["name", "base_url", "vars", "journeys", "thresholds"];
const JOURNEY_KEYS: [&str; 3] = ["name", "weight", "steps"];
const STEP_KEYS: [&str; 10] = [
    "name", "method", "path", "headers", "json", "form", "body", "extract", "expect", "think",
];
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn unknown(source: &Source, key: &Node, name: &str, keys: &[&str], what: &str) -> Diagnostic {
    let d = source.error(key.line, key.column, format!("unknown {what} key `{name}`"));
    match did_you_mean(name, keys.iter().copied()) {
        Some(s) => d.with_hint(format!("did you mean `{s}`?")),
        None => d.with_hint(format!("{what} keys are: {}", keys.join(", "))),
    }
}

/// `1s`, `250ms`, `1.5s`, `2m`: a duration.
pub fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = number.trim().parse().ok()?;
    let secs = match unit.trim() {
        "ms" => v / 1000.0,
        "s" | "" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn step(source: &Source, node: &Node, index: usize) -> Result<Step, Diagnostic> {
    let map = entries(node, source, "a step")?;
    if map.is_empty() {
        return Err(source.error(node.line, node.column, "a step must have `path` or `think`"));
    }
    let mut req = Request {
        name: String::new(),
        method: "GET".into(),
        path: String::new(),
        headers: Vec::new(),
        body: None,
        extract: Vec::new(),
        expect: None,
    };
    let mut think = None;
    let mut has_path = false;
    for (k, v) in map {
        let key = text(k, source, "a step key")?;
        match key.as_str() {
            "name" => req.name = text(v, source, "`name`")?,
            "method" => {
                let m = text(v, source, "`method`")?.to_ascii_uppercase();
                if !METHODS.contains(&m.as_str()) {
                    return Err(source
                        .error(v.line, v.column, format!("`{m}` is not an HTTP method"))
                        .with_hint(format!("one of {}", METHODS.join(", "))));
                }
                req.method = m;
            }
            "path" => {
                req.path = text(v, source, "`path`")?;
                has_path = true;
                if !req.path.starts_with('/') {
                    return Err(source
                        .error(v.line, v.column, format!("path `{}` must start with `/`", req.path))
                        .with_hint("the base URL goes in `base_url` (or --base-url)"));
                }
            }
            "headers" => {
                for (hk, hv) in entries(v, source, "`headers`")? {
                    let name = text(hk, source, "a header name")?;
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(source.error(hk.line, hk.column, format!("`{name}` is not a header name")));
                    }
                    req.headers.push((name, text(hv, source, "a header value")?));
                }
            }
            "json" => req.body = Some(Body::Json(v.to_json())),
            "form" => {
                let mut fields = Vec::new();
                for (fk, fv) in entries(v, source, "`form`")? {
                    fields.push((text(fk, source, "a form field")?, text(fv, source, "a form value")?));
                }
                req.body = Some(Body::Form(fields));
            }
            "body" => req.body = Some(Body::Text(text(v, source, "`body`")?)),
            "extract" => {
                for (ek, ev) in entries(v, source, "`extract`")? {
                    let var = text(ek, source, "a variable name")?;
                    let rule = entries(ev, source, "an extraction (`regex:`, `json:` or `header:`)")?;
                    let [(rk, rv)] = rule else {
                        return Err(source
                            .error(ev.line, ev.column, "an extraction has one key")
                            .with_hint("`{regex: 'id=(\\d+)'}`, `{json: /items/0/id}` or `{header: Location}`"));
                    };
                    let what = text(rk, source, "an extraction")?;
                    let arg = text(rv, source, "an extraction")?;
                    let kind = match what.as_str() {
                        "regex" => {
                            ExtractKind::Regex(regex::Regex::new(&arg).map_err(|e| {
                                source.error(rv.line, rv.column, format!("not a regular expression: {e}"))
                            })?)
                        }
                        "json" if arg.is_empty() || arg.starts_with('/') => ExtractKind::Json(arg),
                        "json" => {
                            return Err(source
                                .error(rv.line, rv.column, format!("`{arg}` is not a JSON pointer"))
                                .with_hint("a pointer starts with `/`: `/items/0/id`"));
                        }
                        "header" => ExtractKind::Header(arg),
                        other => return Err(unknown(source, rk, other, &["regex", "json", "header"], "extraction")),
                    };
                    req.extract.push((var, ExtractRule { kind }));
                }
            }
            "expect" => {
                let list = match &v.value {
                    Value::Seq(_) => items(v, source, "`expect`")?.to_vec(),
                    _ => vec![v.clone()],
                };
                let mut codes = Vec::new();
                for c in &list {
                    let t = text(c, source, "a status")?;
                    match t.parse::<u16>() {
                        Ok(n) if (100..600).contains(&n) => codes.push(n),
                        _ => return Err(source.error(c.line, c.column, format!("`{t}` is not an HTTP status"))),
                    }
                }
                req.expect = Some(codes);
            }
            "think" => {
                let t = text(v, source, "`think`")?;
                think = Some(duration(&t).ok_or_else(|| {
                    source
                        .error(v.line, v.column, format!("`{t}` is not a duration"))
                        .with_hint("write e.g. 1s, 500ms or 1.5s")
                })?);
            }
            other => return Err(unknown(source, k, other, &STEP_KEYS, "step")),
        }
    }
    match (think, has_path) {
        (Some(d), false) if map.len() == 1 => Ok(Step::Think(d)),
        (Some(_), _) => Err(source
            .error(node.line, node.column, "a think time is a step of its own")
            .with_hint("write `- {think: 1s}` between two requests")),
        (None, false) => Err(source.error(node.line, node.column, format!("step {} has no `path`", index + 1))),
        (None, true) => {
            if req.name.is_empty() {
                req.name = format!("{} {}", req.method, req.path);
            }
            Ok(Step::Request(req))
        }
    }
}

/// Reads a scenario file.
pub fn load(path: &Path) -> Result<Scenario, Diagnostic> {
    let (source, root) = yaml::load_file(path)?;
    parse(&source, &root)
}

/// Reads a scenario from its YAML tree.
pub fn parse(source: &Source, root: &Node) -> Result<Scenario, Diagnostic> {
    let map = entries(root, source, "a scenario")?;
    let mut sc = Scenario {
        name: String::new(),
        base_url: None,
        vars: Vec::new(),
        journeys: Vec::new(),
        thresholds: Vec::new(),
    };
    let mut journeys_node = None;
    for (k, v) in map {
        let key = text(k, source, "a key")?;
        match key.as_str() {
            "name" => sc.name = text(v, source, "`name`")?,
            "base_url" => {
                let u = text(v, source, "`base_url`")?;
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(source
                        .error(v.line, v.column, format!("`{u}` is not an http:// or https:// URL"))
                        .with_hint("for example `base_url: http://lb.shop.internal`"));
                }
                sc.base_url = Some(u.trim_end_matches('/').to_string());
            }
            "vars" => {
                for (vk, vv) in entries(v, source, "`vars`")? {
                    sc.vars.push((text(vk, source, "a variable name")?, vv.to_json()));
                }
            }
            "journeys" => journeys_node = Some(v),
            "thresholds" => {
                for t in items(v, source, "`thresholds`")? {
                    let expr = text(t, source, "a threshold")?;
                    super::threshold::Threshold::parse(&expr).map_err(|e| {
                        source
                            .error(t.line, t.column, format!("threshold `{expr}`: {e}"))
                            .with_hint(super::threshold::HINT)
                    })?;
                    sc.thresholds.push((expr, Some((t.line, t.column))));
                }
            }
            other => return Err(unknown(source, k, other, &TOP_KEYS, "scenario")),
        }
    }
    let Some(jn) = journeys_node else {
        return Err(source
            .error(root.line, root.column, "the scenario has no `journeys`")
            .with_hint("journeys: [{name: browse, steps: [{path: /}]}]"));
    };
    for (i, j) in items(jn, source, "`journeys`")?.iter().enumerate() {
        let mut journey = Journey {
            name: format!("journey{}", i + 1),
            weight: 1,
            steps: Vec::new(),
        };
        for (k, v) in entries(j, source, "a journey")? {
            let key = text(k, source, "a journey key")?;
            match key.as_str() {
                "name" => journey.name = text(v, source, "`name`")?,
                "weight" => {
                    let w = text(v, source, "`weight`")?;
                    journey.weight = w.parse().ok().filter(|w| *w > 0 && *w <= 1_000_000).ok_or_else(|| {
                        source.error(v.line, v.column, format!("weight `{w}` must be a whole number from 1"))
                    })?;
                }
                "steps" => {
                    for (n, s) in items(v, source, "`steps`")?.iter().enumerate() {
                        journey.steps.push(step(source, s, n)?);
                    }
                }
                other => return Err(unknown(source, k, other, &JOURNEY_KEYS, "journey")),
            }
        }
        if !journey.steps.iter().any(|s| matches!(s, Step::Request(_))) {
            return Err(source
                .error(j.line, j.column, format!("journey `{}` has no request", journey.name))
                .with_hint("steps: [{path: /}]"));
        }
        sc.journeys.push(journey);
    }
    if sc.journeys.is_empty() {
        return Err(source.error(jn.line, jn.column, "`journeys` is empty"));
    }
    if sc.name.is_empty() {
        sc.name = source
            .path
            .file_stem()
            .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    }
    Ok(sc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_form_reads_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let every = dir.path().join("every.yaml");
        std::fs::write(
            &every,
            r#"
name: every
base_url: http://shop.test:8080
vars: {sku: [a, b], n: 3}
journeys:
  - name: buy
    weight: 2
    steps:
      - {path: "/cart?sku={{ sku }}", method: post, form: {sku: "{{ sku }}", qty: "1"}, expect: [201, 302]}
      - {think: 250ms}
      - name: pay
        method: PUT
        path: /pay
        headers: {X-Token: t}
        json: {sku: "{{ sku }}", n: "{{ n }}", nested: [1, {a: b}]}
        extract: {order: {regex: 'order=(\d+)'}, id: {json: /id}, loc: {header: Location}}
      - {path: /done, body: "raw {{ order }}"}
thresholds: ["p99 < 1s"]
"#,
        )
        .expect("write");
        let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/loadtests/shop-browse.yaml"));
        for file in [shipped, every.as_path()] {
            let first = load(file).expect("loads");
            let again = dir.path().join("again.yaml");
            std::fs::write(&again, serde_json::to_vec(&first.to_json()).expect("json")).expect("write");
            let mut back = load(&again).expect("reads back");
            back.thresholds.iter_mut().for_each(|t| t.1 = None);
            let mut want = first.clone();
            want.thresholds.iter_mut().for_each(|t| t.1 = None);
            assert_eq!(back, want, "{}", file.display());
            assert!(
                want.journeys
                    .iter()
                    .flat_map(|j| &j.steps)
                    .any(|s| matches!(s, Step::Think(_)))
            );
        }
    }
}
