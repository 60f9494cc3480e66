//! What the key-value model can settle about one key's history without a
//! search: anomalies that refute it outright, and pending writes that can be
//! left out because nothing could have seen them.
//!
//! Both rest on one over-approximation of the values a key can hold. A key's
//! value only ever comes from its history: it is absent, or some put or cas
//! wrote it (its base), followed by zero or more appends, each appending its
//! own value (a failed one, told "error", appends ""); an append to an absent
//! key starts from "". So every value a linearization can produce is
//! `b + a1 + ... + ak` with `b` the value of a
//! put or of a cas that may have swapped (or "" with k >= 1) and each `ai` the
//! value of an append. Allowing any append any number of times, in any order,
//! only makes the set larger: a value outside it is produced by no
//! linearization at all, which is what a refutation needs to be certain.

use std::collections::{BTreeMap, BTreeSet};

use super::{Anomaly, Lookahead};
use crate::history::{Op, Operation, Output};

/// Looked up only; its keys reach results only through ordered sets (`BTreeSet`).
type Map<K, V> = crate::checker::LookupMap<K, V>;

/// The values written on one key, each with the earliest call that writes it
/// and how many operations write it.
struct Writes<'a> {
    /// put values and the values of cas ops that may have swapped.
    bases: Map<&'a [u8], Written>,
    base_lengths: BTreeSet<usize>,
    /// append values.
    pieces: Map<&'a [u8], Written>,
    piece_lengths: BTreeSet<usize>,
}

#[derive(Clone, Copy)]
struct Written {
    call: u64,
    writers: u32,
}

/// A value one operation alone writes, as a base (put, cas) or as a piece
/// (append): `Writes::can_produce_without` leaves it out.
#[derive(Clone, Copy, PartialEq)]
struct Sole<'a> {
    base: bool,
    value: &'a [u8],
}

