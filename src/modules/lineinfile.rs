//! `lineinfile`: makes sure one line is in a file (or is not), with Ansible's rules for where it
//! goes. The file is read in one round trip, edited on the control node by the pure functions
//! below, and written back only when it changed (guarded by the checksum of what was read).

use super::textfile;
use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Next, Param, Plan, Script};
use regex::bytes::{Captures, Regex};

/// `lineinfile`.
pub struct LineInFile;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str)
        .required()
        .aliases(&["dest", "destfile", "name"]),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("regexp", Kind::Str).aliases(&["regex"]),
    Param::new("search_string", Kind::Str),
    Param::new("line", Kind::Str).aliases(&["value"]),
    Param::new("insertafter", Kind::Str),
    Param::new("insertbefore", Kind::Str),
    Param::new("backrefs", Kind::Bool),
    Param::new("create", Kind::Bool),
    Param::new("backup", Kind::Bool),
    Param::new("firstmatch", Kind::Bool),
    Param::new("validate", Kind::Str),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
];

/// What `state: present` looks for and where it puts the line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Present<'a> {
    /// The line (without its newline).
    pub line: &'a str,
    /// Lines matching it are replaced (the last one, or the first with `firstmatch`).
    pub regexp: Option<&'a Regex>,
    /// Lines containing it are replaced, like `regexp` but literal.
    pub search_string: Option<&'a str>,
    /// `EOF`, `BOF` or a regular expression.
    pub insertafter: Option<&'a str>,
    /// `BOF` or a regular expression.
    pub insertbefore: Option<&'a str>,
    /// `line` holds `\1`, `\g<name>` references to `regexp`'s groups; no match, no change.
    pub backrefs: bool,
    /// Use the first match of `regexp`/`insertafter`/`insertbefore` instead of the last.
    pub firstmatch: bool,
}

