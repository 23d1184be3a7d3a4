//! `tend report merge`: the JSON Lines of a job run in shards on several control nodes
//! (`--shard K/N`) joined into one recap with one exit code, for the pipeline step that waits
//! for all of them.

use super::CliError;
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::output::{Events, Format, HostCounts, Layout, OutputSettings};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reports made from what tend has recorded
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    Merge(MergeArgs),
    Daily(DailyArgs),
}

/// The day's statistics from the collected access logs
///
/// Reads every host's `nginx_access/<DATE>.log.gz` in the log store (`tend logs collect`
/// fills it; the store is --store, else ~/.local/state/tend/logs) in Nginx's `combined` format
/// followed by `$request_time` and `"$upstream_addr"` (the shipped site logs them): requests,
/// unique visitors (address and user agent), status classes, bytes, requests per hour, top
/// URLs, referrers and user agents, 5xx answers by upstream server, clicks per product category
/// and product (--product-pattern), the share of product viewers who reached --checkout-path,
/// latency percentiles (p50, p95, p99, max) overall, per hour and per URL group from a
/// mergeable histogram, and the same day's headline a day and a week before.
///
/// With --format json: one object, `requests`, `visitors`, `status` (`1xx`..`5xx`),
/// `latency_ms` (`p50`, `p95`, `p99`, `max`) first, then the sections. Exit 4 when the store
/// has no log of the day.
///
/// Examples:
///   tend report daily
///   tend report daily --date 2026-12-02 --format json > day.json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DailyArgs {
    /// The day, YYYY-MM-DD [default: yesterday, UTC]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<jiff::civil::Date>,
    /// The log store [default: ~/.local/state/tend/logs]
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The shop's product pages; `{category}` and `{id}` stand for path segments
    #[arg(long, default_value = "/product/{category}/{id}", value_name = "PATTERN")]
    pub product_pattern: String,
    /// The checkout page's path
    #[arg(long, default_value = "/checkout", value_name = "PATH")]
    pub checkout_path: String,
    /// Rows in each top list
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u64).range(1..1000))]
    pub top: u64,
    /// Output format: `human` or `json` (one JSON object on stdout)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Join the JSON Lines of a sharded job into one recap
///
/// Each FILE is the `--format json` output of one shard (`tend run|exec --shard K/N`). The
/// hosts' counts are put together in one recap; the exit code is the one a single run over all
/// the hosts would have had: 2 when a host failed, 3 when one was unreachable, 99 when a shard
/// was interrupted or its output has no recap (it did not finish). A host reported by two files
/// (overlapping shards) is an input error (4).
///
/// Examples:
///   tend report merge shard-*.jsonl
///   tend report merge --format json a.jsonl b.jsonl > fleet.jsonl
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MergeArgs {
    /// The shards' JSON Lines files
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format: `human` or `json` (JSON Lines on stdout)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// What one shard's file says.
struct ShardRecap {
    hosts: BTreeMap<String, HostCounts>,
    duration_ms: u64,
    exit_code: u8,
}

/// Runs `tend report ...`.
pub fn run(cmd: ReportCommand) -> Result<Code, CliError> {
    match cmd {
        ReportCommand::Merge(args) => merge(args),
        ReportCommand::Daily(args) => daily(args),
    }
}

fn daily(a: DailyArgs) -> Result<Code, CliError> {
    if !a.product_pattern.starts_with('/') || !a.product_pattern.contains("{category}") {
        return Err(Diagnostic::plain(format!(
            "--product-pattern `{}` must be a path with `{{category}}` in it",
            a.product_pattern
        ))
        .with_hint("for example `/product/{category}/{id}`")
        .into());
    }
    let date = match a.date {
        Some(d) => d,
        None => jiff::Timestamp::now()
            .strftime("%Y-%m-%d")
            .to_string()
            .parse::<jiff::civil::Date>()
            .and_then(|d| d.yesterday())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let store = a.store.clone().unwrap_or_else(crate::logs::default_store);
    let opts = crate::report::Options {
        product_pattern: a.product_pattern.clone(),
        checkout_path: a.checkout_path.clone(),
        top: a.top as usize,
    };
    let report = crate::report::daily(&store, date, &opts)
        .map_err(|e| anyhow::anyhow!("reading the log store {}: {e}", store.display()))?;
    let Some(report) = report else {
        return Err(
            Diagnostic::plain(format!("the log store {} has no access log of {date}", store.display()))
                .with_hint("`tend logs collect` fills it; --store names another store, --date another day")
                .into(),
        );
    };
    if a.format == Format::Json {
        println!("{report}");
    } else {
        print!("{}", summary(&report));
    }
    Ok(Code::Ok)
}

/// The report for people: the headline, then each section as a short list.
fn summary(r: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let lat = |v: &serde_json::Value| {
        format!(
            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
            v["p50"], v["p95"], v["p99"], v["max"]
        )
    };
    let mut out = format!(
        "{}: {} requests from {} visitors ({} host(s)), {} bytes\n",
        r["date"].as_str().unwrap_or_default(),
        n(&r["requests"]),
        n(&r["visitors"]),
        n(&r["hosts"]),
        n(&r["bytes"])
    );
    out.push_str(&format!(
        "status: 2xx {}, 3xx {}, 4xx {}, 5xx {}\nlatency: {}\n",
        n(&r["status"]["2xx"]),
        n(&r["status"]["3xx"]),
        n(&r["status"]["4xx"]),
        n(&r["status"]["5xx"]),
        lat(&r["latency_ms"])
    ));
    for (key, title) in [("previous_day", "day before"), ("week_before", "a week before")] {
        let c = &r["compare"][key];
        if !c.is_null() {
            out.push_str(&format!(
                "{title} ({}): {} requests, {} visitors, p95 {} ms\n",
                c["date"].as_str().unwrap_or_default(),
                n(&c["requests"]),
                n(&c["visitors"]),
                c["latency_ms"]["p95"]
            ));
        }
    }
    let c = &r["conversion"];
    out.push_str(&format!(
        "conversion: {} of {} product viewers reached checkout\n",
        n(&c["reached_checkout"]),
        n(&c["product_viewers"])
    ));
    for (key, title, name, count) in [
        ("categories", "clicks per category", "category", "clicks"),
        ("top_urls", "top URLs", "url", "requests"),
        ("top_referrers", "top referrers", "referrer", "requests"),
        ("top_agents", "top user agents", "agent", "requests"),
        ("upstream_errors", "5xx by upstream", "upstream", "requests"),
    ] {
        let rows = r[key].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("{title}:\n"));
        for row in rows {
            out.push_str(&format!(
                "  {:>8}  {}\n",
                n(&row[count]),
                row[name].as_str().unwrap_or_default()
            ));
        }
    }
    out.push_str("requests per hour:\n");
    for h in r["hours"].as_array().cloned().unwrap_or_default() {
        if n(&h["requests"]) > 0 {
            out.push_str(&format!(
                "  {:02}:00  {:>8}  {}\n",
                n(&h["hour"]),
                n(&h["requests"]),
                lat(&h["latency_ms"])
            ));
        }
    }
    out
}

/// The last recap of `path`, or `None` when the shard's output has none.
fn read_recap(path: &Path) -> Result<Option<ShardRecap>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostic::plain(format!("{}: {e}", path.display())))?;
    let mut recap = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Diagnostic::plain(format!("{}:{}: not a JSON line of tend: {e}", path.display(), i + 1))
                .with_hint("give the `--format json` output of `tend run` or `tend exec`")
        })?;
        if v["event"] != "recap" {
            continue;
        }
        let hosts = serde_json::from_value(v["hosts"].clone()).map_err(|e| {
            Diagnostic::plain(format!(
                "{}:{}: a recap without host counts: {e}",
                path.display(),
                i + 1
            ))
        })?;
        recap = Some(ShardRecap {
            hosts,
            duration_ms: v["duration_ms"].as_u64().unwrap_or(0),
            exit_code: v["exit_code"].as_u64().map_or(1, |c| c.min(255) as u8),
        });
    }
    Ok(recap)
}

