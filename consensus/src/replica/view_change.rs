//! The view change: votes (start_view_change), logs to the new primary (do_view_change), the
//! new primary's log selection with nack-based truncation, and start_view.

use super::log_selection;
use super::*;
use crate::wire::{
    encode_header_list, DoViewChange, RequestStartView, StartView, HEADERS_MAX, VIEW_HEAD_UNKNOWN,
};

impl<S: Storage, M: StateMachine> Replica<S, M> {
    // ----- Votes -----

    /// A backup that hears no fresh heartbeat votes for the next view, and keeps voting, but
    /// moves only on a quorum of votes (N11), so one flaky replica cannot force view changes.
    pub(super) fn on_normal_heartbeat_timeout(&mut self) {
        if self.status != Status::Normal || self.is_primary() {
            return;
        }
        self.vote_for_view_change();
        self.timeout_normal_heartbeat.backoff(&mut self.prng);
    }

    /// Votes for the next view (or a higher one others already vote for).
    pub(super) fn vote_for_view_change(&mut self) {
        self.svc_wanted = true;
        let view = self.svc_view.max(self.view + 1);
        self.record_vote(view, self.config.replica);
        self.send_start_view_change(view);
        self.maybe_join_view_change();
    }

    pub(super) fn on_start_view_change(&mut self, message: &Message) {
        let view = message.header.view;
        let from = message.header.replica;
        match self.status {
            Status::Recovering => {}
            Status::Normal => {
                if view > self.view {
                    self.record_vote(view, from);
                    if self.svc_wanted {
                        self.record_vote(view, self.config.replica);
                        self.echo_vote(view);
                    }
                    if self.is_primary() && self.is_stranded(from) {
                        // A replica stuck in a higher view (it voted there while cut off)
                        // cannot come back down: the cluster goes up to it instead. A backup
                        // that merely missed heartbeats still answers in our view, so it is
                        // not stranded and cannot force view changes alone (N11).
                        self.vote_for_view_change();
                    }
                    self.maybe_join_view_change();
                }
            }
            Status::ViewChange => {
                if view > self.view {
                    self.transition_to_view_change(view);
                }
                if view == self.view {
                    self.record_vote(view, from);
                    self.maybe_send_do_view_change();
                }
            }
        }
    }

    /// Replica `r` has not been heard in this view for an abdication window.
    fn is_stranded(&self, r: u8) -> bool {
        let window = self.config.timeouts.primary_abdicate;
        self.ticks.saturating_sub(self.heard_tick[r as usize]) > window
    }

    fn record_vote(&mut self, view: u32, from: u8) {
        if view > self.svc_view {
            self.svc_view = view;
            self.svc_from = 0;
        }
        if view == self.svc_view {
            self.svc_from |= 1 << from;
            self.svc_tick[from as usize] = self.ticks;
        }
    }

    /// Votes for `svc_view`. In normal status only those of the current timeout episode
    /// count (two heartbeat timeouts): a backup that missed one heartbeat long ago, and then
    /// heard the primary again, no longer wants a view change.
    fn votes(&self) -> u32 {
        if self.status != Status::Normal {
            return self.svc_from.count_ones();
        }
        let window = 2 * self.config.timeouts.normal_heartbeat;
        (0..self.config.replica_count)
            .filter(|&r| self.svc_from >> r & 1 == 1)
            .filter(|&r| self.ticks - self.svc_tick[r as usize] <= window)
            .count() as u32
    }

    fn maybe_join_view_change(&mut self) {
        if self.status == Status::Normal
            && self.svc_view > self.view
            && self.votes() >= self.quorum()
        {
            self.transition_to_view_change(self.svc_view);
        }
    }

    /// A replica that wants a view change hears another's vote: it sends its own again if
    /// it has not lately, so the votes of a quorum are fresh at once. Without it, replicas
    /// whose timeouts back off at different paces vote at moments further and further apart,
    /// their votes expire before a quorum meets, and a cluster without its primary never
    /// changes view (found when a quorum of 4 of 6 had to converge alone).
    fn echo_vote(&mut self, view: u32) {
        let half_window = self.config.timeouts.normal_heartbeat / 2;
        if self.ticks.saturating_sub(self.svc_sent_tick) > half_window {
            self.send_start_view_change(view);
        }
    }

    fn send_start_view_change(&mut self, view: u32) {
        self.svc_sent_tick = self.ticks;
        let header = Header::new(
            self.config.cluster,
            view,
            self.config.replica,
            Command::StartViewChange,
        )
        .in_namespace(self.config.namespace);
        let message = Message::new(header, bytes::Bytes::new());
        for r in self.other_replicas().collect::<Vec<_>>() {
            self.send_message(r, message.clone());
        }
    }

