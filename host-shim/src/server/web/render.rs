//! Posts as HTML for the channel view: Markdown through pulldown-cmark and
//! ammonia, message attachments, mentions, BOT badges and override names.
//! Every piece of a post's text is either escaped here or sanitised by ammonia.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, TextMergeStream, html};
use serde_json::Value;
use std::sync::LazyLock;

/// Who wrote a post, as the view shows them.
#[derive(Debug, Clone, Default)]
pub struct Author {
    pub username: String,
    pub is_bot: bool,
}

/// What the renderer needs besides the post.
pub struct Context<'a> {
    /// The reader's username, so their own mentions stand out.
    pub viewer: &'a str,
    /// `EnablePostUsernameOverride` / `EnablePostIconOverride`.
    pub allow_username_override: bool,
    pub allow_icon_override: bool,
}

/// `text` safe inside HTML text and attribute values (the sign-in and
/// consent pages use it too).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The sanitiser: ammonia's defaults (no script, style, event handlers or
/// non-http(s)/mailto URLs) plus the classes our own highlighting adds.
static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .add_allowed_classes("span", ["mention", "mention-me", "channel-mention"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect());
    builder
});

/// Markdown to safe HTML, with `@user` and `~channel` outside code marked up.
pub fn markdown(text: &str, viewer: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut in_code = 0usize;
    let mut in_link = 0usize;
    // Merged, so `~channel` (a strikethrough delimiter) reads as one text.
    let events = TextMergeStream::new(Parser::new_ext(text, options)).map(|event| match event {
        Event::Start(Tag::CodeBlock(_)) => {
            in_code += 1;
            event
        }
        Event::End(TagEnd::CodeBlock) => {
            in_code = in_code.saturating_sub(1);
            event
        }
        Event::Start(Tag::Link { .. }) => {
            in_link += 1;
            event
        }
        Event::End(TagEnd::Link) => {
            in_link = in_link.saturating_sub(1);
            event
        }
        Event::Text(t) if in_code == 0 && in_link == 0 => {
            Event::InlineHtml(CowStr::from(linkify(&emojify(&t), viewer)))
        }
        // A single newline is a line break in Mattermost's messages.
        Event::SoftBreak => Event::HardBreak,
        // Raw HTML in a message is shown as text, as Mattermost does.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    CLEANER.clean(&out).to_string()
}

/// Bare `http(s)://` URLs as links, as Mattermost autolinks them; the rest
/// through [`highlight`].
fn linkify(text: &str, viewer: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let start = ["http://", "https://"]
            .iter()
            .filter_map(|scheme| {
                rest.match_indices(scheme).map(|(i, _)| i).find(|&i| {
                    rest[..i]
                        .chars()
                        .last()
                        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '['))
                })
            })
            .min();
        let Some(start) = start else {
            out.push_str(&highlight(rest, viewer));
            return out;
        };
        out.push_str(&highlight(&rest[..start], viewer));
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'']);
        let url = if url.len() > "https://".len() {
            url
        } else {
            &tail[..end]
        };
        out.push_str(&format!("<a href=\"{0}\">{0}</a>", escape(url)));
        rest = &tail[url.len()..];
    }
}

/// `:shortcode:` as its emoji, as Mattermost shows it; unknown names stay.
fn emojify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(':') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let name_end =
            after.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')));
        match name_end {
            Some(end) if end > 0 && after[end..].starts_with(':') => {
                match emojis::get_by_shortcode(&after[..end]) {
                    Some(emoji) => {
                        out.push_str(emoji.as_str());
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push(':');
                        rest = after;
                    }
                }
            }
            _ => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes `text`, wrapping mentions in spans.
fn highlight(text: &str, viewer: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['@', '~']) {
        let (before, from) = rest.split_at(at);
        out.push_str(&escape(before));
        let sigil = &from[..1];
        let name_len = from[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(from.len() - 1);
        let preceded_by_word = before.chars().last().is_some_and(|c| c.is_alphanumeric());
        let name = from[1..1 + name_len].trim_end_matches('.');
        if name.is_empty() || preceded_by_word {
            out.push_str(&escape(sigil));
            rest = &from[1..];
            continue;
        }
        let class = match sigil {
            "~" => "channel-mention",
            _ if name.eq_ignore_ascii_case(viewer)
                || matches!(name, "all" | "channel" | "here") =>
            {
                "mention mention-me"
            }
            _ => "mention",
        };
        out.push_str(&format!(
            "<span class=\"{class}\">{}{}</span>",
            sigil,
            escape(name)
        ));
        rest = &from[1 + name.len()..];
    }
    out.push_str(&escape(rest));
    out
}

/// Only absolute http(s) URLs go into `href` and `src`.
fn safe_url(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")).then(|| escape(url))
}

/// Mattermost's attachment colours: a hex value or good/warning/danger.
fn colour(value: &str) -> &str {
    match value {
        "good" => "#2eb886",
        "warning" => "#daa038",
        "danger" => "#a30200",
        v if v.starts_with('#')
            && matches!(v.len(), 4 | 7)
            && v[1..].chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            v
        }
        _ => "#dddddd",
    }
}

