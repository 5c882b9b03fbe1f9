//! Typed records in the host's key-value store. Every feature keeps its
//! definitions here under its own key prefix, as JSON.

use crate::api::ApiError;
use crate::host::Host;
use serde::{Serialize, de::DeserializeOwned};

/// A collection of JSON records under `prefix`, keyed by id, with an
/// optional secondary index kept beside it.
pub struct Collection {
    prefix: &'static str,
    index: Option<IndexSpec>,
}

/// A secondary index: `terms` says under which terms a record (its stored
/// JSON) is found; each pair is an empty kv entry `{prefix}{term}/{id}`, so
/// finding the ids under a term is one range listing, not a scan.
///
/// The index only narrows: a reader loads what it finds and checks it, so an
/// entry left behind by a failed write is harmless. A write therefore adds
/// its new entries before the record and drops stale ones after it; a
/// missing entry (the one harmful kind) cannot be left by a failure.
struct IndexSpec {
    prefix: &'static str,
    terms: fn(&[u8]) -> Vec<String>,
}

/// How many keys one `list` call asks the host for.
const PAGE: u32 = 1000;

/// How many records stored before an index existed one lookup indexes.
const BUILD_CHUNK: u32 = 2000;

impl Collection {
    pub const fn new(prefix: &'static str) -> Collection {
        Collection {
            prefix,
            index: None,
        }
    }

    /// A collection whose records are also found by `terms`, under the
    /// index prefix `index_prefix` (which must not start with `prefix`).
    pub const fn indexed(
        prefix: &'static str,
        index_prefix: &'static str,
        terms: fn(&[u8]) -> Vec<String>,
    ) -> Collection {
        Collection {
            prefix,
            index: Some(IndexSpec {
                prefix: index_prefix,
                terms,
            }),
        }
    }

    fn key(&self, id: &str) -> String {
        format!("{}{}", self.prefix, id)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        host: &dyn Host,
        id: &str,
    ) -> Result<Option<T>, ApiError> {
        let Some(bytes) = host.kv_get(&self.key(id)).map_err(|e| storage_error(&e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ApiError::new(
                500,
                "app.plugin.kv.decode.app_error",
                "Stored record is corrupt.",
            )
            .with_detail(e.to_string())
        })
    }

