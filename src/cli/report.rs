//! `tend report merge`: the JSON Lines of a job run in shards on several control nodes
//! (`--shard K/N`) joined into one recap with one exit code, for the pipeline step that waits
//! for all of them.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, block_on, print_out};
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
    Daily(Box<DailyArgs>),
}

/// The day's statistics from the collected access logs
///
/// Reads every host's `nginx_access/<DATE>.log.gz` in the log store (`tend logs collect`
/// fills it; the store is --store, else `logs_store_dir`, else ~/.local/state/tend/logs), or
/// the access-log FILEs given (plain or gzip; then nothing is compared). Lines are in Nginx's
/// `combined` format followed by `$request_time` and `"$upstream_addr"` (the shipped site logs
/// them), or in --log-format (Nginx `log_format` text, or the whole directive copied from
/// nginx.conf). The report: requests, unique visitors (address and user agent), status classes,
/// bytes, requests per hour, top URLs, referrers and user agents, 5xx answers by upstream
/// server, clicks per product category and product (--product-pattern), the share of product
/// viewers who reached --checkout-path, latency percentiles (p50, p95, p99, max) overall, per
/// hour and per URL group from a mergeable histogram, the same day's headline a day and a
/// week before, and tend's own deploys, migrations, backups and failovers of the day (from the
/// audit logs in --log-dir).
///
/// With an inventory (-i, TEND_INVENTORY or ./inventory.yaml) that has a `db_primary` group,
/// sales per category come from the database: `report_sales_query` (`{date}` stands for the
/// day; the default reads the shop's orders tables) on the first `db_replica` host, or the
/// primary when there is none or `report_sales_from: primary`. The inventory may also set
/// `report_product_pattern`, `report_checkout_path`, `report_log_format` and `logs_store_dir`
/// (read from the first `lb` host); flags win over them. An empty `report_sales_query` turns
/// sales off.
///
/// With --format json: one object, `requests`, `visitors`, `status` (`1xx`..`5xx`),
/// `latency_ms` (`p50`, `p95`, `p99`, `max`) first, then the sections. --html FILE also writes
/// the report as one self-contained page (inline CSS and SVG charts; it fetches nothing). Exit
/// 4 when there is no log of the day or an input is wrong, 2 or 3 when the sales could not be
/// read (the report is still printed).
///
/// Examples:
///   tend report daily
///   tend report daily -i inventory.yaml --date 2026-12-02 --html day.html
///   tend report daily --format json > day.json
///   tend report daily --date 2026-12-02 --log-format '$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent' access.log.1
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DailyArgs {
    /// Access logs to read instead of the store (plain or .gz), all of --date
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The day, YYYY-MM-DD [default: yesterday, UTC]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<jiff::civil::Date>,
    /// The log store [default: `logs_store_dir`, else ~/.local/state/tend/logs]
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The shop's product pages; `{category}` and `{id}` stand for path segments
    /// [default: `report_product_pattern`, else /product/{category}/{id}]
    #[arg(long, value_name = "PATTERN")]
    pub product_pattern: Option<String>,
    /// The checkout page's path [default: `report_checkout_path`, else /checkout]
    #[arg(long, value_name = "PATH")]
    pub checkout_path: Option<String>,
    /// The access logs' Nginx `log_format` text [default: `report_log_format`, else the
    /// shipped site's: combined, $request_time, "$upstream_addr"]
    #[arg(long, value_name = "TEXT")]
    pub log_format: Option<String>,
    /// Rows in each top list
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u64).range(1..1000))]
    pub top: u64,
    /// Also write the report as a self-contained HTML page
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Directory of tend's audit logs, whose runs are marked [default: ~/.local/state/tend/runs]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
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
        ReportCommand::Daily(args) => daily(*args),
    }
}

/// Where the sales come from: the database host, its settings and the query.
struct SalesSource {
    target: crate::transport::Target,
    db: crate::migrate::Settings,
    query: String,
}

/// `report_*` variables found, by name.
type Found = Vec<(String, String)>;

/// The `report_*` and `logs_store_dir` variables of the inventory's first `lb` host (else its
/// first host).
fn report_vars(inv: &crate::inventory::Inventory, vars: &crate::settings::Variables) -> Result<Found, CliError> {
    let first = inv
        .group_index("lb")
        .and_then(|g| inv.hosts_of_group(g).first().copied());
    let mut found = Vec::new();
    if let Some(h) = first.or(if inv.hosts.is_empty() { None } else { Some(0) }) {
        let v = crate::settings::HostVars::new(vars, inv, h, &[]);
        for name in [
            "report_product_pattern",
            "report_checkout_path",
            "report_log_format",
            "logs_store_dir",
        ] {
            if let Some(x) = v.optional(name)? {
                found.push((name.to_string(), x));
            }
        }
    }
    Ok(found)
}