    /// Enters view change status for `view`, persisting the view before advertising it (V1).
    pub(super) fn transition_to_view_change(&mut self, view: u32) {
        assert!(view > self.view, "views only go up");
        self.view = view;
        self.persist_view_state();
        self.stats.view_changes += 1;
        self.enter_view_change_status();
    }

    /// View change status in the current view (also used on restart mid view change).
    pub(super) fn enter_view_change_status(&mut self) {
        self.status = Status::ViewChange;
        if self.svc_view != self.view {
            self.svc_view = self.view;
            self.svc_from = 0;
        }
        self.svc_from |= 1 << self.config.replica;
        self.svc_wanted = false;
        self.dvc_from.clear();
        self.dvc_log_set = false;
        self.pipeline.clear();
        self.heartbeat_timestamp = 0;
        self.timeout_prepare.stop();
        self.timeout_commit_message.stop();
        self.timeout_normal_heartbeat.stop();
        self.timeout_view_change_status.start(&mut self.prng);
        self.timeout_view_change_message.start(&mut self.prng);
        self.send_start_view_change(self.view);
        self.maybe_send_do_view_change();
    }

    pub(super) fn on_view_change_status_timeout(&mut self) {
        if self.status != Status::ViewChange {
            return;
        }
        if self.votes() >= self.quorum() {
            // A quorum moved to this view but it did not start (its primary is down or cannot
            // repair): try the next primary.
            self.transition_to_view_change(self.view + 1);
        } else {
            // Without a quorum, climbing views would only strand this replica further above
            // the cluster; keep asking for this one.
            self.timeout_view_change_status.start(&mut self.prng);
        }
    }

    pub(super) fn on_view_change_message_timeout(&mut self) {
        if self.status != Status::ViewChange {
            return;
        }
        self.send_start_view_change(self.view);
        self.maybe_send_do_view_change();
        self.timeout_view_change_message.start(&mut self.prng);
    }

    // ----- do_view_change -----

    /// With a quorum of votes for this view, hands this replica's log to the new primary.
    fn maybe_send_do_view_change(&mut self) {
        if self.status != Status::ViewChange || self.votes() < self.quorum() {
            return;
        }
        if !self.may_offer_log() {
            // Its log may lack the header of an op it acknowledged: it would count as a nack.
            // Like a replica that is down, it leaves the choice to the others.
            return;
        }
        let record = self.own_dvc_record();
        if self.is_primary() {
            self.dvc_from.entry(self.config.replica).or_insert(record);
            self.primary_maybe_set_log();
            return;
        }
        let mut present_bitset = 0u128;
        for (i, (_, present)) in record.headers.iter().enumerate() {
            present_bitset |= (*present as u128) << i;
        }
        let headers: Vec<Header> = record.headers.iter().map(|(h, _)| *h).collect();
        let (unknown_max, unknown_bitset) =
            DoViewChange::encode_unknown(&record.unknown).expect("checked by may_offer_log");
        let dvc = DoViewChange {
            present_bitset,
            op: self.op,
            commit_min: self.commit_min,
            log_view: self.log_view,
            view_head: record.view_head.unwrap_or(VIEW_HEAD_UNKNOWN),
            unknown_max,
            unknown_bitset,
        };
        let primary = self.primary_index(self.view);
        self.send(
            primary,
            Command::DoViewChange(dvc),
            encode_header_list(&headers),
        );
    }

    /// Whether `op` (above the checkpoint) may have been acknowledged here but its prepare does
    /// not read back: faulty, or a slot unknown since recovery. Such a copy is never nacked.
    pub fn holds_unreadable(&self, op: u64) -> bool {
        op > self.journal.checkpoint_op()
            && self.journal.may_have_acked(op)
            && !self.journal.is_present(op)
    }

    /// The highest op this replica may have acknowledged: its head, or an op above it whose
    /// slot it lost whole (unknown).
    pub fn acked_max(&self) -> u64 {
        self.journal.unknown_ops().fold(self.op, u64::max)
    }

    /// Whether this replica's log may be offered to a view change. An op above what it
    /// executed that it may have acknowledged but whose header it lost (unknown) goes into the
    /// do_view_change as such, so the new primary never counts it as a nack (protocol-aware
    /// recovery: a replica that lost acknowledged state must not deny it). Only when those ops
    /// span more than the do_view_change can name does it abstain (seed 40260: with 2
    /// replicas, a backup that abstained over one unknown op stalled every view change).
    pub fn may_offer_log(&self) -> bool {
        DoViewChange::encode_unknown(&self.unknown_above_commit()).is_some()
    }

