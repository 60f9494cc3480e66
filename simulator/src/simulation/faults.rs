//! Faults as events (`crate::schedule`): the swarm's draws turn into events, and every event,
//! drawn or replayed from a schedule, takes effect in `execute`, which records it. So a run
//! drawn from a seed and the replay of its schedule go through the same code.

use super::Simulation;
use crate::aim::Aimed;
use crate::node::DiskLayout;
use crate::schedule::{DiskFault, Event, Fault, Point, Zone};
use crate::trace;

impl Simulation {
    /// The faults of the start of a tick: drawn (crashes, storage faults, pauses), or those
    /// the schedule being replayed holds for this point.
    pub(super) fn start_of_tick_faults(&mut self) {
        if self.replay.is_some() {
            return self.replay_point(Point::Faults);
        }
        self.draw_faults();
        self.process_pauses();
    }

    /// The network's timeline for this tick: drawn by the network, or replayed.
    pub(super) fn network_tick(&mut self) {
        self.network.tick(self.tick);
        if self.replay.is_some() {
            return self.replay_point(Point::Network);
        }
        for fault in self.network.take_faults() {
            self.record(Fault::Network(fault));
        }
    }

    /// Executes every event of the schedule being replayed that is due at `point` now.
    pub(super) fn replay_point(&mut self, point: Point) {
        while let Some(event) = self
            .replay
            .as_mut()
            .and_then(|r| r.next_at(self.tick, point))
        {
            // An edited schedule may ask for what cannot happen (crash a replica that is down):
            // counted with the events passed over.
            if !self.execute(event.fault) {
                self.replay.as_mut().expect("replaying").skipped += 1;
            }
        }
    }

    /// Makes `fault` happen now, at the current point of the tick; records it in the run's
    /// schedule (and trace) if it took effect. False when it could not (a crash of a replica
    /// that is down, a disk fault the fault atlas refuses).
    pub fn execute(&mut self, fault: Fault) -> bool {
        let done = match &fault {
            Fault::Crash {
                replica,
                restart_tick,
                torn,
                garbage,
                aimed,
            } => self.crash_now(*replica, *restart_tick, torn, *garbage, *aimed),
            &Fault::Pause { replica, ticks } => self.pause(replica, ticks),
            &Fault::Restart { replica, aimed } => self.restart_early(replica, aimed),
            &Fault::Isolate {
                replica,
                ticks,
                aimed,
            } => self.isolate_for(replica, ticks, aimed),
            // Dropped in the send loop (`drop_start_view`), which records it.
            Fault::DropStartView { .. } => false,
            Fault::Storage {
                replica,
                group,
                fault,
            } => self.disk_fault(*replica, *group as usize, fault),
            Fault::Network(net) => {
                self.network.apply(net);
                true
            }
            // Starting the liveness phase records it.
            Fault::Liveness { .. } => false,
        };
        if done {
            self.record(fault);
        }
        done
    }

    /// Appends `fault` to the run's schedule, at the current point, and to the trace.
    pub(super) fn record(&mut self, fault: Fault) {
        let event = Event {
            tick: self.tick,
            step: self.stepping,
            fault,
        };
        self.trace.record_fault(&event);
        tracing::info!(tick = self.tick, event = ?event.fault, "fault");
        self.schedule.push(event);
    }

    // ----- Drawn from the seed -----

    fn draw_faults(&mut self) {
        let p = self.options.crash_probability;
        for r in 0..self.options.replica_count {
            let up_and_stable = self.cluster.is_up(r) && self.crash_stable(r);
            if up_and_stable && self.prng_faults.chance(p) {
                let delay = self
                    .prng_faults
                    .exponential(self.options.restart_delay_mean_ticks as f64)
                    .max(1);
                self.crash_drawn(r, Some(self.tick + delay), None);
            } else if up_and_stable {
                // Likelier while writes are in flight (DESIGN: crashes that tear writes).
                self.maybe_crash_with_writes_in_flight(r, p);
            }
        }
        if self.options.storage_fault_probability > 0.0 {
            for r in 0..self.options.replica_count {
                if self
                    .prng_faults
                    .chance(self.options.storage_fault_probability)
                {
                    self.inject_storage_fault(r);
                }
            }
        }
    }

