//! Node steps: disks completing writes, restarts, and what follows every step of a group
//! (its actions routed, its oracles run, its transitions traced, faults aimed at it).

use super::*;
use crate::node::Glance;

impl Simulation {
    /// The disks complete the writes due before this tick; each replica learns which, and
    /// sends what waited for them.
    pub(super) fn complete_writes(&mut self) {
        let tick = self.tick;
        for r in 0..self.options.replica_count {
            for g in 0..self.options.group_count as usize {
                if self.is_paused(r) {
                    // A paused process learns of completed writes only when it resumes.
                    break;
                }
                let Some(node) = self.cluster.node_mut(r) else {
                    break;
                };
                // Most ticks complete nothing new: no step (no replica code, no panic guard,
                // no oracle pass) then.
                if node.advance_disk(g, tick) {
                    let result = cluster::catch(|| node.on_storage_done(g));
                    self.after_replica_step(r, g, result);
                }
            }
        }
    }

    /// Restarts replica `r` from its storage now.
    pub fn restart(&mut self, r: u8) {
        self.incarnations += 1;
        let result = self.cluster.restart(r, self.tick, self.incarnations);
        self.counters.restarts += 1;
        for oracle in &mut self.oracles {
            oracle.on_restart(r);
        }
        self.trace.record(Event::Restart {
            tick: self.tick,
            replica: r,
        });
        tracing::info!(tick = self.tick, replica = r, "restart");
        match result {
            Ok(()) => {
                for g in 0..self.options.group_count as usize {
                    // The state it opened in (a trace, or a timeline, then knows it at once).
                    if let Some(x) = self.cluster.group(r, g) {
                        let (view, status) = (x.view(), cluster::status_name(x.status()));
                        self.trace.record(Event::Status {
                            tick: self.tick,
                            replica: r,
                            group: g as u8,
                            view,
                            status,
                        });
                    }
                    self.check_view_durable(r, g);
                    self.writes_seen[r as usize][g] = 0;
                    self.after_replica_step(r, g, Ok(()));
                }
            }
            Err(cluster::RestartError::Panicked(message)) => self.fail_replica(r, 0, message),
            Err(cluster::RestartError::Unopenable) => {
                self.counters.unopenable += 1;
                self.refused.push(r);
                tracing::info!(tick = self.tick, replica = r, "refuses to open (its superblock, checkpoint or a journal entry is lost): stays down");
            }
        }
    }

    pub(super) fn restart_due(&mut self) {
        for r in 0..self.options.replica_count {
            let slot = &self.cluster.slots[r as usize];
            if slot.node.is_none() && slot.restart_tick.is_some_and(|t| t <= self.tick) {
                self.restart(r);
            }
        }
    }

    pub(super) fn fail_replica(&mut self, r: u8, g: usize, message: String) {
        let message = self.in_group(g, message);
        self.violation.get_or_insert(Violation {
            invariant: "replica_assertion",
            tick: self.tick,
            replica: Some(r),
            message,
        });
    }

    /// A violation's message, naming the group when the nodes host several.
    pub(crate) fn in_group(&self, g: usize, message: String) -> String {
        if self.options.group_count > 1 {
            format!("group {g}: {message}")
        } else {
            message
        }
    }

    /// Records violation `v` of group `g` (the first one found stands).
    pub(super) fn fail_in_group(&mut self, g: usize, mut v: Violation) {
        v.message = self.in_group(g, v.message);
        self.violation.get_or_insert(v);
    }

    /// After group `g` of node `r` handled an input: report a panic, route its actions, run
    /// the group's oracles, record view/status/commit transitions, and aim faults at what it
    /// just did. Each call is one step of the tick (a point where aimed faults happen).
    pub(super) fn after_replica_step(&mut self, r: u8, g: usize, result: Result<(), String>) {
        let outer = self.stepping.replace(self.steps_this_tick);
        self.steps_this_tick += 1;
        self.handle_replica_step(r, g, result);
        self.stepping = outer;
    }

    pub(super) fn handle_replica_step(&mut self, r: u8, g: usize, result: Result<(), String>) {
        if let Err(message) = result {
            return self.fail_replica(r, g, message);
        }
        let Some(node) = self.cluster.node_mut(r) else {
            return;
        };
        // One buffer for every step's actions (no allocation per step on the hot path).
        let mut actions = std::mem::take(&mut self.actions);
        node.drain_actions(g, &mut actions);
        let mut sent = aimed::Sent::default();
        for action in actions.drain(..) {
            match action {
                Action::Send { to, message } => {
                    self.check_durable_before_send(r, g, &message);
                    self.note_view_shown(r, g, &message);
                    sent.note(&message);
                    if self.drop_start_view(&message, to) {
                        continue;
                    }
                    let bytes = message.encode();
                    self.network
                        .submit(r as usize, to as usize, bytes, self.tick);
                }
                Action::Reply { client, message } => {
                    let index = workload::client_index(client);
                    if let Some(index) = index.filter(|&i| i < self.options.client_count) {
                        let node = self.options.replica_count as usize + index as usize;
                        let bytes = message.encode();
                        self.network.submit(r as usize, node, bytes, self.tick);
                    }
                }
            }
        }
        self.actions = actions;
        let Some(replica) = self.cluster.group(r, g) else {
            return;
        };
        let glance = replica.glance();
        if let Err(v) = self.oracles[g].check_replica(self.tick, r, replica, &glance) {
            return self.fail_in_group(g, v);
        }
        self.observe(r, g, glance);
        self.aim_after_step(r, g, sent, glance);
    }

    pub(super) fn observe(&mut self, r: u8, g: usize, glance: Glance) {
        let (view, status, commit) = (glance.view, glance.status, glance.commit_min);
        let leading = glance.primary && status == consensus::Status::Normal;
        let slot = &mut self.cluster.slots[r as usize];
        let group = g as u8;
        if (view, status) != slot.observed[g] {
            if status == consensus::Status::Normal && view > slot.observed[g].0 {
                self.view_change_done = true;
            }
            slot.observed[g] = (view, status);
            self.counters.view_max = self.counters.view_max.max(view);
            let group_max = &mut self.counters.view_max_by_group[g];
            *group_max = (*group_max).max(view);
            let status = cluster::status_name(status);
            self.trace.record(Event::Status {
                tick: self.tick,
                replica: r,
                group,
                view,
                status,
            });
            tracing::info!(tick = self.tick, replica = r, group, view, status, "status");
        }
        if commit != slot.commit_observed[g] {
            slot.commit_observed[g] = commit;
            self.trace.record(Event::Commit {
                tick: self.tick,
                replica: r,
                group,
                commit,
            });
            tracing::debug!(tick = self.tick, replica = r, group, commit, "commit");
            if leading {
                self.aim_after_primary_commit(r);
            }
        }
    }
}
