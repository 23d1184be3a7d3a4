//! `tend check`: the routine checks an operator runs every morning (or cron every five
//! minutes), in one SSH channel per host: disk and inode use, memory, load, the shop's
//! services running and their ports answering, health pages, replication and its lag, the
//! error rate of the last minutes of the access log, the host's clock against the control
//! node's. Each finding is `ok`, `warning` or `critical` against thresholds from the inventory.

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::modules::mysql::{Login, PREAMBLE};
use crate::settings::{HostVars, Variables};
use crate::transport::shell::quote;
use crate::transport::{Host, Input, StepError};
use std::time::Duration;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Within its thresholds.
    Ok,
    /// Past the warning threshold.
    Warning,
    /// Past the critical one, or down.
    Critical,
}

impl Level {
    /// As monitoring writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One check of one host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// `disk:/var`, `service:nginx`, `replication`, ...
    pub check: String,
    /// The measured value (a number where there is one, for Prometheus).
    pub value: Option<f64>,
    /// What was found, for people.
    pub detail: String,
    /// Its level.
    pub level: Level,
}

/// A warning and a critical threshold; `above`: bad when the value is above them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    warn: f64,
    crit: f64,
    above: bool,
}

impl Limits {
    fn level(self, v: f64) -> Level {
        let past = |t: f64| if self.above { v >= t } else { v <= t };
        if past(self.crit) {
            Level::Critical
        } else if past(self.warn) {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

/// What to check on one host, from its variables and groups.
#[derive(Debug, Clone)]
pub struct Plan {
    disk_paths: Vec<String>,
    processes: Vec<String>,
    ports: Vec<u16>,
    urls: Vec<String>,
    replica: Option<Login>,
    access_log: Option<String>,
    tls: Vec<String>,
    error_window_min: u64,
    disk: Limits,
    inodes: Limits,
    memory: Limits,
    load: Limits,
    lag: Limits,
    errors: Limits,
    clock: Limits,
    tls_days: Limits,
    /// Hours since the newest verified backup started (on the `db_primary` host).
    backup_age: Option<Limits>,
}

/// Thresholds and their defaults: (variable, warning, critical).
const THRESHOLDS: &[(&str, &str, &str)] = &[
    ("check_disk", "80", "90"),
    ("check_inodes", "80", "90"),
    ("check_memory_available", "15", "5"),
    ("check_load_per_cpu", "2", "4"),
    ("check_replication_lag", "30", "300"),
    ("check_error_rate", "1", "5"),
    ("check_clock_offset", "1", "5"),
    ("check_tls_days", "30", "7"),
    ("check_backup_age", "26", "50"),
];

fn limits(v: &HostVars, name: &str, above: bool) -> Result<Limits, Diagnostic> {
    let (_, w, c) = THRESHOLDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .unwrap_or((name, "0", "0"));
    let num = |var: String, default: &str| -> Result<f64, Diagnostic> {
        let text = v.text(&var)?;
        let text = if text.is_empty() { default.to_string() } else { text };
        text.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| v.error(&var, format!("`{text}` is not a number")))
    };
    Ok(Limits {
        warn: num(format!("{name}_warn"), w)?,
        crit: num(format!("{name}_crit"), c)?,
        above,
    })
}

/// Host `h`'s checks: `check_disk_paths` (default `/` and `/var`), the shop's services by group
/// (`lb`: nginx on `shop_http_port`, its front page; `app`: Tomcat's java on `shop_app_port`,
/// its page; `db`: mariadbd on 3306; `db_replica`: replication), the access log's error rate on
/// `lb` (`check_error_window` minutes, default 5), and the thresholds `check_*_warn`/`_crit`.
pub fn plan(vars: &Variables, inv: &Inventory, h: usize, db_login: Option<&Login>) -> Result<Plan, Diagnostic> {
    let v = HostVars::new(
        vars,
        inv,
        h,
        &[
            ("shop_http_port", "80"),
            ("shop_app_port", "8080"),
            ("check_error_window", "5"),
        ],
    );
    let member = |g: &str| inv.group_index(g).is_some_and(|i| inv.hosts_of_group(i).contains(&h));
    let list = |var: &str, default: &[&str]| -> Result<Vec<String>, Diagnostic> {
        match v.value(var)? {
            serde_json::Value::Null => Ok(default.iter().map(|s| (*s).to_string()).collect()),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    serde_json::Value::String(s) if s.starts_with('/') => Ok(s),
                    other => Err(v.error(var, format!("`{other}` is not an absolute path"))),
                })
                .collect(),
            other => Err(v.error(var, format!("must be a list of paths, found {other}"))),
        }
    };
    let port = |var: &str| -> Result<u16, Diagnostic> {
        let t = v.text(var)?;
        t.parse().map_err(|_| v.error(var, format!("`{t}` is not a port")))
    };
    let mut p = Plan {
        disk_paths: list("check_disk_paths", &["/", "/var"])?,
        processes: Vec::new(),
        ports: Vec::new(),
        urls: Vec::new(),
        replica: None,
        access_log: None,
        error_window_min: v
            .text("check_error_window")?
            .parse()
            .map_err(|_| v.error("check_error_window", "must be a number of minutes"))?,
        disk: limits(&v, "check_disk", true)?,
        inodes: limits(&v, "check_inodes", true)?,
        memory: limits(&v, "check_memory_available", false)?,
        load: limits(&v, "check_load_per_cpu", true)?,
        lag: limits(&v, "check_replication_lag", true)?,
        errors: limits(&v, "check_error_rate", true)?,
        clock: limits(&v, "check_clock_offset", true)?,
        tls_days: limits(&v, "check_tls_days", false)?,
        backup_age: None,
        tls: match v.value("check_tls")? {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    serde_json::Value::String(s) if endpoint(&s) => Ok(s),
                    other => Err(v.error("check_tls", format!("`{other}` is not `host:port`"))),
                })
                .collect::<Result<_, _>>()?,
            other => Err(v.error("check_tls", format!("must be a list of `host:port`, found {other}")))?,
        },
    };
    if member("lb") {
        let http = port("shop_http_port")?;
        p.processes.push("nginx".into());
        p.ports.push(http);
        p.urls.push(format!("http://127.0.0.1:{http}/"));
        p.access_log = Some(
            v.optional("check_access_log")?
                .unwrap_or_else(|| "/var/log/nginx/access.log".into()),
        );
    }
    if member("app") {
        let app = port("shop_app_port")?;
        p.processes.push("java".into());
        p.ports.push(app);
        p.urls.push(format!("http://127.0.0.1:{app}/health.jsp"));
    }
    if member("db") {
        p.processes.push("mariadbd".into());
        p.ports.push(3306);
    }
    if member("db_replica") {
        p.replica = Some(db_login.cloned().unwrap_or_default());
    }
    if member("db_primary") {
        p.backup_age = Some(limits(&v, "check_backup_age", true)?);
    }
    Ok(p)
}

