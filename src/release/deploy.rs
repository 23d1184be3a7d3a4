//! The rolling deploy and rollback, as an operation on the operations core: stage everywhere
//! first, then batch by batch drain, switch, restart, health-gate and put back; a batch that
//! fails its gate is switched back and, unless partial deploys are allowed, so is every batch
//! before it. The core ([`crate::ops::run`]) has connected the hosts and taken the lock.

use super::artifact::Artifact;
use super::balancer::{self, Applied, ServerState};
use super::health::{self, Unhealthy};
use super::remote::{self, HostState, Staged};
use super::settings::{HealthCheck, HostSettings};
use crate::exit::Code;
use crate::ops::{Abort, Outcome, Session};
use crate::output::{ErrorEvent, HostRecord, Record, Status, StepEvent};
use crate::transport::{Host, StepError};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The health check of a host for a given release id (the expected body may name it).
pub type HealthOf = Box<dyn Fn(&str) -> Option<HealthCheck> + Send + Sync>;

/// An app host taking part in a deploy.
pub struct AppHost {
    /// Its connection.
    pub node: Host,
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
    /// `user@control-host`, for manifests and logs.
    pub by: String,
    /// The schema version the release goes out with (`deploy --migrate`), kept in its manifest.
    pub schema: Option<String>,
    /// Roll back to a release deployed with an older schema version than the current one.
    pub force: bool,
    /// `deploy --load-gate`: load the first batch's hosts once they serve, and switch back
    /// when a threshold breaks.
    pub load_gate: Option<crate::loadtest::gate::Gate>,
}

/// Where each app host stands at the start.
#[derive(Debug, Clone)]
struct Start {
    state: HostState,
    /// Drained by tend on some balancer.
    drained: bool,
}

/// Where a host ended up, for the record.
#[derive(Debug, Clone)]
struct HostEnd {
    host: String,
    before: Option<String>,
    after: Option<String>,
    /// `deployed`, `rolled_back`, `unverified`, `unchanged` or `failed`.
    outcome: &'static str,
    error: Option<String>,
}

impl HostEnd {
    fn record(&self) -> HostRecord {
        let status = match self.outcome {
            "unchanged" => Status::Ok,
            "deployed" | "rolled_back" => Status::Changed,
            _ => Status::Failed,
        };
        let mut details = Map::new();
        details.insert("before".into(), self.before.clone().map_or(Json::Null, Json::String));
        details.insert("after".into(), self.after.clone().map_or(Json::Null, Json::String));
        HostRecord {
            host: self.host.clone(),
            status,
            outcome: self.outcome.to_string(),
            details,
            error: self.error.clone(),
        }
    }
}

/// Everything a run needs.
pub struct Run<'a, 's> {
    /// App hosts in inventory order.
    pub hosts: Vec<AppHost>,
    /// Balancer hosts (may be empty).
    pub balancers: Vec<Host>,
    /// The goal.
    pub goal: Goal,
    /// Options.
    pub options: Options,
    /// The operation's session: events, lock, Ctrl-C.
    pub session: &'a Session<'s>,
}

impl Run<'_, '_> {
    fn step(&self, host: &str, step: &str, status: Status, message: impl Into<String>) {
        self.session.step(StepEvent::new(host, step, status, message));
    }

