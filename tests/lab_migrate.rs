//! `tend migrate` against the lab shop's real MariaDB primary and replica: applying
//! versioned and repeatable migrations with procedures and triggers, checksums and repair, a
//! failed migration restored from its snapshot and resumed, the server's own plan for ALTERs
//! on a 200 000-row table, a history written the way Flyway writes it, and the locks.
//! Every test works in a schema of its own.

mod common;
#[path = "common/echo.rs"]
mod echo;
use common::{Lab, Run, Shop, provision_databases, repo, run_in};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A migrations directory in a scratch place.
struct Dir {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

impl Dir {
    fn new() -> Self {
        let tmp = common::scratch();
        let path = tmp.path().join("migrations");
        std::fs::create_dir_all(&path).expect("mkdir");
        Self { _tmp: tmp, path }
    }

    fn file(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.path.join(name), text).expect("write migration");
        self
    }
}

/// `tend migrate SUB` on the lab for schema `db` with `dir`, JSON output.
fn migrate(lab: &Lab, sub: &str, db: &str, dir: &Path, extra: &[&str]) -> Run {
    let inv = lab.inventory();
    let dir = dir.to_string_lossy().into_owned();
    let mut args = vec![
        "migrate",
        sub,
        "-i",
        &inv,
        "--database",
        db,
        "--format",
        "json",
        "--dir",
        &dir,
    ];
    args.extend_from_slice(extra);
    run_in(&repo(), &args)
}

/// A dump of the schema's definitions and data, without the history and journal: what the
/// schema holds, for before/after comparisons.
fn dump(lab: &Lab, i: u32, db: &str, data: bool) -> String {
    let script = format!(
        "mariadb-dump --skip-dump-date --routines --triggers --skip-comments {} {db} --ignore-table={db}.flyway_schema_history --ignore-table={db}.tend_migrate_journal",
        if data { "" } else { "--no-data" }
    );
    lab.sh(i, &script)
}

/// Waits until the replica has what the primary has.
fn synced(lab: &Lab, s: &Shop) {
    let pos = lab.sql(s.primary, "SELECT @@gtid_binlog_pos");
    let w = lab.sql(s.replica, &format!("SELECT MASTER_GTID_WAIT('{}', 30)", pos.trim()));
    assert_eq!(w.trim(), "0", "the replica did not catch up");
}

