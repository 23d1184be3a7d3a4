//! The catalog of a backup store: one JSON file per backup under `catalog/`, written last and
//! atomically, so that a backup is listed only once every file of it is in the store with its
//! checksum. A failed backup is recorded as failed, never as good.

use serde::{Deserialize, Serialize};

/// One file of a backup, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// Its name inside the backup's directory.
    pub name: String,
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of the stored bytes, computed as they streamed.
    pub sha256: String,
}

/// A table at the backup's consistent point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// `schema.table`.
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// `CHECKSUM TABLE`.
    pub checksum: Option<String>,
}

/// How a backup was taken, which says how it is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `mariadb-dump`: SQL, loaded into a running server.
    Logical,
    /// `mariabackup --stream`: the server's files, prepared and put in place of its datadir.
    Physical,
}

impl Kind {
    /// Its name in ids, the catalog and `--kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logical => "logical",
            Self::Physical => "physical",
        }
    }

    /// The name of its one file in the store.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Logical => "dump.sql.zst",
            Self::Physical => "backup.xbstream.zst",
        }
    }
}

/// Where a backup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Every file is stored and checksummed.
    Complete,
    /// It stopped part-way: never restored from.
    Failed,
}

/// One backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// `<UTC time>-<kind>`, sortable.
    pub id: String,
    /// Logical or physical.
    pub kind: Kind,
    /// The host it was taken from.
    pub host: String,
    /// Whether that host was a replica (the primary kept serving).
    pub from_replica: bool,
    /// `@@version` of the server.
    pub server_version: String,
    /// The dump tool's own version line.
    pub tool_version: String,
    /// RFC 3339 start.
    pub started: String,
    /// RFC 3339 end.
    pub finished: String,
    /// Seconds.
    pub seconds: f64,
    /// Bytes stored (compressed).
    pub bytes: u64,
    /// The files.
    pub files: Vec<File>,
    /// The GTID position at the consistent point.
    pub gtid: String,
    /// The primary's binlog file and position at the consistent point.
    pub binlog_file: Option<String>,
    /// Its position.
    pub binlog_pos: Option<u64>,
    /// The server whose binlogs `binlog_file` names (the primary at the time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_host: Option<String>,
    /// Row counts and checksums of every table.
    pub tables: Vec<Table>,
    /// Whether `tables` were taken at the consistent point itself (a replica with its applier
    /// stopped) or only close to it (from a primary that kept taking writes).
    pub tables_at_consistent_point: bool,
    /// Complete or failed.
    pub state: State,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every verification by restoring it, oldest first.
    #[serde(default)]
    pub verifications: Vec<Verification>,
}

impl Backup {
    /// The verification that passed last, if one did.
    pub fn verified(&self) -> Option<&Verification> {
        self.verifications.iter().rev().find(|v| v.ok)
    }
}

/// One verification of a backup: restored into a scratch server, checked, rolled forward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// RFC 3339 start.
    pub at: String,
    /// The host of the scratch server.
    pub host: String,
    /// Whether the backup proved good.
    pub ok: bool,
    /// What was wrong.
    pub problems: Vec<String>,
    /// Seconds to load and roll forward: what a restore of it takes.
    pub restore_seconds: f64,
    /// Seconds to load the backup.
    pub load_seconds: f64,
    /// Seconds to roll it forward.
    pub replay_seconds: f64,
    /// The GTID position it was rolled forward to.
    pub gtid: String,
    /// Transactions replayed.
    pub transactions: u64,
    /// Seconds for the whole verification.
    pub seconds: f64,
}

impl Backup {
    /// Where its catalog entry lives, relative to the store.
    pub fn entry_path(id: &str) -> String {
        format!("catalog/{id}.json")
    }
}

/// A backup id: letters, digits, `-`, `_`, `.`, `T`, `Z` (what tend makes); anything else is not
/// one (and would not name a file safely).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_files_safely() {
        assert!(valid_id("20261201T034500Z-logical"));
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
