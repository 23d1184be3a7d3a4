//! `tend loadtest`: the shop's own load generator, driven by a scenario file and the
//! inventory, with latencies that do not hide a slow server's tail.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::loadtest::engine::{self, Figures, Model, Plan, Results};
use crate::loadtest::replay::Replay;
use crate::loadtest::scenario;
use crate::loadtest::threshold::{self, Threshold, Verdict, ms};
use crate::output::{Event, Events, Layout};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Simulate the shop's users and measure response times and throughput
///
/// Runs the journeys of SCENARIO (a YAML file: `name`, `base_url`, `vars`, `journeys` of
/// weighted `steps` with `method`, `path`, `headers`, `json`/`form`/`body`, `extract`,
/// `expect`, or `think: 1s`, and `thresholds`) against the shop.
///
/// Open model (--rate N/s): N journeys start every second, ramped up over --ramp, whatever the
/// server does; each request's latency counts from when it was due, so a slow server shows its
/// tail instead of slowing the generator down (coordinated omission). Closed model (--users N):
/// N users run journeys back to back, latency counted from the send, as most tools measure; it
/// under-reports a slow server. Results say which model ran.
///
/// Reported per step and overall: requests, errors by kind (connect, timeout, status, other,
/// dropped), achieved rate, and latency p50, p90, p95, p99, p99.9 and max from a mergeable
/// histogram (within 1/32); per second over the run in JSON. Thresholds (the scenario's and
/// each --threshold: `p95 < 300ms`, `p999 < 2s`, `errors < 0.1%`, `errors <= 3`, `rate >= 50/s`)
/// are checked at the end: exit 8 when one broke, 0 when all held. --html FILE writes the
/// results as one self-contained page with latency over time.
///
/// --find-knee raises --rate by --knee-factor each --duration until a threshold breaks and
/// reports the highest rate that held ("max 410 journeys/min at p95 < 500ms"), with the CPU
/// of the inventory's `app` and `db` hosts and MariaDB's running threads at each step (exit 8
/// when even the first rate broke). --from GROUP runs the generator on those hosts instead
/// (tend uploaded once) and merges their histograms.
///
/// --from-logs DAY replays a day of the shop's traffic instead of a scenario: the GET and HEAD
/// requests answered 2xx/3xx in that day's access logs in the log store (`tend logs collect`),
/// each URL as often as it was requested, at the day's busiest minute's rate unless --rate or
/// --users says otherwise.
///
/// While it runs: a live bar at a terminal (figures so far and the last second's), a line every
/// 5 s in a log, a `progress` event each second in JSON.
///
/// The base URL is --base-url, else the scenario's `base_url`, else the first `lb` host of the
/// inventory (-i, TEND_INVENTORY or ./inventory.yaml) on `shop_http_port`.
///
/// Examples:
///   tend loadtest shop-browse.yaml --rate 50/s --duration 30s -i inventory.yaml
///   tend loadtest shop-browse.yaml --users 20 --duration 1m --ramp 10s
///   tend loadtest checkout.yaml --rate 10/s --threshold 'p99 < 800ms' --format json
///   tend loadtest checkout.yaml --rate 5/s --find-knee --duration 20s --threshold 'p95 < 500ms' -i inventory.yaml
///   tend loadtest shop-browse.yaml --rate 2000/s --from app -i inventory.yaml
///   tend loadtest --from-logs 2026-12-02 --duration 5m -i inventory.yaml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LoadtestArgs {
    /// The scenario file
    #[arg(
        value_name = "SCENARIO",
        required_unless_present = "from_logs",
        conflicts_with = "from_logs"
    )]
    pub scenario: Option<PathBuf>,
    /// Replay a day instead of a scenario: the URLs of that day's access logs in the log store
    /// (GET and HEAD answered 2xx/3xx, each URL as often as it was requested), at the day's
    /// busiest minute's rate unless --rate or --users says otherwise
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from_logs: Option<jiff::civil::Date>,
    /// --from-logs: the log store [default: `logs_store_dir`, else ~/.local/state/tend/logs]
    #[arg(long, value_name = "DIR", requires = "from_logs")]
    pub store: Option<PathBuf>,
    /// --from-logs: the access logs' Nginx `log_format` text [default: `report_log_format`,
    /// else the shipped site's]
    #[arg(long, value_name = "TEXT", requires = "from_logs")]
    pub log_format: Option<String>,
    /// Open model: journeys started per second (`50`, `50/s`, `3000/m`)
    #[arg(
        long,
        value_name = "N/s",
        conflicts_with = "users",
        required_unless_present_any = ["users", "from_logs"]
    )]
    pub rate: Option<String>,
    /// Closed model: users running journeys back to back
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..1_000_000))]
    pub users: Option<u64>,
    /// How long journeys are started (`30s`, `2m`)
    #[arg(long, default_value = "30s", value_name = "TIME")]
    pub duration: String,
    /// How long the rate (or the users) take to reach full
    #[arg(long, default_value = "0s", value_name = "TIME")]
    pub ramp: String,
    /// A threshold, added to the scenario's (`p95 < 300ms`, `errors < 0.1%`); repeatable
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Where requests go [default: the scenario's `base_url`, else the first `lb` host]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// A request not answered in this time is a timeout error
    #[arg(long, default_value = "10s", value_name = "TIME")]
    pub timeout: String,
    /// Also write the results as a self-contained HTML page (latency over time)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Run the generator on the hosts of GROUP (a pattern) instead of here: the same tend
    /// binary is uploaded to them (once: it is kept by its checksum), the rate or the users are
    /// split between them, and their histograms are merged exactly
    #[arg(long, value_name = "GROUP")]
    pub from: Option<String>,
    /// Raise --rate step by step (each step --duration long) until a threshold breaks, and
    /// report the highest rate that held, with the app and db hosts' CPU and MariaDB's
    /// running threads at each step (over SSH, when the inventory has them)
    #[arg(long, requires = "rate", conflicts_with = "from")]
    pub find_knee: bool,
    /// --find-knee: each step's rate is the last one's times this
    #[arg(long, default_value_t = 1.5, value_name = "X")]
    pub knee_factor: f64,
    /// --find-knee: at most this many steps
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u64).range(1..100))]
    pub knee_steps: u64,
    /// For a coordinating tend (`--from`): print the raw results, check no threshold
    #[arg(long, hide = true)]
    pub raw_results: bool,
    /// Open model: journeys under way at most; an arrival past it is a `dropped` error
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..1_000_000))]
    pub max_in_flight: u64,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    #[command(flatten)]
    pub output: OutputOpts,
}

