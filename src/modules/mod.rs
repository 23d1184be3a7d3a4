//! Modules: what a task does. Each module declares its parameters (checked before anything
//! connects), then at run time first probes "what would change" and applies only outside check
//! mode, in as few round trips as it can. Modules never print; they return a [`ModuleResult`].

/// The start of a module script that runs commands on the host: `say` writes a marked line
/// (`@@tend …`) for the module to read back; `step CMD ARGS…` announces the command
/// (`@@tend run …`, so that a failure names it), runs it with stdin closed, shows its output,
/// and ends the script with its exit code (`@@tend fail CMD RC`) when it fails. One text,
/// `concat!`ed before each script's own.
macro_rules! step_script {
    () => {
        r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
o=$(mktemp) && e=$(mktemp) || exit 1
trap 'rm -f "$o" "$e"' EXIT
step() {
  printf '@@tend run'; printf ' %s' "$@"; echo
  "$@" </dev/null >"$o" 2>"$e"; rc=$?
  cat "$o"; cat "$e" >&2
  if [ "$rc" != 0 ]; then say "fail $1 $rc"; exit "$rc"; fi
}
"#
    };
}

/// The `Module` impl of a module that is always planned as scripts by `$plan(ctx, args)`
/// (read, edit here, write): written once so such modules differ only in what they do.
macro_rules! planned_module {
    ($ty:ty, $name:literal, $params:expr, $plan:path) => {
        planned_module!($ty, $name, $params, $plan, free_form = None);
    };
    ($ty:ty, $name:literal, $params:expr, $plan:path,free_form = $free:expr) => {
        impl $crate::modules::Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn params(&self) -> &'static [$crate::modules::Param] {
                $params
            }
            fn free_form(&self) -> Option<&'static str> {
                $free
            }
            fn scripted(&self) -> bool {
                true
            }
            fn plan(
                &self,
                ctx: &$crate::modules::Ctx<'_>,
                args: &$crate::modules::Args,
            ) -> Option<Result<$crate::modules::Plan, $crate::modules::ModuleError>> {
                Some($plan(ctx, args))
            }
            fn run<'a>(
                &'a self,
                ctx: &'a $crate::modules::Ctx<'a>,
                args: &'a $crate::modules::Args,
            ) -> $crate::modules::BoxFuture<'a, Result<$crate::modules::ModuleResult, $crate::modules::ModuleError>>
            {
                $crate::modules::run_planned($plan(ctx, args), ctx)
            }
        }
    };
}

/// The `Module` impl of a module whose work is the async `$run(ctx, args)` (several round
/// trips, decided as it goes).
macro_rules! async_module {
    ($ty:ty, $name:literal, $params:expr, $run:path) => {
        impl $crate::modules::Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn params(&self) -> &'static [$crate::modules::Param] {
                $params
            }
            fn run<'a>(
                &'a self,
                ctx: &'a $crate::modules::Ctx<'a>,
                args: &'a $crate::modules::Args,
            ) -> $crate::modules::BoxFuture<'a, Result<$crate::modules::ModuleResult, $crate::modules::ModuleError>>
            {
                Box::pin($run(ctx, args))
            }
        }
    };
}

mod apt;
mod apt_key;
mod apt_repository;
mod archive;
mod args;
mod authorized_key;
mod blockinfile;
mod command;
mod copy;
mod cron;
mod debug;
mod dnf;
mod fetch;
mod file;
mod find;
mod firewall;
mod get_url;
mod git;
mod group;
mod hostname;
mod include_vars;
mod ini_file;
mod known_hosts;
mod lineinfile;
mod migrate;
mod mount;
pub mod mysql;
mod nginx;
mod package;
mod package_facts;
mod pause;
mod ping;
mod release;
mod replace;
mod rpm_key;
mod script;
mod seboolean;
mod selinux;
mod service;
mod service_facts;
mod setup;
mod slurp;
mod stat;
mod synchronize;
mod sysctl;
mod systemd;
mod tempfile;
mod textfile;
mod timezone;
mod unarchive;
mod uri;
mod user;
mod wait_for;
mod yum_repository;

