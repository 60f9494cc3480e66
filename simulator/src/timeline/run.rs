//! The timeline of one run: per replica, its status, view and commit as segments that start
//! where they change; faults as bands and marks; client operations from call to return; the
//! violation (or the liveness failure) and the operations it involves.

use super::{label, n, Collected};
use crate::checker::linearizability::{check_kv, Explanation};
use crate::checker::LookupMap;
use crate::end_of_run::linearizability_budget;
use crate::history::Operation;
use crate::network::NetFault;
use crate::run::{Outcome, Summary};
use crate::schedule::Fault;
use crate::trace::Event;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The statuses a lane shows, by index: what the replica last reported, `down` between a
/// crash and its restart, and `opened` from a restart until it reports again.
const STATUSES: [&str; 5] = ["normal", "view_change", "recovering", "down", "opened"];

fn status_index(name: &str) -> usize {
    STATUSES.iter().position(|&s| s == name).unwrap_or(4)
}

/// The page of a finished run, or `None` when the run collected nothing (no `timeline` in
/// its `RunConfig`, or the harness panicked).
pub fn render(summary: &Summary) -> Option<String> {
    let collected = summary.timeline.as_ref()?;
    let title = format!(
        "vopr seed {}: {}",
        summary.seed,
        summary.outcome.name().replace('_', " ")
    );
    Some(super::page(&title, &data(summary, collected)))
}

/// The JSON the page draws.
pub fn data(summary: &Summary, collected: &Collected) -> Value {
    let end = summary.ticks;
    let replay = summary.replay.as_deref().unwrap_or_default();
    let (bands, marks) = faults(summary, end);
    json!({
        "kind": "run",
        "seed": n(summary.seed),
        "outcome": summary.outcome.name(),
        "ticks": n(end),
        "replicas": summary.replicas,
        "groups": summary.groups.max(1),
        "clients": summary.clients,
        "version": summary.version,
        "trace_hash": summary.trace_hash,
        "report": crate::cli::report(summary, replay),
        "statuses": STATUSES,
        "lanes": lanes(summary.replicas, summary.groups.max(1), &collected.events),
        "commit_max": n(summary.ops_committed),
        "bands": bands,
        "marks": marks,
        "liveness": liveness_tick(&collected.events).map(n),
        "core": collected.core,
        "ops": collected.ops.iter().map(|op| json!([
            op.client,
            n(op.call),
            op.ret.map(n),
            label(op),
        ])).collect::<Vec<_>>(),
        "violation": violation(summary, &collected.ops),
    })
}

/// Per replica and consensus group (lane `replica * groups + group`: a node's groups side by
/// side), `[tick, status, view, commit]` at every tick where one of them changed. A crash or a
/// restart is the node's: it shows on every lane of the replica.
fn lanes(replicas: u8, groups: u8, events: &[Event]) -> Vec<Vec<Value>> {
    let groups = groups as usize;
    let count = replicas as usize * groups;
    // Replicas open formatted: normal in view 0 with nothing committed.
    let mut state: Vec<(usize, u32, u64)> = vec![(0, 0, 0); count];
    let mut lanes: Vec<Vec<Value>> = (0..count).map(|_| vec![json!(["0", 0, 0, "0"])]).collect();
    let mut change =
        |lane: usize, tick: u64, next: &dyn Fn((usize, u32, u64)) -> (usize, u32, u64)| {
            let (Some(now), Some(points)) = (state.get_mut(lane), lanes.get_mut(lane)) else {
                return;
            };
            let next = next(*now);
            if *now == next {
                return;
            }
            *now = next;
            // Several changes in one tick: the last one stands.
            let entry = json!([n(tick), next.0, next.1, n(next.2)]);
            if points.last().is_some_and(|last| last[0] == entry[0]) {
                points.pop();
            }
            points.push(entry);
        };
    for event in events {
        match *event {
            Event::Status { group, .. } | Event::Commit { group, .. }
                if group as usize >= groups => {}
            Event::Status {
                tick,
                replica,
                group,
                view,
                status,
            } => change(replica as usize * groups + group as usize, tick, &|s| {
                (status_index(status), view, s.2)
            }),
            Event::Commit {
                tick,
                replica,
                group,
                commit,
            } => change(replica as usize * groups + group as usize, tick, &|s| {
                (s.0, s.1, commit)
            }),
            Event::Crash { tick, replica } | Event::Restart { tick, replica } => {
                let status = status_index(match event {
                    Event::Crash { .. } => "down",
                    _ => "opened",
                });
                for g in 0..groups {
                    change(replica as usize * groups + g, tick, &|s| (status, s.1, s.2));
                }
            }
            _ => {}
        }
    }
    lanes
}

