//! Release deploys on the lab's shop (last five hosts): rolling deploys behind the load balancer
//! with a client counting errors, the health gate and automatic rollback, `tend rollback`,
//! pruning, the deploy lock, and a `tend` killed in the middle of a deploy.

mod common;
use common::{Lab, Run, Shop, http_get as page, provision_shop, repo, run_in, shop};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A war of the sample app whose pages say release `id`.
fn war(dir: &Path, id: &str) -> PathBuf {
    let out = dir.join(format!("shop-{id}.war"));
    let st = Command::new(repo().join("app/build.sh"))
        .arg(id)
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("app/build.sh");
    assert!(st.success());
    out
}

/// A war of the sample app whose pages say release `id`, changed by `change` (given the
/// unpacked tree) before it is packed.
fn war_with(dir: &Path, id: &str, kind: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let stage = dir.join(format!("{kind}-{id}"));
    let st = Command::new("cp")
        .arg("-r")
        .arg(repo().join("app/webapp"))
        .arg(&stage)
        .status()
        .expect("cp");
    assert!(st.success());
    std::fs::write(stage.join("WEB-INF/release.txt"), format!("{id}\n")).expect("release.txt");
    change(&stage);
    let out = dir.join(format!("shop-{id}.war"));
    let st = Command::new("jar")
        .args(["--create", "--file"])
        .arg(&out)
        .args(["--no-manifest", "-C"])
        .arg(&stage)
        .arg(".")
        .status()
        .expect("jar");
    assert!(st.success());
    out
}

/// A war whose health page answers 500 on app host `host` (and is fine elsewhere): the deploy
/// must stop there and switch every host back.
fn broken_war(dir: &Path, id: &str, host: &str) -> PathBuf {
    war_with(dir, id, "broken", |stage| {
        std::fs::write(
            stage.join("health.jsp"),
            format!(
                "<%@ page contentType=\"text/plain\" %><% if (java.net.InetAddress.getLocalHost().getHostName().equals(\"{host}\")) {{ response.setStatus(500); out.println(\"database unreachable\"); }} else {{ out.println(\"ok {id}\"); }} %>\n"
            ),
        )
        .expect("health.jsp");
    })
}

