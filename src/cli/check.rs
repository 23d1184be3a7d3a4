//! `tend check`: routine fleet checks with exit codes monitoring understands.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::check::{self, Finding, Level, Plan};
use crate::exit::Code;
use crate::ops::{self, Outcome, Request, Session};
use crate::output::{Events, Layout};
use crate::transport::Target;
use clap::Args;
use std::path::{Path, PathBuf};

/// Routine checks of the hosts: 0 ok, 6 warning, 7 critical
///
/// In one SSH channel per host: disk and inode use of `check_disk_paths` (default `/` and
/// `/var`), available memory, load per CPU, the host's clock against the control node's; the
/// shop's services by group (`lb`: nginx, its port and front page, the share of 5xx answers in
/// the last `check_error_window` minutes of the access log; `app`: Tomcat's java, its port and
/// page; `db`: mariadbd and port 3306; `db_replica`: replication running and its lag;
/// `db_primary`: backup_age, the hours since the newest verified backup of the backup store
/// started).
/// Thresholds are inventory variables `check_<name>_warn` and `check_<name>_crit`: disk and
/// inodes (% used, 80/90), memory_available (% left, 15/5), load_per_cpu (2/4),
/// replication_lag (s, 30/300), error_rate (% 5xx, 1/5), clock_offset (s, 1/5), tls_days (days
/// left on the certificate of each `host:port` in `check_tls`, 30/7), backup_age (hours,
/// 26/50). A service or port down, a page not answering 2xx/3xx, a stopped replica, no
/// verified backup or an unreachable host is critical.
///
/// Output: a table per host (human), a `row` per check (JSON), and with `--prometheus FILE`
/// the node_exporter textfile format (written whole, then renamed into place). Exit 0 when
/// every check is ok, 6 when the worst is a warning, 7 when one is critical.
///
/// Examples:
///   tend check -i inventory.yaml
///   tend check db -i inventory.yaml -e check_replication_lag_warn=10 --format json
///   tend check -i inventory.yaml --prometheus /var/lib/node_exporter/textfile/tend.prom
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CheckArgs {
    /// Host pattern: `all`, a group, a host, `web*`, `a:b`, `a:&b`, `a:!b`, `~regex`
    #[arg(default_value = "all")]
    pub pattern: String,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    /// Also write the findings to FILE in Prometheus' textfile format
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputOpts,
}

/// Runs `tend check`.
pub fn run(a: CheckArgs) -> Result<Code, CliError> {
    let (inv, vars) = a.inventory.load()?;
    let chosen = crate::inventory::select(&inv, &a.pattern, a.connection.limit.as_deref())?;
    let backup = match inv
        .group_index("db_primary")
        .and_then(|g| inv.hosts_of_group(g).first().copied())
    {
        Some(p) => Some(crate::backup::settings(&vars, &inv, p)?),
        None => None,
    };
    let login = backup.as_ref().map(|b| b.login.clone());
    let mut plan: Vec<(Target, Plan)> = Vec::new();
    for &h in &chosen {
        plan.push((
            a.connection.target(&inv, &vars, h)?,
            check::plan(&vars, &inv, h, login.as_ref())?,
        ));
    }
    // The backup catalog, read once for the primary's `backup_age`; a store on a host is read
    // over that host's connection.
    let store = backup
        .map(|b| b.store)
        .filter(|_| plan.iter().any(|(_, p)| p.checks_backups()));
    let mut targets: Vec<Target> = plan.iter().map(|(t, _)| t.clone()).collect();
    if let Some(crate::backup::store::Store::Remote { host, .. }) = &store
        && targets.iter().all(|t| &t.name != host)
        && let Some(h) = inv.hosts.iter().position(|x| &x.name == host)
    {
        targets.push(a.connection.target(&inv, &vars, h)?);
    }
    let options = a.connection.connect_options()?;
    let settings = a.output.settings(Layout::Listing);
    let prometheus = a.prometheus.clone();
    block_on(async move {
        let events = Events::start("check", plan.len(), &settings);
        let fleet = a.connection.fleet(options);
        let request = Request::survey("check", a.connection.forks as usize, &targets);
        ops::run(&events, &fleet, request, targets, async |s: &Session<'_>| {
            checks(s, &plan, store.as_ref(), prometheus.as_deref()).await
        })
        .await
    })
}