    pub fn put<T: Serialize>(&self, host: &dyn Host, id: &str, value: &T) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            ApiError::new(
                500,
                "app.plugin.kv.encode.app_error",
                "Could not encode record.",
            )
            .with_detail(e.to_string())
        })?;
        let Some(index) = &self.index else {
            return host
                .kv_set(&self.key(id), &bytes)
                .map_err(|e| storage_error(&e));
        };
        let old = self.stored_entries(host, index, id)?;
        if old.is_empty() {
            self.mark_whole_if_empty(host, index)?;
        }
        let new = index.entries(&bytes, id);
        for entry in new.iter().filter(|e| !old.contains(e)) {
            host.kv_set(entry, &[]).map_err(|e| storage_error(&e))?;
        }
        host.kv_set(&self.key(id), &bytes)
            .map_err(|e| storage_error(&e))?;
        for entry in old.iter().filter(|e| !new.contains(e)) {
            host.kv_delete(entry).map_err(|e| storage_error(&e))?;
        }
        Ok(())
    }

    pub fn delete(&self, host: &dyn Host, id: &str) -> Result<(), ApiError> {
        let old = match &self.index {
            Some(index) => self.stored_entries(host, index, id)?,
            None => Vec::new(),
        };
        host.kv_delete(&self.key(id))
            .map_err(|e| storage_error(&e))?;
        for entry in &old {
            host.kv_delete(entry).map_err(|e| storage_error(&e))?;
        }
        Ok(())
    }

    fn stored_entries(
        &self,
        host: &dyn Host,
        index: &IndexSpec,
        id: &str,
    ) -> Result<Vec<String>, ApiError> {
        Ok(host
            .kv_get(&self.key(id))
            .map_err(|e| storage_error(&e))?
            .map(|bytes| index.entries(&bytes, id))
            .unwrap_or_default())
    }

    /// One page of the records under `term`, oldest first (by `create_at`,
    /// then id), read straight from the index: only the page's records are
    /// loaded. For a term that holds exactly what a listing shows.
    pub fn page<T: DeserializeOwned>(
        &self,
        host: &dyn Host,
        term: &str,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<T>, ApiError> {
        let Some(index) = &self.index else {
            return Ok(Vec::new());
        };
        if !self.index_ready(host, index)? {
            return Ok(self
                .scan(host, index, term)?
                .into_iter()
                .skip(offset as usize)
                .take(limit as usize)
                .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
                .collect());
        }
        let under = index.term_prefix(term);
        let keys = host
            .kv_list(&under, offset, limit)
            .map_err(|e| storage_error(&e))?;
        Ok(keys
            .iter()
            .filter_map(|key| self.get_logged(host, IndexSpec::id_of(&key[under.len()..])))
            .collect())
    }

    /// How many records are under `term` (their index keys are listed, the
    /// records are not read).
    pub fn count(&self, host: &dyn Host, term: &str) -> Result<usize, ApiError> {
        let Some(index) = &self.index else {
            return Ok(0);
        };
        if !self.index_ready(host, index)? {
            return Ok(self.scan(host, index, term)?.len());
        }
        Ok(list_all(host, &index.term_prefix(term))?.len())
    }

    /// The records found under any of `terms`, each once, in id order; every
    /// record when there are no terms or no index. The caller still checks
    /// each one: the index narrows, it does not decide.
    pub fn find<T: DeserializeOwned>(
        &self,
        host: &dyn Host,
        terms: &[String],
    ) -> Result<Vec<T>, ApiError> {
        let Some(index) = self.index.as_ref().filter(|_| !terms.is_empty()) else {
            return self.all(host);
        };
        if !self.index_ready(host, index)? {
            return self.all(host);
        }
        let mut ids = std::collections::BTreeSet::new();
        for term in terms {
            let under = index.term_prefix(term);
            for key in list_all(host, &under)? {
                ids.insert(IndexSpec::id_of(&key[under.len()..]).to_string());
            }
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(record) = self.get_logged(host, &id) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// A collection that had no record before this write never held one
    /// without its index entries, so its index is whole from the start: the
    /// first lookup after a fresh install must not scan for unindexed
    /// records (thousands of hooks made before anyone listed them).
    fn mark_whole_if_empty(&self, host: &dyn Host, index: &IndexSpec) -> Result<(), ApiError> {
        let marker = index.marker();
        if host
            .kv_get(&marker)
            .map_err(|e| storage_error(&e))?
            .is_some()
        {
            return Ok(());
        }
        let any = host
            .kv_list(self.prefix, 0, 1)
            .map_err(|e| storage_error(&e))?;
        if any.is_empty() {
            host.kv_set(&marker, b"1").map_err(|e| storage_error(&e))?;
        }
        Ok(())
    }

    /// Whether the index holds every record. Records stored before the index
    /// existed are indexed a chunk per lookup, so no one call outlasts its
    /// deadline however many there are; until the last chunk, lookups answer
    /// from a scan. A marker key records that it is done.
    ///
    /// The chunk's place is kept as an offset and the last key done. Records
    /// deleted meanwhile shift the offsets down, so each chunk lists from one
    /// chunk before the offset and starts after the last key done.
    fn index_ready(&self, host: &dyn Host, index: &IndexSpec) -> Result<bool, ApiError> {
        let marker = index.marker();
        let kv_get = |key: &str| host.kv_get(key).map_err(|e| storage_error(&e));
        if kv_get(&marker)?.is_some() {
            return Ok(true);
        }
        let cursor_key = format!("{}!cursor", index.prefix);
        let (offset, last): (u32, String) = kv_get(&cursor_key)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let from = offset.saturating_sub(BUILD_CHUNK);
        let keys = host
            .kv_list(self.prefix, from, 2 * BUILD_CHUNK)
            .map_err(|e| storage_error(&e))?;
        let start = keys.iter().position(|k| *k == last).map_or(0, |i| i + 1);
        for key in &keys[start..] {
            if let Some(bytes) = kv_get(key)? {
                for entry in index.entries(&bytes, &key[self.prefix.len()..]) {
                    host.kv_set(&entry, &[]).map_err(|e| storage_error(&e))?;
                }
            }
        }
        if keys.len() < 2 * BUILD_CHUNK as usize {
            host.kv_set(&marker, b"1").map_err(|e| storage_error(&e))?;
            host.kv_delete(&cursor_key).map_err(|e| storage_error(&e))?;
            return Ok(true);
        }
        let cursor = (
            from + keys.len() as u32,
            keys.last().cloned().unwrap_or_default(),
        );
        let cursor = serde_json::to_vec(&cursor).unwrap_or_default();
        host.kv_set(&cursor_key, &cursor)
            .map_err(|e| storage_error(&e))?;
        Ok(false)
    }

    /// The stored JSON of every record under `term`, oldest first, found by
    /// reading every record: what lookups do until the index is complete.
    fn scan(
        &self,
        host: &dyn Host,
        index: &IndexSpec,
        term: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        let wanted = index.term_prefix(term);
        let mut found = Vec::new();
        for key in list_all(host, self.prefix)? {
            let id = &key[self.prefix.len()..];
            let Some(bytes) = host.kv_get(&key).map_err(|e| storage_error(&e))? else {
                continue;
            };
            if let Some(entry) = index
                .entries(&bytes, id)
                .into_iter()
                .find(|e| e.starts_with(&wanted) && e.len() > wanted.len())
            {
                found.push((entry, bytes));
            }
        }
        // Entry keys sort as the index lists them: by creation, then id.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// A record by id, or `None` when it is missing or unreadable (logged).
    fn get_logged<T: DeserializeOwned>(&self, host: &dyn Host, id: &str) -> Option<T> {
        match self.get::<T>(host, id) {
            Ok(found) => found,
            Err(e) => {
                host.log(
                    crate::host::Level::Warn,
                    &format!(
                        "skipping unreadable record {}{id}: {}",
                        self.prefix, e.detailed_error
                    ),
                );
                None
            }
        }
    }

    /// Every record, in key order. Records that fail to decode are skipped and
    /// logged rather than failing the whole listing.
    pub fn all<T: DeserializeOwned>(&self, host: &dyn Host) -> Result<Vec<T>, ApiError> {
        Ok(list_all(host, self.prefix)?
            .iter()
            .filter_map(|key| self.get_logged(host, &key[self.prefix.len()..]))
            .collect())
    }
}

impl IndexSpec {
    /// The key whose presence says the index holds every record.
    fn marker(&self) -> String {
        format!("{}!built", self.prefix)
    }

    /// A record's index keys: `{prefix}{term}/{order}{id}` for each of its
    /// terms, where `order` is its `create_at` as 16 hex digits, so a term's
    /// keys list oldest first, as Mattermost lists definitions.
    fn entries(&self, stored: &[u8], id: &str) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(default)]
            create_at: i64,
        }
        let order = serde_json::from_slice::<Created>(stored)
            .map(|c| c.create_at.max(0))
            .unwrap_or(0);
        (self.terms)(stored)
            .iter()
            .map(|term| format!("{}{order:016x}{id}", self.term_prefix(term)))
            .collect()
    }

    /// The prefix of all of a term's keys. `/`, `%` and `!` in a term are
    /// escaped, so one term's keys never fall under another's prefix and
    /// never match the marker.
    fn term_prefix(&self, term: &str) -> String {
        let mut key = String::from(self.prefix);
        for c in term.chars() {
            match c {
                '/' => key.push_str("%2F"),
                '%' => key.push_str("%25"),
                '!' => key.push_str("%21"),
                c => key.push(c),
            }
        }
        key.push('/');
        key
    }

    /// The id in what follows a term's prefix in one of its keys.
    fn id_of(rest: &str) -> &str {
        rest.get(16..).unwrap_or("")
    }
}

