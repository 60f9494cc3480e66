//! Normal operation: client requests at the primary, prepares and acks, commit heartbeats,
//! pings, and the tick-driven timeouts.

use super::*;
use crate::pipeline::PipelineEntry;
use crate::wire::{Commit, EvictionReason, Operation, Ping, Prepare, PrepareOk, Request};

impl<S: Storage, M: StateMachine> Replica<S, M> {
    // ----- Requests (primary) -----

    pub(super) fn on_request(&mut self, message: Message) {
        let Command::Request(request) = message.header.command else {
            unreachable!("dispatched on command");
        };
        if self.status != Status::Normal || !self.is_primary() {
            // Clients try another replica on timeout; only the primary answers.
            return self.drop_request();
        }
        if message.header.view > self.view {
            // The client has heard from a newer view: this primary was deposed, and its
            // client table may lack sessions registered since (C6).
            return self.drop_request();
        }
        if self.commit_min < self.commit_max {
            // Sessions are known only once every commit has executed (C5).
            return self.drop_request();
        }
        if self.pipeline.has_client(request.client) {
            // Already preparing or queued: one request per client in flight (C3).
            return self.drop_request();
        }
        if !self.request_is_new(&message, &request) {
            return;
        }
        if self.pipeline.prepares_full() {
            if self.pipeline.requests_full() {
                return self.drop_request();
            }
            self.pipeline.push_request(message);
            return;
        }
        self.primary_prepare(message);
    }

    fn drop_request(&mut self) {
        self.stats.requests_dropped += 1;
    }

    /// Deduplication against the client table (C2). Answers duplicates and dead sessions;
    /// true only for a request that should be prepared.
    fn request_is_new(&mut self, message: &Message, request: &Request) -> bool {
        let session = self.client_table.get(request.client).cloned();
        match (request.operation, session) {
            (Operation::Register, None) => true,
            (Operation::Register, Some(s)) => {
                if s.request == 0 && s.request_checksum == message.header.checksum {
                    self.reply_to(request.client, s.reply);
                } else {
                    self.drop_request();
                }
                false
            }
            (_, None) => {
                if self.may_evict(request.client) {
                    self.send_eviction(request.client, EvictionReason::NoSession);
                } else {
                    self.drop_request();
                }
                false
            }
            (_, Some(s)) if request.session < s.session => {
                self.send_eviction(request.client, EvictionReason::SessionTooLow);
                false
            }
            (_, Some(s)) if request.session > s.session => {
                self.drop_request();
                false
            }
            (_, Some(s)) if request.request == s.request => {
                if s.request_checksum == message.header.checksum {
                    // A duplicate of a committed request: the cached reply, no re-execution.
                    self.reply_to(request.client, s.reply);
                } else {
                    self.drop_request();
                }
                false
            }
            (_, Some(s)) if request.request == s.request + 1 => true,
            _ => {
                // Older than the last executed request (stale) or skipping ahead.
                self.drop_request();
                false
            }
        }
    }

    /// Whether "no session" is this primary's final word for `client` (C5): a quorum was in
    /// its view lately (it is not a deposed primary that never executed the client's
    /// register), and the client's register is not in its pipeline, uncommitted.
    ///
    /// "Lately" is proven by pongs echoing its own recent pings, not by `heard_tick`: any
    /// message of its view refreshes that, and the abdication window starts it fresh when the
    /// replica becomes primary. A replica that finished a view change on old do_view_change
    /// messages after the others had moved to a later view and committed the register there
    /// (seed 16888), or that kept receiving replayed old messages of its view (seed 14650),
    /// took those for followers, and evicted a live session.
    fn may_evict(&self, client: u128) -> bool {
        let registering = self.pipeline.prepares.iter().any(|entry| {
            let p = entry.message.header.prepare();
            p.client == client && p.operation == Operation::Register
        });
        self.primary_has_quorum_echoed() && !registering
    }