pub use args::{Args, Kind, Param, check_literal_args, coerce};

use crate::template::{Engine, Scope};
use crate::transport::{Failure, Host, Output, RemoteCommand, TransportError, shell::quote};
use serde_json::{Map, Value as Json};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so modules can live in one registry.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a module does its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// On the host, through its connection.
    Host,
    /// On the control node only (no connection needed: `debug`, `set_fact`, `uri`, ...).
    Controller,
}

/// A module: a name, its parameters and how it runs.
pub trait Module: Send + Sync + 'static {
    /// The Ansible name (`copy`, `file`, ...).
    fn name(&self) -> &'static str;
    /// Accepted parameters.
    fn params(&self) -> &'static [Param];
    /// The parameter that receives free-form text (`command: ls -l`), if any.
    fn free_form(&self) -> Option<&'static str> {
        None
    }
    /// The parameter naming a control-node file and the role subdirectory it is looked up in
    /// (`template` → `src` in `templates/`), so a missing file is found before running.
    fn local_file(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    /// Accepts any parameter name (`set_fact`).
    fn open_params(&self) -> bool {
        false
    }
    /// Where it runs.
    fn runs(&self) -> Runs {
        Runs::Host
    }
    /// Whether [`Module::plan`] usually gives one script: lets the executor group this task with
    /// its neighbours before any host is asked.
    fn scripted(&self) -> bool {
        false
    }
    /// The task as one script (or a result known without the host), for modules that need
    /// exactly one round trip with these arguments; `None` when they need more. Lets the
    /// executor send several consecutive tasks to a host in one channel. The script's exit
    /// status must be 0 unless the task failed: tasks sent after it run only after a 0.
    fn plan(&self, _ctx: &Ctx<'_>, _args: &Args) -> Option<Result<Plan, ModuleError>> {
        None
    }
    /// Probes and (outside check mode) applies.
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>>;
}

/// Everything a module may use while it runs on one host.
pub struct Ctx<'a> {
    /// The host, running commands as the task's `become` says (`None` for controller modules,
    /// and while a task is only planned).
    pub remote: Option<&'a Host>,
    /// The inventory name of the host.
    pub host: &'a str,
    /// Check mode: probe only.
    pub check: bool,
    /// Report diffs.
    pub diff: bool,
    /// Time limit per command.
    pub timeout: Option<Duration>,
    /// Environment variables for commands (`environment:`).
    pub environment: &'a [(String, String)],
    /// Templates, for modules that render (`template`, `debug var=`, `assert`).
    pub engine: &'a Engine,
    /// The host's variables.
    pub scope: &'a Scope,
    /// Where `src:` files are looked up (role files/templates, playbook dir).
    pub search_paths: &'a [PathBuf],
}

impl Ctx<'_> {
    /// The host handle; controller modules have none.
    pub fn remote(&self) -> Result<&Host, ModuleError> {
        self.remote
            .ok_or_else(|| ModuleError::Failed("this module needs a connection to the host".into()))
    }

    /// Runs a shell script on the host, with the task's environment, become and timeout. The
    /// script travels on stdin (see [`crate::transport::shell::command_line`]): its text is in
    /// no process's command line on the host.
    pub async fn run(&self, script: &str, stdin: Option<Vec<u8>>) -> Result<Output, ModuleError> {
        let mut text = String::new();
        for (k, v) in self.environment {
            text.push_str(&format!("export {k}={}\n", quote(v)));
        }
        text.push_str(script);
        let command = RemoteCommand::new(text).timeout(self.timeout);
        Ok(self.remote()?.run(&command, stdin.as_deref().into()).await?)
    }

    /// Runs a plan from [`Module::plan`] on its own.
    pub async fn run_plan(&self, plan: Plan) -> Result<ModuleResult, ModuleError> {
        match plan {
            Plan::Local(r) => Ok(*r),
            Plan::Remote(mut script) => loop {
                let out = self.run(&script.text, script.stdin).await?;
                match (script.finish)(out)? {
                    Next::Done(r) => return Ok(*r),
                    Next::Then(next) => script = next,
                }
            },
        }
    }

    /// Finds a local file for `src:` in the search paths (absolute paths as given).
    pub fn find_file(&self, name: &str, subdir: &str) -> Result<PathBuf, ModuleError> {
        let path = PathBuf::from(name);
        if path.is_absolute() {
            return if path.exists() {
                Ok(path)
            } else {
                Err(ModuleError::Failed(format!("`{name}` not found on the control node")))
            };
        }
        for base in self.search_paths {
            for candidate in [base.join(subdir).join(name), base.join(name)] {
                if candidate.exists() {
                    return Ok(candidate);
                }
            }
        }
        let searched: Vec<String> = self
            .search_paths
            .iter()
            .map(|p| p.join(subdir).display().to_string())
            .collect();
        Err(ModuleError::Failed(format!(
            "`{name}` not found (searched {})",
            searched.join(", ")
        )))
    }
}

