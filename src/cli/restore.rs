//! `tend restore`: a backup onto a database server, rolled forward over the shipped binlogs to
//! a point, on the operations core.

use super::CliError;
use super::backup::{Common, Resolved, Roles, Spec, operate, resolve};
use super::common::{choose, confirm};
use crate::backup::binlogs::{self, Index};
use crate::backup::catalog::Kind;
use crate::backup::replay::{self, Gtid, Txn};
use crate::backup::restore::{self, Staged, Wanted};
use crate::backup::take::CatchUp;
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::migrate::db::{Db, Script};
use crate::ops::{self, Abort, Outcome, Session};
use crate::output::{Layout, Status, StepEvent};
use crate::transport::Held;
use clap::{Args, Subcommand};
use serde_json::json;
use sha2::Digest as _;
use std::time::{Duration, Instant};

/// Restore a backup onto a database server, to a point in time
///
/// Verifies the backup's files in the store (a damaged file is named and nothing is touched),
/// ships the primary's newest binlogs, chooses the newest complete backup before the point
/// (or --backup), replaces the target's databases with it (a physical backup is unpacked and
/// prepared beside the datadir, then put in place of it: the server restarts, keeping its own
/// binlogs and replication settings) and rolls it forward over the shipped binlogs to the
/// point: in one client session across files (temporary tables
/// survive), with nothing binlogged on the target, marking each transaction's GTID so that
/// an interrupted restore resumes when run again with the same arguments.
///
/// The point: --to-time (the database server's local time, as `mariadb-binlog
/// --stop-datetime` reads it, unless it carries an offset or Z; transactions written at or
/// after it are not replayed), --to-gtid (that transaction included), --before (just before
/// the first statement after the backup matching the pattern; the matches are listed with
/// time, GTID and thread, and asked for on a terminal), else the end of what is shipped.
///
/// A target holding transactions past the point is refused without --force (they would be
/// lost). A restore takes the database lock (`db`, shared with backups and failovers).
/// Restoring the primary stops writes through the balancer's database proxy for its duration
/// (given back even if tend is killed); its replicas then hold data it no longer has: rebuild
/// them. A restored replica replicates again from the
/// point. Asks for confirmation on a terminal; elsewhere --yes is needed.
///
/// Examples:
///   tend restore --target h8 --before "DROP TABLE orders" --dry-run
///   tend restore --target h8 --to-time "2026-12-01 14:07:00" --force --yes
///   tend restore --target h9 --backup 20261201T040000Z-logical-h9-1a2b3c --yes
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// The database server restored (a host of `db_primary` or `db_replica`)
    #[arg(long, value_name = "HOST")]
    pub target: String,
    /// The backup: an id of `tend backup list`, or `latest` (the newest before the point)
    #[arg(long, value_name = "ID", default_value = "latest")]
    pub backup: String,
    /// Stop before the first transaction written at or after this time
    #[arg(long, value_name = "\"YYYY-MM-DD HH:MM:SS\"", group = "point")]
    pub to_time: Option<String>,
    /// Stop after this transaction (`domain-server-sequence`)
    #[arg(long, value_name = "GTID", group = "point")]
    pub to_gtid: Option<String>,
    /// Stop just before the first statement matching this (case, quoting and schema
    /// names aside)
    #[arg(long, value_name = "SQL PATTERN", group = "point")]
    pub before: Option<String>,
    /// Print the plan (backup, binlogs, stop) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Restore even when the target holds transactions past the point (they are lost)
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation (needed when not at a terminal); with --before, take the
    /// first match
    #[arg(long)]
    pub yes: bool,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// Rebuild a replica from the newest backup and the shipped binlogs
///
/// Replaces every database of the replica with the newest complete backup rolled forward
/// over the shipped binlogs to their end, then makes it replicate from the primary again from
/// that GTID. After a restore of the primary, take a backup of the primary first: the
/// binlogs before a restore describe another history.
///
/// Example:
///   tend replica rebuild h9 --yes
#[derive(Debug, Subcommand)]
#[command(verbatim_doc_comment)]
pub enum ReplicaCommand {
    Rebuild(RebuildArgs),
}

