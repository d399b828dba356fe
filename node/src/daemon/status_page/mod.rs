//! The status page, in two views of one snapshot the node actor publishes (handlers never
//! wait on the actor):
//!
//! - [`public`] on `status_addr`: HTML that works without JavaScript, JSON under
//!   `/api/v1/`, and the Atom feed ([`feed`]); safe to publish.
//! - [`admin`] on the optional `admin_addr`: everything the node knows, behind [`auth`].
//! - [`listener`]: connection limit and deadlines, so idle clients cannot exhaust the
//!   daemon's file descriptors.
//! - [`render`]: the page shell, cards, summary, order and times both views share.
//!
//! Invariants: every text from the network is escaped (maud escapes by default; the Atom
//! writer escapes by hand); no address of any peer appears; every response of both views
//! carries a strict CSP, `nosniff` and a charset; no script anywhere.

pub mod admin;
pub mod auth;
pub mod feed;
pub mod listener;
pub mod public;
pub mod render;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use super::snapshot::Snapshot;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const STYLE: &str = include_str!("style.css");

type Snapshots = watch::Receiver<Arc<Snapshot>>;

/// The public view.
pub fn router(snapshots: Snapshots) -> Router {
    Router::new()
        .route("/", get(public::index))
        .route("/style.css", get(style))
        .route("/api/v1/status", get(public::api_status))
        .route("/api/v1/alerts", get(public::api_alerts))
        .route("/api/v1/offers", get(public::api_offers))
        .route("/alerts.atom", get(feed::atom))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(snapshots)
}

/// The admin view; serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so that [`auth::guard`] sees the peer address.
pub fn admin_router(snapshots: Snapshots, token: auth::AdminToken) -> Router {
    let login = Router::new()
        .route("/login", get(auth::login))
        .with_state(token.clone());
    Router::new()
        .route("/", get(admin::index))
        .route("/style.css", get(style))
        .with_state(snapshots)
        .merge(login)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(token, auth::guard))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn latest(snapshots: &Snapshots) -> Arc<Snapshot> {
    snapshots.borrow().clone()
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

async fn not_found() -> impl IntoResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
}
