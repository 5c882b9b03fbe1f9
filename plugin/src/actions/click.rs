//! A click on a button or a choice in a menu (spec §7.2–§7.4): checks, the
//! request to the action's integration, and what its answer does to the post.

use super::Outcome;
use super::cookie;
use super::request::{self, ActionPayload, Payload, Shape, integration_failed};
use crate::action_cookie::{self, Cookie};
use crate::api::{ApiError, Request, Response};
use crate::host::{
    ChannelType, EgressError, HostError, InteractiveCall, OutboundResponse, PermissionScope, Post,
    new_post,
};
use crate::json::{fold_keys, whole_value};
use crate::slack::attachment::{PostAction, decode_attachments};
use crate::slack::text::links_lenient;
use crate::trigger_id;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The client's body; Mattermost only logs a body it cannot decode.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClickBody {
    selected_option: String,
    cookie: String,
}

/// What `respond` needs to finish the click.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub post_id: String,
    pub channel_id: String,
    /// The root of an ephemeral reply: the post's root, or the post itself.
    pub root_id: String,
    /// The 26-character trigger id the client gets.
    pub client_id: String,
    /// Whether the post is stored (else it was an ephemeral post, known
    /// only from its cookie).
    pub stored: bool,
    pub retain_props: Map<String, Value>,
    pub remove_props: Vec<String>,
    /// Whose secret signs the click, from the action's cookie; kept for the
    /// cookies of an update's actions.
    #[serde(default)]
    pub signer: String,
}

/// Where the click happened and on what, resolved from the stored post or the cookie.
struct Target {
    post_id: String,
    channel_id: String,
    root_id: String,
    action: PostAction,
    stored: bool,
    retain_props: Map<String, Value>,
    remove_props: Vec<String>,
    signer: String,
}

fn action_not_found() -> ApiError {
    ApiError::new(
        404,
        "api.post.do_action.action_id.app_error",
        "Unable to find the action.",
    )
}

fn can_read(host: &dyn crate::host::Host, user: &str, channel: &str) -> Result<(), ApiError> {
    crate::api::require_permission(
        host,
        user,
        "read_channel",
        &PermissionScope::Channel(channel.to_string()),
    )
}

pub fn start(
    host: &dyn crate::host::Host,
    req: &Request,
    post_id: &str,
    action_id: &str,
) -> Result<Outcome, ApiError> {
    let user_id = req.session_user()?;
    if action_id.is_empty() || !action_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found_route());
    }
    let body: ClickBody = serde_json::from_slice(&req.body).unwrap_or_default();
    let cookie = if body.cookie.is_empty() {
        None
    } else {
        Some(cookie::open(host, &body.cookie)?)
    };
    let target = resolve(host, user_id, post_id, action_id, cookie)?;
    let Some(integration) = target.action.integration.clone() else {
        return Err(action_not_found());
    };

    let user = host
        .user(user_id)
        .map_err(|e| ApiError::host("app.user.missing_account.const", &e))?;
    let channel = host
        .channel(&target.channel_id)
        .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e))?;
    let (team_id, team_domain) = match channel.channel_type {
        ChannelType::Direct | ChannelType::Group => (String::new(), String::new()),
        ChannelType::Open | ChannelType::Private => {
            let team = host
                .team(&channel.team_id)
                .map_err(|e| ApiError::host("app.team.get.find.app_error", &e))?;
            (team.id, team.name)
        }
    };
    let ids = trigger_id::generate(host, user_id)?;

    let mut context = (!integration.context.is_empty()).then(|| integration.context.clone());
    let mut data_source = String::new();
    if target.action.action_type == "select" && !body.selected_option.is_empty() {
        context.get_or_insert_with(Map::new).insert(
            "selected_option".into(),
            Value::String(body.selected_option),
        );
        data_source = target.action.data_source.clone();
    }
    let payload = ActionPayload {
        user_id: user.id,
        user_name: user.username,
        channel_id: channel.id,
        channel_name: channel.name,
        team_id,
        team_domain,
        post_id: target.post_id.clone(),
        trigger_id: ids.signed,
        action_type: target.action.action_type.clone(),
        data_source,
        context,
    };
    let request = request::build(
        Shape::Mattermost,
        &integration.url,
        Payload::Action(&payload),
    )?;
    let signing = cookie::signing_for(host, &target.signer);
    let pending = Pending {
        signer: target.signer,
        post_id: target.post_id,
        channel_id: target.channel_id,
        root_id: target.root_id,
        client_id: ids.client_id,
        stored: target.stored,
        retain_props: target.retain_props,
        remove_props: target.remove_props,
    };
    Ok(Outcome::Call(InteractiveCall {
        request,
        signing,
        continuation: super::continuation(&super::Continuation::Click(Box::new(pending))),
    }))
}

