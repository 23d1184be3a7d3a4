//! `tend failover`: the cluster's topology, switchovers and drills, on the operations core.

use super::CliError;
use super::backup::Common;
use super::common::block_on;
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::failover::probe::{self, Probe};
use crate::failover::switch::{self, Cx};
use crate::failover::topology::{self, Seen, Topology};
use crate::failover::{self, Member, Settings};
use crate::migrate::db::Db;
use crate::ops::{self, Abort, LockRequest, Outcome, Request, Session};
use crate::output::{Events, Layout, Status};
use crate::transport::Target;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::time::{Duration, Instant};

/// Failover of the MariaDB cluster: status, switchover, drills
///
/// The cluster's members are the hosts of `--cluster` (default `db`); which one is the
/// primary now is read from the servers (replication, read_only) and the balancer's database
/// proxy, never from the inventory's `db_primary`/`db_replica` groups: every command keeps
/// working after a switchover without editing the inventory.
///
/// Examples:
///   tend failover status
///   tend failover switchover --to h9
///   tend failover drill --kind switchover --format json
#[derive(Debug, Subcommand)]
#[command(verbatim_doc_comment)]
pub enum FailoverCommand {
    Status(StatusArgs),
    Switchover(SwitchoverArgs),
    Drill(DrillArgs),
}

/// What every failover command takes.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub common: Common,
    /// The inventory group whose hosts are the cluster's members
    #[arg(long, default_value = "db", value_name = "GROUP")]
    pub cluster: String,
}

/// Show the cluster: primary, replicas, positions, lag, and who is ready to take over
///
/// Per member: server_id, read_only, GTID positions, replication threads, lag in seconds and
/// transactions, relay log received but not applied, semi-synchronous replication (on, or
/// fallen back to asynchronous), long transactions and metadata-lock waits; which server the
/// balancer's database proxy sends the applications to; and a verdict per candidate
/// (`ready`, or why not). Exits 2 when the cluster has a problem (no primary, two writable
/// servers, the proxy pointing elsewhere).
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Planned switchover: make a replica the primary, losing nothing
///
/// Checks the candidate (a replica of the primary, both threads running, no errant
/// transaction), takes the `failover` lock (on the balancer), makes the primary read_only and
/// ends the applications' sessions on it, waits until the candidate has executed the
/// primary's whole GTID set (--max-wait), promotes it, repoints the balancer's database proxy
/// (`nginx -t`, reload), makes the old primary and the other replicas replicate from it, and
/// checks that a write through the proxy lands on it. A failure before the repoint undoes
/// what was done (the old primary writable again); after it, the same command finishes the
/// switchover. The roles are kept for the servers' next start (`90-tend-role.cnf`).
#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The replica to promote [default: the first ready one]
    #[arg(long, value_name = "REPLICA")]
    pub to: Option<String>,
    /// How long to wait for the candidate to execute the primary's transactions
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub max_wait: u64,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// The kind of drill.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DrillKind {
    /// A planned switchover, both servers alive.
    Switchover,
}

/// Rehearse a failover and measure what the applications saw (RTO, RPO)
///
/// Starts a write probe on an app host (the first host of `app`, else the balancer): a
/// sequence number written through the balancer's database proxy with the applications'
/// login (`shop_db_user`, `shop_db_password`, schema `shop_db_name`, table `tend_probe`),
/// --probe-rate times a second, each acknowledgement streamed back; performs the switchover;
/// keeps probing until writes have succeeded for --steady seconds; then reports the timeline
/// of every step and
///   RTO: from the last acknowledged write before the outage to the first acknowledged write
///        after it, as the client saw it (its resolution is the probe's interval);
///   RPO: the acknowledged sequence numbers the new primary does not have (expected none).
/// The JSON record carries `rto_ms` and `rpo_missing`.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DrillArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// What the drill does
    #[arg(long, value_enum, default_value = "switchover")]
    pub kind: DrillKind,
    /// The replica to promote [default: the first ready one]
    #[arg(long, value_name = "REPLICA")]
    pub to: Option<String>,
    /// Probe writes a second
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=200))]
    pub probe_rate: u32,
    /// Seconds of uninterrupted writes that end the drill
    #[arg(long, default_value_t = 3, value_name = "SECONDS")]
    pub steady: u64,
    /// How long to wait for the candidate to execute the primary's transactions
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub max_wait: u64,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// The cluster resolved before connecting.
struct Cluster {
    members: Vec<(Member, Target)>,
    lb: Option<(Target, String)>,
    client: Option<Target>,
    settings: Settings,
}

