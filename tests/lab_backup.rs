//! `tend backup` and `tend restore` against the lab shop's real MariaDB primary and replica,
//! with the first app host as the backup store: logical and physical backups at a consistent
//! point, the catalog, a failed backup never listed as good, restores to a point, verification.

mod common;
use common::{Lab, Run, provision_databases, repo, run_in};

fn sql(lab: &Lab, i: u32, sql: &str) -> String {
    lab.sql(i, sql).trim().to_string()
}

/// The lab number of the backup store's host: the shop's first app host.
fn store_host(lab: &Lab) -> u32 {
    common::shop(lab).apps[0]
}

/// `tend backup ARGS` with the store on the first app host.
fn backup(lab: &Lab, store: &str, args: &[&str]) -> Run {
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    with_store(lab, store, &all)
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
    let on_store = lab.sh(store_host(&lab), &format!("sha256sum {file}"));
    assert!(
        on_store.starts_with(rec["files"][0]["sha256"].as_str().unwrap_or("?")),
        "{on_store} vs {rec}"
    );
    let rows = lab.sh(
        store_host(&lab),
        &format!("zstd -dc {file} | grep -c \"^INSERT INTO \\`t\\`\" || true"),
    );
    assert_ne!(rows.trim(), "0", "no rows of t in the dump");
    let catalog = lab.sh(store_host(&lab), &format!("cat {store}/catalog/{id}.json"));
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
    let leftovers = lab.sh(
        store_host(&lab),
        &format!("ls {store}/{} 2>/dev/null | wc -l", failed[0].0),
    );
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
    assert_eq!(backup(&lab, &store, &["run", "--from", &format!("h{}", s.lb)]).code, 4);
    lab.sh(store_host(&lab), &format!("rm -rf {store}"));
    sql(&lab, s.primary, &format!("DROP DATABASE {db}"));
}

/// `tend ARGS` (any command) with the store on the first app host.
fn with_store(lab: &Lab, store: &str, args: &[&str]) -> Run {
    let inv = lab.inventory();
    let host = format!("backup_store_host=h{}", store_host(lab));
    let dir = format!("backup_store_dir={store}");
    let mut all = args.to_vec();
    all.extend(["-i", &inv, "-e", &host, "-e", &dir, "--format", "json"]);
    run_in(&repo(), &all)
}

/// Rows of `db.t`: count and highest id.
fn rows(lab: &Lab, i: u32, db: &str) -> String {
    sql(
        lab,
        i,
        &format!("SELECT CONCAT(COUNT(*), ' ', IFNULL(MAX(id), 0)) FROM {db}.t"),
    )
}

/// Waits until the server's clock has passed a second boundary and returns that second
/// (`YYYY-MM-DD HH:MM:SS`, the server's local time): every write before is older, every one
/// after is as old or newer.
fn a_new_second(lab: &Lab, i: u32) -> String {
    let now = sql(lab, i, "SELECT NOW()");
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let t = sql(lab, i, "SELECT NOW()");
        if t != now {
            return t;
        }
    }
}

#[test]
fn point_in_time_restores_reach_exactly_the_point_and_a_replica_is_rebuilt() {
    point_in_time_restores("logical", "dump.sql.zst");
}

#[test]
fn physical_backups_restore_to_a_point_and_rebuild_a_replica_the_same_way() {
    point_in_time_restores("physical", "backup.xbstream.zst");
}

