//! Bot accounts: a user row marked `is_bot` plus a `bots` row with the same id
//! that holds the owner and description. Both halves change in one write.

use super::sql::Row;
use super::{Result, Store, StoreError};
use crate::args;
use serde_json::{Map, Value, json};

/// A bot as Mattermost's API shows it: the bot row joined with its user.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bot {
    pub user_id: String,
    pub username: String,
    /// Kept in the user's `first_name`, as Mattermost does.
    pub display_name: String,
    pub description: String,
    /// A user id (or, for bots a plugin made, the plugin's id).
    pub owner_id: String,
    pub last_icon_update: i64,
    pub create_at: i64,
    pub update_at: i64,
    /// Non-zero: the bot is disabled and its tokens do not work.
    pub delete_at: i64,
}

impl Bot {
    fn from_row(r: &Row) -> Result<Bot> {
        Ok(Bot {
            user_id: r.get("user_id")?,
            username: r.get("username")?,
            display_name: r.get("first_name")?,
            description: r.get("description")?,
            owner_id: r.get("owner_id")?,
            last_icon_update: r.get("last_icon_update")?,
            create_at: r.get("create_at")?,
            update_at: r.get("update_at")?,
            delete_at: r.get("delete_at")?,
        })
    }

    /// Mattermost's JSON: empty display name, description and a zero icon
    /// time are left out.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("user_id".into(), json!(self.user_id));
        out.insert("username".into(), json!(self.username));
        if !self.display_name.is_empty() {
            out.insert("display_name".into(), json!(self.display_name));
        }
        if !self.description.is_empty() {
            out.insert("description".into(), json!(self.description));
        }
        out.insert("owner_id".into(), json!(self.owner_id));
        if self.last_icon_update != 0 {
            out.insert("last_icon_update".into(), json!(self.last_icon_update));
        }
        out.insert("create_at".into(), json!(self.create_at));
        out.insert("update_at".into(), json!(self.update_at));
        out.insert("delete_at".into(), json!(self.delete_at));
        Value::Object(out)
    }

    /// The e-mail address Mattermost gives a bot's user.
    pub fn email(&self) -> String {
        format!("{}@localhost", self.username.to_lowercase())
    }
}

/// Which bots a listing returns.
#[derive(Debug, Clone, Default)]
pub struct BotQuery {
    /// Only bots owned by this user; `None` lists everyone's.
    pub owner_id: Option<String>,
    pub include_deleted: bool,
    /// Only bots whose owner is a user who has been deactivated.
    pub only_orphaned: bool,
    pub offset: u64,
    pub limit: u64,
}

const SELECT: &str = "SELECT b.user_id, u.username, u.first_name, b.description, b.owner_id,
        b.last_icon_update, b.create_at, b.update_at, b.delete_at
     FROM bots b JOIN users u ON u.id = b.user_id";

