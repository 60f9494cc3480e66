//! Linearizable histories of any shape, for benchmarks and tests: clients issue operations on
//! a few keys, each taking effect at a random moment between its call and its return, and the
//! outputs are what the key-value store gives in that order. Deterministic: a seed gives the
//! same history on every platform.

use super::{Op, Operation, Output};
use std::collections::{BTreeMap, BTreeSet};

/// A history of `ops` operations over `keys` keys by `clients` clients, from `seed`. Every
/// operation takes 1..=40 ticks and starts 0..=4 ticks after its client's previous one
/// returned; 40% are gets, 20% puts, 20% appends, 20% cas (half of them expecting the value
/// the key holds when they take effect). Values are unique.
pub fn linearizable(ops: usize, keys: usize, clients: usize, seed: u64) -> Vec<Operation> {
    shaped(ops, keys, clients, seed, Shape::default())
}

/// How a [`shaped`] history differs from a [`linearizable`] one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Writes draw their values from this many (`"0"`, `"1"`, ...), so that values collide
    /// and appends build values with several readings, as in many Jepsen and Porcupine
    /// histories; `None`: every value is unique.
    pub values: Option<u64>,
    /// Operations in a hundred that get no reply (pending); half of them took effect. The
    /// client moves on when the reply would have come.
    pub pending_in_100: u64,
    /// With `values`: a cas expects a value drawn like the written ones, and
    /// swaps when the guess is what the key holds, instead of half of them
    /// expecting exactly that. Pending guesses then may or may not have
    /// swapped, which is what makes colliding histories hard to search.
    pub guessing_cas: bool,
}

/// [`linearizable`] with the values and the pending operations of `shape`. The default shape
/// gives exactly `linearizable`'s history: the shape's own draws come from a second stream.
pub fn shaped(ops: usize, keys: usize, clients: usize, seed: u64, shape: Shape) -> Vec<Operation> {
    let mut rng = SplitMix(seed);
    let mut shape_rng = SplitMix(seed ^ 0x5348_4150_4544_0001);
    let clients = clients.max(1);
    let keys = keys.max(1);
    let mut free = vec![0u64; clients];
    let mut drafts = Vec::with_capacity(ops);
    for index in 0..ops {
        let client = rng.below(clients as u64) as usize;
        let call = free[client] + rng.below(5);
        let ret = call + 1 + rng.below(40);
        let effect = call + rng.below(ret - call + 1);
        free[client] = ret + 1;
        let key = format!("k{}", rng.below(keys as u64));
        let value = match shape.values {
            Some(count) => shape_rng.below(count.max(1)).to_string(),
            None => format!("{client}.{index}"),
        };
        // Pending: no reply; took effect or not.
        let pending = shape.pending_in_100 > 0 && shape_rng.below(100) < shape.pending_in_100;
        let took_effect = !pending || shape_rng.below(2) == 0;
        let op = match rng.below(10) {
            0..=3 => Op::Get,
            4..=5 => Op::Put { value },
            6..=7 => Op::Append { value },
            _ => Op::Cas {
                expected: String::new(),
                value,
            },
        };
        let guess = match (shape.values, shape.guessing_cas) {
            (Some(count), true) => Some(shape_rng.below(count.max(1)).to_string()),
            _ => None,
        };
        let ret = (!pending).then_some(ret);
        drafts.push((
            effect,
            index,
            client,
            key,
            op,
            call,
            ret,
            took_effect,
            guess,
        ));
    }
    // Outputs in the order the operations took effect.
    drafts.sort_by_key(|draft| (draft.0, draft.1));
    let mut values = BTreeMap::<String, String>::new();
    let mut history = Vec::with_capacity(ops);
    for (_, index, client, key, mut op, call, ret, took_effect, guess) in drafts {
        let current = values.get(&key).cloned();
        let mut next = None;
        let output = match &mut op {
            Op::Get => Output::Value(current),
            Op::Put { value } => {
                next = Some(value.clone());
                Output::Empty
            }
            Op::Append { value } => {
                next = Some(current.unwrap_or_default() + value);
                Output::Empty
            }
            Op::Cas { expected, value } => {
                let swaps = match &guess {
                    Some(guess) => current.as_ref() == Some(guess),
                    None => index % 2 == 0 && current.is_some(),
                };
                *expected = match (guess, &current, swaps) {
                    (Some(guess), _, _) => guess,
                    (None, Some(current), true) => current.clone(),
                    _ => format!("never.{index}"),
                };
                if swaps {
                    next = Some(value.clone());
                }
                Output::Swapped(swaps)
            }
        };
        if let (Some(next), true) = (next, took_effect) {
            values.insert(key.clone(), next);
        }
        // A pending operation's output is unknown (its effect, if any, is in the state).
        let output = if ret.is_some() {
            output
        } else {
            Output::Unknown
        };
        let operation = Operation {
            client: client as u64,
            key,
            op,
            output,
            call,
            ret,
        };
        history.push((index, operation));
    }
    history.sort_by_key(|(index, _)| *index);
    history.into_iter().map(|(_, op)| op).collect()
}

