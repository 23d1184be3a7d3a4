//! YAML input with a source location on every node, read the way Ansible users write it
//! (YAML 1.1 booleans such as `yes`, legacy octal such as `0644`).

mod node;
pub mod read;

pub use node::{Node, Value};
pub use read::{entries, items, number, text};

use crate::diagnostic::{Diagnostic, Source};
use std::path::Path;

/// Reads and parses one YAML file; an empty file is `null`.
pub fn load_file(path: &Path) -> Result<(Source, Node), Diagnostic> {
    let source = read_source(path)?;
    let node = parse(&source)?;
    reveal_sealed(&source, &node);
    Ok((source, node))
}

/// Reads one input file as text. A vault-encrypted file is opened with the run's vault
/// passwords (its [`Source`] is sealed: errors never show its lines).
pub fn read_source(path: &Path) -> Result<Source, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| {
        let d = Diagnostic::in_file(path, format!("cannot read file: {e}"));
        if e.kind() == std::io::ErrorKind::NotFound {
            d.with_hint("check the path, or pass another one")
        } else {
            d
        }
    })?;
    if crate::vault::is_vault(&bytes) {
        return Ok(Source::sealed(path, crate::vault::open_file(path, &bytes)?));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        Source::new(path, "")
            .error(line as u32, 0, "cannot read file: not UTF-8 text")
            .with_hint("save it as UTF-8")
    })?;
    Ok(Source::new(path, text))
}

/// Every string value read from a vaulted file becomes a secret of the run
/// ([`crate::vault::reveal`]).
pub fn reveal_sealed(source: &Source, node: &Node) {
    if source.sealed {
        reveal_strings(node);
    }
}

/// Every value of a vaulted file is a secret, numbers included (keys are names, not secrets;
/// booleans and nulls tell nothing).
fn reveal_strings(node: &Node) {
    match &node.value {
        Value::Str(s) => crate::vault::reveal(s),
        Value::Int(i) => crate::vault::reveal(&i.to_string()),
        Value::Float(f) => crate::vault::reveal(&f.to_string()),
        Value::Seq(items) => items.iter().for_each(reveal_strings),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| reveal_strings(v)),
        _ => {}
    }
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
        let tabs = message.contains("tab");
        let d = match e.location() {
            Some(loc) => source.error(loc.line() as u32, loc.column() as u32, message),
            None => Diagnostic::in_file(&source.path, message),
        };
        if tabs {
            d.with_hint("YAML is indented with spaces; replace the tab")
        } else {
            d
        }
    })?;
    let lines: Vec<&str> = source.text.lines().collect();
    pyyaml_booleans(&mut node, &lines);
    open_vaults(&mut node, source)?;
    Ok(node)
}

/// `!vault |` values (the parser keeps their text, which starts with the vault header) are
/// opened with the run's vault passwords and become secrets of the run. One no password given
/// opens stays encrypted, as Ansible leaves it until it is used: a task that uses it fails
/// then ([`crate::vault::still_sealed`]); a malformed one is an error here.
fn open_vaults(node: &mut Node, source: &Source) -> Result<(), Diagnostic> {
    match &mut node.value {
        Value::Str(s) if s.starts_with(crate::vault::HEADER) && crate::vault::is_vault(s.as_bytes()) => {
            let plain = match crate::vault::decrypt(s.as_bytes(), crate::vault::keys::keyring()) {
                Ok(plain) => plain,
                Err(crate::vault::VaultError::NoPassword(_) | crate::vault::VaultError::WrongPassword(_)) => {
                    return Ok(());
                }
                Err(e) => {
                    return Err(source.error(
                        node.line,
                        node.column,
                        format!("cannot decrypt this `!vault` value: {e}"),
                    ));
                }
            };
            let plain = String::from_utf8(plain)
                .map_err(|_| source.error(node.line, node.column, "the decrypted `!vault` value is not UTF-8 text"))?;
            crate::vault::reveal(&plain);
            *s = plain;
        }
        Value::Seq(items) => {
            for n in items {
                open_vaults(n, source)?;
            }
        }
        Value::Map(entries) => {
            for (_, v) in entries {
                open_vaults(v, source)?;
            }
        }
        _ => {}
    }
    Ok(())
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
    if trimmed.starts_with("multiple YAML documents detected") {
        return "invalid YAML: a second document starts here (after a `---`); the file must hold one".to_string();
    }
    format!("invalid YAML: {trimmed}")
}
