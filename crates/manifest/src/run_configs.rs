//! `predefined_run_configs.json`: ready-made task configurations offered in
//! the web instance, a JSON array of `{"title", "type", "config"}`.

use serde_json::{Map, Value};

use crate::info::kind_of;
use crate::{json_span, Position, Problem};

/// One predefined run config.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Shown in the web instance's template list.
    pub title: String,
    /// The plugin type, or the mode (`train`, `inference`) for neural networks.
    pub config_type: String,
    /// Where the `type` value sits in the file.
    pub type_position: Position,
    /// The configuration handed to the plugin.
    pub config: Map<String, Value>,
}

impl RunConfig {
    /// Parses and validates the text of a `predefined_run_configs.json`,
    /// reporting every problem found rather than the first.
    pub fn parse_file(src: &str) -> Result<Vec<RunConfig>, Vec<Problem>> {
        let value: Value = serde_json::from_str(src).map_err(|e| vec![Problem::from_json_error(src, &e)])?;
        let doc = json_span::parse(src);
        let pos_of = |node: Option<&json_span::Node>| {
            node.map_or(Position::START, |n| Position::of_offset(src, n.span.start))
        };
        let Value::Array(items) = value else {
            return Err(vec![Problem::at(
                pos_of(doc.as_ref()),
                format!("predefined_run_configs.json must hold a JSON array, found {}", kind_of(&value)),
            )
            .with_help(r#"write [{"title": "...", "type": "...", "config": {}}]"#)]);
        };

        let mut configs = Vec::new();
        let mut problems = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let node = doc.as_ref().and_then(|d| d.at(index));
            let Value::Object(mut map) = item else {
                problems.push(Problem::at(
                    pos_of(node),
                    format!("run config #{index} must be an object, found {}", kind_of(&item)),
                ));
                continue;
            };
            let mut string_field = |key: &str| match map.remove(key) {
                Some(Value::String(s)) => Some(s),
                None => {
                    problems.push(
                        Problem::at(pos_of(node), format!("run config #{index} has no `{key}`"))
                            .with_help(format!("add \"{key}\": \"...\" to the object")),
                    );
                    None
                }
                Some(other) => {
                    problems.push(Problem::at(
                        pos_of(node.and_then(|n| n.get(key))),
                        format!("`{key}` of run config #{index} must be a string, found {}", kind_of(&other)),
                    ));
                    None
                }
            };
            let title = string_field("title");
            let config_type = string_field("type");
            let config = match map.remove("config") {
                Some(Value::Object(config)) => Some(config),
                None => {
                    problems.push(
                        Problem::at(pos_of(node), format!("run config #{index} has no `config`"))
                            .with_help("add \"config\": {} to the object"),
                    );
                    None
                }
                Some(other) => {
                    problems.push(Problem::at(
                        pos_of(node.and_then(|n| n.get("config"))),
                        format!(
                            "`config` of run config #{index} must be an object, found {}",
                            kind_of(&other)
                        ),
                    ));
                    None
                }
            };
            if let (Some(title), Some(config_type), Some(config)) = (title, config_type, config) {
                let type_position = pos_of(node.and_then(|n| n.get("type")));
                configs.push(RunConfig { title, config_type, type_position, config });
            }
        }
        if problems.is_empty() {
            Ok(configs)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn check(src: &str, expect: Expect) {
        let actual = crate::problem::render(RunConfig::parse_file(src), |configs| {
            let line = |c: &RunConfig| {
                format!(
                    "ok {:?} type={:?}@{} config={}",
                    c.title,
                    c.config_type,
                    c.type_position,
                    Value::Object(c.config.clone())
                )
            };
            configs.iter().map(line).collect::<Vec<_>>().join("\n")
        });
        expect.assert_eq(&actual);
    }

    #[test]
    fn valid() {
        check(
            "[\n  {\"title\": \"fast\", \"type\": \"train\", \"config\": {\"lr\": 0.1}},\n  {\"title\": \"x\", \"type\": \"inference\", \"config\": {}}\n]",
            expect![[r#"
                ok "fast" type="train"@2:29 config={"lr":0.1}
                ok "x" type="inference"@3:26 config={}"#]],
        );
        check("[]", expect![[""]]);
    }

    #[test]
    fn every_bad_entry_is_reported() {
        check(
            "[\n  {\"title\": \"a\", \"type\": 1, \"config\": []},\n  \"oops\",\n  {\"title\": \"b\"}\n]",
            expect![[r#"
                2:26: `type` of run config #0 must be a string, found a number
                2:39: `config` of run config #0 must be an object, found an array
                3:3: run config #1 must be an object, found a string
                4:3: run config #2 has no `type`
                4:3: run config #2 has no `config`"#]],
        );
        check("{}", expect![["1:1: predefined_run_configs.json must hold a JSON array, found an object"]]);
        check("[{]", expect![["1:3: invalid JSON: key must be a string"]]);
    }
}
