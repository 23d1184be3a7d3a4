//! `tend logs collect`: the hosts' logs pulled into a local store over the SSH tend already
//! has, incrementally and exactly once.
//!
//! ```text
//! per host, one channel: for each log, its checkpoint (inode, offset, a hash of its first
//!   bytes) ─► the host finds where the last collection stopped: the same file, or, after a
//!   rotation, the rotated file that holds those bytes (same inode after rename + create; same
//!   first bytes after copytruncate or gzip), sends the rest of it, any whole rotations after
//!   it, then the current file ─► the store: complete lines appended as a gzip member to
//!   `<store>/<host>/<log>/<YYYY-MM-DD>.log.gz` (the day the line itself names) ─► the new
//!   checkpoint and the store files' lengths, written last
//! ```
//!
//! A run that dies after appending and before writing its checkpoint is undone by the next one,
//! which cuts the store's files back to the recorded lengths before it appends: no line twice,
//! none lost. The store is its owner's alone (logs hold addresses and URLs), and a lock file
//! keeps two runs (cron every minute) from overlapping.

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::settings::{HostVars, Variables};
use crate::transport::{Host, Input, RemoteCommand, Sink, StepError};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// One log of a host: its name in the store and its path on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Letters, digits, `_`, `-`, `.`: a directory name in the store.
    pub name: String,
    /// Absolute path on the host.
    pub path: String,
}

/// The shop's logs by inventory group, used when a host sets no `logs_files`.
const DEFAULTS: &[(&str, &str, &str)] = &[
    ("lb", "nginx_access", "/var/log/nginx/access.log"),
    ("lb", "nginx_error", "/var/log/nginx/error.log"),
    ("app", "tomcat", "/var/lib/tomcat10/logs/catalina.out"),
    ("db", "mariadb_error", "/var/log/mysql/error.log"),
    ("db", "mariadb_slow", "/var/log/mysql/mariadb-slow.log"),
];

/// Host `h`'s logs: `logs_files` (a mapping of name to path) when set, else the shop's
/// defaults for the groups it is in (`lb`: Nginx's access and error logs, `app`: Tomcat's
/// catalina.out, `db` and its children: MariaDB's error and slow logs).
pub fn files_of(vars: &Variables, inv: &Inventory, h: usize) -> Result<Vec<LogFile>, Diagnostic> {
    let hv = HostVars::new(vars, inv, h, &[]);
    let set = hv.value("logs_files")?;
    let pairs: Vec<(String, String)> = match set {
        serde_json::Value::Null => {
            let member = |g: &str| inv.group_index(g).is_some_and(|i| inv.hosts_of_group(i).contains(&h));
            DEFAULTS
                .iter()
                .filter(|(g, _, _)| member(g))
                .map(|(_, n, p)| ((*n).to_string(), (*p).to_string()))
                .collect()
        }
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(p) => Ok((k, p)),
                other => Err(hv.error("logs_files", format!("`{k}` must be a path, found {other}"))),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(hv
                .error(
                    "logs_files",
                    format!("must be a mapping of log name to path, found {other}"),
                )
                .with_hint("for example `logs_files: {nginx_access: /var/log/nginx/access.log}`"));
        }
    };
    let mut files = Vec::new();
    for (name, path) in pairs {
        if !valid_name(&name) {
            return Err(hv.error(
                "logs_files",
                format!("`{name}` is not a log name: letters, digits, `_`, `-` and `.`, not starting with `.`"),
            ));
        }
        if !path.starts_with('/') || path.contains('\n') {
            return Err(hv.error("logs_files", format!("`{name}`: `{path}` is not an absolute path")));
        }
        files.push(LogFile { name, path });
    }
    Ok(files)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The store when `logs_store_dir` is not set: `$XDG_STATE_HOME/tend/logs`, else
/// `~/.local/state/tend/logs`.
pub fn default_store() -> PathBuf {
    crate::output::state_dir("logs")
}

/// Where a collection stopped in one log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file's inode.
    pub inode: u64,
    /// Bytes of it collected (always at the end of a line).
    pub offset: u64,
    /// How many of its first bytes `head` hashes (at most 256, at most `offset`).
    pub head_len: u64,
    /// SHA-256 of those bytes, hex.
    pub head: String,
    /// The day the last line collected belongs to: lines that name none (a stack trace's) go
    /// with the line before them.
    pub day: String,
}

