//! Ansible's INI inventory format (`[group]`, `[group:vars]`, `[group:children]`, `host
//! key=value`, ranges, `host:port`), read as ansible-core's `ini` plugin reads it and turned
//! into the tree a YAML inventory has, so that one loader checks both.

use crate::diagnostic::{Diagnostic, Source};
use crate::yaml::{Node, Value};

/// Whether `text` is an INI inventory rather than YAML (`yaml_is_mapping`: what the YAML
/// parser made of it, `None` when it failed): no YAML mapping at all (a plain host list), or
/// not YAML and with a `[section]` header or a `host key=value` first line.
pub fn looks_like_ini(text: &str, yaml_is_mapping: Option<bool>) -> bool {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .peekable();
    let Some(&first) = lines.peek() else {
        return false;
    };
    match yaml_is_mapping {
        Some(mapping) => !mapping,
        None => {
            let section = |l: &str| l.starts_with('[') && l.ends_with(']');
            first.starts_with('[') || (first.contains('=') && !first.contains(": ")) || lines.any(section)
        }
    }
}

fn node(value: Value, line: usize, column: usize) -> Node {
    Node {
        value,
        line: line as u32,
        column: column as u32,
    }
}

fn text(s: &str, line: usize, column: usize) -> Node {
    node(Value::Str(s.to_string()), line, column)
}

/// One group as the file describes it so far.
#[derive(Default)]
struct Section {
    name: String,
    /// Where the group was first named.
    at: (usize, usize),
    /// Named by a `[name]` or `[name:children]` section (not only by `[name:vars]`).
    defined: bool,
    hosts: Vec<(Node, Node)>,
    vars: Vec<(Node, Node)>,
    children: Vec<(Node, Node)>,
}

