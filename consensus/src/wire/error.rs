//! Every reason a buffer can be rejected by the decoder.

use std::fmt;

/// Why `decode` rejected a buffer. Bad input is never a panic: the replica drops the message
/// and counts the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than a header, longer than the size limit, or `size` disagrees with the buffer.
    Size { expected: usize, actual: usize },
    /// The size field exceeds `MESSAGE_SIZE_MAX`.
    TooLarge { size: u32 },
    /// The command byte names no command.
    UnknownCommand(u8),
    /// The header checksum does not match the header bytes.
    HeaderChecksum,
    /// The body checksum does not match the body bytes.
    BodyChecksum,
    /// The message belongs to another cluster.
    Cluster { expected: u128, actual: u128 },
    /// The replica index is not in `0..replica_count`.
    ReplicaIndex { replica: u8, replica_count: u8 },
    /// Bytes that must be zero are not.
    Padding { offset: usize },
    /// A per-command field relation does not hold (commit <= op, log_view < view, ...).
    Field(&'static str),
    /// The body of a command that carries headers is malformed.
    Body(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Size { expected, actual } => {
                write!(f, "size: expected {expected} bytes, got {actual}")
            }
            DecodeError::TooLarge { size } => write!(f, "size {size} exceeds the message limit"),
            DecodeError::UnknownCommand(c) => write!(f, "unknown command {c}"),
            DecodeError::HeaderChecksum => write!(f, "header checksum mismatch"),
            DecodeError::BodyChecksum => write!(f, "body checksum mismatch"),
            DecodeError::Cluster { expected, actual } => {
                write!(f, "cluster {actual:#x}, expected {expected:#x}")
            }
            DecodeError::ReplicaIndex {
                replica,
                replica_count,
            } => write!(f, "replica {replica} out of range 0..{replica_count}"),
            DecodeError::Padding { offset } => write!(f, "non-zero padding at byte {offset}"),
            DecodeError::Field(what) => write!(f, "invalid field: {what}"),
            DecodeError::Body(what) => write!(f, "invalid body: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}
