//! Rendering shared by the public and the admin view: the page shell, times with "ago",
//! the crisis summary, the order of alerts, alert and offer cards, escaping helpers.
//!
//! Invariant: everything here takes the names to show for keys from its caller
//! ([`Names`]), so the public view decides alone what identifies a member.

use std::time::Duration;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use solidarity_proto::AuthorKey;
use solidarity_proto::payload::{AlertStatus, Severity};
use solidarity_proto::state::{AlertView, OfferView};

use crate::render::{author_state_text, corroboration_text, format_bytes, format_time, words};

/// Certificates ending within this time are shown as a warning.
pub const CERTIFICATE_WARNING_MS: u64 = 7 * 24 * 3600 * 1000;

const MINUTE_MS: u64 = 60 * 1000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// How a view names the author of a message.
pub type Names<'a> = &'a dyn Fn(&AuthorKey) -> String;

/// "just now", "3 min ago", "5 h ago", "2 days ago"; "in 3 min" for times ahead.
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let (span, ahead) = if then_ms > now_ms {
        (then_ms - now_ms, true)
    } else {
        (now_ms - then_ms, false)
    };
    let amount = if span < MINUTE_MS {
        return "just now".to_owned();
    } else if span < HOUR_MS {
        format!("{} min", span / MINUTE_MS)
    } else if span < 2 * DAY_MS {
        format!("{} h", span / HOUR_MS)
    } else {
        format!("{} days", span / DAY_MS)
    };
    if ahead {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A time as `<time>` (UTC, never broken mid-token) with "3 min ago" beside it.
pub fn time(now_ms: u64, ms: u64) -> Markup {
    let rfc3339 = format_time(ms);
    let readable = rfc3339.replacen('T', " ", 1).replace('Z', " UTC");
    html! {
        time datetime=(rfc3339) { (readable) }
        " " span.ago { "(" (ago(now_ms, ms)) ")" }
    }
}

/// Text worded for the CLI (e.g. "SILENT (due 2026-12-01T06:00:00Z)") with each RFC 3339
/// time in it as a `<time>` element, so that no time breaks across lines.
pub fn text_with_times(text: &str) -> Markup {
    html! {
        @for (index, piece) in split_times(text).into_iter().enumerate() {
            @if index % 2 == 1 { time datetime=(piece) { (piece) } } @else { (piece) }
        }
    }
}

/// Splits `text` into plain pieces and RFC 3339 times (`YYYY-MM-DDTHH:MM:SSZ`),
/// alternating: plain, time, plain, … (the first and last pieces are plain, maybe empty).
fn split_times(text: &str) -> Vec<&str> {
    const TIME_LEN: usize = "2026-12-01T06:00:00Z".len();
    let is_time = |candidate: &[u8]| {
        candidate.len() == TIME_LEN
            && candidate.iter().enumerate().all(|(at, byte)| match at {
                4 | 7 => *byte == b'-',
                10 => *byte == b'T',
                13 | 16 => *byte == b':',
                19 => *byte == b'Z',
                _ => byte.is_ascii_digit(),
            })
    };
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut plain_from, mut at) = (0, 0);
    while at + TIME_LEN <= bytes.len() {
        if is_time(&bytes[at..at + TIME_LEN]) {
            // Every byte of a time is ASCII, so both ends are char boundaries.
            pieces.push(&text[plain_from..at]);
            pieces.push(&text[at..at + TIME_LEN]);
            at += TIME_LEN;
            plain_from = at;
        } else {
            at += 1;
        }
    }
    pieces.push(&text[plain_from..]);
    pieces
}

/// "until DATE (in N days)" for a member trusted through a certificate, "-" otherwise.
pub fn certificate_text(now_ms: u64, certified_until: Option<u64>) -> String {
    let Some(until) = certified_until else {
        return "-".to_owned();
    };
    let left = Duration::from_secs(until.saturating_sub(now_ms) / 1000);
    let warning = if certificate_ends_soon(now_ms, until) {
        " RENEW SOON"
    } else {
        ""
    };
    format!(
        "until {} (in {}){warning}",
        format_time(until),
        humantime::format_duration(left)
    )
}