    /// Runs the deploy or rollback to the end and returns its outcome and record.
    pub async fn execute(self) -> Outcome {
        let clock = crate::ops::Clock::start();
        let mut ends: BTreeMap<String, HostEnd> = BTreeMap::new();
        let result = self.execute_inner(&mut ends).await;
        let (code, outcome, error) = match result {
            Ok((code, outcome)) => (code, outcome, None),
            Err(a) => {
                let message = a.error.message.clone();
                self.session.events().emit(crate::output::Event::Error(a.error));
                (a.code, "failed", Some(message))
            }
        };
        let mut details = Map::new();
        match &self.goal {
            Goal::Deploy { id, artifact } => {
                details.insert("release".into(), id.clone().into());
                details.insert("sha256".into(), artifact.sha256.clone().into());
                details.insert("artifact".into(), artifact.source.clone().into());
            }
            Goal::Rollback { to } => {
                details.insert("release".into(), to.clone().map_or(Json::Null, Json::String));
                details.insert("sha256".into(), Json::Null);
                details.insert("artifact".into(), Json::Null);
            }
        }
        if let Some(v) = &self.options.schema {
            details.insert("schema_version".into(), v.clone().into());
        }
        let record = Record {
            check: self.options.check,
            outcome: outcome.into(),
            error,
            hosts: ends
                .values()
                .map(|end| {
                    let mut r = end.record();
                    // What the operation cost on the host's connection.
                    if let Some(h) = self.hosts.iter().find(|h| h.node.name() == end.host) {
                        r.details.insert(
                            "traffic".into(),
                            serde_json::to_value(h.node.counters()).unwrap_or_default(),
                        );
                    }
                    r
                })
                .collect(),
            details,
            ..clock.record(self.command(), &self.options.group)
        };
        if !self.options.check {
            self.log_on_hosts(&record, &ends).await;
        }
        Outcome {
            code,
            record: Some(record),
        }
    }

