//! Bitbucket Cloud's repository webhooks. The event is the `X-Event-Key` header
//! (`repo:push`, `pullrequest:fulfilled`, `issue:comment_created`); with a secret, Bitbucket
//! signs the raw body as `X-Hub-Signature: sha256=<hex HMAC-SHA256>`.

use super::text::{capped, code, commit_line, first_line, link, or, plain, with_body};
use super::{Inbound, Message, Source, hmac_hex_matches, str_at, threaded};
use serde_json::Value;

pub const SOURCE: Source = Source {
    name: "bitbucket",
    display_name: "Bitbucket Cloud",
    username: "Bitbucket",
    icon_url: "",
    required_header: Some("X-Event-Key"),
    signature_header: "X-Hub-Signature",
    events: &[
        "repo:push",
        "pullrequest:created",
        "pullrequest:updated",
        "pullrequest:fulfilled",
        "pullrequest:rejected",
        "pullrequest:comment_created",
        "issue:created",
        "issue:updated",
        "issue:comment_created",
    ],
    event: |inbound| {
        inbound
            .header("X-Event-Key")
            .unwrap_or("")
            .trim()
            .to_owned()
    },
    verify: |inbound, secret| {
        hmac_hex_matches(
            secret,
            inbound.body,
            inbound.header("X-Hub-Signature"),
            "sha256=",
        )
    },
    render,
    recognizes: |inbound| inbound.header("X-Event-Key").is_some(),
};

const COMMITS_LISTED: usize = 5;
/// Changed issue fields listed for an update.
const CHANGES_LISTED: usize = 5;

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let who = link(
        or(
            str_at(json, "/actor/display_name"),
            str_at(json, "/actor/nickname"),
        ),
        str_at(json, "/actor/links/html/href"),
    );
    let repo_name = str_at(json, "/repository/full_name");
    let repo = link(repo_name, str_at(json, "/repository/links/html/href"));
    match event {
        "repo:push" => {
            let changes: Vec<String> = json
                .pointer("/push/changes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|change| push(change, &who, &repo))
                .collect();
            if changes.is_empty() {
                return None;
            }
            Some(Message {
                text: changes.join("\n"),
                ..Message::default()
            })
        }
        "pullrequest:created"
        | "pullrequest:updated"
        | "pullrequest:fulfilled"
        | "pullrequest:rejected"
        | "pullrequest:comment_created" => {
            let (pr, thread) = item(json, "/pullrequest", "pr", repo_name);
            let branch = |at: &str| code(str_at(json, &format!("/pullrequest/{at}/branch/name")));
            let text = match event {
                "pullrequest:created" => with_body(
                    format!(
                        "{who} opened pull request {pr} ({} → {})",
                        branch("source"),
                        branch("destination")
                    ),
                    str_at(json, "/pullrequest/description"),
                ),
                "pullrequest:updated" => format!("{who} updated pull request {pr}"),
                "pullrequest:fulfilled" => format!(
                    "{who} merged pull request {pr} into {}",
                    branch("destination")
                ),
                "pullrequest:rejected" => with_body(
                    format!("{who} declined pull request {pr}"),
                    str_at(json, "/pullrequest/reason"),
                ),
                _ => comment(json, &who, "pull request", &pr),
            };
            threaded(text, thread)
        }
        "issue:created" | "issue:updated" | "issue:comment_created" => {
            let (issue, thread) = item(json, "/issue", "issue", repo_name);
            let text = match event {
                "issue:created" => {
                    let about: Vec<String> = ["kind", "priority"]
                        .iter()
                        .map(|f| str_at(json, &format!("/issue/{f}")))
                        .filter(|v| !v.is_empty())
                        .map(plain)
                        .collect();
                    let about = if about.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", about.join(", "))
                    };
                    with_body(
                        format!("{who} opened issue {issue}{about}"),
                        str_at(json, "/issue/content/raw"),
                    )
                }
                "issue:updated" => {
                    let mut text = format!("{who} updated issue {issue}");
                    let changes = json.get("changes").and_then(Value::as_object);
                    for (field, change) in changes.into_iter().flatten().take(CHANGES_LISTED) {
                        let old = plain(first_line(str_at(change, "/old")));
                        let new = plain(first_line(str_at(change, "/new")));
                        let field = plain(field);
                        text.push_str(&if old.is_empty() {
                            format!("\n- **{field}** set to {new}")
                        } else {
                            format!("\n- **{field}**: {old} → {new}")
                        });
                    }
                    with_body(text, str_at(json, "/comment/content/raw"))
                }
                _ => comment(json, &who, "issue", &issue),
            };
            threaded(text, thread)
        }
        _ => None,
    }
}

/// One ref's change in a push: created, deleted, or commits (forced or not).
fn push(change: &Value, who: &str, repo: &str) -> String {
    let new = change.get("new").filter(|n| !n.is_null());
    let old = change.get("old").filter(|o| !o.is_null());
    let Some(new) = new else {
        let kind = plain(or(str_at(change, "/old/type"), "branch"));
        let name = code(str_at(change, "/old/name"));
        return format!("{who} deleted {kind} {name} in {repo}");
    };
    let kind = plain(or(str_at(new, "/type"), "branch"));
    let name = link(str_at(new, "/name"), str_at(new, "/links/html/href"));
    if old.is_none() || change.get("created") == Some(&Value::Bool(true)) {
        return format!("{who} created {kind} {name} in {repo}");
    }
    let commits: &[Value] = change
        .get("commits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let truncated = change.get("truncated") == Some(&Value::Bool(true));
    let count = match (commits.len(), truncated) {
        (n, true) => format!("{n}+ commits"),
        (1, false) => "1 commit".to_owned(),
        (n, false) => format!("{n} commits"),
    };
    let verb = if change.get("forced") == Some(&Value::Bool(true)) {
        "force-pushed"
    } else {
        "pushed"
    };
    let compare = str_at(change, "/links/html/href");
    let compare = if compare.is_empty() {
        String::new()
    } else {
        format!(" ({})", link("compare", compare))
    };
    let mut text = format!("{who} {verb} {count} to {kind} {name} in {repo}{compare}");
    let lines: Vec<String> = commits
        .iter()
        .map(|c| {
            let sha: String = str_at(c, "/hash").chars().take(10).collect();
            let author = or(
                str_at(c, "/author/user/display_name"),
                str_at(c, "/author/raw")
                    .split(" <")
                    .next()
                    .unwrap_or_default(),
            );
            commit_line(
                &sha,
                str_at(c, "/links/html/href"),
                str_at(c, "/message"),
                author,
            )
        })
        .collect();
    for line in capped(lines, commits.len(), COMMITS_LISTED) {
        text.push('\n');
        text.push_str(&line);
    }
    if truncated {
        text.push_str("\n- and more");
    }
    text
}

fn comment(json: &Value, who: &str, kind: &str, on: &str) -> String {
    let commented = link("commented", str_at(json, "/comment/links/html/href"));
    with_body(
        format!("{who} {commented} on {kind} {on}"),
        str_at(json, "/comment/content/raw"),
    )
}

/// `[team/repo#12 Title](url)` and its thread key.
fn item(json: &Value, at: &str, prefix: &str, repo_name: &str) -> (String, String) {
    let number = json
        .pointer(&format!("{at}/id"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let title = str_at(json, &format!("{at}/title"));
    let url = str_at(json, &format!("{at}/links/html/href"));
    (
        link(&format!("{repo_name}#{number} {title}"), url),
        format!("{prefix}/{repo_name}#{number}"),
    )
}
