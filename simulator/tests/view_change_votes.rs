//! View-change votes belong to one timeout episode (N11).

use simulator::scenario::Scenario;

/// Drops the primary's commit heartbeats to replica `b` for `ticks`, so `b` times out and
/// votes for a view change while the primary stays healthy for everyone else.
fn miss_heartbeats(s: &mut Scenario, b: u8, ticks: u64) {
    s.drop_messages(move |_, to, m| to == b as usize && m.header.command.name() == "commit");
    s.run(ticks).unwrap();
    s.clear_drops();
}

#[test]
fn stale_votes_do_not_combine_with_a_later_unrelated_timeout() {
    // B1 misses heartbeats once and votes; then it hears the primary again. Much later B2
    // misses heartbeats once and votes. Each time only one backup wants a view change, which
    // is never a quorum: the healthy primary must stay. (With votes kept forever, B1's old
    // vote and B2's new one made a quorum of 2 and deposed it.)
    let mut s = Scenario::new(91, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let p = s.primary().unwrap();
    let view = s.replica(p).view();
    let (b1, b2) = ((p + 1) % 3, (p + 2) % 3);
    miss_heartbeats(&mut s, b1, 500);
    s.run(5_000).unwrap();
    miss_heartbeats(&mut s, b2, 500);
    s.commit_more(10, 5_000).unwrap();
    for r in 0..3 {
        assert_eq!(s.replica(r).view(), view, "{}", s.describe());
    }
}

#[test]
fn two_backups_that_lose_the_primary_still_change_view() {
    // The other side of the same rule: votes of one episode still make a quorum.
    let mut s = Scenario::new(92, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let p = s.primary().unwrap();
    let view = s.replica(p).view();
    s.drop_messages(move |from, _, _| from == p as usize);
    s.run_until(5_000, |s| s.primary().is_some_and(|q| q != p))
        .unwrap();
    s.clear_drops();
    s.commit_more(5, 10_000).unwrap();
    assert!(s.replica(p).view() > view);
}

#[test]
fn replayed_heartbeats_do_not_keep_a_dead_primary_alive() {
    // N9: the network may deliver an old commit heartbeat again, and again. Only a newer one
    // proves the primary alive: replays of the last one it sent before it crashed must not
    // hold the backups back from changing view.
    use consensus::wire::Message;
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut s = Scenario::new(93, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let p = s.primary().unwrap();
    let view = s.replica(p).view();
    let heartbeats: Rc<RefCell<Vec<(usize, Message)>>> = Rc::default();
    let keep = heartbeats.clone();
    s.drop_messages(move |from, to, m| {
        if from == p as usize && m.header.command.name() == "commit" {
            keep.borrow_mut().push((to, m.clone()));
        }
        false
    });
    s.run(300).unwrap();
    s.clear_drops();
    let recorded = heartbeats.borrow().clone();
    assert!(!recorded.is_empty(), "the primary sent heartbeats");
    s.crash(p);
    for round in 0..200 {
        if s.primary().is_some_and(|q| q != p) {
            break;
        }
        // Replay the dead primary's last heartbeat to each backup it went to.
        for (to, m) in recorded.iter().rev().take(2) {
            s.inject(p as usize, *to, m);
        }
        s.run(25).unwrap();
        assert!(
            round < 199,
            "replays kept the dead primary alive: {}",
            s.describe()
        );
    }
    let q = s.primary().unwrap();
    assert!(s.replica(q).view() > view);
}
