//! `--shard K/N`: one fleet-wide job split over N control nodes, each taking the hosts of its
//! shard. A host's shard depends only on its inventory name and N (a hash), never on the
//! inventory's order or on which other hosts exist, so every control node computes the same
//! split without talking to the others, and a host added to the inventory moves no other host.

use sha2::{Digest, Sha256};
use std::str::FromStr;

/// Shard `index` (1-based, as written) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// Whether host `name` belongs to this shard.
    pub fn holds(&self, name: &str) -> bool {
        Self::of(name, self.count) == self.index
    }

    /// The shard (1-based) host `name` belongs to among `count`.
    pub fn of(name: &str, count: u32) -> u32 {
        let digest = Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32 + 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a shard: write K/N with 1 <= K <= N (for example 2/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_is_in_exactly_one_shard_and_the_split_is_even_enough() {
        let names: Vec<String> = (1..=1000).map(|i| format!("web{i:04}.shop.example")).collect();
        let mut sizes = [0usize; 4];
        for n in &names {
            let holders: Vec<u32> = (1..=4).filter(|k| Shard { index: *k, count: 4 }.holds(n)).collect();
            assert_eq!(holders.len(), 1, "{n}");
            sizes[holders[0] as usize - 1] += 1;
        }
        assert!(sizes.iter().all(|s| (200..300).contains(s)), "{sizes:?}");
        // Fixed across runs and builds: the hash is SHA-256, not the process's random hasher.
        assert_eq!(
            Shard::of("web0001.shop.example", 4),
            Shard::of("web0001.shop.example", 4)
        );
        assert_eq!(Shard::of("h1", 1), 1);
    }

    #[test]
    fn shards_are_written_k_slash_n() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
