//! The only place that builds shell text: quoting, privilege escalation and time limits.
//! Every value that reaches a remote shell goes through [`quote`].

use super::RemoteCommand;

/// How to run a command as another user.
#[derive(Clone, PartialEq, Eq)]
pub struct Become {
    /// The target user (`ansible_become_user`, default `root`).
    pub user: String,
    /// sudo's password for the connecting user (`ansible_become_password`,
    /// `--ask-become-pass`); without one, sudo must not ask.
    pub password: Option<String>,
}

impl Become {
    /// Becoming `user` with sudo that asks no password.
    pub fn user(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: None,
        }
    }
}

/// Never shows the password (a `Target` is printed in debug output and errors).
impl std::fmt::Debug for Become {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Become")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// Defines `tend_sha256` (stdin → lowercase hex SHA-256) for scripts that hash files of any
/// size: OpenSSL's digest where the host has it (it uses the CPU's SHA instructions: 2 GiB in
/// about 2 s where coreutils' `sha256sum` takes 14 s), else `sha256sum`.
pub const SHA256_FN: &str = "tend_sha256() { if command -v openssl >/dev/null 2>&1; then set -- $(openssl dgst -sha256 -r); else set -- $(sha256sum); fi; echo \"$1\"; }\n";

/// Runs `body` (a script; the variables named in `exports` and the positional parameters
/// passed on) so that it ends with its SSH channel: in a process group of its own, watched by
/// a loop that writes a heartbeat line to stdout every 0.2 s and stops the group when that
/// write fails (tend killed or its connection gone). A long load or replay on a host is never
/// left running by a dead tend, to race the next run. Exits with the body's status.
pub fn tethered(body: &str, exports: &[&str]) -> String {
    let mut s = String::new();
    if !exports.is_empty() {
        s.push_str(&format!("export {}\n", exports.join(" ")));
    }
    s.push_str(&format!(
        r#"tend_done=$(mktemp -u) || exit 3
export tend_done
tend_body={}
exec 3<&0
setsid sh -c 'sh -c "$0" tend "$@"; echo $? > "$tend_done"' "$tend_body" "$@" <&3 3<&- &
exec 3<&-
tend_pid=$!
trap '' PIPE
while [ ! -s "$tend_done" ]; do
  sleep 0.2
  if ! printf '.\n' 2>/dev/null; then kill -TERM -"$tend_pid" 2>/dev/null; kill -TERM "$tend_pid" 2>/dev/null; exit 143; fi
done
wait "$tend_pid" 2>/dev/null
tend_rc=$(cat "$tend_done"); rm -f -- "$tend_done"
exit "$tend_rc"
"#,
        quote(body)
    ));
    s
}

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

/// Becomes `$1` and runs the rest of the words: with `sudo` unless the connection is that user
/// already (root to root needs no sudo on the host, as in Ansible).
const BECOME: &str = r#"u=$1; shift; if [ "$(id -un)" = "$u" ]; then exec "$@"; fi; exec sudo -H -n -u "$u" -- "$@""#;

/// [`BECOME`] with sudo's password: the password is the first line on stdin, read by the shell
/// (never in a command line). sudo that needs none runs as without one; else the password is
/// tried alone first, so a wrong one fails with a clear message instead of sudo reading the
/// script as further attempts; then sudo (`-k`: it always reads it) gets the password line and,
/// after it, the command's own stdin.
const BECOME_WITH_PASSWORD: &str = r#"u=$1; shift; IFS= read -r tend_pw || exit 125
if [ "$(id -un)" = "$u" ]; then exec "$@"; fi
if sudo -n -u "$u" true 2>/dev/null; then exec sudo -H -n -u "$u" -- "$@"; fi
if ! printf '%s\n' "$tend_pw" | sudo -S -k -p '' -u "$u" true 2>/dev/null; then
  echo "sudo on $(hostname) refused the become password of $(id -un) (to become $u)" >&2; exit 1
fi
{ printf '%s\n' "$tend_pw"; exec cat; } | sudo -H -S -k -p '' -u "$u" -- "$@""#;

/// The script's last line, a comment: a script cut short on the way (the connection dropped)
/// lacks it and is not run at all, rather than run in part.
const SCRIPT_END: &str = "#tend:end-of-script";

/// The command line handed to the host's login shell, and the bytes to send on its standard
/// input before the command's own: the script travels on stdin (`head -c` reads exactly its
/// length, then `sh` evaluates it), so what it holds (passwords from a vault, file contents,
/// SQL) never appears in a process's command line on the host, which any local user can read
/// in `/proc`; only its tag shows there, as the shell's name. Runs as another user when
/// `become` is set, killed after the command's timeout when it has one (exit 124, like
/// `timeout(1)`).
pub fn command_line(command: &RemoteCommand, escalate: Option<&Become>) -> (String, Vec<u8>) {
    let script = format!("{}\n{SCRIPT_END}", command.script);
    let mut line = format!(
        "sh -c {}",
        quote(&format!(
            "tend_s=$(head -c {}); case $tend_s in *'{SCRIPT_END}') eval \"$tend_s\";; *) echo \"tend: the script reached $(hostname) cut short; nothing of it ran\" >&2; exit 125;; esac",
            script.len()
        ))
    );
    if let Some(tag) = &command.tag {
        line = format!("{line} {}", quote(tag));
    }
    let mut stdin = Vec::with_capacity(script.len());
    if let Some(b) = escalate {
        let wrapper = match &b.password {
            Some(p) => {
                stdin.extend_from_slice(p.as_bytes());
                stdin.push(b'\n');
                BECOME_WITH_PASSWORD
            }
            None => BECOME,
        };
        line = format!("sh -c {} tend-become {} {line}", quote(wrapper), quote(&b.user));
    }
    stdin.extend_from_slice(script.as_bytes());
    if let Some(t) = command.timeout {
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
    (line, stdin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_tethered_body_dies_when_its_output_is_gone() {
        let dir = std::env::temp_dir().join(format!("tend-tether-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let marker = dir.join("survived");
        let body = format!("sleep 2; touch {}", quote(&marker.display().to_string()));
        let mut child = std::process::Command::new("sh")
            .args(["-c", &tethered(&body, &[])])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        // The channel goes: nobody reads the heartbeat any more.
        drop(child.stdout.take());
        let status = child.wait().expect("wait");
        std::thread::sleep(std::time::Duration::from_secs(3));
        assert!(!marker.exists(), "the body outlived its channel ({status})");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tethered_body_keeps_its_stdin_arguments_and_exit_status() {
        use std::io::Write as _;
        let script = format!(
            "x=1\nset -- a 'b c'\n{}",
            tethered("read -r l; echo \"$x $l $2\"; exit 3", &["x"])
        );
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        child.stdin.take().expect("stdin").write_all(b"line\n").expect("write");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(3));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.lines().any(|l| l == "1 line b c"), "{text}");
    }

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

    /// Runs a command line as the host's login shell would, with the script and `input` on stdin.
    fn run_line((line, script): (String, Vec<u8>), input: &[u8]) -> std::process::Output {
        use std::io::Write as _;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&script).unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    #[test]
    fn command_line_wraps_become_and_timeout() {
        let b = Become::user("app user");
        let (line, _) = command_line(&RemoteCommand::new("id -un"), Some(&b));
        assert!(line.contains(" tend-become 'app user' sh -c "), "{line}");
        // Becoming the user the connection is already runs without sudo.
        let me = std::process::Command::new("id").arg("-un").output().unwrap();
        let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
        let out = run_line(
            command_line(&RemoteCommand::new("echo \"$HOME\" ok"), Some(&Become::user(me))),
            b"",
        );
        assert!(String::from_utf8_lossy(&out.stdout).ends_with(" ok\n"), "{out:?}");
        let out = run_line(
            command_line(
                &RemoteCommand::new("sleep 5").timeout(Some(Duration::from_secs(1))),
                None,
            ),
            b"",
        );
        assert_eq!(out.status.code(), Some(124));
    }

    #[test]
    fn the_script_travels_on_stdin_ahead_of_the_input() {
        let script = "secret='s3cr3t pass'\nprintf '%s|' \"$secret\"; cat; exit 3\n";
        let (line, sent) = command_line(
            &RemoteCommand::new(script)
                .timeout(Some(Duration::from_secs(30)))
                .tagged("x=1"),
            None,
        );
        assert!(!line.contains("s3cr3t"), "{line}");
        let out = run_line((line, sent), b"data\nmore");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "s3cr3t pass|data\nmore");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_script_cut_short_on_the_way_runs_not_at_all() {
        let dir = std::env::temp_dir().join(format!("tend-cut-{}", std::process::id()));
        let marker = dir.join("ran");
        let script = format!(
            "mkdir -p {0}; touch {1}\nrm -rf {0}/keep\n",
            quote(&dir.display().to_string()),
            quote(&marker.display().to_string())
        );
        let (line, sent) = command_line(&RemoteCommand::new(script), None);
        // The connection drops before the last bytes: the first line must not run either.
        let cut = sent[..sent.len() - 4].to_vec();
        let out = run_line((line, cut), b"");
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        assert!(!marker.exists());
    }
}
