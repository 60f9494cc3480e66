//! Sequential specifications the linearizability checker tests a history against.
//!
//! A [`Model`] is a deterministic state machine over history operations. A model
//! may split a history into independent parts (P-compositionality: a history is
//! linearizable iff each part is), which is what keeps the search small: for a
//! key-value store every key is its own register.

mod shortcuts;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use crate::history::{Op, Operation, Output};
use consensus::kv;

/// One independent part of a history: a label for people and the indices of its
/// operations in the history slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub label: String,
    pub ops: Vec<usize>,
}

/// Operations that no linearization can explain, found without a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// What is impossible, for a person.
    pub message: String,
    /// The operations involved, the impossible one last.
    pub ops: Vec<Operation>,
}

pub trait Model {
    /// The state of one partition. Hashed and compared for the search's memo cache.
    type State: Clone + Eq + Hash + Debug;

    /// The state every partition starts from.
    fn init(&self) -> Self::State;

    /// Applies `op` to `state`; `None` when the client could not have been told
    /// `output` in that state. `Output::Unknown` (no reply came) matches any output.
    fn step(&self, state: &Self::State, op: &Op, output: &Output) -> Option<Self::State>;

    /// Splits the history into parts that are checked independently, in a fixed
    /// order. The default keeps the whole history together.
    fn partition(&self, ops: &[Operation]) -> Vec<Partition> {
        vec![Partition {
            label: "all".to_string(),
            ops: (0..ops.len()).collect(),
        }]
    }

    /// True when `op` never changes the state. Pending read-only operations
    /// constrain nothing (they may be left out), so the checker drops them.
    fn is_read_only(&self, _op: &Op) -> bool {
        false
    }

    /// An anomaly in one partition's operations that refutes it for certain
    /// without a search; `None` when there is none or the model cannot tell.
    fn refute(&self, _ops: &[&Operation]) -> Option<Anomaly> {
        None
    }

    /// An anomaly that refutes one partition's searched operations for
    /// certain, tried only once the search has taken many steps without
    /// deciding (`linearizability::LATE_REFUTATION_STEPS`): where a search
    /// decides soon, its verdict comes with the longest linearizable prefix,
    /// which explains more than an anomaly. `None` when there is none or the
    /// model cannot tell.
    fn refute_late(&self, _ops: &[&Operation]) -> Option<Anomaly> {
        None
    }

    /// Per operation of one partition: true for a pending operation that can
    /// be left out of the search without changing the verdict. Pending
    /// read-only operations are left out anyway.
    fn needless_pending(&self, ops: &[&Operation]) -> Vec<bool> {
        vec![false; ops.len()]
    }

    /// Per operation of one partition: `Some(t)` for a pending operation that
    /// every linearization must place, and place before time `t` (say a
    /// completed read returning at `t` shows its effect, which nothing else
    /// could have made). The checker then searches the operation as if it had
    /// returned at `t`: the history with that return has exactly the
    /// linearizations of the one without (each of those has the operation
    /// before `t` already), and a completed operation no longer keeps the
    /// history from being cut in time, nor waits behind the pending ones. A
    /// wrong `Some` could turn a linearizable history into a violation. The
    /// default gives none.
    fn deadlines(&self, ops: &[&Operation]) -> Vec<Option<u64>> {
        vec![None; ops.len()]
    }

    /// Per operation of one partition: true for a pending operation the
    /// search should try only after the completed operations that may go next
    /// at each point, because it is rarely needed (say it writes what nobody
    /// saw). Only the order of the search changes, never its verdict. The
    /// default marks none: every call is tried in time order.
    fn tried_last(&self, ops: &[&Operation]) -> Vec<bool> {
        vec![false; ops.len()]
    }

    /// Per operation of one partition: true for a completed operation that
    /// fits every state a linearization can reach there and changes none. It
    /// can be left out: any linearization of the rest takes it back at any
    /// point of its interval. The default marks none.
    fn inert(&self, ops: &[&Operation]) -> Vec<bool> {
        vec![false; ops.len()]
    }

    /// For the search's lookahead: per operation of one partition, `Some` for a
    /// completed read, holding the operations (indices into `ops`) that could
    /// reset the state to a value that read may then see (see `can_lead_to`).
    /// The default gives none, and the search looks ahead at nothing.
    fn read_resets(&self, ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
        vec![None; ops.len()]
    }

    /// Can `state` still lead to the output of `read` (a completed read that
    /// must come later) through operations yet to be placed, given whether one
    /// of its resets (`read_resets`) is among them? False only when certainly
    /// not: the search then prunes the branch, so a false here that is wrong
    /// could turn a linearizable history into a violation.
    fn can_lead_to(&self, _state: &Self::State, _read: &Operation, _resets_left: bool) -> bool {
        true
    }

