//! `ufw` (community.general) and `firewalld` (ansible.posix): tend does not change firewall
//! rules yet. A task fails on the host with the reason: the tool is not installed there, or it
//! is and tend cannot drive it (the task can use `command:` with the tool instead).

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::shell::quote;

/// A firewall module of Ansible tend knows by name: playbooks with it load, and its tasks fail
/// saying why rather than as an unknown module.
pub struct Firewall {
    /// The module's name.
    pub name: &'static str,
    /// The command it drives on the host.
    pub tool: &'static str,
    /// Ansible's parameters, so that a misspelled one is still caught when the playbook loads.
    pub params: &'static [Param],
}

/// community.general.ufw's parameters (values unchecked: tend does not apply them).
pub const UFW_PARAMS: &[Param] = &[
    Param::new("state", Kind::Any),
    Param::new("default", Kind::Any).aliases(&["policy"]),
    Param::new("logging", Kind::Any),
    Param::new("direction", Kind::Any),
    Param::new("route", Kind::Any),
    Param::new("insert", Kind::Any),
    Param::new("insert_relative_to", Kind::Any).aliases(&["relative_to"]),
    Param::new("rule", Kind::Any),
    Param::new("log", Kind::Any),
    Param::new("from_ip", Kind::Any).aliases(&["from", "src"]),
    Param::new("from_port", Kind::Any),
    Param::new("to_ip", Kind::Any).aliases(&["dest", "to"]),
    Param::new("to_port", Kind::Any).aliases(&["port"]),
    Param::new("proto", Kind::Any).aliases(&["protocol"]),
    Param::new("name", Kind::Any).aliases(&["app"]),
    Param::new("comment", Kind::Any),
    Param::new("interface", Kind::Any).aliases(&["if"]),
    Param::new("interface_in", Kind::Any).aliases(&["if_in"]),
    Param::new("interface_out", Kind::Any).aliases(&["if_out"]),
    Param::new("delete", Kind::Any),
];

/// ansible.posix.firewalld's parameters (values unchecked: tend does not apply them).
pub const FIREWALLD_PARAMS: &[Param] = &[
    Param::new("service", Kind::Any),
    Param::new("protocol", Kind::Any),
    Param::new("port", Kind::Any),
    Param::new("port_forward", Kind::Any),
    Param::new("permanent", Kind::Any),
    Param::new("zone", Kind::Any),
    Param::new("rich_rule", Kind::Any),
    Param::new("source", Kind::Any),
    Param::new("interface", Kind::Any),
    Param::new("icmp_block", Kind::Any),
    Param::new("icmp_block_inversion", Kind::Any),
    Param::new("masquerade", Kind::Any),
    Param::new("forward", Kind::Any),
    Param::new("offline", Kind::Any),
    Param::new("immediate", Kind::Any),
    Param::new("state", Kind::Any),
    Param::new("timeout", Kind::Any),
    Param::new("target", Kind::Any),
];

impl Module for Firewall {
    fn name(&self) -> &'static str {
        self.name
    }
    fn params(&self) -> &'static [Param] {
        self.params
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, _args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let out = ctx
                .run(&format!("command -v {} >/dev/null 2>&1", quote(self.tool)), None)
                .await?;
            let (name, tool, host) = (self.name, self.tool, ctx.host);
            Err(ModuleError::Failed(if out.success() {
                format!(
                    "{name}: {tool} is installed on {host}, but tend does not manage its rules; run `{tool}` with `command:` instead"
                )
            } else {
                format!("{name}: {tool} is not installed on {host} (the {name} module drives the `{tool}` command)")
            }))
        })
    }
}
