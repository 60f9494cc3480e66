//! One whole run of a seed: safety phase, liveness phase, end-of-run checks, and the summary
//! (the JSON contract of DESIGN §5).

use crate::checker::Violation;
use crate::options::Options;
use crate::simulation::Simulation;
use crate::trace::{Event, Trace};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How a run ended (DESIGN §5 exit codes: 0, 1, 3, 4; 5 for a bug of the harness itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Correctness,
    Liveness,
    /// Nothing failed, but the end-of-run linearizability check ran out of budget (steps or
    /// memory) before deciding: the run is not a pass, as its history was not checked.
    Undecided,
    /// The simulator itself panicked (outside a replica step): the run says nothing about
    /// the replica.
    HarnessBug,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Correctness => 1,
            Outcome::Liveness => 3,
            Outcome::Undecided => 4,
            Outcome::HarnessBug => 5,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Correctness => "correctness",
            Outcome::Liveness => "liveness",
            Outcome::Undecided => "undecided",
            Outcome::HarnessBug => "harness_bug",
        }
    }

    /// The outcome of a name as `name` gives it (and the JSON holds it).
    pub fn from_name(name: &str) -> Option<Outcome> {
        [
            Outcome::Pass,
            Outcome::Correctness,
            Outcome::Liveness,
            Outcome::Undecided,
            Outcome::HarnessBug,
        ]
        .into_iter()
        .find(|o| o.name() == name)
    }
}

/// Where the core stood when it failed to converge (outcome `liveness`): built from the
/// simulation's public state, as the `liveness` object of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivenessState {
    /// The replicas that had to converge (a quorum, or every replica after disk faults).
    pub core: Vec<u8>,
    /// The highest op the cluster committed (the oracle's view).
    pub cluster_commit: u64,
    /// One entry per core replica, in replica order.
    pub replicas: Vec<CoreReplica>,
    /// The client requests still waiting for a reply.
    pub waiting: Vec<WaitingRequest>,
}

/// One core replica at the end of a liveness failure; the numbers are null when it is down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreReplica {
    pub replica: u8,
    /// The group (left out when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub group: u8,
    pub up: bool,
    /// `normal`, `view_change`, `recovering`, or `down`.
    pub status: String,
    pub view: Option<u32>,
    pub log_view: Option<u32>,
    pub op: Option<u64>,
    pub commit_min: Option<u64>,
    pub commit_max: Option<u64>,
    /// The replica's own one-line account (hash-chain floor, missing prepares, votes, ...).
    pub detail: Option<String>,
}

/// A client request still in flight when the liveness phase ran out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingRequest {
    pub client: u8,
    pub session: u64,
    pub request: u32,
    pub since_tick: u64,
    pub attempts: u32,
    /// The replica the client sends to.
    pub target: u8,
}

impl LivenessState {
    /// Reads the core replicas and the waiting clients of `sim`.
    pub fn of(sim: &Simulation) -> LivenessState {
        let groups = 0..sim.options.group_count as usize;
        let replicas = groups
            .flat_map(|g| sim.core.iter().map(move |&r| (r, g)))
            .map(|(r, g)| match sim.cluster.group(r, g) {
                Some(x) => CoreReplica {
                    replica: r,
                    group: g as u8,
                    up: true,
                    status: crate::cluster::status_name(x.status()).to_string(),
                    view: Some(x.view()),
                    log_view: Some(x.log_view()),
                    op: Some(x.op()),
                    commit_min: Some(x.commit_min()),
                    commit_max: Some(x.commit_max()),
                    detail: Some(x.describe()),
                },
                None => CoreReplica {
                    replica: r,
                    group: g as u8,
                    up: false,
                    status: "down".to_string(),
                    view: None,
                    log_view: None,
                    op: None,
                    commit_min: None,
                    commit_max: None,
                    detail: None,
                },
            })
            .collect();
        let waiting = sim
            .clients
            .iter()
            .filter_map(|c| {
                let f = c.in_flight.as_ref()?;
                Some(WaitingRequest {
                    client: c.index,
                    session: c.session,
                    request: f.request,
                    since_tick: f.call_tick,
                    attempts: f.attempts,
                    target: c.target,
                })
            })
            .collect();
        LivenessState {
            core: sim.core.clone(),
            cluster_commit: sim.ops_committed(),
            replicas,
            waiting,
        }
    }

