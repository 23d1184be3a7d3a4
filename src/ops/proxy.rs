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

/// Holds the upstream's servers `down` until its stdin ends, then puts the file back.
const STOP: &str = r#"set -u
trap '' HUP PIPE
keep="$f.tend-writes-stopped"
# reload: until the master has started workers on the new file, the old ones still accept
# connections on the old one: waits (up to 10 s) for a new worker.
workers() { m=$(cat /run/nginx.pid 2>/dev/null) && [ -n "$m" ] && pgrep -P "$m" 2>/dev/null | tr '\n' ' '; }
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

/// The proxy's upstream file for upstream `name`, as `nginx_upstream` writes it.
pub fn upstream_file(name: &str) -> String {
    format!("/etc/nginx/stream.d/upstream-{name}.conf")
}

/// Stops writes through the proxy on `lb` (upstream `name`) until the returned hold is
/// released.
pub async fn stop_writes(lb: &Host, name: &str) -> Result<Held, StepError> {
    let script = format!("f={}\n{STOP}", quote(&upstream_file(name)));
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
