//! `timezone` (community.general): the host's time zone. With systemd as init, through
//! `timedatectl`; otherwise `/etc/localtime` (a link to, or a copy of, the zone's file under
//! /usr/share/zoneinfo, as it was) and Debian's `/etc/timezone`, replaced atomically. One
//! remote script; the zone must exist on the host.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, script_error, split_marked};
use crate::transport::shell::quote;

/// `timezone`: log timestamps and cron times across a fleet read alike only if every host is in
/// the zone the roles say.
pub struct Timezone;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str),
    Param::new("hwclock", Kind::Str)
        .aliases(&["rtc"])
        .choices(&["local", "UTC", "utc"]),
];

const SCRIPT: &str = r#"set -u
export LC_ALL=C
say() { echo "@@tend $*"; }
zf=/usr/share/zoneinfo/$name
[ -f "$zf" ] || { say "fail nozone"; exit 3; }
if [ -d /run/systemd/system ] && command -v timedatectl >/dev/null 2>&1; then
  mgr=systemd
  cur=$(timedatectl show -p Timezone --value 2>/dev/null)
  say "before ${cur:-unknown}"
  [ "$cur" = "$name" ] && exit 0
  say change
  [ "$check" = 1 ] && exit 0
  timedatectl set-timezone "$name" || { say "fail timedatectl"; exit 1; }
  exit 0
fi
need=0
if [ -L /etc/localtime ]; then
  t=$(readlink /etc/localtime); cur=${t#*zoneinfo/}
  [ "$cur" = "$name" ] || need=1
elif [ -f /etc/localtime ]; then
  cur=$(cat /etc/timezone 2>/dev/null || echo unknown)
  cmp -s "$zf" /etc/localtime || need=1
else
  cur=none; need=1
fi
deb=0
if [ -f /etc/timezone ] || command -v dpkg >/dev/null 2>&1; then
  deb=1
  [ "$(cat /etc/timezone 2>/dev/null)" = "$name" ] || need=1
fi
say "before $cur"
[ "$need" = 1 ] || exit 0
say change
[ "$check" = 1 ] && exit 0
new=/etc/.localtime.tend.$$
if [ -f /etc/localtime ] && [ ! -L /etc/localtime ]; then
  cp "$zf" "$new" && mv -f "$new" /etc/localtime || { rm -f "$new"; say "fail localtime"; exit 1; }
else
  ln -s "$zf" "$new" && mv -Tf "$new" /etc/localtime || { rm -f "$new"; say "fail localtime"; exit 1; }
fi
if [ "$deb" = 1 ]; then
  printf '%s\n' "$name" > /etc/.timezone.tend.$$ && mv -f /etc/.timezone.tend.$$ /etc/timezone \
    || { rm -f /etc/.timezone.tend.$$; say "fail etctimezone"; exit 1; }
fi
"#;

/// A zone name as under /usr/share/zoneinfo: `Europe/Paris`, `Etc/GMT+3`, `UTC`.
fn valid_zone(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
}

impl Module for Timezone {
    fn name(&self) -> &'static str {
        "timezone"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let hwclock = args.str("hwclock");
            let Some(name) = args.str("name") else {
                if hwclock.is_some() {
                    return Err(ModuleError::Args(
                        "timezone: tend does not set `hwclock` (the hardware clock); give `name`".into(),
                    ));
                }
                return Err(ModuleError::Args("timezone needs `name`".into()));
            };
            if !valid_zone(name) {
                return Err(ModuleError::Args(format!(
                    "timezone: `{name}` is not a zone name (like Europe/Paris or UTC)"
                )));
            }
            let script = format!("name={} check={}\n{SCRIPT}", quote(name), if ctx.check { 1 } else { 0 });
            let out = ctx.run(&script, None).await?;
            let (marks, plain) = split_marked(&out);
            let before = marks
                .iter()
                .find_map(|m| m.strip_prefix("before "))
                .unwrap_or("unknown")
                .to_string();
            let failed = marks.iter().find_map(|m| m.strip_prefix("fail ")).map(|stage| match stage {
                "nozone" => (
                    format!(
                        "timezone: no zone `{name}` on {} (/usr/share/zoneinfo/{name} does not exist; is tzdata installed?)",
                        ctx.host
                    ),
                    format!("test -f /usr/share/zoneinfo/{name}"),
                ),
                "timedatectl" => (
                    format!("timezone: timedatectl could not set {name} on {}", ctx.host),
                    format!("timedatectl set-timezone {name}"),
                ),
                "etctimezone" => (
                    format!("timezone: could not write /etc/timezone on {}", ctx.host),
                    "write /etc/timezone".into(),
                ),
                _ => (
                    format!("timezone: could not replace /etc/localtime on {}", ctx.host),
                    format!("ln -s /usr/share/zoneinfo/{name} /etc/localtime"),
                ),
            });
            if let Some(e) = script_error("timezone", ctx.host, failed, &out, &plain) {
                return Err(e);
            }
            let changed = marks.iter().any(|m| m == "change");
            let mut r = ModuleResult::changed(changed);
            let mut msg = if !changed {
                format!("timezone is {name}")
            } else if ctx.check {
                format!("would set timezone {before} -> {name}")
            } else {
                format!("timezone {before} -> {name}")
            };
            if hwclock.is_some() {
                msg.push_str(" (hwclock not managed by tend: left as it is)");
            }
            r.msg = Some(msg);
            if ctx.diff && changed {
                r.diff.push(Diff {
                    path: "timezone".into(),
                    before: format!("name: {before}\n"),
                    after: format!("name: {name}\n"),
                });
            }
            r.data.insert("name".into(), name.into());
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zone_names() {
        for ok in [
            "UTC",
            "Europe/Paris",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+3",
            "Etc/GMT-14",
        ] {
            assert!(super::valid_zone(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/shadow",
            "Europe/../x",
            "Europe//Paris",
            "Europe/Paris;id",
            "a b",
        ] {
            assert!(!super::valid_zone(bad), "{bad}");
        }
    }
}
