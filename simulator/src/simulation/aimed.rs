//! Faults aimed at protocol moments (see `crate::aim`), and the oracles that watch the same
//! moments: durable view state across restarts, and view churn once the cluster is healthy.

use super::{Phase, Simulation};
use crate::aim::Aimed;
use crate::checker::Violation;
use crate::node::Glance;
use crate::schedule::{Fault, Point};
use consensus::storage::Zone;
use consensus::wire::{Command, Message};

/// The messages of the moments aimed at that a replica sent in one step (no allocation on
/// the tick loop's hot path).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sent {
    prepare_ok: bool,
    do_view_change: bool,
    start_view: bool,
    start_view_change: bool,
}

impl Sent {
    pub(super) fn note(&mut self, message: &Message) {
        match message.header.command {
            Command::PrepareOk(_) => self.prepare_ok = true,
            Command::DoViewChange(_) => self.do_view_change = true,
            Command::StartView(_) => self.start_view = true,
            Command::StartViewChange => self.start_view_change = true,
            _ => {}
        }
    }
}

/// Ticks the core must stay normal in one view before a later view change counts as churn.
pub const SETTLE_TICKS: u64 = 400;

/// Messages a paused replica can hold before the oldest are dropped (a bounded socket buffer).
const PAUSED_INBOX_MAX: usize = 1024;

impl Simulation {
    /// Whether aimed faults are drawn now (not when a schedule is replayed: its events
    /// say what happens).
    fn aiming(&self) -> bool {
        self.faults_enabled && self.phase == Phase::Safety && self.replay.is_none()
    }

    pub(super) fn is_paused(&self, r: u8) -> bool {
        self.paused_until[r as usize].is_some()
    }

    /// After group `g` of node `r` handled an input and sent `sent`: crash the node right
    /// then if the moment is aimed at, or isolate a new primary that just sent start_view.
    pub(super) fn aim_after_step(&mut self, r: u8, g: usize, sent: Sent, glance: Glance) {
        let submitted = glance.writes_submitted;
        let wrote_superblock = submitted > self.writes_seen[r as usize][g]
            && self
                .cluster
                .storage_in(r, g)
                .newest_pending()
                .is_some_and(|(zone, _)| matches!(zone, Zone::Superblock | Zone::Checkpoint));
        self.writes_seen[r as usize][g] = submitted;
        if sent.start_view_change {
            self.vote_sent_tick = self.tick;
        }
        let view_change_done = std::mem::take(&mut self.view_change_done);
        if let Some(step) = self.stepping.filter(|_| self.replay.is_some()) {
            return self.replay_point(Point::Step(step));
        }
        if !self.aiming() || !self.cluster.is_up(r) {
            return;
        }
        let aim = &self.options.aim;
        let crash = [
            (
                sent.prepare_ok,
                aim.crash_after_prepare_ok,
                Aimed::CrashAfterPrepareOk,
            ),
            (
                sent.do_view_change,
                aim.crash_after_do_view_change,
                Aimed::CrashAfterDoViewChange,
            ),
            (
                sent.start_view,
                aim.crash_after_start_view,
                Aimed::CrashAfterStartView,
            ),
            (
                wrote_superblock,
                aim.crash_after_superblock_write,
                Aimed::CrashAfterSuperblockWrite,
            ),
        ];
        let isolate_p = aim.isolate_after_start_view;
        for (moment, p, kind) in crash {
            if moment && self.prng_aim.chance(p) {
                return self.aimed_crash(r, kind);
            }
        }
        let leads = glance.primary;
        if sent.start_view && leads && self.prng_aim.chance(isolate_p) {
            self.isolate(r, Aimed::IsolateAfterStartView);
        }
        if view_change_done {
            self.aim_restart_on_view_change();
        }
    }

    /// A view change just completed at some replica: restart a crashed one now, now and
    /// then (it recovers while the cluster settles into the new view).
    fn aim_restart_on_view_change(&mut self) {
        let p = self.options.aim.restart_on_view_change;
        if p == 0.0 || !self.prng_aim.chance(p) {
            return;
        }
        let down: Vec<u8> = (0..self.options.replica_count)
            .filter(|&x| self.cluster.slots[x as usize].restart_tick.is_some())
            .filter(|&x| !self.cluster.is_up(x))
            .collect();
        if down.is_empty() {
            return;
        }
        let replica = *self.prng_aim.pick(&down);
        self.execute(Fault::Restart {
            replica,
            aimed: Aimed::RestartOnViewChange,
        });
    }

