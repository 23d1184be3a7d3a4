//! `tend backup`: backups of the shop's databases into a backup store, as operations on the
//! operations core ([`crate::ops`]).

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::backup::catalog::{self, Backup};
use crate::backup::logical::{self, Source};
use crate::backup::store::Store;
use crate::backup::{self, Settings};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::migrate::db::Db;
use crate::ops::{self, Abort, LockRequest, Outcome, Request, Session};
use crate::output::{Events, Layout, Status};
use crate::transport::Target;
use clap::{Args, Subcommand};
use serde_json::json;
use std::time::Duration;

/// Backups of the shop's databases into a backup store
///
/// The store is a directory on a host of the inventory (`backup_store_host`,
/// `backup_store_dir`, default /var/backups/tend) or on the control node (`backup_store_dir`
/// alone; default ~/.local/state/tend/backups). Backups stream from the database host to the
/// store, compressed with zstd, a SHA-256 of every file computed on the way; each backup has a
/// JSON entry in the store's `catalog/`, written last: a backup that failed part-way is listed
/// as failed, never as good.
///
/// Examples:
///   tend backup run                     a logical backup of a caught-up replica (else the primary)
///   tend backup list --format json
///   tend backup show 20261201T040000Z-logical
#[derive(Debug, Subcommand)]
#[command(verbatim_doc_comment)]
pub enum BackupCommand {
    Run(RunArgs),
    Binlogs(BinlogsArgs),
    List(ListArgs),
    Show(ShowArgs),
}

/// What every backup command takes.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    #[command(flatten)]
    pub output: OutputOpts,
}

/// Take a backup
///
/// Logical (`mariadb-dump --single-transaction` of every database). From a replica (the
/// default when one is running and caught up) its SQL applier is stopped for the backup: the
/// row counts and `CHECKSUM TABLE` of every table, the GTID and the primary's binlog
/// coordinates are those of the dump's own consistent point, and the primary keeps serving.
/// From the primary the coordinates come from the dump (`--master-data=2 --gtid`) and the
/// tables are counted just before.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// The kind of backup
    #[arg(long, value_parser = ["logical"], default_value = "logical")]
    pub kind: String,
    /// The database host to back up [default: a caught-up host of `db_replica`, else the
    /// `db_primary` host]
    #[arg(long, value_name = "HOST")]
    pub from: Option<String>,
    /// Wait this long for the lock when another run holds it (default: fail at once, exit 5)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// Ship the primary's binlogs to the store
///
/// Appends to the store what the primary wrote since the last run: closed binlog files whole,
/// the current one up to the end of its last committed transaction. Idempotent and cheap: run
/// it from cron every minute. The store's index (binlogs/<host>/index.json) records each
/// file's size, SHA-256 and GTID range, the moment up to which every committed transaction is
/// shipped, and any gap (a file the server purged before it was shipped): a backup rolls
/// forward over the files after it up to the first gap.
///
/// Example (crontab):
///   * * * * *  tend backup binlogs -i /etc/tend/inventory.yaml --format json >> /var/log/tend-binlogs.log
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct BinlogsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Wait this long for another shipping run to finish (default: exit 5 at once)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// List the backups of the store
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
}

/// Show one backup's catalog entry
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub common: Common,
    /// The backup id (see `tend backup list`)
    pub id: String,
}

/// Hosts and settings resolved before connecting.
pub(super) struct Resolved {
    /// Candidates in order of preference (replicas first), with whether each is a replica.
    pub sources: Vec<(Target, bool)>,
    /// The primary, where the lock lives.
    pub primary: Target,
    /// The replicas.
    pub replicas: Vec<Target>,
    /// The balancer with the database proxy, and its address as the primary sees it.
    pub lb: Option<(Target, String)>,
    pub settings: Settings,
    pub store_host: Option<Target>,
}

