//! The bus against a real PostgreSQL: a throwaway server per test.

use super::test_server::TestDb;
use super::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a subscriber heard, as (node, payload).
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<Message>>>);

impl Heard {
    fn on(bus: &Bus) -> Heard {
        let heard = Heard::default();
        let sink = heard.0.clone();
        bus.subscribe(move |m| sink.lock().unwrap().push(m.clone()));
        heard
    }

    fn payloads(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.payload.clone())
            .collect()
    }

    /// Waits until `n` messages were heard (the bus is asynchronous).
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.0.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.payloads()
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_buses_on_one_database_hear_each_other_in_order_and_not_themselves() {
    let test_db = TestDb::new();
    let db = test_db.url().to_string();
    let a = Bus::postgres(&db).unwrap();
    let b = Bus::postgres(&db).unwrap();
    assert!(a.is_shared());
    assert_ne!(a.node_id(), b.node_id());
    let (heard_a, heard_b) = (Heard::on(&a), Heard::on(&b));
    // Interleaved from both nodes: each hears the other's in its order.
    for i in 0..60 {
        a.publish(kind::EVENT, format!("a{i}"));
        b.publish(kind::EVENT, format!("b{i}"));
    }
    assert!(a.flush(Duration::from_secs(10)));
    assert!(b.flush(Duration::from_secs(10)));
    assert_eq!(heard_b.wait_for(60).await, numbered("a", 60));
    assert_eq!(heard_a.wait_for(60).await, numbered("b", 60));
    let from_a = heard_b.0.lock().unwrap().clone();
    assert!(
        from_a
            .iter()
            .all(|m| m.node == a.node_id() && m.kind == kind::EVENT)
    );
    assert!(from_a.windows(2).all(|w| w[0].id < w[1].id));
    // A local bus hears nothing and carries nothing.
    let local = Bus::local();
    let heard_local = Heard::on(&local);
    local.publish(kind::EVENT, "x".into());
    assert!(local.flush(Duration::from_secs(1)));
    assert!(!local.is_shared());
    assert!(heard_local.payloads().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_connection_is_killed_catches_up_on_what_it_missed() {
    let test_db = TestDb::new();
    let db = test_db.url().to_string();
    let a = Bus::postgres(&db).unwrap();
    // Slow to come back, so what `a` publishes meanwhile lands while `b`
    // has no connection to be notified on.
    let b = Bus::postgres_with(
        &db,
        PgOptions {
            reconnect_first: Duration::from_secs(2),
            // No safety-net reads: what arrives comes by notification or
            // by the catch-up after the reconnect.
            poll: Duration::from_secs(600),
            ..PgOptions::default()
        },
    )
    .unwrap();
    let heard = Heard::on(&b);
    a.publish(kind::EVENT, "before".into());
    assert_eq!(heard.wait_for(1).await, ["before"]);

    let admin = test_db.client().await;
    let listener = format!("switchboard bus listener {}", b.node_id());
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&listener],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "b's listener was found and killed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = admin
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = $1",
                &[&listener],
            )
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the listener's backend ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..5 {
        a.publish(kind::EVENT, format!("meanwhile{i}"));
    }
    assert!(a.flush(Duration::from_secs(10)));
    assert_eq!(b.reconnects(), 0, "b had not come back yet");

    let mut expected = vec!["before".to_string()];
    expected.extend(numbered("meanwhile", 5));
    assert_eq!(heard.wait_for(6).await, expected);
    assert!(b.reconnects() >= 1);
    // And it listens again: a new message arrives by notification.
    a.publish(kind::EVENT, "after".into());
    expected.push("after".into());
    assert_eq!(heard.wait_for(7).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_node_seeds_the_configuration_and_a_save_leaves_one_active_row() {
    let test_db = TestDb::new();
    let db = test_db.url().to_string();
    let a = Bus::postgres(&db).unwrap();
    let b = Bus::postgres(&db).unwrap();
    let (pa, pb) = (a.database().unwrap(), b.database().unwrap());
    assert_eq!(pa.active_config().await.unwrap(), None);
    let (first, value) = pa.adopt_config("from a".into()).unwrap();
    assert_eq!(value, "from a");
    assert_eq!(
        pb.adopt_config("from b".into()).unwrap(),
        (first.clone(), "from a".to_string()),
        "b adopts what a wrote"
    );
    let second = pb.save_config("patched on b".into()).unwrap();
    assert_ne!(second, first);
    assert_eq!(
        pa.active_config().await.unwrap(),
        Some((second, "patched on b".to_string()))
    );
    let admin = test_db.client().await;
    let active: i64 = admin
        .query_one("SELECT COUNT(*) FROM configurations WHERE active = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(active, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_lock_is_held_by_one_node_at_a_time() {
    let test_db = TestDb::new();
    let db = test_db.url().to_string();
    let a = Bus::postgres(&db).unwrap();
    let b = Bus::postgres(&db).unwrap();
    let held = a.database().unwrap().first_start_lock().unwrap();
    let waiting = std::thread::spawn(move || {
        let lock = b.database().unwrap().first_start_lock().unwrap();
        drop(lock);
        b
    });
    // b waits in the database for the lock a holds.
    let admin = test_db.client().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = admin
            .query_one(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "b never waited for the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!waiting.is_finished());
    drop(held);
    let b = tokio::task::spawn_blocking(move || waiting.join().unwrap())
        .await
        .unwrap();
    drop(b);
}
