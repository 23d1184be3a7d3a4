//! Migration files by Flyway's naming rules: `V<version>__<description>.sql` (versioned),
//! `U<version>__<description>.sql` (its undo), `R__<description>.sql` (repeatable). They are
//! read, checksummed the way Flyway checksums them and split into statements the way the
//! `mariadb` client splits them before anything connects, so a bad file stops the run with
//! nothing sent to a database.

use super::split::{self, Statement};
use crate::diagnostic::{Diagnostic, Source};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A migration version: numbers separated by dots (`2_1` is written `2.1`). Compared part by
/// part as whole numbers, missing parts counting as zero, so `1.0` and `1` are the same
/// version and `1.10` comes after `1.9`, as in Flyway.
#[derive(Debug, Clone)]
pub struct Version {
    /// As written, with `_` turned into `.` (what the history table stores).
    text: String,
    /// The parts without leading zeros, trailing zero parts dropped.
    parts: Vec<String>,
}

impl Version {
    /// Parses a version; `None` unless it is digits separated by single dots or underscores.
    pub fn parse(s: &str) -> Option<Self> {
        let text = s.replace('_', ".");
        if text.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for p in text.split('.') {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let trimmed = p.trim_start_matches('0');
            parts.push(if trimmed.is_empty() { "0" } else { trimmed }.to_string());
        }
        while parts.len() > 1 && parts.last().is_some_and(|p| p == "0") {
            parts.pop();
        }
        Some(Self { text, parts })
    }

    /// The version as the history table stores it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let a = self.parts.get(i).map_or("0", String::as_str);
            let b = other.parts.get(i).map_or("0", String::as_str);
            let c = a.len().cmp(&b.len()).then_with(|| a.cmp(b));
            if c != Ordering::Equal {
                return c;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// What a file is, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `V`: applied once, in version order.
    Versioned,
    /// `U`: undoes the versioned migration of the same version.
    Undo,
    /// `R`: applied after the versioned ones whenever its checksum changed.
    Repeatable,
}

/// One migration file, read and checked.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Versioned, undo or repeatable.
    pub kind: Kind,
    /// `None` for repeatable migrations.
    pub version: Option<Version>,
    /// From the file name, `_` turned into spaces (Flyway's description).
    pub description: String,
    /// The file's path relative to the migrations directory (Flyway's `script`).
    pub script: String,
    /// The file on disk.
    pub path: PathBuf,
    /// Flyway's checksum of the file.
    pub checksum: i32,
    /// The statements, as the `mariadb` client would send them.
    pub statements: Vec<Statement>,
}

impl Migration {
    /// `V5__add_orders.sql:12`, for messages about the statement starting on `line`.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.script)
    }
}

/// Every migration of a directory, checked and in order.
#[derive(Debug, Clone, Default)]
pub struct Migrations {
    /// Versioned migrations, by version.
    pub versioned: Vec<Migration>,
    /// Undo migrations, by version.
    pub undo: Vec<Migration>,
    /// Repeatable migrations, by description (Flyway's order).
    pub repeatable: Vec<Migration>,
}

impl Migrations {
    /// The undo file of `version`, if there is one.
    pub fn undo_of(&self, version: &Version) -> Option<&Migration> {
        self.undo.iter().find(|m| m.version.as_ref() == Some(version))
    }

    /// The highest version among the files.
    pub fn latest(&self) -> Option<&Version> {
        self.versioned.last().and_then(|m| m.version.as_ref())
    }
}

/// Flyway's checksum of a migration: CRC32 over the UTF-8 bytes of each line without its line
/// ending (`\n`, `\r\n` or `\r`), a leading byte order mark removed, as a signed 32-bit number.
/// Line endings and blank lines therefore do not change it.
pub fn checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = crc32fast::Hasher::new();
    for line in text.split(['\n', '\r']) {
        crc.update(line.as_bytes());
    }
    crc.finalize() as i32
}

/// What a file name says, or why it is not a migration's name.
fn parse_name(name: &str) -> Result<Option<(Kind, Option<Version>, String)>, String> {
    let Some(stem) = name.strip_suffix(".sql") else {
        return Ok(None);
    };
    let example = "name migrations like `V1.2__add_orders.sql`, `U1.2__add_orders.sql` or `R__views.sql`";
    let (kind, rest) = match stem.chars().next() {
        Some('V') => (Kind::Versioned, &stem[1..]),
        Some('U') => (Kind::Undo, &stem[1..]),
        Some('R') => (Kind::Repeatable, &stem[1..]),
        Some(c @ ('v' | 'u' | 'r')) => {
            return Err(format!(
                "the prefix must be an upper-case `{}` (Flyway ignores `{c}` files, so this one would never run); {example}",
                c.to_ascii_uppercase()
            ));
        }
        _ => return Err(format!("not a migration file name; {example}")),
    };
    // Flyway splits at the first `__`; `V1.sql` (no description) is a valid name.
    let (version, description) = match rest.split_once("__") {
        Some(parts) => parts,
        None if kind != Kind::Repeatable && Version::parse(rest).is_some() => (rest, ""),
        None => {
            return Err(format!("no `__` between the version and the description; {example}"));
        }
    };
    let description = description.replace('_', " ").trim().to_string();
    match kind {
        Kind::Repeatable if !version.is_empty() => Err(format!(
            "a repeatable migration has no version (`R__{}.sql`)",
            description.replace(' ', "_")
        )),
        Kind::Repeatable if description.is_empty() => Err(format!("no description after `__`; {example}")),
        Kind::Repeatable => Ok(Some((kind, None, description))),
        _ if version.is_empty() => Err(format!("no version before `__`; {example}")),
        _ => match Version::parse(version) {
            Some(v) => Ok(Some((kind, Some(v), description))),
            None => Err(format!(
                "version `{version}` is not numbers separated by `.` or `_`; {example}"
            )),
        },
    }
}