pub(super) fn resolve(c: &Common, from: Option<&str>) -> Result<Resolved, CliError> {
    let (inv, vars) = c.inventory.load()?;
    let group_hosts = |g: &str| -> Vec<usize> { inv.group_index(g).map(|i| inv.hosts_of_group(i)).unwrap_or_default() };
    let primaries = group_hosts("db_primary");
    let Some(&p) = primaries.first() else {
        return Err(Diagnostic::plain("the inventory has no `db_primary` host")
            .with_hint("backups need the database group of the shop inventory (`db_primary`, `db_replica`)")
            .into());
    };
    let replicas = group_hosts("db_replica");
    let conn = &c.connection;
    let sources = match from {
        Some(name) => {
            let Some(h) = inv.hosts.iter().position(|x| x.name == name) else {
                let mut d = Diagnostic::plain(format!("--from `{name}` is not a host of the inventory"));
                if let Some(m) = crate::diagnostic::did_you_mean(name, inv.hosts.iter().map(|x| x.name.as_str())) {
                    d = d.with_hint(format!("did you mean `--from {m}`?"));
                }
                return Err(d.into());
            };
            if !primaries.contains(&h) && !replicas.contains(&h) {
                return Err(Diagnostic::plain(format!(
                    "--from `{name}` is not a database host (`db_primary`, `db_replica`)"
                ))
                .into());
            }
            vec![(conn.target(&inv, &vars, h)?, replicas.contains(&h))]
        }
        None => {
            let mut s = Vec::new();
            for &r in &replicas {
                s.push((conn.target(&inv, &vars, r)?, true));
            }
            s.push((conn.target(&inv, &vars, p)?, false));
            s
        }
    };
    let settings = backup::settings(&vars, &inv, p)?;
    let store_host = match &settings.store {
        Store::Remote { host, .. } => match inv.hosts.iter().position(|x| &x.name == host) {
            Some(h) => Some(conn.target(&inv, &vars, h)?),
            None => None,
        },
        Store::Local(_) => None,
    };
    let lb = match group_hosts("lb").first() {
        Some(&h) => {
            let t = conn.target(&inv, &vars, h)?;
            let address = match &t.kind {
                crate::transport::ConnectionKind::Ssh(s) => s.address.clone(),
                crate::transport::ConnectionKind::Local => "127.0.0.1".into(),
            };
            Some((t, address))
        }
        None => None,
    };
    let replicas = replicas
        .iter()
        .map(|&r| conn.target(&inv, &vars, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Resolved {
        sources,
        replicas,
        lb,
        primary: conn.target(&inv, &vars, p)?,
        settings,
        store_host,
    })
}

/// Runs `tend backup ...`.
pub fn run(cmd: BackupCommand) -> Result<Code, CliError> {
    match cmd {
        BackupCommand::Run(a) => backup_run(a),
        BackupCommand::Binlogs(a) => binlogs(a),
        BackupCommand::List(a) => listing(&a.common, None),
        BackupCommand::Show(a) => {
            if !catalog::valid_id(&a.id) {
                return Err(Diagnostic::plain(format!("`{}` is not a backup id", a.id))
                    .with_hint("`tend backup list` shows the ids")
                    .into());
            }
            listing(&a.common, Some(a.id.clone()))
        }
    }
}

fn backup_run(a: RunArgs) -> Result<Code, CliError> {
    let r = resolve(&a.common, a.from.as_deref())?;
    let options = a.common.connection.connect_options()?;
    let settings = a.common.output.settings(Layout::Steps);
    block_on(async move {
        let mut targets: Vec<Target> = r.sources.iter().map(|(t, _)| t.clone()).collect();
        targets.extend(r.store_host.iter().cloned());
        let events = Events::start("backup run", targets.len(), &settings);
        if let Some(p) = &r.settings.login.password {
            events.secret(p);
        }
        let fleet = a.common.connection.fleet(options);
        let request = Request {
            command: "backup run".into(),
            reason: format!("{} backup", a.kind),
            lock: Some(LockRequest {
                name: "backup".into(),
                host: r.primary.clone(),
                ttl: Duration::from_secs(120),
                wait: Duration::from_secs(a.lock_wait),
            }),
            check: false,
            forks: a.common.connection.forks as usize,
        };
        ops::run(&events, &fleet, request, targets, async |s: &Session<'_>| {
            let started = ops::Clock::start();
            let mut chosen = None;
            for (t, replica) in &r.sources {
                let Some(h) = s.host(&t.name) else { continue };
                let db = Db {
                    host: h.clone(),
                    login: r.settings.login.clone(),
                    database: "mysql".into(),
                };
                let usable = if !*replica || r.sources.len() == 1 {
                    Ok(true)
                } else {
                    logical::replica_status(&db).await.map(|(_, caught_up)| caught_up)
                };
                match usable {
                    Ok(true) => {
                        chosen = Some(Source {
                            db,
                            replica: *replica,
                            primary: r.primary.name.clone(),
                        });
                        break;
                    }
                    Ok(false) => s.events().warn(format!(
                        "{}: the replica is not running or not caught up; not backed up from",
                        t.name
                    )),
                    Err(e) => s.events().warn(format!(
                        "{}: cannot read the replica's status ({}); not backed up from",
                        t.name,
                        e.message()
                    )),
                }
            }
            let Some(src) = chosen else {
                return s.end(Err(Abort::new(Code::HostFailed, "no database host to back up from")));
            };
            s.touch(src.db.host.name());
            let store_host = r.store_host.as_ref().and_then(|t| s.host(&t.name));
            let mut salt = [0u8; 3];
            let _ = getrandom::fill(&mut salt);
            let id = format!(
                "{}-{}-{}-{}",
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
                a.kind,
                src.db.host.name(),
                hex::encode(salt)
            );
            s.events().note(format!(
                "{} backup {id} of {}{} into {}",
                a.kind,
                src.db.host.name(),
                if src.replica { " (replica)" } else { "" },
                r.settings.store.describe()
            ));
            let result = logical::run(s, &src, &r.settings.store, store_host, &id).await;
            record(s, started, (&src, &id), result)
        })
        .await
    })
}

