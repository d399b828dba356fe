//! The status page: server-rendered HTML that works without JavaScript, JSON under
//! `/api/v1/`, and an Atom feed of alerts. Handlers only read the latest snapshot.
//!
//! Invariants: every text from the network is escaped (maud escapes by default; the Atom
//! writer escapes by hand); no address of any peer appears; every response carries a
//! strict CSP, `nosniff` and a charset; no script anywhere.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;
use solidarity_control::MemberView;
use solidarity_proto::payload::AlertStatus;
use solidarity_proto::state::{AlertView, OfferView};
use tokio::sync::watch;

use super::actor::now_ms;
use super::snapshot::Snapshot;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const STYLE: &str = include_str!("style.css");

type Snapshots = watch::Receiver<Arc<Snapshot>>;

pub fn router(snapshots: Snapshots) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/style.css", get(style))
        .route("/api/v1/status", get(api_status))
        .route("/api/v1/alerts", get(api_alerts))
        .route("/api/v1/offers", get(api_offers))
        .route("/alerts.atom", get(atom))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(snapshots)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn latest(snapshots: &Snapshots) -> Arc<Snapshot> {
    snapshots.borrow().clone()
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

async fn not_found() -> impl IntoResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
}

/// The public status: what the node is, never where it or its peers are.
#[derive(Serialize)]
struct PublicStatus<'a> {
    node_key: String,
    federation: &'a str,
    version: &'a str,
    started_at: u64,
    uptime_secs: u64,
    members: &'a [MemberView],
    alerts: usize,
    offers: usize,
}

async fn api_status(State(snapshots): State<Snapshots>) -> impl IntoResponse {
    let snapshot = latest(&snapshots);
    let status = &snapshot.status;
    axum::Json(serde_json::json!(PublicStatus {
        node_key: status.node_key.to_hex(),
        federation: &status.federation,
        version: &status.version,
        started_at: status.started_at,
        uptime_secs: now_ms().saturating_sub(status.started_at) / 1000,
        members: snapshot.members.as_slice(),
        alerts: snapshot.alerts.len(),
        offers: snapshot.offers.len(),
    }))
}

async fn api_alerts(State(snapshots): State<Snapshots>) -> impl IntoResponse {
    axum::Json(latest(&snapshots).alerts.as_ref().clone())
}

async fn api_offers(State(snapshots): State<Snapshots>) -> impl IntoResponse {
    axum::Json(latest(&snapshots).offers.as_ref().clone())
}

/// Certificates ending within this time are shown as a warning.
const CERTIFICATE_WARNING_MS: u64 = 7 * 24 * 3600 * 1000;

/// "until DATE (in N days)" for a member trusted through a certificate, "-" otherwise.
pub fn certificate_text(certified_until: Option<u64>) -> String {
    let Some(until) = certified_until else {
        return "-".to_owned();
    };
    let left = Duration::from_secs(until.saturating_sub(now_ms()) / 1000);
    let warning = if until < now_ms() + CERTIFICATE_WARNING_MS {
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

pub fn format_time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// snake_case wire names as readable words.
pub fn words<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(|text| text.replace('_', " ")))
        .unwrap_or_default()
}

fn member_name(snapshot: &Snapshot, key: &solidarity_proto::AuthorKey) -> String {
    if *key == snapshot.status.node_key {
        return "this node".to_owned();
    }
    snapshot
        .members
        .iter()
        .find(|member| member.key == *key)
        .map_or_else(|| key.short(), |member| member.name.clone())
}

