//! The storage a replica persists through. Writes are durable when `write` returns; reads hand
//! back the bytes as stored, which the caller verifies by checksum (a read is never trusted).
//!
//! The simulator implements this trait over a faulty disk; `MemoryStorage` is the plain
//! in-memory implementation (no faults) used by tests and by hosts that need no durability.

use bytes::Bytes;
use std::collections::BTreeMap;

/// The areas of a replica's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    /// Redundant copies of the superblock, indexed by copy.
    Superblock,
    /// The header of each journal entry, indexed by slot (the redundant header ring).
    WalHeaders,
    /// The whole prepare (header and body) of each journal entry, indexed by slot.
    WalPrepares,
    /// Checkpoints: two areas (the current one and the one being written), two copies each,
    /// indexed by `area * 2 + copy`.
    Checkpoint,
}

/// Byte storage addressed by zone and index.
pub trait Storage {
    fn read(&self, zone: Zone, index: u64) -> Option<Bytes>;
    fn write(&mut self, zone: Zone, index: u64, data: Bytes);
    fn erase(&mut self, zone: Zone, index: u64);
    /// Every index written in `zone` and not erased, ascending. Used by recovery.
    fn indices(&self, zone: Zone) -> Vec<u64>;
}

/// Fault-free storage in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    blobs: BTreeMap<(Zone, u64), Bytes>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl Storage for MemoryStorage {
    fn read(&self, zone: Zone, index: u64) -> Option<Bytes> {
        self.blobs.get(&(zone, index)).cloned()
    }

    fn write(&mut self, zone: Zone, index: u64, data: Bytes) {
        self.blobs.insert((zone, index), data);
    }

    fn erase(&mut self, zone: Zone, index: u64) {
        self.blobs.remove(&(zone, index));
    }

    fn indices(&self, zone: Zone) -> Vec<u64> {
        self.blobs
            .range((zone, 0)..=(zone, u64::MAX))
            .map(|(&(_, i), _)| i)
            .collect()
    }
}
