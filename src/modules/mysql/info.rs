//! `mysql_info`: what a server is and holds (version, databases and their sizes, settings,
//! status, engines, users, replication state), one SQL batch per part asked for by `filter`.

use super::query::typed;
use super::{ResultSet, run_sql, with_login};
use crate::modules::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use serde_json::{Map, Value as Json, json};

/// `mysql_info`: roles and checks read the server's version and replication state before
/// acting.
pub struct MysqlInfo;

const PARAMS: [Param; 9] = with_login([
    Param::new("filter", Kind::List),
    Param::new("exclude_fields", Kind::List),
    Param::new("return_empty_dbs", Kind::Bool),
    Param::new("login_db", Kind::Str),
]);

/// The parts tend returns, with the query for each.
const PARTS: &[(&str, &str)] = &[
    ("version", "SELECT VERSION() AS version;"),
    (
        "databases",
        "SELECT s.SCHEMA_NAME AS name, COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0) AS size, COUNT(t.TABLE_NAME) AS tables \
         FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME \
         GROUP BY s.SCHEMA_NAME ORDER BY s.SCHEMA_NAME;",
    ),
    ("settings", "SHOW GLOBAL VARIABLES;"),
    ("global_status", "SHOW GLOBAL STATUS;"),
    ("engines", "SHOW ENGINES;"),
    ("users", "SELECT * FROM mysql.user;"),
    ("master_status", "SHOW MASTER STATUS;"),
    ("slave_status", "SHOW SLAVE STATUS;"),
    ("slave_hosts", "SHOW SLAVE HOSTS;"),
];

/// Parts Ansible has that tend does not return (asked for: an empty result, not an error).
const UNSUPPORTED: &[&str] = &["users_info"];

