//! The daemon: wires store, writer, network, node actor, control socket and status page,
//! and owns their lifecycle.
//!
//! Tasks: the net event loop, the node actor, the control server, the HTTP server and
//! (as a process) the SIGHUP reloader run on tokio, all owned here; the store writer is a
//! dedicated thread. systemd hears `READY=1` once the control socket and status page are
//! served, `RELOADING=1` around a reload and `STOPPING=1` at shutdown (`systemd.rs`).
//!
//! Shutdown order on SIGTERM/Ctrl-C or a fatal error: stop taking control requests, let
//! the actor finish every queued write (each flushed and acknowledged), stop the writer
//! (final flush), then close the swarm and the status page.

mod actor;
pub mod control_server;
mod directory;
mod display;
mod export;
mod metrics;
mod metrics_endpoint;
pub mod own_chain;
mod refusals;
mod reload;
pub mod settled_revocations;
pub mod snapshot;
mod sync_reader;
mod systemd;
mod tor_task;
pub use sync_reader::{SYNC_ANSWERS_IN_FLIGHT, SYNC_ANSWERS_PER_MEMBER};
pub mod status_page;
mod tasks;
mod trust_log;
pub mod views;
mod writer;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::serve::ListenerExt;
use solidarity_net::NetConfig;
use solidarity_proto::{FederationId, envelope, sync};
use solidarity_store::{SledBackend, SledOptions, SledStore, Store};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{NodeConfig, StatusAddr};
use crate::identity;
use crate::members::MembersFile;
use actor::{ActorParts, Identity, NodeActor};
use snapshot::Snapshot;

/// Name of the store directory inside the data dir.
pub const STORE_DIR: &str = "store";
/// Largest gossip frame: an envelope at its limit plus gossipsub's own framing.
const MAX_GOSSIP_BYTES: usize = envelope::MAX_ENVELOPE_BYTES + 4096;

fn gossip_id(bytes: &[u8]) -> Vec<u8> {
    envelope::gossip_message_id(bytes).to_vec()
}

/// The network configuration of a node of `federation` (also used by test peers).
pub fn net_config(
    keypair: libp2p::identity::Keypair,
    listen: Vec<libp2p::Multiaddr>,
    federation: &FederationId,
    heartbeat: std::time::Duration,
    allowed: Vec<libp2p::PeerId>,
) -> NetConfig {
    NetConfig {
        keypair,
        listen,
        topic: topic(federation),
        sync_protocol: sync::SYNC_PROTOCOL,
        message_id: gossip_id,
        max_message_bytes: MAX_GOSSIP_BYTES,
        max_sync_request_bytes: sync::MAX_REQUEST_BYTES,
        max_sync_response_bytes: sync::MAX_RESPONSE_BYTES,
        heartbeat,
        allowed,
        external: Vec::new(),
        tor: None,
        inbound_through_tor: false,
    }
}

/// The gossipsub topic of a federation (the engine names it).
pub fn topic(federation: &FederationId) -> String {
    solidarity_engine::gossip_topic(federation)
}

/// Runs the daemon until SIGTERM/Ctrl-C or a fatal error.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    let signals = tokio::spawn(async move {
        let result = shutdown_signal().await;
        if result.is_ok() {
            tracing::info!("shutting down");
        }
        on_signal.cancel();
        result
    });
    let outcome = run_service(config, stop, Service::Process).await;
    signals.abort();
    outcome
}

/// Whether the daemon owns the process (SIGHUP reloads) or shares it (tests).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    Process,
    InProcess,
}

/// The file a running daemon holds locked in its data dir.
pub const LOCK_FILE: &str = "daemon.lock";

