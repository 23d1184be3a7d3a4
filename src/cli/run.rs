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
///   tend run fleet-check.yaml --shard 2/4 --format json > shard2.jsonl
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
    /// Work on shard K of N of the hosts (for example 2/4): a host's shard comes from its name
    /// alone, so N control nodes running 1/N..N/N cover the fleet once; join their `--format
    /// json` output with `tend report merge`
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::inventory::Shard>,
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
    missing_modules_warning(&playbooks, &mut |w| eprintln!("warning: {w}"));
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

/// A host's target with its play's connection keywords where the inventory (or `-e`) says
/// nothing: `ansible_user`, `ansible_port`, `ansible_connection` beat them, as in Ansible.
fn play_target(mut t: Target, play: &playbook::PlayConnection, vars: &crate::settings::Vars) -> Target {
    let set = |names: &[&str]| names.iter().any(|n| vars.contains_key(*n));
    if play.connection.as_deref() == Some("local") && !set(&["ansible_connection"]) {
        t.kind = crate::transport::ConnectionKind::Local;
    }
    if let crate::transport::ConnectionKind::Ssh(ssh) = &mut t.kind {
        if let Some(u) = &play.remote_user
            && !set(&["ansible_user", "ansible_ssh_user"])
        {
            ssh.user = Some(u.clone());
        }
        if let Some(p) = play.port
            && !set(&["ansible_port", "ansible_ssh_port"])
        {
            ssh.port = Some(p);
        }
    }
    t
}

fn same_connection(a: &Target, b: &Target) -> bool {
    describe(a) == describe(b)
}

/// `user@address:port` or `local`.
fn describe(t: &Target) -> String {
    match &t.kind {
        crate::transport::ConnectionKind::Local => "local".into(),
        crate::transport::ConnectionKind::Ssh(s) => format!(
            "{}{}{}",
            s.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default(),
            s.address,
            s.port.map(|p| format!(":{p}")).unwrap_or_default()
        ),
    }
}

/// `vars_prompt`: a variable given with `-e` is not asked; else the terminal is asked (a
/// private answer not echoed); without a terminal the default is taken, and without a default
/// the run is refused (exit 4). Returns the private answers, which are secrets of the run.
fn ask_prompts(playbooks: &mut [Playbook], vars: &Variables) -> Result<Vec<String>, CliError> {
    let mut secrets = Vec::new();
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok();
    for play in playbooks.iter_mut().flat_map(|p| p.plays.iter_mut()) {
        for p in play.prompts.clone() {
            if vars.extra().contains_key(&p.name) {
                continue;
            }
            let value = if tty {
                ask(&p)?
            } else if let Some(d) = &p.default {
                d.clone()
            } else {
                let mut d = crate::diagnostic::Diagnostic::plain(format!(
                    "vars_prompt `{}` needs an answer and there is no terminal to ask",
                    p.name
                ));
                if let Some(span) = &p.span {
                    d = span.error(format!(
                        "vars_prompt `{}` needs an answer and there is no terminal to ask",
                        p.name
                    ));
                }
                return Err(d.with_hint(format!("give it with `-e {}=...`", p.name)).into());
            };
            if p.private && !value.is_empty() {
                secrets.push(value.clone());
            }
            play.vars.insert(p.name.clone(), serde_json::Value::String(value));
        }
    }
    Ok(secrets)
}