/// A host's state in the store: checkpoints by log and the length of every store file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HostState {
    logs: BTreeMap<String, Checkpoint>,
    /// Store files (relative to the host's directory) and their lengths after the last run.
    stored: BTreeMap<String, u64>,
}

/// What one collection of one log brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// The log's name.
    pub log: String,
    /// Complete lines stored.
    pub lines: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Rotated files read (the rest of the one collected last time, then whole ones).
    pub rotated: u64,
    /// The file was replaced and its predecessor not found among its rotations.
    pub lost: bool,
    /// The file does not exist on the host.
    pub missing: bool,
    /// The new lines, when asked for (`--follow`).
    pub new_lines: Vec<String>,
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The host's side.
    #[error("{0}")]
    Step(Box<StepError>),
    /// The store on the control node.
    #[error("{0}")]
    Store(String),
}

/// The host's side: for each log line of the input (`name path inode offset head_len head`,
/// tab-separated), the pieces to store, each `tend-piece NAME ROLE BYTES` and its bytes, then
/// `tend-end NAME INODE START HEAD_HEX` (the current file's first 256 bytes); or
/// `tend-missing NAME`; `tend-lost NAME` when a replaced file's predecessor is not found.
const SCRIPT: &str = r#"set -uf
umask 077
IFS='
'
t=$(mktemp) || exit 3
trap 'rm -f -- "$t"' EXIT
isgz() { case $1 in *.gz) echo 1 ;; *) echo 0 ;; esac; }
from() { # FILE GZ OFFSET: its bytes from OFFSET
  if [ "$2" = 1 ]; then gzip -dc -- "$1" | tail -c +$(($3 + 1)); else tail -c +$(($3 + 1)) -- "$1"; fi
}
hash() { # FILE GZ LEN: SHA-256 of its first LEN bytes
  if [ "$2" = 1 ]; then gzip -dc -- "$1" 2>/dev/null | head -c "$3"; else head -c "$3" -- "$1"; fi | sha256sum | cut -d' ' -f1
}
piece() { # NAME ROLE FILE GZ OFFSET [LIMIT]
  if [ $# -ge 6 ]; then from "$3" "$4" "$5" | head -c "$6" > "$t"; else from "$3" "$4" "$5" > "$t"; fi
  printf 'tend-piece %s %s %s\n' "$1" "$2" "$(stat -c %s -- "$t")"
  cat -- "$t"
}
one() { # NAME PATH INODE OFFSET HEAD_LEN HEAD
  n=$1 p=$2 ino=$3 off=$4 hlen=$5 h=$6
  if [ ! -f "$p" ]; then echo "tend-missing $n"; return 0; fi
  cino=$(stat -L -c %i -- "$p"); csize=$(stat -L -c %s -- "$p")
  start=0
  if [ "$ino" != 0 ]; then
    if [ "$cino" = "$ino" ] && [ "$csize" -ge "$off" ] && [ "$(hash "$p" 0 "$hlen")" = "$h" ]; then
      start=$off
    else
      found='' newer=''
      set +f
      list=$(ls -1t -- "$p".* "$p"-* 2>/dev/null)
      set -f
      for f in $list; do
        case $f in *.gz | *.[0-9] | *.[0-9][0-9] | *-[0-9]*) ;; *) continue ;; esac
        [ -f "$f" ] || continue
        z=$(isgz "$f")
        if { [ "$z" = 0 ] && [ "$(stat -L -c %i -- "$f")" = "$ino" ]; } ||
          { [ "$hlen" -gt 0 ] && [ "$(hash "$f" "$z" "$hlen")" = "$h" ]; }; then
          found=$f
          break
        fi
        newer="$f
$newer"
      done
      if [ -n "$found" ]; then
        piece "$n" old "$found" "$(isgz "$found")" "$off"
        for f in $newer; do [ -n "$f" ] && piece "$n" old "$f" "$(isgz "$f")" 0; done
      else
        echo "tend-lost $n"
      fi
    fi
  fi
  piece "$n" current "$p" 0 "$start" $((csize - start))
  printf 'tend-end %s %s %s %s\n' "$n" "$cino" "$start" "$(head -c 256 -- "$p" | od -An -v -tx1 | tr -d ' \n')"
}
while IFS='	' read -r n p ino off hlen h; do
  one "$n" "$p" "$ino" "$off" "$hlen" "$h"