    /// Restarts a crashed replica now (it was due to restart later).
    pub(super) fn restart_early(&mut self, r: u8, kind: Aimed) -> bool {
        let slot = &self.cluster.slots[r as usize];
        if self.cluster.is_up(r) || slot.restart_tick.is_none() {
            return false;
        }
        self.count_aimed(r, kind);
        self.restart(r);
        true
    }

    /// A primary just committed: isolate it, now and then.
    pub(super) fn aim_after_primary_commit(&mut self, r: u8) {
        if self.aiming() && self.prng_aim.chance(self.options.aim.isolate_after_commit) {
            self.isolate(r, Aimed::IsolateAfterCommit);
        }
    }

    /// Drops a start_view on its way to backup `to`, now and then (start_view reaches only
    /// some of them), or when the schedule being replayed says so.
    pub(super) fn drop_start_view(&mut self, message: &Message, to: u8) -> bool {
        if !matches!(message.header.command, Command::StartView(_)) {
            return false;
        }
        let drop = match (self.replay.as_mut(), self.stepping) {
            (Some(replay), Some(step)) => {
                replay.take_start_view_drop(self.tick, Point::Step(step), to)
            }
            (Some(_), None) => false,
            (None, _) => self.aiming() && self.prng_aim.chance(self.options.aim.start_view_drop),
        };
        if drop {
            self.counters.aimed.add(Aimed::StartViewDropped);
            self.record(Fault::DropStartView { to });
        }
        drop
    }

    /// A random crash is likelier while the replica has writes in flight (they may tear).
    pub(super) fn maybe_crash_with_writes_in_flight(&mut self, r: u8, p: f64) {
        let factor = self.options.aim.crash_pending_writes_factor;
        let pending = (0..self.options.group_count as usize)
            .any(|g| self.cluster.storage_in(r, g).recent_writes() > 0);
        if pending && factor > 1.0 && self.prng_aim.chance(p * (factor - 1.0)) {
            self.aimed_crash(r, Aimed::CrashWithWritesInFlight);
        }
    }

    fn aimed_crash(&mut self, r: u8, kind: Aimed) {
        if !self.crash_stable(r) {
            return;
        }
        let mean = self.options.restart_delay_mean_ticks as f64;
        let delay = self.prng_aim.exponential(mean).max(1);
        self.crash_drawn(r, Some(self.tick + delay), Some(kind));
    }

    /// Counts an aimed fault that fires on replica `r`, and logs it.
    pub(super) fn count_aimed(&mut self, r: u8, kind: Aimed) {
        self.counters.aimed.add(kind);
        tracing::info!(
            tick = self.tick,
            replica = r,
            kind = kind.name(),
            "aimed fault"
        );
    }

    /// Cuts replica `r` from every other replica for a while (clients still reach it).
    fn isolate(&mut self, r: u8, kind: Aimed) {
        if self.isolated_until[r as usize].is_some() {
            return;
        }
        let ticks = self
            .prng_aim
            .exponential(self.options.aim.isolate_ticks_mean as f64)
            .max(1);
        self.execute(Fault::Isolate {
            replica: r,
            ticks,
            aimed: kind,
        });
    }

    /// Cuts replica `r` from every other replica for `ticks` ticks, unless it is cut already.
    pub(super) fn isolate_for(&mut self, r: u8, ticks: u64, kind: Aimed) -> bool {
        if self.isolated_until[r as usize].is_some() {
            return false;
        }
        self.count_aimed(r, kind);
        self.isolated_until[r as usize] = Some(self.tick + ticks);
        self.set_isolated(r, true);
        true
    }

    fn set_isolated(&mut self, r: u8, cut: bool) {
        for x in 0..self.options.replica_count {
            if x != r {
                self.network.set_path_cut(r as usize, x as usize, cut);
                self.network.set_path_cut(x as usize, r as usize, cut);
            }
        }
    }

