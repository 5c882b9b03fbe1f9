//! The server's Prometheus metrics (`MetricsSettings`): HTTP requests, plugin
//! calls, deliveries, webhook posts, websockets, database commits and the
//! build, served on a listener of their own (`server::metrics`). Every label value comes
//! from a fixed set (route templates, export names, outcomes), never from a
//! request: no token, id or raw path reaches a series.
//!
//! Observations are atomics and histogram bucket increments behind a family's
//! read lock; a label set is only allocated the first time it is seen.

use crate::store::CommitStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

/// Latency buckets in seconds, 0.5 ms to 30 s: webhook posts sit in the
/// low milliseconds, plugin calls may run to their deadline.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0,
];

/// Writes per commit: the writer's batches hold 1 to 256.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// What the metrics page is served as: the OpenMetrics text format, which
/// Prometheus reads (and which `prometheus-client` writes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A histogram of seconds with the server's latency buckets.
pub fn latency_histogram() -> Histogram {
    latency()
}

/// A histogram of writes per commit.
pub fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route's template (`/hooks/{*rest}`), `unmatched` for none.
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabels {
    export: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    export: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    api_version: String,
    plugin_version: String,
}

/// One server's metrics. Owned by the `App`; cheap to observe from anywhere.
pub struct Telemetry {
    registry: Registry,
    requests: Histograms<RequestLabels>,
    plugin_calls: Family<CallLabels, Counter>,
    plugin_duration: Histograms<ExportLabels>,
    plugin_wait: Histograms<ExportLabels>,
    attempts: Family<OutcomeLabels, Counter>,
    attempt_duration: Histogram,
    settled: Family<ResultLabels, Counter>,
    pending: Gauge,
    failing: Gauge,
    parked: Gauge,
    webhook_posts: Counter,
    websockets: Gauge,
    slow_sockets: Counter,
    build: Family<BuildLabels, Gauge>,
    transform_runs: Family<OutcomeLabels, Counter>,
    transform_duration: Histogram,
    /// The plugin's last activation succeeded (set at start).
    activated: AtomicBool,
}

