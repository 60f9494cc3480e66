//! Events of a run: a running trace hash (the run's fingerprint), the last events kept for a
//! failure report, and an optional JSON-lines export of every event.
//!
//! Wall-clock figures never enter the hash: only ticks and what the simulated world did.

use serde::Serialize;
use std::collections::VecDeque;
use std::io::Write;

/// Events shown at the end of a failure report.
pub const EVENTS_RECENT_MAX: usize = 50;

/// Events kept for the failure report, to find those that involve the violation's replica.
const EVENTS_KEPT_MAX: usize = 2_000;

/// A 64-bit value as a JSON string (so `jq` and JavaScript do not round it).
fn as_string<S: serde::Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.to_string())
}

/// One thing that happened in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A packet reached a node (`checksum` is its header checksum; `group` the group its
    /// namespace names, left out when 0, or 255 for a namespace no node hosts).
    Deliver {
        tick: u64,
        from: usize,
        to: usize,
        #[serde(skip_serializing_if = "is_zero")]
        group: u8,
        command: &'static str,
        #[serde(serialize_with = "as_string")]
        checksum: u64,
    },
    /// The network dropped a packet (`reason`: loss, capacity, partition, crashed).
    Drop {
        tick: u64,
        from: usize,
        to: usize,
        reason: &'static str,
    },
    /// A paused replica resumed (its waiting messages are delivered now).
    Resume {
        tick: u64,
        replica: u8,
    },
    /// An isolated replica was reconnected to the others.
    Rejoin {
        tick: u64,
        replica: u8,
    },
    /// A packet failed to decode at its destination.
    Corrupt {
        tick: u64,
        from: usize,
        to: usize,
    },
    /// A replica (of group `group`, left out when 0) executed ops up to `commit`.
    Commit {
        tick: u64,
        replica: u8,
        #[serde(skip_serializing_if = "is_zero")]
        group: u8,
        commit: u64,
    },
    /// A replica (of group `group`, left out when 0) entered a new view or status.
    Status {
        tick: u64,
        replica: u8,
        #[serde(skip_serializing_if = "is_zero")]
        group: u8,
        view: u32,
        status: &'static str,
    },
    Crash {
        tick: u64,
        replica: u8,
    },
    Restart {
        tick: u64,
        replica: u8,
    },
    /// A client sent a request (or resent it).
    Request {
        tick: u64,
        client: u8,
        request: u32,
        to: u8,
    },
    /// A client got the reply to its request.
    Reply {
        tick: u64,
        client: u8,
        request: u32,
        op: u64,
    },
    /// A client's session was evicted.
    Evicted {
        tick: u64,
        client: u8,
    },
    /// The liveness phase began.
    Liveness {
        tick: u64,
    },
}

impl Event {
    /// Fixed-width words fed to the hash (stable across versions of serde and formatting).
    fn words(&self) -> [u64; 5] {
        match *self {
            Event::Deliver {
                tick,
                from,
                to,
                group,
                checksum,
                ..
            } => [
                1,
                tick,
                from as u64 | (group as u64) << 32,
                to as u64,
                checksum,
            ],
            Event::Corrupt { tick, from, to } => [2, tick, from as u64, to as u64, 0],
            // Group 0 hashes as before groups existed: single-group runs keep their hashes.
            Event::Commit {
                tick,
                replica,
                group,
                commit,
            } => [3, tick, replica as u64 | (group as u64) << 8, commit, 0],
            Event::Status {
                tick,
                replica,
                group,
                view,
                status,
            } => {
                let who = replica as u64 | (group as u64) << 8;
                [4, tick, who, view as u64, status.len() as u64]
            }
            Event::Crash { tick, replica } => [5, tick, replica as u64, 0, 0],
            Event::Restart { tick, replica } => [6, tick, replica as u64, 0, 0],
            Event::Request {
                tick,
                client,
                request,
                to,
            } => [7, tick, client as u64, request as u64, to as u64],
            Event::Reply {
                tick,
                client,
                request,
                op,
            } => [8, tick, client as u64, request as u64, op],
            Event::Evicted { tick, client } => [9, tick, client as u64, 0, 0],
            Event::Liveness { tick } => [10, tick, 0, 0, 0],
            Event::Drop {
                tick,
                from,
                to,
                reason,
            } => [12, tick, from as u64, to as u64, reason.len() as u64],
            Event::Resume { tick, replica } => [13, tick, replica as u64, 0, 0],
            Event::Rejoin { tick, replica } => [14, tick, replica as u64, 0, 0],
        }
    }