impl<'a> Writes<'a> {
    fn new(ops: &[&'a Operation]) -> Self {
        let mut writes = Writes {
            bases: Map::default(),
            base_lengths: BTreeSet::new(),
            pieces: Map::default(),
            piece_lengths: BTreeSet::new(),
        };
        for op in ops {
            let (map, lengths, value) = match &op.op {
                Op::Put { value } => (&mut writes.bases, &mut writes.base_lengths, value),
                Op::Cas { value, .. } if op.output != Output::Swapped(false) => {
                    (&mut writes.bases, &mut writes.base_lengths, value)
                }
                Op::Append { value } => (&mut writes.pieces, &mut writes.piece_lengths, value),
                Op::Get | Op::Cas { .. } => continue,
            };
            let value = appended(op).unwrap_or(value.as_str());
            let written = map.entry(value.as_bytes()).or_insert(Written {
                call: op.call,
                writers: 0,
            });
            written.call = written.call.min(op.call);
            written.writers += 1;
            lengths.insert(value.len());
        }
        writes
    }

    /// Could the key hold `value` at a point no later than `deadline`? Only
    /// operations called by then can have contributed (an operation called
    /// after another returned is linearized after it). False means certainly not.
    fn can_produce(&self, value: &str, deadline: u64) -> bool {
        self.can_produce_without(value, deadline, None)
    }

    /// `op`'s value as a `Sole` write, if no other operation writes it the
    /// same way (base or piece) and it is not empty.
    fn sole(&self, op: &'a Operation) -> Option<Sole<'a>> {
        let (base, value) = match &op.op {
            Op::Put { value } => (true, value),
            Op::Cas { value, .. } if op.output != Output::Swapped(false) => (true, value),
            Op::Append { value } if appended(op).is_none() => (false, value),
            Op::Get | Op::Cas { .. } | Op::Append { .. } => return None,
        };
        let value = value.as_bytes();
        let map = if base { &self.bases } else { &self.pieces };
        let alone = map.get(value).is_some_and(|written| written.writers == 1);
        (alone && !value.is_empty()).then_some(Sole { base, value })
    }

    /// `can_produce`, but for the writes of every operation other than the one
    /// that alone writes `without`.
    fn can_produce_without(&self, value: &str, deadline: u64, without: Option<Sole>) -> bool {
        let value = value.as_bytes();
        let written = |base: bool, bytes: &[u8]| {
            let map = if base { &self.bases } else { &self.pieces };
            let left_out = without == Some(Sole { base, value: bytes });
            !left_out
                && map
                    .get(bytes)
                    .is_some_and(|written| written.call <= deadline)
        };
        // reachable[i]: value[..i] is a base followed by appends (i > 0 or a
        // base ""), or appends alone with at least one of them.
        let mut reachable = vec![false; value.len() + 1];
        for &length in self.base_lengths.range(..=value.len()) {
            if written(true, &value[..length]) {
                reachable[length] = true;
            }
        }
        for &length in self.piece_lengths.range(..=value.len()) {
            if written(false, &value[..length]) {
                reachable[length] = true;
            }
        }
        for start in 0..value.len() {
            if !reachable[start] {
                continue;
            }
            let rest = &value[start..];
            for &length in self.piece_lengths.range(1..=rest.len()) {
                if written(false, &rest[..length]) {
                    reachable[start + length] = true;
                }
            }
        }
        reachable[value.len()]
    }
}

/// A failed append (told "error") appends nothing: it is an append of "" (it
/// still creates an absent key, empty). `None` for any other operation.
fn appended(op: &Operation) -> Option<&'static str> {
    (matches!(op.op, Op::Append { .. }) && op.output == Output::Error).then_some("")
}

/// The first anomaly (by return time) among one key's operations that no
/// linearization can explain, if any:
/// - a completed get returning a value no write on the key could have produced
///   by the time it returned;
/// - a completed cas that swapped although its expected value could not have
///   been produced by then;
/// - a completed get returning "absent" although a write had completed before
///   it was called (no operation makes a present key absent again);
/// - a completed get, or a cas told it swapped, that read a value the key
///   could not hold again after a write that completed before it was called
///   (`stale_reads`);
/// - a completed get, or a cas told it swapped, that read a value without an
///   append that returned before it was called, when nothing that may come
///   between them could have removed the append (`lost_appends`).
pub(super) fn refute(ops: &[&Operation]) -> Option<Anomaly> {
    let writes = Writes::new(ops);
    // The write that completed first: every state after it is present.
    let first_write = ops
        .iter()
        .filter(|op| match op.op {
            Op::Put { .. } | Op::Append { .. } => op.is_completed(),
            Op::Cas { .. } => op.output == Output::Swapped(true) && op.is_completed(),
            Op::Get => false,
        })
        .min_by_key(|op| (op.ret, op.call, op.client));
    let mut found: Vec<Anomaly> = Vec::new();
    for op in ops {
        let Some(ret) = op.ret else { continue };
        match (&op.op, &op.output) {
            (Op::Get, Output::Value(Some(read))) if !writes.can_produce(read, ret) => {
                found.push(Anomaly {
                    message: format!(
                        "a get returned {}, a value no put, cas or appends on this key \
                         called before it returned could have produced",
                        serde_json::Value::from(read.as_str())
                    ),
                    ops: vec![(*op).clone()],
                });
            }
            (Op::Cas { expected, .. }, Output::Swapped(true))
                if !writes.can_produce(expected, ret) =>
            {
                found.push(Anomaly {
                    message: format!(
                        "a cas swapped although its expected value {} is one no put, cas \
                         or appends on this key called before it returned could have produced",
                        serde_json::Value::from(expected.as_str())
                    ),
                    ops: vec![(*op).clone()],
                });
            }
            (Op::Get, Output::Value(None)) => {
                if let Some(write) = first_write.filter(|w| w.ret.is_some_and(|r| r < op.call)) {
                    found.push(Anomaly {
                        message: "a get returned absent (null) after a write to the key had \
                                  completed (nothing makes a key absent again)"
                            .to_string(),
                        ops: vec![(*write).clone(), (*op).clone()],
                    });
                }
            }
            _ => {}
        }
    }
    found.extend(stale_reads(ops));
    found.extend(lost_appends(ops));
    first_by_return(found)
}

/// The anomaly whose impossible operation returned first.
fn first_by_return(found: Vec<Anomaly>) -> Option<Anomaly> {
    let last = |anomaly: &Anomaly| {
        let op = anomaly.ops.last().expect("an anomaly names its operation");
        (op.ret, op.call, op.client)
    };
    found.into_iter().min_by_key(last)
}

/// See `Model::refute_late`: the first (by return) completed get, or cas told
/// it swapped, whose value could only start with writes that returned before
/// an operation the value shows came before them (`early_bases`).
pub(super) fn refute_late(ops: &[&Operation]) -> Option<Anomaly> {
    first_by_return(early_bases(ops))
}

/// Completed reads (a get that read a value, a cas told it swapped: it read
/// its expected value) of a value the key cannot hold again by then: a write
/// `w` that sets the whole value (a put, or a cas told it swapped) returned
/// before the read was called, and nothing that may come between them could
/// make the key hold the value read.
///
/// Why this is sound. In any linearization `w` precedes the read `r` (real
/// time). Let `b` be the last operation from `w` on, before `r`, that sets the
/// whole value: `w` itself, or a put or a cas that may swap (not told false)
/// linearized after `w`, so not one that returned before `w` was called, and
/// before `r`, so not one called after `r` returned. The key holds `b`'s value
/// followed by the appends linearized after `b` and before `r`, which are as
/// constrained in time (after `w`, before `r`). So the value read is `b`'s
/// value followed by zero or more such appends (any of them, any number of
/// times, only makes the set larger); when it is not, no linearization
/// explains the read. The key is present from `w` on, so appends alone (from
/// an absent key) cannot produce it. Of all the writes `w` that qualify, the
/// one called last is tried (the later `w` is called, the fewer operations can
/// follow it): trying one is enough for soundness, as any `w` gives a proof.
fn stale_reads(ops: &[&Operation]) -> Vec<Anomaly> {
    type Intervals = Vec<(u64, Option<u64>)>;
    let mut bases: Map<&[u8], Intervals> = Map::default();
    let mut pieces: Map<&[u8], Intervals> = Map::default();
    // Completed writes that set the whole value, by return.
    let mut setters: Vec<(u64, u64, usize)> = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let interval = (op.call, op.ret);
        match &op.op {
            Op::Put { value } => bases.entry(value.as_bytes()).or_default().push(interval),
            Op::Cas { value, .. } if op.output != Output::Swapped(false) => {
                bases.entry(value.as_bytes()).or_default().push(interval)
            }
            Op::Append { value } => pieces.entry(value.as_bytes()).or_default().push(interval),
            Op::Get | Op::Cas { .. } => {}
        }
        let sets = matches!(
            (&op.op, &op.output),
            (Op::Put { .. }, _) | (Op::Cas { .. }, Output::Swapped(true))
        );
        if let (true, Some(ret)) = (sets, op.ret) {
            setters.push((ret, op.call, index));
        }
    }
    if setters.is_empty() {
        return Vec::new();
    }
    setters.sort_unstable();
    // latest[i]: of the first i + 1 setters by return, the one called last.
    let mut latest: Vec<usize> = Vec::with_capacity(setters.len());
    for (i, setter) in setters.iter().enumerate() {
        let best = match latest.last() {
            Some(&best) if setters[best].1 >= setter.1 => best,
            _ => i,
        };
        latest.push(best);
    }
    let base_lengths: BTreeSet<usize> = bases.keys().map(|value| value.len()).collect();
    let piece_lengths: BTreeSet<usize> = pieces.keys().map(|value| value.len()).collect();
    let mut found = Vec::new();
    for op in ops {
        let (Some((read, what)), Some(ret)) = (completed_read(op), op.ret) else {
            continue;
        };
        let before = setters.partition_point(|setter| setter.0 < op.call);
        let Some(&best) = before.checked_sub(1).map(|last| &latest[last]) else {
            continue;
        };
        let writer = ops[setters[best].2];
        let after = writer.call;
        let between = |intervals: &Intervals| {
            intervals
                .iter()
                .any(|&(call, end)| call <= ret && end.is_none_or(|end| end >= after))
        };
        let written = match &writer.op {
            Op::Put { value } | Op::Cas { value, .. } => value.as_bytes(),
            Op::Get | Op::Append { .. } => unreachable!("a setter writes a whole value"),
        };
        let value = read.as_bytes();
        let mut reachable = vec![false; value.len() + 1];
        if value.starts_with(written) {
            reachable[written.len()] = true;
        }
        for &length in base_lengths.range(..=value.len()) {
            if bases.get(&value[..length]).is_some_and(between) {
                reachable[length] = true;
            }
        }
        for start in 0..value.len() {
            if !reachable[start] {
                continue;
            }
            let rest = &value[start..];
            for &length in piece_lengths.range(1..=rest.len()) {
                if pieces.get(&rest[..length]).is_some_and(between) {
                    reachable[start + length] = true;
                }
            }
        }
        if !reachable[value.len()] {
            found.push(Anomaly {
                message: format!(
                    "{what} {}, a value the key could not hold by then: a write of {} \
                     completed before it was called, and no put, cas or appends that may \
                     come between them could make the key hold it",
                    serde_json::Value::from(read),
                    serde_json::Value::from(String::from_utf8_lossy(written).as_ref()),
                ),
                ops: vec![writer.clone(), (*op).clone()],
            });
        }
    }
    found
}

