//! What every command reports, as it happens: one typed event stream for playbook runs, ad-hoc
//! commands and operations alike. The schema (docs/json-output.md) is versioned by
//! [`SCHEMA_VERSION`], carried by the first event of every stream.

use crate::modules::Diff;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// The version of the JSON Lines schema; bumped when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// How a host fared in a task, a step or a command: one vocabulary for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Done, nothing changed (or a command exited 0).
    Ok,
    /// Done, and the host changed.
    Changed,
    /// Failed.
    Failed,
    /// Failed, but `ignore_errors` let the host go on.
    Ignored,
    /// Not done on purpose (`when` false, check mode, nothing to do).
    Skipped,
    /// The host could not be reached.
    Unreachable,
    /// Never started: the run was interrupted first.
    Interrupted,
}

impl Status {
    /// The status of a finished piece of work from whether it changed the host.
    pub fn done(changed: bool) -> Self {
        if changed { Self::Changed } else { Self::Ok }
    }

    /// True for `failed` and `unreachable`.
    pub fn is_bad(self) -> bool {
        matches!(self, Self::Failed | Self::Unreachable)
    }
}

/// One host's result: of a playbook task (per loop item for loops), of an ad-hoc command, or of
/// a listing command.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    /// Inventory name.
    pub host: String,
    /// Outcome.
    pub status: Status,
    /// Convenience copy of "changed".
    pub changed: bool,
    /// Wall time on this host.
    pub duration_ms: u64,
    /// Message: why it failed, what it found, what `debug` says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Exit code of the command that ran, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<i32>,
    /// The command or step that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The whole standard output (ad-hoc commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// The whole standard error (ad-hoc commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Last lines of stdout (playbook tasks).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout_tail: String,
    /// Last lines of stderr (playbook tasks).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    /// File diffs (with `--diff`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<Diff>,
    /// Loop item label, for per-item results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The host the work ran on, when delegated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_to: Option<String>,
    /// Structured findings of listing commands (`tend lock show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Json>,
    /// Show `msg` even without `-v` (what `debug` is for).
    #[serde(skip)]
    pub show_msg: bool,
    /// `no_log`: every value of this result is hidden from every output.
    #[serde(skip)]
    pub no_log: bool,
}

impl HostResult {
    /// A result with nothing but its host and status.
    pub fn new(host: &str, status: Status) -> Self {
        Self {
            host: host.to_string(),
            status,
            changed: status == Status::Changed,
            duration_ms: 0,
            msg: None,
            hint: None,
            rc: None,
            cmd: None,
            stdout: None,
            stderr: None,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            diff: Vec::new(),
            item: None,
            delegated_to: None,
            data: None,
            show_msg: false,
            no_log: false,
        }
    }

    /// A failed result with a message.
    pub fn failed(host: &str, msg: impl Into<String>) -> Self {
        Self {
            msg: Some(msg.into()),
            ..Self::new(host, Status::Failed)
        }
    }

    /// A result for a host where a step failed: unreachable or failed, with the command, its
    /// exit code, the tail of its stderr and the hint.
    pub fn from_step_error(e: &crate::transport::StepError) -> Self {
        let step = StepEvent::failed(e);
        let mut r = Self::new(&e.host, step.status);
        r.msg = Some(step.message);
        let Cause {
            cmd,
            rc,
            stderr_tail,
            hint,
        } = step.cause;
        (r.cmd, r.rc, r.stderr_tail, r.hint) = (cmd, rc, stderr_tail, hint);
        r
    }
}

/// Why a step or a command failed, for the operator: the command, its exit code, the end of
/// its stderr, what to do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cause {
    /// The command that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Its exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<i32>,
    /// The last lines of its stderr.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Cause {
    /// What a step error says beyond its message.
    pub fn of(e: &crate::transport::StepError) -> Self {
        let f = e.failure();
        Self {
            cmd: f.map(|f| f.command.clone()),
            rc: f.and_then(|f| f.rc),
            stderr_tail: f.map(|f| crate::transport::tail(&f.stderr, 10)).unwrap_or_default(),
            hint: e.hint.clone(),
        }
    }
}

/// One step of an operation on one host (`stage`, `switch`, `drain`, `lock`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct StepEvent {
    /// Inventory name.
    pub host: String,
    /// The step.
    pub step: String,
    /// How it went.
    pub status: Status,
    /// What happened, in words.
    pub message: String,
    /// How long it took, when timed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Why it failed.
    #[serde(flatten)]
    pub cause: Cause,
}

impl StepEvent {
    /// A step that went as planned.
    pub fn new(host: &str, step: &str, status: Status, message: impl Into<String>) -> Self {
        Self {
            host: host.to_string(),
            step: step.to_string(),
            status,
            message: message.into(),
            duration_ms: None,
            cause: Cause::default(),
        }
    }

