//! A logical backup: `mariadb-dump` of every database, compressed with zstd on the source and
//! streamed to the store. From a replica, its SQL applier is stopped first: the replica then
//! stands at one GTID position, where the row counts and `CHECKSUM TABLE` of every table are
//! taken and the dump's snapshot is opened, while the primary keeps serving; the applier is
//! started again whatever happens. From a primary, the dump's own consistent point
//! (`--single-transaction --master-data=2 --gtid`) is read from the first lines of the dump as
//! they pass, and the tables are counted just before.

use super::catalog::{Backup, File, State, Table};
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
}

/// Schemas never backed up (the server makes them).
const SYSTEM: &str = "'information_schema', 'performance_schema', 'sys'";

/// The dump, compressed; its exit status and its version go to stderr as `tend-*` lines, and
/// so do the coordinates among its first 50 lines (the rest streams through `cat`).
const DUMP: &str = r#"
dump=$(command -v mariadb-dump || command -v mysqldump) || { echo "no mariadb-dump or mysqldump on the host" >&2; exit 127; }
command -v zstd >/dev/null || { echo "zstd is not installed on the host" >&2; exit 127; }
echo "tend-tool $("$dump" --version)" >&2
{ "$dump" --defaults-extra-file="$cnf" --single-transaction --routines --triggers --events --hex-blob --default-character-set=utf8mb4 $coordinates --all-databases; echo "tend-dump-rc $?" >&2; } |
{ i=0; while [ $i -lt 50 ] && IFS= read -r line; do
    printf '%s\n' "$line"
    case $line in "-- CHANGE MASTER TO"*|"-- SET GLOBAL gtid_slave_pos"*) echo "tend-coord $line" >&2;; esac
    i=$((i + 1))
  done; cat; } |
zstd -q -3 -T0
"#;

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

