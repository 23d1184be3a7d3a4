//! The playbook engine against real lab hosts: state asserted on the hosts, idempotence,
//! check mode, diffs, handlers, loops, conditions, blocks, serial and failure policy.

mod common;
use common::{Lab, PlaybookFile, scratch};

fn uniq(name: &str) -> String {
    format!("/root/tend-pb-{name}-{}", std::process::id())
}

#[test]
fn core_modules_converge_then_change_nothing() {
    let lab = Lab::get();
    let dir = uniq("core");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h2
  vars:
    app_dir: {dir}
    port: 8080
  tasks:
    - name: app directory
      file: path={{{{ app_dir }}}} state=directory mode=0750
    - name: config from template
      template:
        src: app.conf.j2
        dest: "{{{{ app_dir }}}}/app.conf"
        mode: "0640"
    - name: static file
      copy:
        src: motd.txt
        dest: "{{{{ app_dir }}}}/motd.txt"
    - name: current link
      file:
        src: "{{{{ app_dir }}}}/motd.txt"
        dest: "{{{{ app_dir }}}}/current"
        state: link
    - name: look at it
      stat:
        path: "{{{{ app_dir }}}}/app.conf"
      register: st
    - name: it is there
      assert:
        that:
          - st.stat.exists
          - st.stat.mode == '0640'
      when: not ansible_check_mode
    - name: marker only once
      shell: echo ran >> {{{{ app_dir }}}}/runs && touch {{{{ app_dir }}}}/marker
      args:
        creates: "{{{{ app_dir }}}}/marker"
"#
    ));
    pf.file(
        "templates/app.conf.j2",
        "# {{ inventory_hostname }}\nlisten {{ port }}\n{% for g in group_names if g == 'lab' %}\ngroup {{ g }}\n{% endfor %}\n",
    );
    pf.file("motd.txt", "welcome\n");

    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    for (i, h) in [(1, "h1"), (2, "h2")] {
        assert_eq!(
            lab.sh(i, &format!("cat {dir}/app.conf")),
            format!("# {h}\nlisten 8080\ngroup lab\n")
        );
        assert_eq!(
            lab.sh(i, &format!("stat -c %a {dir} {dir}/app.conf {dir}/motd.txt")),
            "750\n640\n644\n"
        );
        assert_eq!(
            lab.sh(i, &format!("readlink {dir}/current; cat {dir}/runs")),
            format!("{dir}/motd.txt\nran\n")
        );
        assert_eq!(r.result("config from template", h)["status"], "changed");
    }
    assert!(r.total_changed() >= 10, "{r:?}");

    // Second run: nothing changes, the `creates` command does not run again.
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.total_changed(), 0, "{r:?}");
    assert_eq!(lab.sh(1, &format!("cat {dir}/runs")), "ran\n");

    // Drift on h1, then --check --diff: reported with a real diff, host left as it was.
    lab.sh(
        1,
        &format!("sed -i 's/8080/9999/' {dir}/app.conf; chmod 600 {dir}/app.conf"),
    );
    let r = pf.run(&lab, &["--check", "--diff"]);
    assert_eq!(r.code, 0, "{r:?}");
    let t = r.result("config from template", "h1");
    assert_eq!(t["status"], "changed");
    assert_eq!(t["diff"][0]["before"], "# h1\nlisten 9999\ngroup lab\n");
    assert_eq!(t["diff"][0]["after"], "# h1\nlisten 8080\ngroup lab\n");
    assert_eq!(r.result("config from template", "h2")["status"], "ok");
    assert_eq!(
        lab.sh(1, &format!("grep listen {dir}/app.conf; stat -c %a {dir}/app.conf")),
        "listen 9999\n600\n"
    );

    // A real run repairs the drift.
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lab.sh(1, &format!("grep listen {dir}/app.conf; stat -c %a {dir}/app.conf")),
        "listen 8080\n640\n"
    );
    for i in [1, 2] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

