//! `seboolean` (ansible.posix): an SELinux boolean on or off with `setsebool` (`-P` to keep it
//! over reboots). Fails, naming the host, where SELinux is not available or not running.

use super::selinux::DETECT;
use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;

/// `seboolean`: services on SELinux hosts need booleans (`httpd_can_network_connect` for an
/// nginx proxy) before they work.
pub struct Seboolean;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("state", Kind::Bool).required(),
    Param::new("persistent", Kind::Bool),
    Param::new("ignore_selinux_state", Kind::Bool),
];

const SCRIPT: &str = r#"set -u
export LC_ALL=C
if [ "$ignore" != 1 ] && ! { command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; }; then say notrunning; exit 0; fi
cur=$(getsebool "$name" 2>&1) || { echo "$cur" >&2; say "fail getsebool"; exit 1; }
case $cur in *"--> on") cur=on ;; *"--> off") cur=off ;; *) echo "$cur" >&2; say "fail getsebool"; exit 1 ;; esac
say "current $cur"
[ "$cur" = "$want" ] && exit 0
say change
[ "$check" = 1 ] && exit 0
if [ "$persistent" = 1 ]; then setsebool -P "$name" "$want"; else setsebool "$name" "$want"; fi </dev/null || { say "fail setsebool"; exit 1; }
"#;

fn script(args: &Args, check: bool) -> String {
    let flag = |k: &str| if args.bool(k, false) { 1 } else { 0 };
    format!(
        "name={} want={} persistent={} ignore={} check={}\n{DETECT}{SCRIPT}",
        quote(args.str("name").unwrap_or_default()),
        if args.bool("state", false) { "on" } else { "off" },
        flag("persistent"),
        flag("ignore_selinux_state"),
        if check { 1 } else { 0 }
    )
}

impl Module for Seboolean {
    fn name(&self) -> &'static str {
        "seboolean"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let name = args.str("name").unwrap_or_default();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ModuleError::Args(format!(
                    "seboolean: `{name}` is not an SELinux boolean name"
                )));
            }
            let out = ctx.run(&script(args, ctx.check), None).await?;
            let (marks, plain) = split_marked(&out);
            let has = |m: &str| marks.iter().any(|x| x == m);
            if has("absent") {
                return Err(ModuleError::Failed(format!(
                    "seboolean {name}: SELinux is not available on {} (no getenforce or SELinux config)",
                    ctx.host
                )));
            }
            if has("notrunning") {
                return Err(ModuleError::Failed(format!(
                    "seboolean {name}: SELinux is disabled on {} (set ignore_selinux_state to change the boolean anyway)",
                    ctx.host
                )));
            }
            if let Some(cmd) = marks.iter().find_map(|m| m.strip_prefix("fail ")) {
                return Err(ModuleError::remote(
                    format!("seboolean {name}: {cmd} failed on {}: {}", ctx.host, last_line(&plain)),
                    format!("{cmd} {name}"),
                    &plain,
                ));
            }
            if !out.success() {
                return Err(ModuleError::remote(
                    format!(
                        "seboolean {name}: the script failed on {}: {}",
                        ctx.host,
                        last_line(&plain)
                    ),
                    "seboolean",
                    &plain,
                ));
            }
            let current = marks
                .iter()
                .find_map(|m| m.strip_prefix("current "))
                .unwrap_or_default()
                .to_string();
            let want = if args.bool("state", false) { "on" } else { "off" };
            let changed = has("change");
            let mut r = ModuleResult::changed(changed);
            r.msg = Some(match (changed, ctx.check) {
                (false, _) => format!("{name} is {want}"),
                (true, true) => format!("would set {name} {current} -> {want}"),
                (true, false) => format!("{name} {current} -> {want}"),
            });
            r.data.insert("name".into(), name.into());
            r.data.insert("state".into(), (want == "on").into());
            r.data
                .insert("persistent".into(), args.bool("persistent", false).into());
            if ctx.diff && changed {
                r.diff.push(Diff {
                    path: name.to_string(),
                    before: format!("{name}: {current}\n"),
                    after: format!("{name}: {want}\n"),
                });
            }
            Ok(r)
        })
    }
}
