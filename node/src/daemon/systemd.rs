//! systemd's readiness protocol (`Type=notify`): one datagram per state change to the
//! Unix socket named by `$NOTIFY_SOCKET` (a path, or an abstract name starting with `@`).
//! Without the variable (not run by systemd) nothing is sent.
//!
//! States sent: `READY=1` once the control socket and status page are served (and again
//! after a reload), `RELOADING=1` while SIGHUP is handled, `STOPPING=1` at shutdown, and
//! while the store opens (an upgrade can take minutes) `EXTEND_TIMEOUT_USEC`, for at most
//! two hours, so the start timeout does not kill a long upgrade.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable systemd sets for a `Type=notify` service.
const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// The service is up.
pub const READY: &str = "READY=1";
/// A reload has started.
pub const RELOADING: &str = "RELOADING=1";
/// Shutdown has started.
pub const STOPPING: &str = "STOPPING=1";
/// Still starting: the start timeout runs 90 s from now (sent every [`EXTEND_EVERY`]).
pub const EXTEND_START: &str = "EXTEND_TIMEOUT_USEC=90000000";
/// How often [`EXTEND_START`] is sent while the start takes long.
pub const EXTEND_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the start is extended at most: an upgrade of tens of millions of messages
/// (100 000 take about 10 s); an open that takes longer hangs.
pub const EXTEND_AT_MOST: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// Sends `state` (with a `STATUS=` line for `systemctl status`) to systemd, if it
/// listens. Failures are logged at debug: readiness is a courtesy, never fatal.
pub fn notify(state: &str, status: &str) {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET_ENV).filter(|value| !value.is_empty()) else {
        return;
    };
    let message = format!("{state}\nSTATUS={status}\n");
    if let Err(error) = send(&target, message.as_bytes()) {
        tracing::debug!(%error, "cannot notify systemd");
    }
}

fn send(target: &std::ffi::OsStr, message: &[u8]) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    let address = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        None => SocketAddr::from_pathname(std::path::Path::new(target))?,
    };
    socket.send_to_addr(message, &address)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        send(path.as_os_str(), b"READY=1\n").expect("send to path");
        let mut buffer = [0u8; 64];
        let read = listener.recv(&mut buffer).expect("recv");
        assert_eq!(&buffer[..read], b"READY=1\n");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("solidarity-notify-test-{}", std::process::id());
        let abstract_address = SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let listener = UnixDatagram::bind_addr(&abstract_address).expect("bind abstract");
        send(std::ffi::OsStr::new(&format!("@{name}")), b"STOPPING=1\n").expect("send");
        let read = listener.recv(&mut buffer).expect("recv");
        assert_eq!(&buffer[..read], b"STOPPING=1\n");
    }
}
