//! A latency histogram that merges by adding: log-linear buckets (32 per power of two, so a
//! percentile is within 1/32 of the true value), so hosts, hours and days combine exactly and
//! no sample is kept.

/// Values below this are their own bucket.
const LINEAR: u64 = 64;
/// Sub-buckets per power of two above `LINEAR`.
const SUB_BITS: u32 = 5;
/// Enough buckets for 2^48 µs (nine years).
const BUCKETS: usize = 64 + (48 - 6) * 32;

/// Counts of microsecond values. Serialized sparse (`{"buckets": [[index, count], ...],
/// "max": µs}`), so another process's histogram (a load generator on another host) merges
/// exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let m = (v >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    let i = LINEAR as usize + (e as usize - 6) * (1 << SUB_BITS) + m as usize;
    i.min(BUCKETS - 1)
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let j = i - LINEAR as usize;
    let e = (j >> SUB_BITS) as u32 + 6;
    let m = (j & ((1 << SUB_BITS) - 1)) as u64;
    let low = (1u64 << e) + (m << (e - SUB_BITS));
    low + (1u64 << (e - SUB_BITS)) / 2
}

/// The sparse form.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sparse {
    buckets: Vec<(usize, u64)>,
    max: u64,
}

impl serde::Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Sparse {
            buckets: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| (i, *c))
                .collect(),
            max: self.max,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let sparse = Sparse::deserialize(deserializer)?;
        let mut h = Histogram::default();
        for (i, c) in sparse.buckets {
            let slot = h
                .counts
                .get_mut(i)
                .ok_or_else(|| serde::de::Error::custom(format!("bucket {i} out of range")))?;
            *slot += c;
            h.total += c;
        }
        h.max = sparse.max;
        Ok(h)
    }
}

impl Histogram {
    /// Counts one value (µs).
    pub fn add(&mut self, us: u64) {
        if let Some(c) = self.counts.get_mut(index(us)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value, exactly.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), within 1/32; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_thirty_second_and_merge_exactly() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for v in 1..=1000u64 {
            if v % 2 == 0 { a.add(v * 1000) } else { b.add(v * 1000) }
        }
        let mut all = a.clone();
        all.merge(&b);
        assert_eq!(all.count(), 1000);
        assert_eq!(all.max(), 1_000_000);
        for (q, want) in [(0.5, 500_000.0), (0.95, 950_000.0), (0.99, 990_000.0)] {
            let got = all.quantile(q) as f64;
            assert!((got - want).abs() <= want / 32.0, "q{q}: {got} vs {want}");
        }
        for v in [0, 1, 63, 64, 65, 1000, 123_456, 1 << 40] {
            let got = value(index(v)) as f64;
            assert!((got - v as f64).abs() <= (v as f64 / 32.0).max(0.5), "{v}: {got}");
        }
        assert_eq!(Histogram::default().quantile(0.5), 0);
        let text = serde_json::to_string(&all).expect("serializes");
        let back: Histogram = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, all);
        assert!(serde_json::from_str::<Histogram>(r#"{"buckets": [[99999, 1]], "max": 1}"#).is_err());
    }
}
