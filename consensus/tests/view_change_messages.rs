//! View-change messages that claim too much, or come from the past, are handled without a
//! panic and without effect.

mod common;

use bytes::Bytes;
use common::*;
use consensus::wire::*;
use consensus::{KvOp, Peer, Status};

fn fake_chain(n: u64, view: u32) -> Vec<Header> {
    let mut out = vec![consensus::replica::root_prepare(CLUSTER).header];
    for op in 1..=n {
        let p = Prepare {
            parent: out[op as usize - 1].checksum,
            client: 99,
            request_checksum: op as u128,
            op,
            commit: op - 1,
            timestamp: op,
            session: 1,
            request: op as u32,
            operation: Operation::StateMachine,
        };
        let mut h = Header::new(CLUSTER, view, 0, Command::Prepare(p));
        h.seal(&[]);
        out.push(h);
    }
    out
}

/// `command` of `view` from replica `from` with `headers` in its body, decoded as a replica of
/// three receives it.
fn message(view: u32, from: u8, command: Command, headers: &[Header]) -> Message {
    let m = Message::new(
        Header::new(CLUSTER, view, from, command),
        encode_header_list(headers),
    );
    let ctx = DecodeContext {
        cluster: CLUSTER,
        replica_count: 3,
    };
    decode(&m.encode(), &ctx).expect("well formed")
}

/// The start_view of `view` (from its primary, of three replicas) whose log is `chain`'s ops
/// `from..=head`, the head first; returns the sender too.
fn start_view(view: u32, chain: &[Header], from: usize, head: usize) -> (u8, Message) {
    let headers: Vec<Header> = chain[from..=head].iter().rev().copied().collect();
    let sv = StartView {
        nonce: 0,
        op: head as u64,
        commit: 0,
    };
    let primary = (view % 3) as u8;
    let m = message(view, primary, Command::StartView(sv), &headers);
    (primary, m)
}

/// Replica `to` receives `m` from replica `from`.
fn deliver(router: &mut Router, to: u8, from: u8, m: Message) {
    router.replicas[to as usize]
        .as_mut()
        .unwrap()
        .on_message(Peer::Replica(from), m);
}

#[test]
fn do_view_change_claiming_more_than_the_pipeline_is_handled() {
    let mut router = Router::new(3);
    let c = 5;
    let s = register(&mut router, c);
    router.send_request(0, &request(c, s, 1, Some(&KvOp::Get { key: "k".into() })));
    router.tick(50);
    // Replica 1 is the primary of view 1. Two do_view_changes claim a log 60 ops past
    // anything committed (far more than a pipeline), with no prepares present.
    let chain = fake_chain(60, 0);
    let headers: Vec<Header> = chain[1..].iter().rev().take(HEADERS_MAX).copied().collect();
    for from in [0u8, 2] {
        let dvc = DoViewChange {
            present_bitset: 0,
            op: 60,
            commit_min: 0,
            log_view: 0,
            view_head: VIEW_HEAD_UNKNOWN,
            unknown_max: 0,
            unknown_bitset: 0,
        };
        let m = Message::new(
            Header::new(CLUSTER, 1, from, Command::DoViewChange(dvc)),
            encode_header_list(&headers),
        );
        let m = decode(&m.encode(), &router.ctx).expect("well formed");
        router.replicas[1]
            .as_mut()
            .unwrap()
            .on_message(Peer::Replica(from), m);
    }
    let r1 = router.replica(1);
    assert_eq!(r1.view(), 1);
    assert_eq!(r1.status(), Status::ViewChange);
    // Nothing it cannot prove was executed.
    assert!(r1.commit_min() <= 2, "{}", r1.describe());
    router.tick(2_000);
}

#[test]
fn messages_from_old_views_are_ignored() {
    let mut router = Router::new(3);
    let c = 6;
    let s = register(&mut router, c);
    // Force a view change: crash the primary of view 0.
    router.crash(0);
    router.run_until(5_000, |r| {
        r.replicas[1]
            .as_ref()
            .is_some_and(|x| x.status() == Status::Normal && x.view() >= 1)
    });
    let view = router.replica(1).view();
    let before = router.replica(2).describe();
    // A commit heartbeat and a prepare from view 0 (the old primary) change nothing.
    let commit = Commit {
        commit_checksum: 0,
        commit: 50,
        timestamp_monotonic: 1_000_000,
        checkpoint_op: 0,
    };
    let old = Message::new(
        Header::new(CLUSTER, 0, 0, Command::Commit(commit)),
        Bytes::new(),
    );
    router.replicas[2]
        .as_mut()
        .unwrap()
        .on_message(Peer::Replica(0), old);
    assert_eq!(router.replica(2).describe(), before);
    assert_eq!(router.replica(2).view(), view);
    // The cluster keeps serving in the new view.
    router.send_request(
        router.primary(),
        &request(c, s, 1, Some(&KvOp::Get { key: "k".into() })),
    );
    router.run_until(2_000, |r| r.replies[&c].len() >= 2);
}

