//! Normal operation and client sessions, driven through the in-test router.

mod common;

use common::*;
use consensus::wire::{self, Command, EvictionReason};
use consensus::{KvMachine, KvOp, KvOutput, Peer, StateMachine, Status};

fn put(k: &str, v: &str) -> KvOp {
    KvOp::Put {
        key: k.into(),
        value: v.into(),
    }
}
fn append(k: &str, v: &str) -> KvOp {
    KvOp::Append {
        key: k.into(),
        value: v.into(),
    }
}
fn get(k: &str) -> KvOp {
    KvOp::Get { key: k.into() }
}
fn cas(k: &str, e: &str, v: &str) -> KvOp {
    KvOp::Cas {
        key: k.into(),
        expected: e.into(),
        value: v.into(),
    }
}

/// Sends one request to the primary and waits for its reply.
fn call(router: &mut Router, client: u128, session: u64, number: u32, op: &KvOp) -> KvOutput {
    let before = router.replies.get(&client).map_or(0, |v| v.len());
    let primary = router.primary();
    router.send_request(primary, &request(client, session, number, Some(op)));
    router.run_until(2_000, |r| {
        r.replies.get(&client).map_or(0, |v| v.len()) > before
    });
    let reply = router.last_reply(client).unwrap().clone();
    match reply.header.command {
        Command::Reply(r) => assert_eq!(r.request, number),
        other => panic!("expected a reply, got {other:?}"),
    }
    reply_output(&reply)
}

fn workload() -> Vec<KvOp> {
    vec![
        get("a"),
        put("a", "1"),
        append("a", "2"),
        get("a"),
        cas("a", "x", "3"),
        cas("a", "12", "3"),
        get("a"),
        append("b", "z"),
        get("b"),
        cas("c", "", "v"),
    ]
}

fn replies_match_model(replica_count: u8) {
    let mut router = Router::new(replica_count);
    let client = 7;
    let session = register(&mut router, client);
    let mut model = KvMachine::new();
    for (i, op) in workload().iter().enumerate() {
        let output = call(&mut router, client, session, i as u32 + 1, op);
        assert_eq!(output, model.apply(op), "op {i} {op:?}");
    }
    // Backups learn the commit point from heartbeats and converge on the same state.
    let commit = router.replica(router.primary()).commit_max();
    router.run_until(2_000, |r| {
        r.replicas
            .iter()
            .flatten()
            .all(|x| x.commit_min() == commit)
    });
    let digests: Vec<u128> = router
        .replicas
        .iter()
        .flatten()
        .map(|r| r.state_machine().digest())
        .collect();
    assert!(digests.iter().all(|&d| d == model.digest()));
    for op in 1..=commit {
        let checksums: Vec<_> = router
            .replicas
            .iter()
            .flatten()
            .map(|r| r.header(op).unwrap().checksum)
            .collect();
        assert!(
            checksums.windows(2).all(|w| w[0] == w[1]),
            "op {op} differs"
        );
    }
}

#[test]
fn one_replica_replies_match_the_model() {
    replies_match_model(1);
}

#[test]
fn three_replicas_reply_match_the_model() {
    replies_match_model(3);
}

#[test]
fn five_replicas_replies_match_the_model() {
    replies_match_model(5);
}

#[test]
fn resent_request_executes_exactly_once() {
    let mut router = Router::new(3);
    let (a, b) = (11, 12);
    let sa = register(&mut router, a);
    let sb = register(&mut router, b);
    let primary = router.primary();
    let dup = request(a, sa, 1, Some(&append("k", "x")));
    // The same request many times, interleaved with another client's requests, some while
    // it is in flight and some after it committed.
    for i in 0..20u32 {
        router.send_request(primary, &dup);
        if i % 4 == 0 {
            router.send_request(primary, &request(b, sb, i / 4 + 1, Some(&append("k", "y"))));
        }
        router.tick(3);
    }
    router.tick(200);
    assert_eq!(
        call(&mut router, b, sb, 6, &get("k")),
        KvOutput::Value(Some("xyyyyy".into()))
    );
    // Every reply client a got is for request 1, with the same bytes (the cached reply).
    let replies: Vec<_> = router.replies[&a]
        .iter()
        .filter(|m| matches!(m.header.command, Command::Reply(r) if r.request == 1))
        .collect();
    assert!(
        replies.len() >= 2,
        "duplicates after commit get the cached reply"
    );
    assert!(replies.iter().all(|m| m.encode() == replies[0].encode()));
}

