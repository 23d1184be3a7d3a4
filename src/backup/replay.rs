//! Rolling a restored backup forward over shipped binlogs: what the binlogs hold (one scan of
//! `mariadb-binlog` output: each transaction's GTID, file, offset, time and statement text),
//! where to stop (a time, a GTID, just before a statement), and the replay itself: one
//! `mariadb-binlog` over every file into one client session (temporary tables live across
//! files), with a progress mark written inside each transaction so that an interrupted replay
//! resumes after the last transaction that committed.
//!
//! Stops are offsets found by the scan (`--stop-position` on the last file), never
//! `--stop-datetime`: the scan reads times in UTC and compares them with the server's own
//! reading of the requested time, so neither time zones nor the tool's rules about equal
//! times decide what is replayed.

use std::collections::BTreeMap;

/// One transaction of the binlogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// `domain-server-seq`.
    pub gtid: String,
    /// The binlog file.
    pub file: String,
    /// Offset of its GTID event (where a replay starts or stops).
    pub at: u64,
    /// When it was written (Unix seconds).
    pub time: i64,
    /// Its statements as logged (query text and annotated row statements), cut to 2000 bytes.
    pub text: String,
    /// The server thread that wrote it, when the binlog names one.
    pub thread: Option<u64>,
}

/// Reads the scan's output (`tend-file NAME` before each file's `mariadb-binlog
/// --base64-output=decode-rows` output, read with `TZ=UTC`), line by line.
#[derive(Debug, Default)]
pub struct Scanner {
    file: String,
    at: u64,
    /// Transactions in binlog order.
    pub txns: Vec<Txn>,
    in_query: bool,
}

const TEXT_LIMIT: usize = 2000;

impl Scanner {
    /// Takes one line.
    pub fn line(&mut self, line: &str) {
        if let Some(name) = line.strip_prefix("tend-file ") {
            self.file = name.trim().to_string();
            return;
        }
        if let Some(at) = line.strip_prefix("# at ") {
            self.at = at.trim().parse().unwrap_or(self.at);
            self.in_query = false;
            return;
        }
        if let Some(q) = line.strip_prefix("#Q> ") {
            self.push_text(q);
            return;
        }
        if line.starts_with('#') {
            if let Some((time, gtid)) = gtid_header(line) {
                self.txns.push(Txn {
                    gtid,
                    file: self.file.clone(),
                    at: self.at,
                    time,
                    text: String::new(),
                    thread: None,
                });
            } else if line.contains("\tQuery\t") {
                self.in_query = true;
                if let Some(t) = line
                    .split("thread_id=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                    && let Some(x) = self.txns.last_mut()
                {
                    x.thread = Some(t);
                }
            }
            return;
        }
        if !self.in_query {
            return;
        }
        let skip = [
            "SET ",
            "/*",
            "DELIMITER",
            "START TRANSACTION",
            "COMMIT",
            "ROLLBACK",
            "use `",
        ];
        if skip.iter().any(|p| line.starts_with(p)) {
            return;
        }
        self.push_text(line);
    }

    fn push_text(&mut self, text: &str) {
        let Some(x) = self.txns.last_mut() else { return };
        if x.text.len() >= TEXT_LIMIT {
            return;
        }
        if !x.text.is_empty() {
            x.text.push(' ');
        }
        x.text.push_str(text.trim());
        if x.text.len() > TEXT_LIMIT {
            let mut cut = TEXT_LIMIT;
            while !x.text.is_char_boundary(cut) {
                cut -= 1;
            }
            x.text.truncate(cut);
        }
    }
}

/// `#261201  5:08:51 server id 1  end_log_pos 1764 CRC32 0x3f0e9965 \tGTID 0-1-8 ddl`: the
/// time (read as UTC) and the GTID.
fn gtid_header(line: &str) -> Option<(i64, String)> {
    let (head, tail) = line.split_once("\tGTID ")?;
    let gtid = tail.split_whitespace().next()?.to_string();
    Gtid::parse(&gtid)?;
    let mut words = head.trim_start_matches('#').split_whitespace();
    let date = words.next()?;
    let time = words.next()?;
    if date.len() != 6 {
        return None;
    }
    let n = |s: &str| s.parse::<i16>().ok();
    let (y, m, d) = (n(date.get(0..2)?)?, n(date.get(2..4)?)?, n(date.get(4..6)?)?);
    let mut hms = time.split(':').map(n);
    let (hh, mm, ss) = (hms.next()??, hms.next()??, hms.next()??);
    let dt = jiff::civil::DateTime::new(2000 + y, m as i8, d as i8, hh as i8, mm as i8, ss as i8, 0).ok()?;
    let ts = jiff::tz::TimeZone::UTC.to_timestamp(dt).ok()?;
    Some((ts.as_second(), gtid))
}

/// One GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gtid {
    /// Replication domain.
    pub domain: u32,
    /// Server that wrote it.
    pub server: u32,
    /// Sequence number in its domain.
    pub seq: u64,
}