#[test]
fn recovery_puts_back_the_head_a_start_view_installed() {
    // Replica 2 installs a start_view's log (headers only: it has none of the prepares), then
    // crashes, and the single copy of the head's header record is lost. The superblock still
    // knows the head: recovery puts it back, so the log's head never falls onto older entries.
    let mut router = Router::new(3);
    let chain = fake_chain(3, 1);
    let (from, sv) = start_view(1, &chain, 1, 3);
    deliver(&mut router, 2, from, sv);
    assert_eq!(router.replica(2).op(), 3);
    assert_eq!(router.replica(2).log_view(), 1);
    router.crash(2);
    let storage = router.storages[2].as_mut().unwrap();
    use consensus::storage::{Storage, Zone};
    storage.write(Zone::WalHeaders, 3, Bytes::from_static(b"torn"));
    router.restart(2);
    let r2 = router.replica(2);
    assert_eq!(r2.op(), 3, "{}", r2.describe());
    assert_eq!(r2.header(3).map(|h| h.checksum), Some(chain[3].checksum));
}

#[test]
fn a_start_view_of_the_same_view_does_not_clear_ops_acked_above_its_head() {
    // Replica 2, normal in view 1 with its log up to op 3, restarts having lost ops 4 and 5
    // whole (both zones of their slots unreadable): it may have acked them in view 1. A
    // start_view of view 1 that reaches it now may be an old one (delayed or replayed, sent
    // before op 5 was prepared): its head (4) says nothing about op 5, which must stay
    // unknown, never nacked. (A start_view of a newer view, chosen by a quorum, may clear it.)
    use consensus::storage::{Storage, Zone};
    let mut router = Router::new(3);
    let chain = fake_chain(5, 1);
    let (from, first) = start_view(1, &chain, 1, 3);
    deliver(&mut router, 2, from, first);
    router.crash(2);
    let storage = router.storages[2].as_mut().unwrap();
    for slot in [4, 5] {
        storage.write(Zone::WalHeaders, slot, Bytes::from_static(b"torn"));
        storage.write(Zone::WalPrepares, slot, Bytes::from_static(b"rotten"));
    }
    router.restart(2);
    let r2 = router.replica(2);
    assert_eq!((r2.status(), r2.view(), r2.op()), (Status::Normal, 1, 3));
    assert!(r2.holds_unreadable(4) && r2.holds_unreadable(5));
    assert_eq!(r2.acked_max(), 5, "it may have acked up to op 5");
    let (from, old) = start_view(1, &chain, 1, 4);
    deliver(&mut router, 2, from, old);
    let r2 = router.replica(2);
    assert_eq!(r2.op(), 4, "the start_view extended the log");
    assert!(
        r2.holds_unreadable(4),
        "op 4's header is back; its prepare still may be acked"
    );
    assert!(r2.holds_unreadable(5), "op 5 forgotten: {}", r2.describe());
}

#[test]
fn a_do_view_change_of_an_older_view_is_no_record_for_the_new_one() {
    // Replica 2 leads view 2 of five (a quorum is 3). A do_view_change that replica 1 sent
    // for view 1 shows its log as it was then: it may have acked more in view 1 since, and
    // counted now it would nack those ops (V3). Only records for view 2 count.
    let mut router = Router::new(5);
    let ctx = router.ctx;
    let chain = fake_chain(3, 0);
    let headers: Vec<Header> = chain[1..].iter().rev().copied().collect();
    let dvc = |view: u32, from: u8| {
        let dvc = DoViewChange {
            present_bitset: 0b111,
            op: 3,
            commit_min: 0,
            log_view: 0,
            view_head: VIEW_HEAD_UNKNOWN,
            unknown_max: 0,
            unknown_bitset: 0,
        };
        let m = Message::new(
            Header::new(CLUSTER, view, from, Command::DoViewChange(dvc)),
            encode_header_list(&headers),
        );
        decode(&m.encode(), &ctx).expect("well formed")
    };
    let deliver = |router: &mut Router, view: u32, from: u8| {
        router.replicas[2]
            .as_mut()
            .unwrap()
            .on_message(Peer::Replica(from), dvc(view, from))
    };
    // Replica 0's record for view 2 (and replica 2's own): two of three.
    deliver(&mut router, 2, 0);
    let r2 = router.replica(2);
    assert_eq!(
        (r2.view(), r2.status(), r2.op()),
        (2, Status::ViewChange, 0)
    );
    deliver(&mut router, 1, 1);
    assert_eq!(
        router.replica(2).op(),
        0,
        "a view-1 record completed the quorum"
    );
    // The same record for view 2 completes it: the chosen log reaches op 3.
    deliver(&mut router, 2, 1);
    assert_eq!(
        router.replica(2).op(),
        3,
        "{}",
        router.replica(2).describe()
    );
}