fn time_flag(flag: &str, text: &str) -> Result<Duration, CliError> {
    scenario::duration(text).ok_or_else(|| {
        Diagnostic::plain(format!("{flag} `{text}` is not a duration"))
            .with_hint("write e.g. 30s, 2m or 500ms")
            .into()
    })
}

/// `50`, `50/s`, `3000/m` as per second.
fn rate_flag(text: &str) -> Result<f64, CliError> {
    let t = text.trim();
    let (n, per) = match t.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m" | "min")) => (n, 60.0),
        Some(_) => (t, f64::NAN),
        None => (t, 1.0),
    };
    match n.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && per.is_finite() && v / per <= 1_000_000.0 => Ok(v / per),
        _ => Err(Diagnostic::plain(format!("--rate `{text}` is not a rate"))
            .with_hint("write e.g. 50, 50/s or 3000/m (at most 1,000,000/s)")
            .into()),
    }
}

/// The base URL from the inventory: the first `lb` host on `shop_http_port`.
fn from_inventory(inv: &InventoryOpts) -> Result<Option<String>, CliError> {
    if !inv.given() {
        return Ok(None);
    }
    let (inventory, vars) = inv.load()?;
    let Some(h) = inventory
        .group_index("lb")
        .and_then(|g| inventory.hosts_of_group(g).first().copied())
    else {
        return Ok(None);
    };
    let v = crate::settings::HostVars::new(&vars, &inventory, h, &[("shop_http_port", "80")]);
    let address = v
        .optional("ansible_host")?
        .unwrap_or_else(|| inventory.hosts[h].name.clone());
    let port = v.text("shop_http_port")?;
    Ok(Some(if port == "80" {
        format!("http://{address}")
    } else {
        format!("http://{address}:{port}")
    }))
}

/// p50..max in milliseconds.
fn latency(f: &Figures) -> serde_json::Value {
    let q = |x: f64| ms(f.latency.quantile(x));
    json!({
        "p50": q(0.5), "p90": q(0.9), "p95": q(0.95), "p99": q(0.99), "p999": q(0.999),
        "max": ms(f.latency.max()),
    })
}

/// The scenario of the file, or of the day's logs (with what the logs said, for the output).
fn scenario_of(a: &LoadtestArgs) -> Result<(scenario::Scenario, Option<Replay>), CliError> {
    let day = match (&a.scenario, a.from_logs) {
        (Some(path), _) => return Ok((scenario::load(path)?, None)),
        (None, Some(day)) => day,
        (None, None) => return Err(Diagnostic::plain("give a SCENARIO file or --from-logs DAY").into()),
    };
    let logs = super::report::LogSettings::resolve(&a.inventory, a.store.clone(), a.log_format.clone(), None)?;
    let files = crate::report::files_of_day(&logs.store, &day.to_string());
    let opts = crate::report::Options {
        product_pattern: logs.product_pattern,
        format: logs.format,
        ..Default::default()
    };
    let (scenario, replay) = crate::loadtest::replay::read(&files, day, &opts)
        .map_err(|e| anyhow::anyhow!("reading the access logs: {e}"))?
        .ok_or_else(|| {
            Diagnostic::plain(if files.is_empty() {
                format!("the log store {} has no access log of {day}", logs.store.display())
            } else {
                format!("the access logs of {day} have no GET or HEAD request answered 2xx or 3xx")
            })
            .with_hint("`tend logs collect` fills the store; --store names another, --log-format the logs' format")
        })?;
    Ok((scenario, Some(replay)))
}

