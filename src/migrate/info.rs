//! What the files and the history table say together: each migration's state (Flyway's
//! vocabulary), the current version, what `up` would apply and what `validate` objects to.

use super::files::{Kind, Migration, Migrations, Version};
use super::history::{self, Row, State, kind};

/// A migration's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Applied and unchanged.
    Applied,
    /// Not applied yet; `up` applies it.
    Pending,
    /// Its last run failed part-way.
    Failed,
    /// A repeatable migration whose file changed since it was applied; `up` applies it again.
    Outdated,
    /// Applied, but its file is gone.
    Missing,
    /// Applied by a newer set of files (a version above every file's).
    Future,
    /// Not applied and below the current version: skipped unless `--out-of-order`.
    Ignored,
    /// The baseline row.
    Baseline,
    /// A file at or below the baseline version: never applied.
    BelowBaseline,
    /// Applied, then undone: pending again.
    Undone,
}

impl Status {
    /// The word shown in tables.
    pub fn word(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Outdated => "outdated",
            Self::Missing => "missing",
            Self::Future => "future",
            Self::Ignored => "ignored",
            Self::Baseline => "baseline",
            Self::BelowBaseline => "below baseline",
            Self::Undone => "undone",
        }
    }
}

/// One line of `info`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `None` for repeatable migrations.
    pub version: Option<Version>,
    /// Description.
    pub description: String,
    /// The file (or the history's script when the file is gone).
    pub script: String,
    /// State.
    pub status: Status,
    /// When it was applied (the last row that counts).
    pub installed_on: Option<String>,
    /// The file's checksum.
    pub file_checksum: Option<i32>,
    /// The checksum the history recorded.
    pub applied_checksum: Option<i32>,
    /// Index into the files' versioned or repeatable list.
    pub file: Option<usize>,
}

impl Entry {
    /// The entry of file `i` of its kind, with the history row that decides its state.
    fn of_file(m: &Migration, i: usize, status: Status, row: Option<&Row>) -> Self {
        Self {
            version: m.version.clone(),
            description: m.description.clone(),
            script: m.script.clone(),
            status,
            installed_on: row.map(|r| r.installed_on.clone()),
            file_checksum: Some(m.checksum),
            applied_checksum: row.and_then(|r| r.checksum),
            file: Some(i),
        }
    }
}

/// The whole picture.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// Entries in Flyway's order: versioned by version, then repeatables.
    pub entries: Vec<Entry>,
    /// The highest applied (or baseline) version.
    pub current: Option<Version>,
}

/// Reconciles files and history. `out_of_order`: pending versions below the current one are
/// pending, not ignored.
pub fn reconcile(files: &Migrations, state: &State, out_of_order: bool) -> Info {
    let rows = &state.rows;
    // The last row of each version decides its state (a later undo makes it pending again).
    let (last, baseline) = history::versions(rows);
    let current = state.current();
    let latest_file = files.latest().cloned();
    let mut entries = Vec::new();
    for (i, m) in files.versioned.iter().enumerate() {
        let Some(v) = &m.version else { continue };
        let row = last.iter().find(|(lv, _)| lv == v).map(|(_, r)| *r);
        let status = match row {
            Some(r) if r.kind == kind::BASELINE => Status::Baseline,
            Some(r) if !r.success => Status::Failed,
            Some(r) if r.kind == kind::UNDO => pending(v, &current, &baseline, out_of_order, Status::Undone),
            Some(_) => Status::Applied,
            None => pending(v, &current, &baseline, out_of_order, Status::Pending),
        };
        entries.push(Entry::of_file(m, i, status, row));
    }
    for (v, r) in &last {
        if files.versioned.iter().any(|m| m.version.as_ref() == Some(v)) {
            continue;
        }
        let status = if r.kind == kind::BASELINE {
            Status::Baseline
        } else if !r.success {
            Status::Failed
        } else if r.kind == kind::UNDO {
            continue;
        } else if latest_file.as_ref().is_none_or(|l| v > l) {
            Status::Future
        } else {
            Status::Missing
        };
        entries.push(Entry {
            version: Some(v.clone()),
            description: r.description.clone(),
            script: r.script.clone(),
            status,
            installed_on: Some(r.installed_on.clone()),
            file_checksum: None,
            applied_checksum: r.checksum,
            file: None,
        });
    }
    entries.sort_by(|a, b| a.version.cmp(&b.version));
    // Repeatables: the last row with the same description.
    for (i, m) in files.repeatable.iter().enumerate() {
        let row = rows
            .iter()
            .rev()
            .find(|r| {
                r.version.is_none() && (r.kind == kind::SQL || r.kind == kind::DELETE) && r.description == m.description
            })
            .filter(|r| r.kind == kind::SQL);
        let status = match row {
            None => Status::Pending,
            Some(r) if !r.success => Status::Failed,
            Some(r) if r.checksum != Some(m.checksum) => Status::Outdated,
            Some(_) => Status::Applied,
        };
        entries.push(Entry::of_file(m, i, status, row));
    }
    let mut gone: Vec<&Row> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.version.is_none() && (r.kind == kind::SQL || r.kind == kind::DELETE))
    {
        if files.repeatable.iter().any(|m| m.description == r.description) {
            continue;
        }
        gone.retain(|g| g.description != r.description);
        if r.kind == kind::SQL {
            gone.push(r);
        }
    }
    for r in gone {
        entries.push(Entry {
            version: None,
            description: r.description.clone(),
            script: r.script.clone(),
            status: if r.success { Status::Missing } else { Status::Failed },
            installed_on: Some(r.installed_on.clone()),
            file_checksum: None,
            applied_checksum: r.checksum,
            file: None,
        });
    }
    Info { entries, current }
}