impl Plan {
    /// Whether this host's row carries the age of the cluster's newest verified backup.
    pub fn checks_backups(&self) -> bool {
        self.backup_age.is_some()
    }

    /// The `backup_age` finding from the backup catalog (or why it could not be read): hours
    /// since the newest verified backup started; none verified is critical.
    pub fn backup_finding(
        &self,
        catalog: Result<&[crate::backup::catalog::Backup], String>,
        now: i64,
    ) -> Option<Finding> {
        let limits = self.backup_age?;
        let check = "backup_age".to_string();
        Some(match catalog {
            Err(e) => Finding {
                check,
                value: None,
                detail: format!("cannot read the backup catalog: {e}"),
                level: Level::Critical,
            },
            Ok(backups) => match crate::backup::newest_verified(backups) {
                None => Finding {
                    check,
                    value: None,
                    detail: "no backup has been verified".into(),
                    level: Level::Critical,
                },
                Some((b, started)) => {
                    let hours = (now - started).max(0) as f64 / 3600.0;
                    Finding {
                        check,
                        value: Some((hours * 100.0).round() / 100.0),
                        detail: format!("{} verified, {hours:.1} h old", b.id),
                        level: limits.level(hours),
                    }
                }
            },
        })
    }
}

/// `host:port` with a port number and a host of letters, digits, `.`, `-`, `_`, `:` (IPv6).
fn endpoint(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty()
            && p.parse::<u16>().is_ok()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
    })
}

