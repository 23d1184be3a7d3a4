//! The load generator. Open model: journeys arrive at a set rate whatever the server does, and
//! each request's latency counts from the moment it was due, so a slow server cannot hide its
//! tail by slowing the generator down (coordinated omission). Closed model: N users each run
//! journeys one after the other, latency counted from the send, as most tools do; a run says
//! which model it used.

use super::scenario::{Body, ExtractKind, Journey, Request, Scenario, Step};
use crate::report::histogram::Histogram;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How load is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// Journeys started per second (ramped from 0 over the ramp).
    Open {
        /// Journeys per second at full rate.
        rate: f64,
    },
    /// Users each running journeys back to back (started evenly over the ramp).
    Closed {
        /// Users.
        users: usize,
    },
}

impl Model {
    /// `open` or `closed`, as results say it.
    pub fn name(&self) -> &'static str {
        match self {
            Model::Open { .. } => "open",
            Model::Closed { .. } => "closed",
        }
    }
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Where requests go.
    pub base_url: String,
    /// The model.
    pub model: Model,
    /// How long journeys are started.
    pub duration: Duration,
    /// How long the rate (or the users) take to reach full.
    pub ramp: Duration,
    /// A request not answered in this time is a `timeout` error.
    pub timeout: Duration,
    /// The open model's cap on journeys under way; an arrival past it is a `dropped` error.
    pub max_in_flight: usize,
}

/// Errors by kind.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Errors {
    /// The connection could not be made.
    pub connect: u64,
    /// No answer within the timeout.
    pub timeout: u64,
    /// An answer with an unexpected status.
    pub status: u64,
    /// Anything else (a broken answer, an extraction that found nothing).
    pub other: u64,
    /// Arrivals the generator could not start (too many journeys under way).
    pub dropped: u64,
}

impl Errors {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.status + self.other + self.dropped
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.status += o.status;
        self.other += o.other;
        self.dropped += o.dropped;
    }
}

/// One step's (or the whole run's) figures.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// Requests sent (answered or not).
    pub requests: u64,
    /// Errors by kind.
    pub errors: Errors,
    /// Latency of every request, answered or not, in µs.
    pub latency: Histogram,
}

impl Figures {
    /// Adds another's figures (another step, another generator).
    pub fn merge(&mut self, o: &Figures) {
        self.requests += o.requests;
        self.errors.add(&o.errors);
        self.latency.merge(&o.latency);
    }
}

/// What a run measured; generators' results merge exactly.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Results {
    /// Per request step: its name and figures, in the scenario's order.
    pub steps: Vec<(String, Figures)>,
    /// Per second of the run (by when requests were due).
    pub seconds: Vec<Figures>,
    /// Journeys started.
    pub journeys: u64,
    /// Arrivals dropped (open model).
    pub dropped: u64,
    /// How long journeys were started.
    pub elapsed: Duration,
}

impl Results {
    /// Adds another generator's results of the same scenario (steps in the same order).
    pub fn merge(&mut self, o: &Results) {
        for (mine, (_, theirs)) in self.steps.iter_mut().zip(&o.steps) {
            mine.1.merge(theirs);
        }
        if self.seconds.len() < o.seconds.len() {
            self.seconds.resize_with(o.seconds.len(), Figures::default);
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(&o.seconds) {
            mine.merge(theirs);
        }
        self.journeys += o.journeys;
        self.dropped += o.dropped;
        self.elapsed = self.elapsed.max(o.elapsed);
    }

    /// Every step together.
    pub fn overall(&self) -> Figures {
        let mut all = Figures::default();
        for (_, f) in &self.steps {
            all.merge(f);
        }
        all.errors.dropped += self.dropped;
        all
    }
}

/// What one request came to.
enum Outcome {
    Ok,
    Error(fn(&mut Errors)),
}

struct Shared {
    steps: Vec<(String, Figures)>,
    seconds: Vec<Figures>,
}

/// The run's shared state.
struct Run {
    plan: Plan,
    client: reqwest::Client,
    /// The fast path for `http://` base URLs.
    http: Option<super::http1::Pool>,
    start: Instant,
    shared: Mutex<Shared>,
    /// The index of each journey's request steps into `steps`.
    step_index: Vec<Vec<usize>>,
}

impl Run {
    fn record(&self, step: usize, due: Instant, latency: Duration, outcome: &Outcome) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let second = due.saturating_duration_since(self.start).as_secs() as usize;
        let mut s = match self.shared.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let add = |f: &mut Figures| {
            f.requests += 1;
            f.latency.add(us);
            if let Outcome::Error(kind) = outcome {
                kind(&mut f.errors);
            }
        };
        if let Some((_, f)) = s.steps.get_mut(step) {
            add(f);
        }
        if s.seconds.len() <= second {
            s.seconds.resize_with(second + 1, Figures::default);
        }
        if let Some(f) = s.seconds.get_mut(second) {
            add(f);
        }
    }
}

