//! The shim as a library for tests: start a real server with the real
//! component on a free loopback port, drive it over HTTP, and look at what
//! happened (posts, events, plugin logs) without going through the API.
//! [`postgres`] gives tests a real, throwaway PostgreSQL.

pub mod postgres;

pub use postgres::{TestDatabase, TestPostgres};

use crate::app::{Clock, Event, LogLine, OutboundCall};
use crate::config::Config;
use crate::manifest::Manifest;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::store::transforms::TransformInfo;
use crate::store::{Channel, Post, Team, User, new_id, now_millis};
use crate::{OpenOptions, Shim};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Installs the TLS crypto provider the workspace's reqwest is built without,
/// for test clients made before any shim starts. Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The component `make component` builds, unless `SWITCHBOARD_COMPONENT` names another.
pub fn default_component() -> PathBuf {
    std::env::var_os("SWITCHBOARD_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/wasm32-wasip2/release/switchboard_plugin.wasm"))
}

/// The repository's `manifest.json`, unless `SWITCHBOARD_MANIFEST` names another.
pub fn default_manifest() -> PathBuf {
    std::env::var_os("SWITCHBOARD_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("manifest.json"))
}

/// This repository, where the defaults live. A crate outside it that depends
/// on the shim names its own component and manifest on the builder instead.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where compiled code is kept between test processes: this repository's
/// `target/` for its own component, else beside the component named.
fn cache_dir(component: &Path) -> PathBuf {
    if component == default_component() {
        return workspace().join("target/switchboard-cache");
    }
    component
        .parent()
        .unwrap_or(Path::new("."))
        .join("switchboard-cache")
}

/// One compiled runtime per component per test process: compiling is the slow
/// part, and instances are per call anyway. The disk cache spares other
/// test processes the compile too.
/// Tests that size the pool or queue in their configuration get a runtime of
/// their own, so their slots are not shared with other tests.
fn shared_runtime(
    component: &Path,
    manifest: &Manifest,
    settings: &crate::config::SwitchboardSettings,
) -> anyhow::Result<Arc<Runtime>> {
    type Key = (PathBuf, Vec<String>, u32, u32, u32, u32);
    static RUNTIMES: OnceLock<Mutex<HashMap<Key, Arc<Runtime>>>> = OnceLock::new();
    let key = (
        component.to_path_buf(),
        manifest.permissions.clone(),
        settings.plugin_pool_size,
        settings.plugin_queue_size,
        settings.plugin_queue_timeout_milliseconds,
        settings.plugin_memory_limit_mib,
    );
    let mut runtimes = RUNTIMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(runtime) = runtimes.get(&key) {
        return Ok(runtime.clone());
    }
    if !component.exists() {
        anyhow::bail!(
            "the plugin component {} does not exist; build it with `make component`",
            component.display()
        );
    }
    let runtime = Arc::new(Runtime::load(
        component,
        manifest.permissions.clone(),
        RuntimeOptions::from_settings(settings, Some(cache_dir(component))),
    )?);
    runtimes.insert(key, runtime.clone());
    Ok(runtime)
}

/// How to start a [`TestShim`].
pub struct TestShimBuilder {
    config: Config,
    component: PathBuf,
    manifest: PathBuf,
    clock: Clock,
}

impl TestShimBuilder {
    /// Changes the configuration before start (e.g. enable overrides).
    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// The plugin component to run (default: [`default_component`]).
    pub fn component(mut self, path: impl Into<PathBuf>) -> Self {
        self.component = path.into();
        self
    }

    /// The `manifest.json` to start with: its API version is checked and its
    /// permissions granted (default: [`default_manifest`]). The component is
    /// the builder's, whatever the manifest's `component` says.
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifest = path.into();
        self
    }

    /// Fixes the server's wall clock (post timestamps and the plugin's WASI
    /// clock) at `millis` since the epoch; move it with [`TestShim::advance_clock`].
    pub fn fixed_clock(mut self, millis: i64) -> Self {
        self.clock = Clock::fixed(millis);
        self
    }

    pub async fn start(self) -> anyhow::Result<TestShim> {
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut config = self.config;
        config.service_settings.site_url = format!("http://{addr}");
        config.service_settings.listen_address = addr.to_string();
        let manifest = Manifest::load(&self.manifest)?;
        let runtime = shared_runtime(&self.component, &manifest, &config.switchboard_settings)?;
        let (shim, bootstrap) = crate::open(OpenOptions {
            data_dir: dir.path().to_path_buf(),
            config,
            config_path: None,
            manifest,
            runtime: Some(runtime),
            clock: self.clock,
        })
        .await?;
        let bootstrap = bootstrap
            .ok_or_else(|| anyhow::anyhow!("a fresh data directory was not bootstrapped"))?;
        let team = shim.app.store.team_by_name(&bootstrap.team_name)?;
        let town_square = shim.app.store.channel_by_name(&team.id, "town-square")?;
        let admin = shim.app.store.user_by_username(&bootstrap.admin_username)?;

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(listener, shim.clone(), async {
            let _ = stopped.await;
        }));
        Ok(TestShim {
            url: format!("http://{addr}"),
            admin_token: bootstrap.admin_token,
            admin,
            team,
            town_square,
            shim,
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        })
    }
}

