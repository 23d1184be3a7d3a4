//! The daily report as one self-contained HTML page (inline CSS and SVG, nothing fetched): the
//! headline against the day before, requests and p95 latency per hour with tend's own deploys,
//! migrations, backups and failovers marked where they happened, clicks and sales per
//! category, then the tables. Drawn from the report's JSON, so page and JSON never disagree.

use crate::output::html::{esc, line_with_dots, page};
use serde_json::Value as Json;
use std::fmt::Write as _;

/// Requests per hour.
pub const BAR: &str = "#4e79a7";
/// p95 latency per hour.
pub const LINE: &str = "#f28e2b";
/// Clicks per category.
pub const CATEGORY: &str = "#59a14f";

/// The colour of each kind of tend's runs on the chart.
pub fn mark_colour(kind: &str) -> &'static str {
    match kind {
        "deploy" => "#2e7d32",
        "migration" => "#b07aa1",
        "backup" => "#0277bd",
        _ => "#c62828",
    }
}

fn n(v: &Json) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn f(v: &Json) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        v => v.to_string(),
    }
}

/// `+12.5 %` against `before` (empty when there is nothing to compare).
fn change(now: f64, before: Option<f64>) -> String {
    match before {
        Some(b) if b > 0.0 => format!("{:+.1} % on the day before", (now - b) / b * 100.0),
        _ => String::new(),
    }
}

/// The hourly chart: bars of requests, the p95 line, and tend's runs as marks.
fn hourly(r: &Json) -> String {
    let hours = r["hours"].as_array().cloned().unwrap_or_default();
    let (w, h, left, right, top, bottom) = (960.0, 300.0, 60.0, 60.0, 30.0, 40.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max_req = hours.iter().map(|x| n(&x["requests"])).max().unwrap_or(0).max(1) as f64;
    let max_p95 = hours
        .iter()
        .map(|x| f(&x["latency_ms"]["p95"]))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let slot = plot_w / 24.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="requests per hour">"#
    );
    for (i, x) in hours.iter().enumerate() {
        let req = n(&x["requests"]) as f64;
        let bh = req / max_req * plot_h;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{BAR}"><title>{i:02}:00 {} requests, p95 {} ms</title></rect>"#,
            left + i as f64 * slot + 2.0,
            top + plot_h - bh,
            slot - 4.0,
            req,
            x["latency_ms"]["p95"]
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="tick">{i:02}</text>"#,
            left + (i as f64 + 0.5) * slot,
            top + plot_h + 16.0
        );
    }
    let points: Vec<(f64, f64)> = hours
        .iter()
        .enumerate()
        .filter(|(_, x)| n(&x["requests"]) > 0)
        .map(|(i, x)| {
            (
                left + (i as f64 + 0.5) * slot,
                top + plot_h - f(&x["latency_ms"]["p95"]) / max_p95 * plot_h,
            )
        })
        .collect();
    s.push_str(&line_with_dots(&points, LINE, 4));
    // Axes: requests on the left, p95 on the right.
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#555"/><text x="{}" y="{}" class="lab">{}</text><text x="{}" y="{}" class="lab">0</text><text x="{}" y="{}" class="lab">p95 {max_p95:.0} ms at the top</text><text x="{}" y="{}" class="lab">requests</text>"##,
        top + plot_h,
        w - right,
        top + plot_h,
        left - 6.0,
        top + 10.0,
        max_req,
        left - 6.0,
        top + plot_h,
        w - right,
        top - 12.0,
        left - 6.0,
        top - 12.0,
    );
    for rec in r["tend_runs"].as_array().into_iter().flatten() {
        let minute = f(&rec["minute"]);
        let x = left + minute / 60.0 * slot;
        let colour = mark_colour(rec["kind"].as_str().unwrap_or_default());
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="{colour}" stroke-width="3"><title>{} at {} (exit {})</title></line><text x="{x:.1}" y="{}" class="tick" fill="{colour}">{}</text>"#,
            top - 4.0,
            top + plot_h,
            esc(rec["command"].as_str().unwrap_or_default()),
            esc(rec["start"].as_str().unwrap_or_default()),
            text(&rec["exit_code"]),
            top - 8.0,
            esc(rec["kind"].as_str().unwrap_or_default()),
        );
    }
    s.push_str("</svg>");
    s
}

