//! `POST /api/v4/commands/execute` (the `commands.execute` export): check the
//! request, split the command line, then the team's custom command (a request
//! the host sends and signs, answered through `respond`) or a built-in, and
//! handle what comes back (spec §5.2–§5.4).

use super::builtin;
use super::model::Command;
use super::parse::{self, CommandLine};
use super::registry;
use super::response::{self, CommandResponse, Invocation, Origin};
use super::response_url;
use crate::api::ApiError;
use crate::host::{
    Channel, ChannelType, CommandCall, EgressError, Header, Host, OutboundRequest,
    OutboundResponse, PermissionScope, Signing, Team, User,
};
use crate::outbound::form_body;
use crate::trigger_id::{self, TriggerId};
use serde::{Deserialize, Serialize};

/// What the client sent, with the session user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandArgs {
    pub user_id: String,
    pub channel_id: String,
    pub team_id: String,
    pub root_id: String,
    pub parent_id: String,
    /// The whole line as typed, e.g. `/deploy staging`.
    pub command: String,
}

/// Longest trigger quoted back in the not-found error, in bytes.
const MAX_QUOTED_TRIGGER: usize = 512;

/// What `execute` comes to: the response JSON, or a request the host sends
/// (outside any instance) before `respond` finishes the command.
#[derive(Debug)]
pub enum Outcome {
    Done(String),
    Call(CommandCall),
}

/// What `respond` needs that the command line does not say again.
#[derive(Debug, Serialize, Deserialize)]
struct Continuation {
    command_id: String,
    /// The trigger id given back to the client.
    client_id: String,
}

/// Who runs the command where, checked as Mattermost checks it.
struct Context {
    user: User,
    channel: Channel,
    team: Option<Team>,
}

/// Runs a command line: a built-in answers at once; a custom command becomes
/// a request for the host to send.
pub fn execute(host: &dyn Host, args: &CommandArgs) -> Result<Outcome, ApiError> {
    let ctx = prepare(host, args)?;
    let line = parse::split(&args.command);
    let Some(trigger) = line.trigger.strip_prefix('/') else {
        return Err(ApiError::new(
            400,
            "api.command.execute_command.format.app_error",
            format!("Command trigger '{}' must start with '/'.", line.trigger),
        ));
    };
    let ids = trigger_id::generate(host, &args.user_id)?;
    let run = Run {
        args,
        user: &ctx.user,
        channel: &ctx.channel,
        team: ctx.team.as_ref(),
        line: &line,
        trigger,
        ids: &ids,
    };

    // Custom commands come first: with commands disabled even built-ins fail.
    super::require_enabled(host)?;
    if let Some(team) = run.team
        && let Some(custom) = registry::by_trigger(host, &team.id, trigger)?
    {
        let (request, signing) = custom_request(host, &run, team, &custom)?;
        let continuation = Continuation {
            command_id: custom.id.clone(),
            client_id: ids.client_id.clone(),
        };
        return Ok(Outcome::Call(CommandCall {
            request,
            signing,
            continuation: serde_json::to_vec(&continuation).unwrap_or_default(),
        }));
    }

    let settings = host.settings();
    let builtin_ctx = builtin::Context {
        user: &ctx.user,
        channel: &ctx.channel,
        team: run.team,
        root_id: &args.root_id,
        site_url: settings.site_url.trim_end_matches('/'),
    };
    if let Some(mut response) = builtin::run(host, &builtin_ctx, trigger, line.text) {
        let origin = Origin {
            username: "",
            icon_url: "",
            built_in: true,
            command_id: "",
        };
        response::handle(host, origin, run.invocation(), &mut response)?;
        return Ok(Outcome::Done(response.to_json().to_string()));
    }

    let mut quoted = trigger.to_string();
    if quoted.len() > MAX_QUOTED_TRIGGER {
        let mut cut = MAX_QUOTED_TRIGGER;
        while !quoted.is_char_boundary(cut) {
            cut -= 1;
        }
        quoted.truncate(cut);
        quoted.push_str("...");
    }
    Err(ApiError::new(
        404,
        "api.command.execute_command.not_found.app_error",
        format!("Command with a trigger of '{quoted}' not found."),
    ))
}