/// Rebuild a replica from the newest backup and the shipped binlogs
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub common: Common,
    /// The replica (a database host that replicates from the primary now)
    pub host: String,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (needed when not at a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// What one restore run is asked to do.
struct Job {
    command: &'static str,
    target: String,
    backup: String,
    dry_run: bool,
    force: bool,
    yes: bool,
    lock_wait: u64,
    /// A rebuild: the data must be the primary's current history.
    rebuild: bool,
}

/// Runs `tend replica ...`.
pub fn replica(cmd: ReplicaCommand) -> Result<Code, CliError> {
    let ReplicaCommand::Rebuild(a) = cmd;
    let job = Job {
        command: "replica rebuild",
        target: a.host.clone(),
        backup: "latest".into(),
        dry_run: a.dry_run,
        force: true,
        yes: a.yes,
        lock_wait: a.lock_wait,
        rebuild: true,
    };
    let r = resolve(&a.common, None)?;
    r.member(&a.host, "")?;
    start(&a.common, r, job, Wanted::End)
}

/// Runs `tend restore`.
pub fn run(a: RestoreArgs) -> Result<Code, CliError> {
    let wanted = wanted(&a)?;
    if a.backup != "latest" && !crate::backup::catalog::valid_id(&a.backup) {
        return Err(Diagnostic::plain(format!("--backup `{}` is not a backup id", a.backup))
            .with_hint("`tend backup list` shows the ids")
            .into());
    }
    let r = resolve(&a.common, None)?;
    let job = Job {
        command: "restore",
        target: a.target.clone(),
        backup: a.backup.clone(),
        dry_run: a.dry_run,
        force: a.force,
        yes: a.yes,
        lock_wait: a.lock_wait,
        rebuild: false,
    };
    start(&a.common, r, job, wanted)
}

fn start(common: &Common, r: Resolved, a: Job, wanted: Wanted) -> Result<Code, CliError> {
    let target = r.member(&a.target, if a.rebuild { "" } else { "--target " })?.clone();
    let spec = Spec {
        command: a.command,
        reason: format!("restore {} to {}", target.name, wanted.describe()),
        layout: Layout::Steps,
        lock_wait: (!a.dry_run).then_some(a.lock_wait),
        hosts: vec![target.clone()],
        roles: true,
    };
    operate(common, &r, spec, async |s: &Session<'_>, _, roles: &Roles| {
        let clock = ops::Clock::start();
        let result = restore(s, &a, &r, (roles, &wanted)).await;
        record(s, (clock, a.command), &target.name, result)
    })
}

fn wanted(a: &RestoreArgs) -> Result<Wanted, CliError> {
    if let Some(t) = &a.to_time {
        if restore::parse_time(t).is_none() {
            return Err(Diagnostic::plain(format!("--to-time `{t}` is not a time"))
                .with_hint("write \"YYYY-MM-DD HH:MM:SS\" (the server's local time), or add an offset: \"2026-12-01 14:07:00+01:00\" or \"...Z\"")
                .into());
        }
        return Ok(Wanted::Time(t.trim().to_string()));
    }
    if let Some(g) = &a.to_gtid {
        let Some(g) = Gtid::parse(g) else {
            return Err(Diagnostic::plain(format!("--to-gtid `{g}` is not a GTID"))
                .with_hint("write domain-server-sequence, e.g. 0-1-4711")
                .into());
        };
        return Ok(Wanted::Gtid(g));
    }
    if let Some(p) = &a.before {
        if replay::normalize(p).is_empty() {
            return Err(Diagnostic::plain("--before needs a statement pattern, e.g. \"DROP TABLE orders\"").into());
        }
        return Ok(Wanted::Before(p.clone()));
    }
    Ok(Wanted::End)
}

/// What a restore reports.
struct Done {
    backup: String,
    end: String,
    txns: usize,
    dry_run: bool,
}