/// What a script's output leads to: the task's result, or one more script (a file read, then
/// written).
pub enum Next {
    /// The task is done.
    Done(Box<ModuleResult>),
    /// Run this next, before any later task.
    Then(Script),
}

/// Reads a script's output.
pub type Finish = Box<dyn FnOnce(Output) -> Result<Next, ModuleError> + Send + Sync>;

/// A task's work on a host as a remote script, and how its output becomes the result.
pub struct Script {
    /// Shell text, run by `sh` with the task's environment, `become` and the host's connection.
    pub text: String,
    /// Its standard input.
    pub stdin: Option<Vec<u8>>,
    /// Reads the output.
    pub finish: Finish,
    /// May be followed by another script ([`Next::Then`]): nothing else is sent after it until
    /// its output has been read.
    pub chains: bool,
}

impl Script {
    /// A script whose output gives the result.
    pub fn new(
        text: String,
        stdin: Option<Vec<u8>>,
        finish: impl FnOnce(Output) -> Result<ModuleResult, ModuleError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            chains: false,
            ..Self::chained(text, stdin, move |out| finish(out).map(|r| Next::Done(Box::new(r))))
        }
    }

    /// A script whose output may call for another one.
    pub fn chained(
        text: String,
        stdin: Option<Vec<u8>>,
        finish: impl FnOnce(Output) -> Result<Next, ModuleError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            text,
            stdin,
            finish: Box::new(finish),
            chains: true,
        }
    }
}

/// The [`Module`] impl of a module that is always one script: `$plan(&Args) -> Result<Plan,
/// ModuleError>` gives it, both for grouping with neighbouring tasks and for running alone.
macro_rules! one_script_module {
    ($ty:ty, $name:literal, $params:expr, $plan:path) => {
        impl $crate::modules::Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn params(&self) -> &'static [$crate::modules::Param] {
                $params
            }
            fn scripted(&self) -> bool {
                true
            }
            fn plan(
                &self,
                _ctx: &$crate::modules::Ctx<'_>,
                args: &$crate::modules::Args,
            ) -> Option<Result<$crate::modules::Plan, $crate::modules::ModuleError>> {
                Some($plan(args))
            }
            fn run<'a>(
                &'a self,
                ctx: &'a $crate::modules::Ctx<'a>,
                args: &'a $crate::modules::Args,
            ) -> $crate::modules::BoxFuture<'a, Result<$crate::modules::ModuleResult, $crate::modules::ModuleError>>
            {
                $crate::modules::run_planned($plan(args), ctx)
            }
        }
    };
}
pub(crate) use one_script_module;

/// `run` for modules whose plan is always one script.
pub fn run_planned<'a>(
    plan: Result<Plan, ModuleError>,
    ctx: &'a Ctx<'a>,
) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
    Box::pin(async move { ctx.run_plan(plan?).await })
}

/// How a module will do a task on a host, decided before anything runs.
pub enum Plan {
    /// The result is known without the host (`command` in check mode).
    Local(Box<ModuleResult>),
    /// A script (and maybe one after it).
    Remote(Script),
}

