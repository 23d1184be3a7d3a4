//! Runs validated playbooks on hosts.
//!
//! Failure policy (also in the README): a host that fails a task (not ignored, not rescued) or
//! becomes unreachable leaves the play; the other hosts go on. With `serial`, each batch runs the
//! whole play, handlers included, before the next batch starts. After every task the executor
//! counts the failed and unreachable hosts of the current batch: above `max_fail_percentage`
//! (strictly), or at the first failure with `any_errors_fatal`, or when every host of the batch
//! has failed, the run stops — no further task, batch or play starts.

mod batch;
pub(crate) mod facts;
mod loops;
mod task;

use crate::exit::Code;
use crate::inventory::{self, Inventory};
use crate::output::{Event, Events, HostCounts};
use crate::playbook::{Meta, Play, Playbook, Serial, Strategy, Task, TaskKind, Vars};
use crate::settings::{BecomeFlags, Layers, Variables};
use crate::template::Engine;
use crate::template::scope::HostVars;
use crate::transport::{Fleet, Target};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Everything `tend run` decided before running.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--check`.
    pub check: bool,
    /// `--diff`.
    pub diff: bool,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--skip-tags`.
    pub skip_tags: Vec<String>,
    /// `--start-at-task`.
    pub start_at_task: Option<String>,
    /// `--limit`.
    pub limit: Option<String>,
    /// `--become`, `--become-user`: under playbook keywords and variables.
    pub become_flags: BecomeFlags,
}

/// A host's state during the run.
#[derive(Debug, Clone, Default)]
struct HostState {
    target: Option<Target>,
    facts: Arc<Vars>,
    gathered: bool,
    /// `set_fact` and `register`.
    runtime: Arc<Vars>,
    failed: bool,
    unreachable: bool,
    ended: bool,
    notified: HashSet<String>,
    counts: HostCounts,
}

impl HostState {
    fn active(&self) -> bool {
        !self.failed && !self.unreachable && !self.ended
    }
}

/// The play being run, with what tasks need from it.
struct PlayCtx<'p> {
    play: &'p Play,
    role_defaults: Arc<Vars>,
    vars: Arc<Vars>,
    role_vars: Arc<Vars>,
    hosts: Vec<usize>,
    batch: Vec<usize>,
}

/// Runs playbooks.
pub struct Executor<'a> {
    inv: &'a Inventory,
    vars: &'a Variables,
    engine: &'a Engine,
    opts: RunOptions,
    /// `hostvars` for the current task; rebuilt after host state changes.
    hostvars_cache: Mutex<Option<Arc<HostVars>>>,
    events: Events,
    fleet: &'a Fleet,
    state: Mutex<Vec<HostState>>,
    /// Tasks before `--start-at-task`, by [`Task::id`]: skipped.
    skip: HashSet<usize>,
    stop_run: AtomicBool,
    end_play: AtomicBool,
    /// Blocks with a `rescue` being run: failures inside them are judged after the rescue.
    rescuable: std::sync::atomic::AtomicUsize,
}

/// The items of a `with_<lookup>` loop's value, for the template lookups of the same name.
pub fn loops_items(
    kind: crate::playbook::LoopKind,
    value: Json,
    paths: &[std::path::PathBuf],
    subdir: &str,
) -> Result<Vec<Json>, String> {
    loops::items(kind, value, (paths, subdir))
}

/// The play's role defaults (or vars) with those of the `include_role` a task came from over
/// them.
fn scoped(play: &Arc<Vars>, role: Option<&Vars>) -> Arc<Vars> {
    match role {
        Some(r) if !r.is_empty() => {
            let mut v = (**play).clone();
            v.extend(r.iter().map(|(k, x)| (k.clone(), x.clone())));
            Arc::new(v)
        }
        _ => play.clone(),
    }
}

/// A templated include: its path template, the directory it is resolved in, and each file it
/// can name with its tasks' range.
type Dynamic<'a> = (
    &'a str,
    &'a std::path::Path,
    &'a [(std::path::PathBuf, std::ops::Range<usize>)],
);

