//! The backup store: a directory on a host of the inventory, or on the control node. Files
//! arrive as streams (from the database host straight to the store host, through the control
//! node in constant memory) into `NAME.part`, with the SHA-256 of what was sent; a file gets its
//! name only when the caller has checked that its sender finished ([`Store::commit`]). Nothing
//! is held whole in memory or staged on the control node; the store is readable by its owner
//! only (a dump holds the server's password hashes).

use super::catalog::{self, Backup, File};
use crate::transport::{Failure, Host, Input, Output, RemoteCommand, StepError, pipe, shell::quote};
use std::path::PathBuf;
use std::time::Duration;

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// A directory on the control node.
    Local(PathBuf),
    /// A directory on a host of the inventory (by inventory name).
    Remote {
        /// The host.
        host: String,
        /// The directory.
        dir: String,
    },
}

/// Writes the stdin to `$dir/$rel.part` and prints the bytes written.
const RECEIVE: &str = r#"set -u
umask 077
mkdir -p -- "$(dirname -- "$dir/$rel")" || exit 3
# cat's complaint is kept in memory: on a full disk no file could hold it.
if ! why=$(cat 2>&1 > "$dir/$rel.part"); then
  rm -f -- "$dir/$rel.part"; echo "cannot write $dir/$rel: ${why#cat: }" >&2; exit 3
fi
sync -f "$dir/$rel.part" 2>/dev/null || sync
stat -c %s -- "$dir/$rel.part"
"#;

/// Writes the stdin to `$dir/$rel` through a temporary file renamed over it.
const PUT: &str = r#"set -u
umask 077
mkdir -p -- "$(dirname -- "$dir/$rel")" || exit 3
tmp="$dir/$rel.tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
if ! why=$(cat 2>&1 > "$tmp"); then echo "cannot write $dir/$rel: ${why#cat: }" >&2; exit 3; fi
mv -f -- "$tmp" "$dir/$rel" || exit 3
trap - EXIT
"#;

/// Cuts `$dir/$rel` to `$offset` bytes, appends the stdin, prints the new size and SHA-256.
const APPEND: &str = r#"set -u
umask 077
mkdir -p -- "$(dirname -- "$dir/$rel")" || exit 3
f="$dir/$rel"
touch -- "$f" || exit 3
have=$(stat -c %s -- "$f") || exit 3
[ "$have" -ge "$offset" ] || { echo "$f holds $have bytes, the index says $offset were shipped: the store lost data" >&2; exit 3; }
truncate -s "$offset" -- "$f" || exit 3
cat >> "$f" || { echo "cannot write $f (disk full?)" >&2; truncate -s "$offset" -- "$f"; exit 3; }
sync -f "$f" 2>/dev/null || sync
echo "$(stat -c %s -- "$f") $(tend_sha256 < "$f")"
"#;

const SHORT: Duration = Duration::from_secs(120);

/// A failure of the store on the control node.
fn local_failure(message: String) -> StepError {
    StepError::remote("localhost", "store", Failure::message(message, "write to the store"))
}

/// Creates the directory a store file goes in (owner only).
fn private_parent(path: &std::path::Path) -> Result<(), String> {
    match path.parent() {
        Some(parent) => crate::private::dir(parent).map_err(|e| format!("cannot create {}: {e}", parent.display())),
        None => Ok(()),
    }
}

fn not_connected(host: &str) -> StepError {
    StepError::remote(
        host,
        "store",
        Failure::message("internal: the store host is not connected", "store"),
    )
}