fn text_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A field's value may be a string or a number in what integrations send.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn attachment(post_id: &str, a: &Value, viewer: &str) -> String {
    let mut out = format!(
        "<div class=\"attachment\" style=\"border-left-color:{}\">",
        colour(text_of(a, "color"))
    );
    let pretext = text_of(a, "pretext");
    if !pretext.is_empty() {
        out = format!(
            "<div class=\"attachment-pretext\">{}</div>{out}",
            markdown(pretext, viewer)
        );
    }
    let author = text_of(a, "author_name");
    if !author.is_empty() {
        out.push_str("<div class=\"attachment-author\">");
        if let Some(icon) = safe_url(text_of(a, "author_icon")) {
            out.push_str(&format!(
                "<img class=\"author-icon\" src=\"{icon}\" alt=\"\">"
            ));
        }
        match safe_url(text_of(a, "author_link")) {
            Some(link) => out.push_str(&format!(
                "<a href=\"{link}\" rel=\"noopener noreferrer\" target=\"_blank\">{}</a>",
                escape(author)
            )),
            None => out.push_str(&escape(author)),
        }
        out.push_str("</div>");
    }
    let title = text_of(a, "title");
    if !title.is_empty() {
        out.push_str("<div class=\"attachment-title\">");
        match safe_url(text_of(a, "title_link")) {
            Some(link) => out.push_str(&format!(
                "<a href=\"{link}\" rel=\"noopener noreferrer\" target=\"_blank\">{}</a>",
                escape(title)
            )),
            None => out.push_str(&escape(title)),
        }
        out.push_str("</div>");
    }
    if let Some(thumb) = safe_url(text_of(a, "thumb_url")) {
        out.push_str(&format!(
            "<img class=\"attachment-thumb\" src=\"{thumb}\" alt=\"\">"
        ));
    }
    let text = text_of(a, "text");
    if !text.is_empty() {
        out.push_str(&format!(
            "<div class=\"attachment-text\">{}</div>",
            markdown(text, viewer)
        ));
    }
    if let Some(fields) = a.get("fields").and_then(Value::as_array)
        && !fields.is_empty()
    {
        out.push_str("<div class=\"attachment-fields\">");
        for field in fields {
            let short = field.get("short").and_then(Value::as_bool).unwrap_or(false);
            out.push_str(&format!(
                "<div class=\"field{}\"><div class=\"field-title\">{}</div><div class=\"field-value\">{}</div></div>",
                if short { " short" } else { "" },
                escape(text_of(field, "title")),
                markdown(&display_value(field.get("value").unwrap_or(&Value::Null)), viewer),
            ));
        }
        out.push_str("</div>");
    }
    if let Some(image) = safe_url(text_of(a, "image_url")) {
        out.push_str(&format!(
            "<img class=\"attachment-image\" src=\"{image}\" alt=\"\">"
        ));
    }
    if let Some(actions) = a.get("actions").and_then(Value::as_array)
        && !actions.is_empty()
    {
        out.push_str("<div class=\"attachment-actions\">");
        for action in actions {
            out.push_str(&action_html(post_id, action));
        }
        out.push_str("</div>");
    }
    let footer = text_of(a, "footer");
    if !footer.is_empty() {
        out.push_str("<div class=\"attachment-footer\">");
        if let Some(icon) = safe_url(text_of(a, "footer_icon")) {
            out.push_str(&format!(
                "<img class=\"footer-icon\" src=\"{icon}\" alt=\"\">"
            ));
        }
        out.push_str(&escape(footer));
        out.push_str("</div>");
    }
    out.push_str("</div>");
    out
}

