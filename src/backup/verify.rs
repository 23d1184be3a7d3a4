//! Proving a backup by restoring it: a scratch server (its own datadir under /var/tmp, its own
//! socket and port, never the running server) on a database host, the backup loaded into it
//! exactly as `tend restore` loads one, `CHECK TABLE` of every table, row counts and `CHECKSUM
//! TABLE` compared with the catalog, then rolled forward over the shipped binlogs to their end
//! and the GTID reached checked; the scratch server is torn down whatever happened, and the
//! result with the measured restore time goes into the backup's catalog entry.

use super::binlogs::Index;
use super::catalog::{Backup, Kind, Verification};
use super::restore::{self, Load, Staged, Wanted};
use super::store::Store;
use crate::exit::Code;
use crate::migrate::db::{Db, Script};
use crate::modules::mysql::{Login, ident};
use crate::ops::{Abort, Progress};
use crate::output::{Status, StepEvent};
use crate::transport::{Host, Input, StepError, shell::quote};
use std::time::{Duration, Instant};

/// Makes the scratch server's directory `$d` afresh (stopping one a killed run left) and
/// checks that nothing listens on `$port`.
const CREATE: &str = r#"set -u
for p in mariadbd mariadb-install-db; do command -v $p >/dev/null || { echo "$p is not installed on this host (verify on a database host)" >&2; exit 127; }; done
id mysql >/dev/null 2>&1 || { echo "no mysql user on this host" >&2; exit 3; }
if [ -e "$d/mariadbd.pid" ]; then kill "$(cat "$d/mariadbd.pid")" 2>/dev/null; sleep 2; fi
rm -rf -- "$d" && mkdir -p -- "$d" && chown mysql:mysql -- "$d" && chmod 700 -- "$d" || exit 3
hex=$(printf '%04X' "$port")
if awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
  echo "port $port is taken on this host: set backup_verify_port to a free one" >&2; exit 3
fi
"#;

/// An empty server's datadir in `$d/data` (a logical backup is loaded into it).
const INSTALL: &str = r#"set -u
mkdir -p -- "$d/data" && chown mysql:mysql -- "$d/data" || exit 3
mariadb-install-db --no-defaults --datadir="$d/data" --user=mysql --auth-root-authentication-method=socket --skip-test-db > "$d/install.log" 2>&1 || { tail -5 "$d/install.log" >&2; exit 3; }
"#;

/// Starts the scratch server on `$d/data` and `$port`.
const RUN: &str = r#"set -u
# A prepared physical backup brings the InnoDB settings its files need.
defaults=--no-defaults
[ -f "$d/data/backup-my.cnf" ] && defaults=--defaults-file="$d/data/backup-my.cnf"
(setsid mariadbd "$defaults" --datadir="$d/data" --socket="$d/server.sock" --port="$port" --bind-address=127.0.0.1 --user=mysql --pid-file="$d/mariadbd.pid" --log-error="$d/error.log" --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 --skip-log-bin --skip-slave-start --max-allowed-packet=1G < /dev/null > /dev/null 2>&1 &)
i=0
while [ $i -lt 240 ]; do
  mariadb --no-defaults --socket="$d/server.sock" -e 'SELECT 1' > /dev/null 2>&1 && exit 0
  sleep 0.25; i=$((i + 1))
done
echo "the scratch server did not start: $(tail -n 3 "$d/error.log" 2>/dev/null)" >&2
exit 3
"#;

/// Stops the scratch server in `$d` and removes it.
const STOP: &str = r#"
[ -d "$d" ] || exit 0
mariadb-admin --no-defaults --socket="$d/server.sock" shutdown > /dev/null 2>&1
i=0
while [ -e "$d/mariadbd.pid" ] && [ $i -lt 120 ]; do sleep 0.25; i=$((i + 1)); done
[ -e "$d/mariadbd.pid" ] && kill -9 "$(cat "$d/mariadbd.pid")" 2>/dev/null
rm -rf -- "$d"
"#;

/// A scratch server on a host.
pub struct Scratch {
    host: Host,
    dir: String,
}

impl Scratch {
    /// Makes its directory for backup `id` on `host`, where it will listen on `port`.
    pub async fn create(host: &Host, id: &str, port: u16) -> Result<Self, StepError> {
        let scratch = Self {
            host: host.clone(),
            dir: format!("/var/tmp/tend-verify-{id}"),
        };
        scratch
            .script("make a scratch directory", CREATE, &format!("port={port}\n"))
            .await?;
        Ok(scratch)
    }

