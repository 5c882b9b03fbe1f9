//! The cases [`super`] runs on both backends. Each takes the test's data and
//! opens as many stores (processes, nodes) on it as it needs.

use super::TestDb;
use crate::store::deliveries::tests::job;
use crate::store::deliveries::{Enqueued, JobRow};
use crate::store::{
    Channel, ChannelType, Post, Reaction, StoreError, User, migrations, new_id, now_millis,
};
use std::sync::Arc;

fn user(name: &str) -> User {
    User {
        id: new_id(),
        username: name.into(),
        email: format!("{name}@example.com"),
        roles: "system_user".into(),
        create_at: now_millis(),
        ..User::default()
    }
}

fn channel(team_id: &str, name: &str, creator: &str) -> Channel {
    let now = now_millis();
    Channel {
        id: new_id(),
        team_id: team_id.into(),
        name: name.into(),
        display_name: name.into(),
        channel_type: ChannelType::Open,
        header: String::new(),
        purpose: String::new(),
        creator_id: creator.into(),
        create_at: now,
        update_at: now,
        delete_at: 0,
    }
}

fn post(channel_id: &str, user_id: &str, message: &str, at: i64) -> Post {
    Post {
        id: new_id(),
        create_at: at,
        update_at: at,
        edit_at: 0,
        delete_at: 0,
        user_id: user_id.into(),
        channel_id: channel_id.into(),
        root_id: String::new(),
        message: message.into(),
        post_type: String::new(),
        props: r#"{"from_webhook":"true"}"#.into(),
        metadata: "{}".into(),
        is_pinned: false,
    }
}

pub(super) fn teams_users_and_memberships_round_trip(db: &TestDb) {
    let store = db.open();
    let team = store.create_team("core", "Core").unwrap();
    assert_eq!(store.team_by_name("core").unwrap(), team);
    let alice = user("alice");
    store.create_user(&alice, "hash").unwrap();
    let mut bot = user("robot");
    bot.is_bot = true;
    store.create_user(&bot, "hash").unwrap();
    assert_eq!(store.user(&alice.id).unwrap().username, "alice");
    assert!(store.user(&bot.id).unwrap().is_bot, "a boolean reads back");
    assert!(matches!(
        store.create_user(&user("alice"), "hash"),
        Err(StoreError::Conflict(_))
    ));
    store
        .add_team_member(&team.id, &alice.id, "team_user")
        .unwrap();
    store
        .add_team_member(&team.id, &alice.id, "team_user team_admin")
        .unwrap();
    assert_eq!(
        store
            .team_member(&team.id, &alice.id)
            .unwrap()
            .unwrap()
            .roles,
        "team_user team_admin"
    );
    assert_eq!(
        store.teams_for_user(&alice.id).unwrap(),
        std::slice::from_ref(&team)
    );
    let town = channel(&team.id, "town-square", &alice.id);
    store.create_channel(&town).unwrap();
    store.add_channel_member(&town.id, &alice.id).unwrap();
    // Joining twice is joining once.
    store.add_channel_member(&town.id, &alice.id).unwrap();
    assert_eq!(store.public_channels(&team.id).unwrap(), [town]);
    assert!(matches!(
        store.user(&new_id()),
        Err(StoreError::NotFound(_))
    ));
}

pub(super) fn posts_page_newest_first_and_read_back_as_written(db: &TestDb) {
    let store = db.open();
    let team = store.create_team("t", "T").unwrap();
    let author = user("author");
    store.create_user(&author, "h").unwrap();
    let c = channel(&team.id, "c", &author.id);
    store.create_channel(&c).unwrap();
    let posts: Vec<Post> = (0..5)
        .map(|i| post(&c.id, &author.id, &format!("m{i} ünïcödé ✓"), 1_000 + i))
        .collect();
    for p in &posts {
        store.insert_post(p).unwrap();
    }
    assert_eq!(store.post(&posts[2].id).unwrap(), posts[2]);
    let page: Vec<String> = store
        .channel_posts(&c.id, 0, 2)
        .unwrap()
        .into_iter()
        .map(|p| p.message)
        .collect();
    assert_eq!(page, ["m4 ünïcödé ✓", "m3 ünïcödé ✓"]);
    let second: Vec<String> = store
        .channel_posts(&c.id, 1, 2)
        .unwrap()
        .into_iter()
        .map(|p| p.message)
        .collect();
    assert_eq!(second, ["m2 ünïcödé ✓", "m1 ünïcödé ✓"]);
}

