//! `mysql_db`: databases present or absent (with encoding and collation), dumped or imported.

use super::{ident, literal, run_sql, with_login};
use crate::modules::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::shell::quote;

/// `mysql_db`.
pub struct MysqlDb;

const PARAMS: [Param; 10] = with_login([
    Param::new("name", Kind::List).required().aliases(&["db"]),
    Param::new("state", Kind::Str).choices(&["present", "absent", "dump", "import"]),
    Param::new("encoding", Kind::Str),
    Param::new("collation", Kind::Str),
    Param::new("target", Kind::Str),
]);

impl Module for MysqlDb {
    fn name(&self) -> &'static str {
        "mysql_db"
    }
    fn params(&self) -> &'static [Param] {
        &PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let names = args.list("name");
            let state = args.str("state").unwrap_or("present");
            match state {
                "dump" | "import" => return dump_or_import(ctx, args, &names, state).await,
                _ => {}
            }
            let list = names.iter().map(|n| literal(n)).collect::<Vec<_>>().join(",");
            let probe = format!(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({list}) ORDER BY SCHEMA_NAME;"
            );
            let found = run_sql(ctx, args, &[probe]).await?.pop().unwrap_or_default();
            let existing = |n: &str| {
                found
                    .rows
                    .iter()
                    .find(|r| r.first().and_then(|v| v.as_deref()) == Some(n))
            };
            let (enc, coll) = (args.str("encoding"), args.str("collation"));
            let mut sql = Vec::new();
            let mut changes = Vec::new();
            for n in &names {
                match (state, existing(n)) {
                    ("present", None) => {
                        let mut s = format!("CREATE DATABASE {}", ident(n));
                        if let Some(e) = enc {
                            s.push_str(&format!(" CHARACTER SET {}", literal(e)));
                        }
                        if let Some(c) = coll {
                            s.push_str(&format!(" COLLATE {}", literal(c)));
                        }
                        sql.push(s + ";");
                        changes.push(format!("created {n}"));
                    }
                    ("present", Some(row)) => {
                        let cur_enc = row.get(1).cloned().flatten().unwrap_or_default();
                        let cur_coll = row.get(2).cloned().flatten().unwrap_or_default();
                        let enc_diff = enc.is_some_and(|e| !e.eq_ignore_ascii_case(&cur_enc));
                        let coll_diff = coll.is_some_and(|c| !c.eq_ignore_ascii_case(&cur_coll));
                        if enc_diff || coll_diff {
                            let mut s = format!("ALTER DATABASE {}", ident(n));
                            if let Some(e) = enc {
                                s.push_str(&format!(" CHARACTER SET {}", literal(e)));
                            }
                            if let Some(c) = coll {
                                s.push_str(&format!(" COLLATE {}", literal(c)));
                            }
                            sql.push(s + ";");
                            changes.push(format!("altered {n}"));
                        }
                    }
                    ("absent", Some(_)) => {
                        sql.push(format!("DROP DATABASE {};", ident(n)));
                        changes.push(format!("dropped {n}"));
                    }
                    _ => {}
                }
            }
            if !sql.is_empty() && !ctx.check {
                run_sql(ctx, args, &[sql.join("\n")]).await?;
            }
            let mut r = ModuleResult::changed(!changes.is_empty());
            r.msg = (!changes.is_empty()).then(|| changes.join(", "));
            r.data.insert("db".into(), names.join(",").into());
            r.data.insert("db_list".into(), names.into());
            Ok(r)
        })
    }
}

async fn dump_or_import(
    ctx: &Ctx<'_>,
    args: &Args,
    names: &[String],
    state: &str,
) -> Result<ModuleResult, ModuleError> {
    let target = args
        .str("target")
        .ok_or_else(|| ModuleError::Args(format!("`state: {state}` needs `target` (a file on the host)")))?;
    if ctx.check {
        return Ok(ModuleResult::changed(true));
    }
    let script = if state == "dump" {
        format!(
            "dump=$(command -v mariadb-dump || command -v mysqldump) || exit 127\n\
             \"$dump\" --defaults-extra-file=\"$cnf\" --single-transaction --routines --databases {} > {t}.tmp && mv {t}.tmp {t}\n",
            names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(" "),
            t = quote(target),
        )
    } else {
        let db = names.first().map(String::as_str).unwrap_or_default();
        // The database must exist before the client can select it (a dump made with
        // `--databases` creates it too; this keeps plain dumps working).
        let create = quote(&format!("CREATE DATABASE IF NOT EXISTS {}", super::ident(db)));
        format!(
            "\"$client\" --defaults-extra-file=\"$cnf\" -e {create} && \"$client\" --defaults-extra-file=\"$cnf\" {} < {}\n",
            quote(db),
            quote(target)
        )
    };
    let out = super::run_with_login(ctx, args, &script, "").await?;
    if !out.success() {
        return Err(ModuleError::remote(
            format!("{state} failed: {}", crate::modules::last_error_line(&out, "")),
            format!("{state} {} {target}", names.join(",")),
            &out,
        ));
    }
    let mut r = ModuleResult::changed(true);
    r.msg = Some(format!("{state} {} {target}", names.join(",")));
    Ok(r)
}
