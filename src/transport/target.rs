//! From a host's inventory variables to how to reach it, checked before any connection.

use super::{Become, HostKeyPolicy};
use crate::diagnostic::Diagnostic;
use crate::settings::{BecomeFlags, Variables};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where and how to reach a host.
#[derive(Debug, Clone)]
pub struct Target {
    /// The inventory name.
    pub name: String,
    /// SSH or local.
    pub kind: ConnectionKind,
    /// Privilege escalation for every command, when asked.
    pub escalate: Option<Become>,
}

/// The transport a host uses (`ansible_connection`).
#[derive(Debug, Clone)]
pub enum ConnectionKind {
    /// `ssh` (also `smart`, `paramiko`): OpenSSH.
    Ssh(SshTarget),
    /// `local`: the control node.
    Local,
}

/// SSH connection settings, from Ansible's variable names.
#[derive(Debug, Clone, Default)]
pub struct SshTarget {
    /// `ansible_host`, else the inventory name.
    pub address: String,
    /// `ansible_port`.
    pub port: Option<u16>,
    /// `ansible_user`.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file`.
    pub key_file: Option<PathBuf>,
    /// `-o UserKnownHostsFile=` from the ssh args.
    pub known_hosts_file: Option<PathBuf>,
    /// `-F` from the ssh args.
    pub config_file: Option<PathBuf>,
    /// `-J`/`ProxyJump` from the ssh args.
    pub jump_hosts: Vec<String>,
    /// `StrictHostKeyChecking` from the ssh args.
    pub host_keys: Option<HostKeyPolicy>,
    /// `ConnectTimeout` from the ssh args.
    pub connect_timeout: Option<Duration>,
}

fn host_error(host: &str, message: String) -> Diagnostic {
    Diagnostic::plain(format!("host `{host}`: {message}"))
}

/// A host's connection variables: `-e` over the inventory.
struct HostVars<'a> {
    name: &'a str,
    vars: &'a Variables,
    h: usize,
}

impl HostVars<'_> {
    /// An error about the value of `var`, at the place the inventory wrote it when known.
    fn error(&self, var: &str, message: String) -> Diagnostic {
        match self.vars.origin(self.h, var) {
            Some(span) => span.error(format!("host `{}`: {message}", self.name)),
            None if self.vars.extra().contains_key(var) => host_error(self.name, format!("{message} (from -e)")),
            None => host_error(self.name, message),
        }
    }

    fn text(&self, var: &str) -> Result<Option<String>, Diagnostic> {
        match self.vars.get(self.h, var) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.error(var, format!("`{var}` must be a string, found `{other}`"))),
        }
    }

    fn boolean(&self, var: &str) -> Result<Option<bool>, Diagnostic> {
        match self.vars.get(self.h, var) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => crate::settings::boolean(v).map(Some).ok_or_else(|| {
                let found = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                self.error(var, format!("`{var}` must be a boolean, found `{found}`"))
                    .with_hint("write yes/no, true/false, on/off or 1/0")
            }),
        }
    }
}

