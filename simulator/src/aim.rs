//! Faults aimed at protocol moments, BUGGIFY-style: the simulator watches what each replica
//! sends and writes, and acts right then, where bugs live and evenly spread faults rarely
//! land. The consensus crate knows nothing of it.
//!
//! The swarm turns each kind on in about a third of the seeds, from its own PRNG stream, so
//! the options drawn before these keep their values. The decisions at run time come from
//! another stream of their own ("aim").

use crate::prng::Prng;
use serde::{Deserialize, Serialize};

/// How hard each aimed fault hits (a probability per moment, 0 = off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AimOptions {
    /// Crash a replica right after it sends a prepare_ok.
    pub crash_after_prepare_ok: f64,
    /// Crash a replica right after it sends a do_view_change.
    pub crash_after_do_view_change: f64,
    /// Crash a new primary right after it sends start_view.
    pub crash_after_start_view: f64,
    /// Crash a replica right after it submits a superblock or checkpoint write (view change,
    /// checkpoint).
    pub crash_after_superblock_write: f64,
    /// How much likelier a random crash is while the replica has writes in flight.
    pub crash_pending_writes_factor: f64,
    /// Isolate a primary (cut from every replica) right after it commits.
    pub isolate_after_commit: f64,
    /// Isolate a new primary right after it sends start_view.
    pub isolate_after_start_view: f64,
    /// Mean ticks an isolation lasts (exponential).
    pub isolate_ticks_mean: u64,
    /// Drop a start_view on its way to one backup (start_view reaches only some).
    pub start_view_drop: f64,
    /// Probability per tick that an up replica pauses (no ticks; its messages wait), as in
    /// a GC pause or a stalled VM.
    pub pause_probability: f64,
    /// Mean ticks a pause lasts (exponential).
    pub pause_ticks_mean: u64,
    /// Restart a crashed replica right as a view change completes elsewhere (a replica
    /// enters normal status in a new view).
    #[serde(default)]
    pub restart_on_view_change: f64,
}

impl AimOptions {
    /// No aimed faults.
    pub fn off() -> AimOptions {
        AimOptions {
            crash_after_prepare_ok: 0.0,
            crash_after_do_view_change: 0.0,
            crash_after_start_view: 0.0,
            crash_after_superblock_write: 0.0,
            crash_pending_writes_factor: 1.0,
            isolate_after_commit: 0.0,
            isolate_after_start_view: 0.0,
            isolate_ticks_mean: 300,
            start_view_drop: 0.0,
            pause_probability: 0.0,
            pause_ticks_mean: 200,
            restart_on_view_change: 0.0,
        }
    }

    /// The swarm's choice for `seed`.
    pub fn from_seed(seed: u64) -> AimOptions {
        let mut prng = Prng::stream(seed, "aim_options");
        // A probability in permille within lo..=hi, in about a third of the seeds.
        let mut some = |lo: u64, hi: u64| {
            if prng.chance(0.33) {
                prng.range_u64(lo, hi) as f64 / 1000.0
            } else {
                0.0
            }
        };
        let mut o = AimOptions::off();
        o.crash_after_prepare_ok = some(1, 20);
        o.crash_after_do_view_change = some(20, 300);
        o.crash_after_start_view = some(20, 300);
        o.crash_after_superblock_write = some(5, 100);
        o.crash_pending_writes_factor = 1.0 + some(1000, 9000);
        o.isolate_after_commit = some(1, 10);
        o.isolate_after_start_view = some(20, 300);
        o.start_view_drop = some(50, 500);
        o.pause_probability = some(1, 3) / 10.0;
        o.restart_on_view_change = some(200, 800);
        o.isolate_ticks_mean = prng.range_u64(50, 1000);
        o.pause_ticks_mean = prng.range_u64(20, 600);
        o
    }

