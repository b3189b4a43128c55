//! Liveness (`/healthz`) and the Prometheus counters (`/metrics`).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

/// The health and metrics routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/metrics", get(prometheus))
}

async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let mut rows = state.auth_counters.rows();
    rows.extend(state.admission.rows(state.store.write_queue()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.pipeline.metrics_text(rows))
}
