//! `apt`: Debian packages. One remote script refreshes the lists when asked (and when they are
//! older than `cache_valid_time`), probes every package with `dpkg-query` (`apt-cache policy` for
//! `latest`), and outside check mode makes all installs in one `apt-get install` and all removals
//! in one `apt-get remove`. `package` reuses it on apt hosts.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::Output;
use crate::transport::shell::{join, quote};
use serde_json::Value as Json;

/// `apt`: installs, upgrades and removes Debian packages idempotently, so a role can
/// declare the software it needs.
pub struct Apt;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::List).aliases(&["pkg", "package"]),
    Param::new("state", Kind::Str).choices(&["present", "absent", "latest", "installed", "removed"]),
    Param::new("update_cache", Kind::Bool).aliases(&["update-cache"]),
    Param::new("cache_valid_time", Kind::Int),
    Param::new("install_recommends", Kind::Bool).aliases(&["install-recommends"]),
    Param::new("purge", Kind::Bool),
    Param::new("autoremove", Kind::Bool),
    Param::new("allow_downgrade", Kind::Bool).aliases(&["allow-downgrade", "allow_downgrades", "allow-downgrades"]),
    Param::new("dpkg_options", Kind::Str),
    Param::new("lock_timeout", Kind::Int),
    Param::new("default_release", Kind::Str).aliases(&["default-release"]),
    Param::new("policy_rc_d", Kind::Int),
];

/// What the packages should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Present,
    Absent,
    Latest,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Absent => "absent",
            State::Latest => "latest",
        }
    }
}

/// One requested package: `nginx`, `nginx:amd64` or pinned `nginx=1.22.1-9`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    version: Option<String>,
}

