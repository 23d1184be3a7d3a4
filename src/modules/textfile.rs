//! Shared by `lineinfile` and `blockinfile`: a text file on the host is read in one round trip
//! (content, real path and attributes), edited on the control node, and written back through the
//! transport's atomic upload only when something changed. The upload is guarded by the checksum
//! of what was read, so a change made on the host in between is reported, never overwritten.

use super::{Args, Diff, ModuleError, ModuleResult, Next, Script};
use crate::transport::{Content, FileSpec, Output, shell::quote};
use sha2::{Digest, Sha256};

/// The file as it was read.
pub(super) struct Current {
    /// The path as the task gave it.
    pub path: String,
    /// Symlinks resolved: the file that is edited.
    pub real: String,
    /// The content; `None` when the file does not exist.
    pub content: Option<Vec<u8>>,
    /// sha256 of the content, or `absent`.
    sum: String,
    attrs: Option<Attrs>,
}

/// Mode and ownership as `stat` reports them.
struct Attrs {
    mode: u32,
    user: String,
    uid: String,
    group: String,
    gid: String,
}

const READ: &str = r#"if [ -d "$p" ]; then echo "Path $p is a directory !" >&2; exit 3; fi
if [ -e "$p" ]; then
  [ -f "$p" ] || { echo "$p is not a regular file" >&2; exit 3; }
  [ -r "$p" ] || { echo "$p is not readable" >&2; exit 3; }
  echo "real $(readlink -f -- "$p")"
  stat -L -c 'attrs %a %U %u %G %g' -- "$p" || exit 4
  printf 'content '; base64 -w0 < "$p" || exit 4; echo
else
  echo absent
  if [ "$mk" = 1 ]; then
    d=$(dirname -- "$p")
    [ -d "$d" ] || mkdir -p -- "$d" || { echo "Error creating $d" >&2; exit 4; }
  fi
fi
"#;

/// The script that reads `path` on the host. With `make_parent`, a missing file's directory is
/// created (what Ansible does for `create: yes` outside check mode).
pub(super) fn read_script(path: &str, make_parent: bool) -> String {
    format!("p={} mk={}\n{READ}", quote(path), if make_parent { 1 } else { 0 })
}