/// What a replay took from the logs, in words.
fn replay_note(r: &Replay) -> String {
    format!(
        "from the logs of {}: {} GET/HEAD requests answered 2xx/3xx in {} file(s) ({} others left out); {} URL(s){}; busiest minute {:02}:{:02} with {} ({}/s), the day's mean {}/s",
        r.date,
        r.requests,
        r.files,
        r.skipped,
        r.urls,
        if r.urls > crate::loadtest::replay::MAX_URLS {
            format!(
                ", the {} most requested kept ({:.1} % of the requests)",
                crate::loadtest::replay::MAX_URLS,
                r.covered * 100.0
            )
        } else {
            String::new()
        },
        r.busiest.0,
        r.busiest.1,
        r.busiest.2,
        figure(r.peak_rate()),
        figure(r.day_rate),
    )
}

/// A rate with as many decimals as a small one needs (`0.67`, `0.0046`, `12`).
fn figure(x: f64) -> String {
    match x {
        x if x >= 10.0 => format!("{x:.0}"),
        x if x >= 0.1 => format!("{x:.2}"),
        x => format!("{x:.4}"),
    }
}

/// The scenario's thresholds and those of `flag` (`--threshold`).
fn thresholds_of(sc: &scenario::Scenario, flag: &str, extra: &[String]) -> Result<Vec<Threshold>, CliError> {
    let mut thresholds = Vec::new();
    for (text, _) in &sc.thresholds {
        thresholds.push(Threshold::parse(text).map_err(|e| Diagnostic::plain(e).with_hint(threshold::HINT))?);
    }
    for text in extra {
        thresholds.push(
            Threshold::parse(text)
                .map_err(|e| Diagnostic::plain(format!("{flag} `{text}`: {e}")).with_hint(threshold::HINT))?,
        );
    }
    Ok(thresholds)
}

/// `deploy --load-gate`'s settings, checked before the deploy touches a host.
pub fn gate(
    path: &std::path::Path,
    rate: &str,
    duration: &str,
    extra: &[String],
) -> Result<crate::loadtest::gate::Gate, CliError> {
    let sc = scenario::load(path)?;
    let thresholds = thresholds_of(&sc, "--load-gate-threshold", extra)?;
    if thresholds.is_empty() {
        return Err(
            Diagnostic::plain(format!("the load gate {} has no threshold to hold", path.display()))
                .with_hint("add --load-gate-threshold 'p95 < 500ms' (or `thresholds:` in the scenario)")
                .into(),
        );
    }
    let duration = time_flag("--load-gate-duration", duration)?;
    if duration.is_zero() {
        return Err(Diagnostic::plain("--load-gate-duration must be more than 0").into());
    }
    Ok(crate::loadtest::gate::Gate {
        scenario: sc,
        rate: rate_flag(rate).map_err(|_| {
            Diagnostic::plain(format!("--load-gate-rate `{rate}` is not a rate"))
                .with_hint("write e.g. 10, 10/s or 600/m")
        })?,
        duration,
        thresholds,
    })
}

/// The live view of a run: each second, the figures so far and the last second's (a bar at a
/// terminal, a line every 5 s in a log, a `progress` event in JSON).
fn live(events: &Events, duration: Duration, label: String) -> impl Fn(&engine::Snapshot) + use<> {
    let events = events.clone();
    let total = duration.as_secs().max(1);
    move |snap: &engine::Snapshot| {
        let done = snap.elapsed.as_secs();
        let (all, last) = (&snap.all, &snap.last_second);
        let rate = all.requests as f64 / snap.elapsed.as_secs_f64().max(1e-9);
        events.emit(Event::Progress {
            message: format!(
                "{label}{} requests ({rate:.1}/s), {} errors, p50 {} p99 {} ms; last second: {} requests, p99 {} ms",
                all.requests,
                all.errors.total(),
                ms(all.latency.quantile(0.5)),
                ms(all.latency.quantile(0.99)),
                last.requests,
                ms(last.latency.quantile(0.99)),
            ),
            done,
            total,
            line: done.is_multiple_of(5),
        });
    }
}

/// The event stream of a load test, opened with what a replay took from the logs.
fn start(hosts: usize, settings: &crate::output::OutputSettings, intro: Option<String>) -> Events {
    let events = Events::start("loadtest", hosts, settings);
    if let Some(n) = intro {
        events.note(n);
    }
    events
}

