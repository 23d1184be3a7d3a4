//! Reading values out of a located YAML tree, with messages that name the file, line and
//! column: shared by every reader of tend's YAML (playbooks, scenarios).

use super::{Node, Value};
use crate::diagnostic::{Diagnostic, Source};

/// A mapping's entries (`null` is an empty mapping).
pub fn entries<'n>(node: &'n Node, source: &Source, what: &str) -> Result<&'n [(Node, Node)], Diagnostic> {
    match &node.value {
        Value::Map(e) => Ok(e),
        Value::Null => Ok(&[]),
        _ => Err(source.error(
            node.line,
            node.column,
            format!("{what} must be a mapping, found {}", node.kind()),
        )),
    }
}

/// A list's items (`null` is an empty list).
pub fn items<'n>(node: &'n Node, source: &Source, what: &str) -> Result<&'n [Node], Diagnostic> {
    match &node.value {
        Value::Seq(i) => Ok(i),
        Value::Null => Ok(&[]),
        _ => Err(source.error(
            node.line,
            node.column,
            format!("{what} must be a list, found {}", node.kind()),
        )),
    }
}

/// A scalar as text.
pub fn text(node: &Node, source: &Source, what: &str) -> Result<String, Diagnostic> {
    match &node.value {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Ok(node.scalar_text().unwrap_or_default()),
        _ => Err(source.error(
            node.line,
            node.column,
            format!("{what} must be a string, found {}", node.kind()),
        )),
    }
}

/// A number, or a string that is one.
pub fn number(node: &Node, source: &Source, what: &str) -> Result<f64, Diagnostic> {
    match &node.value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| source.error(node.line, node.column, format!("{what} must be a number, found `{s}`"))),
        _ => Err(source.error(
            node.line,
            node.column,
            format!("{what} must be a number, found {}", node.kind()),
        )),
    }
}
