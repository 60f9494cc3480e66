//! The liveness phase: heal, pick the core, restart it, and wait until every group converges.

use super::*;

impl Simulation {
    /// Heals the network, stops faults, restarts a quorum core and crashes the rest; clients
    /// stop issuing new requests and finish the ones in flight.
    pub fn start_liveness_phase(&mut self) {
        self.phase = Phase::Liveness;
        self.trace.record(Event::Liveness { tick: self.tick });
        self.network.set_faults_enabled(false);
        let replayed = self
            .replay
            .as_mut()
            .and_then(|r| r.next_at(self.tick, Point::Liveness));
        self.core = match replayed {
            Some(schedule::Event {
                fault: Fault::Liveness { core },
                ..
            }) => core,
            _ => self.draw_core(),
        };
        self.record(Fault::Liveness {
            core: self.core.clone(),
        });
        if self.options.storage_faults_beyond_atlas {
            // A core replica whose disk lost what no peer may hold reopens now: its recovery
            // must either repair or refuse, clearly, rather than stall while running.
            for &r in &self.core.clone() {
                if self.cluster.is_up(r) && !self.cluster.disks_clean(r) {
                    self.crash_now(r, None, &[], false, None);
                }
            }
        }
        for r in 0..self.options.replica_count {
            let in_core = self.core.contains(&r);
            if in_core && !self.cluster.is_up(r) {
                self.restart(r);
            } else if !in_core && self.cluster.is_up(r) {
                // Stopped, not a fault (the liveness event implies it, so it is not recorded):
                // it never restarts, so no write of it is torn.
                self.crash_now(r, None, &[], false, None);
            } else if !in_core {
                self.cluster.slots[r as usize].restart_tick = None;
            }
        }
        for client in &mut self.clients {
            client.draining = true;
            client.liveness_requests = LIVENESS_REQUESTS;
        }
        self.end_all_aimed_faults();
    }

    /// The replicas that must converge: a quorum must manage alone, if a quorum of replicas
    /// has clean disks (any quorum meets every commit quorum in a replica with an intact
    /// copy); otherwise an op's only intact copy may be on any replica, so every replica.
    pub(super) fn draw_core(&mut self) -> Vec<u8> {
        let mut replicas: Vec<u8> = (0..self.options.replica_count)
            .filter(|&r| self.cluster.disks_clean(r))
            .collect();
        self.prng_faults.shuffle(&mut replicas);
        let quorum = self.quorum();
        let mut core = if replicas.len() >= quorum {
            replicas[..quorum].to_vec()
        } else {
            (0..self.options.replica_count).collect()
        };
        core.sort_unstable();
        core
    }

    /// In every group the core agrees, and every client request completed, the liveness
    /// phase's new ones too.
    pub fn converged(&self) -> bool {
        if self
            .clients
            .iter()
            .any(|c| c.in_flight.is_some() || c.liveness_requests > 0)
        {
            return false;
        }
        (0..self.options.group_count as usize).all(|g| self.group_converged(g))
    }

    pub(super) fn group_converged(&self, g: usize) -> bool {
        let core: Vec<&dyn GroupView> = self
            .core
            .iter()
            .filter_map(|&r| self.cluster.group(r, g))
            .collect();
        if core.len() != self.core.len() {
            return false;
        }
        let first = core[0];
        let commit = first.commit_min();
        let oracle = &self.oracles[g];
        core.iter().all(|r| {
            r.status() == consensus::Status::Normal
                && r.view() == first.view()
                && r.commit_min() == commit
                && r.commit_max() == commit
                && r.op() == first.op()
        }) && commit >= oracle.commit_max()
            && core
                .iter()
                .all(|r| r.header(commit).map(|h| h.checksum) == oracle.checksum(commit))
    }

    /// Beyond the fault atlas, a core replica refused to open because its disk lost what no
    /// peer could give back: that refusal is the right answer (a replica that reopened as if
    /// nothing happened would be the bug), so the liveness phase expects no convergence.
    pub fn refusal_expected(&self) -> bool {
        self.options.storage_faults_beyond_atlas
            && self.core.iter().any(|&r| {
                self.refused.contains(&r) && !self.cluster.is_up(r) && !self.cluster.disks_clean(r)
            })
    }

