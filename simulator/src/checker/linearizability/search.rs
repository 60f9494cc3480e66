//! The Wing–Gong–Lowe search (as in Porcupine) over one partition of a history.
//!
//! Walk the events from the start: at a call, try to linearize that operation
//! next (the model must accept its output); if the resulting (linearized set,
//! state) pair is new, lift it out and start again from the first event. At a
//! return, the operation returning there cannot be passed over, so undo the most
//! recent choice and try the event after it. The history is linearizable once
//! every completed operation is linearized.
//!
//! Pending operations (no reply) have a call event but no return event: nothing
//! ever forces them in, so the search may linearize them anywhere after their
//! call or leave them out, which is exactly "took effect later, or never".

use std::mem;

use super::budget::Meter;
use super::cache::{state_key, Cache, OutOfMemory};
use super::entries::{EntryList, Event};
use super::supply::Supply;
use super::Bitset;
use crate::checker::model::{Lookahead, Model};
use crate::history::Operation;

pub(super) enum Outcome {
    Linearizable,
    /// Carries the longest linearizable prefix seen (indices into the searched
    /// slice, in linearization order): the search could extend it no further.
    NotLinearizable {
        prefix: Vec<usize>,
    },
    OutOfBudget,
    /// Enumerating (see `Search::enumerate`): reached an end state not reached
    /// before; `take_end` gives it. Running on resumes the enumeration.
    Ended,
}

/// One choice on the search stack: the call lifted, and the state before it.
struct Frame<S> {
    call: usize,
    op: usize,
    /// A read placed as soon as it fit: no alternative to it needs trying.
    forced: bool,
    /// The state before it, with its key (`state_key`); `None` for a forced
    /// read, which changed nothing. The stack holds the only copies of the
    /// states it passed through: the memo keeps their keys alone.
    before: Option<(S, u128)>,
}

enum Try {
    Placed,
    /// The model refused it, or the resulting point was explored already.
    Refused,
    /// The current point itself is known to fail.
    DeadEnd,
    /// The memory budget forbade remembering the new point.
    OutOfMemory,
}

/// A search that can be run a slice at a time, so that the partitions of a
/// history take turns and an easy violation in one is not stuck behind a hard
/// search in another (Porcupine runs partitions in parallel for this).
pub(super) struct Search<'a, M: Model> {
    model: &'a M,
    ops: Vec<&'a Operation>,
    /// The event to look at next.
    entry: Option<usize>,
    /// Per operation: the model says it never changes the state.
    read_only: Vec<bool>,
    list: EntryList,
    linearized: Bitset,
    cache: Cache,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    /// `state_key(&state)`.
    key: u128,
    /// Heap bytes of the states on the stack (`Model::state_bytes` beyond the
    /// inline part, which the fixed part counts), and the most of it charged
    /// to the meter so far (charged as it grows, kept until the search ends).
    stack_heap: u64,
    stack_heap_charged: u64,
    /// For a pending operation, the pending one just before it (in call order)
    /// with the same input and output: the two are interchangeable, so only the
    /// earlier is ever tried first. Cuts the orders of k twins from k! to 1.
    twin_before: Vec<Option<usize>>,
    /// For a completed operation, the completed one with the same input and
    /// output that returns just before it (by return, then index), when
    /// neither has precedences (`preceded_by`): see `completed_twins`.
    twin_returned_before: Vec<Option<usize>>,
    /// Completed operations not yet linearized; zero means success.
    completed_left: usize,
    /// The longest stack seen (its operations), as of the last pop: see
    /// `note_longest`.
    longest: Vec<usize>,
    /// How many frames at the bottom of the stack `longest` starts with.
    longest_agrees: usize,
    /// When set, the search does not stop at the first linearization: it
    /// pauses at each state it reaches with every completed operation
    /// linearized (an end) for the first time, and can go on from there through
    /// every point (the memo cache still prunes repeats), so that it finds every
    /// end state. Once all are found it answers `NotLinearizable`.
    enumerate: Option<Ends<M::State>>,
    /// Bytes charged to the meter for everything but the cache (which charges
    /// its own); zero until the first `run` charges the fixed part.
    charged: u64,
    /// Per completed read: `Model::read_resets`; all `None` without lookahead.
    resets: Vec<Option<Vec<usize>>>,
    /// Per pending operation: `Model::only_before`, each list in call
    /// order (by `call_node`).
    only_before: Vec<Option<Vec<usize>>>,
    /// Per operation: the node of its call event in `list`.
    call_node: Vec<usize>,
    /// Per operation: it is in some `only_before` list.
    needed_before: Vec<bool>,
    /// The operations of `needed_before` whose calls are left in the list
    /// ahead of its first return and that the current state refuses: the
    /// only ones a pending `only_before` operation may be placed for here.
    /// `None` when not known since the list or the state last changed (it is
    /// the same for every call one walk from the front visits, so it is found
    /// once per walk, not once per pending call).
    refusing: Option<Vec<usize>>,
    /// The first return event left in `list` (`EntryList::first_return`), or
    /// `None` when not known since the list last changed.
    front_return: Option<usize>,
    /// Per operation: `Model::preceded_by` (all `None` without lookahead).
    preceded_by: Vec<Option<Vec<usize>>>,
    /// What the operations not linearized can still add before each read the
    /// lookahead asks about (`None` without lookahead, or when the model's
    /// operations add no tokens). Boxed: a search sits inline in every start
    /// of a segment (`segments.rs`), and the table's fixed part is 300 bytes.
    supply: Option<Box<Supply>>,
}

