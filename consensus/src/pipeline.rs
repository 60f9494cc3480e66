//! The primary's pipeline: prepared ops awaiting a replication quorum, in op order, and the
//! bounded queue of requests waiting for room in it.

use crate::wire::Message;
use std::collections::VecDeque;

/// One prepared op and who has acknowledged it in this view.
#[derive(Debug, Clone)]
pub struct PipelineEntry {
    pub message: Message,
    /// Bit r set: replica r has the prepare durably (acks from this view only, N4).
    pub ok_from: u64,
    /// The primary's own copy is durable once this many writes are (its self-ack waits).
    pub durable_at: u64,
}

impl PipelineEntry {
    pub fn op(&self) -> u64 {
        self.message.header.prepare().op
    }

    pub fn ok_count(&self) -> u32 {
        self.ok_from.count_ones()
    }
}

/// Prepares in flight plus queued requests. Both bounded.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub prepares: VecDeque<PipelineEntry>,
    pub requests: VecDeque<Message>,
    prepares_max: usize,
    requests_max: usize,
}

impl Pipeline {
    pub fn new(prepares_max: usize, requests_max: usize) -> Pipeline {
        assert!(prepares_max > 0);
        Pipeline {
            prepares: VecDeque::with_capacity(prepares_max),
            requests: VecDeque::with_capacity(requests_max),
            prepares_max,
            requests_max,
        }
    }

    pub fn prepares_full(&self) -> bool {
        self.prepares.len() >= self.prepares_max
    }

    pub fn requests_full(&self) -> bool {
        self.requests.len() >= self.requests_max
    }

    pub fn push_prepare(&mut self, entry: PipelineEntry) {
        assert!(!self.prepares_full(), "pipeline over its limit");
        if let Some(last) = self.prepares.back() {
            assert_eq!(last.op() + 1, entry.op(), "pipeline ops must be contiguous");
        }
        self.prepares.push_back(entry);
    }

    pub fn push_request(&mut self, message: Message) {
        assert!(!self.requests_full(), "request queue over its limit");
        self.requests.push_back(message);
    }

    /// Whether a request from `client` is already preparing or queued (C3).
    pub fn has_client(&self, client: u128) -> bool {
        let preparing = self
            .prepares
            .iter()
            .any(|e| e.message.header.prepare().client == client);
        let queued = self.requests.iter().any(
            |m| matches!(m.header.command, crate::wire::Command::Request(r) if r.client == client),
        );
        preparing || queued
    }

    pub fn entry_mut(&mut self, op: u64) -> Option<&mut PipelineEntry> {
        let first = self.prepares.front()?.op();
        let index = op.checked_sub(first)? as usize;
        self.prepares.get_mut(index)
    }

    pub fn clear(&mut self) {
        self.prepares.clear();
        self.requests.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Command, Header, Operation, Request};

    fn request(client: u128, number: u32) -> Message {
        let command = Command::Request(Request {
            client,
            session: 1,
            request: number,
            operation: Operation::StateMachine,
        });
        Message::new(Header::new(7, 0, 0, command), bytes::Bytes::new())
    }

    /// One request per client in flight (C3) counts the queued requests too: a client whose
    /// request waits behind a full pipeline must not get a second one queued (or the same one
    /// twice, prepared twice later).
    #[test]
    fn a_queued_request_counts_as_in_flight() {
        let mut pipeline = Pipeline::new(1, 4);
        assert!(!pipeline.has_client(5));
        pipeline.push_request(request(5, 1));
        assert!(pipeline.has_client(5), "queued");
        assert!(!pipeline.has_client(6));
    }
}
