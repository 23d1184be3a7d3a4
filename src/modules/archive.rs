//! `archive` (`community.general.archive`): files and trees of the host packed into a tar
//! (gz, bz2, xz, plain) or zip archive, or one file compressed, with the host's own tools.
//! Paths and globs are expanded on the host first; the archive is then built beside its
//! destination and moved into place, and the task reports a change only when the members
//! (names, sizes, modes, times) or the compressed content differ from the archive it replaced.

use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `archive`: log and dump bundles, release snapshots.
pub struct Archive;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::List).required(),
    Param::new("format", Kind::Str).choices(&["bz2", "gz", "tar", "xz", "zip"]),
    Param::new("dest", Kind::Str),
    Param::new("exclude_path", Kind::List),
    Param::new("exclusion_patterns", Kind::List),
    Param::new("force_archive", Kind::Bool),
    Param::new("remove", Kind::Bool),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
];

/// Ansible's `common_path`: the directory the members' names are relative to, with its `/`.
pub fn common_path(paths: &[String]) -> String {
    let dirs: Vec<String> = paths.iter().map(|p| with_slash(dirname(p))).collect();
    let first = dirs.first().cloned().unwrap_or_default();
    let mut n = first.len();
    for d in dirs.iter().skip(1) {
        n = n.min(first.bytes().zip(d.bytes()).take_while(|(a, b)| a == b).count());
    }
    // Python compares characters: the prefix ends on one's boundary.
    while !first.is_char_boundary(n) {
        n -= 1;
    }
    with_slash(dirname(&first[..n]))
}

/// Python's `os.path.join(p, "")`.
fn with_slash(p: String) -> String {
    if p.is_empty() || p.ends_with('/') {
        p
    } else {
        format!("{p}/")
    }
}

/// Python's `os.path.dirname`.
fn dirname(p: &str) -> String {
    match p.rfind('/') {
        None => String::new(),
        Some(i) => {
            let head = &p[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head.to_string()
            } else {
                trimmed.to_string()
            }
        }
    }
}

const EXPAND: &str = r#"set -u
IFS='
'
for a in "$@"; do
  kind=${a%%:*}; pat=${a#*:}
  case "$pat" in
    *[*?]*)
      [ "$kind" = p ] && echo "@@tend globby"
      for x in $pat; do
        if [ -e "$x" ] || [ -L "$x" ]; then echo "@@tend $kind $x"; fi
      done;;
    *) echo "@@tend $kind $pat";;
  esac
done
for x in $paths_to_type; do
  if [ -d "$x" ]; then t=d; elif [ -e "$x" ] || [ -L "$x" ]; then t=e; else t=m; fi
  echo "@@tend type $t $x"
done
if [ -n "$dest" ] && [ -e "$dest" ]; then echo "@@tend dest_exists"; fi
"#;

const APPLY: &str = r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
case "$format" in gz) comp=gzip;; bz2) comp=bzip2;; xz) comp=xz;; *) comp=cat;; esac
sig() {
  [ -e "$dest" ] || { echo absent; return; }
  if [ "$format" = zip ]; then unzip -v "$dest" 2>/dev/null | sed '1,3d' | awk '{print $7, $8}' | sort | sha256sum; return; fi
  if [ "$single" = 0 ] && tar -tvf "$dest" --full-time >/dev/null 2>&1; then tar -tvf "$dest" --full-time | sort | sha256sum; return; fi
  $comp -dc < "$dest" 2>/dev/null | sha256sum
}
before=$(sig)
d=$(dirname -- "$dest")
[ -d "$d" ] || { echo "Destination directory $d does not exist" >&2; exit 4; }
tmp="$d/.tend-archive.$$"
[ "$format" = zip ] && tmp="$tmp.zip"
rm -f -- "$tmp"
trap 'rm -f -- "$tmp" "$tmp.list"' EXIT
if [ "$single" = 1 ]; then
  $comp -c < "$1" > "$tmp" || { echo "Unable to write to compressed file: $dest" >&2; exit 4; }
  say "archived $1"
