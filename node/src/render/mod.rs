//! Text shared by the CLI and the status page: times, wire names as words, sizes, and how
//! an alert's state, a member's trust and its canary are worded.
//!
//! Invariant: plain text only, no HTML and no IO; the page wraps it in markup (times become
//! `<time>` elements there), the CLI prints it. Neither `cli` nor `daemon::status_page`
//! imports the other: both import this.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use solidarity_control::{
    CanaryState, CanaryView, Distrust, MemberView, RevocationSigner, TrustBasis,
};
use solidarity_proto::payload::AlertStatus;
use solidarity_proto::state::AlertView;

/// The last millisecond RFC 3339 can write (four-digit years): 9999-12-31T23:59:59Z.
const LAST_WRITABLE_MS: u64 = 253_402_300_799_999;

/// RFC 3339 in UTC, to the second. Times past year 9999 (signers choose `expires_at`,
/// `compromised_since`, `valid_until` freely) are written as the last second of 9999:
/// humantime's formatter fails on them, and `to_string` would panic.
pub fn format_time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms.min(LAST_WRITABLE_MS)))
        .to_string()
}

/// snake_case wire names as readable words.
pub fn words<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(|text| text.replace('_', " ")))
        .unwrap_or_default()
}

/// `53687091200` → `50 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024 && value.is_multiple_of(1024) && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}

/// Corroboration by other collectives, apart from the author's own status: "1 of 2
/// collectives" or "confirmed by 2 of 2 collectives" (with disputes, if any), for alerts
/// that need it.
pub fn corroboration_text(view: &AlertView) -> Option<String> {
    let corroboration = &view.corroboration;
    let required = corroboration.required?;
    let collectives = if required == 1 {
        "collective"
    } else {
        "collectives"
    };
    let mut text = if corroboration.confirmed {
        format!(
            "confirmed by {} of {required} {collectives}",
            corroboration.collectives
        )
    } else {
        format!("{} of {required} {collectives}", corroboration.collectives)
    };
    if !corroboration.disputed_by.is_empty() {
        text.push_str(&format!(
            ", disputed by {}",
            corroboration.disputed_by.len()
        ));
    }
    Some(text)
}

/// The author's own status of an alert: "open", "confirmed by author", "resolved by
/// author" …; "SUSPECT" when its key was revoked or forked before it was signed.
pub fn author_state_text(view: &AlertView) -> String {
    if view.suspect {
        return "SUSPECT".to_owned();
    }
    match view.status {
        AlertStatus::Open => "open".to_owned(),
        other => format!("{} by author", words(&other)),
    }
}

/// Why a member is (or was) trusted: "added by admin", "certified by identity X until
/// DATE", "vouched by a, b (2 of 2)", "identity key (certifies node keys)".
pub fn trust_text(basis: &TrustBasis) -> String {
    match basis {
        TrustBasis::AddedByAdmin => "added by admin".to_owned(),
        TrustBasis::Certified { identity, until } => {
            format!(
                "certified by identity {identity} until {}",
                format_time(*until)
            )
        }
        TrustBasis::Vouched { by, threshold } => {
            format!("vouched by {} ({} of {threshold})", by.join(", "), by.len())
        }
        TrustBasis::Identity => "identity key (certifies node keys)".to_owned(),
    }
}

/// Why a listed key is no longer trusted.
pub fn distrust_text(distrust: &Distrust) -> String {
    match distrust {
        Distrust::Revoked { since, by } => format!(
            "REVOKED since {} by {}",
            format_time(*since),
            match by {
                RevocationSigner::Itself => "the key itself".to_owned(),
                RevocationSigner::Identity { name } => format!("identity {name}"),
            }
        ),
        Distrust::IdentityRevoked { identity, since } => format!(
            "identity {identity} REVOKED since {}; its certificates no longer count",
            format_time(*since)
        ),
        Distrust::Compromised {
            detected_at,
            from_seq,
        } => format!(
            "COMPROMISED: fork detected {} (suspect from seq {from_seq})",
            format_time(*detected_at)
        ),
        Distrust::CertificateEnded { at } => format!("certificate ended {}", format_time(*at)),
    }
}

/// "trusted" or why not.
pub fn key_state_text(member: &MemberView) -> String {
    match (&member.distrust, member.trusted) {
        (Some(distrust), _) => distrust_text(distrust),
        (None, true) => "trusted".to_owned(),
        (None, false) => "NOT TRUSTED".to_owned(),
    }
}

