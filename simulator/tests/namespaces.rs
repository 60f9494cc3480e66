//! Consensus groups by namespace (issue 14, the replica's part): every message a replica
//! sends carries its group's namespace, and a message of another group, even one re-sealed
//! with valid checksums and delivered to the replica by a routing bug, is dropped and counted,
//! never acted on.

use consensus::wire::{Command, Message};
use simulator::scenario::Scenario;
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn a_message_readdressed_to_another_group_is_dropped_and_counted() {
    let mut s = Scenario::new(31, 3, 1);
    s.commit_more(3, 5_000).unwrap();
    let p = s.primary().unwrap();
    let b = (p + 1) % 3;
    // Record the next prepare the primary sends to B (and let it through).
    let seen: Rc<RefCell<Option<Message>>> = Rc::default();
    let keep = seen.clone();
    s.drop_messages(move |from, to, m| {
        let prepare = matches!(m.header.command, Command::Prepare(_));
        if prepare && from == p as usize && to == b as usize && keep.borrow().is_none() {
            *keep.borrow_mut() = Some(m.clone());
        }
        false
    });
    s.commit_more(1, 5_000).unwrap();
    s.stop_clients();
    s.run_until(5_000, |s| s.settled() && s.clients_idle())
        .unwrap();
    let prepare = seen.borrow().clone().expect("a prepare was sent");
    assert_eq!(prepare.header.namespace, 0, "the group's namespace");
    s.clear_drops();

    // The same prepare, as if of group 7, at an op B has not seen: valid checksums, wrong group.
    let mut header = prepare.header;
    header.namespace = 7;
    if let Command::Prepare(ref mut x) = header.command {
        x.op = s.replica(b).op() + 1;
    }
    let misrouted = Message::new(header, prepare.body.clone());
    let node_drops = |s: &Scenario| s.sim.cluster.node(b).unwrap().messages_dropped_namespace();
    let before = node_drops(&s);
    let (op, commit) = (s.replica(b).op(), s.replica(b).commit_min());
    // Through the network: B's node hosts no group 7, so its router drops it, counted.
    s.inject(p as usize, b as usize, &misrouted);
    s.run(50).unwrap();
    assert_eq!(node_drops(&s), before + 1);
    assert_eq!(s.sim.messages_dropped_namespace(), 1);
    assert_eq!(s.replica(b).stats().messages_dropped_namespace, 0);
    assert_eq!((s.replica(b).op(), s.replica(b).commit_min()), (op, commit));

    // Past a router bug, straight into B's replica: the replica drops it too, counted.
    let replica = s.sim.cluster.replica_mut(b).unwrap();
    replica.on_message(consensus::Peer::Replica(p), misrouted);
    assert_eq!(
        replica.drain_outbox().count(),
        0,
        "a dropped message sends nothing"
    );
    s.run(50).unwrap();
    assert_eq!(s.replica(b).stats().messages_dropped_namespace, 1);
    assert_eq!((s.replica(b).op(), s.replica(b).commit_min()), (op, commit));
    // A healthy group is never told another group's messages.
    for r in 0..3 {
        assert_eq!(
            s.replica(r).stats().messages_dropped_namespace,
            (r == b) as u64
        );
    }
}

#[test]
fn a_cluster_of_another_group_runs_alike_end_to_end() {
    // Every message of the run carries the group's namespace (replicas, clients, replies,
    // repairs, view changes, state transfer): were one left at 0, the group would drop it
    // and the run would differ or stall.
    use simulator::options::Options;
    use simulator::run::{run, Outcome, RunConfig};
    for seed in [1, 4, 6] {
        let mut o = Options::from_seed(seed);
        o.ticks_safety = 8_000;
        let base = run(seed, o.clone(), RunConfig::default());
        o.namespace = 7;
        let other = run(seed, o, RunConfig::default());
        assert_eq!(other.outcome, Outcome::Pass, "seed {seed}");
        assert_eq!(
            (
                other.requests_committed,
                other.ops_committed,
                other.view_max,
                other.crashes
            ),
            (
                base.requests_committed,
                base.ops_committed,
                base.view_max,
                base.crashes
            ),
            "seed {seed}"
        );
        assert_ne!(
            other.trace_hash, base.trace_hash,
            "checksums cover the namespace"
        );
    }
}
