//! Restoring a backup onto a database server and rolling it forward over the shipped
//! binlogs, to the end of what is shipped or to a point (a time, a GTID, just before a
//! statement).
//!
//! ```text
//! choose the backup ─► stage its binlogs on the target (SHA-256 checked) ─► scan them ─► plan
//!   ─► (confirmed) drop the server's databases, load the dump ─► replay, marking each
//!   transaction's GTID in mysql.tend_restore inside the transaction ─► check the mark is the
//!   planned end
//! ```
//!
//! Nothing is binlogged on the target (`sql_log_bin = 0`): a restored primary's binlog and
//! GTID sequence go on from where they were, never reusing a GTID for other data (its replicas
//! hold data it no longer has and are rebuilt), and `gtid_strict_mode` has nothing to refuse.
//! The state row says how far a run got: run again with the same arguments, a restore that
//! was replaying resumes after the last committed transaction, one that was loading starts
//! over, one that finished does nothing.

use super::binlogs::{BinlogFile, Index};
use super::catalog::{Backup, Kind};
use super::replay::{self, From, Plan, PlanError, Position, Scanner, Stop, Txn};
use super::store::Store;
use crate::exit::Code;
use crate::migrate::db::{Db, Script, text};
use crate::modules::mysql::ident;
use crate::ops::{Abort, Progress};
use crate::output::{Status, StepEvent};
use crate::transport::shell::{quote, tethered};
use crate::transport::{Host, Input, RemoteCommand, Sink, StepError};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the operator asked to stop at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The end of what is shipped.
    End,
    /// A time: `YYYY-MM-DD HH:MM:SS` in the server's time zone, or with an offset or `Z`.
    Time(String),
    /// A GTID (inclusive).
    Gtid(replay::Gtid),
    /// Just before the first statement matching this pattern (after the backup).
    Before(String),
}

impl Wanted {
    /// For messages and the run's identity.
    pub fn describe(&self) -> String {
        match self {
            Self::End => "the end of the shipped binlogs".into(),
            Self::Time(t) => format!("time {t}"),
            Self::Gtid(g) => format!("GTID {g}"),
            Self::Before(p) => format!("just before `{p}`"),
        }
    }
}

/// Reads `--to-time`: `None` when it is malformed.
pub fn parse_time(s: &str) -> Option<TimeSpec> {
    let s = s.trim();
    if let Ok(ts) = s.replace(' ', "T").parse::<jiff::Timestamp>() {
        return Some(TimeSpec::Absolute(ts.as_second()));
    }
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s).ok()?;
    Some(TimeSpec::ServerLocal(dt.strftime("%Y-%m-%d %H:%M:%S").to_string()))
}

/// A requested time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSpec {
    /// With an offset: Unix seconds.
    Absolute(i64),
    /// Without: to be read by the server in its time zone.
    ServerLocal(String),
}

/// The scan of staged binlog files, kept per file with the offset it started at.
#[derive(Debug, Default)]
pub struct Staged {
    dir: String,
    files: Vec<String>,
    scans: BTreeMap<String, (u64, Vec<Txn>)>,
}

impl Staged {
    /// The staging directory on the target for run `run`.
    pub fn new(run: &str) -> Self {
        Self {
            dir: format!("/var/tmp/tend-restore-{run}"),
            ..Self::default()
        }
    }

    /// The transactions of `files`, in order.
    fn txns(&self, files: &[BinlogFile]) -> Vec<Txn> {
        files
            .iter()
            .flat_map(|f| self.scans.get(&f.name).map(|(_, t)| t.clone()).unwrap_or_default())
            .collect()
    }
}

/// What a restore is about to do.
#[derive(Debug)]
pub struct Prepared {
    /// The backup restored.
    pub backup: Backup,
    /// The binlog files replayed (from the backup's file to the stop).
    pub files: Vec<BinlogFile>,
    /// Their transactions.
    pub txns: Vec<Txn>,
    /// The replay.
    pub plan: Plan,
    /// The stop, resolved.
    pub stop: Stop,
}

fn input(message: impl Into<String>) -> Abort {
    Abort::new(Code::InvalidInput, message)
}

