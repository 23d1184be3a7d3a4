//! Playbooks in Ansible's language: plays, tasks, blocks, roles, handlers, includes. Everything
//! is loaded and checked (modules, parameters, templates, handlers, files) before any host is
//! contacted; the executor only ever sees a valid [`Playbook`].

mod load;
pub(crate) mod words;
/// Ansible's `k=v` argument strings, public for the fuzz tests.
pub use words::parse_kv;

pub use load::{LoadOptions, load};

/// Loads playbooks in order and numbers every task of them ([`Task::id`]).
pub fn load_all(paths: &[PathBuf], options: &LoadOptions<'_>) -> Result<Vec<Playbook>, crate::diagnostic::Diagnostic> {
    let mut playbooks = paths.iter().map(|p| load(p, options)).collect::<Result<Vec<_>, _>>()?;
    fn number(tasks: &mut [Task], next: &mut usize) {
        for t in tasks {
            t.id = *next;
            *next += 1;
            match &mut t.kind {
                TaskKind::Block { block, rescue, always } => {
                    number(block, next);
                    number(rescue, next);
                    number(always, next);
                }
                TaskKind::Include { tasks, .. } => number(tasks, next),
                TaskKind::Module { .. } | TaskKind::Meta(_) => {}
            }
        }
    }
    let mut next = 0;
    for play in playbooks.iter_mut().flat_map(|p| &mut p.plays) {
        for section in &mut play.sections {
            number(section, &mut next);
        }
        number(&mut play.handlers, &mut next);
    }
    Ok(playbooks)
}

use crate::diagnostic::Span;
use crate::modules::Module;
use serde_json::{Map, Value as Json};
use std::path::PathBuf;

/// Variables as written (templates rendered later, per host).
pub type Vars = Map<String, Json>;

/// A loaded, validated playbook file.
#[derive(Debug)]
pub struct Playbook {
    /// The file.
    pub path: PathBuf,
    /// Its plays in order.
    pub plays: Vec<Play>,
    /// Tasks that name modules of Ansible tend lacks (`file:line: module (collection)`): they
    /// load, and fail if they run.
    pub missing_modules: Vec<String>,
}

/// How many hosts a batch holds (`serial`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Serial {
    /// A number of hosts.
    Count(usize),
    /// A percentage of the play's hosts (at least one).
    Percent(f64),
}

/// Task ordering across hosts (`strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Every host finishes a task before any host starts the next.
    #[default]
    Linear,
    /// Each host runs its tasks as fast as it can.
    Free,
}

/// One play.
#[derive(Debug)]
pub struct Play {
    /// `name`, or the host pattern.
    pub name: String,
    /// `hosts` pattern (may be a template of extra vars).
    pub hosts: String,
    /// Where the play starts.
    pub span: Span,
    /// Role defaults (lowest precedence of the play's variables).
    pub role_defaults: Vars,
    /// `vars`, then `vars_files` over them.
    pub vars: Vars,
    /// Role `vars/` (above play vars).
    pub role_vars: Vars,
    /// `gather_facts` (default true).
    pub gather_facts: bool,
    /// `gather_subset` (empty: all), as Ansible's names (`min`, `!hardware`, `network`).
    pub gather_subset: Vec<String>,
    /// `serial` batch sizes; the last one repeats.
    pub serial: Vec<Serial>,
    /// `max_fail_percentage`.
    pub max_fail_percentage: Option<f64>,
    /// `any_errors_fatal`.
    pub any_errors_fatal: bool,
    /// `strategy`.
    pub strategy: Strategy,
    /// `pre_tasks`, roles + `tasks`, `post_tasks`: handlers are flushed after each section.
    pub sections: Vec<Vec<Task>>,
    /// `handlers` (play and roles).
    pub handlers: Vec<Task>,
    /// `remote_user`, `port`, `connection`: how the play's hosts are reached when the inventory
    /// does not say (`ansible_user`, `ansible_port`, `ansible_connection` beat them, as in
    /// Ansible).
    pub connection: PlayConnection,
    /// `vars_prompt`: asked before the run (on a terminal), else taken from `-e` or the
    /// default.
    pub prompts: Vec<VarPrompt>,
}

/// One `vars_prompt` entry.
#[derive(Debug, Clone, Default)]
pub struct VarPrompt {
    /// The variable.
    pub name: String,
    /// The question (default: the name).
    pub prompt: String,
    /// Used when nobody answers (no terminal) or the answer is empty.
    pub default: Option<String>,
    /// Not echoed, and a secret of the run (default true, as in Ansible).
    pub private: bool,
    /// Asked twice.
    pub confirm: bool,
    /// Where it was written.
    pub span: Option<Span>,
}

/// A play's connection keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayConnection {
    /// `remote_user`.
    pub remote_user: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `connection` (`ssh` or `local`).
    pub connection: Option<String>,
}

