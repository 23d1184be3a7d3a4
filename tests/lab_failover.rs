//! `tend failover` against the lab shop: a real MariaDB primary and replica behind the
//! balancer's database proxy, the Tomcat apps writing through it. Every test leaves the cluster
//! as it found it: the inventory's `db_primary` the primary.

mod common;
use common::{Lab, Run, Shop, http_get, provision_shop, repo, run_in};

/// `tend failover ARGS` without the cool-down (the tests switch back and forth).
fn failover(lab: &Lab, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-e", "failover_cooldown=0"]);
    failover_with(lab, &all)
}

fn failover_with(lab: &Lab, args: &[&str]) -> Run {
    let inv = lab.inventory();
    let mut all = vec!["failover"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-i", &inv, "--format", "json"]);
    run_in(&repo(), &all)
}

/// Starts a killed server again, as its host coming back would.
fn start_server(lab: &Lab, i: u32) {
    lab.sh(i, "service mariadb start >/dev/null 2>&1 || true");
    for _ in 0..60 {
        if lab.on_host(i, &["mariadb", "-e", "SELECT 1"]).code == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("h{i}: mariadb did not start again");
}

fn record(r: &Run) -> serde_json::Value {
    r.events("record")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no record:\n{r:?}"))
}

fn sql(lab: &Lab, i: u32, q: &str) -> String {
    lab.sql(i, q).trim().to_string()
}

fn slave_status(lab: &Lab, i: u32) -> String {
    lab.sh(i, "mariadb -e 'SHOW SLAVE STATUS\\G'")
}

/// `tend` with the lab inventory, a backup store of its own and JSON output.
struct StoreRun {
    inv: String,
    store: tempfile::TempDir,
    migrations: tempfile::TempDir,
}

impl StoreRun {
    fn new(lab: &Lab) -> Self {
        Self {
            inv: lab.inventory(),
            store: common::scratch(),
            migrations: common::scratch(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let store_var = format!("backup_store_dir={}", self.store.path().display());
        let mut all = args.to_vec();
        all.extend_from_slice(&["-i", &self.inv, "-e", &store_var, "--format", "json"]);
        run_in(&repo(), &all)
    }

    /// `tend migrate up` of one migration (`V1__t.sql` holding `sql`) into schema `schema`.
    fn migrate(&self, schema: &str, sql: &str) -> Run {
        std::fs::write(self.migrations.path().join("V1__t.sql"), sql).expect("migration file");
        let dir = self.migrations.path().to_string_lossy().to_string();
        self.run(&["migrate", "up", "--dir", &dir, "--database", schema])
    }
}

/// The cluster's rows of `tend failover status`, by host.
fn status(lab: &Lab) -> (Run, std::collections::BTreeMap<String, serde_json::Value>) {
    let r = failover(lab, &["status"]);
    let rows = r
        .events("row")
        .into_iter()
        .filter(|row| row["table"] == "cluster")
        .map(|row| (row["host"].as_str().unwrap_or_default().to_string(), row))
        .collect();
    (r, rows)
}

/// Puts the inventory's primary back if a test left the cluster switched (a failed assertion).
struct Restore<'a>(&'a Lab, u32);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let primary = format!("h{}", self.1);
        // A killed server comes back first (without panicking: this runs while unwinding).
        let _ = self.0.on_host(
            self.1,
            &["sh", "-c", "pgrep -x mariadbd >/dev/null || service mariadb start"],
        );
        let (_, rows) = status(self.0);
        if rows.get(&primary).is_some_and(|r| r["role"] != "primary") {
            let _ = failover(self.0, &["switchover", "--to", &primary]);
        }
        // Any other member left out of replication comes back (what it holds of its own is
        // dropped: the next test starts from one history).
        let (_, rows) = status(self.0);
        for (host, row) in rows {
            if host != primary && row["verdict"] != "ready" {
                let _ = failover(self.0, &["rejoin", &host, "--discard-errant"]);
            }
        }
    }
}

/// `primary` takes writes and `replica` replicates from it; with `roles`, their role files say
/// so for their next start.
fn assert_primary(lab: &Lab, s: &Shop, (primary, replica): (u32, u32), roles: bool) {
    assert_eq!(sql(lab, primary, "SELECT @@read_only"), "0");
    assert_eq!(sql(lab, replica, "SELECT @@read_only"), "1");
    let st = slave_status(lab, replica);
    assert!(
        st.contains(&format!("Master_Host: {}", lab.address(primary)))
            && st.contains("Slave_IO_Running: Yes")
            && st.contains("Slave_SQL_Running: Yes"),
        "h{replica}: {st}"
    );
    assert_eq!(slave_status(lab, primary).trim(), "", "h{primary} still replicates");
    let proxy = lab.sh(s.lb, "cat /etc/nginx/stream.d/upstream-shop_db.conf");
    assert!(
        proxy.contains(&format!("server {}:3306", lab.address(primary))),
        "{proxy}"
    );
    // The role survives a restart: the role file says so.
    if roles {
        let role = |i: u32| lab.sh(i, "cat /etc/mysql/mariadb.conf.d/90-tend-role.cnf");
        assert!(role(primary).contains("read_only = OFF"), "{}", role(primary));
        assert!(role(replica).contains("read_only = ON"), "{}", role(replica));
    }
    // A new row travels from the primary to the replica.
    let tag = format!("travel{}", std::process::id());
    sql(
        lab,
        primary,
        &format!("INSERT INTO shop.settings (name, value) VALUES ('{tag}', 'x') ON DUPLICATE KEY UPDATE value = 'x'"),
    );
    let pos = sql(lab, primary, "SELECT @@gtid_binlog_pos");
    assert_eq!(sql(lab, replica, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")), "0");
    assert_eq!(
        sql(
            lab,
            replica,
            &format!("SELECT value FROM shop.settings WHERE name = '{tag}'")
        ),
        "x"
    );
    sql(lab, primary, &format!("DELETE FROM shop.settings WHERE name = '{tag}'"));
}

/// The drill's HTML report opens in headless Chromium and shows the chart: the screenshot
/// holds the probe's green marks and the first step's colour.
fn assert_report_renders(report: &std::path::Path) {
    let pixels = common::screenshot(report, 1000, 700);
    assert!(
        common::pixels_of(&pixels, "#2e7d32") > 20,
        "no acknowledged writes drawn"
    );
    assert!(common::pixels_of(&pixels, "#4e79a7") > 20, "no step drawn");
}

#[test]
fn a_switchover_drill_loses_nothing_and_switching_back_works() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _restore = Restore(&lab, s.primary);
    let (p, r) = (format!("h{}", s.primary), format!("h{}", s.replica));

    let (st, rows) = status(&lab);
    assert_eq!(st.code, 0, "{st:?}");
    assert_eq!(rows[&p]["role"], "primary", "{rows:?}");
    assert_eq!(rows[&p]["proxy"], true);
    assert_eq!(rows[&p]["semi_sync"], "on", "{rows:?}");
    assert_eq!(rows[&r]["role"], "replica");
    assert_eq!(rows[&r]["verdict"], "ready", "{rows:?}");

    // The drill: probe through the proxy, switch over, probe until steady.
    let dir = common::scratch();
    let report = dir.path().join("drill.html");
    let d = failover(
        &lab,
        &[
            "drill",
            "--kind",
            "switchover",
            "--report",
            report.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(d.code, 0, "{d:?}");
    assert_report_renders(&report);
    let rec = record(&d);
    assert_eq!(rec["from"], p.as_str());
    assert_eq!(rec["to"], r.as_str());
    assert_eq!(rec["rpo_missing"], serde_json::json!([]), "{rec}");
    let rto = rec["rto_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(rto < 5000, "RTO {rto} ms");
    let probe = &rec["probe"];
    assert!(probe["acknowledged"].as_u64().unwrap_or(0) >= 20, "{probe}");
    // Acknowledged writes went to the old primary, then to the new one.
    let ids: std::collections::BTreeSet<u64> = rec["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["server_id"].as_u64())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let phases: Vec<&str> = rec["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for want in [
        "demote",
        "catch up",
        "promote",
        "repoint",
        "commit",
        "replicate",
        "check",
    ] {
        assert!(phases.contains(&want), "{phases:?}");
    }
    // Every acknowledged probe row is on the new primary, and on the old one as a replica.
    let run = probe["run"].as_str().unwrap_or_default();
    let count = |i: u32| {
        sql(
            &lab,
            i,
            &format!("SELECT COUNT(*) FROM shop.tend_probe WHERE run = '{run}'"),
        )
    };
    assert!(count(s.replica).parse::<u64>().unwrap_or(0) >= probe["acknowledged"].as_u64().unwrap_or(1));
    assert_primary(&lab, &s, (s.replica, s.primary), true);

    // The shop answers through the balancer from the new primary.
    let lb = format!("http://{}/", lab.address(s.lb));
    let (code, body) = http_get(&lb);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("db: {r}")), "{body}");

    let (st, rows) = status(&lab);
    assert_eq!(st.code, 0, "{st:?}");
    assert_eq!(rows[&r]["role"], "primary", "{rows:?}");
    assert_eq!(rows[&p]["verdict"], "ready", "{rows:?}");

    // Backups, binlog shipping and migrations follow the servers' roles, not the inventory's
    // `db_primary` (which names the old primary now).
    let t = StoreRun::new(&lab);
    let tend = |args: &[&str]| t.run(args);
    let b = tend(&["backup", "run"]);
    assert_eq!(b.code, 0, "{b:?}");
    assert!(b.stdout.contains(&format!("{r} is the primary now")), "{b:?}");
    let rec = record(&b);
    assert_eq!(rec["source"], p.as_str(), "the old primary, a replica now: {rec}");
    assert_eq!(rec["from_replica"], true, "{rec}");
    assert_eq!(rec["binlog_host"], r.as_str(), "{rec}");
    let shipped = tend(&["backup", "binlogs"]);
    assert_eq!(shipped.code, 0, "{shipped:?}");
    let index = std::fs::read_to_string(t.store.path().join(format!("binlogs/{r}/index.json"))).unwrap_or_default();
    assert!(index.contains("mysql-bin."), "no binlog of {r} shipped: {shipped:?}");
    // A restore of the new primary plans from that backup over its own binlogs.
    let plan = tend(&["restore", "--target", &r, "--dry-run"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let id = rec["id"].as_str().unwrap_or("?");
    assert!(plan.stdout.contains(&format!("plan: backup {id}")), "{plan:?}");
    let schema = format!("fo_{}", std::process::id());
    let m = t.migrate(
        &schema,
        "CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\n",
    );
    assert_eq!(m.code, 0, "{m:?}");
    assert_eq!(sql(&lab, s.replica, &format!("SELECT COUNT(*) FROM {schema}.t")), "1");
    assert_eq!(
        sql(
            &lab,
            s.replica,
            &format!("SELECT success FROM {schema}.flyway_schema_history WHERE version = '1'")
        ),
        "1"
    );
    sql(&lab, s.replica, &format!("DROP DATABASE {schema}"));

    // A drill to the primary itself is bad input; so is a member that does not exist.
    let same = failover(&lab, &["drill", "--to", &r]);
    assert_eq!(same.code, 4, "{same:?}");
    let nosuch = failover(&lab, &["switchover", "--to", "h99"]);
    assert_eq!(nosuch.code, 4, "{nosuch:?}");
    assert!(nosuch.stderr.contains("not a member"), "{nosuch:?}");

    // And back: a plain switchover.
    let back = failover(&lab, &["switchover", "--to", &p]);
    assert_eq!(back.code, 0, "{back:?}");
    assert_primary(&lab, &s, (s.primary, s.replica), true);
    let (code, body) = http_get(&lb);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("db: {p}")), "{body}");
    // Run again, it finds the switchover done and changes nothing that matters.
    let again = failover(&lab, &["switchover", "--to", &p]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_primary(&lab, &s, (s.primary, s.replica), true);
}

#[test]
fn a_lagging_replica_or_a_proxy_nginx_refuses_changes_nothing() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _restore = Restore(&lab, s.primary);
    let proxy_file = "/etc/nginx/stream.d/upstream-shop_db.conf";
    let before = lab.sh(s.lb, &format!("cat {proxy_file}"));

    // The replica's applier stopped while writes continue: refused, nothing changed.
    sql(&lab, s.replica, "STOP SLAVE SQL_THREAD");
    sql(
        &lab,
        s.primary,
        "INSERT INTO shop.settings (name, value) VALUES ('lagging', 'x') ON DUPLICATE KEY UPDATE value = 'y'",
    );
    let (_, rows) = status(&lab);
    let verdict = rows[&format!("h{}", s.replica)]["verdict"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(verdict.contains("SQL thread stopped"), "{verdict}");
    let r = failover(&lab, &["switchover"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no replica is ready"), "{r:?}");
    let r = failover(&lab, &["switchover", "--to", &format!("h{}", s.replica)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("SQL thread stopped"), "{r:?}");
    assert_eq!(sql(&lab, s.primary, "SELECT @@read_only"), "0");
    assert_eq!(lab.sh(s.lb, &format!("cat {proxy_file}")), before);
    sql(&lab, s.replica, "START SLAVE SQL_THREAD");
    sql(&lab, s.primary, "DELETE FROM shop.settings WHERE name = 'lagging'");

    // nginx refuses the repointed proxy (the new primary's address does not resolve): the
    // file is put back, the old primary is writable again, the replica replicates again.
    let dir = common::scratch();
    let overlay = dir.path().join("overlay.yaml");
    std::fs::write(
        &overlay,
        format!(
            "all:\n  hosts:\n    h{}:\n      shop_db_address: nohost.invalid\n",
            s.replica
        ),
    )
    .expect("overlay");
    let inv = lab.inventory();
    let r = run_in(
        &repo(),
        &[
            "failover",
            "switchover",
            "-i",
            &inv,
            "-i",
            overlay.to_str().unwrap_or_default(),
            "-e",
            "failover_cooldown=0",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nginx -t refused"), "{r:?}");
    assert!(r.stderr.contains(proxy_file), "{r:?}");
    assert!(r.stderr.contains("nothing was lost"), "{r:?}");
    assert_eq!(lab.sh(s.lb, &format!("cat {proxy_file}")), before);
    assert_eq!(
        lab.sh(s.lb, &format!("ls {proxy_file}.tend-* 2>/dev/null || true"))
            .trim(),
        ""
    );
    assert_primary(&lab, &s, (s.primary, s.replica), false);
}

#[test]
fn a_killed_primary_is_replaced_fenced_and_rejoined() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _restore = Restore(&lab, s.primary);
    let (p, r) = (format!("h{}", s.primary), format!("h{}", s.replica));

    let d = failover(&lab, &["drill", "--kind", "kill-primary"]);
    assert_eq!(d.code, 0, "{d:?}");
    let rec = record(&d);
    assert_eq!(
        (rec["from"].as_str(), rec["to"].as_str()),
        (Some(p.as_str()), Some(r.as_str()))
    );
    assert_eq!(rec["rpo_missing"], serde_json::json!([]), "{rec}");
    assert!(rec["rto_ms"].as_u64().unwrap_or(u64::MAX) < 5000, "{rec}");
    // The killed server is down; the shop writes to the new primary.
    assert_ne!(lab.on_host(s.primary, &["mariadb", "-e", "SELECT 1"]).code, 0);
    let (code, body) = http_get(&format!("http://{}/", lab.address(s.lb)));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("db: {r}")), "{body}");

    // With the old primary's server dead, backups and migrations work on the new primary.
    let t = StoreRun::new(&lab);
    let tend = |args: &[&str]| t.run(args);
    let b = tend(&["backup", "run"]);
    assert_eq!(b.code, 0, "{b:?}");
    let rec = record(&b);
    assert_eq!(
        (rec["source"].as_str(), rec["from_replica"].as_bool()),
        (Some(r.as_str()), Some(false)),
        "{rec}"
    );
    let schema = format!("fk_{}", std::process::id());
    let m = t.migrate(&schema, "CREATE TABLE t (id INT PRIMARY KEY);\n");
    assert_eq!(m.code, 0, "{m:?}");
    assert!(m.stdout.contains(&format!("{p} is not a replica of {r}")), "{m:?}");
    assert_eq!(sql(&lab, s.replica, &format!("SELECT COUNT(*) FROM {schema}.t")), "0");

    // Its host comes back: the server starts fenced, read_only and out of the proxy.
    start_server(&lab, s.primary);
    assert_eq!(sql(&lab, s.primary, "SELECT @@read_only"), "1");
    let (_, rows) = status(&lab);
    assert_eq!(rows[&p]["proxy"], false, "{rows:?}");
    assert_eq!(rows[&r]["role"], "primary", "{rows:?}");
    // Fenced but not rejoined, it is nobody's replica: not rebuilt, restored or backed up from.
    for args in [
        vec!["replica", "rebuild", p.as_str(), "--yes"],
        vec!["restore", "--target", p.as_str(), "--yes", "--force"],
        vec!["backup", "run", "--from", p.as_str()],
    ] {
        let refused = tend(&args);
        assert_eq!(refused.code, 4, "{args:?}: {refused:?}");
        assert!(refused.stderr.contains("not a replica of the primary"), "{refused:?}");
    }
    assert_eq!(sql(&lab, s.primary, "SELECT @@read_only"), "1");

    // Rejoined: a replica of the new primary, with nothing errant.
    let j = failover(&lab, &["rejoin", &p]);
    assert_eq!(j.code, 0, "{j:?}");
    assert_eq!(record(&j)["errant"], 0);
    assert_primary(&lab, &s, (s.replica, s.primary), true);
    let back = failover(&lab, &["switchover", "--to", &p]);
    assert_eq!(back.code, 0, "{back:?}");
    assert_primary(&lab, &s, (s.primary, s.replica), true);
    // The migration made while it was down reached it through replication.
    assert_eq!(sql(&lab, s.primary, &format!("SELECT COUNT(*) FROM {schema}.t")), "0");
    sql(&lab, s.primary, &format!("DROP DATABASE {schema}"));
    let h = failover(&lab, &["history"]);
    assert!(
        h.events("row")
            .iter()
            .any(|e| e["kind"] == "drill kill-primary" && e["rto_ms"].is_u64()),
        "{h:?}"
    );
    // The drill history (in the lab's store, on the control node) is its owner's alone.
    let inv = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let store = inv
        .lines()
        .find_map(|l| l.trim().strip_prefix("backup_store_dir: "))
        .expect("the lab's store");
    for (path, want) in [("failover", 0o700), ("failover/history.jsonl", 0o600)] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(std::path::Path::new(store).join(path))
            .expect("history")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, want, "{path}");
    }
}

#[test]
fn a_lagging_replica_loses_exactly_what_the_report_says_and_the_old_primary_writes_it_out() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _restore = Restore(&lab, s.primary);
    let (p, r) = (format!("h{}", s.primary), format!("h{}", s.replica));
    let proxy_file = "/etc/nginx/stream.d/upstream-shop_db.conf";
    let before = lab.sh(s.lb, &format!("cat {proxy_file}"));

    // The replica's applier stopped: with a budget of 0 the drill is refused before the kill.
    sql(&lab, s.replica, "STOP SLAVE SQL_THREAD");
    let refused = failover(&lab, &["drill", "--kind", "kill-primary"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("SQL thread is stopped"), "{refused:?}");
    assert_eq!(sql(&lab, s.primary, "SELECT @@read_only"), "0");
    assert_eq!(lab.sh(s.lb, &format!("cat {proxy_file}")), before);
    // A promotion while the primary takes writes is refused too.
    let alive = failover(&lab, &["promote"]);
    assert_eq!(alive.code, 2, "{alive:?}");
    assert!(alive.stderr.contains("still takes writes"), "{alive:?}");

    // Accepted: the writes the replica never applied are lost, and listed.
    let d = failover(&lab, &["drill", "--kind", "kill-primary", "--accept-data-loss"]);
    assert_eq!(d.code, 0, "{d:?}");
    let rec = record(&d);
    assert_eq!(rec["to"], r.as_str());
    let missing: Vec<u64> = rec["rpo_missing"]
        .as_array()
        .unwrap_or_else(|| panic!("{rec}"))
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    assert!(!missing.is_empty(), "{rec}");
    // Exactly: the old primary has them, the new one does not.
    start_server(&lab, s.primary);
    let run = rec["probe"]["run"].as_str().unwrap_or_default().to_string();
    let rows = |i: u32| -> std::collections::BTreeSet<u64> {
        sql(&lab, i, &format!("SELECT seq FROM shop.tend_probe WHERE run = '{run}'"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let lost: Vec<u64> = rows(s.primary).difference(&rows(s.replica)).copied().collect();
    assert_eq!(missing, lost);

    // The old primary holds them as errant transactions: written out as SQL, left alone.
    let dir = common::scratch();
    let file = dir.path().join("errant.sql");
    let file_arg = file.to_str().unwrap_or_default();
    let j = failover(&lab, &["rejoin", &p, "--sql-file", file_arg]);
    assert_eq!(j.code, 2, "{j:?}");
    let rec = record(&j);
    assert_eq!(rec["errant"].as_u64(), Some(missing.len() as u64), "{rec}");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(text.contains("INSERT INTO `shop`.`tend_probe`"), "{text}");
    assert!(slave_status(&lab, s.primary).trim().is_empty());
    // Discarded on the operator's word: it replicates from the new primary, from the point
    // both shared, so it receives every write the new primary took since the promotion.
    let j = failover(&lab, &["rejoin", &p, "--discard-errant", "--sql-file", file_arg]);
    assert_eq!(j.code, 0, "{j:?}");
    assert_primary(&lab, &s, (s.replica, s.primary), true);
    let on_new = rows(s.replica);
    let on_old = rows(s.primary);
    assert!(
        on_new.is_subset(&on_old),
        "writes of the new primary missing on the rejoined server: {:?}",
        on_new.difference(&on_old).collect::<Vec<_>>()
    );
    let back = failover(&lab, &["switchover", "--to", &p]);
    assert_eq!(back.code, 0, "{back:?}");
    assert_primary(&lab, &s, (s.primary, s.replica), true);
}

#[test]
fn a_second_switchover_within_the_cooldown_is_refused_unless_forced() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _restore = Restore(&lab, s.primary);
    let (p, r) = (format!("h{}", s.primary), format!("h{}", s.replica));
    let there = failover_with(&lab, &["switchover", "--to", &r, "--force"]);
    assert_eq!(there.code, 0, "{there:?}");
    let back = failover_with(&lab, &["switchover", "--to", &p]);
    assert_eq!(back.code, 4, "{back:?}");
    assert!(back.stderr.contains("failover_cooldown"), "{back:?}");
    assert_primary(&lab, &s, (s.replica, s.primary), true);
    let forced = failover_with(&lab, &["switchover", "--to", &p, "--force"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_primary(&lab, &s, (s.primary, s.replica), true);
}

/// `tend failover switchover --to TO` in the background, its JSON lines on a pipe.
fn spawn_switchover(lab: &Lab, to: &str) -> std::process::Child {
    common::tend()
        .current_dir(repo())
        .args(["failover", "switchover", "--to", to, "-i", &lab.inventory()])
        .args(["-e", "failover_cooldown=0", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tend")
}

#[test]
fn a_switchover_killed_part_way_is_finished_by_running_it_again() {
    use std::io::BufRead as _;
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _restore = Restore(&lab, s.primary);
    let (mut target, mut other) = (s.replica, s.primary);
    // Killed (SIGKILL) as soon as each step in turn has been reported.
    for after in ["demote", "catch up", "promote", "repoint", "commit"] {
        let to = format!("h{target}");
        let mut child = spawn_switchover(&lab, &to);
        let out = child.stdout.take().expect("stdout");
        let mut seen = false;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let e: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if e["event"] == "step" && e["step"] == after {
                let _ = child.kill();
                seen = true;
                break;
            }
        }
        let _ = child.wait();
        assert!(seen, "the switchover never reported `{after}`");
        if after == "demote" {
            // The dead run's lock is on the balancer, where `tend lock show --db` finds it.
            let show = common::run(&["lock", "show", "--db", "-i", &lab.inventory()]);
            assert_eq!(show.code, 0, "{show:?}");
            assert!(show.stdout.contains("failover switchover"), "{show:?}");
            assert!(show.stdout.contains(&format!("h{}", s.lb)), "{show:?}");
        }
        // `status` says what state each server is in, whatever it is.
        let (st, rows) = status(&lab);
        assert!(rows.len() == 2, "{st:?}");
        let again = failover(&lab, &["switchover", "--to", &to]);
        assert_eq!(again.code, 0, "killed after `{after}`; then: {st:?}\n{again:?}");
        assert_primary(&lab, &s, (target, other), true);
        std::mem::swap(&mut target, &mut other);
    }
}

/// A switchover whose new primary's sshd dies right after each step in turn (tend reaches it
/// no more; its server goes on): tend stops with an error naming the host, `status` still reads
/// both servers, and once sshd is back, running the switchover again finishes it.
#[test]
fn a_switchover_whose_target_loses_sshd_is_finished_by_running_it_again() {
    use std::io::BufRead as _;
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _restore = Restore(&lab, s.primary);
    let (mut target, mut other) = (s.replica, s.primary);
    for after in ["demote", "catch up", "promote"] {
        let to = format!("h{target}");
        let mut child = spawn_switchover(&lab, &to);
        let out = child.stdout.take().expect("stdout");
        let mut lines = Vec::new();
        let mut seen = false;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let e: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if !seen && e["event"] == "step" && e["step"] == after {
                let stop = lab.lab_sh(&["sshd-stop", &target.to_string()]);
                assert_eq!(stop.code, 0, "{stop:?}");
                seen = true;
            }
            lines.push(e);
        }
        let code = child.wait().expect("wait").code();
        let start = lab.lab_sh(&["sshd-start", &target.to_string()]);
        assert_eq!(start.code, 0, "{start:?}");
        assert!(seen, "the switchover never reported `{after}`");
        assert!(
            matches!(code, Some(2 | 3)),
            "sshd stopped after `{after}`: exit {code:?}"
        );
        let errors: Vec<String> = lines
            .iter()
            .filter(|e| e["event"] == "error")
            .map(|e| e.to_string())
            .collect();
        assert!(errors.iter().any(|e| e.contains(&to)), "{errors:?}");
        let (st, rows) = status(&lab);
        assert!(rows.len() == 2, "{st:?}");
        let again = failover(&lab, &["switchover", "--to", &to]);
        assert_eq!(again.code, 0, "sshd stopped after `{after}`; then: {st:?}\n{again:?}");
        assert_primary(&lab, &s, (target, other), true);
        std::mem::swap(&mut target, &mut other);
    }
    // The inventory's primary back for the next test (three switchovers left it a replica).
    if target == s.primary {
        let back = failover(&lab, &["switchover", "--to", &format!("h{}", s.primary)]);
        assert_eq!(back.code, 0, "{back:?}");
    }
}
