//! Replica configuration: identity, limits and timeouts (in ticks).

/// Most replicas a cluster may have.
pub const REPLICAS_MAX: u8 = 6;

/// Timeouts, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Primary: resend unacknowledged prepares.
    pub prepare: u64,
    /// Primary: send a commit heartbeat.
    pub commit_message: u64,
    /// Backup: no fresh heartbeat from the primary for this long starts a view change vote.
    pub normal_heartbeat: u64,
    /// A view change that has not completed for this long moves to the next view.
    pub view_change_status: u64,
    /// Resend start_view_change / do_view_change while the view change runs.
    pub view_change_message: u64,
    /// Primary: without a quorum heard from for this long, stop heartbeats (abdicate, N10).
    pub primary_abdicate: u64,
    /// Ping every other replica.
    pub ping: u64,
    /// Ask peers for missing headers and prepares.
    pub repair: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            prepare: 30,
            commit_message: 20,
            normal_heartbeat: 200,
            view_change_status: 300,
            view_change_message: 30,
            primary_abdicate: 250,
            ping: 40,
            repair: 12,
        }
    }
}

/// Everything a replica is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub cluster: u128,
    pub replica_count: u8,
    pub replica: u8,
    /// The consensus group this replica belongs to (a node may host several: a metadata
    /// group and partition groups). Every message it sends carries it, and a message of
    /// another namespace is dropped and counted before anything reads it.
    pub namespace: u64,
    /// Rotates the round-robin of primaries: the primary of view v is replica
    /// (v + primary_offset) mod replica_count. A node hosting several groups gives each its
    /// own offset, so the groups' primaries start on different nodes and one node's crash
    /// does not depose every group at once. Every replica of a group must agree on it.
    pub primary_offset: u8,
    /// Prepares in flight at once (uncommitted ops a primary may hold).
    pub pipeline_max: usize,
    /// Requests waiting behind a full pipeline.
    pub request_queue_max: usize,
    /// Client sessions held at once.
    pub clients_max: usize,
    /// Highest op the cluster ever reaches (a bound for hosts and fuzzers; the journal itself
    /// is a bounded ring and reuses its slots after each checkpoint).
    pub op_max: u64,
    /// Slots of the journal ring. A checkpoint is taken every half of it (so the ring holds
    /// the ops since the last checkpoint and room for the next interval).
    pub journal_slot_count: u64,
    /// Most prepares requested per repair tick.
    pub repair_prepares_max: usize,
    /// Largest chunk of a checkpoint this replica serves per state-transfer message.
    pub sync_chunk_size: usize,
    pub timeouts: Timeouts,
    /// Seed of the replica's jitter stream (the host derives it; consensus owns no randomness).
    /// A host must give each incarnation of a replica (each `Replica::open`) its own seed: the
    /// replica's ping stamps carry an epoch derived from it, which tells a pong to an earlier
    /// incarnation's ping (ticks restart at zero) from one to its own (see `may_evict`). The
    /// simulator does; `Config::new`'s default (the replica index) does not, and suits only
    /// tests that do not depend on evictions after a restart.
    pub seed: u64,
}

impl Config {
    /// Defaults for replica `replica` of `replica_count`.
    pub fn new(cluster: u128, replica_count: u8, replica: u8) -> Config {
        Config {
            cluster,
            replica_count,
            replica,
            namespace: 0,
            primary_offset: 0,
            pipeline_max: 8,
            request_queue_max: 16,
            clients_max: 32,
            op_max: 1 << 40,
            journal_slot_count: 1024,
            repair_prepares_max: 8,
            sync_chunk_size: super::sync::SYNC_CHUNK_SIZE_MAX,
            timeouts: Timeouts::default(),
            seed: replica as u64,
        }
    }

    pub fn validate(&self) {
        assert!((1..=REPLICAS_MAX).contains(&self.replica_count));
        assert!(self.replica < self.replica_count);
        assert!(self.pipeline_max >= 1);
        // A do_view_change must be able to carry every op that may be uncommitted.
        assert!(self.pipeline_max < crate::wire::HEADERS_MAX);
        assert!(self.clients_max >= 1 && self.request_queue_max >= 1);
        // The primary prepares up to pipeline_max ops beyond its commit; they must fit between
        // the checkpoint it takes at the end of an interval and the end of the ring.
        assert!(self.journal_slot_count.is_multiple_of(2));
        assert!(self.checkpoint_interval() > self.pipeline_max as u64);
        assert!((1..=super::sync::SYNC_CHUNK_SIZE_MAX).contains(&self.sync_chunk_size));
    }

    /// Ops between checkpoints: a checkpoint is taken at every multiple of it.
    pub fn checkpoint_interval(&self) -> u64 {
        self.journal_slot_count / 2
    }

    /// Replicas that must hold an op for it to commit, and that a view change must hear from.
    /// A majority, so that any two quorums intersect.
    pub fn quorum(&self) -> u32 {
        self.replica_count as u32 / 2 + 1
    }

    /// Whose superblock copies this replica reads (another group's, misdirected onto its
    /// disk, are skipped).
    pub fn owner(&self) -> crate::superblock::Owner {
        crate::superblock::Owner {
            cluster: self.cluster,
            namespace: self.namespace,
            replica: self.replica,
        }
    }

    /// The primary of `view` (round robin, rotated by `primary_offset`).
    pub fn primary_index(&self, view: u32) -> u8 {
        let n = self.replica_count as u64;
        ((view as u64 + self.primary_offset as u64) % n) as u8
    }
}
