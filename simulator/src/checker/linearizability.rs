//! Black-box linearizability of a client history (no access to the replicas' log).
//!
//! The history is split into independent partitions by the model (per key for
//! the KV store), and each partition is searched for a linearization with the
//! Wing–Gong–Lowe algorithm and Lowe's memo cache, as Porcupine does, one
//! segment of time at a time where the history has quiescent points (see
//! `segments`), so that long histories stay cheap. The search is exponential
//! in the worst case, so it runs on a [`Budget`] of steps and memory and may
//! answer [`Verdict::Unknown`] (never grow past the budget). Results are deterministic: partitions are checked in
//! the model's fixed order and no hash-map order reaches the output. With
//! [`check_operations_jobs`], the partitions' turns run on threads and are
//! settled in that same order, so the result is the same as on one thread.

mod bitset;
mod budget;
mod cache;
mod entries;
mod report;
mod search;
mod segments;
mod supply;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bitset::Bitset;
pub use budget::{Budget, Limit};
pub use report::Explanation;

use crate::checker::model::{Anomaly, KvModel, Model, Partition};
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

/// Steps a partition's search takes before `Model::refute_late` is tried on
/// it (once): a fraction of a second of searching.
pub const LATE_REFUTATION_STEPS: u64 = 1 << 18;

/// Checks `ops` against `model`, partition by partition, within `budget`.
///
/// The partitions take turns, each searching for a slice of steps per round,
/// and the check stops at the first violation: a violation is often quick to
/// find while proving another key linearizable can take long, and the turns
/// keep the order of the result fixed (unlike racing threads).
pub fn check_operations<M: Model>(model: &M, ops: &[Operation], budget: Budget) -> CheckResult {
    with_deadlines_searched(model, ops, |searched, partitions| {
        check_searched(model, ops, searched, partitions, budget)
    })
}

/// `check_operations` searching `searched`: `ops` with deadlines as returns.
fn check_searched<M: Model>(
    model: &M,
    ops: &[Operation],
    searched: &[Operation],
    partitions: &[Partition],
    budget: Budget,
) -> CheckResult {
    let (mut searches, mut keys) = match prepare(model, ops, searched, partitions) {
        Ok(prepared) => prepared,
        Err(refuted) => {
            let (keys, explanation) = *refuted;
            return finish(keys, Some(explanation), 0, None);
        }
    };
    let mut meter = budget::Meter::new(budget);
    let mut slice = FIRST_SLICE_STEPS;
    while keys.iter().any(KeyResult::is_undecided) {
        for index in 0..keys.len() {
            if !keys[index].is_undecided() {
                continue;
            }
            let search = &mut searches[index];
            let outcome = take_turn(search, &mut keys[index], &mut meter, slice);
            if let Turn::Stop(explanation) =
                settle(model, budget, search, &mut keys[index], outcome, &mut meter)
            {
                return finish(keys, explanation, meter.memory_peak(), meter.exhausted());
            }
        }
        slice = slice.saturating_mul(2);
    }
    finish(keys, None, meter.memory_peak(), meter.exhausted())
}

/// [`check_operations`] with the partitions' turns of each round taken on up
/// to `jobs` threads. The turns of a round are independent, and what they
/// found is settled afterwards in the partitions' order, exactly as
/// `check_operations` settles it, steps included (a turn that took more steps
/// than were left after the turns before it stops the check there, as it
/// would have): so the result is the same as with one thread, except when the
/// memory budget or the deadline runs out. The threads' meters share the
/// memory budget through one counter, so which turn runs out first then
/// depends on timing; and the memory peak reported is the sum of each
/// partition's own peak per round, an upper bound of what was held at once
/// that does not depend on timing.
pub fn check_operations_jobs<M>(
    model: &M,
    ops: &[Operation],
    budget: Budget,
    jobs: usize,
) -> CheckResult
where
    M: Model + Sync,
    M::State: Send,
{
    if jobs <= 1 {
        return check_operations(model, ops, budget);
    }
    with_deadlines_searched(model, ops, |searched, partitions| {
        check_searched_on(model, ops, searched, partitions, budget, jobs)
    })
}

/// Runs `check` on the history with deadlines as returns (`with_deadlines`)
/// and the model's partitions of it, and shows those operations pending again
/// in its result.
fn with_deadlines_searched<M: Model>(
    model: &M,
    ops: &[Operation],
    check: impl FnOnce(&[Operation], &[Partition]) -> CheckResult,
) -> CheckResult {
    let partitions = model.partition(ops);
    let searched = with_deadlines(model, ops, &partitions);
    let result = check(searched.as_deref().unwrap_or(ops), &partitions);
    restore_pending(result, ops, searched.as_deref())
}

