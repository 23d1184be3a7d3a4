//! The changes: `up` (with its resume), `undo`, `baseline` and `repair`, each a runbook on one
//! [`Db`] whose failures say what to do next. MariaDB's DDL is not transactional: what a
//! failing migration ran stays, so `up` keeps a journal of completed statements in the schema
//! and, by default, puts the touched tables back from the snapshot it took before starting.

use super::db::text;
use super::db::{Db, Script, SessionError};
use super::files::{Kind, Migration, Migrations, Version};
use super::history::{self, BASELINE_TEXT, JOURNAL, NewRow, State, TABLE, kind};
use super::info::{self, Info, Status};
use super::plan::{self, Limit};
use super::shape::{Action, shape};
use super::snapshot::{self, Scope, Snapshot};
use crate::exit::Code;
use crate::ops::{Abort, Progress};
use crate::output::{Status as StepStatus, StepEvent};
use crate::transport::StepError;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to do when a migration fails part-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnFailure {
    /// Put the touched tables back from the snapshot: the schema is as it was before `up`.
    Restore,
    /// Leave what ran; `up --resume` continues from the failed statement.
    Stop,
}

/// How `up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Apply versions up to this one.
    pub to: Option<Version>,
    /// Apply pending versions below the current one.
    pub out_of_order: bool,
    /// Run statements that block writes on large tables.
    pub allow_blocking: bool,
    /// What a failure does.
    pub on_failure: OnFailure,
    /// Continue a failed migration.
    pub resume: bool,
    /// `migrate_blocking_limit`.
    pub limit: Limit,
    /// `migrate_max_replica_lag`.
    pub max_lag: Duration,
    /// Where snapshots go.
    pub snapshot_dir: PathBuf,
}

/// What `up` or `undo` did, for the record.
#[derive(Debug, Default)]
pub struct Report {
    /// The version before.
    pub before: Option<String>,
    /// The version after.
    pub after: Option<String>,
    /// Each migration run: script, version, statements, milliseconds.
    pub applied: Vec<Json>,
    /// The snapshot taken.
    pub snapshot: Option<Snapshot>,
}

impl Report {
    /// The record's fields.
    pub fn details(&self, db: &Db) -> serde_json::Map<String, Json> {
        let mut d = serde_json::Map::new();
        d.insert("database".into(), db.database.clone().into());
        d.insert("version_before".into(), json!(self.before));
        d.insert("version_after".into(), json!(self.after));
        d.insert("migrations".into(), Json::Array(self.applied.clone()));
        if let Some(s) = &self.snapshot {
            d.insert(
                "snapshot".into(),
                json!({
                    "path": s.path.display().to_string(),
                    "sha256": s.sha256,
                    "bytes": s.bytes,
                    "tables": s.tables,
                    "seconds": (s.took.as_secs_f64() * 10.0).round() / 10.0,
                }),
            );
        }
        d
    }
}

/// Reads the history and refuses a replica.
pub async fn state(db: &Db) -> Result<State, Abort> {
    let state = history::read(db)
        .await
        .map_err(|e| Abort::step("cannot read the schema history", &e))?;
    Ok(state)
}

/// Refuses to change a server that is `read_only` (a replica).
fn writable(db: &Db, state: &State) -> Result<(), Abort> {
    if state.read_only {
        return Err(Abort::new(
            Code::InvalidInput,
            format!(
                "{} is read_only (a replica); migrations run on the primary, replicas follow",
                db.host.name()
            ),
        )
        .hint("point `--target` at the primary (default: the `db_primary` group)"));
    }
    Ok(())
}

