//! The world: one seed, one PRNG split into named streams, ticks, replicas, clients, the
//! packet simulator, faults, and the oracles checked after every step.

use crate::aim::AimedCounts;
use crate::checker::oracle::Oracle;
use crate::checker::Violation;
use crate::cluster::{self, Cluster, Layout, CLUSTER};
use crate::network::Network;
use crate::node::{GroupView, NodeKind};
use crate::options::Options;
use crate::prng::Prng;
use crate::schedule::{self, Fault, Point, Replay};
use crate::trace::{Event, Trace};
use crate::workload::{self, Client, ClientAction, ClientEvent, HistoryRecord};
use bytes::Bytes;
use consensus::node::GROUPS_MAX;
use consensus::wire::{self, DecodeContext, Message};
use consensus::{Action, Peer};

mod aimed;
mod clients;
mod delivery;
mod durability;
mod faults;
mod figures;
mod liveness;
mod nodes;

/// New operations each client issues once the liveness phase healed the cluster.
pub const LIVENESS_REQUESTS: u32 = 2;

/// Ticks a converged cluster runs on, idle, so the view-churn oracle can watch it.
pub const QUIET_TICKS: u64 = 2 * aimed::SETTLE_TICKS;

/// Which part of the run we are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Faults on; only safety is checked.
    Safety,
    /// Faults off, a quorum core up; everything outstanding must complete.
    Liveness,
}

/// Counters of what the run did (the JSON summary reads them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub crashes: u64,
    pub restarts: u64,
    pub packets_corrupt: u64,
    pub view_max: u32,
    pub replies: u64,
    pub evictions: u64,
    /// Latent disk faults injected plus writes torn by crashes.
    pub storage_faults: u64,
    pub writes_torn: u64,
    pub writes_misdirected: u64,
    pub writes_lost: u64,
    /// Restarts refused because every copy of the superblock, the checkpoint or a journal
    /// entry was lost with no peer to repair it (beyond the atlas only).
    pub unopenable: u64,
    /// Per group: replica counters (repairs, checkpoints, state transfers, view changes) of
    /// incarnations that crashed.
    pub crashed_stats: [ReplicaTotals; GROUPS_MAX],
    /// Per group: the highest view any of its replicas reached.
    pub view_max_by_group: [u32; GROUPS_MAX],
    /// Messages for no hosted namespace dropped by nodes that have since crashed.
    pub dropped_namespace_crashed: u64,
    /// Faults aimed at protocol moments, by kind.
    pub aimed: AimedCounts,
}

/// Sums of replica counters across replicas (and incarnations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaTotals {
    pub repairs: u64,
    pub checkpoints: u64,
    pub state_syncs: u64,
    pub view_changes: u64,
}

impl ReplicaTotals {
    pub fn add(&mut self, stats: &consensus::replica::Stats) {
        self.repairs += stats.headers_repaired + stats.prepares_repaired;
        self.checkpoints += stats.checkpoints;
        self.state_syncs += stats.state_syncs;
        self.view_changes += stats.view_changes;
    }

    pub fn merge(&mut self, other: &ReplicaTotals) {
        self.repairs += other.repairs;
        self.checkpoints += other.checkpoints;
        self.state_syncs += other.state_syncs;
        self.view_changes += other.view_changes;
    }
}

