//! Client sessions: the replicated table that makes execution at-most-once.
//!
//! Updated only when an op executes, identically on every replica (C1). Bounded: registering a
//! client when full evicts the oldest session (lowest session number), deterministically (C5).

use crate::wire::{self, Command, DecodeContext, Message};
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

    /// Every session as bytes, for a checkpoint (client order, so equal tables give equal
    /// bytes).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for (client, s) in &self.sessions {
            b.extend_from_slice(&client.to_le_bytes());
            b.extend_from_slice(&s.session.to_le_bytes());
            b.extend_from_slice(&s.request.to_le_bytes());
            b.extend_from_slice(&s.request_checksum.to_le_bytes());
            let reply = s.reply.encode();
            b.extend_from_slice(&(reply.len() as u32).to_le_bytes());
            b.extend_from_slice(&reply);
        }
        b
    }

    /// Replaces every session with those of a snapshot. False (table unchanged) if the bytes
    /// are not a valid snapshot for this table's bound.
    pub fn restore(&mut self, mut b: &[u8], ctx: &DecodeContext) -> bool {
        let mut sessions = BTreeMap::new();
        while !b.is_empty() {
            let Some((client, session)) = decode_session(&mut b, ctx) else {
                return false;
            };
            let ascending = sessions.last_key_value().is_none_or(|(&c, _)| c < client);
            if !ascending || sessions.len() == self.clients_max {
                return false;
            }
            sessions.insert(client, session);
        }
        self.sessions = sessions;
        true
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

fn decode_session(b: &mut &[u8], ctx: &DecodeContext) -> Option<(u128, ClientSession)> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    };
    let client = u128::from_le_bytes(take(16)?.try_into().ok()?);
    let session = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let request = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let request_checksum = u128::from_le_bytes(take(16)?.try_into().ok()?);
    let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let reply = wire::decode(take(len)?, ctx).ok()?;
    let is_reply = matches!(reply.header.command, Command::Reply(r) if r.client == client);
    let session = ClientSession {
        session,
        request,
        request_checksum,
        reply,
    };
    (client != 0 && is_reply).then_some((client, session))
}
