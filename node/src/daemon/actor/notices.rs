//! The admin's journal of what the engine noticed (see `trust_log`): each event once, as
//! the node learns it. Lines above debug level that journals may ship elsewhere never name
//! a member in a canary or budget event; trust events name the key for the admin.

use std::collections::BTreeMap;

use solidarity_engine::Notice;

use crate::notify::reports::Report;
use solidarity_proto::AuthorKey;
use solidarity_proto::trust::{Standing, Why};

use super::super::directory::Entry;
use super::super::trust_log::{self, Named};
use super::NodeActor;

impl NodeActor {
    pub(super) fn notice(&mut self, notice: Notice) {
        match notice {
            Notice::AlertReceived { id, author } => {
                tracing::debug!(id = %id.short(), "alert received and stored");
                // Named here: the snapshot's member list may lag a moment behind.
                let author_name = self.member_name(&author);
                self.notify_feed.report(Report::Alert {
                    id,
                    author,
                    author_name,
                });
            }
            Notice::AlertChanged { alert, update } => {
                tracing::debug!(alert = %alert.short(), "alert update received and stored");
                self.notify_feed.report(Report::Update { alert, update });
            }
            Notice::Revoked { key, signer, since } => {
                self.log_revocation_outside_members(&key, &signer, since);
                self.stale.alerts = true;
            }
            Notice::Fork {
                key,
                detected_at,
                from_seq,
            } => {
                let (name, collective) = self.name_and_collective(&key);
                trust_log::fork_detected(
                    &Named {
                        key: &key,
                        name: &name,
                        collective: &collective,
                    },
                    key == self.me,
                    detected_at,
                    from_seq,
                );
                self.publish_snapshot();
            }
            Notice::QuotaHit { author, why } => {
                // Member names are admin-view data: named at debug level only.
                tracing::warn!(
                    budget = why.describe(),
                    "a member is over its budget; its further messages are ignored for now (see `solidarity member list`)"
                );
                tracing::debug!(member = %self.member_name(&author), budget = why.describe(), "over budget");
                self.stale.members = true;
            }
            Notice::Canary { key, state } => {
                let member = self.member_name(&key);
                // Journals are often shipped elsewhere: above debug, one line that neither
                // names the member nor tells duress from silence or withdrawn codes.
                match state {
                    solidarity_control::CanaryState::Ok => {
                        tracing::info!("a member's canary is back to normal");
                        tracing::debug!(%member, "canary back to normal");
                    }
                    _ => {
                        tracing::warn!(
                            "CANARY: a member's canary changed; see `solidarity peers` or the admin page"
                        );
                        tracing::debug!(%member, ?state, "canary state");
                    }
                }
                self.publish_snapshot();
            }
            Notice::CertificateEnding {
                key,
                identity,
                valid_until,
            } => {
                let (name, collective) = self.name_and_collective(&key);
                trust_log::certificate_ending(
                    &Named {
                        key: &key,
                        name: &name,
                        collective: &collective,
                    },
                    &self.member_name(&identity),
                    valid_until,
                );
            }
            Notice::CertificatesChanged => {
                tracing::info!("certificates changed the trusted members");
            }
            // Logged as the change of the key's standing, once the directory names it.
            Notice::TrustChanged { .. } => {}
        }
    }

    /// Logs each change of a listed key's standing once (forks are logged where they are
    /// detected, with their evidence); `before` is the directory before the change.
    pub(super) fn log_standing_changes(&self, before: &BTreeMap<AuthorKey, Entry>) {
        for (key, entry) in self.directory.entries() {
            if before.get(key).map(|old| old.standing) == Some(entry.standing) {
                continue;
            }
            let named = Named {
                key,
                name: &entry.name,
                collective: &entry.collective,
            };
            match entry.standing {
                Standing::Trusted => {
                    if let Why::Vouched { by } = &entry.why {
                        tracing::info!(member = %entry.name, vouchers = by.len(), "member trusted by vouching");
                    }
                }
                Standing::Forked { .. } => {}
                Standing::Revoked(fact) => {
                    trust_log::key_revoked(
                        &named,
                        &self.signer_text(key, &fact.signer),
                        fact.since,
                    );
                }
                Standing::IdentityRevoked {
                    identity,
                    revocation,
                } => trust_log::identity_revoked_for(
                    &named,
                    &self.member_name(&identity),
                    revocation.since,
                ),
                Standing::CertificateEnded { at } => {
                    if let Why::Certified { identity, .. } = &entry.why {
                        trust_log::certificate_ended(&named, &self.member_name(identity), at);
                    }
                }
            }
        }
    }

    /// Logs a revocation of a key that is not a listed member (those are logged as their
    /// standing changes): this node's own key, an identity on the admin's list, or a key
    /// this node never trusted. The engine tells of a revocation only when it changes what
    /// holds, so a key signing revocations of itself at full speed is logged once.
    fn log_revocation_outside_members(&self, revoked: &AuthorKey, signer: &AuthorKey, since: u64) {
        if self.engine.members().contains_key(revoked) {
            return;
        }
        if *revoked == self.me {
            trust_log::own_key_revoked(revoked, &self.signer_text(revoked, signer), since);
        } else if self.engine.identities().contains(revoked) {
            let (name, collective) = self.name_and_collective(revoked);
            let certified = self
                .engine
                .members()
                .values()
                .filter(|listed| {
                    matches!(listed.standing, Standing::IdentityRevoked { identity, .. } if identity == *revoked)
                })
                .count();
            trust_log::identity_revoked(
                &Named {
                    key: revoked,
                    name: &name,
                    collective: &collective,
                },
                since,
                certified,
            );
        } else {
            tracing::debug!(signed_by = %signer.short(), "stored the revocation of a key this node never trusted");
        }
    }

    /// Who signed a revocation of `key`, for the admin.
    fn signer_text(&self, key: &AuthorKey, signer: &AuthorKey) -> String {
        if signer == key {
            "the key itself".to_owned()
        } else {
            format!("identity {}", self.member_name(signer))
        }
    }

    /// A key's name: a member's, an identity's from the admin's list, else its short form.
    pub(super) fn member_name(&self, key: &AuthorKey) -> String {
        self.name_and_collective(key).0
    }

    /// A key's name and collective (see [`Self::member_name`]).
    pub(super) fn name_and_collective(&self, key: &AuthorKey) -> (String, String) {
        if let Some(named) = self.directory.name_and_collective(key) {
            return named;
        }
        if *key == self.me {
            let collective = self.identity.config.collective.clone();
            return ("this node".to_owned(), collective.unwrap_or_default());
        }
        (key.short(), "unknown".to_owned())
    }
}
