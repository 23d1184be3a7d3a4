//! The one place where what the user said becomes settings: `-e` values, the boolean words
//! Ansible accepts, privilege escalation, and the variables a host sees, layered in the
//! documented precedence. Every command that reads inventory variables builds them here, so
//! `tend run`, `tend exec` and the operations (`deploy`, ...) agree on what a variable means.
//!
//! Precedence, lowest first (as in Ansible): command-line flags (`--become-user`, which are not
//! variables), role defaults (or an operation's defaults), inventory variables, facts, play
//! `vars`/`vars_files`, role `vars`, block/task `vars`, `set_fact`/`register`, magic variables,
//! extra vars (`-e`). Connection variables (`ansible_user`, `ansible_become_user`, ...) are
//! variables too: they beat playbook keywords and flags, and `-e` beats them all.

use crate::diagnostic::{Diagnostic, Source};
use crate::inventory::Inventory;
use crate::template::{Engine, Scope};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// Variables by name.
pub type Vars = Map<String, Json>;

/// Ansible's boolean words (`ansible.module_utils.parsing.convert_bool`): case and surrounding
/// blanks do not matter; anything else is not a boolean.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
        "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
        _ => None,
    }
}

/// A value as a boolean the way Ansible reads it: booleans, the words of [`parse_bool`], and
/// the numbers 1 and 0.
pub fn boolean(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::String(s) => parse_bool(s),
        Json::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parses `-e` values: `k=v k2=v2` (strings), inline YAML/JSON `{"k": 1}`, or `@file.yaml`.
pub fn extra_vars(values: &[String]) -> Result<Vars, Diagnostic> {
    let mut vars = Vars::new();
    for v in values {
        if let Some(file) = v.strip_prefix('@') {
            if file.is_empty() {
                return Err(Diagnostic::plain("-e `@` names no file").with_hint("write `-e @vars.yaml`"));
            }
            let (source, node) = crate::yaml::load_file(std::path::Path::new(file))?;
            match node.to_json() {
                Json::Object(m) => vars.extend(m),
                Json::Null => {}
                _ => {
                    return Err(source.error(node.line, node.column, "extra vars file must be a mapping"));
                }
            }
        } else if v.trim_start().starts_with(['{', '[']) {
            // As Ansible: YAML (JSON included), which must be a mapping.
            let source = Source::new("-e", v.as_str());
            let node = crate::yaml::parse(&source)?;
            match node.to_json() {
                Json::Object(m) => vars.extend(m),
                _ => {
                    return Err(source
                        .error(
                            node.line,
                            node.column,
                            format!("extra vars must be a mapping, found {}", node.kind()),
                        )
                        .with_hint("use `-e key=value`, `-e '{\"key\": 1}'` or `-e @file.yaml`"));
                }
            }
        } else {
            // Split as Ansible's `parse_kv` splits: quotes and `{{ }}`/`{% %}` keep their spaces.
            let (pairs, _) = crate::playbook::words::parse_kv(v, |_| true, false).map_err(|e| {
                let e = e.replace(" is not of the form key=value", " is not `key=value`");
                Diagnostic::plain(format!("-e {e}"))
                    .with_hint("use `-e key=value`, `-e '{\"key\": 1}'` or `-e @file.yaml`")
            })?;
            for (k, val) in pairs {
                if !valid_name(&k) {
                    return Err(Diagnostic::plain(format!(
                        "-e `{v}`: `{k}` is not a valid variable name"
                    )));
                }
                vars.insert(k, Json::String(val));
            }
        }
    }
    Ok(vars)
}

/// Letters, digits and `_`, not starting with a digit.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Privilege escalation as the command line asks for it (`--become`, `--become-user`): the
/// lowest layer, under playbook keywords and variables.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BecomeFlags {
    /// `--become` (or `--become-user`, which implies it).
    pub enabled: bool,
    /// `--become-user`.
    pub user: Option<String>,
    /// `--ask-become-pass`: sudo's password, asked once on the terminal.
    pub password: Option<String>,
}

/// Never shows the password (options are printed in debug output).
impl std::fmt::Debug for BecomeFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BecomeFlags")
            .field("enabled", &self.enabled)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// Decides whether and as whom commands run: variables (`ansible_become`,
