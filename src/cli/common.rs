//! Flags and steps shared by the commands that work on hosts.

use super::CliError;
use crate::diagnostic::Diagnostic;
use crate::inventory::{self, Inventory};
use crate::transport::{ConnectOptions, HostKeyPolicy, Target, TargetOverrides};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where the inventory comes from.
#[derive(Debug, Clone, Args)]
pub struct InventoryOpts {
    /// Inventory file or directory (Ansible YAML format); repeatable [default: ./inventory.yaml]
    #[arg(short = 'i', long = "inventory", value_name = "FILE|DIR", env = "TEND_INVENTORY")]
    pub inventory: Vec<PathBuf>,
}

impl InventoryOpts {
    /// Loads the inventory, defaulting to `inventory.yaml` in the current directory.
    pub fn load(&self) -> Result<Inventory, CliError> {
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
        Ok(inventory::load(&paths)?)
    }
}

/// How to reach hosts.
#[derive(Debug, Clone, Args)]
pub struct ConnectionOpts {
    /// Further restrict the hosts to those matching this pattern
    #[arg(short = 'l', long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// How many hosts to work on at once
    #[arg(short = 'f', long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub forks: u32,
    /// Run as another user (sudo), like Ansible's `become`
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    /// The user to become [default: root]
    #[arg(long, value_name = "USER")]
    pub become_user: Option<String>,
    /// Trust host keys seen for the first time and add them to known_hosts (changed keys are
    /// still refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Seconds to wait for an SSH connection
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
}

impl ConnectionOpts {
    /// Resolves `pattern` (and `--limit`) to targets; every connection variable is checked here.
    pub fn targets(&self, inv: &Inventory, pattern: &str) -> Result<Vec<Target>, CliError> {
        let selected = inventory::select(inv, pattern, self.limit.as_deref())?;
        let overrides = TargetOverrides {
            escalate: self.become_ || self.become_user.is_some(),
            become_user: self.become_user.clone(),
        };
        selected
            .into_iter()
            .map(|h| Target::from_host(&inv.hosts[h], &overrides).map_err(CliError::from))
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
pub fn raise_fd_limit() {
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

/// A multi-threaded runtime for the host work.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?)
}

/// The shared shape of ad-hoc commands: `work` on every target (Ctrl-C stops new hosts), each
/// host's report printed as it finishes, then the summary line; returns the exit code.
pub fn run_ad_hoc<T, W, F>(
    targets: Vec<Target>,
    options: ConnectOptions,
    forks: u32,
    format: crate::output::Format,
    work: W,
    report: impl Fn(crate::fleet::HostResult<T>) -> crate::output::HostReport,
) -> Result<crate::exit::Code, CliError>
where
    T: Send + 'static,
    W: Fn(std::sync::Arc<crate::transport::Connection>, Target) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    raise_fd_limit();
    let started = std::time::Instant::now();
    let mut printer = crate::output::Printer::new(format);
    let rt = runtime()?;
    let interrupted = rt.block_on(async {
        let cancel = crate::fleet::interrupt_token();
        crate::fleet::run_on_hosts(
            targets,
            std::sync::Arc::new(options),
            forks as usize,
            cancel.clone(),
            work,
            |r| printer.host(&report(r)),
        )
        .await;
        cancel.is_cancelled()
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    eprintln!(
        "{}",
        printer.summary.line(started.elapsed(), crate::output::Style::stderr())
    );
    Ok(printer.summary.exit_code(interrupted))
}