/// Lists the `.sql` files under `dir` (subdirectories too), relative paths sorted.
fn sql_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, Diagnostic> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("sql")) {
                let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
                out.push((rel, path));
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        return Err(
            Diagnostic::plain(format!("migrations directory `{}` does not exist", dir.display()))
                .with_hint("give it with `--dir DIR` or the inventory variable `migrate_dir`"),
        );
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out).map_err(|e| Diagnostic::plain(format!("cannot read `{}`: {e}", dir.display())))?;
    out.sort();
    Ok(out)
}

/// Reads and checks every migration in `dir`: names, duplicate versions, encoding, emptiness
/// and statement splitting. The first problem is the error.
pub fn load(dir: &Path) -> Result<Migrations, Diagnostic> {
    let mut all = Migrations::default();
    let mut seen: BTreeMap<(u8, String), String> = BTreeMap::new();
    for (script, path) in sql_files(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (kind, version, description) = match parse_name(name) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => continue,
            Err(why) => {
                return Err(Diagnostic::plain(format!(
                    "{}: bad migration file name: {why}",
                    path.display()
                )));
            }
        };
        let bytes =
            std::fs::read(&path).map_err(|e| Diagnostic::plain(format!("cannot read {}: {e}", path.display())))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            Diagnostic::plain(format!("{}:{line}: the file is not UTF-8 text", path.display()))
                .with_hint("save it as UTF-8; Flyway and tend read migrations as UTF-8")
        })?;
        let source = Source::new(&path, text.as_str());
        let statements = split::split(&text).map_err(|e| source.error(e.line() as u32, 0, e.to_string()))?;
        if statements.is_empty() {
            return Err(Diagnostic::plain(format!(
                "{}: the migration has no SQL statement",
                path.display()
            )));
        }
        let key_kind = match kind {
            Kind::Versioned => 0,
            Kind::Undo => 1,
            Kind::Repeatable => 2,
        };
        let key = version.as_ref().map_or(description.clone(), |v| v.parts.join("."));
        if let Some(first) = seen.insert((key_kind, key), script.clone()) {
            let what = match &version {
                Some(v) => format!("version {v}"),
                None => format!("description `{description}`"),
            };
            return Err(Diagnostic::plain(format!(
                "{}: two migrations with {what}: `{first}` and `{script}`",
                path.display()
            ))
            .with_hint(match kind {
                Kind::Versioned => "every versioned migration needs its own version; rename one of them",
                Kind::Undo => "every undo migration undoes one version; rename one of them",
                Kind::Repeatable => "every repeatable migration needs its own description; rename one of them",
            }));
        }
        let migration = Migration {
            kind,
            version,
            description,
            checksum: checksum(&text),
            script,
            path,
            statements,
        };
        match kind {
            Kind::Versioned => all.versioned.push(migration),
            Kind::Undo => all.undo.push(migration),
            Kind::Repeatable => all.repeatable.push(migration),
        }
    }
    all.versioned.sort_by(|a, b| a.version.cmp(&b.version));
    all.undo.sort_by(|a, b| a.version.cmp(&b.version));
    all.repeatable.sort_by(|a, b| a.description.cmp(&b.description));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(v("1.10") > v("1.9"));
        assert_eq!(v("1.0"), v("1"));
        assert_eq!(v("2_1"), v("2.1"));
        assert_eq!(v("2_1").as_str(), "2.1");
        assert_eq!(v("1.01"), v("1.1"));
        assert!(v("2.0.3") > v("2"));
        assert!(v("10") > v("9"));
        assert!(v("123456789012345678901234567890") > v("9"));
        for bad in ["", "1..2", "a", "1.x", ".1", "1."] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn names_follow_flyway() {
        let ok = parse_name("V1_1__Add_orders.sql").unwrap_or_default();
        let (kind, version, desc) = ok.unwrap_or((Kind::Undo, None, String::new()));
        assert_eq!(kind, Kind::Versioned);
        assert_eq!(version.map(|v| v.to_string()).as_deref(), Some("1.1"));
        assert_eq!(desc, "Add orders");
        assert!(matches!(
            parse_name("R__views.sql"),
            Ok(Some((Kind::Repeatable, None, _)))
        ));
        assert!(matches!(parse_name("notes.txt"), Ok(None)));
        assert!(matches!(parse_name("V1.sql"), Ok(Some((Kind::Versioned, Some(_), _)))));
        for bad in [
            "V1_desc.sql",
            "V__x.sql",
            "v1__x.sql",
            "R1__x.sql",
            "R__.sql",
            "Vx__y.sql",
            "init.sql",
        ] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksums_ignore_line_endings_and_the_bom() {
        let unix = checksum("CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);\n");
        assert_eq!(
            unix,
            checksum("\u{feff}CREATE TABLE t (id INT);\r\nINSERT INTO t VALUES (1);")
        );
        // Values computed by Flyway's ChecksumCalculator (Java) for the same texts.
        assert_eq!(checksum("SELECT 1;"), 78787420);
        assert_eq!(checksum("\u{feff}SELECT 1;\n"), 78787420);
        assert_eq!(checksum("CREATE TABLE t (id INT);\n"), 1556295178);
        assert_ne!(unix, checksum("CREATE TABLE t (id BIGINT);\n"));
    }
}
