//! Client sessions: new requests (a few to the metadata group), resends, replies checked by
//! their group's oracle.

use super::*;

impl Simulation {
    pub(super) fn clients_tick(&mut self) {
        let timeout = self.options.request_timeout_ticks;
        let replica_count = self.options.replica_count;
        for i in 0..self.clients.len() {
            if let Some(action) = self.clients[i].on_tick(self.tick, replica_count, timeout) {
                self.client_send(i, action);
            }
            if self.clients[i].in_flight.is_none() && self.client_wants_request(i) {
                self.ops_issued += 1;
                let op = workload::random_op(
                    &mut self.prng_workload,
                    self.options.key_count,
                    i as u8,
                    self.ops_issued,
                    self.clients[i].group,
                );
                let client = &mut self.clients[i];
                if client.draining && client.session != 0 {
                    client.liveness_requests -= 1;
                }
                let action =
                    client.start_request(CLUSTER, self.tick, Some(op), &mut self.history, timeout);
                self.client_send(i, action);
            }
        }
    }

    pub(super) fn client_wants_request(&mut self, i: usize) -> bool {
        let o = &self.options;
        let client = &mut self.clients[i];
        if client.draining {
            return client.liveness_requests > 0;
        }
        if client.session == 0 {
            return true;
        }
        // With several groups, a few operations go to the metadata group (a quarter of a
        // partition group's rate), as cluster metadata changes less often than partitions.
        let metadata = o.group_count > 1 && client.group == 0;
        if o.closed_loop {
            return !metadata || self.prng_workload.chance(0.25);
        }
        if client.idle {
            client.idle = !self.prng_workload.chance(o.idle_off_probability);
            return false;
        }
        if self.prng_workload.chance(o.idle_on_probability) {
            client.idle = true;
            return false;
        }
        let p = if metadata {
            o.request_probability / 4.0
        } else {
            o.request_probability
        };
        self.prng_workload.chance(p)
    }

    /// Sends a client's request into the network, traced.
    pub(crate) fn client_send(&mut self, i: usize, action: ClientAction) {
        let ClientAction::Send { to, message } = action;
        let request = match message.header.command {
            wire::Command::Request(r) => r.request,
            _ => 0,
        };
        self.trace.record(Event::Request {
            tick: self.tick,
            client: i as u8,
            request,
            to,
        });
        let node = self.options.replica_count as usize + self.clients[i].process as usize;
        self.network
            .submit(node, to as usize, message.encode(), self.tick);
    }

    /// A message reached client process `process`: its session in the message's group takes it.
    pub(super) fn deliver_to_client(&mut self, process: usize, message: Message) {
        let Some(g) = self.group_of(&message) else {
            return; // No session of ours is in that namespace.
        };
        let i = self.session(process, g);
        let tick = self.tick;
        let client = &mut self.clients[i];
        // An eviction starts a new incarnation: the oracle judges the session it ended.
        let (id_before, session_before) = (client.id, client.session);
        let Some(event) = client.on_message(&message, tick, &mut self.history) else {
            return;
        };
        let id = client.id;
        let result = match event {
            ClientEvent::Registered => {
                let session = client.session;
                self.oracles[g].check_register(tick, id, session)
            }
            ClientEvent::Completed {
                request,
                op,
                call_tick,
                output,
                ..
            } => {
                self.counters.replies += 1;
                self.trace.record(Event::Reply {
                    tick,
                    client: i as u8,
                    request,
                    op,
                });
                self.oracles[g].check_reply(tick, id, request, op, call_tick, &output)
            }
            ClientEvent::Evicted => {
                self.counters.evictions += 1;
                self.trace.record(Event::Evicted {
                    tick,
                    client: i as u8,
                });
                self.oracles[g].check_eviction(tick, id_before, session_before)
            }
        };
        if let Err(v) = result {
            self.fail_in_group(g, v);
        }
    }
}
