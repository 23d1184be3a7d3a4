//! `blockinfile`: a block of lines between two marker lines, inserted, updated or removed with
//! Ansible's rules. Read in one round trip, edited on the control node by [`edit`], written back
//! only when it changed (guarded by the checksum of what was read).

use super::lineinfile::compile;
use super::textfile;
use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Next, Param, Plan, Script};

/// `blockinfile`.
pub struct BlockInFile;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str)
        .required()
        .aliases(&["dest", "destfile", "name"]),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("marker", Kind::Str),
    Param::new("block", Kind::Str).aliases(&["content"]),
    Param::new("insertafter", Kind::Str),
    Param::new("insertbefore", Kind::Str),
    Param::new("create", Kind::Bool),
    Param::new("backup", Kind::Bool),
    Param::new("validate", Kind::Str),
    Param::new("marker_begin", Kind::Str),
    Param::new("marker_end", Kind::Str),
    Param::new("append_newline", Kind::Bool),
    Param::new("prepend_newline", Kind::Bool),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
];

/// The default marker line; `{mark}` becomes `marker_begin` / `marker_end`.
pub const DEFAULT_MARKER: &str = "# {mark} ANSIBLE MANAGED BLOCK";

/// One `blockinfile` call, as the pure editing function sees it.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The text between the markers; empty (or `present: false`) removes the block.
    pub block: &'a str,
    /// `state: present`.
    pub present: bool,
    /// Marker template, with `{mark}`.
    pub marker: &'a str,
    /// Replaces `{mark}` in the first marker.
    pub marker_begin: &'a str,
    /// Replaces `{mark}` in the last marker.
    pub marker_end: &'a str,
    /// `EOF` or a regular expression.
    pub insertafter: Option<&'a str>,
    /// `BOF` or a regular expression.
    pub insertbefore: Option<&'a str>,
    /// A blank line before the block, unless one is there.
    pub prepend_newline: bool,
    /// A blank line after the block, unless one is there.
    pub append_newline: bool,
}

impl Default for Block<'_> {
    fn default() -> Self {
        Self {
            block: "",
            present: true,
            marker: DEFAULT_MARKER,
            marker_begin: "BEGIN",
            marker_end: "END",
            insertafter: None,
            insertbefore: None,
            prepend_newline: false,
            append_newline: false,
        }
    }
}

