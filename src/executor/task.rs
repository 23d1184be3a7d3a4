//! One module task on a set of hosts: `when`, `loop`, templated arguments, `delegate_to`,
//! `until`/`retries`, `changed_when`/`failed_when`, `register`, `notify`, `run_once`, `no_log`.

use super::{Executor, PlayCtx};
use crate::modules::{self, Ctx, ModuleError, ModuleResult, Runs};
use crate::output::{Event, HostResult, Status};
use crate::playbook::{Task, TaskKind};
use crate::template::{Engine, Scope, TemplateError};
use crate::transport::{Become, Target, TransportError};
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// All `when` conditions hold.
pub(super) fn conditions_hold(engine: &Engine, conditions: &[String], scope: &Scope) -> Result<bool, String> {
    for c in conditions {
        if !engine
            .condition(c, scope)
            .map_err(|e| format!("condition `{c}`: {e}"))?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The items of a task's loop, for a host's scope.
pub(super) fn loop_items(engine: &Engine, task: &Task, spec: &Json, scope: &Scope) -> Result<Vec<Json>, String> {
    let value = engine.render_value(spec, scope).map_err(|e| format!("loop: {e}"))?;
    // `with_first_found` looks where the task's module looks for its file.
    let subdir = match &task.kind {
        TaskKind::Module { module, .. } => match module.name() {
            "include_vars" => "vars",
            "template" => "templates",
            _ => "files",
        },
        _ => "files",
    };
    super::loops::items(task.opts.loop_kind, value, (&task.opts.search_paths, subdir))
}

/// Why a module call did not give a result: the host could not be reached (the error stays
/// typed to the recap), or the task failed before or around the module (a template, `until`).
#[derive(Debug, Clone)]
pub(super) enum TaskError {
    /// The host could not be reached.
    Unreachable(TransportError),
    /// The task failed with a message.
    Failed(String),
}

impl From<String> for TaskError {
    fn from(msg: String) -> Self {
        Self::Failed(msg)
    }
}

/// A host that stops answering is unreachable; any other transport failure (a time limit) is
/// the task's.
impl From<TransportError> for TaskError {
    fn from(e: TransportError) -> Self {
        if e.is_unreachable() {
            Self::Unreachable(e)
        } else {
            Self::Failed(e.to_string())
        }
    }
}

impl From<&str> for TaskError {
    fn from(msg: &str) -> Self {
        Self::Failed(msg.to_string())
    }
}

/// How a module call ended: an error, skipped by `when` (`None`), or the module's result and
/// the host it was delegated to.
pub(super) type Outcome = Result<Option<(ModuleResult, Option<String>)>, TaskError>;

/// A module call's arguments and where and how it runs, templated for one host.
pub(super) struct Prepared {
    pub(super) args: modules::Args,
    pub(super) target: Target,
    pub(super) delegated: Option<String>,
    pub(super) escalate: Option<Become>,
    pub(super) environment: Vec<(String, String)>,
}

/// What one host did for one task.
pub(super) struct HostRun {
    pub(super) host: usize,
    pub(super) events: Vec<HostResult>,
    register: Json,
    facts: Map<String, Json>,
    /// Facts for the host's `ansible_facts` ([`modules::ModuleResult::host_facts`]).
    host_facts: Map<String, Json>,
    changed: bool,
    failed: bool,
    ignored: bool,
    skipped: bool,
    unreachable: bool,
    /// `no_log` and `ignore_unreachable` as decided for this host (templated ones included).
    no_log: Option<bool>,
    ignore_unreachable: Option<bool>,
}

impl HostRun {
    pub(super) fn new(host: usize) -> Self {
        Self {
            host,
            events: Vec::new(),
            register: Json::Null,
            facts: Map::new(),
            host_facts: Map::new(),
            changed: false,
            failed: false,
            ignored: false,
            skipped: false,
            unreachable: false,
            no_log: None,
            ignore_unreachable: None,
        }
    }
}

impl Executor<'_> {
    pub(super) async fn run_module_task(&self, ctx: &PlayCtx<'_>, task: &Task, hosts: &[usize], handler: bool) {
        let name = task.display_name();
        let location = task.span.file_line();
        let run_once = task.opts.run_once.unwrap_or(false);
        let runners: Vec<usize> = if run_once {
            hosts.iter().copied().take(1).collect()
        } else {
            hosts.to_vec()
        };
        let start = Instant::now();
        self.emit(Event::TaskStart {
            name: name.clone(),
            location: location.clone(),
            hosts: runners.len(),
            handler,
        });
        let mut running: futures_util::stream::FuturesUnordered<_> =
            runners.iter().map(|&h| self.host_task(ctx, task, h)).collect();
        while let Some(run) = futures_util::StreamExt::next(&mut running).await {
            let targets: Vec<usize> = if run_once { hosts.to_vec() } else { vec![run.host] };
            self.report(task, &name, &location, run, &targets);
        }
        self.emit(Event::TaskEnd {
            name,
            duration_ms: start.elapsed().as_millis() as u64,
        });
    }

    /// Records a host's result for `targets` (the host itself, or every host for `run_once`)
    /// and reports its events.
    pub(super) fn report(&self, task: &Task, name: &str, location: &str, run: HostRun, targets: &[usize]) {
        self.apply(task, &run, targets);
        for mut event in run.events {
            // The event stream hides every value of a `no_log` result, in every output.
            event.no_log = run.no_log.or(task.opts.no_log) == Some(true);
            self.emit(Event::Result {
                task: name.to_string(),
                location: Some(location.to_string()),
                result: Box::new(event),
            });
        }
    }

    /// Records a host's result: counts, failure, register, facts, notifications.
    fn apply(&self, task: &Task, run: &HostRun, targets: &[usize]) {
        self.invalidate_hostvars();
        self.with_state(|s| {
            for &h in targets {
                let st = &mut s[h];
                let vars = Arc::make_mut(&mut st.runtime);
                if let Some(reg) = &task.opts.register {
                    vars.insert(reg.clone(), run.register.clone());
                }
                vars.extend(run.facts.iter().map(|(k, v)| (k.clone(), v.clone())));
                if !run.host_facts.is_empty() {
                    let facts = Arc::make_mut(&mut st.facts);
                    facts.extend(run.host_facts.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                if run.unreachable {
                    if run.ignore_unreachable.or(task.opts.ignore_unreachable) == Some(true) {
                        st.counts.ignored += 1;
                    } else {
                        st.unreachable = true;
                        st.counts.unreachable += 1;
                    }
                } else if run.failed && !run.ignored {
                    st.failed = true;
                    st.counts.failed += 1;
                } else if run.ignored {
                    st.counts.ignored += 1;
                } else if run.skipped {
                    st.counts.skipped += 1;
                } else if run.changed {
                    st.counts.changed += 1;
                } else {
                    st.counts.ok += 1;
                }
                if run.changed && !run.failed {
                    st.notified.extend(task.opts.notify.iter().cloned());
                }
            }
        });
    }

    /// What a host did for a task without a loop whose module call ended with `outcome`.
    pub(super) fn single_run(
        &self,
        task: &Task,
        module: &'static dyn modules::Module,
        h: usize,
        scope: &mut Scope,
        outcome: Outcome,
        duration: Duration,
    ) -> HostRun {
        let mut run = HostRun::new(h);
        let mut ev = HostResult::new(&self.inv.hosts[h].name, Status::Ok);
        run.register = self.settle(task, module, scope, &mut run, &mut ev, outcome);
        ev.duration_ms = duration.as_millis() as u64;
        run.skipped = ev.status == Status::Skipped;
        run.events.push(ev);
        run
    }

    pub(super) async fn host_task(&self, ctx: &PlayCtx<'_>, task: &Task, h: usize) -> HostRun {
        let host_name = self.inv.hosts[h].name.clone();
        let mut run = HostRun::new(h);
        let TaskKind::Module { module, args } = &task.kind else {
            return run;
        };
        let mut scope = self.scope(ctx, h, task);
        run.no_log = task.opts.no_log;
        run.ignore_unreachable = task.opts.ignore_unreachable;
        let ignore = task.opts.ignore_errors == Some(true);
        let fail = |run: &mut HostRun, msg: String| {
            run.failed = true;
            run.ignored = ignore;
            let mut e = HostResult::failed(&host_name, &msg);
            if ignore {
                e.status = Status::Ignored;
            }
            run.register = serde_json::json!({"failed": true, "changed": false, "msg": msg});
            run.events.push(e);
        };
        let items: Option<Vec<Json>> = match &task.opts.loop_items {
            None => None,
            Some(spec) => match loop_items(self.engine, task, spec, &scope) {
                Ok(items) => Some(items),
                Err(e) => {
                    fail(&mut run, e);
                    return run;
                }
            },
        };
        let loop_var = task.opts.loop_var.clone().unwrap_or_else(|| "item".into());
        let mut results = Vec::new();
        let list = items.clone().unwrap_or_else(|| vec![Json::Null]);
        for (index, item) in list.iter().enumerate() {
            if self.cancelled() {
                break;
            }
            if items.is_some() {
                scope.set(&loop_var, item.clone());
                if let Some(iv) = &task.opts.index_var {
                    scope.set(iv, Json::from(index));
                }
            }
            let label = items.as_ref().map(|_| match &task.opts.label {
                Some(l) => match self.engine.render(l, &scope) {
                    Ok(Json::String(s)) => s,
                    Ok(v) => v.to_string(),
                    Err(_) => l.clone(),
                },
                None => match item {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                },
            });
            let start = Instant::now();
            // A templated `no_log` is decided for every item, skipped ones too, and hides the
            // result when it cannot be decided (as Ansible masks it).
            if let Some((_, condition)) = task
                .opts
                .flag_templates
                .iter()
                .find(|(f, _)| *f == crate::playbook::Flag::NoLog)
            {
                let hide = self.engine.condition(condition, &scope).unwrap_or(true);
                run.no_log = Some(run.no_log == Some(true) || hide);
            }
            // The other templated keywords (`ignore_errors`, `become`, ...) are decided for this
            // host and item once `when` holds (as Ansible decides them).
            let mut resolved = None;
            let outcome: Outcome = match conditions_hold(self.engine, &task.opts.when, &scope) {
                Err(e) => Err(e.into()),
                Ok(false) => Ok(None),
                Ok(true) => match self.resolve_flags(task, &scope) {
                    Err(e) => Err(e.into()),
                    Ok(r) => {
                        resolved = r;
                        let t = resolved.as_ref().unwrap_or(task);
                        self.run_item(t, *module, args, &scope, h).await.map(Some)
                    }
                },
            };
            let item_task = resolved.as_ref().unwrap_or(task);
            if let Some(r) = &resolved {
                run.no_log = Some(run.no_log == Some(true) || r.opts.no_log == Some(true));
                run.ignore_unreachable = r.opts.ignore_unreachable.or(run.ignore_unreachable);
            }
            let ignore = item_task.opts.ignore_errors == Some(true);
            let mut ev = HostResult::new(&host_name, Status::Ok);
            ev.item = label.clone();
            let mut item_json = self.settle(item_task, *module, &mut scope, &mut run, &mut ev, outcome);
            ev.duration_ms = start.elapsed().as_millis() as u64;
            if let (Some(obj), Some(_)) = (item_json.as_object_mut(), &items) {
                obj.insert(loop_var.clone(), item.clone());
            }
            results.push((ev.status, item_json));
            run.events.push(ev);
            if run.unreachable || (run.failed && !ignore && items.is_none()) {
                break;
            }
        }
        run.skipped = !results.is_empty() && results.iter().all(|(s, _)| *s == Status::Skipped);
        run.register = match items {
            None => results.pop().map(|(_, j)| j).unwrap_or(Json::Null),
            Some(_) => serde_json::json!({
                "changed": run.changed,
                "failed": run.failed,
                "skipped": run.skipped,
                "msg": if run.failed { "One or more items failed" } else { "All items completed" },
                "results": results.into_iter().map(|(_, j)| j).collect::<Vec<_>>(),
            }),
        };
        run
    }

    /// The task with its templated boolean keywords decided in `scope`; `None` when it has none.
    fn resolve_flags(&self, task: &Task, scope: &Scope) -> Result<Option<Task>, String> {
        if task.opts.flag_templates.is_empty() {
            return Ok(None);
        }
        let mut t = task.clone();
        for (flag, condition) in &task.opts.flag_templates {
            let b = self
                .engine
                .condition(condition, scope)
                .map_err(|e| format!("{flag:?} `{condition}`: {e}"))?;
            t.opts.set_flag(*flag, b);
        }
        Ok(Some(t))
    }

    /// Turns a module call's outcome into the host's event and run state, applying
    /// `changed_when`/`failed_when`; returns what `register` stores for it.
    fn settle(
        &self,
        task: &Task,
        module: &'static dyn modules::Module,
        scope: &mut Scope,
        run: &mut HostRun,
        ev: &mut HostResult,
        outcome: Outcome,
    ) -> Json {
        let ignore = task.opts.ignore_errors == Some(true);
        let mut item_json;
        match outcome {
            Err(error) => {
                let unreachable = matches!(error, TaskError::Unreachable(_));
                let msg = match error {
                    TaskError::Unreachable(e) => {
                        ev.hint = e.hint().map(str::to_string);
                        e.to_string()
                    }
                    TaskError::Failed(msg) => msg,
                };
                ev.msg = Some(msg.clone());
                if unreachable {
                    ev.status = Status::Unreachable;
                    run.unreachable = true;
                } else {
                    ev.status = if ignore { Status::Ignored } else { Status::Failed };
                    run.failed = true;
                    run.ignored = ignore;
                }
                item_json =
                    serde_json::json!({"failed": true, "changed": false, "msg": msg, "unreachable": unreachable});
            }
            Ok(None) => {
                ev.status = Status::Skipped;
                item_json = serde_json::json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False"});
            }
            Ok(Some((mut r, delegated))) => {
                ev.delegated_to = delegated;
                item_json = result_json(&r);
                // changed_when / failed_when see the result under the `register` name.
                if task.opts.changed_when.is_some() || task.opts.failed_when.is_some() {
                    let mut s2 = scope.clone();
                    if let Some(reg) = &task.opts.register {
                        s2.set(reg, item_json.clone());
                    }
                    for (k, v) in item_json.as_object().into_iter().flatten() {
                        if matches!(
                            k.as_str(),
                            "rc" | "stdout" | "stderr" | "stdout_lines" | "stderr_lines" | "changed" | "failed"
                        ) {
                            s2.set(k, v.clone());
                        }
                    }
                    if let Some(c) = &task.opts.changed_when {
                        match conditions_hold(self.engine, c, &s2) {
                            Ok(v) => r.changed = v,
                            Err(e) => {
                                r.failed = true;
                                r.msg = Some(format!("changed_when: {e}"));
                            }
                        }
                    }
                    if let Some(c) = &task.opts.failed_when {
                        match c
                            .iter()
                            .map(|x| self.engine.condition(x, &s2))
                            .collect::<Result<Vec<bool>, TemplateError>>()
                        {
                            Ok(v) => {
                                r.failed = v.iter().any(|b| *b);
                                if r.failed && r.msg.is_none() {
                                    r.msg = Some("failed_when condition was true".into());
                                }
                            }
                            Err(e) => {
                                r.failed = true;
                                r.msg = Some(format!("failed_when: {e}"));
                            }
                        }
                    }
                    item_json = result_json(&r);
                }
                ev.status = if r.failed {
                    if ignore { Status::Ignored } else { Status::Failed }
                } else if r.skipped {
                    Status::Skipped
                } else if r.changed {
                    Status::Changed
                } else {
                    Status::Ok
                };
                ev.changed = r.changed && !r.failed;
                ev.msg = r.msg.clone();
                ev.show_msg = module.name() == "debug";
                ev.rc = r.rc;
                ev.cmd = if r.failed { r.cmd.clone() } else { None };
                ev.stdout_tail = modules::tail(&r.stdout, 10);
                ev.stderr_tail = modules::tail(&r.stderr, 10);
                ev.diff = r.diff.clone();
                run.changed |= r.changed && !r.failed;
                run.failed |= r.failed;
                run.ignored = run.failed && ignore;
                if !r.failed {
                    run.facts.extend(r.facts.clone());
                    run.host_facts.extend(r.host_facts.clone());
                    for (k, v) in &r.host_facts {
                        scope.set(&format!("ansible_{k}"), v.clone());
                    }
                    for (k, v) in &r.facts {
                        scope.set(k, v.clone());
                    }
                }
            }
        }
        item_json
    }

    /// Runs one module call (with `until`/`retries`).
    async fn run_item(
        &self,
        task: &Task,
        module: &'static dyn modules::Module,
        raw_args: &Map<String, Json>,
        scope: &Scope,
        h: usize,
    ) -> Result<(ModuleResult, Option<String>), TaskError> {
        let Prepared {
            args,
            target,
            delegated,
            escalate,
            environment,
        } = self.prepare(task, module, raw_args, scope, h)?;
        let _permit = self.fork().await?;
        let remote = match module.runs() {
            Runs::Controller => None,
            Runs::Host => Some(self.host(&target, escalate).await?),
        };
        let search_paths = task.opts.search_paths.clone();
        let mctx = Ctx {
            remote: remote.as_ref(),
            host: &self.inv.hosts[h].name,
            check: task.opts.check_mode.unwrap_or(self.opts.check),
            diff: self.opts.diff,
            timeout: task.opts.timeout.map(Duration::from_secs),
            environment: &environment,
            engine: self.engine,
            scope,
            search_paths: &search_paths,
        };
        let retries = if task.opts.until.is_some() {
            task.opts.retries.unwrap_or(3)
        } else {
            0
        };
        let delay = Duration::from_secs_f64(task.opts.delay.unwrap_or(5.0).max(0.0));
        let mut attempt = 0;
        loop {
            let result = result_of(module.run(&mctx, &args).await)?;
            let Some(until) = &task.opts.until else {
                return Ok((result, delegated));
            };
            let mut s2 = scope.clone();
            let json = result_json(&result);
            if let Some(reg) = &task.opts.register {
                s2.set(reg, json.clone());
            }
            let done = conditions_hold(self.engine, until, &s2)?;
            if done || attempt >= retries || self.cancelled() {
                let mut result = result;
                if !done {
                    result.failed = true;
                    result.msg = Some(format!("`until` still false after {} attempts", attempt + 1));
                }
                return Ok((result, delegated));
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
        }
    }

    /// A place among the hosts working at once (`--forks`).
    pub(super) async fn fork(&self) -> Result<tokio::sync::SemaphorePermit<'_>, TaskError> {
        self.fleet
            .forks()
            .acquire()
            .await
            .map_err(|_| TaskError::from("the run is stopping"))
    }

    /// The host of `target`, connected on first use, running commands as `escalate`.
    pub(super) async fn host(
        &self,
        target: &Target,
        escalate: Option<Become>,
    ) -> Result<crate::transport::Host, TaskError> {
        Ok(self
            .fleet
            .host(target)
            .await
            .map_err(TaskError::Unreachable)?
            .becoming(escalate))
    }

    /// Templates a task's arguments, `delegate_to`, privilege escalation and `environment`
    /// for a host; the values of secret parameters are masked in every output from now on.
    pub(super) fn prepare(
        &self,
        task: &Task,
        module: &'static dyn modules::Module,
        raw_args: &Map<String, Json>,
        scope: &Scope,
        h: usize,
    ) -> Result<Prepared, String> {
        let rendered = self
            .engine
            .render_value(&Json::Object(raw_args.clone()), scope)
            .map_err(|e| format!("template error in the arguments: {e}"))?;
        if let Some(sealed) = crate::vault::still_sealed(&rendered) {
            return Err(format!(
                "{sealed} (give it with --vault-id LABEL@FILE or --vault-password-file)"
            ));
        }
        let map = rendered.as_object().cloned().unwrap_or_default();
        let args = if module.open_params() {
            modules::Args(
                map.into_iter()
                    .filter(|(_, v)| v.as_str() != Some(crate::template::OMIT))
                    .collect(),
            )
        } else {
            modules::coerce(module.name(), module.params(), &map)?
        };
        for p in module.params().iter().filter(|p| p.secret) {
            if let Some(v) = args.str(p.name) {
                self.events.secret(v);
            }
        }
        let own = self
            .with_state(|s| s[h].target.clone())
            .ok_or("the host's connection variables are invalid")?;
        // A task's `remote_user` cannot change the one connection the host has.
        if let (Some(want), crate::transport::ConnectionKind::Ssh(ssh)) = (&task.opts.remote_user, &own.kind)
            && ssh.user.as_ref() != Some(want)
            && task.opts.delegate_to.is_none()
        {
            let user = ssh
                .user
                .as_ref()
                .map_or("the user ssh chooses (none is set)".to_string(), |u| format!("`{u}`"));
            return Err(format!(
                "this task's `remote_user: {want}` is not the user the host is reached as ({user}); tend keeps one connection per host: set `remote_user` on the play (or `ansible_user` in the inventory), or use `become_user: {want}`"
            ));
        }
        let (target, delegated) = match &task.opts.delegate_to {
            None => (own, None),
            Some(d) => {
                let name = match self.engine.render(d, scope).map_err(|e| format!("delegate_to: {e}"))? {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                (self.delegate_target(&name)?, Some(name))
            }
        };
        let escalate = self.escalation(task, scope, &target, delegated.is_some())?;
        let environment: Vec<(String, String)> = match self
            .engine
            .render_value(&Json::Object(task.opts.environment.clone()), scope)
        {
            Ok(Json::Object(m)) => m
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) => return Err(format!("environment: {e}")),
        };
        Ok(Prepared {
            args,
            target,
            delegated,
            escalate,
            environment,
        })
    }

    /// Who a task's commands run as: `ansible_become`/`ansible_become_user` variables (of the
    /// task's host, or of the host it is delegated to), over the task's `become`/`become_user`
    /// keywords, over `--become`/`--become-user` ([`crate::settings::escalation`]).
    fn escalation(
        &self,
        task: &Task,
        scope: &Scope,
        target: &Target,
        delegated: bool,
    ) -> Result<Option<Become>, String> {
        let keyword_user = match &task.opts.become_user {
            Some(u) => Some(
                match self.engine.render(u, scope).map_err(|e| format!("become_user: {e}"))? {
                    Json::String(s) => s,
                    other => other.to_string(),
                },
            ),
            None => None,
        };
        let (var_enabled, var_user) = match self.inv.host_index(&target.name) {
            Some(d) if delegated => (
                self.vars.get(d, "ansible_become").and_then(crate::settings::boolean),
                self.vars
                    .get(d, "ansible_become_user")
                    .and_then(|v| v.as_str().map(str::to_string)),
            ),
            _ if delegated => (None, None),
            _ => (
                crate::settings::bool_var(self.engine, scope, "ansible_become")?,
                crate::settings::text_var(self.engine, scope, "ansible_become_user")?,
            ),
        };
        let escalate = crate::settings::escalation(
            var_enabled,
            var_user,
            task.opts.escalate,
            keyword_user,
            &self.opts.become_flags,
        );
        if escalate.is_none() {
            return Ok(None);
        }
        let password = match self.inv.host_index(&target.name) {
            // The delegated host's own password, rendered here as its other settings are.
            Some(d) if delegated => match ["ansible_become_password", "ansible_become_pass"]
                .iter()
                .find_map(|v| self.vars.get(d, v))
            {
                Some(raw) => match self
                    .engine
                    .render_value(raw, scope)
                    .map_err(|e| format!("ansible_become_password of `{}`: {e}", target.name))?
                {
                    Json::String(s) => Some(s),
                    Json::Null => None,
                    other => Some(other.to_string()),
                },
                None => None,
            },
            _ if delegated => None,
            _ => match crate::settings::text_var(self.engine, scope, "ansible_become_password")? {
                Some(p) => Some(p),
                None => crate::settings::text_var(self.engine, scope, "ansible_become_pass")?,
            },
        };
        if let Some(why) = password
            .as_ref()
            .and_then(|p| crate::vault::still_sealed(&Json::String(p.clone())))
        {
            return Err(format!("ansible_become_password: {why}"));
        }
        crate::settings::with_become_password(escalate, password, &self.opts.become_flags)
    }

    fn delegate_target(&self, name: &str) -> Result<Target, String> {
        if let Some(i) = self.inv.host_index(name) {
            return self
                .with_state(|s| s[i].target.clone())
                .or_else(|| Target::new(self.vars, i, name, &self.opts.become_flags).ok())
                .ok_or_else(|| format!("delegate_to: host `{name}` has invalid connection variables"));
        }
        if matches!(name, "localhost" | "127.0.0.1") {
            return Ok(Target::localhost());
        }
        Err(format!("delegate_to: `{name}` is not in the inventory"))
    }
}

/// A module call's result; an unreachable host is the error, other failures are failed results.
fn result_of(result: Result<ModuleResult, ModuleError>) -> Result<ModuleResult, TaskError> {
    match result {
        Ok(r) => Ok(r),
        Err(ModuleError::Transport(e)) if e.is_unreachable() => Err(TaskError::Unreachable(e)),
        Err(e) => Ok(module_error_result(e)),
    }
}

/// [`result_of`] as the outcome of a task without delegation.
pub(super) fn outcome_of(result: Result<ModuleResult, ModuleError>) -> Outcome {
    result_of(result).map(|r| Some((r, None)))
}

fn module_error_result(e: ModuleError) -> ModuleResult {
    match e {
        ModuleError::Remote(f) => ModuleResult {
            failed: true,
            msg: Some(f.message),
            cmd: Some(f.command),
            rc: f.rc,
            stdout: f.stdout,
            stderr: f.stderr,
            ..ModuleResult::default()
        },
        other => ModuleResult {
            failed: true,
            msg: Some(other.to_string()),
            ..ModuleResult::default()
        },
    }
}

/// What `register` stores: Ansible's field names.
fn result_json(r: &ModuleResult) -> Json {
    let mut m = Map::new();
    m.insert("changed".into(), r.changed.into());
    m.insert("failed".into(), r.failed.into());
    if r.skipped {
        m.insert("skipped".into(), true.into());
    }
    if let Some(msg) = &r.msg {
        m.insert("msg".into(), msg.clone().into());
    }
    if let Some(rc) = r.rc {
        m.insert("rc".into(), rc.into());
    }
    if r.rc.is_some() || !r.stdout.is_empty() || !r.stderr.is_empty() {
        m.insert("stdout".into(), r.stdout.clone().into());
        m.insert("stderr".into(), r.stderr.clone().into());
        m.insert(
            "stdout_lines".into(),
            r.stdout
                .lines()
                .map(|l| Json::String(l.to_string()))
                .collect::<Vec<_>>()
                .into(),
        );
        m.insert(
            "stderr_lines".into(),
            r.stderr
                .lines()
                .map(|l| Json::String(l.to_string()))
                .collect::<Vec<_>>()
                .into(),
        );
    }
    if let Some(cmd) = &r.cmd {
        m.insert("cmd".into(), cmd.clone().into());
    }
    for (k, v) in &r.data {
        m.insert(k.clone(), v.clone());
    }
    // A module may give its registered `ansible_facts` itself (`setup`: Ansible's prefixed names).
    if (!r.facts.is_empty() || !r.host_facts.is_empty()) && !r.data.contains_key("ansible_facts") {
        let mut facts = r.facts.clone();
        facts.extend(r.host_facts.clone());
        m.insert("ansible_facts".into(), Json::Object(facts));
    }
    Json::Object(m)
}
