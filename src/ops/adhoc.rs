//! Ad-hoc work on many hosts (`tend exec`, `tend upload`): the same piece of work on every
//! target, each host connected for its turn, its result reported as it finishes, then the recap.

use crate::exit::Code;
use crate::output::{Events, HostCounts, HostResult, Status};
use crate::transport::{Fleet, Host, Target, TransportError};
use std::collections::BTreeMap;
use std::future::Future;

/// A host whose turn failed in the transport: unreachable, or failed (a time limit).
pub fn transport_result(host: &str, e: &TransportError) -> HostResult {
    let status = if e.is_unreachable() {
        Status::Unreachable
    } else {
        Status::Failed
    };
    let mut r = HostResult::new(host, status);
    r.msg = Some(e.to_string());
    r.hint = e.hint().map(str::to_string);
    r
}

/// Runs `work` on every target (at most `forks` at once; Ctrl-C starts no further host),
/// reports each host's result under `task` as it finishes, ends the stream and returns the
/// exit code: 99 interrupted, else 2 when a host failed, else 3 when one was unreachable.
pub async fn each<T, W, F>(
    events: &Events,
    fleet: &Fleet,
    task: &str,
    targets: Vec<Target>,
    work: W,
    report: impl Fn(T) -> HostResult,
) -> Code
where
    T: Send + 'static,
    W: Fn(Host) -> F + Send + Sync + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut counts: BTreeMap<String, HostCounts> = BTreeMap::new();
    fleet
        .each(targets, work, |done| {
            let mut result = match done.outcome {
                None => HostResult::new(&done.host, Status::Interrupted),
                Some(Err(e)) => transport_result(&done.host, &e),
                Some(Ok(t)) => report(t),
            };
            result.host = done.host.clone();
            result.duration_ms = done.duration.as_millis() as u64;
            counts.entry(done.host).or_default().add(result.status);
            events.result(task, result);
        })
        .await;
    fleet.close_all().await;
    let code = Code::of(
        counts.values().any(|c| c.failed > 0),
        counts.values().any(|c| c.unreachable > 0),
        fleet.cancel().is_cancelled(),
    );
    events.finish(counts, code)
}