/// Whether a certificate ending at `until` ends within [`CERTIFICATE_WARNING_MS`].
pub fn certificate_ends_soon(now_ms: u64, until: u64) -> bool {
    until < now_ms.saturating_add(CERTIFICATE_WARNING_MS)
}

/// Whether an alert still needs attention: neither resolved nor retracted.
pub fn is_open(status: AlertStatus) -> bool {
    !status.is_closed()
}

/// Alerts in the order a reader in a crisis needs them, the order of every listing
/// ([`solidarity_proto::state::alert_order`]: open first, then most severe, then newest).
pub fn crisis_order(alerts: &[AlertView]) -> Vec<&AlertView> {
    let mut sorted: Vec<&AlertView> = alerts.iter().collect();
    sorted.sort_by(|a, b| solidarity_proto::state::alert_order(a, b));
    sorted
}

/// Open alerts of `severity`.
pub fn open_of(alerts: &[AlertView], severity: Severity) -> usize {
    alerts
        .iter()
        .filter(|view| is_open(view.status) && view.alert.severity == severity)
        .count()
}

/// Most updates shown per alert on a page, the newest (the JSON carries what the node keeps
/// loaded, SPEC §12): with 200 alerts shown, a page stays within a few MB whatever
/// members write.
pub const UPDATES_ON_PAGE: usize = 10;

/// One line of the summary: how alarming, and its text.
pub struct SummaryLine {
    /// Shown as an alarm (red) rather than as information.
    pub alarm: bool,
    /// Where the details are, e.g. `/#alerts`.
    pub anchor: &'static str,
    pub text: String,
}

/// "1 open critical alert", "3 open critical alerts".
pub fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The summary lines every view opens with: open critical and high alerts, and how many
/// keys are revoked or compromised (this node's own included).
pub fn crisis_summary(
    alerts: &[AlertView],
    revoked: usize,
    compromised: usize,
) -> Vec<SummaryLine> {
    let mut lines = Vec::new();
    for (severity, one, many) in [
        (
            Severity::Critical,
            "open critical alert",
            "open critical alerts",
        ),
        (Severity::High, "open high alert", "open high alerts"),
    ] {
        let count = open_of(alerts, severity);
        if count > 0 {
            lines.push(SummaryLine {
                alarm: true,
                anchor: "/#alerts",
                text: counted(count, one, many),
            });
        }
    }
    if revoked > 0 {
        lines.push(SummaryLine {
            alarm: true,
            anchor: "/#revoked",
            text: counted(revoked, "revoked key", "revoked keys"),
        });
    }
    if compromised > 0 {
        lines.push(SummaryLine {
            alarm: true,
            anchor: "/#compromise",
            text: counted(
                compromised,
                "key signed conflicting messages",
                "keys signed conflicting messages",
            ),
        });
    }
    lines
}

/// The summary section; says so plainly when there is nothing to report.
pub fn summary_section(lines: &[SummaryLine]) -> Markup {
    html! {
        section #summary {
            h2 { "Summary" }
            @if lines.is_empty() {
                p.calm { "No open critical or high alerts, no revoked or compromised keys." }
            } @else {
                ul {
                    @for line in lines {
                        li class=(if line.alarm { "alarm" } else { "info" }) {
                            a href=(line.anchor) { (line.text) }
                        }
                    }
                }
            }
        }
    }
}

/// What the page header says about the node.
pub struct PageHead<'a> {
    pub title: &'a str,
    pub federation: &'a str,
    /// Shown under the title: federation, uptime, version (and, admin only, more).
    pub node_line: Markup,
    pub now_ms: u64,
    /// The feed is linked from the public view only.
    pub feed: bool,
}

