//! The two audiences of the status page (issue 10, §1 and §6).
//!
//! - A federation in crisis (a member under duress, one silent, one revoked, alerts of
//!   every kind): no byte of any public route names a canary state or holds a key; the
//!   admin view does show them (positive control).
//! - The admin listener, through the real binary: off by default, loopback only, and
//!   only with its token.
//! - The Atom feed, read by Python's `feedparser`.
//! - Screenshots of both views at 1280 and 360 px (`scripts/screenshots`, ignored in the
//!   suite: it takes a while and is for eyes, not assertions).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use solidarity::daemon::status_page::auth;
use solidarity_control::{CanaryState, ControlRequest, Raised, request};
use solidarity_proto::payload::{
    AlertCategory, AlertStatus, LegalType, MirrorOffer, MirrorService, Seized, Severity, Stance,
};
use solidarity_proto::{AuthorKey, MessageId};
use solidarity_tests::{
    BinaryNode, DEADLINE, FEDERATION, TestNode, cli, cli_init, cli_ok, eventually, http_get_with,
    sample_alert,
};

/// Every route of the public view, and one that does not exist.
const PUBLIC_ROUTES: &[&str] = &[
    "",
    "api/v1/status",
    "api/v1/alerts",
    "api/v1/offers",
    "alerts.atom",
    "style.css",
    "no/such/page",
];
/// Words that name a canary state; none may appear on a public route.
const CANARY_WORDS: &[&str] = &["duress", "silent", "changed", "canary"];
/// Every node has an admin page on a free loopback port and gives canaries one second of
/// grace; the node that goes silent signs a canary every second, so it turns silent within
/// seconds of stopping (the others keep the default interval, so that the duress canary
/// stays the latest one).
const CRISIS_SETTINGS: &[(&str, &str)] = &[
    ("canary_grace_secs", "1"),
    ("admin_addr", "\"127.0.0.1:0\""),
];
const SILENT_SETTINGS: &[(&str, &str)] = &[
    ("canary_interval_secs", "1"),
    ("canary_grace_secs", "1"),
    ("admin_addr", "\"127.0.0.1:0\""),
];
/// Index of the node that goes silent.
const SILENT: usize = 2;
/// How long a Chromium screenshot may take.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

async fn sign<R>(node: &TestNode, request: R) -> MessageId
where
    R: ControlRequest<Response = Raised> + Send + 'static,
{
    node.call(move |client| client.sign(&request))
        .await
        .expect("signed")
}

async fn canary_of(node: &TestNode, key: AuthorKey) -> Option<CanaryState> {
    node.peers()
        .await
        .into_iter()
        .find(|peer| peer.key == key)
        .and_then(|peer| peer.canary)
        .map(|canary| canary.state)
}

/// A federation of four seen from node 0: node 1 under duress, node 2 silent (stopped),
/// node 3 revoked; alerts critical and open, a legal request with updates, a resolved
/// one, an endorsement and a mirror offer.
struct Crisis {
    observer: TestNode,
    others: Vec<TestNode>,
    keys: Vec<AuthorKey>,
    /// Kept so the stopped node's data dir lives as long as the test.
    _silent: tempfile::TempDir,
}

