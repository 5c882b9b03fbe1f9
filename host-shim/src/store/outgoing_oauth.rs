//! Outgoing OAuth connections (table `outgoing_oauth_connections`): the
//! credentials the host uses to fetch tokens for integrations' requests. The
//! client secret and password are sealed together with the at-rest key.

use super::sql::Row;
use super::{Result, Store, StoreError};
use crate::args;
use serde::{Deserialize, Serialize};

/// A connection as Mattermost models it; `audiences` are URLs (an entry
/// ending in `*` is a prefix). Read from request bodies, but deliberately
/// not `Serialize`: answers are built by the API's sanitizer only, so no
/// secret can leave by accident.
#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct OutgoingOAuthConnection {
    pub id: String,
    pub creator_id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    pub credentials_username: Option<String>,
    pub credentials_password: Option<String>,
    pub oauth_token_url: String,
    pub grant_type: String,
    pub audiences: Vec<String>,
}

/// The secrets redacted, so a connection in a log line or a failed
/// assertion shows none.
impl std::fmt::Debug for OutgoingOAuthConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |present: bool| if present { "<redacted>" } else { "" };
        f.debug_struct("OutgoingOAuthConnection")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &hidden(!self.client_secret.is_empty()))
            .field("credentials_username", &self.credentials_username)
            .field(
                "credentials_password",
                &hidden(self.credentials_password.is_some()),
            )
            .field("oauth_token_url", &self.oauth_token_url)
            .field("grant_type", &self.grant_type)
            .field("audiences", &self.audiences)
            .field("update_at", &self.update_at)
            .finish()
    }
}

/// What is sealed: the two secrets, as one JSON value.
#[derive(Serialize, Deserialize, Default)]
struct Secrets {
    client_secret: String,
    credentials_password: Option<String>,
}

/// The name the secrets are sealed under (the AEAD's associated data), so a
/// sealed value copied to another row does not open.
fn secrets_name(id: &str) -> String {
    format!("outgoing_oauth_connection/{id}/secrets")
}

/// A row with its secrets still sealed.
fn sealed_row(r: &Row) -> Result<(OutgoingOAuthConnection, Vec<u8>)> {
    let audiences: String = r.get("audiences")?;
    let connection = OutgoingOAuthConnection {
        id: r.get("id")?,
        creator_id: r.get("creator_id")?,
        create_at: r.get("create_at")?,
        update_at: r.get("update_at")?,
        name: r.get("name")?,
        client_id: r.get("client_id")?,
        credentials_username: r.get("credentials_username")?,
        oauth_token_url: r.get("oauth_token_url")?,
        grant_type: r.get("grant_type")?,
        audiences: serde_json::from_str(&audiences).unwrap_or_default(),
        ..OutgoingOAuthConnection::default()
    };
    Ok((connection, r.get("secrets")?))
}

impl Store {
    pub fn create_outgoing_oauth_connection(&self, c: &OutgoingOAuthConnection) -> Result<()> {
        self.write_outgoing_oauth_connection(c, true)
    }

    pub fn update_outgoing_oauth_connection(&self, c: &OutgoingOAuthConnection) -> Result<()> {
        self.write_outgoing_oauth_connection(c, false)
    }