async fn restore(s: &Session<'_>, a: &Job, r: &Resolved, (roles, wanted): (&Roles, &Wanted)) -> Result<Done, Abort> {
    let Some(host) = s.host(&a.target) else {
        return Err(Abort::new(Code::Unreachable, format!("{} is unreachable", a.target)));
    };
    // The target's role is the one its server has now, whatever the inventory's group says.
    roles.placed(&a.target)?;
    let primary = roles.primary.name == a.target;
    if a.rebuild && primary {
        return Err(Abort::new(
            Code::InvalidInput,
            format!(
                "{} is the primary now: only a replica is rebuilt; nothing was changed",
                a.target
            ),
        )
        .hint("`tend failover status` shows the roles"));
    }
    let lb = match &r.lb {
        Some((lb, address)) if primary => match s.host(&lb.name) {
            Some(h) => Some((h, lb, address)),
            None => {
                return Err(Abort::new(
                    Code::Unreachable,
                    format!(
                        "the balancer {} is unreachable: the applications' writes cannot be stopped for the restore; nothing was changed",
                        lb.name
                    ),
                ));
            }
        },
        _ => None,
    };
    let db = Db::admin(host, &r.settings.login);
    let store = &r.settings.store;
    let store_host = r.store_host.as_ref().and_then(|t| s.host(&t.name));
    // The newest binlogs first: the point may be minutes old. (The primary answered when the
    // roles were read: an unreachable one stops the run before this.)
    if let Some(p) = s.host(&roles.primary.name) {
        let t = Instant::now();
        let pdb = Db {
            host: p.clone(),
            ..db.clone()
        };
        match binlogs::ship_locked(&pdb, (store, store_host), Duration::from_secs(60), &s.cancel).await {
            Ok(shipped) => s.step(
                StepEvent::new(
                    &roles.primary.name,
                    "ship",
                    if shipped.bytes > 0 { Status::Changed } else { Status::Ok },
                    format!(
                        "{} bytes of binlogs shipped; covered until {}",
                        shipped.bytes,
                        replay::show_time(shipped.index.covered_until)
                    ),
                )
                .took(t.elapsed()),
            ),
            Err(abort) => s.events().warn(format!(
                "the primary's newest binlogs were not shipped ({}); restoring from what the store has",
                abort.error.message
            )),
        }
    }
    let (backups, _) = store
        .list(store_host)
        .await
        .map_err(|e| Abort::step("cannot read the catalog", &e))?;
    // A backup's position names the binlogs of the primary of its time: after a failover
    // those of the old primary, which the new one's do not continue.
    let (backups, before): (Vec<_>, Vec<_>) = backups
        .into_iter()
        .partition(|b| b.binlog_host.as_deref().is_none_or(|h| h == roles.primary.name));
    if let Some(old) = before.iter().find(|b| b.id == a.backup) {
        return Err(Abort::new(
            Code::InvalidInput,
            format!(
                "backup {} was taken while {} was the primary; {} is the primary now and its binlogs do not roll it forward; nothing was changed",
                old.id,
                old.binlog_host.as_deref().unwrap_or("another server"),
                roles.primary.name
            ),
        )
        .hint("take a backup now: `tend backup run`"));
    }
    if !backups
        .iter()
        .any(|b| b.state == crate::backup::catalog::State::Complete)
        && let Some(old) = before
            .iter()
            .rev()
            .find(|b| b.state == crate::backup::catalog::State::Complete)
    {
        return Err(Abort::new(
            Code::InvalidInput,
            format!(
                "every complete backup was taken while {} was the primary ({} newest); {} is the primary now and its binlogs do not roll them forward; nothing was changed",
                old.binlog_host.as_deref().unwrap_or("another server"),
                old.id,
                roles.primary.name
            ),
        )
        .hint("take a backup now: `tend backup run`"));
    }
    let index = Index::load(store, store_host, &roles.primary.name)
        .await
        .map_err(|e| Abort::step("cannot read the binlog index", &e))?;
    let time = match wanted {
        Wanted::Time(t) => {
            let spec = restore::parse_time(t).ok_or_else(|| Abort::new(Code::InvalidInput, "bad time"))?;
            Some(restore::resolve_time(&db, &spec).await?)
        }
        _ => None,
    };
    let key = hex::encode(&sha2::Sha256::digest(format!("{}|{wanted:?}|{}", a.target, a.backup))[..8]);
    let mut staged = Staged::new(&key);
    let yes = a.yes;
    let pick = |matches: &[&Txn]| -> Option<usize> {
        let rows = matches
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({
                    "n": i + 1,
                    "time": replay::show_time(t.time),
                    "gtid": t.gtid,
                    "thread": t.thread,
                    "where": format!("{}:{}", t.file, t.at),
                    "statement": t.text.chars().take(100).collect::<String>(),
                })
            })
            .collect();
        s.events().table(
            "matches",
            &[
                ("n", "#"),
                ("time", "TIME"),
                ("gtid", "GTID"),
                ("thread", "THREAD"),
                ("statement", "STATEMENT"),
            ],
            rows,
        );
        if yes || matches.len() == 1 {
            return Some(0);
        }
        choose("restore to just before which statement?", matches.len())
    };
    let chosen = (a.backup != "latest").then_some(a.backup.as_str());
    let prepared = restore::prepare(
        s,
        (store, store_host),
        &db,
        (&backups, chosen),
        (&index, &mut staged),
        (wanted, time),
        &pick,
    )
    .await;
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            restore::clean(host, &staged).await;
            return Err(e);
        }
    };
    if a.rebuild
        && let (Some(f), Some(p)) = (&prepared.backup.binlog_file, prepared.backup.binlog_pos)
        && let Some(k) = index.break_after(f, p)
    {
        restore::clean(host, &staged).await;
        return Err(Abort::new(
            Code::InvalidInput,
            format!(
                "the primary was restored (at GTID {}) after the newest backup {}: a replica built from it would not match the primary",
                k.gtid, prepared.backup.id
            ),
        )
        .hint(format!("take a backup of the primary first: `tend backup run --from {}`", roles.primary.name)));
    }
    // The run: what it restores and where it ends (a rebuild's end moves with the binlogs).
    let run = format!("{key}-{}-{}", &prepared.backup.id, prepared.plan.end);
    let run = hex::encode(&sha2::Sha256::digest(run)[..8]);
    let plan = &prepared.plan;
    let binlog_files: Vec<String> = prepared.files.iter().map(|f| f.name.clone()).collect();
    s.events().note(format!(
        "plan: backup {} (GTID {}), binlogs {}, {} transactions, stop {}; the data ends at GTID {}",
        prepared.backup.id,
        prepared.backup.gtid,
        if binlog_files.is_empty() {
            "none".to_string()
        } else {
            binlog_files.join(" ")
        },
        plan.apply.len(),
        plan.stop
            .as_ref()
            .map_or("at the end of the shipped binlogs".to_string(), |(f, at)| format!(
                "before {f}:{at}"
            )),
        plan.end
    ));
    let physical = prepared.backup.kind == Kind::Physical;
    let check = async {
        // A physical backup is checked as it is unpacked, before anything is touched.
        if a.dry_run || !physical {
            restore::check_store((store, store_host), &prepared.backup).await?;
        }
        if physical {
            crate::backup::physical::same_series(&db, &prepared.backup).await?;
        }
        let state = restore::target_state(&db)
            .await
            .map_err(|e| Abort::step("cannot read the target's state", &e))?;
        let ours = state.row.as_ref().is_some_and(|(rn, _, _)| rn == &run);
        if !ours && let Some(g) = state.position.ahead_of(&plan.end) {
            if !a.force && !a.dry_run {
                return Err(Abort::new(
                    Code::InvalidInput,
                    format!(
                        "{} holds transactions past the restore point (GTID {g}; the point is {}): they would be lost",
                        a.target, plan.end
                    ),
                )
                .hint("check with --dry-run, then add --force to restore anyway"));
            }
            s.events().warn(format!(
                "{} holds transactions past the restore point (up to {g}); {}",
                a.target,
                if a.force {
                    "--force: they will be lost"
                } else {
                    "they would be lost: the restore needs --force"
                }
            ));
        }
        Ok(state)
    };
    let state = match check.await {
        Ok(state) => state,
        Err(e) => {
            restore::clean(host, &staged).await;
            return Err(e);
        }
    };
    let done = Done {
        backup: prepared.backup.id.clone(),
        end: plan.end.to_string(),
        txns: plan.apply.len(),
        dry_run: a.dry_run,
    };
    if a.dry_run {
        restore::clean(host, &staged).await;
        s.events().note("dry run: nothing was changed");
        return Ok(done);
    }
    if !a.yes && !confirm(&format!("replace every database of {} with this?", a.target)) {
        restore::clean(host, &staged).await;
        return Err(
            Abort::new(Code::InvalidInput, "restore not confirmed; nothing was changed")
                .hint("run again with `--yes` to restore"),
        );
    }
    // A physical backup is unpacked and prepared beside the datadir while the server still
    // serves (unless this run got further already).
    let ours = state.row.as_ref().is_some_and(|(rn, _, _)| rn == &run);
    let unpacked = physical && !ours;
    if unpacked
        && let Err(e) = crate::backup::physical::stage(s, (store, store_host), &db, &run, &prepared.backup).await
    {
        restore::clean(host, &staged).await;
        return Err(e);
    }
    // Writes stopped (primary) or replication stopped (replica) for the duration.
    let mut writes: Option<Held> = None;
    if primary {
        if let Some((lbh, lb, address)) = lb {
            let t = Instant::now();
            let held = ops::proxy::stop_writes(lbh, &r.settings.proxy_upstream)
                .await
                .map_err(|e| Abort::step("cannot stop writes at the database proxy; nothing was changed", &e))?;
            writes = Some(held);
            let killed = ops::proxy::kill_sessions_from(&db, address).await.unwrap_or(0);
            s.step(
                StepEvent::new(
                    &lb.name,
                    "stop writes",
                    Status::Changed,
                    format!("database proxy stopped; {killed} open sessions ended"),
                )
                .took(t.elapsed()),
            );
        } else {
            s.events()
                .warn("no balancer (`lb`) in the inventory: application writes are not stopped");
        }
    } else {
        let mut q = Script::new();
        q.sql("STOP SLAVE");
        db.query("stop replication", &q)
            .await
            .map_err(|e| Abort::step("cannot stop replication; nothing was changed", &e))?;
    }
    if primary {
        // The primary's binlog describes another history from here: recorded before anything is
        // dropped (nothing the restore does is binlogged, so the position holds).
        if let Err(e) = binlogs::mark_break(&db, (store, store_host), &s.cancel).await {
            if let Some(held) = writes {
                let _ = held.release().await;
            }
            restore::clean(host, &staged).await;
            return Err(e);
        }
    }
    let applied = restore::apply(s, (store, store_host), &db, (&run, &staged, unpacked), &prepared).await;
    let after = match &applied {
        Ok(()) if !primary => replicate(s, &db, &a.target, &plan.end.to_string()).await,
        Ok(()) => {
            for rep in &roles.replicas {
                s.events().warn(format!(
                    "{} holds data the restored primary no longer has: rebuild it (`tend replica rebuild {}`)",
                    rep.name, rep.name
                ));
            }
            Ok(())
        }
        Err(_) => Ok(()),
    };
    restore::clean(host, &staged).await;
    if let (Some(held), Some((lb, _))) = (writes, &r.lb) {
        let t = Instant::now();
        if applied.is_ok() {
            match held.release().await {
                Ok(()) => s.step(
                    StepEvent::new(&lb.name, "resume writes", Status::Changed, "database proxy open again")
                        .took(t.elapsed()),
                ),
                Err(e) => s.failed(&e),
            }
        } else {
            // A half-restored primary takes no writes while tend can say so.
            let _ = ops::proxy::keep_stopped(held).await;
            s.events().warn(format!(
                "writes stay stopped at the database proxy on {}: run the same command again to finish the restore; to let writes through without it, on {}: mv {f}.tend-writes-stopped {f} && nginx -s reload",
                lb.name,
                lb.name,
                f = ops::proxy::upstream_file(&r.settings.proxy_upstream)
            ));
        }
    }
    applied?;
    after?;
    Ok(done)
}

