//! `tend backup` against the lab shop's real MariaDB primary (h8) and replica (h9), with an
//! app host (h6) as the backup store: logical backups of the replica at its stopped applier's
//! consistent point and of the primary, the catalog, a failed backup never listed as good.

mod common;
use common::{Lab, Run, provision_databases, repo, run_in};

fn sql(lab: &Lab, i: u32, sql: &str) -> String {
    lab.sql(i, sql).trim().to_string()
}

fn backup(lab: &Lab, store: &str, args: &[&str]) -> Run {
    let inv = lab.inventory();
    let host = format!("backup_store_host=h{}", 6);
    let dir = format!("backup_store_dir={store}");
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    all.extend(["-i", &inv, "-e", &host, "-e", &dir, "--format", "json"]);
    run_in(&repo(), &all)
}

fn record(r: &Run) -> serde_json::Value {
    r.events("record")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no record:\n{r:?}"))
}

#[test]
fn logical_backups_record_a_consistent_point_and_a_failed_one_is_never_good() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let tag = std::process::id();
    let db = format!("bk_{tag}");
    let store = format!("/var/backups/tend-test-{tag}");
    sql(
        &lab,
        s.primary,
        &format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, note VARCHAR(20)); USE {db}; INSERT INTO t SELECT seq, CONCAT('row ', seq) FROM seq_1_to_5000"
        ),
    );
    let pos = sql(&lab, s.primary, "SELECT @@gtid_binlog_pos");
    assert_eq!(
        sql(&lab, s.replica, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")),
        "0"
    );

    // From the replica (the default): its applier stopped for the backup, started again after.
    let r = backup(&lab, &store, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rec = record(&r);
    assert_eq!(rec["source"], format!("h{}", s.replica));
    assert_eq!(rec["from_replica"], true);
    assert_eq!(rec["tables_at_consistent_point"], true);
    assert_eq!(rec["gtid"], pos);
    assert_eq!(rec["state"], "complete");
    let table = rec["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|x| x["name"] == format!("{db}.t")))
        .cloned()
        .unwrap_or_else(|| panic!("no {db}.t in {rec}"));
    assert_eq!(table["rows"], 5000);
    let checksum = sql(&lab, s.primary, &format!("CHECKSUM TABLE {db}.t"));
    assert!(
        checksum.ends_with(table["checksum"].as_str().unwrap_or("?")),
        "{checksum} vs {table}"
    );
    let status = lab.sh(s.replica, "mariadb -e 'SHOW SLAVE STATUS\\G'");
    assert!(status.contains("Slave_SQL_Running: Yes"), "{status}");
    // The file in the store is what the catalog says, and holds the rows.
    let id = rec["id"].as_str().unwrap_or_default().to_string();
    let file = format!("{store}/{id}/dump.sql.zst");
    let on_store = lab.sh(6, &format!("sha256sum {file}"));
    assert!(
        on_store.starts_with(rec["files"][0]["sha256"].as_str().unwrap_or("?")),
        "{on_store} vs {rec}"
    );
    let rows = lab.sh(
        6,
        &format!("zstd -dc {file} | grep -c \"^INSERT INTO \\`t\\`\" || true"),
    );
    assert_ne!(rows.trim(), "0", "no rows of t in the dump");
    let catalog = lab.sh(6, &format!("cat {store}/catalog/{id}.json"));
    assert!(catalog.contains(&format!("\"gtid\":\"{pos}\"")), "{catalog}");

    // From the primary: the dump's own binlog position and its GTID.
    sql(&lab, s.primary, &format!("INSERT INTO {db}.t VALUES (5001, 'after')"));
    let pos2 = sql(&lab, s.primary, "SELECT @@gtid_binlog_pos");
    let r = backup(&lab, &store, &["run", "--from", &format!("h{}", s.primary)]);
    assert_eq!(r.code, 0, "{r:?}");
    let rec2 = record(&r);
    assert_eq!(rec2["gtid"], pos2);
    assert_eq!(rec2["tables_at_consistent_point"], false);
    assert!(
        rec2["binlog_file"]
            .as_str()
            .is_some_and(|f| f.starts_with("mysql-bin.")),
        "{rec2}"
    );

    // A dump that fails (a view whose table is gone stops mariadb-dump part-way): exit 2, its
    // files gone, listed failed; the replica's applier runs again.
    sql(
        &lab,
        s.primary,
        &format!(
            "CREATE TABLE {db}.gone (a INT); CREATE VIEW {db}.broken AS SELECT a FROM {db}.gone; DROP TABLE {db}.gone"
        ),
    );
    let pos3 = sql(&lab, s.primary, "SELECT @@gtid_binlog_pos");
    assert_eq!(
        sql(&lab, s.replica, &format!("SELECT MASTER_GTID_WAIT('{pos3}', 30)")),
        "0"
    );
    let r = backup(&lab, &store, &["run"]);
    // The view goes at once: later dumps of the shop must not meet it, whatever this test finds.
    sql(&lab, s.primary, &format!("DROP VIEW {db}.broken"));
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(record(&r)["state"], "failed", "{r:?}");
    assert!(
        r.events("error")[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("mariadb-dump failed"),
        "{r:?}"
    );
    assert_eq!(record(&r)["hosts"][0]["host"], format!("h{}", s.replica));
    let status = lab.sh(s.replica, "mariadb -e 'SHOW SLAVE STATUS\\G'");
    assert!(status.contains("Slave_SQL_Running: Yes"), "{status}");
    let list = backup(&lab, &store, &["list"]);
    assert_eq!(list.code, 0, "{list:?}");
    let rows = list.events("row");
    let states: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states.iter().filter(|(_, st)| st == "complete").count(),
        2,
        "{states:?}"
    );
    let failed: Vec<&(String, String)> = states.iter().filter(|(_, st)| st == "failed").collect();
    assert_eq!(failed.len(), 1, "{states:?}");
    let leftovers = lab.sh(6, &format!("ls {store}/{} 2>/dev/null | wc -l", failed[0].0));
    assert_eq!(leftovers.trim(), "0", "files of the failed backup stay in the store");
    // `show` gives the whole entry.
    let show = backup(&lab, &store, &["show", &id]);
    assert_eq!(show.code, 0, "{show:?}");
    assert_eq!(show.events("row")[0]["tables"], rec["tables"]);
    // A store on the control node: the same file, checksummed the same way.
    let local = common::scratch();
    let inv = lab.inventory();
    let dir = format!("backup_store_dir={}", local.path().display());
    let r = run_in(&repo(), &["backup", "run", "-i", &inv, "-e", &dir, "--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rec3 = record(&r);
    let path = local
        .path()
        .join(rec3["id"].as_str().unwrap_or_default())
        .join("dump.sql.zst");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        rec3["files"][0]["sha256"].as_str().unwrap_or("?")
    );
    assert_eq!(rec3["files"][0]["bytes"], bytes.len() as u64);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a dump holds password hashes: owner only");
    // Bad input: exit 4.
    assert_eq!(backup(&lab, &store, &["show", "no-such-backup"]).code, 4);
    assert_eq!(backup(&lab, &store, &["show", "../etc"]).code, 4);
    assert_eq!(backup(&lab, &store, &["run", "--from", "h5"]).code, 4);
    lab.sh(6, &format!("rm -rf {store}"));
    sql(&lab, s.primary, &format!("DROP DATABASE {db}"));
}