fn resolve(a: &ClusterArgs) -> Result<Cluster, CliError> {
    let (inv, vars) = a.common.inventory.load()?;
    let group_hosts = |g: &str| -> Option<Vec<usize>> { inv.group_index(g).map(|i| inv.hosts_of_group(i)) };
    let hosts = match group_hosts(&a.cluster) {
        Some(h) => h,
        None if a.cluster == "db" => {
            let mut h = group_hosts("db_primary").unwrap_or_default();
            h.extend(group_hosts("db_replica").unwrap_or_default());
            h
        }
        None => {
            let names: Vec<&str> = inv.groups.iter().map(|g| g.name.as_str()).collect();
            let mut d = Diagnostic::plain(format!("the inventory has no group `{}`", a.cluster));
            if let Some(m) = crate::diagnostic::did_you_mean(&a.cluster, names.iter().copied()) {
                d = d.with_hint(format!("did you mean `--cluster {m}`?"));
            }
            return Err(d.into());
        }
    };
    let Some(&first) = hosts.first() else {
        return Err(Diagnostic::plain(format!("the cluster `{}` has no hosts", a.cluster))
            .with_hint("the shop inventory's `db` group holds `db_primary` and `db_replica`")
            .into());
    };
    let conn = &a.common.connection;
    let mut members = Vec::new();
    for &h in &hosts {
        members.push((failover::member(&vars, &inv, h)?, conn.target(&inv, &vars, h)?));
    }
    let first_of = |g: &str| group_hosts(g).and_then(|h| h.first().copied());
    let lb = conn.balancer(&inv, &vars)?;
    let client = match first_of("app") {
        Some(h) => Some(conn.target(&inv, &vars, h)?),
        None => lb.as_ref().map(|(t, _)| t.clone()),
    };
    Ok(Cluster {
        members,
        lb,
        client,
        settings: failover::settings(&vars, &inv, first)?,
    })
}

/// Runs `tend failover ...`.
pub fn run(cmd: FailoverCommand) -> Result<Code, CliError> {
    match cmd {
        FailoverCommand::Status(a) => status(a),
        FailoverCommand::Switchover(a) => {
            let job = Job {
                command: "failover switchover",
                to: a.to,
                max_wait: a.max_wait,
                lock_wait: a.lock_wait,
                drill: None,
            };
            switchover(&a.cluster, job)
        }
        FailoverCommand::Drill(a) => {
            let DrillKind::Switchover = a.kind;
            let job = Job {
                command: "failover drill",
                to: a.to,
                max_wait: a.max_wait,
                lock_wait: a.lock_wait,
                drill: Some((a.probe_rate, a.steady)),
            };
            switchover(&a.cluster, job)
        }
    }
}