/// A small, fast random source for drawing values (not for secrets).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        Self(u64::from_le_bytes(b) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

/// The journey's variables: each list of the scenario's `vars` drawn from once.
fn draw(vars: &[(String, serde_json::Value)], rng: &mut Rng) -> HashMap<String, serde_json::Value> {
    vars.iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Array(items) if !items.is_empty() => items[rng.below(items.len())].clone(),
                other => other.clone(),
            };
            (k.clone(), value)
        })
        .collect()
}

/// `{{ name }}` replaced by the variable's text (a missing one stays as written, so the
/// server's 404 shows it).
pub fn render(template: &str, vars: &HashMap<String, serde_json::Value>) -> String {
    if !template.contains("{{") {
        return template.to_string();
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = rest[i + 2..i + j].trim();
        match vars.get(name) {
            Some(serde_json::Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str(&rest[i..i + j + 2]),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

fn render_json(v: &serde_json::Value, vars: &HashMap<String, serde_json::Value>) -> serde_json::Value {
    match v {
        serde_json::Value::String(s) => {
            // A whole-value template keeps the variable's type (`"{{ id }}"` → 7).
            let t = s.trim();
            if let Some(name) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
                && !name.contains("{{")
                && let Some(value) = vars.get(name.trim())
            {
                return value.clone();
            }
            serde_json::Value::String(render(s, vars))
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(|x| render_json(x, vars)).collect()),
        serde_json::Value::Object(o) => {
            serde_json::Value::Object(o.iter().map(|(k, x)| (k.clone(), render_json(x, vars))).collect())
        }
        other => other.clone(),
    }
}

/// Sends one request; the outcome, and the values it extracts.
async fn send(run: &Run, req: &Request, vars: &mut HashMap<String, serde_json::Value>) -> Outcome {
    let path = render(&req.path, vars);
    // Header values without a template are borrowed: no copy per request.
    let headers: Vec<(&str, std::borrow::Cow<'_, str>)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            let value = if v.contains("{{") {
                std::borrow::Cow::Owned(render(v, vars))
            } else {
                std::borrow::Cow::Borrowed(v.as_str())
            };
            (k.as_str(), value)
        })
        .collect();
    let body: Option<(Option<&'static str>, Vec<u8>)> = match &req.body {
        None => None,
        Some(Body::Json(v)) => Some((Some("application/json"), render_json(v, vars).to_string().into_bytes())),
        Some(Body::Form(fields)) => {
            let mut enc = form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                enc.append_pair(k, &render(v, vars));
            }
            Some((Some("application/x-www-form-urlencoded"), enc.finish().into_bytes()))
        }
        Some(Body::Text(t)) => Some((None, render(t, vars).into_bytes())),
    };
    let (status, headers, body) = match &run.http {
        Some(pool) => {
            match tokio::time::timeout(run.plan.timeout, pool.send(&req.method, path, &headers, body)).await {
                Err(_) => return Outcome::Error(|e| e.timeout += 1),
                Ok(Err(super::http1::Failure::Connect)) => return Outcome::Error(|e| e.connect += 1),
                Ok(Err(super::http1::Failure::Other)) => return Outcome::Error(|e| e.other += 1),
                Ok(Ok(a)) => (a.status, a.headers, a.body),
            }
        }
        None => {
            let url = format!("{}{path}", run.plan.base_url);
            let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
            let mut rb = run.client.request(method, url).timeout(run.plan.timeout);
            for (k, v) in &headers {
                rb = rb.header(*k, v.as_ref());
            }
            if let Some((content_type, b)) = body {
                if let Some(t) = content_type {
                    rb = rb.header(reqwest::header::CONTENT_TYPE, t);
                }
                rb = rb.body(b);
            }
            let answer = match rb.send().await {
                Ok(a) => a,
                Err(e) if e.is_timeout() => return Outcome::Error(|e| e.timeout += 1),
                Err(e) if e.is_connect() => return Outcome::Error(|e| e.connect += 1),
                Err(_) => return Outcome::Error(|e| e.other += 1),
            };
            let status = answer.status().as_u16();
            let headers = answer.headers().clone();
            match answer.bytes().await {
                Ok(b) => (status, headers, b),
                Err(e) if e.is_timeout() => return Outcome::Error(|e| e.timeout += 1),
                Err(_) => return Outcome::Error(|e| e.other += 1),
            }
        }
    };
    let expected = match &req.expect {
        Some(codes) => codes.contains(&status),
        None => (200..400).contains(&status),
    };
    if !expected {
        return Outcome::Error(|e| e.status += 1);
    }
    for (name, rule) in &req.extract {
        let found: Option<serde_json::Value> = match &rule.kind {
            ExtractKind::Header(h) => headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| serde_json::Value::String(v.to_string())),
            ExtractKind::Regex(re) => std::str::from_utf8(&body).ok().and_then(|text| {
                re.captures(text).and_then(|c| {
                    c.get(1)
                        .or_else(|| c.get(0))
                        .map(|m| serde_json::Value::String(m.as_str().to_string()))
                })
            }),
            ExtractKind::Json(pointer) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.pointer(pointer).cloned()),
        };
        match found {
            Some(v) => {
                vars.insert(name.clone(), v);
            }
            None => return Outcome::Error(|e| e.other += 1),
        }
    }
    Outcome::Ok
}