/// Parses an INI inventory into the YAML inventory's tree (`group: {hosts, vars, children}`).
pub fn parse(source: &Source) -> Result<Node, Diagnostic> {
    let mut sections: Vec<Section> = Vec::new();
    let find = |sections: &mut Vec<Section>, name: &str, at: (usize, usize)| -> usize {
        if let Some(i) = sections.iter().position(|s| s.name == name) {
            return i;
        }
        sections.push(Section {
            name: name.to_string(),
            at,
            ..Section::default()
        });
        sections.len() - 1
    };
    // `all` and `ungrouped` exist before any section names them.
    let all = find(&mut sections, "all", (0, 0));
    sections[all].defined = true;
    let mut current = find(&mut sections, "ungrouped", (0, 0));
    sections[current].defined = true;
    let mut state = "hosts";
    // `[child]` named under `[parent:children]` before it is defined: (child, line, column).
    let mut child_refs: Vec<(String, usize, usize)> = Vec::new();
    for (n, raw) in source.text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim();
        let col = raw.len() - raw.trim_start().len() + 1;
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        // A section is `[name]` or `[name:type]` (what Ansible's section pattern accepts); other
        // lines starting with `[` are hosts (`[fe80::1]:2200`) unless they end with `]`.
        let header = strip_comment(trimmed);
        let section_like =
            header.starts_with('[') && header.ends_with(']') && header[1..header.len() - 1].matches(':').count() <= 1;
        if section_like || (trimmed.starts_with('[') && (trimmed.ends_with(']') || !trimmed.contains(']'))) {
            let Some(inner) = header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) else {
                return Err(source
                    .error(line as u32, col as u32, format!("invalid section `{trimmed}`"))
                    .with_hint("a section is `[group]`, `[group:vars]` or `[group:children]`, without spaces"));
            };
            let (name, kind) = match inner.split_once(':') {
                Some((g, k)) => (g, k),
                None => (inner, "hosts"),
            };
            if name.is_empty() || name.contains(char::is_whitespace) || kind.contains(char::is_whitespace) {
                return Err(source
                    .error(line as u32, col as u32, format!("invalid section `{trimmed}`"))
                    .with_hint("a section is `[group]`, `[group:vars]` or `[group:children]`, without spaces"));
            }
            if !matches!(kind, "hosts" | "vars" | "children") {
                return Err(source
                    .error(
                        line as u32,
                        col as u32,
                        format!("section `{trimmed}` has unknown type `{kind}`"),
                    )
                    .with_hint("the types are `vars` and `children` (`[group]` lists hosts)"));
            }
            current = find(&mut sections, name, (line, col + 1));
            if kind != "vars" {
                sections[current].defined = true;
            }
            state = kind;
            continue;
        }
        match state {
            "hosts" => {
                let (host, vars) = host_line(source, raw, line)?;
                sections[current].hosts.push((host, vars));
            }
            "vars" => {
                let Some((k, v)) = trimmed.split_once('=') else {
                    return Err(source
                        .error(
                            line as u32,
                            col as u32,
                            format!("expected `key=value`, found `{trimmed}`"),
                        )
                        .with_hint("a `[group:vars]` section holds one `key=value` per line"));
                };
                let value_col = col + k.len() + 1 + (v.len() - v.trim_start().len());
                sections[current]
                    .vars
                    .push((text(k.trim(), line, col), literal(v.trim(), line, value_col)));
            }
            _ => {
                let name = strip_comment(trimmed);
                if name.is_empty() || name.contains([':', ']']) || name.contains(char::is_whitespace) {
                    return Err(source.error(
                        line as u32,
                        col as u32,
                        format!("expected a group name, found `{trimmed}`"),
                    ));
                }
                child_refs.push((name.to_string(), line, col));
                sections[current]
                    .children
                    .push((text(name, line, col), node(Value::Null, line, col)));
            }
        }
    }
    for s in &sections {
        if !s.defined {
            let (line, col) = s.at;
            return Err(source
                .error(
                    line as u32,
                    col as u32,
                    format!("section `[{}:vars]` is for a group defined nowhere", s.name),
                )
                .with_hint(format!(
                    "add `[{}]` (its hosts) or list it under a `[...:children]` section",
                    s.name
                )));
        }
    }
    for (child, line, col) in child_refs {
        if !sections.iter().any(|s| s.name == child) {
            let mut d = source.error(
                line as u32,
                col as u32,
                format!("`{child}` is listed as a child but no section defines it"),
            );
            let names = sections.iter().map(|s| s.name.as_str());
            d = match crate::diagnostic::did_you_mean(&child, names) {
                Some(m) => d.with_hint(format!("did you mean `{m}`?")),
                None => d.with_hint(format!("define it with a `[{child}]` section")),
            };
            return Err(d);
        }
    }
    let groups = sections
        .into_iter()
        .filter(|s| {
            !matches!(s.name.as_str(), "all" | "ungrouped")
                || !s.hosts.is_empty()
                || !s.vars.is_empty()
                || !s.children.is_empty()
        })
        .map(|s| {
            let (line, col) = s.at;
            let mut body = Vec::new();
            for (key, items) in [("hosts", s.hosts), ("vars", s.vars), ("children", s.children)] {
                if !items.is_empty() {
                    body.push((text(key, line, col), node(Value::Map(items), line, col)));
                }
            }
            (text(&s.name, line, col), node(Value::Map(body), line, col))
        })
        .collect();
    Ok(node(Value::Map(groups), 1, 1))
}

/// `# comment` after a value (a section header or a group name).
fn strip_comment(s: &str) -> &str {
    s.split_once(" #")
        .or_else(|| s.split_once("\t#"))
        .map_or(s, |(a, _)| a)
        .trim()
}

/// `host[:port] key=value key2="a b" # comment`, split as `shlex.split(comments=True)` does.
fn host_line(source: &Source, raw: &str, line: usize) -> Result<(Node, Node), Diagnostic> {
    let col = raw.len() - raw.trim_start().len() + 1;
    let tokens =
        split_words(raw).ok_or_else(|| source.error(line as u32, col as u32, "unbalanced quotes in the host line"))?;
    let Some(((first, first_col), rest)) = tokens.split_first() else {
        return Err(source.error(line as u32, col as u32, "empty host line"));
    };
    let (host, port) = split_port(first);
    if host.trim() == "---" {
        return Err(source
            .error(line as u32, *first_col as u32, "`---` is not a host")
            .with_hint("a YAML inventory starts with a mapping such as `all:`"));
    }
    if first.ends_with(':') && port.is_none() {
        return Err(source
            .error(
                line as u32,
                *first_col as u32,
                format!("host `{first}` ends in `:` with no port"),
            )
            .with_hint("write `host:2222` for a port"));
    }
    let mut vars = Vec::new();
    if let Some(p) = port {
        vars.push((
            text("ansible_port", line, *first_col),
            node(Value::Int(p), line, *first_col),
        ));
    }
    for (t, c) in rest {
        let Some((k, v)) = t.split_once('=') else {
            return Err(source
                .error(
                    line as u32,
                    *c as u32,
                    format!("expected `key=value` after the host, found `{t}`"),
                )
                .with_hint("host variables are written `key=value` (quote values with spaces)"));
        };
        vars.push((text(k, line, *c), literal(v, line, c + k.len() + 1)));
    }
    Ok((text(host, line, *first_col), node(Value::Map(vars), line, *first_col)))
}

