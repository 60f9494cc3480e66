//! The commands of the protocol and their command-specific header fields.
//!
//! Each command owns the first bytes of the command region (header bytes 72..256); every byte it
//! does not use is padding and must be zero.

use super::bytes_le::*;
use super::error::DecodeError;

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

    /// Writes the command fields into `r` (the zeroed command region). Returns bytes used.
    pub fn encode(&self, r: &mut [u8]) -> usize {
        match self {
            Command::Ping(p) | Command::Pong(p) => {
                put_u64(r, 0, p.timestamp_monotonic);
                put_u64(r, 8, p.checkpoint_op);
                16
            }
            Command::Request(q) => {
                put_u128(r, 0, q.client);
                put_u64(r, 16, q.session);
                put_u32(r, 24, q.request);
                put_u8(r, 28, q.operation as u8);
                29
            }
            Command::Prepare(p) => encode_prepare(p, r),
            Command::PrepareOk(p) => {
                put_u128(r, 0, p.prepare_checksum);
                put_u64(r, 16, p.op);
                put_u32(r, 24, p.prepare_view);
                28
            }
            Command::Reply(p) => {
                put_u128(r, 0, p.request_checksum);
                put_u128(r, 16, p.client);
                put_u64(r, 32, p.op);
                put_u64(r, 40, p.commit);
                put_u64(r, 48, p.timestamp);
                put_u64(r, 56, p.session);
                put_u32(r, 64, p.request);
                put_u8(r, 68, p.operation as u8);
                69
            }
            Command::Commit(c) => {
                put_u128(r, 0, c.commit_checksum);
                put_u64(r, 16, c.commit);
                put_u64(r, 24, c.timestamp_monotonic);
                put_u64(r, 32, c.checkpoint_op);
                40
            }
            Command::StartViewChange | Command::Headers => 0,
            Command::DoViewChange(d) => {
                put_u128(r, 0, d.present_bitset);
                put_u64(r, 16, d.op);
                put_u64(r, 24, d.commit_min);
                put_u32(r, 32, d.log_view);
                put_u64(r, 36, d.view_head);
                put_u64(r, 44, d.unknown_max);
                put_u128(r, 52, d.unknown_bitset);
                68
            }
            Command::StartView(s) => {
                put_u128(r, 0, s.nonce);
                put_u64(r, 16, s.op);
                put_u64(r, 24, s.commit);
                32
            }
            Command::RequestStartView(s) => {
                put_u128(r, 0, s.nonce);
                16
            }
            Command::RequestHeaders(h) => {
                put_u64(r, 0, h.op_min);
                put_u64(r, 8, h.op_max);
                16
            }
            Command::RequestPrepare(p) => {
                put_u128(r, 0, p.prepare_checksum);
                put_u64(r, 16, p.prepare_op);
                24
            }
            Command::Eviction(e) => {
                put_u128(r, 0, e.client);
                put_u8(r, 16, e.reason as u8);
                17
            }
            Command::RequestSyncCheckpoint(q) => {
                put_u64(r, 0, q.checkpoint_op_min);
                put_u64(r, 8, q.offset);
                put_u128(r, 16, q.checkpoint_checksum);
                32
            }
            Command::SyncCheckpoint(c) => {
                put_u128(r, 0, c.checkpoint_checksum);
                put_u64(r, 16, c.checkpoint_op);
                put_u64(r, 24, c.size);
                put_u64(r, 32, c.offset);
                40
            }
        }
    }

    /// Reads the fields of command `code` from the command region. Returns the command and the
    /// number of bytes it uses (the rest must be zero padding). Field relations are checked by
    /// the caller, which also knows the view.
    pub fn decode(code: u8, r: &[u8]) -> Result<(Command, usize), DecodeError> {
        let op =
            |at| Operation::from_u8(get_u8(r, at)).ok_or(DecodeError::Field("unknown operation"));
        let ping = || Ping {
            timestamp_monotonic: get_u64(r, 0),
            checkpoint_op: get_u64(r, 8),
        };
        Ok(match code {
            1 => (Command::Ping(ping()), 16),
            2 => (Command::Pong(ping()), 16),
            3 => (
                Command::Request(Request {
                    client: get_u128(r, 0),
                    session: get_u64(r, 16),
                    request: get_u32(r, 24),
                    operation: op(28)?,
                }),
                29,
            ),
            4 => (Command::Prepare(decode_prepare(r)?), PREPARE_FIELDS_SIZE),
            5 => (
                Command::PrepareOk(PrepareOk {
                    prepare_checksum: get_u128(r, 0),
                    op: get_u64(r, 16),
                    prepare_view: get_u32(r, 24),
                }),
                28,
            ),
            6 => (
                Command::Reply(Reply {
                    request_checksum: get_u128(r, 0),
                    client: get_u128(r, 16),
                    op: get_u64(r, 32),
                    commit: get_u64(r, 40),
                    timestamp: get_u64(r, 48),
                    session: get_u64(r, 56),
                    request: get_u32(r, 64),
                    operation: op(68)?,
                }),
                69,
            ),
            7 => (
                Command::Commit(Commit {
                    commit_checksum: get_u128(r, 0),
                    commit: get_u64(r, 16),
                    timestamp_monotonic: get_u64(r, 24),
                    checkpoint_op: get_u64(r, 32),
                }),
                40,
            ),
            8 => (Command::StartViewChange, 0),
            9 => (
                Command::DoViewChange(DoViewChange {
                    present_bitset: get_u128(r, 0),
                    op: get_u64(r, 16),
                    commit_min: get_u64(r, 24),
                    log_view: get_u32(r, 32),
                    view_head: get_u64(r, 36),
                    unknown_max: get_u64(r, 44),
                    unknown_bitset: get_u128(r, 52),
                }),
                68,
            ),
            10 => (
                Command::StartView(StartView {
                    nonce: get_u128(r, 0),
                    op: get_u64(r, 16),
                    commit: get_u64(r, 24),
                }),
                32,
            ),
            11 => (
                Command::RequestStartView(RequestStartView {
                    nonce: get_u128(r, 0),
                }),
                16,
            ),
            12 => (
                Command::RequestHeaders(RequestHeaders {
                    op_min: get_u64(r, 0),
                    op_max: get_u64(r, 8),
                }),
                16,
            ),
            13 => (Command::Headers, 0),
            14 => (
                Command::RequestPrepare(RequestPrepare {
                    prepare_checksum: get_u128(r, 0),
                    prepare_op: get_u64(r, 16),
                }),
                24,
            ),
            15 => {
                let reason = match get_u8(r, 16) {
                    1 => EvictionReason::NoSession,
                    2 => EvictionReason::SessionTooLow,
                    _ => return Err(DecodeError::Field("unknown eviction reason")),
                };
                (
                    Command::Eviction(Eviction {
                        client: get_u128(r, 0),
                        reason,
                    }),
                    17,
                )
            }
            16 => (
                Command::RequestSyncCheckpoint(RequestSyncCheckpoint {
                    checkpoint_op_min: get_u64(r, 0),
                    offset: get_u64(r, 8),
                    checkpoint_checksum: get_u128(r, 16),
                }),
                32,
            ),
            17 => (
                Command::SyncCheckpoint(SyncCheckpoint {
                    checkpoint_checksum: get_u128(r, 0),
                    checkpoint_op: get_u64(r, 16),
                    size: get_u64(r, 24),
                    offset: get_u64(r, 32),
                }),
                40,
            ),
            other => return Err(DecodeError::UnknownCommand(other)),
        })
    }
}

/// Bytes of the command region a prepare uses; everything after must be zero padding.
const PREPARE_FIELDS_SIZE: usize = 85;

fn encode_prepare(p: &Prepare, r: &mut [u8]) -> usize {
    put_u128(r, 0, p.parent);
    put_u128(r, 16, p.client);
    put_u128(r, 32, p.request_checksum);
    put_u64(r, 48, p.op);
    put_u64(r, 56, p.commit);
    put_u64(r, 64, p.timestamp);
    put_u64(r, 72, p.session);
    put_u32(r, 80, p.request);
    put_u8(r, 84, p.operation as u8);
    PREPARE_FIELDS_SIZE
}

fn decode_prepare(r: &[u8]) -> Result<Prepare, DecodeError> {
    Ok(Prepare {
        parent: get_u128(r, 0),
        client: get_u128(r, 16),
        request_checksum: get_u128(r, 32),
        op: get_u64(r, 48),
        commit: get_u64(r, 56),
        timestamp: get_u64(r, 64),
        session: get_u64(r, 72),
        request: get_u32(r, 80),
        operation: Operation::from_u8(get_u8(r, 84))
            .ok_or(DecodeError::Field("unknown operation"))?,
    })
}
