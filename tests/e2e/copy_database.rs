//! Moving an SQLite installation to PostgreSQL with the real binary:
//! `host-shim --copy-database-to` copies the data of release 0.1.0 (the
//! fixture, upgraded by the copy), a node on PostgreSQL then serves the same
//! hook, posts, bot and kv records, and a second copy into the same database
//! is refused and changes nothing.

use crate::processes::{binary, town_square, workspace};
use crate::release::{
    fixture, fixture_copy, messages, on_free_port, post_through, read_json, release_hook, start_on,
};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use switchboard_host_shim::harness::postgres::{TestPostgres, psql};

/// Runs `--copy-database-to` on the installation in `data`; its exit
/// status and everything it printed.
fn copy_database(data: &Path, data_source: &str) -> (std::process::ExitStatus, String) {
    let out = Command::new(binary())
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(data.join("config.json"))
        .arg("--manifest")
        .arg(workspace().join("manifest.json"))
        .arg("--copy-database-to")
        .arg(data_source)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}

/// The rows the copy says it copied into `table`.
fn rows_copied(output: &str, table: &str) -> u64 {
    output
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(table)).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no count for {table} in: {output}"))
}

/// What the database holds, in a form that changes when any of it does.
fn fingerprint(data_source: &str) -> String {
    let digest = |table: &str, key: &str| {
        format!("(SELECT md5(string_agg(t::text, ',' ORDER BY t.{key})) FROM {table} t)")
    };
    psql(
        data_source,
        &format!(
            "SELECT concat_ws('|', (SELECT MAX(version) FROM schema_migrations), {}, {}, {}, {}, \
             {}, {}, {}, {})",
            digest("teams", "id"),
            digest("users", "id"),
            digest("channels", "id"),
            digest("posts", "id"),
            digest("tokens", "token"),
            digest("kv", "key"),
            digest("bots", "user_id"),
            digest("systems", "name"),
        ),
    )
    .unwrap()
}

#[tokio::test]
async fn an_sqlite_installation_moves_to_postgres_and_is_served_from_there() {
    let database = TestPostgres::shared().unwrap().create_database().unwrap();
    let data_source = database.data_source.clone();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("sqlite");
    fixture_copy(&sqlite);

    let (status, output) = copy_database(&sqlite, &data_source);
    assert!(status.success(), "{output}");
    assert_eq!(rows_copied(&output, "users"), 2, "{output}");
    assert_eq!(rows_copied(&output, "posts"), 2, "{output}");
    assert_eq!(rows_copied(&output, "bots"), 1, "{output}");
    assert_eq!(rows_copied(&output, "kv"), 18, "{output}");
    assert_eq!(rows_copied(&output, "tokens"), 1, "{output}");
    // No secret is printed: not the admin's token or password, not the
    // key the kv values are sealed with, not the data source.
    let config = read_json(&fixture().join("config.json"));
    let key = config["SqlSettings"]["AtRestEncryptKey"].as_str().unwrap();
    for secret in [
        std::fs::read_to_string(fixture().join("admin-token")).unwrap(),
        std::fs::read_to_string(fixture().join("admin-password")).unwrap(),
        key.to_string(),
        data_source.clone(),
    ] {
        assert!(!output.contains(secret.trim()), "a secret in: {output}");
    }
    // Sealed values were copied as they were: nothing readable in the kv.
    let plain = psql(
        &data_source,
        "SELECT COUNT(*) FROM kv WHERE position('Release hook'::bytea IN value) > 0",
    )
    .unwrap();
    assert_eq!(plain, "0");
    let highest_copied: i64 = psql(&data_source, "SELECT MAX(rowid) FROM posts")
        .unwrap()
        .parse()
        .unwrap();

    // A node on PostgreSQL, with a data directory of its own and the
    // installation's key, serves what the SQLite installation held.
    let node = dir.path().join("node");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::copy(fixture().join("admin-token"), node.join("admin-token")).unwrap();
    let mut config = config.clone();
    let port = on_free_port(&mut config);
    config["SqlSettings"]["DriverName"] = json!("postgres");
    config["SqlSettings"]["DataSource"] = json!(data_source);
    std::fs::write(node.join("config.json"), config.to_string()).unwrap();
    let process = start_on(&node, port).await;
    let api = process.api(&node);
    let (team_id, channel_id) = town_square(&api).await;
    let hook = release_hook(&api).await;
    assert!(
        messages(&api, &channel_id)
            .await
            .contains(&"made by release 0.1.0".to_string())
    );
    let outgoing = api.get("/api/v4/hooks/outgoing").await.json();
    assert!(
        outgoing
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["display_name"] == "Release outgoing"),
        "{outgoing}"
    );
    let commands = api
        .get(&format!(
            "/api/v4/commands?team_id={team_id}&custom_only=true"
        ))
        .await
        .json();
    assert!(
        commands
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["trigger"] == "release"),
        "{commands}"
    );
    let user = api.get("/api/v4/users/username/release-bot").await.json();
    let bot = api
        .get(&format!("/api/v4/bots/{}", user["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(bot["display_name"], "Release bot", "{bot}");
    post_through(&api, hook["id"].as_str().unwrap(), "served from PostgreSQL").await;
    assert!(
        messages(&api, &channel_id)
            .await
            .contains(&"served from PostgreSQL".to_string())
    );
    process.kill();
    // The new post is numbered after the copied ones.
    let new_rowid: i64 = psql(
        &data_source,
        "SELECT rowid FROM posts WHERE message = 'served from PostgreSQL'",
    )
    .unwrap()
    .parse()
    .unwrap();
    assert!(
        new_rowid > highest_copied,
        "{new_rowid} <= {highest_copied}"
    );

    // A second copy into the same database is refused and writes nothing.
    let before = fingerprint(&data_source);
    let (status, output) = copy_database(&sqlite, &data_source);
    assert!(!status.success(), "{output}");
    assert!(output.contains("already holds"), "{output}");
    assert!(output.contains("nothing was written"), "{output}");
    assert_eq!(fingerprint(&data_source), before);
}