/// The stored post's action, or for a post that is not stored the cookie's
/// (spec §7.2), with the permission checks of each path.
fn resolve(
    host: &dyn crate::host::Host,
    user_id: &str,
    post_id: &str,
    action_id: &str,
    cookie: Option<Cookie>,
) -> Result<Target, ApiError> {
    if let Some(cookie) = &cookie {
        can_read(host, user_id, &cookie.channel_id)?;
    }
    match host.post(post_id) {
        Ok(post) if post.delete_at == 0 => {
            can_read(host, user_id, &post.channel_id)?;
            let props = props_of(&post);
            let action = props
                .get("attachments")
                .and_then(|raw| decode_attachments(raw).ok())
                .unwrap_or_default()
                .into_iter()
                .flat_map(|a| a.actions)
                .find(|a| a.id == action_id)
                .ok_or_else(action_not_found)?;
            let (retain_props, remove_props) = action_cookie::retained(&props);
            let signer = stored_signer(host, &post.id, &action);
            Ok(Target {
                signer,
                root_id: if post.root_id.is_empty() {
                    post.id.clone()
                } else {
                    post.root_id.clone()
                },
                post_id: post.id,
                channel_id: post.channel_id,
                action,
                stored: true,
                retain_props,
                remove_props,
            })
        }
        Ok(_) | Err(HostError::NotFound(_)) => {
            // Not stored: an ephemeral post, known only from its cookie.
            let Some(cookie) = cookie else {
                return Err(ApiError::forbidden().with_detail(format!("no post {post_id}")));
            };
            let bad = |detail: &str| integration_failed().with_detail(detail.to_string());
            if cookie.post_id != post_id {
                return Err(bad("the action cookie belongs to another post"));
            }
            if host.now_millis() - cookie.issued_at > action_cookie::LIFETIME_MILLIS {
                return Err(bad("the action cookie has expired"));
            }
            let Some(integration) = cookie.integration else {
                return Err(bad("no Integration in action cookie"));
            };
            Ok(Target {
                root_id: if cookie.root_post_id.is_empty() {
                    post_id.to_string()
                } else {
                    cookie.root_post_id
                },
                post_id: post_id.to_string(),
                channel_id: cookie.channel_id,
                action: PostAction {
                    id: action_id.to_string(),
                    action_type: cookie.action_type,
                    data_source: cookie.data_source,
                    integration: Some(integration),
                    ..PostAction::default()
                },
                stored: false,
                retain_props: cookie.retain_props,
                remove_props: cookie.remove_props,
                signer: cookie.signer,
            })
        }
        Err(e) => Err(ApiError::host("app.post.get.app_error", &e)),
    }
}

/// The signer a stored action's own cookie names, if that cookie was sealed
/// for this post and this URL (a copied or re-pointed action signs nothing).
fn stored_signer(host: &dyn crate::host::Host, post_id: &str, action: &PostAction) -> String {
    if action.cookie.is_empty() {
        return String::new();
    }
    match cookie::open(host, &action.cookie) {
        Ok(c)
            if c.post_id == post_id
                && c.integration.as_ref().map(|i| &i.url)
                    == action.integration.as_ref().map(|i| &i.url) =>
        {
            c.signer
        }
        _ => String::new(),
    }
}

