//! `sysctl`: a kernel parameter in a sysctl file (rewritten in Ansible's normalised `k=v`
//! form) and, with `sysctl_set`, live; the file is reloaded with `sysctl -p` after a change.
//! The live value and the file are read in one round trip; the decisions are Ansible's
//! (`ansible.posix.sysctl`), made here by [`decide`].

use super::textfile::{PUT_FILE, decode_text};
use super::{Args, Ctx, Diff, Kind, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use base64::Engine as _;
use serde_json::Value as Json;

/// `sysctl`: kernel tuning of the fleet (connection backlogs, keepalives, swappiness).
pub struct Sysctl;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required().aliases(&["key"]),
    Param::new("value", Kind::Str).aliases(&["val"]),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("reload", Kind::Bool),
    Param::new("sysctl_set", Kind::Bool),
    Param::new("ignoreerrors", Kind::Bool),
    Param::new("sysctl_file", Kind::Str),
];

/// Ansible's `_parse_value`: booleans as `1`/`0`, other text trimmed.
pub fn parse_value(v: &str) -> String {
    match v.to_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => "1".into(),
        "n" | "no" | "off" | "0" | "false" | "f" => "0".into(),
        _ => v.trim().to_string(),
    }
}

fn is_setting(line: &str) -> bool {
    !line.is_empty() && !line.starts_with(['#', ';']) && line.contains('=')
}

