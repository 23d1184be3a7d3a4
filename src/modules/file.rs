//! `file`: files, directories, symlinks, hard links, removal, touch, and their mode/owner —
//! probed and applied by one remote script. Symlinks are replaced atomically (new link + rename),
//! so a `current` link is never missing.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, Plan, Script, run_planned};
use crate::transport::shell::quote;

/// `file`.
pub struct File;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str).required().aliases(&["dest", "name"]),
    Param::new("state", Kind::Str).choices(&["file", "directory", "link", "hard", "absent", "touch"]),
    Param::new("src", Kind::Str),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
    Param::new("recurse", Kind::Bool),
    Param::new("force", Kind::Bool),
    Param::new("follow", Kind::Bool),
    // SELinux context: applied where SELinux is enabled, nothing elsewhere (as Ansible).
    Param::new("setype", Kind::Str),
    Param::new("seuser", Kind::Str),
    Param::new("serole", Kind::Str),
    Param::new("selevel", Kind::Str),
    // `now` or `preserve` (`state: touch`): preserved, a touch only creates a missing file.
    Param::new("access_time", Kind::Str),
    Param::new("modification_time", Kind::Str),
    Param::new("access_time_format", Kind::Str),
    Param::new("modification_time_format", Kind::Str),
];

const SCRIPT: &str = r#"set -u
changes=""
note() { changes="$changes $1"; }
if [ -L "$path" ]; then cur=link; elif [ -d "$path" ]; then cur=directory; elif [ -f "$path" ]; then cur=file;
elif [ -e "$path" ]; then cur=other; else cur=absent; fi
echo "before $cur"
[ -n "$state" ] || { if [ "$cur" = directory ]; then state=directory; else state=file; fi; }
attrs() {
  # chmod and chown act on what a symlink points to: look at that too (`stat -L`).
  t=$1; R=""; [ "$recurse" = 1 ] && [ -d "$t" ] && R=-R
  if [ -n "$mode" ]; then
    case "$mode" in
      *[!0-7]*)
        if [ "$check" = 1 ]; then
          probe=$(mktemp); chmod "$(stat -L -c %a "$t")" "$probe"; chmod "$mode" "$probe"
          [ "$(stat -L -c %a "$probe")" = "$(stat -L -c %a "$t")" ] || note mode; rm -f "$probe"
        else
          b=$(stat -L -c %a "$t"); chmod $R "$mode" "$t" || exit 4; [ "$b" = "$(stat -L -c %a "$t")" ] || note mode
        fi ;;
      *)
        if [ -n "$R" ]; then
          if [ -n "$(find "$t" ! -perm "$want" -print -quit)" ]; then note mode; [ "$check" = 1 ] || chmod -R "$mode" "$t" || exit 4; fi
        elif [ "$(stat -L -c %a "$t")" != "$want" ]; then note mode; [ "$check" = 1 ] || chmod "$mode" "$t" || exit 4; fi ;;
    esac
  fi
  if [ -n "$owner" ]; then
    if [ -n "$R" ]; then
      if [ -n "$(find "$t" ! -user "$owner" -print -quit)" ]; then note owner; [ "$check" = 1 ] || chown -R "$owner" "$t" || exit 4; fi
    elif [ "$(stat -L -c %U "$t")" != "$owner" ] && [ "$(stat -L -c %u "$t")" != "$owner" ]; then note owner; [ "$check" = 1 ] || chown "$owner" "$t" || exit 4; fi
  fi
  if [ -n "$group" ]; then
    if [ -n "$R" ]; then
      if [ -n "$(find "$t" ! -group "$group" -print -quit)" ]; then note group; [ "$check" = 1 ] || chgrp -R "$group" "$t" || exit 4; fi
    elif [ "$(stat -L -c %G "$t")" != "$group" ] && [ "$(stat -L -c %g "$t")" != "$group" ]; then note group; [ "$check" = 1 ] || chgrp "$group" "$t" || exit 4; fi
  fi
}
case "$state" in
  absent)
    if [ "$cur" != absent ]; then note removed; [ "$check" = 1 ] || rm -rf -- "$path" || exit 4; fi ;;
  directory)
    if [ "$cur" = absent ]; then note created
      if [ "$check" != 1 ]; then
        # The directories made on the way get the same owner, group and mode, as in Ansible.
        made=""; d="$path"
        while [ ! -e "$d" ] && [ "$d" != / ] && [ "$d" != . ]; do made="$d
$made"; d=$(dirname -- "$d"); done
        mkdir -p -- "$path" || exit 4
        set -f; old_ifs=$IFS; IFS='