    /// Where its data goes.
    pub fn datadir(&self) -> String {
        format!("{}/data", self.dir)
    }

    /// An empty server's data.
    pub async fn install(&self) -> Result<(), StepError> {
        self.script("make an empty scratch server", INSTALL, "").await
    }

    /// Starts it on `port`.
    pub async fn run(&self, port: u16) -> Result<(), StepError> {
        self.script("start a scratch server", RUN, &format!("port={port}\n"))
            .await
    }

    async fn script(&self, what: &str, body: &str, vars: &str) -> Result<(), StepError> {
        let script = format!("d={}\n{vars}{body}", quote(&self.dir));
        self.host
            .step("scratch server", what, script, Input::None, Duration::from_secs(300))
            .await
            .map(|_| ())
    }

    /// A client of it (root over its socket).
    pub fn db(&self) -> Db {
        Db::admin(
            &self.host,
            &Login {
                socket: Some(format!("{}/server.sock", self.dir)),
                ..Login::default()
            },
        )
    }

    /// Stops and removes it.
    pub async fn stop(self) {
        let script = format!("d={}\n{STOP}", quote(&self.dir));
        let _ = self
            .host
            .step(
                "scratch server",
                "remove the scratch server",
                script,
                Input::None,
                Duration::from_secs(120),
            )
            .await;
    }
}

/// System tables whose content a load changes by itself (statistics, replication and restore
/// state); other `mysql.*` tables are compared by rows only (a reload stamps routines and
/// events anew).
const UNCOMPARED: &[&str] = &[
    "mysql.innodb_index_stats",
    "mysql.innodb_table_stats",
    "mysql.gtid_slave_pos",
    "mysql.tend_restore",
];

/// What the checks of a restored backup found wrong (empty: nothing): `CHECK TABLE` of every
/// table, and with `compare` its rows and `CHECKSUM TABLE` against the catalog.
async fn check_tables(db: &Db, backup: &Backup, compare: bool) -> Result<Vec<String>, StepError> {
    let names: Vec<String> = backup.tables.iter().map(|t| t.name.clone()).collect();
    let mut problems = Vec::new();
    let mut s = Script::new();
    let mut marks = Vec::new();
    for name in &names {
        let Some((schema, table)) = name.split_once('.') else {
            continue;
        };
        let m = s.mark();
        s.sql(&format!("CHECK TABLE {}.{}", ident(schema), ident(table)));
        marks.push((name.clone(), m));
    }
    s.mark();
    let r = db.query("check tables", &s).await?;
    for (name, m) in marks {
        let set = r.set(m);
        for row in &set.rows {
            let kind = row.get(2).cloned().flatten().unwrap_or_default();
            let text = row.get(3).cloned().flatten().unwrap_or_default();
            if kind == "error" || (kind == "status" && text != "OK") {
                problems.push(format!("CHECK TABLE {name}: {text}"));
            }
        }
    }
    if !compare {
        return Ok(problems);
    }
    let now = super::take::tables(db, &names).await?;
    for (want, got) in backup.tables.iter().zip(&now) {
        // The server's own statistics, and tables a restore itself writes, differ by nature.
        if UNCOMPARED.contains(&want.name.as_str()) {
            continue;
        }
        if want.rows != got.rows {
            problems.push(format!(
                "{}: {} rows, the catalog says {}",
                want.name, got.rows, want.rows
            ));
        } else if want.checksum != got.checksum && !want.name.starts_with("mysql.") {
            problems.push(format!(
                "{}: CHECKSUM TABLE {}, the catalog says {}",
                want.name,
                got.checksum.as_deref().unwrap_or("NULL"),
                want.checksum.as_deref().unwrap_or("NULL")
            ));
        }
    }
    Ok(problems)
}

