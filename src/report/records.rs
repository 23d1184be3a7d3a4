//! tend's own record of a day: the deploys, migrations, backups and failovers its audit logs
//! hold, so the daily report can put them on the hourly chart beside the traffic they touched.

use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// The commands that change the shop, and the kind each is marked as.
const MARKED: [(&str, &str); 13] = [
    ("deploy", "deploy"),
    ("rollback", "deploy"),
    ("migrate up", "migration"),
    ("migrate undo", "migration"),
    ("migrate repair", "migration"),
    ("migrate baseline", "migration"),
    ("backup run", "backup"),
    ("restore", "backup"),
    ("failover switchover", "failover"),
    ("failover promote", "failover"),
    ("failover drill", "failover"),
    ("failover rejoin", "failover"),
    ("replica rebuild", "failover"),
];

/// The first and last line of an audit log.
fn ends(path: &Path) -> Option<(Json, Option<Json>)> {
    let mut r = BufReader::new(std::fs::File::open(path).ok()?);
    let mut first = String::new();
    r.read_line(&mut first).ok()?;
    let first: Json = serde_json::from_str(&first).ok()?;
    let mut last = None;
    for line in r.lines().map_while(Result::ok) {
        if line.contains("\"event\":\"recap\"")
            && let Ok(v) = serde_json::from_str::<Json>(&line)
        {
            last = Some(v);
        }
    }
    Some((first, last))
}

/// The runs of `dir` that started on `date` in the access log's time zone (`zone_minutes`
/// east of UTC), oldest first: `{command, kind, run, start, end, minute, exit_code}` where
/// `minute` is the start's minute of that day (0..1440) and `exit_code` is null for a run that
/// did not finish.
pub fn of_day(dir: &Path, date: jiff::civil::Date, zone_minutes: i32) -> Vec<Json> {
    let Ok(zone) = jiff::tz::Offset::from_seconds(zone_minutes * 60) else {
        return Vec::new();
    };
    let tz = jiff::tz::TimeZone::fixed(zone);
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    for path in names {
        // The name starts with the UTC start: a day's runs are within a day of it.
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let near = stem
            .get(..8)
            .and_then(|d| jiff::civil::Date::strptime("%Y%m%d", d).ok())
            .is_some_and(|d| (d - date).get_days().abs() <= 1);
        if !near {
            continue;
        }
        let Some((first, recap)) = ends(&path) else {
            continue;
        };
        let command = first["command"].as_str().unwrap_or_default();
        let Some((_, kind)) = MARKED.iter().find(|(c, _)| *c == command) else {
            continue;
        };
        let Some(start) = first["time"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
            continue;
        };
        let local = start.to_zoned_datetime(tz.clone());
        if local.date() != date {
            continue;
        }
        out.push(json!({
            "command": command,
            "kind": kind,
            "run": first["run_id"],
            "start": start.to_string(),
            "end": recap.as_ref().map_or(Json::Null, |r| r["time"].clone()),
            "minute": i64::from(local.hour()) * 60 + i64::from(local.minute()),
            "exit_code": recap.as_ref().map_or(Json::Null, |r| r["exit_code"].clone()),
        }));
    }
    out
}
