//! The shim's durable state: teams, users, channels, memberships, posts,
//! tokens and the plugin's kv, in one SQLite file (the default) or in a
//! PostgreSQL database several nodes share. A write that returns is
//! committed.
//!
//! The queries are written once ([`sql`]); [`sqlite`-specific opening and
//! migrations stay in `migrations.rs`, PostgreSQL's in [`postgres`]. The
//! code above the store does not know which backend it talks to.

mod access_tokens;
mod bots;
mod channels_more;
pub mod copy;
pub mod deliveries;
mod first_start;
mod health;
mod logins;
mod metrics;
pub mod migrations;
mod model;
mod oauth;
mod outbox;
mod outgoing_oauth;
pub mod postgres;
mod reactions;
pub mod secrets;
pub mod sql;
#[cfg(test)]
mod suite;
pub mod transforms;
mod writer;

pub use access_tokens::AccessToken;
pub use bots::{Bot, BotQuery};
pub use first_start::FirstStart;
pub use model::{Channel, ChannelType, Post, Team, TeamMember, User};
pub use oauth::{AccessGrant, AuthCode, OAuthApp};
pub use outgoing_oauth::OutgoingOAuthConnection;
pub use reactions::Reaction;
pub use secrets::token_digest;
pub use writer::CommitStats;

use crate::args;
use rusqlite::Connection;
use sql::{Db, Row, Value};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
pub enum StoreError {
    NotFound(String),
    Conflict(String),
    Invalid(String),
    Db(String),
    /// The database cannot be reached or asked the caller to try again
    /// (a lost connection, a server shutting down, a deadlock): 503 with
    /// `Retry-After`, never a 500.
    Unavailable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound(s) => write!(f, "not found: {s}"),
            StoreError::Conflict(s) => write!(f, "conflict: {s}"),
            StoreError::Invalid(s) => write!(f, "invalid: {s}"),
            StoreError::Db(s) => write!(f, "database error: {s}"),
            StoreError::Unavailable(s) => write!(f, "database unavailable: {s}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, msg)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict(msg.clone().unwrap_or_else(|| e.to_string()))
            }
            _ => StoreError::Db(e.to_string()),
        }
    }
}

/// Whose a token is: see [`Store::user_for_token`].
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOwner {
    pub user_id: String,
    /// `pat` (personal access token) or `session` (from a login).
    pub kind: String,
    pub is_bot: bool,
}

pub type Result<T> = std::result::Result<T, StoreError>;

type MembershipListener = Box<dyn Fn() + Send + Sync>;

/// PostgreSQL connections per node: the writer threads' and the reads'.
const POSTGRES_POOL: usize = 24;
/// PostgreSQL writer threads per node (one transaction each at a time).
const POSTGRES_WRITERS: usize = 8;

/// Where reads run: SQLite's one read connection (WAL lets it run beside
/// the writer), or PostgreSQL's pool.
enum Reads {
    Sqlite(Mutex<Connection>),
    Postgres(Arc<postgres::Postgres>),
}

/// A connection to read on, held for one store call.
pub(crate) enum Conn<'a> {
    Sqlite(MutexGuard<'a, Connection>),
    /// Boxed: a pooled connection is much larger than a lock guard.
    Postgres(Box<postgres::Session>),
}

impl Conn<'_> {
    pub(crate) fn db(&self) -> Db<'_> {
        match self {
            Conn::Sqlite(c) => Db::Sqlite(c),
            Conn::Postgres(s) => Db::Postgres(s),
        }
    }

    pub(crate) fn row<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.db().row(sql, args, f)
    }

    pub(crate) fn one<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.db().one(sql, args, f)
    }

    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.db().rows(sql, args, f)
    }
}

/// Reads run on a connection of their own; writes go to the writer (group
/// commit on SQLite, short transactions on PostgreSQL).
pub struct Store {
    reads: Reads,
    writer: writer::Writer,
    /// Bumped after every write that can change who may read what
    /// (memberships, archiving, moderation): caches of permission answers
    /// compare it to know they are stale.
    membership: std::sync::atomic::AtomicU64,
    /// Told of each membership change (see [`Store::on_membership_change`]).
    membership_listener: std::sync::OnceLock<MembershipListener>,
    /// Seals kv values at rest; `None` (tests only) stores them as given.
    cipher: Option<std::sync::Arc<secrets::Cipher>>,
    /// Decides which kv keys have expired: the server's clock (a test's
    /// fixed one), set by [`Store::set_clock`].
    clock: crate::app::Clock,
    /// The writer's commit statistics (shared with the metrics registry).
    commits: writer::CommitStats,
}

/// A fresh Mattermost-style id: 26 chars of lowercase base32.
pub fn new_id() -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let value: u128 = rand::random();
    // 26 groups of 5 bits; the last group holds the top 3 bits.
    (0..26)
        .map(|i| ALPHABET[((value >> (5 * i)) & 0x1f) as usize] as char)
        .collect()
}

/// The database and its -wal and -shm files are the owner's alone (0600):
/// they hold password hashes and the plugin's data. The main file is created
/// so before SQLite opens it, and SQLite gives its companions the same mode.
fn private_files(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| anyhow::anyhow!("making {} private: {e}", file.display()))?;
            }
        }
    }
    let _ = path;
    Ok(())
}

