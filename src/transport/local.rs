//! `ansible_connection: local`: commands run on the control node with the same shell text as SSH.

use super::process::{Process, Waiter};
use super::{ConnectOptions, TransportError};
use std::process::Stdio;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Runs commands on this machine.
#[derive(Debug)]
pub struct LocalConnection {
    slots: Arc<Semaphore>,
}

impl LocalConnection {
    /// A local "connection" with the same concurrency bound as a remote one.
    pub fn new(options: &ConnectOptions) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(options.channels_per_host.max(1))),
        }
    }

    /// Starts a command line with `sh -c`.
    pub(super) async fn spawn(&self, line: &str) -> Result<Process, TransportError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Local("connection is closing".into()))?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TransportError::Local(format!("cannot start `sh`: {e}")))?;
        super::stats::channel_opened();
        let stdin = child
            .stdin
            .take()
            .map(|w| Box::new(w) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>);
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(TransportError::Local("the command's output pipes are missing".into()));
        };
        Ok(Process {
            stdin,
            stdout: Box::new(stdout),
            stderr: Box::new(stderr),
            waiter: Waiter::Local(child),
            _slot: slot,
        })
    }
}
