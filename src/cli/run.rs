//! `tend run` and `tend validate`: playbooks, checked whole before anything connects.

use super::CliError;
use super::common::{ConnectionOpts, InventoryOpts, raise_fd_limit, runtime};
use crate::diagnostic::Diagnostic;
use crate::executor::{Executor, Outcome, RunOptions};
use crate::exit::Code;
use crate::fleet::watch_interrupts;
use crate::output::Format;
use crate::output::monitor::{Audit, Human, JsonLines, Monitor, Tee};
use crate::playbook::{self, LoadOptions, Playbook, Task, TaskKind, Vars};
use crate::template::Engine;
use crate::transport::{Target, TargetOverrides};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    /// Extra variables, highest precedence: `k=v k2=v2`, JSON/YAML `{"k": 1}`, or `@file.yaml`;
    /// repeatable
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
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
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// More detail: per-host lines (-v), command output (-vv)
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Directory for the audit log [default: ~/.local/state/tend/runs]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
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
}

/// Parses `-e` values.
pub(super) fn extra_vars(values: &[String]) -> Result<Vars, Diagnostic> {
    let mut vars = Vars::new();
    for v in values {
        if let Some(file) = v.strip_prefix('@') {
            let (source, node) = crate::yaml::load_file(std::path::Path::new(file))?;
            match node.to_json() {
                serde_json::Value::Object(m) => vars.extend(m),
                serde_json::Value::Null => {}
                _ => {
                    return Err(source.error(node.line, node.column, "extra vars file must be a mapping"));
                }
            }
        } else if v.trim_start().starts_with('{') {
            let source = crate::diagnostic::Source::new("-e", v.as_str());
            let node = crate::yaml::parse(&source)?;
            if let serde_json::Value::Object(m) = node.to_json() {
                vars.extend(m);
            }
        } else {
            let words = shlex::split(v).ok_or_else(|| Diagnostic::plain(format!("-e `{v}`: unbalanced quotes")))?;
            for w in words {
                let (k, val) = w.split_once('=').ok_or_else(|| {
                    Diagnostic::plain(format!("-e `{w}` is not `key=value`"))
                        .with_hint("use `-e key=value`, `-e '{\"key\": 1}'` or `-e @file.yaml`")
                })?;
                if k.is_empty()
                    || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || k.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(Diagnostic::plain(format!(
                        "-e `{w}`: `{k}` is not a valid variable name"
                    )));
                }
                vars.insert(k.to_string(), serde_json::Value::String(val.to_string()));
            }
        }
    }
    Ok(vars)
}

fn load_all(paths: &[PathBuf], engine: &Engine) -> Result<Vec<Playbook>, CliError> {
    let options = LoadOptions { engine };
    paths
        .iter()
        .map(|p| playbook::load(p, &options).map_err(CliError::from))
        .collect()
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
    let extra = extra_vars(&args.extra_vars)?;
    let playbooks = load_all(&args.playbooks, &engine)?;
    if !args.inventory.is_empty() {
        let inv = crate::inventory::load(&args.inventory)?;
        let conn = ConnectionOpts {
            limit: None,
            forks: 1,
            become_: false,
            become_user: None,
            accept_new_host_keys: false,
            connect_timeout: 10,
        };
        let opts = RunOptions {
            extra_vars: extra,
            forks: 1,
            ..RunOptions::default()
        };
        let exec = Executor::new(
            &inv,
            &engine,
            opts,
            Arc::new(conn.connect_options()?),
            tokio_util::sync::CancellationToken::new(),
        );
        let plan = exec.plan(&playbooks)?;
        for hosts in &plan {
            for &h in hosts {
                Target::from_host(&inv.hosts[h], &TargetOverrides::default())?;
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

fn default_log_dir() -> PathBuf {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(state).join("tend/runs");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/state/tend/runs")
}

/// Runs `tend run`.
pub fn run(args: RunArgs) -> Result<Code, CliError> {
    let engine = Engine::new();
    let extra = extra_vars(&args.extra_vars)?;
    let inv = args.inventory.load()?;
    let playbooks = load_all(&args.playbooks, &engine)?;
    let overrides = TargetOverrides {
        escalate: args.connection.become_ || args.connection.become_user.is_some(),
        become_user: args.connection.become_user.clone(),
    };
    let connect = Arc::new(args.connection.connect_options()?);
    let opts = RunOptions {
        check: args.check,
        diff: args.diff,
        forks: args.connection.forks as usize,
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        start_at_task: args.start_at_task.clone(),
        limit: args.connection.limit.clone(),
        extra_vars: extra,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut exec = Executor::new(&inv, &engine, opts, connect, cancel.clone());
    // Host patterns, `--start-at-task` and every host's connection variables are checked
    // before anything connects.
    let plan = exec.plan(&playbooks)?;
    exec.start_at(&playbooks)?;
    let mut targets: Vec<Option<Target>> = vec![None; inv.hosts.len()];
    for &h in plan.iter().flatten() {
        if targets[h].is_none() {
            targets[h] = Some(Target::from_host(&inv.hosts[h], &overrides)?);
        }
    }
    exec.set_targets(targets);
    let run_id = format!(
        "{}-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
        std::process::id()
    );
    let mut monitors: Vec<Box<dyn Monitor>> = vec![match args.format {
        Format::Human => Box::new(Human::new(args.verbose, args.diff)),
        Format::Json => Box::new(JsonLines::new()),
    }];
    let log_dir = args.log_dir.clone().unwrap_or_else(default_log_dir);
    match Audit::open(&log_dir, &run_id) {
        Ok(audit) => monitors.push(Box::new(audit)),
        Err(e) => eprintln!("warning: audit log disabled: {e}"),
    }
    exec.set_monitor(Box::new(Tee(monitors)));
    raise_fd_limit();
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        watch_interrupts(cancel);
        exec.run(&playbooks, plan).await
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(match outcome {
        Outcome::Ok => Code::Ok,
        Outcome::Failed => Code::HostFailed,
        Outcome::Unreachable => Code::Unreachable,
        Outcome::Interrupted => Code::Interrupted,
    })
}
