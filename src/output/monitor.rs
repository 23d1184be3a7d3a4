//! The one place that draws what a command does: human text (a progress bar on a terminal,
//! plain lines when piped, colour unless `NO_COLOR`), JSON Lines on stdout, and the audit log.
//! Data goes to stdout (an ad-hoc command's output, listings), messages for people to stderr.

use super::Style;
use super::events::{Cause, Column, Event, HostCounts, HostResult, Status, StepEvent};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value as Json;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Renders events.
pub trait Monitor: Send {
    /// Handles one event.
    fn event(&mut self, event: &Event);
}

/// How a command's results are laid out for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Playbooks: a line per task with counts, failures under it, a recap per host.
    Tasks,
    /// Ad-hoc commands: each host's output on stdout as it finishes, a summary line.
    Hosts,
    /// Operations: a line per step, notes, warnings, the record's outcome.
    Steps,
    /// Listings: tables and findings on stdout.
    Listing,
}

/// Human output.
pub struct Human {
    layout: Layout,
    err: Style,
    out: Style,
    verbose: u8,
    diff: bool,
    terminal: bool,
    bar: Option<ProgressBar>,
    /// The bar is a measurement's (`Progress`), updated in place.
    measuring: bool,
    task: Option<TaskLine>,
    started: std::time::Instant,
    stdout_closed: bool,
}

struct TaskLine {
    name: String,
    location: String,
    handler: bool,
    /// The deciding status of each host (a loop reports per item; the line counts hosts).
    hosts: Vec<(String, Status)>,
    details: Vec<String>,
}

/// Which status wins when a host reports several (loop items).
fn rank(s: Status) -> u8 {
    match s {
        Status::Skipped => 0,
        Status::Ok => 1,
        Status::Changed => 2,
        Status::Ignored => 3,
        Status::Interrupted => 4,
        Status::Failed => 5,
        Status::Unreachable => 6,
    }
}

impl Human {
    /// A human monitor: `verbose` shows per-host lines of tasks, `diff` shows diffs.
    pub fn new(layout: Layout, verbose: u8, diff: bool) -> Self {
        Self {
            layout,
            err: Style::stderr(),
            out: Style::stdout(),
            verbose,
            diff,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            measuring: false,
            task: None,
            started: std::time::Instant::now(),
            stdout_closed: false,
        }
    }

    /// A line for people, on stderr (above the progress bar).
    fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Data, on stdout; a closed stdout (`| head`) stops the data, not the command.
    fn data(&mut self, text: &str) {
        if self.stdout_closed {
            return;
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        };
        let written = match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        self.stdout_closed = written.is_err();
    }

