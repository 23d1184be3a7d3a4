//! The write probe: a client on an app host writing a sequence number through the
//! applications' path (the balancer's database proxy, the applications' login) N times a
//! second, each attempt streamed back as it ends. What the applications saw during a drill is
//! read from it: the outage as the client measured it (RTO) and the acknowledged writes the
//! new primary does not have (RPO). The probe ends with its SSH channel: a killed tend leaves
//! nothing writing.

use crate::migrate::db::Db;
use crate::modules::mysql::{Login, PREAMBLE};
use crate::transport::{Host, Input, RemoteCommand, Sink, StepError, shell::quote};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The probe's loop (after the client preamble: `$client`, `$cnf`): one client run per
/// write, a new connection each time as a restarted application makes; `$iv` nanoseconds
/// between starts; stops when its stdin ends.
const LOOP: &str = r#"
# Ended by its watcher: the exit runs the preamble's trap (the login's option file removed).
trap 'exit 143' TERM
exec 3<&0
{ cat <&3 >/dev/null; kill -TERM $$ 2>/dev/null; } &
exec 3<&-
now() { date +%s%N; }
seq=0
next=$(now)
while :; do
  seq=$((seq + 1))
  t0=$(now)
  if out=$(timeout 5 "$client" --defaults-extra-file="$cnf" --connect-timeout=2 -N -B -e "INSERT INTO $tbl (run, seq, sent, server_id) VALUES ('$run', $seq, NOW(6), @@server_id); SELECT @@server_id" 2>&1); then
    echo "ok $seq $t0 $(now) $out"
  else
    echo "fail $seq $t0 $(now) $(printf '%s\n' "$out" | tail -n 1 | cut -c1-200)"
  fi
  next=$((next + iv)); t=$(now)
  if [ "$t" -lt "$next" ]; then d=$((next - t)); sleep "$((d / 1000000000)).$(printf '%09d' $((d % 1000000000)))"; else next=$t; fi
done
"#;

/// One write of the probe.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// Its sequence number.
    pub seq: u64,
    /// Acknowledged by the server.
    pub ok: bool,
    /// Start, milliseconds from the drill's origin (the probe host's clock, aligned).
    pub start_ms: f64,
    /// End, the same.
    pub end_ms: f64,
    /// The server that took it (acknowledged writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u64>,
    /// The client's error (failed writes).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Debug, Default)]
struct Raw {
    /// (seq, ok, t0 ns, t1 ns, server or error, received on the control node).
    lines: Vec<(u64, bool, i128, i128, String, Instant)>,
}

/// A running probe.
pub struct Probe {
    stdin: Option<tokio::io::DuplexStream>,
    /// Set when tend ends the probe: its end is then no failure.
    stopped: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Result<(), StepError>>,
    raw: Arc<Mutex<Raw>>,
    origin: Instant,
    /// Milliseconds between the starts of two writes.
    pub interval_ms: f64,
}

fn parse(line: &str) -> Option<(u64, bool, i128, i128, String)> {
    let mut p = line.splitn(5, ' ');
    let ok = match p.next()? {
        "ok" => true,
        "fail" => false,
        _ => return None,
    };
    Some((
        p.next()?.parse().ok()?,
        ok,
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
        p.next().unwrap_or_default().trim().to_string(),
    ))
}

