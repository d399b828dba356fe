//! What the status page and `solidarity status` / `peers` show: the member list (from the
//! engine's trust and canaries, named by the directory), the node's status, and the shown
//! alerts and offers, published as a [`Snapshot`] at most every `SNAPSHOT_INTERVAL`.

use std::sync::Arc;
use std::time::Duration;

use solidarity_control::{Distrust, MemberView, RevocationSigner, StatusView, TrustBasis};
use solidarity_proto::AuthorKey;
use solidarity_proto::trust::{Standing, Why};

use super::super::display::Marks;
use super::super::snapshot::Snapshot;
use super::super::views::{self, Shown};
use super::NodeActor;

/// Longest the members' "last message" times on the status page lag behind.
const LAST_SEEN_INTERVAL: Duration = Duration::from_secs(5);
/// Least time between two loads of the shown alerts after some expired.
const BACKFILL_INTERVAL: Duration = Duration::from_secs(5);

impl NodeActor {
    /// Every listed key, trusted or not, then the identities on the admin's list.
    pub(super) fn member_views(&self) -> Vec<MemberView> {
        let now = self.now_ms();
        let mut views: Vec<MemberView> = self
            .directory
            .entries()
            .iter()
            .map(|(key, member)| MemberView {
                name: member.name.clone(),
                collective: member.collective.clone(),
                key: *key,
                connected: self.connected.contains(key),
                last_message_at: self.last_message_at.get(key).copied(),
                compromised_at: self
                    .engine
                    .compromised()
                    .get(key)
                    .map(|state| state.detected_at),
                revoked_since: match member.standing {
                    Standing::Revoked(fact) => Some(fact.since),
                    // `listed` ranks a revocation first: these are not revoked (a revoked
                    // identity ends its certificates, it does not revoke the keys).
                    Standing::Trusted
                    | Standing::IdentityRevoked { .. }
                    | Standing::Forked { .. }
                    | Standing::CertificateEnded { .. } => None,
                },
                certified_until: match &member.why {
                    Why::Certified { valid_until, .. } => Some(*valid_until),
                    Why::Admin | Why::Vouched { .. } => None,
                },
                // A canary signed by a key out of trust says nothing.
                canary: member
                    .trusted()
                    .then(|| self.engine.canary(key, now))
                    .flatten(),
                vouched_by: match &member.why {
                    Why::Vouched { by } => self.voucher_names(by),
                    Why::Admin | Why::Certified { .. } => Vec::new(),
                },
                label_conflicts: member.label_conflicts.clone(),
                trust: self.trust_basis(&member.why),
                trusted: member.trusted(),
                distrust: self.distrust(key, member.standing),
                over_budget: self.engine.over_budget(key, now),
            })
            .collect();
        for entry in self.directory.file().members.iter().filter(|m| m.identity) {
            let revoked_since = self.engine.revoked_since(&entry.key);
            views.push(MemberView {
                name: entry.name.clone(),
                collective: entry
                    .collective
                    .clone()
                    .unwrap_or_else(|| entry.name.clone()),
                key: entry.key,
                connected: false,
                last_message_at: self.last_message_at.get(&entry.key).copied(),
                compromised_at: None,
                revoked_since,
                certified_until: None,
                canary: None,
                vouched_by: Vec::new(),
                label_conflicts: Vec::new(),
                trust: TrustBasis::Identity,
                trusted: revoked_since.is_none(),
                distrust: revoked_since.map(|since| Distrust::Revoked {
                    since,
                    by: RevocationSigner::Itself,
                }),
                over_budget: self.engine.over_budget(&entry.key, now),
            });
        }
        self.metrics
            .members_over_budget
            .set(i64::try_from(self.engine.over_budget_count(now)).unwrap_or(i64::MAX));
        views
    }

    /// The vouchers' names, sorted.
    fn voucher_names(&self, by: &[AuthorKey]) -> Vec<String> {
        let mut names: Vec<String> = by
            .iter()
            .map(|voucher| {
                if *voucher == self.me {
                    "this node".to_owned()
                } else {
                    self.member_name(voucher)
                }
            })
            .collect();
        names.sort();
        names
    }

    fn trust_basis(&self, why: &Why) -> TrustBasis {
        match why {
            Why::Admin => TrustBasis::AddedByAdmin,
            Why::Certified {
                identity,
                valid_until,
                ..
            } => TrustBasis::Certified {
                identity: self.member_name(identity),
                until: *valid_until,
            },
            Why::Vouched { by } => TrustBasis::Vouched {
                by: self.voucher_names(by),
                threshold: self.identity.config.vouch_threshold,
            },
        }
    }

    fn distrust(&self, key: &AuthorKey, standing: Standing) -> Option<Distrust> {
        match standing {
            Standing::Trusted => None,
            Standing::Revoked(fact) => Some(Distrust::Revoked {
                since: fact.since,
                by: if fact.signer == *key {
                    RevocationSigner::Itself
                } else {
                    RevocationSigner::Identity {
                        name: self.member_name(&fact.signer),
                    }
                },
            }),
            Standing::IdentityRevoked {
                identity,
                revocation,
            } => Some(Distrust::IdentityRevoked {
                identity: self.member_name(&identity),
                since: revocation.since,
            }),
            Standing::Forked { detected_at } => Some(Distrust::Compromised {
                detected_at,
                from_seq: self
                    .engine
                    .compromised()
                    .get(key)
                    .map_or(0, |state| state.from_seq),
            }),
            Standing::CertificateEnded { at } => Some(Distrust::CertificateEnded { at }),
        }
    }

