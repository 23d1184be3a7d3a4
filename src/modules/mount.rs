//! `mount` (`ansible.posix.mount`): a mount point's line in fstab and whether it is mounted,
//! in one remote script: `present` (fstab only), `mounted` (fstab, then mounted; remounted when
//! its line changed), `unmounted`, `absent` (unmounted, line removed), `remounted`, and
//! `ephemeral` (mounted without touching fstab). Lines are written as Ansible writes them.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;

/// `mount`.
pub struct Mount;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str).required().aliases(&["name"]),
    Param::new("src", Kind::Str),
    Param::new("fstype", Kind::Str),
    Param::new("opts", Kind::Str),
    Param::new("dump", Kind::Str),
    Param::new("passno", Kind::Str),
    Param::new("state", Kind::Str).required().choices(&[
        "present",
        "absent",
        "absent_from_fstab",
        "mounted",
        "unmounted",
        "remounted",
        "ephemeral",
    ]),
    Param::new("fstab", Kind::Str),
    Param::new("boot", Kind::Bool),
    Param::new("backup", Kind::Bool),
];

const SCRIPT: &str = concat!(
    step_script!(),
    r#"# The mount point as fstab writes it: spaces and tabs escaped.
pe=$(printf '%s' "$path" | sed -e 's/ /\\040/g' -e 's/\t/\\011/g')
# awk reads the values from its environment: `-v` would turn `\040` back into a space.
export tend_p="$pe"
old=$(awk '$1 !~ /^#/ && $2 == ENVIRON["tend_p"]' "$fstab" 2>/dev/null | tail -n 1)
new="$src $pe $fstype $opts $dump $passno"
same() { [ "$(printf '%s' "$old" | tr -s ' \t' '  ')" = "$new" ]; }
mounted() { mountpoint -q -- "$path" 2>/dev/null; }
fstab_changed=
write_fstab() {  # $1: the new line, or empty to remove the mount point's lines
  t=$(mktemp) || exit 1
  tend_l=$1 awk 'BEGIN {done = 0; p = ENVIRON["tend_p"]; l = ENVIRON["tend_l"]} $1 !~ /^#/ && $2 == p {if (l != "" && !done) {print l; done = 1}; next} {print} END {if (l != "" && !done) print l}' "$fstab" > "$t" 2>/dev/null || { [ ! -e "$fstab" ] || { rm -f "$t"; say "fail fstab 1"; exit 1; }; printf '%s\n' "$1" > "$t"; }
  [ "$backup" = 1 ] && [ -e "$fstab" ] && cp -p -- "$fstab" "$fstab.$(date +%Y-%m-%d@%H:%M:%S~)"
  cat "$t" > "$fstab" || { rm -f "$t"; say "fail fstab 1"; exit 1; }
  rm -f "$t"
}
case $state in
present|mounted)
  if ! same; then
    fstab_changed=1; say "change fstab"; say "old $old"; say "new $new"
    [ "$check" = 1 ] || write_fstab "$new"
  fi ;;
absent|absent_from_fstab)
  if [ -n "$old" ]; then
    fstab_changed=1; say "change fstab"; say "old $old"; say "new "
    [ "$state" = absent ] && mounted && { say "change unmount"; [ "$check" = 1 ] || step umount -- "$path"; }
    [ "$check" = 1 ] || write_fstab ""
  elif [ "$state" = absent ] && mounted; then
    say "change unmount"; [ "$check" = 1 ] || step umount -- "$path"
  fi ;;
esac
case $state in
mounted|ephemeral)
  if [ ! -d "$path" ]; then say "change mkdir"; [ "$check" = 1 ] || step mkdir -p -- "$path"; fi
  if ! mounted; then
    say "change mount"
    if [ "$check" != 1 ]; then
      if [ "$state" = ephemeral ]; then step mount -t "$fstype" -o "$opts" -- "$src" "$path"
      else step mount --fstab "$fstab" -- "$path"; fi
    fi
  elif [ -n "$fstab_changed" ]; then
    say "change remount"
    if [ "$check" != 1 ]; then
      if ! mount -o remount -- "$path" 2>/dev/null; then step umount -- "$path"; step mount --fstab "$fstab" -- "$path"; fi
    fi
  fi ;;
