//! Property tests of the wire format: round trips, single-bit flips, arbitrary bytes.

use bytes::Bytes;
use consensus::wire::*;
use proptest::prelude::*;

const CTX: DecodeContext = DecodeContext {
    cluster: 0xC1,
    replica_count: 6,
};

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![Just(Operation::Register), Just(Operation::StateMachine)]
}

fn prepare_header(op: u64, parent: u128) -> Header {
    let p = Prepare {
        parent,
        client: 9,
        request_checksum: 3,
        op,
        commit: op - 1,
        timestamp: op,
        session: 1,
        request: op as u32,
        operation: Operation::StateMachine,
    };
    let mut h = Header::new(CTX.cluster, 1, 0, Command::Prepare(p));
    h.seal(&[]);
    h
}

/// A valid message of every command, with fields drawn by proptest.
fn message() -> impl Strategy<Value = Message> {
    let small = 1u64..1_000_000;
    (
        0u8..17,
        small.clone(),
        0u64..1000,
        any::<u128>(),
        operation(),
        1u32..10,
        0u8..6,
    )
        .prop_map(|(kind, op, delta, x, operation, view, replica)| {
            let client = x | 1;
            let register = operation == Operation::Register;
            let (session, request) = if register {
                (0, 0)
            } else {
                (op, op as u32 | 1)
            };
            let commit = op.saturating_sub(delta + 1);
            let headers = |n: u64| -> Vec<Header> {
                (0..n.min(op)).map(|i| prepare_header(op - i, x)).collect()
            };
            let (command, body) = match kind {
                0 => (
                    Command::Ping(Ping {
                        timestamp_monotonic: op,
                        checkpoint_op: commit,
                    }),
                    Bytes::new(),
                ),
                1 => (
                    Command::Pong(Ping {
                        timestamp_monotonic: op,
                        checkpoint_op: commit,
                    }),
                    Bytes::new(),
                ),
                2 => (
                    Command::Request(Request {
                        client,
                        session,
                        request,
                        operation,
                    }),
                    Bytes::from(vec![7u8; delta as usize]),
                ),
                3 => (
                    Command::Prepare(Prepare {
                        parent: x,
                        client,
                        request_checksum: x ^ 1,
                        op,
                        commit,
                        timestamp: op,
                        session,
                        request,
                        operation,
                    }),
                    Bytes::from(vec![1u8; delta as usize % 64]),
                ),
                4 => (
                    Command::PrepareOk(PrepareOk {
                        prepare_checksum: x,
                        op,
                        prepare_view: view - 1,
                    }),
                    Bytes::new(),
                ),
                5 => (
                    Command::Reply(Reply {
                        request_checksum: x,
                        client,
                        op: commit,
                        commit: op,
                        timestamp: op,
                        session,
                        request,
                        operation,
                    }),
                    Bytes::from_static(b"out"),
                ),
                6 => (
                    Command::Commit(Commit {
                        commit_checksum: x,
                        commit: op,
                        timestamp_monotonic: delta,
                        checkpoint_op: commit,
                    }),
                    Bytes::new(),
                ),
                7 => (Command::StartViewChange, Bytes::new()),
                8 => {
                    let hs = headers(delta % 5 + 1);
                    let bits = (1u128 << hs.len()) - 1;
                    // Unknown ops, when any, lie above commit_min (possibly above op).
                    let (unknown_max, unknown_bitset) = if x & 2 == 0 {
                        (0, 0)
                    } else {
                        let max = op + delta % 3;
                        let span = (max - commit).min(128) as u32;
                        let mask = u128::MAX >> (128 - span);
                        (max, (1 | x >> 3) & mask)
                    };
                    (
                        Command::DoViewChange(DoViewChange {
                            present_bitset: x & bits,
                            op,
                            commit_min: commit,
                            log_view: view - 1,
                            view_head: if x & 1 == 0 {
                                VIEW_HEAD_UNKNOWN
                            } else {
                                commit
                            },
                            unknown_max,
                            unknown_bitset,
                        }),
                        encode_header_list(&hs),
                    )
                }
                9 => (
                    Command::StartView(StartView {
                        nonce: x,
                        op,
                        commit,
                    }),
                    encode_header_list(&headers(delta % 5 + 1)),
                ),
                10 => (
                    Command::RequestStartView(RequestStartView { nonce: x }),
                    Bytes::new(),
                ),
                11 => (
                    Command::RequestHeaders(RequestHeaders {
                        op_min: commit.max(op.saturating_sub(10)),
                        op_max: op,
                    }),
                    Bytes::new(),
                ),
                12 => (Command::Headers, encode_header_list(&headers(3))),
                13 => (
                    Command::RequestPrepare(RequestPrepare {
                        prepare_checksum: x,
                        prepare_op: op,
                    }),
                    Bytes::new(),
                ),
                14 => (
                    Command::Eviction(Eviction {
                        client,
                        reason: EvictionReason::SessionTooLow,
                    }),
                    Bytes::new(),
                ),
                15 => (
                    Command::RequestSyncCheckpoint(RequestSyncCheckpoint {
                        checkpoint_op_min: op | 1,
                        offset: delta,
                        checkpoint_checksum: x,
                    }),
                    Bytes::new(),
                ),
                _ => (
                    Command::SyncCheckpoint(SyncCheckpoint {
                        checkpoint_checksum: x,
                        checkpoint_op: op | 1,
                        size: delta + 3,
                        offset: delta,
                    }),
                    Bytes::from_static(b"abc"),
                ),
            };
            Message::new(Header::new(CTX.cluster, view, replica, command), body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_command_round_trips(m in message()) {
        let bytes = m.encode();
        let decoded = decode(&bytes, &CTX).expect("a valid message decodes");
        prop_assert_eq!(&decoded, &m);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(m in message(), bit in any::<prop::sample::Index>()) {
        let mut bytes = m.encode().to_vec();
        let i = bit.index(bytes.len() * 8);
        bytes[i / 8] ^= 1 << (i % 8);
        prop_assert!(decode(&bytes, &CTX).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode(&bytes, &CTX);
    }

    #[test]
    fn resealed_garbage_is_rejected_by_validation_not_panic(
        m in message(),
        at in 32usize..256,
        value in any::<u8>(),
    ) {
        // Corrupt a field, then fix up the checksum: validation must still never panic.
        let mut bytes = m.encode().to_vec();
        bytes[at] = value;
        let sum = checksum(&bytes[16..256], 0x5653_5248_4541_4452);
        bytes[..16].copy_from_slice(&sum.to_le_bytes());
        let _ = decode(&bytes, &CTX);
    }
}

#[test]
fn typed_errors_for_each_rejection() {
    let m = Message::new(
        Header::new(CTX.cluster, 1, 0, Command::StartViewChange),
        Bytes::new(),
    );
    let good = m.encode();
    assert!(matches!(
        decode(&good[..100], &CTX),
        Err(DecodeError::Size { .. })
    ));
    let other = DecodeContext {
        cluster: 2,
        replica_count: 6,
    };
    assert!(matches!(
        decode(&good, &other),
        Err(DecodeError::Cluster { .. })
    ));
    let small = DecodeContext {
        cluster: CTX.cluster,
        replica_count: 1,
    };
    let from_5 = Message::new(
        Header::new(CTX.cluster, 1, 5, Command::StartViewChange),
        Bytes::new(),
    );
    assert!(matches!(
        decode(&from_5.encode(), &small),
        Err(DecodeError::ReplicaIndex { .. })
    ));
    let mut flipped = good.to_vec();
    flipped[100] ^= 1;
    assert_eq!(decode(&flipped, &CTX), Err(DecodeError::HeaderChecksum));
    // A field relation: a do_view_change whose log_view is not below its view.
    let dvc = DoViewChange {
        present_bitset: 0,
        op: 1,
        commit_min: 0,
        log_view: 1,
        view_head: VIEW_HEAD_UNKNOWN,
        unknown_max: 0,
        unknown_bitset: 0,
    };
    let body = encode_header_list(&[prepare_header(1, 0)]);
    let bad = Message::new(
        Header::new(CTX.cluster, 1, 0, Command::DoViewChange(dvc)),
        body,
    );
    assert_eq!(
        decode(&bad.encode(), &CTX),
        Err(DecodeError::Field("do_view_change log_view >= view"))
    );
    // Unknown ops: named consistently, above the root and above commit_min.
    let unknown = |unknown_max, unknown_bitset, commit_min| {
        let dvc = DoViewChange {
            present_bitset: 0,
            op: 3,
            commit_min,
            log_view: 0,
            view_head: VIEW_HEAD_UNKNOWN,
            unknown_max,
            unknown_bitset,
        };
        let m = Message::new(
            Header::new(CTX.cluster, 1, 0, Command::DoViewChange(dvc)),
            encode_header_list(&[prepare_header(3, 0)]),
        );
        decode(&m.encode(), &CTX).map(|m| match m.header.command {
            Command::DoViewChange(d) => d.unknown_ops(),
            _ => unreachable!(),
        })
    };
    assert_eq!(unknown(0, 0, 0), Ok(vec![]));
    assert_eq!(unknown(5, 0b101, 1), Ok(vec![3, 5]), "above the head too");
    let field = |what| Err(DecodeError::Field(what));
    assert_eq!(
        unknown(0, 1, 0),
        field("do_view_change unknown_max and its bitset disagree")
    );
    assert_eq!(
        unknown(5, 0b10, 0),
        field("do_view_change unknown_max and its bitset disagree")
    );
    assert_eq!(
        unknown(2, 0b101, 0),
        field("do_view_change unknown op at or below the root")
    );
    assert_eq!(
        unknown(5, 0b101, 3),
        field("do_view_change unknown op at or below commit_min")
    );
    assert_eq!(
        DoViewChange::encode_unknown(&[3, 5]),
        Some((5, 0b101)),
        "paired with unknown_ops"
    );
    assert_eq!(DoViewChange::encode_unknown(&[1, 200]), None, "too wide");
    // A body on a command that has none.
    let with_body = Message::new(
        Header::new(CTX.cluster, 1, 0, Command::StartViewChange),
        Bytes::from_static(b"x"),
    );
    assert!(matches!(
        decode(&with_body.encode(), &CTX),
        Err(DecodeError::Body(_))
    ));
    // Non-zero padding, with a correct checksum.
    let mut padded = good.to_vec();
    padded[200] = 1;
    let sum = checksum(&padded[16..256], 0x5653_5248_4541_4452);
    padded[..16].copy_from_slice(&sum.to_le_bytes());
    assert_eq!(
        decode(&padded, &CTX),
        Err(DecodeError::Padding { offset: 200 })
    );
    let mut unknown = good.to_vec();
    unknown[60] = 99;
    let sum = checksum(&unknown[16..256], 0x5653_5248_4541_4452);
    unknown[..16].copy_from_slice(&sum.to_le_bytes());
    assert_eq!(decode(&unknown, &CTX), Err(DecodeError::UnknownCommand(99)));
}

#[test]
fn sync_checkpoint_chunks_must_lie_inside_the_checkpoint() {
    let chunk = |offset: u64, size: u64, body: &'static [u8]| {
        let sync = SyncCheckpoint {
            checkpoint_checksum: 7,
            checkpoint_op: 64,
            size,
            offset,
        };
        let m = Message::new(
            Header::new(CTX.cluster, 1, 0, Command::SyncCheckpoint(sync)),
            Bytes::from_static(body),
        );
        decode(&m.encode(), &CTX)
    };
    assert!(chunk(0, 3, b"abc").is_ok());
    assert!(chunk(5, 8, b"abc").is_ok());
    let outside = Err(DecodeError::Field(
        "sync_checkpoint chunk outside the checkpoint",
    ));
    assert_eq!(chunk(6, 8, b"abc"), outside);
    assert_eq!(chunk(u64::MAX, 8, b"abc"), outside);
    assert_eq!(chunk(0, 8, b""), outside);
    assert_eq!(
        chunk(0, CHECKPOINT_SIZE_MAX + 1, b"abc"),
        Err(DecodeError::Field(
            "sync_checkpoint op or size out of range"
        ))
    );
    let commit = Commit {
        commit_checksum: 1,
        commit: 5,
        timestamp_monotonic: 1,
        checkpoint_op: 6,
    };
    let m = Message::new(
        Header::new(CTX.cluster, 1, 0, Command::Commit(commit)),
        Bytes::new(),
    );
    assert_eq!(
        decode(&m.encode(), &CTX),
        Err(DecodeError::Field("commit checkpoint_op > commit"))
    );
}
