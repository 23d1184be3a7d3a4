//! Releases: Capistrano's `releases/<id>` + `shared/` + `current` layout on each app host,
//! deploys that drain each batch from the load balancer, switch `current` atomically, restart,
//! pass a health gate and roll back on failure, and a lease lock that every fleet-changing
//! command (deploy, rollback, later migrate, failover, restore) takes first.
//!
//! On each host (under `deploy_root`): `releases/<id>/` complete release trees,
//! `current -> releases/<id>`, `shared/` linked into releases, `.tend/manifests/<id>` (checksum,
//! time; a release counts only with its manifest), `.tend/active` (the release last verified
//! serving) and `.tend/deploys.log` (JSON Lines, one record per deploy or rollback).

pub mod artifact;
pub mod balancer;
pub mod deploy;
pub mod health;
pub mod lock;
pub mod remote;
pub mod settings;

use crate::transport::{Become, Connection, Output, RemoteCommand, TransportError};
use std::sync::Arc;
use std::time::Duration;

/// A connected host: what every release step runs through.
#[derive(Debug, Clone)]
pub struct Node {
    /// Inventory name.
    pub name: String,
    /// The open connection.
    pub conn: Arc<Connection>,
    /// `become` settings of the host.
    pub escalate: Option<Become>,
}

/// A step that failed on a host: enough to act on without reading logs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// The host could not be talked to.
    #[error("{host}: {step}: {error}")]
    Transport {
        /// Inventory name.
        host: String,
        /// The step (`stage`, `switch`, `restart`, ...).
        step: String,
        /// What the transport said.
        error: TransportError,
    },
    /// The step ran and failed.
    #[error("{host}: {step}: {message}")]
    Remote {
        /// Inventory name.
        host: String,
        /// The step.
        step: String,
        /// What failed, in words.
        message: String,
        /// The command, in short.
        command: String,
        /// Its exit code.
        rc: Option<i32>,
        /// The last lines of its stderr.
        stderr: String,
    },
}

impl StepError {
    /// The host the error happened on.
    pub fn host(&self) -> &str {
        match self {
            Self::Transport { host, .. } | Self::Remote { host, .. } => host,
        }
    }

    /// What went wrong, without host and step (for lines that already name them).
    pub fn message(&self) -> String {
        match self {
            Self::Transport { error, .. } => error.to_string(),
            Self::Remote { message, .. } => message.clone(),
        }
    }

    /// The full report: message, command, exit code and stderr tail.
    pub fn details(&self) -> String {
        match self {
            Self::Transport { .. } => self.to_string(),
            Self::Remote {
                command, rc, stderr, ..
            } => {
                let mut text = format!("{self}\n  command: {command}");
                if let Some(rc) = rc {
                    text.push_str(&format!(" (exit {rc})"));
                }
                if !stderr.trim().is_empty() {
                    text.push_str("\n  stderr:\n");
                    for line in stderr.lines() {
                        text.push_str(&format!("    {line}\n"));
                    }
                }
                text.trim_end().to_string()
            }
        }
    }
}

/// A borrowed host: what a playbook module has (its task's connection), and what every
/// host step runs through.
#[derive(Debug, Clone, Copy)]
pub struct On<'a> {
    /// Inventory name.
    pub name: &'a str,
    /// The connection.
    pub conn: &'a Connection,
    /// `become` settings.
    pub escalate: Option<&'a Become>,
}

impl Node {
    /// This host, borrowed for host steps.
    pub fn on(&self) -> On<'_> {
        On {
            name: &self.name,
            conn: &self.conn,
            escalate: self.escalate.as_ref(),
        }
    }
}

impl On<'_> {
    /// Runs a host script for `step`; a non-zero exit becomes a [`StepError::Remote`] whose message
    /// is the script's last stderr line (or `what` failed).
    pub async fn step(
        &self,
        step: &str,
        what: &str,
        script: String,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, StepError> {
        let command = RemoteCommand {
            script,
            stdin: None,
            escalate: self.escalate.cloned(),
            timeout: Some(timeout),
        };
        let out = self
            .conn
            .run_input(&command, stdin)
            .await
            .map_err(|error| StepError::Transport {
                host: self.name.to_string(),
                step: step.to_string(),
                error,
            })?;
        if out.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(StepError::Remote {
            host: self.name.to_string(),
            step: step.to_string(),
            message: crate::modules::last_error_line(&out, &format!("{what} failed")),
            command: what.to_string(),
            rc: out.rc,
            stderr: crate::modules::tail(&stderr, 10),
        })
    }
}
