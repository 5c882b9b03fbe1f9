//! This node in its cluster: what it publishes on the bus (its events, its
//! membership changes, its configuration) and how it acts on what the
//! others publish. With a local bus none of it does anything.

use super::{App, Event};
use crate::cluster::{Bus, Message, kind};
use crate::config::Config;
use std::sync::Arc;

/// What `App` keeps about its cluster.
pub(super) struct Node {
    pub(super) bus: Bus,
    /// The `configurations` row this node runs (cluster only).
    config_version: std::sync::Mutex<Option<String>>,
    /// Wakes the configuration follower (`crate::follow_config`).
    pub(super) config_changed: Arc<tokio::sync::Notify>,
}

impl Node {
    pub(super) fn new(bus: Bus, config_version: Option<String>) -> Node {
        Node {
            bus,
            config_version: std::sync::Mutex::new(config_version),
            config_changed: Arc::default(),
        }
    }
}

impl App {
    /// This node's end of the cluster bus.
    pub fn bus(&self) -> &Bus {
        &self.node.bus
    }

    /// Tells the other nodes a transform is gone, so none runs its
    /// compiled code again; forgets it here.
    pub fn transform_deleted(&self, id: &str) {
        self.transforms.forget(id);
        self.node
            .bus
            .publish(kind::TRANSFORM_DELETED, id.to_string());
    }

    /// Wakes the configuration follower when another node changed it.
    pub fn config_changed(&self) -> Arc<tokio::sync::Notify> {
        self.node.config_changed.clone()
    }

    /// Starts acting on what the other nodes publish and forwarding this
    /// node's events to them. Once, right after the App is made.
    pub fn join_cluster(self: &Arc<Self>) {
        if !self.node.bus.is_shared() {
            return;
        }
        // Published as the change is made, so it is ahead of any event this
        // node sends after it: a post in a channel someone just joined is
        // never judged elsewhere by a permission answer cached before.
        let bus = self.node.bus.clone();
        self.store
            .on_membership_change(move || bus.publish(kind::MEMBERSHIP, String::new()));
        let bus = self.node.bus.clone();
        self.events.forward_to(Box::new(move |event: &Event| {
            bus.publish(kind::EVENT, event.to_wire());
        }));
        let bus = self.node.bus.clone();
        self.events
            .presence_to(Box::new(move |user: &str, online: bool| {
                let payload = serde_json::json!({ "user": user, "online": online });
                bus.publish(kind::PRESENCE, payload.to_string());
            }));
        let weak = Arc::downgrade(self);
        self.node.bus.subscribe(move |message: &Message| {
            if let Some(app) = weak.upgrade() {
                app.hear(message);
            }
        });
    }

    /// Acts on one message from another node (on the bus's thread: quick).
    fn hear(&self, message: &Message) {
        match message.kind.as_str() {
            kind::EVENT => match Event::from_wire(&message.payload) {
                Some(event) => self.events.deliver_remote(event),
                None => tracing::warn!("cluster: an unreadable event from node {}", message.node),
            },
            kind::MEMBERSHIP => self.store.membership_changed_elsewhere(),
            kind::CONFIG => self.node.config_changed.notify_one(),
            kind::TRANSFORM_DELETED => self.transforms.forget(&message.payload),
            kind::PRESENCE => self.hear_presence(message),
            other => tracing::debug!("cluster: ignoring a `{other}` message"),
        }
    }

    fn hear_presence(&self, message: &Message) {
        let Ok(said) = serde_json::from_str::<serde_json::Value>(&message.payload) else {
            return;
        };
        if let Some(users) = said["users"].as_array() {
            let users = users
                .iter()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect();
            self.events
                .remote_snapshot(&message.node, users, std::time::Instant::now());
        } else if let (Some(user), Some(online)) = (said["user"].as_str(), said["online"].as_bool())
        {
            self.events.remote_presence(&message.node, user, online);
        }
    }

