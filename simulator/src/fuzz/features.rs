//! Protocol features for libFuzzer, beyond edge coverage: an input that reaches a higher view,
//! more repairs or more versions of one op than any before it is kept, even when it runs no
//! new code. Each (kind, bucket) pair is one counter of the fuzz crate's
//! `__libfuzzer_extra_counters` section (fuzz/src/lib.rs), which libFuzzer reads like its own
//! edge counters and clears before each input.

use super::Depth;

/// Buckets per kind: values 0..=6 have their own, then powers of two up to 2^(BUCKETS - 8).
const BUCKETS: usize = 16;
const KINDS: usize = 9;

/// How many counters `indices` may name.
pub const FEATURE_COUNT: usize = KINDS * BUCKETS;

/// The counters `depth` sets: one bucket per kind.
pub fn indices(depth: &Depth) -> impl Iterator<Item = usize> {
    let values = [
        depth.view_max as u64,
        depth.commit_max,
        depth.repairs,
        depth.checkpoints,
        depth.state_syncs,
        depth.crashes,
        depth.restarts,
        depth.storage_faults,
        depth.versions_max,
    ];
    values
        .into_iter()
        .enumerate()
        .map(|(kind, value)| kind * BUCKETS + bucket(value))
}

/// Small values exactly (view 3 and view 4 are different places), large ones by magnitude.
fn bucket(value: u64) -> usize {
    let bucket = if value <= 6 {
        value as usize
    } else {
        7 + (63 - value.leading_zeros() as usize) - 2
    };
    bucket.min(BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_then_logarithmic_and_in_range() {
        let b: Vec<usize> = [0, 1, 6, 7, 8, 15, 16, 1 << 40, u64::MAX]
            .into_iter()
            .map(bucket)
            .collect();
        assert_eq!(b, vec![0, 1, 6, 7, 8, 8, 9, 15, 15]);
        let depth = Depth {
            versions_max: u64::MAX,
            ..Depth::default()
        };
        assert!(indices(&depth).all(|i| i < FEATURE_COUNT));
        assert_eq!(indices(&depth).count(), KINDS);
    }
}