#[test]
fn an_in_flight_duplicate_is_prepared_once() {
    // The client resends before its request committed (its timeout is shorter than the
    // commit): the primary holds the request in its pipeline already, and one request
    // per client is in flight (C3). Preparing it again would put it in the log twice.
    let mut router = Router::new(3);
    let c = 23;
    let s = register(&mut router, c);
    let primary = router.primary();
    let op = router.replica(primary).op();
    let r = request(c, s, 1, Some(&append("k", "x")));
    for _ in 0..3 {
        router.send_request(primary, &r);
    }
    router.tick(100);
    assert_eq!(
        router.replica(primary).op(),
        op + 1,
        "{}",
        router.replica(primary).describe()
    );
    assert_eq!(
        call(&mut router, c, s, 2, &get("k")),
        KvOutput::Value(Some("x".into()))
    );
}

#[test]
fn stale_request_is_ignored() {
    let mut router = Router::new(3);
    let c = 21;
    let s = register(&mut router, c);
    assert_eq!(call(&mut router, c, s, 1, &append("k", "1")), KvOutput::Ok);
    assert_eq!(call(&mut router, c, s, 2, &append("k", "2")), KvOutput::Ok);
    let replies_before = router.replies[&c].len();
    let primary = router.primary();
    router.send_request(primary, &request(c, s, 1, Some(&append("k", "1"))));
    router.tick(100);
    assert_eq!(
        router.replies[&c].len(),
        replies_before,
        "stale request answered"
    );
    assert_eq!(
        call(&mut router, c, s, 3, &get("k")),
        KvOutput::Value(Some("12".into()))
    );
}

#[test]
fn a_request_skipping_ahead_is_ignored() {
    // A client has one request in flight, numbered one after its last: request 3 after 1
    // means a client that lost track (or a forged message). Executing it would let the
    // missing request 2 run later, out of the client's order, or never.
    let mut router = Router::new(3);
    let c = 22;
    let s = register(&mut router, c);
    assert_eq!(call(&mut router, c, s, 1, &append("k", "1")), KvOutput::Ok);
    let primary = router.primary();
    let op = router.replica(primary).op();
    let replies_before = router.replies[&c].len();
    router.send_request(primary, &request(c, s, 3, Some(&append("k", "3"))));
    router.tick(100);
    assert_eq!(
        router.replica(primary).op(),
        op,
        "request 3 prepared after 1"
    );
    assert_eq!(router.replies[&c].len(), replies_before);
    assert_eq!(call(&mut router, c, s, 2, &append("k", "2")), KvOutput::Ok);
    assert_eq!(
        call(&mut router, c, s, 3, &get("k")),
        KvOutput::Value(Some("12".into()))
    );
}

#[test]
fn burst_respects_pipeline_and_queue_limits() {
    let mut router = Router::new(3);
    let clients: Vec<u128> = (100..130).collect();
    let sessions: Vec<u64> = clients.iter().map(|&c| register(&mut router, c)).collect();
    let primary = router.primary();
    let config = *router.replica(primary).config();
    // Hold every prepare_ok so the pipeline fills up.
    router.filter = Box::new(|m, _, _| !matches!(m.header.command, Command::PrepareOk(_)));
    for (&c, &s) in clients.iter().zip(&sessions) {
        router.send_request(primary, &request(c, s, 1, Some(&append("k", "x"))));
    }
    router.deliver_all(100_000);
    let p = router.replica(primary);
    assert_eq!(p.pipeline_len(), config.pipeline_max);
    assert_eq!(p.request_queue_len(), config.request_queue_max);
    let dropped = clients.len() - config.pipeline_max - config.request_queue_max;
    assert_eq!(p.stats().requests_dropped as usize, dropped);
    // Let acks through; clients resend what was dropped; everything executes once.
    router.filter = Box::new(|_, _, _| true);
    for _ in 0..5 {
        for (&c, &s) in clients.iter().zip(&sessions) {
            router.send_request(primary, &request(c, s, 1, Some(&append("k", "x"))));
        }
        router.tick(100);
    }
    let expected = "x".repeat(clients.len());
    assert_eq!(
        call(&mut router, clients[0], sessions[0], 2, &get("k")),
        KvOutput::Value(Some(expected))
    );
}

