//! Binlog shipping: the primary's binary logs copied into the store as they grow, so that a
//! backup can be rolled forward to any moment after it. Each run appends to each stored file
//! only what the server wrote since the last run (the current file up to the end of its last
//! committed transaction), so it is cheap enough for cron every minute and safe to repeat: the
//! store's index says how far each file was shipped, and a file cut short by a crash is cut
//! back to that length before the next append.
//!
//! The index (`binlogs/<host>/index.json`) knows each file's size, SHA-256 and the GTID
//! positions at its start and end, the moment up to which every committed transaction is
//! shipped (`covered_until`, the server's clock), and the gaps: files the server purged before
//! they were shipped. A backup rolls forward from its own binlog position over the files
//! after it as far as there is no gap.

use super::store::Store;
use crate::migrate::db::{Db, Script, text};
use crate::transport::{Host, Input, RemoteCommand, StepError, shell::quote};
use serde::{Deserialize, Serialize};

/// One shipped binlog file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogFile {
    /// Its name on the server (`mysql-bin.000042`).
    pub name: String,
    /// Bytes shipped.
    pub bytes: u64,
    /// SHA-256 of the shipped bytes.
    pub sha256: String,
    /// Whether the server has closed it (nothing more will be added).
    pub closed: bool,
    /// The GTID position at its start.
    pub gtid_start: String,
    /// The GTID position at the end of what was shipped.
    pub gtid_end: String,
}

/// The store's record of one server's binlogs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// The server's inventory name.
    pub host: String,
    /// Its `server_id`.
    pub server_id: u64,
    /// Shipped files, in the server's order.
    pub files: Vec<BinlogFile>,
    /// Every transaction committed before this moment (server's clock, Unix seconds) is shipped.
    pub covered_until: i64,
    /// RFC 3339 time of the last run.
    pub shipped_at: String,
    /// Files the server no longer had when they were to be shipped: `(last shipped, first
    /// shipped after it)`.
    #[serde(default)]
    pub gaps: Vec<(String, String)>,
    /// Points where the server's data was restored: the binlog before one describes another
    /// history, so no backup rolls forward across it.
    #[serde(default)]
    pub breaks: Vec<Break>,
}

/// A restore of the server: its binlog position and GTID right after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    /// Binlog file.
    pub file: String,
    /// Offset.
    pub pos: u64,
    /// `gtid_binlog_pos` then.
    pub gtid: String,
    /// When (server's clock, Unix seconds).
    pub time: i64,
}

impl Index {
    /// Where a host's index lives in the store.
    pub fn path(host: &str) -> String {
        format!("binlogs/{host}/index.json")
    }

    /// Where a shipped file lives in the store.
    pub fn file_path(host: &str, name: &str) -> String {
        format!("binlogs/{host}/{name}")
    }

    /// Reads a host's index from the store (empty when none).
    pub async fn load(store: &Store, store_host: Option<&Host>, host: &str) -> Result<Self, StepError> {
        let Some(bytes) = store.get(store_host, &Self::path(host)).await? else {
            return Ok(Self {
                host: host.to_string(),
                ..Self::default()
            });
        };
        // An index that cannot be read is never taken for an empty one: shipping would start
        // over and forget the gaps and restores it records.
        serde_json::from_slice(&bytes).map_err(|e| {
            StepError::remote(
                host,
                "binlogs",
                crate::transport::Failure::message(
                    format!("the store's binlog index {} cannot be read: {e}", Self::path(host)),
                    "read the binlog index",
                ),
            )
        })
    }

    /// The files to roll forward over from binlog position `file`: that file and every later
    /// one up to the first gap; `None` when `file` was never shipped.
    pub fn from_file(&self, file: &str) -> Option<&[BinlogFile]> {
        let start = self.files.iter().position(|f| f.name == file)?;
        let mut end = start + 1;
        while end < self.files.len() && !self.gap_after(&self.files[end - 1].name) {
            end += 1;
        }
        Some(&self.files[start..end])
    }

    /// The first restore after binlog position `(file, pos)`: a roll-forward from there stops
    /// at it.
    pub fn break_after(&self, file: &str, pos: u64) -> Option<&Break> {
        self.breaks
            .iter()
            .filter(|b| (b.file.as_str(), b.pos) > (file, pos))
            .min_by(|a, b| (a.file.as_str(), a.pos).cmp(&(b.file.as_str(), b.pos)))
    }