/// The SHA-256 of a statement's text, as the journal keeps it.
fn sha(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// The server's message without the client's "at line N" (a line of tend's session, not of
/// the file).
fn server_message(e: &StepError) -> String {
    let text = e.failure().map(|f| f.message.clone()).unwrap_or_else(|| e.message());
    match (text.find(" at line "), text.find("): ")) {
        (Some(at), _) => {
            let rest = &text[at + 9..];
            match rest.find(": ") {
                Some(colon) => format!("{}{}", &text[..at], &rest[colon..]),
                None => text,
            }
        }
        _ => text,
    }
}

fn first_line(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or_default().trim();
    let mut short: String = line.chars().take(120).collect();
    if short.len() < sql.trim().len() {
        short.push_str(" ...");
    }
    short
}

/// The tables the snapshot must hold for `pending`.
fn scope(db: &Db, pending: &[&Migration]) -> Scope {
    let mut touched = snapshot::Touched::default();
    for m in pending {
        for st in &m.statements {
            let sh = shape(&st.sql, &db.database);
            if sh.action == Action::Unknown {
                return Scope::Schema;
            }
            if sh.action == Action::Write {
                touched.written.extend(sh.tables.iter().cloned());
            }
            touched.tables.extend(sh.tables);
            touched.triggers.extend(sh.trigger);
        }
    }
    Scope::Tables(touched)
}

/// Holds the server-side lock Flyway also takes, for the whole change.
async fn server_lock(db: &Db) -> Result<super::db::Held, Abort> {
    let name = history::lock_name(&db.database);
    db.hold_lock(&name, 10).await.map_err(|e| match e {
        super::db::LockError::Held(holder) => Abort::new(
            Code::Locked,
            format!(
                "the schema `{}` is being migrated by another session ({holder}); nothing was changed",
                db.database
            ),
        )
        .hint(format!(
            "a Flyway or tend run holds the server lock `{name}`; wait for it to finish"
        )),
        super::db::LockError::Step(e) => Abort::step("cannot take the server lock", &e),
    })
}

/// How long a run waits for the session of an interrupted run to end.
const ORPHAN_WAIT_S: u64 = 240;

/// A migration's session outlives the connection that started it: when the control node or
/// the host's sshd dies, the server goes on with the statements it was sent. Each session
/// holds this lock while it runs, and a new run waits for it, so it never reads a history
/// that is still being written.
async fn no_orphan_session(db: &Db) -> Result<(), Abort> {
    let name = text(&history::session_lock_name(&db.database));
    let sql = format!(
        "SELECT GET_LOCK({name}, {ORPHAN_WAIT_S}) AS l, RELEASE_LOCK({name}) AS r, (SELECT ID FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK({name})) AS holder"
    );
    let row = db
        .one("wait for an interrupted run's session", &sql)
        .await
        .map_err(|e| Abort::step("cannot check for an interrupted run's session", &e))?;
    if row.first("l") == Some("1") {
        return Ok(());
    }
    let holder = row.first("holder").unwrap_or("?").to_string();
    Err(Abort::new(
        Code::Locked,
        format!(
            "a session of an interrupted run (connection {holder}) is still applying a migration to `{}` after {ORPHAN_WAIT_S} s; nothing was changed",
            db.database
        ),
    )
    .hint(format!(
        "wait for it to end, or stop it with `KILL {holder}` on the server; then run the command again"
    )))
}

/// Ensures the schema, the history table and the journal exist (Flyway's schema row when the
/// schema is created here).
async fn prepare(db: &Db, state: &State) -> Result<(), Abort> {
    let mut s = Script::new();
    if !state.schema_exists {
        s.sql(&format!("CREATE DATABASE IF NOT EXISTS {}", db.schema()));
    }
    history::create(&mut s, db);
    history::create_journal(&mut s, db);
    if !state.schema_exists {
        history::insert_schema_row(&mut s, db);
    }
    db.query("prepare the history", &s)
        .await
        .map_err(|e| Abort::step("cannot create the schema history", &e))?;
    Ok(())
}

/// Deletes the failed row of a migration (there is at most one: a new failure replaces it).
fn delete_failed(db: &Db, m: &Migration) -> String {
    format!(
        "DELETE FROM {}.`{TABLE}` WHERE `success` = 0 AND {}",
        db.schema(),
        rows_of(m)
    )
}

/// The where-clause that finds a migration's rows.
fn rows_of(m: &Migration) -> String {
    match &m.version {
        Some(v) => format!("`version` = {}", text(v.as_str())),
        None => format!("`version` IS NULL AND `description` = {}", text(&m.description)),
    }
}

/// Waits until every replica has applied the primary's binlog up to `pos`.
async fn catch_up(progress: &dyn Progress, replicas: &[Db], pos: &str, max_lag: Duration) -> Result<(), Abort> {
    if pos.trim().is_empty() || replicas.is_empty() {
        return Ok(());
    }
    let waits = replicas.iter().map(|r| async move {
        let mut s = Script::new();
        let m = s.mark();
        s.sql(&format!(
            "SELECT MASTER_GTID_WAIT({}, {}) AS w",
            text(pos),
            max_lag.as_secs_f64()
        ));
        let started = Instant::now();
        let reply = r.query("wait for the replica", &s).await;
        (
            r,
            reply.map(|x| x.set(m).first("w").unwrap_or("-1").to_string()),
            started.elapsed(),
        )
    });
    for (r, answer, took) in futures_util::future::join_all(waits).await {
        match answer {
            Ok(w) if w == "0" => {
                if took > Duration::from_secs(1) {
                    progress.note(format!(
                        "{} caught up with the primary in {:.1} s",
                        r.host.name(),
                        took.as_secs_f64()
                    ));
                }
            }
            Ok(_) => {
                return Err(Abort::new(
                    Code::HostFailed,
                    format!(
                        "replica {} has not caught up with the primary (GTID {pos}) within {} s; stopped before the next migration",
                        r.host.name(),
                        max_lag.as_secs()
                    ),
                )
                .hint("look at `SHOW SLAVE STATUS` on the replica; raise `migrate_max_replica_lag` for long migrations; `tend migrate up` continues"));
            }
            Err(e) => return Err(Abort::step("cannot check the replica", &e)),
        }
    }
    Ok(())
}

/// `up`: under Flyway's server lock (taken before the history is read, so no other run's
/// changes can slip in between), validate, check for blocking statements, snapshot, apply
/// migration by migration (one session each), let replicas catch up between them; on a
/// failure, record it and restore.
pub async fn up(
    progress: &dyn Progress,
    db: &Db,
    replicas: &[Db],
    files: &Migrations,
    opts: &UpOptions,
) -> Result<Report, (Abort, Report)> {
    locked(db, up_locked(progress, db, replicas, files, opts)).await
}

/// Runs `work` holding Flyway's server lock on the schema, once no session of an interrupted
/// run is still applying statements.
async fn locked(
    db: &Db,
    work: impl std::future::Future<Output = Result<Report, (Abort, Report)>>,
) -> Result<Report, (Abort, Report)> {
    let lock = match server_lock(db).await {
        Ok(l) => l,
        Err(e) => return Err((e, Report::default())),
    };
    if let Err(e) = no_orphan_session(db).await {
        let _ = lock.release().await;
        return Err((e, Report::default()));
    }
    let result = work.await;
    let _ = lock.release().await;
    result
}

async fn up_locked(
    progress: &dyn Progress,
    db: &Db,
    replicas: &[Db],
    files: &Migrations,
    opts: &UpOptions,
) -> Result<Report, (Abort, Report)> {
    let mut report = Report::default();
    macro_rules! bail {
        ($e:expr) => {
            return Err(($e, report))
        };
    }
    let state = match state(db).await {
        Ok(s) => s,
        Err(e) => bail!(e),
    };
    if let Err(e) = writable(db, &state) {
        bail!(e);
    }
    let info = info::reconcile(files, &state, opts.out_of_order);
    report.before = info.current.as_ref().map(Version::to_string);
    report.after = report.before.clone();
    let problems: Vec<_> = info
        .problems()
        .into_iter()
        .filter(|p| !(opts.resume && info.failed().is_some_and(|f| f.script == p.script)))
        .collect();
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.script, p.message))
            .collect();
        let mut stop = Abort::new(
            Code::HostFailed,
            format!("validation failed; nothing was changed:\n  {}", list.join("\n  ")),
        );
        if info.failed().is_some() {
            stop = stop.hint("fix the failed statement in its file (a run that was cut off needs no fix), then `tend migrate up --resume`");
        } else {
            stop = stop
                .hint("`tend migrate info` shows every migration's state; `tend migrate repair` re-aligns checksums");
        }
        bail!(stop);
    }
    let mut pending = info.pending(files, opts.to.as_ref());
    // The failed migration, resumed, goes first among its kind.
    let mut resume_from = 0;
    let failed = info.failed().cloned();
    match (&failed, opts.resume) {
        (Some(f), true) => {
            let Some(m) = files
                .versioned
                .iter()
                .chain(&files.repeatable)
                .find(|m| m.script == f.script || (m.version.is_some() && m.version == f.version))
            else {
                bail!(Abort::new(
                    Code::InvalidInput,
                    format!("the failed migration {} has no file to resume from", f.script)
                ));
            };
            let done: Vec<_> = state.journal.iter().filter(|d| d.script == m.script).collect();
            for d in &done {
                let now = m.statements.get(d.statement.saturating_sub(1));
                if now.map(|s| sha(&s.sql)) != Some(d.sha256.clone()) {
                    let line = now.map_or(0, |s| s.line);
                    let hint = if d.restored {
                        "its changes were put back from the snapshot: to run the edited file from its start, `tend migrate repair --yes` then `tend migrate up`"
                    } else {
                        "put the statement back as it was: its changes are in the schema; to start the migration over, undo them by hand, then `tend migrate repair --yes` and `tend migrate up`"
                    };
                    bail!(
                        Abort::new(
                            Code::InvalidInput,
                            format!(
                                "cannot resume {}: statement {} ({}) changed since it ran; a resume continues the migration as it ran, with only the failed statement fixed",
                                m.script,
                                d.statement,
                                m.at(line)
                            ),
                        )
                        .hint(hint)
                    );
                }
            }
            // The statements whose changes are still in the schema are not run again; those put
            // back by a restore are.
            resume_from = done
                .iter()
                .filter(|d| !d.restored)
                .map(|d| d.statement)
                .max()
                .unwrap_or(0);
            let at = pending
                .iter()
                .position(|p| p.kind == m.kind && (m.kind == Kind::Repeatable || p.version > m.version))
                .unwrap_or(pending.len());
            pending.insert(at, m);
        }
        (None, true) => bail!(Abort::new(
            Code::InvalidInput,
            "nothing to resume: no migration has failed"
        )),
        _ => {}
    }
    if pending.is_empty() {
        progress.note(format!(
            "schema `{}` is up to date at version {}",
            db.database,
            report.before.as_deref().unwrap_or("none")
        ));
        return Ok(report);
    }
    // What would block writes on a large table.
    let steps = match plan::plan(db, &pending).await {
        Ok(s) => s,
        Err(e) => bail!(Abort::step("cannot plan the migrations", &e)),
    };
    let blocking: Vec<_> = steps.iter().filter(|s| s.blocking() && s.over(&opts.limit)).collect();
    if !blocking.is_empty() {
        let list: Vec<String> = blocking
            .iter()
            .map(|s| {
                format!(
                    "{}:{}: {} on `{}` ({} rows, {} bytes): ALGORITHM={} LOCK={}{}",
                    s.file,
                    s.line,
                    first_line(&s.sql),
                    s.table.as_deref().unwrap_or("?"),
                    s.rows.unwrap_or(0),
                    s.bytes.unwrap_or(0),
                    s.algorithm.as_deref().unwrap_or("?"),
                    s.lock.as_deref().unwrap_or("?"),
                    s.estimate_s.map(|e| format!(", about {e} s")).unwrap_or_default()
                )
            })
            .collect();
        if !opts.allow_blocking {
            bail!(Abort::new(
                Code::HostFailed,
                format!(
                    "refused: {} statement(s) would block writes to a table above the limit ({}); nothing was changed:\n  {}",
                    blocking.len(),
                    opts.limit,
                    list.join("\n  ")
                ),
            )
            .hint("rewrite them to run online (`tend migrate plan` shows what the server would do), or run in a quiet hour with `--allow-blocking`"));
        }
        for l in list {
            progress.warn(format!("blocking (allowed): {l}"));
        }
    }
    let resumed = if opts.resume { failed.map(|f| f.script) } else { None };
    let result = apply_all(
        progress,
        db,
        replicas,
        &state,
        &pending,
        (resumed.as_deref(), resume_from),
        opts,
        &mut report,
    )
    .await;
    match result {
        Ok(()) => Ok(report),
        Err(stop) => Err((stop, report)),
    }
}

