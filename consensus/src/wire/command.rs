//! The commands of the protocol and their command-specific header fields.
//!
//! Each command owns the first bytes of the command region (header bytes 72..256); every byte it
//! does not use is padding and must be zero.

use super::error::DecodeError;
use bytes::{Buf, BufMut};

/// The operation a prepare (and its request and reply) carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Op 0 of every log: anchors the hash chain.
    Root = 1,
    /// Registers a client session; the session number is the op that commits it.
    Register = 2,
    /// An operation of the state machine; the body is its input.
    StateMachine = 3,
}

impl Operation {
    pub fn from_u8(v: u8) -> Option<Operation> {
        match v {
            1 => Some(Operation::Root),
            2 => Some(Operation::Register),
            3 => Some(Operation::StateMachine),
            _ => None,
        }
    }
}

/// Why a client was told its session is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvictionReason {
    /// The client table holds no session for this client (never registered, or evicted).
    NoSession = 1,
    /// The request carries a session older than the client's current one.
    SessionTooLow = 2,
}

/// A client request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Request {
    pub client: u128,
    /// The session number returned by register (0 while registering).
    pub session: u64,
    /// 0 for register, then 1, 2, 3, ...
    pub request: u32,
    pub operation: Operation,
}

/// A prepare: one op of the log. Its header checksum is the op's identity in the hash chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prepare {
    /// Checksum of the previous op's prepare header.
    pub parent: u128,
    pub client: u128,
    /// Checksum of the request header this op executes (0 for root).
    pub request_checksum: u128,
    pub op: u64,
    /// The primary's commit_max when it prepared this op.
    pub commit: u64,
    /// Strictly increasing across the log (N8).
    pub timestamp: u64,
    pub session: u64,
    pub request: u32,
    pub operation: Operation,
}

/// A backup's acknowledgement that a prepare is durable in its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrepareOk {
    pub prepare_checksum: u128,
    pub op: u64,
    /// The view in which the acknowledged prepare was created.
    pub prepare_view: u32,
}

/// The primary's answer to a committed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reply {
    pub request_checksum: u128,
    pub client: u128,
    pub op: u64,
    pub commit: u64,
    pub timestamp: u64,
    /// For register: the new session number (== op).
    pub session: u64,
    pub request: u32,
    pub operation: Operation,
}

/// Commit heartbeat from the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commit {
    /// Checksum of the prepare at `commit`, so a backup can tell a stale entry there.
    pub commit_checksum: u128,
    pub commit: u64,
    /// The primary's tick count: a heartbeat proves liveness only if newer (N9).
    pub timestamp_monotonic: u64,
    /// The primary's newest durable checkpoint, so a lagging backup knows whom to sync from.
    pub checkpoint_op: u64,
}

/// A replica's log, sent to the new primary of `view` (the body carries headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoViewChange {
    /// Bit i set: the replica holds the prepare of the i-th header of the body.
    pub present_bitset: u128,
    pub op: u64,
    pub commit_min: u64,
    pub log_view: u32,
    /// The op of the head the sender installed when it entered `log_view` (the start_view's
    /// head, or its own chosen head as that view's primary): every op of the `log_view` log
    /// above it was appended in `log_view`. `VIEW_HEAD_UNKNOWN` when it does not know it.
    pub view_head: u64,
    /// The highest op the sender may have acknowledged but whose header it lost (both zones
    /// of its journal slot unreadable after a crash), 0 when there is none. It may be above
    /// `op`: then the sender's known log ends below what it may have acknowledged.
    pub unknown_max: u64,
    /// Bit i set: op `unknown_max - i` is such an op (so bit 0 is set whenever `unknown_max`
    /// is not 0). The new primary never counts these ops as nacked by the sender.
    pub unknown_bitset: u128,
}

impl DoViewChange {
    /// The ops the sender may have acknowledged without knowing their header, ascending.
    pub fn unknown_ops(&self) -> Vec<u64> {
        (0..128u64)
            .rev()
            .filter(|&i| self.unknown_bitset >> i & 1 == 1 && i < self.unknown_max)
            .map(|i| self.unknown_max - i)
            .collect()
    }

    /// Encodes ascending `ops` as `(unknown_max, unknown_bitset)`; None when they span more
    /// than 128 ops (the sender then cannot describe its log, and abstains).
    pub fn encode_unknown(ops: &[u64]) -> Option<(u64, u128)> {
        let Some(&max) = ops.last() else {
            return Some((0, 0));
        };
        let mut bits = 0u128;
        for &op in ops {
            assert!(
                op > 0 && op <= max,
                "unknown ops are ascending, above the root"
            );
            bits |= 1u128.checked_shl(u32::try_from(max - op).ok()?)?;
        }
        Some((max, bits))
    }
}

