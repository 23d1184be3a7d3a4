//! `tend logs collect` against a real lab host: real logrotate rotating a log in every form
//! between collections, the lines in the store counted exactly (none lost, none twice), a run
//! cut off after appending undone by the next, and the store's lock.

mod common;
use common::Lab;
use std::path::Path;

/// A log on h3 that the test writes and rotates, and a store on the control node.
struct Log<'a> {
    lab: &'a Lab,
    dir: String,
    store: tempfile::TempDir,
    written: Vec<String>,
}

impl<'a> Log<'a> {
    fn new(lab: &'a Lab) -> Self {
        let dir = format!("/var/log/tend-logs-{}", std::process::id());
        lab.sh(3, &format!("rm -rf {dir} && mkdir -p {dir} && : > {dir}/app.log"));
        Self {
            lab,
            dir,
            store: common::scratch(),
            written: Vec::new(),
        }
    }

    /// Appends `n` lines of day `day` (each numbered), the last `partial` bytes of the last
    /// one held back (a line being written).
    fn write(&mut self, day: &str, n: usize) {
        let mut text = String::new();
        for _ in 0..n {
            let line = format!("{day} 10:00:00 line {} {}", self.written.len() + 1, "x".repeat(40));
            text.push_str(&line);
            text.push('\n');
            self.written.push(line);
        }
        self.append(&text);
    }

    fn append(&self, text: &str) {
        let path = format!("{}/app.log", self.dir);
        let r = std::process::Command::new(self.lab.script())
            .args(["exec", "3", "sh", "-c", &format!("cat >> {path}")])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                c.stdin.take().expect("stdin").write_all(text.as_bytes())?;
                c.wait()
            })
            .expect("append");
        assert!(r.success());
    }

    /// Rotates with logrotate and these directives.
    fn rotate(&self, directives: &str) {
        let d = &self.dir;
        self.lab.sh(
            3,
            &format!(
                "printf '%s\\n' '{d}/app.log {{' {directives} '}}' > {d}/rotate.conf && logrotate -f -s {d}/rotate.state {d}/rotate.conf"
            ),
        );
    }

    fn collect(&self) -> common::Run {
        let files = format!("{{\"logs_files\": {{\"app\": \"{}/app.log\"}}}}", self.dir);
        common::run(&[
            "logs",
            "collect",
            "h3",
            "-i",
            &self.lab.inventory(),
            "-e",
            &files,
            "--store",
            self.store.path().to_str().unwrap_or_default(),
            "--format",
            "json",
        ])
    }

    fn collected(&self) -> Vec<String> {
        let dir = self.store.path().join("h3/app");
        let mut days: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        days.sort();
        days.iter().flat_map(|p| read_gz(p)).collect()
    }
}

impl Drop for Log<'_> {
    fn drop(&mut self) {
        let _ = self.lab.on_host(3, &["rm", "-rf", &self.dir]);
    }
}

