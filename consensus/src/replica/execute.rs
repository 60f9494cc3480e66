//! Executing committed ops in op order, the client table, and replies.

use super::*;
use crate::client_table::ClientSession;
use crate::wire::{Operation, Reply};

impl<S: Storage, M: StateMachine> Replica<S, M> {
    /// Executes every op up to commit_max that this replica can prove belongs to the committed
    /// chain: connected by hash chain from a trusted head and durable here (N6, N7).
    pub(super) fn commit_journal(&mut self) {
        if self.commit_min >= self.commit_max {
            return;
        }
        if self.chain_floor() > self.commit_min {
            return self.commit_view_log();
        }
        while self.commit_min < self.commit_max.min(self.op) {
            let op = self.commit_min + 1;
            let Some(prepare) = self.journal.prepare(&self.storage, &self.ctx, op) else {
                break;
            };
            self.execute(prepare);
        }
    }

    /// A backup whose head chain is broken by a gap still executes the committed ops it
    /// holds from this view's log, each linking to the executed op below it (N7).
    fn commit_view_log(&mut self) {
        if self.status != Status::Normal || self.is_primary() || self.log_view != self.view {
            return;
        }
        while self.commit_min < self.commit_max.min(self.op) {
            let op = self.commit_min + 1;
            let Some(&checksum) = self.view_log.get(&op) else {
                break;
            };
            let links = self.journal.header(op).is_some_and(|h| {
                h.checksum == checksum
                    && Some(h.prepare().parent) == self.journal.checksum(self.commit_min)
            });
            if !links || !self.journal.is_present(op) {
                break;
            }
            let Some(prepare) = self.journal.prepare(&self.storage, &self.ctx, op) else {
                break;
            };
            self.execute(prepare);
        }
    }

    /// Records that `header` belongs to the log of this replica's log_view (see `view_log`).
    pub(super) fn note_view_log(&mut self, header: &Header) {
        let op = header.prepare().op;
        if op <= self.commit_min {
            return;
        }
        let known = self.view_log.insert(op, header.checksum);
        // One view, one log (V3): its primary never names two prepares at one op.
        assert!(
            known.is_none_or(|c| c == header.checksum),
            "two headers of the view's log at op {op}"
        );
    }

    fn execute(&mut self, prepare: Message) {
        let header = prepare.header;
        let p = *header.prepare();
        assert_eq!(
            p.op,
            self.commit_min + 1,
            "execution is strictly sequential (N6)"
        );
        let parent = self
            .journal
            .checksum(self.commit_min)
            .expect("executed op header");
        assert_eq!(
            p.parent, parent,
            "op {} does not chain to the executed op",
            p.op
        );
        // Paired with the drop in `on_message`: nothing of another group reaches the log.
        assert_eq!(
            header.namespace, self.config.namespace,
            "op {} executed from another consensus group's prepare",
            p.op
        );
        let reply = match p.operation {
            Operation::Root => unreachable!("op 0 is never executed"),
            Operation::Register => self.execute_register(&prepare),
            Operation::StateMachine => self.execute_request(&prepare),
        };
        self.commit_min = p.op;
        self.view_log.remove(&p.op);
        if let Some(reply) = reply {
            if self.is_primary() {
                self.reply_to(p.client, reply);
            }
        }
        self.maybe_checkpoint();
    }

    fn execute_register(&mut self, prepare: &Message) -> Option<Message> {
        let p = prepare.header.prepare();
        let reply = self.make_reply(prepare, p.op, bytes::Bytes::new());
        let session = ClientSession {
            session: p.op,
            request: 0,
            request_checksum: p.request_checksum,
            reply: reply.clone(),
        };
        self.client_table.register(p.client, session);
        Some(reply)
    }

    fn execute_request(&mut self, prepare: &Message) -> Option<Message> {
        let p = prepare.header.prepare();
        match self.client_table.get(p.client) {
            Some(s) if s.session == p.session && p.request == s.request + 1 => {}
            Some(s) if s.session == p.session => {
                // A repeated or out-of-order request: executing it would break at-most-once.
                // Every replica skips it identically; the simulator's oracle reports it.
                self.stats.requests_skipped += 1;
                return None;
            }
            // Evicted between prepare and commit: every replica skips it identically, and the
            // client learns of the eviction when it retries.
            _ => return None,
        }
        let output = self.state_machine.execute(p.op, p.timestamp, &prepare.body);
        let reply = self.make_reply(prepare, p.session, output);
        self.client_table
            .commit_request(p.client, p.request, p.request_checksum, reply.clone());
        Some(reply)
    }

    /// Replies are built from the prepare alone, so every replica caches the same bytes.
    fn make_reply(&self, prepare: &Message, session: u64, body: bytes::Bytes) -> Message {
        let p = prepare.header.prepare();
        let reply = Reply {
            request_checksum: p.request_checksum,
            client: p.client,
            op: p.op,
            commit: p.op,
            timestamp: p.timestamp,
            session,
            request: p.request,
            operation: p.operation,
        };
        let header = Header::new(
            self.config.cluster,
            prepare.header.view,
            prepare.header.replica,
            Command::Reply(reply),
        )
        .in_namespace(self.config.namespace);
        Message::new(header, body)
    }

    /// The lowest op reached walking down from the head while each header links to the one
    /// below it. The log is proven from the head down to the returned op.
    pub(super) fn chain_floor(&self) -> u64 {
        let mut op = self.op;
        let mut checksum_expected = match self.journal.header(op) {
            Some(h) => h.prepare().parent,
            None => return op + 1,
        };
        while op > self.commit_min {
            match self.journal.header(op - 1) {
                Some(h) if h.checksum == checksum_expected => {
                    checksum_expected = h.prepare().parent;
                    op -= 1;
                }
                _ => break,
            }
        }
        op
    }

    /// Highest op this backup may acknowledge, if its log is proven from the head down to
    /// commit_min: the prepares of every op up to it are durable.
    pub(super) fn ackable_through(&self) -> Option<u64> {
        if self.chain_floor() > self.commit_min {
            return None;
        }
        let mut through = self.commit_min;
        while through < self.op && self.journal.is_present(through + 1) {
            through += 1;
        }
        Some(through)
    }
}
