//! Facts in one remote command per host: OS, distribution, architecture, names, CPUs, memory,
//! addresses, service and package managers — the subset playbooks branch on.

use serde_json::{Map, Value as Json, json};

/// The remote half: `key=value` lines.
pub const SCRIPT: &str = r#"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "id=${ID:-}"; echo "id_like=${ID_LIKE:-}"; echo "name=${NAME:-}"
echo "version_id=${VERSION_ID:-}"; echo "codename=${VERSION_CODENAME:-}"
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
for m in apt-get dnf yum zypper apk pacman; do if command -v $m >/dev/null 2>&1; then echo "pkg_mgr=${m%-get}"; break; fi; done
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
        "alpine" => "Alpine".into(),
        _ => name.split_whitespace().next().unwrap_or("Unknown").to_string(),
    }
}

/// Turns the script's output into `ansible_facts`.
pub fn parse(stdout: &str) -> Map<String, Json> {
    let mut kv: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some((k, v)) = line.split_once('=') {
            kv.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |k: &str| {
        kv.iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let kb_to_mb = |k: &str| get(k).parse::<u64>().map(|kb| kb / 1024).unwrap_or(0);
    let version = get("version_id");
    let facts = json!({
        "os_family": os_family(&get("id"), &get("id_like")),
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
        "pkg_mgr": get("pkg_mgr"),
        "user_id": get("user_id"),
        "user_uid": get("user_uid").parse::<u64>().unwrap_or(0),
    });
    facts.as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_a_debian_host() {
        let out = "id=debian\nid_like=\nname=Debian GNU/Linux\nversion_id=12\ncodename=bookworm\narchitecture=x86_64\n\
                   hostname=h1\nvcpus=2\nmemtotal_kb=2048000\ndefault_address=10.77.0.11\ndefault_interface=eth0\nipv4=10.77.0.11\npkg_mgr=apt\n";
        let f = super::parse(out);
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["distribution_major_version"], "12");
        assert_eq!(f["memtotal_mb"], 2000);
        assert_eq!(f["default_ipv4"]["address"], "10.77.0.11");
        assert_eq!(f["all_ipv4_addresses"][0], "10.77.0.11");
    }
}