#[test]
fn lost_prepare_ok_is_recovered_by_retransmission() {
    let mut router = Router::new(3);
    let c = 31;
    let s = register(&mut router, c);
    let primary = router.primary();
    let mut dropped = 0;
    router.filter = Box::new(move |m, _, _| {
        if matches!(m.header.command, Command::PrepareOk(_)) && dropped < 2 {
            dropped += 1;
            return false;
        }
        true
    });
    let resent_before = router.replica(primary).stats().prepares_resent;
    assert_eq!(call(&mut router, c, s, 1, &put("k", "v")), KvOutput::Ok);
    assert!(router.replica(primary).stats().prepares_resent > resent_before);
}

#[test]
fn bad_checksum_and_bad_fields_are_dropped_without_panic() {
    let mut router = Router::new(3);
    let c = 41;
    let s = register(&mut router, c);
    let primary = router.primary();
    let good = request(c, s, 1, Some(&put("k", "v"))).encode();
    // Every single-byte corruption is rejected by the decoder, so nothing executes.
    for i in 0..good.len() {
        let mut bad = good.to_vec();
        bad[i] ^= 0x40;
        assert!(wire::decode(&bad, &router.ctx).is_err());
        router.send_bytes(c, primary, bad.into());
    }
    router.tick(50);
    assert_eq!(router.replies[&c].len(), 1, "only the register reply");
    // A well-checksummed prepare from a client is refused by the sender rule.
    let prepare = router.replica(primary).prepare(1).unwrap();
    let before = router.replica(1).stats().messages_rejected_sender;
    router.replicas[1]
        .as_mut()
        .unwrap()
        .on_message(Peer::Client(c), prepare);
    assert_eq!(
        router.replica(1).stats().messages_rejected_sender,
        before + 1
    );
    assert_eq!(call(&mut router, c, s, 1, &put("k", "v")), KvOutput::Ok);
}

/// Registers one client more than the client table holds; returns the first (evicted at
/// execution) and its session.
fn register_one_too_many(router: &mut Router) -> (u128, u64) {
    let clients_max = router.replica(0).config().clients_max as u128;
    let first = 1000;
    let s_first = register(router, first);
    for c in 1..=clients_max {
        register(router, first + c);
    }
    (first, s_first)
}

#[test]
fn full_client_table_evicts_the_oldest_session() {
    let mut router = Router::new(3);
    let (first, s_first) = register_one_too_many(&mut router);
    let primary = router.primary();
    // The client retries: the primary answers "no session" once its pings were answered.
    for _ in 0..10 {
        router.send_request(primary, &request(first, s_first, 1, Some(&get("k"))));
        router.tick(50);
        if matches!(
            router.last_reply(first).unwrap().header.command,
            Command::Eviction(_)
        ) {
            break;
        }
    }
    match router.last_reply(first).unwrap().header.command {
        Command::Eviction(e) => assert_eq!(e.reason, EvictionReason::NoSession),
        _ => unreachable!(),
    }
    let commit = router.replica(primary).commit_max();
    router.run_until(1_000, |r| {
        r.replicas
            .iter()
            .flatten()
            .all(|x| x.commit_min() == commit)
    });
    for r in router.replicas.iter().flatten() {
        assert_eq!(r.client_table().len(), r.config().clients_max);
        assert!(r.client_table().get(first).is_none());
    }
}

