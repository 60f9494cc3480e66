//! Packet simulator: a deterministic, faulty network between replicas and clients.
//!
//! Nodes are numbered `0..node_count`; the first `replica_count` are replicas, the rest clients.
//! Every ordered pair (source -> target) is a path with its own bounded capacity, clog state and
//! (between replicas) partition cut. Each packet gets an independent delay of
//! `max(min, Exp(mean))` ticks, so reordering follows without a separate knob.
//!
//! Faults, in the spirit of TigerBeetle's `packet_simulator.zig`:
//! - loss (decided at submit), replay (a delivered packet is delivered again later),
//! - bounded path capacity (overflow drops the new packet),
//! - path clogs (a clogged path holds its packets until it unclogs),
//! - partitions between replicas only (isolate one, uniform size, uniform per-replica sides),
//!   symmetric or one-directional, with stability windows.
//!
//! Architecture invariants:
//! - Clients are never partitioned: only replica <-> replica paths carry a cut. A node is never
//!   cut from, nor clogged towards, itself.
//! - Two PRNG streams: per-packet draws (loss, delay, replay) use the stream given to `new`; the
//!   fault timeline (partitions, clogs) uses a stream forked from it at construction. So the
//!   timeline of partitions and clogs does not move when traffic changes.
//! - No hash-map iteration: delivery order is (deliver tick, sequence number), both integers.
//! - Accounting always balances: sent + duplicated == delivered + dropped + in flight.
//! - Delivery is a heap pop, submit a heap push: the cost per tick does not grow with the number
//!   of paths. Clog onsets are scheduled ahead (geometric waiting times), not polled per path.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::prng::Prng;

/// Upper bound on nodes (replicas + clients): the path table is `node_count^2` entries.
pub const NODE_COUNT_MAX: usize = 1024;

/// How the automatic partitioner chooses the sides of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionMode {
    /// Never partition automatically (scripted `partition_now` still works).
    None,
    /// One random replica on one side, every other replica on the other.
    IsolateOne,
    /// A uniformly random side size in `1..replica_count`, then random members.
    UniformSize,
    /// Each replica independently on a random side (never all on one side).
    UniformPartition,
}

/// Whether a partition cuts both directions between its sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionSymmetry {
    /// Paths between the sides are cut in both directions.
    Symmetric,
    /// Only paths from one (random) side to the other are cut: the other direction still
    /// delivers, so a replica may hear others that cannot hear it.
    Asymmetric,
}

/// Every network fault knob. Probabilities are in [0, 1]; "per tick" knobs are drawn once per
/// `tick` call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// Lower bound of a packet's one-way delay, in ticks.
    pub one_way_delay_min_ticks: u64,
    /// Mean of the exponential part of the delay: delay = max(min, Exp(mean)), in ticks.
    pub one_way_delay_mean_ticks: u64,
    /// Probability that a submitted packet is lost.
    pub packet_loss_probability: f64,
    /// Probability that a delivered packet is delivered again later (duplication). A replay may
    /// itself be replayed.
    pub packet_replay_probability: f64,
    /// Packets a path holds in flight at most (per consensus group its nodes host, with
    /// `path_capacity_per_group`); a packet submitted to a full path is dropped.
    pub path_capacity_max: u32,
    /// The capacity of a path is `path_capacity_max` per group (`per_path_of`). The swarm sets
    /// it; absent from options written before it existed (false: they replay as they ran).
    #[serde(default)]
    pub path_capacity_per_group: bool,
    /// Probability per tick that an unclogged path (with a replica at either end) clogs.
    pub path_clog_probability: f64,
    /// Mean duration of a clog, in ticks (exponential, at least 1). A clogged path holds its
    /// packets and delivers them when it unclogs.
    pub path_clog_duration_mean_ticks: u64,
    /// How automatic partitions choose their sides.
    pub partition_mode: PartitionMode,
    /// Whether automatic partitions cut both directions or one.
    pub partition_symmetry: PartitionSymmetry,
    /// Probability per tick that a healed, stable network partitions.
    pub partition_probability: f64,
    /// Probability per tick that a partitioned, stable network heals.
    pub unpartition_probability: f64,
    /// Ticks a partition lasts at least before it may heal.
    pub partition_stability_ticks: u64,
    /// Ticks a healed network stays whole at least before it may partition again.
    pub unpartition_stability_ticks: u64,
}

impl Default for NetworkOptions {
    /// A reliable network: small random delays, no faults.
    fn default() -> Self {
        NetworkOptions {
            one_way_delay_min_ticks: 1,
            one_way_delay_mean_ticks: 3,
            packet_loss_probability: 0.0,
            packet_replay_probability: 0.0,
            path_capacity_max: 64,
            path_capacity_per_group: false,
            path_clog_probability: 0.0,
            path_clog_duration_mean_ticks: 0,
            partition_mode: PartitionMode::None,
            partition_symmetry: PartitionSymmetry::Symmetric,
            partition_probability: 0.0,
            unpartition_probability: 0.0,
            partition_stability_ticks: 0,
            unpartition_stability_ticks: 0,
        }
    }
}

impl NetworkOptions {
    /// The options of a network whose nodes host `groups` consensus groups: with
    /// `path_capacity_per_group`, a path's capacity is `path_capacity_max` per group. A node's groups share its paths, and each sends its own
    /// heartbeats, pings and view-change retries: with a capacity that did not grow with
    /// them, seven groups on paths of capacity 4 kept most of their packets dropped for
    /// capacity long after every fault stopped (seeds 3066, 5896: a congestion collapse, not
    /// a protocol stall; each converges at once with the capacity per group). One group:
    /// unchanged.
    pub fn per_path_of(&self, groups: u8) -> NetworkOptions {
        let groups = if self.path_capacity_per_group {
            u32::from(groups.max(1))
        } else {
            1
        };
        NetworkOptions {
            path_capacity_max: self.path_capacity_max.saturating_mul(groups),
            ..self.clone()
        }
    }

