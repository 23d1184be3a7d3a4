//! Ansible-compatible inventory: YAML or INI files (or a directory of them), `group_vars/` and
//! `host_vars/` beside them, merged into hosts with their final variables.
//!
//! Variable precedence, lowest first (Ansible's documented order):
//! 1. group `vars:` written in inventory files, groups ordered by depth (`all` first, children
//!    after parents), then `ansible_group_priority`, then name;
//! 2. `group_vars/` files, in the same group order (`group_vars/all` first);
//! 3. host variables written in inventory files;
//! 4. `host_vars/` files.

mod ini;
mod load;
mod pattern;
mod range;
mod shard;

pub use load::load;
pub use pattern::{PatternError, select, select_for_play};
pub use shard::Shard;

use serde_json::{Map, Value};

/// The variables of a host or group.
pub type Vars = Map<String, Value>;

/// Where variables were written: name to the span of its value.
pub type Origins = std::collections::HashMap<String, crate::diagnostic::Span>;

/// The whole inventory after loading: every host with its merged variables.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Hosts in the order they were first written.
    pub hosts: Vec<Host>,
    /// Groups; index 0 is `all`, index 1 is `ungrouped`.
    pub groups: Vec<Group>,
}

/// A host and what it inherits.
#[derive(Debug, Clone)]
pub struct Host {
    /// The inventory name (`inventory_hostname`).
    pub name: String,
    /// Final variables after precedence.
    pub vars: Vars,
    /// Where each of them was written, for errors about their values.
    pub origins: Origins,
    /// Indices of every group the host belongs to, directly or through children, `all` included,
    /// in precedence order.
    pub groups: Vec<usize>,
}

/// A group of hosts.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group name.
    pub name: String,
    /// Hosts listed directly in the group.
    pub hosts: Vec<usize>,
    /// Child groups.
    pub children: Vec<usize>,
    /// Variables written for the group (inventory files, then `group_vars/`).
    pub vars: Vars,
    /// Distance from `all` (longest path).
    pub depth: usize,
}

impl Inventory {
    /// The index of a host by name (hosts are named by their index everywhere else).
    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// Index of a group by name.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// Every host in a group or its descendants, in inventory order.
    pub fn hosts_of_group(&self, group: usize) -> Vec<usize> {
        let mut member = vec![false; self.hosts.len()];
        let mut stack = vec![group];
        let mut seen = vec![false; self.groups.len()];
        while let Some(g) = stack.pop() {
            if std::mem::replace(&mut seen[g], true) {
                continue;
            }
            for &h in &self.groups[g].hosts {
                member[h] = true;
            }
            stack.extend(&self.groups[g].children);
        }
        (0..self.hosts.len()).filter(|&h| member[h]).collect()
    }

    /// Names of the groups a host is in, `all` excluded, sorted (Ansible's `group_names`).
    pub fn group_names(&self, host: &Host) -> Vec<String> {
        let mut names: Vec<String> = host
            .groups
            .iter()
            .filter(|&&g| g != 0)
            .map(|&g| self.groups[g].name.clone())
            .collect();
        names.sort();
        names
    }

    /// `ansible-inventory --list` shaped JSON: groups with hosts/children and `_meta.hostvars`.
    pub fn to_list_json(&self) -> Value {
        let mut out = Map::new();
        let mut hostvars = Map::new();
        for h in &self.hosts {
            hostvars.insert(h.name.clone(), Value::Object(h.vars.clone()));
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        out.insert("_meta".into(), Value::Object(meta));
        for g in &self.groups {
            let mut entry = Map::new();
            if !g.children.is_empty() {
                let children = g.children.iter().map(|&c| Value::String(self.groups[c].name.clone()));
                entry.insert("children".into(), Value::Array(children.collect()));
            }
            if !g.hosts.is_empty() {
                let hosts = g.hosts.iter().map(|&h| Value::String(self.hosts[h].name.clone()));
                entry.insert("hosts".into(), Value::Array(hosts.collect()));
            }
            if !g.vars.is_empty() {
                entry.insert("vars".into(), Value::Object(g.vars.clone()));
            }
            if !entry.is_empty() || g.name == "all" {
                out.insert(g.name.clone(), Value::Object(entry));
            }
        }
        Value::Object(out)
    }

    /// `ansible-inventory --graph` shaped tree of groups and hosts.
    pub fn to_graph(&self, root: usize) -> String {
        let mut out = String::new();
        self.graph_lines(root, 0, &mut out);
        out
    }

    fn graph_lines(&self, group: usize, depth: usize, out: &mut String) {
        let prefix = |d: usize| {
            if d == 0 {
                String::new()
            } else {
                format!("{}  |--", "  |".repeat(d - 1))
            }
        };
        let g = &self.groups[group];
        out.push_str(&format!("{}@{}:\n", prefix(depth), g.name));
        let mut children = g.children.clone();
        children.sort_by(|a, b| self.groups[*a].name.cmp(&self.groups[*b].name));
        for c in children {
            if self.groups[c].name == "ungrouped" && self.groups[c].hosts.is_empty() {
                continue;
            }
            self.graph_lines(c, depth + 1, out);
        }
        let mut hosts: Vec<&str> = g.hosts.iter().map(|&h| self.hosts[h].name.as_str()).collect();
        hosts.sort_unstable();
        for h in hosts {
            out.push_str(&format!("{}{h}\n", prefix(depth + 1)));
        }
    }
}
