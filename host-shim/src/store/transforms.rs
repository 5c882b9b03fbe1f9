//! Uploaded transform components (issue 25): the `.wasm` bytes with their
//! name, size and SHA-256, kept in the database so every node of a cluster
//! reads the same ones. Listing never reads the bytes.

use super::sql::Row;
use super::{Result, Store, StoreError};
use crate::args;
use serde_json::{Value, json};

/// A stored transform, without its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformInfo {
    pub id: String,
    pub name: String,
    pub size: i64,
    /// Lower-case hex SHA-256 of the component's bytes.
    pub sha256: String,
    pub create_at: i64,
    pub creator_id: String,
}

const COLUMNS: &str = "id, name, size, sha256, create_at, creator_id";

impl TransformInfo {
    fn from_row(r: &Row) -> Result<TransformInfo> {
        Ok(TransformInfo {
            id: r.get("id")?,
            name: r.get("name")?,
            size: r.get("size")?,
            sha256: r.get("sha256")?,
            create_at: r.get("create_at")?,
            creator_id: r.get("creator_id")?,
        })
    }

    /// What the API answers for it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "size": self.size, "sha256": self.sha256,
            "create_at": self.create_at, "creator_id": self.creator_id,
        })
    }
}

impl Store {
    /// Saves a new transform with its component's bytes.
    pub fn insert_transform(&self, info: &TransformInfo, component: Vec<u8>) -> Result<()> {
        let info = info.clone();
        self.writer.write(move |c| {
            c.execute(
                "INSERT INTO transforms (id, name, size, sha256, create_at, creator_id, component)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                args![
                    info.id,
                    info.name,
                    info.size,
                    info.sha256,
                    info.create_at,
                    info.creator_id,
                    component
                ],
            )?;
            Ok(())
        })
    }

    /// Every transform, oldest first.
    pub fn transforms(&self) -> Result<Vec<TransformInfo>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            &format!("SELECT {COLUMNS} FROM transforms ORDER BY create_at, id"),
            args![],
            TransformInfo::from_row,
        )?;
        Ok(rows)
    }

    /// One transform, without its bytes.
    pub fn transform(&self, id: &str) -> Result<TransformInfo> {
        self.conn()?
            .row(
                &format!("SELECT {COLUMNS} FROM transforms WHERE id = ?1"),
                args![id],
                TransformInfo::from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("transform {id}")))
    }

    /// One transform with its component's bytes.
    pub fn transform_component(&self, id: &str) -> Result<(TransformInfo, Vec<u8>)> {
        self.conn()?
            .row(
                &format!("SELECT {COLUMNS}, component FROM transforms WHERE id = ?1"),
                args![id],
                |r| Ok((TransformInfo::from_row(r)?, r.get("component")?)),
            )?
            .ok_or_else(|| StoreError::NotFound(format!("transform {id}")))
    }

    /// Deletes a transform; whether there was one.
    pub fn delete_transform(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.writer
            .write(move |c| Ok(c.execute("DELETE FROM transforms WHERE id = ?1", args![id])? > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transform_is_stored_listed_read_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let info = TransformInfo {
            id: crate::store::new_id(),
            name: "shape".into(),
            size: 3,
            sha256: "abc".into(),
            create_at: 7,
            creator_id: "u".into(),
        };
        store.insert_transform(&info, vec![1, 2, 3]).unwrap();
        assert_eq!(store.transforms().unwrap(), vec![info.clone()]);
        assert_eq!(store.transform(&info.id).unwrap(), info);
        assert_eq!(
            store.transform_component(&info.id).unwrap(),
            (info.clone(), vec![1, 2, 3])
        );
        assert!(store.delete_transform(&info.id).unwrap());
        assert!(!store.delete_transform(&info.id).unwrap());
        assert!(matches!(
            store.transform(&info.id),
            Err(StoreError::NotFound(_))
        ));
    }
}
