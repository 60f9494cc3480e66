//! The nodes of a simulated cluster: each up (a live `Node` hosting every group) or down (only
//! its disk regions remain), crashed and restarted by the world. A panic inside a replica is caught and
//! returned as a message, since it is the replica's own assertion failing.

use crate::node::vsr::KvNode;
use crate::node::{GroupConfig, GroupView, Node, NodeKind, OpenError};
use crate::storage::FaultyStorage;
use consensus::{Config, KvMachine, Replica, Status};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};

pub type SimReplica = Replica<FaultyStorage, KvMachine>;

/// The cluster id every simulated replica and client uses.
pub const CLUSTER: u128 = 0x5EED_C1A5;

/// One node: up (a live `Node`) or down (only its disk regions remain).
pub struct NodeSlot {
    pub node: Option<Box<dyn Node>>,
    /// The durable state of each group while the node is down.
    pub disks: Vec<FaultyStorage>,
    pub restart_tick: Option<u64>,
    pub up_since_tick: u64,
    /// Per group: (view, status) at the last observation, to report transitions.
    pub observed: Vec<(u32, Status)>,
    /// Per group: the commit last observed.
    pub commit_observed: Vec<u64>,
}

pub struct Cluster {
    pub slots: Vec<NodeSlot>,
    pub replica_count: u8,
    /// Consensus groups on every node (group 0 is the metadata group).
    pub group_count: u8,
    kind: Box<dyn NodeKind>,
    clients_max: usize,
    journal_slot_count: u64,
    sync_chunk_size: usize,
    seed: u64,
    /// The namespace of group 0; group g runs as namespace + g.
    namespace: u64,
}

thread_local! {
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// How many `catch` calls this thread is inside: a panic there is a replica's own
    /// assertion, recorded for `catch`; anywhere else it is a bug of the harness.
    static CATCH_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last harness panic of this thread: `panicked at LOCATION: MESSAGE`, one line.
    static HARNESS_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the panic hook. Inside `catch` it records the message (with its location) for
/// `catch` instead of printing it, so a replica assertion becomes a clean report. Anywhere else
/// the panic is a bug of the harness: it is printed on stderr as one line (a backtrace follows
/// with RUST_BACKTRACE=1) and kept for `take_harness_panic`. Idempotent.
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        if CATCH_DEPTH.with(Cell::get) > 0 {
            let text = format!("{info}");
            PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(text));
            return;
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let location = info
            .location()
            .map_or("an unknown location".to_string(), |l| l.to_string());
        let panic = format!("panicked at {location}: {}", message.replace('\n', " / "));
        let line = format!("harness bug (a panic in the simulator, not in a replica): {panic}");
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("vopr: {line}\n{backtrace}");
        } else {
            eprintln!("vopr: {line} (please report it; RUST_BACKTRACE=1 adds a backtrace)");
        }
        HARNESS_PANIC.with(|m| *m.borrow_mut() = Some(panic));
    }));
}

/// The last harness panic (outside `catch`) of this thread: `panicked at LOCATION: MESSAGE`.
pub fn take_harness_panic() -> Option<String> {
    HARNESS_PANIC.with(|m| m.borrow_mut().take())
}

/// Runs `f`, turning a panic into its message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    CATCH_DEPTH.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCH_DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        PANIC_MESSAGE
            .with(|m| m.borrow_mut().take())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "replica panicked".to_string())
    })
}

/// How a cluster is laid out (the options it is built from).
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub replica_count: u8,
    pub group_count: u8,
    pub clients_max: usize,
    pub journal_slot_count: u64,
    pub sync_chunk_size: usize,
    pub write_latency_max: u64,
    pub seed: u64,
    pub namespace: u64,
}