async fn crisis() -> Crisis {
    let mut nodes = Vec::new();
    for index in 0..4 {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = if index == SILENT {
            SILENT_SETTINGS
        } else {
            CRISIS_SETTINGS
        };
        solidarity_tests::init_data_dir_with(dir.path(), settings);
        nodes.push(TestNode::start(dir).await);
    }
    solidarity_tests::connect_all(&nodes).await;
    let keys: Vec<AuthorKey> = nodes.iter().map(|node| node.key).collect();
    nodes[0]
        .set_collective(&[keys[3]], "collective-three")
        .await;

    // Node 0 holds node 1's duress commitment, as from node 1's card.
    let passphrase = "orange balloons at dawn";
    let duress_key = solidarity_proto::payload::duress_key(&keys[1], passphrase);
    let commitment_bytes = solidarity_proto::payload::duress_commitment(&duress_key);
    let commitment = hex::encode(commitment_bytes);
    let card = format!("{}~{commitment}", nodes[1].card().await);
    nodes[0].add_members(&[("node1".into(), card)]).await;

    let seizure = sign(
        &nodes[1],
        request::AlertRaise {
            alert: sample_alert(
                AlertCategory::Seizure,
                Severity::Critical,
                "Police took two servers from our rack",
            ),
            expires_in_ms: None,
        },
    )
    .await;
    let mut legal = sample_alert(
        AlertCategory::LegalRequest,
        Severity::High,
        "Court order for mailbox metadata",
    );
    legal.legal_type = Some(LegalType::CourtOrder);
    legal.authority = Some("Tribunal judiciaire de Paris".into());
    legal.legal_basis = Some("Art. 60-1 CPP".into());
    legal.event_date = Some("2026-11-30".into());
    legal.seized = Some(Seized::Metadata);
    legal.services = vec!["mail".into()];
    legal.domains = vec!["mail.example".into()];
    let legal = sign(
        &nodes[2],
        request::AlertRaise {
            alert: legal,
            expires_in_ms: None,
        },
    )
    .await;
    for (status, note) in [
        (AlertStatus::Contested, "our lawyer filed an objection"),
        (AlertStatus::GagActive, "we may not say more"),
    ] {
        sign(
            &nodes[2],
            request::AlertUpdate {
                alert: legal,
                status,
                note: Some(note.into()),
            },
        )
        .await;
    }
    let outage = sign(
        &nodes[3],
        request::AlertRaise {
            alert: sample_alert(
                AlertCategory::Outage,
                Severity::Medium,
                "Upstream link down for an hour",
            ),
            expires_in_ms: None,
        },
    )
    .await;
    sign(
        &nodes[3],
        request::AlertUpdate {
            alert: outage,
            status: AlertStatus::Resolved,
            note: Some("link restored".into()),
        },
    )
    .await;
    sign(
        &nodes[2],
        request::AlertEndorse {
            alert: seizure,
            stance: Stance::Endorse,
            note: None,
        },
    )
    .await;
    sign(
        &nodes[1],
        request::MirrorOffer {
            offer: MirrorOffer {
                services: vec![MirrorService::Web, MirrorService::Mail],
                storage_bytes: Some(50 << 30),
                jurisdictions: vec!["IS".into()],
                upstream: Some("1984 hosting".into()),
                data_policy: Some("no logs".into()),
                conditions: None,
                contact: "admins@example.org".into(),
            },
            valid_for_ms: 7 * 24 * 3600 * 1000,
        },
    )
    .await;
    eventually("every alert and its updates on node 0", || async {
        let alerts = nodes[0].alerts().await;
        alerts.len() == 3
            && alerts
                .iter()
                .any(|a| a.id == legal && a.status == AlertStatus::GagActive)
            && alerts
                .iter()
                .any(|a| a.id == outage && a.status == AlertStatus::Resolved)
            && alerts
                .iter()
                .any(|a| a.id == seizure && !a.corroboration.endorsed_by.is_empty())
    })
    .await;

    // Node 3's collective publishes the revocation it kept offline.
    let offline = tempfile::tempdir().expect("tempdir");
    let certificate = offline.path().join("revocation.cert");
    let (data_dir, out) = (nodes[3].dir.path().to_owned(), certificate.clone());
    tokio::task::spawn_blocking(move || {
        solidarity::cli::run_key(
            &data_dir,
            solidarity::cli::KeyCommand::RevocationCert {
                out,
                reason: "rack seized at 06:00".into(),
                compromised_since: None,
                identity: None,
                key: None,
                federation: Some(FEDERATION.into()),
                passphrase_file: None,
            },
            false,
        )
    })
    .await
    .expect("join")
    .expect("revocation certificate");
    let envelope =
        hex::decode(std::fs::read_to_string(&certificate).expect("cert").trim()).expect("hex");
    sign(&nodes[0], request::PublishStatement { envelope }).await;
    eventually("node 0 holds node 3 revoked", || async {
        nodes[0]
            .peers()
            .await
            .iter()
            .any(|peer| peer.key == keys[3] && peer.revoked_since.is_some())
    })
    .await;

    // Node 1's admins are coerced; node 2 goes dark.
    sign(
        &nodes[1],
        request::CanaryDuress {
            token: MessageId(solidarity_proto::payload::duress_token(
                &commitment_bytes,
                &keys[1],
                [1; 16],
            )),
        },
    )
    .await;
    eventually("node 0 sees node 1's duress", || async {
        canary_of(&nodes[0], keys[1]).await == Some(CanaryState::Duress)
    })
    .await;
    let silent_node = nodes.remove(SILENT);
    let silent = silent_node.stop().await;
    eventually("node 0 sees node 2 silent", || async {
        canary_of(&nodes[0], keys[SILENT]).await == Some(CanaryState::Silent)
    })
    .await;
    let observer = nodes.remove(0);
    Crisis {
        observer,
        others: nodes,
        keys,
        _silent: silent,
    }
}

