//! `service`: start, stop, restart, reload and enable services under systemd, SysV init scripts,
//! or (a tend extension) an explicit `start_command`/`stop_command`/`status_command` triple for
//! daemons with neither. One remote script finds the manager, probes, acts and checks the result.
//!
//! Commands run with stdin, stdout and stderr on files, so a daemon they leave behind never holds
//! the session open; the script itself travels on stdin ([`Ctx::run`]), so a
//! `pgrep -f PATTERN` status command cannot match the shell that runs it. A `start_command` must
//! return once the daemon runs (end it with `&`, or use a command that daemonizes, such as
//! `catalina.sh start`); it needs no `nohup` or redirections.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `service`: keeps daemons running or stopped and enabled at boot, whatever the host uses
/// to manage them, because the lab and real fleets differ (SysV, systemd, bare daemons).
pub struct Service;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required().aliases(&["service"]),
    Param::new("state", Kind::Str).choices(&["started", "stopped", "restarted", "reloaded"]),
    Param::new("enabled", Kind::Bool),
    Param::new("pattern", Kind::Str),
    Param::new("start_command", Kind::Str),
    Param::new("stop_command", Kind::Str),
    Param::new("status_command", Kind::Str),
    Param::new("reload_command", Kind::Str),
];

/// How long (seconds) a started or stopped service may take to show it in its status.
const SETTLE_SECONDS: u32 = 5;

/// Exists when systemd is the running init (what `sd_booted()` checks).
const SYSTEMD_DIR: &str = "/run/systemd/system";

/// The remote script for these arguments.
/// `sc_flags` are extra `systemctl` options from a fixed set (`--user`, `--no-block`, ...), never
/// user text: they are expanded unquoted.
fn script(args: &Args, check: bool, systemd_dir: &str, sc_flags: &str) -> String {
    let cmd = |k: &str| args.str(k).unwrap_or("");
    let enabled = match args.get("enabled").and_then(|v| v.as_bool()) {
        Some(true) => "1",
        Some(false) => "0",
        None => "",
    };
    format!(
        "name={} state={} enabled={enabled} check={} settle_s={SETTLE_SECONDS} systemd_dir={} sc_flags={}\n\
         pattern={}\nstart_cmd={}\nstop_cmd={}\nstatus_cmd={}\nreload_cmd={}\n{SCRIPT}",
        quote(cmd("name")),
        quote(cmd("state")),
        if check { 1 } else { 0 },
        quote(systemd_dir),
        quote(sc_flags),
        quote(cmd("pattern")),
        quote(cmd("start_command")),
        quote(cmd("stop_command")),
        quote(cmd("status_command")),
        quote(cmd("reload_command")),
    )
}

const SCRIPT: &str = r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
o=$(mktemp) && e=$(mktemp) || exit 1
trap 'rm -f "$o" "$e"' EXIT
mgr=""
if [ -d "$systemd_dir" ] && command -v systemctl >/dev/null 2>&1; then
  load=$(systemctl $sc_flags show -p LoadState "$name" 2>/dev/null | sed -n 's/^LoadState=//p')
  if [ "$load" = loaded ] || [ "$load" = masked ]; then mgr=systemd; fi
fi
if [ -z "$mgr" ] && [ -f "/etc/init.d/$name" ]; then
  mgr=sysv
  if command -v service >/dev/null 2>&1; then via=service; else via=script; fi
