//! `systemd` / `systemd_service`: `service` plus what only systemd has (`daemon_reload`,
//! `daemon_reexec`, `masked`, `scope`, `no_block`, `force`). Starting, stopping and enabling go
//! through `service`'s script, so on a SysV host `name`/`state`/`enabled` still work; the
//! systemd-only steps fail there, naming the host.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::{Value as Json, json};

/// `systemd` and its newer name `systemd_service`: roles written for systemd hosts use it for
/// plain starts and enables as often as for unit reloads.
pub struct Systemd(pub &'static str);

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).aliases(&["service", "unit"]),
    Param::new("state", Kind::Str).choices(&["started", "stopped", "restarted", "reloaded"]),
    Param::new("enabled", Kind::Bool),
    Param::new("masked", Kind::Bool),
    Param::new("daemon_reload", Kind::Bool).aliases(&["daemon-reload"]),
    Param::new("daemon_reexec", Kind::Bool).aliases(&["daemon-reexec"]),
    Param::new("scope", Kind::Str).choices(&["system", "user", "global"]),
    Param::new("no_block", Kind::Bool),
    Param::new("force", Kind::Bool),
];

/// The systemd-only steps, before any start or enable (Ansible's order: reexec, reload, mask).
const SCRIPT: &str = r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
if ! { [ -d "$systemd_dir" ] && command -v systemctl >/dev/null 2>&1; }; then say nosystemd; exit 0; fi
step() {
  printf '@@tend run'; printf ' %s' "$@"; echo
  "$@" </dev/null; rc=$?
  if [ "$rc" != 0 ]; then say "fail $rc"; exit "$rc"; fi
}
if [ "$reexec" = 1 ]; then say "done daemon-reexec"; [ "$check" = 1 ] || step systemctl $sc_flags daemon-reexec; fi
if [ "$reload" = 1 ]; then say "done daemon-reload"; [ "$check" = 1 ] || step systemctl $sc_flags daemon-reload; fi
if [ -n "$masked" ]; then
  cur=$(systemctl $sc_flags is-enabled "$name" 2>/dev/null)
  say "unitfile ${cur:-unknown}"
  if [ "$masked" = 1 ] && [ "$cur" != masked ] && [ "$cur" != masked-runtime ]; then
    say "change mask"; [ "$check" = 1 ] || step systemctl $sc_flags mask "$name"
  elif [ "$masked" = 0 ] && { [ "$cur" = masked ] || [ "$cur" = masked-runtime ]; }; then
    say "change unmask"; [ "$check" = 1 ] || step systemctl $sc_flags unmask "$name"
  fi
fi
"#;

/// Where systemd keeps its runtime state when it is the init (as `service` checks).
const SYSTEMD_DIR: &str = "/run/systemd/system";

/// The `systemctl` options these arguments ask for: a fixed set of words, never user text.
fn sc_flags(args: &Args) -> String {
    let mut flags = Vec::new();
    match args.str("scope") {
        Some("user") => flags.push("--user"),
        Some("global") => flags.push("--global"),
        _ => {}
    }
    if args.bool("no_block", false) {
        flags.push("--no-block");
    }
    if args.bool("force", false) {
        flags.push("--force");
    }
    flags.join(" ")
}

fn pre_script(args: &Args, unit: &str, check: bool, systemd_dir: &str) -> String {
    let flag = |k: &str| if args.bool(k, false) { "1" } else { "0" };
    let masked = match args.get("masked").and_then(Json::as_bool) {
        Some(true) => "1",
        Some(false) => "0",
        None => "",
    };
    format!(
        "name={} check={} reexec={} reload={} masked={masked} systemd_dir={} sc_flags={}\n{SCRIPT}",
        quote(unit),
        if check { 1 } else { 0 },
        flag("daemon_reexec"),
        flag("daemon_reload"),
        quote(systemd_dir),
        quote(&sc_flags(args)),
    )
}

/// What the systemd-only steps did, read from their marked lines.
#[derive(Debug, Default, PartialEq)]
struct Pre {
    no_systemd: bool,
    unit_file: Option<String>,
    changes: Vec<String>,
    done: Vec<String>,
    ran: Option<String>,
    failed: Option<i32>,
}

impl Pre {
    fn parse(marks: &[String]) -> Self {
        let mut p = Pre::default();
        for m in marks {
            let (word, rest) = m.split_once(' ').unwrap_or((m.as_str(), ""));
            match word {
                "nosystemd" => p.no_systemd = true,
                "unitfile" => p.unit_file = Some(rest.to_string()),
                "change" => p.changes.push(rest.to_string()),
                "done" => p.done.push(rest.to_string()),
                "run" => p.ran = Some(rest.to_string()),
                "fail" => p.failed = Some(rest.parse().unwrap_or(1)),
                _ => {}
            }
        }
        p
    }
}

