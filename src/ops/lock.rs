//! The operations' lease lock on a host, taken by every command that changes the fleet's
//! releases or roles (deploy, rollback; later migrate, failover, restore) through [`super::run`]. The lock file says who holds it (user,
//! control host, pid, command, reason) and until when; the holder renews it while it works. A
//! crashed holder blocks nobody for long: an expired lease is taken over, and a holder on this
//! same machine whose process is gone is recognised at once. `tend lock show/break` inspect and
//! remove it by hand. Updates are serialised on the host with `flock`.

use crate::transport::shell::quote;
use crate::transport::{Failure, Host, Input, StepError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where lock files live on the lock host.
pub const LOCK_DIR: &str = "/var/lib/tend/locks";

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LockInfo {
    /// Lock name (e.g. the target group).
    pub name: String,
    /// The host the lock file is on.
    pub host: String,
    /// The holder's secret-free identity token.
    pub token: String,
    /// The user who ran the holding command.
    pub user: String,
    /// The control node it runs on.
    pub control_host: String,
    /// Its process id there.
    pub pid: u32,
    /// That machine's boot id (a pid means nothing after a reboot).
    pub boot_id: String,
    /// The command (`deploy`, `rollback`, ...).
    pub command: String,
    /// Why (`release 42`).
    pub reason: String,
    /// When it was taken (seconds since the epoch, lock host clock).
    pub started: i64,
    /// When the lease ends unless renewed.
    pub expires: i64,
    /// The lock host's clock when this was read.
    pub now: i64,
}

impl LockInfo {
    fn parse(name: &str, host: &str, now: i64, lines: &[&str]) -> Self {
        let map: BTreeMap<&str, &str> = lines.iter().filter_map(|l| l.split_once('=')).collect();
        let get = |k: &str| map.get(k).copied().unwrap_or_default().to_string();
        LockInfo {
            name: name.to_string(),
            host: host.to_string(),
            token: get("token"),
            user: get("user"),
            control_host: get("control_host"),
            pid: get("pid").parse().unwrap_or(0),
            boot_id: get("boot_id"),
            command: get("command"),
            reason: get("reason"),
            started: get("started").parse().unwrap_or(0),
            expires: get("expires").parse().unwrap_or(0),
            now,
        }
    }

    /// One line for messages: which lock, who, what, since when, until when.
    pub fn describe(&self) -> String {
        format!("`{}` is held by {}", self.name, self.holder())
    }

    /// Who holds it, what for, since when, until when.
    pub fn holder(&self) -> String {
        let since = jiff::Timestamp::from_second(self.started)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|_| self.started.to_string());
        let left = self.expires - self.now;
        let lease = if left > 0 {
            format!("lease ends in {left}s unless renewed")
        } else {
            format!("lease expired {}s ago", -left)
        };
        format!(
            "{}@{} (pid {}, `tend {}`{}) since {since}; {lease}",
            self.user,
            self.control_host,
            self.pid,
            self.command,
            if self.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", self.reason)
            },
        )
    }

    /// True when the holder ran on this machine, since its last boot, and its process is gone.
    pub fn holder_is_dead_here(&self, me: &Me) -> bool {
        self.control_host == me.control_host && self.boot_id == me.boot_id && !process_is_tend(self.pid)
    }
}

fn process_is_tend(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "tend")
}

/// This process's identity, written into locks it takes.
#[derive(Debug, Clone)]
pub struct Me {
    /// Login name.
    pub user: String,
    /// Host name of the control node.
    pub control_host: String,
    /// Process id.
    pub pid: u32,
    /// Kernel boot id.
    pub boot_id: String,
}

impl Me {
    /// Reads the identity of the running process.
    pub fn current() -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| user_name(uid))
            .unwrap_or_else(|| format!("uid{uid}"));
        Me {
            user: clean(&user),
            control_host: clean(&read("/proc/sys/kernel/hostname")),
            pid: std::process::id(),
            boot_id: clean(&read("/proc/sys/kernel/random/boot_id")),
        }
    }
}

/// The login name of `uid` from /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid.to_string()).then(|| name.to_string())
    })
}

/// Lock file values are single lines without `=` surprises.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Why a lock was not taken or was lost.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it.
    #[error("lock {}", .0.describe())]
    Held(Box<LockInfo>),
    /// The host could not be asked.
    #[error(transparent)]
    Step(#[from] StepError),
    /// Interrupted while waiting.
    #[error("interrupted while waiting for the lock")]
    Interrupted,
}

