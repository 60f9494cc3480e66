//! The simulated disk of one replica: storage that remembers what it was asked to write, and
//! faults injected by the world.
//!
//! - Latent read faults: a faulty location reads back corrupted until it is rewritten.
//! - Torn writes: on a crash, the writes of the replica's last tick may be lost (reverted).
//!   The world also drops the messages the replica sent in that tick, so a torn write is one
//!   whose acknowledgement never left: the replica may safely treat it as never written.
//!
//! Which locations may be faulty is the world's decision (the fault atlas, in simulation.rs).

use bytes::Bytes;
use consensus::storage::{MemoryStorage, Storage, Zone};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    inner: MemoryStorage,
    /// Locations that read back corrupted until rewritten.
    faulty: BTreeSet<(Zone, u64)>,
    /// Writes since the last flush, with what each replaced, so a crash can revert them.
    recent: Vec<(Zone, u64, Option<Bytes>)>,
}

impl FaultyStorage {
    pub fn new() -> FaultyStorage {
        FaultyStorage::default()
    }

    /// Makes `(zone, index)` read back corrupted, if something is stored there.
    pub fn corrupt(&mut self, zone: Zone, index: u64) -> bool {
        if self.inner.read(zone, index).is_none() {
            return false;
        }
        self.faulty.insert((zone, index))
    }

    pub fn is_faulty(&self, zone: Zone, index: u64) -> bool {
        self.faulty.contains(&(zone, index))
    }

    /// Journal slots with a fault in either journal zone.
    pub fn faulty_slots(&self) -> impl Iterator<Item = u64> + '_ {
        self.faulty
            .iter()
            .filter(|(zone, _)| matches!(zone, Zone::WalHeaders | Zone::WalPrepares))
            .map(|&(_, slot)| slot)
    }

    /// The tick ended: its writes are durable and can no longer be torn.
    pub fn flush(&mut self) {
        self.recent.clear();
    }

    /// A crash: the last `count` writes since the flush are lost (newest first). Returns how
    /// many were reverted.
    pub fn tear(&mut self, count: usize) -> usize {
        let mut reverted = 0;
        while reverted < count {
            let Some((zone, index, previous)) = self.recent.pop() else {
                break;
            };
            match previous {
                Some(bytes) => self.inner.write(zone, index, bytes),
                None => self.inner.erase(zone, index),
            }
            self.faulty.remove(&(zone, index));
            reverted += 1;
        }
        self.recent.clear();
        reverted
    }

    pub fn recent_writes(&self) -> usize {
        self.recent.len()
    }

    fn remember(&mut self, zone: Zone, index: u64) {
        let previous = self.inner.read(zone, index);
        self.recent.push((zone, index, previous));
    }
}

/// A corrupted copy: one bit flipped at a position derived from the location, so a run stays
/// deterministic and every read of a faulty location fails the same way.
fn corrupted(bytes: &Bytes, zone: Zone, index: u64) -> Bytes {
    let mut copy = bytes.to_vec();
    if copy.is_empty() {
        return Bytes::from(copy);
    }
    let salt = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ zone as u64;
    let at = (salt % copy.len() as u64) as usize;
    copy[at] ^= 1 << (salt >> 61);
    Bytes::from(copy)
}

impl Storage for FaultyStorage {
    fn read(&self, zone: Zone, index: u64) -> Option<Bytes> {
        let bytes = self.inner.read(zone, index)?;
        if self.faulty.contains(&(zone, index)) {
            return Some(corrupted(&bytes, zone, index));
        }
        Some(bytes)
    }

    fn write(&mut self, zone: Zone, index: u64, data: Bytes) {
        self.remember(zone, index);
        self.inner.write(zone, index, data);
        self.faulty.remove(&(zone, index));
    }

    fn erase(&mut self, zone: Zone, index: u64) {
        self.remember(zone, index);
        self.inner.erase(zone, index);
        self.faulty.remove(&(zone, index));
    }

    fn indices(&self, zone: Zone) -> Vec<u64> {
        self.inner.indices(zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_persist_until_rewritten_and_tears_revert() {
        let mut s = FaultyStorage::new();
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"abcd"));
        s.flush();
        assert!(s.corrupt(Zone::WalPrepares, 1));
        assert_ne!(
            s.read(Zone::WalPrepares, 1).unwrap(),
            Bytes::from_static(b"abcd")
        );
        assert_eq!(s.read(Zone::WalPrepares, 1), s.read(Zone::WalPrepares, 1));
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"efgh"));
        assert_eq!(
            s.read(Zone::WalPrepares, 1).unwrap(),
            Bytes::from_static(b"efgh")
        );
        s.write(Zone::WalPrepares, 2, Bytes::from_static(b"new"));
        assert_eq!(s.tear(5), 2);
        assert_eq!(
            s.read(Zone::WalPrepares, 1).unwrap(),
            Bytes::from_static(b"abcd")
        );
        assert_eq!(s.read(Zone::WalPrepares, 2), None);
        assert!(!s.corrupt(Zone::WalPrepares, 9), "nothing stored there");
    }
}
