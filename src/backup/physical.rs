//! Physical backups: `mariabackup --backup --stream=xbstream`, compressed with zstd on the
//! source and streamed to the store like a dump. The store keeps the stream exactly as taken
//! (its SHA-256 is of those bytes) and needs no MariaDB tools; the backup is **prepared where
//! it is restored** (`mariabackup --prepare` on the database host, which has the server's own
//! mariabackup), at each restore and each verification, so every verification proves the
//! prepare as well.
//!
//! ```text
//! restore: checks (tools, service, option directory, same filesystem, no other swap)
//!   ─► store ─ zstd -dc | mbstream -x ─► <datadir>.tend-restore-<run> (SHA-256 checked)
//!   ─► mariabackup --prepare                        (the server still serves: nothing touched)
//!   ─► (writes stopped) swap, detached so that it completes even if tend dies: the server
//!      stopped, its own binlogs, replication settings and upgrade marks carried over,
//!      <datadir> → <datadir>.tend-old-<run>, staged → <datadir>, started with replication
//!      held (skip-slave-start); the data before put back if it does not start
//!   ─► replay as after a logical load ─► <datadir>.tend-old-<run> removed
//! ```

use super::catalog::Backup;
use super::store::Store;
use crate::exit::Code;
use crate::migrate::db::{Db, Script};
use crate::ops::{Abort, Progress};
use crate::output::{Status, StepEvent};
use crate::transport::shell::{quote, tethered};
use crate::transport::{Host, Input, RemoteCommand, StepError};
use std::time::{Duration, Instant};

/// The backup, compressed, on stdout; on stderr as `tend-*` lines: the tool's version,
/// mariabackup's exit status and its binlog position line (the rest of its log only when it
/// failed). Exits with zstd's status: a stream cut short is never stored as complete.
pub const BACKUP: &str = r#"
command -v mariabackup >/dev/null || { echo "mariabackup is not installed on the host (package mariadb-backup)" >&2; exit 127; }
command -v zstd >/dev/null || { echo "zstd is not installed on the host" >&2; exit 127; }
echo "tend-tool $(mariabackup --version 2>&1 | head -n 1)" >&2
log=$(mktemp) && work=$(mktemp -d) || exit 3
trap 'rm -rf -- "$cnf" "$log" "$work"' EXIT
{ mariabackup --defaults-extra-file="$cnf" --backup --stream=xbstream --target-dir="$work" 2>"$log"; echo "tend-dump-rc $?" >&2; } |
zstd -q -3 -T0
zrc=$?
grep -F "MySQL binlog position:" "$log" | sed 's/^/tend-coord /' >&2
grep -qF "completed OK!" "$log" || tail -n 8 "$log" >&2
exit $zrc
"#;

/// Reads mariabackup's `MySQL binlog position: filename 'F', position 'P', GTID of the last
/// change 'G'` line.
pub fn coordinates(line: &str) -> Option<(String, u64)> {
    let quoted = |key: &str| -> Option<&str> {
        let rest = &line[line.find(key)? + key.len()..];
        let rest = rest.strip_prefix('\'')?;
        Some(&rest[..rest.find('\'')?])
    };
    if !line.contains("MySQL binlog position:") {
        return None;
    }
    Some((quoted("filename ")?.to_string(), quoted("position ")?.parse().ok()?))
}

/// The tools an unpack and prepare need (exit 127 without them).
const TOOLS: &str = r#"for p in zstd mbstream mariabackup; do command -v $p >/dev/null || { echo "$p is not installed on $(hostname) (packages zstd, mariadb-backup)" >&2; exit 127; }; done
"#;

/// How the swap stops and starts the server, and where its one-start option file goes.
const SERVICE: &str = r#"if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemctl cat mariadb >/dev/null 2>&1; then
  svc() { systemctl "$1" mariadb; }
elif [ -x /etc/init.d/mariadb ]; then svc() { /etc/init.d/mariadb "$1"; }
elif [ -x /etc/init.d/mysql ]; then svc() { /etc/init.d/mysql "$1"; }
else echo "no way to stop and start the server here (no systemd unit or /etc/init.d script named mariadb)" >&2; exit 4; fi
conf=""
for c in /etc/mysql/mariadb.conf.d /etc/my.cnf.d /etc/mysql/conf.d; do [ -d "$c" ] && { conf=$c/99-tend-restore.cnf; break; }; done
[ -n "$conf" ] || { echo "no server option directory (/etc/mysql/mariadb.conf.d, /etc/my.cnf.d) for the start after the restore" >&2; exit 4; }
"#;