/// `ansible_become_password` (or its older name `ansible_become_pass`), taken literally: a
/// template or a vault value no password opened is an error naming it.
fn become_password(host: &HostVars) -> Result<Option<String>, Diagnostic> {
    let var = "ansible_become_password";
    let Some(pw) = host.text(var)?.or(host.text("ansible_become_pass")?) else {
        return Ok(None);
    };
    if let Some(why) = crate::vault::still_sealed(&Value::String(pw.clone())) {
        return Err(host_error(host.name, format!("`{var}`: {why}"))
            .with_hint("give the vault's password: --vault-password-file, --vault-id or --ask-vault-pass"));
    }
    if crate::template::is_template(&pw) {
        return Err(host_error(
            host.name,
            format!("`{var}` is a template, which this command does not render"),
        )
        .with_hint("set the password itself in the variable (in a vault), or use --ask-become-pass"));
    }
    Ok(Some(pw))
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

impl Target {
    /// Reads the connection variables of inventory host `h` (`-e` over the inventory, both over
    /// the `--become` flags); a malformed one is an input error.
    pub fn new(vars: &Variables, h: usize, name: &str, flags: &BecomeFlags) -> Result<Self, Diagnostic> {
        let host = HostVars { name, vars, h };
        let escalate = crate::settings::escalation(
            host.boolean("ansible_become")?,
            host.text("ansible_become_user")?,
            None,
            None,
            flags,
        );
        let escalate = crate::settings::with_become_password(escalate, become_password(&host)?, flags)
            .map_err(|why| host_error(name, why))?;
        if let Some(method) = host.text("ansible_become_method")?
            && method != "sudo"
        {
            return Err(host
                .error(
                    "ansible_become_method",
                    format!("`ansible_become_method: {method}` is not supported"),
                )
                .with_hint("tend escalates with `sudo`; remove the variable or set it to `sudo`"));
        }
        let connection = host.text("ansible_connection")?.unwrap_or_else(|| "ssh".into());
        let kind = match connection.as_str() {
            "ssh" | "smart" | "paramiko" => ConnectionKind::Ssh(ssh_target(&host)?),
            "local" => ConnectionKind::Local,
            other => {
                return Err(host
                    .error(
                        "ansible_connection",
                        format!("`ansible_connection: {other}` is not supported"),
                    )
                    .with_hint("use `ssh` (the default) or `local`"));
            }
        };
        Ok(Self {
            name: name.to_string(),
            kind,
            escalate,
        })
    }

    /// The control node itself, for `delegate_to: localhost` outside the inventory.
    pub fn localhost() -> Self {
        Self {
            name: "localhost".into(),
            kind: ConnectionKind::Local,
            escalate: None,
        }
    }
}

fn ssh_target(host: &HostVars<'_>) -> Result<SshTarget, Diagnostic> {
    let name = host.name;
    let mut t = SshTarget {
        address: host.text("ansible_host")?.unwrap_or_else(|| name.to_string()),
        user: host.text("ansible_user")?.or(host.text("ansible_ssh_user")?),
        key_file: host
            .text("ansible_ssh_private_key_file")?
            .or(host.text("ansible_private_key_file")?)
            .map(|p| expand_home(&p)),
        ..SshTarget::default()
    };
    if let Some(port) = host.text("ansible_port")?.or(host.text("ansible_ssh_port")?) {
        t.port = Some(port.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
            host.error(
                "ansible_port",
                format!("`ansible_port` must be a port number (1-65535), found `{port}`"),
            )
        })?);
    }
    for var in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some(args) = host.text(var)? {
            apply_ssh_args(&mut t, &args).map_err(|m| {
                host.error(var, format!("`{var}`: {m}"))
                    .with_hint("put other ssh settings in `~/.ssh/config` (tend reads it) or a file passed with `-F`")
            })?;
        }
    }
    Ok(t)
}

/// The subset of ssh's command-line options that maps onto tend's connection settings.
fn apply_ssh_args(t: &mut SshTarget, args: &str) -> Result<(), String> {
    let words = shlex::split(args).ok_or_else(|| format!("cannot split `{args}` into words (unbalanced quotes?)"))?;
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let (flag, inline) = if w.len() > 2 && w.starts_with('-') && !w.starts_with("--") {
            (w[..2].to_string(), Some(w[2..].to_string()))
        } else {
            (w.clone(), None)
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("`{flag}` needs a value"))
        };
        match flag.as_str() {
            "-o" => {
                let opt = value()?;
                let (k, v) = opt
                    .split_once('=')
                    .or_else(|| opt.split_once(' '))
                    .ok_or_else(|| format!("`-o {opt}` must be `-o Key=Value`"))?;
                apply_ssh_option(t, k.trim(), v.trim())?;
            }
            "-F" => t.config_file = Some(expand_home(&value()?)),
            "-J" => t.jump_hosts = value()?.split(',').map(str::to_string).collect(),
            "-p" => apply_ssh_option(t, "Port", &value()?)?,
            "-l" => t.user = Some(value()?),
            "-i" => t.key_file = Some(expand_home(&value()?)),
            _ => return Err(format!("unsupported ssh argument `{w}`")),
        }
    }
    Ok(())
}

