//! The one place that draws a playbook run: human text on stderr (with a progress bar on a
//! terminal) or JSON Lines on stdout, plus the audit log.

use super::Style;
use super::events::{Event, HostTaskResult, TaskStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};

/// Renders events.
pub trait Monitor: Send {
    /// Handles one event.
    fn event(&mut self, event: &Event);
}

/// Human output on stderr.
pub struct Human {
    style: Style,
    verbose: u8,
    diff: bool,
    bar: Option<ProgressBar>,
    terminal: bool,
    task: Option<TaskLine>,
}

struct TaskLine {
    name: String,
    location: String,
    handler: bool,
    /// The deciding status of each host (a loop reports per item; the line counts hosts).
    hosts: Vec<(String, TaskStatus)>,
    details: Vec<String>,
}

/// Which status wins when a host reports several (loop items).
fn rank(s: TaskStatus) -> u8 {
    match s {
        TaskStatus::Skipped => 0,
        TaskStatus::Ok => 1,
        TaskStatus::Changed => 2,
        TaskStatus::Ignored => 3,
        TaskStatus::Failed => 4,
        TaskStatus::Unreachable => 5,
    }
}

impl Human {
    /// A human monitor; `verbose` shows per-host lines, `diff` shows diffs.
    pub fn new(verbose: u8, diff: bool) -> Self {
        Self {
            style: Style::stderr(),
            verbose,
            diff,
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            task: None,
        }
    }

