//! Client sessions across a failover: a deposed primary must not end a session registered in
//! a later view (C6), and the eviction oracle catches one that does.

use consensus::{KvOp, Status};
use simulator::scenario::Scenario;

#[test]
fn a_deposed_primary_does_not_evict_a_session_registered_in_a_later_view() {
    let mut s = Scenario::new(101, 3, 3);
    // Client 2 stays out until the failover is over.
    s.sim.clients[2].draining = true;
    s.commit_more(5, 5_000).unwrap();
    let p = s.primary().unwrap();
    let view = s.replica(p).view();
    let others: Vec<u8> = (0..3).filter(|&r| r != p).collect();
    s.partition(&[&[p], &others]);
    s.run_until(10_000, |s| {
        s.primary()
            .is_some_and(|q| q != p && s.replica(q).view() > view)
    })
    .unwrap();
    assert_eq!(
        s.replica(p).status(),
        Status::Normal,
        "P still thinks it leads"
    );

    // Client 2 registers now, in the new view; P never hears of that register.
    let client_node = 3 + 2;
    s.drop_messages(move |from, to, _| from == client_node && to == p as usize);
    s.sim.clients[2].draining = false;
    s.run_until(10_000, |s| s.sim.clients[2].session != 0)
        .unwrap();
    s.sim.clients[2].draining = true;
    s.clear_drops();
    let session = s.sim.clients[2].session;

    // Its next request reaches the deposed primary first. Answering "no session" there would
    // make the client give up a live session (and abandon a request that may commit).
    let get = KvOp::Get { key: "k".into() };
    s.request(2, p, get);
    s.run(2_000).unwrap();
    assert_eq!(
        s.sim.clients[2].evictions, 0,
        "evicted from session {session}"
    );
    s.heal();
    s.sim.clients[2].draining = false;
    s.run_until(20_000, |s| s.sim.clients[2].requests_completed >= 1)
        .unwrap();
}
