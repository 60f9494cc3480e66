//! The new primary's choice of log from a quorum of do_view_change messages (V4, V5, V7, V8).
//!
//! Pure functions over the records, so the rules can be read (and tested) in one place:
//! 1. The best log is the one of the highest log_view, then the highest op (V4). Its head is
//!    trusted; walking down from it by parent checksum gives the best log's chain.
//! 2. Where that walk stops (no record holds the header it needs), the chain is continued
//!    upward from the new primary's own executed op: at each op, among the headers the
//!    records hold that link to the op below, the one prepared in the highest view. A
//!    committed prepare is the newest prepare ever made at its op, so this finds every
//!    committed op; the two walks must meet, else nothing above the upward walk committed.
//! 3. commit_max is derived conservatively from the quorum (V8).
//! 4. Above commit_max, an op a nack quorum lacks cannot have committed, nor anything after
//!    it: the log is truncated there (V7).

use super::DvcRecord;
use crate::wire::Header;
use std::collections::BTreeMap;

/// What the new primary installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The chosen log from the base up to `head`, by op.
    pub chain: BTreeMap<u64, Header>,
    pub head: u64,
    pub commit_max: u64,
    /// Ops dropped from the best log by the nack rule.
    pub truncated: u64,
}

/// The parameters of the quorum arithmetic.
#[derive(Debug, Clone, Copy)]
pub struct Quorums {
    pub replica_count: usize,
    pub quorum: usize,
    pub pipeline_max: u64,
}

/// Chooses the log, or None when the records cannot decide it safely (the view change then
/// times out and the next primary tries).
pub fn select(
    records: &[DvcRecord],
    base: &Header,
    own: &[Header],
    commit_max_own: u64,
    q: Quorums,
) -> Option<Selection> {
    let best = records.iter().max_by_key(|r| (r.log_view, r.op))?;
    let down = walk_down(records, own, best);
    let down_min = down.keys().next().copied().unwrap_or(best.op + 1);
    let mut chain = walk_up(records, own, base, down_min);
    let up_top = chain.keys().next_back().copied().expect("base");
    // The best log continues the upward chain only if its op just above links to it.
    let linked = down
        .get(&(up_top + 1))
        .is_some_and(|h| h.prepare().parent == chain[&up_top].checksum);
    if linked {
        chain.extend(down.range(up_top + 1..).map(|(&op, h)| (op, *h)));
    }
    let top = chain.keys().next_back().copied().expect("base");
    let commit_max = quorum_commit_max(records, best, commit_max_own, q);
    if top < commit_max {
        return None;
    }
    let head = head_after_nacks(records, &chain, commit_max, top, q);
    chain.retain(|&op, _| op <= head);
    Some(Selection {
        chain,
        head,
        commit_max,
        truncated: best.op.saturating_sub(head),
    })
}

/// Every header the quorum (and the new primary's own journal) holds, by checksum.
fn by_checksum<'a>(records: &'a [DvcRecord], own: &'a [Header]) -> BTreeMap<u128, &'a Header> {
    records
        .iter()
        .flat_map(|r| r.headers.iter().map(|(h, _)| h))
        .chain(own.iter())
        .map(|h| (h.checksum, h))
        .collect()
}

/// The best log's chain, from its head down while the quorum holds each parent.
fn walk_down(records: &[DvcRecord], own: &[Header], best: &DvcRecord) -> BTreeMap<u64, Header> {
    let known = by_checksum(records, own);
    let mut chain = BTreeMap::new();
    let Some((head, _)) = best.headers.first() else {
        return chain;
    };
    let mut header = *head;
    loop {
        let p = *header.prepare();
        chain.insert(p.op, header);
        match known.get(&p.parent) {
            Some(parent) if p.op > 0 && parent.prepare().op + 1 == p.op => header = **parent,
            _ => break,
        }
    }
    chain
}

/// From the base (an executed, hence committed, op) up to `below`: at each op, the linking
/// header prepared in the highest view.
fn walk_up(
    records: &[DvcRecord],
    own: &[Header],
    base: &Header,
    below: u64,
) -> BTreeMap<u64, Header> {
    let mut at_op: BTreeMap<u64, Vec<&Header>> = BTreeMap::new();
    for h in records
        .iter()
        .flat_map(|r| r.headers.iter().map(|(h, _)| h))
        .chain(own.iter())
    {
        at_op.entry(h.prepare().op).or_default().push(h);
    }
    let mut chain = BTreeMap::new();
    chain.insert(base.prepare().op, *base);
    let mut last = *base;
    while last.prepare().op + 1 < below {
        let op = last.prepare().op + 1;
        let next = at_op.get(&op).and_then(|candidates| {
            candidates
                .iter()
                .filter(|h| h.prepare().parent == last.checksum)
                .max_by_key(|h| (h.view, h.checksum))
                .copied()
        });
        let Some(next) = next else { break };
        chain.insert(op, *next);
        last = *next;
    }
    chain
}

/// Highest op the quorum proves committed: any commit_min, any head's own commit, and
/// everything more than a pipeline below the best head (V8).
fn quorum_commit_max(records: &[DvcRecord], best: &DvcRecord, own: u64, q: Quorums) -> u64 {
    let mut commit = own;
    for r in records {
        commit = commit.max(r.commit_min);
        if let Some((head, _)) = r.headers.first() {
            commit = commit.max(head.prepare().commit);
        }
    }
    commit.max(best.op.saturating_sub(q.pipeline_max))
}

