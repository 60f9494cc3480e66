//! The node interface from a user's side (issue 14): a node written outside the simulator
//! crate, whose groups run another state machine, gets the whole simulator (faults, every
//! oracle, the linearizability check) through `simulator::node` alone.
//!
//! The user's state machine here is an event-sourced store, as a message log (an Apache Iggy
//! partition) keeps data: every write is a record appended to its key's log, and a read replays
//! the log from its last reset. It answers the same key-value operations as the crate's
//! `KvMachine` (the workload and the model are shared), but it is another implementation: its
//! state, snapshot format and digest are its own. The user's node routes by namespace with its
//! own table and says nothing about its disk layout, so the durability probes are skipped.

use bytes::Bytes;
use consensus::replica::OpenError as ReplicaOpenError;
use consensus::state_machine::VALUE_SIZE_MAX;
use consensus::wire::Message;
use consensus::{Action, KvOp, KvOutput, Peer, Replica, StateMachine};
use simulator::cluster::catch;
use simulator::node::{
    DiskLayout, GroupConfig, GroupView, Node, NodeKind, OpenError, Opened, ReferenceMachine,
};
use simulator::options::Options;
use simulator::run::{run, Outcome, RunConfig, Summary};
use simulator::storage::FaultyStorage;
use std::any::Any;
use std::collections::BTreeMap;

/// A bug to plant in the store, to see that the simulator catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// Every replica, alike, forgets the third append to each key (deterministic: the
    /// replicas agree, so only a check against the model can tell).
    ForgetsThirdAppend,
    /// Replicas on odd nodes ignore appends to key k0 (they diverge from the others).
    OddNodesIgnoreAppends,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Put(String),
    Append(String),
}

/// The event-sourced store.
#[derive(Debug, Clone)]
struct LogStore {
    logs: BTreeMap<String, Vec<Record>>,
    bug: Bug,
    /// The node it runs on (for `OddNodesIgnoreAppends`).
    node: u8,
}

impl LogStore {
    fn new(bug: Bug, node: u8) -> LogStore {
        LogStore {
            logs: BTreeMap::new(),
            bug,
            node,
        }
    }

    /// The key's value: the log replayed from its last put.
    fn value(&self, key: &str) -> Option<String> {
        let log = self.logs.get(key)?;
        let start = log.iter().rposition(|r| matches!(r, Record::Put(_)));
        let mut value = String::new();
        for record in &log[start.unwrap_or(0)..] {
            match record {
                Record::Put(v) => value = v.clone(),
                Record::Append(v) => value.push_str(v),
            }
        }
        Some(value)
    }

    fn apply(&mut self, op: KvOp) -> KvOutput {
        match op {
            KvOp::Get { key } => KvOutput::Value(self.value(&key)),
            KvOp::Put { key, value } => {
                self.logs.entry(key).or_default().push(Record::Put(value));
                KvOutput::Ok
            }
            KvOp::Append { key, value } => {
                let length = self.value(&key).map_or(0, |v| v.len());
                let log = self.logs.entry(key.clone()).or_default();
                if length + value.len() > VALUE_SIZE_MAX {
                    return KvOutput::Error; // The key exists now (empty if it was absent).
                }
                let appends = log
                    .iter()
                    .filter(|r| matches!(r, Record::Append(_)))
                    .count();
                let forget = match self.bug {
                    Bug::None => false,
                    Bug::ForgetsThirdAppend => appends == 2,
                    Bug::OddNodesIgnoreAppends => key == "k0" && self.node % 2 == 1,
                };
                if !forget {
                    log.push(Record::Append(value));
                }
                KvOutput::Ok
            }
            KvOp::Cas {
                key,
                expected,
                value,
            } => {
                let swap = self.value(&key).as_deref() == Some(expected.as_str());
                if swap {
                    self.logs.entry(key).or_default().push(Record::Put(value));
                }
                KvOutput::Swapped(swap)
            }
        }
    }
}

impl StateMachine for LogStore {
    fn execute(&mut self, _op: u64, _timestamp: u64, input: &[u8]) -> Bytes {
        match KvOp::decode(input) {
            Some(op) => self.apply(op).encode(),
            None => KvOutput::Error.encode(),
        }
    }

    fn digest(&self) -> u128 {
        // Of the values, not the logs: replicas that compacted at different points agree.
        let mut digest = 0xcbf2_9ce4_8422_2325_u128;
        for key in self.logs.keys() {
            for byte in key
                .bytes()
                .chain([0xff])
                .chain(self.value(key).unwrap().bytes())
            {
                digest = (digest ^ byte as u128).wrapping_mul(0x1000_0000_0000_0000_0000_013b);
            }
            digest = digest.rotate_left(7) ^ 0x5a;
        }
        digest
    }

