//! Playbook loading and validation through the real binary: every bad input is refused before
//! anything connects, with one pinned message.

mod common;
use common::{repo, run_in};

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

/// Play connection keywords, `local_action` and `vars_prompt`, without a terminal: the play's
/// `connection: local` reaches a host the inventory says nothing about; a prompt takes `-e`,
/// else its default (a private answer never shown), else the run is refused; two plays that
/// would reach one host differently are refused before anything runs.
#[test]
fn play_connection_keywords_local_action_and_prompts() {
    let scratch = common::scratch();
    let dir = scratch.path();
    std::fs::write(dir.join("hosts"), "[web]\nweb1\n").expect("inventory");
    let (out, mark) = (dir.join("out"), dir.join("mark"));
    std::fs::write(
        dir.join("p.yaml"),
        format!(
            r#"- hosts: web
  connection: local
  gather_facts: false
  vars_prompt:
    - name: release
      prompt: Which release?
      default: "1.0"
      private: false
    - name: token
      default: s3cr3t-token-42
  tasks:
    - copy:
        content: "{{{{ release }}}} {{{{ token }}}}"
        dest: {out}
    - local_action: command touch {mark}
    - debug:
        msg: "token is {{{{ token }}}}"
"#,
            out = out.display(),
            mark = mark.display()
        ),
    )
    .expect("playbook");
    // No controlling terminal, as in CI: `setsid` detaches the run from the test's.
    let run = |args: &[&str]| {
        common::Run::of(
            std::process::Command::new("setsid")
                .arg("-w")
                .arg(env!("CARGO_BIN_EXE_tend"))
                .args(args)
                .current_dir(dir)
                .env("XDG_STATE_HOME", dir.join("state"))
                .stdin(std::process::Stdio::null())
                .output()
                .expect("tend"),
        )
    };
    let r = run(&["run", "p.yaml", "-i", "hosts"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(&out).expect("out"), "1.0 s3cr3t-token-42");
    assert!(mark.exists(), "local_action did not run: {r:?}");
    assert!(
        !r.stdout.contains("s3cr3t-token-42") && !r.stderr.contains("s3cr3t-token-42"),
        "{r:?}"
    );
    let r = run(&["run", "p.yaml", "-i", "hosts", "-e", "release=2.0"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(std::fs::read_to_string(&out).expect("out").starts_with("2.0 "));

    // Without a default, nobody to ask: refused, naming the prompt.
    std::fs::write(
        dir.join("q.yaml"),
        "- hosts: web\n  connection: local\n  vars_prompt:\n    - name: answer\n  tasks: []\n",
    )
    .expect("playbook");
    let r = run(&["run", "q.yaml", "-i", "hosts"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("q.yaml:4:7: vars_prompt `answer` needs an answer"),
        "{r:?}"
    );
    assert!(r.stderr.contains("-e answer="), "{r:?}");

    // Two plays reaching web1 on different ports: refused before anything connects.
    std::fs::write(
        dir.join("ports.yaml"),
        "- hosts: web\n  port: 2222\n  tasks: []\n- hosts: web\n  port: 2200\n  remote_user: deploy\n  tasks: []\n",
    )
    .expect("playbook");
    let r = run(&["run", "ports.yaml", "-i", "hosts"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("reaches web1 otherwise"), "{r:?}");
    assert!(r.stderr.contains("deploy@web1:2200"), "{r:?}");
}

/// Boolean keywords written as templates are decided per host when the task runs.
#[test]
fn templated_booleans_are_decided_per_host() {
    let scratch = common::scratch();
    let dir = scratch.path();
    std::fs::write(
        dir.join("hosts"),
        "[web]\nweb1 ansible_connection=local hide=true\nweb2 ansible_connection=local hide=false\n",
    )
    .expect("inventory");
    std::fs::write(
        dir.join("p.yaml"),
        r#"- hosts: web
  gather_facts: false
  tasks:
    - name: maybe hidden
      debug:
        msg: "visible-{{ inventory_hostname }}"
      no_log: "{{ hide }}"
    - name: fails, ignored when hide
      command: "false"
      ignore_errors: "{{ hide | bool }}"
"#,
    )
    .expect("playbook");
    let r = run_in(dir, &["run", "p.yaml", "-i", "hosts", "--format", "json"]);
    // web2 fails the second task (not ignored there): exit 2.
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stdout.contains("visible-web1"), "{r:?}");
    assert!(r.stdout.contains("visible-web2"), "{r:?}");
    let ignored = r
        .events("result")
        .into_iter()
        .filter(|e| e["task"] == "fails, ignored when hide")
        .map(|e| {
            (
                e["host"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect::<Vec<_>>();
    assert!(ignored.contains(&("web1".into(), "ignored".into())), "{ignored:?}");
    assert!(ignored.contains(&("web2".into(), "failed".into())), "{ignored:?}");
}

/// Ansible's legacy `include` (removed from ansible-core in 2.16, still in older playbooks): at
/// play level it imports a playbook, in a task list it imports a tasks file, the `k=v` words after
/// the file becoming its variables.
#[test]
fn legacy_include_runs_old_playbooks() {
    let dir = common::scratch();
    let out = dir.path().join("out.txt");
    std::fs::write(
        dir.path().join("inventory.yaml"),
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    )
    .expect("inventory");
    std::fs::write(
        dir.path().join("site.yml"),
        format!(
            "- include: first.yml\n- hosts: all\n  gather_facts: false\n  tasks:\n    - include: write.yml word=included other=\"two words\"\n    - shell: echo done >> {}\n",
            out.display()
        ),
    )
    .expect("site");
    std::fs::write(
        dir.path().join("first.yml"),
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: echo first > {}\n",
            out.display()
        ),
    )
    .expect("first");
    std::fs::write(
        dir.path().join("write.yml"),
        format!("- shell: echo {{{{ word }}}} {{{{ other }}}} >> {}\n", out.display()),
    )
    .expect("write");
    let r = run_in(dir.path(), &["run", "site.yml", "-i", "inventory.yaml"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "first\nincluded two words\ndone\n"
    );
}
