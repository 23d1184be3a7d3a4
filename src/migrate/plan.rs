//! `plan`: what each pending statement would do to the live tables, as the server itself
//! answers. Every `ALTER TABLE`, `CREATE INDEX` and `DROP INDEX` is run against an empty copy
//! of its table (`CREATE TABLE ... LIKE`) in a scratch schema, with `ALGORITHM=INSTANT`, then
//! `NOCOPY`, `INPLACE`, `COPY` and the weakest lock each accepts: the first the server takes is
//! what it would do to the real table. The scratch session writes no binary log (replicas see
//! nothing) and the scratch schema is dropped at the end; the migrated schema is only read.

use super::db::text;
use super::db::{Db, Script};
use super::files::Migration;
use super::shape::{Action, shape};
use crate::modules::mysql::ident;
use crate::transport::StepError;
use std::collections::{BTreeMap, BTreeSet};

/// Algorithm and lock pairs tried, cheapest first.
const ATTEMPTS: &str = "INSTANT:NONE,NOCOPY:NONE,NOCOPY:SHARED,NOCOPY:EXCLUSIVE,INPLACE:NONE,INPLACE:SHARED,INPLACE:EXCLUSIVE,COPY:SHARED,COPY:EXCLUSIVE";

/// Rows copied per second and bytes per second assumed for a `COPY` estimate: a table copy
/// on a busy server's disks, on the low side.
const COPY_ROWS_PER_S: f64 = 100_000.0;
const COPY_BYTES_PER_S: f64 = 40.0 * 1024.0 * 1024.0;

/// Tables larger than this (by the server's estimate) are not counted row by row.
const COUNT_LIMIT: u64 = 2_000_000;

/// One statement of the plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// The migration file.
    pub file: String,
    /// The statement's first line in it.
    pub line: usize,
    /// The statement as sent.
    pub sql: String,
    /// What it is.
    pub action: Action,
    /// The table it changes, for DDL.
    pub table: Option<String>,
    /// `INSTANT`, `NOCOPY`, `INPLACE`, `COPY`; `None` when not asked (not DDL on a table) or
    /// refused by the server.
    pub algorithm: Option<String>,
    /// `NONE`, `SHARED`, `EXCLUSIVE`.
    pub lock: Option<String>,
    /// Rows of the live table (exact below two million, else the server's estimate).
    pub rows: Option<u64>,
    /// Data and index bytes of the live table.
    pub bytes: Option<u64>,
    /// Seconds a `COPY` would take, roughly.
    pub estimate_s: Option<f64>,
    /// Loses data: drops a table or column, truncates, narrows a column.
    pub destructive: bool,
    /// What the server said when it took none of the algorithms.
    pub error: Option<String>,
}

impl Step {
    /// Blocks writes to its table while it runs: a copy, or any lock but `NONE`; or unknown
    /// (the server took none of the algorithms on the copy, or it was not asked), which counts
    /// as blocking: a statement is only let through on a large table when it is known not to be.
    pub fn blocking(&self) -> bool {
        self.algorithm.as_deref() == Some("COPY")
            || self.lock.as_deref().is_some_and(|l| l != "NONE")
            || self.error.is_some()
    }

    /// Larger than the limit (rows or bytes).
    pub fn over(&self, limit: &Limit) -> bool {
        match limit {
            Limit::Rows(n) => self.rows.unwrap_or(0) > *n,
            Limit::Bytes(n) => self.bytes.unwrap_or(0) > *n,
        }
    }
}

/// `migrate_blocking_limit`: a row count, or a size with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Rows.
    Rows(u64),
    /// Bytes.
    Bytes(u64),
}

impl Limit {
    /// `100000` (rows), `500MB`, `2GiB`, `10k` rows.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().replace('_', "");
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        let n: u64 = digits.parse().ok()?;
        let unit = s[digits.len()..].trim().to_ascii_lowercase();
        let bytes = |m: u64| Some(Self::Bytes(n.checked_mul(m)?));
        match unit.as_str() {
            "" | "rows" => Some(Self::Rows(n)),
            "k" => Some(Self::Rows(n.checked_mul(1000)?)),
            "m" => Some(Self::Rows(n.checked_mul(1_000_000)?)),
            "b" => bytes(1),
            "kb" => bytes(1000),
            "mb" => bytes(1000 * 1000),
            "gb" => bytes(1000 * 1000 * 1000),
            "kib" => bytes(1024),
            "mib" => bytes(1024 * 1024),
            "gib" => bytes(1024 * 1024 * 1024),
            _ => None,
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rows(n) => write!(f, "{n} rows"),
            Self::Bytes(n) => write!(f, "{n} bytes"),
        }
    }
}