/// Whether `id` has the shape of an id [`new_id`] makes: 26 letters or digits.
pub fn valid_id(id: &str) -> bool {
    id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up
    /// to date.
    /// Kv values are stored as given: for tests; the server uses
    /// [`Store::open_with_key`].
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        Store::open_inner(path, None)
    }

    /// Opens the database with kv values sealed under `at_rest_key`
    /// (`SqlSettings.AtRestEncryptKey`); values written before are sealed now.
    pub fn open_with_key(path: &Path, at_rest_key: &str) -> anyhow::Result<Store> {
        Store::open_inner(path, Some(secrets::Cipher::new(at_rest_key)))
    }

    fn open_inner(path: &Path, cipher: Option<secrets::Cipher>) -> anyhow::Result<Store> {
        // Before anything writes to it: data of a newer release stays as it is.
        migrations::refuse_newer(path, migrations::RELEASE)?;
        private_files(path)?;
        let connect = || -> Result<Connection> {
            let conn = Connection::open(path)?;
            // WAL lets readers run beside the writer; FULL sync makes
            // "committed" mean on disk, which is what a 200 promises.
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            // Room for every statement of the hot paths.
            conn.set_prepared_statement_cache_capacity(64);
            Ok(conn)
        };
        let mut write = connect()?;
        migrations::migrate(&mut write)?;
        migrations::record_release(&Db::Sqlite(&write), migrations::RELEASE)?;
        secrets::seal_legacy_values(&mut write, cipher.as_ref())?;
        let read = connect()?;
        // SQLite gives -wal and -shm the database file's mode; check anyway.
        private_files(path)?;
        let commits = writer::CommitStats::default();
        let writer = writer::Writer::start(write, commits.clone())?;
        Ok(Store::with(
            Reads::Sqlite(Mutex::new(read)),
            writer,
            commits,
            cipher,
        ))
    }

    /// Opens the PostgreSQL database `data_source` names (a libpq URL or
    /// `key=value` string), bringing its schema up to date under an
    /// advisory lock (one node of a cluster migrates, the others wait), with
    /// kv values sealed under `at_rest_key` as on SQLite.
    pub fn open_postgres(data_source: &str, at_rest_key: &str) -> anyhow::Result<Store> {
        let pg = Arc::new(postgres::Postgres::connect(data_source, POSTGRES_POOL)?);
        pg.migrate(migrations::RELEASE)?;
        let commits = writer::CommitStats::default();
        let writer = writer::Writer::start_postgres(pg.clone(), POSTGRES_WRITERS, commits.clone())?;
        let store = Store::with(
            Reads::Postgres(pg),
            writer,
            commits,
            Some(secrets::Cipher::new(at_rest_key)),
        );
        store.record_release(migrations::RELEASE)?;
        Ok(store)
    }

    /// Opens the database `settings` name: the SQLite file in `data_dir`,
    /// or PostgreSQL.
    pub fn open_configured(
        settings: &crate::config::SqlSettings,
        data_dir: &Path,
    ) -> anyhow::Result<Store> {
        match settings.driver_name.as_str() {
            "" | crate::config::DRIVER_SQLITE => Store::open_with_key(
                &data_dir.join("switchboard.db"),
                &settings.at_rest_encrypt_key,
            ),
            crate::config::DRIVER_POSTGRES => {
                Store::open_postgres(&settings.data_source, &settings.at_rest_encrypt_key)
            }
            other => anyhow::bail!(
                "SqlSettings.DriverName {other:?} is not supported: use \"sqlite3\" or \"postgres\""
            ),
        }
    }

    fn with(
        reads: Reads,
        writer: writer::Writer,
        commits: writer::CommitStats,
        cipher: Option<secrets::Cipher>,
    ) -> Store {
        Store {
            reads,
            writer,
            commits,
            membership: std::sync::atomic::AtomicU64::new(0),
            membership_listener: std::sync::OnceLock::new(),
            cipher: cipher.map(Arc::new),
            clock: crate::app::Clock::system(),
        }
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> sql::Backend {
        match self.reads {
            Reads::Sqlite(_) => sql::Backend::Sqlite,
            Reads::Postgres(_) => sql::Backend::Postgres,
        }
    }

    /// The PostgreSQL backend, for what needs the driver itself (the
    /// cluster's notifications and locks); `None` on SQLite.
    pub fn postgres(&self) -> Option<Arc<postgres::Postgres>> {
        match &self.reads {
            Reads::Postgres(pg) => Some(pg.clone()),
            Reads::Sqlite(_) => None,
        }
    }

    /// Records `release` as the last to open the database.
    fn record_release(&self, release: &str) -> Result<()> {
        let release = release.to_string();
        self.writer
            .write(move |c| migrations::record_release(c, &release))
    }

    /// Reads kv expiry by `clock` (the server's) instead of the system's.
    pub fn set_clock(&mut self, clock: crate::app::Clock) {
        self.clock = clock;
    }

    /// Returns once every write queued before it is committed (a stop's
    /// last step: nothing handed to the writer is left behind).
    pub async fn flush_writes(&self) -> Result<()> {
        self.writer.flush().await;
        Ok(())
    }

    /// Changes whenever memberships (or anything else permissions read
    /// besides users' roles) may have changed.
    pub fn membership_epoch(&self) -> u64 {
        self.membership.load(std::sync::atomic::Ordering::Acquire)
    }

    fn membership_changed(&self) {
        self.membership
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(listener) = self.membership_listener.get() {
            listener();
        }
    }

    /// Runs `listener` after every membership change made through this
    /// store (a cluster node tells the others, see `cluster`). Set once.
    pub fn on_membership_change(&self, listener: impl Fn() + Send + Sync + 'static) {
        let _ = self.membership_listener.set(Box::new(listener));
    }

    /// Another node changed memberships: caches keyed on
    /// [`Store::membership_epoch`] here are stale too.
    pub fn membership_changed_elsewhere(&self) {
        self.membership
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn conn(&self) -> Result<Conn<'_>> {
        match &self.reads {
            // A panic while holding the lock cannot leave SQLite half-written
            // (each statement is atomic), so a poisoned lock is safe to keep
            // using.
            Reads::Sqlite(c) => Ok(Conn::Sqlite(c.lock().unwrap_or_else(|p| p.into_inner()))),
            Reads::Postgres(pg) => Ok(Conn::Postgres(Box::new(pg.session()?))),
        }
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn()?.one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            args![],
            |r| r.get(0),
        )
    }

    // ---- teams ----

    pub fn create_team(&self, name: &str, display_name: &str) -> Result<Team> {
        let team = Team {
            id: new_id(),
            name: name.to_string(),
            display_name: display_name.to_string(),
            create_at: now_millis(),
            delete_at: 0,
        };
        let row = team.clone();
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO teams (id, name, display_name, create_at, delete_at) VALUES (?1, ?2, ?3, ?4, 0)",
                args![row.id, row.name, row.display_name, row.create_at])?;
            Ok(())
        })?;
        Ok(team)
    }

    pub fn team(&self, id: &str) -> Result<Team> {
        self.conn()?
            .row(
                "SELECT * FROM teams WHERE id = ?1",
                args![id],
                Team::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("team {id}")))
    }

    pub fn team_by_name(&self, name: &str) -> Result<Team> {
        self.conn()?
            .row(
                "SELECT * FROM teams WHERE name = ?1",
                args![name],
                Team::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("team {name}")))
    }

    pub fn teams(&self) -> Result<Vec<Team>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT * FROM teams WHERE delete_at = 0 ORDER BY name",
            args![],
            Team::from_row,
        )?;
        Ok(rows)
    }

    pub fn teams_for_user(&self, user_id: &str) -> Result<Vec<Team>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT t.* FROM teams t JOIN team_members m ON m.team_id = t.id
             WHERE m.user_id = ?1 AND t.delete_at = 0 ORDER BY t.name",
            args![user_id],
            Team::from_row,
        )?;
        Ok(rows)
    }

    pub fn add_team_member(&self, team_id: &str, user_id: &str, roles: &str) -> Result<()> {
        let (team_id, user_id, roles) =
            (team_id.to_string(), user_id.to_string(), roles.to_string());
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO team_members (team_id, user_id, roles) VALUES (?1, ?2, ?3)
                 ON CONFLICT (team_id, user_id) DO UPDATE SET roles = excluded.roles",
                args![team_id, user_id, roles],
            )?;
            Ok(())
        })?;
        self.membership_changed();
        Ok(())
    }

    pub fn team_member(&self, team_id: &str, user_id: &str) -> Result<Option<TeamMember>> {
        self.conn()?.row(
            "SELECT team_id, user_id, roles FROM team_members WHERE team_id = ?1 AND user_id = ?2",
            args![team_id, user_id],
            |r| {
                Ok(TeamMember {
                    team_id: r.get(0)?,
                    user_id: r.get(1)?,
                    roles: r.get(2)?,
                })
            },
        )
    }

    // ---- users ----

    pub fn create_user(&self, user: &User, password_hash: &str) -> Result<()> {
        let (user, hash) = (user.clone(), password_hash.to_string());
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO users (id, username, email, password_hash, nickname, first_name, last_name,
                                    roles, is_bot, create_at, update_at, delete_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, 0)",
                args![
                    user.id, user.username, user.email, hash, user.nickname, user.first_name,
                    user.last_name, user.roles, user.is_bot, user.create_at
                ])?;
            Ok(())
        })
    }

    pub fn user(&self, id: &str) -> Result<User> {
        self.conn()?
            .row(
                "SELECT * FROM users WHERE id = ?1",
                args![id],
                User::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
    }

    pub fn user_by_username(&self, username: &str) -> Result<User> {
        self.conn()?
            .row(
                "SELECT * FROM users WHERE username = ?1",
                args![username.to_lowercase()],
                User::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("user {username}")))
    }

    /// The user and password hash for a login id (username or email).
    pub fn user_for_login(&self, login_id: &str) -> Result<(User, String)> {
        let conn = self.conn()?;
        let id: Option<(String, String)> = conn.row(
            "SELECT id, password_hash FROM users WHERE username = ?1 OR email = ?1",
            args![login_id.to_lowercase()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        drop(conn);
        let (id, hash) = id.ok_or_else(|| StoreError::NotFound(format!("user {login_id}")))?;
        Ok((self.user(&id)?, hash))
    }

    pub fn user_count(&self) -> Result<i64> {
        self.conn()?
            .one("SELECT COUNT(*) FROM users", args![], |r| r.get(0))
    }

    // ---- tokens ----

    /// A new token for `user_id`; only its digest is stored, so this is the
    /// one time it is seen.
    pub fn create_token(&self, user_id: &str, kind: &str, description: &str) -> Result<String> {
        Ok(self.issue_token(user_id, kind, description)?.1)
    }

    /// [`Store::create_token`], with the new token's id (by which it is
    /// managed later): `(id, token)`.
    pub fn issue_token(
        &self,
        user_id: &str,
        kind: &str,
        description: &str,
    ) -> Result<(String, String)> {
        let (id, token) = (new_id(), new_id());
        let row = (
            secrets::token_digest(&token),
            user_id.to_string(),
            kind.to_string(),
            description.to_string(),
            id.clone(),
        );
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO tokens (token, user_id, kind, description, create_at, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![row.0, row.1, row.2, row.3, now_millis(), row.4])?;
            Ok(())
        })?;
        Ok((id, token))
    }

    /// The user a bearer token belongs to, if it is known and the user
    /// active, with the token's kind and whether the user is a bot.
    pub fn user_for_token(&self, token: &str) -> Result<Option<TokenOwner>> {
        self.conn()?.row(
            "SELECT t.user_id, t.kind, u.is_bot FROM tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token = ?1 AND t.is_active = 1 AND u.delete_at = 0",
            args![secrets::token_digest(token)],
            |r| {
                Ok(TokenOwner {
                    user_id: r.get(0)?,
                    kind: r.get(1)?,
                    is_bot: r.get(2)?,
                })
            },
        )
    }

    pub fn delete_token(&self, token: &str) -> Result<()> {
        let token = secrets::token_digest(token);
        self.writer.write(move |c| {
            c.execute("DELETE FROM tokens WHERE token = ?1", args![token])?;
            Ok(())
        })
    }

    // ---- channels ----

    pub fn create_channel(&self, channel: &Channel) -> Result<()> {
        let channel = channel.clone();
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO channels (id, team_id, name, display_name, type, header, purpose, creator_id,
                                       create_at, update_at, delete_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 0)",
                args![
                    channel.id, channel.team_id, channel.name, channel.display_name,
                    channel.channel_type.code(), channel.header, channel.purpose, channel.creator_id,
                    channel.create_at
                ])?;
            Ok(())
        })
    }

    pub fn channel(&self, id: &str) -> Result<Channel> {
        self.conn()?
            .row(
                "SELECT * FROM channels WHERE id = ?1",
                args![id],
                Channel::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("channel {id}")))
    }

    /// By exact name in a team; `team_id` empty means team-less channels.
    /// Archived channels are not returned.
    pub fn channel_by_name(&self, team_id: &str, name: &str) -> Result<Channel> {
        self.conn()?
            .row(
                "SELECT * FROM channels WHERE team_id = ?1 AND name = ?2 AND delete_at = 0",
                args![team_id, name],
                Channel::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("channel {name}")))
    }

    pub fn public_channels(&self, team_id: &str) -> Result<Vec<Channel>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT * FROM channels WHERE team_id = ?1 AND type = 'O' AND delete_at = 0 ORDER BY name",args![team_id], Channel::from_row)?;
        Ok(rows)
    }

    pub fn update_channel(&self, channel: &Channel) -> Result<()> {
        let channel = channel.clone();
        self.writer.write(move |c| {
            c.execute(
                "UPDATE channels SET display_name = ?2, header = ?3, purpose = ?4, update_at = ?5 WHERE id = ?1",
                args![channel.id, channel.display_name, channel.header, channel.purpose, now_millis()])?;
            Ok(())
        })
    }

    pub fn add_channel_member(&self, channel_id: &str, user_id: &str) -> Result<()> {
        let (channel_id, user_id) = (channel_id.to_string(), user_id.to_string());
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO channel_members (channel_id, user_id, roles) VALUES (?1, ?2, 'channel_user') ON CONFLICT DO NOTHING",
                args![channel_id, user_id])?;
            Ok(())
        })?;
        self.membership_changed();
        Ok(())
    }

    pub fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<()> {
        let (channel_id, user_id) = (channel_id.to_string(), user_id.to_string());
        self.writer.write(move |c| {
            c.execute(
                "DELETE FROM channel_members WHERE channel_id = ?1 AND user_id = ?2",
                args![channel_id, user_id],
            )?;
            Ok(())
        })?;
        self.membership_changed();
        Ok(())
    }

    pub fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool> {
        Ok(self
            .conn()?
            .row(
                "SELECT 1 FROM channel_members WHERE channel_id = ?1 AND user_id = ?2",
                args![channel_id, user_id],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// The direct channel of two users (named `<lower id>__<higher id>`, as
    /// Mattermost names them), created with both as members when missing.
    pub fn direct_channel(&self, a: &str, b: &str) -> Result<Channel> {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let name = format!("{lo}__{hi}");
        if let Ok(existing) = self.channel_by_name("", &name) {
            return Ok(existing);
        }
        self.user(a)?;
        self.user(b)?;
        let (id, creator, members) = (new_id(), a.to_string(), [lo.to_string(), hi.to_string()]);
        let row_name = name.clone();
        // One job: the channel and both memberships commit together, and a
        // concurrent creation of the same pair leaves one channel.
        self.writer.write(move |c| {
            let inserted = c.execute(
                "INSERT INTO channels (id, team_id, name, display_name, type, header, purpose,
                                                 creator_id, create_at, update_at, delete_at)
                 VALUES (?1, '', ?2, '', 'D', '', '', ?3, ?4, ?4, 0) ON CONFLICT DO NOTHING",
                args![id, row_name, creator, now_millis()])?;
            if inserted == 1 {
                for user in &members {
                    c.execute(
                        "INSERT INTO channel_members (channel_id, user_id, roles) VALUES (?1, ?2, 'channel_user') ON CONFLICT DO NOTHING",
                        args![&id, user])?;
                }
            }
            Ok(())
        })?;
        self.membership_changed();
        self.channel_by_name("", &name)
    }

    // ---- posts ----

    pub fn insert_post(&self, post: &Post) -> Result<()> {
        let post = post.clone();
        self.writer.write(move |c| insert_post_row(c, &post))
    }

    /// Many posts in one transaction (seeding a store: benchmarks, imports).
    pub fn import_posts(&self, posts: Vec<Post>) -> Result<()> {
        self.writer.write(move |c| {
            for post in &posts {
                insert_post_row(c, post)?;
            }
            Ok(())
        })
    }

    /// [`Store::insert_post`], awaited instead of blocking the thread.
    pub fn insert_post_async(
        &self,
        post: &Post,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        let post = post.clone();
        self.writer.write_async(move |c| insert_post_row(c, &post))
    }

    pub fn update_post(&self, post: &Post) -> Result<()> {
        let post = post.clone();
        self.writer.write(move |c| {
            let n = c.execute(
                "UPDATE posts SET update_at = ?2, edit_at = ?3, message = ?4, type = ?5, props = ?6,
                                  metadata = ?7, is_pinned = ?8
                 WHERE id = ?1 AND delete_at = 0",
                args![
                    post.id, post.update_at, post.edit_at, post.message, post.post_type, post.props,
                    post.metadata, post.is_pinned
                ])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("post {}", post.id)));
            }
            Ok(())
        })
    }

    pub fn post(&self, id: &str) -> Result<Post> {
        self.conn()?
            .row(
                "SELECT * FROM posts WHERE id = ?1 AND delete_at = 0",
                args![id],
                Post::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("post {id}")))
    }

    /// A channel's posts, newest first.
    pub fn channel_posts(
        &self,
        channel_id: &str,
        page: usize,
        per_page: usize,
    ) -> Result<Vec<Post>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT * FROM posts WHERE channel_id = ?1 AND delete_at = 0
             ORDER BY create_at DESC, rowid DESC LIMIT ?2 OFFSET ?3",
            args![channel_id, per_page as i64, (page * per_page) as i64],
            Post::from_row,
        )?;
        Ok(rows)
    }

    /// Every post, oldest first (for tests and the harness).
    pub fn all_posts(&self) -> Result<Vec<Post>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT * FROM posts ORDER BY create_at, rowid",
            args![],
            Post::from_row,
        )?;
        Ok(rows)
    }

    // ---- plugin kv ----

    /// The value under `key`; `None` when absent or expired.
    pub fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let stored: Option<Vec<u8>> =
            self.conn()?
                .row(KV_GET, args![key, self.clock.now_millis()], |r| r.get(0))?;
        stored.map(|v| self.open_value(key, v)).transpose()
    }

    /// When a key written now with `ttl_seconds` expires: 0 (never) for 0.
    fn expire_at(&self, ttl_seconds: u64) -> i64 {
        if ttl_seconds == 0 {
            return 0;
        }
        let ttl = i64::try_from(ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.clock.now_millis().saturating_add(ttl)
    }

    /// What is stored for a kv value: sealed, when the store has a key.
    fn seal_value(&self, key: &str, value: &[u8]) -> Vec<u8> {
        match &self.cipher {
            Some(cipher) => cipher.seal(key, value),
            None => value.to_vec(),
        }
    }

    fn open_value(&self, key: &str, stored: Vec<u8>) -> Result<Vec<u8>> {
        match &self.cipher {
            Some(cipher) => cipher.open(key, stored),
            None => Ok(stored),
        }
    }

    /// Writes a key that never expires (clearing an earlier expiry).
    pub fn kv_set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.kv_set_with_expiry(key, value, 0)
    }

    /// Writes a key that expires `ttl_seconds` from now (0: never).
    pub fn kv_set_with_expiry(&self, key: &str, value: &[u8], ttl_seconds: u64) -> Result<()> {
        let (key, value) = (key.to_string(), self.seal_value(key, value));
        let expire_at = self.expire_at(ttl_seconds);
        self.writer.write(move |c| {
            c.execute(KV_UPSERT, args![key, value, expire_at])?;
            Ok(())
        })
    }

    /// Many kv values in one transaction (seeding a plugin's store).
    pub fn kv_import(&self, entries: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.kv_import_with_expiry(entries, 0)
    }

    /// [`Store::kv_import`] of keys expiring `ttl_seconds` from now (0: never).
    pub fn kv_import_with_expiry(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_seconds: u64,
    ) -> Result<()> {
        let expire_at = self.expire_at(ttl_seconds);
        let sealed: Vec<(String, Vec<u8>)> = entries
            .into_iter()
            .map(|(key, value)| {
                let value = self.seal_value(&key, &value);
                (key, value)
            })
            .collect();
        self.writer.write(move |c| {
            for (key, value) in &sealed {
                c.execute(KV_UPSERT, args![key, value, expire_at])?;
            }
            Ok(())
        })
    }

    pub fn kv_delete(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.writer.write(move |c| {
            c.execute("DELETE FROM kv WHERE key = ?1", args![key])?;
            Ok(())
        })
    }

    pub fn kv_list(&self, prefix: &str, offset: u32, limit: u32) -> Result<Vec<String>> {
        let conn = self.conn()?;
        // A range of the primary key, bounded on both sides, so a listing
        // reads only the prefix's own keys however many others are stored
        // (LIKE would also treat `%` and `_` in a prefix as wildcards).
        let now = self.clock.now_millis();
        match prefix_successor(prefix) {
            Some(end) => conn.rows(KV_LIST, args![prefix, end, limit, offset, now], |r| {
                r.get(0)
            }),
            None => conn.rows(KV_LIST_TO_END, args![prefix, limit, offset, now], |r| {
                r.get(0)
            }),
        }
    }

    /// Writes `new` (a key that never expires) or deletes, for `None`, if
    /// the current value is `expected` (`None`: absent or expired).
    pub fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        self.kv_compare_and_set_with_expiry(key, expected, new, 0)
    }

    /// [`Store::kv_compare_and_set`] whose written value expires
    /// `ttl_seconds` from now (0: never).
    pub fn kv_compare_and_set_with_expiry(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_seconds: u64,
    ) -> Result<bool> {
        let (key, expected, new) = (
            key.to_string(),
            expected.map(<[u8]>::to_vec),
            new.map(|v| self.seal_value(key, v)),
        );
        let cipher = self.cipher.clone();
        let now = self.clock.now_millis();
        let expire_at = self.expire_at(ttl_seconds);
        // Read and write in one transaction. Sealed values differ at every
        // write, so the comparison is on the plaintext. On SQLite the writer
        // runs jobs one at a time, so nothing slips in between. On
        // PostgreSQL other writers (and nodes) run at once: the live row is
        // read locked, so a concurrent swap of it waits and then sees this
        // one's result; and "absent" is claimed by an insert that only
        // replaces an expired row, so of two racing creators one wins.
        self.writer.write(move |c| {
            let lock = match c.backend() {
                sql::Backend::Postgres => " FOR UPDATE",
                sql::Backend::Sqlite => "",
            };
            let stored: Option<Vec<u8>> =
                c.row(&format!("{KV_GET}{lock}"), args![key, now], |r| r.get(0))?;
            let current = match (stored, &cipher) {
                (Some(v), Some(cipher)) => Some(cipher.open(&key, v)?),
                (v, _) => v,
            };
            if current != expected {
                return Ok(false);
            }
            Ok(match (expected, new) {
                (None, Some(value)) => {
                    c.execute(KV_CREATE, args![key, value, expire_at, now])? == 1
                }
                (_, Some(value)) => c.execute(KV_UPSERT, args![key, value, expire_at])? == 1,
                (_, None) => {
                    c.execute("DELETE FROM kv WHERE key = ?1", args![key])?;
                    true
                }
            })
        })
    }

    /// Deletes at most `limit` keys expired at `now`, as one write: the
    /// writer serves the writes queued meanwhile before the caller's next
    /// batch. Returns how many it deleted.
    pub async fn kv_sweep_batch(&self, now: i64, limit: u32) -> Result<usize> {
        self.writer
            .write_async(move |c| c.execute(KV_SWEEP, args![now, limit]))
            .await
    }
}