/// The index term of every record of a team.
pub fn team_term(team_id: &str) -> String {
    format!("team/{team_id}")
}

/// The index term of one user's records in a team.
pub fn owner_term(team_id: &str, user_id: &str) -> String {
    format!("owner/{team_id}/{user_id}")
}

/// What stands for "every team" in [`team_term`] and [`owner_term`]: ids
/// are alphanumeric, so it is no team's.
pub const ANY_TEAM: &str = "*";

/// The listing terms of a definition owned by `owner` in `team_id`: its
/// team, its owner in that team, and the same across all teams.
pub fn listing_terms(team_id: &str, owner: &str) -> Vec<String> {
    vec![
        team_term(team_id),
        owner_term(team_id, owner),
        team_term(ANY_TEAM),
        owner_term(ANY_TEAM, owner),
    ]
}

/// Index terms for records found by their team (their JSON `team_id`).
pub fn by_team(stored: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Team {
        team_id: String,
    }
    serde_json::from_slice::<Team>(stored)
        .map(|r| vec![team_term(&r.team_id)])
        .unwrap_or_default()
}

/// Every key under `prefix`, page by page.
fn list_all(host: &dyn Host, prefix: &str) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    loop {
        let keys = host
            .kv_list(prefix, out.len() as u32, PAGE)
            .map_err(|e| storage_error(&e))?;
        let n = keys.len() as u32;
        out.extend(keys);
        if n < PAGE {
            return Ok(out);
        }
    }
}

