//! `tend upload` against real lab hosts: checksum first, atomic replace, mode and owner.

mod common;
use common::{Lab, run, scratch};

fn unique(name: &str) -> String {
    format!("/root/tend-upload-{name}-{}", std::process::id())
}

#[test]
fn creates_then_leaves_alone_then_replaces_atomically() {
    let lab = Lab::get();
    let dir = scratch();
    let src = dir.path().join("app.conf");
    let dest = unique("cycle");
    let inv = lab.inventory();
    let upload = |extra: &[&str]| {
        let mut args = vec![
            "upload",
            "h1:h2",
            src.to_str().unwrap_or_default(),
            &dest,
            "-i",
            &inv,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    std::fs::write(&src, "listen 8080\n").expect("write");
    let r = upload(&["--mode", "0640"]);
    assert_eq!(r.code, 0, "{r:?}");
    for (i, h) in [(1, "h1"), (2, "h2")] {
        assert_eq!(r.host(h)["status"], "changed");
        assert_eq!(r.host(h)["msg"], "created");
        assert_eq!(lab.sh(i, &format!("cat {dest}")), "listen 8080\n");
        assert_eq!(lab.sh(i, &format!("stat -c '%a %U' {dest}")), "640 root\n");
    }
    let inode = lab.sh(1, &format!("stat -c %i {dest}"));

    // Same content again: nothing is written, the file is the same inode.
    let r = upload(&["--mode", "0640"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.host("h1")["status"], "ok");
    assert_eq!(r.host("h1")["msg"], "unchanged");
    assert_eq!(lab.sh(1, &format!("stat -c %i {dest}")), inode);

    // Only the mode differs: fixed in place.
    let r = upload(&["--mode", "0600"]);
    assert_eq!(r.host("h1")["msg"], "attributes", "{r:?}");
    assert_eq!(lab.sh(1, &format!("stat -c '%a %i' {dest}")), format!("600 {}", inode));

    // New content: a new file renamed over the old one (new inode), mode kept, no temp left.
    std::fs::write(&src, "listen 9090\n").expect("write");
    let r = upload(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.host("h1")["msg"], "replaced");
    assert_eq!(lab.sh(1, &format!("cat {dest}")), "listen 9090\n");
    assert_ne!(lab.sh(1, &format!("stat -c %i {dest}")), inode);
    assert_eq!(lab.sh(1, &format!("stat -c %a {dest}")), "600\n");
    assert_eq!(lab.sh(1, "ls -a /root | grep -c '^.tend\\.' || true"), "0\n");
    lab.sh(1, &format!("rm -f {dest}"));
    lab.sh(2, &format!("rm -f {dest}"));
}

#[test]
fn check_mode_reports_without_touching_the_host() {
    let lab = Lab::get();
    let dir = scratch();
    let src = dir.path().join("f");
    std::fs::write(&src, "new\n").expect("write");
    let dest = unique("check");
    lab.sh(3, &format!("printf 'old\\n' > {dest}"));
    let r = run(&[
        "upload",
        "h3",
        src.to_str().unwrap_or_default(),
        &dest,
        "-i",
        &lab.inventory(),
        "--check",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.host("h3")["status"], "changed");
    assert_eq!(r.host("h3")["msg"], "would be replaced");
    assert_eq!(lab.sh(3, &format!("cat {dest}; rm -f {dest}")), "old\n");
}

#[test]
fn readers_never_see_a_partial_file() {
    let lab = Lab::get();
    let dir = scratch();
    let dest = unique("atomic");
    // Two 4 MiB versions; a reader on the host hashes the file in a loop during the uploads.
    let a: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..4 << 20).map(|i| (i % 241) as u8).collect();
    let (fa, fb) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&fa, &a).expect("write");
    std::fs::write(&fb, &b).expect("write");
    let inv = lab.inventory();
    let put = |f: &std::path::Path| run(&["upload", "h2", f.to_str().unwrap_or_default(), &dest, "-i", &inv]);
    assert_eq!(put(&fa).code, 0);
    let log = format!("{dest}.sums");
    let reader = std::process::Command::new(lab.script())
        .args(["exec", "2", "sh", "-c", &format!("end=$(($(date +%s)+6)); while [ $(date +%s) -lt $end ]; do sha256sum < {dest} | cut -c1-64; done > {log}")])
        .spawn()
        .expect("start reader");
    for i in 0..6 {
        let r = put(if i % 2 == 0 { &fb } else { &fa });
        assert_eq!(r.code, 0, "{r:?}");
    }
    let mut reader = reader;
    assert!(reader.wait().expect("reader").success());
    let sums = lab.sh(2, &format!("sort -u {log}; rm -f {log} {dest}"));
    let hex = |d: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(d))
    };
    let seen: Vec<&str> = sums.lines().collect();
    // The reader saw both versions, so it really read while files were being replaced...
    assert!(
        seen.contains(&hex(&a).as_str()) && seen.contains(&hex(&b).as_str()),
        "{seen:?}"
    );
    // ...and never anything else.
    for s in &seen {
        assert!(*s == hex(&a) || *s == hex(&b), "a reader saw a partial file: {s}");
    }
}

#[test]
fn a_missing_directory_fails_with_the_reason() {
    let lab = Lab::get();
    let dir = scratch();
    let src = dir.path().join("f");
    std::fs::write(&src, "x").expect("write");
    let r = run(&[
        "upload",
        "h1",
        src.to_str().unwrap_or_default(),
        "/nonexistent/dir/f",
        "-i",
        &lab.inventory(),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("h1 | FAILED | rc=3"), "{r:?}");
    assert!(
        r.stdout
            .contains("error: placing /nonexistent/dir/f failed (rc=3): directory /nonexistent/dir does not exist"),
        "{r:?}"
    );
}

#[test]
fn owner_and_group_are_set() {
    let lab = Lab::get();
    let dir = scratch();
    let src = dir.path().join("f");
    std::fs::write(&src, "owned\n").expect("write");
    let dest = unique("owner");
    let r = run(&[
        "upload",
        "h3",
        src.to_str().unwrap_or_default(),
        &dest,
        "-i",
        &lab.inventory(),
        "--owner",
        "nobody",
        "--group",
        "nogroup",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lab.sh(3, &format!("stat -c '%U:%G %a' {dest}; rm -f {dest}")),
        "nobody:nogroup 644\n"
    );
}
