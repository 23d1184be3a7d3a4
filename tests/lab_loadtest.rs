//! `tend loadtest` against the lab shop through its load balancer: a fixed rate held (counted
//! by the balancer's own access log), thresholds that hold and that break with their exit
//! code, a journey's extracted value sent on, and bad scenarios refused with their line.

mod common;
use common::{Lab, provision_shop};
use std::path::Path;

fn scenario(dir: &Path, text: &str) -> String {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).expect("scenario");
    path.to_str().unwrap_or_default().to_string()
}

fn loadtest(lab: &Lab, args: &[&str]) -> common::Run {
    let inv = lab.inventory();
    let mut all = vec!["loadtest"];
    all.extend_from_slice(args);
    all.extend(["-i", &inv, "--format", "json"]);
    common::run(&all)
}

fn record(r: &common::Run) -> serde_json::Value {
    r.events("record")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no record:\n{r:?}"))
}

/// Seconds since midnight of an access-log line's `[dd/Mon/yyyy:HH:MM:SS +zone]`.
fn second_of(line: &str) -> Option<u32> {
    let t = &line[line.find('[')? + 13..];
    let n = |a: usize| t.get(a..a + 2)?.parse::<u32>().ok();
    Some(n(0)? * 3600 + n(3)? * 60 + n(6)?)
}

#[test]
fn a_fixed_rate_is_held_and_thresholds_decide_the_exit_code() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let dir = common::scratch();
    let tag = format!("tend-lt-{}", std::process::id());
    let file = scenario(
        dir.path(),
        &format!(
            "name: front\njourneys:\n  - name: home\n    steps:\n      - {{name: home, path: /, headers: {{User-Agent: {tag}}}}}\nthresholds: [\"errors < 1%\"]\n"
        ),
    );
    // Open model, 50 journeys a second for 30 s, the base URL from the inventory's balancer.
    let r = loadtest(
        &lab,
        &[&file, "--rate", "50/s", "--duration", "30s", "--threshold", "p99 < 5s"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rec = record(&r);
    assert_eq!(rec["model"], "open");
    assert_eq!(rec["requests"], 1500, "{rec}");
    assert_eq!(rec["errors"], 0, "{rec}");
    let rate = rec["rate"].as_f64().unwrap_or(0.0);
    assert!((rate - 50.0).abs() <= 1.0, "rate {rate}");
    for key in ["p50", "p90", "p95", "p99", "p999", "max"] {
        assert!(rec["latency_ms"][key].as_f64().is_some_and(|v| v > 0.0), "{key}: {rec}");
    }
    // The live view: a `progress` event each second, its requests growing by about 50.
    let progress = r.events("progress");
    assert!((28..=31).contains(&progress.len()), "{progress:?}");
    let counts: Vec<u64> = progress
        .iter()
        .filter_map(|p| p["message"].as_str()?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), progress.len(), "{progress:?}");
    assert!(
        counts.windows(2).all(|w| (40..=60).contains(&(w[1] - w[0]))),
        "{counts:?}"
    );
    assert!(progress.iter().all(|p| p["total"] == 30), "{progress:?}");
    assert!(
        rec["thresholds"]
            .as_array()
            .is_some_and(|t| t.len() == 2 && t.iter().all(|v| v["ok"] == true)),
        "{rec}"
    );
    // The balancer saw every request, spread over the 30 s at 50 a second (within 2 %).
    let lines: Vec<String> = lab
        .sh(s.lb, &format!("grep -F '\"{tag}\"' /var/log/nginx/access.log || true"))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 1500);
    let seconds: Vec<u32> = lines.iter().filter_map(|l| second_of(l)).collect();
    let (first, last) = (
        seconds.iter().min().copied().unwrap_or(0),
        seconds.iter().max().copied().unwrap_or(0),
    );
    let span = last.saturating_sub(first) + 1;
    assert!((30..=31).contains(&span), "spread over {span} s");
    let full: Vec<usize> = (first + 1..last)
        .map(|sec| seconds.iter().filter(|&&x| x == sec).count())
        .collect();
    let mean = full.iter().sum::<usize>() as f64 / full.len().max(1) as f64;
    assert!((mean - 50.0).abs() <= 1.0, "{mean} a second at the balancer: {full:?}");

    // A threshold that cannot hold: exit 8, the verdict in the record.
    let r = loadtest(
        &lab,
        &[
            &file,
            "--rate",
            "20",
            "--duration",
            "2s",
            "--threshold",
            "p50 < 0.001ms",
        ],
    );
    assert_eq!(r.code, 8, "{r:?}");
    let rec = record(&r);
    let broken: Vec<&serde_json::Value> = rec["thresholds"]
        .as_array()
        .map(|t| t.iter().filter(|v| v["ok"] == false).collect())
        .unwrap_or_default();
    assert_eq!(broken.len(), 1, "{rec}");
    assert_eq!(broken[0]["threshold"], "p50 < 0.001ms");
    assert!(r.stderr.contains("threshold broken: p50 < 0.001ms (measured "), "{r:?}");

    // Closed model: 4 users back to back; answers of a page that is not there are errors of
    // kind `status`, and `errors < 1%` breaks.
    let missing = scenario(
        dir.path(),
        &format!(
            "journeys:\n  - steps:\n      - {{path: /no-such-page-{tag}, headers: {{User-Agent: {tag}}}}}\nthresholds: [\"errors < 1%\"]\n"
        ),
    );
    let r = loadtest(&lab, &[&missing, "--users", "4", "--duration", "2s"]);
    assert_eq!(r.code, 8, "{r:?}");
    let rec = record(&r);
    assert_eq!(rec["model"], "closed");
    assert_eq!(rec["users"], 4);
    assert!(rec["requests"].as_u64().is_some_and(|n| n > 4), "{rec}");
    assert_eq!(rec["errors_by_kind"]["status"], rec["requests"], "{rec}");
}

