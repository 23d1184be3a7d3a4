//! Splits a `.sql` migration file into statements exactly as the `mariadb` command-line client
//! splits its input when run as `mariadb < file` (client/mysql.cc of MariaDB 10.11:
//! `read_and_execute`, `add_line`, `find_command`, `get_arg`, `com_delimiter`, `com_go`), so that
//! tend sends the server what the client would have sent, and refuses before running anything
//! the files the client would have mangled.
//!
//! What the client does, and so what this does (each point checked against MariaDB 10.11.14's
//! client run with `--batch --default-character-set=utf8mb4`):
//!
//! - Input is read line by line; a line ends at `\n`, and one `\r` right before that `\n` is
//!   dropped, inside strings too (a lone `\r`, or one before the end of the file, stays). A
//!   UTF-8 byte order mark is skipped at the start of the file only. A NUL byte stops the
//!   client: an error here.
//! - Quotes `'`, `"` and `` ` `` are tracked; a backslash escapes the next character inside
//!   `'` and `"` but not inside backticks; a doubled quote simply closes and reopens. A
//!   backslash at the very end of a line is dropped, even inside a string.
//! - `#` starts a comment to the end of the line; so does `--` followed by a space, tab, `\n`,
//!   `\v`, `\f`, `\r` or by the end of the line, and `--` followed by anything when nothing of
//!   the statement precedes it (`--x` starts a comment only at a statement's start). Other
//!   control characters after `--` do not make a comment.
//! - `/* ... */` comments are removed, possibly across lines; the first character after `*/`
//!   gets a space in front of it unless it is whitespace (so `a/*x*/b` is sent as `a b`, and
//!   a statement that starts right after a comment starts with a space). `/*+ hints */` are
//!   plain comments to this client: removed. `/*!...*/` and `/*M!...*/` are kept verbatim, but
//!   are not quotes: a delimiter inside them ends the statement, and a `/* */` comment nested
//!   in `/*! */` (not in `/*M! */`) hides everything up to the next `*/`.
//! - The delimiter (`;` at first) ends a statement outside quotes and `/* */` comments. `\g` and
//!   `\G` end one too, `\c` throws away the statement in progress, `\d X` sets the delimiter
//!   like `DELIMITER X`, `\N` is kept as written.
//! - `DELIMITER X` is a command only on a line of its own that starts while no statement is in
//!   progress (case-insensitive, leading whitespace allowed, the rest of the line after the
//!   argument ignored). Its argument ends at the first space (not at a tab); it may be quoted
//!   with `'`, `"` or `` ` ``. A line starting with `delimiter` inside a statement is glued to
//!   the next line without a newline (refused here when it is the word `delimiter` itself).
//!   A delimiter starting with a multi-byte character never matches anything.
//! - A line starting outside any statement with the name of a client command (`use`,
//!   `source`, `quit`...; alone on the line for those without an argument), or a statement that
//!   is one at its delimiter, is run by the client, not sent. `USE db` is the one a migration
//!   may need: it is kept as the statement ``USE `db` `` (the client changes the database
//!   through the protocol instead and does not echo it; the server does the same for the query).
//! - Statements are sent with trailing whitespace and control characters removed, leading ones
//!   having been skipped as they were read. Empty statements are not sent. The last statement
//!   is sent at the end of the file even without a delimiter.
//!
//! What tend refuses although the client would go on: an unterminated quote or `/*` comment, a
//! statement pending at the end of the file while a delimiter other than `;` is in force, a
//! `DELIMITER` inside a statement, a bad `DELIMITER` argument (none, a backslash, more than the
//! client's 15 bytes), and every client command other than `DELIMITER`, `\d`, `\g`, `\G`, `\c`
//! and `USE` (`source`, `system`, `quit`, `\q`, `\.`, unknown `\x`...), which the client would
//! run itself rather than send.
//!
//! Assumed: the server's `sql_mode` has neither `ANSI_QUOTES` nor `NO_BACKSLASH_ESCAPES` (the
//! client asks the server and would treat backslashes in strings differently with them).

/// One statement of a migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based line of the statement's first character that is not whitespace or a comment.
    pub line: usize,
    /// What the client sends to the server for it (comments stripped as the client strips
    /// them, trimmed the way the client trims).
    pub sql: String,
    /// The statement's source text as written (from the end of the previous delimiter or
    /// DELIMITER command up to, not including, its own delimiter), comments included.
    pub raw: String,
}

/// Why a migration file cannot be split: the client would send something other than what its
/// author meant (or run a command of its own), so tend refuses the file before running it.
/// Messages leave the line out: `line()` gives it, for the caller's `file:line`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    /// A quote opened on `line` is still open at the end of the file (the client would send
    /// the rest of the file as one statement).
    #[error("the {quote} quote opened here is never closed")]
    UnterminatedQuote {
        /// The quote character: `'`, `"` or `` ` ``.
        quote: char,
        /// Line where the quote opened.
        line: usize,
    },
    /// A `/*` comment opened on `line` is still open at the end of the file.
    #[error("the /* comment opened here is never closed")]
    UnterminatedComment {
        /// Line where the comment opened.
        line: usize,
    },
    /// The file ends in a statement without its delimiter while a `DELIMITER` other than `;` is
    /// in force (usually a forgotten `DELIMITER ;` or a missing `//` after `END`).
    #[error(
        "this statement has no `{delimiter}` at its end, and `DELIMITER {delimiter}` of line \
         {delimiter_line} is still in force at the end of the file"
    )]
    PendingStatement {
        /// The delimiter in force.
        delimiter: String,
        /// Line of the `DELIMITER` command that set it.
        delimiter_line: usize,
        /// Line where the pending statement starts.
        line: usize,
    },
    /// A `DELIMITER` (or `\d`) command while a statement is in progress: the client does not
    /// run it but glues it to the statement (usually the previous statement lacks its
    /// delimiter).
    #[error(
        "DELIMITER inside the statement that starts on line {statement_line}; end that statement \
         with its delimiter first (the mariadb client takes DELIMITER only at the start of a line \
         with no statement in progress)"
    )]
    DelimiterInStatement {
        /// Line of the `DELIMITER` text.
        line: usize,
        /// Line where the statement in progress starts.
        statement_line: usize,
    },
    /// A `DELIMITER` command the client refuses or would cut.
    #[error("bad DELIMITER: {reason}")]
    BadDelimiter {
        /// Line of the command.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A command the client runs itself (`source`, `system`, `quit`, `\q`, `\.`, `\!`...) or
    /// refuses (an unknown `\x`): nothing a migration can mean.
    #[error("`{command}` is a command of the mariadb client, not SQL: a migration cannot use it")]
    ClientCommand {
        /// `\` and the character after it, or the named command's name (`source`, `quit`...).
        command: String,
        /// Its line.
        line: usize,
    },
    /// A NUL byte, which the client refuses in batch mode.
    #[error("NUL byte (the mariadb client refuses it)")]
    NulByte {
        /// Its line.
        line: usize,
    },
}