    fn unknown_above_commit(&self) -> Vec<u64> {
        self.journal
            .unknown_ops()
            .filter(|&op| op > self.commit_min)
            .collect()
    }

    /// This replica's log suffix: the newest headers it has (up to HEADERS_MAX ops back from
    /// the head), each with whether its prepare is durable here.
    fn own_dvc_record(&self) -> DvcRecord {
        let op_min = self.op.saturating_sub(HEADERS_MAX as u64 - 1);
        let headers = self
            .journal
            .headers_desc(op_min, self.op)
            // "Present" here means "may have acknowledged": a faulty prepare is never nacked.
            .map(|h| (*h, self.journal.may_have_acked(h.prepare().op)))
            .collect();
        DvcRecord {
            log_view: self.log_view,
            op: self.op,
            commit_min: self.commit_min,
            headers,
            view_head: self.superblock.view_head.map(|h| h.prepare().op),
            unknown: self.unknown_above_commit(),
        }
    }

    pub(super) fn on_do_view_change(&mut self, message: &Message) {
        let Command::DoViewChange(dvc) = message.header.command else {
            unreachable!("dispatched on command");
        };
        let view = message.header.view;
        if view < self.view
            || self.status == Status::Recovering
            || dvc.op.max(dvc.unknown_max) > self.config.op_max
        {
            return;
        }
        if view > self.view {
            // A do_view_change means a quorum voted for that view.
            self.transition_to_view_change(view);
        }
        if self.status != Status::ViewChange || !self.is_primary() || self.dvc_log_set {
            return;
        }
        let headers = message
            .body_headers(&self.ctx)
            .into_iter()
            .enumerate()
            .map(|(i, h)| (h, dvc.present_bitset >> i & 1 == 1))
            .collect();
        let record = DvcRecord {
            log_view: dvc.log_view,
            op: dvc.op,
            commit_min: dvc.commit_min,
            headers,
            view_head: (dvc.view_head != VIEW_HEAD_UNKNOWN).then_some(dvc.view_head),
            unknown: dvc.unknown_ops(),
        };
        // The first do_view_change of each replica for this view is kept (V3).
        self.dvc_from
            .entry(message.header.replica)
            .or_insert(record);
        if self.may_offer_log() {
            let own = self.own_dvc_record();
            self.dvc_from.entry(self.config.replica).or_insert(own);
        }
        self.primary_maybe_set_log();
    }

    fn primary_maybe_set_log(&mut self) {
        if self.dvc_log_set || (self.dvc_from.len() as u32) < self.quorum() {
            return;
        }
        self.primary_set_log_from_do_view_changes();
        self.primary_try_start_view();
    }

    /// Chooses the log from the do_view_change quorum (see `log_selection`) and installs it.
    fn primary_set_log_from_do_view_changes(&mut self) {
        let records: Vec<DvcRecord> = self.dvc_from.values().cloned().collect();
        let base = *self
            .journal
            .header(self.commit_min)
            .expect("executed op header");
        let own: Vec<Header> = self
            .journal
            .headers_desc(self.commit_min + 1, self.op)
            .copied()
            .collect();
        let quorums = log_selection::Quorums {
            replica_count: self.config.replica_count as usize,
            quorum: self.quorum() as usize,
            pipeline_max: self.config.pipeline_max as u64,
        };
        let Some(selection) =
            log_selection::select(&records, &base, &own, self.commit_max, quorums)
        else {
            // Undecidable from these records: let the view change time out.
            return;
        };
        if selection.head > self.journal.window_max() {
            // This primary is too far behind to hold the chosen log: the view change times
            // out and the next primary takes over. It must not learn the commit point here:
            // its own log is not yet the chosen one, and executing it up to that commit
            // would execute ops of an abandoned log (seed 2037).
            return;
        }
        if !self.install_chain(&selection.chain, selection.head) {
            return;
        }
        self.stats.ops_truncated += selection.truncated;
        self.commit_max = self.commit_max.max(selection.commit_max);
        self.commit_max_checksum = None;
        // Timestamps strictly increase along the chain (N8), also across this failover: above
        // everything the quorum, the chosen chain and this replica's own journal hold (a
        // primary that abstained from its own do_view_change is in no record).
        let timestamp_max = records
            .iter()
            .flat_map(|r| r.headers.iter().map(|(h, _)| h))
            .chain(selection.chain.values())
            .chain(own.iter())
            .map(|h| h.prepare().timestamp)
            .max()
            .unwrap_or(0);
        self.timestamp_last = self.timestamp_last.max(timestamp_max);
        self.dvc_log_set = true;
    }