else
  : > "$tmp.list"
  for t in "$@"; do
    if [ -d "$t" ] && [ ! -L "$t" ]; then find "$t" -mindepth 1; else printf '%s\n' "$t"; fi
  done | while IFS= read -r full; do
    name=${full#"$root"}
    skip=0
    # One pattern a line, matched as a pattern, never expanded against the files here.
    oifs=$IFS; IFS='
'
    set -f; for e in $exclusions; do case "$name" in $e) skip=1;; esac; done; set +f
    IFS=$oifs
    [ "$skip" = 1 ] && continue
    printf '%s\n' "$name" >> "$tmp.list"
    say "archived $full"
  done
  if [ "$format" = zip ]; then
    (cd "$root" && zip -q -X "$tmp" -@ < "$tmp.list") || { echo "Error when writing zip archive at $dest" >&2; exit 4; }
  else
    tar -C "$root" --no-recursion -cf - -T "$tmp.list" | $comp > "$tmp" || { echo "Error when writing archive at $dest" >&2; exit 4; }
  fi
fi
[ -e "$dest" ] && { chmod --reference="$dest" "$tmp"; chown --reference="$dest" "$tmp"; } 2>/dev/null
[ -e "$dest" ] || chmod 644 "$tmp"
mv -f -- "$tmp" "$dest" || exit 4
[ "$before" = "$(sig)" ] || say changed
if [ "$remove" = 1 ]; then rm -rf -- "$@" || { echo "Error deleting some source files" >&2; exit 4; }; fi
if [ -n "$owner$group" ]; then
  now=$(stat -c '%U:%G' "$dest"); chown "${owner:-$(stat -c %U "$dest")}:${group:-$(stat -c %G "$dest")}" "$dest" || exit 4
  [ "$now" = "$(stat -c '%U:%G' "$dest")" ] || say changed
fi
if [ -n "$mode" ]; then
  now=$(stat -c %a "$dest"); chmod "$mode" "$dest" || exit 4
  [ "$now" = "$(stat -c %a "$dest")" ] || say changed
fi
"#;

async_module!(Archive, "archive", PARAMS, run);

fn strs(v: &[String]) -> Json {
    Json::from(v.to_vec())
}