fn merge(args: MergeArgs) -> Result<Code, CliError> {
    let mut shards = Vec::new();
    for path in &args.files {
        shards.push((path, read_recap(path)?));
    }
    let mut hosts: BTreeMap<String, HostCounts> = BTreeMap::new();
    let mut from: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for (path, recap) in &shards {
        for (name, counts) in recap.iter().flat_map(|r| &r.hosts) {
            if let Some(first) = from.insert(name.clone(), path) {
                return Err(Diagnostic::plain(format!(
                    "host `{name}` is in {} and in {}: the shards overlap",
                    first.display(),
                    path.display()
                ))
                .with_hint("run every shard with the same N and each K once (--shard 1/N .. N/N)")
                .into());
            }
            hosts.insert(name.clone(), counts.clone());
        }
    }
    let settings = OutputSettings {
        format: args.format,
        layout: Layout::Hosts,
        verbose: 0,
        diff: false,
        log_dir: None,
    };
    let events = Events::start("report merge", hosts.len(), &settings);
    let mut interrupted = false;
    let mut worst_other: Option<u8> = None;
    for (path, recap) in &shards {
        match recap {
            None => {
                interrupted = true;
                events.warn(format!(
                    "{} has no recap: its shard did not finish (killed, or still running)",
                    path.display()
                ));
            }
            Some(r) => {
                events.note(format!(
                    "{}: {} hosts, exit {}",
                    path.display(),
                    r.hosts.len(),
                    r.exit_code
                ));
                interrupted |= r.exit_code == Code::Interrupted as u8;
                // A shard that ended for another reason than its hosts (bad input, a lock,
                // an internal error) decides the code, as it would have ended a single run.
                if matches!(r.exit_code, 1 | 4 | 5) {
                    worst_other = worst_other.max(Some(r.exit_code));
                }
            }
        }
    }
    let code = match worst_other {
        _ if interrupted => Code::Interrupted,
        Some(4) => Code::InvalidInput,
        Some(5) => Code::Locked,
        Some(_) => Code::Internal,
        None => Code::of(
            hosts.values().any(|c| c.failed > 0),
            hosts.values().any(|c| c.unreachable > 0),
            false,
        ),
    };
    let longest = shards
        .iter()
        .filter_map(|(_, r)| r.as_ref().map(|r| r.duration_ms))
        .max()
        .unwrap_or(0);
    Ok(events.finish_after(hosts, code, longest))
}
