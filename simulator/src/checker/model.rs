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

/// What the search's lookahead tells `Model::can_lead_to` about the
/// operations not yet placed, for one completed read that must come later.
pub trait Lookahead {
    /// The read asked about.
    fn read(&self) -> &Operation;
    /// The `nth` (from 0) of the resets of operation `of` (`Model::read_resets`,
    /// in their order) that are not yet placed and were called by the read's
    /// return (a reset called later comes after the read), with its index;
    /// `of` is the read itself or one of these resets. `None` past the last.
    fn reset(&self, of: usize, nth: usize) -> Option<(usize, &Operation)>;
    /// The index of the read.
    fn read_index(&self) -> usize;
    /// Whether the operations not yet placed and called by the read's return
    /// can add every token of `needed` (`Model::tokens`), counted with
    /// multiplicity. Always true when the model gives no tokens.
    fn covers(&self, needed: &[u8]) -> bool;
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

    /// For the search's lookahead: per operation of one partition, `Some` for
    /// an operation that needs the state to hold some value when it takes
    /// effect (for the KV store: a completed read of a value, and a cas that
    /// may have swapped), holding the operations (indices
    /// into `ops`) that could reset the state to a value it may then see (see
    /// `can_lead_to`), the one that leaves least to explain first (for the KV
    /// store: the longest value). Every reset in the list of a completed
    /// operation that needs a value itself (a cas) must have its list too:
    /// `Lookahead::reset` gives none for one without, and `can_lead_to` may
    /// then take it as impossible. The search asks
    /// `can_lead_to` about the completed operations with a list.
    /// The default gives none, and the search looks ahead at nothing.
    fn read_resets(&self, ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
        vec![None; ops.len()]
    }