impl Telemetry {
    /// Registers every family, the store's commit statistics among them.
    pub fn new(commits: &CommitStats) -> Telemetry {
        let mut registry = Registry::with_prefix("switchboard");
        let requests = Histograms::<RequestLabels>::new_with_constructor(latency as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests served, by method, route template and status code, and how long they took",
            requests.clone(),
        );
        let plugin_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "plugin_calls",
            "Calls of the plugin's exports by outcome: ok, busy (refused: no free slot), trap, timeout (stopped at the deadline), memory_limit, instantiate",
            plugin_calls.clone(),
        );
        let plugin_duration =
            Histograms::<ExportLabels>::new_with_constructor(latency as fn() -> _);
        registry.register(
            "plugin_call_duration_seconds",
            "How long admitted plugin calls ran, by export",
            plugin_duration.clone(),
        );
        let plugin_wait = Histograms::<ExportLabels>::new_with_constructor(latency as fn() -> _);
        registry.register(
            "plugin_queue_wait_seconds",
            "How long plugin calls waited for an instance slot, by export",
            plugin_wait.clone(),
        );
        let attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Outbound delivery attempts by outcome: delivered (2xx), http_error, timeout, connect, refused, error",
            attempts.clone(),
        );
        let attempt_duration = latency();
        registry.register(
            "delivery_attempt_duration_seconds",
            "How long outbound delivery attempts took",
            attempt_duration.clone(),
        );
        let settled = Family::<ResultLabels, Counter>::default();
        registry.register(
            "deliveries_settled",
            "Deliveries finished (no attempt left): delivered or failed",
            settled.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "deliveries_pending",
            "Deliveries waiting to be sent or retried",
            pending.clone(),
        );
        let failing = Gauge::default();
        registry.register(
            "deliveries_failing",
            "Pending deliveries whose earlier attempts failed (waiting for a retry)",
            failing.clone(),
        );
        let parked = Gauge::default();
        registry.register(
            "deliveries_parked",
            "Settled deliveries whose result the plugin kept failing on, parked",
            parked.clone(),
        );
        let webhook_posts = Counter::default();
        registry.register(
            "webhook_posts",
            "Posts made by webhooks (incoming webhooks and outgoing webhooks' responses)",
            webhook_posts.clone(),
        );
        let websockets = Gauge::default();
        registry.register(
            "websocket_connections",
            "Open websocket connections",
            websockets.clone(),
        );
        let slow_sockets = Counter::default();
        registry.register(
            "websocket_slow_closed",
            "Websocket connections closed for falling behind the events",
            slow_sockets.clone(),
        );
        registry.register(
            "db_commit_batch_size",
            "Writes committed together in one database transaction",
            commits.batch_size.clone(),
        );
        registry.register(
            "db_commit_duration_seconds",
            "How long one database commit (its writes and the sync) took",
            commits.duration.clone(),
        );
        registry.register(
            "db_commit_failures",
            "Database transactions that could not begin or commit",
            commits.failures.clone(),
        );
        let transform_runs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "transform_runs",
            "Uploaded transform component calls by outcome: posted, dropped, refused, not_found, \
             or how it was stopped (trap, cpu, deadline, memory, invalid_output)",
            transform_runs.clone(),
        );
        let transform_duration = latency();
        registry.register(
            "transform_duration_seconds",
            "How long one transform component call took in its sandbox",
            transform_duration.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "The shim's version and the loaded component's WIT API and plugin versions (always 1)",
            build.clone(),
        );
        Telemetry {
            registry,
            requests,
            plugin_calls,
            plugin_duration,
            plugin_wait,
            attempts,
            attempt_duration,
            settled,
            pending,
            failing,
            parked,
            webhook_posts,
            websockets,
            slow_sockets,
            build,
            transform_runs,
            transform_duration,
            activated: AtomicBool::new(false),
        }
    }

    /// One HTTP request answered.
    pub fn http_request(
        &self,
        method: &axum::http::Method,
        route: Option<&str>,
        status: u16,
        took: Duration,
    ) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.map_or("unmatched", intern_route),
            status,
        };
        self.requests
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// One plugin call: how long it waited for a slot, and how long it ran
    /// (`None` when it was refused before running).
    pub fn plugin_call(
        &self,
        export: &'static str,
        outcome: &'static str,
        waited: Duration,
        ran: Option<Duration>,
    ) {
        let export_labels = ExportLabels { export };
        self.plugin_wait
            .get_or_create(&export_labels)
            .observe(waited.as_secs_f64());
        if let Some(ran) = ran {
            self.plugin_duration
                .get_or_create(&export_labels)
                .observe(ran.as_secs_f64());
        }
        self.plugin_calls
            .get_or_create(&CallLabels { export, outcome })
            .inc();
    }

    /// One delivery attempt and what it came to; `settled` when no attempt
    /// follows (`Some(true)` delivered, `Some(false)` failed).
    pub fn delivery_attempt(&self, outcome: &'static str, took: Duration, settled: Option<bool>) {
        self.attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.attempt_duration.observe(took.as_secs_f64());
        if let Some(delivered) = settled {
            let result = if delivered { "delivered" } else { "failed" };
            self.settled.get_or_create(&ResultLabels { result }).inc();
        }
    }

    /// One transform component call and what it came to (`transforms::outcome_label`).
    pub fn transform_run(&self, outcome: &'static str, took: Duration) {
        self.transform_runs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.transform_duration.observe(took.as_secs_f64());
    }

    pub fn webhook_post(&self) {
        self.webhook_posts.inc();
    }

    /// Counts an open websocket until the guard is dropped.
    pub fn websocket_opened(&self) -> WebsocketGuard {
        self.websockets.inc();
        WebsocketGuard(self.websockets.clone())
    }

    pub fn slow_socket_closed(&self) {
        self.slow_sockets.inc();
    }

    /// The loaded component, as `switchboard_build_info` shows it.
    pub fn set_build(&self, api_version: &str, plugin_version: &str) {
        self.build.clear();
        self.build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                api_version: api_version.to_string(),
                plugin_version: plugin_version.to_string(),
            })
            .set(1);
    }

    /// Records whether the plugin's last activation succeeded.
    pub fn set_activated(&self, ok: bool) {
        self.activated.store(ok, Ordering::Release);
    }

    pub fn activated(&self) -> bool {
        self.activated.load(Ordering::Acquire)
    }

    /// Sets the deliveries' gauges (read from the store at scrape time).
    pub fn set_deliveries(&self, pending: u64, failing: u64, parked: u64) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.pending.set(gauge(pending));
        self.failing.set(gauge(failing));
        self.parked.set(gauge(parked));
    }

    /// The whole exposition, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Keeps a websocket counted in `switchboard_websocket_connections`.
pub struct WebsocketGuard(Gauge);