fn props_of(post: &Post) -> Map<String, Value> {
    match serde_json::from_str(&post.props) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Mattermost's `PostActionIntegrationResponse`.
#[derive(Debug, Default)]
struct ActionResponse {
    update: Option<Map<String, Value>>,
    ephemeral_text: String,
    skip_slack_parsing: bool,
    goto_location: String,
}

/// Decodes the answer as Go's `json.Unmarshal` would: the whole body, keys
/// in any case, `null` for nothing, and a wrong type is an error.
fn decode(body: &[u8]) -> Result<ActionResponse, String> {
    let value = whole_value(body)?;
    let mut map = match value {
        Value::Null => return Ok(ActionResponse::default()),
        Value::Object(map) => map,
        other => return Err(format!("expected an object, got {other}")),
    };
    fold_keys(
        &mut map,
        &[
            "update",
            "ephemeral_text",
            "skip_slack_parsing",
            "goto_location",
        ],
    );
    let string = |key: &str, map: &Map<String, Value>| match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{key} is not a string")),
    };
    let update = match map.get("update") {
        None | Some(Value::Null) => None,
        Some(Value::Object(update)) => {
            let mut update = update.clone();
            fold_keys(&mut update, &["message", "props"]);
            match update.get("message") {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(_) => return Err("update.message is not a string".into()),
            }
            match update.get("props") {
                None | Some(Value::Null) | Some(Value::Object(_)) => {}
                Some(_) => return Err("update.props is not an object".into()),
            }
            Some(update)
        }
        Some(_) => return Err("update is not an object".into()),
    };
    let skip_slack_parsing = match map.get("skip_slack_parsing") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("skip_slack_parsing is not a boolean".into()),
    };
    Ok(ActionResponse {
        update,
        ephemeral_text: string("ephemeral_text", &map)?,
        skip_slack_parsing,
        goto_location: string("goto_location", &map)?,
    })
}

/// Finishes a click with what the integration answered: the post updated
/// (its retained props kept), an ephemeral reply, and the client's answer.
pub fn respond(
    host: &dyn crate::host::Host,
    req: &Request,
    pending: Pending,
    answer: Result<OutboundResponse, EgressError>,
) -> Result<Response, ApiError> {
    let user_id = req.session_user()?;
    let body = request::answer_body(answer)?;
    let response = if body.is_empty() {
        ActionResponse::default()
    } else {
        decode(&body).map_err(|e| {
            integration_failed().with_detail(format!("the integration's answer is not valid: {e}"))
        })?
    };

    if let Some(update) = &response.update {
        apply_update(host, user_id, &pending, update)?;
    }
    if !response.ephemeral_text.is_empty() {
        let text = if response.skip_slack_parsing {
            response.ephemeral_text.clone()
        } else {
            links_lenient(&response.ephemeral_text)
        };
        let mut reply = new_post(user_id, &pending.channel_id, text);
        reply.root_id = pending.root_id.clone();
        reply.props = Value::Object(pending.retain_props.clone()).to_string();
        host.create_ephemeral(user_id, reply)
            .map_err(|e| ApiError::host("api.post.do_action.action_integration.app_error", &e))?;
    }
    let mut out = json!({"status": "OK", "trigger_id": pending.client_id});
    if !response.goto_location.is_empty() {
        out["goto_location"] = Value::String(response.goto_location);
    }
    Ok(Response::json(200, &out))
}

