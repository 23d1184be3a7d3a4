//! Which backups and binlogs retention keeps: the newest complete backup of each of the last
//! `daily` days, `weekly` ISO weeks and `monthly` months (UTC), always the newest backup and
//! the newest verified one, and every binlog file from the oldest kept backup's position on
//! (what the kept backups' point-in-time ranges need). Failed entries older than the newest
//! complete backup go too.

use super::Keep;
use super::binlogs::Index;
use super::catalog::{Backup, State};
use std::collections::{BTreeMap, BTreeSet};

/// A retention period: its name, how many to keep, and the period a day falls in.
type Period = (&'static str, usize, fn(jiff::civil::Date) -> String);

/// What pruning does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruning {
    /// Kept backups with why.
    pub keep: Vec<(String, Vec<String>)>,
    /// Backups (and failed entries) removed.
    pub delete: Vec<String>,
    /// Binlog files removed, by server.
    pub binlogs: BTreeMap<String, Vec<String>>,
}

/// Plans pruning of `backups` (oldest first, as listed) and the servers' binlog `indexes`.
pub fn plan(backups: &[Backup], indexes: &[Index], keep: Keep) -> Pruning {
    let complete: Vec<&Backup> = backups.iter().rev().filter(|b| b.state == State::Complete).collect();
    let mut why: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut mark = |b: &Backup, reason: String| why.entry(b.id.clone()).or_default().push(reason);
    if let Some(b) = complete.first() {
        mark(b, "newest".into());
    }
    if let Some(b) = complete.iter().find(|b| b.verified().is_some()) {
        mark(b, "newest verified".into());
    }
    let periods: [Period; 3] = [
        ("daily", keep.daily, |d| d.to_string()),
        ("weekly", keep.weekly, |d| {
            let w = d.iso_week_date();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("monthly", keep.monthly, |d| format!("{}-{:02}", d.year(), d.month())),
    ];
    for (name, n, period) in periods {
        let mut seen = BTreeSet::new();
        for b in &complete {
            if seen.len() >= n {
                break;
            }
            let Some(day) = day(b) else { continue };
            let p = period(day);
            if seen.insert(p.clone()) {
                mark(b, format!("{name} {p}"));
            }
        }
    }
    let newest_complete = complete.first().map(|b| b.id.clone());
    let mut pruning = Pruning::default();
    for b in backups {
        match why.get(&b.id) {
            Some(r) => pruning.keep.push((b.id.clone(), r.clone())),
            None if b.state == State::Complete => pruning.delete.push(b.id.clone()),
            None if newest_complete.as_ref().is_some_and(|n| &b.id < n) => pruning.delete.push(b.id.clone()),
            None => {}
        }
    }
    // Binlogs before the oldest kept backup of each server are needed by none.
    for index in indexes {
        let oldest = backups
            .iter()
            .filter(|b| why.contains_key(&b.id))
            .filter(|b| b.binlog_host.as_deref().is_none_or(|h| h == index.host))
            .filter_map(|b| b.binlog_file.clone())
            .min();
        let Some(oldest) = oldest else { continue };
        let old: Vec<String> = index
            .files
            .iter()
            .filter(|f| f.name < oldest)
            .map(|f| f.name.clone())
            .collect();
        if !old.is_empty() {
            pruning.binlogs.insert(index.host.clone(), old);
        }
    }
    pruning
}

/// The UTC day a backup started.
fn day(b: &Backup) -> Option<jiff::civil::Date> {
    let ts: jiff::Timestamp = b.started.parse().ok()?;
    Some(jiff::tz::TimeZone::UTC.to_datetime(ts).date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::binlogs::BinlogFile;

    fn backup(id: &str, started: &str, file: &str) -> Backup {
        serde_json::from_value(serde_json::json!({
            "id": id, "kind": "logical", "host": "h9", "from_replica": true, "server_version": "",
            "tool_version": "", "started": started, "finished": started, "seconds": 1.0, "bytes": 1,
            "files": [], "gtid": "0-1-1", "binlog_file": file, "binlog_pos": 4, "binlog_host": "h8",
            "tables": [], "tables_at_consistent_point": true, "state": "complete"
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keeps_the_newest_of_each_day_week_and_month_and_the_binlogs_they_need() {
        let mut all = vec![
            backup("a", "2026-10-15T03:00:00Z", "b.000001"),
            backup("b", "2026-11-20T03:00:00Z", "b.000002"),
            backup("c", "2026-11-29T03:00:00Z", "b.000003"),
            backup("d", "2026-11-30T03:00:00Z", "b.000004"),
            backup("e", "2026-11-30T15:00:00Z", "b.000005"),
            backup("f", "2026-12-01T03:00:00Z", "b.000006"),
        ];
        // An old verified backup is kept whatever the periods say.
        all[1].verifications.push(
            serde_json::from_value(serde_json::json!({
                "at": "2026-11-20T04:00:00Z", "host": "h9", "ok": true, "problems": [], "restore_seconds": 1.0,
                "load_seconds": 1.0, "replay_seconds": 0.0, "gtid": "", "transactions": 0, "seconds": 2.0
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let index = Index {
            host: "h8".into(),
            files: (1..=6)
                .map(|i| BinlogFile {
                    name: format!("b.00000{i}"),
                    bytes: 1,
                    sha256: String::new(),
                    closed: true,
                    gtid_start: String::new(),
                    gtid_end: String::new(),
                })
                .collect(),
            ..Index::default()
        };
        let keep = Keep {
            daily: 2,
            weekly: 1,
            monthly: 2,
        };
        let p = plan(&all, &[index], keep);
        let kept: Vec<&str> = p.keep.iter().map(|(id, _)| id.as_str()).collect();
        // f: newest, daily 12-01, weekly, monthly 12; e: daily 11-30 (newer than d), monthly 11;
        // b: newest verified.
        assert_eq!(kept, vec!["b", "e", "f"], "{p:?}");
        assert_eq!(p.delete, vec!["a", "c", "d"]);
        assert_eq!(p.binlogs.get("h8"), Some(&vec!["b.000001".to_string()]));
    }
}