/// Lists per operation of a segment, in the segment's indices, that the
/// search needs from the whole partition (see `Search::from_state`).
pub(super) struct Lists {
    /// `Model::only_before`.
    pub(super) only_before: Vec<Option<Vec<usize>>>,
    /// `Model::preceded_by`, with the lookahead; else all `None`.
    pub(super) preceded_by: Vec<Option<Vec<usize>>>,
}

/// How many events from the front of the list the lookahead reads at most: a
/// bound on its cost per step. The reads nearest the front are the ones a
/// wrong placement dooms soonest.
const LOOKAHEAD_EVENTS: usize = 32;

/// The end states an enumerating search reached.
struct Ends<S> {
    /// Their keys (`state_key`): two ends share one only by a collision of
    /// 128-bit hashes, the memo's own risk (see `cache.rs`).
    seen: Vec<u128>,
    /// The newest, not yet taken: with the linearization that reached it.
    new: Option<(S, Vec<usize>)>,
}

impl<'a, M: Model> Search<'a, M> {
    /// A search whose linearizations start in `start` instead of the initial
    /// state; with `lookahead`, it prunes a placement after which a read due
    /// soon can no longer see what it saw (`Model::can_lead_to`).
    /// `lists` are `Model::only_before` and `Model::preceded_by` of the whole
    /// partition, in the indices of `ops` (they cannot be computed from a
    /// segment alone: which values the key can hold depends on what came
    /// before); with the lookahead, the search places nothing before what
    /// precedes it.
    pub(super) fn from_state(
        model: &'a M,
        ops: Vec<&'a Operation>,
        start: M::State,
        lookahead: bool,
        lists: Lists,
    ) -> Self {
        let Lists {
            only_before,
            preceded_by,
        } = lists;
        debug_assert_eq!(ops.len(), only_before.len());
        debug_assert_eq!(ops.len(), preceded_by.len());
        let tried_last = model.tried_last(&ops);
        let resets = if lookahead {
            resets_in_time(model.read_resets(&ops), &ops)
        } else {
            vec![None; ops.len()]
        };
        let supply = lookahead
            .then(|| {
                let asked: Vec<bool> = resets.iter().map(Option::is_some).collect();
                Supply::new(&ops, &model.tokens(&ops), &asked)
            })
            .flatten()
            .map(Box::new);
        let list = EntryList::new(&ops, &tried_last);
        let call_node = list.call_nodes(ops.len());
        let mut only_before = only_before;
        let mut needed_before = vec![false; ops.len()];
        for before in only_before.iter_mut().flatten() {
            before.sort_unstable_by_key(|&other| call_node[other]);
            for &other in before.iter() {
                needed_before[other] = true;
            }
        }
        Search {
            call_node,
            needed_before,
            refusing: None,
            front_return: None,
            model,
            entry: list.start(),
            read_only: ops.iter().map(|op| model.is_read_only(&op.op)).collect(),
            list,
            linearized: Bitset::new(ops.len()),
            cache: Cache::new(),
            stack: Vec::new(),
            key: state_key(&start),
            state: start,
            stack_heap: 0,
            stack_heap_charged: 0,
            completed_left: ops.iter().filter(|op| op.is_completed()).count(),
            twin_before: pending_twins(&ops),
            twin_returned_before: completed_twins(&ops, &preceded_by),
            resets,
            supply,
            only_before,
            preceded_by,
            longest: Vec::new(),
            longest_agrees: 0,
            ops,
            enumerate: None,
            charged: 0,
        }
    }

