//! The memo cache of Lowe's optimisation: a (linearized set, model state) pair
//! already explored leads to the same dead end, so the search never enters it
//! twice. States are interned to small ids first; a pair is then remembered by
//! a 128-bit fingerprint alone, 16 bytes however long the segment is (a bitset
//! of the set cost n/8 bytes, which on a key without quiescent points made the
//! memo quadratic in the history).
//!
//! Why a fingerprint is enough. The fingerprint of a pair is the XOR of one
//! 128-bit key per linearized operation and one for the state (Zobrist
//! hashing, `Bitset` keeps it up to date in O(1) per change). The keys are
//! fixed pseudo-random values that no history is built to defeat, so two
//! different pairs share a fingerprint with probability 2^-128. A shared
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

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::bitset::{mix, Bitset};
use super::budget::Meter;

/// An interned model state.
pub(super) type StateId = u32;

const NONE: u32 = u32::MAX;

/// The empty slot of the table. A pair whose fingerprint is 0 is stored as
/// `ZERO_STANDS_IN`, which merges two fingerprints out of 2^128.
const EMPTY: u128 = 0;
const ZERO_STANDS_IN: u128 = 1;

/// Bytes per slot of the table.
pub(super) const SLOT_BYTES: usize = std::mem::size_of::<u128>();

/// The memory budget forbade the cache to grow.
#[derive(Debug)]
pub(super) struct OutOfMemory;

/// A set of fingerprints: open addressing with linear probing over a flat
/// table whose size is a power of two, at most three quarters full. Only
/// membership is ever asked, and the table holds nothing but the fingerprints,
/// so no order of any kind reaches a result.
pub(super) struct Cache {
    slots: Vec<u128>,
    len: usize,
}

/// The table's first size: most searches (short segments) stay this small.
const FIRST_SLOTS: usize = 16;

impl Cache {
    pub(super) fn new() -> Self {
        Cache {
            slots: Vec::new(),
            len: 0,
        }
    }

    /// Records the pair; `Ok(false)` when it was already there, `Err` when it
    /// is new but the table may not grow to hold it.
    pub(super) fn insert(
        &mut self,
        linearized: &Bitset,
        state: StateId,
        meter: &mut Meter,
    ) -> Result<bool, OutOfMemory> {
        let fingerprint = match linearized.fingerprint() ^ state_key(state) {
            EMPTY => ZERO_STANDS_IN,
            other => other,
        };
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

    /// Bytes the table holds, for the memory budget.
    pub(super) fn bytes(&self) -> usize {
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

/// A state's term of a pair's fingerprint. The inputs to `mix` have the top
/// bit set, which no operation's (`bitset::op_key`, two per index) has, so
/// state keys and operation keys never share a half.
fn state_key(state: StateId) -> u128 {
    let input = (1u64 << 63) | (u64::from(state) * 2);
    (u128::from(mix(input)) << 64) | u128::from(mix(input + 1))
}

/// Model states numbered in order of first appearance. Each is stored once,
/// found again through hash chains like the cache's.
pub(super) struct Interner<S> {
    states: Vec<S>,
    /// Per state: the next state with the same hash.
    next: Vec<StateId>,
    heads: HashMap<u64, StateId, BuildHasherDefault<IdentityHasher>>,
}

impl<S: Eq + Hash> Interner<S> {
    pub(super) fn new() -> Self {
        Interner {
            states: Vec::new(),
            next: Vec::new(),
            heads: HashMap::default(),
        }
    }

    /// The id of `state` if it was interned before, or else its hash, for `add`.
    pub(super) fn find(&self, state: &S) -> Result<StateId, StateHash> {
        let hash = hash_of(state);
        let mut id = self.heads.get(&hash).copied().unwrap_or(NONE);
        while id != NONE {
            if self.states[id as usize] == *state {
                return Ok(id);
            }
            id = self.next[id as usize];
        }
        Err(StateHash(hash))
    }

    pub(super) fn intern(&mut self, state: S) -> StateId {
        match self.find(&state) {
            Ok(id) => id,
            Err(hash) => self.add(state, hash),
        }
    }

    /// Interns a state `find` did not find (with the hash it gave).
    pub(super) fn add(&mut self, state: S, StateHash(hash): StateHash) -> StateId {
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let id = StateId::try_from(self.states.len()).expect("fewer than 2^32 states");
        self.states.push(state);
        self.next.push(head);
        self.heads.insert(hash, id);
        id
    }

    pub(super) fn get(&self, id: StateId) -> &S {
        &self.states[id as usize]
    }

    /// What keeping one more state costs, given the bytes of the state itself
    /// (`Model::state_bytes`): its slot, chain link and map entry, with room
    /// for the vectors and the map to have doubled (so an estimate erring high).
    pub(super) fn bytes_per_state(&self, state_bytes: usize) -> usize {
        let slot = std::mem::size_of::<S>() + std::mem::size_of::<StateId>();
        let map_entry = std::mem::size_of::<(u64, StateId)>() + 1;
        state_bytes + 2 * (slot + map_entry)
    }
}

/// A state's hash, from `Interner::find` to `Interner::add`.
pub(super) struct StateHash(u64);

fn hash_of<S: Hash>(state: &S) -> u64 {
    let mut hasher = FxHasher::default();
    state.hash(&mut hasher);
    hasher.finish()
}

/// For keys that are already well-mixed hashes.
#[derive(Default)]
pub(super) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// The Fx hash (rustc's): fast, and fixed (no per-process random seed).
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
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
        let mut insert = |set: &Bitset, state| cache.insert(set, state, &mut meter).unwrap();
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
            assert!(cache.insert(&set, 0, &mut meter).unwrap());
            assert!(cache.insert(&set, 7, &mut meter).unwrap());
        }
        for i in (0..5000).rev() {
            assert!(!cache.insert(&set, 7, &mut meter).unwrap());
            set.clear(i);
        }
        assert_eq!(cache.bytes(), 16384 * SLOT_BYTES);
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
            assert!(cache.insert(&set, 0, &mut meter).unwrap());
        }
        set.set(12);
        assert!(cache.insert(&set, 0, &mut meter).is_err());
        assert!(meter.memory() <= budget.memory_bytes);
    }

    #[test]
    fn interns_equal_states_once() {
        let mut states = Interner::new();
        let a = states.intern(Some("a".to_string()));
        let none = states.intern(None);
        assert_eq!(states.intern(Some("a".to_string())), a);
        assert_ne!(a, none);
        assert_eq!(states.get(a).as_deref(), Some("a"));
    }
}