/// Python's `bytes.splitlines(True)`: lines end at `\n`, `\r\n` or `\r`, which they keep.
pub(super) fn splitlines(content: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < content.len() {
        let end = match content[i] {
            b'\n' => i + 1,
            b'\r' if content.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        lines.push(content[start..end].to_vec());
        start = end;
        i = end;
    }
    if start < content.len() {
        lines.push(content[start..].to_vec());
    }
    lines
}

/// Ansible's `blockinfile` on the content of a file (`None`: it does not exist). Returns the
/// new content and Ansible's message (`""` when nothing changed).
pub fn edit(original: Option<&[u8]>, b: &Block<'_>) -> Result<(Vec<u8>, &'static str), String> {
    let mut lines = splitlines(original.unwrap_or_default());
    let (insertafter, insertbefore) = match (b.insertafter, b.insertbefore) {
        (None, None) => (Some("EOF"), None),
        other => other,
    };
    let insertre = match (insertafter, insertbefore) {
        (Some(a), _) if a != "EOF" => Some(compile(a)?),
        (_, Some(p)) if p != "BOF" => Some(compile(p)?),
        _ => None,
    };
    let marker0 = format!("{}\n", b.marker.replace("{mark}", b.marker_begin)).into_bytes();
    let marker1 = format!("{}\n", b.marker.replace("{mark}", b.marker_end)).into_bytes();
    let blocklines: Vec<Vec<u8>> = if b.present && !b.block.is_empty() {
        let mut text = b.block.as_bytes().to_vec();
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        std::iter::once(marker0.clone())
            .chain(splitlines(&text))
            .chain(std::iter::once(marker1.clone()))
            .collect()
    } else {
        Vec::new()
    };

    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let mut n0 = match (n0, n1) {
        (Some(a), Some(z)) if a < z => {
            lines.drain(a..=z);
            a
        }
        (Some(a), Some(z)) => {
            lines.drain(z..=a);
            z
        }
        _ => match &insertre {
            Some(re) => {
                let mut at = None;
                if is_multiline(re.as_str()) {
                    let text = original.unwrap_or_default();
                    if let Some(m) = re.find(text) {
                        let upto = if insertafter.is_some() { m.end() } else { m.start() };
                        at = Some(text[..upto].iter().filter(|&&c| c == b'\n').count());
                    }
                } else {
                    for (i, l) in lines.iter().enumerate() {
                        if re.is_match(l.strip_suffix(b"\n").unwrap_or(l)) {
                            at = Some(i);
                        }
                    }
                }
                match at {
                    None => lines.len(),
                    Some(i) if insertafter.is_some() => i + 1,
                    Some(i) => i,
                }
            }
            None if insertbefore.is_some() => 0,
            None => lines.len(),
        },
    };
    n0 = n0.min(lines.len());
    if n0 > 0 && !lines[n0 - 1].ends_with(b"\n") {
        lines[n0 - 1].push(b'\n');
    }
    if b.prepend_newline && b.present && n0 != 0 && lines[n0 - 1] != b"\n" {
        lines.insert(n0, b"\n".to_vec());
        n0 += 1;
    }
    let after = n0 + blocklines.len();
    lines.splice(n0..n0, blocklines.iter().cloned());
    if b.append_newline && b.present && after < lines.len() && lines[after] != b"\n" {
        lines.insert(after, b"\n".to_vec());
    }
    let result = lines.concat();
    let msg = match original {
        Some(o) if o == result.as_slice() => "",
        None => "File created",
        Some(_) if blocklines.is_empty() => "Block removed",
        Some(_) => "Block inserted",
    };
    Ok((result, msg))
}

/// Python applies a multi-line `insertafter`/`insertbefore` to the whole file: the pattern's
/// leading inline flags say so (`(?m)`, `(?ms)`).
fn is_multiline(pattern: &str) -> bool {
    pattern
        .strip_prefix("(?")
        .and_then(|r| r.split_once(')'))
        .is_some_and(|(flags, _)| !flags.contains(':') && flags.contains('m'))
}

planned_module!(BlockInFile, "blockinfile", PARAMS, plan);

fn block(args: &Args) -> Block<'_> {
    Block {
        block: args.str("block").unwrap_or(""),
        present: args.str("state").unwrap_or("present") == "present",
        marker: args.str("marker").unwrap_or(DEFAULT_MARKER),
        marker_begin: args.str("marker_begin").unwrap_or("BEGIN"),
        marker_end: args.str("marker_end").unwrap_or("END"),
        insertafter: args.str("insertafter"),
        insertbefore: args.str("insertbefore"),
        prepend_newline: args.bool("prepend_newline", false),
        append_newline: args.bool("append_newline", false),
    }
}

