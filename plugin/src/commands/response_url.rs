//! `response_url` (spec §5.6): each custom command call gets a URL the
//! integration may POST follow-up responses to, 5 times within 30 minutes.
//! The use counter moves by compare-and-set, so racing uses cannot exceed it.

use super::registry;
use super::response::{self, CommandResponse, Invocation, Origin};
use crate::api::{ApiError, Request, Response};
use crate::host::Host;
use crate::ids;
use serde::{Deserialize, Serialize};

pub const LIFETIME_MILLIS: i64 = 30 * 60 * 1000;
pub const MAX_USES: u32 = 5;

const PREFIX: &str = "command_hook/";
/// `command_hook_time/<create_at, zero-padded>/<id>`: records in age order, so
/// creating one can clear out a few expired ones without listing them all.
const BY_TIME: &str = "command_hook_time/";
/// Expired records removed per new record: more than are created, so the
/// store stays bounded by what 30 minutes produce.
const PRUNE_BATCH: u32 = 4;

/// Mattermost's `CommandWebhook`: where a follow-up posts, and as whom.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandWebhook {
    pub id: String,
    pub create_at: i64,
    pub command_id: String,
    pub user_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub use_count: u32,
}

fn storage(e: crate::host::HostError) -> ApiError {
    ApiError::new(500, "app.plugin.kv.app_error", "The plugin store failed.")
        .with_detail(e.detail().to_string())
}

fn time_key(create_at: i64, id: &str) -> String {
    format!("{BY_TIME}{create_at:020}/{id}")
}

/// Records a new `response_url` target and returns its id.
pub fn create(
    host: &dyn Host,
    command_id: &str,
    user_id: &str,
    channel_id: &str,
    root_id: &str,
) -> Result<String, ApiError> {
    let now = host.now_millis();
    prune(host, now);
    let hook = CommandWebhook {
        id: ids::new_id(),
        create_at: now,
        command_id: command_id.into(),
        user_id: user_id.into(),
        channel_id: channel_id.into(),
        root_id: root_id.into(),
        use_count: 0,
    };
    let bytes = serde_json::to_vec(&hook).unwrap_or_default();
    host.kv_set(&time_key(now, &hook.id), b"")
        .map_err(storage)?;
    host.kv_set(&format!("{PREFIX}{}", hook.id), &bytes)
        .map_err(storage)?;
    Ok(hook.id)
}

/// Removes a few of the oldest records once they have expired. Best effort:
/// a failure here must not fail the command.
fn prune(host: &dyn Host, now: i64) {
    let Ok(keys) = host.kv_list(BY_TIME, 0, PRUNE_BATCH) else {
        return;
    };
    for key in keys {
        let Some((at, id)) = key[BY_TIME.len()..].split_once('/') else {
            let _ = host.kv_delete(&key);
            continue;
        };
        if at
            .parse::<i64>()
            .map_or(true, |at| now - at < LIFETIME_MILLIS)
        {
            break;
        }
        let _ = host.kv_delete(&format!("{PREFIX}{id}"));
        let _ = host.kv_delete(&key);
    }
}

fn missing() -> ApiError {
    ApiError::new(
        404,
        "app.command_webhook.get.missing",
        "Unable to get the webhook.",
    )
}

/// Counts one use of a live record and returns it as it was before: 404 when
/// unknown or older than 30 minutes, 400 once all uses are spent.
pub fn try_use(host: &dyn Host, id: &str) -> Result<CommandWebhook, ApiError> {
    let key = format!("{PREFIX}{id}");
    // Each lost race means another use went through; there are at most five.
    for _ in 0..(MAX_USES * 4) {
        let Some(bytes) = host.kv_get(&key).map_err(storage)? else {
            return Err(missing());
        };
        let hook: CommandWebhook = serde_json::from_slice(&bytes).map_err(|_| missing())?;
        if host.now_millis() - hook.create_at >= LIFETIME_MILLIS {
            return Err(missing());
        }
        if hook.use_count >= MAX_USES {
            return Err(ApiError::new(
                400,
                "app.command_webhook.try_use.invalid",
                "Invalid webhook: it has been used too many times.",
            ));
        }
        let used = CommandWebhook {
            use_count: hook.use_count + 1,
            ..hook.clone()
        };
        let new = serde_json::to_vec(&used).unwrap_or_default();
        if host
            .kv_compare_and_set(&key, Some(&bytes), Some(&new))
            .map_err(storage)?
        {
            return Ok(hook);
        }
    }
    Err(ApiError::new(
        500,
        "app.command_webhook.try_use.internal_error",
        "Unable to use the webhook.",
    ))
}

/// `POST /hooks/commands/{id}`: `ok`, or an envelope whose id is
/// `web.command_webhook.parse.app_error` for a body that does not decode and
/// `web.command_webhook.general.app_error` (with the cause's status) otherwise.
pub fn handle(host: &dyn Host, req: &Request, id: &str) -> Response {
    let developer = host.settings().enable_developer;
    match follow_up(host, req, id) {
        Ok(()) => Response::text(200, "ok"),
        Err(e) => e.into_response(&req.request_id, developer),
    }
}

