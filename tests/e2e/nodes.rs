//! Several nodes of one installation in one test
//! (`TestShim::builder().node_of(&first)`): one PostgreSQL database and one
//! at-rest key, a data directory and a port each.

use serde_json::json;
use switchboard_host_shim::harness::{TestPostgres, postgres::psql};
use switchboard_tests::{Api, TestShim};

#[tokio::test]
async fn a_second_node_serves_the_installation_the_first_made() {
    let a = TestShim::builder().fresh_postgres().start().await.unwrap();
    let b = TestShim::builder().node_of(&a).start().await.unwrap();
    assert!(a.is_postgres() && b.is_postgres());
    assert_ne!(a.url, b.url);
    assert_ne!(a.data_dir(), b.data_dir());
    assert_eq!(
        (&b.team.id, &b.town_square.id, &b.admin.id),
        (&a.team.id, &a.town_square.id, &a.admin.id)
    );
    assert_eq!(b.admin_token, a.admin_token);

    // A hook made through A (its secrets sealed with the shared key) posts
    // through B, and A reads the post.
    let hook = Api::admin(&a)
        .create_incoming_hook(&a.town_square.id, json!({}))
        .await;
    let sent = Api::admin(&b)
        .post_json(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            &json!({"text": "through b"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let posts = Api::admin(&a).channel_posts(&a.town_square.id).await;
    assert!(
        posts.iter().any(|p| p["message"] == "through b"),
        "{posts:?}"
    );
    // A user made on B signs in with its token on A.
    let (_, token) = b.create_user("dana").unwrap();
    let me = Api::new(&a, Some(&token)).get("/api/v4/users/me").await;
    assert_eq!(me.json()["username"], "dana", "{}", me.text);
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn the_database_goes_when_the_last_node_on_it_does() {
    let a = TestShim::builder().fresh_postgres().start().await.unwrap();
    let b = TestShim::builder().node_of(&a).start().await.unwrap();
    let data_source = a.shim.app.config().sql_settings.data_source.clone();
    let name = data_source
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap()
        .to_string();
    let server = TestPostgres::shared().unwrap();
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
    a.stop().await.unwrap();
    assert_eq!(server.psql(&exists).unwrap(), "1", "b still runs on it");
    assert_eq!(
        psql(&data_source, "SELECT count(*) > 0 FROM users").unwrap(),
        "t"
    );
    b.stop().await.unwrap();
    assert_eq!(server.psql(&exists).unwrap(), "0");
}

#[tokio::test]
async fn several_nodes_need_postgresql() {
    let a = TestShim::builder().sqlite().start().await.unwrap();
    let refused = TestShim::builder().node_of(&a).start().await;
    let err = refused.err().expect("a second node on SQLite");
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    a.stop().await.unwrap();
}
