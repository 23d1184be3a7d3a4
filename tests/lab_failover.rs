//! `tend failover` against the lab shop: a real MariaDB primary (h8) and replica (h9) behind
//! the balancer's database proxy (h5), the Tomcat apps (h6, h7) writing through it. Every
//! test leaves the cluster as it found it: h8 the primary.

mod common;
use common::{Lab, Run, Shop, http_get, provision_shop, repo, run_in};

fn failover(lab: &Lab, args: &[&str]) -> Run {
    let inv = lab.inventory();
    let mut all = vec!["failover"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-i", &inv, "--format", "json"]);
    run_in(&repo(), &all)
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

/// Puts h8 back as the primary if a test left the cluster switched (a failed assertion).
struct Restore<'a>(&'a Lab, u32);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let (_, rows) = status(self.0);
        let primary = format!("h{}", self.1);
        if rows.get(&primary).is_some_and(|r| r["role"] != "primary") {
            let _ = failover(self.0, &["switchover", "--to", &primary]);
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
    let d = failover(&lab, &["drill", "--kind", "switchover"]);
    assert_eq!(d.code, 0, "{d:?}");
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
