//! End-of-run check: the clients' history, converted to the DESIGN §6 format, must be
//! linearizable (outcome `correctness` otherwise; `undecided` when the check runs out of
//! budget, as a history nobody checked is no pass).

use crate::checker::linearizability::{check_kv, Budget, Verdict};
use crate::checker::Violation;
use crate::history::{Op, Operation, Output};
use crate::simulation::Simulation;
use crate::workload::HistoryRecord;
use consensus::KvOp;

/// Search steps the end-of-run check may take before answering `unknown`, for a history of
/// `ops` operations: spent only on a hard history, and small next to the run that recorded it
/// (a fraction of a second). Seeds 1..5000 (the swarm, 1 to 8 groups) each decide within
/// 440,000 steps (seed 1959, 18,556 operations; seed 4478, a solo replica whose evictions
/// leave 1,300 writes pending on one key, 318,000), at most 43 per operation; this allows
/// 4 million plus 64 per operation.
pub fn linearizability_steps_max(ops: usize) -> u64 {
    4_000_000 + 64 * ops as u64
}

/// The budget of the end-of-run check of a history of `ops` operations.
pub fn linearizability_budget(ops: usize) -> Budget {
    Budget::steps(linearizability_steps_max(ops)).with_memory(LINEARIZABILITY_MEMORY_MAX)
}

/// Memory the end-of-run check may hold before answering `unknown`: a bound, so that a sweep
/// on `--jobs N` never holds more than N times this for its checks.
pub const LINEARIZABILITY_MEMORY_MAX: u64 = 512 << 20;

/// The `linearizability` answer of a run whose check ran out of budget (the word
/// `check-history` prints); the run's outcome is then `undecided`.
pub const UNDECIDED: &str = "unknown";

/// Converts what the clients saw into history operations.
pub fn to_operations(records: &[HistoryRecord]) -> Vec<Operation> {
    records.iter().map(to_operation).collect()
}

fn to_operation(record: &HistoryRecord) -> Operation {
    let (key, op) = match &record.op {
        KvOp::Get { key } => (key.clone(), Op::Get),
        KvOp::Put { key, value } => (
            key.clone(),
            Op::Put {
                value: value.clone(),
            },
        ),
        KvOp::Append { key, value } => (
            key.clone(),
            Op::Append {
                value: value.clone(),
            },
        ),
        KvOp::Cas {
            key,
            expected,
            value,
        } => (
            key.clone(),
            Op::Cas {
                expected: expected.clone(),
                value: value.clone(),
            },
        ),
    };
    // A failed append is recorded as such (`"output":"error"`): it changed nothing, but for
    // creating an absent key. (No well-formed get or cas is told error: the reply oracle
    // flags any reply the reference machine would not give.)
    let output = match (&record.output, record.ret) {
        (_, None) | (None, _) => Output::Unknown,
        (Some(told), _) => Output::from(told.clone()),
    };
    // A reply the client could not decode leaves the op's effect unknown: record it pending.
    let ret = if output == Output::Unknown {
        None
    } else {
        record.ret
    };
    Operation {
        client: record.client as u64,
        key,
        op,
        output,
        call: record.call,
        ret,
    }
}

/// The history as JSON lines (DESIGN §6).
pub fn to_jsonl(records: &[HistoryRecord]) -> String {
    let mut out = String::new();
    for op in to_operations(records) {
        out.push_str(&op.to_json_line());
        out.push('\n');
    }
    out
}

/// Checks the run's history; a violation is recorded on the simulation. The answer, and the
/// search steps it took.
pub fn check_simulation_history(sim: &mut Simulation) -> (&'static str, u64) {
    let ops = to_operations(&sim.history);
    let result = check_kv(&ops, linearizability_budget(ops.len()));
    let answer = match result.verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::Unknown => UNDECIDED,
        Verdict::NotLinearizable => {
            sim.violation.get_or_insert(Violation {
                invariant: "linearizability",
                tick: sim.tick,
                replica: None,
                message: format!("client history is not linearizable:\n{result}"),
            });
            "not linearizable"
        }
    };
    (answer, result.steps())
}
