//! `tend vault`: ansible-vault's commands on ansible-vault's files, with two differences that
//! keep repositories and passwords honest: a file whose plaintext did not change keeps its
//! ciphertext byte for byte (no noise in version control), and `rekey` takes the new password
//! only from what the command line names, never from the environment.

use super::CliError;
use crate::diagnostic::Diagnostic;
use crate::exit::Code;
use crate::vault::keys::{self, IdSpec, Key, KeyError, Keyring};
use crate::vault::{self, VaultError};
use clap::{Args, Subcommand};
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

/// Where the run's vault passwords come from (every command that reads inventories,
/// variables or playbooks takes these).
#[derive(Debug, Clone, Default, Args)]
pub struct VaultOpts {
    /// A file holding the vault password, or an executable printing it; repeatable
    /// [default: `TEND_VAULT_PASSWORD_FILE`, else `ANSIBLE_VAULT_PASSWORD_FILE`, when no vault
    /// password option is given]
    #[arg(long, value_name = "FILE|SCRIPT")]
    pub vault_password_file: Vec<PathBuf>,
    /// A vault id and where its password comes from: `LABEL@FILE`, `LABEL@SCRIPT` or
    /// `LABEL@prompt`; repeatable (a vault is tried with its own id's password first)
    #[arg(long, value_name = "LABEL@SOURCE")]
    pub vault_id: Vec<String>,
    /// Ask for the vault password on the terminal
    #[arg(long)]
    pub ask_vault_pass: bool,
}

/// The environment variable naming a vault password file or script.
pub const PASSWORD_ENV: &str = "TEND_VAULT_PASSWORD_FILE";

/// Ansible's, read when tend's is not set (an Ansible user's setup works as it is).
const ANSIBLE_PASSWORD_ENV: &str = "ANSIBLE_VAULT_PASSWORD_FILE";

impl VaultOpts {
    fn specs(&self) -> Vec<IdSpec> {
        let mut specs: Vec<IdSpec> = self.vault_password_file.iter().map(|p| IdSpec::file(p)).collect();
        specs.extend(self.vault_id.iter().map(|s| IdSpec::parse(s)));
        if self.ask_vault_pass {
            specs.push(IdSpec::parse("prompt"));
        }
        specs
    }

    /// The passwords the command line names; when it names none, the environment's.
    pub fn keyring(&self) -> Result<Keyring, CliError> {
        let mut specs = self.specs();
        if specs.is_empty()
            && let Some(p) = [PASSWORD_ENV, ANSIBLE_PASSWORD_ENV]
                .iter()
                .find_map(|v| std::env::var_os(v).filter(|p| !p.is_empty()))
        {
            specs.push(IdSpec::file(Path::new(&p)));
        }
        let mut keys = Vec::new();
        for spec in specs {
            keys.push(spec.load("Vault password").map_err(key_error)?);
        }
        Ok(Keyring::from_passwords(keys))
    }

    /// Makes the passwords the run's keyring, before any file is read (once per process).
    pub fn install(&self) -> Result<(), CliError> {
        static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        if DONE.get().is_none() {
            keys::install(self.keyring()?);
            let _ = DONE.set(());
        }
        Ok(())
    }
}

fn key_error(e: KeyError) -> CliError {
    let d = Diagnostic::plain(e.to_string());
    match e {
        KeyError::NoTerminal => d.with_hint("give --vault-password-file FILE or --vault-id LABEL@FILE"),
        KeyError::None => d.with_hint(format!(
            "give --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass (or set {PASSWORD_ENV})"
        )),
        KeyError::Ambiguous(_) => d.with_hint("name it with --encrypt-vault-id LABEL"),
        _ => d,
    }
    .into()
}

/// Encrypted files and values, compatible with ansible-vault
///
/// Files and `!vault` values written by ansible-vault (format 1.1, and 1.2 with a vault id)
/// are read by tend, and the other way round. Passwords: --vault-password-file FILE|SCRIPT,
/// --vault-id LABEL@SOURCE (repeatable), --ask-vault-pass, else TEND_VAULT_PASSWORD_FILE
/// (else ANSIBLE_VAULT_PASSWORD_FILE).
/// Every command that reads an inventory, variables or playbooks takes the same options and
/// opens vaulted files and `!vault` values as it loads them; what they hold is never printed.
///
/// Exit codes: 0 done, 4 bad input (a wrong or missing password, a file that is or is not
/// encrypted, a malformed vault; nothing was written).
///
/// Examples:
///   tend vault create group_vars/all/vault.yaml --vault-password-file ~/.vault_pass
///   tend vault encrypt-string --name db_password 's3cret' --vault-id prod@prompt
///   tend vault rekey vault.yaml --vault-password-file old.txt --new-vault-password-file new.txt
#[derive(Debug, Subcommand)]
#[command(verbatim_doc_comment)]
pub enum VaultCommand {
    /// Create a new encrypted file with $EDITOR
    Create(EditArgs),
    /// Encrypt files in place (or `-`: stdin to stdout)
    Encrypt(CryptArgs),
    /// Decrypt files in place (or `-`: stdin to stdout)
    Decrypt(CryptArgs),
    /// Print the plaintext of encrypted files
    View(ViewArgs),
    /// Edit an encrypted file with $EDITOR; unchanged, it is left byte for byte as it was
    Edit(EditArgs),
    /// Encrypt a string as a YAML `!vault` value
    #[command(alias = "encrypt_string")]
    EncryptString(StringArgs),
    /// Re-encrypt files with a new password (the old one opens them)
    Rekey(RekeyArgs),
}