/// A before/after pair for `--diff`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Diff {
    /// What the diff is about (a path, `state`).
    pub path: String,
    /// Old text.
    pub before: String,
    /// New text.
    pub after: String,
}

/// What a module did (or would do, in check mode).
#[derive(Debug, Clone, Default)]
pub struct ModuleResult {
    /// The host changed (or would change).
    pub changed: bool,
    /// The module failed (a command's non-zero exit, a failed assertion).
    pub failed: bool,
    /// Nothing was done on purpose (`creates` exists, command in check mode).
    pub skipped: bool,
    /// Human message.
    pub msg: Option<String>,
    /// Exit code of the command the module ran, when it matters.
    pub rc: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// The command that ran, for failure reports.
    pub cmd: Option<String>,
    /// Diffs for `--diff`.
    pub diff: Vec<Diff>,
    /// Extra fields for `register` (`stat`, `content`, ...).
    pub data: Map<String, Json>,
    /// Variables the module sets on the host (`set_fact`).
    pub facts: Map<String, Json>,
    /// Facts the module adds to the host's `ansible_facts` (`setup`, `service_facts`), so that
    /// later tasks see them as `ansible_facts.NAME` and `ansible_NAME`, as after gathering.
    pub host_facts: Map<String, Json>,
}

impl ModuleResult {
    /// A result that changed (or not) with nothing else.
    pub fn changed(changed: bool) -> Self {
        Self {
            changed,
            ..Self::default()
        }
    }

    /// Fills stdout, stderr and rc from a command's output.
    pub fn with_output(mut self, out: &Output) -> Self {
        self.rc = out.rc;
        self.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        self.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self
    }
}

/// Why a module could not do its job.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModuleError {
    /// The connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Arguments were wrong after templating.
    #[error("{0}")]
    Args(String),
    /// The module failed with a message.
    #[error("{0}")]
    Failed(String),
    /// A remote step failed: the command, its exit code and its output.
    #[error("{}", .0.message)]
    Remote(Failure),
}

impl ModuleError {
    /// A failed remote step, from its output.
    pub fn remote(msg: impl Into<String>, cmd: impl Into<String>, out: &Output) -> Self {
        Self::Remote(Failure::from_output(msg, cmd, out))
    }
}

/// A step of an operation run by a module (`release`): its failure is the module's.
impl From<crate::transport::StepError> for ModuleError {
    fn from(e: crate::transport::StepError) -> Self {
        match e.fault {
            crate::transport::StepFault::Transport(t) => Self::Transport(t),
            crate::transport::StepFault::Remote(f) => Self::Remote(f),
        }
    }
}

static REGISTRY: &[&dyn Module] = &[
    &command::Command,
    &command::Shell,
    &command::Raw,
    &debug::Debug,
    &debug::SetFact,
    &debug::Assert,
    &debug::Fail,
    &include_vars::IncludeVars,
    &copy::Copy,
    &copy::Template,
    &file::File,
    &stat::Stat,
    &mysql::MysqlDb,
    &mysql::MysqlUser,
    &mysql::MysqlQuery,
    &mysql::MysqlReplication,
    &mysql::MysqlVariables,
    &mysql::MysqlInfo,
    &nginx::NginxSite,
    &nginx::NginxUpstream,
    &release::Release,
    &migrate::Migrate,
    &mount::Mount,
    &lineinfile::LineInFile,
    &blockinfile::BlockInFile,
    &replace::Replace,
    &get_url::GetUrl,
    &git::Git,
    &synchronize::Synchronize,
    &unarchive::Unarchive,
    &fetch::Fetch,
    &wait_for::WaitFor,
    &uri::Uri,
    &pause::Pause,
    &apt::Apt,
    &apt_repository::AptRepository,
    &apt_key::AptKey,
    &dnf::Dnf,
    &dnf::Yum,
    &yum_repository::YumRepository,
    &rpm_key::RpmKey,
    &package::Package,
    &package_facts::PackageFacts,
    &service::Service,
    &service_facts::ServiceFacts,
    &setup::Setup,
    &setup::GatherFacts,
    &ping::Ping,
    &tempfile::Tempfile,
    &ini_file::IniFile,
    &systemd::Systemd("systemd"),
    &systemd::Systemd("systemd_service"),
    &user::User,
    &group::Group,
    &timezone::Timezone,
    &hostname::Hostname,
    &selinux::Selinux,
    &seboolean::Seboolean,
    &firewall::Firewall {
        name: "ufw",
        tool: "ufw",
        params: firewall::UFW_PARAMS,
    },
    &firewall::Firewall {
        name: "firewalld",
        tool: "firewall-cmd",
        params: firewall::FIREWALLD_PARAMS,
    },
    &cron::Cron,
    &authorized_key::AuthorizedKey,
    &known_hosts::KnownHosts,
    &sysctl::Sysctl,
    &slurp::Slurp,
    &find::Find,
    &archive::Archive,
    &script::ScriptModule,
];

