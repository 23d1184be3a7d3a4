//! `tend deploy`, `tend rollback`, `tend releases` and `tend lock`: release deploys to an app
//! group, as operations on the operations core ([`crate::ops`]).

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::inventory::Inventory;
use crate::migrate::Overrides;
use crate::ops::{self, LockRequest, Outcome, Request, Session, lock};
use crate::output::{Column, Event, Events, HostResult, Layout, Status};
use crate::release::artifact::{self, Artifact};
use crate::release::balancer::{self, ServerState};
use crate::release::deploy::{AppHost, BatchSize, Goal, HealthOf, Options, Run};
use crate::release::remote;
use crate::release::settings::{self, HostSettings};
use crate::settings::Variables;
use crate::transport::{Host, Target};
use clap::Args;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    #[arg(allow_negative_numbers = true, long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
    /// Lease length of the lock; it is renewed while the run lasts
    #[arg(allow_negative_numbers = true, long, default_value_t = 120, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(10..))]
    pub lock_ttl: u64,
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
///   4. with --load-gate SCENARIO, the first batch, once it serves again, gets a short load at a
///      fixed rate (--load-gate-rate on each of its hosts, at the health URL's host and port, for
///      --load-gate-duration, after a 2 s warm-up that is not measured); a broken threshold
///      fails the batch as a failed health check does
///   5. a batch that fails its health or load gate is switched back, and so is every earlier
///      batch unless `--keep-partial`
///   6. keep `deploy_keep_releases` releases, log the deploy on each host
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
///   tend deploy --artifact shop.war --load-gate loadtests/shop-browse.yaml --load-gate-threshold 'p95 < 500ms'
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
    /// Apply pending schema migrations (from DIR, else `migrate_dir`) on the database primary
    /// before any host is switched; the release's manifest keeps the schema version
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub migrate: Option<String>,
    /// After the first batch passes its health gate and serves again, run this load-test
    /// scenario against each of its hosts (at the health URL's host and port) and switch every
    /// host back when one of its thresholds breaks (`tend loadtest` explains scenarios)
    #[arg(long, value_name = "SCENARIO")]
    pub load_gate: Option<PathBuf>,
    /// --load-gate: journeys started per second on each host of the first batch
    #[arg(long, default_value = "10/s", value_name = "N/s", requires = "load_gate")]
    pub load_gate_rate: String,
    /// --load-gate: how long
    #[arg(long, default_value = "15s", value_name = "TIME", requires = "load_gate")]
    pub load_gate_duration: String,
    /// --load-gate: a threshold, added to the scenario's (`p95 < 300ms`); repeatable
    #[arg(long = "load-gate-threshold", value_name = "EXPR", requires = "load_gate")]
    pub load_gate_thresholds: Vec<String>,
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
    /// Go back to a release deployed with an older schema version than the current one
    /// (refused without it: the old release may not work with the newer schema)
    #[arg(long)]
    pub force: bool,
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
    #[command(flatten)]
    pub output: OutputOpts,
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
    let local = std::path::Path::new(&args.artifact);
    if !artifact::is_url(&args.artifact) && !local.exists() {
        return Err(
            Diagnostic::plain(format!("--artifact `{}`: no such file", args.artifact))
                .with_hint("give a local file or an http(s) URL")
                .into(),
        );
    }
    if !artifact::is_url(&args.artifact) && !local.is_file() {
        return Err(Diagnostic::plain(format!(
            "--artifact `{}` is {}, not a file",
            args.artifact,
            if local.is_dir() {
                "a directory"
            } else {
                "a device or a pipe"
            }
        ))
        .with_hint("give the release's war, zip or tarball")
        .into());
    }
    let source = args.artifact.clone();
    let reason = format!("release {id}");
    let (mut plan, batch) = Plan::new(&args.fleet, &id)?;
    if let Some(path) = &args.load_gate {
        plan.load_gate = Some(super::loadtest::gate(
            path,
            &args.load_gate_rate,
            &args.load_gate_duration,
            &args.load_gate_thresholds,
        )?);
    }
    if let Some(dir) = &args.migrate {
        let over = Overrides {
            dir: (!dir.is_empty()).then(|| PathBuf::from(dir)),
            database: None,
        };
        let t = &args.fleet.target;
        plan.migrate = Some(super::migrate::resolve_with(
            &t.inventory,
            &t.connection,
            ("db_primary", None),
            over,
            true,
        )?);
    }
    block_on(async move {
        let artifact = match (artifact::is_url(&source), expected) {
            (true, Some(sum)) => Artifact::remote(&source, sum),
            (_, expected) => Artifact::load(&source, expected.as_deref())
                .await
                .map_err(|e| CliError::Input(Diagnostic::plain(e.to_string())))?,
        };
        plan.check_artifact(&artifact)?;
        Ok(plan.run(args.fleet, batch, Goal::Deploy { id, artifact }, reason).await)
    })?
}

