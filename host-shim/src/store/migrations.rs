//! Ordered schema migrations. Each runs once, in a transaction, and is
//! recorded; an upgraded shim applies only the ones a data directory lacks.

use rusqlite::Connection;

/// Append only: released migrations are never edited.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE teams (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
        create_at INTEGER NOT NULL, delete_at INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE users (
        id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL,
        password_hash TEXT NOT NULL, nickname TEXT NOT NULL DEFAULT '',
        first_name TEXT NOT NULL DEFAULT '', last_name TEXT NOT NULL DEFAULT '',
        roles TEXT NOT NULL, is_bot INTEGER NOT NULL DEFAULT 0,
        create_at INTEGER NOT NULL, update_at INTEGER NOT NULL, delete_at INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE team_members (
        team_id TEXT NOT NULL REFERENCES teams(id), user_id TEXT NOT NULL REFERENCES users(id),
        roles TEXT NOT NULL, PRIMARY KEY (team_id, user_id));
     CREATE TABLE channels (
        id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT NOT NULL, display_name TEXT NOT NULL,
        type TEXT NOT NULL, header TEXT NOT NULL DEFAULT '', purpose TEXT NOT NULL DEFAULT '',
        creator_id TEXT NOT NULL, create_at INTEGER NOT NULL, update_at INTEGER NOT NULL,
        delete_at INTEGER NOT NULL DEFAULT 0, UNIQUE (team_id, name));
     CREATE TABLE channel_members (
        channel_id TEXT NOT NULL REFERENCES channels(id), user_id TEXT NOT NULL REFERENCES users(id),
        roles TEXT NOT NULL, PRIMARY KEY (channel_id, user_id));
     CREATE TABLE posts (
        id TEXT PRIMARY KEY, create_at INTEGER NOT NULL, update_at INTEGER NOT NULL,
        edit_at INTEGER NOT NULL DEFAULT 0, delete_at INTEGER NOT NULL DEFAULT 0,
        user_id TEXT NOT NULL, channel_id TEXT NOT NULL REFERENCES channels(id),
        root_id TEXT NOT NULL DEFAULT '', message TEXT NOT NULL, type TEXT NOT NULL DEFAULT '',
        props TEXT NOT NULL DEFAULT '{}', metadata TEXT NOT NULL DEFAULT '{}',
        is_pinned INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX posts_by_channel ON posts (channel_id, create_at);
     CREATE TABLE tokens (
        token TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), kind TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '', create_at INTEGER NOT NULL);
     CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
    // bots: the bot half of a bot account; the user row (users.is_bot = 1)
    // is the other half and shares the id.
    "CREATE TABLE bots (
        user_id TEXT PRIMARY KEY REFERENCES users(id), description TEXT NOT NULL DEFAULT '',
        owner_id TEXT NOT NULL, last_icon_update INTEGER NOT NULL DEFAULT 0,
        create_at INTEGER NOT NULL, update_at INTEGER NOT NULL, delete_at INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX bots_by_owner ON bots (owner_id);",
    // oauth: the OAuth 2.0 provider's apps, codes, tokens (hashed) and consents.
    "CREATE TABLE oauth_apps (
        id TEXT PRIMARY KEY, creator_id TEXT NOT NULL, create_at INTEGER NOT NULL,
        update_at INTEGER NOT NULL, client_secret TEXT NOT NULL, name TEXT NOT NULL,
        description TEXT NOT NULL, icon_url TEXT NOT NULL, callback_urls TEXT NOT NULL,
        homepage TEXT NOT NULL, is_trusted INTEGER NOT NULL, mattermost_app_id TEXT NOT NULL);
     CREATE TABLE oauth_codes (
        code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL, state TEXT NOT NULL, scope TEXT NOT NULL,
        code_challenge TEXT NOT NULL, code_challenge_method TEXT NOT NULL, resource TEXT NOT NULL,
        create_at INTEGER NOT NULL);
     CREATE TABLE oauth_access (
        token_hash TEXT PRIMARY KEY, refresh_hash TEXT NOT NULL, client_id TEXT NOT NULL,
        user_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, expires_at INTEGER NOT NULL,
        scope TEXT NOT NULL, audience TEXT NOT NULL);
     CREATE INDEX oauth_access_by_refresh ON oauth_access (refresh_hash);
     CREATE INDEX oauth_access_by_user ON oauth_access (user_id, client_id);
     CREATE TABLE oauth_consents (
        user_id TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
        PRIMARY KEY (user_id, client_id));",
    // clients (issue 10): channel moderation, a channel's override of a
    // moderated permission (create_post, …) for its members or guests.
    "CREATE TABLE channel_moderations (
        channel_id TEXT NOT NULL REFERENCES channels(id), role TEXT NOT NULL,
        permission TEXT NOT NULL, allowed INTEGER NOT NULL,
        PRIMARY KEY (channel_id, role, permission));
     CREATE INDEX posts_by_root ON posts (root_id, create_at);",
    // deliveries (issue 17): durable outbound jobs. `state` is pending (an
    // attempt is due at `next_at`), settled (the last outcome is stored and
    // the plugin's `on-result` is owed) or done. A lease (`lease_owner`,
    // `lease_until`) lets one process of several sharing the file work a job.
    // `secrets` is written only through `store::deliveries::{seal, open}`.
    "CREATE TABLE deliveries (
        id TEXT PRIMARY KEY, grp TEXT NOT NULL, request TEXT NOT NULL, body BLOB NOT NULL,
        secrets TEXT NOT NULL, continuation BLOB NOT NULL,
        max_attempts INTEGER NOT NULL, deadline INTEGER NOT NULL,
        state TEXT NOT NULL, attempts TEXT NOT NULL DEFAULT '[]',
        outcome TEXT NOT NULL DEFAULT '', outcome_body BLOB NOT NULL DEFAULT x'',
        next_at INTEGER NOT NULL, lease_owner TEXT NOT NULL DEFAULT '',
        lease_until INTEGER NOT NULL DEFAULT 0, redelivery_of TEXT NOT NULL DEFAULT '',
        create_at INTEGER NOT NULL);
     CREATE INDEX deliveries_due ON deliveries (state, next_at);
     CREATE INDEX deliveries_by_group ON deliveries (grp, create_at);",
    // outgoing oauth connections (issue 13): credentials for the tokens the
    // host attaches to integrations' requests. `secrets` (client secret and
    // password) is sealed with the at-rest key; audiences are a JSON list.
    // Also marks OAuth apps that registered themselves (RFC 7591).
    "CREATE TABLE outgoing_oauth_connections (
        id TEXT PRIMARY KEY, creator_id TEXT NOT NULL, create_at INTEGER NOT NULL,
        update_at INTEGER NOT NULL, name TEXT NOT NULL, client_id TEXT NOT NULL,
        secrets BLOB NOT NULL, credentials_username TEXT, oauth_token_url TEXT NOT NULL,
        grant_type TEXT NOT NULL, audiences TEXT NOT NULL);
     ALTER TABLE oauth_apps ADD COLUMN is_dynamically_registered INTEGER NOT NULL DEFAULT 0;",
    // metric_series (issue 22): the plugin's per-integration counters (the `metrics`
    // import), flushed from memory every few seconds so they survive a restart.
    "CREATE TABLE metric_series (
        key TEXT PRIMARY KEY, requests INTEGER NOT NULL, failures INTEGER NOT NULL,
        posts INTEGER NOT NULL, last_at INTEGER NOT NULL, histogram BLOB NOT NULL);",
    // posts since (issue 22): `?since=` reads a channel's posts by update time.
    "CREATE INDEX posts_by_channel_update ON posts (channel_id, update_at);",
    // token management (issue 22): a token gets an id, what the API names it
    // by (the token itself is kept only as a digest), and can be disabled.
    // Existing tokens get random 26-character ids.
    "ALTER TABLE tokens ADD COLUMN id TEXT NOT NULL DEFAULT '';
     ALTER TABLE tokens ADD COLUMN is_active INTEGER NOT NULL DEFAULT 1;
     UPDATE tokens SET id = lower(hex(randomblob(13))) WHERE id = '';
     CREATE UNIQUE INDEX tokens_by_id ON tokens (id);
     CREATE INDEX tokens_by_user ON tokens (user_id, kind);",
    // reactions (issue 22): emoji reactions to posts, one row per user,
    // post and emoji. A reaction also bumps its post's update_at.
    "CREATE TABLE reactions (
        post_id TEXT NOT NULL, user_id TEXT NOT NULL, emoji_name TEXT NOT NULL,
        channel_id TEXT NOT NULL, create_at INTEGER NOT NULL,
        PRIMARY KEY (post_id, user_id, emoji_name));",
    // kv expiry (issue 22): `expire_at` in ms since the epoch, 0 for never.
    // An expired key reads as absent; the sweeper (`store::kv_sweep`) finds
    // them through the partial index, which holds only keys that expire.
    "ALTER TABLE kv ADD COLUMN expire_at INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX kv_expiring ON kv (expire_at) WHERE expire_at > 0;",
    // deliveries whose result the plugin keeps failing on (issue 22): the
    // failures are counted, and past `DeliverySettings.MaxCallbackFailures`
    // the job is done with the reason in `parked_error`.
    "ALTER TABLE deliveries ADD COLUMN callback_failures INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE deliveries ADD COLUMN parked_error TEXT NOT NULL DEFAULT '';",
    // the post hook's outbox (issue 22): a post that runs the plugin's post
    // hook (outgoing webhooks) owes it from the transaction that stores it
    // until the hook returned (`store::outbox`).
    "CREATE TABLE post_hook_outbox (
        post_id TEXT PRIMARY KEY, create_at INTEGER NOT NULL);",
    // releases (issue 26): Mattermost's `Systems` name/value table; `LastRelease`
    // is the release that last opened the data, so an older one refuses it.
    "CREATE TABLE systems (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // failed sign-ins in a row (issue 26, Mattermost's Users.FailedAttempts):
    // at `ServiceSettings.MaximumLoginAttempts` the account is locked until
    // a success before it, or a password update, sets it back to 0.
    "ALTER TABLE users ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;",
    // transform components (issue 25): the uploaded `.wasm` in the database,
    // not a file, so every node of a future cluster has it (`store::transforms`).
    "CREATE TABLE transforms (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,
        sha256 TEXT NOT NULL, create_at INTEGER NOT NULL, creator_id TEXT NOT NULL,
        component BLOB NOT NULL);",
    // the cluster bus (issue 23): events a change's transaction writes for the
    // other nodes, and Mattermost's database config (`Configurations`), at
    // most one row active. Both stay empty on SQLite; they are here so both
    // backends' histories keep the same version numbers.
    "CREATE TABLE cluster_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL,
        node TEXT NOT NULL, create_at INTEGER NOT NULL);
     CREATE INDEX cluster_events_by_create_at ON cluster_events (create_at);
     CREATE TABLE configurations (
        id TEXT PRIMARY KEY, value TEXT NOT NULL, create_at INTEGER NOT NULL, active INTEGER);
     CREATE UNIQUE INDEX configurations_one_active ON configurations (active) WHERE active = 1;",
];

