//! Pass/fail lines for a load test (`p95 < 300ms`, `errors < 0.1%`, `rate >= 50/s`), so a CI
//! step fails when the shop got slower, as it fails when a test breaks.

use super::engine::{Figures, Results};

/// What `--threshold` and a scenario's `thresholds` accept.
pub const HINT: &str =
    "write METRIC OP VALUE: p50|p90|p95|p99|p999|max < 300ms (or 1s), errors < 0.1% (or a count), rate >= 50/s";

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency quantile (0.5 .. 0.999) or the maximum (1.0), in milliseconds.
    Latency(f64),
    /// Errors as a share of requests (%).
    ErrorShare,
    /// Errors counted.
    ErrorCount,
    /// Requests per second achieved.
    Rate,
}

/// One threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written.
    pub text: String,
    /// What it measures.
    pub metric: Metric,
    /// `<`, `<=`, `>`, `>=`.
    pub op: &'static str,
    /// The limit in the metric's unit (ms, %, count, per second).
    pub limit: f64,
}

/// What a threshold found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// The threshold as written.
    pub threshold: String,
    /// The measured value (ms, %, count or per second).
    pub value: f64,
    /// Whether it held.
    pub ok: bool,
}

impl Threshold {
    /// Parses `METRIC OP VALUE`.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let at = t
            .find(['<', '>'])
            .ok_or_else(|| "no comparison (`<`, `<=`, `>`, `>=`)".to_string())?;
        let (name, rest) = t.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            ("<=", v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (">=", v)
        } else if let Some(v) = rest.strip_prefix('<') {
            ("<", v)
        } else {
            (">", &rest[1..])
        };
        let value = value.trim();
        let number = |s: &str| -> Result<f64, String> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("`{}` is not a number", s.trim()))
        };
        let (metric, limit) = match name.trim() {
            "p50" | "p90" | "p95" | "p99" | "p999" | "p99.9" | "max" => {
                let q = match name.trim() {
                    "p50" => 0.5,
                    "p90" => 0.9,
                    "p95" => 0.95,
                    "p99" => 0.99,
                    "max" => 1.0,
                    _ => 0.999,
                };
                let ms = if let Some(v) = value.strip_suffix("ms") {
                    number(v)?
                } else if let Some(v) = value.strip_suffix('s') {
                    number(v)? * 1000.0
                } else {
                    return Err(format!("`{value}` has no unit: write ms or s"));
                };
                (Metric::Latency(q), ms)
            }
            "errors" => match value.strip_suffix('%') {
                Some(v) => (Metric::ErrorShare, number(v)?),
                None => (Metric::ErrorCount, number(value)?),
            },
            "rate" => (Metric::Rate, number(value.strip_suffix("/s").unwrap_or(value))?),
            other => return Err(format!("unknown metric `{other}`")),
        };
        Ok(Threshold {
            text: t.to_string(),
            metric,
            op,
            limit,
        })
    }

    /// Whether `value` holds.
    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            "<" => value < self.limit,
            "<=" => value <= self.limit,
            ">" => value > self.limit,
            _ => value >= self.limit,
        }
    }
}

/// Milliseconds, to the microsecond, from microseconds.
pub fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// The value a threshold reads from a run's figures (`rate`: requests a second achieved).
fn measure(t: &Threshold, all: &Figures, rate: f64) -> f64 {
    match t.metric {
        Metric::Latency(q) if q >= 1.0 => ms(all.latency.max()),
        Metric::Latency(q) => ms(all.latency.quantile(q)),
        Metric::ErrorCount => all.errors.total() as f64,
        Metric::ErrorShare if all.requests + all.errors.dropped == 0 => 0.0,
        Metric::ErrorShare => all.errors.total() as f64 / (all.requests + all.errors.dropped) as f64 * 100.0,
        Metric::Rate => rate,
    }
}

/// Each threshold against a run's results: what `tend loadtest`, each step of `--find-knee`
/// and a deploy's load gate decide by.
pub fn judge(thresholds: &[Threshold], results: &Results) -> Vec<Verdict> {
    let all = results.overall();
    let rate = all.requests as f64 / results.elapsed.as_secs_f64().max(1e-9);
    let rate = (rate * 100.0).round() / 100.0;
    thresholds
        .iter()
        .map(|t| {
            let value = (measure(t, &all, rate) * 1000.0).round() / 1000.0;
            Verdict {
                threshold: t.text.clone(),
                value,
                ok: t.holds(value),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_as_written() {
        let t = Threshold::parse("p95 < 300ms").expect("parses");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Latency(0.95), "<", 300.0));
        assert!(t.holds(299.9) && !t.holds(300.0));
        let t = Threshold::parse("p99<=1.5s").expect("parses");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Latency(0.99), "<=", 1500.0));
        let t = Threshold::parse("errors < 0.1%").expect("parses");
        assert_eq!((t.metric, t.limit), (Metric::ErrorShare, 0.1));
        let t = Threshold::parse("errors <= 3").expect("parses");
        assert_eq!((t.metric, t.limit), (Metric::ErrorCount, 3.0));
        let t = Threshold::parse("rate >= 50/s").expect("parses");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Rate, ">=", 50.0));
        for bad in ["p95 300ms", "p95 < 300", "p42 < 1s", "errors < x%", "rate > -1/s", ""] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }
}