/// The lines of a file as Python's `readlines()` gives them: each with its `\n`.
fn readlines(content: &[u8]) -> Vec<Vec<u8>> {
    content.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// A line without trailing `\r`/`\n` characters (Python's `rstrip(b'\r\n')`).
fn rstrip(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// What a pattern is searched in: the line without its final `\n`, so `$` matches where
/// Python's `$` does (before a trailing newline).
fn subject(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Expands a Python replacement template (`\1`, `\g<1>`, `\g<name>`, `\n`, `\\`) with the
/// groups of a match, as `re.Match.expand` does; groups that did not take part are empty.
pub fn expand(template: &str, re: &Regex, caps: &Captures<'_>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = template.as_bytes();
    let mut i = 0;
    let group = |out: &mut Vec<u8>, m: Option<regex::bytes::Match<'_>>| {
        if let Some(m) = m {
            out.extend_from_slice(m.as_bytes());
        }
    };
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'0'..=b'9' => {
                let mut n = usize::from(c - b'0');
                if i < b.len() && b[i].is_ascii_digit() {
                    n = n * 10 + usize::from(b[i] - b'0');
                    i += 1;
                }
                if n >= caps.len() {
                    return Err(format!("invalid group reference {n} in `{template}`"));
                }
                group(&mut out, caps.get(n));
            }
            b'g' => {
                let rest = &template[i..];
                let name = rest
                    .strip_prefix('<')
                    .and_then(|r| r.split_once('>'))
                    .map(|(n, _)| n)
                    .ok_or_else(|| format!("missing group name after \\g in `{template}`"))?;
                i += name.len() + 2;
                match name.parse::<usize>() {
                    Ok(n) if n < caps.len() => group(&mut out, caps.get(n)),
                    Ok(n) => return Err(format!("invalid group reference {n} in `{template}`")),
                    Err(_) if re.capture_names().any(|n| n == Some(name)) => {
                        group(&mut out, caps.name(name));
                    }
                    Err(_) => {
                        return Err(format!("unknown group name `{name}` in `{template}`"));
                    }
                }
            }
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'\\' => out.push(b'\\'),
            c if c.is_ascii_alphabetic() => {
                return Err(format!("bad escape \\{} in `{template}`", char::from(c)));
            }
            c => {
                out.push(b'\\');
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// Ansible's `state: present` on the content of a file (empty when it does not exist yet).
/// Returns the new content and Ansible's message (`""` when nothing changed).
pub fn present(content: &[u8], p: &Present<'_>) -> Result<(Vec<u8>, &'static str), String> {
    let mut lines = readlines(content);
    let (insertafter, insertbefore) = match (p.insertafter, p.insertbefore) {
        (None, None) => (Some("EOF"), None),
        other => other,
    };
    let bre_ins = match (insertafter, insertbefore) {
        (Some(a), _) if a != "BOF" && a != "EOF" => Some(compile(a)?),
        (_, Some(b)) if b != "BOF" => Some(compile(b)?),
        _ => None,
    };
    let line = p.line.as_bytes();
    let mut index: [Option<usize>; 2] = [None, None];
    let mut matched = false;

    // 1. The last (or first) line matching `regexp`, 2. or containing `search_string`.
    if let Some(re) = p.regexp {
        for (n, l) in lines.iter().enumerate() {
            if re.is_match(subject(l)) {
                index[0] = Some(n);
                matched = true;
                if p.firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(s) = p.search_string {
        for (n, l) in lines.iter().enumerate() {
            if contains(l, s.as_bytes()) {
                index[0] = Some(n);
                matched = true;
                if p.firstmatch {
                    break;
                }
            }
        }
    }
    // 3. No match: the line itself, and where `insertafter`/`insertbefore` point.
    if !matched {
        for (n, l) in lines.iter().enumerate() {
            if rstrip(l) == line {
                index[0] = Some(n);
            } else if bre_ins.as_ref().is_some_and(|re| re.is_match(subject(l))) {
                if insertafter.is_some() {
                    index[1] = Some(n + 1);
                    if p.firstmatch {
                        break;
                    }
                }
                if insertbefore.is_some() {
                    index[1] = Some(n);
                    if p.firstmatch {
                        break;
                    }
                }
            }
        }
    }
    let with_nl = |l: &[u8]| {
        let mut v = l.to_vec();
        v.push(b'\n');
        v
    };
    let ends_with_newline = |lines: &[Vec<u8>]| lines.last().is_none_or(|l| matches!(l.last(), Some(b'\n' | b'\r')));
    let msg;
    if let Some(i0) = index[0] {
        let mut new_line = match (p.backrefs, matched, p.regexp) {
            (true, true, Some(re)) => {
                let caps = re
                    .captures(subject(&lines[i0]))
                    .ok_or("the matched line no longer matches")?;
                expand(p.line, re, &caps)?
            }
            _ => line.to_vec(),
        };
        if !new_line.ends_with(b"\n") {
            new_line.push(b'\n');
        }
        if lines[i0] != new_line {
            lines[i0] = new_line;
            msg = "line replaced";
        } else {
            msg = "";
        }
    } else if p.backrefs {
        // Without a match there is nothing to fill the references with: no change.
        msg = "";
    } else if insertbefore == Some("BOF") || insertafter == Some("BOF") {
        lines.insert(0, with_nl(line));
        msg = "line added";
    } else if insertafter == Some("EOF") || index[1].is_none() {
        if !ends_with_newline(&lines) {
            lines.push(b"\n".to_vec());
        }
        lines.push(with_nl(line));
        msg = "line added";
    } else if let (Some(_), Some(i1)) = (insertafter, index[1]) {
        if lines.len() == i1 {
            if rstrip(&lines[i1 - 1]) != line {
                // Ansible appends right after a last line that lacks its newline, gluing the two
                // together (and adding again on every run); the separator is added first here.
                if !ends_with_newline(&lines) {
                    lines.push(b"\n".to_vec());
                }
                lines.push(with_nl(line));
                msg = "line added";
            } else {
                msg = "";
            }
        } else if rstrip(&lines[i1]) != line {
            lines.insert(i1, with_nl(line));
            msg = "line added";
        } else {
            msg = "";
        }
    } else {
        let i1 = index[1].unwrap_or(0);
        lines.insert(i1, with_nl(line));
        msg = "line added";
    }
    Ok((lines.concat(), msg))
}

/// What `state: absent` removes: lines matching `regexp`, else containing `search_string`,
/// else equal to `line`.
#[derive(Debug, Clone, Copy)]
pub enum Absent<'a> {
    /// Lines the expression matches.
    Regexp(&'a Regex),
    /// Lines containing the text.
    Search(&'a str),
    /// Lines equal to it (trailing `\r`/`\n` ignored).
    Line(&'a str),
}

/// Ansible's `state: absent`: the new content and how many lines were removed.
pub fn absent(content: &[u8], what: Absent<'_>) -> (Vec<u8>, usize) {
    let mut found = 0;
    let kept: Vec<Vec<u8>> = readlines(content)
        .into_iter()
        .filter(|l| {
            let hit = match what {
                Absent::Regexp(re) => re.is_match(subject(l)),
                Absent::Search(s) => contains(l, s.as_bytes()),
                Absent::Line(s) => rstrip(l) == s.as_bytes(),
            };
            found += usize::from(hit);
            !hit
        })
        .collect();
    (kept.concat(), found)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A Python regular expression as the `regex` crate reads it.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&pattern.replace(r"\Z", r"\z")).map_err(|e| format!("invalid regular expression `{pattern}`: {e}"))
}

planned_module!(LineInFile, "lineinfile", PARAMS, plan);

/// Reads the file, edits it here, and writes it back as a second script when it changed.
fn plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let path = args.str("path").unwrap_or_default().to_string();
    let present_state = args.str("state").unwrap_or("present") == "present";
    for (a, b) in [
        ("insertbefore", "insertafter"),
        ("regexp", "search_string"),
        ("backrefs", "search_string"),
    ] {
        let given = |k: &str| match args.get(k) {
            Some(serde_json::Value::Bool(v)) => *v,
            Some(_) => true,
            None => false,
        };
        if given(a) && given(b) {
            return Err(ModuleError::Args(format!("parameters are mutually exclusive: {a}|{b}")));
        }
    }
    textfile::check_validate(args)?;
    textfile::octal_mode(args)?;
    let regexp = args.str("regexp").map(compile).transpose().map_err(ModuleError::Args)?;
    let create = args.bool("create", false);
    let (check, diff) = (ctx.check, ctx.diff);
    let args = args.clone();
    if present_state {
        if args.bool("backrefs", false) && regexp.is_none() {
            return Err(ModuleError::Args("regexp is required with backrefs=true".into()));
        }
        if args.str("line").is_none() {
            return Err(ModuleError::Args("line is required with state=present".into()));
        }
        let script = textfile::read_script(&path, create && !check);
        return Ok(Plan::Remote(Script::chained(script, None, move |out| {
            let cur = textfile::parse_read(&out, "lineinfile", &path)?;
            if cur.content.is_none() && !create {
                return Err(textfile::missing(
                    "lineinfile",
                    &path,
                    format!("Destination {path} does not exist !"),
                ));
            }
            let spec = Present {
                line: args.str("line").unwrap_or_default(),
                regexp: regexp.as_ref(),
                search_string: args.str("search_string"),
                insertafter: args.str("insertafter"),
                insertbefore: args.str("insertbefore"),
                backrefs: args.bool("backrefs", false),
                firstmatch: args.bool("firstmatch", false),
            };
            let (new, msg) = present(cur.content.as_deref().unwrap_or_default(), &spec).map_err(ModuleError::Args)?;
            if cur.content.is_none() && msg.is_empty() {
                // `backrefs` without a match on a file that does not exist: nothing to do.
                return Ok(Next::Done(Box::new(ModuleResult::changed(false))));
            }
            textfile::write_next(check, diff, &args, &cur, new, msg, |r, backup| {
                r.data.insert("backup".into(), backup.unwrap_or_default().into());
            })
        })));
    }
    if regexp.is_none() && args.str("search_string").is_none() && args.str("line").is_none() {
        return Err(ModuleError::Args(
            "one of line, search_string, or regexp is required with state=absent".into(),
        ));
    }
    let script = textfile::read_script(&path, false);
    Ok(Plan::Remote(Script::chained(script, None, move |out| {
        let cur = textfile::parse_read(&out, "lineinfile", &path)?;
        let Some(content) = cur.content.as_deref() else {
            let mut r = ModuleResult::changed(false);
            r.msg = Some("file not present".into());
            return Ok(Next::Done(Box::new(r)));
        };
        let what = match (regexp.as_ref(), args.str("search_string"), args.str("line")) {
            (Some(re), _, _) => Absent::Regexp(re),
            (None, Some(s), _) => Absent::Search(s),
            (None, None, Some(l)) => Absent::Line(l),
            (None, None, None) => return Err(ModuleError::Args("nothing to remove".into())),
        };
        let (new, found) = absent(content, what);
        let msg = if found > 0 {
            format!("{found} line(s) removed")
        } else {
            String::new()
        };
        textfile::write_next(check, diff, &args, &cur, new, &msg, move |r, backup| {
            r.data.insert("found".into(), found.into());
            r.data.insert("backup".into(), backup.unwrap_or_default().into());
        })
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        compile(p).unwrap()
    }

    fn run(content: &str, p: Present<'_>) -> (String, &'static str) {
        let (out, msg) = present(content.as_bytes(), &p).unwrap();
        (String::from_utf8(out).unwrap(), msg)
    }

    const SELINUX: &str = "# comment\nSELINUX=disabled\nSELINUXTYPE=targeted\n";

    #[test]
    fn regexp_replaces_the_last_match() {
        // Ansible's example: "Ensure SELinux is set to enforcing mode".
        let r = re("^SELINUX=");
        let p = Present {
            line: "SELINUX=enforcing",
            regexp: Some(&r),
            ..Present::default()
        };
        let (out, msg) = run(SELINUX, p);
        assert_eq!(out, "# comment\nSELINUX=enforcing\nSELINUXTYPE=targeted\n");
        assert_eq!(msg, "line replaced");
        // Idempotent.
        assert_eq!(run(&out, p), (out.clone(), ""));
        // The last matching line is the one replaced; `firstmatch` takes the first.
        let r = re("^port");
        let p = Present {
            line: "port 22",
            regexp: Some(&r),
            ..Present::default()
        };
        assert_eq!(run("port 1\nx\nport 2\n", p).0, "port 1\nx\nport 22\n");
        let p = Present { firstmatch: true, ..p };
        assert_eq!(run("port 1\nx\nport 2\n", p).0, "port 22\nx\nport 2\n");
    }

    #[test]
    fn regexp_without_match_appends_unless_the_line_is_there() {
        let r = re("^Listen ");
        let p = Present {
            line: "Listen 8080",
            regexp: Some(&r),
            ..Present::default()
        };
        assert_eq!(run("a\nb", p), ("a\nb\nListen 8080\n".into(), "line added"));
        assert_eq!(run("", p), ("Listen 8080\n".into(), "line added"));
        // A regexp that does not match the line itself: still idempotent.
        let r = re("^#Listen ");
        let p = Present {
            line: "Listen 8080",
            regexp: Some(&r),
            ..Present::default()
        };
        assert_eq!(run("Listen 8080\n", p), ("Listen 8080\n".into(), ""));
    }

    #[test]
    fn insertafter_and_insertbefore_regex() {
        // Ansible's example: Listen 8080 after "^#Listen ".
        let r = re("^Listen ");
        let p = Present {
            line: "Listen 8080",
            regexp: Some(&r),
            insertafter: Some("^#Listen "),
            ..Present::default()
        };
        let conf = "ServerRoot x\n#Listen 12.34.56.78:80\n#Listen 80\nUser www\n";
        let (out, msg) = run(conf, p);
        assert_eq!(
            out,
            "ServerRoot x\n#Listen 12.34.56.78:80\n#Listen 80\nListen 8080\nUser www\n"
        );
        assert_eq!(msg, "line added");
        assert_eq!(run(&out, p).1, "");
        // firstmatch: after the first match.
        let p2 = Present { firstmatch: true, ..p };
        assert_eq!(
            run(conf, p2).0,
            "ServerRoot x\n#Listen 12.34.56.78:80\nListen 8080\n#Listen 80\nUser www\n"
        );
        // Ansible's example: insertbefore a regex.
        let r = re("^# port for http");
        let p = Present {
            line: "# port for http by default",
            regexp: Some(&r),
            insertbefore: Some("^www.*80/tcp"),
            ..Present::default()
        };
        let services = "ssh 22/tcp\nwww 80/tcp http\nx 81/tcp\n";
        assert_eq!(
            run(services, p).0,
            "ssh 22/tcp\n# port for http by default\nwww 80/tcp http\nx 81/tcp\n"
        );
        let once = run(services, p).0;
        assert_eq!(run(&once, p), (once.clone(), ""));
        // Nothing matches insertafter: end of file.
        let p = Present {
            line: "z",
            insertafter: Some("^nomatch"),
            ..Present::default()
        };
        assert_eq!(run("a\n", p).0, "a\nz\n");
        // After the last line, which lacks its newline.
        let p = Present {
            line: "z",
            insertafter: Some("^b"),
            ..Present::default()
        };
        assert_eq!(run("a\nb", p).0, "a\nb\nz\n");
        assert_eq!(run("a\nb\nz\n", p).1, "");
    }

    #[test]
    fn bof_and_eof() {
        let p = Present {
            line: "first",
            insertbefore: Some("BOF"),
            ..Present::default()
        };
        assert_eq!(run("a\n", p), ("first\na\n".into(), "line added"));
        assert_eq!(run("a\nfirst\n", p).1, "");
        let p = Present {
            line: "last",
            insertafter: Some("EOF"),
            ..Present::default()
        };
        assert_eq!(run("a", p).0, "a\nlast\n");
    }

    #[test]
    fn backrefs() {
        // Ansible's example: keep the surrounding text of the JVM option.
        let r = re(r"^(.*)Xms(\d+)m(.*)$");
        let p = Present {
            line: r"\1Xms${xms}m\3",
            regexp: Some(&r),
            backrefs: true,
            ..Present::default()
        };
        assert_eq!(
            run("JAVA_OPTS=-Xms256m -Xmx1g\n", p).0,
            "JAVA_OPTS=-Xms${xms}m -Xmx1g\n"
        );
        // No match: no change at all (not even an append).
        assert_eq!(run("other\n", p), ("other\n".into(), ""));
        // \g<name> and \g<1>.
        let r = re(r"^(?P<key>\w+)=(.*)$");
        let p = Present {
            line: r"\g<key>=new # was \g<2>",
            regexp: Some(&r),
            backrefs: true,
            ..Present::default()
        };
        assert_eq!(run("a=old\n", p).0, "a=new # was old\n");
        let bad = Present { line: r"\9", ..p };
        assert!(present(b"a=old\n", &bad).is_err());
    }

    #[test]
    fn search_string_replaces_literally() {
        let p = Present {
            line: "PermitRootLogin no",
            search_string: Some("PermitRootLogin .*"),
            ..Present::default()
        };
        // Literal: `.*` is not a pattern, so nothing matches and the line is added.
        assert_eq!(run("PermitRootLogin yes\n", p).1, "line added");
        let p = Present {
            search_string: Some("PermitRootLogin"),
            ..p
        };
        assert_eq!(run("#x\nPermitRootLogin yes\n", p).0, "#x\nPermitRootLogin no\n");
    }

    #[test]
    fn exact_line_without_newline_gets_one() {
        let p = Present {
            line: "b",
            ..Present::default()
        };
        assert_eq!(run("a\nb", p), ("a\nb\n".into(), "line replaced"));
    }

    #[test]
    fn create_starts_from_an_empty_file() {
        let p = Present {
            line: "192.168.1.99 foo.lab.net foo",
            ..Present::default()
        };
        assert_eq!(run("", p), ("192.168.1.99 foo.lab.net foo\n".into(), "line added"));
    }

    #[test]
    fn absent_with_regexp_search_or_line() {
        // Ansible's example: remove every `^%wheel` line.
        let r = re("^%wheel");
        let content = b"root ALL\n%wheel ALL=(ALL) ALL\n%wheelers x\n";
        let (out, n) = absent(content, Absent::Regexp(&r));
        assert_eq!((out.as_slice(), n), (&b"root ALL\n"[..], 2));
        let (out, n) = absent(content, Absent::Search("ALL=(ALL)"));
        assert_eq!((out.as_slice(), n), (&b"root ALL\n%wheelers x\n"[..], 1));
        let (out, n) = absent(b"a\r\nb\na", Absent::Line("a"));
        assert_eq!((out.as_slice(), n), (&b"b\n"[..], 2));
        let (out, n) = absent(b"x\n", Absent::Line("a"));
        assert_eq!((out.as_slice(), n), (&b"x\n"[..], 0));
    }

    #[test]
    fn dollar_matches_before_the_newline_as_in_python() {
        let r = re("^b$");
        let p = Present {
            line: "B",
            regexp: Some(&r),
            ..Present::default()
        };
        assert_eq!(run("a\nb\nc\n", p).0, "a\nB\nc\n");
    }
}