/// How many of the appends that returned last before a read was called
/// `lost_appends` tries: the later an append, the fewer writes can come
/// between it and the read.
const LOST_APPENDS_TRIED: usize = 4;

/// Completed reads (a get that read a value, a cas told it swapped: it read
/// its expected value) that miss an append: an append `a` returned before the
/// read `r` was called, its value does not occur in the value read, and no put
/// or cas that may swap and whose value starts the value read can come
/// between them.
///
/// Why this is sound. In any linearization `a` precedes `r` (real time). Right
/// after `a` the key holds some value ending with `a`'s; appends keep it in
/// the value, and only an operation that sets the whole value (a put, or a cas
/// that swaps) can take it out. Suppose the value read lacks it: then some
/// such operation comes after `a` and before `r`; the last one, `b`, wrote
/// the start of the value read (the key holds `b`'s value followed by
/// appends). `b` after `a` means `b` did not return before `a` was called;
/// `b` before `r` means it was not called after `r` returned. When no
/// operation meets all that, no linearization explains the read. Only the
/// last few appends before each read are tried (`LOST_APPENDS_TRIED`): any one
/// gives a proof.
fn lost_appends(ops: &[&Operation]) -> Vec<Anomaly> {
    let mut appends: Vec<(u64, usize)> = Vec::new();
    let mut bases: Map<&[u8], Vec<usize>> = Map::default();
    for (index, op) in ops.iter().enumerate() {
        match &op.op {
            Op::Append { .. } => {
                if let Some(ret) = op.ret {
                    appends.push((ret, index));
                }
            }
            Op::Put { value } => bases.entry(value.as_bytes()).or_default().push(index),
            Op::Cas { value, .. } if op.output != Output::Swapped(false) => {
                bases.entry(value.as_bytes()).or_default().push(index)
            }
            Op::Get | Op::Cas { .. } => {}
        }
    }
    if appends.is_empty() {
        return Vec::new();
    }
    appends.sort_unstable();
    let lengths: BTreeSet<usize> = bases.keys().map(|value| value.len()).collect();
    let mut found = Vec::new();
    for op in ops {
        let (Some((read, what)), Some(ret)) = (completed_read(op), op.ret) else {
            continue;
        };
        let value = read.as_bytes();
        let before = appends.partition_point(|&(end, _)| end < op.call);
        let tried = appends[..before].iter().rev().take(LOST_APPENDS_TRIED);
        for &(_, index) in tried {
            let append = ops[index];
            let Op::Append { value: piece } = &append.op else {
                unreachable!("only appends are listed")
            };
            let piece = appended(append).unwrap_or(piece.as_str()).as_bytes();
            if piece.is_empty() || value.windows(piece.len()).any(|window| window == piece) {
                continue;
            }
            let removable = lengths
                .range(..=value.len())
                .filter_map(|&length| bases.get(&value[..length]))
                .flatten()
                .any(|&base| {
                    let base = ops[base];
                    base.call <= ret && base.ret.is_none_or(|end| end >= append.call)
                });
            if !removable {
                found.push(Anomaly {
                    message: format!(
                        "{what} {}, without the value {} an append had added before it was                          called, and no put or cas that may come between them could have                          removed it",
                        serde_json::Value::from(read),
                        serde_json::Value::from(String::from_utf8_lossy(piece).as_ref()),
                    ),
                    ops: vec![append.clone(), (*op).clone()],
                });
                break;
            }
        }
    }
    found
}

/// The longest value after a base that `EarlyBases::appends_shown_after`
/// reads precedences from: its cost grows with the length.
const SHOWN_REST_MAX: usize = 4096;

/// How many operations (in call order) `early_bases` looks at, after a base
/// returned, for one that must come before it: a bound on its cost per read.
const EARLY_BASE_SCAN: usize = 256;

