//! `apt_repository`: one `deb`/`deb-src` line in the host's APT sources, added to
//! `/etc/apt/sources.list.d/NAME.list` (named from the URL as Ansible names it) unless some
//! sources file already has it, or removed from every file that has it; the package lists are
//! updated after a change (`update_cache`, on by default as in Ansible).

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;

/// `apt_repository`.
pub struct AptRepository;

const PARAMS: &[Param] = &[
    Param::new("repo", Kind::Str).required(),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("filename", Kind::Str),
    Param::new("mode", Kind::Str),
    Param::new("update_cache", Kind::Bool).aliases(&["update-cache"]),
    Param::new("update_cache_retries", Kind::Int),
    Param::new("update_cache_retry_max_delay", Kind::Int),
    Param::new("validate_certs", Kind::Bool),
    Param::new("codename", Kind::Str),
    Param::new("install_python_apt", Kind::Bool),
];

const SCRIPT: &str = r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
norm() { sed -e 's/#.*//' -e 's/[[:space:]][[:space:]]*/ /g' -e 's/^ //' -e 's/ $//'; }
want=$(printf '%s\n' "$line" | norm)
found=
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  if norm < "$f" | grep -qxF -- "$want"; then found="$found $f"; fi
done
changed=
if [ "$state" = present ]; then
  [ -z "$found" ] || exit 0
  say "change add $file"; changed=1
  if [ "$check" != 1 ]; then
    mkdir -p "$(dirname "$file")" && printf '%s\n' "$line" >> "$file" && chmod "$mode" "$file" || { say "fail write 1"; exit 1; }
  fi
else
  for f in $found; do
    say "change remove $f"; changed=1
    [ "$check" = 1 ] && continue
    t=$(mktemp) || exit 1
    while IFS= read -r l || [ -n "$l" ]; do
      [ "$(printf '%s\n' "$l" | norm)" = "$want" ] || printf '%s\n' "$l"
    done < "$f" > "$t"
    if grep -q '[^[:space:]]' "$t"; then cat "$t" > "$f"; else rm -f "$f"; fi
    rm -f "$t"
  done
fi
if [ -n "$changed" ] && [ "$check" != 1 ] && [ "$update" = 1 ]; then
  echo "@@tend run apt-get update"
  apt-get -q -o APT::Update::Error-Mode=any -o DPkg::Lock::Timeout=60 update </dev/null >/dev/null || { say "fail update $?"; exit 1; }
fi
exit 0
"#;

/// The file Ansible picks for a line without `filename`: the line's first URL (options,
/// protocol and credentials dropped), its non-alphanumeric runs turned into `_`.
fn suggested_name(line: &str) -> String {
    let mut rest = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => rest.push(c),
            _ => {}
        }
    }
    let first = rest
        .split_whitespace()
        .find(|w| !matches!(*w, "deb" | "deb-src"))
        .unwrap_or_default();
    let first = first.split_once("://").map_or(first, |(_, r)| r);
    let first = first.split_once('@').map_or(first, |(_, r)| r);
    first
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

impl Module for AptRepository {
    fn name(&self) -> &'static str {
        "apt_repository"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let line = args.str("repo").unwrap_or_default().trim();
            if line.starts_with("ppa:") {
                return Err(ModuleError::Args(format!(
                    "`apt_repository` repo `{line}`: PPAs are not supported; give the `deb` line of the archive"
                )));
            }
            if !matches!(line.split_whitespace().next(), Some("deb" | "deb-src")) || line.contains('\n') {
                return Err(ModuleError::Args(format!(
                    "`apt_repository` repo `{line}` is not a sources line (`deb URL SUITE [COMPONENT...]`)"
                )));
            }
            let name = match args.str("filename") {
                Some(f) => f.trim_end_matches(".list").to_string(),
                None => suggested_name(line),
            };
            if name.is_empty() || name.contains('/') {
                return Err(ModuleError::Args(format!(
                    "`apt_repository` filename `{name}` is not a file name"
                )));
            }
            let file = format!("/etc/apt/sources.list.d/{name}.list");
            let state = args.str("state").unwrap_or("present");
            let script = format!(
                "line={} file={} state={} mode={} update={} check={}\n{SCRIPT}",
                quote(line),
                quote(&file),
                quote(state),
                quote(args.str("mode").unwrap_or("0644")),
                if args.bool("update_cache", true) { 1 } else { 0 },
                if ctx.check { 1 } else { 0 },
            );
            let out = ctx.run(&script, None).await?;
            let (marks, plain) = split_marked(&out);
            if marks.iter().any(|m| m.starts_with("fail ")) || !out.success() {
                let ran = marks
                    .iter()
                    .rev()
                    .find_map(|m| m.strip_prefix("run "))
                    .unwrap_or("apt_repository");
                return Err(ModuleError::remote(
                    format!("apt_repository `{line}` failed on {}: {}", ctx.host, last_line(&plain)),
                    ran,
                    &plain,
                ));
            }
            let changes: Vec<&str> = marks.iter().filter_map(|m| m.strip_prefix("change ")).collect();
            let mut r = ModuleResult::changed(!changes.is_empty());
            let would = if ctx.check { "would " } else { "" };
            r.msg = Some(if changes.is_empty() {
                match state {
                    "absent" => "no sources file has the line".to_string(),
                    _ => "the line is in the sources".to_string(),
                }
            } else {
                changes
                    .iter()
                    .map(|c| match c.split_once(' ') {
                        Some(("add", f)) => format!("{would}add the line to {f}"),
                        Some((_, f)) => format!("{would}remove the line from {f}"),
                        None => c.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            if ctx.diff {
                for c in &changes {
                    if let Some((what, f)) = c.split_once(' ') {
                        let (before, after) = if what == "add" {
                            (String::new(), format!("{line}\n"))
                        } else {
                            (format!("{line}\n"), String::new())
                        };
                        r.diff.push(Diff {
                            path: f.to_string(),
                            before,
                            after,
                        });
                    }
                }
            }
            r.data.insert("repo".into(), line.into());
            r.data.insert(
                "sources_added".into(),
                serde_json::json!(if state == "present" && r.changed {
                    vec![file.clone()]
                } else {
                    vec![]
                }),
            );
            r.data.insert(
                "sources_removed".into(),
                serde_json::json!(
                    changes
                        .iter()
                        .filter_map(|c| c.strip_prefix("remove "))
                        .collect::<Vec<_>>()
                ),
            );
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::suggested_name;

    #[test]
    fn names_the_file_as_ansible_does() {
        assert_eq!(
            suggested_name("deb http://archive.canonical.com/ubuntu hardy partner"),
            "archive_canonical_com_ubuntu"
        );
        assert_eq!(
            suggested_name("deb [arch=amd64 signed-by=/k.gpg] https://user:pw@dl.example.org/linux/deb/ stable main"),
            "dl_example_org_linux_deb"
        );
        assert_eq!(
            suggested_name("deb-src http://nginx.org/packages/debian/ bookworm nginx"),
            "nginx_org_packages_debian"
        );
    }
}
