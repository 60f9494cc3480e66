//! The durability oracle: nothing a replica says may get ahead of its disk. Checked on every
//! message as it leaves, against what a crash at that instant would leave on the disk:
//! - a prepare_ok names a prepare that is durable in its journal slot (N3);
//! - a message shows a view (and a prepare_ok, do_view_change or start_view a log_view) that
//!   the durable superblock already records (V1, V2).
//!
//! A replica that acted on a write still in flight is caught here at once, without waiting
//! for the crash that would make it matter.

use super::Simulation;
use crate::checker::Violation;
use consensus::wire::{Command, Message};

impl Simulation {
    pub(super) fn check_durable_before_send(&mut self, r: u8, g: usize, message: &Message) {
        if let Err(message) = self.durable_before_send(r, g, message) {
            self.durable_view[r as usize][g] = (0, 0);
            let message = self.in_group(g, message);
            self.violation.get_or_insert(Violation {
                invariant: "durability",
                tick: self.tick,
                replica: Some(r),
                message,
            });
        }
    }

    fn durable_before_send(&mut self, r: u8, g: usize, message: &Message) -> Result<(), String> {
        let Some(node) = self.cluster.node(r) else {
            return Ok(());
        };
        let name = message.header.command.name();
        let view = message.header.view;
        // What the message shows about its sender's view state (a prepare keeps the view it
        // was made in; a start_view_change or request_start_view names a view to move to).
        let (view_shown, log_view_shown) = match message.header.command {
            Command::Prepare(_) | Command::StartViewChange | Command::RequestStartView(_) => (0, 0),
            Command::PrepareOk(_) | Command::StartView(_) => (view, view),
            Command::DoViewChange(d) => (view, d.log_view),
            _ => (view, 0),
        };
        let (known_view, known_log_view) = self.durable_view[r as usize][g];
        // The durable view state only grows until a crash: read the superblock only when the
        // message shows more than was last found durable.
        if view_shown > known_view || log_view_shown > known_log_view {
            // A node that does not say what its disk holds is not checked here.
            if let Some((v, lv)) = node.durable_view(g) {
                if v < view_shown || lv < log_view_shown {
                    return Err(format!(
                        "sent {name} showing view {view_shown} log_view {log_view_shown} while its durable superblock holds view {v} log_view {lv}"
                    ));
                }
                self.durable_view[r as usize][g] = (v, lv);
            }
        }
        if let Command::PrepareOk(ok) = message.header.command {
            // The prepare of the acked op must be durable in its journal slot (N3).
            if let Some(Err(held)) = node.durable_prepare(g, ok.op, ok.prepare_checksum) {
                let (op, checksum) = (ok.op, ok.prepare_checksum);
                return Err(format!(
                    "acked op {op} ({checksum:032x}) while its journal slot durably holds {held}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use consensus::storage::{Storage, Zone};
    use consensus::wire::{Command, Header, Message, Ping, PrepareOk};

    fn settled() -> (Scenario, u8) {
        let mut s = Scenario::new(5, 3, 2);
        s.commit_more(6, 5_000).unwrap();
        let backup = (s.primary().unwrap() + 1) % 3;
        s.catch_up(backup, 5_000).unwrap();
        // Quiet, so no write is still in flight when the tests look at the disk.
        s.stop_clients();
        s.run(200).unwrap();
        (s, backup)
    }

    fn from(s: &Scenario, r: u8, command: Command) -> Message {
        let view = s.replica(r).view();
        let header = Header::new(crate::cluster::CLUSTER, view, r, command);
        Message::new(header, bytes::Bytes::new())
    }

    #[test]
    fn an_ack_of_a_prepare_the_disk_does_not_hold_is_caught() {
        let (mut s, b) = settled();
        let op = s.replica(b).op();
        let checksum = s.replica(b).header(op).unwrap().checksum;
        let ok = PrepareOk {
            prepare_checksum: checksum,
            op,
            prepare_view: s.replica(b).view(),
        };
        let message = from(&s, b, Command::PrepareOk(ok));
        s.sim.check_durable_before_send(b, 0, &message);
        assert!(s.sim.violation.is_none(), "held durably: no violation");
        // The disk loses the prepare (durably) while the replica still believes it holds it.
        let slot = op % s.sim.options.journal_slot_count;
        let storage = s.sim.cluster.storage_mut(b);
        storage.erase(Zone::WalPrepares, slot);
        storage.advance(u64::MAX);
        s.sim.check_durable_before_send(b, 0, &message);
        let v = s.sim.violation.take().expect("caught");
        assert_eq!(v.invariant, "durability");
        assert!(
            v.message.contains(&format!("acked op {op}")),
            "{}",
            v.message
        );
    }

    #[test]
    fn a_message_showing_a_view_the_superblock_does_not_hold_is_caught() {
        let (mut s, b) = settled();
        let ping = Ping {
            timestamp_monotonic: 1,
            checkpoint_op: 0,
        };
        let mut message = from(&s, b, Command::Ping(ping));
        s.sim.check_durable_before_send(b, 0, &message);
        assert!(s.sim.violation.is_none());
        message.header.view += 1;
        s.sim.check_durable_before_send(b, 0, &message);
        let v = s.sim.violation.take().expect("caught");
        assert!(v.message.contains("durable superblock"), "{}", v.message);
    }
}