fn follow_up(host: &dyn Host, req: &Request, id: &str) -> Result<(), ApiError> {
    let mut response =
        CommandResponse::from_http(req.header("content-type"), &req.body).map_err(|e| {
            ApiError::new(
                400,
                "web.command_webhook.parse.app_error",
                "Unable to parse incoming data.",
            )
            .with_detail(e)
        })?;
    deliver(host, id, &mut response).map_err(|e| {
        e.wrap(
            "web.command_webhook.general.app_error",
            format!("Failed to handle the command webhook {id}."),
        )
    })
}

fn deliver(host: &dyn Host, id: &str, response: &mut CommandResponse) -> Result<(), ApiError> {
    // Check before counting a use: an unknown command leaves the record alone.
    let Some(peek) = host
        .kv_get(&format!("{PREFIX}{id}"))
        .map_err(storage)?
        .and_then(|b| serde_json::from_slice::<CommandWebhook>(&b).ok())
    else {
        return Err(missing());
    };
    let command = registry::get(host, &peek.command_id)?.ok_or_else(|| {
        ApiError::new(
            400,
            "web.command_webhook.command.app_error",
            "Couldn't find the command.",
        )
    })?;
    let hook = try_use(host, id)?;
    response::handle(
        host,
        Origin {
            username: &command.username,
            icon_url: &command.icon_url,
            built_in: false,
            command_id: &command.id,
        },
        Invocation {
            user_id: &hook.user_id,
            channel_id: &hook.channel_id,
            root_id: &hook.root_id,
            trigger: &command.trigger,
        },
        response,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;
    use crate::testing::FakeHost;

    fn setup() -> (FakeHost, String) {
        let host = FakeHost::default();
        registry::save(
            &host,
            &Command {
                id: "cmd".into(),
                team_id: "t".into(),
                trigger: "deploy".into(),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let id = create(&host, "cmd", "u1", "c1", "").unwrap();
        (host, id)
    }

    fn post(host: &FakeHost, id: &str, ct: &str, body: &str) -> Response {
        let req = Request {
            method: "POST".into(),
            path: format!("/hooks/commands/{id}"),
            headers: vec![("Content-Type".into(), ct.into())],
            body: body.as_bytes().to_vec(),
            request_id: "r".into(),
            ..Default::default()
        };
        handle(host, &req, id)
    }

    fn error_id(r: &Response) -> (u16, String) {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        (r.status, v["id"].as_str().unwrap().to_string())
    }

    #[test]
    fn five_uses_then_refused() {
        let (host, id) = setup();
        for i in 0..5 {
            let r = post(
                &host,
                &id,
                "application/json",
                &format!(r#"{{"text":"n{i}","response_type":"in_channel"}}"#),
            );
            assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
        }
        let r = post(&host, &id, "text/plain", "sixth");
        assert_eq!(
            error_id(&r),
            (400, "web.command_webhook.general.app_error".into())
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            v["detailed_error"]
                .as_str()
                .unwrap()
                .contains("app.command_webhook.try_use.invalid")
        );
        let posts = host.posts.borrow();
        assert_eq!(posts.len(), 5);
        assert_eq!(
            (posts[0].user_id.as_str(), posts[0].channel_id.as_str()),
            ("u1", "c1")
        );
        assert!(posts[0].props.contains("from_webhook"));
    }

    #[test]
    fn plain_text_is_ephemeral_and_json_must_parse() {
        let (host, id) = setup();
        assert_eq!(post(&host, &id, "text/plain", "just text").status, 200);
        assert_eq!(host.ephemerals.borrow()[0].1.message, "just text");
        let r = post(&host, &id, "application/json", "{bad");
        assert_eq!(
            error_id(&r),
            (400, "web.command_webhook.parse.app_error".into())
        );
    }

    #[test]
    fn unknown_and_expired_are_404() {
        let (host, id) = setup();
        let r = post(&host, "nosuchhook", "text/plain", "x");
        assert_eq!(
            error_id(&r),
            (404, "web.command_webhook.general.app_error".into())
        );
        let key = format!("{PREFIX}{id}");
        let mut hook: CommandWebhook =
            serde_json::from_slice(&host.kv_get(&key).unwrap().unwrap()).unwrap();
        hook.create_at -= LIFETIME_MILLIS;
        host.kv_set(&key, &serde_json::to_vec(&hook).unwrap())
            .unwrap();
        let r = post(&host, &id, "text/plain", "x");
        assert_eq!(
            error_id(&r),
            (404, "web.command_webhook.general.app_error".into())
        );
    }

    #[test]
    fn expired_records_are_pruned_when_new_ones_come() {
        let host = FakeHost::default();
        let old = create(&host, "cmd", "u", "c", "").unwrap();
        let key = format!("{PREFIX}{old}");
        let hook: CommandWebhook =
            serde_json::from_slice(&host.kv_get(&key).unwrap().unwrap()).unwrap();
        // Move the record back in time, keys included.
        host.kv_delete(&time_key(hook.create_at, &old)).unwrap();
        host.kv_set(&time_key(hook.create_at - LIFETIME_MILLIS, &old), b"")
            .unwrap();
        let fresh = create(&host, "cmd", "u", "c", "").unwrap();
        assert!(host.kv_get(&key).unwrap().is_none());
        assert!(host.kv_get(&format!("{PREFIX}{fresh}")).unwrap().is_some());
        assert_eq!(host.kv_list(BY_TIME, 0, 10).unwrap().len(), 1);
    }
}
