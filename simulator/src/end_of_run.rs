//! End-of-run check: the clients' history, converted to the DESIGN §6 format, must be
//! linearizable (outcome `correctness` otherwise; `undecided` when the check runs out of
//! budget, as a history nobody checked is no pass).

use crate::checker::linearizability::{check_kv, Budget, Verdict};
use crate::checker::Violation;
use crate::history::{Op, Operation, Output};
use crate::simulation::Simulation;
use crate::workload::HistoryRecord;
use consensus::KvOp;

/// Search steps the end-of-run check may take before answering `unknown`: spent only on a
/// hard history. Every seed of 1..800 (the CI sweep) decides within 1.3 million (seed 579,
/// 6,000 operations: 0.4 s); of 1..5000, seeds 3497 and 4478 (a solo replica, one key, some
/// 1,900 operations left pending by evictions) need 13 and 30 million (1.8 s and 4.4 s).
pub const LINEARIZABILITY_STEPS_MAX: u64 = 40_000_000;

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
    let budget = Budget::steps(LINEARIZABILITY_STEPS_MAX).with_memory(LINEARIZABILITY_MEMORY_MAX);
    let result = check_kv(&ops, budget);
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