#[allow(clippy::too_many_arguments)]
async fn apply_all(
    progress: &dyn Progress,
    db: &Db,
    replicas: &[Db],
    state: &State,
    pending: &[&Migration],
    (resumed, resume_from): (Option<&str>, usize),
    opts: &UpOptions,
    report: &mut Report,
) -> Result<(), Abort> {
    let host = db.host.name().to_string();
    // The schema and history first: a schema created here is snapshotted empty.
    prepare(db, state).await?;
    let snap = if opts.on_failure == OnFailure::Restore {
        let sc = scope(db, pending);
        let snap = snapshot::take(db, &sc, &opts.snapshot_dir)
            .await
            .map_err(|e| Abort::step("cannot take the safety snapshot; nothing was changed", &e))?;
        progress.step(
            StepEvent::new(
                &host,
                "snapshot",
                StepStatus::Ok,
                format!(
                    "{} ({} bytes, sha256 {}) -> {}",
                    snap.holds(),
                    snap.bytes,
                    snap.sha256.get(..12).unwrap_or_default(),
                    snap.path.display()
                ),
            )
            .took(snap.took),
        );
        report.snapshot = Some(snap.clone());
        Some(snap)
    } else {
        None
    };
    let rank_before = state.rows.iter().map(|r| r.installed_rank).max().unwrap_or(0);
    for m in pending {
        let resuming = resumed == Some(m.script.as_str());
        let start = if resuming { resume_from } else { 0 };
        let row = NewRow {
            version: m.version.as_ref().map(Version::as_str),
            description: &m.description,
            kind: kind::SQL,
            script: &m.script,
            checksum: Some(m.checksum),
            execution_ms: ELAPSED_MS,
            success: true,
        };
        let (s, last) = migration_script(db, m, start, true, &row);
        let started = Instant::now();
        match db.session("migrate", &s, None).await {
            Ok(reply) => {
                let took = started.elapsed();
                let ran = m.statements.len() - start;
                progress.step(
                    StepEvent::new(
                        &host,
                        "migrate",
                        StepStatus::Changed,
                        format!("{}: {ran} statement(s)", m.script),
                    )
                    .took(took),
                );
                report.applied.push(json!({
                    "script": m.script,
                    "version": m.version.as_ref().map(Version::to_string),
                    "statements": ran,
                    "ms": took.as_millis() as u64,
                }));
                if let Some(v) = &m.version
                    && report.after.as_deref().and_then(Version::parse).is_none_or(|a| *v > a)
                {
                    report.after = Some(v.to_string());
                }
                let pos = reply.set(last).first("pos").unwrap_or_default().to_string();
                catch_up(progress, replicas, &pos, opts.max_lag).await?;
            }
            Err(se) => {
                let stop = failed(progress, db, m, start, &se, last).await;
                let Some(snap) = &snap else {
                    return Err(stop);
                };
                report.after = report.before.clone();
                return Err(put_back(progress, db, (m, start), snap, rank_before, stop).await);
            }
        }
    }
    Ok(())
}

