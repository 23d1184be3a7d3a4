//! `tend failover`: the cluster's topology, switchovers and drills, on the operations core.

use super::CliError;
use super::backup::Common;
use super::common::block_on;
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::failover::probe::{self, Probe};
use crate::failover::switch::{self, Cx};
use crate::failover::topology::{self, Topology};
use crate::failover::{self, Member, Settings, history};
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
///   tend failover promote --to h9            the primary is gone
///   tend failover rejoin h8                  the old primary back, as a replica
///   tend failover drill --kind kill-primary --format json
///   tend failover history
#[derive(Debug, Subcommand)]
#[command(verbatim_doc_comment)]
pub enum FailoverCommand {
    Status(StatusArgs),
    Switchover(SwitchoverArgs),
    Promote(PromoteArgs),
    Rejoin(RejoinArgs),
    Drill(DrillArgs),
    History(HistoryArgs),
}

/// What every command that switches the primary takes.
#[derive(Debug, Args)]
pub struct Switching {
    /// The replica to promote [default: the first ready one (switchover), the most advanced
    /// (promote)]
    #[arg(long, value_name = "REPLICA")]
    pub to: Option<String>,
    /// How long to wait for the candidate to execute the primary's transactions
    #[arg(allow_negative_numbers = true, long, default_value_t = 30, value_name = "SECONDS")]
    pub max_wait: u64,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// The data-loss budget of an unplanned promotion.
#[derive(Debug, Args)]
pub struct Budget {
    /// The most transactions the promotion may lose
    #[arg(long, default_value_t = 0, value_name = "TRANSACTIONS")]
    pub max_data_loss: u64,
    /// Promote whatever the estimated loss
    #[arg(long)]
    pub accept_data_loss: bool,
}

impl Budget {
    fn limit(&self) -> Option<u64> {
        (!self.accept_data_loss).then_some(self.max_data_loss)
    }
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
/// transaction), takes the database lock (`db`, on the balancer: backups and restores wait for
/// it too), makes the primary read_only and
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
    #[command(flatten)]
    pub switching: Switching,
    /// Switch even within `failover_cooldown` (1h) of the last switchover or promotion
    #[arg(long)]
    pub force: bool,
}

/// Unplanned failover: the primary is gone; promote the most advanced replica
///
/// The old primary is the server the balancer's database proxy sends the applications to;
/// refused while it still takes writes (use `switchover`). Chooses the replica that reaches
/// the furthest GTID once it has applied what it received (or --to), estimates the
/// transactions it would lack of those the cluster knows of (the old primary's binlog when it
/// can still be read, everything any replica executed or received: with semi-synchronous
/// replication every acknowledged write is among them), and refuses when that exceeds
/// --max-data-loss (0) unless --accept-data-loss. Then fences the old primary (read_only now if
/// it answers, and `read_only` in its role file for its next start where its host is
/// reachable; the proxy is moved away from it in any case), lets the candidate apply its relay
/// log, promotes it, repoints the proxy, makes the other replicas replicate from it, and
/// checks a write through the proxy. `tend failover rejoin` brings the old primary back.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub switching: Switching,
    #[command(flatten)]
    pub budget: Budget,
    /// Promote even within `failover_cooldown` (1h) of the last switchover or promotion
    #[arg(long)]
    pub force: bool,
}

/// Bring a former primary (or any member out of the cluster) back as a replica
///
/// Compares its binlog with the primary's (`gtid_binlog_state`: per domain and server, which
/// tells two histories apart after a failover). Without errant transactions it replicates from
/// the primary from its own position, read_only (also in its role file). With errant ones
/// (writes that never reached the new primary) they are written out as SQL (`mariadb-binlog`,
/// row events decoded) into --sql-file (default: the run's directory) for review, and it is
/// left alone: rebuild it (`tend replica rebuild`), or give --discard-errant to reset its
/// binlog and replicate from the primary's position (the rows those transactions wrote stay in
/// its tables, which then differ from the primary's).
#[derive(Debug, Args)]
pub struct RejoinArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The member to bring back
    pub host: String,
    /// Reset its binlog and replicate even though it holds errant transactions
    #[arg(long)]
    pub discard_errant: bool,
    /// Where the errant transactions are written as SQL
    #[arg(long, value_name = "FILE")]
    pub sql_file: Option<std::path::PathBuf>,
    /// Wait this long for the lock when another run holds it (default: exit 5 at once)
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
}

