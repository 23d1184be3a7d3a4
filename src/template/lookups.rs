//! Ansible's `lookup()`/`query()` in templates, with the lookup plugins roles use: `file`,
//! `env`, `pipe`, `fileglob`, `first_found`, `items`, `list`, `vars`, `password`, `template`.
//! They run on
//! the control node. Files are looked up as Ansible looks them up: `files/` under each of the
//! task's search paths (its role, the playbook's directory), then each path itself.
//!
//! `lookup()` gives one value (a single result as it is, several joined with commas, as
//! Ansible's `wantlist=False`); `query()` (`q()`) always a list.

use minijinja::value::{Rest, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use std::path::{Path, PathBuf};

/// The context variable holding the task's search paths (set by [`super::Scope`]).
pub const SEARCH_PATHS: &str = "__tend_search_paths";

/// The lookups tend has; any other name is refused by `validate` and at run time.
pub const NAMES: &[&str] = &[
    "file",
    "env",
    "pipe",
    "fileglob",
    "first_found",
    "items",
    "list",
    "vars",
    "password",
    "template",
];

/// Adds `lookup`, `query` and `q`.
pub fn register(env: &mut Environment<'static>) {
    env.add_function("lookup", |state: &State, name: String, rest: Rest<ValueOrKwargs>| {
        run(state, &name, rest).map(|items| match items.len() {
            1 => items.into_iter().next().unwrap_or_default(),
            _ if items.iter().all(|v| v.as_str().is_some()) => Value::from(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => Value::from(items),
        })
    });
    let query = |state: &State, name: String, rest: Rest<ValueOrKwargs>| run(state, &name, rest).map(Value::from);
    env.add_function("query", query);
    env.add_function("q", query);
}

fn fail(name: &str, message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("lookup `{name}`: {message}"))
}

/// Runs lookup `name` over its terms; the results, one per term (or more: `fileglob`).
fn run(state: &State, name: &str, rest: Rest<ValueOrKwargs>) -> Result<Vec<Value>, Error> {
    let name = short(name);
    let mut terms = rest.into_values();
    let kwargs = if terms.last().is_some_and(Value::is_kwargs) {
        terms.pop()
    } else {
        None
    };
    let kw = |key: &str| {
        kwargs
            .as_ref()
            .and_then(|k| k.get_attr(key).ok())
            .filter(|v| !v.is_undefined())
    };
    let paths: Vec<PathBuf> = state
        .lookup(SEARCH_PATHS)
        .and_then(|v| {
            v.try_iter()
                .ok()
                .map(|it| it.filter_map(|p| p.as_str().map(PathBuf::from)).collect())
        })
        .unwrap_or_default();
    let strings = |terms: &[Value]| -> Vec<String> {
        terms
            .iter()
            .flat_map(|t| match t.kind() {
                minijinja::value::ValueKind::Seq => t.try_iter().map(|i| i.collect::<Vec<_>>()).unwrap_or_default(),
                _ => vec![t.clone()],
            })
            .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_string))
            .collect()
    };
    match name {
        "env" => Ok(strings(&terms)
            .iter()
            .map(|var| {
                let default = kw("default").map(|d| d.to_string()).unwrap_or_default();
                Value::from(std::env::var(var).unwrap_or(default))
            })
            .collect()),
        "file" => {
            let rstrip = kw("rstrip").is_none_or(|v| v.is_true());
            let lstrip = kw("lstrip").is_some_and(|v| v.is_true());
            strings(&terms)
                .iter()
                .map(|f| {
                    let path = find(&paths, "files", f).ok_or_else(|| fail(name, format!("`{f}` not found")))?;
                    let bytes = std::fs::read(&path).map_err(|e| fail(name, format!("{}: {e}", path.display())))?;
                    let bytes = crate::vault::open_content(&path, bytes).map_err(|e| fail(name, e))?;
                    let mut text = String::from_utf8_lossy(&bytes).to_string();
                    if rstrip {
                        text = text.trim_end().to_string();
                    }
                    if lstrip {
                        text = text.trim_start().to_string();
                    }
                    Ok(Value::from(text))
                })
                .collect()
        }
        "pipe" => strings(&terms)
            .iter()
            .map(|cmd| {
                // In the playbook's directory, as Ansible runs it.
                let mut command = std::process::Command::new("sh");
                if let Some(dir) = paths.last() {
                    command.current_dir(dir);
                }
                let out = command
                    .args(["-c", cmd])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| fail(name, format!("`{cmd}`: {e}")))?;
                if !out.status.success() {
                    return Err(fail(
                        name,
                        format!(
                            "`{cmd}` exited with {}: {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    ));
                }
                Ok(Value::from(String::from_utf8_lossy(&out.stdout).trim_end().to_string()))
            })
            .collect(),
        "fileglob" => {
            let json: Vec<serde_json::Value> = strings(&terms).into_iter().map(serde_json::Value::String).collect();
            let found = crate::executor::loops_items(crate::playbook::LoopKind::Fileglob, json.into(), &paths, "files")
                .map_err(|e| fail(name, e))?;
            // Ansible's `lookup('fileglob', ...)` joins with commas; `query` keeps the list.
            Ok(found.iter().map(|v| Value::from(minijinja::value::Serde(v))).collect())
        }
        "first_found" => {
            let json: Vec<serde_json::Value> = terms
                .iter()
                .map(|t| serde_json::to_value(t).unwrap_or_default())
                .collect();
            let mut value = serde_json::Value::Array(json);
            if let Some(files) = kw("files") {
                let mut m = serde_json::Map::new();
                m.insert("files".into(), serde_json::to_value(&files).unwrap_or_default());
                if let Some(p) = kw("paths") {
                    m.insert("paths".into(), serde_json::to_value(&p).unwrap_or_default());
                }
                if let Some(s) = kw("skip") {
                    m.insert("skip".into(), s.is_true().into());
                }
                value = serde_json::Value::Array(vec![serde_json::Value::Object(m)]);
            }
            let found = crate::executor::loops_items(crate::playbook::LoopKind::FirstFound, value, &paths, "files")
                .map_err(|e| fail(name, e))?;
            Ok(found.iter().map(|v| Value::from(minijinja::value::Serde(v))).collect())
        }
        "items" | "list" => Ok(terms
            .into_iter()
            .flat_map(|t| match (name, t.kind()) {
                ("items", minijinja::value::ValueKind::Seq) => {
                    t.try_iter().map(|i| i.collect::<Vec<_>>()).unwrap_or_default()
                }
                _ => vec![t],
            })
            .collect()),
        "vars" => strings(&terms)
            .iter()
            .map(|var| match state.lookup(var) {
                Some(v) if !v.is_undefined() => Ok(v),
                _ => match kw("default") {
                    Some(d) => Ok(d),
                    None => Err(fail(name, format!("no variable `{var}`"))),
                },
            })
            .collect(),
        "template" => strings(&terms)
            .iter()
            .map(|f| {
                let text = template_text(&paths, f).map_err(|e| fail(name, e))?;
                // As a template file: Ansible's `trim_blocks`; the variables it uses are in the
                // context (see `template_variables`).
                let mut env = state.env().clone();
                if let Some(syntax) = super::syntax(true) {
                    env.set_syntax(syntax);
                }
                let tmpl = env
                    .template_from_str(&text)
                    .map_err(|e| fail(name, format!("`{f}`: {e}")))?;
                let vars: std::collections::BTreeMap<String, Value> = tmpl
                    .undeclared_variables(false)
                    .into_iter()
                    .filter_map(|v| state.lookup(&v).map(|value| (v, value)))
                    .collect();
                tmpl.render(vars)
                    .map(Value::from)
                    .map_err(|e| fail(name, format!("`{f}`: {e}")))
            })
            .collect(),
        "password" => strings(&terms)
            .iter()
            .map(|t| password(t, paths.last().map(PathBuf::as_path)).map(Value::from))
            .collect(),
        other => Err(fail(
            other,
            format!("tend has no such lookup (it has {})", NAMES.join(", ")),
        )),
    }
}

/// `ansible.builtin.file` is `file`.
pub fn short(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name)
}