    /// A step that failed, with what its error says.
    pub fn failed(e: &crate::transport::StepError) -> Self {
        let status = if e.is_unreachable() {
            Status::Unreachable
        } else {
            Status::Failed
        };
        Self {
            cause: Cause::of(e),
            ..Self::new(&e.host, &e.step, status, e.message())
        }
    }

    /// The same step with its time.
    pub fn took(mut self, d: std::time::Duration) -> Self {
        self.duration_ms = Some(d.as_millis() as u64);
        self
    }
}

/// Why a command or operation stopped, with the failed step's details when there was one.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEvent {
    /// What went wrong.
    pub message: String,
    /// The host, when one host's step caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The command, its exit code, its stderr, what to do.
    #[serde(flatten)]
    pub cause: Cause,
}

impl ErrorEvent {
    /// An error that is only words.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            host: None,
            step: None,
            cause: Cause::default(),
        }
    }

    /// A failed step, with `context` before its message (`staging failed; no host was switched`).
    pub fn step(context: &str, e: &crate::transport::StepError) -> Self {
        let message = if context.is_empty() {
            e.to_string()
        } else {
            format!("{context}: {e}")
        };
        Self {
            host: Some(e.host.clone()),
            step: Some(e.step.clone()),
            cause: Cause::of(e),
            ..Self::new(message)
        }
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.cause.hint = Some(hint.into());
        self
    }
}

/// What an operation did, for the record: the last event of a deploy or rollback, also kept
/// on the hosts it changed.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// `deploy`, `rollback`, ...
    pub command: String,
    /// The target group (the lock's name).
    pub group: String,
    /// Who ran it.
    pub user: String,
    /// Where it ran.
    pub control_host: String,
    /// RFC 3339 start.
    pub started: String,
    /// RFC 3339 end.
    pub finished: String,
    /// Duration, to a tenth of a second.
    pub seconds: f64,
    /// Check mode: nothing was changed.
    pub check: bool,
    /// The whole operation's outcome (`deployed`, `rolled_back`, `unchanged`, `checked`, `failed`).
    pub outcome: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Each host's part.
    pub hosts: Vec<HostRecord>,
    /// What the operation adds (`release`, `sha256`, `artifact`, ...).
    #[serde(flatten)]
    pub details: Map<String, Json>,
}

/// One host's part in an operation.
#[derive(Debug, Clone, Serialize)]
pub struct HostRecord {
    /// Inventory name.
    pub host: String,
    /// How it fared (`ok`: unchanged, `changed`, `failed`).
    pub status: Status,
    /// What the operation made of it (`deployed`, `rolled_back`, `unverified`, `unchanged`, `failed`).
    pub outcome: String,
    /// The operation's own fields (`before`, `after`, ...).
    #[serde(flatten)]
    pub details: Map<String, Json>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A column of a [`Event::Table`].
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// The row field shown.
    pub key: String,
    /// Its heading.
    pub title: String,
}

impl Column {
    /// Column `key` headed `title`.
    pub fn new(key: &str, title: &str) -> Self {
        Self {
            key: key.into(),
            title: title.into(),
        }
    }
}

/// Per-host totals for the recap (read back by `tend report merge`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HostCounts {
    /// Tasks or steps that changed nothing.
    pub ok: u32,
    /// That changed the host.
    pub changed: u32,
    /// That failed the host.
    pub failed: u32,
    /// Skipped.
    pub skipped: u32,
    /// 1 when the host became unreachable.
    pub unreachable: u32,
    /// Failures recovered by `rescue`.
    pub rescued: u32,
    /// Failures ignored by `ignore_errors`.
    pub ignored: u32,
    /// 1 when the host never started because the run was interrupted.
    pub interrupted: u32,
}