    /// Beyond the fault atlas, a group whose core cannot finish a view change by the
    /// protocol's own rules, decided at the liveness deadline: fewer than a quorum of its core
    /// replicas may offer their log, the others having lost (on a disk the world tampered
    /// with) state they may have acknowledged; or a committed op that no core replica holds
    /// intact any more, nor covers with a checkpoint (every copy was lost); or an op no core
    /// replica holds intact that too many of them may have acknowledged (unreadable copies,
    /// on tampered disks) for the rest to make a nack quorum. Stalling is then the right
    /// answer; TigerBeetle's simulator excuses the same (`core_missing_quorum`,
    /// `core_missing_prepare`). Found with 2-replica sweeps (seeds 30171, 30477, 31036, 31415,
    /// 37978 with `--replicas 2`).
    pub fn stall_expected(&self) -> bool {
        self.options.storage_faults_beyond_atlas
            && (0..self.options.group_count as usize).any(|g| {
                !self.group_converged(g)
                    && (self.core_lacks_offering_quorum(g)
                        || self.core_lost_committed_op(g)
                        || self.core_can_neither_repair_nor_nack(g))
            })
    }

    /// Group `g`'s replicas of the core that are up, and the newest checkpoint among them
    /// (ops at or below it can come back by state transfer).
    fn core_views(&self, g: usize) -> (Vec<(u8, &dyn GroupView)>, u64) {
        let core: Vec<(u8, &dyn GroupView)> = self
            .core
            .iter()
            .filter_map(|&r| self.cluster.group(r, g).map(|view| (r, view)))
            .collect();
        let floor = core
            .iter()
            .map(|(_, v)| v.checkpoint_op())
            .max()
            .unwrap_or(0);
        (core, floor)
    }

    fn core_can_neither_repair_nor_nack(&self, g: usize) -> bool {
        let nack_quorum = self.options.replica_count as usize - self.quorum() + 1;
        let (core, floor) = self.core_views(g);
        let top = core.iter().map(|(_, v)| v.acked_max()).max().unwrap_or(0);
        (floor + 1..=top).any(|op| {
            let intact = core.iter().any(|(_, v)| v.prepare(op).is_some());
            let unreadable: Vec<u8> = core
                .iter()
                .filter(|(_, v)| v.holds_unreadable(op))
                .map(|&(r, _)| r)
                .collect();
            !intact
                && core.len() - unreadable.len() < nack_quorum
                && unreadable.iter().all(|&r| !self.cluster.disks_clean(r))
        })
    }

    fn core_lacks_offering_quorum(&self, g: usize) -> bool {
        let mut offering = 0;
        for &r in &self.core {
            match self.cluster.group(r, g) {
                Some(view) if view.offers_log() => offering += 1,
                // Holding back for a reason the world did not cause would be a bug.
                Some(_) if self.cluster.disks_clean(r) => return false,
                _ => {}
            }
        }
        offering < self.quorum()
    }

    fn core_lost_committed_op(&self, g: usize) -> bool {
        let oracle = &self.oracles[g];
        let (core, floor) = self.core_views(g);
        (floor + 1..=oracle.commit_max()).any(|op| {
            let committed = oracle.checksum(op);
            !core
                .iter()
                .any(|(_, r)| r.prepare(op).map(|m| m.header.checksum) == committed)
        })
    }

    /// A majority of the replicas.
    pub(super) fn quorum(&self) -> usize {
        self.options.replica_count as usize / 2 + 1
    }

    /// Replicas of the core that have not converged, for the liveness report.
    pub fn liveness_report(&self) -> String {
        let mut parts = Vec::new();
        for g in 0..self.options.group_count as usize {
            if self.options.group_count > 1 && self.group_converged(g) {
                continue;
            }
            for &r in &self.core {
                let name = match self.options.group_count {
                    1 => format!("r{r}"),
                    _ => format!("group {g} r{r}"),
                };
                match self.cluster.group(r, g) {
                    Some(x) => parts.push(format!("{name}: {}", x.describe())),
                    None => parts.push(format!("{name}: down")),
                }
            }
        }
        let waiting: Vec<String> = self
            .clients
            .iter()
            .filter_map(|c| {
                let f = c.in_flight.as_ref()?;
                Some(format!(
                    "client {} session {} request {} since tick {} (attempts {}, target r{})",
                    c.describe(),
                    c.session,
                    f.request,
                    f.call_tick,
                    f.attempts,
                    c.target
                ))
            })
            .collect();
        let commits: Vec<String> = self
            .oracles
            .iter()
            .map(|o| o.commit_max().to_string())
            .collect();
        format!(
            "core {:?} did not converge (cluster commit {}): {}; waiting: [{}]",
            self.core,
            commits.join("/"),
            parts.join(", "),
            waiting.join(", ")
        )
    }
}