fn read_gz(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("zcat").arg(path).output().expect("zcat");
    assert!(out.status.success(), "{path:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Each rotation form of logrotate between collections, twice in a row for one of them, a
/// line being written across a collection, lines of two days: the store holds every line
/// written exactly once, in order, each in its day's file.
#[test]
fn every_logrotate_form_between_collections_loses_and_repeats_no_line() {
    let lab = Lab::get();
    let mut log = Log::new(&lab);
    log.write("2026-12-02", 50);
    let r = log.collect();
    assert_eq!(r.code, 0, "{r:?}");
    let forms = [
        "create",
        "copytruncate",
        "compress delaycompress create",
        "compress create",
        "dateext 'dateformat -%Y%m%d-%s' compress create",
        "copytruncate compress",
    ];
    for (i, form) in forms.iter().enumerate() {
        let day = if i < 2 { "2026-12-02" } else { "2026-12-03" };
        log.write(day, 40);
        log.rotate(&format!("'rotate 9' {form}"));
        log.write(day, 30);
        let r = log.collect();
        assert_eq!(r.code, 0, "{form}: {r:?}");
        assert_eq!(log.collected(), log.written, "after `{form}`");
    }
    // Two rotations between collections (with delaycompress: one plain, one compressed).
    log.write("2026-12-03", 20);
    log.rotate("'rotate 9' compress delaycompress create");
    log.write("2026-12-03", 20);
    log.rotate("'rotate 9' compress delaycompress create");
    log.write("2026-12-03", 20);
    assert_eq!(log.collect().code, 0);
    assert_eq!(log.collected(), log.written, "after two rotations");
    // A line being written: stored once it is complete.
    log.append("2026-12-03 10:00:00 half");
    assert_eq!(log.collect().code, 0);
    assert_eq!(log.collected(), log.written);
    log.append(" and the rest\n\tat a stack trace line\n");
    log.written.push("2026-12-03 10:00:00 half and the rest".into());
    log.written.push("\tat a stack trace line".into());
    let r = log.collect();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(log.collected(), log.written);
    // Each line in its day's file; nothing new, nothing stored.
    let day2 = read_gz(&log.store.path().join("h3/app/2026-12-02.log.gz"));
    assert_eq!(day2.len(), 50 + 2 * 70);
    assert!(day2.iter().all(|l| l.starts_with("2026-12-02")));
    let again = log.collect();
    assert_eq!(again.code, 0);
    assert_eq!(again.events("step")[0]["message"], "0 line(s), 0 byte(s)", "{again:?}");
    assert_eq!(log.collected(), log.written);
}

/// A run that died after appending to the store and before writing its checkpoint (bytes in a
/// store file the state does not count, and a file it does not know) is undone by the next
/// run; a run while another holds the store's lock exits 5 and stores nothing.
#[test]
fn a_cut_off_run_is_undone_and_two_runs_never_overlap() {
    let lab = Lab::get();
    let mut log = Log::new(&lab);
    log.write("2026-12-03", 10);
    assert_eq!(log.collect().code, 0);
    // What a killed run leaves: a gzip member appended, a day file of its own.
    let day = log.store.path().join("h3/app/2026-12-03.log.gz");
    let junk = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo 'not collected' | gzip >> {0} && echo 'nor this' | gzip > {1}",
            day.display(),
            log.store.path().join("h3/app/2026-12-04.log.gz").display()
        ))
        .status()
        .expect("sh");
    assert!(junk.success());
    log.write("2026-12-03", 10);
    let r = log.collect();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(log.collected(), log.written);

    // Another run holds the lock.
    let lock = log.store.path().join(".lock");
    let holder = std::fs::File::open(&lock).expect("lock file");
    holder.lock().expect("lock");
    log.write("2026-12-03", 5);
    let r = log.collect();
    drop(holder);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.contains("another `tend logs collect` is writing to"), "{r:?}");
    assert_eq!(log.collected().len(), 20);
    assert_eq!(log.collect().code, 0);
    assert_eq!(log.collected(), log.written);
    // The store is its owner's alone.
    use std::os::unix::fs::PermissionsExt as _;
    for p in [log.store.path().join("h3"), log.store.path().join("h3/app"), day] {
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
        assert!(mode == 0o700 || mode == 0o600, "{p:?}: {mode:o}");
    }
}

