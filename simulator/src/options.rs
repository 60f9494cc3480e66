//! Every knob of a simulation in one struct, derived from the seed (swarm testing) and
//! overridable from the command line.
//!
//! Swarm testing: each seed turns fault kinds on or off and picks how hard they hit, so a sweep
//! of seeds explores combinations a fixed configuration never would. A range that can draw zero
//! turns that fault off for the seed.

use crate::aim::AimOptions;
use crate::network::{NetworkOptions, PartitionMode, PartitionSymmetry};
use crate::prng::Prng;
use serde::{Deserialize, Serialize};

/// The replicas' largest state-transfer chunk.
pub const SYNC_CHUNK_SIZE_MAX: u64 = consensus::replica::SYNC_CHUNK_SIZE_MAX as u64;

/// The slowest disk (ticks per write) a correct cluster is expected to survive.
pub const WRITE_LATENCY_MAX_TICKS: u64 = 100;

/// The longest phase (`ticks_safety`, `ticks_liveness_max`) a run may ask for. The seeds draw
/// 40 000 + 30 000 ticks; 10^9 ticks take hours of wall time in a release build, so a longer
/// run is better split into seeds, and sums of ticks stay far from overflowing a u64 (overflow
/// checks are on even in release builds).
pub const PHASE_TICKS_MAX: u64 = 1_000_000_000;

/// The longest delay, duration or timeout (every other `*_ticks` option). The seeds draw at
/// most a few thousand ticks; 10^7 ticks outlasts any run a seed draws a hundredfold (a delay
/// that long already means "never in this run"), and `tick + delay` cannot overflow.
pub const DELAY_TICKS_MAX: u64 = 10_000_000;

/// All options of one simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Replicas in the cluster (1..=6).
    pub replica_count: u8,
    /// Clients with a session each (1..=8).
    pub client_count: u8,
    /// Length of the safety phase (faults on), in ticks.
    pub ticks_safety: u64,
    /// Tick budget of the liveness phase (faults off) for the core to converge, per two
    /// groups (`Options::liveness_ticks`).
    pub ticks_liveness_max: u64,
    /// The packet simulator's knobs.
    pub network: NetworkOptions,
    /// Probability per tick that an up replica crashes.
    pub crash_probability: f64,
    /// Mean ticks a crashed replica stays down before restarting (exponential).
    pub restart_delay_mean_ticks: u64,
    /// Ticks a replica stays up at least after it (re)starts before it may crash again.
    pub crash_stability_ticks: u64,
    /// Probability per tick that an idle client issues its next request.
    pub request_probability: f64,
    /// Probability per tick that a client starts an idle burst (no requests).
    pub idle_on_probability: f64,
    /// Probability per tick that an idle burst ends.
    pub idle_off_probability: f64,
    /// Ticks a client waits for a reply before resending to the next replica.
    pub request_timeout_ticks: u64,
    /// Distinct keys the workload touches.
    pub key_count: u32,
    /// Clients always have a request in flight (closed loop; benchmarks).
    pub closed_loop: bool,
    /// Probability per tick that a latent fault appears on a replica's disk (a journal entry
    /// or a superblock copy reads back corrupted until rewritten).
    pub storage_fault_probability: f64,
    /// Probability that a crash loses some of the replica's writes in flight (the newest
    /// ones; the newest lost one may leave a torn sector of garbage).
    pub torn_write_probability: f64,
    /// A crash may lose any writes in flight, not only the newest: a disk that does not
    /// persist in submission order. The `consensus` replica's storage contract promises
    /// ordered persistence, so the swarm leaves this off; it is for replicas that do not
    /// rely on it (and shows what ours does when the contract is broken).
    #[serde(default)]
    pub torn_writes_unordered: bool,
    /// Inject storage faults beyond the fault atlas (more than quorum - 1 replicas faulty at
    /// one op). A replica that then refuses to open is the right answer (the run passes, and
    /// counts `refused_to_open`); correctness failures never are. The swarm turns it on in
    /// half the single-replica seeds (a solo replica has no peer: any journal fault is beyond
    /// the atlas).
    pub storage_faults_beyond_atlas: bool,
    /// Sessions the replicas' client table holds; below client_count, registrations evict
    /// the oldest sessions and clients must register again.
    pub clients_max: u32,
    /// Ticks a write may take beyond the tick it was submitted in (uniform, in order of
    /// submission). Messages that depend on a write wait for it; a crash loses writes in flight.
    pub write_latency_max_ticks: u64,
    /// Slots of each replica's journal ring (a checkpoint every half of it). Small rings
    /// wrap many times per run, so checkpoints, slot reuse and state transfer get exercised.
    pub journal_slot_count: u64,
    /// Bytes of a checkpoint a replica serves per state-transfer message. Small chunks make a
    /// transfer span many messages, so a source that checkpoints again mid-transfer is met.
    pub sync_chunk_size: u64,
    /// Faults aimed at protocol moments (crash right after a message, isolate a primary,
    /// drop a start_view to one backup, pause a replica).
    pub aim: AimOptions,
    /// The consensus group (header namespace) the cluster runs as: every replica's and
    /// client's messages carry it. 0 by default; any value must work alike.
    #[serde(default)]
    pub namespace: u64,
    /// Consensus groups on every node (1..=8): group 0 is the metadata group, the others
    /// partition groups (as in Apache Iggy). Each group runs its own replica on every node
    /// (its own view, log, pipeline, client table, timeouts, disk region) as namespace
    /// `namespace + g`; a node's crash, pause or partition hits all of them at once. Every
    /// client holds a session in each group. The swarm draws 1 in a third of the seeds.
    #[serde(default = "one_group")]
    pub group_count: u8,
}

