//! `tend report daily` on a fixture counted by hand: two hosts' access logs of one day in a
//! log store as `tend logs collect` writes it, and the day before.

mod common;
use std::io::Write as _;
use std::path::Path;

fn store_day(store: &Path, host: &str, date: &str, lines: &[String]) {
    let dir = store.join(host).join("nginx_access");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // Two gzip members, as two collections append them.
    let mut file = std::fs::File::create(dir.join(format!("{date}.log.gz"))).expect("create");
    for half in lines.chunks(lines.len().div_ceil(2).max(1)) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for l in half {
            enc.write_all(l.as_bytes()).expect("gz");
            enc.write_all(b"\n").expect("gz");
        }
        file.write_all(&enc.finish().expect("gz")).expect("write");
    }
}

#[allow(clippy::too_many_arguments)]
fn line(
    addr: &str,
    agent: &str,
    time: &str,
    request: &str,
    status: u16,
    bytes: u64,
    referer: &str,
    secs: &str,
    up: &str,
) -> String {
    format!(
        "{addr} - - [02/Dec/2026:{time} +0000] \"{request}\" {status} {bytes} \"{referer}\" \"{agent}\" {secs} \"{up}\""
    )
}

/// `tend report daily --date DATE --store STORE EXTRA...`.
fn daily(store: &Path, date: &str, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "report",
        "daily",
        "--date",
        date,
        "--store",
        store.to_str().unwrap_or_default(),
    ];
    args.extend_from_slice(extra);
    common::run(&args)
}

