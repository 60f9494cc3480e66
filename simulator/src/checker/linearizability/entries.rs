//! The history as doubly linked lists of call and return events in time order,
//! from which the search lifts an operation (its call and its return) when it
//! linearizes it and puts it back, in reverse order, when it backtracks. Links
//! are indices into a Vec: a lifted node keeps its own links, so putting it back
//! is O(1) (dancing links).
//!
//! The calls of the pending operations the model marks `tried_last` are on a
//! list of their own: the search tries them only after the other calls ahead
//! of the first return, so that a history with many pending operations nobody
//! saw does not walk past all of them each time it places one completed
//! operation, and tries the likelier orders first. Which calls may go next is
//! unchanged (every call left ahead of the first return left), only the order
//! they are tried in.

use crate::history::Operation;

const NIL: usize = usize::MAX;
/// The sentinels heading the main list of events and the list of the calls
/// tried last.
const HEAD: usize = 0;
const LAST_HEAD: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// The call of operation `op` (an index into the searched slice).
    Call(usize),
    Return(usize),
}

#[derive(Clone, Debug)]
struct Node {
    event: Event,
    prev: usize,
    next: usize,
    /// For a call, its return node; NIL for a pending operation, which has none.
    ret: usize,
    /// A call tried last (on the second list).
    last: bool,
}

pub(super) struct EntryList {
    /// `nodes[HEAD]` and `nodes[LAST_HEAD]` are sentinels; the others are
    /// events numbered in time order, each linked on its own list.
    nodes: Vec<Node>,
}

