//! The daily statistics report: what the shop's access logs of one day say (requests,
//! visitors, statuses, bytes, hours, top URLs, referrers and agents, errors by upstream,
//! clicks per product category and product, conversion from product view to checkout,
//! latency percentiles overall, per hour and per URL group), compared with the day before and
//! the same weekday a week before. Read from the log store `tend logs collect` fills.

pub mod access;
pub mod histogram;
pub mod html;
pub mod records;
pub mod sales;

use histogram::Histogram;
use serde_json::{Value as Json, json};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The most URL groups a report keeps latencies for; further first path segments (a scan of
/// random paths) are counted together as `(other)`.
const MAX_GROUPS: usize = 100;

/// Maps keyed by what the lines say: a fast hash, seeded per process.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A product-page pattern (`/product/{category}/{id}`), split once.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    Category,
    Id,
    Any,
}

impl Pattern {
    /// `{category}` and `{id}` stand for one path segment each, `{...}` for any other.
    pub fn new(text: &str) -> Self {
        let segments = text
            .split('/')
            .map(|s| match s {
                "{category}" => Segment::Category,
                "{id}" => Segment::Id,
                s if s.starts_with('{') && s.ends_with('}') => Segment::Any,
                s => Segment::Literal(s.as_bytes().to_vec()),
            })
            .collect();
        Self {
            text: text.to_string(),
            segments,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `path`'s category and id.
    pub fn matches<'a>(&self, path: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
        let mut s = path.split(|&b| b == b'/');
        let (mut category, mut id) = (None, None);
        for seg in &self.segments {
            let part = s.next()?;
            match seg {
                Segment::Literal(l) if l.as_slice() == part => {}
                Segment::Literal(_) => return None,
                _ if part.is_empty() => return None,
                Segment::Category => category = Some(part),
                Segment::Id => id = Some(part),
                Segment::Any => {}
            }
        }
        if s.next().is_some() {
            return None;
        }
        Some((category?, id.unwrap_or_default()))
    }
}

/// What the report looks for in URLs, and how lines are read.
#[derive(Debug, Clone)]
pub struct Options {
    /// The shop's product pages (`/product/{category}/{id}`).
    pub product_pattern: Pattern,
    /// The checkout page's path (`/checkout`): conversion is the share of the visitors who
    /// viewed a product that reached it.
    pub checkout_path: String,
    /// Rows in each top list.
    pub top: usize,
    /// The access log's format.
    pub format: access::Format,
    /// Only lines of this day count (files given by name may hold several days).
    pub only: Option<jiff::civil::Date>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            product_pattern: Pattern::new("/product/{category}/{id}"),
            checkout_path: "/checkout".into(),
            top: 10,
            format: access::Format::default(),
            only: None,
        }
    }
}

/// Requests and latencies of one URL group.
#[derive(Debug, Clone, Default)]
struct Group {
    requests: u64,
    latency: Histogram,
}

/// (category, id) and clicks.
type ProductClicks<'a> = ((&'a Vec<u8>, &'a Vec<u8>), u64);

/// A day's counts; days and hosts add up.
#[derive(Debug, Clone)]
pub struct Day {
    requests: u64,
    unparsed: u64,
    other_days: u64,
    bytes: u64,
    status: [u64; 6],
    visitors: HashSet<u64, foldhash::fast::RandomState>,
    hours: Vec<(u64, Histogram)>,
    latency: Histogram,
    urls: Map<Vec<u8>, u64>,
    referers: Map<Vec<u8>, u64>,
    agents: Map<Vec<u8>, u64>,
    upstream_errors: Map<Vec<u8>, u64>,
    categories: Map<Vec<u8>, u64>,
    /// Clicks per id, per category.
    products: Map<Vec<u8>, Map<Vec<u8>, u64>>,
    /// Keyed by the path's first segment.
    groups: Map<Vec<u8>, Group>,
    product_group: Group,
    other_group: Group,
    viewers: HashSet<u64, foldhash::fast::RandomState>,
    buyers: HashSet<u64, foldhash::fast::RandomState>,
    /// The first line's time zone (minutes east of UTC).
    zone_minutes: Option<i32>,
}

impl Default for Day {
    fn default() -> Self {
        Self {
            requests: 0,
            unparsed: 0,
            other_days: 0,
            bytes: 0,
            status: [0; 6],
            visitors: HashSet::default(),
            hours: vec![(0, Histogram::default()); 24],
            latency: Histogram::default(),
            urls: Map::default(),
            referers: Map::default(),
            agents: Map::default(),
            upstream_errors: Map::default(),
            categories: Map::default(),
            products: Map::default(),
            groups: Map::default(),
            product_group: Group::default(),
            other_group: Group::default(),
            viewers: HashSet::default(),
            buyers: HashSet::default(),
            zone_minutes: None,
        }
    }
}

