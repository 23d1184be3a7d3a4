//! `tend exec`: an ad-hoc command on many hosts at once.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, run_ad_hoc};
use crate::exit::Code;
use crate::fleet::{HostOutcome, HostResult};
use crate::output::{Format, HostReport, Status};
use crate::transport::{Connection, RemoteCommand, Target, TransportError, shell};
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

/// Run a shell command on every host matching a pattern
///
/// One word after `--` is run as a shell command line (pipes, `&&` and globs work); several words
/// are run exactly as given, each one quoted. Output is grouped by host as each host finishes,
/// followed by a summary line on stderr.
///
/// Examples:
///   tend exec all -- uptime
///   tend exec 'web:&prod:!web3' -- 'systemctl is-active nginx || journalctl -u nginx -n 20'
///   tend exec db --become --format json -- ls -l "/var/lib/my sql"
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExecArgs {
    /// Host pattern: `all`, a group, a host, `web*`, `a:b`, `a:&b`, `a:!b`, `~regex`, `group[0:2]`
    pub pattern: String,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    /// Kill the command on a host after this many seconds (it then counts as failed)
    #[arg(short = 't', long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Output format: `human` (grouped by host) or `json` (one object per host per line)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The command, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `tend exec`.
pub fn run(args: ExecArgs) -> Result<Code, CliError> {
    let inv = args.inventory.load()?;
    let targets = args.connection.targets(&inv, &args.pattern)?;
    let options = args.connection.connect_options()?;
    let script = match args.command.as_slice() {
        [one] => one.clone(),
        words => shell::join(words),
    };
    let timeout = args.timeout.map(Duration::from_secs);
    let work = move |conn: Arc<Connection>, target: Target| {
        let command = RemoteCommand {
            script: script.clone(),
            stdin: None,
            escalate: target.escalate.clone(),
            timeout,
        };
        async move { conn.run(&command).await }
    };
    run_ad_hoc(targets, options, args.connection.forks, args.format, work, report)
}

fn report(r: HostResult<Result<crate::transport::Output, TransportError>>) -> HostReport {
    match r.outcome {
        HostOutcome::Done(Ok(out)) => {
            let status = if out.success() { Status::Ok } else { Status::Failed };
            let mut rep = HostReport::new(&r.host, status, r.duration);
            rep.rc = out.rc;
            rep.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            rep.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.rc.is_none() {
                rep.error = Some("the command was killed by a signal".into());
            }
            rep
        }
        HostOutcome::Done(Err(e)) | HostOutcome::Unreachable(e) => error_report(&r.host, r.duration, &e),
        HostOutcome::NotStarted => HostReport::new(&r.host, Status::Interrupted, r.duration),
    }
}

/// A report for a host where the transport failed.
pub fn error_report(host: &str, duration: Duration, e: &TransportError) -> HostReport {
    let status = if e.is_unreachable() {
        Status::Unreachable
    } else {
        Status::Failed
    };
    let mut rep = HostReport::new(host, status, duration);
    rep.error = Some(e.to_string());
    rep.hint = e.hint().map(str::to_string);
    rep
}
