//! YAML input with a source location on every node, read the way Ansible users write it
//! (YAML 1.1 booleans such as `yes`, legacy octal such as `0644`).

mod node;

pub use node::{Node, Value};

use crate::diagnostic::{Diagnostic, Source};
use std::path::Path;

/// Reads and parses one YAML file; an empty file is `null`.
pub fn load_file(path: &Path) -> Result<(Source, Node), Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let d = Diagnostic::in_file(path, format!("cannot read file: {e}"));
        if e.kind() == std::io::ErrorKind::NotFound {
            d.with_hint("check the path, or pass another one")
        } else {
            d
        }
    })?;
    let source = Source::new(path, text);
    let node = parse(&source)?;
    Ok((source, node))
}

/// Parses YAML text that belongs to `source`.
pub fn parse(source: &Source) -> Result<Node, Diagnostic> {
    if source.text.trim().is_empty() {
        return Ok(Node::null());
    }
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        with_snippet: false,
    };
    let mut node = serde_saphyr::from_str_with_options::<Node>(&source.text, options).map_err(|e| {
        let message = syntax_message(&e);
        match e.location() {
            Some(loc) => source.error(loc.line() as u32, loc.column() as u32, message),
            None => Diagnostic::in_file(&source.path, message),
        }
    })?;
    let lines: Vec<&str> = source.text.lines().collect();
    pyyaml_booleans(&mut node, &lines);
    Ok(node)
}

/// The booleans PyYAML (and so Ansible) reads; the parser also takes `y`, `n` and odd casings,
/// which Ansible users mean as strings (`answer: y`, a host called `n`).
const PYYAML_BOOLS: [&str; 18] = [
    "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off",
    "Off", "OFF",
];

fn pyyaml_booleans(node: &mut Node, lines: &[&str]) {
    match &mut node.value {
        Value::Bool(_) => {
            let token: String = lines
                .get((node.line as usize).wrapping_sub(1))
                .map(|l| {
                    l.chars()
                        .skip((node.column as usize).saturating_sub(1))
                        .take_while(|c| c.is_alphanumeric())
                        .collect()
                })
                .unwrap_or_default();
            if !token.is_empty() && !PYYAML_BOOLS.contains(&token.as_str()) {
                node.value = Value::Str(token);
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| pyyaml_booleans(n, lines)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            pyyaml_booleans(k, lines);
            pyyaml_booleans(v, lines);
        }),
        _ => {}
    }
}

/// The parser's own message without its position (we print the position ourselves).
fn syntax_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    // serde-saphyr appends " at line L, column C"; the diagnostic already says where.
    let trimmed = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let trimmed = trimmed.trim_end_matches('.');
    if let Some(rest) = trimmed.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set DuplicateKeyPolicy").next().unwrap_or(rest);
        return format!("duplicate key `{key}`: a key may appear only once in a mapping");
    }
    format!("invalid YAML: {trimmed}")
}
