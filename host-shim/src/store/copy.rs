//! `host-shim --copy-database-to`: moves an SQLite installation into an
//! empty PostgreSQL database, every table in one transaction, rows as stored.
//!
//! Rows are not re-encoded: kv values and outgoing OAuth secrets stay sealed
//! under `AtRestEncryptKey` (which the nodes must share with the SQLite
//! installation), tokens and OAuth codes stay digests. SQLite's implicit
//! `rowid` goes to the real `rowid` column PostgreSQL has where the store
//! orders or deletes by it, and that column's identity sequence is moved past
//! the highest value copied.

use super::migrations::RELEASE;
use super::postgres::Postgres;
use super::sql::{Db, Row, Value};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Every table copied, parents before children: team and channel
/// memberships after teams, users and channels, posts and moderations after
/// channels, tokens and bots after users (the foreign keys the schema has).
pub const TABLES: &[&str] = &[
    "teams",
    "users",
    "team_members",
    "channels",
    "channel_members",
    "posts",
    "tokens",
    "kv",
    "bots",
    "oauth_apps",
    "oauth_codes",
    "oauth_access",
    "oauth_consents",
    "channel_moderations",
    "deliveries",
    "outgoing_oauth_connections",
    "metric_series",
    "reactions",
    "post_hook_outbox",
    "systems",
    "transforms",
    "configurations",
];

/// Tables left behind: the target keeps its own schema history, and the
/// cluster's bus events are the nodes' (SQLite never writes any).
pub const NOT_COPIED: &[&str] = &["schema_migrations", "cluster_events"];

/// Rows sent in one INSERT: fewer round trips, well under PostgreSQL's
/// 65535 parameters a statement.
const ROWS_PER_INSERT: usize = 200;

/// How many rows one table had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub table: &'static str,
    pub rows: u64,
}

/// Copies the SQLite database at `sqlite` (brought to this release's schema
/// and sealed under `at_rest_key` first, as a start would) into the
/// PostgreSQL database `data_source` names, which is migrated to the latest
/// schema. A target that already holds a user is refused before anything is
/// written to it; a failure midway rolls the copy back. Errors never carry
/// the data source (it may hold a password).
pub fn copy_to_postgres(
    sqlite: &Path,
    at_rest_key: &str,
    data_source: &str,
) -> anyhow::Result<Vec<Copied>> {
    if !sqlite.is_file() {
        anyhow::bail!("there is no SQLite database at {}", sqlite.display());
    }
    // The same upgrade (and sealing of values from before sealing) a start
    // does, so the source is at the schema the target gets.
    drop(super::Store::open_with_key(sqlite, at_rest_key)?);
    let source = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // One read transaction: a consistent snapshot, whatever else reads it.
    source.execute_batch("BEGIN")?;
    refuse_unknown_tables(&source)?;

    let pg = Postgres::connect(data_source, 2)?;
    let session = pg.session()?;
    let db = Db::Postgres(&session);
    // Before migrating, so a refused target is left exactly as it was.
    let has_users: bool = db.one(
        "SELECT to_regclass('users') IS NOT NULL",
        crate::args![],
        |r| r.get(0),
    )?;
    if has_users {
        refuse_users(&db)?;
    }
    pg.migrate(RELEASE)?;

    session.batch("BEGIN")?;
    let copied = (|| -> anyhow::Result<Vec<Copied>> {
        // A node started on the target meanwhile would bootstrap its own
        // admin: it waits for this copy, or the copy sees its user and stops.
        session.batch("LOCK TABLE users IN EXCLUSIVE MODE")?;
        refuse_users(&db)?;
        TABLES
            .iter()
            .map(|table| {
                Ok(Copied {
                    table,
                    rows: copy_table(&source, &db, table)?,
                })
            })
            .collect()
    })();
    match copied {
        Ok(copied) => {
            session.batch("COMMIT")?;
            Ok(copied)
        }
        Err(e) => {
            let _ = session.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn refuse_users(db: &Db<'_>) -> anyhow::Result<()> {
    let users: i64 = db.one("SELECT COUNT(*) FROM users", crate::args![], |r| r.get(0))?;
    if users > 0 {
        anyhow::bail!(
            "the PostgreSQL database already holds {users} user(s): an installation is copied \
             into an empty database only, so nothing was written to it"
        );
    }
    Ok(())
}

/// A table this release does not know would be left behind unnoticed.
fn refuse_unknown_tables(source: &Connection) -> anyhow::Result<()> {
    let mut stmt = source.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| !TABLES.contains(name) && !NOT_COPIED.contains(name))
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "the SQLite database has tables this release does not copy: {}",
            unknown.join(", ")
        );
    }
    Ok(())
}