/// The whole HTML document around `main`.
pub fn page(head: &PageHead<'_>, main: Markup, footer: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (head.title) " · " (head.federation) }
                link rel="stylesheet" href="/style.css";
                @if head.feed {
                    link rel="alternate" type="application/atom+xml" title="Alerts" href="/alerts.atom";
                }
            }
            body {
                header {
                    h1 { (head.title) }
                    p.node { (head.node_line) }
                    p.generated { "Page generated " (time(head.now_ms, head.now_ms)) "; reload for news." }
                }
                main { (main) }
                footer { (footer) }
            }
        }
    }
}

/// An alert with its fields and history; `names` names its author and endorsers.
pub fn alert_card(names: Names<'_>, now_ms: u64, view: &AlertView) -> Markup {
    let alert = &view.alert;
    let closed = !is_open(view.status);
    html! {
        article class={ "alert severity-" (words(&alert.severity)) @if closed { " closed" } } id={ "alert-" (view.id.to_hex()) } {
            h3 {
                span.severity { (words(&alert.severity)) }
                " " span.category { (words(&alert.category)) }
                " · " (alert.subject)
            }
            @if view.suspect {
                p.suspect { "Suspect: signed by a key known to be in two hands; it may not come from its owner." }
            }
            p.summary { (alert.summary) }
            dl {
                dt { "State" } dd.state { (author_state_text(view)) }
                @if let Some(corroboration) = corroboration_text(view) {
                    dt { "Corroboration" } dd { (corroboration) }
                }
                @if !view.corroboration.endorsed_by.is_empty() {
                    dt { "Endorsed by" } dd { (isolated_list(view.corroboration.endorsed_by.iter().map(names))) }
                }
                @if !view.corroboration.disputed_by.is_empty() {
                    dt { "Disputed by" } dd { (isolated_list(view.corroboration.disputed_by.iter().map(names))) }
                }
                dt { "Raised by" } dd { bdi { (names(&view.author)) } }
                dt { "Raised" } dd { (time(now_ms, view.created_at)) }
                @if view.updated_at != view.created_at {
                    dt { "Updated" } dd { (time(now_ms, view.updated_at)) }
                }
                @if !alert.jurisdictions.is_empty() {
                    dt { "Jurisdictions" } dd { (isolated_list(&alert.jurisdictions)) }
                }
                @if let Some(legal_type) = &alert.legal_type { dt { "Legal instrument" } dd { (words(legal_type)) } }
                @if let Some(authority) = &alert.authority { dt { "Authority" } dd { (authority) } }
                @if let Some(basis) = &alert.legal_basis { dt { "Legal basis" } dd { (basis) } }
                @if let Some(date) = &alert.event_date { dt { "Event date" } dd { (date) } }
                @if let Some(seized) = &alert.seized { dt { "Seized" } dd { (words(seized)) } }
                @if !alert.services.is_empty() { dt { "Services" } dd { (isolated_list(&alert.services)) } }
                @if !alert.domains.is_empty() { dt { "Domains" } dd { (isolated_list(&alert.domains)) } }
                @if let Some(upstream) = &alert.upstream { dt { "Upstream" } dd { (upstream) } }
                @if !alert.references.is_empty() {
                    dt { "References" }
                    dd { ul { @for reference in &alert.references { li { (reference) } } } }
                }
                dt { "Id" } dd { code.id { (view.id.to_hex()) } }
            }
            @if let Some(details) = &alert.details { pre.details { (details) } }
            @let shown_from = view.history.len().saturating_sub(UPDATES_ON_PAGE);
            @let earlier = view.earlier_updates.saturating_add(shown_from as u64);
            @if earlier > 0 {
                p.earlier { "and " (earlier) " earlier updates" }
            }
            @if !view.history.is_empty() {
                ol.history {
                    @for update in &view.history[shown_from..] {
                        li {
                            (time(now_ms, update.created_at)) ": " strong { (words(&update.status)) }
                            @if let Some(note) = &update.note { " — " (note) }
                        }
                    }
                }
            }
        }
    }
}

