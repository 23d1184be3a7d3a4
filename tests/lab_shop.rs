//! The shipped shop stack on the lab's last five hosts: `playbooks/site.yaml` from bare hosts,
//! replication, the load balancer → Tomcat → MariaDB round trip, idempotence, check mode, and
//! the failures an operator must see clearly.

mod common;
use common::{Lab, Run, http_get as get, repo, shop};

fn site(lab: &Lab, dir: &std::path::Path, extra: &[&str]) -> Run {
    let log = dir.join("log");
    let mut args = vec!["run", "playbooks/site.yaml", "-i"];
    let inv = lab.inventory();
    args.push(&inv);
    args.extend(["--format", "json", "--log-dir", log.to_str().unwrap_or_default()]);
    args.extend_from_slice(extra);
    common::run_in(&repo(), &args)
}

#[test]
fn site_provisions_the_shop_from_bare_hosts() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    let r = site(&lab, scratch.path(), &[]);
    assert_eq!(r.code, 0, "{r:?}");

    // Replication is running and carries a row from the primary to the replica.
    let status = lab.sh(s.replica, "mariadb -e 'SHOW SLAVE STATUS\\G'");
    assert!(
        status.contains("Slave_IO_Running: Yes") && status.contains("Slave_SQL_Running: Yes"),
        "{status}"
    );
    let id = std::process::id();
    lab.sh(
        s.primary,
        &format!("mariadb shop -e \"INSERT INTO settings VALUES ('probe{id}', 'replicated')\""),
    );
    let mut seen = String::new();
    for _ in 0..40 {
        seen = lab
            .on_host(
                s.replica,
                &[
                    "mariadb",
                    "-N",
                    "shop",
                    "-e",
                    &format!("SELECT value FROM settings WHERE name='probe{id}'"),
                ],
            )
            .stdout;
        if seen == "replicated\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(seen, "replicated\n");
    lab.sh(
        s.primary,
        &format!("mariadb shop -e \"DELETE FROM settings WHERE name='probe{id}'\""),
    );

    // The load balancer answers from both app servers, each reading the primary's row.
    let lb = format!("http://{}/", lab.address(s.lb));
    let mut apps = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (code, body) = get(&lb);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("greeting: Welcome to the shop"), "{body}");
        assert!(body.contains(&format!("db: h{}", s.primary)), "{body}");
        // Release 1 after provisioning; the deploy tests may have moved it since.
        assert!(body.starts_with("release: "), "{body}");
        if let Some(app) = body.lines().find_map(|l| l.strip_prefix("app: ")) {
            apps.insert(app.to_string());
        }
    }
    let want: std::collections::BTreeSet<String> = s.apps.iter().map(|a| format!("h{a}")).collect();
    assert_eq!(apps, want);

    // A second run changes nothing; neither does --check.
    let again = site(&lab, scratch.path(), &[]);
    assert_eq!((again.code, again.total_changed()), (0, 0), "{again:?}");
    let check = site(&lab, scratch.path(), &["--check"]);
    assert_eq!((check.code, check.total_changed()), (0, 0), "{check:?}");
}

#[test]
fn shop_failures_are_reported_clearly() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    // The stack must be up first (the other test may be running it now: site is idempotent).
    let r = site(&lab, scratch.path(), &[]);
    assert_eq!(r.code, 0, "{r:?}");

    // A Tomcat that cannot start: the failure carries the tail of catalina.out.
    let r = site(
        &lab,
        scratch.path(),
        &["--limit", &format!("h{}", s.apps[0]), "-e", "shop_tomcat_heap=1k"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let f = r.result("Tomcat did not come up", &format!("h{}", s.apps[0]));
    let msg = f["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("did not come up on port 8080; catalina.out ends with:"),
        "{msg}"
    );
    assert!(msg.contains("Too small"), "{msg}");
    // The other app server kept the shop answering; a normal run repairs the first.
    let (code, _) = get(&format!("http://{}/", lab.address(s.lb)));
    assert_eq!(code, 200);
    let r = site(&lab, scratch.path(), &["--limit", &format!("h{}", s.apps[0])]);
    assert_eq!(r.code, 0, "{r:?}");

    // The application with a wrong database password: the page says so, with a 503.
    let ctx = "/etc/tomcat10/context.xml";
    lab.sh(
        s.apps[1],
        &format!("cp {ctx} {ctx}.good && sed -i 's/password=\"[^\"]*\"/password=\"wrong\"/' {ctx}"),
    );
    let restart =
        "CATALINA_HOME=/usr/share/tomcat10 CATALINA_BASE=/var/lib/tomcat10 /usr/share/tomcat10/bin/catalina.sh";
    lab.sh(
        s.apps[1],
        &format!("{restart} stop 15 -force >/dev/null 2>&1; {restart} start >/dev/null 2>&1"),
    );
    let app = format!("http://{}:8080/", lab.address(s.apps[1]));
    let mut answer = (0, String::new());
    for _ in 0..60 {
        answer = get(&app);
        if answer.0 != 0 && answer.0 != 404 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert!(answer.1.contains("Access denied for user 'shop'"), "{}", answer.1);
    // tend puts the right file back and restarts Tomcat.
    let r = site(&lab, scratch.path(), &["--limit", &format!("h{}", s.apps[1])]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.result("database resource (context.xml)", &format!("h{}", s.apps[1]))["status"],
        "changed"
    );
    assert_eq!(get(&app).0, 200);
}