/// Runs `tend rollback`.
pub fn rollback(args: RollbackArgs) -> Result<Code, CliError> {
    if let Some(to) = &args.to {
        settings::check_release_id(to)?;
    }
    let reason = match &args.to {
        Some(t) => format!("rollback to {t}"),
        None => "rollback to the previous release".to_string(),
    };
    let (mut plan, batch) = Plan::new(&args.fleet, args.to.as_deref().unwrap_or_default())?;
    plan.force = args.force;
    block_on(plan.run(args.fleet, batch, Goal::Rollback { to: args.to }, reason))
}

/// A deploy's targets, resolved and checked before anything connects.
struct Plan {
    /// The app hosts (group ∩ limit) with their settings and inventory index.
    apps: Vec<(Target, HostSettings, usize)>,
    balancers: Vec<Target>,
    lock_host: Target,
    /// Every host's variables, for health checks rendered per release id.
    vars: Arc<(Inventory, Variables)>,
    options: crate::transport::ConnectOptions,
    /// `deploy --migrate`: the database primary, replicas and migrations.
    migrate: Option<super::migrate::Resolved>,
    /// `rollback --force`.
    force: bool,
    /// `deploy --load-gate`.
    load_gate: Option<crate::loadtest::gate::Gate>,
}

impl Plan {
    /// Checks the flags, then resolves the group's hosts and settings.
    fn new(fleet: &FleetOpts, release: &str) -> Result<(Self, BatchSize), CliError> {
        let batch = BatchSize::parse(&fleet.batch).ok_or_else(|| {
            Diagnostic::plain(format!("--batch `{}` is not a host count or percentage", fleet.batch))
                .with_hint("use a number of hosts (`2`) or a percentage (`25%`)")
        })?;
        Ok((resolve(&fleet.target, release, true)?, batch))
    }

    /// A local artifact the hosts are to unpack must be an archive: an HTML error page or a
    /// Git LFS pointer saved as `shop.war` is refused before any host is touched.
    fn check_artifact(&self, artifact: &Artifact) -> Result<(), CliError> {
        let Some(file) = &artifact.file else {
            return Ok(());
        };
        let unpacked = self.apps.iter().any(|(_, s, _)| s.unpack == settings::Unpack::Exploded);
        if file.size == 0 {
            return Err(Diagnostic::plain(format!("--artifact `{}` is empty", artifact.source))
                .with_hint("build the release again; an interrupted build or download leaves an empty file")
                .into());
        }
        if unpacked && artifact.kind == artifact::Kind::File {
            return Err(Diagnostic::plain(format!(
                "--artifact `{}` is neither a zip/war nor a tarball",
                artifact.source
            ))
            .with_hint("build the release archive again, or set `deploy_unpack: archive` to deploy the file as it is")
            .into());
        }
        Ok(())
    }

