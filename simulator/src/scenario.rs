//! A scripting API over the simulator for tests that read like a scenario, in the spirit of
//! TigerBeetle's replica tests: crash a replica, partition, heal, run until a condition.
//!
//! ```no_run
//! use simulator::scenario::Scenario;
//! let mut s = Scenario::new(1, 5, 2);
//! s.run_until(5_000, |s| s.commit_max() >= 20).unwrap();
//! let primary = s.primary().unwrap();
//! s.crash(primary);
//! s.run_until(10_000, |s| s.primary().is_some_and(|p| p != primary)).unwrap();
//! ```

use crate::cluster::{SimReplica, CLUSTER};
use crate::node::GroupView;
use crate::options::Options;
use crate::simulation::Simulation;
use crate::trace::Trace;
use crate::workload::ClientAction;
use consensus::wire::Message;
use consensus::{KvOp, Status};

pub struct Scenario {
    pub sim: Simulation,
}

impl Scenario {
    /// A fault-free cluster of `replicas` with `clients` issuing requests steadily; faults
    /// come only from the script.
    pub fn new(seed: u64, replicas: u8, clients: u8) -> Scenario {
        Scenario::configured(seed, replicas, clients, |_| {})
    }

    /// `new`, with the options adjusted by `configure` before the cluster is formatted (for
    /// instance a small journal ring or a slow disk).
    pub fn configured(
        seed: u64,
        replicas: u8,
        clients: u8,
        configure: impl FnOnce(&mut Options),
    ) -> Scenario {
        let mut options = Options::from_seed(seed).without_faults();
        options.replica_count = replicas;
        options.client_count = clients;
        options.request_probability = 0.2;
        options.idle_on_probability = 0.0;
        options.request_timeout_ticks = 100;
        options.network.one_way_delay_min_ticks = 1;
        options.network.one_way_delay_mean_ticks = 3;
        options.network.path_capacity_max = 64;
        // Every client keeps its session: evictions happen only where a script asks for them.
        options.clients_max = 32;
        // One group unless the script asks for more.
        options.group_count = 1;
        configure(&mut options);
        Scenario::with_options(seed, options)
    }

    pub fn with_options(seed: u64, options: Options) -> Scenario {
        let mut sim = Simulation::new(seed, options, Trace::new(None));
        sim.faults_enabled = false;
        Scenario { sim }
    }

    pub fn replica(&self, r: u8) -> &SimReplica {
        self.sim.cluster.replica(r).expect("replica is up")
    }

    /// The primary of the highest view in which some replica is normal.
    pub fn primary(&self) -> Option<u8> {
        self.sim
            .cluster
            .up()
            .filter(|(_, x)| x.status() == Status::Normal && x.is_primary())
            .max_by_key(|(_, x)| x.view())
            .map(|(r, _)| r)
    }

    /// Highest op committed anywhere (the oracle's canonical chain) in the metadata group.
    pub fn commit_max(&self) -> u64 {
        self.sim.oracles[0].commit_max()
    }

    /// A fault-free cluster of `replicas` nodes, each hosting `groups` consensus groups.
    pub fn groups(seed: u64, replicas: u8, clients: u8, groups: u8) -> Scenario {
        Scenario::configured(seed, replicas, clients, |o| o.group_count = groups)
    }

    /// Group `g`'s replica on node `r` (up).
    pub fn group(&self, r: u8, g: usize) -> &dyn GroupView {
        self.sim.cluster.group(r, g).expect("node is up")
    }

    /// The primary of group `g` in the highest view in which one of its replicas is normal.
    pub fn primary_in(&self, g: usize) -> Option<u8> {
        self.sim
            .cluster
            .up_in(g)
            .filter(|(_, x)| x.status() == Status::Normal && x.is_primary())
            .max_by_key(|(_, x)| x.view())
            .map(|(r, _)| r)
    }

    /// Highest op committed anywhere in group `g`.
    pub fn commit_max_in(&self, g: usize) -> u64 {
        self.sim.oracles[g].commit_max()
    }

    pub fn crash(&mut self, r: u8) {
        self.sim.crash(r, None);
    }

    pub fn restart(&mut self, r: u8) {
        self.sim.restart(r);
    }

