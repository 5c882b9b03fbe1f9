//! How the nodes of a cluster hear each other: one bus, the database's own
//! (PostgreSQL's `LISTEN/NOTIFY`), carrying websocket events, config changes
//! and cache invalidations; with SQLite, or one node, the bus is local.
//!
//! The rule both backends keep: a node acts on its own change at once, where
//! it makes it (it sends its event to its sockets, applies its config), and
//! publishes it for the others; the bus never hands a node its own messages
//! back. So a local bus carries nothing anywhere, and a single node behaves
//! exactly as it did before there was a bus.

mod postgres;

pub use postgres::{FirstStartLock, PgOptions};

use std::sync::{Arc, RwLock};

/// What a message is about; each kind has one subscriber that acts on it.
pub mod kind {
    /// A websocket event (`app::Event::to_wire`), for the other nodes'
    /// sockets.
    pub const EVENT: &str = "event";
    /// The active configuration changed (the payload is its row id).
    pub const CONFIG: &str = "config";
    /// Memberships (or anything else permission answers read) changed.
    pub const MEMBERSHIP: &str = "membership";
    /// A transform was deleted (the payload is its id): forget its code.
    pub const TRANSFORM_DELETED: &str = "transform_deleted";
    /// Who is online on the publishing node (for `@here`): one user coming
    /// or going (`{"user", "online"}`), or everyone at once (`{"users"}`),
    /// which the node says every 20 s as a heartbeat.
    pub const PRESENCE: &str = "presence";
}

/// One message from another node.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Its place in the cluster's order (the `cluster_events` row id).
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// The node that published it.
    pub node: String,
}

type Handler = Arc<dyn Fn(&Message) + Send + Sync>;

/// Who hears messages on this node. Handlers run on the bus's own thread,
/// one message at a time in the cluster's order: they must be quick and
/// must not wait on the bus (hand slow work to a task).
#[derive(Default)]
struct Subscribers(RwLock<Vec<Handler>>);

impl Subscribers {
    fn deliver(&self, message: &Message) {
        let handlers = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        for handler in handlers {
            handler(message);
        }
    }
}

/// This node's end of the bus. Cheap to clone; the PostgreSQL bus's
/// connections and thread end when the last clone is dropped.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    subscribers: Arc<Subscribers>,
    backend: Backend,
}

enum Backend {
    Local,
    Postgres(postgres::PgBus),
}

impl Bus {
    /// The bus of a node alone (SQLite, or tests): messages go nowhere.
    pub fn local() -> Bus {
        Bus {
            inner: Arc::new(Inner {
                node: crate::store::new_id(),
                subscribers: Arc::default(),
                backend: Backend::Local,
            }),
        }
    }

    /// Joins the cluster on the PostgreSQL database `data_source`
    /// (`SqlSettings.DataSource`): connects, starts listening and hears
    /// every message published from now on.
    pub fn postgres(data_source: &str) -> anyhow::Result<Bus> {
        Bus::postgres_with(data_source, PgOptions::default())
    }

    /// [`Bus::postgres`] with its timings chosen (tests).
    pub fn postgres_with(data_source: &str, options: PgOptions) -> anyhow::Result<Bus> {
        let node = crate::store::new_id();
        let subscribers = Arc::<Subscribers>::default();
        let pg = postgres::PgBus::start(data_source, &node, subscribers.clone(), options)?;
        tracing::info!("cluster: node {node} joined (PostgreSQL LISTEN/NOTIFY bus)");
        Ok(Bus {
            inner: Arc::new(Inner {
                node,
                subscribers,
                backend: Backend::Postgres(pg),
            }),
        })
    }

    /// This node's id: random at each start.
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    /// Whether other nodes may hear this one (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.backend, Backend::Postgres(_))
    }

    /// Hands `payload` to every other node, after whatever this node
    /// published before it. Returns at once; the message is written by the
    /// bus's own task (see [`Bus::flush`]). Nothing happens on a local bus.
    pub fn publish(&self, kind: &str, payload: String) {
        if let Backend::Postgres(pg) = &self.inner.backend {
            pg.publish(kind, payload);
        }
    }

    /// Waits (at most `timeout`) until everything published before is
    /// written; says whether it was.
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        match &self.inner.backend {
            Backend::Local => true,
            Backend::Postgres(pg) => pg.flush(timeout),
        }
    }

    /// Calls `handler` with each message another node publishes, in the
    /// cluster's order (see [`Subscribers`] for what a handler may do).
    pub fn subscribe(&self, handler: impl Fn(&Message) + Send + Sync + 'static) {
        self.inner
            .subscribers
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(handler));
    }

    /// How many times the listener lost its connection and came back.
    pub fn reconnects(&self) -> u64 {
        match &self.inner.backend {
            Backend::Local => 0,
            Backend::Postgres(pg) => pg.reconnects(),
        }
    }

    /// The PostgreSQL side, for what only a shared bus does (the
    /// configuration in the database, the first start's lock).
    pub fn database(&self) -> Option<&postgres::PgBus> {
        match &self.inner.backend {
            Backend::Local => None,
            Backend::Postgres(pg) => Some(pg),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
