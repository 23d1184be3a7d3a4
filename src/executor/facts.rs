//! Facts in one remote command per host: OS, distribution, architecture, names, CPUs, memory,
//! addresses, service and package managers — the subset playbooks branch on.

use serde_json::{Map, Value as Json, json};

/// The remote half: `key=value` lines (`osr_KEY=...`: /etc/os-release as written, read here).
pub const SCRIPT: &str = r#"
if [ -r /etc/os-release ]; then sed -n 's/^\([A-Z_]*=\)/osr_\1/p' /etc/os-release; fi
echo "architecture=$(uname -m)"; echo "kernel=$(uname -r)"; echo "system=$(uname -s)"; echo "nodename=$(uname -n)"
echo "hostname=$(hostname -s 2>/dev/null || uname -n)"; echo "fqdn=$(hostname -f 2>/dev/null || uname -n)"
echo "vcpus=$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
awk '/^MemTotal:/ {print "memtotal_kb=" $2} /^MemFree:/ {print "memfree_kb=" $2} /^MemAvailable:/ {print "memavailable_kb=" $2}' /proc/meminfo 2>/dev/null
route=$(ip -4 route get 1.1.1.1 2>/dev/null | head -n1)
if [ -n "$route" ]; then
  echo "$route" | awk '{for (i=1;i<NF;i++) { if ($i=="src") print "default_address=" $(i+1); if ($i=="dev") print "default_interface=" $(i+1) }}'
else
  ip -4 -o addr show scope global 2>/dev/null | head -n1 | awk '{split($4,a,"/"); print "default_address=" a[1]; print "default_interface=" $2}'
fi
ip -4 -o addr show scope global 2>/dev/null | awk '{split($4,a,"/"); print "ipv4=" a[1]}'
if [ -d /run/systemd/system ]; then echo service_mgr=systemd; elif [ -d /etc/init.d ]; then echo service_mgr=sysvinit; else echo service_mgr=unknown; fi
for m in apt-get dnf5 dnf yum zypper apk pacman; do if command -v $m >/dev/null 2>&1; then echo "has=${m%-get}"; fi; done
echo "user_id=$(id -un)"; echo "user_uid=$(id -u)"
"#;

fn os_family(id: &str, id_like: &str) -> &'static str {
    let all = format!("{id} {id_like}");
    let has = |w: &str| all.split_whitespace().any(|x| x == w);
    if has("debian") || has("ubuntu") {
        "Debian"
    } else if has("rhel") || has("fedora") || has("centos") {
        "RedHat"
    } else if has("suse") {
        "Suse"
    } else if has("alpine") {
        "Alpine"
    } else if has("arch") {
        "Archlinux"
    } else {
        "Unknown"
    }
}

fn distribution(id: &str, name: &str) -> String {
    match id {
        "debian" => "Debian".into(),
        "ubuntu" => "Ubuntu".into(),
        "centos" => "CentOS".into(),
        "rhel" => "RedHat".into(),
        "fedora" => "Fedora".into(),
        "rocky" => "Rocky".into(),
        "almalinux" => "AlmaLinux".into(),
        "ol" => "OracleLinux".into(),
        "amzn" => "Amazon".into(),
        "alpine" => "Alpine".into(),
        _ => name.split_whitespace().next().unwrap_or("Unknown").to_string(),
    }
}

