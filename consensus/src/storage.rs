//! The storage a replica persists through. A write (or erase) is submitted when the call
//! returns and durable only once the host says so through `Replica::on_storage_done`, in
//! submission order; until then a crash may lose it. Reads see every submitted write (the
//! host's cache) and hand back the bytes as stored, which the caller verifies by checksum (a
//! read is never trusted).
//!
//! The simulator implements this trait over a faulty disk with write latency; `MemoryStorage`
//! is the plain in-memory implementation (no faults) used by tests and by hosts that need no
//! durability.

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

/// The replica's handle on its storage: counts submitted writes, so that nothing the replica
/// says leaves before the writes it depends on are durable.
#[derive(Debug, Clone, Default)]
pub struct Disk<S> {
    pub inner: S,
    /// Writes and erases submitted since this replica opened the storage.
    pub submitted: u64,
}

impl<S: Storage> Storage for Disk<S> {
    fn read(&self, zone: Zone, index: u64) -> Option<Bytes> {
        self.inner.read(zone, index)
    }

    fn write(&mut self, zone: Zone, index: u64, data: Bytes) {
        self.submitted += 1;
        self.inner.write(zone, index, data);
    }

    fn erase(&mut self, zone: Zone, index: u64) {
        self.submitted += 1;
        self.inner.erase(zone, index);
    }

    fn indices(&self, zone: Zone) -> Vec<u64> {
        self.inner.indices(zone)
    }
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