/// A button or a menu; the page's script posts the click to
/// `/api/v4/posts/{post_id}/actions/{action_id}`.
fn action_html(post_id: &str, action: &Value) -> String {
    let id = escape(text_of(action, "id"));
    let name = escape(text_of(action, "name"));
    let ids = format!(
        "data-post-id=\"{}\" data-action-id=\"{id}\"",
        escape(post_id)
    );
    if text_of(action, "type") == "select" {
        let source = text_of(action, "data_source");
        let mut options = format!("<option value=\"\">{name}</option>");
        if let Some(list) = action.get("options").and_then(Value::as_array) {
            for o in list {
                options.push_str(&format!(
                    "<option value=\"{}\">{}</option>",
                    escape(text_of(o, "value")),
                    escape(text_of(o, "text"))
                ));
            }
        }
        return format!(
            "<select class=\"action-select\" {ids} data-source=\"{}\">{options}</select>",
            escape(source)
        );
    }
    let style = match text_of(action, "style") {
        s @ ("primary" | "danger" | "success" | "good" | "warning") => s,
        _ => "default",
    };
    format!("<button type=\"button\" class=\"action-button {style}\" {ids}>{name}</button>")
}

/// One post as the view's `<article>`.
pub fn post(post: &Value, author: &Author, ctx: &Context) -> String {
    let id = text_of(post, "id");
    let props = post.get("props").cloned().unwrap_or(Value::Null);
    let from_integration = props.get("from_webhook").and_then(Value::as_str) == Some("true")
        || props.get("from_bot").and_then(Value::as_str) == Some("true");
    let mut name = author.username.clone();
    let override_name = text_of(&props, "override_username");
    if from_integration && ctx.allow_username_override && !override_name.is_empty() {
        name = override_name.to_string();
    }
    let icon = safe_url(text_of(&props, "override_icon_url"))
        .filter(|_| from_integration && ctx.allow_icon_override);
    let avatar = match icon {
        Some(url) => format!("<img class=\"avatar\" src=\"{url}\" alt=\"\">"),
        None => format!(
            "<span class=\"avatar initial\">{}</span>",
            escape(
                &name
                    .chars()
                    .next()
                    .unwrap_or('?')
                    .to_uppercase()
                    .to_string()
            )
        ),
    };
    let badge = if author.is_bot || from_integration {
        "<span class=\"bot-badge\">BOT</span>"
    } else {
        ""
    };
    let post_type = text_of(post, "type");
    let ephemeral = post_type == "system_ephemeral";
    let root = text_of(post, "root_id");
    let mut classes = String::from("post");
    if ephemeral {
        classes.push_str(" ephemeral");
    }
    if !root.is_empty() {
        classes.push_str(" reply");
    }
    let edited = post.get("edit_at").and_then(Value::as_i64).unwrap_or(0) > 0;
    let time = post.get("create_at").and_then(Value::as_i64).unwrap_or(0);
    let mut body = markdown(text_of(post, "message"), ctx.viewer);
    if let Some(list) = props.get("attachments").and_then(Value::as_array) {
        for a in list {
            body.push_str(&attachment(id, a, ctx.viewer));
        }
    }
    let note = if ephemeral {
        "<div class=\"ephemeral-note\">(Only visible to you)</div>"
    } else {
        ""
    };
    let thread = if root.is_empty() {
        format!(
            "<button type=\"button\" class=\"reply-link\" data-thread=\"{}\">Reply</button>",
            escape(id)
        )
    } else {
        format!(
            "<button type=\"button\" class=\"reply-link\" data-thread=\"{}\">In thread</button>",
            escape(root)
        )
    };
    format!(
        "<article class=\"{classes}\" id=\"post_{id}\" data-post-id=\"{id}\" data-root-id=\"{root}\" data-create-at=\"{time}\">\
{avatar}<div class=\"post-main\"><div class=\"post-header\"><span class=\"author\">{name}</span>{badge}\
<time data-ms=\"{time}\"></time>{edited}{thread}</div><div class=\"post-body\">{body}</div>{note}</div></article>",
        id = escape(id),
        root = escape(root),
        name = escape(&name),
        edited = if edited {
            "<span class=\"edited\">(edited)</span>"
        } else {
            ""
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context<'static> {
        Context {
            viewer: "alice",
            allow_username_override: true,
            allow_icon_override: true,
        }
    }

    #[test]
    fn script_and_javascript_links_are_inert() {
        for message in [
            "hi <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)> <a href=\"javascript:alert(4)\">y</a> [z](JaVaScRiPt:alert(5))",
            "<script>alert(1)</script>\n\n<div onclick=alert(1)>d</div>",
        ] {
            let html = markdown(message, "alice");
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("<div"), "{html}");
            assert!(
                !html.to_lowercase().contains("<a href=\"javascript"),
                "{html}"
            );
            // Shown as text, as Mattermost shows raw HTML.
            assert!(html.contains("&lt;script&gt;"), "{html}");
        }
        let link = markdown(
            "[x](javascript:alert(2)) [ok](https://example.com)",
            "alice",
        );
        assert!(!link.contains("javascript"), "{link}");
        assert!(link.contains("href=\"https://example.com\""), "{link}");
    }

    #[test]
    fn bare_urls_become_links_and_newlines_breaks() {
        let html = markdown(
            "see https://example.com/a?b=1&c=2. and (http://x.io)\nnext <https://y.io>",
            "alice",
        );
        assert!(html.contains("<a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer nofollow\">https://example.com/a?b=1&amp;c=2</a>."), "{html}");
        assert!(html.contains(">http://x.io</a>)"), "{html}");
        assert!(html.contains("<br>"), "{html}");
        assert_eq!(html.matches("<a ").count(), 3, "{html}");
        assert!(!markdown("nothttps://z.io", "a").contains("<a"));
        assert!(!markdown("`https://z.io`", "a").contains("<a"));
    }

    #[test]
    fn emoji_shortcodes() {
        assert_eq!(
            emojify("ship it :tada: at 10:30 :nosuchemoji:"),
            "ship it 🎉 at 10:30 :nosuchemoji:"
        );
    }

    #[test]
    fn markdown_and_mentions() {
        let html = markdown(
            "**bold** @alice and @bob in ~town-square, `@code`, me@example.com",
            "alice",
        );
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(
            html.contains("<span class=\"mention mention-me\">@alice</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"mention\">@bob</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"channel-mention\">~town-square</span>"),
            "{html}"
        );
        assert!(html.contains("<code>@code</code>"), "{html}");
        assert!(
            html.contains("me@example.com") && !html.contains("@example</span>"),
            "{html}"
        );
    }

    #[test]
    fn attachments_escape_and_refuse_unsafe_urls() {
        let p = json!({
            "id": "p1", "message": "", "type": "", "root_id": "", "create_at": 1,
            "props": {"from_webhook": "true", "override_username": "<b>ci</b>",
                "override_icon_url": "javascript:alert(1)",
                "attachments": [{"color": "red;background:url(x)", "title": "<script>t</script>",
                    "title_link": "javascript:alert(1)", "image_url": "https://example.com/i.png",
                    "fields": [{"title": "n", "value": 3, "short": true}],
                    "actions": [{"id": "ok\"x", "name": "Go", "type": "button"}],
                    "footer": "f"}]}
        });
        let html = post(
            &p,
            &Author {
                username: "webhook".into(),
                is_bot: false,
            },
            &ctx(),
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("&lt;b&gt;ci&lt;/b&gt;"), "{html}");
        assert!(html.contains("border-left-color:#dddddd"), "{html}");
        assert!(html.contains("src=\"https://example.com/i.png\""), "{html}");
        assert!(html.contains("data-action-id=\"ok&quot;x\""), "{html}");
        assert!(html.contains("bot-badge"), "{html}");
        assert!(html.contains("<p>3</p>"), "{html}");
    }
}