pub struct Simulation {
    pub seed: u64,
    pub options: Options,
    pub tick: u64,
    pub phase: Phase,
    pub network: Network<Bytes>,
    pub cluster: Cluster,
    /// Client sessions: client process i's session in group g is entry i * groups + g.
    pub clients: Vec<Client>,
    /// One oracle per group (a group's canonical chain, replies and state are its own).
    pub oracles: Vec<Oracle>,
    pub trace: Trace,
    pub history: Vec<HistoryRecord>,
    pub violation: Option<Violation>,
    pub counters: Counters,
    /// Replicas that must converge in the liveness phase.
    pub core: Vec<u8>,
    /// Faults (crashes, restarts) happen only while true; scenarios turn them off.
    pub faults_enabled: bool,
    /// Scenario hook: returns false to drop a delivered message (from node, to node).
    #[allow(clippy::type_complexity)]
    pub filter: Option<Box<dyn FnMut(usize, usize, &Message) -> bool>>,
    prng_faults: Prng,
    prng_workload: Prng,
    /// Decisions of aimed faults (a stream of their own: seeds without them keep their runs).
    prng_aim: Prng,
    /// Per replica: paused until this tick (no ticks, no deliveries; messages wait).
    paused_until: Vec<Option<u64>>,
    paused_inbox: Vec<Vec<(usize, Message)>>,
    /// Per replica: cut from every other replica until this tick.
    isolated_until: Vec<Option<u64>>,
    /// Per node and group: writes submitted as of its last step (to see a new superblock
    /// write).
    writes_seen: Vec<Vec<u64>>,
    /// Per node and group: the highest view and log_view it has shown in a message; after a
    /// restart its durable view state must not be below them (V1, V2).
    view_shown: Vec<Vec<(u32, u32)>>,
    /// Per node and group: the view and log_view last found in its durable superblock (a
    /// cache of the durability oracle, forgotten on a crash).
    durable_view: Vec<Vec<(u32, u32)>>,
    /// Liveness phase, per group: the view the core settled in and since when (no view
    /// change may follow once it has held for a while).
    settled_view: Vec<Option<(u32, u64)>>,
    /// The last tick any replica sent a start_view_change (a vote).
    vote_sent_tick: u64,
    /// A replica entered normal status in a new view during the step being handled.
    view_change_done: bool,
    /// Packets the network had dropped when the churn oracle last looked.
    dropped_at_settle: u64,
    /// Replicas that refused to open (their disk lost what no peer could repair).
    refused: Vec<u8>,
    /// The faults executed so far, in order: the run's fault schedule.
    pub schedule: Vec<schedule::Event>,
    /// The schedule being replayed, if any: then no fault is drawn from the seed.
    replay: Option<Replay>,
    /// Replica steps taken so far in this tick, and the one being handled (a point of the
    /// tick where aimed faults happen).
    steps_this_tick: u32,
    stepping: Option<u32>,
    ctx: DecodeContext,
    /// The nodes' disk layout (where the fault atlas looks for redundant copies).
    layout: crate::node::DiskLayout,
    incarnations: u64,
    deliveries: Vec<(usize, usize, Bytes)>,
    drops: Vec<crate::network::Drop>,
    actions: Vec<Action>,
    ops_issued: u64,
}

impl Simulation {
    pub fn new(seed: u64, options: Options, trace: Trace) -> Simulation {
        Simulation::with_kind(seed, options, trace, Box::new(crate::node::vsr::kv_kind()))
    }

