//! `tend upload`: place one local file on many hosts, atomically and only where it differs.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::output::{Events, HostResult, Layout, Status};
use crate::transport::{Content, FileSpec, Host, UploadError, UploadOutcome, hash_file};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

/// Copy a local file to every host matching a pattern.
///
/// The remote checksum is compared first: an identical file is left alone (reported `ok`).
/// Otherwise the content streams from disk to a temporary file beside the destination (any
/// size, in constant memory), gets its mode and owner, its checksum is verified, and it is
/// renamed over the destination, so readers never see a partial file.
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
    #[command(flatten)]
    pub output: OutputOpts,
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
    let not_readable = |e: std::io::Error| Diagnostic::in_file(&args.src, format!("cannot read file to upload: {e}"));
    let meta = std::fs::metadata(&args.src).map_err(not_readable)?;
    if !meta.is_file() {
        return Err(Diagnostic::in_file(&args.src, "cannot upload: not a regular file").into());
    }
    let (inv, vars) = args.inventory.load()?;
    let targets = args.connection.targets(&inv, &vars, &args.pattern)?;
    let options = args.connection.connect_options()?;
    let settings = args.output.settings(Layout::Hosts);
    let task = format!("upload {}", args.dest);
    block_on(async move {
        let events = Events::start("upload", targets.len(), &settings);
        // Read once to hash it; each host then gets it streamed from disk.
        let hashed = match hash_file(&args.src).await {
            Ok(h) => h,
            Err(e) => {
                events.error(crate::output::ErrorEvent::new(format!(
                    "{}: cannot read file to upload: {e}",
                    args.src.display()
                )));
                return events.finish(Default::default(), Code::Internal);
            }
        };
        let fleet = args.connection.fleet(options);
        let src = Arc::new(args.src.clone());
        let (dest, mode, owner, group, check) = (
            Arc::new(args.dest.clone()),
            args.mode,
            args.owner.clone(),
            args.group.clone(),
            args.check,
        );
        let work = move |host: Host| {
            let (src, dest, owner, group, hashed) =
                (src.clone(), dest.clone(), owner.clone(), group.clone(), hashed.clone());
            async move {
                let spec = FileSpec {
                    mode,
                    owner: owner.as_deref(),
                    group: group.as_deref(),
                    ..FileSpec::new(&dest, Content::File { path: &src, hashed })
                };
                host.upload(&spec, check).await.map(|r| r.outcome)
            }
        };
        let report = move |r: Result<UploadOutcome, UploadError>| match r {
            Ok(outcome) => {
                let mut rep = HostResult::new("", Status::done(outcome.changed()));
                rep.msg = Some(format!("{}{:?}", if check { "would be " } else { "" }, outcome).to_lowercase());
                rep
            }
            Err(UploadError::Transport(e)) => crate::ops::adhoc::transport_result("", &e),
            Err(e @ UploadError::Remote { .. }) => {
                let mut rep = HostResult::failed("", e.to_string());
                if let UploadError::Remote { rc, .. } = &e {
                    rep.rc = Some(*rc);
                }
                rep
            }
        };
        crate::ops::adhoc::each(&events, &fleet, &task, targets, work, report).await
    })
}
