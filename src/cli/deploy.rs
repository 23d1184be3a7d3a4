//! `tend deploy`, `tend rollback` and `tend releases`: release deploys to an app group.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, raise_fd_limit, runtime};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::inventory::Inventory;
use crate::output::{Format, Style};
use crate::release::artifact::{self, Artifact};
use crate::release::balancer::{self, ServerState};
use crate::release::deploy::{AppHost, Balancers, BatchSize, Goal, Options, Reporter, Run};
use crate::release::lock::{self, LockError, Request};
use crate::release::remote;
use crate::release::settings::{self, HostSettings};
use crate::release::{Node, StepError};
use crate::transport::{ConnectOptions, Connection, Target};
use clap::Args;
use futures_util::future::join_all;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The app group and how to change it; shared by deploy and rollback.
#[derive(Debug, Args)]
pub struct FleetOpts {
    #[command(flatten)]
    pub target: GroupOpts,
    /// Hosts switched at once: a number or a percentage of the hosts (`25%`)
    #[arg(long, default_value = "1", value_name = "N|N%")]
    pub batch: String,
    /// When a batch fails, keep earlier batches on the new release (default: switch them back too)
    #[arg(long)]
    pub keep_partial: bool,
    /// Change nothing: show what would be staged and switched
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Wait this long for the lock when another run holds it (default: fail at once, exit 5)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
    /// Lease length of the lock; it is renewed while the run lasts
    #[arg(long, default_value_t = 120, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(10..))]
    pub lock_ttl: u64,
    /// Variables over the inventory's (`deploy_health_timeout=30`, `@file.yaml`); repeatable
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
}

/// Deploy a release to the app servers, batch by batch, behind the load balancer
///
/// Steps:
///   1. take the lock of the group (held by another run: exit 5)
///   2. upload the artifact to every host (checksum verified there), unpack it into
///      `releases/<id>/` and link the `shared/` paths
///   3. per batch: drain the hosts from the Nginx upstream on the balancer hosts (in-flight
///      requests finish), point `current` at the release (atomic rename), restart the app, wait
///      for the health URL, put the hosts back
///   4. a batch that fails its health gate is switched back, and so is every earlier batch
///      unless `--keep-partial`
///   5. keep `deploy_keep_releases` releases, log the deploy on each host
///      (`.tend/deploys.log`), release the lock
///
/// Running the same deploy again finishes an interrupted one: hosts already serving the release
/// are skipped, hosts left out of the upstream are checked and put back.
///
/// Settings come from inventory variables (defaults fit the shipped shop): deploy_root
/// (/srv/shop), deploy_keep_releases (5), deploy_unpack (exploded|archive),
/// deploy_shared_dirs, deploy_shared_files, deploy_restart_command, deploy_health_url,
/// deploy_health_status (200), deploy_health_body (text the page must contain; may use
/// `{{ release_id }}`), deploy_health_timeout (90), deploy_balancer_group (lb),
/// deploy_upstream (shop_app), deploy_upstream_file, deploy_upstream_server, deploy_drain_timeout.
///
/// Examples:
///   tend deploy --artifact build/shop.war --release-id 42
///   tend deploy --artifact https://ci.example/shop-42.war --checksum sha256:… --batch 25%
///   tend deploy --artifact shop.war --check --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DeployArgs {
    /// The artifact: a local file or an http(s) URL (war/zip, tarball, or any file with
    /// `deploy_unpack: archive`)
    #[arg(long, value_name = "PATH|URL")]
    pub artifact: String,
    /// Release id: the directory name under `releases/` [default: the UTC time, YYYYMMDDHHMMSS]
    #[arg(long, value_name = "ID")]
    pub release_id: Option<String>,
    /// Expected SHA-256 of the artifact; with a URL, each host downloads it and checks it
    #[arg(long, value_name = "SHA256")]
    pub checksum: Option<String>,
    #[command(flatten)]
    pub fleet: FleetOpts,
}

/// Switch the app servers back to the previous release (or `--to ID`), batch by batch.
///
/// The same steps as a deploy without staging: drain, switch `current`, restart, health gate,
/// put back. The previous release is the newest one staged before the current one on each host.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The release to return to [default: each host's previous release]
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
    #[command(flatten)]
    pub fleet: FleetOpts,
}