impl<'a> Executor<'a> {
    /// An executor for one run: its hosts are reached through `fleet`, its events go to
    /// `events`. Before [`Executor::run`], give it targets.
    pub fn new(
        inv: &'a Inventory,
        vars: &'a Variables,
        engine: &'a Engine,
        opts: RunOptions,
        fleet: &'a Fleet,
        events: Events,
    ) -> Self {
        Self {
            inv,
            vars,
            engine,
            opts,
            hostvars_cache: Mutex::new(None),
            events,
            fleet,
            state: Mutex::new(vec![HostState::default(); inv.hosts.len()]),
            skip: HashSet::new(),
            stop_run: AtomicBool::new(false),
            end_play: AtomicBool::new(false),
            rescuable: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How to reach each inventory host (`targets[i]` for host `i`; `None`: not in the run),
    /// and the tasks to pass over ([`start_at`]).
    pub fn set_targets(&mut self, targets: Vec<Option<Target>>, skip: HashSet<usize>) {
        self.with_state(|s| {
            for (st, t) in s.iter_mut().zip(targets) {
                st.target = t;
            }
        });
        self.skip = skip;
    }

    fn emit(&self, event: Event) {
        self.events.emit(event);
    }

    fn cancelled(&self) -> bool {
        self.fleet.cancel().is_cancelled()
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut Vec<HostState>) -> R) -> R {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Runs the playbooks, ends the event stream with the recap and returns the exit code.
    pub async fn run(&self, playbooks: &[Playbook], plan: Vec<Vec<usize>>) -> Code {
        let planned: std::collections::BTreeSet<usize> = plan.iter().flatten().copied().collect();
        let mut plan = plan.into_iter();
        'plays: for pb in playbooks {
            for play in &pb.plays {
                let hosts = plan.next().unwrap_or_default();
                if self.cancelled() || self.stop_run.load(Ordering::SeqCst) {
                    break 'plays;
                }
                self.run_play(play, hosts).await;
            }
        }
        self.fleet.close_all().await;
        if self.cancelled() {
            // Hosts the run was to work on but never started: the recap names them.
            self.with_state(|state| {
                for &h in &planned {
                    if let Some(s) = state.get_mut(h)
                        && s.counts.is_empty()
                    {
                        s.counts.interrupted = 1;
                    }
                }
            });
        }
        let counts: BTreeMap<String, HostCounts> = self.with_state(|state| {
            state
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.counts.is_empty() || s.target.is_some() && s.gathered)
                .map(|(i, s)| (self.inv.hosts[i].name.clone(), s.counts.clone()))
                .collect()
        });
        let code = Code::of(
            counts.values().any(|c| c.failed > 0),
            counts.values().any(|c| c.unreachable > 0),
            self.cancelled(),
        );
        self.events.finish(counts, code)
    }

    async fn run_play(&self, play: &Play, hosts: Vec<usize>) {
        self.end_play.store(false, Ordering::SeqCst);
        if hosts.is_empty() {
            self.emit(Event::Warning {
                message: format!(
                    "play `{}`: no host matches `{}` (an empty group, or outside `--limit` or `--shard`); skipped",
                    play.name, play.hosts
                ),
            });
            return;
        }
        self.emit(Event::PlayStart {
            name: play.name.clone(),
            hosts: hosts.iter().map(|&h| self.inv.hosts[h].name.clone()).collect(),
        });
        let batches = batches(&hosts, &play.serial);
        for batch in batches {
            let ctx = PlayCtx {
                play,
                role_defaults: Arc::new(play.role_defaults.clone()),
                vars: Arc::new(play.vars.clone()),
                role_vars: Arc::new(play.role_vars.clone()),
                hosts: hosts.clone(),
                batch: batch.clone(),
            };
            // Notifications are per play.
            self.with_state(|s| batch.iter().for_each(|&h| s[h].notified.clear()));
            // Facts are gathered when the play runs any task (not when resuming past it).
            let runs_tasks = play.sections.iter().flatten().any(|t| !self.skip.contains(&t.id));
            if play.gather_facts && runs_tasks {
                self.gather_facts(&ctx, &batch).await;
            }
            for section in &play.sections {
                if self.should_stop() {
                    break;
                }
                match play.strategy {
                    Strategy::Linear => self.run_tasks(&ctx, section, &batch).await,
                    Strategy::Free => {
                        let runs = batch.iter().map(|&h| {
                            let ctx = &ctx;
                            async move { self.run_tasks(ctx, section, &[h]).await }
                        });
                        futures_join_all(runs).await;
                    }
                }
                if !self.cancelled() {
                    self.flush_handlers(&ctx, &batch).await;
                }
            }
            if self.should_stop() {
                break;
            }
            let all_failed = self.with_state(|s| batch.iter().all(|&h| !s[h].active() && !s[h].ended));
            if all_failed && !batch.is_empty() {
                self.emit(Event::Warning {
                    message: format!("play `{}`: every host of the batch failed; stopping the run", play.name),
                });
                self.stop_run.store(true, Ordering::SeqCst);
                break;
            }
        }
    }

