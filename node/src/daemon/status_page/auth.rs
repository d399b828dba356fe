//! Who may see the admin view: a loopback peer holding the token of `DATA/admin.token`.
//!
//! - The token: 32 random bytes as hex, made by the daemon when `admin_addr` is set, kept
//!   0600 in the data dir (0700), reused across restarts so a bookmark keeps working;
//!   delete the file to make a new one.
//! - `GET /login?token=…` sets an `HttpOnly; SameSite=Strict; Path=/` cookie and redirects
//!   to `/`; every other route needs that cookie or `Authorization: Bearer TOKEN`. The
//!   cookie is a random session id, never the token (browsers send loopback cookies to
//!   every port of the host, so to other local web servers too): it lasts
//!   `SESSION_LIFETIME_MS` (12 h), at most `MAX_SESSIONS` (16) live at once (the oldest goes), and
//!   all end when the daemon stops.
//! - A `Host` that is not loopback gets 403 (DNS rebinding: a page whose name now
//!   resolves to 127.0.0.1 sends its own name).
//! - A peer address that is not loopback gets 403 even with the token (the listener is
//!   refused on non-loopback addresses already; this holds if a proxy or a bug ever lets
//!   one through). Tokens are compared in constant time; refusals say nothing more than
//!   "forbidden" or "unauthorized".

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::daemon::actor::now_ms;

use crate::admin_token::TOKEN_BYTES;
pub use crate::admin_token::{TOKEN_FILE, read_token, token_path};
/// Name of the session cookie.
const COOKIE: &str = "solidarity_admin";
/// How long a login lasts: a working day.
const SESSION_LIFETIME_MS: u64 = 12 * 3600 * 1000;
/// Live sessions at most: logins beyond it end the oldest, so a script logging in in a
/// loop cannot grow memory.
const MAX_SESSIONS: usize = 16;

/// The admin token (its hex text) and the sessions opened with it.
#[derive(Clone)]
pub struct AdminToken {
    token: Arc<String>,
    sessions: Arc<Mutex<VecDeque<Session>>>,
}

struct Session {
    id: String,
    ends_at: u64,
}

impl AdminToken {
    /// Reads the token of `data_dir`, or makes one (0600) when there is none or it is
    /// damaged.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = token_path(data_dir);
        if let Some(token) = read_token(data_dir) {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
            return Ok(Self::from_text(&token));
        }
        let token = hex::encode(rand::random::<[u8; TOKEN_BYTES]>());
        let temporary = data_dir.join(format!("{TOKEN_FILE}.tmp"));
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        writeln!(file, "{token}")
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self::from_text(&token))
    }

    fn from_text(text: &str) -> Self {
        Self {
            token: Arc::new(text.to_owned()),
            sessions: Arc::default(),
        }
    }

    /// Whether `candidate` is the token, in time independent of where they differ.
    fn matches(&self, candidate: &str) -> bool {
        same_secret(&self.token, candidate)
    }

    /// Opens a session: its id, for the cookie.
    fn open_session(&self, now_ms: u64) -> String {
        let id = hex::encode(rand::random::<[u8; TOKEN_BYTES]>());
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.retain(|session| session.ends_at > now_ms);
        while sessions.len() >= MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(Session {
            id: id.clone(),
            ends_at: now_ms.saturating_add(SESSION_LIFETIME_MS),
        });
        id
    }

    /// Whether `candidate` is the id of a live session (every session is compared).
    fn has_session(&self, candidate: &str, now_ms: u64) -> bool {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.iter().fold(false, |found, session| {
            found | (session.ends_at > now_ms && same_secret(&session.id, candidate))
        })
    }
}

/// Whether two secrets are equal, in time independent of where they differ.
fn same_secret(expected: &str, candidate: &str) -> bool {
    let (expected, candidate) = (expected.as_bytes(), candidate.trim().as_bytes());
    if expected.len() != candidate.len() {
        return false;
    }
    let difference = expected
        .iter()
        .zip(candidate)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// Why a request to the admin view is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is not on this machine's loopback.
    NotLoopback,
    /// No token, or not the right one.
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            Self::NotLoopback => (StatusCode::FORBIDDEN, "forbidden\n"),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized: open the admin URL that `solidarity status` prints\n",
            ),
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    }
}

/// Only loopback peers reach the admin view.
pub fn check_peer(peer: SocketAddr) -> Result<(), Refusal> {
    if peer.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(Refusal::NotLoopback)
    }
}

/// The request is addressed to this machine's loopback (`127.x.y.z`, `[::1]` or
/// `localhost`, any port): a web page whose name an attacker rebinds to 127.0.0.1 (DNS
/// rebinding) still sends its own name as `Host`, and is refused before the token is
/// looked at. A request without `Host` (not a browser) passes to the token check.
pub fn check_host(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(host) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().map_err(|_| Refusal::NotLoopback)?;
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or("", |(name, _port)| name)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(Refusal::NotLoopback)
    }
}