/// Show the failovers and drills of the cluster, with RTO and RPO, oldest first
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The kind of drill.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DrillKind {
    /// A planned switchover, both servers alive.
    Switchover,
    /// The primary dies (SIGKILL of mariadbd and its supervisor) and the replica is promoted.
    KillPrimary,
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
/// With --kind kill-primary the primary's server is killed as a lost host dies and `promote`
/// runs at once (its loss budget checked before the kill: a refused drill changes nothing);
/// the killed server stays down, fenced: start it and `tend failover rejoin` it.
/// The JSON record carries `rto_ms` and `rpo_missing`. Drills are not held by the cool-down
/// and are recorded in the history like any failover.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DrillArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// What the drill does
    #[arg(long, value_enum, default_value = "switchover")]
    pub kind: DrillKind,
    #[command(flatten)]
    pub switching: Switching,
    #[command(flatten)]
    pub budget: Budget,
    /// Probe writes a second
    #[arg(allow_negative_numbers = true, long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=200))]
    pub probe_rate: u32,
    /// Seconds of uninterrupted writes that end the drill
    #[arg(allow_negative_numbers = true, long, default_value_t = 3, value_name = "SECONDS")]
    pub steady: u64,
    /// Also write the report as a self-contained HTML file (timeline chart, steps, failed
    /// writes)
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<std::path::PathBuf>,
}

/// The cluster resolved before connecting.
struct Cluster {
    name: String,
    members: Vec<(Member, Target)>,
    lb: Option<(Target, String)>,
    client: Option<Target>,
    store_host: Option<Target>,
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
    let settings = failover::settings(&vars, &inv, first)?;
    let store_host = match &settings.store {
        crate::backup::store::Store::Remote { host, .. } => match inv.hosts.iter().position(|x| &x.name == host) {
            Some(h) => Some(conn.target(&inv, &vars, h)?),
            None => None,
        },
        crate::backup::store::Store::Local(_) => None,
    };
    Ok(Cluster {
        name: a.cluster.clone(),
        members,
        lb,
        client,
        store_host,
        settings,
    })
}

/// Runs `tend failover ...`.
pub fn run(cmd: FailoverCommand) -> Result<Code, CliError> {
    match cmd {
        FailoverCommand::Status(a) => status(a),
        FailoverCommand::History(a) => history(a),
        FailoverCommand::Rejoin(a) => rejoin(a),
        FailoverCommand::Switchover(a) => {
            let job = Job::new("failover switchover", Kind::Switchover, a.switching, None, a.force);
            switchover(&a.cluster, job)
        }
        FailoverCommand::Promote(a) => {
            let job = Job::new(
                "failover promote",
                Kind::Promote,
                a.switching,
                a.budget.limit(),
                a.force,
            );
            switchover(&a.cluster, job)
        }
        FailoverCommand::Drill(a) => {
            let kind = match a.kind {
                DrillKind::Switchover => Kind::Switchover,
                DrillKind::KillPrimary => Kind::Promote,
            };
            let job = Job {
                drill: Some((a.probe_rate, a.steady)),
                report: a.report,
                ..Job::new("failover drill", kind, a.switching, a.budget.limit(), true)
            };
            switchover(&a.cluster, job)
        }
    }
}

/// Runs `work` with the cluster's hosts connected (members may be down) and, when `lock` is
/// set, the database lock (`db`) taken on the balancer.
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
    targets.extend(c.store_host.iter().cloned());
    let lock = match (lock, &c.lb) {
        (Some(wait), Some((lb, _))) => Some(LockRequest {
            name: super::backup::DB_LOCK.into(),
            host: super::backup::db_lock_host(Some(lb), lb),
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
            // A member may be down (that is what a failover is for); without the store only
            // the history is missing.
            optional: c
                .members
                .iter()
                .map(|(m, _)| m.name.clone())
                .chain(c.store_host.iter().map(|t| t.name.clone()))
                .chain(c.client.iter().map(|t| t.name.clone()))
                .collect(),
        };
        ops::run(&events, &fleet, request, targets, work).await
    })
}

