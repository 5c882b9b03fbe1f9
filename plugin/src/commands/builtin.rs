//! The built-in commands that need only posts, channels and users: `/echo`,
//! `/me`, `/shrug`, `/help`, `/join`, `/leave`, `/header`, `/purpose`, `/msg`.
//! Each answers like Mattermost's: problems are ephemeral replies, not errors.

use super::model::Command;
use super::registry;
use super::response::CommandResponse;
use crate::host::{Channel, ChannelType, Host, PermissionScope, Team, User, new_post};
use serde_json::json;

/// A built-in command as listings and autocomplete show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIn {
    pub trigger: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub hint: &'static str,
}

pub const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        trigger: "echo",
        display_name: "echo",
        description: "Echo back text from your account",
        hint: "'message' [delay in seconds]",
    },
    BuiltIn {
        trigger: "header",
        display_name: "header",
        description: "Edit the channel header",
        hint: "[text]",
    },
    BuiltIn {
        trigger: "help",
        display_name: "help",
        description: "List the available slash commands",
        hint: "",
    },
    BuiltIn {
        trigger: "join",
        display_name: "join",
        description: "Join the open channel",
        hint: "~[channel]",
    },
    BuiltIn {
        trigger: "leave",
        display_name: "leave",
        description: "Leave the current channel",
        hint: "",
    },
    BuiltIn {
        trigger: "me",
        display_name: "me",
        description: "Do an action",
        hint: "[message]",
    },
    BuiltIn {
        trigger: "msg",
        display_name: "message",
        description: "Send a direct message to a user",
        hint: "@[username] 'message'",
    },
    BuiltIn {
        trigger: "purpose",
        display_name: "purpose",
        description: "Edit the channel purpose",
        hint: "[text]",
    },
    BuiltIn {
        trigger: "shrug",
        display_name: "shrug",
        description: "Adds ¯\\_(ツ)_/¯ to your message",
        hint: "[message]",
    },
];

/// Longest header and purpose, in runes, as Mattermost's channel model has them.
const HEADER_MAX_RUNES: usize = 1024;
const PURPOSE_MAX_RUNES: usize = 250;
/// `/echo` refuses longer delays.
const ECHO_MAX_DELAY_SECS: i64 = 10_000;

impl BuiltIn {
    /// The `Command` Mattermost lists for a built-in: no id, URL or token.
    pub fn as_command(&self) -> Command {
        Command {
            trigger: self.trigger.into(),
            auto_complete: true,
            auto_complete_desc: self.description.into(),
            auto_complete_hint: self.hint.into(),
            display_name: self.display_name.into(),
            ..Default::default()
        }
    }
}

pub fn find(trigger: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|b| b.trigger == trigger)
}

/// Where a built-in runs and for whom.
pub struct Context<'a> {
    pub user: &'a User,
    /// The channel the command was typed in.
    pub channel: &'a Channel,
    /// The team the command runs in; `None` in a direct or group channel
    /// when the client named no team.
    pub team: Option<&'a Team>,
    pub root_id: &'a str,
    pub site_url: &'a str,
}

impl Context<'_> {
    fn goto(&self, channel_name: &str) -> String {
        match self.team {
            Some(team) => format!("{}/{}/channels/{}", self.site_url, team.name, channel_name),
            None => String::new(),
        }
    }
}

/// Runs the built-in `trigger` with `text`, or `None` when there is no such built-in.
pub fn run(
    host: &dyn Host,
    ctx: &Context<'_>,
    trigger: &str,
    text: &str,
) -> Option<CommandResponse> {
    let response = match find(trigger)?.trigger {
        "echo" => echo(host, ctx, text),
        "me" => CommandResponse {
            post_type: "me".into(),
            ..CommandResponse::in_channel(format!("*{text}*"))
        },
        "shrug" => {
            let shrug = r"¯\\\_(ツ)\_/¯";
            CommandResponse::in_channel(if text.is_empty() {
                shrug.to_string()
            } else {
                format!("{text} {shrug}")
            })
        }
        "help" => help(host, ctx),
        "join" => join(host, ctx, text),
        "leave" => leave(host, ctx),
        "header" => header(host, ctx, text),
        "purpose" => purpose(host, ctx, text),
        "msg" => msg(host, ctx, text),
        _ => return None,
    };
    Some(response)
}

