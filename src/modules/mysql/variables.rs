//! `mysql_variables`: reads or sets one global server variable (`SET GLOBAL`, or MySQL 8's
//! `SET PERSIST` / `SET PERSIST_ONLY`), changing it only when its value differs.

use super::{literal, run_sql, with_login};
use crate::modules::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param};
use serde_json::Value as Json;

/// `mysql_variables`: tuning (`max_connections`, `read_only` on a replica) applied to the
/// running server without a restart.
pub struct MysqlVariables;

const PARAMS: [Param; 8] = with_login([
    Param::new("variable", Kind::Str).required(),
    Param::new("value", Kind::Any),
    Param::new("mode", Kind::Str).choices(&["global", "persist", "persist_only"]),
]);

/// A server variable's name: letters, digits, `_` (and a plugin's `component.name`).
fn valid_variable(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').count() <= 2
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The wanted value as SQL: numbers bare, the rest as string literals (the server converts
/// `'ON'` and enum names itself).
fn sql_value(v: &Json) -> String {
    match v {
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => if *b { "ON" } else { "OFF" }.to_string(),
        Json::String(s) if s.parse::<i64>().is_ok() || s.parse::<f64>().is_ok_and(f64::is_finite) => s.clone(),
        Json::String(s) => literal(s),
        other => literal(&other.to_string()),
    }
}

/// The value as the server reports it, so that `ON`, `on`, `1`, `true` and `yes` compare equal
/// for booleans, numbers compare as numbers, and the rest without case.
fn normalized(s: &str) -> String {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => return "1".into(),
        "off" | "false" | "no" => return "0".into(),
        _ => {}
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
    {
        return format!("{f}");
    }
    t.to_ascii_lowercase()
}

fn wanted_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(b) => if *b { "ON" } else { "OFF" }.to_string(),
        other => other.to_string(),
    }
}

impl Module for MysqlVariables {
    fn name(&self) -> &'static str {
        "mysql_variables"
    }
    fn params(&self) -> &'static [Param] {
        &PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let var = args.str("variable").unwrap_or_default();
            if !valid_variable(var) {
                return Err(ModuleError::Args(format!(
                    "mysql_variables: `{var}` is not a server variable name"
                )));
            }
            let mode = args.str("mode").unwrap_or("global");
            let probe = format!(
                "SELECT VARIABLE_VALUE AS value FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = {};",
                literal(&var.to_ascii_uppercase())
            );
            let set = run_sql(ctx, args, &[probe]).await?.pop().unwrap_or_default();
            let Some(current) = set
                .rows
                .first()
                .and_then(|r| r.first())
                .map(|v| v.clone().unwrap_or_default())
            else {
                return Err(ModuleError::Failed(format!(
                    "mysql_variables: the server on {} has no variable `{var}`",
                    ctx.host
                )));
            };
            let Some(value) = args.get("value").filter(|v| !v.is_null()) else {
                let mut r = ModuleResult {
                    msg: Some(current.clone()),
                    ..ModuleResult::default()
                };
                r.data.insert("queries".into(), Json::Array(Vec::new()));
                return Ok(r);
            };
            let want = wanted_text(value);
            let mut r = ModuleResult::default();
            if normalized(&current) == normalized(&want) && mode != "persist_only" {
                r.msg = Some("Variable already set to requested value".into());
                r.data.insert("queries".into(), Json::Array(Vec::new()));
                return Ok(r);
            }
            let verb = match mode {
                "persist" => "SET PERSIST",
                "persist_only" => "SET PERSIST_ONLY",
                _ => "SET GLOBAL",
            };
            let query = format!("{verb} {var} = {}", sql_value(value));
            r.changed = true;
            if !ctx.check {
                run_sql(ctx, args, &[format!("{query};")]).await?;
            }
            r.msg = Some(format!("Variable change succeeded prev_value={current}"));
            r.data.insert("queries".into(), Json::Array(vec![query.into()]));
            if ctx.diff {
                r.diff.push(Diff {
                    path: var.to_string(),
                    before: format!("{var} = {current}\n"),
                    after: format!("{var} = {want}\n"),
                });
            }
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_values_and_comparison() {
        assert!(valid_variable("max_connections") && valid_variable("validate_password.length"));
        assert!(!valid_variable("max_connections=1; DROP") && !valid_variable("") && !valid_variable("a.b.c"));
        assert_eq!(sql_value(&json!(200)), "200");
        assert_eq!(sql_value(&json!("200")), "200");
        assert_eq!(sql_value(&json!(true)), "ON");
        assert_eq!(sql_value(&json!("ROW")), "'ROW'");
        assert_eq!(sql_value(&json!("x' OR 1")), r"'x\' OR 1'");
        assert_eq!(normalized("ON"), normalized("1"));
        assert_eq!(normalized("OFF"), normalized("false"));
        assert_eq!(normalized("200"), normalized("200.0"));
        assert_eq!(normalized("ROW"), normalized("row"));
        assert_ne!(normalized("151"), normalized("200"));
    }
}