impl Drop for WebsocketGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The method as a label: the standard ones by name, anything else `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A route template as a `'static` label: the templates are the router's,
/// a fixed set, so each is kept once for the life of the process and a
/// request allocates nothing after its route's first.
fn intern_route(template: &str) -> &'static str {
    static ROUTES: OnceLock<RwLock<HashMap<String, &'static str>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(found) = routes
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(template)
    {
        return found;
    }
    let mut routes = routes.write().unwrap_or_else(|p| p.into_inner());
    routes
        .entry(template.to_string())
        .or_insert_with(|| Box::leak(template.to_string().into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_labelled_by_template_and_outcome_only() {
        let telemetry = Telemetry::new(&CommitStats::default());
        telemetry.http_request(
            &axum::http::Method::POST,
            Some("/hooks/{*rest}"),
            200,
            Duration::from_millis(3),
        );
        telemetry.http_request(
            &axum::http::Method::from_bytes(b"BREW").unwrap(),
            None,
            404,
            Duration::from_millis(1),
        );
        telemetry.plugin_call(
            "http.handle",
            "ok",
            Duration::ZERO,
            Some(Duration::from_millis(2)),
        );
        telemetry.plugin_call("http.handle", "busy", Duration::from_millis(10), None);
        telemetry.delivery_attempt("http_error", Duration::from_millis(5), Some(false));
        telemetry.set_build("0.3.2", "0.1.0");
        let guard = telemetry.websocket_opened();
        let text = telemetry.encode();
        assert!(text.contains(
            r#"switchboard_http_request_duration_seconds_count{method="POST",route="/hooks/{*rest}",status="200"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"switchboard_http_request_duration_seconds_count{method="other",route="unmatched",status="404"} 1"#
        ), "{text}");
        assert!(
            text.contains(
                r#"switchboard_plugin_calls_total{export="http.handle",outcome="busy"} 1"#
            )
        );
        assert!(
            text.contains(
                r#"switchboard_plugin_call_duration_seconds_count{export="http.handle"} 1"#
            )
        );
        assert!(
            text.contains(r#"switchboard_plugin_queue_wait_seconds_count{export="http.handle"} 2"#)
        );
        assert!(text.contains(r#"switchboard_delivery_attempts_total{outcome="http_error"} 1"#));
        assert!(text.contains(r#"switchboard_deliveries_settled_total{result="failed"} 1"#));
        assert!(text.contains("switchboard_websocket_connections 1"));
        assert!(text.contains(r#"switchboard_build_info{version=""#));
        assert!(text.ends_with("# EOF\n"));
        drop(guard);
        assert!(
            telemetry
                .encode()
                .contains("switchboard_websocket_connections 0")
        );
    }

    /// Every series the shipped Grafana dashboard queries is one this
    /// server exposes, with the type its suffix implies.
    #[test]
    fn the_dashboard_queries_only_series_that_exist() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../packaging/grafana-dashboard.json")).unwrap();
        // One observation of each kind, so every labelled family has a series.
        let telemetry = Telemetry::new(&CommitStats::default());
        telemetry.http_request(&axum::http::Method::GET, None, 200, Duration::ZERO);
        telemetry.plugin_call("http.handle", "ok", Duration::ZERO, Some(Duration::ZERO));
        telemetry.delivery_attempt("delivered", Duration::ZERO, Some(true));
        telemetry.set_build("0.3.2", "0.1.0");
        let text = telemetry.encode();
        let mut queried = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                for (at, _) in expr.match_indices("switchboard_") {
                    let name: String = expr[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    let (family, kind) = if let Some(base) = name
                        .strip_suffix("_bucket")
                        .or_else(|| name.strip_suffix("_count"))
                        .or_else(|| name.strip_suffix("_sum"))
                    {
                        (base, "histogram")
                    } else if let Some(base) = name.strip_suffix("_total") {
                        (base, "counter")
                    } else {
                        (name.as_str(), "gauge")
                    };
                    assert!(
                        text.contains(&format!("# TYPE {family} {kind}\n")),
                        "the dashboard queries {name}, which is no {kind} here:\n{text}"
                    );
                    queried += 1;
                }
            }
        }
        assert!(queried >= 20, "{queried} series");
    }

    #[test]
    fn route_labels_are_interned_once() {
        let a = intern_route("/api/v4/hooks/{*rest}");
        let b = intern_route(&String::from("/api/v4/hooks/{*rest}"));
        assert!(std::ptr::eq(a, b));
    }
}
