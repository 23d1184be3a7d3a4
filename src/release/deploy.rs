//! The rolling deploy and rollback: stage everywhere first, then batch by batch drain, switch,
//! restart, health-gate and put back; a batch that fails its gate is switched back and, unless
//! partial deploys are allowed, so is every batch before it.

use super::artifact::Artifact;
use super::balancer::{self, Applied, ServerState};
use super::health::{self, Unhealthy};
use super::lock::Lease;
use super::remote::{self, HostState, Staged};
use super::settings::{HealthCheck, HostSettings};
use super::{Node, StepError};
use crate::exit::Code;
use crate::output::{Format, Style};
use futures_util::future::join_all;
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The health check of a host for a given release id (the expected body may name it).
pub type HealthOf = Box<dyn Fn(&str) -> Option<HealthCheck> + Send + Sync>;

/// An app host taking part in a deploy.
pub struct AppHost {
    /// Its connection.
    pub node: Node,
    /// Its settings (rendered for the release being deployed).
    pub settings: HostSettings,
    /// Its health check for any release id (rollback targets included).
    pub health_of: HealthOf,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Goal {
    /// Put a new release on every host.
    Deploy {
        /// Release id.
        id: String,
        /// The artifact.
        artifact: Artifact,
    },
    /// Go back to the previous release, or to a named one.
    Rollback {
        /// The release to return to (default: each host's previous).
        to: Option<String>,
    },
}

/// How many hosts switch at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// A number of hosts.
    Count(usize),
    /// A percentage of the hosts (at least one).
    Percent(u32),
}

impl BatchSize {
    /// Parses `N` or `N%`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.strip_suffix('%') {
            Some(p) => p.parse().ok().filter(|p| (1..=100).contains(p)).map(BatchSize::Percent),
            None => text.parse().ok().filter(|n| *n >= 1).map(BatchSize::Count),
        }
    }

    fn size(self, hosts: usize) -> usize {
        match self {
            BatchSize::Count(n) => n,
            BatchSize::Percent(p) => (hosts * p as usize).div_ceil(100),
        }
        .max(1)
    }
}

/// Options of one deploy or rollback run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target group (lock name, log).
    pub group: String,
    /// Batch size.
    pub batch: BatchSize,
    /// Keep earlier batches on the new release when a later batch fails.
    pub keep_partial: bool,
    /// Only report what would happen.
    pub check: bool,
    /// Hosts staged at once.
    pub forks: usize,
    /// `user@control-host`, for manifests and logs.
    pub by: String,
}

/// Prints progress: lines on stderr for people, JSON Lines on stdout for CI.
#[derive(Debug)]
pub struct Reporter {
    format: Format,
    style: Style,
}

impl Reporter {
    /// A reporter in `format`.
    pub fn new(format: Format) -> Self {
        Reporter {
            format,
            style: Style::stderr(),
        }
    }

    /// One step on one host.
    pub fn step(&self, host: &str, step: &str, ok: bool, detail: &str) {
        match self.format {
            Format::Json => emit(
                "deploy_step",
                json!({"host": host, "step": step, "ok": ok, "detail": detail}),
            ),
            Format::Human => {
                let word = format!("{step:<10}");
                let word = if ok {
                    self.style.green(&word)
                } else {
                    self.style.red(&word)
                };
                eprintln!("  {host:<12} {word} {detail}");
            }
        }
    }

    /// A line about the whole run.
    pub fn note(&self, text: &str) {
        match self.format {
            Format::Json => emit("deploy_note", json!({"message": text})),
            Format::Human => eprintln!("{}", self.style.bold(text)),
        }
    }

    /// A warning about the whole run.
    pub fn warn(&self, text: &str) {
        match self.format {
            Format::Json => emit("deploy_warning", json!({"message": text})),
            Format::Human => eprintln!("{}: {text}", self.style.yellow("warning")),
        }
    }

    /// Why the run stopped: always on stderr (CI logs are read by people too), and as a
    /// `deploy_error` event on stdout with `--format json`.
    pub fn error(&self, text: &str) {
        eprintln!("{}: {text}", self.style.red("error"));
        if self.format == Format::Json {
            emit("deploy_error", json!({"message": text}));
        }
    }

