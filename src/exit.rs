//! Exit codes are part of the interface: CI pipelines branch on them, so they live in one place.

use std::process::ExitCode;

/// The documented exit codes of every `tend` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    /// Everything succeeded.
    Ok = 0,
    /// `tend` itself failed (local I/O, a bug): not the hosts' fault.
    Internal = 1,
    /// At least one host failed a command or task.
    HostFailed = 2,
    /// At least one host was unreachable and none failed.
    Unreachable = 3,
    /// The input (inventory, playbook, pattern, flags) is invalid; nothing was run.
    InvalidInput = 4,
    /// Another run holds the lock of the target (deploy, rollback, ...); nothing was changed.
    Locked = 5,
    /// `tend check`: a check past its warning threshold, none past its critical one.
    CheckWarning = 6,
    /// `tend check`: a check past its critical threshold, a service down, a host unreachable.
    CheckCritical = 7,
    /// `tend loadtest`: a threshold broke (`p95 < 300ms` did not hold).
    ThresholdBroken = 8,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted = 99,
}

impl Code {
    /// The code of a run over hosts: 99 when interrupted, else 2 when a host failed, else 3
    /// when one was unreachable, else 0.
    pub fn of(failed: bool, unreachable: bool, interrupted: bool) -> Self {
        if interrupted {
            Self::Interrupted
        } else if failed {
            Self::HostFailed
        } else if unreachable {
            Self::Unreachable
        } else {
            Self::Ok
        }
    }

    /// The process exit code for this outcome.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}