    pub fn validate(&self) -> Result<(), String> {
        let probabilities = [
            ("crash_after_prepare_ok", self.crash_after_prepare_ok),
            (
                "crash_after_do_view_change",
                self.crash_after_do_view_change,
            ),
            ("crash_after_start_view", self.crash_after_start_view),
            (
                "crash_after_superblock_write",
                self.crash_after_superblock_write,
            ),
            ("isolate_after_commit", self.isolate_after_commit),
            ("isolate_after_start_view", self.isolate_after_start_view),
            ("start_view_drop", self.start_view_drop),
            ("pause_probability", self.pause_probability),
            ("restart_on_view_change", self.restart_on_view_change),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("aim.{name} must be within 0..=1, got {p}"));
            }
        }
        if !(1.0..=100.0).contains(&self.crash_pending_writes_factor) {
            return Err(format!(
                "aim.crash_pending_writes_factor must be within 1..=100, got {}",
                self.crash_pending_writes_factor
            ));
        }
        for (name, ticks) in [
            ("isolate_ticks_mean", self.isolate_ticks_mean),
            ("pause_ticks_mean", self.pause_ticks_mean),
        ] {
            if !(1..=100_000).contains(&ticks) {
                return Err(format!("aim.{name} must be within 1..=100000, got {ticks}"));
            }
        }
        Ok(())
    }
}

/// The moments (and kinds) of aimed faults, as counted in `--json` and named in the trace
/// and in fault schedules (by `name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aimed {
    CrashAfterPrepareOk,
    CrashAfterDoViewChange,
    CrashAfterStartView,
    CrashAfterSuperblockWrite,
    CrashWithWritesInFlight,
    IsolateAfterCommit,
    IsolateAfterStartView,
    StartViewDropped,
    Pause,
    RestartOnViewChange,
}

impl Aimed {
    pub const ALL: [Aimed; 10] = [
        Aimed::CrashAfterPrepareOk,
        Aimed::CrashAfterDoViewChange,
        Aimed::CrashAfterStartView,
        Aimed::CrashAfterSuperblockWrite,
        Aimed::CrashWithWritesInFlight,
        Aimed::IsolateAfterCommit,
        Aimed::IsolateAfterStartView,
        Aimed::StartViewDropped,
        Aimed::Pause,
        Aimed::RestartOnViewChange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Aimed::CrashAfterPrepareOk => "crash_after_prepare_ok",
            Aimed::CrashAfterDoViewChange => "crash_after_do_view_change",
            Aimed::CrashAfterStartView => "crash_after_start_view",
            Aimed::CrashAfterSuperblockWrite => "crash_after_superblock_write",
            Aimed::CrashWithWritesInFlight => "crash_with_writes_in_flight",
            Aimed::IsolateAfterCommit => "isolate_after_commit",
            Aimed::IsolateAfterStartView => "isolate_after_start_view",
            Aimed::StartViewDropped => "start_view_dropped",
            Aimed::Pause => "pause",
            Aimed::RestartOnViewChange => "restart_on_view_change",
        }
    }
}

/// How many times each aimed fault fired in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AimedCounts([u64; Aimed::ALL.len()]);

impl AimedCounts {
    pub fn add(&mut self, kind: Aimed) {
        self.0[kind as usize] += 1;
    }

    pub fn get(&self, kind: Aimed) -> u64 {
        self.0[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// (name, count) of every kind, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Aimed::ALL.iter().map(|&k| (k.name(), self.get(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swarm_turns_each_kind_on_in_some_seeds_and_off_in_others() {
        let seeds: Vec<AimOptions> = (0..300).map(AimOptions::from_seed).collect();
        let on = |f: fn(&AimOptions) -> f64| seeds.iter().filter(|o| f(o) > 0.0).count();
        for count in [
            on(|o| o.crash_after_prepare_ok),
            on(|o| o.crash_after_do_view_change),
            on(|o| o.crash_after_start_view),
            on(|o| o.isolate_after_start_view),
            on(|o| o.start_view_drop),
            on(|o| o.pause_probability),
            on(|o| o.restart_on_view_change),
        ] {
            assert!((50..=150).contains(&count), "{count} of 300");
        }
        assert!(seeds.iter().all(|o| o.validate().is_ok()));
        assert_eq!(AimOptions::from_seed(7), AimOptions::from_seed(7));
    }
}