/// Show which release each app server runs, which are kept, and which host differs.
#[derive(Debug, Args)]
pub struct ReleasesArgs {
    #[command(flatten)]
    pub group: GroupOpts,
}

/// An app group to look at: inventory, connection, group name, output format.
#[derive(Debug, Args)]
pub struct GroupOpts {
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    /// The group of app servers (deploys also name their lock after it)
    #[arg(long, default_value = "app", value_name = "GROUP")]
    pub group: String,
    /// Output format: `human` (lines on stderr, tables on stdout) or `json` (JSON Lines on stdout)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Runs `tend deploy`.
pub fn deploy(args: DeployArgs) -> Result<Code, CliError> {
    let id = match &args.release_id {
        Some(id) => id.clone(),
        None => jiff::Timestamp::now().strftime("%Y%m%d%H%M%S").to_string(),
    };
    settings::check_release_id(&id)?;
    let expected = match &args.checksum {
        Some(c) => Some(artifact::parse_checksum(c).ok_or_else(|| {
            Diagnostic::plain(format!("--checksum `{c}` is not a SHA-256 checksum"))
                .with_hint("give 64 hex digits, optionally prefixed with `sha256:`")
        })?),
        None => None,
    };
    if !artifact::is_url(&args.artifact) && !std::path::Path::new(&args.artifact).is_file() {
        return Err(
            Diagnostic::plain(format!("--artifact `{}`: no such file", args.artifact))
                .with_hint("give a local file or an http(s) URL")
                .into(),
        );
    }
    let source = args.artifact.clone();
    let goal_id = id.clone();
    run_fleet(args.fleet, Some(id), move |rt| {
        let artifact = match (artifact::is_url(&source), expected) {
            (true, Some(sum)) => Artifact::remote(&source, sum),
            (_, expected) => rt
                .block_on(Artifact::load(&source, expected.as_deref()))
                .map_err(|e| CliError::Input(Diagnostic::plain(e.to_string())))?,
        };
        Ok((
            Goal::Deploy {
                id: goal_id.clone(),
                artifact,
            },
            format!("release {goal_id}"),
        ))
    })
}

/// Runs `tend rollback`.
pub fn rollback(args: RollbackArgs) -> Result<Code, CliError> {
    if let Some(to) = &args.to {
        settings::check_release_id(to)?;
    }
    let to = args.to.clone();
    run_fleet(args.fleet, to.clone(), move |_| {
        let reason = match &to {
            Some(t) => format!("rollback to {t}"),
            None => "rollback to the previous release".to_string(),
        };
        Ok((Goal::Rollback { to: to.clone() }, reason))
    })
}

/// The app hosts (group ∩ limit) with their settings, and the balancer hosts.
struct Resolved {
    apps: Vec<(Target, HostSettings, usize)>,
    balancers: Vec<Target>,
    lock_host: Target,
}

fn resolve(
    inv: &Inventory,
    conn: &ConnectionOpts,
    group: &str,
    extra: &Map<String, Json>,
    release: Option<&str>,
) -> Result<Resolved, CliError> {
    let Some(g) = inv.group_index(group) else {
        let names: Vec<&str> = inv.groups.iter().map(|g| g.name.as_str()).collect();
        let mut d = Diagnostic::plain(format!("the inventory has no group `{group}`"));
        if let Some(m) = crate::diagnostic::did_you_mean(group, names.iter().copied()) {
            d = d.with_hint(format!("did you mean `--group {m}`?"));
        }
        return Err(d.into());
    };
    if !lock::valid_name(group) {
        return Err(Diagnostic::plain(format!("group `{group}` cannot name a lock file"))
            .with_hint("use a group named with letters, digits, `.`, `_` and `-`")
            .into());
    }
    let all = inv.hosts_of_group(g);
    let Some(&first) = all.first() else {
        return Err(Diagnostic::plain(format!("group `{group}` has no hosts")).into());
    };
    let selected = crate::inventory::select(inv, group, conn.limit.as_deref())?;
    if selected.is_empty() {
        return Err(Diagnostic::plain(format!(
            "--limit `{}` leaves no host of group `{group}`",
            conn.limit.as_deref().unwrap_or_default()
        ))
        .into());
    }
    let overrides = crate::transport::TargetOverrides {
        escalate: conn.become_ || conn.become_user.is_some(),
        become_user: conn.become_user.clone(),
    };
    // Without a release (rollback to each host's previous, listings) the health check is
    // rendered per release later; `release_id` must still exist for the settings to render.
    let mut extra = extra.clone();
    extra.insert("release_id".into(), release.unwrap_or_default().into());
    let mut apps = Vec::new();
    let mut lb_groups = Vec::new();
    for &h in &selected {
        let s = settings::resolve(inv, h, &extra)?;
        if !s.balancer_group.is_empty() && !lb_groups.contains(&s.balancer_group) {
            lb_groups.push(s.balancer_group.clone());
        }
        apps.push((Target::from_host(&inv.hosts[h], &overrides)?, s, h));
    }
    let mut balancers = Vec::new();
    let mut seen = Vec::new();
    for lbg in &lb_groups {
        if let Some(gi) = inv.group_index(lbg) {
            for h in inv.hosts_of_group(gi) {
                if !seen.contains(&h) {
                    seen.push(h);
                    balancers.push(Target::from_host(&inv.hosts[h], &overrides)?);
                }
            }
        }
    }
    Ok(Resolved {
        apps,
        balancers,
        lock_host: Target::from_host(&inv.hosts[first], &overrides)?,
    })
}

/// Opens one connection per distinct host; the first unreachable host stops everything.
async fn connect_all(targets: Vec<Target>, options: &ConnectOptions) -> Result<BTreeMap<String, Node>, StepError> {
    let mut unique: Vec<Target> = Vec::new();
    for t in targets {
        if !unique.iter().any(|u| u.name == t.name) {
            unique.push(t);
        }
    }
    let opened = join_all(unique.into_iter().map(|t| async move {
        let r = Connection::open(&t, options).await;
        (t, r)
    }))
    .await;
    let mut nodes = BTreeMap::new();
    let mut first_error = None;
    for (t, r) in opened {
        match r {
            Ok(conn) => {
                nodes.insert(
                    t.name.clone(),
                    Node {
                        name: t.name.clone(),
                        conn: Arc::new(conn),
                        escalate: t.escalate.clone(),
                    },
                );
            }
            Err(error) => {
                first_error.get_or_insert(StepError::Transport {
                    host: t.name.clone(),
                    step: "connect".into(),
                    error,
                });
            }
        }
    }
    match first_error {
        Some(e) => {
            close_all(nodes).await;
            Err(e)
        }
        None => Ok(nodes),
    }
}

async fn close_all(nodes: BTreeMap<String, Node>) {
    for (_, node) in nodes {
        if let Ok(conn) = Arc::try_unwrap(node.conn) {
            conn.close().await;
        }
    }
}

fn print_error(message: &str) {
    eprintln!("{}: {message}", Style::stderr().red("error"));
}

fn unreachable_message(e: &StepError) -> String {
    let mut m = format!("{}; nothing was changed", e.details());
    if let StepError::Transport { error, .. } = e
        && let Some(h) = error.hint()
    {
        m.push_str(&format!("\n  hint: {h}"));
    }
    m
}

/// The common shape of deploy and rollback: resolve, connect, lock, run, unlock.
fn run_fleet(
    fleet: FleetOpts,
    release: Option<String>,
    goal: impl FnOnce(&tokio::runtime::Runtime) -> Result<(Goal, String), CliError>,
) -> Result<Code, CliError> {
    let started = Instant::now();
    let batch = BatchSize::parse(&fleet.batch).ok_or_else(|| {
        Diagnostic::plain(format!("--batch `{}` is not a host count or percentage", fleet.batch))
            .with_hint("use a number of hosts (`2`) or a percentage (`25%`)")
    })?;
    let inv = Arc::new(fleet.target.inventory.load()?);
    let extra = super::run::extra_vars(&fleet.extra_vars)?;
    let resolved = resolve(
        &inv,
        &fleet.target.connection,
        &fleet.target.group,
        &extra,
        release.as_deref(),
    )?;
    // Health checks for rollback targets are rendered with their own release id.
    let health_of =
        |h: usize, fallback: Option<crate::release::settings::HealthCheck>| -> crate::release::deploy::HealthOf {
            let inv = inv.clone();
            let extra = extra.clone();
            Box::new(move |id: &str| {
                let mut extra = extra.clone();
                extra.insert("release_id".into(), id.into());
                settings::resolve(&inv, h, &extra).map_or_else(|_| fallback.clone(), |s| s.health)
            })
        };
    let options = fleet.target.connection.connect_options()?;
    raise_fd_limit();
    let rt = runtime()?;
    let (goal, reason) = goal(&rt)?;
    let reporter = Reporter::new(fleet.target.format);
    let command = match goal {
        Goal::Deploy { .. } => "deploy",
        Goal::Rollback { .. } => "rollback",
    };
    let me = lock::Me::current();
    let code = rt.block_on(async {
        let cancel = crate::fleet::interrupt_token();
        let mut all: Vec<Target> = resolved.apps.iter().map(|(t, _, _)| t.clone()).collect();
        all.extend(resolved.balancers.iter().cloned());
        all.push(resolved.lock_host.clone());
        let nodes = match connect_all(all, &options).await {
            Ok(n) => n,
            Err(e) => {
                reporter.error(&unreachable_message(&e));
                return Code::Unreachable;
            }
        };
        let node = |name: &str| nodes.get(name).cloned();
        let (Some(lock_node), Some(apps), Some(lbs)) = (
            node(&resolved.lock_host.name),
            resolved
                .apps
                .iter()
                .map(|(t, s, h)| {
                    node(&t.name).map(|n| AppHost {
                        node: n,
                        settings: s.clone(),
                        health_of: health_of(*h, s.health.clone()),
                    })
                })
                .collect::<Option<Vec<_>>>(),
            resolved
                .balancers
                .iter()
                .map(|t| node(&t.name))
                .collect::<Option<Vec<_>>>(),
        ) else {
            reporter.error("internal: a connection went missing");
            return Code::Internal;
        };
        if lbs.is_empty() {
            reporter.warn("no balancer hosts: hosts are switched without draining (set `deploy_balancer_group`)");
        }
        let lease = if fleet.check {
            if let Ok(Some(held)) = lock::show(&lock_node, &fleet.target.group).await {
                reporter.warn(&format!("lock {}", held.describe()));
            }
            None
        } else {
            let req = Request {
                name: fleet.target.group.clone(),
                command: command.to_string(),
                reason: reason.clone(),
                ttl: Duration::from_secs(fleet.lock_ttl),
                wait: Duration::from_secs(fleet.lock_wait),
            };
            match lock::acquire(&lock_node, &req, &cancel).await {
                Ok(lease) => {
                    if let Some(old) = &lease.replaced {
                        reporter.warn(&format!("took over a stale lock: {}", old.describe()));
                    }
                    Some(lease)
                }
                Err(LockError::Held(info)) => {
                    reporter.error(&format!(
                        "lock {}\n  hint: wait with `--lock-wait SECONDS`; if that run is gone, `tend lock break --group {}`",
                        info.describe(),
                        fleet.target.group
                    ));
                    close_all(nodes).await;
                    return Code::Locked;
                }
                Err(LockError::Interrupted) => {
                    close_all(nodes).await;
                    return Code::Interrupted;
                }
                Err(LockError::Step(e)) => {
                    reporter.error(&format!("cannot take the lock: {}", e.details()));
                    close_all(nodes).await;
                    return Code::HostFailed;
                }
            }
        };
        reporter.note(&format!(
            "{command} {reason} to {} host(s) of `{}`{}{}",
            apps.len(),
            fleet.target.group,
            if fleet.check { " (check mode)" } else { "" },
            lease
                .as_ref()
                .map(|l| format!(", lock held on {} as {}@{}", l.host(), me.user, me.control_host))
                .unwrap_or_default()
        ));
        let run = Run {
            hosts: apps,
            balancers: Balancers { nodes: lbs },
            goal,
            options: Options {
                group: fleet.target.group.clone(),
                batch,
                keep_partial: fleet.keep_partial,
                check: fleet.check,
                forks: fleet.target.connection.forks as usize,
                by: format!("{}@{}", me.user, me.control_host),
            },
            lease: lease.as_ref(),
            reporter: &reporter,
            cancel: cancel.clone(),
        };
        let outcome = run.execute().await;
        if let Some(lease) = lease
            && let Err(e) = lease.release().await
        {
            reporter.warn(&format!("could not release the lock (it expires by itself): {}", e.details()));
        }
        close_all(nodes).await;
        if fleet.target.format == Format::Human {
            let r = &outcome.record;
            let hosts = r["hosts"].as_array().map_or(0, Vec::len);
            let changed = r["hosts"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|h| h["status"] != "unchanged").count());
            let line = format!(
                "{command}: {} — {changed} of {hosts} host(s) changed in {:.1}s",
                r["outcome"].as_str().unwrap_or_default(),
                started.elapsed().as_secs_f64()
            );
            let style = Style::stderr();
            eprintln!(
                "{}",
                if outcome.code == Code::Ok {
                    style.green(&line)
                } else {
                    style.red(&line)
                }
            );
        }
        outcome.code
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}

/// Runs `tend releases`.
pub fn releases(args: ReleasesArgs) -> Result<Code, CliError> {
    let args = args.group;
    let inv = args.inventory.load()?;
    let resolved = resolve(&inv, &args.connection, &args.group, &Map::new(), None)?;
    let options = args.connection.connect_options()?;
    raise_fd_limit();
    let rt = runtime()?;
    let code = rt.block_on(async {
        let mut all: Vec<Target> = resolved.apps.iter().map(|(t, _, _)| t.clone()).collect();
        all.extend(resolved.balancers.iter().cloned());
        let nodes = match connect_all(all, &options).await {
            Ok(n) => n,
            Err(e) => {
                print_error(&unreachable_message(&e));
                return Code::Unreachable;
            }
        };
        let states = join_all(resolved.apps.iter().map(|(t, s, _)| {
            let node = nodes.get(&t.name).cloned();
            async move {
                match node {
                    Some(n) => remote::inspect(n.on(), s).await.map_err(|e| e.details()),
                    None => Err("not connected".to_string()),
                }
            }
        }))
        .await;
        // Upstream state of each app server on each balancer.
        let lbs: Vec<Node> = resolved
            .balancers
            .iter()
            .filter_map(|t| nodes.get(&t.name).cloned())
            .collect();
        let hosts: Vec<(&str, &crate::release::settings::UpstreamEntry)> = resolved
            .apps
            .iter()
            .filter_map(|(t, s, _)| s.upstream.as_ref().map(|u| (t.name.as_str(), u)))
            .collect();
        let mut upstream: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in balancer::placements(&lbs, &hosts).await {
            upstream.entry(p.host).or_default().push(match p.state {
                Ok(Some(ServerState::Up)) => "up".into(),
                Ok(Some(ServerState::Drained)) => format!("drained on {}", p.balancer),
                Ok(Some(ServerState::Down)) => format!("down on {}", p.balancer),
                Ok(None) | Err(_) => format!("missing on {}", p.balancer),
            });
        }
        drop(lbs);
        close_all(nodes).await;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for s in states.iter().flatten() {
            *counts.entry(s.current.clone().unwrap_or_default()).or_default() += 1;
        }
        let majority = counts.iter().max_by_key(|(_, n)| **n).map(|(c, _)| c.clone());
        let mut code = Code::Ok;
        let mut rows = Vec::new();
        for ((t, _, _), state) in resolved.apps.iter().zip(&states) {
            let up = upstream.get(&t.name).map(|v| {
                let mut v = v.clone();
                v.dedup();
                if v.iter().all(|s| s == "up") {
                    "up".to_string()
                } else {
                    v.join(", ")
                }
            });
            match state {
                Ok(s) => {
                    let differs = majority
                        .as_ref()
                        .is_some_and(|m| s.current.clone().unwrap_or_default() != *m);
                    rows.push(json!({
                        "host": t.name,
                        "current": s.current,
                        "verified": s.active.is_some() && s.active == s.current,
                        "upstream": up,
                        "releases": s.releases,
                        "other_dirs": s.foreign,
                        "differs": differs,
                    }));
                }
                Err(e) => {
                    code = Code::HostFailed;
                    rows.push(json!({"host": t.name, "error": e}));
                }
            }
        }
        match args.format {
            Format::Json => {
                for r in &rows {
                    println!("{r}");
                }
            }
            Format::Human => print_table(&rows, majority.as_deref()),
        }
        code
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}

fn print_table(rows: &[Json], majority: Option<&str>) {
    let style = Style::stdout();
    let text = |v: &Json| v.as_str().unwrap_or("-").to_string();
    let mut lines = vec![[
        "HOST".to_string(),
        "CURRENT".into(),
        "VERIFIED".into(),
        "UPSTREAM".into(),
        "KEPT (oldest first)".into(),
    ]];
    for r in rows {
        if let Some(e) = r.get("error") {
            lines.push([text(&r["host"]), "?".into(), "?".into(), "?".into(), text(e)]);
            continue;
        }
        let kept: Vec<String> = r["releases"]
            .as_array()
            .map(|a| a.iter().map(|x| text(&x["id"])).collect())
            .unwrap_or_default();
        lines.push([
            text(&r["host"]),
            text(&r["current"]),
            if r["verified"] == true {
                "yes".into()
            } else {
                "no".into()
            },
            text(&r["upstream"]),
            kept.join(" "),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (n, l) in lines.iter().enumerate() {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        let differs = n > 0 && rows.get(n - 1).is_some_and(|r| r["differs"] == true);
        if n == 0 {
            println!("{}", style.bold(&line));
        } else if differs {
            println!("{}  {}", style.yellow(&line), style.yellow("← differs"));
        } else {
            println!("{line}");
        }
    }
    let differing: Vec<String> = rows
        .iter()
        .filter(|r| r["differs"] == true)
        .map(|r| text(&r["host"]))
        .collect();
    if !differing.is_empty() {
        eprintln!(
            "{} host(s) differ from the release most hosts run ({}): {}",
            differing.len(),
            majority.unwrap_or("-"),
            differing.join(" ")
        );
    }
}

/// Lock subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LockCommand {
    /// Show who holds the lock of a group
    Show(LockArgs),
    /// Remove the lock of a group, whoever holds it (use when its holder is gone)
    Break(LockArgs),
}

/// Which lock.
#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub group: GroupOpts,
}

/// Runs `tend lock show|break`.
pub fn lock_command(cmd: LockCommand) -> Result<Code, CliError> {
    let (args, breaking) = match cmd {
        LockCommand::Show(a) => (a.group, false),
        LockCommand::Break(a) => (a.group, true),
    };
    let inv = args.inventory.load()?;
    let limitless = ConnectionOpts {
        limit: None,
        ..args.connection.clone()
    };
    let resolved = resolve(&inv, &limitless, &args.group, &Map::new(), None)?;
    let options = args.connection.connect_options()?;
    let rt = runtime()?;
    let code = rt.block_on(async {
        let nodes = match connect_all(vec![resolved.lock_host.clone()], &options).await {
            Ok(n) => n,
            Err(e) => {
                print_error(&unreachable_message(&e));
                return Code::Unreachable;
            }
        };
        let Some(node) = nodes.get(&resolved.lock_host.name).cloned() else {
            return Code::Internal;
        };
        let result = if breaking {
            lock::break_lock(&node, &args.group).await
        } else {
            lock::show(&node, &args.group).await
        };
        drop(node);
        close_all(nodes).await;
        match result {
            Err(e) => {
                print_error(&e.details());
                Code::HostFailed
            }
            Ok(info) => {
                match args.format {
                    Format::Json => println!(
                        "{}",
                        json!({"lock": args.group, "host": resolved.lock_host.name, "held": info.is_some(), "broken": breaking && info.is_some(), "holder": info})
                    ),
                    Format::Human => match (&info, breaking) {
                        (None, _) => println!(
                            "lock `{}` on {} is free",
                            args.group, resolved.lock_host.name
                        ),
                        (Some(i), false) => println!("lock {} (file {}/{}.lock on {})", i.describe(), lock::LOCK_DIR, args.group, i.host),
                        (Some(i), true) => println!("broke lock `{}`, held by {}", args.group, i.holder()),
                    },
                }
                Code::Ok
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}