    fn print(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn result_lines(&self, task: &TaskLine, r: &HostTaskResult) -> Vec<String> {
        let s = self.style;
        let item = r.item.as_ref().map(|i| format!(" (item={i})")).unwrap_or_default();
        let host = format!("{}{item}", r.host);
        let mut lines = Vec::new();
        match r.status {
            TaskStatus::Failed | TaskStatus::Unreachable | TaskStatus::Ignored => {
                let label = match r.status {
                    TaskStatus::Failed => s.red("FAILED"),
                    TaskStatus::Unreachable => s.magenta("UNREACHABLE"),
                    _ => s.yellow("failed (ignored)"),
                };
                lines.push(format!("  {label} {host}: {}", r.msg.as_deref().unwrap_or("failed")));
                lines.push(format!("    task: {} ({})", task.name, task.location));
                if let Some(cmd) = &r.cmd {
                    lines.push(format!("    command: {cmd}"));
                }
                if let Some(rc) = r.rc {
                    lines.push(format!("    rc: {rc}"));
                }
                for (label, text) in [("stdout", &r.stdout_tail), ("stderr", &r.stderr_tail)] {
                    if !text.is_empty() {
                        lines.push(format!("    {label}:"));
                        lines.extend(text.lines().map(|l| format!("      {l}")));
                    }
                }
            }
            _ => {
                let debug_like = r.show_msg && r.msg.is_some();
                if debug_like {
                    lines.push(format!(
                        "  {host}: {}",
                        r.msg.as_deref().unwrap_or_default().replace('\n', "\n    ")
                    ));
                } else if self.verbose > 0 {
                    let label = match r.status {
                        TaskStatus::Changed => s.yellow("changed"),
                        TaskStatus::Skipped => s.dim("skipped"),
                        _ => s.green("ok"),
                    };
                    let msg = r.msg.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
                    lines.push(format!("  {label} {host}{msg}"));
                    if self.verbose > 1 && !r.stdout_tail.is_empty() {
                        lines.extend(r.stdout_tail.lines().map(|l| format!("      {l}")));
                    }
                }
            }
        }
        if self.diff {
            for d in &r.diff {
                lines.push(format!("  {} {host}:", s.bold("diff")));
                lines.extend(
                    unified_diff(&d.path, &d.before, &d.after, s)
                        .lines()
                        .map(|l| format!("    {l}")),
                );
            }
        }
        lines
    }
}

/// A unified diff of two texts, coloured when the style allows.
pub fn unified_diff(path: &str, before: &str, after: &str, style: Style) -> String {
    let diff = similar::TextDiff::from_lines(before, after);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("before: {path}"), &format!("after: {path}"))
        .to_string();
    text.lines()
        .map(|l| {
            if l.starts_with('+') && !l.starts_with("+++") {
                style.green(l)
            } else if l.starts_with('-') && !l.starts_with("---") {
                style.red(l)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Monitor for Human {
    fn event(&mut self, event: &Event) {
        let s = self.style;
        match event {
            Event::PlayStart { name, hosts } => {
                self.print(&format!(
                    "{} {} ({} host{})",
                    s.bold("PLAY"),
                    s.bold(&format!("[{name}]")),
                    hosts.len(),
                    if hosts.len() == 1 { "" } else { "s" }
                ));
            }
            Event::TaskStart {
                name,
                location,
                hosts,
                handler,
            } => {
                self.task = Some(TaskLine {
                    name: name.clone(),
                    location: location.clone(),
                    handler: *handler,
                    hosts: Vec::new(),
                    details: Vec::new(),
                });
                if self.terminal {
                    let bar = ProgressBar::with_draw_target(Some(*hosts as u64), ProgressDrawTarget::stderr());
                    if let Ok(st) = ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} {elapsed}") {
                        bar.set_style(st);
                    }
                    bar.set_message(name.clone());
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.bar = Some(bar);
                }
            }
            Event::Result { result, .. } => {
                let Some(task) = self.task.take() else { return };
                let lines = self.result_lines(&task, result);
                let mut task = task;
                match task.hosts.iter_mut().find(|(h, _)| *h == result.host) {
                    Some((_, status)) if rank(result.status) > rank(*status) => *status = result.status,
                    Some(_) => {}
                    None => {
                        task.hosts.push((result.host.clone(), result.status));
                        if let Some(bar) = &self.bar {
                            bar.inc(1);
                        }
                    }
                }
                let failed = task
                    .hosts
                    .iter()
                    .filter(|(_, s)| matches!(s, TaskStatus::Failed | TaskStatus::Unreachable))
                    .count();
                if let (Some(bar), true) = (&self.bar, failed > 0) {
                    bar.set_message(format!("{} ({failed} failed)", task.name));
                }
                task.details.extend(lines);
                self.task = Some(task);
            }
            Event::TaskEnd { duration_ms, .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let Some(task) = self.task.take() else { return };
                let count = |st: TaskStatus| task.hosts.iter().filter(|(_, s)| *s == st).count();
                let (ok, changed, failed) = (
                    count(TaskStatus::Ok),
                    count(TaskStatus::Changed),
                    count(TaskStatus::Failed),
                );
                let (skipped, unreachable, ignored) = (
                    count(TaskStatus::Skipped),
                    count(TaskStatus::Unreachable),
                    count(TaskStatus::Ignored),
                );
                let mut parts = vec![format!("ok={ok}")];
                parts.push(if changed > 0 {
                    s.yellow(&format!("changed={changed}"))
                } else {
                    format!("changed={changed}")
                });
                parts.push(if failed > 0 {
                    s.red(&format!("failed={failed}"))
                } else {
                    format!("failed={failed}")
                });
                parts.push(format!("skipped={skipped}"));
                if unreachable > 0 {
                    parts.push(s.magenta(&format!("unreachable={unreachable}")));
                }
                if ignored > 0 {
                    parts.push(format!("ignored={ignored}"));
                }
                let kind = if task.handler { "HANDLER" } else { "TASK" };
                let elapsed = format!("{:.2}s", *duration_ms as f64 / 1000.0);
                self.print(&format!(
                    "{} [{}] {}  {}  {}",
                    s.bold(kind),
                    task.name,
                    s.dim(&task.location),
                    parts.join(" "),
                    s.dim(&elapsed)
                ));
                for line in &task.details {
                    self.print(line);
                }
            }
            Event::Warning { message } => self.print(&format!("{}: {message}", s.yellow("warning"))),
            Event::Recap { hosts, duration_ms, .. } => {
                self.print(&s.bold("RECAP"));
                let width = hosts.keys().map(String::len).max().unwrap_or(0);
                for (host, c) in hosts {
                    let bad = c.failed > 0 || c.unreachable > 0;
                    let name = format!("{host:width$}");
                    let name = if bad {
                        s.red(&name)
                    } else if c.changed > 0 {
                        s.yellow(&name)
                    } else {
                        s.green(&name)
                    };
                    self.print(&format!(
                        "{name}  ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
                        c.ok, c.changed, c.unreachable, c.failed, c.skipped, c.rescued, c.ignored
                    ));
                }
                self.print(&format!(
                    "{} host{} in {:.2}s",
                    hosts.len(),
                    if hosts.len() == 1 { "" } else { "s" },
                    *duration_ms as f64 / 1000.0
                ));
            }
        }
    }
}

/// JSON Lines on stdout: one object per event (schema in docs/json-output.md).
pub struct JsonLines {
    broken: bool,
}

impl JsonLines {
    /// A JSON monitor.
    pub fn new() -> Self {
        Self { broken: false }
    }
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor for JsonLines {
    fn event(&mut self, event: &Event) {
        if self.broken {
            return;
        }
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            self.broken = true;
        }
    }
}

/// Appends one JSON line per host-task result (and the recap) to a file of its own per run.
pub struct Audit {
    file: Option<std::fs::File>,
    /// Where it writes.
    pub path: std::path::PathBuf,
    run: String,
}

impl Audit {
    /// Opens `DIR/<time>-<pid>.jsonl`; a log that cannot be written is a warning, not a failure.
    pub fn open(dir: &std::path::Path, run: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{run}.jsonl"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Self {
            file: Some(file),
            path,
            run: run.to_string(),
        })
    }
}

impl Monitor for Audit {
    fn event(&mut self, event: &Event) {
        if !matches!(
            event,
            Event::Result { .. } | Event::Recap { .. } | Event::PlayStart { .. }
        ) {
            return;
        }
        let Some(file) = &mut self.file else { return };
        let mut value = serde_json::to_value(event).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("run".into(), self.run.clone().into());
            map.insert("time".into(), crate::output::now_rfc3339().into());
        }
        if writeln!(file, "{value}").is_err() {
            self.file = None;
        }
    }
}

/// Sends every event to several monitors.
pub struct Tee(pub Vec<Box<dyn Monitor>>);

impl Monitor for Tee {
    fn event(&mut self, event: &Event) {
        for m in &mut self.0 {
            m.event(event);
        }
    }
}
