//! Per-tick oracles: commit monotonicity, agreement on one canonical committed chain, and the
//! reply oracle (every reply equals a reference model applied in commit order, and its op
//! committed inside the request's call..return window).

use super::Violation;
use crate::node::{Glance, GroupView, ReferenceMachine};
use consensus::wire::Operation;
use consensus::KvOutput;
use std::collections::BTreeMap;

/// What the reference model says op `op` must answer.
#[derive(Debug, Clone)]
struct Expected {
    client: u128,
    request: u32,
    /// None when the op was skipped (its session was evicted before it executed).
    output: Option<bytes::Bytes>,
}

pub struct Oracle {
    /// Checksum of each committed op (index = op; op 0 is the root).
    canonical: Vec<u128>,
    /// Tick at which each op was first executed anywhere.
    committed_tick: Vec<u64>,
    expected: Vec<Expected>,
    /// The groups' state machine, driven by the committed ops in commit order.
    reference: Box<dyn ReferenceMachine>,
    /// The reference client table: client -> (session, last request).
    sessions: BTreeMap<u128, (u64, u32)>,
    clients_max: usize,
    /// Per replica: the commit_min seen at the last check while it was up.
    commit_seen: Vec<u64>,
    /// Digest of the replicated state after each op some replica ended a step at.
    state_digests: BTreeMap<u64, u128>,
    /// Checksum of the checkpoint each replica took (or installed) at each checkpoint op.
    checkpoints: BTreeMap<u64, (u128, u8)>,
    /// Timestamp of the newest committed op: timestamps strictly increase along the chain
    /// (a state machine that reads time must never see it go backwards, even across a
    /// failover).
    timestamp_last: u64,
    pub requests_committed: u64,
}

fn fail(invariant: &'static str, tick: u64, replica: Option<u8>, message: String) -> Violation {
    Violation {
        invariant,
        tick,
        replica,
        message,
    }
}

impl Oracle {
    pub fn new(
        replica_count: u8,
        root_checksum: u128,
        clients_max: usize,
        reference: Box<dyn ReferenceMachine>,
    ) -> Oracle {
        Oracle {
            canonical: vec![root_checksum],
            committed_tick: vec![0],
            expected: vec![Expected {
                client: 0,
                request: 0,
                output: None,
            }],
            reference,
            sessions: BTreeMap::new(),
            clients_max,
            commit_seen: vec![0; replica_count as usize],
            state_digests: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            timestamp_last: 0,
            requests_committed: 0,
        }
    }

    /// Highest op committed anywhere.
    pub fn commit_max(&self) -> u64 {
        self.canonical.len() as u64 - 1
    }

    pub fn checksum(&self, op: u64) -> Option<u128> {
        self.canonical.get(op as usize).copied()
    }

    /// A replica restarted: it replays from its durable checkpoint (whose ops were checked
    /// when first executed; the checkpoint itself is checked by `check_checkpoint`).
    pub fn on_restart(&mut self, replica: u8) {
        self.commit_seen[replica as usize] = 0;
    }

