//! The Switchboard host shim: a wasmtime host that stands in for a Mattermost
//! server. It is a runnable server (`host-shim`), and a library whose
//! [`harness`] lets plugin developers drive the real component in tests.

pub mod app;
pub mod config;
pub mod deliveries;
pub mod egress;
pub mod harness;
pub mod install;
pub mod logs;
pub mod manifest;
pub mod post_hooks;
pub mod queue;
pub mod runtime;
pub mod server;
pub mod store;
pub mod sweeper;
pub mod telemetry;
pub mod transforms;
pub mod wasm;

pub use server::Shim;

use app::{App, Bootstrap};
use config::Config;
use manifest::Manifest;
use runtime::{Runtime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything needed to open a shim on a data directory.
pub struct OpenOptions {
    pub data_dir: PathBuf,
    pub config: Config,
    /// Where configuration changes are saved; `None` keeps them in memory.
    pub config_path: Option<PathBuf>,
    pub manifest: Manifest,
    /// A runtime to reuse (tests share one compiled component); `None` loads
    /// the manifest's component, cached in `<data>/cache`.
    pub runtime: Option<Arc<Runtime>>,
    /// The system clock, or a fixed one for tests.
    pub clock: app::Clock,
}

/// Opens the store (migrating it), runs first-start setup, loads and
/// activates the plugin. Returns the shim and what first start created.
pub async fn open(mut options: OpenOptions) -> anyhow::Result<(Shim, Option<Bootstrap>)> {
    private_dir(&options.data_dir)?;
    // A configuration that lives only in memory (tests) gets a key for this
    // run; `Config::load_or_create` has already saved one for a file.
    options.config.ensure_at_rest_key();
    let mut store = store::Store::open_configured(&options.config.sql_settings, &options.data_dir)?;
    store.set_clock(options.clock.clone());
    let first_start = app::bootstrap::with_environment(
        &options.config.switchboard_settings.first_start,
        |name| std::env::var(name).ok(),
    );
    let bootstrap = app::bootstrap(&store, Some(&options.data_dir), &first_start)?;
    forget_first_start_password(&mut options.config, options.config_path.as_deref())?;
    let app = Arc::new(App::new(
        store,
        options.config,
        options.config_path,
        options.clock,
    )?);
    // Transform components' compiled code is kept beside the plugin's.
    app.transforms.use_cache_dir(options.data_dir.join("cache"));
    let runtime = match options.runtime {
        Some(runtime) => runtime,
        None => Arc::new(load_runtime(
            &options.manifest,
            &options.data_dir.join("cache"),
            &app,
        )?),
    };
    let limits = runtime.options();
    tracing::info!(
        "plugin calls: {} at once, {} more waiting at most {} ms, {} s each",
        limits.max_concurrent_calls,
        limits.queue_size,
        limits.queue_timeout.as_millis(),
        app.config()
            .switchboard_settings
            .plugin_call_timeout_seconds,
    );
    app.telemetry
        .set_build(&options.manifest.api_version, &options.manifest.version);
    match runtime.activate(app.clone()).await {
        Ok(Ok(())) => app.telemetry.set_activated(true),
        Ok(Err(reason)) => anyhow::bail!("the plugin refused to activate: {reason}"),
        Err(err) => anyhow::bail!("activating the plugin failed: {err}"),
    }
    // Deliveries left pending by an earlier run resume here.
    let engine = Arc::new(deliveries::Engine::new(runtime.clone()));
    tokio::spawn(deliveries::run(Arc::downgrade(&app), engine.clone()));
    tokio::spawn(flush_metrics(Arc::downgrade(&app)));
    tokio::spawn(sweeper::run(Arc::downgrade(&app)));
    // So do post hooks still owed (the outbox), before any new post's.
    if let Some(queue) = app.take_posted_queue() {
        tokio::spawn(post_hooks::dispatch(
            Arc::downgrade(&app),
            runtime.clone(),
            queue,
        ));
    }
    Ok((
        Shim {
            app,
            runtime,
            engine,
        },
        bootstrap,
    ))
}

/// How often changed per-integration counters are written: what a crash can
/// lose of them, against one small transaction per period while hooks are used.
const METRICS_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// Writes the `metrics` import's changed series every `METRICS_FLUSH`. Ends
/// when the App is dropped.
async fn flush_metrics(app: std::sync::Weak<App>) {
    let mut tick = tokio::time::interval(METRICS_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(app) = app.upgrade() else { break };
        if let Err(err) = app.flush_metrics().await {
            tracing::warn!("writing the integrations' counters failed: {err}");
        }
    }
}

/// Loads the manifest's component with the configured limits.
pub fn load_runtime(manifest: &Manifest, cache_dir: &Path, app: &App) -> anyhow::Result<Runtime> {
    let settings = &app.config().switchboard_settings;
    let path = manifest.component_path();
    if !path.exists() {
        anyhow::bail!(
            "the plugin component {} does not exist; build it with `make component`",
            path.display()
        );
    }
    Runtime::load(
        &path,
        manifest.permissions.clone(),
        RuntimeOptions::from_settings(settings, Some(cache_dir.to_path_buf())),
    )
}

/// Once a start has read `SwitchboardSettings.FirstStart.AdminPassword`, it
/// is removed from the config file, so the password is not kept there in
/// clear (only its bcrypt hash, in the database).
fn forget_first_start_password(config: &mut Config, path: Option<&Path>) -> anyhow::Result<()> {
    if config
        .switchboard_settings
        .first_start
        .admin_password
        .is_empty()
    {
        return Ok(());
    }
    config
        .switchboard_settings
        .first_start
        .admin_password
        .clear();
    if let Some(path) = path {
        config.save(path)?;
        tracing::info!(
            "removed SwitchboardSettings.FirstStart.AdminPassword from {}",
            path.display()
        );
    }
    Ok(())
}

/// Creates the data directory if needed and makes it the owner's alone: it
/// holds the database, the admin's token and password.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| anyhow::anyhow!("making {} private: {e}", dir.display()))?;
    Ok(())
}