/// `/echo message [delay]` and `/echo "message" [delay]`: the message is
/// posted as the user's own. The delay is read and bounded as Mattermost
/// does, but the post is made at once: a plugin call cannot wait.
fn echo(host: &dyn Host, ctx: &Context<'_>, text: &str) -> CommandResponse {
    if text.is_empty() {
        return CommandResponse::ephemeral("A message must be provided with the /echo command.");
    }
    let (message, delay) = echo_message_and_delay(text);
    if delay > ECHO_MAX_DELAY_SECS {
        return CommandResponse::ephemeral("Delays must be under 10000 seconds.");
    }
    let mut post = new_post(&ctx.user.id, &ctx.channel.id, message.to_string());
    post.root_id = ctx.root_id.to_string();
    if let Err(e) = super::create_in_channel(host, post) {
        host.log(
            crate::host::Level::Warn,
            &format!("unable to create /echo post: {}", e.detail()),
        );
    }
    CommandResponse::default()
}

/// Mattermost's reading of `/echo` text: a quoted message and what follows
/// its last quote, or a trailing number after the last space.
fn echo_message_and_delay(text: &str) -> (&str, i64) {
    if let Some(end) = text.rfind('"')
        && text.starts_with('"')
        && end > 1
    {
        let delay = text[end..].trim_matches([' ', '"']).parse().unwrap_or(0);
        return (&text[1..end], delay);
    }
    if let Some(at) = text.rfind(' ')
        && let Ok(delay) = text[at..].trim_matches(' ').parse()
    {
        return (&text[..at], delay);
    }
    (text, 0)
}

