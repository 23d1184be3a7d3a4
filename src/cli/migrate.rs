//! `tend migrate`: Flyway-compatible schema migrations of the primary database, as an
//! operation on the operations core ([`crate::ops`]).

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::migrate::apply::{self, OnFailure, Report, UpOptions};
use crate::migrate::db::Db;
use crate::migrate::files::{self, Migrations, Version};
use crate::migrate::{self, Overrides, Settings, info, plan};
use crate::ops::{self, Abort, LockRequest, Outcome, Request, Session, lock};
use crate::output::{Events, HostRecord, Layout, Record, Status};
use crate::transport::Target;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Schema migrations of the shop database, Flyway-compatible
///
/// Files in the migrations directory (`migrations/` by default, `--dir`, or the inventory
/// variable `migrate_dir`) follow Flyway's names: `V<version>__<description>.sql` (applied
/// once, in version order), `U<version>__<description>.sql` (its undo) and
/// `R__<description>.sql` (applied again whenever it changes). The history lives in Flyway's
/// own table, `flyway_schema_history`, with Flyway's checksums: a schema Flyway migrated is
/// continued by tend and the other way round. Statements are split as the `mariadb` client
/// splits them (`DELIMITER` blocks for procedures and triggers included).
///
/// The target is the cluster's primary: the `db_primary` group's host, or, after a failover,
/// the member of the replica group whose server is writable and replicates from nobody (the
/// servers are asked; the inventory need not be edited). `--target HOST` names one; a read_only
/// server (a replica) is refused. The schema: `--database`, else `migrate_database`, else
/// `shop_db_name`.
///
/// Inventory variables: migrate_dir, migrate_database, migrate_blocking_limit (rows, or a
/// size like `500MB`; default 100000), migrate_max_replica_lag (seconds, default 30),
/// migrate_replica_group (db_replica), migrate_login_user and migrate_login_password
/// (default: root's socket login on the host).
///
/// Exit codes: 0 done, 2 a migration failed or was refused (validation, blocking statement,
/// lagging replica), 3 unreachable, 4 bad input (nothing sent to the database), 5 another run
/// holds the schema's lock.
///
/// Examples:
///   tend migrate info
///   tend migrate plan --format json           what each ALTER would lock, as the server says
///   tend migrate up --to 3
///   tend migrate up --resume                  after fixing the file of a failed migration
///   tend deploy --artifact shop.war --migrate migrations before the first host switches
#[derive(Debug, Subcommand)]
#[command(verbatim_doc_comment)]
pub enum MigrateCommand {
    Info(InfoArgs),
    Validate(ValidateArgs),
    Plan(PlanArgs),
    Up(UpArgs),
    Undo(UndoArgs),
    Baseline(BaselineArgs),
    Repair(RepairArgs),
}

/// What every migrate command takes.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    /// The database server: a host or a group with one host (the default follows the
    /// primary across failovers)
    #[arg(long, default_value = "db_primary", value_name = "PATTERN")]
    pub target: String,
    /// The schema migrated [default: `migrate_database`, else `shop_db_name`]
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// The migrations directory [default: `migrate_dir`, else `migrations`]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputOpts,
}

/// Show every migration's state: applied, pending, failed, outdated, missing, future, ignored
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub common: Common,
    /// Count pending versions below the current one as pending, not ignored
    #[arg(long)]
    pub out_of_order: bool,
}

/// Check the applied migrations against the files (exit 2 naming each problem)
///
/// Applied checksums must match the files, no applied file may be missing, no pending version
/// may be below the current one (unless `--out-of-order`), no migration may have failed.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub common: Common,
    /// Allow pending versions below the current one
    #[arg(long)]
    pub out_of_order: bool,
}

/// Show the SQL `up` would run and what each statement would do to the live tables
///
/// For each ALTER TABLE / CREATE INDEX / DROP INDEX the server itself is asked, on an empty
/// copy of the table in a scratch schema (not replicated, dropped afterwards): the algorithm
/// (INSTANT, NOCOPY, INPLACE, COPY) and lock (NONE, SHARED, EXCLUSIVE) it would use, with the
/// table's rows and size and, for COPY, a rough time. Destructive statements are flagged.
/// Changes nothing.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: Common,
    /// Plan versions up to this one
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Include pending versions below the current one
    #[arg(long)]
    pub out_of_order: bool,
}