    /// Panics with the offending knob if the options are out of range.
    pub fn assert_valid(&self) {
        let probabilities = [
            ("packet_loss_probability", self.packet_loss_probability),
            ("packet_replay_probability", self.packet_replay_probability),
            ("path_clog_probability", self.path_clog_probability),
            ("partition_probability", self.partition_probability),
            ("unpartition_probability", self.unpartition_probability),
        ];
        for (name, p) in probabilities {
            assert!((0.0..=1.0).contains(&p), "{name} out of [0, 1]: {p}");
        }
        assert!(self.path_capacity_max > 0, "path_capacity_max must be > 0");
    }
}

/// Network counters. Balance: sent + duplicated == delivered + dropped + in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStats {
    /// Packets handed to `submit`.
    pub packets_sent: u64,
    /// Packets handed out by `deliver` (replays included).
    pub packets_delivered: u64,
    /// All drops: lost + partition + capacity + crashed.
    pub packets_dropped: u64,
    /// Dropped by `packet_loss_probability`.
    pub packets_lost: u64,
    /// Dropped because the path was cut at submit or at delivery.
    pub packets_dropped_partition: u64,
    /// Dropped because the path was full.
    pub packets_dropped_capacity: u64,
    /// Dropped by `drop_packets_to` (target crashed).
    pub packets_dropped_crashed: u64,
    /// Replays scheduled.
    pub packets_duplicated: u64,
    /// Partition events (automatic or scripted).
    pub partitions: u64,
    /// Clog events (automatic or scripted).
    pub clogs: u64,
}

/// A packet handed out by `deliver`: (from, to, packet).
pub type Delivery<P> = (usize, usize, P);

#[derive(Clone, Copy, Debug, Default)]
struct Path {
    /// Packets in flight on this path (queued or held by a clog).
    in_flight: u32,
    /// The path delivers nothing before this tick (0: never clogged).
    clogged_until_tick: u64,
    /// Cut by a partition (replica <-> replica paths only).
    cut: bool,
}

#[derive(Debug)]
struct InFlight<P> {
    from: u32,
    to: u32,
    /// Re-queued by a clog to its unclog tick: released early if the clog is lifted.
    held: bool,
    packet: P,
}

/// Heap key: delivery tick, then submission sequence (unique), then the slot holding the packet.
type QueueKey = Reverse<(u64, u64, u32)>;

/// A deterministic packet simulator over `replica_count + client_count` nodes.
pub struct Network<P: Clone> {
    options: NetworkOptions,
    replica_count: usize,
    node_count: usize,
    /// Per-packet draws (loss, delay, replay), one stream per path: a change in one path's
    /// traffic (a crash removed, a client fewer) leaves every other path's draws alone.
    prng_paths: Vec<Prng>,
    /// Fault timeline draws: partitions and clogs.
    prng_faults: Prng,
    faults_enabled: bool,
    /// The latest tick seen by any call; time never goes back.
    now: u64,
    sequence_next: u64,
    /// Packets in flight, indexed by slot; freed slots are reused (no per-packet allocation).
    slots: Vec<Option<InFlight<P>>>,
    slots_free: Vec<u32>,
    queue: BinaryHeap<QueueKey>,
    /// `node_count^2` paths, index `from * node_count + to`.
    paths: Vec<Path>,
    /// Next automatic clog onset per path: (tick, path index).
    clog_schedule: BinaryHeap<Reverse<(u64, u32)>>,
    partitioned: bool,
    /// Automatic partitioning or healing may not happen before this tick.
    partition_stable_until_tick: u64,
    /// No automatic partitions or clogs: the world executes a fault schedule instead.
    scripted: bool,
    /// Automatic faults since the world last took them (`take_faults`), for its schedule.
    faults_drawn: Vec<NetFault>,
    /// Dropped packets since the world last took them (`take_drops`), when it asked for them.
    drops: Option<Vec<Drop>>,
    stats: NetworkStats,
}

/// A packet the network dropped: (from, to, why).
pub type Drop = (u16, u16, DropReason);

/// Why a packet never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Lost at random (`packet_loss_probability`).
    Loss,
    /// Its path was full (`path_capacity_max`).
    Capacity,
    /// Its path was cut by a partition (at sending or at delivery).
    Partition,
    /// Its destination crashed while it was in flight.
    Crashed,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Capacity => "capacity",
            DropReason::Partition => "partition",
            DropReason::Crashed => "crashed",
        }
    }
}

/// A fault of the network's timeline, as a fault schedule holds it (`crate::schedule`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetFault {
    /// Cuts exactly these replica -> replica paths (one direction each); every other replica
    /// path is open.
    Partition { cuts: Vec<(u8, u8)> },
    /// Every partition heals.
    Heal,
    /// The path `from -> to` (node numbers: replicas, then clients) holds its packets for
    /// `ticks` ticks.
    Clog { from: u16, to: u16, ticks: u64 },
}

impl<P: Clone> Network<P> {
    /// A healed, unclogged network at tick 0. `prng` should be the world's "network" stream.
    pub fn new(
        options: NetworkOptions,
        replica_count: usize,
        client_count: usize,
        mut prng: Prng,
    ) -> Self {
        options.assert_valid();
        assert!(replica_count > 0, "a network needs at least one replica");
        let node_count = replica_count + client_count;
        assert!(node_count <= NODE_COUNT_MAX, "too many nodes: {node_count}");
        let prng_faults = prng.fork();
        let paths_key = prng.next_u64();
        let prng_paths = (0..node_count * node_count)
            .map(|path| Prng::numbered(paths_key, path as u64))
            .collect();
        let mut network = Network {
            options,
            replica_count,
            node_count,
            prng_paths,
            prng_faults,
            faults_enabled: true,
            now: 0,
            sequence_next: 0,
            slots: Vec::new(),
            slots_free: Vec::new(),
            queue: BinaryHeap::new(),
            paths: vec![Path::default(); node_count * node_count],
            clog_schedule: BinaryHeap::new(),
            partitioned: false,
            partition_stable_until_tick: 0,
            scripted: false,
            faults_drawn: Vec::new(),
            drops: None,
            stats: NetworkStats::default(),
        };
        network.schedule_clogs_all();
        network
    }