    /// The timestamp of a ping sent now: this incarnation's epoch above its tick count. Ticks
    /// restart at zero when the replica does, so without the epoch a replayed pong to an
    /// earlier incarnation's ping would pass for an answer to a recent one.
    fn ping_stamp(&self) -> u64 {
        assert!(
            self.ticks < 1 << PING_TICK_BITS,
            "tick count fits a ping stamp"
        );
        (ping_epoch(self.config.seed) << PING_TICK_BITS) | self.ticks
    }

    /// The tick at which this incarnation sent the ping a pong echoes (`ping_stamp`); `None`
    /// for another incarnation's ping, or a stamp it cannot have sent.
    fn echoed_tick(&self, stamp: u64) -> Option<u64> {
        if stamp == NO_ECHO {
            return None;
        }
        let tick = stamp & ((1 << PING_TICK_BITS) - 1);
        let ours = stamp >> PING_TICK_BITS == ping_epoch(self.config.seed);
        (ours && tick <= self.ticks).then_some(tick)
    }

    /// A quorum (itself included) answered, in this view, a ping it sent within the
    /// abdication window.
    fn primary_has_quorum_echoed(&self) -> bool {
        self.quorum_within_window(|r| {
            let echo = self.pong_echo[r as usize];
            (echo > 0).then_some(echo)
        })
    }

    /// A quorum, itself included, of replicas whose tick (`tick_of`; `None`: never) is within
    /// the abdication window.
    fn quorum_within_window(&self, tick_of: impl Fn(u8) -> Option<u64>) -> bool {
        let window = self.config.timeouts.primary_abdicate;
        let recent = self
            .other_replicas()
            .filter(|&r| tick_of(r).is_some_and(|tick| self.ticks.saturating_sub(tick) <= window))
            .count() as u32;
        recent + 1 >= self.quorum()
    }

    fn send_eviction(&mut self, client: u128, reason: EvictionReason) {
        let header = self.header_for(Command::Eviction(crate::wire::Eviction { client, reason }));
        let message = Message::new(header, bytes::Bytes::new());
        self.reply_to(client, message);
    }

    pub(super) fn reply_to(&mut self, client: u128, message: Message) {
        self.emit(Action::Reply { client, message });
    }

    /// Assigns the next op, journals it, and sends it to the backups.
    fn primary_prepare(&mut self, request: Message) {
        assert!(self.status == Status::Normal && self.is_primary());
        assert!(!self.pipeline.prepares_full());
        if self.op >= self.config.op_max || self.op >= self.journal.window_max() {
            // The ring is full up to the next checkpoint (cannot happen with a valid config:
            // the primary checkpoints before its pipeline reaches the end of the ring).
            return self.drop_request();
        }
        let Command::Request(r) = request.header.command else {
            unreachable!("only requests are prepared");
        };
        // Strictly increasing, also across failover (N8); ticks stand in for a clock.
        let timestamp = (self.timestamp_last + 1).max(self.ticks);
        let prepare = Prepare {
            parent: self.journal.checksum(self.op).expect("head header"),
            client: r.client,
            request_checksum: request.header.checksum,
            op: self.op + 1,
            commit: self.commit_max,
            timestamp,
            session: r.session,
            request: r.request,
            operation: r.operation,
        };
        let message = Message::new(self.header_for(Command::Prepare(prepare)), request.body);
        self.journal.write_prepare(&mut self.storage, &message);
        self.op += 1;
        self.timestamp_last = timestamp;
        // The primary's own ack counts once its write is durable (`primary_self_ack`), so a
        // quorum never includes a copy a crash could still lose.
        self.pipeline.push_prepare(PipelineEntry {
            message: message.clone(),
            ok_from: 0,
            durable_at: self.storage.submitted,
        });
        for r in self.other_replicas().collect::<Vec<_>>() {
            self.send_message(r, message.clone());
        }
        if !self.timeout_prepare.is_ticking() {
            self.timeout_prepare.start(&mut self.prng);
        }
        self.primary_commit_pipeline();
    }

    fn primary_pipeline_next_request(&mut self) {
        while !self.pipeline.prepares_full() {
            let Some(request) = self.pipeline.requests.pop_front() else {
                break;
            };
            self.primary_prepare(request);
        }
    }

