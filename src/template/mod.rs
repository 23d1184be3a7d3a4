//! Jinja2 templating the way playbooks use it: strict undefined variables (but `is defined` and
//! `default()` work), variables that refer to other variables resolved on demand, and a string
//! that is one `{{ expression }}` keeping the expression's type (a list stays a list).

pub mod code;
pub mod filters;
pub mod lookups;
pub mod scope;

pub use scope::Scope;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as Json;

/// Why a template could not be rendered; the message names the variable or expression.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// A problem in a template file, at a line and column of it (0: not known).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Line and column (1-based, in characters) of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line as u32, column as u32)
}

/// Names of Jinja's and Ansible's filters and tests, the vocabulary of "did you mean" hints
/// (those the engine has).
const FILTER_WORDS: &[&str] = &[
    "abs",
    "attr",
    "b64decode",
    "b64encode",
    "basename",
    "batch",
    "bool",
    "capitalize",
    "center",
    "combine",
    "comment",
    "count",
    "default",
    "dict2items",
    "dictsort",
    "difference",
    "dirname",
    "escape",
    "expanduser",
    "first",
    "flatten",
    "float",
    "format",
    "from_json",
    "from_yaml",
    "groupby",
    "hash",
    "indent",
    "int",
    "intersect",
    "items",
    "items2dict",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "mandatory",
    "max",
    "min",
    "password_hash",
    "product",
    "quote",
    "random",
    "regex_escape",
    "regex_findall",
    "regex_replace",
    "regex_search",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "sort",
    "split",
    "splitext",
    "string",
    "sum",
    "ternary",
    "title",
    "to_json",
    "to_nice_json",
    "to_nice_yaml",
    "to_yaml",
    "tojson",
    "trim",
    "truncate",
    "type_debug",
    "union",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "zip",
];
const TEST_WORDS: &[&str] = &[
    "boolean",
    "callable",
    "changed",
    "contains",
    "defined",
    "divisibleby",
    "eq",
    "even",
    "failed",
    "false",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "match",
    "ne",
    "none",
    "number",
    "odd",
    "regex",
    "sameas",
    "search",
    "sequence",
    "skipped",
    "string",
    "subset",
    "succeeded",
    "success",
    "superset",
    "true",
    "undefined",
    "upper",
];

/// The placeholder `omit` stands for: a module argument equal to it is dropped.
pub const OMIT: &str = "__omit_place_holder__tend";

/// The template environment shared by a whole run.
#[derive(Debug)]
pub struct Engine {
    env: Environment<'static>,
    files: Environment<'static>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

fn environment(trim_blocks: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    filters::register(&mut env);
    lookups::register(&mut env);
    // Values in text print as Python prints them (`True`, `['a', 1]`), as in Ansible; `None`
    // prints nothing (Ansible's finalize).
    env.set_formatter(|out, state, value| match value.kind() {
        minijinja::value::ValueKind::Bool | minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Map => out
            .write_str(&python_repr(value))
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())),
        minijinja::value::ValueKind::None => Ok(()),
        _ => minijinja::escape_formatter(out, state, value),
    });
    // Python string and dict methods (`x.split('.')`, `d.items()`) as playbooks use them.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    if let Some(syntax) = syntax(trim_blocks) {
        env.set_syntax(syntax);
    }
    env
}

/// Ansible keeps a template's trailing newline and trims the newline after a block tag in
/// template files (`trim_blocks`).
fn syntax(trim_blocks: bool) -> Option<minijinja::syntax::SyntaxConfig> {
    minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(trim_blocks)
        .build()
        .ok()
}

/// Every lookup a template calls must be one tend has: an unknown one is an error before
/// anything runs.
fn known_lookups(text: &str) -> Result<(), TemplateError> {
    for name in lookups::called(text) {
        let name = lookups::short(&name).to_string();
        if !lookups::NAMES.contains(&name.as_str()) {
            let hint = crate::diagnostic::did_you_mean(&name, lookups::NAMES.iter().copied())
                .map(|m| format!("; did you mean `{m}`?"))
                .unwrap_or_else(|| format!(" (tend has {})", lookups::NAMES.join(", ")));
            return Err(TemplateError(format!("unknown lookup `{name}`{hint}")));
        }
    }
    Ok(())
}