/// Copies `files` from the store to the staging directory on the target, checking each
/// file's SHA-256 on the way, and scans them; the first is scanned from offset `from` (a
/// backup's position: what lies before it is never replayed). A file already staged is not
/// copied again, nor scanned again from where its scan started or after.
pub async fn stage(
    staged: &mut Staged,
    (store, store_host): (&Store, Option<&Host>),
    target: &Host,
    (binlog_host, files, from): (&str, &[BinlogFile], u64),
) -> Result<(), Abort> {
    let mut new = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let start = if i == 0 { from } else { 0 };
        if staged.files.contains(&f.name) {
            if staged.scans.get(&f.name).is_none_or(|(at, _)| *at > start) {
                new.push((f.name.clone(), start));
            }
            continue;
        }
        let rel = Index::file_path(binlog_host, &f.name);
        let command = RemoteCommand::new(format!(
            "umask 077\nmkdir -p -- {d} && cat > {d}/{n}.part && mv -f -- {d}/{n}.part {d}/{n}",
            d = quote(&staged.dir),
            n = quote(&f.name)
        ));
        let (out, hashed) = store
            .send(store_host, &rel, target, (&command, b""))
            .await
            .map_err(|e| Abort::step(&format!("cannot copy binlog {} to the target", f.name), &e))?;
        if !out.success() {
            return Err(Abort::new(
                Code::HostFailed,
                format!(
                    "{}: cannot stage binlog {} in {}: {}",
                    target.name(),
                    f.name,
                    staged.dir,
                    crate::transport::last_error_line(&out, "write failed")
                ),
            ));
        }
        if hashed.sha256 != f.sha256 || hashed.bytes != f.bytes {
            return Err(Abort::new(
                Code::HostFailed,
                format!(
                    "binlog {} in the store is damaged: SHA-256 {} ({} bytes), the index says {} ({} bytes); nothing was restored",
                    rel, hashed.sha256, hashed.bytes, f.sha256, f.bytes
                ),
            ));
        }
        staged.files.push(f.name.clone());
        new.push((f.name.clone(), start));
    }
    if new.is_empty() {
        return Ok(());
    }
    // One scan per new file; times read in UTC.
    let mut script = format!(
        "cd -- {} || exit 3\ncommand -v mariadb-binlog >/dev/null || {{ echo 'no mariadb-binlog on the host' >&2; exit 127; }}\n",
        quote(&staged.dir)
    );
    for (n, start) in &new {
        let from = if *start > 4 {
            format!("--start-position={start} ")
        } else {
            String::new()
        };
        script.push_str(&format!(
            "echo {}\nTZ=UTC mariadb-binlog --base64-output=decode-rows {from}-- {} || exit $?\n",
            quote(&format!("tend-file {n}")),
            quote(n)
        ));
    }
    let mut scanner = Scanner::default();
    let mut on_line = |l: &[u8]| scanner.line(&String::from_utf8_lossy(l));
    let out = target
        .stream(
            &RemoteCommand::new(script).timeout(Some(Duration::from_secs(3600))),
            Input::None,
            Sink::Lines(&mut on_line),
        )
        .await
        .map_err(|e| {
            Abort::step(
                "cannot read the binlogs",
                &StepError::transport(target.name(), "scan", e),
            )
        })?;
    if !out.success() {
        return Err(Abort::new(
            Code::HostFailed,
            format!(
                "{}: mariadb-binlog cannot read the staged binlogs: {}",
                target.name(),
                crate::transport::last_error_line(&out, "it failed")
            ),
        ));
    }
    for (n, start) in new {
        staged.scans.insert(n, (start, Vec::new()));
    }
    for t in scanner.txns {
        if let Some((_, v)) = staged.scans.get_mut(&t.file) {
            v.push(t);
        }
    }
    Ok(())
}

/// The requested time as Unix seconds: with an offset as given, else as the server reads it.
pub async fn resolve_time(db: &Db, spec: &TimeSpec) -> Result<i64, Abort> {
    match spec {
        TimeSpec::Absolute(t) => Ok(*t),
        TimeSpec::ServerLocal(s) => {
            // Past 2038 UNIX_TIMESTAMP has no answer: then the distance from now.
            let t = text(s);
            db.one(
                "read the time",
                &format!(
                    "SELECT IFNULL(NULLIF(UNIX_TIMESTAMP({t}), 0), UNIX_TIMESTAMP() + TIMESTAMPDIFF(SECOND, NOW(), {t})) AS t"
                ),
            )
            .await
            .map_err(|e| Abort::step("cannot read the time on the server", &e))?
            .first("t")
                .and_then(|t| t.split('.').next().and_then(|t| t.parse().ok()))
                .filter(|t: &i64| *t > 0)
                .ok_or_else(|| input(format!("the server cannot read `{s}` as a time")))
        }
    }
}