    fn write_outgoing_oauth_connection(
        &self,
        c: &OutgoingOAuthConnection,
        insert: bool,
    ) -> Result<()> {
        let c = c.clone();
        let secrets = serde_json::to_vec(&Secrets {
            client_secret: c.client_secret.clone(),
            credentials_password: c.credentials_password.clone(),
        })
        .map_err(|e| StoreError::Db(e.to_string()))?;
        let sealed = self.seal_value(&secrets_name(&c.id), &secrets);
        let audiences = serde_json::to_string(&c.audiences).unwrap_or_else(|_| "[]".into());
        self.writer.write(move |db| {
            let sql = if insert {
                "INSERT INTO outgoing_oauth_connections (id, creator_id, create_at, update_at,
                     name, client_id, secrets, credentials_username, oauth_token_url,
                     grant_type, audiences)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            } else {
                "UPDATE outgoing_oauth_connections SET creator_id = ?2, create_at = ?3,
                     update_at = ?4, name = ?5, client_id = ?6, secrets = ?7,
                     credentials_username = ?8, oauth_token_url = ?9, grant_type = ?10,
                     audiences = ?11
                 WHERE id = ?1"
            };
            let n = db.execute(
                sql,
                args![
                    c.id,
                    c.creator_id,
                    c.create_at,
                    c.update_at,
                    c.name,
                    c.client_id,
                    sealed,
                    c.credentials_username,
                    c.oauth_token_url,
                    c.grant_type,
                    audiences
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "outgoing OAuth connection {}",
                    c.id
                )));
            }
            Ok(())
        })
    }

    fn open_connection(
        &self,
        (mut c, sealed): (OutgoingOAuthConnection, Vec<u8>),
    ) -> Result<OutgoingOAuthConnection> {
        let plain = self.open_value(&secrets_name(&c.id), sealed)?;
        let secrets: Secrets = serde_json::from_slice(&plain).map_err(|_| {
            StoreError::Db(format!(
                "outgoing OAuth connection {}: its secrets cannot be read",
                c.id
            ))
        })?;
        c.client_secret = secrets.client_secret;
        c.credentials_password = secrets.credentials_password;
        Ok(c)
    }

    pub fn outgoing_oauth_connection(&self, id: &str) -> Result<OutgoingOAuthConnection> {
        let found = self
            .conn()?
            .row(
                "SELECT * FROM outgoing_oauth_connections WHERE id = ?1",
                args![id],
                sealed_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("outgoing OAuth connection {id}")))?;
        self.open_connection(found)
    }

    /// Connections with ids after `from_id`, by id (Mattermost's cursor
    /// paging); at most `limit`.
    pub fn outgoing_oauth_connections(
        &self,
        from_id: &str,
        limit: u32,
    ) -> Result<Vec<OutgoingOAuthConnection>> {
        let conn = self.conn()?;
        let rows: Vec<_> = conn.rows(
            "SELECT * FROM outgoing_oauth_connections WHERE id > ?1 ORDER BY id LIMIT ?2",
            args![from_id, limit],
            sealed_row,
        )?;
        drop(conn);
        rows.into_iter().map(|r| self.open_connection(r)).collect()
    }

    pub fn delete_outgoing_oauth_connection(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.writer.write(move |db| {
            db.execute(
                "DELETE FROM outgoing_oauth_connections WHERE id = ?1",
                args![&id],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sealed_at_rest_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = Store::open_with_key(&path, "key").unwrap();
        let c = OutgoingOAuthConnection {
            id: super::super::new_id(),
            creator_id: super::super::new_id(),
            create_at: 1,
            update_at: 1,
            name: "Svc".into(),
            client_id: "client".into(),
            client_secret: "the-client-secret-6789".into(),
            credentials_username: Some("robot".into()),
            credentials_password: Some("the-password-12345".into()),
            oauth_token_url: "https://idp.example.com/token".into(),
            grant_type: "password".into(),
            audiences: vec!["https://svc.example.com/*".into()],
        };
        store.create_outgoing_oauth_connection(&c).unwrap();
        assert_eq!(store.outgoing_oauth_connection(&c.id).unwrap(), c);
        assert_eq!(
            store.outgoing_oauth_connections("", 10).unwrap(),
            vec![c.clone()]
        );
        assert!(
            store
                .outgoing_oauth_connections(&c.id, 10)
                .unwrap()
                .is_empty()
        );
        drop(store);
        let mut raw = Vec::new();
        for file in ["db", "db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
                raw.extend(bytes);
            }
        }
        let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(contains("robot"), "the username is not a secret");
        assert!(!contains("the-client-secret-6789"));
        assert!(!contains("the-password-12345"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("the-client-secret-6789") && !shown.contains("the-password-12345"));
    }
}