async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<ModuleResult, ModuleError> {
    let format = args.str("format").unwrap_or("gz");
    let patterns = args.list("path");
    let excludes = args.list("exclude_path");
    let mut expand_args: Vec<String> = patterns.iter().map(|p| quote(&format!("p:{p}"))).collect();
    expand_args.extend(excludes.iter().map(|p| quote(&format!("x:{p}"))));
    let script = format!(
        "dest={} paths_to_type=''\nset -- {}\n{EXPAND}",
        quote(args.str("dest").unwrap_or_default()),
        expand_args.join(" ")
    );
    let out = ctx.run(&script, None).await?;
    let (marks, plain) = split_marked(&out);
    if !out.success() {
        return Err(ModuleError::remote(last_line(&plain), "archive: expand paths", &plain));
    }
    let pick = |k: &str| -> Vec<String> {
        marks
            .iter()
            .filter_map(|m| m.strip_prefix(k))
            .map(str::to_string)
            .collect()
    };
    let expanded = pick("p ");
    let excluded = pick("x ");
    let globby = marks.iter().any(|m| m == "globby");
    let mut paths: Vec<String> = expanded.iter().filter(|p| !excluded.contains(p)).cloned().collect();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return Err(ModuleError::Failed("Error, no source paths were found".into()));
    }
    // Which paths exist and are directories (and whether the default destination exists).
    let typed = {
        let list = paths.join("\n");
        let out = ctx
            .run(
                &format!(
                    "dest={} paths_to_type={}\nset --\n{EXPAND}",
                    quote(
                        &args
                            .str("dest")
                            .map_or_else(|| format!("{}.{format}", paths[0]), str::to_string)
                    ),
                    quote(&list)
                ),
                None,
            )
            .await?;
        split_marked(&out).0
    };
    let kind = |p: &str| {
        typed
            .iter()
            .filter_map(|m| m.strip_prefix("type "))
            .find_map(|m| m.split_once(' ').filter(|(_, q)| *q == p).map(|(t, _)| t.to_string()))
            .unwrap_or_default()
    };
    let dest_exists = typed.iter().any(|m| m == "dest_exists");
    let root = common_path(&paths);
    let must_archive = args.bool("force_archive", false) || globby || kind(&paths[0]) == "d" || paths.len() > 1;
    let dest = match args.str("dest") {
        Some(d) => d.to_string(),
        None if !must_archive => format!("{}.{format}", paths[0]),
        None => {
            return Err(ModuleError::Args(
                "Error, must specify \"dest\" when archiving multiple files or trees".into(),
            ));
        }
    };
    let (targets, missing): (Vec<String>, Vec<String>) = paths.iter().cloned().partition(|p| kind(p) != "m");
    let remove = args.bool("remove", false);
    if remove
        && paths
            .iter()
            .any(|p| kind(p) == "d" && dest.starts_with(&format!("{}/", p.trim_end_matches('/'))))
    {
        return Err(ModuleError::Failed(
            "Error, created archive can not be contained in source paths when remove=true".into(),
        ));
    }
    // Ansible's `is_archive`: what the destination's name says it is.
    let is_archive = {
        let base = dest.rsplit('/').next().unwrap_or_default().to_lowercase();
        [
            ".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tbz2", ".tzst", ".zip",
        ]
        .iter()
        .any(|e| base.ends_with(e))
    };
    let mut r = ModuleResult::changed(false);
    let mut state = "absent";
    let mut archived = Vec::new();
    if targets.is_empty() {
        if dest_exists {
            state = if is_archive { "archive" } else { "compress" };
        }
    } else if ctx.check {
        r.changed = must_archive || !dest_exists;
        state = if must_archive { "archive" } else { "compress" };
    } else {
        let single = !must_archive && format != "zip" && format != "tar";
        let listed: Vec<String> = targets.iter().map(|p| quote(p)).collect();
        let script = format!(
            "format={} dest={} root={} single={} remove={} exclusions={} owner={} group={} mode={}\nset -- {}\n{APPLY}",
            quote(format),
            quote(&dest),
            quote(&root),
            u8::from(single),
            u8::from(remove),
            quote(&args.list("exclusion_patterns").join("\n")),
            quote(args.str("owner").unwrap_or_default()),
            quote(args.str("group").unwrap_or_default()),
            quote(args.str("mode").unwrap_or_default()),
            listed.join(" ")
        );
        let out = ctx.run(&format!("IFS='\n'\n{script}"), None).await?;
        let (marks, plain) = split_marked(&out);
        if !out.success() {
            return Err(ModuleError::remote(
                last_line(&plain),
                format!("archive {dest}"),
                &plain,
            ));
        }
        r.changed = marks.iter().any(|m| m == "changed");
        archived = marks
            .iter()
            .filter_map(|m| m.strip_prefix("archived "))
            .map(str::to_string)
            .collect();
        state = match (single, missing.is_empty()) {
            (true, _) => "compress",
            (false, true) => "archive",
            (false, false) => "incomplete",
        };
    }
    r.data.insert("archived".into(), strs(&archived));
    r.data.insert("dest".into(), dest.into());
    r.data.insert("dest_state".into(), state.into());
    r.data.insert("arcroot".into(), root.into());
    r.data.insert("missing".into(), strs(&missing));
    r.data.insert("expanded_paths".into(), strs(&expanded));
    r.data.insert("expanded_exclude_paths".into(), strs(&excluded));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_named_from_the_common_directory() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(common_path(&v(&["/srv/app/logs"])), "/srv/app/");
        assert_eq!(common_path(&v(&["/srv/a/x", "/srv/b/y"])), "/srv/");
        assert_eq!(common_path(&v(&["/srv/ab/x", "/srv/ac/y"])), "/srv/");
        assert_eq!(common_path(&v(&["/x"])), "/");
        assert_eq!(common_path(&v(&["/srv/é/x", "/srv/è/y"])), "/srv/");
        assert_eq!(common_path(&[]), "");
    }
}