    /// Which of node `r`'s writes in flight a crash now loses (positions, 0 = the oldest of
    /// group 0's region, then group 1's, ...), and whether the newest lost one of each region
    /// leaves garbage.
    pub(super) fn draw_torn(&mut self, r: u8) -> (Vec<u32>, bool) {
        if self.options.group_count == 1 {
            let recent = self.cluster.storage(r).recent_writes() as u32;
            return self.draw_torn_in(recent);
        }
        let (mut torn, mut garbage, mut offset) = (Vec::new(), false, 0);
        for g in 0..self.options.group_count as usize {
            let recent = self.cluster.storage_in(r, g).recent_writes() as u32;
            let (lost, dirty) = self.draw_torn_in(recent);
            torn.extend(lost.into_iter().map(|p| p + offset));
            garbage |= dirty;
            offset += recent;
        }
        (torn, garbage)
    }

    /// Which of a region's `recent` writes in flight a crash loses: the newest few (a disk
    /// that persists in submission order, as the replica's storage contract says), or with
    /// `torn_writes_unordered` half the time any of them.
    fn draw_torn_in(&mut self, recent: u32) -> (Vec<u32>, bool) {
        if recent == 0 || !self.prng_faults.chance(self.options.torn_write_probability) {
            return (Vec::new(), false);
        }
        let unordered = self.options.torn_writes_unordered && self.prng_faults.chance(0.5);
        let lost: Vec<u32> = if !unordered {
            let count = self.prng_faults.range_u64(1, recent as u64) as u32;
            (recent - count..recent).collect()
        } else {
            let lost: Vec<u32> = (0..recent)
                .filter(|_| self.prng_faults.chance(0.5))
                .collect();
            if lost.is_empty() {
                vec![recent - 1]
            } else {
                lost
            }
        };
        (lost, self.prng_faults.chance(0.3))
    }

    /// Crashes replica `r` now (scheduled to restart at `restart_tick`, or never); a crash
    /// may tear its newest writes in flight, as drawn from the seed.
    pub fn crash(&mut self, r: u8, restart_tick: Option<u64>) {
        self.crash_drawn(r, restart_tick, None);
    }

    /// Crashes replica `r` now, the writes it loses drawn from the seed (`draw_torn`).
    pub(super) fn crash_drawn(&mut self, r: u8, restart_tick: Option<u64>, aimed: Option<Aimed>) {
        let (torn, garbage) = self.draw_torn(r);
        self.execute(Fault::Crash {
            replica: r,
            restart_tick,
            torn,
            garbage,
            aimed,
        });
    }

    /// Whether replica `r` has been up long enough to crash again (`crash_stability_ticks`).
    pub(super) fn crash_stable(&self, r: u8) -> bool {
        let since = self.cluster.slots[r as usize].up_since_tick;
        self.tick >= since + self.options.crash_stability_ticks
    }

    /// A latent fault or a stale sector at the journal slot of a recent op (committed or not;
    /// header record or prepare), a latent fault on one superblock or checkpoint copy, or a
    /// misdirected or lost write (the newest in flight, any zone), within the fault atlas
    /// unless told otherwise. Drawn from the seed.
    pub fn inject_storage_fault(&mut self, r: u8) -> bool {
        // Which group's region (no draw with one group: single-group seeds keep their runs).
        let g = match self.options.group_count {
            1 => 0,
            n => self.prng_faults.range_u64(0, n as u64 - 1) as usize,
        };
        match self.draw_disk_fault(r, g) {
            Some(fault) => self.execute(Fault::Storage {
                replica: r,
                group: g as u8,
                fault,
            }),
            None => false,
        }
    }

