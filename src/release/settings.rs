//! How one host takes releases, from its `deploy_*` inventory variables. The defaults fit the
//! shipped shop stack (Tomcat behind the `shop_app` upstream of the `lb` group), so a shop
//! inventory needs no deploy variables at all; every value may be a template.

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::settings::{HostVars, Variables};
use serde_json::{Map, Value as Json};
use std::time::Duration;

/// Restarts the shop's Tomcat: systemd where it runs, else `catalina.sh`; compiled JSPs of the
/// old release are dropped so the new one is compiled from its own sources.
const SHOP_RESTART: &str = r#"rm -rf /var/lib/tomcat10/work/Catalina/localhost/ROOT
if [ -d /run/systemd/system ]; then exec systemctl restart tomcat10; fi
export CATALINA_HOME=/usr/share/tomcat10 CATALINA_BASE=/var/lib/tomcat10
/usr/share/tomcat10/bin/catalina.sh stop >/dev/null 2>&1
i=0
while pgrep -f '[o]rg.apache.catalina.startup.Bootstrap' >/dev/null && [ $i -lt 60 ]; do
  [ $i = 30 ] && pkill -f '[o]rg.apache.catalina.startup.Bootstrap'
  sleep 0.2; i=$((i + 1))
done
pkill -9 -f '[o]rg.apache.catalina.startup.Bootstrap'
/usr/share/tomcat10/bin/catalina.sh start"#;

/// Every variable the deploy commands read, with its default.
pub const VARIABLES: &[(&str, &str)] = &[
    ("deploy_root", "/srv/shop"),
    ("deploy_keep_releases", "5"),
    ("deploy_unpack", "exploded"),
    ("deploy_shared_dirs", "[]"),
    ("deploy_shared_files", "[]"),
    ("deploy_restart_command", SHOP_RESTART),
    ("deploy_restart_timeout", "120"),
    (
        "deploy_health_url",
        "http://{{ ansible_host | default(inventory_hostname) }}:{{ shop_app_port | default(8080) }}/health.jsp",
    ),
    ("deploy_health_status", "200"),
    ("deploy_health_body", "ok {{ release_id }}"),
    ("deploy_health_timeout", "90"),
    ("deploy_balancer_group", "lb"),
    ("deploy_upstream", "shop_app"),
    (
        "deploy_upstream_file",
        "/etc/nginx/conf.d/upstream-{{ deploy_upstream | default('shop_app') }}.conf",
    ),
    (
        "deploy_upstream_server",
        "{{ ansible_host | default(inventory_hostname) }}:{{ shop_app_port | default(8080) }}",
    ),
    ("deploy_drain_timeout", "30"),
];

/// How an artifact becomes a release directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpack {
    /// A war/zip or tarball is extracted into the release directory (Tomcat's exploded war).
    Exploded,
    /// The artifact is kept as one file inside the release directory.
    Archive,
}

/// The health gate: what the app must answer before it goes back behind the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// URL fetched from the control node.
    pub url: String,
    /// Expected HTTP status.
    pub status: u16,
    /// Text the body must contain (empty: any body).
    pub body: String,
    /// How long the app may take to become healthy.
    pub timeout: Duration,
}

/// Where a host sits in the load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamEntry {
    /// The upstream configuration file on the balancer hosts.
    pub file: String,
    /// The host's `server` address in that file (`addr:port`).
    pub server: String,
}

/// One host's deploy settings, checked before anything connects.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Inventory name.
    pub host: String,
    /// `releases/`, `shared/` and `current` live here.
    pub root: String,
    /// Releases kept after a deploy (current and previous always stay).
    pub keep: usize,
    /// Extract or keep the artifact.
    pub unpack: Unpack,
    /// Directories under `shared/` linked into every release.
    pub shared_dirs: Vec<String>,
    /// Files under `shared/` linked into every release (they must exist).
    pub shared_files: Vec<String>,
    /// Shell command that makes the app serve `current` (empty: none).
    pub restart: String,
    /// Time allowed for the restart command.
    pub restart_timeout: Duration,
    /// The health gate; `None` when `deploy_health_url` is empty.
    pub health: Option<HealthCheck>,
    /// The balancer group whose hosts carry the upstream (empty: no draining).
    pub balancer_group: String,
    /// The host's entry in the upstream; `None` without a balancer.
    pub upstream: Option<UpstreamEntry>,
    /// How long to wait for in-flight requests after draining.
    pub drain_timeout: Duration,
}

