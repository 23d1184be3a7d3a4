//! `apt`, `package`, `service`, `user` and `group` against real lab hosts (h2 and h3 only):
//! the state is read back on the host without tend, a second run changes nothing, and check mode
//! reports a change while leaving the host as it was.

mod common;
use common::{Lab, PlaybookFile, Run};

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id())
}

/// One play on one host, without fact gathering.
fn play(host: &str, tasks: &str) -> PlaybookFile {
    PlaybookFile::new(&format!("- hosts: {host}\n  gather_facts: false\n  tasks:\n{tasks}"))
}

/// Runs and checks the exit code; prints each task's time for the record.
fn run_ok(pf: &PlaybookFile, lab: &Lab, extra: &[&str]) -> Run {
    let r = pf.run(lab, extra);
    assert_eq!(r.code, 0, "{r:?}");
    for v in r.json_lines().iter().filter(|v| v["event"] == "result") {
        eprintln!(
            "{} {:?}: {} in {} ms: {}",
            v["host"], v["task"], v["status"], v["duration_ms"], v["msg"]
        );
    }
    r
}

fn status(r: &Run, task: &str, host: &str) -> String {
    r.result(task, host)["status"].as_str().unwrap_or_default().to_string()
}

fn msg(r: &Run, task: &str, host: &str) -> String {
    r.result(task, host)["msg"].as_str().unwrap_or_default().to_string()
}

fn dpkg_status(lab: &Lab, i: u32, pkg: &str) -> String {
    lab.sh(i, &format!("dpkg-query -W -f='${{Status}}' {pkg} 2>/dev/null || true"))
}

#[test]
fn apt_installs_nginx_offline_and_removes_rsync() {
    let lab = Lab::get();
    // Known start: no nginx (an earlier run may have left it), rsync installed from the cache.
    lab.sh(
        2,
        "export DEBIAN_FRONTEND=noninteractive; service nginx stop >/dev/null 2>&1; \
         apt-get purge -y -q -o DPkg::Lock::Timeout=300 nginx nginx-common >/dev/null 2>&1; \
         apt-get install -y -q -o DPkg::Lock::Timeout=300 rsync >/dev/null",
    );
    assert!(!dpkg_status(&lab, 2, "nginx").ends_with(" installed"));
    assert_eq!(dpkg_status(&lab, 2, "rsync"), "install ok installed");

    let pf = play(
        "h2",
        "    - name: web server\n      apt:\n        name: nginx\n        state: present\n        install_recommends: false\n\
         \x20   - name: no rsync\n      apt:\n        pkg: [rsync]\n        state: absent\n        purge: true\n",
    );
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&r, "web server", "h2"), "changed");
    assert_eq!(msg(&r, "web server", "h2"), "installed nginx");
    assert_eq!(status(&r, "no rsync", "h2"), "changed");
    assert_eq!(msg(&r, "no rsync", "h2"), "removed rsync");
    assert_eq!(dpkg_status(&lab, 2, "nginx"), "install ok installed");
    assert!(!dpkg_status(&lab, 2, "rsync").ends_with(" installed"));
    // The install did not start nginx: policy-rc.d forbids it during package installs.
    assert_ne!(lab.on_host(2, &["service", "nginx", "status"]).code, 0);

    let again = run_ok(&pf, &lab, &[]);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    assert_eq!(msg(&again, "web server", "h2"), "all packages are installed");
    assert_eq!(msg(&again, "no rsync", "h2"), "no package to remove");

    // A pin on the installed version and `latest` (the cache's candidate is installed): no change.
    let version = lab.sh(2, "dpkg-query -W -f='${Version}' nginx");
    let pinned = play(
        "h2",
        &format!(
            "    - name: pinned\n      apt:\n        name: nginx={version}\n\
             \x20   - name: latest\n      apt:\n        name: nginx\n        state: latest\n"
        ),
    );
    let r = run_ok(&pinned, &lab, &[]);
    assert_eq!(r.total_changed(), 0, "{r:?}");
    assert_eq!(msg(&r, "latest", "h2"), "all packages are up to date");

    // Someone removes nginx and installs rsync by hand: check mode sees both, touches neither.
    lab.sh(
        2,
        "export DEBIAN_FRONTEND=noninteractive; apt-get remove -y -q -o DPkg::Lock::Timeout=300 nginx >/dev/null; apt-get install -y -q -o DPkg::Lock::Timeout=300 rsync >/dev/null",
    );
    let r = run_ok(&pf, &lab, &["--check"]);
    assert_eq!(status(&r, "web server", "h2"), "changed");
    assert_eq!(msg(&r, "web server", "h2"), "would install nginx");
    assert_eq!(msg(&r, "no rsync", "h2"), "would remove rsync");
    assert!(!dpkg_status(&lab, 2, "nginx").ends_with(" installed"));
    assert_eq!(dpkg_status(&lab, 2, "rsync"), "install ok installed");

    // The real run puts both back.
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(r.total_changed(), 2, "{r:?}");
    assert_eq!(dpkg_status(&lab, 2, "nginx"), "install ok installed");
    assert!(!dpkg_status(&lab, 2, "rsync").ends_with(" installed"));

    // A name apt does not know fails the host before anything is installed.
    let missing = unique("tend-no-such-package-");
    let bad = play(
        "h2",
        &format!("    - name: unknown\n      package:\n        name: [nginx, {missing}]\n"),
    );
    let r = bad.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let res = r.result("unknown", "h2");
    assert_eq!(res["status"], "failed");
    let text = res["msg"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("no package matching `{missing}`")) && text.contains("h2"),
        "{text}"
    );
}

#[test]
fn apt_cache_update_is_skipped_when_fresh_and_a_failed_update_fails_the_task() {
    let lab = Lab::get();
    // Lab hosts cannot reach a mirror and their lists are shared with other tests: the `apt-get`
    // seen by the module is a stand-in that fails `update` like an unreachable mirror does, logs
    // every call, and hands everything else to the real one.
    let dir = format!("/tmp/{}", unique("tsys-fakeapt-"));
    lab.sh(
        3,
        &format!(
            "mkdir -p {dir} && cat > {dir}/apt-get <<'EOF'\n#!/bin/sh\necho \"$*\" >> {dir}/calls\n\
             for a in \"$@\"; do\n  if [ \"$a\" = update ]; then\n    echo 'Err:1 http://deb.debian.org/debian bookworm InRelease'\n\
             \x20   echo \"E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'\" >&2\n\
             \x20   echo 'E: Some index files failed to download. They have been ignored, or old ones used instead.' >&2\n    exit 100\n  fi\ndone\n\
             exec /usr/bin/apt-get \"$@\"\nEOF\nchmod +x {dir}/apt-get"
        ),
    );
    let env = format!(
        "      environment:\n        PATH: {dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let fresh = play(
        "h3",
        &format!(
            "    - name: fresh enough\n      apt:\n        update_cache: true\n        cache_valid_time: 315360000\n{env}"
        ),
    );
    let r = run_ok(&fresh, &lab, &[]);
    assert_eq!(status(&r, "fresh enough", "h3"), "ok");
    assert!(
        msg(&r, "fresh enough", "h3").contains("fresher than cache_valid_time"),
        "{r:?}"
    );
    let stale = play(
        "h3",
        &format!("    - name: refresh\n      apt:\n        update_cache: yes\n        cache_valid_time: 1\n{env}"),
    );
    // Check mode only says it would update.
    let r = run_ok(&stale, &lab, &["--check"]);
    assert_eq!(status(&r, "refresh", "h3"), "changed");
    assert_eq!(msg(&r, "refresh", "h3"), "would update the package lists");
    assert_eq!(lab.sh(3, &format!("cat {dir}/calls 2>/dev/null || true")), "");

    let r = stale.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let res = r.result("refresh", "h3");
    assert_eq!(res["status"], "failed");
    assert_eq!(res["rc"], 100);
    assert_eq!(
        res["cmd"],
        "apt-get -q -o APT::Update::Error-Mode=any -o DPkg::Lock::Timeout=60 update"
    );
    let text = res["msg"].as_str().unwrap_or_default();
    assert!(
        text.contains("updating the package lists failed on h3") && text.contains("Some index files failed"),
        "{text}"
    );
    let tail = res["stderr_tail"].as_str().unwrap_or_default();
    assert!(
        tail.contains("Temporary failure resolving") && tail.contains("Some index files failed"),
        "{tail}"
    );
    lab.sh(3, &format!("rm -rf {dir}"));
}