    fn draw_disk_fault(&mut self, r: u8, g: usize) -> Option<DiskFault> {
        // Kind 12 (across regions) exists only with several groups: single-group seeds keep
        // their draws.
        let groups = self.options.group_count as u64;
        let kind = self
            .prng_faults
            .range_u64(0, if groups > 1 { 12 } else { 11 });
        // Every other latent fault reads back as nothing instead of corrupted, by the tick's
        // parity: no draw, so the fault stream of a seed is what it was before this kind.
        let tick = self.tick;
        let latent = |zone, index| match (tick + index) % 2 {
            0 => Some(DiskFault::Latent { zone, index }),
            _ => Some(DiskFault::Unreadable { zone, index }),
        };
        match kind {
            0 => {
                let copies = self.layout.superblock_copies;
                latent(Zone::Superblock, self.prng_faults.range_u64(0, copies - 1))
            }
            1 => {
                let area = self.prng_faults.range_u64(0, 1);
                let copies = self.layout.checkpoint_copies;
                let copy = self.prng_faults.range_u64(0, copies - 1);
                latent(Zone::Checkpoint, area * copies + copy)
            }
            // The newest write in flight lands in another group's region.
            12 => {
                self.cluster.storage_in(r, g).newest_pending()?;
                let to = (g as u64 + self.prng_faults.range_u64(1, groups - 1)) % groups;
                Some(DiskFault::MisdirectToGroup { to_group: to as u8 })
            }
            // The newest write in flight, in any zone (a superblock or checkpoint copy too).
            2 | 3 => {
                let (zone, _) = self.cluster.storage_in(r, g).newest_pending()?;
                if kind == 3 {
                    return Some(DiskFault::Lost);
                }
                let len = zone_len(zone.into(), self.options.journal_slot_count, &self.layout);
                let to = self.prng_faults.range_u64(0, len - 1);
                Some(DiskFault::Misdirect { to })
            }
            // A journal slot of an op from a ring's length below the cluster's commit up to
            // this replica's own head (committed or not).
            _ => {
                let commit = self.oracles[g].commit_max();
                let head = self.cluster.group(r, g).map_or(0, |x| x.op()).max(commit);
                if head == 0 {
                    return None;
                }
                let slots = self.options.journal_slot_count;
                let op = self
                    .prng_faults
                    .range_u64(commit.saturating_sub(slots - 1).max(1), head);
                let zone = if kind.is_multiple_of(2) {
                    Zone::WalPrepares
                } else {
                    Zone::WalHeaders
                };
                let index = op % slots;
                match kind {
                    10 | 11 => Some(DiskFault::Stale { zone, index }),
                    _ => latent(zone, index),
                }
            }
        }
    }

    // ----- Taking effect -----

    pub(super) fn crash_now(
        &mut self,
        r: u8,
        restart_tick: Option<u64>,
        torn: &[u32],
        garbage: bool,
        aimed: Option<Aimed>,
    ) -> bool {
        if !self.cluster.is_up(r) {
            return false;
        }
        if let Some(kind) = aimed {
            self.count_aimed(r, kind);
        }
        for g in 0..self.options.group_count as usize {
            if let Some(replica) = self.cluster.group(r, g) {
                self.counters.crashed_stats[g].add(&replica.stats());
            }
        }
        if let Some(node) = self.cluster.node(r) {
            self.counters.dropped_namespace_crashed += node.messages_dropped_namespace();
        }
        self.cluster.crash(r, restart_tick);
        self.network.drop_packets_to(r as usize);
        self.paused_until[r as usize] = None;
        self.paused_inbox[r as usize].clear();
        self.durable_view[r as usize].fill((0, 0));
        // Writes in flight may be lost (what waited for them in the replica's outbox is gone
        // with the replica). A solo replica too: it commits only once its write is durable
        // (seed 121 was found when its writes were synchronous and could not be torn).
        let torn = self.lose_at_crash(r, torn, garbage);
        self.counters.writes_torn += torn;
        self.counters.storage_faults += torn;
        self.counters.crashes += 1;
        self.trace.record(trace::Event::Crash {
            tick: self.tick,
            replica: r,
        });
        true
    }

    /// Node `r`'s regions lose the writes in flight at positions `torn` (numbered across its
    /// regions in group order, as `draw_torn` draws them). Returns how many were lost.
    fn lose_at_crash(&mut self, r: u8, torn: &[u32], garbage: bool) -> u64 {
        let mut offset = 0;
        let mut lost = 0;
        for g in 0..self.options.group_count as usize {
            let storage = self.cluster.storage_in_mut(r, g);
            let recent = storage.recent_writes() as u32;
            let mine: Vec<u32> = torn
                .iter()
                .filter(|&&p| p >= offset && p < offset + recent)
                .map(|&p| p - offset)
                .collect();
            // Positions past every region (an edited schedule) go to the last one, which
            // ignores what it does not hold.
            let mine = if g + 1 == self.options.group_count as usize {
                let beyond = torn.iter().filter(|&&p| p >= offset + recent);
                mine.into_iter()
                    .chain(beyond.map(|&p| p - offset))
                    .collect()
            } else {
                mine
            };
            lost += storage.lose_at_crash(&mine, garbage) as u64;
            offset += recent;
        }
        lost
    }