/// The release this binary is (the workspace's version).
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

/// The schema version this binary brings a database to.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Refuses a database written by a newer release, before anything opens it
/// for writing: its schema version is above [`latest_version`], or the
/// release it records is newer than `release`. A missing file is fine.
pub fn refuse_newer(path: &std::path::Path, release: &str) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let schema: i64 = if has("schema_migrations")? {
        conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?
    } else {
        0
    };
    let recorded: Option<String> = if has("systems")? {
        conn.query_row(
            "SELECT value FROM systems WHERE name = 'LastRelease'",
            [],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?
    } else {
        None
    };
    refuse_if_newer(
        &path.display().to_string(),
        schema,
        recorded.as_deref(),
        release,
    )
}

/// The refusal [`refuse_newer`] makes, for a database at schema `schema`
/// whose last release was `recorded` (SQLite's file or PostgreSQL's
/// database, named by `place`).
pub fn refuse_if_newer(
    place: &str,
    schema: i64,
    recorded: Option<&str>,
    release: &str,
) -> anyhow::Result<()> {
    let newer_release = recorded.is_some_and(|theirs| !release_at_most(theirs, release));
    if schema > latest_version() || newer_release {
        let theirs = recorded.unwrap_or("a newer release");
        anyhow::bail!(
            "{place} was written by Switchboard {theirs} (database schema {schema}); this is \
             Switchboard {release} (database schema {}), which does not open it: run \
             {theirs} or newer, or restore the backup taken before the upgrade",
            latest_version()
        );
    }
    Ok(())
}

