//! The OAuth 2.0 provider's state: registered apps, one-time authorization
//! codes, issued access/refresh tokens and remembered consents. Codes and
//! tokens are stored only as SHA-256 hashes and looked up by them; client
//! secrets, which the API shows again, are sealed like kv values.

use super::secrets::token_digest as secret_hash;
use super::sql::Row;
use super::{Result, Store, StoreError};
use crate::args;
use serde_json::{Value, json};

/// Live OAuth tokens one user may hold over all apps (Mattermost's session
/// cap); issuing one more ends the oldest issued.
pub const MAX_GRANTS_PER_USER: i64 = 500;

/// A registered third-party app; `id` is its OAuth `client_id`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OAuthApp {
    pub id: String,
    pub creator_id: String,
    pub create_at: i64,
    pub update_at: i64,
    /// Empty for a public client (PKCE, no secret).
    pub client_secret: String,
    pub name: String,
    pub description: String,
    pub icon_url: String,
    pub callback_urls: Vec<String>,
    pub homepage: String,
    pub is_trusted: bool,
    pub mattermost_app_id: String,
    /// Registered by the client itself (RFC 7591): no creator, never trusted.
    pub is_dynamically_registered: bool,
}

impl OAuthApp {
    fn from_row(r: &Row) -> Result<OAuthApp> {
        let urls: String = r.get("callback_urls")?;
        Ok(OAuthApp {
            id: r.get("id")?,
            creator_id: r.get("creator_id")?,
            create_at: r.get("create_at")?,
            update_at: r.get("update_at")?,
            // Opened by the store, which holds the key.
            client_secret: String::new(),
            name: r.get("name")?,
            description: r.get("description")?,
            icon_url: r.get("icon_url")?,
            callback_urls: serde_json::from_str(&urls).unwrap_or_default(),
            homepage: r.get("homepage")?,
            is_trusted: r.get("is_trusted")?,
            mattermost_app_id: r.get("mattermost_app_id")?,
            is_dynamically_registered: r.get("is_dynamically_registered")?,
        })
    }

    pub fn is_public(&self) -> bool {
        self.client_secret.is_empty()
    }

    /// Mattermost's JSON; `with_secret` false blanks the secret (`/info`).
    pub fn to_json(&self, with_secret: bool) -> Value {
        let mut value = json!({
            "id": self.id,
            "creator_id": self.creator_id,
            "create_at": self.create_at,
            "update_at": self.update_at,
            "client_secret": if with_secret { self.client_secret.as_str() } else { "" },
            "name": self.name,
            "description": self.description,
            "icon_url": self.icon_url,
            "callback_urls": self.callback_urls,
            "homepage": self.homepage,
            "is_trusted": self.is_trusted,
            "mattermost_app_id": self.mattermost_app_id,
        });
        if self.is_dynamically_registered {
            value["is_dynamically_registered"] = json!(true);
        }
        value
    }
}

/// A pending authorization code, as the token endpoint needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthCode {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub scope: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub resource: String,
    pub create_at: i64,
}

/// An issued access token (and its refresh token), by hash.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessGrant {
    pub token_hash: String,
    /// Empty for public clients, which get no refresh token.
    pub refresh_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub expires_at: i64,
    pub scope: String,
    pub audience: String,
}

impl AccessGrant {
    fn from_row(r: &Row) -> Result<AccessGrant> {
        Ok(AccessGrant {
            token_hash: r.get("token_hash")?,
            refresh_hash: r.get("refresh_hash")?,
            client_id: r.get("client_id")?,
            user_id: r.get("user_id")?,
            redirect_uri: r.get("redirect_uri")?,
            expires_at: r.get("expires_at")?,
            scope: r.get("scope")?,
            audience: r.get("audience")?,
        })
    }
}

/// An app as read, with its secret still sealed.
fn sealed_app(r: &Row) -> Result<(OAuthApp, Vec<u8>)> {
    let sealed = match r.get("client_secret")? {
        super::sql::Value::Text(t) => t.into_bytes(),
        super::sql::Value::Blob(b) => b,
        _ => Vec::new(),
    };
    Ok((OAuthApp::from_row(r)?, sealed))
}

/// The name a client secret is sealed under (the AEAD's associated data).
fn secret_name(app_id: &str) -> String {
    format!("oauth_app/{app_id}/client_secret")
}

impl Store {
    pub fn create_oauth_app(&self, app: &OAuthApp) -> Result<()> {
        self.write_oauth_app(app, true)
    }

    pub fn update_oauth_app(&self, app: &OAuthApp) -> Result<()> {
        self.write_oauth_app(app, false)
    }

