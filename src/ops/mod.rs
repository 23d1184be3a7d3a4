//! The operations core: the shape every command that works on a set of hosts shares, written
//! once so that each command only says what its steps are.
//!
//! ```text
//! resolve targets ─► connect (one Fleet: forks, unreachable hosts reported once)
//!   ─► take the lease lock of the target (held: exit 5) ─► the operation's steps, per host or
//!   per batch, each reported as a `step` event with one status vocabulary ─► the record
//!   ─► release the lock ─► close every master ─► recap and exit code
//! ```
//!
//! `deploy`, `rollback`, `releases` and `lock` are built on [`run`]; `migrate`, `backup`,
//! `restore` and `failover` are meant to be too. A new operation:
//! 1. resolves its targets before anything connects ([`group`] for a group with `--limit`,
//!    then its own settings through [`crate::settings::Variables`]; bad input is a
//!    [`Diagnostic`] and exit 4);
//! 2. fills a [`Request`]: its name, why, whether it changes the fleet (then it takes the lock
//!    named after the target group, on the group's first host);
//! 3. calls [`run`] with its work: an async function of the [`Session`], which hands out the
//!    connected [`Host`]s, runs per-host steps at most `forks` at once ([`Session::each`]),
//!    reports steps ([`Session::step`], [`Session::failed`]) and says whether the lock was lost;
//!    it returns an [`Outcome`]: the exit code and the operation's record.
//!
//! Steps are runbook functions of the operation's own module (`release::remote::switch`, ...),
//! each a script on a [`Host`] failing with a [`StepError`] (host, step, command, exit code,
//! stderr tail, hint). The domain logic decides what a failure means (stop, undo, go on); this
//! module owns the parts that are the same everywhere.

pub mod adhoc;
pub mod lock;
pub mod proxy;

use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::inventory::Inventory;
use crate::output::{ErrorEvent, Event, Events, HostCounts, HostRecord, Record, Status, StepEvent};
use crate::transport::{Fleet, Host, StepError, Target};
use lock::{Lease, LockError};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A group of the inventory as an operation's target.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group's name (also the lock's name).
    pub name: String,
    /// The hosts the operation works on (the group narrowed by `--limit`), inventory order.
    pub hosts: Vec<usize>,
    /// Where the group's lock lives: its first host, whatever `--limit` says.
    pub lock_host: usize,
}

/// Resolves a group and `--limit` to hosts; a missing or empty group is an input error with
/// a "did you mean".
pub fn group(inv: &Inventory, name: &str, limit: Option<&str>) -> Result<Group, Diagnostic> {
    let Some(g) = inv.group_index(name) else {
        let names: Vec<&str> = inv.groups.iter().map(|g| g.name.as_str()).collect();
        let mut d = Diagnostic::plain(format!("the inventory has no group `{name}`"));
        d = match crate::diagnostic::did_you_mean(name, names.iter().copied()) {
            Some(m) => d.with_hint(format!("did you mean `--group {m}`?")),
            None => d.with_hint("list the inventory's groups with `tend inventory --graph`"),
        };
        return Err(d);
    };
    if !lock::valid_name(name) {
        return Err(Diagnostic::plain(format!("group `{name}` cannot name a lock file"))
            .with_hint("use a group named with letters, digits, `.`, `_` and `-`"));
    }
    let Some(&lock_host) = inv.hosts_of_group(g).first() else {
        return Err(Diagnostic::plain(format!("group `{name}` has no hosts")));
    };
    let hosts = crate::inventory::select(inv, name, limit)?;
    if hosts.is_empty() {
        return Err(Diagnostic::plain(format!(
            "--limit `{}` leaves no host of group `{name}`",
            limit.unwrap_or_default()
        )));
    }
    Ok(Group {
        name: name.to_string(),
        hosts,
        lock_host,
    })
}

/// The lock an operation takes before it changes anything.
#[derive(Debug, Clone)]
pub struct LockRequest {
    /// Its name: the target group.
    pub name: String,
    /// The host holding the lock file.
    pub host: Target,
    /// Lease length; renewed every third of it while the operation runs.
    pub ttl: Duration,
    /// How long to wait for another holder (zero: fail at once, exit 5).
    pub wait: Duration,
}