    pub fn options(&self) -> &NetworkOptions {
        &self.options
    }

    pub fn stats(&self) -> &NetworkStats {
        &self.stats
    }

    pub fn replica_count(&self) -> usize {
        self.replica_count
    }

    pub fn client_count(&self) -> usize {
        self.node_count - self.replica_count
    }

    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Packets queued or held, replays included.
    pub fn packets_in_flight(&self) -> usize {
        self.queue.len()
    }

    pub fn faults_enabled(&self) -> bool {
        self.faults_enabled
    }

    /// Whether any replica path is cut.
    pub fn partitioned(&self) -> bool {
        self.partitioned
    }

    /// Whether the path `from -> to` is cut (one direction: see `PartitionSymmetry`).
    pub fn is_partitioned(&self, from: usize, to: usize) -> bool {
        self.paths[self.path_index(from, to)].cut
    }

    /// Whether the path `from -> to` holds its packets at the latest tick seen.
    pub fn is_clogged(&self, from: usize, to: usize) -> bool {
        self.paths[self.path_index(from, to)].clogged_until_tick > self.now
    }

    /// Sends `packet` from `from` to `to` at tick `now`. It may be lost, dropped (cut or full
    /// path), or queued for delivery at `now + max(min, Exp(mean))`.
    pub fn submit(&mut self, from: usize, to: usize, packet: P, now: u64) {
        self.advance(now);
        let path_index = self.path_index(from, to);
        self.stats.packets_sent += 1;
        if self.paths[path_index].cut {
            self.count_drop_partition();
            self.note_drop(from, to, DropReason::Partition);
            return;
        }
        // Loss is drawn for every packet while faults are on, whatever the rate, so a rate
        // change does not shift the delays drawn after it.
        if self.faults_enabled
            && self.prng_paths[path_index].chance(self.options.packet_loss_probability)
        {
            self.stats.packets_lost += 1;
            self.stats.packets_dropped += 1;
            self.note_drop(from, to, DropReason::Loss);
            return;
        }
        if self.paths[path_index].in_flight >= self.options.path_capacity_max {
            self.stats.packets_dropped_capacity += 1;
            self.stats.packets_dropped += 1;
            self.note_drop(from, to, DropReason::Capacity);
            return;
        }
        let delay_ticks = self.delay_ticks(path_index);
        self.enqueue(from, to, packet, now + delay_ticks);
    }

    /// Evolves the fault timeline to tick `now`: partitions (within their stability windows)
    /// and clog onsets. Call once per tick, before `deliver`.
    pub fn tick(&mut self, now: u64) {
        self.advance(now);
        if !self.faults_enabled || self.scripted {
            return;
        }
        self.tick_partitions(now);
        self.tick_clogs(now);
    }

    /// Turns the automatic partitions and clogs off for good: the world executes a fault
    /// schedule's network events instead (`apply`).
    pub fn set_scripted(&mut self) {
        self.scripted = true;
        self.clog_schedule.clear();
    }

    /// Starts keeping every dropped packet, for `take_drops`.
    pub fn keep_drops(&mut self) {
        self.drops.get_or_insert_with(Vec::new);
    }

    /// The packets dropped since the last call, in order (none unless `keep_drops`).
    pub fn take_drops(&mut self, out: &mut Vec<Drop>) {
        if let Some(drops) = self.drops.as_mut() {
            out.append(drops);
        }
    }

    fn note_drop(&mut self, from: usize, to: usize, reason: DropReason) {
        if let Some(drops) = self.drops.as_mut() {
            drops.push((from as u16, to as u16, reason));
        }
    }

    /// The automatic faults drawn since the last call, in the order they happened.
    pub fn take_faults(&mut self) -> Vec<NetFault> {
        std::mem::take(&mut self.faults_drawn)
    }

    /// Executes one fault of a schedule at the latest tick seen.
    pub fn apply(&mut self, fault: &NetFault) {
        match fault {
            NetFault::Partition { cuts } => {
                self.set_cuts(|from, to| cuts.contains(&(from as u8, to as u8)));
                self.count_partition();
            }
            NetFault::Heal => self.heal(),
            &NetFault::Clog { from, to, ticks } => {
                self.clog_path(from as usize, to as usize, ticks);
            }
        }
    }

    /// Packets whose delivery tick is `<= now`, in (tick, sequence) order.
    pub fn deliver(&mut self, now: u64) -> Vec<Delivery<P>> {
        let mut out = Vec::new();
        self.drain_ready(now, &mut out);
        out
    }

    /// Appends to `out` the packets whose delivery tick is `<= now`, in (tick, sequence) order.
    /// Packets on a cut path are dropped; packets on a clogged path are held until it unclogs.
    pub fn drain_ready(&mut self, now: u64, out: &mut Vec<Delivery<P>>) {
        self.advance(now);
        while let Some(&Reverse((tick, sequence, slot))) = self.queue.peek() {
            if tick > now {
                break;
            }
            self.queue.pop();
            let path_index = self.slot_path_index(slot);
            let path = self.paths[path_index];
            if path.clogged_until_tick > now {
                // Keep the sequence so held packets leave in their original order.
                self.slot_mut(slot).held = true;
                self.queue
                    .push(Reverse((path.clogged_until_tick, sequence, slot)));
            } else if path.cut {
                let flight = self.free_slot(slot);
                self.count_drop_partition();
                let (from, to) = (flight.from as usize, flight.to as usize);
                self.note_drop(from, to, DropReason::Partition);
            } else {
                out.push(self.deliver_slot(slot, now));
            }
        }
    }