/// Whether release `a` is `b` or older, comparing the numeric parts of
/// `major.minor.patch` (a pre-release suffix after `-` is ignored). A version
/// that does not parse counts as newer: it cannot be shown to be older.
fn release_at_most(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Option<Vec<u64>> {
        v.split('-')
            .next()?
            .split('.')
            .map(|p| p.parse().ok())
            .collect()
    };
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a <= b,
        _ => false,
    }
}

/// Records `release` as the last to open the database (after [`migrate`]).
pub fn record_release(db: &super::sql::Db, release: &str) -> super::Result<()> {
    db.execute(
        "INSERT INTO systems (name, value) VALUES ('LastRelease', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        crate::args![release],
    )?;
    Ok(())
}

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Applies the migrations a database lacks up to version `to`: what an
/// earlier release did (the upgrade tests build every earlier schema).
pub fn migrate_to(conn: &mut Connection, to: usize) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let done: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (index, sql) in MIGRATIONS[..to].iter().enumerate() {
        let version = index as i64 + 1;
        if version <= done {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, super::now_millis()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens stored before they had ids get distinct, id-shaped ones and
    /// stay active.
    #[test]
    fn existing_tokens_get_ids_when_tokens_gain_them() {
        let mut conn = Connection::open_in_memory().unwrap();
        let at = MIGRATIONS
            .iter()
            .position(|m| m.contains("ALTER TABLE tokens ADD COLUMN id"))
            .unwrap();
        for sql in &MIGRATIONS[..at] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(&format!(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES ({at}, 0);
             INSERT INTO users (id, username, email, password_hash, roles, create_at, update_at)
                 VALUES ('u1', 'old', 'old@example.com', '!', 'system_user', 0, 0);
             INSERT INTO tokens (token, user_id, kind, create_at) VALUES ('d1', 'u1', 'pat', 0), ('d2', 'u1', 'session', 0);"
        ))
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(String, bool)> = conn
            .prepare("SELECT id, is_active FROM tokens ORDER BY token")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter()
                .all(|(id, active)| crate::store::valid_id(id) && *active)
        );
        assert_ne!(rows[0].0, rows[1].0);
    }

    /// A database left at every earlier schema version (what each earlier
    /// release wrote) is brought to the latest in one open, keeping its rows,
    /// and records this release.
    #[test]
    fn a_database_at_every_earlier_schema_version_upgrades_in_one_open() {
        for version in 0..MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("switchboard.db");
            {
                let mut conn = Connection::open(&path).unwrap();
                migrate_to(&mut conn, version).unwrap();
                if version >= 1 {
                    // Rows of the initial schema, written as release 0.1.0 did.
                    conn.execute_batch(
                        "INSERT INTO teams (id, name, display_name, create_at) VALUES ('t1', 'old-team', 'Old', 0);
                         INSERT INTO users (id, username, email, password_hash, roles, create_at, update_at)
                             VALUES ('u1', 'old', 'old@example.com', '!', 'system_user', 0, 0);
                         INSERT INTO channels (id, team_id, name, display_name, type, creator_id, create_at, update_at)
                             VALUES ('c1', 't1', 'old-channel', 'Old', 'O', 'u1', 0, 0);
                         INSERT INTO posts (id, create_at, update_at, user_id, channel_id, message)
                             VALUES ('p1', 1, 1, 'u1', 'c1', 'kept across upgrades');
                         INSERT INTO kv (key, value) VALUES ('old-key', x'01');",
                    )
                    .unwrap();
                }
            }
            let store = crate::store::Store::open_with_key(&path, "upgrade-test-key").unwrap();
            assert_eq!(
                store.schema_version().unwrap(),
                latest_version(),
                "from {version}"
            );
            if version >= 1 {
                assert_eq!(store.post("p1").unwrap().message, "kept across upgrades");
                assert_eq!(store.user_by_username("old").unwrap().id, "u1");
                assert_eq!(store.kv_get("old-key").unwrap(), Some(vec![1]));
            }
            drop(store);
            let conn = Connection::open(&path).unwrap();
            let recorded: String = conn
                .query_row(
                    "SELECT value FROM systems WHERE name = 'LastRelease'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(recorded, RELEASE);
        }
    }

    fn database_of(path: &std::path::Path, schema: i64, release: Option<&str>) {
        let mut conn = Connection::open(path).unwrap();
        migrate(&mut conn).unwrap();
        if let Some(release) = release {
            record_release(&crate::store::sql::Db::Sqlite(&conn), release).unwrap();
        }
        conn.execute(
            "INSERT OR IGNORE INTO schema_migrations VALUES (?1, 0)",
            [schema],
        )
        .unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused_naming_both_versions_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let newer = latest_version() + 3;
        database_of(&path, newer, Some("0.4.0"));
        let before = std::fs::read(&path).unwrap();
        let err = crate::store::Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("Switchboard 0.4.0"), "{err}");
        assert!(err.contains(&format!("database schema {newer}")), "{err}");
        assert!(err.contains(&format!("Switchboard {RELEASE}")), "{err}");
        assert!(
            err.contains(&format!("database schema {}", latest_version())),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // Without a recorded release, the schema alone tells.
        let path = dir.path().join("unnamed.db");
        database_of(&path, newer, None);
        let err = refuse_newer(&path, RELEASE).unwrap_err().to_string();
        assert!(err.contains("a newer release"), "{err}");
    }

    #[test]
    fn a_newer_release_with_the_same_schema_is_refused_and_an_older_one_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        database_of(&path, latest_version(), Some("0.1.0"));
        assert!(refuse_newer(&path, "0.1.0").is_ok());
        assert!(refuse_newer(&path, "0.2.0").is_ok());
        let err = refuse_newer(&path, "0.0.9").unwrap_err().to_string();
        assert!(err.contains("written by Switchboard 0.1.0"), "{err}");
        assert!(err.contains("this is Switchboard 0.0.9"), "{err}");
        assert!(release_at_most("0.9.0", "0.10.0"));
        assert!(release_at_most("1.2.3-rc1", "1.2.3"));
        assert!(!release_at_most("2.0.0", "1.9.9"));
        assert!(!release_at_most("next", "1.0.0"));
        // A new file is not refused.
        assert!(refuse_newer(&dir.path().join("none.db"), RELEASE).is_ok());
    }
}
