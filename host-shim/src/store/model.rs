//! Rows of the shim's tables and their Mattermost v4 JSON shapes.

use super::Result;
use super::sql::Row;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub create_at: i64,
    pub delete_at: i64,
}

impl Team {
    /// A team's URL name: 2 to 64 of lowercase letters, digits, `-` and `_`.
    pub fn valid_name(name: &str) -> bool {
        (2..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }

    pub(super) fn from_row(r: &Row) -> Result<Team> {
        Ok(Team {
            id: r.get("id")?,
            name: r.get("name")?,
            display_name: r.get("display_name")?,
            create_at: r.get("create_at")?,
            delete_at: r.get("delete_at")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "create_at": self.create_at, "update_at": self.create_at,
            "delete_at": self.delete_at, "display_name": self.display_name, "name": self.name,
            "description": "", "email": "", "type": "O", "allow_open_invite": false,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TeamMember {
    pub team_id: String,
    pub user_id: String,
    pub roles: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub nickname: String,
    pub first_name: String,
    pub last_name: String,
    pub roles: String,
    pub is_bot: bool,
    pub create_at: i64,
    pub delete_at: i64,
}

impl User {
    /// Mattermost's rule for usernames (already lowercased): a letter, then
    /// up to 21 more of letters, digits, `.`, `-` and `_`.
    pub fn valid_username(username: &str) -> bool {
        username.len() <= 22
            && username
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
            && username
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    }

    pub(super) fn from_row(r: &Row) -> Result<User> {
        Ok(User {
            id: r.get("id")?,
            username: r.get("username")?,
            email: r.get("email")?,
            nickname: r.get("nickname")?,
            first_name: r.get("first_name")?,
            last_name: r.get("last_name")?,
            roles: r.get("roles")?,
            is_bot: r.get("is_bot")?,
            create_at: r.get("create_at")?,
            delete_at: r.get("delete_at")?,
        })
    }

    pub fn is_system_admin(&self) -> bool {
        self.roles.split_whitespace().any(|r| r == "system_admin")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "create_at": self.create_at, "update_at": self.create_at,
            "delete_at": self.delete_at, "username": self.username, "auth_data": "",
            "auth_service": "", "email": self.email, "nickname": self.nickname,
            "first_name": self.first_name, "last_name": self.last_name, "position": "",
            "roles": self.roles, "locale": "en", "is_bot": self.is_bot,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelType {
    Open,
    Private,
    Direct,
    Group,
}

impl ChannelType {
    /// Mattermost's one-letter code.
    pub fn code(self) -> &'static str {
        match self {
            ChannelType::Open => "O",
            ChannelType::Private => "P",
            ChannelType::Direct => "D",
            ChannelType::Group => "G",
        }
    }

    pub fn from_code(code: &str) -> Option<ChannelType> {
        match code {
            "O" => Some(ChannelType::Open),
            "P" => Some(ChannelType::Private),
            "D" => Some(ChannelType::Direct),
            "G" => Some(ChannelType::Group),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub display_name: String,
    pub channel_type: ChannelType,
    pub header: String,
    pub purpose: String,
    pub creator_id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
}

impl Channel {
    pub(super) fn from_row(r: &Row) -> Result<Channel> {
        let code: String = r.get("type")?;
        Ok(Channel {
            id: r.get("id")?,
            team_id: r.get("team_id")?,
            name: r.get("name")?,
            display_name: r.get("display_name")?,
            channel_type: ChannelType::from_code(&code).unwrap_or(ChannelType::Private),
            header: r.get("header")?,
            purpose: r.get("purpose")?,
            creator_id: r.get("creator_id")?,
            create_at: r.get("create_at")?,
            update_at: r.get("update_at")?,
            delete_at: r.get("delete_at")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "create_at": self.create_at, "update_at": self.update_at,
            "delete_at": self.delete_at, "team_id": self.team_id, "type": self.channel_type.code(),
            "display_name": self.display_name, "name": self.name, "header": self.header,
            "purpose": self.purpose, "last_post_at": 0, "total_msg_count": 0,
            "extra_update_at": 0, "creator_id": self.creator_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Post {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub edit_at: i64,
    pub delete_at: i64,
    pub user_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub message: String,
    pub post_type: String,
    /// JSON object text.
    pub props: String,
    /// JSON object text.
    pub metadata: String,
    pub is_pinned: bool,
}

impl Post {
    pub(super) fn from_row(r: &Row) -> Result<Post> {
        Ok(Post {
            id: r.get("id")?,
            create_at: r.get("create_at")?,
            update_at: r.get("update_at")?,
            edit_at: r.get("edit_at")?,
            delete_at: r.get("delete_at")?,
            user_id: r.get("user_id")?,
            channel_id: r.get("channel_id")?,
            root_id: r.get("root_id")?,
            message: r.get("message")?,
            post_type: r.get("type")?,
            props: r.get("props")?,
            metadata: r.get("metadata")?,
            is_pinned: r.get("is_pinned")?,
        })
    }

    pub fn props_json(&self) -> Value {
        serde_json::from_str(&self.props).unwrap_or_else(|_| json!({}))
    }

    pub fn to_json(&self) -> Value {
        let metadata: Value = serde_json::from_str(&self.metadata).unwrap_or_else(|_| json!({}));
        json!({
            "id": self.id, "create_at": self.create_at, "update_at": self.update_at,
            "edit_at": self.edit_at, "delete_at": self.delete_at, "is_pinned": self.is_pinned,
            "user_id": self.user_id, "channel_id": self.channel_id, "root_id": self.root_id,
            "original_id": "", "message": self.message, "type": self.post_type,
            "props": self.props_json(), "hashtags": "", "pending_post_id": "",
            "metadata": metadata,
        })
    }
}