async fn get(url: String, headers: Vec<(String, String)>) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        http_get_with(&url, &headers)
    })
    .await
    .expect("http")
}

async fn urls(node: &TestNode) -> (String, String) {
    let status = node.call(|client| client.status()).await.expect("status");
    (
        status.status_url,
        status.admin_url.expect("the admin page is on"),
    )
}

/// Every form in which a key could leak: hex, short hex, base58 peer id.
fn key_forms(key: &AuthorKey) -> Vec<String> {
    vec![
        key.to_hex(),
        key.short(),
        solidarity::identity::peer_id(key)
            .expect("peer id")
            .to_base58(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_public_route_shows_a_canary_state_or_any_key_in_a_crisis() {
    let crisis = crisis().await;
    let (public, admin) = urls(&crisis.observer).await;
    let forms: Vec<(usize, String)> = crisis
        .keys
        .iter()
        .enumerate()
        .flat_map(|(index, key)| key_forms(key).into_iter().map(move |form| (index, form)))
        .collect();
    let mut leaks = Vec::new();
    let mut bytes = 0;
    let mut pages = Vec::new();
    for route in PUBLIC_ROUTES {
        let (head, body) = get(format!("{public}{route}"), vec![]).await;
        let response = format!("{head}\r\n\r\n{body}");
        bytes += response.len();
        let lower = response.to_ascii_lowercase();
        for word in CANARY_WORDS {
            if lower.contains(word) {
                leaks.push(format!("/{route}: the word {word:?}"));
            }
        }
        for (index, form) in &forms {
            if response.contains(form.as_str()) || lower.contains(&form.to_ascii_lowercase()) {
                leaks.push(format!("/{route}: node {index}'s key as {form}"));
            }
        }
        pages.push((route, body));
    }
    println!(
        "public routes: {}, {bytes} bytes, {} key forms looked for, leaks: {leaks:?}",
        PUBLIC_ROUTES.len(),
        forms.len()
    );
    assert!(leaks.is_empty(), "the public view leaks: {leaks:?}");

    // The public page still says what the public needs.
    let page = &pages[0].1;
    for expected in [
        "Police took two servers from our rack",
        "Court order for mailbox metadata",
        "we may not say more",
        "node1",
        "A key of <strong><bdi>collective-three</bdi></strong> was revoked",
        "1 open critical alert",
        "1 revoked key",
        "<span class=\"ago\">(just now)</span>",
    ] {
        assert!(
            page.contains(expected),
            "the public page lacks {expected:?}"
        );
    }
    let order: Vec<usize> = [
        "Police took two servers",
        "Court order for mailbox",
        "Upstream link down",
    ]
    .iter()
    .map(|summary| page.find(summary).expect("alert on the page"))
    .collect();
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "open critical, open high, then resolved: {order:?}"
    );
    let status: serde_json::Value = serde_json::from_str(&pages[1].1).expect("status json");
    assert!(status.get("members").is_none() && status.get("node_key").is_none());
    assert_eq!(status["notices"][0]["collective"], "collective-three");

    // Positive control: the admin view shows what the public one hides.
    let token = auth::read_token(crisis.observer.dir.path()).expect("admin token");
    let (head, body) = get(
        admin,
        vec![("Authorization".into(), format!("Bearer {token}"))],
    )
    .await;
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    for expected in [
        "DURESS".to_owned(),
        "SILENT".to_owned(),
        "REVOKED".to_owned(),
        crisis.keys[1].short(),
        "1 member under DURESS: node1".to_owned(),
    ] {
        assert!(
            body.contains(&expected),
            "the admin page lacks {expected:?}"
        );
    }
    for node in crisis.others {
        node.stop().await;
    }
    crisis.observer.stop().await;
}

fn status_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&cli_ok(dir, &["status", "--json"])).expect("status json")
}

