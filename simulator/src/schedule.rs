//! Fault schedules as data (DESIGN §4): every process, partition, clog, pause and storage
//! fault of a run is an explicit, timed event. A run drawn from a seed records the events it
//! executed; `vopr --seed N --schedule-out FILE` writes them, and `vopr replay FILE` executes
//! them instead of drawing any fault, so a regression kept as a schedule survives a change of
//! the swarm's fault policy. Per-packet randomness (delay, loss, duplication) stays a rate, in
//! one stream per network path.
//!
//! The file is JSON lines: a header (`{"schedule":1,"seed":..,"options":{..},...}`), then one
//! event per line in execution order:
//! ```text
//! {"tick":5000,"kind":"crash","replica":2,"restart_tick":5300,"torn":[0,2],"garbage":true}
//! {"tick":5012,"step":3,"kind":"crash","replica":0,"restart_tick":5100,"aimed":"crash_after_prepare_ok"}
//! {"tick":6100,"kind":"storage","replica":1,"disk":"stale","zone":"wal_prepares","index":17}
//! {"tick":6150,"kind":"storage","replica":0,"group":2,"disk":"misdirect_to_group","to_group":0}
//! {"tick":7200,"kind":"partition","cuts":[[0,2],[2,0]]}
//! {"tick":7900,"kind":"heal"}
//! ```
//!
//! `replica` names a node (every group on it crashes, pauses or is cut off together); a storage
//! fault names the `group` whose region of the node's disk it hits (left out for group 0). A
//! crash's `torn` positions count the writes in flight across the node's regions, group 0's
//! first.
//!
//! Where in a tick an event happens is its `Point`: the network's timeline, faults drawn at
//! the start of the tick (crashes, pauses, storage faults), right after the `step`-th
//! replica step of the tick (faults aimed at protocol moments), or the start of the liveness
//! phase. Replaying executes each event at the same point, so a replay of an unedited
//! schedule reproduces the run bit for bit (same trace hash).

use crate::aim::Aimed;
use crate::network::NetFault;
use crate::options::Options;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format version in a schedule file's header.
pub const FORMAT: u32 = 1;

/// One fault at one moment of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub tick: u64,
    /// Right after the `step`-th replica step of the tick (counting from 0); absent for
    /// faults at the start of the tick or on the network's timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(flatten)]
    pub fault: Fault,
}

/// The faults a schedule holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The replica's process dies: memory gone; its writes in flight at positions `torn`
    /// (0 = the oldest) are lost, the rest complete; with `garbage`, the newest lost one
    /// leaves a torn sector of garbage. It restarts from its disk at `restart_tick` (or stays
    /// down).
    Crash {
        replica: u8,
        restart_tick: Option<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        torn: Vec<u32>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        garbage: bool,
        /// The protocol moment aimed at, if the crash was aimed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aimed: Option<Aimed>,
    },
    /// The replica gets no ticks and no messages (they wait) for `ticks` ticks.
    Pause { replica: u8, ticks: u64 },
    /// A crashed replica restarts now rather than at its restart tick.
    Restart { replica: u8, aimed: Aimed },
    /// The replica is cut from every other replica for `ticks` ticks.
    Isolate {
        replica: u8,
        ticks: u64,
        aimed: Aimed,
    },
    /// A start_view the stepping replica sends to `to` is lost.
    DropStartView { to: u8 },
    /// A disk fault (see `DiskFault`).
    Storage {
        replica: u8,
        /// The group whose disk region it hits (left out when 0, as before groups existed).
        #[serde(default, skip_serializing_if = "is_zero")]
        group: u8,
        #[serde(flatten)]
        fault: DiskFault,
    },
    /// The liveness phase begins: these replicas form the core.
    Liveness { core: Vec<u8> },
    /// A fault of the network's timeline (tagged by its own `kind`).
    #[serde(untagged)]
    Network(NetFault),
}

/// What a disk fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "disk", rename_all = "snake_case")]
pub enum DiskFault {
    /// A latent sector error: the location reads back corrupted until rewritten.
    Latent { zone: Zone, index: u64 },
    /// A latent sector error that reads back as nothing (a disk or driver that returns no
    /// data, or zeros a checksum would reject, for an unreadable sector), until rewritten:
    /// the location looks never written, though it was.
    Unreadable { zone: Zone, index: u64 },
    /// A stale sector: the location reads back what it held before its last write (valid
    /// but old: in the journal, a prepare or header of an earlier wrap of the ring).
    Stale { zone: Zone, index: u64 },
    /// The newest write in flight lands at `to` of its zone instead of its own location.
    Misdirect { to: u64 },
    /// The newest write in flight silently never lands.
    Lost,
    /// The newest write in flight lands in group `to_group`'s region of the node's disk, at
    /// the same zone and location, instead of its own (a misdirected write across regions).
    MisdirectToGroup { to_group: u8 },
}

