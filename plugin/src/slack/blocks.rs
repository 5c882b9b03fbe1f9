// Slack Block Kit layouts rendered into what Mattermost shows: Markdown text, and for blocks
// inside an attachment its title, fields and images, so the post reads as it does in Slack.

use serde_json::{Map, Value};

use super::attachment::AttachmentField;
use super::mrkdwn::{escape_plain, to_markdown, utc_minutes};

/// Where the blocks are shown: a post's message, or one attachment (whose sender may have
/// set its title already, leaving headers in the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Message,
    Attachment { has_title: bool },
}

/// The rendering of one `blocks` array.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// Markdown, one paragraph per block.
    pub text: String,
    /// The first header block, when rendering into an attachment.
    pub title: String,
    /// Section fields, when rendering into an attachment.
    pub fields: Vec<AttachmentField>,
    /// The first image block, when rendering into an attachment.
    pub image_url: String,
    /// The first section's image accessory, when rendering into an attachment.
    pub thumb_url: String,
    /// Paths (e.g. `blocks[2].elements[0]`) of the parts that have no rendering: interactive
    /// elements, which would call Slack, and types this renderer does not know.
    pub ignored: Vec<String>,
}

/// Renders `blocks` (anything but an array renders nothing and is reported ignored).
/// `path` names the array in [`Rendered::ignored`], e.g. `blocks` or `attachments[0].blocks`.
pub fn render(blocks: &Value, target: Target, path: &str) -> Rendered {
    let mut r = Renderer {
        target,
        out: Rendered::default(),
        paragraphs: Vec::new(),
    };
    match blocks {
        Value::Array(items) => {
            for (i, block) in items.iter().enumerate() {
                r.block(block, &format!("{path}[{i}]"));
            }
        }
        Value::Null => {}
        _ => r.out.ignored.push(path.to_owned()),
    }
    r.out.text = r.paragraphs.join("\n\n");
    r.out
}

/// Where a message's `text` sent beside top-level blocks is kept.
pub const FALLBACK_PROP: &str = "fallback_text";

/// Top-level Block Kit on a message, as Slack shows it: the blocks are the message, and the
/// `text` sent beside them moves to `props.fallback_text`, the notification fallback Slack
/// makes of it. Blocks that render nothing leave the message as it was.
pub fn apply_to_message(
    text: &mut String,
    props: &mut Option<Map<String, Value>>,
    blocks: &Value,
) -> Vec<String> {
    let rendered = render(blocks, Target::Message, "blocks");
    if !rendered.text.is_empty() {
        let fallback = std::mem::replace(text, rendered.text);
        if !fallback.is_empty() {
            props
                .get_or_insert_default()
                .insert(FALLBACK_PROP.to_owned(), Value::String(fallback));
        }
    }
    rendered.ignored
}

struct Renderer {
    target: Target,
    out: Rendered,
    paragraphs: Vec<String>,
}

impl Renderer {
    fn ignore(&mut self, path: &str) {
        self.out.ignored.push(path.to_owned());
    }

    fn push(&mut self, paragraph: String) {
        if !paragraph.trim().is_empty() {
            self.paragraphs.push(paragraph);
        }
    }

    fn block(&mut self, block: &Value, path: &str) {
        let Some(obj) = block.as_object() else {
            return self.ignore(path);
        };
        match str_of(obj, "type") {
            "header" => self.header(obj),
            "section" => self.section(obj, path),
            "context" => self.context(obj, path),
            "divider" => self.paragraphs.push("---".to_owned()),
            "image" => self.image(obj, path),
            "rich_text" => {
                let text = rich_text(obj, path, &mut self.out.ignored);
                self.push(text);
            }
            "actions" => self.actions(obj, path),
            _ => self.ignore(path),
        }
    }

    fn header(&mut self, obj: &Map<String, Value>) {
        let Some(text) = obj.get("text").and_then(text_object) else {
            return;
        };
        if self.target == (Target::Attachment { has_title: false }) && self.out.title.is_empty() {
            // An attachment title is plain text in Mattermost: keep the header's words.
            self.out.title = plain_of(obj.get("text"));
        } else {
            self.push(format!("### {text}"));
        }
    }

