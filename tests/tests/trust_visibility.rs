//! Revocation and trust are loud and true, through the real binary: a key that a
//! revocation or the end of its certificate takes out of trust stays listed, untrusted,
//! with the path it was trusted by and why it no longer is (`peers`, `member list`, the
//! control API); the daemon's log says once what was revoked, by whom and since when;
//! `key revoke` refuses a file that is not a revocation before the daemon sees it; and
//! `alert list` keeps the author's status apart from corroboration.

use std::path::Path;

use solidarity_control::{Distrust, MemberView, RevocationSigner, TrustBasis};
use solidarity_tests::{BinaryNode, cli, cli_init, cli_ok, free_port, wait_for};

const PASSPHRASE: &str = "a long collective passphrase";
/// Since when the seized server's messages are suspect, as the collective states it.
const SUSPECT_SINCE: &str = "2026-11-28T06:00:00Z";
const SUSPECT_SINCE_MS: u64 = 1_795_845_600_000;

fn init(dir: &Path) {
    cli_init(dir, free_port(), "trust");
}

fn peers(dir: &Path) -> Vec<MemberView> {
    serde_json::from_str(&cli_ok(dir, &["peers", "--json"])).expect("peers json")
}

fn peer(dir: &Path, key: &str) -> Option<MemberView> {
    peers(dir)
        .into_iter()
        .find(|member| member.key.to_hex() == key)
}

fn key_of(card: &str) -> String {
    card.split(['@', '~']).next().expect("card").to_owned()
}

fn stored_messages(dir: &Path) -> u64 {
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(dir, &["status", "--json"])).expect("status json");
    status["stored_messages"].as_u64().expect("count")
}

/// The line of `text` that contains every one of `parts`.
fn line_with<'a>(text: &'a str, parts: &[&str]) -> Option<&'a str> {
    text.lines()
        .find(|line| parts.iter().all(|part| line.contains(part)))
}

