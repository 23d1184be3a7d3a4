//! `ini_file` (community.general): one option of an INI file set, added or removed (MySQL's
//! `my.cnf`, PHP's and systemd's drop-ins), as roles write it. The file is read in one round
//! trip, edited on the control node by [`edit`] line for line as Ansible's module edits it
//! (commented-out options reused, repeated options, `exclusive`, `section_has_values`), and
//! written back only when it changed.

use super::textfile;
use super::{Args, Ctx, Kind, ModuleError, Param, Plan, Script};
use regex::Regex;
use serde_json::Value as Json;

/// `ini_file`.
pub struct IniFile;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str).required().aliases(&["dest"]),
    Param::new("section", Kind::Str),
    Param::new("section_has_values", Kind::Any),
    Param::new("option", Kind::Str),
    Param::new("value", Kind::Str),
    Param::new("values", Kind::List),
    Param::new("backup", Kind::Bool),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("exclusive", Kind::Bool),
    Param::new("no_extra_spaces", Kind::Bool),
    Param::new("ignore_spaces", Kind::Bool),
    Param::new("allow_no_value", Kind::Bool),
    Param::new("modify_inactive_option", Kind::Bool),
    Param::new("create", Kind::Bool),
    Param::new("follow", Kind::Bool),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
];

/// A `section_has_values` condition: the section is the one holding `option` with one of
/// `values` (any value when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// The option that must be in the section.
    pub option: String,
    /// The values it may have.
    pub values: Vec<String>,
}

/// What one `ini_file` call asks for.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    /// The section; `None` for the lines before the first section.
    pub section: Option<String>,
    /// Conditions that pick among sections of the same name.
    pub section_has_values: Vec<Condition>,
    /// The option; `None` with `absent` removes the whole section.
    pub option: Option<String>,
    /// Its values (one for `value`), duplicates dropped.
    pub values: Vec<String>,
    /// `present` (true) or `absent`.
    pub present: bool,
    /// Other lines of the option are removed (default true).
    pub exclusive: bool,
    /// `option=value` rather than `option = value`.
    pub no_extra_spaces: bool,
    /// A line differing only in spaces around `=` is no change.
    pub ignore_spaces: bool,
    /// An option may stand without a value.
    pub allow_no_value: bool,
    /// A commented-out `#option = x` is reused for the option (default true).
    pub modify_inactive_option: bool,
}

/// The section Ansible's module puts around the lines before the first section (its name).
const FAKE_SECTION: &str = "ad01e11446efb704fcdbdb21f2c43757423d91c5";

/// The lines of `option`, with group 2 the comment sign (inactive) and group 8 the value.
struct Matcher {
    re: Option<Regex>,
}

impl Matcher {
    fn new(option: Option<&str>, inactive_too: bool) -> Result<Self, String> {
        let Some(option) = option else {
            return Ok(Self { re: None });
        };
        let comment = if inactive_too { "([#;]?)" } else { "()" };
        let lead = if inactive_too { "( |\\t)*" } else { "()" };
        // Python's `re.match` with `$` (end, or before the line's newline).
        let pattern = format!(
            "\\A{lead}{comment}( |\\t)*({})( |\\t)*(=|\\n?\\z)( |\\t)*(.*)",
            regex::escape(option)
        );
        Regex::new(&pattern)
            .map(|re| Self { re: Some(re) })
            .map_err(|e| format!("option `{option}`: {e}"))
    }

    /// The line's value (group 8) and comment sign, when the line is the option's.
    fn captures<'l>(&self, line: &'l str) -> Option<(&'l str, &'l str)> {
        let c = self.re.as_ref()?.captures(line)?;
        Some((c.get(2).map_or("", |m| m.as_str()), c.get(8).map_or("", |m| m.as_str())))
    }

    fn matches(&self, line: &str) -> bool {
        self.captures(line).is_some()
    }
}