/// Completed reads (a get that read a value `v`, a cas told it swapped: it
/// read its expected value `v`) each of whose possible bases comes before an
/// operation that must precede it.
///
/// Why this is sound. Take a linearization, and in it a completed setter
/// (a put, or a cas told it swapped) that returned before the read `r` was
/// called: it precedes `r`, so some operation that sets the whole value
/// precedes `r`; let `b` be the last one. Then `b` is a put or a cas that may
/// swap, not called after `r` returned, and its value starts `v`: from `b`
/// to `r` only appends change the key, so every state there is a prefix of
/// `v`. Now take an operation `x` that returned before `r` was called (so it
/// precedes `r`) and that cannot lie between `b` and `r`: a get that read
/// absent or a value that is not a prefix of `v`, a put or a cas told it
/// swapped (it would be a later setter), or an append whose value does not
/// occur in `v` (from `b` on, `v` keeps every append's value). So `x`
/// precedes `b`. A candidate `b` is excluded when it also follows `x`: it
/// returned before `x` was called, or `x` is an append that another read
/// `r2` shows came after `b` (`shows_after`). When every candidate is
/// excluded, no linearization explains `r`. Which candidates and witnesses
/// are tried only limits what is found: a witness is looked for among the
/// first `EARLY_BASE_SCAN` operations called after the candidate returned,
/// and among the last `LOST_APPENDS_TRIED` appends that returned before `r`
/// was called.
fn early_bases(ops: &[&Operation]) -> Vec<Anomaly> {
    let Some(context) = EarlyBases::new(ops) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let Some((read, what)) = completed_read(op) else {
            continue;
        };
        let candidates = context.candidates(index);
        if candidates.is_empty() {
            continue;
        }
        // Per candidate: the candidate, then its witnesses.
        let mut evidence: Vec<usize> = Vec::new();
        let every_one_excluded = candidates.iter().all(|&base| {
            let Some(witness) = context.witness(base, index) else {
                return false;
            };
            evidence.push(base);
            evidence.extend(witness);
            true
        });
        if every_one_excluded {
            let mut evidence: Vec<Operation> = evidence.iter().map(|&i| ops[i].clone()).collect();
            evidence.push((*op).clone());
            found.push(Anomaly {
                message: format!(
                    "{what} {}, a value that can only start with a write that came before \
                     an operation the value shows came before it (a read of another value, a \
                     write of a whole value, or an append it lacks)",
                    serde_json::Value::from(read),
                ),
                ops: evidence,
            });
        }
    }
    found
}

/// A completed get that read a value, or a completed cas told it swapped
/// (it read its expected value): the value, and what the op is for a person.
fn completed_read(op: &Operation) -> Option<(&str, &'static str)> {
    op.ret?;
    match (&op.op, &op.output) {
        (Op::Get, Output::Value(Some(read))) => Some((read, "a get returned")),
        (Op::Cas { expected, .. }, Output::Swapped(true)) => {
            Some((expected, "a cas swapped expecting"))
        }
        _ => None,
    }
}

/// What `early_bases` looks things up in, for one key.
struct EarlyBases<'a, 'o> {
    ops: &'a [&'o Operation],
    /// Puts and cas ops that may swap, by value.
    bases: Map<&'o [u8], Vec<usize>>,
    base_lengths: BTreeSet<usize>,
    /// Appends by value.
    pieces: Map<&'o [u8], Vec<usize>>,
    piece_lengths: BTreeSet<usize>,
    /// The first return of a completed setter.
    first_setter: u64,
    /// All operations by call, and the completed appends by return.
    by_call: Vec<usize>,
    appends_by_ret: Vec<(u64, usize)>,
    /// Per base, the completed reads it is the only candidate base of
    /// (ordered: `preceded_by` walks it).
    sole_reads: BTreeMap<usize, Vec<usize>>,
}

