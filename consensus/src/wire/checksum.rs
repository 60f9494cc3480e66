//! 128-bit checksums for headers and bodies (xxh3-128).
//!
//! xxh3 is not cryptographic; it guards against corruption (bit flips, torn and misdirected
//! writes), not against a malicious peer, which is outside VSR's fault model.

/// Checksum of `bytes`, seeded so that a header checksum can never be confused with a body
/// checksum of the same bytes.
pub fn checksum(bytes: &[u8], domain: u64) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(bytes, domain)
}

/// Domain of header checksums.
pub const DOMAIN_HEADER: u64 = 0x5653_5248_4541_4452; // "VSRHEADR"
/// Domain of body checksums.
pub const DOMAIN_BODY: u64 = 0x5653_5242_4f44_5921; // "VSRBODY!"
