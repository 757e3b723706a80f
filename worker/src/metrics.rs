//! `GET /metrics` on a worker: the calls it ran and runs, their processor children, its paths
//! (`telemetry::WorkerMetrics`). Lotus's workers serve none.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::daemon::Worker;

pub fn router(w: Arc<Worker>) -> Router {
    Router::new().route("/metrics", get(serve)).with_state(w)
}

async fn serve(State(w): State<Arc<Worker>>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match w.metrics(auth) {
        Ok(text) => ([(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)], text).into_response(),
        Err(why) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!("{why}\n"),
        )
            .into_response(),
    }
}