/// Where the access logs are and how they are read, for `report daily` and
/// `loadtest --from-logs` alike: each flag, else the inventory's variable, else the default.
pub struct LogSettings {
    /// The log store.
    pub store: PathBuf,
    /// The access logs' format.
    pub format: crate::report::access::Format,
    /// The product pages' pattern.
    pub product_pattern: crate::report::Pattern,
    /// The inventory's variables found (the report reads `report_checkout_path` from them).
    found: Found,
}

impl LogSettings {
    /// Resolves the flags against the inventory (when there is one).
    pub fn resolve(
        inventory: &InventoryOpts,
        store: Option<PathBuf>,
        log_format: Option<String>,
        product_pattern: Option<String>,
    ) -> Result<Self, CliError> {
        let found = if inventory.given() {
            let (inv, vars) = inventory.load()?;
            report_vars(&inv, &vars)?
        } else {
            Vec::new()
        };
        Self::from_found(found, store, log_format, product_pattern)
    }

    fn from_found(
        found: Found,
        store: Option<PathBuf>,
        log_format: Option<String>,
        product_pattern: Option<String>,
    ) -> Result<Self, CliError> {
        let var = |name: &str| found.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let pattern = product_pattern
            .or_else(|| var("report_product_pattern"))
            .unwrap_or_else(|| "/product/{category}/{id}".into());
        if !pattern.starts_with('/') || !pattern.contains("{category}") {
            return Err(Diagnostic::plain(format!(
                "product pattern `{pattern}` must be a path with `{{category}}` in it"
            ))
            .with_hint("for example `/product/{category}/{id}` (--product-pattern, `report_product_pattern`)")
            .into());
        }
        let format = match log_format.or_else(|| var("report_log_format")) {
            None => crate::report::access::Format::default(),
            Some(text) => crate::report::access::Format::nginx(&text).map_err(|e| {
                Diagnostic::plain(format!("log format `{text}`: {e}"))
                    .with_hint("give Nginx `log_format` text with $status and $time_local (or $time_iso8601), e.g. '$remote_addr [$time_local] \"$request\" $status'")
            })?,
        };
        let store = store
            .or_else(|| var("logs_store_dir").map(PathBuf::from))
            .unwrap_or_else(crate::logs::default_store);
        Ok(Self {
            store,
            format,
            product_pattern: crate::report::Pattern::new(&pattern),
            found,
        })
    }
}

/// The report's settings from the inventory, when there is one: (variables of the first `lb`
/// host, where sales are read).
fn from_inventory(a: &DailyArgs, date: jiff::civil::Date) -> Result<(Found, Option<SalesSource>), CliError> {
    if !a.inventory.given() {
        return Ok((Vec::new(), None));
    }
    let (inv, vars) = a.inventory.load()?;
    let found = report_vars(&inv, &vars)?;
    let first = |g: &str| inv.group_index(g).and_then(|g| inv.hosts_of_group(g).first().copied());
    let Some(primary) = first("db_primary") else {
        return Ok((found, None));
    };
    let v = crate::settings::HostVars::new(
        &vars,
        &inv,
        primary,
        &[
            ("report_sales_query", crate::report::sales::DEFAULT_QUERY),
            ("report_sales_from", "replica"),
        ],
    );
    let query = v.text("report_sales_query")?;
    if query.trim().is_empty() {
        return Ok((found, None));
    }
    let h = match v.text("report_sales_from")?.as_str() {
        "primary" => primary,
        "replica" => first("db_replica").unwrap_or(primary),
        other => {
            return Err(v
                .error(
                    "report_sales_from",
                    format!("`{other}` is neither `primary` nor `replica`"),
                )
                .into());
        }
    };
    Ok((
        found,
        Some(SalesSource {
            target: a.connection.target(&inv, &vars, h)?,
            db: crate::migrate::settings(&vars, &inv, h, &Default::default()).map_err(|d| {
                d.with_hint("sales are read from the shop's schema: set `migrate_database` (or `shop_db_name`), or `report_sales_query: \"\"` to leave sales out")
            })?,
            query: crate::report::sales::query(&query, date),
        }),
    ))
}