impl Store {
    /// Says where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(d) => format!("{} on the control node", d.display()),
            Self::Remote { host, dir } => format!("{host}:{dir}"),
        }
    }

    /// Streams the output of `command` on `from` (stdin `input`) into the store as `rel.part`
    /// (`rel` a path inside the store). Returns the file as sent and the sending command's
    /// exit and stderr; the caller checks those, then [`Store::commit`]s or discards.
    pub async fn receive(
        &self,
        store_host: Option<&Host>,
        from: &Host,
        (command, input): (&RemoteCommand, Input<'_>),
        rel: &str,
    ) -> Result<(File, Output), StepError> {
        let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
        match (self, store_host) {
            (Self::Remote { host, dir }, Some(to)) => {
                let script = format!("dir={} rel={}\n{RECEIVE}", quote(dir), quote(rel));
                let t = into_store(
                    from,
                    (command, input),
                    (to, host),
                    &script,
                    &format!("write {dir}/{rel}"),
                )
                .await?;
                if let Some(e) = source_failure(from, &t.source) {
                    return Err(e);
                }
                let stored: Option<u64> = String::from_utf8_lossy(&t.dest.stdout).trim().parse().ok();
                if stored != Some(t.hashed.bytes) {
                    return Err(StepError::remote(
                        host,
                        "store",
                        Failure::message(
                            format!(
                                "the store holds {} bytes of {dir}/{rel}, {} were sent",
                                stored.map_or("an unknown number of".to_string(), |n| n.to_string()),
                                t.hashed.bytes
                            ),
                            format!("write {dir}/{rel}"),
                        ),
                    ));
                }
                let file = File {
                    name,
                    bytes: t.hashed.bytes,
                    sha256: t.hashed.sha256,
                };
                Ok((file, t.source))
            }
            (Self::Local(dir), _) => {
                let path = dir.join(format!("{rel}.part"));
                private_parent(&path).map_err(local_failure)?;
                let file = crate::private::file(&path)
                    .map_err(|e| local_failure(format!("cannot create {}: {e}", path.display())))?;
                let mut file = tokio::fs::File::from_std(file);
                let result = from.to_file(command, input, &mut file).await;
                let synced = file.sync_all().await;
                drop(file);
                let (out, hashed) = match result {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        return Err(StepError::transport(from.name(), "backup", e));
                    }
                };
                let failure = synced
                    .err()
                    .map(|e| local_failure(format!("cannot write {}: {e}", path.display())))
                    .or_else(|| source_failure(from, &out));
                if let Some(e) = failure {
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                let file = File {
                    name,
                    bytes: hashed.bytes,
                    sha256: hashed.sha256,
                };
                Ok((file, out))
            }
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// Gives a received file (`rel.part`) its name.
    pub async fn commit(&self, store_host: Option<&Host>, rel: &str) -> Result<(), StepError> {
        match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                let script = format!("mv -f -- {0}/{1}.part {0}/{1}", quote(dir), quote(rel));
                to.step("store", &format!("complete {dir}/{rel}"), script, Input::None, SHORT)
                    .await
                    .map(|_| ())
            }
            (Self::Local(dir), _) => {
                let path = dir.join(rel);
                std::fs::rename(dir.join(format!("{rel}.part")), &path).map_err(|e| {
                    StepError::remote(
                        "localhost",
                        "store",
                        Failure::message(format!("cannot complete {}: {e}", path.display()), "store"),
                    )
                })
            }
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// Writes a small file (a catalog entry) atomically.
    pub async fn put(&self, store_host: Option<&Host>, rel: &str, bytes: &[u8]) -> Result<(), StepError> {
        match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                let script = format!("dir={} rel={}\n{PUT}", quote(dir), quote(rel));
                to.step(
                    "store",
                    &format!("write {dir}/{rel}"),
                    script,
                    Input::Bytes(bytes),
                    SHORT,
                )
                .await
                .map(|_| ())
            }
            (Self::Local(dir), _) => {
                let path = dir.join(rel);
                private_parent(&path).map_err(local_failure)?;
                let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
                let written = crate::private::file(&tmp).and_then(|mut f| {
                    use std::io::Write as _;
                    f.write_all(bytes)?;
                    f.sync_all()
                });
                written.map_err(|e| local_failure(format!("cannot write {}: {e}", tmp.display())))?;
                std::fs::rename(&tmp, &path).map_err(|e| local_failure(format!("cannot rename {}: {e}", tmp.display())))
            }
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// Removes the directories of backups the catalog does not list: what a run that was
    /// killed before it could list or discard its backup left behind. Only called under the
    /// cluster lock, so no run that is still writing is swept. Returns the ids removed.
    pub async fn sweep(&self, store_host: Option<&Host>) -> Result<Vec<String>, StepError> {
        let removed = match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                let script = format!(
                    "cd -- {} 2>/dev/null || exit 0\nfor d in [0-9]*T*Z-*; do\n  [ -d \"$d\" ] && [ ! -e \"catalog/$d.json\" ] || continue\n  rm -rf -- \"$d\" && printf '%s\\n' \"$d\"\ndone\n",
                    quote(dir)
                );
                let out = to
                    .step("store", &format!("sweep {dir}"), script, Input::None, SHORT)
                    .await?;
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            }
            (Self::Local(dir), _) => {
                let mut removed = Vec::new();
                for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let id = e.file_name().to_string_lossy().into_owned();
                    let looks =
                        id.as_bytes().first().is_some_and(u8::is_ascii_digit) && id.contains('T') && id.contains("Z-");
                    if looks
                        && catalog::valid_id(&id)
                        && e.path().is_dir()
                        && !dir.join(Backup::entry_path(&id)).exists()
                        && std::fs::remove_dir_all(e.path()).is_ok()
                    {
                        removed.push(id);
                    }
                }
                removed
            }
            (Self::Remote { host, .. }, None) => return Err(not_connected(host)),
        };
        Ok(removed.into_iter().filter(|id| catalog::valid_id(id)).collect())
    }

    /// Removes what a failed backup left of its files (its directory).
    pub async fn discard(&self, store_host: Option<&Host>, id: &str) {
        if !catalog::valid_id(id) {
            return;
        }
        match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                let script = format!("rm -rf -- {}/{}", quote(dir), quote(id));
                let _ = to.step("store", "discard", script, Input::None, SHORT).await;
            }
            (Self::Local(dir), _) => {
                let _ = std::fs::remove_dir_all(dir.join(id));
            }
            _ => {}
        }
    }

    /// Streams a stored file into `command` on `to` (its stdin: `prefix`, then the file);
    /// returns the command's output and what was sent.
    pub async fn send(
        &self,
        store_host: Option<&Host>,
        rel: &str,
        to: &Host,
        (command, prefix): (&RemoteCommand, &[u8]),
    ) -> Result<(Output, crate::transport::Hashed), StepError> {
        match (self, store_host) {
            (Self::Remote { host, dir }, Some(from)) => {
                let cat = RemoteCommand::new(format!("exec cat -- {}/{}", quote(dir), quote(rel)));
                let t = pipe(from, (&cat, Input::None), to, (command, prefix))
                    .await
                    .map_err(|e| StepError::transport(host, "store", e))?;
                if !t.source.success() {
                    return Err(store_failure(
                        host,
                        &t.source,
                        ("reading the store failed", &format!("read {dir}/{rel}")),
                    ));
                }
                Ok((t.dest, t.hashed))
            }
            (Self::Local(dir), _) => to
                .from_file(command, prefix, &dir.join(rel))
                .await
                .map_err(|e| StepError::transport(to.name(), "store", e)),
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// The SHA-256 of stored files as they are now (`None`: missing or unreadable), in order.
    pub async fn sha256(&self, store_host: Option<&Host>, rels: &[String]) -> Result<Vec<Option<String>>, StepError> {
        match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                let mut script = format!("cd -- {} || exit 3\n{}", quote(dir), crate::transport::shell::SHA256_FN);
                for rel in rels {
                    script.push_str(&format!(
                        "if [ -r {0} ]; then tend_sha256 < {0}; else echo -; fi\n",
                        quote(rel)
                    ));
                }
                let out = to
                    .step(
                        "store",
                        &format!("checksum files in {dir}"),
                        script,
                        Input::None,
                        Duration::from_secs(3600),
                    )
                    .await?;
                let text = String::from_utf8_lossy(&out.stdout);
                let mut sums: Vec<Option<String>> =
                    text.lines().map(|l| (l.len() == 64).then(|| l.to_string())).collect();
                sums.resize(rels.len(), None);
                Ok(sums)
            }
            (Self::Local(dir), _) => {
                let mut sums = Vec::new();
                for rel in rels {
                    sums.push(crate::transport::hash_file(&dir.join(rel)).await.ok().map(|h| h.sha256));
                }
                Ok(sums)
            }
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// Cuts a stored file to `offset` bytes (a crashed append leaves more) and appends the
    /// output of `command` on `from` to it; returns the file's new size and SHA-256 (of the
    /// whole file, read back) and the sending command's output.
    pub async fn append(
        &self,
        store_host: Option<&Host>,
        from: &Host,
        (command, input): (&RemoteCommand, Input<'_>),
        (rel, offset): (&str, u64),
    ) -> Result<(crate::transport::Hashed, Output), StepError> {
        match (self, store_host) {
            (Self::Remote { host, dir }, Some(to)) => {
                let script = format!(
                    "dir={} rel={} offset={offset}\n{}{APPEND}",
                    quote(dir),
                    quote(rel),
                    crate::transport::shell::SHA256_FN
                );
                let t = into_store(
                    from,
                    (command, input),
                    (to, host),
                    &script,
                    &format!("append to {dir}/{rel}"),
                )
                .await?;
                let text = String::from_utf8_lossy(&t.dest.stdout);
                let mut words = text.split_whitespace();
                let bytes = words.next().and_then(|b| b.parse().ok());
                let sha256 = words.next().unwrap_or_default().to_string();
                match bytes {
                    Some(bytes) if bytes == offset + t.hashed.bytes && sha256.len() == 64 => {
                        Ok((crate::transport::Hashed { bytes, sha256 }, t.source))
                    }
                    _ => Err(StepError::remote(
                        host,
                        "store",
                        Failure::message(
                            format!(
                                "{dir}/{rel} holds {} bytes after appending {} to {offset}",
                                bytes.map_or("an unknown number of".to_string(), |b: u64| b.to_string()),
                                t.hashed.bytes
                            ),
                            format!("append to {dir}/{rel}"),
                        ),
                    )),
                }
            }
            (Self::Local(dir), _) => {
                let path = dir.join(rel);
                private_parent(&path).map_err(local_failure)?;
                let file = {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .mode(0o600)
                        .open(&path)
                }
                .and_then(|f| {
                    let have = f.metadata()?.len();
                    if have < offset {
                        return Err(std::io::Error::other(format!(
                            "it holds {have} bytes, the index says {offset} were shipped: the store lost data"
                        )));
                    }
                    f.set_len(offset)?;
                    Ok(f)
                })
                .map_err(|e| local_failure(format!("cannot write {}: {e}", path.display())))?;
                let mut file = tokio::fs::File::from_std(file);
                {
                    use tokio::io::AsyncSeekExt as _;
                    file.seek(std::io::SeekFrom::End(0))
                        .await
                        .map_err(|e| local_failure(format!("cannot write {}: {e}", path.display())))?;
                }
                let (out, _) = from
                    .to_file(command, input, &mut file)
                    .await
                    .map_err(|e| StepError::transport(from.name(), "binlogs", e))?;
                file.sync_all()
                    .await
                    .map_err(|e| local_failure(format!("cannot write {}: {e}", path.display())))?;
                drop(file);
                let hashed = crate::transport::hash_file(&path)
                    .await
                    .map_err(|e| local_failure(format!("cannot read {}: {e}", path.display())))?;
                Ok((hashed, out))
            }
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// Reads a small stored file (an index); `None` when there is none.
    pub async fn get(&self, store_host: Option<&Host>, rel: &str) -> Result<Option<Vec<u8>>, StepError> {
        match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                let script = format!(
                    "f={}/{}\n[ -e \"$f\" ] || exit 0\nprintf x; cat -- \"$f\"\n",
                    quote(dir),
                    quote(rel)
                );
                let out = to
                    .step("store", &format!("read {dir}/{rel}"), script, Input::None, SHORT)
                    .await?;
                Ok(out.stdout.strip_prefix(b"x").map(<[u8]>::to_vec))
            }
            (Self::Local(dir), _) => match std::fs::read(dir.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StepError::remote(
                    "localhost",
                    "store",
                    Failure::message(format!("cannot read {}: {e}", dir.join(rel).display()), "store"),
                )),
            },
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// Removes backups (their directory and catalog entry) and binlog files (paths inside the
    /// store); ids and names are checked to be plain names first.
    pub async fn remove(
        &self,
        store_host: Option<&Host>,
        backups: &[String],
        files: &[String],
    ) -> Result<(), StepError> {
        let mut rels: Vec<String> = Vec::new();
        for id in backups.iter().filter(|id| catalog::valid_id(id)) {
            rels.push(Backup::entry_path(id));
            rels.push(id.clone());
        }
        rels.extend(
            files
                .iter()
                .filter(|f| !f.contains("..") && !f.starts_with('/'))
                .cloned(),
        );
        match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                let mut script = format!("cd -- {} || exit 3\n", quote(dir));
                for rel in &rels {
                    script.push_str(&format!("rm -rf -- {}\n", quote(rel)));
                }
                to.step("store", &format!("remove from {dir}"), script, Input::None, SHORT)
                    .await
                    .map(|_| ())
            }
            (Self::Local(dir), _) => {
                for rel in &rels {
                    let p = dir.join(rel);
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
                Ok(())
            }
            (Self::Remote { host, .. }, None) => Err(not_connected(host)),
        }
    }

    /// Every backup in the catalog, oldest first; entries that cannot be read are skipped with
    /// their names returned beside.
    pub async fn list(&self, store_host: Option<&Host>) -> Result<(Vec<Backup>, Vec<String>), StepError> {
        let mut texts: Vec<(String, String)> = Vec::new();
        match (self, store_host) {
            (Self::Remote { dir, .. }, Some(to)) => {
                // One line per entry: its name, a tab, its JSON (catalog entries are one line).
                let script = format!(
                    "cd -- {} 2>/dev/null || exit 0\nfor f in catalog/*.json; do [ -f \"$f\" ] || continue; printf '%s\\t' \"$f\"; tr -d '\\n' < \"$f\"; echo; done\n",
                    quote(dir)
                );
                let out = to
                    .step("catalog", &format!("read {dir}/catalog"), script, Input::None, SHORT)
                    .await?;
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    if let Some((name, json)) = line.split_once('\t') {
                        texts.push((name.to_string(), json.to_string()));
                    }
                }
            }
            (Self::Local(dir), _) => {
                if let Ok(entries) = std::fs::read_dir(dir.join("catalog")) {
                    for e in entries.flatten() {
                        let p = e.path();
                        if p.extension().is_some_and(|x| x == "json")
                            && let Ok(t) = std::fs::read_to_string(&p)
                        {
                            texts.push((p.display().to_string(), t));
                        }
                    }
                }
            }
            (Self::Remote { host, .. }, None) => return Err(not_connected(host)),
        }
        let mut backups = Vec::new();
        let mut unreadable = Vec::new();
        for (name, text) in texts {
            match serde_json::from_str::<Backup>(&text) {
                Ok(b) => backups.push(b),
                Err(_) => unreadable.push(name),
            }
        }
        // In the order they were taken (ids of one second differ by their random part).
        backups.sort_by(|a, b| {
            let t = |x: &Backup| x.started.parse::<jiff::Timestamp>().ok();
            t(a).cmp(&t(b)).then_with(|| a.id.cmp(&b.id))
        });
        Ok((backups, unreadable))
    }
}

/// Streams `command` on `from` into `script` on the store host; the store's own failure first
/// (a full disk also breaks the sender's pipe).
async fn into_store(
    from: &Host,
    (command, input): (&RemoteCommand, Input<'_>),
    (to, host): (&Host, &str),
    script: &str,
    what: &str,
) -> Result<crate::transport::Transfer, StepError> {
    let t = pipe(from, (command, input), to, (&RemoteCommand::new(script), b""))
        .await
        .map_err(|e| StepError::transport(host, "store", e))?;
    if !t.dest.success() {
        return Err(store_failure(host, &t.dest, ("writing to the store failed", what)));
    }
    Ok(t)
}

/// The store host's command failed: its last error line, else `fallback`.
fn store_failure(host: &str, out: &Output, (fallback, what): (&str, &str)) -> StepError {
    StepError::remote(
        host,
        "store",
        Failure::from_output(crate::transport::last_error_line(out, fallback), what, out),
    )
}

/// The sending command's own failure, if it failed.
fn source_failure(from: &Host, out: &Output) -> Option<StepError> {
    if out.success() {
        return None;
    }
    Some(StepError::remote(
        from.name(),
        "backup",
        Failure::from_output(
            crate::transport::last_error_line(out, "the backup command failed"),
            "mariadb-dump",
            out,
        ),
    ))
}