fn error_messages(r: &Run) -> Vec<String> {
    r.events("error")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn record(r: &Run) -> serde_json::Value {
    r.events("record")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no record:\n{r:?}"))
}

fn states(r: &Run) -> Vec<(String, String)> {
    r.events("row")
        .iter()
        .map(|row| {
            (
                row["version"].as_str().map_or_else(
                    || format!("R {}", row["description"].as_str().unwrap_or_default()),
                    str::to_string,
                ),
                row["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

const V1: &str = "-- products and their categories\nCREATE TABLE categories (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);\nCREATE TABLE products (\n  id INT AUTO_INCREMENT PRIMARY KEY,\n  category_id INT NOT NULL,\n  name VARCHAR(100) NOT NULL, -- a ; in a comment\n  price DECIMAL(10,2) NOT NULL\n);\n";
const V2: &str = "INSERT INTO categories VALUES (1, 'tea'), (2, 'coffee; beans');\nINSERT INTO products (category_id, name, price) VALUES (1, 'green \\'sencha\\'', 3.5), (2, \"arabica\", 4.2);\n";
const V3: &str = "CREATE TABLE sales (id INT AUTO_INCREMENT PRIMARY KEY, product_id INT NOT NULL, qty INT NOT NULL, total DECIMAL(10,2) NOT NULL DEFAULT 0);\nCREATE INDEX sales_product ON sales (product_id);\n";
const V4: &str = "ALTER TABLE products ADD COLUMN stock INT NOT NULL DEFAULT 0;\n/*!50100 ALTER TABLE categories COMMENT = 'shop categories' */;\n";
const VIEWS: &str = "CREATE OR REPLACE VIEW product_list AS\n  SELECT p.id, p.name, c.name AS category FROM products p JOIN categories c ON c.id = p.category_id;\n\nDELIMITER //\nCREATE OR REPLACE PROCEDURE sell(IN pid INT, IN n INT)\nBEGIN\n  INSERT INTO sales (product_id, qty) VALUES (pid, n);\n  UPDATE products SET stock = stock - n WHERE id = pid;\nEND //\nDROP TRIGGER IF EXISTS sales_total //\nCREATE TRIGGER sales_total BEFORE INSERT ON sales FOR EACH ROW\nBEGIN\n  SET NEW.total = NEW.qty * (SELECT price FROM products WHERE id = NEW.product_id);\nEND //\nDELIMITER ;\n";

#[test]
fn migrations_with_routines_reach_the_replica_and_run_once() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("mig_apply_{}", std::process::id());
    let d = Dir::new();
    d.file("V1__categories_and_products.sql", V1)
        .file("V2__seed.sql", V2)
        .file("V3__sales.sql", V3)
        .file("V4__stock.sql", V4)
        .file("R__views.sql", VIEWS);
    let r = migrate(&lab, "up", &db, &d.path, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let rec = record(&r);
    assert_eq!(rec["version_after"], "4");
    assert_eq!(rec["migrations"].as_array().map(Vec::len), Some(5));
    // At most one SSH channel per migration, plus a few to read state, plan and snapshot.
    let channels = rec["traffic"]["channels"].as_u64().unwrap_or(99);
    assert!(channels <= 5 + 8, "{channels} channels for 5 migrations:\n{r:?}");
    // The objects work on the primary: the procedure fires the trigger.
    lab.sql(s.primary, &format!("CALL {db}.sell(1, 2)"));
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT qty, total FROM {db}.sales")).trim(),
        "2\t7.00"
    );
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT name FROM {db}.products WHERE id = 1"))
            .trim(),
        "green 'sencha'"
    );
    // The replica has the same objects and data.
    synced(&lab, &s);
    assert_eq!(dump(&lab, s.primary, &db, true), dump(&lab, s.replica, &db, true));
    let create = lab.sql(s.replica, &format!("SHOW CREATE TRIGGER {db}.sales_total"));
    assert!(create.contains("NEW.qty *"), "{create}");
    // History rows as Flyway writes them.
    let rows = lab.sql(s.primary,
        &format!(
            "SELECT installed_rank, IFNULL(version, 'NULL'), description, type, script, success FROM {db}.flyway_schema_history ORDER BY installed_rank"
        ),
    );
    assert_eq!(
        rows,
        format!(
            "0\tNULL\t<< Flyway Schema Creation >>\tSCHEMA\t`{db}`\t1\n1\t1\tcategories and products\tSQL\tV1__categories_and_products.sql\t1\n2\t2\tseed\tSQL\tV2__seed.sql\t1\n3\t3\tsales\tSQL\tV3__sales.sql\t1\n4\t4\tstock\tSQL\tV4__stock.sql\t1\n5\tNULL\tviews\tSQL\tR__views.sql\t1\n"
        )
    );
    // A second `up` does nothing; info and validate are clean.
    let again = migrate(&lab, "up", &db, &d.path, &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(record(&again)["outcome"], "unchanged");
    assert_eq!(record(&again)["migrations"], serde_json::json!([]));
    let info = migrate(&lab, "info", &db, &d.path, &[]);
    assert_eq!(info.code, 0, "{info:?}");
    assert!(
        states(&info).iter().all(|(_, st)| st == "applied"),
        "{:?}",
        states(&info)
    );
    assert_eq!(migrate(&lab, "validate", &db, &d.path, &[]).code, 0);

    // A changed repeatable migration is applied again.
    d.file("R__views.sql", &VIEWS.replace("AS category", "AS category_name"));
    let info = migrate(&lab, "info", &db, &d.path, &[]);
    assert!(
        states(&info).contains(&("R views".into(), "outdated".into())),
        "{info:?}"
    );
    assert_eq!(migrate(&lab, "up", &db, &d.path, &[]).code, 0);
    assert!(
        lab.sql(s.primary, &format!("SHOW CREATE VIEW {db}.product_list"))
            .contains("category_name")
    );

    // An applied file edited: validate names it and both checksums; repair re-aligns.
    let edited = V3.replace("qty INT", "qty BIGINT");
    d.file("V3__sales.sql", &edited);
    let v = migrate(&lab, "validate", &db, &d.path, &[]);
    assert_eq!(v.code, 2, "{v:?}");
    let old = lab.sql(
        s.primary,
        &format!("SELECT checksum FROM {db}.flyway_schema_history WHERE version = '3'"),
    );
    let msg = error_messages(&v).join("\n");
    assert!(
        msg.contains("V3__sales.sql") && msg.contains(old.trim()) && msg.contains("checksum"),
        "{msg}"
    );
    let refused = migrate(&lab, "repair", &db, &d.path, &[]);
    assert_eq!(refused.code, 4, "repair without --yes off a terminal: {refused:?}");
    let fixed = migrate(&lab, "repair", &db, &d.path, &["--yes"]);
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert_eq!(migrate(&lab, "validate", &db, &d.path, &[]).code, 0);

    // Undo the latest version with its U file, recorded as Flyway Teams records it.
    d.file("U4__stock.sql", "ALTER TABLE products DROP COLUMN stock;\n");
    let u = migrate(&lab, "undo", &db, &d.path, &[]);
    assert_eq!(u.code, 0, "{u:?}");
    assert_eq!(record(&u)["version_after"], "3");
    assert!(
        !lab.sql(s.primary, &format!("SHOW CREATE TABLE {db}.products"))
            .contains("stock")
    );
    let info = migrate(&lab, "info", &db, &d.path, &[]);
    assert!(states(&info).contains(&("4".into(), "undone".into())), "{info:?}");
    assert_eq!(
        lab.sql(
            s.primary,
            &format!("SELECT type, script FROM {db}.flyway_schema_history ORDER BY installed_rank DESC LIMIT 1")
        )
        .trim(),
        "UNDO_SQL\tU4__stock.sql"
    );
    // ... and applied again.
    assert_eq!(migrate(&lab, "up", &db, &d.path, &[]).code, 0);
    assert!(
        lab.sql(s.primary, &format!("SHOW CREATE TABLE {db}.products"))
            .contains("stock")
    );
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
}

#[test]
fn a_failed_migration_is_restored_and_resumed() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("mig_fail_{}", std::process::id());
    let d = Dir::new();
    d.file("V1__categories_and_products.sql", V1).file("V2__seed.sql", V2);
    assert_eq!(migrate(&lab, "up", &db, &d.path, &[]).code, 0);
    let before = dump(&lab, s.primary, &db, true);
    // The first statement changes a table, the second fails, the third never runs.
    let broken = "ALTER TABLE products ADD COLUMN sku VARCHAR(20);\nUPDATE products\n  SET no_such_column = 1;\nCREATE TABLE later (id INT);\n";
    d.file("V3__sku.sql", "CREATE TABLE audit (id INT);\n")
        .file("V5__sku.sql", broken);
    let r = migrate(&lab, "up", &db, &d.path, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let msg = error_messages(&r).join("\n");
    assert!(msg.contains("V5__sku.sql:2") && msg.contains("no_such_column"), "{msg}");
    let err = &r.events("error")[0];
    assert!(
        err["cmd"].as_str().unwrap_or_default().contains("UPDATE products"),
        "{err}"
    );
    // The schema is as it was before `up` (V3's table too is gone), V5 is marked failed.
    assert_eq!(dump(&lab, s.primary, &db, true), before);
    assert_eq!(
        lab.sql(s.primary,
            &format!(
                "SELECT version, success FROM {db}.flyway_schema_history WHERE installed_rank > 2 ORDER BY installed_rank"
            )
        ),
        "5\t0\n"
    );
    let rec = record(&r);
    let snap = rec["snapshot"]["path"].as_str().unwrap_or_default().to_string();
    let sum = rec["snapshot"]["sha256"].as_str().unwrap_or_default().to_string();
    assert!(Path::new(&snap).is_file(), "{rec}");
    let on_disk = std::fs::read(&snap).expect("snapshot");
    assert_eq!(sha256_hex(&on_disk), sum);
    // The replica was put back too.
    synced(&lab, &s);
    assert_eq!(dump(&lab, s.replica, &db, true), before);
    // `up` without --resume refuses; validate names the failure.
    let plain = migrate(&lab, "up", &db, &d.path, &[]);
    assert_eq!(plain.code, 2, "{plain:?}");
    assert!(error_messages(&plain).join("\n").contains("--resume"), "{plain:?}");

    // Fixed, but the first statement edited as well: refused.
    let fixed = broken.replace("no_such_column = 1", "sku = CONCAT('P', id)");
    d.file("V5__sku.sql", &fixed.replace("VARCHAR(20)", "VARCHAR(30)"));
    let changed = migrate(&lab, "up", &db, &d.path, &["--resume"]);
    assert_eq!(changed.code, 4, "{changed:?}");
    assert!(
        error_messages(&changed)
            .join("\n")
            .contains("statement 1 (V5__sku.sql:1) changed"),
        "{changed:?}"
    );
    // The failing statement fixed: resume finishes it (V3, restored, runs again first).
    d.file("V5__sku.sql", &fixed);
    let resumed = migrate(&lab, "up", &db, &d.path, &["--resume"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(record(&resumed)["version_after"], "5");
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT sku FROM {db}.products ORDER BY id")),
        "P1\nP2\n"
    );
    assert_eq!(
        lab.sql(s.primary,
            &format!(
                "SELECT version, success FROM {db}.flyway_schema_history WHERE installed_rank > 2 ORDER BY installed_rank"
            )
        ),
        "3\t1\n5\t1\n"
    );
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT COUNT(*) FROM {db}.tend_migrate_journal"))
            .trim(),
        "0"
    );
    assert_eq!(migrate(&lab, "validate", &db, &d.path, &[]).code, 0);

    // With --on-failure stop, what ran stays and resume continues after it.
    d.file(
        "V6__more.sql",
        "ALTER TABLE products ADD COLUMN weight INT;\nINSERT INTO nowhere VALUES (1);\n",
    );
    let stop = migrate(&lab, "up", &db, &d.path, &["--on-failure", "stop"]);
    assert_eq!(stop.code, 2, "{stop:?}");
    assert!(
        lab.sql(s.primary, &format!("SHOW CREATE TABLE {db}.products"))
            .contains("`weight`")
    );
    // Resumed with its second statement still wrong (restore, the default): the snapshot of
    // this run holds the first statement's column, which stays; the next resume still
    // continues after it.
    d.file(
        "V6__more.sql",
        "ALTER TABLE products ADD COLUMN weight INT;\nINSERT INTO nowhere_either VALUES (1);\n",
    );
    let again = migrate(&lab, "up", &db, &d.path, &["--resume"]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(
        lab.sql(s.primary, &format!("SHOW CREATE TABLE {db}.products"))
            .contains("`weight`")
    );
    d.file(
        "V6__more.sql",
        "ALTER TABLE products ADD COLUMN weight INT;\nINSERT INTO categories VALUES (3, 'cocoa');\n",
    );
    let resumed = migrate(&lab, "up", &db, &d.path, &["--resume"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(record(&resumed)["migrations"][0]["statements"], 1);
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn plan_reports_what_the_server_would_do_and_up_refuses_blocking_changes() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("mig_plan_{}", std::process::id());
    let d = Dir::new();
    d.file(
        "V1__events.sql",
        "CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(20) NOT NULL, payload VARCHAR(200));\nINSERT INTO events (kind, payload) SELECT 'click', REPEAT('x', 40) FROM seq_1_to_200000;\n",
    );
    assert_eq!(migrate(&lab, "up", &db, &d.path, &[]).code, 0);
    d.file(
        "V2__changes.sql",
        "ALTER TABLE events ADD COLUMN seen TINYINT NOT NULL DEFAULT 0;\nALTER TABLE events MODIFY payload VARCHAR(100);\nDROP TABLE IF EXISTS nothing_here;\n",
    );
    let before = dump(&lab, s.primary, &db, false);
    synced(&lab, &s);
    let binlog = lab.sql(s.primary, "SELECT @@gtid_binlog_pos");
    let p = migrate(&lab, "plan", &db, &d.path, &[]);
    assert_eq!(p.code, 0, "{p:?}");
    let rows = p.events("row");
    assert_eq!(rows.len(), 3, "{p:?}");
    assert_eq!(rows[0]["file"], "V2__changes.sql");
    assert_eq!(rows[0]["line"], 1);
    assert_eq!(rows[0]["algorithm"], "INSTANT");
    assert_eq!(rows[0]["lock"], "NONE");
    assert_eq!(rows[0]["rows"], 200000);
    assert_eq!(rows[0]["destructive"], false);
    assert_eq!(rows[1]["line"], 2);
    assert_eq!(rows[1]["algorithm"], "COPY");
    assert_eq!(rows[1]["rows"], 200000);
    assert!(rows[1]["estimate_s"].as_f64().is_some_and(|e| e > 0.0), "{}", rows[1]);
    assert_eq!(rows[1]["destructive"], true, "a narrowing MODIFY");
    assert_eq!(rows[2]["destructive"], true, "DROP TABLE");
    for key in ["sql", "bytes"] {
        assert!(!rows[0][key].is_null(), "{key} in {}", rows[0]);
    }
    // Plan changed nothing, left no scratch schema, and wrote nothing to the binlog: the
    // replica never saw the scratch schema.
    assert_eq!(dump(&lab, s.primary, &db, false), before);
    assert_eq!(lab.sql(s.primary, "SHOW DATABASES LIKE 'tend\\_plan\\_%'"), "");
    assert_eq!(lab.sql(s.primary, "SELECT @@gtid_binlog_pos"), binlog);
    assert_eq!(lab.sql(s.replica, "SHOW DATABASES LIKE 'tend\\_plan\\_%'"), "");
    // `up` refuses the COPY on 200 000 rows, names it, changes nothing.
    let r = migrate(&lab, "up", &db, &d.path, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let msg = error_messages(&r).join("\n");
    assert!(
        msg.contains("V2__changes.sql:2") && msg.contains("ALGORITHM=COPY"),
        "{r:?}"
    );
    assert!(
        !msg.contains("V2__changes.sql:1"),
        "the INSTANT change is not blocking: {r:?}"
    );
    let hint = r.events("error")[0]["hint"].as_str().unwrap_or_default().to_string();
    assert!(hint.contains("--allow-blocking"), "{r:?}");
    assert_eq!(dump(&lab, s.primary, &db, false), before);
    let r = migrate(&lab, "up", &db, &d.path, &["--allow-blocking"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lab.sql(s.primary, &format!("SHOW CREATE TABLE {db}.events"))
            .contains("varchar(100)")
    );
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
}

/// Flyway's checksum computed apart from tend: CRC32 (Python's zlib) of the file's lines
/// without their endings, as a signed 32-bit number.
fn flyway_checksum(text: &str) -> i64 {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zlib; t = sys.stdin.buffer.read().decode('utf-8').lstrip('\\ufeff'); c = zlib.crc32(b''.join(l.encode('utf-8') for l in t.splitlines())); print(c - (1 << 32) if c >= (1 << 31) else c)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("checksum")
}

#[test]
fn a_history_written_by_flyway_is_continued() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("mig_flyway_{}", std::process::id());
    let d = Dir::new();
    d.file("V1__categories_and_products.sql", V1)
        .file("V1_1__seed.sql", V2)
        .file("V2__sales.sql", V3);
    // What Flyway leaves after migrating V1 and V1.1: its DDL for MySQL, its rows, its checksums.
    let (c1, c2) = (flyway_checksum(V1), flyway_checksum(V2));
    let setup = format!(
        "CREATE DATABASE {db}; USE {db};
{V1}{V2}
CREATE TABLE `flyway_schema_history` (
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
    CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`)
) ENGINE=InnoDB;
CREATE INDEX `flyway_schema_history_s_idx` ON `flyway_schema_history` (`success`);
INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES
 (1, '1', 'categories and products', 'SQL', 'V1__categories_and_products.sql', {c1}, 'flyway', 31, 1),
 (2, '1.1', 'seed', 'SQL', 'V1_1__seed.sql', {c2}, 'flyway', 12, 1);"
    );
    let r = lab.on_host(s.primary, &["mariadb", "-e", &setup]);
    assert_eq!(r.code, 0, "{r:?}");
    // tend reads Flyway's checksums as its own: valid, V2 pending, no baseline needed.
    let v = migrate(&lab, "validate", &db, &d.path, &[]);
    assert_eq!(v.code, 0, "{v:?}");
    let info = migrate(&lab, "info", &db, &d.path, &[]);
    assert_eq!(
        states(&info),
        [
            ("1".into(), "applied".into()),
            ("1.1".into(), "applied".into()),
            ("2".into(), "pending".into())
        ]
    );
    let up = migrate(&lab, "up", &db, &d.path, &[]);
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(record(&up)["version_before"], "1.1");
    assert_eq!(record(&up)["version_after"], "2");
    // The row tend adds is the row Flyway would add next.
    assert_eq!(
        lab.sql(s.primary,
            &format!(
                "SELECT installed_rank, version, description, type, script, checksum, installed_by, success FROM {db}.flyway_schema_history WHERE installed_rank = 3"
            )
        ),
        format!("3\t2\tsales\tSQL\tV2__sales.sql\t{}\troot\t1\n", flyway_checksum(V3))
    );
    // A session holding Flyway's own lock on this schema keeps tend out (exit 5).
    let lock = format!("Flyway-{}", java_hash(&format!("`{db}`.`flyway_schema_history`")));
    let mut holder = Command::new(lab.script())
        .args(["exec", &s.primary.to_string(), "mariadb", "-e"])
        .arg(format!("SELECT GET_LOCK('{lock}', 0); SELECT SLEEP(14);"))
        .stdout(Stdio::null())
        .spawn()
        .expect("holder");
    std::thread::sleep(std::time::Duration::from_secs(1));
    d.file("V3__more.sql", "CREATE TABLE more_things (id INT);\n");
    let blocked = migrate(&lab, "up", &db, &d.path, &[]);
    let _ = holder.wait();
    assert_eq!(blocked.code, 5, "{blocked:?}");
    assert!(
        error_messages(&blocked).join("\n").contains("another session"),
        "{blocked:?}"
    );
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
}

/// Java's `String.hashCode`, written here apart from tend's.
fn java_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    for c in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(c as i32);
    }
    h
}

#[test]
fn two_ups_at_once_and_a_replica_target_are_refused() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("mig_lock_{}", std::process::id());
    let d = Dir::new();
    d.file("V1__slow.sql", "CREATE TABLE t (id INT);\nDO SLEEP(6);\n");
    let inv = lab.inventory();
    let dir = d.path.to_string_lossy().into_owned();
    let first = common::tend()
        .current_dir(repo())
        .args([
            "migrate",
            "up",
            "-i",
            &inv,
            "--database",
            &db,
            "--dir",
            &dir,
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("first up");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let second = migrate(&lab, "up", &db, &d.path, &[]);
    let first = Run::of(first.wait_with_output().expect("first"));
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(second.code, 5, "{second:?}");
    let msg = error_messages(&second).join("\n");
    assert!(
        msg.contains(&format!("migrate-{db}")) && msg.contains("migrate up"),
        "{msg}"
    );
    // A replica is never migrated.
    let host = format!("h{}", s.replica);
    let r = migrate(&lab, "up", &db, &d.path, &["--target", &host]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(error_messages(&r).join("\n").contains("read_only"), "{r:?}");
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
}

#[test]
fn statements_are_split_as_the_mariadb_client_splits_them() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("tendsplit_{}", std::process::id());
    lab.sql(s.primary, &format!("CREATE DATABASE {db}"));
    let dir = repo().join("tests/fixtures/sql");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "{} fixtures", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(case).expect("fixture");
        // The reference: what the real client sends for this file (`--verbose` echoes each
        // statement as sent; `--force` goes on past statements the server rejects).
        let out = Command::new(lab.script())
            .args([
                "exec",
                &s.primary.to_string(),
                "mariadb",
                "--batch",
                "--default-character-set=utf8mb4",
                "--force",
                "--verbose",
                &db,
            ])
            .stdin(std::fs::File::open(case).expect("open fixture"))
            .stderr(Stdio::null())
            .output()
            .expect("mariadb");
        let client = echo::parse_client_echo(&String::from_utf8_lossy(&out.stdout));
        // What tend sends for the file (each statement's source under a delimiter of its own)
        // reaches the server as the same statements.
        if let Ok(statements) = tend::migrate::split::split(&text) {
            let mut script = tend::migrate::db::Script::new();
            for st in &statements {
                script.statement(&st.raw);
            }
            let mut sent = Command::new(lab.script())
                .args([
                    "exec",
                    &s.primary.to_string(),
                    "mariadb",
                    "--batch",
                    "--default-character-set=utf8mb4",
                    "--force",
                    "--verbose",
                    &db,
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("mariadb");
            use std::io::Write;
            sent.stdin
                .take()
                .expect("stdin")
                .write_all(script.text().as_bytes())
                .expect("write");
            let out = sent.wait_with_output().expect("mariadb");
            let through_tend = echo::parse_client_echo(&String::from_utf8_lossy(&out.stdout));
            if through_tend != client {
                failures.push(format!(
                    "{name} as tend sends it:\n  file:  {client:?}\n  tend:  {through_tend:?}"
                ));
            }
        }
        match tend::migrate::split::split(&text) {
            Err(e) if name.starts_with("error_") => {
                assert!(e.line() > 0, "{name}: {e}");
            }
            Ok(ours) if !name.starts_with("error_") => {
                let ours: Vec<String> = ours.into_iter().map(|st| st.sql).collect();
                if ours != client {
                    failures.push(format!("{name}:\n  client: {client:?}\n  tend:   {ours:?}"));
                }
            }
            other => failures.push(format!(
                "{name}: {:?} (the client sent {client:?})",
                other.map(|v| v.len())
            )),
        }
    }
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_migrate_module_applies_migrations_from_a_playbook() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("mig_module_{}", std::process::id());
    let pf = common::PlaybookFile::new(&format!(
        "- hosts: db_primary
  tasks:
    - name: schema
      migrate:
        dir: migrations
        database: {db}
      register: schema
    - name: show
      debug:
        msg: \"pending={{{{ schema.pending | default([]) | join(',') }}}} version={{{{ schema.version_after | default('') }}}}\"
"
    ));
    pf.file("migrations/V1__categories_and_products.sql", V1)
        .file("migrations/V2__seed.sql", V2);
    let check = pf.run(&lab, &["--check"]);
    assert_eq!(check.code, 0, "{check:?}");
    let host = format!("h{}", s.primary);
    assert_eq!(check.result("schema", &host)["changed"], true);
    assert_eq!(
        check.result("show", &host)["msg"],
        "pending=V1__categories_and_products.sql,V2__seed.sql version="
    );
    let first = pf.run(&lab, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.result("schema", &host)["changed"], true);
    assert_eq!(first.result("show", &host)["msg"], "pending= version=2");
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT COUNT(*) FROM {db}.products"))
            .trim(),
        "2"
    );
    let second = pf.run(&lab, &[]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(second.result("schema", &host)["changed"], false);
    // A failing migration fails the task with the file and line, and is restored.
    pf.file(
        "migrations/V3__bad.sql",
        "CREATE TABLE extra (id INT);\nINSERT INTO missing VALUES (1);\n",
    );
    let bad = pf.run(&lab, &[]);
    assert_eq!(bad.code, 2, "{bad:?}");
    let result = bad.result("schema", &host);
    assert!(
        result["msg"].as_str().unwrap_or_default().contains("V3__bad.sql:2"),
        "{result}"
    );
    assert_eq!(lab.sql(s.primary, &format!("SHOW TABLES FROM {db} LIKE 'extra'")), "");
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
}

/// Runs `tend migrate up` in the background and cuts it off once `statements` statements of
/// `script` are in the journal on the primary, by `cut` (stopping the primary's sshd, or
/// SIGKILLing tend); returns tend's exit code.
fn cut_off_up(
    lab: &Lab,
    s: &Shop,
    db: &str,
    dir: &Path,
    script: &str,
    statements: u32,
    cut: &dyn Fn(&mut std::process::Child),
) -> Option<i32> {
    let inv = lab.inventory();
    let mut child = common::tend()
        .current_dir(repo())
        .args(["migrate", "up", "-i", &inv, "--database", db, "--format", "json"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tend");
    let journal = format!(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'tend_migrate_journal'"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{script} never reached statement {statements}"
        );
        if lab.sql(s.primary, &journal).trim() == "1" {
            let done = lab.sql(
                s.primary,
                &format!("SELECT COUNT(*) FROM {db}.tend_migrate_journal WHERE script = '{script}'"),
            );
            if done.trim().parse::<u32>().unwrap_or(0) >= statements {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cut(&mut child);
    child.wait().expect("wait").code()
}

/// The documented repair after a cut-off `up`: `up` again, which waits for a cut-off session
/// the server is still running and finds its work done; or, when the session died with the
/// connection, refuses and names `--resume`, which finishes the migration.
fn repair(lab: &Lab, db: &str, dir: &Path, what: &str) {
    let again = migrate(lab, "up", db, dir, &[]);
    eprintln!("{what}; the next up exits {}", again.code);
    if again.code != 0 {
        assert_eq!(again.code, 2, "{again:?}");
        assert!(error_messages(&again).join("\n").contains("--resume"), "{again:?}");
        let resumed = migrate(lab, "up", db, dir, &["--resume"]);
        assert_eq!(resumed.code, 0, "{resumed:?}");
    }
}

/// The history of `db` as `version:success` in rank order, failed rows included.
fn history_rows(lab: &Lab, s: &Shop, db: &str) -> String {
    lab.sql(
        s.primary,
        &format!(
            "SELECT GROUP_CONCAT(CONCAT(version, ':', success) ORDER BY installed_rank) FROM {db}.flyway_schema_history WHERE version IS NOT NULL"
        ),
    )
    .trim()
    .to_string()
}

/// A migration cut off part-way, by the primary's sshd dying and by `tend` itself being
/// SIGKILLed: the history never shows it applied while it is not (it is `failed` from its
/// first statement until its last), the statements it completed are not run again, a new run
/// waits for the cut-off session if the server is still running it, and the documented
/// command (`up --resume`) finishes the job with every statement applied exactly once, on the
/// replica too.
#[test]
fn a_migration_cut_off_by_sshd_or_a_killed_tend_is_recorded_and_resumed() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let db = format!("mig_cut_{}", std::process::id());
    let d = Dir::new();
    d.file("V1__t.sql", "CREATE TABLE t (n INT NOT NULL);\n");
    let slow = |from: u32| -> String {
        (from..from + 4)
            .map(|n| format!("INSERT INTO t VALUES ({n});\nDO SLEEP(1);\n"))
            .collect()
    };
    d.file("V2__sshd.sql", &slow(1));
    let primary = s.primary.to_string();

    // The primary's sshd dies after the second statement.
    let code = cut_off_up(&lab, &s, &db, &d.path, "V2__sshd.sql", 2, &|_| {
        let r = lab.lab_sh(&["sshd-stop", &primary]);
        assert_eq!(r.code, 0, "{r:?}");
    });
    let start = lab.lab_sh(&["sshd-start", &primary]);
    assert_eq!(start.code, 0, "{start:?}");
    assert_ne!(code, Some(0), "tend said the migration went through");
    // Recorded as failed, never as applied, while the server may still be running it.
    let h = history_rows(&lab, &s, &db);
    assert!(h == "1:1,2:0" || h == "1:1,2:1", "{h}");
    repair(
        &lab,
        &db,
        &d.path,
        &format!("sshd stopped: tend exit {code:?}, history {h}"),
    );
    assert_eq!(history_rows(&lab, &s, &db), "1:1,2:1");
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT GROUP_CONCAT(n ORDER BY n) FROM {db}.t"))
            .trim(),
        "1,2,3,4"
    );

    // tend itself SIGKILLed after the second statement of the next migration.
    d.file("V3__killed.sql", &slow(5));
    let code = cut_off_up(&lab, &s, &db, &d.path, "V3__killed.sql", 2, &|child| {
        child.kill().expect("kill");
    });
    assert_eq!(code, None, "tend was not killed");
    let h = history_rows(&lab, &s, &db);
    assert!(h == "1:1,2:1,3:0" || h == "1:1,2:1,3:1", "{h}");
    repair(&lab, &db, &d.path, &format!("tend killed: history {h}"));
    assert_eq!(history_rows(&lab, &s, &db), "1:1,2:1,3:1");
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT GROUP_CONCAT(n ORDER BY n) FROM {db}.t"))
            .trim(),
        "1,2,3,4,5,6,7,8"
    );

    // The host's side dies with the connection (sshd and the SQL client killed, as a crash
    // of the host's processes would): the server stops after the statement it was running;
    // the history says failed, and `up --resume` runs only what did not run.
    d.file("V4__crashed.sql", &slow(9));
    let code = cut_off_up(&lab, &s, &db, &d.path, "V4__crashed.sql", 2, &|_| {
        let r = lab.lab_sh(&["sshd-stop", &primary]);
        assert_eq!(r.code, 0, "{r:?}");
        lab.sh(
            s.primary,
            "me=$(readlink /proc/self/ns/net); for p in $(pgrep -x mariadb); do [ \"$(readlink /proc/$p/ns/net)\" = \"$me\" ] && kill -KILL $p; done; true",
        );
    });
    let start = lab.lab_sh(&["sshd-start", &primary]);
    assert_eq!(start.code, 0, "{start:?}");
    assert_ne!(code, Some(0));
    assert_eq!(history_rows(&lab, &s, &db), "1:1,2:1,3:1,4:0");
    let ran = lab.sql(
        s.primary,
        &format!("SELECT GROUP_CONCAT(n ORDER BY n) FROM {db}.t WHERE n > 8"),
    );
    let again = migrate(&lab, "up", &db, &d.path, &[]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(error_messages(&again).join("\n").contains("--resume"), "{again:?}");
    let resumed = migrate(&lab, "up", &db, &d.path, &["--resume"]);
    assert_eq!(resumed.code, 0, "{resumed:?} (had run: {ran})");
    assert_eq!(history_rows(&lab, &s, &db), "1:1,2:1,3:1,4:1");
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT GROUP_CONCAT(n ORDER BY n) FROM {db}.t"))
            .trim(),
        "1,2,3,4,5,6,7,8,9,10,11,12"
    );
    assert_eq!(
        lab.sql(s.primary, &format!("SELECT COUNT(*) FROM {db}.tend_migrate_journal"))
            .trim(),
        "0"
    );
    synced(&lab, &s);
    assert_eq!(dump(&lab, s.replica, &db, true), dump(&lab, s.primary, &db, true));
    assert_eq!(migrate(&lab, "validate", &db, &d.path, &[]).code, 0);
    lab.sql(s.primary, &format!("DROP DATABASE {db}"));
}