#[test]
fn service_manages_nginx_through_its_sysv_script() {
    let lab = Lab::get();
    lab.sh(3, "service nginx stop >/dev/null 2>&1; true");
    let running = || lab.on_host(3, &["service", "nginx", "status"]).code == 0;
    let pid = || lab.sh(3, "cat /run/nginx.pid");

    let start = play(
        "h3",
        "    - name: package\n      apt:\n        name: nginx\n\
         \x20   - name: nginx\n      service:\n        name: nginx\n        state: started\n        enabled: true\n",
    );
    let r = run_ok(&start, &lab, &[]);
    assert_eq!(status(&r, "nginx", "h3"), "changed");
    assert!(msg(&r, "nginx", "h3").starts_with("nginx (sysv): started"), "{r:?}");
    assert!(running());
    lab.sh(3, &format!("kill -0 {}", pid().trim()));
    assert_eq!(
        lab.sh(3, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/"),
        "200"
    );
    assert_eq!(
        lab.sh(
            3,
            "ls /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d | grep -c '^S..nginx$'"
        ),
        "4\n"
    );

    let again = run_ok(&start, &lab, &[]);
    assert_eq!(again.total_changed(), 0, "{again:?}");

    // Stopped behind tend's back: check mode reports the start and leaves it stopped.
    lab.sh(3, "service nginx stop >/dev/null");
    let r = run_ok(&start, &lab, &["--check"]);
    assert_eq!(status(&r, "nginx", "h3"), "changed");
    assert_eq!(msg(&r, "nginx", "h3"), "nginx (sysv): would start");
    assert!(!running());
    run_ok(&start, &lab, &[]);
    assert!(running());

    let stop = play(
        "h3",
        "    - name: nginx\n      service:\n        name: nginx\n        state: stopped\n",
    );
    let r = run_ok(&stop, &lab, &[]);
    assert_eq!(status(&r, "nginx", "h3"), "changed");
    assert!(!running());
    assert_eq!(lab.sh(3, "pgrep -x nginx || true"), "");
    assert_eq!(run_ok(&stop, &lab, &[]).total_changed(), 0);

    // Restarted always changes, and really restarts (new master pid).
    let restart = play(
        "h3",
        "    - name: nginx\n      service:\n        name: nginx\n        state: restarted\n",
    );
    let r = run_ok(&restart, &lab, &[]);
    assert_eq!(status(&r, "nginx", "h3"), "changed");
    assert!(running());
    let first = pid();
    let r = run_ok(&restart, &lab, &[]);
    assert_eq!(status(&r, "nginx", "h3"), "changed");
    assert!(running());
    assert_ne!(pid(), first);

    // Boot links: disabled, idempotent, enabled again.
    let disable = play(
        "h3",
        "    - name: boot\n      service:\n        name: nginx\n        enabled: no\n",
    );
    let r = run_ok(&disable, &lab, &[]);
    assert_eq!(status(&r, "boot", "h3"), "changed");
    assert_eq!(lab.sh(3, "ls /etc/rc[2-5].d | grep -c '^S..nginx$' || true"), "0\n");
    assert_eq!(lab.sh(3, "ls /etc/rc2.d | grep -c '^K..nginx$'"), "1\n");
    assert_eq!(run_ok(&disable, &lab, &[]).total_changed(), 0);
    let r = run_ok(&start, &lab, &[]);
    assert_eq!(r.total_changed(), 1, "{r:?}");
    assert_eq!(msg(&r, "nginx", "h3"), "nginx (sysv): enabled");
    assert_eq!(lab.sh(3, "ls /etc/rc[2-5].d | grep -c '^S..nginx$'"), "4\n");

    lab.sh(3, "service nginx stop >/dev/null");
}

#[test]
fn service_runs_a_daemon_with_explicit_commands() {
    let lab = Lab::get();
    let port = 18000 + std::process::id() % 1000;
    let name = unique("tsys-web-");
    // The status command greps the process list for the pattern: it must not find tend's own
    // shell, whose script contains the same text.
    let tasks = |state: &str| {
        format!(
            "    - name: web\n      service:\n        name: {name}\n        state: {state}\n\
             \x20       start_command: cd /tmp && python3 -m http.server {port} --bind 127.0.0.1 &\n\
             \x20       stop_command: pkill -f 'http.server {port}'\n\
             \x20       status_command: pgrep -f 'http.server {port}'\n"
        )
    };
    // Patterns for checks from here: `[r]` keeps them from matching the checking shell itself.
    let pids = || lab.sh(2, &format!("pgrep -f 'http.serve[r] {port}' || true"));
    let start = play("h2", &tasks("started"));
    let r = run_ok(&start, &lab, &[]);
    assert_eq!(status(&r, "web", "h2"), "changed");
    assert_eq!(msg(&r, "web", "h2"), format!("{name} (commands): started"));
    assert_eq!(r.result("web", "h2")["stdout_tail"], serde_json::Value::Null);
    let first = pids();
    assert_eq!(first.lines().count(), 1, "{first}");
    assert_eq!(
        lab.sh(
            2,
            &format!(
                "for i in $(seq 50); do c=$(curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/) && break; sleep 0.1; done; echo $c"
            )
        ),
        "200\n"
    );
    assert_eq!(run_ok(&start, &lab, &[]).total_changed(), 0);

    lab.sh(2, &format!("pkill -f 'http.serve[r] {port}'; sleep 0.3"));
    let r = run_ok(&start, &lab, &["--check"]);
    assert_eq!(status(&r, "web", "h2"), "changed");
    assert_eq!(pids(), "");

    run_ok(&start, &lab, &[]);
    let before = pids();
    let r = run_ok(&play("h2", &tasks("restarted")), &lab, &[]);
    assert_eq!(status(&r, "web", "h2"), "changed");
    let after = pids();
    assert!(!after.is_empty() && after != before, "{before} -> {after}");

    let stop = play("h2", &tasks("stopped"));
    let r = run_ok(&stop, &lab, &[]);
    assert_eq!(status(&r, "web", "h2"), "changed");
    assert_eq!(pids(), "");
    assert_eq!(run_ok(&stop, &lab, &[]).total_changed(), 0);
}

#[test]
fn service_failures_name_the_command_rc_and_stderr() {
    let lab = Lab::get();
    let name = unique("tsys-broken-");
    let pf = play(
        "h2",
        &format!(
            "    - name: start it\n      service:\n        name: {name}\n        state: started\n\
             \x20       start_command: 'echo \"listen tcp :1: address already in use\" >&2; exit 7'\n\
             \x20       status_command: 'false'\n"
        ),
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let res = r.result("start it", "h2");
    assert_eq!(res["status"], "failed");
    assert_eq!(res["host"], "h2");
    assert_eq!(
        res["msg"],
        format!("service {name}: start_command failed on h2 with rc 7: listen tcp :1: address already in use")
    );
    assert_eq!(res["cmd"], "echo \"listen tcp :1: address already in use\" >&2; exit 7");
    assert_eq!(res["rc"], 7);
    assert_eq!(res["stderr_tail"], "listen tcp :1: address already in use");

    // A start that "succeeds" but leaves nothing running; and a name with no way to manage it.
    let pf = play(
        "h2",
        &format!(
            "    - name: silent\n      service:\n        name: {name}\n        state: started\n\
             \x20       start_command: echo started\n        status_command: 'false'\n      ignore_errors: true\n\
             \x20   - name: unknown\n      service:\n        name: {name}\n        state: started\n"
        ),
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let silent = r.result("silent", "h2");
    assert_eq!(silent["status"], "ignored");
    assert_eq!(
        silent["msg"],
        format!("service {name} is not running on h2 5 s after `echo started` succeeded (status: `false`): started")
    );
    assert_eq!(silent["cmd"], "echo started");
    assert_eq!(silent["rc"], 1);
    let unknown = msg(&r, "unknown", "h2");
    assert!(
        unknown.contains("systemd")
            && unknown.contains(&format!("/etc/init.d/{name}"))
            && unknown.contains("start_command"),
        "{unknown}"
    );
}

#[test]
fn user_and_group_are_created_changed_and_removed() {
    let lab = Lab::get();
    let (g1, g2, user) = (unique("tsg"), unique("tsh"), unique("tsu"));
    let hash = "$6$tendsalt$Jb1vWqkqQ3bE0l4y5YcAo0K2bqX2o3Zt9m8Q1dUq1d8rQ9u2kzF7d1wYw2yq1e8cD6H3aQ0oPz5lE4tM0mN1b/";
    let create = play(
        "h3",
        &format!(
            "    - name: g1\n      group:\n        name: {g1}\n        system: true\n\
             \x20   - name: g2\n      group:\n        name: {g2}\n\
             \x20   - name: user\n      user:\n        name: {user}\n        shell: /bin/sh\n        groups: [{g1}]\n\
             \x20       comment: tend test user\n        password: '{hash}'\n"
        ),
    );
    let r = run_ok(&create, &lab, &[]);
    assert_eq!(r.total_changed(), 3, "{r:?}");
    assert_eq!(msg(&r, "user", "h3"), format!("create user {user}"));
    let passwd = lab.sh(3, &format!("getent passwd {user}"));
    let f: Vec<&str> = passwd.trim().split(':').collect();
    let home = format!("/home/{user}");
    assert_eq!(f[4..], ["tend test user", home.as_str(), "/bin/sh"]);
    lab.sh(3, &format!("test -d /home/{user}"));
    assert_eq!(lab.sh(3, &format!("id -nG {user}")), format!("{user} {g1}\n"));
    assert_eq!(
        lab.sh(3, &format!("getent shadow {user} | cut -d: -f2")),
        format!("{hash}\n")
    );
    assert!(
        lab.sh(3, &format!("getent group {g1} | cut -d: -f3"))
            .trim()
            .parse::<u32>()
            .unwrap_or(1000)
            < 1000
    );
    assert_eq!(run_ok(&create, &lab, &[]).total_changed(), 0);

    let modify = play(
        "h3",
        &format!(
            "    - name: user\n      user:\n        name: {user}\n        shell: /bin/bash\n        groups: {g2}\n        append: yes\n"
        ),
    );
    let r = run_ok(&modify, &lab, &[]);
    assert_eq!(msg(&r, "user", "h3"), format!("change shell, groups of user {user}"));
    assert!(
        lab.sh(3, &format!("getent passwd {user}"))
            .trim()
            .ends_with(":/bin/bash")
    );
    assert_eq!(lab.sh(3, &format!("id -nG {user}")), format!("{user} {g1} {g2}\n"));
    assert_eq!(run_ok(&modify, &lab, &[]).total_changed(), 0);

    // Changed by hand: check mode reports it and leaves the shell alone.
    lab.sh(3, &format!("usermod -s /bin/sh {user}"));
    let r = run_ok(&modify, &lab, &["--check", "--diff"]);
    assert_eq!(msg(&r, "user", "h3"), format!("would change shell of user {user}"));
    let diff = &r.result("user", "h3")["diff"][0];
    assert_eq!(diff["before"], "shell: /bin/sh\n");
    assert_eq!(diff["after"], "shell: /bin/bash\n");
    assert!(lab.sh(3, &format!("getent passwd {user}")).trim().ends_with(":/bin/sh"));

    // Without append, `groups` is the whole list.
    let exact = play(
        "h3",
        &format!(
            "    - name: user\n      user:\n        name: {user}\n        shell: /bin/bash\n        groups: [{g2}]\n"
        ),
    );
    let r = run_ok(&exact, &lab, &[]);
    assert_eq!(msg(&r, "user", "h3"), format!("change shell, groups of user {user}"));
    assert_eq!(lab.sh(3, &format!("id -nG {user}")), format!("{user} {g2}\n"));

    let remove = play(
        "h3",
        &format!(
            "    - name: user\n      user:\n        name: {user}\n        state: absent\n        remove: yes\n\
             \x20   - name: g1\n      group:\n        name: {g1}\n        state: absent\n\
             \x20   - name: g2\n      group:\n        name: {g2}\n        state: absent\n"
        ),
    );
    let r = run_ok(&remove, &lab, &[]);
    assert_eq!(r.total_changed(), 3, "{r:?}");
    assert_ne!(lab.on_host(3, &["getent", "passwd", &user]).code, 0);
    assert_ne!(lab.on_host(3, &["getent", "group", &g1]).code, 0);
    assert_ne!(lab.on_host(3, &["test", "-e", &format!("/home/{user}")]).code, 0);
    assert_eq!(run_ok(&remove, &lab, &[]).total_changed(), 0);
}

/// An RPM repository made here: `rpmbuild` packs `name` at each version (a noarch package with
/// one file saying its version), `createrepo_c` indexes them.
fn rpm_repo(dir: &std::path::Path, name: &str, versions: &[&str]) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    for v in versions {
        let spec = dir.join(format!("{name}-{v}.spec"));
        std::fs::write(
            &spec,
            format!(
                "Name: {name}\nVersion: {v}\nRelease: 1\nSummary: tend test\nLicense: MIT\nBuildArch: noarch\n\
                 %description\ntend test package\n%install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
                 echo {v} > %{{buildroot}}/usr/share/{name}/version\n%files\n/usr/share/{name}/version\n"
            ),
        )
        .expect("spec");
        let out = std::process::Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", dir.join("top").display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", repo.display()))
            .args(["--quiet", "-bb"])
            .arg(&spec)
            .output()
            .expect("rpmbuild (installed by .ci/run)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = std::process::Command::new("createrepo_c")
        .args(["-q", "--update"])
        .arg(&repo)
        .output()
        .expect("createrepo_c (installed by .ci/run)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Puts the local repository on host `hI` at `dest` (a tar through `lab.sh exec`).
fn ship_repo(lab: &Lab, i: u32, dir: &std::path::Path, dest: &str) {
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.join("repo"))
        .args(["-cf", "-", "."])
        .output()
        .expect("tar");
    use std::io::Write as _;
    let mut child = std::process::Command::new(lab.script())
        .args([
            "exec",
            &i.to_string(),
            "sh",
            "-c",
            &format!("mkdir -p {dest} && tar -xf - -C {dest}"),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("lab.sh exec");
    child.stdin.take().expect("stdin").write_all(&tar.stdout).expect("send");
    assert!(child.wait().expect("wait").success());
}

/// `dnf`, `yum` and `package` with real dnf and a repository of RPMs built here, on h1 (whose
/// dpkg they leave alone): installed from a repository enabled only for the task, then
/// idempotent, upgraded by `state: latest` (check mode first), removed; an unknown name fails
/// before anything is installed.
#[test]
fn dnf_installs_upgrades_and_removes_from_a_local_repository() {
    let lab = Lab::get();
    let name = unique("tend-dnf-");
    let repo_id = unique("tend-test-");
    let dir = common::scratch();
    rpm_repo(dir.path(), &name, &["1.0"]);
    let dest = format!("/srv/{repo_id}");
    ship_repo(&lab, 1, dir.path(), &dest);
    let repo = play(
        "h1",
        &format!(
            "    - name: a RHEL host has it\n      file: path=/etc/yum.repos.d state=directory\n    - name: repo\n      yum_repository:\n        name: {repo_id}\n        description: tend test\n        baseurl: file://{dest}\n        gpgcheck: false\n        enabled: false\n"
        ),
    );
    assert_eq!(status(&run_ok(&repo, &lab, &[]), "repo", "h1"), "changed");
    assert_eq!(
        lab.sh(1, &format!("cat /etc/yum.repos.d/{repo_id}.repo")),
        format!("[{repo_id}]\nbaseurl = file://{dest}\nenabled = 0\ngpgcheck = 0\nname = tend test\n\n")
    );
    assert_eq!(status(&run_ok(&repo, &lab, &[]), "repo", "h1"), "ok");
    let installed = |lab: &Lab| {
        lab.sh(
            1,
            &format!("rpm -q --qf '%{{VERSION}}' {name} || true; cat /usr/share/{name}/version 2>/dev/null || true"),
        )
    };
    let pf = play(
        "h1",
        &format!("    - name: install\n      dnf:\n        name: {name}\n        enablerepo: {repo_id}\n"),
    );
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&r, "install", "h1"), "changed");
    assert_eq!(installed(&lab), "1.01.0\n");
    let again = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&again, "install", "h1"), "ok");
    assert_eq!(msg(&again, "install", "h1"), "all packages are installed");

    // Not offered by any enabled repository: a clear failure, nothing installed.
    let unknown = play(
        "h1",
        &format!(
            "    - name: unknown\n      yum:\n        name: [{name}, {name}-nosuch]\n        enablerepo: {repo_id}\n"
        ),
    );
    let r = unknown.run(&lab, &["--check"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!("no package matching `{name}-nosuch`")),
        "{r:?}"
    );

    rpm_repo(dir.path(), &name, &["1.1"]);
    ship_repo(&lab, 1, dir.path(), &dest);
    let latest = play(
        "h1",
        &format!(
            "    - name: latest\n      yum:\n        name: {name}\n        state: latest\n        enablerepo: {repo_id}\n        update_cache: true\n"
        ),
    );
    let r = run_ok(&latest, &lab, &["--check"]);
    assert_eq!(status(&r, "latest", "h1"), "changed");
    assert_eq!(installed(&lab), "1.01.0\n");
    let r = run_ok(&latest, &lab, &[]);
    assert_eq!(status(&r, "latest", "h1"), "changed");
    assert_eq!(installed(&lab), "1.11.1\n");
    assert_eq!(status(&run_ok(&latest, &lab, &[]), "latest", "h1"), "ok");

    // `name: '*'` upgrades what is installed (and installs nothing else); with `present` it
    // is refused rather than read as every package of the repositories.
    rpm_repo(dir.path(), &name, &["1.2"]);
    ship_repo(&lab, 1, dir.path(), &dest);
    let all = |state: &str| {
        play(
            "h1",
            &format!(
                "    - name: all\n      dnf:\n        name: '*'\n        state: {state}\n        enablerepo: {repo_id}\n        update_cache: true\n"
            ),
        )
    };
    let r = all("present").run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("goes with `state: latest`"), "{r:?}");
    assert_eq!(status(&run_ok(&all("latest"), &lab, &[]), "all", "h1"), "changed");
    assert_eq!(installed(&lab), "1.21.2\n");
    assert_eq!(status(&run_ok(&all("latest"), &lab, &[]), "all", "h1"), "ok");

    let remove = play(
        "h1",
        &format!("    - name: remove\n      package:\n        name: {name}\n        state: absent\n        use: dnf\n"),
    );
    let r = run_ok(&remove, &lab, &[]);
    assert_eq!(status(&r, "remove", "h1"), "changed");
    assert_eq!(installed(&lab), format!("package {name} is not installed\n"));
    lab.sh(1, &format!("rm -rf {dest} /etc/yum.repos.d/{repo_id}.repo"));
}