done
"#;

/// Collects `files` of `host` into `store` (its directory `<store>/<host>`). The caller holds
/// the store's lock.
pub async fn collect(
    host: &Host,
    store: &Path,
    files: &[LogFile],
    keep_lines: bool,
) -> Result<Vec<Collected>, CollectError> {
    let dir = store.join(host.name());
    crate::private::dir(&dir).map_err(|e| store_error(&dir, &e))?;
    let state_path = dir.join(".state.json");
    let mut state: HostState = match std::fs::read(&state_path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| CollectError::Store(format!("{}: {e}", state_path.display())))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HostState::default(),
        Err(e) => return Err(store_error(&state_path, &e)),
    };
    undo_unrecorded(&dir, &state)?;

    let mut input = String::new();
    for f in files {
        let c = state.logs.get(&f.name).cloned().unwrap_or_default();
        input.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            f.name,
            f.path,
            c.inode,
            c.offset,
            c.head_len,
            if c.head.is_empty() { "-" } else { &c.head }
        ));
    }
    // What the host sends lands in a private file first: a log's first collection may be large.
    let spool = dir.join(".incoming");
    let file = crate::private::file(&spool).map_err(|e| store_error(&spool, &e))?;
    let mut out = tokio::fs::File::from_std(file);
    let command = RemoteCommand::new(SCRIPT.to_string());
    let result = host
        .stream(&command, Input::Bytes(input.as_bytes()), Sink::Write(&mut out))
        .await;
    let flushed = tokio::io::AsyncWriteExt::flush(&mut out).await;
    drop(out);
    flushed.map_err(|e| store_error(&spool, &e))?;
    let output = result.map_err(|e| StepError::transport(host.name(), "logs", e))?;
    if !output.success() {
        let _ = std::fs::remove_file(&spool);
        return Err(StepError::remote(
            host.name(),
            "logs",
            crate::transport::Failure::from_output(
                crate::transport::last_error_line(&output, "the log reader failed"),
                "read the logs".to_string(),
                &output,
            ),
        )
        .into());
    }
    let result = store_pieces(&spool, &dir, &mut state, keep_lines);
    let _ = std::fs::remove_file(&spool);
    let collected = result?;
    // The checkpoints go last: until they are written, the appended bytes are not recorded.
    let json = serde_json::to_vec(&state).map_err(|e| CollectError::Store(e.to_string()))?;
    let tmp = dir.join(".state.json.tmp");
    crate::private::file(&tmp)
        .and_then(|mut f| {
            f.write_all(&json)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &state_path))
        .map_err(|e| store_error(&state_path, &e))?;
    Ok(files
        .iter()
        .map(|f| {
            collected
                .iter()
                .find(|c| c.log == f.name)
                .cloned()
                .unwrap_or_else(|| Collected {
                    log: f.name.clone(),
                    ..Collected::default()
                })
        })
        .collect())
}

impl From<StepError> for CollectError {
    fn from(e: StepError) -> Self {
        Self::Step(Box::new(e))
    }
}

fn store_error(path: &Path, e: &std::io::Error) -> CollectError {
    CollectError::Store(format!("{}: {e}", path.display()))
}

/// Cuts the store's files back to the lengths the state recorded and removes those it does not
/// know: what a run that died before writing its state appended.
fn undo_unrecorded(dir: &Path, state: &HostState) -> Result<(), CollectError> {
    let Ok(logs) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for log in logs.flatten() {
        if !log.path().is_dir() {
            continue;
        }
        let Ok(days) = std::fs::read_dir(log.path()) else {
            continue;
        };
        for day in days.flatten() {
            let rel = format!(
                "{}/{}",
                log.file_name().to_string_lossy(),
                day.file_name().to_string_lossy()
            );
            let path = day.path();
            let len = day.metadata().map(|m| m.len()).unwrap_or(0);
            match state.stored.get(&rel) {
                Some(&want) if len > want => {
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| store_error(&path, &e))?;
                    f.set_len(want).map_err(|e| store_error(&path, &e))?;
                }
                Some(_) => {}
                None => std::fs::remove_file(&path).map_err(|e| store_error(&path, &e))?,
            }
        }
    }
    Ok(())
}