/// Everything a physical restore of `$d` needs, checked before anything is unpacked (exit 4:
/// the host's layout does not allow it; 127: a tool is missing; 5: a swap still runs; after
/// [`TOOLS`] and [`SERVICE`]). Removes what killed runs left unpacked beside the datadir.
const PREFLIGHT: &str = r#"[ -d "$d" ] || { echo "the datadir $d is not a directory here" >&2; exit 4; }
if [ -L "$d" ] || [ "$(stat -c %d -- "$d")" != "$(stat -c %d -- "$(dirname -- "$d")")" ]; then
  echo "the datadir $d is a symbolic link or a filesystem of its own: a physical backup is unpacked beside it and renamed into place; restore a logical backup instead" >&2
  exit 4
fi
[ -n "$pid" ] || { echo "cannot tell the server's process: its pid file $pidfile is empty or missing" >&2; exit 4; }
if [ -d "$d.tend-swap" ]; then
  if kill -0 "$(cat -- "$d.tend-swap/pid" 2>/dev/null)" 2>/dev/null; then echo "a swap of $d still runs (pid $(cat -- "$d.tend-swap/pid")): wait for it" >&2; exit 5; fi
  echo "a swap of $d was cut short (the host went down?): see $d.tend-swap, then remove it" >&2; exit 4
fi
for x in "$d".tend-restore-*; do [ -e "$x" ] && rm -rf -- "$x"; done
exit 0
"#;

/// Unpacks the stream on stdin into `$dir` (made afresh).
const UNPACK: &str = r#"set -u
rm -rf -- "$dir" && mkdir -p -- "$dir" && chmod 700 -- "$dir" || exit 3
{ zstd -dc; echo "tend-zstd-rc $?" >&2; } | mbstream -x -C "$dir" || { rm -rf -- "$dir"; echo "mbstream cannot unpack the backup into $dir" >&2; exit 3; }
"#;

/// Prepares the unpacked backup in `$dir` and gives it to the server's user.
const PREPARE: &str = r#"set -u
if ! mariabackup --prepare --target-dir="$dir" --use-memory=256M > "$dir.prepare.log" 2>&1; then
  tail -n 8 "$dir.prepare.log" >&2; rm -rf -- "$dir" "$dir.prepare.log"; exit 3
fi
rm -f -- "$dir.prepare.log"
chown -R mysql:mysql -- "$dir" || { rm -rf -- "$dir"; exit 3; }
"#;

/// Checks that a host can unpack and prepare (for a scratch server).
pub async fn tools(host: &Host) -> Result<(), StepError> {
    host.step(
        "tools",
        "find mariabackup",
        TOOLS.to_string(),
        Input::None,
        Duration::from_secs(30),
    )
    .await
    .map(|_| ())
}

/// Unpacks backup `backup` from the store into `dir` on `host` (its SHA-256 checked on the
/// way) and prepares it: a server can start on `dir` afterwards. `dir` is removed on failure.
pub async fn unpack(
    progress: &dyn Progress,
    (store, store_host): (&Store, Option<&Host>),
    host: &Host,
    backup: &Backup,
    dir: &str,
) -> Result<(), Abort> {
    let name = host.name().to_string();
    let Some(f) = backup.files.first() else {
        return Err(Abort::new(
            Code::HostFailed,
            format!("backup {} has no file", backup.id),
        ));
    };
    let t = Instant::now();
    let script = format!("dir={}\n{}", quote(dir), tethered(UNPACK, &["dir"]));
    let command = RemoteCommand::new(script).timeout(Some(LONG));
    let fed = super::restore::feed(
        (store, store_host),
        host,
        (backup, f),
        (&command, b""),
        ("unpacking", "nothing was restored", "run the same command again"),
    )
    .await;
    if let Err(e) = fed {
        remove(host, dir).await;
        return Err(e);
    }
    progress.step(
        StepEvent::new(
            &name,
            "unpack",
            Status::Changed,
            format!("{} bytes into {dir}", f.bytes),
        )
        .took(t.elapsed()),
    );
    let t = Instant::now();
    host.step(
        "prepare",
        "mariabackup --prepare",
        format!("dir={}\n{}", quote(dir), tethered(PREPARE, &["dir"])),
        Input::None,
        LONG,
    )
    .await
    .map_err(|e| Abort::step("the backup cannot be prepared; nothing was restored", &e))?;
    progress
        .step(StepEvent::new(&name, "prepare", Status::Changed, "mariabackup --prepare: consistent").took(t.elapsed()));
    Ok(())
}