impl Cluster {
    /// A cluster of fresh nodes of `kind`, every group formatted and opened.
    pub fn new(layout: Layout, kind: Box<dyn NodeKind>) -> Cluster {
        let mut cluster = Cluster {
            slots: Vec::new(),
            namespace: layout.namespace,
            replica_count: layout.replica_count,
            group_count: layout.group_count,
            kind,
            clients_max: layout.clients_max,
            journal_slot_count: layout.journal_slot_count,
            sync_chunk_size: layout.sync_chunk_size,
            seed: layout.seed,
        };
        for r in 0..layout.replica_count {
            let groups = cluster.group_configs(r, 0);
            let disks = groups
                .iter()
                .map(|group| {
                    // Group 0's stream keeps its name: single-group runs are unchanged.
                    let name = match group.group {
                        0 => format!("disk{r}"),
                        g => format!("disk{r}.{g}"),
                    };
                    let prng = crate::prng::Prng::stream(layout.seed, &name);
                    let mut disk = FaultyStorage::with_latency(layout.write_latency_max, prng);
                    cluster.kind.format(group, &mut disk);
                    disk
                })
                .collect();
            let opened = cluster.kind.open(&groups, disks);
            assert!(
                opened.errors.iter().all(Option::is_none),
                "fresh disks open"
            );
            let node = opened.node;
            let groups = 0..layout.group_count as usize;
            cluster.slots.push(NodeSlot {
                observed: groups.clone().map(|g| observe(node.as_ref(), g)).collect(),
                commit_observed: vec![0; layout.group_count as usize],
                node: Some(node),
                disks: Vec::new(),
                restart_tick: None,
                up_since_tick: 0,
            });
        }
        cluster
    }

    /// The configuration of every group of node `r`; jitter seeds differ per incarnation.
    fn group_configs(&self, r: u8, incarnation: u64) -> Vec<GroupConfig> {
        (0..self.group_count as usize)
            .map(|group| {
                let mut config = Config::new(CLUSTER, self.replica_count, r);
                config.namespace = self.namespace + group as u64;
                // Each group's round of primaries starts on another node.
                config.primary_offset = (group % self.replica_count as usize) as u8;
                config.clients_max = self.clients_max;
                config.journal_slot_count = self.journal_slot_count;
                config.sync_chunk_size = self.sync_chunk_size;
                config.seed = self
                    .seed
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .wrapping_add((r as u64) << 32 | incarnation)
                    .wrapping_add((group as u64) << 56);
                GroupConfig { config, group }
            })
            .collect()
    }

    /// The namespace group `group` runs as.
    pub fn namespace(&self, group: usize) -> u64 {
        self.namespace + group as u64
    }

    pub fn kind(&self) -> &dyn NodeKind {
        self.kind.as_ref()
    }

    pub fn is_up(&self, r: u8) -> bool {
        self.slots[r as usize].node.is_some()
    }

    pub fn node(&self, r: u8) -> Option<&dyn Node> {
        self.slots[r as usize].node.as_deref()
    }

    pub fn node_mut(&mut self, r: u8) -> Option<&mut (dyn Node + 'static)> {
        self.slots[r as usize].node.as_deref_mut()
    }

    /// Group `g` of node `r`, if up.
    pub fn group(&self, r: u8, g: usize) -> Option<&dyn GroupView> {
        self.node(r)?.group(g)
    }

    /// The up replicas of group `g`.
    pub fn up_in(&self, g: usize) -> impl Iterator<Item = (u8, &dyn GroupView)> {
        (0..self.replica_count).filter_map(move |r| Some((r, self.group(r, g)?)))
    }

    /// Group `g` of node `r` as this crate's replica, if the node is the reference one (for
    /// scripted scenarios and tests that look inside).
    pub fn replica_in(&self, r: u8, g: usize) -> Option<&SimReplica> {
        let node = self.node(r)?.as_any().downcast_ref::<KvNode>()?;
        node.replica(g)
    }

    pub fn replica_in_mut(&mut self, r: u8, g: usize) -> Option<&mut SimReplica> {
        let node = self.node_mut(r)?.as_any_mut().downcast_mut::<KvNode>()?;
        node.replica_mut(g)
    }

    /// The metadata group's replica on node `r` (the only group of a single-group run).
    pub fn replica(&self, r: u8) -> Option<&SimReplica> {
        self.replica_in(r, 0)
    }

