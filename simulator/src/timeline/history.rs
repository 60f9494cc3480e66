//! The timeline of a checked history, Porcupine-style: per key, each client's operations
//! from call to return on the client's row, on an axis of event order (every distinct call
//! or return time is one step, so bursts and long gaps read alike). For the key that fails:
//! the longest linearizable prefix, numbered in linearization order with the state after
//! each, and the operations that cannot be placed after it, as the checker reported them.

use super::run::{evidence, indices_of};
use super::{label, n};
use crate::checker::linearizability::{CheckResult, Explanation, Verdict};
use crate::checker::model::{KvModel, Model};
use crate::history::Operation;
use serde_json::{json, Value};

/// The page of `ops` (read from `source`) checked as `result`.
pub fn render(source: &str, ops: &[Operation], result: &CheckResult) -> String {
    let title = format!("{source}: {}", result.verdict);
    super::page(&title, &data(source, ops, result))
}

/// The JSON the page draws.
pub fn data(source: &str, ops: &[Operation], result: &CheckResult) -> Value {
    let mut times: Vec<u64> = ops
        .iter()
        .flat_map(|op| [Some(op.call), op.ret])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    let rank = |t: u64| times.partition_point(|&x| x < t);
    let keys: Vec<Value> = KvModel
        .partition(ops)
        .into_iter()
        .map(|partition| {
            let key = result.keys.iter().find(|k| k.key == partition.label);
            let verdict = key.map_or(Verdict::Unknown, |k| k.verdict);
            let explanation = result
                .explanation
                .as_ref()
                .filter(|e| e.key == partition.label);
            let mut entry = json!({
                "key": partition.label,
                "verdict": verdict.as_str(),
                "ops": partition.ops,
            });
            if let Some(e) = explanation {
                explain(&mut entry, ops, &partition.ops, e);
            }
            entry
        })
        .collect();
    json!({
        "kind": "history",
        "source": source,
        "verdict": result.verdict.as_str(),
        "report": result.to_string(),
        "times": times.iter().map(|&t| n(t)).collect::<Vec<_>>(),
        "ops": ops.iter().map(|op| json!([
            n(op.client),
            rank(op.call),
            op.ret.map(rank),
            label(op),
        ])).collect::<Vec<_>>(),
        "keys": keys,
    })
}

/// Adds the checker's evidence on one key to its entry: `prefix` (indices into the history,
/// in linearization order) with `states` (the state after each), `cannot` (cannot be
/// placed next), `strand` (would strand a read due soon), `state`, `anomaly`.
fn explain(entry: &mut Value, ops: &[Operation], partition: &[usize], e: &Explanation) {
    let own: Vec<Operation> = partition.iter().map(|&i| ops[i].clone()).collect();
    let to_history = |wanted: &[Operation]| -> Vec<usize> {
        indices_of(&own, wanted)
            .into_iter()
            .map(|i| partition[i])
            .collect()
    };
    // The prefix in its order: matched one by one, as equal operations may repeat.
    let mut used = vec![false; own.len()];
    let mut prefix = Vec::new();
    let mut states = Vec::new();
    let mut state = KvModel.init();
    for op in &e.longest_prefix {
        if let Some(i) = (0..own.len()).find(|&i| !used[i] && own[i] == *op) {
            used[i] = true;
            prefix.push(partition[i]);
        }
        // The report's prefix is one the model accepts; a state it would not give is shown
        // as unknown rather than trusted.
        state = match KvModel.step(&state, &op.op, &op.output) {
            Some(next) => next,
            None => break,
        };
        states.push(KvModel.describe_state(&state).to_string());
    }
    entry["prefix"] = json!(prefix);
    entry["states"] = json!(states);
    entry["cannot"] = json!(to_history(&e.cannot_place));
    entry["strand"] = json!(to_history(&e.would_strand));
    entry["state"] = json!(e.state.to_string());
    entry["blamed"] = json!(to_history(&evidence(e)));
    if let Some(a) = &e.anomaly {
        entry["anomaly"] = json!({"message": a.message, "ops": to_history(&a.ops)});
    }
}