fi
if [ -z "$mgr" ] && [ -n "$start_cmd$stop_cmd$status_cmd" ]; then mgr=commands; fi
if [ -z "$mgr" ]; then say "fail detect 3"; exit 3; fi
say "manager $mgr ${via:-}"
# act VERB: runs the manager's command, output on the files.
act() {
  case $mgr in
    systemd) systemctl $sc_flags "$1" "$name" ;;
    sysv)
      if [ "$via" = service ]; then service "$name" "$1"; else "/etc/init.d/$name" "$1"; fi ;;
    commands)
      case $1 in start) c=$start_cmd ;; stop) c=$stop_cmd ;; reload) c=$reload_cmd ;; esac
      (eval "$c") ;;
  esac </dev/null >"$o" 2>"$e"
}
status() {
  if [ -n "$pattern" ]; then pgrep -f -- "$pattern" >/dev/null 2>&1; return; fi
  case $mgr in
    systemd) systemctl $sc_flags is-active --quiet "$name" ;;
    sysv)
      if [ "$via" = service ]; then service "$name" status; else "/etc/init.d/$name" status; fi \
        </dev/null >/dev/null 2>&1 ;;
    commands) (eval "$status_cmd") </dev/null >/dev/null 2>&1 ;;
  esac
}
# settle 1|0: waits until the status says running (1) or stopped (0).
settle() {
  n=0
  while :; do
    if status; then r=1; else r=0; fi
    [ "$r" = "$1" ] && return 0
    n=$((n + 1)); [ "$n" -ge $((settle_s * 4)) ] && return 1
    sleep 0.25 2>/dev/null || sleep 1
  done
}
fail() {  # stage rc
  cat "$o"; cat "$e" >&2; say "fail $1 $2"; [ "$2" = 0 ] && exit 1; exit "$2"
}
if [ "$mgr" = commands ] && [ -z "$status_cmd$pattern" ]; then say "fail nostatus 2"; exit 2; fi
if status; then running=1; else running=0; fi
say "running $running"
todo=""
case $state in
  started) [ "$running" = 1 ] || todo=start ;;
  stopped) [ "$running" = 0 ] || todo=stop ;;
  restarted) todo=restart ;;
  reloaded) if [ "$running" = 1 ]; then todo=reload; else todo=start; fi ;;
esac
if [ "$mgr" = commands ]; then
  case $todo in
    start) [ -n "$start_cmd" ] || { say "fail need start_command 2"; exit 2; } ;;
    stop) [ -n "$stop_cmd" ] || { say "fail need stop_command 2"; exit 2; } ;;
    restart) [ -n "$start_cmd" ] && [ -n "$stop_cmd" ] || { say "fail need start_command+stop_command 2"; exit 2; } ;;
    reload) [ -n "$reload_cmd" ] || { say "fail need reload_command 2"; exit 2; } ;;
  esac
fi
[ -z "$todo" ] || say "change $todo"
entodo=""
if [ -n "$enabled" ]; then
  case $mgr in
    systemd) if systemctl $sc_flags is-enabled --quiet "$name" 2>/dev/null; then en=1; else en=0; fi ;;
    sysv)
      en=0
      for f in /etc/rc[2345].d/S[0-9][0-9]"$name"; do [ -e "$f" ] && en=1; done ;;
    commands) say "fail enabled 2"; exit 2 ;;
  esac
  say "enabled $en"
  if [ "$en" != "$enabled" ]; then
    if [ "$enabled" = 1 ]; then entodo=enable; else entodo=disable; fi
    say "change $entodo"
  fi
fi
[ "$check" = 1 ] && exit 0
case $todo in
  start)
    act start || fail start $?
    settle 1 || { status; fail notrunning $?; } ;;
  stop)
    act stop || fail stop $?
    settle 0 || fail stillrunning 1 ;;
  restart)
    if [ "$mgr" = commands ]; then
      if [ "$running" = 1 ]; then act stop || fail stop $?; settle 0 || fail stillrunning 1; fi
      act start || fail start $?
    else
      act restart || fail restart $?
    fi
    settle 1 || { status; fail notrunning $?; } ;;
  reload)
    act reload || fail reload $?
    settle 1 || { status; fail notrunning $?; } ;;
esac
[ -z "$todo" ] || { cat "$o"; cat "$e" >&2; }
case $entodo in
  enable)
    if [ "$mgr" = systemd ]; then systemctl $sc_flags enable "$name"; else update-rc.d "$name" defaults && update-rc.d "$name" enable; fi \
      </dev/null >"$o" 2>"$e" || fail enable $? ;;
  disable)
    if [ "$mgr" = systemd ]; then systemctl $sc_flags disable "$name"; else update-rc.d "$name" disable; fi \
      </dev/null >"$o" 2>"$e" || fail disable $? ;;