/// The vault id to encrypt with.
#[derive(Debug, Clone, Args)]
pub struct EncryptId {
    /// The vault id to encrypt with (one of those given) [default: the only one given]
    #[arg(long, value_name = "LABEL")]
    pub encrypt_vault_id: Option<String>,
}

/// `create` and `edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The file
    pub file: PathBuf,
    #[command(flatten)]
    pub vault: VaultOpts,
    #[command(flatten)]
    pub id: EncryptId,
}

/// `encrypt` and `decrypt`.
#[derive(Debug, Args)]
pub struct CryptArgs {
    /// The files (`-` or none: stdin to stdout)
    pub files: Vec<PathBuf>,
    /// Write the result here instead of in place (one input; `-`: stdout)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub vault: VaultOpts,
    #[command(flatten)]
    pub id: EncryptId,
}

/// `view`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub vault: VaultOpts,
}

/// `encrypt-string`.
#[derive(Debug, Args)]
pub struct StringArgs {
    /// The string (none: read from stdin, as ansible-vault does)
    pub string: Option<String>,
    /// The variable name written before `!vault |`
    #[arg(short = 'n', long, value_name = "VAR", conflicts_with = "stdin_name")]
    pub name: Option<String>,
    /// The variable name for the string read from stdin
    #[arg(long, value_name = "VAR")]
    pub stdin_name: Option<String>,
    #[command(flatten)]
    pub vault: VaultOpts,
    #[command(flatten)]
    pub id: EncryptId,
}

/// `rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// The files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub vault: VaultOpts,
    /// The new password's file or script
    #[arg(long, value_name = "FILE|SCRIPT", conflicts_with = "new_vault_id")]
    pub new_vault_password_file: Option<PathBuf>,
    /// The new vault id and its password's source (`LABEL@FILE`, `LABEL@prompt`)
    #[arg(long, value_name = "LABEL@SOURCE")]
    pub new_vault_id: Option<String>,
}

/// Runs `tend vault ...`.
pub fn run(cmd: VaultCommand) -> Result<Code, CliError> {
    match cmd {
        VaultCommand::Create(a) => create(&a),
        VaultCommand::Edit(a) => edit(&a),
        VaultCommand::Encrypt(a) => crypt(&a, true),
        VaultCommand::Decrypt(a) => crypt(&a, false),
        VaultCommand::View(a) => view(&a),
        VaultCommand::EncryptString(a) => encrypt_string(&a),
        VaultCommand::Rekey(a) => rekey(&a),
    }
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> CliError {
    Diagnostic::in_file(path, message.to_string()).into()
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| file_error(path, format!("cannot read stdin: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| file_error(path, format!("cannot read file: {e}")))
}

/// The file a path names: a symlink's target (writing through a link keeps the link).
fn real(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Writes `bytes` to `path` (a symlink's target) through a file beside it, synced and renamed
/// over it (never half-written). An existing file keeps its owner and its mode (`plaintext`:
/// at most 0600, as nobody else should read what a vault held); a new one is 0600.
fn write(path: &Path, bytes: &[u8], plaintext: bool) -> Result<(), CliError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| file_error(path, format!("cannot write stdout: {e}")));
    }
    let path = real(path);
    let old = std::fs::metadata(&path).ok();
    let mut mode = old.as_ref().map_or(0o600, |m| m.permissions().mode() & 0o7777);
    if plaintext {
        mode &= 0o600;
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| file_error(&path, format!("cannot write: {e}"));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    if let Some(m) = &old {
        // Only root can give a file away; anyone else keeps what they own.
        let _ = std::os::unix::fs::chown(tmp.path(), Some(m.uid()), Some(m.gid()));
    }
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(fail)?;
    tmp.persist(&path).map_err(|e| fail(e.error))?;
    Ok(())
}

fn needs_keys(ring: &Keyring) -> Result<(), CliError> {
    if ring.is_empty() {
        return Err(key_error(KeyError::None));
    }
    Ok(())
}

/// Opens `bytes` (vault text of `path`): the plaintext and the key that opened it.
fn open<'a>(path: &Path, bytes: &[u8], ring: &'a Keyring) -> Result<(Vec<u8>, &'a Key), CliError> {
    let env = vault::parse(bytes).map_err(|e| match e {
        VaultError::NotVault => file_error(path, "is not vault-encrypted"),
        e => file_error(path, e),
    })?;
    ring.in_order(env.label.as_deref())
        .find_map(|k| env.open(k.password()).map(|p| (p, k)))
        .ok_or_else(|| {
            Diagnostic::in_file(path, VaultError::WrongPassword(env.label.clone()).to_string())
                .with_hint("check the vault password (or give the vault id it was encrypted with)")
                .into()
        })
}

fn encrypting<'a>(ring: &'a Keyring, id: &EncryptId) -> Result<&'a Key, CliError> {
    ring.encrypting(id.encrypt_vault_id.as_deref()).map_err(key_error)
}

