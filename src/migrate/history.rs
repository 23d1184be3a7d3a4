//! Flyway's history table, `flyway_schema_history`, written the way Flyway writes it, so that
//! a schema migrated by Flyway is continued by tend and the other way round; and tend's
//! statement journal beside it, which lets a failed migration resume where it stopped.

use super::db::text;
use super::db::{Db, Script};
use super::files::Version;
use crate::modules::mysql::ResultSet;
use crate::transport::StepError;

/// Flyway's table name.
pub const TABLE: &str = "flyway_schema_history";

/// tend's journal of the statements of unfinished migrations.
pub const JOURNAL: &str = "tend_migrate_journal";

/// Flyway's `type` of a row.
pub mod kind {
    /// A versioned or repeatable SQL migration.
    pub const SQL: &str = "SQL";
    /// An undo migration (Flyway Teams' `U` files).
    pub const UNDO: &str = "UNDO_SQL";
    /// `baseline`.
    pub const BASELINE: &str = "BASELINE";
    /// The schema was created by the tool.
    pub const SCHEMA: &str = "SCHEMA";
    /// `repair` marked a migration whose file is gone as deleted.
    pub const DELETE: &str = "DELETE";
}

/// Flyway's description and script of a baseline row.
pub const BASELINE_TEXT: &str = "<< Flyway Baseline >>";

/// Flyway's description of a schema-creation row.
pub const SCHEMA_TEXT: &str = "<< Flyway Schema Creation >>";

/// The name of the server-side lock Flyway takes on MySQL and MariaDB around a migration:
/// `Flyway-` and Java's `String.hashCode` of `` `schema`.`flyway_schema_history` ``. tend takes
/// the same one, so a Flyway run and a tend run on one schema wait for each other.
pub fn lock_name(database: &str) -> String {
    let table = format!("`{database}`.`{TABLE}`");
    let hash = table
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    format!("Flyway-{hash}")
}

/// The lock each migration session holds while it runs (see `apply`): tend's own, beside
/// Flyway's.
pub fn session_lock_name(database: &str) -> String {
    format!("tend-session-{}", lock_name(database).trim_start_matches("Flyway-"))
}

/// Who installed a row: the login user without its host, as Flyway records it on MySQL.
const INSTALLED_BY: &str = "SUBSTRING_INDEX(USER(),'@',1)";

/// One row of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Order of installation.
    pub installed_rank: i64,
    /// `None` for repeatable migrations.
    pub version: Option<String>,
    /// The migration's description.
    pub description: String,
    /// `SQL`, `UNDO_SQL`, `BASELINE`, `SCHEMA`, ...
    pub kind: String,
    /// The file, relative to the migrations directory.
    pub script: String,
    /// Flyway's checksum of the file.
    pub checksum: Option<i32>,
    /// The database user.
    pub installed_by: String,
    /// When, as the server printed it.
    pub installed_on: String,
    /// Milliseconds.
    pub execution_time: i64,
    /// Whether it completed.
    pub success: bool,
}

/// A statement of an unfinished migration that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The migration's script.
    pub script: String,
    /// 1-based index of the statement in its file.
    pub statement: usize,
    /// SHA-256 of the statement's text.
    pub sha256: String,
    /// Whether the snapshot taken before it was restored since (its effect is gone).
    pub restored: bool,
}

