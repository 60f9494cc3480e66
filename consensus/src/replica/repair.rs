//! Journal repair: missing or stale headers are fetched and accepted only where they link into
//! the hash chain proven from the head (J1); missing prepares are fetched and accepted only if
//! they match a known header exactly, and never advance op (J2).

use super::*;
use crate::wire::{encode_header_list, RequestHeaders, RequestPrepare, HEADERS_MAX};

impl<S: Storage, M: StateMachine> Replica<S, M> {
    /// Runs on the repair timeout: asks peers for what the log lacks.
    pub(super) fn repair(&mut self) {
        if self.config.replica_count == 1 {
            return;
        }
        self.sync_tick();
        if self.status == Status::Recovering {
            return;
        }
        self.repair_head();
        self.repair_chain();
        self.repair_prepares();
        self.backup_send_prepare_oks(None);
        self.primary_try_start_view();
    }

    /// A backup that knows of commits beyond its head asks the primary for the headers.
    fn repair_head(&mut self) {
        if self.status != Status::Normal || self.is_primary() || self.commit_max <= self.op {
            return;
        }
        let op_max = self.commit_max;
        let op_min = (self.op + 1).max((op_max + 1).saturating_sub(HEADERS_MAX as u64));
        let primary = self.primary_index(self.view);
        self.send_request_headers(primary, op_min, op_max);
    }

    /// Asks for the headers just below the lowest proven op.
    fn repair_chain(&mut self) {
        let floor = self.chain_floor();
        if floor <= self.commit_min {
            return;
        }
        // The head chain breaks at floor - 1. It cannot break at an executed op: that would
        // mean the proven log forks from what this replica already executed.
        if floor - 1 == self.commit_min && self.journal.header(floor).is_some() {
            self.stats.forks_detected += 1;
            return;
        }
        let op_max = floor - 1;
        let op_min = (self.commit_min + 1).max(op_max.saturating_sub(HEADERS_MAX as u64 - 1));
        let peer = self.repair_peer(None);
        self.send_request_headers(peer, op_min, op_max);
    }

    fn repair_prepares(&mut self) {
        let mut requested = 0;
        let mut op = self.commit_min + 1;
        while op <= self.op && requested < self.config.repair_prepares_max {
            if let Some(h) = self.journal.header(op) {
                if !self.journal.is_present(op) {
                    let (checksum, prepare_op) = (h.checksum, op);
                    let peer = self.repair_peer(Some((prepare_op, checksum)));
                    let request = RequestPrepare {
                        prepare_checksum: checksum,
                        prepare_op,
                    };
                    self.send(peer, Command::RequestPrepare(request), bytes::Bytes::new());
                    requested += 1;
                }
            }
            op += 1;
        }
    }

    fn send_request_headers(&mut self, to: u8, op_min: u64, op_max: u64) {
        let request = RequestHeaders { op_min, op_max };
        self.send(to, Command::RequestHeaders(request), bytes::Bytes::new());
    }

    /// A peer to ask: half the time one that said it holds the prepare (from the view
    /// change), else any other replica at random. A holder may have lost its copy (a faulty
    /// prepare still counts as held, for safety), and some peers may be down, so no fixed
    /// order: every peer is asked sooner or later.
    fn repair_peer(&mut self, prepare: Option<(u64, u128)>) -> u8 {
        if let Some((op, checksum)) = prepare {
            let holders: Vec<u8> = self
                .dvc_from
                .iter()
                .filter(|(&r, _)| r != self.config.replica)
                .filter(|(_, rec)| {
                    rec.headers.iter().any(|(h, present)| {
                        *present && h.checksum == checksum && h.prepare().op == op
                    })
                })
                .map(|(&r, _)| r)
                .collect();
            if !holders.is_empty() && self.prng.below(2) == 0 {
                return holders[self.prng.below(holders.len() as u64) as usize];
            }
        }
        let others: Vec<u8> = self.other_replicas().collect();
        others[self.prng.below(others.len() as u64) as usize]
    }