    /// Checks what replica `r` executed since the last check.
    pub fn check_replica(
        &mut self,
        tick: u64,
        r: u8,
        replica: &dyn GroupView,
        glance: &Glance,
    ) -> Result<(), Violation> {
        if glance.forks_detected > 0 {
            let message = format!(
                "replica {r} was sent a log that contradicts an op it executed: {}",
                replica.describe()
            );
            return Err(fail("fork_detected", tick, Some(r), message));
        }
        if glance.status == consensus::Status::Recovering {
            // Nothing executed yet in this incarnation (or its checkpoint was lost and it
            // waits for a state transfer): nothing to check.
            return Ok(());
        }
        let seen = self.commit_seen[r as usize];
        let commit = glance.commit_min;
        if commit < seen {
            let message = format!("commit_min went from {seen} back to {commit}");
            return Err(fail("commit_monotonicity", tick, Some(r), message));
        }
        for op in seen + 1..=commit {
            let Some(header) = replica.header(op) else {
                // Ops below a checkpoint installed by state transfer were never executed
                // here: the checkpoint stands for them (checked above).
                if op < replica.checkpoint_op() && (op as usize) < self.canonical.len() {
                    continue;
                }
                let message = format!("executed op {op} has no header");
                return Err(fail("agreement", tick, Some(r), message));
            };
            if let Some(&canonical) = self.canonical.get(op as usize) {
                if canonical != header.checksum {
                    let message = format!(
                        "op {op} executed as {:032x}, but the cluster committed {canonical:032x}",
                        header.checksum
                    );
                    return Err(fail("agreement", tick, Some(r), message));
                }
                continue;
            }
            assert_eq!(
                op as usize,
                self.canonical.len(),
                "ops are executed in order"
            );
            self.extend_canonical(tick, r, replica, op)?;
        }
        self.check_checkpoint(tick, r, replica)?;
        // Every step that executed ops ends at an op whose state any other replica that ended
        // a step there must share (backups execute one op a step, so nearly every op is
        // compared; the digests are kept up to date by the state machine, so this is cheap).
        if commit > seen {
            self.check_state(tick, r, replica, commit)?;
        }
        self.commit_seen[r as usize] = commit;
        Ok(())
    }

    /// Replicas hold identical checkpoints: the same bytes (state machine, client table and
    /// the header of the op) at the same op, and that op is the cluster's committed one.
    fn check_checkpoint(
        &mut self,
        tick: u64,
        r: u8,
        replica: &dyn GroupView,
    ) -> Result<(), Violation> {
        let op = replica.checkpoint_op();
        if op == 0 || replica.status() == consensus::Status::Recovering {
            return Ok(());
        }
        let checksum = replica.checkpoint_checksum();
        let (expected, by) = *self.checkpoints.entry(op).or_insert((checksum, r));
        if expected != checksum {
            let message = format!(
                "checkpoint at op {op} is {checksum:032x}, replica {by} checkpointed {expected:032x}"
            );
            return Err(fail("checkpoint_divergence", tick, Some(r), message));
        }
        let header = replica.header(op).map(|h| h.checksum);
        match self.canonical.get(op as usize) {
            Some(&canonical) if Some(canonical) == header => Ok(()),
            canonical => {
                let message = format!(
                    "checkpoint at op {op} anchors {header:x?}, the cluster committed {canonical:x?}"
                );
                Err(fail("checkpoint_divergence", tick, Some(r), message))
            }
        }
    }

    /// Replicas that executed the same ops hold the same state: the state machine and the
    /// client table (with its cached replies) must digest alike at every checked op.
    fn check_state(
        &mut self,
        tick: u64,
        r: u8,
        replica: &dyn GroupView,
        op: u64,
    ) -> Result<(), Violation> {
        let digest = replica.state_digest();
        let expected = *self.state_digests.entry(op).or_insert(digest);
        if expected != digest {
            let message = format!(
                "state after op {op} digests to {digest:032x}, another replica had {expected:032x}"
            );
            return Err(fail("state_divergence", tick, Some(r), message));
        }
        Ok(())
    }

