//! The chat server's own logic, shared by the REST API and the plugin's
//! imports: configuration, posts, permissions, events, first-start setup.

pub mod bootstrap;
mod bots;
mod clock;
mod cluster;
mod events;
pub mod mentions;
pub mod metrics;
mod notify;
pub mod passwords;
pub mod permissions;
mod posts;
pub mod rate_limit;
mod sealing;
pub mod sign_in;

pub use bootstrap::{Bootstrap, bootstrap};
pub use bots::SYSTEM_BOT_USERNAME;
pub use clock::Clock;
pub use events::{Event, Events, LogLine, OnlineGuard, OutboundCall, PostedDetails};
pub use notify::emoji_image_url;
pub use permissions::Scope;
pub use sign_in::SignInError;

use crate::config::Config;
use crate::egress::{Egress, EgressConfig};
use crate::store::{Post, Store, StoreError};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The server's state. One per shim; shared by every request and plugin call.
pub struct App {
    pub store: Store,
    pub events: Arc<Events>,
    /// Permission questions answered, for tests that check a cache works.
    permission_checks: std::sync::atomic::AtomicU64,
    /// Post timestamps and the plugin's wall clock.
    pub clock: Clock,
    config: RwLock<Arc<Config>>,
    /// Where configuration changes are saved; `None` keeps them in memory.
    config_path: Option<PathBuf>,
    egress: RwLock<Egress>,
    own_addresses: RwLock<Vec<IpAddr>>,
    /// Posts waiting for the plugin's post hook (outgoing webhooks); one
    /// dispatcher drains the queue, off the paths that created them. What
    /// the queue holds is also in the store's outbox, which outlives it.
    posted: tokio::sync::mpsc::UnboundedSender<Post>,
    posted_queue: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Post>>>,
    /// The outbound delivery queue's wake signal (`crate::queue`); the
    /// engine that works it is `crate::deliveries`.
    pub deliveries: crate::queue::Queue,
    /// The plugin's per-integration counters (the `metrics` import).
    pub metrics: metrics::Metrics,
    /// The server's Prometheus metrics (`MetricsSettings`).
    pub telemetry: crate::telemetry::Telemetry,
    /// bcrypt off the async workers, bounded (`passwords`).
    pub passwords: passwords::Passwords,
    /// One password check at a time per account (the lockout's count).
    pub login_turns: sign_in::LoginTurns,
    /// Dynamic client registrations per client address and minute.
    pub registrations: rate_limit::PerMinute,
    /// Uploaded transform components: compiled code and the sandbox's bounds.
    pub transforms: crate::transforms::Transforms,
    /// This node's place in its cluster (`cluster`): a local bus when alone.
    node: cluster::Node,
}

impl App {
    pub fn new(
        store: Store,
        config: Config,
        config_path: Option<PathBuf>,
        clock: Clock,
    ) -> anyhow::Result<App> {
        let egress = Egress::new(egress_config(&config, &[])).map_err(anyhow::Error::msg)?;
        let (posted, posted_queue) = tokio::sync::mpsc::unbounded_channel();
        let metrics = metrics::Metrics::default();
        metrics.restore(store.metric_series()?);
        let telemetry = crate::telemetry::Telemetry::new(store.commit_stats());
        let transforms = crate::transforms::Transforms::new(&config.transform_settings);
        Ok(App {
            telemetry,
            posted,
            posted_queue: std::sync::Mutex::new(Some(posted_queue)),
            store,
            events: Arc::new(Events::default()),
            permission_checks: std::sync::atomic::AtomicU64::new(0),
            clock,
            config: RwLock::new(Arc::new(config)),
            config_path,
            egress: RwLock::new(egress),
            own_addresses: RwLock::new(Vec::new()),
            deliveries: crate::queue::Queue::default(),
            metrics,
            passwords: passwords::Passwords::default(),
            login_turns: sign_in::LoginTurns::default(),
            registrations: rate_limit::PerMinute::default(),
            transforms,
            node: cluster::Node::new(crate::cluster::Bus::local(), None),
        })
    }

