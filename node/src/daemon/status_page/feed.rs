//! The Atom feed of alerts (RFC 4287), part of the public view.
//!
//! - Ids: `urn:solidarity:federation:<federation id>:alerts` for the feed and
//!   `urn:solidarity:alert:<alert id>` per entry; never the node key, so the feed of every
//!   member of one federation names the same alerts the same way.
//! - `rel="self"` must be an absolute IRI to be useful to aggregators. The node does not
//!   know the name it is published under (a web server or an onion service in front of
//!   it), so it takes the `Host` header of the request, checked to be a plain `host[:port]`
//!   (and `X-Forwarded-Proto: https` from a reverse proxy). That host is what the reader
//!   already used to reach the feed, so it reveals nothing new; the response is never
//!   cached (`no-store`), so a forged `Host` only changes the forger's own copy. A host
//!   that is an IP address (or `localhost`) is not repeated: feeds get republished, and
//!   the page never shows an address. Without a usable name the links fall back to
//!   relative references, which Atom allows (resolved against the feed's own URL).
//! - Each entry links to its card on the page (`/#alert-<id>`), names its author by member
//!   name, and carries the legal fields and the latest update as text.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use solidarity_proto::FederationId;
use solidarity_proto::state::AlertView;

use super::public::public_name;
use super::render::crisis_order;
use super::{Snapshots, latest};
use crate::daemon::snapshot::Snapshot;
use crate::render::{corroboration_text, format_time, words};

/// Longest `Host` header used for the feed's links.
const MAX_HOST_BYTES: usize = 255;

/// `scheme://host` of the request when its `Host` header is a plain `name[:port]`; empty
/// (relative links) otherwise.
pub fn base_url(headers: &HeaderMap) -> String {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return String::new();
    };
    if host.len() > MAX_HOST_BYTES || !is_host_name(host) {
        return String::new();
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// Whether `host` is a DNS name with an optional port: labels of letters, digits and `-`,
/// the last one starting with a letter (as every top-level domain does). That leaves out
/// every way of writing an address, not only the dotted quad: `127.1`, `2130706433`,
/// `0x7f000001`, `1.2.3.4.`, `[::1]`, and `localhost`.
fn is_host_name(host: &str) -> bool {
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    let port_ok = port.is_empty() && !host.contains(':')
        || (!port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()));
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let last_is_word = name
        .rsplit('.')
        .next()
        .and_then(|label| label.bytes().next())
        .is_some_and(|b| b.is_ascii_alphabetic());
    port_ok && labels_ok && last_is_word && !name.eq_ignore_ascii_case("localhost")
}

pub async fn atom(State(snapshots): State<Snapshots>, headers: HeaderMap) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        feed(&latest(&snapshots), &base_url(&headers)),
    )
}

/// Most entries in the feed: the first alerts in crisis order (SPEC §18).
pub const FEED_ENTRIES: usize = 50;

/// The feed of `snapshot`, its links under `base` (`http://host` or empty).
pub fn feed(snapshot: &Snapshot, base: &str) -> String {
    let status = &snapshot.status;
    let updated = snapshot
        .alerts
        .iter()
        .map(|alert| alert.updated_at)
        .max()
        .unwrap_or(status.started_at);
    let mut feed = String::new();
    feed.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    feed.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    feed.push_str(&format!(
        "<title>solidarity alerts · {}</title>\n<id>urn:solidarity:federation:{}:alerts</id>\n<updated>{}</updated>\n<link rel=\"self\" type=\"application/atom+xml\" href=\"{base}/alerts.atom\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"{base}/\"/>\n<author><name>solidarity node of {}</name></author>\n",
        xml_escape(&status.federation),
        FederationId::from_name(&status.federation).to_hex(),
        format_time(updated),
        xml_escape(&status.federation),
    ));
    for view in crisis_order(&snapshot.alerts)
        .into_iter()
        .take(FEED_ENTRIES)
    {
        feed.push_str(&entry(snapshot, base, view));
    }
    feed.push_str("</feed>\n");
    feed
}