fn liveness_tick(events: &[Event]) -> Option<u64> {
    events.iter().find_map(|e| match *e {
        Event::Liveness { tick } => Some(tick),
        _ => None,
    })
}

/// Bands (`[from, to)` on a replica's lane, or the network's when `replica` is null) and
/// marks (one tick) from the run's fault schedule.
fn faults(summary: &Summary, end: u64) -> (Vec<Value>, Vec<Value>) {
    let mut bands = Vec::new();
    let mut marks = Vec::new();
    let band = |kind: &str, replica: Option<u8>, from: u64, to: u64, label: String| json!({"kind": kind, "replica": replica, "from": n(from), "to": n(to.min(end)), "label": label});
    let mark = |kind: &str, replica: Option<u8>, tick: u64, label: String| json!({"kind": kind, "replica": replica, "tick": n(tick), "label": label});
    // A partition lasts until the next partition or heal.
    let mut partition: Option<(u64, String)> = None;
    for event in &summary.schedule {
        let tick = event.tick;
        let aimed = |a: &dyn std::fmt::Debug| format!(" (aimed: {a:?})");
        match &event.fault {
            Fault::Crash {
                replica,
                restart_tick,
                torn,
                garbage,
                aimed: how,
            } => {
                let mut text = format!("crash of replica {replica}");
                match restart_tick {
                    Some(t) => text.push_str(&format!(", restarts at {t}")),
                    None => text.push_str(", stays down"),
                }
                if !torn.is_empty() {
                    text.push_str(&format!(", writes lost {torn:?}"));
                }
                if *garbage {
                    text.push_str(", torn sector");
                }
                if let Some(a) = how {
                    text.push_str(&aimed(a));
                }
                marks.push(mark("crash", Some(*replica), tick, text));
            }
            Fault::Pause { replica, ticks } => bands.push(band(
                "pause",
                Some(*replica),
                tick,
                tick.saturating_add(*ticks),
                format!("replica {replica} paused for {ticks} ticks"),
            )),
            Fault::Restart { replica, aimed: a } => marks.push(mark(
                "restart",
                Some(*replica),
                tick,
                format!("restart of replica {replica}{}", aimed(a)),
            )),
            Fault::Isolate {
                replica,
                ticks,
                aimed: a,
            } => bands.push(band(
                "isolate",
                Some(*replica),
                tick,
                tick.saturating_add(*ticks),
                format!("replica {replica} isolated for {ticks} ticks{}", aimed(a)),
            )),
            Fault::DropStartView { to } => marks.push(mark(
                "drop",
                Some(*to),
                tick,
                format!("a start_view to replica {to} dropped"),
            )),
            Fault::Storage {
                replica,
                group,
                fault,
            } => {
                let mut m = mark(
                    "storage",
                    Some(*replica),
                    tick,
                    format!("disk fault on replica {replica} (group {group}): {fault:?}"),
                );
                // On its group's lane only.
                m["group"] = json!(group);
                marks.push(m);
            }
            Fault::Liveness { .. } => {}
            Fault::Network(net) => match net {
                NetFault::Partition { cuts } => {
                    if let Some((from, text)) = partition.take() {
                        bands.push(band("partition", None, from, tick, text));
                    }
                    let cuts: Vec<String> = cuts.iter().map(|(a, b)| format!("{a}→{b}")).collect();
                    partition = Some((tick, format!("partition: cut {}", cuts.join(" "))));
                }
                NetFault::Heal => {
                    if let Some((from, text)) = partition.take() {
                        bands.push(band("partition", None, from, tick, text));
                    }
                }
                NetFault::Clog { from, to, ticks } => bands.push(band(
                    "clog",
                    None,
                    tick,
                    tick.saturating_add(*ticks),
                    format!("path {from}→{to} clogged for {ticks} ticks (nodes: replicas, then clients)"),
                )),
            },
        }
    }
    if let Some((from, text)) = partition {
        bands.push(band("partition", None, from, end, text));
    }
    (bands, marks)
}