/// `host:port` (not an IPv6 address, whose colons are its own; a range's `[1:3]` is no port).
fn split_port(s: &str) -> (&str, Option<i64>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((addr, tail)) = rest.split_once(']')
        && addr.contains(':')
    {
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
        return (addr, port);
    }
    // The colons outside brackets: one, followed by digits, is the port.
    let mut depth = 0i32;
    let outside: Vec<usize> = s
        .char_indices()
        .filter_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ':' if depth == 0 => return Some(i),
                _ => {}
            }
            None
        })
        .collect();
    match outside.as_slice() {
        [i] => {
            let (h, p) = (&s[..*i], &s[i + 1..]);
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                (h, p.parse().ok())
            } else {
                (s, None)
            }
        }
        _ => (s, None),
    }
}

/// Words as `shlex.split(line, comments=True)` gives them, with the column each starts at.
fn split_words(line: &str) -> Option<Vec<(String, usize)>> {
    let mut words = Vec::new();
    let mut word: Option<(String, usize)> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        match quote {
            Some(q) => {
                if ch == q {
                    quote = None;
                } else if ch == '\\' && q == '"' {
                    match chars.peek() {
                        Some(&(_, n)) if matches!(n, '"' | '\\') => {
                            chars.next();
                            word.get_or_insert((String::new(), i + 1)).0.push(n);
                        }
                        _ => word.get_or_insert((String::new(), i + 1)).0.push(ch),
                    }
                } else {
                    word.get_or_insert((String::new(), i + 1)).0.push(ch);
                }
            }
            None if ch.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            // shlex: `#` ends the line even inside a word (`pass=ab#cd` is `pass=ab`).
            None if ch == '#' => break,
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                word.get_or_insert((String::new(), i + 1));
            }
            None if ch == '\\' => {
                if let Some((_, n)) = chars.next() {
                    word.get_or_insert((String::new(), i + 1)).0.push(n);
                }
            }
            None => word.get_or_insert((String::new(), i + 1)).0.push(ch),
        }
    }
    if quote.is_some() {
        return None;
    }
    words.extend(word);
    Some(words)
}

/// A value as Python's `ast.literal_eval` reads it (numbers, `True`/`False`/`None`, quoted
/// strings, lists, dicts); anything else is the text itself, as Ansible keeps it.
fn literal(s: &str, line: usize, column: usize) -> Node {
    let mut p = Literal { s: s.as_bytes(), i: 0 };
    // A complete literal may be followed by a comment (`8080 # port`).
    let parsed = p.value().filter(|_| {
        p.ws();
        p.i == p.s.len() || p.s[p.i] == b'#'
    });
    let value = parsed.unwrap_or_else(|| Value::Str(s.to_string()));
    node(value, line, column)
}

struct Literal<'a> {
    s: &'a [u8],
    i: usize,
}

