//! The plugin's post hook (`message-has-been-posted`: outgoing webhooks) for
//! the posts that owe it, run off the paths that stored them. A post's debt
//! is in the store's outbox from the transaction that stored it and is paid
//! only once the hook returned, so a crash (or `PausePostHooks`) in between
//! leaves it owed, and the next start (or the end of the pause) runs it.
//! Running a hook twice enqueues nothing twice: the plugin derives delivery
//! ids from the post, and the host's enqueue skips known ids.

use crate::app::App;
use crate::runtime::{self, CallError, Runtime};
use crate::store::{Post, StoreError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How often a paused dispatcher looks whether the pause has ended.
const PAUSE_POLL: Duration = Duration::from_millis(500);
/// Tries of one post's hook in this run when it fails for a passing reason
/// (its deadline on a loaded machine); the debt then waits for the next
/// start. A busy pool is not one: background calls wait for their slot.
const TRIES: u32 = 3;
/// The wait before the second try; doubled for each further one.
const RETRY: Duration = Duration::from_secs(2);

/// Posts whose hook runs in this process now, so a replay of the outbox does
/// not start one twice.
type Running = Arc<Mutex<HashSet<String>>>;

/// Runs the post hook for each queued post, each in its own task so one slow
/// call delays no other post; at start (and when a pause ends) it first runs
/// what the outbox holds. Ends when the App is dropped.
pub async fn dispatch(app: Weak<App>, runtime: Arc<Runtime>, mut queue: UnboundedReceiver<Post>) {
    let running: Running = Arc::default();
    // What an earlier run (or a pause) left owed is run before anything new.
    let mut owed = true;
    loop {
        if owed {
            let Some(strong) = app.upgrade() else { return };
            if !paused(&strong) {
                replay(&strong, &runtime, &running).await;
                owed = false;
            }
        }
        let next = if owed {
            tokio::select! {
                post = queue.recv() => post,
                _ = tokio::time::sleep(PAUSE_POLL) => continue,
            }
        } else {
            queue.recv().await
        };
        let Some(post) = next else { return };
        let Some(strong) = app.upgrade() else { return };
        if paused(&strong) {
            // Its row waits in the outbox; the replay after the pause runs it.
            owed = true;
            continue;
        }
        start(strong, runtime.clone(), post, running.clone());
    }
}

fn paused(app: &App) -> bool {
    app.config().delivery_settings.pause_post_hooks
}

/// Starts the hook of every post the outbox holds that is not running here.
async fn replay(app: &Arc<App>, runtime: &Arc<Runtime>, running: &Running) {
    let store_app = app.clone();
    let owed = tokio::task::spawn_blocking(move || store_app.store.owed_post_hooks())
        .await
        .unwrap_or_else(|e| Err(StoreError::Db(format!("store task failed: {e}"))));
    let ids = match owed {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!("post hooks: reading the outbox failed: {e}");
            return;
        }
    };
    if !ids.is_empty() {
        tracing::info!("post hooks: running {} owed from before", ids.len());
    }
    for id in ids {
        match app.store.post(&id) {
            Ok(post) => start(app.clone(), runtime.clone(), post, running.clone()),
            // Deleted meanwhile: nothing to run.
            Err(StoreError::NotFound(_)) => pay(app, &id).await,
            Err(e) => tracing::error!("post hooks: reading owed post {id} failed: {e}"),
        }
    }
}

/// Runs one post's hook in a task of its own, unless it runs already.
fn start(app: Arc<App>, runtime: Arc<Runtime>, post: Post, running: Running) {
    let id = post.id.clone();
    if !running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone())
    {
        return;
    }
    tokio::spawn(async move {
        run(&app, &runtime, post).await;
        running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    });
}

async fn run(app: &Arc<App>, runtime: &Arc<Runtime>, post: Post) {
    let id = post.id.clone();
    for attempt in 1..=TRIES {
        let call =
            runtime.message_has_been_posted(app.clone(), runtime::bindings_post(post.clone()));
        let err = match call.await {
            Ok(()) => return pay(app, &id).await,
            Err(err) => err,
        };
        match &err {
            CallError::Trap { detail, .. } => {
                tracing::error!("the plugin's post hook failed on post {id}: {err}\n{detail}")
            }
            _ => tracing::error!("the plugin's post hook failed on post {id}: {err}"),
        }
        if matches!(err, CallError::Trap { .. } | CallError::MemoryLimit(_)) {
            // The plugin fails on this post itself; running it again would
            // fail again (its own errors it logs and returns from).
            return pay(app, &id).await;
        }
        if attempt < TRIES {
            tokio::time::sleep(RETRY * 2u32.pow(attempt - 1)).await;
        }
    }
    tracing::error!("post hooks: post {id} stays owed until the next start");
}

/// Forgets a post's debt.
async fn pay(app: &Arc<App>, id: &str) {
    let (store_app, id) = (app.clone(), id.to_string());
    let done = tokio::task::spawn_blocking(move || store_app.store.post_hook_done(&id))
        .await
        .unwrap_or_else(|e| Err(StoreError::Db(format!("store task failed: {e}"))));
    if let Err(e) = done {
        tracing::error!("post hooks: clearing an outbox row failed: {e}");
    }
}
