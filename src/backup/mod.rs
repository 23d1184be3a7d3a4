//! Backups on the operations core: a store (a directory on a host of the inventory or on the
//! control node), a catalog of JSON entries in it, and the runbooks that fill it.
//!
//! ```text
//! source (a caught-up replica, its applier stopped: a consistent point the primary never
//! notices; else the primary) ─ mariadb-dump or mariabackup | zstd ─► control node (constant memory,
//! SHA-256 on the way) ─► store host: file.part, renamed when complete ─► catalog entry last
//! ```
//!
//! Backups of both kinds (`take`; the physical kind's own steps in `physical`), binlog
//! shipping (`binlogs`), restores rolled forward to a point (`replay`, `restore`),
//! verification in a scratch server (`verify`) and retention (`retention`).

pub mod binlogs;
pub mod catalog;
pub mod physical;
pub mod replay;
pub mod restore;
pub mod retention;
pub mod store;
pub mod take;
pub mod verify;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::modules::mysql::Login;
use crate::settings::{HostVars, Variables};
use std::path::PathBuf;
use store::Store;

/// Every inventory variable the backup commands read, with its default.
pub const VARIABLES: &[(&str, &str)] = &[
    ("backup_store_host", ""),
    ("backup_store_dir", ""),
    ("backup_login_user", ""),
    ("backup_login_password", ""),
    ("shop_db_proxy_upstream", "shop_db"),
    ("backup_verify_host", ""),
    ("backup_verify_port", "3399"),
    ("backup_max_age", "26h"),
    ("backup_keep_daily", "7"),
    ("backup_keep_weekly", "4"),
    ("backup_keep_monthly", "6"),
];

/// One host's backup settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where backups go.
    pub store: Store,
    /// How the client and the dump log in.
    pub login: Login,
    /// The balancer's database upstream (`nginx_upstream` name), where writes are stopped.
    pub proxy_upstream: String,
    /// Where backups are verified (a database host; empty: the first replica, else the primary).
    pub verify_host: String,
    /// The scratch server's port.
    pub verify_port: u16,
    /// `tend backup status` fails when the newest verified backup is older.
    pub max_age: std::time::Duration,
    /// Retention: the newest backup of each of this many days, ISO weeks and months is kept.
    pub keep: Keep,
}

/// How many daily, weekly and monthly backups retention keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// Days.
    pub daily: usize,
    /// ISO weeks.
    pub weekly: usize,
    /// Months.
    pub monthly: usize,
}

/// `90s`, `45m`, `26h`, `7d` or plain seconds.
pub fn parse_age(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (n, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = n.trim().parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n * 60,
        'h' => n * 3600,
        'd' => n * 86400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

/// The newest complete backup that a verification proved, and its start (Unix seconds): what
/// `backup status` and `check` measure the age of.
pub fn newest_verified(backups: &[catalog::Backup]) -> Option<(&catalog::Backup, i64)> {
    backups
        .iter()
        .rev()
        .find(|b| b.state == catalog::State::Complete && b.verified().is_some())
        .map(|b| (b, restore::started(b)))
}

/// Reads host `h`'s settings; the store host must be a host of the inventory.
pub fn settings(vars: &Variables, inv: &Inventory, h: usize) -> Result<Settings, Diagnostic> {
    let v = HostVars::new(vars, inv, h, VARIABLES);
    let text = |var: &str| v.text(var);
    let store_host = text("backup_store_host")?;
    let dir = text("backup_store_dir")?;
    let store = if store_host.is_empty() {
        let dir = if dir.is_empty() {
            default_store()
        } else {
            PathBuf::from(dir)
        };
        Store::Local(dir)
    } else {
        if inv.hosts.iter().all(|x| x.name != store_host) {
            let mut d = Diagnostic::plain(format!(
                "`backup_store_host: {store_host}` is not a host of the inventory"
            ));
            if let Some(m) = crate::diagnostic::did_you_mean(&store_host, inv.hosts.iter().map(|x| x.name.as_str())) {
                d = d.with_hint(format!("did you mean `{m}`?"));
            }
            return Err(d);
        }
        let dir = if dir.is_empty() {
            "/var/backups/tend".to_string()
        } else {
            dir
        };
        if !dir.starts_with('/') || dir.split('/').any(|c| c == "..") {
            return Err(Diagnostic::plain(format!(
                "`backup_store_dir: {dir}` must be an absolute path on {store_host}"
            )));
        }
        Store::Remote {
            host: store_host,
            dir: dir.trim_end_matches('/').to_string(),
        }
    };
    Ok(Settings {
        store,
        login: Login {
            user: v.optional("backup_login_user")?,
            password: v.optional("backup_login_password")?,
            ..Login::default()
        },
        verify_host: text("backup_verify_host")?,
        verify_port: {
            let p = text("backup_verify_port")?;
            p.parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Diagnostic::plain(format!("`backup_verify_port: {p}` is not a port number")))?
        },
        max_age: {
            let a = text("backup_max_age")?;
            parse_age(&a).ok_or_else(|| {
                Diagnostic::plain(format!("`backup_max_age: {a}` is not an age")).with_hint("write e.g. 26h, 2d or 90m")
            })?
        },
        keep: {
            let n = |var: &str| -> Result<usize, Diagnostic> {
                let v = text(var)?;
                v.parse()
                    .map_err(|_| Diagnostic::plain(format!("`{var}: {v}` is not a number of backups")))
            };
            Keep {
                daily: n("backup_keep_daily")?,
                weekly: n("backup_keep_weekly")?,
                monthly: n("backup_keep_monthly")?,
            }
        },
        proxy_upstream: {
            let u = text("shop_db_proxy_upstream")?;
            if u.is_empty() || !u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(Diagnostic::plain(format!(
                    "`shop_db_proxy_upstream: {u}` must be an nginx upstream name (letters, digits, `_`, `-`)"
                )));
            }
            u
        },
    })
}

/// The control node's store when none is configured: `$XDG_STATE_HOME/tend/backups`, else
/// `~/.local/state/tend/backups`.
pub fn default_store() -> PathBuf {
    crate::output::state_dir("backups")
}
