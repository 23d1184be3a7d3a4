//! The failover history: one JSON line per switchover, promotion and drill, in the backup
//! store (`failover/history.jsonl`), so that every operator's control node sees the same
//! history, the cool-down holds across them, and RTO/RPO can be followed over time.

use crate::backup::store::Store;
use crate::transport::{Host, StepError};
use serde::{Deserialize, Serialize};

/// The history file in the store.
const FILE: &str = "failover/history.jsonl";

/// One failover.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339 end time.
    pub at: String,
    /// Seconds since the epoch (the cool-down's clock).
    pub at_s: i64,
    /// The cluster (its inventory group).
    pub cluster: String,
    /// `switchover`, `promote`, `drill switchover`, `drill kill-primary`.
    pub kind: String,
    /// Old primary.
    pub from: String,
    /// New primary (empty when it failed before one was chosen).
    pub to: String,
    /// `switched` or `failed`.
    pub outcome: String,
    /// The drill's RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<u64>,
    /// The drill's acknowledged writes missing on the new primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_missing: Option<usize>,
    /// Who ran it.
    pub user: String,
}

impl Entry {
    /// A drill (planned: not held by the cool-down).
    pub fn is_drill(&self) -> bool {
        self.kind.starts_with("drill")
    }
}

/// Every entry, oldest first (lines that do not parse are skipped: a history is never a
/// reason to refuse a failover).
pub async fn load(store: &Store, host: Option<&Host>) -> Result<Vec<Entry>, StepError> {
    let bytes = store.get(host, FILE).await?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Appends an entry (the failover lock is held: nobody else writes meanwhile).
pub async fn append(store: &Store, host: Option<&Host>, entry: &Entry) -> Result<(), StepError> {
    let mut bytes = store.get(host, FILE).await?.unwrap_or_default();
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    let line = serde_json::to_string(entry).unwrap_or_default();
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    store.put(host, FILE, &bytes).await
}

/// The last switchover or promotion of `cluster` (drills aside) within `cooldown` of `now`.
pub fn cooling<'a>(entries: &'a [Entry], cluster: &str, now: i64, cooldown: std::time::Duration) -> Option<&'a Entry> {
    entries.iter().rev().find(|e| {
        e.cluster == cluster && !e.is_drill() && e.outcome == "switched" && now - e.at_s < cooldown.as_secs() as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, at_s: i64) -> Entry {
        Entry {
            at: String::new(),
            at_s,
            cluster: "db".into(),
            kind: kind.into(),
            from: "h8".into(),
            to: "h9".into(),
            outcome: "switched".into(),
            rto_ms: None,
            rpo_missing: None,
            user: "root".into(),
        }
    }

    #[test]
    fn only_a_recent_switchover_or_promotion_holds_the_next_one() {
        let hour = std::time::Duration::from_secs(3600);
        let h = [entry("switchover", 1000), entry("drill switchover", 4000)];
        assert_eq!(cooling(&h, "db", 4700, hour).map(|e| e.at_s), None);
        assert_eq!(cooling(&h, "db", 4000, hour).map(|e| e.at_s), Some(1000));
        assert!(cooling(&h, "other", 2000, hour).is_none());
        assert!(cooling(&h, "db", 2000, std::time::Duration::ZERO).is_none());
    }
}