/// A primary says "no session" (C5) only once a quorum answered its own recent pings in its
/// view: other messages of its view (a peer's pings, or old messages delayed or replayed by
/// the network) may come from replicas that have since moved to a later view, where the
/// client's session may have been registered.
#[test]
fn a_primary_evicts_only_after_a_quorum_answered_its_pings() {
    let mut router = Router::new(3);
    let (first, s_first) = register_one_too_many(&mut router);
    let primary = router.primary();
    // From now on the peers' pongs are lost, while their pings, acks and everything else
    // still reach the primary. Once the window has passed, no pong answered a recent ping.
    router.filter = Box::new(|m, _, _| !matches!(m.header.command, Command::Pong(_)));
    let window = router.replica(primary).config().timeouts.primary_abdicate;
    router.tick(window + 50);
    let evicted = |r: &Router| r.was_evicted(first);
    router.send_request(primary, &request(first, s_first, 1, Some(&get("k"))));
    router.tick(50);
    assert!(
        !evicted(&router),
        "evicted with no pong answering its pings"
    );
    assert_eq!(
        router.primary(),
        primary,
        "still the primary, heard through pings"
    );
    assert_eq!(router.replica(primary).status(), Status::Normal);
    // Pongs flow again: the next ping's answers let it evict.
    router.filter = Box::new(|_, _, _| true);
    router.tick(100);
    router.send_request(primary, &request(first, s_first, 1, Some(&get("k"))));
    router.run_until(100, evicted);
}

#[test]
fn nothing_leaves_before_the_writes_it_depends_on_are_durable() {
    let mut router = Router::new(3);
    let session = register(&mut router, 7);
    router.synchronous_disk = false;
    let primary = router.primary();
    let backups: Vec<u8> = (0..3).filter(|&r| r != primary).collect();
    let put = KvOp::Put {
        key: "k".into(),
        value: "v".into(),
    };
    let replies_before = router.replies[&7].len();
    router.send_request(primary, &request(7, session, 1, Some(&put)));
    router.deliver_all(100);
    // The primary journaled the prepare; until that write is durable nothing leaves it.
    assert!(
        router.queue.is_empty(),
        "sent before its prepare was durable"
    );
    assert_eq!(router.replica(primary).commit_max(), 1);
    router.complete_writes(primary);
    // The prepares reach the backups, which journal them; their acks wait for the disk.
    router.deliver_all(100);
    assert!(
        router.queue.is_empty(),
        "a backup acked before its write was durable"
    );
    assert_eq!(
        router.replica(primary).commit_max(),
        1,
        "nothing committed yet"
    );
    router.complete_writes(backups[0]);
    router.deliver_all(100);
    // One durable backup and the durable primary: a quorum of three.
    assert_eq!(router.replica(primary).commit_max(), 2);
    assert_eq!(router.replies[&7].len(), replies_before + 1);
}

#[test]
fn a_primary_does_not_count_its_own_ack_until_its_write_is_durable() {
    // A solo replica is its own quorum: it must not commit (and reply) on a write a crash
    // could still lose.
    let mut router = Router::new(1);
    let session = register(&mut router, 7);
    router.synchronous_disk = false;
    let put = KvOp::Put {
        key: "k".into(),
        value: "v".into(),
    };
    let commit = router.replica(0).commit_max();
    router.send_request(0, &request(7, session, 1, Some(&put)));
    router.deliver_all(100);
    assert_eq!(router.replica(0).op(), commit + 1);
    assert_eq!(
        router.replica(0).commit_max(),
        commit,
        "committed a volatile write"
    );
    router.complete_writes(0);
    assert_eq!(router.replica(0).commit_max(), commit + 1);
    router.deliver_all(100);
    assert_eq!(reply_output(router.last_reply(7).unwrap()), KvOutput::Ok);
}

