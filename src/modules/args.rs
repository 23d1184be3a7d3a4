//! Module parameters: declared once per module, checked statically on literal values before
//! anything connects, and coerced after templating (`"yes"` → `true`, `0644` → `"644"`).

use crate::diagnostic::{Diagnostic, Span, did_you_mean};
use crate::template::{OMIT, is_template};
use serde_json::{Map, Value as Json};

/// The type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text (numbers are accepted and turned into text).
    Str,
    /// Boolean (`yes`/`no`/`true`/`false`/`1`/`0`).
    Bool,
    /// Integer.
    Int,
    /// Number.
    Float,
    /// List of strings (a comma-separated string is accepted).
    List,
    /// Mapping.
    Dict,
    /// File mode: octal (`0644`, `"0644"`) or symbolic (`u=rw,g=r`).
    Mode,
    /// Anything.
    Any,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Bool => "a boolean",
            Kind::Int => "an integer",
            Kind::Float => "a number",
            Kind::List => "a list",
            Kind::Dict => "a mapping",
            Kind::Mode => "a file mode such as '0644' or 'u=rw,g=r'",
            Kind::Any => "a value",
        }
    }
}

/// One accepted parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Must be given.
    pub required: bool,
    /// Other names for it.
    pub aliases: &'static [&'static str],
    /// Allowed values, when it is an enumeration.
    pub choices: &'static [&'static str],
    /// A secret (a password): its value is masked in every output from the moment it is used,
    /// like Ansible's `no_log` parameters.
    pub secret: bool,
}

impl Param {
    /// An optional parameter.
    pub const fn new(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            required: false,
            aliases: &[],
            choices: &[],
            secret: false,
        }
    }
    /// Makes it a secret.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    /// Makes it required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Adds aliases.
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }
    /// Restricts the values.
    pub const fn choices(mut self, choices: &'static [&'static str]) -> Self {
        self.choices = choices;
        self
    }
}

fn find<'p>(params: &'p [Param], key: &str) -> Option<&'p Param> {
    params.iter().find(|p| p.name == key || p.aliases.contains(&key))
}

fn contains_template(v: &Json) -> bool {
    match v {
        Json::String(s) => is_template(s),
        Json::Array(a) => a.iter().any(contains_template),
        Json::Object(o) => o.values().any(contains_template),
        _ => false,
    }
}