async fn remove(host: &Host, dir: &str) {
    let _ = host
        .step(
            "clean",
            "remove the unpacked backup",
            format!("rm -rf -- {}", quote(dir)),
            Input::None,
            Duration::from_secs(3600),
        )
        .await;
}

/// How long unpacking, preparing and swapping may take.
const LONG: Duration = Duration::from_secs(24 * 3600);

/// Puts the prepared `$new` in place of the server's datadir, detached from tend's connection
/// (a dead tend never leaves it half done), holding `$d.tend-swap` while it works. The server
/// keeps its own binlogs (hard links: the sequence and GTID state go on), replication settings
/// and upgrade marks; it starts with replication held. The data before the first swap of a
/// run stays in `$old`; on a retry the data of the earlier swap goes to `$prev`. Whatever
/// fails before the server runs on the new data puts the data it had back and starts it.
const SWAP: &str = r#"set -u
d=${datadir%/}
mkdir -- "$d.tend-swap" 2>/dev/null || { echo "a swap of $d already runs" >&2; exit 5; }
echo $$ > "$d.tend-swap/pid"
unlock() { rm -rf -- "$d.tend-swap"; }
# stopped PID: waits up to 5 minutes for the process to end.
stopped() {
  [ -z "$1" ] && return 0
  i=0
  while kill -0 "$1" 2>/dev/null; do i=$((i + 1)); [ $i -gt 1200 ] && return 1; sleep 0.25; done
}
# abort MESSAGE: before the rename: the server started again on its own data.
abort() { rm -rf -- "$new"; svc start >/dev/null 2>&1; unlock; echo "$1; the server runs on its own data again" >&2; exit 3; }
[ -d "$new" ] || { unlock; echo "the prepared backup $new is gone" >&2; exit 3; }
[ -n "$pid" ] || { unlock; echo "cannot tell the server's process: its pid file $pidfile is empty or missing" >&2; exit 3; }
svc stop >/dev/null 2>&1
stopped "$pid" || abort "the server (pid $pid) did not stop within 5 minutes"
for f in "$d"/master*.info "$d"/multi-master.info "$d"/mysql_upgrade_info "$d"/debian-*.flag; do
  [ ! -e "$f" ] || cp -p -- "$f" "$new/" || abort "cannot copy $f to the restored data"
done
if [ -n "$binlog" ] && [ "$(dirname -- "$binlog")" = "$d" ]; then
  for f in "$binlog".[0-9]*; do
    [ ! -e "$f" ] || ln -f -- "$f" "$new/" || abort "cannot link binlog $f into the restored data"
  done
  for f in "$binlog".index "$binlog".state; do
    [ ! -e "$f" ] || cp -p -- "$f" "$new/" || abort "cannot copy $f to the restored data"
  done
fi
chown -R mysql:mysql -- "$new" || abort "cannot give the restored data to the mysql user"
if [ -d "$old" ]; then aside=$prev; rm -rf -- "$prev"; else aside=$old; fi
mv -- "$d" "$aside" || abort "cannot move $d aside"
mv -- "$new" "$d" || { mv -- "$aside" "$d"; abort "cannot put the restored data in place of $d"; }
printf '[mysqld]\n# Written by tend for the start after a restore; removed after it.\nskip-slave-start\n' > "$conf"
if svc start >/dev/null 2>&1; then
  rm -f -- "$conf"; rm -rf -- "$prev"; unlock; echo "tend-swapped"; exit 0
fi
rm -f -- "$conf"
svc stop >/dev/null 2>&1
stopped "$(cat -- "$pidfile" 2>/dev/null)" || { unlock; echo "the server did not start on the restored data, and does not stop: see it on the host; the data before is in $aside" >&2; exit 3; }
rm -rf -- "$new.failed"
if mv -- "$d" "$new.failed" && mv -- "$aside" "$d" && svc start >/dev/null 2>&1; then
  unlock; echo "the server did not start on the restored data: the data it had is back in place and it runs; the restored data is kept in $new.failed" >&2; exit 3
fi
unlock
echo "the server did not start on the restored data, nor on the data it had: IT IS STOPPED; its data before the restore is in $aside (or $d), the restored data in $new.failed (or $d)" >&2
exit 3
"#;