/// The host's side: one line per finding, `kind fields... [path or url last]`.
fn script(p: &Plan) -> String {
    let words = |xs: &[String]| xs.iter().map(|x| quote(x)).collect::<Vec<_>>().join(" ");
    let mut s = String::from("set -u\n");
    if p.replica.is_some() {
        s.push_str(PREAMBLE);
    }
    s.push_str("echo \"clock $(date +%s.%N)\"\n");
    if !p.disk_paths.is_empty() {
        s.push_str(&format!(
            "for d in {}; do\n  b=$(df -P -- \"$d\" 2>/dev/null | awk 'NR==2 {{sub(/%/, \"\", $5); print $5}}')\n  i=$(df -Pi -- \"$d\" 2>/dev/null | awk 'NR==2 {{sub(/%/, \"\", $5); print $5}}')\n  echo \"disk ${{b:--}} ${{i:--}} $d\"\ndone\n",
            words(&p.disk_paths)
        ));
    }
    s.push_str("echo \"mem $(awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {if (t > 0) printf \"%.1f\", a * 100 / t; else print \"-\"}' /proc/meminfo)\"\n");
    s.push_str("echo \"load $(cut -d' ' -f1 /proc/loadavg) $(nproc 2>/dev/null || echo 1)\"\n");
    for n in &p.processes {
        s.push_str(&format!(
            "if pgrep -x -- {0} >/dev/null; then echo \"proc 1 \"{0}; else echo \"proc 0 \"{0}; fi\n",
            quote(n)
        ));
    }
    for port in &p.ports {
        s.push_str(&format!(
            "if ss -Hltn 'sport = :{port}' 2>/dev/null | grep -q .; then echo 'port 1 {port}'; else echo 'port 0 {port}'; fi\n"
        ));
    }
    for u in &p.urls {
        s.push_str(&format!(
            "r=$(curl -s -o /dev/null -m 5 -w '%{{http_code}} %{{time_total}}' -- {0}); echo \"http ${{r:-000 0}} \"{0}\n",
            quote(u)
        ));
    }
    if p.replica.is_some() {
        s.push_str("\"$client\" --defaults-extra-file=\"$cnf\" -e 'SHOW SLAVE STATUS\\G' 2>/dev/null | awk -F': ' '/ Slave_IO_Running:/ {io=$2} / Slave_SQL_Running:/ {sq=$2} / Seconds_Behind_Master:/ {lag=$2} END {print \"repl\", (io == \"\" ? \"-\" : io), (sq == \"\" ? \"-\" : sq), (lag == \"\" ? \"-\" : lag)}'\n");
    }
    for t in &p.tls {
        // The certificate's end, as the host sees it (`notAfter=Dec 13 10:00:00 2026 GMT`).
        let host = t.rsplit_once(':').map_or(t.as_str(), |(h, _)| h);
        s.push_str(&format!(
            "e=$(openssl s_client -connect {0} -servername {1} </dev/null 2>/dev/null | openssl x509 -noout -enddate 2>/dev/null); echo \"tls ${{e#notAfter=}}|\"{0}\n",
            quote(t),
            quote(host.trim_start_matches('[').trim_end_matches(']'))
        ));
    }
    if let Some(log) = &p.access_log {
        // The last lines' times and statuses: the window is cut on the control node.
        s.push_str(&format!(
            "if [ -r {0} ]; then tail -n 50000 -- {0} | awk '{{print \"req\", $4, $9}}'; else echo 'req-missing'; fi\n",
            quote(log)
        ));
    }
    s
}

/// Runs `p`'s checks on `host` in one channel.
pub async fn run(host: &Host, p: &Plan) -> Result<Vec<Finding>, StepError> {
    let input = p.replica.as_ref().map(|l| format!("{}\n", l.stdin_line()));
    let sent = std::time::SystemTime::now();
    let out = host
        .step(
            "check",
            "run the checks",
            script(p),
            input.as_deref().map_or(Input::None, |i| Input::Bytes(i.as_bytes())),
            Duration::from_secs(60),
        )
        .await?;
    let received = std::time::SystemTime::now();
    let secs = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    // The host's clock is compared with the middle of the exchange.
    let local = (secs(sent) + secs(received)) / 2.0;
    Ok(findings(
        p,
        &String::from_utf8_lossy(&out.stdout),
        local,
        jiff::Timestamp::now(),
    ))
}