/// `check_operations_jobs` searching `searched`: `ops` with deadlines as
/// returns.
fn check_searched_on<M>(
    model: &M,
    ops: &[Operation],
    searched: &[Operation],
    partitions: &[Partition],
    budget: Budget,
    jobs: usize,
) -> CheckResult
where
    M: Model + Sync,
    M::State: Send,
{
    let (searches, mut keys) = match prepare_on(model, ops, searched, partitions, jobs) {
        Ok(prepared) => prepared,
        Err(refuted) => {
            let (keys, explanation) = *refuted;
            return finish(keys, Some(explanation), 0, None);
        }
    };
    let total = Arc::new(AtomicU64::new(0));
    let mut slots: Vec<Slot<M>> = searches
        .into_iter()
        .map(|search| Slot {
            search,
            meter: budget::Meter::sharing(budget, total.clone()),
            outcome: None,
            used: 0,
        })
        .collect();
    let mut spent = 0u64;
    let mut peak = 0u64;
    let mut slice = FIRST_SLICE_STEPS;
    while keys.iter().any(KeyResult::is_undecided) {
        let remaining = budget.steps.saturating_sub(spent);
        let turns: Vec<usize> = (0..keys.len())
            .filter(|&index| keys[index].is_undecided())
            .collect();
        let work: Vec<&mut Slot<M>> = slots
            .iter_mut()
            .zip(&keys)
            .filter(|(_, key)| key.is_undecided())
            .map(|(slot, _)| slot)
            .collect();
        let queue = Mutex::new(work.into_iter());
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(turns.len()) {
                scope.spawn(|| loop {
                    let Some(slot) = queue.lock().expect("no turn panics").next() else {
                        break;
                    };
                    slot.take_turn(remaining, slice);
                });
            }
        });
        let round_peak =
            |slots: &[Slot<M>]| slots.iter().map(|slot| slot.meter.memory_peak()).sum();
        peak = peak.max(round_peak(&slots));
        let mut allowance = remaining;
        for index in turns {
            let slot = &mut slots[index];
            let key = &mut keys[index];
            if slot.used > allowance {
                key.steps += allowance;
                return finish(keys, None, peak, Some(Limit::Steps));
            }
            allowance -= slot.used;
            spent += slot.used;
            key.steps += slot.used;
            let outcome = slot.outcome.take();
            key.verdict = verdict_of(&outcome);
            if let Turn::Stop(explanation) = settle(
                model,
                budget,
                &mut slot.search,
                key,
                outcome,
                &mut slot.meter,
            ) {
                let exhausted = slot.meter.exhausted();
                let peak = peak.max(round_peak(&slots));
                return finish(keys, explanation, peak, exhausted);
            }
        }
        peak = peak.max(round_peak(&slots));
        for slot in &mut slots {
            slot.meter.reset_peak();
        }
        slice = slice.saturating_mul(2);
    }
    finish(keys, None, peak, None)
}

/// One partition's search on a thread of [`check_operations_jobs`], with its
/// meter and what its last turn found.
struct Slot<'a, M: Model> {
    search: KeySearch<'a, M>,
    meter: budget::Meter,
    outcome: Option<Outcome>,
    /// Steps the last turn took.
    used: u64,
}

impl<M: Model> Slot<'_, M> {
    /// Searches for `slice` steps, or `remaining` if fewer (the budget's steps
    /// left for the whole round: the round's settling checks the sum).
    fn take_turn(&mut self, remaining: u64, slice: u64) {
        self.meter.allow_steps(remaining);
        let before = self.meter.used;
        self.outcome = self.search.run(&mut self.meter, slice);
        self.used = self.meter.used - before;
        if let Some(Outcome::Linearizable) = self.outcome {
            // What `settle` would do, on this thread (it frees nothing twice).
            self.search.free(&mut self.meter);
        }
    }
}

