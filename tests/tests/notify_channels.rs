//! The three notification channels against real far ends: aiosmtpd (STARTTLS, implicit TLS,
//! AUTH), GnuPG decrypting and verifying PGP/MIME, an HTTP receiver checking the webhook
//! signature, and exec hooks (`/bin/sh` scripts). Each test is bounded in time.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use solidarity::notify::channel::Channel;
use solidarity::notify::config::{
    ChannelConfig, ExecTarget, Filter, MailTarget, MailTls, Target, WebhookTarget,
};
use solidarity::notify::doc::{AlertFields, Batch, NoticeDoc, NoticeType, SCHEMA, Severity};
use solidarity_tests::gpg::{Gpg, KeyAlgo};
use solidarity_tests::hook::HookReceiver;
use solidarity_tests::smtp::{SmtpOptions, SmtpServer};

/// The longest any single test may take.
const TEST_BOUND: Duration = Duration::from_secs(60);
const SUMMARY: &str = "Police seized server rack 7 at the Nordhafen data centre";
const TITLE: &str = "New alert: seizure at nordhafen.example";
const ALERT_SUBJECT: &str = "nordhafen.example";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn batch() -> Batch {
    Batch {
        schema: SCHEMA.to_owned(),
        federation: "test-federation".to_owned(),
        channel: "ch".to_owned(),
        sent_at: 1_767_225_600_000,
        notices: vec![NoticeDoc {
            id: "ab".repeat(32),
            notice_type: NoticeType::Alert,
            severity: Severity::High,
            at: 1_767_225_600_000,
            title: TITLE.to_owned(),
            text: format!("{SUMMARY}\nStatus: open"),
            member: Some("collective-b".to_owned()),
            alert: Some(AlertFields {
                id: "cd".repeat(32),
                kind: "seizure".to_owned(),
                severity: Severity::High,
                subject: ALERT_SUBJECT.to_owned(),
                summary: SUMMARY.to_owned(),
                jurisdictions: vec!["DE".to_owned()],
                status: "open".to_owned(),
                created_at: 1_767_225_500_000,
            }),
        }],
    }
}

fn config(target: Target, timeout: Duration) -> ChannelConfig {
    ChannelConfig {
        name: "ch".to_owned(),
        private: false,
        filter: Filter {
            types: Vec::new(),
            min_severity: Severity::Info,
            kinds: Vec::new(),
            jurisdictions: Vec::new(),
            members: Vec::new(),
        },
        settle: Duration::ZERO,
        max_per_hour: None,
        timeout,
        target,
    }
}

fn mail_target(server: &SmtpServer, tls: MailTls) -> MailTarget {
    MailTarget {
        server: "127.0.0.1".to_owned(),
        port: server.port(),
        tls,
        credentials: None,
        from: "node@example.org".to_owned(),
        to: vec!["admin@example.org".to_owned()],
        encrypt_to: Vec::new(),
        sign_key: None,
        ca_pem: Some(server.ca_pem()),
    }
}

async fn send(target: Target, timeout: Duration) -> Result<(), String> {
    let channel = Channel::new(&config(target, timeout)).map_err(|error| format!("{error:#}"))?;
    tokio::time::timeout(TEST_BOUND, channel.send(&batch()))
        .await
        .expect("send bounded")
        .map_err(|error| error.reason)
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.split("\r\n\r\n").next().and_then(|head| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    })
}

fn no_alert_text(raw: &str) {
    for secret in [SUMMARY, TITLE, ALERT_SUBJECT, "seizure", "Nordhafen"] {
        assert!(!raw.contains(secret), "the raw mail holds {secret:?}");
    }
}

#[tokio::test]
async fn mail_over_starttls_with_auth_arrives_with_subject_and_text() {
    let auth = Some(("node".to_owned(), "correct horse".to_owned()));
    let server = SmtpServer::start(SmtpOptions {
        starttls: true,
        auth: auth.clone(),
        ..SmtpOptions::default()
    })
    .expect("smtp");
    let mut target = mail_target(&server, MailTls::Starttls);
    target.credentials = auth;
    send(Target::Mail(target.clone()), Duration::from_secs(20))
        .await
        .expect("accepted");
    let messages = server.wait_for_messages(1, Duration::from_secs(10));
    let raw = &messages[0];
    assert_eq!(
        header(raw, "Subject"),
        Some(&*format!("[test-federation] {TITLE}"))
    );
    assert!(raw.contains(SUMMARY), "{raw}");

    target.credentials = Some(("node".to_owned(), "wrong".to_owned()));
    let reason = send(Target::Mail(target), Duration::from_secs(20))
        .await
        .expect_err("wrong password");
    assert!(reason.contains("authentication"), "{reason}");
    assert!(!reason.contains("example.org"), "{reason}");
    assert_eq!(server.messages().len(), 1, "nothing more delivered");
}

