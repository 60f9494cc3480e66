//! The summary of a sweep of seeds, for `vopr --seeds A..B` and `vopr merge`: how many seeds
//! ran and passed, the failures by invariant (each listed seed with its replay command), the
//! liveness failures, the `unknown` linearizability answers, the speed, and the totals of every
//! fault kind. A person reads `human()`; `--json` and `--summary FILE` get `to_json()`.

use crate::run::{Outcome, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// At most this many failing seeds are listed (with their replay commands); the counts cover
/// all of them, and the JSON lines hold every one.
pub const LISTED_MAX: usize = 20;

/// Totals of the faults injected over the seeds of a sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultTotals {
    pub crashes: u64,
    pub partitions: u64,
    pub storage_faults: u64,
    pub packets_dropped: u64,
    pub packets_duplicated: u64,
    /// Faults aimed at protocol moments, by kind (as `aimed_faults` of each seed).
    pub aimed: BTreeMap<String, u64>,
}

/// One seed's part in a summary, from a run's `Summary` or a JSON line of one.
#[derive(Debug, Clone)]
pub struct SeedResult<'a> {
    pub seed: u64,
    pub outcome: Outcome,
    /// The invariant a correctness failure broke.
    pub invariant: Option<&'a str>,
    /// The end-of-run linearizability answer (`linearizable`, `unknown`, `skipped`, ...).
    pub linearizability: &'a str,
    /// Wall time of the seed (simulation and end-of-run check), in seconds.
    pub run_s: f64,
    pub crashes: u64,
    pub partitions: u64,
    pub storage_faults: u64,
    pub packets_dropped: u64,
    pub packets_duplicated: u64,
    pub aimed: Vec<(&'a str, u64)>,
    /// The command that replays the seed (`--seed N` alone when unknown).
    pub replay: Option<&'a str>,
}

impl<'a> SeedResult<'a> {
    pub fn of(s: &'a Summary) -> SeedResult<'a> {
        SeedResult {
            seed: s.seed,
            outcome: s.outcome,
            invariant: s.violation.as_ref().map(|v| v.invariant),
            linearizability: s.linearizability,
            run_s: run_seconds(s.ticks, s.ticks_per_s, s.linearizability_ms),
            crashes: s.crashes,
            partitions: s.partitions,
            storage_faults: s.storage_faults,
            packets_dropped: s.packets_dropped,
            packets_duplicated: s.packets_duplicated,
            aimed: s.aimed_faults.iter().map(|(k, v)| (*k, *v)).collect(),
            replay: s.replay.as_deref(),
        }
    }
}

/// A seed's wall time from its JSON: simulated ticks over ticks/s, plus the end-of-run check.
pub fn run_seconds(ticks: u64, ticks_per_s: f64, linearizability_ms: f64) -> f64 {
    let simulated = if ticks_per_s > 0.0 {
        ticks as f64 / ticks_per_s
    } else {
        0.0
    };
    simulated + linearizability_ms / 1000.0
}

/// A failing seed, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedSeed {
    pub seed: u64,
    pub outcome: &'static str,
    /// The invariant of a correctness failure (`harness_bug` for one of those; null for
    /// liveness).
    pub invariant: Option<String>,
    pub replay: String,
}

/// The summary of a sweep (or of merged shard outputs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepSummary {
    pub version: String,
    /// The seeds the sweep covers, `A..B` (B excluded), when known.
    pub seeds: Option<String>,
    /// `I/N` for one shard of a sweep.
    pub shard: Option<String>,
    /// For `vopr merge`: how many files were merged.
    pub files: Option<usize>,
    pub seeds_run: u64,
    pub passed: u64,
    pub failed: u64,
    pub correctness: u64,
    pub liveness: u64,
    /// Seeds whose end-of-run check did not decide (and nothing else failed). Counted in
    /// `failed` too: a seed whose history went unchecked is not a pass.
    pub undecided: u64,
    pub harness_bug: u64,
    /// Correctness failures by the invariant they broke.
    pub failed_by_invariant: BTreeMap<String, u64>,
    /// End-of-run linearizability answers by verdict.
    pub linearizability: BTreeMap<String, u64>,
    /// Seeds whose history the checker could not decide within its budget.
    pub linearizability_unknown: u64,
    /// Wall time of the sweep and seeds per second of it (null for a merge: the shards ran
    /// apart).
    pub elapsed_s: Option<f64>,
    pub seeds_per_s: Option<f64>,
    /// The seeds' own run times summed, and seeds per second of that (one job's speed).
    pub run_s: f64,
    pub seeds_per_run_s: f64,
    pub faults: FaultTotals,
    /// Per group (invariant, `liveness`, `harness_bug`), its lowest failing seeds.
    #[serde(skip)]
    kept: BTreeMap<(u8, String), BTreeMap<u64, FailedSeed>>,
}