async fn index(State(snapshots): State<Snapshots>) -> Markup {
    let snapshot = latest(&snapshots);
    let status = &snapshot.status;
    let uptime = Duration::from_secs(now_ms().saturating_sub(status.started_at) / 1000);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { "solidarity · " (status.federation) }
                link rel="stylesheet" href="/style.css";
                link rel="alternate" type="application/atom+xml" title="Alerts" href="/alerts.atom";
            }
            body {
                header {
                    h1 { "solidarity" }
                    p.node {
                        "Federation " strong { (status.federation) } " · node "
                        code title=(status.node_key.to_hex()) { (status.node_key.short()) }
                        " · up " (humantime::format_duration(uptime))
                        " · version " (status.version)
                    }
                }
                main {
                    @if status.own_key_revoked_since.is_some() || snapshot.members.iter().any(|m| m.revoked_since.is_some()) {
                        section #revoked {
                            h2 { "Revoked keys" }
                            ul {
                                @if let Some(since) = status.own_key_revoked_since {
                                    li { strong { "This node's own key" } " is revoked; what it signed since " (format_time(since)) " is suspect." }
                                }
                                @for member in snapshot.members.iter().filter(|m| m.revoked_since.is_some()) {
                                    li {
                                        strong { (member.name) } " (" code { (member.key.short()) } ") revoked its key: messages signed since "
                                        (member.revoked_since.map(format_time).unwrap_or_default())
                                        " are suspect, later ones refused."
                                    }
                                }
                            }
                        }
                    }
                    @if status.own_key_compromised_at.is_some() || snapshot.members.iter().any(|m| m.compromised_at.is_some()) {
                        section #compromise {
                            h2 { "Key compromise" }
                            ul {
                                @if let Some(at) = status.own_key_compromised_at {
                                    li { strong { "This node's own key" } " signed two conflicting messages (detected " (format_time(at)) "): another party holds it." }
                                }
                                @for member in snapshot.members.iter().filter(|m| m.compromised_at.is_some()) {
                                    li {
                                        strong { (member.name) } " (" code { (member.key.short()) } ") signed two conflicting messages (detected "
                                        (member.compromised_at.map(format_time).unwrap_or_default())
                                        "). Its messages are no longer accepted."
                                    }
                                }
                            }
                        }
                    }
                    section #alerts {
                        h2 { "Alerts (" (snapshot.alerts.len()) ")" }
                        @if snapshot.alerts.is_empty() {
                            p.empty { "No alerts." }
                        }
                        @for alert in snapshot.alerts.iter() {
                            (alert_card(&snapshot, alert))
                        }
                    }
                    section #offers {
                        h2 { "Mirror offers (" (snapshot.offers.len()) ")" }
                        @if snapshot.offers.is_empty() {
                            p.empty { "No mirror offers." }
                        }
                        @for offer in snapshot.offers.iter() {
                            (offer_card(&snapshot, offer))
                        }
                    }
                    section #members {
                        h2 { "Members (" (snapshot.members.len()) ")" }
                        table {
                            thead { tr { th { "Name" } th { "Key" } th { "Connected" } th { "Last message" } th { "Canary" } th { "Certificate" } th { "Key state" } } }
                            tbody {
                                @for member in snapshot.members.iter() {
                                    tr {
                                        td { (member.name) }
                                        td { code title=(member.key.to_hex()) { (member.key.short()) } }
                                        td class=(if member.connected { "up" } else { "down" }) {
                                            @if member.connected { "connected" } @else { "not connected" }
                                        }
                                        td { @match member.last_message_at { Some(at) => (format_time(at)), None => "never" } }
                                        td class=(if member.canary.as_ref().is_some_and(|c| c.state != solidarity_control::CanaryState::Ok) { "down" } else { "up" }) {
                                            (crate::cli::canary_text(member.canary.as_ref()))
                                        }
                                        td class=(if member.certified_until.is_some_and(|until| until < now_ms() + CERTIFICATE_WARNING_MS) { "down" } else { "up" }) {
                                            (certificate_text(member.certified_until))
                                        }
                                        td class=(if member.compromised_at.is_some() || member.revoked_since.is_some() { "down" } else { "up" }) {
                                            @if member.revoked_since.is_some() { "revoked" } @else if member.compromised_at.is_some() { "compromised" } @else { "ok" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                footer {
                    p { "Machine-readable: " a href="/api/v1/status" { "status" } " · " a href="/api/v1/alerts" { "alerts" } " · " a href="/api/v1/offers" { "offers" } " · " a href="/alerts.atom" { "Atom feed" } }
                }
            }
        }
    }
}

fn alert_card(snapshot: &Snapshot, view: &AlertView) -> Markup {
    let alert = &view.alert;
    let closed = matches!(view.status, AlertStatus::Resolved | AlertStatus::Retracted);
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
                dt { "State" } dd.state { (words(&view.status)) }
                @if let Some(corroboration) = crate::cli::corroboration_text(view) {
                    dt { "Corroboration" } dd { (corroboration) }
                }
                @if !view.corroboration.endorsed_by.is_empty() {
                    dt { "Endorsed by" } dd { (isolated_list(view.corroboration.endorsed_by.iter().map(|key| member_name(snapshot, key)))) }
                }
                @if !view.corroboration.disputed_by.is_empty() {
                    dt { "Disputed by" } dd { (isolated_list(view.corroboration.disputed_by.iter().map(|key| member_name(snapshot, key)))) }
                }
                dt { "Raised by" } dd { (member_name(snapshot, &view.author)) }
                dt { "Raised" } dd { (format_time(view.created_at)) }
                @if view.updated_at != view.created_at {
                    dt { "Updated" } dd { (format_time(view.updated_at)) }
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
                dt { "Id" } dd { code { (view.id.to_hex()) } }
            }
            @if let Some(details) = &alert.details { pre.details { (details) } }
            @if !view.history.is_empty() {
                ol.history {
                    @for update in &view.history {
                        li {
                            (format_time(update.created_at)) ": " strong { (words(&update.status)) }
                            @if let Some(note) = &update.note { " — " (note) }
                        }
                    }
                }
            }
        }
    }
}