    /// The first line of the report: `core [0, 2, 3] did not converge (cluster commit 8)`.
    pub fn headline(&self) -> String {
        format!(
            "core {:?} did not converge (cluster commit {})",
            self.core, self.cluster_commit
        )
    }
}

/// Which sweep a seed belonged to (`--seeds A..B [--shard I/N]`), so `vopr merge` can tell
/// which seeds a set of shard outputs must hold and that they were run alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepInfo {
    /// The range, `start..end` (end excluded).
    pub start: u64,
    pub end: u64,
    /// This run's shard `shard` of `shards` (0 of 1 without --shard).
    pub shard: u64,
    pub shards: u64,
    /// The flags every seed of the sweep ran with (as in the replay command).
    pub flags: String,
}

/// What one consensus group did in a run (the JSON's `per_group`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFigures {
    pub group: u8,
    pub namespace: u64,
    pub ops_committed: u64,
    pub requests_committed: u64,
    pub view_max: u32,
    /// View changes its replicas took part in (summed over replicas and incarnations).
    pub view_changes: u64,
    pub repairs: u64,
    pub state_syncs: u64,
}

impl GroupFigures {
    /// Every group's figures, or none for a single-group run (the totals say it all).
    pub fn of(sim: &Simulation) -> Vec<GroupFigures> {
        if sim.options.group_count == 1 {
            return Vec::new();
        }
        (0..sim.options.group_count as usize)
            .map(|g| {
                let totals = sim.replica_totals(Some(g));
                GroupFigures {
                    group: g as u8,
                    namespace: sim.cluster.namespace(g),
                    ops_committed: sim.oracles[g].commit_max(),
                    requests_committed: sim.oracles[g].requests_committed,
                    view_max: sim.counters.view_max_by_group[g],
                    view_changes: totals.view_changes,
                    repairs: totals.repairs,
                    state_syncs: totals.state_syncs,
                }
            })
            .collect()
    }
}

fn is_zero(group: &u8) -> bool {
    *group == 0
}