/// Runs `work` with the cluster's hosts connected (members may be down) and, when `lock` is
/// set, the `failover` lock taken on the balancer.
fn operate<W>(a: &ClusterArgs, c: &Cluster, command: &'static str, lock: Option<u64>, work: W) -> Result<Code, CliError>
where
    W: AsyncFnOnce(&Session<'_>) -> Outcome,
{
    let options = a.common.connection.connect_options()?;
    let layout = if lock.is_some() { Layout::Steps } else { Layout::Listing };
    let settings = a.common.output.settings(layout);
    let mut targets: Vec<Target> = c.members.iter().map(|(_, t)| t.clone()).collect();
    targets.extend(c.lb.iter().map(|(t, _)| t.clone()));
    targets.extend(c.client.iter().cloned());
    let lock = match (lock, &c.lb) {
        (Some(wait), Some((lb, _))) => Some(LockRequest {
            name: "failover".into(),
            host: lb.clone(),
            ttl: Duration::from_secs(120),
            wait: Duration::from_secs(wait),
        }),
        (Some(_), None) => {
            return Err(Diagnostic::plain(
                "the inventory has no balancer (`lb`): a switchover repoints its database proxy",
            )
            .into());
        }
        (None, _) => None,
    };
    block_on(async move {
        let events = Events::start(command, targets.len(), &settings);
        for p in [
            &c.settings.login.password,
            &Some(c.settings.app.2.clone()),
            &Some(c.settings.repl.1.clone()),
        ]
        .into_iter()
        .flatten()
        {
            if !p.is_empty() {
                events.secret(p);
            }
        }
        let fleet = a.common.connection.fleet(options);
        let request = Request {
            command: command.into(),
            reason: command.into(),
            lock,
            check: false,
            forks: a.common.connection.forks as usize,
            optional: c.members.iter().map(|(m, _)| m.name.clone()).collect(),
        };
        ops::run(&events, &fleet, request, targets, work).await
    })
}

/// Reads every member and the proxy.
async fn topology(s: &Session<'_>, c: &Cluster) -> Topology {
    let seen = s
        .each(c.members.iter(), |(m, _)| async move {
            let state = match s.host(&m.name) {
                None => Err("unreachable".to_string()),
                Some(h) => {
                    let db = Db {
                        host: h.clone(),
                        login: c.settings.login.clone(),
                        database: "mysql".into(),
                    };
                    topology::read(&db).await.map_err(|e| e.message())
                }
            };
            Seen {
                member: m.clone(),
                state,
            }
        })
        .await;
    let proxy = match c.lb.as_ref().and_then(|(t, _)| s.host(&t.name)) {
        Some(lb) => match ops::proxy::read_upstream(lb, &c.settings.upstream).await {
            Ok(text) => match ops::proxy::upstream_server(&text) {
                Ok((host, _)) => Some(host),
                Err(e) => {
                    s.events().warn(format!("{}: {e}", lb.name()));
                    None
                }
            },
            Err(e) => {
                s.events()
                    .warn(format!("cannot read the database proxy: {}", e.message()));
                None
            }
        },
        None => None,
    };
    Topology::new(seen, proxy)
}

fn status(a: StatusArgs) -> Result<Code, CliError> {
    let c = resolve(&a.cluster)?;
    operate(&a.cluster, &c, "failover status", None, async |s: &Session<'_>| {
        let t = topology(s, &c).await;
        let primary = t.primary().map(|(m, srv)| (m.name.clone(), srv.binlog.clone()));
        let mut rows = Vec::new();
        for (i, seen) in t.members.iter().enumerate() {
            let m = &seen.member;
            let proxied = t.proxy.as_ref().is_some_and(|(_, p)| *p == Some(i));
            let row = match &seen.state {
                Err(e) => json!({"host": m.name, "role": "unreachable", "verdict": e, "proxy": proxied}),
                Ok(srv) => {
                    let role = if t.primary == Some(i) {
                        "primary"
                    } else if srv.replication.is_some() {
                        "replica"
                    } else {
                        "standalone"
                    };
                    let behind = primary
                        .as_ref()
                        .filter(|(p, _)| *p != m.name)
                        .and_then(|(_, pos)| topology::transactions_behind(pos, &srv.current));
                    let verdict = if t.primary == Some(i) {
                        String::new()
                    } else {
                        t.verdict(i).err().unwrap_or_else(|| "ready".into())
                    };
                    let r = srv.replication.as_ref();
                    json!({
                        "host": m.name,
                        "role": role,
                        "server_id": srv.server_id,
                        "read_only": srv.read_only,
                        "gtid": srv.current,
                        "source": r.map(|r| r.source.clone()),
                        "io": r.map(|r| r.io),
                        "sql": r.map(|r| r.sql),
                        "lag_seconds": r.and_then(|r| r.behind_s),
                        "lag_transactions": behind,
                        "relay_unapplied_bytes": r.and_then(|r| r.unapplied_bytes),
                        "semi_sync": if t.primary == Some(i) {
                            match (srv.semi_sync.primary_enabled, srv.semi_sync.primary_active) {
                                (false, _) => "off",
                                (true, true) => "on",
                                (true, false) => "fell back to async",
                            }
                        } else if srv.semi_sync.replica_active { "on" } else { "off" },
                        "long_transactions": srv.long_transactions,
                        "oldest_transaction_seconds": srv.oldest_transaction_s,
                        "metadata_lock_waits": srv.metadata_lock_waits,
                        "proxy": proxied,
                        "verdict": verdict,
                    })
                }
            };
            rows.push(row);
        }
        s.events().table(
            "cluster",
            &[
                ("host", "HOST"),
                ("role", "ROLE"),
                ("read_only", "READ_ONLY"),
                ("gtid", "GTID"),
                ("lag_seconds", "LAG (S)"),
                ("lag_transactions", "LAG (TRX)"),
                ("semi_sync", "SEMI-SYNC"),
                ("proxy", "PROXY"),
                ("verdict", "VERDICT"),
            ],
            rows,
        );
        if let Some((host, None)) = &t.proxy {
            s.events().warn(format!(
                "the database proxy sends the applications to {host}, which is not a member"
            ));
        }
        if let Some((m, srv)) = t.primary()
            && (srv.long_transactions > 0 || srv.metadata_lock_waits > 0)
        {
            s.events().warn(format!(
                "{}: {} transaction(s) open for 10 s or more (oldest {} s), {} session(s) waiting for a metadata lock: a switchover waits for them",
                m.name, srv.long_transactions, srv.oldest_transaction_s, srv.metadata_lock_waits
            ));
        }
        match t.problems.first() {
            Some(p) => {
                for more in &t.problems[1..] {
                    s.events().warn(more.clone());
                }
                s.end(Err(Abort::new(Code::HostFailed, p.clone())))
            }
            None => s.end(Ok(Code::Ok)),
        }
    })
}

struct Job {
    command: &'static str,
    to: Option<String>,
    max_wait: u64,
    lock_wait: u64,
    /// A drill: the probe's rate and the steady period.
    drill: Option<(u32, u64)>,
}

fn switchover(a: &ClusterArgs, job: Job) -> Result<Code, CliError> {
    let c = resolve(a)?;
    if c.members.len() < 2 {
        return Err(Diagnostic::plain(format!(
            "the cluster `{}` has one member: nothing to switch to",
            a.cluster
        ))
        .into());
    }
    if let Some(to) = &job.to
        && !c.members.iter().any(|(m, _)| &m.name == to)
    {
        let mut d = Diagnostic::plain(format!("--to `{to}` is not a member of the cluster `{}`", a.cluster));
        if let Some(m) = crate::diagnostic::did_you_mean(to, c.members.iter().map(|(m, _)| m.name.as_str())) {
            d = d.with_hint(format!("did you mean `--to {m}`?"));
        }
        return Err(d.into());
    }
    if job.drill.is_some() && c.settings.app.2.is_empty() {
        return Err(
            Diagnostic::plain("a drill's probe writes as the applications do: `shop_db_password` is not set").into(),
        );
    }
    operate(a, &c, job.command, Some(job.lock_wait), async |s: &Session<'_>| {
        let clock = ops::Clock::start();
        let origin = Instant::now();
        let lb =
            c.lb.as_ref()
                .map(|(t, addr)| (t.name.as_str(), addr.as_str()))
                .unwrap_or_default();
        let cx = Cx {
            s,
            settings: &c.settings,
            lb,
            client: if c.settings.app.2.is_empty() {
                None
            } else {
                c.client.as_ref().map(|t| t.name.as_str())
            },
            origin,
            phases: Default::default(),
        };
        if cx.client.is_none() {
            s.events()
                .warn("`shop_db_password` is not set: the write through the proxy is not checked");
        }
        let result = drive(&cx, &c, &job).await;
        let mut details = serde_json::Map::new();
        details.insert("phases".into(), json!(cx.timeline()));
        let result = match result {
            Ok((done, measured)) => {
                details.insert("from".into(), done.from.clone().into());
                details.insert("to".into(), done.to.clone().into());
                details.insert("gtid".into(), done.gtid.clone().into());
                if let Some(m) = measured {
                    for (k, v) in m {
                        details.insert(k, v);
                    }
                }
                Ok(("switched", Status::Changed, details))
            }
            Err((abort, measured)) => {
                if let Some(m) = measured {
                    for (k, v) in m {
                        details.insert(k, v);
                    }
                }
                Err((abort, details))
            }
        };
        let host = cx.lb.0.to_string();
        clock.one_host(s, (job.command, "db", &host), result)
    })
}