impl Spec {
    /// The word `apt-get install` takes.
    fn arg(&self) -> String {
        match &self.version {
            Some(v) => format!("{}={v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Checks a package argument: Debian names (lower case, digits, `+-.`, optional `:arch`) and
/// versions (`[epoch:]upstream[-revision]`), so nothing else can reach the remote `apt-get`.
fn parse_spec(text: &str) -> Result<Spec, String> {
    let text = text.trim();
    let (name, version) = match text.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (text, None),
    };
    let (base, arch) = match name.split_once(':') {
        Some((b, a)) => (b, Some(a)),
        None => (name, None),
    };
    let name_ok = base
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && base
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        && arch.is_none_or(|a| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if !name_ok {
        return Err(format!(
            "`{text}` is not a Debian package name (lower-case letters, digits, `+-.`; wildcards are not supported)"
        ));
    }
    if let Some(v) = version {
        let ok = v.chars().next().is_some_and(|c| c.is_ascii_digit())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
        if !ok {
            return Err(format!(
                "`{text}`: `{v}` is not a package version (pin an exact version: `name=1.2-3`)"
            ));
        }
    }
    Ok(Spec {
        name: name.to_string(),
        version: version.map(str::to_string),
    })
}

/// An `apt` call, checked on the control node before anything runs on the host.
pub(super) struct Job {
    specs: Vec<Spec>,
    state: State,
    update_cache: bool,
    cache_valid_time: i64,
    install_recommends: Option<bool>,
    purge: bool,
    autoremove: bool,
    allow_downgrade: bool,
    dpkg_options: Vec<String>,
    lock_timeout: i64,
    /// `default_release`: `apt-get -t RELEASE install`.
    default_release: Option<String>,
    /// `policy_rc_d`: the exit code of a `/usr/sbin/policy-rc.d` in place while packages are
    /// installed (101: their services are not started), the previous one put back after.
    policy_rc_d: Option<i64>,
}

impl Job {
    /// Reads `apt` arguments (`package` passes its own, which are a subset).
    pub(super) fn from_args(module: &str, args: &Args) -> Result<Self, ModuleError> {
        let specs = args
            .list("name")
            .iter()
            .map(|n| parse_spec(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ModuleError::Args(format!("`{module}` name: {e}")))?;
        let state = match args.str("state").unwrap_or("present") {
            "absent" | "removed" => State::Absent,
            "latest" => State::Latest,
            _ => State::Present,
        };
        if state == State::Latest
            && let Some(s) = specs.iter().find(|s| s.version.is_some())
        {
            return Err(ModuleError::Args(format!(
                "`{}` pins a version; `state: latest` takes names only",
                s.arg()
            )));
        }
        let update_cache = args.bool("update_cache", false);
        let autoremove = args.bool("autoremove", false);
        if specs.is_empty() && !update_cache && !autoremove {
            return Err(ModuleError::Args(format!(
                "`{module}` needs `name` (or `update_cache` / `autoremove` alone)"
            )));
        }
        let dpkg_options = args
            .str("dpkg_options")
            .unwrap_or("force-confdef,force-confold")
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| format!("Dpkg::Options::=--{}", o.trim_start_matches('-')))
            .collect();
        Ok(Self {
            specs,
            state,
            update_cache,
            cache_valid_time: args.int("cache_valid_time").unwrap_or(0).max(0),
            install_recommends: args.get("install_recommends").and_then(Json::as_bool),
            purge: args.bool("purge", false),
            autoremove,
            allow_downgrade: args.bool("allow_downgrade", false),
            dpkg_options,
            lock_timeout: args.int("lock_timeout").unwrap_or(60).max(0),
            default_release: match args.str("default_release").filter(|r| !r.is_empty()) {
                Some(r) if r.chars().all(|c| c.is_ascii_alphanumeric() || "._+~-/".contains(c)) => Some(r.to_string()),
                Some(r) => {
                    return Err(ModuleError::Args(format!(
                        "`{module}` default_release: `{r}` is not a release name"
                    )));
                }
                None => None,
            },
            policy_rc_d: args.int("policy_rc_d"),
        })
    }

    fn common(&self) -> Vec<String> {
        vec![
            "apt-get".into(),
            "-y".into(),
            "-q".into(),
            "-o".into(),
            format!("DPkg::Lock::Timeout={}", self.lock_timeout),
        ]
    }

    fn update_words(&self) -> Vec<String> {
        let mut w = vec!["apt-get".into(), "-q".into()];
        w.extend(["-o".into(), "APT::Update::Error-Mode=any".into()]);
        w.extend(["-o".into(), format!("DPkg::Lock::Timeout={}", self.lock_timeout)]);
        w.push("update".into());
        w
    }

    fn install_words(&self) -> Vec<String> {
        let mut w = self.common();
        for o in &self.dpkg_options {
            w.extend(["-o".into(), o.clone()]);
        }
        match self.install_recommends {
            Some(true) => w.push("--install-recommends".into()),
            Some(false) => w.push("--no-install-recommends".into()),
            None => {}
        }
        if self.allow_downgrade {
            w.push("--allow-downgrades".into());
        }
        if let Some(r) = &self.default_release {
            w.extend(["-t".into(), r.clone()]);
        }
        w.push("install".into());
        w
    }

    /// `do_install`'s body: the install, inside a temporary `policy-rc.d` when asked.
    fn install_body(&self) -> String {
        let install = format!("{} \"$@\"", join(&self.install_words()));
        match self.policy_rc_d {
            None => install,
            // The host's own policy is kept aside and put back, also when the run is killed; a
            // policy left aside by a run that could not put it back is refused, not overwritten.
            Some(code) => format!(
                "p=/usr/sbin/policy-rc.d; if [ -e \"$p.tend\" ]; then echo \"$p.tend exists (a run was killed while installing): check it and put it back\" >&2; return 100; fi; \
                 [ -e \"$p\" ] && mv -f \"$p\" \"$p.tend\"; \
                 restore() {{ rm -f \"$p\"; [ -e \"$p.tend\" ] && mv -f \"$p.tend\" \"$p\"; }}; trap 'restore; exit 130' INT TERM HUP; \
                 printf '#!/bin/sh\\nexit %d\\n' {code} > \"$p\" && chmod 755 \"$p\"; {install}; rc=$?; restore; trap - INT TERM HUP; return $rc"
            ),
        }
    }

    fn remove_words(&self) -> Vec<String> {
        let mut w = self.common();
        w.push("remove".into());
        if self.purge {
            w.push("--purge".into());
        }
        if self.autoremove {
            w.push("--auto-remove".into());
        }
        w
    }

    fn autoremove_words(&self) -> Vec<String> {
        let mut w = self.common();
        w.push("autoremove".into());
        if self.purge {
            w.push("--purge".into());
        }
        w
    }

    /// The remote script: the job's values, then [`SCRIPT`].
    pub(super) fn script(&self, check: bool) -> String {
        let flag = |b: bool| if b { "1" } else { "0" };
        let specs: Vec<String> = self.specs.iter().map(Spec::arg).collect();
        format!(
            "check={} state={} update={} valid={} purge={} autoremove={}\nset -- {}\n\
             do_update() {{ {} \"$@\"; }}\ndo_install() {{ {}; }}\n\
             do_remove() {{ {} \"$@\"; }}\ndo_autoremove() {{ {} \"$@\"; }}\n{SCRIPT}",
            flag(check),
            quote(self.state.word()),
            flag(self.update_cache),
            quote(&self.cache_valid_time.to_string()),
            flag(self.purge),
            flag(self.autoremove),
            specs.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" "),
            join(&self.update_words()),
            self.install_body(),
            join(&self.remove_words()),
            join(&self.autoremove_words()),
        )
    }

    /// Turns the script's output into a result or a failure naming the `apt-get` command.
    pub(super) fn finish(&self, ctx: &Ctx<'_>, out: &Output) -> Result<ModuleResult, ModuleError> {
        let (marks, plain) = split_marked(out);
        let report = Report::parse(&marks);
        if let Some((stage, args)) = &report.failed {
            let (words, what) = match stage.as_str() {
                "update" => (self.update_words(), "updating the package lists".to_string()),
                "install" => (self.install_words(), format!("installing{args}")),
                "remove" => (self.remove_words(), format!("removing{args}")),
                "autoremove" => (self.autoremove_words(), "autoremove".to_string()),
                _ => (
                    vec!["command".into(), "-v".into(), "apt-get".into()],
                    "looking for apt".to_string(),
                ),
            };
            let args = if stage == "update" { "" } else { args.as_str() };
            return Err(ModuleError::remote(
                format!("apt: {what} failed on {}: {}", ctx.host, last_line(&plain)),
                format!("{}{args}", words.join(" ")),
                &plain,
            ));
        }
        if !out.success() {
            return Err(ModuleError::remote(
                format!("apt: the probe failed on {}: {}", ctx.host, last_line(&plain)),
                "apt (probe)",
                &plain,
            ));
        }
        if !report.missing.is_empty() {
            return Err(ModuleError::Failed(format!(
                "no package matching {} is available on {} (the host's apt lists do not know it; `update_cache: yes` refreshes them)",
                report
                    .missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                ctx.host
            )));
        }
        let packages_changed = !(report.installed.is_empty()
            && report.upgraded.is_empty()
            && report.removed.is_empty()
            && report.autoremoved.is_empty());
        let cache_changed = matches!(report.cache, Some(Cache::Updated | Cache::Stale));
        let mut r = ModuleResult::changed(packages_changed || (self.specs.is_empty() && cache_changed));
        let would = if ctx.check { "would " } else { "" };
        let mut parts = Vec::new();
        let names = |v: &[(String, String, String)]| v.iter().map(|p| p.0.clone()).collect::<Vec<_>>().join(", ");
        for (verb, done, list) in [
            ("install", "installed", &report.installed),
            ("upgrade", "upgraded", &report.upgraded),
            ("remove", "removed", &report.removed),
            ("autoremove", "autoremoved", &report.autoremoved),
        ] {
            if !list.is_empty() {
                let verb = if ctx.check { verb } else { done };
                parts.push(format!("{would}{verb} {}", names(list)));
            }
        }
        match report.cache {
            Some(Cache::Updated) => parts.insert(0, "package lists updated".into()),
            Some(Cache::Stale) => parts.insert(0, "would update the package lists".into()),
            Some(Cache::Fresh) => parts.insert(
                0,
                format!(
                    "package lists are fresher than cache_valid_time={}s",
                    self.cache_valid_time
                ),
            ),
            None => {}
        }
        if !packages_changed && !self.specs.is_empty() {
            parts.push(match self.state {
                State::Absent => "no package to remove".into(),
                State::Latest => "all packages are up to date".into(),
                State::Present => "all packages are installed".into(),
            });
        }
        if parts.is_empty() {
            parts.push("nothing to do".into());
        }
        r.msg = Some(parts.join("; "));
        let list = |v: &[(String, String, String)]| Json::Array(v.iter().map(|p| Json::String(p.0.clone())).collect());
        r.data.insert("installed".into(), list(&report.installed));
        r.data.insert("upgraded".into(), list(&report.upgraded));
        r.data.insert("removed".into(), list(&report.removed));
        r.data.insert("autoremoved".into(), list(&report.autoremoved));
        r.data.insert("cache_updated".into(), cache_changed.into());
        if let Some(t) = report.cache_time {
            r.data.insert("cache_update_time".into(), t.into());
        }
        if packages_changed && !ctx.check {
            r = r.with_output(&plain);
            r.rc = None;
        }
        if ctx.diff && packages_changed {
            let mut before = String::new();
            let mut after = String::new();
            for (name, _, to) in &report.installed {
                before.push_str(&format!("{name}: absent\n"));
                after.push_str(&format!("{name}: {}\n", or_word(to, "installed")));
            }
            for (name, from, to) in &report.upgraded {
                before.push_str(&format!("{name}: {from}\n"));
                after.push_str(&format!("{name}: {to}\n"));
            }
            for (name, from, _) in report.removed.iter().chain(&report.autoremoved) {
                before.push_str(&format!("{name}: {from}\n"));
                after.push_str(&format!("{name}: absent\n"));
            }
            r.diff.push(Diff {
                path: "packages".into(),
                before,
                after,
            });
        }
        Ok(r)
    }
}

fn or_word<'a>(s: &'a str, word: &'a str) -> &'a str {
    if s.is_empty() || s == "-" { word } else { s }
}

/// How the package lists were handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cache {
    /// Younger than `cache_valid_time`: not updated.
    Fresh,
    /// Would be updated (check mode).
    Stale,
    /// `apt-get update` ran.
    Updated,
}

/// The marked lines of the script, read back.
#[derive(Debug, Default, PartialEq)]
struct Report {
    cache: Option<Cache>,
    cache_time: Option<i64>,
    /// (name, version before, version after), `-` when unknown.
    installed: Vec<(String, String, String)>,
    upgraded: Vec<(String, String, String)>,
    removed: Vec<(String, String, String)>,
    autoremoved: Vec<(String, String, String)>,
    missing: Vec<String>,
    /// The step that failed and the packages it was given (each with a leading space).
    failed: Option<(String, String)>,
}

impl Report {
    fn parse(marks: &[String]) -> Self {
        let mut r = Report::default();
        for m in marks {
            let w: Vec<&str> = m.split_whitespace().collect();
            let at = |i: usize| w.get(i).copied().unwrap_or("-").to_string();
            match w.first().copied() {
                Some("cache") => {
                    r.cache = match w.get(1).copied() {
                        Some("fresh") => Some(Cache::Fresh),
                        Some("stale") => Some(Cache::Stale),
                        Some("updated") => Some(Cache::Updated),
                        _ => None,
                    };
                    r.cache_time = w.get(2).and_then(|t| t.parse().ok());
                }
                Some("install") => r.installed.push((at(1), "-".into(), at(2))),
                Some("upgrade") => r.upgraded.push((at(1), at(2), at(3))),
                Some("remove") => r.removed.push((at(1), at(2), "-".into())),
                Some("autoremove") => r.autoremoved.push((at(1), at(2), "-".into())),
                Some("missing") => r.missing.push(at(1)),
                Some("fail") => {
                    let args: String = w.iter().skip(3).map(|a| format!(" {a}")).collect();
                    r.failed = Some((at(1), args));
                }
                _ => {}
            }
        }
        r
    }
}

/// Probes and applies. Inputs (set before it): `check state update valid purge autoremove`, the
/// package words as `$@`, and `do_update do_install do_remove do_autoremove` wrapping `apt-get`.
const SCRIPT: &str = r#"set -u
set -f
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
say() { echo "@@tend $*"; }
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "apt-get or dpkg-query not found: this host does not use apt" >&2
  say "fail noapt 127"; exit 127
fi
o=$(mktemp) && e=$(mktemp) || exit 1
trap 'rm -f "$o" "$e"' EXIT
# Daemons started by maintainer scripts keep the files, never the session's pipes.
step() {
  what=$1; shift
  "$@" </dev/null >"$o" 2>"$e"; rc=$?
  cat "$o"; cat "$e" >&2
  shift
  if [ "$rc" != 0 ]; then say "fail $what $rc $*"; exit "$rc"; fi
}
if [ "$update" = 1 ]; then
  stamp=/var/lib/apt/periodic/update-success-stamp
  if [ -e "$stamp" ]; then t=$(stat -c %Y "$stamp"); else t=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0); fi
  age=$(( $(date +%s) - t ))
  if [ "$valid" -gt 0 ] && [ "$age" -lt "$valid" ]; then
    say "cache fresh $t"
  elif [ "$check" = 1 ]; then
    say "cache stale $t"
  else
    do_update </dev/null >"$o" 2>"$e"; rc=$?
    # Older apt exits 0 when a source cannot be fetched; only its warnings tell.
    if [ "$rc" = 0 ] && grep -Eq '^[WE]: (Failed to fetch|Some index files failed)' "$e"; then rc=100; fi
    cat "$o"; cat "$e" >&2
    if [ "$rc" != 0 ]; then say "fail update $rc"; exit "$rc"; fi
    mkdir -p /var/lib/apt/periodic && touch "$stamp"
    say "cache updated $(stat -c %Y "$stamp")"
  fi
fi
inst="" rem="" auto="" miss=0
for spec in "$@"; do
  name=${spec%%=*}; ver=""
  case "$spec" in *=*) ver=${spec#*=} ;; esac
  line=$(dpkg-query -W -f='${Status}|${Version}\n' "$name" 2>/dev/null | head -n 1)
  st=${line%%|*}; have=${line#*|}
  case "$st" in *" installed") ok=1 ;; *) ok=0 ;; esac
  case "$state" in
    present|latest)
      want=$ver
      if [ "$state" = latest ]; then
        want=$(apt-cache policy "$name" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n 1)
        [ "$want" = "(none)" ] && want=""
        if [ -z "$want" ]; then
          [ "$ok" = 1 ] || { say "missing $spec"; miss=1; }
          continue
        fi
      fi
      if [ "$ok" = 1 ] && { [ -z "$want" ] || [ "$have" = "$want" ]; }; then continue; fi
      if [ "$state" = present ] && ! apt-cache show "$spec" 2>/dev/null | grep -q '^Package: '; then
        say "missing $spec"; miss=1; continue
      fi
      if [ "$ok" = 1 ]; then say "upgrade $name $have $want"; else say "install $name ${want:--}"; fi
      if [ "$state" = latest ]; then inst="$inst $name"; else inst="$inst $spec"; fi ;;
    absent)
      case "$st" in
        ""|*" not-installed") continue ;;
        *" config-files") [ "$purge" = 1 ] || continue ;;
      esac
      if [ -n "$ver" ] && [ "$have" != "$ver" ]; then continue; fi
      say "remove $name ${have:--}"; rem="$rem $name" ;;
  esac
