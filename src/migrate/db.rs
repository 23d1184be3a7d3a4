//! A client session with the migrated server: SQL written into one script, run by the host's
//! `mariadb` client in one SSH channel, with marks between the parts whose results are read
//! back, so that a migration of any number of statements costs one round trip.

use crate::modules::mysql::{self, Login, ResultSet};
use crate::transport::{Failure, Host, Input, RemoteCommand, Sink, StepError};
use std::time::Duration;

/// The column name and value prefix of a mark in the client's output.
const MARK: &str = "__tend_mark__";

/// Where the migrated schema lives.
#[derive(Debug, Clone)]
pub struct Db {
    /// The server's host.
    pub host: Host,
    /// How the client logs in.
    pub login: Login,
    /// The schema migrated; the history table lives in it.
    pub database: String,
}

/// SQL for one client session.
#[derive(Debug, Default, Clone)]
pub struct Script {
    text: String,
    marks: usize,
}

impl Script {
    /// An empty session (no schema selected).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends SQL of our own, ended with `;` (no `;` inside routines bodies of ours).
    pub fn sql(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql.trim_end().trim_end_matches(';'));
        self.text.push_str(";\n");
        self
    }

    /// Appends a statement of a migration file as written: the client applies its own rules
    /// to it (comments, quotes), as it would reading the file, under a delimiter the statement
    /// does not contain.
    pub fn statement(&mut self, raw: &str) -> &mut Self {
        let mut delimiter = String::from("$$tend$$");
        while raw.contains(&delimiter) {
            delimiter.push('$');
        }
        self.text
            .push_str(&format!("DELIMITER {delimiter}\n{raw}\n{delimiter}\nDELIMITER ;\n"));
        self
    }

    /// Appends a mark; results after it until the next one are the mark's. Returns its number.
    pub fn mark(&mut self) -> usize {
        self.marks += 1;
        self.text
            .push_str(&format!("SELECT '{MARK} {}' AS {MARK};\n", self.marks));
        self.marks
    }

    /// The SQL text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// What a session printed, split at its marks.
#[derive(Debug, Default)]
pub struct Reply {
    /// The highest mark reached (0: none).
    pub reached: usize,
    /// Result sets after each mark: `sets[n]` follows mark `n` (`sets[0]` precedes the first).
    pub sets: Vec<Vec<ResultSet>>,
}

impl Reply {
    /// The first result set after mark `n` (empty when there is none).
    pub fn set(&self, n: usize) -> ResultSet {
        self.sets.get(n).and_then(|s| s.first()).cloned().unwrap_or_default()
    }
}

/// A session that stopped on an error: the marks it reached and the server's message.
#[derive(Debug)]
pub struct SessionError {
    /// What came back before the error.
    pub reply: Reply,
    /// The failure (host, command, exit code, stderr).
    pub error: StepError,
}

impl Db {
    /// The script's shell command: the client reading the session's SQL from stdin.
    fn command(timeout: Option<Duration>) -> RemoteCommand {
        let body = r#"
"$client" --defaults-extra-file="$cnf" --batch --unbuffered --default-character-set=utf8mb4
"#;
        RemoteCommand::new(format!("{}{body}", mysql::PREAMBLE)).timeout(timeout)
    }

    /// Runs a session in one SSH channel; its output is read as it comes, so the marks
    /// reached are known even when the session fails or the connection drops.
    pub async fn session(
        &self,
        step: &str,
        script: &Script,
        timeout: Option<Duration>,
    ) -> Result<Reply, Box<SessionError>> {
        let mut stdin = self.login.stdin_line();
        stdin.push_str(script.text());
        let mut reply = Reply {
            reached: 0,
            sets: vec![Vec::new()],
        };
        let mut block = String::new();
        let mut after_header = false;
        let mut lines = |line: &[u8]| {
            let line = String::from_utf8_lossy(line);
            if line == MARK {
                after_header = true;
                return;
            }
            if after_header {
                after_header = false;
                if let Some(n) = line.strip_prefix(MARK).and_then(|n| n.trim().parse::<usize>().ok()) {
                    flush(&mut block, &mut reply);
                    reply.reached = n;
                    while reply.sets.len() <= n {
                        reply.sets.push(Vec::new());
                    }
                    return;
                }
                block.push_str(MARK);
                block.push('\n');
            }
            if line.is_empty() && block.is_empty() {
                return;
            }
            block.push_str(&line);
            block.push('\n');
        };
        let command = Self::command(timeout);
        let out = self
            .host
            .stream(&command, Input::Bytes(stdin.as_bytes()), Sink::Lines(&mut lines))
            .await;
        flush(&mut block, &mut reply);
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                return Err(Box::new(SessionError {
                    reply,
                    error: StepError::transport(self.host.name(), step, e),
                }));
            }
        };
        if out.success() {
            return Ok(reply);
        }
        let message = crate::transport::last_error_line(&out, "the SQL client failed");
        Err(Box::new(SessionError {
            reply,
            error: StepError::remote(
                self.host.name(),
                step,
                Failure::from_output(message, format!("mariadb {}", self.database), &out),
            ),
        }))
    }

    /// Runs a session and only wants its results.
    pub async fn query(&self, step: &str, script: &Script) -> Result<Reply, StepError> {
        self.session(step, script, Some(Duration::from_secs(300)))
            .await
            .map_err(|e| e.error)
    }

    /// Runs one statement and returns its result set (a session of its own).
    pub async fn one(&self, step: &str, sql: &str) -> Result<crate::modules::mysql::ResultSet, StepError> {
        let mut s = Script::new();
        let m = s.mark();
        s.sql(sql);
        s.mark();
        Ok(self.query(step, &s).await?.set(m))
    }

    /// The schema name as an SQL identifier.
    pub fn schema(&self) -> String {
        mysql::ident(&self.database)
    }

    /// The schema name as an SQL string.
    pub fn schema_literal(&self) -> String {
        text(&self.database)
    }

    /// Runs a shell script after the client preamble (`$client`, `$cnf` set) with `input`
    /// after the login line on its stdin; for dumps and loads.
    pub fn shell(&self, body: &str, timeout: Option<Duration>) -> (RemoteCommand, String) {
        (
            RemoteCommand::new(format!("{}{body}", mysql::PREAMBLE)).timeout(timeout),
            self.login.stdin_line(),
        )
    }
}

