//! `/healthz` (the process is alive), `/readyz` (pods, namespaces and
//! profiles are loaded) and `/metrics` (OpenMetrics text).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::{Context, Error};

/// The router (exposed for tests).
pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

async fn readyz(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    if ctx.synced() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stores are still loading")
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
}

/// Serves until the task is aborted.
pub async fn serve(addr: SocketAddr, ctx: Arc<Context>) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Setup(format!("--listen-addr {addr}: {e}")))?;
    tracing::info!(%addr, "serving /healthz, /readyz, /metrics");
    axum::serve(listener, router(ctx))
        .await
        .map_err(|e| Error::Setup(format!("HTTP server: {e}")))
}
