//! Ansible Vault's format, read and written byte-compatibly with `ansible-vault`: secrets stay
//! encrypted in the repository (whole files, or `!vault` values inside YAML) and are opened
//! only in tend's memory, with the passwords of [`keys`].
//!
//! ```text
//! $ANSIBLE_VAULT;1.1;AES256            (1.2 adds ";label", the vault id)
//! hex( hex(salt) \n hex(HMAC-SHA256(key2, ct)) \n hex(ct) ), in lines of 80
//!   key1 | key2 | iv = PBKDF2-HMAC-SHA256(password, salt, 10000 rounds, 80 bytes)
//!   ct = AES-256-CTR(key1, iv, PKCS#7-padded plaintext)
//! ```

pub mod keys;

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// The first line's first field of every vault.
pub const HEADER: &str = "$ANSIBLE_VAULT";

/// The only cipher Ansible writes (and the only one it reads since 2.4).
const CIPHER: &str = "AES256";

/// PBKDF2 rounds of ansible-vault's AES256.
const ROUNDS: u32 = 10_000;

/// Why a vault could not be opened or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// Not vault text at all.
    #[error("not vault-encrypted (no `$ANSIBLE_VAULT;` header)")]
    NotVault,
    /// A header or body that is not ansible-vault's format.
    #[error("malformed vault: {0}")]
    Malformed(String),
    /// A format version or cipher tend does not read.
    #[error("unsupported vault {0} (tend reads 1.1 and 1.2 with AES256)")]
    Unsupported(String),
    /// No password was given for it.
    #[error("no vault password was given{}", .0.as_ref().map(|l| format!(" (the vault's id is `{l}`)")).unwrap_or_default())]
    NoPassword(Option<String>),
    /// None of the passwords opens it (the HMAC does not match).
    #[error("no vault password given opens it{}", .0.as_ref().map(|l| format!(" (the vault's id is `{l}`)")).unwrap_or_default())]
    WrongPassword(Option<String>),
}

/// A vault's header and its decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `1.1` or `1.2`.
    pub version: String,
    /// The vault id of a 1.2 vault.
    pub label: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Whether `text` is vault text (its first line starts with the header).
pub fn is_vault(text: &[u8]) -> bool {
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    text[start..].starts_with(format!("{HEADER};").as_bytes())
}

/// Reads the header and body, as ansible-vault does (whitespace around lines ignored).
pub fn parse(text: &[u8]) -> Result<Envelope, VaultError> {
    let text = std::str::from_utf8(text).map_err(|_| VaultError::Malformed("not text".into()))?;
    let mut lines = text.trim().lines();
    let header = lines.next().unwrap_or_default().trim();
    let fields: Vec<&str> = header.split(';').map(str::trim).collect();
    if fields.first() != Some(&HEADER) {
        return Err(VaultError::NotVault);
    }
    if fields.len() < 3 {
        return Err(VaultError::Malformed(format!(
            "header `{header}` has no version and cipher"
        )));
    }
    let (version, cipher) = (fields[1], fields[2]);
    if !matches!(version, "1.1" | "1.2") || cipher != CIPHER {
        return Err(VaultError::Unsupported(format!("{version} {cipher}")));
    }
    let label = fields.get(3).filter(|l| !l.is_empty()).map(|l| l.to_string());
    let body: String = lines.map(str::trim).collect();
    let inner = hex::decode(&body).map_err(|e| VaultError::Malformed(format!("body is not hex: {e}")))?;
    let mut parts = inner.splitn(3, |b| *b == b'\n');
    let mut part = |what: &str| {
        parts
            .next()
            .ok_or_else(|| VaultError::Malformed(format!("no {what}")))
            .and_then(|p| hex::decode(p).map_err(|e| VaultError::Malformed(format!("{what} is not hex: {e}"))))
    };
    let salt = part("salt")?;
    let hmac = part("HMAC")?;
    let ciphertext = part("ciphertext")?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(VaultError::Malformed("ciphertext is not whole AES blocks".into()));
    }
    Ok(Envelope {
        version: version.to_string(),
        label,
        salt,
        hmac,
        ciphertext,
    })
}

/// The three keys of one password and salt.
fn derive(password: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let mut out = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ROUNDS, &mut out);
    let mut k1 = [0u8; 32];
    let mut k2 = [0u8; 32];
    let mut iv = [0u8; 16];
    k1.copy_from_slice(&out[..32]);
    k2.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (k1, k2, iv)
}

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

fn keystream(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    let mut cipher = Aes256Ctr::new(key.into(), iv.into());
    cipher.apply_keystream(data);
}

fn mac(key: &[u8; 32]) -> hmac::Hmac<Sha256> {
    // HMAC pads a key shorter than the hash's block with zeros (RFC 2104): the same MAC, and
    // a constructor that cannot fail.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <hmac::Hmac<Sha256> as KeyInit>::new(&block.into())
}

