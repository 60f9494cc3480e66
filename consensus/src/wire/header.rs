//! The fixed 256-byte header: layout, sealing (checksums) and validated decoding.

use super::bytes_le::*;
use super::checksum::{checksum, DOMAIN_BODY, DOMAIN_HEADER};
use super::command::{Command, Operation, CHECKPOINT_SIZE_MAX};
use super::error::DecodeError;
use super::{DecodeContext, HEADERS_MAX, HEADER_SIZE, MESSAGE_SIZE_MAX, RELEASE};

// Common part of the layout. Bytes 62..64 are reserved and must be zero.
const AT_CHECKSUM: usize = 0;
const AT_CHECKSUM_BODY: usize = 16;
const AT_CLUSTER: usize = 32;
const AT_SIZE: usize = 48;
const AT_VIEW: usize = 52;
const AT_RELEASE: usize = 56;
const AT_COMMAND: usize = 60;
const AT_REPLICA: usize = 61;
const AT_RESERVED: usize = 62;
const AT_NAMESPACE: usize = 64;
/// Where the command-specific fields start.
pub const COMMAND_REGION: usize = 72;
/// What the padding after a command must hold.
const ZEROS: [u8; HEADER_SIZE] = [0; HEADER_SIZE];

/// A decoded header. `checksum` and `checksum_body` are set by `seal` and verified by `decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub checksum: u128,
    pub checksum_body: u128,
    pub cluster: u128,
    /// Header plus body, in bytes.
    pub size: u32,
    /// The sender's view; for a prepare, the view in which it was prepared.
    pub view: u32,
    pub release: u32,
    /// The replica that sent (or, for a prepare, created) the message.
    pub replica: u8,
    /// The consensus group this message belongs to.
    pub namespace: u64,
    pub command: Command,
}

impl Header {
    /// An unsealed header (checksums zero until `seal`).
    pub fn new(cluster: u128, view: u32, replica: u8, command: Command) -> Header {
        Header {
            checksum: 0,
            checksum_body: 0,
            cluster,
            size: HEADER_SIZE as u32,
            view,
            release: RELEASE,
            replica,
            namespace: 0,
            command,
        }
    }

    /// The same header in consensus group `namespace`.
    pub fn in_namespace(mut self, namespace: u64) -> Header {
        self.namespace = namespace;
        self
    }

    /// Sets size and both checksums for `body`.
    pub fn seal(&mut self, body: &[u8]) {
        assert!(
            HEADER_SIZE + body.len() <= MESSAGE_SIZE_MAX,
            "body over the limit"
        );
        self.size = (HEADER_SIZE + body.len()) as u32;
        self.checksum_body = checksum(body, DOMAIN_BODY);
        let bytes = self.encode();
        self.checksum = checksum(&bytes[AT_CHECKSUM_BODY..], DOMAIN_HEADER);
    }

    /// Whether `checksum` matches the header bytes (a sealed header must).
    pub fn is_sealed(&self) -> bool {
        let bytes = self.encode();
        self.checksum == checksum(&bytes[AT_CHECKSUM_BODY..], DOMAIN_HEADER)
    }

