//! The one way to connect a set of hosts: at most `forks` hosts connecting or working at once,
//! one connection per host for the whole command (opened on first use or all up front), a host
//! that cannot be reached remembered so it is tried and reported once, and every master closed
//! at the end. Ctrl-C (or SIGTERM) cancels the fleet's token: no new host starts, running
//! commands finish or time out, then the masters close.

use super::{ConnectOptions, Host, Target, TransportError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

type Slot = Arc<OnceCell<Result<Host, TransportError>>>;

/// The hosts a command works on, connected as needed.
#[derive(Debug)]
pub struct Fleet {
    options: Arc<ConnectOptions>,
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    forks: Arc<Semaphore>,
    cancel: CancellationToken,
}

/// How one host's turn of [`Fleet::each`] ended.
#[derive(Debug)]
pub struct HostDone<T> {
    /// The inventory name.
    pub host: String,
    /// The work's result; `Err` when the host could not be reached; `None` when it never
    /// started because the command was interrupted first.
    pub outcome: Option<Result<T, TransportError>>,
    /// Wall time from connecting to the end of the work.
    pub duration: Duration,
}

impl Fleet {
    /// A fleet whose hosts connect with `options`, at most `forks` at once, stopping on `cancel`.
    pub fn new(options: ConnectOptions, forks: usize, cancel: CancellationToken) -> Self {
        Self {
            options: Arc::new(options),
            slots: Arc::new(Mutex::new(HashMap::new())),
            forks: Arc::new(Semaphore::new(forks.max(1))),
            cancel,
        }
    }

    /// Cancelled on Ctrl-C or SIGTERM (when made with [`interrupt_token`]).
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The bound on hosts working at once: a caller holds a permit while a host works.
    pub fn forks(&self) -> &Semaphore {
        &self.forks
    }

    fn slot(&self, name: &str) -> Result<Slot, TransportError> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| TransportError::Local("connection table poisoned".into()))?;
        Ok(slots.entry(name.to_string()).or_default().clone())
    }

    /// The host's connection, opened the first time it is asked for; a host that could not be
    /// reached gives the same error again without a second attempt. The caller bounds
    /// concurrency (it holds a [`Fleet::forks`] permit, or calls [`Fleet::connect`]).
    pub async fn host(&self, target: &Target) -> Result<Host, TransportError> {
        let slot = self.slot(&target.name)?;
        slot.get_or_init(|| Host::open(target, &self.options)).await.clone()
    }

    /// Connects every target at once (at most `forks` connecting together), in their order.
    pub async fn connect(&self, targets: &[Target]) -> Vec<Result<Host, TransportError>> {
        let jobs = targets.iter().map(|t| async move {
            let _permit = self.forks.acquire().await;
            self.host(t).await
        });
        futures_util::future::join_all(jobs).await
    }

    /// Runs `work` on every target, at most `forks` at once, each host connected just before
    /// its turn and closed after it; `done` is called as each host finishes (in the caller's
    /// task). After Ctrl-C no further host starts.
    pub async fn each<T, W, F>(&self, targets: Vec<Target>, work: W, mut done: impl FnMut(HostDone<T>))
    where
        T: Send + 'static,
        W: Fn(Host) -> F + Send + Sync + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let work = Arc::new(work);
        let mut set = JoinSet::new();
        for target in targets {
            let (forks, work, cancel, options, slots) = (
                self.forks.clone(),
                work.clone(),
                self.cancel.clone(),
                self.options.clone(),
                self.slots.clone(),
            );
            let slot = match self.slot(&target.name) {
                Ok(slot) => slot,
                Err(e) => {
                    done(HostDone {
                        host: target.name.clone(),
                        outcome: Some(Err(e)),
                        duration: Duration::ZERO,
                    });
                    continue;
                }
            };
            set.spawn(async move {
                let permit = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => None,
                    p = forks.acquire_owned() => p.ok(),
                };
                let start = Instant::now();
                let outcome = match permit {
                    None => None,
                    Some(_permit) => {
                        let host = slot.get_or_init(|| Host::open(&target, &options)).await.clone();
                        Some(match host {
                            Err(e) => Err(e),
                            Ok(host) => Ok(work(host).await),
                        })
                    }
                };
                // Its turn is over: its master goes now, alongside the other hosts' work.
                drop(slot);
                close(&slots, &target.name).await;
                HostDone {
                    host: target.name,
                    outcome,
                    duration: start.elapsed(),
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            if let Ok(result) = joined {
                done(result);
            }
        }
    }

    /// Closes every connection.
    pub async fn close_all(&self) {
        let slots: Vec<Slot> = match self.slots.lock() {
            Ok(mut s) => s.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        let closing = slots.into_iter().filter_map(|slot| {
            let cell = Arc::try_unwrap(slot).ok()?;
            let host = cell.into_inner()?.ok()?;
            Some(host.close())
        });
        futures_util::future::join_all(closing).await;
    }
}

/// Takes a host's connection out of the table and closes it (when nobody else holds it).
async fn close(slots: &Mutex<HashMap<String, Slot>>, name: &str) {
    let slot = match slots.lock() {
        Ok(mut s) => s.remove(name),
        Err(_) => None,
    };
    if let Some(slot) = slot
        && let Ok(cell) = Arc::try_unwrap(slot)
        && let Some(Ok(host)) = cell.into_inner()
    {
        host.close().await;
    }
}

/// A token cancelled on the first Ctrl-C or SIGTERM (call inside the runtime).
pub fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
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
        t.cancel();
    });
    token
}