fn binlogs(a: BinlogsArgs) -> Result<Code, CliError> {
    let r = resolve(&a.common, None)?;
    let options = a.common.connection.connect_options()?;
    let settings = a.common.output.settings(Layout::Steps);
    block_on(async move {
        let mut targets = vec![r.primary.clone()];
        targets.extend(r.store_host.iter().cloned());
        let events = Events::start("backup binlogs", targets.len(), &settings);
        if let Some(p) = &r.settings.login.password {
            events.secret(p);
        }
        let fleet = a.common.connection.fleet(options);
        let request = Request {
            command: "backup binlogs".into(),
            reason: String::new(),
            lock: None,
            check: false,
            forks: a.common.connection.forks as usize,
        };
        ops::run(&events, &fleet, request, targets, async |s: &Session<'_>| {
            let clock = ops::Clock::start();
            let Some(h) = s.host(&r.primary.name) else {
                return s.end(Ok(Code::Unreachable));
            };
            let db = Db {
                host: h.clone(),
                login: r.settings.login.clone(),
                database: "mysql".into(),
            };
            let store_host = r.store_host.as_ref().and_then(|t| s.host(&t.name));
            let t = std::time::Instant::now();
            let shipped = match crate::backup::binlogs::ship_locked(
                &db,
                (&r.settings.store, store_host),
                Duration::from_secs(a.lock_wait),
                &s.cancel,
            )
            .await
            {
                Ok(x) => x,
                Err(abort) => return s.end(Err(abort)),
            };
            let index = &shipped.index;
            s.step(
                crate::output::StepEvent::new(
                    &r.primary.name,
                    "ship",
                    if shipped.bytes > 0 { Status::Changed } else { Status::Ok },
                    format!(
                        "{} bytes in {} files to {}; every transaction before {} is shipped",
                        shipped.bytes,
                        shipped.files.len(),
                        r.settings.store.describe(),
                        crate::backup::replay::show_time(index.covered_until)
                    ),
                )
                .took(t.elapsed()),
            );
            for (a, b) in &shipped.new_gaps {
                s.events().warn(format!(
                    "gap: the server purged the binlogs between {a} and {b} before they were shipped; backups before the gap cannot roll forward past it"
                ));
            }
            let mut details = serde_json::Map::new();
            details.insert("shipped_bytes".into(), shipped.bytes.into());
            details.insert(
                "shipped".into(),
                shipped.files.iter().map(|(n, b)| json!({"name": n, "bytes": b})).collect(),
            );
            details.insert("covered_until".into(), crate::backup::replay::show_time(index.covered_until).into());
            details.insert("gtid_end".into(), index.files.last().map(|f| f.gtid_end.clone()).unwrap_or_default().into());
            details.insert("files".into(), index.files.len().into());
            details.insert("gaps".into(), json!(index.gaps));
            let status = if shipped.bytes > 0 { Status::Changed } else { Status::Ok };
            clock.one_host(s, ("backup binlogs", "db_primary", &r.primary.name), Ok(("shipped", status, details)))
        })
        .await
    })
}