    /// Per operation of one partition: `Some(ops)` for a pending operation the
    /// search need only place when one of `ops` (completed, not yet
    /// linearized) is refused by the current state, i.e. right before it. The
    /// default restricts nothing.
    fn only_before(&self, ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
        vec![None; ops.len()]
    }

    /// For the search's lookahead: per operation of one partition, `Some`
    /// with operations (indices into `ops`) that precede it in every
    /// linearization, though real time does not say so. The search places it
    /// only after them. False precedences would turn a linearizable history
    /// into a violation. The default gives none.
    fn preceded_by(&self, ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
        vec![None; ops.len()]
    }

    /// Bytes `state` occupies, inline and on the heap, for the checker's
    /// memory budget. The default counts the inline part only.
    fn state_bytes(&self, _state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>()
    }

    /// The state for a person or a machine reading a violation report.
    fn describe_state(&self, state: &Self::State) -> serde_json::Value;
}

/// The key-value store of DESIGN.md §6: get, put, append and cas per key.
///
/// A key's state is its value, `None` when absent: a get of an absent key
/// outputs null, an append to an absent key creates it, and a cas on an absent
/// key never swaps (absent equals no expected string).
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type State = Option<String>;

    fn init(&self) -> Self::State {
        None
    }

    /// `consensus::kv::apply`, the state machine's own semantics, on the key's value.
    fn step(&self, state: &Self::State, op: &Op, output: &Output) -> Option<Self::State> {
        let (written, told) = kv::apply(state.as_deref(), op.as_kv());
        if !output.admits(&told) {
            return None;
        }
        Some(written.or_else(|| state.clone()))
    }

    fn state_bytes(&self, state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>() + state.as_ref().map_or(0, String::capacity)
    }

    fn read_resets(&self, ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
        shortcuts::read_resets(ops)
    }

    fn inert(&self, ops: &[&Operation]) -> Vec<bool> {
        shortcuts::inert(ops)
    }

    fn only_before(&self, ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
        shortcuts::only_before(ops)
    }

    /// An append a read shows came after the only put (or cas) its value
    /// can start with: `shortcuts::preceded_by`.
    fn preceded_by(&self, ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
        shortcuts::preceded_by(ops)
    }

    /// From a value `s`, the key later holds `s` followed by appends, unless a
    /// put or a swapping cas resets it to its own value (then appends follow),
    /// and nothing makes it absent again. So a read of `v` after a state
    /// `Some(s)` needs `s` to be a prefix of `v` or a reset whose value is (one
    /// of `read_resets`) still to come; a read of null needs an absent key. A
    /// cas told it swapped read its expected value `e` (the key held exactly
    /// `e` when it took effect), so it needs the same as a read of `e`.
    fn can_lead_to(&self, state: &Self::State, read: &Operation, resets_left: bool) -> bool {
        let seen = match (&read.op, &read.output) {
            (Op::Get, Output::Value(seen)) => seen.as_deref(),
            (Op::Cas { expected, .. }, Output::Swapped(true)) => Some(expected.as_str()),
            _ => return true,
        };
        match (state, seen) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(current), Some(seen)) => resets_left || seen.starts_with(current.as_str()),
        }
    }

    fn partition(&self, ops: &[Operation]) -> Vec<Partition> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, op) in ops.iter().enumerate() {
            by_key.entry(&op.key).or_default().push(index);
        }
        by_key
            .into_iter()
            .map(|(key, ops)| Partition {
                label: key.to_string(),
                ops,
            })
            .collect()
    }

    fn is_read_only(&self, op: &Op) -> bool {
        matches!(op, Op::Get)
    }

    fn refute(&self, ops: &[&Operation]) -> Option<Anomaly> {
        shortcuts::refute(ops)
    }

    fn refute_late(&self, ops: &[&Operation]) -> Option<Anomaly> {
        shortcuts::refute_late(ops)
    }

    fn deadlines(&self, ops: &[&Operation]) -> Vec<Option<u64>> {
        shortcuts::deadlines(ops)
    }

    fn tried_last(&self, ops: &[&Operation]) -> Vec<bool> {
        shortcuts::unseen_pending(ops)
    }

    fn needless_pending(&self, ops: &[&Operation]) -> Vec<bool> {
        shortcuts::needless_pending(ops)
    }

    fn describe_state(&self, state: &Self::State) -> serde_json::Value {
        state.as_deref().map_or(serde_json::Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    fn put(value: &str) -> Op {
        Op::Put {
            value: value.to_string(),
        }
    }

    fn cas(expected: &str, value: &str) -> Op {
        Op::Cas {
            expected: expected.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn get_reads_current_value_or_null() {
        let m = KvModel;
        assert_eq!(m.step(&None, &Op::Get, &Output::Value(None)), Some(None));
        assert_eq!(m.step(&None, &Op::Get, &Output::Value(s("a"))), None);
        assert_eq!(
            m.step(&s("a"), &Op::Get, &Output::Value(s("a"))),
            Some(s("a"))
        );
        assert_eq!(m.step(&s("a"), &Op::Get, &Output::Unknown), Some(s("a")));
    }

    #[test]
    fn a_read_ahead_needs_a_prefix_or_a_reset_to_come() {
        let m = KvModel;
        let read = |output: Option<&str>| Operation {
            client: 1,
            key: "k".to_string(),
            op: Op::Get,
            output: Output::Value(output.map(str::to_string)),
            call: 0,
            ret: Some(1),
        };
        assert!(m.can_lead_to(&s("a,b"), &read(Some("a,b,c")), false));
        assert!(!m.can_lead_to(&s("a,c"), &read(Some("a,b,c")), false));
        assert!(m.can_lead_to(&s("a,c"), &read(Some("a,b,c")), true));
        assert!(m.can_lead_to(&None, &read(Some("x")), false));
        assert!(!m.can_lead_to(&s(""), &read(None), true));
        // A cas told it swapped read its expected value; one told false, nothing.
        let swapped = |told| Operation {
            op: cas("a,b", "z"),
            output: Output::Swapped(told),
            ..read(None)
        };
        assert!(m.can_lead_to(&s("a,"), &swapped(true), false));
        assert!(!m.can_lead_to(&s("a,c"), &swapped(true), false));
        assert!(m.can_lead_to(&s("a,c"), &swapped(true), true));
        assert!(m.can_lead_to(&s("a,c"), &swapped(false), false));
        let ops = [
            read(Some("a,b")),
            Operation {
                op: put("a"),
                output: Output::Empty,
                ..read(None)
            },
            Operation {
                op: put("b"),
                output: Output::Empty,
                ..read(None)
            },
            Operation {
                op: cas("x", "a,"),
                output: Output::Swapped(false),
                ..read(None)
            },
            Operation {
                op: cas("x", ""),
                output: Output::Unknown,
                ret: None,
                ..read(None)
            },
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let resets = m.read_resets(&refs);
        // "a" and "" may start "a,b"; "b" does not, and a cas told false never swapped.
        assert_eq!(resets[0], Some(vec![4, 1]));
        assert_eq!(resets[1..], [None, None, None, None]);
        // A completed cas told it swapped is looked ahead at like a read of its expected value.
        let mut with_cas = ops.to_vec();
        with_cas.push(swapped(true));
        let refs: Vec<&Operation> = with_cas.iter().collect();
        assert_eq!(m.read_resets(&refs)[5], Some(vec![4, 1]));
    }

    #[test]
    fn put_and_append() {
        let m = KvModel;
        assert_eq!(m.step(&s("a"), &put("b"), &Output::Empty), Some(s("b")));
        let append = Op::Append {
            value: "x".to_string(),
        };
        assert_eq!(m.step(&None, &append, &Output::Empty), Some(s("x")));
        assert_eq!(m.step(&s("a"), &append, &Output::Unknown), Some(s("ax")));
    }

    #[test]
    fn cas_swaps_iff_current_equals_expected() {
        let m = KvModel;
        let told = Output::Swapped;
        assert_eq!(m.step(&s("a"), &cas("a", "b"), &told(true)), Some(s("b")));
        assert_eq!(m.step(&s("a"), &cas("a", "b"), &told(false)), None);
        assert_eq!(m.step(&s("c"), &cas("a", "b"), &told(false)), Some(s("c")));
        assert_eq!(m.step(&s("c"), &cas("a", "b"), &told(true)), None);
        assert_eq!(m.step(&None, &cas("", "b"), &told(false)), Some(None));
        assert_eq!(
            m.step(&s("a"), &cas("a", "b"), &Output::Unknown),
            Some(s("b"))
        );
    }

    #[test]
    fn partitions_by_key_in_key_order() {
        let text = r#"{"client":1,"op":"put","key":"b","value":"1","call":1,"return":2}
{"client":1,"op":"put","key":"a","value":"1","call":3,"return":4}
{"client":2,"op":"get","key":"b","output":"1","call":5,"return":6}"#;
        let ops = crate::history::parse_history(text).unwrap();
        let parts = KvModel.partition(&ops);
        let labels: Vec<(&str, &[usize])> = parts
            .iter()
            .map(|p| (p.label.as_str(), p.ops.as_slice()))
            .collect();
        assert_eq!(labels, [("a", &[1][..]), ("b", &[0, 2][..])]);
    }
}