/// A member's canary, never "ok" for a key out of trust.
pub fn member_canary_text(member: &MemberView) -> String {
    match (&member.trust, &member.distrust) {
        (TrustBasis::Identity, _) => "- (identity key)".to_owned(),
        (_, Some(Distrust::Revoked { .. })) => "- (key revoked)".to_owned(),
        (_, Some(Distrust::IdentityRevoked { .. })) => "- (identity revoked)".to_owned(),
        (_, Some(Distrust::Compromised { .. })) => "- (key compromised)".to_owned(),
        (_, Some(Distrust::CertificateEnded { .. })) => "- (certificate ended)".to_owned(),
        (_, None) if !member.trusted => "- (not trusted)".to_owned(),
        (_, None) => canary_text(member.canary.as_ref()),
    }
}

/// One line on a member's canary, for tables and the status page.
pub fn canary_text(canary: Option<&CanaryView>) -> String {
    let Some(canary) = canary else {
        return "none seen".to_owned();
    };
    match canary.state {
        CanaryState::Ok => format!("ok ({})", format_time(canary.last_at)),
        CanaryState::Silent => format!("SILENT (due {})", format_time(canary.due_at)),
        CanaryState::Changed => format!(
            "CHANGED: withdrew {}",
            canary
                .withdrawn
                .iter()
                .map(words)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CanaryState::Duress => "DURESS".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solidarity_proto::payload::{Alert, AlertCategory, Severity};
    use solidarity_proto::{AuthorKey, MessageId};

    fn seizure_view(status: AlertStatus, collectives: usize, confirmed: bool) -> AlertView {
        let alert = Alert {
            category: AlertCategory::Seizure,
            legal_type: None,
            severity: Severity::Critical,
            subject: "a.example".into(),
            summary: "rack taken".into(),
            details: None,
            jurisdictions: vec![],
            authority: None,
            legal_basis: None,
            event_date: None,
            seized: None,
            services: vec![],
            domains: vec![],
            upstream: None,
            references: vec![],
        };
        let mut view = solidarity_proto::state::derive_alert(
            solidarity_proto::state::Stored {
                id: MessageId([1; 32]),
                author: AuthorKey([2; 32]),
                seq: 1,
                created_at: 0,
                expires_at: None,
                body: alert,
            },
            Vec::new(),
        );
        view.status = status;
        view.corroboration.collectives = collectives;
        view.corroboration.required = Some(2);
        view.corroboration.confirmed = confirmed;
        view
    }

    #[test]
    fn the_authors_status_and_corroboration_are_worded_apart() {
        let view = seizure_view(AlertStatus::Confirmed, 1, false);
        assert_eq!(author_state_text(&view), "confirmed by author");
        assert_eq!(
            corroboration_text(&view).as_deref(),
            Some("1 of 2 collectives")
        );
        let view = seizure_view(AlertStatus::Open, 2, true);
        assert_eq!(author_state_text(&view), "open");
        assert_eq!(
            corroboration_text(&view).as_deref(),
            Some("confirmed by 2 of 2 collectives")
        );
        let mut view = seizure_view(AlertStatus::Resolved, 0, false);
        view.corroboration.required = None;
        assert_eq!(author_state_text(&view), "resolved by author");
        assert_eq!(corroboration_text(&view), None);
        view.suspect = true;
        assert_eq!(author_state_text(&view), "SUSPECT");
    }

    #[test]
    fn trust_paths_and_their_ends_are_worded_truly() {
        use solidarity_control::{Distrust, RevocationSigner, TrustBasis};
        let at = 1_795_845_600_000;
        assert_eq!(
            trust_text(&TrustBasis::Vouched {
                by: vec!["a".into(), "b".into()],
                threshold: 2
            }),
            "vouched by a, b (2 of 2)"
        );
        assert_eq!(
            trust_text(&TrustBasis::Certified {
                identity: "riseup".into(),
                until: at
            }),
            "certified by identity riseup until 2026-11-28T06:00:00Z"
        );
        assert_eq!(
            distrust_text(&Distrust::Revoked {
                since: at,
                by: RevocationSigner::Itself
            }),
            "REVOKED since 2026-11-28T06:00:00Z by the key itself"
        );
        assert_eq!(
            distrust_text(&Distrust::IdentityRevoked {
                identity: "riseup".into(),
                since: at
            }),
            "identity riseup REVOKED since 2026-11-28T06:00:00Z; its certificates no longer count"
        );
        assert_eq!(
            distrust_text(&Distrust::Compromised {
                detected_at: at,
                from_seq: 4
            }),
            "COMPROMISED: fork detected 2026-11-28T06:00:00Z (suspect from seq 4)"
        );
    }
}
