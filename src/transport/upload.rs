//! Placing a file on a host: compare checksums first, then write to a temp file beside the
//! destination, set mode and owner, and rename over it, so readers see the old or the new file,
//! never a partial one.

use super::process::Input;
use super::{Hashed, Host, Output, RemoteCommand, TransportError, shell::quote};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Files up to this size travel with the probe (one round trip); larger ones only when changed.
pub const INLINE_LIMIT: u64 = 256 * 1024;

/// What goes into a placed file.
#[derive(Debug, Clone)]
pub enum Content<'a> {
    /// Bytes in memory (rendered templates, inline content, small files).
    Bytes(&'a [u8]),
    /// A local file, streamed from disk when it is sent; `hashed` was computed beforehand.
    File {
        /// The file.
        path: &'a Path,
        /// Its size and SHA-256.
        hashed: Hashed,
    },
}

impl Content<'_> {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File { hashed, .. } => hashed.bytes,
        }
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sha256(&self) -> String {
        match self {
            Content::Bytes(b) => hex::encode(Sha256::digest(b)),
            Content::File { hashed, .. } => hashed.sha256.clone(),
        }
    }
}

/// A file to place.
#[derive(Debug, Clone)]
pub struct FileSpec<'a> {
    /// Absolute destination path.
    pub dest: &'a str,
    /// The content.
    pub content: Content<'a>,
    /// Permission bits; a new file defaults to 0644, an existing one keeps its mode.
    pub mode: Option<u32>,
    /// Owner name or id.
    pub owner: Option<&'a str>,
    /// Group name or id.
    pub group: Option<&'a str>,
    /// A command that must accept the new file before it replaces the old one; `%s` is the
    /// new file's path (e.g. `nginx -t -c %s`).
    pub validate: Option<&'a str>,
    /// Keep a timestamped copy of the old file when replacing it.
    pub backup: bool,
    /// Replace a file whose content differs (`false`: only create missing files).
    pub force: bool,
    /// When the destination is a directory, the file name to use inside it.
    pub name_in_dir: Option<&'a str>,
    /// Return the old content (text up to 256 KiB) for `--diff`.
    pub want_before: bool,
    /// Write only if the destination still has this sha256 (`absent`: must not exist), so an
    /// edit computed from content read earlier never overwrites a change made since.
    pub expect_sum: Option<&'a str>,
}

impl<'a> FileSpec<'a> {
    /// A plain file: replaced when different, no validation, no backup.
    pub fn new(dest: &'a str, content: Content<'a>) -> Self {
        Self {
            dest,
            content,
            mode: None,
            owner: None,
            group: None,
            validate: None,
            backup: false,
            force: true,
            name_in_dir: None,
            want_before: false,
            expect_sum: None,
        }
    }
}