/// The scratch schema's name for this run: random, so that no other run's is touched.
fn scratch_name() -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    format!("tend_plan_{}_{}", std::process::id(), hex::encode(bytes))
}

/// Asks the server about every statement of `pending`. One session.
pub async fn plan(db: &Db, pending: &[&Migration]) -> Result<Vec<Step>, StepError> {
    let scratch = scratch_name();
    let sx = ident(&scratch);
    let mut s = Script::new();
    s.sql("SET SESSION sql_log_bin = 0");
    s.sql(&format!("DROP DATABASE IF EXISTS {sx}"));
    s.sql(&format!("CREATE DATABASE {sx}"));
    s.sql(&format!("USE {sx}"));
    s.statement(&format!(
        "CREATE PROCEDURE {sx}.tend_try(IN q LONGTEXT)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    GET DIAGNOSTICS CONDITION 1 @tend_msg = MESSAGE_TEXT;
    SET @tend_ok = 0;
    IF @tend_err = '' THEN SET @tend_err = @tend_msg; END IF;
  END;
  SET @tend_ok = 1;
  EXECUTE IMMEDIATE q;
END"
    ));
    s.statement(&format!(
        "CREATE PROCEDURE {sx}.tend_probe(IN t VARCHAR(64), IN q LONGTEXT, IN sep VARCHAR(2))
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE a VARCHAR(40);
  DECLARE before_cols LONGTEXT;
  SET @tend_alg = NULL, @tend_err = '';
  SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, CHAR(9), COLUMN_TYPE) ORDER BY ORDINAL_POSITION SEPARATOR '\n')
    INTO before_cols FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = t;
  WHILE i < 9 AND @tend_alg IS NULL DO
    SET i = i + 1;
    SET a = SUBSTRING_INDEX(SUBSTRING_INDEX({}, ',', i), ',', -1);
    CALL {sx}.tend_try(CONCAT(q, sep, 'ALGORITHM=', SUBSTRING_INDEX(a, ':', 1), sep, 'LOCK=', SUBSTRING_INDEX(a, ':', -1)));
    IF @tend_ok = 1 THEN SET @tend_alg = a; END IF;
  END WHILE;
  SELECT @tend_alg AS alg, @tend_err AS err, before_cols AS before_cols,
    (SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, CHAR(9), COLUMN_TYPE) ORDER BY ORDINAL_POSITION SEPARATOR '\n')
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = t) AS after_cols;
END",
        text(&scratch),
        text(ATTEMPTS),
        text(&scratch),
    ));
    let sizes_mark = s.mark();
    s.sql(&format!(
        "SELECT TABLE_NAME AS t, TABLE_ROWS AS n, DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE'",
        db.schema_literal()
    ));
    // Empty copies of every table a DDL statement names, as they are now.
    let mut shapes = Vec::new();
    let mut copied = BTreeSet::new();
    for m in pending {
        for st in &m.statements {
            let sh = shape(&st.sql, &db.database);
            if matches!(sh.action, Action::AlterTable | Action::CreateIndex | Action::DropIndex) {
                for t in &sh.tables {
                    if copied.insert(t.clone()) {
                        s.sql(&format!(
                            "CALL {sx}.tend_try({})",
                            text(&format!(
                                "CREATE TABLE {sx}.{} LIKE {}.{}",
                                ident(t),
                                db.schema(),
                                ident(t)
                            ))
                        ));
                    }
                }
            }
            shapes.push((m, st, sh));
        }
    }
    let mut count_marks = BTreeMap::new();
    for t in &copied {
        let mark = s.mark();
        s.sql(&format!(
            "SET @tend_q = IF(COALESCE((SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}), {COUNT_LIMIT}) < {COUNT_LIMIT}, {}, 'SELECT NULL AS n')",
            db.schema_literal(),
            text(t),
            text(&format!("SELECT COUNT(*) AS n FROM {}.{}", db.schema(), ident(t))),
        ));
        s.sql("EXECUTE IMMEDIATE @tend_q");
        count_marks.insert(t.clone(), mark);
    }
    let mut probes = Vec::new();
    for (_, st, sh) in &shapes {
        let Some((table, range)) = &sh.target else {
            probes.push(None);
            continue;
        };
        if sh.qualified {
            // It would reach the live schema from the scratch one: never run.
            probes.push(None);
            continue;
        }
        let rewritten = format!(
            "{}{}.{}{}",
            &st.sql[..range.start],
            sx,
            ident(table),
            &st.sql[range.end..]
        );
        match sh.action {
            Action::CreateTable => {
                s.sql(&format!("CALL {sx}.tend_try({})", text(&rewritten)));
                probes.push(None);
            }
            Action::AlterTable | Action::CreateIndex | Action::DropIndex => {
                let sep = if sh.action == Action::AlterTable { ", " } else { " " };
                let mark = s.mark();
                s.sql(&format!(
                    "CALL {sx}.tend_probe({}, {}, {})",
                    text(table),
                    text(rewritten.trim_end().trim_end_matches(';')),
                    text(sep)
                ));
                probes.push(Some(mark));
            }
            _ => probes.push(None),
        }
        if sh.action == Action::DropTable {
            for t in &sh.tables {
                s.sql(&format!("DROP TABLE IF EXISTS {sx}.{}", ident(t)));
            }
        }
    }
    s.mark();
    s.sql(&format!("DROP DATABASE IF EXISTS {sx}"));
    let reply = match db.query("plan", &s).await {
        Ok(r) => r,
        Err(e) => {
            // Leave no scratch schema behind, whatever failed.
            let mut drop = Script::new();
            drop.sql("SET SESSION sql_log_bin = 0")
                .sql(&format!("DROP DATABASE IF EXISTS {sx}"));
            let _ = db.query("plan", &drop).await;
            return Err(e);
        }
    };
    let sizes = reply.set(sizes_mark);
    let mut size: BTreeMap<String, (Option<u64>, Option<u64>)> = BTreeMap::new();
    for row in &sizes.rows {
        let cell = |i: usize| row.get(i).cloned().flatten();
        if let Some(t) = cell(0) {
            size.insert(
                t,
                (
                    cell(1).and_then(|v| v.parse().ok()),
                    cell(2).and_then(|v| v.parse().ok()),
                ),
            );
        }
    }
    for (t, mark) in &count_marks {
        if let Some(n) = reply.set(*mark).first("n").and_then(|v| v.parse::<u64>().ok())
            && let Some(entry) = size.get_mut(t)
        {
            entry.0 = Some(n);
        }
    }
    let mut steps = Vec::new();
    for ((m, st, sh), probe) in shapes.iter().zip(probes) {
        let table = sh.tables.first().cloned();
        let (rows, bytes) = table
            .as_ref()
            .and_then(|t| size.get(t))
            .copied()
            .unwrap_or((None, None));
        let mut step = Step {
            file: m.script.clone(),
            line: st.line,
            sql: st.sql.clone(),
            action: sh.action,
            table: table.clone(),
            algorithm: None,
            lock: None,
            rows,
            bytes,
            estimate_s: None,
            destructive: sh.destructive,
            error: None,
        };
        if sh.qualified && matches!(sh.action, Action::AlterTable | Action::CreateIndex | Action::DropIndex) {
            step.error = Some(
                "not asked: the statement names a table with its schema, which the scratch copy cannot stand in for"
                    .into(),
            );
        }
        if let Some(mark) = probe {
            let set = reply.set(mark);
            match set.first("alg") {
                Some(alg) => {
                    let (a, l) = alg.split_once(':').unwrap_or((alg, ""));
                    step.algorithm = Some(a.to_string());
                    step.lock = Some(l.to_string());
                }
                None => step.error = set.first("err").map(str::to_string),
            }
            if narrows(
                set.first("before_cols").unwrap_or_default(),
                set.first("after_cols").unwrap_or_default(),
            ) {
                step.destructive = true;
            }
            if step.algorithm.as_deref() == Some("COPY") {
                let r = rows.unwrap_or(0) as f64 / COPY_ROWS_PER_S;
                let b = bytes.unwrap_or(0) as f64 / COPY_BYTES_PER_S;
                step.estimate_s = Some((r.max(b) * 10.0).ceil() / 10.0);
            }
        }
        steps.push(step);
    }
    Ok(steps)
}