/// A task, a block, an include or a meta action, with the keywords that apply to it.
#[derive(Debug, Clone)]
pub struct Task {
    /// Its position among every task of the run ([`load_all`] numbers them, depth first), so
    /// the executor can name a task without its name (`--start-at-task` skips by it).
    pub id: usize,
    /// `name`.
    pub name: Option<String>,
    /// Where it was written.
    pub span: Span,
    /// What it is.
    pub kind: TaskKind,
    /// Keywords (`when`, `loop`, `register`, ...), with those of enclosing blocks folded in.
    pub opts: TaskOpts,
}

/// What a task does.
#[derive(Clone)]
pub enum TaskKind {
    /// Run a module.
    Module {
        /// The module.
        module: &'static dyn Module,
        /// Its arguments as written.
        args: Vars,
    },
    /// `block`, with `rescue` and `always`.
    Block {
        /// The tasks tried.
        block: Vec<Task>,
        /// Run on hosts where a `block` task failed.
        rescue: Vec<Task>,
        /// Run in any case.
        always: Vec<Task>,
    },
    /// `include_tasks`: its `when` and `loop` apply to the include as a whole.
    Include {
        /// The included file (for a templated path, the directory it is resolved in).
        file: PathBuf,
        /// Its tasks (for a templated path, those of every file it can name, one after the
        /// other, so every check sees them all).
        tasks: Vec<Task>,
        /// A templated path (`setup-{{ ansible_os_family }}.yml`), rendered per host as the
        /// include runs.
        template: Option<String>,
        /// For a templated path: each file it can name and its tasks' range in `tasks`.
        choices: Vec<(PathBuf, std::ops::Range<usize>)>,
    },
    /// `meta`.
    Meta(Meta),
}

impl std::fmt::Debug for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskKind::Module { module, args } => write!(f, "Module({}, {args:?})", module.name()),
            TaskKind::Block { block, rescue, always } => write!(f, "Block({block:?}, {rescue:?}, {always:?})"),
            TaskKind::Include { file, tasks, .. } => {
                write!(f, "Include({}, {tasks:?})", file.display())
            }
            TaskKind::Meta(m) => write!(f, "Meta({m:?})"),
        }
    }
}

/// `meta` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// Run notified handlers now.
    FlushHandlers,
    /// Stop the play for all hosts.
    EndPlay,
    /// Stop the play for this host.
    EndHost,
    /// Do nothing.
    Noop,
}

/// How a loop's value becomes its items: `loop` takes a list as it is; each `with_<lookup>`
/// computes them as Ansible's lookup plugin of that name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoopKind {
    /// `loop`, `with_list`.
    #[default]
    List,
    /// `with_items`: nested lists flattened one level.
    Items,
    /// `with_flattened`: flattened all the way.
    Flattened,
    /// `with_indexed_items`: `[index, item]`.
    IndexedItems,
    /// `with_dict`: `{key, value}` per entry.
    Dict,
    /// `with_nested`: every combination.
    Nested,
    /// `with_together`: the lists side by side.
    Together,
    /// `with_subelements`: `[element, one of its sub-list's items]`.
    Subelements,
    /// `with_sequence`: numbers from a `start=... end=... format=...` spec.
    Sequence,
    /// `with_fileglob`: control-node files.
    Fileglob,
    /// `with_first_found`: the first file that exists.
    FirstFound,
}

impl LoopKind {
    /// The kind of a `with_<lookup>` keyword (or `loop`).
    pub fn of_keyword(key: &str) -> Option<Self> {
        Some(match key {
            "loop" | "with_list" => Self::List,
            "with_items" => Self::Items,
            "with_flattened" => Self::Flattened,
            "with_indexed_items" => Self::IndexedItems,
            "with_dict" => Self::Dict,
            "with_nested" | "with_cartesian" => Self::Nested,
            "with_together" => Self::Together,
            "with_subelements" => Self::Subelements,
            "with_sequence" => Self::Sequence,
            "with_fileglob" => Self::Fileglob,
            "with_first_found" => Self::FirstFound,
            _ => return None,
        })
    }
}

/// A keyword whose boolean may be a template, decided per host when the task runs
/// (`no_log: "{{ hide }}"`, `ignore_errors: "{{ ansible_check_mode }}"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `no_log`.
    NoLog,
    /// `ignore_errors`.
    IgnoreErrors,
    /// `ignore_unreachable`.
    IgnoreUnreachable,
    /// `check_mode`.
    CheckMode,
    /// `become`.
    Become,
}

impl TaskOpts {
    /// Sets `flag` to a literal value.
    pub fn set_flag(&mut self, flag: Flag, value: bool) {
        let slot = match flag {
            Flag::NoLog => &mut self.no_log,
            Flag::IgnoreErrors => &mut self.ignore_errors,
            Flag::IgnoreUnreachable => &mut self.ignore_unreachable,
            Flag::CheckMode => &mut self.check_mode,
            Flag::Become => &mut self.escalate,
        };
        *slot = Some(value);
        self.flag_templates.retain(|(f, _)| *f != flag);
    }

    /// Whether `flag` has a literal value here.
    fn has_flag(&self, flag: Flag) -> bool {
        match flag {
            Flag::NoLog => self.no_log.is_some(),
            Flag::IgnoreErrors => self.ignore_errors.is_some(),
            Flag::IgnoreUnreachable => self.ignore_unreachable.is_some(),
            Flag::CheckMode => self.check_mode.is_some(),
            Flag::Become => self.escalate.is_some(),
        }
    }
}

