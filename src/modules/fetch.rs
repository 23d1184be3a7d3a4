//! `fetch`: copies a file from the host to the control node, into `dest/<host>/<src path>` (or
//! straight to `dest` with `flat`). The host's checksum is compared with the local copy's
//! first; only a file that differs is sent, streamed into a temporary file beside the local
//! destination with its SHA-256 computed on the way, and renamed into place once it matches:
//! a file of any size, in constant memory.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::RemoteCommand;
use crate::transport::shell::quote;
use std::path::{Path, PathBuf};

/// `fetch`.
pub struct Fetch;

const PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("flat", Kind::Bool),
    Param::new("fail_on_missing", Kind::Bool),
    Param::new("validate_checksum", Kind::Bool),
];

/// The probe: what the file is and its checksum.
const PROBE: &str = r#"if [ -d "$src" ]; then echo "remote file is a directory, fetch cannot work on directories" >&2; exit 3; fi
if [ ! -e "$src" ]; then echo missing; exit 0; fi
if [ ! -r "$src" ]; then echo "file is not readable: $src" >&2; exit 3; fi
sum=$(tend_sha256 < "$src") || exit 4
echo "sum $sum"
"#;

/// Where the file goes on the control node, as Ansible lays it out.
pub fn local_path(dest: &Path, host: &str, src: &str, flat: bool) -> PathBuf {
    if flat {
        if dest.as_os_str().to_string_lossy().ends_with('/') {
            let name = Path::new(src).file_name().map(|n| n.to_os_string()).unwrap_or_default();
            dest.join(name)
        } else {
            dest.to_path_buf()
        }
    } else {
        dest.join(host).join(src.trim_start_matches('/'))
    }
}

impl Module for Fetch {
    fn name(&self) -> &'static str {
        "fetch"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let src = args.str("src").unwrap_or_default();
            let dest_arg = args.str("dest").unwrap_or_default();
            let mut dest = PathBuf::from(dest_arg);
            if dest.is_relative() {
                // Relative to the playbook's directory, like Ansible's `path_dwim`.
                if let Some(base) = ctx.search_paths.last() {
                    dest = base.join(dest);
                }
            }
            if dest_arg.ends_with('/') && !dest.as_os_str().to_string_lossy().ends_with('/') {
                dest = PathBuf::from(format!("{}/", dest.display()));
            }
            let local = local_path(&dest, ctx.host, src, args.bool("flat", false));
            let have = match crate::transport::hash_file(&local).await {
                Ok(h) => h.sha256,
                Err(_) => String::new(),
            };
            let out = ctx
                .run(
                    &format!("src={}\n{}{PROBE}", quote(src), crate::transport::shell::SHA256_FN),
                    None,
                )
                .await?;
            if !out.success() {
                return Err(ModuleError::remote(
                    crate::modules::last_error_line(&out, "cannot read the file"),
                    format!("fetch {src}"),
                    &out,
                ));
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut r = ModuleResult::default();
            r.data.insert("dest".into(), local.display().to_string().into());
            r.data.insert("file".into(), src.into());
            if stdout.lines().any(|l| l == "missing") {
                if args.bool("fail_on_missing", true) {
                    return Err(ModuleError::Failed(format!(
                        "the remote file does not exist, not transferring, ignored: {src}"
                    )));
                }
                r.msg = Some("the remote file does not exist, not transferring, ignored".into());
                return Ok(r);
            }
            let Some(sum) = stdout.lines().find_map(|l| l.strip_prefix("sum ")).map(str::to_string) else {
                return Err(ModuleError::remote(
                    format!("{src}: the host's answer was incomplete"),
                    format!("fetch {src}"),
                    &out,
                ));
            };
            r.data.insert("remote_checksum".into(), sum.clone().into());
            r.data.insert("checksum".into(), sum.clone().into());
            if sum == have {
                return Ok(r);
            }
            r.changed = true;
            if ctx.check {
                return Ok(r);
            }
            let unwritable = |e: std::io::Error| ModuleError::Failed(format!("cannot write {}: {e}", local.display()));
            let dir = local.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(unwritable)?;
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(unwritable)?;
            let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(unwritable)?);
            let command = RemoteCommand::new(format!("exec cat -- {}", quote(src))).timeout(ctx.timeout);
            let (out, got) = ctx
                .remote()?
                .to_file(&command, crate::transport::Input::None, &mut file)
                .await?;
            if !out.success() {
                return Err(ModuleError::remote(
                    crate::modules::last_error_line(&out, "cannot read the file"),
                    format!("cat {src}"),
                    &out,
                ));
            }
            if args.bool("validate_checksum", true) && got.sha256 != sum {
                return Err(ModuleError::Failed(format!(
                    "checksum mismatch: {src} arrived with sha256 {} instead of {sum} (it changed while it was read, or the transfer was damaged)",
                    got.sha256
                )));
            }
            file.sync_all().await.map_err(unwritable)?;
            drop(file);
            // A fetched file is an ordinary file of the control node, not a private temp file.
            use std::os::unix::fs::PermissionsExt as _;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(unwritable)?;
            tmp.persist(&local).map_err(|e| unwritable(e.error))?;
            r.data.insert("size".into(), got.bytes.into());
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_like_ansible() {
        let d = Path::new("/backup");
        assert_eq!(
            local_path(d, "h1", "/etc/hosts", false),
            PathBuf::from("/backup/h1/etc/hosts")
        );
        assert_eq!(
            local_path(Path::new("/b/"), "h1", "/etc/hosts", true),
            PathBuf::from("/b/hosts")
        );
        assert_eq!(
            local_path(Path::new("/b/x.txt"), "h1", "/etc/hosts", true),
            PathBuf::from("/b/x.txt")
        );
    }
}
