//! The replicas of a simulated cluster: each up (a live `Replica`) or down (only its storage
//! remains), crashed and restarted by the world. A panic inside a replica is caught and
//! returned as a message, since it is the replica's own assertion failing.

use crate::storage::FaultyStorage;
use consensus::{Config, KvMachine, Replica, Status};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};

pub type SimReplica = Replica<FaultyStorage, KvMachine>;

/// The cluster id every simulated replica and client uses.
pub const CLUSTER: u128 = 0x5EED_C1A5;

pub struct ReplicaSlot {
    pub replica: Option<SimReplica>,
    /// The durable state while the replica is down.
    pub storage: Option<FaultyStorage>,
    pub restart_tick: Option<u64>,
    pub up_since_tick: u64,
    /// (view, status) at the last observation, to report transitions.
    pub observed: (u32, Status),
    pub commit_observed: u64,
}

pub struct Cluster {
    pub slots: Vec<ReplicaSlot>,
    pub replica_count: u8,
    clients_max: usize,
    journal_slot_count: u64,
    sync_chunk_size: usize,
    seed: u64,
    /// The consensus group (namespace) every replica of this cluster belongs to.
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

impl Cluster {
    pub fn new(
        replica_count: u8,
        clients_max: usize,
        journal_slot_count: u64,
        sync_chunk_size: usize,
        write_latency_max: u64,
        seed: u64,
        namespace: u64,
    ) -> Cluster {
        let mut cluster = Cluster {
            slots: Vec::new(),
            namespace,
            replica_count,
            clients_max,
            journal_slot_count,
            sync_chunk_size,
            seed,
        };
        for r in 0..replica_count {
            let config = cluster.config(r, 0);
            let disk = crate::prng::Prng::stream(seed, &format!("disk{r}"));
            let mut storage = FaultyStorage::with_latency(write_latency_max, disk);
            SimReplica::format(&config, &mut storage);
            storage.flush();
            let replica =
                SimReplica::open(config, storage, KvMachine::new()).expect("fresh storage opens");
            cluster.slots.push(ReplicaSlot {
                observed: (replica.view(), replica.status()),
                replica: Some(replica),
                storage: None,
                restart_tick: None,
                up_since_tick: 0,
                commit_observed: 0,
            });
        }
        cluster
    }

    /// A replica's configuration; its jitter seed differs per incarnation.
    fn config(&self, r: u8, incarnation: u64) -> Config {
        let mut config = Config::new(CLUSTER, self.replica_count, r);
        config.namespace = self.namespace;
        config.clients_max = self.clients_max;
        config.journal_slot_count = self.journal_slot_count;
        config.sync_chunk_size = self.sync_chunk_size;
        config.seed = self
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add((r as u64) << 32 | incarnation);
        config
    }

    pub fn is_up(&self, r: u8) -> bool {
        self.slots[r as usize].replica.is_some()
    }

    pub fn replica(&self, r: u8) -> Option<&SimReplica> {
        self.slots[r as usize].replica.as_ref()
    }

    pub fn replica_mut(&mut self, r: u8) -> Option<&mut SimReplica> {
        self.slots[r as usize].replica.as_mut()
    }

    pub fn up(&self) -> impl Iterator<Item = (u8, &SimReplica)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(r, s)| s.replica.as_ref().map(|x| (r as u8, x)))
    }

    /// Crashes replica `r`: its memory is gone, its storage stays.
    pub fn crash(&mut self, r: u8, restart_tick: Option<u64>) {
        let slot = &mut self.slots[r as usize];
        let replica = slot.replica.take().expect("crash an up replica");
        slot.storage = Some(replica.into_storage());
        slot.restart_tick = restart_tick;
    }

    /// Restarts replica `r` from its storage. A panic during recovery is returned.
    pub fn restart(&mut self, r: u8, tick: u64, incarnation: u64) -> Result<(), RestartError> {
        let config = self.config(r, incarnation);
        let slot = &mut self.slots[r as usize];
        let storage = slot.storage.as_ref().expect("restart a down replica");
        if consensus::superblock::SuperBlock::read(storage).is_none() {
            // Every superblock copy is gone (only beyond the fault atlas): this replica must
            // not rejoin as a fresh one (R8), so it stays down.
            slot.restart_tick = None;
            return Err(RestartError::Unopenable);
        }
        let storage = slot.storage.take().expect("checked");
        let reopen = storage.clone();
        let opened = catch(|| SimReplica::open(config, storage, KvMachine::new()))
            .map_err(RestartError::Panicked)?;
        let replica = match opened {
            Ok(replica) => replica,
            Err(
                consensus::replica::OpenError::CheckpointLost
                | consensus::replica::OpenError::JournalCorrupt,
            ) => {
                // A solo replica lost every copy of its checkpoint, or every copy of a journal
                // entry (beyond the atlas only): there is no peer to recover it from, so it
                // stays down.
                slot.storage = Some(reopen);
                slot.restart_tick = None;
                return Err(RestartError::Unopenable);
            }
            Err(e) => {
                let message = format!("replica {r} could not open: {e:?}");
                return Err(RestartError::Panicked(message));
            }
        };
        slot.observed = (replica.view(), replica.status());
        slot.commit_observed = 0;
        slot.replica = Some(replica);
        slot.restart_tick = None;
        slot.up_since_tick = tick;
        Ok(())
    }

    /// The disk of replica `r`, up or down.
    pub fn storage_mut(&mut self, r: u8) -> &mut FaultyStorage {
        let slot = &mut self.slots[r as usize];
        match slot.replica.as_mut() {
            Some(replica) => replica.storage_mut(),
            None => slot
                .storage
                .as_mut()
                .expect("a down replica keeps its storage"),
        }
    }

    pub fn storage(&self, r: u8) -> &FaultyStorage {
        let slot = &self.slots[r as usize];
        match slot.replica.as_ref() {
            Some(replica) => replica.storage(),
            None => slot
                .storage
                .as_ref()
                .expect("a down replica keeps its storage"),
        }
    }

    /// Highest view any up replica is in.
    pub fn view_max(&self) -> u32 {
        self.up().map(|(_, r)| r.view()).max().unwrap_or(0)
    }
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