fn bump(map: &mut Map<Vec<u8>, u64>, key: &[u8]) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_vec(), 1);
        }
    }
}

/// Calls `f` with each line of a log file (gzip members, or plain text), without its newline.
pub fn each_line(path: &Path, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
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
        f(&line);
    }
}

/// A path's first segment (`/static/app.css`: `static`; `/`: empty): the report's URL groups.
pub fn first_segment(path: &[u8]) -> &[u8] {
    path.split(|&b| b == b'/').find(|s| !s.is_empty()).unwrap_or_default()
}

/// Whether `day` (`02/Dec/2026` or `2026-12-02`) is `date`.
pub fn same_day(day: &[u8], date: jiff::civil::Date) -> bool {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
    ];
    let num = |s: &[u8]| {
        s.iter()
            .try_fold(0i32, |n, &b| b.is_ascii_digit().then(|| n * 10 + i32::from(b - b'0')))
    };
    let (y, m, d) = match day {
        [d1, d2, b'/', m @ ..] if m.len() == 8 => (
            num(&m[4..8]),
            MONTHS.iter().position(|x| *x == &m[..3]).map(|i| i as i32 + 1),
            num(&[*d1, *d2]),
        ),
        y if y.len() == 10 && y[4] == b'-' => (num(&y[..4]), num(&y[5..7]), num(&y[8..10])),
        _ => return false,
    };
    (y, m, d)
        == (
            Some(i32::from(date.year())),
            Some(i32::from(date.month())),
            Some(i32::from(date.day())),
        )
}

/// One visitor: address and user agent, hashed the same way in every day of a report.
fn visitor(addr: &[u8], agent: &[u8]) -> u64 {
    use std::hash::BuildHasher as _;
    let mut h = foldhash::fast::FixedState::with_seed(0x7e4d).build_hasher();
    addr.hash(&mut h);
    agent.hash(&mut h);
    h.finish()
}

impl Day {
    /// Counts one line.
    pub fn add_line(&mut self, line: &[u8], opts: &Options) {
        let Some(a) = opts.format.parse(line) else {
            if !line.is_empty() {
                self.unparsed += 1;
            }
            return;
        };
        if let Some(d) = opts.only
            && !same_day(a.day, d)
        {
            self.other_days += 1;
            return;
        }
        self.requests += 1;
        self.bytes += a.bytes;
        if self.zone_minutes.is_none() {
            self.zone_minutes = a.zone_minutes;
        }
        if let Some(c) = self.status.get_mut(usize::from(a.status / 100)) {
            *c += 1;
        }
        let visitor = visitor(a.addr, a.agent);
        self.visitors.insert(visitor);
        let path = match memchr::memchr(b'?', a.target) {
            Some(i) => &a.target[..i],
            None => a.target,
        };
        bump(&mut self.urls, path);
        if a.referer != b"-" {
            bump(&mut self.referers, a.referer);
        }
        bump(&mut self.agents, a.agent);
        if a.status >= 500 {
            bump(&mut self.upstream_errors, a.upstream.unwrap_or(b"-"));
        }
        let group = match opts.product_pattern.matches(path) {
            Some((category, id)) => {
                bump(&mut self.categories, category);
                if !self.products.contains_key(category) {
                    self.products.insert(category.to_vec(), Map::default());
                }
                if let Some(ids) = self.products.get_mut(category) {
                    bump(ids, id);
                }
                self.viewers.insert(visitor);
                &mut self.product_group
            }
            None => {
                if path == opts.checkout_path.as_bytes() {
                    self.buyers.insert(visitor);
                }
                let first = first_segment(path);
                if !self.groups.contains_key(first) && self.groups.len() < MAX_GROUPS {
                    self.groups.insert(first.to_vec(), Group::default());
                }
                self.groups.get_mut(first).unwrap_or(&mut self.other_group)
            }
        };
        group.requests += 1;
        let hour = &mut self.hours[usize::from(a.hour)];
        hour.0 += 1;
        if let Some(us) = a.micros {
            group.latency.add(us);
            self.latency.add(us);
            hour.1.add(us);
        }
    }

