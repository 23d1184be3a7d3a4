//! The one event stream, on the control node's own "hosts" (`ansible_connection: local`): every
//! command's JSON Lines start with `start` and end with `recap`, and secrets (`no_log` results,
//! secret parameters) never reach stdout, stderr or the audit log.

mod common;
use common::{repo, run, scratch};

fn shop() -> String {
    repo().join("tests/fixtures/shop/inventory.yaml").display().to_string()
}

#[test]
fn every_stream_starts_with_its_version_and_ends_with_the_recap() {
    let dir = scratch();
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        "- hosts: ctl\n  gather_facts: no\n  tasks:\n    - command: 'true'\n",
    )
    .expect("write");
    let file = dir.path().join("f.txt");
    std::fs::write(&file, "x\n").expect("write");
    let dest = dir.path().join("copy.txt");
    let inv = shop();
    let runs = [
        run(&["exec", "ctl", "-i", &inv, "--format", "json", "--", "true"]),
        run(&[
            "upload",
            "ctl",
            file.to_str().unwrap_or_default(),
            dest.to_str().unwrap_or_default(),
            "-i",
            &inv,
            "--format",
            "json",
        ]),
        run(&["run", pb.to_str().unwrap_or_default(), "-i", &inv, "--format", "json"]),
    ];
    for (r, command) in runs.iter().zip(["exec", "upload", "run"]) {
        assert_eq!(r.code, 0, "{r:?}");
        let lines = r.json_lines();
        let (first, last) = (&lines[0], &lines[lines.len() - 1]);
        assert_eq!(
            (
                first["event"].as_str(),
                first["schema_version"].as_u64(),
                first["command"].as_str()
            ),
            (Some("start"), Some(1), Some(command)),
            "{r:?}"
        );
        assert_eq!(
            (last["event"].as_str(), last["exit_code"].as_u64()),
            (Some("recap"), Some(0)),
            "{r:?}"
        );
        assert_eq!(last["hosts"]["ctl"]["failed"], 0, "{r:?}");
    }
    assert_eq!(std::fs::read_to_string(&dest).ok().as_deref(), Some("x\n"));
}

#[test]
fn secrets_are_masked_in_every_output_and_the_audit_log() {
    let dir = scratch();
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"
- hosts: ctl
  gather_facts: no
  vars:
    pw: s3cr3t-Pw-1234
  tasks:
    - name: log in
      uri: url=http://127.0.0.1:1/ url_username=ops url_password={{ pw }} timeout=2
      ignore_errors: true
    - name: echo it
      command: echo "the password is {{ pw }}"
    - name: say it
      debug: msg="pw={{ pw }}"
    - name: hidden
      command: echo no-log-value-5678
      no_log: true
"#,
    )
    .expect("write");
    let log = dir.path().join("log");
    for format in ["json", "human"] {
        let r = run(&[
            "run",
            pb.to_str().unwrap_or_default(),
            "-i",
            &shop(),
            "--format",
            format,
            "-v",
            "--log-dir",
            log.to_str().unwrap_or_default(),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        for secret in ["s3cr3t-Pw-1234", "no-log-value-5678"] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "{format}: {r:?}"
            );
        }
        if format == "json" {
            let echoed = r.result("echo it", "ctl");
            assert_eq!(echoed["stdout_tail"], "the password is ********", "{r:?}");
            assert_eq!(r.result("say it", "ctl")["msg"], "pw=********", "{r:?}");
            assert!(
                r.result("hidden", "ctl")["msg"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("no_log: true"),
                "{r:?}"
            );
        } else {
            assert!(r.stderr.contains("pw=********"), "{r:?}");
        }
    }
    let mut audited = 0;
    for entry in std::fs::read_dir(&log).expect("audit dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("audit log");
        assert!(!text.contains("s3cr3t-Pw-1234"), "{text}");
        assert!(!text.contains("no-log-value-5678"), "{text}");
        assert!(text.contains("pw=********"), "{text}");
        audited += 1;
    }
    assert_eq!(audited, 2);
}

/// The audit log holds what hosts answered: its directory and files are the owner's alone.
#[test]
fn the_audit_log_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = common::scratch();
    std::fs::write(
        dir.path().join("inventory.yaml"),
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    )
    .expect("inventory");
    std::fs::write(
        dir.path().join("p.yaml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    )
    .expect("playbook");
    let logs = dir.path().join("state/tend/runs");
    let r = common::run_in(
        dir.path(),
        &[
            "run",
            "p.yaml",
            "-i",
            "inventory.yaml",
            "--log-dir",
            logs.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&logs), 0o700);
    let files: Vec<_> = std::fs::read_dir(&logs).expect("logs").filter_map(Result::ok).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0].path()), 0o600);
}
