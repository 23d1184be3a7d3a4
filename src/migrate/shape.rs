//! What a statement does to which tables, read from its first words: enough to know what a
//! safety snapshot must hold, which statements `plan` asks the server about, and which are
//! destructive by their very kind. A statement this cannot read (a `CALL`, a multi-table
//! `UPDATE`) makes the snapshot take the whole schema: when unsure, keep more.

/// The kind of a statement, as far as migrations care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `ALTER TABLE`.
    AlterTable,
    /// `CREATE INDEX`.
    CreateIndex,
    /// `DROP INDEX`.
    DropIndex,
    /// `CREATE TABLE`.
    CreateTable,
    /// `DROP TABLE`.
    DropTable,
    /// `TRUNCATE`.
    Truncate,
    /// `RENAME TABLE`.
    RenameTable,
    /// `INSERT`, `REPLACE`, `UPDATE`, `DELETE` on one table.
    Write,
    /// Views, procedures, functions, triggers.
    Routine,
    /// `SET`, `SELECT`, `DO`: touches no table.
    Session,
    /// Anything else.
    Unknown,
}

/// What a statement touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Its kind.
    pub action: Action,
    /// Tables of the migrated schema it changes (as named, without the schema).
    pub tables: Vec<String>,
    /// The table name as written after `ALTER TABLE` / `ON` (for rewriting in `plan`), with
    /// its byte range in the statement.
    pub target: Option<(String, std::ops::Range<usize>)>,
    /// Its kind loses data (`DROP TABLE`, `TRUNCATE`, `DROP PARTITION`).
    pub destructive: bool,
    /// `DROP TRIGGER`: the trigger's name (its table is found on the server).
    pub trigger: Option<String>,
    /// It names a table with its schema somewhere besides its target (`RENAME TO shop.x`,
    /// `EXCHANGE PARTITION ... WITH TABLE shop.y`): `plan` must not run it anywhere.
    pub qualified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Ident(String),
    Punct(char),
    Other,
}

/// Tokens with their byte ranges; strings and numbers are `Other`, comments skipped,
/// executable comments read as code.
fn tokens(sql: &str) -> Vec<(Tok, std::ops::Range<usize>)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            if b.get(i + 2) == Some(&b'!') || (b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!')) {
                // `/*!50100 code */`: the code counts; the markers do not.
                i += if b[i + 2] == b'M' { 4 } else { 3 };
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                let end = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                i = end;
            }
        } else if c == b'*' && b.get(i + 1) == Some(&b'/') {
            i += 2;
        } else if c == b'#' || (c == b'-' && b.get(i + 1) == Some(&b'-')) {
            i = sql[i..].find('\n').map_or(b.len(), |p| i + p + 1);
        } else if c == b'`' {
            let start = i;
            let mut name = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == b'`' {
                    if b.get(i + 1) == Some(&b'`') {
                        name.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                let ch = sql[i..].chars().next().unwrap_or('\0');
                name.push(ch);
                i += ch.len_utf8();
            }
            out.push((Tok::Ident(name), start..i));
        } else if c == b'\'' || c == b'"' {
            let start = i;
            i += 1;
            while i < b.len() {
                if b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push((Tok::Other, start..i.min(b.len())));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
                i += 1;
            }
            out.push((Tok::Word(sql[start..i].to_string()), start..i));
        } else {
            out.push((Tok::Punct(c as char), i..i + 1));
            i += 1;
        }
    }
    out
}

struct Reader<'a> {
    toks: &'a [(Tok, std::ops::Range<usize>)],
    at: usize,
}

