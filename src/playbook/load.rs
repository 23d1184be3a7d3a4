//! From YAML to a checked [`Playbook`]: keywords, modules and their parameters, templates,
//! roles, imports and includes, handlers. The first problem found is returned with its location.

use super::words::parse_kv;
use super::{Flag, Meta, Play, PlayConnection, Playbook, Serial, Strategy, Task, TaskKind, TaskOpts, VarPrompt, Vars};
use crate::diagnostic::{Diagnostic, Source, Span, did_you_mean};
use crate::modules::{self, check_literal_args};
use crate::template::Engine;
use crate::yaml::{self, Node, Value, entries, items, number, text};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// What loading needs besides the files.
pub struct LoadOptions<'a> {
    /// Used to check template syntax.
    pub engine: &'a Engine,
}

const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "remote_user",
    "port",
    "connection",
    "vars_prompt",
    "vars",
    "vars_files",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "fact_path",
    "become",
    "become_user",
    "become_method",
    "serial",
    "max_fail_percentage",
    "any_errors_fatal",
    "strategy",
    "tasks",
    "handlers",
    "pre_tasks",
    "post_tasks",
    "roles",
    "tags",
    "environment",
    "ignore_errors",
    "ignore_unreachable",
    "no_log",
    "check_mode",
    "timeout",
];

const TASK_KEYS: &[&str] = &[
    "name",
    "when",
    "loop",
    "with_items",
    "with_list",
    "with_flattened",
    "with_indexed_items",
    "with_dict",
    "with_nested",
    "with_cartesian",
    "with_together",
    "with_subelements",
    "with_sequence",
    "with_fileglob",
    "with_first_found",
    "loop_control",
    "register",
    "notify",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "until",
    "retries",
    "delay",
    "become",
    "become_user",
    "become_method",
    "delegate_to",
    "local_action",
    "remote_user",
    "connection",
    "run_once",
    "no_log",
    "tags",
    "timeout",
    "vars",
    "environment",
    "check_mode",
    "listen",
    "args",
    "block",
    "rescue",
    "always",
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "meta",
];

/// Ansible's task keywords tend has not, with what to do instead.
const UNSUPPORTED_TASK_KEYS: &[(&str, &str)] = &[
    (
        "async",
        "tend waits for every task; give a long one `timeout:`, or detach it with `shell: nohup CMD &`",
    ),
    (
        "poll",
        "tend waits for every task; give a long one `timeout:`, or detach it with `shell: nohup CMD &`",
    ),
    (
        "throttle",
        "limit how many hosts work at once with the play's `serial:` or `--forks`",
    ),
    ("debugger", "run with `-v` to see each result"),
    ("module_defaults", "write the parameters on each task"),
    (
        "collections",
        "name modules by their short name or their full `namespace.collection.module` name",
    ),
    (
        "any_errors_fatal",
        "set `any_errors_fatal` or `max_fail_percentage` on the play",
    ),
];

/// Loads and checks a playbook file (and everything it imports).
pub fn load(path: &Path, options: &LoadOptions<'_>) -> Result<Playbook, Diagnostic> {
    let mut loader = Loader {
        engine: options.engine,
        stack: Vec::new(),
        from_tasks: RoleExtras::default(),
        roles_seen: Vec::new(),
        missing: Vec::new(),
    };
    let plays = loader.playbook(path)?;
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
        missing_modules: std::mem::take(&mut loader.missing),
    })
}

struct Loader<'a> {
    engine: &'a Engine,
    /// Files being loaded (canonical path, path as written), to refuse cyclic imports.
    stack: Vec<(PathBuf, PathBuf)>,
    /// What `import_role`/`include_role` tasks of the play being loaded bring besides their
    /// tasks: role defaults, role vars and handlers, which belong to the play.
    from_tasks: RoleExtras,
    /// Tasks naming modules of Ansible tend lacks, for `validate` to list.
    missing: Vec<String>,
    /// Roles of the play loaded so far (name and parameters): a dependency runs once per play
    /// unless its parameters differ or it allows duplicates, as in Ansible.
    roles_seen: Vec<String>,
}

/// Role defaults, vars and handlers a task-level role import adds to its play.
#[derive(Default)]
struct RoleExtras {
    defaults: Vars,
    vars: Vars,
    handlers: Vec<Task>,
}

/// The place tasks are loaded from: the file, where relative paths start, where `src:` is found.
#[derive(Clone)]
struct Place {
    source: Source,
    dir: PathBuf,
    search_paths: Vec<PathBuf>,
}

fn boolean(node: &Node, source: &Source, what: &str) -> Result<bool, Diagnostic> {
    match &node.value {
        Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) => crate::settings::boolean(&node.to_json())
            .ok_or_else(|| {
                let found = node.scalar_text().unwrap_or_default();
                source
                    .error(
                        node.line,
                        node.column,
                        format!("{what} must be a boolean, found `{found}`"),
                    )
                    .with_hint("write yes/no or true/false; templated values are not supported for this keyword")
            }),
        _ => Err(source.error(
            node.line,
            node.column,
            format!("{what} must be a boolean, found {}", node.kind()),
        )),
    }
}

/// A boolean keyword that may be a template (decided per host when the task runs).
fn flag(opts: &mut TaskOpts, which: Flag, node: &Node, source: &Source, what: &str) -> Result<(), Diagnostic> {
    if let Value::Str(s) = &node.value
        && crate::template::is_template(s)
    {
        let t = s.trim();
        // `{{ x }}` is the condition `x`, as `when` writes it.
        let condition = t
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .filter(|inner| !inner.contains("{{"))
            .map_or_else(|| t.to_string(), |inner| inner.trim().to_string());
        opts.flag_templates.retain(|(f, _)| *f != which);
        opts.flag_templates.push((which, condition));
        return Ok(());
    }
    opts.set_flag(which, boolean(node, source, what)?);
    Ok(())
}

/// A string or a list of strings (`tags: a,b` splits on commas when `split_commas`).
fn strings(node: &Node, source: &Source, what: &str, split_commas: bool) -> Result<Vec<String>, Diagnostic> {
    match &node.value {
        Value::Seq(list) => list.iter().map(|i| text(i, source, what)).collect(),
        Value::Null => Ok(Vec::new()),
        _ => {
            let t = text(node, source, what)?;
            Ok(if split_commas {
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            } else {
                vec![t]
            })
        }
    }
}

fn vars_map(node: &Node, source: &Source, what: &str) -> Result<Vars, Diagnostic> {
    let mut vars = Vars::new();
    for (k, v) in entries(node, source, what)? {
        let name = text(k, source, "a variable name")?;
        if !valid_identifier(&name) {
            return Err(source
                .error(k.line, k.column, format!("`{name}` is not a valid variable name"))
                .with_hint("variable names are letters, digits and `_`, not starting with a digit"));
        }
        vars.insert(name, v.to_json());
    }
    Ok(vars)
}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unknown_key(source: &Source, key: &Node, name: &str, keys: &[&str], what: &str) -> Diagnostic {
    let d = source.error(key.line, key.column, format!("unknown {what} keyword `{name}`"));
    match did_you_mean(name, keys.iter().copied()) {
        Some(s) => d.with_hint(format!("did you mean `{s}`?")),
        None if what == "play" && modules::lookup(name).is_some() => d.with_hint("tasks go in a list under `tasks:`"),
        None => d,
    }
}