/// Reads every member and the proxy.
async fn topology(s: &Session<'_>, c: &Cluster) -> Topology {
    let members: Vec<Member> = c.members.iter().map(|(m, _)| m.clone()).collect();
    let proxy =
        c.lb.as_ref()
            .map(|(t, _)| (t.name.as_str(), c.settings.upstream.as_str()));
    topology::observe(s, &members, &c.settings.login, proxy).await
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

/// Planned or unplanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Switchover,
    Promote,
}

struct Job {
    command: &'static str,
    kind: Kind,
    to: Option<String>,
    max_wait: u64,
    lock_wait: u64,
    /// The data-loss budget of a promotion (`None`: accepted whatever it is).
    budget: Option<u64>,
    /// Past the cool-down.
    force: bool,
    /// A drill: the probe's rate and the steady period.
    drill: Option<(u32, u64)>,
    /// The drill's HTML report.
    report: Option<std::path::PathBuf>,
}

impl Job {
    fn new(command: &'static str, kind: Kind, w: Switching, budget: Option<u64>, force: bool) -> Self {
        Self {
            command,
            kind,
            to: w.to,
            max_wait: w.max_wait,
            lock_wait: w.lock_wait,
            budget,
            force,
            drill: None,
            report: None,
        }
    }

    fn kind_name(&self) -> &'static str {
        match (self.kind, self.drill.is_some()) {
            (Kind::Switchover, false) => "switchover",
            (Kind::Promote, false) => "promote",
            (Kind::Switchover, true) => "drill switchover",
            (Kind::Promote, true) => "drill kill-primary",
        }
    }
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
    if let Some(to) = &job.to {
        member_named(&c, to, "--to")?;
    }
    if job.drill.is_some() && c.settings.app.2.is_empty() {
        return Err(
            Diagnostic::plain("a drill's probe writes as the applications do: `shop_db_password` is not set").into(),
        );
    }
    operate(a, &c, job.command, Some(job.lock_wait), async |s: &Session<'_>| {
        let clock = ops::Clock::start();
        let cx = context(s, &c, true);
        if cx.client.is_none() {
            s.events()
                .warn("`shop_db_password` is not set: the write through the proxy is not checked");
        }
        let store_host = c.store_host.as_ref().and_then(|t| s.host(&t.name));
        let result = drive(&cx, &c, &job, store_host).await;
        let mut details = serde_json::Map::new();
        details.insert("kind".into(), job.kind_name().into());
        details.insert("phases".into(), json!(cx.timeline()));
        let (from, to, measured) = match &result {
            Ok((done, m)) => (done.from.clone(), done.to.clone(), m.clone()),
            Err((_, m)) => (String::new(), String::new(), m.clone()),
        };
        for (k, v) in measured.unwrap_or_default() {
            details.insert(k, v);
        }
        // Every failover that changed something goes into the history, failed ones too.
        if !cx.timeline().is_empty() {
            let entry = history::Entry {
                at: crate::output::now_rfc3339(),
                at_s: jiff::Timestamp::now().as_second(),
                cluster: c.name.clone(),
                kind: job.kind_name().into(),
                from: details
                    .get("from")
                    .and_then(|v| v.as_str())
                    .map_or(from, str::to_string),
                to,
                outcome: if result.is_ok() { "switched" } else { "failed" }.into(),
                rto_ms: details.get("rto_ms").and_then(serde_json::Value::as_u64),
                rpo_missing: details.get("rpo_missing").and_then(|v| v.as_array()).map(Vec::len),
                user: crate::ops::lock::Me::current().user,
            };
            if let Err(e) = history::append(&c.settings.store, store_host, &entry).await {
                s.events()
                    .warn(format!("the failover history was not written: {}", e.message()));
            }
        }
        let result = match result {
            Ok((done, _)) => {
                details.insert("from".into(), done.from.clone().into());
                details.insert("to".into(), done.to.clone().into());
                details.insert("gtid".into(), done.gtid.clone().into());
                Ok(("switched", Status::Changed, details))
            }
            Err((abort, _)) => Err((abort, details)),
        };
        let host = cx.lb.0.to_string();
        clock.one_host(s, (job.command, "db", &host), result)
    })
}