    /// Whether the event concerns replica `r` (node `r`): it happened at it, or a packet
    /// went from or to it.
    pub fn involves(&self, r: u8) -> bool {
        let node = r as usize;
        match *self {
            Event::Deliver { from, to, .. }
            | Event::Corrupt { from, to, .. }
            | Event::Drop { from, to, .. } => from == node || to == node,
            Event::Commit { replica, .. }
            | Event::Status { replica, .. }
            | Event::Crash { replica, .. }
            | Event::Restart { replica, .. }
            | Event::Resume { replica, .. }
            | Event::Rejoin { replica, .. } => replica == r,
            Event::Request { to, .. } => to == r,
            Event::Reply { .. } | Event::Evicted { .. } | Event::Liveness { .. } => false,
        }
    }

    pub fn tick(&self) -> u64 {
        match *self {
            Event::Deliver { tick, .. }
            | Event::Corrupt { tick, .. }
            | Event::Commit { tick, .. }
            | Event::Status { tick, .. }
            | Event::Crash { tick, .. }
            | Event::Restart { tick, .. }
            | Event::Request { tick, .. }
            | Event::Reply { tick, .. }
            | Event::Evicted { tick, .. }
            | Event::Liveness { tick }
            | Event::Drop { tick, .. }
            | Event::Resume { tick, .. }
            | Event::Rejoin { tick, .. } => tick,
        }
    }

    /// The event's kind, as its JSON `event` field names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Deliver { .. } => "deliver",
            Event::Corrupt { .. } => "corrupt",
            Event::Commit { .. } => "commit",
            Event::Status { .. } => "status",
            Event::Crash { .. } => "crash",
            Event::Restart { .. } => "restart",
            Event::Request { .. } => "request",
            Event::Reply { .. } => "reply",
            Event::Evicted { .. } => "evicted",
            Event::Liveness { .. } => "liveness",
            Event::Drop { .. } => "drop",
            Event::Resume { .. } => "resume",
            Event::Rejoin { .. } => "rejoin",
        }
    }
}

/// Which events `--trace-filter` lets into the exported trace (the hash always covers all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Events that involve one of these replicas (see `Event::involves`).
    pub replicas: Vec<u8>,
    /// Events of these kinds (`deliver`, `commit`, `fault`, ...).
    pub kinds: Vec<String>,
    /// Deliveries of these commands (`prepare`, `start_view`, ...); other kinds pass.
    pub commands: Vec<String>,
    /// Ticks `start..end`.
    pub ticks: Option<std::ops::Range<u64>>,
}

impl Filter {
    /// Parses `replica=1,kind=deliver,command=prepare,ticks=100..200` (each key repeatable).
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("trace filter '{part}': expected KEY=VALUE"))?;
            match key {
                "replica" => filter.replicas.push(value.parse().map_err(|_| {
                    format!("trace filter: replica must be a number, got '{value}'")
                })?),
                "kind" => filter.kinds.push(value.to_string()),
                "command" => filter.commands.push(value.to_string()),
                "ticks" => {
                    let range = crate::cli::parse_seed_range(value)
                        .map_err(|e| format!("trace filter: ticks: {e}"))?;
                    filter.ticks = Some(range);
                }
                _ => {
                    return Err(format!(
                        "trace filter: unknown key '{key}' (replica, kind, command, ticks)"
                    ))
                }
            }
        }
        Ok(filter)
    }

    fn admits(&self, kind: &str, tick: u64, event: Option<&Event>, replica: Option<u8>) -> bool {
        if self.ticks.as_ref().is_some_and(|t| !t.contains(&tick)) {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == kind) {
            return false;
        }
        if !self.commands.is_empty() {
            if let Some(Event::Deliver { command, .. }) = event {
                if !self.commands.iter().any(|c| c == command) {
                    return false;
                }
            }
        }
        if !self.replicas.is_empty() {
            let involved = match (event, replica) {
                (Some(e), _) => self.replicas.iter().any(|&r| e.involves(r)),
                (None, Some(r)) => self.replicas.contains(&r),
                (None, None) => true,
            };
            if !involved {
                return false;
            }
        }
        true
    }
}

/// Which events `Trace::keep` keeps.
pub type Keep = fn(&Event) -> bool;

/// The trace of one run.
pub struct Trace {
    hash: u64,
    events: u64,
    recent: VecDeque<Event>,
    filter: Filter,
    export: Option<Box<dyn Write + Send>>,
    /// The first error writing the export, reported once the run ends.
    export_error: Option<String>,
    /// Opt-in (`keep`): every event the filter accepts, in order (for `--timeline`).
    kept: Option<(Keep, Vec<Event>)>,
}

