//! The safety snapshot `up` takes before it changes anything: a logical dump of the tables the
//! pending migrations touch (the whole schema when a statement cannot be read), with the
//! schema's routines, streamed to the control node with its SHA-256; and the restore that puts
//! the schema back as it was: objects created since are dropped, the dump is loaded. The
//! restore is written to the binary log, so replicas are put back too.

use super::db::{Db, Script};
use super::history::{JOURNAL, TABLE};
use crate::modules::mysql::ident;
use crate::transport::{Failure, Input, StepError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The tables (and views) the statements name, and what those reach on the server.
    Tables(Touched),
    /// Every table but the history and journal.
    Schema,
}

/// What the statements name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Tables and views changed.
    pub tables: BTreeSet<String>,
    /// Of those, the tables whose rows are written (`INSERT`, `UPDATE`, `DELETE`): their
    /// triggers and foreign keys reach further.
    pub written: BTreeSet<String>,
    /// Triggers dropped by name.
    pub triggers: BTreeSet<String>,
}

/// The tables to dump for `touched`, given the schema's triggers (name, table) and foreign
/// keys (child, parent); `None`: the whole schema (a written table has triggers, whose bodies
/// may write anywhere).
fn reach(touched: &Touched, triggers: &[(String, String)], keys: &[(String, String)]) -> Option<BTreeSet<String>> {
    if triggers.iter().any(|(_, table)| touched.written.contains(table)) {
        return None;
    }
    let mut tables = touched.tables.clone();
    tables.extend(
        triggers
            .iter()
            .filter(|(name, _)| touched.triggers.contains(name))
            .map(|(_, table)| table.clone()),
    );
    // Rows written in a parent reach its children (ON DELETE/UPDATE CASCADE, SET NULL).
    let mut parents: Vec<String> = touched.written.iter().cloned().collect();
    while let Some(p) = parents.pop() {
        for (child, _) in keys.iter().filter(|(_, parent)| *parent == p) {
            if tables.insert(child.clone()) {
                parents.push(child.clone());
            }
        }
    }
    Some(tables)
}

/// Objects of the schema, to tell what a failed run created and what a snapshot must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    /// Tables and views.
    pub tables: BTreeSet<String>,
    /// `PROCEDURE name` / `FUNCTION name`.
    pub routines: BTreeSet<String>,
    /// Triggers: (name, table).
    pub triggers: Vec<(String, String)>,
    /// Foreign keys: (child table, parent table).
    pub keys: Vec<(String, String)>,
}

/// A snapshot on the control node.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The dump file.
    pub path: PathBuf,
    /// Its SHA-256, checked before a restore.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// The tables dumped (empty with routines only).
    pub tables: Vec<String>,
    /// What existed before.
    pub before: Objects,
    /// How long the dump took.
    pub took: Duration,
}

impl Snapshot {
    /// What it holds, in words.
    pub fn holds(&self) -> String {
        if self.tables.is_empty() {
            "the routines".to_string()
        } else {
            format!("{} and the routines", self.tables.join(" "))
        }
    }
}

/// Reads the schema's tables, views and routines.
pub async fn objects(db: &Db) -> Result<Objects, StepError> {
    let mut s = Script::new();
    let m = s.mark();
    s.sql(&format!(
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
        db.schema_literal()
    ));
    let r = s.mark();
    s.sql(&format!(
        "SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME) AS name FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {}",
        db.schema_literal()
    ));
    let t = s.mark();
    s.sql(&format!(
        "SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {}",
        db.schema_literal()
    ));
    let k = s.mark();
    s.sql(&format!(
        "SELECT TABLE_NAME AS child, REFERENCED_TABLE_NAME AS parent FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = {0} AND UNIQUE_CONSTRAINT_SCHEMA = {0}",
        db.schema_literal()
    ));
    s.mark();
    let reply = db.query("list the schema's objects", &s).await?;
    let pairs = |n: usize| -> Vec<(String, String)> {
        reply
            .set(n)
            .rows
            .iter()
            .filter_map(|row| Some((row.first().cloned().flatten()?, row.get(1).cloned().flatten()?)))
            .collect()
    };
    let names = |n: usize| -> BTreeSet<String> {
        reply
            .set(n)
            .rows
            .iter()
            .filter_map(|row| row.first().cloned().flatten())
            .collect()
    };
    let mut tables = names(m);
    tables.remove(TABLE);
    tables.remove(JOURNAL);
    Ok(Objects {
        tables,
        routines: names(r),
        triggers: pairs(t),
        keys: pairs(k),
    })
}