/// Apply pending migrations
///
/// Steps: take the schema's lock (the lease lock deploys use, plus Flyway's server-side
/// GET_LOCK); validate; refuse a statement that would block writes (COPY or a lock) on a table
/// above `migrate_blocking_limit` unless `--allow-blocking`; take a safety snapshot of the tables
/// the migrations touch (a dump streamed to the control node, with its SHA-256); apply each
/// migration in one client session, each statement recorded in a journal as it completes;
/// wait for the replicas to catch up between migrations (`migrate_max_replica_lag`).
///
/// On a failure: stop, mark the migration failed in the history, name the file, line,
/// statement and server error, and (`--on-failure restore`, the default) restore the snapshot:
/// the schema is as it was before `up`. Fix the file, then `up --resume`.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct UpArgs {
    #[command(flatten)]
    pub common: Common,
    /// Apply versions up to this one
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Apply pending versions below the current one
    #[arg(long)]
    pub out_of_order: bool,
    /// Run statements that block writes on tables above the limit
    #[arg(long)]
    pub allow_blocking: bool,
    /// What a failed migration leaves: `restore` the snapshot, or `stop` as it is
    #[arg(long, value_enum, default_value = "restore")]
    pub on_failure: OnFailure,
    /// Continue the failed migration from its failed statement (the statements before it must
    /// be unchanged)
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub lock: LockOpts,
}

/// Undo applied versions with their `U` files, newest first
#[derive(Debug, Args)]
pub struct UndoArgs {
    #[command(flatten)]
    pub common: Common,
    /// Undo every version above this one [default: only the latest]
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    #[command(flatten)]
    pub lock: LockOpts,
}

/// Mark an existing schema as being at a version (Flyway's baseline row)
#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub common: Common,
    /// The version the schema is at
    #[arg(long, value_name = "VERSION")]
    pub version: String,
    #[command(flatten)]
    pub lock: LockOpts,
}

/// Re-align the history with the files: delete failed rows, update checksums of changed
/// applied files, mark rows of deleted files as deleted
///
/// Every change is printed; on a terminal you are asked, elsewhere `--yes` is required.
#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub common: Common,
    /// Apply the changes without asking
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub lock: LockOpts,
}

