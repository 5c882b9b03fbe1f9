//! The metrics listener (`MetricsSettings`): `GET /metrics` on a port of
//! its own, apart from the API; what it serves is `crate::telemetry`'s.

use super::{ConnectionLimits, serve_connections};
use crate::app::App;
use crate::telemetry;
use std::sync::Arc;
use std::time::Duration;

/// Mattermost's `ListenAddress` form `:8067` (every interface) as a socket
/// address to bind.
pub fn bind_address(listen: &str) -> String {
    if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_string()
    }
}

/// Connections the metrics listener keeps open at most: scrapers are few.
const MAX_CONNECTIONS: u32 = 64;

/// The metrics listener: `GET /metrics` and nothing else, served with the
/// API's header and write deadlines. Returns when `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let service = &app.config().service_settings;
    let limits = ConnectionLimits {
        max_connections: MAX_CONNECTIONS,
        header_timeout: Duration::from_secs(u64::from(service.idle_timeout.max(1))),
        write_timeout: Duration::from_secs(u64::from(service.write_timeout.max(1))),
    };
    let router = axum::Router::new()
        .route("/metrics", get(scrape))
        .with_state(app.clone());
    serve_connections(listener, router, limits, shutdown).await
}

async fn scrape(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let counted = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || app.store.delivery_gauges()).await
    };
    match counted {
        Ok(Ok(gauges)) => {
            app.telemetry
                .set_deliveries(gauges.pending, gauges.failing, gauges.parked)
        }
        Ok(Err(e)) => tracing::warn!("metrics: counting deliveries failed: {e}"),
        Err(e) => tracing::warn!("metrics: counting deliveries failed: {e}"),
    }
    (
        [(axum::http::header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        app.telemetry.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_every_interface() {
        assert_eq!(bind_address(":8067"), "0.0.0.0:8067");
        assert_eq!(bind_address("127.0.0.1:9000"), "127.0.0.1:9000");
    }
}
