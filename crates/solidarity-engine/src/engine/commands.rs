//! The admin's commands: sign a message, publish a statement signed elsewhere, publish a
//! canary (scheduled, with codes withdrawn or restored, or under duress), and trust a
//! forked key again.

use solidarity_proto::IgnoreReason;
use solidarity_proto::payload::CanaryCode;

use super::*;

/// How many canary intervals a canary lives: old ones are useless once the next are out.
const CANARY_LIFETIMES: u64 = 4;

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    pub(super) fn command(
        &mut self,
        now_ms: u64,
        token: CommandToken,
        command: Command,
        out: &mut Vec<Output<P>>,
    ) {
        let origin = Origin::Local(token);
        match command {
            Command::Sign { body, expires_at } => {
                self.sign(now_ms, origin, *body, expires_at, out);
            }
            Command::PublishStatement { envelope } => {
                self.publish_statement(now_ms, token, envelope, out);
            }
            Command::Canary { withdraw, restore } => {
                let mut codes = self.own_canary_codes();
                codes.retain(|code| !withdraw.contains(code));
                codes.extend(restore.iter().filter(|code| !withdraw.contains(code)));
                codes.sort_unstable();
                codes.dedup();
                let token_bytes = (self.entropy)().to_vec();
                self.publish_canary(now_ms, origin, codes, token_bytes, out);
            }
            Command::Duress { token: duress } => {
                // Looks like any scheduled canary: same statement, same codes.
                let codes = self.own_canary_codes();
                self.publish_canary(now_ms, origin, codes, duress, out);
            }
            Command::Retrust { key } => {
                if self.compromised.remove(&key).is_none() {
                    return refuse(
                        out,
                        token,
                        RefusalCode::NotCompromised,
                        "that key is not marked compromised",
                    );
                }
                tracing::warn!(key = %key.short(), "admin trusts a key again after a fork");
                self.recompute_trust(now_ms, out);
                out.push(Output::ClearCompromise { key, token });
            }
            Command::Import { envelopes } => self.import(now_ms, token, envelopes, out),
        }
    }

    /// The codes this node states now: those of its latest canary, or all at first.
    fn own_canary_codes(&self) -> Vec<CanaryCode> {
        self.canaries
            .get(&self.me)
            .and_then(|kept| kept.last())
            .map_or_else(
                || CanaryCode::ALL.to_vec(),
                |latest| latest.body.codes.clone(),
            )
    }

    fn publish_canary(
        &mut self,
        now_ms: u64,
        origin: Origin,
        codes: Vec<CanaryCode>,
        token: Vec<u8>,
        out: &mut Vec<Output<P>>,
    ) {
        let interval_ms = self.config.canary.interval_ms;
        let canary = Canary {
            statement: self.config.canary.statement.clone(),
            codes,
            interval_secs: interval_ms / 1000,
            token,
        };
        let expires_at = Some(now_ms.saturating_add(interval_ms.saturating_mul(CANARY_LIFETIMES)));
        self.sign(now_ms, origin, Body::Canary(canary), expires_at, out);
    }

    /// The scheduled canary, unless this key is in other hands or signing waits (then the
    /// canary follows once the own chain is back).
    pub(super) fn scheduled_canary(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        if self.compromised.contains_key(&self.me)
            || self.own_chain.paused().is_some()
            || self.revocation_fact(&self.me).is_some()
        {
            return;
        }
        let codes = self.own_canary_codes();
        let token = (self.entropy)().to_vec();
        self.publish_canary(now_ms, Origin::Scheduled, codes, token, out);
    }

    /// Checks a statement signed elsewhere like a received message and queues its durable
    /// write; one already held is published again so every member surely has it.
    fn publish_statement(
        &mut self,
        now_ms: u64,
        token: CommandToken,
        envelope: Vec<u8>,
        out: &mut Vec<Output<P>>,
    ) {
        match self.validate(&envelope, now_ms, None) {
            Verdict::Accept(accepted) if !kinds::is_statement(&accepted.payload.kind) => refuse(
                out,
                token,
                RefusalCode::NotAStatement,
                "only statements (revocations) signed elsewhere can be published this way",
            ),
            Verdict::Accept(accepted) => {
                self.queue_write(*accepted, envelope, Origin::Local(token), out);
            }
            // Held, or being written from the network (not yet durable): it is written again
            // durably, so it is on disk here before the admin hears it is out.
            Verdict::Ignore(IgnoreReason::Duplicate) => match decode_held(&envelope) {
                Some(held) => self.queue_write(held, envelope, Origin::Republish(token), out),
                None => refuse(
                    out,
                    token,
                    RefusalCode::MessageRejected,
                    "refused: the envelope does not decode",
                ),
            },
            Verdict::Ignore(reason) => refuse(
                out,
                token,
                RefusalCode::MessageIgnored,
                format!("refused: {reason}"),
            ),
            Verdict::Reject(reason) => refuse(
                out,
                token,
                RefusalCode::MessageRejected,
                format!("refused: {reason}"),
            ),
            Verdict::Fork(_) => refuse(
                out,
                token,
                RefusalCode::ConflictsWithStored,
                "refused: it conflicts with a stored message",
            ),
        }
    }
}

/// A held message's facts from its envelope (it was valid when it was accepted; its id
/// names these very bytes).
fn decode_held(bytes: &[u8]) -> Option<Accepted> {
    let envelope = Envelope::decode(bytes).ok()?;
    let payload = Payload::decode(&envelope.payload).ok()?;
    let body = Body::decode(&payload.kind, &payload.body).ok()?;
    Some(Accepted {
        id: envelope.id(),
        signer: envelope.signer,
        payload,
        body,
    })
}

/// Answers `token` with a refusal.
pub(super) fn refuse<P>(
    out: &mut Vec<Output<P>>,
    token: CommandToken,
    code: RefusalCode,
    text: impl Into<String>,
) {
    out.push(Output::Reply {
        token,
        reply: Reply::Refused(Refusal::new(code, text)),
    });
}
