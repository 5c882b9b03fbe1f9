//! The PostgreSQL schema history: entry *i* leaves the same tables, columns
//! (in the same order), defaults, keys and indexes as entry *i* of the SQLite
//! history (`store/migrations.rs`), so both backends share version numbers.
//!
//! Types follow one rule the neutral layer (`store/sql.rs`) relies on: every
//! SQLite INTEGER (booleans included, 0/1) is `BIGINT`, TEXT stays `TEXT`,
//! BLOB is `BYTEA`. SQLite's implicit `rowid`, which the store orders and
//! deletes by, is a real column on PostgreSQL: `rowid BIGINT GENERATED ALWAYS
//! AS IDENTITY`, the last column of each table that has one when the table is
//! created (posts, tokens, kv, oauth_access, reactions); columns added later
//! come after it, which is why no INSERT may rely on column order.
//! `schema_migrations` is created by the runner, not here. The kv table's
//! keys compare by code point (`COLLATE "C"`), as SQLite's text does: prefix
//! listings are ranges over them.
//!
//! Steps that are Rust code on SQLite: `secrets::seal_legacy_values` (run on
//! every open, not a migration) replaces tokens stored in plain by digests
//! and seals plaintext kv values. A PostgreSQL database is only ever written
//! by releases that store digests and sealed values (or filled by
//! `--copy-database-to` from a store opened, and so sealed, first), so it
//! never holds either. Tokens gaining ids (entry 9) is SQL on both.