    fn should_stop(&self) -> bool {
        self.cancelled() || self.stop_run.load(Ordering::SeqCst) || self.end_play.load(Ordering::SeqCst)
    }

    fn tags_allow(&self, task: &Task) -> bool {
        let tags = &task.opts.tags;
        let has = |t: &str| tags.iter().any(|x| x == t);
        if self
            .opts
            .skip_tags
            .iter()
            .any(|s| has(s) || (s == "tagged" && !tags.is_empty()) || (s == "untagged" && tags.is_empty()))
        {
            return false;
        }
        if has("never") && !self.opts.tags.iter().any(|t| has(t)) {
            return false;
        }
        if self.opts.tags.is_empty() || has("always") {
            return true;
        }
        self.opts.tags.iter().any(|t| {
            t == "all" || has(t) || (t == "tagged" && !tags.is_empty()) || (t == "untagged" && tags.is_empty())
        })
    }

    /// Runs tasks in order on the hosts that are still active; returns when done or stopped.
    fn run_tasks<'s>(
        &'s self,
        ctx: &'s PlayCtx<'_>,
        tasks: &'s [Task],
        hosts: &'s [usize],
    ) -> crate::modules::BoxFuture<'s, ()> {
        Box::pin(async move {
            let mut next = 0;
            while let Some(task) = tasks.get(next) {
                next += 1;
                if self.should_stop() {
                    return;
                }
                let active: Vec<usize> =
                    self.with_state(|s| hosts.iter().copied().filter(|&h| s[h].active()).collect());
                if active.is_empty() {
                    return;
                }
                let (group, span) = self.group_at(ctx, &tasks[next - 1..]);
                if group.len() > 1 {
                    self.run_group(ctx, &group, &active).await;
                    next += span - 1;
                    continue;
                }
                match &task.kind {
                    TaskKind::Block { block, rescue, always } => {
                        self.run_block(ctx, &active, block, rescue, always).await
                    }
                    TaskKind::Include {
                        tasks: children,
                        template,
                        choices,
                        file,
                    } => {
                        let dynamic = template.as_deref().map(|t| (t, file.as_path(), choices.as_slice()));
                        self.run_include(ctx, task, (children, dynamic), &active).await
                    }
                    TaskKind::Meta(meta) => self.run_meta(ctx, task, *meta, &active).await,
                    TaskKind::Module { .. } => {
                        if self.skip.contains(&task.id) || !self.tags_allow(task) {
                            continue;
                        }
                        self.run_module_task(ctx, task, &active, false).await;
                        self.check_failure_policy(ctx);
                    }
                }
            }
        })
    }

    fn check_failure_policy(&self, ctx: &PlayCtx<'_>) {
        if self.rescuable.load(Ordering::SeqCst) > 0 {
            return;
        }
        let play = ctx.play;
        let (failed, total) = self.with_state(|s| {
            (
                ctx.batch.iter().filter(|&&h| s[h].failed || s[h].unreachable).count(),
                ctx.batch.len(),
            )
        });
        if failed == 0 || total == 0 {
            return;
        }
        let pct = failed as f64 * 100.0 / total as f64;
        let reason = if play.any_errors_fatal {
            Some("`any_errors_fatal` is set".to_string())
        } else {
            play.max_fail_percentage.filter(|max| pct > *max).map(|max| {
                format!("{failed} of {total} hosts in the batch failed ({pct:.0}% > max_fail_percentage {max})")
            })
        };
        if let Some(reason) = reason {
            self.emit(Event::Warning {
                message: format!("play `{}` stopped: {reason}", play.name),
            });
            self.stop_run.store(true, Ordering::SeqCst);
        }
    }

    async fn run_block(&self, ctx: &PlayCtx<'_>, hosts: &[usize], block: &[Task], rescue: &[Task], always: &[Task]) {
        if !rescue.is_empty() {
            self.rescuable.fetch_add(1, Ordering::SeqCst);
        }
        self.run_tasks(ctx, block, hosts).await;
        if !rescue.is_empty() {
            self.rescuable.fetch_sub(1, Ordering::SeqCst);
        }
        let failed: Vec<usize> = self.with_state(|s| {
            hosts
                .iter()
                .copied()
                .filter(|&h| s[h].failed && !s[h].unreachable)
                .collect()
        });
        if !rescue.is_empty() && !failed.is_empty() && !self.cancelled() {
            self.with_state(|s| {
                for &h in &failed {
                    s[h].failed = false;
                    s[h].counts.failed = s[h].counts.failed.saturating_sub(1);
                    s[h].counts.rescued += 1;
                }
            });
            self.run_tasks(ctx, rescue, &failed).await;
        }
        if !always.is_empty() && !self.cancelled() {
            // `always` runs on hosts that failed in the block too; they stay failed afterwards.
            let still_failed: Vec<usize> = self.with_state(|s| {
                let f: Vec<usize> = hosts
                    .iter()
                    .copied()
                    .filter(|&h| s[h].failed && !s[h].unreachable)
                    .collect();
                f.iter().for_each(|&h| s[h].failed = false);
                f
            });
            self.run_tasks(ctx, always, hosts).await;
            self.with_state(|s| still_failed.iter().for_each(|&h| s[h].failed = true));
        }
        self.check_failure_policy(ctx);
    }

    /// Runs an include for `hosts`: its `when` and `loop` per host; a templated path
    /// (`dynamic`: template, base directory, the files it can name) chooses per host and
    /// item which file's tasks run.
    async fn run_include(
        &self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        (children, dynamic): (&[Task], Option<Dynamic<'_>>),
        hosts: &[usize],
    ) {
        // `when` and `loop` apply to the include as a whole, per host.
        let mut per_host: Vec<(usize, Vec<Json>)> = Vec::new();
        for &h in hosts {
            let scope = self.scope(ctx, h, task);
            match task::conditions_hold(self.engine, &task.opts.when, &scope) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    self.fail_host_now(task, h, &e);
                    continue;
                }
            }
            let items = match &task.opts.loop_items {
                None => vec![Json::Null],
                Some(spec) => match task::loop_items(self.engine, task, spec, &scope) {
                    Ok(items) => items,
                    Err(e) => {
                        self.fail_host_now(task, h, &e);
                        continue;
                    }
                },
            };
            per_host.push((h, items));
        }
        let rounds = per_host.iter().map(|(_, i)| i.len()).max().unwrap_or(0);
        let loop_var = task.opts.loop_var.clone().unwrap_or_else(|| "item".into());
        for i in 0..rounds {
            let round: Vec<usize> = per_host
                .iter()
                .filter(|(_, items)| i < items.len())
                .map(|(h, _)| *h)
                .collect();
            if task.opts.loop_items.is_some() {
                self.invalidate_hostvars();
                self.with_state(|s| {
                    for (h, items) in &per_host {
                        if let Some(item) = items.get(i) {
                            Arc::make_mut(&mut s[*h].runtime).insert(loop_var.clone(), item.clone());
                        }
                    }
                });
            }
            let Some((template, base, choices)) = dynamic else {
                self.run_tasks(ctx, children, &round).await;
                continue;
            };
            // Each host's file, as its variables (and this round's item) name it.
            let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
            for &h in &round {
                let scope = self.scope(ctx, h, task);
                let rendered = match self.engine.render(template, &scope) {
                    Ok(Json::String(s)) => s,
                    Ok(other) => other.to_string(),
                    Err(e) => {
                        self.fail_host_now(task, h, &format!("include_tasks `{template}`: {e}"));
                        continue;
                    }
                };
                let wanted = std::fs::canonicalize(base.join(&rendered)).ok();
                let chosen = choices.iter().position(|(f, _)| {
                    wanted
                        .as_ref()
                        .is_some_and(|w| std::fs::canonicalize(f).ok().as_ref() == Some(w))
                });
                match chosen {
                    Some(c) => match groups.iter_mut().find(|(g, _)| *g == c) {
                        Some((_, hs)) => hs.push(h),
                        None => groups.push((c, vec![h])),
                    },
                    None => self.fail_host_now(
                        task,
                        h,
                        &format!(
                            "include_tasks: `{rendered}` (from `{template}`) is not a tasks file in {}",
                            base.display()
                        ),
                    ),
                }
            }
            for (c, hs) in groups {
                let range = choices[c].1.clone();
                self.run_tasks(ctx, &children[range], &hs).await;
            }
        }
    }

    fn fail_host_now(&self, task: &Task, h: usize, error: &str) {
        let result = crate::output::HostResult::failed(&self.inv.hosts[h].name, error);
        self.emit(Event::TaskStart {
            name: task.display_name(),
            location: task.span.file_line(),
            hosts: 1,
            handler: false,
        });
        self.emit(Event::Result {
            task: task.display_name(),
            location: Some(task.span.file_line()),
            result: Box::new(result),
        });
        self.emit(Event::TaskEnd {
            name: task.display_name(),
            duration_ms: 0,
        });
        self.with_state(|s| {
            s[h].failed = true;
            s[h].counts.failed += 1;
        });
    }

    async fn run_meta(&self, ctx: &PlayCtx<'_>, task: &Task, meta: Meta, hosts: &[usize]) {
        match meta {
            Meta::FlushHandlers => self.flush_handlers(ctx, hosts).await,
            Meta::EndPlay => self.end_play.store(true, Ordering::SeqCst),
            Meta::EndHost => {
                for &h in hosts {
                    let scope = self.scope(ctx, h, task);
                    if task::conditions_hold(self.engine, &task.opts.when, &scope).unwrap_or(false) {
                        self.with_state(|s| s[h].ended = true);
                    }
                }
            }
            Meta::Noop => {}
        }
    }

    async fn flush_handlers(&self, ctx: &PlayCtx<'_>, hosts: &[usize]) {
        for handler in &ctx.play.handlers {
            let mut keys: Vec<&str> = handler.opts.listen.iter().map(String::as_str).collect();
            if let Some(n) = &handler.name {
                keys.push(n);
            }
            let targets: Vec<usize> = self.with_state(|s| {
                hosts
                    .iter()
                    .copied()
                    .filter(|&h| s[h].active() && keys.iter().any(|k| s[h].notified.contains(*k)))
                    .collect()
            });
            if targets.is_empty() {
                continue;
            }
            self.run_module_task(ctx, handler, &targets, true).await;
            self.with_state(|s| {
                for &h in &targets {
                    for k in &keys {
                        s[h].notified.remove(*k);
                    }
                }
            });
        }
    }

    async fn gather_facts(&self, ctx: &PlayCtx<'_>, hosts: &[usize]) {
        use crate::output::{HostResult, Status};
        let todo: Vec<usize> = self.with_state(|s| {
            hosts
                .iter()
                .copied()
                .filter(|&h| s[h].active() && !s[h].gathered)
                .collect()
        });
        if todo.is_empty() {
            return;
        }
        let name = "Gathering Facts".to_string();
        let location = ctx.play.span.file_line();
        let start = std::time::Instant::now();
        self.emit(Event::TaskStart {
            name: name.clone(),
            location: location.clone(),
            hosts: todo.len(),
            handler: false,
        });
        let mut running: futures_util::stream::FuturesUnordered<_> = todo
            .iter()
            .map(|&h| self.gather_one(h, &ctx.play.gather_subset))
            .collect();
        while let Some((h, result, took)) = futures_util::StreamExt::next(&mut running).await {
            let host = &self.inv.hosts[h].name;
            let mut event = self.with_state(|s| {
                let st = &mut s[h];
                match result {
                    Ok(facts) => {
                        st.facts = Arc::new(facts);
                        st.gathered = true;
                        st.counts.ok += 1;
                        HostResult::new(host, Status::Ok)
                    }
                    Err(e) => {
                        let r = match e {
                            task::TaskError::Unreachable(e) => crate::ops::adhoc::transport_result(host, &e),
                            task::TaskError::Failed(msg) => HostResult::failed(host, msg),
                        };
                        if r.status == Status::Unreachable {
                            st.unreachable = true;
                        } else {
                            st.failed = true;
                        }
                        st.counts.add(r.status);
                        r
                    }
                }
            });
            event.duration_ms = took.as_millis() as u64;
            self.emit(Event::Result {
                task: name.clone(),
                location: Some(location.clone()),
                result: Box::new(event),
            });
        }
        self.invalidate_hostvars();
        self.emit(Event::TaskEnd {
            name,
            duration_ms: start.elapsed().as_millis() as u64,
        });
    }

    /// Runs the facts script on one host.
    async fn gather_one(
        &self,
        h: usize,
        subset: &[String],
    ) -> (usize, Result<Vars, task::TaskError>, std::time::Duration) {
        let start = std::time::Instant::now();
        let result = async {
            let target = self
                .with_state(|s| s[h].target.clone())
                .ok_or("the host's connection variables are invalid")?;
            let _permit = self.fork().await?;
            let host = self.host(&target, None).await?;
            let command = crate::transport::RemoteCommand::new(facts::SCRIPT);
            let out = host.run(&command, crate::transport::Input::None).await?;
            let all = facts::parse(&String::from_utf8_lossy(&out.stdout));
            Ok(facts::select(all, subset, &[])?)
        }
        .await;
        (h, result, start.elapsed())
    }

    /// The variables of host `h` for `task`, in the documented precedence
    /// ([`crate::settings`]): role defaults, inventory, facts, play vars and vars_files, role
    /// vars, task/block vars, set_fact/register, magic variables, extra vars.
    fn scope(&self, ctx: &PlayCtx<'_>, h: usize, task: &Task) -> crate::template::Scope {
        let (facts, runtime) = self.with_state(|s| (s[h].facts.clone(), s[h].runtime.clone()));
        let mut fact_vars = Vars::new();
        for (k, v) in facts.iter() {
            fact_vars.insert(format!("ansible_{k}"), v.clone());
        }
        fact_vars.insert("ansible_facts".into(), Json::Object((*facts).clone()));
        let names = |list: &[usize]| {
            Json::Array(
                list.iter()
                    .map(|&i| Json::String(self.inv.hosts[i].name.clone()))
                    .collect(),
            )
        };
        let mut magic = Vars::new();
        magic.insert("ansible_play_hosts_all".into(), names(&ctx.hosts));
        let active: Vec<usize> = self.with_state(|s| ctx.hosts.iter().copied().filter(|&i| s[i].active()).collect());
        magic.insert("ansible_play_hosts".into(), names(&active));
        magic.insert("play_hosts".into(), names(&active));
        magic.insert("ansible_play_batch".into(), names(&ctx.batch));
        magic.insert("ansible_check_mode".into(), self.opts.check.into());
        magic.insert("ansible_diff_mode".into(), self.opts.diff.into());
        magic.insert("omit".into(), crate::template::OMIT.into());
        magic.insert("playbook_dir".into(), playbook_dir(&ctx.play.span.source.path).into());
        let mut scope = self.vars.scope(
            h,
            Layers {
                defaults: Some(scoped(&ctx.role_defaults, task.opts.scoped_role.as_ref().map(|r| &r.0))),
                facts: Some(Arc::new(fact_vars)),
                play: Some(ctx.vars.clone()),
                role: Some(scoped(&ctx.role_vars, task.opts.scoped_role.as_ref().map(|r| &r.1))),
                task: (!task.opts.vars.is_empty()).then(|| Arc::new(task.opts.vars.clone())),
                runtime: Some(runtime),
                magic,
            },
        );
        scope.set_hostvars(self.hostvars());
        scope.set_search_paths(&task.opts.search_paths);
        scope
    }

    /// Forgets `hostvars` after a host's variables changed.
    fn invalidate_hostvars(&self) {
        if let Ok(mut c) = self.hostvars_cache.lock() {
            *c = None;
        }
    }

    fn hostvars(&self) -> Arc<HostVars> {
        if let Ok(c) = self.hostvars_cache.lock()
            && let Some(h) = c.as_ref()
        {
            return h.clone();
        }
        let built = self.build_hostvars();
        if let Ok(mut c) = self.hostvars_cache.lock() {
            *c = Some(built.clone());
        }
        built
    }

    fn build_hostvars(&self) -> Arc<HostVars> {
        self.with_state(|s| {
            let mut hosts = BTreeMap::new();
            for (i, h) in self.inv.hosts.iter().enumerate() {
                let mut facts = Vars::new();
                for (k, v) in s[i].facts.iter() {
                    facts.insert(format!("ansible_{k}"), v.clone());
                }
                if !s[i].facts.is_empty() {
                    facts.insert("ansible_facts".into(), Json::Object((*s[i].facts).clone()));
                }
                let vars = self.vars.hostvars_entry(i, &facts, &s[i].runtime);
                hosts.insert(h.name.clone(), Arc::new(vars));
            }
            Arc::new(HostVars::new(hosts))
        })
    }
}