fn offer_card(snapshot: &Snapshot, view: &OfferView) -> Markup {
    let offer = &view.offer;
    html! {
        article.offer id={ "offer-" (view.id.to_hex()) } {
            h3 { "Offered by " (member_name(snapshot, &view.author)) }
            @if view.suspect {
                p.suspect { "Suspect: signed by a key known to be in two hands; it may not come from its owner." }
            }
            dl {
                dt { "Services" } dd { (isolated_list(offer.services.iter().map(words))) }
                @if let Some(bytes) = offer.storage_bytes { dt { "Storage" } dd { (crate::cli::format_bytes(bytes)) } }
                @if !offer.jurisdictions.is_empty() { dt { "Jurisdictions" } dd { (isolated_list(&offer.jurisdictions)) } }
                @if let Some(upstream) = &offer.upstream { dt { "Upstream" } dd { (upstream) } }
                @if let Some(policy) = &offer.data_policy { dt { "Data policy" } dd { (policy) } }
                @if let Some(conditions) = &offer.conditions { dt { "Conditions" } dd { (conditions) } }
                dt { "Contact" } dd { (offer.contact) }
                @if let Some(expires) = view.expires_at { dt { "Valid until" } dd { (format_time(expires)) } }
                dt { "Id" } dd { code { (view.id.to_hex()) } }
            }
        }
    }
}

async fn atom(State(snapshots): State<Snapshots>) -> impl IntoResponse {
    let snapshot = latest(&snapshots);
    let updated = snapshot
        .alerts
        .iter()
        .map(|alert| alert.updated_at)
        .max()
        .unwrap_or(snapshot.status.started_at);
    let mut feed = String::new();
    feed.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    feed.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    feed.push_str(&format!(
        "<title>solidarity alerts · {}</title>\n<id>urn:solidarity:node:{}:alerts</id>\n<updated>{}</updated>\n",
        xml_escape(&snapshot.status.federation),
        snapshot.status.node_key.to_hex(),
        format_time(updated)
    ));
    for view in snapshot.alerts.iter() {
        let alert = &view.alert;
        let title = format!(
            "[{}] {} · {}: {}",
            words(&alert.severity),
            words(&alert.category),
            alert.subject,
            alert.summary
        );
        let mut content = format!(
            "State: {}\nRaised by: {}\nJurisdictions: {}\n",
            words(&view.status),
            member_name(&snapshot, &view.author),
            alert.jurisdictions.join(", ")
        );
        if let Some(details) = &alert.details {
            content.push('\n');
            content.push_str(details);
        }
        feed.push_str(&format!(
            "<entry>\n<id>urn:solidarity:message:{}</id>\n<title>{}</title>\n<published>{}</published>\n<updated>{}</updated>\n<author><name>{}</name></author>\n<content type=\"text\">{}</content>\n</entry>\n",
            view.id.to_hex(),
            xml_escape(&title),
            format_time(view.created_at),
            format_time(view.updated_at),
            xml_escape(&member_name(&snapshot, &view.author)),
            xml_escape(&content)
        ));
    }
    feed.push_str("</feed>\n");
    (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        feed,
    )
}

/// Escapes text for XML element content and attribute values; drops characters XML 1.0
/// cannot carry at all.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Items of a list from the network, comma-separated, each in its own `<bdi>`: a
/// right-to-left override inside one item cannot reorder the others.
fn isolated_list<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> Markup {
    html! {
        @for (index, item) in items.into_iter().enumerate() {
            @if index > 0 { ", " }
            bdi { (item.as_ref()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::xml_escape;

    #[test]
    fn xml_escape_neutralises_markup_and_control_characters() {
        assert_eq!(
            xml_escape("<script>alert('x')</script> & \u{1}"),
            "&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; "
        );
    }
}