/// Checks arguments as written (before templating): unknown names, missing required ones,
/// wrong types and values outside `choices`, for every value that holds no template.
pub fn check_literal_args(
    module: &str,
    params: &[Param],
    args: &[(String, Json, Span)],
    task: &Span,
) -> Result<(), Diagnostic> {
    for (key, value, span) in args {
        let Some(param) = find(params, key) else {
            let names = params
                .iter()
                .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()));
            let hint = match did_you_mean(key, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "`{module}` accepts: {}",
                    params
                        .iter()
                        .map(|p| format!("`{}`", p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(span
                .error(format!("unknown parameter `{key}` for module `{module}`"))
                .with_hint(hint));
        };
        // A null value is no value, as in Ansible (the parameter's default applies).
        if contains_template(value) || value.is_null() {
            continue;
        }
        coerce_one(param, value).map_err(|m| span.error(format!("`{module}` parameter `{key}`: {m}")))?;
    }
    for p in params.iter().filter(|p| p.required) {
        if !args
            .iter()
            .any(|(k, _, _)| k == p.name || p.aliases.contains(&k.as_str()))
        {
            return Err(task.error(format!("module `{module}` needs parameter `{}`", p.name)));
        }
    }
    Ok(())
}

/// Turns templated arguments into typed ones (aliases resolved to the parameter's name,
/// `omit` dropped).
pub fn coerce(module: &str, params: &[Param], args: &Map<String, Json>) -> Result<Args, String> {
    let mut out = Map::new();
    for (key, value) in args {
        if value.as_str() == Some(OMIT) || value.is_null() {
            continue;
        }
        let param = find(params, key).ok_or_else(|| format!("unknown parameter `{key}` for module `{module}`"))?;
        let v = coerce_one(param, value).map_err(|m| format!("`{module}` parameter `{key}`: {m}"))?;
        out.insert(param.name.to_string(), v);
    }
    for p in params.iter().filter(|p| p.required) {
        if !out.contains_key(p.name) {
            return Err(format!("module `{module}` needs parameter `{}`", p.name));
        }
    }
    Ok(Args(out))
}

fn coerce_one(param: &Param, value: &Json) -> Result<Json, String> {
    let wrong = || format!("expected {}, found `{}`", param.kind.describe(), short(value));
    let v = match param.kind {
        Kind::Any => value.clone(),
        Kind::Str => match value {
            Json::String(_) => value.clone(),
            Json::Number(n) => Json::String(n.to_string()),
            Json::Bool(b) => Json::String(b.to_string()),
            _ => return Err(wrong()),
        },
        Kind::Bool => Json::Bool(crate::settings::boolean(value).ok_or_else(wrong)?),
        Kind::Int => match value {
            Json::Number(n) if n.is_i64() => value.clone(),
            Json::String(s) => s.trim().parse::<i64>().map(Json::from).map_err(|_| wrong())?,
            _ => return Err(wrong()),
        },
        Kind::Float => match value {
            Json::Number(_) => value.clone(),
            Json::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number)
                .ok_or_else(wrong)?,
            _ => return Err(wrong()),
        },
        Kind::List => match value {
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|i| match i {
                        Json::String(_) => Ok(i.clone()),
                        Json::Number(n) => Ok(Json::String(n.to_string())),
                        _ => Err(wrong()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Json::String(s) => Json::Array(
                s.split(',')
                    .map(|p| Json::String(p.trim().to_string()))
                    .filter(|p| p != "")
                    .collect(),
            ),
            Json::Number(n) => Json::Array(vec![Json::String(n.to_string())]),
            _ => return Err(wrong()),
        },
        Kind::Dict => match value {
            Json::Object(_) => value.clone(),
            _ => return Err(wrong()),
        },
        Kind::Mode => Json::String(mode_text(value).ok_or_else(wrong)?),
    };
    if !param.choices.is_empty() {
        let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        if !param.choices.contains(&text.as_str()) {
            return Err(format!(
                "`{text}` is not one of {}",
                param
                    .choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(v)
}

/// A mode as `chmod` takes it. YAML `0644` arrives as the integer 420 and means octal 644.
fn mode_text(value: &Json) -> Option<String> {
    match value {
        Json::Number(n) => n.as_u64().filter(|&m| m <= 0o7777).map(|m| format!("{m:o}")),
        Json::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.len() <= 5 && s.chars().all(|c| c.is_digit(8)) {
                let m = u32::from_str_radix(s, 8).ok()?;
                (m <= 0o7777).then(|| format!("{m:o}"))
            } else if !s.is_empty() && s.chars().all(|c| "ugoa+-=rwxXstugo,".contains(c)) {
                Some(s.to_string())
            } else {
                None
            }
        }
        _ => None,
    }
}

fn short(v: &Json) -> String {
    let text = match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// Typed arguments of one module call.
#[derive(Debug, Clone, Default)]
pub struct Args(pub Map<String, Json>);

impl Args {
    /// A raw value.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.0.get(name)
    }
    /// A string value.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Json::as_str)
    }
    /// A boolean value, with a default.
    pub fn bool(&self, name: &str, default: bool) -> bool {
        self.0.get(name).and_then(Json::as_bool).unwrap_or(default)
    }
    /// An integer value.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Json::as_i64)
    }
    /// A number value.
    pub fn float(&self, name: &str) -> Option<f64> {
        self.0.get(name).and_then(Json::as_f64)
    }
    /// A list of strings (empty when absent).
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(Json::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: &[Param] = &[
        Param::new("path", Kind::Str).required().aliases(&["dest"]),
        Param::new("mode", Kind::Mode),
        Param::new("force", Kind::Bool),
        Param::new("state", Kind::Str).choices(&["file", "absent"]),
    ];

    #[test]
    fn coerces_like_ansible() {
        let args = json!({"dest": "/x", "mode": 420, "force": "yes", "state": "absent"});
        let a = coerce("file", P, args.as_object().unwrap()).unwrap();
        assert_eq!(a.str("path"), Some("/x"));
        assert_eq!(a.str("mode"), Some("644"));
        assert!(a.bool("force", false));
        let a = coerce("file", P, json!({"path": "/x", "mode": "0755"}).as_object().unwrap()).unwrap();
        assert_eq!(a.str("mode"), Some("755"));
        let a = coerce(
            "file",
            P,
            json!({"path": "/x", "mode": "u=rw,g=r"}).as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(a.str("mode"), Some("u=rw,g=r"));
    }

    #[test]
    fn rejects_bad_values() {
        let e = coerce("file", P, json!({"path": "/x", "state": "gone"}).as_object().unwrap()).unwrap_err();
        assert_eq!(e, "`file` parameter `state`: `gone` is not one of `file`, `absent`");
        let e = coerce("file", P, json!({"mode": "rwx-bad!"}).as_object().unwrap()).unwrap_err();
        assert!(e.contains("expected a file mode"), "{e}");
        let e = coerce("file", P, json!({"state": "file"}).as_object().unwrap()).unwrap_err();
        assert_eq!(e, "module `file` needs parameter `path`");
        let a = coerce("file", P, json!({"path": "/x", "mode": OMIT}).as_object().unwrap()).unwrap();
        assert!(a.get("mode").is_none());
    }
}
