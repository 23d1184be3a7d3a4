//! `mysql_replication`: read primary/replica status, point a replica at a primary with GTID,
//! start/stop/reset replication. SQL that works on MariaDB 10.x and MySQL 8.0.

use super::{ResultSet, literal, run_sql, with_login};
use crate::modules::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use serde_json::{Map, Value as Json};

/// `mysql_replication`.
pub struct MysqlReplication;

const PARAMS: [Param; 15] = with_login([
    Param::new("mode", Kind::Str).required().choices(&[
        "getprimary",
        "getreplica",
        "changeprimary",
        "startreplica",
        "stopreplica",
        "resetprimary",
        "resetreplica",
        "resetreplicaall",
        "getmaster",
        "getslave",
        "changemaster",
        "startslave",
        "stopslave",
        "resetmaster",
        "resetslave",
        "resetslaveall",
    ]),
    Param::new("primary_host", Kind::Str).aliases(&["master_host"]),
    Param::new("primary_user", Kind::Str).aliases(&["master_user"]),
    Param::new("primary_password", Kind::Str)
        .aliases(&["master_password"])
        .secret(),
    Param::new("primary_port", Kind::Int).aliases(&["master_port"]),
    Param::new("primary_connect_retry", Kind::Int).aliases(&["master_connect_retry"]),
    Param::new("primary_use_gtid", Kind::Str)
        .choices(&["slave_pos", "current_pos", "disabled"])
        .aliases(&["master_use_gtid"]),
    Param::new("primary_delay", Kind::Int).aliases(&["master_delay"]),
    // A binlog position instead of GTID (roles written for MySQL without GTID).
    Param::new("primary_log_file", Kind::Str).aliases(&["master_log_file"]),
    Param::new("primary_log_pos", Kind::Int).aliases(&["master_log_pos"]),
]);

fn set_to_map(set: &ResultSet) -> Map<String, Json> {
    let mut m = Map::new();
    if let Some(row) = set.rows.first() {
        for (c, v) in set.columns.iter().zip(row) {
            m.insert(c.clone(), v.clone().map_or(Json::Null, Json::String));
        }
    }
    m
}

impl Module for MysqlReplication {
    fn name(&self) -> &'static str {
        "mysql_replication"
    }
    fn params(&self) -> &'static [Param] {
        &PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let mode = match args.str("mode").unwrap_or_default() {
                "getmaster" => "getprimary",
                "getslave" => "getreplica",
                "changemaster" => "changeprimary",
                "startslave" => "startreplica",
                "stopslave" => "stopreplica",
                "resetmaster" => "resetprimary",
                "resetslave" => "resetreplica",
                "resetslaveall" => "resetreplicaall",
                other => other,
            };
            let mut r = ModuleResult::default();
            if mode == "getprimary" {
                let sets = run_sql(
                    ctx,
                    args,
                    &[
                        "SHOW MASTER STATUS;".into(),
                        "SELECT @@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_current_pos AS gtid_current_pos, @@server_id AS server_id, @@read_only AS read_only;".into(),
                    ],
                )
                .await?;
                let mut m = sets.first().map(set_to_map).unwrap_or_default();
                m.insert(
                    "Is_Primary".into(),
                    Json::Bool(sets.first().is_some_and(|s| !s.rows.is_empty())),
                );
                m.extend(sets.get(1).map(set_to_map).unwrap_or_default());
                r.data.extend(m);
                return Ok(r);
            }
            let status = run_sql(ctx, args, &["SHOW SLAVE STATUS;".into()])
                .await?
                .pop()
                .unwrap_or_default();
            let configured = !status.rows.is_empty();
            let running =
                status.first("Slave_IO_Running") == Some("Yes") && status.first("Slave_SQL_Running") == Some("Yes");
            let stopped =
                status.first("Slave_IO_Running") != Some("Yes") && status.first("Slave_SQL_Running") != Some("Yes");
            let sql: Vec<String> = match mode {
                "getreplica" => {
                    r.data.extend(set_to_map(&status));
                    r.data.insert("Is_Replica".into(), Json::Bool(configured));
                    return Ok(r);
                }
                "startreplica" if !configured => {
                    return Err(ModuleError::Failed(
                        "replication is not configured here; use `mode: changeprimary` first".into(),
                    ));
                }
                "startreplica" if running => Vec::new(),
                "startreplica" => vec!["START SLAVE;".into()],
                "stopreplica" if !configured || stopped => Vec::new(),
                "stopreplica" => vec!["STOP SLAVE;".into()],
                "resetprimary" => vec!["RESET MASTER;".into()],
                "resetreplica" => vec!["STOP SLAVE;".into(), "RESET SLAVE;".into()],
                "resetreplicaall" if !configured => Vec::new(),
                "resetreplicaall" => vec!["STOP SLAVE;".into(), "RESET SLAVE ALL;".into()],
                "changeprimary" => change_primary(args, &status, running)?,
                other => return Err(ModuleError::Args(format!("unknown mode `{other}`"))),
            };
            r.changed = !sql.is_empty();
            if r.changed && !ctx.check {
                run_sql(ctx, args, &[sql.join("\n")]).await?;
            }
            r.msg = Some(if r.changed {
                format!("{mode}: done")
            } else {
                format!("{mode}: nothing to do")
            });
            Ok(r)
        })
    }
}