#[tokio::test]
async fn starttls_mode_refuses_a_server_without_starttls() {
    let server = SmtpServer::start(SmtpOptions::default()).expect("smtp");
    let reason = send(
        Target::Mail(mail_target(&server, MailTls::Starttls)),
        Duration::from_secs(20),
    )
    .await
    .expect_err("no STARTTLS");
    assert!(reason.contains("TLS"), "{reason}");
    assert!(server.messages().is_empty(), "nothing delivered in plain");
}

#[tokio::test]
async fn implicit_tls_works_and_451_is_a_send_error() {
    let server = SmtpServer::start(SmtpOptions {
        implicit_tls: true,
        ..SmtpOptions::default()
    })
    .expect("smtp");
    send(
        Target::Mail(mail_target(&server, MailTls::Implicit)),
        Duration::from_secs(20),
    )
    .await
    .expect("accepted");
    server.wait_for_messages(1, Duration::from_secs(10));

    let failing = SmtpServer::start(SmtpOptions {
        fail_data: true,
        ..SmtpOptions::default()
    })
    .expect("smtp");
    let reason = send(
        Target::Mail(mail_target(&failing, MailTls::None)),
        Duration::from_secs(20),
    )
    .await
    .expect_err("451");
    assert!(reason.contains("451"), "{reason}");
}

#[tokio::test]
async fn mail_to_a_stopped_server_fails_and_succeeds_once_it_is_back() {
    let mut server = SmtpServer::start(SmtpOptions::default()).expect("smtp");
    let target = Target::Mail(mail_target(&server, MailTls::None));
    server.stop();
    send(target.clone(), Duration::from_secs(5))
        .await
        .expect_err("down");
    server.start_again().expect("up again");
    send(target, Duration::from_secs(20))
        .await
        .expect("accepted");
    server.wait_for_messages(1, Duration::from_secs(10));
}

#[tokio::test]
async fn encrypted_mail_holds_no_alert_text_and_decrypts_for_every_recipient() {
    let server = SmtpServer::start(SmtpOptions {
        starttls: true,
        ..SmtpOptions::default()
    })
    .expect("smtp");
    let alice = Gpg::new().expect("gpg");
    let alice_fpr = alice
        .generate("alice@example.org", KeyAlgo::Curve25519)
        .expect("key");
    let bob = Gpg::new().expect("gpg");
    let bob_fpr = bob
        .generate("bob@example.org", KeyAlgo::Rsa2048)
        .expect("key");
    let signer = Gpg::new().expect("gpg");
    let signer_fpr = signer
        .generate("node@example.org", KeyAlgo::Curve25519)
        .expect("key");
    alice
        .import(&signer.export_public(&signer_fpr).expect("export"))
        .expect("import");
    bob.import(&signer.export_public(&signer_fpr).expect("export"))
        .expect("import");

    let mut target = mail_target(&server, MailTls::Starttls);
    target.to = vec!["alice@example.org".to_owned(), "bob@example.org".to_owned()];
    target.encrypt_to = vec![
        alice.export_public(&alice_fpr).expect("export"),
        bob.export_public(&bob_fpr).expect("export"),
    ];
    target.sign_key = Some(signer.export_secret(&signer_fpr).expect("export"));
    send(Target::Mail(target), Duration::from_secs(20))
        .await
        .expect("accepted");
    let messages = server.wait_for_messages(1, Duration::from_secs(10));
    let raw = &messages[0];
    assert_eq!(messages.len(), 1, "one mail to both recipients");
    no_alert_text(raw);
    assert_eq!(header(raw, "Subject"), Some("solidarity notification"));
    assert!(raw.contains("multipart/encrypted"), "{raw}");
    assert!(raw.contains("application/pgp-encrypted"), "{raw}");

    let for_alice = alice.decrypt(raw).expect("alice decrypts");
    assert!(
        for_alice.plaintext.contains(SUMMARY),
        "{}",
        for_alice.plaintext
    );
    assert!(
        for_alice
            .plaintext
            .contains(&format!("Subject: [test-federation] {TITLE}"))
    );
    assert!(for_alice.good_signature, "the signature verifies");
    let for_bob = bob.decrypt(raw).expect("bob (RSA) decrypts");
    assert!(for_bob.plaintext.contains(SUMMARY));
}

#[tokio::test]
async fn unusable_encryption_keys_are_refused_when_the_channel_is_built() {
    let server = SmtpServer::start(SmtpOptions::default()).expect("smtp");
    let gpg = Gpg::new().expect("gpg");
    let fpr = gpg
        .generate_sign_only("sign-only@example.org", KeyAlgo::Curve25519)
        .expect("key");
    let mut target = mail_target(&server, MailTls::None);
    target.encrypt_to = vec![gpg.export_public(&fpr).expect("export")];
    let error = send(Target::Mail(target.clone()), Duration::from_secs(5))
        .await
        .expect_err("sign-only key");
    assert!(error.contains("no usable encryption subkey"), "{error}");
    target.encrypt_to = vec!["not a key".to_owned()];
    let error = send(Target::Mail(target), Duration::from_secs(5))
        .await
        .expect_err("garbage key");
    assert!(
        error.contains("not an ASCII-armoured OpenPGP public key"),
        "{error}"
    );
}

