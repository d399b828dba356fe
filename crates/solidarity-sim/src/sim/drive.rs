//! How the driver carries out events: arrivals on the network, gossip deliveries, the
//! inputs fed to an engine and every output it gives back (see the parent module's list).

use super::*;

impl Simulation {
    pub(super) fn run_event(&mut self, event: Event) {
        match event {
            Event::Net { from, to, message } => self.arrive(from, to, message),
            Event::SyncFailed {
                requester,
                incarnation,
                responder,
                round,
            } => {
                if self.nodes[requester.0].incarnation == incarnation {
                    self.feed(
                        requester,
                        Input::SyncPage {
                            peer: responder,
                            round,
                            result: Err(SyncFailed("timed out".into())),
                            checked: Vec::new(),
                        },
                    );
                }
            }
            Event::Timer {
                node,
                timer,
                generation,
            } => {
                if self.nodes[node.0].timers.get(&timer) == Some(&generation) {
                    self.feed(node, Input::Timer(timer));
                }
            }
            Event::Heartbeat(node) => {
                let now = self.now();
                let sends = self.nodes[node.0].gossip.heartbeat(now, &mut self.rng);
                self.send_gossip(node, sends);
                self.queue
                    .push_after(self.config.gossip.heartbeat_ms, Event::Heartbeat(node));
            }
        }
    }

    pub(super) fn arrive(&mut self, from: NodeId, to: NodeId, message: NetMessage) {
        if !self.connected.contains(&pair(from, to)) {
            self.network.cut_in_flight();
            // A request-response fails as soon as its connection is gone.
            match message {
                NetMessage::SyncRequest { round, .. } => self.queue.push(
                    self.now(),
                    Event::SyncFailed {
                        requester: from,
                        incarnation: self.nodes[from.0].incarnation,
                        responder: to,
                        round,
                    },
                ),
                NetMessage::SyncPage { round, .. } => self.queue.push(
                    self.now(),
                    Event::SyncFailed {
                        requester: to,
                        incarnation: self.nodes[to.0].incarnation,
                        responder: from,
                        round,
                    },
                ),
                NetMessage::Gossip(_) => {}
            }
            return;
        }
        match message {
            NetMessage::Gossip(wire) => {
                let now = self.now();
                let step = self.nodes[to.0].gossip.receive(from, wire, now);
                self.send_gossip(to, step.send);
                if let Some(delivery) = step.deliver {
                    self.deliver(to, delivery);
                }
            }
            NetMessage::SyncRequest { round, bytes } => {
                let token = AnswerToken(self.next_token(to));
                self.nodes[to.0].answers.insert(token, (from, round));
                self.feed(
                    to,
                    Input::SyncRequest {
                        peer: from,
                        token,
                        bytes: bytes.to_vec(),
                    },
                );
            }
            NetMessage::SyncPage { round, bytes } => self.feed(
                to,
                Input::SyncPage {
                    peer: from,
                    round,
                    result: Ok(bytes.to_vec()),
                    checked: Vec::new(),
                },
            ),
        }
    }

    pub(super) fn deliver(&mut self, node: NodeId, delivery: Delivery) {
        let token = GossipToken(self.next_token(node));
        let peer = delivery.from;
        let bytes = delivery.bytes.to_vec();
        self.nodes[node.0].deliveries.insert(token, delivery);
        self.feed(node, Input::Gossip { peer, token, bytes });
    }

    pub(super) fn send(&mut self, from: NodeId, to: NodeId, message: NetMessage) -> bool {
        if !self.connected.contains(&pair(from, to)) {
            self.network.cut_in_flight();
            return false;
        }
        match self.network.transit(from, to, &mut self.rng) {
            Some(delay) => {
                self.queue
                    .push_after(delay, Event::Net { from, to, message });
                true
            }
            None => false,
        }
    }

    pub(super) fn send_gossip(&mut self, from: NodeId, sends: Vec<(NodeId, GossipWire)>) {
        for (to, wire) in sends {
            self.send(from, to, NetMessage::Gossip(wire));
        }
    }

