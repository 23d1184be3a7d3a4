//! `dnf` and `yum` (in Ansible, `yum` runs the dnf module too): RPM packages through the host's
//! `dnf` (or `yum`), probed with `rpm -q` and changed in one remote script. Names are package
//! names, `name-version` or capabilities (`/usr/bin/foo`); a name no enabled repository offers
//! fails before anything is installed, in check mode too.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::{join, quote};
use serde_json::Value as Json;

/// `dnf`.
pub struct Dnf;
/// `yum`: the same module under its older name.
pub struct Yum;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::List).aliases(&["pkg"]),
    Param::new("state", Kind::Str).choices(&["present", "installed", "latest", "absent", "removed"]),
    Param::new("enablerepo", Kind::List),
    Param::new("disablerepo", Kind::List),
    Param::new("exclude", Kind::List),
    Param::new("update_cache", Kind::Bool).aliases(&["expire-cache"]),
    Param::new("disable_gpg_check", Kind::Bool),
    Param::new("conf_file", Kind::Str),
    Param::new("installroot", Kind::Str),
    Param::new("releasever", Kind::Str),
    Param::new("install_weak_deps", Kind::Bool),
    Param::new("autoremove", Kind::Bool),
    // Accepted as in Ansible; dnf takes its own lock.
    Param::new("lock_timeout", Kind::Int),
    Param::new("use_backend", Kind::Str),
];

const SCRIPT: &str = r#"set -u -f
export LC_ALL=C
say() { echo "@@tend $*"; }
pm=$(command -v dnf || command -v yum) || { say "fail none 3"; exit 3; }
if [ -n "$root" ]; then rq() { rpm --root "$root" "$@"; }; else rq() { rpm "$@"; }; fi
o=$(mktemp) && e=$(mktemp) || exit 1
trap 'rm -f "$o" "$e"' EXIT
step() {
  printf '@@tend run %s' "$(basename "$pm")"; shift; printf ' %s' "$@"; echo
  set -- pmx "$@"
  "$@" </dev/null >"$o" 2>"$e"; rc=$?
  cat "$o"; cat "$e" >&2
  if [ "$rc" != 0 ]; then say "fail $(basename "$pm") $rc"; exit "$rc"; fi
}
installed() {
  case $1 in
    *[*?[]*) [ -n "$(rq -qa "$1" 2>/dev/null)" ] ;;  # a pattern: some installed package matches
    *) rq -q --quiet "$1" 2>/dev/null || rq -q --quiet --whatprovides "$1" 2>/dev/null ;;
  esac
}
if [ "$*" = '*' ]; then
  # `name: '*'`: every installed package, as Ansible's upgrade of all.
  case $state in
    latest) ;;
    *) echo "\`name: '*'\` means every installed package: it goes with \`state: latest\`" >&2; say "fail usage 1"; exit 1 ;;
  esac
  [ "$cache" = 1 ] && step pmx -y -q makecache --refresh
  pmx -q check-update >/dev/null 2>"$e"; rc=$?
  case $rc in
    0) exit 0 ;;
    100) say "change upgrade all"; [ "$check" = 1 ] || step pmx -y upgrade; exit 0 ;;
    *) cat "$e" >&2; say "fail check-update $rc"; exit "$rc" ;;
  esac
fi
# A cache refresh changes no package: it runs in check mode too, so that `latest` tells the truth.
if [ "$cache" = 1 ]; then step pmx -y -q makecache --refresh; fi
missing=; present=
for n in "$@"; do
  if installed "$n"; then present="$present $n"; else missing="$missing $n"; fi
done
case $state in
absent|removed)
  [ -n "$present" ] || exit 0
  say "change remove$present"
  [ "$check" = 1 ] || step pmx -y remove $present
  exit 0 ;;
esac
for n in $missing; do
  if ! pmx -q list --available "$n" >/dev/null 2>&1 && ! pmx -q repoquery --whatprovides "$n" 2>/dev/null | grep -q .; then
    echo "no package matching \`$n\` in the enabled repositories" >&2; say "fail unknown 1"; exit 1
  fi
done
newer=
if [ "$state" = latest ] && [ -n "$present" ]; then
  pmx -q check-update $present >/dev/null 2>"$e"; rc=$?
  case $rc in
    0) ;;
    100) newer=1 ;;
    *) cat "$e" >&2; say "fail check-update $rc"; exit "$rc" ;;
  esac
fi
[ -n "$missing" ] && say "change install$missing"
[ -n "$newer" ] && say "change upgrade$present"
if [ "$check" != 1 ]; then
  [ -z "$missing" ] || step pmx -y install $missing
  [ -z "$newer" ] || step pmx -y upgrade $present
fi
for n in "$@"; do v=$(rq -q --whatprovides --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}' "$n" 2>/dev/null) && say "version $v"; done
exit 0
"#;