/// The text after the edit, whether Ansible would call it changed, and Ansible's message.
pub fn edit(content: &str, e: &Edit) -> Result<(String, bool, &'static str), String> {
    let any = Matcher::new(e.option.as_deref(), true)?;
    let active = Matcher::new(e.option.as_deref(), false)?;
    let matcher = if e.modify_inactive_option { &any } else { &active };
    let blank_or_comment = Regex::new(r"\A[ \t]*([#;].*)?\n?\z").map_err(|e| e.to_string())?;
    let assignment = |o: &str, v: &str| {
        if e.no_extra_spaces {
            format!("{o}={v}\n")
        } else {
            format!("{o} = {v}\n")
        }
    };
    let mut values: Vec<String> = Vec::new();
    for v in &e.values {
        if !values.contains(v) {
            values.push(v.clone());
        }
    }
    // Python reads with universal newlines and a UTF-8 signature dropped.
    let text = content.strip_prefix('\u{feff}').unwrap_or(content);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let mut changed = false;
    if lines.is_empty() {
        lines.push("\n".into());
    }
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.push('\n');
        changed = true;
    }
    lines.insert(0, format!("[{FAKE_SECTION}]"));
    lines.push("[".into());
    let section = match e.section.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => FAKE_SECTION.to_string(),
    };
    let section_re =
        Regex::new(&format!(r"\A\[\s*{}\s*]", regex::escape(section.trim()))).map_err(|e| e.to_string())?;
    let conditions: Vec<(Matcher, &Vec<String>)> = e
        .section_has_values
        .iter()
        .map(|c| Ok((Matcher::new(Some(&c.option), true)?, &c.values)))
        .collect::<Result<_, String>>()?;
    let has_values = |section_lines: &[String]| {
        conditions.iter().all(|(m, vals)| {
            section_lines.iter().any(|l| {
                m.captures(l)
                    .is_some_and(|(_, v)| vals.is_empty() || vals.iter().any(|x| x == v))
            })
        })
    };
    let (mut within, mut start, mut end) = (false, 0, 0);
    for (i, line) in lines.iter().enumerate() {
        if within && line.starts_with('[') {
            if has_values(&lines[start..i]) {
                end = i;
                break;
            }
            within = false;
            start = 0;
            end = 0;
        }
        if section_re.is_match(line) {
            within = true;
            start = i;
        }
    }
    let after: Vec<String> = lines.split_off(end);
    let mut section_lines: Vec<String> = lines.split_off(start);
    let before = lines;
    let mut touched = vec![false; section_lines.len()];
    let mut msg = "OK";
    let mut no_value_present = false;
    let update = |section_lines: &mut Vec<String>,
                  touched: &mut Vec<bool>,
                  i: usize,
                  new: String,
                  changed: &mut bool,
                  msg: &mut &'static str| {
        let mut differs = None;
        if e.ignore_spaces
            && let Some((sign, old_value)) = any.captures(&section_lines[i])
            && sign.is_empty()
        {
            differs = Some(any.captures(&new).map(|(_, v)| v) != Some(old_value));
        }
        let differs = differs.unwrap_or(section_lines[i] != new);
        if differs {
            section_lines[i] = new;
            *changed = true;
            *msg = "option changed";
        }
        touched[i] = true;
    };
    let option = e.option.as_deref();
    if e.present
        && let Some(o) = option
    {
        for i in 0..section_lines.len() {
            let Some((_, value)) = matcher.captures(&section_lines[i]) else {
                continue;
            };
            let value = value.to_string();
            if !values.is_empty() && values.contains(&value) {
                let new = if value.is_empty() && e.allow_no_value {
                    no_value_present = true;
                    format!("{o}\n")
                } else {
                    assignment(o, &value)
                };
                update(&mut section_lines, &mut touched, i, new, &mut changed, &mut msg);
                if let Some(at) = values.iter().position(|v| *v == value) {
                    values.remove(at);
                }
            } else if values.is_empty() && e.allow_no_value {
                update(
                    &mut section_lines,
                    &mut touched,
                    i,
                    format!("{o}\n"),
                    &mut changed,
                    &mut msg,
                );
                no_value_present = true;
                break;
            }
        }
    }
    if e.present && e.exclusive && !e.allow_no_value {
        if let Some(o) = option
            && !values.is_empty()
        {
            for i in 0..section_lines.len() {
                if !touched[i] && matcher.matches(&section_lines[i]) {
                    let v = values.remove(0);
                    update(
                        &mut section_lines,
                        &mut touched,
                        i,
                        assignment(o, &v),
                        &mut changed,
                        &mut msg,
                    );
                    if values.is_empty() {
                        break;
                    }
                }
            }
        }
        // Every other line of the option goes (not the section's first line, as in Ansible).
        for i in (1..section_lines.len()).rev() {
            if !touched[i] && matcher.matches(&section_lines[i]) {
                section_lines.remove(i);
                touched.remove(i);
                changed = true;
                msg = "option changed";
            }
        }
    }
    if e.present {
        for i in (1..=section_lines.len()).rev() {
            if blank_or_comment.is_match(&section_lines[i - 1]) {
                continue;
            }
            if let Some(o) = option {
                if !values.is_empty() {
                    for v in values.iter().rev() {
                        section_lines.insert(i, assignment(o, v));
                    }
                    msg = "option added";
                    changed = true;
                } else if e.allow_no_value && !no_value_present {
                    section_lines.insert(i, format!("{o}\n"));
                    msg = "option added";
                    changed = true;
                }
            }
            break;
        }
    }
    if !e.present {
        match option {
            Some(_) if e.exclusive => {
                let kept: Vec<String> = section_lines.iter().filter(|l| !active.matches(l)).cloned().collect();
                if kept != section_lines {
                    changed = true;
                    msg = "option changed";
                    section_lines = kept;
                }
            }
            Some(_) if !values.is_empty() => {
                let kept: Vec<String> = section_lines
                    .iter()
                    .filter(|l| !active.captures(l).is_some_and(|(_, v)| values.iter().any(|x| x == v)))
                    .cloned()
                    .collect();
                if kept != section_lines {
                    changed = true;
                    msg = "option changed";
                    section_lines = kept;
                }
            }
            Some(_) => {}
            None => {
                if !section_lines.is_empty() {
                    section_lines.clear();
                    msg = "section removed";
                    changed = true;
                }
            }
        }
    }
    let mut all: Vec<String> = before;
    all.extend(section_lines);
    all.extend(after);
    if !all.is_empty() {
        all.remove(0);
    }
    all.pop();
    if !within && e.present {
        all.push(format!("[{section}]\n"));
        msg = "section and option added";
        for c in &e.section_has_values {
            if Some(c.option.as_str()) != option {
                if !c.values.is_empty() {
                    for v in &c.values {
                        all.push(assignment(&c.option, v));
                    }
                } else if e.allow_no_value {
                    all.push(format!("{}\n", c.option));
                }
            } else if !e.exclusive {
                for v in &c.values {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
            }
        }
        match option {
            Some(o) if !values.is_empty() => {
                for v in &values {
                    all.push(assignment(o, v));
                }
            }
            Some(o) if e.allow_no_value => all.push(format!("{o}\n")),
            _ => msg = "only section added",
        }
        changed = true;
    }
    Ok((all.concat(), changed, msg))
}