type Measured = Option<serde_json::Map<String, serde_json::Value>>;

/// The switchover, inside a probe when the job is a drill.
async fn drive(cx: &Cx<'_>, c: &Cluster, job: &Job) -> Result<(switch::Done, Measured), (Abort, Measured)> {
    let s = cx.s;
    let t = topology(s, c).await;
    let Some((pm, _)) = t.primary() else {
        let why = t.problems.first().cloned().unwrap_or_else(|| "no primary".into());
        return Err((
            Abort::new(Code::HostFailed, format!("{why}; nothing was changed")),
            None,
        ));
    };
    let pm = pm.clone();
    let to = match &job.to {
        Some(name) => t.index(name).unwrap_or(0),
        None => match (0..t.members.len()).find(|&i| t.verdict(i).is_ok()) {
            Some(i) => i,
            None => {
                return Err((
                    Abort::new(
                        Code::HostFailed,
                        "no replica is ready to take over; nothing was changed",
                    )
                    .hint("`tend failover status` says why each one is not"),
                    None,
                ));
            }
        },
    };
    let candidate = t.members[to].member.name.clone();
    if candidate != pm.name {
        // Lag is waited for (--max-wait); anything else is refused.
        if let Err(why) = t.verdict(to)
            && !lag_only(&t, to)
        {
            return Err((
                Abort::new(Code::HostFailed, format!("{candidate} {why}; nothing was changed"))
                    .hint("`tend failover status` shows the cluster"),
                None,
            ));
        }
    } else if job.drill.is_some() {
        return Err((
            Abort::new(
                Code::InvalidInput,
                format!("{candidate} is the primary already; nothing was changed"),
            ),
            None,
        ));
    }
    let max_wait = Duration::from_secs(job.max_wait);
    let Some((rate, steady)) = job.drill else {
        return switch::switchover(cx, &t, to, max_wait)
            .await
            .map(|d| (d, None))
            .map_err(|e| (e, None));
    };
    // The drill: the probe first, through the applications' path.
    let Some(client) = cx.client.and_then(|n| s.host(n)) else {
        return Err((Abort::new(Code::Unreachable, "no app host for the probe"), None));
    };
    let primary_db = Db {
        host: s.host(&pm.name).cloned().ok_or_else(|| {
            (
                Abort::new(Code::Unreachable, format!("{} cannot be reached", pm.name)),
                None,
            )
        })?,
        login: c.settings.login.clone(),
        database: "mysql".into(),
    };
    switch::ensure_probe_table(&primary_db, &c.settings)
        .await
        .map_err(|e| {
            (
                Abort::step("cannot create the probe's table; nothing was changed", &e),
                None,
            )
        })?;
    let run = format!("drill-{}", jiff::Timestamp::now().as_millisecond());
    let table = switch::probe_table(&c.settings);
    let login = switch::app_login(&c.settings, cx.lb.1);
    let probe = Probe::start(client, &login, (&table, &run), rate, cx.origin)
        .await
        .map_err(|e| {
            (
                Abort::step("the probe cannot write through the proxy; nothing was changed", &e),
                None,
            )
        })?;
    s.events().note(format!(
        "probe: {rate} writes a second from {} through the database proxy (run {run})",
        client.name()
    ));
    // A second of writes before anything changes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let switched = switch::switchover(cx, &t, to, max_wait).await;
    // Until writes have gone through for the steady period (at most a minute more).
    let after = cx.origin.elapsed().as_secs_f64() * 1e3;
    let until = Instant::now() + Duration::from_secs(60 + steady);
    while !probe.steady(after, Duration::from_secs(steady)) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let interval = probe.interval_ms;
    let (attempts, probe_result) = probe.stop().await;
    if let Err(e) = probe_result {
        s.events().warn(format!("the probe ended badly: {}", e.message()));
    }
    let seen = probe::outage(&attempts);
    // RPO: acknowledged writes the primary now serving does not have.
    let now_primary = match &switched {
        Ok(d) => d.to.clone(),
        Err(_) => pm.name.clone(),
    };
    let mut measured = serde_json::Map::new();
    measured.insert("kind".into(), "switchover".into());
    measured.insert("rto_ms".into(), seen.rto_ms.into());
    let rpo = match s.host(&now_primary) {
        Some(h) => {
            let db = Db {
                host: h.clone(),
                login: c.settings.login.clone(),
                database: "mysql".into(),
            };
            probe::missing(&db, &table, &run, &attempts)
                .await
                .map_err(|e| e.message())
        }
        None => Err(format!("{now_primary} cannot be reached")),
    };
    match &rpo {
        Ok((missing, unacknowledged)) => {
            measured.insert("rpo_missing".into(), json!(missing));
            measured.insert("unacknowledged_present".into(), json!(unacknowledged));
        }
        Err(e) => {
            s.events()
                .warn(format!("cannot count the probe's rows on {now_primary}: {e}"));
            measured.insert("rpo_missing".into(), serde_json::Value::Null);
        }
    }
    measured.insert(
        "probe".into(),
        json!({
            "host": client.name(),
            "run": run,
            "rate": rate,
            "interval_ms": interval,
            "attempts": seen.attempts,
            "acknowledged": seen.acknowledged,
            "failed": seen.failed,
            "outage_ms": [seen.outage.0.round(), seen.outage.1.round()],
            "latency_p50_ms": (seen.latency_p50_ms * 10.0).round() / 10.0,
        }),
    );
    measured.insert("attempts".into(), json!(attempts));
    match switched {
        Ok(done) => {
            let missing = rpo.as_ref().map(|(m, _)| m.len()).unwrap_or(0);
            s.events().note(format!(
                "RTO {} ms (probe interval {:.0} ms; {} of {} writes failed), RPO {} acknowledged write(s) missing on {}",
                seen.rto_ms, interval, seen.failed, seen.attempts, missing, done.to
            ));
            if missing > 0 {
                return Err((
                    Abort::new(
                        Code::HostFailed,
                        format!(
                            "{missing} acknowledged write(s) are missing on the new primary {}",
                            done.to
                        ),
                    ),
                    Some(measured),
                ));
            }
            Ok((done, Some(measured)))
        }
        Err(e) => Err((e, Some(measured))),
    }
}

/// Whether the only reasons member `i` is not ready are lag (which a switchover waits for).
fn lag_only(t: &Topology, i: usize) -> bool {
    let Ok(srv) = &t.members[i].state else {
        return false;
    };
    let Some(r) = &srv.replication else { return false };
    let Some((pm, ps)) = t.primary() else { return false };
    (r.source == pm.address || r.source == pm.name)
        && r.io
        && r.sql
        && r.error.is_empty()
        && topology::errant(&ps.binlog, &srv.current).unwrap_or(0) == 0
}
