//! The wire protocol: a fixed 256-byte checksummed header, an optional body, and a decoder that
//! rejects every malformed buffer with a typed error instead of panicking.

mod bytes_le;
mod checksum;
mod command;
mod error;
mod header;

pub use checksum::checksum;
pub use command::*;
pub use error::DecodeError;
pub use header::{Header, COMMAND_REGION};

use bytes::Bytes;

/// Size of every header.
pub const HEADER_SIZE: usize = 256;
/// Most prepare headers one message body may carry (do_view_change, start_view, headers).
/// At most 128, the width of the present bitset.
pub const HEADERS_MAX: usize = 64;
/// Largest body of any message.
pub const MESSAGE_BODY_SIZE_MAX: usize = 32 * 1024;
/// Largest message.
pub const MESSAGE_SIZE_MAX: usize = HEADER_SIZE + MESSAGE_BODY_SIZE_MAX;
/// The protocol release this code speaks.
pub const RELEASE: u32 = 1;

const _: () = assert!(HEADERS_MAX <= 128);
const _: () = assert!(HEADERS_MAX * HEADER_SIZE <= MESSAGE_BODY_SIZE_MAX);

/// What the decoder checks a message against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    pub cluster: u128,
    pub replica_count: u8,
}

/// A decoded, checksum-verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: Bytes,
}

impl Message {
    /// Seals `header` for `body` (sets size and checksums).
    pub fn new(mut header: Header, body: Bytes) -> Message {
        header.seal(&body);
        Message { header, body }
    }

    /// Header and body as one buffer.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(HEADER_SIZE + self.body.len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }

    /// The prepare headers a do_view_change, start_view or headers message carries.
    /// Validated at decode time, so this cannot fail on a decoded message.
    pub fn body_headers(&self, ctx: &DecodeContext) -> Vec<Header> {
        decode_header_list(&self.body, ctx).expect("validated at decode")
    }
}

/// Decodes and validates one message. Never panics, whatever `bytes` holds.
pub fn decode(bytes: &[u8], ctx: &DecodeContext) -> Result<Message, DecodeError> {
    if bytes.len() > MESSAGE_SIZE_MAX {
        return Err(DecodeError::TooLarge {
            size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        });
    }
    let header = Header::decode(bytes, ctx)?;
    if header.size as usize != bytes.len() {
        return Err(DecodeError::Size {
            expected: header.size as usize,
            actual: bytes.len(),
        });
    }
    let body = &bytes[HEADER_SIZE..];
    if header.checksum_body != checksum(body, checksum::DOMAIN_BODY) {
        return Err(DecodeError::BodyChecksum);
    }
    if header.command.carries_headers() {
        validate_header_list(&header, body, ctx)?;
    }
    Ok(Message {
        header,
        body: Bytes::copy_from_slice(body),
    })
}

/// Encodes prepare headers as a body (newest first, as the protocol sends them).
pub fn encode_header_list(headers: &[Header]) -> Bytes {
    assert!(headers.len() <= HEADERS_MAX);
    let mut out = Vec::with_capacity(headers.len() * HEADER_SIZE);
    for h in headers {
        assert!(matches!(h.command, Command::Prepare(_)));
        out.extend_from_slice(&h.encode());
    }
    Bytes::from(out)
}

fn decode_header_list(body: &[u8], ctx: &DecodeContext) -> Result<Vec<Header>, DecodeError> {
    if !body.len().is_multiple_of(HEADER_SIZE) {
        return Err(DecodeError::Body("not a whole number of headers"));
    }
    if body.len() / HEADER_SIZE > HEADERS_MAX {
        return Err(DecodeError::Body("too many headers"));
    }
    body.chunks(HEADER_SIZE)
        .map(|chunk| {
            let h = Header::decode(chunk, ctx)?;
            match h.command {
                Command::Prepare(_) => Ok(h),
                _ => Err(DecodeError::Body("a carried header is not a prepare")),
            }
        })
        .collect()
}

/// Carried headers must be prepares, newest first, strictly descending in op; for
/// do_view_change and start_view the first one is the sender's head op.
fn validate_header_list(
    header: &Header,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<(), DecodeError> {
    let headers = decode_header_list(body, ctx)?;
    let descending = headers
        .windows(2)
        .all(|w| w[0].prepare().op > w[1].prepare().op);
    if !descending {
        return Err(DecodeError::Body(
            "headers not in strictly descending op order",
        ));
    }
    let head_op = headers.first().map(|h| h.prepare().op);
    let expected_head = match header.command {
        Command::DoViewChange(d) => Some(d.op),
        Command::StartView(s) => Some(s.op),
        _ => None,
    };
    if let Some(op) = expected_head {
        if head_op != Some(op) {
            return Err(DecodeError::Body("first header is not the head op"));
        }
    }
    if headers.is_empty() {
        return Err(DecodeError::Body("no headers"));
    }
    Ok(())
}