planned_module!(IniFile, "ini_file", PARAMS, plan);

fn text_list(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(a)) => a
            .iter()
            .filter(|x| !x.is_null())
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect(),
        Some(Json::Null) | None => Vec::new(),
        Some(Json::String(s)) => vec![s.clone()],
        Some(other) => vec![other.to_string()],
    }
}

/// The task's parameters as an [`Edit`], checked as Ansible checks them.
fn read_edit(args: &Args) -> Result<Edit, ModuleError> {
    let present = args.str("state").unwrap_or("present") == "present";
    let allow_no_value = args.bool("allow_no_value", false);
    let value = args.str("value");
    if value.is_some() && args.get("values").is_some_and(|v| !v.is_null()) {
        return Err(ModuleError::Args(
            "ini_file: parameters are mutually exclusive: value|values".into(),
        ));
    }
    let values = match value {
        Some(v) => vec![v.to_string()],
        None => text_list(args.get("values")),
    };
    if present && !allow_no_value && values.is_empty() {
        return Err(ModuleError::Args(
            "ini_file: Parameter 'value(s)' must be defined if state=present and allow_no_value=False.".into(),
        ));
    }
    let mut section_has_values = Vec::new();
    let conds = match args.get("section_has_values") {
        None | Some(Json::Null) => &Vec::new(),
        Some(Json::Array(conds)) => conds,
        Some(_) => {
            return Err(ModuleError::Args(
                "ini_file: `section_has_values` is a list of {option, value or values}".into(),
            ));
        }
    };
    {
        for c in conds {
            let Some(option) = c.get("option").and_then(Json::as_str) else {
                return Err(ModuleError::Args(
                    "ini_file: each of `section_has_values` needs an `option`".into(),
                ));
            };
            let values = match c.get("value") {
                Some(v) if !v.is_null() => text_list(Some(v)),
                _ => text_list(c.get("values")),
            };
            section_has_values.push(Condition {
                option: option.to_string(),
                values,
            });
        }
    }
    Ok(Edit {
        section: args.str("section").map(str::to_string),
        section_has_values,
        option: args.str("option").map(str::to_string),
        values,
        present,
        exclusive: args.bool("exclusive", true),
        no_extra_spaces: args.bool("no_extra_spaces", false),
        ignore_spaces: args.bool("ignore_spaces", false),
        allow_no_value,
        modify_inactive_option: args.bool("modify_inactive_option", true),
    })
}

