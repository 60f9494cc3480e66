//! The memo cache of Lowe's optimisation: a (linearized set, model state) pair
//! already explored leads to the same dead end, so the search never enters it
//! twice. A pair is remembered by a 128-bit fingerprint alone, 16 bytes however long the segment is (a bitset
//! of the set cost n/8 bytes, which on a key without quiescent points made the
//! memo quadratic in the history).
//!
//! Why a fingerprint is enough. The fingerprint of a pair is the XOR of one
//! 128-bit key per linearized operation and a 128-bit hash of the state
//! (Zobrist hashing, `Bitset` keeps it up to date in O(1) per change; see
//! `state_key`). The keys and the hash are fixed pseudo-random functions that
//! no history is built to defeat, so two different pairs share a fingerprint
//! with probability 2^-128. A shared
//! fingerprint can only make the search believe it explored a pair it did not,
//! and prune a branch: the one possible error is a wrong `not linearizable`,
//! never a wrong `linearizable`. Over a whole check that stores N pairs and
//! asks Q times, the chance of any such error is at most Q * N / 2^128. The
//! memory budget bounds N (16 bytes a slot: 2^32 pairs is 64 GiB, far past any
//! budget) and the step budget bounds Q (2^40 steps would take days), so the
//! bound is below 2^-56 for any check that can run. At the budgets vopr uses
//! (check-history: 2^28 steps and a quarter of the machine's memory, 2^29
//! slots on 32 GiB; the end of a run: 2^23 steps, 2^25 slots) it is below
//! 2^-71.

use std::hash::{Hash, Hasher};

use super::bitset::{mix, Bitset};
use super::budget::Meter;

/// The empty slot of the table. A pair whose fingerprint is 0 is stored as
/// `ZERO_STANDS_IN`, which merges two fingerprints out of 2^128.
const EMPTY: u128 = 0;
const ZERO_STANDS_IN: u128 = 1;

/// Bytes per slot of the table.
pub(super) const SLOT_BYTES: usize = std::mem::size_of::<u128>();

/// The memory budget forbade the cache to grow.
#[derive(Debug)]
pub(super) struct OutOfMemory;

/// The set of pairs explored: one table of fingerprints per block of
/// `BLOCK_SETS` set sizes. A pair's set size is part of the pair, so it is
/// always looked for in the table where it was put, and the cache holds
/// exactly the pairs one table would. Why several: the search works at the
/// frontier of what it has linearized, and backtracks a few operations at a
/// time, so the pairs it asks about in a while have nearly the same size and
/// land in one small table that stays in the processor's cache, where one
/// table of them all (hundreds of MB on a long key) missed it at every look.
pub(super) struct Cache {
    tables: Vec<Table>,
}

/// Set sizes per table: the search rarely backtracks more than a few dozen
/// operations, so the pairs of a few hundred sizes keep one table busy.
const BLOCK_SETS: usize = 256;

impl Cache {
    pub(super) fn new() -> Self {
        Cache { tables: Vec::new() }
    }

    /// Records the pair; `Ok(false)` when it was already there, `Err` when it
    /// is new but the table may not grow to hold it.
    pub(super) fn insert(
        &mut self,
        linearized: &Bitset,
        state_key: u128,
        meter: &mut Meter,
    ) -> Result<bool, OutOfMemory> {
        let block = linearized.len() / BLOCK_SETS;
        if block >= self.tables.len() {
            self.tables.resize_with(block + 1, Table::default);
        }
        let fingerprint = match linearized.fingerprint() ^ state_key {
            EMPTY => ZERO_STANDS_IN,
            other => other,
        };
        self.tables[block].insert(fingerprint, meter)
    }

    /// Bytes the tables hold, for the memory budget (charged as they grow).
    pub(super) fn bytes(&self) -> usize {
        self.tables.iter().map(Table::bytes).sum()
    }

    /// Bytes of the tables' own headers for sets of up to `ops` operations:
    /// charged up front with the rest of what grows with a search's length.
    pub(super) fn headers_bytes(ops: usize) -> usize {
        (ops / BLOCK_SETS + 1) * std::mem::size_of::<Table>()
    }
}

