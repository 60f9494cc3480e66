//! Client sessions: the replicated table that makes execution at-most-once.
//!
//! Updated only when an op executes, identically on every replica (C1). Bounded: registering a
//! client when full evicts the oldest session (lowest session number), deterministically (C5).

use crate::wire::Message;
use std::collections::BTreeMap;

/// One client's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSession {
    /// The op that committed the client's register.
    pub session: u64,
    /// The last executed request number (0 after register).
    pub request: u32,
    /// Checksum of the request that `request` executed, to tell a duplicate from a collision.
    pub request_checksum: u128,
    /// The reply to `request`, re-sent for duplicates without executing again.
    pub reply: Message,
}

/// The bounded table of sessions.
#[derive(Debug, Clone)]
pub struct ClientTable {
    sessions: BTreeMap<u128, ClientSession>,
    clients_max: usize,
    evictions: u64,
}

impl ClientTable {
    pub fn new(clients_max: usize) -> ClientTable {
        assert!(clients_max > 0);
        ClientTable {
            sessions: BTreeMap::new(),
            clients_max,
            evictions: 0,
        }
    }

    pub fn get(&self, client: u128) -> Option<&ClientSession> {
        self.sessions.get(&client)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// How many sessions were evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Creates a session for `client`, evicting the oldest session if the table is full.
    /// Returns the evicted client, if any.
    pub fn register(&mut self, client: u128, session: ClientSession) -> Option<u128> {
        assert_eq!(session.request, 0);
        let mut evicted = None;
        if !self.sessions.contains_key(&client) && self.sessions.len() == self.clients_max {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(&c, s)| (s.session, c))
                .map(|(&c, _)| c)
                .expect("table is full, so not empty");
            self.sessions.remove(&oldest);
            self.evictions += 1;
            evicted = Some(oldest);
        }
        self.sessions.insert(client, session);
        assert!(self.sessions.len() <= self.clients_max);
        evicted
    }

    /// Records the execution of the next request of an existing session.
    pub fn commit_request(&mut self, client: u128, request: u32, checksum: u128, reply: Message) {
        let entry = self.sessions.get_mut(&client).expect("session exists");
        // At-most-once: a request executes only as the successor of the last one.
        assert_eq!(
            request,
            entry.request + 1,
            "client {client:#x} request {request} executed after {}",
            entry.request
        );
        entry.request = request;
        entry.request_checksum = checksum;
        entry.reply = reply;
    }

    /// A digest of every session, for comparing replicas.
    pub fn digest(&self) -> u128 {
        let mut bytes = Vec::new();
        for (client, s) in &self.sessions {
            bytes.extend_from_slice(&client.to_le_bytes());
            bytes.extend_from_slice(&s.session.to_le_bytes());
            bytes.extend_from_slice(&s.request.to_le_bytes());
            bytes.extend_from_slice(&s.reply.header.checksum_body.to_le_bytes());
        }
        crate::wire::checksum(&bytes, 0x4354)
    }
}
