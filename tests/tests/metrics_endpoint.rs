//! The Prometheus endpoint (`metrics_addr`): off by default; on, it serves an exposition the
//! Prometheus client's OpenMetrics parser reads and `promtool check metrics` passes (apart
//! from its reading OpenMetrics counters as the older format), with members, alerts by
//! severity, libp2p's and the outbox's figures, and no address, port, peer id or key of any
//! node; every metric the Grafana dashboard in `deploy/` uses is in it, and every
//! dashboard expression parses (`promtool check rules`).

use std::io::Write;
use std::process::{Command, Stdio};

use solidarity_control::request;
use solidarity_proto::payload::{AlertCategory, Severity};
use solidarity_tests::{TestNode, http_get, init_data_dir_with, sample_alert};

fn parse(exposition: &str) -> serde_json::Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("support/parse_metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test installs prometheus_client)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("parser");
    assert!(
        output.status.success(),
        "the Prometheus parser refused the exposition: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser output")
}

/// `promtool`, which `scripts/test` installs (Debian's `prometheus`).
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "promtool is missing: scripts/test installs Debian's `prometheus`"
    );
    Some("promtool")
}

fn sample(parsed: &serde_json::Value, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    parsed["samples"].as_array()?.iter().find_map(|sample| {
        let matches = sample[0] == name && label.is_none_or(|(key, value)| sample[1][key] == value);
        matches.then(|| sample[2].as_f64()).flatten()
    })
}

/// A node with the endpoint on, and one exec channel (so the outbox's figures have a
/// channel to count).
async fn metrics_node() -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    init_data_dir_with(dir.path(), &[("metrics_addr", "\"127.0.0.1:0\"")]);
    let config = dir.path().join(solidarity::config::CONFIG_FILE);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(
        "\n[[notify.exec]]\nname = \"hook\"\ncommand = [\"/bin/sh\", \"-c\", \"cat >/dev/null\"]\nsettle_secs = 0\n",
    );
    std::fs::write(config, text).expect("config");
    TestNode::start(dir).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_what_prometheus_reads_and_no_address_or_key() {
    let nodes = vec![metrics_node().await, metrics_node().await];
    solidarity_tests::connect_all(&nodes).await;
    let alert = sample_alert(AlertCategory::Seizure, Severity::Critical, "metrics alert");
    nodes[0]
        .call(move |client| {
            client.sign(&request::AlertRaise {
                alert,
                expires_in_ms: None,
            })
        })
        .await
        .expect("raise");
    solidarity_tests::eventually("node 1 shows the alert", || async {
        !nodes[1].alerts().await.is_empty()
    })
    .await;
    let status = nodes[1]
        .call(|client| client.status())
        .await
        .expect("status");
    let url = status.metrics_url.clone().expect("metrics_url in status");
    // The gauges follow the snapshot (published at most every 500 ms).
    let mut exposition = String::new();
    let mut parsed = serde_json::Value::Null;
    solidarity_tests::eventually("the alert is counted and notified", || {
        let url = url.clone();
        let (_, body) = http_get(&url);
        exposition = body.clone();
        parsed = parse(&body);
        let counted = sample(
            &parsed,
            "solidarity_alerts_shown",
            Some(("severity", "critical")),
        ) == Some(1.0);
        // ... and the alert's notice went out on the node's channel.
        let notified = sample(
            &parsed,
            "solidarity_notify_sent_total",
            Some(("channel", "hook")),
        ) >= Some(1.0);
        async move { counted && notified }
    })
    .await;
    let (headers, _) = http_get(&url);
    assert!(
        headers
            .to_lowercase()
            .contains("application/openmetrics-text"),
        "{headers}"
    );
    assert_eq!(
        sample(&parsed, "solidarity_members_connected", None),
        Some(1.0)
    );
    assert_eq!(
        sample(&parsed, "solidarity_members_listed", None),
        Some(1.0)
    );
    let families: Vec<String> = parsed["families"]
        .as_array()
        .expect("families")
        .iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect();
    for needed in [
        "libp2p_swarm_connections_established",
        "libp2p_identify_received",
        "gossipsub_topic_subscription_status",
        "solidarity_messages_judged",
        "solidarity_notify_queued",
    ] {
        assert!(
            families.iter().any(|name| name == needed),
            "{needed} missing: {families:?}"
        );
    }
    // Nothing names a node: no address, no port, no peer id, no key.
    // libp2p labels name protocol stacks ("/ip4/tcp"), never a value of one.
    for stack in ["/ip4/", "/ip6/", "/tcp/", "/dns/"] {
        for (at, _) in exposition.match_indices(stack) {
            let next = exposition[at + stack.len()..].chars().next();
            assert!(
                !next.is_some_and(|c| c.is_ascii_digit() || c == ':'),
                "an address in the exposition: {}",
                &exposition[at..(at + 40).min(exposition.len())]
            );
        }
    }
    let mut forbidden = vec!["127.0.0.1".to_owned()];
    for node in &nodes {
        let status = node.call(|client| client.status()).await.expect("status");
        forbidden.extend(status.p2p_ports.iter().map(|port| format!(":{port}")));
        forbidden.push(node.key.to_hex());
        forbidden.push(node.key.to_hex()[..8].to_owned());
        forbidden.push(node.peer_id().to_string());
    }
    for needle in &forbidden {
        assert!(
            !exposition.contains(needle.as_str()),
            "the exposition holds {needle:?}"
        );
    }
    println!(
        "{} families, {} samples, {} bytes; {} forms searched: none found",
        families.len(),
        parsed["samples"].as_array().map_or(0, Vec::len),
        exposition.len(),
        forbidden.len()
    );
    if let Some(promtool) = promtool() {
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(exposition.as_bytes())
            .expect("write");
        let output = child.wait_with_output().expect("promtool");
        let report = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        // promtool reads the exposition as the 0.0.4 text format, where a counter's HELP
        // goes with its `_total` name; in OpenMetrics it goes with the family. Anything
        // else it reports is a real problem.
        let problems: Vec<&str> = report
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.ends_with("_total no help text"))
            .collect();
        assert!(problems.is_empty(), "promtool: {problems:#?}");
    }
    check_dashboard(&families);
}