/// Runs `tend loadtest`.
pub fn run(a: LoadtestArgs) -> Result<Code, CliError> {
    let (sc, replay) = scenario_of(&a)?;
    let thresholds = thresholds_of(&sc, "--threshold", &a.thresholds)?;
    let model = match (&a.rate, a.users, &replay) {
        (Some(r), _, _) => Model::Open { rate: rate_flag(r)? },
        (None, Some(u), _) => Model::Closed { users: u as usize },
        (None, None, Some(r)) => Model::Open { rate: r.peak_rate() },
        (None, None, None) => {
            return Err(Diagnostic::plain("give --rate N/s (open model) or --users N (closed model)").into());
        }
    };
    let base_url = match a.base_url.clone().or_else(|| sc.base_url.clone()) {
        Some(u) => u,
        None => from_inventory(&a.inventory)?.ok_or_else(|| {
            Diagnostic::plain("no base URL: the scenario has no `base_url` and the inventory no `lb` host")
                .with_hint("give --base-url http://HOST[:PORT], or `base_url:` in the scenario")
        })?,
    };
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(Diagnostic::plain(format!("--base-url `{base_url}` is not an http:// or https:// URL")).into());
    }
    let plan = Plan {
        scenario: sc,
        base_url: base_url.trim_end_matches('/').to_string(),
        model,
        duration: time_flag("--duration", &a.duration)?,
        ramp: time_flag("--ramp", &a.ramp)?,
        timeout: time_flag("--timeout", &a.timeout)?,
        max_in_flight: a.max_in_flight as usize,
    };
    if plan.duration.is_zero() {
        return Err(Diagnostic::plain("--duration must be more than 0").into());
    }
    let settings = a.output.settings(Layout::Listing);
    let html = a.html.clone();
    let intro = replay.as_ref().map(replay_note);
    if let Some(group) = a.from.clone() {
        return distributed(&a, &group, plan, thresholds, settings, intro);
    }
    if a.find_knee {
        return knee(&a, plan, thresholds, settings, intro);
    }
    let raw = a.raw_results;
    block_on(async move {
        let events = start(0, &settings, intro);
        let cancel = crate::transport::interrupt_token();
        let started = crate::output::now_rfc3339();
        let what = match plan.model {
            Model::Open { rate } => format!("open model, {rate} journeys/s"),
            Model::Closed { users } => format!("closed model, {users} users"),
        };
        events.note(format!(
            "{}: {} journey(s) against {} for {:?} ({what})",
            plan.scenario.name,
            plan.scenario.journeys.len(),
            plan.base_url,
            plan.duration
        ));
        let result = engine::run(
            plan.clone(),
            cancel.clone(),
            live(&events, plan.duration, String::new()),
        )
        .await;
        let results = match result {
            Ok(r) => r,
            Err(e) => {
                events.error(crate::output::ErrorEvent::new(e));
                return events.finish(Default::default(), Code::Internal);
            }
        };
        if raw {
            // For the coordinator: the results whole, one JSON line, nothing judged here.
            crate::cli::common::print_out(&format!("{}\n", json!({"event": "results", "results": results})));
            return events.finish(Default::default(), Code::Ok);
        }
        let code = report(
            &events,
            &plan,
            &results,
            &thresholds,
            &started,
            cancel.is_cancelled(),
            html.as_deref(),
        );
        events.finish(Default::default(), code)
    })
}

/// One step of a knee search: its rate, results and the servers' figures.
struct KneeStep {
    rate: f64,
    all: Figures,
    rate_achieved: f64,
    verdicts: Vec<Verdict>,
    servers: Vec<(String, String, f64)>,
}

/// The primary's name and how its client logs in.
type PrimaryLogin = (String, crate::modules::mysql::Login);

/// The hosts whose figures a knee search takes: `app` and `db` members, and the primary's
/// login for its running threads.
fn knee_servers(a: &LoadtestArgs) -> Result<(Vec<crate::transport::Target>, Option<PrimaryLogin>), CliError> {
    if !a.inventory.given() {
        return Ok((Vec::new(), None));
    }
    let (inv, vars) = a.inventory.load()?;
    let mut targets = Vec::new();
    for g in ["app", "db"] {
        if let Some(gi) = inv.group_index(g) {
            for h in inv.hosts_of_group(gi) {
                if targets
                    .iter()
                    .all(|t: &crate::transport::Target| t.name != inv.hosts[h].name)
                {
                    targets.push(a.connection.target(&inv, &vars, h)?);
                }
            }
        }
    }
    let primary = match inv
        .group_index("db_primary")
        .and_then(|g| inv.hosts_of_group(g).first().copied())
    {
        Some(p) => Some((
            inv.hosts[p].name.clone(),
            crate::backup::settings(&vars, &inv, p)?.login,
        )),
        None => None,
    };
    Ok((targets, primary))
}