impl Envelope {
    /// The plaintext with `password`; `None` when it is not this vault's password.
    pub fn open(&self, password: &[u8]) -> Option<Vec<u8>> {
        let (k1, k2, iv) = derive(password, &self.salt);
        let mut m = mac(&k2);
        m.update(&self.ciphertext);
        // ansible-vault compares the hex digests; the raw bytes are the same comparison.
        m.verify_slice(&self.hmac).ok()?;
        let mut data = self.ciphertext.clone();
        keystream(&k1, &iv, &mut data);
        let pad = *data.last()? as usize;
        if pad == 0 || pad > 16 || pad > data.len() || data[data.len() - pad..].iter().any(|b| *b as usize != pad) {
            return None;
        }
        data.truncate(data.len() - pad);
        Some(data)
    }
}

/// Opens vault text with the first password that fits: those of its own vault id first, as
/// ansible-vault does, then every other.
pub fn decrypt(text: &[u8], keyring: &keys::Keyring) -> Result<Vec<u8>, VaultError> {
    let env = parse(text)?;
    if keyring.is_empty() {
        return Err(VaultError::NoPassword(env.label.clone()));
    }
    let opened = keyring
        .in_order(env.label.as_deref())
        .find_map(|k| env.open(k.password()));
    opened.ok_or(VaultError::WrongPassword(env.label))
}

