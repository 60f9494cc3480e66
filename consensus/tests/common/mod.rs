//! A small deterministic router for driving replicas in tests: one FIFO of packets, a filter
//! that can drop packets, and simple clients that track their replies.
#![allow(dead_code)]

use bytes::Bytes;
use consensus::wire::{self, Command, DecodeContext, Header, Message, Operation, Request};
use consensus::{Action, Config, KvMachine, KvOp, KvOutput, MemoryStorage, Peer, Replica};
use std::collections::{BTreeMap, VecDeque};

pub const CLUSTER: u128 = 0xC1;

pub type TestReplica = Replica<MemoryStorage, KvMachine>;

#[derive(Debug, Clone)]
pub enum Packet {
    ToReplica { from: Peer, to: u8, bytes: Bytes },
    ToClient { client: u128, bytes: Bytes },
}

/// Returns false to drop a packet (decoded message, source, destination replica or None).
pub type Filter = Box<dyn FnMut(&Message, Peer, Option<u8>) -> bool>;

pub struct Router {
    pub replicas: Vec<Option<TestReplica>>,
    pub storages: Vec<Option<MemoryStorage>>,
    pub queue: VecDeque<Packet>,
    pub ctx: DecodeContext,
    pub filter: Filter,
    pub replies: BTreeMap<u128, Vec<Message>>,
    pub ticks: u64,
    /// Writes are durable as soon as the replica is polled (else only on `complete_writes`).
    pub synchronous_disk: bool,
}

impl Router {
    pub fn new(replica_count: u8) -> Router {
        let mut replicas = Vec::new();
        for r in 0..replica_count {
            let config = Config::new(CLUSTER, replica_count, r);
            let mut storage = MemoryStorage::new();
            TestReplica::format(&config, &mut storage);
            replicas.push(Some(
                TestReplica::open(config, storage, KvMachine::new()).unwrap(),
            ));
        }
        Router {
            storages: (0..replica_count).map(|_| None).collect(),
            replicas,
            queue: VecDeque::new(),
            ctx: DecodeContext {
                cluster: CLUSTER,
                replica_count,
            },
            filter: Box::new(|_, _, _| true),
            replies: BTreeMap::new(),
            ticks: 0,
            synchronous_disk: true,
        }
    }

    pub fn replica(&self, r: u8) -> &TestReplica {
        self.replicas[r as usize].as_ref().expect("replica is up")
    }

    pub fn primary(&self) -> u8 {
        let r = self
            .replicas
            .iter()
            .flatten()
            .next()
            .expect("one replica up");
        r.config().primary_index(r.view())
    }

    pub fn crash(&mut self, r: u8) {
        let replica = self.replicas[r as usize].take().expect("up");
        self.storages[r as usize] = Some(replica.into_storage());
    }

    pub fn restart(&mut self, r: u8) {
        let storage = self.storages[r as usize].take().expect("crashed");
        let config = Config::new(CLUSTER, self.ctx.replica_count, r);
        self.replicas[r as usize] =
            Some(TestReplica::open(config, storage, KvMachine::new()).unwrap());
        self.collect(r);
    }

    /// Sends raw bytes from a client to a replica.
    pub fn send_bytes(&mut self, client: u128, to: u8, bytes: Bytes) {
        self.queue.push_back(Packet::ToReplica {
            from: Peer::Client(client),
            to,
            bytes,
        });
    }

    pub fn send_request(&mut self, to: u8, request: &Message) {
        let Command::Request(r) = request.header.command else {
            panic!("not a request")
        };
        self.send_bytes(r.client, to, request.encode());
    }