/// Reads one host's settings; `release_id` is visible to the templates as `release_id`.
pub fn resolve(vars: &Variables, inv: &Inventory, h: usize, release_id: &str) -> Result<HostSettings, Diagnostic> {
    let mut magic = Map::new();
    magic.insert("release_id".into(), release_id.into());
    let v = HostVars::with_magic(vars, inv, h, VARIABLES, magic);
    let host = inv.hosts[h].name.clone();
    let err = |var: &str, msg: String| v.error(var, msg);
    let value = |var: &str| v.value(var);
    let text = |var: &str| -> Result<String, Diagnostic> {
        match value(var)? {
            Json::String(s) => Ok(s.trim().to_string()),
            Json::Number(n) => Ok(n.to_string()),
            Json::Null => Ok(String::new()),
            other => Err(err(var, format!("must be a string, found `{other}`"))),
        }
    };
    let number = |var: &str| -> Result<u64, Diagnostic> {
        let t = text(var)?;
        t.parse::<u64>()
            .map_err(|_| err(var, format!("must be a whole number, found `{t}`")))
    };
    let paths = |var: &str| -> Result<Vec<String>, Diagnostic> {
        let v = match value(var)? {
            Json::String(s) if s.trim().starts_with('[') => {
                serde_json::from_str(&s).map_err(|_| err(var, format!("must be a list of paths, found `{s}`")))?
            }
            v => v,
        };
        let items = match v {
            Json::Array(items) => items,
            Json::Null => Vec::new(),
            other => return Err(err(var, format!("must be a list of paths, found `{other}`"))),
        };
        items
            .into_iter()
            .map(|item| match item {
                Json::String(p) => relative_path(&p).map_err(|m| err(var, m)),
                other => Err(err(var, format!("must be a list of paths, found item `{other}`"))),
            })
            .collect()
    };
    let root = text("deploy_root")?;
    if !root.starts_with('/') || root.len() < 2 || root.split('/').any(|c| c == "..") {
        return Err(err("deploy_root", format!("must be an absolute path, found `{root}`")));
    }
    let root = root.trim_end_matches('/').to_string();
    let keep = number("deploy_keep_releases")?;
    if keep < 1 {
        return Err(err("deploy_keep_releases", "must be at least 1".into()));
    }
    let unpack = match text("deploy_unpack")?.as_str() {
        "exploded" => Unpack::Exploded,
        "archive" => Unpack::Archive,
        other => {
            return Err(err(
                "deploy_unpack",
                format!("must be `exploded` or `archive`, found `{other}`"),
            ));
        }
    };
    let url = text("deploy_health_url")?;
    let health = if url.is_empty() {
        None
    } else {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(
                "deploy_health_url",
                format!("must be an http(s) URL, found `{url}`"),
            ));
        }
        let status = number("deploy_health_status")?;
        if !(100..=599).contains(&status) {
            return Err(err("deploy_health_status", format!("`{status}` is not an HTTP status")));
        }
        Some(HealthCheck {
            url,
            status: status as u16,
            body: text("deploy_health_body")?,
            timeout: Duration::from_secs(number("deploy_health_timeout")?.max(1)),
        })
    };
    let balancer_group = text("deploy_balancer_group")?;
    let upstream = if balancer_group.is_empty() || inv.group_index(&balancer_group).is_none() {
        None
    } else {
        let file = text("deploy_upstream_file")?;
        if !file.starts_with('/') {
            return Err(err(
                "deploy_upstream_file",
                format!("must be an absolute path, found `{file}`"),
            ));
        }
        let server = text("deploy_upstream_server")?;
        if server.is_empty() || server.contains(char::is_whitespace) || server.contains(';') {
            return Err(err(
                "deploy_upstream_server",
                format!("must be one `address:port`, found `{server}`"),
            ));
        }
        Some(UpstreamEntry { file, server })
    };
    Ok(HostSettings {
        host: host.clone(),
        root,
        keep: keep as usize,
        unpack,
        shared_dirs: paths("deploy_shared_dirs")?,
        shared_files: paths("deploy_shared_files")?,
        restart: text("deploy_restart_command")?,
        restart_timeout: Duration::from_secs(number("deploy_restart_timeout")?.max(1)),
        health,
        balancer_group,
        upstream,
        drain_timeout: Duration::from_secs(number("deploy_drain_timeout")?),
    })
}

/// A path inside a release: relative, no `..`, no empty or odd components.
fn relative_path(p: &str) -> Result<String, String> {
    let p = p.trim().trim_end_matches('/');
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!(
            "`{p}` must be a relative path inside the release, without `..`"
        ));
    }
    Ok(p.to_string())
}

/// Release ids become directory names: letters, digits, `.`, `_`, `-`, not starting with `.`.
pub fn check_release_id(id: &str) -> Result<(), Diagnostic> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(
            Diagnostic::plain(format!("release id `{id}` is not usable as a directory name"))
                .with_hint("use letters, digits, `.`, `_` and `-`, not starting with `.` (at most 100 characters)"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids_are_plain_directory_names() {
        assert!(check_release_id("2026.11.25-1").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "..", "x;rm"] {
            assert!(check_release_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shared_paths_stay_inside_the_release() {
        assert_eq!(relative_path("logs/").as_deref(), Ok("logs"));
        assert!(relative_path("../etc").is_err());
        assert!(relative_path("/etc").is_err());
        assert!(relative_path("a//b").is_err());
    }
}