/// Verifies backup `backup` on `host`: returns the verification to record (its `ok` says
/// whether the backup is good); `Err` when the verification itself could not run.
pub async fn run(
    progress: &dyn Progress,
    (store, store_host): (&Store, Option<&Host>),
    host: &Host,
    (backup, backups, index): (&Backup, &[Backup], &Index),
    port: u16,
) -> Result<Verification, Abort> {
    let name = host.name().to_string();
    let started = crate::output::now_rfc3339();
    let t0 = Instant::now();
    let mut staged = Staged::new(&format!("verify-{}", backup.id));
    let physical = backup.kind == Kind::Physical;
    let environment = |what: &str, e: StepError| Failure::Environment(Abort::step(what, &e));
    if physical {
        super::physical::tools(host)
            .await
            .map_err(|e| Abort::step("cannot verify a physical backup here", &e))?;
    }
    let scratch = Scratch::create(host, &backup.id, port)
        .await
        .map_err(|e| Abort::step("cannot make a scratch server", &e))?;
    let db = scratch.db();
    let result = async {
        let prepared = restore::prepare(
            progress,
            (store, store_host),
            &db,
            (backups, Some(&backup.id)),
            (index, &mut staged),
            (&Wanted::End, None),
            &|_| Some(0),
        )
        .await?;
        let t = Instant::now();
        // The backup's file is checked against its SHA-256 as it is loaded or unpacked.
        if physical {
            super::physical::unpack(progress, (store, store_host), host, backup, &scratch.datadir()).await?;
        } else {
            scratch
                .install()
                .await
                .map_err(|e| environment("cannot make a scratch server", e))?;
        }
        // A server that does not start on a prepared backup is the backup's failure.
        scratch.run(port).await.map_err(|e| {
            if physical {
                Failure::Finding(Abort::step("the server does not start on the prepared backup", &e))
            } else {
                environment("cannot start a scratch server", e)
            }
        })?;
        progress.step(
            StepEvent::new(&name, "scratch", Status::Ok, format!("scratch server on port {port}")).took(t.elapsed()),
        );
        let run = format!("verify-{}", backup.id);
        let load = if physical { Load::InPlace } else { Load::Here };
        let start = restore::begin(progress, (store, store_host), &db, (&run, load), &prepared).await?;
        let load_seconds = t.elapsed().as_secs_f64();
        let problems = check_tables(&db, backup, backup.tables_at_consistent_point)
            .await
            .map_err(|e| Abort::step("cannot check the restored tables", &e))?;
        progress.step(StepEvent::new(
            &name,
            "check",
            if problems.is_empty() {
                Status::Ok
            } else {
                Status::Failed
            },
            if problems.is_empty() {
                format!(
                    "{} tables: CHECK TABLE ok{}",
                    backup.tables.len(),
                    if backup.tables_at_consistent_point {
                        ", rows and checksums as in the catalog"
                    } else {
                        " (rows not compared: counted near, not at, the consistent point)"
                    }
                )
            } else {
                problems.join("; ")
            },
        ));
        let t = Instant::now();
        let mut replay_problem = None;
        if let Some(start) = start
            && let Err(e) = restore::replay(progress, &db, &staged, &prepared, start).await
        {
            replay_problem = Some(e.error.message.clone());
        }
        Ok::<_, Failure>((
            prepared,
            problems,
            replay_problem,
            load_seconds,
            t.elapsed().as_secs_f64(),
        ))
    }
    .await;
    restore::clean(host, &staged).await;
    scratch.stop().await;
    // Whatever went wrong with the backup itself is the verification's finding.
    let v = match result {
        Ok((prepared, mut problems, replay_problem, load, replay)) => {
            problems.extend(replay_problem);
            Verification {
                at: started,
                host: name,
                ok: problems.is_empty(),
                problems,
                restore_seconds: secs(load + replay),
                load_seconds: secs(load),
                replay_seconds: secs(replay),
                gtid: prepared.plan.end.to_string(),
                transactions: prepared.plan.apply.len() as u64,
                seconds: secs(t0.elapsed().as_secs_f64()),
            }
        }
        // The backup is fine as far as anyone knows: the verification could not run.
        Err(Failure::Environment(abort)) => return Err(abort),
        Err(Failure::Finding(abort)) if abort.code != Code::HostFailed => return Err(abort),
        Err(Failure::Finding(abort)) => Verification {
            at: started,
            host: name,
            ok: false,
            problems: vec![abort.error.message.clone()],
            restore_seconds: 0.0,
            load_seconds: 0.0,
            replay_seconds: 0.0,
            gtid: String::new(),
            transactions: 0,
            seconds: secs(t0.elapsed().as_secs_f64()),
        },
    };
    Ok(v)
}

/// Why a verification stopped: something about the backup (recorded), or about where it ran.
enum Failure {
    Finding(Abort),
    Environment(Abort),
}

impl From<Abort> for Failure {
    fn from(a: Abort) -> Self {
        Self::Finding(a)
    }
}

fn secs(s: f64) -> f64 {
    (s * 10.0).round() / 10.0
}

/// A verification that found the backup bad is the command's failure (exit 2).
pub fn outcome(v: &Verification) -> Result<(), Abort> {
    if v.ok {
        return Ok(());
    }
    Err(Abort::new(
        Code::HostFailed,
        format!("the backup did not verify: {}", v.problems.join("; ")),
    ))
}