impl Module for Systemd {
    fn name(&self) -> &'static str {
        self.0
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let module = self.0;
            let name = args.str("name").unwrap_or_default();
            let state = args.str("state");
            let enabled = args.get("enabled").and_then(Json::as_bool);
            let masked = args.get("masked").and_then(Json::as_bool);
            let reload = args.bool("daemon_reload", false);
            let reexec = args.bool("daemon_reexec", false);
            if state.is_none() && enabled.is_none() && masked.is_none() && !reload && !reexec {
                return Err(ModuleError::Args(format!(
                    "`{module}` needs one of `state`, `enabled`, `masked`, `daemon_reload`, `daemon_reexec`"
                )));
            }
            if name.is_empty() && (state.is_some() || enabled.is_some() || masked.is_some()) {
                return Err(ModuleError::Args(format!(
                    "`{module}` needs `name` with `state`, `enabled` or `masked`"
                )));
            }
            if name.contains('/') {
                return Err(ModuleError::Args(format!(
                    "`{module}` name `{name}` is not a unit name"
                )));
            }
            let scoped = matches!(args.str("scope"), Some("user" | "global"));
            let mut r = ModuleResult::default();
            let mut pre = Pre::default();
            if reload || reexec || masked.is_some() || scoped {
                let out = ctx.run(&pre_script(args, name, ctx.check, SYSTEMD_DIR), None).await?;
                let (marks, plain) = split_marked(&out);
                pre = Pre::parse(&marks);
                if pre.no_systemd {
                    let mut wanted: Vec<&str> = Vec::new();
                    if reload {
                        wanted.push("daemon_reload");
                    }
                    if reexec {
                        wanted.push("daemon_reexec");
                    }
                    if masked.is_some() {
                        wanted.push("masked");
                    }
                    if scoped {
                        wanted.push("scope");
                    }
                    return Err(ModuleError::Failed(format!(
                        "{module}: `{}` needs systemd, which is not the init system on {} (no {SYSTEMD_DIR}); \
                         `name`, `state` and `enabled` alone work there through its init scripts",
                        wanted.join("`, `"),
                        ctx.host
                    )));
                }
                if let Some(rc) = pre.failed.or(if out.success() { None } else { out.rc.or(Some(1)) }) {
                    let cmd = pre.ran.clone().unwrap_or_else(|| format!("systemctl ({module})"));
                    return Err(ModuleError::remote(
                        format!(
                            "{module}: `{cmd}` failed on {} with rc {rc}: {}",
                            ctx.host,
                            last_line(&plain)
                        ),
                        cmd,
                        &plain,
                    ));
                }
                r.changed = !pre.changes.is_empty();
            }
            let mut msgs: Vec<String> = pre
                .done
                .iter()
                .chain(pre.changes.iter())
                .map(|c| {
                    let verb = if c.starts_with("daemon") {
                        c.clone()
                    } else {
                        format!("{c}ed")
                    };
                    if ctx.check { format!("would {c}") } else { verb }
                })
                .collect();
            let mut active = None;
            let mut unit_enabled = None;
            if state.is_some() || enabled.is_some() {
                // `service`'s script on the unit's plain name (an init script has no `.service`).
                let mut inner = args.clone();
                let plain_name = name.strip_suffix(".service").unwrap_or(name);
                inner.0.insert("name".into(), plain_name.into());
                let s = super::service::manage(ctx, &inner, &sc_flags(args)).await?;
                r.changed |= s.changed;
                active = s.data.get("state").map(|v| v == "started");
                unit_enabled = s.data.get("enabled").and_then(Json::as_bool);
                if let Some(m) = &s.msg {
                    msgs.push(m.clone());
                }
                r.diff = s.diff;
                r.stdout = s.stdout;
                r.stderr = s.stderr;
                if let Some(mgr) = s.data.get("manager") {
                    r.data.insert("manager".into(), mgr.clone());
                }
            }
            if !name.is_empty() {
                r.data.insert("name".into(), name.into());
                let mut status = serde_json::Map::new();
                let unit = if name.contains('.') {
                    name.to_string()
                } else {
                    format!("{name}.service")
                };
                status.insert("Id".into(), unit.into());
                if let Some(a) = active {
                    r.data
                        .insert("state".into(), if a { "started" } else { "stopped" }.into());
                    status.insert("ActiveState".into(), if a { "active" } else { "inactive" }.into());
                    status.insert("SubState".into(), if a { "running" } else { "dead" }.into());
                }
                if let Some(e) = unit_enabled {
                    r.data.insert("enabled".into(), e.into());
                }
                let masked_after = match (masked, ctx.check) {
                    (Some(m), false) => Some(m),
                    _ => pre.unit_file.as_deref().map(|u| u.starts_with("masked")),
                };
                let unit_file = match (masked_after, unit_enabled) {
                    (Some(true), _) => Some("masked"),
                    (_, Some(true)) => Some("enabled"),
                    (_, Some(false)) => Some("disabled"),
                    _ => None,
                };
                if let Some(u) = unit_file {
                    status.insert("UnitFileState".into(), u.into());
                }
                r.data.insert("status".into(), Json::Object(status));
                if ctx.diff && !pre.changes.is_empty() {
                    let was = pre.unit_file.clone().unwrap_or_default();
                    r.diff.push(Diff {
                        path: name.to_string(),
                        before: format!("masked: {}\n", was.starts_with("masked")),
                        after: format!("masked: {}\n", masked.unwrap_or(false)),
                    });
                }
            }
            if msgs.is_empty() {
                msgs.push("nothing to do".into());
            }
            r.msg = Some(msgs.join("; "));
            r.data.insert("changed".into(), json!(r.changed));
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The systemd-only steps against a fake `systemctl` on this machine (no lab host has
    /// systemd): check mode only reports, mask/unmask are idempotent, a failure names its
    /// command.
    #[test]
    fn mask_and_reload_against_a_fake_systemctl() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let path = crate::modules::fake_host::fake_systemd(
            d,
            r#"case "$*" in
  *daemon-reload*) [ -e "$T/broken" ] && { echo "Failed to reload daemon" >&2; exit 1; } ;;
  *is-enabled*) if [ -e "$T/masked-$u" ]; then echo masked; exit 1; else echo enabled; fi ;;
  *unmask*) rm -f "$T/masked-$u" ;;
  *mask*) touch "$T/masked-$u" ;;