    fn section(&mut self, obj: &Map<String, Value>, path: &str) {
        let mut lines = Vec::new();
        if let Some(text) = obj.get("text").and_then(text_object) {
            lines.push(text);
        }
        if let Some(Value::Array(fields)) = obj.get("fields") {
            for (i, field) in fields.iter().enumerate() {
                let Some(text) = text_object(field) else {
                    self.ignore(&format!("{path}.fields[{i}]"));
                    continue;
                };
                match self.target {
                    Target::Attachment { .. } => self.out.fields.push(attachment_field(&text)),
                    Target::Message => lines.push(text),
                }
            }
        }
        if let Some(accessory) = obj.get("accessory") {
            let accessory_path = format!("{path}.accessory");
            match str_of_value(accessory, "type") {
                "button" => match link_button(accessory) {
                    Some(link) => lines.push(link),
                    None => self.ignore(&accessory_path),
                },
                "image"
                    if self.target != Target::Message
                        && self.out.thumb_url.is_empty()
                        && !str_of_value(accessory, "image_url").is_empty() =>
                {
                    self.out.thumb_url = str_of_value(accessory, "image_url").to_owned();
                }
                _ => self.ignore(&accessory_path),
            }
        }
        self.push(lines.join("\n"));
    }

    fn context(&mut self, obj: &Map<String, Value>, path: &str) {
        let mut parts = Vec::new();
        for (i, element) in elements(obj).iter().enumerate() {
            match text_object(element) {
                Some(text) => parts.push(text),
                // Context images are icons beside the text; Markdown has no inline icon size.
                None => self.ignore(&format!("{path}.elements[{i}]")),
            }
        }
        self.push(parts.join(" · "));
    }

    fn image(&mut self, obj: &Map<String, Value>, path: &str) {
        let url = str_of(obj, "image_url");
        if url.is_empty() {
            return self.ignore(path);
        }
        let title = obj.get("title").and_then(text_object);
        if self.target != Target::Message && self.out.image_url.is_empty() {
            self.out.image_url = url.to_owned();
            if let Some(title) = title {
                self.push(title);
            }
            return;
        }
        let alt = escape_plain(str_of(obj, "alt_text"));
        let image = format!("![{alt}]({})", link_target(url));
        self.push(match title {
            Some(title) => format!("{title}\n{image}"),
            None => image,
        });
    }

    fn actions(&mut self, obj: &Map<String, Value>, path: &str) {
        let mut links = Vec::new();
        for (i, element) in elements(obj).iter().enumerate() {
            match link_button(element) {
                Some(link) => links.push(link),
                // Buttons without a URL and menus post back to Slack, which is not here.
                None => self.ignore(&format!("{path}.elements[{i}]")),
            }
        }
        self.push(links.join(" · "));
    }
}