#[tokio::test]
async fn webhook_is_signed_and_carries_the_batch_json() {
    let receiver = HookReceiver::start().await.expect("receiver");
    let target = Target::Webhook(WebhookTarget {
        url: receiver.url(),
        secret: SECRET.to_vec(),
        ca_pem: None,
    });
    send(target.clone(), Duration::from_secs(10))
        .await
        .expect("accepted");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(
        request
            .header("user-agent")
            .is_some_and(|agent| agent.starts_with("solidarity/"))
    );
    let timestamp: u64 = request
        .header("x-solidarity-timestamp")
        .expect("timestamp")
        .parse()
        .expect("number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(timestamp.abs_diff(now) <= 60, "fresh timestamp");
    assert_eq!(
        request.header("x-solidarity-signature-256"),
        Some(&*expected_signature(SECRET, timestamp, &request.body))
    );
    let parsed: Batch = serde_json::from_slice(&request.body).expect("batch JSON");
    assert_eq!(parsed.schema, "solidarity-notify/1");
    assert_eq!(parsed, batch());

    receiver.set_status(500);
    let reason = send(target.clone(), Duration::from_secs(10))
        .await
        .expect_err("500");
    assert_eq!(reason, "HTTP 500");
    receiver.set_status(302);
    let reason = send(target, Duration::from_secs(10))
        .await
        .expect_err("302");
    assert!(reason.contains("302"), "{reason}");
}

#[tokio::test]
async fn a_hanging_webhook_fails_within_its_timeout() {
    let receiver = HookReceiver::start().await.expect("receiver");
    receiver.set_delay(Duration::from_secs(600));
    let start = Instant::now();
    let reason = send(
        Target::Webhook(WebhookTarget {
            url: receiver.url(),
            secret: SECRET.to_vec(),
            ca_pem: None,
        }),
        Duration::from_secs(1),
    )
    .await
    .expect_err("hangs");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(reason, "timed out after 1 s");
}

fn expected_signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The worked example of protocol-spec/notify.md.
#[test]
fn the_spec_worked_example_holds() {
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol-spec/notify.md"),
    )
    .expect("spec");
    let expected = expected_signature(
        b"0123456789abcdef0123456789abcdef",
        1_767_225_600,
        br#"{"schema":"solidarity-notify/1"}"#,
    );
    assert_eq!(
        expected,
        "sha256=501a89cec816819936ba2caa0943df8cd93daabcdb6a5f40225d8ebb1d8e642c"
    );
    assert!(spec.contains(&expected), "the spec shows {expected}");
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn exec_hook_reads_the_json_and_failures_name_the_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.json");
    let hook = script(
        dir.path(),
        "hook",
        &format!(
            "cat > {}\necho \"$SOLIDARITY_NOTIFY_SCHEMA $PATH $HOME\" > {}.env",
            out.display(),
            out.display()
        ),
    );
    send(
        Target::Exec(ExecTarget {
            command: vec![hook],
        }),
        Duration::from_secs(10),
    )
    .await
    .expect("exit 0");
    let parsed: Batch =
        serde_json::from_slice(&std::fs::read(&out).expect("out.json")).expect("JSON");
    assert_eq!(parsed, batch());
    let env = std::fs::read_to_string(format!("{}.env", out.display())).expect("env");
    assert_eq!(env.trim(), "solidarity-notify/1 /usr/bin:/bin");

    let failing = script(
        dir.path(),
        "failing",
        "cat >/dev/null\necho 'pager: no route to admins' >&2\necho second >&2\nexit 3",
    );
    let reason = send(
        Target::Exec(ExecTarget {
            command: vec![failing],
        }),
        Duration::from_secs(10),
    )
    .await
    .expect_err("exit 3");
    assert_eq!(reason, "exit code 3: pager: no route to admins");
}

#[tokio::test]
async fn a_hanging_exec_hook_and_its_child_are_killed_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let hook = script(
        dir.path(),
        "hang",
        &format!(
            "sleep 600 >/dev/null 2>&1 &\necho $$ $! > {}\nsleep 600",
            pids.display()
        ),
    );
    let start = Instant::now();
    let reason = send(
        Target::Exec(ExecTarget {
            command: vec![hook],
        }),
        Duration::from_secs(1),
    )
    .await
    .expect_err("killed");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(reason.contains("timed out after 1 s"), "{reason}");
    let pids = std::fs::read_to_string(&pids).expect("pids");
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in pids.split_whitespace() {
        loop {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"));
            if !alive {
                break;
            }
            assert!(Instant::now() < deadline, "process {pid} still runs");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
