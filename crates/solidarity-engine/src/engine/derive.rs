//! What the engine derives from what it holds: trust (and whom to admit), canary
//! changes, and the validation view of the store with the writes in flight.

use super::*;

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    /// Reports each change of a trusted member's canary state once.
    pub(super) fn check_canaries(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        let trusted: Vec<AuthorKey> = self
            .members
            .iter()
            .filter(|(_, listed)| listed.standing == Standing::Trusted)
            .map(|(key, _)| *key)
            .collect();
        for key in trusted {
            let Some(view) = self.canary(&key, now_ms) else {
                continue;
            };
            match self.canary_watch.note(key, view.state) {
                Some(CanaryChange::Alarm(state)) => {
                    out.push(Output::Notice(Notice::Canary { key, state }));
                }
                Some(CanaryChange::BackToNormal) => out.push(Output::Notice(Notice::Canary {
                    key,
                    state: view.state,
                })),
                Some(CanaryChange::FirstOk) | None => {}
            }
        }
    }

    pub(super) fn trust(&self) -> Trust<'_> {
        Trust {
            me: &self.me,
            me_trusted: !self.compromised.contains_key(&self.me)
                && self.revocation_fact(&self.me).is_none(),
            members: &self.members,
        }
    }

    pub(super) fn revocation_fact(&self, key: &AuthorKey) -> Option<RevocationFact> {
        trust::revocation_of(key, &self.statements, &self.identities())
    }

    pub(super) fn validate(
        &self,
        bytes: &[u8],
        now_ms: u64,
        checked: Option<SignatureChecked>,
    ) -> Verdict {
        let lookup = EngineLookup {
            store: &self.store,
            pending: &self.pending,
            pending_chain: &self.pending_chain,
        };
        solidarity_proto::validate_checked(
            bytes,
            now_ms,
            &self.config.federation,
            &self.trust(),
            &lookup,
            checked,
        )
    }

    /// The members as trust derives them at `now_ms` (see `trust::listed`).
    pub(super) fn derive_members(&self, now_ms: u64) -> BTreeMap<AuthorKey, Listed> {
        let admin_keys: BTreeSet<AuthorKey> = self
            .admin_list
            .iter()
            .filter(|listed| !listed.identity)
            .map(|listed| listed.key)
            .collect();
        let forked = self
            .compromised
            .iter()
            .map(|(key, state)| (*key, state.detected_at))
            .collect();
        trust::listed(TrustInputs {
            me: &self.me,
            admin_keys: &admin_keys,
            identities: &self.identities(),
            statements: &self.statements,
            vouches: &self.vouches,
            forked: &forked,
            vouch_threshold: self.config.vouch_threshold,
            now_ms,
        })
    }

    /// Derives trust again and says whom to admit or refuse now.
    pub(super) fn recompute_trust(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        let members = self.derive_members(now_ms);
        let identities = self.identities();
        self.members_version = self.members_version.wrapping_add(1);
        self.next_certificate_bound = self.next_certificate_bound(now_ms);
        // What revoked a key under this list stays in force under the next (SPEC §13.4).
        Arc::make_mut(&mut self.statements).settle(&identities);
        let settled = self.statements.settled();
        if settled.len() > self.settled_recorded {
            self.settled_recorded = settled.len();
            out.push(Output::RecordSettled {
                ids: settled.clone(),
            });
        }
        let trusted = |members: &BTreeMap<AuthorKey, Listed>, key: &AuthorKey| {
            members
                .get(key)
                .is_some_and(|listed| listed.standing == Standing::Trusted)
        };
        for key in self.members.keys() {
            if trusted(&self.members, key) && !trusted(&members, key) {
                out.push(Output::Disallow { key: *key });
                out.push(Output::Notice(Notice::TrustChanged {
                    key: *key,
                    trusted: false,
                }));
            }
        }
        let admin_addresses: HashMap<AuthorKey, &[String]> = self
            .admin_list
            .iter()
            .map(|listed| (listed.key, listed.addresses.as_slice()))
            .collect();
        for (key, listed) in &members {
            if listed.standing != Standing::Trusted {
                continue;
            }
            if !trusted(&self.members, key) {
                out.push(Output::Notice(Notice::TrustChanged {
                    key: *key,
                    trusted: true,
                }));
            }
            let addresses = match &listed.why {
                trust::Why::Admin => admin_addresses
                    .get(key)
                    .map(|addresses| addresses.to_vec())
                    .unwrap_or_default(),
                trust::Why::Certified { addresses, .. } => addresses.clone(),
                trust::Why::Vouched { by } => {
                    crate::vouch_labels::vouched_label(&self.vouches, key, by, |_| false)
                        .map(|label| label.addresses)
                        .unwrap_or_default()
                }
            };
            out.push(Output::Allow {
                key: *key,
                addresses,
            });
        }
        let commitments: HashMap<AuthorKey, Option<[u8; 32]>> = self
            .admin_list
            .iter()
            .map(|listed| (listed.key, listed.duress_commitment))
            .collect();
        self.duress_commitments = members
            .iter()
            .filter_map(|(key, listed)| {
                let card_of = match &listed.why {
                    trust::Why::Admin => key,
                    trust::Why::Certified { identity, .. } => identity,
                    trust::Why::Vouched { .. } => return None,
                };
                Some((*key, (*commitments.get(card_of)?)?))
            })
            .collect();
        self.members = members;
    }
}
