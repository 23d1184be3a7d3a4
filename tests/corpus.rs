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