    /// Replaces this replica's log with the chosen chain up to `head` and truncates the rest.
    /// Executed ops must already match (the safety check of the whole protocol): a chain that
    /// contradicts them is a detected fork, counted and refused.
    fn install_chain(&mut self, chain: &BTreeMap<u64, Header>, head: u64) -> bool {
        let forks = head < self.commit_min
            || chain
                .range(..=self.commit_min)
                .any(|(&op, h)| self.journal.contradicts(op, h.checksum));
        if forks {
            self.stats.forks_detected += 1;
            return false;
        }
        for (_, header) in chain
            .range(self.commit_min + 1..)
            .take_while(|(&op, _)| op <= head)
        {
            self.journal.write_header(&mut self.storage, header);
        }
        self.journal.truncate_after(&mut self.storage, head);
        self.journal.clear_unknown_above(head);
        self.op = head;
        // Paired with log_selection's own check: the journal now holds the chosen chain.
        for (&op, header) in chain
            .range(self.commit_min + 1..)
            .filter(|(&op, _)| op <= head)
        {
            assert_eq!(
                self.journal.checksum(op),
                Some(header.checksum),
                "installed op {op}"
            );
        }
        assert_eq!(
            self.journal.op_max().max(self.commit_min),
            head,
            "nothing above the head"
        );
        true
    }

    /// The new primary starts the view once its log is complete and executed (V9).
    pub(super) fn primary_try_start_view(&mut self) {
        if self.status != Status::ViewChange || !self.is_primary() || !self.dvc_log_set {
            return;
        }
        self.commit_journal();
        if self.chain_floor() > self.commit_min || self.commit_min < self.commit_max {
            return;
        }
        if (self.commit_min + 1..=self.op).any(|op| !self.journal.is_present(op)) {
            return;
        }
        let mut uncommitted = Vec::new();
        for op in self.commit_max + 1..=self.op {
            // A read can fail (a latent fault): the prepare is then marked faulty and
            // repaired before the view starts.
            match self.journal.prepare(&self.storage, &self.ctx, op) {
                Some(message) => uncommitted.push(message),
                None => return,
            }
        }
        // The head it chose (repair never moves op), made durable with the log_view it heads.
        // Set only now: a view change that stalls before this point leaves the replica in its
        // old log_view, whose head its do_view_changes name (`DoViewChange::view_head`).
        self.superblock.view_head = self.journal.header(self.op).copied();
        self.log_view = self.view;
        self.persist_view_state();
        self.pipeline.clear();
        for message in uncommitted {
            self.pipeline.push_prepare(crate::pipeline::PipelineEntry {
                message,
                ok_from: 0,
                durable_at: self.storage.submitted,
            });
        }
        self.transition_to_normal_primary();
        let start_view = self.start_view_message(0);
        for r in self.other_replicas().collect::<Vec<_>>() {
            self.send_message(r, start_view.clone());
        }
        if !self.pipeline.prepares.is_empty() {
            self.timeout_prepare.start(&mut self.prng);
        }
        self.primary_self_ack();
        self.primary_commit_pipeline();
    }

    fn start_view_message(&self, nonce: u128) -> Message {
        let op_min = self.op.saturating_sub(HEADERS_MAX as u64 - 1);
        let headers: Vec<Header> = self
            .journal
            .headers_desc(op_min, self.op)
            .copied()
            .collect();
        let sv = StartView {
            nonce,
            op: self.op,
            commit: self.commit_max,
        };
        Message::new(
            self.header_for(Command::StartView(sv)),
            encode_header_list(&headers),
        )
    }

    // ----- start_view -----