    /// Pauses an up replica now and then: no ticks and no deliveries until it resumes.
    pub(super) fn process_pauses(&mut self) {
        let p = self.options.aim.pause_probability;
        if p == 0.0 {
            return;
        }
        for r in 0..self.options.replica_count {
            if self.cluster.is_up(r) && !self.is_paused(r) && self.prng_aim.chance(p) {
                let mean = self.options.aim.pause_ticks_mean as f64;
                let ticks = self.prng_aim.exponential(mean).max(1);
                self.execute(Fault::Pause { replica: r, ticks });
            }
        }
    }

    /// Pauses replica `r` for `ticks` ticks, if it is up and not paused already.
    pub(super) fn pause(&mut self, r: u8, ticks: u64) -> bool {
        if !self.cluster.is_up(r) || self.is_paused(r) {
            return false;
        }
        self.paused_until[r as usize] = Some(self.tick + ticks);
        self.counters.aimed.add(Aimed::Pause);
        true
    }

    pub(super) fn hold_for_paused(&mut self, from: usize, to: u8, message: Message) {
        let inbox = &mut self.paused_inbox[to as usize];
        if inbox.len() == PAUSED_INBOX_MAX {
            inbox.remove(0);
        }
        inbox.push((from, message));
    }

    /// Ends isolations and pauses that are due (a resumed replica gets what waited for it).
    pub(super) fn end_aimed_faults(&mut self) {
        for r in 0..self.options.replica_count {
            if self.isolated_until[r as usize].is_some_and(|t| t <= self.tick) {
                self.isolated_until[r as usize] = None;
                self.set_isolated(r, false);
                self.trace.record(crate::trace::Event::Rejoin {
                    tick: self.tick,
                    replica: r,
                });
            }
            if self.paused_until[r as usize].is_some_and(|t| t <= self.tick) {
                self.resume(r);
            }
        }
    }

    /// The liveness phase begins: every isolation heals and every pause ends.
    pub(super) fn end_all_aimed_faults(&mut self) {
        for r in 0..self.options.replica_count {
            self.isolated_until[r as usize] = None;
            if self.is_paused(r) {
                self.resume(r);
            }
        }
    }

    fn resume(&mut self, r: u8) {
        self.paused_until[r as usize] = None;
        tracing::info!(tick = self.tick, replica = r, "resume");
        self.trace.record(crate::trace::Event::Resume {
            tick: self.tick,
            replica: r,
        });
        for (from, message) in std::mem::take(&mut self.paused_inbox[r as usize]) {
            if self.violation.is_some() {
                break;
            }
            self.deliver_to_replica(from, r, message);
        }
    }

    // ----- Oracles -----

    /// Remembers the view (and, for do_view_change, the log_view) a replica showed.
    pub(super) fn note_view_shown(&mut self, r: u8, g: usize, message: &Message) {
        // A prepare keeps the view it was made in (it may be relayed in a later one); a
        // start_view_change is a vote for a view, and a request_start_view asks about one,
        // neither of which the sender is in.
        if matches!(
            message.header.command,
            Command::Prepare(_) | Command::StartViewChange | Command::RequestStartView(_)
        ) {
            return;
        }
        let shown = &mut self.view_shown[r as usize][g];
        shown.0 = shown.0.max(message.header.view);
        if let Command::DoViewChange(d) = message.header.command {
            shown.1 = shown.1.max(d.log_view);
        }
    }

    /// After a restart, the durable view state is not below anything the replica showed
    /// before it crashed: a message may leave only once the view it shows is durable (V1).
    pub(super) fn check_view_durable(&mut self, r: u8, g: usize) {
        let Some(replica) = self.cluster.group(r, g) else {
            return;
        };
        let (view, log_view) = self.view_shown[r as usize][g];
        if replica.view() < view || replica.log_view() < log_view {
            let message = format!(
                "restarted with view {} log_view {}, but it had shown view {view} log_view {log_view}",
                replica.view(),
                replica.log_view()
            );
            let message = self.in_group(g, message);
            self.violation.get_or_insert(Violation {
                invariant: "view_durability",
                tick: self.tick,
                replica: Some(r),
                message,
            });
        }
    }