    /// The common shape of deploy and rollback on the operations core.
    async fn run(self, fleet: FleetOpts, batch: BatchSize, goal: Goal, reason: String) -> Code {
        let command = match goal {
            Goal::Deploy { .. } => "deploy",
            Goal::Rollback { .. } => "rollback",
        };
        let group = fleet.target.group.clone();
        let events = Events::start(command, self.apps.len(), &fleet.target.output.settings(Layout::Steps));
        let ops_fleet = fleet.target.connection.fleet(self.options.clone());
        let request = Request {
            command: command.into(),
            reason: reason.clone(),
            lock: Some(LockRequest {
                name: group.clone(),
                host: self.lock_host.clone(),
                ttl: Duration::from_secs(fleet.lock_ttl),
                wait: Duration::from_secs(fleet.lock_wait),
            }),
            check: fleet.check,
            forks: fleet.target.connection.forks as usize,
            optional: self.migrate.as_ref().map(|m| m.optional()).unwrap_or_default(),
        };
        let mut targets: Vec<Target> = self.apps.iter().map(|(t, _, _)| t.clone()).collect();
        targets.extend(self.balancers.iter().cloned());
        if let Some(m) = &self.migrate {
            targets.extend(m.targets());
            m.secrets(&events);
        }
        let me = lock::Me::current();
        let check = fleet.check;
        let keep_partial = fleet.keep_partial;
        ops::run(&events, &ops_fleet, request, targets, async |session: &Session<'_>| {
            let (Some(hosts), Some(balancers)) = (self.app_hosts(session), self.hosts(session, &self.balancers)) else {
                session
                    .events()
                    .error(crate::output::ErrorEvent::new("internal: a connection went missing"));
                return Outcome {
                    code: Code::Internal,
                    record: None,
                };
            };
            if balancers.is_empty() {
                session
                    .events()
                    .warn("no balancer hosts: hosts are switched without draining (set `deploy_balancer_group`)");
            }
            let what = if reason.starts_with(command) {
                reason.clone()
            } else {
                format!("{command} {reason}")
            };
            session.events().note(format!(
                "{what} on {} host(s) of `{group}`{}{}",
                hosts.len(),
                if check { " (check mode)" } else { "" },
                session
                    .lease()
                    .map(|l| format!(", lock held on {} as {}@{}", l.host(), me.user, me.control_host))
                    .unwrap_or_default()
            ));
            let schema = match &self.migrate {
                Some(_) if check => {
                    session
                        .events()
                        .note("check mode: migrations are not applied (`tend migrate plan` shows them)");
                    None
                }
                Some(m) => match super::migrate::for_deploy(session, m, &reason).await {
                    Ok(version) => version,
                    Err(abort) => {
                        let mut error = *abort.error;
                        error.message = format!("{}; no host was changed", error.message);
                        session.events().error(error);
                        return Outcome {
                            code: abort.code,
                            record: None,
                        };
                    }
                },
                None => None,
            };
            Run {
                hosts,
                balancers,
                goal,
                options: Options {
                    group: group.clone(),
                    batch,
                    keep_partial,
                    check,
                    by: format!("{}@{}", me.user, me.control_host),
                    schema,
                    force: self.force,
                    load_gate: self.load_gate.clone(),
                },
                session,
            }
            .execute()
            .await
        })
        .await
    }

    fn hosts(&self, session: &Session<'_>, targets: &[Target]) -> Option<Vec<Host>> {
        targets.iter().map(|t| session.host(&t.name).cloned()).collect()
    }

    fn app_hosts(&self, session: &Session<'_>) -> Option<Vec<AppHost>> {
        self.apps
            .iter()
            .map(|(t, s, h)| {
                session.host(&t.name).map(|node| AppHost {
                    node: node.clone(),
                    settings: s.clone(),
                    health_of: health_of(self.vars.clone(), *h, s.health.clone()),
                })
            })
            .collect()
    }
}

/// A host's health check for any release id (rollback targets have their own).
fn health_of(vars: Arc<(Inventory, Variables)>, h: usize, fallback: Option<settings::HealthCheck>) -> HealthOf {
    Box::new(move |id: &str| {
        let (inv, vars) = &*vars;
        settings::resolve(vars, inv, h, id).map_or_else(|_| fallback.clone(), |s| s.health)
    })
}