/// Encrypts `plain` as ansible-vault does (a fresh 32-byte salt), labelled with `label` unless
/// it is `None` or `default` (then a 1.1 vault).
pub fn encrypt(plain: &[u8], password: &[u8], label: Option<&str>) -> String {
    let mut salt = [0u8; 32];
    // Without the OS's randomness nothing is safe to encrypt; fall back to a time-seeded
    // hash only so that a failing getrandom cannot produce a fixed salt.
    if getrandom::fill(&mut salt).is_err() {
        use sha2::Digest as _;
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        salt.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    encrypt_with_salt(plain, password, label, &salt)
}

/// [`encrypt`] with a given salt (a test pins ansible-vault's output for the same one).
pub fn encrypt_with_salt(plain: &[u8], password: &[u8], label: Option<&str>, salt: &[u8]) -> String {
    let (k1, k2, iv) = derive(password, salt);
    let pad = 16 - plain.len() % 16;
    let mut data = plain.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    keystream(&k1, &iv, &mut data);
    let mut m = mac(&k2);
    m.update(&data);
    let digest = m.finalize().into_bytes();
    let inner = format!("{}\n{}\n{}", hex::encode(salt), hex::encode(digest), hex::encode(&data));
    let body = hex::encode(inner.as_bytes());
    let header = match label.filter(|l| !l.is_empty() && *l != "default") {
        Some(l) => format!("{HEADER};1.2;{CIPHER};{l}"),
        None => format!("{HEADER};1.1;{CIPHER}"),
    };
    let mut out = header;
    for chunk in body.as_bytes().chunks(80) {
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out.push('\n');
    out
}

/// The vault text as a YAML `!vault` value (ansible-vault encrypt_string's form).
pub fn yaml_value(name: Option<&str>, vault: &str) -> String {
    let mut out = match name {
        Some(n) => format!("{n}: !vault |"),
        None => "!vault |".to_string(),
    };
    for line in vault.lines() {
        out.push_str("\n          ");
        out.push_str(line);
    }
    out.push('\n');
    out
}

/// Opens a vault-encrypted file with the run's keyring; the error names the file and what to
/// give (exit 4).
pub fn open_file(path: &std::path::Path, bytes: &[u8]) -> Result<String, crate::diagnostic::Diagnostic> {
    let plain = decrypt(bytes, keys::keyring()).map_err(|e| {
        let d = crate::diagnostic::Diagnostic::in_file(path, format!("cannot decrypt: {e}"));
        match e {
            VaultError::NoPassword(_) => {
                d.with_hint("give --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass (or set TEND_VAULT_PASSWORD_FILE)")
            }
            VaultError::WrongPassword(_) => d.with_hint("check the vault password (or give the vault id it was encrypted with)"),
            _ => d,
        }
    })?;
    String::from_utf8(plain)
        .map_err(|_| crate::diagnostic::Diagnostic::in_file(path, "the decrypted vault is not UTF-8 text"))
}

/// A control-node file's content for `copy`/`template`: opened when it is a vault (what it
/// held becomes a secret of the run), else as it is.
pub fn open_content(path: &std::path::Path, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    if !is_vault(&bytes) {
        return Ok(bytes);
    }
    let plain = decrypt(&bytes, keys::keyring()).map_err(|e| format!("{}: cannot decrypt: {e}", path.display()))?;
    reveal(&String::from_utf8_lossy(&plain));
    Ok(plain)
}

/// Values shorter than this are not masked (a vaulted `port: 22` must not hide every 22).
const MIN_SECRET: usize = 4;

static REVEALED: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Marks text that came out of a vault: every event stream of the run masks it, and each of
/// its lines (one line of a key printed alone is still the key).
pub fn reveal(text: &str) {
    let whole = text.trim_end_matches('\n');
    let Ok(mut all) = REVEALED.write() else { return };
    for part in std::iter::once(whole).chain(whole.lines().map(str::trim)) {
        if part.chars().count() >= MIN_SECRET && !all.iter().any(|s| s == part) {
            all.push(part.to_string());
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// A vaulted value no password given opened, found in a task's arguments: the task fails
/// naming its vault id (as Ansible fails when it uses one).
pub fn still_sealed(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.contains(HEADER) => {
            let start = s.find(HEADER).unwrap_or(0);
            let label = parse(&s.as_bytes()[start..]).ok().and_then(|e| e.label);
            Some(match label {
                Some(l) => format!("a `!vault` value of vault id `{l}` is used but no password given opens it"),
                None => "a `!vault` value is used but no vault password given opens it".to_string(),
            })
        }
        serde_json::Value::Array(items) => items.iter().find_map(still_sealed),
        serde_json::Value::Object(map) => map.values().find_map(still_sealed),
        _ => None,
    }
}

/// What [`reveal`] was given, longest first.
pub fn revealed() -> Vec<String> {
    REVEALED.read().map(|v| v.clone()).unwrap_or_default()
}

/// `text` with every vaulted value in it shown as `<vault>` (listings of variables).
pub fn conceal(text: &str) -> String {
    conceal_with(&revealed(), text)
}

fn conceal_with(all: &[String], text: &str) -> String {
    let mut out = text.to_string();
    for secret in all {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "<vault>");
        }
    }
    out
}

/// [`conceal`] on every string of a JSON value.
pub fn conceal_json(value: &mut serde_json::Value) {
    fn walk(all: &[String], value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => *s = conceal_with(all, s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(all, v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| walk(all, v)),
            _ => {}
        }
    }
    let all = revealed();
    if !all.is_empty() {
        walk(&all, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(pw: &str) -> keys::Keyring {
        keys::Keyring::from_passwords(vec![keys::Key::new("default", pw.as_bytes().to_vec())])
    }

    #[test]
    fn round_trip_and_wrong_password() {
        for plain in [
            "",
            "x",
            "exactly sixteen!",
            "a longer secret that spans several blocks\n",
        ] {
            let v = encrypt(plain.as_bytes(), b"pw", None);
            assert!(v.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"), "{v}");
            assert!(v.lines().skip(1).all(|l| l.len() <= 80));
            assert_eq!(decrypt(v.as_bytes(), &ring("pw")).unwrap(), plain.as_bytes());
            assert_eq!(
                decrypt(v.as_bytes(), &ring("other")),
                Err(VaultError::WrongPassword(None))
            );
        }
        let v = encrypt(b"s", b"pw", Some("prod"));
        assert!(v.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"), "{v}");
        assert_eq!(parse(v.as_bytes()).unwrap().label.as_deref(), Some("prod"));
    }

    /// `ANSIBLE_VAULT_ENCRYPT_SALT=0123456789abcdef0123456789abcdef ansible-vault
    /// encrypt_string --vault-id prod@pw.txt --encrypt-vault-id prod 'hello vault'` (ansible-core
    /// 2.19, password `pw`): the same bytes.
    #[test]
    fn the_same_salt_gives_ansible_vaults_bytes() {
        let ansible = "$ANSIBLE_VAULT;1.2;AES256;prod
33303331333233333334333533363337333833393631363236333634363536363330333133323333
3334333533363337333833393631363236333634363536360a393534653335666439343133306163
61316164343662663262633266613234383631326430663961356565623962303062616433366464
6662343630666637390a623131343932393236613562356136323834396534376163313231633231
6466
";
        let ours = encrypt_with_salt(b"hello vault", b"pw", Some("prod"), b"0123456789abcdef0123456789abcdef");
        assert_eq!(ours, ansible);
    }

    #[test]
    fn malformed_vaults_are_named() {
        assert_eq!(parse(b"hello"), Err(VaultError::NotVault));
        assert!(matches!(
            parse(b"$ANSIBLE_VAULT;1.1;AES256\nzz"),
            Err(VaultError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"$ANSIBLE_VAULT;1.0;AES"),
            Err(VaultError::Unsupported(_))
        ));
        assert!(is_vault(b"  $ANSIBLE_VAULT;1.1;AES256\n00"));
        assert!(!is_vault(b"password: $ANSIBLE_VAULT;"));
    }
}
