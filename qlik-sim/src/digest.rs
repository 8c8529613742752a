//! The digest tests compare a destination's rows against the simulator's ground truth.
//!
//! A stream's digest is computed from its primary keys alone, independent of order:
//! each key's values are joined with U+001F, the keys are sorted, and SHA-256 runs over
//! each key followed by `\n`. The simulator computes it from what it serves, tests from
//! what landed in the destination; equal digests mean no row missing, none duplicated.

use sha2::{Digest, Sha256};

/// Count and digest of a stream's primary keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyDigest {
    /// Number of rows (duplicates included, so a duplicate shows up here).
    pub count: u64,
    /// Hex SHA-256 over the sorted keys.
    pub digest: String,
}

/// Computes the [`KeyDigest`] of `keys`, each a row's primary-key values in catalog order.
pub fn key_digest<I, K, S>(keys: I) -> KeyDigest
where
    I: IntoIterator<Item = K>,
    K: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut joined: Vec<String> = keys
        .into_iter()
        .map(|k| k.into_iter().map(|v| v.as_ref().to_owned()).collect::<Vec<_>>().join("\u{1f}"))
        .collect();
    joined.sort_unstable();
    let mut hasher = Sha256::new();
    for k in &joined {
        hasher.update(k.as_bytes());
        hasher.update(b"\n");
    }
    KeyDigest { count: joined.len() as u64, digest: hex::encode(hasher.finalize()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_duplicates_do() {
        let a = key_digest([["u1", "r1"], ["u2", "r2"]]);
        let b = key_digest([["u2", "r2"], ["u1", "r1"]]);
        assert_eq!(a, b);
        let c = key_digest([["u2", "r2"], ["u1", "r1"], ["u1", "r1"]]);
        assert_eq!(c.count, 3);
        assert_ne!(a.digest, c.digest);
    }
}
