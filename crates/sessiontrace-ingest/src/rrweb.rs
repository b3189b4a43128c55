//! Reading rrweb replay events (the JSON the recorder uploads): event types and incremental sources, and
//! the DOM nodes they name (tag, id, classes, text by rrweb node id, from snapshots and mutations). Used
//! by the signals module at ingest and by the query side's timeline.

use std::collections::HashMap;

use serde_json::Value;

// rrweb event types and incremental sources (rrweb's `EventType` and `IncrementalSource`).
pub const FULL_SNAPSHOT: u64 = 2;
pub const INCREMENTAL: u64 = 3;
pub const META: u64 = 4;
pub const CUSTOM: u64 = 5;
pub const PLUGIN: u64 = 6;
pub const SOURCE_MUTATION: u64 = 0;
pub const SOURCE_MOUSE_INTERACTION: u64 = 2;
pub const SOURCE_SCROLL: u64 = 3;
pub const SOURCE_INPUT: u64 = 5;
/// `MouseInteractions.Click` (a double-click also sends two of these).
pub const MOUSE_CLICK: u64 = 2;

/// The recorder's custom event tags (docs/api.md).
pub const TAG_NETWORK: &str = "sessiontrace/network";
pub const TAG_CONSOLE: &str = "sessiontrace/console";
pub const TAG_ERROR: &str = "sessiontrace/error";
/// rrweb's own console plugin.
pub const PLUGIN_CONSOLE: &str = "rrweb/console@1";

/// What is known of one element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    pub tag: String,
    pub element_id: Option<String>,
    pub classes: Vec<String>,
    /// `aria-label`, else the text inside (trimmed, at most about 60 characters).
    pub label: Option<String>,
}

impl NodeInfo {
    /// `tag#id.class1.class2`, the way a person would name the element in a CSS selector.
    pub fn selector(&self) -> String {
        let mut selector = self.tag.clone();
        if let Some(id) = &self.element_id {
            selector.push('#');
            selector.push_str(id);
        }
        for class in &self.classes {
            selector.push('.');
            selector.push_str(class);
        }
        selector
    }
}

/// Elements by rrweb node id, from snapshots and mutations.
#[derive(Debug, Default)]
pub struct NodeNames {
    nodes: HashMap<u64, NodeInfo>,
}

impl NodeNames {
    /// Learns a serialized node and its children (a full snapshot's `node`, a mutation's added `node`).
    pub fn visit(&mut self, node: &Value) {
        let Some(id) = node.get("id").and_then(Value::as_u64) else { return };
        if let Some(tag) = node.get("tagName").and_then(Value::as_str) {
            let attributes = node.get("attributes");
            let attribute = |name: &str| attributes.and_then(|a| a.get(name)).and_then(Value::as_str);
            let text = text_of(node);
            let label = attribute("aria-label").map(str::to_string).or_else(|| (!text.is_empty()).then_some(text));
            self.nodes.insert(
                id,
                NodeInfo {
                    tag: tag.to_string(),
                    element_id: attribute("id").filter(|i| !i.is_empty()).map(str::to_string),
                    classes: attribute("class")
                        .map(|c| c.split_whitespace().map(str::to_string).collect())
                        .unwrap_or_default(),
                    label,
                },
            );
        }
        if let Some(children) = node.get("childNodes").and_then(Value::as_array) {
            children.iter().for_each(|child| self.visit(child));
        }
    }

    /// Learns the nodes an event brings: a full snapshot's tree, a mutation's added nodes.
    pub fn learn(&mut self, event: &Value) {
        let data = event.get("data").unwrap_or(&Value::Null);
        match event.get("type").and_then(Value::as_u64) {
            Some(FULL_SNAPSHOT) => self.visit(data.get("node").unwrap_or(&Value::Null)),
            Some(INCREMENTAL) if data.get("source").and_then(Value::as_u64) == Some(SOURCE_MUTATION) => {
                for added in data.get("adds").and_then(Value::as_array).into_iter().flatten() {
                    self.visit(added.get("node").unwrap_or(&Value::Null));
                }
            }
            _ => {}
        }
    }

    pub fn info(&self, id: Option<u64>) -> Option<&NodeInfo> {
        id.and_then(|id| self.nodes.get(&id))
    }

    /// A short description: `button#pay "Pay now"`, or `element` for an unknown node.
    pub fn name(&self, id: Option<u64>) -> String {
        let Some(info) = self.info(id) else { return "element".into() };
        let mut name = info.tag.clone();
        if let Some(element_id) = &info.element_id {
            name.push('#');
            name.push_str(element_id);
        }
        if let Some(label) = &info.label {
            name.push_str(&format!(" \"{}\"", truncate(label, 40)));
        }
        name
    }
}

fn text_of(node: &Value) -> String {
    let mut text = String::new();
    fn collect(node: &Value, text: &mut String, depth: usize) {
        if depth > 4 || text.len() > 60 {
            return;
        }
        if let Some(content) = node.get("textContent").and_then(Value::as_str) {
            text.push_str(content.trim());
        }
        if let Some(children) = node.get("childNodes").and_then(Value::as_array) {
            children.iter().for_each(|child| collect(child, text, depth + 1));
        }
    }
    collect(node, &mut text, 0);
    text
}

/// At most `max_chars` characters, with `…` when cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    format!("{cut}…")
}

pub fn string_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The path of a URL (`https://h/a/b?q#f` → `/a/b`; a path stays a path).
pub fn url_path(url: &str) -> String {
    let without_scheme = match url.find("://") {
        Some(at) => {
            let rest = &url[at + 3..];
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        None => url,
    };
    let end = without_scheme.find(['?', '#']).unwrap_or(without_scheme.len());
    let path = &without_scheme[..end];
    if path.is_empty() { "/".into() } else { path.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_nodes_and_selectors() {
        let mut names = NodeNames::default();
        names.visit(&json!({"type": 0, "id": 1, "childNodes": [
            {"type": 2, "id": 5, "tagName": "button", "attributes": {"id": "pay", "class": "btn  primary"},
             "childNodes": [{"type": 3, "id": 6, "textContent": " Pay now "}]}
        ]}));
        assert_eq!(names.name(Some(5)), "button#pay \"Pay now\"");
        assert_eq!(names.info(Some(5)).unwrap().selector(), "button#pay.btn.primary");
        assert_eq!(names.name(Some(99)), "element");
    }

    #[test]
    fn paths_of_urls() {
        assert_eq!(url_path("http://127.0.0.1:3000/api/pay?x=1#y"), "/api/pay");
        assert_eq!(url_path("https://example.com"), "/");
        assert_eq!(url_path("/api/x?y"), "/api/x");
    }
}
