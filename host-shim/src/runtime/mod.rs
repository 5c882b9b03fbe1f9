//! Runs the plugin component: one engine, the component compiled once (and
//! cached on disk), one `InstancePre`, and a fresh `Store` per call with a
//! memory cap and a deadline, so one bad call fails alone. Calls are admitted
//! to a bounded pool through a bounded queue, and wasm yields at epoch ticks.

mod admission;
mod bindings;
mod imports;
pub use imports::noting_store_outage;

pub use bindings::exports::switchboard::plugin::commands::{
    CommandArgs, CommandCall, CommandOutcome,
};
pub use bindings::exports::switchboard::plugin::http::{
    Request as PluginRequest, Response as PluginResponse,
};
pub use bindings::exports::switchboard::plugin::interactive::{
    InteractiveCall, InteractiveOutcome,
};
pub use bindings::types::{AppError, Header as PluginHeader};

use crate::app::App;
use crate::wasm::{Stopped, TICK, Ticker, cache, memory_limits, trap_reason, yield_until_deadline};
use admission::Admission;
use bindings::{Switchboard, SwitchboardPre};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Linear memory a freed pool slot keeps mapped and resets in place; a
/// webhook call dirties well under this (docs/PERFORMANCE.md).
const KEEP_RESIDENT: usize = 2 << 20;
/// The same for tables (function tables are a few KiB).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// How the engine is set up. Defaults suit a server; tests shrink them.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Linear memory one call may use, in bytes.
    pub memory_limit: usize,
    /// Calls that may run at once; the pooling allocator reserves this many
    /// instance slots up front (virtual memory only, until used).
    pub max_concurrent_calls: u32,
    /// Calls that may wait for a slot when all are busy; one more is refused.
    pub queue_size: u32,
    /// How long a call may wait for a slot before it is refused.
    pub queue_timeout: Duration,
    /// Where compiled components are cached; `None` compiles on every start.
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions::from_settings(&crate::config::SwitchboardSettings::default(), None)
    }
}

impl RuntimeOptions {
    /// The options `config.json`'s `SwitchboardSettings` ask for.
    pub fn from_settings(
        settings: &crate::config::SwitchboardSettings,
        cache_dir: Option<std::path::PathBuf>,
    ) -> RuntimeOptions {
        RuntimeOptions {
            memory_limit: (settings.plugin_memory_limit_mib as usize) << 20,
            max_concurrent_calls: settings.plugin_pool_size.max(1),
            queue_size: settings.plugin_queue_size,
            queue_timeout: Duration::from_millis(u64::from(
                settings.plugin_queue_timeout_milliseconds,
            )),
            cache_dir,
        }
    }
}

/// Why a plugin call failed. The call's effects up to the failure stay (like
/// any partially run request); the server keeps serving.
#[derive(Debug)]
pub enum CallError {
    /// The plugin trapped (a panic, an out-of-bounds access …): why, in one
    /// line, and the whole error with the wasm backtrace, for the log and
    /// developer mode only.
    Trap { reason: String, detail: String },
    /// It ran past its deadline.
    Timeout(Duration),
    /// It tried to grow memory past the cap.
    MemoryLimit(usize),
    /// It could not be instantiated.
    Instantiate(String),
    /// Every slot was busy and the queue full, or the wait passed its
    /// deadline; the caller may retry after this many seconds.
    Busy { retry_after: u64 },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Trap { reason, .. } => write!(f, "the plugin failed: {reason}"),
            CallError::Timeout(d) => {
                write!(f, "the plugin did not answer within {} s", d.as_secs_f64())
            }
            CallError::MemoryLimit(n) => {
                write!(f, "the plugin exceeded its memory limit of {} MiB", n >> 20)
            }
            CallError::Instantiate(m) => write!(f, "the plugin could not be started: {m}"),
            CallError::Busy { .. } => write!(f, "the server is busy; try again shortly"),
        }
    }
}

impl std::error::Error for CallError {}

/// Per-call state: the host's shared `App` plus this call's WASI context and limits.
pub struct CallState {
    pub(crate) app: Arc<App>,
    /// What the manifest lets the plugin use; imports check it.
    pub(crate) grants: Grants,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl CallState {
    /// Runs a store write off the async threads. Writes wait for their group
    /// commit; blocking a worker thread meanwhile would keep other calls from
    /// reaching the writer and joining the same commit.
    /// The future does not borrow the call state, which is not `Sync`.
    pub(crate) fn blocking<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, crate::store::StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&App) -> Result<T, crate::store::StoreError> + Send + 'static,
    {
        let app = self.app.clone();
        async move {
            tokio::task::spawn_blocking(move || f(&app))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::store::StoreError::Db(format!(
                        "store task failed: {e}"
                    )))
                })
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Capabilities the manifest's `permissions` grant. Lookups and posts are
/// the plugin's purpose and always granted; network and storage are opt-in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grants {
    pub egress: bool,
    pub kv: bool,
}