/// Dumps `scope` into a new file under `dir`, named after the host, schema and time.
pub async fn take(db: &Db, scope: &Scope, dir: &Path) -> Result<Snapshot, StepError> {
    let host = db.host.name().to_string();
    let fail = |m: String| StepError::remote(&host, "snapshot", Failure::message(m, "mariadb-dump"));
    let started = Instant::now();
    let before = objects(db).await?;
    let reached = match scope {
        Scope::Schema => None,
        Scope::Tables(t) => reach(t, &before.triggers, &before.keys),
    };
    let tables: Vec<String> = match reached {
        None => before.tables.iter().cloned().collect(),
        Some(t) => t.into_iter().filter(|t| before.tables.contains(t)).collect(),
    };
    // The shop's rows: owner-only.
    crate::private::dir(dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let path = dir.join(format!("{host}-{}-{stamp}-{}.sql", db.database, std::process::id()));
    let mut file = crate::private::file(&path)
        .map(tokio::fs::File::from_std)
        .map_err(|e| fail(format!("cannot create {}: {e}", path.display())))?;
    // Table names travel as arguments, each quoted once; no table means routines only.
    let names = crate::transport::shell::join(&tables);
    let what = if tables.is_empty() {
        "--no-create-info --no-data --skip-triggers".to_string()
    } else {
        format!("--tables {names}")
    };
    let body = format!(
        r#"
dump=$(command -v mariadb-dump || command -v mysqldump) || {{ echo "no mariadb-dump or mysqldump on the host" >&2; exit 127; }}
"$dump" --defaults-extra-file="$cnf" --single-transaction --routines --triggers --skip-events --hex-blob --skip-dump-date --no-tablespaces --default-character-set=utf8mb4 {} {what}
"#,
        crate::transport::shell::quote(&db.database),
    );
    let (command, login) = db.shell(&body, None);
    let (out, hashed) = db
        .host
        .to_file(&command, Input::Bytes(login.as_bytes()), &mut file)
        .await
        .map_err(|e| StepError::transport(&host, "snapshot", e))?;
    if !out.success() {
        let _ = std::fs::remove_file(&path);
        return Err(StepError::remote(
            &host,
            "snapshot",
            Failure::from_output(
                crate::transport::last_error_line(&out, "mariadb-dump failed"),
                "mariadb-dump",
                &out,
            ),
        ));
    }
    let sum = path.with_extension("sql.sha256");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = std::fs::write(&sum, format!("{}  {name}\n", hashed.sha256));
    Ok(Snapshot {
        path,
        sha256: hashed.sha256,
        bytes: hashed.bytes,
        tables,
        before,
        took: started.elapsed(),
    })
}

/// Puts the schema back as it was when `snap` was taken: drops what was created since, loads
/// the dump (checked against its SHA-256 first).
pub async fn restore(db: &Db, snap: &Snapshot) -> Result<(), StepError> {
    let host = db.host.name().to_string();
    let fail = |m: String| StepError::remote(&host, "restore", Failure::message(m, "mariadb"));
    let on_disk = crate::transport::hash_file(&snap.path)
        .await
        .map_err(|e| fail(format!("cannot read the snapshot {}: {e}", snap.path.display())))?;
    if on_disk.sha256 != snap.sha256 {
        return Err(fail(format!(
            "the snapshot {} changed since it was taken (SHA-256 {} != {})",
            snap.path.display(),
            on_disk.sha256,
            snap.sha256
        )));
    }
    // The dump first (it drops and recreates what it holds, routines included): when it
    // fails, nothing else has been dropped yet.
    let body = format!(
        r#"
"$client" --defaults-extra-file="$cnf" --batch --default-character-set=utf8mb4 --init-command='SET SESSION foreign_key_checks = 0' {}
"#,
        crate::transport::shell::quote(&db.database)
    );
    let (command, login) = db.shell(&body, None);
    let (out, _) = db
        .host
        .from_file(&command, login.as_bytes(), &snap.path)
        .await
        .map_err(|e| StepError::transport(&host, "restore", e))?;
    if !out.success() {
        return Err(StepError::remote(
            &host,
            "restore",
            Failure::from_output(
                crate::transport::last_error_line(&out, "loading the snapshot failed"),
                format!("mariadb {} < {}", db.database, snap.path.display()),
                &out,
            ),
        ));
    }
    // Then what the failed run created.
    let now = objects(db).await?;
    let mut s = Script::new();
    s.sql("SET SESSION foreign_key_checks = 0");
    for t in now.tables.difference(&snap.before.tables) {
        // A view or a table: whichever it is, the other statement is a no-op.
        s.sql(&format!("DROP VIEW IF EXISTS {}.{}", db.schema(), ident(t)));
        s.sql(&format!("DROP TABLE IF EXISTS {}.{}", db.schema(), ident(t)));
    }
    for r in now.routines.difference(&snap.before.routines) {
        if let Some((kind, name)) = r.split_once(' ') {
            s.sql(&format!("DROP {kind} IF EXISTS {}.{}", db.schema(), ident(name)));
        }
    }
    let before_triggers: BTreeSet<&String> = snap.before.triggers.iter().map(|(n, _)| n).collect();
    for (name, _) in now.triggers.iter().filter(|(n, _)| !before_triggers.contains(n)) {
        s.sql(&format!("DROP TRIGGER IF EXISTS {}.{}", db.schema(), ident(name)));
    }
    db.query("restore", &s).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_snapshot_reaches_what_triggers_and_keys_reach() {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        let keys = [pair("products", "categories"), pair("order_lines", "products")];
        let triggers = [pair("order_lines_total", "order_lines")];
        // A DELETE in categories cascades to products and from there to order_lines.
        let t = Touched {
            tables: set(&["categories"]),
            written: set(&["categories"]),
            ..Touched::default()
        };
        assert_eq!(
            reach(&t, &[], &keys),
            Some(set(&["categories", "order_lines", "products"]))
        );
        // A table altered, not written: its children stay out.
        let t = Touched {
            tables: set(&["categories"]),
            ..Touched::default()
        };
        assert_eq!(reach(&t, &triggers, &keys), Some(set(&["categories"])));
        // Rows written in a table with triggers: the whole schema.
        let t = Touched {
            tables: set(&["order_lines"]),
            written: set(&["order_lines"]),
            ..Touched::default()
        };
        assert_eq!(reach(&t, &triggers, &keys), None);
        // A trigger dropped by name: its table.
        let t = Touched {
            triggers: set(&["order_lines_total"]),
            ..Touched::default()
        };
        assert_eq!(reach(&t, &triggers, &keys), Some(set(&["order_lines"])));
    }
}