#[test]
fn a_restarted_primary_does_not_resume_leading_its_view() {
    // R7: the acks it counted and its pipeline lived in memory only. It moves to the next
    // view instead (once the cluster has prepared anything), and the cluster carries on.
    let mut router = Router::new(3);
    let c = 9;
    let s = register(&mut router, c);
    let primary = router.primary();
    let view = router.replica(primary).view();
    assert!(router.replica(primary).op() > 0);
    router.crash(primary);
    router.restart(primary);
    let r = router.replica(primary);
    assert_eq!(
        (r.view(), r.status()),
        (view + 1, Status::ViewChange),
        "{}",
        r.describe()
    );
    router.run_until(20_000, |router| {
        router
            .replicas
            .iter()
            .flatten()
            .all(|r| r.status() == Status::Normal)
    });
    let get = KvOp::Get { key: "k".into() };
    let next = router.primary();
    let replies = router.replies[&c].len();
    router.send_request(next, &request(c, s, 1, Some(&get)));
    router.run_until(20_000, |router| router.replies[&c].len() > replies);
}

#[test]
fn a_start_view_of_an_older_view_is_ignored() {
    // Replica 0 joined view 2. A start_view of view 1 (delayed) must not take it back to
    // view 1's log: its view never goes down.
    let mut router = Router::new(3);
    let (from, sv2) = start_view(2, &fake_chain(2, 0), 1, 2);
    deliver(&mut router, 0, from, sv2);
    let r0 = router.replica(0);
    assert_eq!((r0.view(), r0.log_view(), r0.op()), (2, 2, 2));
    let (from, sv1) = start_view(1, &fake_chain(4, 1), 1, 4);
    deliver(&mut router, 0, from, sv1);
    let r0 = router.replica(0);
    assert_eq!(
        (r0.view(), r0.log_view(), r0.op()),
        (2, 2, 2),
        "{}",
        r0.describe()
    );
}

#[test]
fn repair_takes_only_a_header_that_links_below_the_proven_chain() {
    // Replica 0 joined view 1 with the headers of ops 3..=5 only: its chain is proven down
    // to op 3. A header for op 2 is taken only if op 3 names it as its parent; another
    // prepare at op 2 (of another view's log) would splice a foreign op into its log.
    let mut router = Router::new(3);
    let chain = fake_chain(5, 1);
    let (from, sv) = start_view(1, &chain, 3, 5);
    deliver(&mut router, 0, from, sv);
    assert_eq!(router.replica(0).op(), 5);
    assert!(router.replica(0).header(2).is_none());
    let foreign = fake_chain(5, 2)[2];
    deliver(
        &mut router,
        0,
        2,
        message(1, 2, Command::Headers, &[foreign]),
    );
    assert!(
        router.replica(0).header(2).is_none(),
        "took an op 2 that op 3 does not name"
    );
    deliver(
        &mut router,
        0,
        2,
        message(1, 2, Command::Headers, &[chain[2]]),
    );
    assert_eq!(
        router.replica(0).header(2).map(|h| h.checksum),
        Some(chain[2].checksum)
    );
}

#[test]
fn joining_a_view_truncates_the_log_above_its_head() {
    // Replica 0 joined view 1 with ops up to 5; view 2's log, chosen without them, ends at
    // op 3. Joining view 2 drops ops 4 and 5: kept, they would pass for view 2's log.
    let mut router = Router::new(3);
    let chain = fake_chain(5, 0);
    for (view, head) in [(1, 5), (2, 3)] {
        let (from, sv) = start_view(view, &chain, 1, head);
        deliver(&mut router, 0, from, sv);
    }
    let r0 = router.replica(0);
    assert_eq!((r0.view(), r0.op()), (2, 3), "{}", r0.describe());
    assert!(r0.header(4).is_none() && r0.header(5).is_none());
}