#[test]
fn a_primary_counts_its_own_ack_only_for_the_writes_that_completed() {
    // Two prepares in flight on a solo replica, whose own ack is its whole quorum: the disk
    // completes the first write only. The second prepare, still volatile, must not commit.
    let mut router = Router::new(1);
    let first_client = register(&mut router, 7);
    let second_client = register(&mut router, 8);
    router.synchronous_disk = false;
    let commit = router.replica(0).commit_max();
    router.send_request(0, &request(7, first_client, 1, Some(&put("a", "1"))));
    router.deliver_all(100);
    let first_write = router.replica(0).writes_submitted();
    router.send_request(0, &request(8, second_client, 1, Some(&put("b", "2"))));
    router.deliver_all(100);
    assert_eq!(router.replica(0).op(), commit + 2);
    assert!(router.replica(0).writes_submitted() > first_write);
    router.replicas[0]
        .as_mut()
        .unwrap()
        .on_storage_done(first_write);
    assert_eq!(
        router.replica(0).commit_max(),
        commit + 1,
        "committed a prepare whose write is still in flight"
    );
    router.complete_writes(0);
    assert_eq!(router.replica(0).commit_max(), commit + 2);
}

#[test]
fn only_prepare_oks_of_the_primarys_view_count() {
    // A prepare_ok says its sender held the prepare in that view; from another view (a
    // delayed one of an older view, whose log the sender may have truncated since) it proves
    // nothing now (N4). The backups' own acks are dropped, so only the crafted ones arrive.
    let mut router = Router::new(3);
    let session = register(&mut router, 7);
    let primary = router.primary();
    let backup = (primary + 1) % 3;
    let prepared = std::rc::Rc::new(std::cell::RefCell::new(None));
    let seen = prepared.clone();
    router.filter = Box::new(move |m, _, _| {
        if let Command::Prepare(p) = m.header.command {
            *seen.borrow_mut() = Some((m.header.checksum, p.op, m.header.view));
        }
        !matches!(m.header.command, Command::PrepareOk(_))
    });
    let commit = router.replica(primary).commit_max();
    router.send_request(primary, &request(7, session, 1, Some(&put("k", "v"))));
    router.deliver_all(100);
    let (checksum, op, view) = prepared.borrow().expect("the prepare went out");
    assert_eq!(op, commit + 1);
    let ack = |ack_view: u32| {
        let ok = wire::PrepareOk {
            prepare_checksum: checksum,
            op,
            prepare_view: view,
        };
        let header = wire::Header::new(CLUSTER, ack_view, backup, Command::PrepareOk(ok));
        wire::Message::new(header, bytes::Bytes::new())
    };
    for other in [view + 1, view + 2] {
        router.replicas[primary as usize]
            .as_mut()
            .unwrap()
            .on_message(Peer::Replica(backup), ack(other));
        assert_eq!(
            router.replica(primary).commit_max(),
            commit,
            "an ack of view {other} counted in view {view}"
        );
    }
    // The same ack in the primary's view is a quorum with its own: the test's ack is sound.
    router.replicas[primary as usize]
        .as_mut()
        .unwrap()
        .on_message(Peer::Replica(backup), ack(view));
    assert_eq!(router.replica(primary).commit_max(), commit + 1);
}

#[test]
fn a_backup_executes_only_what_the_primary_says_is_committed() {
    // No prepare_ok reaches the primary: nothing new commits. A backup holds the prepare but
    // must not take its op as committed (only the commit number it carries).
    let mut router = Router::new(3);
    let session = register(&mut router, 7);
    router.filter = Box::new(|m, _, _| !matches!(m.header.command, Command::PrepareOk(_)));
    let primary = router.primary();
    let backup = (primary + 1) % 3;
    let op = router.replica(primary).op();
    let committed = router.replica(primary).commit_max();
    router.send_request(primary, &request(7, session, 1, Some(&put("k", "v"))));
    router.deliver_all(100);
    let b = router.replica(backup);
    assert_eq!(b.op(), op + 1, "the backup holds the prepare");
    assert_eq!(router.replica(primary).commit_max(), committed);
    assert!(
        b.commit_min() <= committed && b.commit_max() <= committed,
        "took an uncommitted op as committed: {}",
        b.describe()
    );
}