/// `ansible_become_user`: inventory, task `vars`, `-e`) beat playbook keywords (`become`,
/// `become_user`), which beat the command-line flags; the user defaults to `root`.
pub fn escalation(
    var_enabled: Option<bool>,
    var_user: Option<String>,
    keyword_enabled: Option<bool>,
    keyword_user: Option<String>,
    flags: &BecomeFlags,
) -> Option<crate::transport::Become> {
    let enabled = var_enabled.or(keyword_enabled).unwrap_or(flags.enabled);
    enabled.then(|| {
        crate::transport::Become::user(
            var_user
                .or(keyword_user)
                .or_else(|| flags.user.clone())
                .unwrap_or_else(|| "root".into()),
        )
    })
}

/// Gives an escalation sudo's password: the host's `ansible_become_password` over the one
/// `--ask-become-pass` asked for. The password is a secret of the run from then on. sudo reads
/// it as one line, so a line break or NUL in it is refused: the rest would reach the shell as
/// script text.
pub fn with_become_password(
    escalate: Option<crate::transport::Become>,
    var: Option<String>,
    flags: &BecomeFlags,
) -> Result<Option<crate::transport::Become>, String> {
    let Some(b) = escalate else {
        return Ok(None);
    };
    let password = var.or_else(|| flags.password.clone());
    if let Some(p) = &password {
        crate::vault::reveal(p);
        if p.contains(['\n', '\r', '\0']) {
            return Err(
                "the become password holds a line break or a NUL byte, which sudo cannot read as one line".into(),
            );
        }
    }
    Ok(Some(crate::transport::Become { password, ..b }))
}

/// The variable layers of one host for one piece of work, lowest first; the inventory, the
/// magic variables and `-e` are added by [`Variables::scope`].
#[derive(Debug, Default, Clone)]
pub struct Layers {
    /// Role defaults, or an operation's defaults (`deploy_root: /srv/shop`).
    pub defaults: Option<Arc<Vars>>,
    /// Facts (`ansible_facts` and the `ansible_*` names).
    pub facts: Option<Arc<Vars>>,
    /// Play `vars` and `vars_files`.
    pub play: Option<Arc<Vars>>,
    /// Role `vars/`.
    pub role: Option<Arc<Vars>>,
    /// Block and task `vars`.
    pub task: Option<Arc<Vars>>,
    /// `set_fact` and `register`.
    pub runtime: Option<Arc<Vars>>,
    /// Magic variables beyond the inventory's own (`ansible_play_hosts`, `omit`, ...).
    pub magic: Vars,
}

/// Every host's variables from the inventory and `-e`, shared by every scope of a command.
#[derive(Debug)]
pub struct Variables {
    inventory: Vec<Arc<Vars>>,
    /// Where each host's inventory variables were written.
    origins: Vec<Arc<crate::inventory::Origins>>,
    magic: Vec<Arc<Vars>>,
    groups: Arc<Vars>,
    extra: Arc<Vars>,
}

impl Variables {
    /// The variables of every host of `inv`, with `extra` (`-e`) over them.
    pub fn new(inv: &Inventory, extra: Vars) -> Self {
        let mut groups = Map::new();
        for (g, group) in inv.groups.iter().enumerate() {
            let names: Vec<Json> = inv
                .hosts_of_group(g)
                .into_iter()
                .map(|h| Json::String(inv.hosts[h].name.clone()))
                .collect();
            groups.insert(group.name.clone(), Json::Array(names));
        }
        let magic = inv
            .hosts
            .iter()
            .map(|host| {
                let mut m = Vars::new();
                m.insert("inventory_hostname".into(), host.name.clone().into());
                m.insert(
                    "inventory_hostname_short".into(),
                    host.name.split('.').next().unwrap_or_default().into(),
                );
                m.insert("group_names".into(), inv.group_names(host).into());
                Arc::new(m)
            })
            .collect();
        Self {
            inventory: inv.hosts.iter().map(|h| Arc::new(h.vars.clone())).collect(),
            origins: inv.hosts.iter().map(|h| Arc::new(h.origins.clone())).collect(),
            magic,
            groups: Arc::new([("groups".to_string(), Json::Object(groups))].into_iter().collect()),
            extra: Arc::new(extra),
        }
    }