    fn bar(&mut self, len: Option<u64>, message: &str) {
        if !self.terminal {
            return;
        }
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        let template = if len.is_some() {
            "{spinner} [{pos}/{len}] {msg} {elapsed}"
        } else {
            "{spinner} {msg} {elapsed}"
        };
        if let Ok(st) = ProgressStyle::with_template(template) {
            bar.set_style(st);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.measuring = false;
        if let Some(old) = self.bar.replace(bar) {
            old.finish_and_clear();
        }
    }

    fn end_bar(&mut self) {
        self.measuring = false;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// A measurement's live bar: drawn once, then moved and relabelled each time.
    fn progress(&mut self, message: &str, done: u64, total: u64, line: bool) {
        if !self.terminal {
            if line {
                self.say(&format!("{done:>3}/{total} s: {message}"));
            }
            return;
        }
        if !self.measuring || self.bar.is_none() {
            self.end_bar();
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(st) = ProgressStyle::with_template("{spinner} [{bar:20}] {pos}/{len} s  {msg}") {
                bar.set_style(st.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
            self.measuring = true;
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done.min(total));
            bar.set_message(message.to_string());
        }
    }

    fn task_result_lines(&self, task: &TaskLine, r: &HostResult) -> Vec<String> {
        let s = self.err;
        let item = r.item.as_ref().map(|i| format!(" (item={i})")).unwrap_or_default();
        let host = format!("{}{item}", r.host);
        let mut lines = Vec::new();
        match r.status {
            Status::Failed | Status::Unreachable | Status::Ignored => {
                let label = match r.status {
                    Status::Failed => s.red("FAILED"),
                    Status::Unreachable => s.magenta("UNREACHABLE"),
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
                if let Some(h) = &r.hint {
                    lines.push(format!("    hint: {h}"));
                }
            }
            _ => {
                if r.show_msg && r.msg.is_some() {
                    lines.push(format!(
                        "  {host}: {}",
                        r.msg.as_deref().unwrap_or_default().replace('\n', "\n    ")
                    ));
                } else if self.verbose > 0 {
                    let label = match r.status {
                        Status::Changed => s.yellow("changed"),
                        Status::Skipped => s.dim("skipped"),
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

    /// A result inside a task: counted into the task's line, details kept for after it.
    fn task_result(&mut self, r: &HostResult) {
        let Some(mut task) = self.task.take() else { return };
        let lines = self.task_result_lines(&task, r);
        match task.hosts.iter_mut().find(|(h, _)| *h == r.host) {
            Some((_, status)) if rank(r.status) > rank(*status) => *status = r.status,
            Some(_) => {}
            None => {
                task.hosts.push((r.host.clone(), r.status));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
        }
        let failed = task.hosts.iter().filter(|(_, s)| s.is_bad()).count();
        if let (Some(bar), true) = (&self.bar, failed > 0) {
            bar.set_message(format!("{} ({failed} failed)", task.name));
        }
        task.details.extend(lines);
        self.task = Some(task);
    }

    fn task_end(&mut self, duration_ms: u64) {
        self.end_bar();
        let Some(task) = self.task.take() else { return };
        let s = self.err;
        let count = |st: Status| task.hosts.iter().filter(|(_, s)| *s == st).count();
        let (ok, changed, failed) = (count(Status::Ok), count(Status::Changed), count(Status::Failed));
        let (skipped, unreachable, ignored) = (
            count(Status::Skipped),
            count(Status::Unreachable),
            count(Status::Ignored),
        );
        let mut parts = vec![format!("ok={ok}")];
        let paint = |n: usize, word: &str, f: fn(Style, &str) -> String| {
            let text = format!("{word}={n}");
            if n > 0 { f(s, &text) } else { text }
        };
        parts.push(paint(changed, "changed", Style::yellow));
        parts.push(paint(failed, "failed", Style::red));
        parts.push(format!("skipped={skipped}"));
        if unreachable > 0 {
            parts.push(s.magenta(&format!("unreachable={unreachable}")));
        }
        if ignored > 0 {
            parts.push(format!("ignored={ignored}"));
        }
        let kind = if task.handler { "HANDLER" } else { "TASK" };
        let elapsed = format!("{:.2}s", duration_ms as f64 / 1000.0);
        self.say(&format!(
            "{} [{}] {}  {}  {}",
            s.bold(kind),
            task.name,
            s.dim(&task.location),
            parts.join(" "),
            s.dim(&elapsed)
        ));
        for line in &task.details {
            self.say(line);
        }
    }

    /// A host's result outside a task: its block on stdout.
    fn host_block(&mut self, r: &HostResult) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        let s = self.out;
        let rc = r.rc.map(|rc| format!(" | rc={rc}")).unwrap_or_default();
        let label = match r.status {
            Status::Ok => s.green("ok") + &rc,
            Status::Changed => s.yellow("changed") + &rc,
            Status::Failed => s.red("FAILED") + &rc,
            Status::Ignored => s.yellow("failed (ignored)") + &rc,
            Status::Skipped => s.dim("skipped"),
            Status::Unreachable => s.magenta("UNREACHABLE"),
            Status::Interrupted => s.magenta("NOT STARTED"),
        };
        let time = format!("{:.2}s", r.duration_ms as f64 / 1000.0);
        let mut text = format!("{} | {label} | {}\n", s.bold(&r.host), s.dim(&time));
        for stream in [&r.stdout, &r.stderr].into_iter().flatten() {
            if !stream.is_empty() {
                text.push_str(stream);
                if !stream.ends_with('\n') {
                    text.push('\n');
                }
            }
        }
        if let Some(m) = &r.msg {
            if r.status.is_bad() {
                text.push_str(&format!("{}: {m}\n", s.red("error")));
            } else {
                text.push_str(&format!("{m}\n"));
            }
        }
        if let Some(cmd) = &r.cmd {
            text.push_str(&format!("command: {cmd}\n"));
        }
        if !r.stderr_tail.is_empty() {
            text.push_str(&format!("stderr:\n{}\n", r.stderr_tail));
        }
        if let Some(h) = &r.hint {
            text.push_str(&format!("hint: {h}\n"));
        }
        self.data(&text);
    }

    /// A listing's finding: what it found on stdout, or why it could not on stderr.
    fn finding(&mut self, r: &HostResult) {
        let msg = r.msg.as_deref().unwrap_or_default();
        if r.status.is_bad() {
            let cause = Cause {
                cmd: r.cmd.clone(),
                rc: r.rc,
                stderr_tail: r.stderr_tail.clone(),
                hint: r.hint.clone(),
            };
            self.say(&format!(
                "{}: {}: {msg}{}",
                self.err.red("error"),
                r.host,
                cause_lines(&cause, "  ")
            ));
        } else {
            self.data(&format!("{msg}\n"));
        }
    }

    fn step(&self, st: &StepEvent) {
        let s = self.err;
        let word = format!("{:<10}", st.step);
        let word = match st.status {
            Status::Failed | Status::Unreachable => s.red(&word),
            Status::Skipped | Status::Interrupted => s.dim(&word),
            _ => s.green(&word),
        };
        let mut text = format!("  {:<12} {word} {}", st.host, st.message);
        if let Some(ms) = st.duration_ms {
            text.push_str(&s.dim(&format!(" ({:.1}s)", ms as f64 / 1000.0)));
        }
        text.push_str(&cause_lines(&st.cause, "    "));
        self.say(&text);
    }

    fn table(&mut self, columns: &[Column], rows: &[Json], mark: Option<&(String, String)>) {
        let s = self.out;
        let mut lines = vec![columns.iter().map(|c| c.title.clone()).collect::<Vec<_>>()];
        for row in rows {
            lines.push(columns.iter().map(|c| cell(&row[&c.key])).collect());
        }
        let widths: Vec<usize> = (0..columns.len())
            .map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut text = String::new();
        for (n, l) in lines.iter().enumerate() {
            let last = l.len().saturating_sub(1);
            let line: Vec<String> = l
                .iter()
                .enumerate()
                .map(|(c, v)| {
                    if c == last {
                        v.clone()
                    } else {
                        format!("{v:<w$}", w = widths[c])
                    }
                })
                .collect();
            let line = line.join("  ");
            let marked = n > 0 && mark.is_some_and(|(key, _)| rows[n - 1][key] == Json::Bool(true));
            if n == 0 {
                text.push_str(&s.bold(&line));
            } else if let (true, Some((_, words))) = (marked, mark) {
                text.push_str(&format!("{}  {}", s.yellow(&line), s.yellow(words)));
            } else {
                text.push_str(&line);
            }
            text.push('\n');
        }
        self.data(&text);
    }

    fn recap(&mut self, hosts: &std::collections::BTreeMap<String, HostCounts>, duration_ms: u64) {
        self.end_bar();
        let s = self.err;
        if self.layout == Layout::Tasks {
            self.say(&s.bold("RECAP"));
            let width = hosts.keys().map(String::len).max().unwrap_or(0);
            for (host, c) in hosts {
                let name = format!("{host:width$}");
                let name = if c.failed > 0 || c.unreachable > 0 {
                    s.red(&name)
                } else if c.changed > 0 {
                    s.yellow(&name)
                } else {
                    s.green(&name)
                };
                self.say(&format!(
                    "{name}  ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
                    c.ok, c.changed, c.unreachable, c.failed, c.skipped, c.rescued, c.ignored
                ));
            }
            self.say(&format!(
                "{} host{} in {:.2}s",
                hosts.len(),
                plural(hosts.len()),
                duration_ms as f64 / 1000.0
            ));
            return;
        }
        if self.layout != Layout::Hosts {
            return;
        }
        // One line: how many hosts ended how (a host counts once, by its worst status).
        let mut by = std::collections::BTreeMap::new();
        for c in hosts.values() {
            let status = [
                (c.unreachable, Status::Unreachable),
                (c.failed, Status::Failed),
                (c.interrupted, Status::Interrupted),
                (c.changed, Status::Changed),
            ]
            .into_iter()
            .find(|(n, _)| *n > 0)
            .map_or(Status::Ok, |(_, st)| st);
            *by.entry(rank(status)).or_insert(0usize) += 1;
        }
        let n = |st: Status| by.get(&rank(st)).copied().unwrap_or(0);
        let mut parts = vec![s.green(&format!("{} ok", n(Status::Ok)))];
        if n(Status::Changed) > 0 {
            parts.push(s.yellow(&format!("{} changed", n(Status::Changed))));
        }
        let failed = format!("{} failed", n(Status::Failed));
        parts.push(if n(Status::Failed) > 0 { s.red(&failed) } else { failed });
        let unreachable = format!("{} unreachable", n(Status::Unreachable));
        parts.push(if n(Status::Unreachable) > 0 {
            s.magenta(&unreachable)
        } else {
            unreachable
        });
        if n(Status::Interrupted) > 0 {
            parts.push(s.magenta(&format!("{} not started (interrupted)", n(Status::Interrupted))));
        }
        self.say(&format!(
            "{} host{}: {} in {:.2}s",
            hosts.len(),
            plural(hosts.len()),
            parts.join(", "),
            duration_ms as f64 / 1000.0
        ));
    }
}

/// The lines under a failure: command and exit code, the end of stderr, the hint.
fn cause_lines(c: &Cause, indent: &str) -> String {
    let mut text = String::new();
    if let Some(cmd) = &c.cmd {
        text.push_str(&format!("\n{indent}command: {cmd}"));
        if let Some(rc) = c.rc {
            text.push_str(&format!(" (exit {rc})"));
        }
    }
    if !c.stderr_tail.is_empty() {
        text.push_str(&format!("\n{indent}stderr:"));
        for line in c.stderr_tail.lines() {
            text.push_str(&format!("\n{indent}  {line}"));
        }
    }
    if let Some(h) = &c.hint {
        text.push_str(&format!("\n{indent}hint: {h}"));
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A table cell: text as is, `-` for nothing, yes/no, lists joined by spaces (objects by their
/// `id`).
fn cell(v: &Json) -> String {
    match v {
        Json::Null => "-".into(),
        Json::String(s) => s.clone(),
        Json::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Json::Array(a) => a
            .iter()
            .map(|x| match x.get("id") {
                Some(id) => cell(id),
                None => cell(x),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
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
        let s = self.err;
        match event {
            Event::Start { hosts, .. } => {
                self.started = std::time::Instant::now();
                if self.layout == Layout::Hosts && *hosts > 1 {
                    self.bar(Some(*hosts as u64), "hosts");
                }
            }
            Event::PlayStart { name, hosts } => self.say(&format!(
                "{} {} ({} host{})",
                s.bold("PLAY"),
                s.bold(&format!("[{name}]")),
                hosts.len(),
                plural(hosts.len())
            )),
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
                self.bar(Some(*hosts as u64), name);
            }
            Event::Result { result, .. } => {
                if self.task.is_some() {
                    self.task_result(result);
                } else if self.layout == Layout::Listing {
                    self.finding(result);
                } else {
                    self.host_block(result);
                }
            }
            Event::TaskEnd { duration_ms, .. } => self.task_end(*duration_ms),
            Event::Output { host, stream, line } => {
                let text = format!("{}: {line}\n", self.out.dim(host));
                if *stream == "stdout" {
                    self.data(&text);
                } else {
                    self.say(text.trim_end());
                }
            }
            Event::Step(st) => self.step(st),
            Event::Note { message } => {
                self.say(&s.bold(message));
                self.bar(None, message);
            }
            Event::Progress {
                message,
                done,
                total,
                line,
            } => self.progress(message, *done, *total, *line),
            Event::Warning { message } => self.say(&format!("{}: {message}", s.yellow("warning"))),
            Event::Error(e) => {
                let text = format!("{}: {}{}", s.red("error"), e.message, cause_lines(&e.cause, "  "));
                self.say(&text);
            }
            Event::Record(r) => {
                self.end_bar();
                let changed = r.hosts.iter().filter(|h| h.status == Status::Changed).count();
                let took = self.started.elapsed().as_secs_f64();
                // A record of work on no host (a load test) has no host count to tell.
                let line = if r.hosts.is_empty() && r.group.is_empty() {
                    format!("{}: {} in {took:.1}s", r.command, r.outcome)
                } else {
                    format!(
                        "{}: {} — {changed} of {} host(s) changed in {took:.1}s",
                        r.command,
                        r.outcome,
                        r.hosts.len()
                    )
                };
                let bad = r.error.is_some() || r.hosts.iter().any(|h| h.status.is_bad());
                self.say(&if bad { s.red(&line) } else { s.green(&line) });
            }
            Event::Table {
                columns, rows, mark, ..
            } => {
                // A measurement is over when its results are listed.
                if self.measuring {
                    self.end_bar();
                }
                self.table(columns, rows, mark.as_ref());
            }
            Event::Recap { hosts, duration_ms, .. } => self.recap(hosts, *duration_ms),
        }
    }
}

/// Beside JSON Lines, what people reading a CI log need on stderr: why a command stopped, and
/// an ad-hoc command's summary line.
pub struct Essentials(pub Human);

impl Monitor for Essentials {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Error(_) => self.0.event(event),
            Event::Recap { .. } if self.0.layout == Layout::Hosts => self.0.event(event),
            _ => {}
        }
    }
}

/// JSON Lines on stdout: one object per event (docs/json-output.md); a table is one `row`
/// line per row.
#[derive(Debug, Default)]
pub struct JsonLines {
    broken: bool,
}

impl JsonLines {
    /// A JSON monitor.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The JSON lines of an event.
fn json_lines(event: &Event) -> Vec<Json> {
    match event {
        Event::Table { table, rows, .. } => rows
            .iter()
            .map(|row| {
                let mut line = serde_json::Map::new();
                line.insert("event".into(), "row".into());
                line.insert("table".into(), table.clone().into());
                if let Json::Object(fields) = row {
                    line.extend(fields.clone());
                }
                Json::Object(line)
            })
            .collect(),
        other => serde_json::to_value(other).into_iter().collect(),
    }
}

impl Monitor for JsonLines {
    fn event(&mut self, event: &Event) {
        if self.broken {
            return;
        }
        let mut out = std::io::stdout().lock();
        for line in json_lines(event) {
            if writeln!(out, "{line}").is_err() {
                self.broken = true;
                return;
            }
        }
        if out.flush().is_err() {
            self.broken = true;
        }
    }
}

/// Appends the events that say what happened on hosts (not progress) to a file of its own per
/// run, each with the run id and the time.
pub struct Audit {
    file: Option<std::fs::File>,
    /// Where it writes.
    pub path: std::path::PathBuf,
    run: String,
}

impl Audit {
    /// Opens `DIR/<run>.jsonl`; a log that cannot be written is a warning, not a failure.
    pub fn open(dir: &std::path::Path, run: &str) -> Result<Self, String> {
        // What hosts answered is no business of the machine's other users: owner-only.
        crate::private::dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{run}.jsonl"));
        let file = crate::private::append(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Self {
            file: Some(file),
            path,
            run: run.to_string(),
        })
    }
}

impl Monitor for Audit {
    fn event(&mut self, event: &Event) {
        if matches!(
            event,
            Event::TaskStart { .. }
                | Event::TaskEnd { .. }
                | Event::Output { .. }
                | Event::Note { .. }
                | Event::Progress { .. }
        ) {
            return;
        }
        let Some(file) = &mut self.file else { return };
        for mut line in json_lines(event) {
            if let Some(map) = line.as_object_mut() {
                map.insert("run".into(), self.run.clone().into());
                map.insert("time".into(), crate::output::now_rfc3339().into());
            }
            if writeln!(file, "{line}").is_err() {
                self.file = None;
                return;
            }
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