/// Locks the data dir for this daemon's life (the lock goes with the returned file, also
/// when the process is killed): a second daemon is refused at once, also while the first
/// opens or upgrades its store, before its control socket exists.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        // One another user made (`sudo solidarity node` once) still locks when read.
        .or_else(|_| std::fs::File::open(&path))
        .with_context(|| format!("cannot open {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!(
            "another solidarity daemon is already running with this data dir ({}); it may be upgrading its store",
            data_dir.display()
        ),
        Err(error) => Err(error).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Opens (and, from an older layout, upgrades) the store on a blocking thread, telling
/// systemd meanwhile that the start goes on.
async fn open_store(options: SledOptions) -> anyhow::Result<SledStore> {
    let open = tokio::task::spawn_blocking(move || SledStore::open(&options));
    tokio::pin!(open);
    let mut ticks = tokio::time::interval(systemd::EXTEND_EVERY);
    ticks.tick().await;
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            opened = &mut open => {
                let opened = opened.context("the store's opening stopped")?;
                // The store's error names its path and says what is wrong and what to
                // do; it is taken as one message, since its text already ends with its
                // source's, which `{:#}` would print a second time.
                return opened.map_err(|error| anyhow::Error::msg(error.to_string()));
            }
            // Not forever: an open that hangs is left to the start timeout.
            _ = ticks.tick(), if started.elapsed() < systemd::EXTEND_AT_MOST => systemd::notify(
                systemd::EXTEND_START,
                "opening the store (an upgrade of a large store takes minutes)",
            ),
        }
    }
}

/// Runs the daemon until `stop` is cancelled or a fatal error.
pub async fn run_until(config: NodeConfig, stop: CancellationToken) -> anyhow::Result<()> {
    run_service(config, stop, Service::InProcess).await
}

async fn run_service(
    config: NodeConfig,
    stop: CancellationToken,
    service: Service,
) -> anyhow::Result<()> {
    let _running = lock_data_dir(&config.data_dir)?;
    control_server::refuse_if_running(&crate::locations::control_socket(&config.data_dir))?;
    let options = SledOptions {
        path: config.data_dir.join(STORE_DIR),
        cache_bytes: config.store_cache_bytes,
    };
    // (A running daemon was refused just above, by its socket.)
    let store = open_store(options.clone()).await?;
    let store: Arc<dyn Store> = Arc::new(store);
    let outcome = serve(config, store, stop, service).await;
    if outcome.is_err() {
        systemd::notify(systemd::STOPPING, "stopping after an error");
    }
    outcome?;
    // Every handle of the store is closed now. Opening it once more makes sled record a
    // snapshot, so the next start does not replay the whole log.
    let started = std::time::Instant::now();
    match tokio::task::spawn_blocking(move || SledBackend::checkpoint(&options)).await {
        Ok(Ok(())) => {
            tracing::debug!(
                took_ms = started.elapsed().as_millis(),
                "store checkpointed"
            );
        }
        Ok(Err(store_error)) => {
            tracing::warn!(error = %store_error, "store checkpoint failed; the next start replays the log");
        }
        Err(_) => tracing::warn!("store checkpoint task failed"),
    }
    Ok(())
}

/// Runs the daemon on a given store (tests inject failing stores here).
pub async fn run_with_store(
    config: NodeConfig,
    store: Arc<dyn Store>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    serve(config, store, stop, Service::InProcess).await
}

async fn serve(
    config: NodeConfig,
    store: Arc<dyn Store>,
    stop: CancellationToken,
    service: Service,
) -> anyhow::Result<()> {
    // Registered first: SIGHUP's default action would end the process.
    let hangup = match service {
        Service::Process => Some(tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        )?),
        Service::InProcess => None,
    };
    let key = identity::load_key_file(&config.data_dir)?;
    // One span per node, so the logs of several nodes in one process can be told apart.
    let span = tracing::info_span!("node", id = %envelope::author_key(&key).short());
    serve_node(config, store, stop, hangup, key)
        .instrument(span)
        .await
}