    /// Crashes replica `r` mid-tick: the messages it sent in its last tick are lost and every
    /// write of that tick is torn.
    pub fn crash_tearing(&mut self, r: u8) -> usize {
        let recent = self.sim.cluster.storage(r).recent_writes();
        let probability = self.sim.options.torn_write_probability;
        self.sim.options.torn_write_probability = 1.0;
        let torn_before = self.sim.counters.writes_torn;
        // Tear everything: a count drawn up to `recent` may be less, so tear directly.
        self.sim.crash(r, None);
        let torn = (self.sim.counters.writes_torn - torn_before) as usize;
        let rest = self.sim.cluster.storage_mut(r).tear(recent);
        self.sim.options.torn_write_probability = probability;
        torn + rest
    }

    /// Makes the prepare of `op` (its journal slot) on replica `r` read back corrupted.
    pub fn corrupt_prepare(&mut self, r: u8, op: u64) -> bool {
        let zone = consensus::storage::Zone::WalPrepares;
        let slot = op % self.sim.options.journal_slot_count;
        self.sim.cluster.storage_mut(r).corrupt(zone, slot)
    }

    /// Makes the header record of `op` (its journal slot) on replica `r` read back corrupted.
    pub fn corrupt_header(&mut self, r: u8, op: u64) -> bool {
        let zone = consensus::storage::Zone::WalHeaders;
        let slot = op % self.sim.options.journal_slot_count;
        self.sim.cluster.storage_mut(r).corrupt(zone, slot)
    }

    /// Undoes the corruption of `op`'s journal slot (header record and prepare) on replica
    /// `r`, which must be down: the latent fault turns out to have been transient, and the slot
    /// reads back what was last written there. Returns the zones healed.
    pub fn heal_slot(&mut self, r: u8, op: u64) -> usize {
        use consensus::storage::{Storage, Zone};
        assert!(
            !self.sim.cluster.is_up(r),
            "heal the disk of a replica that is down"
        );
        let slot = op % self.sim.options.journal_slot_count;
        let storage = self.sim.cluster.storage_mut(r);
        let mut healed = 0;
        for zone in [Zone::WalHeaders, Zone::WalPrepares] {
            if !storage.is_faulty(zone, slot) {
                continue;
            }
            let bytes = storage
                .durable_read(zone, slot)
                .expect("a faulty location holds data");
            // A rewrite of the same bytes clears the fault.
            storage.write(zone, slot, bytes);
            healed += 1;
        }
        storage.flush();
        healed
    }

    /// Makes every copy of both checkpoint areas of replica `r` read back corrupted (beyond
    /// the atlas: the replica can only recover its state from a peer). Returns copies hit.
    pub fn corrupt_checkpoints(&mut self, r: u8) -> usize {
        let zone = consensus::storage::Zone::Checkpoint;
        let copies = 2 * consensus::checkpoint::CHECKPOINT_COPIES;
        (0..copies)
            .filter(|&index| self.sim.cluster.storage_mut(r).corrupt(zone, index))
            .count()
    }

    /// Makes superblock copy `copy` of replica `r` read back corrupted.
    pub fn corrupt_superblock(&mut self, r: u8, copy: u64) -> bool {
        let zone = consensus::storage::Zone::Superblock;
        self.sim.cluster.storage_mut(r).corrupt(zone, copy)
    }

    /// Cuts the replicas into `groups` (both directions).
    pub fn partition(&mut self, groups: &[&[u8]]) {
        let groups: Vec<Vec<usize>> = groups
            .iter()
            .map(|g| g.iter().map(|&r| r as usize).collect())
            .collect();
        let refs: Vec<&[usize]> = groups.iter().map(|g| g.as_slice()).collect();
        self.sim.network.partition_now(&refs);
    }

    pub fn heal(&mut self) {
        self.sim.network.heal();
    }

    /// Drops every delivered message for which `drop` returns true (from node, to node).
    pub fn drop_messages(
        &mut self,
        mut drop: impl FnMut(usize, usize, &Message) -> bool + 'static,
    ) {
        self.sim.filter = Some(Box::new(move |from, to, m| !drop(from, to, m)));
    }

    /// Puts `message` on the network now as if node `from` had sent it to node `to`
    /// (replicas are nodes `0..replica_count`, client `i` is node `replica_count + i`), for
    /// scripts that replay a message they recorded earlier (with a `drop_messages` closure
    /// that keeps a copy and returns false). Partitions and `drop_messages` apply to it.
    pub fn inject(&mut self, from: usize, to: usize, message: &Message) {
        let tick = self.sim.tick;
        self.sim.network.submit(from, to, message.encode(), tick);
    }

    /// Drops every message of the named command (e.g. "prepare_ok").
    pub fn drop_command(&mut self, name: &'static str) {
        self.drop_messages(move |_, _, m: &Message| m.header.command.name() == name);
    }