fn status_code(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Runs `solidarity node` expecting it to refuse to start; kills it if it runs instead.
fn node_refuses(dir: &Path) -> String {
    let mut child = Command::new(solidarity_tests::binary())
        .arg("--data")
        .arg(dir)
        .arg("node")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "the daemon accepted the config");
            break;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the daemon started with a non-loopback admin_addr");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    stderr
}

/// What is asked of the admin page: a name, the URL, headers, the status expected.
type AdminCase<'a> = (&'a str, String, Vec<(&'a str, String)>, u16);

#[test]
fn the_admin_page_is_off_by_default_loopback_only_and_needs_its_token() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, FEDERATION);

    // Off by default: no URL, no token, nothing in `status`.
    let mut node = BinaryNode::start(&dir);
    assert!(status_json(&dir)["admin_url"].is_null());
    assert!(
        !auth::token_path(&dir).exists(),
        "a token without an admin page"
    );
    assert!(!cli_ok(&dir, &["status"]).contains("admin page"));
    assert!(node.terminate());

    // Refused off loopback, with the reason.
    let config = dir.join(solidarity::config::CONFIG_FILE);
    let original = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{original}\nadmin_addr = \"0.0.0.0:0\"\n")).expect("write");
    let stderr = node_refuses(&dir);
    assert!(
        stderr.contains("`admin_addr`: 0.0.0.0:0 is not a loopback address"),
        "{stderr}"
    );
    println!("non-loopback admin_addr refused: {}", stderr.trim());

    // On: the token file, the URL in `status`, and nothing without the token.
    std::fs::write(
        &config,
        format!("{original}\nadmin_addr = \"127.0.0.1:0\"\n"),
    )
    .expect("write");
    let mut node = BinaryNode::start(&dir);
    let token = auth::read_token(&dir).expect("token file");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(auth::token_path(&dir))
            .expect("token")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "admin.token is {mode:o}");
    let admin = status_json(&dir)["admin_url"]
        .as_str()
        .expect("admin url")
        .to_owned();
    let printed = cli_ok(&dir, &["status"]);
    assert!(
        printed.contains(&format!("admin page   {admin}login?token={token}")),
        "{printed}"
    );
    let public = status_json(&dir)["status_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_ne!(public, admin);

    let wrong = token.chars().rev().collect::<String>();
    let cases: Vec<AdminCase<'_>> = vec![
        ("no token", admin.clone(), vec![], 401),
        (
            "a wrong cookie",
            admin.clone(),
            vec![("Cookie", format!("solidarity_admin={wrong}"))],
            401,
        ),
        (
            "a wrong bearer",
            admin.clone(),
            vec![("Authorization", format!("Bearer {wrong}"))],
            401,
        ),
        (
            "a wrong login",
            format!("{admin}login?token={wrong}"),
            vec![],
            401,
        ),
        ("no token, style", format!("{admin}style.css"), vec![], 401),
        ("no token, unknown path", format!("{admin}x"), vec![], 401),
        (
            "the bearer",
            admin.clone(),
            vec![("Authorization", format!("Bearer {token}"))],
            200,
        ),
        (
            "the token as a cookie (only a login's session id is one)",
            admin.clone(),
            vec![("Cookie", format!("solidarity_admin={token}"))],
            401,
        ),
        (
            "the login",
            format!("{admin}login?token={token}"),
            vec![],
            303,
        ),
    ];
    for (what, url, headers, expected) in cases {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let (head, body) = http_get_with(&url, &headers);
        assert_eq!(status_code(&head), expected, "{what}: {head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("content-security-policy: default-src 'none'")
                && lower.contains("x-content-type-options: nosniff"),
            "{what}: no security headers: {head}"
        );
        if expected == 401 {
            assert!(
                !body.contains("DURESS") && !body.contains(&token) && body.len() < 200,
                "{what}: the refusal says too much: {body}"
            );
        }
        if expected == 303 {
            let session = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .starts_with("set-cookie:")
                        .then(|| line.split_once("solidarity_admin=")?.1.split(';').next())
                        .flatten()
                })
                .unwrap_or_else(|| panic!("{what}: no session cookie: {head}"));
            assert!(
                lower.contains("location: /")
                    && lower.contains("; httponly; samesite=strict; path=/")
                    && session.len() == 64
                    && session != token,
                "{what}: the cookie must be a fresh session id, never the token: {head}"
            );
            let (head, body) = http_get_with(
                &admin,
                &[("Cookie", &format!("solidarity_admin={session}"))],
            );
            assert_eq!(
                status_code(&head),
                200,
                "the login's session cookie: {head}"
            );
            assert!(
                body.contains("solidarity admin"),
                "the session cookie opens the admin page"
            );
        }
        if expected == 200 {
            assert!(
                body.contains("solidarity admin"),
                "{what}: not the admin page"
            );
        }
        println!("admin page, {what}: {}", status_code(&head));
    }
    // The public page is not the admin page, whatever the request carries.
    let (_, page) = http_get_with(&public, &[("Authorization", &format!("Bearer {token}"))]);
    assert!(!page.contains("solidarity admin"));
    assert!(!page.contains(&token));
    assert!(node.terminate());
    let (ok, _, _) = cli(&dir, &["status"]);
    assert!(!ok, "the daemon stopped");
}