/// `CHANGE MASTER TO` only when host, user, port or GTID mode differ from what is configured;
/// a running replica is stopped for the change and started again.
fn change_primary(args: &Args, status: &ResultSet, running: bool) -> Result<Vec<String>, ModuleError> {
    let mut opts = Vec::new();
    let mut differs = status.rows.is_empty();
    if let Some(h) = args.str("primary_host") {
        differs |= status.first("Master_Host") != Some(h);
        opts.push(format!("MASTER_HOST={}", literal(h)));
    }
    if let Some(u) = args.str("primary_user") {
        differs |= status.first("Master_User") != Some(u);
        opts.push(format!("MASTER_USER={}", literal(u)));
    }
    if let Some(p) = args.str("primary_password") {
        opts.push(format!("MASTER_PASSWORD={}", literal(p)));
    }
    if let Some(p) = args.int("primary_port") {
        differs |= status.first("Master_Port") != Some(p.to_string().as_str());
        opts.push(format!("MASTER_PORT={p}"));
    }
    if let Some(r) = args.int("primary_connect_retry") {
        opts.push(format!("MASTER_CONNECT_RETRY={r}"));
    }
    if let Some(d) = args.int("primary_delay") {
        differs |= status.first("SQL_Delay") != Some(d.to_string().as_str());
        opts.push(format!("MASTER_DELAY={d}"));
    }
    // A binlog position only matters when the replica is (re)pointed: the replica's own
    // `Master_Log_File` moves on with every rotation, so it is never compared.
    if let Some(f) = args.str("primary_log_file").filter(|f| !f.is_empty()) {
        opts.push(format!("MASTER_LOG_FILE={}", literal(f)));
    }
    if let Some(p) = args.int("primary_log_pos") {
        opts.push(format!("MASTER_LOG_POS={p}"));
    }
    if let Some(g) = args.str("primary_use_gtid") {
        let shown = match g {
            "slave_pos" => "Slave_Pos",
            "current_pos" => "Current_Pos",
            _ => "No",
        };
        differs |= status.first("Using_Gtid") != Some(shown);
        opts.push(format!("MASTER_USE_GTID={g}"));
    }
    if opts.is_empty() {
        return Err(ModuleError::Args(
            "`changeprimary` needs at least `primary_host`".into(),
        ));
    }
    if !differs {
        return Ok(Vec::new());
    }
    let mut sql = Vec::new();
    if running {
        sql.push("STOP SLAVE;".to_string());
    }
    sql.push(format!("CHANGE MASTER TO {};", opts.join(", ")));
    if running {
        sql.push("START SLAVE;".to_string());
    }
    Ok(sql)
}