/// A set of fingerprints: open addressing with linear probing over a flat
/// table whose size is a power of two, at most three quarters full. Only
/// membership is ever asked, and the table holds nothing but the fingerprints,
/// so no order of any kind reaches a result.
#[derive(Default)]
struct Table {
    slots: Vec<u128>,
    len: usize,
}

/// A table's first size: most searches (short segments) stay this small.
const FIRST_SLOTS: usize = 16;

impl Table {
    fn insert(&mut self, fingerprint: u128, meter: &mut Meter) -> Result<bool, OutOfMemory> {
        let mut slot = self.find(fingerprint);
        if slot.is_some_and(|slot| self.slots[slot] == fingerprint) {
            return Ok(false);
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow(meter)?;
            slot = self.find(fingerprint);
        }
        let slot = slot.expect("a table under three quarters full has an empty slot");
        self.slots[slot] = fingerprint;
        self.len += 1;
        Ok(true)
    }

    fn bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }

    /// The slot holding `fingerprint`, or else the empty slot where it goes;
    /// `None` when the table has no slots yet.
    fn find(&self, fingerprint: u128) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        // Every bit of a fingerprint is as random as any other.
        let mut slot = (fingerprint as usize) & mask;
        while self.slots[slot] != EMPTY && self.slots[slot] != fingerprint {
            slot = (slot + 1) & mask;
        }
        Some(slot)
    }

    /// Doubles the table, if the budget allows the new one beside the old.
    fn grow(&mut self, meter: &mut Meter) -> Result<(), OutOfMemory> {
        let size = (self.slots.len() * 2).max(FIRST_SLOTS);
        if !meter.charge((size * SLOT_BYTES) as u64) {
            return Err(OutOfMemory);
        }
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        for fingerprint in old.iter().copied().filter(|&f| f != EMPTY) {
            let slot = self.find(fingerprint).expect("the new table has slots");
            self.slots[slot] = fingerprint;
        }
        meter.release((old.len() * SLOT_BYTES) as u64);
        Ok(())
    }
}

/// A state's term of a pair's fingerprint: a 128-bit hash of the bytes its
/// `Hash` feeds a hasher. `Hash` promises unequal values feed unequal byte
/// streams (prefix-free), and the hash is a function of the stream alone, so
/// two unequal states share a key only by a collision of the hash, as likely
/// as between any two fingerprints. Hashing, rather than numbering the states
/// in a table, is what lets the search forget them: a key's states are mostly
/// values no later point of its history holds again (values are unique, and
/// appends make new ones), and a table of them all was most of the memory a
/// long search held.
pub(super) fn state_key<S: Hash>(state: &S) -> u128 {
    let mut hasher = StateHasher::default();
    state.hash(&mut hasher);
    hasher.finish128()
}

/// Two 64-bit lanes over the byte stream in 8-byte words (the last one padded
/// with zeros), then its length: so the words and the length determine the
/// stream. Each lane chains a different bijection of (lane, word), from its
/// own seed, so the lanes collide independently, as two halves of one random
/// 128-bit value would.
struct StateHasher {
    high: u64,
    low: u64,
    /// Bytes not yet absorbed (fewer than 8), low byte first.
    pending: u64,
    pending_len: u32,
    len: u64,
}

impl Default for StateHasher {
    fn default() -> Self {
        StateHasher {
            // Seeds no op key's inputs (`bitset::op_key`) start from.
            high: mix(0xc3a5_c85c_97cb_3127),
            low: mix(0xb492_b66f_be98_f273),
            pending: 0,
            pending_len: 0,
            len: 0,
        }
    }
}

/// An odd multiplier: multiplying by it is a bijection of u64.
const LOW_LANE_MULTIPLIER: u64 = 0x9fb2_1c65_1e98_df25;

impl StateHasher {
    fn absorb(&mut self, word: u64) {
        self.high = mix(self.high ^ word);
        self.low = mix((self.low ^ word).wrapping_mul(LOW_LANE_MULTIPLIER));
    }

    fn push_byte(&mut self, byte: u8) {
        self.pending |= u64::from(byte) << (8 * self.pending_len);
        self.pending_len += 1;
        if self.pending_len == 8 {
            self.absorb(self.pending);
            self.pending = 0;
            self.pending_len = 0;
        }
    }