/// The request carries the token as a bearer token, or the cookie of a live session.
pub fn check_token(headers: &HeaderMap, token: &AdminToken, now_ms: u64) -> Result<(), Refusal> {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.strip_prefix("Bearer "));
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='));
    let mut found = false;
    // No early exit: every candidate is compared.
    for candidate in bearer {
        found |= token.matches(candidate);
    }
    for candidate in cookies {
        found |= token.has_session(candidate, now_ms);
    }
    if found {
        Ok(())
    } else {
        Err(Refusal::Unauthorized)
    }
}

/// Middleware of every admin route: loopback peer, then the token (except on `/login`,
/// which checks its own).
pub async fn guard(
    State(token): State<AdminToken>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = check_peer(peer).and_then(|()| check_host(request.headers())) {
        return refusal.into_response();
    }
    if request.uri().path() != "/login"
        && let Err(refusal) = check_token(request.headers(), &token, now_ms())
    {
        return refusal.into_response();
    }
    next.run(request).await
}

#[derive(Deserialize)]
pub struct Login {
    token: Option<String>,
}

/// `GET /login?token=…`: the session cookie and a redirect to `/`.
pub async fn login(State(token): State<AdminToken>, Query(login): Query<Login>) -> Response {
    if !login
        .token
        .is_some_and(|candidate| token.matches(&candidate))
    {
        return Refusal::Unauthorized.into_response();
    }
    let session = token.open_session(now_ms());
    let cookie = format!("{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/");
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return Refusal::Unauthorized.into_response();
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, HeaderValue::from_static("/")),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_peer_off_loopback_is_refused_whatever_it_holds() {
        for peer in ["127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"] {
            assert_eq!(check_peer(peer.parse().expect("addr")), Ok(()), "{peer}");
        }
        for peer in [
            "192.0.2.7:5000",
            "10.0.0.1:80",
            "[2001:db8::1]:443",
            "0.0.0.0:1",
        ] {
            assert_eq!(
                check_peer(peer.parse().expect("addr")),
                Err(Refusal::NotLoopback),
                "{peer}"
            );
        }
    }

    #[test]
    fn a_host_other_than_loopback_is_refused_against_dns_rebinding() {
        let with = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).expect("header"));
            check_host(&headers)
        };
        for host in [
            "127.0.0.1:7449",
            "127.0.0.1",
            "127.8.9.1:80",
            "[::1]:7449",
            "localhost:7449",
            "LOCALHOST",
        ] {
            assert_eq!(with(host), Ok(()), "{host}");
        }
        for host in [
            "rebind.attacker.example:7449",
            "attacker.example",
            "192.0.2.7:7449",
            "[2001:db8::1]:7449",
            "localhost.attacker.example",
            "127.0.0.1.attacker.example",
            "[::1",
        ] {
            assert_eq!(with(host), Err(Refusal::NotLoopback), "{host}");
        }
        assert_eq!(check_host(&HeaderMap::new()), Ok(()));
    }

    #[test]
    fn only_the_right_token_as_cookie_or_bearer_passes() {
        let token = AdminToken::from_text(TOKEN);
        let now = 1_000;
        let session = token.open_session(now);
        let with_at = |name: header::HeaderName, value: &str, at: u64| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_str(value).expect("header"));
            check_token(&headers, &token, at)
        };
        let with = |name: header::HeaderName, value: &str| with_at(name, value, now);
        assert_eq!(
            check_token(&HeaderMap::new(), &token, now),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            with(header::COOKIE, &format!("a=b; {COOKIE}={session}")),
            Ok(())
        );
        assert_eq!(
            with(header::COOKIE, &format!("{COOKIE}={TOKEN}")),
            Err(Refusal::Unauthorized),
            "the token itself is no session cookie"
        );
        assert_eq!(
            with_at(
                header::COOKIE,
                &format!("{COOKIE}={session}"),
                now + SESSION_LIFETIME_MS
            ),
            Err(Refusal::Unauthorized),
            "a session ends"
        );
        assert_eq!(
            with(header::AUTHORIZATION, &format!("Bearer {TOKEN}")),
            Ok(())
        );
        let wrong = TOKEN.replace('f', "e");
        assert_eq!(
            with(header::COOKIE, &format!("{COOKIE}={wrong}")),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            with(header::AUTHORIZATION, &TOKEN[..10]),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            with(header::COOKIE, &format!("x{COOKIE}={TOKEN}")),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn logins_beyond_the_cap_end_the_oldest_session() {
        let token = AdminToken::from_text(TOKEN);
        let first = token.open_session(0);
        for _ in 0..MAX_SESSIONS {
            token.open_session(0);
        }
        assert!(!token.has_session(&first, 0));
        assert_eq!(token.sessions.lock().expect("sessions").len(), MAX_SESSIONS);
    }

    #[test]
    fn the_token_file_is_made_once_0600_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = AdminToken::load_or_create(dir.path()).expect("token");
        let mode = std::fs::metadata(token_path(dir.path()))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(first.token.len(), 2 * TOKEN_BYTES);
        let again = AdminToken::load_or_create(dir.path()).expect("token");
        assert_eq!(first.token, again.token);
        std::fs::write(token_path(dir.path()), "damaged").expect("write");
        let fresh = AdminToken::load_or_create(dir.path()).expect("token");
        assert_ne!(fresh.token, first.token);
        assert_eq!(
            read_token(dir.path()).as_deref(),
            Some(fresh.token.as_str())
        );
    }
}