unmounted)
  if mounted; then say "change unmount"; [ "$check" = 1 ] || step umount -- "$path"; fi ;;
remounted)
  mounted || { echo "$path is not mounted" >&2; say "fail remount 1"; exit 1; }
  say "change remount"
  if [ "$check" != 1 ]; then
    if [ -n "$opts_given" ]; then step mount -o "remount,$opts" -- "$path"; else step mount -o remount -- "$path"; fi
  fi ;;
esac
exit 0
"#
);

impl Module for Mount {
    fn name(&self) -> &'static str {
        "mount"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let path = args.str("path").unwrap_or_default();
            let state = args.str("state").unwrap_or_default();
            if !path.starts_with('/') {
                return Err(ModuleError::Args(format!("`mount` path `{path}` must be absolute")));
            }
            let needs = |p: &str| {
                args.str(p)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| ModuleError::Args(format!("`mount` state={state} needs `{p}`")))
            };
            let (src, fstype) = if matches!(state, "present" | "mounted" | "ephemeral") {
                (needs("src")?, needs("fstype")?)
            } else {
                (
                    args.str("src").unwrap_or_default(),
                    args.str("fstype").unwrap_or_default(),
                )
            };
            let mut opts = args.str("opts").unwrap_or("defaults").to_string();
            if !args.bool("boot", true) && !opts.split(',').any(|o| o == "noauto") {
                opts = if opts == "defaults" {
                    "noauto".into()
                } else {
                    format!("{opts},noauto")
                };
            }
            if [src, fstype, opts.as_str()]
                .iter()
                .any(|v| v.contains(char::is_whitespace))
            {
                return Err(ModuleError::Args(
                    "`mount` src, fstype and opts cannot hold spaces".into(),
                ));
            }
            let script = format!(
                "path={} src={} fstype={} opts={} opts_given={} dump={} passno={} state={} fstab={} backup={} check={}\n{SCRIPT}",
                quote(path),
                quote(src),
                quote(fstype),
                quote(&opts),
                if args.str("opts").is_some() { 1 } else { 0 },
                quote(args.str("dump").unwrap_or("0")),
                quote(args.str("passno").unwrap_or("0")),
                quote(state),
                quote(args.str("fstab").unwrap_or("/etc/fstab")),
                if args.bool("backup", false) { 1 } else { 0 },
                if ctx.check { 1 } else { 0 },
            );
            let out = ctx.run(&script, None).await?;
            let (marks, plain) = split_marked(&out);
            if marks.iter().any(|m| m.starts_with("fail ")) || !out.success() {
                let ran = marks
                    .iter()
                    .rev()
                    .find_map(|m| m.strip_prefix("run "))
                    .unwrap_or("mount");
                return Err(ModuleError::remote(
                    format!("mount {path} failed on {}: {}", ctx.host, last_line(&plain)),
                    ran,
                    &plain,
                ));
            }
            let changes: Vec<&str> = marks.iter().filter_map(|m| m.strip_prefix("change ")).collect();
            let mut r = ModuleResult::changed(!changes.is_empty());
            let would = if ctx.check { "would " } else { "" };
            r.msg = Some(if changes.is_empty() {
                format!("{path} is {state}")
            } else {
                format!("{would}{} {path}", changes.join(", "))
            });
            if ctx.diff && changes.contains(&"fstab") {
                let line = |k: &str| {
                    marks
                        .iter()
                        .find_map(|m| m.strip_prefix(k))
                        .filter(|l| !l.is_empty())
                        .map(|l| format!("{l}\n"))
                        .unwrap_or_default()
                };
                r.diff.push(Diff {
                    path: args.str("fstab").unwrap_or("/etc/fstab").to_string(),
                    before: line("old "),
                    after: line("new "),
                });
            }
            for (k, v) in [
                ("name", path),
                ("src", src),
                ("fstype", fstype),
                ("opts", opts.as_str()),
            ] {
                r.data.insert(k.into(), v.into());
            }
            Ok(r)
        })
    }
}
