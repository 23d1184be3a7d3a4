//! `service_facts`: every service of the host in `ansible_facts.services`, as Ansible lists
//! them: systemd units (`nginx.service`) from `systemctl`, SysV scripts (`nginx`) from their
//! `status` command (as `service --status-all`) and `/etc/rc?.d` start links. One remote script.

use super::{Args, ModuleError, ModuleResult, Plan, Script, last_line};
use serde_json::{Map, Value as Json, json};

/// `service_facts`: roles branch on which services exist and run (`'chrony.service' in
/// services`) before they start or stop one.
pub struct ServiceFacts;

/// Prints `u UNIT SUB`, `f UNIT FILESTATE` (systemd) and `e NAME 0|1 +|-|?` (SysV scripts: a
/// start link in a multi-user runlevel; the status command's verdict) lines.
const SCRIPT: &str = r#"export LC_ALL=C
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl list-units --no-pager --type service --all --plain --no-legend 2>/dev/null | awk '{print "u", $1, $4}'
  systemctl list-unit-files --no-pager --type service --no-legend 2>/dev/null | awk '{print "f", $1, $2}'
fi
for n in /etc/init.d/*; do
  [ -f "$n" ] && [ -x "$n" ] || continue
  b=${n##*/}; en=0
  # Debian's helpers, not services (as `service --status-all` skips them).
  case $b in README|skeleton|rc|rcS|functions|halt|killall|single) continue ;; esac
  for f in /etc/rc[2345].d/S??"$b"; do [ -e "$f" ] && en=1; done
  # As `service --status-all` does, without needing the script to print anything when it runs.
  if out=$(timeout 10 "$n" status </dev/null 2>&1); then st=+; elif echo "$out" | grep -qi "usage:"; then st=?; else st=-; fi
  echo "e $b $en $st"
done
exit 0
"#;

/// The script's lines as Ansible's `services` fact.
fn parse(stdout: &str) -> Map<String, Json> {
    let mut services = Map::new();
    let mut sysv: Vec<(String, bool, &str)> = Vec::new();
    for line in stdout.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["u", unit, sub] => {
                let state = match *sub {
                    "running" => "running",
                    "failed" => "failed",
                    "dead" | "exited" => "stopped",
                    _ => "unknown",
                };
                services.insert(
                    unit.to_string(),
                    json!({"name": unit, "state": state, "status": "unknown", "source": "systemd"}),
                );
            }
            ["f", unit, file_state] => {
                let entry = services.entry(unit.to_string()).or_insert_with(
                    || json!({"name": unit, "state": "stopped", "status": "unknown", "source": "systemd"}),
                );
                entry["status"] = json!(file_state);
            }
            ["e", name, en, mark] => {
                let state = match *mark {
                    "+" => "running",
                    "-" => "stopped",
                    _ => "unknown",
                };
                sysv.push((name.to_string(), *en == "1", state));
            }
            _ => {}
        }
    }
    for (name, en, state) in &sysv {
        if services.contains_key(&format!("{name}.service")) {
            continue;
        }
        let status = if *en { "enabled" } else { "disabled" };
        services.insert(
            name.clone(),
            json!({"name": name, "state": state, "status": status, "source": "sysv"}),
        );
    }
    services
}

super::one_script_module!(ServiceFacts, "service_facts", &[], plan);

fn plan(_args: &Args) -> Result<Plan, ModuleError> {
    Ok(Plan::Remote(Script::new(SCRIPT.to_string(), None, |out| {
        if !out.success() {
            return Err(ModuleError::remote(
                format!("service_facts: listing services failed: {}", last_line(&out)),
                "service --status-all",
                &out,
            ));
        }
        let services = Json::Object(parse(&String::from_utf8_lossy(&out.stdout)));
        let mut r = ModuleResult::default();
        let n = services.as_object().map_or(0, Map::len);
        r.msg = Some(format!("{n} services"));
        r.facts.insert("services".into(), services.clone());
        r.host_facts.insert("services".into(), services);
        Ok(r)
    })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn systemd_units_and_sysv_scripts() {
        let out = "u chrony.service running\nu ssh.service dead\nu bad.service failed\n\
                   f chrony.service enabled\nf ssh.service disabled\nf tmp.service masked\n\
                   e ssh 1 -\ne nginx 0 -\ne hwclock.sh 0 ?\ne chrony 1 +\n";
        let s = super::parse(out);
        assert_eq!(s["chrony.service"]["state"], "running");
        assert_eq!(s["chrony.service"]["status"], "enabled");
        assert_eq!(s["chrony.service"]["source"], "systemd");
        assert_eq!(s["ssh.service"]["state"], "stopped");
        assert_eq!(s["bad.service"]["state"], "failed");
        assert_eq!(s["tmp.service"]["status"], "masked");
        assert_eq!(
            s["nginx"],
            serde_json::json!({"name": "nginx", "state": "stopped", "status": "disabled", "source": "sysv"})
        );
        assert_eq!(s["hwclock.sh"]["state"], "unknown");
        // A script systemd already lists under its unit name is not listed twice.
        assert!(!s.contains_key("chrony") && !s.contains_key("ssh"));
    }
}
