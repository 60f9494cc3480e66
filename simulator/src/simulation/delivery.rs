//! The network's deliveries: decoded, traced, and routed to a node (by namespace, inside the
//! node) or to a client process (to its session in the message's group).

use super::*;

impl Simulation {
    pub(super) fn deliver(&mut self) {
        let mut deliveries = std::mem::take(&mut self.deliveries);
        self.network.drain_ready(self.tick, &mut deliveries);
        for (from, to, bytes) in deliveries.drain(..) {
            if self.violation.is_some() {
                break;
            }
            let message = match wire::decode(&bytes, &self.ctx) {
                Ok(m) => m,
                Err(_) => {
                    self.counters.packets_corrupt += 1;
                    self.trace.record(Event::Corrupt {
                        tick: self.tick,
                        from,
                        to,
                    });
                    continue;
                }
            };
            if let Some(filter) = self.filter.as_mut() {
                if !filter(from, to, &message) {
                    continue;
                }
            }
            self.trace.record(Event::Deliver {
                tick: self.tick,
                from,
                to,
                group: self.group_of(&message).map_or(u8::MAX, |g| g as u8),
                command: message.header.command.name(),
                checksum: message.header.checksum as u64,
            });
            let replica_count = self.options.replica_count as usize;
            if to < replica_count {
                self.deliver_to_replica(from, to as u8, message);
            } else {
                self.deliver_to_client(to - replica_count, message);
            }
        }
        self.deliveries = deliveries;
    }

    pub(super) fn deliver_to_replica(&mut self, from: usize, to: u8, message: Message) {
        if self.is_paused(to) {
            return self.hold_for_paused(from, to, message);
        }
        let replica_count = self.options.replica_count as usize;
        // The group the header names, if the nodes host it (else the node drops it).
        let group = self.group_of(&message);
        let peer = if from < replica_count {
            Peer::Replica(from as u8)
        } else {
            let session = self.session(from - replica_count, group.unwrap_or(0));
            Peer::Client(self.clients[session].id)
        };
        if let Some(node) = self.cluster.node_mut(to) {
            match cluster::catch(|| node.on_message(peer, message)) {
                Ok(Some(g)) => self.after_replica_step(to, g, Ok(())),
                Ok(None) => {}
                Err(panic) => self.after_replica_step(to, group.unwrap_or(0), Err(panic)),
            }
        }
    }

    /// The group whose namespace `message` carries, if the nodes host it.
    pub(super) fn group_of(&self, message: &Message) -> Option<usize> {
        let g = message
            .header
            .namespace
            .checked_sub(self.options.namespace)?;
        (g < self.options.group_count as u64).then_some(g as usize)
    }

    /// Client process `i`'s session in group `g` (an index into `clients`).
    pub fn session(&self, i: usize, g: usize) -> usize {
        i * self.options.group_count as usize + g
    }
}