impl Trace {
    pub fn new(export: Option<Box<dyn Write + Send>>) -> Trace {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
            recent: VecDeque::with_capacity(EVENTS_KEPT_MAX),
            filter: Filter::default(),
            export,
            export_error: None,
            kept: None,
        }
    }

    /// Keeps every event from now on that `filter` accepts, in memory (off by default: a run
    /// without it holds only the last `EVENTS_RECENT_MAX`).
    pub fn keep(&mut self, filter: Keep) {
        self.kept = Some((filter, Vec::new()));
    }

    /// The events kept since `keep` (empty when it was not called).
    pub fn take_kept(&mut self) -> Vec<Event> {
        self.kept
            .take()
            .map(|(_, events)| events)
            .unwrap_or_default()
    }

    pub fn record(&mut self, event: Event) {
        for word in event.words() {
            // FNV-1a over 64-bit words, then a final avalanche in `hash()`.
            self.hash = (self.hash ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.events += 1;
        if self.recent.len() == EVENTS_KEPT_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
        if let Some((filter, kept)) = self.kept.as_mut() {
            if filter(&event) {
                kept.push(event);
            }
        }
        if self.export.is_some()
            && self
                .filter
                .admits(event.kind(), event.tick(), Some(&event), None)
        {
            let out = self.export.as_mut().expect("checked");
            let line = serde_json::to_string(&event).expect("events serialize");
            // A failing trace file must not change the run: the first error is kept and
            // reported when the run ends, and nothing more is written.
            if let Err(e) = writeln!(out, "{line}") {
                self.export_error = Some(e.to_string());
                self.export = None;
            }
        }
    }

    /// Records a fault of the run's schedule: hashed by its JSON text (the schedule's own
    /// format, stable by contract), exported as a `fault` event.
    pub fn record_fault(&mut self, event: &crate::schedule::Event) {
        let line = serde_json::to_string(event).expect("schedule events serialize");
        let word = crate::prng::fnv1a_64(line.as_bytes());
        self.hash = (self.hash ^ 11).wrapping_mul(0x0000_0100_0000_01b3);
        self.hash = (self.hash ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        self.events += 1;
        let replica = fault_replica(&event.fault);
        if self.export.is_some() && self.filter.admits("fault", event.tick, None, replica) {
            let out = self.export.as_mut().expect("checked");
            if let Err(e) = writeln!(out, "{{\"event\":\"fault\",{}", &line[1..]) {
                self.export_error = Some(e.to_string());
                self.export = None;
            }
        }
    }

    /// The fingerprint of everything recorded so far.
    pub fn hash(&self) -> u64 {
        let mut z = self.hash ^ self.events;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// The last `EVENTS_RECENT_MAX` events.
    pub fn recent(&self) -> impl Iterator<Item = &Event> {
        self.recent
            .iter()
            .skip(self.recent.len().saturating_sub(EVENTS_RECENT_MAX))
    }

    /// The last `count` of the kept events that involve replica `r`.
    pub fn recent_involving(&self, r: u8, count: usize) -> Vec<Event> {
        let mut events: Vec<Event> = self
            .recent
            .iter()
            .rev()
            .filter(|e| e.involves(r))
            .take(count)
            .copied()
            .collect();
        events.reverse();
        events
    }

    /// Exports only the events `filter` admits (the hash still covers every event).
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
    }

    /// Writes the export's first line: what the trace is of (not hashed: it is not an event).
    pub fn write_header(&mut self, header: &serde_json::Value) {
        if let Some(out) = self.export.as_mut() {
            if let Err(e) = writeln!(out, "{header}") {
                self.export_error = Some(e.to_string());
                self.export = None;
            }
        }
    }

    pub fn flush(&mut self) {
        if let Some(out) = self.export.as_mut() {
            if let Err(e) = out.flush() {
                self.export_error.get_or_insert(e.to_string());
            }
        }
    }

    /// The first error writing the exported trace, if any.
    pub fn export_error(&self) -> Option<&str> {
        self.export_error.as_deref()
    }
}

/// The replica a fault event is about, if one.
fn fault_replica(fault: &crate::schedule::Fault) -> Option<u8> {
    use crate::schedule::Fault;
    match *fault {
        Fault::Crash { replica, .. }
        | Fault::Pause { replica, .. }
        | Fault::Restart { replica, .. }
        | Fault::Isolate { replica, .. }
        | Fault::Storage { replica, .. } => Some(replica),
        Fault::DropStartView { to } => Some(to),
        Fault::Liveness { .. } | Fault::Network(_) => None,
    }
}

fn is_zero(group: &u8) -> bool {
    *group == 0
}