    /// `-e`.
    pub fn extra(&self) -> &Arc<Vars> {
        &self.extra
    }

    /// The inventory's variables of host `h` with `-e` over them (what `tend inventory` shows).
    pub fn merged(&self, h: usize) -> Vars {
        let mut vars = (*self.inventory[h]).clone();
        vars.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    /// Where the inventory wrote the variable [`Variables::get`] gives (`None` for `-e`).
    pub fn origin(&self, h: usize, name: &str) -> Option<&crate::diagnostic::Span> {
        if self.extra.contains_key(name) {
            return None;
        }
        self.origins.get(h)?.get(name)
    }

    /// A variable of host `h` before any play: `-e` first, then the inventory (raw, unrendered).
    pub fn get(&self, h: usize, name: &str) -> Option<&Json> {
        self.extra.get(name).or_else(|| self.inventory[h].get(name))
    }

    /// The scope of host `h` with `layers`, in the documented precedence.
    pub fn scope(&self, h: usize, layers: Layers) -> Scope {
        let mut scope = Scope::new();
        let Layers {
            defaults,
            facts,
            play,
            role,
            task,
            runtime,
            magic,
        } = layers;
        scope.extend(defaults);
        scope.push(self.inventory[h].clone());
        scope.extend([facts, play, role, task, runtime].into_iter().flatten());
        scope.push(self.groups.clone());
        scope.push(self.magic[h].clone());
        if !magic.is_empty() {
            scope.push(Arc::new(magic));
        }
        scope.push(self.extra.clone());
        scope
    }

    /// What `hostvars[h]` shows of host `h`: its inventory variables, facts and runtime
    /// variables, and its name.
    pub fn hostvars_entry(&self, h: usize, facts: &Vars, runtime: &Vars) -> Vars {
        let mut vars = (*self.inventory[h]).clone();
        vars.extend(facts.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars.extend(runtime.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars.extend(self.magic[h].iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }
}

/// A variable of `scope`, rendered (`None` when undefined or null).
fn rendered(engine: &Engine, scope: &Scope, name: &str) -> Result<Option<Json>, String> {
    let Some(raw) = scope.get(name) else {
        return Ok(None);
    };
    match engine.render_value(raw, scope).map_err(|e| format!("`{name}`: {e}"))? {
        Json::Null => Ok(None),
        v => Ok(Some(v)),
    }
}

/// The settings of an operation on one host: the host's variables over the operation's
/// defaults, each read as rendered, trimmed text; errors name the host and the variable.
pub struct HostVars {
    scope: Scope,
    engine: Engine,
    host: String,
}

impl HostVars {
    /// Host `h`'s variables over `defaults` (name, template).
    pub fn new(vars: &Variables, inv: &Inventory, h: usize, defaults: &[(&str, &str)]) -> Self {
        Self::with_magic(vars, inv, h, defaults, Map::new())
    }

    /// The same, with the operation's own magic variables (`release_id`) visible to templates.
    pub fn with_magic(
        vars: &Variables,
        inv: &Inventory,
        h: usize,
        defaults: &[(&str, &str)],
        magic: Map<String, Json>,
    ) -> Self {
        let defaults: Map<String, Json> = defaults
            .iter()
            .map(|(k, v)| ((*k).to_string(), Json::String((*v).to_string())))
            .collect();
        Self {
            scope: vars.scope(
                h,
                Layers {
                    defaults: Some(Arc::new(defaults)),
                    magic,
                    ..Layers::default()
                },
            ),
            engine: Engine::new(),
            host: inv.hosts[h].name.clone(),
        }
    }

    /// A variable rendered (null when unset).
    pub fn value(&self, var: &str) -> Result<Json, Diagnostic> {
        let raw = self.scope.get(var).cloned().unwrap_or(Json::Null);
        self.engine
            .render_value(&raw, &self.scope)
            .map_err(|e| self.error(var, e.0))
    }

    /// A variable as trimmed text (empty when unset; numbers and other values as written).
    pub fn text(&self, var: &str) -> Result<String, Diagnostic> {
        Ok(match self.value(var)? {
            Json::Null => String::new(),
            Json::String(s) => s.trim().to_string(),
            other => other.to_string(),
        })
    }

    /// A variable as text, `None` when empty.
    pub fn optional(&self, var: &str) -> Result<Option<String>, Diagnostic> {
        self.text(var).map(|t| if t.is_empty() { None } else { Some(t) })
    }

    /// An error about `var` of this host.
    pub fn error(&self, var: &str, message: impl std::fmt::Display) -> Diagnostic {
        Diagnostic::plain(format!("host `{}`: `{var}`: {message}", self.host))
    }
}

/// Renders a variable of `scope` to text (`None` when undefined or null).
pub fn text_var(engine: &Engine, scope: &Scope, name: &str) -> Result<Option<String>, String> {
    Ok(rendered(engine, scope, name)?.map(|v| match v {
        Json::String(s) => s,
        other => other.to_string(),
    }))
}

/// Renders a variable of `scope` as a boolean (`None` when undefined or null).
pub fn bool_var(engine: &Engine, scope: &Scope, name: &str) -> Result<Option<bool>, String> {
    let Some(v) = rendered(engine, scope, name)? else {
        return Ok(None);
    };
    boolean(&v).map(Some).ok_or_else(|| {
        let found = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        format!("`{name}` must be a boolean, found `{found}`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_become_password_with_a_line_break_is_refused() {
        let flags = BecomeFlags::default();
        let root = || Some(crate::transport::Become::user("root"));
        for bad in ["pw\nrm -rf /", "pw\r", "p\0w"] {
            let err = with_become_password(root(), Some(bad.into()), &flags).err();
            assert!(err.is_some_and(|e| !e.contains("pw")), "{bad:?}");
        }
        let ok = with_become_password(root(), Some(" spaced pw ".into()), &flags);
        assert_eq!(
            ok.ok().flatten().and_then(|b| b.password).as_deref(),
            Some(" spaced pw ")
        );
        assert!(with_become_password(None, Some("x\n".into()), &flags).is_ok_and(|b| b.is_none()));
    }

    #[test]
    fn booleans_read_as_ansible_reads_them() {
        for (v, want) in [
            (json!("Yes"), Some(true)),
            (json!(" t "), Some(true)),
            (json!("0"), Some(false)),
            (json!("F"), Some(false)),
            (json!(1), Some(true)),
            (json!(0.0), Some(false)),
            (json!(2), None),
            (json!(""), None),
            (json!("truthy"), None),
        ] {
            assert_eq!(boolean(&v), want, "{v}");
        }
    }

    #[test]
    fn variables_beat_keywords_which_beat_flags() {
        let flags = BecomeFlags {
            enabled: true,
            user: Some("cli".into()),
            password: None,
        };
        let user = |b: Option<crate::transport::Become>| b.map(|b| b.user);
        assert_eq!(user(escalation(None, None, None, None, &flags)).as_deref(), Some("cli"));
        assert_eq!(
            user(escalation(None, None, Some(true), Some("kw".into()), &flags)).as_deref(),
            Some("kw")
        );
        assert_eq!(
            user(escalation(
                None,
                Some("var".into()),
                Some(true),
                Some("kw".into()),
                &flags
            ))
            .as_deref(),
            Some("var")
        );
        assert_eq!(escalation(Some(false), None, Some(true), None, &flags), None);
        assert_eq!(
            user(escalation(None, None, Some(true), None, &BecomeFlags::default())).as_deref(),
            Some("root")
        );
    }

    #[test]
    fn extra_vars_take_three_forms() {
        let v = extra_vars(&["a=1 b='two words'".into(), r#"{"c": [1]}"#.into()]).unwrap();
        assert_eq!(v["a"], "1");
        assert_eq!(v["b"], "two words");
        assert_eq!(v["c"], json!([1]));
        assert!(extra_vars(&["x".into()]).is_err());
        assert!(extra_vars(&["1x=2".into()]).is_err());
    }
}
