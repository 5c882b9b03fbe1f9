//! The example transform in the real host shim, started by the harness the
//! way a plugin developer's crate outside this repository starts it: every
//! file named explicitly (the plugin component, its manifest, the transform),
//! nothing found through the shim's own source folder.
//!
//! Build the components first: `make component` (or `cargo build --target
//! wasm32-wasip2 --release -p switchboard-plugin -p uptime-kuma-transform`).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use switchboard_host_shim::harness::TestShim;

/// Where this crate is, and the workspace's `target/` above it.
fn here() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn wasm(file: &str) -> PathBuf {
    here().join("../../target/wasm32-wasip2/release").join(file)
}

/// A shim running the given plugin build and manifest (a developer's own),
/// letting hooks post under the name they give (as the example does).
async fn shim() -> TestShim {
    TestShim::builder()
        .component(wasm("switchboard_plugin.wasm"))
        .manifest(here().join("../../manifest.json"))
        .config(|c| c.service_settings.enable_post_username_override = true)
        .start()
        .await
        .expect("the shim starts (is the plugin built? `make component`)")
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(here().join("samples").join(format!("{name}.json"))).unwrap()
}

/// A hook in town-square whose transform is the example component.
async fn hook(shim: &TestShim) -> String {
    let transform = shim
        .load_transform("uptime kuma", wasm("uptime_kuma_transform.wasm"))
        .await
        .expect("the example transform loads (is it built? `make component`)");
    let reply = reqwest::Client::new()
        .post(shim.url("/api/v4/hooks/incoming"))
        .bearer_auth(&shim.admin_token)
        .json(&json!({
            "channel_id": shim.town_square.id,
            "display_name": "Uptime Kuma",
            "transform": {"component": transform},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let hook: Value = reply.json().await.unwrap();
    shim.url(&format!("/hooks/{}", hook["id"].as_str().unwrap()))
}

async fn post(url: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn uptime_kumas_notifications_become_posts_and_pending_ones_are_dropped() {
    let shim = shim().await;
    let url = hook(&shim).await;

    let down = post(&url, sample("down")).await;
    assert_eq!(down.status(), 200);
    let posts = shim.posts();
    assert_eq!(posts.len(), 1);
    let props: Value = serde_json::from_str(&posts[0].props).unwrap();
    assert_eq!(props["override_username"], "Uptime Kuma");
    let attachment = &props["attachments"][0];
    assert_eq!(attachment["color"], "#d24b4e");
    assert_eq!(attachment["title"], ":red_circle: Billing API is down");
    assert_eq!(
        attachment["title_link"],
        "https://billing.example.com/health"
    );
    assert_eq!(
        attachment["fields"][0]["value"],
        "connect ECONNREFUSED 10.0.4.12:443"
    );

    // Pending is dropped: 200, nothing posted, and the answer says why.
    let pending = post(&url, sample("pending")).await;
    assert_eq!(pending.status(), 200);
    assert_eq!(
        pending.headers()["x-switchboard-ignored"],
        "transform:dropped"
    );
    assert_eq!(shim.posts().len(), 1);

    let up = post(&url, sample("up")).await;
    assert_eq!(up.status(), 200);
    let posts = shim.posts();
    assert_eq!(posts.len(), 2);
    let props: Value = serde_json::from_str(&posts[1].props).unwrap();
    assert_eq!(props["attachments"][0]["color"], "#3db887");
    assert_eq!(props["attachments"][0]["fields"][0]["value"], "48 ms");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_body_that_is_not_uptime_kumas_is_the_senders_422() {
    let shim = shim().await;
    let url = hook(&shim).await;
    let reply = post(&url, "status=down".into()).await;
    assert_eq!(reply.status(), 422);
    let error: Value = reply.json().await.unwrap();
    assert_eq!(error["status_code"], 422);
    assert!(
        error["detailed_error"]
            .as_str()
            .unwrap()
            .contains("not JSON"),
        "{error}"
    );
    assert!(shim.posts().is_empty());
    shim.stop().await.unwrap();
}

/// The builder reads the manifest it is given: one for an API version the
/// shim does not link stops the start, and a file that is not a transform
/// does not load.
#[tokio::test]
async fn the_builder_uses_the_files_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(here().join("../../manifest.json")).unwrap())
            .unwrap();
    manifest["api_version"] = json!("9.9.9");
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    let refused = TestShim::builder()
        .component(wasm("switchboard_plugin.wasm"))
        .manifest(&path)
        .start()
        .await;
    let err = refused.err().expect("a manifest for API 9.9.9 is refused");
    assert!(err.to_string().contains("9.9.9"), "{err}");

    let shim = shim().await;
    let not_a_transform = shim
        .load_transform("plugin", wasm("switchboard_plugin.wasm"))
        .await
        .unwrap_err();
    assert!(!not_a_transform.to_string().is_empty());
    shim.stop().await.unwrap();
}
