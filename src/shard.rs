//! `--shard I/N`: which customers a process handles when the work is spread
//! over N processes (DESIGN §8). A customer belongs to one shard, chosen by
//! a stable hash of its normalized mobile, so every purchase of a customer
//! meets its customer in the same shard, whatever the input order.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0-based). `0/1` is the whole population.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Most shards a run may be cut into: far beyond any cluster, small enough
/// that a typo (`--shard 0/40000000`) is caught.
pub const MAX_SHARDS: u32 = 65_536;

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether the customer with this normalized mobile is in the shard.
    pub fn contains(self, normalized_mobile: &str) -> bool {
        self.count <= 1 || of(normalized_mobile, self.count) == self.index
    }

    /// The shard that keeps what belongs to no customer (rejected rows):
    /// counted once, by shard 0.
    pub fn keeps_rejects(self) -> bool {
        self.index == 0
    }
}

/// Shard of a normalized mobile among `count`: SplitMix64's finalizer over
/// [`crate::mobile::key`], fixed forever (shard files depend on it).
pub fn of(normalized_mobile: &str, count: u32) -> u32 {
    let mut z = crate::mobile::key(normalized_mobile).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % u64::from(count.max(1))) as u32
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(raw: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "`{raw}` is not a shard: expected I/N with 0 <= I < N <= {MAX_SHARDS} (e.g. 0/4)"
            )
        };
        let (i, n) = raw.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("1/4".parse(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2", "0/70000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_hash_is_pinned_and_spreads_evenly() {
        // Shard files written today must be read the same way tomorrow.
        assert_eq!(of("919876543210", 4), of("919876543210", 4));
        let pinned: Vec<u32> = ["919876543210", "14155550100", "447700900123"]
            .iter()
            .map(|m| of(m, 1000))
            .collect();
        assert_eq!(pinned, PINNED);
        let mut counts = [0u32; 4];
        for i in 0..40_000u64 {
            counts[of(&format!("9198{i:08}"), 4) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    const PINNED: [u32; 3] = [319, 193, 831];
}