/// The tasks before the first one named `wanted` (`--start-at-task`), by [`Task::id`], to be
/// passed over; an unknown name is an input error.
pub fn start_at(playbooks: &[Playbook], wanted: Option<&str>) -> Result<HashSet<usize>, crate::diagnostic::Diagnostic> {
    let Some(wanted) = wanted else {
        return Ok(HashSet::new());
    };
    fn walk(tasks: &[Task], wanted: &str, skip: &mut HashSet<usize>, names: &mut Vec<String>) -> bool {
        for t in tasks {
            if t.name.as_deref() == Some(wanted) {
                return true;
            }
            names.extend(t.name.clone());
            let found = match &t.kind {
                TaskKind::Block { block, rescue, always } => {
                    walk(block, wanted, skip, names)
                        || walk(rescue, wanted, skip, names)
                        || walk(always, wanted, skip, names)
                }
                TaskKind::Include { tasks, .. } => walk(tasks, wanted, skip, names),
                _ => false,
            };
            if found {
                return true;
            }
            skip.insert(t.id);
        }
        false
    }
    let mut skip = HashSet::new();
    let mut names = Vec::new();
    for play in playbooks.iter().flat_map(|p| &p.plays) {
        for section in &play.sections {
            if walk(section, wanted, &mut skip, &mut names) {
                return Ok(skip);
            }
        }
    }
    let d = crate::diagnostic::Diagnostic::plain(format!("--start-at-task: no task is named `{wanted}`"));
    Err(
        match crate::diagnostic::did_you_mean(wanted, names.iter().map(String::as_str)) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None => d,
        },
    )
}

