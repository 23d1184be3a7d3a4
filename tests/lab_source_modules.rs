//! Modules that bring content from elsewhere onto a host: `git` (against real lab hosts, the
//! state read back on the host without tend).

mod common;
use common::{Lab, PlaybookFile, Run};

fn play(host: &str, tasks: &str) -> PlaybookFile {
    PlaybookFile::new(&format!("- hosts: {host}\n  gather_facts: false\n  tasks:\n{tasks}"))
}

fn field(r: &Run, task: &str, key: &str) -> String {
    let v = &r.result(task, "h1")[key];
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Clones at a branch, then is idempotent; a new upstream commit is seen in check mode (host
/// untouched) and pulled; a tag checks out detached; local modifications stop it unless
/// `force: true`, which discards them.
#[test]
fn git_clones_updates_and_keeps_local_changes_unless_forced() {
    let lab = Lab::get();
    let id = std::process::id();
    let (src, dest) = (format!("/tmp/tend-git-src-{id}"), format!("/tmp/tend-git-co-{id}"));
    let commit = |msg: &str| {
        lab.sh(
            1,
            &format!(
                "cd {src} && echo {msg} > file && git add file && git -c user.email=t@example.com -c user.name=t commit -q -m {msg} && git rev-parse HEAD"
            ),
        )
        .trim()
        .to_string()
    };
    lab.sh(1, &format!("rm -rf {src} {dest} && git init -q -b main {src}"));
    let one = commit("one");
    lab.sh(1, &format!("cd {src} && git tag v1"));
    let two = commit("two");
    let task = |version: &str, extra: &str| {
        play(
            "h1",
            &format!(
                "    - name: checkout\n      git:\n        repo: file://{src}\n        dest: {dest}\n        version: {version}\n{extra}"
            ),
        )
    };
    let head = || {
        lab.sh(1, &format!("git -C {dest} rev-parse HEAD; cat {dest}/file"))
            .to_string()
    };

    let main = task("main", "");
    let r = main.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(field(&r, "checkout", "status"), "changed");
    assert!(field(&r, "checkout", "msg").ends_with(&format!(" at {two}")), "{r:?}");
    assert_eq!(head(), format!("{two}\ntwo\n"));
    let r = main.run(&lab, &[]);
    assert_eq!(field(&r, "checkout", "status"), "ok", "{r:?}");

    let three = commit("three");
    let r = main.run(&lab, &["--check"]);
    assert_eq!(field(&r, "checkout", "status"), "changed", "{r:?}");
    assert_eq!(head(), format!("{two}\ntwo\n"));
    let r = main.run(&lab, &[]);
    assert_eq!(field(&r, "checkout", "status"), "changed", "{r:?}");
    assert_eq!(
        field(&r, "checkout", "msg"),
        format!("update {dest} from {two} to {three}")
    );
    assert_eq!(head(), format!("{three}\nthree\n"));

    let r = task("v1", "").run(&lab, &[]);
    assert_eq!(
        field(&r, "checkout", "msg"),
        format!("update {dest} from {three} to {one}"),
        "{r:?}"
    );
    assert_eq!(head(), format!("{one}\none\n"));

    lab.sh(1, &format!("echo mine > {dest}/file"));
    let r = main.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("Local modifications exist"), "{r:?}");
    assert_eq!(lab.sh(1, &format!("cat {dest}/file")), "mine\n");
    let r = task("main", "        force: true\n").run(&lab, &[]);
    assert_eq!(field(&r, "checkout", "status"), "changed", "{r:?}");
    assert_eq!(head(), format!("{three}\nthree\n"));
    lab.sh(1, &format!("rm -rf {src} {dest}"));
}

/// Adds a sources line to the file named from its URL as Ansible names it (once), finds it in
/// any sources file, removes it (and the file it leaves empty). Without `update_cache`: lab
/// hosts reach no mirror.
#[test]
fn apt_repository_adds_and_removes_a_sources_line() {
    let lab = Lab::get();
    let id = std::process::id();
    let line = format!("deb [trusted=yes] http://repo{id}.example.org/debian/ bookworm main");
    let file = format!("/etc/apt/sources.list.d/repo{id}_example_org_debian.list");
    let task = |state: &str| {
        play(
            "h1",
            &format!(
                "    - name: repo\n      apt_repository:\n        repo: \"{line}\"\n        state: {state}\n        update_cache: false\n"
            ),
        )
    };
    let r = task("present").run(&lab, &["--check"]);
    assert_eq!(field(&r, "repo", "status"), "changed", "{r:?}");
    assert_eq!(lab.sh(1, &format!("ls {file} 2>/dev/null || echo none")), "none\n");
    let r = task("present").run(&lab, &[]);
    assert_eq!(field(&r, "repo", "status"), "changed", "{r:?}");
    assert_eq!(
        lab.sh(1, &format!("cat {file}; stat -c %a {file}")),
        format!("{line}\n644\n")
    );
    let r = task("present").run(&lab, &[]);
    assert_eq!(field(&r, "repo", "status"), "ok", "{r:?}");
    // The same line, spaced differently, in another file counts as there.
    lab.sh(1, &format!("rm {file}; echo 'deb  [trusted=yes]  http://repo{id}.example.org/debian/ bookworm main # mine' > /etc/apt/sources.list.d/mine{id}.list; echo 'deb http://other{id}.example.org/ x y' >> /etc/apt/sources.list.d/mine{id}.list"));
    let r = task("present").run(&lab, &[]);
    assert_eq!(field(&r, "repo", "status"), "ok", "{r:?}");
    let r = task("absent").run(&lab, &[]);
    assert_eq!(field(&r, "repo", "status"), "changed", "{r:?}");
    assert_eq!(
        lab.sh(1, &format!("cat /etc/apt/sources.list.d/mine{id}.list")),
        format!("deb http://other{id}.example.org/ x y\n")
    );
    lab.sh(1, &format!("rm -f /etc/apt/sources.list.d/mine{id}.list"));
}

/// A tmpfs in fstab and mounted (lab hosts have mount namespaces of their own), changed options
/// remount it, `unmounted` keeps the line, `absent` removes it; check mode changes nothing.
#[test]
fn mount_keeps_fstab_and_the_mount_in_step() {
    let lab = Lab::get();
    let id = std::process::id();
    let path = format!("/mnt/tend-{id}");
    let task = |state: &str, opts: &str| {
        play(
            "h1",
            &format!(
                "    - name: m\n      ansible.posix.mount:\n        path: {path}\n        src: tmpfs\n        fstype: tmpfs\n        opts: {opts}\n        state: {state}\n"
            ),
        )
    };
    let seen = || {
        lab.sh(
            1,
            &format!("grep ' {path} ' /etc/fstab || echo no line; if findmnt {path} >/dev/null; then echo \"$(findmnt -n -o FSTYPE {path}) $(findmnt -n -o OPTIONS {path} | grep -o 'size=[^,]*')\"; else echo not mounted; fi"),
        )
    };
    let r = task("mounted", "size=1m").run(&lab, &["--check"]);
    assert_eq!(field(&r, "m", "status"), "changed", "{r:?}");
    assert_eq!(seen(), "no line\nnot mounted\n");
    let r = task("mounted", "size=1m").run(&lab, &[]);
    assert_eq!(field(&r, "m", "status"), "changed", "{r:?}");
    assert_eq!(seen(), format!("tmpfs {path} tmpfs size=1m 0 0\ntmpfs size=1024k\n"));
    assert_eq!(field(&task("mounted", "size=1m").run(&lab, &[]), "m", "status"), "ok");
    let r = task("mounted", "size=2m").run(&lab, &[]);
    assert_eq!(field(&r, "m", "msg"), format!("fstab, remount {path}"), "{r:?}");
    assert_eq!(seen(), format!("tmpfs {path} tmpfs size=2m 0 0\ntmpfs size=2048k\n"));
    let r = task("unmounted", "size=2m").run(&lab, &[]);
    assert_eq!(field(&r, "m", "status"), "changed", "{r:?}");
    assert_eq!(seen(), format!("tmpfs {path} tmpfs size=2m 0 0\nnot mounted\n"));
    let r = task("absent", "size=2m").run(&lab, &[]);
    assert_eq!(field(&r, "m", "status"), "changed", "{r:?}");
    assert_eq!(seen(), "no line\nnot mounted\n");
    lab.sh(1, &format!("rmdir {path}"));

    // A mount point with a space: fstab holds it as `\040`, and the line is found again.
    let spaced = |state: &str| {
        play(
            "h1",
            &format!(
                "    - name: m\n      ansible.posix.mount:\n        path: \"{path} b\"\n        src: tmpfs\n        fstype: tmpfs\n        opts: size=1m\n        state: {state}\n"
            ),
        )
        .run(&lab, &[])
    };
    assert_eq!(field(&spaced("mounted"), "m", "status"), "changed");
    assert_eq!(field(&spaced("mounted"), "m", "status"), "ok");
    assert_eq!(
        lab.sh(
            1,
            &format!("grep -c '^tmpfs {path}\\\\040b ' /etc/fstab; findmnt -n -o FSTYPE '{path} b'")
        ),
        "1\ntmpfs\n"
    );
    assert_eq!(field(&spaced("absent"), "m", "status"), "changed");
    assert_eq!(
        lab.sh(
            1,
            &format!("grep -c '{path}' /etc/fstab; findmnt '{path} b' || echo gone; rmdir '{path} b'")
        ),
        "0\ngone\n"
    );
}
