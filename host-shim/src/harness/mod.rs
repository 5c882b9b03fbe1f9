//! The shim as a library for tests: start a real server with the real
//! component on a free loopback port, drive it over HTTP, and look at what
//! happened (posts, events, plugin logs) without going through the API.
//!
//! A shim runs on SQLite (a file in its data directory) unless told otherwise:
//! [`TestShimBuilder::postgres`] names a PostgreSQL database,
//! [`TestShimBuilder::fresh_postgres`] makes one on the run's [`TestPostgres`]
//! (a real, throwaway server: [`postgres`]), and `SWITCHBOARD_DB=postgres`
//! ([`BACKEND_ENV`]) makes every shim that does not choose start on a fresh
//! database of its own. [`TestShimBuilder::node_of`] starts another node of a
//! running shim's installation (same database and at-rest key, own data
//! directory and port), so one test can run several nodes on one database;
//! [`TestShimBuilder::sqlite`] keeps a test of the SQLite file on SQLite.

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

/// Selects the backend of the tests that do not choose one:
/// `SWITCHBOARD_DB=postgres` gives each [`TestShim`] a fresh database on the
/// run's [`TestPostgres`]; unset, empty or `sqlite3`, the SQLite file in its
/// data directory. `make test` runs the end-to-end suite once each way.
pub const BACKEND_ENV: &str = "SWITCHBOARD_DB";

/// Which database a [`TestShimBuilder`] starts on.
enum Backend {
    /// [`BACKEND_ENV`] decides.
    Default,
    /// The SQLite file in the data directory, whatever the environment says.
    Sqlite,
    /// A PostgreSQL database the test names.
    Postgres(String),
    /// A fresh database on the run's [`TestPostgres`].
    FreshPostgres,
    /// Another node of a running shim: its database (kept while any node
    /// of it runs) and its installation.
    NodeOf {
        database: Option<Arc<TestDatabase>>,
        sql: crate::config::SqlSettings,
        admin_token: String,
        admin_username: String,
        team_name: String,
    },
}

/// How to start a [`TestShim`].
pub struct TestShimBuilder {
    config: Config,
    component: PathBuf,
    manifest: PathBuf,
    clock: Clock,
    backend: Backend,
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

    /// Runs on the PostgreSQL database `data_source` names
    /// (`SqlSettings.DriverName` `postgres`, `SqlSettings.DataSource`), which
    /// the test owns: it must be empty for a first start.
    pub fn postgres(mut self, data_source: impl Into<String>) -> Self {
        self.backend = Backend::Postgres(data_source.into());
        self
    }

    /// Runs on a fresh database of the run's [`TestPostgres`], whatever
    /// [`BACKEND_ENV`] says (tests of what only PostgreSQL does: several
    /// nodes). The database is dropped when the last node on it is.
    pub fn fresh_postgres(mut self) -> Self {
        self.backend = Backend::FreshPostgres;
        self
    }

    /// Runs on SQLite whatever [`BACKEND_ENV`] says: for a test of the
    /// SQLite file itself (what is on disk, upgrades of a data directory).
    pub fn sqlite(mut self) -> Self {
        self.backend = Backend::Sqlite;
        self
    }

    /// Starts another node of the installation `first` serves: the same
    /// database (`SqlSettings.DriverName` and `DataSource`) and the same
    /// `SqlSettings.AtRestEncryptKey`, its own data directory (cache, logs)
    /// and port. It does not bootstrap: it finds the team, channels and
    /// admin `first` made, and its `admin_token`, `admin`, `team` and
    /// `town_square` are `first`'s. Several nodes need PostgreSQL: on
    /// SQLite this is an error. The rest of the configuration is this
    /// builder's, as for any shim.
    ///
    /// ```no_run
    /// # async fn f() -> anyhow::Result<()> {
    /// use switchboard_host_shim::harness::TestShim;
    /// let a = TestShim::builder().fresh_postgres().start().await?;
    /// let b = TestShim::builder().node_of(&a).start().await?;
    /// let c = TestShim::builder().node_of(&a).start().await?;
    /// # Ok(()) }
    /// ```
    pub fn node_of(mut self, first: &TestShim) -> Self {
        self.backend = Backend::NodeOf {
            database: first.database.clone(),
            sql: first.shim.app.config().sql_settings.clone(),
            admin_token: first.admin_token.clone(),
            admin_username: first.admin.username.clone(),
            team_name: first.team.name.clone(),
        };
        self
    }