/// The variables a template uses, with those it names in `lookup('vars', 'name')` (a string
/// is no variable reference to the parser).
fn with_looked_up_vars(text: &str, mut names: std::collections::HashSet<String>) -> std::collections::HashSet<String> {
    if !text.contains("vars") {
        return names;
    }
    for (i, _) in text.match_indices("'vars'").chain(text.match_indices("\"vars\"")) {
        let rest = &text[i + 6..];
        for part in rest.split(')').next().unwrap_or_default().split(',').skip(1) {
            let part = part.trim();
            if let Some(name) = part
                .strip_prefix('\'')
                .and_then(|p| p.strip_suffix('\''))
                .or_else(|| part.strip_prefix('"').and_then(|p| p.strip_suffix('"')))
            {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// A value as Python's `repr` writes it (a list or dict printed in text, as Jinja2 prints it).
fn python_repr(value: &Value) -> String {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        ValueKind::Seq => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| python_repr(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        format!(
                            "{}: {}",
                            python_repr(&k),
                            python_repr(&value.get_item(&k).unwrap_or_default())
                        )
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// True when a string holds template syntax and so needs rendering.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Jinja as Ansible runs it keeps a backslash before a digit in a string literal (`"\1"` is a
/// back-reference for `regex_replace`); minijinja would read an octal escape. Doubles those
/// backslashes inside the string literals of expressions and tags (`code`: all of `text` is an
/// expression).
/// Chains of prefix operators (`- - - x`, `not not not x`) longer than any template needs.
/// minijinja's parser guards its recursion for brackets and nested blocks but not for these, and
/// 50,000 of them overflow the stack (the fuzz tests found it): they are refused first.
const MAX_PREFIX_CHAIN: usize = 64;

/// Refuses code (`{{ }}`/`{% %}` of `text`, or all of it when `code`) with a chain of more than
/// [`MAX_PREFIX_CHAIN`] prefix operators; string literals are not looked into.
fn prefix_chain_guard(text: &str, code: bool) -> Result<(), TemplateError> {
    if !text.contains(['-', '+']) && !text.contains("not") {
        return Ok(());
    }
    let b = text.as_bytes();
    let (mut in_code, mut quote, mut run, mut i) = (code, None::<u8>, 0usize, 0usize);
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if !in_code => {
                if c == b'{' && matches!(b.get(i + 1), Some(b'{' | b'%')) {
                    in_code = true;
                    run = 0;
                    i += 1;
                }
            }
            None if !code && (c == b'}' || c == b'%') && b.get(i + 1) == Some(&b'}') => {
                in_code = false;
                i += 1;
            }
            None if c == b'"' || c == b'\'' => {
                quote = Some(c);
                run = 0;
            }
            None if c == b'-' || c == b'+' => run += 1,
            None if c.is_ascii_whitespace() => {}
            None if b[i..].starts_with(b"not")
                && !b.get(i + 3).is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_') =>
            {
                run += 1;
                i += 2;
            }
            None => run = 0,
        }
        if run > MAX_PREFIX_CHAIN {
            return Err(TemplateError(format!(
                "more than {MAX_PREFIX_CHAIN} prefix operators (`-`, `+`, `not`) in a row: the expression is nested too deeply"
            )));
        }
        i += 1;
    }
    Ok(())
}

/// The length of the `{% raw %}…{% endraw %}` block `text` starts with, if it starts with one.
fn raw_block_end(text: &str) -> Option<usize> {
    static RAW: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?s)\A\{%[-+]?\s*raw\s*[-+]?%\}.*?\{%[-+]?\s*endraw\s*[-+]?%\}").ok()
    });
    RAW.as_ref()?.find(text).map(|m| m.end())
}

fn keep_backreferences(text: &str, code: bool) -> std::borrow::Cow<'_, str> {
    if !text.contains('\\') {
        return std::borrow::Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len() + 8);
    let (mut in_code, mut quote, mut i) = (code, None::<u8>, 0);
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    out.extend_from_slice(b"\\\\");
                } else {
                    // Any other escape is the parser's, the escaped byte included.
                    out.extend_from_slice(&b[i..(i + 2).min(b.len())]);
                    i += 1;
                }
                i += 1;
                continue;
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if in_code && (c == b'"' || c == b'\'') => quote = Some(c),
            None if in_code && !code && (c == b'}' || c == b'%') && b.get(i + 1) == Some(&b'}') => {
                in_code = false;
            }
            None if !in_code && c == b'{' && matches!(b.get(i + 1), Some(b'{' | b'%')) => {
                // A `{% raw %}` block is text, copied as it is up to its `{% endraw %}`.
                if let Some(end) = raw_block_end(&text[i..]) {
                    out.extend_from_slice(&b[i..i + end]);
                    i += end;
                    continue;
                }
                in_code = true;
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                continue;
            }
            None => {}
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8(out).map_or(std::borrow::Cow::Borrowed(text), std::borrow::Cow::Owned)
}

/// The inner expression of a string that is exactly one `{{ ... }}`.
fn single_expression(s: &str) -> Option<&str> {
    // Only the whole string: `"{{ x }}\n"` is text and keeps its newline.
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner.trim())
}