/// The app hosts (group ∩ limit, or the whole group) with their settings, the balancer hosts and
/// the lock host; every setting and connection variable is checked here.
fn resolve(opts: &GroupOpts, release: &str, limited: bool) -> Result<Plan, CliError> {
    let (inv, vars) = opts.inventory.load()?;
    let limit = if limited {
        opts.connection.limit.as_deref()
    } else {
        None
    };
    let group = ops::group(&inv, &opts.group, limit)?;
    let conn = &opts.connection;
    let mut apps = Vec::new();
    let mut lb_groups = Vec::new();
    for &h in &group.hosts {
        let s = settings::resolve(&vars, &inv, h, release)?;
        if !s.balancer_group.is_empty() && !lb_groups.contains(&s.balancer_group) {
            lb_groups.push(s.balancer_group.clone());
        }
        apps.push((conn.target(&inv, &vars, h)?, s, h));
    }
    let mut balancers = Vec::new();
    let mut seen = Vec::new();
    for lbg in &lb_groups {
        if let Some(gi) = inv.group_index(lbg) {
            for h in inv.hosts_of_group(gi) {
                if !seen.contains(&h) {
                    seen.push(h);
                    balancers.push(conn.target(&inv, &vars, h)?);
                }
            }
        }
    }
    let lock_host = conn.target(&inv, &vars, group.lock_host)?;
    Ok(Plan {
        apps,
        balancers,
        lock_host,
        vars: Arc::new((inv, vars)),
        options: conn.connect_options()?,
        migrate: None,
        force: false,
        load_gate: None,
    })
}

/// Runs `tend releases`.
pub fn releases(args: ReleasesArgs) -> Result<Code, CliError> {
    let args = args.group;
    let plan = resolve(&args, "", true)?;
    let settings = args.output.settings(Layout::Listing);
    block_on(async move {
        let events = Events::start("releases", plan.apps.len(), &settings);
        let fleet = args.connection.fleet(plan.options.clone());
        let request = Request {
            command: "releases".into(),
            reason: String::new(),
            lock: None,
            check: false,
            forks: args.connection.forks as usize,
            optional: Vec::new(),
        };
        let mut targets: Vec<Target> = plan.apps.iter().map(|(t, _, _)| t.clone()).collect();
        targets.extend(plan.balancers.iter().cloned());
        ops::run(&events, &fleet, request, targets, async |session: &Session<'_>| {
            list_releases(&plan, session).await
        })
        .await
    })
}

async fn list_releases(plan: &Plan, session: &Session<'_>) -> Outcome {
    let states = session
        .each(&plan.apps, |(t, s, _)| async move {
            match session.host(&t.name) {
                Some(n) => remote::inspect(n, s).await,
                None => Err(crate::transport::StepError::remote(
                    &t.name,
                    "inspect",
                    crate::transport::Failure::message("not connected", "inspect"),
                )),
            }
        })
        .await;
    // Upstream state of each app server on each balancer.
    let lbs: Vec<Host> = plan.hosts(session, &plan.balancers).unwrap_or_default();
    let hosts: Vec<(&str, &settings::UpstreamEntry)> = plan
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
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in states.iter().flatten() {
        *counts.entry(s.current.clone().unwrap_or_default()).or_default() += 1;
    }
    let majority = counts.iter().max_by_key(|(_, n)| **n).map(|(c, _)| c.clone());
    let mut code = Code::Ok;
    let mut rows = Vec::new();
    for ((t, _, _), state) in plan.apps.iter().zip(&states) {
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
                session.touch(&t.name);
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
                session.failed(e);
                rows.push(json!({"host": t.name, "error": e.message()}));
            }
        }
    }
    let differing: Vec<String> = rows
        .iter()
        .filter(|r| r["differs"] == true)
        .filter_map(|r| r["host"].as_str().map(str::to_string))
        .collect();
    session.events().emit(Event::Table {
        table: "releases".into(),
        columns: vec![
            Column::new("host", "HOST"),
            Column::new("current", "CURRENT"),
            Column::new("verified", "VERIFIED"),
            Column::new("upstream", "UPSTREAM"),
            Column::new("releases", "KEPT (oldest first)"),
        ],
        rows,
        mark: Some(("differs".into(), "← differs".into())),
    });
    if !differing.is_empty() {
        session.events().warn(format!(
            "{} host(s) differ from the release most hosts run ({}): {}",
            differing.len(),
            majority.as_deref().unwrap_or("-"),
            differing.join(" ")
        ));
    }
    Outcome { code, record: None }
}

