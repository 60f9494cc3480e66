//! Scripted replica scenarios through the scenario API: view changes after crashes and
//! partitions, lagging replicas, full pipelines, old-view messages.

use consensus::wire::Command;
use simulator::scenario::Scenario;

fn views_of(s: &Scenario) -> Vec<u32> {
    s.sim.cluster.up().map(|(_, r)| r.view()).collect()
}

#[test]
fn view_change_after_primary_crash_five_replicas() {
    let mut s = Scenario::new(11, 5, 3);
    s.commit_more(20, 5_000).unwrap();
    let old = s.primary().unwrap();
    let old_view = s.replica(old).view();
    s.crash(old);
    s.run_until(5_000, |s| s.primary().is_some_and(|p| p != old))
        .unwrap();
    let new = s.primary().unwrap();
    assert!(s.replica(new).view() > old_view);
    s.commit_more(20, 5_000).unwrap();
    s.restart(old);
    // The old primary rejoins as a backup of the new view and catches up.
    let view = s.replica(new).view();
    s.run_until(5_000, |s| {
        let r = s.replica(old);
        r.view() >= view && r.commit_min() + 5 >= s.commit_max()
    })
    .unwrap();
}

#[test]
fn view_change_after_primary_crash_three_replicas() {
    let mut s = Scenario::new(12, 3, 2);
    s.commit_more(10, 5_000).unwrap();
    let old = s.primary().unwrap();
    s.crash(old);
    s.run_until(5_000, |s| s.primary().is_some_and(|p| p != old))
        .unwrap();
    s.commit_more(10, 5_000).unwrap();
}

#[test]
fn backup_that_is_behind_becomes_primary() {
    // Replica 1 is the primary of view 1. Cut it off while 0 and 2 commit, then crash 0:
    // replica 1 must catch up from 2 (repair) before it can serve as primary.
    let mut s = Scenario::new(13, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    assert_eq!(s.primary(), Some(0));
    s.partition(&[&[1], &[0, 2]]);
    s.commit_more(30, 10_000).unwrap();
    let behind = s.replica(1).commit_min();
    assert!(behind + 30 <= s.commit_max(), "replica 1 must be behind");
    s.heal();
    s.crash(0);
    s.run_until(10_000, |s| s.primary() == Some(1)).unwrap();
    s.commit_more(10, 10_000).unwrap();
    assert!(s.replica(1).commit_min() > behind + 30);
}

#[test]
fn isolated_primary_cannot_commit_in_its_old_view() {
    let mut s = Scenario::new(14, 5, 3);
    s.commit_more(10, 5_000).unwrap();
    let old = s.primary().unwrap();
    let others: Vec<u8> = (0..5).filter(|&r| r != old).collect();
    s.partition(&[&[old], &others]);
    // The majority elects a new primary and commits; the oracle fails the run if the old
    // primary commits anything that disagrees.
    s.run_until(10_000, |s| s.primary().is_some_and(|p| p != old))
        .unwrap();
    let commit_old_side = s.replica(old).commit_min();
    s.commit_more(20, 10_000).unwrap();
    assert_eq!(s.replica(old).commit_min(), commit_old_side);
    s.heal();
    let view = s.replica(s.primary().unwrap()).view();
    s.run_until(10_000, |s| {
        let r = s.replica(old);
        r.view() >= view && !r.is_primary() && r.commit_min() + 5 >= s.commit_max()
    })
    .unwrap();
}

#[test]
fn view_change_with_a_full_pipeline() {
    let mut s = Scenario::new(15, 3, 8);
    s.commit_more(10, 5_000).unwrap();
    let old = s.primary().unwrap();
    s.drop_command("prepare_ok");
    s.run_until(5_000, |s| {
        s.replica(old).pipeline_len() == s.replica(old).config().pipeline_max
    })
    .unwrap();
    s.clear_drops();
    s.crash(old);
    s.run_until(10_000, |s| s.primary().is_some_and(|p| p != old))
        .unwrap();
    s.commit_more(20, 10_000).unwrap();
}

#[test]
fn concurrent_view_changes_converge() {
    // Heartbeats never arrive, so every backup starts voting at about the same time.
    let mut s = Scenario::new(16, 5, 2);
    s.commit_more(5, 5_000).unwrap();
    s.drop_command("commit");
    s.run_until(10_000, |s| views_of(s).iter().all(|&v| v >= 1))
        .unwrap();
    s.clear_drops();
    s.run_until(10_000, |s| {
        let views = views_of(s);
        s.primary().is_some() && views.iter().all(|&v| v == views[0])
    })
    .unwrap();
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn lost_start_view_is_recovered_by_request_start_view() {
    let mut s = Scenario::new(17, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    s.drop_command("start_view");
    let old = s.primary().unwrap();
    s.crash(old);
    s.run(3_000).unwrap();
    s.clear_drops();
    s.run_until(10_000, |s| s.primary().is_some_and(|p| p != old))
        .unwrap();
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn restarted_replicas_replay_their_journal() {
    let mut s = Scenario::new(18, 3, 2);
    s.commit_more(30, 10_000).unwrap();
    for r in 0..3 {
        s.crash(r);
        s.restart(r);
        s.run(200).unwrap();
    }
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn scenario_time_really_passes() {
    let mut s = Scenario::new(19, 3, 2);
    s.commit_more(50, 20_000).unwrap();
    assert!(s.sim.tick > 100, "ticks {}", s.sim.tick);
}

#[test]
fn a_backup_executes_the_committed_prefix_below_a_missing_prepare() {
    // Backup B misses one prepare (X) and cannot repair it for a while; no heartbeat tells it
    // the commit point, only later prepares do. The ops below X that it holds from this view's
    // primary are committed and link to what it executed: it must execute them, not wait
    // for X (which only a repair or a state transfer brings).
    let mut s = Scenario::new(61, 3, 3);
    s.commit_more(10, 5_000).unwrap();
    let p = s.primary().unwrap();
    let b = ((p + 1) % 3) as usize;
    let x = s.replica(p).op() + 5;
    s.drop_messages(move |_, to, m| {
        let name = m.header.command.name();
        let prepare_x = matches!(m.header.command, Command::Prepare(q) if q.op == x);
        to == b && (prepare_x || name == "commit" || name == "headers")
    });
    s.run_until(10_000, |s| s.commit_max() >= x + 8).unwrap();
    let replica = s.replica(b as u8);
    assert!(
        replica.op() > x && replica.header(x).is_none(),
        "{}",
        replica.describe()
    );
    assert!(
        replica.commit_min() >= x - 1,
        "stuck below the gap at {x}: {}",
        replica.describe()
    );
    s.clear_drops();
    s.catch_up(b as u8, 10_000).unwrap();
}