/// The collections whose modules tend has under their short names, with those names (Ansible
/// playbooks often write `community.mysql.mysql_user`).
const COLLECTIONS: &[(&str, &[&str])] = &[
    (
        "community.mysql",
        &[
            "mysql_db",
            "mysql_user",
            "mysql_replication",
            "mysql_query",
            "mysql_variables",
            "mysql_info",
        ],
    ),
    (
        "ansible.posix",
        &[
            "sysctl",
            "mount",
            "authorized_key",
            "synchronize",
            "seboolean",
            "selinux",
            "firewalld",
            "acl",
            "at",
            "patch",
        ],
    ),
    (
        "community.general",
        &[
            "ufw",
            "timezone",
            "ini_file",
            "modprobe",
            "locale_gen",
            "pam_limits",
            "archive",
            "make",
            "npm",
            "alternatives",
        ],
    ),
];

/// A module's or action's name without its collection: `ansible.builtin.copy` and
/// `ansible.legacy.copy` are `copy`, `community.mysql.mysql_user` is `mysql_user`; other names
/// are as written.
pub fn short_name(name: &str) -> &str {
    if let Some(short) = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
    {
        return short;
    }
    for (collection, modules) in COLLECTIONS {
        if let Some(short) = name.strip_prefix(collection).and_then(|r| r.strip_prefix('.'))
            && modules.contains(&short)
        {
            return short;
        }
    }
    name
}

/// A module by name, short or fully qualified ([`short_name`]).
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let short = short_name(name);
    REGISTRY.iter().copied().find(|m| m.name() == short)
}