/// The file as [`read_script`] printed it.
pub(super) fn parse_read(out: &Output, module: &str, path: &str) -> Result<Current, ModuleError> {
    if !out.success() {
        return Err(ModuleError::remote(
            crate::modules::last_error_line(out, "cannot read the file"),
            format!("{module}: read {path}"),
            out,
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut cur = Current {
        path: path.to_string(),
        real: path.to_string(),
        content: None,
        sum: "absent".into(),
        attrs: None,
    };
    for line in stdout.lines() {
        if let Some(r) = line.strip_prefix("real ") {
            if !r.is_empty() {
                cur.real = r.to_string();
            }
        } else if let Some(a) = line.strip_prefix("attrs ") {
            let f: Vec<&str> = a.split_whitespace().collect();
            if let [mode, user, uid, group, gid] = f[..] {
                cur.attrs = Some(Attrs {
                    mode: u32::from_str_radix(mode, 8).unwrap_or(0),
                    user: user.into(),
                    uid: uid.into(),
                    group: group.into(),
                    gid: gid.into(),
                });
            }
        } else if let Some(c) = line.strip_prefix("content ") {
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD
                .decode(c.trim())
                .map_err(|e| ModuleError::Failed(format!("{path}: garbled content ({e})")))?;
            cur.sum = hex::encode(Sha256::digest(&data));
            cur.content = Some(data);
        }
    }
    if cur.attrs.is_some() && cur.content.is_none() {
        // An empty file prints `content ` with nothing after it; `lines()` keeps that line,
        // so reaching here means the output was cut short.
        return Err(ModuleError::remote(
            format!("{path}: the host's answer was incomplete"),
            format!("{module}: read {path}"),
            out,
        ));
    }
    Ok(cur)
}

/// An octal `mode:` for file content (symbolic modes belong to `file`).
pub(super) fn octal_mode(args: &Args) -> Result<Option<u32>, ModuleError> {
    match args.str("mode") {
        Some(m) => u32::from_str_radix(m, 8).map(Some).map_err(|_| {
            ModuleError::Args(format!(
                "mode `{m}`: only octal modes are supported for file content; use `file` for symbolic modes"
            ))
        }),
        None => Ok(None),
    }
}

/// `validate` must name the file to check.
pub(super) fn check_validate(args: &Args) -> Result<(), ModuleError> {
    match args.str("validate") {
        Some(v) if !v.contains("%s") => Err(ModuleError::Args(format!("validate must contain %s: {v}"))),
        _ => Ok(()),
    }
}

/// The result of editing a file to `new`: done when nothing differs or in check mode, else the
/// write as the next script (guarded by the checksum of what was read). `finish` adds the
/// module's own fields, given the backup file when one was made.
pub(super) fn write_next(
    check: bool,
    diff: bool,
    args: &Args,
    cur: &Current,
    new: Vec<u8>,
    msg: &str,
    finish: impl FnOnce(&mut ModuleResult, Option<String>) + Send + Sync + 'static,
) -> Result<Next, ModuleError> {
    let mode = octal_mode(args)?;
    let owner = args.str("owner");
    let group = args.str("group");
    let content_changed = cur.content.as_deref() != Some(new.as_slice());
    let attrs_changed = cur.attrs.as_ref().is_some_and(|a| {
        mode.is_some_and(|m| m != a.mode)
            || owner.is_some_and(|o| o != a.user && o != a.uid)
            || group.is_some_and(|g| g != a.group && g != a.gid)
    });
    let mut r = ModuleResult::changed(content_changed || attrs_changed);
    let mut text = if content_changed {
        msg.to_string()
    } else {
        String::new()
    };
    if attrs_changed {
        if !text.is_empty() {
            text.push_str(" and ");
        }
        text.push_str("ownership, perms or SE linux context changed");
    }
    r.msg = (!text.is_empty()).then_some(text);
    if diff && content_changed {
        r.diff.push(Diff {
            path: cur.path.clone(),
            before: String::from_utf8_lossy(cur.content.as_deref().unwrap_or_default()).into_owned(),
            after: String::from_utf8_lossy(&new).into_owned(),
        });
    }
    if !r.changed || check {
        finish(&mut r, None);
        return Ok(Next::Done(Box::new(r)));
    }
    let validate = args.str("validate").map(str::to_string);
    let spec = FileSpec {
        mode,
        owner,
        group,
        validate: validate.as_deref(),
        backup: args.bool("backup", false),
        expect_sum: Some(&cur.sum),
        ..FileSpec::new(&cur.real, Content::Bytes(&new))
    };
    let (script, stdin) = crate::transport::write_step(&spec, &new);
    let dest = cur.real.clone();
    Ok(Next::Then(Script::new(script, stdin, move |out| {
        let report =
            crate::transport::read_report(&out, &dest).map_err(|e| super::upload_failure(e, validate.as_deref()))?;
        r.changed = report.outcome.changed();
        finish(&mut r, report.backup_file);
        Ok(r)
    })))
}

/// A file the task needs is not on the host: Ansible's message and its rc 257.
pub(super) fn missing(module: &str, path: &str, message: String) -> ModuleError {
    ModuleError::Remote(crate::transport::Failure {
        message,
        command: format!("{module}: read {path}"),
        rc: Some(257),
        ..Default::default()
    })
}

/// A shell function `put_file FILE BASE64`: FILE replaced at once by the decoded content, with
/// the mode and owner of the file it replaces (a new file gets 0644), for modules that write
/// whole files they read before (`cron`, `known_hosts`).
pub(super) const PUT_FILE: &str = r#"put_file() {
  pf_t=$(mktemp "$(dirname -- "$1")/.tend.XXXXXX") || return 4
  printf '%s' "$2" | base64 -d > "$pf_t" || { rm -f "$pf_t"; return 4; }
  if [ -e "$1" ]; then
    chmod --reference="$1" "$pf_t" && chown --reference="$1" "$pf_t" || { rm -f "$pf_t"; return 4; }
  else
    chmod 644 "$pf_t"
  fi
  mv -f -- "$pf_t" "$1" || { rm -f "$pf_t"; return 4; }
}
"#;

/// A base64 text a module's script printed after a mark, decoded (lossy UTF-8); `what` names
/// the module and host for the error.
pub(super) fn decode_text(t: Option<&str>, what: &str) -> Result<Option<String>, ModuleError> {
    use base64::Engine as _;
    t.map(|t| {
        base64::engine::general_purpose::STANDARD
            .decode(t.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| ModuleError::Failed(format!("{what}: garbled answer ({e})")))
    })
    .transpose()
}
