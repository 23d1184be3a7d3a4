//! Consecutive tasks sent to a host as one script.
//!
//! A session channel costs the host a fork of `sshd` and a shell start, more than most tasks'
//! own work; so a run of consecutive tasks whose modules need exactly one script each
//! ([`crate::modules::Module::plan`]) is planned for every host first (`when`, arguments,
//! rendered templates), sent as one script per host, and reported task by task as if the tasks
//! had run one after the other. On the host each task runs in its own subshell with its own
//! environment and stdin, and the next one starts only after it exited 0, so a host never runs
//! a task after one that failed there. What the plan could not cover (a non-zero exit that
//! `ignore_errors` lets pass, a module that needs a second round trip with these arguments, a
//! different `become`) runs task by task as before, in the same order.
//!
//! Only tasks that cannot change what later tasks see are grouped: no loop, `until`,
//! `delegate_to`, `run_once` or `timeout`, and a task with `register` or `failed_when` ends the
//! group; plays with `any_errors_fatal` or `max_fail_percentage` run task by task, since
//! their verdict after each task must come before the next task starts anywhere.

use super::task::{HostRun, Outcome, TaskError};
use super::{Executor, PlayCtx};
use crate::modules::{self, Ctx, Finish, Next, Plan, Script};
use crate::output::Event;
use crate::playbook::{Task, TaskKind};
use crate::template::Scope;
use crate::transport::{Become, Input, Output, RemoteCommand, shell::quote};
use std::time::{Duration, Instant};

/// Tasks per script at most: results are reported when the script ends, so this bounds how long
/// the progress display waits.
const MAX_TASKS: usize = 24;

/// The script travels as one command-line argument, which Linux limits to 128 KiB.
const MAX_SCRIPT: usize = 96 * 1024;

/// Whether a task may be grouped with its neighbours (see the module doc).
fn groupable(task: &Task) -> bool {
    let TaskKind::Module { module, .. } = &task.kind else {
        return false;
    };
    let o = &task.opts;
    module.scripted()
        && module.runs() == modules::Runs::Host
        && o.loop_items.is_none()
        && o.flag_templates.is_empty()
        && o.until.is_none()
        && o.delegate_to.is_none()
        && o.run_once != Some(true)
        && o.timeout.is_none()
}

/// A task's script, planned for one host.
struct Segment {
    /// Index of the task in the group.
    task: usize,
    /// The task's `environment:` as `export` lines.
    env: String,
    /// `env` and the script.
    text: String,
    stdin: Option<Vec<u8>>,
    finish: Finish,
    chains: bool,
    module: &'static dyn modules::Module,
}

impl Segment {
    fn new(task: usize, env: String, script: Script, module: &'static dyn modules::Module) -> Self {
        Self {
            task,
            text: format!("{env}{}", script.text),
            env,
            stdin: script.stdin,
            finish: script.finish,
            chains: script.chains,
            module,
        }
    }
}

/// One task's share of a group script's output, and how long it ran on the host (when the
/// host has `/proc/uptime`).
#[derive(Debug, PartialEq)]
pub(super) struct Part {
    pub(super) output: Output,
    pub(super) duration: Option<Duration>,
}

