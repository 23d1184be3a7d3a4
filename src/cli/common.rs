//! Flags shared by the commands that work on hosts, and the steps every such command takes
//! before its own work: load the inventory with `-e`, resolve targets, start the runtime, the
//! fleet and the event stream.

use super::CliError;
use crate::diagnostic::Diagnostic;
use crate::inventory::{self, Inventory};
use crate::output::{Format, Layout, OutputSettings};
use crate::settings::{BecomeFlags, Variables};
use crate::transport::{ConnectOptions, Fleet, HostKeyPolicy, Target};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where the inventory comes from, and the extra variables over it.
#[derive(Debug, Clone, Args)]
pub struct InventoryOpts {
    /// Inventory file or directory (Ansible YAML format); repeatable [default: ./inventory.yaml]
    #[arg(short = 'i', long = "inventory", value_name = "FILE|DIR", env = "TEND_INVENTORY")]
    pub inventory: Vec<PathBuf>,
    /// Extra variables, highest precedence (connection variables included): `k=v k2=v2`,
    /// JSON/YAML `{"k": 1}`, or `@file.yaml`; repeatable
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    #[command(flatten)]
    pub vault: super::vault::VaultOpts,
}

impl InventoryOpts {
    /// Whether an inventory was given (`-i`, TEND_INVENTORY) or `inventory.yaml` is here: for
    /// commands that use one only when there is one.
    pub fn given(&self) -> bool {
        !self.inventory.is_empty() || std::path::Path::new("inventory.yaml").exists()
    }

    /// Loads the inventory (default: `inventory.yaml` in the current directory) and the
    /// variables of its hosts with `-e` over them.
    pub fn load(&self) -> Result<(Inventory, Variables), CliError> {
        self.vault.install()?;
        let extra = crate::settings::extra_vars(&self.extra_vars)?;
        let paths = if self.inventory.is_empty() {
            let default = PathBuf::from("inventory.yaml");
            if !default.exists() {
                return Err(
                    Diagnostic::plain("no inventory: `inventory.yaml` not found in the current directory")
                        .with_hint("pass one with `-i FILE|DIR` or set `TEND_INVENTORY`")
                        .into(),
                );
            }
            vec![default]
        } else {
            self.inventory.clone()
        };
        let inv = inventory::load(&paths)?;
        let vars = Variables::new(&inv, extra);
        Ok((inv, vars))
    }
}

/// How to reach hosts.
#[derive(Debug, Clone, Args)]
pub struct ConnectionOpts {
    /// Further restrict the hosts to those matching this pattern
    #[arg(short = 'l', long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// How many hosts to work on at once
    #[arg(allow_negative_numbers = true, short = 'f', long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub forks: u32,
    /// Run as another user (sudo), like Ansible's `become`; the inventory's `ansible_become`
    /// variables take precedence, as in Ansible
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    /// The user to become [default: root]
    #[arg(long, value_name = "USER", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub become_user: Option<String>,
    /// Ask on the terminal for sudo's password, for hosts whose sudo asks for one (a host's
    /// `ansible_become_password`, kept in a vault, takes precedence)
    #[arg(short = 'K', long)]
    pub ask_become_pass: bool,
    /// Trust host keys seen for the first time and add them to known_hosts (changed keys are
    /// still refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Seconds to wait for an SSH connection
    #[arg(allow_negative_numbers = true, long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
}

impl ConnectionOpts {
    /// `--become`, `--become-user` and `--ask-become-pass` (asked once per run): the lowest
    /// layer of privilege escalation.
    pub fn become_flags(&self) -> Result<BecomeFlags, CliError> {
        static ASKED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let password = if self.ask_become_pass {
            let pw = match ASKED.get() {
                Some(pw) => pw.clone(),
                None => {
                    let pw = crate::vault::keys::prompt_exact("BECOME password: ").map_err(|e| {
                        Diagnostic::plain(format!("--ask-become-pass: {e}")).with_hint(
                            "run at a terminal, or keep the password in a vault as `ansible_become_password`",
                        )
                    })?;
                    ASKED.get_or_init(|| pw).clone()
                }
            };
            Some(pw)
        } else {
            None
        };
        Ok(BecomeFlags {
            enabled: self.become_ || self.become_user.is_some(),
            user: self.become_user.clone(),
            password,
        })
    }

