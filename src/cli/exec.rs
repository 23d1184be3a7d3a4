//! `tend exec`: an ad-hoc command on many hosts at once.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::exit::Code;
use crate::output::{Event, Events, HostResult, Layout, Status};
use crate::transport::{Input, Output, RemoteCommand, Sink, TransportError, shell};
use clap::Args;
use std::time::Duration;

/// Run a shell command on every host matching a pattern
///
/// One word after `--` is run as a shell command line (pipes, `&&` and globs work); several words
/// are run exactly as given, each one quoted. Output is grouped by host as each host finishes,
/// followed by a summary line on stderr; with `--stream`, each line of output is printed as it
/// comes, prefixed with its host. A command that is not found on a host is that host's failure
/// (exit code 127 and its stderr), not an unreachable host.
///
/// Examples:
///   tend exec all -- uptime
///   tend exec 'web:&prod:!web3' -- 'systemctl is-active nginx || journalctl -u nginx -n 20'
///   tend exec db --become --format json -- ls -l "/var/lib/my sql"
///   tend exec app --stream -- 'tail -n 100 -f /var/log/tomcat10/catalina.out'
///   tend exec all --shard 1/3 --format json -- df -h / > shard1.jsonl
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
    #[arg(allow_negative_numbers = true, short = 't', long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Print each line of the commands' standard output as it comes, prefixed with its host
    /// (JSON: one `output` event per line); stderr comes with each host's result
    #[arg(long)]
    pub stream: bool,
    /// Work on shard K of N of the matched hosts (for example 2/4), as `tend run --shard`
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::inventory::Shard>,
    #[command(flatten)]
    pub output: OutputOpts,
    /// The command, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `tend exec`.
pub fn run(args: ExecArgs) -> Result<Code, CliError> {
    let (inv, vars) = args.inventory.load()?;
    let mut targets = args.connection.targets(&inv, &vars, &args.pattern)?;
    if let Some(shard) = args.shard {
        targets.retain(|t| shard.holds(&t.name));
    }
    let options = args.connection.connect_options()?;
    let script = match args.command.as_slice() {
        [one] => one.clone(),
        words => shell::join(words),
    };
    let command = RemoteCommand::new(script.clone()).timeout(args.timeout.map(Duration::from_secs));
    let settings = args.output.settings(Layout::Hosts);
    let stream = args.stream;
    block_on(async move {
        let events = Events::start("exec", targets.len(), &settings);
        let fleet = args.connection.fleet(options);
        let lines = events.clone();
        let work = move |host: crate::transport::Host| {
            let (command, events) = (command.clone(), lines.clone());
            async move {
                if !stream {
                    return host.run(&command, Input::None).await;
                }
                let name = host.name().to_string();
                let mut each = |line: &[u8]| {
                    events.emit(Event::Output {
                        host: name.clone(),
                        stream: "stdout",
                        line: String::from_utf8_lossy(line).into_owned(),
                    })
                };
                host.stream(&command, Input::None, Sink::Lines(&mut each)).await
            }
        };
        crate::ops::adhoc::each(&events, &fleet, &script, targets, work, report).await
    })
}

fn report(result: Result<Output, TransportError>) -> HostResult {
    let out = match result {
        Ok(out) => out,
        Err(e) => return crate::ops::adhoc::transport_result("", &e),
    };
    let status = if out.success() { Status::Ok } else { Status::Failed };
    let mut r = HostResult::new("", status);
    r.rc = out.rc;
    r.stdout = Some(String::from_utf8_lossy(&out.stdout).into_owned());
    r.stderr = Some(String::from_utf8_lossy(&out.stderr).into_owned());
    if out.rc.is_none() {
        r.msg = Some("the command was killed by a signal".into());
    }
    r
}