/// The violation the page marks: its tick, its replica, what it says, and the client
/// operations it involves (indices into `ops`).
fn violation(summary: &Summary, ops: &[Operation]) -> Value {
    if let Some(v) = &summary.violation {
        let involved = if v.invariant == "linearizability" {
            not_placed(ops)
        } else {
            // The operations in flight when the invariant broke.
            (0..ops.len())
                .filter(|&i| ops[i].call <= v.tick && ops[i].ret.is_none_or(|r| r >= v.tick))
                .collect()
        };
        return json!({
            "title": format!("{} at tick {}", v.invariant, v.tick),
            "tick": n(v.tick),
            "replica": v.replica,
            "message": v.message,
            "involved": involved,
        });
    }
    let Some(state) = summary
        .liveness
        .as_ref()
        .filter(|_| summary.outcome == Outcome::Liveness)
    else {
        return Value::Null;
    };
    // The requests still waiting: each is the client's operation called at `since_tick`.
    let involved: BTreeSet<usize> = state
        .waiting
        .iter()
        .filter_map(|w| {
            ops.iter()
                .rposition(|op| op.client == w.client as u64 && op.call == w.since_tick)
        })
        .collect();
    let mut message = state.headline();
    for r in &state.replicas {
        let group = match r.group {
            0 => String::new(),
            g => format!(" group {g}"),
        };
        message.push_str(&format!(
            "\nreplica {}{group}: {}{}",
            r.replica,
            r.status,
            r.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ));
    }
    json!({
        "title": format!("liveness: {}", state.headline()),
        "tick": n(summary.ticks),
        "replica": Value::Null,
        "message": message,
        "involved": involved,
    })
}

/// The operations the linearizability check could not place, found by checking the history
/// again (the run kept only the report's text): indices into `ops`.
fn not_placed(ops: &[Operation]) -> Vec<usize> {
    let budget = linearizability_budget(ops.len());
    let result = check_kv(ops, budget);
    let Some(explanation) = result.explanation else {
        return Vec::new();
    };
    indices_of(ops, &evidence(&explanation))
}

/// The operations an explanation blames: those that cannot be placed (and those that would
/// strand a read), or an anomaly's.
pub(super) fn evidence(explanation: &Explanation) -> Vec<Operation> {
    match &explanation.anomaly {
        Some(anomaly) => anomaly.ops.clone(),
        None => explanation
            .cannot_place
            .iter()
            .chain(&explanation.would_strand)
            .cloned()
            .collect(),
    }
}

/// Where each of `wanted` is in `ops` (equal operations are matched in order, once each).
pub(super) fn indices_of(ops: &[Operation], wanted: &[Operation]) -> Vec<usize> {
    // Looked up only, never iterated (and fixed-hashed): no order reaches the result.
    let mut at: LookupMap<&Operation, Vec<usize>> = LookupMap::default();
    for (i, op) in ops.iter().enumerate().rev() {
        at.entry(op).or_default().push(i);
    }
    let mut found: Vec<usize> = wanted
        .iter()
        .filter_map(|op| at.get_mut(op).and_then(Vec::pop))
        .collect();
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(tick: u64, replica: u8, group: u8, view: u32, status: &'static str) -> Event {
        Event::Status {
            tick,
            replica,
            group,
            view,
            status,
        }
    }

    /// The last `[tick, status, view, commit]` of a lane, numbers as numbers.
    fn last(lanes: &[Vec<Value>], lane: usize) -> (u64, u64, u64, u64) {
        let e = lanes[lane].last().unwrap();
        let num = |v: &Value| {
            v.as_str()
                .map_or_else(|| v.as_u64().unwrap(), |s| s.parse().unwrap())
        };
        (num(&e[0]), num(&e[1]), num(&e[2]), num(&e[3]))
    }

    #[test]
    fn every_group_has_its_lane_and_a_crash_shows_on_all_of_its_replica() {
        let events = vec![
            status(5, 1, 2, 3, "view_change"),
            Event::Commit {
                tick: 6,
                replica: 0,
                group: 1,
                commit: 9,
            },
            Event::Crash {
                tick: 7,
                replica: 0,
            },
            // A group beyond the run's count is not drawn (nor put on another lane).
            status(8, 1, 3, 4, "view_change"),
        ];
        let lanes = lanes(2, 3, &events);
        assert_eq!(lanes.len(), 6, "2 replicas x 3 groups");
        // Replica 1, group 2 (lane 5) changed view; replica 1's other lanes did not.
        assert_eq!(last(&lanes, 5), (5, 1, 3, 0));
        assert_eq!(lanes[3].len(), 1);
        assert_eq!(lanes[4].len(), 1);
        // Replica 0, group 1 (lane 1) committed, then the node crashed: down on all its lanes.
        assert_eq!(lanes[1][1][3], "9");
        for lane in 0..3 {
            assert_eq!(last(&lanes, lane).0, 7);
            assert_eq!(last(&lanes, lane).1, status_index("down") as u64);
        }
        assert_eq!(last(&lanes, 1).3, 9, "the commit stays");
    }
}