#[test]
fn human_diff_output_is_a_unified_diff() {
    let lab = Lab::get();
    let dir = uniq("diff");
    lab.sh(3, &format!("mkdir -p {dir} && printf 'a\\nb\\nc\\n' > {dir}/f"));
    let pf = PlaybookFile::new(&format!(
        "- hosts: h3\n  gather_facts: no\n  tasks:\n    - name: edit\n      copy: content=\"a\\nB\\nc\\n\" dest={dir}/f\n"
    ));
    let log = pf.dir.path().join("log");
    let r = common::run(&[
        "run",
        pf.path.to_str().unwrap_or_default(),
        "-i",
        &lab.inventory(),
        "--check",
        "--diff",
        "--log-dir",
        log.to_str().unwrap_or_default(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let expected = format!(
        "  diff h3:\n    --- before: {dir}/f\n    +++ after: {dir}/f\n    @@ -1,3 +1,3 @@\n     a\n    -b\n    +B\n     c\n"
    );
    assert!(r.stderr.contains(&expected), "{}", r.stderr);
    assert!(r.stderr.contains("TASK [edit] "), "{}", r.stderr);
    assert!(r.stderr.contains("ok=0 changed=1 failed=0 skipped=0"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("h3  ok=0 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"),
        "{}",
        r.stderr
    );
    assert_eq!(lab.sh(3, &format!("cat {dir}/f; rm -rf {dir}")), "a\nb\nc\n");
}

#[test]
fn handlers_run_once_at_the_end_and_only_when_notified() {
    let lab = Lab::get();
    let dir = uniq("handlers");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h2
  gather_facts: false
  tasks:
    - file: path={dir} state=directory
    - name: config a
      copy: content="a={{{{ inventory_hostname }}}}" dest={dir}/a
      notify: restart app
    - name: config b
      copy: content=b dest={dir}/b
      notify: [restart app, log change]
      when: inventory_hostname == 'h1'
    - name: before handlers
      shell: "if test -e {dir}/restarted; then echo yes; else echo no; fi >> {dir}/seen"
      changed_when: false
  handlers:
    - name: restart app
      shell: echo restart >> {dir}/restarted
    - name: log it
      listen: log change
      shell: echo logged >> {dir}/log
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    // Notified twice on h1, run once; never ran before the tasks finished.
    assert_eq!(
        lab.sh(1, &format!("cat {dir}/restarted {dir}/log")),
        "restart\nlogged\n"
    );
    assert_eq!(
        lab.sh(2, &format!("cat {dir}/restarted; test ! -e {dir}/log && echo nolog")),
        "restart\nnolog\n"
    );
    // Nothing changed the second time: no handler runs.
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.results("restart app").is_empty(), "{r:?}");
    assert_eq!(lab.sh(1, &format!("cat {dir}/restarted")), "restart\n");
    // The handler had not run when the last task ran (first run), and had after it.
    assert_eq!(lab.sh(1, &format!("cat {dir}/seen")), "no\nyes\n");
    for i in [1, 2] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

#[test]
fn loops_conditions_register_and_retries() {
    let lab = Lab::get();
    let dir = uniq("loops");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h2
  vars:
    users: [{{name: ann, shell: /bin/sh}}, {{name: bob, shell: /bin/bash}}]
  tasks:
    - file: path={dir} state=directory
    - name: per item
      copy:
        content: "{{{{ item.shell }}}}\n"
        dest: "{dir}/{{{{ item.name }}}}"
      loop: "{{{{ users }}}}"
      loop_control:
        label: "{{{{ item.name }}}}"
    - name: skipped item
      copy: content=x dest={dir}/{{{{ item }}}}
      loop: [keep, skip]
      when: item != 'skip'
    - name: count
      shell: ls {dir} | wc -l
      register: n
      changed_when: false
    - name: number as text
      set_fact:
        files: "{{{{ n.stdout | int }}}}"
    - name: failed_when turns rc 1 into success
      command: grep nothing {dir}/ann
      register: g
      failed_when: g.rc > 1
      changed_when: false
    - name: retry until a file appears
      shell: "c=$(cat {dir}/tries 2>/dev/null || echo 0); echo $((c+1)) > {dir}/tries; cat {dir}/tries"
      register: t
      until: t.stdout | int >= 3
      retries: 5
      delay: 0
    - name: report
      debug:
        msg: "files={{{{ files }}}} tries={{{{ t.stdout }}}} ansible={{{{ ansible_facts.os_family }}}}"
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lab.sh(2, &format!("cat {dir}/ann {dir}/bob; ls {dir} | sort | tr '\\n' ' '")),
        "/bin/sh\n/bin/bash\nann bob keep tries "
    );
    let items: Vec<String> = r
        .results("per item")
        .iter()
        .map(|v| v["item"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(items, ["ann", "bob"]);
    let skip = r.results("skipped item");
    assert_eq!(
        skip.iter()
            .map(|v| v["status"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["changed", "skipped"]
    );
    assert_eq!(r.result("failed_when turns rc 1 into success", "h2")["status"], "ok");
    assert_eq!(r.result("report", "h2")["msg"], "files=3 tries=3 ansible=Debian");
    lab.sh(2, &format!("rm -rf {dir}"));
}

#[test]
fn block_rescue_always() {
    let lab = Lab::get();
    let dir = uniq("block");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h3
  gather_facts: no
  # A rescued failure does not count against the failure policy.
  max_fail_percentage: 0
  tasks:
    - file: path={dir} state=directory
    - block:
        - name: fails on h1
          command: "false"
          when: inventory_hostname == 'h1'
        - name: after the failure
          shell: echo block >> {dir}/trace
      rescue:
        - name: rescue
          shell: echo rescue >> {dir}/trace
      always:
        - name: always
          shell: echo always >> {dir}/trace
    - name: play goes on
      shell: echo after >> {dir}/trace
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "a rescued failure is not a failed run: {r:?}");
    assert_eq!(lab.sh(1, &format!("cat {dir}/trace")), "rescue\nalways\nafter\n");
    assert_eq!(lab.sh(3, &format!("cat {dir}/trace")), "block\nalways\nafter\n");
    assert_eq!(r.recap("h1")["rescued"], 1);
    assert_eq!(r.recap("h1")["failed"], 0);
    for i in [1, 3] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

#[test]
fn a_failing_host_leaves_the_play_with_a_full_report() {
    let lab = Lab::get();
    let dir = uniq("fail");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h2
  gather_facts: no
  tasks:
    - name: breaks on h2
      shell: "echo out; echo 'E: broken package' >&2; exit 100"
      when: inventory_hostname == 'h2'
    - name: next
      shell: mkdir -p {dir} && touch {dir}/next
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let f = r.result("breaks on h2", "h2");
    assert_eq!(f["status"], "failed");
    assert_eq!(f["rc"], 100);
    assert_eq!(f["stderr_tail"], "E: broken package");
    assert_eq!(f["stdout_tail"], "out");
    assert!(f["cmd"].as_str().unwrap_or_default().contains("exit 100"), "{f}");
    assert!(
        f["location"].as_str().unwrap_or_default().ends_with("playbook.yaml:5"),
        "{f}"
    );
    // h2 left the play; h1 went on.
    assert!(r.results("next").iter().all(|v| v["host"] == "h1"), "{r:?}");
    assert_eq!(lab.sh(1, &format!("ls {dir}")), "next\n");
    assert_ne!(lab.on_host(2, &["test", "-e", &format!("{dir}/next")]).code, 0);
    lab.sh(1, &format!("rm -rf {dir}"));

    // The human report names host, task and location, command, rc and the stderr tail.
    let log = pf.dir.path().join("log2");
    let h = common::run(&[
        "run",
        pf.path.to_str().unwrap_or_default(),
        "-i",
        &lab.inventory(),
        "--log-dir",
        log.to_str().unwrap_or_default(),
    ]);
    assert_eq!(h.code, 2);
    assert!(
        h.stderr
            .contains("  FAILED h2: non-zero return code 100\n    task: breaks on h2 ("),
        "{}",
        h.stderr
    );
    assert!(h.stderr.contains("    rc: 100\n"), "{}", h.stderr);
    assert!(
        h.stderr.contains("    stderr:\n      E: broken package\n"),
        "{}",
        h.stderr
    );
    lab.sh(1, &format!("rm -rf {dir}"));
}

#[test]
fn serial_batches_and_max_fail_percentage_stop_the_run() {
    let lab = Lab::get();
    let dir = uniq("serial");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h2:h3
  gather_facts: no
  serial: 1
  max_fail_percentage: 0
  tasks:
    - name: batch marker
      shell: mkdir -p {dir} && date +%s%N > {dir}/at
    - name: h2 fails
      command: "false"
      when: inventory_hostname == 'h2'
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    // Batch 1 (h1) ran, batch 2 (h2) failed and stopped the run: h3 never started.
    let ran: Vec<String> = r
        .results("batch marker")
        .iter()
        .map(|v| v["host"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ran, ["h1", "h2"]);
    assert_ne!(lab.on_host(3, &["test", "-e", &format!("{dir}/at")]).code, 0);
    assert!(
        r.json_lines().iter().any(|v| v["event"] == "warning"
            && v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("max_fail_percentage")),
        "{r:?}"
    );
    for i in [1, 2] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

#[test]
fn unreachable_h4_mid_play_leaves_the_others_running() {
    let lab = Lab::get();
    let dir = uniq("unreach");
    let lab_sh = lab.script().display().to_string();
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h4
  gather_facts: no
  tasks:
    - name: first
      shell: mkdir -p {dir} && touch {dir}/first
    - name: h4 goes down
      command: {lab_sh} sshd-stop 4
      delegate_to: localhost
      run_once: true
    - name: second
      shell: touch {dir}/second
"#
    ));
    let r = pf.run(&lab, &[]);
    let start = lab.lab_sh(&["sshd-start", "4"]);
    assert_eq!(start.code, 0, "{start:?}");
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.result("second", "h1")["status"], "changed");
    assert_eq!(r.result("second", "h4")["status"], "unreachable");
    assert_eq!(r.recap("h4")["unreachable"], 1);
    assert_eq!(lab.sh(1, &format!("ls {dir}")), "first\nsecond\n");
    assert_eq!(lab.sh(4, &format!("ls {dir}")), "first\n");
    for i in [1, 4] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

/// The same under `strategy: free`: h4's sshd dies while both hosts are in a slow task; h1
/// finishes its play, h4 is unreachable from then on, the run exits 3.
#[test]
fn h4_killed_mid_task_under_free_leaves_the_others_running() {
    let lab = Lab::get();
    let dir = uniq("free-unreach");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h4
  gather_facts: no
  strategy: free
  tasks:
    - name: first
      shell: mkdir -p {dir} && touch {dir}/first
    - name: slow
      shell: sleep 3
    - name: second
      shell: touch {dir}/second
"#
    ));
    let killer = {
        let lab = Lab::get();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            lab.lab_sh(&["sshd-stop", "4"])
        })
    };
    let r = pf.run(&lab, &[]);
    let stop = killer.join().expect("killer");
    let start = lab.lab_sh(&["sshd-start", "4"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    assert_eq!(start.code, 0, "{start:?}");
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.result("second", "h1")["status"], "changed");
    assert_eq!(r.result("slow", "h4")["status"], "unreachable", "{r:?}");
    assert_eq!(r.recap("h4")["unreachable"], 1);
    assert_eq!(r.recap("h1")["unreachable"], 0);
    assert_eq!(lab.sh(1, &format!("ls {dir}")), "first\nsecond\n");
    assert_eq!(lab.sh(4, &format!("ls {dir}")), "first\n");
    for i in [1, 4] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

#[test]
fn roles_includes_tags_and_no_log() {
    let lab = Lab::get();
    let dir = uniq("roles");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h3
  gather_facts: no
  vars:
    secret: hunter2
  roles:
    - role: web
      web_port: 8081
  tasks:
    - include_tasks: each.yaml
      loop: [one, two]
      loop_control:
        loop_var: part
    - name: secret stays secret
      shell: echo {{{{ secret }}}} > {dir}/secret
      no_log: true
    - name: only with tag
      shell: touch {dir}/tagged
      tags: [extra]
"#
    ));
    pf.file(
        "roles/web/defaults/main.yaml",
        &format!("web_port: 80\nweb_dir: {dir}\n"),
    );
    pf.file("roles/web/tasks/main.yaml", "- file: path={{ web_dir }} state=directory\n- name: site config\n  template: src=site.j2 dest={{ web_dir }}/site.conf\n  notify: reload web\n");
    pf.file("roles/web/templates/site.j2", "port={{ web_port }}\n");
    pf.file(
        "roles/web/handlers/main.yaml",
        "- name: reload web\n  shell: touch {{ web_dir }}/reloaded\n",
    );
    pf.file(
        "each.yaml",
        &format!("- name: part\n  copy: content={{{{ part }}}} dest={dir}/{{{{ part }}}}\n"),
    );
    let r = pf.run(&lab, &["--skip-tags", "extra"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lab.sh(
            3,
            &format!("cat {dir}/site.conf {dir}/one {dir}/two {dir}/secret; ls {dir}")
        ),
        format!("port=8081\nonetwohunter2\none\nreloaded\nsecret\nsite.conf\ntwo\n")
    );
    assert!(!r.stdout.contains("hunter2"), "secret printed: {}", r.stdout);
    let log_dir = pf.dir.path().join("log");
    let logs: String = std::fs::read_dir(&log_dir)
        .expect("audit dir")
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("\"task\":\"secret stays secret\""),
        "audit log has the task: {logs}"
    );
    assert!(!logs.contains("hunter2"), "secret in the audit log");
    let r = pf.run(&lab, &["--tags", "extra"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.results("site config").len(), 0);
    assert_eq!(
        lab.sh(3, &format!("test -e {dir}/tagged && echo yes; rm -rf {dir}")),
        "yes\n"
    );
}

#[test]
fn undefined_variables_fail_the_host_with_the_name() {
    let lab = Lab::get();
    let pf = PlaybookFile::new(
        "- hosts: h1\n  gather_facts: no\n  tasks:\n    - name: typo\n      debug: msg=\"{{ nmae }}\"\n",
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let msg = r.result("typo", "h1")["msg"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("undefined"), "{msg}");
}

#[test]
fn the_audit_log_has_a_line_per_host_and_task() {
    let lab = Lab::get();
    let pf = PlaybookFile::new(
        "- hosts: h1:h2\n  gather_facts: no\n  tasks:\n    - command: 'true'\n    - command: 'true'\n",
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let dir = pf.dir.path().join("log");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("log dir")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).expect("read");
    let results = text.lines().filter(|l| l.contains("\"event\":\"result\"")).count();
    assert_eq!(results, 4, "{text}");
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    let _ = scratch();
}

/// On h4: its other tests (sshd stop/start) are kept apart by the `h4` test group.
#[test]
fn become_runs_commands_as_another_user_on_h4() {
    let lab = Lab::get();
    let file = format!("/tmp/tend-become-{}", std::process::id());
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h4
  gather_facts: no
  tasks:
{}    - name: as nobody
      command: id -un
      become: yes
      become_user: nobody
      register: who
    - name: a file of nobody's
      file: path={file} state=touch
      become: true
      become_user: nobody
    - assert:
        that: who.stdout == 'nobody'
"#,
        common::SUDO_TASK
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lab.sh(4, &format!("stat -c %U {file}; rm -f {file}")), "nobody\n");
}

#[test]
fn start_at_task_free_strategy_and_any_errors_fatal() {
    let lab = Lab::get();
    let dir = uniq("flow");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h3
  gather_facts: no
  strategy: free
  tasks:
    - name: one
      shell: mkdir -p {dir} && echo one >> {dir}/trace
    - name: two
      shell: mkdir -p {dir} && echo two >> {dir}/trace
"#
    ));
    let r = pf.run(&lab, &["--start-at-task", "two"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.results("one").is_empty());
    assert_eq!(lab.sh(1, &format!("cat {dir}/trace")), "two\n");
    assert_eq!(lab.sh(3, &format!("cat {dir}/trace")), "two\n");

    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h3
  gather_facts: no
  any_errors_fatal: true
  tasks:
    - name: h1 fails
      command: "false"
      when: inventory_hostname == 'h1'
    - name: never
      shell: echo never >> {dir}/trace
- hosts: h3
  gather_facts: no
  tasks:
    - name: next play never starts
      shell: echo play2 >> {dir}/trace
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.results("never").is_empty() && r.results("next play never starts").is_empty(),
        "{r:?}"
    );
    assert_eq!(lab.sh(3, &format!("cat {dir}/trace")), "two\n");
    for i in [1, 3] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

/// The `channels` count of `TEND_STATS=1`, printed on stderr at exit.
fn channels(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("tend-stats: "))
        .unwrap_or_else(|| panic!("no tend-stats line:\n{stderr}"));
    let stats: serde_json::Value = serde_json::from_str(line).expect("stats JSON");
    stats["channels"].as_u64().expect("channels")
}

#[test]
fn consecutive_tasks_share_a_channel_and_stop_at_a_failure() {
    let lab = Lab::get();
    let dir = uniq("group");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1:h2
  gather_facts: no
  vars:
    dir: {dir}
  tasks:
    - name: dir
      file: path={{{{ dir }}}} state=directory
    - name: naps
      command: sleep 0.3
    - name: input and environment
      shell: "cat > {{{{ dir }}}}/input; echo $GREETING >> {{{{ dir }}}}/input"
      args:
        stdin: "from {{{{ inventory_hostname }}}}"
      environment:
        GREETING: hello
    - name: content
      copy:
        content: "a {{{{ inventory_hostname }}}}\n"
        dest: "{{{{ dir }}}}/a.txt"
    - name: skipped on h1
      shell: echo skipped >> {{{{ dir }}}}/trace
      when: inventory_hostname != 'h1' and false
    - name: breaks on h2
      shell: "echo three >> {{{{ dir }}}}/trace; [ {{{{ inventory_hostname }}}} != h2 ] || {{ echo boom >&2; exit 7; }}"
    - name: after
      shell: echo four >> {{{{ dir }}}}/trace
    - name: edit
      lineinfile:
        path: "{{{{ dir }}}}/conf"
        line: x=1
        create: true
    - name: sees the edit
      shell: "grep -c x=1 {{{{ dir }}}}/conf >> {{{{ dir }}}}/trace"
    - name: look
      stat:
        path: "{{{{ dir }}}}/a.txt"
      register: st
    - name: register holds
      assert:
        that: st.stat.exists and st.stat.size == 5
"#
    ));
    let r = common::Run::of(
        common::tend()
            .env("TEND_STATS", "1")
            .args(pf.args(&lab, &[]))
            .output()
            .expect("start tend"),
    );
    assert_eq!(r.code, 2, "{r:?}");
    // h1 ran everything in order, each task with its own input and environment; the line was
    // written before the next task looked for it.
    assert_eq!(lab.sh(1, &format!("cat {dir}/trace")), "three\nfour\n1\n");
    assert_eq!(
        lab.sh(1, &format!("cat {dir}/input {dir}/a.txt")),
        "from h1\nhello\na h1\n"
    );
    assert_eq!(r.result("register holds", "h1")["status"], "ok");
    assert_eq!(r.result("skipped on h1", "h1")["status"], "skipped");
    // h2 stopped at its failure: nothing after it ran there.
    assert_eq!(lab.sh(2, &format!("cat {dir}/trace")), "three\n");
    assert_ne!(lab.on_host(2, &["test", "-e", &format!("{dir}/conf")]).code, 0);
    let f = r.result("breaks on h2", "h2");
    assert_eq!(
        (f["status"].as_str(), f["rc"].as_i64()),
        (Some("failed"), Some(7)),
        "{f}"
    );
    assert_eq!(f["stderr_tail"], "boom");
    for task in ["after", "edit", "sees the edit", "look"] {
        assert!(r.results(task).iter().all(|v| v["host"] == "h1"), "{task}: {r:?}");
    }
    assert_eq!(r.recap("h1")["changed"], 8);
    assert_eq!(r.recap("h2")["failed"], 1);
    // Events come task by task, in the playbook's order.
    let starts: Vec<String> = r
        .json_lines()
        .into_iter()
        .filter(|v| v["event"] == "task_start")
        .map(|v| v["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        starts,
        [
            "dir",
            "naps",
            "input and environment",
            "content",
            "skipped on h1",
            "breaks on h2",
            "after",
            "edit",
            "sees the edit",
            "look",
            "register holds"
        ]
    );
    // Each task's time is its own, measured on the host, though the tasks ran in one script.
    let ends: std::collections::HashMap<String, u64> = r
        .json_lines()
        .into_iter()
        .filter(|v| v["event"] == "task_end")
        .map(|v| {
            (
                v["name"].as_str().unwrap_or_default().to_string(),
                v["duration_ms"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(ends["naps"] >= 280, "{ends:?}");
    assert!(ends["dir"] < 280 && ends["content"] < 280, "{ends:?}");
    assert!(
        r.result("naps", "h2")["duration_ms"].as_u64().unwrap_or(0) >= 280,
        "{r:?}"
    );
    // h1: the tasks up to the edit's read, then its write with the rest; h2: one.
    assert_eq!(channels(&r.stderr), 3, "{}", r.stderr);

    // With `ignore_errors` the tasks after the failure still run on h2, in order.
    lab.sh(1, &format!("rm -rf {dir}"));
    lab.sh(2, &format!("rm -rf {dir}"));
    let text = std::fs::read_to_string(&pf.path).expect("read");
    std::fs::write(
        &pf.path,
        text.replace(
            "    - name: breaks on h2\n",
            "    - name: breaks on h2\n      ignore_errors: true\n",
        ),
    )
    .expect("write");
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("breaks on h2", "h2")["status"], "ignored");
    assert_eq!(lab.sh(2, &format!("cat {dir}/trace")), "three\nfour\n1\n");
    assert_eq!(r.result("register holds", "h2")["status"], "ok");
    for i in [1, 2] {
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}

#[test]
fn interrupting_on_h4_stops_before_the_next_task_of_a_shared_channel() {
    let lab = Lab::get();
    let dir = uniq("intr");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h4
  gather_facts: no
  become: true
  tasks:
    - name: slow
      shell: mkdir -p {dir} && sleep 2 && touch {dir}/slow
    - name: never
      file: path={dir}/never state=touch
"#
    ));
    let args = pf.args(&lab, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = common::run_interrupted(&args, std::time::Duration::from_millis(1000));
    assert_eq!(r.code, 99, "{r:?}");
    assert_eq!(r.result("slow", "h4")["status"], "changed");
    assert!(r.results("never").is_empty(), "{r:?}");
    assert_eq!(lab.sh(4, &format!("ls {dir}")), "slow\n");
    lab.sh(4, &format!("rm -rf {dir}"));
}

/// A vaulted secret reaches the host's files and environment but never a remote command line
/// (world-readable in `/proc/*/cmdline`, scanned on the host all through the run), nor anything
/// tend prints or writes: human and JSON output at every verbosity, diffs, the audit log.
#[test]
fn a_vaulted_secret_never_shows_in_a_command_line_or_anything_tend_writes() {
    let lab = Lab::get();
    let dir = uniq("leak");
    let secret = "Zq8-leak-canary-4471";
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h3
  gather_facts: no
  vars_files: [secrets.yaml]
  tasks:
    - name: the scanner sees commands
      command: sleep 1.5
    - file: path={dir} state=directory
    - copy: content="{{{{ db_secret }}}}\n" dest={dir}/copied mode=0600
    - lineinfile: path={dir}/app.conf line="password={{{{ db_secret }}}}" create=yes
    - template: src=app.j2 dest={dir}/templated
    - name: secret in the environment
      shell: sleep 1.5; printf '%s' "$TOKEN" > {dir}/env
      environment:
        TOKEN: "{{{{ db_secret }}}}"
    - name: secret in a shell command's own text
      shell: "sleep 1.5; echo {{{{ db_secret }}}} > {dir}/inline"
    - debug: msg="the password is {{{{ db_secret }}}}"
"#
    ));
    pf.file("secrets.yaml", &format!("db_secret: {secret}\n"));
    pf.file("templates/app.j2", "token={{ db_secret }}\n");
    pf.file("pw", "leak test password\n");
    let pw = pf.dir.path().join("pw");
    let pw = pw.to_str().unwrap_or_default();
    let enc = common::run_in(
        pf.dir.path(),
        &["vault", "encrypt", "secrets.yaml", "--vault-password-file", pw],
    );
    assert_eq!(enc.code, 0, "{enc:?}");

    // The scanner's own command line must not hold the secret: it reads it from a file.
    let scan = format!("/root/tend-leak-scan-{}", std::process::id());
    let b64 = "WnE4LWxlYWstY2FuYXJ5LTQ0NzE="; // the secret, base64
    lab.sh(
        3,
        &format!(
            "mkdir -p {scan} && echo {b64} | base64 -d > {scan}/secret && echo 'sleep 1.5' > {scan}/control\n\
             nohup sh -c 'while [ ! -e {scan}/stop ]; do for f in /proc/[0-9]*/cmdline; do tr \"\\000\" \" \" < $f 2>/dev/null; echo; done > {scan}/all; \
             grep -F -f {scan}/secret {scan}/all >> {scan}/hits; grep -F -f {scan}/control {scan}/all >> {scan}/seen; done' >/dev/null 2>&1 &"
        ),
    );
    let mut outputs = String::new();
    for format in ["json", "human"] {
        let args = pf.args(&lab, &["--vault-password-file", pw, "-vv", "--diff"]);
        let args: Vec<&str> = args.iter().map(|a| if a == "json" { format } else { a }).collect();
        let r = common::run(&args);
        assert_eq!(r.code, 0, "{r:?}");
        outputs.push_str(&r.stdout);
        outputs.push_str(&r.stderr);
    }
    lab.sh(3, &format!("touch {scan}/stop; sleep 1"));
    let hits = lab.sh(
        3,
        &format!("cat {scan}/hits; echo ==; wc -l < {scan}/seen; rm -rf {scan}"),
    );
    let (hits, seen) = hits.split_once("==\n").unwrap_or_default();
    assert_eq!(hits, "", "the secret was in a command line on the host");
    assert!(
        seen.trim().parse::<u32>().unwrap_or(0) > 0,
        "the scanner saw no task run"
    );

    assert_eq!(
        lab.sh(
            3,
            &format!("cat {dir}/copied {dir}/app.conf {dir}/templated {dir}/env {dir}/inline; rm -rf {dir}")
        ),
        format!("{secret}\npassword={secret}\ntoken={secret}\n{secret}{secret}\n")
    );
    assert!(!outputs.contains(secret), "the secret was printed:\n{outputs}");
    let mut written = String::new();
    for e in std::fs::read_dir(pf.dir.path().join("log"))
        .expect("audit dir")
        .filter_map(Result::ok)
    {
        written.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    assert!(
        written.contains("secret in the environment"),
        "the audit log has the tasks: {written}"
    );
    assert!(!written.contains(secret), "the secret is in the audit log");
}

/// sudo that asks for a password: `ansible_become_password` from a vault gets the tasks root,
/// a wrong one fails the host with a message saying so, none at all fails as sudo refuses, and
/// `--ask-become-pass` without a terminal is an input error. On h4, with a user of its own.
#[test]
fn sudo_with_a_password_from_a_vault_on_h4() {
    let lab = Lab::get();
    let tag = std::process::id();
    let user = format!("tpw{}", tag % 100_000);
    let pf = PlaybookFile::new(&format!(
        "- hosts: h4\n  gather_facts: no\n  tasks:\n{}",
        common::SUDO_TASK
    ));
    assert_eq!(pf.run(&lab, &[]).code, 0);
    lab.sh(
        4,
        &format!(
            "useradd -m -s /bin/sh {user} && echo '{user}:Sudo-pw-for-{user}' | chpasswd\n\
             echo '{user} ALL=(ALL) ALL' > /etc/sudoers.d/{user} && chmod 0440 /etc/sudoers.d/{user}\n\
             mkdir -p /home/{user}/.ssh && cp /root/.ssh/authorized_keys /home/{user}/.ssh/\n\
             chown -R {user}: /home/{user}/.ssh"
        ),
    );
    let dir = pf.dir.path();
    let inv = common::single_host_inventory(&lab, dir, 4, &lab.known_hosts());
    let text = std::fs::read_to_string(&inv).expect("inventory");
    std::fs::write(
        &inv,
        text.replace("ansible_user: root", &format!("ansible_user: {user}")),
    )
    .expect("inventory");
    let file = format!("/root/tend-become-pw-{tag}");
    let playbook = dir.join("root.yaml");
    std::fs::write(
        &playbook,
        format!(
            "- hosts: h4\n  gather_facts: no\n  become: true\n  tasks:\n    - name: who\n      command: id -un\n\
             \x20   - name: root's file\n      copy: content=x dest={file} mode=0600\n"
        ),
    )
    .expect("playbook");
    std::fs::write(dir.join("pw"), "vault pw\n").expect("vault password");
    let run = |secrets: &str, extra: &[&str]| {
        std::fs::write(dir.join("secrets.yaml"), secrets).expect("secrets");
        let enc = common::run_in(
            dir,
            &["vault", "encrypt", "secrets.yaml", "--vault-password-file", "pw"],
        );
        assert_eq!(enc.code, 0, "{enc:?}");
        let mut args = vec![
            "run",
            "root.yaml",
            "-i",
            inv.to_str().unwrap_or_default(),
            "-e",
            "@secrets.yaml",
            "--vault-password-file",
            "pw",
            "--format",
            "json",
            "--log-dir",
            "log",
        ];
        args.extend_from_slice(extra);
        common::run_in(dir, &args)
    };
    let secret = format!("Sudo-pw-for-{user}");
    let r = run(&format!("ansible_become_password: {secret}\n"), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("who", "h4")["stdout_tail"], "root", "{r:?}");
    assert_eq!(
        lab.sh(4, &format!("stat -c '%U %a' {file}; rm -f {file}")),
        "root 600\n"
    );
    assert!(!r.stdout.contains(&secret) && !r.stderr.contains(&secret), "{r:?}");

    let r = run("ansible_become_password: not-the-password\n", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("refused the become password"), "{r:?}");
    assert!(!r.stdout.contains("not-the-password"), "{r:?}");
    let r = run("unrelated: 1\n", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("password is required"), "{r:?}");
    let r = run("unrelated: 1\n", &["--ask-become-pass"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("--ask-become-pass"), "{r:?}");
    lab.sh(
        4,
        &format!("userdel -r {user} 2>/dev/null; rm -f /etc/sudoers.d/{user}"),
    );
}

/// Ctrl-C during a run over 51 hosts (aliases of h1-h3, each its own SSH master): exit 99, the
/// task running finishes, no later task and no new host starts, and nothing is left behind on
/// either side: no SSH master on the control node, no remote script on the hosts, no temporary
/// file.
#[test]
fn ctrl_c_on_a_fleet_of_51_leaves_no_process_or_file_behind() {
    let lab = Lab::get();
    let id = std::process::id();
    let dir = uniq("ctrlc");
    // A known-hosts file of the run's own: its path in the masters' command lines finds them.
    let keys = common::scratch();
    let run_tag = keys.path().join("known_hosts").display().to_string();
    std::fs::copy(lab.known_hosts(), &run_tag).expect("known hosts");
    let mut inv = format!(
        "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: {}\n    ansible_ssh_common_args: \"-o UserKnownHostsFile={run_tag}\"\n  hosts:\n",
        lab.key().display(),
    );
    for n in 1..=51u32 {
        inv.push_str(&format!(
            "    a{n:02}:\n      ansible_host: {}\n",
            lab.address(1 + n % 3)
        ));
    }
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: all
  gather_facts: no
  tasks:
    - name: file
      copy: {{ dest: "{dir}/{{{{ inventory_hostname }}}}", content: "x\n" }}
    - name: slow
      command: sh -c 'sleep 3' tend-ctrlc-{id}
    - name: never
      file: {{ path: "{dir}/never-{{{{ inventory_hostname }}}}", state: touch }}
"#
    ));
    pf.file("inventory.yaml", &inv);
    for i in 1..=3 {
        lab.sh(i, &format!("mkdir -p {dir}"));
    }
    let inventory = pf.dir.path().join("inventory.yaml");
    let args = [
        "run",
        pf.path.to_str().unwrap_or_default(),
        "-i",
        inventory.to_str().unwrap_or_default(),
        "--format",
        "json",
    ];
    let r = common::run_interrupted(&args, std::time::Duration::from_millis(2500));
    assert_eq!(r.code, 99, "{r:?}");
    assert!(r.results("never").is_empty(), "{r:?}");
    // 50 hosts at once (the default `--forks`): the 51st cannot have started (no host had
    // finished its slow task when Ctrl-C came), and every host that did not start is named
    // `interrupted` in the recap (on a loaded machine, some of the first 50 may not have yet).
    let started: Vec<String> = r
        .results("file")
        .iter()
        .filter_map(|v| v["host"].as_str().map(str::to_string))
        .collect();
    assert!(!started.is_empty() && started.len() <= 50, "{r:?}");
    assert_eq!(r.recap("a51")["interrupted"], 1, "{r:?}");
    for n in 1..=51u32 {
        let name = format!("a{n:02}");
        let want = if started.contains(&name) { 0 } else { 1 };
        assert_eq!(r.recap(&name)["interrupted"], want, "{name}: {r:?}");
    }
    // No SSH master of this run on the control node.
    let masters = std::process::Command::new("pgrep")
        .args(["-f", &format!("UserKnownHostsFile={run_tag}")])
        .output()
        .expect("pgrep");
    assert!(
        masters.stdout.is_empty(),
        "masters left: {}",
        String::from_utf8_lossy(&masters.stdout)
    );
    for i in 1..=3u32 {
        let files = started
            .iter()
            .filter(|h| h[1..].parse::<u32>().is_ok_and(|n| 1 + n % 3 == i))
            .count();
        // No script of the run still on the host, no temporary file, and the files in place.
        assert_eq!(
            lab.sh(
                i,
                &format!("pgrep -f tend-ctrl[c]-{id} | wc -l; ls -A {dir} | grep -c '^\\.tend' || true; ls {dir} | grep -c '^a' ")
            ),
            format!("0\n0\n{files}\n")
        );
        lab.sh(i, &format!("rm -rf {dir}"));
    }
}