/// One log's store files open for this run: a gzip member per day appended to.
struct Days<'a> {
    dir: &'a Path,
    log: String,
    open: BTreeMap<String, GzEncoder<std::fs::File>>,
}

impl Days<'_> {
    fn write(&mut self, day: &str, line: &[u8]) -> Result<(), CollectError> {
        if !self.open.contains_key(day) {
            let dir = self.dir.join(&self.log);
            crate::private::dir(&dir).map_err(|e| store_error(&dir, &e))?;
            let path = dir.join(format!("{day}.log.gz"));
            let file = crate::private::append(&path).map_err(|e| store_error(&path, &e))?;
            self.open
                .insert(day.to_string(), GzEncoder::new(file, Compression::default()));
        }
        if let Some(enc) = self.open.get_mut(day) {
            enc.write_all(line)
                .map_err(|e| CollectError::Store(format!("{}/{day}: {e}", self.log)))?;
        }
        Ok(())
    }

    /// Ends every member, syncs the files and records their lengths.
    fn finish(self, stored: &mut BTreeMap<String, u64>) -> Result<(), CollectError> {
        for (day, enc) in self.open {
            let path = self.dir.join(&self.log).join(format!("{day}.log.gz"));
            let file = enc.finish().map_err(|e| store_error(&path, &e))?;
            file.sync_all().map_err(|e| store_error(&path, &e))?;
            let len = file.metadata().map_err(|e| store_error(&path, &e))?.len();
            stored.insert(format!("{}/{day}.log.gz", self.log), len);
        }
        Ok(())
    }
}