/// The schema's lock.
#[derive(Debug, Args)]
pub struct LockOpts {
    /// Wait this long for the lock when another run holds it (default: fail at once, exit 5)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// What a command resolved before connecting.
#[derive(Clone)]
pub(super) struct Resolved {
    primary: Target,
    replicas: Vec<(Target, Settings)>,
    settings: Settings,
    files: Migrations,
    /// The target is the default `db_primary`: the primary is whichever member of the
    /// cluster its server says is (after a switchover, a host of `db_replica`), read as the
    /// backups and failovers read it.
    follow: Option<Cluster>,
    /// Where the schema's lease lock lives: for the cluster's members the database lock's
    /// host (the balancer, else the inventory's primary), the same whichever member is the
    /// primary and whichever way the target was named; else the target.
    lock_host: Target,
}

/// What following the cluster's primary reads.
#[derive(Clone)]
pub(super) struct Cluster {
    members: Vec<crate::failover::Member>,
    /// tend's administrative login (the backups' and failovers').
    login: crate::modules::mysql::Login,
    /// The balancer and its database upstream.
    proxy: Option<(Target, String)>,
}

fn version(flag: &str, v: &Option<String>) -> Result<Option<Version>, CliError> {
    match v {
        None => Ok(None),
        Some(s) => Version::parse(s).map(Some).ok_or_else(|| {
            Diagnostic::plain(format!("{flag} `{s}` is not a version"))
                .with_hint("a version is numbers separated by `.` or `_`, like `4` or `2.1`")
                .into()
        }),
    }
}

/// Resolves the target, its settings and the files; `replicas`: also the replica group.
fn resolve(c: &Common, replicas: bool) -> Result<Resolved, CliError> {
    let over = Overrides {
        dir: c.dir.clone(),
        database: c.database.clone(),
    };
    resolve_with(
        &c.inventory,
        &c.connection,
        (&c.target, c.connection.limit.as_deref()),
        over,
        replicas,
    )
}

/// The same for any command that migrates (`deploy --migrate`, whose `--limit` is about app
/// hosts: it passes none).
pub(super) fn resolve_with(
    inventory: &InventoryOpts,
    connection: &ConnectionOpts,
    (target, limit): (&str, Option<&str>),
    over: Overrides,
    replicas: bool,
) -> Result<Resolved, CliError> {
    let (inv, vars) = inventory.load()?;
    let hosts = crate::inventory::select(&inv, target, limit).map_err(|e| {
        if target == "db_primary" && inv.group_index(target).is_none() {
            Diagnostic::plain("the inventory has no `db_primary` group: which server is the database primary?")
                .with_hint("put the primary in a `db_primary` group (`tend migrate` also takes `--target HOST`)")
        } else {
            e.into()
        }
    })?;
    let h = match hosts.as_slice() {
        [h] => *h,
        [] => {
            let mut d = Diagnostic::plain(format!("--target `{target}` matches no host of the inventory"));
            let names = inv
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .chain(inv.hosts.iter().map(|h| h.name.as_str()));
            if let Some(m) = crate::diagnostic::did_you_mean(target, names) {
                d = d.with_hint(format!("did you mean `--target {m}`?"));
            }
            return Err(d.into());
        }
        many => {
            let names: Vec<&str> = many.iter().map(|&h| inv.hosts[h].name.as_str()).collect();
            return Err(Diagnostic::plain(format!(
                "--target `{target}` matches {} hosts ({}); migrations run on one primary",
                many.len(),
                names.join(" ")
            ))
            .with_hint("name the primary: `--target HOST`")
            .into());
        }
    };
    let settings = migrate::settings(&vars, &inv, h, &over)?;
    let files = files::load(&settings.dir)?;
    let primary = connection.target(&inv, &vars, h)?;
    let members: Vec<usize> = ["db_primary", "db_replica"]
        .iter()
        .filter_map(|g| inv.group_index(g))
        .flat_map(|g| inv.hosts_of_group(g))
        .collect();
    let lb = connection.balancer(&inv, &vars)?;
    let lock_host = match (members.contains(&h), inv.group_index("db_primary")) {
        (true, Some(g)) => match inv.hosts_of_group(g).first() {
            Some(&p) => super::backup::db_lock_host(lb.as_ref().map(|(t, _)| t), &connection.target(&inv, &vars, p)?),
            None => primary.clone(),
        },
        _ => primary.clone(),
    };
    let follow = if target == "db_primary" && members.len() > 1 {
        let b = crate::backup::settings(&vars, &inv, h)?;
        Some(Cluster {
            members: members
                .iter()
                .map(|&m| crate::failover::member(&vars, &inv, m))
                .collect::<Result<_, _>>()?,
            login: b.login,
            proxy: lb.map(|(t, _)| (t, b.proxy_upstream)),
        })
    } else {
        None
    };
    let mut reps = Vec::new();
    if (replicas || follow.is_some())
        && let Some(g) = inv.group_index(&settings.replica_group)
    {
        for r in inv.hosts_of_group(g) {
            if r != h {
                let mut s = migrate::settings(&vars, &inv, r, &over)?;
                s.database = settings.database.clone();
                reps.push((connection.target(&inv, &vars, r)?, s));
            }
        }
    }
    Ok(Resolved {
        primary,
        replicas: reps,
        settings,
        files,
        follow,
        lock_host,
    })
}

/// Runs `tend migrate ...`.
pub fn run(cmd: MigrateCommand) -> Result<Code, CliError> {
    match cmd {
        MigrateCommand::Info(a) => {
            let r = resolve(&a.common, false)?;
            operate(&a.common, "migrate info", r, None, Layout::Listing, async |s, db, r| {
                s.end(show_info(s, db, &r.files, a.out_of_order).await)
            })
        }
        MigrateCommand::Validate(a) => {
            let r = resolve(&a.common, false)?;
            operate(
                &a.common,
                "migrate validate",
                r,
                None,
                Layout::Listing,
                async |s, db, r| s.end(validate(s, db, &r.files, a.out_of_order).await),
            )
        }
        MigrateCommand::Plan(a) => {
            let to = version("--to", &a.to)?;
            let r = resolve(&a.common, false)?;
            operate(&a.common, "migrate plan", r, None, Layout::Listing, async |s, db, r| {
                s.end(show_plan(s, db, &r.files, to.as_ref(), a.out_of_order).await)
            })
        }
        MigrateCommand::Up(a) => {
            let to = version("--to", &a.to)?;
            let r = resolve(&a.common, true)?;
            let opts = UpOptions {
                to,
                out_of_order: a.out_of_order,
                allow_blocking: a.allow_blocking,
                on_failure: a.on_failure,
                resume: a.resume,
                limit: r.settings.limit,
                max_lag: r.settings.max_lag,
                snapshot_dir: migrate::snapshot_dir(),
            };
            operate(
                &a.common,
                "migrate up",
                r,
                Some(a.lock.lock_wait),
                Layout::Steps,
                async |s, db, r| {
                    let replicas = replica_dbs(s, r);
                    let started = ops::Clock::start();
                    let result = apply::up(s, db, &replicas, &r.files, &opts).await;
                    finish(s, db, "migrate up", started, result)
                },
            )
        }
        MigrateCommand::Undo(a) => {
            let to = version("--to", &a.to)?;
            let r = resolve(&a.common, true)?;
            operate(
                &a.common,
                "migrate undo",
                r,
                Some(a.lock.lock_wait),
                Layout::Steps,
                async |s, db, r| {
                    let replicas = replica_dbs(s, r);
                    let started = ops::Clock::start();
                    let result = apply::undo(s, db, &replicas, &r.files, to.as_ref(), r.settings.max_lag).await;
                    finish(s, db, "migrate undo", started, result)
                },
            )
        }
        MigrateCommand::Baseline(a) => {
            let v = version("--version", &Some(a.version.clone()))?.ok_or_else(|| Diagnostic::plain("no version"))?;
            let r = resolve(&a.common, false)?;
            operate(
                &a.common,
                "migrate baseline",
                r,
                Some(a.lock.lock_wait),
                Layout::Steps,
                async |s, db, _| s.end(apply::baseline(s, db, &v).await.map(|()| Code::Ok)),
            )
        }
        MigrateCommand::Repair(a) => {
            let r = resolve(&a.common, false)?;
            operate(
                &a.common,
                "migrate repair",
                r,
                Some(a.lock.lock_wait),
                Layout::Steps,
                async |s, db, r| s.end(repair(s, db, &r.files, a.yes).await),
            )
        }
    }
}

/// Connects the primary (and replicas), takes the schema's lock when `lock_wait` is given, and
/// runs `work`.
fn operate<W>(
    c: &Common,
    command: &str,
    r: Resolved,
    lock_wait: Option<u64>,
    layout: Layout,
    work: W,
) -> Result<Code, CliError>
where
    W: AsyncFnOnce(&Session<'_>, &Db, &Resolved) -> Outcome,
{
    let lock_name = format!("migrate-{}", r.settings.database);
    if lock_wait.is_some() && !lock::valid_name(&lock_name) {
        return Err(
            Diagnostic::plain(format!("schema `{}` cannot name a lock file", r.settings.database))
                .with_hint("use a schema named with letters, digits, `_` and `-`")
                .into(),
        );
    }
    let options = c.connection.connect_options()?;
    let settings = c.output.settings(layout);
    let command = command.to_string();
    block_on(async move {
        let targets = r.targets();
        let events = Events::start(&command, targets.len(), &settings);
        r.secrets(&events);
        let fleet = c.connection.fleet(options);
        let request = Request {
            command: command.clone(),
            reason: format!("schema {}", r.settings.database),
            lock: lock_wait.map(|wait| LockRequest {
                name: lock_name.clone(),
                host: r.lock_host.clone(),
                ttl: migrate::LOCK_TTL,
                wait: Duration::from_secs(wait),
            }),
            check: false,
            forks: c.connection.forks as usize,
            optional: r.optional(),
        };
        ops::run(&events, &fleet, request, targets, async |session: &Session<'_>| {
            let r = r.follow(session).await;
            let db = match r.db(session) {
                Ok(db) => db,
                Err(abort) => return session.end(Err(abort)),
            };
            session.touch(&r.primary.name);
            work(session, &db, &r).await
        })
        .await
    })
}

impl Resolved {
    /// Tells the event stream the login passwords, so that no output shows them.
    pub(super) fn secrets(&self, events: &Events) {
        for s in std::iter::once(&self.settings).chain(self.replicas.iter().map(|(_, s)| s)) {
            if let Some(p) = &s.login.password {
                events.secret(p);
            }
        }
        if let Some(p) = self.follow.as_ref().and_then(|c| c.login.password.as_ref()) {
            events.secret(p);
        }
    }