/// Why an operation stops before its end: the exit code it implies and the error to show.
#[derive(Debug)]
pub struct Abort {
    /// The exit code.
    pub code: Code,
    /// What to tell the operator.
    pub error: Box<ErrorEvent>,
}

impl Abort {
    /// An abort that is only words.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            error: Box::new(ErrorEvent::new(message)),
        }
    }

    /// A failed step stops the run: unreachable (exit 3) or failed (exit 2).
    pub fn step(context: &str, e: &StepError) -> Self {
        Self {
            code: if e.is_unreachable() {
                Code::Unreachable
            } else {
                Code::HostFailed
            },
            error: Box::new(ErrorEvent::step(context, e)),
        }
    }

    /// The same, with what to do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.error.cause.hint = Some(hint.into());
        self
    }
}

/// When an operation started, for its record: who ran it, from where, when, and for how long
/// are the same for every operation, so they are filled in one place.
#[derive(Debug, Clone)]
pub struct Clock {
    started: String,
    at: std::time::Instant,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Self {
        Self {
            started: crate::output::now_rfc3339(),
            at: std::time::Instant::now(),
        }
    }

    /// The operation's record as of now: `command` on `group`, by this user and control host,
    /// started and finished; the outcome, hosts and details are the caller's to fill.
    pub fn record(&self, command: &str, group: &str) -> Record {
        let me = lock::Me::current();
        Record {
            command: command.to_string(),
            group: group.to_string(),
            user: me.user,
            control_host: me.control_host,
            started: self.started.clone(),
            finished: crate::output::now_rfc3339(),
            seconds: (self.at.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            check: false,
            outcome: String::new(),
            error: None,
            hosts: Vec::new(),
            details: serde_json::Map::new(),
        }
    }
}

/// What an operation on one host came to: its outcome word, the host's status and the
/// record's details.
pub type OneHost = (&'static str, Status, serde_json::Map<String, serde_json::Value>);

impl Clock {
    /// The outcome of an operation that worked on one host: the record with that host (the
    /// abort's error shown and recorded; `failed` keeps the details given for it).
    pub fn one_host(
        &self,
        s: &Session<'_>,
        (command, group, host): (&str, &str, &str),
        result: Result<OneHost, (Abort, serde_json::Map<String, serde_json::Value>)>,
    ) -> Outcome {
        let (code, (outcome, status, details), error) = match result {
            Ok(x) => (Code::Ok, x, None),
            Err((abort, details)) => {
                let message = abort.error.message.clone();
                s.events().error(*abort.error);
                (abort.code, ("failed", Status::Failed, details), Some(message))
            }
        };
        Outcome {
            code,
            record: Some(Record {
                outcome: outcome.into(),
                error: error.clone(),
                hosts: vec![HostRecord {
                    host: host.to_string(),
                    status,
                    outcome: outcome.into(),
                    details: serde_json::Map::new(),
                    error,
                }],
                details,
                ..self.record(command, group)
            }),
        }
    }
}

/// What an operation is.
#[derive(Debug, Clone)]
pub struct Request {
    /// The command (`deploy`), written into the lock.
    pub command: String,
    /// Why (`release 42`), written into the lock.
    pub reason: String,
    /// The lock to take; `None` for read-only operations.
    pub lock: Option<LockRequest>,
    /// Check mode: the lock is only looked at (its holder shown), never taken.
    pub check: bool,
    /// Hosts working at once.
    pub forks: usize,
    /// Hosts the operation can do without (a failover's dead primary): when one cannot be
    /// reached it is reported and the work runs without it ([`Session::host`] is `None`).
    /// The lock's host is never optional.
    pub optional: Vec<String>,
}

impl Request {
    /// A read-only look at `targets` (checks, log collection): no lock, and a host that cannot
    /// be reached is reported while the others are worked on.
    pub fn survey(command: &str, forks: usize, targets: &[Target]) -> Self {
        Self {
            command: command.into(),
            reason: String::new(),
            lock: None,
            check: false,
            forks,
            optional: targets.iter().map(|t| t.name.clone()).collect(),
        }
    }
}

/// What an operation's work came to.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code.
    pub code: Code,
    /// Its record (`None` for listings).
    pub record: Option<Record>,
}

/// What an operation works with while it runs.
pub struct Session<'a> {
    hosts: BTreeMap<String, Host>,
    events: &'a Events,
    lease: Option<&'a Lease>,
    counts: Mutex<BTreeMap<String, HostCounts>>,
    /// Ctrl-C: stop starting new steps.
    pub cancel: CancellationToken,
    /// Hosts working at once.
    pub forks: usize,
}