    // ----- Acks and commits (primary) -----

    pub(super) fn on_prepare_ok(&mut self, message: &Message) {
        let Command::PrepareOk(ok) = message.header.command else {
            unreachable!("dispatched on command");
        };
        // Only acks of this view count (N4).
        if self.status != Status::Normal || !self.is_primary() || message.header.view != self.view {
            return;
        }
        let from = message.header.replica;
        let Some(entry) = self.pipeline.entry_mut(ok.op) else {
            return;
        };
        if entry.message.header.checksum != ok.prepare_checksum {
            return;
        }
        entry.ok_from |= 1 << from;
        self.primary_commit_pipeline();
    }

    /// Commits, in op order, every pipeline head that has a quorum (or that a peer's
    /// checkpoint shows committed already), then refills the pipeline.
    pub(super) fn primary_commit_pipeline(&mut self) {
        let checkpointed = self.peer_checkpoint_in_view();
        while let Some(head) = self.pipeline.prepares.front() {
            if head.ok_count() < self.quorum() && head.op() > checkpointed {
                break;
            }
            let op = head.op();
            assert_eq!(op, self.commit_max + 1, "pipeline commits in op order (N2)");
            self.pipeline.prepares.pop_front();
            self.commit_max = op;
            self.commit_journal();
        }
        if self.pipeline.prepares.is_empty() {
            self.timeout_prepare.stop();
        }
        self.primary_pipeline_next_request();
    }

    /// Counts the primary's own ack for every pipeline prepare whose write is now durable.
    pub(super) fn primary_self_ack(&mut self) {
        if self.status != Status::Normal || !self.is_primary() {
            return;
        }
        let (me, done) = (1u64 << self.config.replica, self.writes_done);
        let mut acked = false;
        for entry in self.pipeline.prepares.iter_mut() {
            if entry.durable_at <= done && entry.ok_from & me == 0 {
                entry.ok_from |= me;
                acked = true;
            }
        }
        if acked {
            self.primary_commit_pipeline();
        }
    }

    fn on_prepare_timeout(&mut self) {
        // Resend each uncommitted prepare to the replicas that have not acknowledged it.
        let mut resend = Vec::new();
        for entry in &self.pipeline.prepares {
            for r in self.other_replicas() {
                if entry.ok_from & (1 << r) == 0 {
                    resend.push((r, entry.message.clone()));
                }
            }
        }
        self.stats.prepares_resent += resend.len() as u64;
        for (r, message) in resend {
            self.send_message(r, message);
        }
        self.timeout_prepare.backoff(&mut self.prng);
    }

    // ----- Prepares (backup) -----

    pub(super) fn on_prepare(&mut self, message: Message) {
        let p = *message.header.prepare();
        let from_current_view = message.header.view == self.view
            && message.header.replica == self.primary_index(self.view);
        if message.header.view > self.view {
            return self.request_start_view(message.header.view);
        }
        if self.status == Status::Normal && !self.is_primary() && from_current_view {
            return self.backup_on_prepare(message, p);
        }
        if self.status == Status::ViewChange && from_current_view && !self.is_primary() {
            // The primary of our view already started it; we missed its start_view.
            self.request_start_view(self.view);
        }
        let (op, checksum) = (p.op, message.header.checksum);
        if self.status == Status::Normal
            && !self.is_primary()
            && message.header.view < self.view
            && op > self.op
        {
            // A prepare of an older view above this backup's head: the primary retransmits
            // an inherited prepare (its header keeps the view it was made in), and this
            // backup's log stops below it (a start_view installed only as far as its ring
            // held). It cannot tell the view's prepare from an abandoned one at that op, so
            // it asks for the view's log again (seed 406979: it waited forever instead).
            self.request_start_view(self.view);
        }
        self.on_repair_prepare(message);
        // A prepare of an older view that the new primary retransmits from its inherited
        // pipeline: acknowledge it again, in this view.
        if self.status == Status::Normal
            && !self.is_primary()
            && self.journal.has_prepare(op, checksum)
        {
            self.backup_send_prepare_oks(Some(op));
        } else if op <= self.commit_min {
            self.ack_executed(op, checksum);
        }
    }

