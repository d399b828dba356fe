//! The control socket server: one JSON request per connection, answered by the node actor.
//!
//! - Each parsed [`Request`] becomes the [`ControlCall`] variant of its type, whose reply
//!   channel takes that type's answer only (`solidarity_control::Answer`), so the actor
//!   cannot answer a request with another request's response.
//! - Refusals before the actor (a request that does not parse, a caller that is not the
//!   daemon's user, shutdown) carry their own [`RefusalCode`].
//!
//! - A prefix lookup (`AlertIds`) is answered here, on a blocking reader, from the store's
//!   ordered id index: it never waits for the actor nor loads every alert.
//!
//! Access ([`Access`]): a user node's socket lives in the 0700 data dir and is itself 0600;
//! on top of that every connection's peer credentials are checked, so only the daemon's own
//! user (or root) is served. A system node's socket is `/run/solidarity/control.sock`, 0660,
//! so the members of the daemon's group are served too.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use solidarity_control::{
    Answer, ControlRequest, IdMatches, Raised, Refusal, RefusalCode, Request, encode_answer,
    encode_refusal, parse_request, request,
};
use solidarity_proto::payload::KIND_ALERT;
use solidarity_store::{Store, StoreError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::notify::NotifyCall;

/// Where the actor sends the answer to a request of type `R`.
pub type Reply<R> = oneshot::Sender<Answer<R>>;

/// Where the actor sends the answer to a request that signs a message (every such request
/// is answered with [`Raised`]).
pub type SignReply = oneshot::Sender<Result<Raised, Refusal>>;

/// One request of type `R` with the channel for its answer.
pub struct Call<R: ControlRequest> {
    pub request: R,
    pub reply: Reply<R>,
}

/// A control request for the node actor: one variant per request type (see
/// [`solidarity_control::request`] for what each asks).
pub enum ControlCall {
    Status(Call<request::Status>),
    Peers(Call<request::Peers>),
    Metrics(Call<request::Metrics>),
    Card(Call<request::Card>),
    ReloadMembers(Call<request::ReloadMembers>),
    MemberRetrust(Call<request::MemberRetrust>),
    AlertRaise(Call<request::AlertRaise>),
    AlertUpdate(Call<request::AlertUpdate>),
    AlertList(Call<request::AlertList>),
    AlertShow(Call<request::AlertShow>),
    AlertEndorse(Call<request::AlertEndorse>),
    MemberVouch(Call<request::MemberVouch>),
    MirrorOffer(Call<request::MirrorOffer>),
    MirrorWithdraw(Call<request::MirrorWithdraw>),
    MirrorList(Call<request::MirrorList>),
    CanaryPublish(Call<request::CanaryPublish>),
    PublishStatement(Call<request::PublishStatement>),
    CanaryDuress(Call<request::CanaryDuress>),
    ExportPage(Call<request::ExportPage>),
    ExportExtras(Call<request::ExportExtras>),
    Import(Call<request::Import>),
}

/// CLI connections served at once; more wait in the listen backlog.
const MAX_CONTROL_CONNECTIONS: usize = 16;
/// How long in-flight calls may take to answer at shutdown.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Most bytes read and dropped after answering (the rest of an oversized request).
const DRAIN_AFTER_ANSWER_BYTES: u64 = 4 * 1024 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Fails when a daemon already answers on `socket`.
pub fn refuse_if_running(socket: &Path) -> anyhow::Result<()> {
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        bail!(
            "another solidarity daemon is already running with this data dir ({})",
            socket.display()
        );
    }
    Ok(())
}

/// Who may use the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The socket is 0600 and each caller is checked: the daemon's own user or root.
    Owner,
    /// A system node's socket in `/run/solidarity`: 0660, in a directory of the daemon's
    /// group only root can create. The file mode is the gate (connect(2) checks the caller's
    /// groups, supplementary ones included, which a peer credential does not carry), so a
    /// caller that could connect is admitted.
    Group,
}

impl Access {
    /// The check of each connection, for a daemon running as `own_uid`.
    pub fn admitting(self, own_uid: u32) -> Admission {
        Admission {
            access: self,
            own_uid,
        }
    }