impl<'a, 'o> EarlyBases<'a, 'o> {
    /// `None` when no setter completed (then nothing is refuted).
    fn new(ops: &'a [&'o Operation]) -> Option<Self> {
        let mut bases: Map<&[u8], Vec<usize>> = Map::default();
        let mut pieces: Map<&[u8], Vec<usize>> = Map::default();
        let mut appends_by_ret = Vec::new();
        let mut first_setter: Option<u64> = None;
        for (index, op) in ops.iter().enumerate() {
            match (&op.op, &op.output) {
                // A failed append appends "": no piece of any value, and never one a read
                // must show.
                (Op::Cas { .. }, Output::Swapped(false)) | (Op::Get, _) => {}
                (Op::Append { .. }, _) if appended(op) == Some("") => {}
                (Op::Append { value }, _) => {
                    pieces.entry(value.as_bytes()).or_default().push(index);
                    if let Some(ret) = op.ret {
                        appends_by_ret.push((ret, index));
                    }
                }
                (Op::Put { value } | Op::Cas { value, .. }, _) => {
                    bases.entry(value.as_bytes()).or_default().push(index)
                }
            }
            if let (true, Some(ret)) = (sets_whole_value(op), op.ret) {
                first_setter = Some(first_setter.map_or(ret, |first| first.min(ret)));
            }
        }
        appends_by_ret.sort_unstable();
        let mut by_call: Vec<usize> = (0..ops.len()).collect();
        by_call.sort_by_key(|&index| (ops[index].call, index));
        let mut context = EarlyBases {
            ops,
            base_lengths: bases.keys().map(|value| value.len()).collect(),
            bases,
            piece_lengths: pieces.keys().map(|value| value.len()).collect(),
            pieces,
            first_setter: first_setter?,
            by_call,
            appends_by_ret,
            sole_reads: BTreeMap::new(),
        };
        for index in 0..ops.len() {
            if let [base] = context.candidates(index)[..] {
                context.sole_reads.entry(base).or_default().push(index);
            }
        }
        Some(context)
    }

    /// For a completed read (index) preceded by a completed setter, the
    /// operations that may be the last setter before it; empty otherwise.
    fn candidates(&self, read: usize) -> Vec<usize> {
        let op = self.ops[read];
        let (Some((value, _)), Some(ret)) = (completed_read(op), op.ret) else {
            return Vec::new();
        };
        if self.first_setter >= op.call {
            return Vec::new();
        }
        let value = value.as_bytes();
        self.base_lengths
            .range(..=value.len())
            .filter_map(|&length| self.bases.get(&value[..length]))
            .flatten()
            .copied()
            .filter(|&base| base != read && self.ops[base].call <= ret)
            .collect()
    }

    /// Operations showing that `base` cannot be the last setter before
    /// `read`: one that must precede `base` yet follows it (see
    /// `early_bases`), and the read that shows it follows, if one does.
    fn witness(&self, base: usize, read: usize) -> Option<Vec<usize>> {
        let (ops, op) = (self.ops, self.ops[read]);
        let (value, _) = completed_read(op)?;
        let value = value.as_bytes();
        let must_precede = |index: usize| {
            ops[index].ret.is_some_and(|ret| ret < op.call) && !fits_between(ops[index], value)
        };
        // Called after `base` returned.
        if let Some(after) = ops[base].ret {
            let from = self.by_call.partition_point(|&i| ops[i].call <= after);
            let found = self.by_call[from..]
                .iter()
                .take(EARLY_BASE_SCAN)
                .copied()
                .take_while(|&i| ops[i].call < op.call)
                .find(|&i| must_precede(i));
            if let Some(found) = found {
                return Some(vec![found]);
            }
        }
        // An append a read shows came after `base`.
        let before = self
            .appends_by_ret
            .partition_point(|&(ret, _)| ret < op.call);
        let reads = self.sole_reads.get(&base)?;
        self.appends_by_ret[..before]
            .iter()
            .rev()
            .take(LOST_APPENDS_TRIED)
            .map(|&(_, append)| append)
            .filter(|&append| must_precede(append))
            .find_map(|append| {
                let shown = reads.iter().find(|&&r| self.shows_after(base, append, r))?;
                Some(vec![append, *shown])
            })
    }

    /// Appends that `read`'s value shows came after `base` (as `shows_after`
    /// says, by a cheaper sufficient test). What follows `base`'s value in
    /// it, `rest`, is built from append values laid end to end; take only the
    /// placements of a value at a position that some whole building passes
    /// through (the rest before it buildable, and the rest after it). Every
    /// building covers each byte of `rest` with one placement, so when all
    /// placements covering some byte are of one append's value, and no other
    /// append has that value, every building uses that append. Reads whose
    /// `rest` is longer than `SHOWN_REST_MAX` are skipped (the cost grows
    /// with its length).
    fn appends_shown_after(&self, base: usize, read: usize) -> Vec<usize> {
        let (Some((value, _)), Op::Put { value: written } | Op::Cas { value: written, .. }) =
            (completed_read(self.ops[read]), &self.ops[base].op)
        else {
            return Vec::new();
        };
        let Some(rest) = value.as_bytes().strip_prefix(written.as_bytes()) else {
            return Vec::new();
        };
        if rest.is_empty() || rest.len() > SHOWN_REST_MAX {
            return Vec::new();
        }
        // Placements: (start, length, the one append with that value or None).
        let mut placements: Vec<(usize, usize, Option<usize>)> = Vec::new();
        for start in 0..rest.len() {
            let tail = &rest[start..];
            for &length in self.piece_lengths.range(1..=tail.len()) {
                if let Some(appends) = self.pieces.get(&tail[..length]) {
                    let only = match appends[..] {
                        [append] => Some(append),
                        _ => None,
                    };
                    placements.push((start, length, only));
                }
            }
        }
        let n = rest.len();
        let mut from_start = vec![false; n + 1];
        from_start[0] = true;
        for &(start, length, _) in &placements {
            // In order of start: every placement ending at `start` came before.
            if from_start[start] {
                from_start[start + length] = true;
            }
        }
        let mut to_end = vec![false; n + 1];
        to_end[n] = true;
        for &(start, length, _) in placements.iter().rev() {
            if to_end[start + length] {
                to_end[start] = true;
            }
        }
        if !from_start[n] {
            return Vec::new();
        }
        /// Per byte: no useful placement covers it yet, only one append's, or
        /// several (or one of a value several appends have).
        #[derive(Clone, Copy, PartialEq)]
        enum Cover {
            Free,
            One(usize),
            Many,
        }
        let mut cover = vec![Cover::Free; n];
        for &(start, length, only) in &placements {
            if !(from_start[start] && to_end[start + length]) {
                continue;
            }
            for byte in &mut cover[start..start + length] {
                *byte = match (*byte, only) {
                    (Cover::Free, Some(append)) => Cover::One(append),
                    (Cover::One(held), Some(append)) if held == append => Cover::One(append),
                    _ => Cover::Many,
                };
            }
        }
        let mut shown: Vec<usize> = cover
            .iter()
            .filter_map(|byte| match byte {
                Cover::One(append) => Some(*append),
                _ => None,
            })
            .collect();
        shown.dedup();
        shown
    }

    /// Does the completed read `read`, whose only candidate base is `base`,
    /// show that `append` came after `base`? Its value is `base`'s followed by
    /// the values of the appends between them (each at most once); when what
    /// follows `base`'s value cannot be built from the values of appends other
    /// than `append` (any of them, any number of times, which only makes more
    /// values buildable), `append` is among them.
    fn shows_after(&self, base: usize, append: usize, read: usize) -> bool {
        let Some((value, _)) = completed_read(self.ops[read]) else {
            return false;
        };
        let written = match &self.ops[base].op {
            Op::Put { value } | Op::Cas { value, .. } => value.as_bytes(),
            Op::Get | Op::Append { .. } => return false,
        };
        let Some(rest) = value.as_bytes().strip_prefix(written) else {
            return false;
        };
        let mut reachable = vec![false; rest.len() + 1];
        reachable[0] = true;
        for start in 0..rest.len() {
            if !reachable[start] {
                continue;
            }
            let tail = &rest[start..];
            for &length in self.piece_lengths.range(1..=tail.len()) {
                let others = self.pieces.get(&tail[..length]);
                if others.is_some_and(|others| others.iter().any(|&other| other != append)) {
                    reachable[start + length] = true;
                }
            }
        }
        !reachable[rest.len()]
    }
}

/// See `Model::preceded_by`: per append `x`, the base `b` that a completed
/// read shows came before it. The read's only candidate base is `b` and what
/// follows `b`'s value in the value read cannot be built without `x`'s
/// (`EarlyBases::shows_after`, whose comment says why `x` then lies between
/// `b` and the read).
pub(super) fn preceded_by(ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
    let mut preceded: Vec<Option<Vec<usize>>> = vec![None; ops.len()];
    let Some(context) = EarlyBases::new(ops) else {
        return preceded;
    };
    // Bases in index order, so the lists come out the same every time.
    for (&base, reads) in &context.sole_reads {
        for &read in reads {
            for append in context.appends_shown_after(base, read) {
                let list = preceded[append].get_or_insert_with(Vec::new);
                if !list.contains(&base) {
                    list.push(base);
                }
            }
        }
    }
    preceded
}