    pub async fn start(self) -> anyhow::Result<TestShim> {
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut config = self.config;
        config.service_settings.site_url = format!("http://{addr}");
        config.service_settings.listen_address = addr.to_string();
        let env = std::env::var(BACKEND_ENV).unwrap_or_default();
        let (database, node_of) =
            choose_backend(self.backend, &env, &mut config.sql_settings).await?;
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
        let (admin_token, admin_username, team_name) = match (bootstrap, node_of) {
            (Some(bootstrap), None) => (
                bootstrap.admin_token,
                bootstrap.admin_username,
                bootstrap.team_name,
            ),
            (None, Some(first)) => first,
            (None, None) => anyhow::bail!("a fresh database was not bootstrapped"),
            (Some(_), Some(_)) => {
                anyhow::bail!("a node of a running installation bootstrapped another one")
            }
        };
        let team = shim.app.store.team_by_name(&team_name)?;
        let town_square = shim.app.store.channel_by_name(&team.id, "town-square")?;
        let admin = shim.app.store.user_by_username(&admin_username)?;

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(listener, shim.clone(), async {
            let _ = stopped.await;
        }));
        Ok(TestShim {
            url: format!("http://{addr}"),
            admin_token,
            admin,
            team,
            town_square,
            shim,
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
            database,
        })
    }
}

/// The admin's token and username and the team's name of the installation
/// a node joins.
type Installation = (String, String, String);