    fn command(&self) -> &'static str {
        match self.goal {
            Goal::Deploy { .. } => "deploy",
            Goal::Rollback { .. } => "rollback",
        }
    }

    /// Appends the record to each changed host's `deploys.log` (and marks what it serves).
    async fn log_on_hosts(&self, record: &Record, ends: &BTreeMap<String, HostEnd>) {
        let touched = self.hosts.iter().filter_map(|h| {
            ends.get(h.node.name())
                .filter(|e| e.outcome != "unchanged")
                .map(|e| (h, e))
        });
        let writes = touched.map(|(h, end)| {
            let active = matches!(end.outcome, "deployed" | "rolled_back")
                .then(|| end.after.clone())
                .flatten();
            let mut line = serde_json::to_value(record).unwrap_or_default();
            if let Some(m) = line.as_object_mut() {
                m.insert("host".into(), h.node.name().into());
            }
            let line = line.to_string();
            async move { remote::record(&h.node, &h.settings, active.as_deref(), &line).await }
        });
        for r in futures_util::future::join_all(writes).await {
            if let Err(e) = r {
                self.session
                    .events()
                    .warn(format!("could not write the deploy log: {}", e.details()));
            }
        }
    }

    async fn execute_inner(&self, rec: &mut BTreeMap<String, HostEnd>) -> Result<(Code, &'static str), Abort> {
        let events = self.session.events();
        // 1. Where every host stands; every app server must be in every balancer's upstream.
        let states = self
            .session
            .each(&self.hosts, |h| remote::inspect(&h.node, &h.settings))
            .await;
        let mut starts = Vec::new();
        for s in states {
            starts.push(s.map_err(|e| Abort::step("cannot read the releases", &e))?);
        }
        let drained = self.balancer_states().await?;
        let starts: Vec<Start> = starts
            .into_iter()
            .zip(&self.hosts)
            .map(|(state, h)| Start {
                state,
                drained: drained.contains(h.node.name()),
            })
            .collect();
        for (h, s) in self.hosts.iter().zip(&starts) {
            self.session.touch(h.node.name());
            rec.insert(
                h.node.name().to_string(),
                HostEnd {
                    host: h.node.name().to_string(),
                    before: s.state.current.clone(),
                    after: s.state.current.clone(),
                    outcome: "unchanged",
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
            events.note("every host already runs and serves that release; nothing to do");
            return Ok((Code::Ok, "unchanged"));
        }
        let size = self.options.batch.size(work.len());
        let batches: Vec<Vec<usize>> = work.chunks(size).map(<[usize]>::to_vec).collect();
        if self.options.check {
            for (n, batch) in batches.iter().enumerate() {
                events.note(format!(
                    "batch {}/{} (check mode: nothing changes)",
                    n + 1,
                    batches.len()
                ));
                for &i in batch {
                    let from = starts[i].state.current.as_deref().unwrap_or("nothing");
                    self.step(
                        self.hosts[i].node.name(),
                        "switch",
                        Status::Skipped,
                        format!("would switch {from} → {}", targets[i]),
                    );
                }
            }
            return Ok((Code::Ok, "checked"));
        }
        let mut done: Vec<Vec<usize>> = Vec::new();
        for (n, batch) in batches.iter().enumerate() {
            if self.session.cancel.is_cancelled() {
                return Err(self.interrupted(rec));
            }
            if self.session.lease().is_some_and(|l| l.is_lost()) {
                return Err(Abort::new(
                    Code::HostFailed,
                    "the deploy lock was broken or taken over by someone else; stopped before the next batch",
                ));
            }
            let names: Vec<&str> = batch.iter().map(|&i| self.hosts[i].node.name()).collect();
            events.note(format!("batch {}/{}: {}", n + 1, batches.len(), names.join(" ")));
            let results = self.switch_batch(batch, &targets, rec).await?;
            let mut failed: Vec<(usize, String)> = results
                .into_iter()
                .filter_map(|(i, r)| r.err().map(|e| (i, e)))
                .collect();
            // The load gate runs on the first batch, back behind the balancer and serving.
            let mut serving = false;
            if failed.is_empty()
                && n == 0
                && !self.session.cancel.is_cancelled()
                && let Some(gate) = &self.options.load_gate
            {
                failed = self.load_gate(gate, batch, &targets).await;
                serving = true;
            }
            if self.session.cancel.is_cancelled() {
                return Err(self.interrupted(rec));
            }
            if failed.is_empty() {
                done.push(batch.clone());
                continue;
            }
            // The batch failed its gate: back to where its hosts were.
            for (i, why) in &failed {
                if let Some(h) = rec.get_mut(self.hosts[*i].node.name()) {
                    h.error = Some(why.clone());
                }
            }
            events.note(if serving {
                "load gate failed: switching this batch back"
            } else {
                "health gate failed: switching this batch back"
            });
            self.revert_batch(batch, &starts, rec, serving).await;
            if !self.options.keep_partial {
                for earlier in done.iter().rev() {
                    events.note(format!(
                        "switching back earlier batch: {}",
                        earlier
                            .iter()
                            .map(|&i| self.hosts[i].node.name())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                    self.revert_batch(earlier, &starts, rec, true).await;
                }
            }
            let list: Vec<String> = failed
                .iter()
                .map(|(i, why)| format!("{}: {why}", self.hosts[*i].node.name()))
                .collect();
            return Err(Abort::new(
                Code::HostFailed,
                format!(
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
            ));
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
            },
        ))
    }

    fn interrupted(&self, rec: &BTreeMap<String, HostEnd>) -> Abort {
        let unverified: Vec<&str> = rec
            .values()
            .filter(|h| h.outcome == "unverified")
            .map(|h| h.host.as_str())
            .collect();
        let mut message = "interrupted: no further batch was started".to_string();
        if !unverified.is_empty() {
            message.push_str(&format!(
                "; {} switched but not verified and still out of the load balancer: run the same `tend deploy` again or `tend rollback`",
                unverified.join(" ")
            ));
        }
        Abort::new(Code::Interrupted, message)
    }

    /// Reads every balancer's upstream: each target server must be there; returns the hosts a
    /// deploy left drained.
    async fn balancer_states(&self) -> Result<BTreeSet<String>, Abort> {
        let hosts: Vec<(&str, &super::settings::UpstreamEntry)> = self
            .hosts
            .iter()
            .filter_map(|h| h.settings.upstream.as_ref().map(|u| (h.node.name(), u)))
            .collect();
        let mut drained = BTreeSet::new();
        for p in balancer::placements(&self.balancers, &hosts).await {
            match p.state.map_err(|e| Abort::step("cannot read the load balancer", &e))? {
                None => {
                    return Err(Abort {
                        code: Code::HostFailed,
                        error: Box::new(
                            ErrorEvent::new(format!(
                                "{}: `server {}` is not in {} on balancer {}; a deploy could not drain it",
                                p.host, p.server, p.file, p.balancer
                            ))
                            .with_hint("set `deploy_upstream_server` for the host, or provision the balancer first"),
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
                        return Err(Abort::new(
                            Code::HostFailed,
                            format!(
                                "{}: release {to} is not on this host (it has: {})",
                                h.node.name(),
                                list_ids(&s.state)
                            ),
                        ));
                    }
                    to.clone()
                }
                Goal::Rollback { to: None } => match s.state.previous() {
                    Some(p) => p.id.clone(),
                    None => {
                        return Err(Abort::new(
                            Code::HostFailed,
                            format!(
                                "{}: no release before {} to go back to (it has: {})",
                                h.node.name(),
                                s.state.current.as_deref().unwrap_or("nothing"),
                                list_ids(&s.state)
                            ),
                        ));
                    }
                },
            };
            if let Goal::Rollback { .. } = &self.goal {
                self.schema_guard(h.node.name(), &s.state, &t)?;
            }
            out.push(t);
        }
        Ok(out)
    }

    /// A release deployed with an older schema version than the current release's may not work
    /// with the schema as it is now: refused unless `--force` (then a warning). The versions are
    /// those the releases' manifests recorded at `deploy --migrate`: a rollback needs no
    /// database to reach, and one whose schema was taken back by hand says so with `--force`.
    fn schema_guard(&self, host: &str, state: &HostState, target: &str) -> Result<(), Abort> {
        let schema_of = |id: &str| {
            state
                .release(id)
                .and_then(|r| r.schema.as_deref())
                .and_then(crate::migrate::files::Version::parse)
        };
        let (Some(current), Some(old)) = (state.current.as_deref(), schema_of(target)) else {
            return Ok(());
        };
        let Some(now) = schema_of(current) else {
            return Ok(());
        };
        if old >= now {
            return Ok(());
        }
        let message = format!(
            "{host}: release {target} was deployed with schema version {old}, the current release {current} with {now}: the older release may not work with the newer schema"
        );
        if self.options.force {
            self.session.events().warn(format!("{message} (--force)"));
            return Ok(());
        }
        Err(
            Abort::new(Code::HostFailed, format!("{message}; nothing was changed")).hint(format!(
                "if the release works with the schema as it is (or after `tend migrate undo --to {old}`), roll back with `--force`"
            )),
        )
    }

    async fn stage_all(&self, id: &str, artifact: &Artifact, starts: &[Start]) -> Result<(), Abort> {
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
                self.step(
                    h.node.name(),
                    "stage",
                    Status::Ok,
                    format!("release {id} already there"),
                );
            }
        }
        // A release staged before keeps the schema version it now goes out with.
        if let (Some(schema), false) = (self.options.schema.as_deref(), self.options.check) {
            let stale: Vec<usize> = (0..self.hosts.len())
                .filter(|i| !need.contains(i))
                .filter(|&i| starts[i].state.release(id).and_then(|r| r.schema.as_deref()) != Some(schema))
                .collect();
            let marked = self
                .session
                .each(&stale, |&i| {
                    remote::mark_schema(&self.hosts[i].node, &self.hosts[i].settings, id, schema)
                })
                .await;
            for r in marked {
                r.map_err(|e| Abort::step("cannot record the schema version", &e))?;
            }
        }
        if self.options.check {
            for &i in &need {
                self.step(
                    self.hosts[i].node.name(),
                    "stage",
                    Status::Skipped,
                    format!("would stage release {id}"),
                );
            }
            return Ok(());
        }
        let staged = self
            .session
            .each(&need, |&i| async move {
                let h = &self.hosts[i];
                let t = Instant::now();
                let res = remote::stage(
                    &h.node,
                    &h.settings,
                    id,
                    artifact,
                    &self.options.by,
                    self.options.schema.as_deref(),
                )
                .await;
                (i, res, t.elapsed())
            })
            .await;
        let mut first_error = None;
        for (i, res, took) in staged {
            let name = self.hosts[i].node.name();
            match res {
                Ok(Staged::New) => {
                    let how = match artifact.size() {
                        Some(n) => format!("uploaded {}", human_size(n)),
                        None => "downloaded by the host".to_string(),
                    };
                    self.session.step(
                        StepEvent::new(
                            name,
                            "stage",
                            Status::Changed,
                            format!("release {id} ({how}, sha256 {} verified)", &artifact.sha256[..12]),
                        )
                        .took(took),
                    );
                }
                Ok(Staged::Present) => self.step(name, "stage", Status::Ok, format!("release {id} already there")),
                Err(e) => {
                    self.session.failed(&e);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(Abort::step("staging failed; no host was switched", &e)),
            None => Ok(()),
        }
    }

    /// Drains, puts the upstream entries of `batch` on every balancer; errors abort the run
    /// (nothing has switched yet when draining fails).
    async fn set_drained(&self, batch: &[usize], drain: bool) -> Result<(), StepError> {
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
        let names: Vec<&str> = batch.iter().map(|&i| self.hosts[i].node.name()).collect();
        let names = names.join(" ");
        let (step, what) = if drain {
            ("drain", "out of")
        } else {
            ("undrain", "back in")
        };
        for lb in &self.balancers {
            for (file, servers) in &by_file {
                let t = Instant::now();
                let applied = balancer::apply(lb, file, servers, drain, wait).await.inspect_err(|e| {
                    self.session.failed(e);
                })?;
                let (status, detail) = match applied {
                    Applied::Unchanged => (Status::Ok, format!("{names} already {what} the upstream")),
                    Applied::Reloaded if drain => (
                        Status::Changed,
                        format!("{names} {what} the upstream; in-flight requests finished"),
                    ),
                    Applied::Reloaded => (Status::Changed, format!("{names} {what} the upstream")),
                    Applied::StillBusy => (
                        Status::Changed,
                        format!(
                            "{names} {what} the upstream; requests still running after {}s",
                            wait.as_secs()
                        ),
                    ),
                    Applied::NotRunning => (
                        Status::Changed,
                        format!("{names} {what} the upstream (Nginx is not running)"),
                    ),
                };
                self.session
                    .step(StepEvent::new(lb.name(), step, status, detail).took(t.elapsed()));
            }
        }
        Ok(())
    }

    /// One batch forward: drain, switch + restart + health per host, put back the healthy ones.
    async fn switch_batch(
        &self,
        batch: &[usize],
        targets: &[String],
        rec: &mut BTreeMap<String, HostEnd>,
    ) -> Result<Vec<(usize, Result<(), String>)>, Abort> {
        if let Err(e) = self.set_drained(batch, true).await {
            // Nothing switched in this batch: put back what was drained and stop.
            let _ = self.set_drained(batch, false).await;
            return Err(Abort::step("draining failed; nothing was switched in this batch", &e));
        }
        let client =
            health::client().map_err(|e| Abort::new(Code::Internal, format!("cannot build the HTTP client: {e}")))?;
        let results = futures_util::future::join_all(batch.iter().map(|&i| {
            let client = &client;
            let target = targets[i].clone();
            async move { (i, self.forward(i, &target, client).await) }
        }))
        .await;
        let mut healthy = Vec::new();
        let mut out = Vec::new();
        for (i, res) in results {
            let entry = rec.get_mut(self.hosts[i].node.name());
            match &res {
                Ok(()) => {
                    healthy.push(i);
                    if let Some(e) = entry {
                        e.after = Some(targets[i].clone());
                        e.outcome = match self.goal {
                            Goal::Deploy { .. } => "deployed",
                            Goal::Rollback { .. } => "rolled_back",
                        };
                    }
                }
                Err(Failure::BeforeSwitch(_)) => {}
                Err(Failure::AfterSwitch(_)) => {
                    if let Some(e) = entry {
                        e.after = Some(targets[i].clone());
                        e.outcome = "unverified";
                    }
                }
            }
            out.push((i, res.map_err(|f| f.message())));
        }
        // All healthy, or interrupted: the healthy hosts go back now. After a failure the
        // revert decides.
        let all_ok = out.iter().all(|(_, r)| r.is_ok());
        if !healthy.is_empty()
            && (all_ok || self.session.cancel.is_cancelled())
            && let Err(e) = self.set_drained(&healthy, false).await
        {
            return Err(Abort::step("putting the hosts back failed", &e));
        }
        Ok(out)
    }

    /// The load gate on each host of `batch` at once: the hosts whose thresholds broke, and why.
    async fn load_gate(
        &self,
        gate: &crate::loadtest::gate::Gate,
        batch: &[usize],
        targets: &[String],
    ) -> Vec<(usize, String)> {
        let runs = batch.iter().map(|&i| async move {
            let h = &self.hosts[i];
            let name = h.node.name();
            let Some(base) = (h.health_of)(&targets[i]).and_then(|c| crate::loadtest::gate::origin(&c.url)) else {
                let why = "load gate: no health URL to aim at (set `deploy_health_url`)".to_string();
                self.session
                    .step(StepEvent::new(name, "load-gate", Status::Failed, why.clone()));
                return Some((i, why));
            };
            let t = Instant::now();
            match gate.run(&base, self.session.cancel.clone()).await {
                Ok(f) if f.held => {
                    self.session.step(
                        StepEvent::new(name, "load-gate", Status::Ok, format!("{base}: {}", f.summary))
                            .took(t.elapsed()),
                    );
                    None
                }
                Ok(f) => {
                    let why = format!("load gate: {}", f.summary);
                    self.session.step(
                        StepEvent::new(name, "load-gate", Status::Failed, format!("{base}: {}", f.summary))
                            .took(t.elapsed()),
                    );
                    Some((i, why))
                }
                Err(e) => {
                    let why = format!("load gate: {e}");
                    self.session
                        .step(StepEvent::new(name, "load-gate", Status::Failed, why.clone()));
                    Some((i, why))
                }
            }
        });
        futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Switch, restart and health-gate one host.
    async fn forward(&self, i: usize, target: &str, client: &reqwest::Client) -> Result<(), Failure> {
        let h = &self.hosts[i];
        let name = h.node.name();
        if self.session.cancel.is_cancelled() {
            return Err(Failure::BeforeSwitch("interrupted".into()));
        }
        let previous = remote::switch(&h.node, &h.settings, target).await.map_err(|e| {
            self.session.failed(&e);
            Failure::BeforeSwitch(e.details())
        })?;
        self.step(
            name,
            "switch",
            Status::Changed,
            format!("{} → {target}", previous.as_deref().unwrap_or("nothing")),
        );
        self.restart_and_check(h, target, client)
            .await
            .map_err(Failure::AfterSwitch)
    }

    async fn restart_and_check(&self, h: &AppHost, id: &str, client: &reqwest::Client) -> Result<(), String> {
        let name = h.node.name();
        let t = Instant::now();
        if let Err(e) = remote::restart(&h.node, &h.settings).await {
            self.session.failed(&e);
            return Err(e.details());
        }
        if !h.settings.restart.is_empty() {
            self.session
                .step(StepEvent::new(name, "restart", Status::Changed, "restarted").took(t.elapsed()));
        }
        let Some(check) = (h.health_of)(id) else {
            return Ok(());
        };
        match health::wait_healthy(client, &check, &self.session.cancel).await {
            Ok(took) => {
                self.session
                    .step(StepEvent::new(name, "health", Status::Ok, format!("{} answered", check.url)).took(took));
                Ok(())
            }
            Err(Unhealthy { url, waited, last }) => {
                let msg = format!("health check {url} failed after {}s: {last}", waited.as_secs());
                self.session
                    .step(StepEvent::new(name, "health", Status::Failed, msg.clone()).took(waited));
                Err(msg)
            }
        }
    }

    /// Back to where the hosts of `batch` started; `drain` first when they are serving.
    async fn revert_batch(&self, batch: &[usize], starts: &[Start], rec: &mut BTreeMap<String, HostEnd>, drain: bool) {
        let events = self.session.events();
        let switched: Vec<usize> = batch
            .iter()
            .copied()
            .filter(|&i| {
                rec.get(self.hosts[i].node.name())
                    .is_some_and(|e| e.after != starts[i].state.current)
            })
            .collect();
        if drain
            && !switched.is_empty()
            && let Err(e) = self.set_drained(&switched, true).await
        {
            events.warn(format!("could not drain before switching back: {}", e.details()));
        }
        let Ok(client) = health::client() else {
            return;
        };
        let jobs = switched.iter().map(|&i| {
            let client = &client;
            async move {
                let h = &self.hosts[i];
                let Some(back) = starts[i].state.current.clone() else {
                    self.step(
                        h.node.name(),
                        "switch",
                        Status::Failed,
                        "no release to go back to; left out of the upstream",
                    );
                    return (i, None);
                };
                if let Err(e) = remote::switch(&h.node, &h.settings, &back).await {
                    self.session.failed(&e);
                    return (i, None);
                }
                self.step(h.node.name(), "switch", Status::Changed, format!("back to {back}"));
                match self.restart_and_check(h, &back, client).await {
                    Ok(()) => (i, Some(back)),
                    Err(_) => (i, None),
                }
            }
        });
        let mut healthy = Vec::new();
        for (i, back) in futures_util::future::join_all(jobs).await {
            if let Some(e) = rec.get_mut(self.hosts[i].node.name()) {
                match back {
                    Some(b) => {
                        e.after = Some(b);
                        e.outcome = "rolled_back";
                        healthy.push(i);
                    }
                    None => e.outcome = "failed",
                }
            }
        }
        // Hosts of the batch that never switched and did not fail are put back as they were.
        healthy.extend(batch.iter().copied().filter(|i| {
            !switched.contains(i)
                && rec
                    .get(self.hosts[*i].node.name())
                    .is_some_and(|e| e.error.is_none() && e.outcome != "unverified")
        }));
        if !healthy.is_empty()
            && let Err(e) = self.set_drained(&healthy, false).await
        {
            events.warn(format!("could not put hosts back into the upstream: {}", e.details()));
        }
        let stuck: Vec<&str> = switched
            .iter()
            .filter(|i| !healthy.contains(i))
            .map(|&i| self.hosts[i].node.name())
            .collect();
        if !stuck.is_empty() {
            events.warn(format!(
                "{} could not be switched back to a healthy release and stay out of the upstream",
                stuck.join(" ")
            ));
        }
    }

    async fn prune_all(&self, id: &str) {
        let pruned = self
            .session
            .each(&self.hosts, |h| async move {
                // Re-read: the release just staged has the host's time.
                let state = match remote::inspect(&h.node, &h.settings).await {
                    Ok(state) => state,
                    Err(e) => return (h, Err(e)),
                };
                let ids = remote::to_prune(&state, h.settings.keep);
                (h, remote::prune(&h.node, &h.settings, &ids).await.map(|()| ids))
            })
            .await;
        for (h, res) in pruned {
            match res {
                Ok(ids) if !ids.is_empty() => self.step(
                    h.node.name(),
                    "prune",
                    Status::Changed,
                    format!("removed {} (keeping {})", ids.join(" "), h.settings.keep),
                ),
                Ok(_) => {}
                Err(e) => self.session.events().warn(format!(
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

fn human_size(n: u64) -> String {
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
