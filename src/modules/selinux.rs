//! `selinux` (ansible.posix): the SELinux mode in its config file (`SELINUX=`, `SELINUXTYPE=`)
//! and, where the kernel runs it, now (`setenforce`). On a host without SELinux, `disabled`
//! is already true and anything else fails saying SELinux is not available there.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, script_error, split_marked};
use crate::transport::shell::quote;

/// `selinux`: Red Hat-family roles set the mode before they install services.
pub struct Selinux;

const PARAMS: &[Param] = &[
    Param::new("state", Kind::Str)
        .required()
        .choices(&["enforcing", "permissive", "disabled"]),
    Param::new("policy", Kind::Str),
    Param::new("configfile", Kind::Str).aliases(&["conf", "file"]),
    Param::new("update_kernel_param", Kind::Bool),
];

/// Says `absent` when the host has no SELinux at all (no tools, no config file), else
/// `runtime MODE` (`getenforce`, `disabled` when the kernel does not run it) and `config
/// MODE POLICY`, then changes what differs.
pub const DETECT: &str = r#"say() { echo "@@tend $*"; }
if ! command -v getenforce >/dev/null 2>&1 && ! command -v selinuxenabled >/dev/null 2>&1 && [ ! -f "${conf:-/etc/selinux/config}" ]; then
  say absent; exit 0
fi
"#;

const SCRIPT: &str = r#"set -u
export LC_ALL=C
if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; then
  rt=$(getenforce 2>/dev/null | tr 'A-Z' 'a-z')
else
  rt=disabled
fi
[ -f "$conf" ] || { say "fail noconfig"; exit 3; }
cmode=$(sed -n 's/^SELINUX=//p' "$conf" | tail -n1)
cpol=$(sed -n 's/^SELINUXTYPE=//p' "$conf" | tail -n1)
say "runtime $rt"
say "config $cmode $cpol"
[ -n "$policy" ] || policy=$cpol
newrt=$rt
case $state in
  enforcing) [ "$rt" = permissive ] && newrt=enforcing ;;
  permissive) [ "$rt" = enforcing ] && newrt=permissive ;;
  disabled) [ "$rt" = enforcing ] && newrt=permissive ;;
esac
[ "$newrt" = "$rt" ] || say "change runtime $newrt"
[ "$cmode" = "$state" ] || say "change config $state"
[ "$cpol" = "$policy" ] || say "change policy $policy"
if [ "$state" != disabled ] && [ "$rt" = disabled ]; then say reboot; fi
if [ "$state" = disabled ] && [ "$rt" != disabled ]; then say reboot; fi
[ "$check" = 1 ] && exit 0
if [ "$newrt" != "$rt" ]; then
  if [ "$newrt" = enforcing ]; then setenforce 1; else setenforce 0; fi || { say "fail setenforce"; exit 1; }
fi
if [ "$cmode" != "$state" ] || [ "$cpol" != "$policy" ]; then
  tmp="$conf.tend.$$"
  { grep -v -e '^SELINUX=' -e '^SELINUXTYPE=' "$conf"; printf 'SELINUX=%s\nSELINUXTYPE=%s\n' "$state" "$policy"; } > "$tmp" \
    && chmod --reference="$conf" "$tmp" && mv -f "$tmp" "$conf" || { rm -f "$tmp"; say "fail config"; exit 1; }
fi
"#;