/// The lock's files are root's alone (0700 directory, 0600 files): who holds the fleet and why
/// is nobody else's to read, and nobody else's to write.
const SCRIPT: &str = r#"set -u
umask 077
d=/var/lib/tend/locks
f=$d/$name.lock
mkdir -p -- "$d" 2>/dev/null || { cat > /dev/null; echo "cannot create $d (are you root? try --become)" >&2; exit 3; }
chmod 700 -- "$d" 2>/dev/null || true
exec 9>>"$d/.guard" || exit 3
flock -w 10 9 || { cat > /dev/null; echo "timed out waiting for $d/.guard" >&2; exit 3; }
now=$(date +%s)
started=$now
if [ -f "$f" ]; then
  tok=$(sed -n 's/^token=//p' "$f"); exp=$(sed -n 's/^expires=//p' "$f")
  case $mode in
    acquire)
      if [ "$tok" != "$token" ] && [ "$tok" != "$steal" ] && [ "${exp:-0}" -gt "$now" ]; then
        cat > /dev/null; echo "held $now"; cat "$f"; exit 0
      fi
      [ "$tok" = "$token" ] || { echo "replaced $now"; cat "$f"; echo; } ;;
    renew|release)
      if [ "$tok" != "$token" ]; then cat > /dev/null; echo "lost $now"; cat "$f"; exit 0; fi
      started=$(sed -n 's/^started=//p' "$f") ;;
    show) cat > /dev/null; echo "held $now"; cat "$f"; exit 0 ;;
    break) cat > /dev/null; echo "broken $now"; cat "$f"; rm -f -- "$f"; exit 0 ;;
  esac
else
  case $mode in
    renew|release) cat > /dev/null; echo "lost $now"; exit 0 ;;
    show|break) cat > /dev/null; echo "free $now"; exit 0 ;;
  esac
fi
if [ "$mode" = release ]; then cat > /dev/null; rm -f -- "$f"; echo "released $now"; exit 0; fi
{ cat; echo "started=$started"; echo "expires=$((now + ttl))"; } > "$f.tmp" && mv -f -- "$f.tmp" "$f" || exit 3
echo "ok $now"
"#;

/// The answer of one lock script run.
struct Answer {
    word: String,
    other: Option<LockInfo>,
}

async fn call(
    node: &Host,
    name: &str,
    mode: &str,
    token: &str,
    steal: &str,
    ttl: Duration,
    body: &str,
) -> Result<Answer, StepError> {
    let script = format!(
        "name={} mode={mode} token={} steal={} ttl={}\n{SCRIPT}",
        quote(name),
        quote(token),
        quote(steal),
        ttl.as_secs()
    );
    let what = format!("{mode} lock {LOCK_DIR}/{name}.lock");
    let out = node
        .step(
            "lock",
            &what,
            script,
            Input::Bytes(body.as_bytes()),
            Duration::from_secs(30),
        )
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    let (word, now) = head.split_once(' ').unwrap_or((head, "0"));
    let rest: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let other = (!rest.is_empty()).then(|| LockInfo::parse(name, node.name(), now.trim().parse().unwrap_or(0), &rest));
    Ok(Answer {
        word: word.to_string(),
        other,
    })
}

/// A lock this process holds; renewed in the background until released.
#[derive(Debug)]
pub struct Lease {
    node: Host,
    name: String,
    token: String,
    ttl: Duration,
    lost: Arc<AtomicBool>,
    stop: CancellationToken,
    renewer: Option<tokio::task::JoinHandle<()>>,
    /// The expired or abandoned lock this lease replaced, if any.
    pub replaced: Option<LockInfo>,
}

/// What a new lease says about its holder.
#[derive(Debug, Clone)]
pub struct Request {
    /// Lock name: the target group for deploys.
    pub name: String,
    /// The command taking it.
    pub command: String,
    /// Why, for whoever finds it held.
    pub reason: String,
    /// Lease length; renewed every third of it.
    pub ttl: Duration,
    /// How long to wait for a held lock (zero: fail at once).
    pub wait: Duration,
}

