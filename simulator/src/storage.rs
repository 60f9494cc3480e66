//! The simulated disk of one replica: storage that remembers what it was asked to write, and
//! faults injected by the world.
//!
//! - Write latency: a write completes (becomes durable) some ticks after it is submitted, in
//!   submission order; the world reports completions to the replica (`on_storage_done`),
//!   which holds back every message that depends on them.
//! - Crashes: any writes still in flight may be lost, not only the newest (the disk reorders
//!   what it was not yet asked to make durable); the newest lost one may leave a torn sector
//!   of garbage rather than the old contents.
//! - Latent read faults: a faulty location reads back corrupted until it is rewritten, or
//!   reads back as nothing (an unreadable sector a disk returns no data for).
//! - Misdirected writes: a write in flight lands on another location of its zone, which is
//!   clobbered, while its own location keeps what it held before.
//! - Lost writes (write faults): a write in flight silently never lands.
//! - Stale sectors: a location reads back what it held before its last write, valid but old
//!   (a write the disk acknowledged and then lost; in the journal, a prepare of an earlier
//!   wrap of the ring).
//!
//! Which locations may be faulty is the world's decision (the fault atlas, in simulation.rs).

use crate::prng::Prng;
use bytes::Bytes;
use consensus::storage::{MemoryStorage, Storage, Zone};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A submitted write that is not durable yet.
#[derive(Debug, Clone)]
struct Pending {
    zone: Zone,
    index: u64,
    /// What the location held before, so a crash can revert the write.
    previous: Option<Bytes>,
    /// The tick at whose end the write is durable.
    due: u64,
}

#[derive(Debug, Clone)]
pub struct FaultyStorage {
    inner: MemoryStorage,
    /// Locations that read back corrupted until rewritten.
    faulty: BTreeSet<(Zone, u64)>,
    /// Of `faulty`, those that read back as nothing instead.
    unreadable: BTreeSet<(Zone, u64)>,
    /// Locations that hold the wrong data because of a misdirected write, until rewritten.
    misdirected: BTreeSet<(Zone, u64)>,
    /// Writes in flight, oldest first.
    pending: VecDeque<Pending>,
    /// What each location held before its last write (for stale-sector faults).
    overwritten: BTreeMap<(Zone, u64), Bytes>,
    /// Writes submitted and completed since the replica last opened this storage.
    submitted: u64,
    completed: u64,
    now: u64,
    latency_max: u64,
    prng: Prng,
}

impl Default for FaultyStorage {
    fn default() -> FaultyStorage {
        FaultyStorage::new()
    }
}

impl FaultyStorage {
    /// A disk whose writes complete at the end of the tick they were submitted in.
    pub fn new() -> FaultyStorage {
        FaultyStorage::with_latency(0, Prng::from_seed(0))
    }

    /// A disk whose writes take up to `latency_max` extra ticks, drawn from `prng`.
    pub fn with_latency(latency_max: u64, prng: Prng) -> FaultyStorage {
        FaultyStorage {
            inner: MemoryStorage::new(),
            faulty: BTreeSet::new(),
            unreadable: BTreeSet::new(),
            misdirected: BTreeSet::new(),
            pending: VecDeque::new(),
            overwritten: BTreeMap::new(),
            submitted: 0,
            completed: 0,
            now: 0,
            latency_max,
            prng,
        }
    }

    /// Makes `(zone, index)` read back corrupted, if something is stored there.
    pub fn corrupt(&mut self, zone: Zone, index: u64) -> bool {
        if self.inner.read(zone, index).is_none() {
            return false;
        }
        self.faulty.insert((zone, index))
    }

    /// Makes `(zone, index)` read back as nothing, if something is stored there; it still
    /// counts among the zone's written locations (`Storage::indices`).
    pub fn make_unreadable(&mut self, zone: Zone, index: u64) -> bool {
        if !self.corrupt(zone, index) {
            return false;
        }
        self.unreadable.insert((zone, index))
    }

    pub fn is_faulty(&self, zone: Zone, index: u64) -> bool {
        self.faulty.contains(&(zone, index))
    }

