//! The pieces every HTML report of tend shares (drill reports, daily reports): escaping and the
//! page's frame and style, so that each report is one self-contained file that opens anywhere
//! and fetches nothing.

/// HTML text: `&`, `<`, `>`, `"` and `'` escaped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// An SVG line through `points` with a dot of `radius` on each, in `colour`: the charts'
/// series (hourly p95, latency per second).
pub fn line_with_dots(points: &[(f64, f64)], colour: &str, radius: u32) -> String {
    let path: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let mut s = format!(
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="3"/>"#,
        path.join(" ")
    );
    for (x, y) in points {
        s.push_str(&format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{radius}" fill="{colour}"/>"#
        ));
    }
    s
}

/// The style of every report: text, headline boxes (`.big`), chart labels and tables.
const STYLE: &str = "
body { font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 20px 0 6px; }
.meta { color: #666; margin-bottom: 16px; }
.big { display: flex; flex-wrap: wrap; gap: 24px; margin: 12px 0 20px; }
.big div { border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; }
.big b { display: block; font-size: 26px; }
.lab { font-size: 12px; text-anchor: end; fill: #333; }
.tick { font-size: 11px; text-anchor: middle; fill: #555; }
.rto { font-size: 12px; fill: #c62828; font-weight: bold; }
table { border-collapse: collapse; margin: 8px 0 20px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; font-size: 13px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
";

/// A whole page: `title` (text, escaped here) and `body` (HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
        esc(title)
    )
}
