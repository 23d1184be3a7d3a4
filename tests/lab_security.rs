//! Security by default, tried against real lab hosts: crafted archives never write outside
//! their destination, an upload in progress is private to its owner, and values full of shell
//! syntax reach the host as the literal text they are.

mod common;
use common::{Lab, PlaybookFile};

/// Writes crafted archives into `dir` with Python's zipfile/tarfile: a `../` member, an absolute
/// member, a symlink to `victim` followed by a file through it (zip-slip and its tar forms).
fn craft_archives(dir: &std::path::Path, victim: &str, tag: &str) {
    let script = format!(
        r#"
import io, stat, tarfile, zipfile
z = zipfile.ZipFile('evil.zip', 'w')
z.writestr('ok.txt', 'fine')
z.writestr('../../../../tmp/slip-{tag}.txt', 'x')
z.writestr('{victim}/abs.txt', 'x')
link = zipfile.ZipInfo('link'); link.create_system = 3; link.external_attr = (stat.S_IFLNK | 0o777) << 16
z.writestr(link, '{victim}')
z.writestr('link/through.txt', 'x')
z.close()
t = tarfile.open('evil.tar.gz', 'w:gz')
def add(name, kind=tarfile.REGTYPE, target=''):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target
    data = b'x' if kind == tarfile.REGTYPE else b''
    i.size = len(data)
    t.addfile(i, io.BytesIO(data))
add('ok.txt')
add('../../../../tmp/slip-{tag}.txt')
add('{victim}/abs.txt')
add('link', tarfile.SYMTYPE, '{victim}')
add('link/through.txt')
add('rel', tarfile.SYMTYPE, '../../../..{victim}')
add('rel/through2.txt')
t.close()
"#
    );
    let out = std::process::Command::new("python3")
        .current_dir(dir)
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn crafted_archives_never_write_outside_their_destination() {
    let lab = Lab::get();
    let tag = format!("slip{}", std::process::id());
    let victim = format!("/tmp/{tag}-victim");
    let dest = format!("/tmp/{tag}-dest");
    lab.sh(
        1,
        &format!("rm -rf {victim} {dest} /tmp/slip-{tag}.txt; mkdir -p {victim} {dest}"),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h1
  gather_facts: false
  tasks:
    - name: zip
      unarchive: {{ src: evil.zip, dest: "{dest}/zip" }}
      ignore_errors: true
    - name: tar
      unarchive: {{ src: evil.tar.gz, dest: "{dest}/tar" }}
      ignore_errors: true
"#
    ));
    craft_archives(pf.dir.path(), &victim, &tag);
    lab.sh(1, &format!("mkdir -p {dest}/zip {dest}/tar"));
    let r = pf.run(&lab, &[]);
    for task in ["zip", "tar"] {
        let res = r.result(task, "h1");
        assert_eq!(res["status"], "ignored", "{task}: {res}");
    }
    // Nothing outside the destination; nothing half-extracted inside it either.
    assert_eq!(
        lab.sh(
            1,
            &format!("ls -A {victim}; ls /tmp/slip-{tag}.txt 2>/dev/null; find {dest} -mindepth 2 | wc -l")
        ),
        "0\n"
    );
    lab.sh(1, &format!("rm -rf {victim} {dest}"));
}

