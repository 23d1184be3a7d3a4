//! Where tend claims Ansible's behaviour, the real ansible-core runs side by side: installed
//! from PyPI into a virtualenv by tests/run.sh, which names its `bin` in `TEND_ANSIBLE_BIN`.

mod common;
use common::{run, scratch};
use std::path::PathBuf;
use std::process::Command;

fn ansible_bin() -> PathBuf {
    let dir = std::env::var_os("TEND_ANSIBLE_BIN")
        .map(PathBuf::from)
        .expect("TEND_ANSIBLE_BIN is not set: run tests/run.sh, which installs ansible-core into a virtualenv");
    assert!(
        dir.join("ansible-inventory").exists(),
        "no ansible-core in {}",
        dir.display()
    );
    dir
}

enum Tool {
    Tend,
    Ansible,
}

/// `tend inventory` or `ansible-inventory` on `inv` with `args`, as JSON (it must succeed).
fn inventory_json(tool: Tool, inv: &str, args: &[&str]) -> serde_json::Value {
    match tool {
        Tool::Ansible => {
            // ansible-inventory reads `group_vars/` beside its working directory too: the
            // inventory's own, not the checkout's (whose example vault needs a password).
            let dir = std::path::Path::new(inv).parent().unwrap_or(std::path::Path::new("/"));
            let out = Command::new(ansible_bin().join("ansible-inventory"))
                .current_dir(dir)
                .args(["-i", inv])
                .args(args)
                .output()
                .expect("ansible-inventory");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).expect("json")
        }
        Tool::Tend => {
            let mut all = vec!["inventory", "-i", inv];
            all.extend_from_slice(args);
            let r = run(&all);
            assert_eq!(r.code, 0, "{r:?}");
            serde_json::from_str(&r.stdout).expect("json")
        }
    }
}

#[test]
fn booleans_are_read_as_ansible_reads_them() {
    let values = serde_json::json!([
        "y",
        "Y",
        "yes",
        "On",
        " true ",
        "t",
        "T",
        "1",
        "TRUE",
        "0",
        "f",
        "n",
        "NO",
        "off",
        "False",
        "2",
        "",
        "truthy",
        "yes please",
        1,
        0,
        1.0,
        0.0,
        2,
        -1,
        true,
        false
    ]);
    let script = r#"import json, sys
from ansible.module_utils.parsing.convert_bool import boolean
for v in json.loads(sys.argv[1]):
    try:
        print(json.dumps(boolean(v)))
    except TypeError:
        print('null')
"#;
    let out = Command::new(ansible_bin().join("python"))
        .args(["-c", script, &values.to_string()])
        .output()
        .expect("ansible's python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ansible: Vec<Option<bool>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let tend: Vec<Option<bool>> = values
        .as_array()
        .into_iter()
        .flatten()
        .map(tend::settings::boolean)
        .collect();
    assert_eq!(tend, ansible, "for {values}");
}

#[test]
fn extra_vars_show_in_the_inventory_as_ansible_inventory_shows_them() {
    let dir = scratch();
    let inv = dir.path().join("inventory.yaml");
    std::fs::write(
        &inv,
        "all:\n  vars:\n    g: all-value\n  hosts:\n    a:\n      x: 1\n      ansible_port: 2222\n  children:\n    web:\n      vars:\n        w: web-value\n      hosts:\n        a: {}\n        b: {}\n",
    )
    .expect("inventory");
    let inv = inv.to_string_lossy().into_owned();
    let extra = [
        "-e",
        "x=3",
        "-e",
        "w=override",
        "-e",
        r#"{"n": [1, 2], "ansible_port": 22}"#,
        "-e",
        r#"url=http://{{ host }}:8080/x q="a b" j={{ 'x y' | upper }}"#,
    ];
    let ansible = |args: &[&str]| inventory_json(Tool::Ansible, &inv, &[args, &extra].concat());
    let tend = |args: &[&str]| inventory_json(Tool::Tend, &inv, &[args, &extra].concat());
    for host in ["a", "b"] {
        assert_eq!(tend(&["--host", host]), ansible(&["--host", host]), "--host {host}");
    }
    assert_eq!(
        tend(&["--list"])["_meta"]["hostvars"],
        ansible(&["--list"])["_meta"]["hostvars"]
    );
}

/// The `bool` filter reads fewer words than `boolean()` (`y` is false there): one playbook,
/// run by both tools, each writing what the filter made of every word to a file.
#[test]
fn the_bool_filter_reads_as_ansibles() {
    let dir = scratch();
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  vars:
    words: ["y", "t", "yes", "On", "1", "0", "no", "f", "off", "2", "TRUE", "", 1, 0, true, false]
  tasks:
    - name: as bool
      copy:
        dest: "{{ out }}"
        content: "{{ words | map('bool') | list | to_json }}"
"#,
    )
    .expect("playbook");
    let (by_ansible, by_tend) = run_both(dir.path(), &pb);
    let read = |p: &std::path::Path| -> Vec<bool> {
        serde_json::from_str(&std::fs::read_to_string(p).expect("written")).expect("a JSON list of booleans")
    };
    let ansible = read(&by_ansible);
    assert_eq!(ansible.len(), 16, "{ansible:?}");
    assert_eq!(read(&by_tend), ansible);
}

