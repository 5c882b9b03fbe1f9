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
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let done: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
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