    // ----- Serving peers -----

    pub(super) fn on_request_headers(&mut self, message: &Message) {
        let Command::RequestHeaders(r) = message.header.command else {
            unreachable!("dispatched on command");
        };
        if self.sync_required.is_some() {
            return;
        }
        let headers: Vec<Header> = self
            .journal
            .headers_desc(r.op_min, r.op_max)
            .copied()
            .collect();
        if headers.is_empty() {
            return;
        }
        let body = encode_header_list(&headers);
        self.send(message.header.replica, Command::Headers, body);
    }

    pub(super) fn on_request_prepare(&mut self, message: &Message) {
        let Command::RequestPrepare(r) = message.header.command else {
            unreachable!("dispatched on command");
        };
        if !self.journal.has_prepare(r.prepare_op, r.prepare_checksum) {
            return;
        }
        if let Some(prepare) = self.journal.prepare(&self.storage, &self.ctx, r.prepare_op) {
            assert_eq!(
                prepare.header.checksum, r.prepare_checksum,
                "serves what was asked"
            );
            self.send_message(message.header.replica, prepare);
        }
    }

    // ----- Accepting repairs -----

    pub(super) fn on_headers(&mut self, message: &Message) {
        if self.status == Status::Recovering {
            return;
        }
        let headers = message.body_headers(&self.ctx);
        let mut changed = false;
        for header in &headers {
            changed |= self.repair_header(header);
        }
        if changed {
            self.after_repair();
        }
    }

    /// Installs `header` if it is the new head vouched for by the primary's commit checksum,
    /// or if it links into the proven chain just below its floor.
    fn repair_header(&mut self, header: &Header) -> bool {
        let op = header.prepare().op;
        if op <= self.commit_min || op > self.config.op_max || op > self.journal.window_max() {
            return false;
        }
        let vouched_head = self.status == Status::Normal
            && op > self.op
            && op == self.commit_max
            && self.commit_max_checksum == Some(header.checksum);
        if vouched_head {
            self.op = op;
            self.journal.write_header(&mut self.storage, header);
            self.note_view_log(header);
            self.stats.headers_repaired += 1;
            return true;
        }
        let floor = self.chain_floor();
        let links = op + 1 == floor
            && self
                .journal
                .header(floor)
                .is_some_and(|above| above.prepare().parent == header.checksum);
        if !links || self.journal.checksum(op) == Some(header.checksum) {
            return false;
        }
        self.journal.write_header(&mut self.storage, header);
        assert!(
            self.chain_floor() <= op,
            "a repaired header extends the proven chain"
        );
        // Linked below a head this view's primary named: the same view's log.
        let head_in_view_log = self
            .view_log
            .get(&self.op)
            .is_some_and(|&c| Some(c) == self.journal.checksum(self.op));
        if self.status == Status::Normal && head_in_view_log {
            self.note_view_log(header);
        }
        self.stats.headers_repaired += 1;
        true
    }

    /// A prepare that arrived outside replication (a repair answer, or an old view's prepare).
    pub(super) fn on_repair_prepare(&mut self, message: Message) {
        if self.status == Status::Recovering {
            return;
        }
        let op = message.header.prepare().op;
        if op <= self.commit_min || op > self.op || self.journal.is_present(op) {
            return;
        }
        let expected = self.journal.checksum(op) == Some(message.header.checksum);
        if !expected {
            // Unknown here: accept it only where it links into the proven chain.
            if !self.repair_header(&message.header) {
                return;
            }
        }
        let checksum = message.header.checksum;
        self.journal.write_prepare(&mut self.storage, &message);
        assert!(
            self.journal.has_prepare(op, checksum),
            "a repaired prepare is held"
        );
        self.stats.prepares_repaired += 1;
        self.after_repair();
    }

    fn after_repair(&mut self) {
        self.commit_journal();
        self.backup_send_prepare_oks(None);
        self.primary_try_start_view();
    }
}