/// A syntax (or load-time) error without minijinja's `(in <string>:1)`: where the string is,
/// the diagnostic says; a line inside a multi-line string is said in words.
fn syntax_error(e: &minijinja::Error) -> String {
    let message = kind_and_detail(e);
    match e.line() {
        Some(line) if line > 1 => format!("{message} (line {line} of the template)"),
        _ => message,
    }
}

/// `syntax error: unexpected end of input`: the error without its place.
fn kind_and_detail(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.kind() {
        minijinja::ErrorKind::UndefinedError => "undefined variable".to_string(),
        _ => e.to_string(),
    };
    if let Some(detail) = e.detail()
        && !text.contains(detail)
    {
        text = format!("{text}: {detail}");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

impl Engine {
    /// An engine for strings in playbooks (`trim_blocks` off) and template files (on, as Ansible).
    pub fn new() -> Self {
        Self {
            env: environment(false),
            files: environment(true),
        }
    }

    /// Checks template syntax, lookups, filters and tests without rendering.
    pub fn check(&self, text: &str) -> Result<(), TemplateError> {
        if !is_template(text) {
            return Ok(());
        }
        prefix_chain_guard(text, false)?;
        self.env
            .template_from_str(&keep_backreferences(text, false))
            .map(|_| ())
            .map_err(|e| TemplateError(syntax_error(&e)))?;
        known_lookups(text)?;
        self.known_names(text, false).map_err(|(_, e)| e)
    }

    /// Checks an expression (`when:`, `that:`) without evaluating it.
    pub fn check_expression(&self, expr: &str) -> Result<(), TemplateError> {
        prefix_chain_guard(expr, true)?;
        self.env
            .compile_expression(&keep_backreferences(expr, true))
            .map(|_| ())
            .map_err(|e| TemplateError(syntax_error(&e)))?;
        known_lookups(expr)?;
        self.known_names(expr, true).map_err(|(_, e)| e)
    }

    /// Checks a template file (`template` module's `src`) as [`Engine::check`] does, with the
    /// line and column of the problem in the file.
    pub fn check_file(&self, text: &str) -> Result<(), FileError> {
        prefix_chain_guard(text, false).map_err(|e| FileError {
            line: 0,
            column: 0,
            message: e.0,
        })?;
        let code = keep_backreferences(text, false);
        let at = |offset: usize, message: String| {
            let (line, column) = position(&code, offset);
            FileError { line, column, message }
        };
        if let Err(e) = self.files.template_from_str(&code) {
            // The position is the file's own: no "line N of the template" here.
            let message = kind_and_detail(&e);
            return Err(match (e.range(), e.line()) {
                (Some(r), _) => at(r.start, message),
                (None, Some(line)) => FileError {
                    line: line as u32,
                    column: 0,
                    message,
                },
                (None, None) => FileError {
                    line: 0,
                    column: 0,
                    message,
                },
            });
        }
        for (start, part) in code::parts(&code, false) {
            known_lookups(part).map_err(|e| at(start, e.0))?;
        }
        self.known_names(&code, false).map_err(|(offset, e)| at(offset, e.0))
    }

    /// Every filter and test `text` (an `expression`, or a template) names must be one the
    /// engine has; else the byte offset of the first unknown one and why.
    fn known_names(&self, text: &str, expression: bool) -> Result<(), (usize, TemplateError)> {
        for (start, part) in code::parts(text, expression) {
            for (named, name, at) in code::filters_and_tests(part) {
                if self.has(named, name) {
                    continue;
                }
                let (what, words) = match named {
                    code::Named::Filter => ("filter", FILTER_WORDS),
                    code::Named::Test => ("test", TEST_WORDS),
                };
                let known = words.iter().copied().filter(|w| self.has(named, w));
                let hint = crate::diagnostic::did_you_mean(name, known)
                    .map(|m| format!("; did you mean `{m}`?"))
                    .unwrap_or_default();
                return Err((start + at, TemplateError(format!("unknown {what} `{name}`{hint}"))));
            }
        }
        Ok(())
    }

    /// Whether the engine has a filter or test of this name (asked by applying it to `none`).
    fn has(&self, named: code::Named, name: &str) -> bool {
        let probe = match named {
            code::Named::Filter => format!("none | {name}"),
            code::Named::Test => format!("none is {name}"),
        };
        let Ok(expr) = self.env.compile_expression(&probe) else {
            return true;
        };
        match expr.eval(()) {
            Err(e) => !matches!(
                e.kind(),
                minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest
            ),
            Ok(_) => true,
        }
    }

    /// Renders a string; one whole `{{ expr }}` keeps the type of its value.
    pub fn render(&self, text: &str, scope: &Scope) -> Result<Json, TemplateError> {
        if !is_template(text) {
            return Ok(Json::String(text.to_string()));
        }
        if let Some(expr) = single_expression(text) {
            return self.eval(expr, scope);
        }
        self.render_string(text, scope, false).map(Json::String)
    }

    /// Renders to text (template files use `files = true`: Ansible's `trim_blocks`).
    pub fn render_string(&self, text: &str, scope: &Scope, files: bool) -> Result<String, TemplateError> {
        let env = if files { &self.files } else { &self.env };
        prefix_chain_guard(text, false)?;
        let text = keep_backreferences(text, false);
        let tmpl = env.template_from_str(&text).map_err(|e| TemplateError(describe(&e)))?;
        let mut names = with_looked_up_vars(&text, tmpl.undeclared_variables(false));
        names.extend(scope.template_lookup_variables(&text, &self.files));
        let ctx = scope.context(self, &names)?;
        tmpl.render(ctx).map_err(|e| TemplateError(describe(&e)))
    }

    /// Evaluates a bare expression (`when: x is defined and x > 1`).
    pub fn eval(&self, expr: &str, scope: &Scope) -> Result<Json, TemplateError> {
        prefix_chain_guard(expr, true)?;
        let expr = keep_backreferences(expr, true);
        let compiled = self
            .env
            .compile_expression(&expr)
            .map_err(|e| TemplateError(describe(&e)))?;
        let mut names = with_looked_up_vars(&expr, compiled.undeclared_variables(false));
        names.extend(scope.template_lookup_variables(&expr, &self.files));
        let ctx = scope.context(self, &names)?;
        let value = compiled.eval(ctx).map_err(|e| TemplateError(describe(&e)))?;
        to_json(&value)
    }

    /// Evaluates a condition: Ansible truthiness, with bare strings like `"yes"` read as booleans.
    pub fn condition(&self, expr: &str, scope: &Scope) -> Result<bool, TemplateError> {
        let expr = single_expression(expr.trim()).unwrap_or(expr);
        Ok(truthy(&self.eval(expr, scope)?))
    }

    /// Renders every string inside a value (module arguments, vars).
    pub fn render_value(&self, value: &Json, scope: &Scope) -> Result<Json, TemplateError> {
        Ok(match value {
            Json::String(s) => self.render(s, scope)?,
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, scope))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let key = match self.render(k, scope)? {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    out.insert(key, self.render_value(v, scope)?);
                }
                Json::Object(out)
            }
            other => other.clone(),
        })
    }
}