fn one_group() -> u8 {
    1
}

impl Options {
    /// The ticks the liveness phase may take: `ticks_liveness_max` for every two groups. The
    /// groups of a node share its network paths, whose capacity (`path_capacity_max`) does
    /// not grow with them: with many groups, their heartbeats and view-change retries fill
    /// the paths, congestion drops most of them, and convergence takes longer though it
    /// keeps progressing (seed 3066: 7 groups on paths of capacity 4, 93,000 packets dropped
    /// for capacity in the liveness phase against 3 lost; it converges 68,745 ticks in, and
    /// with paths of capacity 16 within 2,200). A run that converges sooner is unchanged.
    pub fn liveness_ticks(&self) -> u64 {
        self.ticks_liveness_max * u64::from(self.group_count.div_ceil(2))
    }

    /// The swarm: options drawn from the seed's "options" stream.
    pub fn from_seed(seed: u64) -> Options {
        let mut prng = Prng::stream(seed, "options");
        let replica_count = prng.range_u64(1, 6) as u8;
        let client_count = prng.range_u64(1, 8) as u8;
        let network = swarm_network(&mut prng);
        // A third of the seeds run without crashes, so network-only bugs are not masked.
        let crash_probability = if prng.chance(0.33) {
            0.0
        } else {
            prng.range_u64(1, 40) as f64 / 1_000_000.0 * replica_count as f64
        };
        Options {
            replica_count,
            client_count,
            ticks_safety: 40_000,
            ticks_liveness_max: 30_000,
            network,
            crash_probability,
            restart_delay_mean_ticks: prng.range_u64(50, 3_000),
            crash_stability_ticks: prng.range_u64(200, 3_000),
            request_probability: prng.range_u64(5, 500) as f64 / 1000.0,
            idle_on_probability: prng.range_u64(0, 20) as f64 / 10_000.0,
            idle_off_probability: prng.range_u64(10, 200) as f64 / 10_000.0,
            request_timeout_ticks: prng.range_u64(60, 300),
            key_count: prng.range_u64(1, 8) as u32,
            closed_loop: false,
            // Most seeds run with a faulty disk.
            storage_fault_probability: if prng.chance(0.8) {
                prng.range_u64(1, 100) as f64 / 100_000.0
            } else {
                0.0
            },
            torn_write_probability: prng.range_u64(0, 100) as f64 / 100.0,
            torn_writes_unordered: false,
            storage_faults_beyond_atlas: false,
            // A quarter of the seeds run with a client table smaller than the clients.
            clients_max: if prng.chance(0.25) {
                prng.range_u64(1, client_count as u64) as u32
            } else {
                32
            },
            // Half the seeds run with a slow disk.
            write_latency_max_ticks: if prng.chance(0.5) {
                prng.range_u64(1, 12)
            } else {
                0
            },
            // Half the seeds run with a small ring (32, 64 or 128 slots).
            journal_slot_count: if prng.chance(0.5) {
                32 << prng.range_u64(0, 2)
            } else {
                1024
            },
            // A third of the seeds transfer checkpoints in small chunks. (Drawn last, so the
            // options drawn before it keep their values.)
            sync_chunk_size: if prng.chance(0.33) {
                prng.range_u64(64, 1024)
            } else {
                SYNC_CHUNK_SIZE_MAX
            },
            aim: AimOptions::from_seed(seed),
            namespace: 0,
            group_count: 1,
        }
        .solo_beyond_atlas(seed)
        .groups_drawn(seed)
    }