/// Finishes a custom command with what its URL answered (in a fresh
/// instance: the checks run again, so a command whose user lost access while
/// the host waited posts nothing).
pub fn respond(
    host: &dyn Host,
    args: &CommandArgs,
    continuation: &[u8],
    answer: Result<OutboundResponse, EgressError>,
) -> Result<String, ApiError> {
    let ctx = prepare(host, args)?;
    let line = parse::split(&args.command);
    let trigger = line.trigger.strip_prefix('/').unwrap_or(&line.trigger);
    let cont: Continuation = serde_json::from_slice(continuation)
        .map_err(|e| failed(trigger).with_detail(format!("bad continuation: {e}")))?;
    let custom = registry::get(host, &cont.command_id)?
        .ok_or_else(|| failed(trigger).with_detail("the command was deleted"))?;
    let ids = TriggerId {
        client_id: cont.client_id.clone(),
        signed: String::new(),
    };
    let run = Run {
        args,
        user: &ctx.user,
        channel: &ctx.channel,
        team: ctx.team.as_ref(),
        line: &line,
        trigger,
        ids: &ids,
    };
    let mut response = decode_reply(trigger, answer)?;
    response.trigger_id = cont.client_id;
    let origin = Origin {
        username: &custom.username,
        icon_url: &custom.icon_url,
        built_in: false,
        command_id: &custom.id,
    };
    response::handle(host, origin, run.invocation(), &mut response)?;
    Ok(response.to_json().to_string())
}

/// The request checks (spec §5.2): trigger present, permission, channel, team.
fn prepare(host: &dyn Host, args: &CommandArgs) -> Result<Context, ApiError> {
    let command = &args.command;
    if command.len() <= 1 || !command.starts_with('/') || !crate::ids::is_valid(&args.channel_id) {
        return Err(ApiError::new(
            400,
            "api.command.execute_command.start.app_error",
            "No command trigger found.",
        ));
    }
    let in_channel = PermissionScope::Channel(args.channel_id.clone());
    if !host
        .has_permission(&args.user_id, "create_post", &in_channel)
        .unwrap_or(false)
    {
        return Err(ApiError::forbidden().with_detail("missing permission create_post"));
    }
    let channel = host
        .channel(&args.channel_id)
        .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e))?;
    if channel.delete_at != 0 {
        return Err(ApiError::new(
            400,
            "api.command.execute_command.deleted.error",
            "Cannot execute commands in an archived channel.",
        ));
    }
    // The channel decides the team, so a command of another team cannot be
    // run here; direct and group channels have none and take the client's,
    // which the user must belong to.
    let team_id = match channel.channel_type {
        ChannelType::Open | ChannelType::Private => channel.team_id.clone(),
        ChannelType::Direct | ChannelType::Group => {
            if !args.team_id.is_empty()
                && !host
                    .is_team_member(&args.team_id, &args.user_id)
                    .unwrap_or(false)
                && !host
                    .has_permission(&args.user_id, "create_post", &PermissionScope::System)
                    .unwrap_or(false)
            {
                return Err(ApiError::forbidden().with_detail("missing permission create_post"));
            }
            args.team_id.clone()
        }
    };

    let user = host
        .user(&args.user_id)
        .map_err(|e| ApiError::host("app.user.missing_account.const", &e))?;
    let team = if team_id.is_empty() {
        None
    } else {
        Some(
            host.team(&team_id)
                .map_err(|e| ApiError::host("app.team.get.find.app_error", &e))?,
        )
    };
    Ok(Context {
        user,
        channel,
        team,
    })
}

/// One command run: who, where, and what was typed.
struct Run<'a> {
    args: &'a CommandArgs,
    user: &'a User,
    channel: &'a Channel,
    team: Option<&'a Team>,
    line: &'a CommandLine<'a>,
    /// Lower-cased, without the `/`.
    trigger: &'a str,
    ids: &'a TriggerId,
}

impl Run<'_> {
    fn invocation(&self) -> Invocation<'_> {
        Invocation {
            user_id: &self.args.user_id,
            channel_id: &self.channel.id,
            root_id: &self.args.root_id,
            trigger: self.trigger,
        }
    }
}

fn failed(trigger: &str) -> ApiError {
    ApiError::new(
        500,
        "api.command.execute_command.failed.app_error",
        format!("Command with a trigger of '{trigger}' failed."),
    )
}

