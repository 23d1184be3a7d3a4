//! File and network modules against real lab hosts (only h2 and h3, under unique paths in
//! /root): the state on the host byte for byte, a second run changes nothing, `--check` leaves
//! the host alone and `--diff` shows the real before/after text.

mod common;
use common::{Lab, PlaybookFile, Run};

/// A directory on the hosts that no other test (or person) uses.
fn unique(name: &str) -> String {
    format!("/root/tend-net-{name}-{}", std::process::id())
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn lineinfile_edits_like_ansible() {
    let lab = Lab::get();
    let d = unique("lineinfile");
    lab.sh(
        2,
        &format!(
            "rm -rf {d}; mkdir -p {d}; printf 'ServerRoot x\\n#Listen 80\\nUser www\\nSELINUX=disabled\\n%%wheel ALL\\n' > {d}/httpd.conf; chmod 600 {d}/httpd.conf"
        ),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: listen
      lineinfile:
        path: {d}/httpd.conf
        regexp: '^Listen '
        insertafter: '^#Listen '
        line: Listen 8080
    - name: selinux
      lineinfile:
        dest: {d}/httpd.conf
        regexp: '^SELINUX=(disabled|permissive)$'
        line: 'SELINUX=enforcing # was \1'
        backrefs: true
    - name: wheel
      lineinfile:
        path: {d}/httpd.conf
        regexp: '^%wheel'
        state: absent
    - name: new file
      lineinfile:
        path: {d}/sub/dir/hosts
        line: 10.0.0.1 db
        create: true
        mode: '0640'
"#
    ));
    let r = pf.run(&lab, &["--diff"]);
    ok(&r);
    let listen = r.result("listen", "h2");
    assert_eq!(listen["status"], "changed");
    assert_eq!(listen["msg"], "line added");
    assert_eq!(
        listen["diff"],
        serde_json::json!([{
            "path": format!("{d}/httpd.conf"),
            "before": "ServerRoot x\n#Listen 80\nUser www\nSELINUX=disabled\n%wheel ALL\n",
            "after": "ServerRoot x\n#Listen 80\nListen 8080\nUser www\nSELINUX=disabled\n%wheel ALL\n",
        }])
    );
    assert_eq!(r.result("selinux", "h2")["msg"], "line replaced");
    assert_eq!(r.result("wheel", "h2")["msg"], "1 line(s) removed");
    assert_eq!(r.result("new file", "h2")["msg"], "line added");
    assert_eq!(
        lab.sh(2, &format!("cat {d}/httpd.conf; stat -c %a {d}/httpd.conf")),
        "ServerRoot x\n#Listen 80\nListen 8080\nUser www\nSELINUX=enforcing # was disabled\n600\n"
    );
    assert_eq!(
        lab.sh(2, &format!("cat {d}/sub/dir/hosts; stat -c %a {d}/sub/dir/hosts")),
        "10.0.0.1 db\n640\n"
    );

    // Unchanged playbook: nothing to do.
    let again = pf.run(&lab, &["--diff"]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    assert!(again.result("listen", "h2").get("diff").is_none());

    // Someone edits the file: --check reports the change, with its diff, and writes nothing.
    lab.sh(
        2,
        &format!("sed -i 's/^Listen 8080$/Listen 9090/' {d}/httpd.conf; chmod 644 {d}/sub/dir/hosts"),
    );
    let before = lab.sh(2, &format!("sha256sum {d}/httpd.conf; stat -c %a {d}/sub/dir/hosts"));
    let check = pf.run(&lab, &["--check", "--diff"]);
    ok(&check);
    assert_eq!(check.total_changed(), 2, "{check:?}");
    assert_eq!(check.result("listen", "h2")["msg"], "line replaced");
    assert_eq!(
        check.result("listen", "h2")["diff"][0]["after"],
        "ServerRoot x\n#Listen 80\nListen 8080\nUser www\nSELINUX=enforcing # was disabled\n"
    );
    assert_eq!(
        check.result("new file", "h2")["msg"],
        "ownership, perms or SE linux context changed"
    );
    assert_eq!(
        lab.sh(2, &format!("sha256sum {d}/httpd.conf; stat -c %a {d}/sub/dir/hosts")),
        before
    );
    // A real run puts the line and the mode back.
    let fix = pf.run(&lab, &[]);
    ok(&fix);
    assert_eq!(fix.total_changed(), 2, "{fix:?}");
    assert_eq!(
        lab.sh(
            2,
            &format!("grep -c '^Listen 8080$' {d}/httpd.conf; stat -c %a {d}/sub/dir/hosts")
        ),
        "1\n640\n"
    );
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn lineinfile_failures_and_guard() {
    let lab = Lab::get();
    let d = unique("lineguard");
    lab.sh(3, &format!("rm -rf {d}; mkdir -p {d}; printf 'a\\n' > {d}/f"));
    // Missing file without `create`: Ansible's message. A validation command that changes the
    // file under our feet: the write is refused, the other change is kept.
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h3
  gather_facts: false
  tasks:
    - name: missing
      lineinfile:
        path: {d}/nope
        line: x
      ignore_errors: true
    - name: raced
      lineinfile:
        path: {d}/f
        line: b
        validate: "sh -c 'echo racer >> {d}/f' %s"
      ignore_errors: true
    - name: bad validate
      lineinfile:
        path: {d}/f
        line: c
        validate: "false"
      ignore_errors: true
"#
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    let missing = r.result("missing", "h3");
    assert_eq!(missing["status"], "ignored");
    assert_eq!(missing["msg"], format!("Destination {d}/nope does not exist !"));
    let raced = r.result("raced", "h3");
    assert_eq!(raced["status"], "ignored");
    assert_eq!(
        raced["msg"],
        format!("{d}/f changed on the host while it was being edited; nothing was written (run again)")
    );
    assert_eq!(r.result("bad validate", "h3")["msg"], "validate must contain %s: false");
    assert_eq!(lab.sh(3, &format!("cat {d}/f; ls -A {d}")), "a\nracer\nf\n");
    lab.sh(3, &format!("rm -rf {d}"));
}

#[test]
fn blockinfile_inserts_updates_and_removes() {
    let lab = Lab::get();
    let d = unique("blockinfile");
    lab.sh(
        2,
        &format!("rm -rf {d}; mkdir -p {d}; printf '<html>\\n<body>\\n</body>\\n</html>\\n' > {d}/index.html; ln -s index.html {d}/link.html"),
    );
    let playbook = |block: &str, state: &str| {
        format!(
            r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: block
      blockinfile:
        path: {d}/link.html
        marker: "<!-- {{mark}} ANSIBLE MANAGED BLOCK -->"
        insertafter: "<body>"
        block: |
{block}
        state: {state}
        backup: true
    - name: sshd
      blockinfile:
        path: {d}/sshd_config
        create: true
        block: |
          Match User ansible-agent
          PasswordAuthentication no
"#
        )
    };
    let pf = PlaybookFile::new(&playbook("          <h1>Welcome</h1>", "present"));
    let r = pf.run(&lab, &["--diff"]);
    ok(&r);
    let block = r.result("block", "h2");
    assert_eq!(block["msg"], "Block inserted");
    assert_eq!(
        block["diff"],
        serde_json::json!([{
            "path": format!("{d}/link.html"),
            "before": "<html>\n<body>\n</body>\n</html>\n",
            "after": "<html>\n<body>\n<!-- BEGIN ANSIBLE MANAGED BLOCK -->\n<h1>Welcome</h1>\n<!-- END ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n",
        }])
    );
    assert_eq!(r.result("sshd", "h2")["msg"], "File created");
    // The symlink still points at the edited file, which was backed up first.
    assert_eq!(
        lab.sh(
            2,
            &format!("readlink {d}/link.html; cat {d}/index.html {d}/sshd_config; ls {d} | grep -c '^index.html.*~$'")
        ),
        "index.html\n<html>\n<body>\n<!-- BEGIN ANSIBLE MANAGED BLOCK -->\n<h1>Welcome</h1>\n<!-- END ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n\
         # BEGIN ANSIBLE MANAGED BLOCK\nMatch User ansible-agent\nPasswordAuthentication no\n# END ANSIBLE MANAGED BLOCK\n1\n"
    );
    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");

    // New block text: replaced in place, the old file kept as a backup.
    let pf2 = PlaybookFile::new(&playbook("          <h1>Hello</h1>\n          <p>x</p>", "present"));
    let check = pf2.run(&lab, &["--check"]);
    ok(&check);
    assert_eq!(check.result("block", "h2")["status"], "changed");
    assert!(lab.sh(2, &format!("cat {d}/index.html")).contains("<h1>Welcome</h1>"));
    let r = pf2.run(&lab, &[]);
    ok(&r);
    assert_eq!(
        lab.sh(2, &format!("cat {d}/index.html; ls {d} | grep -c '^index.html.*~$'")),
        "<html>\n<body>\n<!-- BEGIN ANSIBLE MANAGED BLOCK -->\n<h1>Hello</h1>\n<p>x</p>\n<!-- END ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n2\n"
    );
    // state=absent takes the block out again.
    let pf3 = PlaybookFile::new(&playbook("          x", "absent"));
    let r = pf3.run(&lab, &["--diff"]);
    ok(&r);
    assert_eq!(r.result("block", "h2")["msg"], "Block removed");
    assert_eq!(
        lab.sh(2, &format!("cat {d}/index.html")),
        "<html>\n<body>\n</body>\n</html>\n"
    );
    assert_eq!(pf3.run(&lab, &[]).total_changed(), 0);
    lab.sh(2, &format!("rm -rf {d}"));
}

/// A small HTTP server on the lab bridge (lab hosts reach the gateway), on a free port, stopped
/// when dropped. Serves files from `root`, plus a few endpoints for `uri`.
struct HttpServer {
    child: std::process::Child,
    address: String,
    port: u16,
    _dir: tempfile::TempDir,
}

const SERVER: &str = r#"
import base64, json, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

root, address, counts = sys.argv[1], sys.argv[2], {}

class H(SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)

    def log_message(self, *a):
        pass

    def reply(self, code, body, extra=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/hello.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/auth":
            if self.headers.get("Authorization") == "Basic " + base64.b64encode(b"alice:s3cret").decode():
                self.reply(200, {"user": "alice"})
            else:
                self.reply(401, {"error": "auth"}, [("WWW-Authenticate", 'Basic realm="lab"')])
        elif self.path.startswith("/flaky/"):
            counts[self.path] = counts.get(self.path, 0) + 1
            if counts[self.path] < 3:
                self.reply(503, {"try": counts[self.path]})
            else:
                self.reply(200, {"try": counts[self.path]})
        elif self.path == "/headers":
            self.reply(200, {"agent": self.headers.get("User-Agent"), "x": self.headers.get("X-Token")}, [("X-Lab-Thing", "a-b")])
        else:
            super().do_GET()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.reply(201, {"body": body, "type": self.headers.get("Content-Type")})

srv = ThreadingHTTPServer((address, 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

impl HttpServer {
    fn start(lab: &Lab, files: &[(&str, &[u8])]) -> Self {
        let address = lab.gateway();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).expect("mkdir");
        for (name, data) in files {
            std::fs::write(root.join(name), data).expect("write");
        }
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER).expect("write");
        let mut child = std::process::Command::new("python3")
            .arg(&script)
            .arg(&root)
            .arg(&address)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port from the server: {line:?}"));
        Self {
            child,
            address,
            port,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}:{}/{path}", self.address, self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn get_url_downloads_on_the_host_verifies_and_skips() {
    let lab = Lab::get();
    let srv = HttpServer::start(&lab, &[("pkg.txt", b"payload v1\n")]);
    let d = unique("get_url");
    lab.sh(3, &format!("rm -rf {d}; mkdir -p {d}/dir"));
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h3
  gather_facts: false
  tasks:
    - name: pinned
      get_url:
        url: {pkg}
        dest: {d}/pkg.txt
        checksum: "sha256:{sum}"
        mode: "0640"
        headers:
          X-Token: abc
    - name: into dir
      get_url:
        url: {pkg}
        dest: {d}/dir/
    - name: missing
      get_url:
        url: {missing}
        dest: {d}/missing.txt
      ignore_errors: true
    - name: wrong sum
      get_url:
        url: {pkg}
        dest: {d}/wrong.txt
        checksum: "sha256:{zeros}"
      ignore_errors: true
"#,
        pkg = srv.url("pkg.txt"),
        missing = srv.url("missing.txt"),
        sum = sha256(b"payload v1\n"),
        zeros = "0".repeat(64),
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    assert_eq!(r.result("pinned", "h3")["status"], "changed");
    assert_eq!(r.result("pinned", "h3")["msg"], "OK (11 bytes)");
    assert_eq!(r.result("into dir", "h3")["status"], "changed");
    let missing = r.result("missing", "h3");
    assert_eq!(missing["status"], "ignored");
    assert_eq!(
        missing["msg"],
        "Request failed: curl: (22) The requested URL returned error: 404"
    );
    let wrong = r.result("wrong sum", "h3");
    assert_eq!(
        wrong["msg"],
        format!(
            "The checksum for {d}/wrong.txt did not match {}; it was {}. The downloaded file was removed.",
            "0".repeat(64),
            sha256(b"payload v1\n")
        )
    );
    // The files, their modes, and no temp file left behind.
    assert_eq!(
        lab.sh(
            3,
            &format!("cd {d}; cat pkg.txt dir/pkg.txt; stat -c '%a %n' pkg.txt dir/pkg.txt; ls -A . dir")
        ),
        "payload v1\npayload v1\n640 pkg.txt\n644 dir/pkg.txt\n.:\ndir\npkg.txt\n\ndir:\npkg.txt\n"
    );

    let again = pf.run(&lab, &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.total_changed(), 0, "{again:?}");
    assert_eq!(again.result("pinned", "h3")["msg"], "file already exists");

    // --check: the missing file would be downloaded, but is not.
    lab.sh(3, &format!("rm {d}/pkg.txt"));
    let check = pf.run(&lab, &["--check"]);
    assert_eq!(check.result("pinned", "h3")["status"], "changed", "{check:?}");
    assert_eq!(lab.sh(3, &format!("ls -A {d}")), "dir\n");
    lab.sh(3, &format!("rm -rf {d}"));
}

#[test]
fn unarchive_extracts_once_and_repairs_drift() {
    let lab = Lab::get();
    let d = unique("unarchive");
    let name = format!("app-{}.tgz", std::process::id());
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h3
  gather_facts: false
  tasks:
    - name: tgz
      unarchive:
        src: {name}
        dest: {d}/tgz
        list_files: true
    - name: zip
      unarchive:
        src: app.zip
        dest: {d}/zip
        mode: "0750"
    - name: remote
      unarchive:
        src: {d}/tgz/app/inner.tar
        dest: {d}/remote
        remote_src: true
        extra_opts: [--strip-components=1]
    - name: creates
      unarchive:
        src: {name}
        dest: {d}/tgz
        creates: {d}/tgz/app
"#
    ));
    // The archives are made on the control node, next to the playbook.
    let src = pf.dir.path().join("src");
    std::fs::create_dir_all(src.join("app/bin")).expect("mkdir");
    std::fs::write(src.join("app/a.txt"), "alpha\n").expect("write");
    std::fs::write(src.join("app/bin/run"), "#!/bin/sh\necho run\n").expect("write");
    std::os::unix::fs::symlink("a.txt", src.join("app/link")).expect("symlink");
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(pf.dir.path())
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh("chmod 755 src/app/bin/run && tar -cf src/app/inner.tar -C src app/a.txt");
    sh(&format!("tar --owner=0 --group=0 -czf {name} -C src app"));
    sh(
        "cd src && python3 -c \"import zipfile; z = zipfile.ZipFile('../app.zip', 'w'); z.write('app/a.txt'); z.write('app/bin/run'); z.close()\"",
    );
    lab.sh(3, &format!("rm -rf {d}; mkdir -p {d}/tgz {d}/zip {d}/remote"));

    let r = pf.run(&lab, &[]);
    ok(&r);
    for task in ["tgz", "zip", "remote"] {
        assert_eq!(r.result(task, "h3")["status"], "changed", "{task}: {r:?}");
    }
    assert_eq!(r.result("creates", "h3")["status"], "skipped");
    assert_eq!(
        r.result("creates", "h3")["msg"],
        format!("skipped, since {d}/tgz/app exists")
    );
    assert_eq!(
        lab.sh(3, &format!("cd {d}; find tgz zip remote | sort; cat tgz/app/a.txt; readlink tgz/app/link; stat -c '%a %n' tgz/app/bin/run zip/app/a.txt zip/app/bin; cat remote/a.txt")),
        "remote\nremote/a.txt\ntgz\ntgz/app\ntgz/app/a.txt\ntgz/app/bin\ntgz/app/bin/run\ntgz/app/inner.tar\ntgz/app/link\n\
         zip\nzip/app\nzip/app/a.txt\nzip/app/bin\nzip/app/bin/run\nalpha\na.txt\n755 tgz/app/bin/run\n750 zip/app/a.txt\n750 zip/app/bin\nalpha\n"
    );
    // Nothing staged is left on the host.
    assert_eq!(lab.sh(3, &format!("find /tmp -name {name} | wc -l")), "0\n");

    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");

    // Drift inside dest: --check sees it and leaves it, a real run repairs it.
    lab.sh(3, &format!("echo changed > {d}/zip/app/a.txt; rm {d}/tgz/app/link"));
    let check = pf.run(&lab, &["--check"]);
    ok(&check);
    assert_eq!(check.result("zip", "h3")["status"], "changed", "{check:?}");
    assert_eq!(check.result("tgz", "h3")["status"], "changed", "{check:?}");
    assert_eq!(check.result("tgz", "h3")["msg"], "app/link differs from the archive");
    assert_eq!(check.result("remote", "h3")["status"], "ok", "{check:?}");
    assert_eq!(
        lab.sh(3, &format!("cat {d}/zip/app/a.txt; ls {d}/tgz/app")),
        "changed\na.txt\nbin\ninner.tar\n"
    );
    let fix = pf.run(&lab, &[]);
    ok(&fix);
    assert_eq!(fix.total_changed(), 2, "{fix:?}");
    assert_eq!(
        lab.sh(3, &format!("cat {d}/zip/app/a.txt; readlink {d}/tgz/app/link")),
        "alpha\na.txt\n"
    );
    lab.sh(3, &format!("rm -rf {d}"));
}

#[test]
fn fetch_copies_to_the_control_node() {
    let lab = Lab::get();
    let d = unique("fetch");
    lab.sh(
        2,
        &format!("rm -rf {d}; mkdir -p {d}; printf 'key=1\\n' > {d}/app.conf"),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: tree
      fetch:
        src: {d}/app.conf
        dest: fetched
    - name: flat
      fetch:
        src: {d}/app.conf
        dest: flat/
        flat: true
    - name: missing
      fetch:
        src: {d}/nope
        dest: fetched
      ignore_errors: true
    - name: missing ok
      fetch:
        src: {d}/nope
        dest: fetched
        fail_on_missing: false
"#
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    let tree = pf.dir.path().join(format!("fetched/h2{d}/app.conf"));
    let flat = pf.dir.path().join("flat/app.conf");
    assert_eq!(std::fs::read_to_string(&tree).expect("tree copy"), "key=1\n");
    assert_eq!(std::fs::read_to_string(&flat).expect("flat copy"), "key=1\n");
    assert_eq!(r.result("tree", "h2")["status"], "changed");
    assert_eq!(r.result("missing", "h2")["status"], "ignored");
    assert_eq!(
        r.result("missing", "h2")["msg"],
        format!("the remote file does not exist, not transferring, ignored: {d}/nope")
    );
    assert_eq!(r.result("missing ok", "h2")["status"], "ok");

    let again = pf.run(&lab, &[]);
    assert_eq!(again.total_changed(), 0, "{again:?}");

    // Changed on the host: --check reports it and keeps the local copy.
    lab.sh(2, &format!("printf 'key=2\\n' > {d}/app.conf"));
    let check = pf.run(&lab, &["--check"]);
    assert_eq!(check.result("tree", "h2")["status"], "changed", "{check:?}");
    assert_eq!(std::fs::read_to_string(&tree).expect("tree copy"), "key=1\n");
    let r = pf.run(&lab, &[]);
    assert_eq!(r.total_changed(), 2, "{r:?}");
    assert_eq!(std::fs::read_to_string(&tree).expect("tree copy"), "key=2\n");
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn wait_for_ports_and_files() {
    let lab = Lab::get();
    let srv = HttpServer::start(&lab, &[]);
    // A port nobody listens on: bound, then released.
    let closed = std::net::TcpListener::bind((lab.gateway(), 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let d = unique("wait_for");
    lab.sh(2, &format!("rm -rf {d}; mkdir -p {d}"));
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: open
      wait_for:
        host: {gw}
        port: {open}
        timeout: 10
    - name: closed
      wait_for:
        host: {gw}
        port: {closed}
        state: stopped
        timeout: 10
    - name: start writer
      shell: "nohup sh -c 'sleep 1; echo ready > {d}/flag' >/dev/null 2>&1 &"
    - name: file
      wait_for:
        path: {d}/flag
        search_regex: "^rea.y$"
        timeout: 20
    - name: gone
      wait_for:
        path: {d}/never
        state: absent
    - name: too late
      wait_for:
        path: {d}/never
        timeout: 1
        msg: the app did not come up
      ignore_errors: true
"#,
        open = srv.port,
        gw = lab.gateway(),
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    for t in ["open", "closed", "file", "gone"] {
        assert_eq!(r.result(t, "h2")["status"], "ok", "{t}: {r:?}");
    }
    assert!(
        r.result("file", "h2")["duration_ms"].as_u64().unwrap_or(0) >= 300,
        "{r:?}"
    );
    let late = r.result("too late", "h2");
    assert_eq!(late["status"], "ignored");
    assert_eq!(late["msg"], "the app did not come up (elapsed 1s)");
    assert_eq!(r.total_changed(), 1, "only the shell task changes: {r:?}");
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn uri_from_the_control_node() {
    let lab = Lab::get();
    let srv = HttpServer::start(&lab, &[("hello.txt", b"hello\n")]);
    let key = std::process::id();
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: get
      uri:
        url: {headers}
        headers:
          X-Token: abc
        return_content: true
      register: g
    - assert:
        that:
          - g.status == 200
          - g.json.x == 'abc'
          - "'tend-httpget/' in g.json.agent"
          - g.x_lab_thing == 'a-b'
          - g.content_type == 'application/json'
          - "'{{' in g.content"
          - g.url == '{headers}'
    - name: post json
      uri:
        url: {post}
        method: POST
        body: {{name: tend, n: 1}}
        body_format: json
        status_code: [201]
      register: p
    - name: post form
      uri:
        url: {post}
        method: POST
        body: {{a: "1 2", b: "&"}}
        body_format: form-urlencoded
        status_code: 201
      register: f
    - assert:
        that:
          - p.json.body == '{{"name":"tend","n":1}}'
          - p.json.type == 'application/json'
          - f.json.body == 'a=1+2&b=%26'
          - f.json.type == 'application/x-www-form-urlencoded'
    - name: auth
      uri:
        url: {auth}
        user: alice
        password: s3cret
      register: a
    - name: redirect followed
      uri:
        url: {redirect}
        return_content: true
      register: rd
    - name: redirect kept
      uri:
        url: {redirect}
        follow_redirects: none
        status_code: 302
    - assert:
        that:
          - a.json.user == 'alice'
          - rd.redirected
          - rd.content == 'hello\n'
    - name: not found
      uri:
        url: {missing}
      ignore_errors: true
    - name: body regex
      uri:
        url: {hello}
        body_regex: "^bye"
      ignore_errors: true
    - name: flaky
      uri:
        url: {flaky}
      register: fl
      until: fl.status == 200
      retries: 5
      delay: 0
    - assert:
        that: fl.json.try == 3
"#,
        headers = srv.url("headers"),
        post = srv.url("post"),
        auth = srv.url("auth"),
        redirect = srv.url("redirect"),
        missing = srv.url("missing.txt"),
        hello = srv.url("hello.txt"),
        flaky = srv.url(&format!("flaky/{key}")),
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    assert_eq!(r.total_changed(), 0, "{r:?}");
    assert_eq!(
        r.result("not found", "h2")["msg"],
        "Status code was 404 and not [200]: HTTP Error 404: Not Found"
    );
    assert_eq!(
        r.result("body regex", "h2")["msg"],
        "the response body does not match body_regex `^bye`"
    );
    assert_eq!(r.result("flaky", "h2")["status"], "ok");

    // --check: safe methods still run, a POST is skipped.
    let check = pf.run(&lab, &["--check"]);
    assert_eq!(check.result("get", "h2")["status"], "ok", "{check:?}");
    assert_eq!(check.result("post json", "h2")["status"], "skipped", "{check:?}");
}

#[test]
fn pause_waits_and_refuses_to_prompt_without_a_terminal() {
    let lab = Lab::get();
    let pf = PlaybookFile::new(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: wait
      pause:
        seconds: 1
      register: p
    - assert:
        that: p.delta >= 1
    - name: ask
      pause:
        prompt: Deploy now?
"#,
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.result("wait", "h2")["duration_ms"].as_u64().unwrap_or(0) >= 1000);
    let ask = r.result("ask", "h2");
    assert_eq!(ask["status"], "failed");
    assert_eq!(
        ask["msg"],
        "pause needs an answer at a terminal (prompt: \"Deploy now?\"), but tend's input is not a terminal; give `seconds` or `minutes` to pause without asking"
    );
}

#[test]
fn replace_edits_every_match_like_ansible() {
    let lab = Lab::get();
    let d = unique("replace");
    lab.sh(
        2,
        &format!(
            "rm -rf {d}; mkdir -p {d}; printf '127.0.0.1 localhost\\n10.0.0.1 old.host.name alias\\n10.0.0.2 old.host.name\\n<vhost>\\nport=80\\n</vhost>\\nport=80\\n' > {d}/hosts; chmod 640 {d}/hosts; ln -s hosts {d}/link"
        ),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: rename
      replace:
        path: {d}/link
        regexp: '(\s+)old\.host\.name(\s+.*)?$'
        replace: '\1new.host.name\2'
        backup: true
      register: rn
    - name: backup file
      debug:
        msg: "{{{{ rn.backup_file }}}}"
      when: rn is changed
    - name: section
      ansible.builtin.replace:
        dest: {d}/hosts
        after: '<vhost>'
        before: '</vhost>'
        regexp: '^port=(80)$'
        replace: 'port=\g<1>80'
    - name: no section
      replace:
        path: {d}/hosts
        after: '<nothing>'
        regexp: x
        replace: y
    - name: missing
      replace:
        path: {d}/nope
        regexp: x
      ignore_errors: true
"#
    ));
    let r = pf.run(&lab, &["--diff"]);
    ok(&r);
    let rename = r.result("rename", "h2");
    assert_eq!(rename["status"], "changed");
    assert_eq!(rename["msg"], "2 replacements made");
    let backup = r.result("backup file", "h2")["msg"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(backup.starts_with(&format!("{d}/hosts.")), "{rename}");
    assert_eq!(
        lab.sh(2, &format!("cat {backup}")),
        "127.0.0.1 localhost\n10.0.0.1 old.host.name alias\n10.0.0.2 old.host.name\n<vhost>\nport=80\n</vhost>\nport=80\n"
    );
    assert_eq!(r.result("section", "h2")["msg"], "1 replacements made");
    assert_eq!(
        r.result("section", "h2")["diff"][0]["after"],
        "127.0.0.1 localhost\n10.0.0.1 new.host.name alias\n10.0.0.2 new.host.name\n<vhost>\nport=8080\n</vhost>\nport=80\n"
    );
    assert_eq!(r.result("no section", "h2")["status"], "ok");
    assert_eq!(
        r.result("no section", "h2")["msg"],
        "Pattern for before/after params did not match the given file: <nothing>(?P<subsection>.*)"
    );
    assert_eq!(
        r.result("missing", "h2")["msg"],
        format!("Path {d}/nope does not exist !")
    );
    // The link still points at the edited file, whose mode is kept.
    assert_eq!(
        lab.sh(2, &format!("readlink {d}/link; stat -c %a {d}/hosts; cat {d}/hosts")),
        "hosts\n640\n127.0.0.1 localhost\n10.0.0.1 new.host.name alias\n10.0.0.2 new.host.name\n<vhost>\nport=8080\n</vhost>\nport=80\n"
    );
    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    // Drift: --check reports it and leaves the file alone; a run repairs it.
    lab.sh(2, &format!("sed -i 's/^port=8080$/port=80/' {d}/hosts"));
    let before = lab.sh(2, &format!("sha256sum {d}/hosts"));
    let check = pf.run(&lab, &["--check"]);
    ok(&check);
    assert_eq!(check.result("section", "h2")["status"], "changed");
    assert_eq!(lab.sh(2, &format!("sha256sum {d}/hosts")), before);
    ok(&pf.run(&lab, &[]));
    assert_eq!(lab.sh(2, &format!("grep -c '^port=8080$' {d}/hosts")), "1\n");
    lab.sh(2, &format!("rm -rf {d}"));
}

/// A fresh public key of `kind` (made by the host's ssh-keygen), without its comment.
fn host_key(lab: &Lab, kind: &str) -> String {
    let out = lab.sh(
        2,
        &format!(
            "t=$(mktemp -u); ssh-keygen -q -t {kind} -N '' -f $t >/dev/null && cut -d' ' -f1,2 $t.pub; rm -f $t $t.pub"
        ),
    );
    out.trim().to_string()
}

#[test]
fn known_hosts_adds_replaces_and_removes_with_ssh_keygen() {
    let lab = Lab::get();
    let d = unique("known");
    let (k1, k2, rsa) = (
        host_key(&lab, "ed25519"),
        host_key(&lab, "ed25519"),
        host_key(&lab, "rsa"),
    );
    lab.sh(
        2,
        &format!("rm -rf {d}; mkdir -p {d}; printf 'other.example.com {rsa}\\n' > {d}/kh; chmod 600 {d}/kh"),
    );
    let task = |name: &str, key: &str, state: &str| {
        format!(
            "    - name: {name}\n      known_hosts: {{name: git.example.com, key: \"{key}\", path: {d}/kh, state: {state}}}\n"
        )
    };
    let pf = PlaybookFile::new(&format!(
        "- hosts: h2\n  gather_facts: false\n  tasks:\n{}{}",
        task("add", &format!("git.example.com {k1}"), "present"),
        task("rsa too", &format!("git.example.com {rsa}"), "present"),
    ));
    let r = pf.run(&lab, &["--diff"]);
    ok(&r);
    assert_eq!(r.result("add", "h2")["status"], "changed");
    assert_eq!(
        r.result("add", "h2")["diff"][0]["after"],
        format!("other.example.com {rsa}\ngit.example.com {k1}\n")
    );
    let want = format!("other.example.com {rsa}\ngit.example.com {k1}\ngit.example.com {rsa}\n");
    assert_eq!(
        lab.sh(2, &format!("cat {d}/kh; stat -c %a {d}/kh")),
        format!("{want}600\n")
    );
    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");

    // The host's ed25519 key changed: its line is replaced, --check first leaves it alone.
    let new = PlaybookFile::new(&format!(
        "- hosts: h2\n  gather_facts: false\n  tasks:\n{}",
        task("rotate", &format!("git.example.com {k2}"), "present"),
    ));
    let check = new.run(&lab, &["--check"]);
    ok(&check);
    assert_eq!(check.result("rotate", "h2")["status"], "changed");
    assert_eq!(lab.sh(2, &format!("cat {d}/kh")), want);
    ok(&new.run(&lab, &[]));
    assert_eq!(
        lab.sh(2, &format!("cat {d}/kh")),
        format!("other.example.com {rsa}\ngit.example.com {rsa}\ngit.example.com {k2}\n")
    );

    // A key that does not name the host is refused; absent without a key drops every entry.
    let rm = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: mismatch
      known_hosts: {{name: git.example.com, key: "other.example.com {k1}", path: {d}/kh}}
      ignore_errors: true
    - name: forget
      ansible.builtin.known_hosts: {{name: git.example.com, path: {d}/kh, state: absent}}
"#
    ));
    let r = rm.run(&lab, &[]);
    ok(&r);
    assert_eq!(
        r.result("mismatch", "h2")["msg"],
        "Host parameter does not match hashed host field in supplied key"
    );
    assert_eq!(r.result("forget", "h2")["status"], "changed");
    assert_eq!(lab.sh(2, &format!("cat {d}/kh")), format!("other.example.com {rsa}\n"));
    let r = rm.run(&lab, &[]);
    assert_eq!(r.result("forget", "h2")["status"], "ok");
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn slurp_returns_a_hosts_file_in_base64() {
    let lab = Lab::get();
    let d = unique("slurp");
    lab.sh(
        2,
        &format!("rm -rf {d}; mkdir -p {d}; printf 'key: \\001\\377 secret\\n' > {d}/f"),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: read
      ansible.builtin.slurp: {{src: {d}/f}}
      register: s
    - name: show
      debug:
        msg: "{{{{ s.encoding }}}} {{{{ s.source }}}} {{{{ s.content }}}} {{{{ s.changed }}}}"
    - name: missing
      slurp: {{path: {d}/nope}}
      ignore_errors: true
    - name: dir
      slurp: {{path: {d}}}
      ignore_errors: true
"#
    ));
    let r = pf.run(&lab, &["--check"]);
    ok(&r);
    let b64 = lab.sh(2, &format!("base64 -w0 < {d}/f"));
    assert_eq!(r.result("read", "h2")["status"], "ok");
    assert_eq!(r.result("show", "h2")["msg"], format!("base64 {d}/f {b64} False"));
    assert_eq!(r.result("missing", "h2")["msg"], format!("file not found: {d}/nope"));
    assert_eq!(
        r.result("dir", "h2")["msg"],
        format!("source is a directory and must be a file: {d}")
    );
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn find_selects_files_as_ansible_does() {
    let lab = Lab::get();
    let d = unique("find");
    lab.sh(
        2,
        &format!(
            "rm -rf {d}; mkdir -p {d}/logs/old/deeper {d}/.hidden; cd {d}/logs; \
             printf 'ERROR disk full\\n' > app.log; printf 'all good\\n' > web.log; head -c 20000 /dev/zero > big.log; \
             printf 'x\\n' > notes.txt; printf 'ERROR old\\n' > old/app.log.1; touch -d '10 days ago' old/app.log.1; \
             printf 'y\\n' > old/deeper/z.log; printf 'h\\n' > .dot.log; ln -s app.log link.log; chmod 600 web.log; \
             printf 'k\\n' > {d}/.hidden/k.log"
        ),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - find: {{paths: {d}/logs, patterns: "*.log"}}
      register: top
    - find: {{paths: "{d}/logs,{d}/nope", patterns: ['*.log', '*.1'], recurse: true, excludes: 'big*'}}
      register: deep
    - find: {{paths: {d}/logs, recurse: true, depth: 2, use_regex: true, patterns: ['^app\.log'], age: 2d}}
      register: old
    - find: {{paths: {d}/logs, recurse: true, contains: 'ERROR .*', get_checksum: true, hidden: true}}
      register: errors
    - find: {{paths: {d}/logs, size: 10k, mode: '0644'}}
      register: big
    - find: {{paths: {d}, file_type: directory, recurse: true, hidden: true}}
      register: dirs
    - find: {{paths: {d}/logs, file_type: link}}
      register: links
    - name: show
      debug:
        msg:
          - "{{{{ top.files | map(attribute='path') | map('basename') | sort | join(',') }}}} {{{{ top.matched }}}} {{{{ top.examined }}}}"
          - "{{{{ deep.files | map(attribute='path') | map('basename') | sort | join(',') }}}} {{{{ deep.skipped_paths | length }}}} {{{{ deep.msg }}}}"
          - "{{{{ old.files | map(attribute='path') | map('basename') | join(',') }}}}"
          - "{{{{ errors.files | map(attribute='path') | map('basename') | sort | join(',') }}}} {{{{ errors.files[0].checksum | length }}}}"
          - "{{{{ big.files | map(attribute='path') | map('basename') | join(',') }}}} {{{{ big.files[0].size }}}} {{{{ big.files[0].mode }}}} {{{{ big.files[0].isreg }}}} {{{{ big.files[0].pw_name }}}}"
          - "{{{{ dirs.files | map(attribute='path') | map('regex_replace', '^{d}/', '') | sort | join(',') }}}}"
          - "{{{{ links.files | map(attribute='path') | map('basename') | join(',') }}}} {{{{ links.files[0].islnk }}}}"
"#
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    let shown: serde_json::Value =
        serde_json::from_str(r.result("show", "h2")["msg"].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        shown,
        serde_json::json!([
            "app.log,big.log,web.log 3 7",
            "app.log,app.log.1,web.log,z.log 1 Not all paths examined, check warnings for details",
            "app.log.1",
            "app.log,app.log.1 40",
            "big.log 20000 0644 True root",
            ".hidden,logs,logs/old,logs/old/deeper",
            "link.log True",
        ])
    );
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn archive_packs_trees_and_compresses_files() {
    let lab = Lab::get();
    let d = unique("archive");
    lab.sh(
        2,
        &format!(
            "rm -rf {d}; mkdir -p {d}/logs/sub {d}/out; cd {d}; printf 'a\\n' > logs/a.log; printf 'b\\n' > logs/sub/b.log; \
             printf 'skip\\n' > logs/skip.tmp; printf 'dump\\n' > dump.sql; printf 'x\\n' > x.txt; printf 'y\\n' > y.txt"
        ),
    );
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: tree
      community.general.archive:
        path: {d}/logs
        dest: {d}/out/logs.tar.gz
        exclusion_patterns: ['*.tmp']
        mode: '0600'
      register: t
    - name: single
      archive: {{path: {d}/dump.sql, format: bz2}}
      register: s
    - name: zip
      archive: {{path: ["{d}/*.txt", {d}/nope], dest: {d}/out/txt.zip, format: zip}}
      register: z
    - name: show
      debug:
        msg:
          - "{{{{ t.dest_state }}}} {{{{ t.arcroot }}}} {{{{ t.archived | length }}}}"
          - "{{{{ s.dest }}}} {{{{ s.dest_state }}}}"
          - "{{{{ z.dest_state }}}} {{{{ z.missing | join(',') }}}} {{{{ z.expanded_paths | sort | join(',') }}}}"
"#
    ));
    let check = pf.run(&lab, &["--check"]);
    ok(&check);
    assert_eq!(check.total_changed(), 3, "{check:?}");
    assert_eq!(lab.sh(2, &format!("ls {d}/out")), "");
    let r = pf.run(&lab, &[]);
    ok(&r);
    assert_eq!(r.total_changed(), 3, "{r:?}");
    let shown: serde_json::Value =
        serde_json::from_str(r.result("show", "h2")["msg"].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        shown,
        serde_json::json!([
            format!("archive {d}/ 3"),
            format!("{d}/dump.sql.bz2 compress"),
            format!("incomplete {d}/nope {d}/nope,{d}/x.txt,{d}/y.txt"),
        ])
    );
    assert_eq!(
        lab.sh(
            2,
            &format!(
                "tar -tzf {d}/out/logs.tar.gz | sort; stat -c %a {d}/out/logs.tar.gz; bzip2 -dc {d}/dump.sql.bz2; unzip -Z1 {d}/out/txt.zip | sort"
            )
        ),
        "logs/a.log\nlogs/sub/\nlogs/sub/b.log\n600\ndump\nx.txt\ny.txt\n"
    );
    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    // A source changes: only its archive is rebuilt.
    lab.sh(2, &format!("printf 'b2\\n' > {d}/logs/sub/b.log"));
    let r = pf.run(&lab, &[]);
    ok(&r);
    assert_eq!(r.result("tree", "h2")["status"], "changed");
    assert_eq!(r.result("single", "h2")["status"], "ok");
    assert_eq!(
        lab.sh(2, &format!("tar -xzOf {d}/out/logs.tar.gz logs/sub/b.log")),
        "b2\n"
    );
    // remove: the sources go once archived.
    let rm = PlaybookFile::new(&format!(
        "- hosts: h2\n  gather_facts: false\n  tasks:\n    - archive: {{path: {d}/x.txt, dest: {d}/out/x.tar, format: tar, remove: true}}\n      register: x\n    - debug: {{msg: \"{{{{ x.dest_state }}}}\"}}\n"
    ));
    ok(&rm.run(&lab, &[]));
    assert_eq!(
        lab.sh(
            2,
            &format!("tar -tf {d}/out/x.tar; test -e {d}/x.txt && echo kept || echo removed")
        ),
        "x.txt\nremoved\n"
    );
    // The source is gone, the archive is there: nothing to do, and Ansible's state of it.
    let again = rm.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    assert_eq!(again.result("debug", "h2")["msg"], "archive");
    lab.sh(2, &format!("rm -rf {d}"));
}

#[test]
fn script_copies_a_local_script_and_runs_it() {
    let lab = Lab::get();
    let d = unique("script");
    lab.sh(2, &format!("rm -rf {d}; mkdir -p {d}"));
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: setup
      script: setup.sh {d}/done "two words"
      args:
        creates: {d}/done
        chdir: {d}
      register: s
    - name: bash
      ansible.builtin.script:
        cmd: scripts/bashism.sh
        executable: /bin/bash
      register: b
    - name: fails
      script: fail.sh
      ignore_errors: true
    - name: show
      debug:
        msg: "{{{{ s.rc }}}}|{{{{ s.stdout }}}}|{{{{ s.stderr }}}}|{{{{ b.stdout }}}}"
      when: s.rc is defined
"#
    ));
    pf.file(
        "files/setup.sh",
        "#!/bin/sh\necho \"in $(pwd) with $# args: $2\"\necho warn >&2\nprintf '%s\\n' \"$@\" > \"$1\"\n",
    )
    .file("files/scripts/bashism.sh", "echo ${BASH_VERSION:+bash}\n")
    .file("files/fail.sh", "#!/bin/sh\necho \"$0\"\necho nope >&2\nexit 3\n");
    let check = pf.run(&lab, &["--check"]);
    ok(&check);
    assert_eq!(check.result("setup", "h2")["status"], "changed");
    assert_eq!(lab.sh(2, &format!("ls -A {d}")), "");
    let r = pf.run(&lab, &[]);
    ok(&r);
    assert_eq!(r.result("setup", "h2")["status"], "changed");
    assert_eq!(
        r.result("show", "h2")["msg"],
        format!("0|in {d} with 2 args: two words|warn|bash")
    );
    let fails = r.result("fails", "h2");
    assert_eq!(fails["status"], "ignored");
    assert_eq!(fails["rc"], 3);
    // The copy of the script on the host is gone once it ran, even when it failed.
    let copy = fails["stdout_tail"].as_str().unwrap_or_default().trim().to_string();
    assert!(copy.starts_with("/tmp/"), "{fails}");
    assert_eq!(
        lab.sh(2, &format!("test -e {copy} && echo left || echo gone")),
        "gone\n"
    );
    assert_eq!(
        lab.sh(2, &format!("cat {d}/done; ls -A {d}")),
        format!("{d}/done\ntwo words\ndone\n")
    );
    // `creates` exists now: not run again.
    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.result("setup", "h2")["status"], "ok");
    lab.sh(2, &format!("rm -rf {d}"));
}

/// `authorized_key` with the keys at a URL (as `https://github.com/<user>.keys` serves them):
/// the host fetches them, as Ansible's module does.
#[test]
fn authorized_key_fetches_keys_from_a_url_on_the_host() {
    let lab = Lab::get();
    let user = format!("tku{}", std::process::id());
    let keys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA one\n# a comment\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ two\n";
    let srv = HttpServer::start(&lab, &[("alice.keys", keys.as_bytes())]);
    lab.sh(2, &format!("userdel -r {user} 2>/dev/null; useradd -m {user}"));
    let pf = PlaybookFile::new(&format!(
        r#"- hosts: h2
  gather_facts: false
  tasks:
    - name: from url
      authorized_key: {{user: {user}, key: "{}", exclusive: true}}
    - name: bad url
      authorized_key: {{user: {user}, key: "{}"}}
      ignore_errors: true
"#,
        srv.url("alice.keys"),
        srv.url("nope.keys")
    ));
    let r = pf.run(&lab, &[]);
    ok(&r);
    assert_eq!(r.result("from url", "h2")["status"], "changed");
    assert_eq!(
        r.result("bad url", "h2")["msg"],
        format!("Error getting key from: {}", srv.url("nope.keys"))
    );
    assert_eq!(
        lab.sh(2, &format!("cat /home/{user}/.ssh/authorized_keys")),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA one\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ two\n"
    );
    let again = pf.run(&lab, &[]);
    ok(&again);
    assert_eq!(again.result("from url", "h2")["status"], "ok");
    lab.sh(2, &format!("userdel -r {user}"));
}
