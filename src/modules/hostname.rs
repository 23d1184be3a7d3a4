//! `hostname`: the host's name now (`hostname NAME`) and at boot (the file its init reads:
//! `/etc/hostname`, Red Hat's `/etc/sysconfig/network`, OpenRC's `/etc/conf.d/hostname`), or
//! `hostnamectl` under systemd. One remote script; files are replaced atomically.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::{Value as Json, json};

/// `hostname`: new hosts are named by the role that sets them up, and the name must survive
/// a reboot.
pub struct Hostname;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("use", Kind::Str).choices(&[
        "alpine", "debian", "freebsd", "generic", "macos", "macosx", "darwin", "openbsd", "openrc", "redhat", "sles",
        "solaris", "systemd",
    ]),
];

/// `$use` is one of `systemd`, `file`, `redhat`, `openrc` (decided here when `auto`).
const SCRIPT: &str = r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
if [ "$use" = auto ]; then
  if [ -d /run/systemd/system ] && command -v hostnamectl >/dev/null 2>&1; then use=systemd
  elif [ -f /etc/sysconfig/network ] && [ ! -f /etc/hostname ]; then use=redhat
  elif [ -f /etc/conf.d/hostname ]; then use=openrc
  else use=file; fi
fi
say "strategy $use"
cur=$(hostname 2>/dev/null || uname -n)
case $use in
  systemd) perm=$(hostnamectl --static 2>/dev/null) ;;
  file) perm=$(cat /etc/hostname 2>/dev/null | head -n1) ;;
  redhat) perm=$(sed -n 's/^HOSTNAME=//p' /etc/sysconfig/network 2>/dev/null | tr -d '"'"'"'' | head -n1) ;;
  openrc) perm=$(sed -n 's/^hostname=//p' /etc/conf.d/hostname 2>/dev/null | tr -d '"'"'"'' | head -n1) ;;
esac
say "current $cur"
say "permanent $perm"
[ "$cur" = "$name" ] && [ "$perm" = "$name" ] && exit 0
say change
[ "$check" = 1 ] && exit 0
# put FILE: writes stdin to FILE through a temporary file beside it.
put() { cat > "$1.tend.$$" && chmod 644 "$1.tend.$$" && mv -f "$1.tend.$$" "$1" || { rm -f "$1.tend.$$"; return 1; }; }
if [ "$perm" != "$name" ]; then
  case $use in
    systemd) hostnamectl set-hostname "$name" || { say "fail hostnamectl"; exit 1; } ;;
    file) printf '%s\n' "$name" | put /etc/hostname || { say "fail /etc/hostname"; exit 1; } ;;
    redhat)
      { grep -v '^HOSTNAME=' /etc/sysconfig/network 2>/dev/null; printf 'HOSTNAME=%s\n' "$name"; } | put /etc/sysconfig/network \
        || { say "fail /etc/sysconfig/network"; exit 1; } ;;
    openrc) printf 'hostname="%s"\n' "$name" | put /etc/conf.d/hostname || { say "fail /etc/conf.d/hostname"; exit 1; } ;;
  esac
fi
if [ "$(hostname 2>/dev/null || uname -n)" != "$name" ]; then
  hostname "$name" || { say "fail hostname"; exit 1; }
fi
"#;

/// A host name as RFC 1123 allows: dot-separated labels of letters, digits and inner hyphens.
fn valid_hostname(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl Module for Hostname {
    fn name(&self) -> &'static str {
        "hostname"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let name = args.str("name").unwrap_or_default();
            if !valid_hostname(name) {
                return Err(ModuleError::Args(format!(
                    "hostname: `{name}` is not a host name (letters, digits, inner `-`, labels joined by `.`)"
                )));
            }
            let strategy = match args.str("use") {
                None => "auto",
                Some("systemd") => "systemd",
                Some("debian" | "generic" | "alpine") => "file",
                Some("redhat" | "sles") => "redhat",
                Some("openrc") => "openrc",
                Some(other) => {
                    return Err(ModuleError::Args(format!(
                        "hostname: `use: {other}` is for systems tend does not manage (it has systemd, debian, generic, alpine, redhat, sles, openrc)"
                    )));
                }
            };
            let script = format!(
                "name={} use={strategy} check={}\n{SCRIPT}",
                quote(name),
                if ctx.check { 1 } else { 0 }
            );
            let out = ctx.run(&script, None).await?;
            let (marks, plain) = split_marked(&out);
            let mark = |k: &str| {
                marks
                    .iter()
                    .find_map(|m| m.strip_prefix(k).and_then(|r| r.strip_prefix(' ').or(Some(r))))
                    .unwrap_or_default()
                    .to_string()
            };
            if let Some(what) = marks.iter().find_map(|m| m.strip_prefix("fail ")) {
                let cmd = match what {
                    "hostnamectl" => format!("hostnamectl set-hostname {name}"),
                    "hostname" => format!("hostname {name}"),
                    file => format!("write {file}"),
                };
                return Err(ModuleError::remote(
                    format!("hostname: `{cmd}` failed on {}: {}", ctx.host, last_line(&plain)),
                    cmd,
                    &plain,
                ));
            }
            if !out.success() {
                return Err(ModuleError::remote(
                    format!("hostname: the script failed on {}: {}", ctx.host, last_line(&plain)),
                    "hostname",
                    &plain,
                ));
            }
            let (current, permanent) = (mark("current"), mark("permanent"));
            let changed = marks.iter().any(|m| m == "change");
            let mut r = ModuleResult::changed(changed);
            r.msg = Some(match (changed, ctx.check) {
                (false, _) => format!("hostname is {name}"),
                (true, true) => format!("would set hostname {current} -> {name} ({})", mark("strategy")),
                (true, false) => format!("hostname {current} -> {name} ({})", mark("strategy")),
            });
            if ctx.diff && changed {
                r.diff.push(Diff {
                    path: "hostname".into(),
                    before: format!("hostname = {current}\npermanent = {permanent}\n"),
                    after: format!("hostname = {name}\npermanent = {name}\n"),
                });
            }
            let short = name.split('.').next().unwrap_or(name);
            let domain = name.split_once('.').map_or("", |(_, d)| d);
            let facts = json!({"hostname": short, "nodename": name, "fqdn": name, "domain": domain});
            if let Json::Object(f) = facts {
                r.host_facts = f;
            }
            r.data.insert("name".into(), name.into());
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_names() {
        for ok in ["web1", "db-2.shop.example", "a", "x1.y2"] {
            assert!(super::valid_hostname(ok), "{ok}");
        }
        for bad in ["", "-web", "web-", "web_1", "a..b", "web 1", "web;id", &"a".repeat(64)] {
            assert!(!super::valid_hostname(bad), "{bad}");
        }
    }
}