/// What the runbooks work with; `client`: the app host that checks the applications' path
/// (only with the applications' password).
fn context<'a>(s: &'a Session<'a>, c: &'a Cluster, client: bool) -> Cx<'a> {
    Cx {
        s,
        settings: &c.settings,
        lb: c
            .lb
            .as_ref()
            .map(|(t, addr)| (t.name.as_str(), addr.as_str()))
            .unwrap_or_default(),
        client: if client && !c.settings.app.2.is_empty() {
            c.client.as_ref().map(|t| t.name.as_str())
        } else {
            None
        },
        origin: Instant::now(),
        phases: Default::default(),
    }
}

/// The member named `name`, or a "did you mean" (exit 4).
fn member_named<'a>(c: &'a Cluster, name: &str, flag: &str) -> Result<&'a Member, CliError> {
    if let Some((m, _)) = c.members.iter().find(|(m, _)| m.name == name) {
        return Ok(m);
    }
    let mut d = Diagnostic::plain(format!("{flag} `{name}` is not a member of the cluster `{}`", c.name));
    if let Some(m) = crate::diagnostic::did_you_mean(name, c.members.iter().map(|(m, _)| m.name.as_str())) {
        d = d.with_hint(format!("did you mean `{m}`?"));
    }
    Err(d.into())
}

type Measured = Option<serde_json::Map<String, serde_json::Value>>;
type Driven = Result<(switch::Done, Measured), (Abort, Measured)>;

fn refuse(message: String) -> (Abort, Measured) {
    (
        Abort::new(Code::HostFailed, format!("{message}; nothing was changed"))
            .hint("`tend failover status` shows the cluster"),
        None,
    )
}

