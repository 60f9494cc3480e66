//! One partition's search, split in time at quiescent points.
//!
//! A point in time before which every operation called has also returned cuts
//! a history in two: every linearization puts all of the operations before it
//! ahead of all of those after it. So a long history is checked a segment at a
//! time, each segment's search starting from a state the previous segment can
//! end in. The searches (and their memo caches, whose bitsets span one
//! segment) stay small however long the history runs.
//!
//! The segments are searched depth first: a segment's search pauses at each
//! state it can end in that it has not reached before, and the next segment is
//! searched from that state. Only when the later segments fail from every state
//! found so far does the search resume, to find another. So a linearizable
//! history costs about what one search without cuts would, and a segment that
//! fails from some state does not make the check start over.
//!
//! A pending operation may take effect at any time after its call, so nothing
//! after its call is cut off from it: the history from the first pending call on
//! stays one segment. When a segment can end in more than [`MAX_STARTS`]
//! states, the check starts over without cuts.

use std::collections::BTreeMap;
use std::mem;

use super::budget::Meter;
use super::search::{Lists, Outcome, Search};
use crate::checker::model::Model;
use crate::history::Operation;

/// Most states a segment may be searched from before the splitting stops.
const MAX_STARTS: usize = 64;

/// A state a segment may start in.
struct Start<'a, M: Model> {
    state: M::State,
    /// How the earlier segments reach it: into `KeySearch::links`, `None` for
    /// the initial state.
    link: Option<usize>,
    /// `None` before the search from it starts and after it finishes.
    search: Option<Search<'a, M>>,
    done: bool,
    /// Its search reached an end of the segment (so did not fail there).
    ended: bool,
}

/// One segment's linearization leading to a start state, after `prev`'s.
struct Link {
    prev: Option<usize>,
    /// Indices into `KeySearch::ops`.
    ops: Vec<usize>,
    /// Operations on the whole way, this link's included.
    depth: usize,
}

pub(super) struct KeySearch<'a, M: Model> {
    model: &'a M,
    ops: Vec<&'a Operation>,
    /// Indices into `ops`, one list per segment, in time order.
    segments: Vec<Vec<usize>>,
    /// Per segment: the states it may start in found so far, in order found.
    /// Every segment after `level` has been searched from all of its own.
    starts: Vec<Vec<Start<'a, M>>>,
    /// The segment being searched, and from which of its starts.
    level: usize,
    current: usize,
    links: Vec<Link>,
    /// The longest linearizable prefix any failed search found: the way to its
    /// start, the rest (indices into `ops`), and its length.
    longest: Option<(Option<usize>, Vec<usize>, usize)>,
    /// Bytes charged to the meter for the starts and links (each search
    /// charges its own).
    charged: u64,
    /// Whether the searches look ahead (`Search::from_state`).
    lookahead: bool,
    /// `Model::only_before` of `ops`.
    only_before: Vec<Option<Vec<usize>>>,
    /// `Model::preceded_by` of `ops` with the lookahead, else none.
    preceded_by: Vec<Option<Vec<usize>>>,
    /// `Model::refute_late` was tried on `ops` (see `try_late_refutation`).
    late_refutation_tried: bool,
}

impl<'a, M: Model> KeySearch<'a, M> {
    pub(super) fn new(model: &'a M, ops: Vec<&'a Operation>, lookahead: bool) -> Self {
        let segments = segments(&ops);
        let only_before = model.only_before(&ops);
        let preceded_by = if lookahead {
            model.preceded_by(&ops)
        } else {
            vec![None; ops.len()]
        };
        let mut search = KeySearch {
            model,
            starts: Vec::new(),
            segments,
            level: 0,
            current: 0,
            links: Vec::new(),
            longest: None,
            ops,
            charged: 0,
            lookahead,
            only_before,
            preceded_by,
            late_refutation_tried: false,
        };
        search.reset();
        search
    }

    /// Drops every search and all that was found, giving their memory back:
    /// for a key that is decided, or before starting over.
    pub(super) fn free(&mut self, meter: &mut Meter) {
        let searches = self
            .starts
            .iter()
            .flatten()
            .filter_map(|s| s.search.as_ref());
        let held: u64 = searches.map(Search::bytes).sum();
        meter.release(held + mem::take(&mut self.charged));
        self.starts.clear();
        self.links.clear();
    }