esac
exit 0
"#,
        );
        let run = |v: serde_json::Value, check: bool, systemd_dir: &str| {
            let args = super::super::coerce("systemd", PARAMS, v.as_object().unwrap()).unwrap();
            let text = pre_script(&args, args.str("name").unwrap_or(""), check, systemd_dir);
            let out = crate::modules::fake_host::run_sh(&text, &path, d);
            let (marks, plain) = split_marked(&out);
            (Pre::parse(&marks), plain)
        };
        let calls = || std::fs::read_to_string(d.join("calls")).unwrap_or_default();
        let sd = d.join("systemd");
        let sd = sd.to_str().unwrap();
        let mask = serde_json::json!({"name": "web", "masked": true, "daemon_reload": true, "no_block": true});

        let (p, _) = run(mask.clone(), true, sd);
        assert_eq!(p.changes, ["mask"]);
        assert_eq!(p.unit_file.as_deref(), Some("enabled"));
        assert!(
            !calls().contains("mask web") && !calls().contains("daemon-reload"),
            "{}",
            calls()
        );

        let (p, out) = run(mask.clone(), false, sd);
        assert_eq!(
            (p.changes.clone(), p.failed, out.rc),
            (vec!["mask".to_string()], None, Some(0))
        );
        assert!(calls().contains("--no-block daemon-reload\n"), "{}", calls());
        assert!(d.join("masked-web").exists());
        let (p, _) = run(mask, false, sd);
        assert!(p.changes.is_empty(), "{p:?}");
        assert_eq!(p.unit_file.as_deref(), Some("masked"));

        let (p, _) = run(serde_json::json!({"name": "web", "masked": false}), false, sd);
        assert_eq!(p.changes, ["unmask"]);
        assert!(!d.join("masked-web").exists());

        std::fs::write(d.join("broken"), "").unwrap();
        let (p, out) = run(serde_json::json!({"daemon_reload": true}), false, sd);
        assert_eq!(p.failed, Some(1));
        assert_eq!(p.ran.as_deref(), Some("systemctl daemon-reload"));
        assert_eq!(last_line(&out), "Failed to reload daemon");

        let (p, _) = run(serde_json::json!({"daemon_reload": true}), false, "/nonexistent");
        assert!(p.no_systemd);
    }

    #[test]
    fn flags_come_from_a_fixed_set() {
        let args = super::super::coerce(
            "systemd",
            PARAMS,
            serde_json::json!({"name": "x", "scope": "user", "no_block": true, "force": true})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(sc_flags(&args), "--user --no-block --force");
    }
}