    /// Acks a prepare this backup executed (so it is committed), when its primary asks
    /// again: a primary that learned a lower commit in the view change still needs a quorum
    /// of acks in its view, also from a backup that holds the op only in a checkpoint it
    /// installed by state transfer (seed 400925: none could ack it, and the pipeline stalled).
    fn ack_executed(&mut self, op: u64, checksum: u128) {
        if self.status != Status::Normal || self.is_primary() || self.log_view != self.view {
            return;
        }
        let Some(header) = self.journal.header(op).filter(|h| h.checksum == checksum) else {
            return;
        };
        assert!(
            op <= self.commit_min,
            "only an executed op is acked this way"
        );
        let ok = PrepareOk {
            prepare_checksum: checksum,
            op,
            prepare_view: header.view,
        };
        let primary = self.primary_index(self.view);
        self.send(primary, Command::PrepareOk(ok), bytes::Bytes::new());
    }

    /// A prepare of this view from its primary: trusted, so it may become the head.
    fn backup_on_prepare(&mut self, message: Message, p: Prepare) {
        if p.op <= self.commit_min {
            return self.ack_executed(p.op, message.header.checksum);
        }
        if !self.journal.has_prepare(p.op, message.header.checksum) {
            if p.op > self.config.op_max || p.op > self.journal.window_max() {
                // Beyond this replica's ring: it must execute (and checkpoint) first, or
                // catch up by state transfer. Learning the commit point still helps.
                self.advance_commit_max(p.commit, None);
                self.commit_journal();
                return;
            }
            if p.op > self.op {
                // Ops between the old head and this one are now gaps for repair to fill.
                self.op = p.op;
            } else if self.journal.checksum(p.op) == Some(message.header.checksum) {
                // A known op whose prepare was missing or faulty here: the primary's answer
                // to a repair request (or its retransmission) fills it.
                self.stats.prepares_repaired += 1;
            }
            let checksum = message.header.checksum;
            self.journal.write_prepare(&mut self.storage, &message);
            assert!(self.journal.has_prepare(p.op, checksum) && p.op <= self.op);
        }
        self.note_view_log(&message.header);
        self.advance_commit_max(p.commit, None);
        self.commit_journal();
        self.backup_send_prepare_oks(Some(p.op));
    }

    /// Acks every op this backup may now vouch for: the chain is connected from the head and
    /// every prepare up to it is durable (N1, N3, N5). `resend` also re-acks one already-acked op.
    pub(super) fn backup_send_prepare_oks(&mut self, resend: Option<u64>) {
        if self.status != Status::Normal || self.is_primary() || self.log_view != self.view {
            return;
        }
        let Some(through) = self.ackable_through() else {
            return;
        };
        let from = self.acked_through.max(self.commit_max) + 1;
        let mut ops: Vec<u64> = (from..=through).collect();
        if let Some(op) = resend {
            // Re-acks may cover committed ops too: a new primary that learned a lower commit
            // than this backup still needs the acks to commit them in its view.
            if op <= through && op < from {
                ops.push(op);
            }
        }
        let primary = self.primary_index(self.view);
        for op in ops {
            let header = *self.journal.header(op).expect("ackable op has a header");
            let ok = PrepareOk {
                prepare_checksum: header.checksum,
                op,
                prepare_view: header.view,
            };
            self.send(primary, Command::PrepareOk(ok), bytes::Bytes::new());
        }
        self.acked_through = self.acked_through.max(through);
    }

    // ----- Commit heartbeats -----

