//! Reading inventory files and `group_vars/`/`host_vars/` into an [`Inventory`].

use super::ini;
use super::range::expand_host_range;
use super::{Group, Host, Inventory, Origins, Vars};
use crate::diagnostic::{Diagnostic, Source, Span, did_you_mean};
use crate::yaml::{self, Node, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const GROUP_KEYS: [&str; 3] = ["hosts", "vars", "children"];

#[derive(Debug, Default)]
struct GroupDef {
    name: String,
    hosts: Vec<usize>,
    children: Vec<(usize, Span)>,
    inline_vars: Vars,
    inline_origins: Origins,
    file_vars: Vars,
    file_origins: Origins,
}

#[derive(Debug, Default)]
struct HostDef {
    name: String,
    inline_vars: Vars,
    var_origins: Origins,
    file_vars: Vars,
    file_origins: Origins,
}

#[derive(Debug, Default)]
struct Builder {
    groups: Vec<GroupDef>,
    group_index: HashMap<String, usize>,
    hosts: Vec<HostDef>,
    host_index: HashMap<String, usize>,
}

/// Loads inventory sources (files or directories) in order; later sources add to earlier ones.
pub fn load(paths: &[PathBuf]) -> Result<Inventory, Diagnostic> {
    let mut b = Builder::default();
    b.group("all");
    b.group("ungrouped");
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            Diagnostic::in_file(path, format!("cannot read inventory: {e}"))
                .with_hint("pass an inventory with `-i FILE|DIR` or set `TEND_INVENTORY`")
        })?;
        let base = if meta.is_dir() {
            let files = yaml_files(path)?;
            if files.is_empty() {
                return Err(Diagnostic::in_file(
                    path,
                    "inventory directory holds no `.yaml`, `.yml` or `.json` file, nor one without an extension",
                ));
            }
            for file in files {
                b.read_inventory_file(&file)?;
            }
            path.clone()
        } else {
            b.read_inventory_file(path)?;
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        b.read_vars_dir(&base.join("group_vars"), true)?;
        b.read_vars_dir(&base.join("host_vars"), false)?;
    }
    b.finish()
}