/// Stops a replica's applier (when `stop`) and reads the server, the position and the tables.
async fn point(db: &Db, stop: bool) -> Result<Point, StepError> {
    let mut s = Script::new();
    if stop {
        s.sql("STOP SLAVE SQL_THREAD");
    }
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
        "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({SYSTEM}) ORDER BY 1"
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
async fn tables(db: &Db, names: &[String]) -> Result<Vec<Table>, StepError> {
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
    let mut s = Script::new();
    let m = s.mark();
    s.sql(&format!("SELECT BINLOG_GTID_POS({}, {pos}) AS g", text(file)));
    s.mark();
    let reply = db.query("GTID of the backup", &s).await?;
    Ok(reply.set(m).first("g").unwrap_or_default().to_string())
}

/// Starts a replica's applier again.
async fn resume(db: &Db) -> Result<(), StepError> {
    let mut s = Script::new();
    s.sql("START SLAVE SQL_THREAD");
    db.query("start the replica's applier", &s).await.map(|_| ())
}

/// Takes a logical backup of `src` into `store` as backup `id`. On a failure nothing is listed:
/// the files are discarded and a failed entry records why.
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
    let result = take(progress, src, store, store_host, id).await;
    if src.replica
        && let Err(e) = resume(&src.db).await
    {
        progress.warn(format!(
            "{host}: could not start the replica's applier again: {}",
            e.message()
        ));
    }
    let (point, tables, file, tool) = match result {
        Ok(r) => r,
        Err(abort) => {
            store.discard(store_host, id).await;
            let entry = Backup {
                id: id.to_string(),
                kind: "logical".into(),
                host: host.clone(),
                from_replica: src.replica,
                server_version: String::new(),
                tool_version: String::new(),
                started,
                finished: crate::output::now_rfc3339(),
                seconds: secs(clock.elapsed()),
                bytes: 0,
                files: Vec::new(),
                gtid: String::new(),
                binlog_file: None,
                binlog_pos: None,
                tables: Vec::new(),
                tables_at_consistent_point: false,
                state: State::Failed,
                error: Some(abort.error.message.clone()),
            };
            if let Ok(json) = serde_json::to_vec(&entry) {
                let _ = store.put(store_host, &Backup::entry_path(id), &json).await;
            }
            return Err(abort);
        }
    };
    let entry = Backup {
        id: id.to_string(),
        kind: "logical".into(),
        host,
        from_replica: src.replica,
        server_version: point.server,
        tool_version: tool,
        started,
        finished: crate::output::now_rfc3339(),
        seconds: secs(clock.elapsed()),
        bytes: file.bytes,
        files: vec![file],
        gtid: point.gtid,
        binlog_file: point.file,
        binlog_pos: point.pos,
        tables,
        tables_at_consistent_point: src.replica,
        state: State::Complete,
        error: None,
    };
    let json = serde_json::to_vec(&entry).map_err(|e| fail(&entry.host, format!("catalog entry: {e}")))?;
    store
        .put(store_host, &Backup::entry_path(id), &json)
        .await
        .map_err(|e| Abort::step("cannot write the catalog entry", &e))?;
    Ok(entry)
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

async fn take(
    progress: &dyn Progress,
    src: &Source,
    store: &Store,
    store_host: Option<&Host>,
    id: &str,
) -> Result<(Point, Vec<Table>, File, String), Abort> {
    let host = src.db.host.name().to_string();
    let t = Instant::now();
    let mut point = point(&src.db, src.replica)
        .await
        .map_err(|e| Abort::step("cannot read the consistent point", &e))?;
    let tables = tables(&src.db, &point.tables)
        .await
        .map_err(|e| Abort::step("cannot count the tables", &e))?;
    progress.step(
        StepEvent::new(
            &host,
            "point",
            Status::Ok,
            format!(
                "{} at GTID {} ({} tables counted{})",
                if src.replica { "replica stopped" } else { "primary" },
                if point.gtid.is_empty() { "-" } else { &point.gtid },
                tables.len(),
                if src.replica { "" } else { "; the primary keeps writing" }
            ),
        )
        .took(t.elapsed()),
    );
    let coordinates = if src.replica { "" } else { "--master-data=2 --gtid" };
    let script = format!("coordinates={}\n{DUMP}", crate::transport::shell::quote(coordinates));
    let (command, login) = src.db.shell(&script, None);
    let t = Instant::now();
    let rel = format!("{id}/dump.sql.zst");
    let (file, out) = store
        .receive(
            store_host,
            &src.db.host,
            (&command, Input::Bytes(login.as_bytes())),
            &rel,
        )
        .await
        .map_err(|e| Abort::step("the backup failed; nothing was stored", &e))?;
    // The dump's own status, version and coordinates come on its stderr: compression hides a
    // failed dump from the pipe's exit status.
    let said = Said::read(&String::from_utf8_lossy(&out.stderr));
    if said.rc != Some(0) {
        return Err(fail(
            &host,
            format!(
                "mariadb-dump failed (exit {}): {}",
                said.rc.map_or("unknown".to_string(), |rc| rc.to_string()),
                crate::transport::tail(&String::from_utf8_lossy(&out.stderr), 5)
            ),
        ));
    }
    if !src.replica {
        // The dump names the binlog position of its snapshot at its top (its GTID only at its
        // end); the server maps the position to its GTID.
        point.gtid = match (&said.file, said.pos) {
            (Some(f), Some(p)) => gtid_at(&src.db, f, p)
                .await
                .map_err(|e| Abort::step("cannot read the backup's GTID position", &e))?,
            _ => said.gtid.unwrap_or_default(),
        };
        point.file = said.file;
        point.pos = said.pos;
    }
    progress.step(
        StepEvent::new(
            &host,
            "dump",
            Status::Changed,
            format!(
                "{} bytes to {} (sha256 {})",
                file.bytes,
                store.describe(),
                file.sha256.get(..12).unwrap_or_default()
            ),
        )
        .took(t.elapsed()),
    );
    Ok((point, tables, file, said.tool))
}

/// What the dump script said on stderr.
#[derive(Debug, Default, PartialEq, Eq)]
struct Said {
    rc: Option<i32>,
    tool: String,
    gtid: Option<String>,
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
                said.rc = rc.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("tend-tool ") {
                said.tool = v.trim().to_string();
            } else if let Some(c) = line.strip_prefix("tend-coord ") {
                if c.contains("gtid_slave_pos") {
                    said.gtid = quoted(c, "gtid_slave_pos=");
                } else if let Some(file) = quoted(c, "MASTER_LOG_FILE=") {
                    // (`-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;` comes first and names none.)
                    said.file = Some(file);
                    said.pos = c
                        .split("MASTER_LOG_POS=")
                        .nth(1)
                        .and_then(|p| p.trim_end_matches(';').trim().parse().ok());
                }
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
             tend-coord -- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1234;\n\
             tend-coord -- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\
             tend-coord -- SET GLOBAL gtid_slave_pos='0-1-42';\n\
             tend-dump-rc 0\n",
        );
        assert_eq!(said.rc, Some(0));
        assert_eq!(said.gtid.as_deref(), Some("0-1-42"));
        assert_eq!(said.file.as_deref(), Some("mysql-bin.000003"));
        assert_eq!(said.pos, Some(1234));
        assert!(said.tool.starts_with("mariadb-dump"));
        assert_eq!(Said::read("tend-dump-rc 2\n").rc, Some(2));
        assert_eq!(Said::read("").rc, None);
    }
}
