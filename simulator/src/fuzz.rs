//! Fuzz entry points. The cargo-fuzz targets in `fuzz/` are a few lines calling these, and
//! `tests/fuzz_entry_points.rs` runs the same functions on stable over the checked-in corpus
//! and seeded random inputs. Each panics exactly when it found a bug. The simulation targets
//! run short (`budget.rs`) and report how deep they got (`depth.rs`), which the fuzz crate
//! hands libFuzzer as extra features (`features.rs`).

pub mod budget;
mod depth;
pub mod features;

pub use budget::{quiescent, run_to_quiescence, Budget};
pub use depth::Depth;

use crate::cluster::CLUSTER;
use crate::network::{PartitionMode, PartitionSymmetry};
use crate::options::Options;
use crate::run::{self, Outcome, RunConfig};
use crate::scenario::Scenario;
use arbitrary::Unstructured;
use bytes::Bytes;
use consensus::checkpoint::Checkpoint;
use consensus::wire::*;
use consensus::{KvMachine, KvOp, MemoryStorage, Peer, Replica};

/// Raw bytes into the decoder: it never panics, and whatever decodes re-encodes to the same
/// bytes (the decoder accepts exactly one encoding of each message).
pub fn header_decode(data: &[u8]) {
    let ctx = DecodeContext {
        cluster: CLUSTER,
        replica_count: 6,
    };
    // Also try the input as a header with a fixed-up checksum, so field validation is reached.
    for bytes in [data.to_vec(), with_valid_checksums(data)] {
        if let Ok(message) = decode(&bytes, &ctx) {
            assert_eq!(
                &message.encode()[..],
                &bytes[..],
                "decode/encode round trip"
            );
        }
    }
}

/// Patches the body and header checksums of a would-be message so that decoding gets past
/// them and exercises the field validation.
fn with_valid_checksums(data: &[u8]) -> Vec<u8> {
    let mut bytes = data.to_vec();
    if bytes.len() < HEADER_SIZE {
        return bytes;
    }
    let size = (bytes.len() as u32).to_le_bytes();
    bytes[48..52].copy_from_slice(&size);
    bytes[32..48].copy_from_slice(&CLUSTER.to_le_bytes());
    let body_sum = checksum(&bytes[HEADER_SIZE..], 0x5653_5242_4f44_5921);
    bytes[16..32].copy_from_slice(&body_sum.to_le_bytes());
    let header_sum = checksum(&bytes[16..HEADER_SIZE], 0x5653_5248_4541_4452);
    bytes[..16].copy_from_slice(&header_sum.to_le_bytes());
    bytes
}

/// A stream of well-checksummed messages and ticks into one replica: it never panics, and its
/// view, log_view and commits move only as the protocol allows.
pub fn replica_messages(data: &[u8]) -> Depth {
    let mut u = Unstructured::new(data);
    let Ok(mut driver) = ReplicaDriver::new(&mut u) else {
        return Depth::default();
    };
    let mut steps = 0;
    while !u.is_empty() && steps < 2_000 {
        steps += 1;
        if driver.step(&mut u).is_err() {
            break;
        }
        driver.check();
    }
    Depth {
        view_max: driver.view_max,
        commit_max: driver.commit_min_seen,
        ..Depth::default()
    }
}

/// A small cluster through view changes with the fuzzer choosing crashes (some tearing the
/// writes in flight), restarts, partitions, message drops, disk faults (within the atlas) and
/// ticks; every oracle on. The events get `VIEW_CHANGE_EVENT_TICKS` in all; then the cluster
/// is healed and runs until it is at rest. Panics on any violation.
pub fn view_change(data: &[u8]) -> Depth {
    view_change_with(data, Budget::Short)
}