/// The storage zones, as a schedule names them (`consensus::storage::Zone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    Superblock,
    WalHeaders,
    WalPrepares,
    Checkpoint,
}

impl From<Zone> for consensus::storage::Zone {
    fn from(zone: Zone) -> Self {
        use consensus::storage::Zone as Z;
        match zone {
            Zone::Superblock => Z::Superblock,
            Zone::WalHeaders => Z::WalHeaders,
            Zone::WalPrepares => Z::WalPrepares,
            Zone::Checkpoint => Z::Checkpoint,
        }
    }
}

impl From<consensus::storage::Zone> for Zone {
    fn from(zone: consensus::storage::Zone) -> Self {
        use consensus::storage::Zone as Z;
        match zone {
            Z::Superblock => Zone::Superblock,
            Z::WalHeaders => Zone::WalHeaders,
            Z::WalPrepares => Zone::WalPrepares,
            Z::Checkpoint => Zone::Checkpoint,
        }
    }
}

/// Where in a tick an event happens, in the order a tick runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Point {
    /// The network's timeline: partitions, heals, clogs.
    Network,
    /// The start of the tick: crashes, storage faults, pauses.
    Faults,
    /// Right after the n-th replica step of the tick.
    Step(u32),
    /// After the tick's steps, when the liveness phase begins.
    Liveness,
}

impl Event {
    /// Where in its tick the event happens.
    pub fn point(&self) -> Point {
        match (&self.fault, self.step) {
            (_, Some(step)) => Point::Step(step),
            (Fault::Network(_), None) => Point::Network,
            (Fault::Liveness { .. }, None) => Point::Liveness,
            _ => Point::Faults,
        }
    }

    /// The order of execution: by tick, then by point.
    pub fn key(&self) -> (u64, Point) {
        (self.tick, self.point())
    }
}

/// The first line of a schedule file: what the run needs besides its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The format version (`FORMAT`).
    pub schedule: u32,
    /// The vopr that recorded it (for people: a schedule replays on any version that reads
    /// its options).
    pub version: String,
    /// The seed of every random choice that is not a fault (workload, packet delays).
    pub seed: u64,
    /// The outcome a replay must have (`pass` for a kept regression whose bug is fixed).
    #[serde(default = "pass")]
    pub expect: String,
    /// What the schedule found, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    pub options: Options,
}

fn pass() -> String {
    "pass".to_string()
}

/// A whole schedule: its header and its events in execution order.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub header: Header,
    pub events: Vec<Event>,
}

impl Schedule {
    pub fn new(seed: u64, options: Options, events: Vec<Event>) -> Schedule {
        Schedule {
            header: Header {
                schedule: FORMAT,
                version: crate::run::VERSION.to_string(),
                seed,
                expect: pass(),
                found: None,
                options,
            },
            events,
        }
    }

    /// The file's text: the header line, then one line per event.
    pub fn to_jsonl(&self) -> String {
        let mut out = serde_json::to_string(&self.header).expect("header serializes");
        out.push('\n');
        for event in &self.events {
            out.push_str(&serde_json::to_string(event).expect("event serializes"));
            out.push('\n');
        }
        out
    }

    /// Reads a schedule from its text; errors name the line. Events are put in execution
    /// order (a stable sort, so an edited file need not be sorted by hand).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or("empty schedule file")?;
        let header: Header =
            serde_json::from_str(first).map_err(|e| format!("line 1 (header): {e}"))?;
        if header.schedule != FORMAT {
            return Err(format!(
                "schedule format {} (this vopr reads format {FORMAT})",
                header.schedule
            ));
        }
        header
            .options
            .validate()
            .map_err(|e| format!("line 1: {e}"))?;
        let mut events = Vec::new();
        for (i, line) in lines {
            let event: Event =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            events.push(event);
        }
        events.sort_by_key(Event::key);
        Ok(Schedule { header, events })
    }

    /// Reads a schedule file; the error is one line naming the file.
    pub fn read(path: &Path) -> Result<Schedule, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Schedule::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether `text` is a schedule (its first line is a schedule header) rather than a seed
    /// file.
    pub fn looks_like(text: &str) -> bool {
        text.lines()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim_start().starts_with('{') && l.contains("\"schedule\""))
    }
}

/// The events of a schedule being replayed: each is handed out once, at its point.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    events: Vec<Event>,
    next: usize,
    /// Events passed over because their point never came, or that could not happen then
    /// (an edited schedule).
    pub skipped: u64,
}

impl Replay {
    pub fn new(events: Vec<Event>) -> Replay {
        Replay {
            events,
            next: 0,
            skipped: 0,
        }
    }

    /// The next event due at `(tick, point)`, if any; events whose moment has passed are
    /// skipped on the way.
    pub fn next_at(&mut self, tick: u64, point: Point) -> Option<Event> {
        while let Some(event) = self.events.get(self.next) {
            let key = event.key();
            if key < (tick, point) {
                self.next += 1;
                self.skipped += 1;
                continue;
            }
            if key == (tick, point) {
                self.next += 1;
                return Some(event.clone());
            }
            return None;
        }
        None
    }