/// Takes the lock on `node`, waiting up to `req.wait` while another live holder has it.
pub async fn acquire(node: &Host, req: &Request, cancel: &CancellationToken) -> Result<Lease, LockError> {
    let me = Me::current();
    let token = hex::encode(
        &Sha256::digest(format!(
            "{}:{}:{}:{:?}",
            me.control_host,
            me.pid,
            me.boot_id,
            std::time::SystemTime::now()
        ))[..12],
    );
    let body = format!(
        "token={token}\nuser={}\ncontrol_host={}\npid={}\nboot_id={}\ncommand={}\nreason={}\n",
        me.user,
        me.control_host,
        me.pid,
        me.boot_id,
        clean(&req.command),
        clean(&req.reason)
    );
    let deadline = tokio::time::Instant::now() + req.wait;
    let mut steal = String::new();
    loop {
        let answer = call(node, &req.name, "acquire", &token, &steal, req.ttl, &body).await?;
        match (answer.word.as_str(), answer.other) {
            ("ok", _) => return Ok(Lease::start(node, req, token, body, None)),
            ("replaced", other) => return Ok(Lease::start(node, req, token, body, other)),
            ("held", Some(other)) => {
                if other.holder_is_dead_here(&me) && steal != other.token {
                    steal = other.token.clone();
                    continue;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(LockError::Held(Box::new(other)));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = cancel.cancelled() => return Err(LockError::Interrupted),
                }
            }
            (word, _) => {
                return Err(LockError::Step(StepError::remote(
                    node.name(),
                    "lock",
                    Failure::message(
                        format!("unexpected answer `{word}` from the lock script"),
                        format!("acquire lock {LOCK_DIR}/{}.lock", req.name),
                    ),
                )));
            }
        }
    }
}

impl Lease {
    fn start(node: &Host, req: &Request, token: String, body: String, replaced: Option<LockInfo>) -> Self {
        let mut lease = Lease {
            node: node.clone(),
            name: req.name.clone(),
            token,
            ttl: req.ttl,
            lost: Arc::new(AtomicBool::new(false)),
            stop: CancellationToken::new(),
            renewer: None,
            replaced,
        };
        let (node, name, token, ttl, lost, stop, body) = (
            lease.node.clone(),
            lease.name.clone(),
            lease.token.clone(),
            lease.ttl,
            lease.lost.clone(),
            lease.stop.clone(),
            body,
        );
        lease.renewer = Some(tokio::spawn(async move {
            let every = (ttl / 3).max(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
                if let Ok(a) = call(&node, &name, "renew", &token, "", ttl, &body).await
                    && a.word == "lost"
                {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }));
        lease
    }

    /// True when someone broke or took over the lock while this process worked.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host holding the lock file.
    pub fn host(&self) -> &str {
        self.node.name()
    }

    /// Gives the lock up (only if still ours).
    pub async fn release(mut self) -> Result<(), StepError> {
        self.stop.cancel();
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.await;
        }
        call(&self.node, &self.name, "release", &self.token, "", self.ttl, "")
            .await
            .map(|_| ())
    }
}

/// Who holds lock `name` on `node`, if anyone.
pub async fn show(node: &Host, name: &str) -> Result<Option<LockInfo>, StepError> {
    let a = call(node, name, "show", "", "", Duration::ZERO, "").await?;
    Ok(if a.word == "held" { a.other } else { None })
}

/// Removes lock `name` whoever holds it; returns who held it.
pub async fn break_lock(node: &Host, name: &str) -> Result<Option<LockInfo>, StepError> {
    let a = call(node, name, "break", "", "", Duration::ZERO, "").await?;
    Ok(if a.word == "broken" { a.other } else { None })
}

/// Lock names become file names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_reads_back_as_its_holder() {
        let lines = [
            "token=abc",
            "user=ops",
            "control_host=ci-7",
            "pid=42",
            "boot_id=b",
            "command=deploy",
            "reason=release 9",
            "started=1000",
            "expires=1120",
        ];
        let info = LockInfo::parse("app", "h6", 1100, &lines);
        assert_eq!((info.pid, info.expires, info.user.as_str()), (42, 1120, "ops"));
        assert!(
            info.describe().starts_with(
                "`app` is held by ops@ci-7 (pid 42, `tend deploy`: release 9) since 1970-01-01 00:16:40 UTC"
            ),
            "{}",
            info.describe()
        );
        assert!(info.describe().ends_with("lease ends in 20s unless renewed"));
        let me = Me {
            user: "ops".into(),
            control_host: "ci-7".into(),
            pid: 1,
            boot_id: "b".into(),
        };
        // pid 42 on this machine is not a `tend` process (or does not exist).
        assert!(info.holder_is_dead_here(&me));
        let elsewhere = Me {
            control_host: "other".into(),
            ..me
        };
        assert!(!info.holder_is_dead_here(&elsewhere));
    }
}