/// The milliseconds since the session's start, as SQL (Flyway's `execution_time`).
const ELAPSED_MS: &str = "ROUND((UNIX_TIMESTAMP(NOW(6)) - @tend_t0) * 1000)";

/// The one session of a migration: the session lock (see [`no_orphan_session`]), then with
/// `journal` a failed row for the migration in the history (what a Flyway or tend reading the
/// history while it runs, or after the session was cut, must see), its statements from
/// `start` (each followed by its journal row when `journal`), its history row replacing the
/// failed one in one transaction, and after the returned mark the primary's binlog position,
/// for the replicas to catch up to.
fn migration_script(db: &Db, m: &Migration, start: usize, journal: bool, row: &NewRow<'_>) -> (Script, usize) {
    let mut s = Script::new();
    s.sql(&format!("USE {}", db.schema()));
    s.sql(&format!(
        "DO GET_LOCK({}, 0)",
        text(&history::session_lock_name(&db.database))
    ));
    s.sql("SET @tend_t0 = UNIX_TIMESTAMP(NOW(6))");
    if journal {
        s.sql(&delete_failed(db, m));
        history::insert(
            &mut s,
            db,
            &NewRow {
                execution_ms: "0",
                success: false,
                ..*row
            },
        );
    }
    for (k, st) in m.statements.iter().enumerate().skip(start) {
        s.statement(&st.raw);
        if journal {
            s.sql(&format!(
                "REPLACE INTO {}.`{JOURNAL}` (`script`, `statement`, `line`, `sha256`) VALUES ({}, {}, {}, '{}')",
                db.schema(),
                text(&m.script),
                k + 1,
                st.line,
                sha(&st.sql)
            ));
        }
        s.mark();
    }
    s.sql("START TRANSACTION");
    if journal {
        s.sql(&delete_failed(db, m));
    }
    history::insert(&mut s, db, row);
    if journal {
        s.sql(&format!(
            "DELETE FROM {}.`{JOURNAL}` WHERE `script` = {}",
            db.schema(),
            text(&m.script)
        ));
    }
    s.sql("COMMIT");
    let last = s.mark();
    s.sql("SELECT @@gtid_binlog_pos AS pos");
    (s, last)
}