/// Modules of Ansible tend does not have, with their collection: an unknown name that is one of
/// them is said to be missing from tend, not misspelled.
const ELSEWHERE: &[(&str, &str)] = &[
    ("docker_container", "community.docker"),
    ("docker_image", "community.docker"),
    ("docker_compose_v2", "community.docker"),
    ("postgresql_db", "community.postgresql"),
    ("postgresql_user", "community.postgresql"),
    ("haproxy", "community.general"),
    ("homebrew", "community.general"),
    ("snap", "community.general"),
    ("flatpak", "community.general"),
    ("zypper", "community.general"),
    ("pacman", "community.general"),
    ("openssl_privatekey", "community.crypto"),
    ("x509_certificate", "community.crypto"),
    ("openssl_csr", "community.crypto"),
    ("win_service", "ansible.windows"),
    ("win_copy", "ansible.windows"),
    ("k8s", "kubernetes.core"),
    ("helm", "kubernetes.core"),
    ("ec2_instance", "amazon.aws"),
    ("s3_object", "amazon.aws"),
    ("rabbitmq_user", "community.rabbitmq"),
    ("mongodb_user", "community.mongodb"),
    ("redis", "community.general"),
    ("nmcli", "community.general"),
    ("lvol", "community.general"),
    ("lvg", "community.general"),
    ("filesystem", "community.general"),
    ("parted", "community.general"),
    ("ipaddr", "ansible.utils"),
    ("getent", "ansible.builtin"),
    ("dnf5", "ansible.builtin"),
    ("deb822_repository", "ansible.builtin"),
    ("dpkg_selections", "ansible.builtin"),
    ("sysvinit", "ansible.builtin"),
    ("pip", "ansible.builtin"),
    ("assemble", "ansible.builtin"),
    ("pkgng", "community.general"),
    ("openbsd_pkg", "community.general"),
    ("zypper_repository", "community.general"),
    ("slackpkg", "community.general"),
    ("portage", "community.general"),
    ("apk", "community.general"),
    ("expect", "ansible.builtin"),
    ("async_status", "ansible.builtin"),
    ("reboot", "ansible.builtin"),
    ("wait_for_connection", "ansible.builtin"),
    ("add_host", "ansible.builtin"),
    ("group_by", "ansible.builtin"),
    ("debconf", "ansible.builtin"),
    ("iptables", "ansible.builtin"),
    ("set_stats", "ansible.builtin"),
    ("validate_argument_spec", "ansible.builtin"),
    ("modprobe", "community.general"),
    ("pam_limits", "community.general"),
    ("alternatives", "community.general"),
    ("locale_gen", "community.general"),
    ("nagios", "community.general"),
    ("htpasswd", "community.general"),
    ("seport", "community.general"),
    ("gem", "community.general"),
    ("make", "community.general"),
    ("npm", "community.general"),
    ("supervisorctl", "community.general"),
    ("java_keystore", "community.general"),
];

/// A module of Ansible tend does not have, met in a playbook: loading goes on (the task is
/// often for another system, under `when: ansible_os_family == 'RedHat'`), and the task fails,
/// naming it, if it runs.
pub struct Missing {
    name: &'static str,
    collection: &'static str,
}

impl Module for Missing {
    fn name(&self) -> &'static str {
        self.name
    }
    fn params(&self) -> &'static [Param] {
        &[]
    }
    fn open_params(&self) -> bool {
        true
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, _ctx: &'a Ctx<'a>, _args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            Err(ModuleError::Failed(format!(
                "tend has no module `{}` (Ansible has it in the collection `{}`)",
                self.name, self.collection
            )))
        })
    }
}

/// The [`Missing`] module of that name (one per name for the whole run).
pub fn missing(name: &str, collection: &str) -> &'static dyn Module {
    static SEEN: std::sync::Mutex<Vec<&'static Missing>> = std::sync::Mutex::new(Vec::new());
    let Ok(mut seen) = SEEN.lock() else {
        // A poisoned registry only loses sharing.
        return Box::leak(Box::new(Missing {
            name: Box::leak(name.to_string().into_boxed_str()),
            collection: Box::leak(collection.to_string().into_boxed_str()),
        }));
    };
    if let Some(m) = seen.iter().find(|m| m.name == name) {
        return *m;
    }
    let m: &'static Missing = Box::leak(Box::new(Missing {
        name: Box::leak(name.to_string().into_boxed_str()),
        collection: Box::leak(collection.to_string().into_boxed_str()),
    }));
    seen.push(m);
    m
}

/// Where Ansible has a module tend lacks: `(module, collection)`, for an honest "tend has no
/// ..." rather than a misleading "did you mean". A name of a collection other than the builtins
/// is one; a builtin's name only when Ansible has it (else it is misspelled).
pub fn elsewhere(name: &str) -> Option<(String, String)> {
    let (collection, short) = match name.rsplit_once('.') {
        Some((c, s)) if c.contains('.') => (Some(c), s),
        _ => (None, name),
    };
    match collection {
        Some("ansible.builtin" | "ansible.legacy") | None => ELSEWHERE
            .iter()
            .find(|(m, _)| *m == short)
            .map(|(m, c)| (m.to_string(), c.to_string())),
        // A collection: only the modules tend knows Ansible has there; any other name, or a
        // misspelled namespace, is an error, not a module tend lacks.
        Some(c) => ELSEWHERE
            .iter()
            .find(|(m, col)| *m == short && *col == c)
            .map(|(m, col)| (m.to_string(), col.to_string())),
    }
}

