//! The set of operations linearized so far, with a 128-bit fingerprint kept up
//! to date on every change so the memo cache can remember the set without
//! storing it (see `cache.rs` for why a fingerprint is enough).

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Bitset {
    words: Vec<u64>,
    /// Members: the memo files a pair by its set's size (`cache.rs`).
    len: usize,
    /// XOR of `op_key(i)` over the members (Zobrist hashing): toggling a bit
    /// toggles its term, O(1), and the order of insertion cannot matter.
    fingerprint: u128,
}

impl Bitset {
    pub(super) fn new(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            len: 0,
            fingerprint: 0,
        }
    }

    pub(super) fn set(&mut self, index: usize) {
        debug_assert!(!self.contains(index));
        self.toggle(index);
        self.len += 1;
    }

    pub(super) fn clear(&mut self, index: usize) {
        debug_assert!(self.contains(index));
        self.toggle(index);
        self.len -= 1;
    }

    pub(super) fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    /// Bytes this set holds, for the memory budget.
    pub(super) fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    fn toggle(&mut self, index: usize) {
        self.words[index / 64] ^= 1 << (index % 64);
        self.fingerprint ^= op_key(index);
    }
}

/// Operation `index`'s term of a set's fingerprint: 128 bits that look random
/// and independent of every other index's. A fixed function of the index (two
/// SplitMix64 outputs), so fingerprints, and the search, are the same on every
/// run and platform.
pub(super) fn op_key(index: usize) -> u128 {
    let index = index as u64;
    let high = mix(index.wrapping_mul(2));
    let low = mix(index.wrapping_mul(2).wrapping_add(1));
    (u128::from(high) << 64) | u128::from(low)
}

/// SplitMix64's output function: a bijection that spreads consecutive inputs
/// over all 64 bits.
pub(super) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_only_on_members() {
        let mut a = Bitset::new(130);
        let mut b = Bitset::new(130);
        for i in [0, 64, 129, 7] {
            a.set(i);
        }
        // Another order, and a detour through a member that leaves again.
        for i in [7, 129, 3, 0, 64] {
            b.set(i);
        }
        b.clear(3);
        assert_eq!(a, b);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.contains(129) && !a.contains(3));
    }

    #[test]
    fn sets_one_member_apart_differ() {
        let mut set = Bitset::new(300);
        for i in (0..300).step_by(3) {
            set.set(i);
        }
        let base = set.fingerprint();
        for i in 0..300 {
            if set.contains(i) {
                set.clear(i);
                assert_ne!(set.fingerprint(), base, "without {i}");
                set.set(i);
            } else {
                set.set(i);
                assert_ne!(set.fingerprint(), base, "with {i}");
                set.clear(i);
            }
            assert_eq!(set.fingerprint(), base);
        }
        // Nor do the keys of any two operations cancel out.
        let mut keys: Vec<u128> = (0..10_000).map(op_key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 10_000);
    }
}