esac
say done
"#;

/// What the script reported, read back from its marked lines.
#[derive(Debug, Default, PartialEq)]
struct Report {
    manager: String,
    via_service: bool,
    running: Option<bool>,
    enabled: Option<bool>,
    changes: Vec<String>,
    /// The step that failed and its exit code.
    failed: Option<(String, i32)>,
}

impl Report {
    fn parse(marks: &[String]) -> Self {
        let mut r = Report::default();
        for m in marks {
            let w: Vec<&str> = m.split_whitespace().collect();
            match w.as_slice() {
                ["manager", mgr, rest @ ..] => {
                    r.manager = mgr.to_string();
                    r.via_service = rest.first() == Some(&"service");
                }
                ["running", v] => r.running = Some(*v == "1"),
                ["enabled", v] => r.enabled = Some(*v == "1"),
                ["change", what] => r.changes.push(what.to_string()),
                ["fail", stage @ .., rc] => {
                    r.failed = Some((stage.join(" "), rc.parse().unwrap_or(1)));
                }
                _ => {}
            }
        }
        r
    }
}

impl Module for Service {
    fn name(&self) -> &'static str {
        "service"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(manage(ctx, args, ""))
    }
}

/// Starts/stops/enables `args`' `name` as `service` does; `systemd` shares it, adding
/// `systemctl` options (`sc_flags`, from a fixed set).
pub(super) async fn manage(ctx: &Ctx<'_>, args: &Args, sc_flags: &str) -> Result<ModuleResult, ModuleError> {
    let name = args.str("name").unwrap_or_default();
    let state = args.str("state").unwrap_or("");
    if state.is_empty() && args.get("enabled").is_none() {
        return Err(ModuleError::Args("`service` needs `state` or `enabled`".into()));
    }
    if name.is_empty() || name.contains('/') {
        return Err(ModuleError::Args(format!(
            "`service` name `{name}` is not a service name"
        )));
    }
    let script = script(args, ctx.check, SYSTEMD_DIR, sc_flags);
    let out = ctx.run(&script, None).await?;
    let (marks, plain) = split_marked(&out);
    let report = Report::parse(&marks);
    if let Some((stage, _)) = &report.failed {
        return Err(failure(ctx, args, &report, stage, &plain));
    }
    if !out.success() {
        return Err(ModuleError::remote(
            format!(
                "service {name}: the script failed on {}: {}",
                ctx.host,
                last_line(&plain)
            ),
            format!("service {name}"),
            &plain,
        ));
    }
    let acted = report
        .changes
        .iter()
        .find(|c| matches!(c.as_str(), "start" | "stop" | "restart" | "reload"));
    let mut r = ModuleResult::changed(!report.changes.is_empty());
    let would = if ctx.check { "would " } else { "" };
    let mut parts: Vec<String> = report
        .changes
        .iter()
        .map(|c| format!("{would}{}", if ctx.check { c.clone() } else { past(c) }))
        .collect();
    if parts.is_empty() {
        parts.push(match report.running {
            Some(true) => "running".into(),
            _ => "stopped".into(),
        });
        if let Some(en) = report.enabled {
            parts.push(if en { "enabled" } else { "disabled" }.into());
        }
    }
    r.msg = Some(format!("{name} ({}): {}", report.manager, parts.join(", ")));
    let running_after = match acted.map(String::as_str) {
        Some("stop") => false,
        Some(_) => true,
        None => report.running.unwrap_or(false),
    };
    r.data.insert("name".into(), name.into());
    r.data
        .insert("state".into(), if running_after { "started" } else { "stopped" }.into());
    r.data.insert("manager".into(), report.manager.clone().into());
    if let Some(en) = report.enabled {
        let after = if report.changes.iter().any(|c| c == "enable") {
            true
        } else if report.changes.iter().any(|c| c == "disable") {
            false
        } else {
            en
        };
        r.data.insert("enabled".into(), after.into());
    }
    if !ctx.check && acted.is_some() {
        r.stdout = String::from_utf8_lossy(&plain.stdout).into_owned();
        r.stderr = String::from_utf8_lossy(&plain.stderr).into_owned();
    }
    if ctx.diff && r.changed {
        let word = |b: bool| if b { "started" } else { "stopped" };
        let mut before = format!("state: {}\n", word(report.running.unwrap_or(false)));
        let mut after = format!("state: {}\n", word(running_after));
        if let (Some(en), Some(Json::Bool(want))) = (report.enabled, args.get("enabled")) {
            before.push_str(&format!("enabled: {en}\n"));
            after.push_str(&format!("enabled: {want}\n"));
        }
        r.diff.push(Diff {
            path: name.to_string(),
            before,
            after,
        });
    }
    Ok(r)
}