/// A SysV init script for a `sleep` daemon named `name`, installed on host `i` (stopped, no
/// boot links): a service of the test's own, which no other test starts or stops.
fn sleep_service(lab: &Lab, i: u32, name: &str) {
    lab.sh(
        i,
        &format!(
            "cat > /etc/init.d/{name} <<'EOS'\n#!/bin/sh\n### BEGIN INIT INFO\n# Provides: {name}\n\
             # Required-Start:\n# Required-Stop:\n# Default-Start: 2 3 4 5\n# Default-Stop: 0 1 6\n\
             ### END INIT INFO\np=/run/{name}.pid\ncase \"$1\" in\n\
             start) start-stop-daemon --start --quiet --background --make-pidfile --pidfile $p --exec /bin/sleep -- 100000 ;;\n\
             stop) start-stop-daemon --stop --quiet --oknodo --pidfile $p --remove-pidfile ;;\n\
             status) start-stop-daemon --status --pidfile $p ;;\n\
             restart|reload) $0 stop; $0 start ;;\nesac\nEOS\n\
             chmod 755 /etc/init.d/{name}"
        ),
    );
}

#[test]
fn systemd_module_manages_a_sysv_service_and_refuses_systemd_only_steps() {
    let lab = Lab::get();
    let name = unique("tsys-sd-");
    sleep_service(&lab, 4, &name);
    let running = || lab.on_host(4, &["service", &name, "status"]).code == 0;
    let links = || {
        lab.sh(
            4,
            &format!("ls /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d | grep -c '^S..{name}$' || true"),
        )
    };
    let pf = play(
        "h4",
        &format!(
            "    - name: unit\n      ansible.builtin.systemd:\n        name: {name}.service\n        state: started\n        enabled: true\n      register: u\n\
             \x20   - name: seen\n      assert:\n        that:\n          - u.name == '{name}.service'\n          - u.state == 'started'\n          - u.enabled\n          - u.status.ActiveState == 'active'\n"
        ),
    );
    let r = run_ok(&pf, &lab, &["--check"]);
    assert_eq!(status(&r, "unit", "h4"), "changed");
    assert!(!running());
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&r, "unit", "h4"), "changed");
    assert!(
        msg(&r, "unit", "h4").starts_with(&format!("{name} (sysv): started, enabled")),
        "{r:?}"
    );
    assert!(running());
    assert_eq!(links(), "4\n");
    assert_eq!(run_ok(&pf, &lab, &[]).total_changed(), 0);

    let stop = play(
        "h4",
        &format!(
            "    - name: unit\n      systemd_service:\n        name: {name}\n        state: stopped\n        enabled: false\n"
        ),
    );
    assert_eq!(status(&run_ok(&stop, &lab, &[]), "unit", "h4"), "changed");
    assert!(!running());
    assert_eq!(links(), "0\n");

    // daemon_reload and masked need systemd: a failure naming the host, nothing started.
    let pf = play(
        "h4",
        &format!(
            "    - name: reload\n      systemd:\n        daemon_reload: true\n        name: {name}\n        state: started\n      ignore_errors: true\n\
             \x20   - name: mask\n      ansible.builtin.systemd_service:\n        name: {name}\n        masked: true\n"
        ),
    );
    let r = pf.run(&lab, &[]);
    assert_ne!(r.code, 0, "{r:?}");
    let reload = r.result("reload", "h4");
    assert_eq!(reload["status"], "ignored");
    assert_eq!(
        reload["msg"],
        "systemd: `daemon_reload` needs systemd, which is not the init system on h4 (no /run/systemd/system); \
         `name`, `state` and `enabled` alone work there through its init scripts"
    );
    assert!(
        msg(&r, "mask", "h4")
            .starts_with("systemd_service: `masked` needs systemd, which is not the init system on h4")
    );
    assert!(!running());
    lab.sh(4, &format!("rm -f /etc/init.d/{name}"));
}