    /// The hosts the run can do without: when following the servers' roles, every member
    /// (a dead old primary among them) and the balancer; never the lock's host.
    pub(super) fn optional(&self) -> Vec<String> {
        match &self.follow {
            Some(c) => std::iter::once(self.primary.name.clone())
                .chain(self.replicas.iter().map(|(t, _)| t.name.clone()))
                .chain(c.proxy.iter().map(|(t, _)| t.name.clone()))
                .filter(|n| *n != self.lock_host.name)
                .collect(),
            None => Vec::new(),
        }
    }

    /// When following, the member the servers say is the primary (as backups and failovers
    /// read it: [`crate::failover::topology::observe`]) becomes the target and the inventory's
    /// primary one of the replicas. When the servers cannot say, nothing moves: the target's
    /// own checks refuse a read_only or unreachable server.
    pub(super) async fn follow(self, s: &Session<'_>) -> Self {
        let Some(c) = &self.follow else { return self };
        let proxy = c.proxy.as_ref().map(|(t, u)| (t.name.as_str(), u.as_str()));
        let t = crate::failover::topology::observe(s, &c.members, &c.login, proxy).await;
        let Some(p) = t.agreed_primary() else {
            for problem in &t.problems {
                s.events().warn(problem.clone());
            }
            return self;
        };
        let name = t.members[p].member.name.clone();
        let mut all = self.replicas.clone();
        all.insert(0, (self.primary.clone(), self.settings.clone()));
        let Some(i) = all.iter().position(|(r, _)| r.name == name) else {
            return self;
        };
        let (primary, mut settings) = all.remove(i);
        settings.database = self.settings.database.clone();
        if i > 0 {
            s.events().note(format!(
                "{} is the primary now (the inventory's `db_primary` is {}): migrating there",
                primary.name, self.primary.name
            ));
        }
        // The replicas waited for are the members that replicate from it now.
        let replicas = all
            .into_iter()
            .filter(|(r, _)| match t.index(&r.name).map(|k| t.follows_primary(k)) {
                Some(Err(why)) => {
                    s.events().warn(format!(
                        "{} is not a replica of {} ({why}): its lag is not waited for",
                        r.name, primary.name
                    ));
                    false
                }
                _ => true,
            })
            .collect();
        Self {
            primary,
            replicas,
            settings,
            ..self
        }
    }

