//! Emoji reactions to posts. Adding or removing one also moves its post's
//! `update_at`, in the same transaction, so clients catching up with
//! `?since=` see the post again (as Mattermost's store does).

use super::sql::Db;
use super::sql::Row;
use super::{Result, Store};
use crate::args;
use serde_json::{Value, json};

/// One user's emoji on one post.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reaction {
    pub user_id: String,
    pub post_id: String,
    pub emoji_name: String,
    pub channel_id: String,
    pub create_at: i64,
}

impl Reaction {
    fn from_row(r: &Row) -> Result<Reaction> {
        Ok(Reaction {
            user_id: r.get("user_id")?,
            post_id: r.get("post_id")?,
            emoji_name: r.get("emoji_name")?,
            channel_id: r.get("channel_id")?,
            create_at: r.get("create_at")?,
        })
    }

    /// Mattermost's `Reaction` JSON. Removed reactions are deleted here, so
    /// `update_at` is the creation time and `delete_at` 0.
    pub fn to_json(&self) -> Value {
        json!({
            "user_id": self.user_id, "post_id": self.post_id, "emoji_name": self.emoji_name,
            "create_at": self.create_at, "update_at": self.create_at, "delete_at": 0,
            "remote_id": "", "channel_id": self.channel_id,
        })
    }
}

/// Moves a post's `update_at` forward to `now` (at least one past its own).
fn touch_post(c: &Db, post_id: &str, now: i64) -> Result<usize> {
    c.execute(
        "UPDATE posts SET update_at = CASE WHEN update_at + 1 > ?2 THEN update_at + 1 ELSE ?2 END
         WHERE id = ?1",
        args![post_id, now],
    )
}

impl Store {
    /// Saves a reaction (saving it again changes nothing but the post's
    /// `update_at`). Returns the stored reaction.
    pub fn save_reaction(&self, reaction: &Reaction) -> Result<Reaction> {
        let r = reaction.clone();
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO reactions (post_id, user_id, emoji_name, channel_id, create_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                args![
                    r.post_id,
                    r.user_id,
                    r.emoji_name,
                    r.channel_id,
                    r.create_at
                ],
            )?;
            touch_post(c, &r.post_id, r.create_at)?;
            c.one(
                "SELECT * FROM reactions WHERE post_id = ?1 AND user_id = ?2 AND emoji_name = ?3",
                args![r.post_id, r.user_id, r.emoji_name],
                Reaction::from_row,
            )
        })
    }

    /// Removes a reaction, if there is one; whether one was removed.
    pub fn delete_reaction(
        &self,
        post_id: &str,
        user_id: &str,
        emoji_name: &str,
        now: i64,
    ) -> Result<bool> {
        let (post_id, user_id, emoji_name) = (
            post_id.to_string(),
            user_id.to_string(),
            emoji_name.to_string(),
        );
        self.writer.write(move |c| {
            let n = c.execute(
                "DELETE FROM reactions WHERE post_id = ?1 AND user_id = ?2 AND emoji_name = ?3",
                args![post_id, user_id, emoji_name],
            )?;
            touch_post(c, &post_id, now)?;
            Ok(n > 0)
        })
    }

    /// A post's reactions, oldest first.
    pub fn reactions_for_post(&self, post_id: &str) -> Result<Vec<Reaction>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT * FROM reactions WHERE post_id = ?1 ORDER BY create_at, rowid",
            args![post_id],
            Reaction::from_row,
        )?;
        Ok(rows)
    }

    /// How many different emoji a post has been reacted with, and whether
    /// `emoji_name` is one of them.
    pub fn reaction_emoji_count(&self, post_id: &str, emoji_name: &str) -> Result<(u32, bool)> {
        self.conn()?.one(
            "SELECT COUNT(DISTINCT emoji_name),
                    COALESCE(MAX(CASE WHEN emoji_name = ?2 THEN 1 ELSE 0 END), 0)
             FROM reactions WHERE post_id = ?1",
            args![post_id, emoji_name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}
