//! `tend backup`: backups of the shop's databases into a backup store, as operations on the
//! operations core ([`crate::ops`]).

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::backup::catalog::{self, Backup};
use crate::backup::store::Store;
use crate::backup::take::{self, Source};
use crate::backup::{self, Settings};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::failover::{self, Member};
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
    Verify(VerifyArgs),
    Status(StatusArgs),
    Prune(PruneArgs),
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
/// Logical (`mariadb-dump --single-transaction` of every database: SQL, loaded into a running
/// server) or physical (`mariabackup --backup --stream`: the server's files, faster to
/// restore on large databases). Either is compressed with zstd on the source and streamed to
/// the store with its SHA-256. A physical backup is stored as taken and prepared where it is
/// restored (`mariabackup --prepare` on the database host, whose mariabackup matches the
/// server; the store needs no MariaDB tools), so every verification proves the prepare too.
///
/// From a replica (the default when one is running and caught up) its SQL applier is stopped
/// for the backup: the row counts and `CHECKSUM TABLE` of every table, the GTID and the
/// primary's binlog coordinates are those of the backup's own consistent point, and the
/// primary keeps serving. From the primary the coordinates come from the tool
/// (`--master-data=2`, mariabackup's binlog position) and the tables are counted as it runs.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// The kind of backup
    #[arg(long, value_enum, default_value = "logical")]
    pub kind: KindArg,
    /// The database host to back up [default: a caught-up host of `db_replica`, else the
    /// `db_primary` host]
    #[arg(long, value_name = "HOST")]
    pub from: Option<String>,
    /// Wait this long for the lock when another run holds it (default: fail at once, exit 5)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// mariadb-dump
    Logical,
    /// mariabackup
    Physical,
}

impl From<KindArg> for catalog::Kind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Logical => Self::Logical,
            KindArg::Physical => Self::Physical,
        }
    }
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
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// Prove a backup by restoring it into a scratch server
///
/// Starts a scratch MariaDB server (its own datadir under /var/tmp and port
/// `backup_verify_port`, default 3399; the running server is never touched) on
/// `backup_verify_host` (default: the first replica, else the primary), checks the backup's
/// files against their SHA-256, loads it as `tend restore` would, runs CHECK TABLE on every
/// table, compares row counts and CHECKSUM TABLE with the catalog, rolls it forward over the
/// shipped binlogs to their end and checks the GTID reached, then removes the scratch server.
/// The result and the measured restore time go into the backup's catalog entry; a backup
/// verified once is not verified again unless --again. Exit 2 when the backup is bad.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: Common,
    /// The backup id [default: the newest complete backup]
    pub id: Option<String>,
    /// The host of the scratch server (a host with MariaDB installed)
    #[arg(long, value_name = "HOST")]
    pub on: Option<String>,
    /// Verify even when it was verified before
    #[arg(long)]
    pub again: bool,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// Say how old the newest verified backup is and what can be restored today
///
/// Prints the newest backup, the newest verified one and its age, and the point-in-time
/// window covered today (from the oldest backup that rolls forward to the newest shipped
/// transaction). Exits 2 when there is no verified backup or the newest is older than
/// `backup_max_age` (default 26h): for monitoring.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
}

/// Delete backups and binlogs that retention no longer keeps
///
/// Keeps the newest complete backup of each of the last `backup_keep_daily` days (default 7),
/// `backup_keep_weekly` ISO weeks (4) and `backup_keep_monthly` months (6), always the newest
/// backup and the newest verified one, and every binlog from the oldest kept backup's position
/// on. Failed entries older than the newest complete backup go too. --plan shows exactly what
/// would go and changes nothing.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PruneArgs {
    #[command(flatten)]
    pub common: Common,
    /// Show what would be deleted; delete nothing
    #[arg(long)]
    pub plan: bool,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
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
    /// The inventory's `db_primary` host: where the lock lives without a balancer, and the
    /// primary when the servers cannot say which one is.
    pub primary: Target,
    /// Every database host (`db_primary`, then `db_replica`), as the others reach it.
    pub members: Vec<(Member, Target)>,
    /// `--from`: the one host to back up from.
    pub from: Option<Target>,
    /// The balancer with the database proxy, and its address as the primary sees it.
    pub lb: Option<(Target, String)>,
    pub settings: Settings,
    pub store_host: Option<Target>,
}

