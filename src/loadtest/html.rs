//! A load test's report as one self-contained HTML page (inline CSS and SVG, nothing fetched):
//! the headline and thresholds, latency over time (p50, p99 and max per second, with the
//! requests and errors of each second under them), and the steps' table. Drawn from the run's
//! record, so page and JSON never disagree.

use crate::output::html::{esc, line_with_dots, page};
use serde_json::Value as Json;
use std::fmt::Write as _;

/// Requests per second.
pub const REQUESTS: &str = "#bab0ac";
/// Errors per second.
pub const ERRORS: &str = "#c62828";
/// p50 per second.
pub const P50: &str = "#4e79a7";
/// p99 per second.
pub const P99: &str = "#f28e2b";
/// max per second.
pub const MAX: &str = "#b07aa1";

fn f(v: &Json) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Latency per second as lines over the requests (and errors) per second as bars.
fn over_time(seconds: &[Json]) -> String {
    let (w, h, left, right, top, bottom) = (960.0, 320.0, 70.0, 20.0, 24.0, 110.0);
    let plot_h = h - top - bottom;
    let n = seconds.len().max(1) as f64;
    let slot = (w - left - right) / n;
    let top_ms = seconds.iter().map(|s| f(&s["max"])).fold(1.0_f64, f64::max);
    let top_req = seconds.iter().map(|s| f(&s["requests"])).fold(1.0_f64, f64::max);
    let y = |ms: f64| top + plot_h - ms / top_ms * plot_h;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="latency over time">"#
    );
    // Requests (grey) and errors (red) per second, in a band under the latency.
    let band = h - bottom + 28.0;
    let band_h = 60.0;
    for (i, sec) in seconds.iter().enumerate() {
        let x = left + i as f64 * slot;
        let rh = f(&sec["requests"]) / top_req * band_h;
        let eh = f(&sec["errors"]) / top_req * band_h;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{rh:.1}" fill="{REQUESTS}"><title>second {i}: {} requests, {} errors</title></rect>"#,
            x + 1.0,
            band + band_h - rh,
            (slot - 2.0).max(1.0),
            sec["requests"],
            sec["errors"]
        );
        if eh > 0.0 {
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{eh:.1}" fill="{ERRORS}"/>"#,
                x + 1.0,
                band + band_h - eh,
                (slot - 2.0).max(1.0)
            );
        }
    }
    // The axis first, the lines over it: a latency near 0 lies on the axis and must show.
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#555"/>"##,
        top + plot_h,
        w - right,
    );
    for (key, colour) in [("max", MAX), ("p99", P99), ("p50", P50)] {
        let points: Vec<(f64, f64)> = seconds
            .iter()
            .enumerate()
            .filter(|(_, sec)| f(&sec["requests"]) > 0.0)
            .map(|(i, sec)| (left + (i as f64 + 0.5) * slot, y(f(&sec[key]))))
            .collect();
        s.push_str(&line_with_dots(&points, colour, 3));
    }
    let _ = write!(
        s,
        r##"<text x="{1:.1}" y="{2:.1}" class="lab">{top_ms:.0} ms</text><text x="{1:.1}" y="{0:.1}" class="lab">0</text><text x="{1:.1}" y="{3:.1}" class="lab">{top_req:.0}/s</text>"##,
        top + plot_h,
        left - 6.0,
        top + 10.0,
        band + 10.0,
    );
    let step = (n / 10.0).ceil().max(1.0) as usize;
    for i in (0..seconds.len()).step_by(step) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="tick">{i} s</text>"#,
            left + (i as f64 + 0.5) * slot,
            top + plot_h + 16.0
        );
    }
    s.push_str("</svg>");
    s
}

/// The page of a run's record (`tend loadtest --format json`'s `record`).
pub fn render(r: &Json) -> String {
    let lat = &r["latency_ms"];
    let model = r["model"].as_str().unwrap_or_default();
    let load = if model == "open" {
        format!(
            "{} journeys/s offered (open model: latency from when each request was due)",
            r["target_rate"]
        )
    } else {
        format!(
            "{} users (closed model: latency from the send; a slow server's tail is under-reported)",
            r["users"]
        )
    };
    let mut body = format!(
        r#"<h1>Load test {name}</h1>
<div class="meta">{base} · {load} · {started} · {seconds} s</div>
<div class="big"><div>Requests<b>{requests}</b>{rate} per second achieved</div>
<div>Errors<b>{errors}</b>connect {connect}, timeout {timeout}, status {status}, other {other}, dropped {dropped}</div>
<div>Latency p99<b>{p99} ms</b>p50 {p50} · p90 {p90} · p95 {p95} · p99.9 {p999} · max {max} ms</div>
<div>Outcome<b>{outcome}</b></div></div>
<h2>Latency per second</h2>
<div class="meta"><span style="color:{P50}">━ p50</span> · <span style="color:{P99}">━ p99</span> · <span style="color:{MAX}">━ max</span> · <span style="color:#8c8c8c">■ requests</span> · <span style="color:{ERRORS}">■ errors</span></div>
"#,
        name = esc(r["scenario"].as_str().unwrap_or_default()),
        base = esc(r["base_url"].as_str().unwrap_or_default()),
        load = esc(&load),
        started = esc(r["started"].as_str().unwrap_or_default()),
        seconds = r["seconds"],
        requests = r["requests"],
        rate = r["rate"],
        errors = r["errors"],
        connect = r["errors_by_kind"]["connect"],
        timeout = r["errors_by_kind"]["timeout"],
        status = r["errors_by_kind"]["status"],
        other = r["errors_by_kind"]["other"],
        dropped = r["errors_by_kind"]["dropped"],
        p50 = lat["p50"],
        p90 = lat["p90"],
        p95 = lat["p95"],
        p99 = lat["p99"],
        p999 = lat["p999"],
        max = lat["max"],
        outcome = esc(r["outcome"].as_str().unwrap_or_default()),
    );
    body.push_str(&over_time(r["per_second"].as_array().map_or(&[][..], Vec::as_slice)));
    body.push_str("\n<h2>Thresholds</h2>\n<table><tr><th>threshold</th><th>measured</th><th></th></tr>");
    for t in r["thresholds"].as_array().into_iter().flatten() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(t["threshold"].as_str().unwrap_or_default()),
            t["value"],
            if t["ok"] == true {
                "held"
            } else {
                "<b style=\"color:#c62828\">broken</b>"
            }
        );
    }
    body.push_str("</table>\n<h2>Steps</h2>\n<table><tr><th>step</th><th>requests</th><th>errors</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max (ms)</th></tr>");
    for (name, st) in r["steps"].as_object().into_iter().flatten() {
        let l = &st["latency_ms"];
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(name),
            st["requests"],
            st["errors"],
            l["p50"],
            l["p90"],
            l["p95"],
            l["p99"],
            l["p999"],
            l["max"]
        );
    }
    body.push_str("</table>");
    page(
        &format!("tend loadtest {}", r["scenario"].as_str().unwrap_or_default()),
        &body,
    )
}