/// Runs `pb` with both tools ([`run_both`]); the files they wrote must be equal. Returns
/// Ansible's text and the path tend wrote.
fn same_output(dir: &std::path::Path, pb: &std::path::Path) -> (String, std::path::PathBuf) {
    let (by_ansible, by_tend) = run_both(dir, pb);
    let ansible = std::fs::read_to_string(&by_ansible).expect("ansible's");
    assert_eq!(std::fs::read_to_string(&by_tend).expect("tend's"), ansible);
    (ansible, by_tend)
}

/// Writes `(relative path, content)` files under `dir`.
fn write_files(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
        std::fs::write(p, text).expect("file");
    }
}

/// Runs playbook `pb` with ansible-playbook and with tend on the control node (`out` is the
/// file each writes); returns the two files.
fn run_both(dir: &std::path::Path, pb: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let inv = dir.join("inventory.yaml");
    // Ansible runs its modules with the virtualenv's Python, not whatever `python3` is here.
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: {}\n",
            ansible_bin().join("python").display()
        ),
    )
    .expect("inventory");
    let (by_ansible, by_tend) = (dir.join("ansible.json"), dir.join("tend.json"));
    let out = Command::new(ansible_bin().join("ansible-playbook"))
        .arg("-i")
        .arg(&inv)
        .arg(pb)
        .arg("-e")
        .arg(format!("out={}", by_ansible.display()))
        .output()
        .expect("ansible-playbook");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let r = run(&[
        "run",
        pb.to_str().unwrap_or_default(),
        "-i",
        inv.to_str().unwrap_or_default(),
        "-e",
        &format!("out={}", by_tend.display()),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    (by_ansible, by_tend)
}

/// Every `with_<lookup>` loop gives the items Ansible's lookup gives (one playbook, run by both
/// tools, each writing every loop's items to a file).
#[test]
fn with_loops_give_ansibles_items() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("files")).expect("files");
    for f in ["b.conf", "a.conf", "c.txt"] {
        std::fs::write(dir.path().join("files").join(f), "x").expect("file");
    }
    std::fs::write(dir.path().join("files/default.yml"), "x").expect("file");
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  vars:
    users:
      - {name: ann, keys: [k1, k2]}
      - {name: bob, keys: [k3]}
      - {name: cid}
    ports: {http: 80, https: 443}
  tasks:
    - debug: {msg: "{{ item }}"}
      with_items: [[1, 2], 3, [4, [5]]]
      register: items
    - debug: {msg: "{{ item }}"}
      with_indexed_items: [a, b]
      register: indexed
    - debug: {msg: "{{ item }}"}
      with_dict: "{{ ports }}"
      register: dict
    - debug: {msg: "{{ item }}"}
      with_nested: [[a, b], [1, 2]]
      register: nested
    - debug: {msg: "{{ item }}"}
      with_together: [[a, b, c], [1, 2]]
      register: together
    - debug: {msg: "{{ item }}"}
      with_subelements: ["{{ users }}", keys, {skip_missing: true}]
      register: sub
    - debug: {msg: "{{ item }}"}
      with_sequence: start=2 end=11 stride=3 format=web%02d
      register: seq
    - debug: {msg: "{{ item }}"}
      with_sequence: count=3
      register: seqcount
    - debug: {msg: "{{ item | basename }}"}
      with_fileglob: ["*.txt"]
      register: glob
    - debug: {msg: "{{ item | basename }}"}
      with_first_found: [missing.yml, default.yml]
      register: first
    - copy:
        dest: "{{ out }}"
        content: "{{ [items.results | map(attribute='msg') | list, indexed.results | map(attribute='msg') | list, dict.results | map(attribute='msg') | list, nested.results | map(attribute='msg') | list, together.results | map(attribute='msg') | list, sub.results | map(attribute='msg') | list, seq.results | map(attribute='msg') | list, seqcount.results | map(attribute='msg') | list, glob.results | map(attribute='msg') | list, first.results | map(attribute='msg') | list] | to_json }}"