impl Resolved {
    /// The member named `name` (`what` names the flag in the error), or a "did you mean".
    pub(super) fn member(&self, name: &str, what: &str) -> Result<&Target, CliError> {
        if let Some((_, t)) = self.members.iter().find(|(m, _)| m.name == name) {
            return Ok(t);
        }
        let mut d = Diagnostic::plain(format!(
            "{what}`{name}` is not a database host (`db_primary`, `db_replica`)"
        ));
        if let Some(m) = crate::diagnostic::did_you_mean(name, self.members.iter().map(|(m, _)| m.name.as_str())) {
            d = d.with_hint(format!("did you mean `{m}`?"));
        }
        Err(d.into())
    }
}

/// Which server is the primary now and which are its replicas, as the servers say (after a
/// failover the inventory's groups name the old roles; nothing follows them blindly).
pub(super) struct Roles {
    pub primary: Target,
    /// Members whose server replicates from the primary.
    pub replicas: Vec<Target>,
    /// The other members, with why each is neither (unreachable, or replicating from nobody:
    /// a former primary not yet rejoined).
    pub others: Vec<(Target, String)>,
}

impl Roles {
    /// Whether `name` replicates from the primary.
    pub(super) fn is_replica(&self, name: &str) -> bool {
        self.replicas.iter().any(|t| t.name == name)
    }

    /// Refuses (exit 4) a member that is neither the primary nor one of its replicas, as the
    /// host a command acts on: restoring, rebuilding or backing up a detached former primary
    /// would act on a history nobody else has.
    pub(super) fn placed(&self, name: &str) -> Result<(), Abort> {
        match self.others.iter().find(|(t, _)| t.name == name) {
            Some((_, why)) => Err(Abort::new(
                Code::InvalidInput,
                format!(
                    "{name} is not a replica of the primary {} ({why}); nothing was changed",
                    self.primary.name
                ),
            )
            .hint(format!(
                "`tend failover status` shows the roles; a former primary rejoins with `tend failover rejoin {name}`"
            ))),
            None => Ok(()),
        }
    }
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
    let conn = &c.connection;
    let mut members = Vec::new();
    for h in primaries.iter().chain(group_hosts("db_replica").iter()) {
        if members
            .iter()
            .any(|(m, _): &(Member, Target)| m.name == inv.hosts[*h].name)
        {
            continue;
        }
        members.push((failover::member(&vars, &inv, *h)?, conn.target(&inv, &vars, *h)?));
    }
    let settings = backup::settings(&vars, &inv, p)?;
    let store_host = match &settings.store {
        Store::Remote { host, .. } => match inv.hosts.iter().position(|x| &x.name == host) {
            Some(h) => Some(conn.target(&inv, &vars, h)?),
            None => None,
        },
        Store::Local(_) => None,
    };
    let mut r = Resolved {
        primary: conn.target(&inv, &vars, p)?,
        members,
        from: None,
        lb: conn.balancer(&inv, &vars)?,
        settings,
        store_host,
    };
    if let Some(name) = from {
        if !inv.hosts.iter().any(|x| x.name == name) {
            let mut d = Diagnostic::plain(format!("--from `{name}` is not a host of the inventory"));
            if let Some(m) = crate::diagnostic::did_you_mean(name, inv.hosts.iter().map(|x| x.name.as_str())) {
                d = d.with_hint(format!("did you mean `--from {m}`?"));
            }
            return Err(d.into());
        }
        r.from = Some(r.member(name, "--from ")?.clone());
    }
    Ok(r)
}