/// Serves `shim` on `listener` until `shutdown` resolves, then stops
/// safely: no new connection is accepted, websockets close with 1001,
/// requests in flight get `SwitchboardSettings.GracefulShutdownTimeoutSeconds`
/// to finish (then their connections are cut), deliveries give back their
/// leases, the integrations' counters are written and every write handed to
/// the store is committed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shim: Shim,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let own: Vec<std::net::IpAddr> = listener
        .local_addr()
        .map(|a| vec![a.ip()])
        .unwrap_or_default();
    shim.app.set_own_addresses(own)?;
    let _metrics = serve_metrics(&shim).await?;
    let config = shim.app.config();
    let limits = server::ConnectionLimits {
        max_connections: config.switchboard_settings.max_connections,
        header_timeout: std::time::Duration::from_secs(u64::from(
            config.service_settings.idle_timeout.max(1),
        )),
        write_timeout: std::time::Duration::from_secs(u64::from(
            config.service_settings.write_timeout.max(1),
        )),
    };
    let grace = std::time::Duration::from_secs(u64::from(
        config
            .switchboard_settings
            .graceful_shutdown_timeout_seconds,
    ));
    tracing::info!(
        "connections: {} open at most, {} s for a request header, {} s for a body, {} s for a stalled write",
        limits.max_connections,
        limits.header_timeout.as_secs(),
        config.service_settings.read_timeout,
        limits.write_timeout.as_secs(),
    );
    let app = shim.app.clone();
    let engine = shim.engine.clone();
    let events = app.events.clone();
    let stopping = events.stopping();
    let shutdown = async move {
        shutdown.await;
        tracing::info!(
            "stopping: no new connections; requests in flight have {} s to finish",
            grace.as_secs()
        );
        events.go_away();
    };
    let serving = server::serve_connections(listener, server::router(shim), limits, shutdown);
    let drained = async {
        let sockets = async {
            app.events.stopping().await;
            app.events.sockets_closed().await;
        };
        let (served, ()) = tokio::join!(serving, sockets);
        served
    };
    // Boxed, so that dropping it (below) cuts what is left at once.
    let mut drained = Box::pin(drained);
    let deadline = async {
        stopping.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = &mut drained => served?,
        () = deadline => tracing::warn!(
            "stopping: requests still in flight after {} s (SwitchboardSettings.GracefulShutdownTimeoutSeconds); closing their connections",
            grace.as_secs()
        ),
    }
    drop(drained);
    deliveries::stop(&app, &engine).await;
    if let Err(err) = app.flush_metrics().await {
        tracing::warn!("stopping: writing the integrations' counters failed: {err}");
    }
    app.store.flush_writes().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C). A second one while the
/// server stops ends the process at once (exit status 130).
pub async fn stop_signal() {
    let which = stop_signals().await;
    tracing::info!("{which} received: stopping (send it again to stop at once)");
    tokio::spawn(async {
        let which = stop_signals().await;
        tracing::warn!("{which} received again: stopping at once");
        std::process::exit(130);
    });
}

async fn stop_signals() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("listening for SIGTERM");
        let mut int = signal(SignalKind::interrupt()).expect("listening for SIGINT");
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// Starts the metrics listener when `MetricsSettings.Enable` is on; it
/// stops when the returned guard is dropped (when `serve` returns).
async fn serve_metrics(shim: &Shim) -> anyhow::Result<Option<MetricsListener>> {
    let settings = shim.app.config().metrics_settings.clone();
    if !settings.enable {
        return Ok(None);
    }
    let address = server::metrics::bind_address(&settings.listen_address);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| anyhow::anyhow!("metrics: listening on {address}: {e}"))?;
    tracing::info!("metrics at http://{}/metrics", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = shim.app.clone();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = server::metrics::serve(listener, app, shutdown).await {
            tracing::error!("metrics: the listener failed: {e}");
        }
    });
    Ok(Some(MetricsListener(Some(stop))))
}

/// Stops the metrics listener when dropped.
struct MetricsListener(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for MetricsListener {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn the_data_directory_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        super::private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        super::private_dir(&parent.path().join("new/nested")).unwrap();
        let mode = std::fs::metadata(parent.path().join("new/nested"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }
}
