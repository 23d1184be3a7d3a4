//! `package_facts`: the installed packages in `ansible_facts.packages`, name → list of
//! installed versions, from `dpkg-query` (apt) or `rpm -qa`, in one remote command.

use super::{Args, Kind, ModuleError, ModuleResult, Param, Plan, Script, last_line};
use crate::transport::shell::quote;
use serde_json::{Map, Value as Json, json};

/// `package_facts`: roles check what is installed (`'nginx' in ansible_facts.packages`,
/// a version) before they configure it.
pub struct PackageFacts;

const PARAMS: &[Param] = &[
    Param::new("manager", Kind::List),
    Param::new("strategy", Kind::Str).choices(&["first", "all"]),
];

/// Prints `@@mgr NAME` then one tab-separated line per installed package, for each manager
/// asked for that the host has (`auto`: the first found, or all with `strategy: all`).
const SCRIPT: &str = r#"export LC_ALL=C
found=0
for m in $managers; do
  [ "$found" = 1 ] && [ "$strategy" = first ] && break
  case $m in
    apt)
      command -v dpkg-query >/dev/null 2>&1 || continue
      echo "@@mgr apt"; found=1
      dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n' | sed -n 's/^[ih]i *\t//p' || exit 1 ;;
    rpm)
      command -v rpm >/dev/null 2>&1 || continue
      echo "@@mgr rpm"; found=1
      rpm -qa --qf '%{NAME}\t%{VERSION}\t%{ARCH}\t%{RELEASE}\t%{EPOCHNUM}\n' || exit 1 ;;
  esac
done
[ "$found" = 1 ] || { echo "none of: $managers" >&2; exit 3; }
"#;

/// The listing as Ansible's `packages` fact.
fn parse(stdout: &str) -> Map<String, Json> {
    let mut packages = Map::new();
    let mut mgr = "";
    for line in stdout.lines() {
        if let Some(m) = line.strip_prefix("@@mgr ") {
            mgr = if m == "rpm" { "rpm" } else { "apt" };
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let entry = match (mgr, f.as_slice()) {
            ("apt", [name, version, arch]) => {
                json!({"name": name, "version": version, "arch": arch, "category": "", "origin": "", "source": "apt"})
            }
            ("rpm", [name, version, arch, release, epoch]) => json!({
                "name": name, "version": version, "arch": arch, "release": release,
                "epoch": epoch.parse::<u64>().ok().filter(|e| *e > 0), "source": "rpm"
            }),
            _ => continue,
        };
        if let Json::Array(list) = packages.entry(f[0].to_string()).or_insert_with(|| json!([])) {
            list.push(entry);
        }
    }
    packages
}

super::one_script_module!(PackageFacts, "package_facts", PARAMS, plan);

fn plan(args: &Args) -> Result<Plan, ModuleError> {
    let mut managers: Vec<String> = Vec::new();
    for m in args.list("manager") {
        match m.as_str() {
            "auto" => managers.extend(["apt".to_string(), "rpm".to_string()]),
            "apt" | "rpm" => managers.push(m),
            other => {
                return Err(ModuleError::Args(format!(
                    "package_facts: manager `{other}` is not supported (auto, apt, rpm)"
                )));
            }
        }
    }
    if managers.is_empty() {
        managers = vec!["apt".into(), "rpm".into()];
    }
    let strategy = args.str("strategy").unwrap_or("first");
    let text = format!(
        "managers={} strategy={}\n{SCRIPT}",
        quote(&managers.join(" ")),
        quote(strategy)
    );
    Ok(Plan::Remote(Script::new(text, None, move |out| {
        if !out.success() {
            return Err(ModuleError::remote(
                format!(
                    "package_facts: could not list packages ({}): {}",
                    managers.join(", "),
                    last_line(&out)
                ),
                "dpkg-query -W / rpm -qa",
                &out,
            ));
        }
        let packages = parse(&String::from_utf8_lossy(&out.stdout));
        let mut r = ModuleResult {
            msg: Some(format!("{} packages", packages.len())),
            ..ModuleResult::default()
        };
        r.host_facts.insert("packages".into(), Json::Object(packages));
        Ok(r)
    })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dpkg_and_rpm_listings() {
        let out = "@@mgr apt\nnginx\t1.22.1-9\tamd64\nlibc6\t2.36-9\tamd64\nlibc6\t2.36-9\ti386\n\
                   @@mgr rpm\nbash\t5.1.8\tx86_64\t9.el9\t0\nkernel\t5.14.0\tx86_64\t362.el9\t1\n";
        let p = super::parse(out);
        assert_eq!(
            p["nginx"],
            serde_json::json!([{"name": "nginx", "version": "1.22.1-9", "arch": "amd64", "category": "", "origin": "", "source": "apt"}])
        );
        assert_eq!(p["libc6"].as_array().unwrap().len(), 2);
        assert_eq!(p["bash"][0]["release"], "9.el9");
        assert_eq!(p["bash"][0]["epoch"], serde_json::Value::Null);
        assert_eq!(p["kernel"][0]["epoch"], 1);
        assert_eq!(p["kernel"][0]["source"], "rpm");
    }
}
