//! The daily statistics report: what the shop's access logs of one day say (requests,
//! visitors, statuses, bytes, hours, top URLs, referrers and agents, errors by upstream,
//! clicks per product category and product, conversion from product view to checkout,
//! latency percentiles overall, per hour and per URL group), compared with the day before and
//! the same weekday a week before. Read from the log store `tend logs collect` fills.

pub mod access;
pub mod histogram;

use histogram::Histogram;
use serde_json::{Value as Json, json};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// What the report looks for in URLs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The shop's product pages, `{category}` and `{id}` standing for path segments
    /// (`/product/{category}/{id}`).
    pub product_pattern: String,
    /// The checkout page's path (`/checkout`): conversion is the share of the visitors who
    /// viewed a product that reached it.
    pub checkout_path: String,
    /// Rows in each top list.
    pub top: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            product_pattern: "/product/{category}/{id}".into(),
            checkout_path: "/checkout".into(),
            top: 10,
        }
    }
}

/// A day's counts; days and hosts add up.
#[derive(Debug, Clone)]
pub struct Day {
    requests: u64,
    unparsed: u64,
    bytes: u64,
    status: [u64; 6],
    visitors: HashSet<u64>,
    hours: Vec<(u64, Histogram)>,
    latency: Histogram,
    urls: HashMap<Vec<u8>, u64>,
    referers: HashMap<Vec<u8>, u64>,
    agents: HashMap<Vec<u8>, u64>,
    upstream_errors: HashMap<Vec<u8>, u64>,
    categories: HashMap<Vec<u8>, u64>,
    products: HashMap<(Vec<u8>, Vec<u8>), u64>,
    groups: HashMap<String, Histogram>,
    group_requests: HashMap<String, u64>,
    viewers: HashSet<u64>,
    buyers: HashSet<u64>,
}

impl Default for Day {
    fn default() -> Self {
        Self {
            requests: 0,
            unparsed: 0,
            bytes: 0,
            status: [0; 6],
            visitors: HashSet::new(),
            hours: vec![(0, Histogram::default()); 24],
            latency: Histogram::default(),
            urls: HashMap::new(),
            referers: HashMap::new(),
            agents: HashMap::new(),
            upstream_errors: HashMap::new(),
            categories: HashMap::new(),
            products: HashMap::new(),
            groups: HashMap::new(),
            group_requests: HashMap::new(),
            viewers: HashSet::new(),
            buyers: HashSet::new(),
        }
    }
}

fn bump(map: &mut HashMap<Vec<u8>, u64>, key: &[u8]) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_vec(), 1);
        }
    }
}

/// `path`'s category and id under `pattern` (`/product/{category}/{id}`).
fn product<'a>(pattern: &str, path: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    let mut p = pattern.split('/');
    let mut s = path.split(|&b| b == b'/');
    let (mut category, mut id) = (None, None);
    loop {
        match (p.next(), s.next()) {
            (None, None) => break,
            (Some("{category}"), Some(seg)) if !seg.is_empty() => category = Some(seg),
            (Some("{id}"), Some(seg)) if !seg.is_empty() => id = Some(seg),
            (Some(lit), Some(seg)) if lit.as_bytes() == seg => {}
            _ => return None,
        }
    }
    Some((category?, id.unwrap_or_default()))
}

