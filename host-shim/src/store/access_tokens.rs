//! Personal access tokens as their owners and admins manage them: listed,
//! read by id, disabled, enabled and revoked. Only a token's digest is
//! stored, so nothing read here can give the token back.

use super::sql::Row;
use super::{Result, Store, StoreError};
use crate::args;
use serde_json::{Value, json};

/// A personal access token without its secret (Mattermost's sanitized
/// `UserAccessToken`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    pub id: String,
    pub user_id: String,
    pub description: String,
    /// False while disabled: the token then signs nobody in.
    pub is_active: bool,
}

impl AccessToken {
    fn from_row(r: &Row) -> Result<AccessToken> {
        Ok(AccessToken {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            description: r.get("description")?,
            is_active: r.get("is_active")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "user_id": self.user_id,
            "description": self.description, "is_active": self.is_active,
        })
    }
}

/// The most tokens one search answers (Mattermost's limit).
const SEARCH_LIMIT: i64 = 1000;

impl Store {
    fn access_token_rows(
        &self,
        sql: &str,
        params: &[super::sql::Value],
    ) -> Result<Vec<AccessToken>> {
        let conn = self.conn()?;
        let rows = conn.rows(sql, params, AccessToken::from_row)?;
        Ok(rows)
    }

    /// One user's personal access tokens, oldest first, a page at a time.
    pub fn access_tokens_for_user(
        &self,
        user_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<AccessToken>> {
        self.access_token_rows(
            "SELECT id, user_id, description, is_active FROM tokens
             WHERE user_id = ?1 AND kind = 'pat' ORDER BY create_at, rowid LIMIT ?2 OFFSET ?3",
            args![user_id, clamp(limit), clamp(offset)],
        )
    }

    /// Everyone's personal access tokens, oldest first, a page at a time.
    pub fn access_tokens(&self, offset: u64, limit: u64) -> Result<Vec<AccessToken>> {
        self.access_token_rows(
            "SELECT id, user_id, description, is_active FROM tokens
             WHERE kind = 'pat' ORDER BY create_at, rowid LIMIT ?1 OFFSET ?2",
            args![clamp(limit), clamp(offset)],
        )
    }

    /// The tokens whose id, user id or user's username starts with `term`
    /// (taken literally), as Mattermost's token search.
    pub fn search_access_tokens(&self, term: &str) -> Result<Vec<AccessToken>> {
        let escaped: String = term
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        self.access_token_rows(
            "SELECT t.id, t.user_id, t.description, t.is_active FROM tokens t
             JOIN users u ON u.id = t.user_id
             WHERE t.kind = 'pat' AND (t.id LIKE ?1 ESCAPE '\\' OR t.user_id LIKE ?1 ESCAPE '\\'
                                       OR u.username LIKE ?1 ESCAPE '\\')
             ORDER BY t.create_at, t.rowid LIMIT ?2",
            args![format!("{escaped}%"), SEARCH_LIMIT],
        )
    }

    /// A personal access token by its id.
    pub fn access_token(&self, id: &str) -> Result<AccessToken> {
        self.conn()?
            .row(
                "SELECT id, user_id, description, is_active FROM tokens
                 WHERE id = ?1 AND kind = 'pat'",
                args![id],
                AccessToken::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("access token {id}")))
    }

    /// Disables (the token stops signing in at once) or enables a token.
    pub fn set_access_token_active(&self, id: &str, active: bool) -> Result<()> {
        let id = id.to_string();
        self.writer.write(move |c| {
            let n = c.execute(
                "UPDATE tokens SET is_active = ?2 WHERE id = ?1 AND kind = 'pat'",
                args![id, active],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("access token {id}")));
            }
            Ok(())
        })
    }

    /// Revokes a token: it is deleted. A personal access token is itself the
    /// session it signs in, so nothing else outlives it.
    pub fn delete_access_token(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.writer.write(move |c| {
            let n = c.execute(
                "DELETE FROM tokens WHERE id = ?1 AND kind = 'pat'",
                args![&id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("access token {id}")));
            }
            Ok(())
        })
    }
}

/// Paging values as SQLite's integers (the callers' are known to fit).
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