/// Where a server keeps its files.
struct Paths {
    datadir: String,
    binlog: String,
    pidfile: String,
}

/// The server's datadir, binlog and pid file; refuses (exit 4) a layout a swap of the datadir
/// would tear apart: InnoDB's or Aria's files in a directory of their own.
async fn paths(db: &Db) -> Result<Paths, Abort> {
    let set = db
        .one("datadir", "SELECT @@datadir AS datadir, IFNULL(@@log_bin_basename, '') AS binlog, @@pid_file AS pid, IFNULL(@@innodb_data_home_dir, '') AS data_home, IFNULL(@@innodb_log_group_home_dir, '') AS log_home, IFNULL(@@innodb_undo_directory, '') AS undo_dir, IFNULL(@@aria_log_dir_path, '') AS aria")
        .await
        .map_err(|e| Abort::step("cannot read the server's datadir", &e))?;
    let get = |k: &str| set.first(k).unwrap_or_default().to_string();
    let host = db.host.name();
    let datadir = get("datadir").trim_end_matches('/').to_string();
    if !datadir.starts_with('/') || datadir.len() < 2 {
        return Err(Abort::new(
            Code::HostFailed,
            format!("{host}: the server's datadir `{datadir}` is not a directory tend can replace"),
        ));
    }
    for var in ["data_home", "log_home", "undo_dir", "aria"] {
        let dir = get(var);
        let dir = dir.trim_end_matches('/');
        let inside = dir.is_empty() || dir == "." || dir.starts_with("./") || dir == datadir;
        if !inside {
            return Err(Abort::new(
                Code::InvalidInput,
                format!(
                    "{host}: the server keeps files in {dir}, outside its datadir {datadir}: a physical restore replaces the datadir only; restore a logical backup"
                ),
            ));
        }
    }
    let pid = get("pid");
    let pidfile = if pid.starts_with('/') {
        pid
    } else {
        format!("{datadir}/{pid}")
    };
    Ok(Paths {
        datadir,
        binlog: get("binlog"),
        pidfile,
    })
}

/// The shell variables the swap and its checks read.
fn vars(p: &Paths, run: &str) -> String {
    format!(
        "datadir={} new={} old={} prev={} binlog={} pidfile={}\npid=$(cat -- \"$pidfile\" 2>/dev/null || true)\n",
        quote(&p.datadir),
        quote(&staged_dir(&p.datadir, run)),
        quote(&old_dir(&p.datadir, run)),
        quote(&prev_dir(&p.datadir, run)),
        quote(&p.binlog),
        quote(&p.pidfile),
    )
}

/// Unpacks and prepares backup `backup` beside the datadir of `db`'s server for run `run`,
/// after checking everything the swap will need: the server is not touched.
pub async fn stage(
    progress: &dyn Progress,
    (store, store_host): (&Store, Option<&Host>),
    db: &Db,
    run: &str,
    backup: &Backup,
) -> Result<(), Abort> {
    let p = paths(db).await?;
    let script = format!("{}set -u\nd=${{datadir%/}}\n{TOOLS}{SERVICE}{PREFLIGHT}", vars(&p, run));
    let out = db
        .host
        .run(
            &RemoteCommand::new(script).timeout(Some(Duration::from_secs(3600))),
            Input::None,
        )
        .await
        .map_err(|e| {
            Abort::step(
                "cannot check the host",
                &StepError::transport(db.host.name(), "preflight", e),
            )
        })?;
    if !out.success() {
        let code = match out.rc {
            Some(4) => Code::InvalidInput,
            Some(5) => Code::Locked,
            _ => Code::HostFailed,
        };
        return Err(Abort::new(
            code,
            format!(
                "{}: {}; nothing was changed",
                db.host.name(),
                crate::transport::last_error_line(&out, "the host cannot take a physical restore")
            ),
        ));
    }
    unpack(
        progress,
        (store, store_host),
        &db.host,
        backup,
        &staged_dir(&p.datadir, run),
    )
    .await
}

