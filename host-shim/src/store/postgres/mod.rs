//! The PostgreSQL backend (`SqlSettings.DriverName = "postgres"`).
//!
//! A deadpool pool of tokio-postgres connections lives on a small runtime of
//! its own, so the store keeps its synchronous API: a caller (a request's
//! task, the writer's threads) waits for its statement on its own thread
//! while the connections' I/O is driven by this runtime's threads. Every
//! operation has a deadline: a database that has gone away answers
//! [`StoreError::Unavailable`] (503 with `Retry-After`) instead of hanging,
//! and the pool reconnects by itself once it is back.

pub mod migrations;

use super::sql::{Db, Value};
use super::{Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// How long one statement (or the wait for a pooled connection) may take
/// before the database counts as unavailable.
const DEADLINE: Duration = Duration::from_secs(10);
/// The advisory lock migrations run under (any fixed number; this one
/// spells "SWBD").
const MIGRATION_LOCK: i64 = 0x5357_4244;
/// How long connecting may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// The pool and the runtime its connections run on.
pub struct Postgres {
    pool: Pool,
    runtime: Option<tokio::runtime::Runtime>,
}

/// One pooled connection, used synchronously.
pub struct Session {
    client: Object,
    handle: tokio::runtime::Handle,
}

impl Postgres {
    /// A pool of at most `size` connections to `data_source` (a libpq URL or
    /// `key=value` string). Connections are made when first needed; this
    /// makes one at once so a wrong data source fails the start.
    pub fn connect(data_source: &str, size: usize) -> anyhow::Result<Postgres> {
        let mut config = tokio_postgres::Config::from_str(data_source).map_err(|e| {
            anyhow::anyhow!("SqlSettings.DataSource is not a PostgreSQL data source: {e}")
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_DEADLINE);
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("switchboard");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("switchboard-postgres")
            .enable_all()
            .build()?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _entered = runtime.enter();
            Pool::builder(manager)
                .max_size(size.max(2))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(DEADLINE))
                .create_timeout(Some(CONNECT_DEADLINE))
                .recycle_timeout(Some(CONNECT_DEADLINE))
                .build()?
        };
        let postgres = Postgres {
            pool,
            runtime: Some(runtime),
        };
        postgres
            .session()
            .map_err(|e| anyhow::anyhow!("connecting to PostgreSQL: {e}"))?;
        Ok(postgres)
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .expect("the runtime lives as long as the pool")
    }

    /// A connection from the pool (a new one when none is idle).
    pub fn session(&self) -> Result<Session> {
        let handle = self.handle();
        let client = block_on(&handle, self.pool.get())
            .map_err(|e| StoreError::Unavailable(format!("no PostgreSQL connection: {e}")))?;
        Ok(Session { client, handle })
    }

    /// Runs `f` on this backend's runtime and waits for it: for the few
    /// users of the driver itself (a notification listener, a lock held
    /// on a connection of its own).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        block_on(&self.handle(), f)
    }

    /// Brings the schema up to date under an advisory lock, so that of
    /// several nodes starting at once one migrates and the others wait and
    /// find it done. A database written by a newer release is refused first,
    /// untouched.
    pub fn migrate(&self, release: &str) -> anyhow::Result<()> {
        let session = self.session()?;
        session.batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
        let outcome = self.migrate_locked(&session, release);
        let unlocked = session.batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
        outcome?;
        unlocked?;
        Ok(())
    }

    fn migrate_locked(&self, session: &Session, release: &str) -> anyhow::Result<()> {
        let db = Db::Postgres(session);
        session.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )?;
        let done: i64 = db.one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            crate::args![],
            |r| r.get(0),
        )?;
        let has_systems: bool = db.one(
            "SELECT to_regclass('systems') IS NOT NULL",
            crate::args![],
            |r| r.get(0),
        )?;
        let recorded: Option<String> = if has_systems {
            db.row(
                "SELECT value FROM systems WHERE name = 'LastRelease'",
                crate::args![],
                |r| r.get(0),
            )?
        } else {
            None
        };
        super::migrations::refuse_if_newer(
            "the PostgreSQL database",
            done,
            recorded.as_deref(),
            release,
        )?;
        for (index, sql) in migrations::MIGRATIONS.iter().enumerate() {
            let version = index as i64 + 1;
            if version <= done {
                continue;
            }
            session.batch("BEGIN")?;
            let applied = session.batch(sql).and_then(|()| {
                db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    crate::args![version, super::now_millis()],
                )
            });
            match applied {
                Ok(_) => session.batch("COMMIT")?,
                Err(e) => {
                    let _ = session.batch("ROLLBACK");
                    anyhow::bail!("PostgreSQL schema migration {version} failed: {e}");
                }
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The runtime the connections run on, for tasks of their own.
    pub fn runtime_handle(&self) -> tokio::runtime::Handle {
        self.handle()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.pool.close();
        // A store may be dropped on an async task: no blocking wait here.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Waits on this thread for `f`, with the backend's runtime entered so the
/// driver's timers and sockets work from any thread (a request's task
/// included, as a SQLite read does today).
fn block_on<F: Future>(handle: &tokio::runtime::Handle, f: F) -> F::Output {
    let _entered = handle.enter();
    futures::executor::block_on(f)
}

impl Session {
    fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    {
        block_on(&self.handle, async {
            match tokio::time::timeout(DEADLINE, f).await {
                Ok(result) => result.map_err(error),
                Err(_) => Err(StoreError::Unavailable(format!(
                    "PostgreSQL did not answer within {} s",
                    DEADLINE.as_secs()
                ))),
            }
        })
    }

    pub fn execute(&self, sql: &str, args: &[Value]) -> Result<usize> {
        let params = params(args);
        self.run(async {
            let statement = self.client.prepare_cached(sql).await?;
            self.client.execute(&statement, &params).await
        })
        .map(|n| n as usize)
    }

    pub fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<tokio_postgres::Row>> {
        let params = params(args);
        self.run(async {
            let statement = self.client.prepare_cached(sql).await?;
            self.client.query(&statement, &params).await
        })
    }

    pub fn batch(&self, sql: &str) -> Result<()> {
        self.run(self.client.batch_execute(sql))
    }

    /// Whether the connection was lost (it is then not given back).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

fn params(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// The store's error for a driver error: constraint violations are
/// conflicts (as SQLite's are); a lost or refused connection, a server
/// shutting down and a deadlock are "unavailable, try again".
fn error(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        return StoreError::Unavailable(format!("PostgreSQL: {e}"));
    };
    let code = db.code().code();
    if code.starts_with("23") {
        StoreError::Conflict(db.message().to_string())
    } else if code.starts_with("08")
        || code.starts_with("57P")
        || code.starts_with("53")
        || code == "40001"
        || code == "40P01"
    {
        StoreError::Unavailable(format!("PostgreSQL: {}", db.message()))
    } else {
        StoreError::Db(format!("PostgreSQL: {} ({code})", db.message()))
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let text = |s: &str, out: &mut bytes::BytesMut| s.to_sql(&Type::TEXT, out);
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(n), &Type::INT8) => n.to_sql(ty, out),
            (Value::Int(n), &Type::INT4) => i32::try_from(*n)?.to_sql(ty, out),
            (Value::Int(n), &Type::INT2) => i16::try_from(*n)?.to_sql(ty, out),
            (Value::Int(n), &Type::BOOL) => (*n != 0).to_sql(ty, out),
            (Value::Int(n), &Type::FLOAT8) => (*n as f64).to_sql(ty, out),
            (Value::Int(n), &Type::OID) => u32::try_from(*n)?.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Real(f), &Type::INT8) if f.fract() == 0.0 => (*f as i64).to_sql(ty, out),
            (Value::Text(s), &Type::BYTEA) => s.as_bytes().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (Value::Blob(b), _) if is_text(ty) => text(std::str::from_utf8(b)?, out),
            (Value::Text(s), _) if is_text(ty) => text(s, out),
            (Value::Int(n), _) if is_text(ty) => text(&n.to_string(), out),
            (Value::Real(f), _) if is_text(ty) => text(&f.to_string(), out),
            (value, ty) => {
                Err(format!("cannot send {} as {ty}", super::sql::kind_of(value)).into())
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ if is_text(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("a column of type {ty} cannot be read").into()),
        })
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