/// A value of /etc/os-release as the shell would read it: quotes removed, `\` escapes undone.
fn os_release_value(raw: &str) -> String {
    let raw = raw.trim();
    let inner = match raw.as_bytes() {
        [b'"', .., b'"'] | [b'\'', .., b'\''] if raw.len() >= 2 => &raw[1..raw.len() - 1],
        _ => raw,
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The package manager Ansible names for this family, among the tools the host has: `dnf5`
/// only on Fedora (where Ansible uses it), `dnf` before `yum` on the Red Hat family (`yum` is
/// dnf's alias since EL 8), the first tool found elsewhere.
fn pkg_mgr(family: &str, id: &str, tools: &[String]) -> String {
    let has = |t: &str| tools.iter().any(|x| x == t);
    let order: &[&str] = match family {
        "RedHat" if id == "fedora" => &["dnf5", "dnf", "yum"],
        "RedHat" => &["dnf", "yum", "dnf5"],
        "Debian" => &["apt"],
        _ => &[],
    };
    order
        .iter()
        .find(|t| has(t))
        .map(|t| t.to_string())
        .or_else(|| tools.iter().find(|t| *t != "dnf5").cloned())
        .unwrap_or_else(|| "unknown".into())
}

/// Turns the script's output into `ansible_facts`.
pub fn parse(stdout: &str) -> Map<String, Json> {
    let mut kv: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let key = match k.trim() {
                "osr_ID" => "id",
                "osr_ID_LIKE" => "id_like",
                "osr_NAME" => "name",
                "osr_VERSION_ID" => "version_id",
                "osr_VERSION_CODENAME" => "codename",
                other if other.starts_with("osr_") => continue,
                other => other,
            };
            let v = if k.starts_with("osr_") {
                os_release_value(v)
            } else {
                v.trim().to_string()
            };
            kv.push((key.to_string(), v));
        }
    }
    let tools: Vec<String> = kv.iter().filter(|(k, _)| k == "has").map(|(_, v)| v.clone()).collect();
    let get = |k: &str| {
        kv.iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let kb_to_mb = |k: &str| get(k).parse::<u64>().map(|kb| kb / 1024).unwrap_or(0);
    let version = get("version_id");
    let family = os_family(&get("id"), &get("id_like"));
    let facts = json!({
        "os_family": family,
        "distribution": distribution(&get("id"), &get("name")),
        "distribution_version": version,
        "distribution_major_version": version.split('.').next().unwrap_or(""),
        "distribution_release": get("codename"),
        "architecture": get("architecture"),
        "kernel": get("kernel"),
        "system": get("system"),
        "nodename": get("nodename"),
        "hostname": get("hostname"),
        "fqdn": get("fqdn"),
        "processor_vcpus": get("vcpus").parse::<u64>().unwrap_or(0),
        "processor_count": get("vcpus").parse::<u64>().unwrap_or(0),
        "memtotal_mb": kb_to_mb("memtotal_kb"),
        "memfree_mb": kb_to_mb("memfree_kb"),
        "default_ipv4": {"address": get("default_address"), "interface": get("default_interface")},
        "all_ipv4_addresses": kv.iter().filter(|(k, _)| k == "ipv4").map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "service_mgr": get("service_mgr"),
        "pkg_mgr": pkg_mgr(family, &get("id"), &tools),
        "user_id": get("user_id"),
        "user_uid": get("user_uid").parse::<u64>().unwrap_or(0),
    });
    facts.as_object().cloned().unwrap_or_default()
}

/// Ansible's fact collectors with the facts tend gathers for each (many give none here: tend
/// gathers the subset playbooks branch on).
const COLLECTORS: &[(&str, &[&str])] = &[
    (
        "distribution",
        &[
            "os_family",
            "distribution",
            "distribution_version",
            "distribution_major_version",
            "distribution_release",
        ],
    ),
    (
        "platform",
        &["architecture", "kernel", "system", "nodename", "hostname", "fqdn"],
    ),
    ("service_mgr", &["service_mgr"]),
    ("pkg_mgr", &["pkg_mgr"]),
    ("user", &["user_id", "user_uid"]),
    (
        "hardware",
        &["processor_vcpus", "processor_count", "memtotal_mb", "memfree_mb"],
    ),
    ("network", &["default_ipv4", "all_ipv4_addresses"]),
];

/// Ansible's `min` subset: what every gathering includes unless `!min` says otherwise.
const MIN: &[&str] = &[
    "apparmor",
    "caps",
    "cmdline",
    "date_time",
    "distribution",
    "dns",
    "env",
    "fips",
    "local",
    "lsb",
    "pkg_mgr",
    "platform",
    "python",
    "selinux",
    "service_mgr",
    "ssh_pub_keys",
    "user",
];

/// The other subsets Ansible knows, with the aliases its collectors answer to.
const OTHERS: &[(&str, &[&str])] = &[
    ("hardware", &["devices", "dmi", "mounts", "processor"]),
    ("network", &["interfaces"]),
    ("virtual", &[]),
    ("chroot", &["is_chroot"]),
    ("facter", &[]),
    ("ohai", &[]),
    ("systemd", &[]),
    ("loadavg", &[]),
    ("fibre_channel_wwn", &[]),
    ("iscsi", &[]),
    ("nvme", &[]),
];

/// The collector a `gather_subset` name stands for: a collector, an alias, or one of the facts
/// a collector gives (`distribution_major_version`).
fn collector(name: &str) -> Option<&'static str> {
    MIN.iter()
        .find(|c| **c == name)
        .copied()
        .or_else(|| {
            OTHERS
                .iter()
                .find(|(c, al)| *c == name || al.contains(&name))
                .map(|(c, _)| *c)
        })
        .or_else(|| {
            COLLECTORS
                .iter()
                .find(|(_, facts)| facts.contains(&name))
                .map(|(c, _)| *c)
        })
}

