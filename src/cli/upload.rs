//! `tend upload`: place one local file on many hosts, atomically and only where it differs.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, run_ad_hoc};
use super::exec::error_report;
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::fleet::{HostOutcome, HostResult};
use crate::output::{Format, HostReport, Status};
use crate::transport::{Connection, FileSpec, Target, UploadError, UploadOutcome};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

/// Copy a local file to every host matching a pattern.
///
/// The remote checksum is compared first: an identical file is left alone (reported `ok`).
/// Otherwise the content goes to a temporary file beside the destination, gets its mode and
/// owner, and is renamed over the destination, so readers never see a partial file.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Host pattern (as for `tend exec`)
    pub pattern: String,
    /// Local file to send
    pub src: PathBuf,
    /// Absolute destination path on the hosts
    pub dest: String,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    /// Permission bits in octal, e.g. 0644 [default: 0644 for a new file, unchanged otherwise]
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<u32>,
    /// Owner of the file (name or id)
    #[arg(long)]
    pub owner: Option<String>,
    /// Group of the file (name or id)
    #[arg(long)]
    pub group: Option<String>,
    /// Only report what would change
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|&m| m <= 0o7777)
        .ok_or_else(|| format!("`{s}` is not an octal mode such as 0644"))
}

/// Runs `tend upload`.
pub fn run(args: UploadArgs) -> Result<Code, CliError> {
    if !args.dest.starts_with('/') {
        return Err(Diagnostic::plain(format!("destination `{}` must be an absolute path", args.dest)).into());
    }
    let content = std::fs::read(&args.src)
        .map_err(|e| Diagnostic::in_file(&args.src, format!("cannot read file to upload: {e}")))?;
    let inv = args.inventory.load()?;
    let targets = args.connection.targets(&inv, &args.pattern)?;
    let options = args.connection.connect_options()?;
    let content = Arc::new(content);
    let (dest, mode, owner, group, check) = (
        args.dest.clone(),
        args.mode,
        args.owner.clone(),
        args.group.clone(),
        args.check,
    );
    let work = move |conn: Arc<Connection>, target: Target| {
        let (content, dest, owner, group) = (content.clone(), dest.clone(), owner.clone(), group.clone());
        async move {
            let spec = FileSpec {
                mode,
                owner: owner.as_deref(),
                group: group.as_deref(),
                ..FileSpec::new(&dest, &content)
            };
            conn.upload(&spec, target.escalate.as_ref(), check)
                .await
                .map(|r| r.outcome)
        }
    };
    let report = move |r: HostResult<Result<UploadOutcome, UploadError>>| match r.outcome {
        HostOutcome::Done(Ok(outcome)) => {
            let status = if outcome.changed() { Status::Changed } else { Status::Ok };
            let mut rep = HostReport::new(&r.host, status, r.duration);
            rep.stdout = format!("{}{:?}\n", if check { "would be " } else { "" }, outcome).to_lowercase();
            rep
        }
        HostOutcome::Done(Err(UploadError::Transport(e))) | HostOutcome::Unreachable(e) => {
            error_report(&r.host, r.duration, &e)
        }
        HostOutcome::Done(Err(e @ UploadError::Remote { .. })) => {
            let mut rep = HostReport::new(&r.host, Status::Failed, r.duration);
            if let UploadError::Remote { rc, .. } = &e {
                rep.rc = Some(*rc);
            }
            rep.error = Some(e.to_string());
            rep
        }
        HostOutcome::NotStarted => HostReport::new(&r.host, Status::Interrupted, r.duration),
    };
    run_ad_hoc(targets, options, args.connection.forks, args.format, work, report)
}