impl Day {
    /// Counts one line.
    pub fn add_line(&mut self, line: &[u8], opts: &Options) {
        let Some(a) = access::parse(line) else {
            if !line.is_empty() {
                self.unparsed += 1;
            }
            return;
        };
        self.requests += 1;
        self.bytes += a.bytes;
        if let Some(c) = self.status.get_mut(usize::from(a.status / 100)) {
            *c += 1;
        }
        let visitor = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            a.addr.hash(&mut h);
            a.agent.hash(&mut h);
            h.finish()
        };
        self.visitors.insert(visitor);
        let path = a.target.split(|&b| b == b'?').next().unwrap_or_default();
        bump(&mut self.urls, path);
        if a.referer != b"-" {
            bump(&mut self.referers, a.referer);
        }
        bump(&mut self.agents, a.agent);
        if a.status >= 500 {
            bump(&mut self.upstream_errors, a.upstream.unwrap_or(b"-"));
        }
        let group = match product(&opts.product_pattern, path) {
            Some((category, id)) => {
                bump(&mut self.categories, category);
                *self.products.entry((category.to_vec(), id.to_vec())).or_default() += 1;
                self.viewers.insert(visitor);
                opts.product_pattern.clone()
            }
            None => {
                if path == opts.checkout_path.as_bytes() {
                    self.buyers.insert(visitor);
                }
                let first = path.split(|&b| b == b'/').find(|s| !s.is_empty());
                format!("/{}", String::from_utf8_lossy(first.unwrap_or_default()))
            }
        };
        *self.group_requests.entry(group.clone()).or_default() += 1;
        let hour = &mut self.hours[usize::from(a.hour)];
        hour.0 += 1;
        if let Some(us) = a.micros {
            self.latency.add(us);
            hour.1.add(us);
            self.groups.entry(group).or_default().add(us);
        }
    }

    /// Reads a stored log file (gzip members, or plain text).
    pub fn add_file(&mut self, path: &Path, opts: &Options) -> std::io::Result<()> {
        let file = std::fs::File::open(path)?;
        let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut r = BufReader::with_capacity(1 << 20, reader);
        let mut line = Vec::with_capacity(512);
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            self.add_line(&line, opts);
        }
    }

    fn headline(&self) -> Json {
        json!({
            "requests": self.requests,
            "visitors": self.visitors.len(),
            "latency_ms": latency(&self.latency),
        })
    }

    /// The report as JSON: the headline fields first, then the sections.
    pub fn to_json(&self, date: &str, opts: &Options) -> Json {
        let status: serde_json::Map<String, Json> =
            (1..=5).map(|c| (format!("{c}xx"), json!(self.status[c]))).collect();
        let top = |m: &HashMap<Vec<u8>, u64>, key: &str| -> Json {
            let mut v: Vec<(&Vec<u8>, &u64)> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            Json::Array(
                v.into_iter()
                    .take(opts.top)
                    .map(|(k, n)| json!({ key: String::from_utf8_lossy(k), "requests": n }))
                    .collect(),
            )
        };
        let mut products: Vec<_> = self.products.iter().collect();
        products.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut categories: Vec<_> = self.categories.iter().collect();
        categories.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut groups: Vec<_> = self.group_requests.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let converted = self.viewers.intersection(&self.buyers).count();
        json!({
            "requests": self.requests,
            "visitors": self.visitors.len(),
            "status": status,
            "latency_ms": latency(&self.latency),
            "date": date,
            "bytes": self.bytes,
            "unparsed_lines": self.unparsed,
            "hours": self.hours.iter().enumerate().map(|(h, (n, hist))| json!({
                "hour": h, "requests": n, "latency_ms": latency(hist),
            })).collect::<Vec<_>>(),
            "top_urls": top(&self.urls, "url"),
            "top_referrers": top(&self.referers, "referrer"),
            "top_agents": top(&self.agents, "agent"),
            "upstream_errors": top(&self.upstream_errors, "upstream"),
            "categories": categories.iter().map(|(c, n)| json!({
                "category": String::from_utf8_lossy(c), "clicks": n,
            })).collect::<Vec<_>>(),
            "products": products.iter().take(opts.top).map(|((c, id), n)| json!({
                "category": String::from_utf8_lossy(c), "id": String::from_utf8_lossy(id), "clicks": n,
            })).collect::<Vec<_>>(),
            "conversion": {
                "product_viewers": self.viewers.len(),
                "reached_checkout": converted,
                "rate": if self.viewers.is_empty() { 0.0 } else { converted as f64 / self.viewers.len() as f64 },
            },
            "url_groups": groups.iter().map(|(g, n)| json!({
                "group": g, "requests": n,
                "latency_ms": latency(self.groups.get(*g).unwrap_or(&Histogram::default())),
            })).collect::<Vec<_>>(),
        })
    }
}

/// p50, p95, p99 and max in milliseconds (three decimals).
fn latency(h: &Histogram) -> Json {
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "p50": ms(h.quantile(0.50)),
        "p95": ms(h.quantile(0.95)),
        "p99": ms(h.quantile(0.99)),
        "max": ms(h.max()),
        "count": h.count(),
    })
}

/// The access-log files of `date` in `store`: every host's `nginx_access/<date>.log.gz`.
pub fn files_of_day(store: &Path, date: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(store)
        .into_iter()
        .flatten()
        .flatten()
        .map(|host| host.path().join("nginx_access").join(format!("{date}.log.gz")))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The day's report of `store`, with the day before and the same weekday a week before when
/// the store has them. `Ok(None)`: no log of that day.
pub fn daily(store: &Path, date: jiff::civil::Date, opts: &Options) -> std::io::Result<Option<Json>> {
    let read = |d: jiff::civil::Date| -> std::io::Result<Option<(Day, usize)>> {
        let files = files_of_day(store, &d.to_string());
        if files.is_empty() {
            return Ok(None);
        }
        let mut day = Day::default();
        for f in &files {
            day.add_file(f, opts)?;
        }
        Ok(Some((day, files.len())))
    };
    let Some((day, hosts)) = read(date)? else {
        return Ok(None);
    };
    let mut report = day.to_json(&date.to_string(), opts);
    let mut compare = serde_json::Map::new();
    for (key, days) in [("previous_day", 1), ("week_before", 7)] {
        let other = date
            .checked_sub(jiff::Span::new().days(days))
            .ok()
            .map(read)
            .transpose()?
            .flatten();
        let value = other.map_or(Json::Null, |(d, _)| {
            let mut h = d.headline();
            if let Some(o) = h.as_object_mut() {
                o.insert(
                    "date".into(),
                    json!(
                        date.checked_sub(jiff::Span::new().days(days))
                            .map(|x| x.to_string())
                            .unwrap_or_default()
                    ),
                );
            }
            h
        });
        compare.insert(key.into(), value);
    }
    if let Some(o) = report.as_object_mut() {
        o.insert("compare".into(), Json::Object(compare));
        o.insert("hosts".into(), json!(hosts));
    }
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_pages_match_the_pattern() {
        let p = "/product/{category}/{id}";
        assert_eq!(product(p, b"/product/tea/7"), Some((&b"tea"[..], &b"7"[..])));
        for other in [&b"/product/tea"[..], b"/product/tea/7/x", b"/products/tea/7", b"/"] {
            assert_eq!(product(p, other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