/// Keeps the facts `gather_subset` and `filter` ask for, with Ansible's rules: `all` is the
/// default, `min` is always in unless `!min`, `!all` leaves only `min`, `!x` drops `x` unless
/// it is also named; a
/// filter is a list of globs on fact names (with or without `ansible_`).
pub fn select(mut facts: Map<String, Json>, subset: &[String], filter: &[String]) -> Result<Map<String, Json>, String> {
    let all: Vec<&str> = MIN.iter().copied().chain(OTHERS.iter().map(|(c, _)| *c)).collect();
    let (mut wanted, mut dropped): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut no_min = false;
    for raw in subset {
        let name = raw.trim();
        let (neg, id) = match name.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        let group: Vec<&str> = match id {
            "all" if neg => all.iter().copied().filter(|c| !MIN.contains(c)).collect(),
            "all" => all.clone(),
            "min" => {
                no_min |= neg;
                MIN.to_vec()
            }
            _ => vec![collector(id).ok_or_else(|| {
                format!(
                    "bad subset `{id}` in gather_subset: the subsets are all, min, {}",
                    all.join(", ")
                )
            })?],
        };
        if neg { &mut dropped } else { &mut wanted }.extend(group);
    }
    // Ansible: what was named explicitly survives a negation (`!all` + `network`).
    let named = wanted.clone();
    if wanted.is_empty() {
        wanted = all;
    }
    wanted.retain(|c| named.contains(c) || !dropped.contains(c));
    if !no_min {
        wanted.extend(MIN);
    }
    facts.retain(|k, _| {
        COLLECTORS
            .iter()
            .find(|(_, fs)| fs.contains(&k.as_str()))
            .is_none_or(|(c, _)| wanted.contains(c))
    });
    if !filter.is_empty() {
        let mut set = globset::GlobSetBuilder::new();
        for f in filter {
            set.add(globset::Glob::new(f).map_err(|e| format!("bad fact filter `{f}`: {e}"))?);
        }
        let set = set.build().map_err(|e| format!("bad fact filter: {e}"))?;
        facts.retain(|k, _| set.is_match(k) || set.is_match(format!("ansible_{k}")));
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::{parse, select};

    fn os(release: &str, tools: &str) -> serde_json::Map<String, serde_json::Value> {
        let mut out: String = release.lines().map(|l| format!("osr_{l}\n")).collect();
        out.push_str(tools);
        parse(&out)
    }

    #[test]
    fn parses_a_debian_host() {
        let out = "osr_ID=debian\nosr_NAME=\"Debian GNU/Linux\"\nosr_VERSION_ID=\"12\"\nosr_VERSION_CODENAME=bookworm\narchitecture=x86_64\n\
                   hostname=h1\nvcpus=2\nmemtotal_kb=2048000\ndefault_address=10.77.0.11\ndefault_interface=eth0\nipv4=10.77.0.11\nhas=apt\n";
        let f = parse(out);
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["distribution_version"], "12");
        assert_eq!(f["distribution_major_version"], "12");
        assert_eq!(f["distribution_release"], "bookworm");
        assert_eq!(f["pkg_mgr"], "apt");
        assert_eq!(f["memtotal_mb"], 2000);
        assert_eq!(f["default_ipv4"]["address"], "10.77.0.11");
        assert_eq!(f["all_ipv4_addresses"][0], "10.77.0.11");
    }

    /// /etc/os-release of the Red Hat family as shipped (quoted values, ID_LIKE lists).
    #[test]
    fn red_hat_family_hosts() {
        let rhel = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\n";
        let f = os(rhel, "has=dnf\nhas=yum\n");
        assert_eq!(
            (f["os_family"].as_str(), f["distribution"].as_str()),
            (Some("RedHat"), Some("RedHat"))
        );
        assert_eq!(f["distribution_version"], "9.4");
        assert_eq!(f["distribution_major_version"], "9");
        assert_eq!(f["pkg_mgr"], "dnf");

        let rocky = "NAME=\"Rocky Linux\"\nVERSION=\"8.9 (Green Obsidian)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\n";
        let f = os(rocky, "has=dnf\nhas=yum\n");
        assert_eq!(
            (f["os_family"].as_str(), f["distribution"].as_str()),
            (Some("RedHat"), Some("Rocky"))
        );
        assert_eq!(
            (f["distribution_major_version"].as_str(), f["pkg_mgr"].as_str()),
            (Some("8"), Some("dnf"))
        );

        let alma = "NAME=\"AlmaLinux\"\nVERSION=\"9.3 (Shamrock Pampas Cat)\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n";
        let f = os(alma, "has=dnf\n");
        assert_eq!(
            (f["os_family"].as_str(), f["distribution"].as_str()),
            (Some("RedHat"), Some("AlmaLinux"))
        );

        let centos7 =
            "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\n";
        let f = os(centos7, "has=yum\n");
        assert_eq!(
            (f["os_family"].as_str(), f["distribution"].as_str()),
            (Some("RedHat"), Some("CentOS"))
        );
        assert_eq!(
            (f["distribution_major_version"].as_str(), f["pkg_mgr"].as_str()),
            (Some("7"), Some("yum"))
        );

        let stream =
            "NAME=\"CentOS Stream\"\nVERSION=\"9\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"9\"\n";
        assert_eq!(os(stream, "has=dnf\nhas=yum\n")["pkg_mgr"], "dnf");

        let fedora = "NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=41\n";
        let f = os(fedora, "has=dnf5\nhas=dnf\n");
        assert_eq!(
            (f["os_family"].as_str(), f["pkg_mgr"].as_str()),
            (Some("RedHat"), Some("dnf5"))
        );

        let oracle = "NAME=\"Oracle Linux Server\"\nID=\"ol\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"8.10\"\n";
        let f = os(oracle, "has=dnf\nhas=yum\n");
        assert_eq!(
            (f["os_family"].as_str(), f["distribution"].as_str()),
            (Some("RedHat"), Some("OracleLinux"))
        );
    }

    #[test]
    fn subsets_and_filters_as_ansible() {
        let all = os("ID=debian\nVERSION_ID=12\n", "has=apt\nvcpus=2\nipv4=10.0.0.1\n");
        let sel = |subset: &[&str], filter: &[&str]| {
            let subset: Vec<String> = subset.iter().map(|s| s.to_string()).collect();
            let filter: Vec<String> = filter.iter().map(|s| s.to_string()).collect();
            select(all.clone(), &subset, &filter)
        };
        let f = sel(&[], &[]).unwrap();
        assert_eq!(f.len(), all.len());
        let f = sel(&["!all"], &[]).unwrap();
        assert!(f.contains_key("os_family") && f.contains_key("pkg_mgr"));
        assert!(!f.contains_key("processor_vcpus") && !f.contains_key("all_ipv4_addresses"));
        let f = sel(&["!all", "network"], &[]).unwrap();
        assert!(f.contains_key("all_ipv4_addresses") && f.contains_key("os_family") && !f.contains_key("memtotal_mb"));
        let f = sel(&["!hardware"], &[]).unwrap();
        assert!(f.contains_key("all_ipv4_addresses") && !f.contains_key("memtotal_mb"));
        let f = sel(&["!all", "!min", "hardware"], &[]).unwrap();
        assert!(f.contains_key("memtotal_mb") && !f.contains_key("os_family"));
        let f = sel(&["!all", "!min"], &[]).unwrap();
        assert!(f.is_empty(), "{f:?}");
        let f = sel(&["all"], &["ansible_distribution*", "pkg_mgr"]).unwrap();
        let mut keys: Vec<&String> = f.keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "distribution",
                "distribution_major_version",
                "distribution_release",
                "distribution_version",
                "pkg_mgr"
            ]
        );
        assert!(sel(&["all", "!virtual", "devices", "distribution_major_version"], &[]).is_ok());
        assert!(sel(&["harware"], &[]).unwrap_err().contains("bad subset `harware`"));
    }
}