    fn status_view(&self, now: u64, alerts: usize, offers: usize) -> StatusView {
        StatusView {
            node_key: self.me,
            peer_id: self.peer_id.to_base58(),
            federation: self.identity.config.federation.clone(),
            version: crate::VERSION.to_owned(),
            started_at: self.started_at,
            uptime_secs: now.saturating_sub(self.started_at) / 1000,
            p2p_ports: self.p2p_ports.clone(),
            status_url: self.identity.status_url.clone(),
            admin_url: self.identity.admin_url.clone(),
            metrics_url: self.identity.metrics_url.clone(),
            members: self
                .directory
                .entries()
                .values()
                .filter(|entry| entry.trusted())
                .count(),
            connected: self.connected.len(),
            alerts,
            offers,
            stored_messages: self.stored_messages,
            own_seq: self.engine.head().map_or(0, |(seq, _)| seq),
            signing_paused: self.engine.paused(),
            own_key_compromised_at: self
                .engine
                .compromised()
                .get(&self.me)
                .map(|state| state.detected_at),
            own_key_revoked_since: self.engine.revoked_since(&self.me),
            tor: self
                .identity
                .tor
                .as_ref()
                .map(|state| state.borrow().clone()),
        }
    }

    /// What suspect marks and corroboration read now (owned: see `display`).
    pub(super) fn marks(&self) -> Marks {
        let entries = self.directory.entries();
        Marks {
            me: self.me,
            compromised: self.engine.compromised().clone(),
            statements: self.engine.statements_shared(),
            identities: self.engine.identities(),
            groups: entries
                .iter()
                .map(|(key, entry)| (*key, entry.group.clone()))
                .collect(),
            trusted: entries
                .iter()
                .filter(|(_, entry)| entry.trusted())
                .map(|(key, _)| *key)
                .collect(),
            own_collective: self.identity.config.collective.clone(),
            confirm_threshold: self.identity.config.confirm_threshold,
        }
    }

    /// Drops shown alerts and offers expired at `now` and, if any went, loads the set
    /// again from the store: what the limits held back is shown without a restart. The
    /// load (up to `DISPLAY_LIMIT` alerts with their updates) runs on the actor, so it
    /// comes at most every [`BACKFILL_INTERVAL`]: a member posting short-lived alerts
    /// cannot make it run on every snapshot.
    pub(super) fn backfill_shown(&mut self, now: u64) {
        if self.shown.expire(now) {
            self.stale.backfill = true;
            self.stale.alerts = true;
        }
        let recently = self
            .backfilled_at
            .is_some_and(|at| at.elapsed() < BACKFILL_INTERVAL);
        if !self.stale.backfill || recently {
            return;
        }
        self.stale.backfill = false;
        self.backfilled_at = Some(std::time::Instant::now());
        match Shown::load(self.store.as_ref(), views::DISPLAY_LIMIT, now, self.me) {
            Ok(shown) => self.shown = shown,
            Err(error) => {
                tracing::error!(%error, "store read failed; the shown alerts are not backfilled");
            }
        }
        self.stale.alerts = true;
    }

    /// Notes that what the status page shows changed; [`Self::refresh_snapshot`] publishes
    /// it at most every `SNAPSHOT_INTERVAL` (or at once for a control read), so a burst of
    /// messages costs one rebuild, not one per message.
    pub(super) fn publish_snapshot(&mut self) {
        self.stale.alerts = true;
        self.stale.members = true;
    }

    /// Rebuilds what changed since the last snapshot and publishes it. Members' "last
    /// message" times alone refresh the member list at most every [`LAST_SEEN_INTERVAL`].
    pub(super) fn refresh_snapshot(&mut self) {
        self.backfill_shown(self.now_ms());
        let members_due = self.stale.members
            || (self.stale.last_seen && self.members_built_at.elapsed() >= LAST_SEEN_INTERVAL);
        if !self.stale.alerts && !members_due {
            return;
        }
        let now = self.now_ms();
        let previous = self.snapshot.borrow().clone();
        let (alerts, offers) = if self.stale.alerts {
            let (alerts, offers) = self.marks().alert_and_offer_views(&self.shown, now);
            (Arc::new(alerts), Arc::new(offers))
        } else {
            (previous.alerts.clone(), previous.offers.clone())
        };
        let members = if members_due {
            self.members_built_at = std::time::Instant::now();
            self.stale.members = false;
            self.stale.last_seen = false;
            Arc::new(self.member_views())
        } else {
            previous.members.clone()
        };
        self.stale.alerts = false;
        let snapshot = Snapshot {
            status: self.status_view(now, alerts.len(), offers.len()),
            members,
            alerts,
            offers,
        };
        self.metrics.shown(&snapshot);
        self.snapshot.send_replace(Arc::new(snapshot));
    }
}