    fn snapshot(&self) -> Bytes {
        // Compacted: one put per key (a key that only ever failed an append holds "").
        let mut text = String::new();
        for key in self.logs.keys() {
            let value = self.value(key).unwrap();
            text.push_str(&format!("{}:{key}{}:{value}", key.len(), value.len()));
        }
        Bytes::from(text)
    }

    fn restore(&mut self, snapshot: &[u8]) -> bool {
        let Ok(mut rest) = std::str::from_utf8(snapshot) else {
            return false;
        };
        let take = |rest: &mut &str| -> Option<String> {
            let (len, tail) = rest.split_once(':')?;
            let len: usize = len.parse().ok()?;
            let text = tail.get(..len)?.to_string();
            *rest = &tail[len..];
            Some(text)
        };
        let mut logs = BTreeMap::new();
        while !rest.is_empty() {
            let (Some(key), Some(value)) = (take(&mut rest), take(&mut rest)) else {
                return false;
            };
            logs.insert(key, vec![Record::Put(value)]);
        }
        self.logs = logs;
        true
    }
}

/// The user's node: its groups in a Vec, its own namespace table.
struct LogNode {
    namespaces: BTreeMap<u64, usize>,
    groups: Vec<Replica<FaultyStorage, LogStore>>,
    dropped: u64,
}

impl Node for LogNode {
    fn group_count(&self) -> usize {
        self.groups.len()
    }

    fn group(&self, group: usize) -> Option<&dyn GroupView> {
        Some(&self.groups[group])
    }

    fn on_tick(&mut self, group: usize) {
        self.groups[group].on_tick();
    }

    fn on_message(&mut self, from: Peer, message: Message) -> Option<usize> {
        let Some(&group) = self.namespaces.get(&message.header.namespace) else {
            self.dropped += 1;
            return None;
        };
        self.groups[group].on_message(from, message);
        Some(group)
    }

    fn advance_disk(&mut self, group: usize, tick: u64) -> bool {
        let replica = &mut self.groups[group];
        replica.storage_mut().advance(tick) > replica.writes_done()
    }

    fn on_storage_done(&mut self, group: usize) {
        let replica = &mut self.groups[group];
        let done = replica.storage().writes_completed();
        replica.on_storage_done(done);
    }

    fn drain_actions(&mut self, group: usize, out: &mut Vec<Action>) {
        out.extend(self.groups[group].drain_outbox());
    }

    fn disk(&self, group: usize) -> &FaultyStorage {
        self.groups[group].storage()
    }

    fn disk_mut(&mut self, group: usize) -> &mut FaultyStorage {
        self.groups[group].storage_mut()
    }

    fn messages_dropped_namespace(&self) -> u64 {
        self.dropped
    }

    fn into_disks(self: Box<Self>) -> Vec<FaultyStorage> {
        self.groups.into_iter().map(Replica::into_storage).collect()
    }

    fn durable_view(&self, _group: usize) -> Option<(u32, u32)> {
        None
    }

