//! The variables a template sees on one host, in precedence layers, resolved on demand: a
//! variable whose value is itself a template is rendered when (and only when) it is used.

use super::{Engine, TemplateError, is_template};
use minijinja::Value;
use minijinja::value::{Enumerator, Object};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// Variables of one host for one task: layers from lowest to highest precedence.
#[derive(Debug, Default)]
pub struct Scope {
    layers: Vec<Arc<Map<String, Json>>>,
    top: Map<String, Json>,
    hostvars: Option<Arc<HostVars>>,
    /// Where lookups find control-node files (the task's role, the playbook's directory).
    search_paths: Arc<Vec<String>>,
    resolving: Mutex<Vec<String>>,
}

impl Clone for Scope {
    fn clone(&self) -> Self {
        Self {
            layers: self.layers.clone(),
            top: self.top.clone(),
            hostvars: self.hostvars.clone(),
            search_paths: self.search_paths.clone(),
            resolving: Mutex::new(Vec::new()),
        }
    }
}

/// `hostvars`: every host's variables, looked up by name only when a template asks, and
/// rendered as Ansible renders them: a variable that is a template is rendered with its own
/// host's variables (`hostvars['db1'].url` is db1's URL, not the asking host's).
#[derive(Debug, Default)]
pub struct HostVars {
    /// Host name to its variables.
    pub hosts: BTreeMap<String, Arc<Map<String, Json>>>,
    /// Renders other hosts' templated variables; made on first need.
    engine: std::sync::OnceLock<Engine>,
}

impl HostVars {
    /// Every host's variables, by host name.
    pub fn new(hosts: BTreeMap<String, Arc<Map<String, Json>>>) -> Self {
        Self {
            hosts,
            engine: std::sync::OnceLock::new(),
        }
    }
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        self.hosts.contains_key(name).then(|| {
            Value::from_object(HostView {
                name: name.to_string(),
                all: self.clone(),
            })
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.hosts.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

/// A variable of another host whose template failed: serializing it fails with the message,
/// which makes minijinja's value invalid and any use of it an error naming it.
struct Unrenderable(String);

impl serde::Serialize for Unrenderable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(&self.0))
    }
}

/// One host of `hostvars`: its variables, each rendered in that host's scope when read.
#[derive(Debug)]
struct HostView {
    name: String,
    all: Arc<HostVars>,
}

impl HostView {
    fn vars(&self) -> Option<&Arc<Map<String, Json>>> {
        self.all.hosts.get(&self.name)
    }
}

impl Object for HostView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let vars = self.vars()?;
        let raw = vars.get(key.as_str()?)?;
        if !contains_template(raw) {
            return Some(Value::from(minijinja::value::Serde(raw)));
        }
        let mut scope = Scope::new();
        scope.push(vars.clone());
        scope.set_hostvars(self.all.clone());
        let engine = self.all.engine.get_or_init(Engine::new);
        Some(match engine.render_value(raw, &scope) {
            Ok(v) => Value::from(minijinja::value::Serde(&v)),
            // A value that fails when used, with the template's error.
            Err(e) => Value::from(minijinja::value::Serde(Unrenderable(format!(
                "hostvars['{}'].{key}: {}",
                self.name, e.0
            )))),
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.vars() {
            Some(vars) => Enumerator::Values(vars.keys().map(|k| Value::from(k.as_str())).collect()),
            None => Enumerator::Empty,
        }
    }
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a layer above the existing ones.
    pub fn push(&mut self, layer: Arc<Map<String, Json>>) {
        self.layers.push(layer);
    }

    /// Adds layers above the existing ones, lowest first.
    pub fn extend(&mut self, layers: impl IntoIterator<Item = Arc<Map<String, Json>>>) {
        self.layers.extend(layers);
    }

    /// Sets one variable above every layer (loop items, `item`, task results).
    pub fn set(&mut self, name: &str, value: Json) {
        self.top.insert(name.to_string(), value);
    }

    /// Sets where lookups find control-node files.
    pub fn set_search_paths(&mut self, paths: &[std::path::PathBuf]) {
        self.search_paths = Arc::new(paths.iter().map(|p| p.display().to_string()).collect());
    }

    /// The variables of the templates `text` renders with `lookup('template', ...)`.
    pub(crate) fn template_lookup_variables(&self, text: &str, env: &minijinja::Environment<'static>) -> Vec<String> {
        if !text.contains("template") {
            return Vec::new();
        }
        super::lookups::template_variables(text, &self.search_paths, env)
    }

    /// Makes `hostvars` available.
    pub fn set_hostvars(&mut self, hostvars: Arc<HostVars>) {
        self.hostvars = Some(hostvars);
    }

    /// The raw (unrendered) value of a variable, highest layer first.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.top
            .get(name)
            .or_else(|| self.layers.iter().rev().find_map(|l| l.get(name)))
    }

    /// The template context holding `names`, each rendered if it is itself a template.
    pub(crate) fn context(&self, engine: &Engine, names: &HashSet<String>) -> Result<Value, TemplateError> {
        let mut ctx = BTreeMap::new();
        if ["lookup", "query", "q"].iter().any(|f| names.contains(*f)) {
            ctx.insert(
                super::lookups::SEARCH_PATHS.to_string(),
                Value::from(minijinja::value::Serde(&*self.search_paths)),
            );
        }
        for name in names {
            if name == "hostvars"
                && let Some(h) = &self.hostvars
            {
                ctx.insert(name.clone(), Value::from_dyn_object(h.clone()));
                continue;
            }
            if let Some(value) = self.resolve(engine, name)? {
                ctx.insert(name.clone(), Value::from(minijinja::value::Serde(&value)));
            }
        }
        Ok(Value::from(ctx))
    }

    fn resolve(&self, engine: &Engine, name: &str) -> Result<Option<Json>, TemplateError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        if !contains_template(raw) {
            return Ok(Some(raw.clone()));
        }
        {
            let mut stack = self
                .resolving
                .lock()
                .map_err(|_| TemplateError("template state poisoned".into()))?;
            if stack.iter().any(|n| n == name) {
                let chain = stack.join(" -> ");
                return Err(TemplateError(format!(
                    "variable `{name}` refers to itself: {chain} -> {name}"
                )));
            }
            stack.push(name.to_string());
        }
        let result = engine.render_value(raw, self).map_err(|e| {
            if e.0.contains("refers to itself") {
                e
            } else {
                TemplateError(format!("in variable `{name}`: {}", e.0))
            }
        });
        if let Ok(mut stack) = self.resolving.lock() {
            stack.pop();
        }
        result.map(Some)
    }
}

