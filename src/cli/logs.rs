//! `tend logs`: the hosts' logs, kept on the control node.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::logs::{self, LogFile};
use crate::ops::{self, Outcome, Request, Session};
use crate::output::{Event, Events, Layout, Status, StepEvent};
use crate::settings::HostVars;
use crate::transport::{StepError, Target};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The hosts' logs
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    Collect(CollectArgs),
}

/// Pull the hosts' logs into the local store, incrementally
///
/// Each host's logs are `logs_files` (a mapping of name to path) or the shop's defaults by
/// group: `lb` Nginx's access.log and error.log, `app` Tomcat's catalina.out, `db` MariaDB's
/// error and slow logs (a file that does not exist is skipped with a note). Each run takes
/// what was written since the last one, following logrotate in all its forms (rename and
/// create, copytruncate, delaycompress, gzip of the rotated file, dateext): no line is lost or
/// stored twice. Lines are stored compressed, one file per host, log and day:
/// `<store>/<host>/<log>/<YYYY-MM-DD>.log.gz` (the day the line names; `zcat` reads it). A
/// lock keeps two runs from overlapping, so cron may run it every minute; a second run while
/// one holds the lock exits 5 at once.
///
/// The store is `--store`, else `logs_store_dir`, else ~/.local/state/tend/logs (owner-only).
///
/// Examples:
///   tend logs collect -i inventory.yaml
///   tend logs collect lb -i inventory.yaml --follow
///   * * * * * tend logs collect -i /etc/tend/inventory.yaml   (crontab: every minute)
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CollectArgs {
    /// Host pattern: `all`, a group, a host, `web*`, `a:b`, `a:&b`, `a:!b`, `~regex`
    #[arg(default_value = "all")]
    pub pattern: String,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    /// The store directory [default: `logs_store_dir`, else ~/.local/state/tend/logs]
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Keep collecting every --interval seconds and print each new line (`[log] line`, or an
    /// `output` event per line in JSON), until Ctrl-C
    #[arg(long)]
    pub follow: bool,
    /// Seconds between collections with --follow
    #[arg(long, default_value_t = 2, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    #[command(flatten)]
    pub output: OutputOpts,
}

/// Runs `tend logs ...`.
pub fn run(cmd: LogsCommand) -> Result<Code, CliError> {
    match cmd {
        LogsCommand::Collect(a) => collect(a),
    }
}

fn collect(a: CollectArgs) -> Result<Code, CliError> {
    let (inv, vars) = a.inventory.load()?;
    let chosen = crate::inventory::select(&inv, &a.pattern, a.connection.limit.as_deref())?;
    let mut plan: Vec<(Target, Vec<LogFile>)> = Vec::new();
    let mut store_var = None;
    for &h in &chosen {
        if store_var.is_none() {
            store_var = HostVars::new(&vars, &inv, h, &[]).optional("logs_store_dir")?;
        }
        let files = logs::files_of(&vars, &inv, h)?;
        if !files.is_empty() {
            plan.push((a.connection.target(&inv, &vars, h)?, files));
        }
    }
    if plan.is_empty() {
        return Err(Diagnostic::plain(format!("no host of `{}` has logs to collect", a.pattern))
            .with_hint("hosts of the groups `lb`, `app` and `db` have the shop's logs; others need `logs_files`, a mapping of log name to path")
            .into());
    }
    let store = a
        .store
        .clone()
        .or_else(|| store_var.map(PathBuf::from))
        .unwrap_or_else(logs::default_store);
    crate::private::dir(&store)
        .map_err(|e| Diagnostic::plain(format!("cannot create the log store {}: {e}", store.display())))?;
    let lock_path = store.join(".lock");
    let lock = crate::private::append(&lock_path)
        .map_err(|e| Diagnostic::plain(format!("cannot open {}: {e}", lock_path.display())))?;
    let options = a.connection.connect_options()?;
    let settings = a.output.settings(Layout::Steps);
    if let Err(e) = lock.try_lock() {
        let events = Events::start("logs collect", 0, &settings);
        let message = match e {
            std::fs::TryLockError::WouldBlock => format!(
                "another `tend logs collect` is writing to {}; nothing was collected",
                store.display()
            ),
            std::fs::TryLockError::Error(e) => format!("cannot lock {}: {e}", lock_path.display()),
        };
        events.error(crate::output::ErrorEvent::new(message));
        return Ok(events.finish(Default::default(), Code::Locked));
    }
    let (follow, interval) = (a.follow, Duration::from_secs(a.interval));
    block_on(async move {
        let events = Events::start("logs collect", plan.len(), &settings);
        let fleet = a.connection.fleet(options);
        let targets: Vec<Target> = plan.iter().map(|(t, _)| t.clone()).collect();
        let request = Request::survey("logs collect", a.connection.forks as usize, &targets);
        let code = ops::run(&events, &fleet, request, targets, async |s: &Session<'_>| {
            gather(s, &plan, &store, follow, interval).await
        })
        .await;
        drop(lock);
        code
    })
}

/// One collection of every host (or, with `follow`, one every `interval` until Ctrl-C).
async fn gather(
    s: &Session<'_>,
    plan: &[(Target, Vec<LogFile>)],
    store: &std::path::Path,
    follow: bool,
    interval: Duration,
) -> Outcome {
    let mut code = if plan.iter().any(|(t, _)| s.host(&t.name).is_none()) {
        Code::Unreachable
    } else {
        Code::Ok
    };
    let mut first = true;
    loop {
        let started = Instant::now();
        let results = s
            .each(plan, |(t, files)| async move {
                let Some(host) = s.host(&t.name) else {
                    return (t.name.clone(), None);
                };
                (t.name.clone(), Some(logs::collect(host, store, files, follow).await))
            })
            .await;
        for (host, result) in results {
            match result {
                None => {}
                Some(Err(logs::CollectError::Step(e))) => {
                    s.failed(&e);
                    code = code.max(Code::HostFailed);
                }
                Some(Err(logs::CollectError::Store(message))) => {
                    s.failed(&StepError::remote(
                        "localhost",
                        "logs",
                        crate::transport::Failure::message(message, "write to the log store"),
                    ));
                    code = code.max(Code::HostFailed);
                }
                Some(Ok(collected)) => report(s, &host, &collected, first, follow, started.elapsed()),
            }
        }
        first = false;
        if !follow || s.cancel.is_cancelled() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = s.cancel.cancelled() => break,
        }
    }
    Outcome { code, record: None }
}

fn report(s: &Session<'_>, host: &str, collected: &[logs::Collected], first: bool, follow: bool, took: Duration) {
    for c in collected {
        if follow {
            for line in &c.new_lines {
                s.events().emit(Event::Output {
                    host: host.to_string(),
                    stream: "stdout",
                    line: format!("[{}] {line}", c.log),
                });
            }
            // After the first round, only what changes is reported.
            if !first && c.lines == 0 && !c.lost {
                continue;
            }
        }
        if c.missing {
            s.step(StepEvent::new(
                host,
                &c.log,
                Status::Skipped,
                "no such file on the host",
            ));
            continue;
        }
        let mut message = format!("{} line(s), {} byte(s)", c.lines, c.bytes);
        if c.rotated > 0 {
            message.push_str(&format!(", {} rotated file(s) read", c.rotated));
        }
        let status = if c.lines > 0 { Status::Changed } else { Status::Ok };
        s.step(StepEvent::new(host, &c.log, status, message).took(took));
        if c.lost {
            s.events().warn(format!(
                "{host}: {}: the file was replaced and what it was could not be found among its rotations; lines written between the last collection and the rotation may be missing",
                c.log
            ));
        }
    }
}
