//! `tend exec` against real lab hosts (real sshd in network namespaces).

mod common;
use common::{Lab, run, scratch, single_host_inventory};

#[test]
fn runs_on_several_hosts_and_groups_output_by_host() {
    let lab = Lab::get();
    let r = run(&[
        "exec",
        "h1:h2:h3",
        "-i",
        &lab.inventory(),
        "--",
        "hostname; echo err >&2",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    for h in ["h1", "h2", "h3"] {
        assert!(r.stdout.contains(&format!("{h} | ok | rc=0 | ")), "{r:?}");
        // Each host's own hostname, printed right under its header.
        let block = r.stdout.split(&format!("{h} | ok")).nth(1).unwrap_or_default();
        assert!(block.lines().nth(1) == Some(h), "{r:?}");
    }
    assert!(r.stderr.contains("3 hosts: 3 ok, 0 failed, 0 unreachable in "), "{r:?}");
}

#[test]
fn json_output_has_one_object_per_host() {
    let lab = Lab::get();
    let r = run(&[
        "exec",
        "h1:h2",
        "-i",
        &lab.inventory(),
        "--format",
        "json",
        "--",
        "sh",
        "-c",
        "echo \"$1\"; exit 3",
        "x",
        "a b'c",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let lines = r.events("result");
    assert_eq!(lines.len(), 2, "{r:?}");
    for h in ["h1", "h2"] {
        let v = r.host(h);
        assert_eq!(v["status"], "failed");
        assert_eq!(v["rc"], 3);
        // Words after `--` reach the host exactly, quotes and spaces included.
        assert_eq!(v["stdout"], "a b'c\n");
        assert!(v["duration_ms"].is_u64());
    }
}

#[test]
fn runs_as_the_inventory_user_on_the_real_host() {
    let lab = Lab::get();
    let marker = format!("/tmp/tend-exec-{}", std::process::id());
    let r = run(&[
        "exec",
        "h2",
        "-i",
        &lab.inventory(),
        "--",
        &format!("id -un > {marker}"),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // Checked inside the host without ssh: the command really ran there, as root.
    assert_eq!(lab.sh(2, &format!("cat {marker}; rm -f {marker}")), "root\n");
    assert!(
        lab.on_host(1, &["test", "-e", &marker]).code != 0,
        "ran on the wrong host"
    );
}

#[test]
fn a_down_host_h4_is_unreachable_and_the_others_go_on() {
    let lab = Lab::get();
    let stop = lab.lab_sh(&["sshd-stop", "4"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    let r = run(&[
        "exec",
        "h1:h4",
        "-i",
        &lab.inventory(),
        "--format",
        "json",
        "--",
        "echo up",
    ]);
    let start = lab.lab_sh(&["sshd-start", "4"]);
    assert_eq!(start.code, 0, "{start:?}");
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.host("h1")["status"], "ok");
    assert_eq!(r.host("h1")["stdout"], "up\n");
    let down = r.host("h4");
    assert_eq!(down["status"], "unreachable");
    let error = down["msg"].as_str().unwrap_or_default();
    assert!(error.contains("Connection refused"), "{r:?}");
    assert!(error.contains(&lab.address(4)), "{r:?}");
}

#[test]
fn failed_and_unreachable_together_exit_2() {
    let lab = Lab::get();
    let dir = scratch();
    // `ghost` is not a lab host: its address answers nothing.
    let inv = dir.path().join("inv.yaml");
    let base = std::fs::read_to_string(lab.inventory()).expect("read lab inventory");
    std::fs::write(
        &inv,
        base.replace(
            "    lab:\n      hosts:\n",
            &format!(
                "    lab:\n      hosts:\n        ghost:\n          ansible_host: {}.3.250\n",
                lab.net()
            ),
        ),
    )
    .expect("write");
    let r = run(&[
        "exec",
        "h1:ghost",
        "-i",
        inv.to_str().unwrap_or_default(),
        "--connect-timeout",
        "2",
        "--",
        "false",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("h1 | FAILED | rc=1"), "{r:?}");
    assert!(r.stdout.contains("ghost | UNREACHABLE"), "{r:?}");
    assert!(r.stderr.contains("2 hosts: 0 ok, 1 failed, 1 unreachable"), "{r:?}");
}

#[test]
fn a_changed_host_key_is_refused_with_a_way_out() {
    let lab = Lab::get();
    let dir = scratch();
    // A known_hosts that holds another key for h1's address: what a man in the middle looks like.
    let other = dir.path().join("other");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .expect("ssh-keygen");
    assert!(keygen.success());
    let public = std::fs::read_to_string(other.with_extension("pub")).expect("read key");
    let known = dir.path().join("known_hosts");
    let fake: Vec<&str> = public.split_whitespace().take(2).collect();
    std::fs::write(&known, format!("{} {}\n", lab.address(1), fake.join(" "))).expect("write");
    let inv = single_host_inventory(&lab, dir.path(), 1, &known);
    let r = run(&["exec", "all", "-i", inv.to_str().unwrap_or_default(), "--", "true"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "error: host key verification failed: the host key of `{}` has changed",
            lab.address(1)
        )),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("hint: if the host was reinstalled, remove the old key with `ssh-keygen -f "),
        "{r:?}"
    );
    // --accept-new-host-keys does not accept a changed key.
    let r = run(&[
        "exec",
        "all",
        "-i",
        inv.to_str().unwrap_or_default(),
        "--accept-new-host-keys",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
}

#[test]
fn an_unknown_host_key_is_refused_unless_accepted() {
    let lab = Lab::get();
    let dir = scratch();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, "").expect("write");
    let inv = single_host_inventory(&lab, dir.path(), 2, &known);
    let inv = inv.to_str().unwrap_or_default();
    let r = run(&["exec", "all", "-i", inv, "--", "true"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "error: host key verification failed: no known host key for `{}`",
            lab.address(2)
        )),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("hint: after checking the key, rerun with `--accept-new-host-keys`"),
        "{r:?}"
    );
    let r = run(&["exec", "all", "-i", inv, "--accept-new-host-keys", "--", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    // The key was recorded, and it is the host's real key.
    let recorded = std::fs::read_to_string(&known).expect("read");
    let real = lab.sh(2, "cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub");
    assert!(recorded.contains(real.trim()), "recorded:\n{recorded}");
    let r = run(&["exec", "all", "-i", inv, "--", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_refused_key_names_the_user_and_key() {
    let lab = Lab::get();
    let dir = scratch();
    let inv = single_host_inventory(&lab, dir.path(), 3, &lab.known_hosts());
    let text = std::fs::read_to_string(&inv)
        .expect("read")
        .replace("ansible_user: root", "ansible_user: nobody");
    std::fs::write(&inv, text).expect("write");
    let r = run(&["exec", "all", "-i", inv.to_str().unwrap_or_default(), "--", "true"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("Permission denied (publickey"), "{r:?}");
    assert!(
        r.stdout
            .contains("hint: check `ansible_user` and `ansible_ssh_private_key_file`"),
        "{r:?}"
    );
}

#[test]
fn a_command_past_its_timeout_is_killed_on_the_host() {
    let lab = Lab::get();
    let tag = format!("tend-timeout-{}", std::process::id());
    let r = run(&[
        "exec",
        "h3",
        "-i",
        &lab.inventory(),
        "--timeout",
        "1",
        "--format",
        "json",
        "--",
        &format!("sleep 30 # {tag}"),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.host("h3");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["msg"], "timed out after 1s");
    assert!(v["duration_ms"].as_u64().unwrap_or(u64::MAX) < 10_000, "{r:?}");
    // The remote process is gone, not left running.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let ps = lab.sh(3, "ps -eo args");
    assert!(!ps.contains(&tag), "still running on h3:\n{ps}");
}

/// `--shard K/N` splits the matched hosts so that N runs cover each exactly once, the same way
/// every time; `tend report merge` joins the shards' JSON Lines into one recap with the exit
/// code one run would have had.
#[test]
fn shards_cover_the_hosts_once_and_merge_into_one_recap() {
    let lab = Lab::get();
    let dir = scratch();
    let inv = lab.inventory();
    let all: Vec<String> = serde_json::from_str::<serde_json::Value>(&run(&["inventory", "-i", &inv, "--list"]).stdout)
        .expect("inventory json")["lab"]["hosts"]
        .as_array()
        .expect("lab hosts")
        .iter()
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect();
    let shard = |k: u32, cmd: &str| {
        let r = run(&[
            "exec",
            "lab",
            "-i",
            &inv,
            "--shard",
            &format!("{k}/3"),
            "--format",
            "json",
            "--",
            cmd,
        ]);
        let hosts: Vec<String> = r
            .events("result")
            .iter()
            .filter_map(|v| v["host"].as_str().map(str::to_string))
            .collect();
        (r, hosts)
    };
    let mut seen = Vec::new();
    let mut files = Vec::new();
    for k in 1..=3 {
        let (r, hosts) = shard(k, "hostname");
        assert_eq!(r.code, 0, "{r:?}");
        for h in &hosts {
            // Each host ran the command itself.
            assert_eq!(r.host(h)["stdout"], format!("{h}\n"));
        }
        // The same split on every run.
        assert_eq!(
            shard(k, "true").1.iter().collect::<std::collections::BTreeSet<_>>(),
            hosts.iter().collect()
        );
        let f = dir.path().join(format!("shard{k}.jsonl"));
        std::fs::write(&f, &r.stdout).expect("write");
        files.push(f.display().to_string());
        seen.extend(hosts);
    }
    seen.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(seen, want, "every host exactly once");

    let merge = |files: &[String]| {
        let mut args = vec!["report", "merge", "--format", "json"];
        args.extend(files.iter().map(String::as_str));
        run(&args)
    };
    let r = merge(&files);
    assert_eq!(r.code, 0, "{r:?}");
    let recap = &r.events("recap")[0];
    assert_eq!(recap["hosts"].as_object().map(|m| m.len()), Some(all.len()), "{recap}");
    assert_eq!(recap["exit_code"], 0);

    // A shard where a host failed makes the whole job fail, as one run would.
    let (r, _) = shard(2, "exit 3");
    assert_eq!(r.code, 2);
    std::fs::write(&files[1], &r.stdout).expect("write");
    let r = merge(&files);
    assert_eq!(r.code, 2, "{r:?}");
    // A shard whose output stops before its recap did not finish: 99, and it is named.
    let cut: String = std::fs::read_to_string(&files[2])
        .expect("read")
        .lines()
        .filter(|l| !l.contains("\"recap\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&files[2], cut).expect("write");
    let r = merge(&files);
    assert_eq!(r.code, 99, "{r:?}");
    assert!(
        r.events("warning")[0]["message"].as_str().is_some_and(
            |m| m.ends_with("shard3.jsonl has no recap: its shard did not finish (killed, or still running)")
        ),
        "{r:?}"
    );
    // The same shard twice: overlapping hosts are refused.
    let r = merge(&[files[0].clone(), files[0].clone()]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("the shards overlap"), "{r:?}");

    // `tend run --shard` takes the same hosts as `exec --shard`.
    let pb = dir.path().join("p.yaml");
    std::fs::write(
        &pb,
        "- hosts: lab\n  gather_facts: false\n  tasks:\n    - command: hostname\n",
    )
    .expect("pb");
    let r = run(&[
        "run",
        pb.to_str().unwrap_or_default(),
        "-i",
        &inv,
        "--shard",
        "1/3",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let ran: std::collections::BTreeSet<String> = r.events("recap")[0]["hosts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(ran, shard(1, "true").1.into_iter().collect());
}