/// What `prepare` gives: the partitions' searches and their results so far,
/// or, when an anomaly refutes one without a search, the result with its
/// explanation.
type Prepared<'a, M> =
    Result<(Vec<KeySearch<'a, M>>, Vec<KeyResult>), Box<(Vec<KeyResult>, Explanation)>>;

/// The history with each pending operation that `Model::deadlines` gives a
/// deadline returning then (see there): it has the same linearizations, and
/// searches faster. `None` when no operation has one.
fn with_deadlines<M: Model>(
    model: &M,
    ops: &[Operation],
    partitions: &[Partition],
) -> Option<Vec<Operation>> {
    let mut returns: Vec<(usize, u64)> = Vec::new();
    for partition in partitions {
        let part: Vec<&Operation> = partition.ops.iter().map(|&i| &ops[i]).collect();
        for (&index, deadline) in partition.ops.iter().zip(model.deadlines(&part)) {
            if let Some(deadline) = deadline {
                assert!(
                    ops[index].ret.is_none() && deadline >= ops[index].call,
                    "a deadline is for a pending operation, after its call"
                );
                returns.push((index, deadline));
            }
        }
    }
    if returns.is_empty() {
        return None;
    }
    let mut searched = ops.to_vec();
    for (index, deadline) in returns {
        searched[index].ret = Some(deadline);
    }
    Some(searched)
}

/// The result's evidence shows the operations given a deadline
/// (`with_deadlines`) as they are in the history: pending.
fn restore_pending(
    mut result: CheckResult,
    ops: &[Operation],
    searched: Option<&[Operation]>,
) -> CheckResult {
    let (Some(searched), Some(explanation)) = (searched, result.explanation.as_mut()) else {
        return result;
    };
    let given: Vec<&Operation> = ops
        .iter()
        .zip(searched)
        .filter(|(op, searched)| op.ret != searched.ret)
        .map(|(_, searched)| searched)
        .collect();
    let anomaly = explanation
        .anomaly
        .iter_mut()
        .flat_map(|a| a.ops.iter_mut());
    let evidence = explanation
        .longest_prefix
        .iter_mut()
        .chain(explanation.cannot_place.iter_mut())
        .chain(explanation.would_strand.iter_mut())
        .chain(anomaly);
    for op in evidence {
        if given.contains(&&*op) {
            op.ret = None;
        }
    }
    // What could not go next are the completed operations among those due
    // (the one returning first is, or the read that gave its deadline).
    explanation.cannot_place.retain(Operation::is_completed);
    result
}

/// The partitions' searches over `searched` (the history, with deadlines as
/// returns) unless, first, a refutation that needs no search decides, on `ops`
/// (the history as recorded, so that what it says of returns is true of it).
fn prepare<'a, M: Model>(
    model: &'a M,
    ops: &[Operation],
    searched: &'a [Operation],
    partitions: &[Partition],
) -> Prepared<'a, M> {
    // Anomalies that need no search decide at once, in the partitions' order.
    let anomalies = partitions
        .iter()
        .map(|partition| refute(model, ops, partition));
    refuted(model, searched, partitions, anomalies)?;
    let searches = partitions
        .iter()
        .map(|partition| KeySearch::new(model, searched_ops(model, searched, &partition.ops), true))
        .collect();
    Ok(undecided(partitions, searches))
}

/// `prepare` with the refutations tried, then the partitions' searches made,
/// on up to `jobs` threads (the same result).
fn prepare_on<'a, M>(
    model: &'a M,
    ops: &[Operation],
    searched: &'a [Operation],
    partitions: &[Partition],
    jobs: usize,
) -> Prepared<'a, M>
where
    M: Model + Sync,
    M::State: Send,
{
    let anomalies = parallel_map(jobs, partitions, |partition| refute(model, ops, partition));
    refuted(model, searched, partitions, anomalies)?;
    let searches = parallel_map(jobs, partitions, |partition| {
        KeySearch::new(model, searched_ops(model, searched, &partition.ops), true)
    });
    Ok(undecided(partitions, searches))
}

fn refute<M: Model>(model: &M, ops: &[Operation], partition: &Partition) -> Option<Anomaly> {
    let all: Vec<&Operation> = partition.ops.iter().map(|&i| &ops[i]).collect();
    model.refute(&all)
}

/// The first partition (in order) with an anomaly decides: the result, as
/// `Err`, with no search made.
fn refuted<M: Model>(
    model: &M,
    searched: &[Operation],
    partitions: &[Partition],
    anomalies: impl IntoIterator<Item = Option<Anomaly>>,
) -> Result<(), Box<(Vec<KeyResult>, Explanation)>> {
    let Some((index, anomaly)) = anomalies
        .into_iter()
        .enumerate()
        .find_map(|(index, anomaly)| Some((index, anomaly?)))
    else {
        return Ok(());
    };
    let mut keys: Vec<KeyResult> = partitions
        .iter()
        .map(|partition| {
            let ops = searched_ops(model, searched, &partition.ops).len();
            KeyResult::undecided(partition.label.clone(), ops)
        })
        .collect();
    keys[index].verdict = Verdict::NotLinearizable;
    let explanation = Explanation::anomaly(partitions[index].label.clone(), anomaly);
    Err(Box::new((keys, explanation)))
}