fn elements(obj: &Map<String, Value>) -> &[Value] {
    match obj.get("elements") {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn str_of_value<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A text object as Markdown: `mrkdwn` converted, `plain_text` (or no type) escaped.
fn text_object(v: &Value) -> Option<String> {
    let text = v.get("text")?.as_str()?;
    match str_of_value(v, "type") {
        "mrkdwn" => Some(to_markdown(text)),
        "plain_text" | "" => Some(escape_plain(text)),
        _ => None,
    }
}

/// A text object's words without markup, for places Mattermost shows as plain text.
fn plain_of(v: Option<&Value>) -> String {
    v.and_then(|v| v.get("text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A section field as an attachment field: Slack senders write `*Label*\nvalue`, which is
/// Mattermost's field title and value; anything else is a value without a title.
fn attachment_field(markdown: &str) -> AttachmentField {
    let (title, value) = match markdown.split_once('\n') {
        Some((first, rest))
            if first.len() > 4 && first.starts_with("**") && first.ends_with("**") =>
        {
            (first[2..first.len() - 2].to_owned(), rest.to_owned())
        }
        _ => (String::new(), markdown.to_owned()),
    };
    AttachmentField {
        title,
        value: Value::String(value),
        short: true,
    }
}

/// A button that opens a URL, as a Markdown link; `None` for anything interactive.
fn link_button(v: &Value) -> Option<String> {
    if str_of_value(v, "type") != "button" {
        return None;
    }
    let url = str_of_value(v, "url");
    if url.is_empty() {
        return None;
    }
    let label = v
        .get("text")
        .and_then(text_object)
        .unwrap_or_else(|| escape_plain(url));
    Some(format!("[{label}]({})", link_target(url)))
}

/// A URL made safe inside `(…)` of a Markdown link.
fn link_target(url: &str) -> String {
    url.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
}

/// A `rich_text` block: sections, lists, preformatted text and quotes.
fn rich_text(obj: &Map<String, Value>, path: &str, ignored: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut in_list = false;
    // A list nested deeper than the one before it must hang under that one's item.
    let mut last_indent: Option<u64> = None;
    for (i, element) in elements(obj).iter().enumerate() {
        let element_path = format!("{path}.elements[{i}]");
        let kind = str_of_value(element, "type");
        let is_list = kind == "rich_text_list";
        if !out.is_empty() {
            out.push_str(if is_list && in_list { "\n" } else { "\n\n" });
        }
        if !is_list {
            last_indent = None;
        }
        in_list = is_list;
        let inline = |ignored: &mut Vec<String>| inline_elements(element, &element_path, ignored);
        match kind {
            "rich_text_section" => out.push_str(&inline(ignored)),
            "rich_text_preformatted" => {
                let raw = raw_elements(element);
                out.push_str(&format!("```\n{raw}\n```"));
            }
            "rich_text_quote" => {
                let text = inline(ignored);
                let quoted: Vec<String> = text.split('\n').map(|l| format!("> {l}")).collect();
                out.push_str(&quoted.join("\n"));
            }
            "rich_text_list" => {
                let wanted = element.get("indent").and_then(Value::as_u64).unwrap_or(0);
                let indent = match last_indent {
                    Some(last) => wanted.min(last + 1),
                    None => 0,
                };
                last_indent = Some(indent);
                let ordered = str_of_value(element, "style") == "ordered";
                let offset = element.get("offset").and_then(Value::as_u64).unwrap_or(0);
                let pad = "    ".repeat(usize::try_from(indent).unwrap_or(0));
                let items: Vec<String> = match element.get("elements") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .enumerate()
                        .map(|(n, item)| {
                            let text = inline_elements(
                                item,
                                &format!("{element_path}.elements[{n}]"),
                                ignored,
                            );
                            let bullet = if ordered {
                                format!("{}.", offset + n as u64 + 1)
                            } else {
                                "-".to_owned()
                            };
                            format!("{pad}{bullet} {}", text.replace('\n', " "))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                out.push_str(&items.join("\n"));
            }
            _ => ignored.push(element_path),
        }
    }
    out
}

/// The text of a preformatted element's children, as written.
fn raw_elements(element: &Value) -> String {
    let Some(Value::Array(items)) = element.get("elements") else {
        return String::new();
    };
    items
        .iter()
        .map(|item| match str_of_value(item, "type") {
            "link" => match str_of_value(item, "text") {
                "" => str_of_value(item, "url"),
                text => text,
            },
            _ => str_of_value(item, "text"),
        })
        .collect()
}

/// The inline children of a rich text section, quote or list item.
fn inline_elements(element: &Value, path: &str, ignored: &mut Vec<String>) -> String {
    let Some(Value::Array(items)) = element.get("elements") else {
        return String::new();
    };
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let piece = match str_of_value(item, "type") {
            "text" => styled(item, escape_plain(str_of_value(item, "text"))),
            "link" => {
                let url = str_of_value(item, "url");
                let label = match str_of_value(item, "text") {
                    "" => escape_plain(url),
                    text => escape_plain(text),
                };
                styled(item, format!("[{label}]({})", link_target(url)))
            }
            // Left in Slack's form: the reference pass turns known users into @username.
            "user" => format!("<@{}>", str_of_value(item, "user_id")),
            "usergroup" => format!("<!subteam^{}>", str_of_value(item, "usergroup_id")),
            "channel" => format!("<#{}>", str_of_value(item, "channel_id")),
            "broadcast" => match str_of_value(item, "range") {
                "everyone" => "@all".to_owned(),
                range => format!("@{range}"),
            },
            "emoji" => format!(":{}:", str_of_value(item, "name")),
            "date" => match str_of_value(item, "fallback") {
                "" => item
                    .get("timestamp")
                    .and_then(Value::as_i64)
                    .map(utc_minutes)
                    .unwrap_or_default(),
                fallback => escape_plain(fallback),
            },
            "color" => format!("`{}`", str_of_value(item, "value")),
            _ => {
                ignored.push(format!("{path}.elements[{i}]"));
                String::new()
            }
        };
        out.push_str(&piece);
    }
    out
}

/// Applies a rich text element's `style` to its Markdown, keeping outer spaces outside the
/// markers (Markdown does not close `**word **`).
fn styled(item: &Value, markdown: String) -> String {
    let style = item.get("style");
    let on = |key: &str| style.and_then(|s| s.get(key)).and_then(Value::as_bool) == Some(true);
    if on("code") {
        let raw = str_of_value(item, "text");
        let fence = if raw.contains('`') { "``" } else { "`" };
        return format!("{fence}{raw}{fence}");
    }
    let trimmed = markdown.trim();
    if trimmed.is_empty() {
        return markdown;
    }
    let lead = &markdown[..markdown.len() - markdown.trim_start().len()];
    let trail = &markdown[markdown.trim_end().len()..];
    let mut inner = trimmed.to_owned();
    for (key, marker) in [("strike", "~~"), ("italic", "_"), ("bold", "**")] {
        if on(key) {
            inner = format!("{marker}{inner}{marker}");
        }
    }
    format!("{lead}{inner}{trail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(blocks: Value) -> Rendered {
        render(&blocks, Target::Message, "blocks")
    }

    #[test]
    fn every_block_type_renders() {
        let r = message(json!([
            {"type": "header", "text": {"type": "plain_text", "text": "Deploy *done*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*prod* is ~down~ up"}},
            {"type": "divider"},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": "by *ci*"},
                {"type": "image", "image_url": "https://x.test/i.png", "alt_text": "i"},
                {"type": "plain_text", "text": "12:00"}
            ]},
            {"type": "image", "image_url": "https://x.test/graph one.png", "alt_text": "graph"},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://x.test/run(1)"},
                {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "action_id": "a"}
            ]}
        ]));
        assert_eq!(
            r.text,
            "### Deploy \\*done\\*\n\n**prod** is ~~down~~ up\n\n---\n\nby **ci** · 12:00\n\n\
             ![graph](https://x.test/graph%20one.png)\n\n[Open](https://x.test/run%281%29)"
        );
        assert_eq!(
            r.ignored,
            ["blocks[3].elements[1]", "blocks[5].elements[1]"],
            "the context icon and the interactive button"
        );
    }

    #[test]
    fn message_fields_are_lines_and_unknown_blocks_are_reported() {
        let r = message(json!([
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Host*\nweb-1"},
                {"type": "mrkdwn", "text": "*State*\ndown"}
            ], "accessory": {"type": "static_select", "action_id": "s"}},
            {"type": "input", "element": {}},
            "not a block"
        ]));
        assert_eq!(r.text, "**Host**\nweb-1\n**State**\ndown");
        assert_eq!(r.ignored, ["blocks[0].accessory", "blocks[1]", "blocks[2]"]);
        assert_eq!(
            render(&json!({"type": "section"}), Target::Message, "blocks").ignored,
            ["blocks"]
        );
    }

    #[test]
    fn attachment_target_fills_title_fields_and_images() {
        let r = render(
            &json!([
                {"type": "header", "text": {"type": "plain_text", "text": "Uptime Kuma Alert"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Message*\n[api] is down"},
                    {"type": "mrkdwn", "text": "no title here"}
                ], "accessory": {"type": "image", "image_url": "https://x.test/t.png", "alt_text": "t"}},
                {"type": "image", "image_url": "https://x.test/big.png", "alt_text": "big",
                 "title": {"type": "plain_text", "text": "Latency"}},
                {"type": "header", "text": {"type": "plain_text", "text": "Second"}}
            ]),
            Target::Attachment { has_title: false },
            "attachments[0].blocks",
        );
        assert_eq!(r.title, "Uptime Kuma Alert");
        assert_eq!(
            r.fields,
            [
                AttachmentField {
                    title: "Message".into(),
                    value: json!("[api] is down"),
                    short: true
                },
                AttachmentField {
                    title: String::new(),
                    value: json!("no title here"),
                    short: true
                },
            ]
        );
        assert_eq!(r.thumb_url, "https://x.test/t.png");
        assert_eq!(r.image_url, "https://x.test/big.png");
        assert_eq!(r.text, "Latency\n\n### Second");
        assert!(r.ignored.is_empty());
    }

    #[test]
    fn rich_text_renders_styles_lists_code_and_quotes() {
        let r = message(json!([{"type": "rich_text", "elements": [
            {"type": "rich_text_section", "elements": [
                {"type": "text", "text": "Hello "},
                {"type": "text", "text": "bold ", "style": {"bold": true}},
                {"type": "text", "text": "it", "style": {"italic": true, "strike": true}},
                {"type": "text", "text": " "},
                {"type": "text", "text": "a`b", "style": {"code": true}},
                {"type": "text", "text": " "},
                {"type": "link", "url": "https://x.test", "text": "site"},
                {"type": "text", "text": " "},
                {"type": "user", "user_id": "U123"},
                {"type": "text", "text": " "},
                {"type": "broadcast", "range": "here"},
                {"type": "text", "text": " "},
                {"type": "emoji", "name": "tada"},
                {"type": "text", "text": " "},
                {"type": "date", "timestamp": 1_700_000_000},
                {"type": "mystery"}
            ]},
            {"type": "rich_text_list", "style": "bullet", "indent": 0, "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": "one"}]},
                {"type": "rich_text_section", "elements": [{"type": "text", "text": "two"}]}
            ]},
            {"type": "rich_text_list", "style": "ordered", "indent": 3, "offset": 1, "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": "nested"}]}
            ]},
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "*raw*\nline"}]},
            {"type": "rich_text_quote", "elements": [{"type": "text", "text": "q1\nq2"}]}
        ]}]));
        assert_eq!(
            r.text,
            "Hello **bold** _~~it~~_ ``a`b`` [site](https://x.test) <@U123> @here :tada: \
             2023-11-14 22:13 UTC\n\n- one\n- two\n    2. nested\n\n```\n*raw*\nline\n```\n\n> q1\n> q2"
        );
        assert_eq!(r.ignored, ["blocks[0].elements[0].elements[15]"]);
    }
}