/// `history` (from [`linearizable`]) with one lie in it: on every key, the first get past the
/// middle of the history that read a value is told instead what the key's first such get read.
/// That value is long gone by then (values are unique, so a key never holds one again after a
/// write replaced it), so no linearization explains the read, yet a value that was written once:
/// nothing short of a search refutes it. A key whose two reads saw the same value is left as it
/// was (then its lie would not be one).
pub fn with_stale_read(mut history: Vec<Operation>) -> Vec<Operation> {
    let middle = history.len() / 2;
    let mut first = BTreeMap::<String, Option<String>>::new();
    let mut lied = BTreeSet::<String>::new();
    for (index, op) in history.iter_mut().enumerate() {
        let Output::Value(Some(read)) = &op.output else {
            continue;
        };
        match first.get(&op.key) {
            None => {
                first.insert(op.key.clone(), Some(read.clone()));
            }
            Some(stale) if index >= middle && !lied.contains(&op.key) => {
                if stale.as_ref() != Some(read) {
                    lied.insert(op.key.clone());
                    op.output = Output::Value(stale.clone());
                }
            }
            Some(_) => {}
        }
    }
    history
}

/// `history` (from [`linearizable`]) with a subtler lie, one that only a search refutes: on every
/// key, the first get past the middle of the history whose value ends with an append that
/// returned before the get was called is told the value without that append (what the key held
/// just before it). The append took effect before the get in every linearization, and the
/// value it extended is never held again (values are unique), so no linearization explains it;
/// yet the value was held once, and after the same put as the truth.
pub fn with_lost_append(mut history: Vec<Operation>) -> Vec<Operation> {
    let middle = history.len() / 2;
    // Per key, each append's value with the tick it returned.
    let mut appends = BTreeMap::<String, BTreeMap<String, u64>>::new();
    for op in &history {
        if let (Op::Append { value }, Some(ret)) = (&op.op, op.ret) {
            let key = appends.entry(op.key.clone()).or_default();
            key.insert(value.clone(), ret);
        }
    }
    let mut lied = BTreeSet::<String>::new();
    for op in history.iter_mut().skip(middle) {
        let Output::Value(Some(read)) = &op.output else {
            continue;
        };
        if lied.contains(&op.key) {
            continue;
        }
        let Some(pieces) = appends.get(&op.key) else {
            continue;
        };
        // The last piece of the value: "client.index" values are never a proper suffix of one
        // another or of a concatenation ending in another (the index after the dot is unique),
        // so the suffix that is an append's value is that append's.
        let last = (1..read.len())
            .filter(|&start| read.is_char_boundary(start))
            .find_map(|start| pieces.get(&read[start..]).map(|&ret| (start, ret)));
        if let Some((start, _)) = last.filter(|&(_, ret)| ret < op.call) {
            let kept = read[..start].to_string();
            lied.insert(op.key.clone());
            op.output = Output::Value(Some(kept));
        }
    }
    history
}

/// SplitMix64: enough randomness for shapes of histories.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let a = linearizable(200, 2, 5, 9);
        assert_eq!(a, linearizable(200, 2, 5, 9));
        assert_ne!(a, linearizable(200, 2, 5, 10));
        assert_eq!(a.len(), 200);
        assert!(a.iter().all(|op| op.ret.is_some_and(|ret| ret > op.call)));
    }

    #[test]
    fn shaped_histories_collide_have_pending_operations_and_are_linearizable() {
        use crate::checker::linearizability::{check_kv, Budget, Verdict};
        assert_eq!(
            shaped(300, 2, 5, 9, Shape::default()),
            linearizable(300, 2, 5, 9)
        );
        let shape = Shape {
            values: Some(5),
            pending_in_100: 20,
            guessing_cas: false,
        };
        for seed in 0..20 {
            let ops = shaped(300, 1, 10, seed, shape);
            let pending = ops.iter().filter(|op| !op.is_completed()).count();
            assert!((20..=100).contains(&pending), "{pending} pending");
            assert!(ops
                .iter()
                .filter(|op| !op.is_completed())
                .all(|op| op.output == Output::Unknown));
            let values: BTreeSet<&str> = ops
                .iter()
                .filter_map(|op| match &op.op {
                    Op::Put { value } | Op::Append { value } => Some(value.as_str()),
                    _ => None,
                })
                .collect();
            assert!(values.len() <= 5);
            let result = check_kv(&ops, Budget::default());
            assert_eq!(
                result.verdict,
                Verdict::Linearizable,
                "seed {seed}: {result}"
            );
        }
    }

    #[test]
    fn a_lost_append_drops_the_last_piece_of_one_read_per_key() {
        let a = linearizable(2_000, 2, 8, 9);
        let b = with_lost_append(a.clone());
        let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(changed.len(), 2, "{changed:?}");
        for &i in &changed {
            let (Output::Value(Some(truth)), Output::Value(Some(lie))) =
                (&a[i].output, &b[i].output)
            else {
                panic!("{i} is not a read of a value");
            };
            assert!(truth.len() > lie.len() && truth.starts_with(lie.as_str()));
        }
    }

    #[test]
    fn a_stale_read_changes_one_read_per_key() {
        let a = linearizable(400, 2, 5, 9);
        let b = with_stale_read(a.clone());
        let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(changed.iter().all(|&i| i >= 200 && a[i].op == Op::Get));
        assert_ne!(b[changed[0]].key, b[changed[1]].key);
    }
}
