//! The one typed error of a step on a host, shared by playbook tasks and operations: which
//! host, which step, and either what the transport said or the command that failed with its
//! exit code and the tail of its output, with a hint where one helps.

use super::{Output, TransportError};

/// A command that ran on a host and failed: enough to act on without reading logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// What failed, in words (usually the command's last stderr line).
    pub message: String,
    /// The command, in short.
    pub command: String,
    /// Its exit code (`None`: killed by a signal, or it never ran).
    pub rc: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Failure {
    /// A failed command from its output.
    pub fn from_output(message: impl Into<String>, command: impl Into<String>, out: &Output) -> Self {
        Self {
            message: message.into(),
            command: command.into(),
            rc: out.rc,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A failure found without a command's output (a script's answer that made no sense).
    pub fn message(message: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            command: command.into(),
            ..Self::default()
        }
    }
}

/// What went wrong in a step.
#[derive(Debug, Clone)]
pub enum StepFault {
    /// The host could not be talked to (or the command was killed for its time limit).
    Transport(TransportError),
    /// The step's command ran and failed.
    Remote(Failure),
}

/// A step that failed on a host.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host}: {step}: {}", self.message())]
pub struct StepError {
    /// Inventory name.
    pub host: String,
    /// The step (`stage`, `switch`, `lock`, a task name, ...).
    pub step: String,
    /// What went wrong.
    pub fault: StepFault,
    /// What the operator can do about it.
    pub hint: Option<String>,
}

impl StepError {
    /// The transport failed during `step` on `host`.
    pub fn transport(host: &str, step: &str, error: TransportError) -> Self {
        Self {
            host: host.to_string(),
            step: step.to_string(),
            hint: error.hint().map(str::to_string),
            fault: StepFault::Transport(error),
        }
    }

    /// The command of `step` on `host` failed.
    pub fn remote(host: &str, step: &str, failure: Failure) -> Self {
        Self {
            host: host.to_string(),
            step: step.to_string(),
            fault: StepFault::Remote(failure),
            hint: None,
        }
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// True when the host, not the command, is the problem.
    pub fn is_unreachable(&self) -> bool {
        matches!(&self.fault, StepFault::Transport(e) if e.is_unreachable())
    }

    /// What went wrong, without host and step (for lines that already name them).
    pub fn message(&self) -> String {
        match &self.fault {
            StepFault::Transport(e) => e.to_string(),
            StepFault::Remote(f) => f.message.clone(),
        }
    }

    /// The failed command, when one ran.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.fault {
            StepFault::Remote(f) => Some(f),
            StepFault::Transport(_) => None,
        }
    }

    /// The full report: message, command, exit code, stderr tail and hint.
    pub fn details(&self) -> String {
        let mut text = self.to_string();
        if let Some(f) = self.failure() {
            text.push_str(&format!("\n  command: {}", f.command));
            if let Some(rc) = f.rc {
                text.push_str(&format!(" (exit {rc})"));
            }
            let stderr = tail(&f.stderr, 10);
            if !stderr.trim().is_empty() {
                text.push_str("\n  stderr:");
                for line in stderr.lines() {
                    text.push_str(&format!("\n    {line}"));
                }
            }
        }
        if let Some(h) = &self.hint {
            text.push_str(&format!("\n  hint: {h}"));
        }
        text
    }
}

/// The last line of a command's stderr (where tools say what went wrong), or `fallback`.
pub fn last_error_line(out: &Output, fallback: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr.trim().lines().last().unwrap_or(fallback).to_string()
}

/// The last `n` lines of a text, for failure reports.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
