//! Live reload on SIGHUP (`systemctl reload solidarity`): config.toml and members.toml are
//! read again; what can change while running is applied, the rest is named in the log as
//! needing a restart.
//!
//! Live: `announce`, `vouch_threshold`, `confirm_threshold`, `member_messages_per_minute`,
//! `member_kib_per_minute`, `member_stored_mib`, `statements_per_signer`,
//! `canary_grace_secs`, `canary_max_interval_secs`, `canary_statement`, `log` (unless `RUST_LOG` is set), and the
//! members file. Restart: every other key, `[notify]` included (listeners, timers and the store are set up
//! once at start).

use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::systemd;
use crate::config::NodeConfig;

/// Reload requests waiting for the actor; a second SIGHUP during a reload waits.
pub const RELOAD_QUEUE: usize = 1;

/// A reload for the node actor: the config read again, and where to say how it went.
pub struct ReloadCall {
    pub config: NodeConfig,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// What a new config changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Keys applied while running.
    pub live: Vec<&'static str>,
    /// Keys that changed but take effect at the next start.
    pub restart: Vec<&'static str>,
}

/// Applies the live keys of `new` to `current`; names what changed.
pub fn merge(current: &mut NodeConfig, new: NodeConfig) -> Changes {
    let mut changes = Changes::default();
    macro_rules! live {
        ($field:ident, $key:literal) => {
            if current.$field != new.$field {
                current.$field = new.$field.clone();
                changes.live.push($key);
            }
        };
    }
    macro_rules! restart {
        ($field:ident, $key:literal) => {
            if current.$field != new.$field {
                changes.restart.push($key);
            }
        };
    }
    // While the node runs onion-only, an announce meant for another profile waits for the
    // restart that brings that profile: told to members now, it would name the server.
    if current.tor != new.tor {
        restart!(announce, "announce");
    } else {
        live!(announce, "announce");
    }
    live!(vouch_threshold, "vouch_threshold");
    live!(confirm_threshold, "confirm_threshold");
    live!(member_messages_per_minute, "member_messages_per_minute");
    live!(member_bytes_per_minute, "member_kib_per_minute");
    live!(member_stored_bytes, "member_stored_mib");
    live!(statements_per_signer, "statements_per_signer");
    live!(canary_grace, "canary_grace_secs");
    live!(canary_max_interval, "canary_max_interval_secs");
    live!(canary_statement, "canary_statement");
    live!(log, "log");
    restart!(federation, "federation");
    restart!(listen, "listen");
    restart!(status_addr, "status_addr");
    restart!(admin_addr, "admin_addr");
    restart!(metrics_addr, "metrics_addr");
    restart!(sync_interval, "sync_interval_secs");
    restart!(heartbeat, "heartbeat_ms");
    restart!(store_cache_bytes, "store_cache_mib");
    restart!(canary_interval, "canary_interval_secs");
    restart!(collective, "collective");
    restart!(notify, "notify");
    restart!(tor, "network/tor");
    changes
}

/// Waits for SIGHUP and hands each reload to the actor, telling systemd around it.
pub async fn on_sighup(
    mut hangup: tokio::signal::unix::Signal,
    data_dir: PathBuf,
    actor: mpsc::Sender<ReloadCall>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            received = hangup.recv() => if received.is_none() { return Ok(()) },
        }
        systemd::notify(systemd::RELOADING, "reloading config and members");
        let dir = data_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || NodeConfig::load(&dir)).await?;
        let outcome = match loaded {
            Ok(config) => {
                let (reply, answer) = oneshot::channel();
                if actor.send(ReloadCall { config, reply }).await.is_err() {
                    return Ok(());
                }
                answer
                    .await
                    .unwrap_or_else(|_| Err("the node stopped".into()))
            }
            Err(invalid) => Err(format!("{invalid:#}")),
        };
        match outcome {
            Ok(()) => systemd::notify(systemd::READY, "running (reloaded)"),
            Err(reason) => {
                tracing::warn!(%reason, "reload refused; running on as before");
                systemd::notify(systemd::READY, "running (last reload refused, see the log)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> NodeConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(crate::config::CONFIG_FILE), text).expect("write");
        NodeConfig::load(dir.path()).expect("config")
    }

    #[test]
    fn live_keys_are_applied_and_restart_keys_only_named() {
        let mut current = config("");
        let new = config(
            "announce = [\"/dns4/node.example.org/tcp/7447\"]\nconfirm_threshold = 3\nlisten = [\"/ip4/0.0.0.0/tcp/9000\"]\nheartbeat_ms = 500\n",
        );
        let changes = merge(&mut current, new);
        assert_eq!(changes.live, vec!["announce", "confirm_threshold"]);
        assert_eq!(changes.restart, vec!["listen", "heartbeat_ms"]);
        assert_eq!(current.confirm_threshold, 3);
        assert_eq!(current.announce.len(), 1);
        assert_eq!(
            current.listen,
            config("").listen,
            "a restart key changed live"
        );
        assert_eq!(
            merge(&mut current.clone(), current.clone()),
            Changes::default()
        );
    }

    #[test]
    fn a_clearnet_announce_waits_for_the_restart_that_leaves_tor_only() {
        let mut current =
            config("network = \"tor-only\"\nlisten = [\"/ip4/127.0.0.1/tcp/7447\"]\n");
        let new = config("announce = [\"/ip4/203.0.113.7/tcp/7447\"]\n");
        let changes = merge(&mut current, new);
        assert!(changes.live.is_empty(), "{changes:?}");
        assert_eq!(changes.restart, vec!["announce", "listen", "network/tor"]);
        assert!(
            current.announce.is_empty(),
            "the IP is not told while tor-only"
        );
    }
}