/// `view_change` with the given budget (`Unbounded` for inputs kept before the budgets).
pub fn view_change_with(data: &[u8], budget: Budget) -> Depth {
    let short = budget == Budget::Short;
    let event_ticks = if short {
        budget::VIEW_CHANGE_EVENT_TICKS
    } else {
        u64::MAX
    };
    let mut u = Unstructured::new(data);
    let replicas = u.int_in_range(3..=5).unwrap_or(3);
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    // A quarter of the inputs run two groups per node (from the seed's top two bits: inputs
    // kept from before groups existed mostly keep their runs; two groups cost twice as much).
    let groups = 1 + (seed >> 62 == 3) as u8;
    let mut s = Scenario::configured(seed, replicas, 2, |o| {
        o.group_count = groups;
        if short {
            o.journal_slot_count = o.journal_slot_count.min(budget::VIEW_CHANGE_RING_MAX);
        }
    });
    s.sim.options.request_probability = 0.3;
    let mut events = 0;
    while !u.is_empty() && events < 200 && s.sim.tick < event_ticks {
        events += 1;
        let Ok(choice) = u.int_in_range(0u8..=9) else {
            break;
        };
        let r = u.int_in_range(0..=replicas - 1).unwrap_or(0);
        let ticks = u
            .int_in_range(1u64..=400)
            .unwrap_or(50)
            .min(event_ticks - s.sim.tick);
        match choice {
            0 if s.sim.cluster.is_up(r) => s.crash(r),
            1 if !s.sim.cluster.is_up(r) => s.restart(r),
            2 => {
                let others: Vec<u8> = (0..replicas).filter(|&x| x != r).collect();
                s.partition(&[&[r], &others]);
            }
            3 => s.heal(),
            4 => s.drop_command(pick_command(&mut u)),
            5 => s.clear_drops(),
            6 => {
                s.sim.inject_storage_fault(r);
            }
            7 if s.sim.cluster.is_up(r) => {
                s.crash_tearing(r);
            }
            8 => misroute(&mut s, &mut u, r),
            _ => {}
        }
        if let Err(violation) = s.run(ticks) {
            panic!("view_change fuzz: {violation}");
        }
    }
    // Heal and restart everything, and let the clients finish what they sent: the cluster
    // must come to rest, and stay safe doing so. Once at rest only heartbeats would follow.
    // Abandoned logs are still in some journals now; at rest they are gone.
    let versions_max = depth::versions_max(&s.sim);
    s.clear_drops();
    s.heal();
    for r in 0..replicas {
        if !s.sim.cluster.is_up(r) {
            s.restart(r);
        }
    }
    let settled = if short {
        s.stop_clients();
        run_to_quiescence(&mut s, budget::VIEW_CHANGE_SETTLE_TICKS_MAX).map(|_| ())
    } else {
        s.run(3_000)
    };
    if let Err(violation) = settled {
        panic!("view_change fuzz: {violation}");
    }
    let depth = Depth::of(&s.sim);
    Depth {
        versions_max: depth.versions_max.max(versions_max),
        ..depth
    }
}

/// Messages of the wrong group at node `r`: a vote re-sealed for a namespace no node hosts
/// (the node must drop it, counted), and, with two groups, a message of one group handed by a
/// "router bug" straight to the other group's replica (it must drop it, counted, and send
/// nothing).
fn misroute(s: &mut Scenario, u: &mut Unstructured, r: u8) {
    let replicas = s.sim.options.replica_count;
    let groups = s.sim.options.group_count as u64;
    let from = (r + 1) % replicas;
    let namespace = groups + u.int_in_range(0u64..=5).unwrap_or(0);
    let vote = |namespace: u64, view: u32| {
        let header = Header::new(CLUSTER, view, from, Command::StartViewChange);
        Message::new(header.in_namespace(namespace), Bytes::new())
    };
    let view = s.sim.cluster.view_max() + 1;
    s.inject(from as usize, r as usize, &vote(namespace, view));
    if groups < 2 {
        return;
    }
    let Some(replica) = s.sim.cluster.replica_in_mut(r, 1) else {
        return;
    };
    let before = replica.stats().messages_dropped_namespace;
    let (view, op) = (replica.view(), replica.op());
    replica.on_message(Peer::Replica(from), vote(0, view + 1));
    assert_eq!(
        replica.drain_outbox().count(),
        0,
        "a misrouted message sent something"
    );
    assert_eq!(replica.stats().messages_dropped_namespace, before + 1);
    assert_eq!((replica.view(), replica.op()), (view, op));
}

fn pick_command(u: &mut Unstructured) -> &'static str {
    const NAMES: [&str; 10] = [
        "prepare",
        "prepare_ok",
        "commit",
        "start_view_change",
        "do_view_change",
        "start_view",
        "headers",
        "request_start_view",
        "request_sync_checkpoint",
        "sync_checkpoint",
    ];
    NAMES[u.int_in_range(0..=NAMES.len() - 1).unwrap_or(0)]
}

