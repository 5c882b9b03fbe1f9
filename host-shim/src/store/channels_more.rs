//! Channel and post reads and writes the REST routes for clients need beyond
//! the basics: members, a user's channels, archiving, threads, deletion,
//! moderation.

use super::{Channel, Post, Result, Store, StoreError, User, now_millis};
use crate::args;

/// The most changed posts one `since` answer holds (Mattermost's 1,000).
pub const POSTS_SINCE_LIMIT: i64 = 1000;

impl Store {
    /// The active users who are members of a channel.
    pub fn channel_members(&self, channel_id: &str) -> Result<Vec<User>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT u.* FROM users u JOIN channel_members m ON m.user_id = u.id
             WHERE m.channel_id = ?1 AND u.delete_at = 0 ORDER BY u.username",
            args![channel_id],
            User::from_row,
        )?;
        Ok(rows)
    }

    /// The channels of `team_id` that `user_id` is a member of, and their
    /// direct and group channels (which belong to no team), by name.
    pub fn channels_for_user(
        &self,
        team_id: &str,
        user_id: &str,
        include_deleted: bool,
    ) -> Result<Vec<Channel>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT c.* FROM channels c JOIN channel_members m ON m.channel_id = c.id
             WHERE m.user_id = ?1 AND (c.team_id = ?2 OR c.team_id = '')
               AND (?3 OR c.delete_at = 0)
             ORDER BY c.display_name, c.name",
            args![user_id, team_id, include_deleted],
            Channel::from_row,
        )?;
        Ok(rows)
    }

    /// By exact name in a team, archived ones too.
    pub fn channel_by_name_including_archived(&self, team_id: &str, name: &str) -> Result<Channel> {
        self.conn()?
            .row(
                "SELECT * FROM channels WHERE team_id = ?1 AND name = ?2",
                args![team_id, name],
                Channel::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("channel {name}")))
    }

    /// Archives (`delete_at` = now) or restores (`delete_at` = 0) a channel;
    /// returns it as stored.
    pub fn set_channel_archived(&self, channel_id: &str, archived: bool) -> Result<Channel> {
        let id = channel_id.to_string();
        let now = now_millis();
        self.writer.write(move |c| {
            let delete_at = if archived { now } else { 0 };
            let n = c.execute(
                "UPDATE channels SET delete_at = ?2, update_at = ?3 WHERE id = ?1",
                args![id, delete_at, now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("channel {id}")));
            }
            Ok(())
        })?;
        self.membership_changed();
        self.channel(channel_id)
    }

    /// What a client missed in a channel since `since` (ms): the posts
    /// created, edited or deleted after it (deleted ones too, with their
    /// `delete_at`), newest first and at most [`POSTS_SINCE_LIMIT`], as
    /// Mattermost's `GetPostsSince`.
    pub fn channel_posts_since(&self, channel_id: &str, since: i64) -> Result<Vec<Post>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT * FROM posts WHERE channel_id = ?1 AND update_at > ?2
             ORDER BY create_at DESC, rowid DESC LIMIT ?3",
            args![channel_id, since, POSTS_SINCE_LIMIT],
            Post::from_row,
        )?;
        Ok(rows)
    }

    /// A root post and all its replies, oldest first.
    pub fn thread_posts(&self, root_id: &str) -> Result<Vec<Post>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT * FROM posts WHERE (id = ?1 OR root_id = ?1) AND delete_at = 0
             ORDER BY create_at, rowid",
            args![root_id],
            Post::from_row,
        )?;
        Ok(rows)
    }

    /// Channel-level overrides of a moderated permission for a role
    /// (`members` or `guests`): `Some(false)` when the channel takes it away.
    pub fn channel_moderation(
        &self,
        channel_id: &str,
        role: &str,
        permission: &str,
    ) -> Result<Option<bool>> {
        self.conn()?.row(
            "SELECT allowed FROM channel_moderations
                 WHERE channel_id = ?1 AND role = ?2 AND permission = ?3",
            args![channel_id, role, permission],
            |r| r.get(0),
        )
    }

    /// Sets (or, with `None`, clears) a channel's override of a moderated
    /// permission for a role.
    pub fn set_channel_moderation(
        &self,
        channel_id: &str,
        role: &str,
        permission: &str,
        allowed: Option<bool>,
    ) -> Result<()> {
        let (channel_id, role, permission) = (
            channel_id.to_string(),
            role.to_string(),
            permission.to_string(),
        );
        self.writer.write(move |c| {
            match allowed {
                Some(allowed) => c.execute(
                    "INSERT INTO channel_moderations (channel_id, role, permission, allowed)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (channel_id, role, permission) DO UPDATE SET allowed = excluded.allowed",
                    args![channel_id, role, permission, allowed])?,
                None => c.execute(
                    "DELETE FROM channel_moderations WHERE channel_id = ?1 AND role = ?2 AND permission = ?3",
                    args![channel_id, role, permission])?,
            };
            Ok(())
        })?;
        self.membership_changed();
        Ok(())
    }

    /// Marks a post deleted, and its replies with it when it is a root.
    pub fn delete_post(&self, post_id: &str) -> Result<()> {
        let id = post_id.to_string();
        let now = now_millis();
        self.writer.write(move |c| {
            let n = c.execute(
                "UPDATE posts SET delete_at = ?2, update_at = ?2
                 WHERE (id = ?1 OR root_id = ?1) AND delete_at = 0",
                args![id, now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("post {id}")));
            }
            Ok(())
        })
    }
}
