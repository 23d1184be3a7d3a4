//! What a playbook run reports, as it happens. The executor sends events; a monitor renders
//! them (human text on stderr, or JSON Lines on stdout) and the audit log records them.

use crate::modules::Diff;
use serde::Serialize;

/// The outcome of one task on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Nothing to change.
    Ok,
    /// Changed the host.
    Changed,
    /// Failed (and was not ignored).
    Failed,
    /// Failed, but `ignore_errors` let the host go on.
    Ignored,
    /// Skipped (`when` false, check mode, ...).
    Skipped,
    /// The host could not be reached.
    Unreachable,
}

/// One host's result for one task.
#[derive(Debug, Clone, Serialize)]
pub struct HostTaskResult {
    /// Inventory name.
    pub host: String,
    /// Outcome.
    pub status: TaskStatus,
    /// Convenience copy of "changed".
    pub changed: bool,
    /// Wall time on this host.
    pub duration_ms: u64,
    /// Message (failure reason, debug output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// Exit code of the command that ran, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<i32>,
    /// The command or step that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Last lines of stdout.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout_tail: String,
    /// Last lines of stderr.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    /// File diffs (with `--diff`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<Diff>,
    /// Loop item label, for per-item results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Show `msg` even without `-v` (what `debug` is for).
    #[serde(skip)]
    pub show_msg: bool,
    /// The host the work ran on, when delegated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_to: Option<String>,
}

/// Per-host totals for the recap.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostCounts {
    /// Tasks that changed nothing.
    pub ok: u32,
    /// Tasks that changed the host.
    pub changed: u32,
    /// Tasks that failed the host.
    pub failed: u32,
    /// Tasks skipped.
    pub skipped: u32,
    /// 1 when the host became unreachable.
    pub unreachable: u32,
    /// Failures recovered by `rescue`.
    pub rescued: u32,
    /// Failures ignored by `ignore_errors`.
    pub ignored: u32,
}

/// Something that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
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
    /// One host finished the current task.
    Result {
        /// Task name.
        task: String,
        /// `file:line`.
        location: String,
        /// The result.
        #[serde(flatten)]
        result: Box<HostTaskResult>,
    },
    /// The current task finished on every host.
    TaskEnd {
        /// Task name.
        name: String,
        /// How long it took: from its start to its last result, or, for tasks sent to the hosts
        /// together with others, the longest time it ran on one host.
        duration_ms: u64,
    },
    /// A warning for the operator (nothing matched, a play was stopped).
    Warning {
        /// The text.
        message: String,
    },
    /// The run is over.
    Recap {
        /// Totals per host.
        hosts: std::collections::BTreeMap<String, HostCounts>,
        /// Wall time of the run.
        duration_ms: u64,
        /// The exit code the run ends with.
        exit_code: u8,
    },
}