    /// One group in a third of the seeds (today's single-cluster runs stay covered), else a
    /// metadata group and 1..=7 partition groups. From a stream of its own, so every other
    /// option keeps its value.
    fn groups_drawn(mut self, seed: u64) -> Options {
        let mut prng = Prng::stream(seed, "groups");
        if !prng.chance(0.33) {
            self.group_count = prng.range_u64(2, consensus::node::GROUPS_MAX as u64) as u8;
        }
        self
    }

    /// Half the single-replica seeds put journal faults on its disk (beyond the atlas: it has
    /// no peer), where refusing to open is the expected answer. From a stream of its own, so
    /// the options drawn before keep their values.
    fn solo_beyond_atlas(mut self, seed: u64) -> Options {
        if self.replica_count == 1 && Prng::stream(seed, "solo_atlas").chance(0.5) {
            self.storage_faults_beyond_atlas = true;
        }
        self
    }

    /// The fault-free variant of these options (performance mode).
    pub fn without_faults(mut self) -> Options {
        self.network.packet_loss_probability = 0.0;
        self.network.packet_replay_probability = 0.0;
        self.network.path_clog_probability = 0.0;
        self.network.partition_mode = PartitionMode::None;
        self.network.partition_probability = 0.0;
        self.crash_probability = 0.0;
        self.storage_fault_probability = 0.0;
        self.torn_write_probability = 0.0;
        self.aim = AimOptions::off();
        self
    }

    /// The benchmark configuration: 3 replicas, 4 closed-loop clients, every fault on.
    pub fn benchmark(seed: u64) -> Options {
        let mut o = Options::from_seed(seed);
        o.replica_count = 3;
        o.client_count = 4;
        o.group_count = 1;
        o.closed_loop = true;
        o.network.packet_loss_probability = 0.02;
        o.network.packet_replay_probability = 0.05;
        o.network.path_clog_probability = 0.0005;
        o.network.path_clog_duration_mean_ticks = 40;
        o.network.partition_mode = PartitionMode::UniformSize;
        o.network.partition_probability = 0.0002;
        o.network.unpartition_probability = 0.002;
        o.crash_probability = 0.00002;
        o.storage_fault_probability = 0.00005;
        o.torn_write_probability = 0.5;
        o
    }

