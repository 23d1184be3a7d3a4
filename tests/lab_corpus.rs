//! Six roles of the corpus (tests/corpus/: public Galaxy roles, unmodified) run on two fresh lab
//! hosts, h5 by tend and h6 by the real `ansible-playbook` (ansible-core from PyPI in the
//! virtualenv tests/run.sh makes, named by `TEND_ANSIBLE_BIN`), and leave both hosts in the
//! same state: the same packages installed, files under /etc (content, mode, owner), users,
//! groups and running services. Only this test uses h5 and h6.

mod common;
use common::{Lab, repo, run_in};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// What a role can change on a host, one fact per line, sorted.
const SNAPSHOT: &str = r#"export LC_ALL=C
dpkg-query -W -f='package ${Package} ${Version} ${db:Status-Abbrev}\n'
getent passwd | cut -d: -f1,3,4,6,7 | sed 's/^/user /'
getent group | cut -d: -f1,3,4 | sed 's/^/group /'
service --status-all 2>/dev/null | sed 's/^/service/'
find /etc /opt /srv /usr/local -xdev -printf 'path %p %M %u %g %l\n' 2>/dev/null
find /etc /opt /srv /usr/local -xdev -type f -exec sha256sum {} + 2>/dev/null | sed 's/^/sha256 /'
"#;

/// Lines of the snapshot that differ between two hosts however they were set up: the host's
/// own name and keys, and what `apt`/`dpkg` stamp with the time.
fn host_specific(line: &str) -> bool {
    [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/ssh/ssh_host_",
        "/etc/machine-id",
        "/etc/ld.so.cache",
    ]
    .iter()
    .any(|p| line.contains(p))
}

fn snapshot(lab: &Lab, i: u32) -> BTreeSet<String> {
    lab.sh(i, SNAPSHOT)
        .lines()
        .filter(|l| !host_specific(l))
        .map(str::to_string)
        .collect()
}

/// What changed on a host between two snapshots: `+ line` added, `- line` gone.
fn changes(before: &BTreeSet<String>, after: &BTreeSet<String>) -> BTreeSet<String> {
    after
        .difference(before)
        .map(|l| format!("+ {l}"))
        .chain(before.difference(after).map(|l| format!("- {l}")))
        .collect()
}

fn ansible_playbook() -> Command {
    let bin = std::env::var_os("TEND_ANSIBLE_BIN")
        .map(PathBuf::from)
        .expect("TEND_ANSIBLE_BIN is not set: run tests/run.sh, which installs ansible-core into a virtualenv");
    let mut cmd = Command::new(bin.join("ansible-playbook"));
    cmd.env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0");
    cmd
}

#[test]
fn corpus_roles_leave_the_same_state_as_ansible() {
    let lab = Lab::get();
    let (by_tend, by_ansible) = (5, 6);
    assert!(
        common::shop(&lab).lb > by_ansible,
        "h5 and h6 belong to the shop: start the lab with 11 hosts (tests/run.sh does)"
    );
    let corpus = repo().join("tests/corpus");
    let inventory = lab.inventory();
    for i in [by_tend, by_ansible] {
        // The hosts reach no mirror: their package lists count as fresh, so `update_cache`
        // with `cache_valid_time` is skipped by both tools.
        lab.sh(
            i,
            "mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp",
        );
    }
    let before = (snapshot(&lab, by_tend), snapshot(&lab, by_ansible));

    let ansible = ansible_playbook()
        .current_dir(&corpus)
        .args(["-i", &inventory, "lab-run.yaml", "--limit", "h6"])
        .output();
    let r = run_in(&corpus, &["run", "lab-run.yaml", "-i", &inventory, "--limit", "h5"]);
    assert_eq!(r.code, 0, "{r:?}");
    let ansible = ansible.expect("run ansible-playbook");
    assert!(
        ansible.status.success(),
        "ansible-playbook failed:\n{}\n{}",
        String::from_utf8_lossy(&ansible.stdout),
        String::from_utf8_lossy(&ansible.stderr)
    );

    let tend_changes = changes(&before.0, &snapshot(&lab, by_tend));
    // Services are compared apart: lab hosts have no systemd, and Ansible, finding `systemctl`
    // there, warns "Target is a chroot or systemd is offline" and reports `started` without
    // starting anything; tend starts them with their SysV scripts (asserted below).
    let ansible_changes: BTreeSet<String> = changes(&before.1, &snapshot(&lab, by_ansible))
        .into_iter()
        .filter(|l| !l.starts_with("+ service") && !l.starts_with("- service"))
        .collect();
    let tend_services: BTreeSet<String> = tend_changes
        .iter()
        .filter(|l| l[2..].starts_with("service"))
        .cloned()
        .collect();
    let tend_changes: BTreeSet<String> = tend_changes.difference(&tend_services).cloned().collect();
    let only_tend: Vec<_> = tend_changes.difference(&ansible_changes).collect();
    let only_ansible: Vec<_> = ansible_changes.difference(&tend_changes).collect();
    assert!(
        only_tend.is_empty() && only_ansible.is_empty(),
        "the hosts differ.\nonly by tend:\n{}\nonly by ansible:\n{}",
        only_tend.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
        only_ansible.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
    );
    // Each role did its work: packages in, services running, and answering.
    for line in [
        "+ service [ + ]  memcached",
        "+ service [ + ]  haproxy",
        "+ service [ + ]  nginx",
        "+ service [ + ]  apache2",
    ] {
        assert!(tend_services.contains(line), "{line} missing:\n{tend_services:#?}");
    }
    assert_eq!(
        lab.sh(
            by_tend,
            "printf 'stats\\nquit\\n' | timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/11211; cat >&3; head -c 8 <&3'; echo; \
             for p in 80 8081 8082; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:$p/; done"
        ),
        "STAT pid\n200 503 200 "
    );
    for package in [
        "memcached",
        "haproxy",
        "nginx",
        "openjdk-17-jre-headless",
        "apache2",
        "git",
    ] {
        assert_eq!(
            lab.sh(by_tend, &format!("dpkg-query -W -f='${{db:Status-Abbrev}}' {package}")),
            "ii ",
            "{package}"
        );
    }
    assert_eq!(
        lab.sh(by_tend, "cat /etc/profile.d/java_home.sh"),
        lab.sh(by_ansible, "cat /etc/profile.d/java_home.sh")
    );

    // A second run changes nothing.
    let again = run_in(
        &corpus,
        &[
            "run",
            "lab-run.yaml",
            "-i",
            &inventory,
            "--limit",
            "h5",
            "--format",
            "json",
        ],
    );
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.total_changed(), 0, "{again:?}");
}
