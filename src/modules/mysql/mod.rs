//! MariaDB/MySQL modules. They run the `mariadb` (or `mysql`) client on the host over the SSH
//! session: credentials travel on stdin into a private option file and SQL on stdin too, so
//! neither appears in a process list. Without `login_user`, root's unix-socket auth is used.

mod db;
mod info;
mod query;
mod replication;
mod user;
mod variables;

pub use db::MysqlDb;
pub use info::MysqlInfo;
pub use query::MysqlQuery;
pub use replication::MysqlReplication;
pub use user::MysqlUser;
pub use variables::MysqlVariables;

use super::{Args, Ctx, Kind, ModuleError, Param};
use base64::Engine as _;

/// Connection parameters every MySQL module takes (Ansible's names).
pub const LOGIN_PARAMS: [Param; 5] = [
    Param::new("login_user", Kind::Str),
    Param::new("login_password", Kind::Str).secret(),
    Param::new("login_host", Kind::Str),
    Param::new("login_port", Kind::Int),
    Param::new("login_unix_socket", Kind::Str),
];

/// Finds the client and writes the option file from line 1 of stdin (base64) to `$cnf`; every
/// script that runs the client starts with it (see [`Login::stdin_line`]).
pub const PREAMBLE: &str = r#"
client=$(command -v mariadb || command -v mysql) || { echo "no mariadb or mysql client on the host" >&2; exit 127; }
cnf=$(mktemp) || exit 1
trap 'rm -f "$cnf"' EXIT
chmod 600 "$cnf"
IFS= read -r line || exit 1
printf '%s' "$line" | base64 -d > "$cnf"
"#;

/// One SQL batch per further stdin line (base64), a marker before each batch's output; stops at
/// the first failing batch.
const BATCHES: &str = r#"
n=0
while IFS= read -r batch; do
  n=$((n+1))
  echo "__tend_batch__ $n"
  printf '%s' "$batch" | base64 -d | "$client" --defaults-extra-file="$cnf" --batch --default-character-set=utf8mb4 || exit $?
done
"#;

/// One result set: column names and rows (`None` for NULL).
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// The value of `column` in the first row.
    pub fn first(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c.eq_ignore_ascii_case(column))?;
        self.rows.first()?.get(i)?.as_deref()
    }
}

/// A string literal for SQL (quotes and backslashes escaped).
pub fn literal(s: &str) -> String {
    format!(
        "'{}'",
        s.replace('\\', "\\\\").replace('\'', "\\'").replace('\0', "\\0")
    )
}