/// The summary of one run: one JSON object per seed.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub outcome: Outcome,
    pub ticks: u64,
    pub replicas: u8,
    pub clients: u8,
    /// Committed in every group (per group in `per_group`).
    pub requests_committed: u64,
    pub ops_committed: u64,
    /// Consensus groups on every node.
    pub groups: u8,
    /// Per group figures, when the nodes host several groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_group: Vec<GroupFigures>,
    /// Messages nodes dropped because their namespace named no hosted group.
    pub messages_dropped_namespace: u64,
    pub view_max: u32,
    /// Crashes injected as faults (random and aimed), all in the safety phase.
    pub crashes: u64,
    /// Replicas outside the liveness core, stopped when the liveness phase began (a quorum
    /// must converge alone): not faults, so not in `crashes`.
    pub stopped_outside_core: u64,
    pub restarts: u64,
    pub partitions: u64,
    pub packets_sent: u64,
    pub packets_dropped: u64,
    pub packets_duplicated: u64,
    pub storage_faults: u64,
    /// Restarts refused because the disk lost what no peer could repair (beyond the atlas
    /// only; then the expected answer, not a liveness failure).
    pub refused_to_open: u64,
    /// Events of the run's fault schedule (crashes, partitions, clogs, pauses, disk faults).
    pub fault_events: usize,
    /// Replays: events of the schedule whose moment never came (0 for an unedited one).
    pub replay_skipped: u64,
    /// Faults aimed at protocol moments, by kind (`crate::aim`).
    pub aimed_faults: std::collections::BTreeMap<&'static str, u64>,
    pub repairs: u64,
    pub checkpoints: u64,
    pub state_syncs: u64,
    pub evictions: u64,
    pub history_ops: usize,
    pub linearizability: &'static str,
    pub violation: Option<Violation>,
    /// Outcome `liveness`: the core replicas' state and the waiting requests (else null).
    pub liveness: Option<LivenessState>,
    pub trace_hash: String,
    pub ticks_per_s: f64,
    pub requests_per_s: f64,
    /// Wall-clock time of the end-of-run linearizability check (not in ticks_per_s).
    pub linearizability_ms: f64,
    /// Search steps the end-of-run check took (of `end_of_run::linearizability_steps_max`):
    /// the same on every machine, unlike its time.
    pub linearizability_steps: u64,
    pub version: &'static str,
    /// The command that replays this seed (set by vopr; absent from library runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    /// The sweep this seed was part of (set by `vopr --seeds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepInfo>,
    pub options: Options,
    /// Not in the JSON: the last events, for the failure report.
    #[serde(skip)]
    pub recent_events: Vec<Event>,
    /// A correctness violation: every replica as it stood then (`r2: Normal view 3 ...`, or
    /// `r1: down`), the one it names first; and the last events that involved that one (the
    /// report shows them before the rest).
    pub replicas_at_violation: Vec<String>,
    #[serde(skip)]
    pub violation_events: Vec<Event>,
    #[serde(skip)]
    pub history_jsonl: Option<String>,
    /// Not in the JSON: the run's fault schedule (`crate::schedule`).
    #[serde(skip)]
    pub schedule: Vec<crate::schedule::Event>,
    /// Not in the JSON: why the `--trace` export failed, if it did.
    #[serde(skip)]
    pub trace_error: Option<String>,
    /// Not in the JSON: what `--timeline` draws (with `RunConfig::timeline`).
    #[serde(skip)]
    pub timeline: Option<crate::timeline::Collected>,
}

/// The crate's version and the git commit it was built from (`0.1.0+1a2b3c4`; `+unknown`
/// outside a git checkout), as `version` in the JSON and the first line of a run.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("VOPR_GIT_COMMIT"));

/// What a run should produce beyond its summary.
#[derive(Default)]
pub struct RunConfig {
    /// JSON-lines export of every event.
    pub trace: Option<Box<dyn std::io::Write + Send>>,
    /// Keep the client history (for `--history`).
    pub keep_history: bool,
    /// Skip the end-of-run linearizability check.
    pub skip_linearizability: bool,
    /// Execute this fault schedule instead of drawing faults from the seed (a replay).
    pub replay: Option<Vec<crate::schedule::Event>>,
    /// Which events the exported trace holds (`--trace-filter`; all by default).
    pub trace_filter: crate::trace::Filter,
    /// Collect what `--timeline` draws (`Summary::timeline`); off, a run keeps nothing more.
    pub timeline: bool,
    /// The nodes to run: a user's own implementation of the node interface; None runs this
    /// crate's (`node::vsr::kv_kind`).
    pub node_kind: Option<Box<dyn crate::node::NodeKind + Send>>,
}

/// Runs `run` (a whole run of `seed`), turning a panic of the harness (outside a replica step,
/// which `cluster::catch` reports as a violation) into a `HarnessBug` summary of that seed, so
/// one such seed does not lose the others of a sweep. The panic hook has printed it already.
pub fn guard(seed: u64, options: &Options, run: impl FnOnce() -> Summary) -> Summary {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(summary) => summary,
        Err(payload) => {
            let message = crate::cluster::take_harness_panic()
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "harness bug: the simulator panicked".to_string());
            Summary::harness_bug(seed, options.clone(), message)
        }
    }
}

