//! The thing being deployed: a file on the control node (given, or downloaded there once),
//! checksummed while it is read and streamed from disk to each host, or fetched by each host
//! from a URL when its checksum is given. It never sits in memory whole.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What kind of file an artifact is, which decides how a host unpacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A zip (war, jar, zip): `unzip`.
    Zip,
    /// A tarball, compressed or not: `tar -xf`.
    Tar,
    /// Anything else: kept as a file.
    File,
}

impl Kind {
    /// The word the host scripts use.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Zip => "zip",
            Kind::Tar => "tar",
            Kind::File => "file",
        }
    }

    /// Recognises a format from its first bytes.
    pub fn sniff(bytes: &[u8]) -> Self {
        let starts = |m: &[u8]| bytes.starts_with(m);
        if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
            Kind::Zip
        } else if starts(&[0x1f, 0x8b])
            || starts(b"BZh")
            || starts(&[0xfd, b'7', b'z', b'X', b'Z', 0])
            || starts(&[0x28, 0xb5, 0x2f, 0xfd])
            || bytes.get(257..262) == Some(b"ustar")
        {
            Kind::Tar
        } else {
            Kind::File
        }
    }

    /// Guesses a format from a file name (for artifacts the control node never sees).
    pub fn from_name(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if [".war", ".zip", ".jar", ".ear"].iter().any(|e| lower.ends_with(e)) {
            Kind::Zip
        } else if [
            ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst",
        ]
        .iter()
        .any(|e| lower.ends_with(e))
        {
            Kind::Tar
        } else {
            Kind::File
        }
    }
}

/// The artifact's file on the control node.
#[derive(Debug)]
pub struct ArtifactFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// A download's temporary file, removed when the artifact is dropped.
    _download: Option<tempfile::TempPath>,
}

/// An artifact ready to go to hosts.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Where it came from (path or URL), for messages and the deploy log.
    pub source: String,
    /// The file name kept in `deploy_unpack: archive` mode.
    pub name: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// How to unpack it.
    pub kind: Kind,
    /// The file, when the control node sends it; `None` when hosts download `source`.
    pub file: Option<Arc<ArtifactFile>>,
}

/// Why an artifact could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A local file could not be read.
    #[error("cannot read artifact `{path}`: {error}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A download failed.
    #[error("cannot download artifact `{url}`: {error}")]
    Download {
        /// The URL given.
        url: String,
        /// What went wrong.
        error: String,
    },
    /// The content does not match `--checksum`.
    #[error("artifact `{source_name}` has sha256 {actual}, but --checksum says {expected}")]
    Checksum {
        /// Path or URL.
        source_name: String,
        /// What was computed.
        actual: String,
        /// What was expected.
        expected: String,
    },
}

/// Accepts `sha256:HEX` or a bare 64-digit hex checksum.
pub fn parse_checksum(text: &str) -> Option<String> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text).to_ascii_lowercase();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// True when `source` is a URL rather than a local path.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

fn file_name(source: &str) -> String {
    let trimmed = source.split(['?', '#']).next().unwrap_or(source);
    let name = trimmed.rsplit('/').next().unwrap_or_default();
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        "artifact".to_string()
    } else {
        clean
    }
}

impl Artifact {
    /// A URL each host downloads itself, verified against `sha256` there.
    pub fn remote(url: &str, sha256: String) -> Self {
        Artifact {
            source: url.to_string(),
            name: file_name(url),
            sha256,
            kind: Kind::from_name(&file_name(url)),
            file: None,
        }
    }

    /// Reads a local file, or downloads a URL to a temporary file on the control node,
    /// checksumming on the way; checks `expected` if given.
    pub async fn load(source: &str, expected: Option<&str>) -> Result<Self, ArtifactError> {
        let (path, download) = if is_url(source) {
            let tmp = download(source).await?;
            (tmp.to_path_buf(), Some(tmp))
        } else {
            (PathBuf::from(source), None)
        };
        let read = |error: std::io::Error| ArtifactError::Read {
            path: source.to_string(),
            error,
        };
        let hashed = crate::transport::hash_file(&path).await.map_err(read)?;
        let mut head = Vec::with_capacity(512);
        tokio::fs::File::open(&path)
            .await
            .map_err(read)?
            .take(512)
            .read_to_end(&mut head)
            .await
            .map_err(read)?;
        let artifact = Artifact {
            source: source.to_string(),
            name: file_name(source),
            sha256: hashed.sha256,
            kind: Kind::sniff(&head),
            file: Some(Arc::new(ArtifactFile {
                path,
                size: hashed.bytes,
                _download: download,
            })),
        };
        if let Some(expected) = expected
            && expected != artifact.sha256
        {
            return Err(ArtifactError::Checksum {
                source_name: source.to_string(),
                actual: artifact.sha256,
                expected: expected.to_string(),
            });
        }
        Ok(artifact)
    }

    /// The size for messages.
    pub fn size(&self) -> Option<u64> {
        self.file.as_ref().map(|f| f.size)
    }
}

/// Downloads `url` into a temporary file, chunk by chunk.
async fn download(url: &str) -> Result<tempfile::TempPath, ArtifactError> {
    let fail = |error: String| ArtifactError::Download {
        url: url.to_string(),
        error,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = client.get(url).send().await.map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| fail(format!("cannot make a temporary file: {e}")))?
        .into_temp_path();
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| fail(format!("cannot write {}: {e}", tmp.display())))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        file.write_all(&chunk)
            .await
            .map_err(|e| fail(format!("cannot write {}: {e}", tmp.display())))?;
    }
    file.flush()
        .await
        .map_err(|e| fail(format!("cannot write {}: {e}", tmp.display())))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognised_by_content_and_name() {
        assert_eq!(Kind::sniff(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(Kind::sniff(&[0x1f, 0x8b, 8, 0]), Kind::Tar);
        assert_eq!(Kind::sniff(b"#!/bin/sh\n"), Kind::File);
        assert_eq!(Kind::from_name("shop-2.war"), Kind::Zip);
        assert_eq!(Kind::from_name("app.tar.gz"), Kind::Tar);
        assert_eq!(Kind::from_name("app.bin"), Kind::File);
    }

    #[test]
    fn checksums_and_names_are_normalised() {
        let hex = "ab".repeat(32);
        assert_eq!(
            parse_checksum(&format!("sha256:{}", hex.to_uppercase())),
            Some(hex.clone())
        );
        assert_eq!(parse_checksum("abc"), None);
        assert_eq!(file_name("https://x/y/shop-2.war?token=1"), "shop-2.war");
        assert_eq!(file_name("/tmp/.."), "artifact");
    }
}