/// `DoViewChange::view_head` of a sender that does not know its view's head (a checkpoint or
/// a state transfer went past it).
pub const VIEW_HEAD_UNKNOWN: u64 = u64::MAX;

/// The new primary's log (the body carries the suffix headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StartView {
    /// Echoes a request_start_view's nonce (0 when unsolicited).
    pub nonce: u128,
    pub op: u64,
    pub commit: u64,
}

/// Asks the primary of `view` for a start_view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestStartView {
    pub nonce: u128,
}

/// Asks for the headers of ops `op_min..=op_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHeaders {
    pub op_min: u64,
    pub op_max: u64,
}

/// Asks for the prepare of `prepare_op` with `prepare_checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestPrepare {
    pub prepare_checksum: u128,
    pub prepare_op: u64,
}

/// Tells a client its session is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eviction {
    pub client: u128,
    pub reason: EvictionReason,
}

/// Replica-to-replica liveness probe; the pong echoes the timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ping {
    pub timestamp_monotonic: u64,
    /// The sender's newest durable checkpoint (advertised for state transfer).
    pub checkpoint_op: u64,
}

/// Asks a peer for its checkpoint (state transfer), from byte `offset` of the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestSyncCheckpoint {
    /// Only a checkpoint at this op or newer is of use to the sender.
    pub checkpoint_op_min: u64,
    pub offset: u64,
    /// The checkpoint a transfer under way continues (0: the peer's newest). A peer that no
    /// longer holds it answers with its newest from offset 0, and the transfer starts over.
    pub checkpoint_checksum: u128,
}

/// One chunk of a checkpoint (the body), answering request_sync_checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncCheckpoint {
    /// Checksum of the whole checkpoint, verified once every chunk has arrived.
    pub checkpoint_checksum: u128,
    pub checkpoint_op: u64,
    /// Size of the whole checkpoint.
    pub size: u64,
    /// Where this chunk starts.
    pub offset: u64,
}

/// Largest checkpoint a replica sends or accepts in a state transfer.
pub const CHECKPOINT_SIZE_MAX: u64 = 64 * 1024 * 1024;

/// A command and its command-specific header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Ping(Ping),
    Pong(Ping),
    Request(Request),
    Prepare(Prepare),
    PrepareOk(PrepareOk),
    Reply(Reply),
    Commit(Commit),
    StartViewChange,
    DoViewChange(DoViewChange),
    StartView(StartView),
    RequestStartView(RequestStartView),
    RequestHeaders(RequestHeaders),
    Headers,
    RequestPrepare(RequestPrepare),
    Eviction(Eviction),
    RequestSyncCheckpoint(RequestSyncCheckpoint),
    SyncCheckpoint(SyncCheckpoint),
}

/// Number of distinct command codes (1..=COMMAND_COUNT).
pub const COMMAND_COUNT: u8 = 17;

impl Command {
    /// The command byte on the wire.
    pub fn code(&self) -> u8 {
        match self {
            Command::Ping(_) => 1,
            Command::Pong(_) => 2,
            Command::Request(_) => 3,
            Command::Prepare(_) => 4,
            Command::PrepareOk(_) => 5,
            Command::Reply(_) => 6,
            Command::Commit(_) => 7,
            Command::StartViewChange => 8,
            Command::DoViewChange(_) => 9,
            Command::StartView(_) => 10,
            Command::RequestStartView(_) => 11,
            Command::RequestHeaders(_) => 12,
            Command::Headers => 13,
            Command::RequestPrepare(_) => 14,
            Command::Eviction(_) => 15,
            Command::RequestSyncCheckpoint(_) => 16,
            Command::SyncCheckpoint(_) => 17,
        }
    }