/// Reads the host's lines into findings (`local`: the control node's clock at the host's
/// `clock` line).
fn findings(p: &Plan, text: &str, local: f64, now: jiff::Timestamp) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |check: String, value: Option<f64>, detail: String, level: Level| {
        out.push(Finding {
            check,
            value,
            detail,
            level,
        });
    };
    let (mut requests, mut errors) = (0u64, 0u64);
    let mut access_missing = false;
    let cutoff = now.as_second() - (p.error_window_min as i64) * 60;
    for line in text.lines() {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        match words.as_slice() {
            ["clock", t] => {
                if let Ok(host) = t.parse::<f64>() {
                    let off = (host - local).abs();
                    push(
                        "clock".into(),
                        Some(off),
                        format!("{off:.2} s from the control node's clock"),
                        p.clock.level(off),
                    );
                }
            }
            ["disk", b, i, path] => {
                for (kind, v, lim) in [("disk", b, p.disk), ("inodes", i, p.inodes)] {
                    match v.parse::<f64>() {
                        Ok(x) => push(format!("{kind}:{path}"), Some(x), format!("{x}% used"), lim.level(x)),
                        Err(_) if kind == "disk" => push(
                            format!("{kind}:{path}"),
                            None,
                            "no such filesystem".into(),
                            Level::Critical,
                        ),
                        Err(_) => {}
                    }
                }
            }
            ["mem", v] => {
                if let Ok(x) = v.parse::<f64>() {
                    push("memory".into(), Some(x), format!("{x}% available"), p.memory.level(x));
                }
            }
            ["load", l, n] => {
                if let (Ok(l), Ok(n)) = (l.parse::<f64>(), n.parse::<f64>()) {
                    let per = l / n.max(1.0);
                    push(
                        "load".into(),
                        Some(per),
                        format!("{l} over {n} CPU(s)"),
                        p.load.level(per),
                    );
                }
            }
            ["proc", up, name] | ["proc", up, name, _] => {
                let up = *up == "1";
                push(
                    format!("service:{name}"),
                    Some(f64::from(u8::from(up))),
                    if up { "running" } else { "not running" }.into(),
                    if up { Level::Ok } else { Level::Critical },
                );
            }
            ["port", up, port] => {
                let up = *up == "1";
                push(
                    format!("port:{port}"),
                    Some(f64::from(u8::from(up))),
                    if up { "listening" } else { "nothing listens" }.into(),
                    if up { Level::Ok } else { Level::Critical },
                );
            }
            ["http", code, secs, url] => {
                let ok = code.starts_with('2') || code.starts_with('3');
                let ms = secs.parse::<f64>().unwrap_or(0.0) * 1000.0;
                push(
                    format!("http:{url}"),
                    code.parse().ok(),
                    if *code == "000" {
                        "no answer".into()
                    } else {
                        format!("{code} in {ms:.0} ms")
                    },
                    if ok { Level::Ok } else { Level::Critical },
                );
            }
            ["repl", rest @ ..] => {
                let joined = rest.join(" ");
                let f: Vec<&str> = joined.split(' ').map(str::trim).collect();
                let (io, sql, lag) = (
                    f.first().copied().unwrap_or("-"),
                    f.get(1).copied().unwrap_or("-"),
                    f.get(2).copied().unwrap_or("-"),
                );
                if io != "Yes" || sql != "Yes" {
                    push(
                        "replication".into(),
                        Some(0.0),
                        format!("IO thread {io}, SQL thread {sql}"),
                        Level::Critical,
                    );
                } else {
                    let lag_s: f64 = lag.parse().unwrap_or(f64::INFINITY);
                    push(
                        "replication".into(),
                        Some(lag_s),
                        format!("running, {lag} s behind"),
                        p.lag.level(lag_s),
                    );
                }
            }
            ["req-missing"] => access_missing = true,
            ["tls", ..] => {
                let rest = line.trim_start_matches("tls ");
                let (end, target) = rest.split_once('|').unwrap_or(("", rest));
                let check = format!("tls:{target}");
                match tls_end(end) {
                    Some(t) => {
                        let days = (t - now.as_second()) as f64 / 86_400.0;
                        push(
                            check,
                            Some(days),
                            format!("certificate ends in {days:.1} days ({end})"),
                            p.tls_days.level(days),
                        );
                    }
                    None => push(check, None, "no certificate read".into(), Level::Critical),
                }
            }
            ["req", time, status] if access_time(time).is_some_and(|t| t >= cutoff) => {
                requests += 1;
                if status.starts_with('5') {
                    errors += 1;
                }
            }
            _ => {}
        }
    }
    if let Some(log) = &p.access_log {
        let check = "error_rate".to_string();
        if access_missing {
            push(check, None, format!("{log} cannot be read"), Level::Warning);
        } else {
            let rate = if requests == 0 {
                0.0
            } else {
                errors as f64 * 100.0 / requests as f64
            };
            push(
                check,
                Some(rate),
                format!(
                    "{errors} of {requests} request(s) answered 5xx in the last {} min ({rate:.2}%)",
                    p.error_window_min
                ),
                p.errors.level(rate),
            );
        }
    }
    out
}