    /// Reads a stored log file (gzip members, or plain text).
    pub fn add_file(&mut self, path: &Path, opts: &Options) -> std::io::Result<()> {
        each_line(path, |line| self.add_line(line, opts))
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
        let top = |m: &Map<Vec<u8>, u64>, key: &str| -> Json {
            let mut v: Vec<(&Vec<u8>, &u64)> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            Json::Array(
                v.into_iter()
                    .take(opts.top)
                    .map(|(k, n)| json!({ key: String::from_utf8_lossy(k), "requests": n }))
                    .collect(),
            )
        };
        let mut products: Vec<ProductClicks> = self
            .products
            .iter()
            .flat_map(|(c, ids)| ids.iter().map(move |(id, n)| ((c, id), *n)))
            .collect();
        products.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut categories: Vec<_> = self.categories.iter().collect();
        categories.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut groups: Vec<(String, &Group)> = self
            .groups
            .iter()
            .map(|(first, g)| (format!("/{}", String::from_utf8_lossy(first)), g))
            .chain([
                (opts.product_pattern.as_str().to_string(), &self.product_group),
                ("(other)".to_string(), &self.other_group),
            ])
            .filter(|(_, g)| g.requests > 0)
            .collect();
        groups.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
        let converted = self.viewers.intersection(&self.buyers).count();
        json!({
            "requests": self.requests,
            "visitors": self.visitors.len(),
            "status": status,
            "latency_ms": latency(&self.latency),
            "date": date,
            "bytes": self.bytes,
            "unparsed_lines": self.unparsed,
            "zone_minutes": self.zone_minutes,
            "other_days_lines": self.other_days,
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
            "url_groups": groups.iter().map(|(name, g)| json!({
                "group": name, "requests": g.requests, "latency_ms": latency(&g.latency),
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

/// Where a report's lines come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The log store `tend logs collect` fills: the day's files of every host, and the days
    /// compared with.
    Store(PathBuf),
    /// Access-log files given by name (plain or gzip), all of one day; nothing to compare with.
    Files(Vec<PathBuf>),
}

/// Reads `files` into one day.
pub fn read_files(files: &[PathBuf], opts: &Options) -> std::io::Result<Day> {
    let mut day = Day::default();
    for f in files {
        day.add_file(f, opts)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
    }
    Ok(day)
}

/// The day's report, with the day before and the same weekday a week before when the store
/// has them. `Ok(None)`: no log of that day.
pub fn daily(source: &Source, date: jiff::civil::Date, opts: &Options) -> std::io::Result<Option<Json>> {
    let read = |d: jiff::civil::Date| -> std::io::Result<Option<(Day, usize)>> {
        let files = match source {
            Source::Store(store) => files_of_day(store, &d.to_string()),
            Source::Files(_) if d != date => return Ok(None),
            Source::Files(files) => files.clone(),
        };
        if files.is_empty() {
            return Ok(None);
        }
        Ok(Some((read_files(&files, opts)?, files.len())))
    };
    let Some((day, files)) = read(date)? else {
        return Ok(None);
    };
    let mut report = day.to_json(&date.to_string(), opts);
    let mut compare = serde_json::Map::new();
    for (key, days) in [("previous_day", 1), ("week_before", 7)] {
        let Ok(other) = date.checked_sub(jiff::Span::new().days(days)) else {
            compare.insert(key.into(), Json::Null);
            continue;
        };
        let value = read(other)?.map_or(Json::Null, |(d, _)| {
            let mut h = d.headline();
            if let Some(o) = h.as_object_mut() {
                o.insert("date".into(), json!(other.to_string()));
            }
            h
        });
        compare.insert(key.into(), value);
    }
    if let Some(o) = report.as_object_mut() {
        o.insert("compare".into(), Json::Object(compare));
        // Files read: one per host from the store.
        o.insert("hosts".into(), json!(files));
    }
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_pages_match_the_pattern() {
        let p = Pattern::new("/product/{category}/{id}");
        assert_eq!(p.matches(b"/product/tea/7"), Some((&b"tea"[..], &b"7"[..])));
        for other in [
            &b"/product/tea"[..],
            b"/product/tea/7/x",
            b"/products/tea/7",
            b"/",
            b"/product//7",
        ] {
            assert_eq!(p.matches(other), None, "{}", String::from_utf8_lossy(other));
        }
        let q = Pattern::new("/shop/{lang}/{category}/p{id}");
        assert_eq!(q.matches(b"/shop/de/tea/p7"), None, "a literal is a whole segment");
        let q = Pattern::new("/shop/{lang}/{category}/{id}");
        assert_eq!(q.matches(b"/shop/de/tea/7"), Some((&b"tea"[..], &b"7"[..])));
    }
}