impl Summary {
    /// The summary of a run that the harness's own panic cut short.
    pub fn harness_bug(seed: u64, options: Options, message: String) -> Summary {
        Summary {
            seed,
            outcome: Outcome::HarnessBug,
            ticks: 0,
            replicas: options.replica_count,
            clients: options.client_count,
            requests_committed: 0,
            ops_committed: 0,
            groups: options.group_count,
            per_group: Vec::new(),
            messages_dropped_namespace: 0,
            view_max: 0,
            crashes: 0,
            stopped_outside_core: 0,
            restarts: 0,
            partitions: 0,
            packets_sent: 0,
            packets_dropped: 0,
            packets_duplicated: 0,
            storage_faults: 0,
            refused_to_open: 0,
            fault_events: 0,
            replay_skipped: 0,
            aimed_faults: Default::default(),
            repairs: 0,
            checkpoints: 0,
            state_syncs: 0,
            evictions: 0,
            history_ops: 0,
            linearizability: "skipped",
            violation: Some(Violation {
                invariant: "harness_bug",
                tick: 0,
                replica: None,
                message,
            }),
            liveness: None,
            trace_hash: String::new(),
            ticks_per_s: 0.0,
            requests_per_s: 0.0,
            linearizability_ms: 0.0,
            linearizability_steps: 0,
            version: VERSION,
            replay: None,
            sweep: None,
            options,
            recent_events: Vec::new(),
            replicas_at_violation: Vec::new(),
            violation_events: Vec::new(),
            history_jsonl: None,
            schedule: Vec::new(),
            trace_error: None,
            timeline: None,
        }
    }
}

/// Runs seed `seed` with `options` to its end.
pub fn run(seed: u64, options: Options, config: RunConfig) -> Summary {
    let started = Instant::now();
    let mut trace = Trace::new(config.trace);
    // The first line says what the trace is of, so a trace file alone can be replayed.
    trace.write_header(&serde_json::json!({
        "trace": 1,
        "version": VERSION,
        "seed": seed,
        "replay_of_schedule": config.replay.is_some(),
        "options": &options,
    }));
    trace.set_filter(config.trace_filter);
    if config.timeline {
        trace.keep(crate::timeline::keeps);
    }
    let kind: Box<dyn crate::node::NodeKind> = match config.node_kind {
        Some(kind) => kind,
        None => Box::new(crate::node::vsr::kv_kind()),
    };
    let mut sim = match config.replay {
        Some(events) => Simulation::replaying_kind(seed, options.clone(), trace, events, kind),
        None => Simulation::with_kind(seed, options.clone(), trace, kind),
    };
    while sim.tick < options.ticks_safety && sim.violation.is_none() {
        sim.step();
    }
    let mut liveness = None;
    // Faults are off from the liveness phase on: every crash after this point is a replica
    // outside the core being stopped.
    let fault_crashes = sim.counters.crashes;
    if sim.violation.is_none() {
        sim.start_liveness_phase();
        let deadline = sim.tick + options.liveness_ticks();
        while sim.violation.is_none()
            && !sim.converged()
            && !sim.refusal_expected()
            && sim.tick < deadline
        {
            sim.step();
        }
        let stalled = sim.violation.is_none() && !sim.converged() && !sim.refusal_expected();
        if stalled && !sim.stall_expected() {
            liveness = Some(LivenessState::of(&sim));
        }
        // A quiet spell after convergence: a healthy, idle cluster must stay in its view.
        let quiet_until = sim.tick + crate::simulation::QUIET_TICKS;
        while liveness.is_none()
            && !stalled
            && !sim.refusal_expected()
            && sim.violation.is_none()
            && sim.tick < quiet_until
        {
            sim.step();
        }
    }
    let simulated = started.elapsed();
    let (linearizability, linearizability_steps) =
        if config.skip_linearizability || sim.violation.is_some() {
            ("skipped", 0)
        } else {
            crate::end_of_run::check_simulation_history(&mut sim)
        };
    let checked = started.elapsed() - simulated;
    let keep = config.keep_history;
    let stopped = sim.counters.crashes - fault_crashes;
    let timeline = config
        .timeline
        .then(|| crate::timeline::Collected::of(&mut sim));
    let mut summary = summarize(seed, sim, simulated, liveness, linearizability, keep);
    summary.timeline = timeline;
    summary.linearizability_ms = checked.as_secs_f64() * 1000.0;
    summary.linearizability_steps = linearizability_steps;
    summary.crashes = fault_crashes;
    summary.stopped_outside_core = stopped;
    summary
}

