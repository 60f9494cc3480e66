//! The set of operations linearized so far, with a hash kept up to date on every
//! change so the memo cache can look a set up without rescanning it.

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Bitset {
    words: Vec<u64>,
    /// XOR of `mix(i)` over the members: toggling a bit toggles its term, O(1).
    hash: u64,
}

impl Bitset {
    pub(super) fn new(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            hash: 0,
        }
    }

    pub(super) fn set(&mut self, index: usize) {
        debug_assert!(!self.contains(index));
        self.toggle(index);
    }

    pub(super) fn clear(&mut self, index: usize) {
        debug_assert!(self.contains(index));
        self.toggle(index);
    }

    pub(super) fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    pub(super) fn hash(&self) -> u64 {
        self.hash
    }

    pub(super) fn words(&self) -> &[u64] {
        &self.words
    }

    fn toggle(&mut self, index: usize) {
        self.words[index / 64] ^= 1 << (index % 64);
        self.hash ^= mix(index as u64);
    }
}

/// SplitMix64's finaliser: spreads consecutive indices over all 64 bits, so that
/// XORs of different small sets rarely collide.
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
    fn hash_depends_only_on_members() {
        let mut a = Bitset::new(130);
        let mut b = Bitset::new(130);
        for i in [0, 64, 129, 7] {
            a.set(i);
        }
        for i in [7, 129, 3, 0, 64] {
            b.set(i);
        }
        b.clear(3);
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        assert!(a.contains(129) && !a.contains(3));
        a.clear(129);
        assert_ne!(a.hash(), b.hash());
    }
}
