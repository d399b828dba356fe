//! Listeners of the status and admin pages that idle clients cannot exhaust.
//!
//! Without limits, every TCP connection a visitor opens costs the daemon a file descriptor
//! until the visitor closes it; enough idle ones and the control socket (the CLI, `alert
//! raise` included) can no longer accept. Here:
//!
//! - at most [`MAX_CONNECTIONS`] connections are served at once per listener; beyond it the
//!   listener stops accepting, so further clients wait in the kernel's backlog and cost the
//!   daemon nothing;
//! - a connection on which the server has written nothing for [`RESPONSE_DEADLINE`] (since
//!   it was accepted, or since its last response) is closed: that bounds a client slow to
//!   send its request head (slowloris) and a keep-alive connection left idle alike;
//! - no connection lasts longer than [`MAX_CONNECTION_LIFETIME`].
//!
//! The same guard serves TCP and Unix-socket listeners.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Most connections served at once on one listener.
pub const MAX_CONNECTIONS: usize = 128;
/// Longest a connection may go without the server writing a byte: the time a client has to
/// send a request head, and the keep-alive idle time.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest any connection lasts.
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// How long a connection may wait for the server's next write, and last at most.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// See [`RESPONSE_DEADLINE`].
    pub respond_within: Duration,
    /// See [`MAX_CONNECTION_LIFETIME`].
    pub lifetime: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            respond_within: RESPONSE_DEADLINE,
            lifetime: MAX_CONNECTION_LIFETIME,
        }
    }
}

/// A listener that holds a permit per served connection and times its connections out.
pub struct Guarded<L> {
    inner: L,
    permits: Arc<Semaphore>,
    deadlines: Deadlines,
}

impl<L> Guarded<L> {
    /// Guards `inner` with the limits of this module.
    pub fn new(inner: L) -> Self {
        Self::with(inner, MAX_CONNECTIONS, Deadlines::default())
    }

    /// Guards `inner` with other limits.
    pub fn with(inner: L, max_connections: usize, deadlines: Deadlines) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            deadlines,
        }
    }
}