#[test]
fn the_daily_report_counts_a_fixture_exactly() {
    let dir = common::scratch();
    let store = dir.path();
    let (u1, u2) = ("10.0.1.1:8080", "10.0.1.2:8080");
    let a = vec![
        line(
            "10.0.0.1",
            "A",
            "09:00:01",
            "GET /product/tea/1 HTTP/1.1",
            200,
            100,
            "-",
            "0.010",
            u1,
        ),
        line(
            "10.0.0.1",
            "A",
            "09:10:00",
            "GET /product/tea/2 HTTP/1.1",
            200,
            100,
            "http://search/",
            "0.020",
            u1,
        ),
        line(
            "10.0.0.1",
            "A",
            "09:20:00",
            "GET /checkout HTTP/1.1",
            200,
            50,
            "-",
            "0.030",
            u1,
        ),
        line(
            "10.0.0.2",
            "B",
            "10:00:00",
            "GET /product/coffee/9?ref=x HTTP/1.1",
            200,
            200,
            "http://search/",
            "0.040",
            u2,
        ),
        line(
            "10.0.0.2",
            "B",
            "10:05:00",
            "GET / HTTP/1.1",
            200,
            300,
            "-",
            "0.050",
            u2,
        ),
        line(
            "10.0.0.3",
            "A",
            "10:06:00",
            "GET /product/tea/1 HTTP/1.1",
            200,
            100,
            "-",
            "0.060",
            u1,
        ),
        line(
            "10.0.0.3",
            "A",
            "11:00:00",
            "GET /cart HTTP/1.1",
            502,
            0,
            "-",
            "0.070",
            u2,
        ),
        line(
            "10.0.0.4",
            "C",
            "11:01:00",
            "GET / HTTP/1.1",
            503,
            0,
            "-",
            "0.080",
            "10.0.1.1:8080, 10.0.1.2:8080",
        ),
        line(
            "10.0.0.4",
            "C",
            "11:02:00",
            "GET /missing HTTP/1.1",
            404,
            10,
            "-",
            "0.090",
            u1,
        ),
        "a line that is not an access log line".to_string(),
    ];
    let b = vec![
        line(
            "10.0.0.1",
            "A",
            "23:59:59",
            "GET /product/coffee/9 HTTP/1.1",
            304,
            0,
            "-",
            "0.100",
            u2,
        ),
        line(
            "10.0.0.5",
            "D",
            "12:00:00",
            "POST /checkout HTTP/1.1",
            200,
            20,
            "-",
            "1.000",
            u1,
        ),
    ];
    store_day(store, "lb1", "2026-12-02", &a);
    store_day(store, "lb2", "2026-12-02", &b);
    let before: Vec<String> = b.iter().map(|l| l.replace("02/Dec", "01/Dec")).collect();
    store_day(store, "lb1", "2026-12-01", &before);

    let r = daily(store, "2026-12-02", &["--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    // The headline keys come first, in this order.
    let keys: Vec<&String> = v.as_object().expect("object").keys().take(4).collect();
    assert_eq!(keys, ["requests", "visitors", "status", "latency_ms"]);
    assert_eq!(v["requests"], 11);
    assert_eq!(v["unparsed_lines"], 1);
    assert_eq!(v["visitors"], 5);
    assert_eq!(v["hosts"], 2);
    assert_eq!(
        v["status"],
        serde_json::json!({"1xx": 0, "2xx": 7, "3xx": 1, "4xx": 1, "5xx": 2})
    );
    assert_eq!(v["bytes"], 880);
    let hours: Vec<(u64, u64)> = v["hours"]
        .as_array()
        .expect("hours")
        .iter()
        .filter(|h| h["requests"].as_u64() != Some(0))
        .map(|h| (h["hour"].as_u64().unwrap_or(99), h["requests"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(hours, [(9, 3), (10, 3), (11, 3), (12, 1), (23, 1)]);
    // 11 times: 10, 20, ..., 100 ms and 1 s. The median is the 6th (60 ms); p95 and p99 the
    // 11th; percentiles are within 1/32 of the value.
    let lat = &v["latency_ms"];
    let near = |x: &serde_json::Value, want: f64| {
        let got = x.as_f64().unwrap_or(-1.0);
        assert!((got - want).abs() <= want / 32.0, "{got} vs {want}");
    };
    near(&lat["p50"], 60.0);
    near(&lat["p95"], 1000.0);
    near(&lat["p99"], 1000.0);
    assert_eq!(lat["max"], 1000.0);
    let pairs = |key: &str, name: &str, count: &str| -> Vec<(String, u64)> {
        v[key]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|x| {
                (
                    x[name].as_str().unwrap_or_default().to_string(),
                    x[count].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let s = |x: &str, n: u64| (x.to_string(), n);
    assert_eq!(
        pairs("top_urls", "url", "requests"),
        [
            s("/", 2),
            s("/checkout", 2),
            s("/product/coffee/9", 2),
            s("/product/tea/1", 2),
            s("/cart", 1),
            s("/missing", 1),
            s("/product/tea/2", 1)
        ]
    );
    assert_eq!(pairs("top_referrers", "referrer", "requests"), [s("http://search/", 2)]);
    assert_eq!(
        pairs("top_agents", "agent", "requests"),
        [s("A", 6), s("B", 2), s("C", 2), s("D", 1)]
    );
    assert_eq!(pairs("upstream_errors", "upstream", "requests"), [s(u2, 2)]);
    assert_eq!(pairs("categories", "category", "clicks"), [s("tea", 3), s("coffee", 2)]);
    assert_eq!(
        v["products"],
        serde_json::json!([
            {"category": "coffee", "id": "9", "clicks": 2},
            {"category": "tea", "id": "1", "clicks": 2},
            {"category": "tea", "id": "2", "clicks": 1}
        ])
    );
    assert_eq!(v["conversion"]["product_viewers"], 3);
    assert_eq!(v["conversion"]["reached_checkout"], 1);
    assert_eq!(
        pairs("url_groups", "group", "requests"),
        [
            s("/product/{category}/{id}", 5),
            s("/", 2),
            s("/checkout", 2),
            s("/cart", 1),
            s("/missing", 1)
        ]
    );
    assert_eq!(v["compare"]["previous_day"]["requests"], 2);
    assert_eq!(v["compare"]["previous_day"]["date"], "2026-12-01");
    assert!(v["compare"]["week_before"].is_null());

    // For people: the headline and the sections.
    let human = daily(store, "2026-12-02", &[]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human
            .stdout
            .starts_with("2026-12-02: 11 requests from 5 visitors (2 host(s)), 880 bytes\n"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("day before (2026-12-01): 2 requests, 2 visitors"),
        "{}",
        human.stdout
    );
    // A day the store does not have: exit 4, saying so.
    let none = daily(store, "2026-11-01", &[]);
    assert_eq!(none.code, 4, "{none:?}");
    assert!(none.stderr.contains("has no access log of 2026-11-01"), "{none:?}");
}

/// An audit log as tend writes it: a start line, and a recap unless the run did not finish.
fn audit_log(dir: &Path, id: &str, command: &str, start: &str, exit: Option<u8>) {
    let mut text = format!(
        "{{\"event\":\"start\",\"schema_version\":1,\"command\":\"{command}\",\"run_id\":\"{id}\",\"hosts\":1,\"run\":\"{id}\",\"time\":\"{start}\"}}\n"
    );
    if let Some(code) = exit {
        text.push_str(&format!(
            "{{\"event\":\"recap\",\"hosts\":{{}},\"duration_ms\":5,\"exit_code\":{code},\"run\":\"{id}\",\"time\":\"{start}\"}}\n"
        ));
    }
    std::fs::write(dir.join(format!("{id}.jsonl")), text).expect("audit log");
}

/// The page: what the JSON says, drawn (headless Chromium's screenshot holds the hourly bars,
/// the category bars and the marks of tend's runs of the day, in their colours).
#[test]
fn the_daily_page_shows_the_fixtures_numbers_and_tends_runs() {
    let dir = common::scratch();
    let store = dir.path().join("store");
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).expect("mkdir");
    let l = |time: &str, request: &str, status: u16, secs: &str| {
        line("10.0.0.1", "A", time, request, status, 100, "-", secs, "10.0.1.1:8080")
    };
    let lines = vec![
        l("08:00:00", "GET /product/tea/1 HTTP/1.1", 200, "0.010"),
        l("08:30:00", "GET /product/tea/2 HTTP/1.1", 200, "0.020"),
        l("09:00:00", "GET /product/coffee/3 HTTP/1.1", 200, "0.030"),
        l("14:00:00", "GET / HTTP/1.1", 502, "0.040"),
    ];
    store_day(&store, "lb1", "2026-12-02", &lines);
    audit_log(&runs, "20261202T103005Z-1", "deploy", "2026-12-02T10:30:05Z", Some(0));
    audit_log(&runs, "20261202T231000Z-2", "backup run", "2026-12-02T23:10:00Z", None);
    // Not marked: a listing, and a run of another day.
    audit_log(
        &runs,
        "20261202T110000Z-3",
        "migrate info",
        "2026-12-02T11:00:00Z",
        Some(0),
    );
    audit_log(&runs, "20261203T000100Z-4", "deploy", "2026-12-03T00:01:00Z", Some(0));
    let page = dir.path().join("day.html");
    let r = daily(
        &store,
        "2026-12-02",
        &[
            "--format",
            "json",
            "--html",
            page.to_str().unwrap_or_default(),
            "--log-dir",
            runs.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    let marks: Vec<(String, String, u64, serde_json::Value)> = v["tend_runs"]
        .as_array()
        .expect("tend_runs")
        .iter()
        .map(|m| {
            (
                m["command"].as_str().unwrap_or_default().to_string(),
                m["kind"].as_str().unwrap_or_default().to_string(),
                m["minute"].as_u64().unwrap_or(0),
                m["exit_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        marks,
        [
            ("deploy".into(), "deploy".into(), 630, serde_json::json!(0)),
            ("backup run".into(), "backup".into(), 1390, serde_json::Value::Null)
        ]
    );
    let html = std::fs::read_to_string(&page).expect("page");
    for want in [
        "Requests<b>4</b>",
        "5xx<b>25.00 %</b>",
        "0 of 1 product viewers",
        "<title>08:00 2 requests",
        "deploy at 2026-12-02T10:30:05Z (exit 0)",
        "backup run at 2026-12-02T23:10:00Z (exit -)",
    ] {
        assert!(html.contains(want), "{want} not in the page:\n{html}");
    }
    assert!(
        !html.contains("src=") && !html.contains("<link"),
        "the page fetches nothing"
    );
    let pixels = common::screenshot(&page, 1000, 900);
    // Hours 08, 09 and 14 drawn as bars; the tallest (2 requests) is twice the others.
    assert!(common::pixels_of(&pixels, "#4e79a7") > 2000, "no hourly bars drawn");
    assert!(common::pixels_of(&pixels, "#59a14f") > 2000, "no category bars drawn");
    assert!(common::pixels_of(&pixels, "#2e7d32") > 200, "the deploy is not marked");
    assert!(common::pixels_of(&pixels, "#0277bd") > 200, "the backup is not marked");
}

/// Another `log_format`: the same requests logged differently count the same, given as a
/// file, with the format as the directive copied from nginx.conf.
#[test]
fn another_log_format_counts_the_same_requests() {
    let dir = common::scratch();
    let file = dir.path().join("access.log");
    std::fs::write(
        &file,
        [
            "2026-12-02T08:00:00+01:00|tea-shop|10.0.0.1|GET /product/tea/1?x=2 HTTP/2.0|200|100|0.010|A b|10.0.1.1:8080\n",
            "2026-12-02T08:30:00+01:00|tea-shop|10.0.0.2|GET /product/coffee/2 HTTP/2.0|200|50|0.020|B|10.0.1.2:8080\n",
            "2026-12-02T21:00:00+01:00|tea-shop|10.0.0.2|POST /checkout HTTP/2.0|302|0|1.500|B|10.0.1.2:8080\n",
            "2026-12-02T21:00:01+01:00|tea-shop|10.0.0.3|GET / HTTP/2.0|503|0|0.100|C|10.0.1.1:8080, 10.0.1.2:8080\n",
            "a line of something else\n",
            "2026-12-03T00:00:01+01:00|tea-shop|10.0.0.2|GET /product/tea/1 HTTP/2.0|200|9|0.010|B|10.0.1.2:8080\n",
        ]
        .concat(),
    )
    .expect("log");
    let format = "log_format pipes '$time_iso8601|$host|$remote_addr|$request|$status|'\n    '$body_bytes_sent|$request_time|$http_user_agent|$upstream_addr';";
    let r = common::run(&[
        "report",
        "daily",
        "--date",
        "2026-12-02",
        "--log-format",
        format,
        "--format",
        "json",
        file.to_str().unwrap_or_default(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(v["requests"], 4);
    assert_eq!(v["unparsed_lines"], 1);
    assert_eq!(v["other_days_lines"], 1, "the next day's line is not counted");
    assert_eq!(v["visitors"], 3);
    assert_eq!(v["bytes"], 150);
    assert_eq!(v["zone_minutes"], 60);
    assert_eq!(
        v["status"],
        serde_json::json!({"1xx": 0, "2xx": 2, "3xx": 1, "4xx": 0, "5xx": 1})
    );
    assert_eq!(
        v["categories"],
        serde_json::json!([{"category": "coffee", "clicks": 1}, {"category": "tea", "clicks": 1}])
    );
    assert_eq!(v["conversion"]["reached_checkout"], 1);
    assert_eq!(
        v["upstream_errors"],
        serde_json::json!([{"upstream": "10.0.1.2:8080", "requests": 1}])
    );
    assert_eq!(v["latency_ms"]["max"], 1500.0);
    assert_eq!(v["top_agents"][0], serde_json::json!({"agent": "B", "requests": 2}));
    // A format the report cannot use: exit 4 naming what is missing.
    let bad = common::run(&[
        "report",
        "daily",
        "--date",
        "2026-12-02",
        "--log-format",
        "$remote_addr $request",
        file.to_str().unwrap_or_default(),
    ]);
    assert_eq!(bad.code, 4, "{bad:?}");
    assert!(bad.stderr.contains("has no `$status`"), "{bad:?}");
}
