//! Modules that bring content from elsewhere onto a host: `git`, `apt_repository`, `mount`,
//! `apt_key`, `rpm_key`, `synchronize` (against real lab hosts, the state read back on the host
//! without tend).

mod common;
use common::{Lab, PlaybookFile, Run, run};

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

/// A fresh OpenPGP key made on h1 by gpg in a scratch home: `(armored public key, path of its
/// file on h1, fingerprint)`.
fn gpg_key(lab: &Lab, name: &str) -> (String, String, String) {
    gpg_key_on(lab, 1, name)
}

/// [`gpg_key`] on host `hI`.
fn gpg_key_on(lab: &Lab, i: u32, name: &str) -> (String, String, String) {
    let file = format!("/tmp/{name}.asc");
    let out = lab.sh(
        i,
        &format!(
            "export GNUPGHOME=$(mktemp -d) && gpg --batch --quiet --passphrase '' --quick-gen-key '{name} <{name}@example.com>' ed25519 sign 2>/dev/null && gpg --armor --export {name}@example.com > {file} && gpg --with-colons --fingerprint {name}@example.com | awk -F: '$1 == \"fpr\" {{ print $10; exit }}'; rm -rf \"$GNUPGHOME\""
        ),
    );
    let key = lab.sh(i, &format!("cat {file}"));
    (key, file, out.trim().to_string())
}

/// `text` as a YAML block scalar under a key at `indent` spaces.
fn block(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent + 2);
    let lines: Vec<String> = text.lines().map(|l| format!("{pad}{l}")).collect();
    format!("|\n{}\n", lines.join("\n"))
}