fn python_feedparser(feed: &str) -> serde_json::Value {
    let script = r#"
import json, sys, feedparser
d = feedparser.parse(sys.stdin.read())
print(json.dumps({
    "bozo": int(d.bozo),
    "error": str(d.get("bozo_exception", "")),
    "self": [l.href for l in d.feed.get("links", []) if l.rel == "self"],
    "id": d.feed.get("id"),
    "entries": [{
        "id": e.get("id"),
        "title": e.get("title"),
        "link": e.get("link"),
        "author": e.get("author"),
        "content": e.get("content", [{}])[0].get("value", ""),
    } for e in d.entries],
}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test installs feedparser)");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), feed.as_bytes())
        .expect("feed to python");
    let output = child.wait_with_output().expect("python3");
    assert!(
        output.status.success(),
        "feedparser failed (pip install feedparser): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("feedparser json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_atom_feed_is_valid_for_feedparser_with_links_authors_and_legal_fields() {
    let nodes = solidarity_tests::federation(2).await;
    let mut legal = sample_alert(
        AlertCategory::LegalRequest,
        Severity::High,
        "Warrant for the list server <b>now</b>",
    );
    legal.legal_type = Some(LegalType::Warrant);
    legal.authority = Some("Landgericht Berlin".into());
    legal.legal_basis = Some("§ 100a StPO".into());
    legal.event_date = Some("2026-11-29".into());
    legal.seized = Some(Seized::Content);
    legal.jurisdictions = vec!["DE".into()];
    legal.services = vec!["lists".into()];
    legal.domains = vec!["lists.example".into()];
    let id = sign(
        &nodes[1],
        request::AlertRaise {
            alert: legal,
            expires_in_ms: None,
        },
    )
    .await;
    sign(
        &nodes[1],
        request::AlertUpdate {
            alert: id,
            status: AlertStatus::Refused,
            note: Some("we refused & appealed".into()),
        },
    )
    .await;
    eventually("the updated alert on node 0", || async {
        nodes[0]
            .alerts()
            .await
            .iter()
            .any(|alert| alert.id == id && alert.status == AlertStatus::Refused)
    })
    .await;
    let status = nodes[0]
        .call(|client| client.status())
        .await
        .expect("status");
    let url = format!("{}alerts.atom", status.status_url);
    let (_, feed) = get(url, vec![("Host".into(), "news.example.onion".into())]).await;
    let parsed = python_feedparser(&feed);
    println!("feedparser: {parsed}");
    assert_eq!(parsed["bozo"], 0, "feedparser: {}", parsed["error"]);
    assert_eq!(parsed["self"][0], "http://news.example.onion/alerts.atom");
    let entries = parsed["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["id"], format!("urn:solidarity:alert:{}", id.to_hex()));
    assert_eq!(
        entry["link"],
        format!("http://news.example.onion/#alert-{}", id.to_hex())
    );
    assert_eq!(entry["author"], "node1");
    assert!(
        entry["title"]
            .as_str()
            .is_some_and(|title| title.contains("Warrant for the list server <b>now</b>")),
        "{entry}"
    );
    let content = entry["content"].as_str().expect("content");
    for expected in [
        "Legal instrument: warrant",
        "Authority: Landgericht Berlin",
        "Legal basis: § 100a StPO",
        "Event date: 2026-11-29",
        "Seized: content",
        "Jurisdictions: DE",
        "Services: lists",
        "Domains: lists.example",
        "Latest update",
        "refused — we refused & appealed",
    ] {
        assert!(
            content.contains(expected),
            "feed content lacks {expected:?}: {content}"
        );
    }
    for node in &nodes {
        for form in key_forms(&node.key) {
            assert!(!feed.contains(&form), "the feed holds a node key");
        }
    }
    // With an address or an unusable Host the links are relative (the feed repeats no
    // address), and the feed still parses.
    for host in ["127.0.0.1:7448", "bad host\"><x"] {
        let url = format!("{}alerts.atom", status.status_url);
        let (_, feed) = get(url, vec![("Host".into(), host.into())]).await;
        assert!(
            feed.contains(
                "<link rel=\"self\" type=\"application/atom+xml\" href=\"/alerts.atom\"/>"
            ),
            "Host {host}: {feed}"
        );
        assert!(
            !feed.contains("127.0.0.1"),
            "Host {host}: an address in the feed"
        );
        assert_eq!(python_feedparser(&feed)["bozo"], 0);
    }
    for node in nodes {
        node.stop().await;
    }
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("screenshots need headless Chromium: apt-get install --no-install-recommends chromium");
}

/// One headless Chromium screenshot of `url` at `width` × `height`.
fn screenshot(chromium: &Path, url: &str, width: u32, height: u32, file: &Path) {
    use std::os::unix::process::CommandExt;
    let profile = tempfile::tempdir().expect("chromium profile");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", file.display()))
        .arg(url)
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            panic!("chromium took too long on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(file.is_file(), "no screenshot {}", file.display());
}

/// `scripts/screenshots`: both views of a federation in crisis at 1280 and 360 px, into
/// `target/screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "for eyes: run scripts/screenshots"]
async fn screenshots_of_both_views_at_1280_and_360_px() {
    let chromium = chromium();
    let crisis = crisis().await;
    let (public, admin) = urls(&crisis.observer).await;
    let token = auth::read_token(crisis.observer.dir.path()).expect("token");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&out).expect("target/screenshots");
    let login = format!("{admin}login?token={token}");
    let shots = [
        ("public-1280.png", public.clone(), 1280, 2200),
        ("public-360.png", public, 360, 4200),
        ("admin-1280.png", login.clone(), 1280, 2600),
        ("admin-360.png", login, 360, 5600),
    ];
    for (name, url, width, height) in shots {
        let (chromium, file) = (chromium.clone(), out.join(name));
        tokio::task::spawn_blocking(move || screenshot(&chromium, &url, width, height, &file))
            .await
            .expect("screenshot");
        println!("screenshot {}", out.join(name).display());
    }
    for node in crisis.others {
        node.stop().await;
    }
    crisis.observer.stop().await;
}
