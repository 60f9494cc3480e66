//! The linearizability checker against the definition, checked by brute force
//! on many small random histories: every order of the operations that real
//! time allows is tried (on the whole history, keys together), so no pruning,
//! splitting, refutation or dropping of operations inside the checker may ever
//! change a verdict. Deterministic: the histories come from a seeded generator.

use std::collections::HashSet;

use simulator::checker::linearizability::{check_kv, check_kv_jobs, Budget, Verdict};
use simulator::checker::model::{KvModel, Model};
use simulator::history::{Op, Operation, Output};

/// SplitMix64: a deterministic stream of small numbers.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Is there an order of every completed operation, and of any subset of the
/// pending ones, that real time allows (nothing placed after an operation that
/// returned before it was called) and the model accepts, key by key? The answer
/// from a point depends only on the set placed and the state, so it is memoized
/// on that pair (a set that failed once fails again): exhaustive all the same.
fn brute_force(ops: &[Operation]) -> bool {
    let keys: Vec<&str> = {
        let mut keys: Vec<&str> = ops.iter().map(|op| op.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let key_of: Vec<usize> = ops
        .iter()
        .map(|op| keys.iter().position(|k| *k == op.key).unwrap())
        .collect();
    let mut failed = HashSet::new();
    let state = vec![KvModel.init(); keys.len()];
    search(ops, &key_of, 0, &state, &mut failed)
}

fn search(
    ops: &[Operation],
    key_of: &[usize],
    placed: u32,
    state: &[Option<String>],
    failed: &mut HashSet<(u32, Vec<Option<String>>)>,
) -> bool {
    let open = |i: usize| placed & (1 << i) == 0;
    if (0..ops.len()).all(|i| !open(i) || !ops[i].is_completed()) {
        return true;
    }
    if failed.contains(&(placed, state.to_vec())) {
        return false;
    }
    for i in (0..ops.len()).filter(|&i| open(i)) {
        let blocked = (0..ops.len())
            .filter(|&j| open(j))
            .any(|j| ops[j].ret.is_some_and(|ret| ret < ops[i].call));
        if blocked {
            continue;
        }
        let key = key_of[i];
        let Some(next) = KvModel.step(&state[key], &ops[i].op, &ops[i].output) else {
            continue;
        };
        let mut after = state.to_vec();
        after[key] = next;
        if search(ops, key_of, placed | (1 << i), &after, failed) {
            return true;
        }
    }
    failed.insert((placed, state.to_vec()));
    false
}

/// Values short enough to collide: "" (the empty write), and two letters whose
/// appends build "ab", "ba", "aa", ...
const VALUES: [&str; 3] = ["a", "b", ""];
const READS: [Option<&str>; 7] = [
    None,
    Some("a"),
    Some("b"),
    Some(""),
    Some("ab"),
    Some("ba"),
    Some("aab"),
];

fn random_input(rng: &mut Rng) -> Op {
    let value = |rng: &mut Rng| rng.pick(&VALUES).to_string();
    match rng.below(10) {
        0..=2 => Op::Get,
        3..=4 => Op::Put { value: value(rng) },
        5..=6 => Op::Append { value: value(rng) },
        _ => Op::Cas {
            expected: value(rng),
            value: value(rng),
        },
    }
}

/// The values histories draw from: short colliding ones (`VALUES`, `READS`),
/// or, as the simulator's workload writes, a value of its own per write.
#[derive(Clone, Copy, PartialEq)]
enum Values {
    Colliding,
    Unique,
}

/// In a history of unique values, write `index` writes this.
fn unique_value(index: usize) -> String {
    char::from(b'c' + index as u8).to_string()
}

/// A value a read may show: one written, two of them appended, or absent.
fn read_value(rng: &mut Rng, values: Values, count: usize) -> Option<String> {
    match values {
        Values::Colliding => rng.pick(&READS).map(str::to_string),
        Values::Unique => match rng.below(4) {
            0 => None,
            1 => Some(unique_value(rng.below(count as u64 + 1) as usize)),
            _ => Some(
                unique_value(rng.below(count as u64 + 1) as usize)
                    + &unique_value(rng.below(count as u64 + 1) as usize),
            ),
        },
    }
}

fn random_output(rng: &mut Rng, op: &Op, values: Values, count: usize) -> Output {
    match op {
        Op::Get => Output::Value(read_value(rng, values, count)),
        Op::Put { .. } | Op::Append { .. } => Output::Empty,
        Op::Cas { .. } => Output::Swapped(rng.chance(1, 2)),
    }
}

/// What the operation tells its client in `state`.
fn observe(state: &Option<String>, op: &Op) -> Output {
    match op {
        Op::Get => Output::Value(state.clone()),
        Op::Put { .. } | Op::Append { .. } => Output::Empty,
        Op::Cas { expected, .. } => Output::Swapped(state.as_deref() == Some(expected.as_str())),
    }
}

/// A history of at most `max_ops` operations over one or two keys. Half are
/// executed for real (each takes effect at a point inside its interval, so the
/// outputs are the truth), then perhaps perturbed once; the rest have random
/// outputs. Some operations get no reply: they took effect, or never did.
fn history(rng: &mut Rng, max_ops: u64, values: Values) -> Vec<Operation> {
    let count = rng.below(max_ops + 1) as usize;
    let keys = 1 + rng.below(2);
    let executed = rng.chance(1, 2);
    let span = 4 + rng.below(16);
    // Out of 12: from a few pending operations to half of them.
    let pending_in_12 = *rng.pick(&[1, 3, 6]);
    struct Plan {
        key: u64,
        op: Op,
        call: u64,
        point: u64,
        ret: Option<u64>,
        took_effect: bool,
    }
    let mut plans: Vec<Plan> = (0..count)
        .map(|_| {
            let call = rng.below(span);
            let point = call + rng.below(4);
            let ret = point + rng.below(4);
            let pending = rng.chance(pending_in_12, 12);
            Plan {
                key: rng.below(keys),
                op: random_input(rng),
                call,
                point,
                ret: (!pending).then_some(ret),
                took_effect: !pending || rng.chance(1, 2),
            }
        })
        .collect();
    if values == Values::Unique {
        for (index, plan) in plans.iter_mut().enumerate() {
            let expected_now = rng.below(count as u64 + 2) as usize;
            match &mut plan.op {
                Op::Put { value } | Op::Append { value } => *value = unique_value(index),
                Op::Cas { expected, value } => {
                    *value = unique_value(index);
                    *expected = if expected_now > count {
                        String::new()
                    } else {
                        unique_value(expected_now)
                    };
                }
                Op::Get => {}
            }
        }
    }
    plans.sort_by_key(|plan| plan.point);
    let mut states = vec![KvModel.init(); keys as usize];
    let mut ops: Vec<Operation> = plans
        .into_iter()
        .enumerate()
        .map(|(i, plan)| {
            let state = &mut states[plan.key as usize];
            let truth = observe(state, &plan.op);
            if plan.took_effect {
                *state = KvModel.step(state, &plan.op, &truth).unwrap();
            }
            let output = match (executed, plan.ret.is_some()) {
                (true, true) => truth,
                (false, true) => random_output(rng, &plan.op, values, count),
                // A pending cas sometimes keeps an output: the one it would
                // have had, or any.
                (_, false) => match plan.op {
                    Op::Cas { .. } if plan.took_effect && rng.chance(1, 3) => truth,
                    Op::Cas { .. } if rng.chance(1, 4) => {
                        random_output(rng, &plan.op, values, count)
                    }
                    _ => Output::Unknown,
                },
            };
            Operation {
                client: i as u64,
                key: format!("k{}", plan.key),
                op: plan.op,
                output,
                call: plan.call,
                ret: plan.ret,
            }
        })
        .collect();
    if executed && !ops.is_empty() && rng.chance(1, 2) {
        perturb(rng, &mut ops, values);
    }
    // The order of lines must not matter either.
    for i in (1..ops.len()).rev() {
        ops.swap(i, rng.below(i as u64 + 1) as usize);
    }
    ops
}

/// One small lie: a different read, a flipped cas, or a shifted interval.
fn perturb(rng: &mut Rng, ops: &mut [Operation], values: Values) {
    let count = ops.len();
    let index = rng.below(ops.len() as u64) as usize;
    let op = &mut ops[index];
    match (&op.output, rng.below(3)) {
        (Output::Value(_), 0 | 1) => op.output = Output::Value(read_value(rng, values, count)),
        (Output::Swapped(swapped), 0 | 1) => op.output = Output::Swapped(!swapped),
        _ => {
            let shift = 1 + rng.below(6);
            let later = rng.chance(1, 2);
            let moved = |t: u64| {
                if later {
                    t + shift
                } else {
                    t.saturating_sub(shift)
                }
            };
            op.call = moved(op.call);
            op.ret = op.ret.map(|ret| moved(ret).max(op.call));
        }
    }
}

fn check_many(seed: u64, cases: usize, max_ops: u64) -> [usize; 2] {
    check_many_of(seed, cases, max_ops, Values::Colliding)
}

fn check_many_of(seed: u64, cases: usize, max_ops: u64, values: Values) -> [usize; 2] {
    let mut rng = Rng(seed);
    let mut verdicts = [0; 2];
    for case in 0..cases {
        let ops = history(&mut rng, max_ops, values);
        let expected = brute_force(&ops);
        let result = check_kv(&ops, Budget::default());
        let expected_verdict = match expected {
            true => Verdict::Linearizable,
            false => Verdict::NotLinearizable,
        };
        if result.verdict != expected_verdict {
            let lines: Vec<String> = ops.iter().map(Operation::to_json_line).collect();
            panic!(
                "case {case} of seed {seed}: expected {expected_verdict}, got {result}\n{}",
                lines.join("\n")
            );
        }
        // On threads, the same result (but for the memory peak, see `check_operations_jobs`).
        if case % 64 == 0 {
            let jobs = check_kv_jobs(&ops, Budget::default(), 2);
            assert_eq!(
                (&jobs.keys, &jobs.explanation, jobs.budget_exhausted),
                (&result.keys, &result.explanation, result.budget_exhausted),
                "case {case} of seed {seed}: with --jobs 2"
            );
        }
        verdicts[usize::from(expected)] += 1;
    }
    verdicts
}

#[test]
fn same_verdict_as_brute_force_on_small_histories() {
    let [bad, good] = check_many(1, 300_000, 7);
    // Both verdicts are well represented, or the test would prove little.
    assert!(bad > 60_000 && good > 60_000, "{bad} bad, {good} good");
}

#[test]
fn same_verdict_as_brute_force_on_larger_histories() {
    let [bad, good] = check_many(2, 20_000, 11);
    assert!(bad > 4_000 && good > 4_000, "{bad} bad, {good} good");
}

/// Unique values, as the simulator's workload writes them: what
/// `Model::deadlines` needs (a pending write a read shows, that nothing else
/// could have made, must come before the read), and what `tried_last` orders
/// by (a pending write nobody saw). Many histories here have such writes
/// (counted by the same rule, from outside the checker).
#[test]
fn same_verdict_as_brute_force_with_unique_values() {
    let [bad, good] = check_many_of(3, 200_000, 9, Values::Unique);
    assert!(bad > 40_000 && good > 40_000, "{bad} bad, {good} good");
    let mut rng = Rng(3);
    let shown = (0..20_000)
        .filter(|_| shows_a_pending_write(&history(&mut rng, 9, Values::Unique)))
        .count();
    assert!(shown > 1_000, "{shown} of 20,000 show a pending write");
}

/// Does a completed read (a get, or a cas told it swapped) show the value of
/// a pending write that no other operation writes?
fn shows_a_pending_write(ops: &[Operation]) -> bool {
    let written = |op: &Operation| match &op.op {
        Op::Put { value } | Op::Append { value } | Op::Cas { value, .. } => Some(value.clone()),
        Op::Get => None,
    };
    ops.iter().filter(|op| !op.is_completed()).any(|pending| {
        let Some(value) = written(pending) else {
            return false;
        };
        let sole = ops
            .iter()
            .filter(|op| written(op) == Some(value.clone()))
            .count()
            == 1;
        sole && ops.iter().any(|read| {
            let shown = match (&read.op, &read.output) {
                (Op::Get, Output::Value(Some(v))) => v,
                (Op::Cas { expected, .. }, Output::Swapped(true)) => expected,
                _ => return false,
            };
            read.key == pending.key && read.is_completed() && shown.contains(value.as_str())
        })
    })
}

/// `only_before` with the placeability condition (`search.rs`): an unseen pending write is
/// placed only right before a failed cas that needs it, and only once that cas can come
/// next. Here the cas is called after a get returns, so the pending put must wait for the
/// get; a later get decides whether the put can have happened at all.
#[test]
fn a_pending_write_a_failed_cas_needs_waits_until_the_cas_can_come_next() {
    let line = |client, op: &str, rest: &str, call, ret: Option<u64>| {
        let ret = ret.map_or("null".to_string(), |r| r.to_string());
        format!(
            r#"{{"client":{client},"op":"{op}","key":"k",{rest},"call":{call},"return":{ret}}}"#
        )
    };
    let base = [
        line(1, "put", r#""value":"a""#, 0, Some(2)),
        line(2, "put", r#""value":"b""#, 1, None),
        line(3, "get", r#""output":"a""#, 3, Some(4)),
        line(
            4,
            "cas",
            r#""expected":"a","value":"c","output":false"#,
            5,
            Some(6),
        ),
    ];
    let check = |lines: &[String]| {
        let ops = simulator::history::parse_history(&lines.join("\n")).unwrap();
        let verdict = check_kv(&ops, Budget::default()).verdict;
        (verdict, brute_force(&ops))
    };
    // put a, get a, put b, cas fails: linearizable.
    assert_eq!(check(&base), (Verdict::Linearizable, true));
    // A get of "a" after the cas: the put of "b" must precede the cas, and nothing brings
    // "a" back.
    let mut later = base.to_vec();
    later.push(line(5, "get", r#""output":"a""#, 7, Some(8)));
    assert_eq!(check(&later), (Verdict::NotLinearizable, false));
}