/// Deletes at most ?2 keys expired at ?1 (ms), found through `kv_expiring`.
const KV_SWEEP: &str = "DELETE FROM kv WHERE rowid IN
     (SELECT rowid FROM kv WHERE expire_at > 0 AND expire_at <= ?1 LIMIT ?2)";

/// A live key's value: ?1 the key, ?2 now (ms).
const KV_GET: &str = "SELECT value FROM kv WHERE key = ?1 AND (expire_at = 0 OR expire_at > ?2)";

/// Writes ?1 = ?2, expiring at ?3 (0: never).
const KV_UPSERT: &str = "INSERT INTO kv (key, value, expire_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expire_at = excluded.expire_at";

/// Writes ?1 = ?2, expiring at ?3, only where the key is absent or expired
/// at ?4: changes one row, or none when a live value is there.
const KV_CREATE: &str = "INSERT INTO kv (key, value, expire_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expire_at = excluded.expire_at
     WHERE kv.expire_at > 0 AND kv.expire_at <= ?4";

/// A page of the live keys under a prefix: ?1 the prefix, ?2 its successor,
/// ?5 now (ms).
const KV_LIST: &str = "SELECT key FROM kv WHERE key >= ?1 AND key < ?2
                       AND (expire_at = 0 OR expire_at > ?5)
                       ORDER BY key LIMIT ?3 OFFSET ?4";

