//! `--from-logs DAY`: a scenario made from the shop's own traffic. The access logs of that day
//! in the log store give the URL mix (each URL's share of the day's requests) and the arrival
//! rate (the busiest minute's), so a load test replays what real users did rather than what
//! someone guessed. Only what can be replayed safely is taken: GET and HEAD requests that were
//! answered 2xx or 3xx (a POST's body is not in the log, and an error page is not load).

use super::scenario::{Journey, Request, Scenario, Step};
use crate::report::{Options, each_line, first_segment, same_day};
use std::path::PathBuf;

/// At most this many URLs become journeys (the most requested ones).
pub const MAX_URLS: usize = 1000;

/// What a day's traffic came to (the scenario that replays it is returned beside it).
#[derive(Debug, Clone)]
pub struct Replay {
    /// The day.
    pub date: jiff::civil::Date,
    /// Requests of the day that can be replayed (GET or HEAD, answered 2xx or 3xx).
    pub requests: u64,
    /// Other requests of the day, left out.
    pub skipped: u64,
    /// Distinct URLs among the replayable requests.
    pub urls: usize,
    /// The share of the replayable requests that the kept URLs made (1.0 when all were kept).
    pub covered: f64,
    /// The busiest minute: hour, minute, replayable requests in it.
    pub busiest: (u8, u8, u64),
    /// Replayable requests a second over the whole day.
    pub day_rate: f64,
    /// Files read.
    pub files: usize,
}

impl Replay {
    /// The busiest minute's requests a second: the default rate of a replay.
    pub fn peak_rate(&self) -> f64 {
        self.busiest.2 as f64 / 60.0
    }
}

/// The step name of a URL: its group, as the daily report groups URLs (the product pattern, or
/// the first path segment).
fn group(method: &str, path: &[u8], opts: &Options) -> String {
    let path = match memchr::memchr(b'?', path) {
        Some(i) => &path[..i],
        None => path,
    };
    if opts.product_pattern.matches(path).is_some() {
        return format!("{method} {}", opts.product_pattern.as_str());
    }
    let first = first_segment(path);
    let more = path.len() > first.len() + 1;
    match (first.is_empty(), more) {
        (true, _) => format!("{method} /"),
        (false, false) => format!("{method} /{}", String::from_utf8_lossy(first)),
        (false, true) => format!("{method} /{}/…", String::from_utf8_lossy(first)),
    }
}

/// Reads the day's `files` into the scenario that replays them (one journey per URL, weighted
/// by its requests; steps named by URL group) and what they came to; `Ok(None)` when none of
/// their lines can be replayed.
pub fn read(files: &[PathBuf], date: jiff::civil::Date, opts: &Options) -> std::io::Result<Option<(Scenario, Replay)>> {
    let mut urls: foldhash::HashMap<(bool, Vec<u8>), u64> = Default::default();
    let mut minutes = vec![0u64; 24 * 60];
    let (mut requests, mut skipped) = (0u64, 0u64);
    for f in files {
        each_line(f, |line| {
            let Some(a) = opts.format.parse(line) else {
                return;
            };
            if !same_day(a.day, date) {
                return;
            }
            let head = match a.method {
                b"GET" => false,
                b"HEAD" => true,
                _ => {
                    skipped += 1;
                    return;
                }
            };
            if !(200..400).contains(&a.status) || !a.target.starts_with(b"/") {
                skipped += 1;
                return;
            }
            requests += 1;
            minutes[usize::from(a.hour) * 60 + usize::from(a.minute)] += 1;
            match urls.get_mut(&(head, a.target.to_vec())) {
                Some(n) => *n += 1,
                None => {
                    urls.insert((head, a.target.to_vec()), 1);
                }
            }
        })
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
    }
    if requests == 0 {
        return Ok(None);
    }
    let distinct = urls.len();
    let mut ranked: Vec<((bool, Vec<u8>), u64)> = urls.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(MAX_URLS);
    let kept: u64 = ranked.iter().map(|(_, n)| n).sum();
    let journeys = ranked
        .into_iter()
        .map(|((head, target), n)| {
            let method = if head { "HEAD" } else { "GET" };
            Journey {
                name: "replay".into(),
                weight: u32::try_from(n).unwrap_or(u32::MAX),
                steps: vec![Step::Request(Request {
                    name: group(method, &target, opts),
                    method: method.into(),
                    path: String::from_utf8_lossy(&target).into_owned(),
                    headers: Vec::new(),
                    body: None,
                    extract: Vec::new(),
                    expect: None,
                })],
            }
        })
        .collect();
    let (at, most) = minutes
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or((0, 0), |(i, n)| (i, *n));
    let scenario = Scenario {
        name: format!("logs of {date}"),
        base_url: None,
        vars: Vec::new(),
        journeys,
        thresholds: Vec::new(),
    };
    Ok(Some((
        scenario,
        Replay {
            date,
            requests,
            skipped,
            urls: distinct,
            covered: kept as f64 / requests as f64,
            busiest: ((at / 60) as u8, (at % 60) as u8, most),
            day_rate: requests as f64 / 86_400.0,
            files: files.len(),
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_mix_and_rate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("access.log");
        let line = |t: &str, req: &str, status: u16| {
            format!(
                r#"10.0.0.9 - - [02/Dec/2026:{t} +0000] "{req} HTTP/1.1" {status} 5 "-" "ua" 0.010 "10.0.0.2:8080""#
            )
        };
        let mut lines = Vec::new();
        for s in 0..30 {
            lines.push(line(&format!("14:05:{s:02}"), "GET /product/tea/7", 200));
        }
        for s in 0..10 {
            lines.push(line(&format!("14:06:{s:02}"), "GET /static/app.css?v=2", 304));
        }
        lines.push(line("09:00:00", "HEAD /", 200));
        lines.push(line("09:00:01", "POST /checkout", 302));
        lines.push(line("09:00:02", "GET /missing", 404));
        lines.push(r#"10.0.0.9 - - [03/Dec/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "ua""#.into());
        std::fs::write(&log, lines.join("\n")).expect("write");
        let date: jiff::civil::Date = "2026-12-02".parse().expect("date");
        let (scenario, r) = read(&[log], date, &Options::default())
            .expect("reads")
            .expect("replayable");
        assert_eq!((r.requests, r.skipped, r.urls), (41, 2, 3));
        assert_eq!(r.busiest, (14, 5, 30));
        assert!((r.peak_rate() - 0.5).abs() < 1e-9);
        assert!((r.covered - 1.0).abs() < 1e-9);
        assert_eq!(scenario.name, "logs of 2026-12-02");
        let mix: Vec<(u32, String, String, String)> = scenario
            .journeys
            .iter()
            .map(|j| match &j.steps[0] {
                Step::Request(q) => (j.weight, q.method.clone(), q.path.clone(), q.name.clone()),
                Step::Think(_) => panic!("a replay has no think step"),
            })
            .collect();
        assert_eq!(
            mix,
            [
                (
                    30,
                    "GET".into(),
                    "/product/tea/7".into(),
                    "GET /product/{category}/{id}".into()
                ),
                (10, "GET".into(), "/static/app.css?v=2".into(), "GET /static/…".into()),
                (1, "HEAD".into(), "/".into(), "HEAD /".into()),
            ]
        );
    }
}