    fn gap_after(&self, name: &str) -> bool {
        self.gaps.iter().any(|(a, _)| a == name)
    }
}

/// What the server says about its binlogs.
#[derive(Debug)]
struct Server {
    server_id: u64,
    dir: String,
    /// `(name, size)` of every file, oldest first.
    files: Vec<(String, u64)>,
    current: String,
    position: u64,
    now: i64,
}

async fn server(db: &Db) -> Result<Server, StepError> {
    let mut s = Script::new();
    let m = s.mark();
    s.sql("SELECT @@server_id AS id, @@log_bin_basename AS base, UNIX_TIMESTAMP() AS now");
    let st = s.mark();
    s.sql("SHOW MASTER STATUS");
    let l = s.mark();
    s.sql("SHOW BINARY LOGS");
    s.mark();
    let r = db.query("binlogs", &s).await?;
    let head = r.set(m);
    let base = head.first("base").unwrap_or_default().to_string();
    let dir = base.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
    let status = r.set(st);
    let files = r
        .set(l)
        .rows
        .iter()
        .filter_map(|row| {
            let name = row.first().cloned().flatten()?;
            let size = row.get(1).cloned().flatten()?.parse().ok()?;
            Some((name, size))
        })
        .collect();
    Ok(Server {
        server_id: head.first("id").and_then(|v| v.parse().ok()).unwrap_or(0),
        dir,
        files,
        current: status.first("File").unwrap_or_default().to_string(),
        position: status.first("Position").and_then(|p| p.parse().ok()).unwrap_or(0),
        now: head.first("now").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

/// GTID positions at `(file, offset)` pairs.
async fn positions(db: &Db, at: &[(String, u64)]) -> Result<Vec<String>, StepError> {
    let mut s = Script::new();
    let marks: Vec<usize> = at
        .iter()
        .map(|(f, p)| {
            let m = s.mark();
            s.sql(&format!("SELECT IFNULL(BINLOG_GTID_POS({}, {p}), '') AS g", text(f)));
            m
        })
        .collect();
    s.mark();
    let r = db.query("binlog positions", &s).await?;
    Ok(marks
        .into_iter()
        .map(|m| r.set(m).first("g").unwrap_or_default().to_string())
        .collect())
}

/// What one shipping run did.
#[derive(Debug, Default)]
pub struct Shipped {
    /// Files appended to, with the bytes each got.
    pub files: Vec<(String, u64)>,
    /// Bytes shipped in all.
    pub bytes: u64,
    /// The index as it now stands.
    pub index: Index,
    /// Gaps found in this run.
    pub new_gaps: Vec<(String, String)>,
}

/// Why shipping stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// A host or the store failed.
    #[error("{}", .0.message())]
    Step(#[from] StepError),
    /// The server's binlogs do not continue what was shipped.
    #[error("{0}")]
    Diverged(String),
}

/// Ships the binlogs of `db` (the primary, inventory name `host`) into `store`.
pub async fn ship(db: &Db, store: &Store, store_host: Option<&Host>) -> Result<Shipped, ShipError> {
    let host = db.host.name().to_string();
    let mut index = Index::load(store, store_host, &host).await?;
    let server = server(db).await?;
    if server.current.is_empty() || server.dir.is_empty() {
        return Err(ShipError::Diverged(format!(
            "{host} has no binary log (`log_bin` is off): there is nothing to roll a backup forward over"
        )));
    }
    if index.server_id != 0 && index.server_id != server.server_id {
        return Err(ShipError::Diverged(format!(
            "the store's binlogs of {host} came from server_id {}, the server now has {}",
            index.server_id, server.server_id
        )));
    }
    index.server_id = server.server_id;
    let mut shipped = Shipped::default();
    // What to ship: (name, from, to, closed).
    let mut work: Vec<(String, u64, u64, bool)> = Vec::new();
    // Files after the current one appeared by a rotation between the two statements: the next
    // run ships them.
    for (name, size) in server
        .files
        .iter()
        .filter(|(n, _)| n.as_str() <= server.current.as_str())
    {
        let current = *name == server.current;
        let end = if current { server.position } else { *size };
        let known = index.files.iter().find(|f| &f.name == name);
        if let Some(k) = known {
            if k.bytes > end {
                return Err(ShipError::Diverged(format!(
                    "{name} on {host} has {end} bytes, {} were shipped before: the server's binlogs were reset or replaced",
                    k.bytes
                )));
            }
            // Done: closed, or as long as the server has it and still open.
            if k.closed || (k.bytes == end && current != k.closed) {
                continue;
            }
        } else if index.files.last().is_some_and(|l| l.name.as_str() > name.as_str()) {
            // Older than what was shipped: purged history the store never had; not a gap.
            continue;
        }
        work.push((name.clone(), known.map_or(0, |k| k.bytes), end, !current));
    }
    // A file the store lacks between the last shipped one and the first shipped now, or the
    // unshipped end of a file the server purged before it was closed in the store.
    let purged_open = index
        .files
        .last()
        .is_some_and(|l| !l.closed && !server.files.iter().any(|(n, _)| *n == l.name));
    if let (Some(last), Some(first)) = (index.files.last(), work.first())
        && !index.files.iter().any(|f| f.name == first.0)
        && (purged_open || !consecutive(&last.name, &first.0))
    {
        let gap = (last.name.clone(), first.0.clone());
        index.gaps.push(gap.clone());
        shipped.new_gaps.push(gap);
    }
    let mut at: Vec<(String, u64)> = Vec::new();
    for (name, _, end, _) in &work {
        at.push((name.clone(), 4));
        at.push((name.clone(), *end));
    }
    let gtids = positions(db, &at).await?;
    for (i, (name, from, end, closed)) in work.into_iter().enumerate() {
        let path = format!("{}/{name}", server.dir);
        let command = RemoteCommand::new(format!(
            "f={}\n[ -r \"$f\" ] || {{ echo \"cannot read $f\" >&2; exit 3; }}\ntail -c +{} -- \"$f\" | head -c {}\n",
            quote(&path),
            from + 1,
            end - from
        ));
        let rel = Index::file_path(&host, &name);
        let (hashed, out) = store
            .append(store_host, &db.host, (&command, Input::None), (&rel, from))
            .await?;
        if !out.success() || hashed.bytes != end {
            return Err(ShipError::Step(StepError::remote(
                &host,
                "binlogs",
                crate::transport::Failure::from_output(
                    format!("shipping {name} stopped at {} of {end} bytes", hashed.bytes),
                    format!("read {path}"),
                    &out,
                ),
            )));
        }
        let entry = BinlogFile {
            name: name.clone(),
            bytes: end,
            sha256: hashed.sha256,
            closed,
            gtid_start: gtids.get(2 * i).cloned().unwrap_or_default(),
            gtid_end: gtids.get(2 * i + 1).cloned().unwrap_or_default(),
        };
        match index.files.iter_mut().find(|f| f.name == name) {
            Some(f) => *f = entry,
            None => index.files.push(entry),
        }
        shipped.bytes += end - from;
        shipped.files.push((name, end - from));
        // Written after every file: a run cut short keeps what it shipped.
        save(store, store_host, &index).await?;
    }
    index.covered_until = server.now;
    index.shipped_at = crate::output::now_rfc3339();
    save(store, store_host, &index).await?;
    shipped.index = index;
    Ok(shipped)
}

/// Ships under the `binlogs` lock of the primary (a cron run and a restore never append to
/// the same file at once), waiting up to `wait` for it.
pub async fn ship_locked(
    db: &Db,
    (store, store_host): (&Store, Option<&Host>),
    wait: std::time::Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Shipped, crate::ops::Abort> {
    use crate::exit::Code;
    use crate::ops::{Abort, lock};
    let req = lock::Request {
        name: "binlogs".into(),
        command: "backup binlogs".into(),
        reason: "ship binlogs".into(),
        ttl: std::time::Duration::from_secs(120),
        wait,
    };
    let lease = match lock::acquire(&db.host, &req, cancel).await {
        Ok(l) => l,
        Err(lock::LockError::Held(info)) => {
            return Err(Abort::new(Code::Locked, format!("lock {}", info.describe()))
                .hint("another run ships the binlogs; wait with `--lock-wait SECONDS`"));
        }
        Err(e) => {
            return Err(Abort::new(
                Code::HostFailed,
                format!("cannot take the binlogs lock: {e}"),
            ));
        }
    };
    let result = ship(db, store, store_host).await;
    let _ = lease.release().await;
    result.map_err(|e| match e {
        ShipError::Step(e) => Abort::step("shipping the binlogs failed", &e),
        ShipError::Diverged(m) => Abort::new(Code::HostFailed, m),
    })
}

/// Records that the primary's data was just restored (its binlog no longer describes it), after
/// shipping what it has, under the `binlogs` lock.
pub async fn mark_break(
    db: &Db,
    (store, store_host): (&Store, Option<&Host>),
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Break, crate::ops::Abort> {
    let shipped = ship_locked(db, (store, store_host), std::time::Duration::from_secs(60), cancel).await?;
    let mut s = Script::new();
    let m = s.mark();
    s.sql("SELECT @@gtid_binlog_pos AS g, UNIX_TIMESTAMP() AS now");
    let st = s.mark();
    s.sql("SHOW MASTER STATUS");
    s.mark();
    let r = db
        .query("binlog position", &s)
        .await
        .map_err(|e| crate::ops::Abort::step("cannot read the binlog position", &e))?;
    let brk = Break {
        file: r.set(st).first("File").unwrap_or_default().to_string(),
        pos: r.set(st).first("Position").and_then(|p| p.parse().ok()).unwrap_or(0),
        gtid: r.set(m).first("g").unwrap_or_default().to_string(),
        time: r.set(m).first("now").and_then(|p| p.parse().ok()).unwrap_or(0),
    };
    let mut index = shipped.index;
    index.breaks.push(brk.clone());
    save(store, store_host, &index)
        .await
        .map_err(|e| crate::ops::Abort::step("cannot record the restore in the binlog index", &e))?;
    Ok(brk)
}

/// Drops pruned files from the index (their bytes are gone from the store).
pub async fn forget(
    (store, store_host): (&Store, Option<&Host>),
    mut index: Index,
    names: &[String],
) -> Result<(), StepError> {
    index.files.retain(|f| !names.contains(&f.name));
    save(store, store_host, &index).await
}

async fn save(store: &Store, store_host: Option<&Host>, index: &Index) -> Result<(), StepError> {
    let json = serde_json::to_vec(index).unwrap_or_default();
    store.put(store_host, &Index::path(&index.host), &json).await
}

/// Whether `b` is the file right after `a` (`mysql-bin.000041`, `mysql-bin.000042`).
fn consecutive(a: &str, b: &str) -> bool {
    let num = |s: &str| {
        s.rsplit_once('.')
            .and_then(|(base, n)| n.parse::<u64>().ok().map(|n| (base.to_string(), n)))
    };
    match (num(a), num(b)) {
        (Some((ba, na)), Some((bb, nb))) => ba == bb && nb == na + 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> BinlogFile {
        BinlogFile {
            name: name.into(),
            bytes: 1,
            sha256: String::new(),
            closed: true,
            gtid_start: String::new(),
            gtid_end: String::new(),
        }
    }

    #[test]
    fn files_follow_each_other_by_number() {
        assert!(consecutive("mysql-bin.000009", "mysql-bin.000010"));
        assert!(!consecutive("mysql-bin.000009", "mysql-bin.000011"));
        assert!(!consecutive("a.000001", "b.000002"));
    }

    #[test]
    fn a_roll_forward_stops_at_a_gap() {
        let index = Index {
            files: ["b.000001", "b.000002", "b.000005", "b.000006"].map(file).to_vec(),
            gaps: vec![("b.000002".into(), "b.000005".into())],
            ..Index::default()
        };
        let names = |f: Option<&[BinlogFile]>| f.map(|f| f.iter().map(|x| x.name.clone()).collect::<Vec<_>>());
        assert_eq!(
            names(index.from_file("b.000001")),
            Some(vec!["b.000001".into(), "b.000002".into()])
        );
        assert_eq!(
            names(index.from_file("b.000005")),
            Some(vec!["b.000005".into(), "b.000006".into()])
        );
        assert_eq!(names(index.from_file("b.000003")), None);
    }
}