fn help(host: &dyn Host, ctx: &Context<'_>) -> CommandResponse {
    let mut text = String::from("Built-in commands:\n");
    for b in BUILT_INS {
        text.push_str(&line(b.trigger, b.hint, b.description));
    }
    let custom = match ctx.team {
        Some(team) if host.settings().enable_commands => {
            registry::for_team(host, &team.id).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    if !custom.is_empty() {
        text.push_str("\nCommands of this team:\n");
        for c in &custom {
            let description = if c.auto_complete_desc.is_empty() {
                &c.description
            } else {
                &c.auto_complete_desc
            };
            text.push_str(&line(&c.trigger, &c.auto_complete_hint, description));
        }
    }
    CommandResponse::ephemeral(text.trim_end())
}

fn line(trigger: &str, hint: &str, description: &str) -> String {
    let usage = if hint.is_empty() {
        format!("/{trigger}")
    } else {
        format!("/{trigger} {hint}")
    };
    if description.is_empty() {
        format!("- `{usage}`\n")
    } else {
        format!("- `{usage}`: {description}\n")
    }
}

fn can(host: &dyn Host, user: &User, permission: &str, channel: &Channel) -> bool {
    host.has_permission(
        &user.id,
        permission,
        &PermissionScope::Channel(channel.id.clone()),
    )
    .unwrap_or(false)
}

/// A system message in a channel, by the user. System messages fire no
/// outgoing webhooks, so they do not go through `create_in_channel`.
fn system_post(
    host: &dyn Host,
    user: &User,
    channel_id: &str,
    kind: &str,
    message: String,
    props: serde_json::Value,
) {
    let mut post = new_post(&user.id, channel_id, message);
    post.post_type = kind.into();
    post.props = props.to_string();
    if let Err(e) = host.create_post(post) {
        host.log(
            crate::host::Level::Warn,
            &format!("unable to post {kind} message: {}", e.detail()),
        );
    }
}

fn join(host: &dyn Host, ctx: &Context<'_>, text: &str) -> CommandResponse {
    let failed = || CommandResponse::ephemeral("An error occurred while joining the channel.");
    let name = text.strip_prefix('~').unwrap_or(text).trim().to_lowercase();
    let Some(team) = ctx.team else {
        return failed();
    };
    let Ok(channel) = host.channel_by_name(&team.id, &name) else {
        return CommandResponse::ephemeral(format!("Unable to find the channel ~{name}."));
    };
    let allowed = match channel.channel_type {
        ChannelType::Open => can(host, ctx.user, "join_public_channels", &channel),
        ChannelType::Private => can(host, ctx.user, "read_channel", &channel),
        ChannelType::Direct | ChannelType::Group => false,
    };
    if !allowed {
        return failed();
    }
    let already = host
        .is_channel_member(&channel.id, &ctx.user.id)
        .unwrap_or(false);
    if !already {
        if host.add_channel_member(&channel.id, &ctx.user.id).is_err() {
            return failed();
        }
        system_post(
            host,
            ctx.user,
            &channel.id,
            "system_join_channel",
            format!("@{} joined the channel.", ctx.user.username),
            json!({"username": ctx.user.username}),
        );
    }
    CommandResponse {
        goto_location: ctx.goto(&channel.name),
        ..Default::default()
    }
}

fn leave(host: &dyn Host, ctx: &Context<'_>) -> CommandResponse {
    let channel = ctx.channel;
    if matches!(
        channel.channel_type,
        ChannelType::Direct | ChannelType::Group
    ) {
        return CommandResponse::ephemeral("You cannot leave a direct or group message channel.");
    }
    if channel.name == "town-square" {
        return CommandResponse::ephemeral("You cannot leave the default channel town-square.");
    }
    if host
        .remove_channel_member(&channel.id, &ctx.user.id)
        .is_err()
    {
        return CommandResponse::ephemeral("An error occurred while leaving the channel.");
    }
    system_post(
        host,
        ctx.user,
        &channel.id,
        "system_leave_channel",
        format!("@{} left the channel.", ctx.user.username),
        json!({"username": ctx.user.username}),
    );
    CommandResponse {
        goto_location: ctx.goto("town-square"),
        ..Default::default()
    }
}

/// What `/header` and `/purpose` share: who may edit, the length rule, the
/// edit itself and the system message that records it.
struct ChannelText {
    name: &'static str,
    max_runes: usize,
    /// Whether direct and group channels have it; there membership suffices.
    in_direct: bool,
}

const HEADER: ChannelText = ChannelText {
    name: "header",
    max_runes: HEADER_MAX_RUNES,
    in_direct: true,
};
const PURPOSE: ChannelText = ChannelText {
    name: "purpose",
    max_runes: PURPOSE_MAX_RUNES,
    in_direct: false,
};

fn header(host: &dyn Host, ctx: &Context<'_>, text: &str) -> CommandResponse {
    edit_channel_text(host, ctx, text, &HEADER)
}

fn purpose(host: &dyn Host, ctx: &Context<'_>, text: &str) -> CommandResponse {
    edit_channel_text(host, ctx, text, &PURPOSE)
}

fn edit_channel_text(
    host: &dyn Host,
    ctx: &Context<'_>,
    text: &str,
    what: &ChannelText,
) -> CommandResponse {
    let channel = ctx.channel;
    let denied = || {
        CommandResponse::ephemeral(format!(
            "You do not have the appropriate permissions to edit the channel {}.",
            what.name
        ))
    };
    let allowed = match channel.channel_type {
        ChannelType::Open => can(host, ctx.user, "manage_public_channel_properties", channel),
        ChannelType::Private => can(host, ctx.user, "manage_private_channel_properties", channel),
        ChannelType::Direct | ChannelType::Group => {
            if !what.in_direct {
                return CommandResponse::ephemeral(format!(
                    "The {} cannot be set on direct or group message channels. Use /header instead.",
                    what.name
                ));
            }
            host.is_channel_member(&channel.id, &ctx.user.id)
                .unwrap_or(false)
        }
    };
    if !allowed {
        return denied();
    }
    if text.is_empty() {
        return CommandResponse::ephemeral(format!(
            "A message must be provided with the /{} command.",
            what.name
        ));
    }
    if text.chars().count() > what.max_runes {
        return CommandResponse::ephemeral(format!(
            "The channel {} must be {} characters or less.",
            what.name, what.max_runes
        ));
    }
    let (old, patched) = if what.name == "header" {
        (
            &channel.header,
            host.patch_channel(&channel.id, Some(text), None),
        )
    } else {
        (
            &channel.purpose,
            host.patch_channel(&channel.id, None, Some(text)),
        )
    };
    if patched.is_err() {
        return CommandResponse::ephemeral(format!("Unable to update the channel {}.", what.name));
    }
    if old != text {
        let who = format!("@{}", ctx.user.username);
        let message = if old.is_empty() {
            format!("{who} updated the channel {} to: {text}", what.name)
        } else {
            format!(
                "{who} updated the channel {} from: {old} to: {text}",
                what.name
            )
        };
        system_post(
            host,
            ctx.user,
            &channel.id,
            &format!("system_{}_change", what.name),
            message,
            {
                let mut props = serde_json::Map::new();
                props.insert("username".into(), json!(ctx.user.username));
                props.insert(format!("old_{}", what.name), json!(old));
                props.insert(format!("new_{}", what.name), json!(text));
                serde_json::Value::Object(props)
            },
        );
    }
    CommandResponse::default()
}

/// `/msg @user message`: the message goes to the direct channel with that
/// user, as the invoking user's own post.
fn msg(host: &dyn Host, ctx: &Context<'_>, text: &str) -> CommandResponse {
    let (target, message) = text.split_once(' ').unwrap_or((text, ""));
    let target = target.strip_prefix('@').unwrap_or(target);
    let missing = || CommandResponse::ephemeral("We couldn't find the user.");
    let Ok(other) = host.user_by_username(target) else {
        return missing();
    };
    if other.id == ctx.user.id || other.delete_at != 0 {
        return missing();
    }
    let Ok(channel) = host.direct_channel(&ctx.user.id, &other.id) else {
        return CommandResponse::ephemeral("An error occurred while messaging the user.");
    };
    if !message.is_empty() {
        let post = new_post(&ctx.user.id, &channel.id, message.to_string());
        if super::create_in_channel(host, post).is_err() {
            return CommandResponse::ephemeral("An error occurred while messaging the user.");
        }
    }
    CommandResponse {
        response_type: "ephemeral".into(),
        goto_location: ctx.goto(&channel.name),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeHost, channel, user};

    struct Setup {
        host: FakeHost,
        alice: User,
        town: Channel,
        team: Team,
    }

    impl Setup {
        fn new() -> Setup {
            let host = FakeHost::default();
            let alice = user("ua", "alice");
            host.users.borrow_mut().push(alice.clone());
            host.users.borrow_mut().push(user("ub", "bob"));
            let town = channel("c1", "t1", "town-square", ChannelType::Open);
            host.channels.borrow_mut().push(town.clone());
            host.channels
                .borrow_mut()
                .push(channel("c2", "t1", "dev", ChannelType::Open));
            host.channels
                .borrow_mut()
                .push(channel("c3", "t1", "secret", ChannelType::Private));
            host.add_channel_member("c1", "ua").unwrap();
            let team = host.team("t1").unwrap();
            Setup {
                host,
                alice,
                town,
                team,
            }
        }

        fn run_in(&self, channel: &Channel, trigger: &str, text: &str) -> CommandResponse {
            let ctx = Context {
                user: &self.alice,
                channel,
                team: Some(&self.team),
                root_id: "",
                site_url: "http://chat",
            };
            run(&self.host, &ctx, trigger, text).expect("a built-in")
        }

        fn run(&self, trigger: &str, text: &str) -> CommandResponse {
            self.run_in(&self.town.clone(), trigger, text)
        }

        fn last_post(&self) -> crate::host::Post {
            self.host.posts.borrow().last().cloned().expect("a post")
        }
    }

    #[test]
    fn echo_posts_the_message_and_reads_the_delay() {
        let s = Setup::new();
        assert_eq!(s.run("echo", "hello world"), CommandResponse::default());
        assert_eq!(s.last_post().message, "hello world");
        s.run("echo", "wait 5");
        assert_eq!(s.last_post().message, "wait");
        s.run("echo", "\"quoted 5\" 3");
        assert_eq!(s.last_post().message, "quoted 5");
        assert_eq!(s.run("echo", "").response_type, "ephemeral");
        let too_long = s.run("echo", "x 10001");
        assert!(too_long.text.contains("10000"), "{too_long:?}");
        assert_eq!(s.host.posts.borrow().len(), 3);
        assert_eq!(echo_message_and_delay("\"\" 5"), ("\"\"", 5));
        assert_eq!(echo_message_and_delay("no delay"), ("no delay", 0));
    }

    #[test]
    fn me_and_shrug() {
        let s = Setup::new();
        let me = s.run("me", "waves");
        assert_eq!((me.text.as_str(), me.post_type.as_str()), ("*waves*", "me"));
        assert_eq!(me.response_type, "in_channel");
        assert_eq!(s.run("shrug", "").text, r"¯\\\_(ツ)\_/¯");
        assert_eq!(s.run("shrug", "oh well").text, r"oh well ¯\\\_(ツ)\_/¯");
    }

    #[test]
    fn help_lists_built_ins_and_the_teams_commands() {
        let s = Setup::new();
        registry::save(
            &s.host,
            &Command {
                id: "x".into(),
                team_id: "t1".into(),
                trigger: "deploy".into(),
                auto_complete_hint: "[env]".into(),
                description: "Ship it".into(),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let help = s.run("help", "");
        assert_eq!(help.response_type, "ephemeral");
        assert!(
            help.text
                .contains("- `/echo 'message' [delay in seconds]`: Echo back")
        );
        assert!(
            help.text.contains("- `/deploy [env]`: Ship it"),
            "{}",
            help.text
        );
    }

    #[test]
    fn join_and_leave() {
        let s = Setup::new();
        // The fake grants channel permissions to members only; an admin may join.
        s.host.admins.borrow_mut().push("ua".into());
        let joined = s.run("join", "~dev");
        assert_eq!(joined.goto_location, "http://chat/team/channels/dev");
        assert!(s.host.is_channel_member("c2", "ua").unwrap());
        let post = s.last_post();
        assert_eq!(
            (post.post_type.as_str(), post.message.as_str()),
            ("system_join_channel", "@alice joined the channel.")
        );
        assert!(s.run("join", "nowhere").text.contains("~nowhere"));
        s.host.admins.borrow_mut().clear();
        // A private channel needs read access, which a non-member lacks.
        assert_eq!(s.run("join", "secret").response_type, "ephemeral");
        assert!(!s.host.is_channel_member("c3", "ua").unwrap());

        let dev = s.host.channel("c2").unwrap();
        let left = s.run_in(&dev, "leave", "");
        assert_eq!(left.goto_location, "http://chat/team/channels/town-square");
        assert!(!s.host.is_channel_member("c2", "ua").unwrap());
        assert_eq!(s.last_post().post_type, "system_leave_channel");
        assert!(s.run("leave", "").text.contains("default channel"));
    }

    #[test]
    fn header_and_purpose() {
        let s = Setup::new();
        assert_eq!(s.run("header", "New header"), CommandResponse::default());
        assert_eq!(s.host.channel("c1").unwrap().header, "New header");
        let post = s.last_post();
        assert_eq!(post.post_type, "system_header_change");
        assert_eq!(
            post.message,
            "@alice updated the channel header to: New header"
        );
        let town = s.host.channel("c1").unwrap();
        s.run_in(&town, "header", "Newer");
        assert_eq!(
            s.last_post().message,
            "@alice updated the channel header from: New header to: Newer"
        );
        let props: serde_json::Value = serde_json::from_str(&s.last_post().props).unwrap();
        assert_eq!(props["old_header"], "New header");
        assert!(s.run("header", "").text.contains("must be provided"));
        assert!(s.run("header", &"x".repeat(1025)).text.contains("1024"));
        s.run("purpose", "Why we are here");
        assert_eq!(s.host.channel("c1").unwrap().purpose, "Why we are here");
        assert_eq!(s.last_post().post_type, "system_purpose_change");
        // Not a member of dev: no right to edit it.
        let dev = s.host.channel("c2").unwrap();
        assert!(s.run_in(&dev, "purpose", "x").text.contains("permissions"));
        let dm = s.host.direct_channel("ua", "ub").unwrap();
        s.host.add_channel_member(&dm.id, "ua").unwrap();
        assert!(s.run_in(&dm, "purpose", "x").text.contains("direct"));
        assert_eq!(
            s.run_in(&dm, "header", "dm header"),
            CommandResponse::default()
        );
    }

    #[test]
    fn msg_posts_in_the_direct_channel() {
        let s = Setup::new();
        let r = s.run("msg", "@bob hello there");
        let post = s.last_post();
        assert_eq!(post.message, "hello there");
        let dm = s.host.channel(&post.channel_id).unwrap();
        assert_eq!(dm.channel_type, ChannelType::Direct);
        assert_eq!(
            r.goto_location,
            format!("http://chat/team/channels/{}", dm.name)
        );
        assert_eq!(
            s.run("msg", "@nobody hi").text,
            "We couldn't find the user."
        );
        assert_eq!(s.run("msg", "alice hi").text, "We couldn't find the user.");
        let before = s.host.posts.borrow().len();
        s.run("msg", "bob");
        assert_eq!(s.host.posts.borrow().len(), before);
    }
}