    /// Journal slots with a fault (latent or misdirected) in either journal zone.
    pub fn faulty_slots(&self) -> impl Iterator<Item = u64> + '_ {
        self.faulty
            .iter()
            .chain(self.misdirected.iter())
            .filter(|(zone, _)| matches!(zone, Zone::WalHeaders | Zone::WalPrepares))
            .map(|&(_, slot)| slot)
    }

    /// The location of the newest write in flight, if it is in `zone`.
    pub fn newest_pending(&self) -> Option<(Zone, u64)> {
        self.pending.back().map(|w| (w.zone, w.index))
    }

    /// The newest write in flight silently never lands: its location keeps what it held.
    pub fn lose_newest(&mut self) -> bool {
        let Some(write) = self.pending.back() else {
            return false;
        };
        let (zone, index, previous) = (write.zone, write.index, write.previous.clone());
        match previous {
            Some(bytes) => self.inner.write(zone, index, bytes),
            None => self.inner.erase(zone, index),
        }
        self.misdirected.insert((zone, index));
        true
    }

    /// The newest write in flight leaves this region for another region of the node's disk
    /// (`receive_misdirected` there): its own location gets back what it held and reads as
    /// tampered until rewritten. Returns where it was going and its data.
    pub fn misdirect_newest_away(&mut self) -> Option<(Zone, u64, Bytes)> {
        let write = self.pending.back()?;
        let (zone, index) = (write.zone, write.index);
        let data = self.inner.read(zone, index)?;
        self.lose_newest();
        Some((zone, index, data))
    }

    /// Whether a write to `(zone, index)` is in flight.
    pub fn is_pending_at(&self, zone: Zone, index: u64) -> bool {
        self.pending
            .iter()
            .any(|w| (w.zone, w.index) == (zone, index))
    }

    /// Another region's write lands here, at `(zone, index)`, durably: the location holds a
    /// valid write of another group until rewritten. False (nothing done) when a write of this
    /// region to that location is in flight.
    pub fn receive_misdirected(&mut self, zone: Zone, index: u64, data: Bytes) -> bool {
        if self.is_pending_at(zone, index) {
            return false;
        }
        if let Some(old) = self.inner.read(zone, index) {
            self.overwritten.insert((zone, index), old);
        }
        self.inner.write(zone, index, data);
        self.misdirected.insert((zone, index));
        true
    }

    /// Misdirects the newest write in flight to `to` (same zone): its own location gets back
    /// what it held, `to` is clobbered with its data. A later crash may still lose it (then
    /// `to` is restored). False if there is no such write or nothing was written.
    pub fn misdirect_newest(&mut self, to: u64) -> bool {
        let Some(write) = self.pending.back() else {
            return false;
        };
        let (zone, from) = (write.zone, write.index);
        let Some(data) = self.inner.read(zone, from) else {
            return false;
        };
        if to == from {
            return false;
        }
        match write.previous.clone() {
            Some(bytes) => self.inner.write(zone, from, bytes),
            None => self.inner.erase(zone, from),
        }
        let previous = self.inner.read(zone, to);
        self.inner.write(zone, to, data);
        let write = self.pending.back_mut().expect("checked");
        write.index = to;
        write.previous = previous;
        self.misdirected.insert((zone, from));
        self.misdirected.insert((zone, to));
        true
    }

    /// Writes durable so far (since the replica opened this storage), as `advance` last said.
    pub fn writes_completed(&self) -> u64 {
        self.completed
    }

    /// A new tick starts: the writes due before it are durable. Returns how many writes
    /// (since the replica opened this storage) are durable, for `on_storage_done`.
    pub fn advance(&mut self, now: u64) -> u64 {
        self.now = now;
        while self.pending.front().is_some_and(|w| w.due < now) {
            self.pending.pop_front();
            self.completed += 1;
        }
        self.completed
    }

    /// Every write in flight completes, and counting starts over (the storage is handed to a
    /// new incarnation of the replica, or was just formatted).
    pub fn flush(&mut self) {
        self.pending.clear();
        self.submitted = 0;
        self.completed = 0;
    }

    /// A crash: the newest `count` writes in flight are lost. The rest complete. Returns how
    /// many were reverted.
    pub fn tear(&mut self, count: usize) -> usize {
        let len = self.pending.len();
        let lost: Vec<u32> = (len.saturating_sub(count)..len).map(|i| i as u32).collect();
        self.lose_at_crash(&lost, false)
    }

    /// A crash: the writes in flight at positions `lost` (0 = the oldest) never land; the
    /// others complete. With `garbage`, the newest lost write leaves a torn sector (part new,
    /// part scrambled: it fails its checksum) instead of the old contents. Returns how many
    /// writes were lost.
    pub fn lose_at_crash(&mut self, lost: &[u32], garbage: bool) -> usize {
        let pending: Vec<Pending> = std::mem::take(&mut self.pending).into();
        // Newest first: a lost write gives its location back what it held before it, unless a
        // later write to the same location completes (then that write's data stays).
        let mut settled = BTreeSet::new();
        let mut count = 0;
        let newest_lost = lost.iter().copied().max();
        for (i, write) in pending.into_iter().enumerate().rev() {
            let location = (write.zone, write.index);
            if !lost.contains(&(i as u32)) {
                settled.insert(location);
                continue;
            }
            count += 1;
            if settled.contains(&location) {
                continue;
            }
            let torn = garbage && Some(i as u32) == newest_lost;
            match (
                torn,
                self.inner.read(write.zone, write.index),
                write.previous,
            ) {
                (true, Some(new), _) => {
                    self.inner
                        .write(write.zone, write.index, scrambled_half(&new));
                }
                (_, _, Some(bytes)) => self.inner.write(write.zone, write.index, bytes),
                (_, _, None) => self.inner.erase(write.zone, write.index),
            }
            self.faulty.remove(&location);
            self.unreadable.remove(&location);
            self.misdirected.remove(&location);
        }
        self.flush();
        count
    }

    /// A stale sector: `(zone, index)` reads back what it held before its last write (valid,
    /// but old), until rewritten. False if it was never overwritten or a write to it is in
    /// flight.
    pub fn stale(&mut self, zone: Zone, index: u64) -> bool {
        let in_flight = self
            .pending
            .iter()
            .any(|w| (w.zone, w.index) == (zone, index));
        let Some(old) = self.overwritten.get(&(zone, index)).cloned() else {
            return false;
        };
        if in_flight || self.inner.read(zone, index).as_ref() == Some(&old) {
            return false;
        }
        self.inner.write(zone, index, old);
        self.misdirected.insert((zone, index));
        true
    }

    /// What `(zone, index)` holds durably: what a crash now would leave there (before any
    /// fault the world injected on reads). None when nothing is there.
    pub fn durable_read(&self, zone: Zone, index: u64) -> Option<Bytes> {
        match self
            .pending
            .iter()
            .find(|w| (w.zone, w.index) == (zone, index))
        {
            Some(oldest) => oldest.previous.clone(),
            None => self.inner.read(zone, index),
        }
    }

    /// Whether the world made `(zone, index)` hold something other than what the replica last
    /// wrote there (a latent fault, a misdirected or lost write).
    pub fn is_tampered(&self, zone: Zone, index: u64) -> bool {
        self.faulty.contains(&(zone, index)) || self.misdirected.contains(&(zone, index))
    }

    /// Whether no location holds anything but what the replica last wrote there (no latent
    /// fault, stale sector, misdirected or lost write not yet rewritten).
    pub fn is_clean(&self) -> bool {
        self.faulty.is_empty() && self.misdirected.is_empty()
    }

    /// This disk as a crash now would leave it (see `durable_read`).
    pub fn durable(&self) -> Durable<'_> {
        Durable(self)
    }

    /// Writes in flight (submitted, not yet durable).
    pub fn recent_writes(&self) -> usize {
        self.pending.len()
    }

    fn remember(&mut self, zone: Zone, index: u64) {
        let previous = self.inner.read(zone, index);
        if let Some(bytes) = &previous {
            self.overwritten.insert((zone, index), bytes.clone());
        }
        let latency = match self.latency_max {
            0 => 0,
            max => self.prng.range_u64(0, max),
        };
        // Completion is in submission order.
        let due = (self.now + latency).max(self.pending.back().map_or(0, |w| w.due));
        self.pending.push_back(Pending {
            zone,
            index,
            previous,
            due,
        });
        self.submitted += 1;
    }
}

