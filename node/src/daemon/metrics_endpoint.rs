//! The Prometheus endpoint on `metrics_addr` (off by default): `GET /metrics` answers the
//! registry in the OpenMetrics text format, every other path 404. No access log, no client
//! address anywhere; at most [`METRICS_REQUESTS_IN_FLIGHT`] answers are encoded at once
//! (beyond, 503), so a scraper gone wild costs little.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

/// Answers encoded at once.
pub const METRICS_REQUESTS_IN_FLIGHT: usize = 4;
/// The content type of the OpenMetrics text format prometheus-client writes (with its
/// `# EOF` line), which Prometheus asks for and reads.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Endpoint {
    registry: Arc<Registry>,
    slots: Arc<Semaphore>,
}

/// The endpoint's router.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: the metrics are at /metrics\n",
            )
        })
        .with_state(Endpoint {
            registry,
            slots: Arc::new(Semaphore::new(METRICS_REQUESTS_IN_FLIGHT)),
        })
}

async fn metrics(State(endpoint): State<Endpoint>) -> Response {
    let Ok(_slot) = endpoint.slots.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy, ask again in a moment\n",
        )
            .into_response();
    };
    let text = super::metrics::encode(&endpoint.registry);
    ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
}
