//! What the transport did in this process — connections made, channels opened, time spent
//! connecting — so the cost of a run can be measured (`TEND_STATS=1` prints it on stderr; the
//! benchmark in `bench/` reads it to report channels per host and task).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static CHANNELS: AtomicU64 = AtomicU64::new(0);
static CONNECT_MICROS: AtomicU64 = AtomicU64::new(0);
static SENT: AtomicU64 = AtomicU64::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// Counts one connection that was made, and how long making it took.
pub(super) fn connected(took: Duration) {
    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    CONNECT_MICROS.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
}

/// Counts one command started on a host (one SSH channel, or one local `sh`).
pub(super) fn channel_opened() {
    CHANNELS.fetch_add(1, Ordering::Relaxed);
}

/// Counts bytes fed to commands and read from their stdout.
pub(super) fn moved(sent: u64, received: u64) {
    SENT.fetch_add(sent, Ordering::Relaxed);
    RECEIVED.fetch_add(received, Ordering::Relaxed);
}

/// The counters so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Connections made (reconnects included).
    pub connections: u64,
    /// Commands started: SSH channels, or local shells.
    pub channels: u64,
    /// Time spent making connections, summed over hosts.
    pub connect_ms: u64,
    /// Bytes fed to commands' stdin.
    pub bytes_sent: u64,
    /// Bytes read from commands' stdout.
    pub bytes_received: u64,
}

/// Reads the counters.
pub fn snapshot() -> Stats {
    Stats {
        connections: CONNECTIONS.load(Ordering::Relaxed),
        channels: CHANNELS.load(Ordering::Relaxed),
        connect_ms: CONNECT_MICROS.load(Ordering::Relaxed) / 1000,
        bytes_sent: SENT.load(Ordering::Relaxed),
        bytes_received: RECEIVED.load(Ordering::Relaxed),
    }
}