/// `~/x` on the control node.
fn home(name: &str) -> PathBuf {
    match (name.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => PathBuf::from(name),
    }
}

/// A control-node file: absolute (or `~/`), or under `subdir` of a search path, or in one
/// (the last search path is the playbook's directory).
/// The text of a template file for the `template` lookup, found in `templates/` of the search
/// paths (opened if vaulted).
fn template_text(paths: &[PathBuf], name: &str) -> Result<String, String> {
    let path = find(paths, "templates", name).ok_or_else(|| format!("`{name}` not found"))?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = crate::vault::open_content(&path, bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The variables the templates named by `lookup('template', 'literal')` in `text` use, so the
/// context of `text` holds them.
pub fn template_variables(text: &str, paths: &[String], env: &Environment<'static>) -> Vec<String> {
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let mut names = Vec::new();
    for (i, _) in text
        .match_indices("'template'")
        .chain(text.match_indices("\"template\""))
    {
        let Some(arg) = text[i + 10..].trim_start().strip_prefix(',').map(str::trim_start) else {
            continue;
        };
        let Some(q) = arg.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let Some(file) = arg[1..].split(q).next() else {
            continue;
        };
        if let Ok(t) = template_text(&paths, file)
            && let Ok(tmpl) = env.template_from_str(&t)
        {
            names.extend(tmpl.undeclared_variables(false));
        }
    }
    names
}

fn find(paths: &[PathBuf], subdir: &str, name: &str) -> Option<PathBuf> {
    let p = home(name);
    if p.is_absolute() {
        return p.exists().then_some(p);
    }
    paths
        .iter()
        .flat_map(|b| [b.join(subdir).join(name), b.join(name)])
        .find(|c| c.exists())
}

/// `password` lookup: `path [length=N] [chars=ascii_letters,digits,...]`: the password stored
/// in `path` on the control node, made (random, mode 0600) the first time, as Ansible keeps
/// one per file; `/dev/null` gives a fresh one each time.
fn password(term: &str, base: Option<&Path>) -> Result<String, Error> {
    let mut words = term.split_whitespace();
    let given = words.next().ok_or_else(|| fail("password", "needs a file"))?;
    // Relative to the playbook's directory, as Ansible resolves it.
    let path_buf = match (home(given), base) {
        (p, Some(b)) if p.is_relative() => b.join(p),
        (p, _) => p,
    };
    let path = path_buf
        .to_str()
        .ok_or_else(|| fail("password", "the file name is not text"))?;
    let mut length = 20usize;
    let mut chars = String::new();
    for w in words {
        match w.split_once('=') {
            Some(("length", n)) => length = n.parse().map_err(|_| fail("password", format!("length `{n}`")))?,
            Some(("chars", c)) => {
                for set in c.split(',') {
                    chars.push_str(match set {
                        "ascii_letters" => "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                        "ascii_lowercase" => "abcdefghijklmnopqrstuvwxyz",
                        "ascii_uppercase" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                        "digits" => "0123456789",
                        "hexdigits" => "0123456789abcdefABCDEF",
                        "punctuation" => "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
                        literal => literal,
                    });
                }
            }
            Some((opt @ ("encrypt" | "seed" | "ident"), _)) => {
                return Err(fail(
                    "password",
                    format!("`{opt}=` is not supported yet (the password would be used unhashed or not repeat)"),
                ));
            }
            _ => return Err(fail("password", format!("unknown option `{w}`"))),
        }
    }
    if chars.is_empty() {
        chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:".into();
    }
    // Each character once: sets given twice do not weigh it more (nor exhaust the sampling).
    let mut seen = std::collections::BTreeSet::new();
    chars.retain(|c| seen.insert(c));
    if chars.chars().count() > 255 {
        return Err(fail("password", "more than 255 different characters"));
    }
    let keep = path != "/dev/null";
    if keep && let Ok(existing) = std::fs::read_to_string(path) {
        // Ansible stores `password salt=...`; the password is the first word.
        let pw = existing.split_whitespace().next().unwrap_or_default().to_string();
        crate::vault::reveal(&pw);
        return Ok(pw);
    }
    let alphabet: Vec<char> = chars.chars().collect();
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % alphabet.len().max(1);
    let mut out = String::new();
    while out.chars().count() < length {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| fail("password", format!("no randomness: {e}")))?;
        for b in bytes.iter().map(|b| *b as usize).filter(|b| *b < limit) {
            if out.chars().count() < length {
                out.push(alphabet[b % alphabet.len()]);
            }
        }
    }
    if keep {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail("password", format!("{}: {e}", dir.display())))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| fail("password", format!("{path}: {e}")))?;
        f.write_all(format!("{out}\n").as_bytes())
            .map_err(|e| fail("password", format!("{path}: {e}")))?;
    }
    crate::vault::reveal(&out);
    Ok(out)
}

/// The lookup names a template calls (`lookup('x', ...)`, `query("x")`, `q('x')`), for checks
/// before anything runs.
pub fn called(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Only the template's expressions: `$db->query("x")` in plain text is no lookup.
    let bare = !text.contains("{{") && !text.contains("{%");
    let code: String = super::code::parts(text, bare)
        .into_iter()
        .map(|(_, part)| format!("{part}\n"))
        .collect();
    let text = code.as_str();
    for (i, _) in text.match_indices('(') {
        let head = text[..i].trim_end();
        let called = ["lookup", "query", "q"].iter().any(|f| {
            head.ends_with(f)
                && !head[..head.len() - f.len()].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.')
        });
        if !called {
            continue;
        }
        let rest = text[i + 1..].trim_start();
        let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        if let Some(end) = rest[1..].find(q) {
            out.push(rest[1..1 + end].to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::called;

    #[test]
    fn only_template_code_is_scanned_for_lookups() {
        assert_eq!(called("{{ lookup('file', 'x') }} and q(\"y\")"), ["file"]);
        assert_eq!(called(r#"$db->query("SELECT 1") {{ x }}"#), Vec::<String>::new());
        assert_eq!(called("query('items', [1])"), ["items"]);
    }
}
