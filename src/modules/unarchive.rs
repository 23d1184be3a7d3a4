//! `unarchive`: a tar (plain, gzip, bzip2, xz, zstd) or zip archive is extracted on the host into a
//! private temp directory and compared with `dest` (type, content, link target, mode, owner,
//! group of every member), so an archive that is already unpacked reports no change; only then
//! is the extracted tree copied into `dest`. A local archive is first placed in that temp
//! directory with the atomic upload. `creates` short-circuits before anything is sent.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::shell::{join, quote};
use crate::transport::{Content, Failure, FileSpec, UploadError};
use serde_json::Value as Json;

/// `unarchive`.
pub struct Unarchive;

const PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("remote_src", Kind::Bool),
    // The old spelling: `copy: false` is `remote_src: true`.
    Param::new("copy", Kind::Bool),
    Param::new("creates", Kind::Str),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
    Param::new("extra_opts", Kind::List),
    Param::new("list_files", Kind::Bool),
];

/// Checks `creates` and `dest`, and (for a local archive) makes the private staging directory.
const PREPARE: &str = r#"if [ -n "$creates" ] && [ -e "$creates" ]; then echo "skip"; exit 0; fi
[ -d "$dest" ] || { echo "dest '$dest' must be an existing dir" >&2; exit 3; }
if [ "$stage" = 1 ]; then t=$(mktemp -d) || exit 4; echo "stage $t"; fi
"#;

/// Detects the format, extracts into `$t/x`, compares with `$dest`, copies when different.
/// Exit codes: 3 unusable archive or missing tool, 4 extraction or copy failed.
const APPLY: &str = r#"[ -z "$t" ] || trap 'rm -rf -- "$t"' EXIT
if [ -n "$creates" ] && [ -e "$creates" ]; then echo "skip"; exit 0; fi
[ -d "$dest" ] || { echo "dest '$dest' must be an existing dir" >&2; exit 3; }
[ -f "$arc" ] && [ -r "$arc" ] || { echo "Source '$src' not found" >&2; exit 3; }
if [ -z "$t" ]; then t=$(mktemp -d) || exit 4; trap 'rm -rf -- "$t"' EXIT; fi
magic=$(head -c 6 "$arc" | od -An -tx1 | tr -d ' \n')
case "$magic" in
  1f8b*) kind=tar z=-z ;;
  425a68*) kind=tar z=-j ;;
  fd377a585a00) kind=tar z=-J ;;
  28b52ffd*) kind=tar z=--zstd ;;
  504b0304*|504b0506*) kind=zip ;;
  *) if tar -tf "$arc" >/dev/null 2>&1; then kind=tar z=; else
       echo "Failed to find handler for \"$src\". Make sure the required command to extract the file is installed." >&2; exit 3; fi ;;
esac
mkdir "$t/x" || exit 4
if [ "$kind" = zip ]; then
  command -v unzip >/dev/null 2>&1 || { echo "Unable to find required 'unzip' binary in the path" >&2; exit 3; }
  echo "handler ZipArchive"
  unzip -q -o "$arc" -d "$t/x" EXTRA >&2 || { echo "unzip failed on $src" >&2; exit 4; }
  [ "$list" = 1 ] && unzip -Z1 "$arc" | sed 's/^/file /'
else
  echo "handler TgzArchive"
  if [ -n "$z" ]; then tar -x "$z" -f "$arc" -C "$t/x" EXTRA >&2 || { echo "tar failed on $src" >&2; exit 4; }
  else tar -x -f "$arc" -C "$t/x" EXTRA >&2 || { echo "tar failed on $src" >&2; exit 4; }; fi
  [ "$list" = 1 ] && { if [ -n "$z" ]; then tar -t "$z" -f "$arc"; else tar -t -f "$arc"; fi; } | sed 's/^/file /'
fi
cd "$t/x" || exit 4
if [ -n "$mode$owner$group" ]; then
  find . -mindepth 1 ! -type l -print | while IFS= read -r f; do
    [ -z "$mode" ] || chmod "$mode" "$f" || exit 4
    [ -z "$owner" ] || chown -h "$owner" "$f" || exit 4
    [ -z "$group" ] || chgrp -h "$group" "$f" || exit 4
  done || exit 4