fn entry(snapshot: &Snapshot, base: &str, view: &AlertView) -> String {
    let alert = &view.alert;
    let author = public_name(snapshot, &view.author);
    let title = format!(
        "[{}] {} · {}: {}",
        words(&alert.severity),
        words(&alert.category),
        alert.subject,
        alert.summary
    );
    let mut lines = vec![
        format!("State: {}", words(&view.status)),
        format!("Raised by: {author}"),
        format!("Subject: {}", alert.subject),
    ];
    if let Some(latest) = view.history.last() {
        let note = latest
            .note
            .as_deref()
            .map(|note| format!(" — {note}"))
            .unwrap_or_default();
        lines.push(format!(
            "Latest update ({}): {}{note}",
            format_time(latest.created_at),
            words(&latest.status)
        ));
    }
    if let Some(corroboration) = corroboration_text(view) {
        lines.push(format!("Corroboration: {corroboration}"));
    }
    let mut optional = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            lines.push(format!("{label}: {value}"));
        }
    };
    optional("Legal instrument", alert.legal_type.as_ref().map(words));
    optional("Authority", alert.authority.clone());
    optional("Legal basis", alert.legal_basis.clone());
    optional("Event date", alert.event_date.clone());
    optional("Seized", alert.seized.as_ref().map(words));
    optional("Jurisdictions", Some(alert.jurisdictions.join(", ")));
    optional("Services", Some(alert.services.join(", ")));
    optional("Domains", Some(alert.domains.join(", ")));
    optional("Upstream", alert.upstream.clone());
    optional("References", Some(alert.references.join(", ")));
    let mut content = lines.join("\n");
    content.push('\n');
    if let Some(details) = &alert.details {
        content.push('\n');
        content.push_str(details);
    }
    if view.suspect {
        content.push_str(
            "\n\nSuspect: signed by a key known to be in two hands; it may not come from its owner.",
        );
    }
    let id = view.id.to_hex();
    format!(
        "<entry>\n<id>urn:solidarity:alert:{id}</id>\n<title>{}</title>\n<link rel=\"alternate\" type=\"text/html\" href=\"{base}/#alert-{id}\"/>\n<published>{}</published>\n<updated>{}</updated>\n<author><name>{}</name></author>\n<content type=\"text\">{}</content>\n</entry>\n",
        xml_escape(&title),
        format_time(view.created_at),
        format_time(view.updated_at),
        xml_escape(&author),
        xml_escape(&content)
    )
}

/// Escapes text for XML element content and attribute values; drops characters XML 1.0
/// cannot carry at all.
pub fn xml_escape(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn xml_escape_neutralises_markup_and_control_characters() {
        assert_eq!(
            xml_escape("<script>alert('x')</script> & \u{1}"),
            "&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; "
        );
    }

    #[test]
    fn the_self_link_takes_only_a_plain_host() {
        let with = |host: &str, proto: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).expect("header"));
            if let Some(proto) = proto {
                headers.insert(
                    "x-forwarded-proto",
                    HeaderValue::from_str(proto).expect("header"),
                );
            }
            base_url(&headers)
        };
        assert_eq!(with("abc.onion", Some("https")), "https://abc.onion");
        assert_eq!(with("news.example:8080", None), "http://news.example:8080");
        assert_eq!(with("127.0.0.1:7448", None), "", "no address in the feed");
        assert_eq!(with("192.0.2.1", None), "");
        assert_eq!(with("[::1]:80", None), "");
        assert_eq!(with("localhost:7448", None), "");
        assert_eq!(with("evil\"><x", None), "");
        assert_eq!(with("a/b", None), "");
        // Other spellings of an address, which browsers and resolvers accept.
        for address in [
            "127.1",
            "127.1:7448",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "192.0.2.1.",
            "192.0.2.1.:80",
            "localhost.",
            "news.example:80:90",
            "news.example:",
            "news..example",
        ] {
            assert_eq!(with(address, None), "", "{address}");
        }
        assert_eq!(with("news.example.", None), "http://news.example.");
        assert_eq!(base_url(&HeaderMap::new()), "");
    }
}