#[test]
fn prepare_timestamps_strictly_increase_within_a_tick() {
    // Two requests prepared in one tick: the second's timestamp is still above the first's
    // (N8), so timestamps order ops even where the clock did not move.
    let mut router = Router::new(3);
    let first = register(&mut router, 7);
    let second = register(&mut router, 8);
    let primary = router.primary();
    let op = router.replica(primary).op();
    router.send_request(primary, &request(7, first, 1, Some(&put("a", "1"))));
    router.send_request(primary, &request(8, second, 1, Some(&put("b", "2"))));
    router.deliver_all(200);
    let r = router.replica(primary);
    assert_eq!(r.op(), op + 2);
    let stamp = |op: u64| match r.header(op).unwrap().command {
        Command::Prepare(p) => p.timestamp,
        _ => unreachable!(),
    };
    assert!(
        stamp(op + 2) > stamp(op + 1),
        "{} then {}",
        stamp(op + 1),
        stamp(op + 2)
    );
}

#[test]
fn heartbeats_do_not_wait_behind_unrelated_writes() {
    // The primary's disk is stuck on a prepare write. Its commit heartbeats and pings depend
    // only on the superblock of its view, long durable: they must still reach the backups,
    // or a slow disk alone makes them depose a healthy primary.
    let mut router = Router::new(3);
    let session = register(&mut router, 7);
    router.synchronous_disk = false;
    let primary = router.primary();
    let view = router.replica(primary).view();
    router.send_request(primary, &request(7, session, 1, Some(&put("k", "v"))));
    router.tick(1_000);
    assert!(router.replica(primary).writes_done() < router.replica(primary).writes_submitted());
    for r in 0..3 {
        let replica = router.replica(r);
        assert_eq!(
            (replica.view(), replica.status()),
            (view, Status::Normal),
            "replica {r}: {}",
            replica.describe()
        );
    }
}

#[test]
fn a_backup_acks_a_retransmitted_prepare_it_already_executed() {
    // After a view change a new primary may know a lower commit than a backup, and hold ops
    // the backup executed in its pipeline. Only acks in its view commit them: the backup must
    // ack such a prepare when the primary sends it again, not drop it as old.
    let mut router = Router::new(3);
    let session = register(&mut router, 7);
    let primary = router.primary();
    router.send_request(primary, &request(7, session, 1, Some(&put("k", "v"))));
    router.tick(200);
    let b = (primary + 1) % 3;
    let op = router.replica(b).commit_min();
    assert!(op >= 2, "{}", router.replica(b).describe());
    let prepare = router.replica(b).prepare(op).expect("executed here");
    router.queue.clear();
    router.replicas[b as usize]
        .as_mut()
        .unwrap()
        .on_message(Peer::Replica(primary), prepare.clone());
    router.complete_writes(b);
    let acked = router.queue.iter().any(|packet| match packet {
        Packet::ToReplica { to, bytes, .. } => {
            *to == primary
                && matches!(
                    wire::decode(bytes, &router.ctx).map(|m| m.header.command),
                    Ok(Command::PrepareOk(ok)) if ok.op == op && ok.prepare_checksum == prepare.header.checksum
                )
        }
        _ => false,
    });
    assert!(acked, "no prepare_ok for executed op {op}");
}

#[test]
fn a_primary_commits_what_a_peers_checkpoint_shows_committed() {
    // Backups that executed (and checkpointed) past ops a new primary still holds uncommitted
    // can no longer ack them; their checkpoint, advertised in pings and pongs, is committed
    // state, so the primary commits up to it.
    let mut router = Router::new(3);
    let session = register(&mut router, 7);
    let primary = router.primary();
    router.filter =
        Box::new(|m: &wire::Message, _, _| !matches!(m.header.command, Command::PrepareOk(_)));
    router.send_request(primary, &request(7, session, 1, Some(&put("k", "v"))));
    router.tick(50);
    let op = router.replica(primary).op();
    assert!(
        router.replica(primary).commit_max() < op,
        "no acks, no commit"
    );
    let backup = (primary + 1) % 3;
    let pong = wire::Ping {
        timestamp_monotonic: 1,
        checkpoint_op: op,
    };
    let view = router.replica(backup).view();
    let header = wire::Header::new(CLUSTER, view, backup, Command::Pong(pong));
    let message = wire::Message::new(header, bytes::Bytes::new());
    router.replicas[primary as usize]
        .as_mut()
        .unwrap()
        .on_message(Peer::Replica(backup), message);
    assert_eq!(router.replica(primary).commit_max(), op);
}