/// One journey. `due`: when it was to start (open model: latency counts from there).
async fn journey(run: Arc<Run>, j: usize, due: Instant, open: bool, mut rng: Rng) {
    let Some(journey) = run.plan.scenario.journeys.get(j) else {
        return;
    };
    let mut vars = draw(&run.plan.scenario.vars, &mut rng);
    let mut next_due = due;
    let mut n = 0;
    for step in &journey.steps {
        match step {
            Step::Think(d) => {
                tokio::time::sleep(*d).await;
                next_due = Instant::now();
            }
            Step::Request(req) => {
                let sent = Instant::now();
                let from = if open { next_due.min(sent) } else { sent };
                let outcome = send(&run, req, &mut vars).await;
                let done = Instant::now();
                let index = run.step_index[j].get(n).copied().unwrap_or(usize::MAX);
                run.record(index, from, done - from, &outcome);
                n += 1;
                next_due = done;
                if matches!(outcome, Outcome::Error(_)) {
                    // The rest of the journey depends on this answer.
                    return;
                }
            }
        }
    }
}

/// Journeys in proportion to their weights, spread evenly (smooth weighted round robin).
struct Picker {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl Picker {
    fn new(journeys: &[Journey]) -> Self {
        let weights: Vec<i64> = journeys.iter().map(|j| i64::from(j.weight)).collect();
        let total = weights.iter().sum();
        Self {
            current: vec![0; weights.len()],
            weights,
            total,
        }
    }