/// Reads the file, edits it here, and writes it back as a second script when it changed.
fn plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let path = args.str("path").unwrap_or_default().to_string();
    textfile::octal_mode(args)?;
    let e = read_edit(args)?;
    // Bad options fail before the host is asked.
    edit("", &e).map_err(ModuleError::Args)?;
    let create = args.bool("create", true);
    let (check, diff) = (ctx.check, ctx.diff);
    let args = args.clone();
    let script = textfile::read_script(&path, create && !check);
    Ok(Plan::Remote(Script::chained(script, None, move |out| {
        let cur = textfile::parse_read(&out, "ini_file", &path)?;
        if cur.content.is_none() && !create {
            return Err(textfile::missing(
                "ini_file",
                &path,
                format!("Destination {path} does not exist!"),
            ));
        }
        let old = String::from_utf8_lossy(cur.content.as_deref().unwrap_or_default()).into_owned();
        let (new, _, msg) = edit(&old, &e).map_err(ModuleError::Args)?;
        let backup = args.bool("backup", false);
        let path_out = path.clone();
        textfile::write_next(check, diff, &args, &cur, new.into_bytes(), msg, move |r, file| {
            if r.msg.is_none() {
                r.msg = Some("OK".into());
            }
            r.data.insert("path".into(), path_out.into());
            if backup && let Some(f) = file {
                r.data.insert("backup_file".into(), f.into());
            }
        })
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(section: &str, option: &str, value: &str) -> Edit {
        Edit {
            section: Some(section.into()),
            option: Some(option.into()),
            values: vec![value.into()],
            present: true,
            exclusive: true,
            modify_inactive_option: true,
            ..Edit::default()
        }
    }

    #[test]
    fn options_are_replaced_added_and_sections_made() {
        let cnf = "[mysqld]\nport = 3306\n# bind-address = 127.0.0.1\n\n[client]\nport = 3306\n";
        let (out, changed, msg) = edit(cnf, &set("mysqld", "bind-address", "0.0.0.0")).unwrap();
        assert_eq!(
            out,
            "[mysqld]\nport = 3306\nbind-address = 0.0.0.0\n\n[client]\nport = 3306\n"
        );
        assert!(changed);
        assert_eq!(msg, "option changed");
        assert_eq!(
            edit(&out, &set("mysqld", "bind-address", "0.0.0.0")).unwrap(),
            (out.clone(), false, "OK")
        );
        let (added, _, msg) = edit(&out, &set("mysqld", "max_connections", "200")).unwrap();
        assert_eq!(
            added,
            "[mysqld]\nport = 3306\nbind-address = 0.0.0.0\nmax_connections = 200\n\n[client]\nport = 3306\n"
        );
        assert_eq!(msg, "option added");
        let (made, _, msg) = edit("a = 1", &set("new", "x", "y")).unwrap();
        assert_eq!(made, "a = 1\n[new]\nx = y\n");
        assert_eq!(msg, "section and option added");
    }

    #[test]
    fn absent_removes_the_option_or_the_section() {
        let text = "[a]\nx = 1\ny = 2\n[b]\nx = 3\n";
        let mut e = set("a", "x", "1");
        e.present = false;
        assert_eq!(edit(text, &e).unwrap().0, "[a]\ny = 2\n[b]\nx = 3\n");
        e.option = None;
        assert_eq!(
            edit(text, &e).unwrap(),
            ("[b]\nx = 3\n".into(), true, "section removed")
        );
    }
}