/// Append only: released migrations are never edited.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE teams (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
        create_at BIGINT NOT NULL, delete_at BIGINT NOT NULL DEFAULT 0);
     CREATE TABLE users (
        id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL,
        password_hash TEXT NOT NULL, nickname TEXT NOT NULL DEFAULT '',
        first_name TEXT NOT NULL DEFAULT '', last_name TEXT NOT NULL DEFAULT '',
        roles TEXT NOT NULL, is_bot BIGINT NOT NULL DEFAULT 0,
        create_at BIGINT NOT NULL, update_at BIGINT NOT NULL, delete_at BIGINT NOT NULL DEFAULT 0);
     CREATE TABLE team_members (
        team_id TEXT NOT NULL REFERENCES teams(id), user_id TEXT NOT NULL REFERENCES users(id),
        roles TEXT NOT NULL, PRIMARY KEY (team_id, user_id));
     CREATE TABLE channels (
        id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT NOT NULL, display_name TEXT NOT NULL,
        type TEXT NOT NULL, header TEXT NOT NULL DEFAULT '', purpose TEXT NOT NULL DEFAULT '',
        creator_id TEXT NOT NULL, create_at BIGINT NOT NULL, update_at BIGINT NOT NULL,
        delete_at BIGINT NOT NULL DEFAULT 0, UNIQUE (team_id, name));
     CREATE TABLE channel_members (
        channel_id TEXT NOT NULL REFERENCES channels(id), user_id TEXT NOT NULL REFERENCES users(id),
        roles TEXT NOT NULL, PRIMARY KEY (channel_id, user_id));
     CREATE TABLE posts (
        id TEXT PRIMARY KEY, create_at BIGINT NOT NULL, update_at BIGINT NOT NULL,
        edit_at BIGINT NOT NULL DEFAULT 0, delete_at BIGINT NOT NULL DEFAULT 0,
        user_id TEXT NOT NULL, channel_id TEXT NOT NULL REFERENCES channels(id),
        root_id TEXT NOT NULL DEFAULT '', message TEXT NOT NULL, type TEXT NOT NULL DEFAULT '',
        props TEXT NOT NULL DEFAULT '{}', metadata TEXT NOT NULL DEFAULT '{}',
        is_pinned BIGINT NOT NULL DEFAULT 0,
        rowid BIGINT GENERATED ALWAYS AS IDENTITY);
     CREATE INDEX posts_by_channel ON posts (channel_id, create_at);
     CREATE TABLE tokens (
        token TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), kind TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '', create_at BIGINT NOT NULL,
        rowid BIGINT GENERATED ALWAYS AS IDENTITY);
     CREATE TABLE kv (
        key TEXT COLLATE \"C\" PRIMARY KEY, value BYTEA NOT NULL,
        rowid BIGINT GENERATED ALWAYS AS IDENTITY);",
    // 2: bots, the bot half of a bot account (the user row is the other half).
    "CREATE TABLE bots (
        user_id TEXT PRIMARY KEY REFERENCES users(id), description TEXT NOT NULL DEFAULT '',
        owner_id TEXT NOT NULL, last_icon_update BIGINT NOT NULL DEFAULT 0,
        create_at BIGINT NOT NULL, update_at BIGINT NOT NULL, delete_at BIGINT NOT NULL DEFAULT 0);
     CREATE INDEX bots_by_owner ON bots (owner_id);",
    // 3: the OAuth 2.0 provider's apps, codes, tokens (hashed) and consents.
    "CREATE TABLE oauth_apps (
        id TEXT PRIMARY KEY, creator_id TEXT NOT NULL, create_at BIGINT NOT NULL,
        update_at BIGINT NOT NULL, client_secret TEXT NOT NULL, name TEXT NOT NULL,
        description TEXT NOT NULL, icon_url TEXT NOT NULL, callback_urls TEXT NOT NULL,
        homepage TEXT NOT NULL, is_trusted BIGINT NOT NULL, mattermost_app_id TEXT NOT NULL);
     CREATE TABLE oauth_codes (
        code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL, state TEXT NOT NULL, scope TEXT NOT NULL,
        code_challenge TEXT NOT NULL, code_challenge_method TEXT NOT NULL, resource TEXT NOT NULL,
        create_at BIGINT NOT NULL);
     CREATE TABLE oauth_access (
        token_hash TEXT PRIMARY KEY, refresh_hash TEXT NOT NULL, client_id TEXT NOT NULL,
        user_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, expires_at BIGINT NOT NULL,
        scope TEXT NOT NULL, audience TEXT NOT NULL,
        rowid BIGINT GENERATED ALWAYS AS IDENTITY);
     CREATE INDEX oauth_access_by_refresh ON oauth_access (refresh_hash);
     CREATE INDEX oauth_access_by_user ON oauth_access (user_id, client_id);
     CREATE TABLE oauth_consents (
        user_id TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
        PRIMARY KEY (user_id, client_id));",
    // 4: channel moderation, and replies by thread.
    "CREATE TABLE channel_moderations (
        channel_id TEXT NOT NULL REFERENCES channels(id), role TEXT NOT NULL,
        permission TEXT NOT NULL, allowed BIGINT NOT NULL,
        PRIMARY KEY (channel_id, role, permission));
     CREATE INDEX posts_by_root ON posts (root_id, create_at);",
    // 5: deliveries, durable outbound jobs (see the SQLite entry for states).
    "CREATE TABLE deliveries (
        id TEXT PRIMARY KEY, grp TEXT NOT NULL, request TEXT NOT NULL, body BYTEA NOT NULL,
        secrets TEXT NOT NULL, continuation BYTEA NOT NULL,
        max_attempts BIGINT NOT NULL, deadline BIGINT NOT NULL,
        state TEXT NOT NULL, attempts TEXT NOT NULL DEFAULT '[]',
        outcome TEXT NOT NULL DEFAULT '', outcome_body BYTEA NOT NULL DEFAULT ''::bytea,
        next_at BIGINT NOT NULL, lease_owner TEXT NOT NULL DEFAULT '',
        lease_until BIGINT NOT NULL DEFAULT 0, redelivery_of TEXT NOT NULL DEFAULT '',
        create_at BIGINT NOT NULL);
     CREATE INDEX deliveries_due ON deliveries (state, next_at);
     CREATE INDEX deliveries_by_group ON deliveries (grp, create_at);",
    // 6: outgoing OAuth connections; OAuth apps that registered themselves.
    "CREATE TABLE outgoing_oauth_connections (
        id TEXT PRIMARY KEY, creator_id TEXT NOT NULL, create_at BIGINT NOT NULL,
        update_at BIGINT NOT NULL, name TEXT NOT NULL, client_id TEXT NOT NULL,
        secrets BYTEA NOT NULL, credentials_username TEXT, oauth_token_url TEXT NOT NULL,
        grant_type TEXT NOT NULL, audiences TEXT NOT NULL);
     ALTER TABLE oauth_apps ADD COLUMN is_dynamically_registered BIGINT NOT NULL DEFAULT 0;",
    // 7: the plugin's per-integration counters.
    "CREATE TABLE metric_series (
        key TEXT PRIMARY KEY, requests BIGINT NOT NULL, failures BIGINT NOT NULL,
        posts BIGINT NOT NULL, last_at BIGINT NOT NULL, histogram BYTEA NOT NULL);",
    // 8: a channel's posts by update time.
    "CREATE INDEX posts_by_channel_update ON posts (channel_id, update_at);",
    // 9: tokens gain ids and can be disabled. Existing tokens get random
    // 26-character ids, lower-case hex as SQLite's `lower(hex(randomblob(13)))`
    // (`gen_random_uuid` is built in since PostgreSQL 13; its md5 spreads the
    // randomness over every character).
    "ALTER TABLE tokens ADD COLUMN id TEXT NOT NULL DEFAULT '';
     ALTER TABLE tokens ADD COLUMN is_active BIGINT NOT NULL DEFAULT 1;
     UPDATE tokens SET id = substr(md5(gen_random_uuid()::text), 1, 26) WHERE id = '';
     CREATE UNIQUE INDEX tokens_by_id ON tokens (id);
     CREATE INDEX tokens_by_user ON tokens (user_id, kind);",
    // 10: emoji reactions to posts.
    "CREATE TABLE reactions (
        post_id TEXT NOT NULL, user_id TEXT NOT NULL, emoji_name TEXT NOT NULL,
        channel_id TEXT NOT NULL, create_at BIGINT NOT NULL,
        rowid BIGINT GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (post_id, user_id, emoji_name));",
    // 11: kv expiry; the partial index holds only keys that expire.
    "ALTER TABLE kv ADD COLUMN expire_at BIGINT NOT NULL DEFAULT 0;
     CREATE INDEX kv_expiring ON kv (expire_at) WHERE expire_at > 0;",
    // 12: deliveries whose result the plugin keeps failing on.
    "ALTER TABLE deliveries ADD COLUMN callback_failures BIGINT NOT NULL DEFAULT 0;
     ALTER TABLE deliveries ADD COLUMN parked_error TEXT NOT NULL DEFAULT '';",
    // 13: the post hook's outbox.
    "CREATE TABLE post_hook_outbox (
        post_id TEXT PRIMARY KEY, create_at BIGINT NOT NULL);",
    // 14: Mattermost's `Systems` name/value table (`LastRelease`).
    "CREATE TABLE systems (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 15: failed sign-ins in a row.
    "ALTER TABLE users ADD COLUMN failed_attempts BIGINT NOT NULL DEFAULT 0;",
    // 16: transform components, stored in the database.
    "CREATE TABLE transforms (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, size BIGINT NOT NULL,
        sha256 TEXT NOT NULL, create_at BIGINT NOT NULL, creator_id TEXT NOT NULL,
        component BYTEA NOT NULL);",
    // 17: the cluster bus's events (a change's transaction writes one; NOTIFY
    // carries its id) and Mattermost's database config (`Configurations`), of
    // which at most one row is active.
    "CREATE TABLE cluster_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL,
        payload TEXT NOT NULL, node TEXT NOT NULL, create_at BIGINT NOT NULL);
     CREATE INDEX cluster_events_by_create_at ON cluster_events (create_at);
     CREATE TABLE configurations (
        id TEXT PRIMARY KEY, value TEXT NOT NULL, create_at BIGINT NOT NULL, active BIGINT);
     CREATE UNIQUE INDEX configurations_one_active ON configurations (active) WHERE active = 1;",
];