/// Clicks per category as horizontal bars.
fn categories(rows: &[Json]) -> String {
    let max = rows.iter().map(|c| n(&c["clicks"])).max().unwrap_or(0).max(1) as f64;
    let (w, left, bar_h) = (960.0, 160.0, 22.0);
    let h = rows.len() as f64 * (bar_h + 6.0) + 10.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="clicks per category">"#
    );
    for (i, c) in rows.iter().enumerate() {
        let y = 5.0 + i as f64 * (bar_h + 6.0);
        let clicks = n(&c["clicks"]);
        let bw = clicks as f64 / max * (w - left - 120.0);
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="lab">{}</text><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="{bar_h}" fill="{CATEGORY}"/><text x="{:.1}" y="{:.1}" class="lab" style="text-anchor:start">{clicks}</text>"#,
            left - 8.0,
            y + 15.0,
            esc(c["category"].as_str().unwrap_or_default()),
            left + bw + 6.0,
            y + 15.0,
        );
    }
    s.push_str("</svg>");
    s
}

/// A table's columns: (key, heading).
type Columns<'a> = &'a [(&'a str, &'a str)];

/// A table of `rows` with `columns` (key, heading); numbers right-aligned.
fn table(rows: &[Json], columns: &[(&str, &str)]) -> String {
    let mut s = String::from("<table><tr>");
    for (_, title) in columns {
        let _ = write!(s, "<th>{}</th>", esc(title));
    }
    s.push_str("</tr>");
    for row in rows {
        s.push_str("<tr>");
        for (key, _) in columns {
            let v = key.split('.').fold(row, |v, k| &v[k]);
            let class = if v.is_number() { " class=\"n\"" } else { "" };
            let _ = write!(s, "<td{class}>{}</td>", esc(&text(v)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// The page of report `r` (`tend report daily --format json`'s object).
pub fn render(r: &Json) -> String {
    let date = r["date"].as_str().unwrap_or_default();
    let prev = &r["compare"]["previous_day"];
    let before = |key: &str| (!prev.is_null()).then(|| f(&prev[key]));
    let requests = n(&r["requests"]);
    let share = |x: u64| {
        if requests == 0 {
            0.0
        } else {
            x as f64 / requests as f64 * 100.0
        }
    };
    let mut body = format!(
        r#"<h1>Daily report {date}</h1>
<div class="meta">{hosts} access log(s) · {bytes} bytes sent · {unparsed} line(s) not of the format</div>
<div class="big"><div>Requests<b>{requests}</b>{rc}</div>
<div>Visitors<b>{visitors}</b>{vc}</div>
<div>5xx<b>{e5:.2} %</b>{n5} answers</div>
<div>Latency p95<b>{p95} ms</b>p50 {p50} ms · p99 {p99} ms · max {max} ms</div>
<div>Conversion<b>{conv:.1} %</b>{reached} of {viewers} product viewers reached checkout</div>"#,
        date = esc(date),
        hosts = n(&r["hosts"]),
        bytes = n(&r["bytes"]),
        unparsed = n(&r["unparsed_lines"]),
        rc = change(requests as f64, before("requests")),
        visitors = n(&r["visitors"]),
        vc = change(f(&r["visitors"]), before("visitors")),
        e5 = share(n(&r["status"]["5xx"])),
        n5 = n(&r["status"]["5xx"]),
        p95 = r["latency_ms"]["p95"],
        p50 = r["latency_ms"]["p50"],
        p99 = r["latency_ms"]["p99"],
        max = r["latency_ms"]["max"],
        conv = f(&r["conversion"]["rate"]) * 100.0,
        reached = n(&r["conversion"]["reached_checkout"]),
        viewers = n(&r["conversion"]["product_viewers"]),
    );
    if let Some(sales) = r["sales"].as_array() {
        let revenue: f64 = sales.iter().map(|s| f(&s["revenue"])).sum();
        let items: u64 = sales.iter().map(|s| n(&s["items"])).sum();
        let _ = write!(
            body,
            "<div>Sales<b>{revenue:.2}</b>{items} item(s), read from {}</div>",
            esc(r["sales_from"].as_str().unwrap_or_default())
        );
    }
    body.push_str("</div>\n<h2>Requests and p95 latency per hour</h2>\n");
    let _ = write!(
        body,
        r#"<div class="meta"><span style="color:{BAR}">■ requests</span> · <span style="color:{LINE}">━ p95 latency</span> · tend's runs: <span style="color:{}">deploy</span>, <span style="color:{}">migration</span>, <span style="color:{}">backup</span>, <span style="color:{}">failover</span></div>"#,
        mark_colour("deploy"),
        mark_colour("migration"),
        mark_colour("backup"),
        mark_colour("failover")
    );
    body.push_str(&hourly(r));
    let cats = r["categories"].as_array().cloned().unwrap_or_default();
    body.push_str("\n<h2>Clicks per category</h2>\n");
    body.push_str(&categories(&cats));
    if let Some(sales) = r["sales"].as_array() {
        body.push_str("\n<h2>Sales per category</h2>\n");
        let columns: Vec<String> = sales
            .first()
            .and_then(Json::as_object)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let cols: Vec<(&str, &str)> = columns.iter().map(|c| (c.as_str(), c.as_str())).collect();
        body.push_str(&table(sales, &cols));
    } else if let Some(e) = r["sales_error"].as_str() {
        let _ = write!(body, "\n<h2>Sales per category</h2>\n<p>not read: {}</p>", esc(e));
    }
    let empty = Vec::new();
    let rows = |key: &str| r[key].as_array().unwrap_or(&empty).as_slice();
    let sections: [(&str, &str, Columns); 7] = [
        (
            "tend_runs",
            "tend's runs this day",
            &[
                ("start", "start"),
                ("command", "command"),
                ("kind", "kind"),
                ("exit_code", "exit"),
            ],
        ),
        (
            "url_groups",
            "Latency per URL group (ms)",
            &[
                ("group", "group"),
                ("requests", "requests"),
                ("latency_ms.p50", "p50"),
                ("latency_ms.p95", "p95"),
                ("latency_ms.p99", "p99"),
                ("latency_ms.max", "max"),
            ],
        ),
        (
            "products",
            "Top products",
            &[("category", "category"), ("id", "id"), ("clicks", "clicks")],
        ),
        ("top_urls", "Top URLs", &[("url", "URL"), ("requests", "requests")]),
        (
            "top_referrers",
            "Top referrers",
            &[("referrer", "referrer"), ("requests", "requests")],
        ),
        (
            "top_agents",
            "Top user agents",
            &[("agent", "user agent"), ("requests", "requests")],
        ),
        (
            "upstream_errors",
            "5xx by upstream",
            &[("upstream", "upstream"), ("requests", "requests")],
        ),
    ];
    for (key, title, columns) in sections {
        if rows(key).is_empty() {
            continue;
        }
        let _ = write!(body, "\n<h2>{}</h2>\n{}", esc(title), table(rows(key), columns));
    }
    let status: Vec<Json> = (1..=5)
        .map(|c| serde_json::json!({"class": format!("{c}xx"), "requests": r["status"][format!("{c}xx")]}))
        .collect();
    let _ = write!(
        body,
        "\n<h2>Status</h2>\n{}",
        table(&status, &[("class", "class"), ("requests", "requests")])
    );
    let compare: Vec<Json> = ["previous_day", "week_before"]
        .iter()
        .filter(|k| !r["compare"][**k].is_null())
        .map(|k| r["compare"][*k].clone())
        .collect();
    if !compare.is_empty() {
        let _ = write!(
            body,
            "\n<h2>Compared</h2>\n{}",
            table(
                &compare,
                &[
                    ("date", "date"),
                    ("requests", "requests"),
                    ("visitors", "visitors"),
                    ("latency_ms.p95", "p95 (ms)")
                ]
            )
        );
    }
    page(&format!("tend daily report {date}"), &body)
}
