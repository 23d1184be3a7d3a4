//! The switchover runbook: each step a session on one server or the balancer, each reported
//! and timed (the drill's timeline), each safe to run again. Until the proxy is repointed a
//! failure undoes what was done (the old primary writable again, the candidate a replica
//! again: nothing lost, nothing changed for the applications); from the repoint on, the
//! applications write to the new primary and a failure says where it stopped and that the
//! same command finishes it.

use super::topology::{self, Topology};
use super::{Member, Settings, WRITE_ROLE};
use crate::backup::take::CatchUp;
use crate::exit::Code;
use crate::migrate::db::{Db, Script, text};
use crate::modules::mysql::{Login, literal};
use crate::ops::{Abort, Session, proxy};
use crate::output::{Status, StepEvent};
use crate::transport::{Host, Input, StepError, shell::quote};
use serde::Serialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One step of a switchover on the drill's clock.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// The step.
    pub name: String,
    /// Where it ran.
    pub host: String,
    /// Start, milliseconds from the origin.
    pub start_ms: u64,
    /// End, milliseconds from the origin.
    pub end_ms: u64,
}

/// What a switchover works with.
pub struct Cx<'a> {
    /// The operation.
    pub s: &'a Session<'a>,
    /// The cluster's settings.
    pub settings: &'a Settings,
    /// The balancer: its inventory name and its address as the servers see its sessions.
    pub lb: (&'a str, &'a str),
    /// Where the applications' path is checked from (an app host); `None`: not checked.
    pub client: Option<&'a str>,
    /// The clock's zero (the drill's start).
    pub origin: Instant,
    /// The steps done so far.
    pub phases: Mutex<Vec<Phase>>,
}

/// What a switchover did.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    /// The old primary.
    pub from: String,
    /// The new primary.
    pub to: String,
    /// The GTID position the new primary took over at.
    pub gtid: String,
    /// Sessions ended on the old primary.
    pub sessions_ended: u64,
}

impl<'a> Cx<'a> {
    fn db(&self, m: &Member) -> Result<Db, Abort> {
        let host = self.host(&m.name)?;
        Ok(Db::admin(host, &self.settings.login))
    }

    fn host(&self, name: &str) -> Result<&'a Host, Abort> {
        self.s
            .host(name)
            .ok_or_else(|| Abort::new(Code::Unreachable, format!("{name} cannot be reached")))
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// Reports a step that started at `t0` and records it as a phase.
    fn done(&self, host: &str, name: &str, t0: Instant, message: impl Into<String>) {
        if let Ok(mut p) = self.phases.lock() {
            p.push(Phase {
                name: name.into(),
                host: host.into(),
                start_ms: self.ms(t0),
                end_ms: self.ms(Instant::now()),
            });
        }
        self.s
            .step(StepEvent::new(host, name, Status::Changed, message).took(t0.elapsed()));
    }

