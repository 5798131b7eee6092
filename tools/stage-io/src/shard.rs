//! `--shard I/N`: split a stage over N machines by record id.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0-based). A record belongs to exactly one shard,
/// chosen by a hash of its id, so the outputs of all N shards together are exactly
/// the unsharded output, as a set, whatever order the records come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the record with this id belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        fnv1a64(id.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

/// FNV-1a: fixed by its definition, so shard assignment never changes between
/// builds or platforms (std's hasher makes no such promise).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("`{text}` is no shard: expected I/N with 0 <= I < N, e.g. 0/4");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_lands_in_exactly_one_shard() {
        for count in 1..=7 {
            for n in 0..200 {
                let id = format!("repo-{n}.op.{}", n * 7);
                let owners = (0..count)
                    .filter(|&index| Shard { index, count }.contains(&id))
                    .count();
                assert_eq!(owners, 1, "{id} in {owners} of {count} shards");
            }
        }
    }

    #[test]
    fn assignment_is_pinned_across_builds() {
        // FNV-1a of "a" is a published test vector.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn parses_i_of_n_and_refuses_nonsense() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "0/0", "1", "a/b", "-1/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} accepted");
        }
    }
}
