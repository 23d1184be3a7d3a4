//! One report per host for ad-hoc commands (`exec`, `upload`), printed as each host finishes.

use super::{Format, Style};
use crate::exit::Code;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// How a host fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Succeeded without changing anything (or a command exited 0).
    Ok,
    /// Succeeded and changed the host.
    Changed,
    /// The command or change failed.
    Failed,
    /// The host could not be reached.
    Unreachable,
    /// Not started because the run was interrupted.
    Interrupted,
}

/// The result of one host, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// Inventory name.
    pub host: String,
    /// Outcome.
    pub status: Status,
    /// Exit code of the command, when one ran to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Error message (unreachable, timeout, refused upload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Wall time on this host.
    pub duration_ms: u64,
}

impl HostReport {
    /// A report with no output yet.
    pub fn new(host: &str, status: Status, duration: Duration) -> Self {
        Self {
            host: host.to_string(),
            status,
            rc: None,
            stdout: String::new(),
            stderr: String::new(),
            error: None,
            hint: None,
            duration_ms: duration.as_millis() as u64,
        }
    }
}

/// Counts per status and the exit code they imply.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Hosts that succeeded unchanged.
    pub ok: usize,
    /// Hosts that changed.
    pub changed: usize,
    /// Hosts that failed.
    pub failed: usize,
    /// Hosts that were unreachable.
    pub unreachable: usize,
    /// Hosts never started.
    pub interrupted: usize,
}

impl Summary {
    /// Adds one host.
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Changed => self.changed += 1,
            Status::Failed => self.failed += 1,
            Status::Unreachable => self.unreachable += 1,
            Status::Interrupted => self.interrupted += 1,
        }
    }

    /// 99 when interrupted, else 2 when any host failed, else 3 when any was unreachable, else 0.
    pub fn exit_code(&self, interrupted: bool) -> Code {
        if interrupted {
            Code::Interrupted
        } else if self.failed > 0 {
            Code::HostFailed
        } else if self.unreachable > 0 {
            Code::Unreachable
        } else {
            Code::Ok
        }
    }

    /// `4 hosts: 2 ok, 1 changed, 1 failed, 0 unreachable in 1.20s`.
    pub fn line(&self, elapsed: Duration, style: Style) -> String {
        let total = self.ok + self.changed + self.failed + self.unreachable + self.interrupted;
        let mut parts = vec![style.green(&format!("{} ok", self.ok))];
        if self.changed > 0 {
            parts.push(style.yellow(&format!("{} changed", self.changed)));
        }
        let failed = format!("{} failed", self.failed);
        parts.push(if self.failed > 0 { style.red(&failed) } else { failed });
        let unreachable = format!("{} unreachable", self.unreachable);
        parts.push(if self.unreachable > 0 {
            style.magenta(&unreachable)
        } else {
            unreachable
        });
        if self.interrupted > 0 {
            parts.push(style.magenta(&format!("{} not started (interrupted)", self.interrupted)));
        }
        format!(
            "{total} host{}: {} in {:.2}s",
            if total == 1 { "" } else { "s" },
            parts.join(", "),
            elapsed.as_secs_f64()
        )
    }
}

/// Prints reports as they come and keeps the summary.
#[derive(Debug)]
pub struct Printer {
    format: Format,
    style: Style,
    /// The counts so far.
    pub summary: Summary,
    broken_pipe: bool,
}

impl Printer {
    /// A printer for stdout in the given format.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            style: Style::stdout(),
            summary: Summary::default(),
            broken_pipe: false,
        }
    }

    /// Prints one host's report; a closed stdout (`| head`) stops printing, not the run.
    pub fn host(&mut self, report: &HostReport) {
        self.summary.add(report.status);
        if self.broken_pipe {
            return;
        }
        let text = match self.format {
            Format::Json => serde_json::to_string(report).map(|s| s + "\n").unwrap_or_default(),
            Format::Human => self.human(report),
        };
        let mut out = std::io::stdout().lock();
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            self.broken_pipe = true;
        }
    }

    fn human(&self, r: &HostReport) -> String {
        let s = self.style;
        let (label, detail) = match r.status {
            Status::Ok => (s.green("ok"), rc_text(r.rc)),
            Status::Changed => (s.yellow("changed"), rc_text(r.rc)),
            Status::Failed => (s.red("FAILED"), rc_text(r.rc)),
            Status::Unreachable => (s.magenta("UNREACHABLE"), String::new()),
            Status::Interrupted => (s.magenta("NOT STARTED"), String::new()),
        };
        let time = format!("{:.2}s", r.duration_ms as f64 / 1000.0);
        let mut text = format!("{} | {label}{detail} | {}\n", s.bold(&r.host), s.dim(&time));
        for stream in [&r.stdout, &r.stderr] {
            if !stream.is_empty() {
                text.push_str(stream);
                if !stream.ends_with('\n') {
                    text.push('\n');
                }
            }
        }
        if let Some(e) = &r.error {
            text.push_str(&format!("{}: {e}\n", s.red("error")));
        }
        if let Some(h) = &r.hint {
            text.push_str(&format!("hint: {h}\n"));
        }
        text
    }
}

fn rc_text(rc: Option<i32>) -> String {
    rc.map(|rc| format!(" | rc={rc}")).unwrap_or_default()
}