    /// The first execution of `op` anywhere: it joins the canonical chain and the reference
    /// model executes it.
    fn extend_canonical(
        &mut self,
        tick: u64,
        r: u8,
        replica: &dyn GroupView,
        op: u64,
    ) -> Result<(), Violation> {
        let prepare = replica.prepare(op).ok_or_else(|| {
            fail(
                "agreement",
                tick,
                Some(r),
                format!("executed op {op} unreadable"),
            )
        })?;
        let p = *prepare.header.prepare();
        if p.parent != self.canonical[op as usize - 1] {
            let message = format!("op {op} does not chain to committed op {}", op - 1);
            return Err(fail("agreement", tick, Some(r), message));
        }
        if p.timestamp <= self.timestamp_last {
            let message = format!(
                "op {op} committed with timestamp {}, not after op {}'s {}",
                p.timestamp,
                op - 1,
                self.timestamp_last
            );
            return Err(fail("timestamp_order", tick, Some(r), message));
        }
        self.timestamp_last = p.timestamp;
        let output = match p.operation {
            Operation::Register => {
                self.register(p.client, op);
                Some(bytes::Bytes::new())
            }
            Operation::StateMachine => match self.sessions.get_mut(&p.client) {
                Some((session, last)) if *session == p.session => {
                    if p.request > *last + 1 {
                        let message = format!(
                            "client {:#x} request {} committed at op {op} after request {last}",
                            p.client, p.request
                        );
                        return Err(fail("request_order", tick, Some(r), message));
                    }
                    if p.request <= *last {
                        let message = format!(
                            "client {:#x} request {} committed again at op {op} (last {last})",
                            p.client, p.request
                        );
                        return Err(fail("at_most_once", tick, Some(r), message));
                    }
                    *last = p.request;
                    self.requests_committed += 1;
                    Some(self.reference.execute(op, p.timestamp, &prepare.body))
                }
                _ => None,
            },
            Operation::Root => {
                return Err(fail("agreement", tick, Some(r), format!("root at op {op}")));
            }
        };
        self.canonical.push(prepare.header.checksum);
        self.committed_tick.push(tick);
        self.expected.push(Expected {
            client: p.client,
            request: p.request,
            output,
        });
        Ok(())
    }

    /// Mirrors the client table's deterministic eviction: the oldest session goes.
    fn register(&mut self, client: u128, op: u64) {
        if !self.sessions.contains_key(&client) && self.sessions.len() == self.clients_max {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(&c, &(session, _))| (session, c))
                .map(|(&c, _)| c)
                .expect("full");
            self.sessions.remove(&oldest);
        }
        self.sessions.insert(client, (op, 0));
    }

    /// Checks an eviction a client accepted: the committed chain must have ended that session
    /// (a register evicted it). A replica that evicts a live session (a deposed primary that
    /// never executed the register, or one answering before it executed every commit) makes
    /// the client abandon a request that may have committed.
    pub fn check_eviction(&self, tick: u64, client: u128, session: u64) -> Result<(), Violation> {
        if self
            .sessions
            .get(&client)
            .is_some_and(|&(s, _)| s == session)
        {
            let message = format!(
                "client {client:#x} evicted from session {session}, which the committed chain still holds"
            );
            return Err(fail("eviction", tick, None, message));
        }
        Ok(())
    }

    /// Checks a reply a client accepted: it answers a committed op of that client and
    /// request, equals the reference model's output, and the op committed inside the
    /// request's window.
    pub fn check_reply(
        &self,
        tick: u64,
        client: u128,
        request: u32,
        op: u64,
        call_tick: u64,
        output: &Option<KvOutput>,
    ) -> Result<(), Violation> {
        let reply_fail = |message: String| Err(fail("reply_oracle", tick, None, message));
        let Some(expected) = self.expected.get(op as usize) else {
            return reply_fail(format!("reply for op {op}, which no replica executed"));
        };
        if expected.client != client || expected.request != request {
            return reply_fail(format!(
                "reply to client {client:#x} request {request} names op {op}, which is request {} of client {:#x}",
                expected.request, expected.client
            ));
        }
        let expected_output = expected.output.as_ref().and_then(|b| KvOutput::decode(b));
        if &expected_output != output {
            return reply_fail(format!(
                "op {op}: reply {output:?}, reference model {expected_output:?}"
            ));
        }
        let committed = self.committed_tick[op as usize];
        if committed < call_tick || committed > tick {
            return Err(fail(
                "reply_window",
                tick,
                None,
                format!("op {op} committed at tick {committed}, outside the request's window {call_tick}..{tick}"),
            ));
        }
        Ok(())
    }

    /// A register reply must carry the op of a committed register by that client.
    pub fn check_register(&self, tick: u64, client: u128, session: u64) -> Result<(), Violation> {
        match self.expected.get(session as usize) {
            Some(e) if e.client == client && e.request == 0 => Ok(()),
            _ => Err(fail(
                "reply_oracle",
                tick,
                None,
                format!("client {client:#x} got session {session}, not a committed register of it"),
            )),
        }
    }
}
