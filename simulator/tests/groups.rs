//! Nodes that host several consensus groups (issue 14): each group is its own VSR replica per
//! node (view, log, pipeline, client table, disk region), the groups share the node's fate
//! (a crash takes every group down), and messages route by namespace.

mod common;

use common::vopr;
use consensus::wire::{Command, Message};
use consensus::Status;
use serde_json::Value;
use simulator::scenario::Scenario;
use std::cell::RefCell;
use std::rc::Rc;

/// Every group has committed at least `ops` more ops (within `max` ticks).
fn commit_in_every_group(s: &mut Scenario, ops: u64, max: u64) {
    let groups = s.sim.options.group_count as usize;
    let targets: Vec<u64> = (0..groups).map(|g| s.commit_max_in(g) + ops).collect();
    s.run_until(max, |s| {
        (0..groups).all(|g| s.commit_max_in(g) >= targets[g])
    })
    .unwrap();
}

/// Per node: group `g`'s (view, status).
fn views(s: &Scenario, g: usize) -> Vec<(u32, Status)> {
    (0..s.sim.options.replica_count)
        .map(|r| (s.group(r, g).view(), s.group(r, g).status()))
        .collect()
}

#[test]
fn groups_start_with_their_primaries_on_different_nodes() {
    let mut s = Scenario::groups(1, 3, 2, 3);
    commit_in_every_group(&mut s, 3, 5_000);
    let primaries: Vec<Option<u8>> = (0..3).map(|g| s.primary_in(g)).collect();
    assert_eq!(primaries, [Some(0), Some(1), Some(2)], "{}", s.describe());
}

#[test]
fn a_view_change_in_one_group_leaves_the_other_untouched() {
    let mut s = Scenario::groups(2, 3, 2, 2);
    commit_in_every_group(&mut s, 3, 5_000);
    let (p0, p1) = (s.primary_in(0).unwrap(), s.primary_in(1).unwrap());
    assert_ne!(p0, p1);
    let group0_before = views(&s, 0);
    let view_changes0: u64 = (0..3).map(|r| s.group(r, 0).stats().view_changes).sum();
    let view1 = s.group(p1, 1).view();
    // Group 1's primary falls silent in group 1 only: its node, and its group 0 replica,
    // carry on.
    s.drop_messages(move |from, _, m| from == p1 as usize && m.header.namespace == 1);
    s.run_until(10_000, |s| {
        s.primary_in(1)
            .is_some_and(|p| p != p1 && s.group(p, 1).view() > view1)
    })
    .unwrap();
    // Group 0 kept working meanwhile, in the same view under the same primary.
    commit_in_every_group(&mut s, 3, 5_000);
    s.clear_drops();
    commit_in_every_group(&mut s, 3, 10_000);
    assert_eq!(views(&s, 0), group0_before, "{}", s.describe());
    assert_eq!(s.primary_in(0), Some(p0));
    let after0: u64 = (0..3).map(|r| s.group(r, 0).stats().view_changes).sum();
    assert_eq!(after0, view_changes0, "group 0 took part in no view change");
}

#[test]
fn a_node_crash_changes_views_in_every_group_whose_primary_it_hosted() {
    // 5 nodes, 3 groups: group g's first primary is node g.
    let mut s = Scenario::groups(3, 5, 3, 3);
    commit_in_every_group(&mut s, 3, 5_000);
    assert_eq!(s.primary_in(1), Some(1));
    let view = |s: &Scenario, g: usize| s.group(0, g).view();
    let before: Vec<u32> = (0..3).map(|g| view(&s, g)).collect();
    s.crash(1);
    // Group 1 lost its primary and must move on; groups 0 and 2 lost only a backup.
    s.run_until(10_000, |s| s.primary_in(1).is_some_and(|p| p != 1))
        .unwrap();
    commit_in_every_group(&mut s, 3, 10_000);
    assert!(view(&s, 1) > before[1], "{}", s.describe());
    assert_eq!((view(&s, 0), view(&s, 2)), (before[0], before[2]));
    assert_eq!((s.primary_in(0), s.primary_in(2)), (Some(0), Some(2)));
    // Every group on the node recovers from its own disk region and catches up.
    s.restart(1);
    commit_in_every_group(&mut s, 2, 10_000);
    s.stop_clients();
    s.run_until(20_000, |s| s.settled()).unwrap();
    for g in 0..3 {
        let x = s.group(1, g);
        assert_eq!(x.commit_min(), s.commit_max_in(g), "group {g}");
    }
}

#[test]
fn a_crash_takes_every_group_of_the_node_down_at_once() {
    let mut s = Scenario::groups(4, 3, 2, 4);
    commit_in_every_group(&mut s, 2, 5_000);
    s.crash(2);
    assert!((0..4).all(|g| s.sim.cluster.group(2, g).is_none()));
    assert!((0..4).all(|g| s.sim.cluster.group(0, g).is_some()));
}

