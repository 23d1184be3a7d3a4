//! Helpers shared by the integration tests: run the real `tend` binary, reach the lab.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `tend` binary under test, with a clean environment for its settings.
pub fn tend() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tend"));
    // Audit logs of tests go to a scratch place, not the user's state directory.
    cmd.env_remove("TEND_INVENTORY")
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", std::env::temp_dir().join("tend-test-state"));
    cmd
}

/// Output of a finished command, with helpers for assertions.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// One JSON object per stdout line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// The JSON lines of one kind of event (`result`, `step`, `row`, ...).
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.json_lines().into_iter().filter(|v| v["event"] == event).collect()
    }

    /// The `result` of one host.
    pub fn host(&self, name: &str) -> serde_json::Value {
        self.events("result")
            .into_iter()
            .find(|v| v["host"] == name)
            .unwrap_or_else(|| panic!("no result for {name} in:\n{}", self.stdout))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `tend` with arguments.
pub fn run(args: &[&str]) -> Run {
    run_in(&repo(), args)
}

/// Starts `tend`, sends it SIGINT (Ctrl-C) after `after`, and waits for it.
pub fn run_interrupted(args: &[&str], after: std::time::Duration) -> Run {
    let child = tend()
        .current_dir(repo())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tend");
    std::thread::sleep(after);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    Run::of(child.wait_with_output().expect("wait"))
}

/// Runs `tend` with arguments in a directory.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run::of(tend().current_dir(dir).args(args).output().expect("start tend"))
}

/// The lab started by `tests/lab/lab.sh up`; tests that need it fail loudly without it.
pub struct Lab {
    pub dir: PathBuf,
    /// `TENDLAB_INSTANCE` (0, the default lab, unless set): which bridge and subnet. `lab.sh`,
    /// called by the tests, reads the same variable.
    pub instance: u8,
}

