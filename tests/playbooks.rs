//! Playbook loading and validation through the real binary: every bad input is refused before
//! anything connects, with one pinned message.

mod common;
use common::{repo, run_in};

/// Every `.yaml` in tests/playbook_errors/ is a bad playbook; its `.expected` file holds the exact
/// message of `tend validate`. `TEND_BLESS=1` rewrites the expectations after a deliberate change.
#[test]
fn bad_playbooks_give_one_pinned_message_and_exit_4() {
    let dir = repo().join("tests/playbook_errors");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("read cases")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let r = run_in(&dir, &["validate", &name]);
        let expected_path = case.with_extension("expected");
        if std::env::var_os("TEND_BLESS").is_some() {
            std::fs::write(&expected_path, &r.stderr).expect("bless");
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if r.code != 4 || r.stderr != expected || r.stderr.contains("panicked") {
            failures.push(format!("{name}: expected exit 4 and\n{expected}got {r:?}"));
        }
        // `run` refuses the same input the same way, before touching the inventory's hosts.
        let inv = repo().join("tests/fixtures/shop").display().to_string();
        let r2 = run_in(&dir, &["run", &name, "-i", &inv]);
        if r2.code != 4 || r2.stderr != expected {
            failures.push(format!("{name} (run): expected exit 4 and\n{expected}got {r2:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn start_at_an_unknown_task_is_refused_before_running() {
    let dir = repo().join("tests/fixtures");
    let inv = repo().join("tests/fixtures/shop").display().to_string();
    let scratch = common::scratch();
    let pb = scratch.path().join("p.yaml");
    std::fs::write(
        &pb,
        "- hosts: ctl\n  tasks:\n    - name: install packages\n      command: 'true'\n",
    )
    .expect("write");
    let r = run_in(
        &dir,
        &[
            "run",
            pb.to_str().unwrap_or_default(),
            "-i",
            &inv,
            "--start-at-task",
            "install package",
        ],
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            4,
            "error: --start-at-task: no task is named `install package`\nhint: did you mean `install packages`?\n"
        )
    );
}