/// Chooses the backup (`chosen`, else the newest complete backup that can reach the stop)
/// and plans the replay. `pick` chooses among the statements a `--before` pattern matches
/// (they are listed to it).
pub async fn prepare(
    progress: &dyn Progress,
    (store, store_host): (&Store, Option<&Host>),
    target: &Db,
    (backups, chosen): (&[Backup], Option<&str>),
    (index, staged): (&Index, &mut Staged),
    (wanted, time): (&Wanted, Option<i64>),
    pick: &dyn Fn(&[&Txn]) -> Option<usize>,
) -> Result<Prepared, Abort> {
    let mut candidates: Vec<&Backup> = backups
        .iter()
        .rev()
        .filter(|b| b.state == super::catalog::State::Complete)
        .filter(|b| chosen.is_none_or(|id| b.id == id))
        .collect();
    if let Some(id) = chosen {
        if candidates.is_empty() {
            return Err(input(format!("no complete backup `{id}` in {}", store.describe()))
                .hint("`tend backup list` shows the backups"));
        }
    } else if candidates.is_empty() {
        return Err(
            input(format!("{} holds no complete backup to restore", store.describe()))
                .hint("take one with `tend backup run`"),
        );
    }
    if let Some(t) = time {
        candidates.retain(|b| started(b) <= t);
        if candidates.is_empty() {
            return Err(input(format!(
                "no backup was taken before {}{}",
                replay::show_time(t),
                window(backups, index)
            )));
        }
    }
    let host = target.host.name().to_string();
    let t0 = Instant::now();
    let mut last_error = None;
    for b in candidates {
        let (Some(file), Some(pos)) = (b.binlog_file.as_deref(), b.binlog_pos) else {
            last_error = Some(input(format!("backup {} records no binlog position", b.id)));
            continue;
        };
        let Some(files) = index.from_file(file) else {
            last_error = Some(
                input(format!(
                    "binlog {file} (where backup {} stands) was never shipped from {}",
                    b.id, index.host
                ))
                .hint("ship the binlogs with `tend backup binlogs`, then take a new backup"),
            );
            continue;
        };
        // A restore of the primary after the backup ends its history.
        let brk = index.break_after(file, pos);
        let files: Vec<BinlogFile> = files
            .iter()
            .filter(|f| brk.is_none_or(|k| f.name <= k.file))
            .cloned()
            .collect();
        stage(staged, (store, store_host), &target.host, (&index.host, &files, pos)).await?;
        let mut txns = staged.txns(&files);
        if let Some(k) = brk {
            txns.retain(|t| (t.file.as_str(), t.at) < (k.file.as_str(), k.pos));
        }
        let mut covered_until = brk.map_or(index.covered_until, |k| k.time.min(index.covered_until));
        // A chain cut by a gap covers only up to its last transaction.
        if files.last().map(|f| &f.name) != index.files.last().map(|f| &f.name) {
            covered_until = covered_until.min(txns.last().map_or_else(|| started(b), |t| t.time));
        }
        let from_pos = Position::parse(&b.gtid).unwrap_or_default();
        let stop = match wanted {
            Wanted::End => Stop::End,
            Wanted::Time(_) => Stop::Time(time.unwrap_or(i64::MAX)),
            Wanted::Gtid(g) => Stop::Gtid(*g),
            Wanted::Before(pattern) => {
                let after: Vec<&Txn> = replay::matches(&txns, pattern)
                    .into_iter()
                    .filter(|t| t.file.as_str() > file || (t.file == file && t.at >= pos))
                    .collect();
                if after.is_empty() {
                    last_error = Some(input(format!(
                        "no statement matching `{pattern}` in the binlogs after backup {} ({})",
                        b.id,
                        replay::range(&txns)
                    )));
                    continue;
                }
                let Some(i) = pick(&after) else {
                    return Err(input("no statement chosen; nothing was restored"));
                };
                let Some(g) = after.get(i).and_then(|t| replay::Gtid::parse(&t.gtid)) else {
                    return Err(input("no statement chosen; nothing was restored"));
                };
                Stop::Before(g)
            }
        };
        let from = From {
            file,
            pos,
            gtid: &from_pos,
            started: started(b),
        };
        match replay::plan(&txns, from, &stop, covered_until) {
            Ok(mut plan) => {
                if plan.stop.is_none()
                    && let Some(k) = brk
                {
                    plan.stop = Some((k.file.clone(), k.pos));
                }
                let files = files
                    .iter()
                    .take_while(|f| plan.stop.as_ref().is_none_or(|(s, _)| f.name.as_str() <= s.as_str()))
                    .cloned()
                    .collect();
                progress.step(
                    StepEvent::new(
                        &host,
                        "plan",
                        Status::Ok,
                        format!(
                            "backup {} (GTID {}), then {} transactions to GTID {}",
                            b.id,
                            b.gtid,
                            plan.apply.len(),
                            plan.end
                        ),
                    )
                    .took(t0.elapsed()),
                );
                return Ok(Prepared {
                    backup: b.clone(),
                    files,
                    txns,
                    plan,
                    stop,
                });
            }
            Err(PlanError::BeforeBackup) => {
                last_error = Some(input(format!(
                    "{} lies before every backup{}",
                    wanted.describe(),
                    window(backups, index)
                )));
            }
            Err(e @ (PlanError::Outside(_) | PlanError::NotFound(_))) => {
                return Err(input(format!("{}: {e}{}", wanted.describe(), window(backups, index))));
            }
        }
    }
    Err(last_error.unwrap_or_else(|| input("no backup can be restored to that point")))
}