#[test]
fn service_facts_lists_sysv_services_with_state_and_boot_links() {
    let lab = Lab::get();
    let name = unique("tsys-sf-");
    sleep_service(&lab, 4, &name);
    lab.sh(
        4,
        &format!("update-rc.d {name} defaults >/dev/null 2>&1; service {name} start"),
    );
    let pf = play(
        "h4",
        &format!(
            "    - name: facts\n      ansible.builtin.service_facts:\n\
             \x20   - name: ours\n      debug:\n        msg: \"{{{{ services['{name}'].state }}}} {{{{ ansible_facts.services['{name}'].status }}}} {{{{ services['{name}'].source }}}} {{{{ services.ssh.state }}}}\"\n\
             \x20     when: \"'{name}' in services\"\n\
             \x20   - name: chrony\n      debug:\n        msg: chrony\n      when: \"'chrony.service' in services\"\n\
             \x20   - name: stop it\n      service:\n        name: {name}\n        state: stopped\n        enabled: false\n\
             \x20   - name: again\n      service_facts:\n\
             \x20   - name: after\n      debug:\n        msg: \"{{{{ services['{name}'].state }}}} {{{{ services['{name}'].status }}}}\"\n"
        ),
    );
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&r, "facts", "h4"), "ok");
    assert_eq!(msg(&r, "ours", "h4"), "running enabled sysv running");
    assert_eq!(status(&r, "chrony", "h4"), "skipped");
    assert_eq!(msg(&r, "after", "h4"), "stopped disabled");
    assert_ne!(lab.on_host(4, &["service", &name, "status"]).code, 0);
    lab.sh(
        4,
        &format!("update-rc.d -f {name} remove >/dev/null 2>&1; rm -f /etc/init.d/{name}"),
    );
}

