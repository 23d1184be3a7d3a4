//! Vault passwords: where each comes from (`--vault-id label@source`: a file, an executable
//! script, or `prompt`), and the keyring a run opens every vault with.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One vault password and its vault id.
#[derive(Clone)]
pub struct Key {
    label: String,
    password: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}, <secret>)", self.label)
    }
}

impl Key {
    /// A password under vault id `label` (`default` when none was named).
    pub fn new(label: &str, password: Vec<u8>) -> Self {
        Self {
            label: label.to_string(),
            password,
        }
    }

    /// The vault id.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The password's bytes.
    pub fn password(&self) -> &[u8] {
        &self.password
    }
}

/// Every password a run was given, in the order given.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring of these keys.
    pub fn from_passwords(keys: Vec<Key>) -> Self {
        Self { keys }
    }

    /// Whether no password was given.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, those of vault id `label` first (ansible-vault tries the matching id first,
    /// then the others).
    pub fn in_order(&self, label: Option<&str>) -> impl Iterator<Item = &Key> + '_ {
        let label = label.map(str::to_string);
        let (first, rest): (Vec<&Key>, Vec<&Key>) = self
            .keys
            .iter()
            .partition(|k| label.as_deref() == Some(k.label.as_str()));
        first.into_iter().chain(rest)
    }

    /// The key to encrypt with: vault id `label` if asked for, else the only one (with several,
    /// the choice is the operator's: ansible-vault refuses too).
    pub fn encrypting(&self, label: Option<&str>) -> Result<&Key, KeyError> {
        match label {
            Some(l) => self
                .keys
                .iter()
                .find(|k| k.label == l)
                .ok_or_else(|| KeyError::NoSuchId(l.to_string())),
            None => match self.keys.as_slice() {
                [] => Err(KeyError::None),
                [one] => Ok(one),
                _ => Err(KeyError::Ambiguous(
                    self.keys.iter().map(|k| k.label.clone()).collect::<Vec<_>>().join(", "),
                )),
            },
        }
    }
}

/// Why a vault password could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The password file cannot be read.
    #[error("cannot read the vault password file {path}: {error}")]
    Read { path: PathBuf, error: String },
    /// The password script failed.
    #[error("the vault password script {path} failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Script {
        path: PathBuf,
        status: String,
        stderr: String,
    },
    /// The file or script gave nothing.
    #[error("the vault password from {0} is empty")]
    Empty(PathBuf),
    /// `prompt` without a terminal.
    #[error("a vault password prompt needs a terminal")]
    NoTerminal,
    /// The prompt failed.
    #[error("cannot read the vault password: {0}")]
    Prompt(String),
    /// Nothing to encrypt with.
    #[error("no vault password was given")]
    None,
    /// Several passwords and none chosen to encrypt with.
    #[error("several vault ids were given ({0}): choose one to encrypt with")]
    Ambiguous(String),
    /// `--encrypt-vault-id` names an id that was not given.
    #[error("no vault password was given for the vault id `{0}`")]
    NoSuchId(String),
}

/// Where one password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file holding it, or an executable that prints it.
    File(PathBuf),
    /// Asked on the terminal.
    Prompt,
}

/// `--vault-id label@source` (or just `source`, vault id `default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdSpec {
    /// The vault id.
    pub label: String,
    /// Where its password comes from.
    pub source: Source,
}

impl IdSpec {
    /// Parses `label@source`, `source` or `prompt`, as ansible-vault reads `--vault-id`.
    pub fn parse(spec: &str) -> Self {
        let (label, source) = match spec.split_once('@') {
            Some((l, s)) if !l.is_empty() => (l.to_string(), s),
            _ => ("default".to_string(), spec),
        };
        let source = if source == "prompt" {
            Source::Prompt
        } else {
            Source::File(PathBuf::from(source))
        };
        Self { label, source }
    }

    /// A password file (or script) under vault id `default`.
    pub fn file(path: &Path) -> Self {
        Self {
            label: "default".into(),
            source: Source::File(path.to_path_buf()),
        }
    }

    /// Reads the password; `what` words the prompt ("Vault password", "New vault password").
    pub fn load(&self, what: &str) -> Result<Key, KeyError> {
        let password = match &self.source {
            Source::Prompt => prompt(&format!("{what} ({}): ", self.label))?,
            Source::File(path) => from_file(path, &self.label)?,
        };
        Ok(Key::new(&self.label, password))
    }
}