done
if [ "$autoremove" = 1 ] && [ "$state" != absent ]; then
  for p in $(do_autoremove -s 2>/dev/null </dev/null | sed -n 's/^Remv \([^ ]*\).*/\1/p'); do
    say "autoremove $p"; auto="$auto $p"
  done
fi
[ "$miss" = 1 ] && exit 0
[ "$check" = 1 ] && exit 0
[ -z "$inst" ] || step install do_install $inst
[ -z "$rem" ] || step remove do_remove $rem
[ -z "$auto" ] || step autoremove do_autoremove
say done
"#;

impl Module for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let job = Job::from_args("apt", args)?;
            let out = ctx.run(&job.script(ctx.check), None).await?;
            job.finish(ctx, &out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn package_words_are_checked() {
        assert_eq!(
            parse_spec("nginx").unwrap(),
            Spec {
                name: "nginx".into(),
                version: None
            }
        );
        let s = parse_spec(" libc6:amd64=2.36-9+deb12u4 ").unwrap();
        assert_eq!(s.name, "libc6:amd64");
        assert_eq!(s.version.as_deref(), Some("2.36-9+deb12u4"));
        assert_eq!(s.arg(), "libc6:amd64=2.36-9+deb12u4");
        assert_eq!(
            parse_spec("nginx=1:1.22~rc1-9").unwrap().version.as_deref(),
            Some("1:1.22~rc1-9")
        );
        for bad in [
            "",
            "Nginx",
            "nginx*",
            "-f",
            "a b",
            "x;rm",
            "nginx=",
            "nginx=$(id)",
            "x:",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn job(v: serde_json::Value) -> Result<Job, ModuleError> {
        let args = super::super::coerce("apt", PARAMS, v.as_object().unwrap()).unwrap();
        Job::from_args("apt", &args)
    }

    #[test]
    fn arguments_become_apt_get_words() {
        let j = job(json!({"pkg": "nginx,rsync=3.2", "install_recommends": false, "lock_timeout": 5})).unwrap();
        assert_eq!(
            j.install_words().join(" "),
            "apt-get -y -q -o DPkg::Lock::Timeout=5 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends install"
        );
        let script = j.script(true);
        assert!(
            script.starts_with("check=1 state=present update=0 valid=0 purge=0 autoremove=0\nset -- nginx rsync=3.2\n"),
            "{script}"
        );
        let j = job(json!({"name": ["x"], "state": "removed", "purge": true, "autoremove": "yes"})).unwrap();
        assert_eq!(
            j.remove_words().join(" "),
            "apt-get -y -q -o DPkg::Lock::Timeout=60 remove --purge --auto-remove"
        );
        assert!(job(json!({"name": "x=1", "state": "latest"})).is_err());
        assert!(job(json!({"state": "present"})).is_err());
        assert!(job(json!({"update_cache": true})).is_ok());
        assert!(job(json!({"name": "bad*"})).is_err());
    }

    #[test]
    fn report_lines_are_read_back() {
        let marks: Vec<String> = [
            "cache updated 1700000000",
            "install nginx -",
            "upgrade curl 7.1 7.2",
            "remove rsync 3.2.7",
            "missing nope=1",
            "fail install 100 nginx curl",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = Report::parse(&marks);
        assert_eq!(r.cache, Some(Cache::Updated));
        assert_eq!(r.cache_time, Some(1_700_000_000));
        assert_eq!(r.installed, [("nginx".into(), "-".into(), "-".into())]);
        assert_eq!(r.upgraded, [("curl".into(), "7.1".into(), "7.2".into())]);
        assert_eq!(r.removed[0].0, "rsync");
        assert_eq!(r.missing, ["nope=1"]);
        assert_eq!(r.failed, Some(("install".into(), " nginx curl".into())));
    }

    /// Runs the script on this machine with fake `dpkg-query`, `apt-cache` and `apt-get` over a
    /// package database in files: upgrades, pins, config-files purges and autoremove, which the
    /// lab's offline cache cannot show.
    #[test]
    fn script_against_fake_apt_tools() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["bin", "db", "cand"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let tools = [
            (
                "dpkg-query",
                r#"for a; do n=$a; done
[ -e "$T/db/$n" ] || { echo "dpkg-query: no packages found matching $n" >&2; exit 1; }
cat "$T/db/$n""#,
            ),
            (
                "apt-cache",
                r#"spec=$2; n=${spec%%=*}; v=""; case "$spec" in *=*) v=${spec#*=} ;; esac
[ -e "$T/cand/$n" ] || exit 0
c=$(cat "$T/cand/$n")
case "$1" in
  policy) printf '%s:\n  Installed: x\n  Candidate: %s\n' "$n" "$c" ;;
  show) if [ -z "$v" ] || [ "$v" = "$c" ]; then echo "Package: $n"; fi ;;
esac"#,
            ),
            (
                "apt-get",
                r#"echo "$*" >> "$T/calls"
verb="" purge=0 sim=0
for a; do
  case "$a" in
    install|remove|autoremove) verb=$a ;;
    --purge) purge=1 ;;
    -s) sim=1 ;;
    -*|*::*) ;;
    *)
      n=${a%%=*}
      case "$verb" in
        install)
          if [ "$n" = broken ]; then echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2; exit 100; fi
          v=$(cat "$T/cand/$n"); case "$a" in *=*) v=${a#*=} ;; esac
          echo "install ok installed|$v" > "$T/db/$n" ;;
        remove) if [ "$purge" = 1 ]; then rm -f "$T/db/$n"; else echo "deinstall ok config-files|1" > "$T/db/$n"; fi ;;
      esac ;;
  esac