/// Joins task scripts into one. `parts`: each script and the length of its stdin, which the
/// joined script reads from its own stdin in order. Each script runs in a subshell framed by
/// `marker` lines on stdout (with its exit code and the host's uptime) and stderr; the joined
/// script stops after the first non-zero exit.
pub(super) fn join(parts: &[(&str, Option<usize>)], marker: &str) -> String {
    // The stop command finds this shell by its tag, `tm=` and the marker (see `stop_command`).
    // WINCH is ignored by default, so the tasks' subshells, which match too, are not disturbed
    // by it. The marker is `@`, `-` and hex digits: no quoting, so the command line ends
    // `tm=@@tend-…`.
    let mut s = format!(
        "tm={marker}\ntend_stop=; trap 'tend_stop=1' WINCH\ntend_up() {{ tu=-; {{ read tu _ < /proc/uptime; }} 2>/dev/null; }}\n"
    );
    for (i, (text, stdin)) in parts.iter().enumerate() {
        if i > 0 {
            s.push_str("[ -z \"$tend_stop\" ] || exit 0\n");
        }
        s.push_str(&format!(
            "tend_up; printf '\\n%s s{i} %s\\n' \"$tm\" \"$tu\"; printf '\\n%s s{i}\\n' \"$tm\" >&2\n"
        ));
        match stdin {
            // The rest of its stdin is drained, so the next task's input starts where it should
            // even when this one did not read all of it.
            Some(len) => s.push_str(&format!(
                "head -c {len} | {{ (\n{text}\n); tr=$?; cat > /dev/null; exit $tr; }}\n"
            )),
            None => s.push_str(&format!("(\n{text}\n) < /dev/null\n")),
        }
        s.push_str(&format!(
            "tr=$?; tend_up; printf '\\n%s e{i} %s %s\\n' \"$tm\" \"$tr\" \"$tu\"; printf '\\n%s e{i}\\n' \"$tm\" >&2\n\
             [ \"$tr\" = 0 ] || exit 0\n"
        ));
    }
    s
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Splits a joined script's output into its parts; `None` from the first part that did not
/// finish (it was not reached, or the connection broke while it ran).
pub(super) fn split(out: &Output, marker: &str, n: usize) -> Vec<Option<Part>> {
    let mut parts = Vec::with_capacity(n);
    let (mut at_out, mut at_err) = (0, 0);
    for i in 0..n {
        let part = (|| {
            let begin = format!("\n{marker} s{i} ");
            let b = find(&out.stdout, begin.as_bytes(), at_out)?;
            let start = find(&out.stdout, b"\n", b + begin.len())? + 1;
            let started = std::str::from_utf8(&out.stdout[b + begin.len()..start - 1]).ok()?;
            let end = format!("\n{marker} e{i} ");
            let e = find(&out.stdout, end.as_bytes(), start.saturating_sub(1))?;
            let line_end = find(&out.stdout, b"\n", e + end.len())?;
            let tail = std::str::from_utf8(&out.stdout[e + end.len()..line_end]).ok()?;
            let (rc, ended) = tail.split_once(' ')?;
            let rc: i32 = rc.parse().ok()?;
            at_out = line_end;
            let stdout = out.stdout[start..e.max(start)].to_vec();
            let err_begin = format!("\n{marker} s{i}\n");
            let err_end = format!("\n{marker} e{i}\n");
            let stderr = match find(&out.stderr, err_begin.as_bytes(), at_err) {
                Some(b) => {
                    let start = b + err_begin.len();
                    let e = find(&out.stderr, err_end.as_bytes(), start.saturating_sub(1)).unwrap_or(out.stderr.len());
                    at_err = e;
                    out.stderr[start..e.max(start)].to_vec()
                }
                None => Vec::new(),
            };
            let seconds = |t: &str| t.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
            let duration = match (seconds(started), seconds(ended)) {
                (Some(a), Some(b)) if b >= a => Some(Duration::from_secs_f64(b - a)),
                _ => None,
            };
            Some(Part {
                output: Output {
                    rc: Some(rc),
                    stdout,
                    stderr,
                },
                duration,
            })
        })();
        let done = part.is_none();
        parts.push(part);
        if done {
            parts.resize_with(n, || None);
            break;
        }
    }
    parts
}

/// The outputs of joined scripts (`None`: the task did not finish), and the lost connection
/// that cut them short, if one did.
type Joined = (Vec<Option<Part>>, Option<crate::transport::TransportError>);

/// The joined scripts as one command, tagged `tm=MARKER` for [`stop_command`].
fn joined(parts: &[(&str, Option<usize>)], marker: &str) -> RemoteCommand {
    RemoteCommand::new(join(parts, marker)).tagged(format!("tm={marker}"))
}

/// Asks the joined script marked `marker` to start no further task (Ctrl-C): the task running
/// finishes and is reported. The pattern's bracket keeps it from matching its own command line.
fn stop_command(marker: &str) -> String {
    let rest = marker.strip_prefix('@').unwrap_or(marker);
    format!(
        "pkill -WINCH -f {} || true",
        quote(&format!("^sh -c tend_s=.* tm=[@]{rest}$"))
    )
}

/// A marker no task output contains by chance.
fn new_marker() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    format!("@@tend-{}", hex::encode(bytes))
}