    /// How to reach inventory host `h`; its connection variables are checked here.
    pub fn target(&self, inv: &Inventory, vars: &Variables, h: usize) -> Result<Target, CliError> {
        Ok(Target::new(vars, h, &inv.hosts[h].name, &self.become_flags()?)?)
    }

    /// The balancer (the first host of `lb`, which holds the database proxy) and its address
    /// as the database servers see its sessions; `None` without an `lb` group.
    pub fn balancer(&self, inv: &Inventory, vars: &Variables) -> Result<Option<(Target, String)>, CliError> {
        let Some(h) = inv
            .group_index("lb")
            .and_then(|g| inv.hosts_of_group(g).first().copied())
        else {
            return Ok(None);
        };
        let t = self.target(inv, vars, h)?;
        let address = match &t.kind {
            crate::transport::ConnectionKind::Ssh(s) => s.address.clone(),
            crate::transport::ConnectionKind::Local => "127.0.0.1".into(),
        };
        Ok(Some((t, address)))
    }

    /// Resolves `pattern` (and `--limit`) to targets; every connection variable is checked here.
    pub fn targets(&self, inv: &Inventory, vars: &Variables, pattern: &str) -> Result<Vec<Target>, CliError> {
        inventory::select(inv, pattern, self.limit.as_deref())?
            .into_iter()
            .map(|h| self.target(inv, vars, h))
            .collect()
    }

    /// Settings for every connection of the run; creates the private control-socket directory.
    pub fn connect_options(&self) -> Result<ConnectOptions, CliError> {
        let control_dir = control_dir()?;
        // Without the defaults, ssh's own (slower) key exchange is used: not worth failing for.
        let ssh_defaults = crate::transport::ssh_defaults::prepare(&control_dir).ok();
        Ok(ConnectOptions {
            host_keys: if self.accept_new_host_keys {
                HostKeyPolicy::AcceptNew
            } else {
                HostKeyPolicy::Strict
            },
            connect_timeout: Duration::from_secs(self.connect_timeout),
            control_dir,
            channels_per_host: 8,
            ssh_defaults,
        })
    }

    /// The fleet of the run: its connections, `--forks`, and Ctrl-C (call inside the runtime).
    pub fn fleet(&self, options: ConnectOptions) -> Fleet {
        Fleet::new(options, self.forks as usize, crate::transport::interrupt_token())
    }
}

/// How results are shown and kept.
#[derive(Debug, Clone, Args)]
pub struct OutputOpts {
    /// Output format: `human` (text for people) or `json` (JSON Lines on stdout, see
    /// docs/json-output.md)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Directory for the audit log [default: ~/.local/state/tend/runs]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

impl OutputOpts {
    /// The stream's settings for a command laid out as `layout`.
    pub fn settings(&self, layout: Layout) -> OutputSettings {
        OutputSettings {
            format: self.format,
            layout,
            verbose: 0,
            diff: false,
            log_dir: Some(self.log_dir.clone().unwrap_or_else(crate::output::default_log_dir)),
        }
    }
}

/// A private directory with a short path for ssh control sockets (108-byte limit).
fn control_dir() -> Result<PathBuf, CliError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = PathBuf::from(format!("/tmp/tend-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(anyhow::anyhow!(
            "{} is not a private directory owned by you; remove it and retry",
            dir.display()
        )
        .into());
    }
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    Ok(dir)
}

/// Many hosts mean many sockets and pipes: lift the soft open-files limit to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Runs a command's host work on a multi-threaded runtime and returns what it returns.
pub fn block_on<T, F>(work: F) -> Result<T, CliError>
where
    F: std::future::Future<Output = T>,
{
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let out = rt.block_on(work);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(out)
}

/// Asks a yes/no question on the terminal; `false` without one (then `--yes` is needed).
pub fn confirm(question: &str) -> bool {
    use std::io::IsTerminal as _;
    let asked = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    asked && {
        eprint!("{question} [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
    }
}

/// Asks for a number 1..=n on the terminal; `None` without one or on another answer.
pub fn choose(question: &str, n: usize) -> Option<usize> {
    use std::io::IsTerminal as _;
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return None;
    }
    eprint!("{question} [1-{n}, default 1] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok()?;
    let a = answer.trim();
    if a.is_empty() {
        return Some(0);
    }
    a.parse::<usize>().ok().filter(|i| (1..=n).contains(i)).map(|i| i - 1)
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error of ours.
pub fn print_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