    fn mode(self) -> u32 {
        match self {
            Self::Owner => 0o600,
            Self::Group => 0o660,
        }
    }
}

/// Whether a connection's caller may send a request.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    access: Access,
    own_uid: u32,
}

impl Admission {
    fn admits(self, caller_uid: u32) -> bool {
        self.access == Access::Group || caller_uid == self.own_uid || caller_uid == 0
    }
}

/// Binds the socket, refusing to steal it from a running daemon. A group socket's
/// directory is made (0750) when systemd has not made it.
pub fn bind(socket: &Path, access: Access) -> anyhow::Result<UnixListener> {
    if access == Access::Group
        && let Some(dir) = socket.parent()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if socket.exists() {
        refuse_if_running(socket)?;
        std::fs::remove_file(socket)
            .with_context(|| format!("cannot remove stale socket {}", socket.display()))?;
    }
    let listener = UnixListener::bind(socket)
        .with_context(|| format!("cannot create control socket {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(access.mode()))?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    socket: PathBuf,
    admission: Admission,
    actor: mpsc::Sender<ControlCall>,
    notifier: mpsc::Sender<NotifyCall>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONTROL_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let callees = Callees {
                    actor: actor.clone(),
                    notifier: notifier.clone(),
                    store: Arc::clone(&store),
                };
                connections.spawn(async move {
                    handle_connection(stream, admission, callees).await;
                    drop(permit);
                });
            }
        }
    }
    // Let in-flight calls write their answers (a refusal after a storage failure
    // included), then drop whatever is still stuck.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        connections.shutdown().await;
    }
    let _ = std::fs::remove_file(&socket);
}

/// Who answers requests: the actor, the notifier, or the store directly.
struct Callees {
    actor: mpsc::Sender<ControlCall>,
    notifier: mpsc::Sender<NotifyCall>,
    store: Arc<dyn Store>,
}

async fn handle_connection(mut stream: UnixStream, admission: Admission, callees: Callees) {
    let line = match stream.peer_cred() {
        Ok(cred) if admission.admits(cred.uid()) => {
            match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
                Ok(Ok(request)) => dispatch(callees, request).await,
                Ok(Err(refusal)) => encode_refusal(&refusal),
                Err(_) => encode_refusal(&Refusal::new(
                    RefusalCode::RequestTimeout,
                    "timed out waiting for the request",
                )),
            }
        }
        _ => encode_refusal(&Refusal::new(
            RefusalCode::NotDaemonUser,
            "refused: the control socket serves only the daemon's own user",
        )),
    };
    let _ = stream.write_all(&line).await;
    let _ = stream.shutdown().await;
    // Whatever the client still sends (an oversized request) is read and dropped for a
    // moment, so closing does not reset the connection before it reads the answer.
    let mut rest = (&mut stream).take(DRAIN_AFTER_ANSWER_BYTES);
    let _ = tokio::time::timeout(
        REQUEST_TIMEOUT,
        tokio::io::copy(&mut rest, &mut tokio::io::sink()),
    )
    .await;
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, Refusal> {
    let mut line = Vec::new();
    let limit = solidarity_control::MAX_REQUEST_BYTES as u64 + 1;
    BufReader::new(stream.take(limit))
        .read_until(b'\n', &mut line)
        .await
        .map_err(|error| {
            Refusal::new(
                RefusalCode::MalformedRequest,
                format!("cannot read the request: {error}"),
            )
        })?;
    Ok(parse_request(&line)?)
}

