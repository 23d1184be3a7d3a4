//! Running one piece of work on many hosts at once: at most `forks` hosts in flight, one
//! connection per host, Ctrl-C stops new hosts from starting while running ones finish.

use crate::transport::{ConnectOptions, Connection, Target, TransportError};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How one host's turn ended.
#[derive(Debug)]
pub enum HostOutcome<T> {
    /// Connected and the work ran (it may still have failed; `T` says).
    Done(T),
    /// The connection could not be made.
    Unreachable(TransportError),
    /// Never started: the run was interrupted first.
    NotStarted,
}

/// One host's result with its timing.
#[derive(Debug)]
pub struct HostResult<T> {
    /// Position of the host in the target list.
    pub index: usize,
    /// The inventory name.
    pub host: String,
    /// What happened.
    pub outcome: HostOutcome<T>,
    /// Wall time from connect to the end of the work.
    pub duration: Duration,
}

/// Runs `work` on every target, calling `on_result` as each host finishes (in the caller's task,
/// so the callback may print without locking).
pub async fn run_on_hosts<T, W, F>(
    targets: Vec<Target>,
    options: Arc<ConnectOptions>,
    forks: usize,
    cancel: CancellationToken,
    work: W,
    mut on_result: impl FnMut(HostResult<T>),
) where
    T: Send + 'static,
    W: Fn(Arc<Connection>, Target) -> F + Send + Sync + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let forks = Arc::new(Semaphore::new(forks.max(1)));
    let work = Arc::new(work);
    let mut set = JoinSet::new();
    for (index, target) in targets.into_iter().enumerate() {
        let (forks, work, options, cancel) = (forks.clone(), work.clone(), options.clone(), cancel.clone());
        set.spawn(async move {
            let host = target.name.clone();
            let permit = tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                p = forks.acquire_owned() => p.ok(),
            };
            let start = Instant::now();
            let outcome = match permit {
                None => HostOutcome::NotStarted,
                Some(_permit) => match Connection::open(&target, &options).await {
                    Err(e) => HostOutcome::Unreachable(e),
                    Ok(conn) => {
                        let conn = Arc::new(conn);
                        let result = work(conn.clone(), target).await;
                        if let Ok(conn) = Arc::try_unwrap(conn) {
                            conn.close().await;
                        }
                        HostOutcome::Done(result)
                    }
                },
            };
            HostResult {
                index,
                host,
                outcome,
                duration: start.elapsed(),
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok(result) = joined {
            on_result(result);
        }
    }
}

/// A token cancelled on the first Ctrl-C or SIGTERM (call inside the runtime).
pub fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    watch_interrupts(token.clone());
    token
}

/// Cancels `t` on the first Ctrl-C or SIGTERM (call inside the runtime).
pub fn watch_interrupts(t: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate());
            match term {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        t.cancel();
    });
}
