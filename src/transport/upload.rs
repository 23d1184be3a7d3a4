//! Placing a file on a host: compare checksums first, then write to a temp file beside the
//! destination, set mode and owner, and rename over it, so readers see the old or the new file,
//! never a partial one.

use super::{Connection, RemoteCommand, TransportError, shell::quote};
use sha2::{Digest, Sha256};

/// Files up to this size travel with the probe (one round trip); larger ones only when changed.
const INLINE_LIMIT: usize = 256 * 1024;

/// A file to place.
#[derive(Debug, Clone)]
pub struct FileSpec<'a> {
    /// Absolute destination path.
    pub dest: &'a str,
    /// The content.
    pub content: &'a [u8],
    /// Permission bits; a new file defaults to 0644, an existing one keeps its mode.
    pub mode: Option<u32>,
    /// Owner name or id.
    pub owner: Option<&'a str>,
    /// Group name or id.
    pub group: Option<&'a str>,
}

/// What placing a file did (or, in check mode, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Content, mode and owner were already right.
    Unchanged,
    /// Only mode or owner changed.
    Attributes,
    /// The file did not exist.
    Created,
    /// The content changed.
    Replaced,
}

impl UploadOutcome {
    /// True when the host changed.
    pub fn changed(self) -> bool {
        self != Self::Unchanged
    }

    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "unchanged" => Self::Unchanged,
            "attributes" => Self::Attributes,
            "created" => Self::Created,
            "replaced" => Self::Replaced,
            _ => return None,
        })
    }
}

/// The remote half. `$1`: probe only (`1`) or apply (`0`); content on stdin when applying.
const SCRIPT: &str = r#"set -eu
probe=$1
dir=$(dirname -- "$dest")
if [ ! -d "$dir" ]; then echo "directory $dir does not exist" >&2; exit 3; fi
if [ -e "$dest" ] && [ ! -f "$dest" ]; then echo "$dest exists and is not a regular file" >&2; exit 3; fi
state=created
if [ -f "$dest" ]; then
  state=replaced
  if [ "$(sha256sum < "$dest" | cut -d' ' -f1)" = "$sum" ]; then state=same; fi
fi
if [ "$state" = same ]; then
  [ "$probe" = 1 ] || cat > /dev/null
  attrs=unchanged
  if [ -n "$mode" ] && [ "$(stat -c %a "$dest")" != "$(printf %o "0$mode")" ]; then attrs=attributes; fi
  if [ -n "$owner" ] && [ "$(stat -c %U "$dest")" != "$owner" ] && [ "$(stat -c %u "$dest")" != "$owner" ]; then attrs=attributes; fi
  if [ -n "$group" ] && [ "$(stat -c %G "$dest")" != "$group" ] && [ "$(stat -c %g "$dest")" != "$group" ]; then attrs=attributes; fi
  if [ "$probe" != 1 ] && [ "$attrs" = attributes ]; then
    [ -z "$mode" ] || chmod "$mode" "$dest"
    [ -z "$owner" ] || chown "$owner" "$dest"
    [ -z "$group" ] || chgrp "$group" "$dest"
  fi
  echo "$attrs"; exit 0
fi
if [ "$probe" = 1 ]; then echo "$state"; exit 0; fi
tmp=$(mktemp "$dir/.tend.XXXXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
got=$(sha256sum < "$tmp" | cut -d' ' -f1)
if [ "$got" != "$sum" ]; then echo "content arrived damaged (sha256 $got, expected $sum)" >&2; exit 4; fi
if [ -n "$mode" ]; then chmod "$mode" "$tmp"
elif [ "$state" = replaced ]; then chmod "$(stat -c %a "$dest")" "$tmp"
else chmod 644 "$tmp"; fi
[ -z "$owner" ] || chown "$owner" "$tmp"
[ -z "$group" ] || chgrp "$group" "$tmp"
mv -f "$tmp" "$dest"
trap - EXIT
echo "$state"
"#;

/// An upload the host refused (missing directory, permissions, damaged transfer).
#[derive(Debug, Clone, thiserror::Error)]
pub enum UploadError {
    /// The connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The remote script failed.
    #[error("placing {dest} failed (rc={rc}): {stderr}")]
    Remote {
        /// Destination path.
        dest: String,
        /// Exit code of the remote script.
        rc: i32,
        /// Its stderr, trimmed.
        stderr: String,
    },
}

impl Connection {
    /// Places a file atomically; with `check`, only reports what it would do.
    pub async fn upload(
        &self,
        file: &FileSpec<'_>,
        escalate: Option<&super::Become>,
        check: bool,
    ) -> Result<UploadOutcome, UploadError> {
        let sum = hex::encode(Sha256::digest(file.content));
        let vars = format!(
            "dest={} sum={} mode={} owner={} group={}\n",
            quote(file.dest),
            sum,
            quote(&file.mode.map(|m| format!("{m:o}")).unwrap_or_default()),
            quote(file.owner.unwrap_or("")),
            quote(file.group.unwrap_or("")),
        );
        let run = |probe: bool| RemoteCommand {
            script: format!("set -- {}\n{vars}{SCRIPT}", if probe { 1 } else { 0 }),
            stdin: (!probe).then(|| file.content.to_vec()),
            escalate: escalate.cloned(),
            timeout: None,
        };
        if check || file.content.len() > INLINE_LIMIT {
            let outcome = self.upload_step(run(true), file.dest).await?;
            if check || outcome == UploadOutcome::Unchanged {
                return Ok(outcome);
            }
        }
        self.upload_step(run(false), file.dest).await
    }

    async fn upload_step(
        &self,
        command: RemoteCommand,
        dest: &str,
    ) -> Result<UploadOutcome, UploadError> {
        let out = self.run(&command).await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match (out.rc, stdout.lines().last().and_then(UploadOutcome::parse)) {
            (Some(0), Some(outcome)) => Ok(outcome),
            (rc, _) => Err(UploadError::Remote {
                dest: dest.to_string(),
                rc: rc.unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }
}
