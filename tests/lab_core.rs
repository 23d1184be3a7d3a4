//! The operations core on real lab hosts: a command that is not found is the host's failure,
//! not an unreachable host; `-e` beats the inventory for connection variables; privilege
//! escalation follows Ansible's precedence (variables, then keywords, then flags).

mod common;
use common::{Lab, PlaybookFile, run, scratch};

#[test]
fn a_missing_command_or_sudo_is_the_commands_failure_not_an_unreachable_host() {
    let lab = Lab::get();
    let r = run(&[
        "exec",
        "h2",
        "-i",
        &lab.inventory(),
        "--format",
        "json",
        "--",
        "no_such_command_anywhere",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.host("h2");
    assert_eq!(v["status"], "failed", "{r:?}");
    assert_eq!(v["rc"], 127, "{r:?}");
    assert!(v["stderr"].as_str().unwrap_or_default().contains("not found"), "{r:?}");

    // h2 has no `sudo` (the lab shares the control node's programs, and it has none). The
    // connection is root: becoming root needs no sudo, as in Ansible. Becoming another user
    // needs the missing wrapper, which is the task's failure with its exit code.
    lab.sh(2, "! command -v sudo");
    let pf = PlaybookFile::new(
        r#"
- hosts: h2
  gather_facts: no
  tasks:
    - name: root to root
      command: id -u
      become: true
    - name: as nobody through sudo
      command: id -u
      become: true
      become_user: nobody
"#,
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let root = r.result("root to root", "h2");
    assert_eq!(
        (root["status"].as_str(), root["stdout_tail"].as_str()),
        (Some("changed"), Some("0")),
        "{r:?}"
    );
    let t = r.result("as nobody through sudo", "h2");
    assert_eq!(
        (t["status"].as_str(), t["rc"].as_i64()),
        (Some("failed"), Some(127)),
        "{r:?}"
    );
    assert_eq!(r.recap("h2")["unreachable"], 0);
}

#[test]
fn extra_vars_beat_the_inventory_for_connection_variables() {
    let lab = Lab::get();
    let inv = lab.inventory();
    let ok = run(&["exec", "h3", "-i", &inv, "--", "true"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    // Nothing listens on port 2: `-e` is what the connection used.
    let r = run(&[
        "exec",
        "h3",
        "-i",
        &inv,
        "-e",
        "ansible_port=2",
        "--connect-timeout",
        "5",
        "--format",
        "json",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.host("h3")["status"], "unreachable");
    assert!(
        r.host("h3")["msg"].as_str().unwrap_or_default().contains("port 2"),
        "{r:?}"
    );
    // `tend inventory --host` shows the same merged view.
    let shown = run(&["inventory", "-i", &inv, "-e", "ansible_port=2", "--host", "h3"]);
    let vars: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
    assert_eq!(vars["ansible_port"], "2");
}

/// On h4, where the become test of lab_playbook installs sudo (kept apart by the `h4` group).
#[test]
fn become_without_become_user_follows_the_inventory_then_the_flag_on_h4() {
    let lab = Lab::get();
    let dir = scratch();
    let inv = dir.path().join("inventory.yaml");
    let base = std::fs::read_to_string(lab.inventory()).expect("lab inventory");
    // The lab inventory with h4 in a group that becomes `nobody`.
    std::fs::write(
        &inv,
        format!(
            "{base}    becomers:\n      vars:\n        ansible_become_user: nobody\n      hosts:\n        h4: {{}}\n"
        ),
    )
    .expect("inventory");
    let inv = inv.to_string_lossy().into_owned();
    let pf = PlaybookFile::new(&format!(
        "- hosts: h4\n  gather_facts: no\n  tasks:\n{}    - name: who\n      command: id -un\n      become: true\n",
        common::SUDO_TASK
    ));
    let playbook = pf.path.to_string_lossy().into_owned();
    let log = dir.path().join("log");
    let log = log.to_string_lossy().into_owned();
    let who = |extra: &[&str]| {
        let mut args = vec!["run", &playbook, "-i", &inv, "--format", "json", "--log-dir", &log];
        args.extend_from_slice(extra);
        let r = run(&args);
        assert_eq!(r.code, 0, "{r:?}");
        let w = r.result("who", "h4");
        w["stdout_tail"].as_str().unwrap_or_default().to_string()
    };
    // `become: true` alone: the inventory's `ansible_become_user`, not root.
    assert_eq!(who(&[]), "nobody");
    // The variable beats the flag, as in Ansible; `-e` beats them all.
    assert_eq!(who(&["--become-user", "daemon"]), "nobody");
    assert_eq!(who(&["-e", "ansible_become_user=daemon"]), "daemon");
    // Without the variable, `--become-user` is what `become: true` means.
    let plain = PlaybookFile::new(&std::fs::read_to_string(&pf.path).expect("playbook"));
    let r = plain.run(&lab, &["--become-user", "daemon"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("who", "h4")["stdout_tail"], "daemon", "{r:?}");
}
