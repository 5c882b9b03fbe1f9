//! Uploaded transform components (issue 25): WebAssembly components of the
//! `switchboard:transform` world (`wit/transform/`) that shape a sender's
//! request into an incoming-webhook payload.
//!
//! Each call runs in a sandbox of its own: a fresh `Store` on an engine of
//! its own, WASI 0.2 linked with nothing granted (no preopened directories,
//! environment, arguments, sockets or stdio), a memory cap, a fuel bound (CPU)
//! and a wall deadline (`TransformSettings`). Wasm yields to the executor at
//! every epoch tick, so a looping transform never holds a tokio worker, and a
//! semaphore bounds how many run at once. Whatever a component does, the call
//! ends with an answer or a [`Failure`] for that one request.

use crate::app::App;
use crate::config::TransformSettings;
use crate::store::StoreError;
use crate::wasm::{self, Stopped};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        world: "transformer",
        path: "../wit/transform",
        exports: { default: async },
    });
}

use bindings::{Transformer, TransformerPre};

/// What the component sees of the sender's request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a transform call gave no payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No transform with that id.
    NotFound,
    /// The component answered `err(message)`.
    Refused(String),
    /// It trapped, ran out of fuel or time, exhausted its memory, or
    /// returned something that is not a payload: what happened.
    Crashed(String),
}

/// The metrics' label for a call's outcome: a fixed word, never the message.
pub fn outcome_label(outcome: &Result<Option<String>, Failure>) -> &'static str {
    match outcome {
        Ok(Some(_)) => "posted",
        Ok(None) => "dropped",
        Err(Failure::NotFound) => "not_found",
        Err(Failure::Refused(_)) => "refused",
        Err(Failure::Crashed(why)) => ["trap", "cpu", "deadline", "memory", "invalid output"]
            .into_iter()
            .find(|kind| why.starts_with(kind))
            .map(|kind| {
                if kind == "invalid output" {
                    "invalid_output"
                } else {
                    kind
                }
            })
            .unwrap_or("crashed"),
    }
}

/// Why an upload is not a transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The bytes are not a WebAssembly component (a core module, or not
    /// wasm at all).
    NotComponent(String),
    /// A component, but it does not export the `transformer` world's
    /// `transform` with its type.
    WrongWorld(String),
    /// It imports something the sandbox does not provide (only WASI 0.2 is
    /// linked).
    Imports(String),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::NotComponent(m) => {
                write!(f, "the upload is not a WebAssembly component: {m}")
            }
            CheckError::WrongWorld(m) => write!(
                f,
                "the component does not export `transform` of the switchboard:transform/transformer world: {m}"
            ),
            CheckError::Imports(m) => write!(
                f,
                "the component imports something a transform cannot have (only WASI 0.2 is linked): {m}"
            ),
        }
    }
}

/// Runs, answers and failures since start; what `Transforms::counters` reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls that ran a component (unknown ids are not counted).
    pub runs: u64,
    /// Runs that answered a payload.
    pub posted: u64,
    /// Runs that answered `ok(none)`.
    pub dropped: u64,
    /// Runs that answered `err(…)`.
    pub refused: u64,
    /// Runs that crashed: trap, fuel, deadline, memory or invalid output.
    pub crashed: u64,
}

/// The sandbox's engine and linker, one per process: components compiled on
/// it are cached per `App` ([`Transforms`]).
struct Sandbox {
    engine: Engine,
    linker: Linker<SandboxState>,
    _ticker: wasm::Ticker,
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        // The wall deadline (and the yields that keep workers free) come
        // from epochs; the CPU bound from fuel.
        config.epoch_interruption(true);
        config.consume_fuel(true);
        let engine = Engine::new(&config).expect("the transform sandbox's engine configuration");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .expect("linking WASI into the transform sandbox");
        Sandbox {
            _ticker: wasm::Ticker::start(&engine),
            engine,
            linker,
        }
    })
}