/// The parts `filter` asks for: all without one; `!x` entries drop parts.
fn parts(filter: &[String]) -> Result<Vec<&'static str>, String> {
    let (neg, pos): (Vec<&String>, Vec<&String>) = filter.iter().partition(|f| f.starts_with('!'));
    for f in filter {
        let name = f.trim_start_matches('!');
        if !PARTS.iter().any(|(p, _)| *p == name) && !UNSUPPORTED.contains(&name) {
            let known: Vec<&str> = PARTS.iter().map(|(p, _)| *p).collect();
            return Err(format!(
                "mysql_info: unknown filter `{name}` (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(PARTS
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| pos.is_empty() || pos.iter().any(|f| f.as_str() == *p))
        .filter(|p| !neg.iter().any(|f| &f[1..] == *p))
        .collect())
}

fn row(set: &ResultSet, r: &[Option<String>], skip: &[&str]) -> Map<String, Json> {
    set.columns
        .iter()
        .zip(r)
        .filter(|(c, _)| !skip.contains(&c.as_str()))
        .map(|(c, v)| (c.clone(), typed(v)))
        .collect()
}

/// `SHOW ...` name/value pairs as a map.
fn pairs(set: &ResultSet) -> Json {
    Json::Object(
        set.rows
            .iter()
            .filter_map(|r| Some((r.first()?.clone()?, typed(r.get(1)?))))
            .collect(),
    )
}

fn version(v: &str) -> Json {
    let (num, suffix) = v.split_once('-').unwrap_or((v, ""));
    let n: Vec<i64> = num.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    let at = |i: usize| n.get(i).copied().unwrap_or(0);
    json!({"major": at(0), "minor": at(1), "release": at(2), "suffix": suffix, "full": v})
}

/// Turns one part's result set into Ansible's shape.
fn shape(part: &str, set: &ResultSet, return_empty_dbs: bool, exclude: &[String]) -> Json {
    match part {
        "version" => version(set.first("version").unwrap_or_default()),
        "databases" => Json::Object(
            set.rows
                .iter()
                .filter(|r| return_empty_dbs || r.get(2).and_then(|t| t.as_deref()) != Some("0"))
                .filter_map(|r| {
                    let mut db = Map::new();
                    if !exclude.iter().any(|e| e == "db_size") {
                        db.insert("size".into(), typed(r.get(1)?));
                    }
                    Some((r.first()?.clone()?, Json::Object(db)))
                })
                .collect(),
        ),
        "settings" | "global_status" => pairs(set),
        "engines" => Json::Object(
            set.rows
                .iter()
                .filter_map(|r| {
                    let mut f = row(set, r, &[]);
                    let name = f.shift_remove(set.columns.first()?)?;
                    Some((name.as_str()?.to_string(), Json::Object(f)))
                })
                .collect(),
        ),
        "users" => {
            let mut by_host = Map::new();
            for r in &set.rows {
                let fields = row(set, r, &["Password", "authentication_string"]);
                let (Some(Json::String(host)), Some(Json::String(user))) = (fields.get("Host"), fields.get("User"))
                else {
                    continue;
                };
                let entry = by_host.entry(host.clone()).or_insert_with(|| json!({}));
                entry[user.as_str()] = Json::Object(fields.clone());
            }
            Json::Object(by_host)
        }
        "master_status" => set
            .rows
            .first()
            .map_or_else(|| json!({}), |r| Json::Object(row(set, r, &[]))),
        "slave_status" => {
            let mut out = json!({});
            for r in &set.rows {
                let f = row(set, r, &[]);
                let key = |k: &str| {
                    f.get(k)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                };
                if let (Some(h), Some(p), Some(u)) = (key("Master_Host"), key("Master_Port"), key("Master_User")) {
                    out[h.as_str()][p.as_str()][u.as_str()] = Json::Object(f);
                }
            }
            out
        }
        "slave_hosts" => Json::Object(
            set.rows
                .iter()
                .filter_map(|r| Some((r.first()?.clone()?, Json::Object(row(set, r, &[])))))
                .collect(),
        ),
        _ => json!({}),
    }
}

impl Module for MysqlInfo {
    fn name(&self) -> &'static str {
        "mysql_info"
    }
    fn params(&self) -> &'static [Param] {
        &PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let filter = args.list("filter");
            let exclude = args.list("exclude_fields");
            let wanted = parts(&filter).map_err(ModuleError::Args)?;
            let batches: Vec<String> = wanted
                .iter()
                .filter_map(|p| PARTS.iter().find(|(n, _)| n == p).map(|(_, q)| q.to_string()))
                .collect();
            let sets = run_sql(ctx, args, &batches).await?;
            let mut r = ModuleResult::default();
            let empty = args.bool("return_empty_dbs", false);
            for (part, set) in wanted.iter().zip(&sets) {
                r.data.insert(part.to_string(), shape(part, set, empty, &exclude));
            }
            for f in &filter {
                if UNSUPPORTED.contains(&f.as_str()) {
                    r.data.insert(f.clone(), json!({}));
                }
            }
            r.msg = Some(wanted.join(", "));
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(columns: &[&str], rows: &[&[&str]]) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| (*v != "NULL").then(|| v.to_string())).collect())
                .collect(),
        }
    }

    #[test]
    fn filters_and_shapes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parts(&s(&["version", "databases"])).unwrap(), ["version", "databases"]);
        assert_eq!(
            parts(&s(&["!settings", "!global_status"])).unwrap().len(),
            PARTS.len() - 2
        );
        assert!(
            parts(&s(&["verison"]))
                .unwrap_err()
                .contains("unknown filter `verison`")
        );
        assert!(parts(&s(&["users_info"])).unwrap().is_empty());

        let v = shape(
            "version",
            &set(&["version"], &[&["10.11.6-MariaDB-0+deb12u1"]]),
            false,
            &[],
        );
        assert_eq!(
            v,
            json!({"major": 10, "minor": 11, "release": 6, "suffix": "MariaDB-0+deb12u1", "full": "10.11.6-MariaDB-0+deb12u1"})
        );

        let dbs = set(
            &["name", "size", "tables"],
            &[&["shop", "16384", "1"], &["empty", "0", "0"]],
        );
        assert_eq!(shape("databases", &dbs, false, &[]), json!({"shop": {"size": 16384}}));
        assert_eq!(
            shape("databases", &dbs, true, &s(&["db_size"])),
            json!({"shop": {}, "empty": {}})
        );

        let users = set(
            &["Host", "User", "Password", "Select_priv"],
            &[&["localhost", "root", "*AB", "Y"]],
        );
        assert_eq!(
            shape("users", &users, false, &[]),
            json!({"localhost": {"root": {"Host": "localhost", "User": "root", "Select_priv": "Y"}}})
        );
        let engines = set(&["Engine", "Support", "Transactions"], &[&["InnoDB", "DEFAULT", "YES"]]);
        assert_eq!(
            shape("engines", &engines, false, &[]),
            json!({"InnoDB": {"Support": "DEFAULT", "Transactions": "YES"}})
        );
        let replica = set(
            &["Master_Host", "Master_Port", "Master_User", "Slave_IO_Running"],
            &[&["10.0.0.1", "3306", "repl", "Yes"]],
        );
        assert_eq!(
            shape("slave_status", &replica, false, &[])["10.0.0.1"]["3306"]["repl"]["Slave_IO_Running"],
            "Yes"
        );
        assert_eq!(
            shape(
                "settings",
                &set(&["Variable_name", "Value"], &[&["max_connections", "151"]]),
                false,
                &[]
            ),
            json!({"max_connections": 151})
        );
    }
}