impl SplitError {
    /// The line the error is about, for a `file:line` message.
    pub fn line(&self) -> usize {
        match self {
            Self::UnterminatedQuote { line, .. }
            | Self::UnterminatedComment { line }
            | Self::PendingStatement { line, .. }
            | Self::DelimiterInStatement { line, .. }
            | Self::BadDelimiter { line, .. }
            | Self::ClientCommand { line, .. }
            | Self::NulByte { line } => *line,
        }
    }
}

/// Splits `text` (a whole migration file) into the statements the `mariadb` client would send
/// for it, in order, so that tend can check a file before connecting anywhere and then send
/// the server exactly what `mariadb < file` would have sent.
pub fn split(text: &str) -> Result<Vec<Statement>, SplitError> {
    let mut s = Splitter::new(text.as_bytes());
    s.run()?;
    Ok(s.statements)
}

/// The client's `my_isspace` for utf8mb4: tab, newline, vertical tab, form feed, carriage
/// return and space (bytes of multi-byte characters are not spaces).
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// The client's `my_isgraph` for utf8mb4: what `remove_cntrl` keeps at a statement's end.
fn is_graph(c: u8) -> bool {
    c > b' ' && c != 0x7f
}

/// Length of the UTF-8 character starting with lead byte `c` (`my_ismbchar`), 0 for ASCII and
/// continuation bytes.
fn mb_len(c: u8) -> usize {
    match c {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 0,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The client's `is_delimiter_command`: the text starts with `delimiter` (any case).
fn is_delimiter_command(s: &[u8]) -> bool {
    s.len() >= 9 && s[..9].eq_ignore_ascii_case(b"delimiter")
}

/// The client's default delimiter.
const DEFAULT_DELIMITER: &[u8] = b";";
/// The client keeps at most this many bytes of a delimiter (`char delimiter[16]`).
const MAX_DELIMITER: usize = 15;

/// The client's named commands (`commands[]` of mysql.cc, 10.11) and whether they take an
/// argument. A line (or a statement) whose first word is one of these is run by the client.
const COMMANDS: &[(&str, bool)] = &[
    ("?", true),
    ("clear", false),
    ("connect", true),
    ("delimiter", true),
    ("edit", false),
    ("ego", false),
    ("exit", false),
    ("go", false),
    ("help", true),
    ("nopager", false),
    ("notee", false),
    ("pager", true),
    ("print", false),
    ("prompt", true),
    ("quit", false),
    ("rehash", false),
    ("sandbox", false),
    ("source", true),
    ("status", false),
    ("system", true),
    ("tee", true),
    ("use", true),
    ("charset", true),
    ("warnings", false),
    ("nowarning", false),
];

/// The client's `get_arg(line, GET)`: the argument of a command line (after the command word,
/// or after `\x`), unquoted. `None` where the client finds none (or an unterminated quote).
fn get_arg(line: &[u8]) -> Option<Vec<u8>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while is_space(at(i)) {
        i += 1;
    }
    let short = at(i) == b'\\';
    if short {
        i += 2;
    } else {
        while at(i) != 0 && !is_space(at(i)) {
            i += 1;
        }
    }
    if at(i) == 0 {
        return None;
    }
    while is_space(at(i)) {
        i += 1;
    }
    let mut qtype = 0u8;
    if matches!(at(i), b'\'' | b'"' | b'`') {
        qtype = at(i);
        i += 1;
    }
    let mut arg = Vec::new();
    while at(i) != 0 {
        let (c, next) = (at(i), at(i + 1));
        let escaped = if short {
            c == b'\\' && next != 0
        } else {
            (c == b'\\' && next != 0 && qtype != b'`') || (qtype != 0 && c == qtype && next == qtype)
        };
        if escaped {
            arg.push(next);
            i += 2;
        } else if c == if qtype != 0 { qtype } else { b' ' } {
            qtype = 0;
            break;
        } else {
            arg.push(c);
            i += 1;
        }
    }
    (!arg.is_empty() && qtype == 0).then_some(arg)
}

/// The client's `find_command(char *name)`: the named command `name` (a line, or a statement
/// at its delimiter) is, if any.
fn find_command(name: &[u8], delimiter: &[u8]) -> Option<&'static str> {
    let start = name.iter().position(|&c| !is_space(c)).unwrap_or(name.len());
    let name = &name[start..];
    if contains(name, b"\\g") || (contains(name, delimiter) && !is_delimiter_command(name)) {
        return None;
    }
    let (word, has_args) = match name.iter().position(|&c| c == b' ' || c == b'\t') {
        Some(end) => (&name[..end], name[end..].iter().any(|&c| !is_space(c))),
        None => (name, false),
    };
    COMMANDS
        .iter()
        .find(|(cmd, takes_params)| {
            word.eq_ignore_ascii_case(cmd.as_bytes()) && (!has_args || (*takes_params && get_arg(name).is_some()))
        })
        .map(|(cmd, _)| *cmd)
}