/// One call's state: a WASI context that grants nothing, and its limits.
struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A checked, compiled transform.
#[derive(Clone)]
pub struct Compiled {
    pre: TransformerPre<SandboxState>,
    /// Lower-case hex SHA-256 of the bytes it was compiled from.
    pub sha256: String,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiles `bytes` and checks that they are a transform the sandbox can
/// run. Slow (Cranelift): call it off the async threads.
pub fn check(bytes: &[u8]) -> Result<Compiled, CheckError> {
    check_cached(bytes, None)
}

/// [`check`], with the compiled code read from (or written to) `cache_dir`
/// as the plugin's is (`wasm::cache`), so a restart does not compile again.
fn check_cached(bytes: &[u8], cache_dir: Option<&Path>) -> Result<Compiled, CheckError> {
    let sandbox = sandbox();
    // Only what compiles as a component is written to the cache. When the
    // cached load fails, compiling without the cache tells a bad upload
    // (refused) from a cache that could not be written (logged, not fatal).
    let (component, from_cache) = match wasm::cache::load(&sandbox.engine, bytes, cache_dir) {
        Ok(loaded) => loaded,
        Err(cached) => {
            let component = Component::new(&sandbox.engine, bytes)
                .map_err(|e| CheckError::NotComponent(first_line(&e)))?;
            tracing::warn!("the transform compile cache is unusable: {cached:#}");
            (component, false)
        }
    };
    if component
        .component_type()
        .get_export(&sandbox.engine, "transform")
        .is_none()
    {
        let exports: Vec<String> = component
            .component_type()
            .exports(&sandbox.engine)
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        return Err(CheckError::WrongWorld(if exports.is_empty() {
            "it exports nothing".into()
        } else {
            format!("it exports {}", exports.join(", "))
        }));
    }
    let pre = sandbox
        .linker
        .instantiate_pre(&component)
        .map_err(|e| CheckError::Imports(first_line(&e)))?;
    let pre = TransformerPre::new(pre).map_err(|e| CheckError::WrongWorld(format!("{e:#}")))?;
    Ok(Compiled {
        pre,
        sha256: sha256_hex(bytes),
        from_cache,
    })
}

fn first_line(e: &impl std::fmt::Display) -> String {
    format!("{e:#}").lines().next().unwrap_or("").to_string()
}

/// The transforms of one server: compiled components by id, the bound on
/// calls at once, and the counters.
pub struct Transforms {
    compiled: Mutex<HashMap<String, Compiled>>,
    /// Where compiled code is kept across restarts (`<data>/cache`).
    cache_dir: OnceLock<PathBuf>,
    permits: Arc<Semaphore>,
    runs: AtomicU64,
    posted: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    crashed: AtomicU64,
}

impl Transforms {
    /// `settings.max_concurrent` calls at once (read at start).
    pub fn new(settings: &TransformSettings) -> Transforms {
        Transforms {
            compiled: Mutex::new(HashMap::new()),
            cache_dir: OnceLock::new(),
            permits: Arc::new(Semaphore::new(settings.max_concurrent.max(1) as usize)),
            runs: AtomicU64::new(0),
            posted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            crashed: AtomicU64::new(0),
        }
    }

    /// Keeps compiled code in `dir` from now on (set once, at start).
    pub fn use_cache_dir(&self, dir: PathBuf) {
        let _ = self.cache_dir.set(dir);
    }

    /// [`check`] for this server: compiled code comes from and goes to its
    /// cache directory, when it has one. Slow: off the async threads.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, CheckError> {
        check_cached(bytes, self.cache_dir.get().map(PathBuf::as_path))
    }

    /// Keeps what an upload compiled, so the first call does not compile again.
    pub fn remember(&self, id: &str, compiled: Compiled) {
        self.cache().insert(id.to_string(), compiled);
    }

