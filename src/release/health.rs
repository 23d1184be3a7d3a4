//! The health gate: the control node asks the app itself (not through the balancer) until it
//! answers the expected status and body, or the time is up.

use super::settings::HealthCheck;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Why a host did not pass its health gate: the last answer seen.
#[derive(Debug, Clone, thiserror::Error)]
#[error("health check {url} failed after {}s: {last}", waited.as_secs())]
pub struct Unhealthy {
    /// The URL asked.
    pub url: String,
    /// How long it was asked for.
    pub waited: Duration,
    /// The last answer (status and body excerpt) or connection error.
    pub last: String,
}

/// Polls `check` until it passes; returns how long that took.
pub async fn wait_healthy(
    client: &reqwest::Client,
    check: &HealthCheck,
    cancel: &CancellationToken,
) -> Result<Duration, Unhealthy> {
    let start = Instant::now();
    loop {
        let last = match probe(client, check).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(why) => why,
        };
        if start.elapsed() >= check.timeout || cancel.is_cancelled() {
            return Err(Unhealthy {
                url: check.url.clone(),
                waited: start.elapsed(),
                last: if cancel.is_cancelled() {
                    format!("interrupted; {last}")
                } else {
                    last
                },
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// One request: `Ok` when status and body match, else what was seen.
pub async fn probe(client: &reqwest::Client, check: &HealthCheck) -> Result<(), String> {
    let resp = client
        .get(&check.url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let excerpt: String = body.trim().chars().take(200).collect();
    if status != check.status {
        return Err(format!("status {status} (expected {}), body: {excerpt}", check.status));
    }
    if !check.body.is_empty() && !body.contains(&check.body) {
        return Err(format!("body does not contain `{}`: {excerpt}", check.body));
    }
    Ok(())
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "no answer within 10s".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        e.to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !text.contains(&msg) {
            text.push_str(&format!(": {msg}"));
        }
        source = s.source();
    }
    text
}

/// The HTTP client for health checks: no redirects followed, no proxy from the environment.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())
}