impl Reader<'_> {
    fn word(&self) -> Option<String> {
        match self.toks.get(self.at) {
            Some((Tok::Word(w), _)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn is(&self, w: &str) -> bool {
        self.word().as_deref() == Some(w)
    }

    /// Skips a word if it is one of `words`; true when it did.
    fn skip(&mut self, words: &[&str]) -> bool {
        if self.word().is_some_and(|w| words.contains(&w.as_str())) {
            self.at += 1;
            return true;
        }
        false
    }

    /// Skips every word of `words` in any order, and `DEFINER = x@y` clauses.
    fn skip_all(&mut self, words: &[&str]) {
        loop {
            if self.is("DEFINER") {
                // DEFINER = user@host | CURRENT_USER[()]
                self.at += 1;
                while let Some((t, _)) = self.toks.get(self.at) {
                    if matches!(t, Tok::Word(w) if ["PROCEDURE","FUNCTION","TRIGGER","VIEW","EVENT","SQL","ALGORITHM","AGGREGATE"].contains(&w.to_ascii_uppercase().as_str()))
                    {
                        break;
                    }
                    self.at += 1;
                }
                continue;
            }
            if self.is("ALGORITHM") || self.is("SECURITY") {
                // ALGORITHM = x, SQL SECURITY x
                self.at += if self.is("ALGORITHM") { 3 } else { 2 };
                continue;
            }
            if !self.skip(words) {
                return;
            }
        }
    }

    /// A table name: `t`, `` `t` ``, `s.t`; returns (schema, table, byte range).
    fn name(&mut self) -> Option<(Option<String>, String, std::ops::Range<usize>)> {
        let first = match self.toks.get(self.at) {
            Some((Tok::Word(w), r)) | Some((Tok::Ident(w), r)) => (w.clone(), r.clone()),
            _ => return None,
        };
        self.at += 1;
        if let (Some((Tok::Punct('.'), _)), Some((Tok::Word(t) | Tok::Ident(t), r))) =
            (self.toks.get(self.at), self.toks.get(self.at + 1))
        {
            self.at += 2;
            return Some((Some(first.0), t.clone(), first.1.start..r.end));
        }
        Some((None, first.0, first.1))
    }
}

/// Reads what `sql` (one statement) does to the schema `database`.
pub fn shape(sql: &str, database: &str) -> Shape {
    let toks = tokens(sql);
    let mut r = Reader { toks: &toks, at: 0 };
    // `a.b` outside the target's own name (numbers like `1.5` aside).
    let qualified_at: Vec<usize> = toks
        .windows(3)
        .filter_map(|w| match w {
            [
                (Tok::Word(a) | Tok::Ident(a), r),
                (Tok::Punct('.'), _),
                (Tok::Word(_) | Tok::Ident(_), _),
            ] if !a.starts_with(|c: char| c.is_ascii_digit()) || matches!(w[0].0, Tok::Ident(_)) => Some(r.start),
            _ => None,
        })
        .collect();
    let unknown = Shape {
        action: Action::Unknown,
        tables: Vec::new(),
        target: None,
        destructive: false,
        trigger: None,
        qualified: !qualified_at.is_empty(),
    };
    let out = |action: Action, names: Vec<(Option<String>, String, std::ops::Range<usize>)>, target: bool| {
        let mut tables = Vec::new();
        for (schema, t, _) in &names {
            match schema {
                Some(s) if s != database => return unknown.clone(),
                _ => tables.push(t.clone()),
            }
        }
        let target = if target {
            names.first().map(|(_, t, range)| (t.clone(), range.clone()))
        } else {
            None
        };
        let qualified = qualified_at
            .iter()
            .any(|at| target.as_ref().is_none_or(|(_, r)| *at != r.start));
        Shape {
            action,
            target,
            tables,
            destructive: matches!(action, Action::DropTable | Action::Truncate),
            trigger: None,
            qualified,
        }
    };
    let Some(first) = r.word() else {
        return unknown.clone();
    };
    r.at += 1;
    match first.as_str() {
        "ALTER" => {
            r.skip_all(&["ONLINE", "OFFLINE", "IGNORE"]);
            if !r.skip(&["TABLE"]) {
                return unknown.clone();
            }
            if r.is("IF") {
                r.at += 2;
            }
            let Some(name) = r.name() else { return unknown.clone() };
            let mut s = out(Action::AlterTable, vec![name], true);
            let words: Vec<String> = toks[r.at..]
                .iter()
                .filter_map(|(t, _)| match t {
                    Tok::Word(w) => Some(w.to_ascii_uppercase()),
                    _ => None,
                })
                .collect();
            if words
                .windows(2)
                .any(|w| (w[0] == "DROP" || w[0] == "TRUNCATE") && w[1] == "PARTITION")
            {
                s.destructive = true;
            }
            s
        }
        "CREATE" | "DROP" => {
            let create = first == "CREATE";
            r.skip_all(&[
                "OR",
                "REPLACE",
                "TEMPORARY",
                "ONLINE",
                "OFFLINE",
                "UNIQUE",
                "FULLTEXT",
                "SPATIAL",
                "AGGREGATE",
                "SQL",
            ]);
            let Some(what) = r.word() else { return unknown.clone() };
            r.at += 1;
            if r.is("IF") {
                // IF [NOT] EXISTS
                r.at += if create { 3 } else { 2 };
            }
            match what.as_str() {
                "TABLE" if create => match r.name() {
                    Some(n) => out(Action::CreateTable, vec![n], true),
                    None => unknown.clone(),
                },
                "TABLE" => {
                    let mut names = Vec::new();
                    while let Some(n) = r.name() {
                        names.push(n);
                        if !matches!(toks.get(r.at), Some((Tok::Punct(','), _))) {
                            break;
                        }
                        r.at += 1;
                    }
                    out(Action::DropTable, names, false)
                }
                "INDEX" | "KEY" => {
                    // index name, optional USING, then ON table
                    while r.at < toks.len() && !r.is("ON") {
                        r.at += 1;
                    }
                    if !r.skip(&["ON"]) {
                        return unknown.clone();
                    }
                    match r.name() {
                        Some(n) => out(
                            if create { Action::CreateIndex } else { Action::DropIndex },
                            vec![n],
                            true,
                        ),
                        None => unknown.clone(),
                    }
                }
                "TRIGGER" if create => {
                    // A trigger belongs to its table: the table's snapshot holds it.
                    while r.at < toks.len() && !r.is("ON") {
                        r.at += 1;
                    }
                    r.at += 1;
                    match r.name() {
                        Some(n) => out(Action::Routine, vec![n], false),
                        None => unknown.clone(),
                    }
                }
                "TRIGGER" => match r.name() {
                    Some((Some(schema), _, _)) if schema != database => unknown.clone(),
                    Some((_, name, _)) => Shape {
                        trigger: Some(name),
                        ..out(Action::Routine, Vec::new(), false)
                    },
                    None => unknown.clone(),
                },
                "VIEW" => {
                    // Views are dumped with the tables: the snapshot holds the old definition.
                    let mut names = Vec::new();
                    while let Some(n) = r.name() {
                        names.push(n);
                        if create || !matches!(toks.get(r.at), Some((Tok::Punct(','), _))) {
                            break;
                        }
                        r.at += 1;
                    }
                    out(Action::Routine, names, false)
                }
                "PROCEDURE" | "FUNCTION" => out(Action::Routine, Vec::new(), false),
                "DATABASE" | "SCHEMA" | "USER" | "ROLE" | "SERVER" => unknown.clone(),
                _ => unknown.clone(),
            }
        }
        "TRUNCATE" => {
            r.skip(&["TABLE"]);
            match r.name() {
                Some(n) => out(Action::Truncate, vec![n], false),
                None => unknown.clone(),
            }
        }
        "RENAME" => {
            if !r.skip(&["TABLE", "TABLES"]) {
                return unknown.clone();
            }
            let mut names = Vec::new();
            while let Some(a) = r.name() {
                names.push(a);
                if !r.skip(&["TO"]) {
                    break;
                }
                let Some(b) = r.name() else { break };
                names.push(b);
                if !matches!(toks.get(r.at), Some((Tok::Punct(','), _))) {
                    break;
                }
                r.at += 1;
            }
            out(Action::RenameTable, names, false)
        }
        "INSERT" | "REPLACE" => {
            r.skip_all(&["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO"]);
            match r.name() {
                Some(n) => out(Action::Write, vec![n], false),
                None => unknown.clone(),
            }
        }
        "UPDATE" => {
            r.skip_all(&["LOW_PRIORITY", "IGNORE"]);
            match r.name() {
                Some(n) if r.is("SET") => out(Action::Write, vec![n], false),
                _ => unknown.clone(),
            }
        }
        "DELETE" => {
            r.skip_all(&["LOW_PRIORITY", "QUICK", "IGNORE"]);
            if !r.skip(&["FROM"]) {
                return unknown.clone();
            }
            match r.name() {
                Some(n) if r.at == toks.len() || r.is("WHERE") || r.is("ORDER") || r.is("LIMIT") => {
                    out(Action::Write, vec![n], false)
                }
                _ => unknown.clone(),
            }
        }
        "SET" | "SELECT" | "DO" | "USE" => {
            if first == "USE" {
                return unknown.clone();
            }
            out(Action::Session, Vec::new(), false)
        }
        _ => unknown.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sql: &str) -> (Action, Vec<String>, bool) {
        let s = shape(sql, "shop");
        (s.action, s.tables, s.destructive)
    }

    #[test]
    fn reads_the_tables_a_statement_changes() {
        assert_eq!(
            t("ALTER TABLE `orders` ADD COLUMN x INT"),
            (Action::AlterTable, vec!["orders".into()], false)
        );
        assert!(t("alter online ignore table shop.orders drop partition p1").2);
        assert_eq!(t("CREATE TABLE IF NOT EXISTS t (id INT)").1, ["t"]);
        assert_eq!(
            t("CREATE UNIQUE INDEX i ON products (sku)"),
            (Action::CreateIndex, vec!["products".into()], false)
        );
        assert_eq!(t("DROP INDEX i ON products").0, Action::DropIndex);
        assert_eq!(
            t("DROP TABLE IF EXISTS a, `b`"),
            (Action::DropTable, vec!["a".into(), "b".into()], true)
        );
        assert_eq!(t("TRUNCATE TABLE a"), (Action::Truncate, vec!["a".into()], true));
        assert_eq!(t("RENAME TABLE a TO b, c TO d").1, ["a", "b", "c", "d"]);
        assert_eq!(t("INSERT IGNORE INTO t (a) VALUES ('x;y')").1, ["t"]);
        assert_eq!(t("UPDATE t SET a = 1").1, ["t"]);
        assert_eq!(t("UPDATE t JOIN u ON t.id = u.id SET a = 1").0, Action::Unknown);
        assert_eq!(t("DELETE FROM t WHERE id = 1").1, ["t"]);
        assert_eq!(
            t("CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN END").0,
            Action::Routine
        );
        assert_eq!(
            t("CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.x = 1").1,
            ["orders"]
        );
        assert_eq!(
            shape("DROP TRIGGER IF EXISTS tr", "shop").trigger.as_deref(),
            Some("tr")
        );
        assert_eq!(
            t("CREATE OR REPLACE ALGORITHM=MERGE VIEW v AS SELECT 1"),
            (Action::Routine, vec!["v".into()], false)
        );
        assert_eq!(t("DROP VIEW IF EXISTS v, w").1, ["v", "w"]);
        assert_eq!(t("CALL p()").0, Action::Unknown);
        assert_eq!(t("ALTER TABLE other.t ADD x INT").0, Action::Unknown);
        assert_eq!(t("/*!40101 SET NAMES utf8mb4 */").0, Action::Session);
    }

    #[test]
    fn names_qualified_beside_the_target_are_seen() {
        assert!(!shape("ALTER TABLE shop.t ADD x DECIMAL(4,1) DEFAULT 1.5", "shop").qualified);
        assert!(shape("ALTER TABLE t RENAME TO shop.t_old", "shop").qualified);
        assert!(shape("ALTER TABLE t EXCHANGE PARTITION p WITH TABLE `shop`.`archive`", "shop").qualified);
    }

    #[test]
    fn the_target_range_covers_the_name_as_written() {
        let sql = "ALTER TABLE shop.`orders` ADD x INT";
        let s = shape(sql, "shop");
        let (name, range) = s.target.unwrap_or_default();
        assert_eq!(name, "orders");
        assert_eq!(&sql[range], "shop.`orders`");
    }
}