impl Executor<'_> {
    /// The tasks from `tasks[0]` on that can go to the hosts as one script, and how many tasks
    /// of the list they span (tasks left out by tags or `--start-at-task` are passed over).
    pub(super) fn group_at<'t>(&self, ctx: &PlayCtx<'_>, tasks: &'t [Task]) -> (Vec<&'t Task>, usize) {
        let mut group = Vec::new();
        if ctx.play.any_errors_fatal || ctx.play.max_fail_percentage.is_some() {
            return (group, 0);
        }
        let mut span = 0;
        for task in tasks {
            if !groupable(task) || group.len() == MAX_TASKS {
                break;
            }
            span += 1;
            if self.skip.contains(&task.id) || !self.tags_allow(task) {
                continue;
            }
            group.push(task);
            if task.opts.register.is_some() || task.opts.failed_when.is_some() {
                break;
            }
        }
        (group, span)
    }

    /// Runs a group of tasks (from [`Executor::group_at`]) on `hosts`.
    pub(super) async fn run_group(&self, ctx: &PlayCtx<'_>, group: &[&Task], hosts: &[usize]) {
        let Some(first) = group.first() else {
            return;
        };
        self.emit(Event::TaskStart {
            name: first.display_name(),
            location: first.span.file_line(),
            hosts: hosts.len(),
            handler: false,
        });
        let mut planned = futures_util::future::join_all(hosts.iter().map(|&h| self.host_group(ctx, group, h))).await;
        for (j, task) in group.iter().enumerate() {
            let name = task.display_name();
            let location = task.span.file_line();
            let mut done = Vec::new();
            let mut left = Vec::new();
            for (k, &h) in hosts.iter().enumerate() {
                match planned[k][j].take() {
                    Some(run) => done.push(run),
                    None if self.with_state(|s| s[h].active()) && !self.cancelled() => left.push(h),
                    None => {}
                }
            }
            if j > 0 {
                if done.is_empty() && left.is_empty() {
                    continue;
                }
                self.emit(Event::TaskStart {
                    name: name.clone(),
                    location: location.clone(),
                    hosts: done.len() + left.len(),
                    handler: false,
                });
            }
            // The task's time: the longest it ran on a host of the shared script, or the
            // time the hosts that ran it on its own took.
            let mut duration_ms = done
                .iter()
                .flat_map(|run| run.events.iter().map(|e| e.duration_ms))
                .max()
                .unwrap_or(0);
            for run in done {
                let h = run.host;
                self.report(task, &name, &location, run, &[h]);
            }
            let start = Instant::now();
            let mut running: futures_util::stream::FuturesUnordered<_> =
                left.iter().map(|&h| self.host_task(ctx, task, h)).collect();
            while let Some(run) = futures_util::StreamExt::next(&mut running).await {
                let h = run.host;
                self.report(task, &name, &location, run, &[h]);
            }
            if !left.is_empty() {
                duration_ms = duration_ms.max(start.elapsed().as_millis() as u64);
            }
            self.emit(Event::TaskEnd { name, duration_ms });
            self.check_failure_policy(ctx);
        }
    }

    /// Plans the group on one host, runs the planned scripts as one, and returns each task's
    /// result (`None`: not done here; the task runs on its own if the host is still in the play).
    async fn host_group(&self, ctx: &PlayCtx<'_>, group: &[&Task], h: usize) -> Vec<Option<HostRun>> {
        let mut runs: Vec<Option<HostRun>> = group.iter().map(|_| None).collect();
        let mut segments: Vec<Segment> = Vec::new();
        let mut escalate: Option<Option<Become>> = None;
        let mut target = None;
        let mut size = 0;
        for (j, task) in group.iter().enumerate() {
            let TaskKind::Module { module, args } = &task.kind else {
                break;
            };
            let module = *module;
            let mut scope = self.scope(ctx, h, task);
            let local =
                |scope: &mut Scope, outcome: Outcome| self.single_run(task, module, h, scope, outcome, Duration::ZERO);
            match super::task::conditions_hold(self.engine, &task.opts.when, &scope) {
                Ok(true) => {}
                Ok(false) => {
                    runs[j] = Some(local(&mut scope, Ok(None)));
                    continue;
                }
                Err(e) => {
                    runs[j] = Some(local(&mut scope, Err(e.into())));
                    break;
                }
            }
            let prepared = match self.prepare(task, module, args, &scope, h) {
                Ok(p) => p,
                Err(e) => {
                    runs[j] = Some(local(&mut scope, Err(e.into())));
                    break;
                }
            };
            if escalate.as_ref().is_some_and(|e| *e != prepared.escalate) {
                break;
            }
            let search_paths = task.opts.search_paths.clone();
            let mctx = Ctx {
                remote: None,
                host: &self.inv.hosts[h].name,
                check: task.opts.check_mode.unwrap_or(self.opts.check),
                diff: self.opts.diff,
                timeout: None,
                environment: &prepared.environment,
                engine: self.engine,
                scope: &scope,
                search_paths: &search_paths,
            };
            let plan = module.plan(&mctx, &prepared.args);
            match plan {
                None => break,
                Some(Err(e)) => {
                    runs[j] = Some(local(&mut scope, super::task::outcome_of(Err(e))));
                    break;
                }
                Some(Ok(Plan::Local(r))) => {
                    let failed = r.failed;
                    runs[j] = Some(local(&mut scope, Ok(Some((*r, None)))));
                    if failed {
                        break;
                    }
                }
                Some(Ok(Plan::Remote(script))) => {
                    let mut env = String::new();
                    for (k, v) in &prepared.environment {
                        env.push_str(&format!("export {k}={}\n", quote(v)));
                    }
                    size += env.len() + script.text.len() + 300;
                    if size > MAX_SCRIPT && !segments.is_empty() {
                        break;
                    }
                    escalate = Some(prepared.escalate);
                    target = Some(prepared.target);
                    segments.push(Segment::new(j, env, script, module));
                }
            }
        }
        let (Some(target), Some(escalate)) = (target, escalate) else {
            return runs;
        };
        // Rounds: the planned scripts up to one that may call for another; that one's follow-up
        // starts the next round.
        let mut queue: std::collections::VecDeque<Segment> = segments.into();
        let mut pending: Option<Segment> = None;
        let mut spent: Vec<Duration> = group.iter().map(|_| Duration::ZERO).collect();
        // The task after which nothing planned holds any more (its script failed or did not
        // finish): later results were planned on the assumption that it would succeed.
        let mut cut: Option<usize> = None;
        while cut.is_none() {
            let mut round: Vec<Segment> = pending.take().into_iter().collect();
            if !round.last().is_some_and(|s| s.chains) {
                while let Some(seg) = queue.pop_front() {
                    let chains = seg.chains;
                    round.push(seg);
                    if chains {
                        break;
                    }
                }
            }
            if round.is_empty() {
                break;
            }
            let started = Instant::now();
            let mut outputs = self.run_segments(&target, escalate.clone(), &round).await;
            let lost = match &outputs {
                Ok(Some((_, lost))) => lost.clone(),
                _ => None,
            };
            let share = started.elapsed() / round.len() as u32;
            for (n, seg) in round.into_iter().enumerate() {
                let j = seg.task;
                let part = match &mut outputs {
                    Err(e) => Err(e.clone()),
                    Ok(parts) => Ok(parts.as_mut().and_then(|(p, _)| p.get_mut(n)).and_then(Option::take)),
                };
                let (next, ok) = match part {
                    Ok(Some(part)) => {
                        spent[j] += part.duration.unwrap_or(share);
                        let ok = part.output.success();
                        (Ok((seg.finish)(part.output)), ok)
                    }
                    // Not started: the run is stopping (Ctrl-C).
                    Ok(None) if self.cancelled() => {
                        runs[j] = None;
                        cut = Some(j);
                        break;
                    }
                    Ok(None) => {
                        spent[j] += share;
                        match &lost {
                            Some(e) => (Err(TaskError::from(e.clone())), false),
                            None => {
                                let cut = "the host's answer ended before the task finished";
                                (Err(TaskError::from(cut)), false)
                            }
                        }
                    }
                    Err(e) => {
                        spent[j] += share;
                        (Err(e), false)
                    }
                };
                let outcome = match next {
                    Ok(Ok(Next::Then(script))) if ok => {
                        pending = Some(Segment::new(j, seg.env, script, seg.module));
                        continue;
                    }
                    Ok(Ok(Next::Then(_))) => Ok(Some((
                        modules::ModuleResult {
                            failed: true,
                            msg: Some("the task's first step failed on the host".into()),
                            ..Default::default()
                        },
                        None,
                    ))),
                    Ok(Ok(Next::Done(r))) => Ok(Some((*r, None))),
                    Ok(Err(e)) => super::task::outcome_of(Err(e)),
                    Err(msg) => Err(msg),
                };
                let failed = !ok || !matches!(&outcome, Ok(Some((r, _))) if !r.failed);
                // A scope lists every host of the play: built again here rather than kept per
                // planned task, which would cost memory in proportion to hosts × hosts × tasks.
                let mut scope = self.scope(ctx, h, group[j]);
                runs[j] = Some(self.single_run(group[j], seg.module, h, &mut scope, outcome, spent[j]));
                if failed {
                    cut = Some(j);
                    break;
                }
            }
        }
        if let Some(c) = cut {
            for run in runs.iter_mut().skip(c + 1) {
                *run = None;
            }
        }
        runs
    }

    /// Sends the planned scripts: one alone as it is, several joined; an error is the outcome
    /// for the first of them, `None`: not sent (the run is stopping).
    async fn run_segments(
        &self,
        target: &crate::transport::Target,
        escalate: Option<Become>,
        segments: &[Segment],
    ) -> Result<Option<Joined>, TaskError> {
        let _permit = self.fork().await?;
        let host = self.host(target, escalate).await?;
        if let [only] = segments {
            let output = host
                .run(&RemoteCommand::new(only.text.clone()), only.stdin.as_deref().into())
                .await
                .map_err(TaskError::from)?;
            return Ok(Some((vec![Some(Part { output, duration: None })], None)));
        }
        let marker = new_marker();
        let parts: Vec<(&str, Option<usize>)> = segments
            .iter()
            .map(|s| (s.text.as_str(), s.stdin.as_ref().map(Vec::len)))
            .collect();
        let stdin: Vec<u8> = segments
            .iter()
            .filter_map(|s| s.stdin.as_deref())
            .flatten()
            .copied()
            .collect();
        let command = joined(&parts, &marker);
        if self.cancelled() {
            return Ok(None);
        }
        let input = if stdin.is_empty() {
            Input::None
        } else {
            Input::Bytes(&stdin)
        };
        let run = host.run_joined(&command, input);
        tokio::pin!(run);
        let output = tokio::select! {
            output = &mut run => output,
            _ = self.fleet.cancel().cancelled() => {
                let stop = RemoteCommand::new(stop_command(&marker)).timeout(Some(Duration::from_secs(10)));
                let (output, _) = tokio::join!(&mut run, host.run(&stop, Input::None));
                output
            }
        }
        .map_err(TaskError::from)?;
        let parts = split(&output, &marker, segments.len());
        if output.rc.is_none() && parts.iter().any(Option::is_none) && !host.connected().await {
            // The connection went part way: the tasks that finished count, the one running
            // and those after it are the host's being unreachable.
            let lost = crate::transport::TransportError::Disconnected(format!(
                "the connection to {} was lost while the task ran",
                host.name()
            ));
            return Ok(Some((parts, Some(lost))));
        }
        if parts.first().is_some_and(Option::is_none) && !output.success() {
            // No task started: the command itself failed (sudo refused the password, say).
            let why = crate::transport::last_error_line(&output, "the command failed before its first task");
            let rc = output.rc.map_or_else(|| "a signal".to_string(), |c| c.to_string());
            return Err(TaskError::from(format!("{why} (exit {rc})")));
        }
        Ok(Some((parts, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        Output {
            rc: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    #[test]
    fn joined_scripts_keep_their_own_output_input_and_exit_codes() {
        let marker = new_marker();
        let parts: &[(&str, Option<usize>)] = &[
            // No newline at the end, stderr too, and an exit trap in its own subshell.
            ("trap 'echo bye >&2' EXIT; printf one; echo err1 >&2", None),
            // Reads only part of its input: the rest must not reach the next task.
            ("head -c 2", Some(5)),
            ("cat; echo; set -u; exit 0", Some(3)),
            ("echo four; exit 3", None),
            ("echo never", None),
        ];
        let out = sh(&join(parts, &marker), b"abcdeXYZ");
        assert_eq!(out.rc, Some(0));
        let got = split(&out, &marker, parts.len());
        let texts: Vec<Option<(i32, String, String)>> = got
            .iter()
            .map(|p| {
                p.as_ref().map(|p| {
                    (
                        p.output.rc.unwrap(),
                        String::from_utf8_lossy(&p.output.stdout).into_owned(),
                        String::from_utf8_lossy(&p.output.stderr).into_owned(),
                    )
                })
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                Some((0, "one".into(), "err1\nbye\n".into())),
                Some((0, "ab".into(), String::new())),
                Some((0, "XYZ\n".into(), String::new())),
                Some((3, "four\n".into(), String::new())),
                None,
            ]
        );
        assert!(
            got[0].as_ref().unwrap().duration.is_some(),
            "/proc/uptime gives durations"
        );
    }

    /// Starts a joined script as a host's login shell would get it (see `run_segments`).
    fn spawn_joined(parts: &[(&str, Option<usize>)], marker: &str) -> std::process::Child {
        use std::io::Write as _;
        let (line, stdin) = crate::transport::shell::command_line(&joined(parts, marker), None);
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        child
    }

    #[test]
    fn the_stop_command_lets_the_running_task_finish_and_starts_no_other() {
        let marker = new_marker();
        let parts: &[(&str, Option<usize>)] = &[("sleep 0.6; echo slept", None), ("echo never", None)];
        let child = spawn_joined(parts, &marker);
        std::thread::sleep(Duration::from_millis(200));
        // Another joined script with another marker is left alone.
        let other = new_marker();
        let bystander = spawn_joined(&[("sleep 0.6", None), ("echo still", None)], &other);
        let stop = sh(&stop_command(&marker), b"");
        assert_eq!(stop.rc, Some(0), "{stop:?}");
        let out = child.wait_with_output().unwrap();
        let out = Output {
            rc: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        };
        let got = split(&out, &marker, 2);
        assert_eq!(got[0].as_ref().unwrap().output.stdout, b"slept\n");
        assert!(got[1].is_none(), "{out:?}");
        let bystander = bystander.wait_with_output().unwrap();
        let other_out = Output {
            rc: bystander.status.code(),
            stdout: bystander.stdout,
            stderr: bystander.stderr,
        };
        assert_eq!(
            split(&other_out, &other, 2)[1].as_ref().unwrap().output.stdout,
            b"still\n"
        );
    }

    #[test]
    fn a_cut_answer_leaves_the_unfinished_parts_out() {
        let marker = new_marker();
        let parts: &[(&str, Option<usize>)] = &[("echo a", None), ("echo b; kill -9 $$; sleep 1", None)];
        let out = sh(&join(parts, &marker), b"");
        let got = split(&out, &marker, 2);
        assert_eq!(got[0].as_ref().unwrap().output.stdout, b"a\n");
        assert!(got[1].is_none());
        // Output that is not framed at all.
        let garbage = Output {
            rc: Some(0),
            stdout: b"hello".to_vec(),
            stderr: Vec::new(),
        };
        assert_eq!(split(&garbage, &marker, 2), vec![None, None]);
    }
}
