//! Taking app servers out of an Nginx upstream and putting them back. A drained server is marked
//! `down` with a `# drained by tend` comment, so putting it back never touches a server an
//! operator marked down by hand, and any later deploy or provisioning run restores it. After the
//! reload, Nginx's old workers finish their in-flight requests; draining waits until the reload
//! took effect and no connection to the drained servers is left open.

use super::settings::UpstreamEntry;
use crate::transport::shell::quote;
use crate::transport::{Host, Input, StepError};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The comment that marks a server drained by a deploy.
pub const MARK: &str = "# drained by tend";

/// A server's state in an upstream file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// Taking requests.
    Up,
    /// Marked down by a deploy (tend will put it back).
    Drained,
    /// Marked down by someone else (tend leaves it alone).
    Down,
}

/// The `server` entries of an upstream file: address and state.
pub fn servers(text: &str) -> Vec<(String, ServerState)> {
    text.lines()
        .filter_map(|line| {
            let (addr, params) = server_line(line)?;
            let state = if line.contains(MARK) {
                ServerState::Drained
            } else if params.contains(&"down") {
                ServerState::Down
            } else {
                ServerState::Up
            };
            Some((addr, state))
        })
        .collect()
}

/// `server ADDR PARAMS;` → (ADDR, PARAMS) for a line that is a server entry.
fn server_line(line: &str) -> Option<(String, Vec<&str>)> {
    let code = line.split('#').next().unwrap_or_default();
    let code = code.trim().strip_suffix(';')?.trim();
    let mut words = code.split_whitespace();
    if words.next()? != "server" {
        return None;
    }
    let addr = words.next()?.to_string();
    Some((addr, words.collect()))
}

/// The file with `targets` drained (`drain`) or put back (`!drain`); other lines untouched.
pub fn rewrite(text: &str, targets: &[String], drain: bool) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let (body, eol) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let new = match server_line(body) {
            Some((addr, params)) if targets.contains(&addr) => {
                let indent: String = body.chars().take_while(|c| c.is_whitespace()).collect();
                let marked = body.contains(MARK);
                let mut params: Vec<&str> = params.into_iter().filter(|p| *p != "down" || !marked).collect();
                if drain && !params.contains(&"down") {
                    params.push("down");
                    Some(format!("{indent}server {addr} {}; {MARK}", params.join(" ")))
                } else if !drain && marked {
                    let params = if params.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", params.join(" "))
                    };
                    Some(format!("{indent}server {addr}{params};"))
                } else {
                    None
                }
            }
            _ => None,
        };
        out.push_str(new.as_deref().unwrap_or(body));
        out.push_str(eol);
    }
    out
}

/// One app server as one balancer sees it.
#[derive(Debug)]
pub struct Placement {
    /// The app host (inventory name).
    pub host: String,
    /// The balancer host.
    pub balancer: String,
    /// The upstream file read.
    pub file: String,
    /// The app host's `server` address.
    pub server: String,
    /// Its state there; `Ok(None)` when the file has no such server, `Err` when unreadable.
    pub state: Result<Option<ServerState>, StepError>,
}

