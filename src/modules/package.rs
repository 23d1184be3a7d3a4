//! `package`: the host's own package manager, found in the same script that does the work: apt
//! (by `apt`'s script), or dnf/yum (by `dnf`'s, in a second round trip); another manager is
//! named in a clear failure.

use super::apt::Job;
use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, split_marked};

/// `package`: the distribution-neutral spelling of `apt` and `dnf`, so playbooks written for
/// any distribution run here.
pub struct Package;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::List).required().aliases(&["pkg"]),
    Param::new("state", Kind::Str).choices(&["present", "absent", "latest", "installed", "removed"]),
    Param::new("use", Kind::Str),
    // yum's and dnf's, which `package` hands to them as Ansible does; an apt host refuses them
    // when a task really gives them.
    Param::new("enablerepo", Kind::List),
    Param::new("disablerepo", Kind::List),
];

/// Runs before `apt`'s script: a host without `apt-get` says which manager it has and stops.
const DETECT: &str = r#"if ! command -v apt-get >/dev/null 2>&1; then
  for m in dnf yum zypper apk pacman pkg pkg_add emerge xbps-install opkg; do
    if command -v "$m" >/dev/null 2>&1; then echo "@@tend manager $m"; exit 0; fi
  done
  echo "@@tend manager none"; exit 0
fi
"#;

/// The manager a host reported, when it is not apt.
fn other_manager(marks: &[String]) -> Option<&str> {
    marks.iter().find_map(|m| m.strip_prefix("manager "))
}

impl Module for Package {
    fn name(&self) -> &'static str {
        "package"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            match args.str("use") {
                None | Some("auto" | "apt") => {}
                Some(m @ ("dnf" | "yum")) => return super::dnf::run(ctx, args, m).await,
                Some(u) => {
                    return Err(ModuleError::Args(format!(
                        "`package` use: `{u}` is not supported; tend has apt, dnf and yum (`use: auto` finds the host's)"
                    )));
                }
            }
            if let Some(p) = ["enablerepo", "disablerepo"]
                .into_iter()
                .find(|p| args.get(p).is_some())
            {
                // yum/dnf only: the host's manager is asked first, nothing is done on an apt host.
                let out = ctx.run(&format!("{DETECT}echo '@@tend manager apt'\n"), None).await?;
                let (marks, _) = split_marked(&out);
                if let Some(m @ ("dnf" | "yum")) = other_manager(&marks) {
                    return super::dnf::run(ctx, args, m).await;
                }
                return Err(ModuleError::Args(format!(
                    "`package` {p}: a yum/dnf parameter; {} is not managed with yum or dnf",
                    ctx.host
                )));
            }
            let job = Job::from_args("package", args)?;
            let script = format!("{DETECT}{}", job.script(ctx.check));
            let out = ctx.run(&script, None).await?;
            let (marks, _) = split_marked(&out);
            if let Some(m @ ("dnf" | "yum")) = other_manager(&marks) {
                return super::dnf::run(ctx, args, m).await;
            }
            if let Some(m) = other_manager(&marks) {
                return Err(ModuleError::Failed(match m {
                    "none" => format!(
                        "`package`: found no package manager on {} (looked for apt-get, dnf, yum, zypper, apk, pacman, pkg, emerge, xbps-install, opkg)",
                        ctx.host
                    ),
                    m => format!(
                        "`package`: {} uses {m}, which is not supported yet; only apt is (use `command` with {m} meanwhile)",
                        ctx.host
                    ),
                }));
            }
            job.finish(ctx, &out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_manager_found() {
        let marks = vec!["manager dnf".to_string()];
        assert_eq!(other_manager(&marks), Some("dnf"));
        assert_eq!(other_manager(&["install x -".to_string()]), None);
    }
}