    /// A world of nodes of `kind` (a user's own node implementation, or this crate's).
    pub fn with_kind(
        seed: u64,
        options: Options,
        trace: Trace,
        kind: Box<dyn NodeKind>,
    ) -> Simulation {
        options.validate().expect("options validated by the caller");
        let replica_count = options.replica_count;
        let groups = options.group_count as usize;
        let nodes = replica_count as usize;
        let mut network = Network::new(
            options.network.per_path_of(options.group_count),
            replica_count as usize,
            options.client_count as usize,
            Prng::stream(seed, "network"),
        );
        network.keep_drops();
        let layout = Layout {
            replica_count,
            group_count: options.group_count,
            clients_max: options.clients_max as usize,
            journal_slot_count: options.journal_slot_count,
            sync_chunk_size: options.sync_chunk_size as usize,
            write_latency_max: options.write_latency_max_ticks,
            seed,
            namespace: options.namespace,
        };
        let cluster = Cluster::new(layout, kind);
        let root = cluster.kind().root_checksum(CLUSTER);
        let layout = cluster.kind().layout();
        let clients_max = options.clients_max as usize;
        let oracles = (0..groups)
            .map(|_| {
                let reference = cluster.kind().reference_machine();
                Oracle::new(replica_count, root, clients_max, reference)
            })
            .collect();
        let clients = (0..options.client_count)
            .flat_map(|i| (0..groups).map(move |g| (i, g)))
            .map(|(i, g)| {
                let session = i as usize * groups + g;
                Client::new(session as u8, i, replica_count)
                    .in_namespace(options.namespace + g as u64, g)
            })
            .collect();
        Simulation {
            seed,
            tick: 0,
            phase: Phase::Safety,
            network,
            cluster,
            clients,
            oracles,
            trace,
            history: Vec::new(),
            violation: None,
            counters: Counters::default(),
            core: Vec::new(),
            faults_enabled: true,
            filter: None,
            prng_faults: Prng::stream(seed, "faults"),
            prng_workload: Prng::stream(seed, "workload"),
            prng_aim: Prng::stream(seed, "aim"),
            paused_until: vec![None; nodes],
            paused_inbox: vec![Vec::new(); nodes],
            isolated_until: vec![None; nodes],
            writes_seen: vec![vec![0; groups]; nodes],
            view_shown: vec![vec![(0, 0); groups]; nodes],
            durable_view: vec![vec![(0, 0); groups]; nodes],
            settled_view: vec![None; groups],
            vote_sent_tick: 0,
            view_change_done: false,
            dropped_at_settle: 0,
            refused: Vec::new(),
            schedule: Vec::new(),
            replay: None,
            steps_this_tick: 0,
            stepping: None,
            ctx: DecodeContext {
                cluster: CLUSTER,
                replica_count,
            },
            incarnations: 0,
            deliveries: Vec::new(),
            drops: Vec::new(),
            actions: Vec::new(),
            ops_issued: 0,
            layout,
            options,
        }
    }

    /// A world that executes the fault schedule `events` (recorded from a run of `seed` with
    /// `options`) instead of drawing faults: the replay of that run.
    pub fn replaying(
        seed: u64,
        options: Options,
        trace: Trace,
        events: Vec<schedule::Event>,
    ) -> Simulation {
        let kind = Box::new(crate::node::vsr::kv_kind());
        Simulation::replaying_kind(seed, options, trace, events, kind)
    }

    /// `replaying`, with nodes of `kind`.
    pub fn replaying_kind(
        seed: u64,
        options: Options,
        trace: Trace,
        events: Vec<schedule::Event>,
        kind: Box<dyn NodeKind>,
    ) -> Simulation {
        let mut sim = Simulation::with_kind(seed, options, trace, kind);
        sim.network.set_scripted();
        sim.replay = Some(Replay::new(events));
        sim
    }

    /// Events of the replayed schedule passed over because their moment never came (0 for
    /// an unedited schedule).
    pub fn replay_skipped(&self) -> u64 {
        self.replay
            .as_ref()
            .map_or(0, |r| r.skipped + r.remaining() as u64)
    }

    /// Advances the world by one tick. Stops doing anything once a violation is found.
    pub fn step(&mut self) {
        if self.violation.is_some() {
            return;
        }
        self.tick += 1;
        self.steps_this_tick = 0;
        // The tick's points (`schedule::Point`), in order: the network's timeline, the faults
        // of the start of the tick, then every replica step.
        self.network_tick();
        if self.faults_enabled && self.phase == Phase::Safety {
            self.start_of_tick_faults();
        }
        self.end_aimed_faults();
        self.complete_writes();
        self.restart_due();
        for r in 0..self.options.replica_count {
            for g in 0..self.options.group_count as usize {
                if self.is_paused(r) {
                    break;
                }
                // An aimed fault after the previous group's step may have crashed the node.
                if let Some(node) = self.cluster.node_mut(r) {
                    let result = cluster::catch(|| node.on_tick(g));
                    self.after_replica_step(r, g, result);
                }
            }
        }
        self.clients_tick();
        self.deliver();
        self.trace_drops();
        if self.phase == Phase::Liveness {
            self.check_view_churn();
        }
    }

    /// Every packet the network dropped this tick is a trace event, with its reason.
    fn trace_drops(&mut self) {
        self.network.take_drops(&mut self.drops);
        for (from, to, reason) in self.drops.drain(..) {
            self.trace.record(Event::Drop {
                tick: self.tick,
                from: from as usize,
                to: to as usize,
                reason: reason.name(),
            });
        }
    }
}
