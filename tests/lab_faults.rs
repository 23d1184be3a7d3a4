//! Faults on the worst day, against real lab hosts: a disk that fills during an upload, slow
//! and lossy links.

mod common;
use common::{Lab, PlaybookFile};

/// A destination on a full disk (a 1 MiB tmpfs on h2): `copy` of a 4 MiB file fails naming the
/// host, the file and the cause; the old file is intact and no temporary file is left.
#[test]
fn a_full_disk_during_an_upload_keeps_the_old_file_and_says_why() {
    let lab = Lab::get();
    let mnt = format!("/mnt/tend-full-{}", std::process::id());
    lab.sh(
        2,
        &format!("mkdir -p {mnt} && mount -t tmpfs -o size=1m tmpfs {mnt} && printf 'old\\n' > {mnt}/app.conf"),
    );
    let pf = PlaybookFile::new(&format!(
        "- hosts: h2\n  gather_facts: false\n  tasks:\n    - name: big\n      copy: {{ src: big.bin, dest: {mnt}/app.conf }}\n"
    ));
    std::fs::write(pf.dir.path().join("big.bin"), vec![b'x'; 4 << 20]).expect("write");
    let r = pf.run(&lab, &[]);
    let state = lab.sh(
        2,
        &format!("cat {mnt}/app.conf; ls -A {mnt}; umount {mnt}; rmdir {mnt}"),
    );
    assert_eq!(r.code, 2, "{r:?}");
    let res = r.result("big", "h2");
    assert_eq!(res["status"], "failed");
    let msg = res["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("{mnt}/app.conf")) && msg.contains("No space left on device"),
        "{res}"
    );
    assert_eq!(state, "old\napp.conf\n");
}

/// A slow and a lossy path to h4, made inside its namespace (the kernel has no `netem`): port
/// 2201 redirected by nft to a proxy that holds every chunk back to the client for 500 ms,
/// port 2203 to one that holds it 3 s, and port 2202 straight to sshd with 5 % of its packets
/// dropped both ways by nft. Removed when dropped.
struct BadLinks;

impl BadLinks {
    fn new(lab: &Lab) -> Self {
        common::put_delay_proxy(lab, 4);
        let addr = lab.address(4);
        lab.sh(
            4,
            &format!(
                "for p in '12201 500' '12203 3000'; do set -- $p; setsid python3 /tmp/delay-proxy.py $1 {addr} 22 $2 >/dev/null 2>&1 < /dev/null & done; \
                 nft -f - <<'EOF'\n\
table inet tendfaults {{\n\
  chain pre {{ type nat hook prerouting priority dstnat; tcp dport 2201 redirect to :12201; tcp dport 2203 redirect to :12203; tcp dport 2202 redirect to :22; }}\n\
  chain in {{ type filter hook input priority 0; meta l4proto tcp ct original proto-dst 2202 numgen random mod 100 < 5 counter drop; }}\n\
  chain out {{ type filter hook output priority 0; meta l4proto tcp ct original proto-dst 2202 numgen random mod 100 < 5 counter drop; }}\n\
}}\n\
EOF\n\
                 [ $? = 0 ] || exit 1; for i in $(seq 50); do ss -ltn | grep -q ':12203 ' && ss -ltn | grep -q ':12201 ' && exit 0; sleep 0.1; done; exit 1"
            ),
        );
        Self
    }
}

impl Drop for BadLinks {
    fn drop(&mut self) {
        let lab = Lab::get();
        let _ = lab.on_host(
            4,
            &[
                "sh",
                "-c",
                "nft delete table inet tendfaults; pkill -f 'python3 /tmp/[d]elay-proxy'; rm -f /tmp/delay-proxy.py",
            ],
        );
    }
}