"#,
    )
    .expect("playbook");
    let (by_ansible, by_tend) = run_both(dir.path(), &pb);
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).expect("written")).expect("JSON")
    };
    let ansible = read(&by_ansible);
    assert_eq!(ansible.as_array().map(Vec::len), Some(10), "{ansible}");
    assert_eq!(read(&by_tend), ansible);
}

/// Roles as Galaxy roles use them: `meta/main.yml` dependencies with parameters (a dependency
/// with other parameters runs again), defaults under play vars, `import_role` with
/// `tasks_from`/`vars_from`, `include_role` in a loop, a role's handler notified. Both tools
/// append a line per task to one file; the files must be equal.
#[test]
fn roles_with_dependencies_and_task_level_imports_run_as_in_ansible() {
    let dir = scratch();
    let files: &[(&str, &str)] = &[
        ("roles/common/defaults/main.yml", "greeting: hello\n"),
        (
            "roles/common/tasks/main.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"common {{ greeting }} for {{ who | default('nobody') }}\"}\n",
        ),
        (
            "roles/common/tasks/extra.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"common extra {{ extra_var }}\"}\n",
        ),
        ("roles/common/vars/other.yml", "extra_var: from-other\n"),
        (
            "roles/web/meta/main.yml",
            "dependencies:\n  - role: common\n    who: web\n",
        ),
        ("roles/web/defaults/main.yml", "web_port: 8080\n"),
        (
            "roles/web/tasks/main.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"web on {{ web_port }}\"}\n  changed_when: true\n  notify: web handler\n",
        ),
        (
            "roles/web/handlers/main.yml",
            "- name: web handler\n  lineinfile: {path: \"{{ out }}\", create: true, line: \"web handler ran\"}\n",
        ),
        (
            "roles/db/meta/main.yml",
            "dependencies:\n  - {role: common, who: db}\n  - {role: common, who: db}\n",
        ),
        ("roles/ports/vars/main.yml", "port: 80\n"),
        (
            "roles/ports/tasks/main.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"inside ports {{ port }}\"}\n",
        ),
        (
            "roles/db/tasks/main.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"db after common\"}\n",
        ),
    ];
    write_files(dir.path(), files);
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  vars:
    web_port: 9090
    port: 8080
  roles:
    - web
    - db
  tasks:
    - include_role: {name: ports}
      when: false
    - lineinfile: {path: "{{ out }}", create: true, line: "after a skipped include_role {{ port }}"}
    - include_role: {name: ports}
    - lineinfile: {path: "{{ out }}", create: true, line: "after an include_role {{ port }}"}
    - import_role:
        name: common
        tasks_from: extra
        vars_from: other
    - include_role:
        name: common
      vars:
        who: "{{ item }}"
      loop: [x, y]
"#,
    )
    .expect("playbook");
    let (ansible, _) = same_output(dir.path(), &pb);
    assert!(ansible.contains("web handler ran"), "{ansible}");
}