impl Gtid {
    /// `d-s-n`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut p = s.trim().split('-');
        let g = Self {
            domain: p.next()?.parse().ok()?,
            server: p.next()?.parse().ok()?,
            seq: p.next()?.parse().ok()?,
        };
        p.next().is_none().then_some(g)
    }
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// A GTID position: the last GTID of each domain (`0-1-42,1-2-7`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(pub BTreeMap<u32, Gtid>);

impl Position {
    /// Parses a position; `None` on a malformed one.
    pub fn parse(s: &str) -> Option<Self> {
        let mut map = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g = Gtid::parse(part)?;
            map.insert(g.domain, g);
        }
        Some(Self(map))
    }

    /// Moves the position past `g`.
    pub fn add(&mut self, g: Gtid) {
        self.0.insert(g.domain, g);
    }

    /// Whether `g` is at or before this position (applied).
    pub fn contains(&self, g: Gtid) -> bool {
        self.0.get(&g.domain).is_some_and(|p| p.seq >= g.seq)
    }

    /// Whether this position holds a transaction `other` does not.
    pub fn ahead_of(&self, other: &Self) -> Option<Gtid> {
        self.0.values().copied().find(|g| !other.contains(*g))
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.values().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// Where a restore ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// At the end of what is shipped.
    End,
    /// Before the first transaction written at or after this moment (Unix seconds).
    Time(i64),
    /// After this transaction.
    Gtid(Gtid),
    /// Just before this transaction (found by a pattern).
    Before(Gtid),
}

/// What a replay does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Transactions to apply, in order (indexes into the scan).
    pub apply: std::ops::Range<usize>,
    /// Where the replay stops: the file and offset of the first transaction not applied
    /// (`None`: the end of the last file).
    pub stop: Option<(String, u64)>,
    /// The GTID position after the replay.
    pub end: Position,
}

/// Why there is no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The stop lies before the backup's point.
    #[error("the stop point lies before the backup")]
    BeforeBackup,
    /// The time is past what is shipped.
    #[error("{0}")]
    Outside(String),
    /// The GTID is not in the shipped binlogs after the backup.
    #[error("{0}")]
    NotFound(String),
}

/// The backup a replay starts from: its binlog file and offset, its GTID position, and when it
/// started (Unix seconds; its point is later).
#[derive(Debug, Clone, Copy)]
pub struct From<'a> {
    /// Binlog file of its consistent point.
    pub file: &'a str,
    /// Offset in it.
    pub pos: u64,
    /// GTID position.
    pub gtid: &'a Position,
    /// Start time.
    pub started: i64,
}

/// Plans a replay of `txns` (the scan of the files from the backup's file on) from the backup
/// up to `stop`; `covered_until` is the moment up to which the binlogs are complete.
pub fn plan(txns: &[Txn], from: From<'_>, stop: &Stop, covered_until: i64) -> Result<Plan, PlanError> {
    let From {
        file,
        pos,
        gtid: from,
        started,
    } = from;
    // The first transaction after the backup's point: in its file at or after its position,
    // or in a later file (binlog names sort in the order they were written).
    let start = txns
        .iter()
        .position(|t| t.file.as_str() > file || (t.file == file && t.at >= pos))
        .unwrap_or(txns.len());
    let end_index = match stop {
        Stop::End => txns.len(),
        Stop::Time(t) => {
            if *t > covered_until {
                return Err(PlanError::Outside(format!(
                    "the shipped binlogs cover up to {}",
                    show_time(covered_until)
                )));
            }
            let i = txns.iter().position(|x| x.time >= *t).unwrap_or(txns.len());
            if i < start || *t < started {
                return Err(PlanError::BeforeBackup);
            }
            i
        }
        Stop::Gtid(g) | Stop::Before(g) => {
            let Some(i) = txns.iter().position(|x| Gtid::parse(&x.gtid) == Some(*g)) else {
                if from.contains(*g) {
                    return Err(PlanError::BeforeBackup);
                }
                return Err(PlanError::NotFound(format!(
                    "GTID {g} is not in the shipped binlogs after the backup ({})",
                    range(txns.get(start..).unwrap_or_default())
                )));
            };
            let i = if matches!(stop, Stop::Gtid(_)) { i + 1 } else { i };
            if i < start {
                return Err(PlanError::BeforeBackup);
            }
            i
        }
    };
    let mut end = from.clone();
    for t in txns.get(start..end_index).unwrap_or_default() {
        if let Some(g) = Gtid::parse(&t.gtid) {
            end.add(g);
        }
    }
    Ok(Plan {
        apply: start..end_index,
        stop: txns.get(end_index).map(|t| (t.file.clone(), t.at)),
        end,
    })
}