    /// Forgets a deleted transform's compiled code.
    pub fn forget(&self, id: &str) {
        self.cache().remove(id);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Compiled>> {
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn counters(&self) -> Counters {
        Counters {
            runs: self.runs.load(Ordering::Relaxed),
            posted: self.posted.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            crashed: self.crashed.load(Ordering::Relaxed),
        }
    }

    /// The compiled transform `id`: from the cache, else read from the
    /// store and compiled once (off the async threads).
    async fn load(&self, app: &Arc<App>, id: &str) -> Result<Compiled, Failure> {
        if let Some(compiled) = self.cache().get(id) {
            return Ok(compiled.clone());
        }
        let (app2, key) = (app.clone(), id.to_string());
        let loaded = tokio::task::spawn_blocking(move || {
            let (_, bytes) = app2.store.transform_component(&key)?;
            Ok::<_, StoreError>(app2.transforms.compile(&bytes))
        })
        .await
        .map_err(|e| Failure::Crashed(format!("loading the transform failed: {e}")))?;
        let compiled = match loaded {
            Err(StoreError::NotFound(_)) => return Err(Failure::NotFound),
            Err(e) => {
                return Err(Failure::Crashed(format!(
                    "loading the transform failed: {e}"
                )));
            }
            // It was checked at upload; a stored one that no longer passes
            // (another engine version) fails its calls, saying why.
            Ok(Err(e)) => return Err(Failure::Crashed(e.to_string())),
            Ok(Ok(compiled)) => compiled,
        };
        self.remember(id, compiled.clone());
        Ok(compiled)
    }

    /// Runs transform `id` on `request` in a fresh sandbox. `Ok(Some(json))`
    /// is a JSON object no larger than `MaximumPayloadSizeBytes`.
    pub async fn run(
        &self,
        app: &Arc<App>,
        id: &str,
        request: Request,
    ) -> Result<Option<String>, Failure> {
        let compiled = match self.load(app, id).await {
            Ok(compiled) => compiled,
            Err(e) => {
                app.telemetry
                    .transform_run(outcome_label(&Err(e.clone())), Duration::ZERO);
                return Err(e);
            }
        };
        let started = Instant::now();
        let config = app.config();
        let settings = config.transform_settings.clone();
        let max_output = config.service_settings.maximum_payload_size_bytes as usize;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let outcome = run_sandboxed(&self.permits, &compiled, &settings, max_output, request).await;
        let counter = match &outcome {
            Ok(Some(_)) => &self.posted,
            Ok(None) => &self.dropped,
            Err(Failure::Refused(_)) => &self.refused,
            Err(_) => &self.crashed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        app.telemetry
            .transform_run(outcome_label(&outcome), started.elapsed());
        if let Err(Failure::Crashed(why)) = &outcome {
            tracing::info!("transform {id} failed: {why}");
        }
        outcome
    }
}

/// One call, waiting its turn for a permit within its own deadline.
async fn run_sandboxed(
    permits: &Semaphore,
    compiled: &Compiled,
    settings: &TransformSettings,
    max_output: usize,
    request: Request,
) -> Result<Option<String>, Failure> {
    let deadline = Duration::from_millis(u64::from(settings.timeout_milliseconds.max(1)));
    let started = Instant::now();
    let late = || {
        Failure::Crashed(format!(
            "deadline: the transform did not finish within {} ms",
            deadline.as_millis()
        ))
    };
    let _permit = tokio::time::timeout(deadline, permits.acquire())
        .await
        .map_err(|_| late())?
        .map_err(|_| Failure::Crashed("the transform sandbox is closed".into()))?;
    let memory_limit = (settings.memory_limit_mib as usize) << 20;
    let mut store = new_store(settings, memory_limit, started, deadline);
    let call = async {
        let instance: Transformer = compiled.pre.instantiate_async(&mut store).await?;
        instance.call_transform(&mut store, &to_wit(request)).await
    };
    // The epoch deadline stops wasm that spins; this one also covers time a
    // component spends blocked in WASI (a sleep).
    let remaining = deadline.saturating_sub(started.elapsed());
    let answer = match tokio::time::timeout(remaining + wasm::TICK * 5, call).await {
        Err(_) => return Err(late()),
        Ok(Err(e)) => {
            return Err(Failure::Crashed(describe(
                &e,
                deadline,
                settings,
                memory_limit,
            )));
        }
        Ok(Ok(answer)) => answer,
    };
    match answer {
        Err(message) => Err(Failure::Refused(message)),
        Ok(None) => Ok(None),
        Ok(Some(text)) => valid_output(text, max_output).map(Some),
    }
}

fn new_store(
    settings: &TransformSettings,
    memory_limit: usize,
    started: Instant,
    deadline: Duration,
) -> Store<SandboxState> {
    // Nothing granted: no preopened directories, no environment or
    // arguments, stdio closed, no sockets or name lookups. What remains of
    // WASI is its clocks and random numbers.
    let wasi = WasiCtx::builder()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let state = SandboxState {
        wasi,
        table: ResourceTable::new(),
        limits: wasm::memory_limits(memory_limit),
    };
    let mut store = Store::new(&sandbox().engine, state);
    store.limiter(|s| &mut s.limits);
    // Fuel is set once: a component out of it traps.
    let _ = store.set_fuel(settings.fuel);
    wasm::yield_until_deadline(&mut store, started, deadline);
    store
}

fn to_wit(request: Request) -> bindings::Request {
    bindings::Request {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers,
        body: request.body,
    }
}

/// What a failed call comes to, for the sender's `detailed_error`.
fn describe(
    error: &wasmtime::Error,
    deadline: Duration,
    settings: &TransformSettings,
    memory_limit: usize,
) -> String {
    match Stopped::by(error) {
        Stopped::Deadline => format!(
            "deadline: the transform did not finish within {} ms",
            deadline.as_millis()
        ),
        Stopped::OutOfFuel => format!(
            "cpu: the transform used up its fuel ({} units)",
            settings.fuel
        ),
        Stopped::Memory => format!(
            "memory: the transform exceeded its memory limit of {} MiB",
            memory_limit >> 20
        ),
        Stopped::Trap => format!("trap: {}", wasm::trap_reason(error)),
    }
}

/// A payload must be a JSON object within the payload size limit.
fn valid_output(text: String, max_output: usize) -> Result<String, Failure> {
    if text.len() > max_output {
        return Err(Failure::Crashed(format!(
            "invalid output: {} bytes, more than MaximumPayloadSizeBytes ({max_output})",
            text.len()
        )));
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text),
        Ok(_) => Err(Failure::Crashed(
            "invalid output: the transform returned JSON that is not an object".into(),
        )),
        Err(e) => Err(Failure::Crashed(format!(
            "invalid output: the transform returned text that is not JSON ({e})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Clock;
    use crate::config::Config;
    use crate::store::transforms::TransformInfo;

    /// The hostile test component `make component` builds.
    fn hostile_bytes() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/wasm32-wasip2/release/switchboard_transform_hostile.wasm");
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{} ({e}): build it with `make component`", path.display()))
    }

    /// A server with the hostile component stored as a transform; its id.
    fn app_with_hostile(config: Config) -> (tempfile::TempDir, Arc<App>, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let app = Arc::new(App::new(store, config, None, Clock::system()).unwrap());
        let bytes = hostile_bytes();
        let info = TransformInfo {
            id: crate::store::new_id(),
            name: "hostile".into(),
            size: bytes.len() as i64,
            sha256: sha256_hex(&bytes),
            create_at: 1,
            creator_id: "admin".into(),
        };
        app.store.insert_transform(&info, bytes).unwrap();
        (dir, app, info.id)
    }

    fn request(mode: &str) -> Request {
        Request {
            method: "POST".into(),
            path: format!("/hooks/abc/{mode}"),
            query: "a=1".into(),
            headers: vec![("X-Test".into(), "seen".into())],
            body: b"{\"k\":\"v\"}".to_vec(),
        }
    }

    async fn run(app: &Arc<App>, id: &str, mode: &str) -> Result<Option<String>, Failure> {
        app.transforms.run(app, id, request(mode)).await
    }

    fn crashed(outcome: Result<Option<String>, Failure>) -> String {
        match outcome {
            Err(Failure::Crashed(what)) => what,
            other => panic!("expected a crash, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transform_sees_the_request_and_its_answers_come_back() {
        let (_dir, app, id) = app_with_hostile(Config::default());
        let posted = run(&app, &id, "ok").await.unwrap().unwrap();
        let payload: serde_json::Value = serde_json::from_str(&posted).unwrap();
        assert_eq!(
            payload["text"],
            "POST /hooks/abc/ok?a=1 x-test=seen body={\"k\":\"v\"}"
        );
        assert_eq!(run(&app, &id, "drop").await, Ok(None));
        assert_eq!(
            run(&app, &id, "err").await,
            Err(Failure::Refused("refused by the test transform".into()))
        );
        assert_eq!(
            run(&app, "nosuchtransform00000000000", "ok").await,
            Err(Failure::NotFound)
        );
        let counters = app.transforms.counters();
        assert_eq!(
            (
                counters.runs,
                counters.posted,
                counters.dropped,
                counters.refused
            ),
            (3, 1, 1, 1)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn traps_and_invalid_output_fail_the_call_only() {
        let (_dir, app, id) = app_with_hostile(Config::default());
        let trap = crashed(run(&app, &id, "trap").await);
        assert!(trap.starts_with("trap: "), "{trap}");
        let text = crashed(run(&app, &id, "text").await);
        assert!(text.starts_with("invalid output: "), "{text}");
        assert!(text.contains("not JSON"), "{text}");
        // The next call is served as if nothing happened.
        assert!(run(&app, &id, "ok").await.unwrap().is_some());
        assert_eq!(app.transforms.counters().crashed, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_output_larger_than_a_payload_may_be_is_invalid() {
        let mut config = Config::default();
        config.service_settings.maximum_payload_size_bytes = 20;
        let (_dir, app, id) = app_with_hostile(config);
        let what = crashed(run(&app, &id, "ok").await);
        assert!(
            what.contains("more than MaximumPayloadSizeBytes (20)"),
            "{what}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_loop_is_stopped_at_the_deadline() {
        let mut config = Config::default();
        config.transform_settings.timeout_milliseconds = 300;
        // Fuel far beyond what 300 ms can burn: the wall deadline ends it.
        config.transform_settings.fuel = u64::MAX / 2;
        let (_dir, app, id) = app_with_hostile(config);
        let started = Instant::now();
        let what = crashed(run(&app, &id, "loop").await);
        assert_eq!(what, "deadline: the transform did not finish within 300 ms");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_max_concurrent_run_at_once() {
        let mut config = Config::default();
        config.transform_settings.max_concurrent = 1;
        config.transform_settings.timeout_milliseconds = 400;
        config.transform_settings.fuel = u64::MAX / 2;
        let (_dir, app, id) = app_with_hostile(config);
        // Compiled before the race starts.
        assert!(run(&app, &id, "ok").await.unwrap().is_some());
        let looping = {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move { run(&app, &id, "loop").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The one slot is the loop's until its deadline (350 ms from now
        // at least): this call waits for it, then runs. (A lower bound on
        // time, which a slow machine only makes longer.)
        let waiting = Instant::now();
        assert!(run(&app, &id, "ok").await.unwrap().is_some());
        assert!(
            waiting.elapsed() >= Duration::from_millis(300),
            "ran beside the loop after {:?}",
            waiting.elapsed()
        );
        assert!(crashed(looping.await.unwrap()).starts_with("deadline: "));
        // A call that cannot get the slot within its deadline fails as late.
        let mut settings = app.config().transform_settings.clone();
        settings.timeout_milliseconds = 100;
        let busy = Semaphore::new(0);
        let compiled = app.transforms.load(&app, &id).await.unwrap();
        let late = run_sandboxed(&busy, &compiled, &settings, 1 << 20, request("ok")).await;
        assert_eq!(
            late,
            Err(Failure::Crashed(
                "deadline: the transform did not finish within 100 ms".into()
            ))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_loop_is_stopped_when_its_fuel_runs_out() {
        let mut config = Config::default();
        config.transform_settings.timeout_milliseconds = 60_000;
        config.transform_settings.fuel = 5_000_000;
        let (_dir, app, id) = app_with_hostile(config);
        let what = crashed(run(&app, &id, "loop").await);
        assert_eq!(what, "cpu: the transform used up its fuel (5000000 units)");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_memory_hog_is_stopped_at_its_cap() {
        let mut config = Config::default();
        config.transform_settings.memory_limit_mib = 8;
        let (_dir, app, id) = app_with_hostile(config);
        let what = crashed(run(&app, &id, "memory").await);
        assert_eq!(
            what,
            "memory: the transform exceeded its memory limit of 8 MiB"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sandbox_grants_no_environment_arguments_or_files() {
        let (_dir, app, id) = app_with_hostile(Config::default());
        let posted = run(&app, &id, "probe").await.unwrap().unwrap();
        let payload: serde_json::Value = serde_json::from_str(&posted).unwrap();
        assert_eq!(payload["text"], "env=0 args=0 root=denied write=denied");
    }

    #[test]
    fn compiled_code_is_kept_on_disk_for_the_next_start() {
        let cache = tempfile::tempdir().unwrap();
        let first = Transforms::new(&TransformSettings::default());
        first.use_cache_dir(cache.path().to_path_buf());
        assert!(
            !first
                .compile(&hostile_bytes())
                .map_err(|e| e.to_string())
                .unwrap()
                .from_cache
        );
        // A server started later on the same data directory.
        let next = Transforms::new(&TransformSettings::default());
        next.use_cache_dir(cache.path().to_path_buf());
        assert!(
            next.compile(&hostile_bytes())
                .map_err(|e| e.to_string())
                .unwrap()
                .from_cache
        );
        // What is not a component leaves nothing there.
        assert!(next.compile(b"not wasm").is_err());
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
    }

    #[test]
    fn uploads_that_are_not_transforms_are_told_why() {
        assert!(matches!(
            check(b"not wasm at all"),
            Err(CheckError::NotComponent(_))
        ));
        // A core module (the smallest there is) is not a component.
        assert!(matches!(
            check(b"\0asm\x01\0\0\0"),
            Err(CheckError::NotComponent(_))
        ));
        let plugin = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip2/release/switchboard_plugin.wasm"),
        )
        .expect("the plugin component: `make component`");
        match check(&plugin) {
            Err(CheckError::WrongWorld(why)) => {
                assert!(why.contains("switchboard:plugin/http"), "{why}")
            }
            Err(other) => panic!("expected the wrong world, got {other:?}"),
            Ok(_) => panic!("the plugin passed as a transform"),
        }
        let compiled = check(&hostile_bytes()).map_err(|e| e.to_string()).unwrap();
        assert_eq!(compiled.sha256, sha256_hex(&hostile_bytes()));
    }
}