/// Sets `sql` for `backend` (`env`: [`BACKEND_ENV`]'s value); the test
/// database to keep while the shim runs (when the harness made it) and, for
/// another node, the installation it joins.
async fn choose_backend(
    backend: Backend,
    env: &str,
    sql: &mut crate::config::SqlSettings,
) -> anyhow::Result<(Option<Arc<TestDatabase>>, Option<Installation>)> {
    let backend = match backend {
        Backend::Default => match env {
            // A test that set the driver in its configuration keeps it.
            _ if sql.is_postgres() => return Ok((None, None)),
            "" | crate::config::DRIVER_SQLITE | "sqlite" => Backend::Sqlite,
            crate::config::DRIVER_POSTGRES => Backend::FreshPostgres,
            other => anyhow::bail!(
                "{BACKEND_ENV}={other:?}: expected {:?} or {:?}",
                crate::config::DRIVER_SQLITE,
                crate::config::DRIVER_POSTGRES
            ),
        },
        other => other,
    };
    match backend {
        Backend::Default => unreachable!("resolved above"),
        Backend::Sqlite => {
            sql.driver_name = crate::config::DRIVER_SQLITE.into();
            sql.data_source.clear();
            Ok((None, None))
        }
        Backend::Postgres(data_source) => {
            sql.driver_name = crate::config::DRIVER_POSTGRES.into();
            sql.data_source = data_source;
            Ok((None, None))
        }
        Backend::FreshPostgres => {
            // initdb on first use takes seconds: not on a runtime thread.
            let database = tokio::task::spawn_blocking(|| {
                TestPostgres::shared().and_then(TestPostgres::create_database)
            })
            .await??;
            sql.driver_name = crate::config::DRIVER_POSTGRES.into();
            sql.data_source = database.data_source.clone();
            Ok((Some(database), None))
        }
        Backend::NodeOf {
            database,
            sql: first,
            admin_token,
            admin_username,
            team_name,
        } => {
            if !first.is_postgres() {
                anyhow::bail!(
                    "several nodes share one PostgreSQL database: start the first with \
                     .fresh_postgres() or .postgres(..), or with {BACKEND_ENV}=postgres"
                );
            }
            sql.driver_name = first.driver_name;
            sql.data_source = first.data_source;
            sql.at_rest_encrypt_key = first.at_rest_encrypt_key;
            Ok((database, Some((admin_token, admin_username, team_name))))
        }
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
    /// The test database the harness made for it, shared by its other nodes
    /// and dropped with the last of them.
    database: Option<Arc<TestDatabase>>,
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
            backend: Backend::Default,
        }
    }

    pub async fn start() -> anyhow::Result<TestShim> {
        TestShim::builder().start().await
    }

    /// The temporary data directory (cache, admin token, and the database
    /// on SQLite).
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Whether it runs on PostgreSQL (`SqlSettings.DriverName`).
    pub fn is_postgres(&self) -> bool {
        self.shim.app.config().sql_settings.is_postgres()
    }

    /// Every byte the database keeps on disk, for tests that look for what
    /// must not be stored in the clear: SQLite's file and its journal, or
    /// on PostgreSQL the files of this shim's database after a checkpoint
    /// has written what was only in the server's memory (the server must
    /// run on this machine, as the test server does, and the test may read
    /// its files: it runs as root or as the server's user).
    pub fn database_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        if !self.is_postgres() {
            for name in ["switchboard.db", "switchboard.db-wal"] {
                match std::fs::read(self.data_dir().join(name)) {
                    Ok(b) => bytes.extend(b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(bytes);
        }
        postgres::database_bytes(&self.shim.app.config().sql_settings.data_source)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DRIVER_POSTGRES, DRIVER_SQLITE, SqlSettings};

    async fn choose(backend: Backend, env: &str, sql: &mut SqlSettings) -> Option<String> {
        let (database, node_of) = choose_backend(backend, env, sql).await.unwrap();
        assert!(node_of.is_none());
        database.map(|d| d.data_source.clone())
    }

    #[tokio::test]
    async fn the_environment_picks_the_backend_of_tests_that_do_not() {
        let mut sql = SqlSettings::default();
        assert_eq!(choose(Backend::Default, "", &mut sql).await, None);
        assert_eq!(sql.driver_name, DRIVER_SQLITE);
        assert_eq!(choose(Backend::Default, "sqlite3", &mut sql).await, None);
        assert_eq!(sql.driver_name, DRIVER_SQLITE);

        let made = choose(Backend::Default, "postgres", &mut sql).await;
        assert_eq!(sql.driver_name, DRIVER_POSTGRES);
        assert_eq!(made.as_deref(), Some(sql.data_source.as_str()));
        assert!(
            sql.data_source.starts_with("postgres://"),
            "{}",
            sql.data_source
        );
        // Each shim its own database.
        let mut other = SqlSettings::default();
        choose(Backend::Default, "postgres", &mut other).await;
        assert_ne!(other.data_source, sql.data_source);

        let err = choose_backend(Backend::Default, "mysql", &mut SqlSettings::default())
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("SWITCHBOARD_DB=\"mysql\""),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_test_that_chooses_keeps_its_choice() {
        let mut sql = SqlSettings::default();
        assert_eq!(choose(Backend::Sqlite, "postgres", &mut sql).await, None);
        assert_eq!(sql.driver_name, DRIVER_SQLITE);

        let named = "postgres://someone@127.0.0.1:1/theirs?sslmode=disable";
        choose(Backend::Postgres(named.into()), "", &mut sql).await;
        assert_eq!(
            (sql.driver_name.as_str(), sql.data_source.as_str()),
            (DRIVER_POSTGRES, named)
        );
        // Set in the test's configuration: kept too.
        assert_eq!(choose(Backend::Default, "postgres", &mut sql).await, None);
        assert_eq!(sql.data_source, named);

        let mut fresh = SqlSettings::default();
        assert!(
            choose(Backend::FreshPostgres, "", &mut fresh)
                .await
                .is_some()
        );
        assert_eq!(fresh.driver_name, DRIVER_POSTGRES);
    }

    #[tokio::test]
    async fn another_node_shares_the_database_and_the_key() {
        let first = SqlSettings {
            driver_name: DRIVER_POSTGRES.into(),
            data_source: "postgres://postgres@127.0.0.1:1/one?sslmode=disable".into(),
            at_rest_encrypt_key: "the-key".into(),
        };
        let node = |sql: SqlSettings| Backend::NodeOf {
            database: None,
            sql,
            admin_token: "token".into(),
            admin_username: "admin".into(),
            team_name: "team".into(),
        };
        let mut sql = SqlSettings {
            at_rest_encrypt_key: "its-own".into(),
            ..SqlSettings::default()
        };
        let (_, joins) = choose_backend(node(first.clone()), "", &mut sql)
            .await
            .unwrap();
        assert_eq!(sql, first);
        assert_eq!(joins, Some(("token".into(), "admin".into(), "team".into())));

        let err = choose_backend(
            node(SqlSettings::default()),
            "",
            &mut SqlSettings::default(),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
    }
}
