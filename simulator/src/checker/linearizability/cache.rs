//! The memo cache of Lowe's optimisation: a (linearized set, model state) pair
//! already explored leads to the same dead end, so the search never enters it
//! twice. States are interned to small ids first, so a pair is a bitset and an
//! integer, and all pairs live in two flat vectors: no allocation per entry.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::bitset::{mix, Bitset};

/// An interned model state.
pub(super) type StateId = u32;

const NONE: u32 = u32::MAX;

/// Hash chains over flat storage. Only membership is ever asked, so no map
/// iteration order reaches a result.
pub(super) struct Cache {
    /// Combined hash -> the newest entry with that hash.
    heads: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    /// Per entry: the next entry with the same combined hash, and the state.
    entries: Vec<(u32, StateId)>,
    /// Entry k's bitset is `words[k * words_per_set..][..words_per_set]`.
    words: Vec<u64>,
    words_per_set: usize,
}

impl Cache {
    pub(super) fn new(ops: usize) -> Self {
        Cache {
            heads: HashMap::default(),
            entries: Vec::new(),
            words: Vec::new(),
            words_per_set: Bitset::new(ops).words().len(),
        }
    }

    /// Records the pair; false when it was already there.
    pub(super) fn insert(&mut self, linearized: &Bitset, state: StateId) -> bool {
        debug_assert_eq!(linearized.words().len(), self.words_per_set);
        let key = mix(linearized.hash() ^ mix(u64::from(state)));
        let head = self.heads.get(&key).copied().unwrap_or(NONE);
        let mut entry = head;
        while entry != NONE {
            let (next, entry_state) = self.entries[entry as usize];
            if entry_state == state && self.set_of(entry) == linearized.words() {
                return false;
            }
            entry = next;
        }
        let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 cache entries");
        self.entries.push((head, state));
        self.words.extend_from_slice(linearized.words());
        self.heads.insert(key, index);
        true
    }

    fn set_of(&self, entry: u32) -> &[u64] {
        let start = entry as usize * self.words_per_set;
        &self.words[start..start + self.words_per_set]
    }
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

    pub(super) fn intern(&mut self, state: S) -> StateId {
        let mut hasher = FxHasher::default();
        state.hash(&mut hasher);
        let key = hasher.finish();
        let head = self.heads.get(&key).copied().unwrap_or(NONE);
        let mut id = head;
        while id != NONE {
            if self.states[id as usize] == state {
                return id;
            }
            id = self.next[id as usize];
        }
        let id = StateId::try_from(self.states.len()).expect("fewer than 2^32 states");
        self.states.push(state);
        self.next.push(head);
        self.heads.insert(key, id);
        id
    }

    pub(super) fn get(&self, id: StateId) -> &S {
        &self.states[id as usize]
    }
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
        let mut cache = Cache::new(70);
        let mut set = Bitset::new(70);
        assert!(cache.insert(&set, 0));
        assert!(!cache.insert(&set, 0));
        assert!(cache.insert(&set, 1));
        set.set(65);
        assert!(cache.insert(&set, 0));
        assert!(!cache.insert(&set, 0));
        set.clear(65);
        assert!(!cache.insert(&set, 1));
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