    /// Tells the other nodes everyone online here (a heartbeat: see
    /// `events::REMOTE_PRESENCE_TTL`).
    pub fn announce_presence(&self) {
        if self.node.bus.is_shared() {
            let users = self.events.online_here();
            let payload = serde_json::json!({ "users": users });
            self.node.bus.publish(kind::PRESENCE, payload.to_string());
        }
    }

    /// In a cluster, writes `config` as the active configuration and tells
    /// the other nodes; `None` when this node is alone (the caller saves
    /// its file). Returns the config as this node runs it.
    pub(super) fn share_config(&self, config: &Config) -> anyhow::Result<Option<Config>> {
        let Some(db) = self.node.bus.database() else {
            return Ok(None);
        };
        // The node's own database settings, whatever the patch said.
        let config =
            Config::from_shared_document(config.shared_document(), &self.config().sql_settings)
                .map_err(anyhow::Error::msg)?;
        let mut version = self
            .node
            .config_version
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let id = db.save_config(config.shared_document().to_string())?;
        self.node.bus.publish(kind::CONFIG, id.clone());
        *version = Some(id);
        Ok(Some(config))
    }

    /// Reads the cluster's active configuration and runs it when it is not
    /// the one this node runs; says whether it changed.
    pub async fn reload_shared_config(&self) -> anyhow::Result<bool> {
        let Some(db) = self.node.bus.database() else {
            return Ok(false);
        };
        let Some((id, value)) = db.active_config().await? else {
            return Ok(false);
        };
        let mut version = self
            .node
            .config_version
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if version.as_deref() == Some(id.as_str()) {
            return Ok(false);
        }
        let doc: serde_json::Value = serde_json::from_str(&value)?;
        let config = Config::from_shared_document(doc, &self.config().sql_settings)
            .map_err(anyhow::Error::msg)?;
        self.apply_config(config)?;
        *version = Some(id);
        tracing::info!("cluster: applied the configuration another node saved");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Clock;
    use crate::cluster::test_server::TestDb;
    use crate::config::DRIVER_POSTGRES;
    use crate::store::{Store, User, new_id};
    use std::time::{Duration, Instant};

    /// A node on the cluster's database: its store and its bus.
    fn node(data_source: &str, name: &str) -> Arc<App> {
        let key = "the-cluster-key";
        let store = Store::open_postgres(data_source, key).unwrap();
        let mut config = Config::default();
        config.sql_settings.driver_name = DRIVER_POSTGRES.into();
        config.sql_settings.data_source = format!("{data_source}&application_name={name}");
        config.sql_settings.at_rest_encrypt_key = key.into();
        let bus = Bus::postgres(data_source).unwrap();
        let (version, _) = bus
            .database()
            .unwrap()
            .adopt_config(config.shared_document().to_string())
            .unwrap();
        let app = Arc::new(
            App::new(store, config, None, Clock::system())
                .unwrap()
                .with_bus(bus, Some(version)),
        );
        app.join_cluster();
        app
    }

    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what} did not happen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_reach_the_other_nodes_in_order_and_only_once() {
        let test_db = TestDb::new();
        let db = test_db.url().to_string();
        let (a, b) = (node(&db, "a"), node(&db, "b"));
        let mut live = b.events.subscribe();
        for i in 0..20 {
            a.events
                .to_user("someone", "open_dialog", serde_json::json!({ "n": i }));
        }
        b.events
            .to_user("someone", "open_dialog", serde_json::json!({ "n": "b" }));
        eventually("a's events on b", || b.events.recent().len() == 21).await;
        let on_b: Vec<_> = b
            .events
            .recent()
            .iter()
            .filter(|e| e.data["n"].is_number())
            .map(|e| e.data["n"].as_i64().unwrap())
            .collect();
        assert_eq!(on_b, (0..20).collect::<Vec<_>>());
        // b's sockets get them as a's did: same event, same recipient.
        let first = live.recv().await.unwrap();
        assert_eq!(first.event, "open_dialog");
        assert_eq!(first.user_id.as_deref(), Some("someone"));
        // a hears b's events and never its own back: b's second one is
        // ordered after all of a's, so once it is there, any echo would be.
        eventually("b's event on a", || a.events.recent().len() == 21).await;
        assert!(a.bus().flush(Duration::from_secs(5)));
        b.events
            .to_user("someone", "open_dialog", serde_json::json!({ "n": "b2" }));
        eventually("b's second event on a", || a.events.recent().len() >= 22).await;
        assert_eq!(a.events.recent().len(), 22);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_membership_change_on_one_node_makes_the_others_answers_stale() {
        let test_db = TestDb::new();
        let db = test_db.url().to_string();
        let (a, b) = (node(&db, "a"), node(&db, "b"));
        let before = b.store.membership_epoch();
        let team = a.store.create_team("t1", "T1").unwrap();
        let user = User {
            id: new_id(),
            username: "u1".into(),
            ..User::default()
        };
        a.store.create_user(&user, "!").unwrap();
        a.store
            .add_team_member(&team.id, &user.id, "team_user")
            .unwrap();
        // Told as it is made, so ahead of the next event a sends.
        a.events
            .to_user(&user.id, "open_dialog", serde_json::json!({}));
        eventually("the event on b", || !b.events.recent().is_empty()).await;
        let seen = b.store.membership_epoch();
        assert_ne!(seen, before, "b's epoch moved before the event arrived");
        // Without an event after it too; and b does not send it back.
        a.store
            .add_team_member(&team.id, &user.id, "team_user team_admin")
            .unwrap();
        eventually("the change on b", || b.store.membership_epoch() != seen).await;
        // b published anything it would send back before this marker.
        let on_a = a.store.membership_epoch();
        b.events
            .to_user("x", "open_dialog", serde_json::json!({ "marker": true }));
        eventually("b's marker on a", || {
            a.events.recent().iter().any(|e| e.data["marker"] == true)
        })
        .await;
        assert_eq!(a.store.membership_epoch(), on_a, "no echo");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_online_on_one_node_is_online_on_the_others() {
        let test_db = TestDb::new();
        let db = test_db.url().to_string();
        let (a, b) = (node(&db, "a"), node(&db, "b"));
        let socket = a.events.online("u1");
        eventually("u1 online on b", || b.events.is_online("u1")).await;
        drop(socket);
        eventually("u1 offline on b", || !b.events.is_online("u1")).await;
        // The heartbeat says who is online, for a node that came later.
        let _socket = a.events.online("u2");
        let c = node(&db, "c");
        assert!(!c.events.is_online("u2"));
        a.announce_presence();
        eventually("u2 online on c", || c.events.is_online("u2")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_config_change_on_one_node_is_run_by_the_others() {
        let test_db = TestDb::new();
        let db = test_db.url().to_string();
        let (a, b) = (node(&db, "a"), node(&db, "b"));
        let patched = a
            .config()
            .patched(&serde_json::json!({
                "ServiceSettings": {"EnablePostUsernameOverride": true},
                "SqlSettings": {"DataSource": "postgres://elsewhere/x"}
            }))
            .unwrap();
        a.set_config(patched).unwrap();
        assert!(a.config().service_settings.enable_post_username_override);
        assert_eq!(
            a.config().sql_settings.data_source,
            format!("{db}&application_name=a"),
            "a patch never moves a node's database"
        );
        // b was told on the bus; reading the active row runs it.
        let changed = b.config_changed();
        tokio::time::timeout(Duration::from_secs(20), changed.notified())
            .await
            .expect("b heard of the change");
        assert!(b.reload_shared_config().await.unwrap());
        assert!(b.config().service_settings.enable_post_username_override);
        assert_eq!(
            b.config().sql_settings.data_source,
            format!("{db}&application_name=b"),
            "each node keeps its own database settings"
        );
        assert!(!b.reload_shared_config().await.unwrap(), "once");
        assert!(
            !a.reload_shared_config().await.unwrap(),
            "a runs it already"
        );
    }
}