/// Resolves every play's host pattern (templates may use `-e` only) before anything connects,
/// so a bad pattern stops the run first; a play outside `limit` gets no hosts.
pub fn plan(
    inv: &Inventory,
    vars: &Variables,
    engine: &Engine,
    playbooks: &[Playbook],
    limit: Option<&str>,
) -> Result<Vec<Vec<usize>>, crate::diagnostic::Diagnostic> {
    let mut scope = crate::template::Scope::new();
    scope.push(vars.extra().clone());
    let mut out = Vec::new();
    for pb in playbooks {
        for play in &pb.plays {
            let pattern = match engine.render(&play.hosts, &scope) {
                Ok(Json::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => {
                    return Err(play
                        .span
                        .error(format!("play `{}`: hosts `{}`: {e}", play.name, play.hosts))
                        .with_hint("host patterns may use extra vars (`-e`) only"));
                }
            };
            // A play outside `--limit`, or on a group without hosts, is skipped (as in
            // Ansible); a pattern or limit that names nothing of the inventory is an error,
            // the play's at the play.
            let mut hosts = inventory::select_for_play(inv, &pattern).map_err(|e| {
                let d = play.span.error(e.message);
                match e.hint {
                    Some(h) => d.with_hint(h),
                    None => d,
                }
            })?;
            if let Some(limit) = limit {
                let allowed = inventory::select(inv, limit, None)?;
                hosts.retain(|h| allowed.contains(h));
            }
            out.push(hosts);
        }
    }
    Ok(out)
}

/// The absolute directory of a playbook file, as Ansible's `playbook_dir`.
fn playbook_dir(path: &std::path::Path) -> String {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// Splits hosts into `serial` batches (the last size repeats); no `serial`: one batch.
fn batches(hosts: &[usize], serial: &[Serial]) -> Vec<Vec<usize>> {
    if serial.is_empty() || hosts.is_empty() {
        return vec![hosts.to_vec()];
    }
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let spec = serial[i.min(serial.len() - 1)];
        let size = match spec {
            Serial::Count(n) => n,
            Serial::Percent(p) => ((hosts.len() as f64 * p / 100.0).floor() as usize).max(1),
        }
        .clamp(1, rest.len());
        out.push(rest[..size].to_vec());
        rest = &rest[size..];
        i += 1;
    }
    out
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut set: futures_util::stream::FuturesUnordered<F> = futures.into_iter().collect();
    while futures_util::StreamExt::next(&mut set).await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches_repeat_the_last_size() {
        let hosts: Vec<usize> = (0..10).collect();
        let sizes = |s: &[Serial]| batches(&hosts, s).iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(&[]), [10]);
        assert_eq!(sizes(&[Serial::Count(3)]), [3, 3, 3, 1]);
        assert_eq!(sizes(&[Serial::Count(1), Serial::Percent(50.0)]), [1, 5, 4]);
        assert_eq!(sizes(&[Serial::Percent(25.0)]), [2, 2, 2, 2, 2]);
    }
}