fn storage_error(err: &crate::host::HostError) -> ApiError {
    ApiError::new(500, "app.plugin.kv.app_error", "The plugin store failed.")
        .with_detail(err.detail().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use serde_json::{Value, json};

    const THINGS: Collection = Collection::indexed("thing/", "thing_index/", by_team);

    fn teams(host: &FakeHost, team: &str) -> Vec<String> {
        THINGS
            .find::<Value>(host, &[team_term(team)])
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn an_index_follows_puts_and_deletes() {
        let host = FakeHost::default();
        for (id, team) in [("a", "red"), ("b", "red"), ("c", "blue")] {
            THINGS
                .put(&host, id, &json!({"id": id, "team_id": team}))
                .unwrap();
        }
        assert_eq!(teams(&host, "red"), ["a", "b"]);
        assert_eq!(teams(&host, "blue"), ["c"]);
        // Moved to another team: found there only.
        THINGS
            .put(&host, "a", &json!({"id": "a", "team_id": "blue"}))
            .unwrap();
        assert_eq!(teams(&host, "red"), ["b"]);
        assert_eq!(teams(&host, "blue"), ["a", "c"]);
        THINGS.delete(&host, "c").unwrap();
        assert_eq!(teams(&host, "blue"), ["a"]);
        assert!(
            !host
                .kv
                .borrow()
                .keys()
                .any(|k| k.starts_with("thing_index/") && k.ends_with('c'))
        );
        // No terms: everything.
        assert_eq!(THINGS.find::<Value>(&host, &[]).unwrap().len(), 2);
    }

    #[test]
    fn a_page_comes_from_the_index_oldest_first() {
        let host = FakeHost::default();
        // Stored out of order; `create_at` decides the listing order.
        for (id, created) in [("e", 5), ("a", 9), ("c", 1), ("b", 7), ("d", 3)] {
            THINGS
                .put(
                    &host,
                    id,
                    &json!({"id": id, "team_id": "red", "create_at": created}),
                )
                .unwrap();
        }
        let ids = |offset, limit| -> Vec<String> {
            THINGS
                .page::<Value>(&host, &team_term("red"), offset, limit)
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(0, 2), ["c", "d"]);
        assert_eq!(ids(2, 2), ["e", "b"]);
        assert_eq!(ids(4, 2), ["a"]);
        assert_eq!(THINGS.count(&host, &team_term("red")).unwrap(), 5);
        // Only the page's records are read.
        host.kv_reads.set(0);
        ids(0, 2);
        assert!(host.kv_reads.get() <= 3, "{}", host.kv_reads.get());
    }

    #[test]
    fn records_from_before_the_index_are_indexed_a_chunk_per_lookup() {
        let host = FakeHost::default();
        // As an older version left them: records only, no index entries.
        let n = 5 * BUILD_CHUNK as usize / 2;
        for i in 0..n {
            let team = if i % 2 == 0 { "red" } else { "blue" };
            let id = format!("{i:05}");
            let record = json!({"id": id, "team_id": team, "create_at": i});
            host.kv
                .borrow_mut()
                .insert(format!("thing/{id}"), record.to_string().into_bytes());
        }
        let mut expected_red = n.div_ceil(2);
        let mut lookups = 0;
        while !host.kv.borrow().contains_key("thing_index/!built") {
            // Right at every step, from a scan until the index is whole (a
            // scan finds more than the term; callers check what they find).
            let red = THINGS.find::<Value>(&host, &[team_term("red")]).unwrap();
            assert_eq!(
                red.iter().filter(|r| r["team_id"] == "red").count(),
                expected_red
            );
            assert_eq!(
                THINGS.count(&host, &team_term("red")).unwrap(),
                expected_red
            );
            // A record already indexed goes away between chunks: the next
            // chunk must not skip one for it.
            THINGS
                .delete(&host, &format!("{:05}", lookups * 2))
                .unwrap();
            expected_red -= 1;
            lookups += 1;
            assert!(lookups < 10, "the build does not end");
        }
        assert_eq!(teams(&host, "red").len(), expected_red);
        let page = THINGS
            .page::<Value>(&host, &team_term("blue"), 0, 3)
            .unwrap();
        assert_eq!(page[0]["id"], "00001");
        // Every record that is left is under its term in the index.
        let indexed = host
            .kv
            .borrow()
            .keys()
            .filter(|k| k.starts_with("thing_index/team"))
            .count();
        assert_eq!(indexed, n - lookups);
    }

    #[test]
    fn an_index_begun_in_an_empty_store_is_whole_at_once() {
        let host = FakeHost::default();
        let n = 3 * BUILD_CHUNK as usize;
        for i in 0..n {
            let id = format!("{i:05}");
            THINGS
                .put(
                    &host,
                    &id,
                    &json!({"id": id, "team_id": "red", "create_at": i}),
                )
                .unwrap();
        }
        assert!(host.kv.borrow().contains_key("thing_index/!built"));
        // The first lookup reads the page, not every record.
        host.kv_reads.set(0);
        let page = THINGS
            .page::<Value>(&host, &team_term("red"), 0, 2)
            .unwrap();
        assert_eq!(page[1]["id"], "00001");
        assert!(host.kv_reads.get() <= 3, "{}", host.kv_reads.get());
    }

    #[test]
    fn a_store_with_unindexed_records_is_not_marked_whole_by_a_new_one() {
        let host = FakeHost::default();
        let old = json!({"id": "old", "team_id": "red", "create_at": 1});
        host.kv
            .borrow_mut()
            .insert("thing/old".into(), old.to_string().into_bytes());
        THINGS
            .put(
                &host,
                "new",
                &json!({"id": "new", "team_id": "red", "create_at": 2}),
            )
            .unwrap();
        assert!(!host.kv.borrow().contains_key("thing_index/!built"));
        assert_eq!(teams(&host, "red"), ["new", "old"]);
    }

    #[test]
    fn a_term_is_never_a_prefix_of_another() {
        let host = FakeHost::default();
        THINGS
            .put(&host, "a", &json!({"id": "a", "team_id": "x/y"}))
            .unwrap();
        THINGS
            .put(&host, "b", &json!({"id": "b", "team_id": "x"}))
            .unwrap();
        assert_eq!(teams(&host, "x"), ["b"]);
        assert_eq!(teams(&host, "x/y"), ["a"]);
    }
}
