//! The drill's report as one self-contained HTML file (inline CSS and SVG, nothing fetched):
//! RTO and RPO up front, then the timeline of every probe write (acknowledged or failed) under
//! the steps of the failover, then the tables. It is what goes into the incident folder or the
//! change ticket, and opens anywhere.

use super::probe::Attempt;
use super::switch::Phase;
use crate::output::html::{esc, page};
use std::fmt::Write as _;

/// What the report shows.
pub struct Drill<'a> {
    /// `drill switchover`, `drill kill-primary`.
    pub kind: &'a str,
    /// The cluster.
    pub cluster: &'a str,
    /// Old and new primary.
    pub from: &'a str,
    /// The new primary (empty when it failed before one).
    pub to: &'a str,
    /// When it ran (RFC 3339).
    pub at: &'a str,
    /// `switched` or the error.
    pub outcome: &'a str,
    /// RTO.
    pub rto_ms: u64,
    /// The outage (ms from the start).
    pub outage: (f64, f64),
    /// Acknowledged writes missing on the new primary (`None`: not counted).
    pub rpo_missing: Option<&'a [u64]>,
    /// The probe's interval.
    pub interval_ms: f64,
    /// Every probe write.
    pub attempts: &'a [Attempt],
    /// Every step.
    pub phases: &'a [Phase],
}