/// The highest op such that every op from commit_max up to it may have been acknowledged by
/// a replication quorum: an op held by too few records (a nack quorum lacks it) cannot have
/// committed, and nor can anything after it (V7).
fn head_after_nacks(
    records: &[DvcRecord],
    chain: &BTreeMap<u64, Header>,
    commit_max: u64,
    top: u64,
    q: Quorums,
) -> u64 {
    let nack_quorum = q.replica_count - q.quorum + 1;
    let mut head = commit_max;
    for op in commit_max + 1..=top {
        let checksum = chain[&op].checksum;
        let maybe_acked = records
            .iter()
            .filter(|r| {
                r.headers
                    .iter()
                    .any(|(h, present)| *present && h.checksum == checksum)
            })
            .count();
        if records.len() - maybe_acked >= nack_quorum {
            break;
        }
        head = op;
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Command, Operation, Prepare};

    fn header(op: u64, parent: u128, view: u32, salt: u128) -> Header {
        let p = Prepare {
            parent,
            client: 7 + salt,
            request_checksum: 0,
            op,
            commit: op.saturating_sub(3),
            timestamp: op,
            session: 1,
            request: op as u32,
            operation: Operation::StateMachine,
        };
        let mut h = Header::new(1, view, 0, Command::Prepare(p));
        h.seal(&[]);
        h
    }

    /// A chain of ops 1..=n prepared in `view` (op 0 is a fixed root-like anchor).
    fn chain(n: u64, view: u32, salt: u128) -> Vec<Header> {
        let mut out = vec![header(0, 0, 0, 0)];
        for op in 1..=n {
            let parent = out[op as usize - 1].checksum;
            out.push(header(op, parent, view, salt));
        }
        out
    }

    fn record(log_view: u32, commit_min: u64, headers: &[(&Header, bool)]) -> DvcRecord {
        let mut headers: Vec<(Header, bool)> = headers.iter().map(|(h, p)| (**h, *p)).collect();
        headers.sort_by_key(|(h, _)| std::cmp::Reverse(h.prepare().op));
        DvcRecord {
            log_view,
            op: headers[0].0.prepare().op,
            commit_min,
            headers,
        }
    }

    const Q5: Quorums = Quorums {
        replica_count: 5,
        quorum: 3,
        pipeline_max: 8,
    };

    #[test]
    fn committed_op_below_a_gap_in_the_best_log_is_kept() {
        // Op 3 committed (held by two records); nobody in the quorum holds op 4; the best log
        // (op 6) has a gap at 4. The old code dropped op 3 with the unknown region.
        let c = chain(6, 3, 0);
        let a = record(
            3,
            2,
            &[(&c[6], true), (&c[5], true), (&c[3], true), (&c[2], true)],
        );
        let b = record(3, 2, &[(&c[5], true), (&c[3], true), (&c[2], true)]);
        let own = record(3, 2, &[(&c[2], true)]);
        let s = select(&[a, b, own], &c[2], &[], 2, Q5).unwrap();
        assert_eq!(s.head, 3);
        assert_eq!(s.chain[&3].checksum, c[3].checksum);
    }

    #[test]
    fn an_op_a_nack_quorum_lacks_is_truncated_with_everything_after() {
        let c = chain(5, 2, 0);
        // The best log's head (op 5) is present nowhere: 3 nacks of 3 records truncate it.
        // Op 4 is present at two records: 1 nack, so it may have committed and stays.
        let a = record(2, 2, &[(&c[5], false), (&c[4], true), (&c[3], true)]);
        let b = record(2, 2, &[(&c[4], true), (&c[3], true)]);
        let own = record(1, 2, &[(&c[3], true)]);
        let s = select(&[a, b, own], &c[2], &[c[3]], 2, Q5).unwrap();
        assert_eq!(
            s.head, 4,
            "op 5 held by nobody is truncated, op 4 held by two is kept"
        );
        assert_eq!(s.truncated, 1);
    }

    #[test]
    fn the_upward_walk_prefers_the_newest_prepare() {
        // Two prepares at op 3 link to op 2: one from view 1 (stale), one from view 4. The best
        // log's head needs the view-4 one; the records lack op 4, so the upward walk decides.
        let c = chain(2, 1, 0);
        let stale = header(3, c[2].checksum, 1, 1);
        let newer = header(3, c[2].checksum, 4, 2);
        let a = record(4, 2, &[(&newer, true), (&c[2], true)]);
        let b = record(1, 2, &[(&stale, true), (&c[2], true)]);
        let own = record(1, 2, &[(&c[2], true)]);
        let s = select(&[a, b, own], &c[2], &[], 2, Q5).unwrap();
        assert_eq!(s.head, 3);
        assert_eq!(s.chain[&3].checksum, newer.checksum);
    }

    #[test]
    fn commit_max_comes_from_the_quorum() {
        let c = chain(12, 2, 0);
        let all: Vec<(&Header, bool)> = (2..=12).rev().map(|op| (&c[op], true)).collect();
        let a = record(2, 9, &all);
        let b = record(2, 2, &all[2..]);
        let own = record(2, 2, &all[4..]);
        let s = select(&[a, b, own], &c[2], &[], 2, Q5).unwrap();
        assert_eq!(s.commit_max, 9);
        assert_eq!(s.head, 12);
    }
}