    fn write_oauth_app(&self, app: &OAuthApp, insert: bool) -> Result<()> {
        let app = app.clone();
        let secret = self.seal_value(&secret_name(&app.id), app.client_secret.as_bytes());
        let urls = serde_json::to_string(&app.callback_urls).unwrap_or_else(|_| "[]".into());
        self.writer.write(move |c| {
            let sql = if insert {
                "INSERT INTO oauth_apps (id, creator_id, create_at, update_at, client_secret, name,
                     description, icon_url, callback_urls, homepage, is_trusted, mattermost_app_id,
                     is_dynamically_registered)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            } else {
                "UPDATE oauth_apps SET creator_id = ?2, create_at = ?3, update_at = ?4,
                     client_secret = ?5, name = ?6, description = ?7, icon_url = ?8,
                     callback_urls = ?9, homepage = ?10, is_trusted = ?11, mattermost_app_id = ?12,
                     is_dynamically_registered = ?13
                 WHERE id = ?1"
            };
            let n = c.execute(
                sql,
                args![
                    app.id,
                    app.creator_id,
                    app.create_at,
                    app.update_at,
                    secret,
                    app.name,
                    app.description,
                    app.icon_url,
                    urls,
                    app.homepage,
                    app.is_trusted,
                    app.mattermost_app_id,
                    app.is_dynamically_registered
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("oauth app {}", app.id)));
            }
            Ok(())
        })
    }

    pub fn oauth_app(&self, id: &str) -> Result<OAuthApp> {
        let found = self
            .conn()?
            .row(
                "SELECT * FROM oauth_apps WHERE id = ?1",
                args![id],
                sealed_app,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("oauth app {id}")))?;
        self.open_app(found)
    }

    fn open_app(&self, (mut app, sealed): (OAuthApp, Vec<u8>)) -> Result<OAuthApp> {
        let secret = self.open_value(&secret_name(&app.id), sealed)?;
        app.client_secret = String::from_utf8(secret)
            .map_err(|_| StoreError::Db(format!("oauth app {}: secret is not text", app.id)))?;
        Ok(app)
    }

    /// Apps by creation time; `creator_id` limits the list to one user's.
    pub fn oauth_apps(
        &self,
        creator_id: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<OAuthApp>> {
        let conn = self.conn()?;
        let apps = conn.rows(
            "SELECT * FROM oauth_apps WHERE (CAST(?1 AS TEXT) IS NULL OR creator_id = ?1)
             ORDER BY create_at, id LIMIT ?2 OFFSET ?3",
            args![
                creator_id,
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX)
            ],
            sealed_app,
        )?;
        drop(conn);
        apps.into_iter().map(|a| self.open_app(a)).collect()
    }

    /// Apps the user has consented to.
    pub fn authorized_oauth_apps(&self, user_id: &str) -> Result<Vec<OAuthApp>> {
        let conn = self.conn()?;
        let apps = conn.rows(
            "SELECT a.* FROM oauth_apps a JOIN oauth_consents c ON c.client_id = a.id
             WHERE c.user_id = ?1 ORDER BY a.create_at, a.id",
            args![user_id],
            sealed_app,
        )?;
        drop(conn);
        apps.into_iter().map(|a| self.open_app(a)).collect()
    }

    /// Removes an app with every token, code and consent it has, at once.
    pub fn delete_oauth_app(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.writer.write(move |c| {
            c.execute("DELETE FROM oauth_access WHERE client_id = ?1", args![&id])?;
            c.execute("DELETE FROM oauth_codes WHERE client_id = ?1", args![&id])?;
            c.execute(
                "DELETE FROM oauth_consents WHERE client_id = ?1",
                args![&id],
            )?;
            c.execute("DELETE FROM oauth_apps WHERE id = ?1", args![&id])?;
            Ok(())
        })
    }

    pub fn has_oauth_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        Ok(self
            .conn()?
            .row(
                "SELECT 1 FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
                args![user_id, client_id],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// Stores a new code (by hash) and remembers the user's consent.
    pub fn save_oauth_code(&self, code: &str, grant: &AuthCode) -> Result<()> {
        let (hash, g) = (secret_hash(code), grant.clone());
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, state, scope,
                     code_challenge, code_challenge_method, resource, create_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                args![
                    hash,
                    g.client_id,
                    g.user_id,
                    g.redirect_uri,
                    g.state,
                    g.scope,
                    g.code_challenge,
                    g.code_challenge_method,
                    g.resource,
                    g.create_at
                ])?;
            c.execute(
                "INSERT INTO oauth_consents (user_id, client_id, scope) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope",
                args![g.user_id, g.client_id, g.scope],
            )?;
            Ok(())
        })
    }

    pub fn oauth_code(&self, code: &str) -> Result<Option<AuthCode>> {
        self.conn()?.row(
            "SELECT * FROM oauth_codes WHERE code_hash = ?1",
            args![secret_hash(code)],
            |r| {
                Ok(AuthCode {
                    client_id: r.get("client_id")?,
                    user_id: r.get("user_id")?,
                    redirect_uri: r.get("redirect_uri")?,
                    state: r.get("state")?,
                    scope: r.get("scope")?,
                    code_challenge: r.get("code_challenge")?,
                    code_challenge_method: r.get("code_challenge_method")?,
                    resource: r.get("resource")?,
                    create_at: r.get("create_at")?,
                })
            },
        )
    }

    /// Deletes a code; returns whether it was still there, so two exchanges
    /// racing for one code cannot both win.
    pub fn take_oauth_code(&self, code: &str) -> Result<bool> {
        let hash = secret_hash(code);
        self.writer.write(move |c| {
            Ok(c.execute("DELETE FROM oauth_codes WHERE code_hash = ?1", args![hash])? > 0)
        })
    }

    /// The user's newest grant for an app.
    pub fn oauth_grant_for(&self, user_id: &str, client_id: &str) -> Result<Option<AccessGrant>> {
        self.conn()?.row(
            "SELECT * FROM oauth_access WHERE user_id = ?1 AND client_id = ?2
                 ORDER BY expires_at DESC LIMIT 1",
            args![user_id, client_id],
            AccessGrant::from_row,
        )
    }

    pub fn oauth_grant_by_refresh(&self, refresh_token: &str) -> Result<Option<AccessGrant>> {
        self.conn()?.row(
            "SELECT * FROM oauth_access WHERE refresh_hash = ?1 AND refresh_hash != ''",
            args![secret_hash(refresh_token)],
            AccessGrant::from_row,
        )
    }

    /// The grant behind a live access token.
    pub fn oauth_grant_by_token(&self, token: &str, now: i64) -> Result<Option<AccessGrant>> {
        self.conn()?.row(
            "SELECT * FROM oauth_access WHERE token_hash = ?1 AND expires_at > ?2",
            args![secret_hash(token), now],
            AccessGrant::from_row,
        )
    }

    /// Stores a grant, replacing `replaces` (a token hash) in the same write:
    /// a refresh rotates both tokens at once. A user keeps at most
    /// [`MAX_GRANTS_PER_USER`]; the oldest issued beyond go in the same write.
    pub fn save_oauth_grant(&self, grant: &AccessGrant, replaces: Option<&str>) -> Result<()> {
        let (g, old) = (grant.clone(), replaces.map(str::to_string));
        self.writer.write(move |c| {
            if let Some(old) = old {
                c.execute("DELETE FROM oauth_access WHERE token_hash = ?1", args![old])?;
            }
            c.execute(
                "INSERT INTO oauth_access (token_hash, refresh_hash, client_id, user_id, redirect_uri,
                     expires_at, scope, audience)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                args![
                    g.token_hash,
                    g.refresh_hash,
                    g.client_id,
                    g.user_id,
                    g.redirect_uri,
                    g.expires_at,
                    g.scope,
                    g.audience
                ])?;
            c.execute(
                "DELETE FROM oauth_access WHERE rowid IN (
                     SELECT rowid FROM oauth_access WHERE user_id = ?1
                     ORDER BY rowid DESC LIMIT -1 OFFSET ?2)",
                args![g.user_id, MAX_GRANTS_PER_USER])?;
            Ok(())
        })
    }

    /// Ends every token a user holds for an app and forgets the consent and
    /// pending codes (`POST /oauth/deauthorize`).
    pub fn deauthorize_oauth_app(&self, user_id: &str, client_id: &str) -> Result<()> {
        let (user, client) = (user_id.to_string(), client_id.to_string());
        self.writer.write(move |c| {
            for table in ["oauth_access", "oauth_codes", "oauth_consents"] {
                c.execute(
                    &format!("DELETE FROM {table} WHERE user_id = ?1 AND client_id = ?2"),
                    args![&user, &client],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secrets_are_sealed_at_rest_and_tokens_kept_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = Store::open_with_key(&path, "k".repeat(32).as_str()).unwrap();
        let app = OAuthApp {
            id: super::super::new_id(),
            client_secret: "the-client-secret-1234567".into(),
            name: "A".into(),
            callback_urls: vec!["https://a.example.com/cb".into()],
            ..OAuthApp::default()
        };
        store.create_oauth_app(&app).unwrap();
        assert_eq!(store.oauth_app(&app.id).unwrap(), app);
        assert_eq!(store.oauth_apps(None, 0, 10).unwrap(), vec![app.clone()]);
        let grant = AccessGrant {
            token_hash: secret_hash("access-token-value-12345"),
            client_id: app.id.clone(),
            expires_at: i64::MAX,
            ..AccessGrant::default()
        };
        store.save_oauth_grant(&grant, None).unwrap();
        assert!(
            store
                .oauth_grant_by_token("access-token-value-12345", 0)
                .unwrap()
                .is_some()
        );
        drop(store);
        let mut raw = Vec::new();
        for file in ["db", "db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
                raw.extend(bytes);
            }
        }
        let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!contains("the-client-secret-1234567"));
        assert!(!contains("access-token-value-12345"));
    }
}
