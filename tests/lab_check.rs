//! `tend check` against the lab shop: all ok on a healthy shop, and warning and critical when
//! the lab is made to misbehave (a filling disk, a stopped replica applier, a stopped Tomcat),
//! with the exit codes monitoring reads and the Prometheus textfile.

mod common;
use common::{Lab, Run, provision_shop, repo, run_in};

/// Thresholds the shared lab machine cannot trip by being busy (other tests' load and 5xx).
const CALM: &str = r#"{"check_load_per_cpu_warn": 1000, "check_load_per_cpu_crit": 1000, "check_error_rate_warn": 101, "check_error_rate_crit": 101}"#;

/// This test's backup store on the control node: `-e backup_store_dir=...`.
fn backup_store() -> String {
    format!("backup_store_dir={}", backup_dir().display())
}

fn backup_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tend-check-backups-{}", std::process::id()))
}

fn check(lab: &Lab, pattern: &str, extra: &[&str]) -> Run {
    let inv = lab.inventory();
    let store = backup_store();
    let mut args = vec![
        "check", pattern, "-i", &inv, "-e", CALM, "-e", &store, "--format", "json",
    ];
    args.extend_from_slice(extra);
    run_in(&repo(), &args)
}

/// (host, check) -> level of the `row`s.
fn levels(r: &Run) -> Vec<(String, String, String)> {
    r.events("row")
        .iter()
        .map(|row| {
            let f = |k: &str| row[k].as_str().unwrap_or_default().to_string();
            (f("host"), f("check"), f("level"))
        })
        .collect()
}

fn level(r: &Run, host: u32, check: &str) -> String {
    levels(r)
        .into_iter()
        .find(|(h, c, _)| *h == format!("h{host}") && c == check)
        .map(|(_, _, l)| l)
        .unwrap_or_else(|| panic!("no {check} on h{host}: {r:?}"))
}

/// Puts Tomcat and the replica's applier back whatever happens.
struct Heal<'a>(&'a Lab, u32);

impl Drop for Heal<'_> {
    fn drop(&mut self) {
        let _ = self.0.on_host(self.1, &["mariadb", "-e", "START SLAVE SQL_THREAD"]);
        let _ = std::fs::remove_dir_all(backup_dir());
        provision_shop(self.0);
    }
}