    /// The recorded phases.
    pub fn timeline(&self) -> Vec<Phase> {
        self.phases.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

async fn sql(db: &Db, step: &str, statements: &[String]) -> Result<(), StepError> {
    let mut q = Script::new();
    for st in statements {
        q.sql(st);
    }
    db.query(step, &q).await.map(|_| ())
}

/// Writes the role file on a member's host.
async fn persist_role(cx: &Cx<'_>, m: &Member, read_only: bool, why: &str) -> Result<(), StepError> {
    let host = cx.host(&m.name).map_err(|_| unreachable_step(&m.name, "role file"))?;
    host.step(
        "role file",
        "write the role file",
        format!(
            "ro={} why={}\n{WRITE_ROLE}",
            if read_only { "ON" } else { "OFF" },
            quote(why)
        ),
        Input::None,
        Duration::from_secs(30),
    )
    .await
    .map(|_| ())
}

/// Switches the primary from the topology's primary to member `to`, waiting up to
/// `max_wait` for it to catch up.
pub async fn switchover(cx: &Cx<'_>, topo: &Topology, to: usize, max_wait: Duration) -> Result<Done, Abort> {
    let Some((old, _)) = topo.primary() else {
        return Err(Abort::new(
            Code::HostFailed,
            "the cluster has no primary to switch from",
        ));
    };
    let old = old.clone();
    let new = topo.members[to].member.clone();
    if old.name == new.name {
        // Switched already (a run that stopped after the repoint): finish it.
        return finish(cx, topo, &new, None, String::new(), 0).await;
    }
    let (old_db, new_db) = (cx.db(&old)?, cx.db(&new)?);
    let lb = cx.host(cx.lb.0)?;
    // 1. The old primary refuses writes; the applications' open sessions end.
    let t0 = Instant::now();
    // Setting read_only waits for running commits (and blocks new ones meanwhile): not long.
    if let Err(e) = sql(
        &old_db,
        "demote",
        &[
            "SET SESSION lock_wait_timeout = 10".into(),
            "SET GLOBAL read_only = ON".into(),
        ],
    )
    .await
    {
        undo(cx, &old, None).await;
        return Err(Abort::step(
            &format!("cannot make the primary read-only; {} takes writes again", old.name),
            &e,
        ));
    }
    let ended = proxy::kill_sessions_from(&old_db, cx.lb.1).await.unwrap_or(0);
    let gtid = match old_db.one("demote", "SELECT @@gtid_binlog_pos AS g").await {
        Ok(r) => r.first("g").unwrap_or_default().to_string(),
        Err(e) => {
            undo(cx, &old, None).await;
            return Err(Abort::step("cannot read the primary's GTID position", &e));
        }
    };
    cx.done(
        &old.name,
        "demote",
        t0,
        format!("read_only; {ended} application session(s) ended; binlog at GTID {gtid}"),
    );
    // 2. The candidate executes everything the old primary wrote.
    let t0 = Instant::now();
    let waited = new_db
        .one(
            "catch up",
            &format!(
                "SELECT MASTER_GTID_WAIT({}, {}) AS w",
                text(&gtid),
                max_wait.as_secs_f64()
            ),
        )
        .await;
    match waited.as_ref().map(|r| r.first("w").unwrap_or_default().to_string()) {
        Ok(w) if w == "0" => cx.done(&new.name, "catch up", t0, format!("executed GTID {gtid}")),
        Ok(_) => {
            undo(cx, &old, None).await;
            return Err(Abort::new(
                Code::HostFailed,
                format!(
                    "{} did not execute GTID {gtid} within {} s; {} is the primary again, nothing was changed",
                    new.name,
                    max_wait.as_secs(),
                    old.name
                ),
            )
            .hint("see `tend failover status`; a longer --max-wait lets a lagging replica catch up"));
        }
        Err(e) => {
            undo(cx, &old, None).await;
            return Err(Abort::step("the candidate did not catch up; nothing was changed", e));
        }
    }
    // 3. The candidate stops applying and accepts writes (its replication settings kept
    //    until the repoint, for the undo); 4. the applications' path: the proxy to it.
    match promote_and_repoint(cx, lb, &new, &new_db).await {
        Ok(()) => {}
        Err(Failed::Promote(e)) => {
            undo(cx, &old, Some(&new)).await;
            return Err(Abort::step("cannot promote the candidate; nothing was changed", &e));
        }
        Err(Failed::Repoint(e)) => {
            // The proxy may have moved before the failure (a connection lost after the
            // reload): then the applications write to the new primary, and it is finished,
            // not undone.
            let now = proxy::read_upstream(lb, &cx.settings.upstream)
                .await
                .ok()
                .and_then(|t| proxy::upstream_server(&t).ok());
            match now {
                Some((host, _)) if host == old.address => {
                    undo(cx, &old, Some(&new)).await;
                    return Err(Abort::step(
                        &format!(
                            "the proxy was not repointed; {} is the primary again, nothing was lost",
                            old.name
                        ),
                        &e,
                    ));
                }
                Some((host, _)) if host == new.address => cx.s.failed(&e),
                _ => {
                    return Err(Abort::step(
                        &format!(
                            "the proxy could not be read after a failed repoint: {} is read_only, {} is promoted; see `tend failover status`, then run the switchover again",
                            old.name, new.name
                        ),
                        &e,
                    ));
                }
            }
        }
    }
    // Sessions that reached the old primary through the old workers meanwhile.
    let late = proxy::kill_sessions_from(&old_db, cx.lb.1).await.unwrap_or(0);
    finish(cx, topo, &new, Some(&old), gtid, ended + late).await
}

/// Promotes member `to` after the primary `old` died: the old primary fenced (read_only now
/// if its server still answers, and for its next start; the proxy is moved away from it in
/// any case), the candidate's relay log applied, the candidate promoted, the proxy repointed,
/// the others made its replicas. Nothing is undone: the old primary is gone.
pub async fn promote(
    cx: &Cx<'_>,
    topo: &Topology,
    (old, to): (usize, usize),
    max_wait: Duration,
) -> Result<Done, Abort> {
    let old = topo.members[old].member.clone();
    let new = topo.members[to].member.clone();
    let new_db = cx.db(&new)?;
    let lb = cx.host(cx.lb.0)?;
    // 1. Fence: the old primary must never take writes again by itself.
    let t0 = Instant::now();
    let mut fenced = Vec::new();
    if cx.s.host(&old.name).is_some() {
        match persist_role(cx, &old, true, &format!("fenced: replaced by {}", new.name)).await {
            Ok(()) => fenced.push("read_only at its next start"),
            Err(e) => cx.s.events().warn(format!(
                "{}: the role file was not written ({}): it may start writable; `tend failover rejoin {}` fences it",
                old.name,
                e.message(),
                old.name
            )),
        }
        if let Ok(db) = cx.db(&old)
            && sql(&db, "fence", &["SET GLOBAL read_only = ON".into()]).await.is_ok()
        {
            fenced.push("read_only now");
        }
    }
    fenced.push("the proxy moves away from it");
    cx.done(&old.name, "fence", t0, fenced.join("; "));
    // 2. The candidate applies what it received.
    let t0 = Instant::now();
    let target = topo.members[to]
        .state
        .as_ref()
        .map(|s| s.reachable())
        .unwrap_or_default();
    if !target.is_empty() {
        let waited = new_db
            .one(
                "catch up",
                &format!(
                    "SELECT MASTER_GTID_WAIT({}, {}) AS w",
                    text(&target),
                    max_wait.as_secs_f64()
                ),
            )
            .await
            .map_err(|e| Abort::step("the candidate did not apply its relay log", &e))?;
        if waited.first("w") != Some("0") {
            return Err(Abort::new(
                Code::HostFailed,
                format!(
                    "{} did not apply its relay log up to {target} within {} s; it is not promoted",
                    new.name,
                    max_wait.as_secs()
                ),
            )
            .hint("a longer --max-wait lets it finish; the old primary stays fenced"));
        }
    }
    cx.done(
        &new.name,
        "catch up",
        t0,
        format!("applied its relay log up to {target}"),
    );
    // 3. Promote, 4. repoint: as a switchover does, without the undo.
    match promote_and_repoint(cx, lb, &new, &new_db).await {
        Ok(()) => {}
        Err(Failed::Promote(e)) => return Err(Abort::step("cannot promote the candidate", &e)),
        Err(Failed::Repoint(e)) => {
            return Err(Abort::step(
                &format!(
                    "{} is promoted but the proxy was not repointed: the applications cannot write; fix the proxy and run `tend failover switchover --to {}`",
                    new.name, new.name
                ),
                &e,
            ));
        }
    }
    finish(cx, topo, &new, Some(&old), String::new(), 0).await
}

/// Kills a server as a lost host would end it: SIGKILL of `mariadbd` and of whatever would
/// start it again (`mysqld_safe`; systemd's restart is switched off for that stop only).
const KILL: &str = r#"set -u
pgrep -x mariadbd >/dev/null 2>&1 || pgrep -x mysqld >/dev/null 2>&1 || { echo "no mariadbd runs on $(hostname)" >&2; exit 1; }
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mariadb; then
  d=/run/systemd/system/mariadb.service.d
  mkdir -p "$d" && printf '[Service]\nRestart=no\n' > "$d/tend-drill.conf" && systemctl daemon-reload
  systemctl kill --signal=SIGKILL mariadb
  trap 'rm -f "$d/tend-drill.conf"; systemctl daemon-reload' EXIT
else
  pkill -KILL -x mysqld_safe 2>/dev/null
  pkill -KILL -x mariadbd 2>/dev/null || pkill -KILL -x mysqld 2>/dev/null
fi
i=0
while pgrep -x mariadbd >/dev/null 2>&1 || pgrep -x mysqld >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "the server still runs 10 s after SIGKILL" >&2; exit 1; }
  sleep 0.1
done
"#;

/// Kills the server of `m` (a drill).
pub async fn kill(cx: &Cx<'_>, m: &Member) -> Result<(), Abort> {
    let t0 = Instant::now();
    let host = cx.host(&m.name)?;
    host.step(
        "kill",
        "kill the server",
        KILL.to_string(),
        Input::None,
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| Abort::step("the primary's server could not be killed; the drill stops here", &e))?;
    cx.done(&m.name, "kill", t0, "mariadbd and its supervisor killed (SIGKILL)");
    Ok(())
}

/// What `rejoin` found.
#[derive(Debug, Clone, Serialize)]
pub struct Rejoined {
    /// The server rejoined (or not).
    pub host: String,
    /// Its errant transactions (absent on the primary).
    pub errant: u64,
    /// They were discarded (its binlog reset) on the operator's word.
    pub discarded: bool,
    /// It replicates from the primary now.
    pub replicating: bool,
}

/// Writes out as SQL (decoded row events, for review) the transactions of the server's
/// binlogs after `$from` up to `$to` (GTID positions).
const ERRANT_SQL: &str = r#"set -u
bin=$(command -v mariadb-binlog || command -v mysqlbinlog) || { echo "no mariadb-binlog on the host" >&2; exit 127; }
base=$("$client" --defaults-extra-file="$cnf" -N -B -e 'SELECT @@log_bin_basename') || exit 1
[ -f "$base.index" ] || { echo "no binlog index $base.index" >&2; exit 1; }
cd "$(dirname "$base")" || exit 1
"$bin" --base64-output=decode-rows --verbose --start-position="$from" --stop-position="$to" $(cat "$base.index")
"#;

/// Where errant transactions written out as SQL are kept (an error: they are not safe).
pub type Keep<'a> = dyn FnMut(&str) -> Result<(), String> + Send + 'a;

/// Makes `m` (an old primary, or any member out of the cluster) a replica of the primary.
/// Errant transactions are written out as SQL and handed to `keep` (which must have them
/// safe before anything is discarded); then it is refused unless `discard`: its binlog reset
/// and its replication started at the last GTID both share, so that it receives everything
/// the primary wrote since (the rows its own transactions wrote stay in its tables, which no
/// longer match the primary's: rebuild it for an exact copy).
pub async fn rejoin(
    cx: &Cx<'_>,
    topo: &Topology,
    m: usize,
    (discard, keep): (bool, &mut Keep<'_>),
) -> Result<Rejoined, Abort> {
    let Some((pm, ps)) = topo.primary() else {
        return Err(Abort::new(Code::HostFailed, "the cluster has no primary to rejoin"));
    };
    let (pm, ps) = (pm.clone(), ps.clone());
    let member = topo.members[m].member.clone();
    let srv = topo.members[m]
        .state
        .as_ref()
        .map_err(|e| Abort::new(Code::HostFailed, format!("{} cannot be read: {e}", member.name)))?
        .clone();
    let mut out = Rejoined {
        host: member.name.clone(),
        errant: 0,
        discarded: false,
        replicating: false,
    };
    if let Some(r) = &srv.replication
        && (r.source == pm.address || r.source == pm.name)
        && r.io
        && r.sql
    {
        out.replicating = true;
        return Ok(out);
    }
    let ranges = topology::errant_ranges(&ps.binlog_state, &srv.binlog_state);
    out.errant = ranges.iter().map(|r| r.count).sum();
    if out.errant == 0 {
        replicate_from(cx, &member, &pm, true, "")
            .await
            .map_err(|e| Abort::step("it does not replicate", &e))?;
        out.replicating = true;
        return Ok(out);
    }
    let t0 = Instant::now();
    let db = cx.db(&member)?;
    let from: Vec<&str> = ranges.iter().map(|r| r.from.as_str()).collect();
    let to: Vec<&str> = ranges.iter().map(|r| r.to.as_str()).collect();
    let (command, login) = db.shell(
        &format!(
            "from={} to={}\n{ERRANT_SQL}",
            quote(&from.join(",")),
            quote(&to.join(","))
        ),
        Some(Duration::from_secs(300)),
    );
    let got = db
        .host
        .run(&command, Input::Bytes(login.as_bytes()))
        .await
        .map_err(|e| {
            Abort::step(
                "cannot read its binlogs",
                &StepError::transport(&member.name, "errant", e),
            )
        })?;
    if !got.success() {
        return Err(Abort::step(
            "cannot write out its errant transactions",
            &StepError::remote(
                &member.name,
                "errant",
                crate::transport::Failure::from_output(
                    crate::transport::last_error_line(&got, "mariadb-binlog failed"),
                    "mariadb-binlog",
                    &got,
                ),
            ),
        ));
    }
    keep(&String::from_utf8_lossy(&got.stdout)).map_err(|e| {
        Abort::new(
            Code::HostFailed,
            format!("its errant transactions could not be kept ({e}); nothing was changed"),
        )
    })?;
    cx.done(
        &member.name,
        "errant",
        t0,
        format!(
            "{} transaction(s) {} does not have, written out as SQL",
            out.errant, pm.name
        ),
    );
    if !discard {
        return Ok(out);
    }
    // Where it replicates from: the last GTID both have in each domain it diverged in, its
    // own last in the others.
    if let Some(r) = ranges.iter().find(|r| !r.common) {
        return Err(Abort::new(
            Code::HostFailed,
            format!(
                "{} has no GTID of {}'s pair before {}: the point both share is unknown; nothing was discarded",
                pm.name, member.name, r.to
            ),
        )
        .hint(format!("rebuild it: `tend replica rebuild {}`", member.name)));
    }
    let mut start = crate::backup::replay::Position::parse(&srv.binlog).unwrap_or_default();
    for r in &ranges {
        if let Some(g) = crate::backup::replay::Gtid::parse(&r.from) {
            start.add(g);
        }
    }
    let t0 = Instant::now();
    sql(
        &db,
        "discard",
        &[
            "STOP SLAVE".into(),
            "RESET MASTER".into(),
            format!("SET GLOBAL gtid_slave_pos = {}", text(&start.to_string())),
        ],
    )
    .await
    .map_err(|e| Abort::step("cannot reset its binlog", &e))?;
    out.discarded = true;
    cx.done(
        &member.name,
        "discard",
        t0,
        format!("binlog reset; replicates from {start}; its tables keep what those transactions wrote"),
    );
    replicate_from(cx, &member, &pm, false, "")
        .await
        .map_err(|e| Abort::step("it does not replicate", &e))?;
    out.replicating = true;
    Ok(out)
}

/// Which of the two steps failed.
enum Failed {
    Promote(StepError),
    Repoint(StepError),
}

/// The candidate stops applying and takes writes; the proxy sends the applications to it.
async fn promote_and_repoint(cx: &Cx<'_>, lb: &Host, new: &Member, new_db: &Db) -> Result<(), Failed> {
    let t0 = Instant::now();
    sql(
        new_db,
        "promote",
        &["STOP SLAVE".into(), "SET GLOBAL read_only = OFF".into()],
    )
    .await
    .map_err(Failed::Promote)?;
    cx.done(&new.name, "promote", t0, "replication stopped; read_only off");
    repoint(cx, lb, new).await.map_err(Failed::Repoint)?;
    Ok(())
}

/// Points the proxy at `new`, reported as a step when it changed anything.
async fn repoint(cx: &Cx<'_>, lb: &Host, new: &Member) -> Result<(), StepError> {
    let t0 = Instant::now();
    if proxy::repoint(lb, &cx.settings.upstream, &new.address).await? {
        cx.done(
            cx.lb.0,
            "repoint",
            t0,
            format!("database proxy → {}:{}", new.address, new.port),
        );
    }
    Ok(())
}

/// Puts things back after a failure before the repoint: the candidate a replica again, the
/// old primary writable. Failures here are reported, not raised: the caller's error stands.
async fn undo(cx: &Cx<'_>, old: &Member, new: Option<&Member>) {
    let t0 = Instant::now();
    if let Some(new) = new {
        let back = match cx.db(new) {
            Ok(db) => sql(&db, "undo", &["SET GLOBAL read_only = ON".into(), "START SLAVE".into()])
                .await
                .map_err(|e| cx.s.failed(&e)),
            Err(_) => Err(()),
        };
        if back.is_err() {
            // Never two writable servers: the old primary stays read_only.
            cx.s.events().warn(format!(
                "{} could not be made a replica again and may take writes: {} stays read_only; on {}: SET GLOBAL read_only = ON, then run the switchover again",
                new.name, old.name, new.name
            ));
            return;
        }
    }
    match cx.db(old) {
        Ok(db) => match sql(&db, "undo", &["SET GLOBAL read_only = OFF".into()]).await {
            Ok(()) => cx.done(&old.name, "undo", t0, "the primary accepts writes again"),
            Err(e) => {
                cx.s.failed(&e);
                cx.s.events().warn(format!(
                    "{} is still read_only: on it, SET GLOBAL read_only = OFF",
                    old.name
                ));
            }
        },
        Err(_) => {
            cx.s.events()
                .warn(format!("{} cannot be reached to make it writable again", old.name))
        }
    }
}

/// The part after the repoint: the new primary's replication settings dropped, the roles
/// written for the next start, the other members replicating from it, and a write through
/// the applications' path checked. Each part is skipped when it is done already. `old` is
/// given by a run that switched from it and repointed the proxy itself; a run that finishes
/// an earlier one (no `old`) makes sure of the proxy first.
async fn finish(
    cx: &Cx<'_>,
    topo: &Topology,
    new: &Member,
    old: Option<&Member>,
    gtid: String,
    ended: u64,
) -> Result<Done, Abort> {
    let stopped = |what: &str| {
        format!(
            "the applications write to {} now; {what}: run `tend failover switchover --to {}` again to finish",
            new.name, new.name
        )
    };
    let new_db = cx.db(new)?;
    // The proxy to it (a run that stopped before the repoint finishes here).
    if old.is_none()
        && let Err(e) = repoint(cx, cx.host(cx.lb.0)?, new).await
    {
        return Err(Abort::step(
            &format!(
                "{} takes writes but the proxy does not send the applications to it; fix the proxy and run `tend failover switchover --to {}` again",
                new.name, new.name
            ),
            &e,
        ));
    }
    let t0 = Instant::now();
    sql(
        &new_db,
        "commit",
        &[
            "STOP SLAVE".into(),
            "RESET SLAVE ALL".into(),
            "SET GLOBAL read_only = OFF".into(),
        ],
    )
    .await
    .map_err(|e| Abort::step(&stopped("its replication settings are still there"), &e))?;
    persist_role(cx, new, false, "primary")
        .await
        .map_err(|e| Abort::step(&stopped("its role file was not written"), &e))?;
    cx.done(
        &new.name,
        "commit",
        t0,
        "replication settings dropped; read_only off for good",
    );
    let server = topology::read(&new_db)
        .await
        .map_err(|e| Abort::step(&stopped("cannot read it"), &e))?;
    let gtid = if gtid.is_empty() { server.binlog.clone() } else { gtid };
    // Every other reachable member replicates from the new primary.
    for seen in &topo.members {
        let m = &seen.member;
        if m.name == new.name {
            continue;
        }
        // As it is now, not as it was before the switch.
        let state = match cx.db(m) {
            Ok(db) => topology::read(&db).await.map_err(|e| e.message()),
            Err(_) => Err("unreachable".to_string()),
        };
        let Ok(state) = &state else {
            cx.s.events().warn(format!(
                "{} could not be read: it does not replicate from {} (`tend failover rejoin {}` once it is back)",
                m.name, new.name, m.name
            ));
            continue;
        };
        let was_primary = old.is_some_and(|o| o.name == m.name) || !state.replicating();
        if let Some(r) = &state.replication
            && (r.source == new.address || r.source == new.name)
            && state.replicating()
        {
            // Replicating already (a run that stopped part-way): its role made sure of.
            let db = cx.db(m)?;
            let fixed = async {
                if !state.read_only {
                    sql(&db, "replicate", &["SET GLOBAL read_only = ON".into()]).await?;
                }
                persist_role(cx, m, true, &format!("replica of {}", new.name)).await
            };
            fixed
                .await
                .map_err(|e| Abort::step(&stopped(&format!("{}'s role is not set", m.name)), &e))?;
            continue;
        }
        let n = topology::errant_count(&server.binlog_state, &state.binlog_state);
        if n > 0 {
            cx.s.events().warn(format!(
                "{} holds {n} transaction(s) {} does not have: it is left out (`tend failover rejoin {}`)",
                m.name, new.name, m.name
            ));
            continue;
        }
        replicate_from(cx, m, new, was_primary, &gtid)
            .await
            .map_err(|e| Abort::step(&stopped(&format!("{} does not replicate from it", m.name)), &e))?;
    }
    // A write through the applications' path lands on the new primary.
    if let Some(client) = cx.client
        && cx.s.host(client).is_none()
    {
        cx.s.events().warn(format!(
            "{client} cannot be reached: the write through the proxy is not checked"
        ));
    } else if let Some(client) = cx.client {
        ensure_probe_table(&new_db, cx.settings)
            .await
            .map_err(|e| Abort::step(&stopped("the check's table cannot be made"), &e))?;
        let t0 = Instant::now();
        let id = app_write(cx, client, "check")
            .await
            .map_err(|e| Abort::step(&stopped("a write through the proxy failed"), &e))?;
        if id != server.server_id {
            return Err(Abort::new(
                Code::HostFailed,
                stopped(&format!(
                    "a write through the proxy landed on server_id {id}, not on {} (server_id {})",
                    new.name, server.server_id
                )),
            ));
        }
        cx.done(
            client,
            "check",
            t0,
            format!("a write through the proxy landed on {}", new.name),
        );
    }
    Ok(Done {
        from: old.map_or_else(String::new, |o| o.name.clone()),
        to: new.name.clone(),
        gtid,
        sessions_ended: ended,
    })
}

/// Makes `m` replicate from `new`. A former primary starts from its own binlog position (what
/// it wrote is what the new primary took over); a replica keeps its own position, once it
/// has executed `gtid`.
async fn replicate_from(cx: &Cx<'_>, m: &Member, new: &Member, was_primary: bool, gtid: &str) -> Result<(), StepError> {
    let t0 = Instant::now();
    let db = cx.db(m).map_err(|_| unreachable_step(&m.name, "replicate"))?;
    let (user, password) = &cx.settings.repl;
    let mut statements = Vec::new();
    if !was_primary && !gtid.is_empty() {
        statements.push(format!("DO MASTER_GTID_WAIT({}, 60)", text(gtid)));
    }
    // CHANGE MASTER takes plain literals only (no introducer, no hex): with backslash escapes
    // on in this session, `literal` quotes any value.
    statements.push("SET SESSION sql_mode = 'STRICT_TRANS_TABLES'".into());
    statements.push("STOP SLAVE".into());
    if was_primary {
        statements.push("SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos".into());
    }
    statements.push("SET GLOBAL read_only = ON".into());
    statements.push(format!(
        "CHANGE MASTER TO MASTER_HOST = {}, MASTER_PORT = {}, MASTER_USER = {}, MASTER_PASSWORD = {}, MASTER_USE_GTID = slave_pos",
        literal(&new.address),
        new.port,
        literal(user),
        literal(password)
    ));
    statements.push("START SLAVE".into());
    sql(&db, "replicate", &statements).await?;
    persist_role(cx, m, true, &format!("replica of {}", new.name)).await?;
    match crate::backup::take::wait_caught_up(&db).await? {
        CatchUp::Stopped(error) => {
            return Err(StepError::remote(
                &m.name,
                "replicate",
                crate::transport::Failure::message(
                    format!("replication from {} stopped: {error}", new.name),
                    "SHOW SLAVE STATUS",
                ),
            ));
        }
        CatchUp::Done => {
            cx.done(
                &m.name,
                "replicate",
                t0,
                format!("replicates from {}, caught up", new.name),
            );
            return Ok(());
        }
        CatchUp::Behind => {}
    }
    cx.s.events().warn(format!(
        "{} replicates from {} but has not caught up within 30 s: see `tend failover status`",
        m.name, new.name
    ));
    Ok(())
}

fn unreachable_step(host: &str, step: &str) -> StepError {
    StepError::remote(
        host,
        step,
        crate::transport::Failure::message(format!("{host} cannot be reached"), step),
    )
}

/// The probe's table in the applications' schema: one row per write, with the server that
/// took it.
pub fn probe_table(settings: &Settings) -> String {
    format!("{}.`tend_probe`", crate::modules::mysql::ident(&settings.app.0))
}

/// Creates the probe's table on the primary (it replicates to the others).
pub async fn ensure_probe_table(db: &Db, settings: &Settings) -> Result<(), StepError> {
    sql(
        db,
        "probe table",
        &[format!(
            "CREATE TABLE IF NOT EXISTS {} (run VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, sent DATETIME(6) NOT NULL, server_id INT UNSIGNED NOT NULL, PRIMARY KEY (run, seq)) ENGINE=InnoDB",
            probe_table(settings)
        )],
    )
    .await
}

/// The applications' login through the proxy (from an app host).
pub fn app_login(cx_settings: &Settings, lb_address: &str) -> Login {
    Login {
        user: Some(cx_settings.app.1.clone()),
        password: Some(cx_settings.app.2.clone()).filter(|p| !p.is_empty()),
        host: Some(lb_address.to_string()),
        port: Some(i64::from(cx_settings.proxy_port)),
        socket: None,
    }
}

/// One write through the proxy as the applications write, from host `client`: the
/// `server_id` that took it.
async fn app_write(cx: &Cx<'_>, client: &str, run: &str) -> Result<u64, StepError> {
    let host = cx.host(client).map_err(|_| unreachable_step(client, "check"))?;
    let db = Db {
        host: host.clone(),
        login: app_login(cx.settings, cx.lb.1),
        database: cx.settings.app.0.clone(),
    };
    let mut q = Script::new();
    q.sql(&format!(
        "INSERT INTO {} (run, seq, sent, server_id) VALUES ({}, UNIX_TIMESTAMP(NOW(6)) * 1000000, NOW(6), @@server_id)",
        probe_table(cx.settings),
        text(run)
    ));
    let m = q.mark();
    q.sql("SELECT @@server_id AS id");
    q.mark();
    let r = db.query("check", &q).await?;
    Ok(r.set(m).first("id").and_then(|x| x.parse().ok()).unwrap_or(0))
}