/// Records a failed migration (Flyway's `success = 0` row) and builds the error naming the
/// file, the statement's line, the statement and the server's message.
async fn failed(
    progress: &dyn Progress,
    db: &Db,
    m: &Migration,
    start: usize,
    se: &SessionError,
    last: usize,
) -> Abort {
    let host = db.host.name();
    let reached = se.reply.reached;
    let index = start + reached;
    let (at, statement) = match m.statements.get(index) {
        Some(st) if reached < last => (m.at(st.line), first_line(&st.sql)),
        _ => (m.script.clone(), "recording the migration in the history".to_string()),
    };
    progress.step(StepEvent::failed(&se.error));
    let mut s = Script::new();
    let row = NewRow {
        version: m.version.as_ref().map(Version::as_str),
        description: &m.description,
        kind: kind::SQL,
        script: &m.script,
        checksum: Some(m.checksum),
        execution_ms: "0",
        success: false,
    };
    s.sql(&delete_failed(db, m));
    history::insert(&mut s, db, &row);
    if let Err(e) = db.query("record the failure", &s).await {
        progress.warn(format!(
            "could not mark {} failed in the history: {}",
            m.script,
            e.message()
        ));
    }
    let mut stop = Abort::new(Code::HostFailed, format!("{at}: {}", server_message(&se.error)));
    stop.error.host = Some(host.to_string());
    stop.error.step = Some("migrate".into());
    stop.error.cause = crate::output::Cause::of(&se.error);
    stop.error.cause.cmd = Some(statement);
    stop.hint("fix the statement in the file, then `tend migrate up --resume`")
}