fn record(s: &Session<'_>, clock: ops::Clock, (src, id): (&Source, &str), result: Result<Backup, Abort>) -> Outcome {
    let with_source = |mut details: serde_json::Map<String, serde_json::Value>| {
        details.remove("host");
        details.insert("source".into(), src.db.host.name().into());
        details
    };
    let result = match result {
        Ok(b) => {
            let details = serde_json::to_value(&b)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            Ok(("backed_up", Status::Changed, with_source(details)))
        }
        Err(abort) => {
            let mut details = serde_json::Map::new();
            details.insert("id".into(), id.into());
            details.insert("state".into(), "failed".into());
            Err((abort, with_source(details)))
        }
    };
    clock.one_host(s, ("backup run", "backup", src.db.host.name()), result)
}

/// `list` (every backup) and `show ID` (one, whole).
fn listing(c: &Common, id: Option<String>) -> Result<Code, CliError> {
    let r = resolve(c, None)?;
    let options = c.connection.connect_options()?;
    let settings = c.output.settings(Layout::Listing);
    block_on(async move {
        let targets: Vec<Target> = r.store_host.iter().cloned().collect();
        let events = Events::start(
            if id.is_some() { "backup show" } else { "backup list" },
            targets.len(),
            &settings,
        );
        let fleet = c.connection.fleet(options);
        let request = Request {
            command: "backup list".into(),
            reason: String::new(),
            lock: None,
            check: false,
            forks: c.connection.forks as usize,
        };
        ops::run(&events, &fleet, request, targets, async |s: &Session<'_>| {
            let store_host = r.store_host.as_ref().and_then(|t| s.host(&t.name));
            let (backups, unreadable) = match r.settings.store.list(store_host).await {
                Ok(x) => x,
                Err(e) => return s.end(Err(Abort::step("cannot read the catalog", &e))),
            };
            for u in unreadable {
                s.events().warn(format!("catalog entry {u} cannot be read; left out"));
            }
            if let Some(id) = &id {
                let Some(b) = backups.iter().find(|b| &b.id == id) else {
                    return s.end(Err(Abort::new(
                        Code::InvalidInput,
                        format!("no backup `{id}` in {}", r.settings.store.describe()),
                    )
                    .hint("`tend backup list` shows the ids")));
                };
                let row = serde_json::to_value(b).unwrap_or_default();
                s.events().table(
                    "backup",
                    &[("id", "ID"), ("state", "STATE"), ("gtid", "GTID"), ("bytes", "BYTES")],
                    vec![row],
                );
                return s.end(Ok(Code::Ok));
            }
            let rows = backups
                .iter()
                .map(|b| {
                    json!({
                        "id": b.id,
                        "kind": b.kind,
                        "state": b.state,
                        "host": b.host,
                        "gtid": b.gtid,
                        "bytes": b.bytes,
                        "seconds": b.seconds,
                        "tables": b.tables.len(),
                    })
                })
                .collect();
            s.events().table(
                "backups",
                &[
                    ("id", "ID"),
                    ("kind", "KIND"),
                    ("state", "STATE"),
                    ("host", "FROM"),
                    ("gtid", "GTID"),
                    ("bytes", "BYTES"),
                    ("seconds", "SECONDS"),
                ],
                rows,
            );
            s.end(Ok(Code::Ok))
        })
        .await
    })
}