    pub(super) fn on_start_view(&mut self, message: &Message) {
        let Command::StartView(sv) = message.header.command else {
            unreachable!("dispatched on command");
        };
        let view = message.header.view;
        if view < self.view
            || self.status == Status::Recovering
            || self.primary_index(view) == self.config.replica
            || message.header.replica != self.primary_index(view)
            || (view == self.view && self.status == Status::Normal && sv.op <= self.op)
            || sv.op > self.config.op_max
        {
            return;
        }
        if sv.op < self.commit_min {
            // A start_view that predates what this replica executed: possible only when that
            // came from a state transfer (the op committed after this start_view was sent).
            // A current one is asked for when the primary is next heard from.
            return;
        }
        // Only headers that chain from the start_view's head are installed.
        let headers = message.body_headers(&self.ctx);
        let mut expected = headers[0].checksum;
        let chained: Vec<Header> = headers
            .into_iter()
            .take_while(|h| {
                let links = h.checksum == expected;
                expected = h.prepare().parent;
                links
            })
            .collect();
        let forks = chained.iter().any(|h| {
            let op = h.prepare().op;
            op <= self.commit_min && self.journal.contradicts(op, h.checksum)
        });
        if forks {
            // The new view's log contradicts what this replica executed.
            self.stats.forks_detected += 1;
            return;
        }
        // A replica too far behind to hold the new view's log does not join the view yet: it
        // catches up by state transfer first, then asks for the start_view again. Joining
        // with the part its ring holds would make it claim the view's log (log_view) while
        // lacking ops of it that may have committed in an earlier view, and a later view
        // change that ranks its record best would drop them (seed 400918). A backup already
        // normal in the view holds the view's starting log; it may extend its log as far as
        // its ring holds, like a backup that missed the newest prepares, if the start_view
        // carries the header at the end of its ring. (A head without a header let older
        // entries below pass for the view's log after a restart; found by the view_change
        // fuzzer. Dropping those entries instead could nack an op this replica acked.)
        let head = sv.op.min(self.journal.window_max());
        let joining = !(view == self.view && self.status == Status::Normal);
        let headless = !chained.iter().any(|h| h.prepare().op == head) && head > self.commit_min;
        if (joining && head < sv.op) || headless {
            // It leaves its older view (a stale primary must stop leading) and waits in the
            // new one, in view change status, until its state transfer is done.
            self.sv_beyond_ring = true;
            if view > self.view {
                self.transition_to_view_change(view);
            }
            return;
        }
        self.sv_beyond_ring = false;
        // A backup already normal in this view takes a later start_view of the same view to
        // extend its log (the primary only appends within a view, so the two agree).
        let extends = view == self.view && self.status == Status::Normal;
        assert!(
            !extends || head >= self.op,
            "a same-view start_view only extends"
        );
        if view != self.log_view {
            self.view_log.clear();
        }
        let installed = self.commit_min + 1..=head;
        for header in chained
            .iter()
            .filter(|h| installed.contains(&h.prepare().op))
        {
            self.journal.write_header(&mut self.storage, header);
            self.note_view_log(header);
        }
        self.journal.truncate_after(&mut self.storage, head);
        if head == sv.op && !extends {
            // Joining a view: its log, chosen by a quorum, ends at `head`, and what this
            // replica may have acked above it in an older view was not committed. A start_view
            // of its own view proves nothing above its head: it may be an old one (delayed or
            // replayed) from before ops this replica acked in the view and then lost whole.
            self.journal.clear_unknown_above(head);
        }
        self.op = head;
        assert!(
            chained
                .iter()
                .any(|h| h.prepare().op == head && self.journal.checksum(head) == Some(h.checksum))
                || head <= self.commit_min,
            "the installed head is the start_view's header"
        );
        self.superblock.view_head = self.journal.header(head).copied();
        self.view = view;
        self.log_view = view;
        self.commit_max = self.commit_max.max(sv.commit);
        self.commit_max_checksum = None;
        self.persist_view_state();
        if !extends {
            self.stats.view_changes += 1;
            self.transition_to_normal_backup(view);
        }
        self.commit_journal();
        self.backup_send_prepare_oks(None);
    }

    pub(super) fn request_start_view(&mut self, view: u32) {
        if view < self.view || self.primary_index(view) == self.config.replica {
            return;
        }
        let wait = self.config.timeouts.view_change_message;
        if self.rsv_tick.is_some_and(|t| self.ticks < t + wait) {
            return;
        }
        self.rsv_tick = Some(self.ticks);
        let header = Header::new(
            self.config.cluster,
            view,
            self.config.replica,
            Command::RequestStartView(RequestStartView {
                nonce: self.ticks as u128,
            }),
        )
        .in_namespace(self.config.namespace);
        let primary = self.primary_index(view);
        self.send_message(primary, Message::new(header, bytes::Bytes::new()));
    }

    pub(super) fn on_request_start_view(&mut self, message: &Message) {
        let Command::RequestStartView(r) = message.header.command else {
            unreachable!("dispatched on command");
        };
        if self.status != Status::Normal || !self.is_primary() || message.header.view != self.view {
            return;
        }
        let start_view = self.start_view_message(r.nonce);
        self.send_message(message.header.replica, start_view);
    }
}