    /// A disk fault on replica `r`, if the fault atlas allows it (or faults beyond the atlas
    /// are on): at most quorum - 1 replicas faulty at any journal slot, one zone per replica
    /// and slot, never every superblock copy, never both copies of a checkpoint.
    fn disk_fault(&mut self, r: u8, g: usize, fault: &DiskFault) -> bool {
        let done = match *fault {
            DiskFault::Latent { zone, index } => {
                self.atlas_allows_at(r, g, zone, index)
                    && self
                        .cluster
                        .storage_in_mut(r, g)
                        .corrupt(zone.into(), index)
            }
            DiskFault::Unreadable { zone, index } => {
                self.atlas_allows_at(r, g, zone, index)
                    && self
                        .cluster
                        .storage_in_mut(r, g)
                        .make_unreadable(zone.into(), index)
            }
            DiskFault::Stale { zone, index } => {
                self.atlas_allows_at(r, g, zone, index)
                    && self.cluster.storage_in_mut(r, g).stale(zone.into(), index)
            }
            DiskFault::Misdirect { to } => {
                let Some((zone, from)) = self.cluster.storage_in(r, g).newest_pending() else {
                    return false;
                };
                let zone = Zone::from(zone);
                let done = self.atlas_allows_at(r, g, zone, from)
                    && self.atlas_allows_at(r, g, zone, to)
                    && to < zone_len(zone, self.options.journal_slot_count, &self.layout)
                    && self.cluster.storage_in_mut(r, g).misdirect_newest(to);
                self.counters.writes_misdirected += done as u64;
                done
            }
            DiskFault::MisdirectToGroup { to_group } => {
                let h = to_group as usize;
                let Some((zone, index)) = self.cluster.storage_in(r, g).newest_pending() else {
                    return false;
                };
                let zone = Zone::from(zone);
                let fits = h != g
                    && h < self.options.group_count as usize
                    && self.atlas_allows_at(r, g, zone, index)
                    && self.atlas_allows_at(r, h, zone, index);
                let done = fits && self.misdirect_across(r, g, h);
                self.counters.writes_misdirected += done as u64;
                done
            }
            DiskFault::Lost => {
                let Some((zone, from)) = self.cluster.storage_in(r, g).newest_pending() else {
                    return false;
                };
                let done = self.atlas_allows_at(r, g, zone.into(), from)
                    && self.cluster.storage_in_mut(r, g).lose_newest();
                self.counters.writes_lost += done as u64;
                done
            }
        };
        self.counters.storage_faults += done as u64;
        done
    }

    /// Moves node `r`'s newest write in flight in group `g`'s region into group `h`'s region.
    fn misdirect_across(&mut self, r: u8, g: usize, h: usize) -> bool {
        let (zone, index) = self
            .cluster
            .storage_in(r, g)
            .newest_pending()
            .expect("checked");
        if self.cluster.storage_in(r, h).is_pending_at(zone, index) {
            return false;
        }
        let (zone, index, data) = self
            .cluster
            .storage_in_mut(r, g)
            .misdirect_newest_away()
            .expect("checked");
        self.cluster
            .storage_in_mut(r, h)
            .receive_misdirected(zone, index, data)
    }

    /// Whether the atlas allows one more fault at `(zone, index)` of replica `r`.
    fn atlas_allows_at(&self, r: u8, g: usize, zone: Zone, index: u64) -> bool {
        if self.options.storage_faults_beyond_atlas {
            return true;
        }
        match zone {
            Zone::Superblock => {
                let copies = self.layout.superblock_copies;
                self.faulty_copies(r, g, zone, 0, copies) < copies - 1
            }
            Zone::Checkpoint => {
                let copies = self.layout.checkpoint_copies;
                let first = index - index % copies;
                self.faulty_copies(r, g, zone, first, copies) < copies - 1
            }
            Zone::WalHeaders | Zone::WalPrepares => self.atlas_allows(r, g, index),
        }
    }

    fn faulty_copies(&self, r: u8, g: usize, zone: Zone, first: u64, copies: u64) -> u64 {
        let storage = self.cluster.storage_in(r, g);
        (first..first + copies)
            .filter(|&c| storage.is_tampered(zone.into(), c))
            .count() as u64
    }

    fn atlas_allows(&self, r: u8, g: usize, slot: u64) -> bool {
        let quorum = self.quorum();
        let mine = self
            .cluster
            .storage_in(r, g)
            .faulty_slots()
            .any(|s| s == slot);
        let others = (0..self.options.replica_count)
            .filter(|&x| {
                x != r
                    && self
                        .cluster
                        .storage_in(x, g)
                        .faulty_slots()
                        .any(|s| s == slot)
            })
            .count();
        !mine && others + 1 < quorum
    }
}

/// How many locations `zone` has.
fn zone_len(zone: Zone, journal_slots: u64, layout: &DiskLayout) -> u64 {
    match zone {
        Zone::Superblock => layout.superblock_copies,
        Zone::Checkpoint => 2 * layout.checkpoint_copies,
        Zone::WalHeaders | Zone::WalPrepares => journal_slots,
    }
}
