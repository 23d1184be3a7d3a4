//! A command kept running on a host for as long as something must hold: a database session
//! with a lock or a stopped applier, the balancer's database proxy with writes stopped. The
//! command reads its stdin until it ends; tend ends it by closing that stdin ([`Held::release`]),
//! and so does the SSH channel closing when tend is killed, so that what the command undoes at
//! its end (restart an applier, let writes through again) also happens then.

use super::{Failure, Host, Input, RemoteCommand, Sink, StepError};
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// A command held open on a host until released.
pub struct Held {
    stdin: Option<tokio::io::DuplexStream>,
    task: tokio::task::JoinHandle<Result<(), StepError>>,
}

impl Held {
    /// Ends the command (closes its stdin) and waits for it; its failure, if it failed.
    pub async fn release(self) -> Result<(), StepError> {
        self.release_with(b"").await
    }

    /// Writes `last` to the command (what it should do at its end), then ends it.
    pub async fn release_with(mut self, last: &[u8]) -> Result<(), StepError> {
        if let Some(mut tx) = self.stdin.take()
            && !last.is_empty()
        {
            let _ = tx.write_all(last).await;
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(StepError::remote(
                "localhost",
                "session",
                Failure::message(format!("internal: the held command's task failed: {e}"), "session"),
            )),
        }
    }
}

impl Host {
    /// Starts `command` (its script should ignore SIGHUP and SIGPIPE and undo its work once its
    /// stdin ends), writes `input` to it, and waits up to `wait` for its first `lines` lines of
    /// output, which say it holds. Returns it and those lines; when it ends before saying
    /// them, its failure (step `step`).
    pub async fn hold(
        &self,
        step: &str,
        command: RemoteCommand,
        input: &[u8],
        lines: usize,
        wait: Duration,
    ) -> Result<(Held, Vec<String>), StepError> {
        let (mut tx, rx) = tokio::io::duplex(4096);
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<Vec<String>>();
        let host = self.clone();
        let what = step.to_string();
        let task = tokio::spawn(async move {
            let mut rx = rx;
            let mut answer = Some(answer_tx);
            let mut seen: Vec<String> = Vec::new();
            let mut on_line = |l: &[u8]| {
                seen.push(String::from_utf8_lossy(l).into_owned());
                if seen.len() == lines
                    && let Some(a) = answer.take()
                {
                    let _ = a.send(seen.clone());
                }
            };
            let out = host
                .stream(&command, Input::Read(&mut rx), Sink::Lines(&mut on_line))
                .await
                .map_err(|e| StepError::transport(host.name(), &what, e))?;
            if out.success() {
                return Ok(());
            }
            Err(StepError::remote(
                host.name(),
                &what,
                Failure::from_output(
                    super::last_error_line(&out, &format!("{what} failed")),
                    what.clone(),
                    &out,
                ),
            ))
        });
        let sent = tx.write_all(input).await;
        let answer = tokio::time::timeout(wait + Duration::from_secs(30), answer_rx).await;
        let held = Held { stdin: Some(tx), task };
        match (sent, answer) {
            (Ok(()), Ok(Ok(seen))) => Ok((held, seen)),
            _ => Err(match held.release().await {
                Err(e) => e,
                Ok(()) => StepError::remote(
                    self.name(),
                    step,
                    Failure::message(format!("{step}: no answer from the host"), step.to_string()),
                ),
            }),
        }
    }
}