/// Asks one prompt on the terminal.
fn ask(p: &playbook::VarPrompt) -> Result<String, CliError> {
    use std::io::{BufRead as _, Write as _};
    let question = match &p.default {
        Some(d) if !p.private => format!("{} [{d}]: ", p.prompt),
        _ => format!("{}: ", p.prompt),
    };
    let read = |q: &str| -> Result<String, CliError> {
        if p.private {
            return rpassword::prompt_password(q)
                .map_err(|e| crate::diagnostic::Diagnostic::plain(format!("cannot read `{}`: {e}", p.name)).into());
        }
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map_err(|e| crate::diagnostic::Diagnostic::plain(format!("cannot ask `{}`: {e}", p.name)))?;
        let mut w = &tty;
        let _ = w.write_all(q.as_bytes()).and_then(|()| w.flush());
        let mut line = String::new();
        std::io::BufReader::new(&tty)
            .read_line(&mut line)
            .map_err(|e| crate::diagnostic::Diagnostic::plain(format!("cannot read `{}`: {e}", p.name)))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    let mut value = read(&question)?;
    if p.confirm {
        let again = read(&format!("confirm {}", question))?;
        if again != value {
            return Err(crate::diagnostic::Diagnostic::plain(format!("the answers for `{}` differ", p.name)).into());
        }
    }
    if value.is_empty()
        && let Some(d) = &p.default
    {
        value = d.clone();
    }
    Ok(value)
}

/// Tasks naming modules of Ansible tend lacks load (they are often for another system) and fail
/// if they run: said once, before the run.
fn missing_modules_warning(playbooks: &[Playbook], say: &mut dyn FnMut(String)) {
    let all: Vec<&String> = playbooks.iter().flat_map(|p| &p.missing_modules).collect();
    if all.is_empty() {
        return;
    }
    let list: Vec<String> = all.iter().map(|m| format!("  {m}")).collect();
    say(format!(
        "{} task{} name{} modules tend does not have; {} fail{} if {} run{}:\n{}",
        all.len(),
        plural(all.len()),
        if all.len() == 1 { "s" } else { "" },
        if all.len() == 1 { "it" } else { "they" },
        if all.len() == 1 { "s" } else { "" },
        if all.len() == 1 { "it" } else { "they" },
        if all.len() == 1 { "s" } else { "" },
        list.join("\n")
    ));
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Runs `tend run`.
pub fn run(args: RunArgs) -> Result<Code, CliError> {
    let engine = Engine::new();
    let (inv, vars) = args.inventory.load()?;
    let mut playbooks = load_all(&args.playbooks, &engine)?;
    let secrets = ask_prompts(&mut playbooks, &vars)?;
    let opts = RunOptions {
        check: args.check,
        diff: args.diff,
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        start_at_task: args.start_at_task.clone(),
        limit: args.connection.limit.clone(),
        become_flags: args.connection.become_flags()?,
    };
    // Host patterns, `--start-at-task` and every host's connection variables are checked
    // before anything connects.
    let mut plan = crate::executor::plan(&inv, &vars, &engine, &playbooks, opts.limit.as_deref())?;
    if let Some(shard) = args.shard {
        for hosts in &mut plan {
            hosts.retain(|&h| shard.holds(&inv.hosts[h].name));
        }
    }
    let skip = crate::executor::start_at(&playbooks, opts.start_at_task.as_deref())?;
    // One connection per host: a play's `remote_user`/`port`/`connection` choose it where the
    // inventory does not; two plays that would reach a host differently are refused.
    let mut targets: Vec<Option<(Target, String)>> = vec![None; inv.hosts.len()];
    let plays = playbooks.iter().flat_map(|p| &p.plays);
    for (play, hosts) in plays.zip(&plan) {
        for &h in hosts {
            let t = play_target(
                args.connection.target(&inv, &vars, h)?,
                &play.connection,
                &vars.merged(h),
            );
            match &targets[h] {
                Some((first, by)) if !same_connection(first, &t) => {
                    return Err(play
                        .span
                        .error(format!(
                            "play `{}` reaches {} otherwise than play `{by}` does ({} vs {})",
                            play.name,
                            inv.hosts[h].name,
                            describe(&t),
                            describe(first)
                        ))
                        .with_hint("tend keeps one connection per host: give the plays the same `remote_user`/`port`/`connection`, or set them in the inventory")
                        .into());
                }
                Some(_) => {}
                None => targets[h] = Some((t, play.name.clone())),
            }
        }
    }
    let targets: Vec<Option<Target>> = targets.into_iter().map(|t| t.map(|(t, _)| t)).collect();
    let options = args.connection.connect_options()?;
    let mut settings = args.output.settings(Layout::Tasks);
    settings.verbose = args.verbose;
    settings.diff = args.diff;
    block_on(async {
        let events = Events::start("run", 0, &settings);
        for s in &secrets {
            events.secret(s);
        }
        missing_modules_warning(&playbooks, &mut |w| events.warn(w));
        let fleet = args.connection.fleet(options);
        let mut exec = Executor::new(&inv, &vars, &engine, opts, &fleet, events);
        exec.set_targets(targets, skip);
        exec.run(&playbooks, plan).await
    })
}