/// [`KV_LIST`] for a prefix with no successor (the empty one): ?1 the
/// prefix, ?2 limit, ?3 offset, ?4 now (ms).
const KV_LIST_TO_END: &str = "SELECT key FROM kv WHERE key >= ?1
                       AND (expire_at = 0 OR expire_at > ?4)
                       ORDER BY key LIMIT ?2 OFFSET ?3";

/// The least text above every text that starts with `prefix`: the prefix
/// with its last character replaced by the next one (characters at the top
/// of Unicode dropped first), or `None` (no bound) when there is none, as
/// for the empty prefix. Both backends compare keys by code point: SQLite's
/// text bytewise, PostgreSQL's `kv.key` with the "C" collation.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn insert_post_row(c: &Db, post: &Post) -> Result<()> {
    c.execute(
        "INSERT INTO posts (id, create_at, update_at, edit_at, delete_at, user_id, channel_id, root_id,
                            message, type, props, metadata, is_pinned)
         VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",args![
        post.id,
        post.create_at,
        post.update_at,
        post.user_id,
        post.channel_id,
        post.root_id,
        post.message,
        post.post_type,
        post.props,
        post.metadata,
        post.is_pinned
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_keeps_data_and_does_not_migrate_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let store = Store::open(&path).unwrap();
        let version = store.schema_version().unwrap();
        assert!(version >= 1);
        let team = store.create_team("t1", "Team").unwrap();
        store.kv_set("k", b"v").unwrap();
        drop(store);

        let again = Store::open(&path).unwrap();
        assert_eq!(again.schema_version().unwrap(), version);
        assert_eq!(again.team(&team.id).unwrap(), team);
        assert_eq!(again.kv_get("k").unwrap().as_deref(), Some(b"v".as_slice()));
    }

    #[test]
    fn kv_prefix_listing_is_a_bounded_range_of_the_key_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        for key in ["a", "a\u{10FFFF}z", "a\u{7f}", "a~", "b", "\u{e9}t\u{e9}"] {
            store.kv_set(key, b"x").unwrap();
        }
        assert_eq!(
            store.kv_list("a", 0, 10).unwrap(),
            ["a", "a~", "a\u{7f}", "a\u{10FFFF}z"]
        );
        assert_eq!(store.kv_list("", 0, 10).unwrap().len(), 6);
        assert_eq!(store.kv_list("\u{e9}", 0, 10).unwrap(), ["\u{e9}t\u{e9}"]);
        // Both ends bound the search, so a listing never walks the keys
        // past its prefix (outgoing hooks beside 100,000 incoming ones).
        let plan: String = store
            .conn()
            .unwrap()
            .one(
                &format!("EXPLAIN QUERY PLAN {KV_LIST}"),
                args!["a", prefix_successor("a"), 10, 0, 0],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("key>? AND key<?"), "{plan}");
    }

    #[test]
    fn kv_prefix_listing_treats_wildcards_literally_and_cas_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        for key in ["a_1", "a_2", "ab", "b"] {
            store.kv_set(key, b"x").unwrap();
        }
        assert_eq!(store.kv_list("a_", 0, 10).unwrap(), ["a_1", "a_2"]);
        assert_eq!(store.kv_list("a", 1, 1).unwrap(), ["a_2"]);
        assert!(
            !store
                .kv_compare_and_set("n", Some(b"x"), Some(b"y"))
                .unwrap()
        );
        assert!(store.kv_compare_and_set("n", None, Some(b"1")).unwrap());
        assert!(!store.kv_compare_and_set("n", None, Some(b"2")).unwrap());
        assert!(store.kv_compare_and_set("n", Some(b"1"), None).unwrap());
        assert_eq!(store.kv_get("n").unwrap(), None);
    }

    /// An expired key is absent to every read and to compare-and-set, before
    /// any sweep; `set` and `compare-and-set` clear an expiry.
    #[test]
    fn expired_kv_keys_read_as_absent_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::app::Clock::fixed(5_000_000);
        let mut store = Store::open_with_key(&dir.path().join("db"), "k").unwrap();
        store.set_clock(clock.clone());
        store.kv_set_with_expiry("e/short", b"1", 10).unwrap();
        store.kv_set_with_expiry("e/long", b"2", 100).unwrap();
        store.kv_set_with_expiry("e/never", b"3", 0).unwrap();
        store.kv_set_with_expiry("e/cleared", b"4", 10).unwrap();
        store.kv_set("e/cleared", b"5").unwrap();
        assert!(
            store
                .kv_compare_and_set_with_expiry("e/cas", None, Some(b"6"), 10)
                .unwrap()
        );
        store.kv_set_with_expiry("e/cas-cleared", b"7", 10).unwrap();
        assert!(
            store
                .kv_compare_and_set("e/cas-cleared", Some(b"7"), Some(b"8"))
                .unwrap()
        );
        let all = [
            "e/cas",
            "e/cas-cleared",
            "e/cleared",
            "e/long",
            "e/never",
            "e/short",
        ];
        assert_eq!(store.kv_list("e/", 0, 10).unwrap(), all);

        // One millisecond before ten seconds: all still there.
        clock.advance(std::time::Duration::from_millis(9_999));
        assert_eq!(store.kv_get("e/short").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.kv_list("e/", 0, 10).unwrap(), all);
        clock.advance(std::time::Duration::from_millis(1));
        assert_eq!(store.kv_get("e/short").unwrap(), None);
        assert_eq!(store.kv_get("e/cas").unwrap(), None);
        assert_eq!(store.kv_get("e/long").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(store.kv_get("e/never").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(
            store.kv_get("e/cleared").unwrap().as_deref(),
            Some(&b"5"[..])
        );
        assert_eq!(
            store.kv_get("e/cas-cleared").unwrap().as_deref(),
            Some(&b"8"[..])
        );
        assert_eq!(
            store.kv_list("e/", 0, 10).unwrap(),
            ["e/cas-cleared", "e/cleared", "e/long", "e/never"]
        );
        // Offsets count live keys only.
        assert_eq!(store.kv_list("e/", 1, 1).unwrap(), ["e/cleared"]);

        // Compare-and-set sees the expired value as absent.
        assert!(
            !store
                .kv_compare_and_set("e/short", Some(b"1"), Some(b"x"))
                .unwrap()
        );
        assert!(
            store
                .kv_compare_and_set_with_expiry("e/short", None, Some(b"9"), 5)
                .unwrap()
        );
        assert_eq!(store.kv_get("e/short").unwrap().as_deref(), Some(&b"9"[..]));
        clock.advance(std::time::Duration::from_secs(5));
        assert_eq!(store.kv_get("e/short").unwrap(), None);
        // Deleting an expired key (expected: absent) succeeds.
        assert!(store.kv_compare_and_set("e/short", None, None).unwrap());

        // A sweep batch reads only the expiring keys' index, never the table.
        let plan: Vec<String> = {
            store
                .conn()
                .unwrap()
                .rows(
                    &format!("EXPLAIN QUERY PLAN {KV_SWEEP}"),
                    args![0, 10],
                    |r| r.get(3),
                )
                .unwrap()
        };
        assert!(
            plan.iter().any(|step| step.contains("kv_expiring")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN kv")),
            "{plan:?}"
        );
    }

    /// A data directory from before encryption at rest: its kv values and
    /// tokens in the clear. Opening it with a key seals the values and
    /// replaces the tokens by digests; both still read back.
    #[test]
    fn plaintext_kv_values_and_tokens_are_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let store = Store::open(&path).unwrap();
        let user = User {
            id: new_id(),
            username: "u".into(),
            roles: "system_user".into(),
            ..User::default()
        };
        store.create_user(&user, "!").unwrap();
        store.kv_set("hook/1", b"{\"token\":\"s3cr3t\"}").unwrap();
        drop(store);
        // A token as an older shim stored it: the token itself.
        let raw = Connection::open(&path).unwrap();
        raw.execute(
            "INSERT INTO tokens (token, user_id, kind, description, create_at) VALUES ('plaintexttoken', ?1, 'pat', '', 0)",
            [&user.id])
        .unwrap();
        drop(raw);

        let store = Store::open_with_key(&path, "the key").unwrap();
        assert_eq!(
            store.kv_get("hook/1").unwrap().as_deref(),
            Some(b"{\"token\":\"s3cr3t\"}".as_slice())
        );
        assert_eq!(
            store
                .user_for_token("plaintexttoken")
                .unwrap()
                .map(|o| o.user_id),
            Some(user.id.clone())
        );
        let (value, tokens): (Vec<u8>, Vec<String>) = {
            let conn = store.conn().unwrap();
            let value = conn
                .one("SELECT value FROM kv WHERE key = 'hook/1'", args![], |r| {
                    r.get(0)
                })
                .unwrap();
            let tokens = conn
                .rows("SELECT token FROM tokens", args![], |r| r.get(0))
                .unwrap();
            (value, tokens)
        };
        assert!(secrets::is_sealed(&value));
        assert!(!value.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(tokens, [secrets::token_digest("plaintexttoken")]);

        // Compare-and-set compares plaintexts, although every seal differs.
        assert!(
            store
                .kv_compare_and_set("hook/1", Some(b"{\"token\":\"s3cr3t\"}"), Some(b"2"))
                .unwrap()
        );
        assert!(
            !store
                .kv_compare_and_set("hook/1", Some(b"1"), None)
                .unwrap()
        );
        assert_eq!(
            store.kv_get("hook/1").unwrap().as_deref(),
            Some(b"2".as_slice())
        );
        drop(store);
        // Another key cannot read the values.
        let wrong = Store::open_with_key(&path, "another key").unwrap();
        assert!(wrong.kv_get("hook/1").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let store = Store::open_with_key(&path, "k").unwrap();
        store.kv_set("k", b"v").unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("switchboard.db{suffix}"));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }

    #[test]
    fn direct_channels_are_created_once_for_either_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let user = |name: &str| {
            let u = User {
                id: new_id(),
                username: name.into(),
                roles: "system_user".into(),
                ..User::default()
            };
            store.create_user(&u, "!").unwrap();
            u
        };
        let (a, b) = (user("a"), user("b"));
        let first = store.direct_channel(&a.id, &b.id).unwrap();
        let second = store.direct_channel(&b.id, &a.id).unwrap();
        assert_eq!(first.id, second.id);
        assert!(store.is_channel_member(&first.id, &a.id).unwrap());
        assert!(store.is_channel_member(&first.id, &b.id).unwrap());
    }
}
