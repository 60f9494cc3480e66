//! The history as a doubly linked list of call and return events in time order,
//! from which the search lifts an operation (its call and its return) when it
//! linearizes it and puts it back, in reverse order, when it backtracks. Links
//! are indices into a Vec: a lifted node keeps its own links, so putting it back
//! is O(1) (dancing links).

use crate::history::Operation;

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

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
}

pub(super) struct EntryList {
    /// `nodes[HEAD]` is a sentinel; the others are events sorted by time.
    nodes: Vec<Node>,
}

impl EntryList {
    /// Events sorted by time; at equal times calls come first, so an operation
    /// returning at tick t and one called at tick t count as concurrent.
    pub(super) fn new(ops: &[&Operation]) -> Self {
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            events.push((op.call, 0, index));
            if let Some(ret) = op.ret {
                events.push((ret, 1, index));
            }
        }
        events.sort_unstable();
        let mut nodes = vec![Node {
            event: Event::Call(NIL),
            prev: NIL,
            next: NIL,
            ret: NIL,
        }];
        let mut call_node = vec![NIL; ops.len()];
        for (_, kind, op) in events {
            let index = nodes.len();
            let event = if kind == 0 {
                call_node[op] = index;
                Event::Call(op)
            } else {
                nodes[call_node[op]].ret = index;
                Event::Return(op)
            };
            nodes.push(Node {
                event,
                prev: index - 1,
                next: NIL,
                ret: NIL,
            });
            nodes[index - 1].next = index;
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
        for (index, node) in self.nodes.iter().enumerate().skip(1) {
            if let Event::Call(op) = node.event {
                calls[op] = index;
            }
        }
        calls
    }

    /// The first return event left in the list from `node` on (by node
    /// number, which is time order), or `usize::MAX` when none is left.
    pub(super) fn first_return_from(&self, node: usize) -> usize {
        let mut current = Some(node);
        while let Some(at) = current {
            if let Event::Return(_) = self.nodes[at].event {
                return at;
            }
            current = self.next(at);
        }
        NIL
    }

    pub(super) fn first(&self) -> Option<usize> {
        self.link(self.nodes[HEAD].next)
    }

    pub(super) fn next(&self, node: usize) -> Option<usize> {
        self.link(self.nodes[node].next)
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

    fn events(list: &EntryList) -> Vec<Event> {
        let mut out = Vec::new();
        let mut node = list.first();
        while let Some(n) = node {
            out.push(list.event(n));
            node = list.next(n);
        }
        out
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops = parse_history(
            r#"{"client":1,"op":"put","key":"k","value":"a","call":0,"return":5}
{"client":2,"op":"put","key":"k","value":"b","call":5,"return":9}
{"client":3,"op":"put","key":"k","value":"c","call":2,"return":null}"#,
        )
        .unwrap();
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut list = EntryList::new(&refs);
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
}