'
        for m in $made; do attrs "$m"; done
        IFS=$old_ifs; set +f
      fi
    elif [ "$cur" != directory ]; then echo "$path exists and is a $cur, not a directory" >&2; exit 3; fi
    [ "$check" = 1 ] && [ "$cur" = absent ] || attrs "$path" ;;
  file)
    if [ "$cur" = absent ]; then echo "file $path does not exist (state: touch creates it)" >&2; exit 3; fi
    if [ "$cur" = directory ]; then echo "$path is a directory (state: directory manages directories)" >&2; exit 3; fi
    attrs "$path" ;;
  touch)
    if [ "$cur" = absent ]; then note created; [ "$check" = 1 ] || touch -- "$path" || exit 4
    elif [ "$preserve" != 1 ]; then note touched; [ "$check" = 1 ] || touch -- "$path" || exit 4; fi
    [ "$check" = 1 ] && [ "$cur" = absent ] || attrs "$path" ;;
  link|hard)
    [ -n "$src" ] || { echo "state: $state needs src" >&2; exit 3; }
    if [ "$state" = link ]; then
      if [ "$cur" = link ] && [ "$(readlink -- "$path")" = "$src" ]; then :; else
        if [ "$cur" = file ] || [ "$cur" = other ] || [ "$cur" = directory ]; then
          [ "$force" = 1 ] || { echo "$path exists as a $cur; refusing to replace it with a link (force: yes does)" >&2; exit 3; }
        fi
        note linked
        if [ "$check" != 1 ]; then
          [ "$cur" = directory ] && { rm -rf -- "$path" || exit 4; }
          tmp="$(dirname -- "$path")/.tend-link.$$"
          ln -sfn -- "$src" "$tmp" && mv -Tf -- "$tmp" "$path" || { rm -f -- "$tmp"; exit 4; }
        fi
      fi
    else
      [ -e "$src" ] || { echo "src $src does not exist" >&2; exit 3; }
      if [ "$cur" != absent ] && [ "$path" -ef "$src" ]; then :; else
        if [ "$cur" != absent ] && [ "$force" != 1 ]; then echo "$path exists; refusing to replace it with a hard link (force: yes does)" >&2; exit 3; fi
        note linked; [ "$check" = 1 ] || ln -f -- "$src" "$path" || exit 4
      fi
    fi
    if [ "$check" != 1 ] && [ -e "$path" ]; then attrs "$path"; fi ;;
esac
if [ -n "$setype" ] && [ "$check" != 1 ] && [ -e "$path" ] && command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; then
  if [ "$(stat -c %C -- "$path" 2>/dev/null | cut -d: -f3)" != "$setype" ]; then chcon -h -t "$setype" -- "$path" || exit 4; note setype; fi
fi
echo "changes$changes"
"#;

impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn scripted(&self) -> bool {
        true
    }
    fn plan(&self, ctx: &Ctx<'_>, args: &Args) -> Option<Result<Plan, ModuleError>> {
        Some(times(args).map(|()| plan(ctx, args)))
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        run_planned(times(args).map(|()| plan(ctx, args)), ctx)
    }
}

/// `access_time`/`modification_time`: `now` (the default) or `preserve`; a timestamp is not
/// supported yet.
fn times(args: &Args) -> Result<(), ModuleError> {
    // A line break in a path would split the script's list of directories it made.
    if args.str("path").is_some_and(|p| p.contains(['\n', '\r'])) {
        return Err(ModuleError::Args(
            "`file` path: a line break in a path is not supported".into(),
        ));
    }
    for p in ["access_time", "modification_time"] {
        if let Some(v) = args.str(p).filter(|v| !matches!(*v, "now" | "preserve")) {
            return Err(ModuleError::Args(format!(
                "`file` {p}: `{v}` — tend takes `now` or `preserve`, not a timestamp yet"
            )));
        }
    }
    Ok(())
}

fn plan(ctx: &Ctx<'_>, args: &Args) -> Plan {
    let path = args.str("path").unwrap_or_default().to_string();
    let state = args.str("state").unwrap_or("").to_string();
    let flag = |b: bool| if b { "1" } else { "0" };
    let script = format!(
        "path={} state={} src={} mode={} want={} owner={} group={} recurse={} force={} check={} setype={} preserve={}\n{SCRIPT}",
        quote(&path),
        quote(&state),
        quote(args.str("src").unwrap_or("")),
        quote(args.str("mode").unwrap_or("")),
        // What `stat -c %a` prints for a numeric mode.
        args.str("mode")
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .map(|m| format!("{m:o}"))
            .unwrap_or_default(),
        quote(args.str("owner").unwrap_or("")),
        quote(args.str("group").unwrap_or("")),
        flag(args.bool("recurse", false)),
        flag(args.bool("force", false)),
        flag(ctx.check),
        quote(args.str("setype").unwrap_or("")),
        flag(args.str("access_time") == Some("preserve") && args.str("modification_time") == Some("preserve"),),
    );
    let diff = ctx.diff;
    Plan::Remote(Script::new(script, None, move |out| {
        let (path, state) = (path.as_str(), state.as_str());
        if !out.success() {
            return Err(ModuleError::remote(
                format!("file {path}: {}", crate::modules::last_error_line(&out, "failed")),
                format!("file state={}", if state.is_empty() { "file" } else { state }),
                &out,
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let before = stdout
            .lines()
            .find_map(|l| l.strip_prefix("before "))
            .unwrap_or("absent")
            .to_string();
        let changes: Vec<&str> = stdout
            .lines()
            .find_map(|l| l.strip_prefix("changes"))
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let mut r = ModuleResult::changed(!changes.is_empty());
        r.data.insert("path".into(), path.into());
        r.data.insert(
            "state".into(),
            if state.is_empty() {
                before.clone()
            } else {
                state.to_string()
            }
            .into(),
        );
        if !changes.is_empty() {
            r.msg = Some(changes.join(", "));
            if diff {
                r.diff.push(Diff {
                    path: path.to_string(),
                    before: format!("state: {before}\n"),
                    after: format!(
                        "state: {}\n{}",
                        if state.is_empty() { &before } else { state },
                        changes.iter().map(|c| format!("# {c}\n")).collect::<String>()
                    ),
                });
            }
        }
        Ok(r)
    }))
}