/// A short simulation with fuzzer-chosen options; it must never end in `correctness`.
pub fn scenario(data: &[u8]) -> Depth {
    scenario_with(data, Budget::Short)
}

/// `scenario` with the given budget (`Unbounded` for inputs kept before the budgets).
pub fn scenario_with(data: &[u8], budget: Budget) -> Depth {
    let Some((seed, options)) = scenario_options_with(data, budget) else {
        return Depth::default();
    };
    let config = RunConfig {
        skip_linearizability: false,
        ..RunConfig::default()
    };
    let summary = run::run(seed, options, config);
    if summary.outcome == Outcome::Correctness {
        let v = summary.violation.expect("correctness has a violation");
        panic!(
            "scenario fuzz seed {seed}: {} at tick {}: {}",
            v.invariant, v.tick, v.message
        );
    }
    Depth {
        view_max: summary.view_max,
        commit_max: summary.ops_committed,
        ticks: summary.ticks,
        repairs: summary.repairs,
        checkpoints: summary.checkpoints,
        state_syncs: summary.state_syncs,
        crashes: summary.crashes,
        restarts: summary.restarts,
        storage_faults: summary.storage_faults,
        // Needs the simulation, which the run consumed.
        versions_max: 0,
        groups: summary.groups,
        misrouted: summary.messages_dropped_namespace,
        trace_hash: u64::from_str_radix(&summary.trace_hash, 16).unwrap_or(0),
    }
}

/// The seed and options a `scenario` input stands for (to replay a finding with vopr).
pub fn scenario_options(data: &[u8]) -> Option<(u64, Options)> {
    scenario_options_with(data, Budget::Short)
}

/// The seed and options a `scenario` input stands for under `budget`.
pub fn scenario_options_with(data: &[u8], budget: Budget) -> Option<(u64, Options)> {
    let mut u = Unstructured::new(data);
    let seed = u.arbitrary::<u64>().ok()?;
    let options = fuzz_options(&mut u, seed, budget).ok()?;
    Some((seed, options))
}

fn fuzz_options(u: &mut Unstructured, seed: u64, budget: Budget) -> arbitrary::Result<Options> {
    let short = budget == Budget::Short;
    let mut o = Options::from_seed(seed);
    o.replica_count = u.int_in_range(1..=6)?;
    o.client_count = u.int_in_range(1..=4)?;
    // Short runs (budget.rs): a safety phase of a few view-change timeouts, and a liveness
    // phase cut short, since this target reports only correctness (a core that has not
    // converged by then is not worth 20,000 more ticks of safety checks).
    if short {
        o.ticks_safety = u.int_in_range(budget::SCENARIO_SAFETY_TICKS)?;
        o.ticks_liveness_max = budget::SCENARIO_LIVENESS_TICKS_MAX;
    } else {
        o.ticks_safety = u.int_in_range(500..=4_000)?;
        o.ticks_liveness_max = 20_000;
    }
    let n = &mut o.network;
    n.one_way_delay_min_ticks = u.int_in_range(0..=5)?;
    n.one_way_delay_mean_ticks = n.one_way_delay_min_ticks + u.int_in_range(0..=30)?;
    n.packet_loss_probability = u.int_in_range(0..=50)? as f64 / 100.0;
    n.packet_replay_probability = u.int_in_range(0..=60)? as f64 / 100.0;
    n.path_capacity_max = u.int_in_range(1..=64)?;
    n.path_clog_probability = u.int_in_range(0..=50)? as f64 / 10_000.0;
    n.partition_mode = *u.choose(&[
        PartitionMode::None,
        PartitionMode::IsolateOne,
        PartitionMode::UniformSize,
        PartitionMode::UniformPartition,
    ])?;
    n.partition_symmetry =
        *u.choose(&[PartitionSymmetry::Symmetric, PartitionSymmetry::Asymmetric])?;
    n.partition_probability = u.int_in_range(0..=100)? as f64 / 10_000.0;
    n.unpartition_probability = u.int_in_range(1..=100)? as f64 / 10_000.0;
    // Every fault knob comes from the input, not the swarm, so a saved input keeps meaning
    // the same run when the swarm's derivation changes.
    o.storage_fault_probability = u.int_in_range(0..=100)? as f64 / 10_000.0;
    o.torn_write_probability = u.int_in_range(0..=100)? as f64 / 100.0;
    o.clients_max = u.int_in_range(1..=32)?;
    o.crash_probability = u.int_in_range(0..=100)? as f64 / 100_000.0;
    o.restart_delay_mean_ticks = u.int_in_range(1..=2_000)?;
    o.crash_stability_ticks = u.int_in_range(0..=1_000)?;
    o.request_probability = u.int_in_range(1..=100)? as f64 / 100.0;
    o.key_count = u.int_in_range(1..=4)?;
    // 32, 64 or 128 slots when short (up to 1024 unbounded): a replica's in-memory index has
    // a slot per entry, and opening six of 1024 slots cost half a millisecond; a small ring
    // also wraps and checkpoints sooner.
    o.journal_slot_count = 32 << u.int_in_range(0..=if short { 2 } else { 5 })?;
    o.write_latency_max_ticks = u.int_in_range(0..=12)?;
    // Groups per node, drawn last (an input that ends before it runs one group): two in a
    // quarter of the inputs, since every group multiplies the cost of an execution.
    o.group_count = if u.ratio(1u8, 4)? { 2 } else { 1 };
    Ok(o)
}