/// Ansible's truthiness for conditions.
pub fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "" | "false" | "no" | "off" | "0" | "n"
        ),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

fn to_json(value: &Value) -> Result<Json, TemplateError> {
    if value.is_undefined() {
        return Err(TemplateError("undefined variable".into()));
    }
    serde_json::to_value(value).map_err(|e| TemplateError(format!("cannot convert template result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backslash_before_a_digit_stays_in_string_literals() {
        assert_eq!(
            keep_backreferences(r#"a\1 {{ x | f("\1", '\2') }} \3"#, false),
            r#"a\1 {{ x | f("\\1", '\\2') }} \3"#
        );
        assert_eq!(keep_backreferences(r#""\1" ~ "\"\1""#, true), r#""\\1" ~ "\"\\1""#);
        assert_eq!(
            keep_backreferences(r"{% set a = '\n\d' %}", false),
            r"{% set a = '\n\d' %}"
        );
        assert!(prefix_chain_guard(&format!("{{{{ {}x }}}}", "- ".repeat(65)), false).is_err());
        assert!(prefix_chain_guard(&format!("{{{{ {}x }}}}", "not ".repeat(65)), true).is_err());
        assert!(
            prefix_chain_guard(
                &format!("{} {{{{ '{}' }}}} - -x", "-".repeat(200), "-".repeat(200)),
                false
            )
            .is_ok()
        );
        let raw = r#"{% raw %}{{ "\1" }}{% endraw %} {{ "\2" }}"#;
        assert_eq!(
            keep_backreferences(raw, false),
            r#"{% raw %}{{ "\1" }}{% endraw %} {{ "\\2" }}"#
        );
        let e = Engine::new();
        let mut s = Scope::new();
        s.set("line", serde_json::json!("HAProxy version 2.6.12-1 2025/10/03"));
        assert_eq!(
            e.render(
                r#"{{ line | regex_replace("^HA-?Proxy version (\d+(\.\d+)*).*$", "\1") }}"#,
                &s
            )
            .unwrap(),
            serde_json::json!("2.6.12")
        );
        assert_eq!(e.render(r#"{{ "x\1y" | length }}"#, &s).unwrap(), serde_json::json!(4));
    }
}