pub(super) fn kv_values_list_by_prefix_and_expire(db: &TestDb) {
    let store = db.open();
    for key in ["a_1", "a_2", "ab", "b", "\u{e9}t\u{e9}"] {
        store.kv_set(key, key.as_bytes()).unwrap();
    }
    assert_eq!(store.kv_get("ab").unwrap().as_deref(), Some(&b"ab"[..]));
    // `_` is a character, not a wildcard; pages follow key order.
    assert_eq!(store.kv_list("a_", 0, 10).unwrap(), ["a_1", "a_2"]);
    assert_eq!(store.kv_list("a", 1, 1).unwrap(), ["a_2"]);
    assert_eq!(store.kv_list("", 0, 10).unwrap().len(), 5);
    assert_eq!(store.kv_list("\u{e9}", 0, 10).unwrap(), ["\u{e9}t\u{e9}"]);
    // Bytes that are not UTF-8 come back as they went in.
    store.kv_set("bin", &[0, 0xff, 0x80]).unwrap();
    assert_eq!(store.kv_get("bin").unwrap().unwrap(), [0, 0xff, 0x80]);
    store.kv_delete("ab").unwrap();
    assert_eq!(store.kv_get("ab").unwrap(), None);
    // Expired values read as absent, and absent may be replaced by a swap.
    store
        .kv_compare_and_set("gone", None, Some(b"v"))
        .unwrap()
        .then_some(())
        .unwrap();
    let past = crate::app::Clock::fixed(now_millis() + 3_600_000);
    let mut later = db.open();
    store.kv_set_with_expiry("short", b"x", 1).unwrap();
    later.set_clock(past);
    assert_eq!(later.kv_get("short").unwrap(), None);
    assert!(
        later
            .kv_compare_and_set("short", None, Some(b"new"))
            .unwrap()
    );
    assert_eq!(later.kv_get("short").unwrap().as_deref(), Some(&b"new"[..]));
}

