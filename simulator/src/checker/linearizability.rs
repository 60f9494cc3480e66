//! Black-box linearizability of a client history (no access to the replicas' log).
//!
//! The history is split into independent partitions by the model (per key for
//! the KV store), and each partition is searched for a linearization with the
//! Wing–Gong–Lowe algorithm and Lowe's memo cache, as Porcupine does, one
//! segment of time at a time where the history has quiescent points (see
//! `segments`), so that long histories stay cheap. The search is exponential
//! in the worst case, so it runs on a [`Budget`] of steps and memory and may
//! answer [`Verdict::Unknown`] (never grow past the budget). Results are deterministic: partitions are checked in
//! the model's fixed order and no hash-map order reaches the output.

mod bitset;
mod budget;
mod cache;
mod entries;
mod report;
mod search;
mod segments;

use bitset::Bitset;
pub use budget::{Budget, Limit};
pub use report::Explanation;

use crate::checker::model::{KvModel, Model};
use crate::history::Operation;
use search::Outcome;
use segments::KeySearch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The budget ran out before the search decided (for a key: or the check
    /// stopped at another key's violation first).
    Unknown,
}

/// The outcome for one partition (one key of the KV store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyResult {
    pub key: String,
    /// Operations searched (those that can be left out, see `searched_ops`, are not).
    pub ops: usize,
    pub verdict: Verdict,
    /// Search steps spent on this key.
    pub steps: u64,
}

impl KeyResult {
    fn undecided(key: String, ops: usize) -> Self {
        KeyResult {
            key,
            ops,
            verdict: Verdict::Unknown,
            steps: 0,
        }
    }

