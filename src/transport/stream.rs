//! Moving bytes that may not fit in memory: a command's output into a local file or into a
//! command on another host, a local file into a command, each with a SHA-256 computed on the
//! way, so that the receiving end can be checked against the sending end.

use super::process::{Input, Sink};
use super::{Host, Output, RemoteCommand, TransportError};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// What passed through a stream: how many bytes and their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// Byte count.
    pub bytes: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// Hashes and counts what is written or read through it.
pub(super) struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    pub(super) fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn add(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }

    pub(super) fn hashed(&self) -> Hashed {
        Hashed {
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.clone().finalize()),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Hashing<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.add(&buf[..*n]);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            self.add(&buf.filled()[before..]);
        }
        poll
    }
}

/// The SHA-256 and size of a local file, read in large chunks.
pub async fn hash_file(path: &std::path::Path) -> std::io::Result<Hashed> {
    let file = tokio::fs::File::open(path).await?;
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, file);
    let mut sink = Hashing::new(tokio::io::sink());
    tokio::io::copy_buf(&mut reader, &mut sink).await?;
    Ok(sink.hashed())
}

/// A command's output moved to another host's command.
#[derive(Debug)]
pub struct Transfer {
    /// The sending command's exit (its stdout went to the receiver).
    pub source: Output,
    /// The receiving command's exit and output.
    pub dest: Output,
    /// What passed between them.
    pub hashed: Hashed,
}

/// Streams the stdout of `from_cmd` on `from` (its stdin: `from_input`) into the stdin of
/// `to_cmd` on `to` (after `to_prefix`, a login line), through the control node in constant
/// memory, hashing what was sent on the way. When the receiver stops reading, the sender is
/// stopped too.
pub async fn pipe(
    from: &Host,
    (from_cmd, from_input): (&RemoteCommand, Input<'_>),
    to: &Host,
    (to_cmd, to_prefix): (&RemoteCommand, &[u8]),
) -> Result<Transfer, TransportError> {
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let send = async move {
        let mut writer = Hashing::new(writer);
        let out = from.stream(from_cmd, from_input, Sink::Write(&mut writer)).await;
        // Dropping the writer ends the receiver's input.
        let _ = writer.shutdown().await;
        out.map(|o| (o, writer.hashed()))
    };
    let receive = async move {
        // Owned here, so that a receiver that ends early drops the pipe and stops the sender.
        use tokio::io::AsyncReadExt as _;
        let mut input = to_prefix.chain(reader);
        to.run(to_cmd, Input::Read(&mut input)).await
    };
    let (sent, received) = tokio::join!(send, receive);
    let dest = received?;
    let (source, hashed) = match sent {
        Ok(sent) => sent,
        // The receiving command failed and ended first (a full disk): the sender's broken pipe
        // is its consequence; the receiver's own failure is what the caller reports.
        Err(_) if !dest.success() => (
            Output {
                rc: None,
                stdout: Vec::new(),
                stderr: b"stopped: the receiving side failed".to_vec(),
            },
            Hashed {
                bytes: 0,
                sha256: String::new(),
            },
        ),
        Err(e) => return Err(e),
    };
    Ok(Transfer { source, dest, hashed })
}

impl Host {
    /// Streams a command's stdout into `file` as it comes (its stdin: `input`); returns the
    /// command's exit and what was written.
    pub async fn to_file(
        &self,
        command: &RemoteCommand,
        input: Input<'_>,
        file: &mut tokio::fs::File,
    ) -> Result<(Output, Hashed), TransportError> {
        let mut writer = Hashing::new(file);
        let out = self.stream(command, input, Sink::Write(&mut writer)).await?;
        Ok((out, writer.hashed()))
    }

    /// Runs a command with `prefix` and then a local file as its stdin, read as it is sent;
    /// returns the command's output and what was sent of the file.
    pub async fn from_file(
        &self,
        command: &RemoteCommand,
        prefix: &[u8],
        path: &std::path::Path,
    ) -> Result<(Output, Hashed), TransportError> {
        use tokio::io::AsyncReadExt as _;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| TransportError::Local(format!("cannot read {}: {e}", path.display())))?;
        let mut reader = Hashing::new(file);
        let out = {
            let mut input = prefix.chain(&mut reader);
            self.run(command, Input::Read(&mut input)).await?
        };
        Ok((out, reader.hashed()))
    }
}
