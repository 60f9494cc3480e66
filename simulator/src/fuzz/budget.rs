//! How long a fuzz input may run. Coverage guidance needs throughput, and an input's cost is
//! its ticks (setup is microseconds once the ring is small), so each target gets a short,
//! fixed budget and stops early once the world is at rest.

use crate::scenario::Scenario;

/// How a simulation target runs an input. The fuzzer runs `Short`; inputs kept in
/// fuzz/regressions before the budgets existed were found `Unbounded` and reproduce their bug
/// only so (the same bytes pick other tick counts and rings when short), so the stable tests
/// replay every regression both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Short,
    /// `view_change`: up to 200 events of up to 400 ticks each, the swarm's ring, then 3,000
    /// ticks with clients still sending. `scenario`: safety 500..=4,000 ticks, liveness up to
    /// 20,000, rings of 32..1024 slots.
    Unbounded,
}

/// Ticks the scripted events of one `view_change` input may take in all (events past it are
/// not read). A view change needs `normal_heartbeat` (200) ticks without a primary plus the
/// round trips, so this still fits a few view changes, crash-restart cycles and repairs.
pub const VIEW_CHANGE_EVENT_TICKS: u64 = 1_000;

/// Ticks the healed, restarted cluster of a `view_change` input gets to come to rest.
pub const VIEW_CHANGE_SETTLE_TICKS_MAX: u64 = 3_000;

/// The largest journal ring of a `view_change` input. Opening a replica allocates its
/// in-memory index (a slot per entry), which at 1024 slots cost more than a short run; a small
/// ring also wraps, checkpoints and transfers state within the budget.
pub const VIEW_CHANGE_RING_MAX: u64 = 128;

/// The safety phase of a `scenario` input (faults on), drawn from the input. Two bytes of the
/// input either way, so its other options keep their bytes.
pub const SCENARIO_SAFETY_TICKS: std::ops::RangeInclusive<u64> = 200..=1_000;

/// The liveness phase of a `scenario` input: the core converges within it or the run ends
/// (the quiet spell the view-churn oracle watches follows convergence, as in every run).
pub const SCENARIO_LIVENESS_TICKS_MAX: u64 = 4_000;

/// Ticks the world must stay at rest before a run stops: longer than a commit heartbeat and a
/// ping round (20 and 40 ticks) and far beyond the scripted network's delays (1 tick minimum,
/// 3 mean), so what was in flight when it came to rest is delivered and checked too.
pub const QUIESCENT_HOLD_TICKS: u64 = 50;

/// Whether the scripted world is at rest: the cluster settled (every replica up and normal in
/// one view, its log all committed and executed, no client request in flight) and no replica
/// waiting for a disk write. Nothing is left to happen but heartbeats.
pub fn quiescent(s: &Scenario) -> bool {
    s.settled()
        && s.sim
            .cluster
            .up()
            .all(|(_, r)| r.writes_done() == r.writes_submitted())
}

/// Runs until the world has been `quiescent` for `QUIESCENT_HOLD_TICKS` ticks in a row, or
/// `max` ticks pass (not an error: the targets check safety, not liveness). Returns the ticks
/// run; an error on a violation.
pub fn run_to_quiescence(s: &mut Scenario, max: u64) -> Result<u64, String> {
    let mut at_rest = 0;
    for ran in 0..max {
        at_rest = if quiescent(s) { at_rest + 1 } else { 0 };
        if at_rest > QUIESCENT_HOLD_TICKS {
            return Ok(ran);
        }
        s.run(1)?;
    }
    Ok(max)
}