async fn checks(
    s: &Session<'_>,
    plan: &[(Target, Plan)],
    store: Option<&crate::backup::store::Store>,
    prometheus: Option<&Path>,
) -> Outcome {
    let catalog = match store {
        None => Ok(Vec::new()),
        Some(store) => {
            let host = match store {
                crate::backup::store::Store::Remote { host, .. } => s.host(host),
                crate::backup::store::Store::Local(_) => None,
            };
            match (store, host) {
                (crate::backup::store::Store::Remote { host, .. }, None) => Err(format!("{host} is unreachable")),
                _ => store.list(host).await.map(|(b, _)| b).map_err(|e| e.message()),
            }
        }
    };
    let now = jiff::Timestamp::now().as_second();
    let catalog = &catalog;
    let results = s
        .each(plan, |(t, p)| async move {
            let found = match s.host(&t.name) {
                None => vec![Finding {
                    check: "ssh".into(),
                    value: Some(0.0),
                    detail: "unreachable".into(),
                    level: Level::Critical,
                }],
                Some(h) => match check::run(h, p).await {
                    Ok(f) => f,
                    Err(e) => vec![Finding {
                        check: "ssh".into(),
                        value: Some(0.0),
                        detail: e.message(),
                        level: Level::Critical,
                    }],
                },
            };
            let mut found = found;
            found.extend(p.backup_finding(catalog.as_deref().map_err(Clone::clone), now));
            (t.name.clone(), found)
        })
        .await;
    let mut worst = Level::Ok;
    let mut rows = Vec::new();
    for (host, found) in &results {
        s.touch(host);
        for f in found {
            worst = worst.max(f.level);
            rows.push(serde_json::json!({
                "host": host,
                "check": f.check,
                "level": f.level.as_str(),
                "value": f.value,
                "detail": f.detail,
            }));
        }
    }
    s.events().table(
        "check",
        &[
            ("host", "HOST"),
            ("check", "CHECK"),
            ("level", "LEVEL"),
            ("detail", "DETAIL"),
        ],
        rows,
    );
    if let Some(path) = prometheus
        && let Err(e) = write_prometheus(path, &results)
    {
        s.events().error(crate::output::ErrorEvent::new(format!(
            "cannot write {}: {e}",
            path.display()
        )));
        return Outcome {
            code: Code::Internal,
            record: None,
        };
    }
    Outcome {
        code: match worst {
            Level::Ok => Code::Ok,
            Level::Warning => Code::CheckWarning,
            Level::Critical => Code::CheckCritical,
        },
        record: None,
    }
}

/// The node_exporter textfile: a level (0 ok, 1 warning, 2 critical) and, where there is one,
/// the measured value per host and check; written beside, then renamed, so the exporter never
/// reads half a file.
fn write_prometheus(path: &Path, results: &[(String, Vec<Finding>)]) -> std::io::Result<()> {
    let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let mut text = String::from(
        "# HELP tend_check_level Level of a tend check: 0 ok, 1 warning, 2 critical.\n# TYPE tend_check_level gauge\n",
    );
    for (host, found) in results {
        for f in found {
            let level = match f.level {
                Level::Ok => 0,
                Level::Warning => 1,
                Level::Critical => 2,
            };
            text.push_str(&format!(
                "tend_check_level{{host=\"{}\",check=\"{}\"}} {level}\n",
                label(host),
                label(&f.check)
            ));
        }
    }
    text.push_str("# HELP tend_check_value The value a tend check measured.\n# TYPE tend_check_value gauge\n");
    for (host, found) in results {
        for f in found {
            if let Some(v) = f.value {
                text.push_str(&format!(
                    "tend_check_value{{host=\"{}\",check=\"{}\"}} {v}\n",
                    label(host),
                    label(&f.check)
                ));
            }
        }
    }
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
