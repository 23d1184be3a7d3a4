//! The one handle on a connected host that playbook tasks, ad-hoc commands and operations all
//! use: its connection, how it was reached, who commands run as, and what went through it.

use super::process::{Input, Sink};
use super::{Become, ConnectOptions, Connection, Output, RemoteCommand, StepError, Target, TransportError, shell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A connected host. Cheap to clone: clones share the connection; [`Host::becoming`] gives one
/// that runs commands as another user over the same connection.
#[derive(Debug, Clone)]
pub struct Host {
    shared: Arc<Shared>,
    escalate: Option<Become>,
}

#[derive(Debug)]
struct Shared {
    target: Target,
    conn: Connection,
    channels: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
}

/// What went through one host's connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Commands started (SSH channels, or local shells).
    pub channels: u64,
    /// Bytes fed to commands' stdin.
    pub bytes_sent: u64,
    /// Bytes read from commands' stdout.
    pub bytes_received: u64,
}

impl Host {
    /// Connects to `target`; commands run as its `become` user.
    pub(super) async fn open(target: &Target, options: &ConnectOptions) -> Result<Self, TransportError> {
        let conn = Connection::open(target, options).await?;
        Ok(Self {
            escalate: target.escalate.clone(),
            shared: Arc::new(Shared {
                target: target.clone(),
                conn,
                channels: AtomicU64::new(0),
                sent: AtomicU64::new(0),
                received: AtomicU64::new(0),
            }),
        })
    }

    /// The inventory name.
    pub fn name(&self) -> &str {
        &self.shared.target.name
    }

    /// The same host and connection, running commands as `escalate` (a task's `become`).
    pub fn becoming(&self, escalate: Option<Become>) -> Self {
        Self {
            shared: self.shared.clone(),
            escalate,
        }
    }

    /// How a control-node program that runs `ssh` itself (rsync) reaches this host over its
    /// connection; `None` for a local host.
    pub async fn ssh_command(&self) -> Option<super::SshCommand> {
        self.shared.conn.ssh_command().await
    }

    /// Who commands run as when that is not the connecting user (a task's `become`).
    pub fn escalation(&self) -> Option<&Become> {
        self.escalate.as_ref()
    }

    /// What went through this host's connection so far.
    pub fn counters(&self) -> Counters {
        Counters {
            channels: self.shared.channels.load(Ordering::Relaxed),
            bytes_sent: self.shared.sent.load(Ordering::Relaxed),
            bytes_received: self.shared.received.load(Ordering::Relaxed),
        }
    }

    /// Runs a command and collects its output.
    pub async fn run(&self, command: &RemoteCommand, input: Input<'_>) -> Result<Output, TransportError> {
        let output = self.stream_to_the_end(command, input, Sink::Collect).await?;
        self.lost_or(output).await
    }

    /// [`Host::run`] for several tasks joined in one script: when the connection dies part way,
    /// what arrived is returned (without an exit status), so the tasks that finished still
    /// count; [`Host::connected`] then tells the lost connection apart.
    pub async fn run_joined(&self, command: &RemoteCommand, input: Input<'_>) -> Result<Output, TransportError> {
        self.stream_to_the_end(command, input, Sink::Collect).await
    }

    /// Whether the connection still stands.
    pub async fn connected(&self) -> bool {
        self.shared.conn.alive().await
    }

    /// A command without an exit status whose connection went: the host is unreachable, the
    /// command did not fail (it may have been killed on the host, which keeps the connection).
    async fn lost_or(&self, output: Output) -> Result<Output, TransportError> {
        if output.rc.is_none() && !self.connected().await {
            return Err(TransportError::Disconnected(format!(
                "the connection to {} was lost while the command ran",
                self.name()
            )));
        }
        Ok(output)
    }

    /// Runs a command with its output going to `sink` as it comes (stdout is then not kept in
    /// the [`Output`]; of stderr only the last MiB is).
    pub async fn stream(
        &self,
        command: &RemoteCommand,
        input: Input<'_>,
        sink: Sink<'_>,
    ) -> Result<Output, TransportError> {
        let output = self.stream_to_the_end(command, input, sink).await?;
        self.lost_or(output).await
    }

    async fn stream_to_the_end(
        &self,
        command: &RemoteCommand,
        input: Input<'_>,
        sink: Sink<'_>,
    ) -> Result<Output, TransportError> {
        let (line, script) = shell::command_line(command, self.escalate.as_ref());
        let run = async {
            let process = self.shared.conn.spawn(&line).await?;
            self.shared.channels.fetch_add(1, Ordering::Relaxed);
            let (output, moved) = process.finish(&script, input, sink).await?;
            self.shared.sent.fetch_add(moved.sent, Ordering::Relaxed);
            self.shared.received.fetch_add(moved.received, Ordering::Relaxed);
            super::stats::moved(moved.sent, moved.received);
            Ok::<_, TransportError>(output)
        };
        // The remote `timeout` kills first; this is the backstop if the host stops answering.
        let output = match command.timeout {
            Some(t) => tokio::time::timeout(t + Duration::from_secs(10), run)
                .await
                .map_err(|_| TransportError::Timeout(t))??,
            None => run.await?,
        };
        match (command.timeout, output.rc) {
            (Some(t), Some(124)) => Err(TransportError::Timeout(t)),
            _ => Ok(output),
        }
    }

    /// Runs the script of a named step (`stage`, `switch`, ...) with a time limit; a non-zero
    /// exit becomes a [`StepError`] whose message is the script's last stderr line (or `what`
    /// failed).
    pub async fn step(
        &self,
        step: &str,
        what: &str,
        script: String,
        input: Input<'_>,
        timeout: Duration,
    ) -> Result<Output, StepError> {
        let command = RemoteCommand::new(script).timeout(Some(timeout));
        let out = self
            .run(&command, input)
            .await
            .map_err(|e| StepError::transport(self.name(), step, e))?;
        if out.success() {
            return Ok(out);
        }
        Err(StepError::remote(
            self.name(),
            step,
            super::Failure::from_output(
                super::step::last_error_line(&out, &format!("{what} failed")),
                what,
                &out,
            ),
        ))
    }

    /// Closes the connection when this is its last handle; otherwise the last one to go closes it.
    pub(super) async fn close(self) {
        if let Ok(shared) = Arc::try_unwrap(self.shared) {
            shared.conn.close().await;
        }
    }
}