    /// A short lowercase name, for traces and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping(_) => "ping",
            Command::Pong(_) => "pong",
            Command::Request(_) => "request",
            Command::Prepare(_) => "prepare",
            Command::PrepareOk(_) => "prepare_ok",
            Command::Reply(_) => "reply",
            Command::Commit(_) => "commit",
            Command::StartViewChange => "start_view_change",
            Command::DoViewChange(_) => "do_view_change",
            Command::StartView(_) => "start_view",
            Command::RequestStartView(_) => "request_start_view",
            Command::RequestHeaders(_) => "request_headers",
            Command::Headers => "headers",
            Command::RequestPrepare(_) => "request_prepare",
            Command::Eviction(_) => "eviction",
            Command::RequestSyncCheckpoint(_) => "request_sync_checkpoint",
            Command::SyncCheckpoint(_) => "sync_checkpoint",
        }
    }

    /// Commands a client may send to a replica. Everything else must come from a replica.
    pub fn is_from_client(&self) -> bool {
        matches!(self, Command::Request(_))
    }

    /// Commands a replica sends to a client.
    pub fn is_to_client(&self) -> bool {
        matches!(self, Command::Reply(_) | Command::Eviction(_))
    }

    /// Commands whose body is a list of prepare headers.
    pub fn carries_headers(&self) -> bool {
        matches!(
            self,
            Command::DoViewChange(_) | Command::StartView(_) | Command::Headers
        )
    }

    /// Writes the command fields into `r` (the zeroed command region), in order from its
    /// start. Returns bytes used.
    pub fn encode(&self, r: &mut [u8]) -> usize {
        let capacity = r.len();
        let mut w = r;
        match self {
            Command::Ping(p) | Command::Pong(p) => {
                w.put_u64_le(p.timestamp_monotonic);
                w.put_u64_le(p.checkpoint_op);
            }
            Command::Request(q) => {
                w.put_u128_le(q.client);
                w.put_u64_le(q.session);
                w.put_u32_le(q.request);
                w.put_u8(q.operation as u8);
            }
            Command::Prepare(p) => encode_prepare(p, &mut w),
            Command::PrepareOk(p) => {
                w.put_u128_le(p.prepare_checksum);
                w.put_u64_le(p.op);
                w.put_u32_le(p.prepare_view);
            }
            Command::Reply(p) => {
                w.put_u128_le(p.request_checksum);
                w.put_u128_le(p.client);
                w.put_u64_le(p.op);
                w.put_u64_le(p.commit);
                w.put_u64_le(p.timestamp);
                w.put_u64_le(p.session);
                w.put_u32_le(p.request);
                w.put_u8(p.operation as u8);
            }
            Command::Commit(c) => {
                w.put_u128_le(c.commit_checksum);
                w.put_u64_le(c.commit);
                w.put_u64_le(c.timestamp_monotonic);
                w.put_u64_le(c.checkpoint_op);
            }
            Command::StartViewChange | Command::Headers => {}
            Command::DoViewChange(d) => {
                w.put_u128_le(d.present_bitset);
                w.put_u64_le(d.op);
                w.put_u64_le(d.commit_min);
                w.put_u32_le(d.log_view);
                w.put_u64_le(d.view_head);
                w.put_u64_le(d.unknown_max);
                w.put_u128_le(d.unknown_bitset);
            }
            Command::StartView(s) => {
                w.put_u128_le(s.nonce);
                w.put_u64_le(s.op);
                w.put_u64_le(s.commit);
            }
            Command::RequestStartView(s) => w.put_u128_le(s.nonce),
            Command::RequestHeaders(h) => {
                w.put_u64_le(h.op_min);
                w.put_u64_le(h.op_max);
            }
            Command::RequestPrepare(p) => {
                w.put_u128_le(p.prepare_checksum);
                w.put_u64_le(p.prepare_op);
            }
            Command::Eviction(e) => {
                w.put_u128_le(e.client);
                w.put_u8(e.reason as u8);
            }
            Command::RequestSyncCheckpoint(q) => {
                w.put_u64_le(q.checkpoint_op_min);
                w.put_u64_le(q.offset);
                w.put_u128_le(q.checkpoint_checksum);
            }
            Command::SyncCheckpoint(c) => {
                w.put_u128_le(c.checkpoint_checksum);
                w.put_u64_le(c.checkpoint_op);
                w.put_u64_le(c.size);
                w.put_u64_le(c.offset);
            }
        }
        capacity - w.len()
    }

    /// Reads the fields of command `code` from the command region, in order from its start.
    /// Returns the command and the number of bytes it uses (the rest must be zero padding).
    /// Field relations are checked by the caller, which also knows the view. The region (184
    /// bytes) holds every command's fields, so reading never runs past it.
    pub fn decode(code: u8, r: &[u8]) -> Result<(Command, usize), DecodeError> {
        let mut c = r;
        let c = &mut c;
        let ping = |c: &mut &[u8]| Ping {
            timestamp_monotonic: c.get_u64_le(),
            checkpoint_op: c.get_u64_le(),
        };
        // Struct fields are evaluated in the order written: the order they are laid out.
        let command = match code {
            1 => Command::Ping(ping(c)),
            2 => Command::Pong(ping(c)),
            3 => Command::Request(Request {
                client: c.get_u128_le(),
                session: c.get_u64_le(),
                request: c.get_u32_le(),
                operation: operation(c.get_u8())?,
            }),
            4 => Command::Prepare(decode_prepare(c)?),
            5 => Command::PrepareOk(PrepareOk {
                prepare_checksum: c.get_u128_le(),
                op: c.get_u64_le(),
                prepare_view: c.get_u32_le(),
            }),
            6 => Command::Reply(Reply {
                request_checksum: c.get_u128_le(),
                client: c.get_u128_le(),
                op: c.get_u64_le(),
                commit: c.get_u64_le(),
                timestamp: c.get_u64_le(),
                session: c.get_u64_le(),
                request: c.get_u32_le(),
                operation: operation(c.get_u8())?,
            }),
            7 => Command::Commit(Commit {
                commit_checksum: c.get_u128_le(),
                commit: c.get_u64_le(),
                timestamp_monotonic: c.get_u64_le(),
                checkpoint_op: c.get_u64_le(),
            }),
            8 => Command::StartViewChange,
            9 => Command::DoViewChange(DoViewChange {
                present_bitset: c.get_u128_le(),
                op: c.get_u64_le(),
                commit_min: c.get_u64_le(),
                log_view: c.get_u32_le(),
                view_head: c.get_u64_le(),
                unknown_max: c.get_u64_le(),
                unknown_bitset: c.get_u128_le(),
            }),
            10 => Command::StartView(StartView {
                nonce: c.get_u128_le(),
                op: c.get_u64_le(),
                commit: c.get_u64_le(),
            }),
            11 => Command::RequestStartView(RequestStartView {
                nonce: c.get_u128_le(),
            }),
            12 => Command::RequestHeaders(RequestHeaders {
                op_min: c.get_u64_le(),
                op_max: c.get_u64_le(),
            }),
            13 => Command::Headers,
            14 => Command::RequestPrepare(RequestPrepare {
                prepare_checksum: c.get_u128_le(),
                prepare_op: c.get_u64_le(),
            }),
            15 => Command::Eviction(Eviction {
                client: c.get_u128_le(),
                reason: match c.get_u8() {
                    1 => EvictionReason::NoSession,
                    2 => EvictionReason::SessionTooLow,
                    _ => return Err(DecodeError::Field("unknown eviction reason")),
                },
            }),
            16 => Command::RequestSyncCheckpoint(RequestSyncCheckpoint {
                checkpoint_op_min: c.get_u64_le(),
                offset: c.get_u64_le(),
                checkpoint_checksum: c.get_u128_le(),
            }),
            17 => Command::SyncCheckpoint(SyncCheckpoint {
                checkpoint_checksum: c.get_u128_le(),
                checkpoint_op: c.get_u64_le(),
                size: c.get_u64_le(),
                offset: c.get_u64_le(),
            }),
            other => return Err(DecodeError::UnknownCommand(other)),
        };
        Ok((command, r.len() - c.len()))
    }
}

fn operation(code: u8) -> Result<Operation, DecodeError> {
    Operation::from_u8(code).ok_or(DecodeError::Field("unknown operation"))
}

fn encode_prepare(p: &Prepare, w: &mut &mut [u8]) {
    w.put_u128_le(p.parent);
    w.put_u128_le(p.client);
    w.put_u128_le(p.request_checksum);
    w.put_u64_le(p.op);
    w.put_u64_le(p.commit);
    w.put_u64_le(p.timestamp);
    w.put_u64_le(p.session);
    w.put_u32_le(p.request);
    w.put_u8(p.operation as u8);
}

fn decode_prepare(c: &mut &[u8]) -> Result<Prepare, DecodeError> {
    Ok(Prepare {
        parent: c.get_u128_le(),
        client: c.get_u128_le(),
        request_checksum: c.get_u128_le(),
        op: c.get_u64_le(),
        commit: c.get_u64_le(),
        timestamp: c.get_u64_le(),
        session: c.get_u64_le(),
        request: c.get_u32_le(),
        operation: operation(c.get_u8())?,
    })
}
