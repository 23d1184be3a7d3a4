//! Real-world Ansible content (tests/corpus/: public Galaxy roles, unmodified) loads and checks
//! as it is: every playbook there passes `tend validate`. Tasks for other systems that name
//! modules tend does not have (`yum`, `pkgng`, ...) load and are listed, not refused.

mod common;
use common::{repo, run_in};

#[test]
fn every_corpus_playbook_validates() {
    let dir = repo().join("tests/corpus");
    let mut playbooks: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    playbooks.sort();
    assert!(playbooks.len() >= 10, "{} playbooks", playbooks.len());
    let mut failures = Vec::new();
    for pb in &playbooks {
        let name = pb
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = run_in(&dir, &["validate", &name]);
        if r.code != 0 || !r.stderr.contains("ok: 1 playbook") {
            failures.push(format!("{name}: exit {}\n{}", r.code, r.stderr));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} do not validate:\n{}",
        failures.len(),
        playbooks.len(),
        failures.join("\n")
    );
}

/// The example playbooks of ansible/ansible-examples for this stack (LAMP, HAProxy, Tomcat,
/// WordPress on Nginx; CentOS/RHEL and Debian flavours, written for Ansible 1.x and 2.x: legacy
/// `include`, `k=v` arguments, `with_items`, get_url's removed `sha256sum`), unmodified,
/// validate with their own INI inventory; the Debian WordPress role asks Ansible's `get_url` for a
/// download without `dest`, which ansible-core refuses too when the task runs: tend says so
/// before anything runs.
#[test]
fn the_ansible_examples_validate_with_their_ini_inventories() {
    let dir = repo().join("tests/corpus/examples");
    let broken = "roles/wordpress/tasks/main.yml:18:3: module `get_url` needs parameter `dest`";
    let cases = [
        ("lamp_simple", "site.yml", "hosts", None),
        ("lamp_simple_rhel7", "site.yml", "hosts", None),
        ("lamp_haproxy", "site.yml", "hosts", None),
        ("lamp_haproxy", "rolling_update.yml", "hosts", None),
        ("tomcat-standalone", "site.yml", "hosts", None),
        ("wordpress-nginx", "site.yml", "hosts", Some(broken)),
        ("wordpress-nginx_rhel7", "site.yml", "hosts.example", None),
    ];
    let mut failures = Vec::new();
    for (example, playbook, inventory, refused) in cases {
        let r = run_in(&dir.join(example), &["validate", playbook, "-i", inventory]);
        let as_expected = match refused {
            None => r.code == 0 && r.stderr.contains("ok: 1 playbook"),
            Some(why) => r.code == 4 && r.stderr.starts_with(&format!("error: {why}\n")),
        };
        if !as_expected {
            failures.push(format!("{example}/{playbook}: exit {}\n{}", r.code, r.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