    /// Every host to connect: the primary, then the replicas.
    pub(super) fn targets(&self) -> Vec<Target> {
        let mut targets = vec![self.primary.clone()];
        targets.extend(self.replicas.iter().map(|(t, _)| t.clone()));
        targets.extend(self.follow.iter().flat_map(|c| c.proxy.iter().map(|(t, _)| t.clone())));
        targets.push(self.lock_host.clone());
        targets.dedup_by(|a, b| a.name == b.name);
        targets
    }

    /// The primary's session; unreachable (a followed cluster whose primary is down and no
    /// other member writes): exit 3.
    fn db(&self, s: &Session<'_>) -> Result<Db, Abort> {
        let Some(h) = s.host(&self.primary.name) else {
            return Err(Abort::new(
                Code::Unreachable,
                format!("the primary {} is unreachable; nothing was changed", self.primary.name),
            )
            .hint("`tend failover status` shows the cluster"));
        };
        Ok(Db {
            host: h.clone(),
            login: self.settings.login.clone(),
            database: self.settings.database.clone(),
        })
    }
}

/// `deploy --migrate`: the pending migrations on the connected primary, under the schema's lock,
/// before anything of the release is switched; returns the schema version after them.
pub(super) async fn for_deploy(s: &Session<'_>, r: &Resolved, release: &str) -> Result<Option<String>, Abort> {
    let r = &r.clone().follow(s).await;
    let db = r.db(s)?;
    let Some(lock_host) = s.host(&r.lock_host.name) else {
        return Err(Abort::new(
            Code::Internal,
            "internal: the lock host's connection went missing",
        ));
    };
    let req = lock::Request {
        name: migrate::lock_name(&db.database),
        command: "deploy --migrate".into(),
        reason: release.to_string(),
        ttl: migrate::LOCK_TTL,
        wait: Duration::ZERO,
    };
    let lease = match lock::acquire(lock_host, &req, &s.cancel).await {
        Ok(l) => l,
        Err(lock::LockError::Held(info)) => {
            return Err(Abort::new(Code::Locked, format!("lock {}", info.describe())));
        }
        Err(lock::LockError::Interrupted) => return Err(Abort::new(Code::Interrupted, "interrupted")),
        Err(lock::LockError::Step(e)) => return Err(Abort::step("cannot take the schema's lock", &e)),
    };
    let opts = UpOptions {
        to: None,
        out_of_order: false,
        allow_blocking: false,
        on_failure: OnFailure::Restore,
        resume: false,
        limit: r.settings.limit,
        max_lag: r.settings.max_lag,
        snapshot_dir: migrate::snapshot_dir(),
    };
    let result = apply::up(s, &db, &replica_dbs(s, r), &r.files, &opts).await;
    let _ = lease.release().await;
    result.map(|report| report.after).map_err(|(abort, _)| abort)
}

fn replica_dbs(s: &Session<'_>, r: &Resolved) -> Vec<Db> {
    r.replicas
        .iter()
        .filter_map(|(t, set)| {
            s.host(&t.name).map(|h| Db {
                host: h.clone(),
                login: set.login.clone(),
                database: set.database.clone(),
            })
        })
        .collect()
}

/// The record of `up` or `undo`.
fn finish(
    s: &Session<'_>,
    db: &Db,
    command: &str,
    clock: ops::Clock,
    result: Result<Report, (Abort, Report)>,
) -> Outcome {
    let (code, report, error) = match result {
        Ok(r) => (Code::Ok, r, None),
        Err((stop, r)) => {
            let message = stop.error.message.clone();
            s.events().error(*stop.error);
            (stop.code, r, Some(message))
        }
    };
    let outcome = match (&error, report.applied.is_empty()) {
        (Some(_), _) => "failed",
        (None, true) => "unchanged",
        (None, false) => "migrated",
    };
    let mut details = report.details(db);
    details.insert(
        "traffic".into(),
        serde_json::to_value(db.host.counters()).unwrap_or_default(),
    );
    let record = Record {
        outcome: outcome.into(),
        error: error.clone(),
        hosts: vec![HostRecord {
            host: db.host.name().to_string(),
            status: match (&error, report.applied.is_empty()) {
                (Some(_), _) => Status::Failed,
                (None, true) => Status::Ok,
                (None, false) => Status::Changed,
            },
            outcome: outcome.into(),
            details: serde_json::Map::new(),
            error,
        }],
        details,
        ..clock.record(command, &migrate::lock_name(&db.database))
    };
    Outcome {
        code,
        record: Some(record),
    }
}

async fn show_info(s: &Session<'_>, db: &Db, files: &Migrations, out_of_order: bool) -> Result<Code, Abort> {
    let state = apply::state(db).await?;
    let info = info::reconcile(files, &state, out_of_order);
    s.events().table(
        "migrations",
        &[
            ("category", "CATEGORY"),
            ("version", "VERSION"),
            ("description", "DESCRIPTION"),
            ("installed_on", "INSTALLED ON"),
            ("state", "STATE"),
        ],
        apply::info_rows(&info),
    );
    s.events().note(format!(
        "schema `{}` on {}: current version {}{}",
        db.database,
        db.host.name(),
        info.current.as_ref().map_or("none".to_string(), Version::to_string),
        if state.history_exists {
            ""
        } else {
            " (no history table yet)"
        }
    ));
    Ok(Code::Ok)
}

async fn validate(s: &Session<'_>, db: &Db, files: &Migrations, out_of_order: bool) -> Result<Code, Abort> {
    let state = apply::state(db).await?;
    let info = info::reconcile(files, &state, out_of_order);
    let problems = info.problems();
    for p in &problems {
        s.events()
            .error(crate::output::ErrorEvent::new(format!("{}: {}", p.script, p.message)));
    }
    if problems.is_empty() {
        s.events().note(format!(
            "schema `{}` is valid: {} migration(s) applied, current version {}",
            db.database,
            info.entries
                .iter()
                .filter(|e| e.status == info::Status::Applied)
                .count(),
            info.current.as_ref().map_or("none".to_string(), Version::to_string)
        ));
        Ok(Code::Ok)
    } else {
        Ok(Code::HostFailed)
    }
}

async fn show_plan(
    s: &Session<'_>,
    db: &Db,
    files: &Migrations,
    to: Option<&Version>,
    out_of_order: bool,
) -> Result<Code, Abort> {
    let state = apply::state(db).await?;
    let info = info::reconcile(files, &state, out_of_order);
    let pending = info.pending(files, to);
    if pending.is_empty() {
        s.events()
            .note(format!("nothing to apply: schema `{}` is up to date", db.database));
        return Ok(Code::Ok);
    }
    let steps = plan::plan(db, &pending)
        .await
        .map_err(|e| Abort::step("cannot plan the migrations", &e))?;
    let rows: Vec<serde_json::Value> = steps
        .iter()
        .map(|st| {
            json!({
                "file": st.file,
                "line": st.line,
                "sql": st.sql,
                "action": st.action,
                "object": st.table,
                "algorithm": st.algorithm,
                "lock": st.lock,
                "rows": st.rows,
                "bytes": st.bytes,
                "estimate_s": st.estimate_s,
                "destructive": st.destructive,
                "blocking": st.blocking(),
                "error": st.error,
                "flag": if st.destructive { "destructive" } else if st.blocking() { "blocking" } else { "" },
                "at": format!("{}:{}", st.file, st.line),
                "statement": st.sql.lines().next().unwrap_or_default().chars().take(60).collect::<String>(),
            })
        })
        .collect();
    s.events().table(
        "plan",
        &[
            ("at", "FILE:LINE"),
            ("statement", "STATEMENT"),
            ("algorithm", "ALGORITHM"),
            ("lock", "LOCK"),
            ("rows", "ROWS"),
            ("estimate_s", "COPY S"),
            ("flag", ""),
        ],
        rows,
    );
    let limit = steps.iter().filter(|st| st.blocking()).count();
    if limit > 0 {
        s.events().warn(format!(
            "{limit} statement(s) would block writes while they run; `up` refuses those on tables above the limit"
        ));
    }
    for st in steps.iter().filter(|st| st.error.is_some()) {
        s.events().warn(format!(
            "{}:{}: the server refused the statement on an empty copy of its table: {}",
            st.file,
            st.line,
            st.error.as_deref().unwrap_or_default()
        ));
    }
    Ok(Code::Ok)
}

async fn repair(s: &Session<'_>, db: &Db, files: &Migrations, yes: bool) -> Result<Code, Abort> {
    let state = apply::state(db).await?;
    let fixes = apply::repairs(db, files, &state);
    if fixes.is_empty() {
        s.events().note(format!(
            "the history of `{}` matches the files: nothing to repair",
            db.database
        ));
        return Ok(Code::Ok);
    }
    for f in &fixes {
        s.events().note(format!("repair: {}", f.what));
    }
    if !yes && !super::common::confirm(&format!("apply these {} change(s) to the history?", fixes.len())) {
        return Err(
            Abort::new(Code::InvalidInput, "repair not confirmed; nothing was changed")
                .hint("run again with `--yes` to apply the changes listed"),
        );
    }
    apply::repair(s, db, &fixes).await.map(|()| Code::Ok)
}