/// Lock subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LockCommand {
    /// Show who holds the lock of a group (or, with --db, of the database cluster)
    Show(LockArgs),
    /// Remove the lock of a group (or, with --db, of the database cluster), whoever holds it
    /// (use when its holder is gone)
    Break(LockArgs),
}

/// Which lock.
#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub group: GroupOpts,
    /// The database cluster's lock instead (`db`: backups, restores, rebuilds and failovers
    /// take it; it lives on the balancer, else on the `db_primary` host)
    #[arg(long)]
    pub db: bool,
}

/// Runs `tend lock show|break`.
pub fn lock_command(cmd: LockCommand) -> Result<Code, CliError> {
    let ((args, db), breaking) = match cmd {
        LockCommand::Show(a) => ((a.group, a.db), false),
        LockCommand::Break(a) => ((a.group, a.db), true),
    };
    let (name, lock_host) = if db {
        let (inv, vars) = args.inventory.load()?;
        let primary = inv
            .group_index("db_primary")
            .and_then(|g| inv.hosts_of_group(g).first().copied())
            .ok_or_else(|| Diagnostic::plain("the inventory has no `db_primary` host: there is no database lock"))?;
        let primary = args.connection.target(&inv, &vars, primary)?;
        let lb = args.connection.balancer(&inv, &vars)?;
        (
            super::backup::DB_LOCK.to_string(),
            super::backup::db_lock_host(lb.as_ref().map(|(t, _)| t), &primary),
        )
    } else {
        (args.group.clone(), resolve(&args, "", false)?.lock_host)
    };
    let options = args.connection.connect_options()?;
    let task = if breaking { "lock break" } else { "lock show" };
    let settings = args.output.settings(Layout::Listing);
    block_on(async move {
        let events = Events::start(task, 1, &settings);
        let fleet = args.connection.fleet(options);
        let request = Request {
            command: task.into(),
            reason: String::new(),
            lock: None,
            check: false,
            forks: 1,
            optional: Vec::new(),
        };
        ops::run(&events, &fleet, request, vec![lock_host.clone()], async |session: &Session<'_>| {
            let Some(host) = session.host(&lock_host.name) else {
                return Outcome {
                    code: Code::Internal,
                    record: None,
                };
            };
            let found = if breaking {
                lock::break_lock(host, &name).await
            } else {
                lock::show(host, &name).await
            };
            let info = match found {
                Ok(info) => info,
                Err(e) => {
                    session.result(task, HostResult::from_step_error(&e));
                    return Outcome {
                        code: Code::HostFailed,
                        record: None,
                    };
                }
            };
            let held = info.is_some();
            let mut r = HostResult::new(host.name(), Status::done(breaking && held));
            r.msg = Some(match (&info, breaking) {
                (None, _) => format!("lock `{name}` on {} is free", host.name()),
                (Some(i), false) => format!("lock {} (file {}/{name}.lock on {})", i.describe(), lock::LOCK_DIR, i.host),
                (Some(i), true) => format!("broke lock `{name}`, held by {}", i.holder()),
            });
            r.data = Some(json!({"lock": name, "host": host.name(), "held": held, "broken": breaking && held, "holder": info}));
            session.result(task, r);
            Outcome {
                code: Code::Ok,
                record: None,
            }
        })
        .await
    })
}