    pub fn clear_drops(&mut self) {
        self.sim.filter = None;
    }

    /// Stops clients from issuing new requests.
    pub fn stop_clients(&mut self) {
        for c in &mut self.sim.clients {
            c.draining = true;
        }
    }

    /// Lets clients issue requests again after `stop_clients`.
    pub fn resume_clients(&mut self) {
        for c in &mut self.sim.clients {
            c.draining = false;
        }
    }

    /// Client `client` (registered, nothing in flight) sends one request for `op` to replica
    /// `to` now, even while clients are stopped. Like any request it is resent on timeout, to
    /// the next replica in turn. Returns the request's checksum: the prepare of its op carries
    /// it as `request_checksum`.
    pub fn request(&mut self, client: u8, to: u8, op: KvOp) -> u128 {
        let sim = &mut self.sim;
        let (tick, timeout) = (sim.tick, sim.options.request_timeout_ticks);
        let c = &mut sim.clients[client as usize];
        assert!(
            c.session != 0 && c.in_flight.is_none(),
            "client {client} must be registered and idle"
        );
        c.target = to;
        let action = c.start_request(CLUSTER, tick, Some(op), &mut sim.history, timeout);
        let ClientAction::Send { message, .. } = &action;
        let checksum = message.header.checksum;
        sim.client_send(client as usize, action);
        checksum
    }

    /// Whether no client has a request in flight.
    pub fn clients_idle(&self) -> bool {
        self.sim.clients.iter().all(|c| c.in_flight.is_none())
    }

    /// Whether the cluster is at rest: every replica up and normal in one view, with a log that
    /// ends at the cluster's commit, all of it executed; and no client request in flight.
    pub fn settled(&self) -> bool {
        self.clients_idle()
            && (0..self.sim.options.group_count as usize).all(|g| self.settled_in(g))
    }

    /// Whether group `g` is at rest (as in `settled`).
    pub fn settled_in(&self, g: usize) -> bool {
        let commit = self.commit_max_in(g);
        let view = self.sim.cluster.up_in(g).map(|(_, x)| x.view()).max();
        (0..self.sim.options.replica_count).all(|r| {
            self.sim.cluster.group(r, g).is_some_and(|x| {
                x.status() == Status::Normal
                    && Some(x.view()) == view
                    && x.commit_min() == commit
                    && x.commit_max() == commit
                    && x.op() == commit
            })
        })
    }

    /// Runs until `ops` more ops are committed (within `max` ticks).
    pub fn commit_more(&mut self, ops: u64, max: u64) -> Result<(), String> {
        let target = self.commit_max() + ops;
        self.run_until(max, |s| s.commit_max() >= target)
    }

    /// Runs until replica `r` has executed everything committed when called (within `max`).
    pub fn catch_up(&mut self, r: u8, max: u64) -> Result<(), String> {
        let target = self.commit_max();
        self.run_until(max, |s| {
            s.sim
                .cluster
                .replica(r)
                .is_some_and(|x| x.commit_min() >= target)
        })
    }

    pub fn run(&mut self, ticks: u64) -> Result<(), String> {
        for _ in 0..ticks {
            self.step()?;
        }
        Ok(())
    }

    /// Runs until `done` holds; an error if a violation occurs or `max` ticks pass.
    pub fn run_until(&mut self, max: u64, done: impl Fn(&Scenario) -> bool) -> Result<(), String> {
        for _ in 0..max {
            if done(self) {
                return Ok(());
            }
            self.step()?;
        }
        if done(self) {
            return Ok(());
        }
        Err(format!(
            "condition not reached within {max} ticks (tick {}): {}",
            self.sim.tick,
            self.describe()
        ))
    }

    fn step(&mut self) -> Result<(), String> {
        self.sim.step();
        match &self.sim.violation {
            Some(v) => Err(format!("{} at tick {}: {}", v.invariant, v.tick, v.message)),
            None => Ok(()),
        }
    }

    /// Every replica's state, one per line.
    pub fn describe(&self) -> String {
        let groups = self.sim.options.group_count as usize;
        (0..self.sim.options.replica_count)
            .flat_map(|r| (0..groups).map(move |g| (r, g)))
            .map(|(r, g)| {
                let name = match g {
                    0 => format!("r{r}"),
                    g => format!("r{r} group {g}"),
                };
                match self.sim.cluster.group(r, g) {
                    Some(x) => format!("{name}: {}", x.describe()),
                    None => format!("{name}: down"),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