/// The fields of the request to the command's URL (spec §5.3).
fn request_params(
    host: &dyn Host,
    run: &Run<'_>,
    team: &Team,
    command: &Command,
    response_url: &str,
) -> Vec<(String, String)> {
    let command_name = format!("/{}", run.trigger);
    let mut params: Vec<(String, String)> = [
        ("token", command.token.as_str()),
        ("team_id", command.team_id.as_str()),
        ("team_domain", team.name.as_str()),
        ("channel_id", run.channel.id.as_str()),
        ("channel_name", run.channel.name.as_str()),
        ("user_id", run.user.id.as_str()),
        ("user_name", run.user.username.as_str()),
        ("command", command_name.as_str()),
        ("text", run.line.text),
        ("trigger_id", run.ids.signed.as_str()),
        ("root_id", run.args.root_id.as_str()),
        ("response_url", response_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    for name in parse::at_mentions(run.line.text) {
        let found = std::iter::once(name.as_str())
            .chain(parse::trimmed_candidates(&name))
            .find_map(|candidate| {
                host.user_by_username(candidate)
                    .ok()
                    .map(|u| (candidate.to_string(), u))
            });
        let Some((name, user)) = found else { continue };
        if host.is_team_member(&team.id, &user.id).unwrap_or(false) {
            params.push(("user_mentions".into(), name));
            params.push(("user_mentions_ids".into(), user.id));
        }
    }
    for name in parse::channel_mentions(run.line.text) {
        if let Ok(channel) = host.channel_by_name(&team.id, &name)
            && channel.channel_type == ChannelType::Open
        {
            params.push(("channel_mentions".into(), name));
            params.push(("channel_mentions_ids".into(), channel.id));
        }
    }
    params
}

/// The request to a custom command's URL and how the host signs it.
fn custom_request(
    host: &dyn Host,
    run: &Run<'_>,
    team: &Team,
    command: &Command,
) -> Result<(OutboundRequest, Vec<Signing>), ApiError> {
    let settings = host.settings();
    let site_url = settings.site_url.trim_end_matches('/');
    if site_url.is_empty() {
        return Err(ApiError::new(
            400,
            "api.command.execute_command.site_url_required.app_error",
            "A Site URL is required to run custom slash commands. Set it in the System Console.",
        ));
    }
    let hook_id = response_url::create(
        host,
        &command.id,
        &run.args.user_id,
        &run.channel.id,
        &run.args.root_id,
    )
    .map_err(|e| failed(run.trigger).with_detail(e.detailed_error))?;
    let response_url = format!("{site_url}/hooks/commands/{hook_id}");
    let form = form_body(request_params(host, run, team, command, &response_url));

    let (method, url, body) = if command.method == "G" {
        let mut url = url::Url::parse(&command.url)
            .map_err(|e| failed(run.trigger).with_detail(e.to_string()))?;
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{form}"),
            _ => form,
        };
        url.set_query(Some(&query));
        ("GET", url.to_string(), Vec::new())
    } else {
        ("POST", command.url.clone(), form.into_bytes())
    };
    let mut headers = vec![
        ("Accept".to_string(), "application/json".to_string()),
        (
            "Authorization".to_string(),
            format!("Token {}", command.token),
        ),
    ];
    if method == "POST" {
        headers.push((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
    }
    // Signed by the host when it sends, with the timestamp of that moment.
    let signing = if command.signing_secret.is_empty() {
        Vec::new()
    } else {
        vec![Signing::Slack(command.signing_secret.clone())]
    };
    let request = OutboundRequest {
        method: method.into(),
        url,
        headers: headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body,
        timeout_ms: None,
    };
    Ok((request, signing))
}

/// Decodes what the command's URL answered (or why nothing came).
fn decode_reply(
    trigger: &str,
    answer: Result<OutboundResponse, EgressError>,
) -> Result<CommandResponse, ApiError> {
    let reply = answer.map_err(|e| {
        let detail = match e {
            EgressError::Refused(m)
            | EgressError::InvalidUrl(m)
            | EgressError::Timeout(m)
            | EgressError::Connect(m)
            | EgressError::Other(m) => m,
        };
        failed(trigger).with_detail(detail)
    })?;
    if reply.status != 200 {
        return Err(ApiError::new(
            500,
            "api.command.execute_command.failed_resp.app_error",
            format!(
                "Command with a trigger of '{}' returned response {}.",
                trigger, reply.status
            ),
        )
        .with_detail(String::from_utf8_lossy(&reply.body).into_owned()));
    }
    let content_type = reply
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.as_str());
    CommandResponse::from_http(content_type, &reply.body)
        .map_err(|e| failed(trigger).with_detail(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ChannelType;
    use crate::testing::{FakeHost, channel, reply, run_command, user};
    use serde_json::Value;

    const TEAM: &str = "tttttttttttttttttttttttttt";
    const TOWN: &str = "cccccccccccccccccccccccccc";

    struct Setup {
        host: FakeHost,
    }

    impl Setup {
        fn new(method: &str, url: &str) -> Setup {
            let host = FakeHost::default();
            host.users.borrow_mut().push(user("ua", "alice"));
            host.users.borrow_mut().push(user("ub", "bob"));
            host.channels
                .borrow_mut()
                .push(channel(TOWN, TEAM, "town-square", ChannelType::Open));
            host.channels
                .borrow_mut()
                .push(channel("dev", TEAM, "dev", ChannelType::Open));
            host.channels
                .borrow_mut()
                .push(channel("sec", TEAM, "secret", ChannelType::Private));
            host.add_channel_member(TOWN, "ua").unwrap();
            let command = Command {
                id: "cmd".into(),
                token: "tokentokentokentokentokent".into(),
                team_id: TEAM.into(),
                trigger: "deploy".into(),
                method: method.into(),
                url: url.into(),
                signing_secret: "s3cret".into(),
                ..Default::default()
            };
            registry::save(&host, &command, None).unwrap();
            Setup { host }
        }

        fn run(&self, line: &str) -> Result<Value, ApiError> {
            run_command(
                &self.host,
                &CommandArgs {
                    user_id: "ua".into(),
                    channel_id: TOWN.into(),
                    command: line.into(),
                    ..Default::default()
                },
            )
            .map(|json| serde_json::from_str(&json).unwrap())
        }

        fn answer(&self, status: u16, ct: &str, body: &str) {
            self.host
                .replies
                .borrow_mut()
                .push(Ok(reply(status, ct, body)));
        }

        fn sent(&self) -> OutboundRequest {
            self.host.sent.borrow().last().cloned().expect("a request")
        }
    }

    fn header<'a>(r: &'a OutboundRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    fn form(body: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(body).into_owned().collect()
    }

    fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
        pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn post_sends_every_field_signed() {
        let s = Setup::new("P", "http://backend/cmd");
        s.answer(
            200,
            "application/json",
            r#"{"response_type":"in_channel","text":"deployed"}"#,
        );
        let out = s
            .run("/Deploy  staging @bob. ~dev ~secret @nobody")
            .unwrap();
        let req = s.sent();
        assert_eq!(
            (req.method.as_str(), req.url.as_str()),
            ("POST", "http://backend/cmd")
        );
        assert_eq!(
            header(&req, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(header(&req, "accept"), Some("application/json"));
        assert_eq!(
            header(&req, "authorization"),
            Some("Token tokentokentokentokentokent")
        );
        let pairs = form(&req.body);
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "Go sorts form keys");
        assert_eq!(field(&pairs, "command"), ["/deploy"]);
        assert_eq!(
            field(&pairs, "text"),
            [" staging @bob. ~dev ~secret @nobody"]
        );
        assert_eq!(field(&pairs, "team_domain"), ["team"]);
        assert_eq!(field(&pairs, "channel_name"), ["town-square"]);
        assert_eq!(field(&pairs, "user_name"), ["alice"]);
        assert_eq!(field(&pairs, "user_mentions"), ["bob"]);
        assert_eq!(field(&pairs, "user_mentions_ids"), ["ub"]);
        assert_eq!(field(&pairs, "channel_mentions"), ["dev"]);
        assert_eq!(field(&pairs, "root_id"), [""]);
        let response_url = field(&pairs, "response_url")[0];
        assert!(
            response_url.starts_with("http://localhost:8065/hooks/commands/"),
            "{response_url}"
        );
        let trigger = field(&pairs, "trigger_id")[0];
        let decoded = trigger_id::decode(&s.host, trigger, 30).unwrap();
        assert_eq!(decoded.user_id, "ua");
        assert_eq!(out["trigger_id"], decoded.client_id);
        assert_eq!(out["text"], "deployed");

        // The host signs at send time; the plugin only says with what.
        assert_eq!(header(&req, "x-slack-signature"), None);
        assert!(matches!(
            s.host.signings.borrow().last().unwrap().as_slice(),
            [Signing::Slack(secret)] if secret == "s3cret"
        ));
        assert_eq!(s.host.posts.borrow()[0].message, "deployed");
    }

    #[test]
    fn get_appends_the_query() {
        let s = Setup::new("G", "http://backend/cmd?fixed=1#frag");
        s.answer(200, "text/plain", "plain reply");
        s.run("/deploy now").unwrap();
        let req = s.sent();
        assert_eq!(req.method, "GET");
        assert!(req.body.is_empty());
        let url = url::Url::parse(&req.url).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("fixed".into(), "1".into()));
        assert_eq!(field(&pairs, "text"), ["now"]);
        assert_eq!(url.fragment(), Some("frag"));
        assert_eq!(header(&req, "content-type"), None);
        assert_eq!(
            s.host.signings.borrow().len(),
            1,
            "GET requests are signed too"
        );
        assert_eq!(s.host.ephemerals.borrow()[0].1.message, "plain reply");
    }

    #[test]
    fn error_paths() {
        let s = Setup::new("P", "http://backend/cmd");
        let id = |r: Result<Value, ApiError>| r.map(|_| ()).map_err(|e| (e.status, e.id));
        let err = |status: u16, id: &str| Err((status, id.to_string()));
        assert_eq!(
            id(s.run("/")),
            err(400, "api.command.execute_command.start.app_error")
        );
        assert_eq!(
            id(s.run("deploy")),
            err(400, "api.command.execute_command.start.app_error")
        );
        assert_eq!(
            id(s.run("/nothing")),
            err(404, "api.command.execute_command.not_found.app_error")
        );
        let long = s.run(&format!("/{}", "é".repeat(400))).unwrap_err();
        assert!(long.message.contains("...'"), "{}", long.message);
        // Longer than any trigger (and than a kv key): unknown, not a store error.
        assert_eq!(
            id(s.run(&format!("/{}", "x".repeat(480)))),
            err(404, "api.command.execute_command.not_found.app_error")
        );

        s.answer(201, "application/json", "{}");
        assert_eq!(
            id(s.run("/deploy")),
            err(500, "api.command.execute_command.failed_resp.app_error")
        );
        s.answer(200, "application/json", "{} trailing");
        assert_eq!(
            id(s.run("/deploy")),
            err(500, "api.command.execute_command.failed.app_error")
        );
        s.host
            .replies
            .borrow_mut()
            .push(Err(EgressError::Timeout("slow".into())));
        assert_eq!(
            id(s.run("/deploy")),
            err(500, "api.command.execute_command.failed.app_error")
        );
        s.answer(
            200,
            "application/json",
            r#"{"response_type":"in_channel","type":"system_x","text":"x"}"#,
        );
        assert_eq!(
            id(s.run("/deploy")),
            err(
                500,
                "api.command.execute_command.create_post_failed.app_error"
            )
        );

        s.host.settings.borrow_mut().site_url.clear();
        assert_eq!(
            id(s.run("/deploy")),
            err(
                400,
                "api.command.execute_command.site_url_required.app_error"
            )
        );
        // Built-ins need no Site URL.
        assert!(s.run("/shrug").is_ok());
        s.host.settings.borrow_mut().enable_commands = false;
        assert_eq!(
            id(s.run("/shrug")),
            err(501, "api.command.disabled.app_error")
        );

        let outsider = run_command(
            &s.host,
            &CommandArgs {
                user_id: "ub".into(),
                channel_id: TOWN.into(),
                command: "/shrug".into(),
                ..Default::default()
            },
        );
        assert_eq!(outsider.unwrap_err().status, 403);
    }

    #[test]
    fn archived_channels_refuse_commands() {
        let s = Setup::new("P", "http://backend/cmd");
        s.host.channels.borrow_mut()[0].delete_at = 5;
        assert_eq!(
            s.run("/shrug").unwrap_err().id,
            "api.command.execute_command.deleted.error"
        );
    }

    #[test]
    fn built_ins_answer_with_the_full_shape() {
        let s = Setup::new("P", "http://backend/cmd");
        let out = s.run("/me waves").unwrap();
        assert_eq!(out["type"], "me");
        assert_eq!(out["trigger_id"], "");
        assert_eq!(s.host.posts.borrow()[0].message, "*waves*");
        assert!(!s.host.posts.borrow()[0].props.contains("from_webhook"));
    }
}
