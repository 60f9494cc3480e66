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
mod durability;
mod faults;

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
            options.network.clone(),
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
        let root = consensus::replica::root_prepare(CLUSTER).header.checksum;
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

    // ----- Disks and restarts -----

    /// The disks complete the writes due before this tick; each replica learns which, and
    /// sends what waited for them.
    fn complete_writes(&mut self) {
        let tick = self.tick;
        for r in 0..self.options.replica_count {
            for g in 0..self.options.group_count as usize {
                if self.is_paused(r) {
                    // A paused process learns of completed writes only when it resumes.
                    break;
                }
                if let Some(node) = self.cluster.node_mut(r) {
                    // Most ticks complete nothing new: no step (and no oracle pass) then.
                    match cluster::catch(|| node.on_disk_advance(g, tick)) {
                        Ok(false) => {}
                        Ok(true) => self.after_replica_step(r, g, Ok(())),
                        Err(message) => self.after_replica_step(r, g, Err(message)),
                    }
                }
            }
        }
    }

    /// Replica counters of group `g` (every group when None), over every replica and
    /// incarnation.
    pub fn replica_totals(&self, g: Option<usize>) -> ReplicaTotals {
        let groups = match g {
            Some(g) => g..g + 1,
            None => 0..self.options.group_count as usize,
        };
        let mut totals = ReplicaTotals::default();
        for g in groups {
            totals.merge(&self.counters.crashed_stats[g]);
            for (_, x) in self.cluster.up_in(g) {
                totals.add(&x.stats());
            }
        }
        totals
    }

    /// Messages of a wrong namespace that nodes (their routers and their replicas) dropped,
    /// crashed incarnations included.
    pub fn messages_dropped_namespace(&self) -> u64 {
        let up: u64 = (0..self.options.replica_count)
            .filter_map(|r| self.cluster.node(r))
            .map(|node| node.messages_dropped_namespace())
            .sum();
        up + self.counters.dropped_namespace_crashed
    }

    /// Requests committed in every group.
    pub fn requests_committed(&self) -> u64 {
        self.oracles.iter().map(|o| o.requests_committed).sum()
    }

    /// Ops committed in every group.
    pub fn ops_committed(&self) -> u64 {
        self.oracles.iter().map(|o| o.commit_max()).sum()
    }

    /// Restarts replica `r` from its storage now.
    pub fn restart(&mut self, r: u8) {
        self.incarnations += 1;
        let result = self.cluster.restart(r, self.tick, self.incarnations);
        self.counters.restarts += 1;
        for oracle in &mut self.oracles {
            oracle.on_restart(r);
        }
        self.trace.record(Event::Restart {
            tick: self.tick,
            replica: r,
        });
        tracing::info!(tick = self.tick, replica = r, "restart");
        match result {
            Ok(()) => {
                for g in 0..self.options.group_count as usize {
                    // The state it opened in (a trace, or a timeline, then knows it at once).
                    if let Some(x) = self.cluster.group(r, g) {
                        let (view, status) = (x.view(), cluster::status_name(x.status()));
                        self.trace.record(Event::Status {
                            tick: self.tick,
                            replica: r,
                            group: g as u8,
                            view,
                            status,
                        });
                    }
                    self.check_view_durable(r, g);
                    self.writes_seen[r as usize][g] = 0;
                    self.after_replica_step(r, g, Ok(()));
                }
            }
            Err(cluster::RestartError::Panicked(message)) => self.fail_replica(r, 0, message),
            Err(cluster::RestartError::Unopenable) => {
                self.counters.unopenable += 1;
                self.refused.push(r);
                tracing::info!(tick = self.tick, replica = r, "refuses to open (its superblock, checkpoint or a journal entry is lost): stays down");
            }
        }
    }

    fn restart_due(&mut self) {
        for r in 0..self.options.replica_count {
            let slot = &self.cluster.slots[r as usize];
            if slot.node.is_none() && slot.restart_tick.is_some_and(|t| t <= self.tick) {
                self.restart(r);
            }
        }
    }

    fn fail_replica(&mut self, r: u8, g: usize, message: String) {
        let message = self.in_group(g, message);
        self.violation.get_or_insert(Violation {
            invariant: "replica_assertion",
            tick: self.tick,
            replica: Some(r),
            message,
        });
    }

    /// A violation's message, naming the group when the nodes host several.
    pub(crate) fn in_group(&self, g: usize, message: String) -> String {
        if self.options.group_count > 1 {
            format!("group {g}: {message}")
        } else {
            message
        }
    }

    /// Records violation `v` of group `g` (the first one found stands).
    fn fail_in_group(&mut self, g: usize, mut v: Violation) {
        v.message = self.in_group(g, v.message);
        self.violation.get_or_insert(v);
    }

    // ----- Replicas -----

    /// After group `g` of node `r` handled an input: report a panic, route its actions, run
    /// the group's oracles, record view/status/commit transitions, and aim faults at what it
    /// just did. Each call is one step of the tick (a point where aimed faults happen).
    fn after_replica_step(&mut self, r: u8, g: usize, result: Result<(), String>) {
        let outer = self.stepping.replace(self.steps_this_tick);
        self.steps_this_tick += 1;
        self.handle_replica_step(r, g, result);
        self.stepping = outer;
    }

    fn handle_replica_step(&mut self, r: u8, g: usize, result: Result<(), String>) {
        if let Err(message) = result {
            return self.fail_replica(r, g, message);
        }
        let Some(node) = self.cluster.node_mut(r) else {
            return;
        };
        // One buffer for every step's actions (no allocation per step on the hot path).
        let mut actions = std::mem::take(&mut self.actions);
        node.drain_actions(g, &mut actions);
        let mut sent = aimed::Sent::default();
        for action in actions.drain(..) {
            match action {
                Action::Send { to, message } => {
                    self.check_durable_before_send(r, g, &message);
                    self.note_view_shown(r, g, &message);
                    sent.note(&message);
                    if self.drop_start_view(&message, to) {
                        continue;
                    }
                    let bytes = message.encode();
                    self.network
                        .submit(r as usize, to as usize, bytes, self.tick);
                }
                Action::Reply { client, message } => {
                    let index = workload::client_index(client);
                    if let Some(index) = index.filter(|&i| i < self.options.client_count) {
                        let node = self.options.replica_count as usize + index as usize;
                        let bytes = message.encode();
                        self.network.submit(r as usize, node, bytes, self.tick);
                    }
                }
            }
        }
        self.actions = actions;
        let Some(replica) = self.cluster.group(r, g) else {
            return;
        };
        if let Err(v) = self.oracles[g].check_replica(self.tick, r, replica) {
            return self.fail_in_group(g, v);
        }
        self.observe(r, g);
        self.aim_after_step(r, g, sent);
    }

    fn observe(&mut self, r: u8, g: usize) {
        let replica = self.cluster.group(r, g).expect("up");
        let (view, status, commit) = (replica.view(), replica.status(), replica.commit_min());
        let leading = replica.is_primary() && status == consensus::Status::Normal;
        let slot = &mut self.cluster.slots[r as usize];
        let group = g as u8;
        if (view, status) != slot.observed[g] {
            if status == consensus::Status::Normal && view > slot.observed[g].0 {
                self.view_change_done = true;
            }
            slot.observed[g] = (view, status);
            self.counters.view_max = self.counters.view_max.max(view);
            let group_max = &mut self.counters.view_max_by_group[g];
            *group_max = (*group_max).max(view);
            let status = cluster::status_name(status);
            self.trace.record(Event::Status {
                tick: self.tick,
                replica: r,
                group,
                view,
                status,
            });
            tracing::info!(tick = self.tick, replica = r, group, view, status, "status");
        }
        if commit != slot.commit_observed[g] {
            slot.commit_observed[g] = commit;
            self.trace.record(Event::Commit {
                tick: self.tick,
                replica: r,
                group,
                commit,
            });
            tracing::debug!(tick = self.tick, replica = r, group, commit, "commit");
            if leading {
                self.aim_after_primary_commit(r);
            }
        }
    }

    // ----- Network -----

    fn deliver(&mut self) {
        let mut deliveries = std::mem::take(&mut self.deliveries);
        self.network.drain_ready(self.tick, &mut deliveries);
        for (from, to, bytes) in deliveries.drain(..) {
            if self.violation.is_some() {
                break;
            }
            let message = match wire::decode(&bytes, &self.ctx) {
                Ok(m) => m,
                Err(_) => {
                    self.counters.packets_corrupt += 1;
                    self.trace.record(Event::Corrupt {
                        tick: self.tick,
                        from,
                        to,
                    });
                    continue;
                }
            };
            if let Some(filter) = self.filter.as_mut() {
                if !filter(from, to, &message) {
                    continue;
                }
            }
            self.trace.record(Event::Deliver {
                tick: self.tick,
                from,
                to,
                command: message.header.command.name(),
                checksum: message.header.checksum as u64,
            });
            let replica_count = self.options.replica_count as usize;
            if to < replica_count {
                self.deliver_to_replica(from, to as u8, message);
            } else {
                self.deliver_to_client(to - replica_count, message);
            }
        }
        self.deliveries = deliveries;
    }

    fn deliver_to_replica(&mut self, from: usize, to: u8, message: Message) {
        if self.is_paused(to) {
            return self.hold_for_paused(from, to, message);
        }
        let replica_count = self.options.replica_count as usize;
        // The group the header names, if the nodes host it (else the node drops it).
        let group = self.group_of(&message);
        let peer = if from < replica_count {
            Peer::Replica(from as u8)
        } else {
            let session = self.session(from - replica_count, group.unwrap_or(0));
            Peer::Client(self.clients[session].id)
        };
        if let Some(node) = self.cluster.node_mut(to) {
            match cluster::catch(|| node.on_message(peer, message)) {
                Ok(Some(g)) => self.after_replica_step(to, g, Ok(())),
                Ok(None) => {}
                Err(panic) => self.after_replica_step(to, group.unwrap_or(0), Err(panic)),
            }
        }
    }

    /// The group whose namespace `message` carries, if the nodes host it.
    fn group_of(&self, message: &Message) -> Option<usize> {
        let g = message
            .header
            .namespace
            .checked_sub(self.options.namespace)?;
        (g < self.options.group_count as u64).then_some(g as usize)
    }

    /// Client process `i`'s session in group `g` (an index into `clients`).
    pub fn session(&self, i: usize, g: usize) -> usize {
        i * self.options.group_count as usize + g
    }

    // ----- Clients -----

    fn clients_tick(&mut self) {
        let timeout = self.options.request_timeout_ticks;
        let replica_count = self.options.replica_count;
        for i in 0..self.clients.len() {
            if let Some(action) = self.clients[i].on_tick(self.tick, replica_count, timeout) {
                self.client_send(i, action);
            }
            if self.clients[i].in_flight.is_none() && self.client_wants_request(i) {
                self.ops_issued += 1;
                let op = workload::random_op(
                    &mut self.prng_workload,
                    self.options.key_count,
                    i as u8,
                    self.ops_issued,
                    self.clients[i].group,
                );
                let client = &mut self.clients[i];
                if client.draining && client.session != 0 {
                    client.liveness_requests -= 1;
                }
                let action =
                    client.start_request(CLUSTER, self.tick, Some(op), &mut self.history, timeout);
                self.client_send(i, action);
            }
        }
    }

    fn client_wants_request(&mut self, i: usize) -> bool {
        let o = &self.options;
        let client = &mut self.clients[i];
        if client.draining {
            return client.liveness_requests > 0;
        }
        if client.session == 0 {
            return true;
        }
        // With several groups, a few operations go to the metadata group (a quarter of a
        // partition group's rate), as cluster metadata changes less often than partitions.
        let metadata = o.group_count > 1 && client.group == 0;
        if o.closed_loop {
            return !metadata || self.prng_workload.chance(0.25);
        }
        if client.idle {
            client.idle = !self.prng_workload.chance(o.idle_off_probability);
            return false;
        }
        if self.prng_workload.chance(o.idle_on_probability) {
            client.idle = true;
            return false;
        }
        let p = if metadata {
            o.request_probability / 4.0
        } else {
            o.request_probability
        };
        self.prng_workload.chance(p)
    }

    /// Sends a client's request into the network, traced.
    pub(crate) fn client_send(&mut self, i: usize, action: ClientAction) {
        let ClientAction::Send { to, message } = action;
        let request = match message.header.command {
            wire::Command::Request(r) => r.request,
            _ => 0,
        };
        self.trace.record(Event::Request {
            tick: self.tick,
            client: i as u8,
            request,
            to,
        });
        let node = self.options.replica_count as usize + self.clients[i].process as usize;
        self.network
            .submit(node, to as usize, message.encode(), self.tick);
    }

    /// A message reached client process `process`: its session in the message's group takes it.
    fn deliver_to_client(&mut self, process: usize, message: Message) {
        let Some(g) = self.group_of(&message) else {
            return; // No session of ours is in that namespace.
        };
        let i = self.session(process, g);
        let tick = self.tick;
        let client = &mut self.clients[i];
        // An eviction starts a new incarnation: the oracle judges the session it ended.
        let (id_before, session_before) = (client.id, client.session);
        let Some(event) = client.on_message(&message, tick, &mut self.history) else {
            return;
        };
        let id = client.id;
        let result = match event {
            ClientEvent::Registered => {
                let session = client.session;
                self.oracles[g].check_register(tick, id, session)
            }
            ClientEvent::Completed {
                request,
                op,
                call_tick,
                output,
                ..
            } => {
                self.counters.replies += 1;
                self.trace.record(Event::Reply {
                    tick,
                    client: i as u8,
                    request,
                    op,
                });
                self.oracles[g].check_reply(tick, id, request, op, call_tick, &output)
            }
            ClientEvent::Evicted => {
                self.counters.evictions += 1;
                self.trace.record(Event::Evicted {
                    tick,
                    client: i as u8,
                });
                self.oracles[g].check_eviction(tick, id_before, session_before)
            }
        };
        if let Err(v) = result {
            self.fail_in_group(g, v);
        }
    }

    // ----- Liveness -----

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
    fn draw_core(&mut self) -> Vec<u8> {
        let mut replicas: Vec<u8> = (0..self.options.replica_count)
            .filter(|&r| self.cluster.disks_clean(r))
            .collect();
        self.prng_faults.shuffle(&mut replicas);
        let quorum = self.options.replica_count as usize / 2 + 1;
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

    fn group_converged(&self, g: usize) -> bool {
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
