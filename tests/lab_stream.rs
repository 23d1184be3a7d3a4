//! Streaming transport on real lab hosts: a remote command's lines arrive while it still runs
//! (`tend exec --stream`), a 2 GiB file goes from a host to the control node (`fetch`) and from
//! there to other hosts (`copy`, `tend upload`) with tend's peak memory under 64 MB, and a
//! command's output goes from one host into a command on another (`transport::pipe`), each
//! with the checksum the receiving end computes equal to the sender's.

mod common;
use common::{Lab, PlaybookFile, repo, scratch, tend};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Peak RSS allowed for tend moving a file of any size.
const RSS_LIMIT_KB: u64 = 64 * 1024;

#[test]
fn streamed_lines_arrive_while_the_command_still_runs() {
    let lab = Lab::get();
    let started = Instant::now();
    let mut child = tend()
        .current_dir(repo())
        .args([
            "exec",
            "h2",
            "-i",
            &lab.inventory(),
            "--stream",
            "--format",
            "json",
            "--",
            "echo first; sleep 4; echo second",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tend");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = Vec::new();
    for line in out.lines() {
        let line = line.expect("read");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json line");
        if v["event"] == "output" {
            seen.push((v["line"].as_str().unwrap_or_default().to_string(), started.elapsed()));
        }
    }
    let status = child.wait().expect("wait");
    let total = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        seen.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["first", "second"],
        "{seen:?}"
    );
    // The first line came while the command slept: at least 3 s before the end.
    assert!(
        seen[0].1 + Duration::from_secs(3) < total,
        "first line after {:?}, run took {total:?}",
        seen[0].1
    );
    assert!(seen[1].1 >= Duration::from_secs(4), "{seen:?}");
}

/// Runs `tend` under `/usr/bin/time -v`; returns the run and tend's peak RSS in KiB.
fn measured(args: &[&str]) -> (common::Run, u64) {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_tend"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env_remove("TEND_INVENTORY")
        .output()
        .expect("/usr/bin/time (package `time`)");
    let r = common::Run::of(out);
    let rss = r
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS in:\n{}", r.stderr));
    (r, rss)
}

/// SHA-256 with OpenSSL (several times faster than coreutils on gigabytes).
fn local_sha256(path: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(path)
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn remote_sha256(lab: &Lab, i: u32, path: &str) -> String {
    lab.sh(i, &format!("openssl dgst -sha256 -r {path}"))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_2_gib_file_moves_host_to_control_node_to_hosts_in_constant_memory() {
    let lab = Lab::get();
    let dir = scratch();
    let tag = std::process::id();
    let remote = format!("/var/tmp/tend-big-{tag}");
    // 2 GiB that are not all alike: 64 MiB of random bytes, 32 times.
    lab.sh(
        1,
        &format!("head -c 64M /dev/urandom > {remote}.chunk && for i in $(seq 32); do cat {remote}.chunk; done > {remote} && rm {remote}.chunk"),
    );
    let want = remote_sha256(&lab, 1, &remote);
    let local = dir.path().join("big");
    let fetch = PlaybookFile::new(&format!(
        "- hosts: h1\n  gather_facts: no\n  tasks:\n    - name: fetch it\n      fetch: src={remote} dest={} flat=yes\n",
        local.display()
    ));
    let args = fetch.args(&lab, &[]);
    let (r, rss) = measured(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("fetch it", "h1")["status"], "changed", "{r:?}");
    assert_eq!(std::fs::metadata(&local).map(|m| m.len()).ok(), Some(2 << 30));
    assert_eq!(local_sha256(&local), want);
    eprintln!("peak RSS of tend run, fetch of 2 GiB: {rss} KiB");
    assert!(rss < RSS_LIMIT_KB, "tend run (fetch of 2 GiB) peaked at {rss} KiB");

    let copy = PlaybookFile::new(&format!(
        "- hosts: h2\n  gather_facts: no\n  tasks:\n    - name: copy it\n      copy: src={} dest={remote}\n",
        local.display()
    ));
    let args = copy.args(&lab, &[]);
    let (r, rss) = measured(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("copy it", "h2")["status"], "changed", "{r:?}");
    assert_eq!(remote_sha256(&lab, 2, &remote), want);
    eprintln!("peak RSS of tend run, copy of 2 GiB: {rss} KiB");
    assert!(rss < RSS_LIMIT_KB, "tend run (copy of 2 GiB) peaked at {rss} KiB");

    let (r, rss) = measured(&[
        "upload",
        "h3",
        local.to_str().unwrap_or_default(),
        &remote,
        "-i",
        &lab.inventory(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.host("h3")["msg"], "created", "{r:?}");
    assert_eq!(remote_sha256(&lab, 3, &remote), want);
    eprintln!("peak RSS of tend upload of 2 GiB: {rss} KiB");
    assert!(rss < RSS_LIMIT_KB, "tend upload of 2 GiB peaked at {rss} KiB");

    // Again: the same checksums on both ends, nothing moves.
    let again = fetch.run(&lab, &[]);
    assert_eq!(again.result("fetch it", "h1")["status"], "ok", "{again:?}");
    let again = copy.run(&lab, &[]);
    assert_eq!(again.result("copy it", "h2")["status"], "ok", "{again:?}");
    for i in 1..=3 {
        lab.sh(i, &format!("rm -f {remote}"));
    }
}

#[test]
fn a_command_output_streams_from_one_host_into_another() {
    use tend::transport::{ConnectOptions, Fleet, HostKeyPolicy, Input, RemoteCommand, Target, pipe};
    let lab = Lab::get();
    let tag = std::process::id();
    let src = format!("/var/tmp/tend-pipe-{tag}");
    lab.sh(1, &format!("head -c 50M /dev/urandom > {src}"));
    let want = remote_sha256(&lab, 1, &src);
    let inv = tend::inventory::load(&[std::path::PathBuf::from(lab.inventory())]).expect("inventory");
    let vars = tend::settings::Variables::new(&inv, Default::default());
    let target = |name: &str| {
        let h = inv.host_index(name).expect("host");
        Target::new(&vars, h, name, &Default::default()).expect("target")
    };
    let control = scratch();
    let options = ConnectOptions {
        host_keys: HostKeyPolicy::Strict,
        connect_timeout: Duration::from_secs(10),
        control_dir: control.path().to_path_buf(),
        channels_per_host: 8,
        ssh_defaults: None,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let transfer = rt.block_on(async {
        let fleet = Fleet::new(options, 2, Default::default());
        let (from, to) = (fleet.host(&target("h1")).await, fleet.host(&target("h2")).await);
        let (from, to) = (from.expect("h1"), to.expect("h2"));
        let t = pipe(
            &from,
            (&RemoteCommand::new(format!("cat {src}")), Input::None),
            &to,
            (
                &RemoteCommand::new(format!("cat > {src}.in && sha256sum < {src}.in")),
                b"",
            ),
        )
        .await;
        drop((from, to));
        fleet.close_all().await;
        t
    });
    let transfer = transfer.expect("pipe");
    assert_eq!(transfer.source.rc, Some(0));
    assert_eq!(transfer.dest.rc, Some(0), "{transfer:?}");
    assert_eq!(transfer.hashed.bytes, 50 << 20);
    assert_eq!(transfer.hashed.sha256, want);
    let on_h2 = String::from_utf8_lossy(&transfer.dest.stdout);
    assert!(on_h2.starts_with(&want), "{on_h2}");
    assert_eq!(remote_sha256(&lab, 2, &format!("{src}.in")), want);
    lab.sh(1, &format!("rm -f {src}"));
    lab.sh(2, &format!("rm -f {src}.in"));
}
