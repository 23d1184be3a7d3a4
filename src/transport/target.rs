//! From a host's inventory variables to how to reach it, checked before any connection.

use super::{Become, HostKeyPolicy};
use crate::diagnostic::Diagnostic;
use crate::inventory::Host;
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

/// What the command line says for every host.
#[derive(Debug, Clone, Default)]
pub struct TargetOverrides {
    /// `--become`: escalate even where the inventory does not say so.
    pub escalate: bool,
    /// `--become-user`.
    pub become_user: Option<String>,
}

fn host_error(host: &str, message: String) -> Diagnostic {
    Diagnostic::plain(format!("host `{host}`: {message}"))
}

fn text(host: &Host, var: &str) -> Result<Option<String>, Diagnostic> {
    match host.vars.get(var) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(host_error(
            &host.name,
            format!("`{var}` must be a string, found `{other}`"),
        )),
    }
}

fn boolean(host: &Host, var: &str) -> Result<Option<bool>, Diagnostic> {
    match host.vars.get(var) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Ok(Some(true)),
            "no" | "false" | "off" | "0" => Ok(Some(false)),
            _ => Err(host_error(
                &host.name,
                format!("`{var}` must be a boolean, found `{s}`"),
            )),
        },
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => Ok(Some(n.as_i64() == Some(1))),
        Some(other) => Err(host_error(
            &host.name,
            format!("`{var}` must be a boolean, found `{other}`"),
        )),
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

impl Target {
    /// Reads the connection variables of a host; a malformed one is an input error.
    pub fn from_host(host: &Host, overrides: &TargetOverrides) -> Result<Self, Diagnostic> {
        let name = &host.name;
        let become_enabled = overrides.escalate || boolean(host, "ansible_become")?.unwrap_or(false);
        let escalate = if become_enabled {
            if let Some(method) = text(host, "ansible_become_method")?
                && method != "sudo"
            {
                return Err(
                    host_error(name, format!("`ansible_become_method: {method}` is not supported"))
                        .with_hint("tend escalates with `sudo`; remove the variable or set it to `sudo`"),
                );
            }
            let user = overrides
                .become_user
                .clone()
                .or(text(host, "ansible_become_user")?)
                .unwrap_or_else(|| "root".into());
            Some(Become { user })
        } else {
            None
        };
        let connection = text(host, "ansible_connection")?.unwrap_or_else(|| "ssh".into());
        let kind = match connection.as_str() {
            "ssh" | "smart" | "paramiko" => ConnectionKind::Ssh(ssh_target(host)?),
            "local" => ConnectionKind::Local,
            other => {
                return Err(
                    host_error(name, format!("`ansible_connection: {other}` is not supported"))
                        .with_hint("use `ssh` (the default) or `local`"),
                );
            }
        };
        Ok(Self {
            name: name.clone(),
            kind,
            escalate,
        })
    }
}

fn ssh_target(host: &Host) -> Result<SshTarget, Diagnostic> {
    let name = &host.name;
    let mut t = SshTarget {
        address: text(host, "ansible_host")?.unwrap_or_else(|| name.clone()),
        user: text(host, "ansible_user")?.or(text(host, "ansible_ssh_user")?),
        key_file: text(host, "ansible_ssh_private_key_file")?
            .or(text(host, "ansible_private_key_file")?)
            .map(|p| expand_home(&p)),
        ..SshTarget::default()
    };
    if let Some(port) = text(host, "ansible_port")?.or(text(host, "ansible_ssh_port")?) {
        t.port = Some(port.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
            host_error(
                name,
                format!("`ansible_port` must be a port number (1-65535), found `{port}`"),
            )
        })?);
    }
    for var in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some(args) = text(host, var)? {
            apply_ssh_args(&mut t, &args).map_err(|m| {
                host_error(name, format!("`{var}`: {m}"))
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

    fn host(vars: serde_json::Value) -> Host {
        Host {
            name: "h1".into(),
            vars: vars.as_object().cloned().unwrap_or_default(),
            groups: vec![],
        }
    }

    #[test]
    fn reads_ansible_connection_vars() {
        let h = host(serde_json::json!({
            "ansible_host": "10.0.0.5", "ansible_port": 2222, "ansible_user": "deploy",
            "ansible_ssh_common_args": "-o UserKnownHostsFile=/k -o StrictHostKeyChecking=accept-new -J bastion",
            "ansible_become": "yes",
        }));
        let t = Target::from_host(&h, &TargetOverrides::default()).unwrap();
        let ConnectionKind::Ssh(s) = t.kind else {
            panic!("not ssh")
        };
        assert_eq!(s.address, "10.0.0.5");
        assert_eq!(s.port, Some(2222));
        assert_eq!(s.user.as_deref(), Some("deploy"));
        assert_eq!(s.known_hosts_file, Some(PathBuf::from("/k")));
        assert_eq!(s.host_keys, Some(HostKeyPolicy::AcceptNew));
        assert_eq!(s.jump_hosts, ["bastion"]);
        assert_eq!(t.escalate, Some(Become { user: "root".into() }));
    }

    #[test]
    fn rejects_bad_values_naming_the_host() {
        let e = Target::from_host(
            &host(serde_json::json!({"ansible_port": "ssh"})),
            &TargetOverrides::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "host `h1`: `ansible_port` must be a port number (1-65535), found `ssh`"
        );
        let e = Target::from_host(
            &host(serde_json::json!({"ansible_connection": "winrm"})),
            &TargetOverrides::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("host `h1`: `ansible_connection: winrm` is not supported"),
            "{e}"
        );
        let e = Target::from_host(
            &host(serde_json::json!({"ansible_ssh_common_args": "-o ForwardAgent=yes"})),
            &TargetOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unsupported ssh option `ForwardAgent`"), "{e}");
    }
}