#[test]
fn package_facts_lists_what_dpkg_has_installed() {
    let lab = Lab::get();
    let version = lab.sh(4, "dpkg-query -W -f='${Version}' openssh-server");
    let arch = lab.sh(4, "dpkg-query -W -f='${Architecture}' openssh-server");
    // Names, not packages: a multi-arch library installed twice is one name with two entries.
    let count = lab.sh(
        4,
        "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' | awk '/^[ih]i/ {print $2}' | sort -u | wc -l",
    );
    let pf = play(
        "h4",
        "    - name: facts\n      package_facts:\n        manager: auto\n\
         \x20   - name: sshd\n      debug:\n        msg: \"{{ ansible_facts.packages['openssh-server'][0].version }} {{ ansible_facts.packages['openssh-server'][0].arch }} {{ ansible_facts.packages['openssh-server'][0].source }} {{ ansible_facts.packages | length }}\"\n\
         \x20   - name: absent\n      debug:\n        msg: no\n      when: \"'tsys-no-such-package' in ansible_facts.packages\"\n\
         \x20   - name: bad manager\n      package_facts:\n        manager: pacman\n      ignore_errors: true\n",
    );
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(msg(&r, "sshd", "h4"), format!("{version} {arch} apt {}", count.trim()));
    assert_eq!(status(&r, "absent", "h4"), "skipped");
    assert_eq!(status(&r, "bad manager", "h4"), "ignored");
    assert!(msg(&r, "bad manager", "h4").contains("pacman"), "{r:?}");
}

#[test]
fn gather_subset_and_setup_filter_choose_the_facts() {
    let lab = Lab::get();
    let mem_mb = lab.sh(4, "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo");
    let pf = PlaybookFile::new(
        "- hosts: h4\n  gather_subset: ['!all', 'network']\n  tasks:\n\
         \x20   - name: narrow\n      debug:\n        msg: \"{{ ansible_all_ipv4_addresses | join(',') }} {{ ansible_os_family }} {{ ansible_pkg_mgr }} {{ ansible_memtotal_mb is defined }}\"\n\
         \x20   - name: refresh\n      ansible.builtin.setup:\n        gather_subset: ['!all', '!min', 'hardware']\n        filter: ['ansible_mem*']\n      register: s\n\
         \x20   - name: wide\n      debug:\n        msg: \"{{ ansible_memtotal_mb }} {{ ansible_facts.memtotal_mb }} {{ s.ansible_facts.keys() | sort | join(',') }} {{ ansible_distribution }}\"\n",
    );
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(msg(&r, "narrow", "h4"), format!("{} Debian apt False", lab.address(4)));
    assert_eq!(status(&r, "refresh", "h4"), "ok");
    assert_eq!(
        msg(&r, "wide", "h4"),
        format!("{0} {0} ansible_memfree_mb,ansible_memtotal_mb Debian", mem_mb.trim())
    );

    let bad = PlaybookFile::new("- hosts: h4\n  gather_subset: [harware]\n  tasks: []\n");
    let r = bad.run(&lab, &[]);
    assert_ne!(r.code, 0);
    assert!(format!("{r:?}").contains("bad subset `harware`"), "{r:?}");
}