/// Copies one table's rows; returns how many.
fn copy_table(source: &Connection, target: &Db<'_>, table: &str) -> anyhow::Result<u64> {
    let target_columns: Vec<(String, bool)> = target.rows(
        "SELECT column_name::text, is_identity = 'YES' FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
        crate::args![table],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let source_columns: Vec<String> = source
        .prepare("SELECT name FROM pragma_table_info(?1)")?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // What to read from SQLite for each target column: the column of that
    // name, or for the identity `rowid`, SQLite's own rowid.
    let mut select = Vec::with_capacity(target_columns.len());
    for (name, _) in &target_columns {
        if source_columns.contains(name) {
            select.push(format!("\"{name}\""));
        } else if name == "rowid" {
            select.push("rowid".to_string());
        } else {
            anyhow::bail!("table {table}: column {name} is missing from the SQLite database");
        }
    }
    if let Some(extra) = source_columns
        .iter()
        .find(|name| !target_columns.iter().any(|(t, _)| t == *name))
    {
        anyhow::bail!("table {table}: column {extra} is missing from the PostgreSQL database");
    }
    let identity = target_columns.iter().any(|(_, identity)| *identity);

    let width = target_columns.len();
    let columns = target_columns
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = |rows: usize| {
        let tuples = (0..rows)
            .map(|row| {
                let params = (1..=width)
                    .map(|col| format!("?{}", row * width + col))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("({params})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "INSERT INTO \"{table}\" ({columns}){} VALUES {tuples}",
            if identity {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            }
        )
    };

    let mut stmt = source.prepare(&format!(
        "SELECT {} FROM \"{table}\" ORDER BY rowid",
        select.join(", ")
    ))?;
    let mut rows = stmt.query([])?;
    let mut pending: Vec<Value> = Vec::with_capacity(ROWS_PER_INSERT * width);
    let mut count = 0u64;
    let flush = |pending: &mut Vec<Value>| -> anyhow::Result<()> {
        if !pending.is_empty() {
            target.execute(&insert(pending.len() / width), pending)?;
            pending.clear();
        }
        Ok(())
    };
    while let Some(row) = rows.next()? {
        let row = Row::Sqlite(row);
        for column in 0..width {
            pending.push(row.get::<_, Value>(column)?);
        }
        count += 1;
        if pending.len() == ROWS_PER_INSERT * width {
            flush(&mut pending)?;
        }
    }
    flush(&mut pending)?;

    // New rows must sort (and be numbered) after the copied ones.
    for (name, _) in target_columns.iter().filter(|(_, identity)| *identity) {
        target.one(
            &format!(
                "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{name}'),
                               GREATEST(COALESCE(MAX(\"{name}\"), 0), 1), MAX(\"{name}\") IS NOT NULL)
                 FROM \"{table}\""
            ),
            crate::args![],
            |_| Ok(()),
        )?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SQLite database at the latest schema (and the directory it is in).
    fn sqlite_schema() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        drop(super::super::Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        (dir, conn)
    }

    /// A table added by a later migration must be copied (or named as left
    /// behind), or a move would lose it.
    #[test]
    fn every_table_of_the_schema_is_copied_or_named_as_left_behind() {
        let (_dir, conn) = sqlite_schema();
        assert!(refuse_unknown_tables(&conn).is_ok());
        let mut names: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        names.sort();
        let mut listed: Vec<String> = TABLES
            .iter()
            .chain(NOT_COPIED)
            .map(|t| t.to_string())
            .collect();
        listed.sort();
        assert_eq!(names, listed);

        conn.execute_batch("CREATE TABLE later (x INTEGER)")
            .unwrap();
        let err = refuse_unknown_tables(&conn).unwrap_err().to_string();
        assert!(err.contains("later"), "{err}");
    }

    /// Each table comes after every table its foreign keys name, so the
    /// copy's inserts never point at a row not yet there.
    #[test]
    fn tables_are_copied_parents_first() {
        let (_dir, conn) = sqlite_schema();
        for (at, table) in TABLES.iter().enumerate() {
            let parents: Vec<String> = conn
                .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
                .unwrap()
                .query_map([table], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            for parent in parents {
                let parent_at = TABLES.iter().position(|t| *t == parent).unwrap();
                assert!(parent_at < at, "{table} is copied before {parent}");
            }
        }
    }
}
