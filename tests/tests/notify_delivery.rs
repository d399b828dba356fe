//! Notifications end to end, through exec hooks (a real program run by the daemon):
//! an alert raised on A reaches B's hook once, across restarts; a settle delay folds a
//! burst into one message; duress reaches only private channels; a failing channel does
//! not delay another; the outbox survives `kill -9` and a crash loop without loss.
//! Mail through a real SMTP server is in `notify_mail.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use solidarity_control::{CanaryState, NotifyStatusView, request};
use solidarity_proto::MessageId;
use solidarity_proto::payload::{AlertCategory, Severity};
use solidarity_tests::{
    BinaryNode, TestNode, cli, cli_ok, eventually, init_data_dir, pair, sample_alert, wait_for,
};

/// A hook that writes each message it is given to a new file in `out`; it fails (exit 1)
/// while `out/fail` exists, and takes `out/delay` seconds when that file exists.
fn hook_script(dir: &Path, out: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(out).expect("out dir");
    let script = dir.join(format!(
        "hook-{}.sh",
        out.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("x")
    ));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\nOUT={out}\nif [ -e \"$OUT/fail\" ]; then cat >/dev/null; echo 'told to fail' >&2; exit 1; fi\nif [ -e \"$OUT/delay\" ]; then sleep \"$(cat \"$OUT/delay\")\"; fi\nTMP=\"$OUT/.$$.part\"\ncat > \"$TMP\"\nmv \"$TMP\" \"$OUT/$(date +%s%N)-$$.json\"\n",
            out = out.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// Appends an exec channel to the node's config.
fn add_exec_channel(data_dir: &Path, name: &str, script: &Path, extra: &str) {
    let path = data_dir.join(solidarity::config::CONFIG_FILE);
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str(&format!(
        "\n[[notify.exec]]\nname = {name:?}\ncommand = [{:?}]\n{extra}\n",
        script.display().to_string()
    ));
    std::fs::write(path, text).expect("config");
}

/// Every message the hook received, oldest first, parsed.
fn received(out: &Path) -> Vec<serde_json::Value> {
    let (messages, cut) = received_through_kills(out);
    assert_eq!(cut, 0, "the hook got messages that are not JSON");
    messages
}

/// As [`received`], and how many messages were cut short: a daemon killed while it writes
/// a hook's stdin leaves the hook a truncated (or empty) document, which is sent again in
/// full after the restart.
fn received_through_kills(out: &Path) -> (Vec<serde_json::Value>, usize) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut cut = 0;
    let mut messages = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("message");
        match serde_json::from_str(&text) {
            Ok(message) => messages.push(message),
            Err(_) => cut += 1,
        }
    }
    (messages, cut)
}

/// The notices of the received messages of `notice_type`.
fn notices_of(messages: &[serde_json::Value], notice_type: &str) -> Vec<serde_json::Value> {
    messages
        .iter()
        .flat_map(|message| message["notices"].as_array().cloned().unwrap_or_default())
        .filter(|notice| notice["type"] == notice_type)
        .collect()
}

async fn raise(node: &TestNode, summary: &str) -> MessageId {
    let alert = sample_alert(AlertCategory::Seizure, Severity::Critical, summary);
    node.call(move |client| {
        client.sign(&request::AlertRaise {
            alert,
            expires_in_ms: None,
        })
    })
    .await
    .expect("raise")
}