#[test]
fn timezone_links_localtime_and_writes_etc_timezone() {
    let lab = Lab::get();
    let reset = "ln -sfn /usr/share/zoneinfo/Etc/UTC /etc/localtime && echo Etc/UTC > /etc/timezone";
    lab.sh(4, reset);
    let pf = play(
        "h4",
        "    - name: tz\n      community.general.timezone:\n        name: Europe/Paris\n        hwclock: UTC\n",
    );
    let r = run_ok(&pf, &lab, &["--check", "--diff"]);
    assert_eq!(status(&r, "tz", "h4"), "changed");
    assert_eq!(lab.sh(4, "readlink /etc/localtime"), "/usr/share/zoneinfo/Etc/UTC\n");
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&r, "tz", "h4"), "changed");
    assert_eq!(
        msg(&r, "tz", "h4"),
        "timezone Etc/UTC -> Europe/Paris (hwclock not managed by tend: left as it is)"
    );
    assert_eq!(
        lab.sh(4, "readlink /etc/localtime"),
        "/usr/share/zoneinfo/Europe/Paris\n"
    );
    assert_eq!(lab.sh(4, "cat /etc/timezone"), "Europe/Paris\n");
    // The host's programs see it: January in Paris is CET.
    assert_eq!(lab.sh(4, "date -d '2026-01-15 12:00 UTC' +%Z"), "CET\n");
    assert_eq!(run_ok(&pf, &lab, &[]).total_changed(), 0);

    // /etc/timezone alone out of step is a change too.
    lab.sh(4, "echo Etc/UTC > /etc/timezone");
    assert_eq!(run_ok(&pf, &lab, &[]).total_changed(), 1);
    assert_eq!(lab.sh(4, "cat /etc/timezone"), "Europe/Paris\n");

    let bad = play(
        "h4",
        "    - name: tz\n      timezone:\n        name: Mars/Olympus_Mons\n",
    );
    let r = bad.run(&lab, &[]);
    assert_ne!(r.code, 0);
    assert!(
        msg(&r, "tz", "h4").starts_with("timezone: no zone `Mars/Olympus_Mons` on h4"),
        "{r:?}"
    );
    assert_eq!(
        lab.sh(4, "readlink /etc/localtime"),
        "/usr/share/zoneinfo/Europe/Paris\n"
    );
    lab.sh(4, reset);
}

/// h4 has its own UTS namespace (its `hostname` is not the machine's), so the name is set for
/// real there; it is put back at the end.
#[test]
fn hostname_sets_the_running_name_and_etc_hostname() {
    let lab = Lab::get();
    let machine = std::process::Command::new("hostname").output().unwrap().stdout;
    assert_ne!(
        lab.sh(4, "hostname").as_bytes(),
        machine.as_slice(),
        "h4 shares the machine's hostname"
    );
    let name = unique("web-");
    let pf = play(
        "h4",
        &format!(
            "    - name: name\n      ansible.builtin.hostname:\n        name: {name}.shop.example\n        use: debian\n\
             \x20   - name: facts\n      debug:\n        msg: \"{{{{ ansible_hostname }}}} {{{{ ansible_facts.fqdn }}}} {{{{ ansible_domain }}}}\"\n"
        ),
    );
    let r = run_ok(&pf, &lab, &["--check"]);
    assert_eq!(status(&r, "name", "h4"), "changed");
    assert_eq!(lab.sh(4, "hostname; cat /etc/hostname"), "h4\nh4\n");
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(
        msg(&r, "name", "h4"),
        format!("hostname h4 -> {name}.shop.example (file)")
    );
    assert_eq!(
        msg(&r, "facts", "h4"),
        format!("{name} {name}.shop.example shop.example")
    );
    assert_eq!(
        lab.sh(4, "hostname; cat /etc/hostname"),
        format!("{name}.shop.example\n{name}.shop.example\n")
    );
    assert_ne!(lab.sh(4, "hostname").as_bytes(), machine.as_slice());
    assert_eq!(run_ok(&pf, &lab, &[]).total_changed(), 0);

    // Only the file out of step (the boot name): a change that rewrites it.
    lab.sh(4, "echo other > /etc/hostname");
    assert_eq!(run_ok(&pf, &lab, &[]).total_changed(), 1);
    assert_eq!(lab.sh(4, "cat /etc/hostname"), format!("{name}.shop.example\n"));

    let bad = play("h4", "    - name: name\n      hostname:\n        name: 'web;id'\n");
    let r = bad.run(&lab, &[]);
    assert_ne!(r.code, 0);
    assert!(msg(&r, "name", "h4").contains("is not a host name"), "{r:?}");

    let back = play("h4", "    - name: name\n      hostname:\n        name: h4\n");
    run_ok(&back, &lab, &[]);
    assert_eq!(lab.sh(4, "hostname; cat /etc/hostname"), "h4\nh4\n");
}

/// No lab host has SELinux, ufw or firewalld: `disabled` is already true, the rest fails
/// naming the host and what is missing, and nothing is written.
#[test]
fn selinux_and_firewall_modules_fail_clearly_where_the_host_lacks_them() {
    let lab = Lab::get();
    let pf = play(
        "h4",
        "    - name: disable it\n      ansible.posix.selinux:\n        state: disabled\n\
         \x20   - name: enforce\n      selinux:\n        policy: targeted\n        state: enforcing\n      ignore_errors: true\n\
         \x20   - name: bool\n      ansible.posix.seboolean:\n        name: httpd_can_network_connect\n        state: true\n        persistent: true\n      ignore_errors: true\n\
         \x20   - name: ufw\n      community.general.ufw:\n        rule: allow\n        port: '443'\n        proto: tcp\n      ignore_errors: true\n\
         \x20   - name: firewalld\n      ansible.posix.firewalld:\n        service: https\n        permanent: true\n        state: enabled\n      ignore_errors: true\n",
    );
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&r, "disable it", "h4"), "ok");
    assert_eq!(
        msg(&r, "disable it", "h4"),
        "SELinux is not available on h4: it is disabled"
    );
    assert_eq!(status(&r, "enforce", "h4"), "ignored");
    assert_eq!(
        msg(&r, "enforce", "h4"),
        "selinux: SELinux is not available on h4 (no getenforce, no /etc/selinux/config): cannot make it enforcing"
    );
    assert_eq!(status(&r, "bool", "h4"), "ignored");
    assert!(
        msg(&r, "bool", "h4").contains("SELinux is not available on h4"),
        "{r:?}"
    );
    assert_eq!(
        msg(&r, "ufw", "h4"),
        "ufw: ufw is not installed on h4 (the ufw module drives the `ufw` command)"
    );
    assert_eq!(
        msg(&r, "firewalld", "h4"),
        "firewalld: firewall-cmd is not installed on h4 (the firewalld module drives the `firewall-cmd` command)"
    );
    assert_eq!(lab.sh(4, "ls /etc/selinux"), "semanage.conf\n");
}

