//! File and network modules against real lab hosts (only h2 and h3, under unique paths in
//! /root): the state on the host byte for byte, a second run changes nothing, `--check` leaves
//! the host alone and `--diff` shows the real before/after text.

mod common;
use common::{Lab, PlaybookFile, Run};

/// A directory on the hosts that no other test (or person) uses.
fn unique(name: &str) -> String {
    format!("/root/tend-net-{name}-{}", std::process::id())
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn lineinfile_edits_like_ansible() {
    let lab = Lab::get();
    let d = unique("lineinfile");
    lab.sh(
        2,
        &format!(
            "rm -rf {d}; mkdir -p {d}; printf 'ServerRoot x\\n#Listen 80\\nUser www\\nSELINUX=disabled\\n%%wheel ALL\\n' > {d}/httpd.conf; chmod 600 {d}/httpd.conf"
        ),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: listen
      lineinfile:
        path: {d}/httpd.conf
        regexp: '^Listen '
        insertafter: '^#Listen '
        line: Listen 8080
    - name: selinux
      lineinfile:
        dest: {d}/httpd.conf
        regexp: '^SELINUX=(disabled|permissive)$'
        line: 'SELINUX=enforcing # was \1'
        backrefs: true
    - name: wheel
      lineinfile:
        path: {d}/httpd.conf
        regexp: '^%wheel'
        state: absent
    - name: new file
      lineinfile:
        path: {d}/sub/dir/hosts
        line: 10.0.0.1 db
        create: true
        mode: '0640'
"#
    ));
    let r = pf.run(&lab, &["--diff"]);
    ok(&r);
    let listen = r.result("listen", "h2");
    assert_eq!(listen["status"], "changed");
    assert_eq!(listen["msg"], "line added");
    assert_eq!(
        listen["diff"],
        serde_json::json!([{
            "path": format!("{d}/httpd.conf"),
            "before": "ServerRoot x\n#Listen 80\nUser www\nSELINUX=disabled\n%wheel ALL\n",
            "after": "ServerRoot x\n#Listen 80\nListen 8080\nUser www\nSELINUX=disabled\n%wheel ALL\n",
        }])
    );
    assert_eq!(r.result("selinux", "h2")["msg"], "line replaced");
    assert_eq!(r.result("wheel", "h2")["msg"], "1 line(s) removed");
    assert_eq!(r.result("new file", "h2")["msg"], "line added");
    assert_eq!(
        lab.sh(2, &format!("cat {d}/httpd.conf; stat -c %a {d}/httpd.conf")),
        "ServerRoot x\n#Listen 80\nListen 8080\nUser www\nSELINUX=enforcing # was disabled\n600\n"
    );
    assert_eq!(
        lab.sh(2, &format!("cat {d}/sub/dir/hosts; stat -c %a {d}/sub/dir/hosts")),
        "10.0.0.1 db\n640\n"
    );

    // Unchanged playbook: nothing to do.
    let again = pf.run(&lab, &["--diff"]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    assert!(again.result("listen", "h2").get("diff").is_none());

    // Someone edits the file: --check reports the change, with its diff, and writes nothing.
    lab.sh(
        2,
        &format!("sed -i 's/^Listen 8080$/Listen 9090/' {d}/httpd.conf; chmod 644 {d}/sub/dir/hosts"),
    );
    let before = lab.sh(2, &format!("sha256sum {d}/httpd.conf; stat -c %a {d}/sub/dir/hosts"));
    let check = pf.run(&lab, &["--check", "--diff"]);
    ok(&check);
    assert_eq!(check.total_changed(), 2, "{check:?}");
    assert_eq!(check.result("listen", "h2")["msg"], "line replaced");
    assert_eq!(
        check.result("listen", "h2")["diff"][0]["after"],
        "ServerRoot x\n#Listen 80\nListen 8080\nUser www\nSELINUX=enforcing # was disabled\n"
    );
    assert_eq!(
        check.result("new file", "h2")["msg"],
        "ownership, perms or SE linux context changed"
    );
    assert_eq!(
        lab.sh(2, &format!("sha256sum {d}/httpd.conf; stat -c %a {d}/sub/dir/hosts")),
        before
    );
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn lineinfile_failures_and_guard() {
    let lab = Lab::get();
    let d = unique("lineguard");
    lab.sh(3, &format!("rm -rf {d}; mkdir -p {d}; printf 'a\\n' > {d}/f"));
    // Missing file without `create`: Ansible's message. A validation command that changes the
    // file under our feet: the write is refused, the other change is kept.
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h3
  gather_facts: false
  tasks:
    - name: missing
      lineinfile:
        path: {d}/nope
        line: x
      ignore_errors: true
    - name: raced
      lineinfile:
        path: {d}/f
        line: b
        validate: "sh -c 'echo racer >> {d}/f' %s"
      ignore_errors: true
    - name: bad validate
      lineinfile:
        path: {d}/f
        line: c
        validate: "false"
      ignore_errors: true
"#
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    let missing = r.result("missing", "h3");
    assert_eq!(missing["status"], "ignored");
    assert_eq!(missing["msg"], format!("Destination {d}/nope does not exist !"));
    let raced = r.result("raced", "h3");
    assert_eq!(raced["status"], "ignored");
    assert_eq!(
        raced["msg"],
        format!("{d}/f changed on the host while it was being edited; nothing was written (run again)")
    );
    assert_eq!(r.result("bad validate", "h3")["msg"], "validate must contain %s: false");
    assert_eq!(lab.sh(3, &format!("cat {d}/f; ls -A {d}")), "a\nracer\nf\n");
    lab.sh(3, &format!("rm -rf {d}"));
}

#[test]
fn blockinfile_inserts_updates_and_removes() {
    let lab = Lab::get();
    let d = unique("blockinfile");
    lab.sh(
        2,
        &format!("rm -rf {d}; mkdir -p {d}; printf '<html>\\n<body>\\n</body>\\n</html>\\n' > {d}/index.html; ln -s index.html {d}/link.html"),
    );
    let playbook = |block: &str, state: &str| {
        format!(
            r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: block
      blockinfile:
        path: {d}/link.html
        marker: "<!-- {{mark}} ANSIBLE MANAGED BLOCK -->"
        insertafter: "<body>"
        block: |
{block}
        state: {state}
        backup: true
    - name: sshd
      blockinfile:
        path: {d}/sshd_config
        create: true
        block: |
          Match User ansible-agent
          PasswordAuthentication no
"#
        )
    };
    let pf = PlaybookFile::new(&playbook("          <h1>Welcome</h1>", "present"));
    let r = pf.run(&lab, &["--diff"]);
    ok(&r);
    let block = r.result("block", "h2");
    assert_eq!(block["msg"], "Block inserted");
    assert_eq!(
        block["diff"],
        serde_json::json!([{
            "path": format!("{d}/link.html"),
            "before": "<html>\n<body>\n</body>\n</html>\n",
            "after": "<html>\n<body>\n<!-- BEGIN ANSIBLE MANAGED BLOCK -->\n<h1>Welcome</h1>\n<!-- END ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n",
        }])
    );
    assert_eq!(r.result("sshd", "h2")["msg"], "File created");
    // The symlink still points at the edited file, which was backed up first.
    assert_eq!(
        lab.sh(
            2,
            &format!("readlink {d}/link.html; cat {d}/index.html {d}/sshd_config; ls {d} | grep -c '^index.html.*~$'")
        ),
        "index.html\n<html>\n<body>\n<!-- BEGIN ANSIBLE MANAGED BLOCK -->\n<h1>Welcome</h1>\n<!-- END ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n\
         # BEGIN ANSIBLE MANAGED BLOCK\nMatch User ansible-agent\nPasswordAuthentication no\n# END ANSIBLE MANAGED BLOCK\n1\n"
    );
    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");

    // New block text: replaced in place, the old file kept as a backup.
    let pf2 = PlaybookFile::new(&playbook("          <h1>Hello</h1>\n          <p>x</p>", "present"));
    let check = pf2.run(&lab, &["--check"]);
    ok(&check);
    assert_eq!(check.result("block", "h2")["status"], "changed");
    assert!(lab.sh(2, &format!("cat {d}/index.html")).contains("<h1>Welcome</h1>"));
    let r = pf2.run(&lab, &[]);
    ok(&r);
    assert_eq!(
        lab.sh(2, &format!("cat {d}/index.html; ls {d} | grep -c '^index.html.*~$'")),
        "<html>\n<body>\n<!-- BEGIN ANSIBLE MANAGED BLOCK -->\n<h1>Hello</h1>\n<p>x</p>\n<!-- END ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n2\n"
    );
    // state=absent takes the block out again.
    let pf3 = PlaybookFile::new(&playbook("          x", "absent"));
    let r = pf3.run(&lab, &["--diff"]);
    ok(&r);
    assert_eq!(r.result("block", "h2")["msg"], "Block removed");
    assert_eq!(
        lab.sh(2, &format!("cat {d}/index.html")),
        "<html>\n<body>\n</body>\n</html>\n"
    );
    assert_eq!(pf3.run(&lab, &[]).total_changed(), 0);
    lab.sh(2, &format!("rm -rf {d}"));
}