/// A put, or a cas told it swapped: it certainly set the whole value.
fn sets_whole_value(op: &Operation) -> bool {
    matches!(
        (&op.op, &op.output),
        (Op::Put { .. }, _) | (Op::Cas { .. }, Output::Swapped(true))
    )
}

/// Could `op` lie between the last write of a whole value and a read of
/// `value` (see `early_bases`)? False only when certainly not.
fn fits_between(op: &Operation, value: &[u8]) -> bool {
    match (&op.op, &op.output) {
        (Op::Get, Output::Value(Some(read))) => value.starts_with(read.as_bytes()),
        (Op::Get, Output::Value(None)) => false,
        _ if sets_whole_value(op) => false,
        (Op::Append { value: piece }, _) => {
            let piece = appended(op).unwrap_or(piece).as_bytes();
            piece.is_empty() || value.windows(piece.len()).any(|window| window == piece)
        }
        _ => true,
    }
}

/// Marks the pending operations of one key that can be left out of the search
/// without changing the verdict (true = leave out).
///
/// A pending cas told it did not swap changes nothing wherever it goes. A
/// pending write w (put, append, or a cas that may swap) of a non-empty value x
/// can be left out when (1) x occurs, as a substring, in no value a completed
/// get returned and in no cas's expected value, and (2) every completed cas
/// told it did not swap either returned before w was called or expects a value
/// no linearization can produce (see the module comment).
///
/// Why: take any linearization L of the history and suppose w is in it (else L
/// is one without w). Up to the next put after w (a cas cannot be the next to
/// swap: its expected value would be the current one, which contains x, so (1)
/// excludes it), every state contains x, hence: no completed get is in that
/// window (it would have returned a value containing x, or absent after a
/// write); no completed cas that swapped is (same reason); no completed cas told
/// false is, except one whose expected value no state ever equals (2). What is
/// left there are appends and pending cas ops that did not swap. Remove w and
/// those pending cas ops: the appends accept any state, the cas ops of (2) still
/// fail, the window ends at the same put (or the end), after which every state
/// is what it was. Removing operations keeps the real-time order of the rest,
/// and only pending ones were removed, so this is a linearization without w.
/// The conditions only get weaker when other operations are removed (fewer
/// values to contain x, fewer cas ops), so all marked writes can be left out
/// together. Nothing here needs the written values to be unique; unique values
/// (as the simulator's workload writes) just make (1) hold more often.
pub(super) fn needless_pending(ops: &[&Operation]) -> Vec<bool> {
    let writes = Writes::new(ops);
    // A pending write called after this meets (2).
    let failed_cas_bound = ops
        .iter()
        .filter(|op| op.is_completed() && op.output == Output::Swapped(false))
        .filter(|op| match &op.op {
            Op::Cas { expected, .. } => writes.can_produce(expected, u64::MAX),
            _ => false,
        })
        .filter_map(|op| op.ret)
        .max();
    // Per operation: a pending write meeting (2), with its non-empty value.
    let eligible: Vec<Option<&[u8]>> = ops
        .iter()
        .map(|op| {
            let meets_2 = failed_cas_bound.is_none_or(|bound| op.call > bound);
            pending_write(op).filter(|_| meets_2)
        })
        .collect();
    let candidates: BTreeSet<&[u8]> = eligible.iter().flatten().copied().collect();
    let observed = substrings_among(&candidates, &values_seen(ops));
    ops.iter()
        .zip(eligible)
        .map(|(op, eligible)| {
            if op.is_completed() {
                return false;
            }
            if matches!(op.op, Op::Cas { .. }) && op.output == Output::Swapped(false) {
                return true;
            }
            eligible.is_some_and(|value| observed.as_ref().is_some_and(|o| !o.contains(value)))
        })
        .collect()
}

/// How many reads, earliest return first, `deadlines` tries per pending
/// write: a bound on its cost. The first read showing a unique value is
/// nearly always one nothing else explains.
const DEADLINE_TRIES_MAX: usize = 4;

/// See `Model::deadlines`. A pending put, append or cas `w` whose value `x`
/// no other operation writes the same way (as a whole value, or as an
/// appended piece), and a completed read `r` (a get that read a value, or a
/// cas told it swapped, which read its expected value) returning at `t` and
/// showing a value `v` that the writes of every other operation cannot produce
/// (`Writes::can_produce_without`, an over-approximation: a value outside it
/// is produced by no linearization without `w`). Every linearization then
/// has `w` in it (a pending cas in it swapped, as nothing else writes `x`),
/// before `r`, hence before `t`: `w`'s deadline is the earliest such `t`.
/// A read is a candidate only if `x` occurs in `v` (else `v` never needs
/// `w`), found as in `needless_pending`, within the same bound on work.
pub(super) fn deadlines<'a>(ops: &[&'a Operation]) -> Vec<Option<u64>> {
    let writes = Writes::new(ops);
    let sole = |op: &'a Operation| -> Option<Sole<'a>> {
        if op.is_completed() {
            None
        } else {
            writes.sole(op)
        }
    };
    let candidates: BTreeSet<&[u8]> = ops
        .iter()
        .filter_map(|op| sole(op))
        .map(|w| w.value)
        .collect();
    if candidates.is_empty() {
        return vec![None; ops.len()];
    }
    let mut readers: Vec<(u64, &str)> = ops
        .iter()
        .filter_map(|op| Some((op.ret?, completed_read(op)?.0)))
        .collect();
    readers.sort_unstable();
    let values: Vec<&[u8]> = readers.iter().map(|(_, value)| value.as_bytes()).collect();
    let Some(shown) = occurrences(&candidates, &values) else {
        return vec![None; ops.len()];
    };
    ops.iter()
        .map(|op| {
            let write = sole(op)?;
            shown
                .get(write.value)?
                .iter()
                .map(|&reader| readers[reader])
                .filter(|&(ret, _)| ret >= op.call)
                .take(DEADLINE_TRIES_MAX)
                .find(|&(ret, value)| !writes.can_produce_without(value, ret, Some(write)))
                .map(|(ret, _)| ret)
        })
        .collect()
}