/// Hands the request to the actor as the call of its type; returns the answer's line.
async fn dispatch(callees: Callees, request: Request) -> Vec<u8> {
    let actor = &callees.actor;
    let notifier = &callees.notifier;
    match request {
        Request::AlertIds(request) => alert_ids(callees.store, request).await,
        Request::NotifyTest(request) => ask(notifier, request, NotifyCall::Test).await,
        Request::NotifyStatus(request) => ask(notifier, request, NotifyCall::Status).await,
        Request::NotifyList(request) => ask(notifier, request, NotifyCall::List).await,
        Request::Status(request) => ask(actor, request, ControlCall::Status).await,
        Request::Peers(request) => ask(actor, request, ControlCall::Peers).await,
        Request::Metrics(request) => ask(actor, request, ControlCall::Metrics).await,
        Request::Card(request) => ask(actor, request, ControlCall::Card).await,
        Request::ReloadMembers(request) => ask(actor, request, ControlCall::ReloadMembers).await,
        Request::MemberRetrust(request) => ask(actor, request, ControlCall::MemberRetrust).await,
        Request::AlertRaise(request) => ask(actor, request, ControlCall::AlertRaise).await,
        Request::AlertUpdate(request) => ask(actor, request, ControlCall::AlertUpdate).await,
        Request::AlertList(request) => ask(actor, request, ControlCall::AlertList).await,
        Request::AlertShow(request) => ask(actor, request, ControlCall::AlertShow).await,
        Request::AlertEndorse(request) => ask(actor, request, ControlCall::AlertEndorse).await,
        Request::MemberVouch(request) => ask(actor, request, ControlCall::MemberVouch).await,
        Request::MirrorOffer(request) => ask(actor, request, ControlCall::MirrorOffer).await,
        Request::MirrorWithdraw(request) => ask(actor, request, ControlCall::MirrorWithdraw).await,
        Request::MirrorList(request) => ask(actor, request, ControlCall::MirrorList).await,
        Request::CanaryPublish(request) => ask(actor, request, ControlCall::CanaryPublish).await,
        Request::PublishStatement(request) => {
            ask(actor, request, ControlCall::PublishStatement).await
        }
        Request::CanaryDuress(request) => ask(actor, request, ControlCall::CanaryDuress).await,
        Request::ExportPage(request) => ask(actor, request, ControlCall::ExportPage).await,
        Request::ExportExtras(request) => ask(actor, request, ControlCall::ExportExtras).await,
        Request::Import(request) => ask(actor, request, ControlCall::Import).await,
    }
}

/// Most ids of any kind a prefix lookup reads; when that many share the prefix, the
/// prefix names no one alert (ids can be ground to share a short prefix).
pub const PREFIX_SCAN_LIMIT: usize = 16;

/// The stored alerts among the first [`PREFIX_SCAN_LIMIT`] ids with the prefix.
async fn alert_ids(store: Arc<dyn Store>, request: request::AlertIds) -> Vec<u8> {
    let read = tokio::task::spawn_blocking(move || -> Result<IdMatches, StoreError> {
        let scanned = store.ids_with_prefix(&request.prefix, PREFIX_SCAN_LIMIT)?;
        let more = scanned.len() == PREFIX_SCAN_LIMIT;
        let mut ids = Vec::new();
        for id in scanned {
            if store.meta(&id)?.is_some_and(|meta| meta.kind == KIND_ALERT) {
                ids.push(id);
            }
        }
        Ok(IdMatches { ids, more })
    })
    .await;
    let answer = match read {
        Ok(Ok(matches)) => Ok(matches),
        Ok(Err(read)) => Err(Refusal::new(
            RefusalCode::StoreUnreadable,
            format!("cannot read the store: {read}"),
        )),
        Err(_) => Err(Refusal::new(
            RefusalCode::StoppedBeforeAnswer,
            "the store read stopped before answering",
        )),
    };
    encode_answer::<request::AlertIds>(&answer)
}

async fn ask<R: ControlRequest, C>(
    actor: &mpsc::Sender<C>,
    request: R,
    call: fn(Call<R>) -> C,
) -> Vec<u8> {
    let (reply, answer) = oneshot::channel();
    let answer = if actor.send(call(Call { request, reply })).await.is_err() {
        Err(Refusal::new(
            RefusalCode::ShuttingDown,
            "the daemon is shutting down",
        ))
    } else {
        answer.await.unwrap_or_else(|_| {
            Err(Refusal::new(
                RefusalCode::StoppedBeforeAnswer,
                "the daemon stopped before answering; the request may not have been carried out",
            ))
        })
    };
    encode_answer::<R>(&answer)
}