/// `; the covered window is A … B` for messages.
fn window(backups: &[Backup], index: &Index) -> String {
    let first = backups
        .iter()
        .filter(|b| b.state == super::catalog::State::Complete)
        .map(started)
        .min();
    match first {
        Some(a) if index.covered_until > 0 => format!(
            "; the covered window is {} … {}",
            replay::show_time(a),
            replay::show_time(index.covered_until)
        ),
        _ => String::new(),
    }
}

/// A backup's start as Unix seconds.
pub fn started(b: &Backup) -> i64 {
    b.started.parse::<jiff::Timestamp>().map_or(0, |t| t.as_second())
}

/// Where a target stands before a restore.
#[derive(Debug, Default)]
pub struct TargetState {
    /// Its GTID position (`gtid_current_pos`).
    pub position: Position,
    /// A restore's state row: run, stage, last GTID applied.
    pub row: Option<(String, String, String)>,
    /// Its user databases.
    pub databases: Vec<String>,
}

/// Reads the target's position, restore state and databases (changes nothing).
pub async fn target_state(db: &Db) -> Result<TargetState, StepError> {
    let mut s = Script::new();
    let m = s.mark();
    s.sql("SELECT @@gtid_current_pos AS pos, (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'tend_restore') AS has_state");
    let d = s.mark();
    s.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1");
    s.mark();
    let r = db.query("target state", &s).await?;
    let head = r.set(m);
    let mut state = TargetState {
        position: Position::parse(head.first("pos").unwrap_or_default()).unwrap_or_default(),
        row: None,
        databases: r
            .set(d)
            .rows
            .iter()
            .filter_map(|x| x.first().cloned().flatten())
            .collect(),
    };
    if head.first("has_state") == Some("1") {
        let row = db
            .one(
                "restore state",
                "SELECT run, stage, gtid FROM mysql.tend_restore WHERE id = 1",
            )
            .await?;
        if let (Some(a), Some(b)) = (row.first("run"), row.first("stage")) {
            state.row = Some((
                a.to_string(),
                b.to_string(),
                row.first("gtid").unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(state)
}

/// The state table and its one row.
const STATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS mysql.tend_restore (id TINYINT PRIMARY KEY, run VARCHAR(64) NOT NULL, stage VARCHAR(16) NOT NULL, gtid VARCHAR(255) NOT NULL DEFAULT '', updated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB";

fn set_stage(s: &mut Script, run: &str, stage: &str) {
    s.sql("SET SESSION sql_log_bin = 0");
    s.sql(STATE_TABLE);
    s.sql(&format!(
        "REPLACE INTO mysql.tend_restore (id, run, stage, gtid) VALUES (1, {}, {}, '')",
        text(run),
        text(stage)
    ));
}

/// Held by the session that loads or replays: a run that finds it held waits for the session
/// of a killed run to end.
const SERVER_LOCK: &str = "tend-restore";

/// The dump, decompressed into one client session that binlogs nothing.
const LOAD: &str = r#"
command -v zstd >/dev/null || { echo "zstd is not installed on the host" >&2; exit 127; }
{ printf "SET SESSION sql_log_bin = 0;\nDO GET_LOCK('%s', 60);\n" "$lock"; zstd -dc; echo "tend-zstd-rc $?" >&2; } |
"$client" --defaults-extra-file="$cnf" --default-character-set=utf8mb4 --max-allowed-packet=1G
"#;

/// The binlogs, in one session, with a progress mark in each transaction.
const REPLAY: &str = r#"
cd -- "$dir" || exit 3
{ printf "SET SESSION sql_log_bin = 0;\nDO GET_LOCK('%s', 60);\n" "$lock"; mariadb-binlog "$@"; echo "tend-binlog-rc $?" >&2; } |
awk "$marks" |
"$client" --defaults-extra-file="$cnf" --binary-mode --default-character-set=utf8mb4 --max-allowed-packet=1G
"#;

/// How long the load and the replay may take.
const LONG: Duration = Duration::from_secs(24 * 3600);

/// Restores `p` onto `db` as run `run` (resuming where a run with the same id stopped);
/// `unpacked`: a physical backup was [`super::physical::stage`]d for it. The caller has
/// stopped writes and replication where needed.
pub async fn apply(
    progress: &dyn Progress,
    (store, store_host): (&Store, Option<&Host>),
    db: &Db,
    (run, staged, unpacked): (&str, &Staged, bool),
    p: &Prepared,
) -> Result<(), Abort> {
    let load = if unpacked { Load::Unpacked } else { Load::Here };
    if let Some(start) = begin(progress, (store, store_host), db, (run, load), p).await? {
        replay(progress, db, staged, p, start).await?;
    }
    if p.backup.kind == Kind::Physical {
        super::physical::finish(progress, db, run).await;
    }
    Ok(())
}

/// How the backup gets onto the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Loaded (logical), or unpacked, prepared and put in place (physical), by [`begin`].
    Here,
    /// A physical backup already unpacked and prepared beside the datadir
    /// ([`super::physical::stage`]): only put in place.
    Unpacked,
    /// The server already runs on it (a scratch server started on a prepared backup).
    InPlace,
}

/// Where a restore begins its replay: loads the backup as `load` says unless run `run`
/// already did (then it resumes after the last transaction that run applied). `None`: the run
/// already finished.
pub async fn begin(
    progress: &dyn Progress,
    (store, store_host): (&Store, Option<&Host>),
    db: &Db,
    (run, load): (&str, Load),
    p: &Prepared,
) -> Result<Option<Resume>, Abort> {
    let host = db.host.name().to_string();
    // A killed run's load or replay ends with its channel; its session may take a moment.
    match db.hold_lock(SERVER_LOCK, 60).await {
        Ok(held) => {
            let _ = held.release().await;
        }
        Err(crate::migrate::db::LockError::Held(who)) => {
            return Err(Abort::new(
                Code::Locked,
                format!("{host}: another restore session still works on the server ({who})"),
            ));
        }
        Err(crate::migrate::db::LockError::Step(e)) => {
            return Err(Abort::step("cannot check for another restore session", &e));
        }
    }
    let state = target_state(db)
        .await
        .map_err(|e| Abort::step("cannot read the target's state", &e))?;
    let resume = match &state.row {
        Some((r, stage, _)) if r == run && stage == "done" => {
            progress.step(StepEvent::new(
                &host,
                "restore",
                Status::Ok,
                "already restored by this run",
            ));
            return Ok(None);
        }
        Some((r, stage, gtid)) if r == run && stage == "replaying" => Some(gtid.clone()),
        _ => None,
    };
    let start = match &resume {
        Some(g) if !g.is_empty() => {
            let Some(i) = p.txns.iter().position(|t| &t.gtid == g) else {
                return Err(Abort::new(
                    Code::HostFailed,
                    format!("{host}: the interrupted restore stopped at GTID {g}, which the plan does not hold"),
                ));
            };
            i + 1
        }
        _ => p.plan.apply.start,
    };
    if resume.is_none() {
        match (p.backup.kind, load) {
            (_, Load::InPlace) => {}
            (Kind::Logical, _) => {
                self::load(progress, (store, store_host), db, run, (&p.backup, &state.databases)).await?;
            }
            (Kind::Physical, load) => {
                if load == Load::Here {
                    super::physical::stage(progress, (store, store_host), db, run, &p.backup).await?;
                }
                super::physical::swap(progress, db, run, &p.backup).await?;
            }
        }
        if p.backup.kind == Kind::Physical || load == Load::InPlace {
            let mut s = Script::new();
            set_stage(&mut s, run, "replaying");
            db.query("backup in place", &s)
                .await
                .map_err(|e| Abort::step("cannot record the restore's start", &e))?;
        }
    } else {
        progress.step(StepEvent::new(
            &host,
            "load",
            Status::Ok,
            format!(
                "resuming the interrupted restore after {}",
                resume
                    .as_deref()
                    .filter(|g| !g.is_empty())
                    .unwrap_or("the loaded backup")
            ),
        ));
    }
    Ok(Some(Resume { start, after: resume }))
}

/// Where a replay starts: the index of its first transaction, and the GTID a resumed run had
/// reached.
#[derive(Debug, Clone)]
pub struct Resume {
    start: usize,
    after: Option<String>,
}

/// Replays the binlogs of `p` from `from` and checks that the progress mark is the plan's end.
pub async fn replay(
    progress: &dyn Progress,
    db: &Db,
    staged: &Staged,
    p: &Prepared,
    from: Resume,
) -> Result<(), Abort> {
    let host = db.host.name().to_string();
    let Resume { start, after: resume } = from;
    let t = Instant::now();
    let todo = p.txns.get(start..p.plan.apply.end).unwrap_or_default();
    if let Some(first) = todo.first() {
        let files: Vec<&BinlogFile> = p.files.iter().filter(|f| f.name >= first.file).collect();
        let mut args = vec![format!("--start-position={}", first.at)];
        args.extend(files.iter().map(|f| f.name.clone()));
        if let Some((_, at)) = &p.plan.stop {
            args.push(format!("--stop-position={at}"));
        }
        let script = format!(
            "set -- {}\ndir={}\nmarks={}\nlock={SERVER_LOCK}\n{}",
            crate::transport::shell::join(&args),
            quote(&staged.dir),
            quote(replay::MARKS),
            tethered(REPLAY, &["client", "cnf", "dir", "marks", "lock"])
        );
        let (command, login) = db.shell(&script, Some(LONG));
        let out = db
            .host
            .run(&command, Input::Bytes(login.as_bytes()))
            .await
            .map_err(|e| Abort::step("the replay failed", &StepError::transport(&host, "replay", e)))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.success() || !stderr.contains("tend-binlog-rc 0") {
            return Err(Abort::new(
                Code::HostFailed,
                format!(
                    "{host}: the replay stopped: {}",
                    crate::transport::tail(&stderr.replace("tend-binlog-rc 0\n", ""), 5)
                ),
            )
            .hint("run the same command again: the restore resumes after the last applied transaction"));
        }
    }
    let expected = p
        .txns
        .get(p.plan.apply.clone())
        .and_then(|t| t.last())
        .map(|t| t.gtid.clone())
        .unwrap_or_default();
    let got = db
        .one("check the replay", "SELECT gtid FROM mysql.tend_restore WHERE id = 1")
        .await
        .map_err(|e| Abort::step("cannot read the replay's end", &e))?
        .first("gtid")
        .unwrap_or_default()
        .to_string();
    let expected_now = if expected.is_empty() {
        resume.clone().unwrap_or_default()
    } else {
        expected.clone()
    };
    if got != expected_now {
        return Err(Abort::new(
            Code::HostFailed,
            format!("{host}: the replay ended at GTID `{got}`, the plan at `{expected_now}`"),
        ));
    }
    let mut s = Script::new();
    s.sql("SET SESSION sql_log_bin = 0");
    s.sql("UPDATE mysql.tend_restore SET stage = 'done' WHERE id = 1");
    db.query("restore done", &s)
        .await
        .map_err(|e| Abort::step("cannot record the restore's end", &e))?;
    progress.step(
        StepEvent::new(
            &host,
            "replay",
            Status::Changed,
            format!(
                "{} transactions replayed; the data stands at GTID {}",
                todo.len(),
                p.plan.end
            ),
        )
        .took(t.elapsed()),
    );
    Ok(())
}

/// Drops the server's databases and loads the dump.
async fn load(
    progress: &dyn Progress,
    (store, store_host): (&Store, Option<&Host>),
    db: &Db,
    run: &str,
    (backup, databases): (&Backup, &[String]),
) -> Result<(), Abort> {
    let host = db.host.name().to_string();
    let t = Instant::now();
    let mut s = Script::new();
    set_stage(&mut s, run, "loading");
    for d in databases {
        s.sql(&format!("DROP DATABASE IF EXISTS {}", ident(d)));
    }
    db.query("drop the databases", &s)
        .await
        .map_err(|e| Abort::step("cannot clear the server's databases", &e))?;
    for f in &backup.files {
        let script = format!("lock={SERVER_LOCK}\n{}", tethered(LOAD, &["client", "cnf", "lock"]));
        let (command, login) = db.shell(&script, Some(LONG));
        feed(
            (store, store_host),
            &db.host,
            (backup, f),
            (&command, login.as_bytes()),
            (
                "loading",
                "the server is half loaded: restore again from a good backup",
                "run the same command again: the load starts over",
            ),
        )
        .await?;
    }
    let mut s = Script::new();
    s.sql("SET SESSION sql_log_bin = 0");
    s.sql("FLUSH PRIVILEGES");
    set_stage(&mut s, run, "replaying");
    db.query("backup loaded", &s)
        .await
        .map_err(|e| Abort::step("cannot record the load", &e))?;
    progress.step(
        StepEvent::new(
            &host,
            "load",
            Status::Changed,
            format!("backup {} loaded ({} bytes)", backup.id, backup.bytes),
        )
        .took(t.elapsed()),
    );
    Ok(())
}

/// Streams file `f` of `backup` from the store into `command` on `host` (its stdin: `prefix`,
/// then the file). A damaged file (its SHA-256 not the catalog's) or a command that failed, or
/// whose `zstd -dc` did (`tend-zstd-rc` on stderr), is the error; `doing` names the work,
/// `damaged` says what a damaged file leaves, `retry` hints after a failure.
pub(super) async fn feed(
    (store, store_host): (&Store, Option<&Host>),
    host: &Host,
    (backup, f): (&Backup, &super::catalog::File),
    (command, prefix): (&RemoteCommand, &[u8]),
    (doing, damaged, retry): (&str, &str, &str),
) -> Result<(), Abort> {
    let rel = format!("{}/{}", backup.id, f.name);
    let (out, hashed) = store
        .send(store_host, &rel, host, (command, prefix))
        .await
        .map_err(|e| Abort::step(&format!("{doing} {rel} failed"), &e))?;
    if hashed.sha256 != f.sha256 {
        return Err(Abort::new(
            Code::HostFailed,
            format!(
                "{rel} in the store is damaged: SHA-256 {}, the catalog says {}; {damaged}",
                hashed.sha256, f.sha256
            ),
        ));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.success() || !stderr.contains("tend-zstd-rc 0") {
        return Err(Abort::new(
            Code::HostFailed,
            format!(
                "{}: {doing} {rel} failed: {}",
                host.name(),
                crate::transport::tail(&stderr, 5)
            ),
        )
        .hint(retry));
    }
    Ok(())
}

/// Removes the staging directory.
pub async fn clean(target: &Host, staged: &Staged) {
    let _ = target
        .step(
            "clean",
            "remove staged binlogs",
            format!("rm -rf -- {}", quote(&staged.dir)),
            Input::None,
            Duration::from_secs(120),
        )
        .await;
}

/// Checks the backup's files against their recorded SHA-256 in the store itself, before
/// anything is touched; names the first damaged one with both sums. (Binlogs are checked as
/// they are staged.)
pub async fn check_store((store, store_host): (&Store, Option<&Host>), backup: &Backup) -> Result<(), Abort> {
    let rels: Vec<(String, String)> = backup
        .files
        .iter()
        .map(|f| (format!("{}/{}", backup.id, f.name), f.sha256.clone()))
        .collect();
    let names: Vec<String> = rels.iter().map(|(r, _)| r.clone()).collect();
    let sums = store
        .sha256(store_host, &names)
        .await
        .map_err(|e| Abort::step("cannot check the store's files", &e))?;
    for ((rel, want), got) in rels.iter().zip(sums) {
        if got.as_deref() != Some(want.as_str()) {
            return Err(Abort::new(
                Code::HostFailed,
                format!(
                    "{rel} in {} is damaged: SHA-256 {}, recorded {want}; nothing was touched",
                    store.describe(),
                    got.as_deref().unwrap_or("(missing)")
                ),
            ));
        }
    }
    Ok(())
}
