//! `mysql_query`: SQL with parameters; rows come back as data for `register`.

use super::{ResultSet, ident, literal, run_sql, with_login};
use crate::modules::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use serde_json::{Map, Value as Json};

/// `mysql_query`.
pub struct MysqlQuery;

const PARAMS: [Param; 9] = with_login([
    Param::new("query", Kind::Any).required(),
    Param::new("positional_args", Kind::Any),
    Param::new("named_args", Kind::Dict),
    Param::new("login_db", Kind::Str).aliases(&["db"]),
]);

fn sql_value(v: &Json) -> String {
    match v {
        Json::Null => "NULL".into(),
        Json::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => literal(s),
        other => literal(&other.to_string()),
    }
}

/// Replaces `%s` (in order) and `%(name)s` with quoted values; `%%` is a literal `%`.
/// Values are quoted as SQL literals (the client gets them on stdin, never in argv).
pub fn bind(query: &str, positional: &[Json], named: &Map<String, Json>) -> Result<String, String> {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    let mut next = 0;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(t) = tail.strip_prefix('%') {
            out.push('%');
            rest = t;
        } else if let Some(t) = tail.strip_prefix('s') {
            let v = positional
                .get(next)
                .ok_or_else(|| format!("the query has more `%s` than the {} positional_args", positional.len()))?;
            out.push_str(&sql_value(v));
            next += 1;
            rest = t;
        } else if let Some(t) = tail.strip_prefix('(') {
            let (name, after) = t
                .split_once(")s")
                .ok_or_else(|| "`%(` must be `%(name)s`".to_string())?;
            let v = named.get(name).ok_or_else(|| format!("named_args has no `{name}`"))?;
            out.push_str(&sql_value(v));
            rest = after;
        } else {
            out.push('%');
            rest = tail;
        }
    }
    out.push_str(rest);
    // A query without placeholders ignores the arguments (a list of queries shares them).
    if next > 0 && next < positional.len() {
        return Err(format!(
            "{} positional_args but only {next} `%s` in the query",
            positional.len()
        ));
    }
    Ok(out)
}

fn is_read(q: &str) -> bool {
    let first = q.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    matches!(
        first.as_str(),
        "SELECT" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" | "WITH"
    )
}

/// A value as Ansible returns it: integers as numbers, the rest as text.
pub(super) fn typed(v: &Option<String>) -> Json {
    match v {
        None => Json::Null,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n.to_string() == *s => Json::from(n),
            _ => Json::String(s.clone()),
        },
    }
}

fn rows_json(set: &ResultSet) -> Json {
    Json::Array(
        set.rows
            .iter()
            .map(|row| Json::Object(set.columns.iter().cloned().zip(row.iter().map(typed)).collect()))
            .collect(),
    )
}

impl Module for MysqlQuery {
    fn name(&self) -> &'static str {
        "mysql_query"
    }
    fn params(&self) -> &'static [Param] {
        &PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let queries: Vec<String> = match args.get("query") {
                Some(Json::String(s)) => vec![s.clone()],
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|q| q.as_str().map(str::to_string).unwrap_or_else(|| q.to_string()))
                    .collect(),
                _ => return Err(ModuleError::Args("`query` must be SQL text or a list of it".into())),
            };
            let positional: Vec<Json> = match args.get("positional_args") {
                Some(Json::Array(a)) => a.clone(),
                Some(other) => vec![other.clone()],
                None => Vec::new(),
            };
            let named = args
                .get("named_args")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default();
            let use_db = args
                .str("login_db")
                .map(|d| format!("USE {};\n", ident(d)))
                .unwrap_or_default();
            let mut batches = Vec::new();
            let mut writes = false;
            for q in &queries {
                let sql = bind(q, &positional, &named).map_err(ModuleError::Args)?;
                let sql = sql.trim().trim_end_matches(';').to_string();
                if is_read(&sql) {
                    batches.push(format!("{use_db}{sql};"));
                } else {
                    writes = true;
                    batches.push(format!("{use_db}{sql};\nSELECT ROW_COUNT() AS rowcount;"));
                }
            }
            if ctx.check && writes {
                return Ok(ModuleResult {
                    skipped: true,
                    msg: Some("not run in check mode: the queries change data".into()),
                    ..ModuleResult::default()
                });
            }
            let sets = run_sql(ctx, args, &batches).await?;
            let mut results = Vec::new();
            let mut counts = Vec::new();
            let mut changed = false;
            for (q, set) in queries.iter().zip(&sets) {
                if is_read(q) {
                    counts.push(Json::from(set.rows.len()));
                    results.push(rows_json(set));
                } else {
                    let n = set
                        .first("rowcount")
                        .and_then(|n| n.parse::<i64>().ok())
                        .unwrap_or(0)
                        .max(0);
                    changed |= n > 0;
                    counts.push(Json::from(n));
                    results.push(Json::Array(Vec::new()));
                }
            }
            let mut r = ModuleResult::changed(changed);
            r.data.insert("query_result".into(), Json::Array(results));
            r.data.insert("rowcount".into(), Json::Array(counts));
            r.data.insert("executed_queries".into(), queries.into());
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binds_parameters_safely() {
        let named = json!({"n": "it's"}).as_object().cloned().unwrap_or_default();
        assert_eq!(
            bind(
                "SELECT * FROM t WHERE a = %s AND b = %(n)s AND c LIKE 'x%%'",
                &[json!(5)],
                &named
            )
            .unwrap(),
            r"SELECT * FROM t WHERE a = 5 AND b = 'it\'s' AND c LIKE 'x%'"
        );
        assert!(bind("SELECT %s, %s", &[json!(1)], &named).is_err());
        assert!(bind("SELECT %s", &[json!(1), json!(2)], &named).is_err());
        assert_eq!(bind("SELECT 1", &[json!(1)], &named).unwrap(), "SELECT 1");
    }
}