    /// Puts this node in the cluster `bus` reaches, running the shared
    /// configuration row `config_version` (see [`App::join_cluster`]).
    pub fn with_bus(mut self, bus: crate::cluster::Bus, config_version: Option<String>) -> App {
        self.node = cluster::Node::new(bus, config_version);
        self
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the configuration: checked (egress settings) and saved first,
    /// then applied, so a failed save changes nothing. In a cluster it is
    /// saved in the database, as the active configuration every node runs
    /// (the node's file keeps its own `SqlSettings`); alone, in its file.
    pub fn set_config(&self, config: Config) -> anyhow::Result<()> {
        self.build_egress(&config)?;
        let config = match self.share_config(&config)? {
            Some(shared) => shared,
            None => {
                if let Some(path) = &self.config_path {
                    config.save(path)?;
                }
                config
            }
        };
        self.apply_config(config)
    }

    /// Runs `config` from now on, without saving it.
    fn apply_config(&self, config: Config) -> anyhow::Result<()> {
        let egress = self.build_egress(&config)?;
        *self.egress.write().unwrap_or_else(|p| p.into_inner()) = egress;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// Tells egress the addresses the server listens on, which integrations
    /// may not call back into unless allowed.
    pub fn set_own_addresses(&self, addresses: Vec<IpAddr>) -> anyhow::Result<()> {
        *self
            .own_addresses
            .write()
            .unwrap_or_else(|p| p.into_inner()) = addresses;
        let egress = self.build_egress(&self.config())?;
        *self.egress.write().unwrap_or_else(|p| p.into_inner()) = egress;
        Ok(())
    }

    fn build_egress(&self, config: &Config) -> anyhow::Result<Egress> {
        let own = self
            .own_addresses
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Egress::new(egress_config(config, &own)).map_err(anyhow::Error::msg)
    }

    /// Writes the counters that changed since the last flush; what a failed
    /// write took is kept for the next one.
    pub async fn flush_metrics(&self) -> anyhow::Result<()> {
        let changes = self.metrics.take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.store.save_metric_changes(&changes).await {
            self.metrics.untake(changes);
            return Err(err.into());
        }
        Ok(())
    }

    /// Queues a stored post for the plugin's post hook; its outbox row
    /// (`Store::insert_post_owing_hook`, `Store::owe_post_hook`) is written.
    pub fn notify_posted(&self, post: Post) {
        // The queue only closes when the App is gone.
        let _ = self.posted.send(post);
    }

    /// The receiving end of the post-hook queue, once, for the dispatcher.
    pub fn take_posted_queue(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Post>> {
        self.posted_queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn egress(&self) -> Egress {
        self.egress
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn has_permission(&self, user_id: &str, permission: &str, scope: &Scope) -> bool {
        self.permission_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        permissions::has_permission(&self.store, user_id, permission, scope).unwrap_or(false)
    }

    /// The active user a bearer token signs in. A person's personal access
    /// token works only while `EnableUserAccessTokens` is on; a bot's always.
    pub fn user_for_token(&self, token: &str) -> Option<String> {
        self.session_for_token(token).ok().flatten()
    }

    /// [`App::user_for_token`] that tells an unreachable database apart
    /// from an unknown token: a client told "session expired" while the
    /// database is away would sign its user out.
    pub fn session_for_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let owner = match self.store.user_for_token(token) {
            Err(e @ StoreError::Unavailable(_)) => return Err(e),
            found => found.ok().flatten(),
        };
        let Some(owner) = owner else {
            return Ok(self.oauth_user(token));
        };
        let allowed = owner.kind != "pat"
            || owner.is_bot
            || self.config().service_settings.enable_user_access_tokens;
        Ok(allowed.then_some(owner.user_id))
    }

    /// The active user an OAuth access token was issued for, while it lives
    /// and the provider is on. Revoking the grant ends it at the next request.
    fn oauth_user(&self, token: &str) -> Option<String> {
        if !self.config().service_settings.enable_oauth_service_provider {
            return None;
        }
        let grant = self
            .store
            .oauth_grant_by_token(token, self.clock.now_millis())
            .ok()??;
        let user = self.store.user(&grant.user_id).ok()?;
        (user.delete_at == 0).then_some(user.id)
    }

    pub fn is_oauth_token(&self, token: &str) -> bool {
        self.oauth_user(token).is_some()
    }

    /// How many permission questions this App has answered.
    pub fn permission_checks(&self) -> u64 {
        self.permission_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn egress_config(config: &Config, own: &[IpAddr]) -> EgressConfig {
    let s = &config.service_settings;
    EgressConfig {
        allowed_untrusted_internal: s.allowed_untrusted_internal_connections.clone(),
        timeout: Duration::from_secs(u64::from(s.outgoing_integration_requests_timeout.max(1))),
        own_addresses: own.to_vec(),
        ..EgressConfig::default()
    }
}
