//! The store's shared suite: each test runs once on SQLite and once on
//! PostgreSQL (a fresh database on the run's test server), through the same
//! API. Opening a second [`Store`] on the same data stands for a second
//! process, or a second node of a cluster.

mod cases;

use super::Store;
use crate::harness::{TestDatabase, TestPostgres};
use std::sync::Arc;

/// The key every test store seals its secrets with.
const KEY: &str = "shared-suite-key";

/// One test's data: an SQLite file, or a PostgreSQL database.
pub(crate) struct TestDb {
    dir: tempfile::TempDir,
    postgres: Option<Arc<TestDatabase>>,
}

impl TestDb {
    pub(crate) fn sqlite() -> TestDb {
        TestDb {
            dir: tempfile::tempdir().expect("a temp dir"),
            postgres: None,
        }
    }

    pub(crate) fn postgres() -> TestDb {
        let server = TestPostgres::shared().expect("the test PostgreSQL server");
        TestDb {
            dir: tempfile::tempdir().expect("a temp dir"),
            postgres: Some(server.create_database().expect("a test database")),
        }
    }

    /// A store on this data; each call is another process (or node).
    pub(crate) fn open(&self) -> Store {
        match &self.postgres {
            Some(db) => Store::open_postgres(&db.data_source, KEY),
            None => Store::open_with_key(&self.dir.path().join("switchboard.db"), KEY),
        }
        .expect("opening the test store")
    }

    pub(crate) fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

/// Runs each named test of [`cases`] on both backends: `name::sqlite` and
/// `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::cases::$name(&super::TestDb::sqlite());
            }
            #[test]
            fn postgres() {
                super::cases::$name(&super::TestDb::postgres());
            }
        }
    )*};
}

on_both_backends!(
    teams_users_and_memberships_round_trip,
    posts_page_newest_first_and_read_back_as_written,
    kv_values_list_by_prefix_and_expire,
    kv_compare_and_set_holds_across_processes,
    a_delivery_is_leased_to_one_process_only,
    reactions_count_distinct_emoji,
    a_write_from_one_process_is_read_at_once_by_another,
    the_schema_is_at_the_latest_version_and_a_newer_release_is_refused,
);