/// `raw` and `sql` are built from bytes cut at ASCII characters of valid UTF-8 text, so they
/// are valid UTF-8; a lossy conversion keeps this free of panics all the same.
fn string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `read_and_execute` and `add_line` of the client, on a whole file.
struct Splitter<'a> {
    text: &'a [u8],
    /// Statements sent so far.
    statements: Vec<Statement>,
    /// The delimiter in force and the line of the command that set it (0: the default).
    delimiter: Vec<u8>,
    delimiter_line: usize,
    /// The client's `glob_buffer`: the statement in progress, as it will be sent.
    buffer: Vec<u8>,
    /// The quote character we are in (0: none) and the line where it opened.
    in_string: u8,
    string_line: usize,
    /// In a `/* */` comment, and the line where it opened.
    ml_comment: bool,
    comment_line: usize,
    /// Line of the first character of the statement in progress that is not whitespace.
    first_line: Option<usize>,
    /// Where the source text of the next statement starts.
    raw_start: usize,
}

impl<'a> Splitter<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            statements: Vec::new(),
            delimiter: DEFAULT_DELIMITER.to_vec(),
            delimiter_line: 0,
            buffer: Vec::new(),
            in_string: 0,
            string_line: 0,
            ml_comment: false,
            comment_line: 0,
            first_line: None,
            raw_start: 0,
        }
    }

    fn run(&mut self) -> Result<(), SplitError> {
        let text = self.text;
        let mut start = 0;
        if text.starts_with(b"\xef\xbb\xbf") {
            start = 3;
            self.raw_start = 3;
        }
        let mut lineno = 0;
        while start < text.len() {
            lineno += 1;
            let (end, next) = match text[start..].iter().position(|&c| c == b'\n') {
                Some(n) if n > 0 && text[start + n - 1] == b'\r' => (start + n - 1, start + n + 1),
                Some(n) => (start + n, start + n + 1),
                None => (text.len(), text.len()),
            };
            if text[start..end].contains(&0) {
                return Err(SplitError::NulByte { line: lineno });
            }
            // A client command is looked for on a line that starts outside any statement.
            if self.buffer.is_empty()
                && !self.ml_comment
                && self.in_string == 0
                && let Some(cmd) = find_command(&text[start..end], &self.delimiter)
            {
                self.line_command(cmd, start, end, lineno)?;
                self.raw_start = next;
                start = next;
                continue;
            }
            self.add_line(start, end, lineno)?;
            start = next;
        }
        if self.in_string != 0 {
            return Err(SplitError::UnterminatedQuote {
                quote: char::from(self.in_string),
                line: self.string_line,
            });
        }
        if self.ml_comment {
            return Err(SplitError::UnterminatedComment {
                line: self.comment_line,
            });
        }
        if self.trimmed_len() > 0 && self.delimiter != DEFAULT_DELIMITER {
            return Err(SplitError::PendingStatement {
                delimiter: string(&self.delimiter),
                delimiter_line: self.delimiter_line,
                line: self.first_line.unwrap_or(lineno),
            });
        }
        self.go(text.len());
        Ok(())
    }

    /// A named command on a line of its own, outside any statement: the client runs it.
    fn line_command(&mut self, cmd: &str, start: usize, end: usize, lineno: usize) -> Result<(), SplitError> {
        let line = &self.text[start..end];
        match cmd {
            "delimiter" => self.set_delimiter(line, lineno),
            "use" => {
                self.first_line = Some(lineno);
                self.use_db(line, self.raw_start, end, lineno)
            }
            _ => Err(SplitError::ClientCommand {
                command: cmd.to_string(),
                line: lineno,
            }),
        }
    }

    /// `com_delimiter` on `line` (the whole command text).
    fn set_delimiter(&mut self, line: &[u8], lineno: usize) -> Result<(), SplitError> {
        let bad = |reason| SplitError::BadDelimiter { line: lineno, reason };
        let Some(arg) = get_arg(line) else {
            return Err(bad("it must be followed by a delimiter (the client ignores it)"));
        };
        if arg.contains(&b'\\') {
            return Err(bad("a delimiter cannot contain a backslash (the client ignores it)"));
        }
        if arg.len() > MAX_DELIMITER {
            return Err(bad("a delimiter is at most 15 bytes long (the client would cut it)"));
        }
        if arg[0] >= 0x80 {
            return Err(bad(
                "a delimiter starting with a non-ASCII character is never recognized by the client",
            ));
        }
        self.delimiter = arg;
        self.delimiter_line = lineno;
        Ok(())
    }

    /// `USE db` (the client sends it as a change of database rather than as a query and does
    /// not echo it; the server runs the query `USE` the same way).
    fn use_db(&mut self, cmd: &[u8], raw_start: usize, raw_end: usize, lineno: usize) -> Result<(), SplitError> {
        let Some(db) = get_arg(cmd) else {
            return Err(SplitError::ClientCommand {
                command: "use".to_string(),
                line: lineno,
            });
        };
        let db = string(&db).replace('`', "``");
        self.statements.push(Statement {
            line: self.first_line.unwrap_or(lineno),
            sql: format!("USE `{db}`"),
            raw: string(&self.text[raw_start..raw_end]),
        });
        self.first_line = None;
        self.buffer.clear();
        Ok(())
    }

    /// Length of the statement in progress once trimmed as `remove_cntrl` trims.
    fn trimmed_len(&self) -> usize {
        self.buffer.iter().rposition(|&c| is_graph(c)).map_or(0, |i| i + 1)
    }

    /// `com_go`: sends the statement in progress (whose source ends at `raw_end`) unless it is
    /// empty once trimmed, and starts the next one.
    fn go(&mut self, raw_end: usize) {
        let len = self.trimmed_len();
        if len > 0 {
            let raw = self.text.get(self.raw_start..raw_end).unwrap_or_default();
            self.statements.push(Statement {
                line: self.first_line.unwrap_or(1),
                sql: string(&self.buffer[..len]),
                raw: string(raw),
            });
        }
        self.buffer.clear();
        self.first_line = None;
    }

    /// The client's `add_line` for the line `text[start..end]`.
    fn add_line(&mut self, start: usize, end: usize, lineno: usize) -> Result<(), SplitError> {
        let text = self.text;
        let at = |i: usize| if i < end { text[i] } else { 0 };
        if start == end && self.buffer.is_empty() {
            return Ok(());
        }
        // What this line adds to the statement since the last flush into `buffer`.
        let mut out: Vec<u8> = Vec::new();
        let mut need_space = false;
        let mut ss_comment = false;
        let mut pos = start;
        while pos < end {
            let c = text[pos];
            if is_space(c) && out.is_empty() && self.buffer.is_empty() {
                pos += 1;
                continue;
            }
            let n = mb_len(c);
            if n > 0 {
                let n = n.min(end - pos);
                if !self.ml_comment {
                    self.mark(lineno);
                    out.extend_from_slice(&text[pos..pos + n]);
                }
                pos += n;
                continue;
            }
            if !self.ml_comment && c == b'\\' && self.in_string != b'`' {
                let cmd = at(pos + 1);
                if cmd == 0 {
                    break; // a backslash ending the line is dropped
                }
                if self.in_string != 0 || cmd == b'N' {
                    self.mark(lineno);
                    out.extend_from_slice(&[b'\\', cmd]);
                    pos += 2;
                    continue;
                }
                self.buffer.append(&mut out);
                pos = self.short_command(cmd, pos, end, lineno)?;
                continue;
            }
            if !self.ml_comment && self.in_string == 0 && text[pos..end].starts_with(&self.delimiter) {
                self.buffer.append(&mut out);
                let delimiter_at = pos;
                pos += self.delimiter.len();
                self.statement_end(delimiter_at, pos, lineno)?;
                continue;
            }
            if !self.ml_comment
                && self.in_string == 0
                && (c == b'#'
                    || (c == b'-'
                        && at(pos + 1) == b'-'
                        && (is_space(at(pos + 2)) || at(pos + 2) == 0 || (self.buffer.is_empty() && out.is_empty()))))
            {
                self.buffer.append(&mut out);
                break;
            }
            if self.in_string == 0
                && c == b'/'
                && at(pos + 1) == b'*'
                && !(at(pos + 2) == b'!' || (at(pos + 2) == b'M' && at(pos + 3) == b'!'))
            {
                if !self.ml_comment {
                    self.comment_line = lineno;
                }
                self.ml_comment = true;
                self.buffer.append(&mut out);
                pos += 2;
                continue;
            }
            if self.ml_comment && !ss_comment && c == b'*' && at(pos + 1) == b'/' {
                self.ml_comment = false;
                self.buffer.append(&mut out);
                need_space = true;
                pos += 2;
                continue;
            }
            if self.in_string == 0 && c == b'/' && at(pos + 1) == b'*' && at(pos + 2) == b'!' {
                ss_comment = true;
            } else if self.in_string == 0 && ss_comment && c == b'*' && at(pos + 1) == b'/' {
                ss_comment = false;
            }
            if c == self.in_string {
                self.in_string = 0;
            } else if !self.ml_comment && self.in_string == 0 && matches!(c, b'\'' | b'"' | b'`') {
                self.in_string = c;
                self.string_line = lineno;
            }
            if !self.ml_comment {
                if need_space && !is_space(c) {
                    out.push(b' ');
                }
                need_space = false;
                if !is_space(c) {
                    self.mark(lineno);
                }
                out.push(c);
            }
            pos += 1;
        }
        if !out.is_empty() || !self.buffer.is_empty() {
            if !is_delimiter_command(&out) || self.in_string != 0 || self.ml_comment {
                out.push(b'\n');
            } else if out.get(9).is_none_or(|&c| is_space(c)) {
                // The client glues this line to the next one: a DELIMITER meant as a command.
                return Err(SplitError::DelimiterInStatement {
                    line: lineno,
                    statement_line: self.first_line.unwrap_or(lineno),
                });
            }
            if !self.ml_comment {
                self.buffer.append(&mut out);
            }
        }
        Ok(())
    }

    /// Notes that the statement in progress has a character on `lineno`.
    fn mark(&mut self, lineno: usize) {
        self.first_line.get_or_insert(lineno);
    }

    /// The delimiter found at `delimiter_at`, the statement now in `buffer`: the client runs
    /// it as a named command if it is one, else sends it.
    fn statement_end(&mut self, delimiter_at: usize, after: usize, lineno: usize) -> Result<(), SplitError> {
        match find_command(&self.buffer, &self.delimiter) {
            None => self.go(delimiter_at),
            Some("delimiter") => {
                let line = self.first_line.unwrap_or(lineno);
                let cmd = std::mem::take(&mut self.buffer);
                self.set_delimiter(&cmd, line)?;
                self.first_line = None;
            }
            Some("use") => {
                let cmd = std::mem::take(&mut self.buffer);
                self.use_db(&cmd, self.raw_start, delimiter_at, lineno)?;
            }
            Some(cmd) => {
                return Err(SplitError::ClientCommand {
                    command: cmd.to_string(),
                    line: self.first_line.unwrap_or(lineno),
                });
            }
        }
        self.raw_start = after;
        Ok(())
    }

    /// A `\x` command at `pos` (the backslash) outside quotes and comments; returns where to go
    /// on reading the line.
    fn short_command(&mut self, cmd: u8, pos: usize, end: usize, lineno: usize) -> Result<usize, SplitError> {
        let after = pos + 2;
        match cmd {
            b'g' | b'G' => {
                self.go(pos);
                self.raw_start = after;
                Ok(after)
            }
            b'c' => {
                self.buffer.clear();
                self.first_line = None;
                self.raw_start = after;
                Ok(after)
            }
            b'd' if !self.buffer.is_empty() => Err(SplitError::DelimiterInStatement {
                line: lineno,
                statement_line: self.first_line.unwrap_or(lineno),
            }),
            b'd' => {
                self.set_delimiter(&self.text[pos..end], lineno)?;
                // The client skips the argument: up to the end of the (new) delimiter.
                let mut p = pos + 2;
                while p < end && !self.text[p..end].starts_with(&self.delimiter) {
                    p += 1;
                }
                let resume = if p < end { p + self.delimiter.len() } else { end };
                self.raw_start = resume;
                Ok(resume)
            }
            _ => {
                let mut command = String::from("\\");
                let n = mb_len(cmd).max(1);
                command.push_str(&string(self.text.get(pos + 1..pos + 1 + n).unwrap_or_default()));
                Err(SplitError::ClientCommand { command, line: lineno })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` splits into statements at these lines with this `sql`; each `raw` is a piece of
    /// `text` holding the statement's first line.
    fn check(text: &str, want: &[(usize, &str)]) {
        let got = split(text).expect("the fixture splits");
        let pairs: Vec<(usize, &str)> = got.iter().map(|s| (s.line, s.sql.as_str())).collect();
        assert_eq!(pairs, want);
        for s in &got {
            assert!(text.contains(&s.raw), "raw {:?} not in the text", s.raw);
        }
    }

    fn err(text: &str) -> SplitError {
        split(text).expect_err("the text is refused")
    }

    fn raws(text: &str) -> Vec<String> {
        split(text).expect("splits").into_iter().map(|s| s.raw).collect()
    }

    // Fixtures: tests/fixtures/sql/NN_*.sql, and for each statement the line split() gives it
    // and the text the real client (MariaDB 10.11.14, `mariadb --batch
    // --default-character-set=utf8mb4 --force --verbose`) echoed as sent. The lab test
    // `statements_are_split_as_the_mariadb_client_splits_them` compares with a live client.

    #[test]
    fn fixture_basic() {
        let text = include_str!("../../tests/fixtures/sql/01_basic.sql");
        check(
            text,
            &[
                (1, "CREATE TABLE t1 (id INT PRIMARY KEY, name VARCHAR(20))"),
                (2, "INSERT INTO t1 VALUES (1, 'a')"),
                (2, "INSERT INTO t1 VALUES (2, 'b')"),
                (
                    4,
                    r#"SELECT COUNT(*)
     FROM t1
    WHERE id > 0"#,
                ),
                (8, "SELECT 1"),
                (8, "SELECT 2"),
                (
                    9,
                    r#"SELECT name FROM t1
WHERE id = 2"#,
                ),
            ],
        );
    }

    #[test]
    fn fixture_quotes() {
        let text = include_str!("../../tests/fixtures/sql/02_quotes.sql");
        check(
            text,
            &[
                (1, r#"SELECT 'it''s; here', 'back\'slash; here', 'tail\\'"#),
                (2, r#"SELECT "dq ""x""; y", "esc \" ; z", "\\""#),
                (3, r#"CREATE TABLE `we``ird;name` (`semi;col` INT, `back\` INT)"#),
                (4, r#"SELECT `semi;col`, `back\` FROM `we``ird;name`"#),
                (
                    5,
                    r#"SELECT 'multi
line; string', "-- not a comment", '# nor this', '/* nor this */'"#,
                ),
                (
                    7,
                    r#"SELECT 'ends with backslash 
next line'"#,
                ),
                (9, r#"SELECT 'a' 'b' "c""#),
            ],
        );
    }

    #[test]
    fn fixture_line_comments() {
        let text = include_str!("../../tests/fixtures/sql/03_line_comments.sql");
        check(
            text,
            &[
                (
                    3,
                    r#"SELECT 1 
  , 2"#,
                ),
                (5, "SELECT 3"),
                (8, "SELECT 4"),
                (
                    9,
                    r#"SELECT 5 
, 6"#,
                ),
                (
                    11,
                    r#"SELECT 7 
, 8"#,
                ),
                (
                    13,
                    r#"SELECT 9 --x
, 10"#,
                ),
                (16, "SELECT 11"),
                (
                    17,
                    r#"SELECT 12 
, 13"#,
                ),
                (19, "SELECT '-- in a string', \"# in a string\""),
            ],
        );
    }

    #[test]
    fn fixture_block_comments() {
        let text = include_str!("../../tests/fixtures/sql/04_block_comments.sql");
        check(
            text,
            &[
                (3, "SELECT 1"),
                (4, " SELECT 2"),
                (5, "SELECT 3  + 4"),
                (6, "SELECT 5 +6"),
                (7, "SELECT 7  + 8"),
                (
                    9,
                    r#"SELECT 9 
  + 10"#,
                ),
                (11, "SELECT  11"),
                (12, "SELECT 12  +13"),
                (13, "SELECT 14  + 15"),
                (14, "SELECT '/* not a comment */', 16"),
                (15, "SELECT 17 */ 1"),
            ],
        );
    }

    #[test]
    fn fixture_executable_comments() {
        let text = include_str!("../../tests/fixtures/sql/05_executable_comments.sql");
        check(
            text,
            &[
                (1, "/*!40101 SET @old = @@SQL_MODE */"),
                (2, "/*M!100100 SET @m = 1 */"),
                (3, "SELECT 1 /*!50000 + 1 */, 2 /*M!100000 + 2 */, 3 /*M!999999 + 3 */"),
                (4, "/*!40101 SET @a = 1"),
                (4, "SET @b = 2 */"),
                (5, "/*!40101 SET @c = 1"),
                (6, "SELECT @c, @d"),
                (7, "SELECT 4 /*M!100000  + 4 */"),
                (
                    8,
                    r#"/*!40101 SET @e = 5 
SELECT @e"#,
                ),
                (10, r#"SELECT "/*!", 5"#),
            ],
        );
    }

    #[test]
    fn fixture_mysqldump() {
        let text = include_str!("../../tests/fixtures/sql/06_mysqldump.sql");
        check(
            text,
            &[
                (7, "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */"),
                (8, "/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */"),
                (9, "/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */"),
                (10, "/*!40101 SET NAMES utf8mb4 */"),
                (11, "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */"),
                (12, "/*!40103 SET TIME_ZONE='+00:00' */"),
                (
                    13,
                    "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */",
                ),
                (
                    14,
                    "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */",
                ),
                (
                    15,
                    "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */",
                ),
                (
                    16,
                    "/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */",
                ),
                (22, "DROP TABLE IF EXISTS `orders`"),
                (23, "/*!40101 SET @saved_cs_client     = @@character_set_client */"),
                (24, "/*!40101 SET character_set_client = utf8mb4 */"),
                (
                    25,
                    r#"CREATE TABLE `orders` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `note` varchar(200) DEFAULT NULL COMMENT 'free text; may hold '';''',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"#,
                ),
                (30, "/*!40101 SET character_set_client = @saved_cs_client */"),
                (36, "LOCK TABLES `orders` WRITE"),
                (37, "/*!40000 ALTER TABLE `orders` DISABLE KEYS */"),
                (
                    38,
                    r#"INSERT INTO `orders` VALUES (1,'first; \'quoted\''),(2,NULL),(3,'back\\slash')"#,
                ),
                (39, "/*!40000 ALTER TABLE `orders` ENABLE KEYS */"),
                (40, "UNLOCK TABLES"),
                (41, "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */"),
                (43, "/*!40101 SET SQL_MODE=@OLD_SQL_MODE */"),
                (44, "/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */"),
                (45, "/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */"),
                (46, "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */"),
                (47, "/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */"),
                (48, "/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */"),
                (49, "/*M!100616 SET NOTE_VERBOSITY=@OLD_NOTE_VERBOSITY */"),
            ],
        );
    }

    #[test]
    fn fixture_delimiter() {
        let text = include_str!("../../tests/fixtures/sql/07_delimiter.sql");
        check(
            text,
            &[
                (2, "SELECT 1; SELECT 2"),
                (3, "SELECT 3"),
                (5, "SELECT 4;"),
                (7, "SELECT 5"),
                (8, "SELECT '6;;'"),
                (10, "SELECT 7"),
                (12, "SELECT 8"),
                (14, "SELECT 9"),
                (17, "SELECT 10"),
                (17, "SELECT 11"),
                (19, "SELECT 12"),
                (19, "SELECT 13"),
            ],
        );
    }

    #[test]
    fn fixture_routines() {
        let text = include_str!("../../tests/fixtures/sql/08_routines.sql");
        check(
            text,
            &[
                (
                    2,
                    r#"CREATE TABLE orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer VARCHAR(100) NOT NULL,
  total DECIMAL(10,2) NOT NULL DEFAULT 0,
  status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new'
)"#,
                ),
                (
                    8,
                    "CREATE TABLE order_audit (order_id INT, changed_at DATETIME, note VARCHAR(200))",
                ),
                (12, "DROP PROCEDURE IF EXISTS mark_paid"),
                (
                    13,
                    r#"CREATE PROCEDURE mark_paid(IN p_id INT)
BEGIN
  DECLARE v_status VARCHAR(10);
  SELECT status INTO v_status FROM orders WHERE id = p_id;
  IF v_status = 'new' THEN
    UPDATE orders SET status = 'paid' WHERE id = p_id; 
  ELSE
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'order is not new; cannot pay';
  END IF;
END"#,
                ),
                (
                    24,
                    r#"CREATE FUNCTION order_label(p_id INT) RETURNS VARCHAR(120)
  READS SQL DATA
BEGIN
  
  RETURN (SELECT CONCAT(customer, ' #', id) FROM orders WHERE id = p_id);
END"#,
                ),
                (
                    31,
                    r#"CREATE TRIGGER orders_au AFTER UPDATE ON orders
FOR EACH ROW
BEGIN
  IF NEW.status <> OLD.status THEN
    INSERT INTO order_audit VALUES (NEW.id, NOW(), CONCAT(OLD.status, ' -> ', NEW.status));
  END IF;
END"#,
                ),
                (42, "INSERT INTO orders (customer, total) VALUES ('ACME; Inc.', 10.50)"),
                (43, "CALL mark_paid(1)"),
                (44, "SELECT order_label(1), (SELECT COUNT(*) FROM order_audit)"),
                (47, "CREATE PROCEDURE noop() BEGIN END"),
                (49, "CALL noop()"),
            ],
        );
    }

    #[test]
    fn fixture_begin_end_without_delimiter() {
        let text = include_str!("../../tests/fixtures/sql/09_begin_end_without_delimiter.sql");
        check(
            text,
            &[
                (
                    2,
                    r#"CREATE PROCEDURE broken()
BEGIN
  SELECT 1"#,
                ),
                (5, "SELECT 2"),
                (6, "END"),
                (7, "CREATE PROCEDURE fine() SELECT 3"),
                (8, "BEGIN NOT ATOMIC SELECT 4"),
                (8, "END"),
            ],
        );
    }

    #[test]
    fn fixture_backslash_commands() {
        let text = include_str!("../../tests/fixtures/sql/10_backslash_commands.sql");
        check(
            text,
            &[
                (1, "SELECT 1"),
                (1, "SELECT 2"),
                (2, "SELECT 3"),
                (3, r#"SELECT \N, 4"#),
                (4, "SELECT 6"),
                (5, "SELECT 7"),
                (6, "SELECT 8; SELECT 9"),
                (8, "SELECT 10"),
                (9, r#"SELECT 'a\gb', "\c", 11"#),
                (10, "SELECT 12"),
                (11, "SELECT 13"),
            ],
        );
    }

    #[test]
    fn fixture_crlf() {
        let text = include_str!("../../tests/fixtures/sql/11_crlf.sql");
        check(
            text,
            &[
                (
                    1,
                    r#"SELECT 1
, 2"#,
                ),
                (
                    3,
                    r#"SELECT 3 
, 4"#,
                ),
                (
                    5,
                    r#"SELECT 'line
break'"#,
                ),
                (7, "SELECT 5\r, 6"),
                (
                    8,
                    r#"SELECT 7 
+ 8"#,
                ),
                (11, "SELECT 9; SELECT 10"),
                (13, "SELECT 11"),
            ],
        );
    }

    #[test]
    fn fixture_bom() {
        let text = include_str!("../../tests/fixtures/sql/12_bom.sql");
        check(text, &[(2, "SELECT 1"), (3, "SELECT 2")]);
    }

    #[test]
    fn fixture_utf8() {
        let text = include_str!("../../tests/fixtures/sql/13_utf8.sql");
        check(
            text,
            &[
                (1, "CREATE TABLE `prix_€` (`libellé` VARCHAR(20), `名前` VARCHAR(20))"),
                (2, r#"INSERT INTO `prix_€` VALUES ('café; crème', "日本語; テキスト")"#),
                (
                    3,
                    "SELECT `libellé` AS ñandú, `名前` FROM `prix_€`  WHERE `libellé` <> 'ø'",
                ),
                (5, "SELECT 'emoji 🎉; ok', 1 AS é"),
            ],
        );
    }

    #[test]
    fn fixture_whitespace_and_controls() {
        let text = include_str!("../../tests/fixtures/sql/14_whitespace_and_controls.sql");
        check(
            text,
            &[
                (1, "SELECT 1 --\u{1}\n, 2"),
                (
                    3,
                    r#"SELECT 3 
, 4"#,
                ),
                (5, "SELECT 5"),
                (6, "SELECT 6"),
                (7, "SELECT 7 \u{a0}"),
            ],
        );
    }

    #[test]
    fn fixture_last_statement_at_eof() {
        let text = include_str!("../../tests/fixtures/sql/15_last_statement_at_eof.sql");
        check(text, &[(1, "SELECT 1"), (3, "SELECT 2")]);
    }

    #[test]
    fn fixture_delimiter_word_quirks() {
        let text = include_str!("../../tests/fixtures/sql/16_delimiter_word_quirks.sql");
        check(
            text,
            &[
                (1, "CREATE TABLE q (a INT, delimiter_x INT, `delimiter` INT)"),
                (
                    2,
                    r#"SELECT a,
delimiter_x, 1 FROM q"#,
                ),
                (5, "SELECT 1"),
                (6, "SELECT 2; SELECT 3"),
                (8, "SELECT 4"),
            ],
        );
    }

    #[test]
    fn fixture_comments_only() {
        let text = include_str!("../../tests/fixtures/sql/17_comments_only.sql");
        check(text, &[]);
    }

    #[test]
    fn fixture_empty() {
        let text = include_str!("../../tests/fixtures/sql/18_empty.sql");
        check(text, &[]);
    }

    #[test]
    fn fixture_backslash_in_backticks() {
        let text = include_str!("../../tests/fixtures/sql/19_backslash_in_backticks.sql");
        check(text, &[(1, "SELECT 1"), (2, r#"SELECT `a\`, 2"#), (3, "SELECT 3")]);
    }

    // Files the client would run differently from what their author meant: refused.

    #[test]
    fn error_unterminated_quote() {
        // fixtures/error_unterminated_quote.sql (the client sends `SELECT 'it\'s; open;\nSELECT 2;`)
        let e = err("SELECT 1;\nSELECT 'it\\'s; open;\nSELECT 2;\n");
        assert_eq!(e, SplitError::UnterminatedQuote { quote: '\'', line: 2 });
        assert_eq!(e.line(), 2);
        for (text, quote) in [("SELECT \"a\n", '"'), ("SELECT `a\n", '`'), ("SELECT 'a\\'\n", '\'')] {
            assert_eq!(err(text), SplitError::UnterminatedQuote { quote, line: 1 });
        }
    }

    #[test]
    fn error_backslash_in_backticks() {
        // fixtures/error_backslash_in_backticks.sql: a backslash does not escape a backtick, so
        // the client closes `a\` there, ends the statement at `;` and opens a backtick at `b``.
        let e = err("SELECT 1;\nSELECT `a\\`;b` FROM t;\nSELECT 2;\n");
        assert_eq!(e, SplitError::UnterminatedQuote { quote: '`', line: 2 });
    }

    #[test]
    fn error_unterminated_comment() {
        // fixtures/error_unterminated_comment.sql (the client sends `SELECT 2`)
        let e = err("SELECT 1;\nSELECT 2 /* never closed;\nSELECT 3;\n");
        assert_eq!(e, SplitError::UnterminatedComment { line: 2 });
    }

    #[test]
    fn error_pending_statement_under_delimiter() {
        // fixtures/error_pending_delimiter.sql (the client sends `CREATE PROCEDURE q() ... END;`)
        let text = "DELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND //\nCREATE PROCEDURE q()\nBEGIN\n  SELECT 2;\nEND;\n";
        let e = err(text);
        assert_eq!(
            e,
            SplitError::PendingStatement {
                delimiter: "//".into(),
                delimiter_line: 1,
                line: 6
            }
        );
        assert_eq!(e.line(), 6);
        // Under `;` again, or with nothing pending, the end of the file is fine.
        check(
            "DELIMITER //\nSELECT 1//\nDELIMITER ;\nSELECT 2",
            &[(2, "SELECT 1"), (4, "SELECT 2")],
        );
        check("DELIMITER $$\nSELECT 1$$\n-- done\n", &[(2, "SELECT 1")]);
    }

    #[test]
    fn error_delimiter_in_statement() {
        // fixtures/error_delimiter_in_statement.sql: `END` lacks `//`, so the client glues
        // `DELIMITER ;` to the procedure and sends `...END\nDELIMITER ;SELECT 2;` at the end.
        let text = "DELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND\nDELIMITER ;\nSELECT 2;\n";
        assert_eq!(
            err(text),
            SplitError::DelimiterInStatement {
                line: 6,
                statement_line: 2
            }
        );
        // After a delimiter on the same line the client glues it as well (and would later take
        // `DELIMITER //SELECT 2//` for a delimiter `//SELECT`).
        let text = "SELECT 1;DELIMITER //\nSELECT 2//\nSELECT 3;\n";
        assert_eq!(
            err(text),
            SplitError::DelimiterInStatement {
                line: 1,
                statement_line: 1
            }
        );
        // `\d` inside a statement.
        assert_eq!(
            err("SELECT 1\n\\d //\n"),
            SplitError::DelimiterInStatement {
                line: 2,
                statement_line: 1
            }
        );
        // A delimiter starting with a multi-byte character is never recognized: the client
        // reads on to the next DELIMITER line and glues it.
        let text = "DELIMITER ;\nSELECT 1;\nSELECT 2\nDELIMITER //\n";
        assert_eq!(
            err(text),
            SplitError::DelimiterInStatement {
                line: 4,
                statement_line: 3
            }
        );
    }

    #[test]
    fn error_bad_delimiter() {
        let bad = |text| match err(text) {
            SplitError::BadDelimiter { line, .. } => line,
            e => panic!("{e:?}"),
        };
        assert_eq!(bad("SELECT 1;\ndelimiter\n"), 2); // no argument
        assert_eq!(bad("DELIMITER;\n"), 1); // the `;` ends the command: no argument either
        assert_eq!(bad("DELIMITER x\\\\y\n"), 1); // a backslash
        // An argument the client cannot read (an open quote) makes the line SQL.
        assert_eq!(
            err("DELIMITER 'open\n"),
            SplitError::UnterminatedQuote { quote: '\'', line: 1 }
        );
        assert_eq!(bad("DELIMITER abcdefghijklmnop\n"), 1); // 16 bytes: the client keeps 15
        assert_eq!(bad("DELIMITER §\nSELECT 1§\n"), 1); // never recognized
        check(
            "DELIMITER x§\nSELECT 1x§\nSELECT \"é\"x§\nDELIMITER ;\n",
            &[(2, "SELECT 1"), (3, "SELECT \"é\"")],
        );
    }

    #[test]
    fn error_client_commands() {
        // fixtures/error_client_command.sql
        let e = err("SELECT 1;\nsource other.sql\nSELECT 2;\n");
        assert_eq!(
            e,
            SplitError::ClientCommand {
                command: "source".into(),
                line: 2
            }
        );
        for (text, command, line) in [
            ("SELECT 1;\nquit\n", "quit", 2),
            ("SELECT 1;\n  EXIT;\n", "exit", 2),
            ("system ls\n", "system", 1),
            ("SELECT 1; status;\n", "status", 1),
            ("SELECT 1 \\q\n", "\\q", 1),
            ("SELECT 1 \\. other.sql\n", "\\.", 1),
            ("SELECT 1 \\! ls\n", "\\!", 1),
            ("SELECT 1 \\x;\n", "\\x", 1),
            ("SELECT 1 \\é;\n", "\\é", 1),
        ] {
            assert_eq!(
                err(text),
                SplitError::ClientCommand {
                    command: command.into(),
                    line
                },
                "{text:?}"
            );
        }
        // A client command word is one only alone on its line (or as a whole statement):
        // these are SQL.
        check(
            "status_log;\nhelp_me\n;\nSELECT 1 AS go\n",
            &[(1, "status_log"), (2, "help_me"), (4, "SELECT 1 AS go")],
        );
        // `quit\n;` after a statement: the word runs up to the first space or tab, here `quit\n`,
        // which is no command, so the client sends it. (`quit` alone on a line is one.)
        check("SELECT 1; quit\n;", &[(1, "SELECT 1"), (1, "quit")]);
        // With `\g` on the line the client leaves the line to the statement reader.
        check("use db \\g\n", &[(1, "use db")]);
    }

    #[test]
    fn error_nul_byte() {
        assert_eq!(err("SELECT 1;\nSELECT '\0';\n"), SplitError::NulByte { line: 2 });
    }

    #[test]
    fn use_is_a_statement() {
        // The client runs `USE` itself (a change of database, not echoed by --verbose); the
        // server runs the query `USE` the same way.
        let got = split("-- first\nuse shop\nSELECT 1;\nUSE `we``ird` ;\nSELECT 2; use x;\n").expect("splits");
        let pairs: Vec<(usize, &str, &str)> = got.iter().map(|s| (s.line, s.sql.as_str(), s.raw.as_str())).collect();
        assert_eq!(
            pairs,
            [
                (2, "USE `shop`", "-- first\nuse shop"),
                (3, "SELECT 1", "SELECT 1"),
                (4, "USE `we``ird`", "\nUSE `we``ird` "),
                (5, "SELECT 2", "\nSELECT 2"),
                (5, "USE `x`", " use x"),
            ]
        );
        assert_eq!(
            err("use\n"),
            SplitError::ClientCommand {
                command: "use".into(),
                line: 1
            }
        );
        // An argument the client cannot read makes the line SQL (here with an open backtick).
        assert_eq!(err("use `db\n"), SplitError::UnterminatedQuote { quote: '`', line: 1 });
    }

    #[test]
    fn delimiter_set_at_a_statements_end() {
        // `DELIMITER $$;` after a statement on the same line: the client runs it when it reaches
        // the `;` (fixtures/16_delimiter_word_quirks.sql).
        assert_eq!(raws("SELECT 1; DELIMITER $$;\nSELECT 2$$"), ["SELECT 1", "\nSELECT 2"]);
    }

    #[test]
    fn raw_keeps_the_source() {
        assert_eq!(
            raws("-- head\nSELECT 1 /* c */; # tail\n\nSELECT 2\n"),
            ["-- head\nSELECT 1 /* c */", " # tail\n\nSELECT 2\n"]
        );
        // After a DELIMITER command: from the next line; up to, not including, `\g`.
        assert_eq!(
            raws("DELIMITER //\n  SELECT 1 //\nDELIMITER ;\nSELECT 2 \\g"),
            ["  SELECT 1 ", "SELECT 2 "]
        );
        // A byte order mark is not part of it; CRLF stays as written.
        assert_eq!(raws("\u{feff}SELECT 1;\r\nSELECT 2;"), ["SELECT 1", "\r\nSELECT 2"]);
        // `\c` throws the statement away.
        assert_eq!(raws("SELECT 1 \\c SELECT 2;"), [" SELECT 2"]);
    }

    #[test]
    fn lines_skip_whitespace_and_comments() {
        let got = split("\n\n  /* a\n */\n -- b\n  SELECT\n1;").expect("splits");
        assert_eq!((got[0].line, got[0].sql.as_str()), (6, "SELECT\n1"));
        // A statement starting after a comment on its line starts with a space, as sent.
        let got = split("/* a */ SELECT 1;").expect("splits");
        assert_eq!((got[0].line, got[0].sql.as_str()), (1, " SELECT 1"));
    }

    #[test]
    fn messages_name_the_problem() {
        let e = SplitError::PendingStatement {
            delimiter: "//".into(),
            delimiter_line: 3,
            line: 9,
        };
        assert_eq!(
            e.to_string(),
            "this statement has no `//` at its end, and `DELIMITER //` of line 3 is still in force at the end of the file"
        );
        assert_eq!(
            SplitError::UnterminatedQuote { quote: '\'', line: 4 }.to_string(),
            "the ' quote opened here is never closed"
        );
    }
}