/// One playbook under `strategy: free` over four names of h4: straight (port 22), slow (500 ms
/// back to tend on every chunk), lossy (5 % of packets dropped both ways) and too slow for a
/// 1 s connect timeout. The straight host finishes its tasks before the slow one has done its
/// second; the slow and lossy ones finish theirs; the one past its timeout is unreachable with
/// its name and ssh's words; exit 3.
#[test]
fn slow_and_lossy_links_to_h4_hold_up_no_other_host_and_timeouts_name_theirs() {
    let lab = Lab::get();
    let _links = BadLinks::new(&lab);
    let addr = lab.address(4);
    let pf = PlaybookFile::new(
        "- hosts: all\n  gather_facts: false\n  strategy: free\n  tasks:\n\
         \x20   - {name: t1, command: 'echo 1'}\n\
         \x20   - {name: t2, copy: {src: big.bin, dest: '/tmp/tend-links-{{ inventory_hostname }}'}}\n\
         \x20   - {name: t3, command: 'wc -c /tmp/tend-links-{{ inventory_hostname }}', register: size}\n\
         \x20   - {name: t4, file: {path: '/tmp/tend-links-{{ inventory_hostname }}', state: absent}}\n\
         \x20   - {name: t5, command: 'echo 5'}\n",
    );
    // The host's keys under its name with each port, as ssh looks them up.
    let known = std::fs::read_to_string(lab.known_hosts()).expect("known hosts");
    let mut kh = known.clone();
    for line in known.lines().filter(|l| l.starts_with(&format!("{addr} "))) {
        for port in [2201, 2202, 2203] {
            kh.push_str(&line.replacen(&addr, &format!("[{addr}]:{port}"), 1));
            kh.push('\n');
        }
    }
    pf.file("known_hosts", &kh);
    pf.file(
        "inventory.yaml",
        &format!(
            "all:\n  vars:\n    ansible_user: root\n    ansible_host: {addr}\n    ansible_ssh_private_key_file: {key}\n    ansible_ssh_common_args: \"-o UserKnownHostsFile={kh}\"\n  hosts:\n    straight: {{}}\n    slow: {{ansible_port: 2201}}\n    lossy: {{ansible_port: 2202}}\n    timeout: {{ansible_port: 2203, ansible_ssh_common_args: \"-o UserKnownHostsFile={kh} -o ConnectTimeout=1\"}}\n",
            key = lab.key().display(),
            kh = pf.dir.path().join("known_hosts").display(),
        ),
    );
    std::fs::write(pf.dir.path().join("big.bin"), vec![b'x'; 1 << 20]).expect("big.bin");
    let inventory = pf.dir.path().join("inventory.yaml");
    let r = common::run(&[
        "run",
        pf.path.to_str().unwrap_or_default(),
        "-i",
        inventory.to_str().unwrap_or_default(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    let lines = r.json_lines();
    let at = |host: &str, task: &str| {
        lines
            .iter()
            .position(|l| l["event"] == "result" && l["host"] == host && l["task"] == task)
            .unwrap_or_else(|| panic!("no {task} on {host}: {r:?}"))
    };
    assert!(at("straight", "t5") < at("slow", "t2"), "{r:?}");
    for host in ["straight", "slow", "lossy"] {
        let recap = r.recap(host);
        assert_eq!(recap["failed"], 0, "{host}: {r:?}");
        assert_eq!(recap["unreachable"], 0, "{host}: {r:?}");
        assert_eq!(
            r.result("t3", host)["stdout_tail"],
            format!("1048576 /tmp/tend-links-{host}"),
            "{host}"
        );
    }
    // Packets of the lossy link were dropped (the ordering above shows the slow one). Each
    // direction alone can see none: the kernel merges the copy's segments into a few large
    // packets (GRO), and 5 % of a few dozen is often zero; both directions together never do.
    let counters = lab.sh(4, "nft list table inet tendfaults");
    let dropped: Vec<u64> = counters
        .lines()
        .filter_map(|l| l.split("packets ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(dropped.len() == 2 && dropped.iter().sum::<u64>() > 0, "{counters}");
    assert_eq!(r.recap("timeout")["unreachable"], 1, "{r:?}");
    let msg = r.result("t1", "timeout")["msg"].to_string();
    assert!(
        msg.contains("timed out") && msg.contains(&format!("{addr} port 2203")),
        "{msg}"
    );
}