/// Restores the snapshot after a failure: the schema as before `up`, the rows this run added
/// to the history taken out (the failed row stays), the journal rows of the statements this run
/// completed marked restored (those before `start` ran in an earlier run and are in the
/// snapshot). Returns the failure's error, told what the restore did.
async fn put_back(
    progress: &dyn Progress,
    db: &Db,
    (m, start): (&Migration, usize),
    snap: &Snapshot,
    rank_before: i64,
    mut stop: Abort,
) -> Abort {
    let started = Instant::now();
    if let Err(e) = snapshot::restore(db, snap).await {
        progress.step(StepEvent::failed(&e));
        stop.error.message = format!(
            "{}\nrestoring the snapshot failed too ({}); the touched tables may be partly restored: load {} by hand (`mariadb {} < FILE`), then `tend migrate repair`",
            stop.error.message,
            e.message(),
            snap.path.display(),
            db.database
        );
        return stop;
    }
    let mut s = Script::new();
    s.sql(&format!(
        "DELETE FROM {}.`{TABLE}` WHERE `installed_rank` > {rank_before} AND `success` = 1 AND `type` = 'SQL'",
        db.schema()
    ));
    s.sql(&format!(
        "UPDATE {}.`{JOURNAL}` SET `restored` = TRUE WHERE `script` = {} AND `statement` > {start}",
        db.schema(),
        text(&m.script)
    ));
    if let Err(e) = db.query("restore", &s).await {
        stop.error.message = format!(
            "{}\nthe snapshot was restored but the history could not be updated ({}); run `tend migrate repair`",
            stop.error.message,
            e.message()
        );
        return stop;
    }
    progress.step(
        StepEvent::new(
            db.host.name(),
            "restore",
            StepStatus::Changed,
            format!("put back {} from {}", snap.holds(), snap.path.display()),
        )
        .took(started.elapsed()),
    );
    stop.error.message = format!(
        "{}; the schema was restored to what it was before `up`",
        stop.error.message
    );
    stop
}

/// `undo`: runs the `U` files of the applied versions above `to` (without `to`: the latest
/// one), newest first, each recorded as Flyway Teams records undos (`UNDO_SQL`).
pub async fn undo(
    progress: &dyn Progress,
    db: &Db,
    replicas: &[Db],
    files: &Migrations,
    to: Option<&Version>,
    max_lag: Duration,
) -> Result<Report, (Abort, Report)> {
    locked(db, undo_locked(progress, db, replicas, files, to, max_lag)).await
}