done
if [ "$verb" = autoremove ] && [ -e "$T/orphan" ]; then
  if [ "$sim" = 1 ]; then echo "Remv libold [0.9]"; else rm -f "$T/orphan"; fi
fi
exit 0"#,
            ),
        ];
        for (name, body) in tools {
            let f = d.join("bin").join(name);
            std::fs::write(&f, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let put = |dirname: &str, name: &str, text: &str| {
            std::fs::write(d.join(dirname).join(name), format!("{text}\n")).unwrap()
        };
        put("db", "curl", "install ok installed|7.1");
        put("cand", "curl", "7.2");
        put("cand", "nginx", "1.22");
        put("db", "foo", "install ok installed|1.0");
        put("cand", "foo", "2.0");
        put("db", "rsync", "deinstall ok config-files|3.2");
        put("cand", "rsync", "3.2");
        put("cand", "broken", "1");
        std::fs::write(d.join("orphan"), "").unwrap();
        let path = format!("{}:{}", d.join("bin").display(), std::env::var("PATH").unwrap());
        let run = |v: serde_json::Value, check: bool| {
            let _ = std::fs::remove_file(d.join("calls"));
            let text = job(v).unwrap().script(check);
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&text)
                .env("PATH", &path)
                .env("T", d)
                .output()
                .unwrap();
            let out = Output {
                rc: out.status.code(),
                stdout: out.stdout,
                stderr: out.stderr,
            };
            let (marks, plain) = split_marked(&out);
            let calls = std::fs::read_to_string(d.join("calls")).unwrap_or_default();
            (Report::parse(&marks), plain, calls)
        };
        let names = |v: &[(String, String, String)]| v.iter().map(|p| p.0.clone()).collect::<Vec<_>>();

        // Check mode plans and runs nothing but the autoremove simulation.
        let (r, _, calls) = run(
            json!({"name": ["nginx", "curl"], "state": "latest", "autoremove": true}),
            true,
        );
        assert_eq!(names(&r.installed), ["nginx"]);
        assert_eq!(r.upgraded, [("curl".into(), "7.1".into(), "7.2".into())]);
        assert_eq!(names(&r.autoremoved), ["libold"]);
        assert!(
            !calls.contains(" install") && !calls.contains("autoremove\n"),
            "{calls}"
        );
        let (r, out, calls) = run(
            json!({"name": ["nginx", "curl"], "state": "latest", "autoremove": true}),
            false,
        );
        assert_eq!(out.rc, Some(0), "{out:?}");
        assert_eq!(names(&r.installed), ["nginx"]);
        assert!(calls.contains("install nginx curl\n"), "{calls}");
        let (r, _, _) = run(
            json!({"name": ["nginx", "curl"], "state": "latest", "autoremove": true}),
            false,
        );
        assert_eq!(r, Report::default());

        // A pin moves an installed package; the same pin again is no change.
        let (r, _, calls) = run(json!({"name": "foo=2.0"}), false);
        assert_eq!(r.upgraded, [("foo".into(), "1.0".into(), "2.0".into())]);
        assert!(calls.contains("install foo=2.0\n"), "{calls}");
        assert_eq!(run(json!({"name": "foo=2.0"}), false).0, Report::default());
        let (r, _, calls) = run(json!({"name": "foo=3.0"}), false);
        assert_eq!(r.missing, ["foo=3.0"]);
        assert_eq!(calls, "");

        // Leftover configuration counts as installed only for purge.
        assert_eq!(
            run(json!({"name": "rsync", "state": "absent"}), false).0,
            Report::default()
        );
        let (r, _, calls) = run(json!({"name": "rsync", "state": "absent", "purge": true}), false);
        assert_eq!(names(&r.removed), ["rsync"]);
        assert!(calls.contains("remove --purge rsync\n"), "{calls}");

        // A failing apt-get: its rc, the step and the packages it was given.
        let (r, out, _) = run(json!({"name": ["broken"]}), false);
        assert_eq!(r.failed, Some(("install".into(), " broken".into())));
        assert_eq!(out.rc, Some(100));
        assert_eq!(
            last_line(&out),
            "E: Sub-process /usr/bin/dpkg returned an error code (1)"
        );
    }
}