/// Drives one replica with generated messages, tracking what must never go backwards.
struct ReplicaDriver {
    replica: Replica<MemoryStorage, KvMachine>,
    ctx: DecodeContext,
    /// A chain of plausible prepares (as a primary would make) to feed in any order.
    chain: Vec<Message>,
    view_max: u32,
    commit_min_seen: u64,
}

impl ReplicaDriver {
    fn new(u: &mut Unstructured) -> arbitrary::Result<ReplicaDriver> {
        let replica_count = u.int_in_range(2..=6)?;
        let index = u.int_in_range(0..=replica_count - 1)?;
        let config = consensus::Config::new(CLUSTER, replica_count, index);
        let mut storage = MemoryStorage::new();
        Replica::<MemoryStorage, KvMachine>::format(&config, &mut storage);
        let replica = Replica::open(config, storage, KvMachine::new()).expect("fresh storage");
        let root = consensus::replica::root_prepare(CLUSTER);
        Ok(ReplicaDriver {
            replica,
            ctx: DecodeContext {
                cluster: CLUSTER,
                replica_count,
            },
            chain: vec![root],
            view_max: 0,
            commit_min_seen: 0,
        })
    }

    fn step(&mut self, u: &mut Unstructured) -> arbitrary::Result<()> {
        let count = self.ctx.replica_count;
        let me = self.replica.replica();
        let from = (me + u.int_in_range(1..=count - 1)?) % count;
        match u.int_in_range(0u8..=12)? {
            0 | 1 => {
                // Time passes: the disk completes what was submitted (in between, messages
                // arrive while writes are in flight).
                self.replica
                    .on_storage_done(self.replica.writes_submitted());
                for _ in 0..u.int_in_range(1..=50)? {
                    self.replica.on_tick();
                }
            }
            2 => self.extend_chain(u)?,
            3 | 4 => {
                let i = u.int_in_range(0..=self.chain.len() - 1)?;
                let prepare = self.chain[i].clone();
                self.deliver(Peer::Replica(from), prepare);
            }
            5 => {
                let client = u.int_in_range(1u128..=4)?;
                let request = self.request(u, client)?;
                self.deliver(Peer::Client(client), request);
            }
            6 => {
                // Garbage must be rejected by the decoder, never reach the replica.
                let bytes: Vec<u8> = u.arbitrary()?;
                if let Ok(m) = decode(&bytes, &self.ctx) {
                    self.deliver(Peer::Replica(from), m);
                }
            }
            12 => {
                // Another consensus group's message (a routing bug, valid checksums): dropped
                // and counted, never acted on.
                let message = self.replica_message(u, from)?;
                let namespace = u.int_in_range(1u64..=3)?;
                let header = message.header.in_namespace(namespace);
                let misrouted = Message::new(header, message.body.clone());
                let before = (self.replica.describe(), self.replica.stats());
                self.deliver(Peer::Replica(from), misrouted);
                let after = self.replica.stats();
                assert_eq!(
                    after.messages_dropped_namespace,
                    before.1.messages_dropped_namespace + 1
                );
                assert_eq!(
                    self.replica.describe(),
                    before.0,
                    "a misrouted message changed state"
                );
            }
            _ => {
                let message = self.replica_message(u, from)?;
                self.deliver(Peer::Replica(from), message);
            }
        }
        Ok(())
    }