impl SweepSummary {
    pub fn new(version: &str) -> SweepSummary {
        SweepSummary {
            version: version.to_string(),
            ..SweepSummary::default()
        }
    }

    /// Counts one seed in.
    pub fn add(&mut self, r: &SeedResult) {
        self.seeds_run += 1;
        match r.outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Correctness => self.correctness += 1,
            Outcome::Liveness => self.liveness += 1,
            Outcome::Undecided => self.undecided += 1,
            Outcome::HarnessBug => self.harness_bug += 1,
        }
        *self
            .linearizability
            .entry(r.linearizability.to_string())
            .or_default() += 1;
        if r.linearizability == "unknown" {
            self.linearizability_unknown += 1;
        }
        self.run_s += r.run_s;
        let f = &mut self.faults;
        f.crashes += r.crashes;
        f.partitions += r.partitions;
        f.storage_faults += r.storage_faults;
        f.packets_dropped += r.packets_dropped;
        f.packets_duplicated += r.packets_duplicated;
        for (kind, n) in &r.aimed {
            *f.aimed.entry(kind.to_string()).or_default() += n;
        }
        if r.outcome == Outcome::Pass {
            return;
        }
        self.failed += 1;
        let (group, invariant) = match r.outcome {
            Outcome::Correctness => {
                let invariant = r.invariant.unwrap_or("unknown invariant").to_string();
                *self
                    .failed_by_invariant
                    .entry(invariant.clone())
                    .or_default() += 1;
                ((0, invariant.clone()), Some(invariant))
            }
            Outcome::Liveness => ((1, "liveness".to_string()), None),
            Outcome::Undecided => ((2, "undecided".to_string()), None),
            _ => (
                (3, "harness_bug".to_string()),
                Some("harness_bug".to_string()),
            ),
        };
        let kept = self.kept.entry(group).or_default();
        if kept.len() == LISTED_MAX && kept.keys().next_back().is_some_and(|&s| s < r.seed) {
            return;
        }
        let replay = r.replay.map_or_else(
            || format!("cargo run --release --bin vopr -- --seed {}", r.seed),
            str::to_string,
        );
        kept.insert(
            r.seed,
            FailedSeed {
                seed: r.seed,
                outcome: r.outcome.name(),
                invariant,
                replay,
            },
        );
        if kept.len() > LISTED_MAX {
            kept.pop_last();
        }
    }

    /// Sets the wall time of the sweep.
    pub fn set_elapsed(&mut self, seconds: f64) {
        self.elapsed_s = Some(seconds);
        self.seeds_per_s = Some(self.seeds_run as f64 / seconds.max(1e-9));
    }

    /// The failing seeds listed: at most `LISTED_MAX`, taken in turn from each group (lowest
    /// seeds first), so every kind of failure shows at least one seed.
    pub fn listed(&self) -> Vec<(&str, Vec<&FailedSeed>)> {
        let mut groups: Vec<(&str, Vec<&FailedSeed>)> = self
            .kept
            .keys()
            .map(|(_, name)| (name.as_str(), Vec::new()))
            .collect();
        let mut iters: Vec<_> = self.kept.values().map(|m| m.values()).collect();
        let mut listed = 0;
        while listed < LISTED_MAX {
            let before = listed;
            for (i, it) in iters.iter_mut().enumerate() {
                if listed == LISTED_MAX {
                    break;
                }
                if let Some(f) = it.next() {
                    groups[i].1.push(f);
                    listed += 1;
                }
            }
            if listed == before {
                break;
            }
        }
        groups
    }

    fn listed_count(&self) -> usize {
        self.listed().iter().map(|(_, l)| l.len()).sum()
    }

    /// The summary object of `--json` and `--summary FILE`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("summary serializes");
        let listed: Vec<&FailedSeed> = self.listed().into_iter().flat_map(|(_, l)| l).collect();
        v["failures_not_listed"] = (self.failed - listed.len() as u64).into();
        v["failures_listed"] = serde_json::to_value(listed).expect("failures serialize");
        v
    }

    /// The summary a person reads.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let mut harness = String::new();
        // Shown when there are some, so the line of a healthy sweep stays as it was.
        if self.undecided > 0 {
            let _ = write!(harness, ", {} undecided", self.undecided);
        }
        if self.harness_bug > 0 {
            let _ = write!(harness, ", {} harness_bug", self.harness_bug);
        }
        let _ = writeln!(
            out,
            "{} seeds: {} pass, {} correctness, {} liveness{harness}",
            self.seeds_run, self.passed, self.correctness, self.liveness
        );
        let mut what = match (&self.files, &self.seeds) {
            (Some(n), Some(seeds)) => format!("merged {n} file{} of seeds {seeds}", plural(*n)),
            (Some(n), None) => format!("merged {n} file{}", plural(*n)),
            (None, Some(seeds)) => format!("seeds {seeds}"),
            (None, None) => "seeds".to_string(),
        };
        if let Some(shard) = &self.shard {
            let _ = write!(what, ", shard {shard}");
        }
        match (self.elapsed_s, self.seeds_per_s) {
            (Some(elapsed), Some(rate)) => {
                let _ = writeln!(out, "  {what}: {elapsed:.1} s, {rate:.2} seeds/s");
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  {what}: {:.1} s of seed run time, {:.2} seeds/s per job",
                    self.run_s, self.seeds_per_run_s
                );
            }
        }
        let listed = self.listed();
        let mut correctness_heading = false;
        for (name, seeds) in &listed {
            let (count, indent) = match *name {
                "liveness" => (self.liveness, "  "),
                "undecided" => (self.undecided, "  "),
                "harness_bug" => (self.harness_bug, "  "),
                invariant => {
                    if !correctness_heading {
                        let _ = writeln!(out, "  failed by invariant:");
                        correctness_heading = true;
                    }
                    (self.failed_by_invariant[invariant], "    ")
                }
            };
            let _ = writeln!(
                out,
                "{indent}{name}: {count} seed{}",
                plural(count as usize)
            );
            for f in seeds {
                let _ = writeln!(out, "{indent}  seed {}: {}", f.seed, f.replay);
            }
            let more = count - seeds.len() as u64;
            if more > 0 {
                let _ = writeln!(out, "{indent}  ... {more} more");
            }
        }
        let shown = self.listed_count() as u64;
        if self.failed > shown {
            let _ = writeln!(
                out,
                "  {shown} of {} failing seeds listed; the JSON lines (--json) hold every one",
                self.failed
            );
        }
        let mut verdicts = vec![
            format!("{} linearizable", self.count_of("linearizable")),
            format!("{} unknown", self.linearizability_unknown),
        ];
        for (verdict, n) in &self.linearizability {
            if verdict != "linearizable" && verdict != "unknown" {
                verdicts.push(format!("{n} {verdict}"));
            }
        }
        let _ = writeln!(out, "  linearizability: {}", verdicts.join(", "));
        let f = &self.faults;
        let _ = writeln!(
            out,
            "  faults: crashes={} partitions={} storage_faults={} packets_dropped={} \
             packets_duplicated={}",
            f.crashes, f.partitions, f.storage_faults, f.packets_dropped, f.packets_duplicated
        );
        if !f.aimed.is_empty() {
            let aimed: Vec<String> = f.aimed.iter().map(|(k, n)| format!("{k}={n}")).collect();
            let _ = writeln!(out, "  aimed faults: {}", aimed.join(" "));
        }
        out
    }

    fn count_of(&self, verdict: &str) -> u64 {
        self.linearizability.get(verdict).copied().unwrap_or(0)
    }

    /// Sets `seeds_per_run_s` from the counts; call once every seed is in.
    pub fn finish(&mut self) {
        self.seeds_per_run_s = if self.run_s > 0.0 {
            self.seeds_run as f64 / self.run_s
        } else {
            0.0
        };
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seed: u64, outcome: Outcome, invariant: Option<&str>) -> SeedResult<'_> {
        SeedResult {
            seed,
            outcome,
            invariant,
            linearizability: if seed.is_multiple_of(7) {
                "unknown"
            } else {
                "linearizable"
            },
            run_s: 0.5,
            crashes: 2,
            partitions: 1,
            storage_faults: 3,
            packets_dropped: 10,
            packets_duplicated: 4,
            aimed: vec![("pause", 1), ("crash_after_start_view", seed % 2)],
            replay: None,
        }
    }

    #[test]
    fn counts_totals_and_groups() {
        let mut s = SweepSummary::new("v");
        for seed in 0..100 {
            let (outcome, invariant) = match seed {
                s if s % 10 == 3 => (Outcome::Correctness, Some("agreement")),
                42 => (Outcome::Correctness, Some("durability")),
                s if s % 25 == 1 => (Outcome::Liveness, None),
                99 => (Outcome::HarnessBug, Some("harness_bug")),
                _ => (Outcome::Pass, None),
            };
            s.add(&result(seed, outcome, invariant));
        }
        s.finish();
        assert_eq!(s.seeds_run, 100);
        assert_eq!((s.correctness, s.liveness, s.harness_bug), (11, 4, 1));
        assert_eq!(s.passed, 84);
        assert_eq!(s.failed, 16);
        assert_eq!(s.failed_by_invariant["agreement"], 10);
        assert_eq!(s.failed_by_invariant["durability"], 1);
        assert_eq!(s.linearizability_unknown, 15);
        assert_eq!(s.faults.crashes, 200);
        assert_eq!(s.faults.aimed["pause"], 100);
        assert_eq!(s.faults.aimed["crash_after_start_view"], 50);
        assert!((s.seeds_per_run_s - 2.0).abs() < 1e-9);
        let text = s.human();
        assert!(text.starts_with("100 seeds: 84 pass, 11 correctness, 4 liveness, 1 harness_bug\n"));
        assert!(text.contains("    agreement: 10 seeds\n      seed 3: cargo run --release --bin vopr -- --seed 3\n"), "{text}");
        assert!(
            text.contains("    durability: 1 seed\n      seed 42: "),
            "{text}"
        );
        assert!(text.contains("  liveness: 4 seeds\n    seed 1: "), "{text}");
        assert!(
            text.contains("  harness_bug: 1 seed\n    seed 99: "),
            "{text}"
        );
        assert!(
            text.contains("linearizability: 85 linearizable, 15 unknown"),
            "{text}"
        );
        assert!(
            text.contains("aimed faults: crash_after_start_view=50 pause=100"),
            "{text}"
        );
        let json = s.to_json();
        assert_eq!(json["failures_listed"].as_array().unwrap().len(), 16);
        assert_eq!(json["failures_not_listed"], 0);
        assert_eq!(json["failed_by_invariant"]["agreement"], 10);
    }

    #[test]
    fn undecided_seeds_are_counted_and_listed_not_passed() {
        let mut s = SweepSummary::new("v");
        for seed in 0..10 {
            let outcome = if seed == 7 {
                Outcome::Undecided
            } else {
                Outcome::Pass
            };
            s.add(&result(seed, outcome, None));
        }
        assert_eq!((s.passed, s.undecided, s.failed), (9, 1, 1));
        assert_eq!(s.linearizability_unknown, 2);
        let text = s.human();
        assert!(
            text.starts_with("10 seeds: 9 pass, 0 correctness, 0 liveness, 1 undecided\n"),
            "{text}"
        );
        assert!(text.contains("  undecided: 1 seed\n    seed 7: "), "{text}");
        let json = s.to_json();
        assert_eq!(json["undecided"], 1);
        assert_eq!(json["failures_listed"][0]["outcome"], "undecided");
    }

    #[test]
    fn at_most_listed_max_are_listed_and_each_group_shows_one() {
        let mut s = SweepSummary::new("v");
        // Added out of order (as shards arrive): the lowest seeds of each group are kept.
        for seed in (0..200).rev() {
            let invariant = if seed == 150 {
                "durability"
            } else {
                "agreement"
            };
            s.add(&result(seed, Outcome::Correctness, Some(invariant)));
        }
        s.add(&result(500, Outcome::Liveness, None));
        let listed = s.listed();
        let total: usize = listed.iter().map(|(_, l)| l.len()).sum();
        assert_eq!(total, LISTED_MAX);
        let names: Vec<&str> = listed.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["agreement", "durability", "liveness"]);
        let agreement: Vec<u64> = listed[0].1.iter().map(|f| f.seed).collect();
        assert_eq!(agreement, (0..LISTED_MAX as u64 - 2).collect::<Vec<_>>());
        assert_eq!(listed[1].1[0].seed, 150);
        let text = s.human();
        assert!(text.contains("... 181 more"), "{text}");
        assert!(text.contains("20 of 201 failing seeds listed"), "{text}");
        assert_eq!(s.to_json()["failures_not_listed"], 181);
    }
}
