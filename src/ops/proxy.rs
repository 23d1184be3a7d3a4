//! The balancer's database proxy (nginx `stream` upstream in front of the primary): the one
//! door the applications write through. Stopping writes marks every server of the upstream
//! `down` and reloads nginx; the change is held by a command on the balancer that puts the
//! file back and reloads when tend releases it, or when tend's connection goes away — writes
//! are never left stopped by a killed run. When the work failed, tend says so ([`keep_stopped`])
//! and writes stay stopped, the original file beside (`.tend-writes-stopped`); the next run puts
//! it back first, as it does a leftover of a run that lost the balancer itself.

use crate::migrate::db::{Db, Script, text};
use crate::transport::{Held, Host, RemoteCommand, StepError, shell::quote};
use std::time::Duration;

/// `reload`: tests the configuration and reloads nginx, then waits (up to 10 s) until the
/// master has started a worker on the new file: until then the old workers still accept
/// connections on the old one.
const RELOAD: &str = r#"workers() { m=$(cat /run/nginx.pid 2>/dev/null) && [ -n "$m" ] && pgrep -P "$m" 2>/dev/null | tr '\n' ' '; }
reload() {
  before=" $(workers) "
  nginx -t -q && { service nginx reload >/dev/null 2>&1 || nginx -s reload; } || return 1
  [ "$before" != "  " ] || return 0
  i=0
  while [ $i -lt 40 ]; do
    for w in $(workers); do case $before in *" $w "*) ;; *) sleep 0.2; return 0;; esac; done
    sleep 0.25; i=$((i + 1))
  done
}
"#;

/// Holds the upstream's servers `down` until its stdin ends, then puts the file back (after
/// [`RELOAD`]).
const STOP: &str = r#"set -u
trap '' HUP PIPE
keep="$f.tend-writes-stopped"
[ -f "$f" ] || { echo "no upstream file $f on this host (is it the balancer?)" >&2; exit 3; }
if [ -e "$keep" ]; then mv -f -- "$keep" "$f"; fi
cp -p -- "$f" "$keep" || exit 3
sed -E '/[[:space:]]down[[:space:]]*;/!s/^([[:space:]]*server[[:space:]]+[^;]*[^;[:space:]])[[:space:]]*;/\1 down;/' "$keep" > "$f.tmp" && mv -f -- "$f.tmp" "$f" || { mv -f -- "$keep" "$f"; exit 3; }
if ! reload; then mv -f -- "$keep" "$f"; reload; echo "nginx refused the stopped upstream; writes were not stopped" >&2; exit 3; fi
echo "writes stopped"
answer=$(cat)
# Told to keep them stopped (the work failed): the original stays beside, for the next run.
if [ "$answer" = keep ]; then exit 0; fi
mv -f -- "$keep" "$f"
reload || { echo "nginx did not reload with the upstream put back: check $f" >&2; exit 3; }
"#;

/// Puts the upstream file read on stdin in place of `$f` (after [`RELOAD`]): tested with
/// `nginx -t` and reloaded, or put back as it was (exit 4, with nginx's words) when nginx
/// refuses it. Refused while another run holds writes stopped there.
const REPOINT: &str = r#"set -u
[ -f "$f" ] || { echo "no upstream file $f on this host (is it the balancer?)" >&2; exit 3; }
[ -e "$f.tend-writes-stopped" ] && { echo "writes are stopped at the proxy by another run ($f.tend-writes-stopped is there)" >&2; exit 3; }
prev="$f.tend-repoint-prev"
cp -p -- "$f" "$prev" || exit 3
cat > "$f.tmp" && chmod --reference="$prev" -- "$f.tmp" && mv -f -- "$f.tmp" "$f" || { rm -f -- "$f.tmp"; exit 3; }
if ! msg=$(nginx -t 2>&1); then
  mv -f -- "$prev" "$f"
  echo "nginx -t refused the repointed upstream $f, put back as it was: $(printf '%s\n' "$msg" | grep -v 'test failed' | tail -n 1)" >&2
  exit 4
fi
reload || { mv -f -- "$prev" "$f"; reload; echo "nginx did not reload with the repointed upstream $f, put back as it was" >&2; exit 4; }
rm -f -- "$prev"
"#;

/// The one server of an upstream block: its host and port (`10.0.0.5`, `3306`).
pub fn upstream_server(text: &str) -> Result<(String, String), String> {
    let servers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("server"))
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .collect();
    let [rest] = servers.as_slice() else {
        return Err(format!(
            "the database proxy's upstream has {} servers; a primary's proxy has one",
            servers.len()
        ));
    };
    let address = rest
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .next()
        .unwrap_or_default();
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "3306"));
    if host.is_empty() {
        return Err("the database proxy's upstream names no server".into());
    }
    Ok((host.to_string(), port.to_string()))
}