/// `cron` with a file of /etc/cron.d on a real host: written with the user field, mode 0644,
/// unchanged on a second run, `--check` leaves it alone, and the file goes with its last job.
/// A user's crontab needs the host's `crontab` program; the lab has none, which is reported.
#[test]
fn cron_manages_a_cron_d_file() {
    let lab = Lab::get();
    let f = format!("/etc/cron.d/{}", unique("tend-cron-"));
    let pf = play(
        "h3",
        &format!(
            r#"    - name: job
      ansible.builtin.cron:
        name: rotate
        minute: "15"
        hour: "3"
        job: /usr/sbin/logrotate /etc/logrotate.conf
        user: root
        cron_file: {f}
      register: j
    - name: var
      cron: {{name: MAILTO, env: true, job: ops@example.com, user: root, cron_file: {f}}}
    - name: results
      debug:
        msg: "{{{{ j.jobs | join(',') }}}} {{{{ j.cron_file }}}}"
    - name: user crontab
      cron: {{name: x, job: /bin/true, user: nobody}}
      ignore_errors: true
"#
        ),
    );
    let r = run_ok(&pf, &lab, &["--diff"]);
    assert_eq!(r.result("job", "h3")["status"], "changed");
    assert_eq!(
        r.result("job", "h3")["diff"][0]["after"],
        "#Ansible: rotate\n15 3 * * * root /usr/sbin/logrotate /etc/logrotate.conf\n"
    );
    assert_eq!(r.result("results", "h3")["msg"], format!("rotate {f}"));
    let user = r.result("user crontab", "h3");
    assert_eq!(user["status"], "ignored");
    assert!(
        user["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("Failed to find required executable \"crontab\""),
        "{user}"
    );
    let want =
        "MAILTO=\"ops@example.com\"\n#Ansible: rotate\n15 3 * * * root /usr/sbin/logrotate /etc/logrotate.conf\n";
    assert_eq!(
        lab.sh(3, &format!("cat {f}; stat -c '%a %U' {f}")),
        format!("{want}644 root\n")
    );
    let again = run_ok(&pf, &lab, &[]);
    assert_eq!(again.total_changed(), 0, "{again:?}");

    // Drift: someone changes the hour. --check says so and writes nothing; a run repairs it.
    lab.sh(3, &format!("sed -i 's/^15 3 /15 4 /' {f}"));
    let check = run_ok(&pf, &lab, &["--check", "--diff"]);
    assert_eq!(check.result("job", "h3")["status"], "changed");
    assert!(lab.sh(3, &format!("cat {f}")).contains("15 4 * * *"));
    run_ok(&pf, &lab, &[]);
    assert_eq!(lab.sh(3, &format!("cat {f}")), want);

    // Removing the variable and then the last job removes the file.
    let rm = play(
        "h3",
        &format!(
            r#"    - cron: {{name: MAILTO, env: true, state: absent, cron_file: {f}}}
    - name: last job
      cron: {{name: rotate, state: absent, cron_file: {f}}}
"#
        ),
    );
    let check = run_ok(&rm, &lab, &["--check"]);
    assert_eq!(check.total_changed(), 2, "{check:?}");
    assert_eq!(lab.sh(3, &format!("cat {f}")), want);
    let gone = run_ok(&rm, &lab, &[]);
    assert_eq!(gone.result("last job", "h3")["status"], "changed");
    assert_eq!(lab.sh(3, &format!("test -e {f} && echo there || echo gone")), "gone\n");
    assert_eq!(run_ok(&rm, &lab, &[]).total_changed(), 0);
}

/// `authorized_key` on a real account: `.ssh` made 0700 and the file 0600, both owned by the
/// user; several keys in one task, options, a second run that changes nothing, `--check`
/// that leaves the file alone, `exclusive` and `state: absent`.
#[test]
fn authorized_key_manages_a_users_keys() {
    let lab = Lab::get();
    let user = unique("tk");
    lab.sh(
        3,
        &format!("userdel -r {user} 2>/dev/null; useradd -m -s /bin/sh {user}"),
    );
    let a = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop";
    let b = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ bob";
    let pf = play(
        "h3",
        &format!(
            r#"    - name: keys
      ansible.posix.authorized_key:
        user: {user}
        key: |
          {a}
          {b}
      register: k
    - name: options
      authorized_key:
        user: {user}
        key: "{b}"
        key_options: 'no-pty,from="10.0.0.0/8"'
    - name: keyfile
      debug:
        msg: "{{{{ k.keyfile }}}}"
"#
        ),
    );
    let r = run_ok(&pf, &lab, &["--diff"]);
    assert_eq!(r.result("keys", "h3")["status"], "changed");
    assert_eq!(r.result("options", "h3")["status"], "changed");
    let file = format!("/home/{user}/.ssh/authorized_keys");
    assert_eq!(r.result("keyfile", "h3")["msg"], file);
    let want = format!("{a}\nno-pty,from=\"10.0.0.0/8\" {b}\n");
    assert_eq!(
        lab.sh(3, &format!("cat {file}; stat -c '%a %U %G' /home/{user}/.ssh {file}")),
        format!("{want}700 {user} {user}\n600 {user} {user}\n")
    );
    let again = run_ok(&pf, &lab, &[]);
    // The first task's keys have no options, the second's do: the two tasks disagree on `b`,
    // and each run puts its own version back, as in Ansible.
    assert_eq!(again.result("keys", "h3")["status"], "changed");
    assert_eq!(lab.sh(3, &format!("cat {file}")), want);

    let only = play(
        "h3",
        &format!(
            r#"    - name: only a
      authorized_key: {{user: {user}, key: "{a}", exclusive: true}}
    - name: no b
      authorized_key: {{user: {user}, key: "{b}", state: absent}}
"#
        ),
    );
    let check = run_ok(&only, &lab, &["--check"]);
    assert_eq!(check.result("only a", "h3")["status"], "changed");
    assert_eq!(check.result("no b", "h3")["status"], "changed");
    assert_eq!(lab.sh(3, &format!("cat {file}")), want);
    let r = run_ok(&only, &lab, &[]);
    assert_eq!(r.result("only a", "h3")["status"], "changed");
    assert_eq!(r.result("no b", "h3")["status"], "ok");
    assert_eq!(lab.sh(3, &format!("cat {file}")), format!("{a}\n"));
    assert_eq!(run_ok(&only, &lab, &[]).total_changed(), 0);
    lab.sh(3, &format!("userdel -r {user}"));
}

/// `sysctl` on a real host's network namespace (`net.ipv4.*` is per namespace): the file is
/// written and reloaded, `sysctl_set` sets the live value, a second run changes nothing,
/// `--check` changes neither, and `state: absent` removes the line.
#[test]
fn sysctl_writes_the_file_and_sets_the_live_value() {
    let lab = Lab::get();
    let f = format!("/root/{}.conf", unique("tend-sysctl-"));
    let saved = lab.sh(3, "sysctl -n net.ipv4.tcp_keepalive_time net.ipv4.tcp_fin_timeout");
    lab.sh(
        3,
        &format!("printf '# tuning\\nnet.ipv4.tcp_fin_timeout = 60\\n' > {f}; sysctl -w net.ipv4.tcp_keepalive_time=7200 net.ipv4.tcp_fin_timeout=60 >/dev/null"),
    );
    let pf = play(
        "h3",
        &format!(
            r#"    - name: keepalive
      ansible.posix.sysctl:
        name: net.ipv4.tcp_keepalive_time
        value: 600
        sysctl_file: {f}
    - name: fin
      sysctl: {{name: net.ipv4.tcp_fin_timeout, value: "15", sysctl_set: true, reload: false, sysctl_file: {f}}}
"#
        ),
    );
    let check = run_ok(&pf, &lab, &["--check", "--diff"]);
    assert_eq!(check.total_changed(), 2, "{check:?}");
    assert_eq!(
        check.result("keepalive", "h3")["diff"][0]["after"],
        "# tuning\nnet.ipv4.tcp_fin_timeout=60\nnet.ipv4.tcp_keepalive_time=600\n"
    );
    let live = "sysctl -n net.ipv4.tcp_keepalive_time net.ipv4.tcp_fin_timeout";
    assert_eq!(lab.sh(3, live), "7200\n60\n");
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(r.total_changed(), 2, "{r:?}");
    // The reload of the first task set 600 live (and 60 again from the file); the second set 15.
    assert_eq!(lab.sh(3, live), "600\n15\n");
    assert_eq!(
        lab.sh(3, &format!("cat {f}")),
        "# tuning\nnet.ipv4.tcp_fin_timeout=15\nnet.ipv4.tcp_keepalive_time=600\n"
    );
    assert_eq!(run_ok(&pf, &lab, &[]).total_changed(), 0);
    // The live value drifts: the reload of an unchanged file puts it back.
    lab.sh(3, "sysctl -w net.ipv4.tcp_keepalive_time=100 >/dev/null");
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(r.result("keepalive", "h3")["status"], "changed");
    assert_eq!(lab.sh(3, "sysctl -n net.ipv4.tcp_keepalive_time"), "600\n");

    let rm = play(
        "h3",
        &format!("    - sysctl: {{name: net.ipv4.tcp_keepalive_time, state: absent, sysctl_file: {f}}}\n"),
    );
    assert_eq!(run_ok(&rm, &lab, &[]).total_changed(), 1);
    assert_eq!(
        lab.sh(3, &format!("cat {f}")),
        "# tuning\nnet.ipv4.tcp_fin_timeout=15\n"
    );
    assert_eq!(run_ok(&rm, &lab, &[]).total_changed(), 0);
    let old: Vec<&str> = saved.lines().collect();
    lab.sh(
        3,
        &format!(
            "rm -f {f}; sysctl -w net.ipv4.tcp_keepalive_time={} net.ipv4.tcp_fin_timeout={} >/dev/null",
            old.first().unwrap_or(&"7200"),
            old.get(1).unwrap_or(&"60")
        ),
    );
}

