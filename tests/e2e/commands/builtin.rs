//! The built-in commands through the component: what each posts, changes and
//! answers.

use super::{create_command, execute, ok, shim};
use serde_json::{Value, json};
use switchboard_host_shim::store::ChannelType;
use switchboard_tests::{Api, TestShim};

fn ephemeral_texts(shim: &TestShim, user_id: &str) -> Vec<String> {
    shim.events()
        .into_iter()
        .filter(|e| e.event == "ephemeral_message" && e.user_id.as_deref() == Some(user_id))
        .map(|e| {
            let post: Value = serde_json::from_str(e.data["post"].as_str().unwrap()).unwrap();
            post["message"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn echo_me_and_shrug_post_as_the_user() {
    let shim = shim().await;
    let (alice, token) = shim.create_user("alice").unwrap();
    let api = Api::new(&shim, Some(&token));
    let town = &shim.town_square.id;

    let out = ok(&execute(&api, town, "/echo hello there").await);
    assert_eq!(out["response_type"], "");
    ok(&execute(&api, town, "/echo \"quoted words\" 2").await);
    ok(&execute(&api, town, "/me waves").await);
    ok(&execute(&api, town, "/shrug oh well").await);
    let posts = shim.posts();
    let messages: Vec<(&str, &str)> = posts
        .iter()
        .map(|p| (p.message.as_str(), p.post_type.as_str()))
        .collect();
    assert_eq!(
        messages,
        [
            ("hello there", ""),
            ("quoted words", ""),
            ("*waves*", "me"),
            (r"oh well ¯\\\_(ツ)\_/¯", ""),
        ]
    );
    assert!(posts.iter().all(|p| p.user_id == alice.id));
    assert!(posts.iter().all(|p| !p.props.contains("from_webhook")));

    ok(&execute(&api, town, "/echo").await);
    ok(&execute(&api, town, "/echo too long 10001").await);
    let errors = ephemeral_texts(&shim, &alice.id);
    assert_eq!(errors.len(), 2);
    assert!(errors[0].contains("A message must be provided"));
    assert!(errors[1].contains("10000"));
    assert_eq!(shim.posts().len(), 4);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn help_lists_built_in_and_custom_commands() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    create_command(
        &admin,
        &shim,
        json!({"trigger": "deploy", "auto_complete_hint": "[env]", "auto_complete_desc": "Ship a build"}),
    )
    .await;
    let out = ok(&execute(&admin, &shim.town_square.id, "/help").await);
    assert_eq!(out["response_type"], "ephemeral");
    let text = &ephemeral_texts(&shim, &shim.admin.id)[0];
    for expected in [
        "/echo",
        "/me",
        "/shrug",
        "/join",
        "/leave",
        "/header",
        "/purpose",
        "/msg",
        "/help",
        "`/deploy [env]`: Ship a build",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(shim.posts().is_empty());
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn join_and_leave_channels() {
    let shim = shim().await;
    let (alice, token) = shim.create_user("alice").unwrap();
    let api = Api::new(&shim, Some(&token));
    let store = &shim.shim.app.store;
    let off_topic = store.channel_by_name(&shim.team.id, "off-topic").unwrap();

    let out = ok(&execute(&api, &shim.town_square.id, "/join ~off-topic").await);
    assert_eq!(
        out["goto_location"],
        format!("{}/{}/channels/off-topic", shim.url, shim.team.name)
    );
    assert!(store.is_channel_member(&off_topic.id, &alice.id).unwrap());
    let joined = shim.posts().pop().unwrap();
    assert_eq!(
        (joined.post_type.as_str(), joined.message.as_str()),
        ("system_join_channel", "@alice joined the channel.")
    );
    assert_eq!(joined.channel_id, off_topic.id);

    ok(&execute(&api, &shim.town_square.id, "/join ~no-such-channel").await);
    assert!(ephemeral_texts(&shim, &alice.id)[0].contains("~no-such-channel"));

    // A private channel she is not in stays closed.
    let admin = Api::admin(&shim);
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "hidden", "display_name": "Hidden", "type": "P"}),
        )
        .await
        .json();
    ok(&execute(&api, &shim.town_square.id, "/join hidden").await);
    assert!(
        !store
            .is_channel_member(private["id"].as_str().unwrap(), &alice.id)
            .unwrap()
    );

    let out = ok(&execute(&api, &off_topic.id, "/leave").await);
    assert_eq!(
        out["goto_location"],
        format!("{}/{}/channels/town-square", shim.url, shim.team.name)
    );
    assert!(!store.is_channel_member(&off_topic.id, &alice.id).unwrap());
    assert_eq!(
        shim.posts().pop().unwrap().post_type,
        "system_leave_channel"
    );
    ok(&execute(&api, &shim.town_square.id, "/leave").await);
    assert!(
        ephemeral_texts(&shim, &alice.id)
            .last()
            .unwrap()
            .contains("default channel")
    );
    assert!(
        store
            .is_channel_member(&shim.town_square.id, &alice.id)
            .unwrap()
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn header_and_purpose_edit_the_channel() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let town = &shim.town_square.id;
    ok(&execute(&admin, town, "/header Release **today**").await);
    ok(&execute(&admin, town, "/purpose Everyone's channel").await);
    let channel = admin.get(&format!("/api/v4/channels/{town}")).await.json();
    assert_eq!(channel["header"], "Release **today**");
    assert_eq!(channel["purpose"], "Everyone's channel");
    let posts = shim.posts();
    assert_eq!(posts[0].post_type, "system_header_change");
    assert_eq!(
        posts[0].message,
        format!(
            "@{} updated the channel header to: Release **today**",
            shim.admin.username
        )
    );
    let p: Value = serde_json::from_str(&posts[0].props).unwrap();
    assert_eq!(
        (p["old_header"].as_str(), p["new_header"].as_str()),
        (Some(""), Some("Release **today**"))
    );
    assert_eq!(posts[1].post_type, "system_purpose_change");

    ok(&execute(&admin, town, "/header").await);
    ok(&execute(&admin, town, &format!("/purpose {}", "x".repeat(251))).await);
    let errors = ephemeral_texts(&shim, &shim.admin.id);
    assert!(errors[0].contains("must be provided"));
    assert!(errors[1].contains("250"));
    assert_eq!(shim.posts().len(), 2);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn msg_writes_to_the_direct_channel() {
    let shim = shim().await;
    let (alice, token) = shim.create_user("alice").unwrap();
    let (bob, _) = shim.create_user("bob").unwrap();
    let api = Api::new(&shim, Some(&token));
    let out = ok(&execute(&api, &shim.town_square.id, "/msg @bob psst, over here").await);
    let post = shim.posts().pop().unwrap();
    assert_eq!(post.message, "psst, over here");
    assert_eq!(post.user_id, alice.id);
    let dm = shim.shim.app.store.channel(&post.channel_id).unwrap();
    assert_eq!(dm.channel_type, ChannelType::Direct);
    assert!(dm.name.contains(&bob.id) && dm.name.contains(&alice.id));
    assert!(
        out["goto_location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/channels/{}", dm.name))
    );

    // Commands work inside the direct channel too.
    ok(&execute(&api, &dm.id, "/shrug").await);
    assert_eq!(shim.posts().pop().unwrap().channel_id, dm.id);
    ok(&execute(&api, &shim.town_square.id, "/msg @nobody hi").await);
    assert_eq!(
        ephemeral_texts(&shim, &alice.id),
        ["We couldn't find the user."]
    );
    shim.stop().await.unwrap();
}