    /// Liveness phase: once the core has been normal in one view under a primary of the
    /// core, with no replica voting for a view change, for SETTLE_TICKS (longer than a
    /// primary's abdication window, so a primary that lost its backups during the faults has
    /// already stepped down), with the network healthy and faults off, the cluster must not
    /// change views again: a replica that counts votes twice, or deposes a healthy primary,
    /// shows up here.
    pub(super) fn check_view_churn(&mut self) {
        // A network that drops packets (a full path: capacity is not a fault the liveness
        // phase turns off) can starve heartbeats: a view change then is no churn, and the
        // cluster must settle again before the oracle holds it to its view.
        let dropped = self.network.stats().packets_dropped;
        if dropped != self.dropped_at_settle {
            self.settled_view.fill(None);
        }
        self.dropped_at_settle = dropped;
        for g in 0..self.options.group_count as usize {
            self.check_group_churn(g);
        }
    }

    fn check_group_churn(&mut self, g: usize) {
        let views: Vec<(u32, consensus::Status, bool)> = self
            .core
            .iter()
            .filter_map(|&r| self.cluster.group(r, g))
            .map(|x| (x.view(), x.status(), x.is_primary()))
            .collect();
        if let Some((settled, since)) =
            self.settled_view[g].filter(|&(_, t)| t + SETTLE_TICKS <= self.tick)
        {
            if let Some(&(view, ..)) = views.iter().find(|(view, ..)| *view > settled) {
                let message = format!(
                    "the core settled in view {settled} at tick {since} with faults off, then moved to view {view}"
                );
                let message = self.in_group(g, message);
                self.violation.get_or_insert(Violation {
                    invariant: "view_churn",
                    tick: self.tick,
                    replica: None,
                    message,
                });
            }
            return;
        }
        let all_up = views.len() == self.core.len();
        let one_view = views
            .iter()
            .all(|&(view, status, _)| view == views[0].0 && status == consensus::Status::Normal);
        let led = views.iter().any(|&(_, _, primary)| primary);
        // A replica still voting (a primary that abdicated during the faults keeps voting
        // until the view changes) has not settled.
        let voting = self.vote_sent_tick + 1 >= self.tick;
        let settled_in = (all_up && one_view && led && !voting).then(|| views[0].0);
        match (settled_in, self.settled_view[g]) {
            (Some(view), Some((v, _))) if v == view => {}
            (Some(view), _) => self.settled_view[g] = Some((view, self.tick)),
            (None, _) => self.settled_view[g] = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SETTLE_TICKS;
    use crate::scenario::Scenario;

    #[test]
    fn a_view_change_after_the_core_settled_is_churn() {
        let mut s = Scenario::new(9, 3, 2);
        s.commit_more(5, 5_000).unwrap();
        s.sim.start_liveness_phase();
        s.run(SETTLE_TICKS + 50).unwrap();
        assert!(s.sim.settled_view[0].is_some(), "{}", s.describe());
        // Something deposes the settled primary (here a restart, after which it must not lead
        // again; in a real bug, a replica that counts a vote twice or times out on a healthy
        // primary).
        let p = s.primary().unwrap();
        s.crash(p);
        s.restart(p);
        let err = s.run(5_000).unwrap_err();
        assert!(err.starts_with("view_churn"), "{err}");
    }

    #[test]
    fn a_restart_below_a_view_the_replica_showed_is_caught() {
        let mut s = Scenario::new(10, 3, 2);
        s.commit_more(5, 5_000).unwrap();
        let b = (s.primary().unwrap() + 1) % 3;
        s.crash(b);
        s.restart(b);
        assert!(s.sim.violation.is_none());
        // As if it had sent a message of a view its superblock never recorded.
        let view = s.replica(b).view();
        s.sim.view_shown[b as usize][0].0 = view + 1;
        s.crash(b);
        s.restart(b);
        let v = s.sim.violation.take().expect("caught");
        assert_eq!(v.invariant, "view_durability", "{}", v.message);
    }
}