/// `cron` on a user's crontab through the `crontab` program. The lab hosts have none, so a
/// stand-in that keeps Debian's behaviour (`-u`, `-l` with its three header lines, "no crontab"
/// with exit 1, install from a file) is put first on the task's PATH.
#[test]
fn cron_edits_a_users_crontab_through_crontab() {
    let lab = Lab::get();
    let dir = format!("/root/{}", unique("tend-crontab-"));
    lab.sh(
        3,
        &format!(
            r#"rm -rf {dir}; mkdir -p {dir}/bin {dir}/spool; cat > {dir}/bin/crontab <<'X'
#!/bin/sh
u=$(id -un); if [ "$1" = -u ]; then u=$2; shift 2; fi
f={dir}/spool/$u
case "$1" in
  -l) [ -f "$f" ] || {{ echo "no crontab for $u" >&2; exit 1; }}
      printf '# DO NOT EDIT THIS FILE - edit the master and reinstall.\n# (/tmp/crontab.x installed on Mon Dec  1 00:00:00 2026)\n# (Cron version -- $Id: crontab.c,v 2.13 1994/01/17 03:20:37 vixie Exp $)\n'
      cat "$f";;
  *) cat "$1" > "$f" && echo "$u" >> {dir}/installs;;
esac
X
chmod 755 {dir}/bin/crontab"#
        ),
    );
    let pf = play(
        "h3",
        &format!(
            r#"    - name: job
      cron: {{name: warm cache, minute: "*/5", job: /usr/local/bin/warm, user: nobody}}
      environment:
        PATH: "{dir}/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    - name: root job
      cron: {{name: report, special_time: daily, job: /usr/local/bin/report, backup: true}}
      environment:
        PATH: "{dir}/bin:/usr/bin:/bin:/usr/sbin:/sbin"
      register: rj
    - name: backup
      debug: {{msg: "{{{{ rj.backup_file | default('none') }}}}"}}
"#
        ),
    );
    let check = run_ok(&pf, &lab, &["--check", "--diff"]);
    assert_eq!(check.total_changed(), 2, "{check:?}");
    assert_eq!(lab.sh(3, &format!("ls {dir}/spool")), "");
    // root's crontab has a job of its own: it is kept, and backed up as it was read (without
    // the header of `crontab -l`).
    lab.sh(
        3,
        &format!("printf '#Ansible: old\\n@hourly /bin/old\\n' > {dir}/spool/root"),
    );
    let r = run_ok(&pf, &lab, &[]);
    let backup = r.result("backup", "h3")["msg"].as_str().unwrap_or_default().to_string();
    assert!(backup.starts_with("/tmp/crontab"), "{backup}");
    assert_eq!(
        lab.sh(3, &format!("cat {backup}; rm -f {backup}")),
        "#Ansible: old\n@hourly /bin/old\n"
    );
    assert_eq!(
        lab.sh(3, &format!("cat {dir}/spool/nobody {dir}/spool/root {dir}/installs")),
        "#Ansible: warm cache\n*/5 * * * * /usr/local/bin/warm\n#Ansible: old\n@hourly /bin/old\n#Ansible: report\n@daily /usr/local/bin/report\nnobody\nroot\n"
    );
    // The header `crontab -l` prints is not part of the crontab: nothing to install again.
    let again = run_ok(&pf, &lab, &[]);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    assert_eq!(lab.sh(3, &format!("wc -l < {dir}/installs")), "2\n");
    lab.sh(3, &format!("rm -rf {dir}"));
}

#[test]
fn ping_tempfile_and_gather_facts_as_tasks() {
    let lab = Lab::get();
    let tag = unique("tmp");
    let pf = play(
        "h3",
        &format!(
            "    - name: ping\n      ansible.builtin.ping:\n      register: p\n    - name: data\n      ping: {{data: hello}}\n      register: q\n\
             \x20   - name: dir\n      tempfile: {{state: directory, prefix: '{tag}.', suffix: .d}}\n      register: d\n\
             \x20   - name: file\n      ansible.builtin.tempfile: {{path: '{{{{ d.path }}}}', prefix: 'x '}}\n      register: f\n\
             \x20   - name: facts\n      gather_facts:\n    - name: show\n      debug: {{msg: '{{{{ d.path }}}}|{{{{ f.path }}}}|{{{{ ansible_hostname }}}}|{{{{ p.ping }}}} {{{{ q.ping }}}}'}}\n"
        ),
    );
    let r = run_ok(&pf, &lab, &[]);
    assert_eq!(status(&r, "dir", "h3"), "changed");
    let shown = msg(&r, "show", "h3");
    let parts: Vec<&str> = shown.split('|').collect();
    assert_eq!(parts.len(), 4, "{shown}");
    assert_eq!(parts[3], "pong hello");
    let (dir, file) = (parts[0], parts[1]);
    assert!(dir.starts_with(&format!("/tmp/{tag}.")) && dir.ends_with(".d"), "{dir}");
    assert!(file.starts_with(&format!("{dir}/x ")), "{file}");
    assert_eq!(parts[2], lab.sh(3, "hostname -s").trim());
    // Made on the host, for its owner only.
    assert_eq!(
        lab.sh(3, &format!("stat -c '%F %a %U' '{dir}' '{file}'")),
        "directory 700 root\nregular empty file 600 root\n"
    );
    // Check mode makes nothing.
    let before = lab.sh(3, &format!("ls -d /tmp/{tag}.* | wc -l"));
    let only_dir = play(
        "h3",
        &format!("    - name: dir\n      tempfile: {{state: directory, prefix: '{tag}.'}}\n"),
    );
    let r = run_ok(&only_dir, &lab, &["--check"]);
    assert_eq!(status(&r, "dir", "h3"), "changed");
    assert_eq!(lab.sh(3, &format!("ls -d /tmp/{tag}.* | wc -l")), before);
    let r = play("h3", "    - name: crash\n      ping: {data: crash}\n").run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    lab.sh(3, &format!("rm -rf /tmp/{tag}.*"));
}