/// For `Model::tried_last`: the pending puts, appends and cas ops writing a
/// non-empty value that occurs in no completed read and no cas expectation
/// (as in `needless_pending`). Such a write is needed, if at all, only to make
/// a cas fail (see `only_before`). None when finding out costs too much.
pub(super) fn unseen_pending(ops: &[&Operation]) -> Vec<bool> {
    let candidates: BTreeSet<&[u8]> = ops.iter().filter_map(|op| pending_write(op)).collect();
    let Some(observed) = substrings_among(&candidates, &values_seen(ops)) else {
        return vec![false; ops.len()];
    };
    ops.iter()
        .map(|op| pending_write(op).is_some_and(|value| !observed.contains(value)))
        .collect()
}

/// The non-empty value a pending put, append or cas writes.
fn pending_write(op: &Operation) -> Option<&[u8]> {
    match &op.op {
        Op::Put { value } | Op::Append { value } | Op::Cas { value, .. }
            if !op.is_completed() && !value.is_empty() =>
        {
            Some(value.as_bytes())
        }
        _ => None,
    }
}

/// Values that may show what a key held: what completed gets read, and every
/// cas expectation.
fn values_seen<'a>(ops: &[&'a Operation]) -> Vec<&'a [u8]> {
    ops.iter()
        .filter_map(|op| match (&op.op, &op.output) {
            (Op::Get, Output::Value(Some(read))) if op.is_completed() => Some(read.as_bytes()),
            (Op::Cas { expected, .. }, _) => Some(expected.as_bytes()),
            _ => None,
        })
        .collect()
}

/// See `Model::only_before`. A pending put or append `w` whose value `x` is
/// not empty and occurs in no completed read and no cas expectation (as in
/// `needless_pending`) poisons the key: from `w` to the next put, every value
/// contains `x`, so no completed read fits there and every cas fails. Take a
/// linearization with `w` in it and move `w` later, to just before the first
/// completed cas told false, in that window, whose expected value is what the
/// key would hold without `w` (a critical cas); or, when there is none, drop
/// it. Between the two places the key now holds what it would without `w`:
/// appends still fit, the cas ops told false still fail (none before the
/// first critical one expects that value), and the pending cas ops that would
/// now swap failed before, so they are dropped as they changed nothing. `w` is
/// pending, so no real-time order stops it from moving later. What follows is
/// as it was. So the search need only place `w` when a completed cas told
/// false, not linearized yet, is refused by the current state: one of those
/// whose expected value the key can hold by its return (`Writes::can_produce`)
/// and that returns no earlier than `w`'s call (an earlier one precedes `w`).
pub(super) fn only_before(ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
    let writes = Writes::new(ops);
    let critical: Vec<usize> = (0..ops.len())
        .filter(|&index| {
            let op = ops[index];
            let deadline = op.ret.unwrap_or(u64::MAX);
            match (&op.op, &op.output) {
                (Op::Cas { expected, .. }, Output::Swapped(false)) => {
                    writes.can_produce(expected, deadline)
                }
                _ => false,
            }
        })
        .collect();
    // A pending put or append (a pending cas may not swap where it is needed).
    fn poisoning(op: &Operation) -> Option<&[u8]> {
        pending_write(op).filter(|_| !matches!(op.op, Op::Cas { .. }))
    }
    let candidates: BTreeSet<&[u8]> = ops.iter().filter_map(|op| poisoning(op)).collect();
    let Some(observed) = substrings_among(&candidates, &values_seen(ops)) else {
        return vec![None; ops.len()];
    };
    ops.iter()
        .map(|op| {
            let value = poisoning(op).filter(|value| !observed.contains(value))?;
            debug_assert!(!value.is_empty());
            let before = critical
                .iter()
                .copied()
                .filter(|&cas| ops[cas].ret.is_some_and(|ret| ret >= op.call))
                .collect();
            Some(before)
        })
        .collect()
}

/// See `Model::inert`: a completed cas told false whose expected value the key
/// cannot hold by its return (`Writes::can_produce`) fails in every state it
/// can be linearized in, and changes nothing.
pub(super) fn inert(ops: &[&Operation]) -> Vec<bool> {
    let writes = Writes::new(ops);
    ops.iter()
        .map(|op| match (&op.op, &op.output, op.ret) {
            (Op::Cas { expected, .. }, Output::Swapped(false), Some(ret)) => {
                !writes.can_produce(expected, ret)
            }
            _ => false,
        })
        .collect()
}

/// See `Model::read_resets`: per completed get that read a value, per
/// completed cas told it swapped (it read its expected value), and per other
/// cas that may have swapped (pending, or completed with no output: it swapped
/// only if the key held its expected value) and is in the list of one of
/// those, the puts and the
/// cas ops that may have swapped whose value is a prefix of what it read (the
/// value it saw may have started there), longest value first.
pub(super) fn read_resets(ops: &[&Operation]) -> Vec<Option<Vec<usize>>> {
    let mut bases: Map<&[u8], Vec<usize>> = Map::default();
    for (index, op) in ops.iter().enumerate() {
        match &op.op {
            Op::Put { value } => bases.entry(value.as_bytes()).or_default().push(index),
            Op::Cas { value, .. } if op.output != Output::Swapped(false) => {
                bases.entry(value.as_bytes()).or_default().push(index)
            }
            _ => {}
        }
    }
    let lengths: BTreeSet<usize> = bases.keys().map(|value| value.len()).collect();
    let prefixes_of = |read: &[u8]| -> Vec<usize> {
        lengths
            .range(..=read.len())
            .rev()
            .filter_map(|&length| bases.get(&read[..length]))
            .flatten()
            .copied()
            .collect()
    };
    let mut resets: Vec<Option<Vec<usize>>> = ops
        .iter()
        .map(|op| {
            let read = match (&op.op, &op.output) {
                (Op::Get, Output::Value(read)) if op.is_completed() => read.as_deref(),
                (Op::Cas { expected, .. }, Output::Swapped(true)) if op.is_completed() => {
                    Some(expected.as_str())
                }
                _ => return None,
            };
            Some(prefixes_of(read.unwrap_or_default().as_bytes()))
        })
        .collect();
    // Any other cas that may have swapped (pending, or told nothing) and may
    // have started what a read saw: `reachable` follows it one level deep, so
    // it needs its list (only those: a list per pending cas of a long history
    // would cost a fifth more memory for nothing).
    let followed: BTreeSet<usize> = resets
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|&reset| matches!(ops[reset].op, Op::Cas { .. }))
        .collect();
    for cas in followed {
        if let (Op::Cas { expected, .. }, None) = (&ops[cas].op, &resets[cas]) {
            resets[cas] = Some(prefixes_of(expected.as_bytes()));
        }
    }
    resets
}

