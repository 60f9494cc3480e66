//! Clients: each holds a session, keeps one request in flight, resends it (same request
//! number) on timeout to the next replica, and records what it saw in the history.

use crate::prng::Prng;
use consensus::wire::{Command, Header, Message, Operation, Request};
use consensus::{KvOp, KvOutput};

const CLIENT_ID_BASE: u128 = 0xC11E_0000_0000;

/// Client ids on the wire: distinct from zero and from each other. An evicted client comes
/// back as a new incarnation with a new id (as a TigerBeetle client would), so no stale reply
/// or eviction addressed to its old session can be mistaken for one to the new.
pub fn client_id(index: u8, incarnation: u32) -> u128 {
    CLIENT_ID_BASE + ((incarnation as u128) << 8) + index as u128
}

/// The client index a client id belongs to, if it is one of ours.
pub fn client_index(id: u128) -> Option<u8> {
    let offset = id.checked_sub(CLIENT_ID_BASE)?;
    (offset >> 8 <= u32::MAX as u128).then_some((offset & 0xFF) as u8)
}

/// One completed or pending operation, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    pub client: u8,
    pub op: KvOp,
    /// None while pending (or forever, if no reply came).
    pub output: Option<KvOutput>,
    pub call: u64,
    pub ret: Option<u64>,
}

/// The request a client is waiting on.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub message: Message,
    pub request: u32,
    /// Index into the history (None for register).
    pub history: Option<usize>,
    pub call_tick: u64,
    pub resend_tick: u64,
    pub attempts: u32,
}

/// What a client wants the world to do.
#[derive(Debug, Clone)]
pub enum ClientAction {
    Send { to: u8, message: Message },
}

/// One client session: client process `process`'s session in group `group`. A process holds
/// one session per group (its requests to a group go through that group's session) and shares
/// one network endpoint among them.
pub struct Client {
    /// The session's index among all sessions (the history's and the trace's client number).
    pub index: u8,
    /// The client process (its network endpoint; its id on the wire).
    pub process: u8,
    /// The group this session belongs to (0: the metadata group).
    pub group: usize,
    pub id: u128,
    pub session: u64,
    pub request_next: u32,
    pub in_flight: Option<InFlight>,
    /// The replica to send to next (rotates on timeout).
    pub target: u8,
    pub idle: bool,
    /// The liveness phase: finish what is in flight, then issue `liveness_requests` more.
    pub draining: bool,
    /// New operations still to issue in the liveness phase (the healed cluster must serve
    /// new requests, not only finish old ones).
    pub liveness_requests: u32,
    pub requests_completed: u64,
    pub evictions: u64,
    pub incarnation: u32,
    /// The highest view a reply or eviction came from: requests carry it, so a replica still
    /// in an older view (a deposed primary) knows it is behind and does not answer.
    pub view: u32,
    /// The consensus group its requests go to (header namespace).
    pub namespace: u64,
}

impl Client {
    /// Session `index` of client process `process` (equal in a single-group run).
    pub fn new(index: u8, process: u8, replica_count: u8) -> Client {
        Client {
            index,
            process,
            group: 0,
            id: client_id(process, 0),
            session: 0,
            request_next: 0,
            in_flight: None,
            target: index % replica_count,
            idle: false,
            draining: false,
            liveness_requests: 0,
            requests_completed: 0,
            evictions: 0,
            incarnation: 0,
            view: 0,
            namespace: 0,
        }
    }

    /// The same client, a session of group `group`, which runs as `namespace`.
    pub fn in_namespace(mut self, namespace: u64, group: usize) -> Client {
        self.namespace = namespace;
        self.group = group;
        self
    }

    /// `3` in a single-group run; `3 (process 1, group 2)` otherwise.
    pub fn describe(&self) -> String {
        if self.index == self.process && self.group == 0 {
            return self.index.to_string();
        }
        format!(
            "{} (process {}, group {})",
            self.index, self.process, self.group
        )
    }

    fn request_message(&self, cluster: u128, request: u32, op: Option<&KvOp>) -> Message {
        let command = Command::Request(Request {
            client: self.id,
            session: self.session,
            request,
            operation: if op.is_some() {
                Operation::StateMachine
            } else {
                Operation::Register
            },
        });
        let body = op.map(|o| o.encode()).unwrap_or_default();
        let header = Header::new(cluster, self.view, 0, command).in_namespace(self.namespace);
        Message::new(header, body)
    }