/// A torn sector: the first half as written, the rest scrambled.
fn scrambled_half(bytes: &Bytes) -> Bytes {
    let mut copy = bytes.to_vec();
    let half = copy.len() / 2;
    for (i, b) in copy[half..].iter_mut().enumerate() {
        *b ^= 0xa5 ^ (i as u8);
    }
    if copy.len() == 1 {
        copy[0] ^= 0xff;
    }
    Bytes::from(copy)
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
        if self.unreadable.contains(&(zone, index)) {
            return None;
        }
        if self.faulty.contains(&(zone, index)) {
            return Some(corrupted(&bytes, zone, index));
        }
        Some(bytes)
    }

    fn write(&mut self, zone: Zone, index: u64, data: Bytes) {
        self.remember(zone, index);
        self.inner.write(zone, index, data);
        self.faulty.remove(&(zone, index));
        self.unreadable.remove(&(zone, index));
        self.misdirected.remove(&(zone, index));
    }

    fn erase(&mut self, zone: Zone, index: u64) {
        self.remember(zone, index);
        self.inner.erase(zone, index);
        self.faulty.remove(&(zone, index));
        self.unreadable.remove(&(zone, index));
        self.misdirected.remove(&(zone, index));
    }

    fn indices(&self, zone: Zone) -> Vec<u64> {
        self.inner.indices(zone)
    }
}

