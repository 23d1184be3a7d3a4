//! Schema migrations, Flyway-compatible, on the operations core.
//!
//! ```text
//! files (V/U/R .sql, Flyway's checksum, split as the mariadb client splits)
//!   + flyway_schema_history (Flyway's table and rows) ─► info: each migration's state
//!   ─► plan: the server's own answer for each ALTER on an empty copy of its table
//!   ─► up: lease lock + Flyway's GET_LOCK, refuse blocking statements on large tables,
//!      safety snapshot to the control node, one client session per migration with a journal
//!      of completed statements, replicas caught up between migrations; on a failure the
//!      history row is marked failed and the snapshot restored; `--resume` continues
//! ```
//!
//! Everything is read and checked before a connection is opened: a bad file name, a duplicate
//! version, a file that is not UTF-8 or has an unterminated quote is exit 4 with nothing sent.

pub mod apply;
pub mod db;
pub mod files;
pub mod history;
pub mod info;
pub mod plan;
pub mod shape;
pub mod snapshot;
pub mod split;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::modules::mysql::Login;
use crate::settings::{HostVars, Variables};
use std::path::PathBuf;
use std::time::Duration;

/// Every inventory variable `tend migrate` reads, with its default.
pub const VARIABLES: &[(&str, &str)] = &[
    ("migrate_dir", "migrations"),
    ("migrate_database", "{{ shop_db_name | default('') }}"),
    ("migrate_blocking_limit", "100000"),
    ("migrate_max_replica_lag", "30"),
    // (The two defaults above are DEFAULT_LIMIT and DEFAULT_LAG.)
    ("migrate_replica_group", "db_replica"),
    ("migrate_login_user", ""),
    ("migrate_login_password", ""),
];

/// One target's migration settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The migrations directory.
    pub dir: PathBuf,
    /// The schema.
    pub database: String,
    /// Blocking statements on tables above this are refused.
    pub limit: plan::Limit,
    /// How far replicas may fall behind.
    pub max_lag: Duration,
    /// The group whose hosts are waited for.
    pub replica_group: String,
    /// How the client logs in.
    pub login: Login,
}

/// Flags that override the inventory.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--dir`.
    pub dir: Option<PathBuf>,
    /// `--database`.
    pub database: Option<String>,
}

/// Reads host `h`'s settings.
pub fn settings(vars: &Variables, inv: &Inventory, h: usize, over: &Overrides) -> Result<Settings, Diagnostic> {
    let v = HostVars::new(vars, inv, h, VARIABLES);
    let host = inv.hosts[h].name.clone();
    let err = |var: &str, msg: String| v.error(var, msg);
    let text = |var: &str| v.text(var);
    let dir = match &over.dir {
        Some(d) => d.clone(),
        None => PathBuf::from(text("migrate_dir")?),
    };
    let database = match &over.database {
        Some(d) => d.clone(),
        None => text("migrate_database")?,
    };
    if database.is_empty() {
        return Err(Diagnostic::plain(format!("host `{host}`: no database to migrate"))
            .with_hint("give `--database NAME`, or set `migrate_database` (or `shop_db_name`) in the inventory"));
    }
    check_database(&database).map_err(|m| err("migrate_database", m))?;
    let limit_text = text("migrate_blocking_limit")?;
    let limit = plan::Limit::parse(&limit_text).ok_or_else(|| {
        err(
            "migrate_blocking_limit",
            format!("`{limit_text}` is neither a row count (`100000`) nor a size (`500MB`, `2GiB`)"),
        )
    })?;
    let lag = text("migrate_max_replica_lag")?;
    let lag: u64 = lag.parse().map_err(|_| {
        err(
            "migrate_max_replica_lag",
            format!("must be a whole number of seconds, found `{lag}`"),
        )
    })?;
    Ok(Settings {
        dir,
        database,
        limit,
        max_lag: Duration::from_secs(lag.max(1)),
        replica_group: text("migrate_replica_group")?,
        login: Login {
            user: v.optional("migrate_login_user")?,
            password: v.optional("migrate_login_password")?,
            ..Login::default()
        },
    })
}

/// Schema names tend migrates: letters, digits and `_` (they name the lock, the snapshot
/// files and the scratch schema too).
pub fn check_database(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{name}` is not a schema name tend migrates: use letters, digits and `_` (at most 64)"
        ));
    }
    Ok(())
}

/// The lease lock of a schema's migrations (the lock deploys use, on the primary).
pub fn lock_name(database: &str) -> String {
    format!("migrate-{database}")
}

/// How long a migration's lease lasts before it is renewed.
pub const LOCK_TTL: Duration = Duration::from_secs(120);

/// `migrate_blocking_limit` when not set.
pub const DEFAULT_LIMIT: plan::Limit = plan::Limit::Rows(100_000);

/// `migrate_max_replica_lag` when not set, in seconds.
pub const DEFAULT_LAG: u64 = 30;

/// Where safety snapshots go: `$XDG_STATE_HOME/tend/snapshots`, else
/// `~/.local/state/tend/snapshots`.
pub fn snapshot_dir() -> PathBuf {
    crate::output::state_dir("snapshots")
}