fn summarize(
    seed: u64,
    mut sim: Simulation,
    simulated: std::time::Duration,
    liveness: Option<LivenessState>,
    linearizability: &'static str,
    keep_history: bool,
) -> Summary {
    sim.trace.flush();
    let outcome = if sim.violation.is_some() {
        Outcome::Correctness
    } else if liveness.is_some() {
        Outcome::Liveness
    } else if linearizability == crate::end_of_run::UNDECIDED {
        Outcome::Undecided
    } else {
        Outcome::Pass
    };
    let elapsed = simulated.as_secs_f64().max(1e-9);
    let net = *sim.network.stats();
    let totals = sim.replica_totals(None);
    Summary {
        seed,
        outcome,
        ticks: sim.tick,
        replicas: sim.options.replica_count,
        clients: sim.options.client_count,
        requests_committed: sim.requests_committed(),
        ops_committed: sim.ops_committed(),
        groups: sim.options.group_count,
        per_group: GroupFigures::of(&sim),
        messages_dropped_namespace: sim.messages_dropped_namespace(),
        view_max: sim.counters.view_max,
        crashes: sim.counters.crashes,
        stopped_outside_core: 0,
        restarts: sim.counters.restarts,
        partitions: net.partitions,
        packets_sent: net.packets_sent,
        packets_dropped: net.packets_dropped,
        packets_duplicated: net.packets_duplicated,
        storage_faults: sim.counters.storage_faults,
        refused_to_open: sim.counters.unopenable,
        fault_events: sim.schedule.len(),
        replay_skipped: sim.replay_skipped(),
        aimed_faults: sim.counters.aimed.iter().collect(),
        repairs: totals.repairs,
        checkpoints: totals.checkpoints,
        state_syncs: totals.state_syncs,
        evictions: sim.counters.evictions,
        history_ops: sim.history.len(),
        linearizability,
        trace_hash: format!("{:016x}", sim.trace.hash()),
        ticks_per_s: sim.tick as f64 / elapsed,
        requests_per_s: sim.requests_committed() as f64 / elapsed,
        linearizability_ms: 0.0,
        linearizability_steps: 0,
        version: VERSION,
        replay: None,
        sweep: None,
        recent_events: sim.trace.recent().copied().collect(),
        replicas_at_violation: replicas_at_violation(&sim),
        violation_events: violation_replica(&sim)
            .map(|r| sim.trace.recent_involving(r, 25))
            .unwrap_or_default(),
        history_jsonl: keep_history.then(|| crate::end_of_run::to_jsonl(&sim.history)),
        trace_error: sim.trace.export_error().map(str::to_string),
        schedule: std::mem::take(&mut sim.schedule),
        violation: sim.violation.take(),
        liveness,
        options: sim.options.clone(),
        timeline: None,
    }
}

/// The replica a violation names, if any.
fn violation_replica(sim: &Simulation) -> Option<u8> {
    sim.violation.as_ref().and_then(|v| v.replica)
}

/// Every replica's state at a violation, the one it names first (empty without one).
pub fn replicas_at_violation(sim: &Simulation) -> Vec<String> {
    let Some(v) = &sim.violation else {
        return Vec::new();
    };
    let mut order: Vec<u8> = (0..sim.options.replica_count).collect();
    if let Some(r) = v.replica {
        order.retain(|&x| x != r);
        order.insert(0, r);
    }
    let groups = sim.options.group_count as usize;
    order
        .into_iter()
        .flat_map(|r| (0..groups).map(move |g| (r, g)))
        .map(|(r, g)| {
            let name = match groups {
                1 => format!("r{r}"),
                _ => format!("r{r} group {g}"),
            };
            match sim.cluster.group(r, g) {
                Some(x) => format!("{name}: {}", x.describe()),
                None => format!("{name}: down"),
            }
        })
        .collect()
}