    /// Bytes this search holds, as charged to the meter: what to release when
    /// it is dropped.
    pub(super) fn bytes(&self) -> u64 {
        self.charged + self.cache.bytes() as u64
    }

    /// What the search holds from the start: the event list, the set, and per
    /// operation its entry in the side tables and the most the stack and the
    /// longest prefix can take (counted in full at once, so that they never
    /// need charging as they grow).
    fn fixed_bytes(&self) -> u64 {
        let per_op = mem::size_of::<&Operation>()
            + mem::size_of::<bool>()
            + mem::size_of::<Option<usize>>()
            + mem::size_of::<Frame<M::State>>()
            + mem::size_of::<usize>();
        let state = self.model.state_bytes(&self.state);
        let lists = |lists: &[Option<Vec<usize>>]| {
            let entries: usize = lists.iter().flatten().map(Vec::len).sum();
            mem::size_of_val(lists) + entries * mem::size_of::<usize>()
        };
        let resets = lists(&self.resets) + lists(&self.only_before) + lists(&self.preceded_by);
        let headers = Cache::headers_bytes(self.ops.len());
        let supply = self.supply.as_ref().map_or(0, |supply| supply.bytes());
        (supply
            + self.list.bytes()
            + self.linearized.bytes()
            + self.ops.len() * per_op
            + state
            + resets
            + headers) as u64
    }

    /// Turns this (fresh) search into one that enumerates the end states (see
    /// `Search::enumerate`).
    pub(super) fn enumerating(mut self) -> Self {
        debug_assert!(self.stack.is_empty());
        self.enumerate = Some(Ends {
            seen: Vec::new(),
            new: None,
        });
        self
    }

    /// After `Outcome::Ended`: the end state and the linearization that
    /// reached it (indices into the searched slice).
    pub(super) fn take_end(&mut self) -> Option<(M::State, Vec<usize>)> {
        self.enumerate.as_mut()?.new.take()
    }

    /// When enumerating and every completed operation is linearized: records
    /// the current state; true when it is reached for the first time.
    fn record_end(&mut self) -> bool {
        let Some(ends) = self.enumerate.as_mut() else {
            return false;
        };
        if self.completed_left != 0 || ends.seen.contains(&self.key) {
            return false;
        }
        ends.seen.push(self.key);
        let path = self.stack.iter().map(|frame| frame.op).collect();
        ends.new = Some((self.state.clone(), path));
        true
    }

    /// Searches for at most `slice` steps; `None` when undecided after them.
    pub(super) fn run(&mut self, meter: &mut Meter, slice: u64) -> Option<Outcome> {
        if self.charged == 0 {
            let fixed = self.fixed_bytes();
            if !meter.charge(fixed) {
                return Some(Outcome::OutOfBudget);
            }
            self.charged = fixed;
        }
        let enumerating = self.enumerate.is_some();
        if enumerating
            && self.stack.is_empty()
            && self.entry == self.list.start()
            && self.record_end()
        {
            // Nothing to linearize: the start is an end.
            return Some(Outcome::Ended);
        }
        for _ in 0..slice {
            if self.completed_left == 0 && !enumerating {
                return Some(Outcome::Linearizable);
            }
            if !meter.tick() {
                return Some(Outcome::OutOfBudget);
            }
            if let Some(outcome) = self.step(meter) {
                return Some(outcome);
            }
        }
        (self.completed_left == 0 && !enumerating).then_some(Outcome::Linearizable)
    }

