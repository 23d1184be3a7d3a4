//! The ssh client defaults tend brings, as a config file passed with `-F`.
//!
//! OpenSSH 9.x prefers the post-quantum `sntrup761x25519` key exchange, which costs about 0.1 s of
//! CPU per login on each side: with tens of hosts that is most of a run's time. tend puts the
//! cheap exchanges first — `mlkem768x25519-sha256` (post-quantum and fast) where the local ssh has
//! it, then `curve25519-sha256` — and keeps every other default algorithm after them, so a server
//! that lacks those still connects.
//!
//! `-F` replaces ssh's own config files, so the file includes them first: `~/.ssh/config`, then
//! `/etc/ssh/ssh_config`, then tend's `Host *` defaults. ssh keeps the first value it reads for
//! each setting, so anything the user or the system sets (a `KexAlgorithms` line in particular)
//! still wins. Host-key checking is untouched: it comes from the command line as before.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// OpenSSH's default key exchanges, cheapest first; names the local ssh lacks are dropped.
const KEX_ORDER: &[&str] = &[
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
];

/// The file's name in the control directory.
const FILE_NAME: &str = "ssh_config";

/// Why the defaults file could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SshDefaultsError {
    /// `ssh` is not on `PATH`.
    #[error("`ssh` was not found on PATH")]
    NoSsh,
    /// `ssh -Q kex` failed.
    #[error("`ssh -Q kex` failed: {0}")]
    Query(String),
    /// Writing the file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// The config text for a client that supports the key exchanges in `supported`.
pub fn config_text(supported: &[&str], stamp: &str) -> String {
    let kex: Vec<&str> = KEX_ORDER.iter().copied().filter(|k| supported.contains(k)).collect();
    let mut text = format!(
        "# Written by tend for {stamp}: your ssh config first (the first value read wins), then tend's defaults.\n\
         Include ~/.ssh/config\n\
         Include /etc/ssh/ssh_config\n"
    );
    if !kex.is_empty() {
        text.push_str(&format!("Host *\n    KexAlgorithms {}\n", kex.join(",")));
    }
    text
}

/// Writes (or reuses) the defaults file in `dir` for the `ssh` on `PATH` and returns its path.
/// The key exchanges the client supports are asked once per ssh binary (`ssh -Q kex`), then
/// remembered in the file's first line.
pub fn prepare(dir: &Path) -> Result<PathBuf, SshDefaultsError> {
    let ssh = find_ssh().ok_or(SshDefaultsError::NoSsh)?;
    let stamp = binary_stamp(&ssh);
    let path = dir.join(FILE_NAME);
    if let Ok(existing) = std::fs::read_to_string(&path)
        && existing
            .lines()
            .next()
            .is_some_and(|l| l.contains(&format!(" for {stamp}:")))
    {
        return Ok(path);
    }
    let out = std::process::Command::new(&ssh)
        .args(["-Q", "kex"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| SshDefaultsError::Query(e.to_string()))?;
    if !out.status.success() {
        return Err(SshDefaultsError::Query(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let listed = String::from_utf8_lossy(&out.stdout);
    let supported: Vec<&str> = listed.lines().map(str::trim).collect();
    write_atomically(&path, config_text(&supported, &stamp).as_bytes()).map_err(|source| SshDefaultsError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The `ssh` that `openssh` will run: the first on `PATH`.
fn find_ssh() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ssh"))
        .find(|p| p.is_file())
}

/// Identifies one build of ssh: its path, size and modification time.
fn binary_stamp(ssh: &Path) -> String {
    let meta = std::fs::metadata(ssh).ok();
    let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{} {size} {mtime}", ssh.display())
}

/// Concurrent runs may write at once: each writes its own temporary file and renames it.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".ssh_config").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_exchanges_first_and_only_known_names() {
        let text = config_text(
            &[
                "diffie-hellman-group1-sha1",
                "curve25519-sha256",
                "sntrup761x25519-sha512@openssh.com",
                "ecdh-sha2-nistp256",
            ],
            "/usr/bin/ssh 1 2",
        );
        assert!(text.starts_with("# Written by tend for /usr/bin/ssh 1 2:"), "{text}");
        let includes: Vec<&str> = text.lines().filter(|l| l.starts_with("Include")).collect();
        assert_eq!(includes, ["Include ~/.ssh/config", "Include /etc/ssh/ssh_config"]);
        assert!(
            text.ends_with(
                "Host *\n    KexAlgorithms curve25519-sha256,sntrup761x25519-sha512@openssh.com,ecdh-sha2-nistp256\n"
            ),
            "{text}"
        );
        let modern = config_text(&["mlkem768x25519-sha256", "curve25519-sha256"], "s");
        assert!(
            modern.contains("KexAlgorithms mlkem768x25519-sha256,curve25519-sha256\n"),
            "{modern}"
        );
    }

    /// The `kexalgorithms` line `ssh -G` prints with config file `file`.
    fn kex_line(ssh: &Path, file: &Path) -> String {
        let g = std::process::Command::new(ssh)
            .arg("-F")
            .arg(file)
            .args(["-G", "example.invalid"])
            .output()
            .unwrap();
        assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
        let shown = String::from_utf8_lossy(&g.stdout);
        shown
            .lines()
            .find(|l| l.starts_with("kexalgorithms "))
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn the_local_ssh_accepts_the_file_and_user_settings_win() {
        let Some(ssh) = find_ssh() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = prepare(dir.path()).unwrap();
        assert_eq!(path, prepare(dir.path()).unwrap());
        let kex = kex_line(&ssh, &path);
        assert!(
            kex.starts_with("kexalgorithms curve25519-sha256") || kex.starts_with("kexalgorithms mlkem"),
            "{kex}"
        );
        // A setting read before tend's defaults (as the user's config is) wins.
        let user = dir.path().join("user");
        std::fs::write(&user, "Host *\n    KexAlgorithms diffie-hellman-group14-sha256\n").unwrap();
        let wrapped = dir.path().join("wrapped");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("Include ~/.ssh/config", &format!("Include {}", user.display()));
        std::fs::write(&wrapped, text).unwrap();
        assert_eq!(kex_line(&ssh, &wrapped), "kexalgorithms diffie-hellman-group14-sha256");
    }
}