impl Grants {
    pub fn from_permissions(permissions: &[String]) -> Grants {
        Grants {
            egress: permissions.iter().any(|p| p == "egress"),
            kv: permissions.iter().any(|p| p == "kv"),
        }
    }
}

/// The loaded plugin. Cheap to share behind an `Arc`; every call gets its own store.
pub struct Runtime {
    engine: Engine,
    pre: SwitchboardPre<CallState>,
    options: RuntimeOptions,
    grants: Grants,
    /// Whether start-up found the compiled component in the cache.
    pub loaded_from_cache: bool,
    /// How long loading (compile or cache read) took.
    pub load_time: Duration,
    admission: Admission,
    _ticker: Ticker,
}

impl Runtime {
    /// Loads the component at `path`.
    pub fn load(
        path: &Path,
        permissions: Vec<String>,
        options: RuntimeOptions,
    ) -> anyhow::Result<Runtime> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("reading the plugin component {}: {e}", path.display()))?;
        Runtime::from_bytes(&bytes, Grants::from_permissions(&permissions), options)
    }

    pub fn from_bytes(
        bytes: &[u8],
        grants: Grants,
        options: RuntimeOptions,
    ) -> anyhow::Result<Runtime> {
        let started = Instant::now();
        let engine = Engine::new(&engine_config(&options))?;
        let (component, loaded_from_cache) =
            cache::load(&engine, bytes, options.cache_dir.as_deref())?;

        let mut linker: Linker<CallState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Switchboard::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;
        let pre = SwitchboardPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime {
            _ticker: Ticker::start(&engine),
            admission: Admission::new(
                options.max_concurrent_calls.max(1),
                options.queue_size,
                options.queue_timeout,
            ),
            engine,
            pre,
            options,
            grants,
            loaded_from_cache,
            load_time: started.elapsed(),
        })
    }

    fn new_store(&self, app: Arc<App>, deadline: Duration) -> Store<CallState> {
        let mut wasi = WasiCtx::builder();
        // The plugin reaches the network only through `egress`, and has no
        // files or environment; panics go to the shim's stderr for debugging.
        if app.clock.is_fixed() {
            wasi.wall_clock(app.clock.clone());
        }
        wasi.inherit_stderr()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let state = CallState {
            app,
            grants: self.grants,
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: memory_limits(self.options.memory_limit),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        yield_until_deadline(&mut store, Instant::now(), deadline);
        store
    }

    /// Whether a request's call would be admitted now (a free slot or room
    /// in the queue), for the server status.
    pub fn can_take_call(&self) -> bool {
        self.admission.has_room()
    }

    /// What admission allows: slots, queue length and wait.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Runs one export in a fresh instance for a caller who waits (a
    /// request): it queues for a slot briefly, or is refused as busy. `f`
    /// gets the instance and the store.
    async fn run<R, F, Fut>(
        &self,
        export: &'static str,
        app: Arc<App>,
        f: F,
    ) -> Result<R, CallError>
    where
        F: FnOnce(Switchboard, Store<CallState>) -> Fut,
        Fut: Future<Output = wasmtime::Result<R>>,
    {
        let waiting = Instant::now();
        let slot = match self.admission.admit().await {
            Ok(slot) => slot,
            Err(refused) => {
                app.telemetry
                    .plugin_call(export, outcome(&refused), waiting.elapsed(), None);
                return Err(refused);
            }
        };
        let waited = waiting.elapsed();
        self.run_in(slot, export, waited, app, f).await
    }

    /// [`Runtime::run`] for work owed in the background (post hooks,
    /// delivery results): it waits for a slot as long as it takes and is
    /// never refused as busy, within the share of slots background work may
    /// hold (`admission::Admission::admit_background`).
    async fn run_background<R, F, Fut>(
        &self,
        export: &'static str,
        app: Arc<App>,
        f: F,
    ) -> Result<R, CallError>
    where
        F: FnOnce(Switchboard, Store<CallState>) -> Fut,
        Fut: Future<Output = wasmtime::Result<R>>,
    {
        let waiting = Instant::now();
        let slot = self.admission.admit_background().await;
        let waited = waiting.elapsed();
        self.run_in(slot, export, waited, app, f).await
    }

    /// Runs `f` holding `_slot` until the call ends: the slot is what bounds
    /// live instances.
    /// Counts the call in `switchboard_plugin_*` whatever its outcome.
    async fn run_in<S, R, F, Fut>(
        &self,
        _slot: S,
        export: &'static str,
        waited: Duration,
        app: Arc<App>,
        f: F,
    ) -> Result<R, CallError>
    where
        F: FnOnce(Switchboard, Store<CallState>) -> Fut,
        Fut: Future<Output = wasmtime::Result<R>>,
    {
        let started = Instant::now();
        let telemetry_app = app.clone();
        let result = self.call_in(app, f).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => outcome(e),
        };
        telemetry_app
            .telemetry
            .plugin_call(export, label, waited, Some(started.elapsed()));
        result
    }

    /// Instantiates the component and runs `f` within the call's deadline.
    async fn call_in<R, F, Fut>(&self, app: Arc<App>, f: F) -> Result<R, CallError>
    where
        F: FnOnce(Switchboard, Store<CallState>) -> Fut,
        Fut: Future<Output = wasmtime::Result<R>>,
    {
        let deadline = Duration::from_secs(u64::from(
            app.config()
                .switchboard_settings
                .plugin_call_timeout_seconds
                .max(1),
        ));
        let mut store = self.new_store(app, deadline);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        // The epoch deadline stops a plugin spinning in wasm; this one also
        // covers time spent waiting in host calls.
        match tokio::time::timeout(deadline + TICK * 10, f(instance, store)).await {
            Err(_) => Err(CallError::Timeout(deadline)),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(classify(e, deadline, self.options.memory_limit)),
        }
    }

    pub async fn handle_http(
        &self,
        app: Arc<App>,
        request: PluginRequest,
    ) -> Result<PluginResponse, CallError> {
        self.run("http.handle", app, |plugin, mut store| async move {
            plugin
                .switchboard_plugin_http()
                .call_handle(&mut store, &request)
                .await
        })
        .await
    }

    pub async fn message_has_been_posted(
        &self,
        app: Arc<App>,
        post: bindings::types::Post,
    ) -> Result<(), CallError> {
        self.run_background(
            "hooks.message-has-been-posted",
            app,
            |plugin, mut store| async move {
                plugin
                    .switchboard_plugin_hooks()
                    .call_message_has_been_posted(&mut store, &post)
                    .await
            },
        )
        .await
    }

    pub async fn execute_command(
        &self,
        app: Arc<App>,
        args: CommandArgs,
    ) -> Result<Result<CommandOutcome, AppError>, CallError> {
        self.run("commands.execute", app, |plugin, mut store| async move {
            plugin
                .switchboard_plugin_commands()
                .call_execute(&mut store, &args)
                .await
        })
        .await
    }

    /// Whether the manifest grants `egress` (needed for a command's `call`).
    pub fn may_use_egress(&self) -> bool {
        self.grants.egress
    }

    /// `commands.respond`: finishes a command with what its URL answered,
    /// in a fresh instance.
    pub async fn respond_command(
        &self,
        app: Arc<App>,
        args: CommandArgs,
        continuation: Vec<u8>,
        answer: Result<crate::egress::OutboundResponse, crate::egress::EgressError>,
    ) -> Result<Result<String, AppError>, CallError> {
        let answer = imports::egress::result_to_wit(answer);
        self.run("commands.respond", app, |plugin, mut store| async move {
            plugin
                .switchboard_plugin_commands()
                .call_respond(&mut store, &args, &continuation, answer.as_ref())
                .await
        })
        .await
    }

    /// `interactive.start`: a click, dialog submission or lookup; answers or
    /// asks for a call to the integration.
    pub async fn interactive_start(
        &self,
        app: Arc<App>,
        request: PluginRequest,
    ) -> Result<InteractiveOutcome, CallError> {
        self.run("interactive.start", app, |plugin, mut store| async move {
            plugin
                .switchboard_plugin_interactive()
                .call_start(&mut store, &request)
                .await
        })
        .await
    }

    /// `interactive.respond`: finishes with what the integration answered,
    /// in a fresh instance.
    pub async fn interactive_respond(
        &self,
        app: Arc<App>,
        request: PluginRequest,
        continuation: Vec<u8>,
        answer: Result<crate::egress::OutboundResponse, crate::egress::EgressError>,
    ) -> Result<PluginResponse, CallError> {
        let answer = imports::egress::result_to_wit(answer);
        self.run("interactive.respond", app, |plugin, mut store| async move {
            plugin
                .switchboard_plugin_interactive()
                .call_respond(&mut store, &request, &continuation, answer.as_ref())
                .await
        })
        .await
    }

    /// `delivery-results.on-result`: what an attempt of a delivery came to.
    pub async fn delivery_result(
        &self,
        app: Arc<App>,
        report: crate::queue::Report,
    ) -> Result<(), CallError> {
        use bindings::exports::switchboard::plugin::delivery_results::{Attempt, DeliveryResult};
        let result = DeliveryResult {
            id: report.id,
            group: report.group,
            continuation: report.continuation,
            attempts: report
                .attempts
                .into_iter()
                .map(|a| Attempt {
                    number: a.number,
                    at: a.at,
                    status: a.status,
                    latency_ms: a.latency_ms,
                    error: a.error,
                    next_at: a.next_at,
                })
                .collect(),
            outcome: imports::egress::result_to_wit(report.outcome),
            settled: report.settled,
        };
        self.run_background(
            "delivery-results.on-result",
            app,
            |plugin, mut store| async move {
                plugin
                    .switchboard_plugin_delivery_results()
                    .call_on_result(&mut store, &result)
                    .await
            },
        )
        .await
    }

    pub async fn activate(&self, app: Arc<App>) -> Result<Result<(), String>, CallError> {
        self.run("lifecycle.activate", app, |plugin, mut store| async move {
            plugin
                .switchboard_plugin_lifecycle()
                .call_activate(&mut store)
                .await
        })
        .await
    }

    pub async fn configuration_changed(&self, app: Arc<App>) -> Result<(), CallError> {
        self.run(
            "lifecycle.configuration-changed",
            app,
            |plugin, mut store| async move {
                plugin
                    .switchboard_plugin_lifecycle()
                    .call_configuration_changed(&mut store)
                    .await
            },
        )
        .await
    }
}