impl Literal<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match *self.s.get(self.i)? {
            b'\'' | b'"' => self.string().map(Value::Str),
            b'[' | b'(' => {
                let close = if self.s[self.i] == b'[' { b']' } else { b')' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(node(self.value()?, 0, 0));
                    if !self.eat(b',') {
                        if self.eat(close) {
                            break;
                        }
                        return None;
                    }
                }
                Some(Value::Seq(items))
            }
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    let k = self.value()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value()?;
                    entries.push((node(k, 0, 0), node(v, 0, 0)));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            break;
                        }
                        return None;
                    }
                }
                Some(Value::Map(entries))
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && !matches!(self.s[self.i], b',' | b']' | b')' | b'}' | b':')
                    && !self.s[self.i].is_ascii_whitespace()
                {
                    self.i += 1;
                }
                let word = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                number_or_constant(word)
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let q = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&b) = self.s.get(self.i) {
            self.i += 1;
            if b == q {
                return String::from_utf8(out).ok();
            }
            if b == b'\\' {
                let e = *self.s.get(self.i)?;
                self.i += 1;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'0' => 0,
                    other => other,
                });
            } else {
                out.push(b);
            }
        }
        None
    }
}

/// Python's numbers and constants (a leading zero, as in `0644`, is no number in Python 3).
fn number_or_constant(w: &str) -> Option<Value> {
    match w {
        "True" => return Some(Value::Bool(true)),
        "False" => return Some(Value::Bool(false)),
        "None" => return Some(Value::Null),
        _ => {}
    }
    let digits = w.strip_prefix(['-', '+']).unwrap_or(w);
    if digits.is_empty() {
        return None;
    }
    let clean: String = w.chars().filter(|c| *c != '_').collect();
    if digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        if digits.len() > 1 && digits.starts_with('0') && digits.bytes().any(|b| b != b'0' && b != b'_') {
            return None;
        }
        return clean.parse().ok().map(Value::Int);
    }
    if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        let v = i64::from_str_radix(hex, 16).ok()?;
        return Some(Value::Int(if w.starts_with('-') { -v } else { v }));
    }
    if let Some(oct) = digits.strip_prefix("0o").or_else(|| digits.strip_prefix("0O")) {
        let v = i64::from_str_radix(oct, 8).ok()?;
        return Some(Value::Int(if w.starts_with('-') { -v } else { v }));
    }
    let looks_float = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+' | b'_'))
        && digits.bytes().any(|b| b.is_ascii_digit());
    if looks_float {
        return clean.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Float);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> serde_json::Value {
        literal(s, 1, 1).to_json()
    }

    #[test]
    fn values_are_read_as_literal_eval_reads_them() {
        assert_eq!(lit("1"), serde_json::json!(1));
        assert_eq!(lit("-3"), serde_json::json!(-3));
        assert_eq!(lit("1.5"), serde_json::json!(1.5));
        assert_eq!(lit("True"), serde_json::json!(true));
        assert_eq!(lit("yes"), serde_json::json!("yes"));
        assert_eq!(lit("0644"), serde_json::json!("0644"));
        assert_eq!(lit("'quoted'"), serde_json::json!("quoted"));
        assert_eq!(lit("[1, 'a']"), serde_json::json!([1, "a"]));
        assert_eq!(lit("{'k': [True, None]}"), serde_json::json!({"k": [true, null]}));
        assert_eq!(lit("/usr/bin/python3"), serde_json::json!("/usr/bin/python3"));
        assert_eq!(lit("a b"), serde_json::json!("a b"));
    }

    #[test]
    fn host_lines_split_as_shlex_does() {
        let w = split_words(r#"web1:2222 a=1 b="x y" c='p q' # note"#).unwrap_or_default();
        let words: Vec<&str> = w.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(words, ["web1:2222", "a=1", "b=x y", "c=p q"]);
        assert_eq!(split_port("web1:2222"), ("web1", Some(2222)));
        assert_eq!(split_port("fe80::1"), ("fe80::1", None));
        assert_eq!(split_port("[fe80::1]:22"), ("fe80::1", Some(22)));
        assert_eq!(split_port("web[1:2]:2222"), ("web[1:2]", Some(2222)));
        assert_eq!(split_port("web[1:2]"), ("web[1:2]", None));
        assert_eq!(lit("8080 # the port"), serde_json::json!(8080));
        assert_eq!(lit("hello # note"), serde_json::json!("hello # note"));
        assert!(looks_like_ini("# hosts\n[web]\nh1\n", None));
        assert!(!looks_like_ini("all:\n  hosts: {}\n", Some(true)));
        assert!(looks_like_ini("h1\nh2 ansible_port=22\n", Some(false)));
    }
}