impl Probe {
    /// Starts writing into `table` (run `run`) from `host` through `login`, `rate` writes a
    /// second; returns once the first attempt has ended.
    pub async fn start(
        host: &Host,
        login: &Login,
        (table, run): (&str, &str),
        rate: u32,
        origin: Instant,
    ) -> Result<Self, StepError> {
        let interval_ns = 1_000_000_000u64 / u64::from(rate.max(1));
        let script = format!(
            "{PREAMBLE}tbl={} run={} iv={interval_ns}\n{LOOP}",
            quote(table),
            quote(run)
        );
        let raw = Arc::new(Mutex::new(Raw::default()));
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (mut tx, mut rx) = tokio::io::duplex(4096);
        let task = {
            let raw = raw.clone();
            let stopped = stopped.clone();
            let host = host.clone();
            tokio::spawn(async move {
                let mut on_line = |l: &[u8]| {
                    let at = Instant::now();
                    if let Some((seq, ok, t0, t1, rest)) = parse(&String::from_utf8_lossy(l))
                        && let Ok(mut r) = raw.lock()
                    {
                        r.lines.push((seq, ok, t0, t1, rest, at));
                    }
                };
                let out = host
                    .stream(
                        &RemoteCommand::new(script),
                        Input::Read(&mut rx),
                        Sink::Lines(&mut on_line),
                    )
                    .await
                    .map_err(|e| StepError::transport(host.name(), "probe", e))?;
                // Ended by tend (its stdin closed: SIGTERM from its own watcher), or failed.
                if out.success() || stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(());
                }
                Err(StepError::remote(
                    host.name(),
                    "probe",
                    crate::transport::Failure::from_output(
                        crate::transport::last_error_line(&out, "the probe failed"),
                        "probe",
                        &out,
                    ),
                ))
            })
        };
        use tokio::io::AsyncWriteExt as _;
        let sent = tx.write_all(login.stdin_line().as_bytes()).await;
        let probe = Self {
            stdin: Some(tx),
            stopped,
            task,
            raw,
            origin,
            interval_ms: interval_ns as f64 / 1e6,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if sent.is_ok() && probe.raw.lock().is_ok_and(|r| !r.lines.is_empty()) {
                return Ok(probe);
            }
            if probe.task.is_finished() || Instant::now() > deadline {
                let name = host.name().to_string();
                return Err(match probe.stop_task(false).await {
                    Err(e) => e,
                    Ok(()) => StepError::remote(
                        &name,
                        "probe",
                        crate::transport::Failure::message("the probe wrote nothing within 15 s", "probe"),
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop_task(mut self, by_tend: bool) -> Result<(), StepError> {
        self.stopped.store(by_tend, std::sync::atomic::Ordering::Relaxed);
        drop(self.stdin.take());
        match (&mut self.task).await {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }

    /// The attempts so far, on the origin's clock.
    pub fn attempts(&self) -> Vec<Attempt> {
        let Ok(r) = self.raw.lock() else {
            return Vec::new();
        };
        // The probe host's clock against the control node's: the smallest lag between an
        // attempt's end and its line's arrival is the best estimate of the offset.
        let offset_ms = r
            .lines
            .iter()
            .map(|(_, _, _, t1, _, at)| {
                at.saturating_duration_since(self.origin).as_secs_f64() * 1e3 - *t1 as f64 / 1e6
            })
            .fold(f64::INFINITY, f64::min);
        r.lines
            .iter()
            .map(|(seq, ok, t0, t1, rest, _)| Attempt {
                seq: *seq,
                ok: *ok,
                start_ms: *t0 as f64 / 1e6 + offset_ms,
                end_ms: *t1 as f64 / 1e6 + offset_ms,
                server_id: if *ok { rest.parse().ok() } else { None },
                error: if *ok { String::new() } else { rest.clone() },
            })
            .collect()
    }

    /// Stops the probe; its attempts.
    pub async fn stop(self) -> (Vec<Attempt>, Result<(), StepError>) {
        let attempts = self.attempts();
        let r = self.stop_task(true).await;
        (attempts, r)
    }

    /// Whether the last `steady` of attempts, ending after `since`, all succeeded.
    pub fn steady(&self, since_ms: f64, steady: Duration) -> bool {
        let a = self.attempts();
        let Some(last) = a.last() else { return false };
        let from = last.end_ms - steady.as_secs_f64() * 1e3;
        from >= since_ms && a.iter().filter(|x| x.end_ms >= from).all(|x| x.ok)
    }
}

/// What the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    /// Writes attempted.
    pub attempts: usize,
    /// Writes acknowledged.
    pub acknowledged: usize,
    /// Writes that failed at the client.
    pub failed: usize,
    /// The outage as the client saw it: from the last acknowledged write before the first
    /// failure to the first acknowledged write after the last failure (with no failure, the
    /// longest wait between two acknowledgements), in milliseconds.
    pub rto_ms: u64,
    /// When the outage began and ended (ms from the origin).
    pub outage: (f64, f64),
    /// The median write's duration, ms.
    pub latency_p50_ms: f64,
    /// The last write was acknowledged: writes recovered (else `rto_ms` is only how long the
    /// probe watched).
    pub recovered: bool,
}

/// RTO from the attempts (in sequence order).
pub fn outage(attempts: &[Attempt]) -> Seen {
    let acked: Vec<&Attempt> = attempts.iter().filter(|a| a.ok).collect();
    let first_fail = attempts.iter().position(|a| !a.ok);
    let last_fail = attempts.iter().rposition(|a| !a.ok);
    let (from, to) = match (first_fail, last_fail) {
        (Some(f), Some(l)) => {
            let before = attempts[..f]
                .iter()
                .rev()
                .find(|a| a.ok)
                .map_or(attempts[f].start_ms, |a| a.end_ms);
            let after = attempts[l..]
                .iter()
                .find(|a| a.ok)
                .map_or(attempts[l].end_ms, |a| a.end_ms);
            (before, after)
        }
        _ => acked
            .windows(2)
            .map(|w| (w[0].end_ms, w[1].end_ms))
            .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
            .unwrap_or((0.0, 0.0)),
    };
    let mut lat: Vec<f64> = acked.iter().map(|a| a.end_ms - a.start_ms).collect();
    lat.sort_by(f64::total_cmp);
    Seen {
        attempts: attempts.len(),
        acknowledged: acked.len(),
        failed: attempts.len() - acked.len(),
        rto_ms: (to - from).max(0.0).round() as u64,
        outage: (from, to),
        latency_p50_ms: lat.get(lat.len() / 2).copied().unwrap_or(0.0),
        recovered: attempts.last().is_some_and(|a| a.ok),
    }
}

/// The acknowledged sequence numbers of `run` that the server `db` does not have (RPO), and
/// the number of rows it has that were never acknowledged (writes whose answer was lost).
pub async fn missing(db: &Db, table: &str, run: &str, attempts: &[Attempt]) -> Result<(Vec<u64>, usize), StepError> {
    let rows = db
        .one(
            "probe rows",
            &format!(
                "SELECT seq FROM {table} WHERE run = {} ORDER BY seq",
                crate::migrate::db::text(run)
            ),
        )
        .await?;
    let have: std::collections::BTreeSet<u64> = rows
        .rows
        .iter()
        .filter_map(|r| r.first().cloned().flatten())
        .filter_map(|s| s.parse().ok())
        .collect();
    let acked: std::collections::BTreeSet<u64> = attempts.iter().filter(|a| a.ok).map(|a| a.seq).collect();
    Ok((
        acked.difference(&have).copied().collect(),
        have.difference(&acked).count(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(seq: u64, ok: bool, start: f64) -> Attempt {
        Attempt {
            seq,
            ok,
            start_ms: start,
            end_ms: start + 5.0,
            server_id: ok.then_some(1),
            error: String::new(),
        }
    }

    #[test]
    fn the_outage_runs_from_the_last_ack_before_to_the_first_ack_after() {
        let at = [
            a(1, true, 0.0),
            a(2, true, 50.0),
            a(3, false, 100.0),
            a(4, false, 150.0),
            a(5, true, 200.0),
            a(6, true, 250.0),
        ];
        let s = outage(&at);
        assert_eq!((s.attempts, s.acknowledged, s.failed), (6, 4, 2));
        assert_eq!(s.outage, (55.0, 205.0));
        assert_eq!(s.rto_ms, 150);
        assert_eq!(s.latency_p50_ms, 5.0);
    }

    #[test]
    fn without_a_failure_the_longest_wait_between_acks_counts() {
        let at = [a(1, true, 0.0), a(2, true, 50.0), a(3, true, 400.0), a(4, true, 450.0)];
        assert_eq!(outage(&at).rto_ms, 350);
    }

    #[test]
    fn probe_lines_are_read_and_others_ignored() {
        assert_eq!(parse("ok 3 100 200 2"), Some((3, true, 100, 200, "2".into())));
        assert_eq!(
            parse("fail 4 100 200 ERROR 1290 (HY000): read-only"),
            Some((4, false, 100, 200, "ERROR 1290 (HY000): read-only".into()))
        );
        assert_eq!(parse("."), None);
    }
}