async fn undo_locked(
    progress: &dyn Progress,
    db: &Db,
    replicas: &[Db],
    files: &Migrations,
    to: Option<&Version>,
    max_lag: Duration,
) -> Result<Report, (Abort, Report)> {
    let mut report = Report::default();
    let state = match state(db).await {
        Ok(s) => s,
        Err(e) => return Err((e, report)),
    };
    if let Err(e) = writable(db, &state) {
        return Err((e, report));
    }
    let info = info::reconcile(files, &state, true);
    report.before = info.current.as_ref().map(Version::to_string);
    report.after = report.before.clone();
    if let Some(f) = info.failed() {
        return Err((
            Abort::new(
                Code::HostFailed,
                format!("{} failed part-way; resume or repair it before undoing", f.script),
            ),
            report,
        ));
    }
    let mut applied: Vec<&info::Entry> = info
        .entries
        .iter()
        .filter(|e| e.status == Status::Applied && e.version.is_some())
        .collect();
    applied.sort_by(|a, b| b.version.cmp(&a.version));
    let targets: Vec<&info::Entry> = match to {
        Some(t) => applied
            .into_iter()
            .filter(|e| e.version.as_ref().is_some_and(|v| v > t))
            .collect(),
        None => applied.into_iter().take(1).collect(),
    };
    if targets.is_empty() {
        progress.note("nothing to undo".into());
        return Ok(report);
    }
    let mut undos = Vec::new();
    for e in &targets {
        let Some(v) = &e.version else { continue };
        match files.undo_of(v) {
            Some(u) => undos.push((v.clone(), u)),
            None => {
                return Err((
                    Abort::new(
                        Code::InvalidInput,
                        format!("version {v} ({}) has no undo file; nothing was changed", e.description),
                    )
                    .hint(format!(
                        "write `U{v}__{}.sql` beside `{}`",
                        e.description.replace(' ', "_"),
                        e.script
                    )),
                    report,
                ));
            }
        }
    }
    let host = db.host.name().to_string();
    let mut result = Ok(());
    for (i, (v, u)) in undos.iter().enumerate() {
        let row = NewRow {
            version: Some(v.as_str()),
            description: &u.description,
            kind: kind::UNDO,
            script: &u.script,
            checksum: Some(u.checksum),
            execution_ms: ELAPSED_MS,
            success: true,
        };
        let (s, last) = migration_script(db, u, 0, false, &row);
        let started = Instant::now();
        match db.session("undo", &s, None).await {
            Ok(reply) => {
                progress.step(
                    StepEvent::new(
                        &host,
                        "undo",
                        StepStatus::Changed,
                        format!("{}: version {v} undone", u.script),
                    )
                    .took(started.elapsed()),
                );
                report.applied.push(json!({"script": u.script, "version": v.to_string(), "statements": u.statements.len(), "ms": started.elapsed().as_millis() as u64}));
                report.after = undos.get(i + 1).map(|(n, _)| n.to_string()).or_else(|| {
                    info.entries
                        .iter()
                        .filter(|e| matches!(e.status, Status::Applied | Status::Baseline))
                        .filter_map(|e| e.version.clone())
                        .filter(|x| x < v)
                        .max()
                        .map(|x| x.to_string())
                });
                let pos = reply.set(last).first("pos").unwrap_or_default().to_string();
                if let Err(e) = catch_up(progress, replicas, &pos, max_lag).await {
                    result = Err(e);
                    break;
                }
            }
            Err(se) => {
                progress.step(StepEvent::failed(&se.error));
                let at = u
                    .statements
                    .get(se.reply.reached)
                    .map_or(u.script.clone(), |st| u.at(st.line));
                let mut stop = Abort::new(
                    Code::HostFailed,
                    format!("{at}: {}; version {v} is not undone", server_message(&se.error)),
                );
                stop.error.cause = crate::output::Cause::of(&se.error);
                result = Err(stop.hint("the undo file's statements before this one ran; fix the schema by hand or the file, then undo again"));
                break;
            }
        }
    }
    match result {
        Ok(()) => Ok(report),
        Err(e) => Err((e, report)),
    }
}

/// `baseline`: marks an existing schema as being at `version` (Flyway's baseline row).
pub async fn baseline(progress: &dyn Progress, db: &Db, version: &Version) -> Result<(), Abort> {
    let state = state(db).await?;
    writable(db, &state)?;
    let rows = state.rows.iter().filter(|r| r.kind != kind::SCHEMA).count();
    if rows > 0 {
        return Err(Abort::new(
            Code::InvalidInput,
            format!(
                "the schema `{}` already has a history ({rows} rows); a baseline starts a history",
                db.database
            ),
        ));
    }
    let mut s = Script::new();
    if !state.schema_exists {
        s.sql(&format!("CREATE DATABASE IF NOT EXISTS {}", db.schema()));
    }
    history::create(&mut s, db);
    history::insert(
        &mut s,
        db,
        &NewRow {
            version: Some(version.as_str()),
            description: BASELINE_TEXT,
            kind: kind::BASELINE,
            script: BASELINE_TEXT,
            checksum: None,
            execution_ms: "0",
            success: true,
        },
    );
    db.query("baseline", &s)
        .await
        .map_err(|e| Abort::step("baseline failed", &e))?;
    progress.step(StepEvent::new(
        db.host.name(),
        "baseline",
        StepStatus::Changed,
        format!("schema `{}` baselined at version {version}", db.database),
    ));
    Ok(())
}