    /// Feeds `input` to `node`'s engine and carries out its outputs, and those of the
    /// completions they cause, until none is left.
    pub(super) fn feed(&mut self, node: NodeId, input: Input<NodeId>) {
        if !self.nodes[node.0].running {
            return;
        }
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            self.inputs += 1;
            let now = self.local_now(node);
            let engine = &mut self.nodes[node.0].engine;
            let outputs = engine.handle(now, input);
            // The daemon counts these as metrics; the simulation needs only the verdicts.
            engine.take_judged();
            for output in outputs {
                self.carry_out(node, output, &mut inputs);
            }
        }
    }

    pub(super) fn carry_out(
        &mut self,
        node: NodeId,
        output: Output<NodeId>,
        inputs: &mut VecDeque<Input<NodeId>>,
    ) {
        let now = self.now();
        match output {
            Output::Verdict { token, acceptance } => {
                let state = &mut self.nodes[node.0];
                let Some(delivery) = state.deliveries.remove(&token) else {
                    return;
                };
                match acceptance {
                    Acceptance::Accept => state.verdicts.0 += 1,
                    Acceptance::Ignore => state.verdicts.1 += 1,
                    Acceptance::Reject => state.verdicts.2 += 1,
                }
                let sends = state
                    .gossip
                    .verdict(&delivery, acceptance == Acceptance::Accept);
                self.send_gossip(node, sends);
            }
            Output::Write {
                write,
                message,
                durable,
            } => {
                let store = &self.nodes[node.0].store;
                let result = store
                    .insert_batch(&[message])
                    .and_then(|outcomes| {
                        if durable {
                            store.flush()?;
                        }
                        Ok(outcomes)
                    })
                    .map_err(|error| WriteFailed(error.to_string()))
                    .map(|outcomes| match outcomes.first() {
                        Some(InsertOutcome::Stored) => WriteOutcome::Stored,
                        Some(InsertOutcome::AlreadyStored) => WriteOutcome::AlreadyStored,
                        Some(InsertOutcome::SeqConflict) | None => WriteOutcome::SeqConflict,
                    });
                inputs.push_back(Input::WriteDone { write, result });
            }
            Output::RecordFork {
                evidence,
                detected_at,
                from_seq,
            } => {
                // A failed write of the memory store is a bug of the store: the run stops.
                self.nodes[node.0]
                    .store
                    .record_fork(&evidence, detected_at, from_seq)
                    .expect("the memory store records fork evidence");
            }
            Output::Flush => {
                self.nodes[node.0]
                    .store
                    .flush()
                    .expect("the memory store flushes");
            }
            Output::RecordOwnHead { seq, id } => {
                self.nodes[node.0].own_head = Some((seq, id));
            }
            Output::RecordSettled { ids } => self.nodes[node.0].settled = ids,
            // Simulated nodes never import (the daemon's `solidarity import`).
            Output::RecordRestoring { .. } => {}
            Output::ClearCompromise { key, .. } => {
                self.nodes[node.0]
                    .store
                    .clear_compromise(&key)
                    .expect("the memory store clears a compromise");
            }
            Output::Expire { now_ms } => {
                self.nodes[node.0]
                    .store
                    .expire(now_ms)
                    .expect("the memory store expires messages");
                inputs.push_back(Input::ExpiryDone);
            }
            Output::Publish { envelope } => {
                let sends = self.nodes[node.0].gossip.publish(Arc::from(envelope), now);
                self.send_gossip(node, sends);
            }
            Output::SendSync {
                peer,
                round,
                request,
            } => {
                self.nodes[node.0].sync_requests += 1;
                let message = NetMessage::SyncRequest {
                    round,
                    bytes: Arc::from(request),
                };
                if !self.send(node, peer, message) {
                    self.sync_fails_later(node, peer, round);
                }
            }
            Output::AnswerSync { token, response } => {
                let Some((requester, round)) = self.nodes[node.0].answers.remove(&token) else {
                    return;
                };
                let message = NetMessage::SyncPage {
                    round,
                    bytes: Arc::from(response),
                };
                if !self.send(node, requester, message) {
                    self.sync_fails_later(requester, node, round);
                }
            }
            Output::Allow { key, .. } => {
                if let Some(other) = self.node_of(&key) {
                    self.nodes[node.0].admitted.insert(other);
                    self.refresh_link(node, other);
                }
            }
            Output::Disallow { key } => {
                if let Some(other) = self.node_of(&key) {
                    self.nodes[node.0].admitted.remove(&other);
                    self.refresh_link(node, other);
                }
            }
            Output::Notice(notice) => self.nodes[node.0].notices.push((now, notice)),
            Output::Reply { reply, .. } => match reply {
                Reply::Signed { id } => self.nodes[node.0].acknowledged.push((now, id)),
                Reply::Refused(why) => self.nodes[node.0].refused.push(why.message),
                Reply::Imported(_) => {}
            },
            Output::Schedule { timer, at_ms } => {
                // Tokens never repeat, also across restarts: a stale timer never fires.
                let generation = self.next_token(node);
                self.nodes[node.0].timers.insert(timer, generation);
                let local_zero = self.network.local_time(node, self.config.epoch_ms, 0);
                let at = at_ms.saturating_sub(local_zero);
                self.queue.push(
                    at,
                    Event::Timer {
                        node,
                        timer,
                        generation,
                    },
                );
            }
        }
    }

    pub(super) fn sync_fails_later(
        &mut self,
        requester: NodeId,
        responder: NodeId,
        round: SyncRound,
    ) {
        let incarnation = self.nodes[requester.0].incarnation;
        self.queue.push_after(
            self.config.sync_timeout_ms,
            Event::SyncFailed {
                requester,
                incarnation,
                responder,
                round,
            },
        );
    }

    pub(super) fn apply_link_changes(&mut self, changes: Vec<LinkChange>) {
        for change in changes {
            self.refresh_link(change.a, change.b);
        }
    }

    pub(super) fn refresh_all_links(&mut self) {
        for index in 0..self.nodes.len() {
            let node = NodeId(index);
            let neighbours = self.network.neighbours(node).to_vec();
            for other in neighbours.into_iter().filter(|other| *other > node) {
                self.refresh_link(node, other);
            }
        }
    }

    /// Opens or closes the connection between `a` and `b` to match the link and what each
    /// admits, telling both gossip layers and engines.
    pub(super) fn refresh_link(&mut self, a: NodeId, b: NodeId) {
        if a == b {
            return;
        }
        let key = pair(a, b);
        let open = self.network.link_up(a, b)
            && self.nodes[a.0].running
            && self.nodes[b.0].running
            && self.nodes[a.0].admitted.contains(&b)
            && self.nodes[b.0].admitted.contains(&a);
        if open == self.connected.contains(&key) {
            return;
        }
        if open {
            self.connected.insert(key);
            for (this, other) in [(a, b), (b, a)] {
                self.nodes[this.0].gossip.peer_up(other);
                let peer_key = self.federation.members[other.0];
                self.feed(
                    this,
                    Input::PeerConnected {
                        peer: other,
                        key: peer_key,
                    },
                );
            }
        } else {
            self.connected.remove(&key);
            for (this, other) in [(a, b), (b, a)] {
                self.nodes[this.0].gossip.peer_down(other);
                self.feed(this, Input::PeerDisconnected { peer: other });
            }
        }
    }
}