/// A key from a file on the host is added once (check mode first, host untouched) and found by
/// the id Ansible derives from it; one given as `data` too; both are removed by `id` (the
/// fingerprint, then the short id), after which a second removal changes nothing.
#[test]
fn apt_key_adds_keys_once_and_removes_them_by_id() {
    let lab = Lab::get();
    let id = std::process::id();
    let (_, file, fpr) = gpg_key(&lab, &format!("tend-apt-{id}"));
    let (text2, file2, fpr2) = gpg_key(&lab, &format!("tend-apt2-{id}"));
    let trusted = || {
        lab.sh(
            1,
            "apt-key adv --list-public-keys --with-colons 2>/dev/null | awk -F: '$1 == \"fpr\" { print $10 }'",
        )
    };
    let has = |fp: &str| trusted().lines().any(|l| l == fp);
    let task = |params: &str| {
        play(
            "h1",
            &format!(
                "    - name: key\n      ansible.builtin.apt_key:\n{params}      register: k\n    - name: ids\n      debug:\n        msg: \"{{{{ k.id }}}} {{{{ k.fp }}}} {{{{ k.short_id }}}} {{{{ k.after is defined }}}}\"\n"
            ),
        )
    };
    let long = &fpr[24..];
    let from_file = task(&format!("        file: {file}\n"));
    let r = from_file.run(&lab, &["--check"]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert_eq!(field(&r, "ids", "msg"), format!("{long} {long} {} False", &fpr[32..]));
    assert!(!has(&fpr));
    let r = from_file.run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert_eq!(field(&r, "ids", "msg"), format!("{long} {long} {} True", &fpr[32..]));
    assert!(has(&fpr), "{}", trusted());
    let r = from_file.run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "ok", "{r:?}");

    let from_data = task(&format!("        data: {}", block(&text2, 8)));
    let r = from_data.run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(has(&fpr2) && has(&fpr));
    assert_eq!(field(&from_data.run(&lab, &[]), "key", "status"), "ok");

    let absent = |key_id: &str| task(&format!("        id: \"{key_id}\"\n        state: absent\n"));
    let r = absent(&fpr).run(&lab, &["--check"]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(has(&fpr));
    let r = absent(&fpr).run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(!has(&fpr) && has(&fpr2));
    assert_eq!(field(&absent(&fpr).run(&lab, &[]), "key", "status"), "ok");
    let short = format!("0x{}", fpr2[32..].to_ascii_lowercase());
    let r = absent(&short).run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(!has(&fpr2), "{}", trusted());
    lab.sh(1, &format!("rm -f {file} {file2}"));
}

/// `rpm_key` with the host's rpm, as the dnf test uses it: a key file is imported once (check
/// mode first), a key from a URL only when its fingerprint is the one given, and keys are
/// erased by key id; `rpm -q` on the host tells.
#[test]
fn rpm_key_imports_checks_fingerprints_and_erases() {
    let lab = Lab::get();
    let id = std::process::id();
    let (_, file, fpr) = gpg_key(&lab, &format!("tend-rpm-{id}"));
    let (_, file2, fpr2) = gpg_key(&lab, &format!("tend-rpm2-{id}"));
    let package = |fp: &str| format!("gpg-pubkey-{}", fp[32..].to_ascii_lowercase());
    let imported = |fp: &str| lab.on_host(1, &["rpm", "-q", &package(fp)]).code == 0;
    let task = |params: &str| play("h1", &format!("    - name: key\n      rpm_key:\n{params}"));
    let from_file = task(&format!("        key: {file}\n"));
    let r = from_file.run(&lab, &["--check"]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(!imported(&fpr));
    let r = from_file.run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(imported(&fpr));
    assert_eq!(field(&from_file.run(&lab, &[]), "key", "status"), "ok");

    let from_url = |fingerprint: &str| {
        task(&format!(
            "        key: file://{file2}\n        fingerprint: \"{fingerprint}\"\n"
        ))
    };
    let r = from_url(&fpr).run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "failed", "{r:?}");
    assert!(
        field(&r, "key", "msg").contains("does not match any key fingerprints"),
        "{r:?}"
    );
    assert!(!imported(&fpr2));
    // Spaced in groups of four, as fingerprints are printed.
    let spaced: Vec<&str> = (0..10).map(|i| &fpr2[i * 4..i * 4 + 4]).collect();
    let r = from_url(&spaced.join(" ")).run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(imported(&fpr2) && imported(&fpr));

    let absent = |key_id: &str| task(&format!("        key: \"{key_id}\"\n        state: absent\n"));
    let long = format!("0x{}", &fpr[24..]);
    let r = absent(&long).run(&lab, &["--check"]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(imported(&fpr));
    let r = absent(&long).run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(!imported(&fpr) && imported(&fpr2));
    assert_eq!(field(&absent(&long).run(&lab, &[]), "key", "status"), "ok");
    let r = absent(&fpr2[32..]).run(&lab, &[]);
    assert_eq!(field(&r, "key", "status"), "changed", "{r:?}");
    assert!(!imported(&fpr2));
    lab.sh(1, &format!("rm -f {file} {file2}"));
}

/// rsync from the control node through tend's connection (its control socket, host keys
/// checked; with `become`, the host's rsync becomes root, as the connection is root already): a tree from the playbook's `files/` is pushed with its modes (check mode first,
/// host untouched), a second run changes nothing, an edit is sent, an extra file on the host
/// stays until `delete`, `rsync_opts` excludes, and `mode: pull` brings the tree back.
#[test]
fn synchronize_pushes_deletes_and_pulls_over_the_hosts_connection() {
    let lab = Lab::get();
    let id = std::process::id();
    let dest = format!("/tmp/tend-sync-{id}");
    let pb = play("h1", "");
    let root = pb.dir.path().to_path_buf();
    pb.file("files/tree/a.txt", "one\n")
        .file("files/tree/sub/b.txt", "two\n")
        .file("files/tree/skip.tmp", "not sent\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("files/tree/a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("files/tree/link")).unwrap();
    }
    let task = |extra: &str, flags: &[&str]| {
        let yaml = format!(
            "- hosts: h1\n  gather_facts: false\n  tasks:\n    - name: sync\n      become: true\n      ansible.posix.synchronize:\n        src: tree/\n        dest: {dest}/\n        rsync_opts: [\"--exclude=*.tmp\"]\n{extra}      register: s\n    - name: cmd\n      debug:\n        msg: \"{{{{ s.cmd }}}}\"\n"
        );
        std::fs::write(&pb.path, yaml).unwrap();
        pb.run(&lab, flags)
    };
    let tree = || {
        lab.sh(
            1,
            &format!("cd {dest} 2>/dev/null && find . -mindepth 1 | sort | while read -r f; do if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; elif [ -f \"$f\" ]; then echo \"$f $(stat -c %a \"$f\") $(cat \"$f\")\"; else echo \"$f/\"; fi; done || echo none"),
        )
    };
    let sent = "./a.txt 640 one\n./link -> a.txt\n./sub/\n./sub/b.txt 644 two\n";

    let r = task("", &["--check"]);
    assert_eq!(field(&r, "sync", "status"), "changed", "{r:?}");
    assert_eq!(tree(), "none\n");

    let r = task("", &[]);
    assert_eq!(field(&r, "sync", "status"), "changed", "{r:?}");
    assert_eq!(tree(), sent);
    let cmd = field(&r, "cmd", "msg");
    assert!(
        cmd.contains("ControlPath=") && cmd.contains("StrictHostKeyChecking=yes"),
        "{cmd}"
    );
    assert!(
        cmd.contains(&format!("UserKnownHostsFile={}", lab.known_hosts().display()))
            && cmd.contains("'--rsync-path=sh -c "),
        "{cmd}"
    );
    let r = task("", &[]);
    assert_eq!(field(&r, "sync", "status"), "ok", "{r:?}");
    assert_eq!(r.recap("h1")["changed"], 0, "{r:?}");

    pb.file("files/tree/sub/b.txt", "two, edited\n");
    lab.sh(1, &format!("echo mine > {dest}/extra"));
    let r = task("", &[]);
    assert_eq!(field(&r, "sync", "status"), "changed", "{r:?}");
    assert!(field(&r, "sync", "msg").contains("sub/b.txt"), "{r:?}");
    assert_eq!(
        tree(),
        "./a.txt 640 one\n./extra 644 mine\n./link -> a.txt\n./sub/\n./sub/b.txt 644 two, edited\n"
    );
    assert_eq!(field(&task("", &[]), "sync", "status"), "ok");
    let r = task("        delete: true\n", &[]);
    assert_eq!(field(&r, "sync", "status"), "changed", "{r:?}");
    assert!(field(&r, "sync", "msg").contains("*deleting   extra"), "{r:?}");
    assert_eq!(
        tree(),
        "./a.txt 640 one\n./link -> a.txt\n./sub/\n./sub/b.txt 644 two, edited\n"
    );
    assert_eq!(field(&task("        delete: true\n", &[]), "sync", "status"), "ok");

    let pulled = root.join("pulled");
    std::fs::write(
        &pb.path,
        format!(
            "- hosts: h1\n  gather_facts: false\n  tasks:\n    - name: pull\n      synchronize:\n        mode: pull\n        src: {dest}/sub\n        dest: {}/\n",
            pulled.display()
        ),
    )
    .unwrap();
    let r = pb.run(&lab, &[]);
    assert_eq!(field(&r, "pull", "status"), "changed", "{r:?}");
    assert_eq!(
        std::fs::read_to_string(pulled.join("sub/b.txt")).unwrap(),
        "two, edited\n"
    );
    assert_eq!(field(&pb.run(&lab, &[]), "pull", "status"), "ok");
    lab.sh(1, &format!("rm -rf {dest}"));
}

/// `apt_key` and `rpm_key` side by side with ansible-core's (`TEND_ANSIBLE_BIN`, set by
/// tests/run.sh): the same tasks with the same key, tend on h2 and ansible-playbook on h3, report
/// the same `changed` in and out of check mode, the same ids, and the same key lists.
#[test]
fn apt_key_and_rpm_key_report_what_ansibles_report() {
    let lab = Lab::get();
    let name = format!("tend-cmp-{}", std::process::id());
    let (key, file, fpr) = gpg_key_on(&lab, 2, &name);
    lab.sh(3, &format!("cat > {file} <<'EOF'\n{key}EOF\n"));
    let short = &fpr[32..];
    let report = format!("/tmp/{name}.report");
    let pb = PlaybookFile::new(&format!(
        r#"- hosts: "{{{{ target }}}}"
  gather_facts: false
  tasks:
    - apt_key: {{ file: {file} }}
      check_mode: true
      register: a1
    - apt_key: {{ file: {file} }}
      register: a2
    - apt_key: {{ file: {file} }}
      register: a3
    - apt_key: {{ id: "0x{short}", state: absent }}
      check_mode: true
      register: a4
    - apt_key: {{ id: "0x{short}", state: absent }}
      register: a5
    - apt_key: {{ id: "{fpr}", state: absent }}
      register: a6
    - rpm_key: {{ key: {file} }}
      check_mode: true
      register: r1
    - rpm_key: {{ key: {file} }}
      register: r2
    - rpm_key: {{ key: {file} }}
      register: r3
    - rpm_key: {{ key: "0x{short}", state: absent }}
      register: r4
    - rpm_key: {{ key: "{fpr}", state: absent }}
      register: r5
    - copy:
        dest: {report}
        content: |
          {{{{ a1.changed }}}} {{{{ a2.changed }}}} {{{{ a3.changed }}}} {{{{ a4.changed }}}} {{{{ a5.changed }}}} {{{{ a6.changed }}}}
          {{{{ a1.after is defined }}}} {{{{ a2.after is defined }}}} {{{{ a3.after is defined }}}} {{{{ a5.after is defined }}}}
          {{{{ a2.id }}}} {{{{ a2.fp }}}} {{{{ a2.short_id }}}} {{{{ a2.key_id }}}}
          {{{{ a5.id }}}} {{{{ a5.fp }}}} {{{{ a5.short_id }}}} {{{{ a5.key_id }}}}
          {{{{ a6.id }}}} {{{{ a6.fp }}}} {{{{ a6.short_id }}}} {{{{ a6.key_id }}}}
          {{{{ a1.before | join(',') }}}}
          {{{{ a2.after | join(',') }}}}
          {{{{ a5.before | join(',') }}}}
          {{{{ a5.after | join(',') }}}}
          {{{{ r1.changed }}}} {{{{ r2.changed }}}} {{{{ r3.changed }}}} {{{{ r4.changed }}}} {{{{ r5.changed }}}}
"#
    ));
    run_both_on_h3_and_h2(&lab, &pb);
    let by_tend = lab.sh(2, &format!("cat {report}"));
    let by_ansible = lab.sh(3, &format!("cat {report}"));
    assert_eq!(by_tend, by_ansible);
    let lines: Vec<&str> = by_tend.lines().collect();
    assert_eq!(lines[0], "True True False True True False", "{by_tend}");
    assert_eq!(lines[9], "True True False True False", "{by_tend}");
    assert!(
        lines[6].contains(&fpr[24..]) && !lines[5].contains(&fpr[24..]),
        "{by_tend}"
    );
    for i in [2, 3] {
        lab.sh(i, &format!("rm -f {file} {report}"));
    }
}

/// `synchronize` side by side with ansible.posix's (from the `ansible` package tests/run.sh
/// installs): the same pushes and pull from the same local tree, tend to h2 and
/// ansible-playbook to h3, report the same `changed` (check mode too) and leave the same trees.
#[test]
fn synchronize_does_what_ansible_posix_does() {
    let lab = Lab::get();
    let id = std::process::id();
    let local = tempfile::tempdir().expect("tempdir");
    let src = local.path().join("site");
    std::fs::create_dir_all(src.join("css")).expect("mkdir");
    std::fs::write(src.join("index.html"), "<h1>shop</h1>\n").expect("write");
    std::fs::write(src.join("css/shop.css"), "body {}\n").expect("write");
    std::fs::write(src.join("notes.tmp"), "scratch\n").expect("write");
    std::os::unix::fs::symlink("index.html", src.join("home.html")).expect("symlink");
    let dest = format!("/tmp/tend-sync-cmp-{id}");
    let pulled = local.path().join("pulled");
    std::fs::create_dir_all(&pulled).expect("mkdir");
    let report = format!("/tmp/tend-sync-cmp-{id}.report");
    let pb = PlaybookFile::new(&format!(
        r#"- hosts: "{{{{ target }}}}"
  gather_facts: false
  tasks:
    - synchronize: {{ src: "{src}/", dest: "{dest}/", rsync_opts: ["--exclude=*.tmp"], use_ssh_args: true }}
      check_mode: true
      register: s1
    - synchronize: {{ src: "{src}/", dest: "{dest}/", rsync_opts: ["--exclude=*.tmp"], use_ssh_args: true }}
      register: s2
    - synchronize: {{ src: "{src}/", dest: "{dest}/", rsync_opts: ["--exclude=*.tmp"], use_ssh_args: true }}
      register: s3
    - shell: "echo extra > {dest}/extra.txt"
    - synchronize: {{ src: "{src}/", dest: "{dest}/", delete: true, rsync_opts: ["--exclude=*.tmp"], use_ssh_args: true }}
      register: s4
    - synchronize: {{ mode: pull, src: "{dest}/", dest: "{pulled}/{{{{ target }}}}/", use_ssh_args: true }}
      register: s5
    - copy:
        dest: {report}
        content: "{{{{ s1.changed }}}} {{{{ s2.changed }}}} {{{{ s3.changed }}}} {{{{ s4.changed }}}} {{{{ s5.changed }}}}\n"
"#,
        src = src.display(),
        pulled = pulled.display(),
    ));
    run_both_on_h3_and_h2(&lab, &pb);
    let tree = format!("cd {dest} && find . -printf '%P %y %m %s %l\\n' | sort && cat {report}");
    let by_tend = lab.sh(2, &tree);
    assert_eq!(by_tend, lab.sh(3, &tree));
    assert!(by_tend.ends_with("True True False True True\n"), "{by_tend}");
    assert!(
        !by_tend.contains("notes.tmp") && !by_tend.contains("extra.txt"),
        "{by_tend}"
    );
    let listing = |host: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd {}/{host} && find . -printf '%P %y %s %l\\n' | sort",
                pulled.display()
            ))
            .output()
            .expect("find");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(listing("h2"), listing("h3"));
    assert!(listing("h2").contains("home.html l 10 index.html"), "{}", listing("h2"));
    for i in [2, 3] {
        lab.sh(i, &format!("rm -rf {dest} {report}"));
    }
}

/// Runs `pb` with ansible-playbook (`TEND_ANSIBLE_BIN`, set by tests/run.sh) on h3 and with
/// tend on h2 (`-e target=hN`); both must succeed.
fn run_both_on_h3_and_h2(lab: &Lab, pb: &PlaybookFile) {
    let bin = std::env::var_os("TEND_ANSIBLE_BIN")
        .map(std::path::PathBuf::from)
        .expect("TEND_ANSIBLE_BIN is not set: run tests/run.sh, which installs ansible into a virtualenv");
    let ansible = std::process::Command::new(bin.join("ansible-playbook"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .args([
            "-i",
            &lab.inventory(),
            pb.path.to_str().unwrap_or_default(),
            "-e",
            "target=h3",
        ])
        .output()
        .expect("run ansible-playbook");
    assert!(
        ansible.status.success(),
        "ansible-playbook failed:\n{}\n{}",
        String::from_utf8_lossy(&ansible.stdout),
        String::from_utf8_lossy(&ansible.stderr)
    );
    let r = run(&[
        "run",
        pb.path.to_str().unwrap_or_default(),
        "-i",
        &lab.inventory(),
        "-e",
        "target=h2",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
}