    /// Visits one event; `Some` when that decides the search.
    fn step(&mut self, meter: &mut Meter) -> Option<Outcome> {
        let mut entry = self.entry;
        if let Some(node) = entry {
            if let Event::Return(_) = self.list.event(node) {
                // The completed calls ahead of the first return are all
                // tried: now the pending ones ahead of it.
                self.front_return = Some(node);
                entry = self.list.first_last();
            }
        }
        let next = match entry.map(|node| (node, self.list.event(node))) {
            Some((node, Event::Call(op))) if self.may_go_next(node) => {
                match self.try_linearize(node, op, meter) {
                    Try::OutOfMemory => return Some(Outcome::OutOfBudget),
                    Try::Placed => {
                        if self.record_end() {
                            self.entry = self.list.start();
                            return Some(Outcome::Ended);
                        }
                        Some(self.list.start())
                    }
                    Try::Refused => Some(self.list.after(node)),
                    Try::DeadEnd => self.backtrack(),
                }
            }
            // Every call that may go next was tried.
            _ => self.backtrack(),
        };
        match next {
            Some(entry) => self.entry = entry,
            None => {
                let prefix = mem::take(&mut self.longest);
                return Some(Outcome::NotLinearizable { prefix });
            }
        }
        None
    }

    /// Whether the call at `node`, reached walking from the front, may be
    /// linearized next: a call on the main list, reached before any return,
    /// may; a call tried last only if it comes before the first return left
    /// (nodes are numbered in time order).
    fn may_go_next(&mut self, node: usize) -> bool {
        if !self.list.is_last(node) {
            return true;
        }
        let list = &self.list;
        node < *self.front_return.get_or_insert_with(|| list.first_return())
    }

    /// Linearizes `op` next if the model accepts it and the pair is unexplored.
    fn try_linearize(&mut self, call: usize, op: usize, meter: &mut Meter) -> Try {
        let operation = self.ops[op];
        if let Some(twin) = self.twin_returned_before[op] {
            // Its twin may go next too: only the twin is tried here (see
            // `completed_twins`).
            let list = &self.list;
            let front = *self.front_return.get_or_insert_with(|| list.first_return());
            if !self.linearized.contains(twin) && self.call_node[twin] < front {
                return Try::Refused;
            }
        }
        if let Some(twin) = self.twin_before[op] {
            if !self.linearized.contains(twin) {
                return Try::Refused;
            }
        }
        if let Some(first) = &self.preceded_by[op] {
            if first.iter().any(|&other| !self.linearized.contains(other)) {
                return Try::Refused;
            }
        }
        let state = &self.state;
        if let Some(before) = &self.only_before[op] {
            // `op` need only go right before one of `before` refused here
            // (`Model::only_before`), so that one must be placeable right
            // after it: its call must come before the first return left in
            // the list (every operation that returned before it was called
            // precedes it). `op` is pending, so placing it lifts no return:
            // what is placeable after it is what is placeable now.
            let refusing = self.refusing.get_or_insert_with(|| {
                refusing_ahead(
                    &self.list,
                    self.model,
                    &self.ops,
                    &self.needed_before,
                    state,
                )
            });
            let call_node = &self.call_node;
            let needed = refusing.iter().any(|&other| {
                before
                    .binary_search_by_key(&call_node[other], |&b| call_node[b])
                    .is_ok()
            });
            if !needed {
                return Try::Refused;
            }
        }
        let Some(next) = self.model.step(state, &operation.op, &operation.output) else {
            return Try::Refused;
        };
        // A read the state allows can go first in any linearization from here
        // (it changes nothing, and real time lets it: its call precedes every
        // return left), so once placed, nothing else needs trying at this point.
        let forced = self.read_only[op];
        debug_assert!(
            !forced || &next == state,
            "a read-only operation changed the state"
        );
        // A pending operation that changes nothing here might as well never
        // happen: leaving it out keeps strictly more options open.
        if !operation.is_completed() && next == self.state {
            return Try::Refused;
        }
        let key = if forced { self.key } else { state_key(&next) };
        if !forced && !self.charge_stack(meter) {
            return Try::OutOfMemory;
        }
        self.linearized.set(op);
        let inserted = self.cache.insert(&self.linearized, key, meter);
        if !matches!(inserted, Ok(true)) {
            self.linearized.clear(op);
            if let Err(OutOfMemory) = inserted {
                return Try::OutOfMemory;
            }
            // Explored already and failed; for a forced read, so did this point.
            return if forced { Try::DeadEnd } else { Try::Refused };
        }
        // Looked ahead only from a pair not explored before (most are). A pair
        // it refuses stays in the memo, rightly: the read it found doomed is
        // one not linearized yet and the state is the pair's, so no
        // linearization goes on from the pair, however it is reached.
        if let Some(supply) = &mut self.supply {
            supply.place(op);
        }
        if !forced && self.reads_ahead_refuse(op, &next) {
            self.linearized.clear(op);
            if let Some(supply) = &mut self.supply {
                supply.unplace(op);
            }
            return Try::Refused;
        }
        self.list.lift(call);
        self.refusing = None;
        self.front_return = None;
        let before = (!forced).then(|| {
            self.stack_heap += self.heap_bytes(&self.state);
            let key = mem::replace(&mut self.key, key);
            (mem::replace(&mut self.state, next), key)
        });
        self.stack.push(Frame {
            call,
            op,
            forced,
            before,
        });
        if operation.is_completed() {
            self.completed_left -= 1;
        }
        Try::Placed
    }

