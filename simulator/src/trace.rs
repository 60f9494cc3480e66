//! Events of a run: a running trace hash (the run's fingerprint), the last events kept for a
//! failure report, and an optional JSON-lines export of every event.
//!
//! Wall-clock figures never enter the hash: only ticks and what the simulated world did.

use serde::Serialize;
use std::collections::VecDeque;
use std::io::Write;

/// Events kept for the failure report.
pub const EVENTS_RECENT_MAX: usize = 50;

/// One thing that happened in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A packet reached a node (`checksum` is its header checksum).
    Deliver {
        tick: u64,
        from: usize,
        to: usize,
        command: &'static str,
        checksum: u64,
    },
    /// A packet failed to decode at its destination.
    Corrupt {
        tick: u64,
        from: usize,
        to: usize,
    },
    /// A replica executed ops up to `commit`.
    Commit {
        tick: u64,
        replica: u8,
        commit: u64,
    },
    /// A replica entered a new view or status.
    Status {
        tick: u64,
        replica: u8,
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
                checksum,
                ..
            } => [1, tick, from as u64, to as u64, checksum],
            Event::Corrupt { tick, from, to } => [2, tick, from as u64, to as u64, 0],
            Event::Commit {
                tick,
                replica,
                commit,
            } => [3, tick, replica as u64, commit, 0],
            Event::Status {
                tick,
                replica,
                view,
                status,
            } => [4, tick, replica as u64, view as u64, status.len() as u64],
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
        }
    }
}

/// The trace of one run.
pub struct Trace {
    hash: u64,
    events: u64,
    recent: VecDeque<Event>,
    export: Option<Box<dyn Write + Send>>,
    /// The first error writing the export, reported once the run ends.
    export_error: Option<String>,
}

impl Trace {
    pub fn new(export: Option<Box<dyn Write + Send>>) -> Trace {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
            recent: VecDeque::with_capacity(EVENTS_RECENT_MAX),
            export,
            export_error: None,
        }
    }

    pub fn record(&mut self, event: Event) {
        for word in event.words() {
            // FNV-1a over 64-bit words, then a final avalanche in `hash()`.
            self.hash = (self.hash ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.events += 1;
        if self.recent.len() == EVENTS_RECENT_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
        if let Some(out) = self.export.as_mut() {
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
        if let Some(out) = self.export.as_mut() {
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

    pub fn recent(&self) -> impl Iterator<Item = &Event> {
        self.recent.iter()
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