/// Seconds since the epoch of OpenSSL's `Dec 13 10:00:00 2026 GMT` (the day may be padded).
fn tls_end(text: &str) -> Option<i64> {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = t.strip_suffix(" GMT")?;
    let dt = jiff::civil::DateTime::strptime("%b %d %H:%M:%S %Y", t).ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(dt).ok().map(|x| x.as_second())
}

/// Seconds since the epoch of an access log's `[03/Dec/2026:10:00:00` (its zone follows in the
/// next field; the shop's hosts log in UTC).
fn access_time(field: &str) -> Option<i64> {
    let t = field.strip_prefix('[')?;
    let dt = jiff::civil::DateTime::strptime("%d/%b/%Y:%H:%M:%S", t).ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(dt).ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let l = |w, c, above| Limits {
            warn: w,
            crit: c,
            above,
        };
        Plan {
            disk_paths: vec!["/".into()],
            processes: vec![],
            ports: vec![],
            urls: vec![],
            replica: Some(Login::default()),
            access_log: Some("/var/log/nginx/access.log".into()),
            tls: vec![],
            tls_days: l(30.0, 7.0, false),
            backup_age: None,
            error_window_min: 5,
            disk: l(80.0, 90.0, true),
            inodes: l(80.0, 90.0, true),
            memory: l(15.0, 5.0, false),
            load: l(2.0, 4.0, true),
            lag: l(30.0, 300.0, true),
            errors: l(1.0, 5.0, true),
            clock: l(1.0, 5.0, true),
        }
    }

    #[test]
    fn thresholds_make_levels() {
        let now = jiff::Timestamp::from_second(1_796_300_000).unwrap_or_default();
        let stamp = |ago: i64| {
            jiff::Timestamp::from_second(now.as_second() - ago)
                .unwrap_or_default()
                .strftime("[%d/%b/%Y:%H:%M:%S")
                .to_string()
        };
        let text = format!(
            "clock 1796300000.2\ndisk 85 10 /\nmem 4.5\nload 1.0 2\nproc 0 nginx\nport 1 80\nhttp 502 0.010 http://127.0.0.1:80/\nrepl Yes No 0\ntls Dec  9 10:00:00 2026 GMT|shop.example:443\ntls |down.example:443\nreq {} 200\nreq {} 503\nreq {} 500\n",
            stamp(10),
            stamp(20),
            stamp(600)
        );
        let f = findings(&plan(), &text, 1_796_300_000.0, now);
        let level = |c: &str| f.iter().find(|x| x.check == c).map(|x| x.level);
        assert_eq!(level("clock"), Some(Level::Ok));
        assert_eq!(level("disk:/"), Some(Level::Warning));
        assert_eq!(level("inodes:/"), Some(Level::Ok));
        assert_eq!(level("memory"), Some(Level::Critical));
        assert_eq!(level("load"), Some(Level::Ok));
        assert_eq!(level("service:nginx"), Some(Level::Critical));
        assert_eq!(level("port:80"), Some(Level::Ok));
        assert_eq!(level("http:http://127.0.0.1:80/"), Some(Level::Critical));
        assert_eq!(level("replication"), Some(Level::Critical));
        // 1_796_300_000 is 2026-12-03 12:13:20 UTC: under six days left.
        assert_eq!(level("tls:shop.example:443"), Some(Level::Critical));
        assert_eq!(level("tls:down.example:443"), Some(Level::Critical));
        // Two requests in the window, one 5xx: 50 %.
        let rate = f.iter().find(|x| x.check == "error_rate").and_then(|x| x.value);
        assert_eq!(rate, Some(50.0));
    }
}