impl Module for Dnf {
    fn name(&self) -> &'static str {
        "dnf"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(run(ctx, args, "dnf"))
    }
}

impl Module for Yum {
    fn name(&self) -> &'static str {
        "yum"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(run(ctx, args, "yum"))
    }
}

/// dnf's options from the task's parameters, each a word of its own.
fn options(args: &Args) -> Vec<String> {
    let mut opts = Vec::new();
    for (param, flag) in [
        ("enablerepo", "--enablerepo"),
        ("disablerepo", "--disablerepo"),
        ("exclude", "--exclude"),
    ] {
        let values = args.list(param);
        if !values.is_empty() {
            opts.push(format!("{flag}={}", values.join(",")));
        }
    }
    for (param, flag) in [
        ("conf_file", "--config"),
        ("installroot", "--installroot"),
        ("releasever", "--releasever"),
    ] {
        if let Some(v) = args.str(param) {
            opts.push(format!("{flag}={v}"));
        }
    }
    if args.bool("disable_gpg_check", false) {
        opts.push("--nogpgcheck".into());
    }
    if let Some(Json::Bool(weak)) = args.get("install_weak_deps") {
        opts.push(format!("--setopt=install_weak_deps={weak}"));
    }
    opts
}

/// Runs the script for `module` (`dnf` or `yum`, for messages); `package` hands RPM hosts here.
pub(super) async fn run(ctx: &Ctx<'_>, args: &Args, module: &str) -> Result<ModuleResult, ModuleError> {
    let names = args.list("name");
    let state = match args.str("state").unwrap_or("present") {
        "installed" => "present",
        "removed" => "absent",
        s => s,
    };
    if args.bool("autoremove", false) && names.is_empty() {
        return Err(ModuleError::Args(format!(
            "`{module}` autoremove without `name` is not supported; give the packages to remove"
        )));
    }
    if names.is_empty() && !args.bool("update_cache", false) {
        return Err(ModuleError::Args(format!(
            "`{module}` needs `name` (or `update_cache: true`)"
        )));
    }
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.starts_with('-') || n.contains(char::is_whitespace))
    {
        return Err(ModuleError::Args(format!(
            "`{module}` name `{bad}` is not a package name"
        )));
    }
    let mut opts = options(args);
    if state == "absent" && args.bool("autoremove", false) {
        opts.push("--setopt=clean_requirements_on_remove=True".into());
    }
    // `pmx`: the manager with the task's options, each a quoted word.
    let script = format!(
        "set -- {}\nstate={} check={} cache={} root={}\npmx() {{ \"$pm\" {} \"$@\"; }}\n{SCRIPT}",
        join(&names),
        quote(state),
        if ctx.check { 1 } else { 0 },
        if args.bool("update_cache", false) { 1 } else { 0 },
        quote(args.str("installroot").unwrap_or_default()),
        join(&opts),
    );
    let out = ctx.run(&script, None).await?;
    let (marks, plain) = split_marked(&out);
    let ran = marks.iter().rev().find_map(|m| m.strip_prefix("run "));
    if let Some(f) = marks.iter().find_map(|m| m.strip_prefix("fail ")) {
        let tool = f.split_whitespace().next().unwrap_or(module);
        let msg = match tool {
            "none" => format!("`{module}`: {} has neither dnf nor yum", ctx.host),
            _ => format!("`{module}` failed on {}: {}", ctx.host, last_line(&plain)),
        };
        return Err(ModuleError::remote(msg, ran.unwrap_or(module), &plain));
    }
    if !out.success() {
        return Err(ModuleError::remote(
            format!("`{module}`: the probe failed on {}: {}", ctx.host, last_line(&plain)),
            "rpm -q",
            &plain,
        ));
    }
    let changes: Vec<&str> = marks.iter().filter_map(|m| m.strip_prefix("change ")).collect();
    let mut r = ModuleResult::changed(!changes.is_empty());
    let would = if ctx.check { "would " } else { "" };
    r.msg = Some(if changes.is_empty() {
        match state {
            "absent" => "no package to remove".to_string(),
            "latest" => "all packages are up to date".to_string(),
            _ => "all packages are installed".to_string(),
        }
    } else {
        changes
            .iter()
            .map(|c| format!("{would}{c}"))
            .collect::<Vec<_>>()
            .join("; ")
    });
    r.data.insert(
        "results".into(),
        Json::from(changes.iter().map(|c| c.to_string()).collect::<Vec<_>>()),
    );
    let versions: Vec<&str> = marks.iter().filter_map(|m| m.strip_prefix("version ")).collect();
    r.data.insert("installed".into(), Json::from(versions));
    r.rc = Some(0);
    Ok(r)
}