/// While a file is on its way, the temporary file beside its destination is readable by its
/// owner only, even when the file will end up world-readable: a large upload is watched from a
/// second connection.
#[test]
fn an_upload_in_progress_is_private_to_its_owner() {
    let lab = Lab::get();
    let tag = format!("up{}", std::process::id());
    let dir = format!("/tmp/{tag}");
    lab.sh(1, &format!("rm -rf {dir}; mkdir -p {dir}; chmod 755 {dir}"));
    let pf = PlaybookFile::new(&format!(
        "- hosts: h1\n  gather_facts: false\n  tasks:\n    - name: big\n      copy: {{ src: big.bin, dest: {dir}/big.bin, mode: '0644' }}\n"
    ));
    // Incompressible, so that it takes a while on the wire.
    let mut data = vec![0u8; 96 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(pf.dir.path().join("big.bin"), &data).expect("write");
    let watch = format!(
        "for i in $(seq 400); do for f in {dir}/.tend.*; do [ -e \"$f\" ] && stat -c '%a %U' \"$f\" && exit 0; done; sleep 0.02; done; echo never"
    );
    let lab2 = Lab::get();
    let seen = std::thread::spawn(move || lab2.sh(1, &watch));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let seen = seen.join().expect("watcher");
    assert_eq!(seen, "600 root\n", "the temporary file while it filled");
    // In place with the mode asked for, and no temporary file left.
    assert_eq!(
        lab.sh(1, &format!("stat -c %a {dir}/big.bin; ls -A {dir}")),
        "644\nbig.bin\n"
    );
    lab.sh(1, &format!("rm -rf {dir}"));
}

/// A value full of shell syntax (quotes, `$()`, backticks, `;`, globs) passed through the
/// parameters that reach a remote shell arrives as the literal text: the files are named and
/// filled with exactly it, and nothing it spells out runs.
#[test]
fn shell_syntax_in_parameters_arrives_as_literal_text() {
    let lab = Lab::get();
    let tag = format!("inj{}", std::process::id());
    let dir = format!("/tmp/{tag}");
    let pwned = format!("/tmp/{tag}-pwned");
    let evil = format!(r#"a'b"c $(touch {pwned}) `touch {pwned}` ; touch {pwned} * ? \n $HOME"#);
    lab.sh(1, &format!("rm -rf {dir} {pwned}*; mkdir -p {dir}"));
    let vars = serde_json::json!({ "evil": evil, "dir": dir });
    let vars_file = common::scratch();
    let vars_path = vars_file.path().join("vars.json");
    std::fs::write(&vars_path, vars.to_string()).expect("vars");
    let pf = PlaybookFile::new(
        r#"- hosts: h1
  gather_facts: false
  tasks:
    - file: { path: "{{ dir }}/{{ evil | replace('/', '_') }}", state: touch }
    - copy: { dest: "{{ dir }}/copy", content: "{{ evil }}" }
    - lineinfile: { path: "{{ dir }}/line", line: "{{ evil }}", create: true }
    - blockinfile: { path: "{{ dir }}/block", block: "{{ evil }}", create: true }
    - ini_file: { path: "{{ dir }}/ini", section: s, option: o, value: "{{ evil }}" }
    - command: { argv: [sh, -c, 'printf %s "$1" > "$2"', x, "{{ evil }}", "{{ dir }}/argv"] }
    - shell: "printf %s {{ evil | quote }} > {{ dir }}/shell"
    - cron: { name: "{{ evil }}", job: "{{ evil }}", cron_file: "tend-{{ dir | basename }}", user: root }
    - user: { name: "{{ dir | basename }}", comment: "{{ evil | replace(':', '') }}" }
"#,
    );
    let r = pf.run(&lab, &["-e", &format!("@{}", vars_path.display())]);
    assert_eq!(r.code, 0, "{r:?}");
    let read = |f: &str| lab.sh(1, &format!("cat {dir}/{f}"));
    assert_eq!(read("copy"), evil);
    assert_eq!(read("argv"), evil);
    assert_eq!(read("shell"), evil);
    assert_eq!(read("line"), format!("{evil}\n"));
    assert!(read("block").contains(&format!("{evil}\n")), "{}", read("block"));
    assert!(read("ini").contains(&format!("o = {evil}\n")), "{}", read("ini"));
    let name = evil.replace('/', "_");
    assert_eq!(
        lab.sh(1, &format!("ls -A {dir} | grep -c -F -x -- {}", shell_quote(&name))),
        "1\n"
    );
    let cron = lab.sh(1, &format!("cat /etc/cron.d/tend-{tag}"));
    assert!(cron.contains(&format!("#Ansible: {evil}\n")), "{cron}");
    let comment = evil.replace(':', "");
    assert_eq!(
        lab.sh(1, &format!("getent passwd {tag} | cut -d: -f5")),
        format!("{comment}\n")
    );
    // Nothing the value spells out ran.
    assert_eq!(lab.sh(1, &format!("ls {pwned}* 2>/dev/null | wc -l")), "0\n");
    lab.sh(1, &format!("userdel {tag}; rm -rf {dir} /etc/cron.d/tend-{tag}"));
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Gives h4 a new host key for a test and its own one back after (sshd restarted each time).
struct NewHostKey<'a>(&'a Lab);

impl<'a> NewHostKey<'a> {
    fn keep(lab: &'a Lab) -> Self {
        lab.sh(
            4,
            "mkdir -p /root/tend-hostkey && cp -a /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub /root/tend-hostkey/",
        );
        Self(lab)
    }

    fn change(&self) {
        let stop = self.0.lab_sh(&["sshd-stop", "4"]);
        assert_eq!(stop.code, 0, "{stop:?}");
        self.0.sh(
            4,
            "rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && ssh-keygen -q -t ed25519 -N '' -C reinstalled -f /etc/ssh/ssh_host_ed25519_key",
        );
        let start = self.0.lab_sh(&["sshd-start", "4"]);
        assert_eq!(start.code, 0, "{start:?}");
    }
}

impl Drop for NewHostKey<'_> {
    fn drop(&mut self) {
        let _ = self.0.lab_sh(&["sshd-stop", "4"]);
        let _ = self.0.on_host(
            4,
            &[
                "sh",
                "-c",
                "cp -a /root/tend-hostkey/ssh_host_ed25519_key* /etc/ssh/ && rm -rf /root/tend-hostkey",
            ],
        );
        let _ = self.0.lab_sh(&["sshd-start", "4"]);
    }
}

/// h4's host key changes between two tasks (its sshd restarted with a new key while a task runs
/// on the control node, so tend has to connect again): h4 stops there, unreachable with the words of a changed key and no later task
/// run on it; h1 finishes its play.
#[test]
fn a_host_key_changed_mid_run_stops_h4_and_only_h4() {
    use std::io::BufRead as _;
    let lab = Lab::get();
    let key = NewHostKey::keep(&lab);
    let mark = format!("/tmp/tend-hostkey-{}", std::process::id());
    let pf = PlaybookFile::new(&format!(
        "- hosts: h1,h4\n  gather_facts: false\n  tasks:\n\
         \x20   - {{name: t1, command: 'echo 1'}}\n\
         \x20   - {{name: t2, command: 'sleep 5', delegate_to: localhost}}\n\
         \x20   - {{name: t3, file: {{path: '{mark}', state: touch}}}}\n"
    ));
    let mut child = common::tend()
        .args(pf.args(&lab, &[]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tend");
    let out = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut t1 = 0;
    for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
        let e: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if e["event"] == "result" && e["task"] == "t1" {
            t1 += 1;
            if t1 == 2 {
                key.change();
            }
        }
        lines.push(e);
    }
    let code = child.wait().expect("wait").code();
    let on_h4 = lab.on_host(4, &["test", "-e", &mark]).code;
    lab.sh(1, &format!("test -e {mark} && rm -f {mark}"));
    drop(key);
    assert_eq!(t1, 2, "{lines:?}");
    assert_eq!(code, Some(3), "{lines:?}");
    let t3 = |host: &str| {
        lines
            .iter()
            .find(|e| e["event"] == "result" && e["task"] == "t3" && e["host"] == host)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(t3("h1")["status"], "changed", "{lines:?}");
    assert_eq!(t3("h4")["status"], "unreachable", "{lines:?}");
    let msg = t3("h4")["msg"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("has changed"), "{msg}");
    assert_ne!(on_h4, 0, "t3 ran on h4 with its changed key");
}