fn past(verb: &str) -> String {
    match verb {
        "start" => "started",
        "stop" => "stopped",
        "restart" => "restarted",
        "reload" => "reloaded",
        "enable" => "enabled",
        "disable" => "disabled",
        other => other,
    }
    .to_string()
}

/// A failed step as a task failure naming the command, its exit code and output.
fn failure(ctx: &Ctx<'_>, args: &Args, report: &Report, stage: &str, out: &crate::transport::Output) -> ModuleError {
    let name = args.str("name").unwrap_or_default();
    let host = ctx.host;
    let command = |verb: &str| -> String {
        match report.manager.as_str() {
            "systemd" => format!("systemctl {verb} {name}"),
            "sysv" if report.via_service => format!("service {name} {verb}"),
            "sysv" => format!("/etc/init.d/{name} {verb}"),
            _ => args.str(&format!("{verb}_command")).unwrap_or_default().to_string(),
        }
    };
    let status_cmd = || match args.str("pattern") {
        Some(p) => format!("pgrep -f {}", quote(p)),
        None => command("status"),
    };
    let rc = report.failed.as_ref().map_or(1, |f| f.1);
    let reason = last_line(out);
    let with_reason = |s: String| {
        if reason.is_empty() { s } else { format!("{s}: {reason}") }
    };
    let (msg, cmd) = match stage {
        "detect" => (
            format!(
                "service {name}: no way to manage it on {host}: looked for a systemd unit (systemd runs only if /run/systemd/system exists), the SysV script /etc/init.d/{name}, and start_command/stop_command/status_command (none given)"
            ),
            format!("test -f /etc/init.d/{name}"),
        ),
        "nostatus" => (
            format!(
                "service {name} on {host}: explicit commands need `status_command` (or `pattern`) to tell whether it runs"
            ),
            String::new(),
        ),
        "enabled" => (
            format!(
                "service {name} on {host}: `enabled` needs systemd or a SysV script; a service run by explicit commands cannot be enabled"
            ),
            String::new(),
        ),
        s if s.starts_with("need ") => (
            format!(
                "service {name} on {host}: state `{}` needs `{}`",
                args.str("state").unwrap_or_default(),
                &s[5..]
            ),
            String::new(),
        ),
        "notrunning" => {
            let verb = match args.str("state") {
                Some("restarted") => "restart",
                Some("reloaded") if report.running == Some(true) => "reload",
                _ => "start",
            };
            (
                with_reason(format!(
                    "service {name} is not running on {host} {SETTLE_SECONDS} s after `{}` succeeded (status: `{}`)",
                    command(verb),
                    status_cmd()
                )),
                command(verb),
            )
        }
        "stillrunning" => (
            format!(
                "service {name} is still running on {host} {SETTLE_SECONDS} s after `{}` succeeded (status: `{}`)",
                command("stop"),
                status_cmd()
            ),
            command("stop"),
        ),
        "enable" | "disable" => {
            let cmd = match (report.manager.as_str(), stage) {
                ("systemd", v) => format!("systemctl {v} {name}"),
                (_, "enable") => {
                    format!("update-rc.d {name} defaults && update-rc.d {name} enable")
                }
                _ => format!("update-rc.d {name} disable"),
            };
            (
                with_reason(format!("service {name}: could not {stage} it on {host}")),
                cmd,
            )
        }
        verb => {
            let what = match report.manager.as_str() {
                "commands" => format!("{verb}_command"),
                _ => format!("`{}`", command(verb)),
            };
            (
                with_reason(format!("service {name}: {what} failed on {host} with rc {rc}")),
                command(verb),
            )
        }
    };
    ModuleError::remote(msg, cmd, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_are_read_back() {
        let marks: Vec<String> = [
            "manager sysv service",
            "running 0",
            "change start",
            "enabled 1",
            "fail need start_command+stop_command 2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = Report::parse(&marks);
        assert_eq!(r.manager, "sysv");
        assert!(r.via_service);
        assert_eq!(r.running, Some(false));
        assert_eq!(r.enabled, Some(true));
        assert_eq!(r.changes, ["start"]);
        assert_eq!(r.failed, Some(("need start_command+stop_command".into(), 2)));
        let r = Report::parse(&["manager commands ".to_string(), "fail start 7".to_string()]);
        assert_eq!(r.manager, "commands");
        assert!(!r.via_service);
        assert_eq!(r.failed, Some(("start".into(), 7)));
    }

    /// Runs the script on this machine, as the host would, with a fake `systemctl` that keeps
    /// unit states in files: the systemd branch, which no lab host has.
    #[test]
    fn systemd_branch_against_a_fake_systemctl() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let path = crate::modules::fake_host::fake_systemd(
            d,
            r#"case "$1" in
  show) echo LoadState=loaded ;;
  is-active) [ -e "$T/active-$u" ] ;;
  is-enabled) [ -e "$T/enabled-$u" ] ;;
  start|restart|reload)
    if [ "$u" = bad ]; then echo "Job for bad.service failed." >&2; exit 1; fi
    touch "$T/active-$u" ;;
  stop) rm -f "$T/active-$u" ;;
  enable) touch "$T/enabled-$u" ;;
  disable) rm -f "$T/enabled-$u" ;;