/// `0-1-5 … 0-1-90` or `no transactions`.
pub fn range(txns: &[Txn]) -> String {
    match (txns.first(), txns.last()) {
        (Some(a), Some(b)) => format!("{} … {}", a.gtid, b.gtid),
        _ => "no transactions".into(),
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn show_time(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// A statement's text as compared with a `--before` pattern: lowercase, without backticks,
/// schema qualifiers, comments and repeated spaces, so that `DROP TABLE orders` finds the
/// server's `DROP TABLE `shop`.`orders` /* generated by server */`.
pub fn normalize(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        s.push_str(&rest[..i]);
        s.push(' ');
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    s.push_str(rest);
    let s = s.replace('`', "").to_lowercase();
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        // `schema.table` → `table` (a number such as `1.5` is left alone).
        let w = match word.split_once('.') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !a.chars().all(|c| c.is_ascii_digit()) => b,
            _ => word,
        };
        out.push_str(w);
    }
    out
}

/// The transactions whose statements match `pattern` as whole words (`orders` does not find
/// `orders_old`).
pub fn matches<'a>(txns: &'a [Txn], pattern: &str) -> Vec<&'a Txn> {
    let p = normalize(pattern);
    txns.iter()
        .filter(|t| contains_words(&normalize(&t.text), &p))
        .collect()
}

/// Whether `hay` holds `needle` with no word character right before or after it.
fn contains_words(hay: &str, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        (!word(before) || !word(needle.chars().next())) && (!word(after) || !word(needle.chars().next_back()))
    })
}