/// A policy name (`targeted`, `mls`): what may go in the config file.
fn valid_policy(p: &str) -> bool {
    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The host-side script for these arguments.
fn script(state: &str, policy: &str, conf: &str, check: bool) -> String {
    format!(
        "state={} policy={} conf={} check={}\n{DETECT}{SCRIPT}",
        quote(state),
        quote(policy),
        quote(conf),
        if check { 1 } else { 0 }
    )
}

/// What the script saw and did.
#[derive(Debug, Default)]
struct Seen {
    absent: bool,
    runtime: String,
    config: String,
    changes: Vec<String>,
    reboot: bool,
    failed: Option<String>,
}

fn read(marks: &[String]) -> Seen {
    let mut s = Seen::default();
    for m in marks {
        let (w, rest) = m.split_once(' ').unwrap_or((m.as_str(), ""));
        match w {
            "absent" => s.absent = true,
            "runtime" => s.runtime = rest.to_string(),
            "config" => s.config = rest.to_string(),
            "change" => s.changes.push(rest.to_string()),
            "reboot" => s.reboot = true,
            "fail" => s.failed = Some(rest.to_string()),
            _ => {}
        }
    }
    s
}

impl Module for Selinux {
    fn name(&self) -> &'static str {
        "selinux"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let state = args.str("state").unwrap_or("disabled");
            let policy = args.str("policy").unwrap_or_default();
            if !policy.is_empty() && !valid_policy(policy) {
                return Err(ModuleError::Args(format!("selinux: `{policy}` is not a policy name")));
            }
            let conf = args.str("configfile").unwrap_or("/etc/selinux/config");
            let out = ctx.run(&script(state, policy, conf, ctx.check), None).await?;
            let (marks, plain) = split_marked(&out);
            let seen = read(&marks);
            if seen.absent {
                if state == "disabled" {
                    let mut r = ModuleResult::changed(false);
                    r.msg = Some(format!("SELinux is not available on {}: it is disabled", ctx.host));
                    r.data.insert("state".into(), "disabled".into());
                    r.data.insert("reboot_required".into(), false.into());
                    return Ok(r);
                }
                return Err(ModuleError::Failed(format!(
                    "selinux: SELinux is not available on {} (no getenforce, no {conf}): cannot make it {state}",
                    ctx.host
                )));
            }
            let failed = seen.failed.as_deref().map(|f| match f {
                "noconfig" => (
                    format!("selinux: {conf} does not exist on {}", ctx.host),
                    format!("test -f {conf}"),
                ),
                "setenforce" => (
                    format!("selinux: setenforce failed on {}", ctx.host),
                    "setenforce".into(),
                ),
                _ => (
                    format!("selinux: could not write {conf} on {}", ctx.host),
                    format!("write {conf}"),
                ),
            });
            if let Some(e) = script_error("selinux", ctx.host, failed, &out, &plain) {
                return Err(e);
            }
            let mut r = ModuleResult::changed(!seen.changes.is_empty());
            let would = if ctx.check { "would " } else { "" };
            r.msg = Some(if seen.changes.is_empty() {
                format!("SELinux is {state} (running: {})", seen.runtime)
            } else {
                let parts: Vec<String> = seen.changes.iter().map(|c| format!("{would}set {c}")).collect();
                parts.join(", ")
            });
            r.data.insert("state".into(), state.into());
            r.data.insert("configfile".into(), conf.into());
            r.data.insert("reboot_required".into(), seen.reboot.into());
            if ctx.diff && r.changed {
                r.diff.push(Diff {
                    path: conf.to_string(),
                    before: format!("runtime: {}\nconfig: {}\n", seen.runtime, seen.config),
                    after: format!("config: {state} {policy}\n"),
                });
            }
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::fake_host::{fake_bins, run_sh};

    /// A host with SELinux enforcing, faked: `getenforce`/`setenforce` keep the mode in a
    /// file; the config file is a temporary one.
    #[test]
    fn modes_against_fake_selinux_tools() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("mode"), "Enforcing\n").unwrap();
        let path = fake_bins(
            d,
            &[
                ("selinuxenabled", "#!/bin/sh\nexit 0\n"),
                ("getenforce", "#!/bin/sh\ncat \"$T/mode\"\n"),
                (
                    "setenforce",
                    "#!/bin/sh\nif [ \"$1\" = 1 ]; then echo Enforcing; else echo Permissive; fi > \"$T/mode\"\n",
                ),
            ],
        );
        let conf = d.join("config");
        std::fs::write(&conf, "# SELinux\nSELINUX=enforcing\nSELINUXTYPE=targeted\n").unwrap();
        let conf = conf.to_str().unwrap();
        let run = |state: &str, check: bool| {
            let out = run_sh(&script(state, "", conf, check), &path, d);
            let (marks, _) = split_marked(&out);
            (read(&marks), out.rc)
        };
        let (s, _) = run("permissive", true);
        assert_eq!(s.changes, ["runtime permissive", "config permissive"]);
        assert_eq!(std::fs::read_to_string(d.join("mode")).unwrap(), "Enforcing\n");
        let (s, rc) = run("permissive", false);
        assert_eq!((s.changes.len(), rc, s.reboot), (2, Some(0), false));
        assert_eq!(std::fs::read_to_string(d.join("mode")).unwrap(), "Permissive\n");
        assert_eq!(
            std::fs::read_to_string(conf).unwrap(),
            "# SELinux\nSELINUX=permissive\nSELINUXTYPE=targeted\n"
        );
        assert!(run("permissive", false).0.changes.is_empty());
        let (s, _) = run("disabled", false);
        assert_eq!(s.changes, ["config disabled"]);
        assert!(s.reboot);

        let none = run_sh(
            &script("disabled", "", "/nonexistent/config", false),
            "/usr/bin:/bin",
            d,
        );
        assert!(read(&split_marked(&none).0).absent);
    }
}