fn apply_ssh_option(t: &mut SshTarget, key: &str, value: &str) -> Result<(), String> {
    match key.to_ascii_lowercase().as_str() {
        "userknownhostsfile" => t.known_hosts_file = Some(expand_home(value)),
        "stricthostkeychecking" => {
            t.host_keys = Some(match value.to_ascii_lowercase().as_str() {
                "yes" => HostKeyPolicy::Strict,
                "accept-new" => HostKeyPolicy::AcceptNew,
                "no" | "off" => HostKeyPolicy::Off,
                _ => {
                    return Err(format!("`StrictHostKeyChecking={value}` must be yes, accept-new or no"));
                }
            });
        }
        "proxyjump" => t.jump_hosts = value.split(',').map(str::to_string).collect(),
        "connecttimeout" => {
            let secs: u64 = value
                .parse()
                .map_err(|_| format!("`ConnectTimeout={value}` must be seconds"))?;
            t.connect_timeout = Some(Duration::from_secs(secs));
        }
        "port" => {
            t.port = Some(
                value
                    .parse()
                    .map_err(|_| format!("`Port={value}` must be a port number"))?,
            )
        }
        "user" => t.user = Some(value.to_string()),
        "identityfile" => t.key_file = Some(expand_home(value)),
        _ => return Err(format!("unsupported ssh option `{key}`")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(vars: serde_json::Value) -> Result<Target, Diagnostic> {
        target_with(vars, serde_json::Map::new(), &BecomeFlags::default())
    }

    fn target_with(
        vars: serde_json::Value,
        extra: serde_json::Map<String, Value>,
        flags: &BecomeFlags,
    ) -> Result<Target, Diagnostic> {
        let inv = crate::inventory::Inventory {
            hosts: vec![crate::inventory::Host {
                name: "h1".into(),
                vars: vars.as_object().cloned().unwrap_or_default(),
                origins: Default::default(),
                groups: vec![],
            }],
            groups: vec![],
        };
        Target::new(&Variables::new(&inv, extra), 0, "h1", flags)
    }

    #[test]
    fn reads_ansible_connection_vars() {
        let t = target(serde_json::json!({
            "ansible_host": "10.0.0.5", "ansible_port": 2222, "ansible_user": "deploy",
            "ansible_ssh_common_args": "-o UserKnownHostsFile=/k -o StrictHostKeyChecking=accept-new -J bastion",
            "ansible_become": "yes",
        }))
        .unwrap();
        let ConnectionKind::Ssh(s) = t.kind else {
            panic!("not ssh")
        };
        assert_eq!(s.address, "10.0.0.5");
        assert_eq!(s.port, Some(2222));
        assert_eq!(s.user.as_deref(), Some("deploy"));
        assert_eq!(s.known_hosts_file, Some(PathBuf::from("/k")));
        assert_eq!(s.host_keys, Some(HostKeyPolicy::AcceptNew));
        assert_eq!(s.jump_hosts, ["bastion"]);
        assert_eq!(t.escalate, Some(Become::user("root")));
    }

    #[test]
    fn rejects_bad_values_naming_the_host() {
        let e = target(serde_json::json!({"ansible_port": "ssh"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "host `h1`: `ansible_port` must be a port number (1-65535), found `ssh`"
        );
        let e = target(serde_json::json!({"ansible_connection": "winrm"})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("host `h1`: `ansible_connection: winrm` is not supported"),
            "{e}"
        );
        let e = target(serde_json::json!({"ansible_ssh_common_args": "-o ForwardAgent=yes"})).unwrap_err();
        assert!(e.to_string().contains("unsupported ssh option `ForwardAgent`"), "{e}");
    }

    #[test]
    fn extra_vars_beat_the_inventory_and_variables_beat_flags() {
        let mut extra = serde_json::Map::new();
        extra.insert("ansible_user".into(), "bob".into());
        let flags = BecomeFlags {
            enabled: true,
            user: Some("cli".into()),
            password: None,
        };
        let t = target_with(
            serde_json::json!({"ansible_user": "alice", "ansible_become_user": "app"}),
            extra,
            &flags,
        )
        .unwrap();
        let ConnectionKind::Ssh(s) = t.kind else {
            panic!("not ssh")
        };
        assert_eq!(s.user.as_deref(), Some("bob"));
        assert_eq!(t.escalate, Some(Become::user("app")));
    }
}
