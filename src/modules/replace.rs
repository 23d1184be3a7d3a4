//! `replace`: every match of a Python regular expression in a file replaced, optionally only
//! between `after` and `before`. Read in one round trip, edited on the control node by
//! [`replace`], written back only when it changed (guarded by the checksum of what was read).

use super::lineinfile::{compile, expand};
use super::textfile;
use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Next, Param, Plan, Script};
use regex::bytes::Regex;

/// `replace`: the tool for a setting repeated across a file, where `lineinfile` edits one line.
pub struct Replace;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str)
        .required()
        .aliases(&["dest", "destfile", "name"]),
    Param::new("regexp", Kind::Str).required(),
    Param::new("replace", Kind::Str),
    Param::new("after", Kind::Str),
    Param::new("before", Kind::Str),
    Param::new("backup", Kind::Bool),
    Param::new("validate", Kind::Str),
    Param::new("encoding", Kind::Str),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
];

/// What one `replace` call does to a text, as Ansible's module does it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Edit<'a> {
    /// The pattern, compiled as Python's `re.MULTILINE` would read it.
    pub regexp: &'a str,
    /// The replacement, with Python's `\1`, `\g<name>` references.
    pub replace: &'a str,
    /// Only after the first match of this pattern (with `.` matching newlines).
    pub after: Option<&'a str>,
    /// Only before the last match of this pattern (with `after`: the first after it).
    pub before: Option<&'a str>,
}

/// Why a [`replace`] left the text alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new text and how many matches were replaced (`0`: unchanged).
    Replaced(Vec<u8>, usize),
    /// `after`/`before` did not match: Ansible's message.
    NoSection(String),
}

/// Ansible's `replace` on a file's content.
pub fn replace(content: &[u8], e: &Edit<'_>) -> Result<Outcome, String> {
    let section_pattern = match (e.after, e.before) {
        (Some(a), Some(b)) => Some(format!("{a}(?P<subsection>.*?){b}")),
        (Some(a), None) => Some(format!("{a}(?P<subsection>.*)")),
        (None, Some(b)) => Some(format!("(?P<subsection>.*){b}")),
        (None, None) => None,
    };
    let (start, end) = match &section_pattern {
        Some(p) => {
            let re = compile(&format!("(?s){p}"))?;
            let Some(m) = re.captures(content).and_then(|c| c.name("subsection")) else {
                return Ok(Outcome::NoSection(format!(
                    "Pattern for before/after params did not match the given file: {p}"
                )));
            };
            (m.start(), m.end())
        }
        None => (0, content.len()),
    };
    let section = &content[start..end];
    let re: Regex = compile(&format!("(?m){}", e.regexp))?;
    let mut out = Vec::with_capacity(section.len());
    let mut last = 0;
    let mut count = 0;
    for caps in re.captures_iter(section) {
        let Some(m) = caps.get(0) else { continue };
        out.extend_from_slice(&section[last..m.start()]);
        out.extend(expand(e.replace, &re, &caps)?);
        last = m.end();
        count += 1;
    }
    out.extend_from_slice(&section[last..]);
    if count == 0 || out == section {
        return Ok(Outcome::Replaced(content.to_vec(), 0));
    }
    let mut new = content[..start].to_vec();
    new.extend(out);
    new.extend_from_slice(&content[end..]);
    Ok(Outcome::Replaced(new, count))
}

planned_module!(Replace, "replace", PARAMS, plan);

fn edit(args: &Args) -> Edit<'_> {
    Edit {
        regexp: args.str("regexp").unwrap_or_default(),
        replace: args.str("replace").unwrap_or_default(),
        after: args.str("after"),
        before: args.str("before"),
    }
}

