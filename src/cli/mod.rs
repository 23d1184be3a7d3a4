//! The command line: parse flags, run one command, turn its outcome into an exit code.
//! This is the edge where typed errors become messages.

mod backup;
mod check;
pub mod common;
mod deploy;
mod exec;
mod failover;
mod inventory;
mod loadtest;
mod logs;
mod migrate;
mod report;
mod restore;
mod run;
mod upload;
mod vault;

use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::inventory::PatternError;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run a shop's MariaDB + Nginx + Tomcat fleet over SSH.
///
/// Reads an Ansible-style YAML inventory and works on its hosts concurrently over one SSH
/// connection per host, with strict host-key checking.
///
/// Exit codes: 0 ok, 1 internal error, 2 a host failed, 3 a host was unreachable (none failed),
/// 4 invalid input (inventory, pattern, flags; nothing was run), 5 the target is locked by another
/// run (deploy, rollback, migrate, backup, restore, failover, logs collect; nothing was changed),
/// 6 and 7 `check` found a warning or a critical problem, 8 a `loadtest` threshold broke, 99
/// interrupted.
#[derive(Debug, Parser)]
#[command(name = "tend", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Commands without a doc comment here take their help from their arguments struct (a doc
/// comment on the variant would hide the struct's long help).
#[derive(Debug, Subcommand)]
enum Command {
    Exec(exec::ExecArgs),
    Upload(upload::UploadArgs),
    Run(run::RunArgs),
    Validate(run::ValidateArgs),
    Inventory(inventory::InventoryArgs),
    Deploy(deploy::DeployArgs),
    Rollback(deploy::RollbackArgs),
    Releases(deploy::ReleasesArgs),
    /// Show or break the lock that deploys and rollbacks take
    #[command(subcommand)]
    Lock(deploy::LockCommand),
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    Restore(restore::RestoreArgs),
    #[command(subcommand)]
    Replica(restore::ReplicaCommand),
    #[command(subcommand)]
    Failover(failover::FailoverCommand),
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    #[command(subcommand)]
    Report(report::ReportCommand),
    #[command(subcommand)]
    Logs(logs::LogsCommand),
    Check(check::CheckArgs),
    Loadtest(Box<loadtest::LoadtestArgs>),
    /// List the modules tend has, with their parameters
    Modules,
}

/// Why a command stopped before finishing its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: exit 4.
    #[error(transparent)]
    Input(#[from] Diagnostic),
    /// Bad host pattern: exit 4.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// Anything else: exit 1.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => Code::Ok,
                _ => Code::InvalidInput,
            }
            .exit_code();
        }
    };
    let result = match cli.command {
        Command::Exec(args) => exec::run(args),
        Command::Upload(args) => upload::run(args),
        Command::Run(args) => run::run(args),
        Command::Validate(args) => run::validate(args),
        Command::Inventory(args) => inventory::run(args),
        Command::Deploy(args) => deploy::deploy(args),
        Command::Rollback(args) => deploy::rollback(args),
        Command::Releases(args) => deploy::releases(args),
        Command::Lock(cmd) => deploy::lock_command(cmd),
        Command::Migrate(cmd) => migrate::run(cmd),
        Command::Backup(cmd) => backup::run(cmd),
        Command::Restore(args) => restore::run(args),
        Command::Replica(cmd) => restore::replica(cmd),
        Command::Failover(cmd) => failover::run(cmd),
        Command::Vault(cmd) => vault::run(cmd),
        Command::Report(cmd) => report::run(cmd),
        Command::Logs(cmd) => logs::run(cmd),
        Command::Check(args) => check::run(args),
        Command::Loadtest(args) => loadtest::run(*args),
        Command::Modules => Ok(list_modules()),
    };
    if std::env::var_os("TEND_STATS").is_some_and(|v| !v.is_empty() && v != "0") {
        print_stats();
    }
    match result {
        Ok(code) => code.exit_code(),
        Err(e) => {
            let code = match &e {
                CliError::Input(_) | CliError::Pattern(_) => Code::InvalidInput,
                CliError::Internal(_) => Code::Internal,
            };
            let style = crate::output::Style::stderr();
            let text = match &e {
                CliError::Internal(e) => format!("{e:#}"),
                other => other.to_string(),
            };
            // What a vault held never shows, in the last message either.
            let text = crate::vault::conceal(&text);
            eprintln!("{}: {text}", style.red("error"));
            code.exit_code()
        }
    }
}

/// `TEND_STATS=1`: one JSON line on stderr with the transport's counters and this process's
/// peak memory, for benchmarks and for seeing what a run cost.
fn print_stats() {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct we pass.
    let max_rss_kb = if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
        usage.ru_maxrss
    } else {
        0
    };
    let mut stats = serde_json::to_value(crate::transport::stats::snapshot()).unwrap_or_default();
    if let Some(map) = stats.as_object_mut() {
        map.insert("max_rss_kb".into(), max_rss_kb.into());
    }
    eprintln!("tend-stats: {stats}");
}

fn list_modules() -> Code {
    let mut names: Vec<&str> = crate::modules::names().collect();
    names.sort_unstable();
    for name in names {
        let Some(m) = crate::modules::lookup(name) else {
            continue;
        };
        let params: Vec<String> = m
            .params()
            .iter()
            .map(|p| {
                if p.required {
                    format!("{}*", p.name)
                } else {
                    p.name.to_string()
                }
            })
            .collect();
        let params = if m.open_params() {
            "any variable names".to_string()
        } else {
            params.join(" ")
        };
        common::print_out(&format!("{name:<14} {params}\n"));
    }
    Code::Ok
}