/// Puts the backup [`stage`]d for run `run` in place of the server's data and waits until the
/// server answers again.
pub async fn swap(progress: &dyn Progress, db: &Db, run: &str, backup: &Backup) -> Result<(), Abort> {
    let name = db.host.name().to_string();
    let p = paths(db).await?;
    let t = Instant::now();
    let script = format!(
        "{}log=$(mktemp) || exit 3\nexport datadir new old prev binlog pidfile pid\n\
         setsid sh -c {} < /dev/null > \"$log\" 2>&1 &\nwait $!\nrc=$?\ncat -- \"$log\" >&2; rm -f -- \"$log\"\nexit $rc",
        vars(&p, run),
        quote(&format!("{}{SWAP}", SERVICE.replace("exit 4", "exit 3")))
    );
    db.host
        .step("swap", "put the restored data in place", script, Input::None, LONG)
        .await
        .map_err(|e| Abort::step("the restored data could not be put in place", &e))?;
    // The server answers once recovery and its start scripts are done.
    let mut failed = None;
    for _ in 0..240 {
        let mut s = Script::new();
        s.sql("SELECT 1");
        match db.query("server up", &s).await {
            Ok(_) => {
                failed = None;
                break;
            }
            Err(e) => failed = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(e) = failed {
        return Err(Abort::step("the server does not answer after the restore", &e));
    }
    progress.step(
        StepEvent::new(
            &name,
            "swap",
            Status::Changed,
            format!(
                "server restarted on backup {}; its data before is kept in {} until the restore ends",
                backup.id,
                old_dir(&p.datadir, run)
            ),
        )
        .took(t.elapsed()),
    );
    Ok(())
}

/// Refuses (exit 4) a physical backup of another MariaDB release series than the target's
/// server: its files would not start there, or be prepared by the target's mariabackup.
pub async fn same_series(db: &Db, backup: &Backup) -> Result<(), Abort> {
    let target = db
        .one("server version", "SELECT @@version AS v")
        .await
        .map_err(|e| Abort::step("cannot read the server's version", &e))?
        .first("v")
        .unwrap_or_default()
        .to_string();
    if series(&target) != series(&backup.server_version) {
        return Err(Abort::new(
            Code::InvalidInput,
            format!(
                "backup {} is a physical copy of MariaDB {}; {} runs {target}: its files need the same release series",
                backup.id,
                backup.server_version,
                db.host.name()
            ),
        )
        .hint("restore a logical backup instead (`tend backup list` shows them; --backup ID)"));
    }
    Ok(())
}

/// `10.11` of `10.11.14-MariaDB-0+deb12u2-log`.
fn series(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Where run `run` unpacks its backup.
fn staged_dir(datadir: &str, run: &str) -> String {
    format!("{datadir}.tend-restore-{run}")
}

/// Where a retried swap of run `run` keeps the data of the earlier swap until the server runs.
fn prev_dir(datadir: &str, run: &str) -> String {
    format!("{datadir}.tend-prev-{run}")
}

/// Where the server's data before run `run` is kept.
fn old_dir(datadir: &str, run: &str) -> String {
    format!("{datadir}.tend-old-{run}")
}

/// Removes the data a finished physical restore replaced; says which data other, unfinished
/// restores left beside the datadir.
pub async fn finish(progress: &dyn Progress, db: &Db, run: &str) {
    let Ok(p) = paths(db).await else { return };
    let script = format!(
        "rm -rf -- {} {}\nfor x in {}.tend-old-*; do [ -e \"$x\" ] && echo \"$x\"; done; exit 0",
        quote(&old_dir(&p.datadir, run)),
        quote(&prev_dir(&p.datadir, run)),
        quote(&p.datadir)
    );
    match db
        .host
        .step(
            "clean",
            "remove the replaced data",
            script,
            Input::None,
            Duration::from_secs(3600),
        )
        .await
    {
        Ok(out) => {
            for left in String::from_utf8_lossy(&out.stdout).lines() {
                progress.warn(format!(
                    "{}: {left} holds a server's data from before an unfinished restore: remove it when it is not needed",
                    db.host.name()
                ));
            }
        }
        Err(e) => progress.warn(format!(
            "the data the restore replaced is still in {}: {}",
            old_dir(&p.datadir, run),
            e.message()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariabackups_position_is_read() {
        assert_eq!(
            coordinates(
                "tend-coord [00] 2026-12-01 08:05:21 MySQL binlog position: filename 'mysql-bin.000002', position '1722', GTID of the last change '0-1-7'"
            ),
            Some(("mysql-bin.000002".to_string(), 1722))
        );
        assert_eq!(coordinates("[00] completed OK!"), None);
        assert_eq!(series("10.11.14-MariaDB-0+deb12u2-log"), "10.11");
        assert_ne!(series("11.4.2-MariaDB"), series("10.11.14-MariaDB"));
    }
}
