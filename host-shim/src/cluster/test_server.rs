//! A fresh database for the cluster's tests, on the test run's PostgreSQL
//! (the harness's `TestPostgres`), its schema made by the store's own
//! migrations (entry 17 holds `cluster_events` and `configurations`).

use crate::harness::postgres::{TestDatabase, TestPostgres};
use std::sync::Arc;

pub(crate) struct TestDb {
    database: Arc<TestDatabase>,
}

impl TestDb {
    pub(crate) fn new() -> TestDb {
        let database = TestPostgres::shared()
            .and_then(|server| server.create_database())
            .expect("the test PostgreSQL (`make postgres`)");
        drop(crate::store::Store::open_postgres(&database.data_source, "test-key").unwrap());
        TestDb { database }
    }

    /// Its `SqlSettings.DataSource`.
    pub(crate) fn url(&self) -> &str {
        &self.database.data_source
    }

    /// A client of its own (to look at or kill the bus's connections).
    pub(crate) async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}
