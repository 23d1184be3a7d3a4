//! `--find-knee`: the rate raised step by step until a threshold breaks, with the servers'
//! own figures taken over SSH at each step (CPU of the app and database hosts, MariaDB's
//! running threads), so the highest rate that held comes with what was running out.

use crate::transport::{Host, Input, RemoteCommand};

/// A host's CPU counters (`/proc/stat`'s first line): (busy, total) jiffies.
pub async fn cpu_counters(host: &Host) -> Option<(u64, u64)> {
    let out = host
        .run(&RemoteCommand::new("head -n 1 /proc/stat"), Input::None)
        .await
        .ok()?;
    parse_stat(&String::from_utf8_lossy(&out.stdout))
}

/// (busy, total) of `cpu  user nice system idle iowait irq softirq steal ...`.
pub fn parse_stat(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

/// Percent busy between two samples.
pub fn busy_percent(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let total = after.1.checked_sub(before.1)?;
    let busy = after.0.checked_sub(before.0)?;
    (total > 0).then(|| (busy as f64 / total as f64 * 1000.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counters_read_and_subtract() {
        let a = parse_stat("cpu  100 0 50 800 50 0 0 0 0 0").expect("a cpu line");
        assert_eq!(a, (150, 1000));
        let b = parse_stat("cpu  190 0 60 840 60 0 0 0 0 0").expect("a cpu line");
        assert_eq!(busy_percent(a, b), Some(66.7));
        assert!(parse_stat("intr 1 2 3").is_none());
    }
}
