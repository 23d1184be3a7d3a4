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

/// `hostvars`: every host's variables, looked up by name only when a template asks.
#[derive(Debug, Default)]
pub struct HostVars {
    /// Host name to its variables.
    pub hosts: BTreeMap<String, Arc<Map<String, Json>>>,
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let vars = self.hosts.get(key.as_str()?)?;
        Some(Value::from(minijinja::value::Serde(&**vars)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.hosts.keys().map(|k| Value::from(k.as_str())).collect())
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
}