/// Colours of the steps, in turn.
const PHASE_COLOURS: [&str; 6] = ["#4e79a7", "#f28e2b", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

/// The report.
pub fn html(d: &Drill<'_>) -> String {
    let end = d
        .attempts
        .iter()
        .map(|a| a.end_ms)
        .chain(d.phases.iter().map(|p| p.end_ms as f64))
        .fold(1.0_f64, f64::max);
    let (w, left, right) = (960.0, 110.0, 20.0);
    let x = |ms: f64| left + (ms.max(0.0) / end) * (w - left - right);
    let mut svg = String::new();
    let lanes = d.phases.len().max(1) as f64;
    let phase_h = 18.0;
    let probe_y = 30.0 + lanes * (phase_h + 4.0) + 20.0;
    let h = probe_y + 90.0;
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="timeline">"#
    );
    // The outage, shaded across the chart.
    let _ = write!(
        svg,
        r##"<rect x="{:.1}" y="20" width="{:.1}" height="{:.1}" fill="#fde2e2"/><text x="{:.1}" y="14" class="rto">RTO {} ms</text>"##,
        x(d.outage.0),
        (x(d.outage.1) - x(d.outage.0)).max(1.0),
        h - 40.0,
        x(d.outage.0),
        d.rto_ms
    );
    for (i, p) in d.phases.iter().enumerate() {
        let y = 30.0 + i as f64 * (phase_h + 4.0);
        let colour = PHASE_COLOURS[i % PHASE_COLOURS.len()];
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="lab">{}</text><rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{phase_h}" fill="{colour}"><title>{} on {}: {} ms</title></rect>"#,
            left - 8.0,
            y + 13.0,
            esc(&p.name),
            x(p.start_ms as f64),
            (x(p.end_ms as f64) - x(p.start_ms as f64)).max(2.0),
            esc(&p.name),
            esc(&p.host),
            p.end_ms.saturating_sub(p.start_ms)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" class="lab">probe writes</text>"#,
        left - 8.0,
        probe_y + 24.0
    );
    for a in d.attempts {
        let (colour, y, hh) = if a.ok {
            ("#2e7d32", probe_y, 20.0)
        } else {
            ("#c62828", probe_y + 22.0, 20.0)
        };
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{y:.1}" width="3" height="{hh}" fill="{colour}"><title>#{} {} at {:.0} ms{}</title></rect>"#,
            x(a.start_ms),
            a.seq,
            if a.ok { "acknowledged" } else { "failed" },
            a.start_ms,
            if a.error.is_empty() {
                String::new()
            } else {
                format!(": {}", esc(&a.error))
            }
        );
    }
    // The time axis, every second.
    let axis_y = probe_y + 56.0;
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="#555"/>"##,
        w - right
    );
    let mut t = 0.0;
    while t <= end {
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="{axis_y}" x2="{0:.1}" y2="{1}" stroke="#555"/><text x="{0:.1}" y="{2}" class="tick">{3:.0} s</text>"##,
            x(t),
            axis_y + 5.0,
            axis_y + 18.0,
            t / 1000.0
        );
        t += 1000.0;
    }
    svg.push_str("</svg>");

    let acked = d.attempts.iter().filter(|a| a.ok).count();
    let rpo = match d.rpo_missing {
        Some([]) => "0 — no acknowledged write is missing".to_string(),
        Some(m) => format!(
            "{} acknowledged write(s) missing: {}",
            m.len(),
            m.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
        None => "not counted (the new primary could not be read)".into(),
    };
    let mut phases = String::new();
    for p in d.phases {
        let _ = write!(
            phases,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(&p.host),
            p.start_ms,
            p.end_ms,
            p.end_ms.saturating_sub(p.start_ms)
        );
    }
    let mut failed = String::new();
    for a in d.attempts.iter().filter(|a| !a.ok).take(100) {
        let _ = write!(
            failed,
            "<tr><td>{}</td><td>{:.0}</td><td>{}</td></tr>",
            a.seq,
            a.start_ms,
            esc(&a.error)
        );
    }
    let title = format!(
        "tend {}: {} → {}",
        d.kind,
        d.from,
        if d.to.is_empty() { "?" } else { d.to }
    );
    let body = format!(
        r#"<h1>{title}</h1>
<div class="meta">cluster {cluster} · {at} · outcome: {outcome}</div>
<div class="big"><div>RTO<b>{rto} ms</b>from the last acknowledged write before the outage to the first after it</div>
<div>RPO<b>{rpo_n}</b>{rpo}</div>
<div>Probe<b>{acked} / {total}</b>writes acknowledged, one every {interval:.0} ms</div></div>
{svg}
<h2>Steps</h2>
<table><tr><th>step</th><th>host</th><th>start (ms)</th><th>end (ms)</th><th>took (ms)</th></tr>{phases}</table>
<h2>Failed writes</h2>
<table><tr><th>seq</th><th>at (ms)</th><th>error</th></tr>{failed}</table>"#,
        title = esc(&title),
        cluster = esc(d.cluster),
        at = esc(d.at),
        outcome = esc(d.outcome),
        rto = d.rto_ms,
        rpo_n = d.rpo_missing.map_or_else(|| "?".to_string(), |m| m.len().to_string()),
        total = d.attempts.len(),
        interval = d.interval_ms,
    );
    page(&title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_holds_the_chart_and_escapes_what_the_servers_said() {
        let attempts = [
            Attempt {
                seq: 1,
                ok: true,
                start_ms: 0.0,
                end_ms: 10.0,
                server_id: Some(1),
                error: String::new(),
            },
            Attempt {
                seq: 2,
                ok: false,
                start_ms: 50.0,
                end_ms: 60.0,
                server_id: None,
                error: "ERROR 1290 <read-only>".into(),
            },
        ];
        let phases = [Phase {
            name: "demote".into(),
            host: "h8".into(),
            start_ms: 40,
            end_ms: 90,
        }];
        let text = html(&Drill {
            kind: "drill switchover",
            cluster: "db",
            from: "h8",
            to: "h9",
            at: "2026-12-02T03:00:00Z",
            outcome: "switched",
            rto_ms: 400,
            outage: (10.0, 410.0),
            rpo_missing: Some(&[]),
            interval_ms: 50.0,
            attempts: &attempts,
            phases: &phases,
        });
        assert!(text.contains("<svg") && text.contains("RTO 400 ms"));
        assert!(text.contains("ERROR 1290 &lt;read-only&gt;"));
        assert!(!text.contains("<read-only>"));
        assert!(text.contains("#c62828") && text.contains("#2e7d32"));
        assert!(!text.contains("http://") || text.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    }
}