    /// Back to the first segment, from the initial state.
    fn reset(&mut self) {
        self.starts = self.segments.iter().map(|_| Vec::new()).collect();
        if let Some(first) = self.starts.first_mut() {
            first.push(Start {
                state: self.model.init(),
                link: None,
                search: None,
                done: false,
                ended: false,
            });
        }
        self.level = 0;
        self.current = 0;
        self.links.clear();
        self.longest = None;
    }

    /// True the first time only: whether to try `Model::refute_late` now.
    pub(super) fn try_late_refutation(&mut self) -> bool {
        !mem::replace(&mut self.late_refutation_tried, true)
    }

    /// The operations searched; `Outcome::NotLinearizable` indexes into them.
    pub(super) fn ops(&self) -> &[&'a Operation] {
        &self.ops
    }

    /// Searches for at most `slice` steps; `None` when undecided after them.
    pub(super) fn run(&mut self, meter: &mut Meter, slice: u64) -> Option<Outcome> {
        if self.segments.is_empty() {
            return Some(Outcome::Linearizable);
        }
        let mut left = slice;
        loop {
            if left == 0 {
                return None;
            }
            let last = self.level + 1 == self.segments.len();
            let start = &mut self.starts[self.level][self.current];
            let search = match &mut start.search {
                Some(search) => search,
                None => {
                    let segment = &self.segments[self.level];
                    let ops = segment.iter().map(|&i| self.ops[i]).collect();
                    let state = start.state.clone();
                    let lists = Lists {
                        only_before: local_lists(&self.only_before, segment),
                        preceded_by: local_lists(&self.preceded_by, segment),
                    };
                    let search = Search::from_state(self.model, ops, state, self.lookahead, lists);
                    start
                        .search
                        .insert(if last { search } else { search.enumerating() })
                }
            };
            let used = meter.used;
            let outcome = search.run(meter, left);
            left = left.saturating_sub(meter.used - used);
            match outcome? {
                Outcome::OutOfBudget => return Some(Outcome::OutOfBudget),
                Outcome::Linearizable => return Some(Outcome::Linearizable),
                Outcome::Ended => {
                    let (state, path) = search.take_end().expect("an end was reached");
                    self.starts[self.level][self.current].ended = true;
                    if !self.descend(state, path, meter) {
                        return Some(Outcome::OutOfBudget);
                    }
                }
                Outcome::NotLinearizable { prefix } => {
                    let start = &mut self.starts[self.level][self.current];
                    if let Some(search) = start.search.take() {
                        meter.release(search.bytes());
                    }
                    start.done = true;
                    // A search that reached ends failed only later on.
                    if !start.ended {
                        self.note_failure(prefix);
                    }
                    if let Some(outcome) = self.next_start() {
                        return Some(outcome);
                    }
                }
            }
            if self.starts.iter().any(|starts| starts.len() > MAX_STARTS) {
                self.stop_splitting(meter);
            }
        }
    }

    /// The current search reached `state` at the end of its segment (by `path`,
    /// indices into the segment): search the next segment from it, unless that
    /// was done already. False when the memory budget forbids keeping it.
    fn descend(&mut self, state: M::State, path: Vec<usize>, meter: &mut Meter) -> bool {
        let next = &self.starts[self.level + 1];
        if next.iter().any(|start| start.state == state) {
            return true;
        }
        let bytes = mem::size_of::<Start<M>>()
            + self.model.state_bytes(&state)
            + mem::size_of::<Link>()
            + path.len() * mem::size_of::<usize>();
        if !meter.charge(bytes as u64) {
            return false;
        }
        self.charged += bytes as u64;
        let prev = self.starts[self.level][self.current].link;
        let depth = prev.map_or(0, |index| self.links[index].depth);
        let segment = &self.segments[self.level];
        self.links.push(Link {
            prev,
            depth: depth + path.len(),
            ops: path.iter().map(|&i| segment[i]).collect(),
        });
        let link = Some(self.links.len() - 1);
        self.starts[self.level + 1].push(Start {
            state,
            link,
            search: None,
            done: false,
            ended: false,
        });
        self.level += 1;
        self.current = self.starts[self.level].len() - 1;
        true
    }