/// The file as Ansible reads and rewrites it: the value it holds for `name` (the last one),
/// and its text with every setting written `k=v`, later duplicates dropped, and `name` set to
/// `value` (or removed).
pub fn fix_file(text: &str, name: &str, value: Option<&str>) -> (Option<String>, String) {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut current = None;
    for l in lines.iter().filter(|l| is_setting(l)) {
        if let Some((k, v)) = l.split_once('=')
            && k.trim() == name
        {
            current = Some(v.trim().to_string());
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut out = String::new();
    for l in &lines {
        let Some((k, v)) = l.split_once('=').filter(|_| is_setting(l)) else {
            out.push_str(l);
            out.push('\n');
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if seen.contains(&k) {
            continue;
        }
        seen.push(k);
        if k != name {
            out.push_str(&format!("{k}={v}\n"));
        } else if let Some(value) = value {
            out.push_str(&format!("{k}={value}\n"));
        }
    }
    if let (false, Some(value)) = (seen.contains(&name), value) {
        out.push_str(&format!("{name}={value}\n"));
    }
    (current, out)
}

fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// What a task does, as Ansible's `process` decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// The task changes something.
    pub changed: bool,
    /// The file is rewritten.
    pub write_file: bool,
    /// The live value is set.
    pub set_proc: bool,
    /// `sysctl -p` runs.
    pub reload: bool,
}

/// Ansible's decisions from the file's value, the live value (`None`: unreadable) and the task.
pub fn decide(
    file_value: Option<&str>,
    proc_value: Option<&str>,
    value: &str,
    present: bool,
    reload: bool,
    sysctl_set: bool,
) -> Decision {
    let mut d = Decision::default();
    match (file_value, present) {
        (None, true) => (d.changed, d.write_file) = (true, true),
        (None, false) => {}
        (Some(f), false) if !f.is_empty() => (d.changed, d.write_file) = (true, true),
        (Some(f), _) if f != value => (d.changed, d.write_file) = (true, true),
        _ if reload => d.changed = proc_value.is_none_or(|p| !same_words(p, value)),
        _ => {}
    }
    if sysctl_set && present {
        match proc_value {
            None => d.changed = true,
            Some(p) if !same_words(p, value) => (d.changed, d.set_proc) = (true, true),
            Some(_) => {}
        }
    }
    d.reload = d.changed && reload;
    d
}

const READ: &str = r#"set -u
export LANG=C LC_ALL=C LC_MESSAGES=C
command -v sysctl >/dev/null 2>&1 || { echo 'Failed to find required executable "sysctl"' >&2; exit 127; }
if v=$(sysctl -e -n "$name" 2>/dev/null); then printf '@@tend proc '; printf '%s\n' "$v" | base64 -w0; echo; fi
real=$(readlink -f -- "$file") || real=$file
echo "@@tend real $real"
if [ -f "$file" ]; then printf '@@tend content '; base64 -w0 < "$file" || exit 4; echo; fi
"#;

const WRITE: &str = r#"set -u
export LANG=C LC_ALL=C LC_MESSAGES=C
e=""; [ "$ignore" = 1 ] && e=-e
failed() { grep -Eq '^sysctl: setting key "[^"]+": (Invalid argument|Read-only file system)$' "$1"; }
o=$(mktemp) || exit 1
trap 'rm -f "$o"' EXIT
if [ "$set_proc" = 1 ]; then
  sysctl $e -w "$name=$value" > "$o" 2>&1; rc=$?
  if [ "$rc" != 0 ] || failed "$o"; then echo "setting $name failed: $(cat "$o")" >&2; exit 5; fi
fi
if [ "$write" = 1 ]; then put_file "$real" "$new" || { echo "Failed to write to file $real" >&2; exit 4; }; fi
if [ "$reload" = 1 ]; then
  sysctl $e -p "$file" > "$o" 2>&1; rc=$?
  if [ "$rc" != 0 ] || failed "$o"; then echo "Failed to reload sysctl: $(cat "$o")" >&2; exit 5; fi
fi
"#;

async_module!(Sysctl, "sysctl", PARAMS, run);

async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<ModuleResult, ModuleError> {
    let name = args.str("name").unwrap_or_default().trim().to_string();
    let present = args.str("state").unwrap_or("present") == "present";
    if name.is_empty() {
        return Err(ModuleError::Args("name cannot be blank".into()));
    }
    let value = parse_value(args.str("value").unwrap_or_default());
    if present && args.str("value").is_none() {
        return Err(ModuleError::Args("value cannot be None".into()));
    }
    if present && value.is_empty() {
        return Err(ModuleError::Args("value cannot be blank".into()));
    }
    let file = args.str("sysctl_file").unwrap_or("/etc/sysctl.conf");
    let ignore = args.bool("ignoreerrors", false);
    let out = ctx
        .run(&format!("name={} file={}\n{READ}", quote(&name), quote(file)), None)
        .await?;
    let (marks, plain) = split_marked(&out);
    if !out.success() {
        return Err(ModuleError::remote(
            last_line(&plain),
            format!("sysctl: read {name} and {file}"),
            &plain,
        ));
    }
    let mark = |p: &str| marks.iter().find_map(|m| m.strip_prefix(p));
    let proc_value = decode_text(mark("proc "), "sysctl")?;
    let before = decode_text(mark("content "), "sysctl")?.unwrap_or_default();
    let real = mark("real ").unwrap_or(file).to_string();
    let (file_value, after) = fix_file(&before, &name, present.then_some(value.as_str()));
    let d = decide(
        file_value.as_deref(),
        proc_value.as_deref(),
        &value,
        present,
        args.bool("reload", true),
        args.bool("sysctl_set", false),
    );
    let mut r = ModuleResult::changed(d.changed);
    if ctx.diff && d.write_file {
        r.diff.push(Diff {
            path: file.to_string(),
            before: before.clone(),
            after: after.clone(),
        });
    }
    if ctx.diff && d.set_proc {
        r.diff.push(Diff {
            path: format!("{name} (live)"),
            before: proc_value.clone().unwrap_or_default(),
            after: format!("{value}\n"),
        });
    }
    r.data.insert("name".into(), name.clone().into());
    r.data.insert(
        "value".into(),
        args.str("value").map_or(Json::Null, |_| value.clone().into()),
    );
    if ctx.check || !(d.set_proc || d.write_file || d.reload) {
        return Ok(r);
    }
    let out = ctx
        .run(
            &format!(
                "name={} value={} file={} real={} ignore={} set_proc={} write={} reload={} new={}\n{PUT_FILE}{WRITE}",
                quote(&name),
                quote(&value),
                quote(file),
                quote(&real),
                u8::from(ignore),
                u8::from(d.set_proc),
                u8::from(d.write_file),
                u8::from(d.reload),
                quote(&base64::engine::general_purpose::STANDARD.encode(after.as_bytes())),
            ),
            None,
        )
        .await?;
    if !out.success() {
        return Err(ModuleError::remote(
            last_line(&out),
            format!("sysctl: set {name}"),
            &out,
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_normalised_as_ansible_rewrites_it() {
        let text = "# tuning\nnet.core.somaxconn = 1024\n  vm.swappiness=10\nvm.swappiness = 20\n\n";
        let (cur, new) = fix_file(text, "vm.swappiness", Some("5"));
        assert_eq!(cur.as_deref(), Some("20"));
        assert_eq!(new, "# tuning\nnet.core.somaxconn=1024\nvm.swappiness=5\n\n");
        let (cur, new) = fix_file(text, "kernel.x", Some("1"));
        assert_eq!(cur, None);
        assert_eq!(
            new,
            "# tuning\nnet.core.somaxconn=1024\nvm.swappiness=10\n\nkernel.x=1\n"
        );
        let (_, new) = fix_file(text, "vm.swappiness", None);
        assert_eq!(new, "# tuning\nnet.core.somaxconn=1024\n\n");
    }

    #[test]
    fn decisions_follow_ansible() {
        // In the file and live: nothing.
        assert_eq!(
            decide(Some("5"), Some("5\n"), "5", true, true, false),
            Decision::default()
        );
        // In the file, live differs: reload fixes it.
        let d = decide(Some("5"), Some("6\n"), "5", true, true, false);
        assert!(d.changed && d.reload && !d.write_file && !d.set_proc);
        // Not in the file: written and reloaded; with sysctl_set, set too.
        let d = decide(None, Some("6\n"), "5", true, true, true);
        assert!(d.changed && d.reload && d.write_file && d.set_proc);
        // Without reload, a live difference alone is no change unless sysctl_set.
        assert!(!decide(Some("5"), Some("6"), "5", true, false, false).changed);
        // Absent.
        let d = decide(Some("5"), Some("5"), "", false, true, false);
        assert!(d.changed && d.write_file && d.reload);
        assert!(!decide(None, Some("5"), "", false, true, false).changed);
        // Values compare word by word.
        assert!(
            !decide(
                Some("4096 87380 6291456"),
                Some("4096\t87380\t6291456\n"),
                "4096 87380 6291456",
                true,
                true,
                true
            )
            .changed
        );
        assert_eq!(parse_value("yes"), "1");
        assert_eq!(parse_value(" 4096 "), "4096");
    }
}