/// A running shim on a free loopback port, with a temporary data directory.
/// Stop it with [`TestShim::stop`]; dropping it also stops the server.
pub struct TestShim {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub admin_token: String,
    pub admin: User,
    pub team: Team,
    pub town_square: Channel,
    pub shim: Shim,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestShim {
    /// Default configuration plus `EnableTesting` and `EnableDeveloper`, so
    /// fault routes work and error envelopes carry their details.
    pub fn builder() -> TestShimBuilder {
        let mut config = Config::default();
        config.service_settings.enable_testing = true;
        config.service_settings.enable_developer = true;
        TestShimBuilder {
            config,
            component: default_component(),
            manifest: default_manifest(),
            clock: Clock::system(),
        }
    }

    pub async fn start() -> anyhow::Result<TestShim> {
        TestShim::builder().start().await
    }

    /// The temporary data directory (database, cache, admin token).
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Creates a user who is a `team_user` of the default team and a member of
    /// town-square; returns it with a personal access token.
    pub fn create_user(&self, username: &str) -> anyhow::Result<(User, String)> {
        let store = &self.shim.app.store;
        let user = User {
            id: new_id(),
            username: username.to_string(),
            email: format!("{username}@example.com"),
            roles: "system_user".into(),
            create_at: now_millis(),
            ..User::default()
        };
        // Tests log in with tokens, so the password hash is never checked.
        store.create_user(&user, "!")?;
        store.add_team_member(&self.team.id, &user.id, "team_user")?;
        store.add_channel_member(&self.town_square.id, &user.id)?;
        let token = store.create_token(&user.id, "pat", "test")?;
        Ok((user, token))
    }

    /// Stores the transform component at `path` under `name`, as
    /// `POST /api/v4/transforms` by the admin would (checked and compiled
    /// first, so a file that is not a transform is an error); its id, for a
    /// hook's `"transform": {"component": id}`.
    pub async fn load_transform(
        &self,
        name: &str,
        path: impl AsRef<Path>,
    ) -> anyhow::Result<String> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("reading the transform {}: {e}", path.display()))?;
        let (app, name, creator) = (
            self.shim.app.clone(),
            name.to_string(),
            self.admin.id.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let compiled = app
                .transforms
                .compile(&bytes)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let info = TransformInfo {
                id: new_id(),
                name,
                size: bytes.len() as i64,
                sha256: crate::transforms::sha256_hex(&bytes),
                create_at: app.clock.now_millis(),
                creator_id: creator,
            };
            app.store.insert_transform(&info, bytes)?;
            app.transforms.remember(&info.id, compiled);
            Ok(info.id)
        })
        .await?
    }

    /// Every stored post, oldest first.
    pub fn posts(&self) -> Vec<Post> {
        self.shim.app.store.all_posts().unwrap_or_default()
    }

    /// Recent server events (`posted`, `ephemeral_message`, `post_edited`).
    pub fn events(&self) -> Vec<Event> {
        self.shim.app.events.recent()
    }

    /// What the plugin logged.
    pub fn logs(&self) -> Vec<LogLine> {
        self.shim.app.events.logs()
    }

    /// Every outbound request the plugin made, oldest first, with its outcome.
    pub fn outbound_calls(&self) -> Vec<OutboundCall> {
        self.shim.app.events.outbound_calls()
    }

    /// Changes the configuration while running, as `PUT /api/v4/config/patch` does.
    pub fn set_config(&self, f: impl FnOnce(&mut Config)) -> anyhow::Result<()> {
        let mut config = (*self.shim.app.config()).clone();
        f(&mut config);
        self.shim.app.set_config(config)
    }

    /// Moves a fixed clock forward (no effect on the system clock).
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.shim.app.clock.advance(by);
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await??;
        }
        Ok(())
    }
}

impl Drop for TestShim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