impl EntryList {
    /// Events sorted by time; at equal times calls come first, so an operation
    /// returning at tick t and one called at tick t count as concurrent. The
    /// calls of pending operations `tried_last` marks go on the second list.
    pub(super) fn new(ops: &[&Operation], tried_last: &[bool]) -> Self {
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            events.push((op.call, 0, index));
            if let Some(ret) = op.ret {
                events.push((ret, 1, index));
            }
        }
        events.sort_unstable();
        let sentinel = Node {
            event: Event::Call(NIL),
            prev: NIL,
            next: NIL,
            ret: NIL,
            last: false,
        };
        let mut nodes = vec![sentinel.clone(), sentinel];
        let mut call_node = vec![NIL; ops.len()];
        // The last node of each list so far.
        let mut tail = [HEAD, LAST_HEAD];
        for (_, kind, op) in events {
            let index = nodes.len();
            // Only a pending call can be tried last: a return must stay
            // after its call on one list.
            let last = ops[op].ret.is_none() && tried_last[op];
            let event = if kind == 0 {
                call_node[op] = index;
                Event::Call(op)
            } else {
                nodes[call_node[op]].ret = index;
                Event::Return(op)
            };
            let chain = usize::from(last);
            nodes.push(Node {
                event,
                prev: tail[chain],
                next: NIL,
                ret: NIL,
                last,
            });
            nodes[tail[chain]].next = index;
            tail[chain] = index;
        }
        EntryList { nodes }
    }

    /// Bytes the list holds, for the memory budget.
    pub(super) fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    /// The first event still in the list, if any.
    /// Per operation (of `ops` given to `new`), the node of its call. Nodes
    /// are numbered in time order (the order `new` sorts events in).
    pub(super) fn call_nodes(&self, ops: usize) -> Vec<usize> {
        let mut calls = vec![NIL; ops];
        for (index, node) in self.nodes.iter().enumerate().skip(2) {
            if let Event::Call(op) = node.event {
                calls[op] = index;
            }
        }
        calls
    }

    /// The first return event left (its node: nodes are numbered in time
    /// order), or `usize::MAX` when none is left. Returns are all on the main
    /// list.
    pub(super) fn first_return(&self) -> usize {
        let mut current = self.first();
        while let Some(at) = current {
            if let Event::Return(_) = self.nodes[at].event {
                return at;
            }
            current = self.next(at);
        }
        NIL
    }

    /// The first event left of the completed operations.
    pub(super) fn first(&self) -> Option<usize> {
        self.link(self.nodes[HEAD].next)
    }

    /// The first call left of those tried last.
    pub(super) fn first_last(&self) -> Option<usize> {
        self.link(self.nodes[LAST_HEAD].next)
    }

    /// Where a walk from the front starts: the first event left on the main
    /// list, else the first call tried last.
    pub(super) fn start(&self) -> Option<usize> {
        self.first().or_else(|| self.first_last())
    }

    /// The next event on `node`'s own list.
    pub(super) fn next(&self, node: usize) -> Option<usize> {
        self.link(self.nodes[node].next)
    }

    /// The next event a walk visits after `node`: the next on its list, and
    /// after the main list's last event, the first call tried last.
    pub(super) fn after(&self, node: usize) -> Option<usize> {
        match self.next(node) {
            None if !self.is_last(node) => self.first_last(),
            next => next,
        }
    }

    /// Whether `node` is a call tried last.
    pub(super) fn is_last(&self, node: usize) -> bool {
        self.nodes[node].last
    }

    pub(super) fn event(&self, node: usize) -> Event {
        self.nodes[node].event
    }

    /// Takes out a call node and its return node, if it has one.
    pub(super) fn lift(&mut self, call: usize) {
        debug_assert!(matches!(self.nodes[call].event, Event::Call(_)));
        self.unlink(call);
        let ret = self.nodes[call].ret;
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes the most recent `lift` still in effect, which must be of `call`.
    pub(super) fn unlift(&mut self, call: usize) {
        let ret = self.nodes[call].ret;
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
    }

    fn link(&self, node: usize) -> Option<usize> {
        (node != NIL).then_some(node)
    }

    fn unlink(&mut self, node: usize) {
        let Node { prev, next, .. } = self.nodes[node];
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let Node { prev, next, .. } = self.nodes[node];
        debug_assert_eq!(self.nodes[prev].next, next, "unlift out of order");
        self.nodes[prev].next = node;
        if next != NIL {
            self.nodes[next].prev = node;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::parse_history;

    /// The events a walk visits from the start, through both lists.
    fn events(list: &EntryList) -> Vec<Event> {
        let mut out = Vec::new();
        let mut node = list.start();
        while let Some(n) = node {
            out.push(list.event(n));
            node = list.after(n);
        }
        out
    }

    fn history() -> Vec<Operation> {
        parse_history(
            r#"{"client":1,"op":"put","key":"k","value":"a","call":0,"return":5}
{"client":2,"op":"put","key":"k","value":"b","call":5,"return":9}
{"client":3,"op":"put","key":"k","value":"c","call":2,"return":null}"#,
        )
        .unwrap()
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops = history();
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut list = EntryList::new(&refs, &[false; 3]);
        use Event::*;
        let all = vec![Call(0), Call(2), Call(1), Return(0), Return(1)];
        assert_eq!(events(&list), all);
        let second = list.next(list.first().unwrap()).unwrap();
        list.lift(second);
        let first = list.first().unwrap();
        list.lift(first);
        assert_eq!(events(&list), [Call(1), Return(1)]);
        list.unlift(first);
        list.unlift(second);
        assert_eq!(events(&list), all);
    }

    #[test]
    fn calls_tried_last_follow_the_main_list_and_keep_their_time() {
        let ops = history();
        let refs: Vec<&Operation> = ops.iter().collect();
        // Only a pending call moves: the completed put 1 stays on the main list.
        let mut list = EntryList::new(&refs, &[false, true, true]);
        use Event::*;
        let all = vec![Call(0), Call(1), Return(0), Return(1), Call(2)];
        assert_eq!(events(&list), all);
        let pending = list.first_last().unwrap();
        assert!(list.is_last(pending));
        // Ahead of the first return by time, though walked after it.
        assert!(pending < list.first_return());
        let first = list.first().unwrap();
        list.lift(first);
        list.lift(pending);
        assert_eq!(events(&list), [Call(1), Return(1)]);
        list.unlift(pending);
        list.unlift(first);
        assert_eq!(events(&list), all);
        // With the main list empty, a walk starts at the calls tried last.
        let only_pending = parse_history(
            r#"{"client":3,"op":"put","key":"k","value":"c","call":2,"return":null}"#,
        )
        .unwrap();
        let refs: Vec<&Operation> = only_pending.iter().collect();
        let list = EntryList::new(&refs, &[true]);
        assert_eq!(events(&list), [Call(0)]);
        assert_eq!(list.first_return(), NIL);
    }
}