    fn deliver(&mut self, from: Peer, message: Message) {
        // Through the wire, as a host would.
        let bytes = message.encode();
        if let Ok(m) = decode(&bytes, &self.ctx) {
            self.replica.on_message(from, m);
        }
        let _ = self.replica.drain_outbox().count();
    }

    fn check(&mut self) {
        let r = &self.replica;
        assert!(r.view() >= self.view_max, "view went back");
        assert!(r.log_view() <= r.view());
        assert!(r.commit_min() <= r.commit_max());
        assert!(
            r.commit_min() >= self.commit_min_seen,
            "commit_min went back"
        );
        self.view_max = r.view();
        self.commit_min_seen = r.commit_min();
    }

    fn extend_chain(&mut self, u: &mut Unstructured) -> arbitrary::Result<()> {
        let parent = self.chain.last().expect("root").header;
        let op = parent.prepare().op + 1;
        if op > 200 {
            return Ok(());
        }
        let view = u.int_in_range(0..=4)?;
        let commit = op - 1 - u.int_in_range(0..=(op - 1).min(8))?;
        let register = u.ratio(1, 4)?;
        let p = Prepare {
            parent: parent.checksum,
            client: u.int_in_range(1u128..=4)?,
            request_checksum: u.arbitrary()?,
            op,
            commit,
            timestamp: parent.prepare().timestamp + 1,
            session: if register { 0 } else { u.int_in_range(1..=op)? },
            request: if register { 0 } else { u.int_in_range(1..=5)? },
            operation: if register {
                Operation::Register
            } else {
                Operation::StateMachine
            },
        };
        let primary = (view % self.ctx.replica_count as u32) as u8;
        let body = if register {
            Bytes::new()
        } else {
            kv_op(u)?.encode()
        };
        let header = Header::new(CLUSTER, view, primary, Command::Prepare(p));
        self.chain.push(Message::new(header, body));
        Ok(())
    }

    fn request(&self, u: &mut Unstructured, client: u128) -> arbitrary::Result<Message> {
        let register = u.ratio(1, 3)?;
        let r = Request {
            client,
            session: if register { 0 } else { u.int_in_range(1..=20)? },
            request: if register { 0 } else { u.int_in_range(1..=5)? },
            operation: if register {
                Operation::Register
            } else {
                Operation::StateMachine
            },
        };
        let body = if register {
            Bytes::new()
        } else {
            kv_op(u)?.encode()
        };
        Ok(Message::new(
            Header::new(CLUSTER, 0, 0, Command::Request(r)),
            body,
        ))
    }