    fn collect(&mut self, r: u8) {
        let Some(replica) = self.replicas[r as usize].as_mut() else {
            return;
        };
        if self.synchronous_disk {
            // Every write is durable by the time the replica is polled (completing them may
            // commit, and so write, again).
            while replica.writes_submitted() > replica.writes_done() {
                replica.on_storage_done(replica.writes_submitted());
            }
        }
        let actions: Vec<Action> = replica.drain_outbox().collect();
        for action in actions {
            match action {
                Action::Send { to, message } => self.queue.push_back(Packet::ToReplica {
                    from: Peer::Replica(r),
                    to,
                    bytes: message.encode(),
                }),
                Action::Reply { client, message } => self.queue.push_back(Packet::ToClient {
                    client,
                    bytes: message.encode(),
                }),
            }
        }
    }

    /// The disk of replica `r` completes every write submitted so far.
    pub fn complete_writes(&mut self, r: u8) {
        let replica = self.replicas[r as usize].as_mut().expect("up");
        replica.on_storage_done(replica.writes_submitted());
        self.collect(r);
    }

    /// Delivers every queued packet (and those they cause) until the queue is empty or `max`.
    pub fn deliver_all(&mut self, max: usize) -> usize {
        let mut delivered = 0;
        while let Some(packet) = self.queue.pop_front() {
            delivered += 1;
            assert!(
                delivered <= max,
                "message storm: more than {max} deliveries"
            );
            self.deliver(packet);
        }
        delivered
    }

    fn deliver(&mut self, packet: Packet) {
        match packet {
            Packet::ToReplica { from, to, bytes } => {
                let Ok(message) = wire::decode(&bytes, &self.ctx) else {
                    return;
                };
                if !(self.filter)(&message, from, Some(to)) {
                    return;
                }
                if let Some(replica) = self.replicas[to as usize].as_mut() {
                    replica.on_message(from, message);
                    self.collect(to);
                }
            }
            Packet::ToClient { client, bytes } => {
                let message = wire::decode(&bytes, &self.ctx).expect("replicas encode validly");
                if !(self.filter)(&message, Peer::Client(client), None) {
                    return;
                }
                self.replies.entry(client).or_default().push(message);
            }
        }
    }

    pub fn tick(&mut self, n: u64) {
        for _ in 0..n {
            self.ticks += 1;
            for r in 0..self.replicas.len() as u8 {
                if let Some(replica) = self.replicas[r as usize].as_mut() {
                    replica.on_tick();
                }
                self.collect(r);
            }
            self.deliver_all(1_000_000);
        }
    }

    /// Runs ticks until `done` holds, failing after `max` ticks.
    pub fn run_until(&mut self, max: u64, mut done: impl FnMut(&Router) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.tick(1);
        }
        assert!(done(self), "condition not reached in {max} ticks");
    }

    /// Whether `client` was ever told it has no session.
    pub fn was_evicted(&self, client: u128) -> bool {
        self.replies.get(&client).is_some_and(|replies| {
            replies
                .iter()
                .any(|m| matches!(m.header.command, Command::Eviction(_)))
        })
    }

    pub fn last_reply(&self, client: u128) -> Option<&Message> {
        self.replies.get(&client).and_then(|v| v.last())
    }
}

pub fn request(client: u128, session: u64, request: u32, op: Option<&KvOp>) -> Message {
    let operation = if op.is_some() {
        Operation::StateMachine
    } else {
        Operation::Register
    };
    let command = Command::Request(Request {
        client,
        session,
        request,
        operation,
    });
    let body = op.map(|o| o.encode()).unwrap_or_default();
    Message::new(Header::new(CLUSTER, 0, 0, command), body)
}

pub fn reply_output(reply: &Message) -> KvOutput {
    KvOutput::decode(&reply.body).expect("kv output")
}

/// Registers `client` through `primary` and returns its session.
pub fn register(router: &mut Router, client: u128) -> u64 {
    let primary = router.primary();
    router.send_request(primary, &request(client, 0, 0, None));
    router.run_until(2_000, |r| r.last_reply(client).is_some());
    match router.last_reply(client).unwrap().header.command {
        Command::Reply(reply) => reply.session,
        other => panic!("expected a reply, got {other:?}"),
    }
}
