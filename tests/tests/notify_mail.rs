//! Mail notifications end to end through a real SMTP server (Python's aiosmtpd, STARTTLS and
//! AUTH) and a real GnuPG: an alert raised on node A arrives as mail from node B, plain and
//! OpenPGP-encrypted; a settle delay folds a burst into one mail; the SMTP server down for a
//! while, and B killed with the notice queued, lose nothing and send nothing twice.

use std::path::Path;
use std::time::{Duration, Instant};

use solidarity_control::request;
use solidarity_proto::payload::{AlertCategory, Severity};
use solidarity_tests::gpg::{Gpg, KeyAlgo};
use solidarity_tests::smtp::{SmtpOptions, SmtpServer};
use solidarity_tests::{
    BinaryNode, TestNode, cli, cli_ok, init_data_dir, pair, sample_alert, wait_for,
};

const USER: &str = "solidarity@b.example";
const PASSWORD: &str = "correct horse battery staple";
const MAIL_WAIT: Duration = Duration::from_secs(40);

fn smtp() -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        starttls: true,
        auth: Some((USER.into(), PASSWORD.into())),
        ..SmtpOptions::default()
    })
    .expect("aiosmtpd (scripts/test installs it)")
}

/// Appends a mail channel sending to `server` to the node's config, with its password and
/// CA in files beside the config; `encrypt_to` are armoured public keys.
fn add_mail_channel(
    data_dir: &Path,
    server: &SmtpServer,
    name: &str,
    encrypt_to: &[String],
    extra: &str,
) {
    use std::os::unix::fs::PermissionsExt;
    let password = data_dir.join(format!("{name}.password"));
    std::fs::write(&password, format!("{PASSWORD}\n")).expect("password");
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let ca = data_dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, server.ca_pem()).expect("ca");
    let mut keys = Vec::new();
    for (index, key) in encrypt_to.iter().enumerate() {
        let path = data_dir.join(format!("{name}-{index}.asc"));
        std::fs::write(&path, key).expect("key");
        keys.push(format!("{:?}", path.display().to_string()));
    }
    let config = data_dir.join(solidarity::config::CONFIG_FILE);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[[notify.mail]]\nname = {name:?}\nserver = \"localhost\"\nport = {port}\ntls = \"starttls\"\nusername = {USER:?}\npassword_file = {password:?}\nca_file = {ca:?}\nfrom = \"solidarity <{USER}>\"\nto = [\"admins@b.example\"]\nencrypt_to = [{keys}]\n{extra}\n",
        port = server.port(),
        password = password.display().to_string(),
        ca = ca.display().to_string(),
        keys = keys.join(", "),
    ));
    std::fs::write(config, text).expect("config");
}