/// A mirror offer; `names` names the member offering it.
pub fn offer_card(names: Names<'_>, now_ms: u64, view: &OfferView) -> Markup {
    let offer = &view.offer;
    html! {
        article.offer id={ "offer-" (view.id.to_hex()) } {
            h3 { "Offered by " bdi { (names(&view.author)) } }
            @if view.suspect {
                p.suspect { "Suspect: signed by a key known to be in two hands; it may not come from its owner." }
            }
            dl {
                dt { "Services" } dd { (isolated_list(offer.services.iter().map(words))) }
                @if let Some(bytes) = offer.storage_bytes { dt { "Storage" } dd { (format_bytes(bytes)) } }
                @if !offer.jurisdictions.is_empty() { dt { "Jurisdictions" } dd { (isolated_list(&offer.jurisdictions)) } }
                @if let Some(upstream) = &offer.upstream { dt { "Upstream" } dd { (upstream) } }
                @if let Some(policy) = &offer.data_policy { dt { "Data policy" } dd { (policy) } }
                @if let Some(conditions) = &offer.conditions { dt { "Conditions" } dd { (conditions) } }
                dt { "Contact" } dd { (offer.contact) }
                dt { "Offered" } dd { (time(now_ms, view.created_at)) }
                @if let Some(expires) = view.expires_at { dt { "Valid until" } dd { (time(now_ms, expires)) } }
                dt { "Id" } dd { code.id { (view.id.to_hex()) } }
            }
        }
    }
}

/// The alerts section, in [`crisis_order`].
pub fn alerts_section(names: Names<'_>, now_ms: u64, alerts: &[AlertView]) -> Markup {
    let open = alerts.iter().filter(|view| is_open(view.status)).count();
    html! {
        section #alerts {
            h2 { "Alerts (" (open) " open, " (alerts.len() - open) " closed)" }
            @if alerts.is_empty() {
                p.empty { "No alerts." }
            }
            @for view in crisis_order(alerts) {
                (alert_card(names, now_ms, view))
            }
        }
    }
}

/// The offers section, newest first as the snapshot holds them.
pub fn offers_section(names: Names<'_>, now_ms: u64, offers: &[OfferView]) -> Markup {
    html! {
        section #offers {
            h2 { "Mirror offers (" (offers.len()) ")" }
            @if offers.is_empty() {
                p.empty { "No mirror offers." }
            }
            @for view in offers {
                (offer_card(names, now_ms, view))
            }
        }
    }
}

/// Items of a list from the network, comma-separated, each in its own `<bdi>`: a
/// right-to-left override inside one item cannot reorder the others.
pub fn isolated_list<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> Markup {
    html! {
        @for (index, item) in items.into_iter().enumerate() {
            @if index > 0 { ", " }
            bdi { (item.as_ref()) }
        }
    }
}

/// A non-breaking separator between items of the header line.
pub fn dot() -> Markup {
    PreEscaped(" · ".to_owned())
}

#[cfg(test)]
mod time_text_tests {
    use super::{split_times, text_with_times};