#[test]
fn journeys_carry_extracted_values_and_bad_scenarios_name_their_line() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let dir = common::scratch();
    let tag = format!("tend-ex-{}", std::process::id());
    // The front page's answer has a `Content-Type` header; its value goes into the next path.
    let file = scenario(
        dir.path(),
        &format!(
            "name: carry\nvars:\n  category: [tea]\njourneys:\n  - weight: 1\n    steps:\n      - {{path: /, extract: {{ct: {{header: Content-Type}}}}, headers: {{User-Agent: {tag}}}}}\n      - {{think: 10ms}}\n      - {{path: \"/product/{{{{ category }}}}/x?ct={{{{ ct }}}}\", expect: [200, 404], headers: {{User-Agent: {tag}}}}}\n"
        ),
    );
    let r = loadtest(&lab, &[&file, "--rate", "5/s", "--duration", "2s"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rec = record(&r);
    assert_eq!(rec["requests"], 20, "{rec}");
    let seen = lab.sh(
        s.lb,
        &format!("grep -F '\"{tag}\"' /var/log/nginx/access.log | grep -c 'GET /product/tea/x?ct=text/' || true"),
    );
    assert_eq!(seen.trim(), "10", "the extracted header was sent on");

    // The shipped scenario runs as it is.
    let shipped = common::repo().join("loadtests/shop-browse.yaml");
    let r = loadtest(
        &lab,
        &[
            shipped.to_str().unwrap_or_default(),
            "--rate",
            "4/s",
            "--duration",
            "2s",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rec = record(&r);
    assert_eq!(rec["journeys"], 8, "{rec}");
    assert_eq!(
        rec["requests"], 14,
        "6 browse journeys of 2 requests and 2 health checks: {rec}"
    );

    // Mistakes: file, line and column, exit 4, nothing sent.
    for (text, want) in [
        (
            "journeys:\n  - steps:\n      - {path: /, methd: GET}\n",
            "scenario.yaml:3:",
        ),
        ("journeys:\n  - steps:\n      - {path: nope}\n", "must start with `/`"),
        ("journeys:\n  - steps:\n      - {think: 1s}\n", "has no request"),
        ("journeys: []\n", "`journeys` is empty"),
        (
            "thresholds: [\"p95 < fast\"]\njourneys:\n  - steps: [{path: /}]\n",
            "scenario.yaml:1:",
        ),
    ] {
        let bad = scenario(dir.path(), text);
        let r = loadtest(&lab, &[&bad, "--rate", "1", "--duration", "1s"]);
        assert_eq!(r.code, 4, "{text}\n{r:?}");
        assert!(r.stderr.contains(want), "{want} not in:\n{}", r.stderr);
    }
    let r = loadtest(&lab, &[&file, "--duration", "1s"]);
    assert_eq!(r.code, 4, "neither --rate nor --users\n{r:?}");
}

/// One app host made slow inside its namespace (the kernel has no `netem`): Tomcat's port
/// redirected by nft to the lab's delaying proxy, which serves one request at a time and holds
/// each answer 300 ms (a saturated server: its requests queue). Removed when dropped.
struct SlowApp<'a>(&'a Lab, u32);

impl<'a> SlowApp<'a> {
    fn new(lab: &'a Lab, i: u32) -> Self {
        common::put_delay_proxy(lab, i);
        let addr = lab.address(i);
        lab.sh(
            i,
            &format!(
                "setsid python3 /tmp/delay-proxy.py 18080 {addr} 8080 300 serial >/dev/null 2>&1 < /dev/null & \
                 nft -f - <<'EOF'\n\
table inet tendslow {{\n\
  chain pre {{ type nat hook prerouting priority dstnat; tcp dport 8080 redirect to :18080; }}\n\
}}\n\
EOF\n\
                 [ $? = 0 ] || exit 1; for i in $(seq 50); do ss -ltn | grep -q ':18080 ' && exit 0; sleep 0.1; done; exit 1"
            ),
        );
        Self(lab, i)
    }
}

impl Drop for SlowApp<'_> {
    fn drop(&mut self) {
        let _ = self.0.on_host(
            self.1,
            &[
                "sh",
                "-c",
                "nft delete table inet tendslow; pkill -f 'python3 /tmp/[d]elay-proxy.py 18080'",
            ],
        );
    }
}

/// Coordinated omission, measured: with one app host slow, the open model (requests due at a
/// fixed rate, latency from when they were due) shows the queue's tail; a closed model of a
/// few users over the same time waits for each answer before asking again, sends less while
/// the server is slow, and reports a far shorter p99.
#[test]
fn a_slow_app_host_shows_its_tail_in_the_open_model_and_the_closed_model_hides_it() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let dir = common::scratch();
    let file = scenario(
        dir.path(),
        "journeys:\n  - steps:\n      - {name: home, path: /, headers: {User-Agent: tend-co}}\n",
    );
    let slow = SlowApp::new(&lab, s.apps[0]);
    let page = dir.path().join("open.html");
    let open = loadtest(
        &lab,
        &[
            &file,
            "--rate",
            "10/s",
            "--duration",
            "8s",
            "--html",
            page.to_str().unwrap_or_default(),
        ],
    );
    let closed = loadtest(&lab, &[&file, "--users", "4", "--duration", "8s"]);
    drop(slow);
    assert_eq!(open.code, 0, "{open:?}");
    assert_eq!(closed.code, 0, "{closed:?}");
    let (o, c) = (record(&open), record(&closed));
    assert_eq!(
        (o["model"].as_str(), c["model"].as_str()),
        (Some("open"), Some("closed"))
    );
    assert_eq!(o["requests"], 80, "{o}");
    assert_eq!(
        (o["errors"].as_u64(), c["errors"].as_u64()),
        (Some(0), Some(0)),
        "{o}\n{c}"
    );
    let p99 = |r: &serde_json::Value| r["latency_ms"]["p99"].as_f64().unwrap_or(0.0);
    let p50 = |r: &serde_json::Value| r["latency_ms"]["p50"].as_f64().unwrap_or(0.0);
    // Half the requests queue on the slow host: arriving at 5 a second where it serves 3.3,
    // the last of them wait seconds. The closed model's 4 users are never more than 4 deep.
    assert!(p99(&o) > 2000.0, "open p99 {} ms: {o}", p99(&o));
    assert!(p99(&c) < 1500.0, "closed p99 {} ms: {c}", p99(&c));
    assert!(p99(&o) > 2.0 * p99(&c), "open {} vs closed {}", p99(&o), p99(&c));
    // The page: latency over time drawn from the same record (its p99 in the headline), the
    // queue's climb visible as the p99 and max lines over the requests per second.
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(
        html.contains(&format!("Latency p99<b>{} ms</b>", o["latency_ms"]["p99"])),
        "{html}"
    );
    assert!(
        html.contains("open model: latency from when each request was due"),
        "{html}"
    );
    let pixels = common::screenshot(&page, 1000, 700);
    for (colour, what) in [
        ("#f28e2b", "p99 line"),
        ("#4e79a7", "p50 line"),
        ("#bab0ac", "requests"),
    ] {
        assert!(common::pixels_of(&pixels, colour) > 200, "no {what} drawn");
    }
    // The closed model sent less than the open one asked for in the same time.
    assert!(c["requests"].as_u64() < o["requests"].as_u64(), "{o}\n{c}");
    eprintln!(
        "open: {} requests, p50 {} ms, p99 {} ms; closed: {} requests, p50 {} ms, p99 {} ms",
        o["requests"],
        p50(&o),
        p99(&o),
        c["requests"],
        p50(&c),
        p99(&c)
    );
}