#[test]
fn keys_certified_by_an_identity_stay_listed_when_revoked_or_when_the_certificate_ends() {
    let root = tempfile::tempdir().expect("tempdir");
    let observer = root.path().join("observer");
    init(&observer);
    // An admin-added member (never started: only its card matters here).
    let friend = root.path().join("friend");
    init(&friend);
    let friend_card = cli_ok(&friend, &["id"]);
    cli_ok(
        &observer,
        &["member", "add", &friend_card, "--name", "friend"],
    );

    // The collective's identity key, kept off its servers, on the observer's list.
    let offline = root.path().join("offline");
    std::fs::create_dir(&offline).expect("offline dir");
    let passphrase = offline.join("passphrase");
    std::fs::write(&passphrase, format!("{PASSPHRASE}\n")).expect("passphrase");
    let identity_file = offline.join("identity.key");
    let pass = passphrase.to_str().expect("utf-8");
    let identity_key = cli_ok(
        &observer,
        &[
            "key",
            "new-identity",
            "--out",
            identity_file.to_str().expect("utf-8"),
            "--passphrase-file",
            pass,
        ],
    );
    cli_ok(
        &observer,
        &[
            "member",
            "add",
            &identity_key,
            "--name",
            "collective",
            "--identity",
        ],
    );
    let mut node = BinaryNode::start(&observer);

    // Two servers of the collective, certified by its identity: one for an hour, one for
    // a few seconds.
    let mut servers = Vec::new();
    for (name, valid_for) in [("seized", "1h"), ("lapsing", "4s")] {
        let dir = root.path().join(name);
        init(&dir);
        let card = cli_ok(&dir, &["id"]);
        let cert = offline.join(format!("{name}.cert"));
        cli_ok(
            &observer,
            &[
                "key",
                "certify",
                "--identity",
                identity_file.to_str().expect("utf-8"),
                "--node-key",
                &card,
                "--valid-for",
                valid_for,
                "--federation",
                "trust",
                "--out",
                cert.to_str().expect("utf-8"),
                "--passphrase-file",
                pass,
            ],
        );
        let published = cli_ok(
            &observer,
            &["key", "publish", "--cert", cert.to_str().expect("utf-8")],
        );
        assert!(
            published.contains("published certificate of key ")
                && published.contains("by identity collective")
                && published.contains("until "),
            "key publish says what it published: {published}"
        );
        servers.push((key_of(&card), card, cert));
    }
    let (seized, seized_card, seized_cert) = servers[0].clone();
    let (lapsing, _, _) = servers[1].clone();
    wait_for("both certified servers trusted", || {
        [&seized, &lapsing]
            .iter()
            .all(|key| peer(&observer, key).is_some_and(|member| member.trusted))
    });

    // `member list` says truly why each key is trusted; identities are listed as such.
    let list = cli_ok(&observer, &["member", "list"]);
    assert!(
        line_with(&list, &["friend", "added by admin"]).is_some(),
        "{list}"
    );
    assert!(
        line_with(
            &list,
            &[&identity_key, "identity key (certifies node keys)"]
        )
        .is_some(),
        "{list}"
    );
    assert!(
        line_with(
            &list,
            &[&seized, "certified by identity collective until 20"]
        )
        .is_some(),
        "{list}"
    );

    // A key that is not a revocation is refused by `key revoke`, before the daemon sees
    // anything: a node certificate, garbage, an empty file.
    let garbage = offline.join("garbage");
    std::fs::write(&garbage, "this is not a revocation\n").expect("garbage");
    let empty = offline.join("empty");
    std::fs::write(&empty, "").expect("empty");
    let not_envelope = offline.join("not-envelope");
    std::fs::write(&not_envelope, "00ff00ff\n").expect("hex");
    let before = stored_messages(&observer);
    for (file, kind) in [
        (&seized_cert, "is a node certificate, not a revocation"),
        (&garbage, "it is not hex"),
        (&empty, "it is empty"),
        (&not_envelope, "not a signed solidarity envelope"),
    ] {
        let (ok, stdout, stderr) = cli(
            &observer,
            &["key", "revoke", "--cert", file.to_str().expect("utf-8")],
        );
        assert!(!ok, "key revoke accepted {}: {stdout}", file.display());
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(kind),
            "the error names what the file is: {stderr}"
        );
    }
    assert_eq!(stored_messages(&observer), before, "nothing was stored");

    // The identity revokes the seized server's key.
    let revocation = offline.join("seized.revocation");
    cli_ok(
        &observer,
        &[
            "key",
            "revocation-cert",
            "--identity",
            identity_file.to_str().expect("utf-8"),
            "--key",
            &seized_card,
            "--compromised-since",
            SUSPECT_SINCE,
            "--federation",
            "trust",
            "--out",
            revocation.to_str().expect("utf-8"),
            "--passphrase-file",
            pass,
        ],
    );
    let revoked = cli_ok(
        &observer,
        &[
            "key",
            "revoke",
            "--cert",
            revocation.to_str().expect("utf-8"),
        ],
    );
    assert!(
        revoked.contains(&format!(
            "published revocation of collective ({}) signed by identity collective, suspect since {SUSPECT_SINCE}",
            &seized[..8]
        )),
        "key revoke says what it revokes: {revoked}"
    );

    // Revoked, the key stays listed: untrusted, with how it was trusted and since when
    // it is suspect.
    wait_for("the revoked key listed as revoked", || {
        peer(&observer, &seized).is_some_and(|member| !member.trusted)
    });
    let member = peer(&observer, &seized).expect("still listed");
    assert!(
        matches!(&member.trust, TrustBasis::Certified { identity, .. } if identity == "collective"),
        "{:?}",
        member.trust
    );
    assert_eq!(
        member.distrust,
        Some(Distrust::Revoked {
            since: SUSPECT_SINCE_MS,
            by: RevocationSigner::Identity {
                name: "collective".into()
            }
        })
    );
    assert_eq!(member.revoked_since, Some(SUSPECT_SINCE_MS));
    assert!(member.canary.is_none(), "no canary shown for a revoked key");
    let peers_text = cli_ok(&observer, &["peers"]);
    assert!(
        line_with(
            &peers_text,
            &[
                &seized[..8],
                "- (key revoked)",
                &format!("REVOKED since {SUSPECT_SINCE} by identity collective"),
                "certified by identity collective"
            ]
        )
        .is_some(),
        "{peers_text}"
    );
    let list = cli_ok(&observer, &["member", "list"]);
    assert!(
        line_with(
            &list,
            &[
                &seized,
                &format!("NOT TRUSTED: REVOKED since {SUSPECT_SINCE} by identity collective"),
                "certified by identity collective until"
            ]
        )
        .is_some(),
        "{list}"
    );

    // The short certificate ends by itself: the key stays listed, untrusted.
    wait_for("the lapsed certificate listed as ended", || {
        peer(&observer, &lapsing).is_some_and(|member| !member.trusted)
    });
    let member = peer(&observer, &lapsing).expect("still listed");
    let Some(Distrust::CertificateEnded { at }) = member.distrust else {
        panic!("not marked as ended: {:?}", member.distrust);
    };
    assert_eq!(member.certified_until, Some(at));
    let list = cli_ok(&observer, &["member", "list"]);
    assert!(
        line_with(&list, &[&lapsing, "NOT TRUSTED: certificate ended 20"]).is_some(),
        "{list}"
    );

    // The journal: the revocation names the revoked key, its name and collective, the
    // signer and since when; the end of a certificate and its warning before; each once.
    let log = node.log_text();
    let revoked_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("KEY REVOKED"))
        .collect();
    assert_eq!(revoked_lines.len(), 1, "logged once: {log}");
    for part in [
        &seized[..8],
        &format!("collective ({}) is revoked", &seized[..8]),
        "signed by identity collective",
        &format!("since {SUSPECT_SINCE} are suspect"),
    ] {
        assert!(
            revoked_lines[0].contains(part),
            "{part:?} missing: {}",
            revoked_lines[0]
        );
    }
    assert!(
        line_with(
            &log,
            &[
                &format!("certificate of collective ({})", &lapsing[..8]),
                "by identity collective ended",
                "no longer trusted"
            ]
        )
        .is_some(),
        "{log}"
    );
    assert!(
        line_with(
            &log,
            &[
                &format!("({})", &lapsing[..8]),
                "ask its collective for a renewal"
            ]
        )
        .is_some(),
        "{log}"
    );
    assert!(
        !revoked_lines[0].contains(&identity_key[..8]),
        "the identity key is not named as revoked"
    );

    // The identity itself is revoked (the collective lost it): it is listed as revoked,
    // and the keys it certified go with it, visibly.
    let identity_revocation = offline.join("identity.revocation");
    cli_ok(
        &observer,
        &[
            "key",
            "revocation-cert",
            "--identity",
            identity_file.to_str().expect("utf-8"),
            "--federation",
            "trust",
            "--out",
            identity_revocation.to_str().expect("utf-8"),
            "--passphrase-file",
            pass,
        ],
    );
    let published = cli_ok(
        &observer,
        &[
            "key",
            "revoke",
            "--cert",
            identity_revocation.to_str().expect("utf-8"),
        ],
    );
    assert!(
        published.contains("published revocation of collective")
            && published.contains("signed by the key itself"),
        "{published}"
    );
    wait_for("the identity listed as revoked", || {
        peer(&observer, &identity_key).is_some_and(|member| !member.trusted)
    });
    let identity_entry = peer(&observer, &identity_key).expect("identity listed");
    assert_eq!(identity_entry.trust, TrustBasis::Identity);
    assert!(matches!(
        identity_entry.distrust,
        Some(Distrust::Revoked {
            by: RevocationSigner::Itself,
            ..
        })
    ));
    let member = peer(&observer, &lapsing).expect("still listed");
    assert!(
        matches!(&member.distrust, Some(Distrust::IdentityRevoked { identity, .. }) if identity == "collective"),
        "{:?}",
        member.distrust
    );
    let list = cli_ok(&observer, &["member", "list"]);
    assert!(
        line_with(
            &list,
            &[
                &identity_key,
                "NOT TRUSTED: REVOKED since",
                "by the key itself"
            ]
        )
        .is_some(),
        "{list}"
    );
    assert!(
        line_with(
            &list,
            &[
                &lapsing,
                "NOT TRUSTED: identity collective REVOKED since",
                "its certificates no longer count"
            ]
        )
        .is_some(),
        "{list}"
    );
    wait_for("the identity's revocation logged", || {
        let log = node.log_text();
        line_with(
            &log,
            &[
                "IDENTITY REVOKED",
                &format!("identity collective ({})", &identity_key[..8]),
            ],
        )
        .is_some()
            && line_with(
                &log,
                &[
                    "KEY OUT OF TRUST",
                    &lapsing[..8],
                    "through identity collective, which is revoked since",
                ],
            )
            .is_some()
    });
    // A key in the wrong hands can sign revocations of itself at full speed (statements
    // have no quota): another one that changes nothing is stored, not logged again.
    let again = offline.join("identity-again.revocation");
    cli_ok(
        &observer,
        &[
            "key",
            "revocation-cert",
            "--identity",
            identity_file.to_str().expect("utf-8"),
            "--federation",
            "trust",
            "--out",
            again.to_str().expect("utf-8"),
            "--passphrase-file",
            pass,
        ],
    );
    let stored_before = stored_messages(&observer);
    cli_ok(
        &observer,
        &["key", "revoke", "--cert", again.to_str().expect("utf-8")],
    );
    wait_for("the second identity revocation stored", || {
        stored_messages(&observer) > stored_before
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = node.log_text();
    assert_eq!(
        log.lines()
            .filter(|line| line.contains("IDENTITY REVOKED"))
            .count(),
        1,
        "one identity revocation, logged once: {log}"
    );
    eprintln!("the daemon's trust journal:");
    for line in node.log_text().lines().filter(|line| {
        ["REVOKED", "OUT OF TRUST", "certificate of", "COMPROMISE"]
            .iter()
            .any(|word| line.contains(word))
    }) {
        eprintln!("  {line}");
    }

    // Restarted, the node lists the same and does not log the revocation again.
    assert!(node.terminate(), "clean exit");
    let before_restart = node.log_text().len();
    let node = BinaryNode::start(&observer);
    let member = peer(&observer, &seized).expect("listed after a restart");
    assert!(!member.trusted && member.revoked_since == Some(SUSPECT_SINCE_MS));
    assert!(
        !node.log_text()[before_restart..].contains("KEY REVOKED"),
        "a revocation is logged when learnt, not at every start"
    );
    drop(node);
}

#[test]
fn a_vouched_key_revoked_by_itself_stays_listed_and_alert_states_keep_author_and_corroboration_apart()
 {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, b, newcomer) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("n"),
    );
    for dir in [&a, &b, &newcomer] {
        init(dir);
    }
    let (card_a, card_b, card_n) = (
        cli_ok(&a, &["id"]),
        cli_ok(&b, &["id"]),
        cli_ok(&newcomer, &["id"]),
    );
    cli_ok(&a, &["member", "add", &card_b, "--name", "b"]);
    cli_ok(&b, &["member", "add", &card_a, "--name", "a"]);
    let node_a = BinaryNode::start(&a);
    let _node_b = BinaryNode::start(&b);
    wait_for("a and b connected", || {
        peers(&a).iter().any(|member| member.connected)
    });

    // Both vouch for the newcomer (vouch_threshold 2).
    cli_ok(&a, &["member", "vouch", &card_n, "--name", "newcomer"]);
    cli_ok(&b, &["member", "vouch", &card_n, "--name", "newcomer"]);
    let key_n = key_of(&card_n);
    wait_for("the newcomer trusted by vouching", || {
        peer(&a, &key_n).is_some_and(|member| member.trusted)
    });
    let list = cli_ok(&a, &["member", "list"]);
    assert!(
        line_with(&list, &[&key_n, "vouched by b, this node (2 of 2)"]).is_some(),
        "{list}"
    );

    // Its admins publish its own pre-made revocation from b.
    let revocation = root.path().join("newcomer.revocation");
    cli_ok(
        &newcomer,
        &[
            "key",
            "revocation-cert",
            "--out",
            revocation.to_str().expect("utf-8"),
            "--compromised-since",
            SUSPECT_SINCE,
        ],
    );
    let published = cli_ok(
        &b,
        &[
            "key",
            "revoke",
            "--cert",
            revocation.to_str().expect("utf-8"),
        ],
    );
    assert!(
        published.contains("published revocation of newcomer")
            && published.contains("signed by the key itself"),
        "{published}"
    );
    wait_for("a lists the newcomer as revoked", || {
        peer(&a, &key_n).is_some_and(|member| !member.trusted)
    });
    let member = peer(&a, &key_n).expect("still listed");
    assert!(
        matches!(&member.trust, TrustBasis::Vouched { by, threshold: 2 } if by.len() == 2),
        "{:?}",
        member.trust
    );
    assert_eq!(
        member.distrust,
        Some(Distrust::Revoked {
            since: SUSPECT_SINCE_MS,
            by: RevocationSigner::Itself
        })
    );
    let list = cli_ok(&a, &["member", "list"]);
    assert!(
        line_with(
            &list,
            &[
                &key_n,
                &format!("NOT TRUSTED: REVOKED since {SUSPECT_SINCE} by the key itself"),
                "vouched by b, this node (2 of 2)"
            ]
        )
        .is_some(),
        "{list}"
    );
    wait_for("a logged the revocation it learnt by gossip", || {
        line_with(
            &node_a.log_text(),
            &[
                "KEY REVOKED",
                &key_n[..8],
                &format!("newcomer ({}) is revoked", &key_n[..8]),
                "signed by the key itself",
                SUSPECT_SINCE,
            ],
        )
        .is_some()
    });

    // The author's status and the corroboration by other collectives, apart.
    let id = cli_ok(
        &a,
        &[
            "alert",
            "raise",
            "--kind",
            "seizure",
            "--subject",
            "a.example",
            "--severity",
            "critical",
            "--summary",
            "rack taken at 06:00",
        ],
    );
    cli_ok(&a, &["alert", "update", &id, "--status", "confirmed"]);
    wait_for("b has the alert", || {
        cli_ok(&b, &["alert", "list"]).contains(&id[..8])
    });
    cli_ok(&b, &["alert", "endorse", &id]);
    wait_for("a counts b's endorsement", || {
        cli_ok(&a, &["alert", "list"]).contains("1 of 2 collectives")
    });
    let list = cli_ok(&a, &["alert", "list"]);
    let header = list.lines().next().expect("header");
    assert!(
        header.contains("STATE") && header.contains("CORROBORATION"),
        "{header}"
    );
    assert!(
        line_with(
            &list,
            &[&id[..8], "confirmed by author", "1 of 2 collectives"]
        )
        .is_some(),
        "{list}"
    );
    assert!(
        !list.contains("unconfirmed") && !list.contains("confirmed,"),
        "{list}"
    );
}
