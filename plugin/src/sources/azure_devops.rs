//! Azure DevOps service hooks ("Web Hooks" consumer). The event is the body's `eventType`
//! (`git.push`, `git.pullrequest.merged`, `workitem.updated`); there is no signature, so
//! the secret is checked against the `Authorization` header the subscription sends (basic
//! credentials, or a bearer token set as an HTTP header).

use super::text::{capped, code, commit_line, first_line, link, or, plain, url_part, with_body};
use super::{Inbound, Message, Source, authorization_matches, str_at};
use serde_json::Value;

pub const SOURCE: Source = Source {
    name: "azure-devops",
    display_name: "Azure DevOps",
    username: "Azure DevOps",
    icon_url: "",
    required_header: None,
    signature_header: "Authorization",
    events: &[
        "git.push",
        "git.pullrequest.created",
        "git.pullrequest.updated",
        "git.pullrequest.merged",
        "build.complete",
        "workitem.created",
        "workitem.updated",
    ],
    event: |inbound| str_at(inbound.json, "/eventType").to_owned(),
    verify: |inbound, secret| authorization_matches(secret, inbound.header("Authorization")),
    render,
    recognizes: |inbound| {
        !str_at(inbound.json, "/eventType").is_empty() && inbound.json.get("resource").is_some()
    },
};

const COMMITS_LISTED: usize = 5;
const CHANGES_LISTED: usize = 5;
/// Git's name for "no commit": a branch created or deleted.
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";
/// Work item fields every update changes, which say nothing.
const BOOKKEEPING: &[&str] = &[
    "System.Rev",
    "System.AuthorizedDate",
    "System.RevisedDate",
    "System.ChangedDate",
    "System.ChangedBy",
    "System.AuthorizedAs",
    "System.PersonId",
    "System.Watermark",
    "System.History",
    "System.CommentCount",
];

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let resource = json.get("resource")?;
    match event {
        "git.push" => Some(Message {
            text: push(resource)?,
            ..Message::default()
        }),
        "git.pullrequest.created" | "git.pullrequest.updated" | "git.pullrequest.merged" => {
            let (pr, thread) = pull_request(resource);
            let target = code(branch_name(str_at(resource, "/targetRefName")));
            let author = plain(str_at(resource, "/createdBy/displayName"));
            let text = match event {
                "git.pullrequest.created" => with_body(
                    format!(
                        "**{author}** opened pull request {pr} ({} → {target})",
                        code(branch_name(str_at(resource, "/sourceRefName")))
                    ),
                    str_at(resource, "/description"),
                ),
                "git.pullrequest.updated" => match str_at(resource, "/status") {
                    "completed" => format!("Pull request {pr} was completed into {target}"),
                    "abandoned" => format!("Pull request {pr} was abandoned"),
                    _ => format!("Pull request {pr} was updated"),
                },
                _ => match str_at(resource, "/mergeStatus") {
                    "succeeded" if str_at(resource, "/status") == "completed" => {
                        format!("Pull request {pr} was merged into {target}")
                    }
                    "succeeded" => format!("Pull request {pr} merges cleanly into {target}"),
                    "conflicts" => {
                        format!(":warning: Pull request {pr} has merge conflicts with {target}")
                    }
                    other => format!(
                        ":warning: Merging pull request {pr} into {target} failed: {}",
                        code(or(other, "unknown"))
                    ),
                },
            };
            Some(Message {
                text,
                thread: Some(thread),
                ..Message::default()
            })
        }
        "build.complete" => Some(Message {
            text: build(resource),
            ..Message::default()
        }),
        "workitem.created" => {
            let fields = resource.get("fields")?;
            let id = resource.get("id").and_then(Value::as_u64)?;
            let (item, thread) = work_item(resource, fields, id);
            let who = plain(&person(fields.get("System.CreatedBy")));
            let state = str_at(fields, "/System.State");
            let mut text = format!("**{who}** created {item}");
            if !state.is_empty() {
                text.push_str(&format!(" (state **{}**)", plain(state)));
            }
            Some(Message {
                text,
                thread: Some(thread),
                ..Message::default()
            })
        }
        "workitem.updated" => {
            let id = resource
                .get("workItemId")
                .or_else(|| resource.pointer("/revision/id"))
                .and_then(Value::as_u64)?;
            let fields = resource.pointer("/revision/fields")?;
            let (item, thread) = work_item(resource, fields, id);
            let who = plain(&person(resource.get("revisedBy")));
            let changed: Vec<String> = resource
                .get("fields")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(name, _)| !BOOKKEEPING.contains(&name.as_str()))
                .map(|(name, change)| {
                    let short = name.rsplit('.').next().unwrap_or(name);
                    let old = plain(&value_text(change.get("oldValue")));
                    let new = plain(&value_text(change.get("newValue")));
                    if old.is_empty() {
                        format!("- **{}** set to {new}", plain(short))
                    } else {
                        format!("- **{}**: {old} → {new}", plain(short))
                    }
                })
                .collect();
            let comment = strip_tags(str_at(resource, "/fields/System.History/newValue"));
            if changed.is_empty() && comment.is_empty() {
                return None;
            }
            let mut text = if changed.is_empty() {
                format!("**{who}** commented on {item}")
            } else {
                format!("**{who}** updated {item}")
            };
            let total = changed.len();
            for line in capped(changed, total, CHANGES_LISTED) {
                text.push('\n');
                text.push_str(&line);
            }
            Some(Message {
                text: with_body(text, &comment),
                thread: Some(thread),
                ..Message::default()
            })
        }
        _ => None,
    }
}