/// The shop's own logs with no `logs_files`: Nginx's access and error logs on the balancer,
/// catalina.out on the app hosts, MariaDB's error and slow logs (the shipped settings write
/// them) on the database hosts; a request and a slow query made by the test are in the store.
#[test]
fn the_shops_logs_are_collected_by_group() {
    let lab = Lab::get();
    let s = common::provision_shop(&lab);
    let store = common::scratch();
    let tag = format!("tend-logs-{}", std::process::id());
    let (code, _) = common::http_get(&format!("http://{}/?{tag}", lab.address(s.lb)));
    assert_eq!(code, 200);
    lab.sql(s.primary, &format!("SELECT SLEEP(1.2), '{tag}'"));
    let r = common::run(&[
        "logs",
        "collect",
        "-i",
        &lab.inventory(),
        "--store",
        store.path().to_str().unwrap_or_default(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let steps: Vec<(String, String, String)> = r
        .events("step")
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (f("host"), f("step"), f("status"))
        })
        .collect();
    let at = |i: u32, log: &str| {
        steps
            .iter()
            .find(|(h, l, _)| *h == format!("h{i}") && l == log)
            .map(|(_, _, st)| st.clone())
            .unwrap_or_else(|| panic!("no {log} on h{i}: {steps:?}"))
    };
    for (i, log) in [
        (s.lb, "nginx_access"),
        (s.lb, "nginx_error"),
        (s.apps[0], "tomcat"),
        (s.apps[1], "tomcat"),
        (s.primary, "mariadb_error"),
        (s.primary, "mariadb_slow"),
        (s.replica, "mariadb_error"),
        (s.replica, "mariadb_slow"),
    ] {
        assert_ne!(at(i, log), "skipped", "h{i} {log}: {steps:?}");
        assert!(
            store.path().join(format!("h{i}/{log}")).is_dir() || at(i, log) == "ok",
            "h{i} {log}"
        );
    }
    let all = |i: u32, log: &str| -> String {
        let dir = store.path().join(format!("h{i}/{log}"));
        std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .flat_map(|e| read_gz(&e.path()))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    assert!(all(s.lb, "nginx_access").contains(&format!("GET /?{tag} ")));
    assert!(all(s.primary, "mariadb_slow").contains(&tag));
}

/// A client loop against the shop's balancer, collected and reported: the report counts
/// exactly the product clicks the loop made, in their category, with their latency.
#[test]
fn a_client_loop_against_the_shop_is_counted_by_the_daily_report() {
    let lab = Lab::get();
    let s = common::provision_shop(&lab);
    let store = common::scratch();
    let category = format!("loop{}", std::process::id());
    for i in 0..37 {
        common::http_get(&format!("http://{}/product/{category}/{}", lab.address(s.lb), i % 5));
    }
    let lb = format!("h{}", s.lb);
    let r = common::run(&[
        "logs",
        "collect",
        &lb,
        "-i",
        &lab.inventory(),
        "--store",
        store.path().to_str().unwrap_or_default(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let r = common::run(&[
        "report",
        "daily",
        "--date",
        &today,
        "--store",
        store.path().to_str().unwrap_or_default(),
        "--top",
        "999",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    let clicks = v["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .find(|c| c["category"] == category.as_str())
        .map(|c| c["clicks"].as_u64().unwrap_or(0));
    assert_eq!(clicks, Some(37), "{}", v["categories"]);
    let products: u64 = v["products"]
        .as_array()
        .expect("products")
        .iter()
        .filter(|p| p["category"] == category.as_str())
        .map(|p| p["clicks"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(products, 37);
    // The shipped site logs the request time: the day has latency figures.
    assert!(
        v["latency_ms"]["count"].as_u64().unwrap_or(0) >= 37,
        "{}",
        v["latency_ms"]
    );

    // Sales come from the database (the replica by default): a schema of this test's own,
    // made by a real `tend migrate up` of the shop's migrations, whose run the page marks.
    let schema = format!("rpt{}", std::process::id());
    let runs = common::scratch();
    let inv = lab.inventory();
    let db_var = format!("migrate_database={schema}");
    let migrations = common::repo().join("migrations");
    let up = common::run(&[
        "migrate",
        "up",
        "-i",
        &inv,
        "-e",
        &db_var,
        "--dir",
        migrations.to_str().unwrap_or_default(),
        "--log-dir",
        runs.path().to_str().unwrap_or_default(),
    ]);
    assert_eq!(up.code, 0, "{up:?}");
    // Two orders today: 3 teas at 6.90 and a coffee at 19.90.
    lab.sql(
        s.primary,
        &format!("CALL {schema}.place_order(1, 3); CALL {schema}.place_order(3, 1)"),
    );
    let pos = lab.sql(s.primary, "SELECT @@gtid_binlog_pos");
    assert_eq!(
        lab.sql(s.replica, &format!("SELECT MASTER_GTID_WAIT('{}', 30)", pos.trim()))
            .trim(),
        "0"
    );
    let page = runs.path().join("day.html");
    let r = common::run(&[
        "report",
        "daily",
        "--date",
        &today,
        "--store",
        store.path().to_str().unwrap_or_default(),
        "-i",
        &inv,
        "-e",
        &db_var,
        "--log-dir",
        runs.path().to_str().unwrap_or_default(),
        "--html",
        page.to_str().unwrap_or_default(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(v["sales_from"], format!("h{}", s.replica), "{}", v["sales"]);
    assert_eq!(
        v["sales"],
        serde_json::json!([
            {"category": "tea", "orders": 1, "items": 3, "revenue": 20.7},
            {"category": "coffee", "orders": 1, "items": 1, "revenue": 19.9}
        ])
    );
    let runs_marked: Vec<&str> = v["tend_runs"]
        .as_array()
        .expect("tend_runs")
        .iter()
        .filter_map(|m| m["command"].as_str())
        .collect();
    assert_eq!(runs_marked, ["migrate up"], "{}", v["tend_runs"]);
    let pixels = common::screenshot(&page, 1000, 800);
    assert!(common::pixels_of(&pixels, "#4e79a7") > 200, "no hourly bars drawn");
    assert!(
        common::pixels_of(&pixels, "#b07aa1") > 100,
        "the migration is not marked"
    );
    let html = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(
        html.contains("<td>tea</td><td class=\"n\">1</td><td class=\"n\">3</td><td class=\"n\">20.7</td>"),
        "{html}"
    );
    lab.sql(s.primary, &format!("DROP DATABASE {schema}"));
}