    pub(super) fn on_commit(&mut self, message: &Message) {
        let Command::Commit(c) = message.header.command else {
            unreachable!("dispatched on command");
        };
        if message.header.view > self.view {
            return self.request_start_view(message.header.view);
        }
        if message.header.view < self.view
            || message.header.replica != self.primary_index(self.view)
        {
            return;
        }
        if self.status == Status::ViewChange && !self.is_primary() {
            return self.request_start_view(self.view);
        }
        if self.status != Status::Normal || self.is_primary() {
            return;
        }
        self.note_peer_checkpoint_in_view(
            message.header.replica,
            message.header.view,
            c.checkpoint_op,
        );
        // Old or replayed heartbeats prove nothing about the primary being alive (N9).
        if c.timestamp_monotonic > self.heartbeat_timestamp {
            self.heartbeat_timestamp = c.timestamp_monotonic;
            self.timeout_normal_heartbeat.start(&mut self.prng);
            self.svc_wanted = false;
        }
        self.advance_commit_max(c.commit, Some(c.commit_checksum));
        self.commit_journal();
        self.backup_send_prepare_oks(None);
    }

    /// Raises commit_max (never lowers it) as learned from this view's primary.
    pub(super) fn advance_commit_max(&mut self, commit: u64, checksum: Option<u128>) {
        if commit > self.config.op_max {
            // Beyond what this journal can hold: not a commit point any primary could reach.
            return;
        }
        if commit > self.commit_max {
            self.commit_max = commit;
            self.commit_max_checksum = None;
        }
        if commit == self.commit_max {
            if let Some(sum) = checksum {
                self.commit_max_checksum = Some(sum);
                // A stale entry at a committed op must go, so repair fetches the right one.
                if self.commit_max > self.commit_min
                    && self
                        .journal
                        .checksum(commit)
                        .is_some_and(|have| have != sum)
                {
                    self.journal.remove(&mut self.storage, commit);
                    self.op = self.journal.op_max().max(self.commit_min);
                }
            }
        }
    }

    fn send_commit_heartbeat(&mut self) {
        if !self.primary_has_quorum_heard() || self.svc_wanted {
            // Abdicate: stop suppressing the backups' view change (N10), and vote for it.
            self.vote_for_view_change();
            return;
        }
        let commit = Commit {
            commit_checksum: self.journal.checksum(self.commit_max).expect("committed"),
            commit: self.commit_max,
            timestamp_monotonic: self.ticks,
            checkpoint_op: self.advertised_checkpoint(),
        };
        self.broadcast_heartbeat(Command::Commit(commit));
    }

    fn primary_has_quorum_heard(&self) -> bool {
        self.quorum_within_window(|r| Some(self.heard_tick[r as usize]))
    }

    // ----- Pings -----

    pub(super) fn on_ping(&mut self, from: Peer, view: u32, ping: Ping) {
        if let Peer::Replica(r) = from {
            self.note_peer_checkpoint_in_view(r, view, ping.checkpoint_op);
            // Only a replica that follows its view (normal status: it installed the view's
            // log) echoes the ping's stamp, the proof `primary_has_quorum_echoed` counts. One
            // in view change status for that view never joined it: it may go on to a later
            // view whose log comes from an older log_view and commit a register there.
            let echo = if self.status == Status::Normal {
                ping.timestamp_monotonic
            } else {
                NO_ECHO
            };
            let pong = Ping {
                timestamp_monotonic: echo,
                checkpoint_op: self.advertised_checkpoint(),
            };
            self.send_heartbeat(r, Command::Pong(pong));
        }
    }

    pub(super) fn on_pong(&mut self, from: Peer, message: &Message, pong: Ping) {
        // Pongs from a replica in our view prove it can hear us and we can hear it.
        if let Peer::Replica(r) = from {
            self.note_peer_checkpoint_in_view(r, message.header.view, pong.checkpoint_op);
            if message.header.view == self.view {
                self.heard_tick[r as usize] = self.ticks;
                if let Some(tick) = self.echoed_tick(pong.timestamp_monotonic) {
                    let echo = &mut self.pong_echo[r as usize];
                    *echo = (*echo).max(tick);
                }
            }
        }
    }

    // ----- Timeouts -----