/// Every partition undecided, with its search.
fn undecided<'a, M: Model>(
    partitions: &[Partition],
    searches: Vec<KeySearch<'a, M>>,
) -> (Vec<KeySearch<'a, M>>, Vec<KeyResult>) {
    let keys = partitions
        .iter()
        .zip(&searches)
        .map(|(partition, search)| {
            KeyResult::undecided(partition.label.clone(), search.ops().len())
        })
        .collect();
    (searches, keys)
}

/// `items.iter().map(f)` on up to `jobs` threads, in the items' order.
fn parallel_map<T: Sync, R: Send>(jobs: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(items.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                let result = f(item);
                *results[index].lock().expect("no worker panics") = Some(result);
            });
        }
    });
    results
        .into_iter()
        .map(|result| {
            let result = result.into_inner().expect("no worker panics");
            result.expect("every item was mapped")
        })
        .collect()
}

enum Turn {
    Continue,
    /// The check ends here: at a violation (explained), or out of budget.
    Stop(Option<Explanation>),
}

/// Acts on what a partition's turn found (its verdict already recorded).
fn settle<M: Model>(
    model: &M,
    budget: Budget,
    search: &mut KeySearch<M>,
    key: &mut KeyResult,
    outcome: Option<Outcome>,
    meter: &mut budget::Meter,
) -> Turn {
    match outcome {
        None => match late_refutation(model, search, key) {
            Some(explanation) => Turn::Stop(Some(explanation)),
            None => Turn::Continue,
        },
        // Decided: what it held is free for the other keys.
        Some(Outcome::Linearizable) => {
            search.free(meter);
            Turn::Continue
        }
        Some(Outcome::OutOfBudget) => Turn::Stop(None),
        Some(Outcome::Ended) => unreachable!("only segments enumerate ends"),
        Some(Outcome::NotLinearizable { prefix }) => {
            search.free(meter);
            // After a long search, an anomaly explains (and proves) the
            // violation at once, where the plain search confirming it would
            // take longer still.
            if let Some(explanation) = late_refutation(model, search, key) {
                return Turn::Stop(Some(explanation));
            }
            let ops = search.ops().to_vec();
            let prefix = match confirm(model, &ops, budget, meter) {
                Confirmed::Violation(plain) => plain.unwrap_or(prefix),
                Confirmed::Linearizable => {
                    key.verdict = Verdict::Linearizable;
                    return Turn::Continue;
                }
            };
            let explanation = report::explain(model, key.key.clone(), &ops, &prefix);
            Turn::Stop(Some(explanation))
        }
    }
}

/// Once a partition's search has taken `LATE_REFUTATION_STEPS` (undecided,
/// or having just found a violation): `Model::refute_late` on its searched
/// operations (whose verdict is the partition's, see `searched_ops`), tried
/// once; with an anomaly, the partition is not linearizable (recorded in
/// `key`).
fn late_refutation<M: Model>(
    model: &M,
    search: &mut KeySearch<M>,
    key: &mut KeyResult,
) -> Option<Explanation> {
    if key.steps < LATE_REFUTATION_STEPS || !search.try_late_refutation() {
        return None;
    }
    let anomaly = model.refute_late(search.ops())?;
    key.verdict = Verdict::NotLinearizable;
    Some(Explanation::anomaly(key.key.clone(), anomaly))
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
    key.verdict = verdict_of(&outcome);
    outcome
}

fn verdict_of(outcome: &Option<Outcome>) -> Verdict {
    match outcome {
        Some(Outcome::Linearizable) => Verdict::Linearizable,
        Some(Outcome::NotLinearizable { .. }) => Verdict::NotLinearizable,
        None | Some(Outcome::OutOfBudget | Outcome::Ended) => Verdict::Unknown,
    }
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
    memory_peak_bytes: u64,
    budget_exhausted: Option<Limit>,
) -> CheckResult {
    CheckResult {
        verdict: overall(&keys),
        keys,
        explanation,
        memory_peak_bytes,
        budget_exhausted,
    }
}

/// Checks a key-value history (DESIGN.md §6) against [`KvModel`].
pub fn check_kv(ops: &[Operation], budget: Budget) -> CheckResult {
    check_operations(&KvModel, ops, budget)
}

/// [`check_kv`] on up to `jobs` threads (see [`check_operations_jobs`]).
pub fn check_kv_jobs(ops: &[Operation], budget: Budget, jobs: usize) -> CheckResult {
    check_operations_jobs(&KvModel, ops, budget, jobs)
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
