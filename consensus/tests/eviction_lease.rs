//! The eviction lease (C5): a primary says "no session" only on proof that a quorum followed
//! its view lately. Scenario found by a review of the pong-echo rule: a replica in view change
//! status for the primary's view answered its pings, yet had never joined the view, and went
//! on to commit the client's register in a later view.

mod common;

use common::*;
use consensus::wire::{Command, Message};
use consensus::{KvOp, Peer, Status};
use std::{cell::Cell, rc::Rc};

#[test]
fn a_pong_from_a_replica_that_never_joined_the_view_does_not_license_eviction() {
    let mut router = Router::new(3);
    let phase = Rc::new(Cell::new(0u8));
    let p = phase.clone();
    router.filter = Box::new(move |m: &Message, from: Peer, to: Option<u8>| {
        let f = match from {
            Peer::Replica(r) => Some(r),
            Peer::Client(_) => None,
        };
        match p.get() {
            // r0 prepares the register alone.
            0 => !(f == Some(0) && matches!(m.header.command, Command::Prepare(_))),
            // r0 is cut off; r1 starts view 1, and reaches r2 only with pings and votes.
            1 => {
                if f == Some(0) || to == Some(0) {
                    return false;
                }
                if f == Some(1) && to == Some(2) {
                    return matches!(
                        m.header.command,
                        Command::Ping(_) | Command::StartViewChange
                    );
                }
                true
            }
            // r2 and r0 run view 2; r1 hears only clients and r2's view-1 (or older) messages.
            _ => {
                if to == Some(1) {
                    return f.is_none() || (f == Some(2) && m.header.view <= 1);
                }
                f != Some(1)
            }
        }
    });
    let k: u128 = 4242;
    router.send_request(0, &request(k, 0, 0, None));
    router.tick(5);
    assert_eq!(router.replica(0).op(), 1);
    phase.set(1);
    router.run_until(3_000, |r| {
        r.replica(1).view() == 1 && r.replica(1).status() == Status::Normal
    });
    assert_eq!(router.replica(2).status(), Status::ViewChange);
    assert_eq!(router.replica(2).log_view(), 0);
    router.run_until(3_000, |r| r.replica(2).view() == 2);
    phase.set(2);
    router.run_until(300, |r| {
        r.replica(2).status() == Status::Normal && r.replica(2).commit_min() >= 1
    });
    let session = router
        .replica(2)
        .client_table()
        .get(k)
        .expect("registered in view 2")
        .session;
    // The register's reply carries its prepare's view (0): the client's next request passes
    // r1's view check.
    assert_eq!(router.last_reply(k).unwrap().header.view, 0);
    assert_eq!(router.replica(1).status(), Status::Normal);
    let before = router.replies[&k].len();
    let get = KvOp::Get { key: "a".into() };
    router.send_request(1, &request(k, session, 1, Some(&get)));
    router.tick(2);
    assert!(
        !router.replies[&k][before..]
            .iter()
            .any(|m| matches!(m.header.command, Command::Eviction(_))),
        "r1 evicted K's live session {session}, committed in view 2"
    );
}