/// See `Model::can_lead_to`. From a value `s`, the key later holds `s`
/// followed by appends, unless a put or a swapping cas resets it to its own
/// value (then appends follow), and nothing makes it absent again. So a read
/// of `v` from the state `Some(s)` needs `s` to be a prefix of `v` and
/// appends still to come to supply the rest of `v`; or a reset still to come,
/// called by the read's return, whose value `w` is a prefix of `v` (one of
/// `read_resets`), and appends to supply the rest of `v` after `w`. From an
/// absent key, appends alone start from "". A read of null needs an absent
/// key. A cas told it swapped read its expected value `e` (the key held
/// exactly `e` when it took effect), so it needs the same as a read of `e`.
///
/// A reset that is a cas needs the same in its turn: it swaps only from its
/// expected value `e`, reached before it, so before the read, with appends
/// and resets called by the read's return. That is asked one level deep (a
/// cas reset of a cas reset is taken to be possible), and the appends the
/// read needs and the ones `e` needs are not told apart (both only have to be
/// among those left): each of those only allows more.
pub(super) fn can_lead_to(state: &Option<String>, ahead: &dyn Lookahead) -> bool {
    let read = ahead.read();
    let seen = match (&read.op, &read.output) {
        (Op::Get, Output::Value(seen)) => seen.as_deref(),
        (Op::Cas { expected, .. }, Output::Swapped(true)) => Some(expected.as_str()),
        _ => return true,
    };
    match seen {
        Some(seen) => reachable(state, seen.as_bytes(), ahead.read_index(), ahead, 1),
        None => state.is_none(),
    }
}

/// Resets of one value asked about, at most, before the lookahead takes the
/// value as reachable: a bound on its cost per read.
const RESETS_ASKED_MAX: usize = 8;

/// Can the key come to hold `target` from `state`, for operation `of`
/// (`can_lead_to`)? `depth`: how many more cas resets to follow.
fn reachable(
    state: &Option<String>,
    target: &[u8],
    of: usize,
    ahead: &dyn Lookahead,
    depth: u32,
) -> bool {
    let base = state.as_deref().unwrap_or_default().as_bytes();
    if target
        .strip_prefix(base)
        .is_some_and(|rest| ahead.covers(rest))
    {
        return true;
    }
    for nth in 0.. {
        if nth == RESETS_ASKED_MAX {
            return true;
        }
        let Some((index, reset)) = ahead.reset(of, nth) else {
            return false;
        };
        let (value, expected) = match &reset.op {
            Op::Put { value } => (value, None),
            Op::Cas { value, expected } => (value, Some(expected)),
            _ => return true,
        };
        // Resets come longest value first, and a shorter value leaves more
        // of `target` to supply: if this one's rest is not covered, no later
        // one's is.
        let Some(rest) = target.strip_prefix(value.as_bytes()) else {
            return true;
        };
        if !ahead.covers(rest) {
            return false;
        }
        match expected {
            Some(expected) if depth > 0 => {
                if reachable(state, expected.as_bytes(), index, ahead, depth - 1) {
                    return true;
                }
            }
            _ => return true,
        }
    }
    unreachable!("the loop returns")
}

/// Most bytes hashed looking for candidates in the values seen; past it,
/// nothing is left out (the search decides alone).
const SUBSTRING_WORK_MAX: usize = 1 << 26;

/// The candidates occurring as a substring of some value in `seen`; `None`
/// when finding out would cost too much.
fn substrings_among<'a>(
    candidates: &BTreeSet<&'a [u8]>,
    seen: &[&[u8]],
) -> Option<BTreeSet<&'a [u8]>> {
    let found = occurrences(candidates, seen)?;
    Some(
        candidates
            .iter()
            .copied()
            .filter(|c| found.contains_key(c))
            .collect(),
    )
}

/// Per candidate occurring as a substring of some values in `seen`, the
/// indices of those values, in order; `None` when finding out would cost too
/// much. Looked up only.
fn occurrences<'a>(
    candidates: &BTreeSet<&'a [u8]>,
    seen: &[&[u8]],
) -> Option<Map<&'a [u8], Vec<usize>>> {
    let lengths: BTreeSet<usize> = candidates.iter().map(|value| value.len()).collect();
    let work: usize = seen
        .iter()
        .map(|value| lengths.iter().map(|&l| l * value.len()).sum::<usize>())
        .sum();
    if work > SUBSTRING_WORK_MAX {
        return None;
    }
    // Hashed: a window is looked up in O(its length), not O(log n) comparisons.
    let lookup: Map<&'a [u8], ()> = candidates.iter().map(|&value| (value, ())).collect();
    let mut found: Map<&[u8], Vec<usize>> = Map::default();
    for (index, value) in seen.iter().enumerate() {
        for &length in lengths.range(..=value.len()) {
            for window in value.windows(length) {
                if let Some((&candidate, _)) = lookup.get_key_value(window) {
                    let shown_in = found.entry(candidate).or_default();
                    if shown_in.last() != Some(&index) {
                        shown_in.push(index);
                    }
                }
            }
        }
    }
    Some(found)
}