async fn raise(node: &TestNode, summary: &str) {
    let alert = sample_alert(AlertCategory::Seizure, Severity::Critical, summary);
    node.call(move |client| {
        client.sign(&request::AlertRaise {
            alert,
            expires_in_ms: None,
        })
    })
    .await
    .expect("raise");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_raised_on_a_arrives_as_plain_and_as_encrypted_mail_from_b() {
    let server = smtp();
    let gpg = Gpg::new().expect("gpg");
    let fingerprint = gpg
        .generate("admins@b.example", KeyAlgo::Curve25519)
        .expect("key");
    let public = gpg.export_public(&fingerprint).expect("export");
    let (a, b) = pair(|dir| {
        add_mail_channel(dir, &server, "admins", &[], "settle_secs = 0");
        add_mail_channel(
            dir,
            &server,
            "private",
            std::slice::from_ref(&public),
            "settle_secs = 0\nprivate = true",
        );
    })
    .await;
    let summary = "Police took the mail server of the collective";
    let raised = Instant::now();
    raise(&a, summary).await;
    let mails = server.wait_for_messages(2, MAIL_WAIT);
    println!(
        "raise on A → both mails accepted by the SMTP server for B's admins: {:?}",
        raised.elapsed()
    );
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let (encrypted, plain): (Vec<&String>, Vec<&String>) = mails
        .iter()
        .partition(|mail| mail.contains("multipart/encrypted"));
    assert_eq!((encrypted.len(), plain.len()), (1, 1), "{mails:#?}");
    // Quoted-printable: soft line breaks joined.
    let plain_text = plain[0].replace("=\r\n", "").replace("=\n", "");
    assert!(plain_text.contains(summary), "{}", plain[0]);
    let raw = encrypted[0];
    for secret in [summary, "a.example", "seizure", "Police"] {
        assert!(
            !raw.contains(secret),
            "the encrypted mail shows {secret:?}: {raw}"
        );
    }
    let decrypted = gpg.decrypt(raw).expect("gpg decrypts");
    assert!(
        decrypted.plaintext.contains(summary),
        "{}",
        decrypted.plaintext
    );
    // `notify test` through the CLI's typed call, as an admin runs it.
    let tested = b
        .call(|client| client.call(&request::NotifyTest { channel: None }))
        .await
        .expect("notify test");
    assert!(
        tested.results.iter().all(|result| result.accepted),
        "{tested:?}"
    );
    assert_eq!(server.wait_for_messages(4, MAIL_WAIT).len(), 4);
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_delay_folds_a_burst_of_20_alerts_into_one_mail() {
    let server = smtp();
    let (a, b) = pair(|dir| add_mail_channel(dir, &server, "digest", &[], "settle_secs = 4")).await;
    for index in 0..20 {
        raise(&a, &format!("burst alert number {index}")).await;
    }
    let mails = server.wait_for_messages(1, MAIL_WAIT);
    std::thread::sleep(Duration::from_secs(2));
    let mails_after = server.messages();
    assert_eq!(mails_after.len(), 1, "{} mails", mails_after.len());
    for index in 0..20 {
        let summary = format!("burst alert number {index}");
        let text = mails[0].replace("=\r\n", "").replace("=\n", "");
        assert!(text.contains(&summary), "{summary} missing");
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_for_a_while_then_up_every_notice_arrives_once() {
    let mut server = smtp();
    let (a, b) = pair(|dir| add_mail_channel(dir, &server, "admins", &[], "settle_secs = 0")).await;
    server.stop();
    for index in 0..3 {
        raise(&a, &format!("while the server was down {index}")).await;
    }
    solidarity_tests::eventually("B failed to send", || async {
        let status = b
            .call(|client| client.call(&request::NotifyStatus {}))
            .await
            .expect("status");
        status.channels[0].failures_in_a_row >= 2 && status.channels[0].queued == 3
    })
    .await;
    server.start_again().expect("up again");
    let mails = server.wait_for_messages(1, MAIL_WAIT);
    std::thread::sleep(Duration::from_secs(2));
    let all: String = server.messages().concat();
    for index in 0..3 {
        let summary = format!("while the server was down {index}");
        let all = all.replace("=\r\n", "").replace("=\n", "");
        assert_eq!(all.matches(&summary).count(), 1, "{summary}: {mails:#?}");
    }
    drop((a, b));
}

/// The real binary: a notice queued while the SMTP server is down survives `kill -9` and
/// arrives once after the restart.
#[test]
fn a_mail_queued_before_a_kill_9_arrives_once_after_the_restart() {
    let mut server = smtp();
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    init_data_dir(&dir);
    add_mail_channel(&dir, &server, "admins", &[], "settle_secs = 0");
    server.stop();
    let mut node = BinaryNode::start(&dir);
    cli_ok(
        &dir,
        &[
            "alert",
            "raise",
            "--kind",
            "raid",
            "--subject",
            "a.example",
            "--severity",
            "high",
            "--summary",
            "raided before the kill",
        ],
    );
    wait_for("queued and failed once", || {
        let (ok, stdout, _) = cli(&dir, &["--json", "notify", "status"]);
        ok && serde_json::from_str::<serde_json::Value>(&stdout).is_ok_and(|status| {
            status["channels"][0]["queued"] == 1 && status["channels"][0]["failures_in_a_row"] != 0
        })
    });
    node.kill9();
    server.start_again().expect("up again");
    let mut node = BinaryNode::start(&dir);
    let mails = server.wait_for_messages(1, MAIL_WAIT);
    assert!(
        mails[0]
            .replace("=\r\n", "")
            .replace("=\n", "")
            .contains("raided before the kill")
    );
    assert!(node.terminate());
    let mut node = BinaryNode::start(&dir);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.messages().len(), 1, "sent again after a restart");
    let status = cli_ok(&dir, &["notify", "status"]);
    assert!(status.contains("queued: 0"), "{status}");
    node.terminate();
}