    fn durable_prepare(&self, _: usize, _: u64, _: u128) -> Option<Result<(), String>> {
        None
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

struct LogNodeKind {
    bug: Bug,
}

impl NodeKind for LogNodeKind {
    fn format(&self, group: &GroupConfig, disk: &mut FaultyStorage) {
        Replica::<FaultyStorage, LogStore>::format(&group.config, disk);
        disk.flush();
    }

    fn open(&self, groups: &[GroupConfig], disks: Vec<FaultyStorage>) -> Opened {
        let mut node = LogNode {
            namespaces: BTreeMap::new(),
            groups: Vec::new(),
            dropped: 0,
        };
        let mut failed: Option<(OpenError, Vec<FaultyStorage>)> = None;
        let mut left: Vec<FaultyStorage> = Vec::new();
        for (group, disk) in groups.iter().zip(disks) {
            if failed.is_some() {
                left.push(disk);
                continue;
            }
            let machine = LogStore::new(self.bug, group.config.replica);
            let backup = disk.clone();
            match catch(|| Replica::open(group.config, disk, machine)) {
                Ok(Ok(replica)) => {
                    node.namespaces.insert(group.config.namespace, group.group);
                    node.groups.push(replica);
                }
                Ok(Err(ReplicaOpenError::CheckpointLost | ReplicaOpenError::JournalCorrupt)) => {
                    failed = Some((OpenError::Unopenable, vec![backup]));
                }
                Ok(Err(e)) => failed = Some((OpenError::Panicked(format!("{e:?}")), vec![backup])),
                Err(panic) => failed = Some((OpenError::Panicked(panic), vec![backup])),
            }
        }
        let Some((error, mut disks)) = failed else {
            let errors = vec![None; groups.len()];
            return Opened {
                node: Box::new(node),
                errors,
            };
        };
        // A node that cannot open every group does not start: hand every disk back, in order.
        let mut all: Vec<FaultyStorage> = Box::new(node).into_disks();
        all.append(&mut disks);
        all.append(&mut left);
        let mut errors = vec![None; groups.len()];
        errors[0] = Some(error);
        Opened {
            node: Box::new(DownNode { disks: all }),
            errors,
        }
    }

    fn reference_machine(&self) -> Box<dyn ReferenceMachine> {
        Box::new(LogStore::new(self.bug, 0))
    }

    fn root_checksum(&self, cluster: u128) -> u128 {
        consensus::replica::root_prepare(cluster).header.checksum
    }

    fn layout(&self) -> DiskLayout {
        DiskLayout {
            superblock_copies: consensus::superblock::SUPERBLOCK_COPIES,
            checkpoint_copies: consensus::checkpoint::CHECKPOINT_COPIES,
        }
    }
}

/// What `open` hands back when a group did not open: only the disks.
struct DownNode {
    disks: Vec<FaultyStorage>,
}

impl Node for DownNode {
    fn group_count(&self) -> usize {
        self.disks.len()
    }
    fn group(&self, _: usize) -> Option<&dyn GroupView> {
        None
    }
    fn on_tick(&mut self, _: usize) {}
    fn on_message(&mut self, _: Peer, _: Message) -> Option<usize> {
        None
    }
    fn advance_disk(&mut self, _: usize, _: u64) -> bool {
        false
    }
    fn on_storage_done(&mut self, _: usize) {}
    fn drain_actions(&mut self, _: usize, _: &mut Vec<Action>) {}
    fn disk(&self, group: usize) -> &FaultyStorage {
        &self.disks[group]
    }
    fn disk_mut(&mut self, group: usize) -> &mut FaultyStorage {
        &mut self.disks[group]
    }
    fn messages_dropped_namespace(&self) -> u64 {
        0
    }
    fn into_disks(self: Box<Self>) -> Vec<FaultyStorage> {
        self.disks
    }
    fn durable_view(&self, _: usize) -> Option<(u32, u32)> {
        None
    }
    fn durable_prepare(&self, _: usize, _: u64, _: u128) -> Option<Result<(), String>> {
        None
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn run_log_nodes(seed: u64, options: Options, bug: Bug) -> Summary {
    let config = RunConfig {
        node_kind: Some(Box::new(LogNodeKind { bug })),
        ..RunConfig::default()
    };
    run(seed, options, config)
}

/// Options for a short run of `seed` with `groups` groups.
fn options(seed: u64, groups: u8) -> Options {
    let mut o = Options::from_seed(seed);
    o.group_count = groups;
    o.ticks_safety = 8_000;
    o
}

#[test]
fn a_users_node_with_another_state_machine_runs_under_every_oracle() {
    for (seed, groups) in [(1, 1), (2, 3), (3, 2), (4, 4), (5, 1), (6, 2)] {
        let o = options(seed, groups);
        let summary = run_log_nodes(seed, o.clone(), Bug::None);
        assert_eq!(
            summary.outcome,
            Outcome::Pass,
            "seed {seed}: {:?}",
            summary.violation
        );
        assert_eq!(summary.linearizability, "linearizable", "seed {seed}");
        assert!(summary.ops_committed > 0, "seed {seed}");
        assert_eq!(summary.groups, groups);
        // The same seed on the crate's own nodes commits the same requests alike: the store
        // answered every client exactly as the key-value machine would (the reply oracle's
        // reference is the user's store; the history check used the shared model).
        let reference = run(seed, o, RunConfig::default());
        assert_eq!(reference.outcome, Outcome::Pass);
        assert_eq!(
            reference.requests_committed, summary.requests_committed,
            "seed {seed}"
        );
        assert_eq!(reference.trace_hash, summary.trace_hash, "seed {seed}");
    }
}

#[test]
fn a_store_that_forgets_an_append_everywhere_is_caught_by_the_history_check() {
    // Every replica forgets alike, so agreement and state digests hold: only the black-box
    // check of what clients saw against the shared model can tell.
    let caught = (1..=12).any(|seed| {
        let mut o = options(seed, 2).without_faults();
        o.key_count = 1;
        o.request_probability = 0.3;
        let summary = run_log_nodes(seed, o, Bug::ForgetsThirdAppend);
        assert_ne!(summary.outcome, Outcome::Liveness, "seed {seed}");
        summary.outcome == Outcome::Correctness && summary.linearizability == "not linearizable"
    });
    assert!(caught, "no seed caught the forgotten append");
}

#[test]
fn a_store_that_diverges_between_replicas_is_caught_by_the_state_digests() {
    let summary = (1..=12)
        .map(|seed| {
            let mut o = options(seed, 2).without_faults();
            o.replica_count = 3;
            o.key_count = 1;
            run_log_nodes(seed, o, Bug::OddNodesIgnoreAppends)
        })
        .find(|s| s.outcome == Outcome::Correctness)
        .expect("a seed catches the divergence");
    let v = summary.violation.unwrap();
    assert!(
        ["state_divergence", "checkpoint_divergence"].contains(&v.invariant),
        "{v:?}"
    );
}
