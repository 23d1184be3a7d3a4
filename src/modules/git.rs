//! `git`: a checkout of a repository at a branch, tag or commit, made and brought up to date
//! by the host's `git` in one remote script. Check mode asks the remote (`git ls-remote`) and
//! changes nothing; local modifications are never thrown away unless `force: true`.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `git`.
pub struct Git;

const PARAMS: &[Param] = &[
    Param::new("repo", Kind::Str).required().aliases(&["name"]),
    Param::new("dest", Kind::Str).required(),
    Param::new("version", Kind::Str),
    Param::new("remote", Kind::Str),
    Param::new("force", Kind::Bool),
    Param::new("update", Kind::Bool),
    Param::new("clone", Kind::Bool),
    Param::new("depth", Kind::Int),
    Param::new("single_branch", Kind::Bool),
    Param::new("accept_hostkey", Kind::Bool),
    Param::new("accept_newhostkey", Kind::Bool),
    Param::new("key_file", Kind::Str),
    Param::new("recursive", Kind::Bool),
    Param::new("umask", Kind::Str),
    Param::new("executable", Kind::Str),
];

const SCRIPT: &str = concat!(
    step_script!(),
    r#"export GIT_TERMINAL_PROMPT=0
command -v "$git" >/dev/null 2>&1 || { echo "no \`$git\` on $(hostname)" >&2; say "fail none 127"; exit 127; }
[ -z "$umask" ] || umask "$umask"
# The commit `version` names at the remote (empty: unknown there).
remote_commit() {
  case $version in
    HEAD) "$git" ls-remote "$repo" HEAD ;;
    *) "$git" ls-remote "$repo" "refs/heads/$version" "refs/tags/$version^{}" "refs/tags/$version" ;;
  esac 2>"$e" | awk 'NR==1 || /\^\{\}$/ {c=$1} END {print c}'
}
is_sha() { printf '%s' "$version" | grep -Eq '^[0-9a-f]{7,40}$'; }
if [ ! -e "$dest/.git" ]; then
  if [ -e "$dest" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
    echo "destination $dest exists and is not an empty directory nor a git checkout" >&2; say "fail dest 1"; exit 1
  fi
  [ "$clone" = 1 ] || { say "absent"; exit 0; }
  if [ "$check" = 1 ]; then
    if is_sha; then say "change clone $version"; exit 0; fi
    c=$(remote_commit); [ -n "$c" ] || { cat "$e" >&2; echo "version $version not found in $repo" >&2; say "fail version 1"; exit 1; }
    say "change clone $c"; exit 0
  fi
  set -- clone --origin "$remote"
  [ -z "$depth" ] || set -- "$@" --depth "$depth"
  [ "$single" = 1 ] && set -- "$@" --single-branch
  [ "$recursive" = 1 ] && set -- "$@" --recurse-submodules
  if [ "$version" != HEAD ] && ! is_sha; then set -- "$@" --branch "$version"; fi
  step "$git" "$@" -- "$repo" "$dest"
  if is_sha; then step "$git" -C "$dest" checkout --quiet --detach "$version"; fi
  say "change clone $("$git" -C "$dest" rev-parse HEAD)"
  exit 0
fi
before=$("$git" -C "$dest" rev-parse HEAD 2>/dev/null) || before=
say "before $before"
[ "$update" = 1 ] || exit 0
mods=$("$git" -C "$dest" status --porcelain --untracked-files=no 2>/dev/null)
if [ -n "$mods" ]; then
  if [ "$force" != 1 ]; then
    echo "Local modifications exist in the destination: $dest (force=no)." >&2; say "fail modified 1"; exit 1
  fi
  say "change discard"
fi
url=$("$git" -C "$dest" remote get-url "$remote" 2>/dev/null) || url=
if [ "$check" = 1 ]; then
  if is_sha; then want=$("$git" -C "$dest" rev-parse --verify -q "$version^{commit}") || want=$version
  else want=$(remote_commit); [ -n "$want" ] || { cat "$e" >&2; echo "version $version not found in $repo" >&2; say "fail version 1"; exit 1; }
  fi
  [ "$url" = "$repo" ] || say "change url $url"
  [ "$want" = "$before" ] || say "change update $want"
  exit 0
fi
if [ "$url" != "$repo" ]; then
  if [ -n "$url" ]; then step "$git" -C "$dest" remote set-url "$remote" "$repo"; else step "$git" -C "$dest" remote add "$remote" "$repo"; fi
  say "change url $url"
fi
set -- fetch --quiet --tags --force "$remote"
[ -z "$depth" ] || set -- "$@" --depth "$depth"
step "$git" -C "$dest" "$@"
if [ "$version" = HEAD ]; then
  b=$("$git" -C "$dest" ls-remote --symref "$remote" HEAD 2>/dev/null | awk '/^ref:/ {sub("refs/heads/", "", $2); print $2; exit}')
  [ -n "$b" ] || b=$("$git" -C "$dest" rev-parse --abbrev-ref HEAD)
  version=$b
fi
if "$git" -C "$dest" rev-parse --verify -q "refs/remotes/$remote/$version" >/dev/null; then
  want=$("$git" -C "$dest" rev-parse "refs/remotes/$remote/$version")
  if [ "$want" != "$before" ] || [ "$("$git" -C "$dest" rev-parse --abbrev-ref HEAD)" != "$version" ]; then
    step "$git" -C "$dest" checkout --quiet --force -B "$version" "$want"
    step "$git" -C "$dest" branch --quiet --set-upstream-to "$remote/$version"
  fi
elif want=$("$git" -C "$dest" rev-parse --verify -q "$version^{commit}"); then
  [ "$want" = "$before" ] || step "$git" -C "$dest" checkout --quiet --force --detach "$want"
else
  echo "version $version not found in $repo" >&2; say "fail version 1"; exit 1
fi
[ -z "$mods" ] || step "$git" -C "$dest" reset --quiet --hard "$want"
[ "$recursive" = 1 ] && step "$git" -C "$dest" submodule --quiet update --init --recursive
[ "$want" = "$before" ] || say "change update $want"
exit 0
"#
);