async fn notify_status(node: &TestNode) -> NotifyStatusView {
    node.call(|client| client.call(&request::NotifyStatus {}))
        .await
        .expect("notify status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_raised_on_a_reaches_bs_hook_once_as_a_schema_document_across_restarts() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    let script = hook_script(root.path(), &out);
    let (a, b) = pair(|dir| add_exec_channel(dir, "pager", &script, "settle_secs = 0")).await;
    let raised_at = Instant::now();
    let id = raise(&a, "Police took the mail server").await;
    wait_for("B's hook receives the alert", || {
        !notices_of(&received(&out), "alert").is_empty()
    });
    println!("raise on A → B's hook ran: {:?}", raised_at.elapsed());
    let messages = received(&out);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    println!(
        "B's members: {:?}, A is {}",
        b.peers()
            .await
            .iter()
            .map(|m| (m.name.clone(), m.key.to_hex()))
            .collect::<Vec<_>>(),
        a.key.to_hex()
    );
    let message = &messages[0];
    assert_eq!(message["schema"], "solidarity-notify/1");
    assert_eq!(message["channel"], "pager");
    let alert = &notices_of(&messages, "alert")[0];
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["member"], "node0", "{alert:#}");
    assert_eq!(alert["alert"]["id"], id.to_hex());
    assert_eq!(alert["alert"]["kind"], "seizure");
    assert!(
        alert["title"]
            .as_str()
            .is_some_and(|title| title.contains("Police took the mail server")),
        "{alert}"
    );
    // B restarts, and syncs the alert again from A: not news, not sent again.
    let dir = b.stop().await;
    let b = TestNode::start(dir).await;
    eventually("B reconnects to A", || async { b.connected().await >= 1 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(received(&out).len(), 1, "sent again after a restart");
    let status = notify_status(&b).await;
    assert_eq!(status.channels[0].queued, 0);
    assert!(status.channels[0].last_success_at.is_some());
    let list = b
        .call(|client| client.call(&request::NotifyList {}))
        .await
        .expect("list");
    assert!(
        list.notices
            .iter()
            .any(|notice| notice.notice_type == "alert" && notice.channels == ["pager"]),
        "{list:?}"
    );
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_delay_folds_a_burst_of_20_alerts_into_one_message() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    let script = hook_script(root.path(), &out);
    let (a, b) = pair(|dir| add_exec_channel(dir, "digest", &script, "settle_secs = 4")).await;
    let started = Instant::now();
    for index in 0..20 {
        raise(&a, &format!("burst alert {index}")).await;
    }
    println!("20 alerts raised in {:?}", started.elapsed());
    wait_for("the digest arrives", || !received(&out).is_empty());
    // Nothing else follows: the 20 came together.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = received(&out);
    assert_eq!(messages.len(), 1, "{} messages", messages.len());
    let alerts = notices_of(&messages, "alert");
    assert_eq!(alerts.len(), 20, "{alerts:#?}");
    for index in 0..20 {
        let summary = format!("burst alert {index}");
        assert!(
            alerts
                .iter()
                .any(|notice| notice["alert"]["summary"] == summary.as_str()),
            "{summary} missing"
        );
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_hanging_channel_does_not_delay_another() {
    let root = tempfile::tempdir().expect("tempdir");
    let (good, failing, hanging) = (
        root.path().join("good"),
        root.path().join("failing"),
        root.path().join("hanging"),
    );
    let scripts = [&good, &failing, &hanging].map(|out| hook_script(root.path(), out));
    std::fs::write(failing.join("fail"), "").expect("fail flag");
    std::fs::write(hanging.join("delay"), "600").expect("delay");
    let (a, b) = pair(|dir| {
        add_exec_channel(dir, "failing", &scripts[1], "settle_secs = 0");
        add_exec_channel(
            dir,
            "hanging",
            &scripts[2],
            "settle_secs = 0\ntimeout_secs = 2",
        );
        add_exec_channel(dir, "good", &scripts[0], "settle_secs = 0");
    })
    .await;
    let raised = Instant::now();
    raise(&a, "one alert for three channels").await;
    let took = wait_for("the good channel gets it", || !received(&good).is_empty());
    println!("good channel: {:?} after the raise", raised.elapsed());
    assert!(took < Duration::from_secs(10), "{took:?}");
    eventually(
        "the failing and hanging channels have failed once",
        || async {
            let status = notify_status(&b).await;
            ["failing", "hanging"].iter().all(|name| {
                status
                    .channels
                    .iter()
                    .any(|channel| channel.channel == *name && channel.failures_in_a_row >= 1)
            })
        },
    )
    .await;
    let status = notify_status(&b).await;
    for channel in &status.channels {
        match channel.channel.as_str() {
            "good" => assert_eq!(channel.queued, 0, "{channel:?}"),
            "failing" => {
                assert_eq!(channel.queued, 1, "{channel:?}");
                let error = channel.last_error.clone().unwrap_or_default();
                assert!(error.contains("told to fail"), "{error}");
            }
            _ => {
                assert_eq!(channel.queued, 1, "{channel:?}");
                println!("hanging channel's error: {:?}", channel.last_error);
            }
        }
    }
    // The failing channel recovers: its notice arrives once, by the retry.
    std::fs::remove_file(failing.join("fail")).expect("recover");
    wait_for("the failing channel's retry delivers", || {
        !received(&failing).is_empty()
    });
    assert_eq!(notices_of(&received(&failing), "alert").len(), 1);
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duress_reaches_only_the_private_channel() {
    let root = tempfile::tempdir().expect("tempdir");
    let (public, private) = (root.path().join("public"), root.path().join("private"));
    let scripts = [&public, &private].map(|out| hook_script(root.path(), out));
    let (a, b) = pair(|dir| {
        add_exec_channel(dir, "public", &scripts[0], "settle_secs = 0");
        add_exec_channel(
            dir,
            "private",
            &scripts[1],
            "settle_secs = 0\nprivate = true",
        );
    })
    .await;
    // B holds A's duress commitment, as from A's card.
    let passphrase = "orange balloons at dawn";
    let duress_key = solidarity_proto::payload::duress_key(&a.key, passphrase);
    let commitment = solidarity_proto::payload::duress_commitment(&duress_key);
    let card = format!("{}~{}", a.card().await, hex::encode(commitment));
    b.add_members(&[("node0".into(), card)]).await;
    let token = MessageId(solidarity_proto::payload::duress_token(
        &commitment,
        &a.key,
        [7; 16],
    ));
    a.call(move |client| client.sign(&request::CanaryDuress { token }))
        .await
        .expect("duress");
    eventually("B sees A's duress", || async {
        b.peers().await.iter().any(|member| {
            member
                .canary
                .as_ref()
                .is_some_and(|c| c.state == CanaryState::Duress)
        })
    })
    .await;
    wait_for("the private channel hears of the duress", || {
        !notices_of(&received(&private), "duress").is_empty()
    });
    // An alert after it reaches both: the public channel works, it only never hears duress.
    raise(&a, "after the signal").await;
    wait_for("the public channel gets the alert", || {
        !notices_of(&received(&public), "alert").is_empty()
    });
    let public_text = received(&public)
        .iter()
        .map(ToString::to_string)
        .collect::<String>()
        .to_lowercase();
    for word in ["duress", "canary", "coerced"] {
        assert!(
            !public_text.contains(word),
            "the public channel heard {word:?}: {public_text}"
        );
    }
    drop((a, b));
}

/// The real binary, alone: its own alerts are notices too. The hook fails until told
/// otherwise; a `kill -9` with the notice queued loses nothing, and sends it once.
#[test]
fn a_notice_queued_before_a_kill_9_is_sent_once_after_the_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    let out = root.path().join("out");
    let script = hook_script(root.path(), &out);
    std::fs::write(out.join("fail"), "").expect("fail flag");
    init_data_dir(&dir);
    add_exec_channel(&dir, "pager", &script, "settle_secs = 0");
    let mut node = BinaryNode::start(&dir);
    let id = cli_ok(
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
            "raided at dawn",
        ],
    );
    wait_for("the notice is queued and has failed", || {
        let (ok, stdout, _) = cli(&dir, &["--json", "notify", "status"]);
        ok && serde_json::from_str::<serde_json::Value>(&stdout).is_ok_and(|status| {
            status["channels"][0]["queued"] == 1 && status["channels"][0]["failures_in_a_row"] != 0
        })
    });
    node.kill9();
    std::fs::remove_file(out.join("fail")).expect("recover");
    let mut node = BinaryNode::start(&dir);
    wait_for("the notice arrives after the restart", || {
        !received(&out).is_empty()
    });
    let alerts = notices_of(&received(&out), "alert");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["alert"]["id"], id.as_str());
    // Another restart sends nothing again.
    assert!(node.terminate(), "clean stop");
    let mut node = BinaryNode::start(&dir);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(received(&out).len(), 1);
    let list = cli_ok(&dir, &["notify", "list"]);
    assert!(list.contains("raided at dawn"), "{list}");
    node.terminate();
}

/// A member's key in the wrong hands signs alerts at full speed: its notices are bounded
/// per hour (`NOTICES_PER_MEMBER_PER_HOUR`), and one notice says the rest are held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_member_fills_no_inbox() {
    use solidarity::notify::observe::NOTICES_PER_MEMBER_PER_HOUR;
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    let script = hook_script(root.path(), &out);
    let (a, b) = pair(|dir| add_exec_channel(dir, "pager", &script, "settle_secs = 2")).await;
    let flood = NOTICES_PER_MEMBER_PER_HOUR as usize + 15;
    for index in 0..flood {
        raise(&a, &format!("flood {index}")).await;
    }
    eventually("B stored the flood", || async {
        b.stored_messages().await >= flood
    })
    .await;
    wait_for("the held-back notice arrives", || {
        notices_of(&received(&out), "quota_hit")
            .iter()
            .any(|notice| {
                notice["title"]
                    .as_str()
                    .is_some_and(|title| title.contains("node0"))
            })
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let messages = received(&out);
    let alerts = notices_of(&messages, "alert");
    println!(
        "{flood} alerts from one member: {} alert notices in {} messages",
        alerts.len(),
        messages.len()
    );
    assert_eq!(alerts.len(), NOTICES_PER_MEMBER_PER_HOUR as usize);
    drop((a, b));
}

/// The crash-loop harness for the outbox: the real binary is `kill -9`ed at random moments
/// while alerts are raised as fast as the CLI goes; every acknowledged alert reaches the
/// hook, and a message repeats only what was in flight at a kill (at most one per kill).
#[test]
fn every_acknowledged_alert_is_notified_through_a_crash_loop() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let kills = if std::env::var_os("SOLIDARITY_LONG").is_some() {
        200
    } else {
        12
    };
    let mut rng = solidarity_tests::Rng(solidarity_tests::seed());
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    let out = root.path().join("out");
    let script = hook_script(root.path(), &out);
    init_data_dir(&dir);
    add_exec_channel(&dir, "pager", &script, "settle_secs = 0\nmax_per_hour = 0");
    let mut node = BinaryNode::start(&dir);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let raiser = {
        let (dir, acknowledged, stop) = (dir.clone(), Arc::clone(&acknowledged), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut index = 0;
            while !stop.load(Ordering::Relaxed) {
                index += 1;
                let summary = format!("crash loop alert {index}");
                let (ok, stdout, _) = cli(
                    &dir,
                    &[
                        "alert",
                        "raise",
                        "--kind",
                        "outage",
                        "--subject",
                        "a.example",
                        "--severity",
                        "low",
                        "--summary",
                        &summary,
                    ],
                );
                if ok {
                    acknowledged
                        .lock()
                        .expect("lock")
                        .push(stdout.trim().to_owned());
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    let started = Instant::now();
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        node.kill9();
        node = BinaryNode::start(&dir);
    }
    stop.store(true, Ordering::Relaxed);
    raiser.join().expect("raiser");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    wait_for("every acknowledged alert notified", || {
        let delivered: std::collections::HashSet<String> =
            notices_of(&received_through_kills(&out).0, "alert")
                .iter()
                .filter_map(|notice| notice["alert"]["id"].as_str().map(str::to_owned))
                .collect();
        acknowledged.iter().all(|id| delivered.contains(id))
    });
    let (messages, cut) = received_through_kills(&out);
    assert!(cut <= kills, "{cut} messages cut short by {kills} kills");
    let mut seen = std::collections::HashSet::new();
    let mut repeating_messages = 0;
    for message in &messages {
        let mut repeats = false;
        for notice in message["notices"].as_array().cloned().unwrap_or_default() {
            if !seen.insert(notice["id"].to_string()) {
                repeats = true;
            }
        }
        repeating_messages += usize::from(repeats);
    }
    println!(
        "{kills} kills in {:?}: {} alerts acknowledged, {} messages, {repeating_messages} repeating one in flight, {cut} cut short by a kill",
        started.elapsed(),
        acknowledged.len(),
        messages.len()
    );
    assert!(!acknowledged.is_empty());
    assert!(
        repeating_messages + cut <= kills,
        "{repeating_messages} messages repeated notices, {kills} kills; sizes of the messages: {:?}",
        messages
            .iter()
            .map(|message| message["notices"].as_array().map_or(0, Vec::len))
            .collect::<Vec<_>>()
    );
    node.terminate();
}