    /// For the search's lookahead: per operation of one partition, the tokens
    /// it adds to the state, the only way the state gains them short of a
    /// reset (for the KV store: an append's bytes). The search counts the
    /// tokens of the operations not yet linearized that may still come before
    /// a read (`linearizability/supply.rs`), for `Lookahead::covers`. The
    /// default gives none, and every need is covered.
    fn tokens<'a>(&self, ops: &[&'a Operation]) -> Vec<Option<&'a [u8]>> {
        vec![None; ops.len()]
    }

    /// Can `state` still lead to the output of `ahead.read()` (a completed
    /// read that must come later) through operations yet to be placed, which
    /// `ahead` tells about? False only when certainly not: the search then
    /// prunes the branch, so a false here that is wrong could turn a
    /// linearizable history into a violation.
    fn can_lead_to(&self, _state: &Self::State, _ahead: &dyn Lookahead) -> bool {
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

    /// The bytes of an append's value: nothing else adds bytes to a value
    /// without replacing it whole.
    fn tokens<'a>(&self, ops: &[&'a Operation]) -> Vec<Option<&'a [u8]>> {
        ops.iter()
            .map(|op| match &op.op {
                Op::Append { value } => Some(value.as_bytes()),
                _ => None,
            })
            .collect()
    }

    /// `shortcuts::can_lead_to`.
    fn can_lead_to(&self, state: &Self::State, ahead: &dyn Lookahead) -> bool {
        shortcuts::can_lead_to(state, ahead)
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
        let ahead = |read: Operation, resets: Vec<Operation>| Fixed::new(read, resets, None);
        assert!(m.can_lead_to(&s("a,b"), &ahead(read(Some("a,b,c")), vec![])));
        assert!(!m.can_lead_to(&s("a,c"), &ahead(read(Some("a,b,c")), vec![])));
        let reset = |op| Operation {
            op,
            output: Output::Empty,
            ..read(None)
        };
        assert!(m.can_lead_to(
            &s("a,c"),
            &ahead(read(Some("a,b,c")), vec![reset(put("a"))])
        ));
        assert!(m.can_lead_to(&None, &ahead(read(Some("x")), vec![])));
        assert!(!m.can_lead_to(&s(""), &ahead(read(None), vec![reset(put(""))])));
        // A cas told it swapped read its expected value; one told false, nothing.
        let swapped = |told| Operation {
            op: cas("a,b", "z"),
            output: Output::Swapped(told),
            ..read(None)
        };
        assert!(m.can_lead_to(&s("a,"), &ahead(swapped(true), vec![])));
        assert!(!m.can_lead_to(&s("a,c"), &ahead(swapped(true), vec![])));
        assert!(m.can_lead_to(&s("a,c"), &ahead(swapped(true), vec![reset(put("a,"))])));
        assert!(m.can_lead_to(&s("a,c"), &ahead(swapped(false), vec![])));
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
        // "a" and "" may start "a,b", longest first; "b" does not, and a cas
        // told false never swapped.
        assert_eq!(resets[0], Some(vec![1, 4]));
        assert_eq!(resets[1..4], [None, None, None]);
        // A pending cas swapped only from its expected value "x", and its
        // value "" may start "a,b": it has a list too ("" may start "x").
        assert_eq!(resets[4], Some(vec![4]));
        // A completed cas told it swapped is looked ahead at like a read of its expected value.
        let mut with_cas = ops.to_vec();
        with_cas.push(swapped(true));
        let refs: Vec<&Operation> = with_cas.iter().collect();
        assert_eq!(m.read_resets(&refs)[5], Some(vec![1, 4]));
    }

    /// A `Lookahead` with fixed answers: the read is operation 0, and the
    /// resets of the read, or of a cas among them, are those of 1.. whose
    /// value is a prefix of what it read (or expected), longest first. `supply`: the
    /// bytes appends can still add (`None`: any).
    struct Fixed {
        ops: Vec<Operation>,
        supply: Option<String>,
    }

    impl Fixed {
        fn new(read: Operation, resets: Vec<Operation>, supply: Option<&str>) -> Self {
            let mut ops = vec![read];
            ops.extend(resets);
            Fixed {
                ops,
                supply: supply.map(str::to_string),
            }
        }
    }

    impl Lookahead for Fixed {
        fn read(&self) -> &Operation {
            &self.ops[0]
        }

        fn read_index(&self) -> usize {
            0
        }

        fn reset(&self, of: usize, nth: usize) -> Option<(usize, &Operation)> {
            let target = match (&self.ops[of].op, &self.ops[of].output) {
                (Op::Cas { expected, .. }, _) => expected.clone(),
                (_, Output::Value(seen)) => seen.clone().unwrap_or_default(),
                _ => unreachable!("a read or a cas"),
            };
            let value = |op: &Operation| match &op.op {
                Op::Put { value } | Op::Cas { value, .. } => value.clone(),
                _ => unreachable!("resets are puts and cas ops"),
            };
            let mut found: Vec<usize> = (1..self.ops.len())
                .filter(|&i| target.starts_with(value(&self.ops[i]).as_str()))
                .collect();
            found.sort_by_key(|&i| std::cmp::Reverse(value(&self.ops[i]).len()));
            found.get(nth).map(|&i| (i, &self.ops[i]))
        }

        fn covers(&self, needed: &[u8]) -> bool {
            let Some(supply) = &self.supply else {
                return true;
            };
            let mut left: Vec<u8> = supply.bytes().collect();
            needed
                .iter()
                .all(|byte| match left.iter().position(|b| b == byte) {
                    Some(at) => {
                        left.swap_remove(at);
                        true
                    }
                    None => false,
                })
        }
    }

    #[test]
    fn a_read_ahead_needs_what_is_left_to_supply_its_value() {
        let m = KvModel;
        let read = |seen: &str| Operation {
            client: 1,
            key: "k".to_string(),
            op: Op::Get,
            output: Output::Value(s(seen)),
            call: 0,
            ret: Some(1),
        };
        let reset = |op, output| Operation {
            op,
            output,
            ..read("")
        };
        // From the state: the rest of the value, counted with multiplicity.
        let from_state = |supply| Fixed::new(read("a,b,b"), vec![], Some(supply));
        assert!(m.can_lead_to(&s("a,"), &from_state("bb,")));
        assert!(!m.can_lead_to(&s("a,"), &from_state("b,")));
        assert!(!m.can_lead_to(&s("a,"), &from_state("bb")));
        // An absent key: appends start from "".
        assert!(m.can_lead_to(&None, &from_state("a,bb,,")));
        assert!(!m.can_lead_to(&None, &from_state("a,b,,")));
        // From a reset: the rest after its value.
        let put30 = reset(put("30"), Output::Empty);
        let from_put = |supply| Fixed::new(read("30291"), vec![put30.clone()], Some(supply));
        assert!(m.can_lead_to(&s("18"), &from_put("921")));
        assert!(!m.can_lead_to(&s("18"), &from_put("29")));
        // A cas reset swaps only from its expected value, which must be
        // reachable too: from the state, with the same appends.
        let cas_reset = |supply| {
            let swap = reset(cas("42", "31"), Output::Unknown);
            Fixed::new(read("313"), vec![swap], Some(supply))
        };
        assert!(!m.can_lead_to(&s("7"), &cas_reset("32")));
        assert!(m.can_lead_to(&s("4"), &cas_reset("32")));
        assert!(!m.can_lead_to(&s("4"), &cas_reset("3")));
        // ... or from a reset of its own; a cas reset of a cas reset is taken
        // to be possible.
        let chain = |second: Op| {
            let swap = reset(cas("42", "31"), Output::Unknown);
            Fixed::new(
                read("313"),
                vec![swap, reset(second, Output::Unknown)],
                Some("32"),
            )
        };
        assert!(m.can_lead_to(&s("7"), &chain(put("4"))));
        assert!(!m.can_lead_to(&s("7"), &chain(put("5"))));
        assert!(m.can_lead_to(&s("7"), &chain(cas("9", "4"))));
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
