//! `wait_for`: waits on the host, in one script loop, for a port to open, close or drain, or a
//! file to appear (optionally with content matching a regex) or disappear. Ports are tried
//! with bash's `/dev/tcp`, or `nc` where bash is missing. Changes nothing, so it also runs in
//! check mode.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::shell::quote;

/// `wait_for`.
pub struct WaitFor;

const PARAMS: &[Param] = &[
    Param::new("host", Kind::Str),
    Param::new("port", Kind::Int),
    Param::new("path", Kind::Str),
    Param::new("search_regex", Kind::Str),
    Param::new("state", Kind::Str).choices(&["started", "stopped", "present", "absent", "drained"]),
    Param::new("delay", Kind::Int),
    Param::new("timeout", Kind::Int),
    Param::new("sleep", Kind::Int),
    Param::new("connect_timeout", Kind::Int),
    Param::new("msg", Kind::Str),
];

const SCRIPT: &str = r#"start=$(date +%s)
[ "$delay" -gt 0 ] && sleep "$delay"
end=$((start + limit))
limited() { if command -v timeout >/dev/null 2>&1; then timeout "$ct" "$@"; else "$@"; fi; }
port_open() {
  if command -v bash >/dev/null 2>&1; then
    limited bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
  elif command -v nc >/dev/null 2>&1; then
    nc -z -w "$ct" "$host" "$port" 2>/dev/null
  else
    echo "neither bash nor nc is available on the host to test ports" >&2; exit 3
  fi
}
port_match() {
  if command -v bash >/dev/null 2>&1; then
    limited bash -c 'exec 3<>"/dev/tcp/$1/$2"; cat <&3' _ "$host" "$port" 2>/dev/null | grep -Eq -- "$regex"
  else
    limited nc -w "$ct" "$host" "$port" 2>/dev/null </dev/null | grep -Eq -- "$regex"
  fi
}
path_ok() { [ -e "$path" ] && { [ -z "$regex" ] || grep -Eq -- "$regex" "$path" 2>/dev/null; }; }
active() {
  p=$(printf '%04X' "$port")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p="$p" '{ n = split($2, a, ":"); if (a[n] == p && $4 ~ /^0[1-6]$/) c++ } END { print c + 0 }'
}
done_yet() { CHECK; }
while :; do
  if done_yet; then echo "ok $(($(date +%s) - start))"; exit 0; fi
  now=$(date +%s)
  if [ "$now" -ge "$end" ]; then echo "timeout $((now - start))"; exit 0; fi
  sleep "$pause"
done
"#;

impl Module for WaitFor {
    fn name(&self) -> &'static str {
        "wait_for"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let host = args.str("host").unwrap_or("127.0.0.1");
            let port = args.int("port");
            let path = args.str("path");
            let regex = args.str("search_regex");
            let state = args.str("state").unwrap_or("started");
            let timeout = args.int("timeout").unwrap_or(300).max(0);
            if port.is_some() && path.is_some() {
                return Err(ModuleError::Args("parameters are mutually exclusive: port|path".into()));
            }
            if state == "drained" && port.is_none() {
                return Err(ModuleError::Args(
                    "state=drained should only be used for checking a port".into(),
                ));
            }
            if path.is_some() && state == "drained" {
                return Err(ModuleError::Args(
                    "state=drained should only be used for checking a port".into(),
                ));
            }
            if regex.is_some() && matches!(state, "stopped" | "absent") {
                return Err(ModuleError::Args(
                    "state=stopped or absent cannot be combined with search_regex".into(),
                ));
            }
            let gone = matches!(state, "stopped" | "absent");
            let (check, default_msg) = match (port, path) {
                (Some(p), None) if state == "drained" => (
                    "[ \"$(active)\" = 0 ]",
                    format!("Timeout when waiting for {host}:{p} to drain"),
                ),
                (Some(p), None) if gone => ("! port_open", format!("Timeout when waiting for {host}:{p} to stop.")),
                (Some(p), None) => match regex {
                    Some(re) => (
                        "port_match",
                        format!("Timeout when waiting for search string {re} in {host}:{p}"),
                    ),
                    None => ("port_open", format!("Timeout when waiting for {host}:{p}")),
                },
                (None, Some(f)) if gone => (
                    "[ ! -e \"$path\" ]",
                    format!("Timeout when waiting for {f} to be absent."),
                ),
                (None, Some(f)) => match regex {
                    Some(re) => ("path_ok", format!("Timeout when waiting for search string {re} in {f}")),
                    None => ("path_ok", format!("Timeout when waiting for file {f}")),
                },
                // Neither port nor path: Ansible just sleeps for `timeout`.
                _ => ("false", String::new()),
            };
            let script = format!(
                "host={} port={} path={} regex={} delay={} limit={} pause={} ct={}\n{}",
                quote(host),
                port.unwrap_or(0),
                quote(path.unwrap_or("")),
                quote(regex.unwrap_or("")),
                args.int("delay").unwrap_or(0).max(0),
                timeout,
                args.int("sleep").unwrap_or(1).max(1),
                args.int("connect_timeout").unwrap_or(5).max(1),
                SCRIPT.replace("CHECK", check),
            );
            let out = ctx.run(&script, None).await?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let outcome = stdout
                .lines()
                .rev()
                .find_map(|l| l.split_once(' '))
                .filter(|_| out.success());
            let Some((word, secs)) = outcome else {
                return Err(ModuleError::remote(
                    crate::modules::last_error_line(&out, "wait_for failed"),
                    "wait_for",
                    &out,
                ));
            };
            let elapsed = secs.trim().parse::<i64>().unwrap_or(0);
            let mut r = ModuleResult::default();
            r.data.insert("elapsed".into(), elapsed.into());
            r.data.insert("state".into(), state.into());
            if let Some(p) = port {
                r.data.insert("port".into(), p.into());
            }
            if let Some(p) = path {
                r.data.insert("path".into(), p.into());
            }
            if let Some(re) = regex {
                r.data.insert("search_regex".into(), re.into());
            }
            if word == "timeout" && check != "false" {
                r.failed = true;
                r.msg = Some(format!(
                    "{} (elapsed {elapsed}s)",
                    args.str("msg").unwrap_or(&default_msg)
                ));
            }
            Ok(r)
        })
    }
}
