//! Running commands and placing files on hosts: SSH (one multiplexed master per host) or local.
//! Modules and commands talk to a [`Connection`]; they never spawn `ssh` or build shell text.

mod local;
pub mod shell;
mod ssh;
pub mod ssh_defaults;
pub mod stats;
mod target;
mod upload;

pub use shell::Become;
pub use target::{ConnectionKind, SshTarget, Target, TargetOverrides};
pub use upload::{FileSpec, UploadError, UploadOutcome, UploadReport, one_step, read_report, write_step};

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

/// A command to run on a host.
#[derive(Debug, Clone, Default)]
pub struct RemoteCommand {
    /// POSIX shell script text (built with [`shell`] helpers).
    pub script: String,
    /// Bytes fed to the command's stdin.
    pub stdin: Option<Vec<u8>>,
    /// Run as another user.
    pub escalate: Option<Become>,
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
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
pub enum Connection {
    /// Over SSH.
    Ssh(Box<ssh::SshConnection>),
    /// On the control node itself.
    Local(local::LocalConnection),
}

impl Connection {
    /// Connects (for SSH: starts the master and authenticates).
    pub async fn open(target: &Target, options: &ConnectOptions) -> Result<Self, TransportError> {
        match &target.kind {
            ConnectionKind::Ssh(ssh) => Ok(Self::Ssh(Box::new(ssh::SshConnection::open(ssh, options).await?))),
            ConnectionKind::Local => Ok(Self::Local(local::LocalConnection::new(options))),
        }
    }

    /// Runs a command and collects its output.
    pub async fn run(&self, command: &RemoteCommand) -> Result<Output, TransportError> {
        self.run_input(command, command.stdin.as_deref()).await
    }

    /// Runs a command with `stdin` borrowed instead of owned (`command.stdin` is ignored): one
    /// large artifact goes to many hosts without a copy per host.
    pub async fn run_input(&self, command: &RemoteCommand, stdin: Option<&[u8]>) -> Result<Output, TransportError> {
        let line = shell::command_line(&command.script, command.escalate.as_ref(), command.timeout);
        // The remote `timeout` kills first; this is the backstop if the host stops answering.
        let limit = command.timeout.map(|t| t + Duration::from_secs(10));
        let run = async {
            match self {
                Self::Ssh(c) => c.run(&line, stdin).await,
                Self::Local(c) => c.run(&line, stdin).await,
            }
        };
        let output = match limit {
            Some(limit) => tokio::time::timeout(limit, run)
                .await
                .map_err(|_| TransportError::Timeout(command.timeout.unwrap_or_default()))??,
            None => run.await?,
        };
        match (command.timeout, output.rc) {
            (Some(t), Some(124)) => Err(TransportError::Timeout(t)),
            _ => Ok(output),
        }
    }

    /// Closes the connection (for SSH: stops the master).
    pub async fn close(self) {
        if let Self::Ssh(c) = self {
            (*c).close().await;
        }
    }
}