    /// A replica-to-replica message with small, relevant field values and chain headers.
    fn replica_message(&self, u: &mut Unstructured, from: u8) -> arbitrary::Result<Message> {
        let view = u.int_in_range(0..=6)?;
        let top = self.chain.len() as u64 - 1;
        let op = u.int_in_range(0..=top)?;
        let commit = u.int_in_range(0..=op)?;
        let headers = |n: u64| -> Vec<Header> {
            (0..n.min(op + 1).min(HEADERS_MAX as u64))
                .map(|i| self.chain[(op - i) as usize].header)
                .collect()
        };
        let checksum_at = |op: u64| self.chain[op as usize].header.checksum;
        let (command, body) = match u.int_in_range(0u8..=12)? {
            0 => (Command::StartViewChange, Bytes::new()),
            1 if view > 0 => {
                let hs = headers(u.int_in_range(1..=12)?);
                let bits = if hs.len() >= 128 {
                    u128::MAX
                } else {
                    (1u128 << hs.len()) - 1
                };
                let dvc = DoViewChange {
                    present_bitset: u.arbitrary::<u128>()? & bits,
                    op,
                    commit_min: commit,
                    log_view: u.int_in_range(0..=view - 1)?,
                    view_head: if u.arbitrary()? {
                        VIEW_HEAD_UNKNOWN
                    } else {
                        u.int_in_range(0..=op)?
                    },
                    unknown_max: 0,
                    unknown_bitset: 0,
                };
                let dvc = with_unknown_ops(u, dvc)?;
                (Command::DoViewChange(dvc), encode_header_list(&hs))
            }
            2 => {
                let sv = StartView {
                    nonce: 0,
                    op,
                    commit,
                };
                (
                    Command::StartView(sv),
                    encode_header_list(&headers(u.int_in_range(1..=12)?)),
                )
            }
            3 => (
                Command::Commit(Commit {
                    commit_checksum: checksum_at(commit),
                    commit,
                    timestamp_monotonic: u.int_in_range(0..=10_000)?,
                    checkpoint_op: u.int_in_range(0..=commit)?,
                }),
                Bytes::new(),
            ),
            4 if op > 0 => (
                Command::PrepareOk(PrepareOk {
                    prepare_checksum: checksum_at(op),
                    op,
                    prepare_view: u.int_in_range(0..=view)?,
                }),
                Bytes::new(),
            ),
            5 => (
                Command::RequestHeaders(RequestHeaders {
                    op_min: commit,
                    op_max: op.min(commit + HEADERS_MAX as u64 - 1),
                }),
                Bytes::new(),
            ),
            6 => (
                Command::RequestPrepare(RequestPrepare {
                    prepare_checksum: checksum_at(op),
                    prepare_op: op,
                }),
                Bytes::new(),
            ),
            7 => (
                Command::Headers,
                encode_header_list(&headers(u.int_in_range(1..=12)?)),
            ),
            8 => (
                Command::RequestStartView(RequestStartView { nonce: 1 }),
                Bytes::new(),
            ),
            9 => (
                Command::Ping(Ping {
                    timestamp_monotonic: 1,
                    checkpoint_op: commit,
                }),
                Bytes::new(),
            ),
            10 => (
                Command::Pong(Ping {
                    timestamp_monotonic: 1,
                    checkpoint_op: commit,
                }),
                Bytes::new(),
            ),
            11 if commit > 0 => (
                Command::RequestSyncCheckpoint(RequestSyncCheckpoint {
                    checkpoint_op_min: commit,
                    offset: u.int_in_range(0..=300)?,
                    checkpoint_checksum: 0,
                }),
                Bytes::new(),
            ),
            _ if commit > 0 => {
                // A well-formed checkpoint of a chain op with an empty state (a peer's claim;
                // the replica must never panic on it, whatever its own state).
                let header = self.chain[commit as usize].header;
                let checkpoint = Checkpoint::new(&header, &[], &[]);
                let sync = SyncCheckpoint {
                    checkpoint_checksum: checkpoint.checksum,
                    checkpoint_op: commit,
                    size: checkpoint.blob.len() as u64,
                    offset: 0,
                };
                (Command::SyncCheckpoint(sync), checkpoint.blob)
            }
            _ => (Command::StartViewChange, Bytes::new()),
        };
        Ok(Message::new(
            Header::new(CLUSTER, view, from, command),
            body,
        ))
    }
}

fn kv_op(u: &mut Unstructured) -> arbitrary::Result<KvOp> {
    let key = format!("k{}", u.int_in_range(0..=3)?);
    let value = format!("{}", u.int_in_range(0..=99)?);
    Ok(match u.int_in_range(0..=3)? {
        0 => KvOp::Get { key },
        1 => KvOp::Put { key, value },
        2 => KvOp::Append { key, value },
        _ => KvOp::Cas {
            key,
            expected: value.clone(),
            value,
        },
    })
}

/// Sometimes names a few ops above `dvc.commit_min` (up to a little past its op) as ops the
/// sender may have acknowledged without knowing their header.
fn with_unknown_ops(
    u: &mut Unstructured,
    mut dvc: DoViewChange,
) -> arbitrary::Result<DoViewChange> {
    if u.arbitrary::<bool>()? {
        let mut ops = Vec::new();
        let lowest = (dvc.commit_min + 1).max((dvc.op + 2).saturating_sub(100));
        for op in lowest..=dvc.op + 2 {
            if u.ratio(1u8, 4)? {
                ops.push(op);
            }
        }
        let (max, bits) = DoViewChange::encode_unknown(&ops).expect("a narrow span");
        dvc.unknown_max = max;
        dvc.unknown_bitset = bits;
    }
    Ok(dvc)
}
