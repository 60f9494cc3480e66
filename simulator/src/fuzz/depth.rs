//! How deep an input got: what the stable tests check (the targets must reach deep code) and
//! what the fuzz targets feed libFuzzer as protocol features (`features.rs`).

use crate::simulation::Simulation;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// The highest view any replica reached.
    pub view_max: u32,
    /// The highest op the cluster committed.
    pub commit_max: u64,
    /// Ticks the input ran (its cost).
    pub ticks: u64,
    /// Headers and prepares repaired, checkpoints taken, state transfers done (every
    /// incarnation of every replica).
    pub repairs: u64,
    pub checkpoints: u64,
    pub state_syncs: u64,
    /// Crashes (scripted or drawn) and restarts.
    pub crashes: u64,
    pub restarts: u64,
    /// Disk faults injected, writes torn included.
    pub storage_faults: u64,
    /// The most distinct headers the up replicas held for one op (at the end, and where a
    /// target looks before healing): logs a view change abandoned, still in some journal
    /// beside the one that won.
    pub versions_max: u64,
    /// Consensus groups per node, and messages of a wrong group the nodes and replicas
    /// dropped (not features: for tests that the targets reach them).
    pub groups: u8,
    pub misrouted: u64,
    /// The run's trace hash (not a feature: for tests that an input always runs the same).
    pub trace_hash: u64,
}

impl Depth {
    /// Reads the depth of a simulation that has finished its run.
    pub fn of(sim: &Simulation) -> Depth {
        let totals = sim.replica_totals(None);
        Depth {
            view_max: sim.counters.view_max,
            commit_max: sim.ops_committed(),
            ticks: sim.tick,
            repairs: totals.repairs,
            checkpoints: totals.checkpoints,
            state_syncs: totals.state_syncs,
            crashes: sim.counters.crashes,
            restarts: sim.counters.restarts,
            storage_faults: sim.counters.storage_faults,
            versions_max: versions_max(sim),
            groups: sim.options.group_count,
            misrouted: sim.messages_dropped_namespace(),
            trace_hash: sim.trace.hash(),
        }
    }
}

/// The most distinct headers the up replicas hold for one op of the newest ring's worth.
pub fn versions_max(sim: &Simulation) -> u64 {
    let op_max = sim.cluster.up().map(|(_, r)| r.op()).max().unwrap_or(0);
    let op_min = op_max.saturating_sub(sim.options.journal_slot_count);
    (op_min..=op_max)
        .map(|op| {
            let versions: BTreeSet<u128> = sim
                .cluster
                .up()
                .filter_map(|(_, r)| r.header(op).map(|h| h.checksum))
                .collect();
            versions.len() as u64
        })
        .max()
        .unwrap_or(0)
}