#[test]
fn check_turns_warning_and_critical_when_the_shop_misbehaves() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let _heal = Heal(&lab, s.replica);
    let shop = "lb:app:db";

    // A verified backup, as the shop's cron makes every night: the primary's backup_age.
    let inv = lab.inventory();
    let store = backup_store();
    let none = check(&lab, &format!("h{}", s.primary), &[]);
    assert_eq!(level(&none, s.primary, "backup_age"), "critical", "no backup yet");
    for step in ["run", "binlogs", "verify"] {
        let r = run_in(&repo(), &["backup", step, "-i", &inv, "-e", &store]);
        assert_eq!(r.code, 0, "{r:?}");
    }

    // Healthy: every check of every shop host ok, exit 0, and the Prometheus file says so.
    let scratch = common::scratch();
    let prom = scratch.path().join("tend.prom");
    let r = check(&lab, shop, &["--prometheus", prom.to_str().unwrap_or_default()]);
    assert_eq!(r.code, 0, "{r:?}");
    let all = levels(&r);
    assert!(all.len() >= 5 * 7 && all.iter().all(|(_, _, l)| l == "ok"), "{all:?}");
    for (i, c) in [
        (s.lb, "service:nginx"),
        (s.lb, "http:http://127.0.0.1:80/"),
        (s.apps[0], "service:java"),
        (s.apps[1], "port:8080"),
        (s.primary, "service:mariadbd"),
        (s.replica, "replication"),
        (s.primary, "backup_age"),
    ] {
        assert_eq!(level(&r, i, c), "ok");
    }
    let text = std::fs::read_to_string(&prom).expect("prometheus file");
    assert!(
        text.contains(&format!(
            "tend_check_level{{host=\"h{}\",check=\"replication\"}} 0",
            s.replica
        )),
        "{text}"
    );

    // A disk filling up on the balancer: warning past 80 %, critical past 90 %.
    let mnt = format!("/mnt/tend-check-{}", std::process::id());
    lab.sh(
        s.lb,
        &format!("mkdir -p {mnt} && mount -t tmpfs -o size=1m tmpfs {mnt}"),
    );
    let paths = format!("{{\"check_disk_paths\": [\"/\", \"{mnt}\"]}}");
    let lb = format!("h{}", s.lb);
    lab.sh(s.lb, &format!("head -c 870k /dev/zero > {mnt}/fill"));
    let warn = check(&lab, &lb, &["-e", &paths]);
    lab.sh(s.lb, &format!("head -c 990k /dev/zero > {mnt}/fill"));
    let crit = check(&lab, &lb, &["-e", &paths]);
    lab.sh(s.lb, &format!("umount {mnt} && rmdir {mnt}"));
    assert_eq!(warn.code, 6, "{warn:?}");
    assert_eq!(level(&warn, s.lb, &format!("disk:{mnt}")), "warning");
    assert_eq!(crit.code, 7, "{crit:?}");
    assert_eq!(level(&crit, s.lb, &format!("disk:{mnt}")), "critical");

    // A certificate served on the balancer that ends in 20 days (warning), then in 3
    // (critical).
    for (days, want, code) in [(20, "warning", 6), (3, "critical", 7)] {
        let d = format!("/tmp/tend-tls-{}", std::process::id());
        lab.sh(
            s.lb,
            &format!(
                "mkdir -p {d} && openssl req -x509 -newkey rsa:2048 -nodes -keyout {d}/k.pem -out {d}/c.pem -days {days} -subj /CN=shop.test 2>/dev/null && \
                 (setsid openssl s_server -quiet -accept 8443 -cert {d}/c.pem -key {d}/k.pem -www >/dev/null 2>&1 < /dev/null &) && \
                 for i in $(seq 50); do ss -ltn | grep -q ':8443 ' && exit 0; sleep 0.1; done; exit 1"
            ),
        );
        let tls = r#"{"check_tls": ["127.0.0.1:8443"]}"#;
        let r = check(&lab, &lb, &["-e", tls]);
        lab.sh(
            s.lb,
            &format!("pkill -f 'openssl [s]_server -quiet -accept 8443'; rm -rf {d}"),
        );
        assert_eq!(r.code, code, "{r:?}");
        assert_eq!(level(&r, s.lb, "tls:127.0.0.1:8443"), want, "{r:?}");
    }

    // The replica's SQL thread stopped: critical.
    lab.sql(s.replica, "STOP SLAVE SQL_THREAD");
    let r = check(&lab, "db", &[]);
    lab.sql(s.replica, "START SLAVE SQL_THREAD");
    assert_eq!(r.code, 7, "{r:?}");
    assert_eq!(level(&r, s.replica, "replication"), "critical");
    assert_eq!(level(&r, s.primary, "service:mariadbd"), "ok");

    // Tomcat stopped on one app host: its service, port and page critical, the other's ok.
    let down = s.apps[1];
    lab.sh(
        down,
        "CATALINA_HOME=/usr/share/tomcat10 CATALINA_BASE=/var/lib/tomcat10 /usr/share/tomcat10/bin/catalina.sh stop 15 -force >/dev/null 2>&1",
    );
    let r = check(&lab, "app", &[]);
    assert_eq!(r.code, 7, "{r:?}");
    assert_eq!(level(&r, down, "service:java"), "critical");
    assert_eq!(level(&r, down, "port:8080"), "critical");
    assert_eq!(level(&r, down, "http:http://127.0.0.1:8080/health.jsp"), "critical");
    assert_eq!(level(&r, s.apps[0], "service:java"), "ok");
    // Provisioning starts it again; then all is well.
    provision_shop(&lab);
    let r = check(&lab, shop, &[]);
    assert_eq!(r.code, 0, "{r:?}");
}