    pub fn replica_mut(&mut self, r: u8) -> Option<&mut SimReplica> {
        self.replica_in_mut(r, 0)
    }

    /// The up replicas of the metadata group, as this crate's replica.
    pub fn up(&self) -> impl Iterator<Item = (u8, &SimReplica)> {
        (0..self.replica_count).filter_map(|r| Some((r, self.replica(r)?)))
    }

    /// Crashes node `r`: every group's memory is gone, every disk region stays.
    pub fn crash(&mut self, r: u8, restart_tick: Option<u64>) {
        let slot = &mut self.slots[r as usize];
        let node = slot.node.take().expect("crash an up node");
        slot.disks = node.into_disks();
        slot.restart_tick = restart_tick;
    }

    /// Restarts node `r` from its disks, every group recovering from its own region. A
    /// group that cannot open (its region lost what no peer can give back) keeps the whole
    /// node down, as a process whose storage check fails does not start.
    pub fn restart(&mut self, r: u8, tick: u64, incarnation: u64) -> Result<(), RestartError> {
        let groups = self.group_configs(r, incarnation);
        let slot = &mut self.slots[r as usize];
        assert!(slot.node.is_none(), "restart a down node");
        let disks = std::mem::take(&mut slot.disks);
        let opened = self.kind.open(&groups, disks);
        let slot = &mut self.slots[r as usize];
        let failure = opened.errors.iter().flatten().next().cloned();
        if let Some(error) = failure {
            slot.disks = opened.node.into_disks();
            return Err(match error {
                OpenError::Panicked(message) => RestartError::Panicked(message),
                OpenError::Unopenable => {
                    slot.restart_tick = None;
                    RestartError::Unopenable
                }
            });
        }
        let node = opened.node;
        for g in 0..self.group_count as usize {
            slot.observed[g] = observe(node.as_ref(), g);
            slot.commit_observed[g] = 0;
        }
        slot.node = Some(node);
        slot.restart_tick = None;
        slot.up_since_tick = tick;
        Ok(())
    }

    /// Group `g`'s disk region on node `r`, up or down.
    pub fn storage_in(&self, r: u8, g: usize) -> &FaultyStorage {
        let slot = &self.slots[r as usize];
        match slot.node.as_deref() {
            Some(node) => node.disk(g),
            None => &slot.disks[g],
        }
    }

    pub fn storage_in_mut(&mut self, r: u8, g: usize) -> &mut FaultyStorage {
        let slot = &mut self.slots[r as usize];
        match slot.node.as_deref_mut() {
            Some(node) => node.disk_mut(g),
            None => &mut slot.disks[g],
        }
    }

    /// The metadata group's disk region on node `r` (a single-group run's whole disk).
    pub fn storage(&self, r: u8) -> &FaultyStorage {
        self.storage_in(r, 0)
    }

    pub fn storage_mut(&mut self, r: u8) -> &mut FaultyStorage {
        self.storage_in_mut(r, 0)
    }

    /// Whether every disk region of node `r` is clean (no fault beyond what peers repair).
    pub fn disks_clean(&self, r: u8) -> bool {
        (0..self.group_count as usize).all(|g| self.storage_in(r, g).is_clean())
    }

    /// Highest view any up replica of any group is in.
    pub fn view_max(&self) -> u32 {
        (0..self.group_count as usize)
            .flat_map(|g| self.up_in(g).map(|(_, x)| x.view()))
            .max()
            .unwrap_or(0)
    }
}

fn observe(node: &dyn Node, g: usize) -> (u32, Status) {
    node.group(g)
        .map_or((0, Status::Recovering), |x| (x.view(), x.status()))
}

/// Why a restart did not bring a replica up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartError {
    /// Recovery panicked (a replica assertion).
    Panicked(String),
    /// No readable superblock: the replica stays down.
    Unopenable,
}

pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Normal => "normal",
        Status::ViewChange => "view_change",
        Status::Recovering => "recovering",
    }
}
