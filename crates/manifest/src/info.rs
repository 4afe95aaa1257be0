//! `plugin_info.json`: title, description and type of a plugin.

use serde_json::{Map, Value};

use crate::{json_span, Position, Problem};

/// The content of a valid `plugin_info.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// Shown as the plugin's name in the web instance.
    pub title: String,
    /// Shown under the title.
    pub description: String,
    /// `import`, `architecture`, ... (see [`crate::plugin_type`]).
    pub plugin_type: String,
    /// Where the `type` value sits in the file.
    pub type_position: Position,
    /// Every other key, kept as written (for example `run_mode`).
    pub extra: Map<String, Value>,
}

impl PluginInfo {
    /// Parses and validates the text of a `plugin_info.json`, reporting every
    /// problem found rather than the first.
    pub fn parse(src: &str) -> Result<PluginInfo, Vec<Problem>> {
        let value: Value = serde_json::from_str(src).map_err(|e| vec![Problem::from_json_error(src, &e)])?;
        let doc = json_span::parse(src);
        let pos_of = |node: Option<&json_span::Node>| {
            node.map_or(Position::START, |n| Position::of_offset(src, n.span.start))
        };
        let Value::Object(mut map) = value else {
            return Err(vec![Problem::at(
                pos_of(doc.as_ref()),
                format!("plugin_info.json must hold a JSON object, found {}", kind_of(&value)),
            )
            .with_help(r#"write {"title": "...", "description": "...", "type": "import"}"#)]);
        };

        let mut problems = Vec::new();
        let mut take = |key: &str| -> Option<String> {
            let node = doc.as_ref().and_then(|d| d.get(key));
            match map.remove(key) {
                None => {
                    problems.push(
                        Problem::at(pos_of(doc.as_ref()), format!("missing key `{key}`"))
                            .with_help(format!("add \"{key}\": \"...\" to the object")),
                    );
                    None
                }
                Some(Value::String(s)) if s.trim().is_empty() => {
                    problems.push(Problem::at(pos_of(node), format!("`{key}` is empty")));
                    None
                }
                Some(Value::String(s)) => Some(s),
                Some(other) => {
                    problems.push(Problem::at(
                        pos_of(node),
                        format!("`{key}` must be a string, found {}", kind_of(&other)),
                    ));
                    None
                }
            }
        };
        let title = take("title");
        let description = take("description");
        let plugin_type = take("type");
        match (title, description, plugin_type) {
            (Some(title), Some(description), Some(plugin_type)) if problems.is_empty() => Ok(PluginInfo {
                title,
                description,
                plugin_type,
                type_position: pos_of(doc.as_ref().and_then(|d| d.get("type"))),
                extra: map,
            }),
            _ => Err(problems),
        }
    }
}

/// "a number", "an array", ...: for messages about the wrong kind of value.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn check(src: &str, expect: Expect) {
        let actual = crate::problem::render(PluginInfo::parse(src), |info| {
            format!(
                "ok title={:?} description={:?} type={:?}@{} extra={}",
                info.title,
                info.description,
                info.plugin_type,
                info.type_position,
                Value::Object(info.extra)
            )
        });
        expect.assert_eq(&actual);
    }

    #[test]
    fn valid_with_extra_keys() {
        check(
            "{\n  \"title\": \"CSV\",\n  \"description\": \"d\",\n  \"type\": \"import\",\n  \"run_mode\": \"x\"\n}\n",
            expect![[r#"ok title="CSV" description="d" type="import"@4:11 extra={"run_mode":"x"}"#]],
        );
    }

    #[test]
    fn syntax_error_has_position() {
        check(
            "{\n  \"title\": \"a\",\n  \"type\": import\n}",
            expect![[r#"3:11: invalid JSON: expected value"#]],
        );
        check("", expect![[r#"1:1: invalid JSON: EOF while parsing a value"#]]);
    }

    #[test]
    fn every_missing_or_mistyped_key_is_reported() {
        check(
            "{\"title\": 3, \"description\": \"\"}",
            expect![[r#"
                1:11: `title` must be a string, found a number
                1:29: `description` is empty
                1:1: missing key `type`"#]],
        );
        check("[1]", expect![[r#"1:1: plugin_info.json must hold a JSON object, found an array"#]]);
    }
}