    /// The current start is done: on to another start of its segment that is
    /// not, or else back to the paused search of the segment before. `Some`
    /// when no search is left, which means the history is not linearizable.
    fn next_start(&mut self) -> Option<Outcome> {
        loop {
            let starts = &self.starts[self.level];
            if let Some(index) = starts.iter().position(|start| !start.done) {
                self.current = index;
                return None;
            }
            if self.level == 0 {
                let (link, tail, _) = self.longest.take().unwrap_or_default();
                let mut prefix = self.path(link);
                prefix.extend(tail);
                return Some(Outcome::NotLinearizable { prefix });
            }
            self.level -= 1;
        }
    }

    /// Keeps the longest prefix a failed search found (`prefix` indexes into
    /// the current segment).
    fn note_failure(&mut self, prefix: Vec<usize>) {
        let link = self.starts[self.level][self.current].link;
        let depth = link.map_or(0, |index| self.links[index].depth) + prefix.len();
        if self
            .longest
            .as_ref()
            .is_some_and(|longest| longest.2 >= depth)
        {
            return;
        }
        let segment = &self.segments[self.level];
        let tail = prefix.iter().map(|&i| segment[i]).collect();
        self.longest = Some((link, tail, depth));
    }

    /// Too many states to carry: search the whole history again, uncut.
    fn stop_splitting(&mut self, meter: &mut Meter) {
        self.free(meter);
        let all: Vec<usize> = mem::take(&mut self.segments)
            .into_iter()
            .flatten()
            .collect();
        self.segments = vec![all];
        self.reset();
    }

    /// The linearization (indices into `ops`) that `link` stands for.
    fn path(&self, mut link: Option<usize>) -> Vec<usize> {
        let mut pieces = Vec::new();
        while let Some(index) = link {
            pieces.push(&self.links[index].ops);
            link = self.links[index].prev;
        }
        pieces.into_iter().rev().flatten().copied().collect()
    }
}

/// `lists` (per operation of the partition, indices into it) for the
/// operations of `segment`, in the segment's own indices. An operation outside
/// the segment is left out: one before it is linearized before any of it, one
/// after it after all of it.
fn local_lists(lists: &[Option<Vec<usize>>], segment: &[usize]) -> Vec<Option<Vec<usize>>> {
    if segment.iter().all(|&index| lists[index].is_none()) {
        return vec![None; segment.len()];
    }
    let local: BTreeMap<usize, usize> = segment
        .iter()
        .enumerate()
        .map(|(position, &index)| (index, position))
        .collect();
    segment
        .iter()
        .map(|&index| {
            let list = lists[index].as_ref()?;
            Some(
                list.iter()
                    .filter_map(|other| local.get(other).copied())
                    .collect(),
            )
        })
        .collect()
}

/// Splits `ops` (by index) at quiescent points, each segment in call order. An
/// operation returning at the tick another is called counts as concurrent with
/// it, and a pending one as returning never.
fn segments(ops: &[&Operation]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].call, i));
    let mut segments: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut horizon = 0u64;
    for i in order {
        let op = ops[i];
        if !current.is_empty() && horizon < op.call {
            segments.push(mem::take(&mut current));
        }
        current.push(i);
        horizon = horizon.max(op.ret.unwrap_or(u64::MAX));
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::parse_history;

    #[test]
    fn cuts_where_nothing_is_in_flight() {
        let ops = parse_history(
            r#"{"client":1,"op":"put","key":"k","value":"a","call":0,"return":5}
{"client":2,"op":"put","key":"k","value":"b","call":3,"return":9}
{"client":1,"op":"put","key":"k","value":"c","call":10,"return":12}
{"client":2,"op":"put","key":"k","value":"d","call":12,"return":14}
{"client":3,"op":"put","key":"k","value":"e","call":20,"return":null}
{"client":1,"op":"put","key":"k","value":"f","call":30,"return":31}"#,
        )
        .unwrap();
        let refs: Vec<&Operation> = ops.iter().collect();
        assert_eq!(segments(&refs), [vec![0, 1], vec![2, 3], vec![4, 5]]);
    }
}