fn deploy(lab: &Lab, war: &Path, id: &str, extra: &[&str]) -> Run {
    let inv = lab.inventory();
    let mut args = vec![
        "deploy",
        "--artifact",
        war.to_str().unwrap_or_default(),
        "--release-id",
        id,
        "-i",
        &inv,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    run_in(&repo(), &args)
}

fn tend_json(lab: &Lab, args: &[&str]) -> Run {
    let inv = lab.inventory();
    let mut all = args.to_vec();
    all.extend(["-i", &inv, "--format", "json"]);
    run_in(&repo(), &all)
}

/// The final `deploy` record of a JSON run.
fn record(r: &Run) -> serde_json::Value {
    r.json_lines()
        .into_iter()
        .rfind(|l| l["event"] == "record")
        .unwrap_or_else(|| panic!("no deploy record: {r:?}"))
}

/// Where `current` points on an app host, read inside the host (not through tend).
fn current(lab: &Lab, i: u32) -> String {
    lab.sh(i, "readlink /srv/shop/current").trim().to_string()
}

/// Every app host serves release `id`, directly and through the load balancer.
fn assert_serving(lab: &Lab, s: &Shop, id: &str) {
    for &a in &s.apps {
        assert_eq!(current(lab, a), format!("releases/{id}"), "h{a}");
        let (code, body) = page(&format!("http://{}:8080/", lab.address(a)));
        assert_eq!(code, 200, "h{a}: {body}");
        assert!(body.starts_with(&format!("release: {id}\n")), "h{a}: {body}");
    }
    for _ in 0..6 {
        let (code, body) = page(&format!("http://{}/", lab.address(s.lb)));
        assert_eq!(code, 200, "{body}");
        assert!(body.starts_with(&format!("release: {id}\n")), "{body}");
    }
    let upstream = lab.sh(s.lb, "cat /etc/nginx/conf.d/upstream-shop_app.conf");
    assert!(!upstream.contains("drained by tend"), "{upstream}");
}

/// A client hitting the load balancer in a loop until dropped: status code and release of
/// every answer.
struct Client {
    child: Child,
    out: PathBuf,
}

impl Client {
    fn start(url: &str, out: PathBuf) -> Self {
        let script = format!(
            "while :; do curl -s -m 10 -w '\\n%{{http_code}}' {url} | awk 'NR == 1 {{ r = $0 }} END {{ print r \" \" $0 }}'; done"
        );
        let child = Command::new("bash")
            .args(["-c", &script])
            .stdout(std::fs::File::create(&out).expect("client log"))
            .spawn()
            .expect("client");
        Client { child, out }
    }

    /// Stops the client; returns (answers, errors, releases seen).
    fn finish(mut self) -> (usize, Vec<String>, std::collections::BTreeSet<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut errors = Vec::new();
        let mut releases = std::collections::BTreeSet::new();
        // The last line may be cut short by the kill.
        for l in &lines[..lines.len().saturating_sub(1)] {
            if !l.ends_with(" 200") {
                errors.push(l.to_string());
            }
            if let Some(r) = l.strip_prefix("release: ").and_then(|r| r.split_whitespace().next()) {
                releases.insert(r.to_string());
            }
        }
        (lines.len().saturating_sub(1), errors, releases)
    }
}

#[test]
fn rolling_deploys_roll_back_on_a_failed_health_gate_and_prune() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    provision_shop(&lab);
    let tag = std::process::id();
    let (r2, r3, r4) = (format!("2-{tag}"), format!("3-{tag}"), format!("4-{tag}"));

    // Release 1: the war the provisioning put on the hosts (same id, same checksum).
    let one = repo().join("app/build/shop-1.war");
    let r = deploy(&lab, &one, "1", &["--batch", "100%"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, "1");

    // Release 2, one host at a time, while a client hits the load balancer.
    lab.sh(s.lb, ": > /var/log/nginx/error.log");
    let client = Client::start(
        &format!("http://{}/", lab.address(s.lb)),
        scratch.path().join("client.log"),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let w2 = war(scratch.path(), &r2);
    let r = deploy(&lab, &w2, &r2, &["--batch", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (answers, errors, releases) = client.finish();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(answers >= 20, "the client got only {answers} answers");
    assert!(
        errors.is_empty(),
        "{} of {answers} answers were errors: {errors:?}",
        errors.len()
    );
    assert!(releases.contains("1") && releases.contains(&r2), "{releases:?}");
    // Drained servers got no traffic: Nginx never failed to reach an app server.
    let nginx_errors = lab.sh(s.lb, "grep -c 'upstream' /var/log/nginx/error.log || true");
    assert_eq!(
        nginx_errors.trim(),
        "0",
        "{}",
        lab.sh(s.lb, "cat /var/log/nginx/error.log")
    );
    let rec = record(&r);
    assert_eq!(rec["outcome"], "deployed");
    assert_eq!(rec["hosts"].as_array().map(Vec::len), Some(s.apps.len()));
    // Each host received the war over its connection.
    let size = std::fs::metadata(&w2).map(|m| m.len()).unwrap_or(u64::MAX);
    for h in rec["hosts"].as_array().into_iter().flatten() {
        assert!(h["traffic"]["bytes_sent"].as_u64() >= Some(size), "{h}");
        assert!(h["traffic"]["channels"].as_u64() > Some(3), "{h}");
    }
    let steps: Vec<String> = r
        .events("step")
        .iter()
        .map(|l| {
            format!(
                "{} {} {}",
                l["host"].as_str().unwrap_or(""),
                l["step"].as_str().unwrap_or(""),
                l["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    let first = format!("h{}", s.apps[0]);
    let pos = |what: &str| {
        steps
            .iter()
            .position(|x| *x == what)
            .unwrap_or_else(|| panic!("{what}: {steps:?}"))
    };
    let lb = format!("h{}", s.lb);
    // One batch at a time: the first host is drained, switched, healthy, restored before the second moves.
    assert!(pos(&format!("{first} switch changed")) < pos(&format!("{first} health ok")));
    assert!(pos(&format!("{first} health ok")) < pos(&format!("h{} switch changed", s.apps[1])));
    assert!(steps.iter().filter(|x| **x == format!("{lb} drain changed")).count() == s.apps.len());
    assert_serving(&lab, &s, &r2);
    // The deploy is logged on each host.
    let log = lab.sh(s.apps[0], "tail -n 1 /srv/shop/.tend/deploys.log");
    let entry: serde_json::Value = serde_json::from_str(log.trim()).expect("log line");
    assert_eq!(
        (entry["release"].as_str(), entry["outcome"].as_str()),
        (Some(r2.as_str()), Some("deployed"))
    );
    assert!(entry["sha256"].as_str().is_some_and(|x| x.len() == 64));

    // Release 3 passes on the first host and fails its health gate on the second: the second
    // host goes back to release 2, and so does the first (no --keep-partial).
    let last = format!("h{}", s.apps[s.apps.len() - 1]);
    let r = deploy(
        &lab,
        &broken_war(scratch.path(), &r3, &last),
        &r3,
        &["--batch", "1", "-e", "deploy_health_timeout=60"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let failure = r.events("error").into_iter().next().unwrap_or_else(|| panic!("{r:?}"));
    let msg = failure["message"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("{last}: health check http://")), "{msg}");
    assert!(
        msg.contains("status 500 (expected 200), body: database unreachable"),
        "{msg}"
    );
    let rec = record(&r);
    assert_eq!(rec["outcome"], "failed");
    for h in rec["hosts"].as_array().into_iter().flatten() {
        assert_eq!(
            (h["after"].as_str(), h["outcome"].as_str()),
            (Some(r2.as_str()), Some("rolled_back")),
            "{h}"
        );
    }
    let switched: Vec<String> = r
        .events("step")
        .iter()
        .filter(|l| l["host"] == first.as_str() && l["step"] == "switch" && l["status"] == "changed")
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(switched, vec![format!("{r2} → {r3}"), format!("back to {r2}")]);
    assert_serving(&lab, &s, &r2);

    // `tend rollback`: back to the release that served before 2, i.e. 1.
    let r = tend_json(&lab, &["rollback"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(record(&r)["outcome"], "rolled_back");
    assert_serving(&lab, &s, "1");

    // keep_releases: with 2 kept, the newest two stay plus current and previous.
    // --check tells what would happen and changes nothing.
    let w4 = war(scratch.path(), &r4);
    let r = deploy(&lab, &w4, &r4, &["--check"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(record(&r)["outcome"], "checked");
    for &a in &s.apps {
        let there = lab.on_host(a, &["test", "-e", &format!("/srv/shop/releases/{r4}")]);
        assert_ne!(there.code, 0, "--check staged release {r4} on h{a}");
    }
    assert_serving(&lab, &s, "1");
    let settings = r#"{"deploy_keep_releases": 2, "deploy_shared_dirs": ["uploads"]}"#;
    let r = deploy(&lab, &w4, &r4, &["--batch", "50%", "-e", settings]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, &r4);
    for &a in &s.apps {
        let link = lab.sh(a, &format!("readlink /srv/shop/releases/{r4}/uploads"));
        assert_eq!(link.trim(), "/srv/shop/shared/uploads", "h{a}");
    }
    for &a in &s.apps {
        let kept = lab.sh(a, "ls /srv/shop/releases");
        let kept: Vec<&str> = kept.split_whitespace().collect();
        assert!(
            kept.contains(&r4.as_str()) && kept.contains(&"1") && kept.contains(&r3.as_str()),
            "{kept:?}"
        );
        assert!(!kept.contains(&r2.as_str()), "release {r2} should be pruned: {kept:?}");
        assert_eq!(kept.len(), 3, "{kept:?}");
    }
    let r = tend_json(&lab, &["releases"]);
    assert_eq!(r.code, 0, "{r:?}");
    for l in r.events("row") {
        assert_eq!(l["current"], r4.as_str(), "{l}");
        assert_eq!(l["verified"], true, "{l}");
        assert_eq!(l["upstream"], "up", "{l}");
    }

    // Leave the shop on release 1 for the other shop tests.
    let r = tend_json(&lab, &["rollback", "--to", "1", "--batch", "100%"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, "1");
}

/// Starts `tend deploy` in the background with JSON output; returns the child and a reader.
fn spawn_deploy(lab: &Lab, war: &Path, id: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = common::tend()
        .current_dir(repo())
        .args(["deploy", "--artifact"])
        .arg(war)
        .args([
            "--release-id",
            id,
            "--batch",
            "1",
            "--format",
            "json",
            "-i",
            &lab.inventory(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tend");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    (child, out)
}

/// Reads JSON lines until one matches; panics if the stream ends first.
fn wait_for_line(out: &mut BufReader<std::process::ChildStdout>, want: impl Fn(&serde_json::Value) -> bool) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read");
        assert!(n > 0, "tend ended before the expected step");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && want(&v)
        {
            return;
        }
    }
}

#[test]
fn a_second_deploy_is_refused_while_the_first_holds_the_lock() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    provision_shop(&lab);
    let id = format!("locked-{}", std::process::id());
    let w = war(scratch.path(), &id);
    let (mut first, mut out) = spawn_deploy(&lab, &w, &id);
    wait_for_line(&mut out, |v| {
        v["event"] == "step" && v["step"] == "switch" && v["status"] == "changed"
    });
    let pid = first.id();

    let second = deploy(&lab, &w, &id, &[]);
    assert_eq!(second.code, 5, "{second:?}");
    assert!(second.stderr.contains("lock `app` is held by"), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("(pid {pid}, `tend deploy`: release {id})")),
        "{}",
        second.stderr
    );
    assert!(
        second.events("record").is_empty() && second.events("error").len() == 1,
        "{}",
        second.stdout
    );
    let show = common::run(&["lock", "show", "-i", &lab.inventory()]);
    assert!(show.stdout.contains(&format!("pid {pid}")), "{show:?}");
    // The lock's files keep other local users out.
    assert_eq!(
        lab.sh(
            s.apps[0],
            "stat -c '%a %U' /var/lib/tend/locks /var/lib/tend/locks/app.lock"
        ),
        "700 root\n600 root\n"
    );

    // Drain the first deploy's output so it never blocks on a full pipe.
    let drain = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let status = first.wait().expect("wait");
    let _ = drain.join();
    assert!(status.success(), "{status:?}");
    assert_serving(&lab, &s, &id);
    let show = common::run(&["lock", "show", "-i", &lab.inventory()]);
    assert!(show.stdout.contains("is free"), "{show:?}");

    // A lock from another control node (not expired) blocks until broken by hand.
    let lock_host = s.apps[0];
    lab.sh(
        lock_host,
        "mkdir -p /var/lib/tend/locks && printf 'token=abc\\nuser=ops\\ncontrol_host=ci-runner-7\\npid=4242\\nboot_id=x\\ncommand=deploy\\nreason=release 9\\nstarted=%s\\nexpires=%s\\n' $(date +%s) $(( $(date +%s) + 600 )) > /var/lib/tend/locks/app.lock",
    );
    let r = tend_json(&lab, &["rollback", "--to", "1"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr
            .contains("held by ops@ci-runner-7 (pid 4242, `tend deploy`: release 9)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("tend lock break --group app"), "{}", r.stderr);
    assert_serving(&lab, &s, &id);
    let broke = common::run(&["lock", "break", "-i", &lab.inventory()]);
    assert_eq!(broke.code, 0, "{broke:?}");
    assert!(
        broke.stdout.contains("broke lock `app`, held by ops@ci-runner-7"),
        "{broke:?}"
    );
    let r = tend_json(&lab, &["rollback", "--to", "1", "--batch", "100%"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, "1");
}

/// Every app host's `current` is a complete release (its manifest exists and its files say
/// which release it is), and the shop answers through the load balancer.
fn assert_complete_releases_answering(lab: &Lab, s: &Shop) {
    for &a in &s.apps {
        let cur = current(lab, a);
        let rel = cur
            .strip_prefix("releases/")
            .unwrap_or_else(|| panic!("h{a}: current -> {cur}"));
        lab.sh(a, &format!("test -f /srv/shop/.tend/manifests/{rel}"));
        let inside = lab.sh(a, &format!("cat /srv/shop/releases/{rel}/WEB-INF/release.txt"));
        assert_eq!(inside.trim(), rel, "h{a}");
    }
    let (code, body) = page(&format!("http://{}/", lab.address(s.lb)));
    assert_eq!(code, 200, "{body}");
}

#[test]
fn killing_tend_mid_deploy_leaves_complete_releases_and_the_next_deploy_repairs() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    provision_shop(&lab);
    let id = format!("killed-{}", std::process::id());
    let w = war(scratch.path(), &id);
    let (mut child, mut out) = spawn_deploy(&lab, &w, &id);
    // Killed right after the first host switched: it is drained and not yet verified.
    wait_for_line(&mut out, |v| {
        v["event"] == "step" && v["step"] == "switch" && v["status"] == "changed"
    });
    child.kill().expect("kill");
    let _ = child.wait();

    assert_complete_releases_answering(&lab, &s);

    // The same deploy again takes over the dead run's lock and finishes the job.
    let r = deploy(&lab, &w, &id, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.events("warning")
            .iter()
            .any(|l| l["event"] == "warning" && l["message"].as_str().unwrap_or("").contains("took over a stale lock")),
        "{}",
        r.stdout
    );
    assert_serving(&lab, &s, &id);
    let r = tend_json(&lab, &["rollback", "--to", "1", "--batch", "100%"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, "1");
}

/// The next batch's host loses its sshd after the first host switched: tend stops with the host
/// named, every app host stays on a complete release, the shop answers, and once sshd is back
/// the same deploy finishes the job.
#[test]
fn a_deploy_whose_next_host_loses_sshd_leaves_complete_releases_and_is_finished_again() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    provision_shop(&lab);
    let id = format!("nossh-{}", std::process::id());
    let w = war(scratch.path(), &id);
    let (mut child, mut out) = spawn_deploy(&lab, &w, &id);
    wait_for_line(&mut out, |v| {
        v["event"] == "step" && v["step"] == "switch" && v["status"] == "changed"
    });
    let last = *s.apps.last().expect("app hosts");
    let stop = lab.lab_sh(&["sshd-stop", &last.to_string()]);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let code = child.wait().expect("wait").code();
    let start = lab.lab_sh(&["sshd-start", &last.to_string()]);
    assert_eq!(stop.code, 0, "{stop:?}");
    assert_eq!(start.code, 0, "{start:?}");
    assert!(matches!(code, Some(2 | 3)), "exit {code:?}\n{rest}");
    assert!(
        rest.lines()
            .any(|l| l.contains("\"event\":\"error\"") && l.contains(&format!("h{last}"))),
        "{rest}"
    );
    assert_complete_releases_answering(&lab, &s);

    let r = deploy(&lab, &w, &id, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, &id);
    let r = tend_json(&lab, &["rollback", "--to", "1", "--batch", "100%"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, "1");
    // Its release goes, so the other tests' releases stay within the hosts' keep count.
    for &a in &s.apps {
        lab.sh(
            a,
            &format!("rm -rf /srv/shop/releases/{id} /srv/shop/.tend/manifests/{id}"),
        );
    }
}

#[test]
fn deploys_with_migrations_keep_the_schema_version_and_guard_rollbacks() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    provision_shop(&lab);
    let tag = std::process::id();
    let db = format!("migdeploy_{tag}");
    let dir = scratch.path().join("migrations");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("V1__visits.sql"),
        "CREATE TABLE visits (id INT PRIMARY KEY);\n",
    )
    .expect("V1");
    let target = format!("migrate_database={db}");
    let dir_arg = dir.to_string_lossy().into_owned();
    let (m1, m2) = (format!("m1-{tag}"), format!("m2-{tag}"));

    // Release m1 with schema version 1: the migration runs before any host is switched.
    let w1 = war(scratch.path(), &m1);
    let r = deploy(
        &lab,
        &w1,
        &m1,
        &["--batch", "100%", "--migrate", &dir_arg, "-e", &target],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(record(&r)["schema_version"], "1", "{r:?}");
    let steps: Vec<String> = r
        .events("step")
        .iter()
        .map(|e| e["step"].as_str().unwrap_or_default().to_string())
        .collect();
    let migrated = steps.iter().position(|st| st == "migrate").expect("a migrate step");
    let switched = steps.iter().position(|st| st == "switch").expect("a switch step");
    assert!(migrated < switched, "{steps:?}");
    let history = lab.sh(
        s.primary,
        &format!("mariadb -N -e 'SELECT version FROM {db}.flyway_schema_history WHERE type = \"SQL\"'"),
    );
    assert_eq!(history.trim(), "1");
    for &a in &s.apps {
        let manifest = lab.sh(a, &format!("cat /srv/shop/.tend/manifests/{m1}"));
        assert!(manifest.contains("schema=1\n"), "h{a}: {manifest}");
    }

    // Release m2 with schema version 2.
    std::fs::write(
        dir.join("V2__visits_at.sql"),
        "ALTER TABLE visits ADD COLUMN at DATETIME;\n",
    )
    .expect("V2");
    let w2 = war(scratch.path(), &m2);
    let r = deploy(
        &lab,
        &w2,
        &m2,
        &["--batch", "100%", "--migrate", &dir_arg, "-e", &target],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(record(&r)["schema_version"], "2");

    // Back to m1: refused, the hosts stay on m2; with --force it goes.
    let r = tend_json(&lab, &["rollback", "--batch", "100%"]);
    assert_eq!(r.code, 2, "{r:?}");
    let msg: Vec<String> = r
        .events("error")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        msg.iter()
            .any(|m| m.contains(&format!("release {m1} was deployed with schema version 1")) && m.contains("with 2")),
        "{r:?}"
    );
    assert_serving(&lab, &s, &m2);
    let r = tend_json(&lab, &["rollback", "--batch", "100%", "--force"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, &m1);
    lab.sh(s.primary, &format!("mariadb -e 'DROP DATABASE {db}'"));
}

/// A war whose front page takes `ms` milliseconds to answer; its health page is as quick as
/// ever, so only a load gate can catch it.
fn slow_war(dir: &Path, id: &str, ms: u32) -> PathBuf {
    war_with(dir, id, "slow", |stage| {
        let index = std::fs::read_to_string(stage.join("index.jsp")).expect("index.jsp");
        let slow = index.replacen("%><%", &format!("%><% Thread.sleep({ms});"), 1);
        assert_ne!(slow, index);
        std::fs::write(stage.join("index.jsp"), slow).expect("index.jsp");
    })
}

/// `deploy --load-gate`: a release whose front page answers in 400 ms passes its health gate
/// on the first host, then breaks `p95 < 200ms` under 10 journeys a second and is switched
/// back, the second host never touched; a quick release passes the same gate and goes out.
#[test]
fn a_load_gate_rolls_back_a_release_that_is_slow_under_load() {
    let lab = Lab::get();
    let s = shop(&lab);
    let scratch = common::scratch();
    provision_shop(&lab);
    let tag = std::process::id();
    let (quick, slow) = (format!("gq-{tag}"), format!("gs-{tag}"));
    let gate = scratch.path().join("gate.yaml");
    std::fs::write(
        &gate,
        format!(
            "journeys:\n  - steps:\n      - {{name: front, path: \"/?gate-{tag}\"}}\nthresholds: [\"errors < 1%\"]\n"
        ),
    )
    .expect("gate");
    let gate = gate.to_str().unwrap_or_default().to_string();
    let flags = [
        "--batch",
        "1",
        "--load-gate",
        &gate,
        "--load-gate-rate",
        "10/s",
        "--load-gate-duration",
        "5s",
        "--load-gate-threshold",
        "p95 < 200ms",
    ];

    let w = war(scratch.path(), &quick);
    let r = deploy(&lab, &w, &quick, &flags);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, &quick);
    let gated: Vec<serde_json::Value> = r
        .json_lines()
        .into_iter()
        .filter(|l| l["event"] == "step" && l["step"] == "load-gate")
        .collect();
    assert_eq!(gated.len(), 1, "only the first batch is gated: {gated:?}");
    assert_eq!(gated[0]["status"], "ok", "{gated:?}");
    // The gate's requests (its warm-up's and the 50 measured) went to the first batch's host
    // itself (its Tomcat logged them), none to the other host.
    let message = gated[0]["message"].as_str().unwrap_or_default().to_string();
    let warm: u64 = message
        .split(": ")
        .nth(1)
        .and_then(|m| m.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no warm-up count in {message}"));
    assert!(warm > 0, "{message}");
    let logged = |i: u32| -> String {
        lab.sh(
            i,
            &format!("cat /var/log/tomcat10/localhost_access_log.*.txt | grep -c 'GET /?gate-{tag} ' || true"),
        )
        .trim()
        .to_string()
    };
    assert_eq!(logged(s.apps[0]), (warm + 50).to_string());
    assert_eq!(logged(s.apps[1]), "0");
    assert!(
        gated[0]["message"].as_str().is_some_and(|m| m
            .contains(" warm-up requests, then 50 requests at 10/s for 5s, 0 errors")
            && m.contains("p95 < 200ms held")),
        "{gated:?}"
    );

    let w = slow_war(scratch.path(), &slow, 400);
    let r = deploy(&lab, &w, &slow, &flags);
    assert_eq!(r.code, 2, "{r:?}");
    let gated: Vec<serde_json::Value> = r
        .json_lines()
        .into_iter()
        .filter(|l| l["event"] == "step" && l["step"] == "load-gate")
        .collect();
    assert_eq!(gated.len(), 1, "{gated:?}");
    assert_eq!(gated[0]["status"], "failed", "{gated:?}");
    assert!(
        gated[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("p95 < 200ms broke (measured ")),
        "{gated:?}"
    );
    assert!(
        r.stdout.contains("load gate failed: switching this batch back"),
        "{r:?}"
    );
    let rec = record(&r);
    assert!(
        rec["error"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("h{}: load gate: ", s.apps[0]))
                && m.contains("every switched host was switched back")),
        "{rec}"
    );
    assert_eq!(rec["hosts"][0]["outcome"], "rolled_back", "{rec}");
    // Every host serves the quick release again, through the balancer too.
    assert_serving(&lab, &s, &quick);

    // Release 1 back and this test's two releases gone, as the other deploy tests expect to
    // find release 1 kept (each deploy keeps only the newest few).
    let one = repo().join("app/build/shop-1.war");
    let r = deploy(&lab, &one, "1", &["--batch", "100%"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_serving(&lab, &s, "1");
    for &a in &s.apps {
        lab.sh(
            a,
            &format!(
                "cd /srv/shop && rm -rf releases/{quick} releases/{slow} .tend/manifests/{quick} .tend/manifests/{slow}"
            ),
        );
    }
}
