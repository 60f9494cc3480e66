//! Faults as events (`crate::schedule`): the swarm's draws turn into events, and every event,
//! drawn or replayed from a schedule, takes effect in `execute`, which records it. So a run
//! drawn from a seed and the replay of its schedule go through the same code.

use super::Simulation;
use crate::aim::Aimed;
use crate::schedule::{DiskFault, Event, Fault, Point, Zone};
use crate::trace;
use consensus::storage::Zone as StorageZone;

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
            &Fault::Crash {
                replica,
                restart_tick,
                torn,
                aimed,
            } => self.crash_now(replica, restart_tick, torn, aimed),
            &Fault::Pause { replica, ticks } => self.pause(replica, ticks),
            &Fault::Isolate {
                replica,
                ticks,
                aimed,
            } => self.isolate_for(replica, ticks, aimed),
            // Dropped in the send loop (`drop_start_view`), which records it.
            Fault::DropStartView { .. } => false,
            Fault::Storage { replica, fault } => self.disk_fault(*replica, fault),
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
            let slot = &self.cluster.slots[r as usize];
            let stable = self.tick >= slot.up_since_tick + self.options.crash_stability_ticks;
            if slot.replica.is_some() && stable && self.prng_faults.chance(p) {
                let delay = self
                    .prng_faults
                    .exponential(self.options.restart_delay_mean_ticks as f64)
                    .max(1);
                let torn = self.draw_torn(r);
                self.execute(Fault::Crash {
                    replica: r,
                    restart_tick: Some(self.tick + delay),
                    torn,
                    aimed: None,
                });
            } else if slot.replica.is_some() && stable {
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

    /// How many of replica `r`'s writes in flight a crash now tears (the newest ones).
    pub(super) fn draw_torn(&mut self, r: u8) -> u64 {
        let recent = self.cluster.storage(r).recent_writes() as u64;
        if recent > 0 && self.prng_faults.chance(self.options.torn_write_probability) {
            self.prng_faults.range_u64(1, recent)
        } else {
            0
        }
    }

    /// Crashes replica `r` now (scheduled to restart at `restart_tick`, or never); a crash
    /// may tear its newest writes in flight, as drawn from the seed.
    pub fn crash(&mut self, r: u8, restart_tick: Option<u64>) {
        let torn = self.draw_torn(r);
        self.execute(Fault::Crash {
            replica: r,
            restart_tick,
            torn,
            aimed: None,
        });
    }

    /// A latent fault on the slot of a recently committed op (header record or prepare), on
    /// one superblock copy or on one checkpoint copy, or a misdirected or lost journal
    /// write, within the fault atlas unless told otherwise. Drawn from the seed.
    pub fn inject_storage_fault(&mut self, r: u8) -> bool {
        match self.draw_disk_fault(r) {
            Some(fault) => self.execute(Fault::Storage { replica: r, fault }),
            None => false,
        }
    }

    fn draw_disk_fault(&mut self, r: u8) -> Option<DiskFault> {
        let kind = self.prng_faults.range_u64(0, 9);
        let latent = |zone, index| Some(DiskFault::Latent { zone, index });
        match kind {
            0 => {
                let copies = consensus::superblock::SUPERBLOCK_COPIES;
                latent(Zone::Superblock, self.prng_faults.range_u64(0, copies - 1))
            }
            1 => {
                let area = self.prng_faults.range_u64(0, 1);
                let copies = consensus::checkpoint::CHECKPOINT_COPIES;
                let copy = self.prng_faults.range_u64(0, copies - 1);
                latent(Zone::Checkpoint, area * copies + copy)
            }
            2 | 3 => {
                let (zone, _) = self.cluster.storage(r).newest_pending()?;
                if !matches!(zone, StorageZone::WalHeaders | StorageZone::WalPrepares) {
                    return None;
                }
                if kind == 3 {
                    return Some(DiskFault::Lost);
                }
                let to = self
                    .prng_faults
                    .range_u64(0, self.options.journal_slot_count - 1);
                Some(DiskFault::Misdirect { to })
            }
            _ => {
                let commit = self.oracle.commit_max();
                if commit == 0 {
                    return None;
                }
                let slots = self.options.journal_slot_count;
                let op = self
                    .prng_faults
                    .range_u64(commit.saturating_sub(slots - 1).max(1), commit);
                let zone = if kind.is_multiple_of(2) {
                    Zone::WalPrepares
                } else {
                    Zone::WalHeaders
                };
                latent(zone, op % slots)
            }
        }
    }

    // ----- Taking effect -----

    pub(super) fn crash_now(
        &mut self,
        r: u8,
        restart_tick: Option<u64>,
        torn: u64,
        aimed: Option<Aimed>,
    ) -> bool {
        if !self.cluster.is_up(r) {
            return false;
        }
        if let Some(kind) = aimed {
            self.count_aimed(r, kind);
        }
        if let Some(replica) = self.cluster.replica(r) {
            self.counters.crashed_stats.add(&replica.stats());
        }
        self.cluster.crash(r, restart_tick);
        self.network.drop_packets_to(r as usize);
        self.paused_until[r as usize] = None;
        self.paused_inbox[r as usize].clear();
        self.durable_view[r as usize] = (0, 0);
        // Writes in flight may be lost (what waited for them in the replica's outbox is gone
        // with the replica). A solo replica too: it commits only once its write is durable
        // (seed 121 was found when its writes were synchronous and could not be torn).
        if torn > 0 {
            let torn = self.cluster.storage_mut(r).tear(torn as usize) as u64;
            self.counters.writes_torn += torn;
            self.counters.storage_faults += torn;
        } else {
            self.cluster.storage_mut(r).flush();
        }
        self.counters.crashes += 1;
        self.trace.record(trace::Event::Crash {
            tick: self.tick,
            replica: r,
        });
        true
    }

    /// A disk fault on replica `r`, if the fault atlas allows it (or faults beyond the atlas
    /// are on): at most quorum - 1 replicas faulty at any journal slot, one zone per replica
    /// and slot, never every superblock copy, never both copies of a checkpoint.
    fn disk_fault(&mut self, r: u8, fault: &DiskFault) -> bool {
        let beyond = self.options.storage_faults_beyond_atlas;
        let done = match *fault {
            DiskFault::Latent { zone, index } => {
                let allowed = beyond
                    || match zone {
                        Zone::Superblock => {
                            let copies = consensus::superblock::SUPERBLOCK_COPIES;
                            self.faulty_copies(r, zone, 0, copies) < copies - 1
                        }
                        Zone::Checkpoint => {
                            let copies = consensus::checkpoint::CHECKPOINT_COPIES;
                            let first = index - index % copies;
                            self.faulty_copies(r, zone, first, copies) < copies - 1
                        }
                        Zone::WalHeaders | Zone::WalPrepares => self.atlas_allows(r, index),
                    };
                allowed && self.cluster.storage_mut(r).corrupt(zone.into(), index)
            }
            DiskFault::Misdirect { to } => {
                let Some(from) = self.newest_journal_write(r) else {
                    return false;
                };
                let allowed = beyond || (self.atlas_allows(r, from) && self.atlas_allows(r, to));
                let done = allowed && self.cluster.storage_mut(r).misdirect_newest(to);
                self.counters.writes_misdirected += done as u64;
                done
            }
            DiskFault::Lost => {
                let Some(from) = self.newest_journal_write(r) else {
                    return false;
                };
                let done = (beyond || self.atlas_allows(r, from))
                    && self.cluster.storage_mut(r).lose_newest();
                self.counters.writes_lost += done as u64;
                done
            }
        };
        self.counters.storage_faults += done as u64;
        done
    }

    /// The slot of replica `r`'s newest write in flight, if it is a journal write.
    fn newest_journal_write(&self, r: u8) -> Option<u64> {
        match self.cluster.storage(r).newest_pending()? {
            (StorageZone::WalHeaders | StorageZone::WalPrepares, slot) => Some(slot),
            _ => None,
        }
    }

    fn faulty_copies(&self, r: u8, zone: Zone, first: u64, copies: u64) -> u64 {
        let storage = self.cluster.storage(r);
        (first..first + copies)
            .filter(|&c| storage.is_faulty(zone.into(), c))
            .count() as u64
    }

    fn atlas_allows(&self, r: u8, slot: u64) -> bool {
        let quorum = self.options.replica_count as usize / 2 + 1;
        let mine = self.cluster.storage(r).faulty_slots().any(|s| s == slot);
        let others = (0..self.options.replica_count)
            .filter(|&x| x != r && self.cluster.storage(x).faulty_slots().any(|s| s == slot))
            .count();
        !mine && others + 1 < quorum
    }
}