/// Templated include paths decided as the include runs (per item here), `include_vars` with a
/// templated file and with `with_first_found`: the same lines from both tools.
#[test]
fn templated_includes_and_include_vars_run_as_in_ansible() {
    let dir = scratch();
    let files: &[(&str, &str)] = &[
        (
            "step-a.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"step a with {{ item }} {{ colour }}\"}\n",
        ),
        (
            "step-b.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"step b with {{ item }} {{ colour }}\"}\n",
        ),
        ("vars/Debian.yml", "colour: blue\n"),
        ("vars/default.yml", "size: large\n"),
        (
            "Debian.yml",
            "- lineinfile: {path: \"{{ out }}\", create: true, line: \"family tasks\"}\n",
        ),
        // Beside the tasks files, a file that is no task list: only an error if named.
        ("requirements.yml", "collections:\n  - name: community.mysql\n"),
    ];
    write_files(dir.path(), files);
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  vars:
    family: Debian
  tasks:
    - include_vars: "vars/{{ family }}.yml"
    - include_vars: "{{ item }}"
      with_first_found: [RedHat.yml, default.yml]
    - include_tasks: "step-{{ item }}.yml"
      loop: [a, b]
    - include_tasks: "{{ family }}.yml"
    - lineinfile: {path: "{{ out }}", create: true, line: "size {{ size }}"}
    - command: "false"
      loop: [{optional: true}]
      ignore_errors: "{{ item.optional }}"
    - debug: {msg: hidden}
      no_log: "{{ hide }}"
      when: hide is defined
    - lineinfile: {path: "{{ out }}", create: true, line: "went on"}
"#,
    )
    .expect("playbook");
    let (ansible, _) = same_output(dir.path(), &pb);
    assert!(ansible.contains("step b with b blue"), "{ansible}");
    assert!(ansible.contains("went on"), "{ansible}");
}

/// Lookups, the `comment` filter and `ansible_managed` render the same text in both tools.
#[test]
fn lookups_and_comment_render_as_in_ansible() {
    let dir = scratch();
    write_files(
        dir.path(),
        &[
            ("files/note.txt", "a note\n\n"),
            ("files/b.conf", "x"),
            ("files/a.conf", "x"),
            ("templates/managed.j2", "{{ ansible_managed | comment }}\nport 80\n"),
            (
                "templates/part.j2",
                "{% for p in ports %}\nlisten {{ p }} {{ greeting }}\n{% endfor %}\nend\n",
            ),
        ],
    );
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  vars:
    greeting: hi
    two_lines: "one\ntwo"
    flag: true
    nothing: ~
    ports: [80, 443]
  tasks:
    - copy:
        dest: "{{ out }}"
        content: |
          [{{ lookup('file', 'note.txt') }}]
          {{ lookup('env', 'HOME') }}
          {{ lookup('pipe', 'echo piped') }}
          {{ query('fileglob', '*.conf') | map('basename') | sort | join(' ') }}
          {{ lookup('vars', 'greeting') }}
          {{ query('items', [1, [2, 3]]) | join(',') }}
          {{ lookup('items', ['a', 'b']) }}
          {{ lookup('password', 'pw.txt length=12') | length }} {{ lookup('password', '/dev/null length=7 chars=digits') | length }}
          {{ lookup('ansible.builtin.env', 'HOME') }}
          {{ lookup('template', 'part.j2') }}|
          {{ 'v1.2' | regex_replace('^v(\d+)\.(\d+)$', '\2.\1') }}
          {{ two_lines | comment }}
          {{ 'x' | comment('c') }}
          {{ 'x' | comment('cblock') }}
          {{ 'x' | comment('xml') }}
          {{ 'x' | comment(decoration='; ', prefix_count=2) }}
          {{ flag }} {{ [1, 'a', none, "it's"] }} {{ {'k': true} }} [{{ nothing }}]
    - template:
        src: managed.j2
        dest: "{{ out }}.managed"
"#,
    )
    .expect("playbook");
    let (ansible, by_tend) = same_output(dir.path(), &pb);
    assert!(ansible.contains("[a note]"), "{ansible}");
    assert!(
        ansible.contains("listen 80 hi\nlisten 443 hi\nend\n|\n2.1\n"),
        "{ansible}"
    );
    // The password file, relative to the playbook's directory, holds the password both read.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pw.txt"))
            .expect("pw")
            .split_whitespace()
            .next()
            .map(str::len),
        Some(12)
    );
    let managed = |p: &std::path::Path| std::fs::read_to_string(format!("{}.managed", p.display())).expect("template");
    assert_eq!(managed(&by_tend), managed(&by_tend.with_file_name("ansible.json")));
}

