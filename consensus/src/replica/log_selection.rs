//! The new primary's choice of log from a quorum of do_view_change records (V4, V5, V7, V8).
//!
//! Pure functions over the records, so the rules can be read (and tested) in one place.
//!
//! What is committed at an op is what the log of the highest log_view holds there (V4), never
//! what the highest *header* view says: a primary that re-proposes an inherited prepare sends
//! the original message, whose header keeps the view it was created in. So:
//! 1. The canonical records are those of the highest log_view; the best is the canonical one
//!    with the highest op. Every canonical record's head belongs to that view's log.
//! 2. The chain is walked down from the best head by parent checksum. A header from any
//!    record (or the new primary's own journal) is taken only where its checksum is the one
//!    the op above names, so lower-ranked logs contribute only what hash-chains (V8).
//! 3. Where the walk breaks (no record holds the header the op above names), the op's
//!    checksum is still known; below it, the walk resumes from the header of the
//!    highest-ranked canonical record (log_view, then op), but only at ops at or above the
//!    quorum's commit_max: there a canonical record holds nothing but that view's log. Below
//!    commit_max nothing is guessed; the primary's repair fills the gaps by hash chain.
//! 4. commit_max is derived conservatively from the quorum (V8).
//! 5. Above commit_max, an op a nack quorum lacks cannot have committed, nor anything after
//!    it: the log is truncated there (V7). An op a record's headers do not cover is never
//!    counted as nacked. Where the chosen op's checksum is unknown, any durable prepare at
//!    that op counts as a possible copy, except one that cannot be the chosen log's: a
//!    prepare's header keeps the view it was first prepared in, so once some record shows a
//!    prepare of the best log_view at a lower op, every op above it in that log was prepared
//!    in that view too, and a prepare of an older view at such an op is a nack (seed 7890: a
//!    backup that missed three prepares of its last view, beside a replica of an older view
//!    holding other prepares at those ops, could not nack them and the view change stalled).
//! 6. A record may name ops it may have acknowledged but whose header it lost to a fault
//!    (`DvcRecord::unknown`): those are never its nacks (except of a prepare of a view newer
//!    than its log_view, which it never acknowledged), and one above the best head, in a record
//!    of the best log_view, raises the op up to which nacks are counted. Where such an op
//!    cannot be nacked by a quorum, its header is unknown to everyone here: undecidable, and
//!    the next primary tries with other records (seed 40260).

use super::DvcRecord;
use crate::wire::{Header, HEADERS_MAX};
use std::collections::BTreeMap;

/// What the new primary installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The chosen log up to `head`, by op. Ops missing here (gaps) are repaired by hash
    /// chain before the view starts; `chain[head]` is always present.
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
    assert!(
        records.len() >= q.quorum,
        "selection needs a quorum of records"
    );
    assert!(q.quorum <= q.replica_count && 2 * q.quorum > q.replica_count);
    let best = records.iter().max_by_key(|r| (r.log_view, r.op))?;
    if best.headers.first().map(|(h, _)| h.prepare().op) != Some(best.op) {
        // A record whose newest header is not its head says nothing trustworthy about it.
        return None;
    }
    let commit_max = quorum_commit_max(records, best, commit_max_own, q);
    if best.op < commit_max {
        return None;
    }
    let walk = walk_down(records, own, best, base.prepare().op, commit_max);
    let fresh = best_view_appended_above(records, best.log_view).map(|op| (op, best.log_view));
    let top = unknown_top(records, best);
    let head = head_after_nacks(records, &walk, commit_max, top, fresh, q);
    let mut chain = walk.chain;
    if head == base.prepare().op {
        chain.entry(head).or_insert(*base);
    }
    if !chain.contains_key(&head) {
        // The head must be a header of the chosen log, and none is known: undecidable here.
        return None;
    }
    chain.retain(|&op, _| op <= head);
    check_selection(&chain, head, commit_max);
    Some(Selection {
        chain,
        head,
        commit_max,
        truncated: best.op - head,
    })
}