esac
"#,
        );
        let run = |v: serde_json::Value, check: bool| {
            let args = super::super::coerce("service", PARAMS, v.as_object().unwrap()).unwrap();
            let text = script(&args, check, d.join("systemd").to_str().unwrap(), "");
            let out = crate::modules::fake_host::run_sh(&text, &path, d);
            let (marks, plain) = split_marked(&out);
            (Report::parse(&marks), plain)
        };
        let calls = || std::fs::read_to_string(d.join("calls")).unwrap_or_default();
        let want = serde_json::json!({"name": "web", "state": "started", "enabled": true});

        let (r, _) = run(want.clone(), true);
        assert_eq!(r.manager, "systemd");
        assert_eq!(r.running, Some(false));
        assert_eq!(r.enabled, Some(false));
        assert_eq!(r.changes, ["start", "enable"]);
        assert!(!calls().contains("start web") && !calls().contains("enable web"));

        let (r, out) = run(want.clone(), false);
        assert_eq!(r.changes, ["start", "enable"]);
        assert_eq!(out.rc, Some(0), "{out:?}");
        assert!(calls().contains("\nstart web\n") && calls().contains("\nenable web\n"));
        let (r, _) = run(want, false);
        assert!(r.changes.is_empty(), "{r:?}");
        assert_eq!((r.running, r.enabled), (Some(true), Some(true)));

        let (r, _) = run(serde_json::json!({"name": "web", "state": "reloaded"}), false);
        assert_eq!(r.changes, ["reload"]);
        let (r, _) = run(
            serde_json::json!({"name": "web", "state": "stopped", "enabled": false}),
            false,
        );
        assert_eq!(r.changes, ["stop", "disable"]);
        assert!(!d.join("active-web").exists() && !d.join("enabled-web").exists());

        let (r, out) = run(serde_json::json!({"name": "bad", "state": "started"}), false);
        assert_eq!(r.failed, Some(("start".into(), 1)));
        assert_eq!(last_line(&out), "Job for bad.service failed.");
    }
}
