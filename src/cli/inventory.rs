//! `tend inventory`: what the inventory says, the way `ansible-inventory` shows it.

use super::CliError;
use super::common::InventoryOpts;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::exit::Code;
use anyhow::Context;
use clap::Args;
use std::io::Write;

/// Show the inventory: groups, hosts and their merged variables (with `-e` over them, as
/// `ansible-inventory` shows them; values from a vault are shown as `<vault>`).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("view").args(["list", "graph", "host"])))]
pub struct InventoryArgs {
    #[command(flatten)]
    pub inventory: InventoryOpts,
    /// All groups and hosts with their variables, as JSON (the default)
    #[arg(long)]
    pub list: bool,
    /// A tree of groups and hosts, from `all` or from the given group
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// The merged variables of one host, as JSON
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

/// Runs `tend inventory`.
pub fn run(args: InventoryArgs) -> Result<Code, CliError> {
    let (inv, vars) = args.inventory.load()?;
    let text = if let Some(group) = &args.graph {
        let g = inv.group_index(group).ok_or_else(|| {
            let d = Diagnostic::plain(format!("no group `{group}` in the inventory"));
            match did_you_mean(group, inv.groups.iter().map(|g| g.name.as_str())) {
                Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                None => d,
            }
        })?;
        inv.to_graph(g)
    } else if let Some(name) = &args.host {
        let h = inv.host_index(name).ok_or_else(|| {
            let d = Diagnostic::plain(format!("no host `{name}` in the inventory"));
            match did_you_mean(name, inv.hosts.iter().map(|h| h.name.as_str())) {
                Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                None => d,
            }
        })?;
        let mut merged = serde_json::Value::Object(vars.merged(h));
        crate::vault::conceal_json(&mut merged);
        pretty(&merged)?
    } else {
        let mut list = inv.to_list_json();
        if let Some(hostvars) = list.pointer_mut("/_meta/hostvars").and_then(|v| v.as_object_mut()) {
            for (h, host) in inv.hosts.iter().enumerate() {
                hostvars.insert(host.name.clone(), serde_json::Value::Object(vars.merged(h)));
            }
        }
        // Only variables are concealed: host and group names are no secrets, even when a
        // vaulted value happens to be part of one.
        if let Some(groups) = list.as_object_mut() {
            for (name, g) in groups.iter_mut() {
                let vars = if name == "_meta" { "hostvars" } else { "vars" };
                if let Some(v) = g.get_mut(vars) {
                    crate::vault::conceal_json(v);
                }
            }
        }
        pretty(&list)?
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(Code::Ok)
}

fn pretty(v: &serde_json::Value) -> Result<String, CliError> {
    Ok(serde_json::to_string_pretty(v).context("cannot render JSON")? + "\n")
}
