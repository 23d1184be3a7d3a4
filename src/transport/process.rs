//! A command started on a host and the one place that drives its streams: input fed from bytes
//! or from a reader, output collected, handed over line by line as it arrives, or written to a
//! file or pipe, so that a multi-gigabyte transfer passes through in constant memory.

use super::{Output, TransportError};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

/// What a command reads on its standard input.
pub enum Input<'a> {
    /// Nothing (an empty stdin).
    None,
    /// These bytes.
    Bytes(&'a [u8]),
    /// Everything this reader yields, as it is read.
    Read(&'a mut (dyn AsyncRead + Unpin + Send)),
}

impl<'a> From<Option<&'a [u8]>> for Input<'a> {
    fn from(bytes: Option<&'a [u8]>) -> Self {
        bytes.map_or(Input::None, Input::Bytes)
    }
}

/// Where a command's standard output goes.
pub enum Sink<'a> {
    /// Kept whole in [`Output::stdout`] (small outputs).
    Collect,
    /// Each line (without its newline) as soon as it is complete.
    Lines(&'a mut (dyn FnMut(&[u8]) + Send)),
    /// Written as it arrives.
    Write(&'a mut (dyn AsyncWrite + Unpin + Send)),
}

/// Lines longer than this are handed over in pieces: a line sink holds no more.
const MAX_LINE: usize = 1 << 20;

/// Of a streamed command's stderr, only the end is kept.
const STDERR_TAIL: usize = 1 << 20;

/// Waits for a started command's exit status.
pub(super) enum Waiter {
    /// A channel of an SSH master.
    Ssh(openssh::Child<Arc<openssh::Session>>),
    /// A local `sh`.
    Local(tokio::process::Child),
}

/// A started command: its streams, its exit status to come, and its channel slot.
pub(super) struct Process {
    pub(super) stdin: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    pub(super) stdout: Box<dyn AsyncRead + Unpin + Send>,
    pub(super) stderr: Box<dyn AsyncRead + Unpin + Send>,
    pub(super) waiter: Waiter,
    pub(super) _slot: OwnedSemaphorePermit,
}

/// Bytes moved by one command, for the counters.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Moved {
    pub(super) sent: u64,
    pub(super) received: u64,
}

impl Process {
    /// Feeds `script` (the command's own text, see [`super::shell::command_line`]) then `input`,
    /// reads stdout into `sink` and stderr, then waits for the exit status. Exit status 127
    /// (command not found) is the command's own result, not a lost connection. Only `input`
    /// counts as bytes sent.
    pub(super) async fn finish(
        self,
        script: &[u8],
        input: Input<'_>,
        sink: Sink<'_>,
    ) -> Result<(Output, Moved), TransportError> {
        let Process {
            stdin,
            mut stdout,
            mut stderr,
            waiter,
            _slot,
        } = self;
        let streamed = !matches!(sink, Sink::Collect);
        let feed = async move {
            let Some(mut w) = stdin else {
                return Ok(0);
            };
            // A command that exits without reading its input is not an error of ours.
            if w.write_all(script).await.is_err() {
                return Ok(0);
            }
            let sent = match input {
                Input::None => 0,
                Input::Bytes(b) => w.write_all(b).await.map(|()| b.len() as u64).unwrap_or(0),
                Input::Read(r) => copy(r, &mut w).await,
            };
            let _ = w.shutdown().await;
            Ok(sent)
        };
        let out = read_stdout(&mut stdout, sink);
        let err = async {
            let mut kept = Vec::new();
            if !streamed {
                let _ = stderr.read_to_end(&mut kept).await;
                return Ok(kept);
            }
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > 2 * STDERR_TAIL {
                            kept.drain(..kept.len() - STDERR_TAIL);
                        }
                    }
                }
            }
            Ok(kept)
        };
        // A failing sink (a full disk) ends the command at once: its channel is dropped.
        let (sent, (stdout, received), stderr) = tokio::try_join!(feed, out, err)?;
        let rc = match waiter {
            Waiter::Ssh(child) => match child.wait().await {
                Ok(status) => status.code(),
                Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
                Err(openssh::Error::RemoteProcessTerminated) => None,
                Err(e) => return Err(TransportError::Disconnected(super::ssh::error_chain(&e))),
            },
            Waiter::Local(mut child) => child
                .wait()
                .await
                .map_err(|e| TransportError::Local(format!("waiting for `sh`: {e}")))?
                .code(),
        };
        Ok((Output { rc, stdout, stderr }, Moved { sent, received }))
    }
}

/// Copies a reader into the command's stdin in large chunks (a file read 8 KiB at a time costs
/// tend more CPU than the transfer itself); stops at the first error, returns the bytes sent.
async fn copy(from: &mut (dyn AsyncRead + Unpin + Send), to: &mut (dyn AsyncWrite + Unpin + Send)) -> u64 {
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return sent,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return sent;
        }
        sent += n as u64;
    }
}

/// Reads stdout into the sink; returns what was collected and the byte count.
async fn read_stdout(
    stdout: &mut (dyn AsyncRead + Unpin + Send),
    sink: Sink<'_>,
) -> Result<(Vec<u8>, u64), TransportError> {
    let mut received = 0u64;
    let lost = |e: std::io::Error| TransportError::Disconnected(format!("reading the command's output: {e}"));
    match sink {
        Sink::Collect => {
            let mut all = Vec::new();
            stdout.read_to_end(&mut all).await.map_err(lost)?;
            received = all.len() as u64;
            Ok((all, received))
        }
        Sink::Lines(f) => {
            let mut buf = vec![0u8; 64 * 1024];
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let n = stdout.read(&mut buf).await.map_err(lost)?;
                if n == 0 {
                    break;
                }
                received += n as u64;
                pending.extend_from_slice(&buf[..n]);
                let mut start = 0;
                while let Some(p) = pending[start..].iter().position(|&b| b == b'\n') {
                    f(&pending[start..start + p]);
                    start += p + 1;
                }
                pending.drain(..start);
                if pending.len() > MAX_LINE {
                    f(&pending);
                    pending.clear();
                }
            }
            if !pending.is_empty() {
                f(&pending);
            }
            Ok((Vec::new(), received))
        }
        Sink::Write(w) => {
            // A pipe passes at most 64 KiB at a time.
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stdout.read(&mut buf).await.map_err(lost)?;
                if n == 0 {
                    break;
                }
                received += n as u64;
                w.write_all(&buf[..n])
                    .await
                    .map_err(|e| TransportError::Local(format!("writing the command's output: {e}")))?;
            }
            w.flush()
                .await
                .map_err(|e| TransportError::Local(format!("writing the command's output: {e}")))?;
            Ok((Vec::new(), received))
        }
    }
}