impl Lab {
    pub fn get() -> Self {
        let instance = std::env::var("TENDLAB_INSTANCE")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u8>().expect("TENDLAB_INSTANCE must be a digit 0..9"))
            .unwrap_or(0);
        // Where lab.sh writes the instance's files; TEND_LAB_DIR lets a second checkout use a
        // lab started from the first one.
        let dir = std::env::var_os("TEND_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| match instance {
                0 => repo().join("tests/lab"),
                k => repo().join(format!("tests/lab/instance{k}")),
            });
        let lab = Self { dir, instance };
        // The generated files of a checkout can outlive a lab torn down from another checkout:
        // the bridge is the lab's own proof of life, and no test may send traffic without it.
        let bridge = format!("/sys/class/net/tendlab{instance}");
        assert!(
            lab.dir.join("inventory.yaml").exists() && Path::new(&bridge).exists(),
            "the lab is not up: run `tests/lab/lab.sh up 11` as root (tests/run.sh does it)"
        );
        lab
    }

    /// The first two bytes of the lab's addresses (`10.77` for the default instance).
    pub fn net(&self) -> String {
        format!("10.{}", 77 + u32::from(self.instance))
    }

    /// The control node's address on the lab bridge, which every host reaches.
    pub fn gateway(&self) -> String {
        format!("{}.0.1", self.net())
    }

    pub fn inventory(&self) -> String {
        self.dir.join("inventory.yaml").display().to_string()
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The lab key pair is shared by every instance and sits next to `lab.sh`.
    pub fn key(&self) -> PathBuf {
        self.beside_script("id_ed25519")
    }

    /// `lab.sh` itself.
    pub fn script(&self) -> PathBuf {
        self.beside_script("lab.sh")
    }

    /// A file of `tests/lab/`: in `dir`, or one level up for an instance's own directory.
    fn beside_script(&self, name: &str) -> PathBuf {
        let here = self.dir.join(name);
        match self.dir.parent() {
            Some(up) if !here.exists() => up.join(name),
            _ => here,
        }
    }

    /// Runs a command inside host `hI` without ssh, to look at its state independently of tend.
    pub fn on_host(&self, i: u32, argv: &[&str]) -> Run {
        Run::of(
            Command::new(self.script())
                .arg("exec")
                .arg(i.to_string())
                .args(argv)
                .output()
                .expect("run lab.sh exec"),
        )
    }

    /// Shell text inside host `hI`; panics unless it exits 0.
    pub fn sh(&self, i: u32, script: &str) -> String {
        let r = self.on_host(i, &["sh", "-c", script]);
        assert_eq!(r.code, 0, "on h{i}: {script}\n{r:?}");
        r.stdout
    }

    /// SQL run by the `mariadb` client inside host `hI` (batch, no column names); panics unless
    /// it succeeds.
    pub fn sql(&self, i: u32, sql: &str) -> String {
        let r = self.on_host(i, &["mariadb", "--batch", "--skip-column-names", "-e", sql]);
        assert_eq!(r.code, 0, "on h{i}: {sql}\n{r:?}");
        r.stdout
    }

    pub fn address(&self, i: u32) -> String {
        let out = Command::new(self.script())
            .args(["address", &i.to_string()])
            .output()
            .expect("lab.sh");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn lab_sh(&self, args: &[&str]) -> Run {
        Run::of(Command::new(self.script()).args(args).output().expect("run lab.sh"))
    }
}

/// A task that installs `sudo` on a lab host that lacks it (the lab shares the control node's
/// programs, which may have none); for the playbooks of the become tests on h4.
pub const SUDO_TASK: &str = "    - name: sudo is there
      shell: command -v sudo || DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 sudo
      changed_when: false
";

/// A fresh scratch directory.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A one-host inventory for lab host `hI` with its own known_hosts file and extra vars.
pub fn single_host_inventory(lab: &Lab, dir: &Path, i: u32, known_hosts: &Path) -> PathBuf {
    let inv = dir.join("inventory.yaml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    h{i}:\n      ansible_host: {}\n      ansible_user: root\n      ansible_ssh_private_key_file: {}\n      ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n",
            lab.address(i),
            lab.key().display(),
            known_hosts.display()
        ),
    )
    .expect("write inventory");
    inv
}

/// A playbook written to a scratch directory (kept alive with the returned guard).
pub struct PlaybookFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl PlaybookFile {
    pub fn new(yaml: &str) -> Self {
        let dir = scratch();
        let path = dir.path().join("playbook.yaml");
        std::fs::write(&path, yaml).expect("write playbook");
        Self { dir, path }
    }

    /// Adds a file next to the playbook (templates, vars files, roles).
    pub fn file(&self, rel: &str, content: &str) -> &Self {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
        self
    }

