//! Taking a backup of either kind: `mariadb-dump` of every database (logical) or
//! `mariabackup --stream` of the server's files (physical, see `physical`), compressed with
//! zstd on the source and streamed to the store. From a replica, its SQL applier is stopped
//! first: the replica then stands at one GTID position, where the row counts and `CHECKSUM
//! TABLE` of every table are taken and the backup's copy is made, while the primary keeps
//! serving; the applier is started again whatever happens. From a primary, the tool's own
//! consistent point is read from what it says as it runs (the dump's `--master-data=2` lines,
//! mariabackup's binlog position line), and the tables are counted as it runs.

use super::catalog::{Backup, File, Kind, State, Table};
use super::store::Store;
use crate::exit::Code;
use crate::migrate::db::{Db, Script, text};
use crate::modules::mysql::ident;
use crate::ops::{Abort, Progress};
use crate::output::{Status, StepEvent};
use crate::transport::{Host, Input, StepError};
use std::time::{Duration, Instant};

/// Where a backup is taken.
#[derive(Debug, Clone)]
pub struct Source {
    /// The server.
    pub db: Db,
    /// A replica: its applier is stopped for the consistent point.
    pub replica: bool,
    /// The primary (inventory name), whose binlogs the backup's position names.
    pub primary: String,
    /// Logical or physical.
    pub kind: Kind,
}

/// Schemas never backed up (the server makes them).
const SYSTEM: &str = "'information_schema', 'performance_schema', 'sys'";

/// The dump, compressed. On stderr, as `tend-*` lines: the tool's version, the coordinates
/// among the dump's first 50 lines (the rest streams through `cat`), and the exit status of
/// the dump and of the copy: a pipe's status is only its last command's, and a cut dump still
/// compresses cleanly. (Reading the dump's last line as well cost a second pass over every
/// byte: a quarter of the backup's time on 2 GB, for what the dump's own status says.)
const DUMP: &str = r#"
dump=$(command -v mariadb-dump || command -v mysqldump) || { echo "no mariadb-dump or mysqldump on the host" >&2; exit 127; }
command -v zstd >/dev/null || { echo "zstd is not installed on the host" >&2; exit 127; }
echo "tend-tool $("$dump" --version)" >&2
{ "$dump" --defaults-extra-file="$cnf" --single-transaction --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --ignore-table=mysql.tend_restore $coordinates --all-databases; echo "tend-dump-rc $?" >&2; } |
{ i=0; while [ $i -lt 50 ] && IFS= read -r line; do
    printf '%s\n' "$line"
    case $line in "-- CHANGE MASTER TO"*) echo "tend-coord $line" >&2;; esac
    i=$((i + 1))
  done; cat; echo "tend-copy-rc $?" >&2; } |
zstd -q -3 -T0
"#;

/// Stops the replica's SQL applier in a session of its own; when the session ends (released,
/// or tend's connection gone) the host starts it again.
const RESTART_APPLIER: &str = r#""$client" --defaults-extra-file="$cnf" -e 'START SLAVE SQL_THREAD' >/dev/null 2>&1 || { echo "could not start the replica's SQL thread again" >&2; exit 1; }"#;

/// What the consistent point is.
#[derive(Debug, Default)]
struct Point {
    server: String,
    gtid: String,
    file: Option<String>,
    pos: Option<u64>,
    tables: Vec<String>,
}

fn fail(host: &str, message: impl Into<String>) -> Abort {
    Abort::new(Code::HostFailed, format!("{host}: {}", message.into()))
}

/// Reads the server, the position (a replica's, with its applier stopped: where it stands) and
/// the tables.
async fn point(db: &Db, stop: bool) -> Result<Point, StepError> {
    let mut s = Script::new();
    let m = s.mark();
    s.sql(&format!(
        "SELECT @@version AS server, {} AS gtid",
        if stop { "@@gtid_slave_pos" } else { "@@gtid_binlog_pos" }
    ));
    let st = s.mark();
    s.sql(if stop {
        "SHOW SLAVE STATUS"
    } else {
        "SHOW MASTER STATUS"
    });
    let t = s.mark();
    s.sql(&format!(
        "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({SYSTEM}) AND NOT (TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'tend_restore') ORDER BY 1"
    ));
    s.mark();
    let reply = db.query("consistent point", &s).await?;
    let status = reply.set(st);
    let (file, pos) = if stop {
        (
            status.first("Relay_Master_Log_File"),
            status.first("Exec_Master_Log_Pos"),
        )
    } else {
        (status.first("File"), status.first("Position"))
    };
    Ok(Point {
        server: reply.set(m).first("server").unwrap_or_default().to_string(),
        gtid: reply.set(m).first("gtid").unwrap_or_default().to_string(),
        file: file.map(str::to_string),
        pos: pos.and_then(|p| p.parse().ok()),
        tables: reply
            .set(t)
            .rows
            .iter()
            .filter_map(|r| r.first().cloned().flatten())
            .collect(),
    })
}