fn crypt(a: &CryptArgs, encrypt: bool) -> Result<Code, CliError> {
    let ring = a.vault.keyring()?;
    needs_keys(&ring)?;
    let files = if a.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.files.clone()
    };
    if a.output.is_some() && files.len() > 1 {
        return Err(Diagnostic::plain("--output takes one input file").into());
    }
    let key = if encrypt { Some(encrypting(&ring, &a.id)?) } else { None };
    // Every input is read and converted before anything is written: one bad file changes none.
    let mut results = Vec::new();
    for f in &files {
        let bytes = read(f)?;
        let out = match key {
            Some(key) => {
                if vault::is_vault(&bytes) {
                    return Err(Diagnostic::in_file(f, "is already vault-encrypted")
                        .with_hint("`tend vault rekey` changes its password")
                        .into());
                }
                vault::encrypt(&bytes, key.password(), Some(key.label())).into_bytes()
            }
            None => open(f, &bytes, &ring)?.0,
        };
        results.push((f, out));
    }
    for (f, out) in results {
        let to = a.output.as_deref().unwrap_or(f);
        write(to, &out, !encrypt)?;
        if to != Path::new("-") {
            eprintln!("{}: {}", to.display(), if encrypt { "encrypted" } else { "decrypted" });
        }
    }
    Ok(Code::Ok)
}

fn view(a: &ViewArgs) -> Result<Code, CliError> {
    let ring = a.vault.keyring()?;
    needs_keys(&ring)?;
    let mut texts = Vec::new();
    for f in &a.files {
        texts.push(open(f, &read(f)?, &ring)?.0);
    }
    for t in texts {
        write(Path::new("-"), &t, true)?;
    }
    Ok(Code::Ok)
}

fn encrypt_string(a: &StringArgs) -> Result<Code, CliError> {
    let ring = a.vault.keyring()?;
    needs_keys(&ring)?;
    let key = encrypting(&ring, &a.id)?;
    let plain = match &a.string {
        Some(s) => s.clone().into_bytes(),
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("Reading the plaintext from stdin (end with Ctrl-D):");
            }
            read(Path::new("-"))?
        }
    };
    let name = a.name.as_ref().or(a.stdin_name.as_ref());
    if let Some(n) = name
        && (n.is_empty() || n.contains(|c: char| !(c.is_alphanumeric() || c == '_')))
    {
        return Err(Diagnostic::plain(format!("`{n}` is not a variable name")).into());
    }
    let text = vault::encrypt(&plain, key.password(), Some(key.label()));
    super::common::print_out(&vault::yaml_value(name.map(String::as_str), &text));
    Ok(Code::Ok)
}

fn rekey(a: &RekeyArgs) -> Result<Code, CliError> {
    let ring = a.vault.keyring()?;
    needs_keys(&ring)?;
    // The new password: only what the command line names, or the terminal; never the
    // environment's (which is the old one's default).
    let new = match (&a.new_vault_password_file, &a.new_vault_id) {
        (Some(p), _) => IdSpec::file(p),
        (None, Some(id)) => IdSpec::parse(id),
        (None, None) => IdSpec::parse("prompt"),
    };
    let new = new.load_new().map_err(|e| match e {
        KeyError::NoTerminal => CliError::Input(
            Diagnostic::plain("rekey: the new vault password prompt needs a terminal")
                .with_hint("give --new-vault-password-file FILE or --new-vault-id LABEL@FILE"),
        ),
        e => key_error(e),
    })?;
    let mut results = Vec::new();
    for f in &a.files {
        let bytes = read(f)?;
        let (plain, _) = open(f, &bytes, &ring)?;
        results.push((f, vault::encrypt(&plain, new.password(), Some(new.label()))));
    }
    for (f, out) in results {
        write(f, out.as_bytes(), false)?;
        eprintln!("{}: rekeyed", f.display());
    }
    Ok(Code::Ok)
}