/// `--find-knee`.
fn knee(
    a: &LoadtestArgs,
    plan: Plan,
    thresholds: Vec<Threshold>,
    settings: crate::output::OutputSettings,
    intro: Option<String>,
) -> Result<Code, CliError> {
    if thresholds.is_empty() {
        return Err(
            Diagnostic::plain("--find-knee needs a threshold to find where the shop gives way")
                .with_hint("add --threshold 'p95 < 500ms' (or `thresholds:` in the scenario)")
                .into(),
        );
    }
    if !(a.knee_factor.is_finite() && a.knee_factor > 1.0) {
        return Err(Diagnostic::plain(format!("--knee-factor {} must be more than 1", a.knee_factor)).into());
    }
    let (targets, primary) = knee_servers(a)?;
    let options = a.connection.connect_options()?;
    let (factor, max_steps) = (a.knee_factor, a.knee_steps as usize);
    block_on(async move {
        let events = start(targets.len(), &settings, intro);
        let fleet = a.connection.fleet(options);
        let request = crate::ops::Request::survey("loadtest", targets.len().max(1), &targets);
        let started = crate::output::now_rfc3339();
        let Model::Open { rate: first } = plan.model else {
            return events.finish(Default::default(), Code::InvalidInput);
        };
        crate::ops::run(
            &events,
            &fleet,
            request,
            targets.clone(),
            async |s: &crate::ops::Session<'_>| {
                let mut steps: Vec<KneeStep> = Vec::new();
                let mut rate = first;
                for _ in 0..max_steps {
                    let step_plan = Plan {
                        model: Model::Open { rate },
                        ..plan.clone()
                    };
                    s.events().note(format!(
                        "step {}: {rate:.2} journeys/s for {:?}",
                        steps.len() + 1,
                        plan.duration
                    ));
                    let hosts: Vec<&crate::transport::Host> = targets.iter().filter_map(|t| s.host(&t.name)).collect();
                    let before = s.each(hosts.iter(), |h| crate::loadtest::knee::cpu_counters(h)).await;
                    let threads = async {
                        tokio::time::sleep(plan.duration / 2).await;
                        let (name, login) = primary.as_ref()?;
                        let db = crate::migrate::db::Db {
                            host: s.host(name)?.clone(),
                            login: login.clone(),
                            database: String::new(),
                        };
                        let set = db
                            .one("threads running", "SHOW GLOBAL STATUS LIKE 'Threads_running'")
                            .await
                            .ok()?;
                        set.first("Value")
                            .and_then(|v| v.parse::<f64>().ok())
                            .map(|v| (name.clone(), v))
                    };
                    let (result, threads) = tokio::join!(
                        engine::run(
                            step_plan,
                            s.cancel.clone(),
                            live(s.events(), plan.duration, format!("{rate:.2}/s: "))
                        ),
                        threads
                    );
                    let after = s.each(hosts.iter(), |h| crate::loadtest::knee::cpu_counters(h)).await;
                    let Ok(results) = result else {
                        return crate::ops::Outcome {
                            code: Code::Internal,
                            record: None,
                        };
                    };
                    let verdicts = threshold::judge(&thresholds, &results);
                    let all = results.overall();
                    let achieved = all.requests as f64 / results.elapsed.as_secs_f64().max(1e-9);
                    let mut servers: Vec<(String, String, f64)> = hosts
                        .iter()
                        .zip(before.iter().zip(&after))
                        .filter_map(|(h, (b, a))| {
                            crate::loadtest::knee::busy_percent((*b)?, (*a)?)
                                .map(|p| (h.name().to_string(), "cpu_percent".to_string(), p))
                        })
                        .collect();
                    if let Some((name, v)) = threads {
                        servers.push((name, "threads_running".into(), v));
                    }
                    let held = verdicts.iter().all(|v| v.ok);
                    steps.push(KneeStep {
                        rate,
                        all,
                        rate_achieved: achieved,
                        verdicts,
                        servers,
                    });
                    if !held || s.cancel.is_cancelled() {
                        break;
                    }
                    rate *= factor;
                }
                let code = knee_report(s.events(), &plan, &steps, &started);
                crate::ops::Outcome { code, record: None }
            },
        )
        .await
    })
}

/// A load test's record: on no host, by this user and control node.
fn loadtest_record(
    started: &str,
    seconds: f64,
    outcome: &str,
    error: Option<String>,
    details: serde_json::Map<String, serde_json::Value>,
) -> crate::output::events::Record {
    let me = crate::ops::lock::Me::current();
    crate::output::events::Record {
        command: "loadtest".into(),
        group: String::new(),
        user: me.user,
        control_host: me.control_host,
        started: started.to_string(),
        finished: crate::output::now_rfc3339(),
        seconds: (seconds * 10.0).round() / 10.0,
        check: false,
        outcome: outcome.into(),
        error,
        hosts: Vec::new(),
        details,
    }
}