    pub(super) fn tick_timeouts(&mut self) {
        if self.timeout_ping.tick() {
            let ping = Ping {
                timestamp_monotonic: self.ping_stamp(),
                checkpoint_op: self.advertised_checkpoint(),
            };
            self.broadcast_heartbeat(Command::Ping(ping));
            self.timeout_ping.start(&mut self.prng);
        }
        if self.timeout_prepare.tick() {
            self.on_prepare_timeout();
        }
        if self.timeout_commit_message.tick() {
            self.send_commit_heartbeat();
            self.timeout_commit_message.start(&mut self.prng);
        }
        if self.timeout_normal_heartbeat.tick() {
            self.on_normal_heartbeat_timeout();
        }
        if self.timeout_view_change_status.tick() {
            self.on_view_change_status_timeout();
        }
        if self.timeout_view_change_message.tick() {
            self.on_view_change_message_timeout();
        }
        if self.timeout_repair.tick() {
            self.repair();
            self.timeout_repair.start(&mut self.prng);
        }
    }

    // ----- Transitions into normal status -----

    pub(super) fn transition_to_normal_primary(&mut self) {
        assert!(self.is_primary());
        assert_eq!(self.log_view, self.view);
        self.status = Status::Normal;
        self.stop_view_change_timeouts();
        self.timeout_normal_heartbeat.stop();
        self.timeout_commit_message.start(&mut self.prng);
        // Everyone gets a fresh abdication window in the new view.
        self.heard_tick = [self.ticks; REPLICAS_MAX as usize];
        self.pong_echo = [0; REPLICAS_MAX as usize];
    }

    pub(super) fn transition_to_normal_backup(&mut self, view: u32) {
        assert!(self.primary_index(view) != self.config.replica);
        self.view = view;
        self.log_view = view;
        self.status = Status::Normal;
        self.pipeline.clear();
        self.stop_view_change_timeouts();
        self.timeout_prepare.stop();
        self.timeout_commit_message.stop();
        self.heartbeat_timestamp = 0;
        self.acked_through = 0;
        self.svc_wanted = false;
        if self.log_view != view {
            self.view_log.clear();
        }
        self.timeout_normal_heartbeat.start(&mut self.prng);
    }

    fn stop_view_change_timeouts(&mut self) {
        self.timeout_view_change_status.stop();
        self.timeout_view_change_message.stop();
        self.dvc_from.clear();
        self.dvc_log_set = false;
    }
}

/// The stamp of a pong that echoes nothing: its sender is not following its view. (A ping
/// stamped 0, epoch 0 at tick 0, then proves nothing: safe.)
const NO_ECHO: u64 = 0;

/// Bits of a ping stamp that hold the tick count (`Replica::ping_stamp`); the rest hold the
/// incarnation's epoch.
const PING_TICK_BITS: u32 = 40;

/// An incarnation's ping epoch, from the seed the host gives it (a host gives each incarnation
/// its own: the simulator does). Mixed like a PRNG output so that nearby seeds differ in every
/// bit kept; two incarnations share one with probability 2^-24.
fn ping_epoch(seed: u64) -> u64 {
    crate::prng::Prng::new(seed).next_u64() >> PING_TICK_BITS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KvMachine, MemoryStorage};

    fn incarnation(seed: u64) -> Replica<MemoryStorage, KvMachine> {
        let mut config = Config::new(7, 3, 0);
        config.seed = seed;
        let mut storage = MemoryStorage::new();
        Replica::<MemoryStorage, KvMachine>::format(&config, &mut storage);
        Replica::open(config, storage, KvMachine::new()).expect("formatted")
    }

    #[test]
    fn a_pong_proves_only_a_ping_of_this_incarnation_sent_by_now() {
        let mut before = incarnation(1);
        for _ in 0..30 {
            before.on_tick();
        }
        let stamp = before.ping_stamp();
        assert_eq!(before.echoed_tick(stamp), Some(30));
        // The next incarnation (the host gives it another seed) at the same tick count.
        let mut after = incarnation(2);
        for _ in 0..30 {
            after.on_tick();
        }
        assert_eq!(
            after.echoed_tick(stamp),
            None,
            "an earlier incarnation's ping"
        );
        let later = after.ping_stamp() + 5;
        assert_eq!(after.echoed_tick(later), None, "a ping not sent yet");
    }
}
