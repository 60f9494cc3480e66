//! `vopr shrink`: reduces a failing run (a seed and its fault schedule) to a small one that
//! fails the same way (the same outcome and the same invariant).
//!
//! The passes, repeated until none shrinks anything or the budget is spent:
//! 1. fewer ticks: the safety phase cut at the earliest tick that still fails (events after it
//!    dropped; the liveness event moved there, keeping its core);
//! 2. fewer events: delta debugging (ddmin) over the schedule's events, removing halves, then
//!    smaller chunks, down to single events;
//! 3. fewer clients, then fewer replicas (events naming a removed replica or node dropped,
//!    node numbers renumbered);
//! 4. lower rates: packet loss and duplication off or halved, shorter delays;
//! 5. a smaller world: half the journal ring, fewer keys.
//!
//! Deterministic: candidates are tried in a fixed order and the budget counts runs, so the same
//! input shrinks to the same output (a `--budget-s` deadline, if given, is the one exception,
//! and the report says when it cut the search short).

use crate::network::NetFault;
use crate::options::Options;
use crate::run::{Outcome, Summary};
use crate::schedule::{Event, Fault};
use std::time::Instant;

/// A run to try: what a schedule file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub seed: u64,
    pub options: Options,
    pub events: Vec<Event>,
}

/// How a run failed: what a smaller run must reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub outcome: Outcome,
    pub invariant: Option<String>,
}

impl Failure {
    /// The failure of a run, or None if it passed.
    pub fn of(summary: &Summary) -> Option<Failure> {
        (summary.outcome != Outcome::Pass).then(|| Failure {
            outcome: summary.outcome,
            invariant: summary.violation.as_ref().map(|v| v.invariant.to_string()),
        })
    }

    pub fn describe(&self) -> String {
        match &self.invariant {
            Some(invariant) => format!("{} ({invariant})", self.outcome.name()),
            None => self.outcome.name().to_string(),
        }
    }
}

/// Limits of a shrink.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Runs tried at most.
    pub runs: u64,
    /// Wall-clock deadline (not deterministic: only as a safety net).
    pub deadline: Option<Instant>,
}

/// What a shrink did.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub best: Candidate,
    pub runs: u64,
    /// The search stopped on its budget rather than at a fixpoint.
    pub budget_spent: bool,
    pub deadline_hit: bool,
}

/// Runs a candidate and says how it failed (None: it passed).
pub type Test<'a> = dyn FnMut(&Candidate) -> Option<Failure> + 'a;

struct Search<'a, 'b> {
    test: &'a mut Test<'b>,
    target: Failure,
    budget: Budget,
    runs: u64,
    deadline_hit: bool,
    progress: &'a mut dyn FnMut(u64, &Candidate),
}

impl Search<'_, '_> {
    fn spent(&self) -> bool {
        self.runs >= self.budget.runs || self.deadline_hit
    }

    /// Whether `candidate` fails as the target does (false once the budget is spent).
    fn reproduces(&mut self, candidate: &Candidate) -> bool {
        if self.budget.deadline.is_some_and(|d| Instant::now() >= d) {
            self.deadline_hit = true;
        }
        if self.spent() || candidate.options.validate().is_err() {
            return false;
        }
        self.runs += 1;
        let same = (self.test)(candidate).as_ref() == Some(&self.target);
        (self.progress)(self.runs, candidate);
        same
    }
}

/// Shrinks `start`, which fails as `target`, with `test` running each candidate.
pub fn shrink(
    start: Candidate,
    target: Failure,
    test: &mut Test<'_>,
    budget: Budget,
    progress: &mut dyn FnMut(u64, &Candidate),
) -> Shrunk {
    let mut search = Search {
        test,
        target,
        budget,
        runs: 0,
        deadline_hit: false,
        progress,
    };
    let mut best = start;
    loop {
        let before = size(&best);
        best = fewer_ticks(&mut search, best);
        best = fewer_events(&mut search, best);
        best = fewer_clients(&mut search, best);
        best = fewer_replicas(&mut search, best);
        best = fewer_groups(&mut search, best);
        best = lower_rates(&mut search, best);
        best = smaller_world(&mut search, best);
        let after = size(&best);
        let shrank = (after.0, after.1, after.2, after.4)
            < (before.0, before.1, before.2, before.4)
            || best.options.ticks_safety <= before.3;
        if !shrank || search.spent() {
            break;
        }
    }
    Shrunk {
        best,
        runs: search.runs,
        budget_spent: search.spent(),
        deadline_hit: search.deadline_hit,
    }
}