    fn finish128(mut self) -> u128 {
        if self.pending_len > 0 {
            self.absorb(self.pending);
        }
        self.absorb(self.len);
        (u128::from(self.high) << 64) | u128::from(self.low)
    }
}

impl Hasher for StateHasher {
    /// Not used: the search asks for all 128 bits (`finish128`).
    fn finish(&self) -> u64 {
        self.high ^ self.low
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        while self.pending_len != 0 {
            let Some((&first, rest)) = bytes.split_first() else {
                return;
            };
            self.push_byte(first);
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.absorb(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        for &byte in words.remainder() {
            self.push_byte(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_pairs() {
        let mut meter = Meter::new(super::super::Budget::default());
        let mut cache = Cache::new();
        let mut set = Bitset::new(70);
        let mut insert =
            |set: &Bitset, state: u32| cache.insert(set, state_key(&state), &mut meter).unwrap();
        assert!(insert(&set, 0));
        assert!(!insert(&set, 0));
        assert!(insert(&set, 1));
        set.set(65);
        assert!(insert(&set, 0));
        assert!(!insert(&set, 0));
        set.clear(65);
        assert!(!insert(&set, 1));
    }

    #[test]
    fn holds_many_pairs_in_sixteen_bytes_a_slot() {
        let mut meter = Meter::new(super::super::Budget::default());
        let mut cache = Cache::new();
        let mut set = Bitset::new(5000);
        // Every prefix of 0..5000 with two states: 10,000 pairs, all different.
        for i in 0..5000 {
            set.set(i);
            assert!(cache.insert(&set, state_key(&0u32), &mut meter).unwrap());
            assert!(cache.insert(&set, state_key(&7u32), &mut meter).unwrap());
        }
        for i in (0..5000).rev() {
            assert!(!cache.insert(&set, state_key(&7u32), &mut meter).unwrap());
            set.clear(i);
        }
        // Per block of set sizes, two pairs a size in the smallest table
        // (a power of two) at most three quarters full.
        let slots: usize = (0..=5000 / BLOCK_SETS)
            .map(|block| {
                let sizes = (block * BLOCK_SETS..(block + 1) * BLOCK_SETS)
                    .filter(|&n| (1..=5000).contains(&n));
                let pairs = 2 * sizes.count();
                (FIRST_SLOTS..)
                    .find(|&n| n.is_power_of_two() && pairs * 4 <= n * 3)
                    .unwrap()
            })
            .sum();
        assert_eq!(cache.bytes(), slots * SLOT_BYTES);
        assert!(slots < 16384 * 2);
        assert_eq!(meter.memory(), cache.bytes() as u64);
    }

    #[test]
    fn a_full_budget_refuses_to_grow() {
        let budget = super::super::Budget::default().with_memory(FIRST_SLOTS as u64 * 16);
        let mut meter = Meter::new(budget);
        let mut cache = Cache::new();
        let mut set = Bitset::new(64);
        for i in 0..12 {
            set.set(i);
            assert!(cache.insert(&set, state_key(&0u32), &mut meter).unwrap());
        }
        set.set(12);
        assert!(cache.insert(&set, state_key(&0u32), &mut meter).is_err());
        assert!(meter.memory() <= budget.memory_bytes);
    }

    #[test]
    fn state_keys_tell_states_apart_by_their_bytes() {
        let key = |state: &Option<String>| state_key(state);
        let values = [
            "",
            "a",
            "ab",
            "a\0",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "ba",
        ];
        let mut keys: Vec<u128> = values.iter().map(|v| key(&Some(v.to_string()))).collect();
        keys.push(key(&None));
        // Equal states, equal keys, however the string was built.
        let mut built = String::with_capacity(64);
        built.push_str("abcd");
        built.push_str("efgh");
        assert_eq!(key(&Some(built)), keys[4]);
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), values.len() + 1);
        // The stream, not how it was cut into writes, decides.
        let mut split = StateHasher::default();
        split.write(b"abc");
        split.write(b"defghij");
        let mut whole = StateHasher::default();
        whole.write(b"abcdefghij");
        assert_eq!(split.finish128(), whole.finish128());
    }
}
