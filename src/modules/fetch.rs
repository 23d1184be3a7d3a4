//! `fetch`: copies a file from the host to the control node, into `dest/<host>/<src path>` (or
//! straight to `dest` with `flat`). One round trip: the local copy's checksum goes with the
//! script, and the content only comes back when it differs.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::shell::quote;
use sha2::{Digest, Sha256};
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

const SCRIPT: &str = r#"if [ -d "$src" ]; then echo "remote file is a directory, fetch cannot work on directories" >&2; exit 3; fi
if [ ! -e "$src" ]; then echo missing; exit 0; fi
if [ ! -r "$src" ]; then echo "file is not readable: $src" >&2; exit 3; fi
tmp=$(mktemp) || exit 4
trap 'rm -f "$tmp"' EXIT
cat -- "$src" > "$tmp" || exit 4
sum=$(sha256sum < "$tmp" | cut -d' ' -f1)
echo "sum $sum"
[ "$sum" = "$have" ] && exit 0
printf 'content '; base64 -w0 < "$tmp"; echo
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
            let have = match std::fs::read(&local) {
                Ok(data) => hex::encode(Sha256::digest(&data)),
                Err(_) => String::new(),
            };
            let script = format!("src={} have={}\n{SCRIPT}", quote(src), quote(&have));
            let out = ctx.run(&script, None).await?;
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
            let sum = stdout
                .lines()
                .find_map(|l| l.strip_prefix("sum "))
                .unwrap_or_default()
                .to_string();
            r.data.insert("remote_checksum".into(), sum.clone().into());
            r.data.insert("checksum".into(), sum.clone().into());
            let Some(encoded) = stdout.lines().find_map(|l| l.strip_prefix("content ")) else {
                if sum != have {
                    return Err(ModuleError::remote(
                        format!("{src}: the host's answer was incomplete"),
                        format!("fetch {src}"),
                        &out,
                    ));
                }
                return Ok(r);
            };
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| ModuleError::Failed(format!("{src}: garbled content ({e})")))?;
            if args.bool("validate_checksum", true) && hex::encode(Sha256::digest(&data)) != sum {
                return Err(ModuleError::Failed(format!(
                    "checksum mismatch: the file {src} arrived damaged"
                )));
            }
            r.changed = true;
            if ctx.check {
                return Ok(r);
            }
            write_atomically(&local, &data)
                .map_err(|e| ModuleError::Failed(format!("cannot write {}: {e}", local.display())))?;
            Ok(r)
        })
    }
}

/// Writes beside the target and renames, so a reader never sees half a file.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, data)?;
    // A fetched file is an ordinary file of the control node, not a private temp file.
    use std::os::unix::fs::PermissionsExt as _;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
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