/// Every module name, for "did you mean" hints.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|m| m.name())
}

/// Starts the lines a module's remote script prints for the module itself (`@@tend change x`),
/// so they can be told apart from the output of the commands the script runs.
pub const MARK: &str = "@@tend ";

/// A script's output split into its marked lines (mark removed) and the commands' own output,
/// which keeps the marks out of `stdout` in results and failure reports.
pub fn split_marked(out: &Output) -> (Vec<String>, Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    let mut marks = Vec::new();
    let mut rest = String::new();
    for line in text.split_inclusive('\n') {
        match line.strip_prefix(MARK) {
            Some(m) => marks.push(m.trim_end_matches(['\n', '\r']).to_string()),
            None => rest.push_str(line),
        }
    }
    let plain = Output {
        rc: out.rc,
        stdout: rest.into_bytes(),
        stderr: out.stderr.clone(),
    };
    (marks, plain)
}

/// A shell function for module scripts, `fetch URL FILE`: downloads with curl (or wget) on the
/// host, checking certificates unless `$insecure` is 1. The URL reaches curl and wget on their
/// stdin, so credentials in it are in no process's command line.
pub const FETCH_SH: &str = r#"fetch() {
  fetch_url=$1 fetch_to=$2
  if command -v curl >/dev/null 2>&1; then
    set -- -fsSL; if [ "${insecure:-0}" = 1 ]; then set -- "$@" --insecure; fi
    printf 'url = "%s"\n' "$(printf '%s' "$fetch_url" | sed 's/[\\"]/\\&/g')" | curl "$@" -K - -o "$fetch_to"
  elif command -v wget >/dev/null 2>&1; then
    set -- -q; if [ "${insecure:-0}" = 1 ]; then set -- "$@" --no-check-certificate; fi
    printf '%s\n' "$fetch_url" | wget "$@" -i - -O "$fetch_to"
  else echo "neither curl nor wget is installed on $(hostname)" >&2; return 3; fi
}
"#;

/// The start of a module script that works on key material (`apt_key`, `rpm_key`): `say` prints
/// a marked line; `$t` and `$e` are scratch files (key material, a command's stderr) and `$g` a
/// scratch gpg home, all removed on exit; `fail MESSAGE` marks the failure, shows `$e` (less the
/// lines matching `$noise`, if set) and exits 1; `need PROGRAM` fails unless it is installed.
pub const SCRATCH_SH: &str = r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
t=$(mktemp) && e=$(mktemp) && g=$(mktemp -d) || exit 1
trap 'rm -rf "$t" "$e" "$g"' EXIT
fail() { say "fail $*"; if [ -n "${noise:-}" ]; then grep -v -e "$noise" "$e"; else cat "$e"; fi >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "Failed to find required executable \"$1\" on $(hostname)" >&2; : > "$e"; fail "$1 is missing"; }; }
"#;

/// The marked lines of a module script built on [`SCRATCH_SH`], or the error its `fail` line
/// (message, with `cmd` as the command) or its exit status calls for.
pub fn marks_or_failure(module: &str, cmd: &str, host: &str, out: &Output) -> Result<Vec<String>, ModuleError> {
    let (marks, plain) = split_marked(out);
    let failed = marks
        .iter()
        .find_map(|m| m.strip_prefix("fail "))
        .map(|msg| (format!("{module} on {host}: {msg}"), cmd.to_string()));
    match script_error(module, host, failed, out, &plain) {
        Some(e) => Err(e),
        None => Ok(marks),
    }
}