/// Task keywords.
#[derive(Debug, Clone, Default)]
pub struct TaskOpts {
    /// `when`: all must hold.
    pub when: Vec<String>,
    /// `loop` / `with_<lookup>` (a value or a template of one).
    pub loop_items: Option<Json>,
    /// How the loop's value becomes its items.
    pub loop_kind: LoopKind,
    /// `loop_control.loop_var` (default `item`).
    pub loop_var: Option<String>,
    /// `loop_control.index_var`.
    pub index_var: Option<String>,
    /// `loop_control.label`.
    pub label: Option<String>,
    /// `register`.
    pub register: Option<String>,
    /// `notify`.
    pub notify: Vec<String>,
    /// `changed_when`.
    pub changed_when: Option<Vec<String>>,
    /// `failed_when`.
    pub failed_when: Option<Vec<String>>,
    /// `ignore_errors`.
    pub ignore_errors: Option<bool>,
    /// `ignore_unreachable`.
    pub ignore_unreachable: Option<bool>,
    /// `until`.
    pub until: Option<Vec<String>>,
    /// `retries` (default 3 with `until`).
    pub retries: Option<u32>,
    /// `delay` in seconds (default 5).
    pub delay: Option<f64>,
    /// `become`.
    pub escalate: Option<bool>,
    /// `become_user`.
    pub become_user: Option<String>,
    /// `delegate_to` (`local_action` and `connection: local` on a task mean `localhost`).
    pub delegate_to: Option<String>,
    /// `remote_user` of a block or task: the connection's user must be it (tend keeps one
    /// connection per host; the play's `remote_user` chooses it).
    pub remote_user: Option<String>,
    /// `run_once`.
    pub run_once: Option<bool>,
    /// `no_log`.
    pub no_log: Option<bool>,
    /// Boolean keywords written as templates, decided per host when the task runs.
    pub flag_templates: Vec<(Flag, String)>,
    /// The defaults and vars of the `include_role` this task came from: private to its tasks
    /// (defaults below the inventory, vars above the play's), as in Ansible.
    pub scoped_role: Option<std::sync::Arc<(Vars, Vars)>>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `timeout` in seconds.
    pub timeout: Option<u64>,
    /// `vars`.
    pub vars: Vars,
    /// `environment`.
    pub environment: Vars,
    /// `check_mode`.
    pub check_mode: Option<bool>,
    /// `listen` (handlers).
    pub listen: Vec<String>,
    /// Where `src:` files are looked up: the role, then the playbook's directory.
    pub search_paths: Vec<PathBuf>,
}

impl TaskOpts {
    /// Folds the keywords of an enclosing block, import or role into this task's.
    pub fn inherit(&mut self, parent: &TaskOpts, with_when: bool) {
        if with_when {
            let mut when = parent.when.clone();
            when.append(&mut self.when);
            self.when = when;
        }
        let mut vars = parent.vars.clone();
        vars.extend(std::mem::take(&mut self.vars));
        self.vars = vars;
        let mut env = parent.environment.clone();
        env.extend(std::mem::take(&mut self.environment));
        self.environment = env;
        for t in &parent.tags {
            if !self.tags.contains(t) {
                self.tags.push(t.clone());
            }
        }
        self.ignore_errors = self.ignore_errors.or(parent.ignore_errors);
        self.ignore_unreachable = self.ignore_unreachable.or(parent.ignore_unreachable);
        self.escalate = self.escalate.or(parent.escalate);
        self.become_user = self.become_user.clone().or_else(|| parent.become_user.clone());
        self.delegate_to = self.delegate_to.clone().or_else(|| parent.delegate_to.clone());
        self.remote_user = self.remote_user.clone().or_else(|| parent.remote_user.clone());
        if self.scoped_role.is_none() {
            self.scoped_role = parent.scoped_role.clone();
        }
        self.run_once = self.run_once.or(parent.run_once);
        self.no_log = self.no_log.or(parent.no_log);
        for (flag, template) in &parent.flag_templates {
            if !self.has_flag(*flag) && !self.flag_templates.iter().any(|(f, _)| f == flag) {
                self.flag_templates.push((*flag, template.clone()));
            }
        }
        self.timeout = self.timeout.or(parent.timeout);
        self.check_mode = self.check_mode.or(parent.check_mode);
        if self.search_paths.is_empty() {
            self.search_paths = parent.search_paths.clone();
        }
    }
}

impl Task {
    /// `name`, or `module` for unnamed tasks (as Ansible shows them).
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        match &self.kind {
            TaskKind::Module { module, .. } => module.name().to_string(),
            TaskKind::Block { .. } => "block".into(),
            TaskKind::Include { file, template, .. } => match template {
                Some(t) => format!("include_tasks {t}"),
                None => format!("include_tasks {}", file.display()),
            },
            TaskKind::Meta(m) => format!("meta: {m:?}"),
        }
    }
}