/// Runs until some prepare goes from group 0's primary to backup `b` and returns it.
fn capture_prepare(s: &mut Scenario, p: u8, b: u8) -> Message {
    let seen: Rc<RefCell<Option<Message>>> = Rc::default();
    let keep = seen.clone();
    s.drop_messages(move |from, to, m| {
        let prepare = matches!(m.header.command, Command::Prepare(_));
        let ours = from == p as usize && to == b as usize && m.header.namespace == 0;
        if prepare && ours && keep.borrow().is_none() {
            *keep.borrow_mut() = Some(m.clone());
        }
        false
    });
    s.run_until(5_000, |_| seen.borrow().is_some()).unwrap();
    s.clear_drops();
    let message = seen.borrow().clone().unwrap();
    message
}

#[test]
fn a_message_for_a_group_the_node_does_not_host_is_dropped_and_counted() {
    let mut s = Scenario::groups(5, 3, 2, 2);
    commit_in_every_group(&mut s, 2, 5_000);
    let p = s.primary_in(0).unwrap();
    let b = (p + 1) % 3;
    let prepare = capture_prepare(&mut s, p, b);
    s.stop_clients();
    s.run_until(5_000, |s| s.settled()).unwrap();
    let state = |s: &Scenario| {
        (0..2)
            .flat_map(|g| (0..3).map(move |r| (r, g)))
            .map(|(r, g)| (s.group(r, g).op(), s.group(r, g).commit_min()))
            .collect::<Vec<_>>()
    };
    let before = state(&s);
    // Re-sealed (valid checksums) as group 5, which no node hosts.
    let mut header = prepare.header;
    header.namespace = 5;
    s.inject(
        p as usize,
        b as usize,
        &Message::new(header, prepare.body.clone()),
    );
    s.run(50).unwrap();
    let node = s.sim.cluster.node(b).unwrap();
    assert_eq!(node.messages_dropped_namespace(), 1);
    assert_eq!(s.sim.messages_dropped_namespace(), 1);
    assert_eq!(state(&s), before, "no group changed");
}

#[test]
fn a_message_readdressed_to_another_hosted_group_changes_nothing() {
    let mut s = Scenario::groups(6, 3, 2, 2);
    commit_in_every_group(&mut s, 2, 5_000);
    let p = s.primary_in(0).unwrap();
    // The backup of group 0 that is not group 1's primary either.
    let b = (0..3)
        .find(|&r| r != p && Some(r) != s.primary_in(1))
        .unwrap();
    let prepare = capture_prepare(&mut s, p, b);
    s.stop_clients();
    s.run_until(5_000, |s| s.settled()).unwrap();
    let group1 = |s: &Scenario| {
        (0..3)
            .map(|r| {
                let x = s.group(r, 1);
                (x.view(), x.op(), x.commit_min(), x.header(x.op()))
            })
            .collect::<Vec<_>>()
    };
    let before = group1(&s);
    // Group 0's prepare, re-sealed as group 1's, at group 1's next op, from a replica that is
    // not group 1's primary: group 1's replica on B must not take it.
    let mut header = prepare.header;
    header.namespace = 1;
    if let Command::Prepare(ref mut x) = header.command {
        x.op = s.group(b, 1).op() + 1;
    }
    let readdressed = Message::new(header, prepare.body.clone());
    s.inject(p as usize, b as usize, &readdressed);
    s.run(200).unwrap();
    assert_eq!(group1(&s), before, "{}", s.describe());

    // A router bug hands group 0's message, unchanged, to group 1's replica: it drops it,
    // counted, and sends nothing.
    let replica = s.sim.cluster.replica_in_mut(b, 1).unwrap();
    replica.on_message(consensus::Peer::Replica(p), prepare);
    assert_eq!(replica.drain_outbox().count(), 0);
    assert_eq!(replica.stats().messages_dropped_namespace, 1);
    s.run(200).unwrap();
    assert_eq!(group1(&s), before);
}

#[test]
fn the_json_summary_reports_every_group_and_totals_that_add_up() {
    let o = vopr(&["--seed", "3", "--groups", "4", "--ticks", "4000", "--json"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(v["groups"], 4);
    let groups = v["per_group"].as_array().unwrap();
    assert_eq!(groups.len(), 4);
    let sum = |field: &str| {
        groups
            .iter()
            .map(|g| g[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("ops_committed"), v["ops_committed"].as_u64().unwrap());
    assert_eq!(
        sum("requests_committed"),
        v["requests_committed"].as_u64().unwrap()
    );
    assert_eq!(sum("repairs"), v["repairs"].as_u64().unwrap());
    let view_max = groups.iter().map(|g| g["view_max"].as_u64().unwrap()).max();
    assert_eq!(view_max, v["view_max"].as_u64());
    for (g, figures) in groups.iter().enumerate() {
        assert_eq!(figures["namespace"], g as u64);
        assert!(figures["ops_committed"].as_u64().unwrap() > 0, "{figures}");
    }
    // One group: no per-group figures, totals as before.
    let o = vopr(&["--seed", "3", "--groups", "1", "--ticks", "2000", "--json"]);
    let v: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["groups"], 1);
    assert!(v.get("per_group").is_none());
}
