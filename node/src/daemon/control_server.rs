//! The control socket server: one JSON request per connection, answered by the node actor.
//!
//! Access: the socket lives in the 0700 data dir and is itself 0600; on top of that every
//! connection's peer credentials are checked, so only the daemon's own user (or root) is
//! served.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use solidarity_control::{Request, Response, encode_response, parse_request};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::actor::ControlCall;

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

/// Binds the socket, refusing to steal it from a running daemon.
pub fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if socket.exists() {
        refuse_if_running(socket)?;
        std::fs::remove_file(socket)
            .with_context(|| format!("cannot remove stale socket {}", socket.display()))?;
    }
    let listener = UnixListener::bind(socket)
        .with_context(|| format!("cannot create control socket {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    socket: PathBuf,
    own_uid: u32,
    actor: mpsc::Sender<ControlCall>,
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
                let actor = actor.clone();
                connections.spawn(async move {
                    handle_connection(stream, own_uid, actor).await;
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

async fn handle_connection(mut stream: UnixStream, own_uid: u32, actor: mpsc::Sender<ControlCall>) {
    let response = match stream.peer_cred() {
        Ok(cred) if cred.uid() == own_uid || cred.uid() == 0 => {
            match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
                Ok(Ok(request)) => call_actor(&actor, request).await,
                Ok(Err(message)) => Response::Error { message },
                Err(_) => Response::Error {
                    message: "timed out waiting for the request".into(),
                },
            }
        }
        _ => Response::Error {
            message: "refused: the control socket serves only the daemon's own user".into(),
        },
    };
    let _ = stream.write_all(&encode_response(&response)).await;
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

async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut line = Vec::new();
    let limit = solidarity_control::MAX_REQUEST_BYTES as u64 + 1;
    BufReader::new(stream.take(limit))
        .read_until(b'\n', &mut line)
        .await
        .map_err(|error| format!("cannot read the request: {error}"))?;
    parse_request(&line).map_err(|error| error.to_string())
}

async fn call_actor(actor: &mpsc::Sender<ControlCall>, request: Request) -> Response {
    let (reply, answer) = oneshot::channel();
    if actor.send(ControlCall { request, reply }).await.is_err() {
        return Response::Error {
            message: "the daemon is shutting down".into(),
        };
    }
    answer.await.unwrap_or_else(|_| Response::Error {
        message: "the daemon stopped before answering; the request may not have been carried out"
            .into(),
    })
}
