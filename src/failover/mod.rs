//! Failover of the shop's MariaDB cluster: which server is the primary now (read from the
//! servers, never from the inventory's group names), planned switchovers that lose nothing or
//! undo themselves, and drills that measure what the applications saw (RTO, RPO) with a write
//! probe through the applications' own path, the balancer's database proxy.
//!
//! ```text
//! topology (every member: role, GTIDs, lag, read_only; the proxy's server)
//!   ─► switchover: old primary read_only, its proxy sessions ended ─► the candidate executes
//!      the old primary's GTID set ─► promoted (applier stopped, writable) ─► the proxy
//!      repointed (nginx -t, reload) ─► [no undo past here] the old primary and the other
//!      replicas replicate from the new one ─► a write through the proxy lands on it
//!   drill: probe ─► switchover ─► steady probing ─► RTO/RPO from the probe's acknowledgements
//! ```

pub mod history;
pub mod probe;
pub mod report;
pub mod switch;
pub mod topology;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::modules::mysql::Login;
use crate::settings::{HostVars, Variables};

/// Every inventory variable the failover commands read, with its default.
pub const VARIABLES: &[(&str, &str)] = &[
    ("shop_db_address", "{{ ansible_host | default(inventory_hostname) }}"),
    ("shop_db_port", "3306"),
    ("shop_db_proxy_port", "3307"),
    ("shop_db_name", "shop"),
    ("shop_db_user", "shop"),
    ("shop_db_password", ""),
    ("shop_repl_user", "repl"),
    ("shop_repl_password", ""),
    ("failover_cooldown", "1h"),
];

/// A member of the cluster as the others and the proxy reach it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Inventory name.
    pub name: String,
    /// The address other servers and the proxy use (`shop_db_address`).
    pub address: String,
    /// The server's port.
    pub port: u16,
}

/// What the failover commands need besides the members.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How tend's own client logs in on each server (`backup_login_*`: tend's administrative
    /// login is the same for every database operation).
    pub login: Login,
    /// The balancer's database upstream.
    pub upstream: String,
    /// The proxy's port on the balancer (the applications' database endpoint).
    pub proxy_port: u16,
    /// The applications' schema, user and password: the probe and the check write as they do.
    pub app: (String, String, String),
    /// The replication user and password a demoted primary replicates with.
    pub repl: (String, String),
    /// Where the drill history lives: the backup store.
    pub store: crate::backup::store::Store,
    /// A second switchover or promotion within this is refused without `--force`.
    pub cooldown: std::time::Duration,
}

/// Reads member `h` and, from the first member, the settings.
pub fn member(vars: &Variables, inv: &Inventory, h: usize) -> Result<Member, Diagnostic> {
    let v = HostVars::new(vars, inv, h, VARIABLES);
    let address = v.text("shop_db_address")?;
    if address.is_empty() || address.contains([';', '{', '}', ' ', '\t', '\n', '\'', '"']) {
        return Err(v.error("shop_db_address", format!("`{address}` is not a server address")));
    }
    Ok(Member {
        name: inv.hosts[h].name.clone(),
        address,
        port: port(&v, "shop_db_port")?,
    })
}

fn port(v: &HostVars, var: &str) -> Result<u16, Diagnostic> {
    let p = v.text(var)?;
    p.parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| v.error(var, format!("`{p}` is not a port number")))
}

/// The failover settings, read on host `h` (the cluster's first member).
pub fn settings(vars: &Variables, inv: &Inventory, h: usize) -> Result<Settings, Diagnostic> {
    let b = crate::backup::settings(vars, inv, h)?;
    let v = HostVars::new(vars, inv, h, VARIABLES);
    Ok(Settings {
        login: b.login,
        upstream: b.proxy_upstream,
        proxy_port: port(&v, "shop_db_proxy_port")?,
        app: (
            v.text("shop_db_name")?,
            v.text("shop_db_user")?,
            v.text("shop_db_password")?,
        ),
        repl: (v.text("shop_repl_user")?, v.text("shop_repl_password")?),
        store: b.store,
        cooldown: {
            let c = v.text("failover_cooldown")?;
            if c == "0" {
                std::time::Duration::ZERO
            } else {
                crate::backup::parse_age(&c)
                    .ok_or_else(|| v.error("failover_cooldown", format!("`{c}` is not a duration (1h, 30m, 0)")))?
            }
        },
    })
}

/// The option file that holds a server's role across restarts: `read_only` as the failover
/// left it, read after the provisioned settings (`60-shop.cnf`), so a promoted replica does
/// not come back read-only and a demoted primary does not come back writable.
pub const ROLE_FILE: &str = "90-tend-role.cnf";

/// Writes [`ROLE_FILE`] on a server's host with `$ro` (`ON`/`OFF`) as its `read_only`.
pub const WRITE_ROLE: &str = r#"set -u
conf=""
for c in /etc/mysql/mariadb.conf.d /etc/my.cnf.d /etc/mysql/conf.d; do [ -d "$c" ] && { conf=$c; break; }; done
[ -n "$conf" ] || { echo "no server option directory (/etc/mysql/mariadb.conf.d, /etc/my.cnf.d) for the role file" >&2; exit 4; }
f="$conf/90-tend-role.cnf"
printf '# Managed by tend failover: the role this server was given (%s).\n[mysqld]\nread_only = %s\n' "$why" "$ro" > "$f.tmp" && chmod 644 "$f.tmp" && mv -f "$f.tmp" "$f"
"#;
