//! Inventory loading, patterns and error messages, through the real binary (no hosts needed).

mod common;
use common::{repo, run, run_in, scratch};
use serde_json::json;

fn shop() -> String {
    repo().join("tests/fixtures/shop").display().to_string()
}

#[test]
fn missing_inventory_says_how_to_pass_one() {
    let dir = scratch();
    let r = run_in(dir.path(), &["inventory", "--list"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(
        r.stderr,
        "error: no inventory: `inventory.yaml` not found in the current directory\nhint: pass one with `-i FILE|DIR` or set `TEND_INVENTORY`\n"
    );
    let r = run_in(dir.path(), &["inventory", "-i", "nope.yaml"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.starts_with("error: nope.yaml: cannot read inventory: "),
        "{r:?}"
    );
}

#[test]
fn variables_follow_the_documented_precedence() {
    let host = |name: &str| -> serde_json::Value {
        let r = run(&["inventory", "-i", &shop(), "--host", name]);
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str(&r.stdout).expect("json")
    };
    // group_vars/ files beat inventory group vars; deeper groups beat shallower ones.
    assert_eq!(host("ctl")["who"], "all-file");
    assert_eq!(host("ctl")["env"], "production");
    assert_eq!(host("app1")["who"], "app-file");
    assert_eq!(host("app1")["http_port"], 8080);
    // host_vars/ beat everything in the inventory.
    assert_eq!(host("app2")["who"], "app2-file");
    // Host vars written in the inventory beat every group var.
    assert_eq!(host("db1")["who"], "db1-inline");
    assert_eq!(host("db1")["backup"], true);
    assert_eq!(host("db2")["who"], "db-file");
}

#[test]
fn list_and_graph_look_like_ansible_inventory() {
    let r = run(&["inventory", "-i", &shop(), "--graph"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "@all:
  |--@app:
  |  |--app1
  |  |--app2
  |--@db:
  |  |--@db_primary:
  |  |  |--db1
  |  |--@db_replica:
  |  |  |--db2
  |--@lb:
  |  |--lb1
  |--@ungrouped:
  |  |--ctl
"
    );
    let r = run(&["inventory", "-i", &shop(), "--list"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["db"]["children"], json!(["db_primary", "db_replica"]));
    assert_eq!(v["app"]["hosts"], json!(["app1", "app2"]));
    assert_eq!(v["ungrouped"]["hosts"], json!(["ctl"]));
    assert_eq!(v["_meta"]["hostvars"]["db1"]["who"], "db1-inline");
    let r = run(&["inventory", "-i", &shop(), "--host", "db3"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (4, "error: no host `db3` in the inventory\nhint: did you mean `db1`?\n")
    );
}

fn hosts_of(pattern: &str, limit: Option<&str>) -> Result<Vec<String>, String> {
    let mut args = vec![
        "exec",
        pattern,
        "-i",
        &*Box::leak(shop().into_boxed_str()),
        "--format",
        "json",
    ];
    if let Some(l) = limit {
        args.extend(["--limit", l]);
    }
    args.extend(["--", "true"]);
    let r = run(&args);
    if r.code != 0 {
        return Err(r.stderr);
    }
    let mut hosts: Vec<String> = r
        .events("result")
        .iter()
        .map(|v| v["host"].as_str().unwrap_or_default().to_string())
        .collect();
    hosts.sort();
    Ok(hosts)
}

#[test]
fn host_patterns_select_like_ansible() {
    let ok = |p: &str, l: Option<&str>| hosts_of(p, l).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(ok("all", None).len(), 6);
    assert_eq!(ok("db", None), ["db1", "db2"]);
    assert_eq!(ok("app*", None), ["app1", "app2"]);
    assert_eq!(ok("db:lb", None), ["db1", "db2", "lb1"]);
    assert_eq!(ok("db,lb1", None), ["db1", "db2", "lb1"]);
    assert_eq!(ok("all:!db", None), ["app1", "app2", "ctl", "lb1"]);
    assert_eq!(ok("db:&db_replica", None), ["db2"]);
    assert_eq!(ok("!db:app", None), ["app1", "app2"]);
    assert_eq!(ok("~(app|lb)\\d", None), ["app1", "app2", "lb1"]);
    assert_eq!(ok("app[1]", None), ["app2"]);
    assert_eq!(ok("all", Some("db_primary")), ["db1"]);
    assert_eq!(ok("db_*", None), ["db1", "db2"]);
}

#[test]
fn patterns_that_match_nothing_are_errors_with_hints() {
    let err = |p: &str, l: Option<&str>| hosts_of(p, l).expect_err("should fail");
    assert_eq!(
        err("dbb", None),
        "error: host pattern `dbb`: `dbb` matches no host\nhint: did you mean `db`?\n"
    );
    assert_eq!(
        err("app:&db", None),
        "error: host pattern `app:&db` matches no host\nhint: its intersections and exclusions leave nothing; check with `tend inventory --graph`\n"
    );
    assert_eq!(
        err("app", Some("db")),
        "error: no host matches pattern `app` with `--limit db`\nhint: the limit selects hosts outside the pattern; check both with `tend inventory --graph`\n"
    );
    assert!(
        err("app[7]", None)
            .starts_with("error: host pattern `app[7]`: subscript `[7]` does not fit group `app` of 2 hosts")
    );
    assert!(err("app:", None).starts_with("error: empty term in host pattern `app:`"));
}

#[test]
fn local_hosts_run_commands_with_exit_codes() {
    let r = run(&[
        "exec",
        "app",
        "-i",
        &shop(),
        "--",
        "test \"$(hostname)\" = \"$(cat /proc/sys/kernel/hostname)\"",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&["exec", "app:lb", "-i", &shop(), "--format", "json", "--", "exit 7"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.events("result").len(), 3);
    assert!(
        r.events("result")
            .iter()
            .all(|v| v["rc"] == 7 && v["status"] == "failed")
    );
}

#[test]
fn bad_flags_exit_4_and_help_exits_0() {
    let r = run(&["exec", "all", "-i", &shop(), "--forks", "0", "--", "true"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("invalid value '0' for '--forks <N>'"), "{r:?}");
    let r = run(&["exec", "all", "-i", &shop()]);
    assert_eq!(r.code, 4, "{r:?}");
    let r = run(&["upload", "all", "/etc/hostname", "relative/path", "-i", &shop()]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (4, "error: destination `relative/path` must be an absolute path\n")
    );
    let r = run(&[
        "upload",
        "all",
        "/etc/hostname",
        "/tmp/x",
        "--mode",
        "999",
        "-i",
        &shop(),
    ]);
    assert_eq!(r.code, 4, "{r:?}");
    for cmd in [
        &["--help"][..],
        &["exec", "--help"],
        &["upload", "--help"],
        &["inventory", "--help"],
        &["--version"],
    ] {
        let r = run(cmd);
        assert_eq!(r.code, 0, "{cmd:?}: {r:?}");
        assert!(!r.stdout.is_empty());
    }
    // Ansible's flag names.
    let help = run(&["run", "--help"]).stdout;
    for flag in [
        "-b, --become",
        "--become-user",
        "-e, --extra-vars",
        "-C, --check",
        "-D, --diff",
        "--start-at-task",
        "-l, --limit",
    ] {
        assert!(help.contains(flag), "missing {flag} in:\n{help}");
    }
}

#[test]
fn interrupt_lets_running_commands_finish_and_starts_no_new_host() {
    let mut child = common::tend()
        .args([
            "exec",
            "all",
            "-i",
            &shop(),
            "--forks",
            "1",
            "--format",
            "json",
            "--",
            "sleep 1; echo done",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tend");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let _ = child.stdin.take();
    let r = common::Run::of(child.wait_with_output().expect("wait"));
    assert_eq!(r.code, 99, "{r:?}");
    let lines = r.events("result");
    assert_eq!(lines.len(), 6, "{r:?}");
    // The host that was running finished its command; the rest never started.
    assert_eq!(
        lines
            .iter()
            .filter(|v| v["status"] == "ok" && v["stdout"] == "done\n")
            .count(),
        1,
        "{r:?}"
    );
    assert_eq!(
        lines.iter().filter(|v| v["status"] == "interrupted").count(),
        5,
        "{r:?}"
    );
    assert!(r.stderr.contains("5 not started (interrupted)"), "{r:?}");
}

#[test]
fn interrupting_a_playbook_exits_99_after_the_running_task() {
    let dir = scratch();
    let pb = dir.path().join("slow.yaml");
    std::fs::write(
        &pb,
        "- hosts: ctl\n  gather_facts: no\n  tasks:\n    - name: slow\n      command: sleep 1\n    - name: never\n      command: 'true'\n",
    )
    .expect("write");
    let log = dir.path().join("log");
    let r = common::run_interrupted(
        &[
            "run",
            pb.to_str().unwrap_or_default(),
            "-i",
            &shop(),
            "--format",
            "json",
            "--log-dir",
            log.to_str().unwrap_or_default(),
        ],
        std::time::Duration::from_millis(500),
    );
    assert_eq!(r.code, 99, "{r:?}");
    assert_eq!(r.result("slow", "ctl")["status"], "changed");
    assert!(r.results("never").is_empty(), "{r:?}");
    let recap = r
        .json_lines()
        .into_iter()
        .find(|v| v["event"] == "recap")
        .expect("recap");
    assert_eq!(recap["exit_code"], 99);
}