/// Whether the columns after a change lose data: a column gone, or one whose type holds less.
fn narrows(before: &str, after: &str) -> bool {
    let parse = |s: &str| -> BTreeMap<String, String> {
        s.split('\n')
            .filter_map(|c| c.split_once('\t'))
            .map(|(n, t)| (n.to_ascii_lowercase(), t.to_ascii_lowercase()))
            .collect()
    };
    let (b, a) = (parse(before), parse(after));
    if a.is_empty() {
        return false;
    }
    b.iter().any(|(name, old)| match a.get(name) {
        None => true,
        Some(new) => type_narrows(old, new),
    })
}

/// A column type change that can lose values: a smaller integer, a shorter string, fewer
/// digits, a signed/unsigned switch, or another type family altogether.
fn type_narrows(old: &str, new: &str) -> bool {
    if old == new {
        return false;
    }
    let base = |t: &str| t.split(['(', ' ']).next().unwrap_or_default().to_string();
    let args = |t: &str| -> Vec<u64> {
        t.split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inside, _)| inside.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_default()
    };
    let rank = |b: &str| -> Option<(u8, u8)> {
        let r = match b {
            "tinyint" => (0, 1),
            "smallint" => (0, 2),
            "mediumint" => (0, 3),
            "int" => (0, 4),
            "bigint" => (0, 5),
            "char" | "varchar" => (1, 0),
            "tinytext" => (1, 1),
            "text" => (1, 2),
            "mediumtext" => (1, 3),
            "longtext" => (1, 4),
            "decimal" => (2, 0),
            "float" => (3, 1),
            "double" => (3, 2),
            "binary" | "varbinary" => (4, 0),
            "tinyblob" => (4, 1),
            "blob" => (4, 2),
            "mediumblob" => (4, 3),
            "longblob" => (4, 4),
            _ => return None,
        };
        Some(r)
    };
    let (bo, bn) = (base(old), base(new));
    let (Some(ro), Some(rn)) = (rank(&bo), rank(&bn)) else {
        return bo != bn;
    };
    if ro.0 != rn.0 || old.contains("unsigned") != new.contains("unsigned") {
        return true;
    }
    if rn.1 < ro.1 {
        return true;
    }
    let (ao, an) = (args(old), args(new));
    match ro.0 {
        // Integer display widths mean nothing.
        0 => false,
        // varchar(n) -> varchar(m < n); char/varchar into a text type is wider.
        1 | 4 if ro.1 == 0 && rn.1 == 0 => an.first() < ao.first(),
        // decimal(p, s): fewer integer digits or fewer decimals.
        2 => {
            let (po, so) = (ao.first().copied().unwrap_or(10), ao.get(1).copied().unwrap_or(0));
            let (pn, sn) = (an.first().copied().unwrap_or(10), an.get(1).copied().unwrap_or(0));
            pn.saturating_sub(sn) < po.saturating_sub(so) || sn < so
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_rows_or_sizes() {
        assert_eq!(Limit::parse("100000"), Some(Limit::Rows(100_000)));
        assert_eq!(Limit::parse("100_000 rows"), Some(Limit::Rows(100_000)));
        assert_eq!(Limit::parse("500MB"), Some(Limit::Bytes(500_000_000)));
        assert_eq!(Limit::parse("2GiB"), Some(Limit::Bytes(2 << 30)));
        assert_eq!(Limit::parse("lots"), None);
        assert_eq!(Limit::parse("5 parsecs"), None);
    }

    #[test]
    fn narrowing_changes_are_destructive() {
        assert!(type_narrows("varchar(200)", "varchar(100)"));
        assert!(!type_narrows("varchar(100)", "varchar(200)"));
        assert!(!type_narrows("varchar(100)", "text"));
        assert!(type_narrows("text", "varchar(100)"));
        assert!(type_narrows("bigint(20)", "int(11)"));
        assert!(!type_narrows("int(11)", "bigint(20)"));
        assert!(type_narrows("int(11)", "int(10) unsigned"));
        assert!(type_narrows("decimal(10,2)", "decimal(10,1)"));
        assert!(!type_narrows("decimal(10,2)", "decimal(12,2)"));
        assert!(type_narrows("int(11)", "varchar(10)"));
        let cols = |c: &[(&str, &str)]| -> String {
            c.iter()
                .map(|(n, t)| format!("{n}\t{t}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(narrows(
            &cols(&[("id", "int(11)"), ("x", "int(11)")]),
            &cols(&[("id", "int(11)")])
        ));
        assert!(!narrows(
            &cols(&[("id", "int(11)")]),
            &cols(&[("id", "int(11)"), ("x", "int(11)")])
        ));
    }
}