/// The inventory files of a directory, sorted by name (Ansible reads them in that order).
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Diagnostic::in_file(dir, format!("cannot read directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let hidden = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            // YAML, JSON and INI files, and files without an extension (an INI `hosts`).
            p.is_file()
                && !hidden
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    None | Some("yaml" | "yml" | "json" | "ini")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}

fn key_text(key: &Node, source: &Source) -> Result<String, Diagnostic> {
    match key.scalar_text() {
        Some(s) if s.is_empty() => Err(source.error(key.line, key.column, "a name cannot be empty")),
        Some(s) => Ok(s),
        None => Err(source.error(
            key.line,
            key.column,
            format!("expected a name here, found {}", key.kind()),
        )),
    }
}

fn vars_of(node: &Node, source: &Source, what: &str) -> Result<Vec<(String, Node)>, Diagnostic> {
    yaml::entries(node, source, what)?
        .iter()
        .map(|(k, v)| Ok((key_text(k, source)?, v.clone())))
        .collect()
}

impl Builder {
    fn group(&mut self, name: &str) -> usize {
        if let Some(&i) = self.group_index.get(name) {
            return i;
        }
        self.groups.push(GroupDef {
            name: name.to_string(),
            ..GroupDef::default()
        });
        self.group_index.insert(name.to_string(), self.groups.len() - 1);
        self.groups.len() - 1
    }

    /// Reads a YAML inventory, or an INI one (a file not named `.yaml`/`.yml`/`.json` is told
    /// by its content, as Ansible tries both).
    fn read_inventory_file(&mut self, path: &Path) -> Result<(), Diagnostic> {
        let source = yaml::read_source(path)?;
        let parsed = yaml::parse(&source);
        let mapping_or_empty = parsed
            .as_ref()
            .ok()
            .map(|n| matches!(n.value, Value::Map(_) | Value::Null));
        // A `.yaml`, `.yml` or `.json` file is YAML; any other is told by its content.
        let yaml_name = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        let root = if !yaml_name && ini::looks_like_ini(&source.text, mapping_or_empty) {
            ini::parse(&source)?
        } else {
            parsed?
        };
        yaml::reveal_sealed(&source, &root);
        let top = yaml::entries(&root, &source, "an inventory file")
            .map_err(|d| d.with_hint("a YAML inventory starts with `all:` and lists `hosts`, `vars` and `children`"))?;
        for (name, body) in top {
            let name_text = key_text(name, &source)?;
            self.read_group(&source, &name_text, body)?;
        }
        Ok(())
    }

    fn read_group(&mut self, source: &Source, name: &str, body: &Node) -> Result<usize, Diagnostic> {
        let g = self.group(name);
        let entries = match &body.value {
            Value::Map(entries) => entries.as_slice(),
            Value::Null => &[],
            _ => {
                return Err(source
                    .error(
                        body.line,
                        body.column,
                        format!("group `{name}` must be a mapping, found {}", body.kind()),
                    )
                    .with_hint("a group holds `hosts:`, `vars:` and `children:`"));
            }
        };
        for (key, value) in entries {
            let k = key_text(key, source)?;
            match k.as_str() {
                "hosts" => {
                    for (host_key, host_body) in yaml::entries(value, source, &format!("`hosts` of group `{name}`"))? {
                        let pattern = key_text(host_key, source)?;
                        let names =
                            expand_host_range(&pattern).map_err(|m| source.error(host_key.line, host_key.column, m))?;
                        let vars = vars_of(host_body, source, &format!("host `{pattern}`"))?;
                        for host_name in names {
                            let h = self.host(source, host_key, &host_name, &vars)?;
                            if !self.groups[g].hosts.contains(&h) {
                                self.groups[g].hosts.push(h);
                            }
                        }
                    }
                }
                "vars" => {
                    for (var, v) in vars_of(value, source, &format!("`vars` of group `{name}`"))? {
                        self.groups[g].inline_origins.insert(var.clone(), Span::of(source, &v));
                        self.groups[g].inline_vars.insert(var, v.to_json());
                    }
                }
                "children" => {
                    for (child_key, child_body) in
                        yaml::entries(value, source, &format!("`children` of group `{name}`"))?
                    {
                        let child_name = key_text(child_key, source)?;
                        let c = self.read_group(source, &child_name, child_body)?;
                        if !self.groups[g].children.iter().any(|(x, _)| *x == c) {
                            self.groups[g].children.push((c, Span::of(source, child_key)));
                        }
                    }
                }
                other => {
                    let mut d = source.error(key.line, key.column, format!("unknown key `{other}` in group `{name}`"));
                    d = match did_you_mean(other, GROUP_KEYS) {
                        Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                        None => d.with_hint(format!(
                            "a group holds only `hosts`, `vars` and `children`; to put host `{other}` in group `{name}`, list it under `hosts:`"
                        )),
                    };
                    return Err(d);
                }
            }
        }
        Ok(g)
    }

    /// Declares a host (again); the same variable written twice with different values is an error.
    fn host(&mut self, source: &Source, at: &Node, name: &str, vars: &[(String, Node)]) -> Result<usize, Diagnostic> {
        let h = match self.host_index.get(name) {
            Some(&h) => h,
            None => {
                self.hosts.push(HostDef {
                    name: name.to_string(),
                    ..HostDef::default()
                });
                self.host_index.insert(name.to_string(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        let def = &mut self.hosts[h];
        for (var, node) in vars {
            let value = node.to_json();
            let origin = Span::of(source, node);
            if let Some(old) = def.inline_vars.get(var)
                && *old != value
            {
                let first = def.var_origins.get(var).map(Span::short).unwrap_or_default();
                return Err(Span::of(source, at)
                    .error(format!(
                        "host `{name}` is defined again with a different value for `{var}`"
                    ))
                    .with_hint(format!(
                        "first defined at {first}; write host variables once, or move them to a group's `vars`"
                    )));
            }
            def.inline_vars.insert(var.clone(), value);
            def.var_origins.insert(var.clone(), origin);
        }
        Ok(h)
    }

    /// Reads `group_vars/` or `host_vars/`: `NAME.yaml` files or `NAME/` directories of them.
    fn read_vars_dir(&mut self, dir: &Path, groups: bool) -> Result<(), Diagnostic> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let (name, files) = if path.is_dir() {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                (name, vars_files_under(&path))
            } else {
                let ext = path.extension().and_then(|e| e.to_str());
                if !matches!(ext, None | Some("yaml" | "yml" | "json")) {
                    continue;
                }
                let name = path.file_stem().map(|n| n.to_string_lossy().into_owned());
                (name, vec![path.clone()])
            };
            let Some(name) = name.filter(|n| !n.starts_with('.')) else {
                continue;
            };
            let target = if groups {
                self.group_index.get(&name).map(|&g| {
                    let def = &mut self.groups[g];
                    (&mut def.file_vars, &mut def.file_origins)
                })
            } else {
                self.host_index.get(&name).map(|&h| {
                    let def = &mut self.hosts[h];
                    (&mut def.file_vars, &mut def.file_origins)
                })
            };
            // Like Ansible, vars for a group or host the inventory does not have are ignored.
            let Some((target, origins)) = target else { continue };
            for file in files {
                let (source, root) = yaml::load_file(&file)?;
                for (var, v) in vars_of(&root, &source, "a variables file")? {
                    origins.insert(var.clone(), Span::of(&source, &v));
                    target.insert(var, v.to_json());
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Inventory, Diagnostic> {
        self.check_cycles()?;
        let mut children: Vec<Vec<usize>> = self
            .groups
            .iter()
            .map(|g| g.children.iter().map(|(c, _)| *c).collect())
            .collect();
        // Groups nobody lists as a child hang under `all`; hosts in no group go to `ungrouped`.
        let has_parent: Vec<bool> = (0..self.groups.len())
            .map(|g| children.iter().any(|cs| cs.contains(&g)))
            .collect();
        let mut orphans: Vec<usize> = (1..self.groups.len()).filter(|&g| !has_parent[g]).collect();
        orphans.sort_by_key(|&g| g != 1);
        children[0].extend(orphans);
        self.groups[0].hosts.clear();
        let mut direct: Vec<Vec<usize>> = vec![Vec::new(); self.hosts.len()];
        for (g, def) in self.groups.iter().enumerate() {
            for &h in &def.hosts {
                direct[h].push(g);
            }
        }
        for (h, groups) in direct.iter_mut().enumerate() {
            if groups.iter().all(|&g| g < 2) {
                if !groups.contains(&1) {
                    self.groups[1].hosts.push(h);
                    groups.push(1);
                }
            } else if let Some(i) = groups.iter().position(|&g| g == 1) {
                // An explicit `ungrouped` entry for a host that has a real group is dropped, as in Ansible.
                groups.remove(i);
                self.groups[1].hosts.retain(|&x| x != h);
            }
        }

        let parents = parents_of(&children);
        let depth = depths(&parents);
        let priority: Vec<i64> = self
            .groups
            .iter()
            .map(|g| {
                let p = g
                    .file_vars
                    .get("ansible_group_priority")
                    .or(g.inline_vars.get("ansible_group_priority"));
                p.and_then(serde_json::Value::as_i64).unwrap_or(1)
            })
            .collect();

        let mut hosts = Vec::with_capacity(self.hosts.len());
        for (h, def) in self.hosts.iter().enumerate() {
            let mut member = vec![false; self.groups.len()];
            let mut stack = direct[h].clone();
            stack.push(0);
            while let Some(g) = stack.pop() {
                if !std::mem::replace(&mut member[g], true) {
                    stack.extend(&parents[g]);
                }
            }
            let mut order: Vec<usize> = (0..self.groups.len()).filter(|&g| member[g]).collect();
            order.sort_by(|&a, &b| {
                (depth[a], priority[a], &self.groups[a].name).cmp(&(depth[b], priority[b], &self.groups[b].name))
            });
            let mut vars = Vars::new();
            let mut origins = Origins::new();
            for &g in &order {
                vars.extend(self.groups[g].inline_vars.clone());
                origins.extend(self.groups[g].inline_origins.clone());
            }
            for &g in &order {
                vars.extend(self.groups[g].file_vars.clone());
                origins.extend(self.groups[g].file_origins.clone());
            }
            vars.extend(def.inline_vars.clone());
            origins.extend(def.var_origins.clone());
            vars.extend(def.file_vars.clone());
            origins.extend(def.file_origins.clone());
            hosts.push(Host {
                name: def.name.clone(),
                vars,
                origins,
                groups: order,
            });
        }

        let groups = self
            .groups
            .into_iter()
            .zip(children)
            .zip(depth)
            .map(|((g, children), depth)| {
                let mut vars = g.inline_vars;
                vars.extend(g.file_vars);
                Group {
                    name: g.name,
                    hosts: g.hosts,
                    children,
                    vars,
                    depth,
                }
            })
            .collect();
        Ok(Inventory { hosts, groups })
    }

    /// A group that contains itself through `children` is an error naming the loop.
    fn check_cycles(&self) -> Result<(), Diagnostic> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        fn visit(b: &Builder, g: usize, marks: &mut [Mark], path: &mut Vec<usize>) -> Result<(), Diagnostic> {
            marks[g] = Mark::Open;
            path.push(g);
            for (c, origin) in &b.groups[g].children {
                match marks[*c] {
                    Mark::Open => {
                        let start = path.iter().position(|x| x == c).unwrap_or(0);
                        let mut names: Vec<&str> = path[start..].iter().map(|&i| b.groups[i].name.as_str()).collect();
                        names.push(&b.groups[*c].name);
                        return Err(origin
                            .error(format!("cycle in group children: {}", names.join(" -> ")))
                            .with_hint("a group cannot contain itself; remove one of these `children` entries"));
                    }
                    Mark::New => visit(b, *c, marks, path)?,
                    Mark::Done => {}
                }
            }
            path.pop();
            marks[g] = Mark::Done;
            Ok(())
        }
        let mut marks = vec![Mark::New; self.groups.len()];
        for g in 0..self.groups.len() {
            if marks[g] == Mark::New {
                visit(self, g, &mut marks, &mut Vec::new())?;
            }
        }
        Ok(())
    }
}

fn parents_of(children: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut parents = vec![Vec::new(); children.len()];
    for (p, cs) in children.iter().enumerate() {
        for &c in cs {
            parents[c].push(p);
        }
    }
    parents
}

/// Longest distance from `all`, which orders groups for variable precedence; the graph is acyclic.
fn depths(parents: &[Vec<usize>]) -> Vec<usize> {
    fn visit(g: usize, parents: &[Vec<usize>], depth: &mut [Option<usize>]) -> usize {
        if let Some(d) = depth[g] {
            return d;
        }
        let d = parents[g]
            .iter()
            .map(|&p| visit(p, parents, depth) + 1)
            .max()
            .unwrap_or(0);
        depth[g] = Some(d);
        d
    }
    let mut depth = vec![None; parents.len()];
    (0..parents.len()).map(|g| visit(g, parents, &mut depth)).collect()
}

fn vars_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in entries.filter_map(Result::ok).map(|e| e.path()) {
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                None | Some("yaml" | "yml" | "json")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