impl Loader<'_> {
    fn enter(&mut self, path: &Path, at: Option<&Span>) -> Result<(), Diagnostic> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(i) = self.stack.iter().position(|(p, _)| *p == canonical) {
            let mut chain: Vec<String> = self.stack[i..]
                .iter()
                .map(|(_, shown)| shown.display().to_string())
                .collect();
            chain.push(path.display().to_string());
            let message = format!("cyclic include: {}", chain.join(" -> "));
            return Err(match at {
                Some(span) => span.error(message),
                None => Diagnostic::in_file(path, message),
            });
        }
        self.stack.push((canonical, path.to_path_buf()));
        Ok(())
    }

    /// Enters a role's `meta/main.yml`; a role met again on the way is a dependency cycle,
    /// told by role names where `entry` (in `source`) names the role.
    fn enter_role(&mut self, meta: &Path, source: &Source, entry: &Node) -> Result<(), Diagnostic> {
        let canonical = meta.canonicalize().unwrap_or_else(|_| meta.to_path_buf());
        if let Some(i) = self.stack.iter().position(|(p, _)| *p == canonical) {
            let role_of = |p: &Path| {
                p.parent()
                    .and_then(Path::parent)
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let mut chain: Vec<String> = self.stack[i..]
                .iter()
                .filter(|(p, _)| p.parent().is_some_and(|d| d.ends_with("meta")))
                .map(|(p, _)| role_of(p))
                .collect();
            chain.push(role_of(&canonical));
            return Err(source
                .error(
                    entry.line,
                    entry.column,
                    format!("role dependency cycle: {}", chain.join(" -> ")),
                )
                .with_hint("a role cannot depend on itself, directly or through other roles; remove one of these `dependencies`"));
        }
        self.enter(meta, None)
    }

    fn check_template(&self, s: &str, source: &Source, node: &Node) -> Result<(), Diagnostic> {
        self.engine
            .check(s)
            .map_err(|e| source.error(node.line, node.column, format!("bad template: {e}")))
    }

    /// A `template` module's source file: its syntax, lookups, filters and tests, with the
    /// line and column in the file (a vault or a file that is not text is left to the task).
    fn check_template_file(&self, path: &Path) -> Result<(), Diagnostic> {
        let Ok(bytes) = std::fs::read(path) else {
            return Ok(());
        };
        if crate::vault::is_vault(&bytes) {
            return Ok(());
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(());
        };
        self.engine.check_file(&text).map_err(|e| {
            Source::new(path, text.as_str()).error(e.line, e.column, format!("bad template: {}", e.message))
        })
    }

    fn check_templates_in(&self, node: &Node, source: &Source) -> Result<(), Diagnostic> {
        match &node.value {
            Value::Str(s) => self.check_template(s, source, node),
            Value::Seq(items) => items.iter().try_for_each(|i| self.check_templates_in(i, source)),
            Value::Map(entries) => entries.iter().try_for_each(|(k, v)| {
                self.check_templates_in(k, source)?;
                self.check_templates_in(v, source)
            }),
            _ => Ok(()),
        }
    }

    fn conditions(&self, node: &Node, source: &Source, what: &str) -> Result<Vec<String>, Diagnostic> {
        let list: Vec<(String, &Node)> = match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(|i| Ok((condition_text(i, source, what)?, i)))
                .collect::<Result<_, Diagnostic>>()?,
            _ => vec![(condition_text(node, source, what)?, node)],
        };
        for (expr, n) in &list {
            if expr.trim().starts_with("{{") && !expr.trim().ends_with("}}") {
                return Err(source
                    .error(
                        n.line,
                        n.column,
                        format!("bad condition in `{what}`: `{{{{` is never closed"),
                    )
                    .with_hint(format!(
                        "a condition is an expression already: write `{what}: x == 1`, without `{{{{ }}}}`"
                    )));
            }
            let inner = expr
                .trim()
                .strip_prefix("{{")
                .and_then(|e| e.strip_suffix("}}"))
                .unwrap_or(expr);
            self.engine
                .check_expression(inner)
                .map_err(|e| source.error(n.line, n.column, format!("bad condition in `{what}`: {e}")))?;
        }
        Ok(list.into_iter().map(|(e, _)| e).collect())
    }

    fn playbook(&mut self, path: &Path) -> Result<Vec<Play>, Diagnostic> {
        self.enter(path, None)?;
        let (source, root) = yaml::load_file(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let list = items(&root, &source, "a playbook")
            .map_err(|d| d.with_hint("a playbook is a list of plays: `- hosts: all`"))?;
        if list.is_empty() {
            return Err(Diagnostic::in_file(path, "the playbook holds no play")
                .with_hint("a playbook is a list of plays: `- hosts: all`"));
        }
        let mut plays = Vec::new();
        for node in list {
            let map = entries(node, &source, "a play")?;
            if let Some((k, v)) = map
                .iter()
                // `include` is the name Ansible gave `import_playbook` before 2.4.
                .find(|(k, _)| {
                    let key = k.scalar_text();
                    let short = key.as_deref().map(modules::short_name);
                    matches!(short, Some("import_playbook" | "include"))
                })
            {
                let file = dir.join(text(v, &source, "`import_playbook`")?);
                if !file.exists() {
                    return Err(source.error(v.line, v.column, format!("playbook `{}` not found", file.display())));
                }
                let _ = k;
                plays.extend(self.playbook(&file).map_err(|d| {
                    if d.location.is_none() {
                        Span::of(&source, v).error(d.message)
                    } else {
                        d
                    }
                })?);
                continue;
            }
            plays.push(self.play(&source, &dir, node, map)?);
        }
        self.stack.pop();
        Ok(plays)
    }

    fn play(&mut self, source: &Source, dir: &Path, node: &Node, map: &[(Node, Node)]) -> Result<Play, Diagnostic> {
        self.from_tasks = RoleExtras::default();
        self.roles_seen.clear();
        let span = Span::of(source, node);
        let mut play = Play {
            name: String::new(),
            hosts: String::new(),
            span: span.clone(),
            role_defaults: Vars::new(),
            vars: Vars::new(),
            role_vars: Vars::new(),
            gather_facts: true,
            gather_subset: Vec::new(),
            serial: Vec::new(),
            max_fail_percentage: None,
            any_errors_fatal: false,
            strategy: Strategy::Linear,
            sections: vec![Vec::new(), Vec::new(), Vec::new()],
            handlers: Vec::new(),
            connection: PlayConnection::default(),
            prompts: Vec::new(),
        };
        let mut opts = TaskOpts {
            search_paths: vec![dir.to_path_buf()],
            ..TaskOpts::default()
        };
        let place = Place {
            source: source.clone(),
            dir: dir.to_path_buf(),
            search_paths: vec![dir.to_path_buf()],
        };
        let mut hosts_seen = false;
        let (mut pre, mut tasks, mut post, mut handlers, mut role_tasks, mut role_handlers) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut vars_files = Vars::new();
        for (k, v) in map {
            let key = text(k, source, "a play keyword")?;
            match key.as_str() {
                "name" => {
                    play.name = text(v, source, "`name`")?;
                    self.check_template(&play.name, source, v)?;
                }
                "hosts" => {
                    hosts_seen = true;
                    play.hosts = strings(v, source, "`hosts`", false)?.join(":");
                    self.check_template(&play.hosts, source, v)?;
                }
                "vars" => {
                    self.check_templates_in(v, source)?;
                    play.vars = vars_map(v, source, "`vars`")?;
                }
                "vars_files" => {
                    for f in items(v, source, "`vars_files`")? {
                        let name = text(f, source, "a vars file")?;
                        if crate::template::is_template(&name) {
                            return Err(source
                                .error(f.line, f.column, "templated `vars_files` paths are not supported")
                                .with_hint("name the file directly, or load it with `include_vars` in a task"));
                        }
                        let file = dir.join(&name);
                        if file.is_dir() {
                            return Err(source
                                .error(
                                    f.line,
                                    f.column,
                                    format!("vars file `{}` is a directory", file.display()),
                                )
                                .with_hint("name a YAML file of it"));
                        }
                        if !file.exists() {
                            return Err(source.error(
                                f.line,
                                f.column,
                                format!("vars file `{}` not found", file.display()),
                            ));
                        }
                        let (vs, vn) = yaml::load_file(&file)?;
                        self.check_templates_in(&vn, &vs)?;
                        vars_files.extend(vars_map(&vn, &vs, "a vars file")?);
                    }
                }
                "gather_facts" => play.gather_facts = boolean(v, source, "`gather_facts`")?,
                "gather_subset" => {
                    play.gather_subset = strings(v, source, "`gather_subset`", true)?;
                    if let Err(e) = crate::executor::facts::select(Default::default(), &play.gather_subset, &[]) {
                        return Err(source.error(v.line, v.column, e));
                    }
                }
                // Ansible's gathering limits and local facts: tend's gathering is one short
                // command and reads no local facts.
                "gather_timeout" | "fact_path" => {}
                "remote_user" => play.connection.remote_user = Some(plain_text(v, source, "`remote_user`")?),
                "port" => play.connection.port = Some(port_number(v, source)?),
                "connection" => play.connection.connection = Some(connection_kind(v, source)?),
                "vars_prompt" => play.prompts = vars_prompt(v, source)?,
                "become" => flag(&mut opts, Flag::Become, v, source, "`become`")?,
                "become_user" => opts.become_user = Some(text(v, source, "`become_user`")?),
                "become_method" => check_become_method(v, source)?,
                "serial" => play.serial = serial(v, source)?,
                "max_fail_percentage" => {
                    let p = number(v, source, "`max_fail_percentage`")?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(source.error(v.line, v.column, "`max_fail_percentage` must be between 0 and 100"));
                    }
                    play.max_fail_percentage = Some(p);
                }
                "any_errors_fatal" => play.any_errors_fatal = boolean(v, source, "`any_errors_fatal`")?,
                "strategy" => {
                    play.strategy = match text(v, source, "`strategy`")?.as_str() {
                        "linear" => Strategy::Linear,
                        "free" => Strategy::Free,
                        other => {
                            return Err(source
                                .error(v.line, v.column, format!("unknown strategy `{other}`"))
                                .with_hint("use `linear` (the default) or `free`"));
                        }
                    }
                }
                "tags" => opts.tags = strings(v, source, "`tags`", true)?,
                "environment" => {
                    self.check_templates_in(v, source)?;
                    opts.environment = vars_map(v, source, "`environment`")?;
                }
                "ignore_errors" => flag(&mut opts, Flag::IgnoreErrors, v, source, "`ignore_errors`")?,
                "ignore_unreachable" => flag(&mut opts, Flag::IgnoreUnreachable, v, source, "`ignore_unreachable`")?,
                "no_log" => flag(&mut opts, Flag::NoLog, v, source, "`no_log`")?,
                "check_mode" => flag(&mut opts, Flag::CheckMode, v, source, "`check_mode`")?,
                "timeout" => opts.timeout = Some(number(v, source, "`timeout`")? as u64),
                "pre_tasks" => pre = self.tasks(v, &place)?,
                "tasks" => tasks = self.tasks(v, &place)?,
                "post_tasks" => post = self.tasks(v, &place)?,
                "handlers" => handlers = self.tasks(v, &place)?,
                "roles" => {
                    for entry in items(v, source, "`roles`")? {
                        let role = self.role(source, dir, entry, true)?;
                        play.role_defaults.extend(role.defaults);
                        play.role_vars.extend(role.vars);
                        role_tasks.extend(role.tasks);
                        role_handlers.extend(role.handlers);
                    }
                }
                other => return Err(unknown_key(source, k, other, PLAY_KEYS, "play")),
            }
        }
        if !hosts_seen || play.hosts.is_empty() {
            return Err(span
                .error("play has no `hosts`")
                .with_hint("say which hosts the play runs on, e.g. `hosts: all`"));
        }
        if play.name.is_empty() {
            play.name = play.hosts.clone();
        }
        play.vars.extend(vars_files);
        role_tasks.extend(tasks);
        role_handlers.extend(handlers);
        let extras = std::mem::take(&mut self.from_tasks);
        self.roles_seen.clear();
        play.role_defaults.extend(extras.defaults);
        play.role_vars.extend(extras.vars);
        role_handlers.extend(extras.handlers);
        for (i, list) in [pre, role_tasks, post].into_iter().enumerate() {
            play.sections[i] = inherit_all(list, &opts, true);
        }
        play.handlers = inherit_all(role_handlers, &opts, true);
        check_notify(&play)?;
        Ok(play)
    }

    fn tasks(&mut self, node: &Node, place: &Place) -> Result<Vec<Task>, Diagnostic> {
        let mut out = Vec::new();
        for item in items(node, &place.source, "a task list")? {
            out.extend(self.task(item, place)?);
        }
        Ok(out)
    }

    /// One task entry; imports expand to several tasks.
    fn task(&mut self, node: &Node, place: &Place) -> Result<Vec<Task>, Diagnostic> {
        let source = &place.source;
        let span = Span::of(source, node);
        let map = entries(node, source, "a task")?;
        let mut opts = TaskOpts {
            search_paths: place.search_paths.clone(),
            ..TaskOpts::default()
        };
        let mut name = None;
        let mut action: Option<(&Node, &Node, &'static dyn modules::Module)> = None;
        let mut extra_args: Option<&Node> = None;
        let (mut block, mut rescue, mut always): (Option<&Node>, Option<&Node>, Option<&Node>) = (None, None, None);
        let mut include: Option<(&Node, bool)> = None;
        let mut legacy_include = false;
        let mut role_task: Option<(&Node, bool)> = None;
        let mut local_action: Option<&Node> = None;
        let mut meta: Option<&Node> = None;
        let mut loop_control: Option<&Node> = None;
        let mut unknown: Option<(&Node, String)> = None;
        for (k, v) in map {
            let written = text(k, source, "a task keyword")?;
            // `ansible.builtin.include_tasks` is `include_tasks`, as any module's full name is
            // the module; keywords (`when`) have no full name.
            let short = modules::short_name(&written);
            let is_action = matches!(
                short,
                "include_tasks" | "import_tasks" | "include_role" | "import_role" | "meta" | "include"
            );
            let key = if is_action || modules::lookup(short).is_some() {
                short.to_string()
            } else {
                written.clone()
            };
            match key.as_str() {
                "name" => {
                    let n = text(v, source, "`name`")?;
                    self.check_template(&n, source, v)?;
                    name = Some(n);
                }
                "when" => opts.when = self.conditions(v, source, "when")?,
                "changed_when" => opts.changed_when = Some(self.conditions(v, source, "changed_when")?),
                "failed_when" => opts.failed_when = Some(self.conditions(v, source, "failed_when")?),
                "until" => opts.until = Some(self.conditions(v, source, "until")?),
                k_loop if crate::playbook::LoopKind::of_keyword(k_loop).is_some() => {
                    if opts.loop_items.is_some() {
                        return Err(source.error(k.line, k.column, "a task can have only one loop"));
                    }
                    let kind = crate::playbook::LoopKind::of_keyword(k_loop).unwrap_or_default();
                    let shape_ok = match kind {
                        crate::playbook::LoopKind::Dict => matches!(&v.value, Value::Map(_) | Value::Str(_)),
                        crate::playbook::LoopKind::List | crate::playbook::LoopKind::Items => {
                            matches!(&v.value, Value::Seq(_) | Value::Str(_))
                        }
                        _ => !matches!(&v.value, Value::Null),
                    };
                    if !shape_ok {
                        return Err(source.error(
                            v.line,
                            v.column,
                            format!(
                                "`{key}` must be a {} or a template of one, found {}",
                                if kind == crate::playbook::LoopKind::Dict {
                                    "mapping"
                                } else {
                                    "list"
                                },
                                v.kind()
                            ),
                        ));
                    }
                    self.check_templates_in(v, source)?;
                    opts.loop_items = Some(v.to_json());
                    opts.loop_kind = kind;
                }
                "loop_control" => loop_control = Some(v),
                "register" => {
                    let r = text(v, source, "`register`")?;
                    if !valid_identifier(&r) {
                        return Err(source.error(
                            v.line,
                            v.column,
                            format!("`register: {r}` is not a valid variable name"),
                        ));
                    }
                    opts.register = Some(r);
                }
                "notify" => opts.notify = strings(v, source, "`notify`", false)?,
                "listen" => opts.listen = strings(v, source, "`listen`", false)?,
                "ignore_errors" => flag(&mut opts, Flag::IgnoreErrors, v, source, "`ignore_errors`")?,
                "ignore_unreachable" => flag(&mut opts, Flag::IgnoreUnreachable, v, source, "`ignore_unreachable`")?,
                "retries" => opts.retries = Some(number(v, source, "`retries`")? as u32),
                "delay" => opts.delay = Some(number(v, source, "`delay`")?),
                "become" => flag(&mut opts, Flag::Become, v, source, "`become`")?,
                "become_user" => opts.become_user = Some(text(v, source, "`become_user`")?),
                "become_method" => check_become_method(v, source)?,
                "remote_user" => opts.remote_user = Some(plain_text(v, source, "`remote_user`")?),
                "connection" => {
                    // On a task, `connection: local` runs it on the control node.
                    if connection_kind(v, source)? == "local" {
                        opts.delegate_to = Some("localhost".into());
                    }
                }
                "local_action" => local_action = Some(v),
                "delegate_to" => {
                    let d = text(v, source, "`delegate_to`")?;
                    self.check_template(&d, source, v)?;
                    opts.delegate_to = Some(d);
                }
                "run_once" => opts.run_once = Some(boolean(v, source, "`run_once`")?),
                "no_log" => flag(&mut opts, Flag::NoLog, v, source, "`no_log`")?,
                "tags" => opts.tags = strings(v, source, "`tags`", true)?,
                "timeout" => opts.timeout = Some(number(v, source, "`timeout`")? as u64),
                "vars" => {
                    self.check_templates_in(v, source)?;
                    opts.vars = vars_map(v, source, "`vars`")?;
                }
                "environment" => {
                    self.check_templates_in(v, source)?;
                    opts.environment = vars_map(v, source, "`environment`")?;
                }
                "check_mode" => flag(&mut opts, Flag::CheckMode, v, source, "`check_mode`")?,
                "args" => extra_args = Some(v),
                "block" => block = Some(v),
                "rescue" => rescue = Some(v),
                "always" => always = Some(v),
                "include_tasks" => include = Some((v, false)),
                // Ansible's legacy `include` (removed in 2.16): a static import unless it loops
                // or names its file with a template, `k=v` words after the file being its vars.
                "include" => {
                    legacy_include = true;
                    include = Some((v, true));
                }
                "import_tasks" => include = Some((v, true)),
                "include_role" => role_task = Some((v, false)),
                "import_role" => role_task = Some((v, true)),
                "meta" => meta = Some(v),
                other => {
                    let module = match (modules::lookup(other), modules::elsewhere(&written)) {
                        (Some(m), _) => m,
                        // A module of Ansible tend lacks: loaded, failing if it runs (the task
                        // is often for another system).
                        (None, Some((name, collection))) if action.is_none() => {
                            self.missing
                                .push(format!("{}:{}: {name} ({collection})", source.path.display(), k.line));
                            modules::missing(&name, &collection)
                        }
                        _ => {
                            if unknown.is_none() {
                                unknown = Some((k, written.clone()));
                            }
                            continue;
                        }
                    };
                    if let Some((prev, _, _)) = action {
                        let first = prev.scalar_text().unwrap_or_default();
                        return Err(source
                            .error(
                                k.line,
                                k.column,
                                format!("a task runs one module, but this one has `{first}` and `{other}`"),
                            )
                            .with_hint("split it into two tasks, or fix the indentation of the module's arguments"));
                    }
                    action = Some((k, v, module));
                }
            }
        }
        // `local_action: module args` is the module run with `delegate_to: localhost`.
        let local_pair;
        if let Some(v) = local_action {
            local_pair = split_local_action(v, source)?;
            let Some(module) = modules::lookup(&local_pair.1) else {
                return Err(source.error(
                    v.line,
                    v.column,
                    format!("`local_action`: unknown module `{}`", local_pair.1),
                ));
            };
            if action.is_some() {
                return Err(source.error(v.line, v.column, "a task runs one module: `local_action` and another"));
            }
            action = Some((&local_pair.0, &local_pair.2, module));
            opts.delegate_to = Some("localhost".into());
        }
        if let Some((k, other)) = unknown {
            if let Some((module, collection)) = modules::elsewhere(&other) {
                return Err(source
                    .error(
                        k.line,
                        k.column,
                        format!("tend has no module `{module}` (Ansible has it in the collection `{collection}`)"),
                    )
                    .with_hint("`tend modules` lists the modules tend has; run this task with Ansible, or use `command`/`shell`"));
            }
            if let Some((_, hint)) = UNSUPPORTED_TASK_KEYS.iter().find(|(key, _)| *key == other) {
                return Err(source
                    .error(
                        k.line,
                        k.column,
                        format!("tend does not support Ansible's task keyword `{other}`"),
                    )
                    .with_hint(*hint));
            }
            let d = source.error(k.line, k.column, format!("unknown module or keyword `{other}`"));
            let param_of = action.and_then(|(_, _, m)| {
                m.params()
                    .iter()
                    .any(|p| p.name == other || p.aliases.contains(&other.as_str()))
                    .then(|| m.name())
            });
            let known = TASK_KEYS.iter().copied().chain(modules::names());
            let short = other.rsplit('.').next().unwrap_or(&other);
            return Err(match (param_of, did_you_mean(short, known)) {
                (Some(m), _) => d.with_hint(format!("`{other}` is a parameter of `{m}`: indent it under `{m}:`")),
                (None, Some(s)) => d.with_hint(format!("did you mean `{s}`?")),
                (None, None) => d.with_hint("`tend modules` lists the modules tend has"),
            });
        }
        if let Some(lc) = loop_control {
            for (k, v) in entries(lc, source, "`loop_control`")? {
                match text(k, source, "a loop_control keyword")?.as_str() {
                    "loop_var" => opts.loop_var = Some(text(v, source, "`loop_var`")?),
                    "index_var" => opts.index_var = Some(text(v, source, "`index_var`")?),
                    "label" => {
                        let l = text(v, source, "`label`")?;
                        self.check_template(&l, source, v)?;
                        opts.label = Some(l);
                    }
                    "pause" | "extended" => {}
                    other => {
                        return Err(unknown_key(
                            source,
                            k,
                            other,
                            &["loop_var", "index_var", "label", "pause", "extended"],
                            "loop_control",
                        ));
                    }
                }
            }
        }
        let kinds = [
            action.is_some(),
            block.is_some(),
            include.is_some() || role_task.is_some(),
            meta.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if kinds == 0 {
            let d = span.error("task has no module");
            return Err(if rescue.is_some() || always.is_some() {
                d.with_hint("`rescue` and `always` go with a `block`")
            } else {
                d.with_hint("a task names one module, e.g. `command: uptime`")
            });
        }
        if kinds > 1 {
            return Err(span.error("a task is either a module, a `block`, an include or a `meta`, not several"));
        }
        if (rescue.is_some() || always.is_some()) && block.is_none() {
            return Err(span.error("`rescue` and `always` need a `block`"));
        }

        if let Some(b) = block {
            let mut block_opts = opts.clone();
            block_opts.loop_items = None;
            let inherit = |list: Vec<Task>| inherit_all(list, &block_opts, true);
            let kind = TaskKind::Block {
                block: inherit(self.tasks(b, place)?),
                rescue: inherit(rescue.map(|r| self.tasks(r, place)).transpose()?.unwrap_or_default()),
                always: inherit(always.map(|a| self.tasks(a, place)).transpose()?.unwrap_or_default()),
            };
            if opts.loop_items.is_some() {
                return Err(span
                    .error("a `block` cannot loop")
                    .with_hint("loop over an `include_tasks` file instead"));
            }
            // The block's conditions now live on each of its tasks.
            opts.when.clear();
            return Ok(vec![Task {
                id: 0,
                name,
                span,
                kind,
                opts,
            }]);
        }
        if let Some(m) = meta {
            let word = text(m, source, "`meta`")?;
            let action = match word.as_str() {
                "flush_handlers" => Meta::FlushHandlers,
                "end_play" => Meta::EndPlay,
                "end_host" => Meta::EndHost,
                "noop" => Meta::Noop,
                other => {
                    return Err(source
                        .error(m.line, m.column, format!("unsupported meta action `{other}`"))
                        .with_hint("tend supports flush_handlers, end_play, end_host and noop"));
                }
            };
            return Ok(vec![Task {
                id: 0,
                name,
                span,
                kind: TaskKind::Meta(action),
                opts,
            }]);
        }
        if let Some((node, is_import)) = role_task {
            if !matches!(node.value, Value::Map(_)) {
                return Err(source
                    .error(node.line, node.column, "`include_role`/`import_role` takes a mapping")
                    .with_hint("write `import_role: {name: ROLE}`"));
            }
            let play_dir = place.search_paths.last().cloned().unwrap_or_else(|| place.dir.clone());
            let (role, apply) = self.role_with_apply(source, &play_dir, node)?;
            // Its handlers belong to the play. An imported role's defaults and vars do too
            // (public); an included role's are its own tasks' and handlers' (private), as in
            // Ansible.
            let public = is_import || role.public;
            let (role_tasks, handlers) = if public {
                self.from_tasks.defaults.extend(role.defaults);
                self.from_tasks.vars.extend(role.vars);
                (role.tasks, role.handlers)
            } else {
                let scoped = std::sync::Arc::new((role.defaults, role.vars));
                let scope_all = |tasks: Vec<Task>| -> Vec<Task> {
                    tasks
                        .into_iter()
                        .map(|mut t| {
                            scope_role(&mut t, &scoped);
                            t
                        })
                        .collect()
                };
                (scope_all(role.tasks), scope_all(role.handlers))
            };
            self.from_tasks.handlers.extend(handlers);
            let role_tasks = inherit_all(role_tasks, &apply, true);
            let role = Role {
                tasks: role_tasks,
                ..Role::default()
            };
            if is_import {
                if opts.loop_items.is_some() {
                    return Err(span
                        .error("`import_role` cannot loop")
                        .with_hint("use `include_role` to loop over a role"));
                }
                return Ok(inherit_all(role.tasks, &opts, true));
            }
            let mut child_opts = opts.clone();
            child_opts.when.clear();
            child_opts.loop_items = None;
            let tasks = inherit_all(role.tasks, &child_opts, false);
            return Ok(vec![Task {
                id: 0,
                name,
                span,
                kind: TaskKind::Include {
                    file: play_dir,
                    tasks,
                    template: None,
                    choices: Vec::new(),
                },
                opts,
            }]);
        }
        if let Some((node, mut is_import)) = include {
            let mut file_text = match &node.value {
                Value::Map(m) => {
                    let file = m.iter().find(|(k, _)| k.scalar_text().as_deref() == Some("file"));
                    let (_, f) = file.ok_or_else(|| source.error(node.line, node.column, "include needs `file:`"))?;
                    text(f, source, "`file`")?
                }
                _ => text(node, source, "an include")?,
            };
            if legacy_include {
                let (pairs, rest) = parse_kv(&file_text, |_| true, true)
                    .map_err(|e| source.error(node.line, node.column, format!("`include`: {e}")))?;
                for (k, v) in pairs {
                    opts.vars.entry(k).or_insert(Json::String(v));
                }
                file_text = rest.unwrap_or_default().trim().to_string();
                is_import = opts.loop_items.is_none() && !crate::template::is_template(&file_text);
            }
            if crate::template::is_template(&file_text) {
                return self.templated_include(node, place, &file_text, (name, span, opts, is_import));
            }
            let file = [
                place.dir.join(&file_text),
                place
                    .search_paths
                    .first()
                    .map(|p| p.join(&file_text))
                    .unwrap_or_default(),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                source
                    .error(node.line, node.column, format!("tasks file `{file_text}` not found"))
                    .with_hint(format!("looked in {}", dir_shown(&place.dir)))
            })?;
            let at = Span::of(source, node);
            let children = self.tasks_file(&file, &at, place)?;
            if is_import {
                if opts.loop_items.is_some() {
                    return Err(at
                        .error("`import_tasks` cannot loop")
                        .with_hint("use `include_tasks` to loop over a tasks file"));
                }
                return Ok(inherit_all(children, &opts, true));
            }
            let mut child_opts = opts.clone();
            child_opts.when.clear();
            child_opts.loop_items = None;
            let tasks = inherit_all(children, &child_opts, false);
            return Ok(vec![Task {
                id: 0,
                name,
                span,
                kind: TaskKind::Include {
                    file,
                    tasks,
                    template: None,
                    choices: Vec::new(),
                },
                opts,
            }]);
        }
        let Some((key, value, module)) = action else {
            return Err(span.error("task has no module"));
        };
        let args = self.module_args(module, key, value, extra_args, source, &span)?;
        if let Some((param, subdir)) = module.local_file()
            && let Some(Json::String(name)) = args.get(param)
            && !crate::template::is_template(name)
        {
            let path = Path::new(name);
            let found = if path.is_absolute() {
                path.exists().then(|| path.to_path_buf())
            } else {
                place
                    .search_paths
                    .iter()
                    .flat_map(|b| [b.join(subdir).join(name), b.join(name)])
                    .find(|p| p.exists())
            };
            if let Some(file) = &found
                && module.name() == "template"
            {
                self.check_template_file(file)?;
            }
            if found.is_none() {
                let looked: Vec<String> = place
                    .search_paths
                    .iter()
                    .flat_map(|b| [b.join(subdir), b.to_path_buf()])
                    .map(|p| dir_shown(&p))
                    .collect();
                return Err(Span::of(source, value)
                    .error(format!("`{}` {param} `{name}` not found", module.name()))
                    .with_hint(format!("looked in {}", looked.join(", "))));
            }
        }
        Ok(vec![Task {
            id: 0,
            name,
            span,
            kind: TaskKind::Module { module, args },
            opts,
        }])
    }

    fn module_args(
        &self,
        module: &'static dyn modules::Module,
        key: &Node,
        value: &Node,
        extra: Option<&Node>,
        source: &Source,
        task: &Span,
    ) -> Result<Vars, Diagnostic> {
        let name = module.name();
        let mut args: Vec<(String, Json, Span)> = Vec::new();
        if let Some(extra) = extra {
            self.check_templates_in(extra, source)?;
            for (k, v) in entries(extra, source, "`args`")? {
                args.push((text(k, source, "a parameter name")?, v.to_json(), Span::of(source, k)));
            }
        }
        let mut inline: Vec<(String, Json, Span)> = Vec::new();
        match &value.value {
            Value::Map(map) => {
                self.check_templates_in(value, source)?;
                for (k, v) in map {
                    inline.push((text(k, source, "a parameter name")?, v.to_json(), Span::of(source, k)));
                }
            }
            Value::Str(s) => {
                self.check_template(s, source, value)?;
                let is_param = |k: &str| {
                    module.open_params() || module.params().iter().any(|p| p.name == k || p.aliases.contains(&k))
                };
                let (pairs, rest) = parse_kv(s, is_param, module.free_form().is_some())
                    .map_err(|m| source.error(value.line, value.column, format!("arguments of `{name}`: {m}")))?;
                let at = Span::of(source, value);
                for (k, v) in pairs {
                    inline.push((k, Json::String(v), at.clone()));
                }
                if let (Some(rest), Some(param)) = (rest, module.free_form()) {
                    inline.push((param.to_string(), Json::String(rest), at));
                }
            }
            Value::Null => {}
            Value::Bool(_) | Value::Int(_) | Value::Float(_) if module.free_form().is_some() => {
                let param = module.free_form().unwrap_or("cmd");
                inline.push((
                    param.to_string(),
                    Json::String(value.scalar_text().unwrap_or_default()),
                    Span::of(source, value),
                ));
            }
            _ => {
                return Err(source.error(
                    value.line,
                    value.column,
                    format!(
                        "arguments of `{name}` must be a mapping or `key=value` text, found {}",
                        value.kind()
                    ),
                ));
            }
        }
        // Arguments written on the module win over `args:`.
        args.retain(|(k, _, _)| !inline.iter().any(|(i, _, _)| i == k));
        args.extend(inline);
        if !module.open_params() {
            check_literal_args(name, module.params(), &args, task)?;
            if let Some(free) = module.free_form()
                && !args
                    .iter()
                    .any(|(k, _, _)| k == free || k == "argv" || k == "_raw_params")
            {
                return Err(Span::of(source, key)
                    .error(format!("`{name}` needs a command"))
                    .with_hint(format!("e.g. `{name}: uptime`")));
            }
        } else if let Some((k, _, span)) = args.iter().find(|(k, _, _)| !valid_identifier(k)) {
            return Err(span.error(format!("`{k}` is not a valid variable name")));
        }
        Ok(args.into_iter().map(|(k, v, _)| (k, v)).collect())
    }

    /// A role of `include_role`/`import_role` and its `apply:` keywords (given to every task of
    /// the role, as Ansible applies them).
    fn role_with_apply(
        &mut self,
        source: &Source,
        play_dir: &Path,
        node: &Node,
    ) -> Result<(Role, TaskOpts), Diagnostic> {
        let mut apply = TaskOpts::default();
        if let Value::Map(keys) = &node.value
            && let Some((_, a)) = keys.iter().find(|(k, _)| k.scalar_text().as_deref() == Some("apply"))
        {
            for (k, v) in entries(a, source, "`apply`")? {
                match text(k, source, "an `apply` keyword")?.as_str() {
                    "become" => flag(&mut apply, Flag::Become, v, source, "`become`")?,
                    "become_user" => apply.become_user = Some(text(v, source, "`become_user`")?),
                    "tags" => apply.tags = strings(v, source, "`tags`", true)?,
                    "when" => apply.when = self.conditions(v, source, "when")?,
                    "vars" => apply.vars = vars_map(v, source, "`vars`")?,
                    "environment" => apply.environment = vars_map(v, source, "`environment`")?,
                    "no_log" => flag(&mut apply, Flag::NoLog, v, source, "`no_log`")?,
                    "ignore_errors" => flag(&mut apply, Flag::IgnoreErrors, v, source, "`ignore_errors`")?,
                    "check_mode" => flag(&mut apply, Flag::CheckMode, v, source, "`check_mode`")?,
                    "delegate_to" => apply.delegate_to = Some(text(v, source, "`delegate_to`")?),
                    other => {
                        return Err(source
                            .error(k.line, k.column, format!("`apply: {other}` is not supported"))
                            .with_hint("`apply` takes become, become_user, tags, when, vars, environment, no_log, ignore_errors, check_mode, delegate_to"));
                    }
                }
            }
        }
        let role = self.role(source, play_dir, node, false)?;
        Ok((role, apply))
    }

    /// The tasks of an included file (`at`: the include), refusing a cycle.
    fn tasks_file(&mut self, file: &Path, at: &Span, place: &Place) -> Result<Vec<Task>, Diagnostic> {
        self.enter(file, Some(at))?;
        let (inc_source, inc_root) = yaml::load_file(file)?;
        let inc_place = Place {
            source: inc_source,
            dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            search_paths: place.search_paths.clone(),
        };
        let tasks = self.tasks(&inc_root, &inc_place)?;
        self.stack.pop();
        Ok(tasks)
    }

    /// `include_tasks: setup-{{ ansible_os_family }}.yml`: every file the path can name (its
    /// templates as `*`) is loaded and checked now; which one a host runs is decided as the
    /// include runs, per host. An import cannot be templated (Ansible resolves it while
    /// loading, when no host's variables are known).
    fn templated_include(
        &mut self,
        node: &Node,
        place: &Place,
        file_text: &str,
        (name, span, opts, is_import): (Option<String>, Span, TaskOpts, bool),
    ) -> Result<Vec<Task>, Diagnostic> {
        let source = &place.source;
        if is_import {
            return Err(source
                .error(node.line, node.column, "`import_tasks` cannot take a templated path")
                .with_hint("use `include_tasks`, which decides the file per host as it runs"));
        }
        let pattern = template_glob(file_text);
        let here = if place.dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            place.dir.clone()
        };
        let bases: Vec<PathBuf> = std::iter::once(here.clone())
            .chain(place.search_paths.first().map(|p| p.join("tasks")))
            .chain(place.search_paths.first().cloned())
            .collect();
        let glob = globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| source.error(node.line, node.column, format!("templated include `{file_text}`: {e}")))?
            .compile_matcher();
        let mut found: Vec<PathBuf> = Vec::new();
        let mut base_used = here.clone();
        // Files being loaded (the playbook itself, the role's `main.yml`) are no candidates.
        let loading: Vec<PathBuf> = self.stack.iter().map(|(c, _)| c.clone()).collect();
        let current = std::fs::canonicalize(&source.path).ok();
        for base in &bases {
            let mut files = Vec::new();
            collect_files(base, base, 3, &mut files);
            let mut hits: Vec<PathBuf> = files
                .into_iter()
                .filter(|rel| glob.is_match(rel))
                .map(|rel| base.join(rel))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
                .filter(|p| {
                    let c = std::fs::canonicalize(p).ok();
                    c.is_some() && c != current && !c.as_ref().is_some_and(|c| loading.contains(c))
                })
                .collect();
            if !hits.is_empty() {
                hits.sort();
                found = hits;
                base_used = base.clone();
                break;
            }
        }
        if found.is_empty() {
            return Err(source
                .error(
                    node.line,
                    node.column,
                    format!("no tasks file matches the templated include `{file_text}`"),
                )
                .with_hint(format!(
                    "looked for `{pattern}` in {}",
                    bases
                        .iter()
                        .map(|b| b.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
        }
        let at = Span::of(source, node);
        let mut tasks = Vec::new();
        let mut choices = Vec::new();
        let mut child_opts = opts.clone();
        child_opts.when.clear();
        child_opts.loop_items = None;
        // A file the path can name that is no task list (a vars file beside the tasks) is only
        // an error for a host that names it.
        let mut first_error = None;
        for file in found {
            let depth = self.stack.len();
            let children = match self.tasks_file(&file, &at, place) {
                Ok(tasks) => inherit_all(tasks, &child_opts, false),
                Err(e) => {
                    self.stack.truncate(depth);
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let start = tasks.len();
            tasks.extend(children);
            choices.push((file, start..tasks.len()));
        }
        if choices.is_empty()
            && let Some(e) = first_error
        {
            return Err(e);
        }
        Ok(vec![Task {
            id: 0,
            name,
            span,
            kind: TaskKind::Include {
                file: base_used,
                tasks,
                template: Some(file_text.to_string()),
                choices,
            },
            opts,
        }])
    }

    /// Loads a role (`dedupe`: as a play's role or a dependency, which run once per play with
    /// the same parameters; `include_role`/`import_role` always run).
    fn role(&mut self, source: &Source, play_dir: &Path, entry: &Node, dedupe: bool) -> Result<Role, Diagnostic> {
        let mut opts = TaskOpts::default();
        // `tasks_from`, `vars_from`, `defaults_from`, `handlers_from` (of include/import_role).
        let mut from: std::collections::BTreeMap<&'static str, String> = std::collections::BTreeMap::new();
        let mut allow_duplicates = false;
        let mut public = false;
        let name = match &entry.value {
            Value::Str(s) => s.clone(),
            Value::Map(map) => {
                let mut name = None;
                for (k, v) in map {
                    match text(k, source, "a role keyword")?.as_str() {
                        "role" | "name" => name = Some(text(v, source, "`role`")?),
                        "tags" => opts.tags = strings(v, source, "`tags`", true)?,
                        "when" => opts.when = self.conditions(v, source, "when")?,
                        "become" => flag(&mut opts, Flag::Become, v, source, "`become`")?,
                        "become_user" => opts.become_user = Some(text(v, source, "`become_user`")?),
                        "vars" => opts.vars.extend(vars_map(v, source, "`vars`")?),
                        "allow_duplicates" => allow_duplicates = boolean(v, source, "`allow_duplicates`")?,
                        key @ ("tasks_from" | "vars_from" | "defaults_from" | "handlers_from") => {
                            let f = text(v, source, key)?;
                            if crate::template::is_template(&f) {
                                return Err(source
                                    .error(v.line, v.column, format!("templated `{key}` is not supported"))
                                    .with_hint("name the file directly"));
                            }
                            let key = match key {
                                "tasks_from" => "tasks",
                                "vars_from" => "vars",
                                "defaults_from" => "defaults",
                                _ => "handlers",
                            };
                            from.insert(key, f);
                        }
                        "public" => public = boolean(v, source, "`public`")?,
                        // `apply` is read by the include (role_with_apply).
                        "apply" | "rolespec_validate" => {}
                        param => {
                            // Role parameters are variables of the role's tasks.
                            self.check_templates_in(v, source)?;
                            opts.vars.insert(param.to_string(), v.to_json());
                        }
                    }
                }
                name.ok_or_else(|| source.error(entry.line, entry.column, "role entry needs `role: NAME`"))?
            }
            _ => {
                return Err(source.error(
                    entry.line,
                    entry.column,
                    format!("a role is a name or a mapping, found {}", entry.kind()),
                ));
            }
        };
        let mut candidates: Vec<PathBuf> = Vec::new();
        // A collection-qualified role (`ns.collection.role`) is looked for by its last name.
        let mut paths = vec![
            play_dir.join("roles").join(&name),
            play_dir.join(&name),
            PathBuf::from("roles").join(&name),
        ];
        if name.matches('.').count() >= 2 {
            paths.push(play_dir.join("roles").join(name.rsplit('.').next().unwrap_or(&name)));
        }
        for c in paths {
            if !candidates.contains(&c) {
                candidates.push(c);
            }
        }
        let dir = candidates.iter().find(|d| d.is_dir()).cloned().ok_or_else(|| {
            source
                .error(entry.line, entry.column, format!("role `{name}` not found"))
                .with_hint(format!(
                    "looked for {}",
                    candidates
                        .iter()
                        .map(|c| c.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
        })?;
        // Each role runs once per play with the same parameters, unless it allows duplicates.
        let identity = format!(
            "{}|{}|{:?}|{:?}|{:?}",
            dir.display(),
            serde_json::to_string(&opts.vars).unwrap_or_default(),
            from,
            opts.when,
            opts.tags
        );
        let duplicates = allow_duplicates || role_allows_duplicates(&dir);
        if dedupe && !duplicates && self.roles_seen.contains(&identity) {
            return Ok(Role::default());
        }
        self.roles_seen.push(identity);
        let file_of = |sub: &str| -> Result<Option<PathBuf>, Diagnostic> {
            match from.get(sub) {
                Some(f) => {
                    let names = if Path::new(f).extension().is_some() {
                        vec![f.clone()]
                    } else {
                        vec![format!("{f}.yml"), format!("{f}.yaml"), f.clone()]
                    };
                    names
                        .iter()
                        .map(|n| dir.join(sub).join(n))
                        .find(|p| p.is_file())
                        .map(Some)
                        .ok_or_else(|| {
                            source.error(
                                entry.line,
                                entry.column,
                                format!("`{f}` not found in {}", dir.join(sub).display()),
                            )
                        })
                }
                None => Ok(["main.yaml", "main.yml"]
                    .iter()
                    .map(|f| dir.join(sub).join(f))
                    .find(|p| p.is_file())),
            }
        };
        let read_vars = |sub: &str, me: &Self| -> Result<Vars, Diagnostic> {
            match file_of(sub)? {
                Some(f) => {
                    let (s, n) = yaml::load_file(&f)?;
                    me.check_templates_in(&n, &s)?;
                    vars_map(&n, &s, "a role variables file")
                }
                None => Ok(Vars::new()),
            }
        };
        // Dependencies (`meta/main.yml`) first, with their parameters, as Ansible runs them.
        let mut role = Role {
            public,
            ..Role::default()
        };
        if let Some(meta) = ["main.yaml", "main.yml"]
            .iter()
            .map(|f| dir.join("meta").join(f))
            .find(|p| p.is_file())
        {
            let (ms, mn) = yaml::load_file(&meta)?;
            if let Value::Map(entries) = &mn.value
                && let Some((_, deps)) = entries
                    .iter()
                    .find(|(k, _)| k.scalar_text().as_deref() == Some("dependencies"))
                && !matches!(deps.value, Value::Null)
            {
                self.enter_role(&meta, source, entry)?;
                for dep in items(deps, &ms, "`dependencies`")? {
                    let d = self.role(&ms, &dir.join(".."), dep, true)?;
                    role.defaults.extend(d.defaults);
                    role.vars.extend(d.vars);
                    role.tasks.extend(inherit_all(d.tasks, &opts, true));
                    role.handlers.extend(d.handlers);
                }
                self.stack.pop();
            }
        }
        role.defaults.extend(read_vars("defaults", self)?);
        role.vars.extend(read_vars("vars", self)?);
        opts.search_paths = vec![dir.clone(), play_dir.to_path_buf()];
        let mut load_list = |sub: &str| -> Result<Vec<Task>, Diagnostic> {
            let Some(file) = file_of(sub)? else {
                return Ok(Vec::new());
            };
            self.enter(&file, None)?;
            let (s, n) = yaml::load_file(&file)?;
            let place = Place {
                source: s,
                dir: file.parent().map(Path::to_path_buf).unwrap_or_else(|| dir.join(sub)),
                search_paths: vec![dir.clone(), play_dir.to_path_buf()],
            };
            let tasks = self.tasks(&n, &place)?;
            self.stack.pop();
            Ok(tasks)
        };
        role.tasks.extend(inherit_all(load_list("tasks")?, &opts, true));
        role.handlers.extend(inherit_all(load_list("handlers")?, &opts, false));
        Ok(role)
    }
}

/// A keyword's text, which must not be a template (it is needed before anything runs).
fn plain_text(v: &Node, source: &Source, what: &str) -> Result<String, Diagnostic> {
    let t = text(v, source, what)?;
    if crate::template::is_template(&t) {
        return Err(source
            .error(v.line, v.column, format!("a templated {what} is not supported"))
            .with_hint("write the value, or set `ansible_user`/`ansible_port` for the hosts in the inventory"));
    }
    Ok(t)
}

/// `port:` of a play.
fn port_number(v: &Node, source: &Source) -> Result<u16, Diagnostic> {
    let t = plain_text(v, source, "`port`")?;
    t.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| source.error(v.line, v.column, format!("`port: {t}` is not a port number (1-65535)")))
}

/// `connection:` of a play or task: `ssh` (also `smart`, `paramiko`) or `local`.
fn connection_kind(v: &Node, source: &Source) -> Result<String, Diagnostic> {
    let t = plain_text(v, source, "`connection`")?;
    match t.as_str() {
        "ssh" | "smart" | "paramiko" => Ok("ssh".into()),
        "local" => Ok("local".into()),
        other => Err(source
            .error(v.line, v.column, format!("`connection: {other}` is not supported"))
            .with_hint("tend connects with `ssh` (the default) or runs `local`ly")),
    }
}

/// `local_action: module k=v` or `local_action: {module: NAME, k: v}`: (key node, module name,
/// arguments node).
fn split_local_action(v: &Node, source: &Source) -> Result<(Node, String, Node), Diagnostic> {
    let at = |value: Value| Node {
        value,
        line: v.line,
        column: v.column,
    };
    match &v.value {
        Value::Str(s) => {
            let s = s.trim();
            let (module, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
            let module = modules::short_name(module).to_string();
            Ok((
                at(Value::Str(module.clone())),
                module,
                at(Value::Str(rest.trim().to_string())),
            ))
        }
        Value::Map(entries) => {
            let mut module = None;
            let mut args = Vec::new();
            for (k, val) in entries {
                if k.scalar_text().as_deref() == Some("module") {
                    module = Some(text(val, source, "`module`")?);
                } else {
                    args.push((k.clone(), val.clone()));
                }
            }
            let module = module
                .map(|m| modules::short_name(&m).to_string())
                .ok_or_else(|| source.error(v.line, v.column, "`local_action` needs `module:`"))?;
            Ok((at(Value::Str(module.clone())), module, at(Value::Map(args))))
        }
        _ => Err(source.error(
            v.line,
            v.column,
            "`local_action` is `module args` or a mapping with `module:`",
        )),
    }
}

/// `vars_prompt:` entries.
fn vars_prompt(v: &Node, source: &Source) -> Result<Vec<VarPrompt>, Diagnostic> {
    let mut out = Vec::new();
    for item in items(v, source, "`vars_prompt`")? {
        let mut p = VarPrompt {
            private: true,
            span: Some(Span::of(source, item)),
            ..VarPrompt::default()
        };
        for (k, val) in entries(item, source, "a `vars_prompt` entry")? {
            match text(k, source, "a `vars_prompt` keyword")?.as_str() {
                "name" => p.name = text(val, source, "`name`")?,
                "prompt" => p.prompt = text(val, source, "`prompt`")?,
                "default" => p.default = Some(val.scalar_text().unwrap_or_default()),
                "private" => p.private = boolean(val, source, "`private`")?,
                "confirm" => p.confirm = boolean(val, source, "`confirm`")?,
                "encrypt" => {
                    return Err(source
                        .error(
                            k.line,
                            k.column,
                            "`vars_prompt` with `encrypt` is not supported: the answer would be used unhashed",
                        )
                        .with_hint("hash it in a task (`{{ answer | password_hash('sha512') }}`)"));
                }
                "salt_size" | "salt" | "unsafe" => {}
                other => {
                    return Err(unknown_key(
                        source,
                        k,
                        other,
                        &[
                            "name",
                            "prompt",
                            "default",
                            "private",
                            "confirm",
                            "encrypt",
                            "salt_size",
                            "salt",
                            "unsafe",
                        ],
                        "vars_prompt",
                    ));
                }
            }
        }
        if !valid_identifier(&p.name) {
            return Err(source.error(
                item.line,
                item.column,
                "a `vars_prompt` entry needs a `name` that is a variable name",
            ));
        }
        if p.prompt.is_empty() {
            p.prompt = p.name.clone();
        }
        out.push(p);
    }
    Ok(out)
}

/// Gives a task (and the tasks of its blocks and includes) the private defaults and vars of
/// the `include_role` it came from.
fn scope_role(task: &mut Task, scoped: &std::sync::Arc<(Vars, Vars)>) {
    if task.opts.scoped_role.is_none() {
        task.opts.scoped_role = Some(scoped.clone());
    }
    match &mut task.kind {
        TaskKind::Block { block, rescue, always } => {
            for t in block.iter_mut().chain(rescue.iter_mut()).chain(always.iter_mut()) {
                scope_role(t, scoped);
            }
        }
        TaskKind::Include { tasks, .. } => {
            for t in tasks {
                scope_role(t, scoped);
            }
        }
        TaskKind::Module { .. } | TaskKind::Meta(_) => {}
    }
}

/// A templated path as a glob: each `{{ ... }}` (and `{% ... %}`) matches anything.
fn template_glob(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find(['{']) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let close = match tail.get(..2) {
            Some("{{") => tail.find("}}"),
            Some("{%") => tail.find("%}"),
            _ => None,
        };
        match close {
            Some(j) => {
                if !out.ends_with('*') {
                    out.push('*');
                }
                rest = &tail[j + 2..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Files under `dir` (to `depth` levels), as paths relative to `base`.
fn collect_files(base: &Path, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            if depth > 0 {
                collect_files(base, &p, depth - 1, out);
            }
        } else if let Ok(rel) = p.strip_prefix(base) {
            out.push(rel.to_path_buf());
        }
    }
}

/// `allow_duplicates: true` in a role's `meta/main.yml`.
fn role_allows_duplicates(dir: &Path) -> bool {
    ["main.yaml", "main.yml"]
        .iter()
        .map(|f| dir.join("meta").join(f))
        .find(|p| p.is_file())
        .and_then(|p| yaml::load_file(&p).ok())
        .and_then(|(_, n)| match n.value {
            Value::Map(entries) => entries
                .into_iter()
                .find(|(k, _)| k.scalar_text().as_deref() == Some("allow_duplicates"))
                .map(|(_, v)| matches!(v.value, Value::Bool(true))),
            _ => None,
        })
        .unwrap_or(false)
}

#[derive(Default)]
struct Role {
    /// `public: true` on an `include_role`: its defaults and vars join the play.
    public: bool,
    defaults: Vars,
    vars: Vars,
    tasks: Vec<Task>,
    handlers: Vec<Task>,
}

fn condition_text(node: &Node, source: &Source, what: &str) -> Result<String, Diagnostic> {
    match &node.value {
        Value::Bool(b) => Ok(b.to_string()),
        _ => text(node, source, &format!("`{what}`")),
    }
}

fn check_become_method(v: &Node, source: &Source) -> Result<(), Diagnostic> {
    let m = text(v, source, "`become_method`")?;
    if m != "sudo" {
        return Err(source
            .error(v.line, v.column, format!("`become_method: {m}` is not supported"))
            .with_hint("tend escalates with `sudo`"));
    }
    Ok(())
}

fn serial(v: &Node, source: &Source) -> Result<Vec<Serial>, Diagnostic> {
    let one = |n: &Node| -> Result<Serial, Diagnostic> {
        let bad = || {
            source.error(
                n.line,
                n.column,
                "`serial` takes a number of hosts or a percentage such as `30%`",
            )
        };
        match &n.value {
            Value::Int(i) if *i > 0 => Ok(Serial::Count(*i as usize)),
            Value::Str(s) => match s.trim().strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .map(Serial::Percent)
                    .ok_or_else(bad),
                None => s
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|c| *c > 0)
                    .map(Serial::Count)
                    .ok_or_else(bad),
            },
            _ => Err(bad()),
        }
    };
    match &v.value {
        Value::Seq(list) => list.iter().map(one).collect(),
        _ => Ok(vec![one(v)?]),
    }
}

fn inherit_all(mut tasks: Vec<Task>, parent: &TaskOpts, with_when: bool) -> Vec<Task> {
    for t in &mut tasks {
        t.opts.inherit(parent, with_when);
    }
    tasks
}

/// Every `notify` names a handler (by name or `listen`) of the play.
fn check_notify(play: &Play) -> Result<(), Diagnostic> {
    let mut names: Vec<String> = Vec::new();
    for h in &play.handlers {
        names.extend(h.name.clone());
        names.extend(h.opts.listen.iter().cloned());
    }
    fn walk(tasks: &[Task], names: &[String]) -> Result<(), Diagnostic> {
        for t in tasks {
            for n in &t.opts.notify {
                if !names.contains(n) {
                    let d = t
                        .span
                        .error(format!("task notifies `{n}`, which is not a handler of this play"));
                    return Err(match did_you_mean(n, names.iter().map(String::as_str)) {
                        Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                        None if names.is_empty() => d.with_hint("the play has no `handlers:`"),
                        None => d.with_hint(format!(
                            "handlers: {}",
                            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                        )),
                    });
                }
            }
            match &t.kind {
                TaskKind::Block { block, rescue, always } => {
                    walk(block, names)?;
                    walk(rescue, names)?;
                    walk(always, names)?;
                }
                TaskKind::Include { tasks, .. } => walk(tasks, names)?,
                _ => {}
            }
        }
        Ok(())
    }
    for section in &play.sections {
        walk(section, &names)?;
    }
    walk(&play.handlers, &names)
}

/// A directory as "looked in" hints show it: `dir/`, or `./` for the current one.
fn dir_shown(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        "./".to_string()
    } else {
        format!("{}/", dir.display())
    }
}