    /// Registers, or issues the next operation (recording its call in the history).
    pub fn start_request(
        &mut self,
        cluster: u128,
        tick: u64,
        op: Option<KvOp>,
        history: &mut Vec<HistoryRecord>,
        timeout: u64,
    ) -> ClientAction {
        assert!(self.in_flight.is_none());
        let register = self.session == 0;
        let request = if register { 0 } else { self.request_next };
        let op = if register { None } else { op };
        let message = self.request_message(cluster, request, op.as_ref());
        let history_index = op.map(|op| {
            history.push(HistoryRecord {
                client: self.index,
                op,
                output: None,
                call: tick,
                ret: None,
            });
            history.len() - 1
        });
        self.in_flight = Some(InFlight {
            message: message.clone(),
            request,
            history: history_index,
            call_tick: tick,
            resend_tick: tick + timeout,
            attempts: 0,
        });
        ClientAction::Send {
            to: self.target,
            message,
        }
    }

    /// Resends the in-flight request to the next replica when its timeout expired.
    pub fn on_tick(&mut self, tick: u64, replica_count: u8, timeout: u64) -> Option<ClientAction> {
        let in_flight = self.in_flight.as_mut()?;
        if tick < in_flight.resend_tick {
            return None;
        }
        in_flight.attempts += 1;
        // No backoff: a request lost or sent to a backup should find the primary quickly.
        in_flight.resend_tick = tick + timeout;
        self.target = (self.target + 1) % replica_count;
        Some(ClientAction::Send {
            to: self.target,
            message: in_flight.message.clone(),
        })
    }

    /// A reply or eviction arrived. Returns the completed request, if it matched.
    pub fn on_message(
        &mut self,
        message: &Message,
        tick: u64,
        history: &mut [HistoryRecord],
    ) -> Option<ClientEvent> {
        if matches!(
            message.header.command,
            Command::Reply(_) | Command::Eviction(_)
        ) {
            self.view = self.view.max(message.header.view);
        }
        match message.header.command {
            Command::Reply(reply) => {
                if reply.client != self.id {
                    return None; // Addressed to an earlier incarnation.
                }
                let in_flight = self.in_flight.as_ref()?;
                if reply.request != in_flight.request
                    || reply.request_checksum != in_flight.message.header.checksum
                {
                    return None; // A late duplicate of an earlier reply.
                }
                let in_flight = self.in_flight.take().expect("checked");
                // The replica that prepared the op was the primary: send there next.
                self.target = message.header.replica;
                if reply.operation == Operation::Register {
                    self.session = reply.session;
                    self.request_next = 1;
                    return Some(ClientEvent::Registered);
                }
                self.request_next += 1;
                self.requests_completed += 1;
                let index = in_flight.history.expect("kv request has a history entry");
                let output = KvOutput::decode(&message.body);
                let record = &mut history[index];
                record.output = output.clone();
                record.ret = Some(tick);
                Some(ClientEvent::Completed {
                    request: in_flight.request,
                    op: reply.op,
                    call_tick: in_flight.call_tick,
                    history: index,
                    output,
                })
            }
            Command::Eviction(eviction) => {
                if eviction.client != self.id || self.session == 0 {
                    return None; // An earlier incarnation's, or we are registering.
                }
                // The session is gone: what was in flight stays pending forever (it may or may
                // not have executed), and the client comes back as a new incarnation.
                self.in_flight.take()?;
                self.session = 0;
                self.request_next = 0;
                self.evictions += 1;
                self.incarnation += 1;
                self.id = client_id(self.process, self.incarnation);
                Some(ClientEvent::Evicted)
            }
            _ => None,
        }
    }
}

/// What a client learned from a message.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    Registered,
    Completed {
        request: u32,
        op: u64,
        call_tick: u64,
        history: usize,
        output: Option<KvOutput>,
    },
    Evicted,
}

/// Draws the next operation on a small key space. A key belongs to one group: group 0's keys
/// are `k0, k1, ...`, group g's `p<g>.k0, ...` (so per-key histories never mix groups).
pub fn random_op(prng: &mut Prng, key_count: u32, client: u8, counter: u64, group: usize) -> KvOp {
    let n = prng.range_u64(0, key_count as u64 - 1);
    let key = match group {
        0 => format!("k{n}"),
        g => format!("p{g}.k{n}"),
    };
    // Values are unique per client and request so a read pins down which write it saw;
    // an append's starts with a comma, so a read value splits into its base and appends.
    let value = format!("{client}.{counter}");
    match prng.range_u64(0, 9) {
        0..=2 => KvOp::Get { key },
        3..=4 => KvOp::Put { key, value },
        5..=7 => KvOp::Append {
            key,
            value: format!(",{value}"),
        },
        _ => {
            let expected = format!("{client}.{}", counter.saturating_sub(prng.range_u64(1, 3)));
            KvOp::Cas {
                key,
                expected,
                value,
            }
        }
    }
}
