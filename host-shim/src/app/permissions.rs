//! Mattermost's role-based permissions, reduced to the roles the shim knows:
//! system_admin, system_user, team_admin, team_user and channel_user.

use crate::store::{ChannelType, Store, StoreError};

/// Where a permission is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    System,
    Team(String),
    Channel(String),
}

const TEAM_USER: &[&str] = &[
    "view_team",
    "list_team_channels",
    "join_public_channels",
    "read_public_channel",
    "create_public_channel",
    "create_private_channel",
    "manage_own_incoming_webhooks",
    "manage_own_outgoing_webhooks",
    "manage_own_slash_commands",
    "use_slash_commands",
];

const TEAM_ADMIN: &[&str] = &[
    "manage_others_incoming_webhooks",
    "manage_others_outgoing_webhooks",
    "manage_others_slash_commands",
    "bypass_incoming_webhook_channel_lock",
    "manage_team",
    "delete_others_posts",
    "manage_public_channel_properties",
    "manage_private_channel_properties",
];

const CHANNEL_USER: &[&str] = &[
    "read_channel",
    "read_channel_content",
    "create_post",
    "use_slash_commands",
    "use_channel_mentions",
    "manage_public_channel_properties",
    "manage_private_channel_properties",
    "delete_public_channel",
    "delete_private_channel",
    "edit_post",
    "delete_post",
    "add_reaction",
    "remove_reaction",
];

/// Channel-user permissions a channel can take from its members
/// (Mattermost's channel moderation), by the moderation's name.
pub const MODERATED: &[(&str, &str)] = &[
    ("create_post", "create_post"),
    ("add_reaction", "create_reactions"),
    ("remove_reaction", "create_reactions"),
    ("manage_public_channel_members", "manage_members"),
    ("manage_private_channel_members", "manage_members"),
    ("use_channel_mentions", "use_channel_mentions"),
];

/// What Mattermost's `system_user_access_token` role adds to a person:
/// managing their own personal access tokens.
const SYSTEM_USER_ACCESS_TOKEN: &[&str] = &[
    "create_user_access_token",
    "read_user_access_token",
    "revoke_user_access_token",
];

/// What any team member may do in a public channel of that team.
const PUBLIC_CHANNEL_VIEWER: &[&str] = &["read_channel", "read_channel_content"];

fn grants(roles: &str, permission: &str) -> bool {
    roles.split_whitespace().any(|role| {
        let table: &[&str] = match role {
            "team_user" => TEAM_USER,
            "team_admin" => TEAM_ADMIN,
            "channel_user" => CHANNEL_USER,
            "system_user_access_token" => SYSTEM_USER_ACCESS_TOKEN,
            _ => &[],
        };
        table.contains(&permission)
    })
}

/// Whether `user_id` holds `permission` in `scope`. Unknown users hold nothing.
pub fn has_permission(
    store: &Store,
    user_id: &str,
    permission: &str,
    scope: &Scope,
) -> Result<bool, StoreError> {
    let user = match store.user(user_id) {
        Ok(u) if u.delete_at == 0 => u,
        Ok(_) | Err(StoreError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    if user.is_system_admin() {
        return Ok(true);
    }
    let team_roles = |team_id: &str| -> Result<String, StoreError> {
        if team_id.is_empty() {
            return Ok(String::new());
        }
        Ok(store
            .team_member(team_id, user_id)?
            .map(|m| m.roles)
            .unwrap_or_default())
    };
    match scope {
        Scope::System => Ok(grants(&user.roles, permission)),
        Scope::Team(team_id) => Ok(grants(&team_roles(team_id)?, permission)),
        Scope::Channel(channel_id) => {
            let channel = match store.channel(channel_id) {
                Ok(c) => c,
                Err(StoreError::NotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            let team = team_roles(&channel.team_id)?;
            if grants(&team, permission) {
                return Ok(true);
            }
            if store.is_channel_member(channel_id, user_id)? {
                if !grants("channel_user", permission) {
                    return Ok(false);
                }
                // A moderated channel may take the permission from members;
                // team admins keep it, as channel admins do in Mattermost.
                let Some((_, moderation)) = MODERATED.iter().find(|(p, _)| *p == permission) else {
                    return Ok(true);
                };
                let admin = team.split_whitespace().any(|r| r == "team_admin");
                return Ok(admin
                    || store
                        .channel_moderation(channel_id, "members", moderation)?
                        .unwrap_or(true));
            }
            Ok(channel.channel_type == ChannelType::Open
                && !team.is_empty()
                && PUBLIC_CHANNEL_VIEWER.contains(&permission))
        }
    }
}