    #[test]
    fn times_inside_worded_text_become_unbroken_time_elements() {
        assert_eq!(
            split_times("SILENT (due 2026-12-01T11:05:35Z)"),
            ["SILENT (due ", "2026-12-01T11:05:35Z", ")"]
        );
        assert_eq!(split_times("trusted"), ["trusted"]);
        assert_eq!(
            split_times("é 2026-12-01T11:05:35Z"),
            ["é ", "2026-12-01T11:05:35Z", ""]
        );
        assert_eq!(
            text_with_times("<b> 2026-12-01T11:05:35Z").into_string(),
            "&lt;b&gt; <time datetime=\"2026-12-01T11:05:35Z\">2026-12-01T11:05:35Z</time>"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solidarity_proto::MessageId;
    use solidarity_proto::payload::{Alert, AlertCategory};
    use solidarity_proto::state::Corroboration;

    fn view(id: u8, status: AlertStatus, severity: Severity, created_at: u64) -> AlertView {
        AlertView {
            id: MessageId([id; 32]),
            author: AuthorKey([9; 32]),
            seq: 1,
            suspect: false,
            created_at,
            expires_at: None,
            status,
            updated_at: created_at,
            alert: Alert {
                category: AlertCategory::Seizure,
                legal_type: None,
                severity,
                subject: "a.example".into(),
                summary: format!("alert {id}"),
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
            },
            corroboration: Corroboration::default(),
            history: vec![],
            earlier_updates: 0,
        }
    }

    #[test]
    fn times_past_year_9999_render_instead_of_panicking() {
        // Signed by a member at will: an alert's expiry, a revocation's compromised_since.
        assert_eq!(format_time(u64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(
            crate::daemon::trust_log::date(u64::MAX),
            "9999-12-31T23:59:59Z"
        );
        let mut far = view(1, AlertStatus::Open, Severity::Critical, u64::MAX);
        far.expires_at = Some(u64::MAX);
        let mut snapshot = crate::daemon::snapshot::Snapshot::empty();
        snapshot.status.own_key_revoked_since = Some(u64::MAX);
        snapshot.status.own_key_compromised_at = Some(u64::MAX);
        snapshot.alerts = std::sync::Arc::new(vec![far]);
        let public = super::super::public::page(&snapshot, 0).into_string();
        assert!(public.contains("9999-12-31"), "{public}");
        super::super::admin::page(&snapshot, 0);
        super::super::feed::feed(&snapshot, "");
        assert!(certificate_text(0, Some(u64::MAX)).contains("9999-12-31"));
    }

    #[test]
    fn open_alerts_come_first_then_severity_then_newest() {
        let alerts = vec![
            view(1, AlertStatus::Resolved, Severity::Critical, 500),
            view(2, AlertStatus::Open, Severity::Low, 900),
            view(3, AlertStatus::Open, Severity::Critical, 100),
            view(4, AlertStatus::Received, Severity::Critical, 300),
            view(5, AlertStatus::Retracted, Severity::High, 950),
            view(6, AlertStatus::Confirmed, Severity::High, 200),
        ];
        let order: Vec<u8> = crisis_order(&alerts).iter().map(|v| v.id.0[0]).collect();
        assert_eq!(order, vec![4, 3, 6, 2, 1, 5]);
    }

    #[test]
    fn ago_reads_as_a_person_would_say_it() {
        let now = 10 * DAY_MS;
        assert_eq!(ago(now, now - 20_000), "just now");
        assert_eq!(ago(now, now - 3 * MINUTE_MS - 5_000), "3 min ago");
        assert_eq!(ago(now, now - 5 * HOUR_MS), "5 h ago");
        assert_eq!(ago(now, now - 3 * DAY_MS), "3 days ago");
        assert_eq!(ago(now, now + 2 * DAY_MS), "in 2 days");
        let markup = time(now, now - 3 * MINUTE_MS).into_string();
        assert!(
            markup
                .contains("<time datetime=\"1970-01-10T23:57:00Z\">1970-01-10 23:57:00 UTC</time>"),
            "{markup}"
        );
        assert!(markup.contains("(3 min ago)"), "{markup}");
    }

    #[test]
    fn the_summary_counts_open_critical_and_high_alerts_and_key_notices() {
        let alerts = vec![
            view(1, AlertStatus::Open, Severity::Critical, 1),
            view(2, AlertStatus::Open, Severity::Critical, 2),
            view(3, AlertStatus::Resolved, Severity::Critical, 3),
            view(4, AlertStatus::GagActive, Severity::High, 4),
            view(5, AlertStatus::Open, Severity::Medium, 5),
        ];
        let texts: Vec<String> = crisis_summary(&alerts, 1, 0)
            .into_iter()
            .map(|line| line.text)
            .collect();
        assert_eq!(
            texts,
            vec![
                "2 open critical alerts",
                "1 open high alert",
                "1 revoked key"
            ]
        );
        let calm = summary_section(&crisis_summary(&[], 0, 0)).into_string();
        assert!(calm.contains("No open critical or high alerts"), "{calm}");
    }
}