/// Reads what the host sent and stores it, updating `state`.
fn store_pieces(spool: &Path, dir: &Path, state: &mut HostState, keep: bool) -> Result<Vec<Collected>, CollectError> {
    let file = std::fs::File::open(spool).map_err(|e| store_error(spool, &e))?;
    let mut r = BufReader::new(file);
    let mut done: BTreeMap<String, Collected> = BTreeMap::new();
    let mut days: BTreeMap<String, Days<'_>> = BTreeMap::new();
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let mut header = Vec::new();
    // Bytes of complete lines read from each current file.
    let mut kept_current: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        header.clear();
        if r.read_until(b'\n', &mut header).map_err(|e| store_error(spool, &e))? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&header).trim_end().to_string();
        let words: Vec<&str> = text.split(' ').collect();
        let bad = || CollectError::Store(format!("unexpected answer from the host: {text}"));
        match words.as_slice() {
            ["tend-missing", name] => {
                done.entry((*name).to_string()).or_default().missing = true;
            }
            ["tend-lost", name] => {
                done.entry((*name).to_string()).or_default().lost = true;
            }
            ["tend-piece", name, role, len] => {
                let len: u64 = len.parse().map_err(|_| bad())?;
                let name = (*name).to_string();
                let c = done.entry(name.clone()).or_default();
                let ck = state.logs.entry(name.clone()).or_default();
                let d = days.entry(name.clone()).or_insert_with(|| Days {
                    dir,
                    log: name.clone(),
                    open: BTreeMap::new(),
                });
                let mut day = if ck.day.is_empty() {
                    today.clone()
                } else {
                    ck.day.clone()
                };
                let current = *role == "current";
                if !current {
                    c.rotated += 1;
                }
                let mut body = (&mut r).take(len);
                let mut line = Vec::new();
                let mut kept = 0u64;
                loop {
                    line.clear();
                    let n = body.read_until(b'\n', &mut line).map_err(|e| store_error(spool, &e))?;
                    if n == 0 {
                        break;
                    }
                    if line.last() != Some(&b'\n') {
                        // A partial last line: the current file's is read next time; a rotated
                        // file is complete, so its last line is stored as it is.
                        if current {
                            break;
                        }
                        line.push(b'\n');
                    }
                    kept += n as u64;
                    if let Some(d) = line_day(&line) {
                        day = d;
                    }
                    d.write(&day, &line)?;
                    c.lines += 1;
                    c.bytes += n as u64;
                    if keep {
                        c.new_lines
                            .push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
                    }
                }
                // Whatever was not read (a partial line) is skipped to the next header.
                std::io::copy(&mut body, &mut std::io::sink()).map_err(|e| store_error(spool, &e))?;
                ck.day = day;
                if current {
                    kept_current.insert(name, kept);
                }
            }
            ["tend-end", name, inode, start, rest @ ..] => {
                let head = rest.first().copied().unwrap_or_default();
                let inode: u64 = inode.parse().map_err(|_| bad())?;
                let start: u64 = start.parse().map_err(|_| bad())?;
                let ck = state.logs.entry((*name).to_string()).or_default();
                let first = hex::decode(head).map_err(|_| bad())?;
                ck.inode = inode;
                ck.offset = start + kept_current.get(*name).copied().unwrap_or(0);
                let hl = ck.offset.min(first.len() as u64);
                ck.head_len = hl;
                ck.head = hex::encode(Sha256::digest(&first[..hl as usize]));
                done.entry((*name).to_string()).or_default();
            }
            [] | [""] => {}
            _ => return Err(bad()),
        }
    }
    for d in days.into_values() {
        d.finish(&mut state.stored)?;
    }
    Ok(done
        .into_iter()
        .map(|(log, mut c)| {
            c.log = log;
            c
        })
        .collect())
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The day a log line names, as `YYYY-MM-DD`: Nginx's and Tomcat's access logs
/// (`[03/Dec/2026:10:00:00 +0000]`), Nginx's error log (`2026/12/03 10:00:00`), MariaDB's logs
/// and ISO times (`2026-12-03 ...`, `# Time: 2026-12-03T...`, `# Time: 261203 10:00:00`),
/// catalina.out (`03-Dec-2026 10:00:00.000`). `None`: the line names no day.
pub fn line_day(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line.get(..line.len().min(200))?).ok()?;
    let ymd = |y: &str, m: usize, d: &str| -> Option<String> {
        let (y, d): (u32, u32) = (y.parse().ok()?, d.parse().ok()?);
        ((1970..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d))
            .then(|| format!("{y:04}-{m:02}-{d:02}"))
    };
    let month = |m: &str| MONTHS.iter().position(|x| *x == m).map(|i| i + 1);
    // [dd/Mon/yyyy:
    if let Some(i) = text.find('[') {
        let s = text.get(i + 1..i + 12)?;
        if s.as_bytes().get(2) == Some(&b'/') && s.as_bytes().get(6) == Some(&b'/') {
            return ymd(s.get(7..11)?, month(s.get(3..6)?)?, s.get(0..2)?);
        }
    }
    let t = text.strip_prefix("# Time: ").unwrap_or(text).trim_start();
    let b = t.as_bytes();
    // yyyy-mm-dd or yyyy/mm/dd
    if b.len() >= 10 && (b[4] == b'-' || b[4] == b'/') && b[7] == b[4] {
        return ymd(t.get(0..4)?, t.get(5..7)?.parse().ok()?, t.get(8..10)?);
    }
    // dd-Mon-yyyy
    if b.len() >= 11 && b[2] == b'-' && b[6] == b'-' {
        return ymd(t.get(7..11)?, month(t.get(3..6)?)?, t.get(0..2)?);
    }
    // MariaDB's old slow-log time: yymmdd
    if text.starts_with("# Time: ") && b.len() >= 7 && b[..6].iter().all(u8::is_ascii_digit) && b[6] == b' ' {
        return ymd(&format!("20{}", t.get(0..2)?), t.get(2..4)?.parse().ok()?, t.get(4..6)?);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_from_the_shops_log_formats() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "10.0.0.1 - - [03/Dec/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 5",
                Some("2026-12-03"),
            ),
            (
                "2026/12/03 10:00:00 [error] 12#12: *1 connect() failed",
                Some("2026-12-03"),
            ),
            ("2026-12-03 10:00:00 0 [Note] Server socket created", Some("2026-12-03")),
            ("# Time: 2026-12-03T10:00:00.123456Z", Some("2026-12-03")),
            ("# Time: 261203 10:00:00", Some("2026-12-03")),
            (
                "03-Dec-2026 10:00:00.123 INFO [main] Server startup",
                Some("2026-12-03"),
            ),
            ("\tat org.apache.catalina.Foo(Foo.java:1)", None),
            ("[x", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(line_day(line.as_bytes()).as_deref(), *want, "{line}");
        }
    }

    #[test]
    fn log_names_are_directory_names() {
        assert!(valid_name("nginx_access"));
        for bad in ["", ".x", "a/b", "a b", ".."] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