/// The sales rows, read over SSH.
fn read_sales(a: &DailyArgs, src: SalesSource) -> Result<Result<Vec<serde_json::Value>, (Code, String)>, CliError> {
    let options = a.connection.connect_options()?;
    block_on(async move {
        let fleet = a.connection.fleet(options);
        let mut out = Err((Code::Unreachable, format!("{} is unreachable", src.target.name)));
        let target = src.target.clone();
        // The report is the output: the connection's own events are not shown.
        let events = Events::with_monitor(Box::new(crate::output::monitor::Tee(Vec::new())), "report-daily".into());
        let request = crate::ops::Request::survey("report daily", 1, std::slice::from_ref(&target));
        let _ = crate::ops::run(
            &events,
            &fleet,
            request,
            vec![target],
            async |s: &crate::ops::Session<'_>| {
                if let Some(h) = s.host(&src.target.name) {
                    let db = crate::migrate::db::Db {
                        host: h.clone(),
                        login: src.db.login.clone(),
                        database: src.db.database.clone(),
                    };
                    out = crate::report::sales::fetch(&db, &src.query)
                        .await
                        .map_err(|e| (Code::HostFailed, e.to_string()));
                }
                crate::ops::Outcome {
                    code: Code::Ok,
                    record: None,
                }
            },
        )
        .await;
        out
    })
}

fn daily(a: DailyArgs) -> Result<Code, CliError> {
    let date = match a.date {
        Some(d) => d,
        None => jiff::Timestamp::now()
            .strftime("%Y-%m-%d")
            .to_string()
            .parse::<jiff::civil::Date>()
            .and_then(|d| d.yesterday())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let (found, sales) = from_inventory(&a, date)?;
    let logs = LogSettings::from_found(found, a.store.clone(), a.log_format.clone(), a.product_pattern.clone())?;
    let var = |name: &str| logs.found.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let opts = crate::report::Options {
        product_pattern: logs.product_pattern.clone(),
        checkout_path: a
            .checkout_path
            .clone()
            .or_else(|| var("report_checkout_path"))
            .unwrap_or_else(|| "/checkout".into()),
        top: a.top as usize,
        format: logs.format.clone(),
        // Files given by name may hold other days (a rotated log spans midnight).
        only: (!a.files.is_empty()).then_some(date),
    };
    let store = logs.store.clone();
    let source = if a.files.is_empty() {
        crate::report::Source::Store(store.clone())
    } else {
        if let Some(missing) = a.files.iter().find(|f| !f.is_file()) {
            return Err(Diagnostic::plain(format!("{}: no such file", missing.display())).into());
        }
        crate::report::Source::Files(a.files.clone())
    };
    let report =
        crate::report::daily(&source, date, &opts).map_err(|e| anyhow::anyhow!("reading the access logs: {e}"))?;
    let Some(mut report) = report else {
        return Err(
            Diagnostic::plain(format!("the log store {} has no access log of {date}", store.display()))
                .with_hint(
                    "`tend logs collect` fills it; --store names another store, --date another day, FILE an access log",
                )
                .into(),
        );
    };
    let runs_dir = a.log_dir.clone().unwrap_or_else(crate::output::default_log_dir);
    let zone = report["zone_minutes"].as_i64().unwrap_or(0) as i32;
    let mut code = Code::Ok;
    let mut warning = None;
    if let Some(o) = report.as_object_mut() {
        o.insert(
            "tend_runs".into(),
            serde_json::json!(crate::report::records::of_day(&runs_dir, date, zone)),
        );
        if let Some(src) = sales {
            let from = src.target.name.clone();
            match read_sales(&a, src)? {
                Ok(rows) => {
                    o.insert("sales".into(), serde_json::json!(rows));
                    o.insert("sales_from".into(), serde_json::json!(from));
                }
                Err((c, e)) => {
                    code = c;
                    warning = Some(format!("sales per category not read from {from}: {e}"));
                    o.insert("sales_error".into(), serde_json::json!(e));
                }
            }
        }
    }
    if let Some(path) = &a.html {
        std::fs::write(path, crate::report::html::render(&report))
            .map_err(|e| Diagnostic::plain(format!("cannot write {}: {e}", path.display())))?;
    }
    if a.format == Format::Json {
        print_out(&format!("{report}\n"));
    } else {
        print_out(&summary(&report));
    }
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    Ok(code)
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
    if let Some(sales) = r["sales"].as_array() {
        out.push_str(&format!(
            "sales per category (from {}):\n",
            r["sales_from"].as_str().unwrap_or_default()
        ));
        for row in sales {
            out.push_str(&format!(
                "  {:>10}  {:>6} items  {}\n",
                row["revenue"].to_string().trim_matches('"'),
                row["items"].to_string().trim_matches('"'),
                row["category"].as_str().unwrap_or_default()
            ));
        }
    }
    let runs = r["tend_runs"].as_array().cloned().unwrap_or_default();
    if !runs.is_empty() {
        out.push_str("tend's runs:\n");
        for run in runs {
            out.push_str(&format!(
                "  {}  {} (exit {})\n",
                run["start"].as_str().unwrap_or_default(),
                run["command"].as_str().unwrap_or_default(),
                run["exit_code"]
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