async fn serve_node(
    mut config: NodeConfig,
    store: Arc<dyn Store>,
    stop: CancellationToken,
    hangup: Option<tokio::signal::unix::Signal>,
    key: ed25519_dalek::SigningKey,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {} to its owner", data_dir.display()))?;
    let own_uid = std::fs::metadata(&data_dir)?.uid();
    let keypair = identity::libp2p_keypair(&key)?;
    let members = MembersFile::load(&data_dir)?;
    let federation = FederationId::from_name(&config.federation);

    let socket = crate::locations::control_socket(&data_dir);
    let control_access = if crate::locations::is_system(&data_dir) {
        control_server::Access::Group
    } else {
        control_server::Access::Owner
    };
    let control_listener = control_server::bind(&socket, control_access)?;

    let (writer, writer_thread) = writer::Writer::start(store.clone())?;

    let allowed = members
        .members
        .iter()
        .filter_map(|member| identity::peer_id(&member.key).ok())
        .collect();
    let mut registry = prometheus_client::registry::Registry::default();
    let node_metrics = metrics::NodeMetrics::default();
    node_metrics.register(registry.sub_registry_with_prefix("solidarity"));
    let notify_metrics = crate::notify::metrics::NotifyMetrics::default();
    notify_metrics.register(
        registry
            .sub_registry_with_prefix("solidarity")
            .sub_registry_with_prefix("notify"),
    );
    let config_path = crate::locations::config_path(&data_dir);
    config.onion_announce = crate::tor::p2p_onion_address(config.tor.as_ref(), &data_dir, true)?;
    let mut network = net_config(
        keypair,
        config.listen.clone(),
        &federation,
        config.heartbeat,
        allowed,
    );
    network.external = config.advertised();
    network.tor = config.tor.as_ref().map(crate::tor::TorSettings::dialing);
    network.inbound_through_tor = config.tor.as_ref().is_some_and(|tor| tor.onion_service);
    let (net, net_events, event_loop) = solidarity_net::build_with_metrics(network, &mut registry)
        .map_err(|error| listen_error(error, &config, &config_path))?;

    let status_listener = match &config.status_addr {
        StatusAddr::Tcp(address) => StatusListener::Tcp(
            bind_http(*address, "status page", "status_addr", &config_path).await?,
        ),
        StatusAddr::Unix(path) => StatusListener::Unix(
            status_page::listener::bind_unix(path, own_uid).with_context(|| {
                format!(
                    "cannot open the status page on `status_addr` {} in {}",
                    config.status_addr,
                    config_path.display()
                )
            })?,
        ),
    };
    let status_url = match &status_listener {
        StatusListener::Tcp(listener) => format!("http://{}/", listener.local_addr()?),
        StatusListener::Unix(_) => config.status_addr.to_string(),
    };
    let admin = match config.admin_addr {
        Some(address) => {
            let token = status_page::auth::AdminToken::load_or_create(&data_dir)?;
            let listener = bind_http(address, "admin page", "admin_addr", &config_path).await?;
            Some((listener, token))
        }
        None => None,
    };
    let admin_url = match &admin {
        Some((listener, _)) => Some(format!("http://{}/", listener.local_addr()?)),
        None => None,
    };

    let metrics_listener = match config.metrics_addr {
        Some(address) => {
            if !address.ip().is_loopback() {
                tracing::warn!(
                    "`metrics_addr` is not a loopback address: the node's traffic figures can be read from the network"
                );
            }
            Some(bind_http(address, "metrics endpoint", "metrics_addr", &config_path).await?)
        }
        None => None,
    };
    let metrics_url = match &metrics_listener {
        Some(listener) => Some(format!("http://{}/metrics", listener.local_addr()?)),
        None => None,
    };
    let admin_url_for_log = admin_url.clone();
    let tor = match &config.tor {
        Some(settings) => Some(tor_task::prepare(
            settings,
            &data_dir,
            &status_listener,
            &config.status_addr,
        )?),
        None => None,
    };
    let (control_tx, control_rx) = mpsc::channel(actor::CONTROL_QUEUE);
    let (reload_tx, reload_rx) = mpsc::channel(reload::RELOAD_QUEUE);
    let net_for_log = net.clone();
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::empty()));
    let (notify_feed, stored_rx) = crate::notify::reports::feed();
    let member_count = members.members.len();
    let registry = Arc::new(registry);
    let actor = NodeActor::new(ActorParts {
        identity: Identity {
            key: key.clone(),
            federation,
            status_url: status_url.clone(),
            admin_url,
            metrics_url,
            tor: tor.as_ref().map(|prepared| prepared.view.subscribe()),
            config: config.clone(),
        },
        data_dir: data_dir.clone(),
        store: store.clone(),
        writer,
        net,
        net_events,
        control: control_rx,
        reload: reload_rx,
        snapshot: snapshot_tx,
        members,
        metrics: node_metrics,
        registry: Arc::clone(&registry),
        notify_feed,
    })?;

    let shutdown = CancellationToken::new();
    let (notifier, notify_tx) = crate::notify::Notifier::new(
        crate::notify::service::NotifierParts {
            config: config.notify.clone(),
            federation: config.federation.clone(),
            data_dir: data_dir.clone(),
            snapshots: snapshot_rx.clone(),
            store: store.clone(),
            feed: stored_rx,
            metrics: notify_metrics,
        },
        &shutdown,
    )?;
    let net_shutdown = CancellationToken::new();
    let net_task = tokio::spawn(
        event_loop
            .run(net_shutdown.clone().cancelled_owned())
            .in_current_span(),
    );
    let mut watched = tasks::Watched::default();
    if let Some(listener) = metrics_listener {
        let (router, stop) = (
            metrics_endpoint::router(Arc::clone(&registry)),
            shutdown.clone(),
        );
        watched.spawn("metrics endpoint", async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
    }
    watched.spawn(
        "control server",
        control_server::serve(
            control_listener,
            socket,
            control_access.admitting(own_uid),
            control_tx,
            notify_tx,
            store.clone(),
            shutdown.clone(),
        ),
    );
    watched.spawn("notifier", notifier.run(shutdown.clone()));
    let http_shutdown = shutdown.clone();
    if let Some((listener, token)) = admin {
        let (snapshots, stop) = (snapshot_rx.clone(), shutdown.clone());
        watched.spawn("admin page", async move {
            // `tap_io` only to reach axum's `ConnectInfo` impl for wrapped listeners.
            let listener = status_page::listener::Guarded::new(listener).tap_io(|_| {});
            axum::serve(
                listener,
                status_page::admin_router(snapshots, token)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        });
    }
    watched.spawn("status page", async move {
        let (router, stop) = (
            status_page::router(snapshot_rx),
            http_shutdown.cancelled_owned(),
        );
        match status_listener {
            StatusListener::Tcp(listener) => {
                axum::serve(status_page::listener::Guarded::new(listener), router)
                    .with_graceful_shutdown(stop)
                    .await
            }
            StatusListener::Unix(listener) => {
                axum::serve(status_page::listener::Guarded::new(listener), router)
                    .with_graceful_shutdown(stop)
                    .await
            }
        }
    });
    let mut actor_task = tokio::spawn(actor.run(shutdown.clone()).in_current_span());
    let reload_task = hangup.map(|hangup| {
        tokio::spawn(
            reload::on_sighup(hangup, data_dir.clone(), reload_tx, shutdown.clone())
                .in_current_span(),
        )
    });

    let p2p_ports = bound_ports(&net_for_log, &config.listen).await;
    if let Some(prepared) = tor {
        let bound = net_for_log.listen_addresses().await.unwrap_or_default();
        watched.spawn(
            "tor task",
            tor_task::run(prepared, &bound, net_for_log.clone(), shutdown.clone()),
        );
    }
    tracing::info!(
        node = %envelope::author_key(&key).short(),
        federation = %config.federation,
        members = member_count,
        status_page = %status_url,
        admin_page = admin_url_for_log.as_deref().unwrap_or("off"),
        p2p_ports = ?p2p_ports,
        "node started; status page and control socket are up"
    );
    if member_count == 0 {
        tracing::info!(
            "no members yet: send your card (`{}`) to the other admins and add theirs with `{}`",
            crate::locations::hint("id"),
            crate::locations::hint("member add CARD --name NAME"),
        );
    }
    systemd::notify(
        systemd::READY,
        &format!("running, status page {status_url}"),
    );

    let (outcome, task_failure) = tokio::select! {
        () = stop.cancelled() => {
            shutdown.cancel();
            (actor_task.await, None)
        }
        finished = &mut actor_task => (finished, None),
        ended = watched.next_ended() => {
            let failure = ended.into_error();
            tracing::error!("{failure:#}");
            shutdown.cancel();
            (actor_task.await, Some(failure))
        }
    };
    systemd::notify(systemd::STOPPING, "stopping");
    shutdown.cancel();
    if let Some(task) = reload_task {
        task.abort();
    }
    let actor_result = outcome.context("the node actor panicked")?;
    // The actor is gone, so the writer's last handle is dropped: the thread finishes its
    // queue, flushes and exits.
    let writer_join = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    if !matches!(writer_join, Ok(Ok(()))) {
        tracing::error!("the store writer thread panicked");
    }
    net_shutdown.cancel();
    let _ = tokio::join!(net_task, watched.join_all());
    if let StatusAddr::Unix(path) = &config.status_addr {
        // Ours (bind_unix checked): a stopped page leaves no socket behind.
        let _ = std::fs::remove_file(path);
    }
    actor_result?;
    if let Some(failure) = task_failure {
        return Err(failure);
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The status page's bound listener.
enum StatusListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Binds one of the HTTP listeners; a failure is one line naming the page, its config key,
/// the address and the config file.
async fn bind_http(
    address: std::net::SocketAddr,
    page: &str,
    key: &str,
    config_path: &std::path::Path,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| {
            let why = if error.kind() == std::io::ErrorKind::AddrInUse {
                format!(
                    "port {} is already in use (another solidarity daemon, or another program?)",
                    address.port()
                )
            } else {
                error.to_string()
            };
            anyhow::anyhow!(
                "cannot open the {page} on `{key}` {address} in {}: {why}",
                config_path.display()
            )
        })
}

/// How long start-up waits for the listeners to report their ports, for the log line.
const LISTEN_REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The p2p TCP ports bound (the configured ones if the listeners are slow to report).
async fn bound_ports(net: &solidarity_net::NetHandle, listen: &[libp2p::Multiaddr]) -> Vec<u16> {
    let started = std::time::Instant::now();
    loop {
        let bound = net.listen_addresses().await.unwrap_or_default();
        let ports = crate::card_addresses::tcp_ports(&bound);
        if !ports.is_empty() || started.elapsed() > LISTEN_REPORT_WAIT {
            return if ports.is_empty() {
                crate::card_addresses::tcp_ports(listen)
            } else {
                ports
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A listen failure in one line naming the config key, the admin's own address and port.
fn listen_error(
    error: solidarity_net::NetError,
    config: &NodeConfig,
    config_path: &std::path::Path,
) -> anyhow::Error {
    use solidarity_net::NetError;
    let named = |index: usize| {
        config
            .listen
            .get(index)
            .map_or_else(String::new, |address| format!(" {address}"))
    };
    match error {
        NetError::AddressInUse { index, port } => anyhow::anyhow!(
            "cannot listen on `listen` address{} in {}: port {port} is already in use (another solidarity daemon, or another program?)",
            named(index),
            config_path.display()
        ),
        NetError::Listen { index, source } => anyhow::anyhow!(
            "cannot listen on `listen` address{} in {}: {source}",
            named(index),
            config_path.display()
        ),
        other => anyhow::Error::new(other).context("cannot start the network"),
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