/// Row counts and `CHECKSUM TABLE` of `tables`, one session.
pub(super) async fn tables(db: &Db, names: &[String]) -> Result<Vec<Table>, StepError> {
    let mut s = Script::new();
    let mut marks = Vec::new();
    for name in names {
        let Some((schema, table)) = name.split_once('.') else {
            continue;
        };
        let q = format!("{}.{}", ident(schema), ident(table));
        let c = s.mark();
        s.sql(&format!("SELECT COUNT(*) AS n FROM {q}"));
        let k = s.mark();
        s.sql(&format!("CHECKSUM TABLE {q}"));
        marks.push((name.clone(), c, k));
    }
    s.mark();
    let reply = db.query("count the tables", &s).await?;
    Ok(marks
        .into_iter()
        .map(|(name, c, k)| Table {
            name,
            rows: reply.set(c).first("n").and_then(|n| n.parse().ok()).unwrap_or(0),
            checksum: reply.set(k).first("Checksum").map(str::to_string),
        })
        .collect())
}

/// The GTID position of a binlog position of the server (`BINLOG_GTID_POS`).
async fn gtid_at(db: &Db, file: &str, pos: u64) -> Result<String, StepError> {
    let set = db
        .one(
            "GTID of the backup",
            &format!("SELECT BINLOG_GTID_POS({}, {pos}) AS g", text(file)),
        )
        .await?;
    Ok(set.first("g").unwrap_or_default().to_string())
}

/// A replica's replication, as `SHOW SLAVE STATUS` says: read by backups (is it a usable
/// source, is its applier running) and restores (does it replicate again).
#[derive(Debug, Clone, Default)]
pub struct ReplicaStatus {
    /// The SQL applier runs.
    pub sql: bool,
    /// The IO thread runs.
    pub io: bool,
    /// `Seconds_Behind_Master`.
    pub behind: Option<u64>,
    /// The last SQL or IO error, empty when there is none.
    pub error: String,
}

impl ReplicaStatus {
    /// Both threads run and nothing is waiting to be applied.
    pub fn caught_up(&self) -> bool {
        self.sql && self.io && self.behind == Some(0)
    }
}

/// Reads a replica's replication status.
pub async fn replica_status(db: &Db) -> Result<ReplicaStatus, StepError> {
    let st = db.one("replica status", "SHOW SLAVE STATUS").await?;
    let field = |k: &str| st.first(k).unwrap_or_default();
    let mut error = String::new();
    for (errno, text) in [("Last_SQL_Errno", "Last_SQL_Error"), ("Last_IO_Errno", "Last_IO_Error")] {
        if !matches!(field(errno), "" | "0") {
            error = format!("{}{}", error, field(text));
        }
    }
    Ok(ReplicaStatus {
        sql: field("Slave_SQL_Running") == "Yes",
        io: field("Slave_IO_Running") == "Yes",
        behind: field("Seconds_Behind_Master").parse().ok(),
        error,
    })
}

/// How a replica's wait to catch up ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchUp {
    /// Both threads run and nothing is left to apply.
    Done,
    /// Replication stopped with this error.
    Stopped(String),
    /// Still behind when the wait ended.
    Behind,
}