/// The upstream block with its one server moved to `host` (same port and options).
pub fn repointed(text: &str, host: &str) -> Result<String, String> {
    let (old, port) = upstream_server(text)?;
    if host.contains([';', '{', '}', '\n', ' ', '\t']) || host.is_empty() {
        return Err(format!("`{host}` cannot be an nginx server address"));
    }
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("server")
            && rest.starts_with(char::is_whitespace)
        {
            let indent = &line[..line.len() - t.len()];
            let tail = rest.trim_start();
            let tail = tail
                .strip_prefix(&format!("{old}:{port}"))
                .unwrap_or(tail.strip_prefix(old.as_str()).unwrap_or(tail));
            out.push_str(&format!("{indent}server {host}:{port}{tail}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Reads the upstream file of upstream `name` on the balancer.
pub async fn read_upstream(lb: &Host, name: &str) -> Result<String, StepError> {
    let out = lb
        .step(
            "read the proxy",
            "cat",
            format!("cat -- {}", quote(&upstream_file(name))),
            crate::transport::Input::None,
            Duration::from_secs(30),
        )
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Points upstream `name` at `host` (the port kept): `Ok(false)` when it already does.
pub async fn repoint(lb: &Host, name: &str, host: &str) -> Result<bool, StepError> {
    let text = read_upstream(lb, name).await?;
    let fail = |m: String| {
        StepError::remote(
            lb.name(),
            "repoint the proxy",
            crate::transport::Failure::message(m, upstream_file(name)),
        )
    };
    let (now, _) = upstream_server(&text).map_err(fail)?;
    if now == host {
        return Ok(false);
    }
    let new = repointed(&text, host).map_err(fail)?;
    lb.step(
        "repoint the proxy",
        "nginx -t and reload",
        format!("f={}\n{RELOAD}{REPOINT}", quote(&upstream_file(name))),
        crate::transport::Input::Bytes(new.as_bytes()),
        Duration::from_secs(60),
    )
    .await?;
    Ok(true)
}

/// The proxy's upstream file for upstream `name`, as `nginx_upstream` writes it.
pub fn upstream_file(name: &str) -> String {
    format!("/etc/nginx/stream.d/upstream-{name}.conf")
}

/// Stops writes through the proxy on `lb` (upstream `name`) until the returned hold is
/// released.
pub async fn stop_writes(lb: &Host, name: &str) -> Result<Held, StepError> {
    let script = format!("f={}\n{RELOAD}{STOP}", quote(&upstream_file(name)));
    let (held, _) = lb
        .hold(
            "stop writes",
            RemoteCommand::new(script),
            b"",
            1,
            Duration::from_secs(60),
        )
        .await?;
    Ok(held)
}

/// Leaves writes stopped after a failure: the held command keeps the `down` upstream.
pub async fn keep_stopped(held: Held) -> Result<(), StepError> {
    held.release_with(b"keep\n").await
}

/// Ends the sessions that came through the proxy (from `address`) on the primary: a reload
/// leaves open connections on their backend.
pub async fn kill_sessions_from(db: &Db, address: &str) -> Result<u64, StepError> {
    let ids: Vec<String> = db
        .one(
            "find the proxy's sessions",
            &format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE HOST LIKE CONCAT({}, ':%') AND ID <> CONNECTION_ID()",
                text(address)
            ),
        )
        .await?
        .rows
        .iter()
        .filter_map(|r| r.first().cloned().flatten())
        .filter(|id| id.chars().all(|c| c.is_ascii_digit()))
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    // One block per session that ignores a session gone by itself meanwhile (error 1094).
    let mut k = Script::new();
    for id in &ids {
        k.statement(&format!(
            "BEGIN NOT ATOMIC DECLARE CONTINUE HANDLER FOR 1094 BEGIN END; KILL CONNECTION {id}; END"
        ));
    }
    db.session("end the proxy's sessions", &k, Some(Duration::from_secs(60)))
        .await
        .map_err(|e| e.error)?;
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str =
        "# Managed by tend (nginx_upstream shop_db).\nupstream shop_db {\n    server 10.77.0.18:3306 max_fails=2;\n}\n";

    #[test]
    fn the_one_server_is_read_and_moved_with_its_port_and_options() {
        assert_eq!(
            upstream_server(BLOCK),
            Ok(("10.77.0.18".to_string(), "3306".to_string()))
        );
        let moved = repointed(BLOCK, "10.77.0.19").unwrap();
        assert_eq!(
            moved,
            "# Managed by tend (nginx_upstream shop_db).\nupstream shop_db {\n    server 10.77.0.19:3306 max_fails=2;\n}\n"
        );
        assert_eq!(upstream_server(&moved).unwrap().0, "10.77.0.19");
    }

    #[test]
    fn an_upstream_of_several_servers_or_a_bad_address_is_refused() {
        let two = "upstream x {\n  server a:3306;\n  server b:3306;\n}\n";
        assert!(upstream_server(two).unwrap_err().contains("2 servers"));
        assert!(repointed(BLOCK, "a;b").is_err());
        assert!(repointed(BLOCK, "").is_err());
    }
}