/// The selection's own invariants, checked on the way out (paired with the walk).
fn check_selection(chain: &BTreeMap<u64, Header>, head: u64, commit_max: u64) {
    assert!(head >= commit_max, "the head never drops a committed op");
    assert_eq!(chain.keys().next_back(), Some(&head), "the head is the top");
    for (op, header) in chain {
        assert_eq!(header.prepare().op, *op, "a header sits at its own op");
        if let Some(below) = op.checked_sub(1).and_then(|b| chain.get(&b)) {
            assert_eq!(
                header.prepare().parent,
                below.checksum,
                "adjacent ops of the chosen log hash-chain"
            );
        }
    }
}

/// The chosen log as far as the records prove it: headers by op, and the checksums of ops
/// whose header no record holds (named by the op above).
struct Walk {
    chain: BTreeMap<u64, Header>,
    proven: BTreeMap<u64, u128>,
}

impl Walk {
    fn checksum(&self, op: u64) -> Option<u128> {
        self.chain
            .get(&op)
            .map(|h| h.checksum)
            .or_else(|| self.proven.get(&op).copied())
    }
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

/// The canonical records' headers by op, each from the highest-ranked canonical record
/// holding one (log_view is equal among them, so by op).
fn canonical_headers(records: &[DvcRecord], best: &DvcRecord) -> BTreeMap<u64, Header> {
    let mut canonical: Vec<&DvcRecord> = records
        .iter()
        .filter(|r| r.log_view == best.log_view)
        .collect();
    canonical.sort_by_key(|r| std::cmp::Reverse(r.op));
    let mut by_op = BTreeMap::new();
    for record in canonical {
        for (h, _) in &record.headers {
            by_op.entry(h.prepare().op).or_insert(*h);
        }
    }
    by_op
}

/// Walks the chosen log down from the best head to `floor` (see the module comment).
fn walk_down(
    records: &[DvcRecord],
    own: &[Header],
    best: &DvcRecord,
    floor: u64,
    commit_max: u64,
) -> Walk {
    let known = by_checksum(records, own);
    let canonical = canonical_headers(records, best);
    let mut walk = Walk {
        chain: BTreeMap::new(),
        proven: BTreeMap::new(),
    };
    let mut next = Some((best.op, best.headers[0].0));
    while let Some((op, header)) = next {
        walk.chain.insert(op, header);
        if op <= floor || op == 0 {
            break;
        }
        let parent = header.prepare().parent;
        next = match known.get(&parent) {
            Some(h) if h.prepare().op + 1 == op => Some((op - 1, **h)),
            _ => {
                walk.proven.insert(op - 1, parent);
                // Resume below the break from a canonical header at or above commit_max.
                let lowest = commit_max.max(floor);
                (lowest + 1 < op)
                    .then(|| canonical.range(lowest..op - 1).next_back())
                    .flatten()
                    .map(|(&o, h)| (o, *h))
            }
        };
    }
    walk
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

/// The highest op the chosen log may have to reach: the best head, or an op above it that a
/// record of the best log_view may have acknowledged in that view's log without knowing its
/// header (its known log ends lower than what it acked). Unknown ops of older log_views
/// above the best head are not of the best view's log, as the older records' ops are not.
fn unknown_top(records: &[DvcRecord], best: &DvcRecord) -> u64 {
    records
        .iter()
        .filter(|r| r.log_view == best.log_view)
        .filter_map(|r| r.unknown.last().copied())
        .fold(best.op, u64::max)
}

/// An op above which the best log (of `log_view`) holds only ops appended in `log_view`, the
/// lowest the records show. The new primary of a view appends after the log it chose, whose
/// prepares are of older views, and a prepare keeps its view when it is carried into a later
/// log. So:
/// - a prepare of `log_view` at op `j`, in anybody's journal, is the best log's own at `j`, and
///   that log's ops above `j` are of `log_view` as well;
/// - a record of `log_view` names the head it installed on entering that view (`view_head`):
///   the chosen head, or a start_view's head, which is at or above it; ops above are appended.
///   This holds where the record lacks headers its view inherited (a header-only entry lost
///   to a fault), or holds no prepare of its view below the ops it missed.
fn best_view_appended_above(records: &[DvcRecord], log_view: u32) -> Option<u64> {
    let prepared = records
        .iter()
        .flat_map(|r| r.headers.iter())
        .filter(|(h, _)| h.view == log_view)
        .map(|(h, _)| h.prepare().op);
    let heads = records
        .iter()
        .filter(|r| r.log_view == log_view)
        .filter_map(|r| r.view_head);
    prepared.chain(heads).min()
}

/// What the chosen log is known to hold at an op: its checksum, or only that its prepare is of
/// the best log_view.
#[derive(Debug, Clone, Copy)]
enum Chosen {
    Checksum(u128),
    OfView(u32),
    Unknown,
}

/// The highest op such that every op from commit_max up to it may have been acknowledged by
/// a replication quorum: an op a nack quorum lacks cannot have committed, and nor can
/// anything after it (V7).
fn head_after_nacks(
    records: &[DvcRecord],
    walk: &Walk,
    commit_max: u64,
    top: u64,
    fresh: Option<(u64, u32)>,
    q: Quorums,
) -> u64 {
    let nack_quorum = q.replica_count - q.quorum + 1;
    let mut head = commit_max;
    for op in commit_max + 1..=top {
        let chosen = match walk.checksum(op) {
            Some(checksum) => Chosen::Checksum(checksum),
            None => match fresh {
                // Above a prepare of the best log_view, the chosen log's ops are of that view.
                Some((j, view)) if op > j => Chosen::OfView(view),
                _ => Chosen::Unknown,
            },
        };
        let nacks = records.iter().filter(|r| nacks(r, op, chosen)).count();
        if nacks >= nack_quorum {
            #[cfg(test)]
            note_nacked_by_view(records, op, chosen, nack_quorum);
            break;
        }
        head = op;
    }
    head
}

#[cfg(test)]
thread_local! {
    /// Selections whose log ends below an op only because the chosen prepare there is known to
    /// be of the best log_view (`Chosen::OfView`): without that, the older views' prepares at
    /// the op would be possible copies, not nacks. Test-only: the model's coverage report.
    pub(super) static NACKED_BY_VIEW: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts a truncation at `op` that `Chosen::OfView` decided (see `NACKED_BY_VIEW`).
#[cfg(test)]
fn note_nacked_by_view(records: &[DvcRecord], op: u64, chosen: Chosen, nack_quorum: usize) {
    if !matches!(chosen, Chosen::OfView(_)) {
        return;
    }
    let unknown = records
        .iter()
        .filter(|r| nacks(r, op, Chosen::Unknown))
        .count();
    if unknown < nack_quorum {
        NACKED_BY_VIEW.with(|n| n.set(n.get() + 1));
    }
}

/// Whether `record` proves its sender never acknowledged the chosen prepare at `op`: its
/// log ends below `op`, or `op` is within the window of headers it sends (the newest
/// HEADERS_MAX ops) and none there is a durable copy of a prepare that may be the chosen one;
/// never for an op it names unknown (it may hold the chosen prepare there, header lost).
fn nacks(record: &DvcRecord, op: u64, chosen: Chosen) -> bool {
    if record.unknown.binary_search(&op).is_ok() {
        // It may have acknowledged a prepare at `op` whose header it lost: only one of a view
        // newer than its log_view (so never acknowledged by it) is known not to be that.
        return matches!(chosen, Chosen::OfView(view) if view > record.log_view);
    }
    if op > record.op {
        return true;
    }
    if record.op - op >= HEADERS_MAX as u64 {
        // Beyond what the record shows: it may hold (and have acked) the prepare.
        return false;
    }
    !record.headers.iter().any(|(h, present)| {
        *present
            && h.prepare().op == op
            && match chosen {
                Chosen::Checksum(checksum) => h.checksum == checksum,
                Chosen::OfView(view) => h.view == view,
                Chosen::Unknown => true,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Command, Operation, Prepare};

    fn header(op: u64, parent: u128, view: u32, salt: u128) -> Header {
        header_committing(op, parent, view, salt, op.saturating_sub(3))
    }

    fn header_committing(op: u64, parent: u128, view: u32, salt: u128, commit: u64) -> Header {
        let p = Prepare {
            parent,
            client: 7 + salt,
            request_checksum: 0,
            op,
            commit,
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
            view_head: None,
            unknown: Vec::new(),
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
    fn the_best_log_wins_over_an_older_log_at_its_head() {
        // Two prepares at op 3 link to op 2: one from a view-1 log, one from the view-4 log.
        // The view-4 log is the best: its head is taken.
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

    const Q3: Quorums = Quorums {
        replica_count: 3,
        quorum: 2,
        pipeline_max: 8,
    };

    #[test]
    fn a_re_proposed_prepare_keeps_its_old_header_view_and_still_wins() {
        // Ops 1..5 committed. View 1: R1 prepared A at op 6 (R1 only). View 2: R2 prepared B at
        // op 6 (R2 only). View 3: R0 re-proposed A (header view still 1), R1 acked, A
        // committed; R1 missed op 7 and took op 8 (commit 6). View 4 (R0 down): R1 leads with
        // R2's record. B's header view (2) beats A's (1), but R1's log (log_view 3) holds A:
        // A was committed and must survive.
        let c = chain(5, 1, 0);
        let a = header(6, c[5].checksum, 1, 1);
        let op7 = header(7, a.checksum, 3, 3);
        let op8 = header(8, op7.checksum, 3, 3);
        let b = header(6, c[5].checksum, 2, 2);
        let r1 = record(
            3,
            5,
            &[(&op8, true), (&a, true), (&c[5], true), (&c[4], true)],
        );
        let r2 = record(2, 5, &[(&b, true), (&c[5], true), (&c[4], true)]);
        let s = select(&[r1, r2], &c[5], &[op8, a], 6, Q3).unwrap();
        assert_eq!(s.commit_max, 6);
        assert_eq!(s.chain[&6].checksum, a.checksum, "the committed A, not B");
        assert_eq!(
            s.head, 6,
            "op 7 (held by nobody) is truncated, and op 8 with it"
        );
    }

    #[test]
    fn a_lower_ranked_header_the_best_log_does_not_name_is_never_adopted() {
        // The best log (log_view 3) names c4 at op 4 but nobody holds it; a view-2 record holds
        // another op 4 (X) that links to op 3. X is not the best log's: it stays out, and op 4
        // (lacked by a nack quorum) is truncated with everything above it.
        let c = chain(5, 3, 0);
        let x = header(4, c[3].checksum, 2, 9);
        let a = record(3, 3, &[(&c[5], true), (&c[3], true)]);
        let b = record(3, 3, &[(&c[5], true), (&c[3], true)]);
        let low = record(2, 3, &[(&x, true), (&c[3], true)]);
        let s = select(&[a, b, low], &c[3], &[], 3, Q5).unwrap();
        assert_eq!(s.head, 3);
        assert!(s.chain.values().all(|h| h.checksum != x.checksum));
    }

    #[test]
    fn below_commit_max_a_break_is_left_for_repair_not_guessed() {
        // Op 8 is named by op 9 but held by nobody; op 7 of a canonical record is below
        // commit_max (9): it may be a stale entry, so it is not taken; repair fills 7 and 8.
        let c = chain(10, 4, 0);
        let stale = header(7, c[6].checksum, 2, 5);
        let heads = [(&c[10], true), (&c[9], true), (&stale, true), (&c[6], true)];
        let a = record(4, 6, &heads);
        let b = record(4, 6, &heads);
        let own = record(4, 6, &[(&c[6], true)]);
        let mut q = Q5;
        q.pipeline_max = 1;
        let s = select(&[a, b, own], &c[6], &[], 6, q).unwrap();
        assert_eq!(s.commit_max, 9);
        assert_eq!(s.head, 10);
        assert!(!s.chain.contains_key(&7) && !s.chain.contains_key(&8));
    }

    /// Ops `from..=to` prepared in `view`, chained from `parent`, each claiming `commit`.
    fn extend(parent: &Header, to: u64, view: u32, salt: u128, commit: u64) -> Vec<Header> {
        let mut out: Vec<Header> = Vec::new();
        for op in parent.prepare().op + 1..=to {
            let above = out.last().unwrap_or(parent).checksum;
            out.push(header_committing(op, above, view, salt, commit));
        }
        out
    }

    #[test]
    fn an_older_views_prepare_nacks_an_op_the_best_log_prepared_in_its_own_view() {
        // Seed 7890's shape. Ops 1..=4 are committed. The view-5 log appended 5..=8; the best
        // record (log_view 5) missed 6 and 7. A view-2 record holds other prepares at 5..=7.
        // Above op 5, which the best record shows was prepared in view 5, the view-5 log's ops
        // are all of view 5: the view-2 prepares at 6 and 7 are not theirs, so they nack them.
        let c = chain(4, 1, 0);
        let new = extend(&c[4], 8, 5, 1, 4);
        let old = extend(&c[4], 7, 2, 2, 4);
        let best = record(5, 4, &[(&new[3], true), (&new[0], true), (&c[4], true)]);
        let older = record(
            2,
            4,
            &[
                (&old[2], true),
                (&old[1], true),
                (&old[0], true),
                (&c[4], true),
            ],
        );
        let s = select(&[best, older], &c[4], &[], 4, Q3).expect("decidable");
        assert_eq!(s.head, 5, "6 is nacked by both records");
        assert_eq!(s.chain[&5].checksum, new[0].checksum);
        assert_eq!(s.truncated, 3);
    }

    #[test]
    fn an_older_views_prepare_may_be_an_inherited_op_the_best_record_missed() {
        // The view-5 log inherited 5 and 6 from view 2 and appended 7 and 8. The best record
        // holds 5 and 8 only; nothing shows the view-5 log was of view 5 at 6, so the view-2
        // record's prepare at 6 may be the chosen one (and committed): it is not a nack, and
        // the selection must not end below 6 (here it cannot decide: 6's header is unknown).
        let c = chain(4, 1, 0);
        let inherited = extend(&c[4], 6, 2, 2, 4);
        let new = extend(&inherited[1], 8, 5, 1, 4);
        let best = record(
            5,
            4,
            &[(&new[1], true), (&inherited[0], true), (&c[4], true)],
        );
        let mut older = record(
            2,
            4,
            &[(&inherited[1], true), (&inherited[0], true), (&c[4], true)],
        );
        // It entered view 2 at op 4: the view-2 log's ops above 4 were appended in view 2,
        // which says nothing of the view-5 log.
        older.view_head = Some(4);
        let s = select(&[best, older], &c[4], &[], 4, Q3);
        assert!(
            s.as_ref().is_none_or(|s| s.head >= 6),
            "op 6 may have committed: {s:?}"
        );
    }

    #[test]
    fn the_head_a_record_entered_its_view_at_shows_what_that_view_appended() {
        // Ops 1..=2 are committed; the view-3 log appended 3..=5 after choosing head 2. The
        // best record missed 3 and 4, and holds no prepare of view 3 below them; but it
        // entered view 3 at head 2 (its view_head), so the view-3 log's 3 and 4 are of view 3,
        // and the view-1 record's prepares there are other ones: both records nack op 3.
        let c = chain(2, 1, 0);
        let new = extend(&c[2], 5, 3, 1, 2);
        let old = extend(&c[2], 4, 1, 2, 2);
        let mut best = record(3, 2, &[(&new[2], true), (&c[2], true)]);
        let older = record(1, 2, &[(&old[1], true), (&old[0], true), (&c[2], true)]);
        let undecided = select(&[best.clone(), older.clone()], &c[2], &[], 2, Q3);
        assert!(undecided.is_none(), "without the view head: {undecided:?}");
        best.view_head = Some(2);
        let s = select(&[best, older], &c[2], &[], 2, Q3).expect("decidable");
        assert_eq!(s.head, 2);
        assert_eq!(s.truncated, 3);
    }

    const Q2: Quorums = Quorums {
        replica_count: 2,
        quorum: 2,
        pipeline_max: 8,
    };

    #[test]
    fn an_op_whose_header_a_record_lost_is_not_its_nack() {
        // Seed 40260's shape: two replicas of log_view 13. R0's slot of op 74 lost both zones
        // (a torn header record, then a latent fault on the prepare): its known log ends at
        // 73, but it may have acked 74, which R1 holds (and may have committed with it).
        let c = chain(75, 13, 0);
        let r1 = record(13, 72, &[(&c[75], true), (&c[74], true), (&c[73], true)]);
        let mut r0 = record(13, 70, &[(&c[73], true), (&c[72], true)]);
        r0.unknown = vec![74];
        let s = select(&[r0.clone(), r1.clone()], &c[72], &[], 72, Q2).expect("decidable");
        assert_eq!(
            s.head, 74,
            "op 74 kept; op 75, which r0 never wrote, nacked"
        );
        assert_eq!(s.chain[&74].checksum, c[74].checksum);
        // Without the unknown op, r0's log ending at 73 would nack op 74.
        r0.unknown.clear();
        let s = select(&[r0, r1], &c[72], &[], 72, Q2).expect("decidable");
        assert_eq!(s.head, 73);
    }

    #[test]
    fn an_unknown_op_above_every_known_head_is_undecidable_not_dropped() {
        // Three replicas; the records hold ops up to 5, but R0 may have acked op 6 (header
        // lost), perhaps with R2, which is not in this quorum: op 6 may be committed, and
        // nobody here knows its header. Choosing head 5 would lose it.
        let c = chain(5, 2, 0);
        let mut r0 = record(2, 3, &[(&c[5], true), (&c[4], true)]);
        r0.unknown = vec![6];
        let r1 = record(2, 3, &[(&c[5], true), (&c[4], true)]);
        assert_eq!(select(&[r0.clone(), r1.clone()], &c[3], &[], 3, Q3), None);
        // An unknown op of an older log_view above the best head is no part of the best log.
        r0.log_view = 1;
        let s = select(&[r0, r1], &c[3], &[], 3, Q3).expect("decidable");
        assert_eq!(s.head, 5);
    }

    #[test]
    fn an_unknown_op_nacks_only_a_prepare_of_a_view_newer_than_its_log_view() {
        let c = chain(10, 1, 0);
        let mut r = record(1, 7, &[(&c[10], true), (&c[8], true)]);
        r.unknown = vec![9, 12];
        for op in [9, 12] {
            assert!(!nacks(&r, op, Chosen::Unknown));
            assert!(!nacks(&r, op, Chosen::Checksum(c[9].checksum)));
            assert!(!nacks(&r, op, Chosen::OfView(1)));
            assert!(nacks(&r, op, Chosen::OfView(2)), "never acked in view 2");
        }
        assert!(
            nacks(&r, 11, Chosen::Unknown),
            "beyond its head, not unknown"
        );
    }

    #[test]
    fn only_a_record_whose_window_shows_an_op_can_nack_it() {
        let c = chain(70, 1, 0);
        let window: Vec<(&Header, bool)> = (7..=70).rev().map(|op| (&c[op], op != 9)).collect();
        let r = record(1, 7, &window);
        assert!(nacks(&r, 71, Chosen::Unknown), "beyond its head");
        assert!(
            nacks(&r, 9, Chosen::Checksum(c[9].checksum)),
            "held without its prepare"
        );
        assert!(
            !nacks(&r, 10, Chosen::Checksum(c[10].checksum)),
            "held with its prepare"
        );
        assert!(
            nacks(&r, 10, Chosen::Checksum(c[9].checksum)),
            "another prepare at the op"
        );
        assert!(
            !nacks(&r, 6, Chosen::Checksum(c[6].checksum)),
            "below the window it sends"
        );
    }
}