/// Waits up to 30 s for a replica (just pointed at its source) to catch up, reading its
/// status every half second.
pub async fn wait_caught_up(db: &Db) -> Result<CatchUp, StepError> {
    for _ in 0..60 {
        let st = replica_status(db).await?;
        if !st.error.is_empty() {
            return Ok(CatchUp::Stopped(st.error));
        }
        if st.caught_up() {
            return Ok(CatchUp::Done);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(CatchUp::Behind)
}

/// Stops a replica's applier for the backup, in a session that starts it again when it ends
/// (if it was running before).
async fn stop_applier(db: &Db) -> Result<super::super::migrate::db::Held, StepError> {
    let after = if replica_status(db).await?.sql {
        RESTART_APPLIER
    } else {
        ""
    };
    let (held, _) = db
        .hold(
            "stop the replica's applier",
            "STOP SLAVE SQL_THREAD; SELECT 1 AS stopped",
            after,
            Duration::from_secs(30),
        )
        .await?;
    Ok(held)
}

/// Takes a backup of `src` into `store` as backup `id`. On a failure nothing is listed
/// as good: the files are discarded and a failed entry records why.
pub async fn run(
    progress: &dyn Progress,
    src: &Source,
    store: &Store,
    store_host: Option<&Host>,
    id: &str,
) -> Result<Backup, Abort> {
    let host = src.db.host.name().to_string();
    let started = crate::output::now_rfc3339();
    let clock = Instant::now();
    let guard = if src.replica {
        match stop_applier(&src.db).await {
            Ok(g) => Some(g),
            Err(e) => {
                return Err(Abort::step(
                    "cannot stop the replica's applier; nothing was backed up",
                    &e,
                ));
            }
        }
    } else {
        None
    };
    let result = take(progress, src, store, store_host, id).await;
    let restarted = match guard {
        Some(g) => g.release().await.map_err(|e| {
            Abort::step(
                "the replica's SQL thread is stopped: start it with `START SLAVE SQL_THREAD`",
                &e,
            )
        }),
        None => Ok(()),
    };
    let mut entry = Backup {
        id: id.to_string(),
        kind: src.kind,
        host,
        from_replica: src.replica,
        server_version: String::new(),
        tool_version: String::new(),
        started,
        finished: String::new(),
        seconds: 0.0,
        bytes: 0,
        files: Vec::new(),
        gtid: String::new(),
        binlog_file: None,
        binlog_pos: None,
        binlog_host: Some(src.primary.clone()),
        tables: Vec::new(),
        tables_at_consistent_point: false,
        state: State::Failed,
        error: None,
        verifications: Vec::new(),
    };
    // The file gets its name, then the catalog lists it: in that order, or not at all.
    let stored = match result {
        Ok(taken) => store
            .commit(store_host, &taken.rel)
            .await
            .map(|()| taken)
            .map_err(|e| Abort::step("cannot complete the backup file in the store", &e)),
        Err(abort) => Err(abort),
    };
    entry.finished = crate::output::now_rfc3339();
    entry.seconds = secs(clock.elapsed());
    let listed = match stored {
        Ok(taken) => {
            entry.server_version = taken.point.server;
            entry.tool_version = taken.tool;
            entry.bytes = taken.file.bytes;
            entry.files = vec![taken.file];
            entry.gtid = taken.point.gtid;
            entry.binlog_file = taken.point.file;
            entry.binlog_pos = taken.point.pos;
            entry.tables = taken.tables;
            entry.tables_at_consistent_point = src.replica;
            entry.state = State::Complete;
            match serde_json::to_vec(&entry) {
                Ok(json) => store
                    .put(store_host, &Backup::entry_path(id), &json)
                    .await
                    .map_err(|e| Abort::step("cannot write the catalog entry", &e)),
                Err(e) => Err(fail(&entry.host, format!("catalog entry: {e}"))),
            }
        }
        Err(abort) => Err(abort),
    };
    if let Err(abort) = listed {
        store.discard(store_host, id).await;
        entry.state = State::Failed;
        entry.error = Some(abort.error.message.clone());
        entry.files.clear();
        entry.bytes = 0;
        if let Ok(json) = serde_json::to_vec(&entry) {
            let _ = store.put(store_host, &Backup::entry_path(id), &json).await;
        }
        restarted?;
        return Err(abort);
    }
    // A good backup; a replica left stopped is still the run's failure.
    restarted?;
    Ok(entry)
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// What a dump stored, before the catalog lists it.
struct Taken {
    point: Point,
    tables: Vec<Table>,
    file: File,
    rel: String,
    tool: String,
}

async fn take(
    progress: &dyn Progress,
    src: &Source,
    store: &Store,
    store_host: Option<&Host>,
    id: &str,
) -> Result<Taken, Abort> {
    let host = src.db.host.name().to_string();
    let t = Instant::now();
    let mut point = point(&src.db, src.replica)
        .await
        .map_err(|e| Abort::step("cannot read the consistent point", &e))?;
    if src.replica && point.gtid.is_empty() {
        return Err(fail(
            &host,
            "the replica has no GTID position (`gtid_slave_pos` is empty): a backup without one cannot be rolled forward",
        ));
    }
    progress.step(
        StepEvent::new(
            &host,
            "point",
            Status::Ok,
            if src.replica {
                format!(
                    "replica stopped at GTID {}: {} tables counted there as the backup runs",
                    point.gtid,
                    point.tables.len()
                )
            } else {
                format!(
                    "primary: {} tables counted as the backup runs; its own position follows",
                    point.tables.len()
                )
            },
        )
        .took(t.elapsed()),
    );
    let script = match src.kind {
        Kind::Logical => {
            let coordinates = if src.replica { "" } else { "--master-data=2 --gtid" };
            format!("coordinates={}\n{DUMP}", crate::transport::shell::quote(coordinates))
        }
        Kind::Physical => super::physical::BACKUP.to_string(),
    };
    let (command, login) = src.db.shell(&script, None);
    let t = Instant::now();
    let rel = format!("{id}/{}", src.kind.file_name());
    // Counted beside the dump: both read the same frozen replica (on a primary, the counts are
    // near the dump's point either way), and a full scan per table costs no extra wall time.
    let (counted, received) = tokio::join!(
        tables(&src.db, &point.tables),
        store.receive(
            store_host,
            &src.db.host,
            (&command, Input::Bytes(login.as_bytes())),
            &rel,
        )
    );
    let (file, out) = received.map_err(|e| Abort::step("the backup failed; nothing was stored", &e))?;
    let tables = counted.map_err(|e| Abort::step("cannot count the tables", &e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = Said::read(&stderr);
    if said.dump_rc != Some(0) || (src.kind == Kind::Logical && said.copy_rc != Some(0)) {
        return Err(fail(
            &host,
            format!(
                "{} failed (exit {}, copy {}): {}",
                if src.kind == Kind::Logical {
                    "mariadb-dump"
                } else {
                    "mariabackup"
                },
                said.dump_rc.map_or("unknown".to_string(), |rc| rc.to_string()),
                said.copy_rc.map_or("unknown".to_string(), |rc| rc.to_string()),
                crate::transport::tail(&stderr, 5)
            ),
        ));
    }
    if !src.replica {
        // The dump names the binlog position of its snapshot at its top (its GTID only at its
        // end), mariabackup at its end; the server maps the position to its GTID.
        let (Some(f), Some(p)) = (said.file.clone(), said.pos) else {
            return Err(fail(
                &host,
                "the backup named no binlog position (is binary logging on?)",
            ));
        };
        point.gtid = gtid_at(&src.db, &f, p)
            .await
            .map_err(|e| Abort::step("cannot read the backup's GTID position", &e))?;
        if point.gtid.is_empty() {
            return Err(fail(&host, format!("the server has no GTID for {f}:{p}")));
        }
        point.file = Some(f);
        point.pos = Some(p);
    }
    progress.step(
        StepEvent::new(
            &host,
            if src.kind == Kind::Logical { "dump" } else { "copy" },
            Status::Changed,
            format!(
                "{} bytes to {} (sha256 {}) at GTID {}",
                file.bytes,
                store.describe(),
                file.sha256.get(..12).unwrap_or_default(),
                point.gtid
            ),
        )
        .took(t.elapsed()),
    );
    Ok(Taken {
        point,
        tables,
        file,
        rel,
        tool: said.tool,
    })
}

/// What the dump script said on stderr.
#[derive(Debug, Default, PartialEq, Eq)]
struct Said {
    dump_rc: Option<i32>,
    copy_rc: Option<i32>,
    tool: String,
    file: Option<String>,
    pos: Option<u64>,
}

impl Said {
    fn read(stderr: &str) -> Self {
        let mut said = Self::default();
        let quoted = |s: &str, key: &str| -> Option<String> {
            let rest = &s[s.find(key)? + key.len()..];
            let rest = rest.strip_prefix('\'')?;
            Some(rest[..rest.find('\'')?].to_string())
        };
        for line in stderr.lines() {
            if let Some(rc) = line.strip_prefix("tend-dump-rc ") {
                said.dump_rc = rc.trim().parse().ok();
            } else if let Some(rc) = line.strip_prefix("tend-copy-rc ") {
                said.copy_rc = rc.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("tend-tool ") {
                said.tool = v.trim().to_string();
            } else if let Some(c) = line.strip_prefix("tend-coord ")
                && let Some((file, pos)) = super::physical::coordinates(c)
            {
                said.file = Some(file);
                said.pos = Some(pos);
            } else if let Some(c) = line.strip_prefix("tend-coord ")
                && let Some(file) = quoted(c, "MASTER_LOG_FILE=")
            {
                // (`-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;` comes first and names none.)
                said.file = Some(file);
                said.pos = c
                    .split("MASTER_LOG_POS=")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches(';').trim().parse().ok());
            }
        }
        said
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dump_script_is_understood() {
        let said = Said::read(
            "tend-tool mariadb-dump  Ver 10.19 Distrib 10.11.14-MariaDB\n\
             tend-coord -- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\
             tend-coord -- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1234;\n\
             tend-dump-rc 0\n\
             tend-copy-rc 0\n",
        );
        assert_eq!((said.dump_rc, said.copy_rc), (Some(0), Some(0)));
        assert_eq!(said.file.as_deref(), Some("mysql-bin.000003"));
        assert_eq!(said.pos, Some(1234));
        assert!(said.tool.starts_with("mariadb-dump"));
        assert_eq!(Said::read("tend-dump-rc 2\n").dump_rc, Some(2));
        assert_eq!(Said::read("").dump_rc, None);
    }
}