impl IdSpec {
    /// Reads a new password: asked twice when it comes from the terminal.
    pub fn load_new(&self) -> Result<Key, KeyError> {
        let key = self.load("New vault password")?;
        if self.source == Source::Prompt {
            let again = prompt(&format!("Confirm new vault password ({}): ", self.label))?;
            if again != key.password {
                return Err(KeyError::Prompt("the two passwords differ".into()));
            }
        }
        Ok(key)
    }
}

/// Asks on the terminal (`/dev/tty`, nothing echoed; stdin may be a pipe), surrounding
/// whitespace stripped as Ansible strips it; an empty answer is refused.
pub fn prompt(text: &str) -> Result<Vec<u8>, KeyError> {
    let answer = prompt_exact(text)?;
    let answer = answer.trim();
    if answer.is_empty() {
        return Err(KeyError::Prompt("an empty password is no password".into()));
    }
    Ok(answer.as_bytes().to_vec())
}

/// The answer as typed, spaces kept: sudo's password is compared as it is (Ansible's `-K`
/// does not strip it either), while vault passwords are stripped like Ansible's.
pub fn prompt_exact(text: &str) -> Result<String, KeyError> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
    {
        return Err(KeyError::NoTerminal);
    }
    rpassword::prompt_password(text).map_err(|e| KeyError::Prompt(e.to_string()))
}

/// A file's content without surrounding whitespace, or an executable's output without its
/// line ends (as Ansible strips each). A script named `*-client` is asked for `--vault-id LABEL`, as Ansible's
/// client scripts are.
fn from_file(path: &Path, label: &str) -> Result<Vec<u8>, KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| KeyError::Read {
        path: path.to_path_buf(),
        error: e.to_string(),
    })?;
    let bytes = if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        // A bare name would be looked for in $PATH; the file meant is this one.
        let program = if path.is_relative() && path.components().count() == 1 {
            Path::new(".").join(path)
        } else {
            path.to_path_buf()
        };
        let mut cmd = std::process::Command::new(program);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if stem.ends_with("-client") {
            cmd.args(["--vault-id", label]);
        }
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| KeyError::Read {
                path: path.to_path_buf(),
                error: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(KeyError::Script {
                path: path.to_path_buf(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let mut out = out.stdout;
        while out.last().is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            out.pop();
        }
        let start = out
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(out.len());
        out[start..].to_vec()
    } else {
        std::fs::read(path)
            .map_err(|e| KeyError::Read {
                path: path.to_path_buf(),
                error: e.to_string(),
            })?
            .trim_ascii()
            .to_vec()
    };
    let trimmed = bytes;
    if trimmed.is_empty() {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    Ok(trimmed)
}

static KEYRING: OnceLock<Keyring> = OnceLock::new();

/// Sets the run's keyring (the command line does, once, before any file is read).
pub fn install(keyring: Keyring) {
    let _ = KEYRING.set(keyring);
}

/// The run's keyring (empty when no password was given).
pub fn keyring() -> &'static Keyring {
    static EMPTY: OnceLock<Keyring> = OnceLock::new();
    KEYRING.get().unwrap_or_else(|| EMPTY.get_or_init(Keyring::default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_ids_parse_as_ansible_reads_them() {
        assert_eq!(
            IdSpec::parse("prod@/etc/p"),
            IdSpec {
                label: "prod".into(),
                source: Source::File("/etc/p".into())
            }
        );
        assert_eq!(IdSpec::parse("dev@prompt").source, Source::Prompt);
        assert_eq!(IdSpec::parse("/etc/p").label, "default");
    }

    #[test]
    fn matching_ids_are_tried_first_and_encrypting_needs_a_choice() {
        let ring = Keyring::from_passwords(vec![Key::new("a", b"1".to_vec()), Key::new("b", b"2".to_vec())]);
        let order: Vec<&str> = ring.in_order(Some("b")).map(Key::label).collect();
        assert_eq!(order, ["b", "a"]);
        assert!(matches!(ring.encrypting(None), Err(KeyError::Ambiguous(_))));
        assert_eq!(ring.encrypting(Some("a")).map(Key::label).ok(), Some("a"));
        assert!(format!("{:?}", ring.encrypting(Some("a"))).contains("<secret>"));
    }
}