impl HostCounts {
    /// Counts one outcome.
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Changed => self.changed += 1,
            Status::Failed => self.failed += 1,
            Status::Ignored => self.ignored += 1,
            Status::Skipped => self.skipped += 1,
            Status::Unreachable => self.unreachable += 1,
            Status::Interrupted => self.interrupted += 1,
        }
    }

    /// Nothing counted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Something that happened during a command.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first event of every stream.
    Start {
        /// [`SCHEMA_VERSION`].
        schema_version: u32,
        /// `run`, `exec`, `deploy`, ...
        command: String,
        /// This run's id (`<UTC time>-<pid>`), also the audit log's name.
        run_id: String,
        /// How many hosts the command works on (0: decided later, by plays).
        hosts: usize,
    },
    /// A play starts.
    PlayStart {
        /// Play name.
        name: String,
        /// Hosts in the play.
        hosts: Vec<String>,
    },
    /// A task starts on some hosts.
    TaskStart {
        /// Task name.
        name: String,
        /// `file:line`.
        location: String,
        /// How many hosts run it.
        hosts: usize,
        /// True for handlers.
        handler: bool,
    },
    /// One host's result (of the current task, of an ad-hoc command, of a listing).
    Result {
        /// The task, the command line, or what was asked.
        task: String,
        /// `file:line` of a playbook task.
        #[serde(skip_serializing_if = "Option::is_none")]
        location: Option<String>,
        /// The result.
        #[serde(flatten)]
        result: Box<HostResult>,
    },
    /// The current task finished on every host.
    TaskEnd {
        /// Task name.
        name: String,
        /// How long it took: from its start to its last result, or, for tasks sent to the hosts
        /// together with others, the longest time it ran on one host.
        duration_ms: u64,
    },
    /// A line a host's command printed, as it came (`tend exec --stream`).
    Output {
        /// Inventory name.
        host: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The line, without its newline.
        line: String,
    },
    /// One step of an operation on one host.
    Step(Box<StepEvent>),
    /// How far a long measurement has got (a load test, each second): a live bar at a
    /// terminal, a line now and then elsewhere.
    Progress {
        /// The figures so far, in words.
        message: String,
        /// Done so far (seconds of a load test).
        done: u64,
        /// Of how many.
        total: u64,
        /// Worth a line of its own where no bar can be drawn (every few seconds).
        #[serde(skip)]
        line: bool,
    },
    /// Progress of an operation (what it is about to do).
    Note {
        /// The text.
        message: String,
    },
    /// Something the operator should know (nothing matched, a play was stopped, a stale lock).
    Warning {
        /// The text.
        message: String,
    },
    /// Why a command or operation could not do its work.
    Error(Box<ErrorEvent>),
    /// An operation's record.
    Record(Box<Record>),
    /// A listing (`tend releases`): in JSON one `row` line per row.
    Table {
        /// What is listed.
        table: String,
        /// The columns people see.
        columns: Vec<Column>,
        /// The rows, with every field.
        rows: Vec<Json>,
        /// A row field that marks rows to look at, and the words shown beside them.
        #[serde(skip)]
        mark: Option<(String, String)>,
    },
    /// The command is over: the last event of every stream.
    Recap {
        /// Totals per host.
        hosts: BTreeMap<String, HostCounts>,
        /// Wall time of the command.
        duration_ms: u64,
        /// The exit code the command ends with.
        exit_code: u8,
    },
}

impl Event {
    /// Calls `f` on every text the event carries, so secrets can be masked in one place.
    pub(super) fn texts_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        fn json(v: &mut Json, f: &mut dyn FnMut(&mut String)) {
            match v {
                Json::String(s) => f(s),
                Json::Array(a) => a.iter_mut().for_each(|v| json(v, f)),
                Json::Object(m) => m.values_mut().for_each(|v| json(v, f)),
                _ => {}
            }
        }
        fn opt(v: &mut Option<String>, f: &mut dyn FnMut(&mut String)) {
            if let Some(s) = v {
                f(s);
            }
        }
        fn cause(c: &mut Cause, f: &mut dyn FnMut(&mut String)) {
            opt(&mut c.cmd, f);
            opt(&mut c.hint, f);
            f(&mut c.stderr_tail);
        }
        match self {
            Event::Start { .. } | Event::TaskEnd { .. } | Event::Recap { .. } => {}
            Event::PlayStart { name, .. } | Event::TaskStart { name, .. } => f(name),
            Event::Result { task, result, .. } => {
                f(task);
                let r = &mut **result;
                for s in [
                    &mut r.msg,
                    &mut r.hint,
                    &mut r.cmd,
                    &mut r.stdout,
                    &mut r.stderr,
                    &mut r.item,
                ] {
                    opt(s, f);
                }
                f(&mut r.stdout_tail);
                f(&mut r.stderr_tail);
                for d in &mut r.diff {
                    f(&mut d.before);
                    f(&mut d.after);
                }
                if let Some(d) = &mut r.data {
                    json(d, f);
                }
            }
            Event::Output { line, .. } => f(line),
            Event::Step(s) => {
                f(&mut s.message);
                cause(&mut s.cause, f);
            }
            Event::Note { message } | Event::Warning { message } | Event::Progress { message, .. } => f(message),
            Event::Error(e) => {
                f(&mut e.message);
                cause(&mut e.cause, f);
            }
            Event::Record(r) => {
                opt(&mut r.error, f);
                for h in &mut r.hosts {
                    opt(&mut h.error, f);
                }
                r.details.values_mut().for_each(|v| json(v, f));
            }
            Event::Table { rows, .. } => rows.iter_mut().for_each(|v| json(v, f)),
        }
    }
}