    fn next(&mut self) -> usize {
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

/// The client every request goes through: a pool per host, no proxy from the environment.
fn client(plan: &Plan) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(4096)
        .connect_timeout(plan.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tend-loadtest/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot make the HTTP client: {e}"))
}

/// What a run has measured so far, for a live view.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Since the start.
    pub elapsed: Duration,
    /// Every request so far.
    pub all: Figures,
    /// The requests due in the last whole second.
    pub last_second: Figures,
}

/// Runs the plan; `progress` is called about once a second with the figures so far.
pub async fn run(
    plan: Plan,
    cancel: tokio_util::sync::CancellationToken,
    progress: impl Fn(&Snapshot),
) -> Result<Results, String> {
    let client = client(&plan)?;
    // Steps of the same name (journey/step) share their figures: a replay of the logs has a
    // journey per URL and a step name per URL group.
    let mut steps: Vec<(String, Figures)> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut step_index = Vec::new();
    for j in &plan.scenario.journeys {
        let mut idx = Vec::new();
        for s in &j.steps {
            if let Step::Request(r) = s {
                let name = format!("{}/{}", j.name, r.name);
                let i = *by_name.entry(name.clone()).or_insert_with(|| {
                    steps.push((name, Figures::default()));
                    steps.len() - 1
                });
                idx.push(i);
            }
        }
        step_index.push(idx);
    }
    let start = Instant::now();
    let run = Arc::new(Run {
        plan: plan.clone(),
        client,
        http: super::http1::Pool::new(&plan.base_url, plan.timeout),
        start,
        shared: Mutex::new(Shared {
            steps,
            seconds: Vec::new(),
        }),
        step_index,
    });
    let end = start + plan.duration;
    let rng = Rng::new();
    let mut tasks = tokio::task::JoinSet::new();
    let journeys: u64;
    let dropped: u64;
    let mut last_progress = start;
    let snapshot = |run: &Run| -> Snapshot {
        let elapsed = start.elapsed();
        let s = match run.shared.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let mut all = Figures::default();
        for (_, f) in &s.steps {
            all.merge(f);
        }
        let last = (elapsed.as_secs() as usize).checked_sub(1);
        Snapshot {
            elapsed,
            all,
            last_second: last.and_then(|i| s.seconds.get(i)).cloned().unwrap_or_default(),
        }
    };
    match plan.model {
        Model::Open { rate } => {
            // Arrival k is due when the ramped rate's integral reaches k.
            let ramp = plan.ramp.as_secs_f64();
            let due_of = move |k: f64| -> f64 {
                if ramp > 0.0 && k < rate * ramp / 2.0 {
                    (2.0 * k * ramp / rate).sqrt()
                } else if ramp > 0.0 {
                    ramp + (k - rate * ramp / 2.0) / rate
                } else {
                    k / rate
                }
            };
            // The arrivals are released by a task of the runtime, not by this caller's thread:
            // on one core a second thread handing each arrival over costs a context switch and
            // the scheduler's slice in latency.
            let releaser = {
                let run = run.clone();
                let cancel = cancel.clone();
                let max_in_flight = plan.max_in_flight;
                let mut picker = Picker::new(&plan.scenario.journeys);
                tokio::spawn(async move {
                    let mut alarm = super::alarm::Alarm::default();
                    let mut tasks = tokio::task::JoinSet::new();
                    let (mut journeys_n, mut dropped_n) = (0u64, 0u64);
                    let mut k = 0.0;
                    loop {
                        let due = start + Duration::from_secs_f64(due_of(k));
                        if due >= end || cancel.is_cancelled() {
                            break;
                        }
                        if due > Instant::now() {
                            tokio::select! {
                                _ = alarm.until(due) => {}
                                _ = cancel.cancelled() => break,
                            }
                        }
                        while tasks.try_join_next().is_some() {}
                        if tasks.len() >= max_in_flight {
                            dropped_n += 1;
                        } else {
                            let j = picker.next();
                            journeys_n += 1;
                            let r = Rng(rng.0 ^ (journeys_n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
                            tasks.spawn(journey(run.clone(), j, due, true, r));
                        }
                        k += 1.0;
                    }
                    // Journeys under way finish (each request has its timeout).
                    while tasks.join_next().await.is_some() {}
                    (journeys_n, dropped_n)
                })
            };
            tokio::pin!(releaser);
            let counts = loop {
                tokio::select! {
                    done = &mut releaser => break done,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if last_progress.elapsed() >= Duration::from_secs(1) {
                    last_progress = Instant::now();
                    progress(&snapshot(&run));
                }
            };
            (journeys, dropped) = counts.map_err(|e| format!("the load generator stopped: {e}"))?;
        }
        Model::Closed { users } => {
            let users = users.max(1);
            // Journeys are counted in one atomic: no wake-up of this loop per journey.
            let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
            for u in 0..users {
                let run = run.clone();
                let cancel = cancel.clone();
                let count = count.clone();
                let delay = plan.ramp.mul_f64(u as f64 / users as f64);
                let mut picker = Picker::new(&plan.scenario.journeys);
                for _ in 0..u {
                    picker.next();
                }
                let mut r = Rng(rng.0 ^ ((u as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
                tasks.spawn(async move {
                    tokio::time::sleep(delay).await;
                    while Instant::now() < end && !cancel.is_cancelled() {
                        let j = picker.next();
                        let seed = Rng(r.0);
                        r.below(2);
                        journey(run.clone(), j, Instant::now(), false, seed).await;
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
            loop {
                tokio::select! {
                    done = tasks.join_next() => if done.is_none() { break },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if last_progress.elapsed() >= Duration::from_secs(1) {
                    last_progress = Instant::now();
                    progress(&snapshot(&run));
                }
            }
            journeys = count.load(std::sync::atomic::Ordering::Relaxed);
            dropped = 0;
        }
    }
    // Journeys under way finish (each request has its timeout).
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().min(plan.duration);
    let shared = match Arc::try_unwrap(run) {
        Ok(run) => match run.shared.into_inner() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        },
        Err(run) => {
            let s = match run.shared.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            Shared {
                steps: s.steps.clone(),
                seconds: s.seconds.clone(),
            }
        }
    };
    Ok(Results {
        steps: shared.steps,
        seconds: shared.seconds,
        journeys,
        dropped,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_weights() {
        let vars: HashMap<String, serde_json::Value> = [
            ("category".to_string(), serde_json::json!("tea")),
            ("id".to_string(), serde_json::json!(7)),
        ]
        .into_iter()
        .collect();
        assert_eq!(render("/product/{{ category }}/{{id}}", &vars), "/product/tea/7");
        assert_eq!(render("/x/{{ missing }}", &vars), "/x/{{ missing }}");
        assert_eq!(
            render_json(&serde_json::json!({"id": "{{ id }}", "c": "c-{{ category }}"}), &vars),
            serde_json::json!({"id": 7, "c": "c-tea"})
        );
        let journeys: Vec<Journey> = [3, 1]
            .iter()
            .map(|w| Journey {
                name: String::new(),
                weight: *w,
                steps: Vec::new(),
            })
            .collect();
        let mut p = Picker::new(&journeys);
        let picks: Vec<usize> = (0..8).map(|_| p.next()).collect();
        assert_eq!(picks.iter().filter(|&&j| j == 0).count(), 6);
    }
}