    /// Would linearizing `op` into state `next` leave some read due soon
    /// unable to see what it saw? Looks at the completed reads (and what else
    /// the model gives `read_resets` for: cas ops told they swapped, which
    /// read their expected value) among the first events left in the list:
    /// every completed operation not yet linearized comes after `op` in any
    /// linearization through here, so one that can no longer be satisfied
    /// dooms the branch. The refusal depends only on the linearized set (with
    /// `op`, and `supply` counting it) and `next`, like the memo.
    fn reads_ahead_refuse(&self, op: usize, state: &M::State) -> bool {
        let mut node = self.list.first();
        for _ in 0..LOOKAHEAD_EVENTS {
            let Some(current) = node else { break };
            match self.list.event(current) {
                Event::Call(read)
                    if read != op
                        && self.resets[read].is_some()
                        && self.ops[read].is_completed() =>
                {
                    let ahead = Ahead { search: self, read };
                    if !self.model.can_lead_to(state, &ahead) {
                        return true;
                    }
                }
                _ => {}
            }
            node = self.list.next(current);
        }
        false
    }

    /// Heap bytes of `state`, as the stack holds them.
    fn heap_bytes(&self, state: &M::State) -> u64 {
        let inline = mem::size_of::<M::State>();
        self.model.state_bytes(state).saturating_sub(inline) as u64
    }

    /// Charges the meter for pushing the current state on the stack, when
    /// that takes the stack's heap bytes past the most charged before; false
    /// when the budget forbids it.
    fn charge_stack(&mut self, meter: &mut Meter) -> bool {
        let heap = self.stack_heap + self.heap_bytes(&self.state);
        if heap <= self.stack_heap_charged {
            return true;
        }
        let more = heap - self.stack_heap_charged;
        if !meter.charge(more) {
            return false;
        }
        self.stack_heap_charged = heap;
        self.charged += more;
        true
    }

    /// Before a pop: keeps the stack as the longest prefix if it is longer.
    /// Every stack the search builds is at its longest right before its first
    /// pop, so noting it there misses none. Only the frames above the part
    /// `longest` shares with the stack are copied, and each push is copied at
    /// most once (the shared part then covers it until it is popped): linear
    /// overall, where copying the whole stack at each new depth was quadratic
    /// in a long segment.
    fn note_longest(&mut self) {
        if self.stack.len() <= self.longest.len() {
            return;
        }
        self.longest.truncate(self.longest_agrees);
        let above = &self.stack[self.longest_agrees..];
        self.longest.extend(above.iter().map(|frame| frame.op));
        self.longest_agrees = self.stack.len();
    }

    /// The current point is a dead end: undoes choices back to the most recent
    /// one that had alternatives. `Some(event to try next)`, or `None` when no
    /// choice is left, which means the history is not linearizable.
    fn backtrack(&mut self) -> Option<Option<usize>> {
        loop {
            self.note_longest();
            let frame = self.stack.pop()?;
            self.longest_agrees = self.longest_agrees.min(self.stack.len());
            self.linearized.clear(frame.op);
            if let Some(supply) = &mut self.supply {
                supply.unplace(frame.op);
            }
            if self.ops[frame.op].is_completed() {
                self.completed_left += 1;
            }
            if let Some((state, key)) = frame.before {
                self.stack_heap -= self.heap_bytes(&state);
                self.state = state;
                self.key = key;
            }
            self.list.unlift(frame.call);
            self.refusing = None;
            self.front_return = None;
            self.front_return = None;
            // Below a forced read is a point where that read had to go first.
            if !frame.forced {
                return Some(self.list.after(frame.call));
            }
        }
    }
}