    /// Checks ranges; the message names the knob and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=consensus::replica::REPLICAS_MAX).contains(&self.replica_count) {
            return Err(format!(
                "replica_count must be 1..=6, got {}",
                self.replica_count
            ));
        }
        if !(1..=64).contains(&self.client_count) {
            return Err(format!(
                "client_count must be 1..=64, got {}",
                self.client_count
            ));
        }
        let groups_max = consensus::node::GROUPS_MAX as u8;
        if !(1..=groups_max).contains(&self.group_count) {
            return Err(format!(
                "group_count must be 1..={groups_max}, got {}",
                self.group_count
            ));
        }
        if self.client_count as u32 * self.group_count as u32 > 255 {
            return Err(format!(
                "client_count x group_count must be at most 255 sessions, got {} x {}",
                self.client_count, self.group_count
            ));
        }
        if self.namespace > u64::MAX - self.group_count as u64 {
            return Err("namespace + group_count must fit in 64 bits".into());
        }
        let probabilities = [
            ("crash_probability", self.crash_probability),
            ("storage_fault_probability", self.storage_fault_probability),
            ("torn_write_probability", self.torn_write_probability),
            ("request_probability", self.request_probability),
            ("idle_on_probability", self.idle_on_probability),
            ("idle_off_probability", self.idle_off_probability),
            (
                "network.packet_loss_probability",
                self.network.packet_loss_probability,
            ),
            (
                "network.packet_replay_probability",
                self.network.packet_replay_probability,
            ),
            (
                "network.path_clog_probability",
                self.network.path_clog_probability,
            ),
            (
                "network.partition_probability",
                self.network.partition_probability,
            ),
            (
                "network.unpartition_probability",
                self.network.unpartition_probability,
            ),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be within 0..=1, got {p}"));
            }
        }
        if !(1..=1024).contains(&self.clients_max) {
            return Err(format!(
                "clients_max must be 1..=1024, got {}",
                self.clients_max
            ));
        }
        if self.write_latency_max_ticks > WRITE_LATENCY_MAX_TICKS {
            // Every view change waits for a superblock write on each replica: a disk slower
            // than about a third of the view-change timeout (300 ticks) never lets one finish,
            // which is no replica bug (seeds 1..40: all pass at 150, some stall from 200).
            return Err(format!(
                "write_latency_max_ticks must be at most {WRITE_LATENCY_MAX_TICKS} (a third of \
                 the replicas' view-change timeout), got {}",
                self.write_latency_max_ticks
            ));
        }
        let phases = [
            ("ticks_safety", self.ticks_safety),
            ("ticks_liveness_max", self.ticks_liveness_max),
        ];
        if self.ticks_safety == 0 {
            // Nothing would run with faults on, and nothing would be checked under them.
            return Err("ticks_safety (--ticks) must be at least 1".into());
        }
        for (name, ticks) in phases {
            if ticks > PHASE_TICKS_MAX {
                return Err(format!(
                    "{name} must be at most {PHASE_TICKS_MAX} ticks, got {ticks}"
                ));
            }
        }
        let n = &self.network;
        let delays = [
            ("restart_delay_mean_ticks", self.restart_delay_mean_ticks),
            ("crash_stability_ticks", self.crash_stability_ticks),
            ("request_timeout_ticks", self.request_timeout_ticks),
            ("network.one_way_delay_min_ticks", n.one_way_delay_min_ticks),
            (
                "network.one_way_delay_mean_ticks",
                n.one_way_delay_mean_ticks,
            ),
            (
                "network.path_clog_duration_mean_ticks",
                n.path_clog_duration_mean_ticks,
            ),
            (
                "network.partition_stability_ticks",
                n.partition_stability_ticks,
            ),
            (
                "network.unpartition_stability_ticks",
                n.unpartition_stability_ticks,
            ),
        ];
        for (name, ticks) in delays {
            if ticks > DELAY_TICKS_MAX {
                return Err(format!(
                    "{name} must be at most {DELAY_TICKS_MAX} ticks, got {ticks}"
                ));
            }
        }
        self.aim.validate()?;
        if !(1..=SYNC_CHUNK_SIZE_MAX).contains(&self.sync_chunk_size) {
            return Err(format!(
                "sync_chunk_size must be within 1..={SYNC_CHUNK_SIZE_MAX}, got {}",
                self.sync_chunk_size
            ));
        }
        // The ring must hold a pipeline (8) beyond an interval of half the ring.
        let slots = self.journal_slot_count;
        if !(32..=1 << 20).contains(&slots) || !slots.is_multiple_of(2) {
            return Err(format!(
                "journal_slot_count must be even and within 32..=1048576, got {slots}"
            ));
        }
        if self.key_count == 0 || self.request_timeout_ticks == 0 {
            return Err("key_count and request_timeout_ticks must be > 0".into());
        }
        if self.network.path_capacity_max == 0 {
            return Err("network.path_capacity_max must be > 0".into());
        }
        Ok(())
    }

    /// Sets one knob by its JSON path (`crash_probability`, `network.packet_loss_probability`)
    /// from a JSON value (`0.1`, `"IsolateOne"`), for `--set KEY=VALUE`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut json = serde_json::to_value(&*self).expect("options serialize");
        let mut slot = &mut json;
        for part in key.split('.') {
            slot = slot
                .get_mut(part)
                .ok_or_else(|| format!("unknown option '{key}' (see --json output for names)"))?;
        }
        *slot = serde_json::from_str(value)
            .or_else(|_| serde_json::from_str(&format!("\"{value}\"")))
            .map_err(|e| format!("bad value for {key}: {e}"))?;
        *self = serde_json::from_value(json).map_err(|e| format!("bad value for {key}: {e}"))?;
        self.validate()
    }
}

fn swarm_network(prng: &mut Prng) -> NetworkOptions {
    let partition_mode = *prng.pick(&[
        PartitionMode::None,
        PartitionMode::IsolateOne,
        PartitionMode::UniformSize,
        PartitionMode::UniformPartition,
    ]);
    let partition_symmetry = if prng.chance(0.5) {
        PartitionSymmetry::Symmetric
    } else {
        PartitionSymmetry::Asymmetric
    };
    let delay_min = prng.range_u64(0, 3);
    NetworkOptions {
        one_way_delay_min_ticks: delay_min,
        one_way_delay_mean_ticks: delay_min + prng.range_u64(0, 20),
        packet_loss_probability: prng.range_u64(0, 30) as f64 / 100.0,
        packet_replay_probability: prng.range_u64(0, 50) as f64 / 100.0,
        path_capacity_max: prng.range_u64(4, 64) as u32,
        path_capacity_per_group: true,
        path_clog_probability: prng.range_u64(0, 10) as f64 / 10_000.0,
        path_clog_duration_mean_ticks: prng.range_u64(10, 500),
        partition_mode,
        partition_symmetry,
        partition_probability: prng.range_u64(0, 10) as f64 / 10_000.0,
        unpartition_probability: prng.range_u64(5, 100) as f64 / 10_000.0,
        partition_stability_ticks: prng.range_u64(100, 2_000),
        unpartition_stability_ticks: prng.range_u64(100, 2_000),
    }
}