/// An identifier for SQL, in backticks.
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn option_value(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn unescape(field: &str) -> Option<String> {
    if field == "NULL" {
        return None;
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    Some(out)
}

/// Parses the client's `--batch` output of one batch (possibly several result sets; a header
/// line starts each, which is how they are told apart only when callers use one statement
/// per result they read).
pub fn parse_batch(text: &str) -> Vec<ResultSet> {
    let mut sets = Vec::new();
    let mut lines = text.lines();
    if let Some(header) = lines.next() {
        let mut set = ResultSet {
            columns: header.split('\t').map(str::to_string).collect(),
            rows: Vec::new(),
        };
        for line in lines {
            set.rows.push(line.split('\t').map(unescape).collect());
        }
        sets.push(set);
    }
    sets
}

/// How the client logs in to the server. Empty: root's unix-socket auth as the command's user.
/// Travels as the first line of stdin (an option file), never on a command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    /// `user`.
    pub user: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `host` (TCP instead of the socket).
    pub host: Option<String>,
    /// `port`.
    pub port: Option<i64>,
    /// `socket`.
    pub socket: Option<String>,
}

impl Login {
    /// The `login_*` parameters of a module.
    pub fn from_args(args: &Args) -> Self {
        Self {
            user: args.str("login_user").map(str::to_string),
            password: args.str("login_password").map(str::to_string),
            host: args.str("login_host").map(str::to_string),
            port: args.int("login_port"),
            socket: args.str("login_unix_socket").map(str::to_string),
        }
    }

    /// The first line of a [`PREAMBLE`] script's stdin: the option file, base64, newline.
    pub fn stdin_line(&self) -> String {
        let mut cnf = String::from("[client]\n");
        for (key, value) in [
            ("user", &self.user),
            ("password", &self.password),
            ("host", &self.host),
            ("socket", &self.socket),
        ] {
            if let Some(v) = value {
                cnf.push_str(&format!("{key}={}\n", option_value(v)));
            }
        }
        if let Some(port) = self.port {
            cnf.push_str(&format!("port={port}\n"));
        }
        b64(&cnf) + "\n"
    }
}

/// Runs `body` after [`PREAMBLE`] (so it can use `$client` and `$cnf`), with `more_stdin` after the
/// option file line.
pub async fn run_with_login(
    ctx: &Ctx<'_>,
    args: &Args,
    body: &str,
    more_stdin: &str,
) -> Result<crate::transport::Output, ModuleError> {
    let mut stdin = Login::from_args(args).stdin_line();
    stdin.push_str(more_stdin);
    ctx.run(&format!("{PREAMBLE}{body}"), Some(stdin.into_bytes())).await
}

/// Base64 of a text: how SQL and option files travel on stdin, one line each.
pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// Runs SQL batches on the host; returns each batch's first result set (empty when none).
pub async fn run_sql(ctx: &Ctx<'_>, args: &Args, batches: &[String]) -> Result<Vec<ResultSet>, ModuleError> {
    let stdin: String = batches.iter().map(|b| b64(b) + "\n").collect();
    let out = run_with_login(ctx, args, BATCHES, &stdin).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.success() {
        let failed = text.lines().filter(|l| l.starts_with("__tend_batch__")).count();
        let sql = batches
            .get(failed.saturating_sub(1))
            .map(|s| first_line(s))
            .unwrap_or_default();
        let msg = crate::modules::last_error_line(&out, "the SQL client failed");
        return Err(ModuleError::remote(msg, format!("mariadb: {sql}"), &out));
    }
    let mut sets = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("__tend_batch__ ") {
            if let Some(body) = current.take() {
                sets.push(parse_batch(&body).into_iter().next().unwrap_or_default());
            }
            current = Some(String::new());
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some(body) = current {
        sets.push(parse_batch(&body).into_iter().next().unwrap_or_default());
    }
    while sets.len() < batches.len() {
        sets.push(ResultSet::default());
    }
    Ok(sets)
}

fn first_line(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    // Never show a password in a failure report.
    if line.to_ascii_uppercase().contains("IDENTIFIED") || line.to_ascii_uppercase().contains("PASSWORD") {
        return line.split_whitespace().take(3).collect::<Vec<_>>().join(" ") + " ...";
    }
    line.chars().take(200).collect()
}

/// Parameters of a module plus the login ones.
pub const fn with_login<const N: usize, const M: usize>(own: [Param; N]) -> [Param; M] {
    let mut out = [Param::new("", Kind::Any); M];
    let mut i = 0;
    while i < N {
        out[i] = own[i];
        i += 1;
    }
    let mut j = 0;
    while j < LOGIN_PARAMS.len() {
        out[N + j] = LOGIN_PARAMS[j];
        j += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(literal("it's a \\ test"), r"'it\'s a \\ test'");
        assert_eq!(ident("we`ird"), "`we``ird`");
        assert_eq!(option_value(r#"p"w\d"#), r#""p\"w\\d""#);
    }

    #[test]
    fn parses_batch_output() {
        let sets = parse_batch("a\tb\n1\tNULL\nx\\ty\tz\n");
        assert_eq!(sets[0].columns, ["a", "b"]);
        assert_eq!(sets[0].rows[0], [Some("1".into()), None]);
        assert_eq!(sets[0].rows[1], [Some("x\ty".into()), Some("z".into())]);
        assert_eq!(sets[0].first("B"), None);
        assert_eq!(sets[0].first("a"), Some("1"));
    }
}