/// The lookahead's view of the search for one read (`Model::can_lead_to`).
struct Ahead<'s, 'a, M: Model> {
    search: &'s Search<'a, M>,
    read: usize,
}

impl<M: Model> Lookahead for Ahead<'_, '_, M> {
    fn read(&self) -> &Operation {
        self.search.ops[self.read]
    }

    fn read_index(&self) -> usize {
        self.read
    }

    fn reset(&self, of: usize, nth: usize) -> Option<(usize, &Operation)> {
        let search = self.search;
        let by = search.ops[self.read].ret;
        search.resets[of]
            .iter()
            .flatten()
            .copied()
            .filter(|&reset| {
                !search.linearized.contains(reset) && Some(search.ops[reset].call) <= by
            })
            .nth(nth)
            .map(|reset| (reset, search.ops[reset]))
    }

    fn covers(&self, needed: &[u8]) -> bool {
        let supply = self.search.supply.as_ref();
        supply.is_none_or(|supply| supply.covers(self.read, needed))
    }
}

/// See `Search::refusing`: walks the calls from the front of `list` to its
/// first return.
fn refusing_ahead<M: Model>(
    list: &EntryList,
    model: &M,
    ops: &[&Operation],
    needed_before: &[bool],
    state: &M::State,
) -> Vec<usize> {
    let mut refusing = Vec::new();
    let mut node = list.first();
    while let Some(at) = node {
        match list.event(at) {
            Event::Return(_) => break,
            Event::Call(other) => {
                let op = ops[other];
                if needed_before[other] && model.step(state, &op.op, &op.output).is_none() {
                    refusing.push(other);
                }
            }
        }
        node = list.next(at);
    }
    refusing
}

/// `Model::read_resets` keeping, per read, only the resets that can come
/// before it: those called by its return (one called after it returned is
/// linearized after it, and cannot have set what it read).
fn resets_in_time(
    mut resets: Vec<Option<Vec<usize>>>,
    ops: &[&Operation],
) -> Vec<Option<Vec<usize>>> {
    for (read, list) in resets.iter_mut().enumerate() {
        let (Some(list), Some(ret)) = (list.as_mut(), ops[read].ret) else {
            continue;
        };
        list.retain(|&reset| ops[reset].call <= ret);
    }
    resets
}

/// See `Search::twin_returned_before`. Two completed operations `y` and `x`
/// with the same input and output have the same effect in every state, and
/// `y` returns no later than `x`. At a point where both may go next (both
/// called before the first return left), placing `x` now and `y` later can be
/// swapped: `y` goes now (it may), and `x` where `y` was, which is no later
/// than `y`'s return, hence than `x`'s; every operation between them was
/// called before `y` returned (or `y` could not follow it), so before `x`
/// returned too. The states are the same all along. So from such a point
/// `x` need not be tried before `y`, and the search refuses it while `y` is
/// not linearized: whether `y` may go next depends only on the linearized
/// set, so the memo stays exact. Precedences (`Model::preceded_by`) are per
/// operation, so an operation with any is nobody's twin here.
fn completed_twins(ops: &[&Operation], preceded_by: &[Option<Vec<usize>>]) -> Vec<Option<usize>> {
    let mut completed: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].is_completed() && preceded_by[i].is_none())
        .collect();
    completed.sort_by_key(|&i| (ops[i].ret, i));
    chain_twins(ops, completed)
}

/// Per operation of `order`: the one before it in `order` with the same
/// input and output (`None` for the first of each kind, and for operations
/// not in `order`).
fn chain_twins(ops: &[&Operation], order: Vec<usize>) -> Vec<Option<usize>> {
    // Lookups only, never iterated.
    let mut last: crate::checker::LookupMap<_, _> = Default::default();
    let mut twin = vec![None; ops.len()];
    for i in order {
        twin[i] = last.insert((&ops[i].op, &ops[i].output), i);
    }
    twin
}

/// See `Search::twin_before`.
fn pending_twins(ops: &[&Operation]) -> Vec<Option<usize>> {
    let mut pending: Vec<usize> = (0..ops.len()).filter(|&i| !ops[i].is_completed()).collect();
    // The order the event list visits calls in: by time, then by index.
    pending.sort_by_key(|&i| (ops[i].call, i));
    chain_twins(ops, pending)
}