/// A read-only view of a disk's durable contents, for oracles (`FaultyStorage::durable`).
pub struct Durable<'a>(&'a FaultyStorage);

impl Storage for Durable<'_> {
    fn read(&self, zone: Zone, index: u64) -> Option<Bytes> {
        self.0.durable_read(zone, index)
    }

    fn write(&mut self, _: Zone, _: u64, _: Bytes) {
        unreachable!("a durable view is read-only");
    }

    fn erase(&mut self, _: Zone, _: u64) {
        unreachable!("a durable view is read-only");
    }

    fn indices(&self, zone: Zone) -> Vec<u64> {
        let mut indices = self.0.indices(zone);
        indices.retain(|&i| self.0.durable_read(zone, i).is_some());
        indices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_location_reads_as_nothing_yet_stays_written_until_rewritten() {
        let mut s = FaultyStorage::new();
        assert!(
            !s.make_unreadable(Zone::WalPrepares, 1),
            "nothing stored there"
        );
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"abcd"));
        s.advance(1);
        s.flush();
        assert!(s.make_unreadable(Zone::WalPrepares, 1));
        assert_eq!(s.read(Zone::WalPrepares, 1), None);
        assert_eq!(
            s.indices(Zone::WalPrepares),
            vec![1],
            "still a written location"
        );
        assert!(s.is_tampered(Zone::WalPrepares, 1));
        assert_eq!(s.faulty_slots().collect::<Vec<_>>(), vec![1]);
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"efgh"));
        assert_eq!(
            s.read(Zone::WalPrepares, 1),
            Some(Bytes::from_static(b"efgh"))
        );
        assert!(!s.is_tampered(Zone::WalPrepares, 1));
    }

    #[test]
    fn faults_persist_until_rewritten_and_tears_revert() {
        let mut s = FaultyStorage::new();
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"abcd"));
        assert_eq!(s.advance(1), 1, "a write completes at the end of its tick");
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

    #[test]
    fn a_misdirected_write_clobbers_another_location_and_misses_its_own() {
        let mut s = FaultyStorage::new();
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"old1"));
        s.write(Zone::WalPrepares, 2, Bytes::from_static(b"old2"));
        s.advance(1);
        s.flush();
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"new1"));
        assert_eq!(s.newest_pending(), Some((Zone::WalPrepares, 1)));
        assert!(s.misdirect_newest(2));
        assert_eq!(s.read(Zone::WalPrepares, 1).unwrap(), "old1");
        assert_eq!(s.read(Zone::WalPrepares, 2).unwrap(), "new1");
        let mut slots: Vec<u64> = s.faulty_slots().collect();
        slots.sort();
        assert_eq!(slots, vec![1, 2]);
        // A crash before it completes loses it: the clobbered location comes back.
        assert_eq!(s.tear(1), 1);
        assert_eq!(s.read(Zone::WalPrepares, 2).unwrap(), "old2");
        assert_eq!(
            s.faulty_slots().count(),
            1,
            "its own location still holds stale data"
        );
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"again"));
        assert_eq!(s.faulty_slots().count(), 0, "rewritten");
    }

    #[test]
    fn a_lost_write_leaves_its_location_as_it_was() {
        let mut s = FaultyStorage::new();
        s.write(Zone::WalHeaders, 3, Bytes::from_static(b"old"));
        s.advance(1);
        s.flush();
        s.write(Zone::WalHeaders, 3, Bytes::from_static(b"new"));
        assert!(s.lose_newest());
        assert_eq!(s.read(Zone::WalHeaders, 3).unwrap(), "old");
        assert_eq!(s.faulty_slots().collect::<Vec<_>>(), vec![3]);
        assert_eq!(
            s.advance(2),
            1,
            "it still completes, as far as the replica knows"
        );
    }

    #[test]
    fn a_crash_may_lose_any_writes_in_flight_and_tear_the_newest_lost() {
        let mut s = FaultyStorage::new();
        for i in 0..3 {
            s.write(Zone::WalPrepares, i, Bytes::from_static(b"old"));
        }
        s.advance(1);
        s.flush();
        s.write(Zone::WalPrepares, 0, Bytes::from_static(b"new0"));
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"new1"));
        s.write(Zone::WalPrepares, 2, Bytes::from_static(b"new2"));
        s.write(Zone::WalPrepares, 1, Bytes::from_static(b"new1b"));
        // The oldest and the second write to slot 1 are lost; slot 1 keeps what the write
        // before it left there. The newest lost one (slot 1's second) is torn: garbage.
        assert_eq!(s.lose_at_crash(&[0, 3], true), 2);
        assert_eq!(s.read(Zone::WalPrepares, 0).unwrap(), "old");
        let torn = s.read(Zone::WalPrepares, 1).unwrap();
        assert_ne!(torn, "new1b");
        assert_ne!(torn, "new1");
        assert_eq!(&torn[..2], b"ne", "the first half landed");
        assert_eq!(s.read(Zone::WalPrepares, 2).unwrap(), "new2");
        assert_eq!(s.recent_writes(), 0);
        // A lost write whose location a later write settles changes nothing.
        s.write(Zone::WalHeaders, 5, Bytes::from_static(b"a"));
        s.write(Zone::WalHeaders, 5, Bytes::from_static(b"b"));
        assert_eq!(s.lose_at_crash(&[0], false), 1);
        assert_eq!(s.read(Zone::WalHeaders, 5).unwrap(), "b");
    }

    #[test]
    fn a_stale_sector_reads_back_its_previous_contents_until_rewritten() {
        let mut s = FaultyStorage::new();
        assert!(!s.stale(Zone::WalPrepares, 4), "never written");
        s.write(Zone::WalPrepares, 4, Bytes::from_static(b"wrap1"));
        s.advance(1);
        s.flush();
        assert!(!s.stale(Zone::WalPrepares, 4), "never overwritten");
        s.write(Zone::WalPrepares, 4, Bytes::from_static(b"wrap2"));
        assert!(!s.stale(Zone::WalPrepares, 4), "a write is in flight");
        s.advance(2);
        s.flush();
        assert!(s.stale(Zone::WalPrepares, 4));
        assert_eq!(s.read(Zone::WalPrepares, 4).unwrap(), "wrap1");
        assert!(s.is_tampered(Zone::WalPrepares, 4));
        assert_eq!(s.faulty_slots().collect::<Vec<_>>(), vec![4]);
        assert!(!s.stale(Zone::WalPrepares, 4), "stale already");
        s.write(Zone::WalPrepares, 4, Bytes::from_static(b"wrap3"));
        assert!(!s.is_tampered(Zone::WalPrepares, 4));
    }

    #[test]
    fn writes_complete_in_order_after_their_latency() {
        let mut s = FaultyStorage::with_latency(5, Prng::from_seed(7));
        let mut dues = Vec::new();
        for i in 0..20 {
            s.advance(10 + i / 4);
            s.write(Zone::WalHeaders, i, Bytes::from_static(b"x"));
            dues.push(s.pending.back().unwrap().due);
        }
        assert!(dues.windows(2).all(|w| w[0] <= w[1]), "{dues:?}");
        assert!(dues.iter().any(|&d| d > 14), "some writes wait: {dues:?}");
        let mut done = 0;
        for now in 14..40 {
            let completed = s.advance(now);
            assert!(completed >= done);
            let due_before = dues.iter().filter(|&&d| d < now).count() as u64;
            assert_eq!(completed, due_before, "at tick {now}");
            done = completed;
        }
        assert_eq!(done, 20);
    }
}