fn contains_template(v: &Json) -> bool {
    match v {
        Json::String(s) => is_template(s),
        Json::Array(a) => a.iter().any(contains_template),
        Json::Object(o) => o.iter().any(|(k, v)| is_template(k) || contains_template(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(vars: Json) -> Scope {
        let mut s = Scope::new();
        s.push(Arc::new(vars.as_object().cloned().unwrap_or_default()));
        s
    }

    #[test]
    fn nested_variables_resolve_and_keep_types() {
        let e = Engine::new();
        let s = scope(
            json!({"port": 8080, "url": "http://{{ host }}:{{ port }}/", "host": "app1", "ports": [1, 2], "copy": "{{ ports }}"}),
        );
        assert_eq!(e.render("{{ url }}", &s).unwrap(), json!("http://app1:8080/"));
        assert_eq!(e.render("{{ copy }}", &s).unwrap(), json!([1, 2]));
        assert_eq!(e.render("{{ port }}", &s).unwrap(), json!(8080));
        assert_eq!(e.render("port {{ port }}", &s).unwrap(), json!("port 8080"));
    }

    #[test]
    fn undefined_is_an_error_but_tests_for_it_work() {
        let e = Engine::new();
        let s = scope(json!({"a": 1}));
        assert!(e.render("{{ missing }}", &s).unwrap_err().0.contains("undefined"));
        assert!(e.condition("missing is not defined", &s).unwrap());
        assert!(e.condition("a is defined and a == 1", &s).unwrap());
    }

    #[test]
    fn python_methods_and_ansible_filters_work() {
        let e = Engine::new();
        let s = scope(json!({"fqdn": "db1.shop.internal", "m": {"a": 1}}));
        assert_eq!(e.render("{{ fqdn.split('.')[0] }}", &s).unwrap(), json!("db1"));
        assert_eq!(e.render("{{ fqdn.startswith('db') }}", &s).unwrap(), json!(true));
        assert_eq!(
            e.render("{{ m | dict2items | map(attribute='key') | join(',') }}", &s)
                .unwrap(),
            json!("a")
        );
        assert_eq!(e.render("{{ missing | default('x') }}", &s).unwrap(), json!("x"));
    }

    #[test]
    fn self_reference_is_reported() {
        let e = Engine::new();
        let s = scope(json!({"a": "{{ b }}", "b": "{{ a }}"}));
        let err = e.render("{{ a }}", &s).unwrap_err();
        assert!(err.0.contains("refers to itself: a -> b -> a"), "{err}");
    }

    #[test]
    fn layers_override_lower_ones() {
        let e = Engine::new();
        let mut s = scope(json!({"who": "inventory"}));
        s.push(Arc::new(
            json!({"who": "play"}).as_object().cloned().unwrap_or_default(),
        ));
        assert_eq!(e.render("{{ who }}", &s).unwrap(), json!("play"));
        s.set("who", json!("fact"));
        assert_eq!(e.render("{{ who }}", &s).unwrap(), json!("fact"));
    }

    #[test]
    fn other_hosts_variables_render_in_their_own_scope() {
        let e = Engine::new();
        let host = |v: Json| Arc::new(v.as_object().cloned().unwrap_or_default());
        let all = Arc::new(HostVars::new(BTreeMap::from([
            (
                "web1".to_string(),
                host(json!({"inventory_hostname": "web1", "port": 80})),
            ),
            (
                "db1".to_string(),
                host(json!({"inventory_hostname": "db1", "port": 3306,
                    "url": "mysql://{{ inventory_hostname }}:{{ port }}", "bad": "{{ nope }}"})),
            ),
        ])));
        let mut s = scope(json!({"inventory_hostname": "web1", "port": 80}));
        s.set_hostvars(all);
        assert_eq!(
            e.render("{{ hostvars['db1'].url }} {{ hostvars.db1['port'] }}", &s)
                .unwrap(),
            json!("mysql://db1:3306 3306")
        );
        assert_eq!(
            e.render("{{ hostvars | list | join(',') }}", &s).unwrap(),
            json!("db1,web1")
        );
        let err = e.render("{{ hostvars['db1'].bad }}", &s).unwrap_err();
        assert!(
            err.0.contains("hostvars['db1'].bad") && err.0.contains("undefined"),
            "{err}"
        );
        assert_eq!(
            e.render("{{ hostvars['db1'].missing | default('-') }}", &s).unwrap(),
            json!("-")
        );
    }
}