/// What placing a file did, with what `--diff` and `backup` need.
#[derive(Debug, Clone)]
pub struct UploadReport {
    /// The outcome.
    pub outcome: UploadOutcome,
    /// The destination actually used (inside a directory destination).
    pub dest: String,
    /// The old content, when asked for and small enough.
    pub before: Option<Vec<u8>>,
    /// Where the backup copy went.
    pub backup_file: Option<String>,
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
/// Exit codes: 3 bad destination, 4 damaged transfer, 5 validation refused the new file,
/// 6 the destination changed since it was read (`expect_sum`).
const SCRIPT: &str = r#"set -eu
probe=$1
if [ -n "$name" ] && [ -d "$dest" ]; then dest="${dest%/}/$name"; fi
echo "dest $dest"
case $dest in
  */) dir=$(dirname -- "$dest") ;;
  */*) dir=${dest%/*}; dir=${dir:-/} ;;
  *) dir=. ;;
esac
if [ ! -d "$dir" ]; then echo "directory $dir does not exist" >&2; exit 3; fi
if [ -e "$dest" ] && [ ! -f "$dest" ]; then echo "$dest exists and is not a regular file" >&2; exit 3; fi
guard() {
  [ -n "$expect" ] || return 0
  if [ -f "$dest" ]; then cur=$(tend_sha256 < "$dest"); else cur=absent; fi
  if [ "$cur" != "$expect" ]; then echo "$dest changed since it was read (sha256 $cur, expected $expect)" >&2; exit 6; fi
}
guard
state=created
if [ -f "$dest" ]; then
  state=replaced
  if [ "$force" = 0 ]; then state=same; else
    [ "$(tend_sha256 < "$dest")" != "$sum" ] || state=same
  fi
fi
if [ "$state" = same ]; then
  [ "$probe" = 1 ] || cat > /dev/null
  attrs=unchanged
  if [ -n "$mode$owner$group" ]; then
    set -- $(stat -c '%a %U %u %G %g' -- "$dest")
    if [ -n "$mode" ] && [ "$1" != "$mode" ]; then attrs=attributes; fi
    if [ -n "$owner" ] && [ "$2" != "$owner" ] && [ "$3" != "$owner" ]; then attrs=attributes; fi
    if [ -n "$group" ] && [ "$4" != "$group" ] && [ "$5" != "$group" ]; then attrs=attributes; fi
  fi
  if [ "$probe" != 1 ] && [ "$attrs" = attributes ]; then
    [ -z "$mode" ] || chmod "$mode" "$dest"
    [ -z "$owner" ] || chown "$owner" "$dest"
    [ -z "$group" ] || chgrp "$group" "$dest"
  fi
  echo "$attrs"; exit 0
fi
if [ "$want_before" = 1 ] && [ "$state" = replaced ] && [ "$(stat -c %s "$dest")" -le 262144 ]; then
  printf 'before '; base64 -w0 < "$dest"; echo
fi
if [ "$probe" = 1 ]; then echo "$state"; exit 0; fi
tmp=$(mktemp "$dir/.tend.XXXXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
got=$(tend_sha256 < "$tmp")
if [ "$got" != "$sum" ]; then echo "content arrived damaged (sha256 $got, expected $sum)" >&2; exit 4; fi
if [ -n "$mode" ]; then chmod "$mode" "$tmp"
elif [ "$state" = replaced ]; then chmod --reference="$dest" "$tmp"
else chmod 644 "$tmp"; fi
[ -z "$owner" ] || chown "$owner" "$tmp"
[ -z "$group" ] || chgrp "$group" "$tmp"
validate
guard
if [ "$state" = replaced ] && [ "$backup" = 1 ]; then
  bk="$dest.$(date +%Y-%m-%d@%H:%M:%S).$$~"; cp -p "$dest" "$bk"; echo "backup $bk"
fi
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

/// The remote script of an upload: probe only, or probe and write with the content on stdin.
fn upload_script(file: &FileSpec<'_>, probe: bool) -> String {
    let sum = file.content.sha256();
    let flag = |b: bool| if b { "1" } else { "0" };
    let vars = format!(
        "dest={} sum={} mode={} owner={} group={} force={} backup={} want_before={} name={} expect={}\n",
        quote(file.dest),
        sum,
        quote(&file.mode.map(|m| format!("{m:o}")).unwrap_or_default()),
        quote(file.owner.unwrap_or("")),
        quote(file.group.unwrap_or("")),
        flag(file.force),
        flag(file.backup),
        flag(file.want_before),
        quote(file.name_in_dir.unwrap_or("")),
        quote(file.expect_sum.unwrap_or("")),
    );
    // The validation command is the user's own shell text; `%s` becomes the new file.
    let validate = match file.validate {
        Some(cmd) => format!(
            "if ! out=$({} 2>&1); then printf 'validation failed: %s\\n' \"$out\" >&2; exit 5; fi",
            cmd.replace("%s", "\"$tmp\"")
        ),
        None => ":".into(),
    };
    let script = SCRIPT.replacen("\nvalidate\n", &format!("\n{validate}\n"), 1);
    format!(
        "set -- {}\n{vars}{}{script}",
        if probe { 1 } else { 0 },
        super::shell::SHA256_FN
    )
}

/// The upload as one script and its stdin, for callers that send it together with other work;
/// `None` when the content is large enough (or on disk) to be probed for before it is sent.
pub fn one_step(file: &FileSpec<'_>, check: bool) -> Option<(String, Option<Vec<u8>>)> {
    match file.content {
        _ if check => Some((upload_script(file, true), None)),
        Content::Bytes(b) if (b.len() as u64) <= INLINE_LIMIT => Some((upload_script(file, false), Some(b.to_vec()))),
        _ => None,
    }
}

/// The upload as one script that writes (content on stdin) without probing first, for a caller
/// that already knows the content differs (an edited file).
pub fn write_step(file: &FileSpec<'_>, content: &[u8]) -> (String, Option<Vec<u8>>) {
    (upload_script(file, false), Some(content.to_vec()))
}

/// Reads what the upload script printed.
pub fn read_report(out: &Output, dest: &str) -> Result<UploadReport, UploadError> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut report = UploadReport {
        outcome: UploadOutcome::Unchanged,
        dest: dest.to_string(),
        before: None,
        backup_file: None,
    };
    let mut outcome = None;
    for line in stdout.lines() {
        if let Some(d) = line.strip_prefix("dest ") {
            report.dest = d.to_string();
        } else if let Some(b) = line.strip_prefix("before ") {
            report.before = base64_decode(b);
        } else if let Some(b) = line.strip_prefix("backup ") {
            report.backup_file = Some(b.to_string());
        } else {
            outcome = UploadOutcome::parse(line).or(outcome);
        }
    }
    match (out.rc, outcome) {
        (Some(0), Some(outcome)) => {
            report.outcome = outcome;
            Ok(report)
        }
        (rc, _) => Err(UploadError::Remote {
            dest: report.dest,
            rc: rc.unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

impl Host {
    /// Places a file atomically; with `check`, only reports what it would do. Large content
    /// (and every local file) is probed for first and sent only when it differs, streamed.
    pub async fn upload(&self, file: &FileSpec<'_>, check: bool) -> Result<UploadReport, UploadError> {
        if check || file.content.len() > INLINE_LIMIT || matches!(file.content, Content::File { .. }) {
            let report = self.upload_step(file, true).await?;
            if check || report.outcome == UploadOutcome::Unchanged {
                return Ok(report);
            }
        }
        self.upload_step(file, false).await
    }

    async fn upload_step(&self, file: &FileSpec<'_>, probe: bool) -> Result<UploadReport, UploadError> {
        let command = RemoteCommand::new(upload_script(file, probe));
        let out = match (&file.content, probe) {
            (_, true) => self.run(&command, Input::None).await?,
            (Content::Bytes(b), false) => self.run(&command, Input::Bytes(b)).await?,
            (Content::File { path, .. }, false) => self.from_file(&command, &[], path).await?.0,
        };
        read_report(&out, file.dest)
    }
}

/// Decodes what `base64 -w0` prints; `None` when malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()
}
