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
    ];
    let ansible = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(ansible_bin().join("ansible-inventory"))
            .args(["-i", &inv])
            .args(args)
            .args(extra)
            .output()
            .expect("ansible-inventory");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let tend = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["inventory", "-i", &inv];
        all.extend_from_slice(args);
        all.extend_from_slice(&extra);
        let r = run(&all);
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str(&r.stdout).expect("json")
    };
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
    let inv = dir.path().join("inventory.yaml");
    // Ansible runs its modules with the virtualenv's Python, not whatever `python3` is here.
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: {}\n",
            ansible_bin().join("python").display()
        ),
    )
    .expect("inventory");
    let (by_ansible, by_tend) = (dir.path().join("ansible.json"), dir.path().join("tend.json"));
    let out = Command::new(ansible_bin().join("ansible-playbook"))
        .arg("-i")
        .arg(&inv)
        .arg(&pb)
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
    let read = |p: &std::path::Path| -> Vec<bool> {
        serde_json::from_str(&std::fs::read_to_string(p).expect("written")).expect("a JSON list of booleans")
    };
    let ansible = read(&by_ansible);
    assert_eq!(ansible.len(), 16, "{ansible:?}");
    assert_eq!(read(&by_tend), ansible);
}