/// A failed call's outcome label in `switchboard_plugin_calls_total`.
fn outcome(error: &CallError) -> &'static str {
    match error {
        CallError::Trap { .. } => "trap",
        CallError::Timeout(_) => "timeout",
        CallError::MemoryLimit(_) => "memory_limit",
        CallError::Instantiate(_) => "instantiate",
        CallError::Busy { .. } => "busy",
    }
}

fn classify(error: wasmtime::Error, deadline: Duration, memory_limit: usize) -> CallError {
    match Stopped::by(&error) {
        Stopped::Deadline => CallError::Timeout(deadline),
        Stopped::Memory => CallError::MemoryLimit(memory_limit),
        // The plugin runs without fuel, so running out of it is just a trap.
        Stopped::OutOfFuel | Stopped::Trap => CallError::Trap {
            reason: trap_reason(&error),
            detail: format!("{error:#}"),
        },
    }
}

fn engine_config(options: &RuntimeOptions) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    // Deadlines without a signal handler or a thread per call: a ticker bumps
    // the epoch and wasm code checks it at loop heads and function entries.
    config.epoch_interruption(true);
    // Copy-on-write images make instantiation a mapping, not a copy, which is
    // what makes a fresh instance per call affordable.
    config.memory_init_cow(true);
    let mut pool = PoolingAllocationConfig::default();
    let slots = options.max_concurrent_calls.max(1);
    pool.total_component_instances(slots);
    // A Rust component is a handful of core instances (the program plus
    // adapter shims), each with at most one memory and a few tables.
    pool.total_core_instances(slots * 8);
    pool.total_memories(slots * 2);
    pool.total_tables(slots * 8);
    pool.max_memory_size(options.memory_limit);
    pool.total_stacks(slots);
    // A freed slot is reset in place instead of being decommitted: the pages
    // a call dirtied (found with the PAGEMAP_SCAN ioctl where the kernel has
    // it, else the lowest addresses) are restored with memset up to this many
    // bytes, and only the rest is madvised away. That keeps a reused slot's
    // pages mapped, so the next call takes no page faults, and spares the
    // madvise calls and the TLB shootdowns they cost on every core.
    pool.linear_memory_keep_resident(KEEP_RESIDENT);
    pool.table_keep_resident(TABLE_KEEP_RESIDENT);
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    // Every slot may stay warm: the pool is as large as the concurrency, so
    // reusing warm slots first never starves a cold one.
    pool.max_unused_warm_slots(slots);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// A command's call in the host's terms: the request and how to sign it.
pub fn command_call_parts(
    call: CommandCall,
) -> (
    crate::egress::OutboundRequest,
    Vec<crate::store::deliveries::StoredSigning>,
    Vec<u8>,
) {
    (
        imports::egress::request_from_wit(call.request),
        imports::egress::signing_from_wit(call.signing),
        call.continuation,
    )
}

/// An interactive call in the host's terms: the request and how to sign it.
pub fn interactive_call_parts(
    call: InteractiveCall,
) -> (
    crate::egress::OutboundRequest,
    Vec<crate::store::deliveries::StoredSigning>,
    Vec<u8>,
) {
    (
        imports::egress::request_from_wit(call.request),
        imports::egress::signing_from_wit(call.signing),
        call.continuation,
    )
}

/// A stored post as the plugin sees it.
pub fn bindings_post(post: crate::store::Post) -> bindings::types::Post {
    imports::post_to_wit(post)
}