/// The update's message and props replace the post's; the three retained
/// props come from the original (removed where it lacked them), and
/// `update.props: null` keeps the original props whole.
fn apply_update(
    host: &dyn crate::host::Host,
    user_id: &str,
    pending: &Pending,
    update: &Map<String, Value>,
) -> Result<(), ApiError> {
    let message = update
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let new_props = update.get("props").and_then(Value::as_object).cloned();
    let merge = |original: Map<String, Value>| -> Map<String, Value> {
        let Some(mut props) = new_props.clone() else {
            return original;
        };
        for key in action_cookie::RETAINED_PROPS {
            match original.get(*key) {
                Some(v) => {
                    props.insert((*key).to_string(), v.clone());
                }
                None => {
                    props.remove(*key);
                }
            }
        }
        props
    };
    let fail = |e: HostError| ApiError::host("api.post.do_action.action_integration.app_error", &e);
    if pending.stored {
        let mut post = host.post(&pending.post_id).map_err(|e| match e {
            HostError::NotFound(_) => action_not_found().with_detail("the post was deleted"),
            e => fail(e),
        })?;
        post.message = message;
        post.props = Value::Object(merge(props_of(&post))).to_string();
        // The integration chose the update's actions: they sign as its own.
        if !pending.signer.is_empty() {
            action_cookie::seal_cookies(host, &mut post, &pending.signer);
        }
        host.update_post(post).map_err(fail)?;
    } else {
        // An ephemeral post is replaced on the client by showing it again
        // under its id.
        let mut original = pending.retain_props.clone();
        for key in &pending.remove_props {
            original.remove(key);
        }
        let mut post = new_post(user_id, &pending.channel_id, message);
        post.id = pending.post_id.clone();
        if pending.root_id != pending.post_id {
            post.root_id = pending.root_id.clone();
        }
        post.props = Value::Object(merge(original)).to_string();
        action_cookie::seal_cookies(host, &mut post, &pending.signer);
        host.create_ephemeral(user_id, post).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;
    use crate::testing::{FakeHost, channel, reply, user};

    const TEAM: &str = "tttttttttttttttttttttttttt";
    const CHAN: &str = "cccccccccccccccccccccccccc";

    fn setup() -> (FakeHost, String) {
        let host = FakeHost::default();
        host.users.borrow_mut().push(user("ua", "alice"));
        host.channels
            .borrow_mut()
            .push(channel(CHAN, TEAM, "town-square", ChannelType::Open));
        host.add_channel_member(CHAN, "ua").unwrap();
        let mut post = new_post("bot", CHAN, "pick one".into());
        post.id = "pppppppppppppppppppppppppp".into();
        post.props = json!({
            "from_webhook": "true",
            "attachments": [{"actions": [
                {"id": "go", "type": "button", "name": "Go",
                 "integration": {"url": "http://x/go", "context": {"k": "v"}}},
                {"id": "pick", "type": "select", "name": "Pick", "data_source": "users",
                 "integration": {"url": "http://x/pick"}},
                {"id": "dead", "type": "button", "name": "Dead"}
            ]}]
        })
        .to_string();
        host.create_post(post.clone()).unwrap();
        (host, post.id)
    }

    fn click(host: &FakeHost, post: &str, action: &str, body: Value) -> Result<Outcome, ApiError> {
        let req = Request {
            method: "POST".into(),
            body: body.to_string().into_bytes(),
            user_id: Some("ua".into()),
            ..Request::default()
        };
        start(host, &req, post, action)
    }

    fn call(outcome: Outcome) -> InteractiveCall {
        match outcome {
            Outcome::Call(call) => call,
            Outcome::Done(r) => panic!("no call: {r:?}"),
        }
    }

    #[test]
    fn a_button_click_sends_every_field() {
        let (host, post) = setup();
        let c = call(click(&host, &post, "go", json!({})).unwrap());
        assert_eq!(c.request.url, "http://x/go");
        let body: Value = serde_json::from_slice(&c.request.body).unwrap();
        assert_eq!(body["user_id"], "ua");
        assert_eq!(body["user_name"], "alice");
        assert_eq!(body["channel_name"], "town-square");
        assert_eq!(body["team_id"], TEAM);
        assert_eq!(body["team_domain"], "team");
        assert_eq!(body["post_id"], post);
        assert_eq!(body["type"], "button");
        assert_eq!(body["data_source"], "");
        assert_eq!(body["context"], json!({"k": "v"}));
        let decoded = trigger_id::decode(&host, body["trigger_id"].as_str().unwrap(), 30).unwrap();
        assert_eq!(decoded.user_id, "ua");
    }

    #[test]
    fn a_select_sends_the_option_and_its_data_source() {
        let (host, post) = setup();
        let c = call(click(&host, &post, "pick", json!({"selected_option": "bob"})).unwrap());
        let body: Value = serde_json::from_slice(&c.request.body).unwrap();
        assert_eq!(body["context"], json!({"selected_option": "bob"}));
        assert_eq!(body["data_source"], "users");
    }

    #[test]
    fn unknown_actions_and_unreadable_posts_are_refused() {
        let (host, post) = setup();
        for action in ["nope", "dead"] {
            let err = click(&host, &post, action, json!({})).unwrap_err();
            assert_eq!(
                (err.status, err.id.as_str()),
                (404, "api.post.do_action.action_id.app_error")
            );
        }
        let err = click(&host, "qqqqqqqqqqqqqqqqqqqqqqqqqq", "go", json!({})).unwrap_err();
        assert_eq!(err.status, 403);
        let err = click(&host, &post, "go", json!({"cookie": "forged"})).unwrap_err();
        assert_eq!(
            (err.status, err.id.as_str()),
            (400, "api.post.do_action.action_integration.app_error")
        );
    }

    fn finish(
        host: &FakeHost,
        c: &InteractiveCall,
        answer: OutboundResponse,
    ) -> Result<Response, ApiError> {
        let req = Request {
            user_id: Some("ua".into()),
            ..Request::default()
        };
        let super::super::Continuation::Click(pending) =
            serde_json::from_slice(&c.continuation).unwrap()
        else {
            panic!("not a click")
        };
        respond(host, &req, *pending, Ok(answer))
    }

    #[test]
    fn an_update_keeps_the_retained_props_and_an_ephemeral_reply_follows() {
        let (host, post) = setup();
        let c = call(click(&host, &post, "go", json!({})).unwrap());
        let answer = json!({"update": {"message": "done", "props": {"from_webhook": "false", "override_username": "x", "k": 1}},
                            "ephemeral_text": "see <http://x|this>"});
        let out = finish(
            &host,
            &c,
            reply(200, "application/json", &answer.to_string()),
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(out["status"], "OK");
        assert_eq!(out["trigger_id"].as_str().unwrap().len(), 26);
        let stored = host.post(&post).unwrap();
        assert_eq!(stored.message, "done");
        let props: Value = serde_json::from_str(&stored.props).unwrap();
        assert_eq!(props, json!({"from_webhook": "true", "k": 1}));
        let eph = host.ephemerals.borrow();
        let (to, reply) = eph.last().unwrap();
        assert_eq!(to, "ua");
        assert_eq!(reply.message, "see [this](http://x)");
        assert_eq!(reply.root_id, post);
    }

    #[test]
    fn only_a_cookie_sealed_for_this_post_and_url_names_a_signer() {
        let (host, post) = setup();
        let mut action = PostAction {
            id: "go".into(),
            integration: Some(crate::slack::attachment::PostActionIntegration {
                url: "http://x/go".into(),
                ..Default::default()
            }),
            ..PostAction::default()
        };
        let sealed = |post_id: &str, url: &str| {
            action_cookie::seal(
                &host,
                &Cookie {
                    post_id: post_id.into(),
                    integration: Some(crate::slack::attachment::PostActionIntegration {
                        url: url.into(),
                        ..Default::default()
                    }),
                    signer: "command:c".into(),
                    ..Cookie::default()
                },
            )
        };
        action.cookie = sealed(&post, "http://x/go");
        assert_eq!(stored_signer(&host, &post, &action), "command:c");
        action.cookie = sealed("another", "http://x/go");
        assert_eq!(stored_signer(&host, &post, &action), "");
        action.cookie = sealed(&post, "http://elsewhere/go");
        assert_eq!(stored_signer(&host, &post, &action), "");
        action.cookie = "forged".into();
        assert_eq!(stored_signer(&host, &post, &action), "");
        // A signer whose command is gone signs nothing.
        assert!(cookie::signing_for(&host, "command:c").is_empty());
        assert!(cookie::signing_for(&host, "").is_empty());
    }

    #[test]
    fn a_bad_answer_changes_nothing() {
        let (host, post) = setup();
        let before = host.post(&post).unwrap();
        for body in ["not json", "{\"update\": 5}", "{} trailing"] {
            let c = call(click(&host, &post, "go", json!({})).unwrap());
            let err = finish(&host, &c, reply(200, "application/json", body)).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
        }
        let after = host.post(&post).unwrap();
        assert_eq!((after.message, after.props), (before.message, before.props));
        assert!(host.ephemerals.borrow().is_empty());
    }
}