/// The last non-empty line of a command's stderr, else of its stdout: the one-line reason for
/// a failure message (init scripts often explain on stdout).
pub fn last_line(out: &Output) -> String {
    [&out.stderr, &out.stdout]
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .find_map(|t| {
            t.lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// The error a module script's output calls for, if any: its failed step (`(message,
/// command)`, the output's last line added as the reason), else the script's own non-zero exit.
pub fn script_error(
    module: &str,
    host: &str,
    failed: Option<(String, String)>,
    out: &Output,
    plain: &Output,
) -> Option<ModuleError> {
    if let Some((msg, cmd)) = failed {
        let reason = last_line(plain);
        let msg = if reason.is_empty() {
            msg
        } else {
            format!("{msg}: {reason}")
        };
        return Some(ModuleError::remote(msg, cmd, plain));
    }
    (!out.success()).then(|| {
        ModuleError::remote(
            format!("{module}: the script failed on {host}: {}", last_line(plain)),
            module,
            plain,
        )
    })
}

/// A refused upload as a module failure: validation (exit 5) and a concurrent change (exit 6)
/// get their own message; `validate` is named as the command when it refused the file.
pub fn upload_failure(e: crate::transport::UploadError, validate: Option<&str>) -> ModuleError {
    match e {
        crate::transport::UploadError::Transport(t) => ModuleError::Transport(t),
        crate::transport::UploadError::Remote { dest, rc, stderr } => ModuleError::Remote(Failure {
            message: match rc {
                5 => format!("the new content of {dest} failed validation; the old file was kept"),
                6 => format!("{dest} changed on the host while it was being edited; nothing was written (run again)"),
                _ => match stderr.trim().lines().last().filter(|l| !l.trim().is_empty()) {
                    Some(why) => format!("could not write {dest} (nothing was replaced): {}", why.trim()),
                    None => format!("could not write {dest} (nothing was replaced)"),
                },
            },
            command: validate
                .filter(|_| rc == 5)
                .map_or_else(|| format!("write {dest}"), str::to_string),
            rc: Some(rc),
            stdout: String::new(),
            stderr,
        }),
    }
}

pub use crate::transport::{last_error_line, tail};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_lines_are_split_from_command_output() {
        let out = Output {
            rc: Some(3),
            stdout: b"Reading lists\n@@tend install nginx\nDone\n@@tend fail install 100".to_vec(),
            stderr: b"E: broken\n\n".to_vec(),
        };
        let (marks, plain) = split_marked(&out);
        assert_eq!(marks, ["install nginx", "fail install 100"]);
        assert_eq!(plain.stdout, b"Reading lists\nDone\n");
        assert_eq!(plain.rc, Some(3));
        assert_eq!(last_line(&plain), "E: broken");
        let quiet = Output {
            rc: Some(1),
            stdout: b"Starting x: failed!\n".to_vec(),
            stderr: Vec::new(),
        };
        assert_eq!(last_line(&quiet), "Starting x: failed!");
    }
}

/// Running module scripts on this machine in unit tests, with fake commands first on PATH: the
/// branches no lab host can take (systemd, SELinux).
#[cfg(test)]
pub mod fake_host {
    use crate::transport::Output;
    use std::path::Path;

    /// Writes executable `bin/NAME` under `dir` for each `(NAME, script)`; returns the PATH
    /// that finds them first.
    pub fn fake_bins(dir: &Path, bins: &[(&str, &str)]) -> String {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for (name, text) in bins {
            let f = dir.join("bin").join(name);
            std::fs::write(&f, text).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        format!("{}:{}", dir.join("bin").display(), std::env::var("PATH").unwrap())
    }

    /// A fake `systemctl` (logging its arguments to `$T/calls`, the unit in `$u`, then `body`)
    /// and a `systemd` directory under `dir`, as on a host booted with systemd; returns PATH.
    pub fn fake_systemd(dir: &Path, body: &str) -> String {
        std::fs::create_dir_all(dir.join("systemd")).unwrap();
        let text = format!("#!/bin/sh\necho \"$*\" >> \"$T/calls\"\nfor a; do u=$a; done\n{body}");
        fake_bins(dir, &[("systemctl", &text)])
    }

    /// Runs `script` with `sh` and that PATH, `$T` set to `dir`.
    pub fn run_sh(script: &str, path: &str, dir: &Path) -> Output {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", path)
            .env("T", dir)
            .output()
            .unwrap();
        Output {
            rc: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }
}