/// Runs `tend backup ...`.
pub fn run(cmd: BackupCommand) -> Result<Code, CliError> {
    match cmd {
        BackupCommand::Run(a) => backup_run(a),
        BackupCommand::Binlogs(a) => binlogs(a),
        BackupCommand::Verify(a) => verify(a),
        BackupCommand::Status(a) => status(a),
        BackupCommand::Prune(a) => prune(a),
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
    let spec = Spec {
        reason: format!("{} backup", catalog::Kind::from(a.kind).as_str()),
        command: "backup run",
        layout: Layout::Steps,
        lock_wait: Some(a.lock_wait),
        // The host of --from; else any member that answers (a replica is preferred).
        hosts: r.from.iter().cloned().collect(),
        roles: true,
    };
    operate(
        &a.common,
        &r,
        spec,
        async |s: &Session<'_>, store_host, roles: &Roles| {
            let started = ops::Clock::start();
            if let Some(t) = &r.from
                && let Err(abort) = roles.placed(&t.name)
            {
                return s.end(Err(abort));
            }
            let sources: Vec<(&Target, bool)> = match &r.from {
                Some(t) => vec![(t, roles.is_replica(&t.name))],
                None => roles
                    .replicas
                    .iter()
                    .map(|t| (t, true))
                    .chain([(&roles.primary, false)])
                    .collect(),
            };
            let mut chosen = None;
            for &(t, replica) in &sources {
                let Some(h) = s.host(&t.name) else { continue };
                let db = Db::admin(h, &r.settings.login);
                let usable = if !replica || sources.len() == 1 {
                    Ok(true)
                } else {
                    take::replica_status(&db).await.map(|st| st.caught_up())
                };
                match usable {
                    Ok(true) => {
                        chosen = Some(Source {
                            db,
                            replica,
                            primary: roles.primary.name.clone(),
                            kind: a.kind.into(),
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
                let gone: Vec<&str> = sources
                    .iter()
                    .filter(|(t, _)| s.host(&t.name).is_none())
                    .map(|(t, _)| t.name.as_str())
                    .collect();
                return s.end(Err(if gone.is_empty() {
                    Abort::new(Code::HostFailed, "no database host to back up from")
                } else {
                    Abort::new(
                        Code::Unreachable,
                        format!("no database host to back up from ({} unreachable)", gone.join(", ")),
                    )
                }));
            };
            s.touch(src.db.host.name());
            let mut salt = [0u8; 3];
            let _ = getrandom::fill(&mut salt);
            let id = format!(
                "{}-{}-{}-{}",
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ"),
                src.kind.as_str(),
                src.db.host.name(),
                hex::encode(salt)
            );
            s.events().note(format!(
                "{} backup {id} of {}{} into {}",
                src.kind.as_str(),
                src.db.host.name(),
                if src.replica { " (replica)" } else { "" },
                r.settings.store.describe()
            ));
            match r.settings.store.sweep(store_host).await {
                Ok(ids) => {
                    for old in ids {
                        s.events().note(format!(
                            "removed the files of backup {old}: its run ended before listing it (killed, or its control node lost)"
                        ));
                    }
                }
                Err(e) => s.events().warn(format!(
                    "cannot look for files of interrupted backups in the store: {}",
                    e.message()
                )),
            }
            let result = take::run(s, &src, &r.settings.store, store_host, &id).await;
            record(s, started, (&src, &id), result)
        },
    )
}

fn binlogs(a: BinlogsArgs) -> Result<Code, CliError> {
    let r = resolve(&a.common, None)?;
    let spec = Spec {
        reason: String::new(),
        command: "backup binlogs",
        layout: Layout::Steps,
        lock_wait: None,
        hosts: Vec::new(),
        roles: true,
    };
    operate(
        &a.common,
        &r,
        spec,
        async |s: &Session<'_>, store_host, roles: &Roles| {
            let clock = ops::Clock::start();
            let Some(h) = s.host(&roles.primary.name) else {
                return s.end(Ok(Code::Unreachable));
            };
            let db = Db::admin(h, &r.settings.login);
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
                    &roles.primary.name,
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
                shipped
                    .files
                    .iter()
                    .map(|(n, b)| json!({"name": n, "bytes": b}))
                    .collect(),
            );
            details.insert(
                "covered_until".into(),
                crate::backup::replay::show_time(index.covered_until).into(),
            );
            details.insert(
                "gtid_end".into(),
                index
                    .files
                    .last()
                    .map(|f| f.gtid_end.clone())
                    .unwrap_or_default()
                    .into(),
            );
            details.insert("files".into(), index.files.len().into());
            details.insert("gaps".into(), json!(index.gaps));
            let status = if shipped.bytes > 0 { Status::Changed } else { Status::Ok };
            clock.one_host(
                s,
                ("backup binlogs", "db_primary", &roles.primary.name),
                Ok(("shipped", status, details)),
            )
        },
    )
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
    let spec = Spec {
        reason: String::new(),
        command: if id.is_some() { "backup show" } else { "backup list" },
        layout: Layout::Listing,
        lock_wait: None,
        hosts: Vec::new(),
        roles: false,
    };
    operate(c, &r, spec, async |s: &Session<'_>, store_host, _: &Roles| {
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
                    "kind": b.kind.as_str(),
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
}

/// The one lock of the database cluster: backups, restores, rebuilds and failovers exclude each
/// other (a restore during a switchover, or a switchover during a restore, would each undo the
/// other's assumptions).
pub(super) const DB_LOCK: &str = "db";

/// Where [`DB_LOCK`] lives: on the balancer, which stays whichever server is the primary (and
/// which a failover needs anyway), else on the inventory's primary.
pub(super) fn db_lock_host(lb: Option<&Target>, primary: &Target) -> Target {
    lb.unwrap_or(primary).clone()
}

/// How a backup subcommand (or a restore) runs on the operations core.
pub(super) struct Spec {
    pub command: &'static str,
    /// Why, written into the lock.
    pub reason: String,
    pub layout: Layout,
    /// Takes the database lock ([`DB_LOCK`]), waiting this long.
    pub lock_wait: Option<u64>,
    /// Hosts besides the store host, each needed (unreachable: exit 3).
    pub hosts: Vec<Target>,
    /// Whether the work needs the servers' roles ([`Roles`]): every member and the balancer are
    /// connected (those not in `hosts` optional) and read; else the roles are the inventory's
    /// groups.
    pub roles: bool,
}

/// Runs `work` as backup subcommand `spec` with the store host connected.
pub(super) fn operate<W>(c: &Common, r: &Resolved, spec: Spec, work: W) -> Result<Code, CliError>
where
    W: AsyncFnOnce(&Session<'_>, Option<&crate::transport::Host>, &Roles) -> Outcome,
{
    let options = c.connection.connect_options()?;
    let settings = c.output.settings(spec.layout);
    block_on(async move {
        let mut targets = spec.hosts.clone();
        let mut optional = Vec::new();
        if spec.roles {
            // The balancer too: the member its proxy sends the applications to is the primary.
            for t in r.members.iter().map(|(_, t)| t).chain(r.lb.iter().map(|(t, _)| t)) {
                if !targets.iter().any(|x| x.name == t.name) {
                    optional.push(t.name.clone());
                    targets.push(t.clone());
                }
            }
        }
        targets.extend(r.store_host.iter().cloned());
        let events = Events::start(spec.command, targets.len(), &settings);
        if let Some(p) = &r.settings.login.password {
            events.secret(p);
        }
        let fleet = c.connection.fleet(options);
        let request = Request {
            command: spec.command.into(),
            reason: spec.reason.clone(),
            lock: spec.lock_wait.map(|wait| LockRequest {
                name: DB_LOCK.into(),
                host: db_lock_host(r.lb.as_ref().map(|(t, _)| t), &r.primary),
                ttl: Duration::from_secs(120),
                wait: Duration::from_secs(wait),
            }),
            check: false,
            forks: c.connection.forks as usize,
            optional,
        };
        ops::run(&events, &fleet, request, targets, async |s: &Session<'_>| {
            let roles = if spec.roles {
                match roles(s, r).await {
                    Ok(roles) => roles,
                    Err(abort) => return s.end(Err(abort)),
                }
            } else {
                Roles {
                    primary: r.primary.clone(),
                    replicas: r.members.iter().skip(1).map(|(_, t)| t.clone()).collect(),
                    others: Vec::new(),
                }
            };
            let store_host = r.store_host.as_ref().and_then(|t| s.host(&t.name));
            work(s, store_host, &roles).await
        })
        .await
    })
}

/// The roles the servers have now ([`crate::failover::topology`]: the member the proxy sends
/// the applications to, else the one writable server that replicates from nobody). When the
/// servers cannot say which one is the primary (it is unreachable and nobody else writes, or
/// two servers write), nothing is done: a backup, binlog or restore aimed at the wrong
/// server does harm (exit 3 when a member is unreachable, else 2).
async fn roles(s: &Session<'_>, r: &Resolved) -> Result<Roles, Abort> {
    let members: Vec<Member> = r.members.iter().map(|(m, _)| m.clone()).collect();
    let proxy =
        r.lb.as_ref()
            .map(|(t, _)| (t.name.as_str(), r.settings.proxy_upstream.as_str()));
    let t = crate::failover::topology::observe(s, &members, &r.settings.login, proxy).await;
    let Some(p) = t.agreed_primary() else {
        let unreachable = t.members.iter().any(|m| m.state.is_err());
        return Err(Abort::new(
            if unreachable {
                Code::Unreachable
            } else {
                Code::HostFailed
            },
            format!(
                "which server is the primary cannot be told: {}; nothing was changed",
                t.problems.join("; ")
            ),
        )
        .hint("`tend failover status` shows each member; after losing the primary, `tend failover promote`"));
    };
    for problem in &t.problems {
        s.events().warn(problem.clone());
    }
    let primary = r.members[p].1.clone();
    if primary.name != r.primary.name {
        s.events().note(format!(
            "{} is the primary now (the inventory's `db_primary` is {}): the servers' roles are followed",
            primary.name, r.primary.name
        ));
    }
    let mut roles = Roles {
        primary,
        replicas: Vec::new(),
        others: Vec::new(),
    };
    for i in (0..t.members.len()).filter(|&i| i != p) {
        let target = r.members[i].1.clone();
        match t.follows_primary(i) {
            Ok(()) => roles.replicas.push(target),
            Err(why) => roles.others.push((target, why)),
        }
    }
    Ok(roles)
}

/// The backups of the store and the binlog index of the primary.
async fn catalog_and_index(
    r: &Resolved,
    store_host: Option<&crate::transport::Host>,
    primary: &str,
) -> Result<(Vec<Backup>, crate::backup::binlogs::Index), Abort> {
    let (backups, _) = r
        .settings
        .store
        .list(store_host)
        .await
        .map_err(|e| Abort::step("cannot read the catalog", &e))?;
    let index = crate::backup::binlogs::Index::load(&r.settings.store, store_host, primary)
        .await
        .map_err(|e| Abort::step("cannot read the binlog index", &e))?;
    Ok((backups, index))
}

fn verify(a: VerifyArgs) -> Result<Code, CliError> {
    if let Some(id) = &a.id
        && !catalog::valid_id(id)
    {
        return Err(Diagnostic::plain(format!("`{id}` is not a backup id"))
            .with_hint("`tend backup list` shows the ids")
            .into());
    }
    let r = resolve(&a.common, None)?;
    let on =
        a.on.clone()
            .or_else(|| (!r.settings.verify_host.is_empty()).then(|| r.settings.verify_host.clone()));
    let host = match on {
        Some(name) => {
            let (inv, vars) = a.common.inventory.load()?;
            let Some(h) = inv.hosts.iter().position(|x| x.name == name) else {
                let mut d = Diagnostic::plain(format!("verify host `{name}` is not a host of the inventory"));
                if let Some(m) = crate::diagnostic::did_you_mean(&name, inv.hosts.iter().map(|x| x.name.as_str())) {
                    d = d.with_hint(format!("did you mean `{m}`?"));
                }
                return Err(d.into());
            };
            Some(a.common.connection.target(&inv, &vars, h)?)
        }
        None => None,
    };
    let spec = Spec {
        reason: String::new(),
        command: "backup verify",
        layout: Layout::Steps,
        lock_wait: Some(a.lock_wait),
        hosts: host.iter().cloned().collect(),
        roles: true,
    };
    operate(
        &a.common,
        &r,
        spec,
        async |s: &Session<'_>, store_host, roles: &Roles| {
            let clock = ops::Clock::start();
            // The scratch server runs beside a replica rather than the primary.
            let host = host.unwrap_or_else(|| {
                roles
                    .replicas
                    .iter()
                    .find(|t| s.host(&t.name).is_some())
                    .unwrap_or(&roles.primary)
                    .clone()
            });
            let result = async {
                let Some(h) = s.host(&host.name) else {
                    return Err(Abort::new(Code::Unreachable, format!("{} is unreachable", host.name)));
                };
                let (backups, _) = r
                    .settings
                    .store
                    .list(store_host)
                    .await
                    .map_err(|e| Abort::step("cannot read the catalog", &e))?;
                let chosen = match &a.id {
                    Some(id) => backups.iter().find(|b| &b.id == id),
                    None => backups.iter().rev().find(|b| b.state == catalog::State::Complete),
                };
                let Some(b) = chosen else {
                    return Err(Abort::new(
                        Code::InvalidInput,
                        match &a.id {
                            Some(id) => format!("no backup `{id}` in {}", r.settings.store.describe()),
                            None => format!("{} holds no complete backup", r.settings.store.describe()),
                        },
                    )
                    .hint("`tend backup list` shows the backups"));
                };
                if let Some(v) = b.verified()
                    && !a.again
                {
                    s.events().note(format!(
                        "{} was verified at {} on {} (restore took {} s); --again to verify it again",
                        b.id, v.at, v.host, v.restore_seconds
                    ));
                    return Ok((b.clone(), None));
                }
                s.events().note(format!("verifying {} on {}", b.id, host.name));
                // Rolled forward over the binlogs of the primary it was taken under (after a
                // failover, the old primary's).
                let binlog_host = b.binlog_host.clone().unwrap_or_else(|| roles.primary.name.clone());
                let index = crate::backup::binlogs::Index::load(&r.settings.store, store_host, &binlog_host)
                    .await
                    .map_err(|e| Abort::step("cannot read the binlog index", &e))?;
                let backups: Vec<Backup> = backups
                    .iter()
                    .filter(|x| x.binlog_host.as_deref().is_none_or(|h| h == binlog_host))
                    .cloned()
                    .collect();
                let v = crate::backup::verify::run(
                    s,
                    (&r.settings.store, store_host),
                    h,
                    (b, &backups, &index),
                    r.settings.verify_port,
                )
                .await?;
                let mut entry = b.clone();
                entry.verifications.push(v.clone());
                let json = serde_json::to_vec(&entry).unwrap_or_default();
                r.settings
                    .store
                    .put(store_host, &Backup::entry_path(&entry.id), &json)
                    .await
                    .map_err(|e| Abort::step("cannot record the verification in the catalog", &e))?;
                Ok((entry, Some(v)))
            }
            .await;
            let result = match result {
                Ok((b, v)) => {
                    let mut d = serde_json::Map::new();
                    d.insert("id".into(), b.id.clone().into());
                    let fresh = v.is_some();
                    let v = v.or_else(|| b.verified().cloned());
                    d.insert("verification".into(), serde_json::to_value(&v).unwrap_or_default());
                    match v.as_ref().map(crate::backup::verify::outcome) {
                        Some(Err(abort)) => Err((abort, d)),
                        _ if fresh => Ok(("verified", Status::Changed, d)),
                        _ => Ok(("verified", Status::Ok, d)),
                    }
                }
                Err(abort) => Err((abort, serde_json::Map::new())),
            };
            clock.one_host(s, ("backup verify", "backup", &host.name), result)
        },
    )
}

fn status(a: StatusArgs) -> Result<Code, CliError> {
    let r = resolve(&a.common, None)?;
    let spec = Spec {
        reason: String::new(),
        command: "backup status",
        layout: Layout::Listing,
        lock_wait: None,
        hosts: Vec::new(),
        roles: true,
    };
    operate(
        &a.common,
        &r,
        spec,
        async |s: &Session<'_>, store_host, roles: &Roles| {
            let (backups, index) = match catalog_and_index(&r, store_host, &roles.primary.name).await {
                Ok(x) => x,
                Err(abort) => return s.end(Err(abort)),
            };
            let now = jiff::Timestamp::now().as_second();
            let complete: Vec<&Backup> = backups.iter().filter(|b| b.state == catalog::State::Complete).collect();
            let newest = complete.last();
            let verified = crate::backup::newest_verified(&backups).map(|(b, _)| b);
            let age = crate::backup::newest_verified(&backups).map(|(_, started)| now - started);
            // The window: from the oldest backup whose binlog was shipped to the newest shipped
            // transaction (or the newest backup's own point without binlogs).
            let from = complete
                .iter()
                .find(|b| {
                    b.binlog_host.as_deref().is_none_or(|h| h == index.host)
                        && b.binlog_file.as_deref().is_some_and(|f| index.from_file(f).is_some())
                })
                .or(complete.first())
                .map(|b| crate::backup::restore::started(b));
            let to = if index.covered_until > 0 {
                Some(index.covered_until)
            } else {
                newest.map(|b| crate::backup::restore::started(b))
            };
            let show = |t: Option<i64>| t.map_or("-".to_string(), crate::backup::replay::show_time);
            let row = json!({
                "newest": newest.map(|b| b.id.clone()),
                "newest_verified": verified.map(|b| b.id.clone()),
                "verified_age_seconds": age,
                "restore_seconds": verified.and_then(|b| b.verified()).map(|v| v.restore_seconds),
                "window_from": show(from),
                "window_to": show(to),
                "gaps": index.gaps.len(),
                "max_age_seconds": r.settings.max_age.as_secs(),
            });
            s.events().table(
                "status",
                &[
                    ("newest_verified", "NEWEST VERIFIED"),
                    ("verified_age_seconds", "AGE (S)"),
                    ("restore_seconds", "RESTORE (S)"),
                    ("window_from", "WINDOW FROM"),
                    ("window_to", "TO"),
                    ("gaps", "GAPS"),
                ],
                vec![row],
            );
            let max = r.settings.max_age.as_secs() as i64;
            match age {
                None => s.end(Err(Abort::new(Code::HostFailed, "no backup has been verified")
                    .hint("`tend backup verify` proves the newest one"))),
                Some(age) if age > max => s.end(Err(Abort::new(
                    Code::HostFailed,
                    format!(
                        "the newest verified backup is {} h old (backup_max_age: {} h)",
                        age / 3600,
                        max / 3600
                    ),
                ))),
                Some(_) => s.end(Ok(Code::Ok)),
            }
        },
    )
}

fn prune(a: PruneArgs) -> Result<Code, CliError> {
    let r = resolve(&a.common, None)?;
    let spec = Spec {
        reason: String::new(),
        command: "backup prune",
        layout: Layout::Listing,
        lock_wait: (!a.plan).then_some(a.lock_wait),
        hosts: Vec::new(),
        roles: false,
    };
    operate(&a.common, &r, spec, async |s: &Session<'_>, store_host, _: &Roles| {
        let clock = ops::Clock::start();
        let result = async {
            // Every member's binlogs: after a failover the old primary's are in the store too.
            let (backups, _) = r
                .settings
                .store
                .list(store_host)
                .await
                .map_err(|e| Abort::step("cannot read the catalog", &e))?;
            let mut indexes = Vec::new();
            for (m, _) in &r.members {
                let index = crate::backup::binlogs::Index::load(&r.settings.store, store_host, &m.name)
                    .await
                    .map_err(|e| Abort::step("cannot read the binlog index", &e))?;
                if !index.files.is_empty() {
                    indexes.push(index);
                }
            }
            let p = crate::backup::retention::plan(&backups, &indexes, r.settings.keep);
            let mut rows: Vec<serde_json::Value> = Vec::new();
            for b in &backups {
                let keep = p.keep.iter().find(|(id, _)| id == &b.id);
                rows.push(json!({
                    "id": b.id,
                    "state": b.state,
                    "verified": b.verified().is_some(),
                    "action": if keep.is_some() { "keep" } else if p.delete.contains(&b.id) { "delete" } else { "keep" },
                    "why": keep.map(|(_, w)| w.join(", ")).unwrap_or_default(),
                }));
            }
            for (host, files) in &p.binlogs {
                for f in files {
                    rows.push(json!({"id": format!("binlogs/{host}/{f}"), "action": "delete", "why": "before every kept backup"}));
                }
            }
            s.events().table(
                "prune",
                &[("action", "ACTION"), ("id", "BACKUP OR BINLOG"), ("state", "STATE"), ("why", "WHY KEPT")],
                rows,
            );
            let files: Vec<String> = p
                .binlogs
                .iter()
                .flat_map(|(h, fs)| fs.iter().map(move |f| crate::backup::binlogs::Index::file_path(h, f)))
                .collect();
            if a.plan {
                s.events().note(format!(
                    "plan: {} backups and {} binlog files would be deleted; nothing was changed",
                    p.delete.len(),
                    files.len()
                ));
                return Ok((p, false));
            }
            r.settings
                .store
                .remove(store_host, &p.delete, &files)
                .await
                .map_err(|e| Abort::step("cannot delete from the store", &e))?;
            for index in indexes {
                if let Some(names) = p.binlogs.get(&index.host) {
                    crate::backup::binlogs::forget((&r.settings.store, store_host), index, names)
                        .await
                        .map_err(|e| Abort::step("cannot update the binlog index", &e))?;
                }
            }
            Ok((p, true))
        }
        .await;
        let result = match result {
            Ok((p, deleted)) => {
                let mut d = serde_json::Map::new();
                d.insert("delete".into(), json!(p.delete));
                d.insert(
                    "keep".into(),
                    json!(p.keep.iter().map(|(id, _)| id).collect::<Vec<_>>()),
                );
                d.insert("binlogs".into(), json!(p.binlogs));
                d.insert("plan".into(), (!deleted).into());
                let changed = deleted && (!p.delete.is_empty() || !p.binlogs.is_empty());
                Ok((
                    if deleted { "pruned" } else { "planned" },
                    if changed { Status::Changed } else { Status::Ok },
                    d,
                ))
            }
            Err(abort) => Err((abort, serde_json::Map::new())),
        };
        clock.one_host(s, ("backup prune", "backup", &r.settings.store.describe()), result)
    })
}