/// What another round of passes must shrink to be worth it: events, replicas, clients,
/// groups, or ticks by a twentieth (bisection over a failure that does not fail at every later
/// cut would otherwise nibble a few ticks a round).
fn size(c: &Candidate) -> (usize, u8, u8, u64, u8) {
    (
        c.events.len(),
        c.options.replica_count,
        c.options.client_count,
        c.options.ticks_safety * 20 / 21,
        c.options.group_count,
    )
}

// ----- 1. Ticks -----

/// The candidate with its safety phase ending at `ticks`.
fn cut_at(c: &Candidate, ticks: u64) -> Candidate {
    let is_liveness = |e: &Event| matches!(e.fault, Fault::Liveness { .. });
    let mut cut = c.clone();
    cut.options.ticks_safety = ticks;
    cut.events.retain(|e| e.tick <= ticks && !is_liveness(e));
    if let Some(liveness) = c.events.iter().find(|e| is_liveness(e)) {
        cut.events.push(Event {
            tick: ticks,
            ..liveness.clone()
        });
    }
    cut
}

fn fewer_ticks(s: &mut Search, c: Candidate) -> Candidate {
    let (mut lo, mut hi) = (1, c.options.ticks_safety);
    let mut best = c;
    while lo < hi && !s.spent() {
        let mid = lo + (hi - lo) / 2;
        let cut = cut_at(&best, mid);
        if s.reproduces(&cut) {
            best = cut;
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    best
}

// ----- 2. Events (ddmin) -----

fn fewer_events(s: &mut Search, c: Candidate) -> Candidate {
    let mut best = c;
    let mut chunks = 2;
    while !best.events.is_empty() && !s.spent() {
        let len = best.events.len();
        let chunks_now = chunks.min(len);
        let size = len.div_ceil(chunks_now);
        let mut removed_any = false;
        let mut start = 0;
        while start < best.events.len() && !s.spent() {
            let end = (start + size).min(best.events.len());
            let mut candidate = best.clone();
            candidate.events.drain(start..end);
            if s.reproduces(&candidate) {
                best = candidate;
                removed_any = true;
                // The next chunk now starts where this one did.
            } else {
                start = end;
            }
        }
        if removed_any {
            chunks = (chunks - 1).max(2);
        } else if size == 1 {
            break;
        } else {
            chunks = (chunks * 2).min(best.events.len().max(1));
        }
    }
    best
}

// ----- 3. Clients and replicas -----

fn fewer_clients(s: &mut Search, c: Candidate) -> Candidate {
    let mut best = c;
    while best.options.client_count > 1 && !s.spent() {
        let mut candidate = best.clone();
        let gone = (best.options.replica_count + best.options.client_count - 1) as u16;
        candidate.options.client_count -= 1;
        candidate.events.retain(|e| match e.fault {
            Fault::Network(NetFault::Clog { from, to, .. }) => from != gone && to != gone,
            _ => true,
        });
        if !s.reproduces(&candidate) {
            break;
        }
        best = candidate;
    }
    best
}

/// Drops the highest-numbered group (and its disk faults) while the failure stays: the other
/// groups keep their namespaces, so their runs only lose the traffic of the group gone.
fn fewer_groups(s: &mut Search, c: Candidate) -> Candidate {
    let mut best = c;
    while best.options.group_count > 1 && !s.spent() {
        let mut candidate = best.clone();
        candidate.options.group_count -= 1;
        let gone = candidate.options.group_count;
        candidate
            .events
            .retain(|e| !matches!(e.fault, Fault::Storage { group, .. } if group == gone));
        if !s.reproduces(&candidate) {
            break;
        }
        best = candidate;
    }
    best
}

fn fewer_replicas(s: &mut Search, c: Candidate) -> Candidate {
    let mut best = c;
    while best.options.replica_count > 1 && !s.spent() {
        let candidate = without_last_replica(&best);
        if !s.reproduces(&candidate) {
            break;
        }
        best = candidate;
    }
    best
}

/// The candidate with its highest-numbered replica gone: its events dropped, and the nodes
/// after it (the clients) renumbered.
fn without_last_replica(c: &Candidate) -> Candidate {
    let gone = c.options.replica_count - 1;
    let mut out = c.clone();
    out.options.replica_count = gone;
    out.events = c
        .events
        .iter()
        .filter_map(|e| {
            let mut e = e.clone();
            let keep = match &mut e.fault {
                Fault::Crash { replica, .. }
                | Fault::Pause { replica, .. }
                | Fault::Isolate { replica, .. }
                | Fault::Restart { replica, .. }
                | Fault::Storage { replica, .. } => *replica != gone,
                Fault::DropStartView { to } => *to != gone,
                Fault::Liveness { core } => {
                    core.retain(|&r| r != gone);
                    !core.is_empty()
                }
                Fault::Network(NetFault::Partition { cuts }) => {
                    cuts.retain(|&(a, b)| a != gone && b != gone);
                    !cuts.is_empty()
                }
                Fault::Network(NetFault::Heal) => true,
                Fault::Network(NetFault::Clog { from, to, .. }) => {
                    let g = gone as u16;
                    let keep = *from != g && *to != g;
                    *from -= (*from > g) as u16;
                    *to -= (*to > g) as u16;
                    keep
                }
            };
            keep.then_some(e)
        })
        .collect();
    out
}

// ----- 4. Rates and 5. the world -----

fn lower_rates(s: &mut Search, c: Candidate) -> Candidate {
    let mut best = c;
    let tries: [fn(&mut Options) -> bool; 4] = [
        |o| lower(&mut o.network.packet_loss_probability),
        |o| lower(&mut o.network.packet_replay_probability),
        |o| {
            let n = &mut o.network;
            let shorter = (n.one_way_delay_mean_ticks / 2).max(n.one_way_delay_min_ticks);
            let changed = shorter != n.one_way_delay_mean_ticks;
            n.one_way_delay_mean_ticks = shorter;
            changed
        },
        |o| {
            let changed = o.write_latency_max_ticks > 0;
            o.write_latency_max_ticks /= 2;
            changed
        },
    ];
    for change in tries {
        best = keep_applying(s, best, change);
    }
    best
}

/// Off if it can be, else half.
fn lower(rate: &mut f64) -> bool {
    if *rate == 0.0 {
        return false;
    }
    *rate = if *rate < 0.01 { 0.0 } else { *rate / 2.0 };
    true
}

fn smaller_world(s: &mut Search, c: Candidate) -> Candidate {
    let tries: [fn(&mut Options) -> bool; 2] = [
        |o| {
            let changed = o.key_count > 1;
            o.key_count = (o.key_count - 1).max(1);
            changed
        },
        |o| {
            let half = o.journal_slot_count / 2;
            let changed = half >= 64;
            if changed {
                o.journal_slot_count = half;
            }
            changed
        },
    ];
    let mut best = c;
    for change in tries {
        best = keep_applying(s, best, change);
    }
    best
}

/// Applies `change` to the options while the run still fails the same way.
fn keep_applying(s: &mut Search, c: Candidate, change: fn(&mut Options) -> bool) -> Candidate {
    let mut best = c;
    while !s.spent() {
        let mut candidate = best.clone();
        if !change(&mut candidate.options) || !s.reproduces(&candidate) {
            break;
        }
        best = candidate;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{DiskFault, Zone};

    fn crash(tick: u64, replica: u8) -> Event {
        Event {
            tick,
            step: None,
            fault: Fault::Crash {
                replica,
                restart_tick: Some(tick + 10),
                torn: vec![],
                garbage: false,
                aimed: None,
            },
        }
    }

    fn latent(tick: u64, replica: u8, index: u64) -> Event {
        Event {
            tick,
            step: None,
            fault: Fault::Storage {
                group: 0,
                replica,
                fault: DiskFault::Latent {
                    zone: Zone::WalPrepares,
                    index,
                },
            },
        }
    }

    /// A planted bug that needs three particular events, in order, among hundreds: a latent
    /// fault at slot 7 of replica 1, then a crash of replica 1, then a crash of replica 2.
    fn planted(c: &Candidate) -> Option<Failure> {
        let after = |from: usize, p: &dyn Fn(&Event) -> bool| {
            c.events.iter().skip(from).position(p).map(|i| i + from)
        };
        let fault = after(0, &|e| e.fault == latent(0, 1, 7).fault)?;
        let crash1 = after(fault, &|e| {
            matches!(e.fault, Fault::Crash { replica: 1, .. })
        })?;
        let crash2 = after(crash1, &|e| {
            matches!(e.fault, Fault::Crash { replica: 2, .. })
        })?;
        (crash2 > crash1 && c.options.ticks_safety >= 900).then(|| Failure {
            outcome: Outcome::Correctness,
            invariant: Some("agreement".to_string()),
        })
    }

    #[test]
    fn ddmin_finds_the_three_events_a_planted_bug_needs_deterministically() {
        // Noise everywhere: crashes of every replica and latent faults elsewhere; the three
        // events that matter sit at ticks 300, 600 and 800.
        let mut events = Vec::new();
        for i in 0..300u64 {
            let tick = i * 3;
            match tick {
                300 => events.push(latent(tick, 1, 7)),
                600 => events.push(crash(tick, 1)),
                801 => events.push(crash(tick, 2)),
                _ if i % 2 == 0 => events.push(latent(tick, (i % 3) as u8, 1 + i % 5)),
                _ => events.push(crash(tick, (i % 3) as u8)),
            }
        }
        let mut options = Options::from_seed(1);
        options.replica_count = 3;
        options.ticks_safety = 1_000;
        let start = Candidate {
            seed: 1,
            options,
            events,
        };
        let target = planted(&start).expect("the start fails");
        let budget = Budget {
            runs: 10_000,
            deadline: None,
        };
        let shrunk = shrink(
            start.clone(),
            target.clone(),
            &mut planted,
            budget,
            &mut |_, _| {},
        );
        assert_eq!(shrunk.best.events.len(), 3, "{:?}", shrunk.best.events);
        assert_eq!(planted(&shrunk.best), Some(target.clone()));
        assert!(shrunk.best.options.ticks_safety >= 900);
        assert!(shrunk.best.options.ticks_safety < 1_000, "ticks cut too");
        let again = shrink(start, target, &mut planted, budget, &mut |_, _| {});
        assert_eq!(
            again.best, shrunk.best,
            "the same input shrinks to the same output"
        );
        assert_eq!(again.runs, shrunk.runs);
    }

    #[test]
    fn removing_a_replica_drops_its_events_and_renumbers_the_clients() {
        let mut options = Options::from_seed(2);
        options.replica_count = 3;
        options.client_count = 2;
        let clog = |from, to| Event {
            tick: 5,
            step: None,
            fault: Fault::Network(NetFault::Clog { from, to, ticks: 9 }),
        };
        let c = Candidate {
            seed: 2,
            options,
            events: vec![
                crash(1, 2),
                crash(2, 1),
                clog(0, 3),
                clog(2, 4),
                Event {
                    tick: 7,
                    step: None,
                    fault: Fault::Network(NetFault::Partition {
                        cuts: vec![(0, 2), (2, 0), (0, 1)],
                    }),
                },
            ],
        };
        let out = without_last_replica(&c);
        assert_eq!(out.options.replica_count, 2);
        assert_eq!(out.events[0], crash(2, 1));
        assert_eq!(out.events[1], clog(0, 2), "client 0 was node 3, now node 2");
        assert_eq!(
            out.events[2].fault,
            Fault::Network(NetFault::Partition { cuts: vec![(0, 1)] })
        );
        assert_eq!(out.events.len(), 3);
    }

    #[test]
    fn groups_the_failure_does_not_need_are_dropped_with_their_disk_faults() {
        let in_group = |tick, group| Event {
            tick,
            step: None,
            fault: Fault::Storage {
                group,
                replica: 1,
                fault: DiskFault::Latent {
                    zone: Zone::WalPrepares,
                    index: 3,
                },
            },
        };
        // Fails while group 1 exists and its fault is there (group 0's noise is not needed).
        let mut planted_in_group_1 = |c: &Candidate| {
            let needed = c.events.iter().any(|e| *e == in_group(5, 1));
            (c.options.group_count >= 2 && needed).then(|| Failure {
                outcome: Outcome::Correctness,
                invariant: Some("agreement".to_string()),
            })
        };
        let mut options = Options::from_seed(3);
        options.group_count = 6;
        let events = (0..6).map(|g| in_group(5, g)).collect();
        let start = Candidate {
            seed: 3,
            options,
            events,
        };
        let target = planted_in_group_1(&start).unwrap();
        let budget = Budget {
            runs: 1_000,
            deadline: None,
        };
        let shrunk = shrink(
            start,
            target,
            &mut planted_in_group_1,
            budget,
            &mut |_, _| {},
        );
        assert_eq!(shrunk.best.options.group_count, 2);
        assert_eq!(shrunk.best.events, vec![in_group(5, 1)]);
    }
}