/// `file: state=directory` gives the directories it makes on the way the same owner, group
/// and mode, as Ansible does.
#[test]
fn directories_made_on_the_way_get_the_same_owner_and_mode() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = scratch();
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  tasks:
    - file: {path: "{{ out }}.d/a/b/c", state: directory, mode: "0750", owner: nobody, group: nogroup}
    - file: {path: "{{ out }}.d/a/b/c", state: directory, mode: "0750", owner: nobody, group: nogroup}
      register: again
    - copy: {dest: "{{ out }}", content: "{{ again.changed }}"}
"#,
    )
    .expect("playbook");
    let (changed_again, by_tend) = same_output(dir.path(), &pb);
    assert_eq!(changed_again, "False");
    let by_ansible = by_tend.with_file_name("ansible.json");
    for sub in ["a", "a/b", "a/b/c"] {
        let meta = |p: &std::path::Path| {
            let m = std::fs::metadata(format!("{}.d/{sub}", p.display())).expect("made");
            (m.mode() & 0o7777, m.uid(), m.gid())
        };
        assert_eq!(meta(&by_tend), meta(&by_ansible), "{sub}");
        assert_eq!(meta(&by_tend).0, 0o750, "{sub}");
    }
}

/// An INI inventory as existing projects write it (sections, `:vars`, `:children` declared
/// before their children, ranges, ports, quoted and typed values, comments, ungrouped hosts,
/// `group_vars/` beside it): tend and ansible-inventory see the same hosts, groups and values.
#[test]
fn ini_inventories_are_read_as_ansible_inventory_reads_them() {
    let dir = scratch();
    let inv = dir.path().join("hosts");
    std::fs::write(
        &inv,
        r#"# The shop, INI style
loose1 ansible_host=10.0.0.9   # a trailing comment
[lb]
lb1 ansible_host=10.0.0.2 ansible_port=2222

[app]
app[01:03].shop.internal tomcat_heap=512 java_opts="-Xms256m -Xmx512m"
app4.shop.internal:2200 weight=2.5 enabled=True tags="['a', 'b']" mode=0644

[db_primary]
db1 ansible_user=deploy server_id=1 pass=ab#cd

[db:children]
db_primary
db_replica

[db_replica]
db2

[ranged]
edge[1:2]:2222 role=edge
[fe80::1]:2200

[db:vars]
mysql_port=3306 # the port
mysql_root = s3cr et
backup_days=[1, 7, 30]
flags={'innodb': True, 'slow': None}

[all:vars]
ansible_python_interpreter=/usr/bin/python3
env=prod
"#,
    )
    .expect("inventory");
    std::fs::create_dir_all(dir.path().join("group_vars")).expect("group_vars");
    std::fs::write(dir.path().join("group_vars/app.yaml"), "deploy_dir: /srv/shop\n").expect("group_vars");
    let inv = inv.to_string_lossy().into_owned();
    let (t, a) = (
        inventory_json(Tool::Tend, &inv, &["--list"]),
        inventory_json(Tool::Ansible, &inv, &["--list"]),
    );
    assert_eq!(t["_meta"]["hostvars"], a["_meta"]["hostvars"]);
    for group in [
        "all",
        "ungrouped",
        "lb",
        "app",
        "db",
        "db_primary",
        "db_replica",
        "ranged",
    ] {
        let hosts = |v: &serde_json::Value| {
            let mut h: Vec<String> = v[group]["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            h.sort();
            h
        };
        let children = |v: &serde_json::Value| {
            let mut c: Vec<String> = v[group]["children"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            c.sort();
            c
        };
        assert_eq!(hosts(&t), hosts(&a), "hosts of {group}");
        assert_eq!(children(&t), children(&a), "children of {group}");
    }
    assert_eq!(
        t["_meta"]["hostvars"]["app4.shop.internal"]["ansible_port"],
        serde_json::json!(2200)
    );

    // Bad INI: one message naming the line and column, exit 4.
    for (text, want) in [
        ("[web\nh1\n", "hosts:1:1: invalid section `[web`"),
        (
            "[web:kids]\nh1\n",
            "hosts:1:1: section `[web:kids]` has unknown type `kids`",
        ),
        (
            "[web]\nh1 novalue\n",
            "hosts:2:4: expected `key=value` after the host, found `novalue`",
        ),
        (
            "[web:vars]\nx=1\n",
            "hosts:1:2: section `[web:vars]` is for a group defined nowhere",
        ),
        (
            "[all:children]\nwbe\n[web]\nh1\n",
            "hosts:2:1: `wbe` is listed as a child but no section defines it",
        ),
    ] {
        std::fs::write(&inv, text).expect("inventory");
        let r = run(&["inventory", "-i", &inv, "--list"]);
        assert_eq!(r.code, 4, "{text}: {r:?}");
        assert!(r.stderr.contains(want), "{text}:\n{}", r.stderr);
        let out = Command::new(ansible_bin().join("ansible-inventory"))
            .current_dir(dir.path())
            .args(["-i", &inv, "--list"])
            .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "1")
            .output()
            .expect("ansible-inventory");
        assert!(!out.status.success(), "ansible-inventory accepts {text:?}");
    }
}

/// `yum_repository` writes the same .repo files as Ansible's (into a directory of the control
/// node through `reposdir`): two repositories in one file, one removed, a file emptied.
#[test]
fn yum_repository_writes_the_files_ansible_writes() {
    let dir = scratch();
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  vars:
    d: "{{ out }}.d"
  tasks:
    - file: path={{ d }} state=directory
    - yum_repository: &epel
        name: epel
        description: EPEL YUM repo
        baseurl: [https://a.example.org/epel/$releasever/, https://b.example.org/epel/$releasever/]
        gpgkey: https://a.example.org/RPM-GPG-KEY
        exclude: [kernel*, foo]
        enabled: true
        gpgcheck: yes
        priority: "10"
        file: shared
        reposdir: "{{ d }}"
    - yum_repository:
        name: extra
        description: Extra
        mirrorlist: https://m.example.org/list
        skip_if_unavailable: true
        file: shared
        reposdir: "{{ d }}"
    - yum_repository:
        name: gone
        description: Gone soon
        baseurl: file:///srv/gone
        reposdir: "{{ d }}"
    - yum_repository: *epel
      register: again
    - yum_repository: name=gone state=absent reposdir={{ d }}
    - shell: "cat {{ d }}/shared.repo > {{ out }}; ls {{ d }} >> {{ out }}; echo {{ again.changed }} >> {{ out }}"
"#,
    )
    .expect("playbook");
    let (ansible, _) = same_output(dir.path(), &pb);
    assert!(
        ansible.contains("baseurl = https://a.example.org/epel/$releasever/\n\thttps://b"),
        "{ansible}"
    );
    assert!(ansible.ends_with("\nshared.repo\nFalse\n"), "{ansible}");
}

/// `cron` writes a cron file line for line as Ansible does (markers, user field, variables,
/// special times, disabled jobs, a job replaced and one removed). Ansible insists on finding a
/// `crontab` program even for a cron file, so a stand-in is put on its PATH.
#[test]
fn cron_files_are_written_as_ansible_writes_them() {
    let dir = scratch();
    let bin = dir.path().join("bin");
    write_files(dir.path(), &[("bin/crontab", "#!/bin/sh\nexit 1\n")]);
    std::fs::set_permissions(bin.join("crontab"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        format!(
            r##"- hosts: localhost
  gather_facts: no
  environment:
    PATH: "{}:/usr/bin:/bin:/usr/sbin:/sbin"
  tasks:
    - cron: {{name: backup, minute: "0", hour: "5,2", job: "/usr/local/bin/backup > /dev/null", user: root, cron_file: "{{{{ out }}}}"}}
    - cron: {{name: warm, special_time: reboot, job: /usr/local/bin/warm, user: www-data, disabled: true, cron_file: "{{{{ out }}}}"}}
    - cron: {{name: old, job: /bin/true, user: root, cron_file: "{{{{ out }}}}"}}
    - cron: {{name: PATH, env: true, job: /usr/bin:/bin, user: root, cron_file: "{{{{ out }}}}"}}
    - cron: {{name: MAILTO, env: true, job: ops@example.com, insertafter: PATH, user: root, cron_file: "{{{{ out }}}}"}}
    - cron: {{name: backup, minute: "30", hour: "1", weekday: "1-5", job: "/usr/local/bin/backup > /dev/null", user: root, cron_file: "{{{{ out }}}}"}}
    - cron: {{name: old, state: absent, cron_file: "{{{{ out }}}}"}}
    - cron: {{name: backup, minute: "30", hour: "1", weekday: "1-5", job: "/usr/local/bin/backup > /dev/null", user: root, cron_file: "{{{{ out }}}}"}}
      register: again
    - lineinfile: {{path: "{{{{ out }}}}", line: "# again {{{{ again.changed }}}} {{{{ again.jobs | join(',') }}}} {{{{ again.envs | join(',') }}}}"}}
"##,
            bin.display()
        ),
    )
    .expect("playbook");
    let (text, _) = same_output(dir.path(), &pb);
    assert_eq!(
        text,
        "PATH=\"/usr/bin:/bin\"\nMAILTO=\"ops@example.com\"\n#Ansible: backup\n30 1 * * 1-5 root /usr/local/bin/backup > /dev/null\n#Ansible: warm\n#@reboot www-data /usr/local/bin/warm\n# again False backup,warm PATH,MAILTO\n"
    );
}

/// `ini_file` (community.general, from the `ansible` package) edits a file line for line as
/// Ansible's does: a commented-out option reused, options added at the end of their section
/// before trailing comments, a repeated option made exclusive or kept, values without `=`,
/// sections picked by `section_has_values`, removed options and sections, CRLF and no final
/// newline; each task's `changed` and `msg` are compared too.
#[test]
fn ini_file_edits_as_ansibles() {
    let dir = scratch();
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        r#"- hosts: localhost
  gather_facts: no
  vars:
    f: "{{ out }}.ini"
  tasks:
    - copy:
        dest: "{{ f }}"
        content: "top = 1\r\n[mysqld]\r\nport = 3306\r\n# bind-address = 127.0.0.1\r\n;skip-name-resolve\r\n\r\n# end of mysqld\r\n[client]\r\nport=3306\r\nport = 3307\r\n[peer]\r\nname = a\r\nurl = x\r\n[peer]\r\nname = b\r\nurl = y"
    - community.general.ini_file: {path: "{{ f }}", section: mysqld, option: bind-address, value: 0.0.0.0}
      register: r1
    - community.general.ini_file: {path: "{{ f }}", section: mysqld, option: max_connections, value: "200"}
      register: r2
    - ini_file: {path: "{{ f }}", section: mysqld, option: skip-name-resolve, allow_no_value: true}
      register: r3
    - ini_file: {path: "{{ f }}", section: client, option: port, value: "3308"}
      register: r4
    - ini_file: {path: "{{ f }}", section: mysqld, option: log, values: [a, b, a], exclusive: false}
      register: r5
    - ini_file: {path: "{{ f }}", section: peer, option: url, value: z, section_has_values: [{option: name, value: b}]}
      register: r6
    - ini_file: {path: "{{ f }}", section: peer, option: url, value: w, section_has_values: [{option: name, value: c}]}
      register: r7
    - ini_file: {path: "{{ f }}", section: null, option: top, value: "2", no_extra_spaces: true}
      register: r8
    - ini_file: {path: "{{ f }}", section: mysqld, option: port, value: "3306 ", ignore_spaces: true}
      register: r9
    - ini_file: {path: "{{ f }}", section: mysqld, option: log, value: a, state: absent, exclusive: false}
      register: r10
    - ini_file: {path: "{{ f }}", section: client, state: absent}
      register: r11
    - ini_file: {path: "{{ f }}", section: mysqld, option: bind-address, value: 0.0.0.0}
      register: r12
    - ini_file: {path: "{{ f }}.new", section: s, option: o, value: v, mode: "0600"}
      register: r13
    - shell: |
        { cat "{{ f }}"; echo ---; cat "{{ f }}.new"; stat -c %a "{{ f }}.new"; } > "{{ out }}"
        {% for r in [r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13] %}
        echo "{{ r.changed }} {{ r.msg }}" >> "{{ out }}"
        {% endfor %}
"#,
    )
    .expect("playbook");
    let (ansible, _) = same_output(dir.path(), &pb);
    assert!(ansible.contains("bind-address = 0.0.0.0\n"), "{ansible}");
    assert!(ansible.contains("False OK\n"), "{ansible}");
}