    /// The 256 header bytes, little-endian, padding zero.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        put_u128(&mut b, AT_CHECKSUM, self.checksum);
        put_u128(&mut b, AT_CHECKSUM_BODY, self.checksum_body);
        put_u128(&mut b, AT_CLUSTER, self.cluster);
        put_u32(&mut b, AT_SIZE, self.size);
        put_u32(&mut b, AT_VIEW, self.view);
        put_u32(&mut b, AT_RELEASE, self.release);
        put_u8(&mut b, AT_COMMAND, self.command.code());
        put_u8(&mut b, AT_REPLICA, self.replica);
        put_u64(&mut b, AT_NAMESPACE, self.namespace);
        self.command.encode(&mut b[COMMAND_REGION..]);
        b
    }

    /// Decodes and validates a header (not its body). The checksum is verified first, so a
    /// corrupt header never reaches field parsing.
    pub fn decode(b: &[u8], ctx: &DecodeContext) -> Result<Header, DecodeError> {
        if b.len() < HEADER_SIZE {
            return Err(DecodeError::Size {
                expected: HEADER_SIZE,
                actual: b.len(),
            });
        }
        let b = &b[..HEADER_SIZE];
        let header_checksum = get_u128(b, AT_CHECKSUM);
        if header_checksum != checksum(&b[AT_CHECKSUM_BODY..], DOMAIN_HEADER) {
            return Err(DecodeError::HeaderChecksum);
        }
        let size = get_u32(b, AT_SIZE);
        if (size as usize) < HEADER_SIZE {
            return Err(DecodeError::Size {
                expected: HEADER_SIZE,
                actual: size as usize,
            });
        }
        if size as usize > MESSAGE_SIZE_MAX {
            return Err(DecodeError::TooLarge { size });
        }
        let cluster = get_u128(b, AT_CLUSTER);
        if cluster != ctx.cluster {
            return Err(DecodeError::Cluster {
                expected: ctx.cluster,
                actual: cluster,
            });
        }
        let replica = get_u8(b, AT_REPLICA);
        if replica >= ctx.replica_count {
            return Err(DecodeError::ReplicaIndex {
                replica,
                replica_count: ctx.replica_count,
            });
        }
        if get_u16(b, AT_RESERVED) != 0 {
            return Err(DecodeError::Padding {
                offset: AT_RESERVED,
            });
        }
        let (command, used) = Command::decode(get_u8(b, AT_COMMAND), &b[COMMAND_REGION..])?;
        // One comparison with zeros (a memcmp) first: every delivered message comes through
        // here, and a loop over the padding bytes was a tenth of a fuzz target's time.
        let padding = &b[COMMAND_REGION + used..];
        if padding != &ZEROS[..padding.len()] {
            let i = padding.iter().position(|&x| x != 0).expect("not all zeros");
            return Err(DecodeError::Padding {
                offset: COMMAND_REGION + used + i,
            });
        }
        let header = Header {
            checksum: header_checksum,
            checksum_body: get_u128(b, AT_CHECKSUM_BODY),
            cluster,
            size,
            view: get_u32(b, AT_VIEW),
            release: get_u32(b, AT_RELEASE),
            replica,
            namespace: get_u64(b, AT_NAMESPACE),
            command,
        };
        header.validate_fields()?;
        Ok(header)
    }

    /// The per-command field relations.
    fn validate_fields(&self) -> Result<(), DecodeError> {
        let body_size = self.size as usize - HEADER_SIZE;
        let fail = |what| Err(DecodeError::Field(what));
        match self.command {
            Command::Request(r) => {
                if r.client == 0 {
                    return fail("request client is zero");
                }
                if r.operation == Operation::Root {
                    return fail("a client cannot request root");
                }
                if (r.operation == Operation::Register) != (r.request == 0) {
                    return fail("register must be request 0, and only register");
                }
                if (r.operation == Operation::Register) != (r.session == 0) {
                    return fail("session must be 0 exactly for register");
                }
            }
            Command::Prepare(p) => validate_prepare(&p)?,
            Command::PrepareOk(p) => {
                if p.op == 0 {
                    return fail("prepare_ok of the root");
                }
                if p.prepare_view > self.view {
                    return fail("prepare_ok prepare_view > view");
                }
            }
            Command::Reply(r) => {
                if r.operation == Operation::Root || r.client == 0 {
                    return fail("reply to root or to client zero");
                }
                if r.op > r.commit {
                    return fail("reply op > commit");
                }
            }
            Command::DoViewChange(d) => {
                if d.log_view >= self.view {
                    return fail("do_view_change log_view >= view");
                }
                if d.commit_min > d.op {
                    return fail("do_view_change commit_min > op");
                }
                let count = body_size / HEADER_SIZE;
                if count < 128 && d.present_bitset >> count != 0 {
                    return fail("do_view_change present bit beyond the headers");
                }
                if (d.unknown_max == 0) != (d.unknown_bitset == 0)
                    || (d.unknown_max != 0 && d.unknown_bitset & 1 == 0)
                {
                    return fail("do_view_change unknown_max and its bitset disagree");
                }
                if d.unknown_max < 128 && d.unknown_bitset >> d.unknown_max != 0 {
                    return fail("do_view_change unknown op at or below the root");
                }
                if d.unknown_bitset != 0
                    && d.unknown_max - (127 - d.unknown_bitset.leading_zeros() as u64)
                        <= d.commit_min
                {
                    return fail("do_view_change unknown op at or below commit_min");
                }
            }
            Command::StartView(s) if s.commit > s.op => {
                return fail("start_view commit > op");
            }
            Command::RequestHeaders(h)
                if h.op_min > h.op_max || h.op_max - h.op_min >= HEADERS_MAX as u64 =>
            {
                return fail("request_headers range empty or too wide");
            }
            Command::Eviction(e) if e.client == 0 => {
                return fail("eviction of client zero");
            }
            Command::Commit(c) if c.checkpoint_op > c.commit => {
                return fail("commit checkpoint_op > commit");
            }
            Command::RequestSyncCheckpoint(q) if q.checkpoint_op_min == 0 => {
                return fail("request_sync_checkpoint of the root");
            }
            Command::SyncCheckpoint(c) => {
                if c.checkpoint_op == 0 || c.size == 0 || c.size > CHECKPOINT_SIZE_MAX {
                    return fail("sync_checkpoint op or size out of range");
                }
                let end = c.offset.checked_add(body_size as u64);
                if body_size == 0 || end.is_none_or(|end| end > c.size) {
                    return fail("sync_checkpoint chunk outside the checkpoint");
                }
            }
            _ => {}
        }
        let body_allowed = matches!(
            self.command,
            Command::Request(_) | Command::Prepare(_) | Command::Reply(_)
        ) || matches!(self.command, Command::SyncCheckpoint(_))
            || self.command.carries_headers();
        if body_size > 0 && !body_allowed {
            return Err(DecodeError::Body("this command has no body"));
        }
        Ok(())
    }

    /// The prepare fields. Panics if this is not a prepare header (a bug, never input).
    pub fn prepare(&self) -> &super::command::Prepare {
        match &self.command {
            Command::Prepare(p) => p,
            other => panic!("expected a prepare header, got {}", other.name()),
        }
    }
}

fn validate_prepare(p: &super::command::Prepare) -> Result<(), DecodeError> {
    let fail = |what| Err(DecodeError::Field(what));
    if (p.op == 0) != (p.operation == Operation::Root) {
        return fail("root must be op 0, and only root");
    }
    if p.op == 0 {
        if p.commit != 0 || p.client != 0 || p.parent != 0 || p.timestamp != 0 {
            return fail("root fields must be zero");
        }
        return Ok(());
    }
    if p.commit >= p.op {
        return fail("prepare commit >= op");
    }
    if p.client == 0 || p.timestamp == 0 {
        return fail("prepare client or timestamp zero");
    }
    let register = p.operation == Operation::Register;
    if register != (p.request == 0) || register != (p.session == 0) {
        return fail("prepare register must be request 0 session 0, and only register");
    }
    Ok(())
}