/// The knee search's table and record.
fn knee_report(events: &Events, plan: &Plan, steps: &[KneeStep], started: &str) -> Code {
    let rows: Vec<serde_json::Value> = steps
        .iter()
        .map(|st| {
            let l = latency(&st.all);
            json!({
                "rate": (st.rate * 100.0).round() / 100.0,
                "requests": st.all.requests,
                "errors": st.all.errors.total(),
                "p50": l["p50"], "p95": l["p95"], "p99": l["p99"],
                "held": st.verdicts.iter().all(|v| v.ok),
                "servers": st.servers.iter().map(|(h, k, v)| format!("{h} {} {v}", if k == "cpu_percent" { "cpu %" } else { "threads" })).collect::<Vec<_>>().join(", "),
            })
        })
        .collect();
    events.table(
        "knee",
        &[
            ("rate", "RATE/S"),
            ("requests", "REQUESTS"),
            ("errors", "ERRORS"),
            ("p95", "P95 MS"),
            ("p99", "P99"),
            ("held", "HELD"),
            ("servers", "SERVERS"),
        ],
        rows,
    );
    let held: Vec<&KneeStep> = steps.iter().filter(|s| s.verdicts.iter().all(|v| v.ok)).collect();
    let broke = steps.iter().find(|s| s.verdicts.iter().any(|v| !v.ok));
    let max = held.last().map(|s| s.rate);
    // What ran out: the busiest host at the step that broke (else the last step).
    let limit = broke.or(steps.last()).and_then(|s| {
        s.servers
            .iter()
            .filter(|(_, k, _)| k == "cpu_percent")
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map(|(h, _, v)| format!("{h} CPU {v} %"))
    });
    let thresholds: Vec<String> = steps
        .first()
        .map(|s| s.verdicts.iter().map(|v| v.threshold.clone()).collect())
        .unwrap_or_default();
    let summary = match (max, broke) {
        (Some(m), Some(b)) => format!(
            "max {:.2} journeys/s ({:.0}/min) at {}; at {:.2}/s {} broke{}",
            m,
            m * 60.0,
            thresholds.join(", "),
            b.rate,
            b.verdicts
                .iter()
                .filter(|v| !v.ok)
                .map(|v| format!("{} (measured {})", v.threshold, v.value))
                .collect::<Vec<_>>()
                .join(", "),
            limit.as_ref().map_or(String::new(), |l| format!("; busiest: {l}"))
        ),
        (Some(m), None) => format!("every step held, up to {m:.2} journeys/s: raise --knee-steps or --knee-factor"),
        (None, _) => format!(
            "even {:.2} journeys/s broke a threshold: start lower",
            steps.first().map_or(0.0, |s| s.rate)
        ),
    };
    events.note(summary.clone());
    let mut details = serde_json::Map::new();
    details.insert("scenario".into(), json!(plan.scenario.name));
    details.insert("base_url".into(), json!(plan.base_url));
    details.insert("model".into(), json!("open"));
    details.insert(
        "knee".into(),
        json!({
            "max_rate": max,
            "max_per_minute": max.map(|m| (m * 60.0).round()),
            "broke_at": broke.map(|b| b.rate),
            "limit": limit,
            "summary": summary,
            "steps": steps.iter().map(|st| json!({
                "rate": st.rate,
                "achieved": (st.rate_achieved * 100.0).round() / 100.0,
                "requests": st.all.requests,
                "errors": st.all.errors.total(),
                "latency_ms": latency(&st.all),
                "thresholds": st.verdicts,
                "servers": st.servers.iter().map(|(h, k, v)| json!({"host": h, k.as_str(): v})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    );
    let code = if max.is_some() { Code::Ok } else { Code::ThresholdBroken };
    let outcome = match (max, broke) {
        (Some(_), Some(_)) => "knee found",
        (Some(_), None) => "every step held",
        (None, _) => "no rate held",
    };
    let seconds = steps.len() as f64 * plan.duration.as_secs_f64();
    let error = max.is_none().then(|| summary.clone());
    events.emit(Event::Record(Box::new(loadtest_record(
        started, seconds, outcome, error, details,
    ))));
    code
}

/// The plan's share for generator `i` of `n`: the rate divided, the users dealt out.
fn share(model: Model, i: usize, n: usize) -> Model {
    match model {
        Model::Open { rate } => Model::Open { rate: rate / n as f64 },
        Model::Closed { users } => Model::Closed {
            users: users / n + usize::from(i < users % n),
        },
    }
}

/// What a generator host sends back: its results, or why it failed.
async fn generate(
    host: &crate::transport::Host,
    exe: &std::path::Path,
    hashed: &crate::transport::Hashed,
    scenario_text: &[u8],
    plan: &Plan,
    model: Model,
    run_id: &str,
) -> Result<Results, String> {
    use crate::transport::{Content, FileSpec, Input, RemoteCommand, shell::quote};
    let binary = format!("/var/tmp/tend-{}", &hashed.sha256[..16]);
    let mut spec = FileSpec::new(
        &binary,
        Content::File {
            path: exe,
            hashed: hashed.clone(),
        },
    );
    spec.mode = Some(0o755);
    host.upload(&spec, false)
        .await
        .map_err(|e| format!("cannot upload tend to {binary}: {e}"))?;
    let scenario = format!("/var/tmp/tend-loadtest-{run_id}.yaml");
    // The scenario may carry credentials (headers, form fields): owner-only, removed after.
    let mut scenario_spec = FileSpec::new(&scenario, Content::Bytes(scenario_text));
    scenario_spec.mode = Some(0o600);
    host.upload(&scenario_spec, false)
        .await
        .map_err(|e| format!("cannot upload the scenario to {scenario}: {e}"))?;
    let load = match model {
        Model::Open { rate } => format!("--rate {rate}"),
        Model::Closed { users: 0 } => return Ok(empty_results(plan)),
        Model::Closed { users } => format!("--users {users}"),
    };
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    let script = format!(
        "{} loadtest {} {load} --duration {} --ramp {} --timeout {} --max-in-flight {} --base-url {} --raw-results --format json --log-dir /var/tmp/tend-loadtest-runs; rc=$?; rm -f {}; exit $rc",
        quote(&binary),
        quote(&scenario),
        secs(plan.duration),
        secs(plan.ramp),
        secs(plan.timeout),
        plan.max_in_flight,
        quote(&plan.base_url),
        quote(&scenario),
    );
    let out = host
        .run(&RemoteCommand::new(script), Input::None)
        .await
        .map_err(|e| format!("the generator did not run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let results = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "results")
        .and_then(|v| serde_json::from_value::<Results>(v["results"].clone()).ok());
    match results {
        Some(r) if out.success() => Ok(r),
        _ => Err(format!(
            "the generator exited {}: {}",
            out.rc.map_or_else(|| "by a signal".to_string(), |c| c.to_string()),
            crate::transport::tail(&String::from_utf8_lossy(&out.stderr), 5)
        )),
    }
}

/// Results with the plan's steps and nothing measured (a generator given no users).
fn empty_results(plan: &Plan) -> Results {
    Results {
        steps: plan
            .scenario
            .journeys
            .iter()
            .flat_map(|j| {
                j.steps.iter().filter_map(move |s| match s {
                    crate::loadtest::scenario::Step::Request(r) => {
                        Some((format!("{}/{}", j.name, r.name), Figures::default()))
                    }
                    crate::loadtest::scenario::Step::Think(_) => None,
                })
            })
            .collect(),
        seconds: Vec::new(),
        journeys: 0,
        dropped: 0,
        elapsed: Duration::ZERO,
    }
}

/// `--from GROUP`: the generators on the group's hosts, their results merged and judged here.
fn distributed(
    a: &LoadtestArgs,
    group: &str,
    plan: Plan,
    thresholds: Vec<Threshold>,
    settings: crate::output::OutputSettings,
    intro: Option<String>,
) -> Result<Code, CliError> {
    let (inv, vars) = a.inventory.load()?;
    let chosen = crate::inventory::select(&inv, group, a.connection.limit.as_deref())?;
    if chosen.is_empty() {
        return Err(Diagnostic::plain(format!("--from `{group}` matches no host of the inventory")).into());
    }
    let mut targets = Vec::new();
    for &h in &chosen {
        targets.push(a.connection.target(&inv, &vars, h)?);
    }
    // The scenario as read (from its file or the logs), in its file's JSON form.
    let scenario_text = plan.scenario.to_json().to_string().into_bytes();
    let exe = std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find tend's own binary: {e}"))?;
    let options = a.connection.connect_options()?;
    let html = a.html.clone();
    block_on(async move {
        let events = start(targets.len(), &settings, intro);
        let hashed = match crate::transport::hash_file(&exe).await {
            Ok(h) => h,
            Err(e) => {
                events.error(crate::output::ErrorEvent::new(format!(
                    "cannot read {}: {e}",
                    exe.display()
                )));
                return events.finish(Default::default(), Code::Internal);
            }
        };
        let fleet = a.connection.fleet(options);
        let request = crate::ops::Request::survey("loadtest", targets.len(), &targets);
        let started = crate::output::now_rfc3339();
        let run_id = format!("{}", std::process::id());
        let n = targets.len();
        events.note(format!(
            "{}: {} generator(s) on {group} against {} for {:?}",
            plan.scenario.name, n, plan.base_url, plan.duration
        ));
        crate::ops::run(
            &events,
            &fleet,
            request,
            targets.clone(),
            async |s: &crate::ops::Session<'_>| {
                let parts = s
                    .each(targets.iter().enumerate(), |(i, t)| {
                        let (plan, hashed, exe, text, run_id) = (&plan, &hashed, &exe, &scenario_text, &run_id);
                        async move {
                            let Some(host) = s.host(&t.name) else {
                                return (t.name.clone(), Err("unreachable".to_string()));
                            };
                            let r = generate(host, exe, hashed, text, plan, share(plan.model, i, n), run_id).await;
                            (t.name.clone(), r)
                        }
                    })
                    .await;
                let mut merged: Option<Results> = None;
                let mut failed = false;
                for (host, part) in &parts {
                    s.touch(host);
                    match part {
                        Ok(r) => match merged.as_mut() {
                            Some(m) => m.merge(r),
                            None => merged = Some(r.clone()),
                        },
                        Err(e) => {
                            failed = true;
                            s.events()
                                .error(crate::output::ErrorEvent::new(format!("generator {host}: {e}")));
                        }
                    }
                }
                let Some(results) = merged.filter(|_| !failed) else {
                    return crate::ops::Outcome {
                        code: Code::HostFailed,
                        record: None,
                    };
                };
                let code = report(
                    s.events(),
                    &plan,
                    &results,
                    &thresholds,
                    &started,
                    s.cancel.is_cancelled(),
                    html.as_deref(),
                );
                crate::ops::Outcome { code, record: None }
            },
        )
        .await
    })
}

/// The steps' table and the record; the exit code.
fn report(
    events: &Events,
    plan: &Plan,
    r: &Results,
    thresholds: &[Threshold],
    started: &str,
    interrupted: bool,
    html: Option<&std::path::Path>,
) -> Code {
    let all = r.overall();
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let rate = ((all.requests as f64 / secs) * 100.0).round() / 100.0;
    let row = |name: &str, f: &Figures| {
        let l = latency(f);
        json!({
            "step": name, "requests": f.requests, "errors": f.errors.total(),
            "p50": l["p50"], "p90": l["p90"], "p95": l["p95"], "p99": l["p99"], "p999": l["p999"], "max": l["max"],
        })
    };
    let mut rows: Vec<serde_json::Value> = r.steps.iter().map(|(n, f)| row(n, f)).collect();
    rows.push(row("(all)", &all));
    events.table(
        "steps",
        &[
            ("step", "STEP"),
            ("requests", "REQUESTS"),
            ("errors", "ERRORS"),
            ("p50", "P50 MS"),
            ("p95", "P95"),
            ("p99", "P99"),
            ("p999", "P99.9"),
            ("max", "MAX"),
        ],
        rows,
    );
    let verdicts = threshold::judge(thresholds, r);
    for v in verdicts.iter().filter(|v| v.ok) {
        events.note(format!("threshold {}: held (measured {})", v.threshold, v.value));
    }
    let broken_list: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.ok)
        .map(|v| format!("{} (measured {})", v.threshold, v.value))
        .collect();
    let broken = !broken_list.is_empty();
    let error = broken.then(|| format!("threshold broken: {}", broken_list.join(", ")));
    if let Some(e) = &error {
        events.error(crate::output::ErrorEvent::new(e.clone()));
    }
    let mut details = serde_json::Map::new();
    details.insert("scenario".into(), json!(plan.scenario.name));
    details.insert("base_url".into(), json!(plan.base_url));
    details.insert("model".into(), json!(plan.model.name()));
    match plan.model {
        Model::Open { rate } => details.insert("target_rate".into(), json!(rate)),
        Model::Closed { users } => details.insert("users".into(), json!(users)),
    };
    details.insert("requests".into(), json!(all.requests));
    details.insert("errors".into(), json!(all.errors.total()));
    details.insert("errors_by_kind".into(), json!(all.errors));
    details.insert("rate".into(), json!(rate));
    details.insert("journeys".into(), json!(r.journeys));
    details.insert("latency_ms".into(), latency(&all));
    details.insert(
        "steps".into(),
        serde_json::Value::Object(
            r.steps
                .iter()
                .map(|(n, f)| {
                    (
                        n.clone(),
                        json!({"requests": f.requests, "errors": f.errors.total(), "errors_by_kind": f.errors, "latency_ms": latency(f)}),
                    )
                })
                .collect(),
        ),
    );
    details.insert(
        "per_second".into(),
        json!(
            r.seconds
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"second": i, "requests": f.requests, "errors": f.errors.total(), "p50": ms(f.latency.quantile(0.5)), "p99": ms(f.latency.quantile(0.99)), "max": ms(f.latency.max())}))
                .collect::<Vec<_>>()
        ),
    );
    details.insert("thresholds".into(), json!(verdicts));
    let code = if interrupted {
        Code::Interrupted
    } else if broken {
        Code::ThresholdBroken
    } else {
        Code::Ok
    };
    let outcome = if broken { "thresholds broken" } else { "passed" };
    let record = loadtest_record(started, secs, outcome, error, details);
    if let Some(path) = html {
        let page = crate::loadtest::html::render(&serde_json::to_value(&record).unwrap_or_default());
        match std::fs::write(path, page) {
            Ok(()) => events.note(format!("report: {}", path.display())),
            Err(e) => events.warn(format!("cannot write the report {}: {e}", path.display())),
        }
    }
    events.emit(Event::Record(Box::new(record)));
    code
}