    fn is_undecided(&self) -> bool {
        self.verdict == Verdict::Unknown
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub verdict: Verdict,
    /// One per partition, in the model's order. Checking stops at the first
    /// violation or when the budget runs out; keys left undecided say `Unknown`.
    pub keys: Vec<KeyResult>,
    /// Present when the verdict is `NotLinearizable`.
    pub explanation: Option<Explanation>,
    /// The most bytes the search held at once (as the budget counts them).
    pub memory_peak_bytes: u64,
    /// The limit of the budget the check reached, when it reached one.
    pub budget_exhausted: Option<Limit>,
}

/// The first slice of steps each partition gets; slices double every round.
const FIRST_SLICE_STEPS: u64 = 1024;

/// Checks `ops` against `model`, partition by partition, within `budget`.
///
/// The partitions take turns, each searching for a slice of steps per round,
/// and the check stops at the first violation: a violation is often quick to
/// find while proving another key linearizable can take long, and the turns
/// keep the order of the result fixed (unlike racing threads).
pub fn check_operations<M: Model>(model: &M, ops: &[Operation], budget: Budget) -> CheckResult {
    let partitions = model.partition(ops);
    let mut searches: Vec<KeySearch<M>> = partitions
        .iter()
        .map(|partition| KeySearch::new(model, searched_ops(model, ops, &partition.ops), true))
        .collect();
    let mut keys: Vec<KeyResult> = partitions
        .iter()
        .zip(&searches)
        .map(|(partition, search)| {
            KeyResult::undecided(partition.label.clone(), search.ops().len())
        })
        .collect();
    // Anomalies that need no search decide at once, in the partitions' order.
    for (index, partition) in partitions.iter().enumerate() {
        let all: Vec<&Operation> = partition.ops.iter().map(|&i| &ops[i]).collect();
        if let Some(anomaly) = model.refute(&all) {
            keys[index].verdict = Verdict::NotLinearizable;
            let explanation = Explanation::anomaly(partition.label.clone(), anomaly);
            return finish(keys, Some(explanation), &budget::Meter::new(budget));
        }
    }
    let mut meter = budget::Meter::new(budget);
    let mut slice = FIRST_SLICE_STEPS;
    while keys.iter().any(KeyResult::is_undecided) {
        for index in 0..keys.len() {
            if !keys[index].is_undecided() {
                continue;
            }
            let search = &mut searches[index];
            match take_turn(search, &mut keys[index], &mut meter, slice) {
                None => {}
                // Decided: what it held is free for the other keys.
                Some(Outcome::Linearizable) => search.free(&mut meter),
                Some(Outcome::OutOfBudget) => return finish(keys, None, &meter),
                Some(Outcome::Ended) => unreachable!("only segments enumerate ends"),
                Some(Outcome::NotLinearizable { prefix }) => {
                    search.free(&mut meter);
                    let ops = search.ops().to_vec();
                    let prefix = match confirm(model, &ops, budget, &mut meter) {
                        Confirmed::Violation(plain) => plain.unwrap_or(prefix),
                        Confirmed::Linearizable => {
                            keys[index].verdict = Verdict::Linearizable;
                            continue;
                        }
                    };
                    let key = keys[index].key.clone();
                    let explanation = report::explain(model, key, &ops, &prefix);
                    return finish(keys, Some(explanation), &meter);
                }
            }
        }
        slice = slice.saturating_mul(2);
    }
    finish(keys, None, &meter)
}

enum Confirmed {
    /// With the longest prefix the plain search found; `None` when it ran out
    /// of budget (the lookahead's verdict stands, with its own prefix).
    Violation(Option<Vec<usize>>),
    /// The plain search found a linearization: the lookahead was wrong.
    Linearizable,
}

/// Searches a partition the lookahead found not linearizable again without
/// it, on a budget of its own. For the explanation first: the lookahead prunes
/// placements the model accepts, so the operations due after its longest
/// prefix need not all contradict the state, which the report promises; the
/// plain search's prefix keeps that promise. And as a check of the lookahead,
/// whose only possible error is this one.
fn confirm<M: Model>(
    model: &M,
    ops: &[&Operation],
    budget: Budget,
    meter: &mut budget::Meter,
) -> Confirmed {
    let mut plain = KeySearch::new(model, ops.to_vec(), false);
    let mut own = budget::Meter::new(budget);
    let outcome = plain.run(&mut own, u64::MAX);
    plain.free(&mut own);
    meter.note_peak(own.memory_peak());
    match outcome {
        Some(Outcome::NotLinearizable { prefix }) => Confirmed::Violation(Some(prefix)),
        Some(Outcome::Linearizable) => {
            debug_assert!(false, "the lookahead refuted a linearizable partition");
            Confirmed::Linearizable
        }
        _ => Confirmed::Violation(None),
    }
}

/// Lets one partition search for `slice` steps and records what it decided.
fn take_turn<M: Model>(
    search: &mut KeySearch<M>,
    key: &mut KeyResult,
    meter: &mut budget::Meter,
    slice: u64,
) -> Option<Outcome> {
    let steps_before = meter.used;
    let outcome = search.run(meter, slice);
    key.steps += meter.used - steps_before;
    key.verdict = match outcome {
        Some(Outcome::Linearizable) => Verdict::Linearizable,
        Some(Outcome::NotLinearizable { .. }) => Verdict::NotLinearizable,
        None | Some(Outcome::OutOfBudget | Outcome::Ended) => Verdict::Unknown,
    };
    outcome
}

/// The operations of one partition worth searching: pending operations that
/// cannot change the state constrain nothing (they may be left out), so drop
/// them, and those the model says can be left out (`Model::needless_pending`,
/// `Model::inert`).
fn searched_ops<'a, M: Model>(
    model: &M,
    ops: &'a [Operation],
    indices: &[usize],
) -> Vec<&'a Operation> {
    let kept: Vec<&Operation> = indices
        .iter()
        .map(|&index| &ops[index])
        .filter(|op| op.is_completed() || !model.is_read_only(&op.op))
        .collect();
    let needless = model.needless_pending(&kept);
    let inert = model.inert(&kept);
    kept.into_iter()
        .zip(needless.into_iter().zip(inert))
        .filter(|(op, (needless, inert))| !inert && (op.is_completed() || !needless))
        .map(|(op, _)| op)
        .collect()
}

fn finish(
    keys: Vec<KeyResult>,
    explanation: Option<Explanation>,
    meter: &budget::Meter,
) -> CheckResult {
    CheckResult {
        verdict: overall(&keys),
        keys,
        explanation,
        memory_peak_bytes: meter.memory_peak(),
        budget_exhausted: meter.exhausted(),
    }
}

/// Checks a key-value history (DESIGN.md §6) against [`KvModel`].
pub fn check_kv(ops: &[Operation], budget: Budget) -> CheckResult {
    check_operations(&KvModel, ops, budget)
}

/// A violation anywhere decides; otherwise any undecided key leaves it unknown.
fn overall(keys: &[KeyResult]) -> Verdict {
    let any = |verdict| keys.iter().any(|key| key.verdict == verdict);
    if any(Verdict::NotLinearizable) {
        Verdict::NotLinearizable
    } else if any(Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    }
}