/// Reads the file, edits it here, and writes it back as a second script when it changed.
fn plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let path = args.str("path").unwrap_or_default().to_string();
    if args.get("insertafter").is_some() && args.get("insertbefore").is_some() {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: insertbefore|insertafter".into(),
        ));
    }
    textfile::check_validate(args)?;
    textfile::octal_mode(args)?;
    // Fail on a bad pattern before anything is read.
    edit(Some(b""), &block(args)).map_err(ModuleError::Args)?;
    let create = args.bool("create", false);
    let (check, diff) = (ctx.check, ctx.diff);
    let args = args.clone();
    let script = textfile::read_script(&path, create && !check);
    Ok(Plan::Remote(Script::chained(script, None, move |out| {
        let cur = textfile::parse_read(&out, "blockinfile", &path)?;
        let spec = block(&args);
        if cur.content.is_none() {
            if !spec.present {
                let mut r = ModuleResult::changed(false);
                r.msg = Some(format!("File {path} not present"));
                return Ok(Next::Done(Box::new(r)));
            }
            if !create {
                return Err(ModuleError::Remote(crate::transport::Failure {
                    message: format!("Path {path} does not exist !"),
                    command: format!("blockinfile: read {path}"),
                    rc: Some(257),
                    ..Default::default()
                }));
            }
        }
        let (new, msg) = edit(cur.content.as_deref(), &spec).map_err(ModuleError::Args)?;
        textfile::write_next(check, diff, &args, &cur, new, msg, |r, backup| {
            if let Some(b) = backup {
                r.data.insert("backup_file".into(), b.into());
            }
        })
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(original: Option<&str>, b: Block<'_>) -> (String, &'static str) {
        let (out, msg) = edit(original.map(str::as_bytes), &b).unwrap();
        (String::from_utf8(out).unwrap(), msg)
    }

    const SSHD: &str = "Port 22\nPermitRootLogin no\nMatch User git\n  X11Forwarding no\n";

    #[test]
    fn inserts_at_end_then_updates_in_place_then_removes() {
        // Ansible's example: a Match block appended to sshd_config.
        let b = Block {
            block: "Match User ansible-agent\nPasswordAuthentication no",
            ..Block::default()
        };
        let (out, msg) = run(Some(SSHD), b);
        assert_eq!(
            out,
            format!(
                "{SSHD}# BEGIN ANSIBLE MANAGED BLOCK\nMatch User ansible-agent\nPasswordAuthentication no\n# END ANSIBLE MANAGED BLOCK\n"
            )
        );
        assert_eq!(msg, "Block inserted");
        assert_eq!(run(Some(&out), b), (out.clone(), ""));
        // New block text: replaced where it is.
        let b2 = Block {
            block: "Match User ansible-agent\nPasswordAuthentication yes\n",
            ..b
        };
        let (out2, msg) = run(Some(&out), b2);
        assert_eq!(msg, "Block inserted");
        assert!(out2.contains("PasswordAuthentication yes\n# END"));
        assert!(out2.starts_with(SSHD));
        // state=absent and an empty block both remove it.
        let gone = Block { present: false, ..b };
        assert_eq!(run(Some(&out2), gone), (SSHD.into(), "Block removed"));
        let empty = Block { block: "", ..b };
        assert_eq!(run(Some(&out2), empty), (SSHD.into(), "Block removed"));
        assert_eq!(run(Some(SSHD), gone), (SSHD.into(), ""));
    }

    #[test]
    fn custom_markers_and_insertbefore() {
        // Ansible's example: HTML markers, inserted before </body>.
        let b = Block {
            block: "<h1>Welcome</h1>",
            marker: "<!-- {mark} ANSIBLE MANAGED BLOCK -->",
            insertafter: Some("<body>"),
            ..Block::default()
        };
        let html = "<html>\n<body>\n</body>\n</html>\n";
        assert_eq!(
            run(Some(html), b).0,
            "<html>\n<body>\n<!-- BEGIN ANSIBLE MANAGED BLOCK -->\n<h1>Welcome</h1>\n<!-- END ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n"
        );
        let b = Block {
            insertafter: None,
            insertbefore: Some("</body>"),
            marker_begin: "start",
            marker_end: "stop",
            ..b
        };
        assert_eq!(
            run(Some(html), b).0,
            "<html>\n<body>\n<!-- start ANSIBLE MANAGED BLOCK -->\n<h1>Welcome</h1>\n<!-- stop ANSIBLE MANAGED BLOCK -->\n</body>\n</html>\n"
        );
        let b = Block {
            insertbefore: Some("BOF"),
            ..b
        };
        assert!(run(Some(html), b).0.starts_with("<!-- start"));
        // A pattern that matches nothing: end of file.
        let b = Block {
            insertbefore: Some("^nothing"),
            ..b
        };
        assert!(run(Some(html), b).0.starts_with(html));
    }

    #[test]
    fn creates_and_handles_missing_newlines() {
        let b = Block {
            block: "x",
            ..Block::default()
        };
        assert_eq!(
            run(None, b),
            (
                "# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\n".into(),
                "File created"
            )
        );
        assert_eq!(
            run(Some("a"), b).0,
            "a\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\n"
        );
    }

    #[test]
    fn blank_lines_around_the_block() {
        let b = Block {
            block: "x",
            insertafter: Some("^a"),
            prepend_newline: true,
            append_newline: true,
            ..Block::default()
        };
        let (out, _) = run(Some("a\nb\n"), b);
        assert_eq!(
            out,
            "a\n\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\n\nb\n"
        );
        assert_eq!(run(Some(&out), b), (out.clone(), ""));
    }

    #[test]
    fn multiline_insertafter_counts_newlines() {
        let b = Block {
            block: "x",
            insertafter: Some(r"(?m)^b$"),
            ..Block::default()
        };
        assert_eq!(
            run(Some("a\nb\nc\n"), b).0,
            "a\nb\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\nc\n"
        );
    }

    #[test]
    fn splits_lines_like_python() {
        assert_eq!(
            splitlines(b"a\r\nb\rc\nd"),
            vec![b"a\r\n".to_vec(), b"b\r".to_vec(), b"c\n".to_vec(), b"d".to_vec()]
        );
        assert!(splitlines(b"").is_empty());
    }
}