    /// Drops every packet in flight to `node` (it crashed: its inbox is gone). Packets it sent
    /// stay in flight.
    pub fn drop_packets_to(&mut self, node: usize) {
        assert!(node < self.node_count, "node {node} out of range");
        let node = node as u32;
        let entries = std::mem::take(&mut self.queue).into_vec();
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            let Reverse((_, _, slot)) = entry;
            if self.slot_ref(slot).to == node {
                let flight = self.free_slot(slot);
                self.stats.packets_dropped_crashed += 1;
                self.stats.packets_dropped += 1;
                let (from, to) = (flight.from as usize, flight.to as usize);
                self.note_drop(from, to, DropReason::Crashed);
            } else {
                kept.push(entry);
            }
        }
        self.queue = BinaryHeap::from(kept);
    }

    /// Partitions the replicas into `groups` (every replica in exactly one group): paths between
    /// groups are cut in both directions until `heal`. Counts as a partition event and starts a
    /// stability window. With `PartitionMode::None` it lasts until `heal`; otherwise the
    /// automatic timeline may heal it once the window has passed.
    pub fn partition_now(&mut self, groups: &[&[usize]]) {
        let sides = groups.iter().filter(|members| !members.is_empty()).count();
        assert!(
            sides >= 2,
            "a partition needs at least two non-empty groups"
        );
        let mut group_of = vec![usize::MAX; self.replica_count];
        for (group, members) in groups.iter().enumerate() {
            for &replica in members.iter() {
                assert!(replica < self.replica_count, "{replica} is not a replica");
                assert_eq!(
                    group_of[replica],
                    usize::MAX,
                    "replica {replica} in two groups"
                );
                group_of[replica] = group;
            }
        }
        assert!(
            group_of.iter().all(|&group| group != usize::MAX),
            "every replica must be in a group"
        );
        self.set_cuts(|from, to| group_of[from] != group_of[to]);
        self.count_partition();
    }

    /// Cuts the single path `from -> to` between two replicas (a one-directional partition).
    pub fn cut_path(&mut self, from: usize, to: usize) {
        assert!(from < self.replica_count && to < self.replica_count);
        assert_ne!(from, to, "a replica is never cut from itself");
        let path_index = self.path_index(from, to);
        self.paths[path_index].cut = true;
        self.count_partition();
    }

    /// Cuts or restores the single path `from -> to` between two replicas (an aimed isolation
    /// that ends on its own schedule).
    pub fn set_path_cut(&mut self, from: usize, to: usize, cut: bool) {
        assert!(from < self.replica_count && to < self.replica_count && from != to);
        let path_index = self.path_index(from, to);
        self.paths[path_index].cut = cut;
        if cut {
            self.count_partition();
        }
    }

    /// Heals every partition and starts an unpartition stability window.
    pub fn heal(&mut self) {
        self.set_cuts(|_, _| false);
        self.partitioned = false;
        self.partition_stable_until_tick = self.now + self.options.unpartition_stability_ticks;
    }

    /// Clogs `from -> to` for `duration_ticks` from the latest tick seen (extending any clog).
    pub fn clog_path(&mut self, from: usize, to: usize, duration_ticks: u64) {
        assert_ne!(from, to, "a node's path to itself never clogs");
        let path_index = self.path_index(from, to);
        let until = self.now + duration_ticks;
        let path = &mut self.paths[path_index];
        path.clogged_until_tick = path.clogged_until_tick.max(until);
        self.stats.clogs += 1;
    }

    /// Lifts every clog now: held packets become deliverable at the latest tick seen.
    pub fn unclog_all(&mut self) {
        for path in self.paths.iter_mut() {
            path.clogged_until_tick = 0;
        }
        self.release_held();
    }

    /// Turns faults off (the liveness phase) or back on. Off heals partitions, lifts clogs and
    /// stops loss, replay, clogs and partitions; delays stay. On resumes the fault timeline
    /// from the latest tick seen.
    pub fn set_faults_enabled(&mut self, enabled: bool) {
        if enabled == self.faults_enabled {
            return;
        }
        self.faults_enabled = enabled;
        self.clog_schedule.clear();
        if enabled {
            self.schedule_clogs_all();
        } else {
            self.heal();
            self.unclog_all();
        }
    }

    fn advance(&mut self, now: u64) {
        assert!(now >= self.now, "time went back: {now} < {}", self.now);
        self.now = now;
    }

    fn path_index(&self, from: usize, to: usize) -> usize {
        assert!(from < self.node_count, "node {from} out of range");
        assert!(to < self.node_count, "node {to} out of range");
        from * self.node_count + to
    }

    fn delay_ticks(&mut self, path_index: usize) -> u64 {
        let mean = self.options.one_way_delay_mean_ticks as f64;
        let sample = self.prng_paths[path_index].exponential(mean);
        sample.max(self.options.one_way_delay_min_ticks)
    }

    fn enqueue(&mut self, from: usize, to: usize, packet: P, deliver_tick: u64) {
        let path_index = self.path_index(from, to);
        let path = &mut self.paths[path_index];
        assert!(path.in_flight < self.options.path_capacity_max);
        path.in_flight += 1;
        let flight = InFlight {
            from: from as u32,
            to: to as u32,
            held: false,
            packet,
        };
        let slot = match self.slots_free.pop() {
            Some(slot) => {
                assert!(self.slots[slot as usize].is_none());
                self.slots[slot as usize] = Some(flight);
                slot
            }
            None => {
                self.slots.push(Some(flight));
                u32::try_from(self.slots.len() - 1).expect("slot count fits u32")
            }
        };
        let sequence = self.sequence_next;
        self.sequence_next += 1;
        self.queue.push(Reverse((deliver_tick, sequence, slot)));
    }

    /// Hands out the packet in `slot`, maybe scheduling a replay of it.
    fn deliver_slot(&mut self, slot: u32, now: u64) -> Delivery<P> {
        let flight = self.free_slot(slot);
        let (from, to) = (flight.from as usize, flight.to as usize);
        self.stats.packets_delivered += 1;
        let path_index = self.path_index(from, to);
        if self.faults_enabled
            && self.prng_paths[path_index].chance(self.options.packet_replay_probability)
        {
            // A replay needs room like any packet; it is simply not made on a full path.
            if self.paths[path_index].in_flight < self.options.path_capacity_max {
                // At least one tick later, so one drain never loops on its own replays.
                let deliver_tick = now + self.delay_ticks(path_index).max(1);
                self.enqueue(from, to, flight.packet.clone(), deliver_tick);
                self.stats.packets_duplicated += 1;
            }
        }
        (from, to, flight.packet)
    }

    fn slot_ref(&self, slot: u32) -> &InFlight<P> {
        self.slots[slot as usize]
            .as_ref()
            .expect("queued slot is full")
    }

    fn slot_mut(&mut self, slot: u32) -> &mut InFlight<P> {
        self.slots[slot as usize]
            .as_mut()
            .expect("queued slot is full")
    }

    fn slot_path_index(&self, slot: u32) -> usize {
        let flight = self.slot_ref(slot);
        self.path_index(flight.from as usize, flight.to as usize)
    }

    /// Empties `slot` (the caller has removed its queue entry) and releases its path capacity.
    fn free_slot(&mut self, slot: u32) -> InFlight<P> {
        let path_index = self.slot_path_index(slot);
        let flight = self.slots[slot as usize]
            .take()
            .expect("queued slot is full");
        self.slots_free.push(slot);
        let path = &mut self.paths[path_index];
        assert!(path.in_flight > 0);
        path.in_flight -= 1;
        flight
    }

    /// Re-queues packets held by clogs that have been lifted, at the latest tick seen.
    fn release_held(&mut self) {
        let now = self.now;
        let entries = std::mem::take(&mut self.queue).into_vec();
        let mut requeued = Vec::with_capacity(entries.len());
        for Reverse((tick, sequence, slot)) in entries {
            let path_index = self.slot_path_index(slot);
            let clogged = self.paths[path_index].clogged_until_tick > now;
            let flight = self.slot_mut(slot);
            if flight.held && !clogged {
                flight.held = false;
                requeued.push(Reverse((tick.min(now), sequence, slot)));
            } else {
                requeued.push(Reverse((tick, sequence, slot)));
            }
        }
        self.queue = BinaryHeap::from(requeued);
    }

    fn count_drop_partition(&mut self) {
        self.stats.packets_dropped_partition += 1;
        self.stats.packets_dropped += 1;
    }

    fn count_partition(&mut self) {
        self.partitioned = true;
        self.stats.partitions += 1;
        self.partition_stable_until_tick = self.now + self.options.partition_stability_ticks;
    }

    /// Sets the cut of every replica <-> replica path (never a node to itself).
    fn set_cuts(&mut self, cut: impl Fn(usize, usize) -> bool) {
        for from in 0..self.replica_count {
            for to in 0..self.replica_count {
                let path_index = self.path_index(from, to);
                self.paths[path_index].cut = from != to && cut(from, to);
            }
        }
    }

    fn tick_partitions(&mut self, now: u64) {
        if self.options.partition_mode == PartitionMode::None {
            return;
        }
        if now < self.partition_stable_until_tick {
            return;
        }
        if self.partitioned {
            if self
                .prng_faults
                .chance(self.options.unpartition_probability)
            {
                self.heal();
                self.faults_drawn.push(NetFault::Heal);
            }
        } else if self.replica_count >= 2
            && self.prng_faults.chance(self.options.partition_probability)
        {
            self.partition_auto();
        }
    }

    /// Draws the sides of a partition by `partition_mode` and cuts the paths between them.
    fn partition_auto(&mut self) {
        let sides = self.partition_sides();
        assert!(sides.iter().any(|&side| side) && sides.iter().any(|&side| !side));
        // Asymmetric: paths leaving the `open_side` stay open, so only one direction is cut.
        let open_side = match self.options.partition_symmetry {
            PartitionSymmetry::Symmetric => None,
            PartitionSymmetry::Asymmetric => Some(self.prng_faults.chance(0.5)),
        };
        self.set_cuts(|from, to| sides[from] != sides[to] && open_side != Some(sides[from]));
        self.count_partition();
        let mut cuts = Vec::new();
        for from in 0..self.replica_count {
            for to in 0..self.replica_count {
                if self.paths[self.path_index(from, to)].cut {
                    cuts.push((from as u8, to as u8));
                }
            }
        }
        self.faults_drawn.push(NetFault::Partition { cuts });
    }

    /// One side flag per replica, with both sides non-empty.
    fn partition_sides(&mut self) -> Vec<bool> {
        let replica_count = self.replica_count;
        assert!(replica_count >= 2);
        let mut sides = vec![false; replica_count];
        match self.options.partition_mode {
            PartitionMode::None => unreachable!("automatic partition with mode None"),
            PartitionMode::IsolateOne => {
                sides[self.prng_faults.index(replica_count)] = true;
            }
            PartitionMode::UniformSize => {
                let size = self.prng_faults.range_u64(1, replica_count as u64 - 1) as usize;
                let mut replicas: Vec<usize> = (0..replica_count).collect();
                self.prng_faults.shuffle(&mut replicas);
                for &replica in &replicas[..size] {
                    sides[replica] = true;
                }
            }
            PartitionMode::UniformPartition => {
                for side in sides.iter_mut() {
                    *side = self.prng_faults.chance(0.5);
                }
                if sides.iter().all(|&side| side == sides[0]) {
                    let replica = self.prng_faults.index(replica_count);
                    sides[replica] = !sides[replica];
                }
            }
        }
        sides
    }

    /// Clogs every path whose scheduled onset has come, and schedules its next onset.
    fn tick_clogs(&mut self, now: u64) {
        while let Some(&Reverse((tick, path_index))) = self.clog_schedule.peek() {
            if tick > now {
                break;
            }
            self.clog_schedule.pop();
            let path_index = path_index as usize;
            if self.paths[path_index].clogged_until_tick <= now {
                let mean = self.options.path_clog_duration_mean_ticks as f64;
                let duration_ticks = self.prng_faults.exponential(mean).max(1);
                self.paths[path_index].clogged_until_tick = now + duration_ticks;
                self.stats.clogs += 1;
                let (from, to) = (path_index / self.node_count, path_index % self.node_count);
                self.faults_drawn.push(NetFault::Clog {
                    from: from as u16,
                    to: to as u16,
                    ticks: duration_ticks,
                });
            }
            let unclog_tick = self.paths[path_index].clogged_until_tick;
            self.schedule_clog(path_index, unclog_tick);
        }
    }

    /// Schedules the first clog onset of every clog-able path from the latest tick seen.
    fn schedule_clogs_all(&mut self) {
        if self.options.path_clog_probability == 0.0 {
            return;
        }
        let now = self.now;
        for from in 0..self.node_count {
            for to in 0..self.node_count {
                let replica_end = from < self.replica_count || to < self.replica_count;
                if from != to && replica_end {
                    let path_index = self.path_index(from, to);
                    self.schedule_clog(path_index, now + 1);
                }
            }
        }
    }

    /// Schedules the next clog onset of a path, trying once per tick from `first_tick` on.
    fn schedule_clog(&mut self, path_index: usize, first_tick: u64) {
        let trials = self
            .prng_faults
            .geometric(self.options.path_clog_probability);
        if trials == u64::MAX {
            return; // Never.
        }
        let onset_tick = first_tick.saturating_add(trials - 1);
        let path_index = u32::try_from(path_index).expect("path index fits u32");
        self.clog_schedule.push(Reverse((onset_tick, path_index)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: u64 = 42;

    fn network(options: NetworkOptions, replicas: usize, clients: usize) -> Network<u64> {
        Network::new(options, replicas, clients, Prng::stream(SEED, "network"))
    }

    fn network_seeded(options: NetworkOptions, seed: u64) -> Network<u64> {
        Network::new(options, 3, 2, Prng::stream(seed, "network"))
    }

    /// A delivered packet: (tick, from, to, packet id).
    type Record = (u64, usize, usize, u64);

    /// Runs `ticks` ticks; on each, every node sends one packet to `fanout(tick, node)` targets.
    /// Packet ids encode the submit tick: id = tick * 1_000_000 + counter.
    fn run(
        network: &mut Network<u64>,
        ticks: std::ops::Range<u64>,
        send: &mut dyn FnMut(u64, usize) -> Vec<usize>,
    ) -> Vec<Record> {
        let mut delivered = Vec::new();
        let mut counter = 0;
        let mut out = Vec::new();
        for now in ticks {
            network.tick(now);
            for from in 0..network.node_count() {
                for to in send(now, from) {
                    network.submit(from, to, now * 1_000_000 + counter, now);
                    counter += 1;
                }
            }
            out.clear();
            network.drain_ready(now, &mut out);
            delivered.extend(out.iter().map(|&(from, to, id)| (now, from, to, id)));
            check_accounting(network);
        }
        delivered
    }

    /// Drains everything still in flight, ticking on with faults as configured.
    fn settle(network: &mut Network<u64>, from_tick: u64) -> Vec<Record> {
        run(network, from_tick..from_tick + 10_000, &mut |_, _| vec![])
    }

    fn check_accounting(network: &Network<u64>) {
        let stats = network.stats();
        assert_eq!(
            stats.packets_sent + stats.packets_duplicated,
            stats.packets_delivered + stats.packets_dropped + network.packets_in_flight() as u64
        );
        assert_eq!(
            stats.packets_dropped,
            stats.packets_lost
                + stats.packets_dropped_partition
                + stats.packets_dropped_capacity
                + stats.packets_dropped_crashed
        );
        let in_flight: u64 = network.paths.iter().map(|p| u64::from(p.in_flight)).sum();
        assert_eq!(in_flight, network.packets_in_flight() as u64);
    }

    fn all_to_all(node_count: usize) -> impl FnMut(u64, usize) -> Vec<usize> {
        move |_, from| (0..node_count).filter(|&to| to != from).collect()
    }

    fn faulty() -> NetworkOptions {
        NetworkOptions {
            one_way_delay_min_ticks: 2,
            one_way_delay_mean_ticks: 10,
            packet_loss_probability: 0.1,
            packet_replay_probability: 0.05,
            path_capacity_max: 8,
            path_capacity_per_group: false,
            path_clog_probability: 0.01,
            path_clog_duration_mean_ticks: 20,
            partition_mode: PartitionMode::UniformPartition,
            partition_symmetry: PartitionSymmetry::Asymmetric,
            partition_probability: 0.02,
            unpartition_probability: 0.1,
            partition_stability_ticks: 20,
            unpartition_stability_ticks: 20,
        }
    }

    #[test]
    fn same_seed_same_delivery_sequence() {
        let trace = |seed| {
            let mut network = network_seeded(faulty(), seed);
            let records = run(&mut network, 0..2_000, &mut all_to_all(5));
            (records, *network.stats())
        };
        let (a, stats_a) = trace(SEED);
        let (b, stats_b) = trace(SEED);
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        assert!(stats_a.packets_lost > 0 && stats_a.packets_duplicated > 0);
        assert!(stats_a.partitions > 0 && stats_a.clogs > 0);
        assert!(stats_a.packets_dropped_partition > 0 && stats_a.packets_dropped_capacity > 0);
        let (c, _) = trace(SEED + 1);
        assert_ne!(a, c);
    }

    #[test]
    fn reliable_network_delivers_everything_within_bounds() {
        let options = NetworkOptions {
            one_way_delay_min_ticks: 3,
            one_way_delay_mean_ticks: 5,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 3, 2);
        let mut records = run(&mut network, 0..1_000, &mut all_to_all(5));
        records.extend(settle(&mut network, 1_000));
        let stats = *network.stats();
        assert_eq!(stats.packets_sent, 1_000 * 5 * 4);
        assert_eq!(stats.packets_delivered, stats.packets_sent);
        assert_eq!(stats.packets_dropped, 0);
        assert_eq!(records.len() as u64, stats.packets_sent);
        let mut ids: Vec<u64> = records.iter().map(|r| r.3).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), records.len(), "no packet delivered twice");
        let mut reordered = false;
        for window in records.windows(2) {
            reordered |= window[1].3 < window[0].3 && window[1].1 == window[0].1;
        }
        assert!(reordered, "independent delays reorder packets");
        for (tick, _, _, id) in records {
            let delay = tick - id / 1_000_000;
            // Exp(5) rounded never exceeds 37 * 5 (53-bit uniform).
            assert!((3..=185).contains(&delay), "delay {delay}");
        }
    }

    #[test]
    fn total_loss_drops_everything() {
        let options = NetworkOptions {
            packet_loss_probability: 1.0,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 3, 2);
        let mut records = run(&mut network, 0..200, &mut all_to_all(5));
        records.extend(settle(&mut network, 200));
        assert!(records.is_empty());
        assert_eq!(network.stats().packets_lost, 200 * 5 * 4);
        assert_eq!(
            network.stats().packets_dropped,
            network.stats().packets_sent
        );
    }

    #[test]
    fn capacity_overflow_drops_and_counts() {
        let options = NetworkOptions {
            path_capacity_max: 4,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 2, 0);
        for id in 0..10 {
            network.submit(0, 1, id, 0);
        }
        network.submit(1, 0, 100, 0); // Another path has its own capacity.
        assert_eq!(network.stats().packets_dropped_capacity, 6);
        let records = settle(&mut network, 0);
        assert_eq!(records.len(), 5);
        let mut ids: Vec<u64> = records.iter().map(|r| r.3).collect();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2, 3, 100]);
        // Delivery frees capacity.
        network.submit(0, 1, 7, 10_000);
        assert_eq!(settle(&mut network, 10_000).len(), 1);
    }

    #[test]
    fn symmetric_partition_blocks_both_directions_and_heal_restores() {
        let mut network = network(NetworkOptions::default(), 3, 1);
        network.submit(0, 2, 1, 0); // In flight when the partition happens: dropped.
        network.partition_now(&[&[0, 1], &[2]]);
        assert!(network.is_partitioned(0, 2) && network.is_partitioned(2, 0));
        assert!(network.is_partitioned(1, 2) && network.is_partitioned(2, 1));
        assert!(!network.is_partitioned(0, 1) && !network.is_partitioned(1, 0));
        network.submit(2, 0, 2, 0);
        network.submit(0, 1, 3, 0);
        let records = settle(&mut network, 0);
        assert_eq!(records.iter().map(|r| r.3).collect::<Vec<_>>(), [3]);
        assert_eq!(network.stats().packets_dropped_partition, 2);
        assert_eq!(network.stats().partitions, 1);

        network.heal();
        assert!(!network.partitioned());
        network.submit(2, 0, 4, 10_000);
        network.submit(0, 2, 5, 10_000);
        let records = settle(&mut network, 10_000);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn asymmetric_partition_blocks_one_direction() {
        let options = NetworkOptions {
            partition_mode: PartitionMode::UniformSize,
            partition_symmetry: PartitionSymmetry::Asymmetric,
            partition_probability: 1.0,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 5, 0);
        network.tick(1);
        assert!(network.partitioned());
        let mut one_way = 0;
        for a in 0..5 {
            for b in 0..5 {
                // Never both directions of a pair.
                assert!(!(network.is_partitioned(a, b) && network.is_partitioned(b, a)));
                one_way += usize::from(network.is_partitioned(a, b));
            }
        }
        assert!(one_way > 0);

        let mut network = network_with_one_way_cut();
        network.submit(0, 1, 1, 0);
        network.submit(1, 0, 2, 0);
        let records = settle(&mut network, 0);
        assert_eq!(records.iter().map(|r| r.3).collect::<Vec<_>>(), [2]);
    }

    fn network_with_one_way_cut() -> Network<u64> {
        let mut network = network(NetworkOptions::default(), 2, 0);
        network.cut_path(0, 1);
        assert!(network.is_partitioned(0, 1) && !network.is_partitioned(1, 0));
        network
    }

    #[test]
    fn clients_are_never_partitioned() {
        for mode in [
            PartitionMode::IsolateOne,
            PartitionMode::UniformSize,
            PartitionMode::UniformPartition,
        ] {
            let options = NetworkOptions {
                partition_mode: mode,
                partition_probability: 0.5,
                unpartition_probability: 0.5,
                ..NetworkOptions::default()
            };
            let mut network = network(options, 4, 3);
            let mut client_records = 0;
            let mut send = |_, from: usize| -> Vec<usize> {
                // Every client talks to every replica and back.
                match from {
                    0..=3 => vec![4, 5, 6],
                    _ => vec![0, 1, 2, 3],
                }
            };
            for start in (0..2_000).step_by(100) {
                client_records += run(&mut network, start..start + 100, &mut send).len();
                for client in 4..7 {
                    for replica in 0..4 {
                        assert!(!network.is_partitioned(client, replica));
                        assert!(!network.is_partitioned(replica, client));
                    }
                }
            }
            assert!(network.stats().partitions > 10, "{mode:?}");
            assert_eq!(network.stats().packets_dropped, 0);
            assert!(client_records > 0);
        }
    }

    #[test]
    #[should_panic(expected = "is not a replica")]
    fn scripted_partition_rejects_clients() {
        network(NetworkOptions::default(), 2, 1).partition_now(&[&[0], &[1, 2]]);
    }

    #[test]
    fn partition_modes_choose_valid_sides() {
        for mode in [
            PartitionMode::IsolateOne,
            PartitionMode::UniformSize,
            PartitionMode::UniformPartition,
        ] {
            let options = NetworkOptions {
                partition_mode: mode,
                partition_probability: 1.0,
                unpartition_probability: 1.0,
                ..NetworkOptions::default()
            };
            let mut network = network(options, 5, 0);
            for now in 1..200 {
                network.tick(now);
                let cut_from = |r: usize| (0..5).filter(|&t| network.is_partitioned(r, t)).count();
                if network.partitioned() {
                    let isolated = (0..5).filter(|&r| cut_from(r) == 4).count();
                    let any_cut = (0..5).any(|r| cut_from(r) > 0);
                    assert!(any_cut);
                    if mode == PartitionMode::IsolateOne {
                        assert_eq!(isolated, 1);
                    }
                }
            }
        }
    }

    #[test]
    fn stability_windows_pace_partitions() {
        let options = NetworkOptions {
            partition_mode: PartitionMode::IsolateOne,
            partition_probability: 1.0,
            unpartition_probability: 1.0,
            partition_stability_ticks: 10,
            unpartition_stability_ticks: 5,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 3, 0);
        let mut history = Vec::new();
        for now in 0..60 {
            network.tick(now);
            history.push(network.partitioned());
        }
        // Partition at 0, heal at 10, partition at 15, heal at 25, ...
        let expected: Vec<bool> = (0..60).map(|tick| tick % 15 < 10).collect();
        assert_eq!(history, expected);
        assert_eq!(network.stats().partitions, 4);
    }

    #[test]
    fn duplication_delivers_some_packets_twice() {
        let options = NetworkOptions {
            packet_replay_probability: 0.2,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 3, 0);
        let mut records = run(&mut network, 0..500, &mut all_to_all(3));
        records.extend(settle(&mut network, 500));
        let stats = *network.stats();
        assert!(stats.packets_duplicated > 0);
        assert_eq!(
            stats.packets_delivered,
            stats.packets_sent + stats.packets_duplicated
        );
        let mut ids: Vec<u64> = records.iter().map(|r| r.3).collect();
        ids.sort_unstable();
        let twice = ids.windows(2).filter(|w| w[0] == w[1]).count();
        assert!(twice > 0);
        assert_eq!(twice as u64, stats.packets_duplicated);
    }

    #[test]
    fn faults_disabled_means_no_loss_dup_clog_or_partition() {
        let options = NetworkOptions {
            packet_loss_probability: 1.0,
            packet_replay_probability: 1.0,
            path_clog_probability: 1.0,
            path_clog_duration_mean_ticks: 1_000,
            partition_mode: PartitionMode::UniformSize,
            partition_probability: 1.0,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 3, 2);
        run(&mut network, 0..10, &mut all_to_all(5));
        assert!(network.partitioned() && network.stats().clogs > 0);
        assert!(network.stats().packets_lost > 0);

        network.set_faults_enabled(false);
        assert!(!network.partitioned() && !network.is_clogged(0, 1));
        let before = *network.stats();
        let records = run(&mut network, 10..1_000, &mut all_to_all(5));
        let stats = *network.stats();
        assert_eq!(stats.packets_dropped, before.packets_dropped);
        assert_eq!(stats.packets_duplicated, before.packets_duplicated);
        assert_eq!(
            (stats.clogs, stats.partitions),
            (before.clogs, before.partitions)
        );
        // Everything sent after the switch arrives once, with the usual delays.
        let sent_after: Vec<&Record> = records.iter().filter(|r| r.3 >= 10_000_000).collect();
        assert!(sent_after.len() as u64 >= 900 * 20);
        assert!(sent_after.iter().all(|r| r.0 - r.3 / 1_000_000 <= 200));

        network.set_faults_enabled(true);
        run(&mut network, 1_000..1_010, &mut all_to_all(5));
        assert!(network.stats().packets_lost > stats.packets_lost);
    }

    #[test]
    fn clogged_path_holds_packets_until_unclogged() {
        let mut network = network(NetworkOptions::default(), 2, 1);
        network.clog_path(0, 1, 50);
        assert!(network.is_clogged(0, 1) && !network.is_clogged(1, 0));
        network.submit(0, 1, 1, 0);
        network.submit(1, 0, 2, 0);
        network.submit(2, 1, 3, 0);
        let early = run(&mut network, 0..50, &mut |_, _| vec![]);
        let mut early_ids: Vec<u64> = early.iter().map(|r| r.3).collect();
        early_ids.sort_unstable();
        assert_eq!(early_ids, [2, 3]);
        let late = run(&mut network, 50..51, &mut |_, _| vec![]);
        assert_eq!(late, [(50, 0, 1, 1)]);

        // Lifting clogs releases held packets at once.
        network.clog_path(0, 1, 1_000);
        network.submit(0, 1, 4, 51);
        run(&mut network, 51..100, &mut |_, _| vec![]);
        assert_eq!(network.packets_in_flight(), 1);
        network.unclog_all();
        assert_eq!(network.deliver(100), [(0, 1, 4)]);
    }

    #[test]
    fn automatic_clogs_happen_and_end() {
        let options = NetworkOptions {
            path_clog_probability: 0.01,
            path_clog_duration_mean_ticks: 10,
            ..NetworkOptions::default()
        };
        let mut network = network(options, 3, 1);
        let mut records = run(&mut network, 0..2_000, &mut all_to_all(4));
        let clogs = network.stats().clogs;
        // 12 paths * 2000 ticks * 0.01, less clogged time: about 220 onsets.
        assert!((150..300).contains(&clogs), "clogs {clogs}");
        records.extend(settle(&mut network, 2_000));
        let stats = *network.stats();
        assert_eq!(stats.packets_delivered, stats.packets_sent);
        assert!(
            records.iter().any(|r| r.0 - r.3 / 1_000_000 > 25),
            "some packets held"
        );
    }

    #[test]
    fn drop_packets_to_crashed_node() {
        let mut network = network(NetworkOptions::default(), 3, 0);
        for id in 0..10 {
            network.submit(0, 1, id, 0);
            network.submit(1, 0, 100 + id, 0);
            network.submit(2, 1, 200 + id, 0);
        }
        network.drop_packets_to(1);
        assert_eq!(network.stats().packets_dropped_crashed, 20);
        check_accounting(&network);
        let records = settle(&mut network, 0);
        assert!(records.iter().all(|r| r.2 == 0));
        assert_eq!(records.len(), 10);
    }

    #[test]
    #[should_panic(expected = "time went back")]
    fn time_never_goes_back() {
        let mut network = network(NetworkOptions::default(), 1, 1);
        network.tick(10);
        network.submit(0, 1, 1, 9);
    }
}
