//! Reaching hosts: one [`Host`] handle per host (connection, target, who commands run as,
//! counters) and one [`Fleet`] that connects a set of hosts (forks, connect timeout, each
//! unreachable host reported once, every master closed at the end and on Ctrl-C). Commands run
//! as channels of one SSH master per host (or locally); their output is collected, read line by
//! line as it comes, or streamed to a file or another host in constant memory. Modules and
//! operations talk to a [`Host`]; they never spawn `ssh` or build shell text themselves.

mod fleet;
mod held;
mod host;
mod local;
mod process;
pub mod shell;
mod ssh;
pub mod ssh_defaults;
pub mod stats;
mod step;
mod stream;
mod target;
mod upload;

pub use fleet::{Fleet, HostDone, interrupt_token};
pub use held::Held;
pub use host::{Counters, Host};
pub use process::{Input, Sink};
pub use shell::Become;
pub use step::{Failure, StepError, StepFault, last_error_line, tail};
pub use stream::{Hashed, Transfer, hash_file, pipe};
pub use target::{ConnectionKind, SshTarget, Target};
pub use upload::{
    Content, FileSpec, INLINE_LIMIT, UploadError, UploadOutcome, UploadReport, one_step, read_report, write_step,
};

use std::path::PathBuf;
use std::time::Duration;

/// How strictly to check host keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Unknown and changed keys are errors (the default).
    #[default]
    Strict,
    /// Unknown keys are added to known_hosts; changed keys are still errors.
    AcceptNew,
    /// No checking (only when a host's own ssh args ask for it).
    Off,
}

/// Settings shared by every connection of a run.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host key policy unless a host's ssh args say otherwise.
    pub host_keys: HostKeyPolicy,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Where the control sockets live (short path: sockets are limited to 108 bytes).
    pub control_dir: PathBuf,
    /// Concurrent channels per host; sshd's `MaxSessions` defaults to 10.
    pub channels_per_host: usize,
    /// tend's ssh client defaults (see [`ssh_defaults`]), used for hosts without their own `-F`.
    pub ssh_defaults: Option<PathBuf>,
}

/// How a program on the control node that runs `ssh` itself (rsync) reaches a host over tend's
/// connection to it, so it neither logs in again nor checks host keys less strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommand {
    /// `ssh` and its options, without the destination.
    pub argv: Vec<String>,
    /// The host's address (`ansible_host`).
    pub address: String,
}

/// A command to run on a host (who it runs as is the [`Host`]'s business).
#[derive(Debug, Clone, Default)]
pub struct RemoteCommand {
    /// POSIX shell script text (built with [`shell`] helpers).
    pub script: String,
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
    /// A word shown as the shell's name (`$0`) in the host's process list, so that another
    /// command can find this one (`pkill -f`); it must hold no secret.
    pub tag: Option<String>,
}

impl RemoteCommand {
    /// A script without a time limit.
    pub fn new(script: impl Into<String>) -> Self {
        Self {
            script: script.into(),
            timeout: None,
            tag: None,
        }
    }

    /// The same script, killed on the host after `timeout`.
    pub fn timeout(self, timeout: Option<Duration>) -> Self {
        Self { timeout, ..self }
    }

    /// The same script, named `tag` in the host's process list (see [`RemoteCommand::tag`]).
    pub fn tagged(self, tag: impl Into<String>) -> Self {
        Self {
            tag: Some(tag.into()),
            ..self
        }
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub rc: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.rc == Some(0)
    }
}

/// Why talking to a host failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The host could not be reached or refused us (network, auth, host key).
    #[error("{message}")]
    Unreachable {
        /// What ssh said, trimmed.
        message: String,
        /// What the user can do about it.
        hint: Option<String>,
    },
    /// The connection dropped while a command ran.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The command ran past its time limit and was killed.
    #[error("timed out after {}s", .0.as_secs())]
    Timeout(Duration),
    /// A local failure (spawning, pipes).
    #[error("{0}")]
    Local(String),
}

impl TransportError {
    /// True when the host, not the command, is the problem.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Disconnected(_))
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Unreachable { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// An open connection to one host.
#[derive(Debug)]
enum Connection {
    /// Over SSH.
    Ssh(Box<ssh::SshConnection>),
    /// On the control node itself.
    Local(local::LocalConnection),
}

impl Connection {
    /// Connects (for SSH: starts the master and authenticates).
    async fn open(target: &Target, options: &ConnectOptions) -> Result<Self, TransportError> {
        match &target.kind {
            ConnectionKind::Ssh(ssh) => Ok(Self::Ssh(Box::new(ssh::SshConnection::open(ssh, options).await?))),
            ConnectionKind::Local => Ok(Self::Local(local::LocalConnection::new(options))),
        }
    }

    /// Starts a command line.
    async fn spawn(&self, line: &str) -> Result<process::Process, TransportError> {
        match self {
            Self::Ssh(c) => c.spawn(line).await,
            Self::Local(c) => c.spawn(line).await,
        }
    }

    /// Whether the connection still stands (for SSH: the master answers), to tell a command
    /// that died with its connection from one killed on the host.
    async fn alive(&self) -> bool {
        match self {
            Self::Ssh(c) => c.alive().await,
            Self::Local(_) => true,
        }
    }

    /// How rsync and the like reach the host over this connection; `None` when it is local.
    async fn ssh_command(&self) -> Option<SshCommand> {
        match self {
            Self::Ssh(c) => Some(c.client().await),
            Self::Local(_) => None,
        }
    }

    /// Closes the connection (for SSH: stops the master).
    async fn close(self) {
        if let Self::Ssh(c) = self {
            (*c).close().await;
        }
    }
}
