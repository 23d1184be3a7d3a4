//! `mysql_user`: accounts, passwords and privileges (`shop.*:ALL/other.*:SELECT,INSERT`),
//! replaced or appended, compared with `SHOW GRANTS` so a second run changes nothing.

use super::{ident, literal, run_sql, with_login};
use crate::modules::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};

/// `mysql_user`.
pub struct MysqlUser;

const PARAMS: [Param; 15] = with_login([
    Param::new("name", Kind::Str).required().aliases(&["user"]),
    Param::new("password", Kind::Str).secret(),
    Param::new("host", Kind::Str),
    Param::new("priv", Kind::Any),
    Param::new("append_privs", Kind::Bool),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("update_password", Kind::Str).choices(&["always", "on_create"]),
    // `password` is the server's hash (`*` and 40 hex digits), not the password.
    Param::new("encrypted", Kind::Bool),
    // Privilege names compared as written (`column_case_sensitive`): tend compares them
    // upper-cased, which only differs for column names; accepted for roles that pass it.
    Param::new("column_case_sensitive", Kind::Bool),
    // `{}` or none: no TLS requirement (what the server has by default); others not yet.
    Param::new("tls_requires", Kind::Any),
]);

/// Privileges per object (`shop.*` → {SELECT, INSERT}).
type Privs = BTreeMap<String, BTreeSet<String>>;

fn normalize_object(obj: &str) -> String {
    obj.trim().replace(['`', '"'], "")
}

fn normalize_priv(p: &str) -> String {
    let p = p.trim().to_ascii_uppercase();
    match p.as_str() {
        "ALL" => "ALL PRIVILEGES".into(),
        "GRANT OPTION" => "GRANT".into(),
        // MariaDB 10.5+ shows REPLICATION CLIENT as BINLOG MONITOR and accepts both.
        "BINLOG MONITOR" => "REPLICATION CLIENT".into(),
        "REPLICATION REPLICA" => "REPLICATION SLAVE".into(),
        _ => p,
    }
}

/// Parses Ansible's `priv` (string `db.*:A,B/db2.t:C` or a mapping object → privileges).
pub fn parse_priv(value: &Json) -> Result<Privs, String> {
    let mut out = Privs::new();
    let mut add = |obj: &str, privs: &str| -> Result<(), String> {
        if obj.trim().is_empty() || !obj.contains('.') {
            return Err(format!("`{obj}` must be `db.table` (`*` allowed), e.g. `shop.*`"));
        }
        let set: BTreeSet<String> = privs.split(',').map(normalize_priv).filter(|p| !p.is_empty()).collect();
        if set.is_empty() {
            return Err(format!("no privileges given for `{obj}`"));
        }
        out.entry(normalize_object(obj)).or_default().extend(set);
        Ok(())
    };
    match value {
        Json::String(s) => {
            for part in s.split('/').filter(|p| !p.trim().is_empty()) {
                let (obj, privs) = part
                    .rsplit_once(':')
                    .ok_or_else(|| format!("`{part}` must be `db.table:PRIV,PRIV`"))?;
                add(obj, privs)?;
            }
        }
        Json::Object(map) => {
            for (obj, privs) in map {
                let text = match privs {
                    Json::String(s) => s.clone(),
                    Json::Array(a) => a.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(","),
                    other => return Err(format!("privileges of `{obj}` must be text, found `{other}`")),
                };
                add(obj, &text)?;
            }
        }
        other => return Err(format!("`priv` must be text or a mapping, found `{other}`")),
    }
    Ok(out)
}