    /// The final record.
    pub fn record(&self, record: &Json) {
        if self.format == Format::Json {
            let mut r = record.clone();
            if let Some(m) = r.as_object_mut() {
                m.insert("event".into(), "deploy".into());
            }
            println!("{r}");
        }
    }
}

/// One JSON Lines event on stdout: `event` and `time` first, then `fields`.
fn emit(event: &str, fields: Json) {
    let mut line = serde_json::Map::new();
    line.insert("event".into(), event.into());
    line.insert("time".into(), crate::output::now_rfc3339().into());
    if let Json::Object(f) = fields {
        line.extend(f);
    }
    println!("{}", Json::Object(line));
}

/// The balancers and what they say about the app hosts.
#[derive(Debug, Clone, Default)]
pub struct Balancers {
    /// Balancer hosts.
    pub nodes: Vec<Node>,
}

/// Where each app host stands at the start.
#[derive(Debug, Clone)]
struct Start {
    state: HostState,
    /// Drained by tend on some balancer.
    drained: bool,
}

/// Per-host result, for the record.
#[derive(Debug, Clone, serde::Serialize)]
struct HostRecord {
    host: String,
    before: Option<String>,
    after: Option<String>,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code.
    pub code: Code,
    /// The deploy record (also written to each host's log).
    pub record: Json,
}

/// Everything a run needs.
pub struct Run<'a> {
    /// App hosts in inventory order.
    pub hosts: Vec<AppHost>,
    /// Balancer hosts (may be empty).
    pub balancers: Balancers,
    /// The goal.
    pub goal: Goal,
    /// Options.
    pub options: Options,
    /// The lock (none in check mode).
    pub lease: Option<&'a Lease>,
    /// Progress output.
    pub reporter: &'a Reporter,
    /// Ctrl-C.
    pub cancel: CancellationToken,
}

/// A run that cannot start or must stop, with the exit code it implies.
#[derive(Debug)]
pub struct Abort {
    /// Exit code.
    pub code: Code,
    /// What to tell the user.
    pub message: String,
}

fn step_abort(e: &StepError) -> Abort {
    Abort {
        code: match e {
            StepError::Transport { error, .. } if error.is_unreachable() => Code::Unreachable,
            _ => Code::HostFailed,
        },
        message: e.details(),
    }
}

