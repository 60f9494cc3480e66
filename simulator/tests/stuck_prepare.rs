//! A new primary's inherited prepare beyond a lagging backup's ring (issue: seed 406979).
//!
//! The backup installs the new view's start_view only as far as its ring holds, one op short
//! of the head. The primary's retransmissions of the head carry the header of the view the
//! prepare was made in, so the backup cannot take them as this view's: with no other backup
//! up, the prepare never commits unless the backup asks for the view's log again.

use consensus::Status;
use simulator::scenario::Scenario;

/// Ring slots: a checkpoint every 32 ops.
const SLOTS: u64 = 64;

#[test]
fn an_inherited_prepare_beyond_a_lagging_backups_ring_still_commits() {
    let mut s = Scenario::configured(406_979, 3, 8, |o| o.journal_slot_count = SLOTS);
    s.commit_more(10, 5_000).unwrap();
    let p = s.primary().unwrap();
    // C leads the next view (B, lagging, must follow it as a backup).
    let (b, c) = ((p + 2) % 3, (p + 1) % 3);
    s.catch_up(b, 5_000).unwrap();

    // B hears nothing and says nothing while P and C commit up to just below B's ring end.
    let ring_end = s.replica(b).checkpoint_op() + SLOTS - 1;
    let is_b = move |from: usize, to: usize| from == b as usize || to == b as usize;
    s.drop_messages(move |from, to, _| is_b(from, to));
    s.run_until(40_000, |s| s.commit_max() + 2 >= ring_end)
        .unwrap();

    // P's prepares reach C but C's acks never reach P, until C's log runs beyond B's ring
    // end, uncommitted; then no new requests, until every request in flight is in C's log. (A request prepared afresh in the new view would carry that view in its
    // header and unstick B by itself.)
    s.drop_messages(move |from, to, m| {
        is_b(from, to)
            || (from == c as usize && to == p as usize && m.header.command.name() == "prepare_ok")
    });
    s.run_until(20_000, |s| s.replica(c).op() > ring_end)
        .unwrap();
    s.stop_clients();
    s.run_until(20_000, |s| in_flight_all_prepared_at(s, c))
        .unwrap();
    let head = s.replica(c).op();
    assert!(
        s.commit_max() <= ring_end,
        "B's ring must not be able to hold C's head"
    );

    // P dies; B comes back. C must become primary and commit what it inherited, which needs
    // B's ack of an op beyond the ring B had when the view started.
    s.crash(p);
    s.clear_drops();
    s.run_until(30_000, |s| {
        let x = s.replica(c);
        x.status() == Status::Normal && x.is_primary()
    })
    .unwrap();
    s.run_until(20_000, |s| s.commit_max() >= head)
        .map_err(|e| format!("the inherited head {head} never committed: {e}"))
        .unwrap();
    s.catch_up(b, 10_000).unwrap();
}

/// Whether every client request in flight is a prepare in replica `r`'s log.
fn in_flight_all_prepared_at(s: &Scenario, r: u8) -> bool {
    let x = s.replica(r);
    s.sim
        .clients
        .iter()
        .filter_map(|client| client.in_flight.as_ref())
        .all(|f| {
            (x.commit_min() + 1..=x.op()).any(|op| {
                x.header(op)
                    .is_some_and(|h| h.prepare().request_checksum == f.message.header.checksum)
            })
        })
}