/// Many processes increment one counter by compare-and-set at once: no
/// increment is lost, which is what per-hook rate limits and
/// `Idempotency-Key` rely on across a cluster.
pub(super) fn kv_compare_and_set_holds_across_processes(db: &TestDb) {
    let stores: Vec<Arc<crate::store::Store>> = (0..3).map(|_| Arc::new(db.open())).collect();
    // Only one of several racing creators wins.
    let created: usize = std::thread::scope(|s| {
        let racers: Vec<_> = stores
            .iter()
            .map(|store| {
                s.spawn(move || {
                    store
                        .kv_compare_and_set("first", None, Some(b"mine"))
                        .unwrap() as usize
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(created, 1);
    const EACH: usize = 20;
    std::thread::scope(|s| {
        for store in &stores {
            for _ in 0..2 {
                s.spawn(move || {
                    for _ in 0..EACH {
                        loop {
                            let current = store.kv_get("counter").unwrap();
                            let n: usize = current
                                .as_deref()
                                .map(|v| std::str::from_utf8(v).unwrap().parse().unwrap())
                                .unwrap_or(0);
                            let next = (n + 1).to_string();
                            if store
                                .kv_compare_and_set(
                                    "counter",
                                    current.as_deref(),
                                    Some(next.as_bytes()),
                                )
                                .unwrap()
                            {
                                break;
                            }
                        }
                    }
                });
            }
        }
    });
    let total = stores[0].kv_get("counter").unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&total).unwrap(),
        (stores.len() * 2 * EACH).to_string()
    );
}

/// Processes claiming the same queue at once never lease one job twice.
pub(super) fn a_delivery_is_leased_to_one_process_only(db: &TestDb) {
    let stores: Vec<Arc<crate::store::Store>> = (0..3).map(|_| Arc::new(db.open())).collect();
    let jobs: Vec<JobRow> = (0..60).map(|i| job(&format!("j{i:02}"))).collect();
    assert_eq!(
        stores[0].enqueue_deliveries(jobs, 1_000).unwrap(),
        Enqueued::Stored
    );
    let claimed: Vec<String> = std::thread::scope(|s| {
        let claimers: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                s.spawn(move || {
                    let owner = format!("node-{i}");
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim_deliveries(&owner, 10, 1_000_000, 4).unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|j| j.id));
                    }
                })
            })
            .collect();
        claimers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    let mut unique = claimed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(claimed.len(), 60, "every job claimed once: {claimed:?}");
    assert_eq!(unique.len(), 60);
    // A lease that ran out is taken by another process.
    let again = stores[1]
        .claim_deliveries("node-1", 2_000_000, 3_000_000, 100)
        .unwrap();
    assert_eq!(again.len(), 60);
}

pub(super) fn reactions_count_distinct_emoji(db: &TestDb) {
    let store = db.open();
    let team = store.create_team("t", "T").unwrap();
    let a = user("a1");
    store.create_user(&a, "h").unwrap();
    let c = channel(&team.id, "c", &a.id);
    store.create_channel(&c).unwrap();
    let p = post(&c.id, &a.id, "hi", 1);
    store.insert_post(&p).unwrap();
    for emoji in ["smile", "smile", "tada"] {
        store
            .save_reaction(&Reaction {
                user_id: a.id.clone(),
                post_id: p.id.clone(),
                emoji_name: emoji.into(),
                channel_id: c.id.clone(),
                create_at: 5,
            })
            .unwrap();
    }
    assert_eq!(
        store.reaction_emoji_count(&p.id, "tada").unwrap(),
        (2, true)
    );
    assert_eq!(
        store.reaction_emoji_count(&p.id, "rocket").unwrap(),
        (2, false)
    );
}

/// No process caches what another may change: a write through one store is
/// what the next read through another returns.
pub(super) fn a_write_from_one_process_is_read_at_once_by_another(db: &TestDb) {
    let (a, b) = (db.open(), db.open());
    let team = a.create_team("shared", "Shared").unwrap();
    assert_eq!(b.team(&team.id).unwrap(), team);
    a.kv_set("k", b"1").unwrap();
    assert_eq!(b.kv_get("k").unwrap().as_deref(), Some(&b"1"[..]));
    b.kv_set("k", b"2").unwrap();
    assert_eq!(a.kv_get("k").unwrap().as_deref(), Some(&b"2"[..]));
}

pub(super) fn the_schema_is_at_the_latest_version_and_a_newer_release_is_refused(db: &TestDb) {
    let store = db.open();
    assert_eq!(
        store.schema_version().unwrap(),
        migrations::latest_version()
    );
    // Opening again migrates nothing.
    let again = db.open();
    assert_eq!(
        again.schema_version().unwrap(),
        migrations::latest_version()
    );
    store
        .writer
        .write(|c| {
            c.execute(
                "UPDATE systems SET value = '99.0.0' WHERE name = 'LastRelease'",
                crate::args![],
            )
        })
        .unwrap();
    drop((store, again));
    let refused = std::panic::catch_unwind(|| db.open());
    assert!(refused.is_err(), "a newer release's data is refused");
    if db.is_postgres() {
        // The refusal names both releases.
        let data_source = db.postgres.as_ref().unwrap().data_source.clone();
        let err = crate::store::Store::open_postgres(&data_source, super::KEY)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("99.0.0") && err.contains(migrations::RELEASE),
            "{err}"
        );
    }
}