impl<'a> Session<'a> {
    /// A connected host by inventory name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.get(name)
    }

    /// The event stream (notes, warnings, errors).
    pub fn events(&self) -> &Events {
        self.events
    }

    /// The lock held, if any (none in check mode and for listings).
    pub fn lease(&self) -> Option<&Lease> {
        self.lease
    }

    /// Reports a step and counts it for its host's recap.
    pub fn step(&self, step: StepEvent) {
        if let Ok(mut c) = self.counts.lock() {
            c.entry(step.host.clone()).or_default().add(step.status);
        }
        self.events.step(step);
    }

    /// Reports a failed step with everything its error says.
    pub fn failed(&self, e: &StepError) {
        self.step(StepEvent::failed(e));
    }

    /// Reports a host's result (a listing's finding) and counts it for the recap.
    pub fn result(&self, task: &str, result: crate::output::HostResult) {
        if let Ok(mut c) = self.counts.lock() {
            c.entry(result.host.clone()).or_default().add(result.status);
        }
        self.events.result(task, result);
    }

    /// Ends the work without a record: the code, or the abort reported with its code.
    pub fn end(&self, result: Result<Code, Abort>) -> Outcome {
        match result {
            Ok(code) => Outcome { code, record: None },
            Err(abort) => {
                self.events.error(*abort.error);
                Outcome {
                    code: abort.code,
                    record: None,
                }
            }
        }
    }

    /// Counts a host that took part without a step of its own to report.
    pub fn touch(&self, host: &str) {
        if let Ok(mut c) = self.counts.lock() {
            c.entry(host.to_string()).or_default();
        }
    }

    /// Runs `work` for each item, at most `forks` at once; results in the items' order.
    pub async fn each<I, T, F, Fut>(&self, items: I, work: F) -> Vec<T>
    where
        I: IntoIterator,
        F: Fn(I::Item) -> Fut,
        Fut: Future<Output = T>,
    {
        let limit = tokio::sync::Semaphore::new(self.forks.max(1));
        let jobs = items.into_iter().map(|item| {
            let limit = &limit;
            let job = work(item);
            async move {
                let _permit = limit.acquire().await;
                job.await
            }
        });
        futures_util::future::join_all(jobs).await
    }
}

/// Where the steps of a runbook are reported: the operation's [`Session`] (events and recap),
/// or a playbook module collecting them into its result, so that one runbook serves both.
pub trait Progress: Sync {
    /// A step on a host.
    fn step(&self, step: StepEvent);
    /// What is about to happen.
    fn note(&self, message: String);
    /// Something the operator should know.
    fn warn(&self, message: String);
}

impl Progress for Session<'_> {
    fn step(&self, step: StepEvent) {
        Session::step(self, step);
    }

    fn note(&self, message: String) {
        self.events.note(message);
    }

    fn warn(&self, message: String) {
        self.events.warn(message);
    }
}