/// Reads the file, edits it here, and writes it back as a second script when it changed.
fn plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let path = args.str("path").unwrap_or_default().to_string();
    textfile::check_validate(args)?;
    textfile::octal_mode(args)?;
    // Patterns are checked before the host is asked.
    replace(b"", &edit(args)).map_err(ModuleError::Args)?;
    let (check, diff) = (ctx.check, ctx.diff);
    let args = args.clone();
    let script = textfile::read_script(&path, false);
    Ok(Plan::Remote(Script::chained(script, None, move |out| {
        let cur = textfile::parse_read(&out, "replace", &path)?;
        let Some(content) = cur.content.as_deref() else {
            return Err(textfile::missing(
                "replace",
                &path,
                format!("Path {path} does not exist !"),
            ));
        };
        let backup = args.bool("backup", false);
        let (new, msg) = match replace(content, &edit(&args)).map_err(ModuleError::Args)? {
            Outcome::NoSection(msg) => {
                let mut r = ModuleResult::changed(false);
                r.msg = Some(msg);
                return Ok(Next::Done(Box::new(r)));
            }
            Outcome::Replaced(new, 0) => (new, String::new()),
            Outcome::Replaced(new, n) => (new, format!("{n} replacements made")),
        };
        textfile::write_next(check, diff, &args, &cur, new, &msg, move |r, file| {
            if backup && let Some(f) = file {
                r.data.insert("backup_file".into(), f.into());
            }
        })
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(content: &str, e: Edit<'_>) -> (String, usize) {
        match replace(content.as_bytes(), &e).unwrap() {
            Outcome::Replaced(new, n) => (String::from_utf8(new).unwrap(), n),
            Outcome::NoSection(m) => (m, usize::MAX),
        }
    }

    #[test]
    fn every_match_with_python_backrefs() {
        // Ansible's example: old.host.name -> new.host.name everywhere.
        let e = Edit {
            regexp: r"(\s+)old\.host\.name(\s+.*)?$",
            replace: r"\1new.host.name\2",
            ..Edit::default()
        };
        let hosts = "127.0.0.1 localhost\n10.0.0.1 old.host.name alias\n10.0.0.2 old.host.name\n";
        let (out, n) = run(hosts, e);
        assert_eq!(
            out,
            "127.0.0.1 localhost\n10.0.0.1 new.host.name alias\n10.0.0.2 new.host.name\n"
        );
        assert_eq!(n, 2);
        assert_eq!(run(&out, e), (out.clone(), 0));
        let e = Edit {
            regexp: r"^(?P<k>\w+) = (?P<v>.*)$",
            replace: r"\g<k>=\g<v>",
            ..Edit::default()
        };
        assert_eq!(run("a = 1\nb = 2\n", e), ("a=1\nb=2\n".into(), 2));
        // An unknown group is an error, as in Python.
        assert!(replace(b"a = 1\n", &Edit { replace: r"\3", ..e }).is_err());
    }

    #[test]
    fn a_replacement_equal_to_the_match_is_no_change() {
        let e = Edit {
            regexp: "^(Listen) 80$",
            replace: r"\1 80",
            ..Edit::default()
        };
        assert_eq!(run("Listen 80\n", e), ("Listen 80\n".into(), 0));
    }

    #[test]
    fn after_and_before_limit_the_section() {
        let text = "x=1\n<VirtualHost>\nx=1\n</VirtualHost>\nx=1\n";
        let e = Edit {
            regexp: "^x=1$",
            replace: "x=2",
            after: Some("<VirtualHost>"),
            before: Some("</VirtualHost>"),
        };
        assert_eq!(
            run(text, e),
            ("x=1\n<VirtualHost>\nx=2\n</VirtualHost>\nx=1\n".into(), 1)
        );
        let e = Edit { before: None, ..e };
        assert_eq!(
            run(text, e),
            ("x=1\n<VirtualHost>\nx=2\n</VirtualHost>\nx=2\n".into(), 2)
        );
        let e = Edit {
            after: None,
            before: Some("</VirtualHost>"),
            ..e
        };
        assert_eq!(
            run(text, e),
            ("x=2\n<VirtualHost>\nx=2\n</VirtualHost>\nx=1\n".into(), 2)
        );
        let e = Edit {
            after: Some("nomatch"),
            ..e
        };
        assert_eq!(
            run(text, e).0,
            "Pattern for before/after params did not match the given file: nomatch(?P<subsection>.*?)</VirtualHost>"
        );
    }

    #[test]
    fn empty_replace_deletes() {
        let e = Edit {
            regexp: "^#.*\n",
            ..Edit::default()
        };
        assert_eq!(run("#a\nb\n#c\n", e), ("b\n".into(), 2));
    }
}