    /// `tend run` on the lab with JSON output; audit log in the scratch dir.
    pub fn run(&self, lab: &Lab, extra: &[&str]) -> Run {
        let args = self.args(lab, extra);
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The arguments of [`PlaybookFile::run`].
    pub fn args(&self, lab: &Lab, extra: &[&str]) -> Vec<String> {
        let log = self.dir.path().join("log");
        let mut args: Vec<String> = ["run", self.path.to_str().unwrap_or_default(), "-i"]
            .map(String::from)
            .into();
        args.push(lab.inventory());
        args.extend(["--format", "json", "--log-dir", log.to_str().unwrap_or_default()].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

impl Run {
    /// The `result` events of a task, by task name.
    pub fn results(&self, task: &str) -> Vec<serde_json::Value> {
        self.json_lines()
            .into_iter()
            .filter(|v| v["event"] == "result" && v["task"] == task)
            .collect()
    }

    /// The result of a task on one host (the last one, for loops).
    pub fn result(&self, task: &str, host: &str) -> serde_json::Value {
        self.results(task)
            .into_iter()
            .rfind(|v| v["host"] == host)
            .unwrap_or_else(|| panic!("no result for task {task:?} on {host}:\n{self:?}"))
    }

    /// The recap counts of a host.
    pub fn recap(&self, host: &str) -> serde_json::Value {
        let recap = self
            .json_lines()
            .into_iter()
            .find(|v| v["event"] == "recap")
            .unwrap_or_else(|| panic!("no recap:\n{self:?}"));
        recap["hosts"][host].clone()
    }

    /// Sum of `changed` over every host in the recap.
    pub fn total_changed(&self) -> u64 {
        let recap = self
            .json_lines()
            .into_iter()
            .find(|v| v["event"] == "recap")
            .unwrap_or_default();
        recap["hosts"]
            .as_object()
            .map(|m| m.values().map(|c| c["changed"].as_u64().unwrap_or(0)).sum())
            .unwrap_or(0)
    }
}

/// The shop's hosts by role (lab numbers), read from the lab inventory (`tend inventory --list`).
pub struct Shop {
    pub lb: u32,
    pub apps: Vec<u32>,
    pub primary: u32,
    pub replica: u32,
}

pub fn shop(lab: &Lab) -> Shop {
    let r = run(&["inventory", "-i", &lab.inventory(), "--list"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("inventory json");
    let num = |g: &str| -> Vec<u32> {
        v[g]["hosts"]
            .as_array()
            .unwrap_or_else(|| panic!("the lab has no group {g}: start it with at least 5 hosts"))
            .iter()
            .filter_map(|h| h.as_str()?.trim_start_matches('h').parse().ok())
            .collect()
    };
    Shop {
        lb: num("lb")[0],
        apps: num("app"),
        primary: num("db_primary")[0],
        replica: num("db_replica")[0],
    }
}

/// Provisions the shop's databases (`playbooks/mysql.yaml`; quick when already done) for the
/// tests that work on the primary and replica, and returns the shop's hosts.
pub fn provision_databases(lab: &Lab) -> Shop {
    provision(lab, "playbooks/mysql.yaml")
}

/// Provisions the whole shop (`playbooks/site.yaml`; quick when already done).
pub fn provision_shop(lab: &Lab) -> Shop {
    provision(lab, "playbooks/site.yaml")
}

fn provision(lab: &Lab, playbook: &str) -> Shop {
    let log = std::env::temp_dir().join("tend-test-provision-log");
    let r = run_in(
        &repo(),
        &[
            "run",
            playbook,
            "-i",
            &lab.inventory(),
            "--log-dir",
            log.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    shop(lab)
}

/// GET with curl: (status, body); status 0 when nothing answered.
pub fn http_get(url: &str) -> (u32, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "30", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A page opened in headless Chromium (installed by .ci/run), as its screenshot's pixels
/// (RGB); fails when the page has a script or Chromium draws nothing.
pub fn screenshot(page: &Path, width: u32, height: u32) -> Vec<[u8; 3]> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    assert!(text.contains("<svg") && !text.contains("<script"), "{text}");
    let dir = scratch();
    let shot = dir.path().join("page.png");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--window-size={width},{height}"),
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (installed by .ci/run)");
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).expect("png")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// Pixels of colour `#rrggbb`.
pub fn pixels_of(pixels: &[[u8; 3]], hex: &str) -> usize {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).expect("#rrggbb");
    let rgb = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
    pixels.iter().filter(|p| **p == rgb).count()
}

/// Puts the lab's delaying proxy (tests/lab/delay-proxy.py) at /tmp/delay-proxy.py inside host
/// hI, for slow links and slow servers made with an nft redirect.
pub fn put_delay_proxy(lab: &Lab, i: u32) {
    use base64::Engine as _;
    let proxy = std::fs::read(repo().join("tests/lab/delay-proxy.py")).expect("proxy");
    lab.sh(
        i,
        &format!(
            "echo {} | base64 -d > /tmp/delay-proxy.py",
            base64::engine::general_purpose::STANDARD.encode(proxy)
        ),
    );
}
