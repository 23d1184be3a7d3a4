//! `ansible_connection: local`: commands run on the control node with the same shell text as SSH.

use super::{ConnectOptions, Output, TransportError};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// Runs commands on this machine.
#[derive(Debug)]
pub struct LocalConnection {
    slots: Semaphore,
}

impl LocalConnection {
    /// A local "connection" with the same concurrency bound as a remote one.
    pub fn new(options: &ConnectOptions) -> Self {
        Self {
            slots: Semaphore::new(options.channels_per_host.max(1)),
        }
    }

    /// Runs a command line with `sh -c`.
    pub async fn run(&self, line: &str, stdin: Option<&[u8]>) -> Result<Output, TransportError> {
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| TransportError::Local("connection is closing".into()))?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TransportError::Local(format!("cannot start `sh`: {e}")))?;
        super::stats::channel_opened();
        let writer = child.stdin.take();
        let feed = async move {
            if let (Some(mut w), Some(data)) = (writer, stdin) {
                let _ = w.write_all(data).await;
                let _ = w.shutdown().await;
            }
        };
        let (_, out) = tokio::join!(feed, child.wait_with_output());
        let out = out.map_err(|e| TransportError::Local(format!("waiting for `sh`: {e}")))?;
        Ok(Output {
            rc: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}
