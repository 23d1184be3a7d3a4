//! A timer precise to microseconds for the open model's arrivals. Tokio's timer wheel has a
//! resolution of one millisecond, so an arrival released by it starts up to a millisecond after
//! it was due, and the open model (which counts latency from the due time) would report that as
//! the server's. A Linux timerfd is a high-resolution kernel timer that wakes the runtime's own
//! event loop, so no second thread and no spinning is needed.

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A one-shot timer re-armed for each arrival.
pub struct Alarm {
    fd: Option<AsyncFd<OwnedFd>>,
    /// How late the timer's wake-ups have been (an average): it is set this much early, so that
    /// arrivals start on time on average instead of always late. (A request sent early counts
    /// its latency from the send, so the lead never shortens a latency.)
    lead: Duration,
}

/// The lead never grows past this.
const MAX_LEAD: Duration = Duration::from_millis(1);

impl Default for Alarm {
    /// Falls back to tokio's timer where a timerfd cannot be made (or outside a runtime).
    fn default() -> Self {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()
        // Registering needs a runtime (it would panic without one).
        .filter(|_| tokio::runtime::Handle::try_current().is_ok())
        // SAFETY: an `OwnedFd` is an open descriptor that stays the same until it is dropped,
        // which the `AsyncFd` owning it does last.
        .and_then(|fd| unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok());
        Self {
            fd,
            lead: Duration::ZERO,
        }
    }
}

impl Alarm {
    /// Returns at `due`, give or take the timer's lateness (at once when it has passed).
    pub async fn until(&mut self, due: Instant) {
        let fire = due.checked_sub(self.lead).unwrap_or(due);
        let Some(left) = fire.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
            return;
        };
        if !self.wait(left).await {
            tokio::time::sleep_until(due.into()).await;
            return;
        }
        let late = Instant::now().saturating_duration_since(fire).min(MAX_LEAD);
        self.lead = (self.lead * 7 + late) / 8;
    }

    /// Waits `left` on the timerfd; false when there is none or it failed (nothing waited).
    async fn wait(&self, left: Duration) -> bool {
        let Some(fd) = &self.fd else {
            return false;
        };
        let spec = Itimerspec {
            it_interval: Timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            },
        };
        if rustix::time::timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec).is_err() {
            return false;
        }
        let mut expirations = [0u8; 8];
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return false;
            };
            if ready
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut expirations).map_err(std::io::Error::from))
                .is_ok()
            {
                return true;
            }
        }
    }
}