#[test]
fn repair_takes_only_the_prepare_its_log_names() {
    // Replica 0 joined view 1 with the headers of ops 1..=3 and none of their prepares. A
    // prepare at op 2 with another checksum (an abandoned log's) is not op 2 of its log: it
    // must neither take its place nor count as held. The one the log names is taken.
    let mut router = Router::new(3);
    let chain = fake_chain(3, 1);
    let (from, sv) = start_view(1, &chain, 1, 3);
    deliver(&mut router, 0, from, sv);
    // A prepare travels with its header alone (its body is empty here).
    let prepare = |h: Header| message(h.view, h.replica, h.command, &[]);
    assert_eq!(router.replica(0).op(), 3);
    assert!(router.replica(0).prepare(2).is_none());
    let abandoned = fake_chain(3, 0)[2];
    deliver(&mut router, 0, 1, prepare(abandoned));
    let r0 = router.replica(0);
    assert_eq!(r0.header(2).map(|h| h.checksum), Some(chain[2].checksum));
    assert!(
        r0.prepare(2).is_none(),
        "held a prepare its log does not name"
    );
    deliver(&mut router, 0, 1, prepare(chain[2]));
    let held = router.replica(0).prepare(2).map(|m| m.header.checksum);
    assert_eq!(held, Some(chain[2].checksum));
}

#[test]
fn a_log_for_a_new_view_leaves_only_once_the_view_is_durable() {
    // V1: a replica that handed its log to the primary of a view must still be in that view
    // after a crash, or it could hand another log to an older view's primary, or act in the
    // older view again. Its do_view_change waits for the superblock write of the new view.
    let mut router = Router::new(3);
    register(&mut router, 7);
    router.synchronous_disk = false;
    let primary = router.primary();
    let (next, backup) = ((primary + 1) % 3, (primary + 2) % 3);
    let view = router.replica(backup).view();
    let logs = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = logs.clone();
    router.filter = Box::new(move |m, from, _| {
        if from == Peer::Replica(backup) && matches!(m.header.command, Command::DoViewChange(_)) {
            seen.set(seen.get() + 1);
        }
        true
    });
    router.crash(primary);
    router.run_until(10_000, |router| {
        let b = router.replica(backup);
        b.view() > view && b.status() == Status::ViewChange
    });
    assert_eq!(router.replica(backup).view(), view + 1);
    assert_eq!(
        router.replica(next).view(),
        view + 1,
        "the next primary's view"
    );
    router.tick(50);
    assert_eq!(
        logs.get(),
        0,
        "a do_view_change left before its view was durable"
    );
    router.complete_writes(backup);
    router.deliver_all(100);
    assert!(logs.get() > 0, "the do_view_change never left");
}

#[test]
fn a_replica_that_joined_a_view_reopens_with_that_log_view() {
    // V2: the log_view a replica acks under is durable with the log it heads. A backup that
    // joined a view by its start_view and acked the view's prepares, then crashed, must reopen
    // with that view as its log_view: reopening with the older one, it would offer the new
    // view's log (acks and all) as an older view's in the next view change, where a log of the
    // newer view outranks it and can drop what it acked.
    let mut router = Router::new(3);
    let c = 8;
    let s = register(&mut router, c);
    let old = router.primary();
    let view = router.replica(old).view();
    router.crash(old);
    let joined = |router: &Router, r: u8| {
        let replica = router.replica(r);
        replica.view() > view && replica.status() == Status::Normal
    };
    router.run_until(10_000, |router| {
        (0..3).filter(|&r| r != old).all(|r| joined(router, r))
    });
    let primary = router.primary();
    let backup = (0..3)
        .find(|&r| r != old && r != primary)
        .expect("a backup");
    let new_view = router.replica(backup).view();
    // An op of the new view, acked by the backup (the quorum without the old primary).
    router.send_request(
        primary,
        &request(
            c,
            s,
            1,
            Some(&KvOp::Append {
                key: "k".into(),
                value: "x".into(),
            }),
        ),
    );
    router.run_until(2_000, |r| {
        r.last_reply(c).is_some_and(|m| m.header.view == new_view)
    });
    assert_eq!(router.replica(backup).log_view(), new_view);
    // The new primary too: it set its log_view when it chose the view's log.
    for r in [backup, primary] {
        router.crash(r);
        router.restart(r);
        assert_eq!(
            router.replica(r).log_view(),
            new_view,
            "{}",
            router.replica(r).describe()
        );
    }
}
