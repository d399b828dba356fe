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
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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

/// A listener that holds a permit per served connection and times its connections out.
pub struct Guarded<L> {
    inner: L,
    permits: Arc<Semaphore>,
}

impl<L> Guarded<L> {
    /// Guards `inner` with the limits of this module.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
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
        (Timed::new(io, permit), address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A served connection: fails with `TimedOut` once a deadline passes, and frees its
/// listener's permit when dropped.
pub struct Timed<T> {
    inner: T,
    /// Moved forward by each write that makes progress.
    respond_by: Pin<Box<Sleep>>,
    ends: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> Timed<T> {
    fn new(inner: T, permit: OwnedSemaphorePermit) -> Self {
        let now = Instant::now();
        Self {
            inner,
            respond_by: Box::pin(tokio::time::sleep_until(now + RESPONSE_DEADLINE)),
            ends: Box::pin(tokio::time::sleep_until(now + MAX_CONNECTION_LIFETIME)),
            _permit: permit,
        }
    }

    /// Whether a deadline has passed; registers the waker for both otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let respond_by = self.respond_by.as_mut().poll(cx).is_ready();
        let ends = self.ends.as_mut().poll(cx).is_ready();
        respond_by || ends
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
            self.respond_by
                .as_mut()
                .reset(Instant::now() + RESPONSE_DEADLINE);
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
            self.respond_by
                .as_mut()
                .reset(Instant::now() + RESPONSE_DEADLINE);
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_fails_after_the_response_deadline() {
        let (client, server) = tokio::io::duplex(64);
        let permits = Arc::new(Semaphore::new(1));
        let permit = permits.clone().acquire_owned().await.expect("permit");
        let mut server = Timed::new(server, permit);
        let mut buf = [0; 8];
        let started = Instant::now();
        let error = server.read(&mut buf).await.expect_err("times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), RESPONSE_DEADLINE);
        drop(server);
        assert_eq!(permits.available_permits(), 1, "the permit is freed");
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn responses_move_the_deadline_and_the_lifetime_still_ends_it() {
        let (mut client, server) = tokio::io::duplex(64);
        let permit = Arc::new(Semaphore::new(1))
            .acquire_owned()
            .await
            .expect("permit");
        let mut server = Timed::new(server, permit);
        let started = Instant::now();
        let mut buf = [0; 8];
        loop {
            tokio::time::sleep(RESPONSE_DEADLINE / 2).await;
            match server.write_all(b"x").await {
                Ok(()) => {
                    let _ = client.read(&mut buf).await;
                }
                Err(error) => {
                    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
                    break;
                }
            }
        }
        assert!(started.elapsed() >= MAX_CONNECTION_LIFETIME);
        assert!(started.elapsed() < MAX_CONNECTION_LIFETIME + RESPONSE_DEADLINE);
    }
}