/// Every metric the dashboard uses exists, and every expression parses.
fn check_dashboard(families: &[String]) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/solidarity.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
    assert!(
        dashboard["schemaVersion"]
            .as_u64()
            .is_some_and(|version| version >= 36)
    );
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in &exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !["solidarity_", "libp2p_", "gossipsub_"]
                .iter()
                .any(|prefix| word.starts_with(prefix))
            {
                continue;
            }
            let family = word.strip_suffix("_total").unwrap_or(word);
            assert!(
                families.iter().any(|name| name == family),
                "the dashboard uses {word}, which the node does not expose"
            );
        }
    }
    if let Some(promtool) = promtool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("dashboard.yml");
        let mut text = "groups:\n- name: dashboard\n  rules:\n".to_owned();
        for (index, expr) in exprs.iter().enumerate() {
            text.push_str(&format!(
                "  - record: dashboard:expr{index}\n    expr: {}\n",
                serde_json::to_string(expr).expect("quote")
            ));
        }
        std::fs::write(&rules, text).expect("rules");
        let output = Command::new(promtool)
            .args(["check", "rules"])
            .arg(&rules)
            .output()
            .expect("promtool");
        assert!(
            output.status.success(),
            "a dashboard expression does not parse: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_off_by_default_and_answers_only_metrics() {
    let node = TestNode::new().await;
    let status = node.call(|client| client.status()).await.expect("status");
    assert_eq!(status.metrics_url, None);
    let on = metrics_node().await;
    let url = on
        .call(|client| client.status())
        .await
        .expect("status")
        .metrics_url
        .expect("on");
    let base = url.trim_end_matches("/metrics");
    let (headers, body) = http_get(&format!("{base}/"));
    assert!(headers.contains(" 404 "), "{headers}");
    assert!(body.contains("/metrics"), "{body}");
    let (headers, _) = http_get(&format!("{base}/metrics/../admin"));
    assert!(!headers.contains(" 200 "), "{headers}");
}