fn pending(
    v: &Version,
    current: &Option<Version>,
    baseline: &Option<Version>,
    out_of_order: bool,
    word: Status,
) -> Status {
    if baseline.as_ref().is_some_and(|b| v <= b) {
        Status::BelowBaseline
    } else if current.as_ref().is_some_and(|c| v < c) && !out_of_order {
        Status::Ignored
    } else {
        word
    }
}

/// A problem `validate` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// The file or the history's script.
    pub script: String,
    /// What is wrong.
    pub message: String,
}

impl Info {
    /// What `validate` objects to: changed applied files, missing files, versions below the
    /// current one left pending, failed migrations.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for e in &self.entries {
            let what = match &e.version {
                Some(v) => format!("version {v} ({})", e.description),
                None => format!("repeatable `{}`", e.description),
            };
            let message = match e.status {
                Status::Applied if e.version.is_some() && e.applied_checksum != e.file_checksum => format!(
                    "{what}: the file changed after it was applied: checksum applied {}, file {}",
                    e.applied_checksum.map_or("none".into(), |c| c.to_string()),
                    e.file_checksum.map_or("none".into(), |c| c.to_string())
                ),
                Status::Missing => format!("{what} was applied but its file is gone"),
                Status::Ignored => format!(
                    "{what} is pending below the current version {}; apply it with `--out-of-order`",
                    self.current.as_ref().map(Version::to_string).unwrap_or_default()
                ),
                Status::Failed => format!(
                    "{what} failed or was cut off part-way; fix the file if a statement failed (an interrupted run needs no fix) and run `tend migrate up --resume`, or undo its changes by hand and run `tend migrate repair`"
                ),
                _ => continue,
            };
            out.push(Problem {
                script: e.script.clone(),
                message,
            });
        }
        out
    }

    /// The migrations `up` applies, in order: pending versions up to `to`, then repeatables
    /// that are new or changed.
    pub fn pending<'a>(&self, files: &'a Migrations, to: Option<&Version>) -> Vec<&'a Migration> {
        let mut out = Vec::new();
        for e in &self.entries {
            let Some(i) = e.file else { continue };
            let wanted = matches!(e.status, Status::Pending | Status::Undone | Status::Outdated);
            match &e.version {
                Some(v) if wanted && to.is_none_or(|t| v <= t) => {
                    if let Some(m) = files.versioned.get(i) {
                        out.push(m);
                    }
                }
                None if wanted => {
                    if let Some(m) = files.repeatable.get(i) {
                        out.push(m);
                    }
                }
                _ => {}
            }
        }
        out.sort_by_key(|m| m.kind == Kind::Repeatable);
        out
    }

    /// The failed entry, if any (at most one: tend stops at the first failure).
    pub fn failed(&self) -> Option<&Entry> {
        self.entries.iter().find(|e| e.status == Status::Failed)
    }
}
