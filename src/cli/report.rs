//! `tend report merge`: the JSON Lines of a job run in shards on several control nodes
//! (`--shard K/N`) joined into one recap with one exit code, for the pipeline step that waits
//! for all of them.

use super::CliError;
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::output::{Events, Format, HostCounts, Layout, OutputSettings};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reports made from what tend has recorded
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    Merge(MergeArgs),
}

/// Join the JSON Lines of a sharded job into one recap
///
/// Each FILE is the `--format json` output of one shard (`tend run|exec --shard K/N`). The
/// hosts' counts are put together in one recap; the exit code is the one a single run over all
/// the hosts would have had: 2 when a host failed, 3 when one was unreachable, 99 when a shard
/// was interrupted or its output has no recap (it did not finish). A host reported by two files
/// (overlapping shards) is an input error (4).
///
/// Examples:
///   tend report merge shard-*.jsonl
///   tend report merge --format json a.jsonl b.jsonl > fleet.jsonl
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MergeArgs {
    /// The shards' JSON Lines files
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format: `human` or `json` (JSON Lines on stdout)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// What one shard's file says.
struct ShardRecap {
    hosts: BTreeMap<String, HostCounts>,
    duration_ms: u64,
    exit_code: u8,
}

/// Runs `tend report ...`.
pub fn run(cmd: ReportCommand) -> Result<Code, CliError> {
    match cmd {
        ReportCommand::Merge(args) => merge(args),
    }
}

/// The last recap of `path`, or `None` when the shard's output has none.
fn read_recap(path: &Path) -> Result<Option<ShardRecap>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostic::plain(format!("{}: {e}", path.display())))?;
    let mut recap = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Diagnostic::plain(format!("{}:{}: not a JSON line of tend: {e}", path.display(), i + 1))
                .with_hint("give the `--format json` output of `tend run` or `tend exec`")
        })?;
        if v["event"] != "recap" {
            continue;
        }
        let hosts = serde_json::from_value(v["hosts"].clone()).map_err(|e| {
            Diagnostic::plain(format!(
                "{}:{}: a recap without host counts: {e}",
                path.display(),
                i + 1
            ))
        })?;
        recap = Some(ShardRecap {
            hosts,
            duration_ms: v["duration_ms"].as_u64().unwrap_or(0),
            exit_code: v["exit_code"].as_u64().map_or(1, |c| c.min(255) as u8),
        });
    }
    Ok(recap)
}

fn merge(args: MergeArgs) -> Result<Code, CliError> {
    let mut shards = Vec::new();
    for path in &args.files {
        shards.push((path, read_recap(path)?));
    }
    let mut hosts: BTreeMap<String, HostCounts> = BTreeMap::new();
    let mut from: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for (path, recap) in &shards {
        for (name, counts) in recap.iter().flat_map(|r| &r.hosts) {
            if let Some(first) = from.insert(name.clone(), path) {
                return Err(Diagnostic::plain(format!(
                    "host `{name}` is in {} and in {}: the shards overlap",
                    first.display(),
                    path.display()
                ))
                .with_hint("run every shard with the same N and each K once (--shard 1/N .. N/N)")
                .into());
            }
            hosts.insert(name.clone(), counts.clone());
        }
    }
    let settings = OutputSettings {
        format: args.format,
        layout: Layout::Hosts,
        verbose: 0,
        diff: false,
        log_dir: None,
    };
    let events = Events::start("report merge", hosts.len(), &settings);
    let mut interrupted = false;
    let mut worst_other: Option<u8> = None;
    for (path, recap) in &shards {
        match recap {
            None => {
                interrupted = true;
                events.warn(format!(
                    "{} has no recap: its shard did not finish (killed, or still running)",
                    path.display()
                ));
            }
            Some(r) => {
                events.note(format!(
                    "{}: {} hosts, exit {}",
                    path.display(),
                    r.hosts.len(),
                    r.exit_code
                ));
                interrupted |= r.exit_code == Code::Interrupted as u8;
                // A shard that ended for another reason than its hosts (bad input, a lock,
                // an internal error) decides the code, as it would have ended a single run.
                if matches!(r.exit_code, 1 | 4 | 5) {
                    worst_other = worst_other.max(Some(r.exit_code));
                }
            }
        }
    }
    let code = match worst_other {
        _ if interrupted => Code::Interrupted,
        Some(4) => Code::InvalidInput,
        Some(5) => Code::Locked,
        Some(_) => Code::Internal,
        None => Code::of(
            hosts.values().any(|c| c.failed > 0),
            hosts.values().any(|c| c.unreachable > 0),
            false,
        ),
    };
    let longest = shards
        .iter()
        .filter_map(|(_, r)| r.as_ref().map(|r| r.duration_ms))
        .max()
        .unwrap_or(0);
    Ok(events.finish_after(hosts, code, longest))
}
