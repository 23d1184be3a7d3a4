//! The only place that builds shell text: quoting, privilege escalation and time limits.
//! Every value that reaches a remote shell goes through [`quote`].

use std::time::Duration;

/// How to run a command as another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    /// The target user (`ansible_become_user`, default `root`).
    pub user: String,
}

/// Defines `tend_sha256` (stdin → lowercase hex SHA-256) for scripts that hash files of any
/// size: OpenSSL's digest where the host has it (it uses the CPU's SHA instructions: 2 GiB in
/// about 2 s where coreutils' `sha256sum` takes 14 s), else `sha256sum`.
pub const SHA256_FN: &str = "tend_sha256() { if command -v openssl >/dev/null 2>&1; then set -- $(openssl dgst -sha256 -r); else set -- $(sha256sum); fi; echo \"$1\"; }\n";

/// POSIX single-quote quoting: safe for any byte string in `sh`, `bash`, `dash`, `zsh`.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Joins argv words into one command line that reproduces them exactly.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words.iter().map(|w| quote(w.as_ref())).collect::<Vec<_>>().join(" ")
}

/// The command line handed to the host's login shell: runs `script` with `sh`, as another user
/// when `become` is set, killed after `timeout` when given (exit 124, like `timeout(1)`).
pub fn command_line(script: &str, escalate: Option<&Become>, timeout: Option<Duration>) -> String {
    let mut line = format!("sh -c {}", quote(script));
    if let Some(b) = escalate {
        line = format!("sudo -H -n -u {} -- {line}", quote(&b.user));
    }
    if let Some(t) = timeout {
        let secs = t.as_secs().max(1);
        let limited = format!("exec timeout -k 5 {secs} {line}");
        let fallback = format!("exec {line}");
        line = format!(
            "sh -c {}",
            quote(&format!(
                "if command -v timeout >/dev/null 2>&1; then {limited}; else {fallback}; fi"
            ))
        );
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("abc-1.2/x"), "abc-1.2/x");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's $(rm -rf /)"), r"'it'\''s $(rm -rf /)'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        let words = ["printf", "%s|", "a b", "$HOME", "it's", "`id`", "*", ""];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(join(&words))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|$HOME|it's|`id`|*||");
    }

    #[test]
    fn the_sha256_function_agrees_with_sha256sum() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{SHA256_FN}printf abc | tend_sha256; printf abc | sha256sum"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(lines[1].starts_with(lines[0]), "{text}");
    }

    #[test]
    fn command_line_wraps_become_and_timeout() {
        let b = Become {
            user: "app user".into(),
        };
        assert_eq!(
            command_line("id", Some(&b), None),
            "sudo -H -n -u 'app user' -- sh -c id"
        );
        let line = command_line("sleep 5", None, Some(Duration::from_secs(1)));
        let out = std::process::Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert_eq!(out.status.code(), Some(124), "{line}");
    }
}