/// Flyway's DDL for MySQL and MariaDB.
pub fn create(s: &mut Script, db: &Db) {
    let t = format!("{}.`{TABLE}`", db.schema());
    s.sql(&format!(
        "CREATE TABLE IF NOT EXISTS {t} (
    `installed_rank` INT NOT NULL,
    `version` VARCHAR(50),
    `description` VARCHAR(200) NOT NULL,
    `type` VARCHAR(20) NOT NULL,
    `script` VARCHAR(1000) NOT NULL,
    `checksum` INT,
    `installed_by` VARCHAR(100) NOT NULL,
    `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    `execution_time` INT NOT NULL,
    `success` BOOL NOT NULL,
    CONSTRAINT `{TABLE}_pk` PRIMARY KEY (`installed_rank`)
) ENGINE=InnoDB"
    ));
    // Flyway creates its index in a second statement; IF NOT EXISTS keeps this one repeatable.
    s.sql(&format!(
        "CREATE INDEX IF NOT EXISTS `{TABLE}_s_idx` ON {t} (`success`)"
    ));
}

/// tend's journal table.
pub fn create_journal(s: &mut Script, db: &Db) {
    s.sql(&format!(
        "CREATE TABLE IF NOT EXISTS {}.`{JOURNAL}` (
    `script` VARCHAR(1000) NOT NULL,
    `statement` INT NOT NULL,
    `line` INT NOT NULL,
    `sha256` CHAR(64) NOT NULL,
    `done_at` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    `restored` BOOL NOT NULL DEFAULT FALSE,
    PRIMARY KEY (`script`(200), `statement`)
) ENGINE=InnoDB",
        db.schema()
    ));
}

/// A new row, ranked after the last one. `execution_ms` is SQL (a number or an expression).
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    /// `None` for repeatable migrations.
    pub version: Option<&'a str>,
    /// Description.
    pub description: &'a str,
    /// Flyway's type.
    pub kind: &'a str,
    /// Script.
    pub script: &'a str,
    /// Checksum.
    pub checksum: Option<i32>,
    /// Milliseconds, as SQL.
    pub execution_ms: &'a str,
    /// Completed or failed.
    pub success: bool,
}

/// Appends the insert of a row.
pub fn insert(s: &mut Script, db: &Db, row: &NewRow<'_>) {
    let t = format!("{}.`{TABLE}`", db.schema());
    s.sql(&format!(
        "INSERT INTO {t} (`installed_rank`, `version`, `description`, `type`, `script`, `checksum`, `installed_by`, `execution_time`, `success`) \
         SELECT COALESCE(MAX(`installed_rank`), 0) + 1, {}, {}, {}, {}, {}, {INSTALLED_BY}, {}, {} FROM {t}",
        row.version.map_or("NULL".to_string(), text),
        text(row.description),
        text(row.kind),
        text(row.script),
        row.checksum.map_or("NULL".to_string(), |c| c.to_string()),
        row.execution_ms,
        i32::from(row.success),
    ));
}

/// Appends the schema-creation row Flyway writes when it created the schema (rank 0).
pub fn insert_schema_row(s: &mut Script, db: &Db) {
    s.sql(&format!(
        "INSERT INTO {}.`{TABLE}` (`installed_rank`, `version`, `description`, `type`, `script`, `checksum`, `installed_by`, `execution_time`, `success`) \
         VALUES (0, NULL, {}, {}, {}, NULL, {INSTALLED_BY}, 0, 1)",
        db.schema(),
        text(SCHEMA_TEXT),
        text(kind::SCHEMA),
        text(&format!("`{}`", db.database)),
    ));
}

/// What the server and schema look like before an operation.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// `@@read_only`: a replica.
    pub read_only: bool,
    /// The schema exists.
    pub schema_exists: bool,
    /// The history table exists.
    pub history_exists: bool,
    /// Rows, by rank.
    pub rows: Vec<Row>,
    /// Completed statements of unfinished migrations.
    pub journal: Vec<Done>,
}

/// What the history says of each version: its last row (an undo or a failure included; a
/// version whose last row is `DELETE` is gone), and the baseline version.
pub fn versions(rows: &[Row]) -> (Vec<(Version, &Row)>, Option<Version>) {
    let mut last: Vec<(Version, &Row)> = Vec::new();
    let mut baseline = None;
    for row in rows.iter().filter(|r| r.version.is_some() && r.kind != kind::SCHEMA) {
        let Some(v) = row.version.as_deref().and_then(Version::parse) else {
            continue;
        };
        if row.kind == kind::BASELINE {
            baseline = Some(v.clone());
        }
        if row.kind == kind::DELETE {
            last.retain(|(lv, _)| *lv != v);
            continue;
        }
        match last.iter_mut().find(|(lv, _)| *lv == v) {
            Some(slot) => slot.1 = row,
            None => last.push((v, row)),
        }
    }
    (last, baseline)
}

impl State {
    /// The schema's version: the highest version applied (or baselined) and not undone.
    pub fn current(&self) -> Option<Version> {
        versions(&self.rows)
            .0
            .into_iter()
            .filter(|(_, r)| r.success && r.kind != kind::UNDO)
            .map(|(v, _)| v)
            .max()
    }
}

/// Reads the state in one session.
pub async fn read(db: &Db) -> Result<State, StepError> {
    let schema = db.schema_literal();
    let mut s = Script::new();
    let m_status = s.mark();
    s.sql(&format!(
        "SELECT @@read_only AS ro, \
         (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {schema}) AS schema_exists, \
         (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = '{TABLE}') AS history, \
         (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = '{JOURNAL}') AS journal"
    ));
    let m_rows = s.mark();
    select_if_exists(
        &mut s,
        db,
        TABLE,
        "`installed_rank`, `version`, `description`, `type`, `script`, `checksum`, `installed_by`, `installed_on`, `execution_time`, `success`",
        "`installed_rank`",
    );
    let m_journal = s.mark();
    select_if_exists(
        &mut s,
        db,
        JOURNAL,
        "`script`, `statement`, `sha256`, `restored`",
        "`script`, `statement`",
    );
    s.mark();
    let reply = db.query("read the schema history", &s).await?;
    let status = reply.set(m_status);
    let flag = |c: &str| status.first(c).is_some_and(|v| v != "0");
    Ok(State {
        read_only: flag("ro"),
        schema_exists: flag("schema_exists"),
        history_exists: flag("history"),
        rows: rows(&reply.set(m_rows)),
        journal: journal(&reply.set(m_journal)),
    })
}

/// Appends a query of `columns` of `table` that returns nothing when the table does not exist
/// (yet): one session reads a schema with or without its history.
fn select_if_exists(s: &mut Script, db: &Db, table: &str, columns: &str, order: &str) {
    let query = format!("SELECT {columns} FROM {}.`{table}` ORDER BY {order}", db.schema());
    s.sql(&format!(
        "SET @tend_q = IF((SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = '{table}') > 0, {}, 'SELECT 1 AS none FROM DUAL WHERE FALSE')",
        db.schema_literal(),
        text(&query)
    ));
    s.sql("EXECUTE IMMEDIATE @tend_q");
}

fn rows(set: &ResultSet) -> Vec<Row> {
    let col = |name: &str| set.columns.iter().position(|c| c == name);
    let (
        Some(rank),
        Some(version),
        Some(desc),
        Some(kind),
        Some(script),
        Some(sum),
        Some(by),
        Some(on),
        Some(time),
        Some(ok),
    ) = (
        col("installed_rank"),
        col("version"),
        col("description"),
        col("type"),
        col("script"),
        col("checksum"),
        col("installed_by"),
        col("installed_on"),
        col("execution_time"),
        col("success"),
    )
    else {
        return Vec::new();
    };
    let get = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten();
    set.rows
        .iter()
        .map(|r| Row {
            installed_rank: get(r, rank).and_then(|v| v.parse().ok()).unwrap_or(0),
            version: get(r, version),
            description: get(r, desc).unwrap_or_default(),
            kind: get(r, kind).unwrap_or_default(),
            script: get(r, script).unwrap_or_default(),
            checksum: get(r, sum).and_then(|v| v.parse().ok()),
            installed_by: get(r, by).unwrap_or_default(),
            installed_on: get(r, on).unwrap_or_default(),
            execution_time: get(r, time).and_then(|v| v.parse().ok()).unwrap_or(0),
            success: get(r, ok).is_some_and(|v| v != "0"),
        })
        .collect()
}

fn journal(set: &ResultSet) -> Vec<Done> {
    let col = |name: &str| set.columns.iter().position(|c| c == name);
    let (Some(script), Some(n), Some(sha), Some(restored)) =
        (col("script"), col("statement"), col("sha256"), col("restored"))
    else {
        return Vec::new();
    };
    let get = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    set.rows
        .iter()
        .map(|r| Done {
            script: get(r, script),
            statement: get(r, n).parse().unwrap_or(0),
            sha256: get(r, sha),
            restored: get(r, restored) != "0",
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_name_is_flyways() {
        // Computed by Flyway's MySQLNamedLockTemplate (Java) for these schemas.
        assert_eq!(lock_name("mydb"), "Flyway-278632207");
        assert_eq!(lock_name("test"), "Flyway--562162009");
    }
}
