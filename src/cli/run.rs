//! `tend run` and `tend validate`: playbooks, checked whole before anything connects.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, OutputOpts, block_on};
use crate::executor::{Executor, RunOptions};
use crate::exit::Code;
use crate::output::{Events, Layout};
use crate::playbook::{self, LoadOptions, Playbook, Task, TaskKind};
use crate::settings::Variables;
use crate::template::Engine;
use crate::transport::Target;
use clap::Args;
use std::path::PathBuf;

/// Run playbooks against the inventory
///
/// Every playbook, role, template and variable file is loaded and checked first; nothing
/// connects to a host until all of it is valid. Human output goes to stderr (a progress bar on a
/// terminal), `--format json` prints JSON Lines on stdout (see docs/json-output.md). Every run
/// appends one JSON line per host and task to an audit log.
///
/// Examples:
///   tend run playbooks/site.yaml -i inventory.yaml
///   tend run site.yaml --limit 'app:!app2' --check --diff
///   tend run deploy.yaml -e release=42 -e @vars/prod.yaml --tags config
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    /// Playbook files, run in order
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    #[command(flatten)]
    pub connection: ConnectionOpts,
    /// Only run tasks with these tags (comma-separated; repeatable)
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Change nothing: report what would change
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show file differences
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Start at the task with this name (resume an interrupted run)
    #[arg(long, value_name = "NAME")]
    pub start_at_task: Option<String>,
    #[command(flatten)]
    pub output: OutputOpts,
    /// More detail: per-host lines (-v), command output (-vv)
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Check playbooks without connecting to any host.
///
/// Loads every playbook with its roles, imports, templates and variable files, and checks
/// modules, parameters, template syntax, handlers and (with an inventory) host patterns.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Playbook files
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Inventory to check host patterns against (optional)
    #[arg(short = 'i', long = "inventory", value_name = "FILE|DIR", env = "TEND_INVENTORY")]
    pub inventory: Vec<PathBuf>,
    /// Extra variables, as for `tend run`
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    #[command(flatten)]
    pub vault: super::vault::VaultOpts,
}

fn load_all(paths: &[PathBuf], engine: &Engine) -> Result<Vec<Playbook>, CliError> {
    Ok(playbook::load_all(paths, &LoadOptions { engine })?)
}

fn count_tasks(tasks: &[Task]) -> usize {
    tasks
        .iter()
        .map(|t| match &t.kind {
            TaskKind::Block { block, rescue, always } => count_tasks(block) + count_tasks(rescue) + count_tasks(always),
            TaskKind::Include { tasks, .. } => count_tasks(tasks),
            _ => 1,
        })
        .sum()
}

/// Runs `tend validate`.
pub fn validate(args: ValidateArgs) -> Result<Code, CliError> {
    let engine = Engine::new();
    args.vault.install()?;
    let extra = crate::settings::extra_vars(&args.extra_vars)?;
    let playbooks = load_all(&args.playbooks, &engine)?;
    if !args.inventory.is_empty() {
        let inv = crate::inventory::load(&args.inventory)?;
        let vars = Variables::new(&inv, extra);
        let plan = crate::executor::plan(&inv, &vars, &engine, &playbooks, None)?;
        for hosts in &plan {
            for &h in hosts {
                Target::new(&vars, h, &inv.hosts[h].name, &Default::default())?;
            }
        }
    }
    let plays: usize = playbooks.iter().map(|p| p.plays.len()).sum();
    let tasks: usize = playbooks
        .iter()
        .flat_map(|p| &p.plays)
        .map(|p| p.sections.iter().map(|s| count_tasks(s)).sum::<usize>() + count_tasks(&p.handlers))
        .sum();
    eprintln!(
        "ok: {} playbook{}, {plays} play{}, {tasks} tasks and handlers",
        playbooks.len(),
        plural(playbooks.len()),
        plural(plays)
    );
    Ok(Code::Ok)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Runs `tend run`.
pub fn run(args: RunArgs) -> Result<Code, CliError> {
    let engine = Engine::new();
    let (inv, vars) = args.inventory.load()?;
    let playbooks = load_all(&args.playbooks, &engine)?;
    let opts = RunOptions {
        check: args.check,
        diff: args.diff,
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        start_at_task: args.start_at_task.clone(),
        limit: args.connection.limit.clone(),
        become_flags: args.connection.become_flags(),
    };
    // Host patterns, `--start-at-task` and every host's connection variables are checked
    // before anything connects.
    let plan = crate::executor::plan(&inv, &vars, &engine, &playbooks, opts.limit.as_deref())?;
    let skip = crate::executor::start_at(&playbooks, opts.start_at_task.as_deref())?;
    let mut targets: Vec<Option<Target>> = vec![None; inv.hosts.len()];
    for &h in plan.iter().flatten() {
        if targets[h].is_none() {
            targets[h] = Some(args.connection.target(&inv, &vars, h)?);
        }
    }
    let options = args.connection.connect_options()?;
    let mut settings = args.output.settings(Layout::Tasks);
    settings.verbose = args.verbose;
    settings.diff = args.diff;
    block_on(async {
        let events = Events::start("run", 0, &settings);
        let fleet = args.connection.fleet(options);
        let mut exec = Executor::new(&inv, &vars, &engine, opts, &fleet, events);
        exec.set_targets(targets, skip);
        exec.run(&playbooks, plan).await
    })
}