/// The editor command: `$EDITOR` (words as a shell splits them), else `vi`.
fn editor() -> Result<Vec<String>, CliError> {
    let e = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    shlex::split(&e)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| Diagnostic::plain(format!("$EDITOR `{e}` cannot be split into words")).into())
}

/// Lets the operator edit `plain` in a private file (mode 0600 in a 0700 directory, in
/// memory where the machine has /dev/shm or /run/user/UID), overwritten and removed afterwards.
/// Ctrl-C belongs to the editor meanwhile: tend ignores it, so an interrupt never leaves the
/// plaintext behind nor loses the edit.
fn edit_text(plain: &[u8], name: &Path) -> Result<Vec<u8>, CliError> {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let base = [PathBuf::from("/dev/shm"), PathBuf::from(format!("/run/user/{uid}"))]
        .into_iter()
        .find(|p| p.is_dir() && tempfile::Builder::new().tempdir_in(p).is_ok())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("tend-vault-")
        .tempdir_in(&base)
        .map_err(|e| Diagnostic::plain(format!("cannot make a private directory for editing: {e}")))?;
    let file = dir
        .path()
        .join(name.file_name().unwrap_or(std::ffi::OsStr::new("vault")));
    std::fs::write(&file, plain).map_err(|e| file_error(&file, e))?;
    let words = editor()?;
    let mut cmd = std::process::Command::new(&words[0]);
    cmd.args(&words[1..]).arg(&file);
    // SAFETY: between fork and exec only async-signal-safe calls: signal(2) gives the editor
    // back the default handling of the signals tend ignores below.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    // SAFETY: setting a signal's disposition (and putting it back) has no preconditions.
    let saved = unsafe {
        (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        )
    };
    let status = cmd
        .status()
        .map_err(|e| Diagnostic::plain(format!("cannot run the editor `{}`: {e}", words[0])));
    // SAFETY: as above.
    unsafe {
        libc::signal(libc::SIGINT, saved.0);
        libc::signal(libc::SIGQUIT, saved.1);
    }
    let edited = std::fs::read(&file).map_err(|e| file_error(&file, e));
    // Overwritten in place (not truncated first) before removal, so the plaintext does not
    // linger in freed blocks.
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&file) {
        let len = edited.as_ref().map_or(0, Vec::len).max(plain.len());
        let _ = f.write_all(&vec![0u8; len]).and_then(|()| f.sync_all());
    }
    drop(dir);
    let status = status?;
    if !status.success() {
        return Err(Diagnostic::plain(format!(
            "the editor `{}` failed ({status}); nothing was written",
            words[0]
        ))
        .into());
    }
    edited
}

fn create(a: &EditArgs) -> Result<Code, CliError> {
    if a.file.exists() {
        return Err(Diagnostic::in_file(&a.file, "exists already")
            .with_hint("`tend vault edit` changes it")
            .into());
    }
    let ring = a.vault.keyring()?;
    needs_keys(&ring)?;
    let key = encrypting(&ring, &a.id)?;
    // The directory first: what is typed is never lost to a missing one.
    if let Some(parent) = a.file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| file_error(parent, format!("cannot create the directory: {e}")))?;
    }
    let plain = edit_text(b"", &a.file)?;
    write(
        &a.file,
        vault::encrypt(&plain, key.password(), Some(key.label())).as_bytes(),
        false,
    )?;
    Ok(Code::Ok)
}

fn edit(a: &EditArgs) -> Result<Code, CliError> {
    let ring = a.vault.keyring()?;
    needs_keys(&ring)?;
    let bytes = read(&a.file)?;
    let (plain, opened) = open(&a.file, &bytes, &ring)?;
    let edited = edit_text(&plain, &a.file)?;
    if edited == plain {
        eprintln!("{}: unchanged; left as it was", a.file.display());
        return Ok(Code::Ok);
    }
    // The same vault id as its header says, unless another is asked for.
    let (key, label) = match &a.id.encrypt_vault_id {
        Some(_) => {
            let k = encrypting(&ring, &a.id)?;
            (k, Some(k.label().to_string()))
        }
        None => (opened, vault::parse(&bytes).ok().and_then(|e| e.label)),
    };
    write(
        &a.file,
        vault::encrypt(&edited, key.password(), label.as_deref()).as_bytes(),
        false,
    )?;
    Ok(Code::Ok)
}