impl Run<'_> {
    /// Runs the deploy or rollback to the end and returns its record.
    pub async fn execute(self) -> Outcome {
        let started = crate::output::now_rfc3339();
        let clock = Instant::now();
        let mut hosts_rec: BTreeMap<String, HostRecord> = BTreeMap::new();
        let result = self.execute_inner(&mut hosts_rec).await;
        let (code, outcome, message) = match result {
            Ok((code, outcome)) => (code, outcome, None),
            Err(a) => (a.code, "failed".to_string(), Some(a.message)),
        };
        if let Some(m) = &message {
            self.reporter.error(m);
        }
        let (command, release, sha256, artifact) = match &self.goal {
            Goal::Deploy { id, artifact } => (
                "deploy",
                Json::String(id.clone()),
                Json::String(artifact.sha256.clone()),
                Json::String(artifact.source.clone()),
            ),
            Goal::Rollback { to } => (
                "rollback",
                to.clone().map_or(Json::Null, Json::String),
                Json::Null,
                Json::Null,
            ),
        };
        let me = super::lock::Me::current();
        let record = json!({
            "command": command,
            "group": self.options.group,
            "release": release,
            "sha256": sha256,
            "artifact": artifact,
            "user": me.user,
            "control_host": me.control_host,
            "started": started,
            "finished": crate::output::now_rfc3339(),
            "seconds": (clock.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "check": self.options.check,
            "outcome": outcome,
            "error": message,
            "hosts": hosts_rec.values().collect::<Vec<_>>(),
            "schema_version": Json::Null,
        });
        if !self.options.check {
            let touched: Vec<&AppHost> = self
                .hosts
                .iter()
                .filter(|h| hosts_rec.get(&h.node.name).is_some_and(|r| r.status != "unchanged"))
                .collect();
            let writes = touched.iter().map(|h| {
                let active = hosts_rec
                    .get(&h.node.name)
                    .filter(|r| r.status == "deployed" || r.status == "rolled_back")
                    .and_then(|r| r.after.clone());
                let mut line = record.clone();
                if let Some(m) = line.as_object_mut() {
                    m.insert("host".into(), h.node.name.clone().into());
                }
                let line = line.to_string();
                async move { remote::record(h.node.on(), &h.settings, active.as_deref(), &line).await }
            });
            for r in join_all(writes).await {
                if let Err(e) = r {
                    self.reporter
                        .warn(&format!("could not write the deploy log: {}", e.details()));
                }
            }
        }
        self.reporter.record(&record);
        Outcome { code, record }
    }

    async fn execute_inner(&self, rec: &mut BTreeMap<String, HostRecord>) -> Result<(Code, String), Abort> {
        let r = self.reporter;
        // 1. Where every host stands; every app server must be in every balancer's upstream.
        let states = join_all(self.hosts.iter().map(|h| remote::inspect(h.node.on(), &h.settings))).await;
        let mut starts = Vec::new();
        for s in states {
            starts.push(s.map_err(|e| step_abort(&e))?);
        }
        let drained = self.balancer_states().await?;
        let starts: Vec<Start> = starts
            .into_iter()
            .zip(&self.hosts)
            .map(|(state, h)| Start {
                state,
                drained: drained.contains(&h.node.name),
            })
            .collect();
        for (h, s) in self.hosts.iter().zip(&starts) {
            rec.insert(
                h.node.name.clone(),
                HostRecord {
                    host: h.node.name.clone(),
                    before: s.state.current.clone(),
                    after: s.state.current.clone(),
                    status: "unchanged".into(),
                    error: None,
                },
            );
        }
        // 2. The release each host goes to.
        let targets = self.targets(&starts)?;
        // 3. Stage (deploys only), everywhere before anything switches.
        if let Goal::Deploy { id, artifact } = &self.goal {
            self.stage_all(id, artifact, &starts).await?;
        }
        // 4. Hosts with work: not yet on the target, not verified serving it, or drained.
        let work: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| {
                let s = &starts[i];
                let t = targets[i].as_str();
                s.drained || s.state.current.as_deref() != Some(t) || s.state.active.as_deref() != Some(t)
            })
            .collect();
        if work.is_empty() {
            r.note("every host already runs and serves that release; nothing to do");
            return Ok((Code::Ok, "unchanged".into()));
        }
        let size = self.options.batch.size(work.len());
        let batches: Vec<Vec<usize>> = work.chunks(size).map(<[usize]>::to_vec).collect();
        if self.options.check {
            for (n, batch) in batches.iter().enumerate() {
                r.note(&format!(
                    "batch {}/{} (check mode: nothing changes)",
                    n + 1,
                    batches.len()
                ));
                for &i in batch {
                    let from = starts[i].state.current.as_deref().unwrap_or("nothing");
                    r.step(
                        &self.hosts[i].node.name,
                        "would",
                        true,
                        &format!("switch {from} → {}", targets[i]),
                    );
                }
            }
            return Ok((Code::Ok, "checked".into()));
        }
        let mut done: Vec<Vec<usize>> = Vec::new();
        for (n, batch) in batches.iter().enumerate() {
            if self.cancel.is_cancelled() {
                return self.interrupted(rec);
            }
            if self.lease.is_some_and(Lease::is_lost) {
                return Err(Abort {
                    code: Code::HostFailed,
                    message: "the deploy lock was broken or taken over by someone else; stopped before the next batch"
                        .into(),
                });
            }
            let names: Vec<&str> = batch.iter().map(|&i| self.hosts[i].node.name.as_str()).collect();
            r.note(&format!("batch {}/{}: {}", n + 1, batches.len(), names.join(" ")));
            let results = self.switch_batch(batch, &targets, rec).await?;
            let failed: Vec<(usize, String)> = results
                .into_iter()
                .filter_map(|(i, r)| r.err().map(|e| (i, e)))
                .collect();
            if self.cancel.is_cancelled() {
                return self.interrupted(rec);
            }
            if failed.is_empty() {
                done.push(batch.clone());
                continue;
            }
            // The batch failed its gate: back to where its hosts were.
            for (i, why) in &failed {
                if let Some(h) = rec.get_mut(&self.hosts[*i].node.name) {
                    h.error = Some(why.clone());
                }
            }
            r.note("health gate failed: switching this batch back");
            self.revert_batch(batch, &starts, rec, false).await;
            if !self.options.keep_partial {
                for earlier in done.iter().rev() {
                    r.note(&format!(
                        "switching back earlier batch: {}",
                        earlier
                            .iter()
                            .map(|&i| self.hosts[i].node.name.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                    self.revert_batch(earlier, &starts, rec, true).await;
                }
            }
            let list: Vec<String> = failed
                .iter()
                .map(|(i, why)| format!("{}: {why}", self.hosts[*i].node.name))
                .collect();
            return Err(Abort {
                code: Code::HostFailed,
                message: format!(
                    "{} failed on {} host(s); {}:\n  {}",
                    match &self.goal {
                        Goal::Deploy { id, .. } => format!("deploy of release {id}"),
                        Goal::Rollback { .. } => "rollback".to_string(),
                    },
                    failed.len(),
                    if self.options.keep_partial {
                        "that batch was switched back, earlier batches keep the new release"
                    } else {
                        "every switched host was switched back"
                    },
                    list.join("\n  ")
                ),
            });
        }
        // 5. Old releases go (deploys only).
        if let Goal::Deploy { id, .. } = &self.goal {
            self.prune_all(id).await;
        }
        Ok((
            Code::Ok,
            match self.goal {
                Goal::Deploy { .. } => "deployed",
                Goal::Rollback { .. } => "rolled_back",
            }
            .into(),
        ))
    }

    fn interrupted(&self, rec: &BTreeMap<String, HostRecord>) -> Result<(Code, String), Abort> {
        let unverified: Vec<&str> = rec
            .values()
            .filter(|h| h.status == "unverified")
            .map(|h| h.host.as_str())
            .collect();
        let mut message = "interrupted: no further batch was started".to_string();
        if !unverified.is_empty() {
            message.push_str(&format!(
                "; {} switched but not verified and still out of the load balancer: run the same `tend deploy` again or `tend rollback`",
                unverified.join(" ")
            ));
        }
        Err(Abort {
            code: Code::Interrupted,
            message,
        })
    }

    /// Reads every balancer's upstream: each target server must be there; returns the hosts a
    /// deploy left drained.
    async fn balancer_states(&self) -> Result<BTreeSet<String>, Abort> {
        let hosts: Vec<(&str, &super::settings::UpstreamEntry)> = self
            .hosts
            .iter()
            .filter_map(|h| h.settings.upstream.as_ref().map(|u| (h.node.name.as_str(), u)))
            .collect();
        let mut drained = BTreeSet::new();
        for p in balancer::placements(&self.balancers.nodes, &hosts).await {
            match p.state.map_err(|e| step_abort(&e))? {
                None => {
                    return Err(Abort {
                        code: Code::HostFailed,
                        message: format!(
                            "{}: `server {}` is not in {} on balancer {}; a deploy could not drain it\n  hint: set `deploy_upstream_server` for the host, or provision the balancer first",
                            p.host, p.server, p.file, p.balancer
                        ),
                    });
                }
                Some(ServerState::Drained) => {
                    drained.insert(p.host);
                }
                Some(_) => {}
            }
        }
        Ok(drained)
    }

    fn targets(&self, starts: &[Start]) -> Result<Vec<String>, Abort> {
        let mut out = Vec::new();
        for (h, s) in self.hosts.iter().zip(starts) {
            let t = match &self.goal {
                Goal::Deploy { id, .. } => id.clone(),
                Goal::Rollback { to: Some(to) } => {
                    if s.state.release(to).is_none() {
                        return Err(Abort {
                            code: Code::HostFailed,
                            message: format!(
                                "{}: release {to} is not on this host (it has: {})",
                                h.node.name,
                                list_ids(&s.state)
                            ),
                        });
                    }
                    to.clone()
                }
                Goal::Rollback { to: None } => match s.state.previous() {
                    Some(p) => p.id.clone(),
                    None => {
                        return Err(Abort {
                            code: Code::HostFailed,
                            message: format!(
                                "{}: no release before {} to go back to (it has: {})",
                                h.node.name,
                                s.state.current.as_deref().unwrap_or("nothing"),
                                list_ids(&s.state)
                            ),
                        });
                    }
                },
            };
            out.push(t);
        }
        Ok(out)
    }

    async fn stage_all(&self, id: &str, artifact: &Artifact, starts: &[Start]) -> Result<(), Abort> {
        let r = self.reporter;
        let need: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| {
                starts[i]
                    .state
                    .release(id)
                    .is_none_or(|rel| rel.sha256 != artifact.sha256)
            })
            .collect();
        for (i, h) in self.hosts.iter().enumerate() {
            if !need.contains(&i) {
                r.step(&h.node.name, "staged", true, &format!("release {id} already there"));
            }
        }
        if self.options.check {
            for &i in &need {
                r.step(&self.hosts[i].node.name, "would", true, &format!("stage release {id}"));
            }
            return Ok(());
        }
        let limit = tokio::sync::Semaphore::new(self.options.forks.max(1));
        let jobs = need.iter().map(|&i| {
            let h = &self.hosts[i];
            let limit = &limit;
            async move {
                let _permit = limit.acquire().await;
                let t = Instant::now();
                let res = remote::stage(h.node.on(), &h.settings, id, artifact, &self.options.by).await;
                (i, res, t.elapsed())
            }
        });
        let mut first_error = None;
        for (i, res, took) in join_all(jobs).await {
            let name = &self.hosts[i].node.name;
            match res {
                Ok(Staged::New) => {
                    let how = match artifact.size() {
                        Some(n) => format!("uploaded {}", human_size(n)),
                        None => "downloaded by the host".to_string(),
                    };
                    r.step(
                        name,
                        "staged",
                        true,
                        &format!(
                            "release {id} ({how}, sha256 {} verified, {:.1}s)",
                            &artifact.sha256[..12],
                            took.as_secs_f64()
                        ),
                    );
                }
                Ok(Staged::Present) => r.step(name, "staged", true, &format!("release {id} already there")),
                Err(e) => {
                    r.step(name, "stage", false, &e.message());
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(Abort {
                code: step_abort(&e).code,
                message: format!("staging failed; no host was switched\n{}", e.details()),
            }),
            None => Ok(()),
        }
    }

    /// Drains, puts the upstream entries of `batch` on every balancer; errors abort the run
    /// (nothing has switched yet when draining fails).
    async fn set_drained(&self, batch: &[usize], drain: bool) -> Result<(), StepError> {
        let r = self.reporter;
        let mut by_file: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for &i in batch {
            if let Some(u) = &self.hosts[i].settings.upstream {
                by_file.entry(u.file.as_str()).or_default().push(u.server.clone());
            }
        }
        let wait = batch
            .iter()
            .map(|&i| self.hosts[i].settings.drain_timeout)
            .max()
            .unwrap_or_default();
        let names: Vec<&str> = batch.iter().map(|&i| self.hosts[i].node.name.as_str()).collect();
        for lb in &self.balancers.nodes {
            for (file, servers) in &by_file {
                let t = Instant::now();
                let applied = balancer::apply(lb, file, servers, drain, wait).await?;
                let (word, what) = if drain {
                    ("drained", "out of")
                } else {
                    ("restored", "back in")
                };
                let detail = match applied {
                    Applied::Unchanged => format!("{} already {what} the upstream", names.join(" ")),
                    Applied::Reloaded if drain => format!(
                        "{} {what} the upstream; in-flight requests finished ({:.1}s)",
                        names.join(" "),
                        t.elapsed().as_secs_f64()
                    ),
                    Applied::Reloaded => format!("{} {what} the upstream", names.join(" ")),
                    Applied::StillBusy => format!(
                        "{} {what} the upstream; requests still running after {}s",
                        names.join(" "),
                        wait.as_secs()
                    ),
                    Applied::NotRunning => format!("{} {what} the upstream (Nginx is not running)", names.join(" ")),
                };
                r.step(&format!("lb {}", lb.name), word, true, &detail);
            }
        }
        Ok(())
    }

    /// One batch forward: drain, switch + restart + health per host, put back the healthy ones.
    async fn switch_batch(
        &self,
        batch: &[usize],
        targets: &[String],
        rec: &mut BTreeMap<String, HostRecord>,
    ) -> Result<Vec<(usize, Result<(), String>)>, Abort> {
        if let Err(e) = self.set_drained(batch, true).await {
            // Nothing switched in this batch: put back what was drained and stop.
            let _ = self.set_drained(batch, false).await;
            return Err(step_abort(&e));
        }
        let client = health::client().map_err(|e| Abort {
            code: Code::Internal,
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        let jobs = batch.iter().map(|&i| {
            let client = &client;
            let target = targets[i].clone();
            async move { (i, self.forward(i, &target, client).await) }
        });
        let results = join_all(jobs).await;
        let mut healthy = Vec::new();
        let mut out = Vec::new();
        for (i, res) in results {
            let name = self.hosts[i].node.name.clone();
            let entry = rec.get_mut(&name);
            match &res {
                Ok(()) => {
                    healthy.push(i);
                    if let Some(e) = entry {
                        e.after = Some(targets[i].clone());
                        e.status = match self.goal {
                            Goal::Deploy { .. } => "deployed".into(),
                            Goal::Rollback { .. } => "rolled_back".into(),
                        };
                    }
                }
                Err(Failure::BeforeSwitch(_)) => {}
                Err(Failure::AfterSwitch(_)) => {
                    if let Some(e) = entry {
                        e.after = Some(targets[i].clone());
                        e.status = "unverified".into();
                    }
                }
            }
            out.push((i, res.map_err(|f| f.message())));
        }
        // All healthy, or interrupted: the healthy hosts go back now. After a failure the
        // revert decides.
        let all_ok = out.iter().all(|(_, r)| r.is_ok());
        if !healthy.is_empty()
            && (all_ok || self.cancel.is_cancelled())
            && let Err(e) = self.set_drained(&healthy, false).await
        {
            return Err(step_abort(&e));
        }
        Ok(out)
    }

    /// Switch, restart and health-gate one host.
    async fn forward(&self, i: usize, target: &str, client: &reqwest::Client) -> Result<(), Failure> {
        let h = &self.hosts[i];
        let r = self.reporter;
        let name = &h.node.name;
        if self.cancel.is_cancelled() {
            return Err(Failure::BeforeSwitch("interrupted".into()));
        }
        let previous = remote::switch(h.node.on(), &h.settings, target).await.map_err(|e| {
            r.step(name, "switch", false, &e.message());
            Failure::BeforeSwitch(e.details())
        })?;
        r.step(
            name,
            "switched",
            true,
            &format!("{} → {target}", previous.as_deref().unwrap_or("nothing")),
        );
        self.restart_and_check(h, target, client)
            .await
            .map_err(Failure::AfterSwitch)
    }

    async fn restart_and_check(&self, h: &AppHost, id: &str, client: &reqwest::Client) -> Result<(), String> {
        let r = self.reporter;
        let name = &h.node.name;
        let t = Instant::now();
        if let Err(e) = remote::restart(h.node.on(), &h.settings).await {
            r.step(name, "restart", false, &e.message());
            return Err(e.details());
        }
        if !h.settings.restart.is_empty() {
            r.step(name, "restarted", true, &format!("{:.1}s", t.elapsed().as_secs_f64()));
        }
        let Some(check) = (h.health_of)(id) else {
            return Ok(());
        };
        match health::wait_healthy(client, &check, &self.cancel).await {
            Ok(took) => {
                r.step(
                    name,
                    "healthy",
                    true,
                    &format!("{} answered in {:.1}s", check.url, took.as_secs_f64()),
                );
                Ok(())
            }
            Err(Unhealthy { url, waited, last }) => {
                let msg = format!("health check {url} failed after {}s: {last}", waited.as_secs());
                r.step(name, "unhealthy", false, &msg);
                Err(msg)
            }
        }
    }

    /// Back to where the hosts of `batch` started; `drain` first when they are serving.
    async fn revert_batch(
        &self,
        batch: &[usize],
        starts: &[Start],
        rec: &mut BTreeMap<String, HostRecord>,
        drain: bool,
    ) {
        let r = self.reporter;
        let switched: Vec<usize> = batch
            .iter()
            .copied()
            .filter(|&i| {
                rec.get(&self.hosts[i].node.name)
                    .is_some_and(|e| e.after != starts[i].state.current)
            })
            .collect();
        if drain
            && !switched.is_empty()
            && let Err(e) = self.set_drained(&switched, true).await
        {
            r.warn(&format!("could not drain before switching back: {}", e.details()));
        }
        let Ok(client) = health::client() else {
            return;
        };
        let jobs = switched.iter().map(|&i| {
            let client = &client;
            async move {
                let h = &self.hosts[i];
                let Some(back) = starts[i].state.current.clone() else {
                    r.step(
                        &h.node.name,
                        "stays out",
                        false,
                        "no release to go back to; left out of the upstream",
                    );
                    return (i, None);
                };
                if let Err(e) = remote::switch(h.node.on(), &h.settings, &back).await {
                    r.step(&h.node.name, "switch", false, &e.message());
                    return (i, None);
                }
                r.step(&h.node.name, "switched", true, &format!("back to {back}"));
                match self.restart_and_check(h, &back, client).await {
                    Ok(()) => (i, Some(back)),
                    Err(_) => (i, None),
                }
            }
        });
        let mut healthy = Vec::new();
        for (i, back) in join_all(jobs).await {
            let name = self.hosts[i].node.name.clone();
            if let Some(e) = rec.get_mut(&name) {
                match back {
                    Some(b) => {
                        e.after = Some(b);
                        e.status = "rolled_back".into();
                        healthy.push(i);
                    }
                    None => e.status = "failed".into(),
                }
            }
        }
        // Hosts of the batch that never switched and did not fail are put back as they were.
        healthy.extend(batch.iter().copied().filter(|i| {
            !switched.contains(i)
                && rec
                    .get(&self.hosts[*i].node.name)
                    .is_some_and(|e| e.error.is_none() && e.status != "unverified")
        }));
        if !healthy.is_empty()
            && let Err(e) = self.set_drained(&healthy, false).await
        {
            r.warn(&format!("could not put hosts back into the upstream: {}", e.details()));
        }
        let stuck: Vec<&str> = switched
            .iter()
            .filter(|i| !healthy.contains(i))
            .map(|&i| self.hosts[i].node.name.as_str())
            .collect();
        if !stuck.is_empty() {
            r.warn(&format!(
                "{} could not be switched back to a healthy release and stay out of the upstream",
                stuck.join(" ")
            ));
        }
    }

    async fn prune_all(&self, id: &str) {
        let r = self.reporter;
        let jobs = self.hosts.iter().map(|h| async move {
            // Re-read: the release just staged has the host's time.
            let state = match remote::inspect(h.node.on(), &h.settings).await {
                Ok(state) => state,
                Err(e) => return (h, Err(e)),
            };
            let ids = remote::to_prune(&state, h.settings.keep);
            (h, remote::prune(h.node.on(), &h.settings, &ids).await.map(|()| ids))
        });
        for (h, res) in join_all(jobs).await {
            match res {
                Ok(ids) if !ids.is_empty() => r.step(
                    &h.node.name,
                    "pruned",
                    true,
                    &format!("removed {} (keeping {})", ids.join(" "), h.settings.keep),
                ),
                Ok(_) => {}
                Err(e) => r.warn(&format!(
                    "release {id} is live but old releases were not removed: {}",
                    e.details()
                )),
            }
        }
    }
}

/// How a host's forward step failed.
enum Failure {
    /// `current` did not move.
    BeforeSwitch(String),
    /// `current` moved; the restart or health gate failed.
    AfterSwitch(String),
}

impl Failure {
    fn message(self) -> String {
        match self {
            Failure::BeforeSwitch(m) | Failure::AfterSwitch(m) => m,
        }
    }
}

fn list_ids(state: &HostState) -> String {
    if state.releases.is_empty() {
        "none".into()
    } else {
        state
            .releases
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn human_size(n: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_parse_and_round_up() {
        assert_eq!(BatchSize::parse("2"), Some(BatchSize::Count(2)));
        assert_eq!(BatchSize::parse("25%"), Some(BatchSize::Percent(25)));
        assert_eq!(BatchSize::parse("0"), None);
        assert_eq!(BatchSize::parse("101%"), None);
        assert_eq!(BatchSize::Percent(25).size(5), 2);
        assert_eq!(BatchSize::Percent(1).size(3), 1);
        assert_eq!(BatchSize::Count(10).size(3), 10);
    }

    #[test]
    fn sizes_read_like_ls() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