/// A restored replica replicates again from the restored point. Its own binlog holds the
/// history it had before (`log_slave_updates`), past the point: reset, or `gtid_strict_mode`
/// would refuse the first replicated transaction.
async fn replicate(s: &Session<'_>, db: &Db, name: &str, end: &str) -> Result<(), Abort> {
    let t = Instant::now();
    let mut q = Script::new();
    q.sql("RESET MASTER");
    q.sql(&format!(
        "SET GLOBAL gtid_slave_pos = {}",
        crate::migrate::db::text(end)
    ));
    q.sql("CHANGE MASTER TO MASTER_USE_GTID = slave_pos");
    q.sql("START SLAVE");
    db.query("start replication", &q)
        .await
        .map_err(|e| Abort::step("the replica is restored but does not replicate", &e))?;
    let waited = crate::backup::take::wait_caught_up(db)
        .await
        .map_err(|e| Abort::step("cannot read the replica's status", &e))?;
    match waited {
        CatchUp::Stopped(error) => {
            return Err(Abort::new(
                Code::HostFailed,
                format!("{name} is restored but replication stopped: {error}"),
            )
            .hint("see `SHOW SLAVE STATUS`; `tend replica rebuild` seeds it again"));
        }
        CatchUp::Done => {
            s.step(
                StepEvent::new(
                    name,
                    "replicate",
                    Status::Changed,
                    format!("replicating from GTID {end}, caught up"),
                )
                .took(t.elapsed()),
            );
            return Ok(());
        }
        CatchUp::Behind => {}
    }
    s.events().warn(format!(
        "{name} replicates from GTID {end} but has not caught up within 30 s: see `SHOW SLAVE STATUS`"
    ));
    Ok(())
}

fn record(s: &Session<'_>, (clock, command): (ops::Clock, &str), target: &str, result: Result<Done, Abort>) -> Outcome {
    let result = match result {
        Ok(d) => {
            let mut m = serde_json::Map::new();
            m.insert("backup".into(), d.backup.into());
            m.insert("gtid".into(), d.end.into());
            m.insert("transactions".into(), d.txns.into());
            m.insert("dry_run".into(), d.dry_run.into());
            Ok(if d.dry_run {
                ("planned", Status::Ok, m)
            } else {
                ("restored", Status::Changed, m)
            })
        }
        Err(abort) => Err((abort, serde_json::Map::new())),
    };
    clock.one_host(s, (command, "db", target), result)
}
