//! What every wasm engine of the host shares, the plugin's (`crate::runtime`)
//! and the transform sandbox's (`crate::transforms`): the epoch ticker that
//! makes deadlines, yielding to the executor, memory caps, why a call
//! stopped, and the compiled-component cache.

pub mod cache;

use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

/// How often the epoch advances; the deadline's granularity.
pub const TICK: Duration = Duration::from_millis(10);

/// Why a wasm call failed, for the plugin runtime and the transform sandbox
/// alike.
pub enum Stopped {
    /// The epoch deadline interrupted it.
    Deadline,
    /// It used up its fuel.
    OutOfFuel,
    /// A memory grow went past the store's limit.
    Memory,
    /// Any other trap or error; [`trap_reason`] says which.
    Trap,
}

impl Stopped {
    pub fn by(error: &wasmtime::Error) -> Stopped {
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => return Stopped::Deadline,
            Some(wasmtime::Trap::OutOfFuel) => return Stopped::OutOfFuel,
            _ => {}
        }
        if format!("{error:#}").contains("forcing trap when growing memory") {
            return Stopped::Memory;
        }
        Stopped::Trap
    }
}

/// A failed call's one-line reason. The root cause is the trap itself ("wasm
/// `unreachable` instruction executed"); the outer layers carry the backtrace.
pub fn trap_reason(error: &wasmtime::Error) -> String {
    let reason = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    reason.lines().next().unwrap_or("").to_string()
}

/// A store's limits: `memory_limit` bytes of linear memory, a grow past it
/// trapping (so [`Stopped::Memory`] can tell it apart).
pub fn memory_limits(memory_limit: usize) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(memory_limit)
        .trap_on_grow_failure(true)
        .build()
}

/// At every epoch tick, wasm hands its thread back to the executor (so the
/// host's own routes and other calls keep running beside a busy call) and
/// stops once `deadline` has passed since `started`.
pub fn yield_until_deadline<T>(store: &mut Store<T>, started: Instant, deadline: Duration) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if started.elapsed() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        }
    });
}

/// Advances the engine's epoch every `TICK` until dropped (with the
/// runtime or the sandbox that holds it).
pub struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    pub fn start(engine: &Engine) -> Ticker {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let engine = engine.weak();
        std::thread::Builder::new()
            .name("switchboard-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
