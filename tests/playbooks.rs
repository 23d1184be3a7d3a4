//! Playbook loading and validation through the real binary: every bad input is refused before
//! anything connects, with one pinned message.

mod common;
use common::{repo, run_in};

/// Every `.yaml` in tests/playbook_errors/ is a bad playbook; its `.expected` file holds the exact
/// message. `validate` and `run` refuse it the same way, before touching any host.
#[test]
fn bad_playbooks_give_one_pinned_message_and_exit_4() {
    let dir = repo().join("tests/playbook_errors");
    let inv = repo().join("tests/fixtures/shop").display().to_string();
    let mut failures = common::pinned_error_cases(&dir, 15, |name| vec!["validate".into(), name.into()]);
    if std::env::var_os("TEND_BLESS").is_none() {
        failures.extend(common::pinned_error_cases(&dir, 15, |name| {
            vec!["run".into(), name.into(), "-i".into(), inv.clone()]
        }));
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

/// A play on a group that exists without hosts is skipped with a note, as Ansible skips it;
/// a group the inventory does not have stays an error with a "did you mean".
#[test]
fn a_play_on_an_empty_group_is_skipped_and_an_unknown_one_refused() {
    let scratch = common::scratch();
    let inv = scratch.path().join("hosts");
    std::fs::write(&inv, "[app]\nlocal1 ansible_connection=local\n\n[db]\n").expect("inventory");
    let marker = scratch.path().join("ran");
    let pb = scratch.path().join("p.yaml");
    std::fs::write(
        &pb,
        format!(
            "- hosts: db\n  gather_facts: false\n  tasks:\n    - command: 'false'\n- hosts: app\n  gather_facts: false\n  tasks:\n    - command: touch {}\n",
            marker.display()
        ),
    )
    .expect("playbook");
    let (inv, pb) = (inv.display().to_string(), pb.display().to_string());
    let r = run_in(&repo(), &["run", &pb, "-i", &inv]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("no host matches `db`"), "{r:?}");
    assert!(marker.exists(), "the second play did not run: {r:?}");
    std::fs::write(scratch.path().join("p.yaml"), "- hosts: dbb\n  tasks: []\n").expect("playbook");
    let r = run_in(&repo(), &["run", &pb, "-i", &inv]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("did you mean `db`?"), "{r:?}");
}

/// Every builtin under its full name (`ansible.builtin.include_tasks` as any module) and the
/// modules of the collections tend has (`community.mysql.*`) load as their short names do.
#[test]
fn fully_qualified_names_load_as_short_ones() {
    let scratch = common::scratch();
    std::fs::write(
        scratch.path().join("more.yaml"),
        "- ansible.builtin.debug:\n    msg: included\n",
    )
    .expect("tasks");
    let pb = scratch.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: all
  tasks:
    - ansible.builtin.include_tasks: more.yaml
    - ansible.builtin.import_tasks: more.yaml
    - ansible.legacy.command: uptime
    - community.mysql.mysql_user:
        name: shop
        password: x
    - community.mysql.mysql_db:
        name: shop
    - ansible.builtin.meta: flush_handlers
"#,
    )
    .expect("playbook");
    let r = run_in(scratch.path(), &["validate", "p.yaml"]);
    assert_eq!(r.code, 0, "{r:?}");
}
