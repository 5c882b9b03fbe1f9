//! `GET /channels/{id}/posts?since=`: what a client missed while it was
//! away (created, edited or deleted posts), in Mattermost's post-list shape.

use serde_json::{Value, json};
use std::time::Duration;
use switchboard_tests::{Api, TestShim};

const T0: i64 = 1_700_000_000_000;

async fn post(api: &Api, channel: &str, message: &str, root_id: &str) -> String {
    let reply = api
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": channel, "message": message, "root_id": root_id}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()["id"].as_str().unwrap().to_string()
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    match &list[field] {
        Value::Array(order) => order
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        Value::Object(posts) => {
            let mut keys: Vec<String> = posts.keys().cloned().collect();
            keys.sort();
            keys
        }
        other => panic!("no {field} in {other}"),
    }
}

#[tokio::test]
async fn since_returns_posts_created_edited_or_deleted_after_it() {
    let shim = TestShim::builder().fixed_clock(T0).start().await.unwrap();
    let admin = Api::admin(&shim);
    let channel = shim.town_square.id.clone();
    let root = post(&admin, &channel, "root", "").await;
    let untouched = post(&admin, &channel, "untouched", "").await;
    let edited = post(&admin, &channel, "to edit", "").await;
    let deleted = post(&admin, &channel, "to delete", "").await;

    // The client disconnects here; then things happen.
    let since = T0 + 500;
    shim.advance_clock(Duration::from_secs(1));
    let new = post(&admin, &channel, "new", "").await;
    let reply = post(&admin, &channel, "a reply", &root).await;
    let patched = admin
        .put_json(
            &format!("/api/v4/posts/{edited}/patch"),
            &json!({"message": "edited"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let removed = admin.delete(&format!("/api/v4/posts/{deleted}")).await;
    assert_eq!(removed.status, 200, "{}", removed.text);

    let list = admin
        .get(&format!("/api/v4/channels/{channel}/posts?since={since}"))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let list = list.json();
    let order = ids(&list, "order");
    // Newest first by creation: the reply and the new post, then the older
    // edited and deleted ones.
    assert_eq!(
        order,
        [reply.clone(), new.clone(), deleted.clone(), edited.clone()]
    );
    assert!(!order.contains(&untouched) && !order.contains(&root));
    assert_eq!(list["posts"][&edited]["message"], "edited");
    assert_ne!(list["posts"][&deleted]["delete_at"], 0);
    // The reply's root comes along to place it, outside `order`.
    assert_eq!(list["posts"][&root]["message"], "root");
    assert!(list["posts"].get(&untouched).is_none());
    for key in ["next_post_id", "prev_post_id", "has_next"] {
        assert!(list.get(key).is_some(), "{key} in {list}");
    }

    let list = admin
        .get(&format!(
            "/api/v4/channels/{channel}/posts?since={since}&skipFetchThreads=true"
        ))
        .await
        .json();
    assert!(list["posts"].get(&root).is_none(), "{list}");
    assert_eq!(ids(&list, "order").len(), 4);

    // Nothing after the last change: an empty list.
    let later = T0 + 10_000_000_000_000;
    let list = admin
        .get(&format!("/api/v4/channels/{channel}/posts?since={later}"))
        .await
        .json();
    assert_eq!(ids(&list, "order"), Vec::<String>::new());

    // Without `since`, the ordinary page (no deleted posts).
    let page = admin
        .get(&format!("/api/v4/channels/{channel}/posts"))
        .await
        .json();
    assert!(!ids(&page, "order").contains(&deleted));

    admin
        .get(&format!("/api/v4/channels/{channel}/posts?since=yesterday"))
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    // Only readers of the channel.
    let (_, token) = shim.create_user("outsider").unwrap();
    let outsider = Api::new(&shim, Some(&token));
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "hidden", "display_name": "Hidden", "type": "P"}),
        )
        .await
        .json();
    outsider
        .get(&format!(
            "/api/v4/channels/{}/posts?since={since}",
            private["id"].as_str().unwrap()
        ))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    shim.stop().await.unwrap();
}