impl Store {
    /// Stores a new bot and its user in one write. A taken username is a `Conflict`.
    pub fn create_bot(&self, bot: &Bot) -> Result<()> {
        let bot = bot.clone();
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO users (id, username, email, password_hash, first_name, roles, is_bot,
                                    create_at, update_at, delete_at)
                 VALUES (?1, ?2, ?3, '', ?4, 'system_user', 1, ?5, ?5, 0)",
                args![
                    bot.user_id,
                    bot.username,
                    bot.email(),
                    bot.display_name,
                    bot.create_at
                ],
            )?;
            c.execute(
                "INSERT INTO bots (user_id, description, owner_id, create_at, update_at, delete_at)
                 VALUES (?1, ?2, ?3, ?4, ?4, 0)",
                args![bot.user_id, bot.description, bot.owner_id, bot.create_at],
            )?;
            Ok(())
        })
    }

    /// One bot, disabled ones included; the caller decides whether to show it.
    pub fn bot(&self, user_id: &str) -> Result<Bot> {
        self.conn()?
            .row(
                &format!("{SELECT} WHERE b.user_id = ?1"),
                args![user_id],
                Bot::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("bot {user_id}")))
    }

    /// Bots in creation order, then by username, as Mattermost lists them.
    pub fn bots(&self, query: &BotQuery) -> Result<Vec<Bot>> {
        let mut sql = format!("{SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR b.owner_id = ?1)");
        if !query.include_deleted {
            sql.push_str(" AND b.delete_at = 0");
        }
        if query.only_orphaned {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM users o WHERE o.id = b.owner_id AND o.delete_at != 0)",
            );
        }
        sql.push_str(" ORDER BY b.create_at, u.username LIMIT ?2 OFFSET ?3");
        let conn = self.conn()?;
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        conn.rows(&sql, args![query.owner_id, limit, offset], Bot::from_row)
    }

    /// Writes a changed bot: username, display name, description and owner,
    /// on both halves.
    pub fn update_bot(&self, bot: &Bot) -> Result<()> {
        let bot = bot.clone();
        self.writer.write(move |c| {
            c.execute(
                "UPDATE users SET username = ?2, email = ?3, first_name = ?4, update_at = ?5 WHERE id = ?1",
                args![bot.user_id, bot.username, bot.email(), bot.display_name, bot.update_at])?;
            let changed = c.execute(
                "UPDATE bots SET description = ?2, owner_id = ?3, update_at = ?4 WHERE user_id = ?1",
                args![bot.user_id, bot.description, bot.owner_id, bot.update_at])?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("bot {}", bot.user_id)));
            }
            Ok(())
        })
    }

    /// Disables (`delete_at` = now) or enables (0) a bot. Its user follows,
    /// which is what makes its tokens stop working at once.
    pub fn set_bot_delete_at(&self, user_id: &str, delete_at: i64, now: i64) -> Result<()> {
        let id = user_id.to_string();
        self.writer.write(move |c| {
            c.execute(
                "UPDATE users SET delete_at = ?2, update_at = ?3 WHERE id = ?1",
                args![id, delete_at, now],
            )?;
            c.execute(
                "UPDATE bots SET delete_at = ?2, update_at = ?3 WHERE user_id = ?1",
                args![id, delete_at, now],
            )?;
            Ok(())
        })
    }

    /// Turns a bot back into an ordinary user who can log in with `password_hash`.
    pub fn convert_bot_to_user(
        &self,
        user_id: &str,
        password_hash: &str,
        roles: &str,
    ) -> Result<()> {
        let (id, hash, roles) = (
            user_id.to_string(),
            password_hash.to_string(),
            roles.to_string(),
        );
        self.writer.write(move |c| {
            c.execute("DELETE FROM bots WHERE user_id = ?1", args![&id])?;
            c.execute(
                "UPDATE users SET is_bot = 0, password_hash = ?2, roles = ?3, update_at = ?4 WHERE id = ?1",
                args![id, hash, roles, super::now_millis()])?;
            Ok(())
        })
    }

    /// Makes a user a bot owned by itself (Mattermost's quirk), signs it out
    /// everywhere and forgets its password, since bots cannot log in.
    pub fn convert_user_to_bot(&self, user_id: &str, now: i64) -> Result<()> {
        let id = user_id.to_string();
        self.writer.write(move |c| {
            c.execute(
                "UPDATE users SET is_bot = 1, password_hash = '', update_at = ?2 WHERE id = ?1",
                args![id, now],
            )?;
            c.execute(
                "INSERT INTO bots (user_id, owner_id, create_at, update_at, delete_at)
                 VALUES (?1, ?1, ?2, ?2, 0)",
                args![id, now],
            )?;
            c.execute(
                "DELETE FROM tokens WHERE user_id = ?1 AND kind = 'session'",
                args![&id],
            )?;
            Ok(())
        })
    }

    /// The bot's description, for the `bot_description` of its user object.
    pub fn bot_description(&self, user_id: &str) -> Result<Option<String>> {
        self.conn()?.row(
            "SELECT description FROM bots WHERE user_id = ?1",
            args![user_id],
            |r| r.get(0),
        )
    }
}

impl Store {
    /// Deactivates (`delete_at` = now) or reactivates a user and, when
    /// deactivating, ends their login sessions. Returns whether it changed.
    pub fn set_user_delete_at(&self, user_id: &str, delete_at: i64, now: i64) -> Result<bool> {
        let id = user_id.to_string();
        self.writer.write(move |c| {
            let changed = c.execute(
                "UPDATE users SET delete_at = ?2, update_at = ?3
                 WHERE id = ?1 AND (delete_at = 0) != (CAST(?2 AS BIGINT) = 0)",
                args![id, delete_at, now],
            )?;
            if delete_at != 0 {
                c.execute(
                    "DELETE FROM tokens WHERE user_id = ?1 AND kind = 'session'",
                    args![&id],
                )?;
            }
            Ok(changed > 0)
        })
    }
}

impl Store {
    /// Active system admins, oldest first.
    pub fn system_admins(&self) -> Result<Vec<super::User>> {
        let conn = self.conn()?;
        conn.rows(
            "SELECT * FROM users WHERE delete_at = 0 AND is_bot = 0
               AND (' ' || roles || ' ') LIKE '% system_admin %' ORDER BY create_at, id",
            args![],
            super::User::from_row,
        )
    }
}