/// The replay's filter (awk, on the target): before each transaction's `COMMIT` (and after a
/// DDL or non-transactional statement, which commits by itself) it writes the transaction's
/// GTID into `mysql.tend_restore`, in the same transaction where one exists. It drops the
/// `SET gtid_seq_no` lines: nothing is binlogged, and under `gtid_strict_mode` the server
/// refuses a sequence number below its own even then.
pub const MARKS: &str = r#"
function mark(g, end) { printf "UPDATE mysql.tend_restore SET gtid = '%s' WHERE id = 1%s\n", g, end }
/^#[0-9]+ +[0-9]+:[0-9]+:[0-9]+ server id .*GTID [0-9]+-[0-9]+-[0-9]+/ {
  if (pend != "") { mark(pend, "/*!*/;"); pend = "" }
  match($0, /GTID [0-9]+-[0-9]+-[0-9]+/)
  cur = substr($0, RSTART + 5, RLENGTH - 5)
  if ($0 !~ / trans/) pend = cur
}
/^COMMIT\/\*!\*\/;$/ { mark(cur, "/*!*/;"); pend = "" }
/^\/\*M!100001 SET @@session\.gtid_seq_no=[0-9]+\*\/\/\*!\*\/;$/ { next }
{ print }
END { if (pend != "") { print "DELIMITER ;"; mark(pend, ";") } }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const SCAN: &str = "tend-file mysql-bin.000002
# at 1722
#261201  5:08:51 server id 1  end_log_pos 1764 CRC32 0x3f0e9965 \tGTID 0-1-8 ddl
/*M!100001 SET @@session.gtid_seq_no=8*//*!*/;
# at 1764
#261201  5:08:51 server id 1  end_log_pos 1864 CRC32 0x97c930ae \tQuery\tthread_id=48\texec_time=0\terror_code=0\txid=0
SET TIMESTAMP=1796101731/*!*/;
create database if not exists t1
/*!*/;
# at 2018
#261201  5:08:52 server id 1  end_log_pos 2060 CRC32 0x3e2d9060 \tGTID 0-1-10 trans
/*M!100001 SET @@session.gtid_seq_no=10*//*!*/;
START TRANSACTION
/*!*/;
# at 2060
# at 2114
#261201  5:08:52 server id 1  end_log_pos 2114 CRC32 0xe3201af7 \tAnnotate_rows:
#Q> insert into t1.a values (1),(2)
# at 2199
#261201  5:08:52 server id 1  end_log_pos 2230 CRC32 0x3a5898f1 \tXid = 107
COMMIT/*!*/;
tend-file mysql-bin.000003
# at 385
#261201  5:09:10 server id 1  end_log_pos 427 CRC32 0xf436dc5d \tGTID 0-1-11 ddl
# at 427
#261201  5:09:10 server id 1  end_log_pos 547 CRC32 0x27eb6b9e \tQuery\tthread_id=49\texec_time=0\terror_code=0\txid=109
SET TIMESTAMP=1796101750/*!*/;
SET @@session.pseudo_thread_id=48/*!*/;
DROP TABLE `t1`.`a` /* generated by server */
/*!*/;
DELIMITER ;
# End of log file
";

    fn scan() -> Vec<Txn> {
        let mut s = Scanner::default();
        for l in SCAN.lines() {
            s.line(l);
        }
        s.txns
    }

    #[test]
    fn the_scan_finds_each_transaction_with_its_place_time_and_text() {
        let t = scan();
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].gtid.as_str(), t[0].file.as_str(), t[0].at),
            ("0-1-8", "mysql-bin.000002", 1722)
        );
        assert_eq!(t[0].text, "create database if not exists t1");
        assert_eq!(t[0].thread, Some(48));
        assert_eq!(t[1].text, "insert into t1.a values (1),(2)");
        assert_eq!(t[1].time, 1796101732);
        assert_eq!((t[2].file.as_str(), t[2].at), ("mysql-bin.000003", 385));
        assert_eq!(t[2].text, "DROP TABLE `t1`.`a` /* generated by server */");
    }

    #[test]
    fn stops_by_time_gtid_and_pattern() {
        let t = scan();
        let from = Position::parse("0-1-7").unwrap_or_default();
        let start = From {
            file: "mysql-bin.000002",
            pos: 1722,
            gtid: &from,
            started: 1796101000,
        };
        let p = plan(&t, start, &Stop::Time(1796101732), 1796101800).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.apply, 0..1);
        assert_eq!(p.stop, Some(("mysql-bin.000002".into(), 2018)));
        assert_eq!(p.end.to_string(), "0-1-8");
        let g = Gtid::parse("0-1-10").unwrap_or_else(|| panic!());
        let p = plan(&t, start, &Stop::Gtid(g), 1796101800).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.apply, p.stop), (0..2, Some(("mysql-bin.000003".into(), 385))));
        let m = matches(&t, "drop table A");
        assert_eq!(m.len(), 1);
        let g = Gtid::parse(&m[0].gtid).unwrap_or_else(|| panic!());
        let p = plan(&t, start, &Stop::Before(g), 1796101800).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.apply, p.end.to_string()), (0..2, "0-1-10".to_string()));
        let p = plan(&t, start, &Stop::End, 1796101800).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.apply, p.stop), (0..3, None));
        // From a later backup point, the same stop lies before it.
        let later = From {
            file: "mysql-bin.000003",
            pos: 385,
            ..start
        };
        assert_eq!(
            plan(&t, later, &Stop::Time(1796101732), 1796101800),
            Err(PlanError::BeforeBackup)
        );
        assert!(matches!(
            plan(&t, start, &Stop::Time(1796109999), 1796101800),
            Err(PlanError::Outside(_))
        ));
        let unknown = Gtid::parse("0-1-99").unwrap_or_else(|| panic!());
        assert!(matches!(
            plan(&t, start, &Stop::Gtid(unknown), 1796101800),
            Err(PlanError::NotFound(_))
        ));
    }

    #[test]
    fn positions_compare_per_domain() {
        let a = Position::parse("0-1-10,1-2-5").unwrap_or_default();
        let b = Position::parse("0-1-12").unwrap_or_default();
        assert_eq!(a.ahead_of(&b).map(|g| g.to_string()), Some("1-2-5".into()));
        assert_eq!(b.ahead_of(&a).map(|g| g.to_string()), Some("0-1-12".into()));
        assert!(Position::parse("0-1").is_none());
        assert_eq!(Position::parse("").map(|p| p.to_string()), Some(String::new()));
    }

    #[test]
    fn patterns_ignore_quoting_qualifiers_and_comments() {
        assert_eq!(
            normalize("DROP TABLE `shop`.`orders` /* generated by server */"),
            "drop table orders"
        );
        assert_eq!(normalize("UPDATE t SET x = 1.5"), "update t set x = 1.5");
        assert!(contains_words("drop table orders", "drop table orders"));
        assert!(!contains_words("drop table orders_old", "drop table orders"));
        assert!(contains_words("delete from orders where id = 1", "delete from orders"));
    }
}