impl Module for Git {
    fn name(&self) -> &'static str {
        "git"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let repo = args.str("repo").unwrap_or_default();
            let dest = args.str("dest").unwrap_or_default();
            let version = args.str("version").unwrap_or("HEAD");
            if version.starts_with('-') || repo.starts_with('-') {
                return Err(ModuleError::Args("`git` repo and version cannot start with `-`".into()));
            }
            let mut env = String::new();
            if let Some(key) = args.str("key_file") {
                let strict = if args.bool("accept_hostkey", false) {
                    " -o StrictHostKeyChecking=no"
                } else if args.bool("accept_newhostkey", false) {
                    " -o StrictHostKeyChecking=accept-new"
                } else {
                    ""
                };
                env = format!(
                    "export GIT_SSH_COMMAND={}\n",
                    quote(&format!("ssh -i {} -o IdentitiesOnly=yes{strict}", quote(key)))
                );
            } else if args.bool("accept_hostkey", false) {
                env = "export GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no'\n".into();
            } else if args.bool("accept_newhostkey", false) {
                env = "export GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=accept-new'\n".into();
            }
            let flag = |p: &str, default: bool| if args.bool(p, default) { 1 } else { 0 };
            let script = format!(
                "{env}repo={} dest={} version={} remote={} git={} umask={} depth={}\n\
                 force={} update={} clone={} single={} recursive={} check={}\n{SCRIPT}",
                quote(repo),
                quote(dest),
                quote(version),
                quote(args.str("remote").unwrap_or("origin")),
                quote(args.str("executable").unwrap_or("git")),
                quote(args.str("umask").unwrap_or_default()),
                quote(&args.int("depth").map(|d| d.to_string()).unwrap_or_default()),
                flag("force", false),
                flag("update", true),
                flag("clone", true),
                flag("single_branch", false),
                flag("recursive", true),
                if ctx.check { 1 } else { 0 },
            );
            let out = ctx.run(&script, None).await?;
            let (marks, plain) = split_marked(&out);
            let ran = marks.iter().rev().find_map(|m| m.strip_prefix("run "));
            if marks.iter().any(|m| m.starts_with("fail ")) || !out.success() {
                let plain = crate::transport::Output {
                    rc: plain.rc,
                    stdout: without_password(&String::from_utf8_lossy(&plain.stdout)).into_bytes(),
                    stderr: without_password(&String::from_utf8_lossy(&plain.stderr)).into_bytes(),
                };
                return Err(ModuleError::remote(
                    format!(
                        "git {} → {dest} failed on {}: {}",
                        without_password(repo),
                        ctx.host,
                        last_line(&plain)
                    ),
                    without_password(ran.unwrap_or("git")),
                    &plain,
                ));
            }
            let before = marks
                .iter()
                .find_map(|m| m.strip_prefix("before "))
                .filter(|b| !b.is_empty());
            let clone = marks.iter().find_map(|m| m.strip_prefix("change clone "));
            let update = marks.iter().find_map(|m| m.strip_prefix("change update "));
            let url_changed = marks.iter().any(|m| m.starts_with("change url"));
            let discarded = marks.iter().any(|m| m == "change discard");
            let after = clone.or(update).or(before);
            let mut r = ModuleResult::changed(clone.is_some() || update.is_some() || url_changed || discarded);
            let would = if ctx.check { "would " } else { "" };
            r.msg = Some(match (clone, update, before) {
                (Some(a), _, _) => format!("{would}clone {repo} at {a}"),
                (_, Some(a), Some(b)) => format!("{would}update {dest} from {b} to {a}"),
                (_, Some(a), None) => format!("{would}update {dest} to {a}"),
                _ if marks.iter().any(|m| m == "absent") => format!("{dest} is no checkout and `clone` is off"),
                _ if discarded => format!("{would}discard the local modifications in {dest}"),
                _ => format!("{dest} is at {}", after.unwrap_or("?")),
            });
            r.data.insert("before".into(), before.map_or(Json::Null, Json::from));
            r.data.insert("after".into(), after.map_or(Json::Null, Json::from));
            r.data.insert("remote_url_changed".into(), Json::Bool(url_changed));
            Ok(r)
        })
    }
}

/// A URL's password (`https://user:token@host/…`) hidden, for messages: the repository's
/// address is shown, its credentials are not.
fn without_password(text: &str) -> String {
    static USERINFO: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(://[^/@\s:]*):[^/@\s]*@").ok());
    match &*USERINFO {
        Some(re) => re.replace_all(text, "$1:********@").into_owned(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_url_password_is_hidden_and_the_rest_kept() {
        assert_eq!(
            without_password("git clone https://ci:t0k3n@git.example/shop.git /srv/x"),
            "git clone https://ci:********@git.example/shop.git /srv/x"
        );
        assert_eq!(without_password("ssh://git@host/x.git"), "ssh://git@host/x.git");
    }
}
