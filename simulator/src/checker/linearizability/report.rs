//! What a check reports: a verdict, and for a violation the evidence a person
//! can act on — how far a linearization got and which operations then fit nowhere.

use std::fmt;

use serde_json::{json, Value};

use super::{CheckResult, Verdict};
use crate::checker::model::{Anomaly, Model};
use crate::history::Operation;

/// Why a partition is not linearizable.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The partition (key) that fails.
    pub key: String,
    /// The longest linearizable prefix found, in linearization order.
    pub longest_prefix: Vec<Operation>,
    /// The operations that were due next (called before the earliest return
    /// among the completed operations left) yet contradict the state after the
    /// prefix. One of them had to come next; none can.
    pub cannot_place: Vec<Operation>,
    /// Operations due next that fit the state after the prefix, yet each would
    /// leave a read due soon unable to see what it saw (the search's lookahead
    /// refused them; or a read shows that another operation, not placed yet,
    /// comes before it, `Model::preceded_by`). Empty unless the plain search that confirms a violation
    /// ran out of budget, so that the lookahead's prefix is the one reported.
    pub would_strand: Vec<Operation>,
    /// The model state after the prefix.
    pub state: Value,
    /// Set when the key was refuted by an anomaly (`Model::refute`, before
    /// any search, or `Model::refute_late`, once a search ran long): what no
    /// linearization can explain. The prefix and the operations due next are then empty and
    /// the state null.
    pub anomaly: Option<Anomaly>,
}

impl Explanation {
    pub(super) fn anomaly(key: String, anomaly: Anomaly) -> Self {
        Explanation {
            key,
            longest_prefix: Vec::new(),
            cannot_place: Vec::new(),
            would_strand: Vec::new(),
            state: Value::Null,
            anomaly: Some(anomaly),
        }
    }
}

/// Rebuilds the evidence from the prefix the search returned.
pub(super) fn explain<M: Model>(
    model: &M,
    key: String,
    ops: &[&Operation],
    prefix: &[usize],
) -> Explanation {
    let mut state = model.init();
    let mut placed = vec![false; ops.len()];
    for &index in prefix {
        let op = ops[index];
        state = model
            .step(&state, &op.op, &op.output)
            .expect("the search only returns prefixes the model accepts");
        placed[index] = true;
    }
    let left = || (0..ops.len()).filter(|&i| !placed[i] && ops[i].is_completed());
    // Nothing called after this return can precede the op returning there.
    let horizon = left().filter_map(|i| ops[i].ret).min().unwrap_or(u64::MAX);
    let mut due: Vec<Operation> = left()
        .filter(|&i| ops[i].call <= horizon)
        .map(|i| ops[i].clone())
        .collect();
    due.sort_by_key(|op| (op.call, op.ret, op.client));
    let (would_strand, cannot_place) = due
        .into_iter()
        .partition(|op| model.step(&state, &op.op, &op.output).is_some());
    Explanation {
        key,
        longest_prefix: prefix.iter().map(|&i| ops[i].clone()).collect(),
        cannot_place,
        would_strand,
        state: model.describe_state(&state),
        anomaly: None,
    }
}

impl Verdict {
    /// The word(s) `check-history` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CheckResult {
    pub fn steps(&self) -> u64 {
        self.keys.iter().map(|key| key.steps).sum()
    }

    /// Keys whose search finished (the rest ran out of budget or were not
    /// needed once a violation was found).
    pub fn keys_checked(&self) -> usize {
        let decided = |key: &&super::KeyResult| key.verdict != Verdict::Unknown;
        self.keys.iter().filter(decided).count()
    }

    /// The same content as `Display`, for machines.
    pub fn to_json(&self) -> Value {
        let ops_json = |ops: &[Operation]| ops.iter().map(Operation::to_json).collect::<Vec<_>>();
        let explanation = self.explanation.as_ref();
        json!({
            "verdict": self.verdict.as_str(),
            "keys_checked": self.keys_checked(),
            "keys": self.keys.len(),
            "steps": self.steps(),
            "memory_peak_bytes": self.memory_peak_bytes,
            "budget_exhausted": self.budget_exhausted.map(super::Limit::as_str),
            "undecided_key": self.undecided_key(),
            "failing_key": explanation.map(|e| e.key.as_str()),
            "longest_prefix": explanation.map(|e| ops_json(&e.longest_prefix)),
            "cannot_place": explanation.map(|e| ops_json(&e.cannot_place)),
            "would_strand": explanation.map(|e| ops_json(&e.would_strand)),
            "state": explanation.map_or(Value::Null, |e| e.state.clone()),
            "anomaly": explanation.and_then(|e| e.anomaly.as_ref()).map(|a| json!({
                "message": a.message,
                "ops": ops_json(&a.ops),
            })),
        })
    }

    /// When the budget ran out: the first key left undecided.
    fn undecided_key(&self) -> Option<&str> {
        let key = self.keys.iter().find(|key| key.verdict == Verdict::Unknown);
        key.filter(|_| self.verdict == Verdict::Unknown)
            .map(|key| key.key.as_str())
    }
}

/// A person reads the tail of the prefix; the full one is in `to_json`.
const PREFIX_SHOWN: usize = 20;

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.verdict)?;
        let ops: usize = self.keys.iter().map(|key| key.ops).sum();
        writeln!(
            f,
            "{} of {} keys checked, {ops} operations, {} search steps",
            self.keys_checked(),
            self.keys.len(),
            self.steps()
        )?;
        if let Some(key) = self.undecided_key() {
            let limit = self.budget_exhausted.map_or("search", super::Limit::as_str);
            writeln!(f, "the {limit} budget ran out on key {}", json!(key))?;
        }
        match &self.explanation {
            Some(explanation) => write!(f, "{explanation}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(anomaly) = &self.anomaly {
            writeln!(
                f,
                "key {}: no order of its operations can explain this: {}",
                json!(self.key),
                anomaly.message
            )?;
            for op in &anomaly.ops {
                writeln!(f, "        {op}")?;
            }
            return Ok(());
        }
        let prefix = &self.longest_prefix;
        writeln!(
            f,
            "key {}: the longest linearizable prefix has {} operations",
            json!(self.key),
            prefix.len()
        )?;
        let skipped = prefix.len().saturating_sub(PREFIX_SHOWN);
        if skipped > 0 {
            writeln!(f, "  ... {skipped} earlier operations (see --json)")?;
        }
        for (position, op) in prefix.iter().enumerate().skip(skipped) {
            writeln!(f, "  {:>4}. {op}", position + 1)?;
        }
        writeln!(f, "state after the prefix: {}", self.state)?;
        if self.would_strand.is_empty() {
            writeln!(
                f,
                "cannot place any of these next (each contradicts that state, yet one must come next):"
            )?;
        } else {
            writeln!(f, "one of these must come next, and none can:")?;
            writeln!(f, "  contradicting that state:")?;
        }
        for op in &self.cannot_place {
            writeln!(f, "        {op}")?;
        }
        if !self.would_strand.is_empty() {
            writeln!(
                f,
                "  fitting that state, but leaving a read due soon unable to see what it saw:"
            )?;
            for op in &self.would_strand {
                writeln!(f, "        {op}")?;
            }
        }
        Ok(())
    }
}