/// A string for tend's own SQL, whatever the server's `sql_mode` (`NO_BACKSLASH_ESCAPES`,
/// `ANSI_QUOTES`): hexadecimal bytes with the utf8mb4 introducer, so that no file name,
/// description or statement text can end the string.
pub fn text(s: &str) -> String {
    format!("_utf8mb4 X'{}'", hex::encode(s.as_bytes()))
}

/// A block of output lines between marks: one or more result sets, each a header and rows.
fn flush(block: &mut String, reply: &mut Reply) {
    if block.trim().is_empty() {
        block.clear();
        return;
    }
    let sets = mysql::parse_batch(block);
    if let Some(last) = reply.sets.last_mut() {
        last.extend(sets);
    }
    block.clear();
}

impl Db {
    /// tend's own administrative session on a server (backups, restores, failovers): the
    /// `mysql` schema, with the operation's login.
    pub fn admin(host: &Host, login: &Login) -> Self {
        Self {
            host: host.clone(),
            login: login.clone(),
            database: "mysql".into(),
        }
    }
}

/// A client session kept open on a host until released (see [`Host::hold`]).
pub use crate::transport::Held;

/// Why a server lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another session holds it: who (`user@host`, connection id).
    Held(String),
    /// The session failed.
    Step(StepError),
}

impl Db {
    /// Opens a session that runs `sql` (one statement answering one row) and stays open;
    /// returns it and the row's fields. `after` (shell, `$client` and `$cnf` set) runs when the
    /// session ends.
    pub async fn hold(
        &self,
        step: &str,
        sql: &str,
        after: &str,
        wait: Duration,
    ) -> Result<(Held, Vec<String>), StepError> {
        let command = RemoteCommand::new(format!(
            "{}\ntrap '' HUP PIPE\n\"$client\" --defaults-extra-file=\"$cnf\" --batch --unbuffered --default-character-set=utf8mb4\nrc=$?\n{after}\nexit $rc\n",
            mysql::PREAMBLE
        ));
        let input = format!("{}{};\n", self.login.stdin_line(), sql.trim_end().trim_end_matches(';'));
        let (held, lines) = self
            .host
            .hold(&format!("mariadb: {step}"), command, input.as_bytes(), 2, wait)
            .await?;
        let row = lines
            .get(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .unwrap_or_default();
        Ok((held, row))
    }

    /// Takes `GET_LOCK(name, wait_s)` in a session of its own and keeps that session open.
    pub async fn hold_lock(&self, name: &str, wait_s: u64) -> Result<Held, LockError> {
        let name = text(name);
        let sql = format!(
            "SELECT GET_LOCK({name}, {wait_s}) AS l, (SELECT CONCAT(USER, '@', HOST, ' connection ', ID) FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK({name})) AS holder"
        );
        let (held, row) = self
            .hold("server lock", &sql, "", Duration::from_secs(wait_s))
            .await
            .map_err(LockError::Step)?;
        if row.first().map(String::as_str) == Some("1") {
            return Ok(held);
        }
        let _ = held.release().await;
        Err(LockError::Held(
            row.get(1).cloned().unwrap_or_else(|| "unknown session".into()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_get_a_delimiter_they_do_not_contain() {
        let mut s = Script::new();
        s.statement("SELECT '$$tend$$'");
        assert!(
            s.text()
                .starts_with("DELIMITER $$tend$$$\nSELECT '$$tend$$'\n$$tend$$$\nDELIMITER ;\n")
        );
        assert_eq!(s.mark(), 1);
        assert!(s.text().ends_with("SELECT '__tend_mark__ 1' AS __tend_mark__;\n"));
    }
}

#[cfg(test)]
mod text_tests {
    use super::text;

    #[test]
    fn strings_are_hex_whatever_they_hold() {
        assert_eq!(text("a'b\\"), "_utf8mb4 X'6127625c'");
        assert_eq!(text(""), "_utf8mb4 X''");
    }
}
