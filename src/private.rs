//! Files tend writes on the control node that other local users must not read (the audit log,
//! backups, transactions a failover drill writes out): created owner-only, in one place.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `path` and its missing parents, owner-only (0700).
pub fn dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// A new (or emptied) file only its owner can read (0600).
pub fn file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// `path` opened for appending, created owner-only (0600) when it is new.
pub fn append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}