fi
diffs=$(find . -mindepth 1 -print | while IFS= read -r f; do
  d="$dest/${f#./}"
  if [ -L "$f" ]; then
    [ -L "$d" ] && [ "$(readlink -- "$f")" = "$(readlink -- "$d")" ] || { echo "$f"; continue; }
  elif [ -d "$f" ]; then
    [ -d "$d" ] && [ ! -L "$d" ] || { echo "$f"; continue; }
  else
    [ -f "$d" ] && [ ! -L "$d" ] && cmp -s -- "$f" "$d" || { echo "$f"; continue; }
  fi
  [ "$(stat -c '%a %u %g' -- "$f")" = "$(stat -c '%a %u %g' -- "$d")" ] || echo "$f"
done)
if [ -z "$diffs" ]; then echo "unchanged"; exit 0; fi
printf '%s\n' "$diffs" | head -n 20 | sed 's/^/differs /'
if [ "$check" = 1 ]; then echo "would extract"; exit 0; fi
cp -a . "$dest/" || { echo "copying into $dest failed" >&2; exit 4; }
echo "extracted"
"#;

impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let src = args.str("src").unwrap_or_default();
            let dest = args.str("dest").unwrap_or_default();
            let creates = args.str("creates").unwrap_or("");
            let remote_src = args.bool("remote_src", !args.bool("copy", true));
            let mut r = ModuleResult::default();
            r.data.insert("dest".into(), dest.into());
            r.data.insert("src".into(), src.into());
            let skipped = |mut r: ModuleResult| {
                r.skipped = true;
                r.msg = Some(format!("skipped, since {creates} exists"));
                Ok(r)
            };

            // A local archive goes to a private directory on the host first.
            let (arc, stage) = if remote_src {
                (src.to_string(), String::new())
            } else {
                let path = ctx.find_file(src, "files")?;
                // Streamed from disk when sent: an archive of any size.
                let hashed = crate::transport::hash_file(&path)
                    .await
                    .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))?;
                let script = format!("creates={} dest={} stage=1\n{PREPARE}", quote(creates), quote(dest));
                let out = ctx.run(&script, None).await?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                if !out.success() {
                    return Err(failure(&out, src));
                }
                if stdout.lines().any(|l| l == "skip") {
                    return skipped(r);
                }
                let stage = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("stage "))
                    .unwrap_or_default()
                    .to_string();
                if stage.is_empty() {
                    return Err(ModuleError::remote(
                        "no staging directory on the host",
                        "mktemp -d",
                        &out,
                    ));
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or("archive".into());
                let arc = format!("{stage}/{name}");
                let spec = FileSpec {
                    mode: Some(0o600),
                    ..FileSpec::new(&arc, Content::File { path: &path, hashed })
                };
                if let Err(e) = ctx.remote()?.upload(&spec, false).await {
                    // Best effort: the staging directory is ours and useless now.
                    let _ = ctx.run(&format!("rm -rf -- {}", quote(&stage)), None).await;
                    return Err(match e {
                        UploadError::Transport(t) => ModuleError::Transport(t),
                        UploadError::Remote { dest, rc, stderr } => ModuleError::Remote(Failure {
                            message: format!("could not copy the archive to {dest}"),
                            command: format!("upload {dest}"),
                            rc: Some(rc),
                            stdout: String::new(),
                            stderr,
                        }),
                    });
                }
                (arc, stage)
            };

            let extra = args.list("extra_opts");
            let extra = if extra.is_empty() { String::new() } else { join(&extra) };
            let flag = |b: bool| if b { "1" } else { "0" };
            let script = format!(
                "src={} arc={} dest={} creates={} t={} check={} list={} mode={} owner={} group={}\n{}",
                quote(src),
                quote(&arc),
                quote(dest),
                quote(creates),
                quote(&stage),
                flag(ctx.check),
                flag(args.bool("list_files", false)),
                quote(args.str("mode").unwrap_or("")),
                quote(args.str("owner").unwrap_or("")),
                quote(args.str("group").unwrap_or("")),
                APPLY.replace(" EXTRA ", &format!(" {extra} ")),
            );
            let out = ctx.run(&script, None).await?;
            if !out.success() {
                return Err(failure(&out, src));
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            if stdout.lines().any(|l| l == "skip") {
                return skipped(r);
            }
            if let Some(h) = stdout.lines().find_map(|l| l.strip_prefix("handler ")) {
                r.data.insert("handler".into(), h.into());
            }
            if args.bool("list_files", false) {
                let files: Vec<Json> = stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("file "))
                    .map(|f| Json::String(f.into()))
                    .collect();
                r.data.insert("files".into(), Json::Array(files));
            }
            let differs: Vec<&str> = stdout
                .lines()
                .filter_map(|l| l.strip_prefix("differs "))
                .map(|f| f.trim_start_matches("./"))
                .collect();
            r.changed = !differs.is_empty();
            if r.changed {
                r.msg = Some(format!("{} differs from the archive", differs.join(", ")));
            }
            Ok(r)
        })
    }
}

fn failure(out: &crate::transport::Output, src: &str) -> ModuleError {
    ModuleError::remote(
        crate::modules::last_error_line(out, "unarchive failed"),
        format!("unarchive {src}"),
        out,
    )
}