/// The same story for each kind of backup: restores to a time and to just before a
/// statement, refusals, a damaged file, a replica rebuilt.
fn point_in_time_restores(kind: &str, file: &str) {
    let lab = Lab::get();
    let s = common::provision_shop(&lab);
    let tag = std::process::id();
    let db = format!("pitr_{kind}_{tag}");
    let store = format!("/var/backups/tend-pitr-{kind}-{tag}");
    let (p, rep) = (s.primary, s.replica);
    let primary = format!("h{p}");
    sql(
        &lab,
        p,
        &format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY); USE {db}; INSERT INTO t SELECT seq FROM seq_1_to_100"
        ),
    );
    let r = with_store(&lab, &store, &["backup", "binlogs"]);
    assert_eq!(r.code, 0, "{r:?}");
    let pos = sql(&lab, p, "SELECT @@gtid_binlog_pos");
    assert_eq!(sql(&lab, rep, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")), "0");
    let r = backup(&lab, &store, &["run", "--kind", kind]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(record(&r)["kind"], kind, "{r:?}");
    let backup_id = record(&r)["id"].as_str().unwrap_or_default().to_string();

    // Rows 101-200, then the moment T, then 201-300 written through a temporary table that
    // lives across a binlog rotation (logged as statements, so the replay needs the table in
    // its session), 301-400, and the accident.
    sql(
        &lab,
        p,
        &format!("USE {db}; INSERT INTO t SELECT seq FROM seq_101_to_200"),
    );
    let t = a_new_second(&lab, p);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sql(
        &lab,
        p,
        &format!(
            "SET SESSION binlog_format = 'STATEMENT'; USE {db}; CREATE TEMPORARY TABLE tmp (id INT); INSERT INTO tmp SELECT seq FROM seq_201_to_300; FLUSH BINARY LOGS; INSERT INTO t SELECT id FROM tmp; DROP TEMPORARY TABLE tmp"
        ),
    );
    sql(
        &lab,
        p,
        &format!("USE {db}; INSERT INTO t SELECT seq FROM seq_301_to_400; DROP TABLE t"),
    );

    // The plan, and nothing changed.
    let r = with_store(
        &lab,
        &store,
        &["restore", "--target", &primary, "--to-time", &t, "--dry-run"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(record(&r)["outcome"], "planned");
    assert!(r.stdout.contains("past the restore point"), "{r:?}");
    assert!(sql(&lab, p, &format!("SHOW TABLES IN {db}")).is_empty());
    // Without --force the primary's newer transactions are not thrown away; without --yes
    // nothing happens off a terminal.
    assert_eq!(
        with_store(
            &lab,
            &store,
            &["restore", "--target", &primary, "--to-time", &t, "--yes"]
        )
        .code,
        4
    );
    assert_eq!(
        with_store(
            &lab,
            &store,
            &["restore", "--target", &primary, "--to-time", &t, "--force"]
        )
        .code,
        4
    );
    // Bad points: exit 4, the window named.
    let r = with_store(
        &lab,
        &store,
        &[
            "restore",
            "--target",
            &primary,
            "--to-time",
            "2099-01-01 00:00:00",
            "--dry-run",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("covered window"), "{r:?}");
    let r = with_store(
        &lab,
        &store,
        &[
            "restore",
            "--target",
            &primary,
            "--before",
            "DROP TABLE nothing_like_it",
            "--dry-run",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(
        with_store(
            &lab,
            &store,
            &["restore", "--target", &format!("h{}", store_host(&lab)), "--dry-run"]
        )
        .code,
        4
    );
    assert_eq!(
        with_store(
            &lab,
            &store,
            &["restore", "--target", &primary, "--to-time", "yesterday"]
        )
        .code,
        4
    );

    // To T: exactly the rows written before it.
    let binlogs_before = lab.sh(p, "mariadb -N -e 'SHOW BINARY LOGS' | cut -f1");
    let r = with_store(
        &lab,
        &store,
        &["restore", "--target", &primary, "--to-time", &t, "--force", "--yes"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(rows(&lab, p, &db), "200 200");
    // The primary's binlog goes on: every file it had is still there, the next one new.
    let binlogs_after = lab.sh(p, "mariadb -N -e 'SHOW BINARY LOGS' | cut -f1");
    assert!(
        binlogs_after.starts_with(binlogs_before.trim_end()),
        "{binlogs_before} / {binlogs_after}"
    );
    if kind == "physical" {
        let steps: Vec<String> = r
            .events("step")
            .iter()
            .filter_map(|e| e["step"].as_str().map(str::to_string))
            .collect();
        for step in ["unpack", "prepare", "swap", "replay"] {
            assert!(steps.iter().any(|s| s == step), "{step} in {steps:?}");
        }
    }
    // Writes went through the proxy again at the end.
    let upstream = lab.sh(s.lb, "cat /etc/nginx/stream.d/upstream-shop_db.conf");
    assert!(!upstream.contains("down"), "{upstream}");
    // Just before the DROP: every row, those that came through the temporary table too.
    let r = with_store(
        &lab,
        &store,
        &[
            "restore",
            "--target",
            &primary,
            "--before",
            "DROP TABLE t",
            "--force",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let matches = r.events("row");
    assert_eq!(matches.len(), 1, "{r:?}");
    assert!(
        matches[0]["statement"]
            .as_str()
            .unwrap_or_default()
            .contains("DROP TABLE"),
        "{r:?}"
    );
    assert_eq!(rows(&lab, p, &db), "400 400");
    let (code, body) = common::http_get(&format!("http://{}/", lab.address(s.lb)));
    assert_eq!(code, 200, "{body}");
    // The same restore again: already done, nothing touched.
    sql(&lab, p, &format!("INSERT INTO {db}.t VALUES (1000)"));
    let r = with_store(
        &lab,
        &store,
        &[
            "restore",
            "--target",
            &primary,
            "--before",
            "DROP TABLE t",
            "--force",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("already restored"), "{r:?}");
    assert_eq!(rows(&lab, p, &db), "401 1000");

    // A damaged file in the store: refused, the file and both sums named, nothing touched.
    lab.sh(
        store_host(&lab),
        &format!("cp -p {store}/{backup_id}/{file} /tmp/good-{tag} && printf x >> {store}/{backup_id}/{file}"),
    );
    let r = with_store(
        &lab,
        &store,
        &[
            "restore", "--target", &primary, "--backup", &backup_id, "--force", "--yes",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let message = r.events("error")[0]["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains(&format!("{backup_id}/{file}")) && message.contains("damaged"),
        "{message}"
    );
    assert_eq!(rows(&lab, p, &db), "401 1000");
    lab.sh(
        store_host(&lab),
        &format!("mv /tmp/good-{tag} {store}/{backup_id}/{file}"),
    );
    if kind == "physical" {
        // Files of another release series would not start: refused before anything is done.
        let entry = format!("{store}/catalog/{backup_id}.json");
        lab.sh(
            store_host(&lab),
            &format!("cp -p {entry} /tmp/entry-{tag} && sed -i 's/\"server_version\":\"10\\./\"server_version\":\"9./' {entry}"),
        );
        let r = with_store(
            &lab,
            &store,
            &[
                "restore", "--target", &primary, "--backup", &backup_id, "--force", "--yes",
            ],
        );
        assert_eq!(r.code, 4, "{r:?}");
        assert!(r.stdout.contains("release series"), "{r:?}");
        lab.sh(store_host(&lab), &format!("mv /tmp/entry-{tag} {entry}"));
    }
    // Nothing of a restore is left beside the datadir or in the server's options.
    assert_eq!(
        lab.sh(
            p,
            "ls -d /var/lib/mysql.tend-* /etc/mysql/mariadb.conf.d/99-tend-* 2>/dev/null || true"
        )
        .trim(),
        ""
    );

    // The replica holds another history now: rebuilt from a new backup of the primary, it
    // replicates, and a new row travels.
    let r = with_store(&lab, &store, &["replica", "rebuild", &format!("h{rep}"), "--yes"]);
    assert_eq!(
        r.code, 4,
        "a backup from before the restore must not seed the replica: {r:?}"
    );
    let r = backup(&lab, &store, &["run", "--from", &primary, "--kind", kind]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = with_store(&lab, &store, &["replica", "rebuild", &format!("h{rep}"), "--yes"]);
    assert_eq!(r.code, 0, "{r:?}");
    let status = lab.sh(rep, "mariadb -e 'SHOW SLAVE STATUS\\G'");
    assert!(
        status.contains("Slave_IO_Running: Yes") && status.contains("Slave_SQL_Running: Yes"),
        "{status}"
    );
    sql(&lab, p, &format!("INSERT INTO {db}.t VALUES (1001)"));
    let pos = sql(&lab, p, "SELECT @@gtid_binlog_pos");
    assert_eq!(sql(&lab, rep, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")), "0");
    assert_eq!(rows(&lab, rep, &db), "402 1001");
    sql(&lab, p, &format!("DROP DATABASE {db}"));
    lab.sh(store_host(&lab), &format!("rm -rf {store}"));
}

#[test]
fn a_restore_cut_off_by_a_killed_tend_or_sshd_resumes_after_the_last_committed_transaction() {
    use std::io::BufRead;
    let lab = Lab::get();
    let s = common::provision_shop(&lab);
    let tag = std::process::id();
    let db = format!("kill_{tag}");
    let store = format!("/var/backups/tend-kill-{tag}");
    let (p, rep) = (s.primary, s.replica);
    let primary = format!("h{p}");
    sql(
        &lab,
        p,
        &format!("CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY)"),
    );
    let pos = sql(&lab, p, "SELECT @@gtid_binlog_pos");
    assert_eq!(sql(&lab, rep, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")), "0");
    let r = backup(&lab, &store, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    // 20000 transactions of one row each, then the accident.
    lab.sh(
        p,
        &format!(
            "seq 1 20000 | sed 's/.*/INSERT INTO t VALUES (&);/' | mariadb {db} && mariadb {db} -e 'DROP TABLE t'"
        ),
    );
    let inv = lab.inventory();
    let dir = format!("backup_store_dir={store}");
    let args = [
        "restore",
        "--target",
        &primary,
        "--before",
        "DROP TABLE t",
        "--force",
        "--yes",
        "-i",
        &inv,
        "-e",
        &format!("backup_store_host=h{}", store_host(&lab)),
        "-e",
        &dir,
        "--format",
        "json",
    ];
    let mut child = common::tend()
        .current_dir(repo())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tend");
    let stdout = child.stdout.take().expect("stdout");
    let mut loaded = false;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap_or_default();
        if line.contains("\"step\":\"load\"") {
            loaded = true;
            break;
        }
        assert!(
            !line.contains("\"event\":\"record\""),
            "ended before the replay: {line}"
        );
    }
    assert!(loaded, "no load step");
    // Killed once the replay has committed something.
    let mut marked = String::new();
    for _ in 0..200 {
        marked = sql(&lab, p, "SELECT gtid FROM mysql.tend_restore WHERE id = 1");
        if !marked.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(!marked.is_empty(), "the replay committed nothing while watched");
    let partial = rows(&lab, p, &db);
    let after_kill = sql(&lab, p, "SELECT gtid FROM mysql.tend_restore WHERE id = 1");
    // The proxy lets writes through again without tend.
    let mut upstream = String::new();
    for _ in 0..50 {
        upstream = lab.sh(s.lb, "cat /etc/nginx/stream.d/upstream-shop_db.conf");
        if !upstream.contains("down") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!upstream.contains("down"), "{upstream}");
    // The same command again resumes (the lock of the dead run is taken over); this time the
    // target's sshd dies once the resumed replay has committed more.
    let mut child = common::tend()
        .current_dir(repo())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tend");
    let mut later = after_kill.clone();
    for _ in 0..500 {
        later = sql(&lab, p, "SELECT gtid FROM mysql.tend_restore WHERE id = 1");
        if later != after_kill {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stop = lab.lab_sh(&["sshd-stop", &p.to_string()]);
    assert_eq!(stop.code, 0, "{stop:?}");
    let code = child.wait().expect("wait").code();
    let start = lab.lab_sh(&["sshd-start", &p.to_string()]);
    assert_eq!(start.code, 0, "{start:?}");
    assert_ne!(later, after_kill, "the resumed replay committed nothing while watched");
    assert!(matches!(code, Some(2 | 3)), "sshd stopped mid-replay: exit {code:?}");
    let cut = rows(&lab, p, &db);
    eprintln!("killed at {partial}, sshd stopped at {cut}");
    // And again: resumes after the last committed transaction and ends at the point.
    let r = with_store(
        &lab,
        &store,
        &[
            "restore",
            "--target",
            &primary,
            "--before",
            "DROP TABLE t",
            "--force",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("resuming"), "{r:?}");
    assert_eq!(
        rows(&lab, p, &db),
        "20000 20000",
        "after a kill at {partial} and sshd stopped at {cut}"
    );
    // The replica, seeded again from a backup of the restored primary.
    let r = backup(&lab, &store, &["run", "--from", &primary]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = with_store(&lab, &store, &["replica", "rebuild", &format!("h{rep}"), "--yes"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(rows(&lab, rep, &db), "20000 20000");
    sql(&lab, p, &format!("DROP DATABASE {db}"));
    lab.sh(store_host(&lab), &format!("rm -rf {store}"));
}

#[test]
fn verify_proves_a_good_backup_fails_a_damaged_one_and_prune_keeps_what_is_needed() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let tag = std::process::id();
    let db = format!("ver_{tag}");
    let store = format!("/var/backups/tend-verify-{tag}");
    let (p, rep) = (s.primary, s.replica);
    let caught_up = |lab: &Lab| {
        let pos = sql(lab, p, "SELECT @@gtid_binlog_pos");
        assert_eq!(sql(lab, rep, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")), "0");
    };
    sql(
        &lab,
        p,
        &format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY); USE {db}; INSERT INTO t SELECT seq FROM seq_1_to_1000; FLUSH BINARY LOGS"
        ),
    );
    assert_eq!(with_store(&lab, &store, &["backup", "binlogs"]).code, 0);
    let mut ids = Vec::new();
    // Two logical backups, then a physical one (the newest).
    for n in 0..3 {
        caught_up(&lab);
        let r = backup(
            &lab,
            &store,
            &["run", "--kind", if n == 2 { "physical" } else { "logical" }],
        );
        assert_eq!(r.code, 0, "{r:?}");
        ids.push(record(&r)["id"].as_str().unwrap_or_default().to_string());
        sql(
            &lab,
            p,
            &format!("USE {db}; INSERT INTO t VALUES ({}); FLUSH BINARY LOGS", 2000 + n),
        );
    }
    assert_eq!(with_store(&lab, &store, &["backup", "binlogs"]).code, 0);
    let entry = |id: &str| -> serde_json::Value {
        serde_json::from_str(&lab.sh(store_host(&lab), &format!("cat {store}/catalog/{id}.json"))).unwrap_or_default()
    };

    // The newest: unpacked and prepared into a scratch server, checked, rolled forward to the
    // last insert.
    let r = backup(&lab, &store, &["verify"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("mariabackup --prepare"), "{r:?}");
    let v = &entry(&ids[2])["verifications"][0];
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["restore_seconds"].as_f64().is_some_and(|s| s > 0.0), "{v}");
    assert_eq!(v["transactions"], 1, "the insert after the backup was replayed: {v}");
    assert_eq!(v["gtid"], sql(&lab, p, "SELECT @@gtid_binlog_pos"));
    // Nothing of the scratch server is left, and the running server was not touched.
    assert_eq!(lab.sh(rep, "ls /var/tmp | grep -c tend-verify || true").trim(), "0");
    assert_eq!(sql(&lab, rep, "SELECT @@port"), "3306");
    // Verified once: not again.
    let r = backup(&lab, &store, &["verify"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(entry(&ids[2])["verifications"].as_array().map(Vec::len), Some(1));
    // A damaged file: the verification fails, names the file, and is recorded.
    lab.sh(
        store_host(&lab),
        &format!("printf x >> {store}/{}/dump.sql.zst", ids[1]),
    );
    let r = backup(&lab, &store, &["verify", &ids[1]]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = &entry(&ids[1])["verifications"][0];
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["problems"][0].as_str().unwrap_or_default().contains("dump.sql.zst"),
        "{v}"
    );

    // Status: the newest verified backup and the window; too old for a tiny backup_max_age.
    let r = backup(&lab, &store, &["status"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.events("row")[0]["newest_verified"], ids[2].as_str());
    let r = backup(&lab, &store, &["status", "-e", "backup_max_age=0s"]);
    assert_eq!(r.code, 2, "{r:?}");
    // `tend check` reads the same catalog for the primary's row (the store is on another
    // host, read over its connection): fresh, a warning at 0 hours, critical with none verified.
    let primary = format!("h{p}");
    let backup_row = |extra: &[&str], store: &str| -> serde_json::Value {
        let mut args = vec!["check", primary.as_str()];
        args.extend_from_slice(extra);
        let r = with_store(&lab, store, &args);
        assert!(matches!(r.code, 0 | 6 | 7), "{r:?}");
        r.events("row")
            .into_iter()
            .find(|row| row["check"] == "backup_age")
            .unwrap_or_else(|| panic!("no backup_age row:\n{r:?}"))
    };
    let row = backup_row(&[], &store);
    assert_eq!(row["level"], "ok", "{row}");
    assert!(
        row["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!("{} verified", ids[2])),
        "{row}"
    );
    assert!(row["value"].as_f64().is_some_and(|h| h < 1.0), "{row}");
    let row = backup_row(&["-e", "check_backup_age_warn=0"], &store);
    assert_eq!(row["level"], "warning", "{row}");
    let row = backup_row(&[], &format!("{store}-empty"));
    assert_eq!(
        (row["level"].as_str(), row["detail"].as_str()),
        (Some("critical"), Some("no backup has been verified")),
        "{row}"
    );

    // Retention of one day: the newest (also the newest verified) stays with the binlogs from
    // its position on; the others and the binlogs before it go, exactly as planned.
    let keep = [
        "-e",
        "backup_keep_daily=1",
        "-e",
        "backup_keep_weekly=0",
        "-e",
        "backup_keep_monthly=0",
    ];
    let mut plan_args = vec!["prune", "--plan"];
    plan_args.extend(keep);
    let plan = backup(&lab, &store, &plan_args);
    assert_eq!(plan.code, 0, "{plan:?}");
    let planned = record(&plan);
    assert_eq!(planned["delete"], serde_json::json!([ids[0], ids[1]]), "{planned}");
    assert_eq!(planned["keep"], serde_json::json!([ids[2]]), "{planned}");
    let kept_file = entry(&ids[2])["binlog_file"].as_str().unwrap_or_default().to_string();
    let doomed: Vec<String> = planned["binlogs"][format!("h{p}")]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    assert!(
        !doomed.is_empty() && doomed.iter().all(|f| *f < kept_file),
        "{doomed:?} vs {kept_file}"
    );
    assert!(
        lab.sh(store_host(&lab), &format!("ls {store}/{}", ids[0]))
            .contains("dump.sql.zst"),
        "--plan deleted"
    );
    let mut prune_args = vec!["prune"];
    prune_args.extend(keep);
    let r = backup(&lab, &store, &prune_args);
    assert_eq!(r.code, 0, "{r:?}");
    let left = lab.sh(
        store_host(&lab),
        &format!("ls {store} {store}/catalog {store}/binlogs/h{p}"),
    );
    assert!(
        !left.contains(&ids[0]) && !left.contains(&ids[1]) && left.contains(&ids[2]),
        "{left}"
    );
    assert!(
        doomed.iter().all(|f| !left.contains(f.as_str())) && left.contains(&kept_file),
        "{left}"
    );
    // What stays still restores: the kept backup rolls forward over the kept binlogs.
    let r = with_store(&lab, &store, &["restore", "--target", &format!("h{rep}"), "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(record(&r)["backup"], ids[2].as_str());
    sql(&lab, p, &format!("DROP DATABASE {db}"));
    lab.sh(store_host(&lab), &format!("rm -rf {store}"));
}

/// A store whose disk fills during the backup (a 512 KiB tmpfs on the store host, a dump of
/// several MiB of random bytes): exit 2, the backup listed failed and never complete, its files
/// gone, the error saying why, and the replica it was taken from replicating again.
#[test]
fn a_store_that_fills_up_marks_the_backup_failed_and_spares_the_source() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let tag = std::process::id();
    let db = format!("full_{tag}");
    let store = format!("/var/backups/tend-full-{tag}");
    sql(
        &lab,
        s.primary,
        &format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, b BLOB); USE {db}; INSERT INTO t SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_6000"
        ),
    );
    let pos = sql(&lab, s.primary, "SELECT @@gtid_binlog_pos");
    assert_eq!(
        sql(&lab, s.replica, &format!("SELECT MASTER_GTID_WAIT('{pos}', 60)")),
        "0"
    );
    lab.sh(
        store_host(&lab),
        &format!("mkdir -p {store} && mount -t tmpfs -o size=512k tmpfs {store}"),
    );
    let r = backup(&lab, &store, &["run"]);
    let list = backup(&lab, &store, &["list"]);
    let left = lab.sh(
        store_host(&lab),
        &format!("find {store} -type f | grep -v /catalog/ | wc -l"),
    );
    lab.sh(store_host(&lab), &format!("umount {store}; rm -rf {store}"));
    sql(&lab, s.primary, &format!("DROP DATABASE {db}"));
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(record(&r)["state"], "failed", "{r:?}");
    let message = r.events("error")[0]["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("cannot write") && message.contains("No space left on device"),
        "{message}"
    );
    let states: Vec<String> = list
        .events("row")
        .iter()
        .map(|row| row["state"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(states, ["failed"], "{list:?}");
    assert_eq!(left.trim(), "0", "files of the failed backup stay in the store");
    let status = lab.sh(s.replica, "mariadb -e 'SHOW SLAVE STATUS\\G'");
    assert!(status.contains("Slave_SQL_Running: Yes"), "{status}");
}

/// `tend backup run` from the replica (JSON, in the background), cut off by `cut` once the
/// store holds part of its file; returns tend's exit code.
fn cut_off_backup(lab: &Lab, store: &str, cut: &dyn Fn(&mut std::process::Child)) -> Option<i32> {
    let inv = lab.inventory();
    let host = format!("backup_store_host=h{}", store_host(lab));
    let dir = format!("backup_store_dir={store}");
    let mut child = common::tend()
        .current_dir(repo())
        .args(["backup", "run", "-i", &inv, "-e", &host, "-e", &dir, "--format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tend");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no part of the backup reached the store"
        );
        let part = lab.sh(
            store_host(lab),
            &format!("find {store} -name '*.part' -size +256k 2>/dev/null | wc -l"),
        );
        if part.trim() != "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cut(&mut child);
    child.wait().expect("wait").code()
}

/// Waits until the replica's SQL thread runs again (a backup's applier session starts it when
/// its connection ends, whoever ends it).
fn applier_running(lab: &Lab, i: u32) -> bool {
    for _ in 0..100 {
        if lab
            .sh(i, "mariadb -e 'SHOW SLAVE STATUS\\G'")
            .contains("Slave_SQL_Running: Yes")
        {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A backup cut off by the source's sshd dying, and by `tend` itself being SIGKILLed, while its
/// file streams into the store: never listed as good (the first is listed `failed`, the
/// second not at all), the replica replicating again, and the next `backup run` sweeps what the
/// killed run left in the store and takes a good backup.
#[test]
fn a_backup_cut_off_by_sshd_or_a_killed_tend_is_never_listed_good() {
    let lab = Lab::get();
    let s = provision_databases(&lab);
    let tag = std::process::id();
    let db = format!("cut_{tag}");
    let store = format!("/var/backups/tend-cut-{tag}");
    // Enough incompressible rows that the stream takes a few seconds.
    sql(
        &lab,
        s.primary,
        &format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, b BLOB); USE {db}; INSERT INTO t SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_150000"
        ),
    );
    let pos = sql(&lab, s.primary, "SELECT @@gtid_binlog_pos");
    assert_eq!(
        sql(&lab, s.replica, &format!("SELECT MASTER_GTID_WAIT('{pos}', 120)")),
        "0"
    );
    let replica = s.replica.to_string();
    let states = |lab: &Lab| -> Vec<String> {
        backup(lab, &store, &["list"])
            .events("row")
            .iter()
            .map(|row| row["state"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let files = |lab: &Lab| -> String {
        lab.sh(
            store_host(lab),
            &format!("find {store} -type f | grep -v /catalog/ | wc -l"),
        )
        .trim()
        .to_string()
    };

    // The source's sshd dies mid-stream.
    let code = cut_off_backup(&lab, &store, &|_| {
        let r = lab.lab_sh(&["sshd-stop", &replica]);
        assert_eq!(r.code, 0, "{r:?}");
    });
    let start = lab.lab_sh(&["sshd-start", &replica]);
    assert_eq!(start.code, 0, "{start:?}");
    assert!(matches!(code, Some(2 | 3)), "{code:?}");
    assert_eq!(states(&lab), ["failed"]);
    assert_eq!(files(&lab), "0", "files of the failed backup stay in the store");
    assert!(
        applier_running(&lab, s.replica),
        "the replica's SQL thread stayed stopped"
    );

    // tend itself killed mid-stream: nothing lists it; its part file stays until the next run.
    let code = cut_off_backup(&lab, &store, &|child| child.kill().expect("kill"));
    assert_eq!(code, None);
    assert_eq!(states(&lab), ["failed"]);
    assert!(
        applier_running(&lab, s.replica),
        "the replica's SQL thread stayed stopped"
    );
    assert_ne!(files(&lab), "0");

    // The next run takes over the dead run's lock, sweeps its files and backs up.
    let r = backup(&lab, &store, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.events("note").iter().any(|n| n["message"]
            .as_str()
            .unwrap_or_default()
            .contains("its run ended before listing it")),
        "{}",
        r.stdout
    );
    assert_eq!(record(&r)["state"], "complete");
    assert_eq!(states(&lab), ["failed", "complete"]);
    assert_eq!(files(&lab), "1");
    assert!(applier_running(&lab, s.replica));
    lab.sh(store_host(&lab), &format!("rm -rf {store}"));
    sql(&lab, s.primary, &format!("DROP DATABASE {db}"));
}