/// One change `repair` makes.
#[derive(Debug, Clone)]
pub struct Fix {
    /// What it does, in words.
    pub what: String,
    /// The SQL.
    pub sql: String,
}

/// What `repair` would change: failed rows deleted, checksums and descriptions of applied
/// versions re-aligned with the files, rows of missing files marked deleted (Flyway's `DELETE`
/// rows), the journal of failed migrations cleared.
pub fn repairs(db: &Db, files: &Migrations, state: &State) -> Vec<Fix> {
    let t = format!("{}.`{TABLE}`", db.schema());
    let mut fixes = Vec::new();
    for r in state.rows.iter().filter(|r| !r.success) {
        fixes.push(Fix {
            what: format!(
                "delete the failed row of {} (rank {})",
                r.version
                    .as_deref()
                    .map_or(format!("`{}`", r.description), |v| format!("version {v}")),
                r.installed_rank
            ),
            sql: format!("DELETE FROM {t} WHERE `installed_rank` = {}", r.installed_rank),
        });
    }
    let info = info::reconcile(files, state, true);
    for e in &info.entries {
        match e.status {
            Status::Applied if e.version.is_some() && e.applied_checksum != e.file_checksum => {
                let Some(m) = e.file.and_then(|i| files.versioned.get(i)) else {
                    continue;
                };
                let Some(r) = state.rows.iter().rev().find(|r| {
                    r.success && r.kind == kind::SQL && r.version.as_deref().and_then(Version::parse) == m.version
                }) else {
                    continue;
                };
                fixes.push(Fix {
                    what: format!(
                        "re-align version {} ({}): checksum {} -> {}",
                        e.version.as_ref().map(Version::to_string).unwrap_or_default(),
                        m.script,
                        r.checksum.map_or("none".into(), |c| c.to_string()),
                        m.checksum
                    ),
                    sql: format!(
                        "UPDATE {t} SET `checksum` = {}, `description` = {} WHERE `installed_rank` = {}",
                        m.checksum,
                        text(&m.description),
                        r.installed_rank
                    ),
                });
            }
            Status::Missing => {
                let r = NewRow {
                    version: None,
                    description: &e.description,
                    kind: kind::DELETE,
                    script: &e.script,
                    checksum: e.applied_checksum,
                    execution_ms: "0",
                    success: true,
                };
                let mut s = Script::new();
                let version = e.version.as_ref().map(Version::to_string);
                history::insert(
                    &mut s,
                    db,
                    &NewRow {
                        version: version.as_deref(),
                        ..r
                    },
                );
                fixes.push(Fix {
                    what: format!("mark {} as deleted (its file is gone)", e.script),
                    sql: s.text().trim_end().trim_end_matches(';').to_string(),
                });
            }
            _ => {}
        }
    }
    if !state.journal.is_empty() && fixes.iter().any(|f| f.what.starts_with("delete the failed")) {
        fixes.push(Fix {
            what: "clear the statement journal of the failed migration".into(),
            sql: format!("DELETE FROM {}.`{JOURNAL}`", db.schema()),
        });
    }
    fixes
}

/// Applies `fixes` in one session.
pub async fn repair(progress: &dyn Progress, db: &Db, fixes: &[Fix]) -> Result<(), Abort> {
    let mut s = Script::new();
    for f in fixes {
        s.sql(&f.sql);
    }
    db.query("repair", &s)
        .await
        .map_err(|e| Abort::step("repair failed", &e))?;
    for f in fixes {
        progress.step(StepEvent::new(
            db.host.name(),
            "repair",
            StepStatus::Changed,
            f.what.clone(),
        ));
    }
    Ok(())
}

/// The `info` rows.
pub fn info_rows(info: &Info) -> Vec<Json> {
    info.entries
        .iter()
        .map(|e| {
            json!({
                "category": if e.version.is_some() { "versioned" } else { "repeatable" },
                "version": e.version.as_ref().map(Version::to_string),
                "description": e.description,
                "script": e.script,
                "state": e.status.word(),
                "installed_on": e.installed_on,
                "checksum": e.file_checksum,
                "applied_checksum": e.applied_checksum,
            })
        })
        .collect()
}