/// Where every app server stands on every balancer: each upstream file is read once per
/// balancer. `hosts` are (app host, its upstream entry).
pub async fn placements(lbs: &[Host], hosts: &[(&str, &UpstreamEntry)]) -> Vec<Placement> {
    let mut files: Vec<&str> = hosts.iter().map(|(_, u)| u.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    let mut out = Vec::new();
    for lb in lbs {
        for file in &files {
            let read = read(lb, file).await.map(|text| servers(&text));
            for (host, u) in hosts.iter().filter(|(_, u)| u.file == *file) {
                out.push(Placement {
                    host: (*host).to_string(),
                    balancer: lb.name().to_string(),
                    file: (*file).to_string(),
                    server: u.server.clone(),
                    state: match &read {
                        Ok(list) => Ok(list.iter().find(|(a, _)| *a == u.server).map(|(_, st)| *st)),
                        Err(e) => Err(e.clone()),
                    },
                });
            }
        }
    }
    out
}

const APPLY: &str = r#"set -u
command -v nginx > /dev/null 2>&1 || PATH=$PATH:/usr/sbin
[ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$before" ] || { cat > /dev/null; echo "$f changed while tend was editing it; run again" >&2; exit 6; }
bk=$(mktemp "$f.tend-backup.XXXXXX") && cp -p -- "$f" "$bk" || exit 3
tmp=$(mktemp "$f.tend-new.XXXXXX") || exit 3
cat > "$tmp" && chmod 644 "$tmp" && mv -f -- "$tmp" "$f" || { rm -f -- "$tmp" "$bk"; exit 3; }
if ! out=$(nginx -t 2>&1); then mv -f -- "$bk" "$f"; printf '%s\n' "$out" >&2; exit 5; fi
rm -f -- "$bk"
master=$(cat /run/nginx.pid 2>/dev/null || true)
if [ -z "$master" ] || ! kill -0 "$master" 2>/dev/null; then echo not-running; exit 0; fi
old=$(pgrep -P "$master" | tr '\n' ' ')
if [ -d /run/systemd/system ]; then systemctl reload nginx; else nginx -s reload; fi || { echo "nginx reload failed" >&2; exit 6; }
[ "$wait" -gt 0 ] || { echo reloaded; exit 0; }
end=$(( $(date +%s) + wait ))
# The reload has taken effect once every old worker is gone or shutting down (no new requests).
for p in $old; do
  while kill -0 "$p" 2>/dev/null && ! tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'shutting down'; do
    [ "$(date +%s)" -lt "$end" ] || { echo busy; exit 0; }
    sleep 0.05
  done
done
# In-flight requests: connections still open from here to the drained servers (idle keepalive
# connections of old workers are closed at once; long-lived TCP proxy sessions do not matter).
command -v ss > /dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
command -v ss > /dev/null 2>&1 || { echo "no-ss"; exit 0; }
while :; do
  n=0
  for s in $servers; do
    c=$(ss -Htn state established dst "$s" 2>/dev/null | wc -l)
    n=$((n + c))
  done
  [ "$n" -eq 0 ] && break
  [ "$(date +%s)" -lt "$end" ] || { echo busy; exit 0; }
  sleep 0.1
done
echo reloaded
"#;

/// What a drain or undrain did on one balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing to change.
    Unchanged,
    /// Reloaded; the old workers finished.
    Reloaded,
    /// Reloaded, but requests to the drained servers were still open when the wait ended.
    StillBusy,
    /// The file changed but Nginx is not running.
    NotRunning,
}

/// Reads an upstream file from a balancer.
pub async fn read(node: &Host, file: &str) -> Result<String, StepError> {
    let out = node
        .step(
            "balancer",
            &format!("cat {file}"),
            format!("cat -- {}", quote(file)),
            Input::None,
            Duration::from_secs(30),
        )
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Drains (`drain`) or restores `servers` in `file` on a balancer: edit, `nginx -t` (the old
/// file comes back if refused), reload, and when draining wait up to `wait` for in-flight
/// requests to the drained servers.
pub async fn apply(
    node: &Host,
    file: &str,
    servers: &[String],
    drain: bool,
    wait: Duration,
) -> Result<Applied, StepError> {
    let step = if drain { "drain" } else { "undrain" };
    let before = read(node, file).await?;
    let after = rewrite(&before, servers, drain);
    if after == before {
        return Ok(Applied::Unchanged);
    }
    let script = format!(
        "f={} servers={} before={} wait={}\n{APPLY}",
        quote(file),
        quote(&servers.join(" ")),
        hex::encode(Sha256::digest(before.as_bytes())),
        if drain { wait.as_secs() } else { 0 }
    );
    let what = format!(
        "{} {} in {file}, nginx -t, reload",
        if drain { "mark down" } else { "put back" },
        servers.join(" ")
    );
    let out = node
        .step(
            step,
            &what,
            script,
            Input::Bytes(after.as_bytes()),
            wait + Duration::from_secs(60),
        )
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(if text.contains("not-running") {
        Applied::NotRunning
    } else if text.contains("busy") {
        Applied::StillBusy
    } else {
        Applied::Reloaded
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Managed by tend\nupstream shop_app {\n    server 10.0.0.2:8080 max_fails=2 fail_timeout=5s;\n    server 10.0.0.3:8080;\n    server 10.0.0.4:8080 down;\n    keepalive 16;\n}\n";

    #[test]
    fn draining_marks_only_the_named_servers_and_undraining_restores_the_file() {
        let t = vec!["10.0.0.2:8080".to_string(), "10.0.0.4:8080".to_string()];
        let drained = rewrite(FILE, &t, true);
        assert!(drained.contains("    server 10.0.0.2:8080 max_fails=2 fail_timeout=5s down; # drained by tend\n"));
        // Already down by hand: left exactly as it was, and never brought back.
        assert!(drained.contains("    server 10.0.0.4:8080 down;\n"));
        assert!(drained.contains("    server 10.0.0.3:8080;\n"));
        assert_eq!(
            servers(&drained),
            vec![
                ("10.0.0.2:8080".to_string(), ServerState::Drained),
                ("10.0.0.3:8080".to_string(), ServerState::Up),
                ("10.0.0.4:8080".to_string(), ServerState::Down),
            ]
        );
        assert_eq!(rewrite(&drained, &t, false), FILE);
        assert_eq!(rewrite(FILE, &t, false), FILE);
        assert_eq!(rewrite(&drained, &t, true), drained);
    }
}
