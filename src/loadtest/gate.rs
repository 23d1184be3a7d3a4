//! A deploy's load gate (`tend deploy --load-gate SCENARIO`): once the first batch passes its
//! health gate and is back behind the balancer, a short fixed-rate load runs against each of
//! its hosts, and a broken threshold fails the batch as a failed health check would. A release
//! that answers its health page but is ten times slower under load goes no further.

use super::engine::{self, Model, Plan};
use super::scenario::Scenario;
use super::threshold::{self, Threshold, ms};
use std::time::Duration;

/// How long the gate warms a host up before it measures.
pub const WARM_UP: Duration = Duration::from_secs(2);

/// The gate's settings, checked before the deploy starts.
#[derive(Debug, Clone)]
pub struct Gate {
    /// What to send.
    pub scenario: Scenario,
    /// Journeys started per second, on each host of the batch.
    pub rate: f64,
    /// How long.
    pub duration: Duration,
    /// What must hold (the scenario's and the flags').
    pub thresholds: Vec<Threshold>,
}

/// What the gate found on one host.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Every threshold held.
    pub held: bool,
    /// The figures and the thresholds in one line.
    pub summary: String,
}

/// The origin of a URL: the load goes to the host the health check asks
/// (`http://10.0.0.8:8080/health.jsp` → `http://10.0.0.8:8080`).
pub fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let o = u.origin();
    o.is_tuple().then(|| o.ascii_serialization())
}

impl Gate {
    /// Runs the load against `base_url` and judges it, after a warm-up that is not measured:
    /// one user for [`WARM_UP`], so that a freshly started app's first requests (a JSP compiled
    /// on its first call, caches filled) do not fail a release that is quick once warm.
    pub async fn run(&self, base_url: &str, cancel: tokio_util::sync::CancellationToken) -> Result<Finding, String> {
        let plan = Plan {
            scenario: self.scenario.clone(),
            base_url: base_url.trim_end_matches('/').to_string(),
            model: Model::Closed { users: 1 },
            duration: WARM_UP,
            ramp: Duration::ZERO,
            timeout: Duration::from_secs(10),
            max_in_flight: 10_000,
        };
        let warm = engine::run(plan.clone(), cancel.clone(), |_| {})
            .await?
            .overall()
            .requests;
        let plan = Plan {
            model: Model::Open { rate: self.rate },
            duration: self.duration,
            ..plan
        };
        let results = engine::run(plan, cancel, |_| {}).await?;
        let verdicts = threshold::judge(&self.thresholds, &results);
        let all = results.overall();
        let said: Vec<String> = verdicts
            .iter()
            .map(|v| {
                if v.ok {
                    format!("{} held ({})", v.threshold, v.value)
                } else {
                    format!("{} broke (measured {})", v.threshold, v.value)
                }
            })
            .collect();
        Ok(Finding {
            held: verdicts.iter().all(|v| v.ok),
            summary: format!(
                "{warm} warm-up requests, then {} requests at {}/s for {}s, {} errors, p50 {} ms, p95 {} ms, p99 {} ms: {}",
                all.requests,
                self.rate,
                self.duration.as_secs_f64(),
                all.errors.total(),
                ms(all.latency.quantile(0.5)),
                ms(all.latency.quantile(0.95)),
                ms(all.latency.quantile(0.99)),
                said.join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_goes_where_the_health_check_looks() {
        assert_eq!(
            origin("http://10.0.0.8:8080/health.jsp").as_deref(),
            Some("http://10.0.0.8:8080")
        );
        assert_eq!(origin("https://app1/health").as_deref(), Some("https://app1"));
        assert_eq!(origin("not a url"), None);
    }
}