impl<L: Listener> Listener for Guarded<L> {
    type Io = Timed<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed; should it be, accept nothing more.
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return std::future::pending().await;
        };
        let (io, address) = self.inner.accept().await;
        (Timed::new(io, permit, self.deadlines), address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A served connection: fails with `TimedOut` once a deadline passes, and frees its
/// listener's permit when dropped.
pub struct Timed<T> {
    inner: T,
    respond_within: Duration,
    /// Moved forward by each write that makes progress.
    respond_by: Pin<Box<Sleep>>,
    ends: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> Timed<T> {
    fn new(inner: T, permit: OwnedSemaphorePermit, deadlines: Deadlines) -> Self {
        let now = Instant::now();
        Self {
            inner,
            respond_within: deadlines.respond_within,
            respond_by: Box::pin(tokio::time::sleep_until(now + deadlines.respond_within)),
            ends: Box::pin(tokio::time::sleep_until(now + deadlines.lifetime)),
            _permit: permit,
        }
    }

    /// Whether a deadline has passed; registers the waker for both otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let respond_by = self.respond_by.as_mut().poll(cx).is_ready();
        let ends = self.ends.as_mut().poll(cx).is_ready();
        respond_by || ends
    }

    /// The server wrote: the client has another full deadline for its next request.
    fn wrote(&mut self) {
        let next = Instant::now() + self.respond_within;
        self.respond_by.as_mut().reset(next);
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "HTTP connection deadline passed")
}

impl<T: AsyncRead + Unpin> AsyncRead for Timed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Timed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(count)) if count > 0) {
            self.wrote();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(count)) if count > 0) {
            self.wrote();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Binds the status page's Unix socket at `path`, mode 0660. Its directory must belong to
/// `own_uid` and be writable by it alone, so no other user can replace the socket; a stale
/// socket of this user from an earlier run is replaced, a live one or any other file is an
/// error (never serve beside, or instead of, someone else's page).
pub fn bind_unix(path: &Path, own_uid: u32) -> anyhow::Result<tokio::net::UnixListener> {
    let directory = path.parent().context("the socket path has no directory")?;
    let metadata = std::fs::metadata(directory)
        .with_context(|| format!("cannot use the directory {}", directory.display()))?;
    if metadata.uid() != own_uid || metadata.mode() & 0o022 != 0 {
        bail!(
            "{} must belong to this daemon's user (uid {own_uid}) and be writable by it alone \
             (it is owned by uid {} with mode {:o}): another user could replace the socket",
            directory.display(),
            metadata.uid(),
            metadata.mode() & 0o7777
        );
    }
    match std::fs::symlink_metadata(path) {
        Ok(existing) => {
            if !existing.file_type().is_socket() || existing.uid() != own_uid {
                bail!(
                    "{} exists and is not a socket of this daemon's user; remove it or choose another path",
                    path.display()
                );
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "{} is in use: another process (another solidarity daemon?) serves on it",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot check {}", path.display()));
        }
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

/// Mode of the status page's Unix socket: its user and group may connect.
pub const SOCKET_MODE: u32 = 0o660;

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const SHORT: Deadlines = Deadlines {
        respond_within: Duration::from_millis(200),
        lifetime: Duration::from_millis(1000),
    };

    async fn timed(
        server: tokio::io::DuplexStream,
        permits: &Arc<Semaphore>,
    ) -> Timed<tokio::io::DuplexStream> {
        let permit = permits.clone().acquire_owned().await.expect("permit");
        Timed::new(server, permit, SHORT)
    }

    #[tokio::test]
    async fn a_silent_connection_fails_after_the_response_deadline_and_frees_its_permit() {
        let (_client, server) = tokio::io::duplex(64);
        let permits = Arc::new(Semaphore::new(1));
        let mut server = timed(server, &permits).await;
        let started = Instant::now();
        let mut buf = [0; 8];
        let error = server.read(&mut buf).await.expect_err("times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= SHORT.respond_within);
        assert_eq!(permits.available_permits(), 0);
        drop(server);
        assert_eq!(permits.available_permits(), 1, "the permit is freed");
    }

    #[tokio::test]
    async fn a_client_sending_without_answer_does_not_extend_its_deadline() {
        let (mut client, server) = tokio::io::duplex(1024);
        let permits = Arc::new(Semaphore::new(1));
        let mut server = timed(server, &permits).await;
        let trickle = tokio::spawn(async move {
            for _ in 0..20 {
                if client.write_all(b"G").await.is_err() {
                    break;
                }
                tokio::time::sleep(SHORT.respond_within / 4).await;
            }
        });
        let started = Instant::now();
        let mut buf = [0; 8];
        let error = loop {
            match server.read(&mut buf).await {
                Ok(_) => {}
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() < SHORT.lifetime,
            "closed at the response deadline"
        );
        drop(server);
        let _ = trickle.await;
    }

    #[tokio::test]
    async fn responses_move_the_deadline_and_the_lifetime_still_ends_it() {
        let (mut client, server) = tokio::io::duplex(64);
        let permits = Arc::new(Semaphore::new(1));
        let mut server = timed(server, &permits).await;
        let started = Instant::now();
        let mut buf = [0; 8];
        let mut responses = 0;
        loop {
            tokio::time::sleep(SHORT.respond_within / 2).await;
            match server.write_all(b"x").await {
                Ok(()) => {
                    responses += 1;
                    let _ = client.read(&mut buf).await;
                }
                Err(error) => {
                    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
                    break;
                }
            }
        }
        assert!(
            responses >= 3,
            "writes kept it open past one deadline: {responses}"
        );
        assert!(started.elapsed() >= SHORT.lifetime);
    }

    #[tokio::test]
    async fn the_unix_socket_is_group_only_and_never_taken_from_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("mode");
        let uid = std::fs::metadata(dir.path()).expect("dir").uid();
        let path = dir.path().join("status.sock");
        let listener = bind_unix(&path, uid).expect("bound");
        let mode = std::fs::metadata(&path).expect("socket").mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);
        let error = bind_unix(&path, uid).expect_err("live socket");
        assert!(error.to_string().contains("in use"), "{error:#}");
        drop(listener);
        bind_unix(&path, uid).expect("a stale socket of ours is replaced");

        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, "someone else's").expect("file");
        let error = bind_unix(&file, uid).expect_err("a file");
        assert!(error.to_string().contains("not a socket"), "{error:#}");
        assert_eq!(
            std::fs::read_to_string(&file).expect("kept"),
            "someone else's"
        );

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("mode");
        let error = bind_unix(&path, uid).expect_err("a directory others may write");
        assert!(
            error.to_string().contains("writable by it alone"),
            "{error:#}"
        );
        let error = bind_unix(&dir.path().join("x.sock"), uid.wrapping_add(1)).expect_err("uid");
        assert!(
            error.to_string().contains("belong to this daemon's user"),
            "{error:#}"
        );
    }
}