/// A push: each updated ref, then its commits.
fn push(resource: &Value) -> Option<String> {
    let who = plain(str_at(resource, "/pushedBy/displayName"));
    let repo_url = str_at(resource, "/repository/remoteUrl");
    let repo = link(&repo_name(resource), repo_url);
    let update = resource
        .get("refUpdates")
        .and_then(Value::as_array)?
        .first()?;
    let full_ref = str_at(update, "/name");
    let name = branch_name(full_ref);
    let kind = if full_ref.starts_with("refs/tags/") {
        "tag"
    } else {
        "branch"
    };
    let version = if kind == "tag" { "GT" } else { "GB" };
    let tree = if repo_url.is_empty() {
        String::new()
    } else {
        format!("{repo_url}?version={version}{}", url_part(name))
    };
    if str_at(update, "/newObjectId") == NO_COMMIT {
        return Some(format!("**{who}** deleted {kind} {} in {repo}", code(name)));
    }
    if str_at(update, "/oldObjectId") == NO_COMMIT {
        return Some(format!(
            "**{who}** created {kind} {} in {repo}",
            link(name, &tree)
        ));
    }
    let commits: &[Value] = resource
        .get("commits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let count = if commits.len() == 1 {
        "1 commit".to_owned()
    } else {
        format!("{} commits", commits.len())
    };
    let mut text = format!(
        "**{who}** pushed {count} to {kind} {} in {repo}",
        link(name, &tree)
    );
    let lines: Vec<String> = commits
        .iter()
        .map(|c| {
            let sha: String = str_at(c, "/commitId").chars().take(10).collect();
            commit_line(
                &sha,
                str_at(c, "/url"),
                str_at(c, "/comment"),
                str_at(c, "/author/name"),
            )
        })
        .collect();
    for line in capped(lines, commits.len(), COMMITS_LISTED) {
        text.push('\n');
        text.push_str(&line);
    }
    Some(text)
}

/// `[Project/Repo#12 Title](url)` and its thread key.
fn pull_request(resource: &Value) -> (String, String) {
    let id = resource
        .get("pullRequestId")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let web = str_at(resource, "/_links/web/href");
    let remote = str_at(resource, "/repository/remoteUrl");
    let url = if !web.is_empty() {
        web.to_owned()
    } else if !remote.is_empty() {
        format!("{remote}/pullrequest/{id}")
    } else {
        String::new()
    };
    let title = str_at(resource, "/title");
    (
        link(&format!("{}#{id} {title}", repo_name(resource)), &url),
        format!("pr/{}#{id}", str_at(resource, "/repository/id")),
    )
}

/// `Project/Repo`, or the repository's name alone when it is the project's.
fn repo_name(resource: &Value) -> String {
    let project = str_at(resource, "/repository/project/name");
    let name = str_at(resource, "/repository/name");
    if project.is_empty() || project == name {
        name.to_owned()
    } else {
        format!("{project}/{name}")
    }
}

fn build(resource: &Value) -> String {
    let result = or(str_at(resource, "/result"), str_at(resource, "/status"));
    let icon = match result {
        "succeeded" => ":white_check_mark:",
        "partiallySucceeded" => ":warning:",
        "canceled" | "stopped" => ":no_entry_sign:",
        _ => ":x:",
    };
    let label = format!(
        "{} {}",
        str_at(resource, "/definition/name"),
        str_at(resource, "/buildNumber")
    );
    let build = link(label.trim(), str_at(resource, "/_links/web/href"));
    let mut text = format!("{icon} Build {build} **{}**", plain(or(result, "finished")));
    let branch = or(
        str_at(resource, "/sourceBranch"),
        str_at(resource, "/sourceGetVersion")
            .split(':')
            .nth(1)
            .unwrap_or_default(),
    );
    if !branch.is_empty() {
        text.push_str(&format!(" on {}", code(branch_name(branch))));
    }
    let by = or(
        str_at(resource, "/requestedFor/displayName"),
        str_at(resource, "/requests/0/requestedFor/displayName"),
    );
    if !by.is_empty() {
        text.push_str(&format!(" (requested by {})", plain(by)));
    }
    text
}

/// `[Bug #5 Title](url)` and its thread key. The link is the item's own page, or the
/// collection's work item editor.
fn work_item(resource: &Value, fields: &Value, id: u64) -> (String, String) {
    let kind = or(str_at(fields, "/System.WorkItemType"), "Work item");
    let title = str_at(fields, "/System.Title");
    let project = str_at(fields, "/System.TeamProject");
    let html = or(
        str_at(resource, "/_links/html/href"),
        str_at(resource, "/revision/_links/html/href"),
    );
    let url = if !html.is_empty() {
        html.to_owned()
    } else {
        match str_at(resource, "/url").split_once("/_apis/") {
            Some((collection, _)) if !project.is_empty() => {
                format!("{collection}/{}/_workitems/edit/{id}", url_part(project))
            }
            _ => String::new(),
        }
    };
    (
        link(&format!("{kind} #{id} {title}"), &url),
        format!("workitem/{project}/{id}"),
    )
}

/// A person field: `{"displayName": …}`, or `Name <address>` in older payloads.
fn person(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.split(" <").next().unwrap_or_default().to_owned(),
        Some(v) => or(str_at(v, "/displayName"), str_at(v, "/name"))
            .split(" <")
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    }
}

/// A changed field's value as text: a string's first line, a number, or a person.
fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => first_line(s).to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(v @ Value::Object(_)) => person(Some(v)),
        _ => String::new(),
    }
}

/// A comment (`System.History` is HTML) as text: tags dropped, entities for `<>&` undone.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

fn branch_name(full_ref: &str) -> &str {
    full_ref
        .strip_prefix("refs/heads/")
        .or_else(|| full_ref.strip_prefix("refs/tags/"))
        .unwrap_or(full_ref)
}