/// Chooses the old primary and the candidate, checks them (and the cool-down), then runs the
/// failover, inside a probe when the job is a drill.
async fn drive(cx: &Cx<'_>, c: &Cluster, job: &Job, store_host: Option<&crate::transport::Host>) -> Driven {
    let s = cx.s;
    let t = topology(s, c).await;
    let (old, to) = match job.kind {
        Kind::Switchover => choose_switchover(&t, job)?,
        Kind::Promote => choose_promote(&t, job)?,
    };
    let finishing = old == to;
    if finishing && job.drill.is_some() {
        return Err((
            Abort::new(
                Code::InvalidInput,
                format!(
                    "{} is the primary already; nothing was changed",
                    t.members[to].member.name
                ),
            ),
            None,
        ));
    }
    // The cool-down: a second failover soon after one is more likely flapping than cure.
    if !job.force && !finishing {
        let past = history::load(&c.settings.store, store_host).await.unwrap_or_default();
        let now = jiff::Timestamp::now().as_second();
        if let Some(e) = history::cooling(&past, &c.name, now, c.settings.cooldown) {
            return Err((
                Abort::new(
                    Code::InvalidInput,
                    format!(
                        "the cluster `{}` had a {} ({} → {}) at {}, within failover_cooldown ({} min); nothing was changed",
                        c.name,
                        e.kind,
                        e.from,
                        e.to,
                        e.at,
                        c.settings.cooldown.as_secs() / 60
                    ),
                )
                .hint("--force switches anyway"),
                None,
            ));
        }
    }
    let max_wait = Duration::from_secs(job.max_wait);
    let old_member = t.members[old].member.clone();
    let act = async |t: &Topology| -> Result<switch::Done, Abort> {
        match job.kind {
            Kind::Switchover => switch::switchover(cx, t, to, max_wait).await,
            Kind::Promote if job.drill.is_some() => {
                switch::kill(cx, &old_member).await?;
                // The cluster as it is now, the primary dead: the budget again.
                let now = topology(s, c).await;
                if let Err((abort, _)) = budget_check(&now, (old, to), job.budget) {
                    return Err(Abort {
                        code: abort.code,
                        error: Box::new(crate::output::ErrorEvent::new(format!(
                            "{} is killed; the promotion is refused: {}",
                            old_member.name,
                            abort.error.message.trim_end_matches("; nothing was changed")
                        ))),
                    }
                    .hint("`tend failover promote --accept-data-loss` promotes anyway; or start the primary again"));
                }
                switch::promote(cx, &now, (old, to), max_wait).await
            }
            Kind::Promote => switch::promote(cx, t, (old, to), max_wait).await,
        }
    };
    let Some((rate, steady)) = job.drill else {
        return act(&t).await.map(|d| (d, None)).map_err(|e| (e, None));
    };
    // The drill: the probe first, through the applications' path.
    let Some(client) = cx.client.and_then(|n| s.host(n)) else {
        return Err((Abort::new(Code::Unreachable, "no app host for the probe"), None));
    };
    let Some(primary_host) = s.host(&old_member.name) else {
        return Err(refuse(format!("{} cannot be reached", old_member.name)));
    };
    let primary_db = Db::admin(primary_host, &c.settings.login);
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
    let switched = act(&t).await;
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
        Err(_) => old_member.name.clone(),
    };
    let mut measured = serde_json::Map::new();
    measured.insert("from".into(), old_member.name.clone().into());
    measured.insert(
        "rto_ms".into(),
        if seen.recovered {
            seen.rto_ms.into()
        } else {
            serde_json::Value::Null
        },
    );
    let rpo = match s.host(&now_primary) {
        Some(h) => {
            let db = Db::admin(h, &c.settings.login);
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
    if let Some(path) = &job.report {
        let missing = rpo.as_ref().ok().map(|(m, _)| m.as_slice());
        let outcome = match &switched {
            Ok(_) => "switched".to_string(),
            Err(e) => format!("failed: {}", e.error.message),
        };
        let text = crate::failover::report::html(&crate::failover::report::Drill {
            kind: job.kind_name(),
            cluster: &c.name,
            from: &old_member.name,
            to: switched.as_ref().map(|d| d.to.as_str()).unwrap_or_default(),
            at: &crate::output::now_rfc3339(),
            outcome: &outcome,
            rto_ms: seen.rto_ms,
            outage: seen.outage,
            rpo_missing: missing,
            interval_ms: interval,
            attempts: &attempts,
            phases: &cx.timeline(),
        });
        match std::fs::write(path, text) {
            Ok(()) => {
                s.events().note(format!("report: {}", path.display()));
                measured.insert("report".into(), path.display().to_string().into());
            }
            Err(e) => s
                .events()
                .warn(format!("cannot write the report {}: {e}", path.display())),
        }
    }
    if !seen.recovered {
        let e = Abort::new(
            Code::HostFailed,
            format!(
                "the probe's writes had not recovered {} s after the failover: no RTO",
                60 + steady
            ),
        )
        .hint("`tend failover status` shows the cluster; the probe's attempts are in the record");
        return Err((switched.err().unwrap_or(e), Some(measured)));
    }
    match switched {
        Ok(done) => {
            let missing = rpo.as_ref().map(|(m, _)| m.len()).unwrap_or(0);
            s.events().note(format!(
                "RTO {} ms (probe interval {:.0} ms; {} of {} writes failed), RPO {} acknowledged write(s) missing on {}",
                seen.rto_ms, interval, seen.failed, seen.attempts, missing, done.to
            ));
            if missing > 0 && job.budget.is_some() {
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

/// A switchover's old primary (the cluster's) and candidate (--to, else the first ready
/// replica). The candidate may lag (it is waited for), nothing else.
fn choose_switchover(t: &Topology, job: &Job) -> Result<(usize, usize), (Abort, Measured)> {
    let Some(old) = t.primary else {
        let why = t.problems.first().cloned().unwrap_or_else(|| "no primary".into());
        return Err(refuse(why));
    };
    let to = match &job.to {
        Some(name) => t.index(name).unwrap_or(old),
        None => (0..t.members.len())
            .find(|&i| t.verdict(i).is_ok())
            .ok_or_else(|| refuse("no replica is ready to take over".into()))?,
    };
    if to != old
        && let Err(why) = t.verdict(to)
        && !t.only_lagging(to)
        && !half_promoted(t, (old, to))
    {
        return Err(refuse(format!("{} {why}", t.members[to].member.name)));
    }
    if to != old && job.drill.is_some() && t.verdict(to).is_err() {
        return Err(refuse(format!(
            "{} is not caught up: a drill starts from a healthy cluster",
            t.members[to].member.name
        )));
    }
    Ok((old, to))
}

/// A promotion's old primary (the member the proxy sends the applications to, which must be
/// gone or read-only, except in a drill that is about to kill it) and candidate (--to, else
/// the replica that reaches the furthest), with the loss budget checked.
fn choose_promote(t: &Topology, job: &Job) -> Result<(usize, usize), (Abort, Measured)> {
    let Some(old) = t.proxied().or(t.primary) else {
        return Err(refuse(
            "the database proxy sends the applications to no member: cannot tell which primary is gone".into(),
        ));
    };
    let old_name = t.members[old].member.name.clone();
    let alive = t.members[old]
        .state
        .as_ref()
        .is_ok_and(|s| !s.read_only && !s.replicating());
    if alive && job.drill.is_none() {
        return Err(refuse(format!(
            "the primary {old_name} still takes writes: use `tend failover switchover`"
        )));
    }
    let source_is_old = |i: usize| {
        t.members[i].state.as_ref().is_ok_and(|s| {
            s.replication
                .as_ref()
                .is_some_and(|r| r.source == t.members[old].member.address || r.source == old_name)
        })
    };
    let to = match &job.to {
        Some(name) => t.index(name).unwrap_or(old),
        None => {
            let mut best: Option<(usize, u64)> = None;
            for i in (0..t.members.len()).filter(|&i| i != old && source_is_old(i)) {
                let loss = t.loss(i, Some(old)).unwrap_or(u64::MAX);
                if best.is_none_or(|(_, l)| loss < l) {
                    best = Some((i, loss));
                }
            }
            best.map(|(i, _)| i)
                .ok_or_else(|| refuse(format!("no replica of {old_name} can be read")))?
        }
    };
    let name = &t.members[to].member.name;
    if to == old {
        return Err(refuse(format!("{name} is the primary that is gone")));
    }
    if !source_is_old(to) {
        return Err(refuse(format!("{name} is not a replica of {old_name}")));
    }
    if let Some(e) = t.members[to]
        .state
        .as_ref()
        .ok()
        .and_then(|s| s.replication.as_ref())
        .map(|r| &r.error)
        && !e.is_empty()
        && job.budget.is_some()
    {
        return Err(refuse(format!("{name} has a replication error: {e}")));
    }
    // In a drill the primary still writes until it is killed: with the candidate's applier
    // stopped, whatever it writes meanwhile is lost.
    let stopped = t.members[to]
        .state
        .as_ref()
        .ok()
        .and_then(|s| s.replication.as_ref())
        .is_some_and(|r| !r.sql);
    if stopped && job.drill.is_some() && job.budget.is_some() {
        return Err((
            Abort::new(
                Code::HostFailed,
                format!(
                    "{name}'s SQL thread is stopped: every write from now on would be lost when the primary dies; nothing was changed"
                ),
            )
            .hint("--accept-data-loss runs the drill anyway (the report lists the lost writes)"),
            None,
        ));
    }
    budget_check(t, (old, to), job.budget)?;
    Ok((old, to))
}

/// Refuses a promotion of `to` that would lose more than `budget` transactions.
fn budget_check(t: &Topology, (old, to): (usize, usize), budget: Option<u64>) -> Result<(), (Abort, Measured)> {
    let name = &t.members[to].member.name;
    let loss = t.loss(to, Some(old)).unwrap_or(u64::MAX);
    if let Some(budget) = budget
        && loss > budget
    {
        return Err((
            Abort::new(
                Code::HostFailed,
                format!("promoting {name} would lose {loss} transaction(s) (budget: {budget}); nothing was changed"),
            )
            .hint("--max-data-loss N raises the budget; --accept-data-loss promotes anyway"),
            None,
        ));
    }
    Ok(())
}

/// Whether a switchover from `old` to `to` stopped between the promotion and the repoint (tend
/// killed): the old primary read_only, the candidate writable with its applier stopped and its
/// replication still pointing at the old primary. Running it again finishes it.
fn half_promoted(t: &Topology, (old, to): (usize, usize)) -> bool {
    let (Ok(o), Ok(n)) = (&t.members[old].state, &t.members[to].state) else {
        return false;
    };
    let om = &t.members[old].member;
    o.read_only
        && !n.read_only
        && n.replication
            .as_ref()
            .is_some_and(|r| !r.io && !r.sql && r.error.is_empty() && (r.source == om.address || r.source == om.name))
}

fn rejoin(a: RejoinArgs) -> Result<Code, CliError> {
    let c = resolve(&a.cluster)?;
    member_named(&c, &a.host, "the member")?;
    let sql_file = a.sql_file.clone().unwrap_or_else(|| {
        crate::output::default_log_dir().join(format!("rejoin-{}-{}.sql", a.host, jiff::Timestamp::now().as_second()))
    });
    operate(
        &a.cluster,
        &c,
        "failover rejoin",
        Some(a.lock_wait),
        async |s: &Session<'_>| {
            let clock = ops::Clock::start();
            let cx = context(s, &c, false);
            let t = topology(s, &c).await;
            let result = match t.index(&a.host) {
                Some(i) if t.primary == Some(i) => Err((
                    Abort::new(
                        Code::InvalidInput,
                        format!("{} is the primary; nothing to rejoin", a.host),
                    ),
                    serde_json::Map::new(),
                )),
                Some(i) => {
                    // The errant transactions are on disk (synced) before anything is discarded.
                    let mut written = false;
                    let mut keep = |text: &str| -> Result<(), String> {
                        // The shop's own rows: owner-only.
                        if let Some(dir) = sql_file.parent() {
                            crate::private::dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                        }
                        let mut f =
                            crate::private::file(&sql_file).map_err(|e| format!("{}: {e}", sql_file.display()))?;
                        use std::io::Write as _;
                        f.write_all(text.as_bytes())
                            .and_then(|()| f.sync_all())
                            .map_err(|e| format!("{}: {e}", sql_file.display()))?;
                        written = true;
                        Ok(())
                    };
                    let rejoined = switch::rejoin(&cx, &t, i, (a.discard_errant, &mut keep)).await;
                    let mut details = serde_json::Map::new();
                    if written {
                        s.events().note(format!(
                            "errant transactions of {} written out as SQL: {}",
                            a.host,
                            sql_file.display()
                        ));
                        details.insert("errant_sql".into(), sql_file.display().to_string().into());
                    }
                    match rejoined {
                        Ok(done) => {
                            details.insert("errant".into(), done.errant.into());
                            details.insert("discarded".into(), done.discarded.into());
                            details.insert("replicating".into(), done.replicating.into());
                            if done.replicating {
                                Ok(("rejoined", Status::Changed, details))
                            } else {
                                Err((
                                    Abort::new(
                                        Code::HostFailed,
                                        format!(
                                            "{} holds {} transaction(s) the primary does not have; it was left alone",
                                            a.host, done.errant
                                        ),
                                    )
                                    .hint(format!(
                                        "review them in {}; then rebuild it (`tend replica rebuild {}`) or run again with --discard-errant",
                                        sql_file.display(),
                                        a.host
                                    )),
                                    details,
                                ))
                            }
                        }
                        Err(abort) => Err((abort, details)),
                    }
                }
                None => Err((
                    Abort::new(Code::InvalidInput, format!("{} is not a member", a.host)),
                    serde_json::Map::new(),
                )),
            };
            clock.one_host(s, ("failover rejoin", "db", &a.host), result)
        },
    )
}

fn history(a: HistoryArgs) -> Result<Code, CliError> {
    let c = resolve(&a.cluster)?;
    operate(&a.cluster, &c, "failover history", None, async |s: &Session<'_>| {
        let store_host = c.store_host.as_ref().and_then(|t| s.host(&t.name));
        let entries = match history::load(&c.settings.store, store_host).await {
            Ok(e) => e,
            Err(e) => return s.end(Err(Abort::step("cannot read the failover history", &e))),
        };
        let rows = entries
            .iter()
            .filter(|e| e.cluster == c.name)
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect();
        s.events().table(
            "history",
            &[
                ("at", "AT"),
                ("kind", "KIND"),
                ("from", "FROM"),
                ("to", "TO"),
                ("outcome", "OUTCOME"),
                ("rto_ms", "RTO (MS)"),
                ("rpo_missing", "RPO (WRITES)"),
                ("user", "USER"),
            ],
            rows,
        );
        s.end(Ok(Code::Ok))
    })
}