/// `--from app`: the generator runs on the two app hosts (tend uploaded to them), each at
/// half the rate; their histograms are merged here. The balancer's log shows both as clients.
#[test]
fn generators_on_two_hosts_are_merged() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let dir = common::scratch();
    let tag = format!("tend-from-{}", std::process::id());
    let file = scenario(
        dir.path(),
        &format!("journeys:\n  - steps:\n      - {{name: home, path: /, headers: {{User-Agent: {tag}}}}}\n"),
    );
    let r = loadtest(
        &lab,
        &[
            &file,
            "--from",
            "app",
            "--rate",
            "20/s",
            "--duration",
            "5s",
            "--threshold",
            "errors < 1%",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rec = record(&r);
    assert_eq!(rec["requests"], 100, "{rec}");
    assert_eq!(rec["errors"], 0, "{rec}");
    assert!(rec["latency_ms"]["p99"].as_f64().is_some_and(|v| v > 0.0), "{rec}");
    let per_second: u64 = rec["per_second"]
        .as_array()
        .map(|v| v.iter().map(|x| x["requests"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    assert_eq!(per_second, 100, "the seconds of both generators add up: {rec}");
    for app in &s.apps {
        let addr = lab.address(*app);
        let n = lab.sh(
            s.lb,
            &format!("grep -F '\"{tag}\"' /var/log/nginx/access.log | grep -c '^{addr} ' || true"),
        );
        assert_eq!(n.trim(), "50", "requests from h{app} ({addr})");
    }
}

/// `--find-knee` against a shop with one slow app host (one request at a time, 300 ms each:
/// about 3 a second): 2 and 4 journeys a second hold p95 < 1 s, the queue builds from 8 or
/// 16, and the search reports the last rate that held with each step's server figures (CPU
/// of the app and db hosts, MariaDB's running threads on the primary).
#[test]
fn the_knee_is_the_last_rate_that_held_with_the_servers_figures() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let dir = common::scratch();
    let file = scenario(
        dir.path(),
        "journeys:\n  - steps:\n      - {name: home, path: /, headers: {User-Agent: tend-knee}}\n",
    );
    let slow = SlowApp::new(&lab, s.apps[0]);
    let r = loadtest(
        &lab,
        &[
            &file,
            "--find-knee",
            "--rate",
            "2/s",
            "--knee-factor",
            "2",
            "--knee-steps",
            "4",
            "--duration",
            "4s",
            "--threshold",
            "p95 < 1s",
        ],
    );
    drop(slow);
    assert_eq!(r.code, 0, "{r:?}");
    let knee = &record(&r)["knee"];
    let max = knee["max_rate"].as_f64().unwrap_or(0.0);
    let broke = knee["broke_at"].as_f64().unwrap_or(0.0);
    assert!(max == 4.0 || max == 8.0, "{knee}");
    assert_eq!(broke, max * 2.0, "{knee}");
    assert!(
        knee["summary"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!("max {max:.2} journeys/s")),
        "{knee}"
    );
    let steps = knee["steps"].as_array().cloned().unwrap_or_default();
    assert_eq!(steps.len() as f64, (broke / 2.0).log2() + 1.0, "{knee}");
    for st in &steps {
        let servers = st["servers"].as_array().cloned().unwrap_or_default();
        for h in s.apps.iter().chain([&s.primary, &s.replica]) {
            let cpu = servers
                .iter()
                .find(|x| x["host"] == format!("h{h}") && x.get("cpu_percent").is_some())
                .and_then(|x| x["cpu_percent"].as_f64());
            assert!(cpu.is_some_and(|c| (0.0..=100.0).contains(&c)), "h{h} cpu in {st}");
        }
        assert!(
            servers
                .iter()
                .any(|x| x["host"] == format!("h{}", s.primary)
                    && x["threads_running"].as_f64().is_some_and(|t| t >= 1.0)),
            "threads running on the primary in {st}"
        );
    }
}

/// `--from-logs DAY`: a day of real traffic through the balancer (three GETs of one URL to one
/// of another, plus a POST and a 404 that must not be replayed), collected into a store with
/// `tend logs collect`, is replayed: the balancer then sees the two URLs in the day's
/// proportion, and without --rate the replay runs at the day's busiest minute's rate.
#[test]
fn a_day_of_the_logs_is_replayed_in_its_proportions() {
    let lab = Lab::get();
    let s = provision_shop(&lab);
    let tag = format!("replay{}", std::process::id());
    let lb = lab.address(s.lb);
    for i in 0..40 {
        let url = if i % 4 == 3 {
            format!("http://{lb}/health.jsp?{tag}=b")
        } else {
            format!("http://{lb}/?{tag}=a")
        };
        assert_eq!(common::http_get(&url).0, 200, "{url}");
    }
    let post = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("http://{lb}/?{tag}=post"),
        ])
        .status()
        .expect("curl");
    assert!(post.success());
    assert_eq!(common::http_get(&format!("http://{lb}/missing-{tag}")).0, 404);
    let store = common::scratch();
    let store_dir = store.path().to_str().unwrap_or_default().to_string();
    let r = common::run(&[
        "logs",
        "collect",
        &format!("h{}", s.lb),
        "-i",
        &lab.inventory(),
        "--store",
        &store_dir,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // The store keeps this test's lines only: other tests' traffic of the day would change the mix.
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let day_file = store
        .path()
        .join(format!("h{}", s.lb))
        .join("nginx_access")
        .join(format!("{today}.log.gz"));
    let kept = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zcat {0} | grep -F '{tag}' | gzip > {0}.new && mv {0}.new {0} && zcat {0} | wc -l",
            day_file.display()
        ))
        .output()
        .expect("sh");
    assert_eq!(String::from_utf8_lossy(&kept.stdout).trim(), "42", "{kept:?}");

    let count = |url_part: &str| -> usize {
        lab.sh(
            s.lb,
            &format!("grep -F 'tend-loadtest/' /var/log/nginx/access.log | grep -cF '{url_part}' || true"),
        )
        .trim()
        .parse()
        .unwrap_or(0)
    };
    let r = loadtest(
        &lab,
        &[
            "--from-logs",
            &today,
            "--store",
            &store_dir,
            "--rate",
            "40/s",
            "--duration",
            "10s",
            "--threshold",
            "errors < 1%",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("40 GET/HEAD requests answered 2xx/3xx in 1 file(s) (2 others left out); 2 URL(s)"),
        "{r:?}"
    );
    let rec = record(&r);
    assert_eq!(rec["requests"], 400, "{rec}");
    assert_eq!(rec["scenario"], format!("logs of {today}"));
    // Steps are named by URL group, as the daily report groups URLs.
    let steps: Vec<&str> = rec["steps"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(steps, ["replay/GET /", "replay/GET /health.jsp"], "{rec}");
    assert_eq!(count(&format!("/?{tag}=a ")), 300);
    assert_eq!(count(&format!("/health.jsp?{tag}=b ")), 100);
    assert_eq!(count(&format!("{tag}=post")), 0);

    // Without --rate: the busiest minute's rate (the 40 GETs fell in one or two minutes).
    let r = loadtest(
        &lab,
        &["--from-logs", &today, "--store", &store_dir, "--duration", "2s"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rec = record(&r);
    let target = rec["target_rate"].as_f64().unwrap_or(0.0);
    assert!(
        (20.0 / 60.0..=40.0 / 60.0 + 1e-9).contains(&target),
        "busiest minute's rate: {target} ({rec})"
    );

    // A day the store does not have: exit 4, naming the store.
    let r = loadtest(
        &lab,
        &["--from-logs", "2001-01-01", "--store", &store_dir, "--rate", "1"],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("has no access log of 2001-01-01"), "{r:?}");
}