/// Runs an operation: connects every target (an unreachable host stops it before anything
/// changes: exit 3), takes the lock (held by another run: exit 5), runs `work`, emits its
/// record, releases the lock, closes every master and ends the stream with the recap.
pub async fn run<W>(events: &Events, fleet: &Fleet, request: Request, targets: Vec<Target>, work: W) -> Code
where
    W: AsyncFnOnce(&Session<'_>) -> Outcome,
{
    let mut unique: Vec<Target> = Vec::new();
    for t in targets.into_iter().chain(request.lock.iter().map(|l| l.host.clone())) {
        if !unique.iter().any(|u| u.name == t.name) {
            unique.push(t);
        }
    }
    let mut counts: BTreeMap<String, HostCounts> = BTreeMap::new();
    let mut hosts = BTreeMap::new();
    let mut unreachable = Vec::new();
    for (t, r) in unique.iter().zip(fleet.connect(&unique).await) {
        match r {
            Ok(h) => {
                hosts.insert(t.name.clone(), h);
            }
            Err(e) => {
                let e = StepError::transport(&t.name, "connect", e);
                counts.entry(t.name.clone()).or_default().add(Status::Unreachable);
                events.step(StepEvent::failed(&e));
                // The lock's host is never optional: without it nothing may change.
                let lock_host = request.lock.as_ref().is_some_and(|l| l.host.name == t.name);
                if lock_host || !request.optional.contains(&t.name) {
                    unreachable.push(e);
                }
            }
        }
    }
    if let Some(first) = unreachable.first() {
        let message = match unreachable.len() {
            1 => format!("{first}; nothing was changed"),
            n => format!(
                "{first}; {} more host(s) cannot be reached either; nothing was changed",
                n - 1
            ),
        };
        let mut error = ErrorEvent::new(message);
        error.cause.hint = first.hint.clone();
        events.error(error);
        drop(hosts);
        fleet.close_all().await;
        return events.finish(counts, Code::Unreachable);
    }
    let lease = match take_lock(events, &hosts, &request, fleet.cancel()).await {
        Ok(lease) => lease,
        Err(code) => {
            drop(hosts);
            fleet.close_all().await;
            return events.finish(counts, code);
        }
    };
    let session = Session {
        hosts,
        events,
        lease: lease.as_ref(),
        counts: Mutex::new(counts),
        cancel: fleet.cancel().clone(),
        forks: request.forks,
    };
    let outcome = work(&session).await;
    if let Some(record) = outcome.record {
        events.emit(Event::Record(Box::new(record)));
    }
    let counts = session.counts.into_inner().unwrap_or_default();
    drop(session.hosts);
    if let Some(lease) = lease {
        if lease.is_lost() {
            events.warn(format!(
                "the lock `{}` was broken or taken over by another run while this one worked",
                lease.name()
            ));
        }
        if let Err(e) = lease.release().await {
            events.warn(format!(
                "could not release the lock (it expires by itself): {}",
                e.details()
            ));
        }
    }
    fleet.close_all().await;
    events.finish(counts, outcome.code)
}

/// Takes the request's lock; in check mode only shows who holds it. `Err`: the exit code.
async fn take_lock(
    events: &Events,
    hosts: &BTreeMap<String, Host>,
    request: &Request,
    cancel: &CancellationToken,
) -> Result<Option<Lease>, Code> {
    let Some(spec) = &request.lock else {
        return Ok(None);
    };
    let Some(host) = hosts.get(&spec.host.name) else {
        events.error(ErrorEvent::new(format!(
            "internal: no connection to the lock host {}",
            spec.host.name
        )));
        return Err(Code::Internal);
    };
    if request.check {
        if let Ok(Some(held)) = lock::show(host, &spec.name).await {
            events.warn(format!("lock {}", held.describe()));
        }
        return Ok(None);
    }
    let req = lock::Request {
        name: spec.name.clone(),
        command: request.command.clone(),
        reason: request.reason.clone(),
        ttl: spec.ttl,
        wait: spec.wait,
    };
    match lock::acquire(host, &req, cancel).await {
        Ok(lease) => {
            if let Some(old) = &lease.replaced {
                events.warn(format!("took over a stale lock: {}", old.describe()));
            }
            Ok(Some(lease))
        }
        Err(LockError::Held(info)) => {
            let breaking = match spec.name.as_str() {
                "db" => "`tend lock break --db`".to_string(),
                n if n.starts_with("migrate-") => {
                    "it expires by itself (its holder renews it while it runs)".to_string()
                }
                n => format!("`tend lock break --group {n}`"),
            };
            events.error(ErrorEvent::new(format!("lock {}", info.describe())).with_hint(format!(
                "wait with `--lock-wait SECONDS`; if that run is gone, {breaking}"
            )));
            Err(Code::Locked)
        }
        Err(LockError::Interrupted) => Err(Code::Interrupted),
        Err(LockError::Step(e)) => {
            events.error(ErrorEvent::step("cannot take the lock", &e));
            Err(Code::HostFailed)
        }
    }
}