    /// Whether the next event due at `(tick, point)` is a dropped start_view to `to` (and
    /// takes it if so).
    pub fn take_start_view_drop(&mut self, tick: u64, point: Point, to: u8) -> bool {
        let due = self
            .events
            .get(self.next)
            .is_some_and(|e| e.key() == (tick, point) && e.fault == Fault::DropStartView { to });
        if due {
            self.next += 1;
        }
        due
    }

    /// Events not handed out yet.
    pub fn remaining(&self) -> usize {
        self.events.len() - self.next
    }
}

fn is_zero(group: &u8) -> bool {
    *group == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tick: u64, step: Option<u32>, fault: Fault) -> Event {
        Event { tick, step, fault }
    }

    #[test]
    fn events_read_back_as_written() {
        let events = vec![
            event(
                5,
                None,
                Fault::Crash {
                    replica: 2,
                    restart_tick: Some(90),
                    torn: vec![1],
                    garbage: true,
                    aimed: None,
                },
            ),
            event(
                7,
                None,
                Fault::Network(NetFault::Partition {
                    cuts: vec![(0, 2), (2, 0)],
                }),
            ),
            event(
                7,
                None,
                Fault::Storage {
                    replica: 1,
                    group: 0,
                    fault: DiskFault::Latent {
                        zone: Zone::WalPrepares,
                        index: 3,
                    },
                },
            ),
            event(8, None, Fault::Network(NetFault::Heal)),
            event(
                9,
                None,
                Fault::Network(NetFault::Clog {
                    from: 0,
                    to: 4,
                    ticks: 12,
                }),
            ),
            event(9, Some(4), Fault::DropStartView { to: 1 }),
            event(
                9,
                Some(4),
                Fault::Crash {
                    replica: 0,
                    restart_tick: None,
                    torn: vec![],
                    garbage: false,
                    aimed: Some(Aimed::CrashAfterStartView),
                },
            ),
            event(
                10,
                None,
                Fault::Isolate {
                    replica: 1,
                    ticks: 30,
                    aimed: Aimed::IsolateAfterCommit,
                },
            ),
            event(
                11,
                None,
                Fault::Pause {
                    replica: 1,
                    ticks: 3,
                },
            ),
            event(
                12,
                Some(0),
                Fault::Restart {
                    replica: 2,
                    aimed: Aimed::RestartOnViewChange,
                },
            ),
            event(20, None, Fault::Liveness { core: vec![0, 1] }),
        ];
        let schedule = Schedule::new(4, Options::from_seed(4), events.clone());
        let text = schedule.to_jsonl();
        assert!(Schedule::looks_like(&text));
        assert!(
            text.contains(r#""kind":"partition","cuts":[[0,2],[2,0]]"#),
            "{text}"
        );
        let back = Schedule::parse(&text).unwrap();
        assert_eq!(back.events, events);
        assert_eq!(back.header.seed, 4);
    }

    #[test]
    fn a_replay_hands_each_event_out_once_at_its_point_and_skips_missed_ones() {
        let crash = |tick| {
            event(
                tick,
                None,
                Fault::Crash {
                    replica: 0,
                    restart_tick: None,
                    torn: vec![],
                    garbage: false,
                    aimed: None,
                },
            )
        };
        let heal = |tick| event(tick, None, Fault::Network(NetFault::Heal));
        let drop = |tick, step| event(tick, Some(step), Fault::DropStartView { to: 2 });
        let mut replay = Replay::new(vec![heal(3), crash(3), drop(3, 5), drop(4, 1), crash(6)]);
        assert_eq!(replay.next_at(2, Point::Faults), None);
        assert_eq!(replay.next_at(3, Point::Network), Some(heal(3)));
        assert_eq!(replay.next_at(3, Point::Faults), Some(crash(3)));
        assert_eq!(replay.next_at(3, Point::Faults), None);
        assert!(!replay.take_start_view_drop(3, Point::Step(5), 1));
        assert!(replay.take_start_view_drop(3, Point::Step(5), 2));
        // Step 1 of tick 4 never came (a replica fewer stepped): passed over.
        assert_eq!(replay.next_at(4, Point::Step(3)), None);
        assert_eq!(replay.skipped, 1);
        assert_eq!(replay.next_at(6, Point::Faults), Some(crash(6)));
        assert_eq!(replay.remaining(), 0);
    }

    #[test]
    fn errors_name_the_line() {
        let header = Schedule::new(1, Options::from_seed(1), vec![]).to_jsonl();
        let err =
            Schedule::parse(&format!("{header}{{\"tick\":1,\"kind\":\"explode\"}}\n")).unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(Schedule::parse("").is_err());
        assert!(!Schedule::looks_like("seed = 4\nexpect = pass\n"));
    }
}