/// Parses `SHOW GRANTS` lines.
pub fn parse_grants(lines: &[String]) -> Privs {
    let mut out = Privs::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privs, tail)) = rest.split_once(" ON ") else {
            continue;
        };
        let Some((obj, after)) = tail.split_once(" TO ") else {
            continue;
        };
        let obj = normalize_object(obj);
        let set = out.entry(obj).or_default();
        for p in privs.split(',').map(normalize_priv) {
            if p != "USAGE" && !p.is_empty() && !p.starts_with("PROXY") {
                set.insert(p);
            }
        }
        if after.contains("WITH GRANT OPTION") {
            set.insert("GRANT".into());
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

fn object_sql(obj: &str) -> String {
    let (db, table) = obj.split_once('.').unwrap_or((obj, "*"));
    let part = |p: &str| if p == "*" { "*".to_string() } else { ident(p) };
    format!("{}.{}", part(db), part(table))
}

fn grant_sql(obj: &str, privs: &BTreeSet<String>, account: &str) -> String {
    let grant_option = privs.contains("GRANT");
    let list: Vec<&str> = privs.iter().filter(|p| *p != "GRANT").map(String::as_str).collect();
    let list = if list.is_empty() {
        "USAGE".to_string()
    } else {
        list.join(", ")
    };
    format!(
        "GRANT {list} ON {} TO {account}{};",
        object_sql(obj),
        if grant_option { " WITH GRANT OPTION" } else { "" }
    )
}

/// Revokes exactly what `SHOW GRANTS` listed (revoking what is not held is an error).
fn revoke_sql(obj: &str, have: &BTreeSet<String>, account: &str) -> Vec<String> {
    let mut out = Vec::new();
    let list: Vec<&str> = have.iter().filter(|p| *p != "GRANT").map(String::as_str).collect();
    if !list.is_empty() {
        out.push(format!(
            "REVOKE {} ON {} FROM {account};",
            list.join(", "),
            object_sql(obj)
        ));
    }
    if have.contains("GRANT") {
        out.push(format!("REVOKE GRANT OPTION ON {} FROM {account};", object_sql(obj)));
    }
    out
}

impl Module for MysqlUser {
    fn name(&self) -> &'static str {
        "mysql_user"
    }
    fn params(&self) -> &'static [Param] {
        &PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let name = args.str("name").unwrap_or_default();
            let host = args.str("host").unwrap_or("localhost");
            let account = format!("{}@{}", literal(name), literal(host));
            let state = args.str("state").unwrap_or("present");
            let desired = args
                .get("priv")
                .map(parse_priv)
                .transpose()
                .map_err(ModuleError::Args)?;
            let password = args.str("password");
            let encrypted = args.bool("encrypted", false);
            if encrypted
                && let Some(h) = password
                && !(h.len() == 41 && h.starts_with('*') && h[1..].bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(ModuleError::Args(
                    "`mysql_user` encrypted: `password` must be the server's hash (`*` and 40 hex digits)".into(),
                ));
            }
            if let Some(t) = args.get("tls_requires")
                && !(t.is_null() || t.as_object().is_some_and(|m| m.is_empty()) || t.as_str() == Some(""))
            {
                return Err(ModuleError::Args(
                    "`mysql_user` tls_requires: only `{}` (no requirement) is supported yet".into(),
                ));
            }
            let mut probe = vec![format!(
                "SELECT COUNT(*) AS n FROM mysql.user WHERE User = {} AND Host = {};",
                literal(name),
                literal(host)
            )];
            if let Some(pw) = password {
                let hash = if encrypted {
                    literal(&pw.to_uppercase())
                } else {
                    format!("CONCAT('*', UPPER(SHA1(UNHEX(SHA1({})))))", literal(pw))
                };
                probe.push(format!(
                    "SELECT COUNT(*) AS same FROM mysql.user WHERE User = {} AND Host = {} AND authentication_string = {hash};",
                    literal(name),
                    literal(host),
                ));
            }
            let identified = |p: &str| {
                if encrypted {
                    format!(" IDENTIFIED BY PASSWORD {}", literal(&p.to_uppercase()))
                } else {
                    format!(" IDENTIFIED BY {}", literal(p))
                }
            };
            let sets = run_sql(ctx, args, &probe).await?;
            let exists = sets.first().and_then(|s| s.first("n")).is_some_and(|n| n != "0");
            let same_password = sets.get(1).and_then(|s| s.first("same")).is_some_and(|n| n != "0");
            let mut sql = Vec::new();
            let mut changes = Vec::new();
            if state == "absent" {
                if exists {
                    sql.push(format!("DROP USER {account};"));
                    changes.push("dropped".to_string());
                }
            } else {
                let current = if exists {
                    let grants = run_sql(ctx, args, &[format!("SHOW GRANTS FOR {account};")])
                        .await?
                        .pop()
                        .unwrap_or_default();
                    parse_grants(
                        &grants
                            .rows
                            .iter()
                            .filter_map(|r| r.first().cloned().flatten())
                            .collect::<Vec<_>>(),
                    )
                } else {
                    Privs::new()
                };
                if !exists {
                    let by = password.map(identified).unwrap_or_default();
                    sql.push(format!("CREATE USER {account}{by};"));
                    changes.push("created".into());
                } else if password.is_some()
                    && !same_password
                    && args.str("update_password").unwrap_or("always") == "always"
                {
                    sql.push(format!(
                        "ALTER USER {account}{};",
                        identified(password.unwrap_or_default())
                    ));
                    changes.push("password changed".into());
                }
                if let Some(desired) = &desired {
                    let append = args.bool("append_privs", false);
                    for (obj, privs) in desired {
                        let have = current.get(obj).cloned().unwrap_or_default();
                        let need = if append {
                            privs.difference(&have).cloned().collect()
                        } else {
                            privs.clone()
                        };
                        if (append && !need.is_empty()) || (!append && have != *privs) {
                            if !append {
                                sql.extend(revoke_sql(obj, &have, &account));
                            }
                            sql.push(grant_sql(obj, &need, &account));
                            changes.push(format!("privileges on {obj}"));
                        }
                    }
                    if !append {
                        for (obj, have) in current.iter().filter(|(o, _)| !desired.contains_key(*o)) {
                            sql.extend(revoke_sql(obj, have, &account));
                            changes.push(format!("revoked on {obj}"));
                        }
                    }
                }
            }
            if !sql.is_empty() && !ctx.check {
                run_sql(ctx, args, &[sql.join("\n")]).await?;
            }
            let mut r = ModuleResult::changed(!changes.is_empty());
            r.msg = Some(if changes.is_empty() {
                "user is as wanted".into()
            } else {
                changes.join(", ")
            });
            r.data.insert("user".into(), name.into());
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn priv_strings_and_grants_compare_equal() {
        let want = parse_priv(&json!("shop.*:ALL/other.t:select,insert")).unwrap();
        let have = parse_grants(&[
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC'".into(),
            "GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%`".into(),
            "GRANT SELECT, INSERT ON `other`.`t` TO `app`@`%`".into(),
        ]);
        assert_eq!(want, have);
        let grant = parse_priv(&json!({"*.*": "REPLICATION SLAVE,GRANT"})).unwrap();
        assert_eq!(
            parse_grants(&["GRANT REPLICATION SLAVE ON *.* TO `repl`@`%` WITH GRANT OPTION".into()]),
            grant
        );
        assert!(parse_priv(&json!("shop")).is_err());
        assert_eq!(
            parse_priv(&json!("*.*:REPLICATION SLAVE,REPLICATION CLIENT")).unwrap(),
            parse_grants(&["GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `repl`@`%`".into()])
        );
        assert_eq!(
            grant_sql("shop.*", &want["shop.*"], "'a'@'%'"),
            "GRANT ALL PRIVILEGES ON `shop`.* TO 'a'@'%';"
        );
    }
}
